/* client/bench/flags.c — cairn-bench's commands and flags (see flags.h). */
#include "client/bench/flags.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "client/bench/keys.h"
#include "common/duration.h"

#define PROG "cairn-bench"

/* Which commands a flag belongs to: a bit per enum bench_cmd; GLOBAL is every command and none. */
#define ON(cmd)    (1u << (cmd))
#define ISSUE_CMDS (ON(BENCH_CMD_PUT) | ON(BENCH_CMD_RANGE) | ON(BENCH_CMD_TXN_PUT))
#define WATCH_CMDS (ON(BENCH_CMD_WATCH) | ON(BENCH_CMD_WATCH_LATENCY))
#define LEASE_CMD  ON(BENCH_CMD_LEASE_KEEPALIVE)
#define ALL_CMDS   (ISSUE_CMDS | WATCH_CMDS | LEASE_CMD)
#define GLOBAL     (ALL_CMDS | ON(BENCH_CMD_NONE))
#define KEYED_CMDS (ON(BENCH_CMD_PUT) | ON(BENCH_CMD_TXN_PUT) | ON(BENCH_CMD_WATCH))

enum flag_id {
    F_ENDPOINTS,
    F_CONNS,
    F_CLIENTS,
    F_PRECISE,
    F_TARGET_LEADER,
    F_DIAL_TIMEOUT,
    F_WRITE_OUT,
    F_HELP,
    F_TOTAL,
    F_RATE,
    F_KEY_SIZE,
    F_VAL_SIZE,
    F_KEY_SPACE_SIZE,
    F_SEQUENTIAL_KEYS,
    F_COMPACT_INTERVAL,
    F_COMPACT_INDEX_DELTA,
    F_TXN_OPS,
    F_CONSISTENCY,
    F_STREAMS,
    F_WATCH_PER_STREAM,
    F_WATCH_THREADS,
    F_WATCHERS_PER_STREAM,
    F_PUT_TOTAL,
    F_PUT_RATE,
    F_LEASES,
    F_TTL,
    F_KEEP_LEASES
};

/* The kinds of value, named as pflag prints them in the usage. */
enum flag_kind { K_BOOL, K_UINT, K_INT, K_DURATION, K_STRINGS, K_STRING };

struct flag {
    enum flag_id id;     /* what it sets */
    const char *name;    /* long name, without "--" */
    char shorthand;      /* one-letter form, or 0 */
    enum flag_kind kind; /* how its value is read */
    unsigned cmds;       /* the commands it belongs to (ON() bits) */
    const char *usage;   /* one line for the help */
    const char *defval;  /* the default as the help shows it, or NULL for none */
};

static const struct flag flags[] = {
    {F_ENDPOINTS, "endpoints", 0, K_STRINGS, GLOBAL, "gRPC endpoints, comma-separated",
     "[127.0.0.1:2379]"},
    {F_CONNS, "conns", 0, K_UINT, GLOBAL, "Total number of gRPC connections (one client each)",
     "1"},
    {F_CLIENTS, "clients", 0, K_UINT, GLOBAL,
     "Total number of concurrent issuers, spread over the connections", "1"},
    {F_PRECISE, "precise", 0, K_BOOL, GLOBAL, "Print times with full floating point precision",
     NULL},
    {F_TARGET_LEADER, "target-leader", 0, K_BOOL, GLOBAL,
     "Send every request to the leader's endpoint only", NULL},
    {F_DIAL_TIMEOUT, "dial-timeout", 0, K_DURATION, GLOBAL,
     "Timeout of each connection attempt (0: the client library's 2s)", "0s"},
    {F_WRITE_OUT, "write-out", 'w', K_STRING, GLOBAL, "Output format: simple or json", "simple"},
    {F_HELP, "help", 'h', K_BOOL, GLOBAL, "Help for the command", NULL},
    {F_TOTAL, "total", 0, K_UINT, ISSUE_CMDS | LEASE_CMD, "Total number of requests", "10000"},
    {F_RATE, "rate", 0, K_UINT, ISSUE_CMDS,
     "Maximum requests per second over all clients (0 is no limit)", "0"},
    {F_KEY_SIZE, "key-size", 0, K_UINT, KEYED_CMDS | ON(BENCH_CMD_WATCH_LATENCY),
     "Size of each key in bytes", "8"},
    {F_VAL_SIZE, "val-size", 0, K_UINT, KEYED_CMDS | ON(BENCH_CMD_WATCH_LATENCY),
     "Size of each value in bytes", "8"},
    {F_KEY_SPACE_SIZE, "key-space-size", 0, K_UINT, KEYED_CMDS, "Number of distinct keys written",
     "1"},
    {F_SEQUENTIAL_KEYS, "sequential-keys", 0, K_BOOL, ON(BENCH_CMD_PUT) | ON(BENCH_CMD_WATCH),
     "Write keys in order (else uniformly at random)", NULL},
    {F_COMPACT_INTERVAL, "compact-interval", 0, K_DURATION, ON(BENCH_CMD_PUT),
     "Compact the key space at this interval, e.g. 5m (0 is never)", "0s"},
    {F_COMPACT_INDEX_DELTA, "compact-index-delta", 0, K_INT, ON(BENCH_CMD_PUT),
     "Revisions kept by each compaction: it compacts at current revision minus this", "1000"},
    {F_TXN_OPS, "txn-ops", 0, K_UINT, ON(BENCH_CMD_TXN_PUT), "Number of puts in each txn", "1"},
    {F_CONSISTENCY, "consistency", 0, K_STRING, ON(BENCH_CMD_RANGE),
     "Linearizable (l) or serializable (s) reads", "l"},
    {F_STREAMS, "streams", 0, K_UINT, WATCH_CMDS, "Number of Watch streams", "10"},
    {F_WATCH_PER_STREAM, "watch-per-stream", 0, K_UINT, ON(BENCH_CMD_WATCH),
     "Number of watchers on each stream (all watch the prefix \"watch-bench/\")", "100"},
    {F_WATCH_THREADS, "watch-threads", 0, K_UINT, WATCH_CMDS,
     "Threads receiving the events, each with its share of the connections (cairn-bench's own)",
     "1"},
    {F_WATCHERS_PER_STREAM, "watchers-per-stream", 0, K_UINT, ON(BENCH_CMD_WATCH_LATENCY),
     "Number of watchers on each stream (all watch the one key put)", "10"},
    {F_PUT_TOTAL, "put-total", 0, K_UINT, WATCH_CMDS,
     "Number of puts once every watcher is created", "1000"},
    {F_PUT_RATE, "put-rate", 0, K_UINT, WATCH_CMDS,
     "Maximum puts per second (watch: 0 is no limit)", "0"},
    {F_LEASES, "leases", 0, K_UINT, LEASE_CMD,
     "Number of leases granted before the run, kept alive round robin (default: one per client)",
     NULL},
    {F_TTL, "ttl", 0, K_UINT, LEASE_CMD, "TTL of each lease in seconds", "100"},
    {F_KEEP_LEASES, "keep-leases", 0, K_BOOL, LEASE_CMD,
     "Leave the leases on the server after the run (else they are revoked)", NULL},
};
#define N_FLAGS (sizeof flags / sizeof flags[0])

static const struct {
    enum bench_cmd cmd;
    const char *name;
    const char *args;
    const char *summary;
} commands[] = {
    {BENCH_CMD_PUT, "put", "", "Benchmark put"},
    {BENCH_CMD_RANGE, "range", " KEY [END]", "Benchmark range"},
    {BENCH_CMD_TXN_PUT, "txn-put", "", "Benchmark txn-put"},
    {BENCH_CMD_WATCH, "watch", "", "Benchmark watch: events delivered and put-to-event latency"},
    {BENCH_CMD_WATCH_LATENCY, "watch-latency", "",
     "Benchmark watch latency: from a put's answer to each watcher's event"},
    {BENCH_CMD_LEASE_KEEPALIVE, "lease-keepalive", "", "Benchmark lease keepalive"},
};
#define N_COMMANDS (sizeof commands / sizeof commands[0])

const char *bench_cmd_name(enum bench_cmd cmd)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (commands[i].cmd == cmd)
            return commands[i].name;
    return "";
}

static enum bench_cmd cmd_by_name(const char *s)
{
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (!strcmp(commands[i].name, s))
            return commands[i].cmd;
    return BENCH_CMD_NONE;
}

void bench_config_default(struct bench_config *cfg, enum bench_cmd cmd)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->cmd = cmd;
    cfg->conns = 1;
    cfg->clients = 1;
    cfg->output = BENCH_OUT_SIMPLE;
    cfg->total = 10000;
    cfg->key_size = 8;
    cfg->val_size = 8;
    cfg->key_space_size = 1;
    cfg->compact_index_delta = 1000;
    cfg->txn_ops = 1;
    cfg->streams = 10;
    cfg->watch_per_stream = 100;
    cfg->watch_threads = 1;
    cfg->lease_ttl = 100;
    if (cmd == BENCH_CMD_WATCH) {
        cfg->total = 1000; /* --put-total */
        cfg->key_size = 32;
    }
    if (cmd == BENCH_CMD_WATCH_LATENCY) { /* etcd's watch-latency defaults */
        cfg->total = 1000;                /* --put-total */
        cfg->rate = 100;                  /* --put-rate */
        cfg->key_size = cfg->val_size = 32;
        cfg->watch_per_stream = 10;
    }
}

static void free_endpoints(struct bench_config *cfg)
{
    for (size_t i = 0; i < cfg->n_endpoints; i++)
        free(cfg->endpoints[i]);
    free(cfg->endpoints);
    cfg->endpoints = NULL;
    cfg->n_endpoints = 0;
}

void bench_config_free(struct bench_config *cfg)
{
    free_endpoints(cfg);
}

/* ---- values */

static const struct flag *find_long(const char *name, size_t len)
{
    for (size_t i = 0; i < N_FLAGS; i++)
        if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
            return &flags[i];
    return NULL;
}

static const struct flag *find_short(char c)
{
    for (size_t i = 0; i < N_FLAGS; i++)
        if (flags[i].shorthand == c)
            return &flags[i];
    return NULL;
}

/* strconv.ParseBool's spellings. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "true", "TRUE", "True"};
    static const char *const no[] = {"0", "f", "F", "false", "FALSE", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (!strcmp(s, yes[i])) {
            *out = true;
            return 0;
        }
        if (!strcmp(s, no[i])) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

/* An unsigned integer in Go's base-prefixed syntax (0x.., 0o.., 0.., 0b.., decimal). */
static int parse_uint(const char *s, uint64_t *out)
{
    int base = 10;
    const char *p = s;
    if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
        base = 16;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'b' || p[1] == 'B')) {
        base = 2;
        p += 2;
    } else if (p[0] == '0' && (p[1] == 'o' || p[1] == 'O')) {
        base = 8;
        p += 2;
    } else if (p[0] == '0' && p[1]) {
        base = 8;
        p += 1;
    }
    if (!*p || !isalnum((unsigned char)*p))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(p, &end, base);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

static int parse_int(const char *s, int64_t *out)
{
    bool neg = s[0] == '-';
    uint64_t u;
    if (parse_uint(s + (neg || s[0] == '+'), &u))
        return -1;
    if (neg ? u > (uint64_t)INT64_MAX + 1 : u > (uint64_t)INT64_MAX)
        return -1;
    *out = neg ? (int64_t)(0 - u) : (int64_t)u;
    return 0;
}

/* ---- parsing */

struct parser {
    struct bench_config *cfg;
    FILE *err;
    bool endpoints_set; /* the first --endpoints replaces the default, later ones append */
    bool help;
    const char *consistency;
};

/* Writes "Error: <message>" on the parser's error stream; returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(struct parser *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("Error: ", p->err);
    vfprintf(p->err, fmt, ap);
    fputc('\n', p->err);
    va_end(ap);
    return -1;
}

static int add_endpoints(struct parser *p, const char *list)
{
    struct bench_config *cfg = p->cfg;
    if (!p->endpoints_set) {
        free_endpoints(cfg);
        p->endpoints_set = true;
    }
    const char *s = list;
    for (;;) {
        const char *comma = strchr(s, ',');
        size_t len = comma ? (size_t)(comma - s) : strlen(s);
        if (!len)
            return fail(p, "invalid argument \"%s\" for \"--endpoints\" flag: empty endpoint",
                        list);
        if (cfg->n_endpoints >= BENCH_MAX_ENDPOINTS)
            return fail(p, "too many endpoints (at most %u)", BENCH_MAX_ENDPOINTS);
        char **grown = realloc(cfg->endpoints, (cfg->n_endpoints + 1) * sizeof *grown);
        if (!grown)
            return fail(p, "out of memory");
        cfg->endpoints = grown;
        char *ep = strndup(s, len);
        if (!ep)
            return fail(p, "out of memory");
        cfg->endpoints[cfg->n_endpoints++] = ep;
        if (!comma)
            return 0;
        s = comma + 1;
    }
}

static int set_flag(struct parser *p, const struct flag *f, const char *v)
{
    struct bench_config *cfg = p->cfg;
    uint64_t u = 0;
    int64_t i = 0;
    bool b = false;
    char name[64];
    snprintf(name, sizeof name, "--%s", f->name);

    switch (f->kind) {
    case K_BOOL:
        if (parse_bool(v, &b))
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: not a boolean", v, name);
        break;
    case K_UINT:
        if (parse_uint(v, &u))
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: not a non-negative integer", v,
                        name);
        break;
    case K_INT:
        if (parse_int(v, &i))
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: not an integer", v, name);
        break;
    case K_DURATION:
        if (go_parse_duration(v, &u))
            return fail(p,
                        "invalid argument \"%s\" for \"%s\" flag: not a duration "
                        "(e.g. 500ms, 2s, 5m)",
                        v, name);
        break;
    case K_STRINGS:
    case K_STRING:
        break;
    }

    switch (f->id) {
    case F_ENDPOINTS:
        return add_endpoints(p, v);
    case F_CONNS:
        if (u < 1 || u > BENCH_MAX_CONNS)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be 1 to 100000", v, name);
        cfg->conns = (unsigned)u;
        break;
    case F_CLIENTS:
        if (u < 1 || u > BENCH_MAX_CLIENTS)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be 1 to 1000000", v,
                        name);
        cfg->clients = (unsigned)u;
        break;
    case F_PRECISE:
        cfg->precise = b;
        break;
    case F_TARGET_LEADER:
        cfg->target_leader = b;
        break;
    case F_DIAL_TIMEOUT:
        cfg->dial_timeout_ms = (u + 999999) / 1000000;
        break;
    case F_WRITE_OUT:
        if (!strcmp(v, "simple"))
            cfg->output = BENCH_OUT_SIMPLE;
        else if (!strcmp(v, "json"))
            cfg->output = BENCH_OUT_JSON;
        else
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: want simple or json", v,
                        "--write-out");
        break;
    case F_HELP:
        p->help = b;
        break;
    case F_TOTAL:
        if (u < 1 || u > BENCH_MAX_TOTAL)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be 1 to 1000000000", v,
                        name);
        cfg->total = u;
        break;
    case F_RATE:
        cfg->rate = u;
        break;
    case F_KEY_SIZE:
    case F_VAL_SIZE:
        if (u > BENCH_MAX_DATA_SIZE)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: at most 64 MiB", v, name);
        if (f->id == F_KEY_SIZE)
            cfg->key_size = (size_t)u;
        else
            cfg->val_size = (size_t)u;
        break;
    case F_KEY_SPACE_SIZE:
        if (u < 1 || u > (uint64_t)INT64_MAX)
            return fail(p, "expected positive --key-space-size, got (%s)", v);
        cfg->key_space_size = u;
        break;
    case F_SEQUENTIAL_KEYS:
        cfg->sequential_keys = b;
        break;
    case F_COMPACT_INTERVAL:
        cfg->compact_interval_ms = (u + 999999) / 1000000;
        break;
    case F_COMPACT_INDEX_DELTA:
        if (i < 0)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must not be negative", v,
                        name);
        cfg->compact_index_delta = i;
        break;
    case F_TXN_OPS:
        if (u < 1 || u > BENCH_MAX_TXN_OPS)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be 1 to 100000", v, name);
        cfg->txn_ops = (unsigned)u;
        break;
    case F_CONSISTENCY:
        p->consistency = v;
        break;
    case F_STREAMS:
    case F_WATCH_PER_STREAM:
    case F_WATCHERS_PER_STREAM:
        if (u < 1 || u > BENCH_MAX_CLIENTS)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be 1 to 1000000", v,
                        name);
        if (f->id == F_STREAMS)
            cfg->streams = (unsigned)u;
        else
            cfg->watch_per_stream = (unsigned)u;
        break;
    case F_WATCH_THREADS:
        if (u < 1 || u > BENCH_MAX_WATCH_THREADS)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be 1 to %u", v, name,
                        BENCH_MAX_WATCH_THREADS);
        cfg->watch_threads = (unsigned)u;
        break;
    case F_PUT_TOTAL:
        if (u < 1 || u > BENCH_MAX_TOTAL)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be 1 to 1000000000", v,
                        name);
        cfg->total = u;
        break;
    case F_PUT_RATE:
        if (u == 0 && cfg->cmd == BENCH_CMD_WATCH_LATENCY)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be at least 1", v, name);
        cfg->rate = u;
        break;
    case F_LEASES:
        if (u < 1 || u > BENCH_MAX_LEASES)
            return fail(p, "invalid argument \"%s\" for \"%s\" flag: must be 1 to 1000000", v,
                        name);
        cfg->leases = (unsigned)u;
        break;
    case F_TTL:
        if (u < 1 || u > (uint64_t)BENCH_MAX_LEASE_TTL)
            return fail(p,
                        "invalid argument \"%s\" for \"%s\" flag: must be 1 to 9000000000 "
                        "(seconds)",
                        v, name);
        cfg->lease_ttl = (int64_t)u;
        break;
    case F_KEEP_LEASES:
        cfg->keep_leases = b;
        break;
    }
    return 0;
}

/* Looks up the flag at argv[*i] ("--name[=v]", "-x[v]", "-x=v"). Sets *f (NULL when unknown),
 * *inline_v (the value written into the same word, or NULL). Returns the flag's printable form
 * for messages in buf. */
static void lookup(const char *arg, const struct flag **f, const char **inline_v, char *buf,
                   size_t buflen)
{
    *inline_v = NULL;
    if (arg[1] == '-') {
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        *f = find_long(name, len);
        if (eq)
            *inline_v = eq + 1;
        snprintf(buf, buflen, "--%.*s", (int)(len > 60 ? 60 : len), name);
    } else {
        *f = find_short(arg[1]);
        if (arg[2])
            *inline_v = arg[2] == '=' ? arg + 3 : arg + 2;
        snprintf(buf, buflen, "-%c", arg[1]);
    }
}

static bool is_flag(const char *arg)
{
    return arg[0] == '-' && arg[1] && strcmp(arg, "--");
}

/* The command: the first word that is neither a flag nor a flag's value. */
static const char *find_command(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            return i + 1 < argc ? argv[i + 1] : NULL;
        if (!is_flag(a))
            return a;
        const struct flag *f;
        const char *v;
        char buf[80];
        lookup(a, &f, &v, buf, sizeof buf);
        if (f && f->kind != K_BOOL && !v)
            i++;
    }
    return NULL;
}

/* The default of a number flag whose default depends on the command (watch and watch-latency
 * start from etcd's defaults for them), printed into buf; NULL for the others. */
static const char *cmd_default(const struct flag *f, enum bench_cmd cmd, char *buf, size_t len)
{
    struct bench_config c;
    bench_config_default(&c, cmd);
    uint64_t v;
    switch (f->id) {
    case F_KEY_SIZE:
        v = c.key_size;
        break;
    case F_VAL_SIZE:
        v = c.val_size;
        break;
    case F_PUT_TOTAL:
        v = c.total;
        break;
    case F_PUT_RATE:
        v = c.rate;
        break;
    case F_WATCH_PER_STREAM:
    case F_WATCHERS_PER_STREAM:
        v = c.watch_per_stream;
        break;
    default:
        return NULL;
    }
    snprintf(buf, len, "%" PRIu64, v);
    return buf;
}

static void print_flag_lines(FILE *out, enum bench_cmd cmd, unsigned want, bool global)
{
    for (size_t i = 0; i < N_FLAGS; i++) {
        const struct flag *f = &flags[i];
        bool is_global = f->cmds == GLOBAL;
        if (is_global != global || !(f->cmds & want))
            continue;
        static const char *const kinds[] = {"", "uint", "int", "duration", "strings", "string"};
        char left[64];
        if (f->shorthand)
            snprintf(left, sizeof left, "  -%c, --%s %s", f->shorthand, f->name, kinds[f->kind]);
        else
            snprintf(left, sizeof left, "      --%s %s", f->name, kinds[f->kind]);
        fprintf(out, "%-34s %s", left, f->usage);
        char num[24];
        const char *def = cmd_default(f, cmd, num, sizeof num);
        if (def || f->defval)
            fprintf(out, " (default %s)", def ? def : f->defval);
        fputc('\n', out);
    }
}

static void usage(FILE *out, enum bench_cmd cmd)
{
    if (cmd == BENCH_CMD_NONE) {
        fputs(PROG " is a load generator for etcd v3's API (cairnd and etcd alike), with the\n"
                   "workloads, flags and report of etcd's benchmark tool.\n\n"
                   "Usage:\n  " PROG " [command]\n\nAvailable Commands:\n",
              out);
        int pad = 9; /* cobra pads the names to the longest */
        for (size_t i = 0; i < N_COMMANDS; i++)
            if ((int)strlen(commands[i].name) > pad)
                pad = (int)strlen(commands[i].name);
        for (size_t i = 0; i < N_COMMANDS; i++)
            fprintf(out, "  %-*s %s\n", pad, commands[i].name, commands[i].summary);
        fputs("\nFlags:\n", out);
        print_flag_lines(out, BENCH_CMD_NONE, ON(BENCH_CMD_NONE), true);
        fputs("\nUse \"" PROG " [command] --help\" for more information about a command.\n", out);
        return;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (commands[i].cmd != cmd)
            continue;
        fprintf(out, "%s\n\nUsage:\n  " PROG " %s%s [flags]\n\nFlags:\n", commands[i].summary,
                commands[i].name, commands[i].args);
    }
    print_flag_lines(out, cmd, ON(cmd), false);
    fputs("\nGlobal Flags:\n", out);
    print_flag_lines(out, cmd, ON(cmd), true);
}

/* Checks across flags, once all are read. */
static int validate(struct parser *p)
{
    struct bench_config *cfg = p->cfg;
    if (cfg->cmd == BENCH_CMD_WATCH || cfg->cmd == BENCH_CMD_WATCH_LATENCY) {
        if (cfg->val_size < 8)
            return fail(p, "--val-size must be at least 8 for %s (each value carries %s)",
                        bench_cmd_name(cfg->cmd),
                        cfg->cmd == BENCH_CMD_WATCH ? "the time of its put" : "its put's number");
        if (cfg->cmd == BENCH_CMD_WATCH_LATENCY && cfg->key_size < 1)
            return fail(p, "--key-size must be at least 1");
        if (cfg->cmd == BENCH_CMD_WATCH_LATENCY &&
            (uint64_t)cfg->streams * cfg->watch_per_stream * cfg->total > BENCH_MAX_LATENCY_EVENTS)
            return fail(p, "--streams times --watchers-per-stream times --put-total must be at "
                           "most 67108864 (each event's time is kept)");
        if ((uint64_t)cfg->streams * cfg->watch_per_stream > BENCH_MAX_CLIENTS)
            return fail(p, "--streams times --%s must be at most 1000000",
                        cfg->cmd == BENCH_CMD_WATCH ? "watch-per-stream" : "watchers-per-stream");
    }
    if (cfg->cmd == BENCH_CMD_PUT || cfg->cmd == BENCH_CMD_TXN_PUT || cfg->cmd == BENCH_CMD_WATCH) {
        if (cfg->key_size < 1)
            return fail(p, "--key-size must be at least 1");
        size_t need = bench_key_bytes(cfg->key_space_size - 1);
        if (need > cfg->key_size)
            return fail(p,
                        "--key-size %zu is too small for --key-space-size %" PRIu64
                        " (its keys need %zu bytes)",
                        cfg->key_size, cfg->key_space_size, need);
        if ((uint64_t)cfg->key_size * cfg->txn_ops > BENCH_MAX_DATA_SIZE)
            return fail(p, "--key-size times --txn-ops must be at most 64 MiB");
    }
    if (cfg->cmd == BENCH_CMD_RANGE) {
        if (!strcmp(p->consistency, "s"))
            cfg->serializable = true;
        else if (strcmp(p->consistency, "l"))
            return fail(p,
                        "invalid argument \"%s\" for \"--consistency\" flag: want l "
                        "(linearizable) or s (serializable)",
                        p->consistency);
    }
    return 0;
}

enum bench_flags_result bench_flags_parse(int argc, char **argv, struct bench_config *cfg,
                                          FILE *out, FILE *err)
{
    const char *cmd_word = find_command(argc, argv);
    enum bench_cmd cmd = cmd_word ? cmd_by_name(cmd_word) : BENCH_CMD_NONE;
    bench_config_default(cfg, cmd);
    struct parser p = {.cfg = cfg, .err = err, .consistency = "l"};
    const char *hint = cmd == BENCH_CMD_NONE ? "" : bench_cmd_name(cmd);
    int rc = 0;

    if (cmd_word && cmd == BENCH_CMD_NONE) {
        fprintf(err, "Error: unknown command \"%s\" for \"" PROG "\"\n", cmd_word);
        rc = -1;
    }
    bool cmd_seen = false, dashdash = false;
    size_t n_args = 0;
    for (int i = 1; !rc && i < argc; i++) {
        const char *a = argv[i];
        if (dashdash || !is_flag(a)) {
            if (!dashdash && !strcmp(a, "--")) {
                dashdash = true;
                continue;
            }
            if (!cmd_seen) {
                cmd_seen = true; /* it is cmd_word */
                continue;
            }
            if (cmd != BENCH_CMD_RANGE || n_args >= 2) {
                rc = fail(&p, "unexpected argument \"%s\" for \"%s\"", a, hint);
                break;
            }
            if (n_args++ == 0)
                cfg->range_key = argv[i];
            else
                cfg->range_end = argv[i];
            continue;
        }
        const struct flag *f;
        const char *v;
        char shown[80];
        lookup(a, &f, &v, shown, sizeof shown);
        if (!f || !(f->cmds & ON(cmd))) {
            if (a[1] != '-')
                rc = fail(&p, "unknown shorthand flag: '%s' in %s", shown + 1, a);
            else
                rc = fail(&p, "unknown flag: %s", shown);
            break;
        }
        if (!v) {
            if (f->kind == K_BOOL) {
                v = "true";
            } else if (i + 1 < argc) {
                v = argv[++i];
            } else {
                rc = fail(&p, "flag needs an argument: %s", shown);
                break;
            }
        }
        rc = set_flag(&p, f, v);
    }
    if (!rc && p.help) {
        usage(out, cmd);
        return BENCH_FLAGS_HELP;
    }
    if (!rc && cmd == BENCH_CMD_NONE) {
        usage(out, cmd);
        return BENCH_FLAGS_HELP;
    }
    if (!rc && cmd == BENCH_CMD_RANGE && n_args == 0)
        rc = fail(&p, "range needs a KEY (usage: " PROG " range KEY [END])");
    if (!rc && !cfg->n_endpoints)
        rc = add_endpoints(&p, "127.0.0.1:2379");
    if (!rc)
        rc = validate(&p);
    if (rc) {
        fprintf(err, "Run '" PROG "%s%s --help' for usage.\n", *hint ? " " : "", hint);
        return BENCH_FLAGS_ERROR;
    }
    return BENCH_FLAGS_RUN;
}
