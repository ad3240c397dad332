/* client/bench/progress.c — the progress bar (see progress.h). */
#include "client/bench/progress.h"

#include <unistd.h>

#define REDRAW_MS 200
#define BAR_WIDTH 40

static void draw(struct bench_progress *p)
{
    uint64_t done = *p->done;
    double frac = p->total ? (double)done / (double)p->total : 1;
    int filled = (int)(frac * BAR_WIDTH);
    double secs = (double)(uv_hrtime() - p->start_ns) / 1e9;
    fprintf(p->out, "\r %llu / %llu B", (unsigned long long)done, (unsigned long long)p->total);
    for (int i = 0; i < BAR_WIDTH; i++)
        fputc(i < filled ? 'o' : ' ', p->out);
    fprintf(p->out, "m ! %6.2f%% %.0fs ", frac * 100, secs);
    fflush(p->out);
}

static void on_timer(uv_timer_t *t)
{
    draw(t->data);
}

int bench_progress_start(struct bench_progress *p, uv_loop_t *loop, uint64_t total,
                         const uint64_t *done)
{
    *p = (struct bench_progress){.out = stderr, .total = total, .done = done};
    p->start_ns = uv_hrtime();
    if (!isatty(STDERR_FILENO))
        return 0;
    int err = uv_timer_init(loop, &p->timer);
    if (err)
        return err;
    p->enabled = true;
    p->timer.data = p;
    draw(p);
    return uv_timer_start(&p->timer, on_timer, REDRAW_MS, REDRAW_MS);
}

void bench_progress_finish(struct bench_progress *p)
{
    if (!p->enabled || p->finished)
        return;
    p->finished = true;
    draw(p);
    fputc('\n', p->out);
    fflush(p->out);
    uv_close((uv_handle_t *)&p->timer, NULL);
}
