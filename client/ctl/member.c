/* client/ctl/member.c — `member list`: Cluster.MemberList (ctlv3/command/member_command.go).
 * cairnd's membership is fixed at start, so list is the one member command. */
#include "client/ctl/printer.h"

static int run_member_list(struct ctl *ctl)
{
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    Etcdserverpb__MemberListRequest req = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &cl_method_member_list, &req.base) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, member_list, (const Etcdserverpb__MemberListResponse *)call.response);
    cl_call_reset(&call);
    return code;
}

static const struct ctl_command cmd_member_list = {
    .name = "list",
    .use = "",
    .summary = "Lists the members of the cluster",
    .description = "With --write-out simple, one comma-separated line per member: ID, Status, "
                   "Name, Peer Addrs,\nClient Addrs, Is Learner.\n",
    .run = run_member_list,
};

static const struct ctl_command *const member_subs[] = {&cmd_member_list};

const struct ctl_command ctl_cmd_member = {
    .name = "member",
    .use = "<subcommand>",
    .summary = "Commands about cluster membership",
    .subs = member_subs,
    .n_subs = sizeof member_subs / sizeof member_subs[0],
};
