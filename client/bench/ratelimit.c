/* client/bench/ratelimit.c — a token bucket on a uv_timer (see ratelimit.h). */
#include "client/bench/ratelimit.h"

#include <stddef.h>

#define NS_PER_MS 1000000ULL
#define BURST_NS  (10 * NS_PER_MS) /* covers a timer that fires late on a busy loop */

int bench_ratelimit_init(struct bench_ratelimit *rl, uv_loop_t *loop, uint64_t rate)
{
    *rl = (struct bench_ratelimit){0};
    rl->interval_ns = rate >= 1000000000ULL ? 1 : 1000000000ULL / rate;
    rl->burst_ns = BURST_NS > rl->interval_ns ? BURST_NS : rl->interval_ns;
    rl->next_ns = uv_hrtime();
    int err = uv_timer_init(loop, &rl->timer);
    rl->timer.data = rl;
    return err;
}

/* The bucket may not save up more than burst_ns of tokens. */
static void refill(struct bench_ratelimit *rl, uint64_t now)
{
    if (now > rl->burst_ns && rl->next_ns < now - rl->burst_ns)
        rl->next_ns = now - rl->burst_ns;
}

static void on_timer(uv_timer_t *t);

/* Wakes the queue when the next token is due, in whole milliseconds and at least 1 (a 0 ms timer
 * would turn the loop without sleeping until the token is due). */
static void arm(struct bench_ratelimit *rl, uint64_t now)
{
    uint64_t wait_ns = rl->next_ns > now ? rl->next_ns - now : 0;
    uint64_t ms = (wait_ns + NS_PER_MS - 1) / NS_PER_MS;
    uv_timer_start(&rl->timer, on_timer, ms ? ms : 1, 0);
}

bool bench_ratelimit_take(struct bench_ratelimit *rl, struct bench_rl_waiter *w)
{
    uint64_t now = uv_hrtime();
    refill(rl, now);
    if (!rl->head && rl->next_ns <= now) {
        rl->next_ns += rl->interval_ns;
        return true;
    }
    w->next = NULL;
    if (rl->tail)
        rl->tail->next = w;
    else
        rl->head = w;
    rl->tail = w;
    if (!uv_is_active((uv_handle_t *)&rl->timer))
        arm(rl, now);
    return false;
}

static void on_timer(uv_timer_t *t)
{
    struct bench_ratelimit *rl = t->data;
    uint64_t now = uv_hrtime();
    refill(rl, now);
    while (rl->head && !rl->closed && rl->next_ns <= now) {
        struct bench_rl_waiter *w = rl->head;
        rl->head = w->next;
        if (!rl->head)
            rl->tail = NULL;
        rl->next_ns += rl->interval_ns;
        w->cb(w); /* may queue again (behind those already waiting) or close the limiter */
    }
    if (rl->head && !rl->closed && !uv_is_active((uv_handle_t *)&rl->timer))
        arm(rl, now);
}

static void on_closed(uv_handle_t *h)
{
    struct bench_ratelimit *rl = h->data;
    if (rl->close_cb)
        rl->close_cb(rl);
}

void bench_ratelimit_close(struct bench_ratelimit *rl, void (*done)(struct bench_ratelimit *rl))
{
    rl->closed = true;
    rl->head = rl->tail = NULL;
    rl->close_cb = done;
    uv_close((uv_handle_t *)&rl->timer, on_closed);
}
