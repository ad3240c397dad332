/* client/bench/lease.c — the lease-keepalive workload (see lease.h). */
#include "client/bench/lease.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "client/bench/json.h"
#include "client/bench/progress.h"
#include "client/bench/report.h"
#include "client/cairn_client.h"
#include "common/error.h"

#define DRAIN_TIMEOUT_MS 5000 /* for the servers to end the half-closed streams */
#define LEASE_NOT_FOUND  "etcdserver: requested lease not found" /* clientv3's ErrLeaseNotFound */

/* Where the run is. */
enum phase {
    P_GRANT = 0, /* granting the leases */
    P_RUN,       /* the clock runs: keepalives */
    P_DRAIN,     /* the streams are half-closed, waiting for their ends */
    P_REVOKE,    /* revoking the leases */
    P_CLOSE      /* the connections are closing */
};

struct lk_run;

/* A bench client: its share of the leases, one call or keepalive at a time. */
struct lk_client {
    struct lk_run *run;     /* owner */
    unsigned idx;           /* its number */
    struct cl_client *conn; /* its connection */
    struct cl_call call;    /* a grant or a revoke */
    struct cl_stream s;     /* its LeaseKeepAlive stream */
    bool stream_open;       /* s opened and its on_end not run yet */
    bool in_flight;         /* a keepalive sent and not answered */
    uint64_t cursor;        /* the next of its leases, by number within its share */
    int64_t want;           /* the lease of the keepalive in flight */
    uint64_t start_ns;      /* uv_hrtime() when it was sent */
};

struct lk_run {
    uv_loop_t loop;                 /* everything runs here */
    const struct bench_config *cfg; /* the flags */
    struct bench_lease_result *res; /* results */
    FILE *err;                      /* failures of the setup */
    struct cl_client **conns;       /* n_conns clients, one connection each */
    unsigned n_conns;               /* --conns (those made) */
    struct lk_client *clients;      /* n_clients bench clients */
    unsigned n_clients;             /* --clients */
    int64_t *ids;                   /* the leases, n_ids; 0 where not granted */
    unsigned n_ids;                 /* --leases */
    enum phase phase;               /* where the run is */
    unsigned busy;                  /* clients (grant, revoke) or streams (drain) not done */
    bool failed;                    /* the run could not be made */
    uint64_t issued;                /* keepalives handed to clients */
    uint64_t answered;              /* keepalives answered (or failed) */
    uint64_t start_ns, end_ns;      /* the run's clock */
    struct bench_progress progress; /* the bar on stderr */
    uv_timer_t drain_timer;         /* DRAIN_TIMEOUT_MS guard */
    bool drain_timer_on;            /* drain_timer is initialized and not closed */
    char *revoke_error;             /* the first revoke failure (malloc'd) */
};

static void finish_run(struct lk_run *r);
static void start_revokes(struct lk_run *r);
static void ka_issue(struct lk_client *c);

/* The text of a failure to start a call (a CAIRN_E_* or libuv code). */
static const char *start_error(int err)
{
    if (err > CAIRN_E__FIRST && err < CAIRN_E__LAST)
        return cairn_strerror(err);
    return uv_strerror(err);
}

/* The number of leases client c grants and revokes: those j with j mod clients == c->idx. */
static uint64_t share_len(const struct lk_client *c)
{
    const struct lk_run *r = c->run;
    return c->idx < r->n_ids ? (r->n_ids - 1 - c->idx) / r->n_clients + 1 : 0;
}

/* The index in r->ids of the k-th lease of c's share. */
static unsigned share_at(const struct lk_client *c, uint64_t k)
{
    return (unsigned)(c->idx + k * c->run->n_clients);
}

/* ---------------------------------------------------------------------------------------------- */
/* Closing */

static void close_all(struct lk_run *r)
{
    r->phase = P_CLOSE;
    if (r->drain_timer_on) {
        uv_close((uv_handle_t *)&r->drain_timer, NULL);
        r->drain_timer_on = false;
    }
    for (unsigned k = 0; k < r->n_conns; k++)
        cl_client_close(r->conns[k], NULL, NULL);
}

/* ---------------------------------------------------------------------------------------------- */
/* Granting */

static void grant_next(struct lk_client *c);

static void grants_done(struct lk_run *r)
{
    if (r->failed) {
        start_revokes(r);
        return;
    }
    r->phase = P_RUN;
    r->start_ns = uv_hrtime();
    bench_progress_start(&r->progress, &r->loop, r->cfg->total, &r->answered);
    for (unsigned i = 0; i < r->n_clients && r->phase == P_RUN; i++)
        ka_issue(&r->clients[i]);
}

static void grant_failed(struct lk_run *r, const char *text)
{
    if (!r->failed)
        fprintf(r->err, "cairn-bench: lease grant failed: %s\n", text ? text : "out of memory");
    r->failed = true;
}

static void on_granted(struct cl_call *call)
{
    struct lk_client *c = call->data;
    struct lk_run *r = c->run;
    if (call->code == GRPC_OK) {
        const Etcdserverpb__LeaseGrantResponse *g = (const void *)call->response;
        r->ids[share_at(c, c->cursor)] = g->id;
        c->cursor++;
    } else {
        char *text = cl_call_error_text(call);
        grant_failed(r, text);
        free(text);
    }
    cl_call_reset(call);
    grant_next(c);
}

/* Grants c's next lease, or counts c done. */
static void grant_next(struct lk_client *c)
{
    struct lk_run *r = c->run;
    if (!r->failed && c->cursor < share_len(c)) {
        Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
        req.ttl = r->cfg->lease_ttl;
        int e = cl_lease_grant(c->conn, &c->call, &req);
        if (!e)
            return;
        grant_failed(r, start_error(e));
    }
    if (--r->busy == 0)
        grants_done(r);
}

/* ---------------------------------------------------------------------------------------------- */
/* Keepalives */

static void answered(struct lk_run *r)
{
    if (++r->answered == r->cfg->total)
        finish_run(r);
}

static void failed_one(struct lk_run *r, const char *text)
{
    bench_stats_error(&r->res->stats, text);
    answered(r);
}

static void on_ka_msg(struct cl_stream *s, ProtobufCMessage *msg)
{
    struct lk_client *c = s->data;
    struct lk_run *r = c->run;
    const Etcdserverpb__LeaseKeepAliveResponse *resp = (const void *)msg;
    if (!c->in_flight || r->phase != P_RUN) {
        cl_stream_msg_free(msg); /* nothing asked for it */
        return;
    }
    uint64_t lat = uv_hrtime() - c->start_ns;
    c->in_flight = false;
    bool ok = resp->ttl > 0 && resp->id == c->want;
    bool gone = resp->ttl <= 0;
    cl_stream_msg_free(msg);
    if (ok) {
        bench_stats_ok(&r->res->stats, lat);
        answered(r);
    } else {
        failed_one(r, gone ? LEASE_NOT_FOUND : "keepalive response for another lease");
    }
    ka_issue(c);
}

static void on_ka_end(struct cl_stream *s);

static int open_stream(struct lk_client *c, uint64_t delay_ms)
{
    cl_stream_reset(&c->s);
    c->s.on_msg = on_ka_msg;
    c->s.on_end = on_ka_end;
    c->s.data = c;
    int e = cl_stream_open(c->conn, &c->s, &cl_method_lease_keep_alive, delay_ms);
    c->stream_open = !e;
    return e;
}

static void on_ka_end(struct cl_stream *s)
{
    struct lk_client *c = s->data;
    struct lk_run *r = c->run;
    c->stream_open = false;
    if (r->phase == P_DRAIN) {
        if (--r->busy == 0)
            start_revokes(r);
        return;
    }
    if (c->in_flight) {
        c->in_flight = false;
        struct cl_call tmp = {.code = s->code == GRPC_OK ? GRPC_UNAVAILABLE : s->code,
                              .message =
                                  s->code == GRPC_OK ? "stream ended by the server" : s->message};
        char *text = cl_call_error_text(&tmp);
        failed_one(r, text);
        free(text);
    }
    if (r->phase != P_RUN || r->issued >= r->cfg->total)
        return;
    int e = open_stream(c, 0); /* at once: its request fails as fast as etcd's tool's would */
    if (e) {
        failed_one(r, start_error(e));
        return;
    }
    ka_issue(c);
}

/* Sends c's next keepalive, if any is left. A loop for streams that cannot be opened. */
static void ka_issue(struct lk_client *c)
{
    struct lk_run *r = c->run;
    while (r->phase == P_RUN && !c->in_flight && r->issued < r->cfg->total) {
        r->issued++;
        int e = c->stream_open ? 0 : open_stream(c, 0);
        if (e) {
            failed_one(r, start_error(e));
            continue;
        }
        uint64_t n = share_len(c);
        c->want = n ? r->ids[share_at(c, c->cursor++ % n)] : r->ids[c->idx % r->n_ids];
        Etcdserverpb__LeaseKeepAliveRequest req = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
        req.id = c->want;
        c->start_ns = uv_hrtime();
        e = cl_stream_send(&c->s, &req.base);
        if (!e) {
            c->in_flight = true;
            return;
        }
        /* the stream is ending or out of memory: its on_end opens the next */
        cl_stream_cancel(&c->s);
        failed_one(r, start_error(e));
        return;
    }
}

static void on_drain_timeout(uv_timer_t *t)
{
    struct lk_run *r = t->data;
    for (unsigned i = 0; i < r->n_clients; i++)
        if (r->clients[i].stream_open)
            cl_stream_cancel(&r->clients[i].s);
}

/* Every keepalive is answered: the clock stops, the streams are half-closed. */
static void finish_run(struct lk_run *r)
{
    r->end_ns = uv_hrtime();
    r->phase = P_DRAIN;
    bench_progress_finish(&r->progress);
    r->busy = 0;
    for (unsigned i = 0; i < r->n_clients; i++) {
        struct lk_client *c = &r->clients[i];
        if (c->stream_open) {
            r->busy++;
            cl_stream_close_send(&c->s);
        }
    }
    if (!r->busy) {
        start_revokes(r);
        return;
    }
    if (uv_timer_init(&r->loop, &r->drain_timer) == 0) {
        r->drain_timer.data = r;
        r->drain_timer_on = true;
        uv_timer_start(&r->drain_timer, on_drain_timeout, DRAIN_TIMEOUT_MS, 0);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Revoking */

static void revoke_next(struct lk_client *c);

static void on_revoked(struct cl_call *call)
{
    struct lk_client *c = call->data;
    struct lk_run *r = c->run;
    if (call->code != GRPC_OK) {
        char *text = cl_call_error_text(call);
        if (!text || strcmp(text, LEASE_NOT_FOUND)) { /* gone already is as good as revoked */
            r->res->not_revoked++;
            if (!r->revoke_error)
                r->revoke_error = text ? strdup(text) : NULL;
        }
        free(text);
    }
    cl_call_reset(call);
    c->cursor++;
    revoke_next(c);
}

/* Revokes c's next granted lease, or counts c done. */
static void revoke_next(struct lk_client *c)
{
    struct lk_run *r = c->run;
    uint64_t n = share_len(c);
    while (c->cursor < n && r->ids[share_at(c, c->cursor)] == 0)
        c->cursor++;
    if (c->cursor < n) {
        Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
        req.id = r->ids[share_at(c, c->cursor)];
        int e = cl_lease_revoke(c->conn, &c->call, &req);
        if (!e)
            return;
        r->res->not_revoked += n - c->cursor;
    }
    if (--r->busy == 0) {
        if (r->res->not_revoked)
            fprintf(r->err, "cairn-bench: %llu leases could not be revoked: %s\n",
                    (unsigned long long)r->res->not_revoked,
                    r->revoke_error ? r->revoke_error : "out of memory");
        close_all(r);
    }
}

static void start_revokes(struct lk_run *r)
{
    if (r->drain_timer_on) {
        uv_close((uv_handle_t *)&r->drain_timer, NULL);
        r->drain_timer_on = false;
    }
    if (r->cfg->keep_leases && !r->failed) {
        close_all(r);
        return;
    }
    r->phase = P_REVOKE;
    r->busy = r->n_clients;
    for (unsigned i = 0; i < r->n_clients; i++) {
        r->clients[i].cursor = 0;
        r->clients[i].call.cb = on_revoked;
    }
    for (unsigned i = 0; i < r->n_clients; i++)
        revoke_next(&r->clients[i]);
}

/* ---------------------------------------------------------------------------------------------- */
/* The run */

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

int bench_lease_run(const struct bench_config *cfg, char *const *endpoints, size_t n,
                    struct bench_lease_result *res, FILE *err)
{
    memset(res, 0, sizeof *res);
    struct lk_run *r = calloc(1, sizeof *r);
    if (!r || bench_stats_init(&res->stats, cfg->total)) {
        free(r);
        fprintf(err, "cairn-bench: out of memory\n");
        return -1;
    }
    r->cfg = cfg;
    r->res = res;
    r->err = err;
    r->n_clients = cfg->clients;
    r->n_ids = cfg->leases ? cfg->leases : cfg->clients;
    r->conns = calloc(cfg->conns, sizeof *r->conns);
    r->clients = calloc(r->n_clients, sizeof *r->clients);
    r->ids = calloc(r->n_ids, sizeof *r->ids);
    int e = uv_loop_init(&r->loop);
    if (e || !r->conns || !r->clients || !r->ids) {
        fprintf(err, "cairn-bench: %s\n", e ? uv_strerror(e) : "out of memory");
        if (!e)
            uv_loop_close(&r->loop);
        free(r->conns);
        free(r->clients);
        free(r->ids);
        free(r);
        return -1;
    }

    bool ok = true;
    for (; ok && r->n_conns < cfg->conns; r->n_conns++) {
        struct cl_options o;
        cl_options_default(&o);
        const char *ep = endpoints[r->n_conns % n];
        o.endpoints = &ep;
        o.n_endpoints = 1;
        o.conns_per_endpoint = 1;
        if (cfg->dial_timeout_ms)
            o.dial_timeout_ms = cfg->dial_timeout_ms;
        int ce = cl_client_new(&r->loop, &o, &r->conns[r->n_conns]);
        if (ce == CAIRN_E_INVALID_ARGUMENT)
            fprintf(err, "cairn-bench: bad endpoint \"%s\": want host:port or http://host:port\n",
                    ep);
        else if (ce)
            fprintf(err, "cairn-bench: endpoint \"%s\": %s\n", ep, start_error(ce));
        if (ce)
            break;
    }
    if (r->n_conns < cfg->conns) {
        ok = false;
        r->failed = true;
        close_all(r);
    } else {
        for (unsigned i = 0; i < r->n_clients; i++) {
            struct lk_client *c = &r->clients[i];
            c->run = r;
            c->idx = i;
            c->conn = r->conns[i % r->n_conns];
            c->call.cb = on_granted;
            c->call.data = c;
        }
        r->busy = r->n_clients;
        for (unsigned i = 0; i < r->n_clients; i++)
            grant_next(&r->clients[i]);
    }

    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&r->loop) == UV_EBUSY) {
        /* A handle left open is a bug of ours or the library's: close it rather than leak. */
        uv_walk(&r->loop, close_walk, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
    }
    int rc = r->failed ? -1 : 0;
    res->leases = r->n_ids;
    if (!rc)
        res->total_ns = r->end_ns - r->start_ns;
    for (unsigned i = 0; i < r->n_clients; i++) {
        cl_call_reset(&r->clients[i].call);
        cl_stream_reset(&r->clients[i].s);
    }
    free(r->revoke_error);
    free(r->conns);
    free(r->clients);
    free(r->ids);
    free(r);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* The report */

void bench_lease_report(FILE *out, const struct bench_config *cfg, char *const *endpoints, size_t n,
                        struct bench_lease_result *res)
{
    struct bench_summary sm;
    bench_stats_summarize(&res->stats, res->total_ns, &sm);
    if (cfg->output == BENCH_OUT_JSON) {
        char extra[96];
        snprintf(extra, sizeof extra, "\"leases\": %u, \"ttl\": %lld", res->leases,
                 (long long)cfg->lease_ttl);
        struct bench_json_info info = {.workload = "lease-keepalive",
                                       .extra = extra,
                                       .endpoints = (const char *const *)endpoints,
                                       .n_endpoints = n,
                                       .conns = cfg->conns,
                                       .clients = cfg->clients};
        bench_report_json(out, &info, &sm, &res->stats);
        return;
    }
    fprintf(out, "%u leases (TTL %lld s), %u clients on %u conns: %llu keepalives\n", res->leases,
            (long long)cfg->lease_ttl, cfg->clients, cfg->conns, (unsigned long long)cfg->total);
    bench_report_text(out, &sm, &res->stats, cfg->precise);
    fputc('\n', out);
}

void bench_lease_result_free(struct bench_lease_result *res)
{
    bench_stats_free(&res->stats);
}
