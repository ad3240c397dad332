/* client/ctl/session.c — cairnctl's connection: the client over --endpoints and one call with the
 * command timeout. */
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"
#include "common/error.h"

/* Nanoseconds to whole milliseconds, rounded up (a positive timeout never becomes "none"). */
static uint64_t ns_to_ms(int64_t ns)
{
    if (ns <= 0)
        return 0;
    return ((uint64_t)ns + 999999u) / 1000000u;
}

void ctl_client_options(const struct ctl *ctl, const char *const *eps, size_t n,
                        struct cl_options *o)
{
    cl_options_default(o);
    o->endpoints = eps;
    o->n_endpoints = n;
    if (ctl->dial_timeout_ns > 0)
        o->dial_timeout_ms = ns_to_ms(ctl->dial_timeout_ns);
}

struct cl_sync *ctl_client(struct ctl *ctl, int *code)
{
    if (ctl->sync)
        return ctl->sync;
    struct cl_options o;
    ctl_client_options(ctl, (const char *const *)ctl->endpoints, ctl->n_endpoints, &o);
    int err = cl_sync_new(&o, &ctl->sync);
    if (err == CAIRN_E_INVALID_ARGUMENT) {
        *code = ctl_fail(CTL_EXIT_BAD_ARGS, "invalid endpoints %s",
                         "(expected host:port or "
                         "http://host:port)");
        return NULL;
    }
    if (err) {
        *code = ctl_fail(CTL_EXIT_BAD_CONNECTION, "cannot create the client: %s",
                         (err > CAIRN_E__FIRST && err < CAIRN_E__LAST) ? cairn_strerror(err)
                                                                       : uv_strerror(err));
        return NULL;
    }
    return ctl->sync;
}

void ctl_call_expired(struct cl_call *call)
{
    call->code = GRPC_DEADLINE_EXCEEDED;
    free(call->message);
    call->message = strdup("context deadline exceeded");
}

int ctl_call(const struct ctl *ctl, struct cl_sync *s, struct cl_call *call,
             const struct cl_method *m, const ProtobufCMessage *req)
{
    if (ctl->command_timeout_ns <= 0) {
        ctl_call_expired(call);
        return call->code;
    }
    call->timeout_ms = ns_to_ms(ctl->command_timeout_ns);
    return cl_sync_call(s, call, m, req);
}

uint64_t ctl_deadline(const struct ctl *ctl)
{
    uint64_t now = uv_hrtime();
    if (ctl->command_timeout_ns <= 0)
        return now;
    uint64_t t = (uint64_t)ctl->command_timeout_ns;
    return t > UINT64_MAX - now ? UINT64_MAX : now + t;
}

int ctl_call_until(uint64_t deadline, struct cl_sync *s, struct cl_call *call,
                   const struct cl_method *m, const ProtobufCMessage *req)
{
    uint64_t now = uv_hrtime();
    if (deadline <= now) {
        ctl_call_expired(call);
        return call->code;
    }
    uint64_t left = deadline - now;
    call->timeout_ms = left > (uint64_t)INT64_MAX ? ns_to_ms(INT64_MAX) : ns_to_ms((int64_t)left);
    return cl_sync_call(s, call, m, req);
}
