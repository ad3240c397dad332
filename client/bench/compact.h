/* client/bench/compact.h — put's --compact-interval: every interval, read the current revision
 * (a Range of "foo", as etcd's benchmark does) and compact at that revision minus
 * --compact-index-delta. A failure is reported on stderr and the run goes on; a revision at or
 * below the last one compacted is skipped (compacting it again would only fail). */
#ifndef CAIRN_CLIENT_BENCH_COMPACT_H
#define CAIRN_CLIENT_BENCH_COMPACT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

#include "client/cairn_client.h"

struct bench_compactor {
    uv_timer_t timer;                        /* fires every interval */
    struct cl_client *client;                /* the run's first connection (borrowed) */
    int64_t delta;                           /* --compact-index-delta */
    struct cl_call call;                     /* the Range, then the Compact */
    bool busy;                               /* call is in flight */
    bool closing;                            /* bench_compactor_close() was called */
    bool timer_closed;                       /* the timer handle's close has run */
    int64_t compacted;                       /* the last revision compacted here, or 0 */
    uint64_t n_compactions;                  /* compactions that succeeded */
    FILE *err;                               /* where failures are reported */
    void (*done)(struct bench_compactor *c); /* bench_compactor_close()'s callback */
};

/* Starts compacting through client every interval_ms (≥ 1). Returns 0 or a libuv error. */
int bench_compactor_start(struct bench_compactor *c, uv_loop_t *loop, struct cl_client *client,
                          uint64_t interval_ms, int64_t delta, FILE *err);

/* Stops: cancels a call in flight and closes the timer; done(c) runs once both are over (c must
 * stay alive until then). Call it before closing the client. */
void bench_compactor_close(struct bench_compactor *c, void (*done)(struct bench_compactor *c));

#endif
