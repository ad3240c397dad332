/* client/ctl/move_leader.c — `move-leader <transferee-member-id>`: Maintenance.MoveLeader
 * (ctlv3/command/move_leader_command.go).
 *
 * Only the leader moves its leadership, so, as etcdctl does, the command asks each endpoint of
 * --endpoints in turn for its Status (each on a connection of its own) until one says it leads,
 * and sends MoveLeader to that one. All of it shares one command timeout. */
#include <stdlib.h>
#include <string.h>

#include "client/ctl/printer.h"

/* Repeatable in clientv3's retry policy. */
static const struct cl_method method_move_leader = {
    "/etcdserverpb.Maintenance/MoveLeader", &etcdserverpb__move_leader_request__descriptor,
    &etcdserverpb__move_leader_response__descriptor, true};

/* A blocking client of endpoint ep alone; NULL when out of memory or ep is refused (the first
 * client, over all endpoints, has checked them already). */
static struct cl_sync *client_of(const struct ctl *ctl, const char *ep)
{
    struct cl_options o;
    const char *one[1] = {ep};
    ctl_client_options(ctl, one, 1, &o);
    struct cl_sync *s;
    return cl_sync_new(&o, &s) == 0 ? s : NULL;
}

/* "no leader endpoint given at [a b c]" (Go's %v of the endpoint list). */
static int no_leader(const struct ctl *ctl)
{
    struct ctl_buf b = {0};
    for (size_t i = 0; i < ctl->n_endpoints; i++)
        ctl_buf_printf(&b, "%s%s", i ? " " : "", ctl->endpoints[i]);
    char *list = ctl_buf_take(&b);
    int code = ctl_fail(CTL_EXIT_BAD_ARGS, "no leader endpoint given at [%s]", list ? list : "");
    free(list);
    return code;
}

/* Finds the leader among the endpoints. Returns 0 with *out its client and *leader its ID, or an
 * exit code after printing the error. */
static int find_leader(const struct ctl *ctl, uint64_t deadline, struct cl_sync **out,
                       uint64_t *leader)
{
    *out = NULL;
    for (size_t i = 0; i < ctl->n_endpoints; i++) {
        struct cl_sync *s = client_of(ctl, ctl->endpoints[i]);
        if (!s)
            return ctl_fail(CTL_EXIT_BAD_CONNECTION, "cannot create the client");
        Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
        struct cl_call call = {0};
        if (ctl_call_until(deadline, s, &call, &cl_method_status, &req.base) != GRPC_OK) {
            int code = ctl_fail_call(&call);
            cl_call_reset(&call);
            cl_sync_free(s);
            return code;
        }
        const Etcdserverpb__StatusResponse *r = (const void *)call.response;
        /* a missing header reads as member 0, as Go's GetMemberId() does */
        bool leads = (r->header ? r->header->member_id : 0) == r->leader;
        *leader = r->leader;
        cl_call_reset(&call);
        if (leads) {
            *out = s;
            return 0;
        }
        cl_sync_free(s);
    }
    return no_leader(ctl);
}

static int run_move_leader(struct ctl *ctl)
{
    if (ctl->n_args != 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "move-leader command needs 1 argument");
    uint64_t target;
    char *err = NULL;
    if (ctl_parse_uint64(ctl->args[0], 16, &target, &err) < 0) {
        int code = ctl_fail(CTL_EXIT_BAD_ARGS, "%s", err ? err : "out of memory");
        free(err);
        return code;
    }
    int code = 0;
    if (!ctl_client(ctl, &code)) /* checks every endpoint, as etcdctl's first client does */
        return code;
    uint64_t deadline = ctl_deadline(ctl), leader = 0;
    struct cl_sync *s;
    if ((code = find_leader(ctl, deadline, &s, &leader)))
        return code;
    Etcdserverpb__MoveLeaderRequest req = ETCDSERVERPB__MOVE_LEADER_REQUEST__INIT;
    req.targetid = target;
    struct cl_call call = {0};
    if (ctl_call_until(deadline, s, &call, &method_move_leader, &req.base) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, move_leader, leader, target,
                         (const Etcdserverpb__MoveLeaderResponse *)call.response);
    cl_call_reset(&call);
    cl_sync_free(s);
    return code;
}

const struct ctl_command ctl_cmd_move_leader = {
    .name = "move-leader",
    .use = "<transferee-member-id>",
    .summary = "Hands the leadership over to another voting member",
    .description = "The current leader is found among --endpoints: give the leader's endpoint, "
                   "or all of them.\n",
    .run = run_move_leader,
};
