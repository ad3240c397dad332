/* client/bench/run.h — one benchmark run on one libuv loop, etcd's benchmark's model:
 *
 * - --conns connections, each a cl_client of its own with one endpoint, the endpoints dealt out
 *   round robin (connection k talks to endpoint k mod n);
 * - --clients bench clients, client i on connection i mod conns: each is a sequential issuer
 *   with one cl_call that starts the next request from the previous one's callback, so at most
 *   --clients requests are in flight;
 * - --total requests over all clients, each the workload's request for its number;
 * - --rate: a token per request from one bucket shared by all (ratelimit.h).
 *
 * Before the clock starts, every connection that will carry requests is opened with a Status
 * call; when one cannot be reached the run stops there with a dial error (instead of counting
 * thousands of failed requests). A request's latency is from just before its call starts to its
 * callback, by uv_hrtime() (monotonic); the run's time is from the first start to the last
 * callback. Failed requests are counted by their error text (cl_call_error_text) and do not stop
 * the run. */
#ifndef CAIRN_CLIENT_BENCH_RUN_H
#define CAIRN_CLIENT_BENCH_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client/bench/flags.h"
#include "client/bench/stats.h"

/* Runs cfg's workload against endpoints (n ≥ 1; cfg->endpoints, or the leader's). On return 0
 * the run finished: stats holds every answer (stats_init'ed here; bench_stats_free() it) and
 * *total_ns its duration. Returns -1 when it could not start (out of memory, an endpoint that
 * does not answer), after writing why to err; stats is then empty but still to be freed. */
int bench_run(const struct bench_config *cfg, char *const *endpoints, size_t n,
              struct bench_stats *stats, uint64_t *total_ns, FILE *err);

#endif
