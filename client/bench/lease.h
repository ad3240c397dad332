/* client/bench/lease.h — the lease-keepalive workload: how fast a server renews leases.
 *
 * Before the clock starts, --leases leases (default: one per client, as etcd's benchmark grants)
 * of --ttl seconds are granted, lease j by bench client j mod clients, each client granting its
 * share one at a time. Then each of the --clients bench clients (client i on connection i mod
 * conns, as in run.h) holds one LeaseKeepAlive stream and sends keepalives round robin over its
 * share of the leases — lease i, i + clients, i + 2·clients, … (a client beyond the last lease
 * keeps lease i mod leases alive) — one at a time: a request, its response, the next, until
 * --total responses have come over all clients. A request's latency is from just before it is
 * sent to its response; the run's time from the first request to the last response.
 *
 * A response with TTL ≤ 0 (the lease is gone) counts as the error etcd's client reports for it,
 * "etcdserver: requested lease not found"; a stream that ends counts its request in flight as
 * failed with the stream's status and is opened again at once (so a server that is gone fails
 * the rest of the run quickly, as etcd's tool's requests do). Afterwards the streams are
 * half-closed and the leases revoked, one at a time per client, unless --keep-leases.
 *
 * etcd's own benchmark sends each keepalive with clientv3's KeepAliveOnce, which opens a new
 * stream per request; this one keeps the streams open, as a client holding leases does (clientv3's
 * lessor keeps one stream per client). */
#ifndef CAIRN_CLIENT_BENCH_LEASE_H
#define CAIRN_CLIENT_BENCH_LEASE_H

#include <stdint.h>
#include <stdio.h>

#include "client/bench/flags.h"
#include "client/bench/stats.h"

struct bench_lease_result {
    struct bench_stats stats; /* the keepalives' latencies and errors */
    uint64_t total_ns;        /* from the first keepalive to the last response */
    unsigned leases;          /* leases granted */
    uint64_t not_revoked;     /* leases whose revoke failed at the end (0 with --keep-leases) */
};

/* Runs the workload against endpoints (n ≥ 1). Returns 0 with *res filled (free it with
 * bench_lease_result_free), or -1 when it could not run (a grant failed, an endpoint does not
 * answer, out of memory) after writing why to err; res's stats are then empty but still to be
 * freed. Leases granted before a failure are revoked before it returns. */
int bench_lease_run(const struct bench_config *cfg, char *const *endpoints, size_t n,
                    struct bench_lease_result *res, FILE *err);

/* Writes the result: a line with the leases and clients, then etcd's report text; or with
 * -w json the object of json.h with workload "lease-keepalive" and "leases", "ttl" after it. */
void bench_lease_report(FILE *out, const struct bench_config *cfg, char *const *endpoints, size_t n,
                        struct bench_lease_result *res);

/* Frees the result's stats. */
void bench_lease_result_free(struct bench_lease_result *res);

#endif
