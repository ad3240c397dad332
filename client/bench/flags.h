/* client/bench/flags.h — cairn-bench's command line: etcd's benchmark tool's commands, flags and
 * defaults (tools/benchmark in etcd 3.4), parsed the way its flag library (pflag) reads them.
 *
 * Commands: put, range KEY [END], txn-put, watch, lease-keepalive. Global flags may stand before
 * or after the command; a command's own flags (--key-size, --consistency …) only with that
 * command. Spellings: "--flag value", "--flag=value", boolean "--flag" or "--flag=true|false", the
 * one short flag "-w json" / "-w=json" / "-wjson", and "--" ends the flags. */
#ifndef CAIRN_CLIENT_BENCH_FLAGS_H
#define CAIRN_CLIENT_BENCH_FLAGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* The workloads. */
enum bench_cmd {
    BENCH_CMD_NONE = 0, /* no command given */
    BENCH_CMD_PUT,      /* put: one key per PutRequest */
    BENCH_CMD_RANGE,    /* range KEY [END]: one RangeRequest, repeated */
    BENCH_CMD_TXN_PUT,  /* txn-put: a TxnRequest of --txn-ops puts */
    BENCH_CMD_WATCH, /* watch: watchers on one prefix, then puts under it (client/bench/watch.h) */
    BENCH_CMD_WATCH_LATENCY,  /* watch-latency: watchers on one key, paced puts of it (watch.h) */
    BENCH_CMD_LEASE_KEEPALIVE /* lease-keepalive: renewals on LeaseKeepAlive streams (lease.h) */
};

/* How the result is written to stdout. */
enum bench_output {
    BENCH_OUT_SIMPLE = 0, /* etcd's report text (pkg/report) */
    BENCH_OUT_JSON        /* one JSON object (client/bench/json.h) */
};

/* Upper bounds on what a flag accepts, so that a typo cannot ask for terabytes. */
#define BENCH_MAX_TOTAL          1000000000ULL /* --total */
#define BENCH_MAX_CLIENTS        1000000U      /* --clients */
#define BENCH_MAX_WATCH_THREADS  64U           /* --watch-threads */
#define BENCH_MAX_CONNS          100000U       /* --conns */
#define BENCH_MAX_DATA_SIZE      (64u << 20)   /* --key-size, --val-size (64 MiB) */
#define BENCH_MAX_TXN_OPS        100000U       /* --txn-ops */
#define BENCH_MAX_ENDPOINTS      1024U         /* entries of --endpoints */
#define BENCH_MAX_LATENCY_EVENTS (1ULL << 26)  /* watch-latency: watchers × puts (times kept) */
#define BENCH_MAX_LEASES         1000000U      /* --leases */
#define BENCH_MAX_LEASE_TTL      9000000000LL  /* --ttl: etcd's MaxLeaseTTL */

struct bench_config {
    enum bench_cmd cmd;           /* the workload */
    char **endpoints;             /* "host:port" or "http://host:port" (malloc'd, each malloc'd) */
    size_t n_endpoints;           /* at least 1 */
    unsigned conns;               /* --conns: cl_clients, one connection each (default 1) */
    unsigned clients;             /* --clients: sequential issuers (default 1) */
    bool precise;                 /* --precise: full float precision in the report */
    bool target_leader;           /* --target-leader: send only to the leader's endpoint */
    uint64_t dial_timeout_ms;     /* --dial-timeout; 0: the library's default */
    enum bench_output output;     /* -w/--write-out simple|json */
    uint64_t total;               /* --total requests (default 10000) */
    uint64_t rate;                /* --rate requests/s over all clients; 0: no limit */
    size_t key_size;              /* put, txn-put: --key-size bytes (default 8) */
    size_t val_size;              /* put, txn-put: --val-size bytes (default 8) */
    uint64_t key_space_size;      /* put, txn-put: --key-space-size keys (default 1) */
    bool sequential_keys;         /* put: --sequential-keys (else uniform random keys) */
    uint64_t compact_interval_ms; /* put: --compact-interval; 0: never compact */
    int64_t compact_index_delta;  /* put: --compact-index-delta revisions kept (default 1000) */
    unsigned txn_ops;             /* txn-put: --txn-ops puts per txn (default 1) */
    char *range_key;              /* range: KEY (borrowed from argv) */
    char *range_end;              /* range: END (borrowed from argv), or NULL */
    bool serializable;            /* range: --consistency s (else l, linearizable) */
    unsigned streams;             /* watch: --streams Watch streams (default 10) */
    unsigned watch_per_stream;    /* watch: --watch-per-stream watchers on each (default 100) */
    unsigned watch_threads;       /* watch: --watch-threads receiving the events (default 1) */
    unsigned leases;              /* lease-keepalive: --leases granted; 0: one per client */
    int64_t lease_ttl;            /* lease-keepalive: --ttl seconds of each lease (default 100) */
    bool keep_leases;             /* lease-keepalive: --keep-leases: no revokes at the end */
};

/* What bench_flags_parse() found. */
enum bench_flags_result {
    BENCH_FLAGS_RUN = 0,  /* cfg holds a complete configuration: run it */
    BENCH_FLAGS_HELP = 1, /* help was asked for and written to out: exit 0 */
    BENCH_FLAGS_ERROR = 2 /* a bad command line, explained on err: exit 1 */
};

/* Fills cfg with etcd's defaults for cmd (BENCH_CMD_NONE: the global ones only). The endpoints
 * stay empty (NULL, 0) until parsing; bench_flags_parse() supplies 127.0.0.1:2379. */
void bench_config_default(struct bench_config *cfg, enum bench_cmd cmd);

/* Parses argv (argv[0] is the program's name). Writes help to out and errors to err (one
 * "Error: ..." line and a hint where to find the usage). cfg borrows argv's strings for the range
 * key and end and owns the endpoint list: bench_config_free() releases it, whatever the result. */
enum bench_flags_result bench_flags_parse(int argc, char **argv, struct bench_config *cfg,
                                          FILE *out, FILE *err);

/* Frees what bench_flags_parse() allocated in cfg (the endpoints). cfg may be default-filled. */
void bench_config_free(struct bench_config *cfg);

/* The command's name as typed ("put", "range", "txn-put"), or "" for BENCH_CMD_NONE. */
const char *bench_cmd_name(enum bench_cmd cmd);

#endif
