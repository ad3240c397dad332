/* client/bench/watch.c — the watch workload (see watch.h). */
#include "client/bench/watch.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "client/bench/json.h"
#include "client/bench/keys.h"
#include "client/bench/report.h"
#include "client/bench/run.h"

/* ---- the puts: keys under the prefix, the send time in the value */

struct wput_state {
    Etcdserverpb__PutRequest req;
    const struct bench_config *cfg;
    struct bench_rng rng;
    uint8_t *value;
    uint8_t key[]; /* the prefix, then key_size bytes */
};

static int wput_client_new(const struct bench_config *cfg, void *shared, uint64_t seed,
                           void **state)
{
    const struct bench_value *v = shared;
    size_t plen = sizeof BENCH_WATCH_PREFIX - 1;
    struct wput_state *s = malloc(sizeof *s + plen + cfg->key_size);
    if (!s)
        return -1;
    if (!(s->value = malloc(v->len))) {
        free(s);
        return -1;
    }
    memcpy(s->value, v->bytes, v->len);
    memcpy(s->key, BENCH_WATCH_PREFIX, plen);
    s->req = (Etcdserverpb__PutRequest)ETCDSERVERPB__PUT_REQUEST__INIT;
    s->req.key = (ProtobufCBinaryData){plen + cfg->key_size, s->key};
    s->req.value = (ProtobufCBinaryData){v->len, s->value};
    s->cfg = cfg;
    bench_rng_seed(&s->rng, seed);
    *state = s;
    return 0;
}

static void wput_client_free(void *state)
{
    struct wput_state *s = state;
    if (s)
        free(s->value);
    free(s);
}

static const ProtobufCMessage *wput_make(void *state, uint64_t i)
{
    struct wput_state *s = state;
    uint64_t space = s->cfg->key_space_size;
    uint64_t n = s->cfg->sequential_keys ? i % space : bench_rng_below(&s->rng, space);
    bench_key_write(s->key + sizeof BENCH_WATCH_PREFIX - 1, s->cfg->key_size, n);
    uint64_t now = uv_hrtime();
    memcpy(s->value, &now, sizeof now);
    return &s->req.base;
}

const struct bench_workload bench_workload_watch_put = {
    .name = "watch",
    .method = &cl_method_put,
    .shared_new = bench_value_new,
    .shared_free = bench_value_free,
    .client_new = wput_client_new,
    .client_free = wput_client_free,
    .make = wput_make,
};

/* ---- the watchers, on threads of their own
 *
 * The connections are dealt out to the threads (connection i to thread i mod threads) and each
 * stream goes with its connection, so a thread owns its loop, clients, watchers and counters and
 * shares nothing with the others while events arrive. */

struct wrun;

struct wgroup {
    struct wrun *run;
    pthread_t thread;
    bool signalled; /* it has counted itself ready */
    uv_loop_t loop;
    uv_async_t wake;            /* the main thread: the puts are done, or setting up failed */
    uv_timer_t quiet;           /* no event for a while after the puts */
    struct cl_client **clients; /* the connections this thread owns */
    unsigned n_clients;
    struct cl_watcher **watchers; /* the streams on them */
    unsigned n_watchers;
    uint64_t n_watches, created, ended, received, expected, watch_errors;
    struct bench_stats events; /* put-to-event latencies (watch) */
    uint64_t last_event_ns;
    bool closing;
};

struct wrun {
    const struct bench_config *cfg;
    bool latency;       /* watch-latency: one key; events timed from their put's answer */
    uint8_t *key;       /* latency: the key put and watched (key_size bytes) */
    uint64_t *ack_ns;   /* latency: when put i was answered (0: it failed) */
    uint64_t *event_ns; /* latency: watcher w's event of put i at [w * total + i] (0: none) */
    char *const *endpoints;
    size_t n_endpoints;
    FILE *err;
    struct bench_watch_result *res;
    struct wgroup *groups;
    unsigned n_groups;
    struct cl_watch *watches; /* stream s's watchers at [s * watch_per_stream ...] */
    uint64_t n_watches;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    unsigned ready;    /* groups whose watches are all created (or whose setting up failed) */
    bool failed;       /* setting up failed somewhere */
    atomic_bool stop;  /* the main thread: the puts are done */
    atomic_bool abort; /* the main thread: setting up failed somewhere, so no puts */
};

static void finish_watchers(struct wgroup *g)
{
    if (g->closing)
        return;
    g->closing = true;
    uv_timer_stop(&g->quiet);
    for (unsigned i = 0; i < g->n_watchers; i++)
        if (g->watchers[i])
            cl_watcher_close(g->watchers[i]);
    for (unsigned i = 0; i < g->n_clients; i++)
        if (g->clients[i])
            cl_client_close(g->clients[i], NULL, NULL);
    uv_close((uv_handle_t *)&g->wake, NULL);
    uv_close((uv_handle_t *)&g->quiet, NULL);
}

static void signal_ready(struct wgroup *g, bool failed)
{
    struct wrun *r = g->run;
    if (g->signalled)
        return;
    g->signalled = true;
    pthread_mutex_lock(&r->mu);
    r->ready++;
    r->failed = r->failed || failed;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void on_watch(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    struct wgroup *g = w->data;
    struct wrun *r = g->run;
    if (resp->canceled) {
        g->ended++;
        if (!g->closing) {
            g->watch_errors++;
            if (g->created < g->n_watches) {
                fprintf(r->err, "cairn-bench: a watch could not be created: %s\n",
                        w->message ? w->message : "cancelled");
                signal_ready(g, true);
                finish_watchers(g);
            }
        }
        return;
    }
    if (resp->created) {
        if (++g->created == g->n_watches)
            signal_ready(g, false);
        return;
    }
    uint64_t now = uv_hrtime();
    for (size_t i = 0; i < resp->n_events; i++) {
        const Mvccpb__KeyValue *kv = resp->events[i]->kv;
        uint64_t v; /* watch: the put's send time; watch-latency: its number */
        if (!kv || kv->value.len < sizeof v)
            continue;
        memcpy(&v, kv->value.data, sizeof v);
        if (!r->latency)
            bench_stats_ok(&g->events, now > v ? now - v : 0);
        else if (v < r->cfg->total)
            r->event_ns[(uint64_t)(w - r->watches) * r->cfg->total + v] = now;
        g->received++;
    }
    if (resp->n_events)
        g->last_event_ns = now;
    if (g->received >= g->expected)
        finish_watchers(g);
    else if (atomic_load(&r->stop))
        uv_timer_again(&g->quiet);
}

static void on_quiet(uv_timer_t *t)
{
    finish_watchers(t->data);
}

static void on_wake(uv_async_t *a)
{
    struct wgroup *g = a->data;
    if (g->received >= g->expected || atomic_load(&g->run->abort))
        finish_watchers(g);
    else
        uv_timer_start(&g->quiet, on_quiet, 10000, 10000);
}

/* Connects group g's clients and starts the watches of their streams. Returns false when that
 * failed (said on err). */
static bool group_start(struct wgroup *g)
{
    struct wrun *r = g->run;
    const struct bench_config *cfg = r->cfg;
    static const uint8_t end[] = "watch-bench0"; /* the prefix's range end: '/' + 1 */
    struct cl_watch_options o = {.key = (const uint8_t *)BENCH_WATCH_PREFIX,
                                 .key_len = sizeof BENCH_WATCH_PREFIX - 1,
                                 .range_end = end,
                                 .range_end_len = sizeof end - 1,
                                 .created_notify = true};
    if (r->latency)
        o = (struct cl_watch_options){
            .key = r->key, .key_len = cfg->key_size, .created_notify = true};
    unsigned gi = (unsigned)(g - r->groups);
    for (unsigned i = 0; i < g->n_clients; i++) { /* connection gi + i * n_groups */
        struct cl_options co;
        cl_options_default(&co);
        const char *ep = r->endpoints[(gi + i * r->n_groups) % r->n_endpoints];
        co.endpoints = &ep;
        co.n_endpoints = 1;
        if (cfg->dial_timeout_ms)
            co.dial_timeout_ms = cfg->dial_timeout_ms;
        if (cl_client_new(&g->loop, &co, &g->clients[i]))
            return false;
    }
    unsigned k = 0;
    for (unsigned s = 0; s < cfg->streams; s++) {
        unsigned conn = s % cfg->conns;
        if (conn % r->n_groups != gi)
            continue;
        if (cl_watcher_new(g->clients[conn / r->n_groups], false, &g->watchers[k++]))
            return false;
        for (unsigned j = 0; j < cfg->watch_per_stream; j++) {
            struct cl_watch *w = &r->watches[(uint64_t)s * cfg->watch_per_stream + j];
            w->cb = on_watch;
            w->data = g;
            if (cl_watch_start(g->watchers[k - 1], w, &o))
                return false;
        }
    }
    return true;
}

static void *watch_thread(void *arg)
{
    struct wgroup *g = arg;
    if (!group_start(g)) {
        fprintf(g->run->err, "cairn-bench: cannot set up the watchers\n");
        signal_ready(g, true);
        finish_watchers(g);
    } else if (g->n_watches == 0) {
        signal_ready(g, false);
    }
    uv_run(&g->loop, UV_RUN_DEFAULT);
    signal_ready(g, true); /* the loop ended before every watch was created */
    return NULL;
}

/* Prepares group gi of r: its share of the connections and streams, its loop and stats.
 * Returns 0, or -1 when out of memory. */
static int group_init(struct wrun *r, unsigned gi)
{
    const struct bench_config *cfg = r->cfg;
    struct wgroup *g = &r->groups[gi];
    g->run = r;
    g->n_clients = (cfg->conns - gi + r->n_groups - 1) / r->n_groups;
    for (unsigned s = 0; s < cfg->streams; s++)
        g->n_watchers += (s % cfg->conns) % r->n_groups == gi;
    g->n_watches = (uint64_t)g->n_watchers * cfg->watch_per_stream;
    g->expected = g->n_watches * cfg->total;
    uint64_t cap = r->latency ? 0 : g->expected;
    uint64_t share = (1u << 26) / r->n_groups; /* the latencies kept, over all groups */
    g->clients = calloc(g->n_clients ? g->n_clients : 1, sizeof *g->clients);
    g->watchers = calloc(g->n_watchers ? g->n_watchers : 1, sizeof *g->watchers);
    if (!g->clients || !g->watchers || bench_stats_init(&g->events, cap > share ? share : cap))
        return -1;
    if (uv_loop_init(&g->loop))
        return -1;
    uv_async_init(&g->loop, &g->wake, on_wake);
    uv_timer_init(&g->loop, &g->quiet);
    g->wake.data = g->quiet.data = g;
    return 0;
}

static void group_free(struct wgroup *g)
{
    free(g->clients);
    free(g->watchers);
    bench_stats_free(&g->events);
}

/* The number of watcher threads: --watch-threads, at most one per connection. */
static unsigned watch_threads(const struct bench_config *cfg)
{
    unsigned n = cfg->watch_threads ? cfg->watch_threads : 1;
    return n < cfg->conns ? n : cfg->conns;
}

/* watch-latency's puts, as etcd's: one client puts the key put-total times, one at a time, at
 * most put-rate a second (a put that is late goes at once: the rate holds over the run), each
 * value carrying the put's number. Each answer's time is kept for the watchers' latencies. */
static int latency_puts(struct wrun *r, char *const *endpoints, size_t n)
{
    const struct bench_config *cfg = r->cfg;
    struct bench_watch_result *res = r->res;
    void *shared = NULL;
    if (bench_value_new(cfg, bench_seed(), &shared)) {
        fprintf(r->err, "cairn-bench: out of memory\n");
        return -1;
    }
    struct bench_value *value = shared;
    struct cl_options co;
    cl_options_default(&co);
    co.endpoints = (const char *const *)endpoints;
    co.n_endpoints = n;
    if (cfg->dial_timeout_ms)
        co.dial_timeout_ms = cfg->dial_timeout_ms;
    struct cl_sync *sync;
    if (cl_sync_new(&co, &sync)) {
        fprintf(r->err, "cairn-bench: cannot make the put client\n");
        bench_value_free(shared);
        return -1;
    }
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key = (ProtobufCBinaryData){cfg->key_size, r->key};
    req.value = (ProtobufCBinaryData){value->len, value->bytes};
    uint64_t t0 = uv_hrtime(), interval = 1000000000u / cfg->rate, end = t0;
    for (uint64_t i = 0; i < cfg->total; i++) {
        uint64_t due = t0 + i * interval, now = uv_hrtime();
        if (now < due) {
            struct timespec ts = {(time_t)((due - now) / 1000000000u),
                                  (long)((due - now) % 1000000000u)};
            nanosleep(&ts, NULL);
        }
        memcpy(value->bytes, &i, sizeof i);
        struct cl_call call = {0};
        uint64_t start = uv_hrtime();
        int code = cl_sync_call(sync, &call, &cl_method_put, &req.base);
        end = uv_hrtime();
        if (code == GRPC_OK) {
            bench_stats_ok(&res->puts, end - start);
            r->ack_ns[i] = end;
        } else {
            bench_stats_error(&res->puts, call.message ? call.message : "put failed");
        }
        cl_call_reset(&call);
    }
    res->puts_ns = end - t0;
    cl_sync_free(sync);
    bench_value_free(shared);
    return 0;
}

/* watch-latency: each watcher's event of put i, timed from put i's answer (0 when the event came
 * first, as etcd's benchmark counts it). */
static void latency_events(struct wrun *r)
{
    uint64_t total = r->cfg->total;
    for (uint64_t w = 0; w < r->n_watches; w++)
        for (uint64_t i = 0; i < total; i++) {
            uint64_t ev = r->event_ns[w * total + i], ack = r->ack_ns[i];
            if (ev && ack)
                bench_stats_ok(&r->res->events, ev > ack ? ev - ack : 0);
        }
}

int bench_watch_run(const struct bench_config *cfg, char *const *endpoints, size_t n,
                    struct bench_watch_result *res, FILE *err)
{
    memset(res, 0, sizeof *res);
    res->watchers = (uint64_t)cfg->streams * cfg->watch_per_stream;
    res->expected = cfg->total * res->watchers;
    struct wrun *r = calloc(1, sizeof *r);
    if (!r ||
        bench_stats_init(&res->events, res->expected > (1u << 26) ? 1u << 26 : res->expected)) {
        free(r);
        fprintf(err, "cairn-bench: out of memory\n");
        return -1;
    }
    r->cfg = cfg;
    r->endpoints = endpoints;
    r->n_endpoints = n;
    r->err = err;
    r->res = res;
    r->n_watches = res->watchers;
    r->n_groups = watch_threads(cfg);
    r->groups = calloc(r->n_groups, sizeof *r->groups);
    r->watches = calloc(r->n_watches, sizeof *r->watches);
    bool ok = r->groups && r->watches;
    if ((r->latency = cfg->cmd == BENCH_CMD_WATCH_LATENCY)) {
        r->key = calloc(1, cfg->key_size);
        r->ack_ns = calloc(cfg->total, sizeof *r->ack_ns);
        r->event_ns = calloc(res->expected, sizeof *r->event_ns);
        ok = ok && r->key && r->ack_ns && r->event_ns;
        if (r->key)
            bench_key_write(r->key, cfg->key_size, 0);
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    int rc = -1;
    unsigned inited = 0, started = 0;
    while (ok && inited < r->n_groups && group_init(r, inited) == 0)
        inited++;
    if (!ok || inited < r->n_groups) {
        if (ok) /* the group that failed: what it holds, and its loop when that opened */
            group_free(&r->groups[inited]);
        fprintf(err, "cairn-bench: out of memory\n");
    }
    for (; inited == r->n_groups && started < r->n_groups; started++)
        if (pthread_create(&r->groups[started].thread, NULL, watch_thread, &r->groups[started]))
            break;
    pthread_mutex_lock(&r->mu); /* every started thread's watches created, or a failure */
    if (inited == r->n_groups && started < r->n_groups) {
        fprintf(err, "cairn-bench: cannot start a watch thread\n");
        r->failed = true;
    }
    while (r->ready < started && !r->failed)
        pthread_cond_wait(&r->cond, &r->mu);
    bool failed = r->failed || inited < r->n_groups;
    pthread_mutex_unlock(&r->mu);
    uint64_t t0 = uv_hrtime();
    if (failed)
        bench_stats_init(&res->puts, 0);
    else if (r->latency ? bench_stats_init(&res->puts, cfg->total) == 0 &&
                              latency_puts(r, endpoints, n) == 0
                        : bench_run(cfg, endpoints, n, &res->puts, &res->puts_ns, err) == 0)
        rc = 0;
    atomic_store(&r->abort, failed);
    atomic_store(&r->stop, true);
    uint64_t last_event_ns = 0;
    for (unsigned i = 0; i < inited; i++) {
        struct wgroup *g = &r->groups[i];
        if (i < started) {
            uv_async_send(&g->wake);
            pthread_join(g->thread, NULL);
        } else { /* never ran: close its handles on this thread */
            uv_close((uv_handle_t *)&g->wake, NULL);
            uv_close((uv_handle_t *)&g->quiet, NULL);
            uv_run(&g->loop, UV_RUN_DEFAULT);
        }
        uv_loop_close(&g->loop);
        res->received += g->received;
        res->watch_errors += g->watch_errors;
        for (size_t j = 0; j < g->events.n_lat; j++)
            bench_stats_ok(&res->events, g->events.lat_ns[j]);
        if (g->last_event_ns > last_event_ns)
            last_event_ns = g->last_event_ns;
        group_free(g);
    }
    res->events_ns = last_event_ns > t0 ? last_event_ns - t0 : 0;
    if (r->latency)
        latency_events(r);
    for (uint64_t i = 0; r->watches && i < r->n_watches; i++)
        cl_watch_reset(&r->watches[i]);
    free(r->groups);
    free(r->watches);
    free(r->key);
    free(r->ack_ns);
    free(r->event_ns);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cond);
    free(r);
    return rc;
}

/* A report object of bench_report_json() inside another, without its line end. */
static void nested_json(FILE *out, const struct bench_json_info *info,
                        const struct bench_summary *sm, const struct bench_stats *s)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    if (!m) {
        fputs("null", out);
        return;
    }
    bench_report_json(m, info, sm, s);
    fclose(m);
    while (len && buf[len - 1] == '\n')
        len--;
    fwrite(buf, 1, len, out);
    free(buf);
}

void bench_watch_report(FILE *out, const struct bench_config *cfg, char *const *endpoints, size_t n,
                        struct bench_watch_result *res)
{
    struct bench_summary ev, puts;
    bench_stats_summarize(&res->events, res->events_ns, &ev);
    bench_stats_summarize(&res->puts, res->puts_ns, &puts);
    double eps = res->events_ns ? (double)res->received * 1e9 / (double)res->events_ns : 0;
    bool latency = cfg->cmd == BENCH_CMD_WATCH_LATENCY;
    if (cfg->output == BENCH_OUT_JSON) {
        fprintf(out,
                "{\"workload\": \"%s\", \"streams\": %u, \"watch_per_stream\": %u, "
                "\"watchers\": %llu, \"expected_events\": %llu, \"events\": %llu, "
                "\"events_per_s\": %.3f, \"watch_errors\": %llu, \"events_report\": ",
                bench_cmd_name(cfg->cmd), cfg->streams, cfg->watch_per_stream,
                (unsigned long long)res->watchers, (unsigned long long)res->expected,
                (unsigned long long)res->received, eps, (unsigned long long)res->watch_errors);
        struct bench_json_info info = {.workload = "watch-events",
                                       .endpoints = (const char *const *)endpoints,
                                       .n_endpoints = n,
                                       .conns = cfg->conns,
                                       .clients = cfg->clients};
        nested_json(out, &info, &ev, &res->events);
        fputs(", \"puts\": ", out);
        info.workload = "watch-puts";
        nested_json(out, &info, &puts, &res->puts);
        fputs("}\n", out);
        return;
    }
    fprintf(out, "%u streams, %u watchers each: %llu of %llu events received, %.4f events/sec\n",
            cfg->streams, cfg->watch_per_stream, (unsigned long long)res->received,
            (unsigned long long)res->expected, eps);
    if (latency) { /* etcd's watch-latency: the puts, then the events timed from their answers */
        fputs("\nPut summary:\n", out);
        bench_report_text(out, &puts, &res->puts, cfg->precise);
        fputs("\nWatch events summary:\n", out);
        bench_report_text(out, &ev, &res->events, cfg->precise);
        return;
    }
    fputs("\nWatch events received summary (put-to-event latency):\n", out);
    bench_report_text(out, &ev, &res->events, cfg->precise);
    fputs("\nPut summary:\n", out);
    bench_report_text(out, &puts, &res->puts, cfg->precise);
}

void bench_watch_result_free(struct bench_watch_result *res)
{
    bench_stats_free(&res->events);
    bench_stats_free(&res->puts);
}
