/* client/bench/report.c — etcd's report layout (see report.h). */
#include "client/bench/report.h"

#include <stdlib.h>
#include <string.h>

#define BAR_CHAR  "\xe2\x88\x8e" /* U+220E END OF PROOF, etcd's histogram bar */
#define BAR_WIDTH 40

char *bench_format_g(double v, char *buf, size_t len)
{
    if (v == 0) {
        snprintf(buf, len, "0");
        return buf;
    }
    /* The fewest significant digits that read back as v. */
    int digits = 1;
    char tmp[64];
    for (; digits < 17; digits++) {
        snprintf(tmp, sizeof tmp, "%.*e", digits - 1, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    snprintf(tmp, sizeof tmp, "%.*e", digits - 1, v);
    int exp = atoi(strchr(tmp, 'e') + 1);
    if (exp < -4 || exp >= 6) {
        snprintf(buf, len, "%s", tmp); /* C writes two exponent digits at least, as Go does */
    } else {
        int decimals = digits - 1 - exp;
        snprintf(buf, len, "%.*f", decimals > 0 ? decimals : 0, v);
    }
    return buf;
}

static const char *num(double v, bool precise, char *buf, size_t len)
{
    if (precise)
        return bench_format_g(v, buf, len);
    snprintf(buf, len, "%4.4f", v);
    return buf;
}

/* Go's %v of a percentile: "10", "99.9". */
static const char *pctl_name(double p, char *buf, size_t len)
{
    return bench_format_g(p, buf, len);
}

void bench_errors_sorted(const struct bench_stats *s, size_t *order)
{
    for (size_t i = 0; i < s->n_errors; i++)
        order[i] = i;
    /* Insertion sort: a handful of distinct errors, and it is stable. */
    for (size_t i = 1; i < s->n_errors; i++) {
        size_t x = order[i], j = i;
        while (j > 0 && s->errors[order[j - 1]].count < s->errors[x].count) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = x;
    }
}

void bench_report_text(FILE *out, const struct bench_summary *sm, const struct bench_stats *s,
                       bool precise)
{
    char a[64], b[64];
    if (sm->ok) {
        fprintf(out, "\nSummary:\n");
        fprintf(out, "  Total:\t%s secs.\n", num((double)sm->total_ns / 1e9, precise, a, 64));
        fprintf(out, "  Slowest:\t%s secs.\n", num(sm->slowest, precise, a, 64));
        fprintf(out, "  Fastest:\t%s secs.\n", num(sm->fastest, precise, a, 64));
        fprintf(out, "  Average:\t%s secs.\n", num(sm->average, precise, a, 64));
        fprintf(out, "  Stddev:\t%s secs.\n", num(sm->stddev, precise, a, 64));
        fprintf(out, "  Requests/sec:\t%s\n", num(sm->rps, precise, a, 64));

        uint64_t max = 0;
        for (int i = 0; i < BENCH_HIST_ROWS; i++)
            if (sm->hist_count[i] > max)
                max = sm->hist_count[i];
        fprintf(out, "\nResponse time histogram:\n");
        for (int i = 0; i < BENCH_HIST_ROWS; i++) {
            uint64_t bar = max ? sm->hist_count[i] * BAR_WIDTH / max : 0;
            fprintf(out, "  %s [%llu]\t|", num(sm->hist_bound[i], precise, a, 64),
                    (unsigned long long)sm->hist_count[i]);
            for (uint64_t k = 0; k < bar; k++)
                fputs(BAR_CHAR, out);
            fputc('\n', out);
        }

        fprintf(out, "\nLatency distribution:\n");
        for (int i = 0; i < BENCH_N_PCTLS; i++)
            if (sm->pct[i] > 0)
                fprintf(out, "  %s%% in %s secs.\n", pctl_name(bench_pctls[i], b, 64),
                        num(sm->pct[i], precise, a, 64));

        /* p50, p90, p99, p99.9 are entries 2, 4, 6, 7 of bench_pctls. */
        fprintf(out, "\nLatency percentiles (ms):\n");
        fprintf(out, "  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f\n", sm->pct[2] * 1e3,
                sm->pct[4] * 1e3, sm->pct[6] * 1e3, sm->pct[7] * 1e3);
    }
    if (s->n_errors) {
        size_t *order = malloc(s->n_errors * sizeof *order);
        if (order)
            bench_errors_sorted(s, order);
        fprintf(out, "\nError distribution:\n");
        for (size_t i = 0; i < s->n_errors; i++) {
            const struct bench_error *e = &s->errors[order ? order[i] : i];
            fprintf(out, "  [%llu]\t%s\n", (unsigned long long)e->count, e->text);
        }
        free(order);
    }
}
