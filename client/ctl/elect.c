/* client/ctl/elect.c — `elect <election-name> [proposal]`: etcdctl 3.4's leader election
 * (ctlv3/command/elect_command.go on clientv3/concurrency's Election).
 *
 * Campaign (a proposal given): a session (a lease of 60 s, kept alive) puts its key
 * "<election-name>/<lease hex>" with the proposal as value and waits until every key created
 * before it under the prefix is deleted; elected, it prints its key and value (as `get` prints
 * them, in the chosen format) and holds them until SIGINT or SIGTERM, then resigns (deletes its
 * key if it still has the revision it was created with) and exits 0. A signal while waiting is
 * "Error: context canceled" (exit 1, the key deleted).
 * Observe (-l): prints the leader — the first key under the prefix by create revision — and each
 * later value of it, then the next leader when it is deleted, and so on until a signal (exit 0);
 * a watch that ends otherwise is "Error: elect: observer lost". It makes a session too, as
 * etcdctl does, though nothing uses it. As in etcdctl, the session's lease is never revoked. */
#include <stdlib.h>
#include <string.h>

#include "client/ctl/concurrency.h"
#include "client/ctl/printer.h"

static const struct ctl_flag_spec elect_flags[] = {
    {"listen", 'l', CTL_FLAG_BOOL, "false", "observation mode"},
};

/* A txn of one compare "create_revision(key) == rev" and one op on success (and, with els, one on
 * failure), under the context or not. Returns call->code with the response in call. */
static int create_rev_txn(struct ctl_cc *cc, struct cl_call *call, const char *key, int64_t rev,
                          Etcdserverpb__RequestOp *then, Etcdserverpb__RequestOp *els,
                          bool cancellable)
{
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp.key.data = (uint8_t *)key;
    cmp.key.len = strlen(key);
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    cmp.create_revision = rev;
    Etcdserverpb__Compare *cmps[1] = {&cmp};
    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    txn.n_compare = 1;
    txn.compare = cmps;
    txn.n_success = 1;
    txn.success = &then;
    txn.n_failure = els ? 1 : 0;
    txn.failure = els ? &els : NULL;
    return ctl_cc_call(cc, call, &cl_method_txn, &txn.base, cancellable);
}

/* ---------------------------------------------------------------------------------------------- */
/* Campaign */

struct campaign {
    const char *pfx; /* "<election-name>/" */
    char *key;       /* the session's key (malloc'd) */
    int64_t rev;     /* its create revision */
    bool leader;     /* the key is ours to resign */
};

/* Election.Resign: deletes the key if it has the revision it was created with; not under the
 * context. Returns 0, or -1 with *err (malloc'd). */
static int resign(struct ctl_cc *cc, struct campaign *e, char **err)
{
    if (!e->leader)
        return 0;
    Etcdserverpb__DeleteRangeRequest del = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    del.key.data = (uint8_t *)e->key;
    del.key.len = strlen(e->key);
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
    op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
    op.request_delete_range = &del;
    struct cl_call call = {0};
    int rc = 0;
    if (create_rev_txn(cc, &call, e->key, e->rev, &op, NULL, false) != GRPC_OK) {
        *err = ctl_call_error(&call);
        rc = -1;
    }
    cl_call_reset(&call);
    e->leader = false;
    return rc;
}

/* Election.Campaign: puts the proposal under the session's key (unless the key is there) and
 * waits for the deletes before it. Returns 0, or -1 with *err (malloc'd). */
static int campaign(struct ctl_cc *cc, struct campaign *e, const char *prop, char **err)
{
    if (!(e->key = ctl_cc_key(e->pfx, cc->lease))) {
        *err = strdup("out of memory");
        return -1;
    }
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key.data = (uint8_t *)e->key;
    put.key.len = strlen(e->key);
    put.value.data = (uint8_t *)prop;
    put.value.len = strlen(prop);
    put.lease = cc->lease;
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
    get.key = put.key;
    Etcdserverpb__RequestOp then = ETCDSERVERPB__REQUEST_OP__INIT, els = then;
    then.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    then.request_put = &put;
    els.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    els.request_range = &get;
    struct cl_call call = {0};
    if (create_rev_txn(cc, &call, e->key, 0, &then, &els, true) != GRPC_OK) {
        *err = ctl_call_error(&call);
        cl_call_reset(&call);
        return -1;
    }
    const Etcdserverpb__TxnResponse *r = (const Etcdserverpb__TxnResponse *)call.response;
    const Etcdserverpb__RangeResponse *mine =
        r->n_responses == 1 &&
                r->responses[0]->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE
            ? r->responses[0]->response_range
            : NULL;
    if (!r->header || (!r->succeeded && (!mine || mine->n_kvs == 0))) {
        cl_call_reset(&call);
        *err = strdup("cairn: unexpected txn response");
        return -1;
    }
    /* The key carries this run's new lease, so it never exists before the txn: etcd's Proclaim
     * of a different value over a key of the same session cannot be needed here. */
    e->rev = r->succeeded ? r->header->revision : mine->kvs[0]->create_revision;
    e->leader = true;
    cl_call_reset(&call);
    if (ctl_cc_wait_deletes(cc, e->pfx, e->rev - 1, NULL, err) == 0)
        return 0;
    if (cc->interrupted) { /* cancelled: the recipe cleans up; otherwise it only forgets */
        char *resign_err = NULL;
        resign(cc, e, &resign_err);
        free(resign_err);
    }
    e->leader = false;
    return -1;
}

/* etcdctl's campaign. Returns the exit code, after printing the error. */
static int run_campaign(struct ctl_cc *cc, const char *pfx, const char *prop)
{
    char *err = NULL;
    int code = CTL_EXIT_SUCCESS;
    struct campaign e = {.pfx = pfx};
    if (ctl_cc_session(cc, 0, &err) < 0)
        goto fail;
    if (ctl_cc_catch_signals(cc)) {
        err = strdup("cairn: cannot catch signals");
        goto fail;
    }
    if (campaign(cc, &e, prop, &err) < 0)
        goto fail;
    int held = ctl_cc_show_and_hold(cc, e.key, NULL, "elect: session expired", &err);
    if (held < 0)
        goto fail;
    if ((code = held))
        goto out;
    if (resign(cc, &e, &err) < 0)
        goto fail;
    goto out;
fail:
    code = ctl_fail(CTL_EXIT_ERROR, "%s", err ? err : "out of memory");
out:
    free(err);
    free(e.key);
    return code;
}

/* ---------------------------------------------------------------------------------------------- */
/* Observe */

/* Election.observe's state between responses. */
struct observer {
    struct ctl_cc *cc;
    int64_t count;        /* count and more of the last read of the leader: later values of the */
    bool more;            /* leader are printed with them, as clientv3 reuses that response */
    struct ctl_bytes key; /* the leader's key */
    int64_t rev;          /* the revision its value was seen at */
    bool found;           /* a first put under the prefix was seen */
    bool deleted;         /* the leader's key was deleted */
    bool ended;           /* the watch's last response came */
    int code;             /* a printer's exit code, or 0 */
};

/* Prints one leader value as display.Get prints a GetResponse of that one key. */
static int print_leader(struct observer *ob, const Etcdserverpb__ResponseHeader *h,
                        Mvccpb__KeyValue *kv, int64_t count, bool more)
{
    Etcdserverpb__RangeResponse r = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader hdr = *h;
    Mvccpb__KeyValue *kvs[1] = {kv};
    r.header = &hdr;
    r.n_kvs = 1;
    r.kvs = kvs;
    r.count = count;
    r.more = more;
    return CTL_PRINT(ob->cc->ctl, get, &r);
}

/* No leader yet: the first put under the prefix is the leader, seen at its own revision. */
static void on_first_put(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    struct observer *ob = w->data;
    if (resp->canceled) {
        ob->ended = true;
        return;
    }
    for (size_t i = 0; i < resp->n_events && !ob->found && !ob->code; i++) {
        const Mvccpb__Event *ev = resp->events[i];
        if (ev->type != MVCCPB__EVENT__EVENT_TYPE__PUT || !ev->kv)
            continue;
        Etcdserverpb__ResponseHeader h = *resp->header;
        h.revision = ev->kv->mod_revision;
        ob->code = print_leader(ob, &h, ev->kv, 0, false);
        ob->found = true;
        ob->rev = ev->kv->mod_revision;
        if (ctl_bytes_set(&ob->key, ev->kv->key.data, ev->kv->key.len) < 0 && !ob->code)
            ob->code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
        cl_watch_cancel(w);
    }
}

/* The leader's key: each new value is printed, its delete ends the watch. */
static void on_leader_event(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    struct observer *ob = w->data;
    if (resp->canceled) {
        ob->ended = true;
        return;
    }
    for (size_t i = 0; i < resp->n_events && !ob->deleted && !ob->code; i++) {
        const Mvccpb__Event *ev = resp->events[i];
        if (ev->type == MVCCPB__EVENT__EVENT_TYPE__DELETE) {
            ob->deleted = true;
            cl_watch_cancel(w);
        } else if (ev->kv) {
            ob->code = print_leader(ob, resp->header, ev->kv, ob->count, ob->more);
        }
    }
    if (ob->code)
        cl_watch_cancel(w);
}

/* Runs one watch of ob under the context until its last response. Returns 0, or -1 when it could
 * not start. */
static int observe_watch(struct observer *ob, const struct cl_watch_options *o, cl_watch_cb cb)
{
    struct ctl_cc *cc = ob->cc;
    struct cl_watcher *wr = ctl_cc_watcher(cc);
    if (cc->interrupted || !wr)
        return -1;
    struct cl_watch w = {.cb = cb, .data = ob};
    ob->ended = false;
    if (cl_watch_start(wr, &w, o))
        return -1;
    cc->watch = &w;
    ctl_cc_run_until(cc, &ob->ended);
    cc->watch = NULL;
    cl_watch_reset(&w);
    return 0;
}

/* Election.observe until it ends (a failed read, a watch that ended, a signal). Returns 0, or a
 * printer's exit code. */
static int observe_loop(struct observer *ob, const char *pfx)
{
    struct ctl_cc *cc = ob->cc;
    for (;;) {
        Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
        struct ctl_bytes end = {0};
        if (ctl_cc_top_request(&req, pfx, true, &end) < 0)
            return ctl_fail(CTL_EXIT_ERROR, "out of memory");
        struct cl_call call = {0};
        int rc = ctl_cc_call(cc, &call, &cl_method_range, &req.base, true);
        const Etcdserverpb__RangeResponse *r = (const Etcdserverpb__RangeResponse *)call.response;
        if (rc != GRPC_OK || !r->header) {
            ctl_bytes_free(&end);
            cl_call_reset(&call);
            return 0;
        }
        ob->count = r->count;
        ob->more = r->more;
        ob->found = ob->deleted = false;
        ctl_bytes_free(&ob->key);
        if (r->n_kvs == 0) {
            struct cl_watch_options o = {.key = req.key.data,
                                         .key_len = req.key.len,
                                         .range_end = req.range_end.data,
                                         .range_end_len = req.range_end.len,
                                         .start_revision = r->header->revision};
            rc = observe_watch(ob, &o, on_first_put);
            ctl_bytes_free(&end);
            cl_call_reset(&call);
            if (ob->code || rc < 0 || !ob->found)
                return ob->code;
        } else {
            ctl_bytes_free(&end);
            ob->code = print_leader(ob, r->header, r->kvs[0], 0, false);
            ob->rev = r->header->revision;
            if (!ob->code && ctl_bytes_set(&ob->key, r->kvs[0]->key.data, r->kvs[0]->key.len) < 0)
                ob->code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
            cl_call_reset(&call);
            if (ob->code)
                return ob->code;
        }
        struct cl_watch_options o = {
            .key = ob->key.data, .key_len = ob->key.len, .start_revision = ob->rev + 1};
        rc = observe_watch(ob, &o, on_leader_event);
        if (ob->code || rc < 0 || !ob->deleted)
            return ob->code;
    }
}

/* etcdctl's observe. Returns the exit code, after printing the error. */
static int run_observe(struct ctl_cc *cc, const char *pfx)
{
    char *err = NULL;
    int rc = ctl_cc_session(cc, 0, &err);
    if (rc == 0 && ctl_cc_catch_signals(cc)) {
        rc = -1;
        err = strdup("cairn: cannot catch signals");
    }
    if (rc < 0) {
        int code = ctl_fail(CTL_EXIT_ERROR, "%s", err ? err : "out of memory");
        free(err);
        return code;
    }
    struct observer ob = {.cc = cc};
    int code = observe_loop(&ob, pfx);
    ctl_bytes_free(&ob.key);
    if (code)
        return code;
    if (!cc->interrupted)
        return ctl_fail(CTL_EXIT_ERROR, "elect: observer lost");
    return CTL_EXIT_SUCCESS;
}

/* ---------------------------------------------------------------------------------------------- */
/* The command */

static int run_elect(struct ctl *ctl)
{
    if (ctl->n_args != 1 && ctl->n_args != 2)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "elect takes one election name argument and an "
                                           "optional proposal argument");
    bool listen = ctl_flag_bool(&ctl->fs, "listen");
    if (ctl->n_args == 1 && !listen)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "no proposal argument but -l not set");
    if (ctl->n_args == 2 && listen)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "proposal given but -l is set");
    struct ctl_buf b = {0};
    ctl_buf_printf(&b, "%s/", ctl->args[0]);
    char *pfx = ctl_buf_take(&b);
    if (!pfx)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    struct ctl_cc cc;
    int code = ctl_cc_init(&cc, ctl);
    if (!code)
        code = listen ? run_observe(&cc, pfx) : run_campaign(&cc, pfx, ctl->args[1]);
    ctl_cc_close(&cc);
    free(pfx);
    return code;
}

const struct ctl_command ctl_cmd_elect = {
    .name = "elect",
    .use = "<election-name> [proposal]",
    .summary = "Observes and participates in leader election",
    .flags = elect_flags,
    .n_flags = sizeof elect_flags / sizeof elect_flags[0],
    .run = run_elect,
};
