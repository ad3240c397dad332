/* client/bench/workload.c — the command → workload table (see workload.h). */
#include "client/bench/workload.h"

#include "client/bench/watch.h"

#include <stddef.h>

const struct bench_workload *bench_workload_of(enum bench_cmd cmd)
{
    switch (cmd) {
    case BENCH_CMD_PUT:
        return &bench_workload_put;
    case BENCH_CMD_RANGE:
        return &bench_workload_range;
    case BENCH_CMD_TXN_PUT:
        return &bench_workload_txn_put;
    case BENCH_CMD_WATCH:
        return &bench_workload_watch_put;
    case BENCH_CMD_WATCH_LATENCY:   /* its puts are its own (watch.c) */
    case BENCH_CMD_LEASE_KEEPALIVE: /* not an issuer's workload: client/bench/lease.h */
    case BENCH_CMD_NONE:
        break;
    }
    return NULL;
}
