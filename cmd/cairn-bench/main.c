/* cmd/cairn-bench/main.c — cairn-bench: etcd's benchmark tool's workloads against any etcd v3
 * server. Flags (client/bench/flags.h) → leader lookup (leader.h) → the run (run.h) → the report
 * (report.h, json.h). Exit 0 after a run (failed requests are in the report), 1 when it could
 * not run. */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#include "client/bench/flags.h"
#include "client/bench/json.h"
#include "client/bench/leader.h"
#include "client/bench/lease.h"
#include "client/bench/report.h"
#include "client/bench/run.h"
#include "client/bench/stats.h"
#include "client/bench/watch.h"

int main(int argc, char **argv)
{
    /* The heap is kept, not handed back and faulted in again as the watchers' messages come and
     * go: page faults of the measuring process would be measured. */
    mallopt(M_TRIM_THRESHOLD, 512 << 20);
    struct bench_config cfg;
    enum bench_flags_result fr = bench_flags_parse(argc, argv, &cfg, stdout, stderr);
    if (fr != BENCH_FLAGS_RUN) {
        bench_config_free(&cfg);
        return fr == BENCH_FLAGS_HELP ? 0 : 1;
    }

    char **eps = cfg.endpoints, **leader = NULL;
    size_t n_eps = cfg.n_endpoints, n_leader = 0;
    if (cfg.target_leader) {
        if (bench_find_leader(cfg.endpoints, cfg.n_endpoints, cfg.dial_timeout_ms, &leader,
                              &n_leader, stderr)) {
            bench_config_free(&cfg);
            return 1;
        }
        eps = leader;
        n_eps = n_leader;
    }
    if (cfg.cmd == BENCH_CMD_WATCH || cfg.cmd == BENCH_CMD_WATCH_LATENCY) {
        struct bench_watch_result wres;
        int wrc = bench_watch_run(&cfg, eps, n_eps, &wres, stderr);
        if (wrc == 0)
            bench_watch_report(stdout, &cfg, eps, n_eps, &wres);
        bench_watch_result_free(&wres);
        for (size_t i = 0; i < n_leader; i++)
            free(leader[i]);
        free(leader);
        bench_config_free(&cfg);
        if (fflush(stdout) != 0)
            wrc = -1;
        return wrc ? 1 : 0;
    }
    if (cfg.cmd == BENCH_CMD_LEASE_KEEPALIVE) {
        struct bench_lease_result lres;
        int lrc = bench_lease_run(&cfg, eps, n_eps, &lres, stderr);
        if (lrc == 0)
            bench_lease_report(stdout, &cfg, eps, n_eps, &lres);
        bench_lease_result_free(&lres);
        for (size_t i = 0; i < n_leader; i++)
            free(leader[i]);
        free(leader);
        bench_config_free(&cfg);
        if (fflush(stdout) != 0)
            lrc = -1;
        return lrc ? 1 : 0;
    }
    if (cfg.cmd == BENCH_CMD_RANGE && cfg.output == BENCH_OUT_SIMPLE)
        printf("bench with %s range\n", cfg.serializable ? "serializable" : "linearizable");
    fflush(stdout);

    struct bench_stats stats;
    uint64_t total_ns;
    int rc = bench_run(&cfg, eps, n_eps, &stats, &total_ns, stderr);
    if (rc == 0) {
        struct bench_summary sm;
        bench_stats_summarize(&stats, total_ns, &sm);
        if (cfg.output == BENCH_OUT_JSON) {
            struct bench_json_info info = {
                .workload = bench_cmd_name(cfg.cmd),
                .endpoints = (const char *const *)eps,
                .n_endpoints = n_eps,
                .conns = cfg.conns,
                .clients = cfg.clients,
            };
            bench_report_json(stdout, &info, &sm, &stats);
        } else {
            bench_report_text(stdout, &sm, &stats, cfg.precise);
            if (cfg.cmd != BENCH_CMD_RANGE)
                putchar('\n'); /* etcd's put and txn-put print their report with Println */
        }
    }
    bench_stats_free(&stats);
    for (size_t i = 0; i < n_leader; i++)
        free(leader[i]);
    free(leader);
    bench_config_free(&cfg);
    if (fflush(stdout) != 0)
        rc = -1;
    return rc ? 1 : 0;
}
