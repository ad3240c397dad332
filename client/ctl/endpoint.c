/* client/ctl/endpoint.c — `endpoint health|status|hashkv [--cluster]`: each endpoint asked on its
 * own (ctlv3/command/ep_command.go). With --cluster the endpoints are every member's client
 * URLs from Cluster.MemberList.
 *
 * health reads the key "health" from every endpoint at once (one client per endpoint on one
 * loop) and lists the answers in the order they came, as etcdctl's goroutines do; status and
 * hashkv ask one endpoint after the other. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/ctl/printer.h"
#include "client/ctl/text.h"

static const struct ctl_flag_spec endpoint_pflags[] = {
    {"cluster", 0, CTL_FLAG_BOOL, "false", "Ask every member's client URLs from the member list"},
};

static const struct ctl_flag_spec hashkv_flags[] = {
    {"rev", 0, CTL_FLAG_INT64, "0", "Hash the history up to this revision (0: all of it)"},
};

/* The endpoints to ask: --endpoints, or with --cluster the member list's client URLs. */
struct ep_list {
    char **v; /* malloc'd strings */
    size_t n;
};

static void ep_list_free(struct ep_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    *l = (struct ep_list){0};
}

static int ep_push(struct ep_list *l, const char *s)
{
    char **v = realloc(l->v, (l->n + 1) * sizeof *v);
    if (!v)
        return -1;
    l->v = v;
    if (!(l->v[l->n] = strdup(s)))
        return -1;
    l->n++;
    return 0;
}

/* Returns 0 with *l filled, or an exit code after printing the error. */
static int endpoints_to_ask(struct ctl *ctl, struct ep_list *l)
{
    *l = (struct ep_list){0};
    if (!ctl_flag_bool(&ctl->fs, "cluster")) {
        for (size_t i = 0; i < ctl->n_endpoints; i++) {
            if (ep_push(l, ctl->endpoints[i]) < 0)
                return ctl_fail(CTL_EXIT_ERROR, "out of memory");
        }
        return 0;
    }
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    Etcdserverpb__MemberListRequest req = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &cl_method_member_list, &req.base) != GRPC_OK) {
        char *text = ctl_call_error(&call);
        code = ctl_fail(CTL_EXIT_ERROR,
                        "failed to fetch endpoints from etcd cluster member list: %s", text);
        free(text);
    } else {
        const Etcdserverpb__MemberListResponse *r = (const void *)call.response;
        for (size_t i = 0; i < r->n_members && !code; i++) {
            for (size_t j = 0; j < r->members[i]->n_clienturls && !code; j++) {
                if (ep_push(l, r->members[i]->clienturls[j]) < 0)
                    code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
            }
        }
    }
    cl_call_reset(&call);
    return code;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---------------------------------------------------------------------------------------------- */
/* health */

struct probe {
    struct cl_call call;       /* the read */
    struct cl_client *client;  /* this endpoint's own client, or NULL */
    const char *ep;            /* borrowed from the list */
    uint64_t start;            /* now_ns() before the read */
    struct ctl_ep_health *out; /* the results, in completion order */
    size_t *n_out;             /* entries filled */
    bool closed;               /* client closed */
};

static char *duration_text(uint64_t ns)
{
    struct ctl_buf b = {0};
    ctl_go_duration(&b, (int64_t)ns);
    return ctl_buf_take(&b);
}

static void probe_record(struct probe *p, bool ok, char *error)
{
    struct ctl_ep_health *h = &p->out[(*p->n_out)++];
    h->ep = p->ep;
    h->health = ok;
    h->took = duration_text(now_ns() - p->start);
    h->error = error;
}

static void on_probe(struct cl_call *call)
{
    struct probe *p = call->data;
    /* a permission error still went through consensus: healthy, as etcdctl counts it */
    bool ok = call->code == GRPC_OK ||
              (call->message && strcmp(call->message, "etcdserver: permission denied") == 0);
    probe_record(p, ok, ok ? NULL : ctl_call_error(call));
}

static void on_probe_closed(void *arg)
{
    ((struct probe *)arg)->closed = true;
}

static int run_health(struct ctl *ctl)
{
    struct ep_list eps;
    int code = endpoints_to_ask(ctl, &eps);
    if (code) {
        ep_list_free(&eps);
        return code;
    }
    struct probe *probes = calloc(eps.n ? eps.n : 1, sizeof *probes);
    struct ctl_ep_health *out = calloc(eps.n ? eps.n : 1, sizeof *out);
    uv_loop_t loop;
    if (!probes || !out || uv_loop_init(&loop) != 0) {
        free(probes);
        free(out);
        ep_list_free(&eps);
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    }
    size_t n_out = 0, started = 0;
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = (ProtobufCBinaryData){6, (uint8_t *)"health"};
    for (size_t i = 0; i < eps.n; i++) {
        struct probe *p = &probes[i];
        *p = (struct probe){.ep = eps.v[i], .out = out, .n_out = &n_out, .closed = true};
        p->start = now_ns();
        struct cl_options o;
        const char *one[1] = {eps.v[i]};
        ctl_client_options(ctl, one, 1, &o);
        if (cl_client_new(&loop, &o, &p->client) != 0) {
            p->client = NULL;
            probe_record(p, false,
                         strdup("invalid endpoint (expected host:port or "
                                "http://host:port)"));
            continue;
        }
        p->closed = false;
        p->call.cb = on_probe;
        p->call.data = p;
        if (ctl->command_timeout_ns <= 0) {
            ctl_call_expired(&p->call);
            on_probe(&p->call);
            continue;
        }
        p->call.timeout_ms = ((uint64_t)ctl->command_timeout_ns + 999999u) / 1000000u;
        if (cl_range(p->client, &p->call, &req) != 0) {
            probe_record(p, false, strdup("cairn: the request could not be started"));
            continue;
        }
        started++;
    }
    while (n_out < eps.n && uv_run(&loop, UV_RUN_ONCE))
        ;
    for (size_t i = 0; i < eps.n; i++) {
        cl_call_reset(&probes[i].call);
        if (probes[i].client)
            cl_client_close(probes[i].client, on_probe_closed, &probes[i]);
    }
    for (;;) {
        bool all = true;
        for (size_t i = 0; i < eps.n; i++)
            all = all && probes[i].closed;
        if (all || !uv_run(&loop, UV_RUN_ONCE))
            break;
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    uv_loop_close(&loop);
    (void)started;

    bool errs = false;
    for (size_t i = 0; i < n_out; i++)
        errs = errs || out[i].error;
    code = CTL_PRINT(ctl, ep_health, out, n_out);
    if (code == 0 && errs)
        code = ctl_fail(CTL_EXIT_ERROR, "unhealthy cluster");
    for (size_t i = 0; i < n_out; i++) {
        free(out[i].took);
        free(out[i].error);
    }
    free(out);
    free(probes);
    ep_list_free(&eps);
    return code;
}

/* ---------------------------------------------------------------------------------------------- */
/* status and hashkv: one endpoint after the other */

/* Runs method m with req on endpoint ep alone (etcdctl dials each endpoint by itself). Returns
 * call->code; the response, if any, is the call's. */
static int ask_one(const struct ctl *ctl, const char *ep, struct cl_call *call,
                   const struct cl_method *m, const ProtobufCMessage *req)
{
    struct cl_options o;
    const char *one[1] = {ep};
    ctl_client_options(ctl, one, 1, &o);
    struct cl_sync *s;
    if (cl_sync_new(&o, &s) != 0) {
        call->code = GRPC_INVALID_ARGUMENT;
        free(call->message);
        call->message = strdup("invalid endpoint (expected host:port or http://host:port)");
        return call->code;
    }
    int code = ctl_call(ctl, s, call, m, req);
    cl_sync_free(s);
    return code;
}

/* Runs m with req on every endpoint of eps in turn, into calls[i] (eps->n of them). A failure is
 * printed as etcdctl prints it, "Failed to get the <what> of endpoint <ep> (<error>)". Returns the
 * last failure's text (malloc'd, the caller frees it), or NULL when every call succeeded. */
static char *ask_each(const struct ctl *ctl, const struct ep_list *eps, const struct cl_method *m,
                      const ProtobufCMessage *req, const char *what, struct cl_call *calls)
{
    char *last_err = NULL;
    for (size_t i = 0; i < eps->n; i++) {
        if (ask_one(ctl, eps->v[i], &calls[i], m, req) == GRPC_OK)
            continue;
        free(last_err);
        last_err = ctl_call_error(&calls[i]);
        fflush(stdout);
        fprintf(stderr, "Failed to get the %s of endpoint %s (%s)\n", what, eps->v[i], last_err);
    }
    return last_err;
}

static void reset_calls(struct cl_call *calls, size_t n)
{
    for (size_t i = 0; i < n; i++)
        cl_call_reset(&calls[i]);
    free(calls);
}

static int run_status(struct ctl *ctl)
{
    struct ep_list eps;
    int code = endpoints_to_ask(ctl, &eps);
    struct cl_call *calls = code ? NULL : calloc(eps.n ? eps.n : 1, sizeof *calls);
    struct ctl_ep_status *list = code ? NULL : calloc(eps.n ? eps.n : 1, sizeof *list);
    if (!code && (!calls || !list))
        code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
    if (!code) {
        Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
        char *err = ask_each(ctl, &eps, &cl_method_status, &req.base, "status", calls);
        size_t n = 0;
        for (size_t i = 0; i < eps.n; i++)
            if (calls[i].code == GRPC_OK)
                list[n++] = (struct ctl_ep_status){
                    eps.v[i], (const Etcdserverpb__StatusResponse *)calls[i].response};
        code = CTL_PRINT(ctl, ep_status, list, n);
        if (code == 0 && err)
            code = CTL_EXIT_ERROR; /* etcdctl: the failures above, then exit 1 */
        free(err);
    }
    if (calls)
        reset_calls(calls, eps.n);
    free(list);
    ep_list_free(&eps);
    return code;
}

static int run_hashkv(struct ctl *ctl)
{
    struct ep_list eps;
    int code = endpoints_to_ask(ctl, &eps);
    struct cl_call *calls = code ? NULL : calloc(eps.n ? eps.n : 1, sizeof *calls);
    struct ctl_ep_hash *list = code ? NULL : calloc(eps.n ? eps.n : 1, sizeof *list);
    if (!code && (!calls || !list))
        code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
    if (!code) {
        Etcdserverpb__HashKVRequest req = ETCDSERVERPB__HASH_KVREQUEST__INIT;
        req.revision = ctl_flag_int(&ctl->fs, "rev");
        char *err = ask_each(ctl, &eps, &cl_method_hash_kv, &req.base, "hash", calls);
        size_t n = 0;
        for (size_t i = 0; i < eps.n; i++)
            if (calls[i].code == GRPC_OK)
                list[n++] = (struct ctl_ep_hash){
                    eps.v[i], (const Etcdserverpb__HashKVResponse *)calls[i].response};
        code = CTL_PRINT(ctl, ep_hashkv, list, n);
        if (code == 0 && err)
            code = ctl_fail(CTL_EXIT_ERROR, "%s", err); /* etcdctl: and "Error: <last>" */
        free(err);
    }
    if (calls)
        reset_calls(calls, eps.n);
    free(list);
    ep_list_free(&eps);
    return code;
}

static const struct ctl_command cmd_health = {
    .name = "health",
    .use = "",
    .summary = "Checks that each endpoint of `--endpoints` serves a linearizable read",
    .run = run_health,
};

static const struct ctl_command cmd_status = {
    .name = "status",
    .use = "",
    .summary = "Prints the status of each endpoint of `--endpoints`",
    .description = "With --write-out simple, one comma-separated line per endpoint: endpoint, "
                   "ID, version, db size,\nis leader, is learner, raft term, raft index, raft "
                   "applied index, errors.\n",
    .run = run_status,
};

static const struct ctl_command cmd_hashkv = {
    .name = "hashkv",
    .use = "",
    .summary = "Prints the hash of the key-value history of each endpoint of --endpoints",
    .pflags = hashkv_flags,
    .n_pflags = sizeof hashkv_flags / sizeof hashkv_flags[0],
    .run = run_hashkv,
};

static const struct ctl_command *const endpoint_subs[] = {&cmd_hashkv, &cmd_health, &cmd_status};

const struct ctl_command ctl_cmd_endpoint = {
    .name = "endpoint",
    .use = "<subcommand>",
    .summary = "Commands about endpoints",
    .pflags = endpoint_pflags,
    .n_pflags = sizeof endpoint_pflags / sizeof endpoint_pflags[0],
    .subs = endpoint_subs,
    .n_subs = sizeof endpoint_subs / sizeof endpoint_subs[0],
};
