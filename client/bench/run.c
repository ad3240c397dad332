/* client/bench/run.c — connections, bench clients and the issue loop (see run.h). */
#include "client/bench/run.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client/bench/compact.h"
#include "client/bench/keys.h"
#include "client/bench/progress.h"
#include "client/bench/ratelimit.h"
#include "client/bench/workload.h"
#include "client/cairn_client.h"
#include "common/error.h"

/* The Status call that opens each connection has no deadline (the client library retries a call
 * with a deadline until it passes, and a refused connection would then read as a timeout);
 * instead this guard cancels the ones still waiting. */
#define WARMUP_TIMEOUT_MS 10000

struct bench_run;

/* A bench client: issues one request at a time. */
struct issuer {
    struct bench_run *run;       /* owner */
    struct cl_client *conn;      /* its connection */
    void *req;                   /* the workload's request memory */
    struct cl_call call;         /* the request in flight */
    struct bench_rl_waiter wait; /* its place in the rate limiter's queue */
    uint64_t start_ns;           /* uv_hrtime() when the call started */
    uint64_t index;              /* number of the request it issues */
};

/* A connection's opening Status call. */
struct warmup {
    struct bench_run *run; /* owner */
    struct cl_call call;   /* the Status call */
    const char *endpoint;  /* the connection's endpoint (borrowed) */
    bool pending;          /* call started, not answered yet */
};

struct bench_run {
    uv_loop_t loop;                   /* everything runs here */
    const struct bench_config *cfg;   /* the run's flags */
    const struct bench_workload *wl;  /* what to send */
    void *shared;                     /* the workload's shared state */
    struct cl_client **conns;         /* n_conns clients */
    unsigned n_conns;                 /* --conns */
    struct issuer *issuers;           /* n_issuers bench clients */
    unsigned n_issuers;               /* --clients */
    struct warmup *warm;              /* one per connection in use */
    unsigned n_warm;                  /* entries in warm */
    unsigned warm_pending;            /* warm-up calls not answered yet */
    bool warm_failed;                 /* a connection could not be opened */
    uv_timer_t warm_timer;            /* WARMUP_TIMEOUT_MS guard */
    bool warm_timer_on;               /* warm_timer is initialized and not closed */
    bool warm_timed_out;              /* the guard cancelled the calls still pending */
    struct bench_stats *stats;        /* results */
    struct bench_ratelimit rl;        /* --rate */
    bool rl_on;                       /* rl is initialized */
    struct bench_compactor compactor; /* put --compact-interval */
    bool compact_on;                  /* compactor is started */
    struct bench_progress progress;   /* the bar on stderr */
    uint64_t issued;                  /* requests handed to issuers */
    uint64_t answered;                /* requests answered (or failed to start) */
    uint64_t start_ns, end_ns;        /* the run's clock */
    bool finishing;                   /* shut down begun */
    FILE *err;                        /* setup failures */
};

static void finish(struct bench_run *r);

/* The text of a failure to start a call (a CAIRN_E_* or libuv code). */
static const char *start_error(int err)
{
    if (err > CAIRN_E__FIRST && err < CAIRN_E__LAST)
        return cairn_strerror(err);
    return uv_strerror(err);
}

static void answered(struct bench_run *r)
{
    if (++r->answered == r->cfg->total)
        finish(r);
}

/* Starts is's current request. Returns 0, or -1 when the call could not start (counted as a
 * failed answer). */
static int send_request(struct issuer *is)
{
    struct bench_run *r = is->run;
    const ProtobufCMessage *req = r->wl->make(is->req, is->index);
    is->start_ns = uv_hrtime();
    int err = cl_call_start(is->conn, &is->call, r->wl->method, req);
    if (!err)
        return 0;
    bench_stats_error(r->stats, start_error(err));
    answered(r);
    return -1;
}

/* Takes the next request number, if any is left, and sends it (now, or when the rate limiter
 * grants its token). A loop rather than recursion for calls that fail to start. */
static void issue(struct issuer *is)
{
    struct bench_run *r = is->run;
    while (!r->finishing && r->issued < r->cfg->total) {
        is->index = r->issued++;
        if (r->rl_on && !bench_ratelimit_take(&r->rl, &is->wait))
            return;
        if (send_request(is) == 0)
            return;
    }
}

static void on_token(struct bench_rl_waiter *w)
{
    struct issuer *is = (struct issuer *)((char *)w - offsetof(struct issuer, wait));
    if (send_request(is) != 0)
        issue(is);
}

static void on_answer(struct cl_call *call)
{
    struct issuer *is = call->data;
    struct bench_run *r = is->run;
    uint64_t lat = uv_hrtime() - is->start_ns;
    if (call->code == GRPC_OK) {
        bench_stats_ok(r->stats, lat);
    } else {
        char *text = cl_call_error_text(call);
        bench_stats_error(r->stats, text);
        free(text);
    }
    cl_call_reset(call);
    answered(r);
    issue(is);
}

/* The clock starts: every bench client issues its first request. */
static void start(struct bench_run *r)
{
    const struct bench_config *cfg = r->cfg;
    int err = 0;
    if (cfg->rate) {
        err = bench_ratelimit_init(&r->rl, &r->loop, cfg->rate);
        r->rl_on = !err;
    }
    if (!err && cfg->cmd == BENCH_CMD_PUT && cfg->compact_interval_ms) {
        err = bench_compactor_start(&r->compactor, &r->loop, r->conns[0], cfg->compact_interval_ms,
                                    cfg->compact_index_delta, r->err);
        r->compact_on = !err;
    }
    if (err) {
        fprintf(r->err, "cairn-bench: %s\n", uv_strerror(err));
        r->warm_failed = true;
        finish(r);
        return;
    }
    r->start_ns = uv_hrtime();
    bench_progress_start(&r->progress, &r->loop, cfg->total, &r->answered);
    for (unsigned i = 0; i < r->n_issuers && !r->finishing; i++)
        issue(&r->issuers[i]);
}

static void on_warm(struct cl_call *call)
{
    struct warmup *w = call->data;
    struct bench_run *r = w->run;
    w->pending = false;
    if (call->code == GRPC_CANCELLED && r->warm_timed_out) {
        fprintf(r->err, "cairn-bench: dial error: %s: no answer within %d s\n", w->endpoint,
                WARMUP_TIMEOUT_MS / 1000);
        r->warm_failed = true;
    } else if (call->code != GRPC_OK) {
        char *text = cl_call_error_text(call);
        fprintf(r->err, "cairn-bench: dial error: %s: %s\n", w->endpoint,
                text ? text : "out of memory");
        free(text);
        r->warm_failed = true;
    }
    cl_call_reset(call);
    if (--r->warm_pending)
        return;
    if (r->warm_timer_on) {
        uv_close((uv_handle_t *)&r->warm_timer, NULL);
        r->warm_timer_on = false;
    }
    if (r->warm_failed)
        finish(r);
    else
        start(r);
}

static void on_warm_timeout(uv_timer_t *t)
{
    struct bench_run *r = t->data;
    r->warm_timed_out = true;
    for (unsigned k = 0; k < r->n_warm; k++)
        if (r->warm[k].pending)
            cl_call_cancel(&r->warm[k].call);
}

static void on_rl_closed(struct bench_ratelimit *rl)
{
    (void)rl;
}

static void on_compactor_closed(struct bench_compactor *c)
{
    struct bench_run *r = (struct bench_run *)((char *)c - offsetof(struct bench_run, compactor));
    for (unsigned k = 0; k < r->n_conns; k++)
        cl_client_close(r->conns[k], NULL, NULL);
}

/* Everything answered (or the run cannot start): stop the clock and close every handle; the
 * loop then runs out and bench_run() returns. */
static void finish(struct bench_run *r)
{
    if (r->finishing)
        return;
    r->finishing = true;
    r->end_ns = uv_hrtime();
    bench_progress_finish(&r->progress);
    if (r->rl_on)
        bench_ratelimit_close(&r->rl, on_rl_closed);
    if (r->compact_on) {
        bench_compactor_close(&r->compactor, on_compactor_closed); /* then the clients */
        return;
    }
    for (unsigned k = 0; k < r->n_conns; k++)
        cl_client_close(r->conns[k], NULL, NULL);
}

static void free_run(struct bench_run *r)
{
    for (unsigned i = 0; r->issuers && i < r->n_issuers; i++)
        if (r->issuers[i].req)
            r->wl->client_free(r->issuers[i].req);
    free(r->issuers);
    free(r->warm);
    if (r->shared)
        r->wl->shared_free(r->shared);
    free(r->conns);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int bench_run(const struct bench_config *cfg, char *const *endpoints, size_t n,
              struct bench_stats *stats, uint64_t *total_ns, FILE *err)
{
    struct bench_run *r = calloc(1, sizeof *r);
    memset(stats, 0, sizeof *stats);
    *total_ns = 0;
    if (!r) {
        fprintf(err, "cairn-bench: out of memory\n");
        return -1;
    }
    r->cfg = cfg;
    r->wl = bench_workload_of(cfg->cmd);
    r->stats = stats;
    r->err = err;
    int e = uv_loop_init(&r->loop);
    if (e) {
        fprintf(err, "cairn-bench: %s\n", uv_strerror(e));
        free(r);
        return -1;
    }

    const char *fail = NULL;
    uint64_t seed = bench_seed();
    r->n_conns = cfg->conns;
    r->n_issuers = cfg->clients;
    r->n_warm = cfg->clients < cfg->conns ? cfg->clients : cfg->conns;
    r->conns = calloc(r->n_conns, sizeof *r->conns);
    r->issuers = calloc(r->n_issuers, sizeof *r->issuers);
    r->warm = calloc(r->n_warm, sizeof *r->warm);
    if (!r->conns || !r->issuers || !r->warm || bench_stats_init(stats, cfg->total) ||
        r->wl->shared_new(cfg, seed, &r->shared))
        fail = "out of memory";

    unsigned made = 0; /* connections made */
    for (; !fail && made < r->n_conns; made++) {
        struct cl_options o;
        cl_options_default(&o);
        const char *ep = endpoints[made % n];
        o.endpoints = &ep;
        o.n_endpoints = 1;
        o.conns_per_endpoint = 1;
        if (cfg->dial_timeout_ms)
            o.dial_timeout_ms = cfg->dial_timeout_ms;
        int ce = cl_client_new(&r->loop, &o, &r->conns[made]);
        if (ce) {
            if (ce == CAIRN_E_INVALID_ARGUMENT)
                fprintf(err,
                        "cairn-bench: bad endpoint \"%s\": want host:port or http://host:port\n",
                        ep);
            else
                fprintf(err, "cairn-bench: endpoint \"%s\": %s\n", ep, start_error(ce));
            fail = "";
            break;
        }
    }
    r->n_conns = made;
    for (unsigned i = 0; !fail && i < r->n_issuers; i++) {
        struct issuer *is = &r->issuers[i];
        is->run = r;
        is->conn = r->conns[i % r->n_conns];
        is->call.cb = on_answer;
        is->call.data = is;
        is->wait.cb = on_token;
        /* not seed + k·0x9e3779b97f4a7c15: that is splitmix64's own step, so every client
         * would draw the previous one's sequence shifted by one */
        if (r->wl->client_new(cfg, r->shared, seed ^ (0xd1b54a32d192ed03ULL * (i + 1)), &is->req))
            fail = "out of memory";
    }

    for (unsigned k = 0; !fail && k < r->n_warm; k++) {
        struct warmup *w = &r->warm[k];
        Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
        w->run = r;
        w->endpoint = endpoints[k % n];
        w->call.cb = on_warm;
        w->call.data = w;
        int se = cl_status(r->conns[k], &w->call, &req);
        if (se) {
            fprintf(err, "cairn-bench: %s\n", start_error(se));
            fail = "";
            break;
        }
        w->pending = true;
        r->warm_pending++;
    }
    if (r->warm_pending && uv_timer_init(&r->loop, &r->warm_timer) == 0) {
        r->warm_timer.data = r;
        r->warm_timer_on = true;
        uv_timer_start(&r->warm_timer, on_warm_timeout, WARMUP_TIMEOUT_MS, 0);
    }
    if (fail) {
        if (*fail)
            fprintf(err, "cairn-bench: %s\n", fail);
        r->warm_failed = true;
        if (!r->warm_pending)
            finish(r);
        /* else: the last warm-up answer finishes the run */
    }

    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r->loop) == UV_EBUSY) {
        /* A handle left open is a bug of ours or the library's: close it rather than leak. */
        uv_walk(&r->loop, close_walk, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
    }
    int rc = r->warm_failed ? -1 : 0;
    if (!rc)
        *total_ns = r->end_ns - r->start_ns;
    free_run(r);
    free(r);
    return rc;
}
