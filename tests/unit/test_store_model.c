/* tests/unit/test_store_model.c — the store against a reference model of etcd 3.4's MVCC.
 *
 * The model keeps every change ever made as a flat list of records (key, value, create, mod,
 * version, lease, tombstone, main, sub) and answers every question by scanning it: "the state at
 * revision R" is each key's last record with main <= R. It is slow and obviously right; the store
 * is fast and has to agree with it. Thousands of random requests (puts, deletes, txns with compares
 * and nested txns, compactions with random physical progress, lease grants and revokes) go to both,
 * sometimes several per write transaction (group commit), sometimes aborted; after every step the
 * whole state is compared, and random steps compare historical ranges, change feeds, hashes and
 * leases.
 *
 * A second store (the twin) gets the same committed requests but compacts physically at once, so
 * store_hash_kv can be compared between stores with equal history and different compaction
 * progress.
 *
 * Seeds: CAIRN_TEST_SEED=<n> runs that seed only (CAIRN_TEST_STEPS=<n> steps, default 2000); normal
 * runs use a fixed set; CAIRN_TEST_LONG=1 runs many more seeds and steps. CAIRN_TEST_TRACE=1 prints
 * every request. A mismatch fails with the seed and step, so it can be reproduced. */
#include "tests/unit/helpers/fixture.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NKEYS   31
#define NLEASES 4
#define MAXPATH 64
#define INF_REV INT64_MAX

/* ---------------------------------------------------------------------------------------------- */
/* Random numbers: splitmix64, so a seed fully determines a run. */

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
static bool chance(struct rng *r, int pct)
{
    return rn(r, 100) < pct;
}
/* uniform in [lo, hi] (hi >= lo) */
static int64_t rrange(struct rng *r, int64_t lo, int64_t hi)
{
    return lo + rn(r, hi - lo + 1);
}

/* ---------------------------------------------------------------------------------------------- */
/* Keys: a small space with shared prefixes, 0x00 and 0xff bytes, and one long key. */

static const struct {
    const char *s;
    size_t len;
} key_src[NKEYS - 1] = {
    {"\x00", 1},  {"\x00\x00", 2}, {"\x00\x01", 2}, {"a", 1},        {"a\x00", 2},
    {"a\xff", 2}, {"ab", 2},       {"abc", 3},      {"abd", 3},      {"ab\xff", 3},
    {"b", 1},     {"b/1", 3},      {"b/10", 4},     {"b/2", 3},      {"b0", 2},
    {"c", 1},     {"foo", 3},      {"foo/", 4},     {"foo/bar", 7},  {"foo/baz", 7},
    {"foo0", 4},  {"fop", 3},      {"k1", 2},       {"k10", 3},      {"k2", 2},
    {"z", 1},     {"\xfe", 1},     {"\xff", 1},     {"\xff\x00", 2}, {"\xff\xff", 2},
};

/* range bounds that are not keys */
static const struct {
    const char *s;
    size_t len;
} bound_src[] = {
    {"aa", 2}, {"f", 1},    {"b/", 2},           {"\x01", 1},     {"k", 1},
    {"zz", 2}, {"foo1", 4}, {"\xff\xff\xff", 3}, {"foo/\xff", 5}, {"a\x00\x00", 3},
};
#define NBOUNDS (sizeof bound_src / sizeof bound_src[0])

struct mkey {
    uint8_t b[256];
    size_t len;
};

static int bcmp_b(store_bytes a, store_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    if (c)
        return c < 0 ? -1 : 1;
    return a.len < b.len ? -1 : a.len > b.len ? 1 : 0;
}

static bool beq(store_bytes a, store_bytes b)
{
    return bcmp_b(a, b) == 0;
}

/* etcd's range membership: empty end = the key itself; "\0" = every key >= key; else [key, end). */
static bool in_range(store_bytes k, store_bytes key, store_bytes end)
{
    if (end.len == 0)
        return bcmp_b(k, key) == 0;
    if (end.len == 1 && end.data[0] == 0)
        return bcmp_b(k, key) >= 0;
    return bcmp_b(k, key) >= 0 && bcmp_b(k, end) < 0;
}

/* Printable form of bytes for failure messages; rotating static buffers (test code only). */
static const char *esc(store_bytes b)
{
    static char bufs[8][160];
    static int next;
    char *o = bufs[next++ & 7];
    size_t j = 0;
    o[j++] = '"';
    for (size_t i = 0; i < b.len && j < 140; i++) {
        uint8_t c = b.data[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
            o[j++] = (char)c;
        else
            j += (size_t)snprintf(o + j, 8, "\\x%02x", c);
    }
    if (b.len > 0 && j >= 140)
        j += (size_t)snprintf(o + j, 12, "...(%zu)", b.len);
    o[j++] = '"';
    o[j] = 0;
    return o;
}

/* ---------------------------------------------------------------------------------------------- */
/* The model */

struct mrec {
    int k;             /* key index */
    int64_t main, sub; /* revision of the change */
    bool tomb;         /* a delete */
    int64_t create, version, lease;
    size_t voff, vlen; /* value bytes in model.vals */
    long prev;         /* previous record of the same key, -1 if none */
};

struct model {
    struct mkey keys[NKEYS]; /* sorted */
    struct mrec *recs;       /* every change, in (main, sub) order */
    size_t n, cap;
    long *idx[NKEYS]; /* per key: indices into recs, in order */
    size_t nidx[NKEYS], capidx[NKEYS];
    uint8_t *vals;
    size_t nvals, capvals;
    int64_t rev;             /* current revision */
    int64_t compact;         /* compacted revision, -1 if never */
    int64_t sub;             /* changes of the request being applied */
    bool lease[NLEASES + 1]; /* granted leases, ids 1..NLEASES */
    uint64_t ci;             /* consistent index */
    uint64_t seed;           /* for failure messages */
    int step;
};

struct msnap {
    uint64_t ci;
    size_t n, nvals;
    int64_t rev, compact;
    bool lease[NLEASES + 1];
};

#define FAILF(m, ...)                                                                         \
    do {                                                                                      \
        char fail_buf_[768];                                                                  \
        snprintf(fail_buf_, sizeof fail_buf_, __VA_ARGS__);                                   \
        fail_msg("MISMATCH seed %" PRIu64 " step %d: %s (reproduce: CAIRN_TEST_SEED=%" PRIu64 \
                 " CAIRN_TEST_STEPS=%d)",                                                     \
                 (m)->seed, (m)->step, fail_buf_, (m)->seed, (m)->step + 1);                  \
    } while (0)

#define CHECK(m, cond, ...)        \
    do {                           \
        if (!(cond))               \
            FAILF(m, __VA_ARGS__); \
    } while (0)

#define CHECK_RC(m, got, want, what)                                                  \
    do {                                                                              \
        int got_ = (got), want_ = (want);                                             \
        if (got_ != want_)                                                            \
            FAILF(m, "%s: store returned %d (%s), model expects %d (%s)", what, got_, \
                  cairn_strerror(got_), want_, want_ ? cairn_strerror(want_) : "ok"); \
    } while (0)

static int key_cmp_q(const void *a, const void *b)
{
    const struct mkey *x = a, *y = b;
    store_bytes bx = {x->b, x->len}, by = {y->b, y->len};
    return bcmp_b(bx, by);
}

static void model_init(struct model *m, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    for (int i = 0; i < NKEYS - 1; i++) {
        memcpy(m->keys[i].b, key_src[i].s, key_src[i].len);
        m->keys[i].len = key_src[i].len;
    }
    /* the long key */
    memcpy(m->keys[NKEYS - 1].b, "long/", 5);
    memset(m->keys[NKEYS - 1].b + 5, 'x', 195);
    m->keys[NKEYS - 1].len = 200;
    qsort(m->keys, NKEYS, sizeof m->keys[0], key_cmp_q);
    m->rev = 1;
    m->compact = -1;
    m->seed = seed;
}

static void model_free(struct model *m)
{
    free(m->recs);
    free(m->vals);
    for (int i = 0; i < NKEYS; i++)
        free(m->idx[i]);
    memset(m, 0, sizeof *m);
}

static store_bytes mkey_b(const struct model *m, int k)
{
    store_bytes b = {m->keys[k].b, m->keys[k].len};
    return b;
}

static store_bytes mval(const struct model *m, const struct mrec *r)
{
    store_bytes b = {m->vals + r->voff, r->vlen};
    if (r->vlen == 0)
        b.data = NULL;
    return b;
}

static int key_index(const struct model *m, store_bytes key)
{
    for (int i = 0; i < NKEYS; i++)
        if (beq(mkey_b(m, i), key))
            return i;
    return -1;
}

static size_t m_addval(struct model *m, store_bytes v)
{
    if (m->nvals + v.len > m->capvals) {
        m->capvals = (m->nvals + v.len) * 2 + 4096;
        m->vals = realloc(m->vals, m->capvals);
        assert_non_null(m->vals);
    }
    size_t off = m->nvals;
    if (v.len)
        memcpy(m->vals + off, v.data, v.len);
    m->nvals += v.len;
    return off;
}

/* The key's last record with main <= rev (tombstones included), or NULL. */
static const struct mrec *m_last(const struct model *m, int k, int64_t rev)
{
    for (size_t i = m->nidx[k]; i-- > 0;) {
        const struct mrec *r = &m->recs[m->idx[k][i]];
        if (r->main <= rev)
            return r;
    }
    return NULL;
}

/* The key's live record at rev, or NULL if absent then. */
static const struct mrec *m_live(const struct model *m, int k, int64_t rev)
{
    const struct mrec *r = m_last(m, k, rev);
    return r && !r->tomb ? r : NULL;
}

static struct mrec *m_append(struct model *m, int k)
{
    if (m->n == m->cap) {
        m->cap = m->cap * 2 + 256;
        m->recs = realloc(m->recs, m->cap * sizeof *m->recs);
        assert_non_null(m->recs);
    }
    if (m->nidx[k] == m->capidx[k]) {
        m->capidx[k] = m->capidx[k] * 2 + 64;
        m->idx[k] = realloc(m->idx[k], m->capidx[k] * sizeof(long));
        assert_non_null(m->idx[k]);
    }
    struct mrec *r = &m->recs[m->n];
    memset(r, 0, sizeof *r);
    r->k = k;
    r->prev = m->nidx[k] ? m->idx[k][m->nidx[k] - 1] : -1;
    r->main = m->rev + 1;
    r->sub = m->sub++;
    m->idx[k][m->nidx[k]++] = (long)m->n;
    m->n++;
    return r;
}

/* etcd's storeTxnWrite.put: create revision and version continue the key's generation. */
static void m_put(struct model *m, int k, size_t voff, size_t vlen, int64_t lease)
{
    const struct mrec *prev = m_live(m, k, INF_REV);
    int64_t create = prev ? prev->create : m->rev + 1;
    int64_t version = prev ? prev->version + 1 : 1;
    struct mrec *r = m_append(m, k);
    r->create = create;
    r->version = version;
    r->lease = lease;
    r->voff = voff;
    r->vlen = vlen;
}

static void m_del(struct model *m, int k)
{
    m_append(m, k)->tomb = true;
}

static void m_req_begin(struct model *m)
{
    m->sub = 0;
}
static void m_req_end(struct model *m)
{
    if (m->sub > 0)
        m->rev++;
    m->sub = 0;
}
/* what a read inside the running request sees (etcd: beginRev + 1 once something changed) */
static int64_t m_view(const struct model *m)
{
    return m->rev + (m->sub > 0);
}

static void m_snap(const struct model *m, struct msnap *s)
{
    s->ci = m->ci;
    s->n = m->n;
    s->nvals = m->nvals;
    s->rev = m->rev;
    s->compact = m->compact;
    memcpy(s->lease, m->lease, sizeof s->lease);
}

static void m_restore(struct model *m, const struct msnap *s)
{
    for (int k = 0; k < NKEYS; k++)
        while (m->nidx[k] && (size_t)m->idx[k][m->nidx[k] - 1] >= s->n)
            m->nidx[k]--;
    m->ci = s->ci;
    m->n = s->n;
    m->nvals = s->nvals;
    m->rev = s->rev;
    m->compact = s->compact;
    m->sub = 0;
    memcpy(m->lease, s->lease, sizeof s->lease);
}

/* ---------------------------------------------------------------------------------------------- */
/* The harness */

struct run {
    struct model m;
    struct rng r;
    struct fx *a, *b;        /* store under test; twin that compacts physically at once */
    struct store_options oa; /* a's options (small compact_batch) */
    struct arena gen;        /* generated requests of the current step */
    struct arena res;        /* results */
    bool trace;
};

static void tracef(struct run *R, const char *fmt, ...)
{
    if (!R->trace)
        return;
    va_list ap;
    va_start(ap, fmt);
    char buf[512];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    print_message("[%d rev %" PRId64 "] %s\n", R->m.step, R->m.rev, buf);
}

static void *galloc(struct run *R, size_t n)
{
    void *p = arena_alloc(&R->gen, n);
    assert_non_null(p);
    memset(p, 0, n);
    return p;
}

static void check_kv(struct model *m, const char *what, const struct store_kv *kv,
                     const struct mrec *r, bool keys_only)
{
    store_bytes k = mkey_b(m, r->k);
    CHECK(m, beq(kv->key, k), "%s: key %s, model %s", what, esc(kv->key), esc(k));
    store_bytes v = keys_only ? (store_bytes){NULL, 0} : mval(m, r);
    CHECK(m, beq(kv->value, v), "%s: key %s value %s, model %s", what, esc(k), esc(kv->value),
          esc(v));
    CHECK(m, kv->create_revision == r->create,
          "%s: key %s create_revision %" PRId64 ", model %" PRId64, what, esc(k),
          kv->create_revision, r->create);
    CHECK(m, kv->mod_revision == r->main, "%s: key %s mod_revision %" PRId64 ", model %" PRId64,
          what, esc(k), kv->mod_revision, r->main);
    CHECK(m, kv->version == r->version, "%s: key %s version %" PRId64 ", model %" PRId64, what,
          esc(k), kv->version, r->version);
    CHECK(m, kv->lease == r->lease, "%s: key %s lease %" PRId64 ", model %" PRId64, what, esc(k),
          kv->lease, r->lease);
}

/* ---------------------------------------------------------------------------------------------- */
/* Range: etcd's applierV3backend.Range over the model */

static int64_t target_num(const struct mrec *r, int target)
{
    switch (target) {
    case STORE_SORT_VERSION:
        return r->version;
    case STORE_SORT_CREATE:
        return r->create;
    case STORE_SORT_MOD:
        return r->main;
    default:
        return 0;
    }
}

static int target_cmp(const struct model *m, int target, const struct mrec *x, const struct mrec *y)
{
    if (target == STORE_SORT_KEY)
        return bcmp_b(mkey_b(m, x->k), mkey_b(m, y->k));
    if (target == STORE_SORT_VALUE)
        return bcmp_b(mval(m, x), mval(m, y));
    int64_t a = target_num(x, target), b = target_num(y, target);
    return a < b ? -1 : a > b ? 1 : 0;
}

struct mrange {
    int err;
    const struct mrec *all[NKEYS]; /* filtered and sorted, before the limit */
    size_t n_all;
    size_t n; /* after the limit */
    int64_t count;
    bool more;
    int64_t rev;
    int order, target; /* effective sort */
};

static void m_range(const struct model *m, const struct store_range_req *q, int64_t view,
                    struct mrange *o)
{
    memset(o, 0, sizeof *o);
    o->rev = view;
    if (q->revision > view) {
        o->err = CAIRN_E_FUTURE_REV;
        return;
    }
    int64_t at = q->revision > 0 ? q->revision : view;
    if (at < m->compact) {
        o->err = CAIRN_E_COMPACTED;
        return;
    }
    for (int k = 0; k < NKEYS; k++) {
        if (!in_range(mkey_b(m, k), q->key, q->range_end))
            continue;
        const struct mrec *r = m_live(m, k, at);
        if (!r)
            continue;
        o->count++;
        if (q->count_only)
            continue;
        if (q->max_mod_revision && r->main > q->max_mod_revision)
            continue;
        if (q->min_mod_revision && r->main < q->min_mod_revision)
            continue;
        if (q->max_create_revision && r->create > q->max_create_revision)
            continue;
        if (q->min_create_revision && r->create < q->min_create_revision)
            continue;
        o->all[o->n_all++] = r;
    }
    /* etcd (apply.go Range): without a sort order or a filter only the first limit + 1 keys in key
     * order are fetched, and a sort target sorts just those */
    bool filters = q->min_mod_revision || q->max_mod_revision || q->min_create_revision ||
                   q->max_create_revision;
    if (q->sort_order == STORE_SORT_NONE && !filters && q->limit > 0 &&
        (int64_t)o->n_all > q->limit + 1)
        o->n_all = (size_t)q->limit + 1;
    o->order = q->sort_order;
    o->target = q->sort_target;
    if (o->target != STORE_SORT_KEY && o->order == STORE_SORT_NONE)
        o->order = STORE_SORT_ASCEND;
    if (o->order != STORE_SORT_NONE) {
        /* insertion sort (stable); etcd's sort is not, so ties are compared as sets */
        for (size_t i = 1; i < o->n_all; i++)
            for (size_t j = i; j > 0; j--) {
                int c = target_cmp(m, o->target, o->all[j - 1], o->all[j]);
                if (o->order == STORE_SORT_DESCEND)
                    c = -c;
                if (c <= 0)
                    break;
                const struct mrec *t = o->all[j];
                o->all[j] = o->all[j - 1];
                o->all[j - 1] = t;
            }
    }
    o->n = o->n_all;
    if (q->limit > 0 && (int64_t)o->n > q->limit) {
        o->n = (size_t)q->limit;
        o->more = true;
    }
}

static const char *range_desc(const struct store_range_req *q)
{
    static char buf[4][400];
    static int next;
    char *b = buf[next++ & 3];
    snprintf(b, 400,
             "range[%s,%s) rev %" PRId64 " limit %" PRId64 " sort %d/%d%s%s mod[%" PRId64
             ",%" PRId64 "] create[%" PRId64 ",%" PRId64 "]",
             esc(q->key), esc(q->range_end), q->revision, q->limit, q->sort_order, q->sort_target,
             q->keys_only ? " keys_only" : "", q->count_only ? " count_only" : "",
             q->min_mod_revision, q->max_mod_revision, q->min_create_revision,
             q->max_create_revision);
    return b;
}

/* Compares a store range result (rc, res) with the model's answer at view. */
static void check_range(struct run *R, const char *what, const struct store_range_req *q, int rc,
                        const struct store_range_res *res, int64_t view)
{
    struct model *m = &R->m;
    struct mrange o;
    m_range(m, q, view, &o);
    char w[600];
    snprintf(w, sizeof w, "%s %s", what, range_desc(q));
    CHECK_RC(m, rc, o.err, w);
    if (rc)
        return;
    CHECK(m, res->revision == o.rev, "%s: header revision %" PRId64 ", model %" PRId64, w,
          res->revision, o.rev);
    CHECK(m, res->count == o.count, "%s: count %" PRId64 ", model %" PRId64, w, res->count,
          o.count);
    CHECK(m, res->more == o.more, "%s: more %d, model %d", w, res->more, o.more);
    CHECK(m, res->n_kvs == o.n, "%s: %zu kvs, model %zu", w, res->n_kvs, o.n);
    bool exact = o.order == STORE_SORT_NONE || o.target == STORE_SORT_KEY;
    for (size_t i = 0; i < o.n; i++) {
        char wi[700];
        snprintf(wi, sizeof wi, "%s kv[%zu]", w, i);
        if (exact) {
            check_kv(m, wi, &res->kvs[i], o.all[i], q->keys_only);
            continue;
        }
        /* sorted by a non-key target: any order among ties is etcd's (unstable sort) */
        const struct mrec *r = NULL;
        for (size_t j = 0; j < o.n_all && !r; j++)
            if (beq(mkey_b(m, o.all[j]->k), res->kvs[i].key))
                r = o.all[j];
        CHECK(m, r != NULL, "%s: key %s is not in the model's result", wi, esc(res->kvs[i].key));
        check_kv(m, wi, &res->kvs[i], r, q->keys_only);
        CHECK(m, target_cmp(m, o.target, r, o.all[i]) == 0,
              "%s: key %s out of sort order (model has %s here)", wi, esc(res->kvs[i].key),
              esc(mkey_b(m, o.all[i]->k)));
        for (size_t j = 0; j < i; j++)
            CHECK(m, !beq(res->kvs[j].key, res->kvs[i].key), "%s: key %s twice", wi,
                  esc(res->kvs[i].key));
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Request generation */

static store_bytes gen_key(struct run *R)
{
    return mkey_b(&R->m, (int)rn(&R->r, NKEYS));
}

static store_bytes gen_bound(struct run *R)
{
    if (chance(&R->r, 80))
        return gen_key(R);
    int i = (int)rn(&R->r, NBOUNDS);
    store_bytes b = {(const uint8_t *)bound_src[i].s, bound_src[i].len};
    return b;
}

/* prefix end of b (etcd's clientv3.GetPrefixRangeEnd), in the generation arena */
static store_bytes prefix_end(struct run *R, store_bytes b)
{
    uint8_t *o = galloc(R, b.len + 1);
    memcpy(o, b.data, b.len);
    for (size_t i = b.len; i-- > 0;) {
        if (o[i] < 0xff) {
            o[i]++;
            store_bytes e = {o, i + 1};
            return e;
        }
    }
    store_bytes all = {(const uint8_t *)"\0", 1};
    return all;
}

static void gen_interval(struct run *R, store_bytes *key, store_bytes *end)
{
    static const uint8_t zero = 0;
    store_bytes gte = {&zero, 1}, none = {NULL, 0};
    int t = (int)rn(&R->r, 100);
    if (t < 30) { /* single key */
        *key = chance(&R->r, 90) ? gen_key(R) : gen_bound(R);
        *end = none;
    } else if (t < 45) { /* every key >= key */
        *key = chance(&R->r, 20) ? gte : gen_bound(R);
        *end = gte;
    } else if (t < 75) { /* [a, b) */
        store_bytes x = gen_bound(R), y = gen_bound(R);
        if (bcmp_b(x, y) > 0) {
            store_bytes s = x;
            x = y;
            y = s;
        }
        *key = x;
        *end = y;        /* may equal x: selects nothing */
    } else if (t < 88) { /* prefix */
        *key = gen_bound(R);
        *end = prefix_end(R, *key);
    } else if (t < 95) { /* end < key: nothing */
        store_bytes x = gen_bound(R), y = gen_bound(R);
        if (bcmp_b(x, y) < 0) {
            store_bytes s = x;
            x = y;
            y = s;
        }
        *key = x;
        *end = y.len ? y : gte;
        if (end->len == 1 && end->data[0] == 0)
            *end = x;    /* [x, x): nothing */
    } else if (t < 97) { /* a key that no write uses */
        *key = gen_bound(R);
        *end = (store_bytes){NULL, 0};
    } else { /* everything */
        *key = gte;
        *end = gte;
    }
}

static uint64_t cover_mask(const struct model *m, store_bytes key, store_bytes end)
{
    uint64_t mask = 0;
    for (int k = 0; k < NKEYS; k++)
        if (in_range(mkey_b(m, k), key, end))
            mask |= 1ull << k;
    return mask;
}

static store_bytes gen_value(struct run *R)
{
    int t = (int)rn(&R->r, 100);
    size_t len = t < 20   ? 0
                 : t < 97 ? (size_t)rrange(&R->r, 1, 8)
                          : (size_t)rrange(&R->r, 100, 3000);
    if (len == 0)
        return (store_bytes){NULL, 0};
    uint8_t *v = galloc(R, len);
    if (len <= 8) {
        /* few distinct small values, so compares and value sorts see ties */
        for (size_t i = 0; i < len; i++)
            v[i] = (uint8_t)("ab\x00\xff"[rn(&R->r, 4)]);
    } else {
        for (size_t i = 0; i < len; i++)
            v[i] = (uint8_t)rnd(&R->r);
    }
    return (store_bytes){v, len};
}

static int64_t gen_lease(struct run *R)
{
    if (chance(&R->r, 80))
        return 0;
    return rrange(&R->r, 1, NLEASES);
}

/* A revision for a read: mostly valid, sometimes compacted or future when bad is allowed. */
static int64_t gen_read_rev(struct run *R, int64_t view, bool bad)
{
    struct model *m = &R->m;
    if (chance(&R->r, 40))
        return chance(&R->r, 90) ? 0 : -1;
    int64_t lo = m->compact > 1 ? m->compact : 1;
    if (bad && chance(&R->r, 15))
        return chance(&R->r, 50) ? view + rrange(&R->r, 1, 3)
                                 : (lo > 1 ? rrange(&R->r, 1, lo - 1) : 0);
    if (chance(&R->r, 50))
        return rrange(&R->r, view - 3 > lo ? view - 3 : lo, view);
    return rrange(&R->r, lo, view);
}

static void gen_range_req(struct run *R, struct store_range_req *q, int64_t view, bool bad)
{
    memset(q, 0, sizeof *q);
    gen_interval(R, &q->key, &q->range_end);
    if (chance(&R->r, 50))
        q->limit = chance(&R->r, 90) ? rrange(&R->r, 1, 5) : 40;
    q->revision = gen_read_rev(R, view, bad);
    int t = (int)rn(&R->r, 100);
    q->sort_order = t < 60 ? STORE_SORT_NONE : t < 80 ? STORE_SORT_ASCEND : STORE_SORT_DESCEND;
    q->sort_target = chance(&R->r, 50) ? STORE_SORT_KEY : (int)rn(&R->r, 5);
    q->keys_only = chance(&R->r, 15);
    q->count_only = chance(&R->r, 10);
    int64_t hi = view + 1;
    if (chance(&R->r, 10))
        q->min_mod_revision = rrange(&R->r, 1, hi);
    if (chance(&R->r, 10))
        q->max_mod_revision = rrange(&R->r, 1, hi);
    if (chance(&R->r, 10))
        q->min_create_revision = rrange(&R->r, 1, hi);
    if (chance(&R->r, 10))
        q->max_create_revision = rrange(&R->r, 1, hi);
}

static void gen_compare(struct run *R, struct store_compare *c)
{
    struct model *m = &R->m;
    memset(c, 0, sizeof *c);
    c->result = (int)rn(&R->r, 4);
    c->target = (int)rn(&R->r, 5);
    if (chance(&R->r, 75)) {
        c->key = gen_key(R);
    } else {
        gen_interval(R, &c->key, &c->range_end);
    }
    int k = key_index(m, c->key);
    const struct mrec *r = k >= 0 ? m_live(m, k, INF_REV) : NULL;
    int64_t base;
    switch (c->target) {
    case STORE_CMP_VERSION:
        base = r ? r->version : 0;
        break;
    case STORE_CMP_CREATE:
        base = r ? r->create : 0;
        break;
    case STORE_CMP_MOD:
        base = r ? r->main : 0;
        break;
    case STORE_CMP_LEASE:
        base = r ? r->lease : 0;
        break;
    default:
        base = 0;
    }
    c->number = chance(&R->r, 70) ? base + rrange(&R->r, -1, 1) : rn(&R->r, m->rev + 2);
    if (c->target == STORE_CMP_VALUE) {
        if (r && chance(&R->r, 50)) {
            store_bytes v = mval(m, r);
            c->value = v.len ? (store_bytes){arena_dup(&R->gen, v.data, v.len), v.len} : v;
        } else {
            c->value = gen_value(R);
        }
    }
}

struct tgen {
    uint64_t putmask; /* keys put anywhere in the txn */
    uint64_t delmask; /* keys covered by a delete anywhere in the txn */
};

static struct store_txn_req *gen_txn(struct run *R, struct tgen *g, int depth, bool ro);

static void gen_put_req(struct run *R, struct store_put_req *p, int k)
{
    memset(p, 0, sizeof *p);
    p->key = mkey_b(&R->m, k);
    p->prev_kv = chance(&R->r, 50);
    int t = (int)rn(&R->r, 100);
    if (t < 5) {
        p->ignore_value = true;
        p->lease = gen_lease(R);
    } else if (t < 9) {
        p->ignore_lease = true;
        p->value = gen_value(R);
    } else {
        p->value = gen_value(R);
        p->lease = gen_lease(R);
    }
}

static void gen_ops(struct run *R, struct tgen *g, int depth, bool ro, struct store_op **ops_out,
                    size_t *n_out)
{
    size_t n = (size_t)rn(&R->r, 5);
    struct store_op *ops = galloc(R, (n + 2) * sizeof *ops);
    for (size_t i = 0; i < n; i++) {
        struct store_op *op = &ops[i];
        int t = (int)rn(&R->r, 100);
        op->type = STORE_OP_RANGE;
        if (!ro && t < 35) {
            for (int tries = 0; tries < 10; tries++) {
                int k = (int)rn(&R->r, NKEYS);
                if ((g->putmask | g->delmask) & (1ull << k))
                    continue;
                g->putmask |= 1ull << k;
                op->type = STORE_OP_PUT;
                gen_put_req(R, &op->u.put, k);
                break;
            }
        } else if (!ro && t < 55) {
            for (int tries = 0; tries < 5; tries++) {
                store_bytes key, end;
                gen_interval(R, &key, &end);
                uint64_t cov = cover_mask(&R->m, key, end);
                if (cov & g->putmask)
                    continue;
                g->delmask |= cov;
                op->type = STORE_OP_DELETE;
                op->u.del.key = key;
                op->u.del.range_end = end;
                op->u.del.prev_kv = chance(&R->r, 50);
                break;
            }
        } else if (depth < 2 && t < 62) {
            op->type = STORE_OP_TXN;
            op->u.txn = gen_txn(R, g, depth + 1, ro);
        }
        if (op->type == STORE_OP_RANGE) {
            gen_range_req(R, &op->u.range, R->m.rev, false);
            if (chance(&R->r, 5)) /* a bad revision fails the whole txn */
                op->u.range.revision = gen_read_rev(R, R->m.rev, true);
        }
    }
    *ops_out = ops;
    *n_out = n;
}

static struct store_txn_req *gen_txn(struct run *R, struct tgen *g, int depth, bool ro)
{
    struct store_txn_req *t = galloc(R, sizeof *t);
    t->n_compares = (size_t)rn(&R->r, 4);
    t->compares = galloc(R, (t->n_compares + 1) * sizeof *t->compares);
    for (size_t i = 0; i < t->n_compares; i++)
        gen_compare(R, &t->compares[i]);
    gen_ops(R, g, depth, ro, &t->success, &t->n_success);
    gen_ops(R, g, depth, ro, &t->failure, &t->n_failure);
    return t;
}

/* ---------------------------------------------------------------------------------------------- */
/* Txn: etcd's applierV3backend.Txn over the model */

static bool cmp_kv(const struct model *m, const struct store_compare *c, const struct mrec *r)
{
    int res = 0;
    int64_t x = 0;
    switch (c->target) {
    case STORE_CMP_VALUE:
        res = bcmp_b(r ? mval(m, r) : (store_bytes){NULL, 0}, c->value);
        break;
    case STORE_CMP_CREATE:
        x = r ? r->create : 0;
        break;
    case STORE_CMP_MOD:
        x = r ? r->main : 0;
        break;
    case STORE_CMP_VERSION:
        x = r ? r->version : 0;
        break;
    case STORE_CMP_LEASE:
        x = r ? r->lease : 0;
        break;
    }
    if (c->target != STORE_CMP_VALUE)
        res = x < c->number ? -1 : x > c->number ? 1 : 0;
    switch (c->result) {
    case STORE_CMP_EQUAL:
        return res == 0;
    case STORE_CMP_NOT_EQUAL:
        return res != 0;
    case STORE_CMP_GREATER:
        return res > 0;
    case STORE_CMP_LESS:
        return res < 0;
    }
    return true;
}

static bool m_compare(const struct model *m, const struct store_compare *c)
{
    bool any = false;
    for (int k = 0; k < NKEYS; k++) {
        if (!in_range(mkey_b(m, k), c->key, c->range_end))
            continue;
        const struct mrec *r = m_live(m, k, INF_REV);
        if (!r)
            continue;
        any = true;
        if (!cmp_kv(m, c, r))
            return false;
    }
    if (!any)
        return c->target == STORE_CMP_VALUE ? false : cmp_kv(m, c, NULL);
    return true;
}

/* etcd's compareToPath: every compare of every txn on the taken path, against the state before the
 * txn, in pre-order. */
static void m_path(const struct model *m, const struct store_txn_req *t, bool *path, int *np)
{
    bool ok = true;
    for (size_t i = 0; i < t->n_compares && ok; i++)
        ok = m_compare(m, &t->compares[i]);
    assert_true(*np < MAXPATH);
    path[(*np)++] = ok;
    const struct store_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++)
        if (ops[i].type == STORE_OP_TXN)
            m_path(m, ops[i].u.txn, path, np);
}

static bool txn_read_only(const struct store_txn_req *t)
{
    for (int b = 0; b < 2; b++) {
        const struct store_op *ops = b ? t->failure : t->success;
        size_t n = b ? t->n_failure : t->n_success;
        for (size_t i = 0; i < n; i++) {
            if (ops[i].type == STORE_OP_PUT || ops[i].type == STORE_OP_DELETE)
                return false;
            if (ops[i].type == STORE_OP_TXN && !txn_read_only(ops[i].u.txn))
                return false;
        }
    }
    return true;
}

/* etcd's checkRequests with checkRequestPut (puts) or checkRequestRange (!puts) on the taken path
 */
static int m_txn_check(const struct model *m, const struct store_txn_req *t, const bool *path,
                       int *pi, bool puts)
{
    bool ok = path[(*pi)++];
    const struct store_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    for (size_t i = 0; i < n; i++) {
        const struct store_op *op = &ops[i];
        if (op->type == STORE_OP_TXN) {
            int err = m_txn_check(m, op->u.txn, path, pi, puts);
            if (err)
                return err;
        } else if (puts && op->type == STORE_OP_PUT) {
            const struct store_put_req *p = &op->u.put;
            if ((p->ignore_value || p->ignore_lease) && !m_live(m, key_index(m, p->key), INF_REV))
                return CAIRN_E_KEY_NOT_FOUND;
            if (p->lease && (p->lease > NLEASES || !m->lease[p->lease]))
                return CAIRN_E_LEASE_NOT_FOUND;
        } else if (!puts && op->type == STORE_OP_RANGE) {
            int64_t rev = op->u.range.revision;
            if (rev == 0)
                continue;
            if (rev > m->rev)
                return CAIRN_E_FUTURE_REV;
            if (rev < m->compact)
                return CAIRN_E_COMPACTED;
        }
    }
    return 0;
}

/* applierV3backend.Put inside a write request, after its checks */
static void m_apply_put(struct run *R, const char *what, const struct store_put_req *p,
                        const struct store_put_res *res)
{
    struct model *m = &R->m;
    int k = key_index(m, p->key);
    assert_true(k >= 0);
    const struct mrec *prev = m_live(m, k, INF_REV);
    tracef(R, "  %s: put %s len %zu lease %" PRId64 "%s%s", what, esc(p->key), p->value.len,
           p->lease, p->ignore_value ? " ignore_value" : "",
           p->ignore_lease ? " ignore_lease" : "");
    if (p->prev_kv && prev) {
        CHECK(m, res->prev_kv != NULL, "%s put %s: prev_kv missing", what, esc(p->key));
        check_kv(m, what, res->prev_kv, prev, false);
    } else {
        CHECK(m, res->prev_kv == NULL, "%s put %s: prev_kv %s unexpected", what, esc(p->key),
              res->prev_kv ? esc(res->prev_kv->key) : "");
    }
    size_t voff, vlen;
    if (p->ignore_value) {
        voff = prev->voff;
        vlen = prev->vlen;
    } else {
        voff = m_addval(m, p->value);
        vlen = p->value.len;
    }
    int64_t lease = p->ignore_lease ? prev->lease : p->lease;
    m_put(m, k, voff, vlen, lease);
    CHECK(m, res->revision == m->rev + 1, "%s put %s: revision %" PRId64 ", model %" PRId64, what,
          esc(p->key), res->revision, m->rev + 1);
}

/* applierV3backend.DeleteRange inside a write request */
static void m_apply_del(struct run *R, const char *what, const struct store_delete_req *d,
                        const struct store_delete_res *res)
{
    struct model *m = &R->m;
    int del[NKEYS];
    int n = 0;
    for (int k = 0; k < NKEYS; k++)
        if (in_range(mkey_b(m, k), d->key, d->range_end) && m_live(m, k, INF_REV))
            del[n++] = k;
    char w[400];
    snprintf(w, sizeof w, "%s delete[%s,%s)", what, esc(d->key), esc(d->range_end));
    tracef(R, "  %s", w);
    CHECK(m, res->deleted == n, "%s: deleted %" PRId64 ", model %d", w, res->deleted, n);
    if (d->prev_kv) {
        CHECK(m, res->n_prev_kvs == (size_t)n, "%s: %zu prev_kvs, model %d", w, res->n_prev_kvs, n);
        for (int i = 0; i < n; i++)
            check_kv(m, w, &res->prev_kvs[i], m_live(m, del[i], INF_REV), false);
    } else {
        CHECK(m, res->n_prev_kvs == 0, "%s: %zu prev_kvs not asked for", w, res->n_prev_kvs);
    }
    for (int i = 0; i < n; i++)
        m_del(m, del[i]);
    int64_t want = (n > 0 || m->sub > 0) ? m->rev + 1 : m->rev;
    CHECK(m, res->revision == want, "%s: revision %" PRId64 ", model %" PRId64, w, res->revision,
          want);
}

static void m_txn_apply(struct run *R, const struct store_txn_req *t, const bool *path, int *pi,
                        const struct store_txn_res *res, int depth)
{
    struct model *m = &R->m;
    bool ok = path[(*pi)++];
    char w[64];
    snprintf(w, sizeof w, "txn(depth %d)", depth);
    CHECK(m, res->succeeded == ok, "%s: succeeded %d, model %d", w, res->succeeded, ok);
    const struct store_op *ops = ok ? t->success : t->failure;
    size_t n = ok ? t->n_success : t->n_failure;
    CHECK(m, res->n_responses == n, "%s: %zu responses, model %zu", w, res->n_responses, n);
    for (size_t i = 0; i < n; i++) {
        const struct store_op *op = &ops[i];
        const struct store_op_res *r = &res->responses[i];
        char wi[96];
        snprintf(wi, sizeof wi, "%s op %zu", w, i);
        CHECK(m, r->type == op->type, "%s: response type %d, op type %d", wi, r->type, op->type);
        switch (op->type) {
        case STORE_OP_RANGE:
            check_range(R, wi, &op->u.range, 0, &r->u.range, m_view(m));
            break;
        case STORE_OP_PUT:
            m_apply_put(R, wi, &op->u.put, &r->u.put);
            break;
        case STORE_OP_DELETE:
            m_apply_del(R, wi, &op->u.del, &r->u.del);
            break;
        case STORE_OP_TXN:
            CHECK(m, r->u.txn != NULL, "%s: nested txn response missing", wi);
            m_txn_apply(R, op->u.txn, path, pi, r->u.txn, depth + 1);
            CHECK(m, r->u.txn->revision == 0, "%s: nested txn revision %" PRId64 ", etcd has 0", wi,
                  r->u.txn->revision);
            break;
        default:
            break;
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Write requests */

enum rq_kind { RQ_PUT, RQ_DEL, RQ_TXN, RQ_COMPACT, RQ_STEP, RQ_GRANT, RQ_REVOKE };

struct rq {
    enum rq_kind kind;
    struct store_put_req put;
    struct store_delete_req del;
    struct store_txn_req *txn;
    int64_t num; /* compact revision, lease id, steps */
    int rc;      /* what the store under test returned */
    int64_t rev; /* the revision it reported */
};

static const char *rq_name[] = {"put",          "delete",      "txn",         "compact",
                                "compact-step", "lease-grant", "lease-revoke"};

/* Runs rq on the store under test in tx and checks it against the model (which it updates). */
static void apply_a(struct run *R, store_tx *tx, struct rq *q, int expect_check)
{
    struct model *m = &R->m;
    struct arena *a = &R->res;
    int rc = 0;
    m_req_begin(m);
    switch (q->kind) {
    case RQ_PUT: {
        struct store_put_res res;
        memset(&res, 0, sizeof res);
        const struct store_put_req *p = &q->put;
        tracef(R, "put %s len %zu lease %" PRId64 "%s%s", esc(p->key), p->value.len, p->lease,
               p->ignore_value ? " ignore_value" : "", p->ignore_lease ? " ignore_lease" : "");
        rc = store_put(tx, p, a, &res);
        int want = 0;
        int k = key_index(m, p->key);
        if (p->key.len == 0)
            want = CAIRN_E_EMPTY_KEY;
        else if (p->ignore_value && p->value.len)
            want = CAIRN_E_VALUE_PROVIDED;
        else if (p->ignore_lease && p->lease)
            want = CAIRN_E_LEASE_PROVIDED;
        else if (p->lease && (p->lease > NLEASES || !m->lease[p->lease]))
            want = CAIRN_E_LEASE_NOT_FOUND;
        else if ((p->ignore_value || p->ignore_lease) && !m_live(m, k, INF_REV))
            want = CAIRN_E_KEY_NOT_FOUND;
        CHECK_RC(m, rc, want, "put");
        if (!rc) {
            m_apply_put(R, "put", p, &res);
            q->rev = res.revision;
        }
        break;
    }
    case RQ_DEL: {
        struct store_delete_res res;
        memset(&res, 0, sizeof res);
        tracef(R, "delete [%s,%s)", esc(q->del.key), esc(q->del.range_end));
        rc = store_delete_range(tx, &q->del, a, &res);
        CHECK_RC(m, rc, 0, "delete");
        m_apply_del(R, "delete", &q->del, &res);
        q->rev = res.revision;
        break;
    }
    case RQ_TXN: {
        struct store_txn_res res;
        memset(&res, 0, sizeof res);
        tracef(R, "txn (check %d)", expect_check);
        rc = store_txn(tx, q->txn, a, &res);
        int want = expect_check;
        bool path[MAXPATH];
        int np = 0;
        if (!want) {
            m_path(m, q->txn, path, &np);
            int pi = 0;
            if (!txn_read_only(q->txn))
                want = m_txn_check(m, q->txn, path, &pi, true);
            pi = 0;
            if (!want)
                want = m_txn_check(m, q->txn, path, &pi, false);
        }
        CHECK_RC(m, rc, want, "txn");
        if (!rc) {
            int pi = 0;
            m_txn_apply(R, q->txn, path, &pi, &res, 0);
            int64_t after = m_view(m);
            CHECK(m, res.revision == after, "txn: revision %" PRId64 ", model %" PRId64,
                  res.revision, after);
            q->rev = res.revision;
        }
        break;
    }
    case RQ_COMPACT: {
        tracef(R, "compact %" PRId64, q->num);
        rc = store_compact(tx, q->num);
        int want = q->num <= m->compact ? CAIRN_E_COMPACTED
                   : q->num > m->rev    ? CAIRN_E_FUTURE_REV
                                        : 0;
        CHECK_RC(m, rc, want, "compact");
        if (!rc)
            m->compact = q->num;
        CHECK(m, store_tx_compact_rev(tx) == m->compact,
              "compact: store_tx_compact_rev %" PRId64 ", model %" PRId64, store_tx_compact_rev(tx),
              m->compact);
        if (!rc) {
            /* physical progress: to the end, not at all, or a few steps */
            int t = (int)rn(&R->r, 100);
            int steps = t < 35 ? 1000000 : t < 65 ? 0 : (int)rrange(&R->r, 1, 3);
            bool done = false;
            for (int i = 0; i < steps && !done; i++)
                CHECK_RC(m, store_compact_step(tx, &done), 0, "compact step");
        }
        break;
    }
    case RQ_STEP: {
        bool done = false;
        for (int64_t i = 0; i < q->num && !done; i++)
            CHECK_RC(m, store_compact_step(tx, &done), 0, "compact step");
        break;
    }
    case RQ_GRANT:
        tracef(R, "lease grant %" PRId64, q->num);
        rc = store_lease_grant(tx, q->num, 60);
        CHECK_RC(m, rc, m->lease[q->num] ? CAIRN_E_LEASE_EXIST : 0, "lease grant");
        m->lease[q->num] = true;
        break;
    case RQ_REVOKE: {
        tracef(R, "lease revoke %" PRId64, q->num);
        int64_t rev = -7;
        rc = store_lease_revoke(tx, q->num, &rev);
        CHECK_RC(m, rc, m->lease[q->num] ? 0 : CAIRN_E_LEASE_NOT_FOUND, "lease revoke");
        if (!rc) {
            for (int k = 0; k < NKEYS; k++) {
                const struct mrec *r = m_live(m, k, INF_REV);
                if (r && r->lease == q->num)
                    m_del(m, k);
            }
            m->lease[q->num] = false;
            int64_t want = m_view(m);
            CHECK(m, rev == want, "lease revoke: revision %" PRId64 ", model %" PRId64, rev, want);
        }
        break;
    }
    }
    q->rc = rc;
    m_req_end(m);
    CHECK(m, store_tx_rev(tx) == m->rev, "after %s: store_tx_rev %" PRId64 ", model %" PRId64,
          rq_name[q->kind], store_tx_rev(tx), m->rev);
}

/* Replays rq on the twin: same outcome expected; compactions run to the end at once. */
static void apply_b(struct run *R, store_tx *tx, const struct rq *q)
{
    struct model *m = &R->m;
    struct arena *a = &R->res;
    int rc = 0;
    int64_t rev = q->rev;
    switch (q->kind) {
    case RQ_PUT: {
        struct store_put_res res;
        rc = store_put(tx, &q->put, a, &res);
        rev = rc ? q->rev : res.revision;
        break;
    }
    case RQ_DEL: {
        struct store_delete_res res;
        rc = store_delete_range(tx, &q->del, a, &res);
        rev = rc ? q->rev : res.revision;
        break;
    }
    case RQ_TXN: {
        struct store_txn_res res;
        rc = store_txn(tx, q->txn, a, &res);
        rev = rc ? q->rev : res.revision;
        break;
    }
    case RQ_COMPACT:
        rc = store_compact(tx, q->num);
        if (!rc)
            for (bool done = false; !done;)
                CHECK_RC(m, store_compact_step(tx, &done), 0, "twin compact step");
        break;
    case RQ_STEP:
        break;
    case RQ_GRANT:
        rc = store_lease_grant(tx, q->num, 60);
        break;
    case RQ_REVOKE: {
        int64_t r;
        rc = store_lease_revoke(tx, q->num, &r);
        break;
    }
    }
    CHECK_RC(m, rc, q->rc, "twin replay");
    CHECK(m, rev == q->rev, "twin replay of %s: revision %" PRId64 ", store under test %" PRId64,
          rq_name[q->kind], rev, q->rev);
}

static void gen_rq(struct run *R, struct rq *q, int *expect_check)
{
    struct model *m = &R->m;
    memset(q, 0, sizeof *q);
    *expect_check = 0;
    int t = (int)rn(&R->r, 100);
    if (t < 38) {
        q->kind = RQ_PUT;
        gen_put_req(R, &q->put, (int)rn(&R->r, NKEYS));
        if (chance(&R->r, 1))
            q->put.key = (store_bytes){NULL, 0};
        if (q->put.ignore_value && chance(&R->r, 20))
            q->put.value = gen_value(R); /* VALUE_PROVIDED unless empty */
        if (q->put.ignore_lease && chance(&R->r, 20))
            q->put.lease = gen_lease(R);
    } else if (t < 55) {
        q->kind = RQ_DEL;
        gen_interval(R, &q->del.key, &q->del.range_end);
        q->del.prev_kv = chance(&R->r, 50);
    } else if (t < 86) {
        q->kind = RQ_TXN;
        struct tgen g = {0, 0};
        q->txn = gen_txn(R, &g, 0, chance(&R->r, 10));
        if (chance(&R->r, 5)) {
            /* a put twice in one branch, or a put with a delete of the same key: DUPLICATE_KEY */
            struct store_txn_req *x = q->txn;
            int k = (int)rn(&R->r, NKEYS);
            struct store_op *o = &x->success[x->n_success];
            o[0].type = STORE_OP_PUT;
            o[0].u.put.key = mkey_b(m, k);
            if (chance(&R->r, 50)) {
                o[1].type = STORE_OP_PUT;
                o[1].u.put.key = mkey_b(m, k);
            } else {
                o[1].type = STORE_OP_DELETE;
                o[1].u.del.key = mkey_b(m, k);
            }
            x->n_success += 2;
            *expect_check = CAIRN_E_DUPLICATE_KEY;
        }
    } else if (t < 89) {
        /* compactions stay a few hundred revisions behind, so history stays readable */
        q->kind = RQ_COMPACT;
        int64_t lo = m->compact > 0 ? m->compact : 1;
        if (chance(&R->r, 10))
            q->num = chance(&R->r, 50) ? m->rev + rrange(&R->r, 1, 2) : rrange(&R->r, 1, lo);
        else if (chance(&R->r, 70))
            q->num = m->rev - rn(&R->r, 300);
        else
            q->num = rrange(&R->r, lo, m->rev);
        if (q->num < 1)
            q->num = 1;
    } else if (t < 94) {
        q->kind = RQ_STEP;
        q->num = rrange(&R->r, 1, 4);
    } else if (t < 98) {
        q->kind = RQ_GRANT;
        q->num = rrange(&R->r, 1, NLEASES);
    } else {
        q->kind = RQ_REVOKE;
        q->num = rrange(&R->r, 1, NLEASES);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Checks */

/* The whole state, current and at a random revision, in transaction tx. */
static void check_state(struct run *R, store_tx *tx, const char *what)
{
    struct model *m = &R->m;
    CHECK(m, store_tx_rev(tx) == m->rev, "%s: revision %" PRId64 ", model %" PRId64, what,
          store_tx_rev(tx), m->rev);
    CHECK(m, store_tx_compact_rev(tx) == m->compact,
          "%s: compacted revision %" PRId64 ", model %" PRId64, what, store_tx_compact_rev(tx),
          m->compact);
    CHECK(m, store_tx_consistent_index(tx) == m->ci,
          "%s: consistent index %" PRIu64 ", model %" PRIu64, what, store_tx_consistent_index(tx),
          m->ci);
    static const uint8_t zero = 0;
    struct store_range_req q = {.key = {&zero, 1}, .range_end = {&zero, 1}};
    struct store_range_res res;
    arena_reset(&R->res);
    int rc = store_range(tx, &q, &R->res, &res);
    check_range(R, what, &q, rc, &res, m->rev);
}

static void check_feed(struct run *R, store_tx *tx, int64_t view)
{
    struct model *m = &R->m;
    int64_t lo = m->compact > 1 ? m->compact : 1;
    int64_t from;
    int t = (int)rn(&R->r, 100);
    if (t < 5)
        from = 0;
    else if (t < 10 && m->compact > 1)
        from = rrange(&R->r, 1, m->compact - 1); /* COMPACTED */
    else if (t < 55)
        from = rrange(&R->r, view - 10 > lo ? view - 10 : lo, view + 1);
    else
        from = rrange(&R->r, lo, view + 1);
    bool prev = chance(&R->r, 50);
    struct store_feed f;
    memset(&f, 0, sizeof f);
    char w[128];
    snprintf(w, sizeof w, "feed from %" PRId64 "%s (view %" PRId64 ")", from,
             prev ? " prev_kv" : "", view);
    int rc = store_feed_open(tx, from, prev, &f);
    int want = (from > 0 && from < m->compact) ? CAIRN_E_COMPACTED : 0;
    CHECK_RC(m, rc, want, w);
    if (rc)
        return;
    int64_t start = from > 0 ? from : view + 1;
    /* first model record with main >= start */
    size_t lo_i = 0, hi_i = m->n;
    while (lo_i < hi_i) {
        size_t mid = (lo_i + hi_i) / 2;
        if (m->recs[mid].main < start)
            lo_i = mid + 1;
        else
            hi_i = mid;
    }
    size_t i = lo_i;
    /* events of the compacted revision itself may be gone (etcd removes its tombstones) */
    bool skip_compact = start <= m->compact;
    for (;;) {
        while (i < m->n && skip_compact && m->recs[i].main == m->compact)
            i++;
        const struct mrec *r = (i < m->n && m->recs[i].main <= view) ? &m->recs[i] : NULL;
        struct store_event ev;
        memset(&ev, 0, sizeof ev);
        arena_reset(&R->res);
        int n;
        do {
            n = store_feed_next(&f, &R->res, &ev);
        } while (n == 1 && skip_compact && ev.kv.mod_revision == m->compact);
        CHECK(m, n >= 0, "%s: store_feed_next: %s", w, cairn_strerror(n));
        if (!r) {
            CHECK(m, n == 0, "%s: extra event %s at %" PRId64 ".%" PRId64, w, esc(ev.kv.key),
                  ev.kv.mod_revision, ev.sub_revision);
            break;
        }
        CHECK(m, n == 1, "%s: missing event %s at %" PRId64 ".%" PRId64, w, esc(mkey_b(m, r->k)),
              r->main, r->sub);
        char we[256];
        snprintf(we, sizeof we, "%s event at %" PRId64 ".%" PRId64, w, r->main, r->sub);
        CHECK(m, ev.type == (r->tomb ? STORE_EVENT_DELETE : STORE_EVENT_PUT), "%s: type %d", we,
              ev.type);
        CHECK(m, ev.sub_revision == r->sub, "%s: sub_revision %" PRId64, we, ev.sub_revision);
        if (r->tomb) {
            store_bytes k = mkey_b(m, r->k);
            CHECK(m, beq(ev.kv.key, k), "%s: key %s, model %s", we, esc(ev.kv.key), esc(k));
            CHECK(m,
                  ev.kv.mod_revision == r->main && ev.kv.create_revision == 0 &&
                      ev.kv.version == 0 && ev.kv.lease == 0 && ev.kv.value.len == 0,
                  "%s: delete event kv mod %" PRId64 " create %" PRId64 " version %" PRId64
                  " lease %" PRId64 " value len %zu",
                  we, ev.kv.mod_revision, ev.kv.create_revision, ev.kv.version, ev.kv.lease,
                  ev.kv.value.len);
        } else {
            check_kv(m, we, &ev.kv, r, false);
        }
        const struct mrec *p = r->prev >= 0 ? &m->recs[r->prev] : NULL;
        if (prev && p && !p->tomb) {
            CHECK(m, ev.prev_kv != NULL, "%s: prev_kv missing", we);
            check_kv(m, we, ev.prev_kv, p, false);
        } else {
            CHECK(m, ev.prev_kv == NULL, "%s: unexpected prev_kv", we);
        }
        i++;
    }
    store_feed_close(&f);
    store_feed_close(&f); /* idempotent */
}

static bool any_live(const struct model *m, int64_t rev)
{
    for (int k = 0; k < NKEYS; k++)
        if (m_live(m, k, rev))
            return true;
    return false;
}

static void check_hash(struct run *R)
{
    struct model *m = &R->m;
    store_tx *ta, *tb;
    CHECK_RC(m, store_tx_begin_read(R->a->st, &ta), 0, "begin read");
    CHECK_RC(m, store_tx_begin_read(R->b->st, &tb), 0, "begin read twin");
    for (int i = 0; i < 3; i++) {
        int64_t rev;
        int t = (int)rn(&R->r, 100);
        if (t < 30)
            rev = 0;
        else if (t < 40)
            rev = m->rev + rrange(&R->r, 1, 2);
        else if (t < 50 && m->compact >= 1)
            rev = rrange(&R->r, 1, m->compact);
        else
            rev = rrange(&R->r, m->compact + 1 > 1 ? m->compact + 1 : 1, m->rev);
        if (rev > m->rev && t >= 40)
            rev = m->rev;
        uint32_t ha = 0, hb = 0;
        int64_t ca = 0, cb = 0;
        int rca = store_hash_kv(ta, rev, &ha, &ca);
        int rcb = store_hash_kv(tb, rev, &hb, &cb);
        int want = (rev > 0 && rev <= m->compact) ? CAIRN_E_COMPACTED
                   : rev > m->rev                 ? CAIRN_E_FUTURE_REV
                                                  : 0;
        char w[96];
        snprintf(w, sizeof w, "hash_kv(%" PRId64 ")", rev);
        CHECK_RC(m, rca, want, w);
        CHECK_RC(m, rcb, want, w);
        if (want)
            continue;
        CHECK(m, ca == m->compact && cb == m->compact,
              "%s: compact revision %" PRId64 "/%" PRId64 ", model %" PRId64, w, ca, cb,
              m->compact);
        /* etcd hashes leftover compacted records when nothing is live (len(keep) == 0): skip */
        if (m->compact >= 1 && !any_live(m, rev > 0 ? rev : m->rev))
            continue;
        CHECK(
            m, ha == hb,
            "%s: store %08x, twin (same history, compaction finished) %08x, compacted at %" PRId64,
            w, ha, hb, m->compact);
    }
    store_tx_end(ta);
    store_tx_end(tb);
}

static void check_leases(struct run *R, store_tx *tx)
{
    struct model *m = &R->m;
    struct store_lease *ls;
    size_t n;
    arena_reset(&R->res);
    CHECK_RC(m, store_lease_list(tx, &R->res, &ls, &n), 0, "lease list");
    size_t want = 0;
    for (int id = 1; id <= NLEASES; id++)
        want += m->lease[id];
    CHECK(m, n == want, "lease list: %zu leases, model %zu", n, want);
    for (size_t i = 0; i < n; i++) {
        CHECK(m, ls[i].id >= 1 && ls[i].id <= NLEASES && m->lease[ls[i].id],
              "lease list: unexpected lease %" PRId64, ls[i].id);
        CHECK(m, i == 0 || ls[i].id > ls[i - 1].id, "lease list not in id order");
    }
    for (int id = 1; id <= NLEASES; id++) {
        struct store_lease l;
        memset(&l, 0, sizeof l);
        int rc = store_lease_get(tx, id, true, &R->res, &l);
        CHECK_RC(m, rc, m->lease[id] ? 0 : CAIRN_E_LEASE_NOT_FOUND, "lease get");
        if (rc)
            continue;
        size_t j = 0;
        for (int k = 0; k < NKEYS; k++) {
            const struct mrec *r = m_live(m, k, INF_REV);
            if (!r || r->lease != id)
                continue;
            CHECK(m, j < l.n_keys && beq(l.keys[j], mkey_b(m, k)),
                  "lease %d keys: key %zu is %s, model %s", id, j,
                  j < l.n_keys ? esc(l.keys[j]) : "(none)", esc(mkey_b(m, k)));
            j++;
        }
        CHECK(m, j == l.n_keys, "lease %d: %zu keys, model %zu", id, l.n_keys, j);
    }
}

/* A read-only txn in a read transaction: creates no revision. */
static void check_ro_txn(struct run *R, store_tx *tx)
{
    struct model *m = &R->m;
    struct tgen g = {0, 0};
    struct store_txn_req *t = gen_txn(R, &g, 0, true);
    struct store_txn_res res;
    memset(&res, 0, sizeof res);
    arena_reset(&R->res);
    int rc = store_txn(tx, t, &R->res, &res);
    bool path[MAXPATH];
    int np = 0, pi = 0;
    m_path(m, t, path, &np);
    int want = m_txn_check(m, t, path, &pi, false);
    CHECK_RC(m, rc, want, "read-only txn");
    if (rc)
        return;
    m_req_begin(m);
    pi = 0;
    m_txn_apply(R, t, path, &pi, &res, 0);
    CHECK(m, m->sub == 0, "read-only txn changed the model");
    CHECK(m, res.revision == m->rev, "read-only txn: revision %" PRId64 ", model %" PRId64,
          res.revision, m->rev);
}

static void read_checks(struct run *R)
{
    struct model *m = &R->m;
    store_tx *tx;
    CHECK_RC(m, store_tx_begin_read(R->a->st, &tx), 0, "begin read");
    int n = (int)rrange(&R->r, 1, 6);
    for (int i = 0; i < n; i++) {
        struct store_range_req q;
        gen_range_req(R, &q, m->rev, true);
        struct store_range_res res;
        memset(&res, 0, sizeof res);
        arena_reset(&R->res);
        int rc = store_range(tx, &q, &R->res, &res);
        check_range(R, "read", &q, rc, &res, m->rev);
    }
    if (chance(&R->r, 30))
        check_feed(R, tx, m->rev);
    if (chance(&R->r, 20))
        check_ro_txn(R, tx);
    if (chance(&R->r, 10))
        check_leases(R, tx);
    store_tx_end(tx);
    arena_reset(&R->res);
    if (chance(&R->r, 15))
        check_hash(R);
}

/* One write transaction: 1..6 requests, reads between them, then commit or abort. */
static void write_step(struct run *R)
{
    struct model *m = &R->m;
    struct msnap snap;
    m_snap(m, &snap);
    store_tx *tx;
    CHECK_RC(m, store_tx_begin_write(R->a->st, &tx), 0, "begin write");
    int nreq = chance(&R->r, 25) ? (int)rrange(&R->r, 2, 6) : 1;
    struct rq reqs[6];
    for (int i = 0; i < nreq; i++) {
        int expect_check;
        gen_rq(R, &reqs[i], &expect_check);
        arena_reset(&R->res);
        apply_a(R, tx, &reqs[i], expect_check);
        if (chance(&R->r, 12)) {
            struct store_range_req q;
            gen_range_req(R, &q, m->rev, true);
            struct store_range_res res;
            memset(&res, 0, sizeof res);
            arena_reset(&R->res);
            int rc = store_range(tx, &q, &R->res, &res);
            check_range(R, "read in write tx", &q, rc, &res, m->rev);
        }
        if (chance(&R->r, 4))
            check_feed(R, tx, m->rev);
        if (chance(&R->r, 20)) {
            /* the consistent index only grows */
            bool back = m->ci > 0 && chance(&R->r, 10);
            uint64_t ci = back ? m->ci - 1 - (uint64_t)rn(&R->r, (int64_t)m->ci)
                               : m->ci + 1 + (uint64_t)rn(&R->r, 3);
            int rc = store_tx_set_consistent_index(tx, ci);
            CHECK_RC(m, rc, back ? CAIRN_E_INVALID_ARGUMENT : 0, "set consistent index");
            if (!back)
                m->ci = ci;
            CHECK(m, store_tx_consistent_index(tx) == m->ci,
                  "consistent index in the write tx %" PRIu64 ", model %" PRIu64,
                  store_tx_consistent_index(tx), m->ci);
        }
    }
    if (chance(&R->r, 6)) {
        tracef(R, "abort");
        store_tx_end(tx);
        m_restore(m, &snap);
        return;
    }
    CHECK_RC(m, store_tx_commit(tx, false), 0, "commit");
    /* the twin gets the committed requests, in one transaction of its own */
    CHECK_RC(m, store_tx_begin_write(R->b->st, &tx), 0, "begin write twin");
    for (int i = 0; i < nreq; i++) {
        arena_reset(&R->res);
        apply_b(R, tx, &reqs[i]);
    }
    CHECK_RC(m, store_tx_commit(tx, false), 0, "commit twin");
}

static void run_seed(struct run *R, uint64_t seed, int steps)
{
    struct model *m = &R->m;
    model_init(m, seed);
    R->r.s = seed * 0x2545f4914f6cdd1dull + 1;
    memset(&R->oa, 0, sizeof R->oa);
    R->oa.nosync = true;
    R->oa.compact_batch = chance(&R->r, 70) ? (unsigned)rrange(&R->r, 1, 16) : 0;
    struct store_options ob = {.nosync = true};
    R->a = fx_open(&R->oa);
    R->b = fx_open(&ob);
    for (m->step = 0; m->step < steps; m->step++) {
        arena_reset(&R->gen);
        int t = (int)rn(&R->r, 100);
        if (t < 2) {
            tracef(R, "reopen");
            fx_reopen(R->a, &R->oa);
            if (chance(&R->r, 30))
                fx_reopen(R->b, &ob);
        } else if (t < 70) {
            write_step(R);
        } else {
            read_checks(R);
        }
        store_tx *tx;
        CHECK_RC(m, store_tx_begin_read(R->a->st, &tx), 0, "begin read");
        check_state(R, tx, "state");
        if (chance(&R->r, 10)) {
            /* the whole state at a random readable past revision */
            static const uint8_t zero = 0;
            int64_t lo = m->compact > 1 ? m->compact : 1;
            struct store_range_req q = {.key = {&zero, 1}, .range_end = {&zero, 1}};
            q.revision = rrange(&R->r, lo, m->rev);
            struct store_range_res res;
            arena_reset(&R->res);
            int rc = store_range(tx, &q, &R->res, &res);
            check_range(R, "past state", &q, rc, &res, m->rev);
        }
        store_tx_end(tx);
    }
    /* finally: the same answers after a restart, and equal hashes */
    fx_reopen(R->a, &R->oa);
    store_tx *tx;
    CHECK_RC(m, store_tx_begin_read(R->a->st, &tx), 0, "begin read");
    check_state(R, tx, "state after reopen");
    check_leases(R, tx);
    store_tx_end(tx);
    check_hash(R);
    print_message("model: seed %" PRIu64 ": %d steps ok, revision %" PRId64 ", compacted %" PRId64
                  ", %zu changes\n",
                  seed, steps, m->rev, m->compact, m->n);
    fx_close(R->a);
    fx_close(R->b);
    R->a = R->b = NULL;
    model_free(m);
    arena_reset(&R->gen);
    arena_reset(&R->res);
}

static int setup(void **state)
{
    struct run *R = calloc(1, sizeof *R);
    if (!R)
        return -1;
    const char *tr = getenv("CAIRN_TEST_TRACE");
    R->trace = tr && *tr == '1';
    *state = R;
    return 0;
}

static int teardown(void **state)
{
    struct run *R = *state;
    fx_close(R->a);
    fx_close(R->b);
    model_free(&R->m);
    arena_free(&R->gen);
    arena_free(&R->res);
    free(R);
    return 0;
}

static int env_int(const char *name, int dflt)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : dflt;
}

static void test_model_random(void **state)
{
    struct run *R = *state;
    const char *s = getenv("CAIRN_TEST_SEED");
    const char *lng = getenv("CAIRN_TEST_LONG");
    bool long_run = lng && *lng == '1';
    if (s && *s) {
        uint64_t seed = strtoull(s, NULL, 0);
        int steps = env_int("CAIRN_TEST_STEPS", long_run ? 20000 : 2000);
        print_message("model: seed %" PRIu64 ", %d steps\n", seed, steps);
        run_seed(R, seed, steps);
        return;
    }
    static const uint64_t fixed[] = {1, 2, 3, 4, 5, 42, 1234567, 20240601};
    int nseeds = long_run ? 200 : 8;
    int steps = env_int("CAIRN_TEST_STEPS", long_run ? 20000 : 4000);
    for (int i = 0; i < nseeds; i++) {
        uint64_t seed = i < 8 ? fixed[i] : 1000 + (uint64_t)i * 7919;
        run_seed(R, seed, steps);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_model_random, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
