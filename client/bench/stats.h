/* client/bench/stats.h — what a run measured: every successful request's latency, the failures
 * counted by error text, and the summary etcd's report prints (pkg/report in etcd 3.4): total
 * time, slowest, fastest, average, standard deviation, requests per second, a response time
 * histogram and the latency distribution. */
#ifndef CAIRN_CLIENT_BENCH_STATS_H
#define CAIRN_CLIENT_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* The percentiles of the latency distribution: 10, 25, 50, 75, 90, 95, 99, 99.9. */
#define BENCH_N_PCTLS 8
extern const double bench_pctls[BENCH_N_PCTLS];

/* The histogram: 10 equal buckets between fastest and slowest, each labelled by its upper bound,
 * plus the bound at the slowest itself (etcd's 11 rows). */
#define BENCH_HIST_ROWS 11

/* One distinct error text and how often it came. */
struct bench_error {
    char *text;     /* malloc'd */
    uint64_t count; /* requests that failed with it */
};

struct bench_stats {
    uint64_t *lat_ns;           /* latencies of successful requests, in arrival order */
    size_t n_lat;               /* entries used */
    size_t cap;                 /* entries allocated */
    struct bench_error *errors; /* distinct errors, in first-seen order */
    size_t n_errors;            /* entries in errors */
    uint64_t n_failed;          /* failed requests (the sum of the counts) */
};

/* The summary of a finished run. Times in seconds. */
struct bench_summary {
    uint64_t total_ns;                    /* wall time from first request to last answer */
    uint64_t requests;                    /* answered requests, successful or not */
    uint64_t ok;                          /* successful requests */
    uint64_t failed;                      /* failed requests */
    double rps;                           /* ok / total time (etcd's Requests/sec) */
    double fastest, slowest, average;     /* over successful requests; 0 when none */
    double stddev;                        /* population standard deviation */
    double pct[BENCH_N_PCTLS];            /* latency at each of bench_pctls */
    double hist_bound[BENCH_HIST_ROWS];   /* upper bound of each histogram row */
    uint64_t hist_count[BENCH_HIST_ROWS]; /* successful requests in each row; they sum to ok */
};

/* Prepares s for up to capacity successful requests (the run's --total). Returns 0, or -1 when
 * out of memory. */
int bench_stats_init(struct bench_stats *s, size_t capacity);

/* Frees what s holds. */
void bench_stats_free(struct bench_stats *s);

/* Records a success that took ns nanoseconds. At most capacity of them are kept. */
void bench_stats_ok(struct bench_stats *s, uint64_t ns);

/* Records a failure with error text (copied; NULL counts as "out of memory"). */
void bench_stats_error(struct bench_stats *s, const char *text);

/* Computes the summary of the run that took total_ns. Sorts s's latencies.
 *
 * Percentiles follow etcd's report: the latency at sorted index i for the first i with
 * i * 100 / n ≥ p. Where no such index exists (runs of fewer than 1000 requests reach no 99.9th
 * sample that way) it is the slowest, so the distribution is complete and monotonic. */
void bench_stats_summarize(struct bench_stats *s, uint64_t total_ns, struct bench_summary *out);

#endif
