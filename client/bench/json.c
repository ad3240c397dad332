/* client/bench/json.c — the -w json object (see json.h). */
#include "client/bench/json.h"

#include <stdlib.h>

#include "client/bench/report.h"

/* The length of the well-formed UTF-8 sequence at p (a lead byte ≥ 0x80), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    size_t n = p[0] >= 0xf0 && p[0] <= 0xf4 ? 4 : p[0] >= 0xe0 ? 3 : p[0] >= 0xc2 ? 2 : 0;
    if (!n || p[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((p[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

void bench_json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\r':
            fputs("\\r", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            if (*p < 0x20) {
                fprintf(out, "\\u%04x", *p);
            } else if (*p < 0x80) {
                fputc(*p, out);
            } else {
                size_t n = utf8_len(p);
                if (n) {
                    fwrite(p, 1, n, out);
                    p += n - 1;
                } else {
                    fputs("\\ufffd", out); /* not UTF-8: a server's stray byte */
                }
            }
        }
    }
    fputc('"', out);
}

static void ms(FILE *out, const char *name, double seconds)
{
    fprintf(out, "\"%s\": %.6f", name, seconds * 1e3);
}

void bench_report_json(FILE *out, const struct bench_json_info *info,
                       const struct bench_summary *sm, const struct bench_stats *s)
{
    fputs("{\"workload\": ", out);
    bench_json_string(out, info->workload);
    if (info->extra)
        fprintf(out, ", %s", info->extra);
    fputs(", \"endpoints\": [", out);
    for (size_t i = 0; i < info->n_endpoints; i++) {
        if (i)
            fputs(", ", out);
        bench_json_string(out, info->endpoints[i]);
    }
    fprintf(out, "], \"conns\": %u, \"clients\": %u, ", info->conns, info->clients);
    ms(out, "total_ms", (double)sm->total_ns / 1e9);
    fprintf(out, ", \"requests\": %llu, \"ok\": %llu, \"errors\": %llu, \"rps\": %.3f, ",
            (unsigned long long)sm->requests, (unsigned long long)sm->ok,
            (unsigned long long)sm->failed, sm->rps);
    ms(out, "avg_ms", sm->average);
    fputs(", ", out);
    ms(out, "min_ms", sm->fastest);
    fputs(", ", out);
    ms(out, "max_ms", sm->slowest);
    fputs(", ", out);
    ms(out, "stddev_ms", sm->stddev);
    fputs(", \"percentiles_ms\": {", out);
    for (int i = 0; i < BENCH_N_PCTLS; i++) {
        char name[32], p[24];
        snprintf(name, sizeof name, "p%s", bench_format_g(bench_pctls[i], p, sizeof p));
        if (i)
            fputs(", ", out);
        ms(out, name, sm->pct[i]);
    }
    fputs("}, \"histogram\": [", out);
    for (int i = 0; sm->ok && i < BENCH_HIST_ROWS; i++) {
        if (i)
            fputs(", ", out);
        fputc('{', out);
        ms(out, "le_ms", sm->hist_bound[i]);
        fprintf(out, ", \"count\": %llu}", (unsigned long long)sm->hist_count[i]);
    }
    fputs("], \"error_distribution\": [", out);
    size_t *order = s->n_errors ? malloc(s->n_errors * sizeof *order) : NULL;
    if (order)
        bench_errors_sorted(s, order);
    for (size_t i = 0; i < s->n_errors; i++) {
        const struct bench_error *e = &s->errors[order ? order[i] : i];
        if (i)
            fputs(", ", out);
        fputs("{\"error\": ", out);
        bench_json_string(out, e->text);
        fprintf(out, ", \"count\": %llu}", (unsigned long long)e->count);
    }
    free(order);
    fputs("]}\n", out);
}
