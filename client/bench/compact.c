/* client/bench/compact.c — periodic compaction during put (see compact.h). */
#include "client/bench/compact.h"

#include <inttypes.h>
#include <stdlib.h>

#define CALL_TIMEOUT_MS 5000 /* etcd's benchmark gives each of its two calls 5 s */

static void maybe_done(struct bench_compactor *c)
{
    if (c->closing && !c->busy && c->timer_closed && c->done) {
        void (*done)(struct bench_compactor *) = c->done;
        c->done = NULL;
        done(c);
    }
}

static void report(struct bench_compactor *c, const char *what)
{
    char *text = cl_call_error_text(&c->call);
    fprintf(c->err, "cairn-bench: compaction: %s: %s\n", what, text ? text : "out of memory");
    free(text);
}

static void on_compacted(struct cl_call *call)
{
    struct bench_compactor *c = call->data;
    if (call->code == GRPC_OK)
        c->n_compactions++;
    else if (!c->closing)
        report(c, "compact");
    cl_call_reset(call);
    c->busy = false;
    maybe_done(c);
}

static void on_revision(struct cl_call *call)
{
    struct bench_compactor *c = call->data;
    int64_t rev = -1;
    if (call->code == GRPC_OK) {
        const Etcdserverpb__RangeResponse *r = (const Etcdserverpb__RangeResponse *)call->response;
        rev = r->header ? r->header->revision : -1;
    } else if (!c->closing) {
        report(c, "reading the revision");
    }
    cl_call_reset(call);
    c->busy = false;
    int64_t target = rev - c->delta;
    if (c->closing || rev < 0 || target <= c->compacted) {
        maybe_done(c);
        return;
    }
    Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    req.revision = target;
    call->cb = on_compacted;
    call->data = c;
    call->timeout_ms = CALL_TIMEOUT_MS;
    if (cl_compact(c->client, call, &req) == 0) {
        c->busy = true;
        c->compacted = target;
    } else {
        fprintf(c->err, "cairn-bench: compaction: cannot start the call\n");
    }
}

static void on_timer(uv_timer_t *t)
{
    struct bench_compactor *c = t->data;
    if (c->busy || c->closing)
        return;
    static const char foo[] = "foo";
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = (ProtobufCBinaryData){sizeof foo - 1, (uint8_t *)foo};
    c->call.cb = on_revision;
    c->call.data = c;
    c->call.timeout_ms = CALL_TIMEOUT_MS;
    if (cl_range(c->client, &c->call, &req) == 0)
        c->busy = true;
}

int bench_compactor_start(struct bench_compactor *c, uv_loop_t *loop, struct cl_client *client,
                          uint64_t interval_ms, int64_t delta, FILE *err)
{
    *c = (struct bench_compactor){.client = client, .delta = delta, .err = err};
    int e = uv_timer_init(loop, &c->timer);
    if (e)
        return e;
    c->timer.data = c;
    return uv_timer_start(&c->timer, on_timer, interval_ms, interval_ms);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct bench_compactor *c = h->data;
    c->timer_closed = true;
    maybe_done(c);
}

void bench_compactor_close(struct bench_compactor *c, void (*done)(struct bench_compactor *c))
{
    c->closing = true;
    c->done = done;
    if (c->busy)
        cl_call_cancel(&c->call);
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}
