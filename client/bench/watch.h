/* client/bench/watch.h — the watch workload: how fast a server delivers events to many watchers.
 *
 * --streams Watch streams over the --conns connections (stream i on connection i mod conns),
 * --watch-per-stream watchers on each, every one watching the prefix "watch-bench/". Once the
 * server has answered every create, --put-total puts (by --clients issuers, at most --put-rate a
 * second) write keys under the prefix (--key-size, --key-space-size, --sequential-keys as for
 * put); each value starts with the monotonic time (uv_hrtime) just before its put was sent, so a
 * watcher takes its event's latency from it. The run ends when every watcher has every event,
 * or when none arrived for 10 s after the last put was answered (then fewer are reported).
 * Events per second: events received / (last event − first put). The watchers run on threads of
 * their own (--watch-threads, default 1; connection i and its streams on thread i mod threads),
 * each with a loop and clients of its own, so receiving does not slow the puts. One thread is the
 * default because on a machine with few CPUs more receiving threads take CPU from the server
 * being measured (on 2 CPUs, two of them cut cairnd's events/s by a third).
 *
 * watch-latency is etcd's command of that name: the watchers (--streams × --watchers-per-stream)
 * all watch one key of --key-size bytes; one client puts it --put-total times, one put at a time,
 * at most --put-rate a second, each value carrying the put's number; an event's latency is from
 * its put's answer to its arrival (0 when it came before the answer). */
#ifndef CAIRN_CLIENT_BENCH_WATCH_H
#define CAIRN_CLIENT_BENCH_WATCH_H

#include <stdio.h>

#include "client/bench/flags.h"
#include "client/bench/stats.h"
#include "client/bench/workload.h"

#define BENCH_WATCH_PREFIX "watch-bench/"

struct bench_watch_result {
    struct bench_stats puts;   /* the puts' latencies and errors */
    uint64_t puts_ns;          /* from the first put to the last answer */
    struct bench_stats events; /* put-to-event (latency: answer-to-event) latency of each event */
    uint64_t events_ns;        /* from the first put to the last event */
    uint64_t received;         /* events received (the latencies kept are capped at 2^26) */
    uint64_t expected;         /* puts × watchers */
    uint64_t watchers;
    uint64_t watch_errors; /* watches that ended (cancelled by the server, stream errors) */
};

/* Runs the workload against endpoints (n ≥ 1). Returns 0 with *res filled (free both stats), or
 * -1 after writing why to err (res's stats are then empty but still to be freed). */
int bench_watch_run(const struct bench_config *cfg, char *const *endpoints, size_t n,
                    struct bench_watch_result *res, FILE *err);

/* Writes the result: etcd-style report text of the events and the puts, or one JSON object
 * {"workload": "watch" or "watch-latency", streams, watch_per_stream, watchers, expected_events,
 * events, events_per_s, watch_errors, "events_report": {latencies as the other workloads' JSON},
 * "puts": {…}}. */
void bench_watch_report(FILE *out, const struct bench_config *cfg, char *const *endpoints, size_t n,
                        struct bench_watch_result *res);

/* Frees the result's stats. */
void bench_watch_result_free(struct bench_watch_result *res);

extern const struct bench_workload bench_workload_watch_put; /* the puts of the workload */

#endif
