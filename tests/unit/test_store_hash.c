/* tests/unit/test_store_hash.c — HashKV(revision), as etcd's mvcc HashByRev computes it.
 *
 * kvstore.go HashByRev: "rev > 0 && rev <= compactRev → ErrCompacted", "rev > currentRev →
 * ErrFutureRev"; the hash is CRC-32C (Castagnoli) over the bucket name "key" and then, in key
 * order, every record (17-byte revision key: 8-byte big-endian main, '_', 8-byte big-endian sub,
 * plus 't' for a tombstone; value: the marshalled mvccpb.KeyValue) with main <= rev, skipping those
 * at or below the compacted revision that kvindex.Keep(rev) does not hold. The test computes that
 * hash itself for a small history and compares. */
#include <stdio.h>
#include <string.h>

#include "tests/unit/helpers/store_case.h"

#define FX(state) (((struct tcase *)*(state))->fx[0])
#define TC(state) ((struct tcase *)*(state))

/* ---- an independent HashKV ------------------------------------------------------------------- */

static uint32_t crc32c_update(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
    }
    return ~crc;
}

/* One record of etcd's key bucket. */
struct rec {
    int64_t main, sub;
    bool tomb;
    const char *key;
    const char *value;
    int64_t create, mod, version, lease;
};

static size_t put_varint(uint8_t *b, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        b[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    b[n++] = (uint8_t)v;
    return n;
}

static size_t put_bytes_field(uint8_t *b, uint8_t tag, const char *s)
{
    size_t len = strlen(s), n = 0;
    if (len == 0)
        return 0;
    b[n++] = tag;
    n += put_varint(b + n, len);
    memcpy(b + n, s, len);
    return n + len;
}

static size_t put_int_field(uint8_t *b, uint8_t tag, int64_t v)
{
    if (v == 0)
        return 0;
    b[0] = tag;
    return 1 + put_varint(b + 1, (uint64_t)v);
}

/* mvccpb.KeyValue.MarshalTo: fields 1..6 in order, zero values omitted. */
static size_t marshal_kv(const struct rec *r, uint8_t *b)
{
    size_t n = put_bytes_field(b, 0x0a, r->key);
    if (r->tomb)
        return n; /* kvstore_txn.go delete: mvccpb.KeyValue{Key: key} */
    n += put_int_field(b + n, 0x10, r->create);
    n += put_int_field(b + n, 0x18, r->mod);
    n += put_int_field(b + n, 0x20, r->version);
    n += put_bytes_field(b + n, 0x2a, r->value);
    n += put_int_field(b + n, 0x30, r->lease);
    return n;
}

static void rev_bytes(const struct rec *r, uint8_t *b, size_t *n)
{
    for (int i = 0; i < 8; i++) {
        b[i] = (uint8_t)((uint64_t)r->main >> (56 - 8 * i));
        b[9 + i] = (uint8_t)((uint64_t)r->sub >> (56 - 8 * i));
    }
    b[8] = '_';
    *n = 17;
    if (r->tomb)
        b[(*n)++] = 't';
}

/* kvindex.Keep(rev) holds, per key, its latest record at or below rev unless that is a tombstone.
 */
static bool kept(const struct rec *recs, size_t n, size_t i, int64_t rev)
{
    const struct rec *latest = NULL;
    for (size_t j = 0; j < n; j++) {
        if (strcmp(recs[j].key, recs[i].key) == 0 && recs[j].main <= rev)
            latest = &recs[j];
    }
    return latest == &recs[i] && !latest->tomb;
}

/* HashByRev(rev) over records sorted by revision, with compacted revision compact_rev. */
static uint32_t model_hash(const struct rec *recs, size_t n, int64_t rev, int64_t compact_rev)
{
    uint32_t h = crc32c_update(0, "key", 3);
    for (size_t i = 0; i < n; i++) {
        const struct rec *r = &recs[i];
        if (r->main > rev)
            continue;
        if (r->main <= compact_rev && !kept(recs, n, i, rev))
            continue;
        uint8_t k[18], v[600];
        size_t kn, vn = marshal_kv(r, v);
        rev_bytes(r, k, &kn);
        h = crc32c_update(h, k, kn);
        h = crc32c_update(h, v, vn);
    }
    return h;
}

/* The tiny history and the records etcd would write for it. */
static const struct rec tiny[] = {
    {2, 0, false, "a", "1", 2, 2, 1, 0},
    {3, 0, false, "b", "x", 3, 3, 1, 100},
    {4, 0, false, "a", "2", 2, 4, 2, 0},
    {4, 1, false, "c", "", 4, 4, 1, 0},
    {5, 0, true, "b", NULL, 0, 0, 0, 0},
    {6, 0, false, "b", "y", 6, 6, 1, 0},
    {7, 0, false, "d",
     "a value long enough to need a two-byte length varint, which is to say "
     "more than one hundred and twenty-seven bytes of it, so here are some more",
     7, 7, 1, 0},
    {8, 0, true, "a", NULL, 0, 0, 0, 0},
};

static void apply_tiny(struct tcase *t, struct fx *f)
{
    store_tx *tx = tc_write(t, f);
    assert_rc(store_lease_grant(tx, 100, 60), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0);   /* 2 */
    assert_rc(fx_put(f, "b", "x", 100, NULL), 0); /* 3 */
    struct store_op ops[] = {op_put("a", "2"), op_put("c", "")};
    struct store_txn_req req = {.success = ops, .n_success = 2};
    struct store_txn_res res;
    tx = tc_write(t, f);
    assert_rc(store_txn(tx, &req, &t->a, &res), 0); /* 4 */
    assert_rc(tc_commit(t, tx), 0);
    assert_rc(fx_del(f, "b", NULL, NULL, NULL), 0);       /* 5 */
    assert_rc(fx_put(f, "b", "y", 0, NULL), 0);           /* 6 */
    assert_rc(fx_put(f, "d", tiny[6].value, 0, NULL), 0); /* 7 */
    assert_rc(fx_del(f, "a", NULL, NULL, NULL), 0);       /* 8 */
    assert_int_equal(fx_rev(f), 8);
}

static int hash_at(struct tcase *t, struct fx *f, int64_t rev, uint32_t *h, int64_t *compact)
{
    store_tx *tx = tc_read(t, f);
    int64_t c = -99;
    int rc = store_hash_kv(tx, rev, h, &c);
    tc_end(t, tx);
    if (compact)
        *compact = c;
    return rc;
}

static uint32_t hash_ok(struct tcase *t, struct fx *f, int64_t rev)
{
    uint32_t h = 0;
    assert_rc(hash_at(t, f, rev, &h, NULL), 0);
    return h;
}

/* Check of the CRC itself: CRC-32C("123456789") is 0xE3069283. */
static void test_crc32c_check_value(void **state)
{
    (void)state;
    assert_int_equal(crc32c_update(0, "123456789", 9), 0xE3069283u);
}

/* The store's hash is etcd's, at every revision of a history without compaction. */
static void test_hash_matches_etcd(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    uint32_t h = 0;
    int64_t c = 0;
    assert_rc(hash_at(t, f, 0, &h, &c), 0);
    assert_int_equal(h, model_hash(tiny, 0, 1, -1));
    assert_int_equal(c, -1);

    apply_tiny(t, f);
    for (int64_t rev = 1; rev <= 8; rev++) {
        assert_rc(hash_at(t, f, rev, &h, &c), 0);
        if (h != model_hash(tiny, N_ELEMS(tiny), rev, -1))
            fail_msg("hash at %lld: 0x%08x, etcd's is 0x%08x", (long long)rev, h,
                     model_hash(tiny, N_ELEMS(tiny), rev, -1));
        assert_int_equal(c, -1);
    }
    assert_int_equal(hash_ok(t, f, 0), model_hash(tiny, N_ELEMS(tiny), 8, -1));
}

/* After Compact(5), with or without the removal steps having run, the hash is still etcd's. */
static void test_hash_matches_etcd_after_compaction(void **state)
{
    struct tcase *t = TC(state);
    struct fx *done = FX(state);
    struct fx *pending = tc_open(t, NULL);
    apply_tiny(t, done);
    apply_tiny(t, pending);
    assert_rc(fx_compact(done, 5), 0);
    store_tx *tx = tc_write(t, pending);
    assert_rc(store_compact(tx, 5), 0);
    assert_rc(tc_commit(t, tx), 0);

    for (int64_t rev = 6; rev <= 8; rev++) {
        uint32_t want = model_hash(tiny, N_ELEMS(tiny), rev, 5);
        uint32_t h1 = 0, h2 = 0;
        int64_t c1 = 0, c2 = 0;
        assert_rc(hash_at(t, done, rev, &h1, &c1), 0);
        assert_rc(hash_at(t, pending, rev, &h2, &c2), 0);
        if (h1 != want || h2 != want)
            fail_msg("hash at %lld: compacted 0x%08x, pending 0x%08x, etcd's 0x%08x",
                     (long long)rev, h1, h2, want);
        assert_int_equal(c1, 5);
        assert_int_equal(c2, 5);
    }
}

/* A longer history, deterministic: puts, deletes, a txn now and then, over 20 keys. */
static void apply_long(struct tcase *t, struct fx *f, int ops)
{
    char key[16], val[32], key2[16];
    uint32_t x = 12345;
    for (int i = 0; i < ops; i++) {
        x = x * 1103515245u + 12345u;
        int k = (int)((x >> 8) % 20), what = (int)((x >> 20) % 10);
        snprintf(key, sizeof key, "key%02d", k);
        snprintf(val, sizeof val, "value-%d", i);
        if (what < 6) {
            assert_rc(fx_put(f, key, val, 0, NULL), 0);
        } else if (what < 8) {
            assert_rc(fx_del(f, key, NULL, NULL, NULL), 0);
        } else if (what < 9) {
            snprintf(key2, sizeof key2, "key%02d", (k + 5) % 20);
            struct store_op opsv[] = {op_put(key, val), op_del(key2, NULL)};
            struct store_txn_req req = {.success = opsv, .n_success = 2};
            struct store_txn_res res;
            store_tx *tx = tc_write(t, f);
            assert_rc(store_txn(tx, &req, &t->a, &res), 0);
            assert_rc(tc_commit(t, tx), 0);
            tc_reset(t);
        } else {
            snprintf(key2, sizeof key2, "key%02d", k < 15 ? k + 5 : 19);
            assert_rc(fx_del(f, key, key2, NULL, NULL), 0);
        }
    }
    /* keep some keys alive at the end */
    assert_rc(fx_put(f, "key00", "last", 0, NULL), 0);
    assert_rc(fx_put(f, "key10", "last", 0, NULL), 0);
}

/* Equal histories hash equal whatever the compaction progress (HashByRev skips what compaction
 * will remove); a compacted revision is COMPACTED, a future one FUTURE_REV. */
static void test_hash_independent_of_compaction_progress(void **state)
{
    struct tcase *t = TC(state);
    struct fx *a = FX(state);
    struct store_options small = {.compact_batch = 5};
    struct fx *b = tc_open(t, &small);
    apply_long(t, a, 200);
    apply_long(t, b, 200);
    int64_t cur = fx_rev(a);
    assert_int_equal(fx_rev(b), cur);
    int64_t at = cur / 2;

    for (int64_t rev = 1; rev <= cur; rev++)
        assert_int_equal(hash_ok(t, a, rev), hash_ok(t, b, rev));
    assert_int_equal(hash_ok(t, a, 0), hash_ok(t, b, 0));

    assert_rc(fx_compact(a, at), 0);
    store_tx *tx = tc_write(t, b);
    assert_rc(store_compact(tx, at), 0);
    assert_rc(tc_commit(t, tx), 0);
    for (int64_t rev = at + 1; rev <= cur; rev++) {
        uint32_t ha = hash_ok(t, a, rev), hb = hash_ok(t, b, rev);
        if (ha != hb)
            fail_msg("hash at %lld: compacted 0x%08x, compaction pending 0x%08x", (long long)rev,
                     ha, hb);
    }

    /* some steps in b (5 records each), then a restart, then the rest */
    bool done = false;
    for (int i = 0; i < 3 && !done; i++) {
        tx = tc_write(t, b);
        assert_rc(store_compact_step(tx, &done), 0);
        assert_rc(tc_commit(t, tx), 0);
    }
    assert_false(done);
    for (int64_t rev = at + 1; rev <= cur; rev++)
        assert_int_equal(hash_ok(t, a, rev), hash_ok(t, b, rev));
    fx_reopen(b, &small);
    assert_int_equal(hash_ok(t, a, 0), hash_ok(t, b, 0));
    while (!done) {
        tx = tc_write(t, b);
        assert_rc(store_compact_step(tx, &done), 0);
        assert_rc(tc_commit(t, tx), 0);
    }
    for (int64_t rev = at + 1; rev <= cur; rev++)
        assert_int_equal(hash_ok(t, a, rev), hash_ok(t, b, rev));

    uint32_t h;
    int64_t cr = 0;
    assert_rc(hash_at(t, a, at, &h, &cr), CAIRN_E_COMPACTED);
    assert_rc(hash_at(t, a, at - 1, &h, NULL), CAIRN_E_COMPACTED);
    assert_rc(hash_at(t, a, cur + 1, &h, NULL), CAIRN_E_FUTURE_REV);
    assert_rc(hash_at(t, a, at + 1, &h, &cr), 0);
    assert_int_equal(cr, at);
}

/* A different write gives a different hash; later writes leave an earlier revision's hash alone. */
static void test_hash_changes_with_history(void **state)
{
    struct tcase *t = TC(state);
    struct fx *a = FX(state);
    struct fx *b = tc_open(t, NULL);
    apply_tiny(t, a);
    apply_tiny(t, b);
    uint32_t before = hash_ok(t, a, 0);
    assert_int_equal(before, hash_ok(t, b, 0));
    assert_rc(fx_put(a, "x", "1", 0, NULL), 0);
    assert_rc(fx_put(b, "x", "2", 0, NULL), 0);
    assert_int_not_equal(hash_ok(t, a, 0), hash_ok(t, b, 0));
    assert_int_not_equal(hash_ok(t, a, 0), before);
    assert_int_equal(hash_ok(t, a, 8), before);
    assert_int_equal(hash_ok(t, b, 8), before);

    uint32_t h;
    assert_rc(hash_at(t, a, 10, &h, NULL), CAIRN_E_FUTURE_REV);
    assert_rc(hash_at(t, a, 9, &h, NULL), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_check_value),
        cmocka_unit_test_setup_teardown(test_hash_matches_etcd, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_hash_matches_etcd_after_compaction, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_hash_independent_of_compaction_progress, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_hash_changes_with_history, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
