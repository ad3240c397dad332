/* client/bench/stats.c — latencies, errors and their summary (see stats.h). */
#include "client/bench/stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const double bench_pctls[BENCH_N_PCTLS] = {10, 25, 50, 75, 90, 95, 99, 99.9};

int bench_stats_init(struct bench_stats *s, size_t capacity)
{
    memset(s, 0, sizeof *s);
    s->lat_ns = malloc((capacity ? capacity : 1) * sizeof *s->lat_ns);
    if (!s->lat_ns)
        return -1;
    /* touched now, so that recording during the run does not fault its pages in (a memset of 0
     * would be turned into calloc's untouched pages) */
    volatile uint8_t *page = (volatile uint8_t *)s->lat_ns;
    for (size_t i = 0; i < capacity * sizeof *s->lat_ns; i += 4096)
        page[i] = 0;
    s->cap = capacity;
    return 0;
}

void bench_stats_free(struct bench_stats *s)
{
    for (size_t i = 0; i < s->n_errors; i++)
        free(s->errors[i].text);
    free(s->errors);
    free(s->lat_ns);
    memset(s, 0, sizeof *s);
}

void bench_stats_ok(struct bench_stats *s, uint64_t ns)
{
    if (s->n_lat < s->cap)
        s->lat_ns[s->n_lat++] = ns;
}

void bench_stats_error(struct bench_stats *s, const char *text)
{
    if (!text)
        text = "out of memory";
    s->n_failed++;
    for (size_t i = 0; i < s->n_errors; i++) {
        if (!strcmp(s->errors[i].text, text)) {
            s->errors[i].count++;
            return;
        }
    }
    char *copy = strdup(text);
    struct bench_error *grown = realloc(s->errors, (s->n_errors + 1) * sizeof *grown);
    if (!copy || !grown) {
        free(copy);
        if (grown)
            s->errors = grown;
        /* Out of memory: fold it into the first error, if any, so the count stays right. */
        if (s->n_errors)
            s->errors[0].count++;
        return;
    }
    s->errors = grown;
    s->errors[s->n_errors++] = (struct bench_error){.text = copy, .count = 1};
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void bench_stats_summarize(struct bench_stats *s, uint64_t total_ns, struct bench_summary *out)
{
    memset(out, 0, sizeof *out);
    size_t n = s->n_lat;
    out->total_ns = total_ns;
    out->ok = n;
    out->failed = s->n_failed;
    out->requests = n + s->n_failed;
    double total_s = (double)total_ns / 1e9;
    out->rps = total_s > 0 ? (double)n / total_s : 0;
    if (!n)
        return;

    qsort(s->lat_ns, n, sizeof *s->lat_ns, cmp_u64);
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)s->lat_ns[i] / 1e9;
    out->average = sum / (double)n;
    double var = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)s->lat_ns[i] / 1e9 - out->average;
        var += d * d;
    }
    out->stddev = sqrt(var / (double)n);
    out->fastest = (double)s->lat_ns[0] / 1e9;
    out->slowest = (double)s->lat_ns[n - 1] / 1e9;

    size_t j = 0;
    for (size_t i = 0; i < n && j < BENCH_N_PCTLS; i++) {
        double current = (double)i * 100.0 / (double)n;
        while (j < BENCH_N_PCTLS && current >= bench_pctls[j])
            out->pct[j++] = (double)s->lat_ns[i] / 1e9;
    }
    for (; j < BENCH_N_PCTLS; j++)
        out->pct[j] = out->slowest;

    /* Rows: fastest + k * width for k < 10, then the slowest; a latency goes to the first row
     * whose bound is at or above it. */
    int rows = BENCH_HIST_ROWS;
    double width = (out->slowest - out->fastest) / (double)(rows - 1);
    for (int k = 0; k < rows - 1; k++)
        out->hist_bound[k] = out->fastest + width * (double)k;
    out->hist_bound[rows - 1] = out->slowest;
    int row = 0;
    for (size_t i = 0; i < n;) {
        double lat = (double)s->lat_ns[i] / 1e9;
        if (lat <= out->hist_bound[row] || row == rows - 1) {
            out->hist_count[row]++;
            i++;
        } else {
            row++;
        }
    }
}
