/* client/ctl/concurrency.c — the session, cancellable calls and waits `lock` and `elect` are made
 * of (see concurrency.h). */
#include "client/ctl/concurrency.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/printer.h"
#include "client/ctl/text.h"

int ctl_cc_init(struct ctl_cc *cc, struct ctl *ctl)
{
    memset(cc, 0, sizeof *cc);
    cc->ctl = ctl;
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    cc->c = cl_sync_client(s);
    cc->loop = cl_client_loop(cc->c);
    return 0;
}

static void on_signal_closed(uv_handle_t *h)
{
    (void)h;
}

void ctl_cc_close(struct ctl_cc *cc)
{
    if (!cc->loop)
        return;
    if (cc->lr) {
        cl_lessor_close(cc->lr); /* the keep-alive's last callback; the lease is left to expire */
        if (cc->ka_started)
            ctl_cc_run_until(cc, &cc->ka.ended);
        cl_keepalive_reset(&cc->ka);
        cc->lr = NULL;
    }
    if (cc->wr) {
        cl_watcher_close(cc->wr);
        cc->wr = NULL;
    }
    if (cc->sig_on) {
        for (size_t i = 0; i < 2; i++)
            uv_close((uv_handle_t *)&cc->sig[i], on_signal_closed);
        cc->sig_on = false;
    }
    uv_run(cc->loop, UV_RUN_NOWAIT);
}

void ctl_cc_run_until(struct ctl_cc *cc, const bool *flag)
{
    while (!*flag && uv_run(cc->loop, UV_RUN_ONCE))
        ;
}

/* ---------------------------------------------------------------------------------------------- */
/* Calls */

static void on_call_done(struct cl_call *call)
{
    *(bool *)call->data = true;
}

static void fail_call(struct cl_call *call, int code, const char *message)
{
    call->code = code;
    free(call->message);
    call->message = strdup(message);
}

int ctl_cc_call(struct ctl_cc *cc, struct cl_call *call, const struct cl_method *m,
                const ProtobufCMessage *req, bool cancellable)
{
    call->timeout_ms = 0;
    if (cancellable && cc->interrupted) { /* a Go call under a cancelled context */
        fail_call(call, GRPC_CANCELLED, "context canceled");
        return call->code;
    }
    bool done = false;
    call->cb = on_call_done;
    call->data = &done;
    int err = cl_call_start(cc->c, call, m, req);
    if (err) {
        fail_call(call, GRPC_INTERNAL, "cairn: the request could not be started");
        return call->code;
    }
    if (cancellable)
        cc->call = call;
    ctl_cc_run_until(cc, &done);
    cc->call = NULL;
    if (!done) /* cannot happen: a started call keeps a handle active until it ends */
        fail_call(call, GRPC_INTERNAL, "cairn: the call did not end");
    return call->code;
}

Etcdserverpb__ResponseHeader *ctl_cc_header_dup(const Etcdserverpb__ResponseHeader *h)
{
    if (!h)
        return NULL;
    size_t n = protobuf_c_message_get_packed_size(&h->base);
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return NULL;
    protobuf_c_message_pack(&h->base, p);
    Etcdserverpb__ResponseHeader *copy = etcdserverpb__response_header__unpack(NULL, n, p);
    free(p);
    return copy;
}

/* ---------------------------------------------------------------------------------------------- */
/* The session */

static void on_keepalive(struct cl_keepalive *k, const Etcdserverpb__LeaseKeepAliveResponse *resp)
{
    (void)k; /* k->ended is what ctl_cc_session_done reads */
    (void)resp;
}

int ctl_cc_session(struct ctl_cc *cc, int64_t ttl, char **err)
{
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    req.ttl = ttl > 0 ? ttl : 60; /* concurrency.WithTTL ignores a TTL <= 0 */
    struct cl_call call = {0};
    if (ctl_cc_call(cc, &call, &cl_method_lease_grant, &req.base, false) != GRPC_OK) {
        *err = ctl_call_error(&call);
        cl_call_reset(&call);
        return -1;
    }
    cc->lease = ((const Etcdserverpb__LeaseGrantResponse *)call.response)->id;
    cl_call_reset(&call);
    cc->ka.cb = on_keepalive;
    cc->ka.data = cc;
    if (cl_lessor_new(cc->c, &cc->lr) || cl_keepalive_start(cc->lr, &cc->ka, cc->lease, false)) {
        *err = strdup("cairn: cannot keep the session's lease alive");
        return -1;
    }
    cc->ka_started = true;
    return 0;
}

bool ctl_cc_session_done(const struct ctl_cc *cc)
{
    return cc->ka_started && cc->ka.ended;
}

/* ---------------------------------------------------------------------------------------------- */
/* Signals */

/* The cancel of etcdctl's context: what runs under it ends now, and everything after fails. Later
 * signals change nothing (etcdctl takes one from its channel and keeps catching the rest). */
static void on_signal(uv_signal_t *h, int signum)
{
    (void)signum;
    struct ctl_cc *cc = h->data;
    if (cc->interrupted)
        return;
    cc->interrupted = true;
    if (cc->call)
        cl_call_cancel(cc->call);
    if (cc->watch)
        cl_watch_cancel(cc->watch);
}

int ctl_cc_catch_signals(struct ctl_cc *cc)
{
    static const int signums[2] = {SIGINT, SIGTERM};
    for (size_t i = 0; i < 2; i++) {
        int err = uv_signal_init(cc->loop, &cc->sig[i]);
        if (err) {
            if (i)
                uv_close((uv_handle_t *)&cc->sig[0], on_signal_closed);
            return err;
        }
        cc->sig[i].data = cc;
    }
    cc->sig_on = true;
    for (size_t i = 0; i < 2; i++) {
        int err = uv_signal_start(&cc->sig[i], on_signal, signums[i]);
        if (err)
            return err;
    }
    return 0;
}

bool ctl_cc_hold(struct ctl_cc *cc)
{
    while (!cc->interrupted && !ctl_cc_session_done(cc) && uv_run(cc->loop, UV_RUN_ONCE))
        ;
    return cc->interrupted;
}

/* ---------------------------------------------------------------------------------------------- */
/* Keys and ranges */

char *ctl_cc_key(const char *pfx, int64_t lease)
{
    struct ctl_buf b = {0};
    ctl_buf_puts(&b, pfx);
    if (lease < 0)
        ctl_buf_printf(&b, "-%llx", (unsigned long long)(-(uint64_t)lease));
    else
        ctl_buf_printf(&b, "%llx", (unsigned long long)lease);
    return ctl_buf_take(&b);
}

int ctl_cc_top_request(Etcdserverpb__RangeRequest *req, const char *pfx, bool first,
                       struct ctl_bytes *end)
{
    size_t len = strlen(pfx);
    if (ctl_prefix_end((const uint8_t *)pfx, len, end) < 0)
        return -1;
    static uint8_t zero[1] = {0};
    req->key.data = (uint8_t *)pfx;
    req->key.len = len;
    req->range_end.data = end->data ? end->data : zero;
    req->range_end.len = end->data ? end->len : 1;
    req->sort_target = ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE;
    req->sort_order = first ? ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND
                            : ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    req->limit = 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Waiting for deletes */

struct delete_wait {
    struct ctl_cc *cc;
    bool deleted; /* a DELETE event came */
    bool ended;   /* the watch's last response came */
};

static void on_delete_watch(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    struct delete_wait *d = w->data;
    if (resp->canceled) {
        d->ended = true;
        return;
    }
    for (size_t i = 0; i < resp->n_events && !d->deleted; i++) {
        if (resp->events[i]->type == MVCCPB__EVENT__EVENT_TYPE__DELETE) {
            d->deleted = true;
            cl_watch_cancel(w);
        }
    }
}

struct cl_watcher *ctl_cc_watcher(struct ctl_cc *cc)
{
    if (!cc->wr && cl_watcher_new(cc->c, false, &cc->wr))
        cc->wr = NULL;
    return cc->wr;
}

/* concurrency's waitDelete: watches key (len bytes) from rev until it is deleted. Returns 0, or
 * -1 with *err (malloc'd). */
static int wait_delete(struct ctl_cc *cc, const uint8_t *key, size_t len, int64_t rev, char **err)
{
    struct cl_watcher *wr = ctl_cc_watcher(cc);
    if (cc->interrupted || !wr) {
        *err = strdup(wr ? "context canceled" : "out of memory");
        return -1;
    }
    struct delete_wait d = {.cc = cc};
    struct cl_watch w = {.cb = on_delete_watch, .data = &d};
    struct cl_watch_options o = {.key = key, .key_len = len, .start_revision = rev};
    if (cl_watch_start(wr, &w, &o)) {
        *err = strdup("cairn: cannot start the watch");
        return -1;
    }
    cc->watch = &w;
    ctl_cc_run_until(cc, &d.ended);
    cc->watch = NULL;
    int rc = 0;
    if (!d.deleted) {
        /* a cancelled context is "context canceled" whatever the watch's last words were */
        if (cc->interrupted)
            *err = strdup("context canceled");
        else if (w.message)
            *err = strdup(w.message);
        else
            *err = strdup("lost watcher waiting for delete");
        rc = -1;
    }
    cl_watch_reset(&w);
    return rc;
}

int ctl_cc_wait_deletes(struct ctl_cc *cc, const char *pfx, int64_t max_create_rev,
                        Etcdserverpb__ResponseHeader **hdr, char **err)
{
    for (;;) {
        Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
        struct ctl_bytes end = {0};
        if (ctl_cc_top_request(&req, pfx, false, &end) < 0) {
            *err = strdup("out of memory");
            return -1;
        }
        req.max_create_revision = max_create_rev;
        struct cl_call call = {0};
        int rc = ctl_cc_call(cc, &call, &cl_method_range, &req.base, true);
        ctl_bytes_free(&end);
        if (rc != GRPC_OK) {
            *err = ctl_call_error(&call);
            cl_call_reset(&call);
            return -1;
        }
        const Etcdserverpb__RangeResponse *r = (const Etcdserverpb__RangeResponse *)call.response;
        if (r->n_kvs == 0) {
            if (hdr)
                *hdr = ctl_cc_header_dup(r->header);
            cl_call_reset(&call);
            return 0;
        }
        struct ctl_bytes key = {0};
        int64_t rev = r->header ? r->header->revision : 0;
        if (ctl_bytes_set(&key, r->kvs[0]->key.data, r->kvs[0]->key.len) < 0) {
            cl_call_reset(&call);
            *err = strdup("out of memory");
            return -1;
        }
        cl_call_reset(&call);
        rc = wait_delete(cc, key.data, key.len, rev, err);
        ctl_bytes_free(&key);
        if (rc < 0)
            return -1;
    }
}

int ctl_cc_show_and_hold(struct ctl_cc *cc, const char *key, const char *lost, const char *expired,
                         char **err)
{
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
    get.key.data = (uint8_t *)key;
    get.key.len = strlen(key);
    struct cl_call call = {0};
    int rc = 0;
    if (ctl_cc_call(cc, &call, &cl_method_range, &get.base, true) != GRPC_OK) {
        *err = ctl_call_error(&call);
        rc = -1;
    } else {
        const Etcdserverpb__RangeResponse *r = (const Etcdserverpb__RangeResponse *)call.response;
        if (lost && r->n_kvs == 0) {
            *err = strdup(lost);
            rc = -1;
        } else {
            rc = CTL_PRINT(cc->ctl, get, r); /* etcdctl's printer exits there and then */
        }
    }
    cl_call_reset(&call);
    if (rc == 0 && !ctl_cc_hold(cc)) {
        *err = strdup(expired);
        rc = -1;
    }
    return rc;
}
