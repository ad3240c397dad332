/* client/bench/workload.h — what a workload sends: each one (put.c, range.c, txn_put.c) builds
 * the request of every issue, as etcd's benchmark commands do, into memory that each bench client
 * owns, so that issuing allocates nothing (the client library copies the request when the call
 * starts). */
#ifndef CAIRN_CLIENT_BENCH_WORKLOAD_H
#define CAIRN_CLIENT_BENCH_WORKLOAD_H

#include <stdint.h>

#include "client/bench/flags.h"
#include "client/cairn_client.h"

struct bench_workload {
    const char *name;               /* the command's name */
    const struct cl_method *method; /* the RPC every request calls */

    /* Prepares what all clients share (the value of the writes). Returns 0 and *shared (freed
     * by shared_free), or -1 when out of memory. cfg must outlive it. */
    int (*shared_new)(const struct bench_config *cfg, uint64_t seed, void **shared);
    void (*shared_free)(void *shared);

    /* Prepares one client's request memory; seed drives its random choices. Returns 0 and
     * *state (freed by client_free), or -1 when out of memory. shared must outlive it. */
    int (*client_new)(const struct bench_config *cfg, void *shared, uint64_t seed, void **state);
    void (*client_free)(void *state);

    /* The request of the run's i-th issue (i counts from 0 over all clients), built in state:
     * valid until the next make() on the same state. */
    const ProtobufCMessage *(*make)(void *state, uint64_t i);
};

extern const struct bench_workload bench_workload_put;     /* put.c */
extern const struct bench_workload bench_workload_range;   /* range.c */
extern const struct bench_workload bench_workload_txn_put; /* txn_put.c */

/* The workload of a command, or NULL for BENCH_CMD_NONE. */
const struct bench_workload *bench_workload_of(enum bench_cmd cmd);

#endif
