/* client/bench/ratelimit.h — the --rate limit: a token bucket shared by all clients of a run,
 * refilled by the clock and woken by one uv_timer (no polling).
 *
 * Tokens arrive every 1/rate seconds. A waiter that finds a token goes at once; otherwise it
 * queues (first come, first served) and the timer wakes the queue when the next token is due.
 * libuv's timers have millisecond resolution and fire late when the loop is busy, so the bucket
 * holds up to 10 ms worth of tokens (at least one): a late wake-up releases the tokens that
 * accrued meanwhile, and the long-run rate stays the one asked for. */
#ifndef CAIRN_CLIENT_BENCH_RATELIMIT_H
#define CAIRN_CLIENT_BENCH_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct bench_rl_waiter;
typedef void (*bench_rl_cb)(struct bench_rl_waiter *w);

/* One party waiting for a token; the caller owns it and keeps it alive while queued. */
struct bench_rl_waiter {
    bench_rl_cb cb;               /* runs (from the timer) when the token is granted */
    struct bench_rl_waiter *next; /* queue link, private */
};

struct bench_ratelimit {
    uv_timer_t timer;                             /* wakes the queue when the next token is due */
    uint64_t interval_ns;                         /* time between tokens */
    uint64_t burst_ns;                            /* how far behind the clock the bucket may fall */
    uint64_t next_ns;                             /* uv_hrtime() when the next token is available */
    struct bench_rl_waiter *head;                 /* queued waiters, oldest first */
    struct bench_rl_waiter *tail;                 /* newest queued waiter */
    bool closed;                                  /* bench_ratelimit_close() was called */
    void (*close_cb)(struct bench_ratelimit *rl); /* bench_ratelimit_close()'s done */
};

/* Initializes rl on loop for rate tokens per second (rate ≥ 1). Returns 0 or a libuv error. */
int bench_ratelimit_init(struct bench_ratelimit *rl, uv_loop_t *loop, uint64_t rate);

/* Takes a token for w. Returns true when one was free (w->cb will not run: go ahead now), or
 * false when w was queued and w->cb will run once its token is due. */
bool bench_ratelimit_take(struct bench_ratelimit *rl, struct bench_rl_waiter *w);

/* Drops the queue (its callbacks never run) and closes the timer; done(rl) runs when the handle
 * is closed (rl must stay alive until then). */
void bench_ratelimit_close(struct bench_ratelimit *rl, void (*done)(struct bench_ratelimit *rl));

#endif
