/* client/bench/report.h — the text report on stdout, in the layout of etcd's benchmark
 * (pkg/report in etcd 3.4: Summary, Response time histogram, Latency distribution, Error
 * distribution), so that the outputs of both tools read side by side, plus one line of the
 * p50/p90/p99/p99.9 latencies in milliseconds. */
#ifndef CAIRN_CLIENT_BENCH_REPORT_H
#define CAIRN_CLIENT_BENCH_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "client/bench/stats.h"

/* Writes sm (and the errors of s, most frequent first) to out. Times print as "%4.4f secs", or
 * with precise as Go's %g does (the shortest text that reads back as the same double). */
void bench_report_text(FILE *out, const struct bench_summary *sm, const struct bench_stats *s,
                       bool precise);

/* Formats v as Go's fmt %g: the shortest decimal that round-trips, in exponent form when the
 * exponent is below -4 or at least 6 ("1.5e-05", "1.234e+06"). Returns buf. */
char *bench_format_g(double v, char *buf, size_t len);

/* The errors of s in the order the reports print them: by count, most frequent first (ties by
 * first appearance). Fills order (s->n_errors entries) with indexes into s->errors. */
void bench_errors_sorted(const struct bench_stats *s, size_t *order);

#endif
