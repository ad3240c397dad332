/* client/bench/progress.h — the progress bar on stderr, in the spirit of etcd's ("Bom !"): the
 * answered count, a bar, the percentage and the elapsed time, redrawn in place every 200 ms by a
 * uv_timer. Drawn only when stderr is a terminal; when it is piped nothing is written. */
#ifndef CAIRN_CLIENT_BENCH_PROGRESS_H
#define CAIRN_CLIENT_BENCH_PROGRESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <uv.h>

struct bench_progress {
    uv_timer_t timer;     /* redraws */
    FILE *out;            /* stderr */
    uint64_t total;       /* requests of the run */
    const uint64_t *done; /* the run's answered count, read at each redraw */
    uint64_t start_ns;    /* uv_hrtime() at start */
    bool enabled;         /* stderr is a terminal: the timer exists */
    bool finished;        /* bench_progress_finish() has drawn the last state */
};

/* Starts the bar on loop for total requests, reading *done. Draws nothing and starts no timer
 * when stderr is not a terminal. Returns 0 or a libuv error. */
int bench_progress_start(struct bench_progress *p, uv_loop_t *loop, uint64_t total,
                         const uint64_t *done);

/* Draws the final state and ends the line, then closes the timer (p must stay alive until the
 * loop has run the close). Idempotent; a no-op when disabled. */
void bench_progress_finish(struct bench_progress *p);

#endif
