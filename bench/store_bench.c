/* bench/store_bench.c — throughput and footprint of the store, measured against raw LMDB.
 *
 * One run, in a fresh temporary directory removed at exit (also on error or a fatal signal):
 *
 *   1. The store at nosync=true (commits never flushed: CPU and memory, not the disk): the load,
 *      one put per write transaction; the same keys overwritten 100 per transaction (which gives
 *      every key history); point gets at the latest and at a past revision; ranges of 100 keys;
 *      single-key deletes. Every read has its own read transaction, as a server's request does.
 *   2. Raw LMDB with the flags the store passes to mdb_env_open() at nosync=true: the same puts,
 *      overwrites and point gets on one plain table, the floor the store is built on. These run
 *      paired with the store's: the two alternate in chunks, so both see the same machine.
 *   3. The store at nosync=false: durable commits per 1, 100 and 1000 puts (fdatasync bound).
 *
 * It prints a table (or JSON with --json): rates, the process's RssAnon and the data file sizes
 * after the load, the store/raw ratios and the targets next to them. Targets are informational:
 * the exit status is 0 whenever the run completes, 1 when something failed.
 *
 * Keys are "key/" and a 12-digit zero-padded index (16 bytes), so key order is index order and a
 * range of 100 consecutive keys is [key(i), key(i + 100)). The load inserts them in a pseudo-random
 * order (key_order_at) rather than ascending, which would be LMDB's cheapest case (appends). Values
 * are 256 bytes. All randomness is splitmix64 seeded by --seed: equal arguments, equal operations.
 *
 * The timed loops allocate nothing themselves: requests live on the stack and results come from
 * one arena reset after every operation (what the store allocates is part of the measure). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <lmdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/arena.h"
#include "common/error.h"
#include "store/store.h"

/* ---------------------------------------------------------------------------------------------- */
/* Workload constants */

#define KEY_SIZE          16 /* "key/" + 12 digits */
#define KEY_PREFIX        "key/"
#define KEY_DIGITS        12
#define VALUE_SIZE        256
#define GROUP_SMALL       100  /* puts per write transaction in the grouped runs */
#define GROUP_LARGE       1000 /* the larger durable group commit */
#define RANGE_KEYS        100  /* keys per range request */
#define DEFAULT_KEYS      1000000
#define QUICK_KEYS        100000
#define MIN_KEYS          1000       /* ranges and past reads need some keys */
#define MAX_KEYS          1000000000 /* key indexes must fit KEY_DIGITS (and range ends one past) */
#define DEFAULT_SEED      1
#define DURABLE_GROUPED   20000 /* puts per durable grouped run (--quick: a tenth) */
#define DURABLE_SINGLE    1000  /* puts in the durable one-put-per-commit runs (--quick: a tenth) */
#define QUICK_DURABLE_DIV 10    /* --quick divides the durable runs by this */
#define RANGE_RUN_DIV     50    /* range requests: keys / 50 (each reads RANGE_KEYS keys) */
#define DELETE_RUN_DIV    10    /* deletes: keys / 10 */
#define PAIR_CHUNKS       10    /* store and raw LMDB alternate this many times in a paired run */
#define MAX_RESULTS       16
#define BYTES_PER_KEY_Q   2048            /* quota grown above the default for --keys beyond ~1M */
#define ROOT_MAX          (PATH_MAX - 64) /* room for "/<run>/data.mdb" below the directory */

/* The store opens its environment with MDB_NOTLS | MDB_NOMETASYNC, plus MDB_NOSYNC when
 * store_options.nosync is set (store/env.c, store_open). The throughput runs use nosync = true, so
 * the raw LMDB run must use the same set to compare like with like. MDB_NOSYNC makes MDB_NOMETASYNC
 * moot; it is kept so this line stays a literal copy of the store's. Keep it in sync with
 * store_open(). */
#define RAW_LMDB_ENV_FLAGS      (MDB_NOTLS | MDB_NOMETASYNC | MDB_NOSYNC)
#define RAW_LMDB_ENV_FLAGS_TEXT "MDB_NOTLS|MDB_NOMETASYNC|MDB_NOSYNC"

/* Targets, printed next to the results (informational: they do not change the exit status). */
#define TARGET_PUT_RATIO (1.0 / 3.0) /* store put ≥ 1/3 of raw LMDB put, one per txn each */
#define TARGET_GET_RATIO (1.0 / 2.0) /* store latest get ≥ 1/2 of raw LMDB get */
#define TARGET_RSS_KIB   (32 * 1024) /* RssAnon after loading the keys ≤ 32 MiB */

/* ---------------------------------------------------------------------------------------------- */
/* Options and results */

struct bench_opts {
    uint64_t keys;      /* keys loaded (--keys, --quick) */
    uint64_t seed;      /* PRNG seed (--seed) */
    bool json;          /* print JSON instead of the table */
    bool quick;         /* smoke run: fewer keys, a tenth of the durable puts */
    const char *parent; /* directory the temporary directory is made in (--dir, $TMPDIR, /tmp) */
};

struct result {
    const char *id;    /* stable machine name, used in JSON */
    const char *label; /* what the table shows */
    uint64_t ops;      /* operations timed */
    double secs;       /* wall time of the timed loop */
};

/* Memory and disk footprint, sampled between runs (never inside a timed loop). */
struct footprint {
    long rss_start_kib;           /* RssAnon before the store is opened */
    long rss_loaded_kib;          /* RssAnon after loading the keys: the target's measure */
    long rss_end_kib;             /* RssAnon after all the store's nosync runs */
    uint64_t store_file_loaded;   /* store data file after the load */
    uint64_t store_in_use_loaded; /* pages in use after the load */
    uint64_t store_file_end;      /* store data file after all nosync runs */
    uint64_t raw_file_loaded;     /* raw LMDB data file after the same load */
    uint64_t raw_file_end;        /* raw LMDB data file after the overwrites */
};

/* Everything one run needs; passed down instead of globals. */
struct bench {
    struct bench_opts opt;          /* the command line */
    char root[ROOT_MAX];            /* the fresh temporary directory */
    uint64_t map_bytes;             /* LMDB map size, the same for the store and raw LMDB */
    uint64_t quota_bytes;           /* store quota */
    uint8_t value[VALUE_SIZE];      /* value bytes; the first 8 are stamped per put */
    struct arena arena;             /* results of every request; reset after each */
    struct result res[MAX_RESULTS]; /* in the order the runs happened */
    size_t n_res;                   /* results filled */
    struct footprint fp;            /* sampled between runs */
    int64_t past_lo, past_hi;       /* revisions the past-revision gets pick from */
    uint64_t sink;                  /* folds a byte of every value read, so reads are not idle */
};

/* ---------------------------------------------------------------------------------------------- */
/* Clock, PRNG, keys */

/* Seconds on the monotonic clock. */
static double now_secs(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* splitmix64 (Steele, Lea, Flood 2014): a fast, well-mixed generator; *state is the stream. */
static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* What a PRNG stream is for: each gets its own, so changing one run leaves the others' draws. */
enum rng_purpose {
    RNG_VALUE,     /* value bytes */
    RNG_LOAD,      /* load order (store and raw LMDB alike) */
    RNG_OVERWRITE, /* overwrite order (store and raw LMDB alike) */
    RNG_GET,       /* latest point get keys (store and raw LMDB alike) */
    RNG_GET_PAST,  /* past point get keys and revisions */
    RNG_RANGE,     /* range starts */
    RNG_DELETE,    /* delete order */
    RNG_DURABLE_GROUPED,
    RNG_DURABLE_SINGLE
};

/* A PRNG stream for one purpose: the same seed and purpose give the same sequence. */
static uint64_t rng_stream(uint64_t seed, enum rng_purpose purpose)
{
    uint64_t s = seed ^ ((uint64_t)purpose * 0xd1342543de82ef95ull);
    return splitmix64(&s);
}

/* Integer in [0, n); the modulo bias of a 64-bit draw is far below measurement noise. */
static uint64_t rng_below(uint64_t *state, uint64_t n)
{
    return splitmix64(state) % n;
}

/* A pseudo-random permutation of [0, n) that needs no memory: three rounds of (odd multiply + add,
 * xor-shift) are a bijection on [0, 2^bits); walking the cycle until it lands below n makes it one
 * on [0, n). The walk is short (2^bits < 2n) and always ends, since the cycle holds the start. */
struct key_order {
    uint64_t n;      /* permuted domain [0, n) */
    uint64_t mask;   /* 2^bits - 1 */
    unsigned shift;  /* bits / 2 */
    uint64_t mul[3]; /* odd multipliers */
    uint64_t add[3]; /* offsets */
};

static void key_order_init(struct key_order *o, uint64_t n, uint64_t seed)
{
    unsigned bits = 2;
    while (bits < 64 && (1ull << bits) < n)
        bits++;
    o->n = n;
    o->mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
    o->shift = bits / 2;
    uint64_t s = seed;
    for (int r = 0; r < 3; r++) {
        o->mul[r] = splitmix64(&s) | 1;
        o->add[r] = splitmix64(&s);
    }
}

/* The i-th index (i < n) of the permutation. */
static uint64_t key_order_at(const struct key_order *o, uint64_t i)
{
    uint64_t x = i;
    do {
        for (int r = 0; r < 3; r++) {
            x = (x * o->mul[r] + o->add[r]) & o->mask;
            x ^= x >> o->shift;
        }
    } while (x >= o->n);
    return x;
}

/* Writes key number i: KEY_PREFIX, then i in KEY_DIGITS zero-padded digits (no terminator). */
static void key_format(uint64_t i, uint8_t out[KEY_SIZE])
{
    memcpy(out, KEY_PREFIX, sizeof KEY_PREFIX - 1);
    _Static_assert(sizeof KEY_PREFIX - 1 + KEY_DIGITS == KEY_SIZE, "key layout");
    for (int d = KEY_SIZE - 1; d >= KEY_SIZE - KEY_DIGITS; d--) {
        out[d] = (uint8_t)('0' + i % 10);
        i /= 10;
    }
}

/* Makes the value of a put distinct from the last one, without allocating. */
static void value_stamp(uint8_t value[VALUE_SIZE], uint64_t n)
{
    memcpy(value, &n, sizeof n);
}

/* ---------------------------------------------------------------------------------------------- */
/* The temporary directory: made fresh, removed at exit, on error and on fatal signals */

/* The one piece of global state: the signal handler cannot be handed a context. Written once before
 * the handlers are installed. */
static char cleanup_root[ROOT_MAX];
static volatile sig_atomic_t cleanup_armed;

/* Removes everything below the open directory dfd, `depth` levels deep at most. Uses only system
 * calls that are async-signal-safe (getdents64, unlinkat, openat, close, lseek), so the signal
 * handler can use it. Rescans until a pass removes nothing, since removing while reading a
 * directory may make the reading skip entries. */
static void remove_below(int dfd, int depth)
{
    for (int pass = 0; pass < 8; pass++) {
        bool removed = false;
        char buf[4096] __attribute__((aligned(8)));
        ssize_t n;
        lseek(dfd, 0, SEEK_SET);
        while ((n = getdents64(dfd, buf, sizeof buf)) > 0) {
            for (ssize_t off = 0; off < n;) {
                struct dirent64 *d = (struct dirent64 *)(buf + off);
                off += d->d_reclen;
                if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
                    continue;
                if (unlinkat(dfd, d->d_name, 0) == 0) {
                    removed = true;
                    continue;
                }
                /* Not a file (d_type may be DT_UNKNOWN, so just try): a directory to empty. */
                int sub =
                    depth > 0 ? openat(dfd, d->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW) : -1;
                if (sub >= 0) {
                    remove_below(sub, depth - 1);
                    close(sub);
                    removed |= unlinkat(dfd, d->d_name, AT_REMOVEDIR) == 0;
                }
            }
        }
        if (!removed)
            return;
    }
}

/* Removes the temporary directory and everything in it, once. Async-signal-safe. */
static void cleanup_remove(void)
{
    if (!cleanup_armed)
        return;
    cleanup_armed = 0;
    int dfd = open(cleanup_root, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
    if (dfd >= 0) {
        remove_below(dfd, 4);
        close(dfd);
    }
    rmdir(cleanup_root);
}

/* Fatal signals: remove the directory, then die of the signal as if unhandled (SA_RESETHAND). */
static void cleanup_on_signal(int sig)
{
    int saved = errno;
    cleanup_remove();
    errno = saved;
    raise(sig);
}

/* Creates a fresh directory "cairn-bench-XXXXXX" in parent, and arranges for its removal at exit
 * and on SIGINT, SIGTERM, SIGHUP and crashes. Writes its path to b->root. */
static int temp_root_create(struct bench *b)
{
    int n = snprintf(b->root, sizeof b->root, "%s/cairn-bench-XXXXXX", b->opt.parent);
    if (n < 0 || (size_t)n >= sizeof b->root) {
        fprintf(stderr, "store_bench: directory path too long: %s\n", b->opt.parent);
        return -1;
    }
    if (!mkdtemp(b->root)) {
        fprintf(stderr, "store_bench: mkdtemp %s: %s\n", b->root, strerror(errno));
        return -1;
    }
    memcpy(cleanup_root, b->root, sizeof cleanup_root);
    cleanup_armed = 1;
    atexit(cleanup_remove);

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cleanup_on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGBUS, SIGABRT, SIGFPE};
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
    return 0;
}

/* Writes "<root>/<name>" into out (PATH_MAX bytes). */
static void sub_path(const struct bench *b, const char *name, char *out)
{
    snprintf(out, PATH_MAX, "%s/%s", b->root, name);
}

/* ---------------------------------------------------------------------------------------------- */
/* Footprint probes */

/* RssAnon of this process in KiB ("RssAnon:" in /proc/self/status), or -1 if unreadable. */
static long rss_anon_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long kib = -1;
    while (fgets(line, sizeof line, f)) {
        if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
            break;
    }
    fclose(f);
    return kib;
}

/* Size of a file in bytes, 0 if it cannot be read. */
static uint64_t file_bytes(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0 ? (uint64_t)s.st_size : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Results */

static void result_add(struct bench *b, const char *id, const char *label, uint64_t ops,
                       double secs)
{
    if (b->n_res < MAX_RESULTS)
        b->res[b->n_res++] = (struct result){id, label, ops, secs};
}

static const struct result *result_find(const struct bench *b, const char *id)
{
    for (size_t i = 0; i < b->n_res; i++)
        if (!strcmp(b->res[i].id, id))
            return &b->res[i];
    return NULL;
}

static double ops_per_sec(const struct result *r)
{
    return r && r->secs > 0 ? (double)r->ops / r->secs : 0;
}

/* Ratio of two results' throughputs, 0 when either is missing. */
static double result_ratio(const struct bench *b, const char *num, const char *den)
{
    double d = ops_per_sec(result_find(b, den));
    return d > 0 ? ops_per_sec(result_find(b, num)) / d : 0;
}

/* Announces a run on stderr, so a long run shows progress without disturbing stdout. */
static void progress(const char *what, uint64_t ops)
{
    fprintf(stderr, "store_bench: %-40s %10" PRIu64 " ops\n", what, ops);
}

static int store_fail(const char *what, int err)
{
    fprintf(stderr, "store_bench: %s: %s\n", what, cairn_strerror(err));
    return -1;
}

static int lmdb_fail(const char *what, int rc)
{
    fprintf(stderr, "store_bench: raw LMDB %s: %s\n", what, mdb_strerror(rc));
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Store operations: the untimed building blocks of the runs */

/* Opens a fresh store in <root>/<name> with the bench's map size and quota. */
static int store_bench_open(const struct bench *b, const char *name, bool nosync, store **out)
{
    char dir[PATH_MAX];
    sub_path(b, name, dir);
    struct store_options o = {
        .quota_bytes = b->quota_bytes, .map_bytes = b->map_bytes, .nosync = nosync};
    int err = store_open(dir, &o, out);
    return err ? store_fail("store_open", err) : 0;
}

/* One write transaction holding `count` puts: keys base + order(first .. first+count-1). */
static int store_put_group(struct bench *b, store *st, const struct key_order *order, uint64_t base,
                           uint64_t first, uint64_t count, bool durable)
{
    store_tx *tx;
    int err = store_tx_begin_write(st, &tx);
    if (err)
        return store_fail("store_tx_begin_write", err);
    uint8_t key[KEY_SIZE];
    for (uint64_t i = first; i < first + count; i++) {
        key_format(base + key_order_at(order, i), key);
        value_stamp(b->value, i);
        struct store_put_req req = {.key = {key, KEY_SIZE}, .value = {b->value, VALUE_SIZE}};
        struct store_put_res res;
        err = store_put(tx, &req, &b->arena, &res);
        arena_reset(&b->arena);
        if (err) {
            store_tx_end(tx);
            return store_fail("store_put", err);
        }
    }
    err = store_tx_commit(tx, durable);
    return err ? store_fail("store_tx_commit", err) : 0;
}

/* Puts keys base + order(from .. to-1), `per_tx` puts per write transaction. */
static int store_puts(struct bench *b, store *st, const struct key_order *order, uint64_t base,
                      uint64_t from, uint64_t to, uint64_t per_tx, bool durable)
{
    for (uint64_t i = from; i < to; i += per_tx) {
        uint64_t count = to - i < per_tx ? to - i : per_tx;
        if (store_put_group(b, st, order, base, i, count, durable))
            return -1;
    }
    return 0;
}

/* A range request in its own read transaction, as a server handles one; returns the number of keys
 * found in *n_kvs and folds a byte of the first value into b->sink. */
static int store_read(struct bench *b, store *st, const struct store_range_req *req, size_t *n_kvs)
{
    store_tx *tx;
    int err = store_tx_begin_read(st, &tx);
    if (err)
        return store_fail("store_tx_begin_read", err);
    struct store_range_res res;
    err = store_range(tx, req, &b->arena, &res);
    if (!err) {
        *n_kvs = res.n_kvs;
        if (res.n_kvs && res.kvs[0].value.len)
            b->sink += res.kvs[0].value.data[0];
    }
    store_tx_end(tx);
    arena_reset(&b->arena);
    return err ? store_fail("store_range", err) : 0;
}

/* `count` point gets of random loaded keys drawn from *rng: at the current revision when lo == 0,
 * else at a revision drawn from [lo, hi], at which every key exists. Each must find its key. */
static int store_gets(struct bench *b, store *st, uint64_t *rng, uint64_t count, int64_t lo,
                      int64_t hi)
{
    uint8_t key[KEY_SIZE];
    for (uint64_t i = 0; i < count; i++) {
        key_format(rng_below(rng, b->opt.keys), key);
        int64_t rev = lo ? lo + (int64_t)rng_below(rng, (uint64_t)(hi - lo + 1)) : 0;
        struct store_range_req req = {.key = {key, KEY_SIZE}, .revision = rev};
        size_t found;
        if (store_read(b, st, &req, &found))
            return -1;
        if (found != 1) {
            fprintf(stderr, "store_bench: get: key %.*s missing at revision %" PRId64 "\n",
                    KEY_SIZE, (const char *)key, rev);
            return -1;
        }
    }
    return 0;
}

/* The current revision and the data file size, from a read transaction. */
static int store_probe(store *st, int64_t *rev, struct store_size *sz)
{
    store_tx *tx;
    int err = store_tx_begin_read(st, &tx);
    if (err)
        return store_fail("store_tx_begin_read", err);
    *rev = store_tx_rev(tx);
    err = store_size(tx, sz);
    store_tx_end(tx);
    return err ? store_fail("store_size", err) : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Raw LMDB operations: the same puts and gets on one plain table, no MVCC */

struct raw_db {
    MDB_env *env;       /* opened with RAW_LMDB_ENV_FLAGS */
    MDB_dbi dbi;        /* the unnamed main table: key → value */
    char dir[PATH_MAX]; /* <root>/raw */
};

/* Opens a fresh environment in <root>/raw with RAW_LMDB_ENV_FLAGS and the store's map size. */
static int raw_open(const struct bench *b, struct raw_db *r)
{
    sub_path(b, "raw", r->dir);
    if (mkdir(r->dir, 0700)) {
        fprintf(stderr, "store_bench: mkdir %s: %s\n", r->dir, strerror(errno));
        return -1;
    }
    int rc = mdb_env_create(&r->env);
    if (rc)
        return lmdb_fail("mdb_env_create", rc);
    rc = mdb_env_set_mapsize(r->env, (size_t)b->map_bytes);
    if (!rc)
        rc = mdb_env_open(r->env, r->dir, RAW_LMDB_ENV_FLAGS, 0600);
    MDB_txn *txn = NULL;
    if (!rc)
        rc = mdb_txn_begin(r->env, NULL, 0, &txn);
    if (!rc)
        rc = mdb_dbi_open(txn, NULL, 0, &r->dbi);
    if (!rc) {
        rc = mdb_txn_commit(txn);
        txn = NULL;
    }
    if (rc) {
        mdb_txn_abort(txn);
        mdb_env_close(r->env);
        return lmdb_fail("open", rc);
    }
    return 0;
}

/* Size of the raw environment's data file. */
static uint64_t raw_file_bytes(const struct raw_db *r)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/data.mdb", r->dir);
    return file_bytes(path);
}

/* Puts keys order(from .. to-1), `per_tx` puts per write transaction. */
static int raw_puts(struct bench *b, struct raw_db *r, const struct key_order *order, uint64_t from,
                    uint64_t to, uint64_t per_tx)
{
    uint8_t key[KEY_SIZE];
    for (uint64_t i = from; i < to; i += per_tx) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(r->env, NULL, 0, &txn);
        if (rc)
            return lmdb_fail("mdb_txn_begin", rc);
        uint64_t end = to - i < per_tx ? to : i + per_tx;
        for (uint64_t j = i; j < end && !rc; j++) {
            key_format(key_order_at(order, j), key);
            value_stamp(b->value, j);
            MDB_val k = {KEY_SIZE, key}, v = {VALUE_SIZE, b->value};
            rc = mdb_put(txn, r->dbi, &k, &v, 0);
        }
        if (rc) {
            mdb_txn_abort(txn);
            return lmdb_fail("mdb_put", rc);
        }
        rc = mdb_txn_commit(txn);
        if (rc)
            return lmdb_fail("mdb_txn_commit", rc);
    }
    return 0;
}

/* `count` point gets of random loaded keys drawn from *rng (the draws of store_gets at the current
 * revision), each in its own read transaction: txn, a reset read-only handle, is renewed for each
 * get and reset after it. */
static int raw_gets(struct bench *b, struct raw_db *r, MDB_txn *txn, uint64_t *rng, uint64_t count)
{
    uint8_t key[KEY_SIZE];
    for (uint64_t i = 0; i < count; i++) {
        key_format(rng_below(rng, b->opt.keys), key);
        int rc = mdb_txn_renew(txn);
        if (rc)
            return lmdb_fail("mdb_txn_renew", rc);
        MDB_val k = {KEY_SIZE, key}, v;
        rc = mdb_get(txn, r->dbi, &k, &v);
        if (!rc)
            b->sink += ((const uint8_t *)v.mv_data)[0];
        mdb_txn_reset(txn);
        if (rc)
            return lmdb_fail("mdb_get", rc);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Runs: the timed loops */

/* A paired run does the same operations in the store and in raw LMDB, alternating between them in
 * PAIR_CHUNKS chunks, so that both see the same machine (background load, CPU clock, page cache)
 * and their ratio holds even on a host that is not idle. */
struct pair {
    const char *store_id; /* result of the store's half */
    const char *store_label;
    const char *raw_id; /* result of raw LMDB's half */
    const char *raw_label;
};

static void pair_progress(const struct pair *p, uint64_t ops)
{
    progress(p->store_label, ops);
    progress(p->raw_label, ops);
}

/* Paired puts of keys order(0 .. keys-1), per_tx per write transaction in both. */
static int run_paired_puts(struct bench *b, store *st, struct raw_db *r, const struct pair *p,
                           const struct key_order *order, uint64_t per_tx)
{
    uint64_t n = b->opt.keys;
    uint64_t chunk = (n / PAIR_CHUNKS + per_tx - 1) / per_tx * per_tx; /* whole transactions */
    double store_secs = 0, raw_secs = 0;
    pair_progress(p, n);
    for (uint64_t from = 0; from < n; from += chunk) {
        uint64_t to = n - from < chunk ? n : from + chunk;
        double t0 = now_secs();
        if (store_puts(b, st, order, 0, from, to, per_tx, false))
            return -1;
        double t1 = now_secs();
        if (raw_puts(b, r, order, from, to, per_tx))
            return -1;
        store_secs += t1 - t0;
        raw_secs += now_secs() - t1;
    }
    result_add(b, p->store_id, p->store_label, n, store_secs);
    result_add(b, p->raw_id, p->raw_label, n, raw_secs);
    return 0;
}

/* Paired point gets at the current revision: the same keys, in the same order, in both. */
static int run_paired_gets(struct bench *b, store *st, struct raw_db *r, const struct pair *p)
{
    uint64_t n = b->opt.keys;
    uint64_t chunk = n / PAIR_CHUNKS ? n / PAIR_CHUNKS : 1;
    MDB_txn *txn;
    int rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return lmdb_fail("mdb_txn_begin", rc);
    mdb_txn_reset(txn);
    uint64_t store_rng = rng_stream(b->opt.seed, RNG_GET), raw_rng = store_rng;
    double store_secs = 0, raw_secs = 0;
    pair_progress(p, n);
    for (uint64_t from = 0; from < n && !rc; from += chunk) {
        uint64_t count = n - from < chunk ? n - from : chunk;
        double t0 = now_secs();
        rc = store_gets(b, st, &store_rng, count, 0, 0);
        double t1 = now_secs();
        if (!rc)
            rc = raw_gets(b, r, txn, &raw_rng, count);
        store_secs += t1 - t0;
        raw_secs += now_secs() - t1;
    }
    mdb_txn_abort(txn);
    if (rc)
        return -1;
    result_add(b, p->store_id, p->store_label, n, store_secs);
    result_add(b, p->raw_id, p->raw_label, n, raw_secs);
    return 0;
}

/* Timed puts in the store alone: keys base + order(0 .. n-1), per_tx per write transaction. */
static int run_store_puts(struct bench *b, store *st, const char *id, const char *label,
                          const struct key_order *order, uint64_t base, uint64_t n, uint64_t per_tx,
                          bool durable)
{
    progress(label, n);
    double t0 = now_secs();
    if (store_puts(b, st, order, base, 0, n, per_tx, durable))
        return -1;
    result_add(b, id, label, n, now_secs() - t0);
    return 0;
}

/* Point gets at revisions drawn from [b->past_lo, b->past_hi]. */
static int run_store_past_gets(struct bench *b, store *st)
{
    const char *label = "get, past revision";
    uint64_t n = b->opt.keys;
    progress(label, n);
    uint64_t rng = rng_stream(b->opt.seed, RNG_GET_PAST);
    double t0 = now_secs();
    if (store_gets(b, st, &rng, n, b->past_lo, b->past_hi))
        return -1;
    result_add(b, "store_get_past", label, n, now_secs() - t0);
    return 0;
}

/* Random ranges [key(i), key(i + RANGE_KEYS)) of loaded keys: RANGE_KEYS keys each. */
static int run_store_ranges(struct bench *b, store *st, uint64_t n)
{
    const char *label = "range, 100 keys";
    progress(label, n);
    uint64_t rng = rng_stream(b->opt.seed, RNG_RANGE);
    uint8_t key[KEY_SIZE], end[KEY_SIZE];
    double t0 = now_secs();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t k = rng_below(&rng, b->opt.keys - RANGE_KEYS + 1);
        key_format(k, key);
        key_format(k + RANGE_KEYS, end);
        struct store_range_req req = {.key = {key, KEY_SIZE}, .range_end = {end, KEY_SIZE}};
        size_t found;
        if (store_read(b, st, &req, &found))
            return -1;
        if (found != RANGE_KEYS) {
            fprintf(stderr, "store_bench: %s: %zu keys from %.*s\n", label, found, KEY_SIZE,
                    (const char *)key);
            return -1;
        }
    }
    result_add(b, "store_range100", label, n, now_secs() - t0);
    return 0;
}

/* Deletes n distinct loaded keys, in a fresh pseudo-random order, one per write transaction. */
static int run_store_deletes(struct bench *b, store *st, uint64_t n)
{
    const char *label = "delete, 1 per write txn";
    progress(label, n);
    struct key_order order;
    key_order_init(&order, b->opt.keys, rng_stream(b->opt.seed, RNG_DELETE));
    uint8_t key[KEY_SIZE];
    double t0 = now_secs();
    for (uint64_t i = 0; i < n; i++) {
        key_format(key_order_at(&order, i), key);
        store_tx *tx;
        int err = store_tx_begin_write(st, &tx);
        if (err)
            return store_fail("store_tx_begin_write", err);
        struct store_delete_req req = {.key = {key, KEY_SIZE}};
        struct store_delete_res res;
        err = store_delete_range(tx, &req, &b->arena, &res);
        arena_reset(&b->arena);
        if (!err && res.deleted != 1)
            err = CAIRN_E_KEY_NOT_FOUND;
        if (err) {
            store_tx_end(tx);
            return store_fail("store_delete_range", err);
        }
        err = store_tx_commit(tx, false);
        if (err)
            return store_fail("store_tx_commit", err);
    }
    result_add(b, "store_delete", label, n, now_secs() - t0);
    return 0;
}

/* The load and the overwrites (which give every key history), paired with raw LMDB; the footprint
 * after the load; the window of revisions for past reads. */
static int run_paired_writes(struct bench *b, store *st, struct raw_db *r)
{
    uint64_t n = b->opt.keys;
    struct key_order load, overwrite;
    key_order_init(&load, n, rng_stream(b->opt.seed, RNG_LOAD));
    key_order_init(&overwrite, n, rng_stream(b->opt.seed, RNG_OVERWRITE));

    const struct pair put = {"store_put", "put, 1 per write txn", "raw_put",
                             "raw LMDB put, 1 per write txn"};
    if (run_paired_puts(b, st, r, &put, &load, 1))
        return -1;
    int64_t loaded_rev;
    struct store_size sz;
    if (store_probe(st, &loaded_rev, &sz))
        return -1;
    b->fp.rss_loaded_kib = rss_anon_kib();
    b->fp.store_file_loaded = sz.file_bytes;
    b->fp.store_in_use_loaded = sz.in_use_bytes;
    b->fp.raw_file_loaded = raw_file_bytes(r);

    const struct pair group = {"store_put_group100", "put, 100 per write txn (overwrites)",
                               "raw_put_group100", "raw LMDB put, 100 per write txn"};
    if (run_paired_puts(b, st, r, &group, &overwrite, GROUP_SMALL))
        return -1;
    int64_t rev;
    if (store_probe(st, &rev, &sz))
        return -1;
    b->fp.raw_file_end = raw_file_bytes(r);
    /* From the end of the load on, every key exists; about half of them were overwritten after any
     * revision in this window, so a past read finds an older version of those. */
    b->past_lo = loaded_rev;
    b->past_hi = rev - 1;
    return 0;
}

/* Parts 1 and 2 on open environments: the paired runs, then the store's own reads and deletes. */
static int run_nosync_on(struct bench *b, store *st, struct raw_db *r)
{
    if (run_paired_writes(b, st, r))
        return -1;
    const struct pair get = {"store_get_latest", "get, latest revision", "raw_get", "raw LMDB get"};
    if (run_paired_gets(b, st, r, &get) || run_store_past_gets(b, st) ||
        run_store_ranges(b, st, b->opt.keys / RANGE_RUN_DIV) ||
        run_store_deletes(b, st, b->opt.keys / DELETE_RUN_DIV))
        return -1;
    int64_t rev;
    struct store_size sz;
    if (store_probe(st, &rev, &sz))
        return -1;
    b->fp.store_file_end = sz.file_bytes;
    b->fp.rss_end_kib = rss_anon_kib();
    return 0;
}

/* Parts 1 and 2: the store at nosync=true and raw LMDB, each in a fresh directory. */
static int run_nosync(struct bench *b)
{
    b->fp.rss_start_kib = rss_anon_kib();
    store *st;
    if (store_bench_open(b, "store", true, &st))
        return -1;
    struct raw_db r;
    if (raw_open(b, &r)) {
        store_close(st);
        return -1;
    }
    int rc = run_nosync_on(b, st, &r);
    mdb_env_close(r.env);
    store_close(st);
    return rc;
}

/* Part 3: durable commits at nosync=false, each run on keys of its own (all inserts). */
static int run_durable(struct bench *b)
{
    uint64_t grouped = DURABLE_GROUPED / (b->opt.quick ? QUICK_DURABLE_DIV : 1);
    uint64_t single = DURABLE_SINGLE / (b->opt.quick ? QUICK_DURABLE_DIV : 1);
    struct key_order og, os;
    key_order_init(&og, grouped, rng_stream(b->opt.seed, RNG_DURABLE_GROUPED));
    key_order_init(&os, single, rng_stream(b->opt.seed, RNG_DURABLE_SINGLE));
    store *st;
    if (store_bench_open(b, "durable", false, &st))
        return -1;
    int rc = run_store_puts(b, st, "durable_put_group100", "durable put, 100 per commit", &og, 0,
                            grouped, GROUP_SMALL, true);
    if (!rc)
        rc = run_store_puts(b, st, "durable_put_group1000", "durable put, 1000 per commit", &og,
                            grouped, grouped, GROUP_LARGE, true);
    if (!rc)
        rc = run_store_puts(b, st, "durable_put", "durable put, 1 per commit", &os, 2 * grouped,
                            single, 1, true);
    if (!rc)
        rc = run_store_puts(b, st, "durable_put_nondurable_commit",
                            "put, 1 per commit(durable=false)", &os, 2 * grouped + single, single,
                            1, false);
    store_close(st);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Report */

struct target {
    const char *id;    /* machine name */
    const char *label; /* what the table shows */
    double value;      /* measured */
    double goal;       /* bound */
    bool at_most;      /* value must be <= goal (else >=) */
    const char *unit;  /* "" for ratios */
};

/* The three targets, evaluated from the results. Returns how many were filled (3). */
static size_t targets_eval(const struct bench *b, struct target t[3])
{
    t[0] = (struct target){.id = "put_ratio",
                           .label = "store/raw put, 1 per txn",
                           .value = result_ratio(b, "store_put", "raw_put"),
                           .goal = TARGET_PUT_RATIO,
                           .unit = ""};
    t[1] = (struct target){.id = "get_ratio",
                           .label = "store/raw get, latest",
                           .value = result_ratio(b, "store_get_latest", "raw_get"),
                           .goal = TARGET_GET_RATIO,
                           .unit = ""};
    t[2] = (struct target){.id = "rss_anon_after_load",
                           .label = "RssAnon after load",
                           .value = (double)b->fp.rss_loaded_kib / 1024.0,
                           .goal = TARGET_RSS_KIB / 1024.0,
                           .at_most = true,
                           .unit = " MiB"};
    return 3;
}

static bool target_pass(const struct target *t)
{
    return t->at_most ? t->value <= t->goal : t->value >= t->goal;
}

static double mib(uint64_t bytes)
{
    return (double)bytes / (1024.0 * 1024.0);
}

static void print_result_row(const struct result *r)
{
    double rate = ops_per_sec(r);
    printf("  %-46s %10" PRIu64 " %9.3f %12.0f %9.2f\n", r->label, r->ops, r->secs, rate,
           rate > 0 ? 1e6 / rate : 0);
}

/* Prints the rows whose id starts with prefix, under a section title. */
static void print_section(const struct bench *b, const char *title, const char *prefix)
{
    printf("%s\n", title);
    for (size_t i = 0; i < b->n_res; i++)
        if (!strncmp(b->res[i].id, prefix, strlen(prefix)))
            print_result_row(&b->res[i]);
}

static void print_table(const struct bench *b)
{
    printf("cairn store_bench: %" PRIu64 " keys, %d-byte keys, %d-byte values, seed %" PRIu64
           "%s\n",
           b->opt.keys, KEY_SIZE, VALUE_SIZE, b->opt.seed, b->opt.quick ? " (quick)" : "");
    printf("data in %s (removed at exit); LMDB map %.0f MiB, store quota %.0f MiB\n\n", b->root,
           mib(b->map_bytes), mib(b->quota_bytes));
    printf("  %-46s %10s %9s %12s %9s\n", "operation", "ops", "seconds", "ops/s", "us/op");
    print_section(b, "store, nosync=true (no fsync; CPU and memory bound)", "store_");
    print_section(b, "raw LMDB, " RAW_LMDB_ENV_FLAGS_TEXT ", one table (paired with the store's)",
                  "raw_");
    print_section(b, "store, nosync=false (fsync bound)", "durable_");

    printf("\nfootprint\n");
    printf("  %-46s %10.1f MiB\n", "RssAnon before opening the store",
           b->fp.rss_start_kib / 1024.0);
    printf("  %-46s %10.1f MiB\n", "RssAnon after the load (store + raw LMDB)",
           b->fp.rss_loaded_kib / 1024.0);
    printf("  %-46s %10.1f MiB\n", "RssAnon after all store runs", b->fp.rss_end_kib / 1024.0);
    printf("  %-46s %10.1f MiB (%.1f MiB in use)\n", "store data file after the load",
           mib(b->fp.store_file_loaded), mib(b->fp.store_in_use_loaded));
    printf("  %-46s %10.1f MiB\n", "store data file after all runs", mib(b->fp.store_file_end));
    printf("  %-46s %10.1f MiB\n", "raw LMDB data file after the load", mib(b->fp.raw_file_loaded));
    printf("  %-46s %10.1f MiB\n", "raw LMDB data file after the overwrites",
           mib(b->fp.raw_file_end));

    printf("\nratios and targets (informational)\n");
    printf("  %-46s %10.2f\n", "store/raw put, 100 per txn",
           result_ratio(b, "store_put_group100", "raw_put_group100"));
    struct target t[3];
    size_t nt = targets_eval(b, t);
    for (size_t i = 0; i < nt; i++)
        printf("  %-46s %10.2f%-4s  target %s %.2f%s  %s\n", t[i].label, t[i].value, t[i].unit,
               t[i].at_most ? "<=" : ">=", t[i].goal, t[i].unit,
               target_pass(&t[i]) ? "PASS" : "FAIL");
}

/* Prints s as a JSON string (quotes and backslashes escaped; control characters dropped). */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        if ((unsigned char)*s >= 0x20)
            putchar(*s);
    }
    putchar('"');
}

static void print_json(const struct bench *b)
{
    printf("{\"keys\": %" PRIu64 ", \"key_bytes\": %d, \"value_bytes\": %d, \"seed\": %" PRIu64
           ", \"quick\": %s, \"dir\": ",
           b->opt.keys, KEY_SIZE, VALUE_SIZE, b->opt.seed, b->opt.quick ? "true" : "false");
    json_string(b->root);
    printf(", \"map_bytes\": %" PRIu64 ", \"raw_lmdb_flags\": \"%s\",\n \"results\": [\n",
           b->map_bytes, RAW_LMDB_ENV_FLAGS_TEXT);
    for (size_t i = 0; i < b->n_res; i++) {
        const struct result *r = &b->res[i];
        printf("  {\"id\": \"%s\", \"label\": ", r->id);
        json_string(r->label);
        printf(", \"ops\": %" PRIu64 ", \"seconds\": %.6f, \"ops_per_sec\": %.1f}%s\n", r->ops,
               r->secs, ops_per_sec(r), i + 1 < b->n_res ? "," : "");
    }
    printf(" ],\n \"footprint\": {\"rss_anon_kib_start\": %ld, \"rss_anon_kib_after_load\": %ld, "
           "\"rss_anon_kib_end\": %ld, \"store_file_bytes_after_load\": %" PRIu64
           ", \"store_in_use_bytes_after_load\": %" PRIu64 ", \"store_file_bytes_end\": %" PRIu64
           ", \"raw_file_bytes_after_load\": %" PRIu64 ", \"raw_file_bytes_end\": %" PRIu64 "},\n",
           b->fp.rss_start_kib, b->fp.rss_loaded_kib, b->fp.rss_end_kib, b->fp.store_file_loaded,
           b->fp.store_in_use_loaded, b->fp.store_file_end, b->fp.raw_file_loaded,
           b->fp.raw_file_end);
    struct target t[3];
    size_t nt = targets_eval(b, t);
    printf(" \"targets\": [\n");
    for (size_t i = 0; i < nt; i++)
        printf("  {\"id\": \"%s\", \"value\": %.4f, \"goal\": %.4f, \"at_most\": %s, \"pass\": "
               "%s}%s\n",
               t[i].id, t[i].value, t[i].goal, t[i].at_most ? "true" : "false",
               target_pass(&t[i]) ? "true" : "false", i + 1 < nt ? "," : "");
    printf(" ]}\n");
}

/* ---------------------------------------------------------------------------------------------- */
/* Command line */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: store_bench [--keys N] [--quick] [--json] [--dir DIR] [--seed S]\n"
            "  --keys N   keys to load (default %d, %d to %d)\n"
            "  --quick    smoke run: %d keys and a tenth of the durable puts\n"
            "  --json     print JSON instead of the table\n"
            "  --dir DIR  make the temporary data directory in DIR (default $TMPDIR or /tmp);\n"
            "             the durable runs measure that disk's fdatasync\n"
            "  --seed S   PRNG seed (default %d)\n",
            DEFAULT_KEYS, MIN_KEYS, MAX_KEYS, QUICK_KEYS, DEFAULT_SEED);
}

/* Parses an unsigned decimal number, all of s; false if it is not one. */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Fills o from argv. Returns 0 to run, 1 after --help, -1 on bad usage (message printed). */
static int parse_args(int argc, char **argv, struct bench_opts *o)
{
    const char *tmp = getenv("TMPDIR");
    *o = (struct bench_opts){.keys = 0, .seed = DEFAULT_SEED, .parent = tmp && *tmp ? tmp : "/tmp"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *next = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--keys") && parse_u64(next, &o->keys) && o->keys >= MIN_KEYS &&
            o->keys <= MAX_KEYS)
            i++;
        else if (!strcmp(a, "--seed") && parse_u64(next, &o->seed))
            i++;
        else if (!strcmp(a, "--dir") && next && *next)
            o->parent = argv[++i];
        else if (!strcmp(a, "--json"))
            o->json = true;
        else if (!strcmp(a, "--quick"))
            o->quick = true;
        else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 1;
        } else {
            fprintf(stderr, "store_bench: bad argument: %s%s%s\n", a, next ? " " : "",
                    next ? next : "");
            usage(stderr);
            return -1;
        }
    }
    if (!o->keys) /* an explicit --keys wins over --quick */
        o->keys = o->quick ? QUICK_KEYS : DEFAULT_KEYS;
    return 0;
}

/* Sizes the map and quota: the store's defaults (2 GiB quota, 4 GiB map) unless the key count
 * needs more. */
static void size_map(struct bench *b)
{
    uint64_t q = b->opt.keys * BYTES_PER_KEY_Q;
    b->quota_bytes = q > STORE_DEFAULT_QUOTA_BYTES ? q : STORE_DEFAULT_QUOTA_BYTES;
    b->map_bytes = 2 * b->quota_bytes;
}

/* Fills the value with PRNG bytes (nothing compresses values; this just avoids a trivial one). */
static void value_fill(struct bench *b)
{
    uint64_t rng = rng_stream(b->opt.seed, RNG_VALUE);
    for (size_t i = 0; i < VALUE_SIZE; i += 8) {
        uint64_t x = splitmix64(&rng);
        memcpy(b->value + i, &x, 8);
    }
}

int main(int argc, char **argv)
{
    static struct bench b; /* static only for its size; main passes it down */
    int rc = parse_args(argc, argv, &b.opt);
    if (rc)
        return rc > 0 ? 0 : 2;
    size_map(&b);
    value_fill(&b);
    b.arena = (struct arena)ARENA_INIT;
    if (temp_root_create(&b))
        return 1;

    rc = run_nosync(&b);
    if (!rc)
        rc = run_durable(&b);
    arena_free(&b.arena);
    if (rc) {
        fprintf(stderr, "store_bench: failed\n");
        return 1; /* exit() runs cleanup_remove */
    }
    if (b.opt.json)
        print_json(&b);
    else
        print_table(&b);
    fprintf(stderr, "store_bench: done (checksum %" PRIu64 ")\n", b.sink);
    return 0;
}
