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

/* ---- the watchers, on their own thread */

struct wrun {
    const struct bench_config *cfg;
    bool latency;       /* watch-latency: one key; events timed from their put's answer */
    uint8_t *key;       /* latency: the key put and watched (key_size bytes) */
    uint64_t *ack_ns;   /* latency: when put i was answered (0: it failed) */
    uint64_t *event_ns; /* latency: watcher w's event of put i at [w * total + i] (0: none) */
    char *const *endpoints;
    size_t n_endpoints;
    FILE *err;
    uv_loop_t loop;
    uv_async_t wake;  /* the main thread: the puts are done */
    uv_timer_t quiet; /* no event for a while after the puts */
    struct cl_client **clients;
    struct cl_watcher **watchers;
    struct cl_watch *watches;
    uint64_t n_watches, created, ended;
    struct bench_watch_result *res;
    uint64_t last_event_ns;
    bool closing;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool ready;  /* every watch is created (or setting up failed) */
    bool failed; /* setting up failed */
    atomic_bool puts_done;
};

static void finish_watchers(struct wrun *r)
{
    if (r->closing)
        return;
    r->closing = true;
    uv_timer_stop(&r->quiet);
    for (unsigned i = 0; i < r->cfg->streams; i++)
        if (r->watchers[i])
            cl_watcher_close(r->watchers[i]);
    for (unsigned i = 0; i < r->cfg->conns; i++)
        if (r->clients[i])
            cl_client_close(r->clients[i], NULL, NULL);
    uv_close((uv_handle_t *)&r->wake, NULL);
    uv_close((uv_handle_t *)&r->quiet, NULL);
}

static void signal_ready(struct wrun *r, bool failed)
{
    pthread_mutex_lock(&r->mu);
    r->ready = true;
    r->failed = r->failed || failed;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->mu);
}

static void on_watch(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    struct wrun *r = w->data;
    if (resp->canceled) {
        r->ended++;
        if (!r->closing) {
            r->res->watch_errors++;
            if (r->created < r->n_watches) {
                fprintf(r->err, "cairn-bench: a watch could not be created: %s\n",
                        w->message ? w->message : "cancelled");
                signal_ready(r, true);
                finish_watchers(r);
            }
        }
        return;
    }
    if (resp->created) {
        if (++r->created == r->n_watches)
            signal_ready(r, false);
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
            bench_stats_ok(&r->res->events, now > v ? now - v : 0);
        else if (v < r->cfg->total)
            r->event_ns[(uint64_t)(w - r->watches) * r->cfg->total + v] = now;
        r->res->received++;
    }
    if (resp->n_events)
        r->last_event_ns = now;
    if (r->res->received >= r->res->expected)
        finish_watchers(r);
    else if (atomic_load(&r->puts_done))
        uv_timer_again(&r->quiet);
}

static void on_quiet(uv_timer_t *t)
{
    finish_watchers(t->data);
}

static void on_wake(uv_async_t *a)
{
    struct wrun *r = a->data;
    if (r->res->received >= r->res->expected)
        finish_watchers(r);
    else
        uv_timer_start(&r->quiet, on_quiet, 10000, 10000);
}

static void *watch_thread(void *arg)
{
    struct wrun *r = arg;
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
    bool failed = false;
    for (unsigned i = 0; i < cfg->conns && !failed; i++) {
        struct cl_options co;
        cl_options_default(&co);
        const char *ep = r->endpoints[i % r->n_endpoints];
        co.endpoints = &ep;
        co.n_endpoints = 1;
        if (cfg->dial_timeout_ms)
            co.dial_timeout_ms = cfg->dial_timeout_ms;
        failed = cl_client_new(&r->loop, &co, &r->clients[i]) != 0;
    }
    for (unsigned s = 0; s < cfg->streams && !failed; s++) {
        failed = cl_watcher_new(r->clients[s % cfg->conns], false, &r->watchers[s]) != 0;
        for (unsigned k = 0; k < cfg->watch_per_stream && !failed; k++) {
            struct cl_watch *w = &r->watches[(uint64_t)s * cfg->watch_per_stream + k];
            w->cb = on_watch;
            w->data = r;
            failed = cl_watch_start(r->watchers[s], w, &o) != 0;
        }
    }
    if (failed) {
        fprintf(r->err, "cairn-bench: cannot set up the watchers\n");
        signal_ready(r, true);
        finish_watchers(r);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (!r->ready)
        signal_ready(r, true);
    return NULL;
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
    r->clients = calloc(cfg->conns, sizeof *r->clients);
    r->watchers = calloc(cfg->streams, sizeof *r->watchers);
    r->watches = calloc(r->n_watches, sizeof *r->watches);
    bool lat_ok = true;
    if ((r->latency = cfg->cmd == BENCH_CMD_WATCH_LATENCY)) {
        r->key = calloc(1, cfg->key_size);
        r->ack_ns = calloc(cfg->total, sizeof *r->ack_ns);
        r->event_ns = calloc(res->expected, sizeof *r->event_ns);
        lat_ok = r->key && r->ack_ns && r->event_ns;
        if (r->key)
            bench_key_write(r->key, cfg->key_size, 0);
    }
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cond, NULL);
    int rc = -1;
    pthread_t th;
    bool started = false;
    if (!r->clients || !r->watchers || !r->watches || !lat_ok || uv_loop_init(&r->loop)) {
        fprintf(err, "cairn-bench: out of memory\n");
        goto out;
    }
    uv_async_init(&r->loop, &r->wake, on_wake);
    uv_timer_init(&r->loop, &r->quiet);
    r->wake.data = r->quiet.data = r;
    if (pthread_create(&th, NULL, watch_thread, r)) {
        fprintf(err, "cairn-bench: cannot start the watch thread\n");
        uv_close((uv_handle_t *)&r->wake, NULL);
        uv_close((uv_handle_t *)&r->quiet, NULL);
        uv_run(&r->loop, UV_RUN_DEFAULT);
        uv_loop_close(&r->loop);
        goto out;
    }
    started = true;
    pthread_mutex_lock(&r->mu);
    while (!r->ready)
        pthread_cond_wait(&r->cond, &r->mu);
    bool failed = r->failed;
    pthread_mutex_unlock(&r->mu);
    uint64_t t0 = uv_hrtime();
    if (failed)
        bench_stats_init(&res->puts, 0);
    else if (r->latency ? bench_stats_init(&res->puts, cfg->total) == 0 &&
                              latency_puts(r, endpoints, n) == 0
                        : bench_run(cfg, endpoints, n, &res->puts, &res->puts_ns, err) == 0)
        rc = 0;
    atomic_store(&r->puts_done, true);
    uv_async_send(&r->wake);
    pthread_join(th, NULL);
    uv_loop_close(&r->loop);
    res->events_ns = r->last_event_ns > t0 ? r->last_event_ns - t0 : 0;
    if (r->latency)
        latency_events(r);
out:
    if (!started)
        bench_stats_init(&res->puts, 0);
    for (uint64_t i = 0; r->watches && i < r->n_watches; i++)
        cl_watch_reset(&r->watches[i]);
    free(r->clients);
    free(r->watchers);
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
