/* tests/unit/test_store_crash.c — the store survives SIGKILL at any instant without losing a
 * durable commit.
 *
 * A child process opens the store and writes without pause: a deterministic sequence of requests
 * (operation i depends only on the seed and i, and on the state the earlier operations left),
 * several per durable commit at random, with compaction steps in between; after each commit it
 * reports the revision on a pipe. The parent kills it with SIGKILL after 1-50 ms, reopens the store
 * and checks: it opens; its revision is at least the last acknowledged one and never goes back; its
 * state equals a model that replayed the same operations up to that revision, and its hash equals
 * that of a second store that replayed them too (with its compaction finished). Then the next child
 * continues from there.
 *
 * CAIRN_TEST_SEED=<n> picks the seed; CAIRN_TEST_LONG=1 runs many more rounds. */
#include "tests/unit/helpers/fixture.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CKEYS  16
#define MAXVAL 300

struct rng {
    uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static int64_t rn(struct rng *r, int64_t n)
{
    return n > 0 ? (int64_t)(rnd(r) % (uint64_t)n) : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The deterministic operation sequence */

enum cop_kind { COP_PUT, COP_DEL, COP_DEL_RANGE, COP_TXN, COP_COMPACT_PUT };

struct cop {
    enum cop_kind kind;
    int k, k2; /* keys; for ranges k < k2 */
    uint8_t val[MAXVAL];
    size_t vlen;
};

static void ckey(int k, char out[16])
{
    snprintf(out, 16, "key/%02d", k % 100);
}

static store_bytes ckey_b(int k, char buf[16])
{
    ckey(k, buf);
    return (store_bytes){(const uint8_t *)buf, 6};
}

/* Operation i of the sequence of `seed`. */
static void cop_gen(uint64_t seed, uint64_t i, struct cop *o)
{
    struct rng r = {seed * 0x9e3779b97f4a7c15ull ^ (i + 1) * 0xd1b54a32d192ed03ull};
    rnd(&r);
    memset(o, 0, sizeof *o);
    int t = (int)rn(&r, 100);
    o->kind = t < 50   ? COP_PUT
              : t < 65 ? COP_DEL
              : t < 70 ? COP_DEL_RANGE
              : t < 90 ? COP_TXN
                       : COP_COMPACT_PUT;
    o->k = (int)rn(&r, CKEYS);
    do
        o->k2 = (int)rn(&r, CKEYS);
    while (o->k2 == o->k);
    if (o->kind == COP_DEL_RANGE && o->k2 < o->k) {
        int x = o->k;
        o->k = o->k2;
        o->k2 = x;
    }
    int n = snprintf((char *)o->val, MAXVAL, "v%" PRIu64 "-", i);
    size_t len = (size_t)n + (size_t)rn(&r, rn(&r, 10) == 0 ? 280 : 20);
    for (size_t j = (size_t)n; j < len; j++)
        o->val[j] = (uint8_t)rnd(&r);
    o->vlen = len;
}

/* Applies operation i to a write transaction. 0 or the store's error. */
static int cop_store(store_tx *tx, uint64_t seed, uint64_t i, struct arena *a)
{
    struct cop o;
    cop_gen(seed, i, &o);
    char kb[16], kb2[16];
    store_bytes k = ckey_b(o.k, kb), k2 = ckey_b(o.k2, kb2);
    store_bytes v = {o.val, o.vlen};
    switch (o.kind) {
    case COP_PUT: {
        struct store_put_req q = {.key = k, .value = v};
        struct store_put_res r;
        return store_put(tx, &q, a, &r);
    }
    case COP_DEL: {
        struct store_delete_req q = {.key = k};
        struct store_delete_res r;
        return store_delete_range(tx, &q, a, &r);
    }
    case COP_DEL_RANGE: {
        struct store_delete_req q = {.key = k, .range_end = k2};
        struct store_delete_res r;
        return store_delete_range(tx, &q, a, &r);
    }
    case COP_TXN: {
        /* if k exists: delete k, put k2; else put k */
        struct store_compare c = {
            .result = STORE_CMP_GREATER, .target = STORE_CMP_VERSION, .key = k};
        struct store_op succ[2], fail[1];
        memset(succ, 0, sizeof succ);
        memset(fail, 0, sizeof fail);
        succ[0].type = STORE_OP_DELETE;
        succ[0].u.del.key = k;
        succ[1].type = STORE_OP_PUT;
        succ[1].u.put.key = k2;
        succ[1].u.put.value = v;
        fail[0].type = STORE_OP_PUT;
        fail[0].u.put.key = k;
        fail[0].u.put.value = v;
        struct store_txn_req q = {&c, 1, succ, 2, fail, 1};
        struct store_txn_res r;
        return store_txn(tx, &q, a, &r);
    }
    case COP_COMPACT_PUT: {
        int64_t target = store_tx_rev(tx) - 20;
        if (target > 1 && target > store_tx_compact_rev(tx)) {
            int rc = store_compact(tx, target);
            if (rc)
                return rc;
        }
        struct store_put_req q = {.key = k, .value = v};
        struct store_put_res r;
        return store_put(tx, &q, a, &r);
    }
    }
    return CAIRN_E_INTERNAL;
}

/* The model: the current state only. */
struct ckv {
    bool live;
    uint8_t val[MAXVAL];
    size_t vlen;
    int64_t create, mod, version;
};

struct cmodel {
    struct ckv kv[CKEYS];
    int64_t rev, compact;
    uint64_t next; /* index of the next operation */
};

static void cm_put(struct cmodel *m, int k, const struct cop *o, int64_t rev)
{
    struct ckv *x = &m->kv[k];
    if (!x->live) {
        x->live = true;
        x->create = rev;
        x->version = 0;
    }
    x->version++;
    x->mod = rev;
    memcpy(x->val, o->val, o->vlen);
    x->vlen = o->vlen;
}

static void cm_apply(struct cmodel *m, uint64_t seed)
{
    struct cop o;
    cop_gen(seed, m->next++, &o);
    int64_t rev = m->rev + 1;
    bool changed = true;
    switch (o.kind) {
    case COP_PUT:
        cm_put(m, o.k, &o, rev);
        break;
    case COP_DEL:
        changed = m->kv[o.k].live;
        m->kv[o.k].live = false;
        break;
    case COP_DEL_RANGE:
        changed = false;
        for (int k = o.k; k < o.k2; k++) {
            changed |= m->kv[k].live;
            m->kv[k].live = false;
        }
        break;
    case COP_TXN:
        if (m->kv[o.k].live) {
            m->kv[o.k].live = false;
            cm_put(m, o.k2, &o, rev);
        } else {
            cm_put(m, o.k, &o, rev);
        }
        break;
    case COP_COMPACT_PUT:
        if (m->rev - 20 > 1 && m->rev - 20 > m->compact)
            m->compact = m->rev - 20;
        cm_put(m, o.k, &o, rev);
        break;
    }
    if (changed)
        m->rev = rev;
}

/* ---------------------------------------------------------------------------------------------- */
/* The child */

struct ack {
    int64_t rev;   /* revision after a durable commit; -1: failure, see code */
    int64_t code;  /* the error (failure) or the next operation index */
    int64_t stage; /* failure: where */
};

static void child_fail(int fd, int stage, int code)
{
    struct ack a = {-1, code, stage};
    if (write(fd, &a, sizeof a) < 0)
        _exit(3);
    _exit(2);
}

/* Writes forever from operation `next`; never returns. */
static void child_main(const char *dir, uint64_t seed, uint64_t next, int fd)
{
    struct store_options o = {.compact_batch = 8};
    store *st;
    int rc = store_open(dir, &o, &st);
    if (rc)
        child_fail(fd, 1, rc);
    struct rng r = {(uint64_t)getpid() * 7919 + (uint64_t)time(NULL)};
    struct arena a = ARENA_INIT;
    for (;;) {
        store_tx *tx;
        if ((rc = store_tx_begin_write(st, &tx)))
            child_fail(fd, 2, rc);
        int g = rn(&r, 3) ? 1 : 1 + (int)rn(&r, 5);
        for (int j = 0; j < g; j++) {
            arena_reset(&a);
            if ((rc = cop_store(tx, seed, next + (uint64_t)j, &a)))
                child_fail(fd, 3, rc);
        }
        if (rn(&r, 4) == 0) {
            bool done;
            for (int j = 0; j < 2; j++)
                if ((rc = store_compact_step(tx, &done)))
                    child_fail(fd, 4, rc);
        }
        int64_t rev = store_tx_rev(tx);
        /* the consistent index: where the next child continues */
        if ((rc = store_tx_set_consistent_index(tx, next + (uint64_t)g)))
            child_fail(fd, 6, rc);
        if ((rc = store_tx_commit(tx, true)))
            child_fail(fd, 5, rc);
        next += (uint64_t)g;
        struct ack ack = {rev, (int64_t)next, 0};
        if (write(fd, &ack, sizeof ack) != (ssize_t)sizeof ack)
            _exit(4);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* The parent */

struct crash {
    char dir[256];
    pid_t child;
    struct fx *replay; /* a second store replaying the same operations */
    uint64_t replay_next;
    struct arena a;
};

static int setup(void **state)
{
    struct crash *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(c->dir, sizeof c->dir, "%s/cairn-crash-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(c->dir))
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct crash *c = *state;
    if (c->child > 0) {
        kill(c->child, SIGKILL);
        waitpid(c->child, NULL, 0);
    }
    fx_close(c->replay);
    fx_rmtree(c->dir);
    arena_free(&c->a);
    free(c);
    return 0;
}

#define CFAIL(seed, round, ...)                                                                  \
    do {                                                                                         \
        char cbuf_[512];                                                                         \
        snprintf(cbuf_, sizeof cbuf_, __VA_ARGS__);                                              \
        fail_msg("crash seed %" PRIu64 " round %d: %s (reproduce: CAIRN_TEST_SEED=%" PRIu64 ")", \
                 (uint64_t)(seed), round, cbuf_, (uint64_t)(seed));                              \
    } while (0)

/* Full range of a store (read transaction tx) as a string of (key, value, create, mod, version). */
static void check_against_model(uint64_t seed, int round, store_tx *tx, const struct cmodel *m,
                                struct arena *a, const char *who)
{
    static const uint8_t zero = 0;
    struct store_range_req q = {.key = {&zero, 1}, .range_end = {&zero, 1}};
    struct store_range_res res;
    arena_reset(a);
    int rc = store_range(tx, &q, a, &res);
    if (rc)
        CFAIL(seed, round, "%s: range: %s", who, cairn_strerror(rc));
    size_t j = 0;
    for (int k = 0; k < CKEYS; k++) {
        const struct ckv *x = &m->kv[k];
        if (!x->live)
            continue;
        char kb[16];
        store_bytes key = ckey_b(k, kb);
        if (j >= res.n_kvs)
            CFAIL(seed, round, "%s: key %s missing at revision %" PRId64, who, kb, m->rev);
        const struct store_kv *kv = &res.kvs[j++];
        if (kv->key.len != key.len || memcmp(kv->key.data, key.data, key.len))
            CFAIL(seed, round, "%s: key %.*s where the model has %s at revision %" PRId64, who,
                  (int)kv->key.len, (const char *)kv->key.data, kb, m->rev);
        if (kv->value.len != x->vlen || (x->vlen && memcmp(kv->value.data, x->val, x->vlen)))
            CFAIL(seed, round, "%s: key %s: value differs from the model", who, kb);
        if (kv->create_revision != x->create || kv->mod_revision != x->mod ||
            kv->version != x->version)
            CFAIL(seed, round,
                  "%s: key %s: create/mod/version %" PRId64 "/%" PRId64 "/%" PRId64
                  ", model %" PRId64 "/%" PRId64 "/%" PRId64,
                  who, kb, kv->create_revision, kv->mod_revision, kv->version, x->create, x->mod,
                  x->version);
    }
    if (j != res.n_kvs)
        CFAIL(seed, round, "%s: %zu keys, model %zu", who, res.n_kvs, j);
}

static bool any_live(const struct cmodel *m)
{
    for (int k = 0; k < CKEYS; k++)
        if (m->kv[k].live)
            return true;
    return false;
}

static void run_crash(struct crash *c, uint64_t seed, int rounds)
{
    struct cmodel m;
    memset(&m, 0, sizeof m);
    m.rev = 1;
    m.compact = -1;
    struct store_options ro = {.nosync = true};
    c->replay = fx_open(&ro);
    c->replay_next = 0;
    int64_t last_rev = 1; /* recovered revision of the previous round */
    struct rng r = {seed ^ 0x5bd1e995};
    uint64_t total_acks = 0;
    int ms_total = 0;

    for (int round = 0; round < rounds; round++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        uint64_t start = m.next;
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(c->dir, seed, start, fds[1]);
            _exit(5);
        }
        c->child = pid;
        close(fds[1]);
        /* 1-50 ms; sometimes under a millisecond, to hit the store's creation and opening */
        long us = rn(&r, 10) ? 1000 * (1 + rn(&r, 50)) : rn(&r, 1000);
        ms_total += (int)(us / 1000);
        struct timespec ts = {us / 1000000, (us % 1000000) * 1000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
            ;
        c->child = 0;

        /* the acknowledgements: each a durable commit */
        int64_t acked = -1;
        struct ack ack;
        ssize_t n;
        while ((n = read(fds[0], &ack, sizeof ack)) == (ssize_t)sizeof ack) {
            if (ack.rev < 0) {
                close(fds[0]);
                CFAIL(seed, round, "child failed at stage %" PRId64 ": %s", ack.stage,
                      cairn_strerror((int)ack.code));
            }
            if (ack.rev < acked)
                CFAIL(seed, round, "acknowledged revisions went back: %" PRId64 " after %" PRId64,
                      ack.rev, acked);
            acked = ack.rev;
            total_acks++;
        }
        close(fds[0]);
        if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
            CFAIL(seed, round, "child ended by itself (status %#x), not by SIGKILL", status);

        /* recovery */
        store *st;
        struct store_options o = {.compact_batch = 8};
        int rc = store_open(c->dir, &o, &st);
        if (rc)
            CFAIL(seed, round, "store_open after SIGKILL: %s", cairn_strerror(rc));
        store_tx *tx;
        rc = store_tx_begin_read(st, &tx);
        if (rc)
            CFAIL(seed, round, "begin read after SIGKILL: %s", cairn_strerror(rc));
        int64_t rev = store_tx_rev(tx);
        if (rev < acked)
            CFAIL(seed, round, "lost durable commits: revision %" PRId64 " < acknowledged %" PRId64,
                  rev, acked);
        if (rev < last_rev)
            CFAIL(seed, round, "revision went back: %" PRId64 " after %" PRId64, rev, last_rev);
        last_rev = rev;

        /* the model up to the recovered consistent index: the operations of the last commit */
        uint64_t ci = store_tx_consistent_index(tx);
        if (ci < m.next)
            CFAIL(seed, round, "consistent index went back: %" PRIu64 " after %" PRIu64, ci,
                  m.next);
        while (m.next < ci)
            cm_apply(&m, seed);
        if (m.rev != rev)
            CFAIL(seed, round,
                  "revision %" PRId64 " but the model has %" PRId64 " after operation %" PRIu64
                  " (the consistent index)",
                  rev, m.rev, ci);
        if (store_tx_compact_rev(tx) != m.compact)
            CFAIL(seed, round, "compacted revision %" PRId64 ", model %" PRId64,
                  store_tx_compact_rev(tx), m.compact);
        check_against_model(seed, round, tx, &m, &c->a, "recovered store");

        /* the replaying store up to the same operation */
        store_tx *wtx;
        assert_int_equal(store_tx_begin_write(c->replay->st, &wtx), 0);
        for (; c->replay_next < m.next; c->replay_next++) {
            arena_reset(&c->a);
            rc = cop_store(wtx, seed, c->replay_next, &c->a);
            if (rc)
                CFAIL(seed, round, "replay of operation %" PRIu64 ": %s", c->replay_next,
                      cairn_strerror(rc));
        }
        for (bool done = false; !done;)
            assert_int_equal(store_compact_step(wtx, &done), 0);
        assert_int_equal(store_tx_commit(wtx, false), 0);
        store_tx *rtx;
        assert_int_equal(store_tx_begin_read(c->replay->st, &rtx), 0);
        if (store_tx_rev(rtx) != rev)
            CFAIL(seed, round, "replay reached revision %" PRId64 ", recovered store %" PRId64,
                  store_tx_rev(rtx), rev);
        check_against_model(seed, round, rtx, &m, &c->a, "replayed store");
        uint32_t h1, h2;
        int64_t c1, c2;
        rc = store_hash_kv(tx, 0, &h1, &c1);
        if (rc)
            CFAIL(seed, round, "hash_kv: %s", cairn_strerror(rc));
        rc = store_hash_kv(rtx, 0, &h2, &c2);
        if (rc)
            CFAIL(seed, round, "hash_kv of the replay: %s", cairn_strerror(rc));
        /* etcd's HashByRev counts leftover compacted records when no key is live: skip then */
        if ((h1 != h2 || c1 != c2) && (m.compact < 1 || any_live(&m)))
            CFAIL(seed, round,
                  "hash_kv at %" PRId64 ": recovered %08x (compacted %" PRId64
                  "), replayed %08x (compacted %" PRId64 ")",
                  rev, h1, c1, h2, c2);
        store_tx_end(rtx);
        store_tx_end(tx);
        store_close(st);
    }
    print_message("crash: seed %" PRIu64 ": %d kills in %d ms of writing, %" PRIu64
                  " durable commits acknowledged, revision %" PRId64 ", compacted %" PRId64 "\n",
                  seed, rounds, ms_total, total_acks, m.rev, m.compact);
    fx_close(c->replay);
    c->replay = NULL;
}

static void test_crash_recovery(void **state)
{
    struct crash *c = *state;
    const char *s = getenv("CAIRN_TEST_SEED");
    const char *l = getenv("CAIRN_TEST_LONG");
    bool long_run = l && *l == '1';
    uint64_t seed = s && *s ? strtoull(s, NULL, 0) : 7;
    run_crash(c, seed, long_run ? 1000 : 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_crash_recovery, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
