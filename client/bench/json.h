/* client/bench/json.h — the result as one JSON object on stdout (-w json), for scripts.
 *
 * Fields (times in milliseconds as decimal numbers, counts as integers):
 *   workload        "put", "range", "txn-put" or "lease-keepalive" (which adds "leases" and
 *                   "ttl" after it)
 *   endpoints       the endpoints the requests went to (after --target-leader)
 *   conns, clients  as given
 *   total_ms        wall time from the first request to the last answer
 *   requests        answered requests, successful or not (== --total after a complete run)
 *   ok              successful requests
 *   errors          failed requests (requests == ok + errors)
 *   rps             ok / total time: etcd's Requests/sec
 *   avg_ms, min_ms, max_ms, stddev_ms
 *                   over successful requests (stddev: population); 0 when none succeeded
 *   percentiles_ms  {"p10", "p25", "p50", "p75", "p90", "p95", "p99", "p99.9"}: the latency
 *                   distribution of the text report (client/bench/stats.h says how)
 *   histogram       [{"le_ms": bound, "count": n}, ...]: the 11 rows of the text report; a
 *                   successful request is in the first row whose bound is at or above its
 *                   latency; the counts sum to ok
 *   error_distribution
 *                   [{"error": text, "count": n}, ...], most frequent first; texts as etcd's Go
 *                   client renders them; the counts sum to errors */
#ifndef CAIRN_CLIENT_BENCH_JSON_H
#define CAIRN_CLIENT_BENCH_JSON_H

#include <stddef.h>
#include <stdio.h>

#include "client/bench/stats.h"

/* What the JSON object says about the run besides its statistics. */
struct bench_json_info {
    const char *workload;         /* the command's name */
    const char *const *endpoints; /* where the requests went */
    size_t n_endpoints;           /* entries in endpoints */
    unsigned conns, clients;      /* --conns, --clients */
    const char *extra;            /* the workload's own members, written after "workload" as they
                                     are ("\"leases\": 10, \"ttl\": 100"), or NULL */
};

/* Writes the object (and a newline) to out. */
void bench_report_json(FILE *out, const struct bench_json_info *info,
                       const struct bench_summary *sm, const struct bench_stats *s);

/* Writes s as a JSON string literal (quoted, escaped) to out. */
void bench_json_string(FILE *out, const char *s);

#endif
