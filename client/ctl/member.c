/* client/ctl/member.c — `member list|add|remove|update|promote`: etcd's Cluster service
 * (ctlv3/command/member_command.go).
 *
 * As in etcdctl, a change is printed only after it is made: with an output format that has no
 * rendering of it (fields, table) the member is added, removed, updated or promoted all the same
 * and the command then fails with "<format> not supported as output format". */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/ctl/printer.h"

/* The Cluster methods besides MemberList; none is repeatable (clientv3's retry policy). */
#define CLUSTER_METHOD(var, name, msg)                                               \
    static const struct cl_method var = {"/etcdserverpb.Cluster/" name,              \
                                         &etcdserverpb__##msg##_request__descriptor, \
                                         &etcdserverpb__##msg##_response__descriptor, false}
CLUSTER_METHOD(method_member_add, "MemberAdd", member_add);
CLUSTER_METHOD(method_member_remove, "MemberRemove", member_remove);
CLUSTER_METHOD(method_member_update, "MemberUpdate", member_update);
CLUSTER_METHOD(method_member_promote, "MemberPromote", member_promote);
#undef CLUSTER_METHOD

static const struct ctl_flag_spec add_flags[] = {
    {"learner", 0, CTL_FLAG_BOOL, "false", "Add the member as a learner (a non-voting member)"},
    {"peer-urls", 0, CTL_FLAG_STRING, "", "The new member's peer URLs, comma-separated"},
};

static const struct ctl_flag_spec update_flags[] = {
    {"peer-urls", 0, CTL_FLAG_STRING, "", "The member's new peer URLs, comma-separated"},
};

/* ---------------------------------------------------------------------------------------------- */
/* Arguments */

/* The member ID argument: exactly one, in hex (strconv.ParseUint(s, 16, 64)). Returns 0 or an
 * exit code after printing etcdctl's message. */
static int member_id_arg(const struct ctl *ctl, uint64_t *id)
{
    if (ctl->n_args != 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "member ID is not provided");
    char *err = NULL;
    if (ctl_parse_uint64(ctl->args[0], 16, id, &err) == 0)
        return 0;
    int code = ctl_fail(CTL_EXIT_BAD_ARGS, "bad member ID arg (%s), expecting ID in Hex",
                        err ? err : "out of memory");
    free(err);
    return code;
}

/* Peer URLs: --peer-urls split at every comma, empty items kept (Go's strings.Split). */
struct url_list {
    char **v; /* malloc'd strings */
    size_t n;
};

static void url_list_free(struct url_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (struct url_list){0};
}

/* Returns 0, or -1 when out of memory (l holds what was split so far). */
static int url_list_split(const char *s, struct url_list *l)
{
    *l = (struct url_list){0};
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        char **v = realloc(l->v, (l->n + 1) * sizeof *v);
        if (!v)
            return -1;
        l->v = v;
        if (!(l->v[l->n] = strndup(s, len)))
            return -1;
        l->n++;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

/* The peer URLs of add and update: split, then checked as etcd's client checks them once it has
 * a client (so a bad endpoint is reported first, as etcdctl reports it). Returns 0 with *s the
 * client, or an exit code after printing the error. */
static int peer_urls_arg(struct ctl *ctl, struct url_list *urls, struct cl_sync **s)
{
    *s = NULL;
    if (url_list_split(ctl_flag_str(&ctl->fs, "peer-urls"), urls) < 0)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    int code = 0;
    if (!(*s = ctl_client(ctl, &code)))
        return code;
    char *err = NULL;
    if (ctl_peer_urls_check(urls->v, urls->n, &err) < 0) {
        code = ctl_fail(CTL_EXIT_ERROR, "%s", err ? err : "out of memory");
        free(err);
        return code;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Commands */

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

/* "too many arguments", with a hint for each argument that looks like a URL. */
static int too_many_add_args(const struct ctl *ctl)
{
    struct ctl_buf b = {0};
    ctl_buf_puts(&b, "too many arguments");
    for (size_t i = 0; i < ctl->n_args; i++) {
        if (strncasecmp(ctl->args[i], "http", 4) == 0)
            ctl_buf_printf(&b, ", did you mean --peer-urls=%s", ctl->args[i]);
    }
    char *msg = ctl_buf_take(&b);
    int code = ctl_fail(CTL_EXIT_BAD_ARGS, "%s", msg ? msg : "too many arguments");
    free(msg);
    return code;
}

/* The environment lines a new member starts with (etcdctl's ETCD_* ones, under cairnd's
 * CAIRN_* names): its name, the initial cluster — every member's every peer URL in the order of
 * the response's member list, the new member under the name given — its peer URLs as given and
 * the cluster state. */
static int print_env_lines(const struct ctl *ctl, const Etcdserverpb__MemberAddResponse *r)
{
    const char *name = ctl->args[0], *urls = ctl_flag_str(&ctl->fs, "peer-urls");
    uint64_t new_id = r->member ? r->member->id : 0;
    struct ctl_buf b = {0}, conf = {0};
    bool first = true;
    for (size_t i = 0; i < r->n_members; i++) {
        const Etcdserverpb__Member *m = r->members[i];
        for (size_t j = 0; j < m->n_peerurls; j++) {
            ctl_buf_printf(&conf, "%s%s=%s", first ? "" : ",", m->id == new_id ? name : m->name,
                           m->peerurls[j]);
            first = false;
        }
    }
    ctl_buf_puts(&b, "\nCAIRN_NAME=");
    ctl_go_quote(&b, name, strlen(name));
    ctl_buf_puts(&b, "\nCAIRN_INITIAL_CLUSTER=");
    ctl_go_quote(&b, conf.p ? conf.p : "", conf.len);
    ctl_buf_puts(&b, "\nCAIRN_INITIAL_ADVERTISE_PEER_URLS=");
    ctl_go_quote(&b, urls, strlen(urls));
    ctl_buf_puts(&b, "\nCAIRN_INITIAL_CLUSTER_STATE=\"existing\"\n");
    if (conf.failed)
        b.failed = true;
    ctl_buf_free(&conf);
    return ctl_print_flush(&b);
}

static int run_member_add(struct ctl *ctl)
{
    if (ctl->n_args < 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "member name not provided");
    if (ctl->n_args > 1)
        return too_many_add_args(ctl);
    if (!*ctl_flag_str(&ctl->fs, "peer-urls"))
        return ctl_fail(CTL_EXIT_BAD_ARGS, "member peer urls not provided");
    struct url_list urls;
    struct cl_sync *s;
    int code = peer_urls_arg(ctl, &urls, &s);
    if (code) {
        url_list_free(&urls);
        return code;
    }
    Etcdserverpb__MemberAddRequest req = ETCDSERVERPB__MEMBER_ADD_REQUEST__INIT;
    req.peerurls = urls.v;
    req.n_peerurls = urls.n;
    req.islearner = ctl_flag_bool(&ctl->fs, "learner");
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &method_member_add, &req.base) != GRPC_OK) {
        code = ctl_fail_call(&call);
    } else {
        const Etcdserverpb__MemberAddResponse *r = (const void *)call.response;
        code = CTL_PRINT(ctl, member_add, r);
        if (code == 0 && ctl->format == CTL_FMT_SIMPLE)
            code = print_env_lines(ctl, r);
    }
    cl_call_reset(&call);
    url_list_free(&urls);
    return code;
}

static int run_member_remove(struct ctl *ctl)
{
    uint64_t id;
    int code = member_id_arg(ctl, &id);
    if (code)
        return code;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    Etcdserverpb__MemberRemoveRequest req = ETCDSERVERPB__MEMBER_REMOVE_REQUEST__INIT;
    req.id = id;
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &method_member_remove, &req.base) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, member_remove, id,
                         (const Etcdserverpb__MemberRemoveResponse *)call.response);
    cl_call_reset(&call);
    return code;
}

static int run_member_update(struct ctl *ctl)
{
    uint64_t id;
    int code = member_id_arg(ctl, &id);
    if (code)
        return code;
    if (!*ctl_flag_str(&ctl->fs, "peer-urls"))
        return ctl_fail(CTL_EXIT_BAD_ARGS, "member peer urls not provided");
    struct url_list urls;
    struct cl_sync *s;
    if ((code = peer_urls_arg(ctl, &urls, &s))) {
        url_list_free(&urls);
        return code;
    }
    Etcdserverpb__MemberUpdateRequest req = ETCDSERVERPB__MEMBER_UPDATE_REQUEST__INIT;
    req.id = id;
    req.peerurls = urls.v;
    req.n_peerurls = urls.n;
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &method_member_update, &req.base) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, member_update, id,
                         (const Etcdserverpb__MemberUpdateResponse *)call.response);
    cl_call_reset(&call);
    url_list_free(&urls);
    return code;
}

static int run_member_promote(struct ctl *ctl)
{
    uint64_t id;
    int code = member_id_arg(ctl, &id);
    if (code)
        return code;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    Etcdserverpb__MemberPromoteRequest req = ETCDSERVERPB__MEMBER_PROMOTE_REQUEST__INIT;
    req.id = id;
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &method_member_promote, &req.base) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, member_promote, id,
                         (const Etcdserverpb__MemberPromoteResponse *)call.response);
    cl_call_reset(&call);
    return code;
}

static const struct ctl_command cmd_member_add = {
    .name = "add",
    .use = "<memberName> [options]",
    .summary = "Adds a member to the cluster",
    .description = "With --write-out simple, the line about the new member is followed by the "
                   "environment it is\nstarted with: CAIRN_NAME, CAIRN_INITIAL_CLUSTER, "
                   "CAIRN_INITIAL_ADVERTISE_PEER_URLS and\nCAIRN_INITIAL_CLUSTER_STATE (cairnd "
                   "reads them as its flags).\n",
    .flags = add_flags,
    .n_flags = sizeof add_flags / sizeof add_flags[0],
    .run = run_member_add,
};

static const struct ctl_command cmd_member_list = {
    .name = "list",
    .use = "",
    .summary = "Lists the members of the cluster",
    .description = "With --write-out simple, one comma-separated line per member: ID, Status, "
                   "Name, Peer Addrs,\nClient Addrs, Is Learner.\n",
    .run = run_member_list,
};

static const struct ctl_command cmd_member_promote = {
    .name = "promote",
    .use = "<memberID>",
    .summary = "Makes a learner a voting member",
    .description = "The learner must have caught up with the leader's log first.\n",
    .run = run_member_promote,
};

static const struct ctl_command cmd_member_remove = {
    .name = "remove",
    .use = "<memberID>",
    .summary = "Removes a member from the cluster",
    .run = run_member_remove,
};

static const struct ctl_command cmd_member_update = {
    .name = "update",
    .use = "<memberID> [options]",
    .summary = "Changes a member's peer URLs",
    .flags = update_flags,
    .n_flags = sizeof update_flags / sizeof update_flags[0],
    .run = run_member_update,
};

static const struct ctl_command *const member_subs[] = {
    &cmd_member_add, &cmd_member_list, &cmd_member_promote, &cmd_member_remove, &cmd_member_update,
};

const struct ctl_command ctl_cmd_member = {
    .name = "member",
    .use = "<subcommand>",
    .summary = "Commands about cluster membership",
    .subs = member_subs,
    .n_subs = sizeof member_subs / sizeof member_subs[0],
};
