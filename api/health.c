/* api/health.c — the standard gRPC health service (grpc.health.v1.Health/Check), as etcd serves
 * it: the server as a whole ("") is SERVING; other service names are unknown. */
#include <string.h>

#include "api/service.h"
#include "health/health.pb-c.h"

static void on_check(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Grpc__Health__V1__HealthCheckRequest *q =
        api_decode(c, &grpc__health__v1__health_check_request__descriptor, msg, len);
    if (!q)
        return;
    if (q->service && q->service[0]) {
        api_reply_status(c, GRPC_NOT_FOUND, "unknown service");
        return;
    }
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    api_reply(c, &r.base);
}

void api_health_register(struct api_server *s)
{
    api_add_method(s, "/grpc.health.v1.Health/Check", false, on_check);
}
