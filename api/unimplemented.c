/* api/unimplemented.c — etcd methods cairn does not serve yet. Each answers UNIMPLEMENTED with the
 * method's name, never a fake success; the issue that builds it replaces its entry here. */
#include <stdio.h>
#include <string.h>

#include "api/service.h"

static const struct {
    const char *path;
    bool streaming;
} pending[] = {
    {"/etcdserverpb.Maintenance/Defragment", false},
    {"/etcdserverpb.Maintenance/Snapshot", true},
    {"/etcdserverpb.Auth/AuthEnable", false},
    {"/etcdserverpb.Auth/AuthDisable", false},
    {"/etcdserverpb.Auth/Authenticate", false},
    {"/etcdserverpb.Auth/UserAdd", false},
    {"/etcdserverpb.Auth/UserGet", false},
    {"/etcdserverpb.Auth/UserList", false},
    {"/etcdserverpb.Auth/UserDelete", false},
    {"/etcdserverpb.Auth/UserChangePassword", false},
    {"/etcdserverpb.Auth/UserGrantRole", false},
    {"/etcdserverpb.Auth/UserRevokeRole", false},
    {"/etcdserverpb.Auth/RoleAdd", false},
    {"/etcdserverpb.Auth/RoleGet", false},
    {"/etcdserverpb.Auth/RoleList", false},
    {"/etcdserverpb.Auth/RoleDelete", false},
    {"/etcdserverpb.Auth/RoleGrantPermission", false},
    {"/etcdserverpb.Auth/RoleRevokePermission", false},
    {"/grpc.health.v1.Health/Watch", true},
};

/* ctx is the method's path. */
static void on_message(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    (void)msg;
    (void)len;
    char text[160];
    snprintf(text, sizeof text, "cairn: %s is not implemented yet", (const char *)ctx);
    grpc_call_finish(call, GRPC_UNIMPLEMENTED, text);
}

void api_unimplemented_register(struct api_server *s)
{
    for (size_t i = 0; i < sizeof pending / sizeof pending[0]; i++) {
        api_add_method(s, pending[i].path, pending[i].streaming, on_message);
        s->methods[s->n_methods - 1].ctx = (void *)pending[i].path;
    }
}
