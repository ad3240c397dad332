/* tests/unit/test_store_compact.c — Compact(revision) and its stepwise removal of history.
 *
 * Expected behaviour is etcd 3.4's: mvcc/kvstore.go (updateCompactRev: COMPACTED at or below the
 * compacted revision, FUTURE_REV above the current one), mvcc/key_index.go (compact keeps each
 * key's latest version at or below the revision and drops a generation ending there in a
 * tombstone), mvcc/kvstore_txn.go rangeKeys ("if rev < compactMainRev → ErrCompacted": reading
 * exactly at it works) and mvcc/kvstore_compaction.go (removal in batches, resumed after a
 * restart). */
#include <stdio.h>
#include <string.h>

#include "tests/unit/helpers/store_case.h"

#define FX(state) (((struct tcase *)*(state))->fx[0])
#define TC(state) ((struct tcase *)*(state))

static int64_t compact_rev(struct tcase *t, struct fx *f)
{
    store_tx *tx = tc_read(t, f);
    int64_t r = store_tx_compact_rev(tx);
    tc_end(t, tx);
    return r;
}

static void expect_kv(struct fx *f, const char *key, int64_t at, const char *value, int64_t create,
                      int64_t mod, int64_t version)
{
    struct store_kv kv;
    int rc = fx_get(f, key, at, &kv);
    if (rc != 1)
        fail_msg("get %s at %lld: %d (%s), expected the key", key, (long long)at, rc,
                 cairn_strerror(rc));
    assert_kv(kv, key, value, create, mod, version, 0);
}

static void expect_absent(struct fx *f, const char *key, int64_t at)
{
    struct store_kv kv;
    int rc = fx_get(f, key, at, &kv);
    if (rc != 0)
        fail_msg("get %s at %lld: %d (%s), expected no key", key, (long long)at, rc,
                 cairn_strerror(rc));
}

/* kvstore.go: compactMainRev starts at -1, as etcd reports a never-compacted store. */
static void test_never_compacted(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_int_equal(compact_rev(t, f), -1);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0);
    assert_int_equal(compact_rev(t, f), -1);
    expect_kv(f, "a", 1 + 1, "1", 2, 2, 1);
    expect_absent(f, "a", 1);
    fx_reopen(f, NULL);
    assert_int_equal(compact_rev(t, f), -1);
}

/* rangeKeys: "if rev < tr.s.compactMainRev → ErrCompacted": at R works, at R-1 fails. */
static void test_compact_boundary(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0); /* 3 */
    assert_rc(fx_put(f, "a", "3", 0, NULL), 0); /* 4 */
    assert_rc(fx_compact(f, 3), 0);
    assert_int_equal(compact_rev(t, f), 3);
    expect_kv(f, "a", 3, "2", 2, 3, 2);
    expect_kv(f, "a", 4, "3", 2, 4, 3);
    expect_kv(f, "a", 0, "3", 2, 4, 3);
    struct store_kv kv;
    assert_rc(fx_get(f, "a", 2, &kv), CAIRN_E_COMPACTED);
    assert_rc(fx_get(f, "a", 1, &kv), CAIRN_E_COMPACTED);
    struct store_range_res r;
    struct store_range_req all = {.key = sbl("\0"), .range_end = sbl("\0"), .revision = 2};
    assert_rc(fx_range(f, &all, &r), CAIRN_E_COMPACTED);
    all.count_only = true;
    assert_rc(fx_range(f, &all, &r), CAIRN_E_COMPACTED);
    /* no new revision: compaction is not a write of the key space */
    assert_int_equal(fx_rev(f), 4);
}

/* The compacted revision is known as soon as store_compact is committed, before any step. */
static void test_compact_effective_before_steps(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0); /* 3 */
    store_tx *tx = tc_write(t, f);
    assert_rc(store_compact(tx, 3), 0);
    assert_int_equal(store_tx_compact_rev(tx), 3);
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(compact_rev(t, f), 3);
    struct store_kv kv;
    assert_rc(fx_get(f, "a", 2, &kv), CAIRN_E_COMPACTED);
    expect_kv(f, "a", 3, "2", 2, 3, 2);
    fx_reopen(f, NULL);
    assert_int_equal(compact_rev(t, f), 3);
    assert_rc(fx_get(f, "a", 2, &kv), CAIRN_E_COMPACTED);
    expect_kv(f, "a", 3, "2", 2, 3, 2);
}

/* updateCompactRev: "if rev <= s.compactMainRev → ErrCompacted"; "if rev > s.currentRev →
 * ErrFutureRev". */
static void test_compact_bad_revisions(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    for (int i = 0; i < 5; i++)
        assert_rc(fx_put(f, "a", "v", 0, NULL), 0); /* 2..6 */
    assert_rc(fx_compact(f, 7), CAIRN_E_FUTURE_REV);
    assert_int_equal(compact_rev(t, f), -1);
    assert_rc(fx_compact(f, 4), 0);
    assert_rc(fx_compact(f, 4), CAIRN_E_COMPACTED);
    assert_rc(fx_compact(f, 3), CAIRN_E_COMPACTED);
    assert_int_equal(compact_rev(t, f), 4);
    assert_rc(fx_compact(f, 6), 0); /* the current revision itself */
    assert_int_equal(compact_rev(t, f), 6);
    assert_rc(fx_compact(f, 7), CAIRN_E_FUTURE_REV);
    expect_kv(f, "a", 6, "v", 2, 6, 5);

    /* a failed compact leaves the write transaction usable */
    store_tx *tx = tc_write(t, f);
    assert_rc(store_compact(tx, 5), CAIRN_E_COMPACTED);
    assert_rc(store_compact(tx, 99), CAIRN_E_FUTURE_REV);
    assert_rc(tc_put(t, tx, "b", "1", 0, NULL), 0);
    assert_rc(tc_commit(t, tx), 0);
    expect_kv(f, "b", 0, "1", 7, 7, 1);
}

/* key_index.go compact: each live key keeps its latest version <= R; a key whose generation ended
 * in a tombstone at or before R is gone at R; later history is untouched; create_revision and
 * version survive the removal of the records that set them. */
static void test_compact_keeps_latest_versions(void **state)
{
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "a1", 0, NULL), 0);    /* 2 */
    assert_rc(fx_put(f, "b", "b1", 0, NULL), 0);    /* 3 */
    assert_rc(fx_put(f, "a", "a2", 0, NULL), 0);    /* 4 */
    assert_rc(fx_del(f, "b", NULL, NULL, NULL), 0); /* 5 */
    assert_rc(fx_put(f, "c", "c1", 0, NULL), 0);    /* 6 */
    assert_rc(fx_put(f, "d", "d1", 0, NULL), 0);    /* 7 */
    assert_rc(fx_del(f, "d", NULL, NULL, NULL), 0); /* 8 */
    assert_rc(fx_put(f, "a", "a3", 0, NULL), 0);    /* 9 */
    assert_rc(fx_put(f, "e", "e1", 0, NULL), 0);    /* 10 */
    assert_rc(fx_del(f, "e", NULL, NULL, NULL), 0); /* 11 */

    assert_rc(fx_compact(f, 7), 0);
    expect_kv(f, "a", 7, "a2", 2, 4, 2);
    expect_absent(f, "b", 7);
    expect_kv(f, "c", 7, "c1", 6, 6, 1);
    expect_kv(f, "d", 7, "d1", 7, 7, 1);
    expect_absent(f, "d", 8);
    expect_kv(f, "a", 8, "a2", 2, 4, 2);
    expect_kv(f, "a", 9, "a3", 2, 9, 3);
    expect_kv(f, "e", 10, "e1", 10, 10, 1);
    expect_absent(f, "e", 11);

    struct store_range_res r;
    struct store_range_req all = {.key = sbl("\0"), .range_end = sbl("\0"), .revision = 7};
    assert_rc(fx_range(f, &all, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "c", "d");
    assert_int_equal(r.revision, 11);
    all.revision = 0;
    assert_rc(fx_range(f, &all, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "c");

    /* compacting past the tombstones: the deleted keys are gone for good */
    assert_rc(fx_compact(f, 11), 0);
    expect_kv(f, "a", 11, "a3", 2, 9, 3);
    expect_absent(f, "d", 11);
    expect_absent(f, "e", 11);
    struct store_kv kv;
    assert_rc(fx_get(f, "a", 10, &kv), CAIRN_E_COMPACTED);

    /* a deleted, compacted key starts over */
    assert_rc(fx_put(f, "b", "b2", 0, NULL), 0); /* 12 */
    expect_kv(f, "b", 0, "b2", 12, 12, 1);
    /* and a live key keeps counting */
    assert_rc(fx_put(f, "c", "c2", 0, NULL), 0); /* 13 */
    expect_kv(f, "c", 0, "c2", 6, 13, 2);
}

/* A compaction can be followed by writes before any step runs; the steps must not remove them. */
static void test_writes_between_compact_and_steps(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0); /* 3 */
    store_tx *tx = tc_write(t, f);
    assert_rc(store_compact(tx, 3), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_rc(fx_put(f, "a", "3", 0, NULL), 0);     /* 4 */
    assert_rc(fx_del(f, "a", NULL, NULL, NULL), 0); /* 5 */
    assert_rc(fx_put(f, "b", "1", 0, NULL), 0);     /* 6 */
    for (bool done = false; !done;) {
        tx = tc_write(t, f);
        assert_rc(store_compact_step(tx, &done), 0);
        assert_rc(tc_commit(t, tx), 0);
    }
    expect_kv(f, "a", 3, "2", 2, 3, 2);
    expect_kv(f, "a", 4, "3", 2, 4, 3);
    expect_absent(f, "a", 5);
    expect_kv(f, "b", 6, "1", 6, 6, 1);
    struct store_event ev[8];
    size_t n = tc_events(t, f, 4, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 3);
    assert_int_equal(ev[0].kv.mod_revision, 4);
    assert_int_equal(ev[1].type, STORE_EVENT_DELETE);
    assert_int_equal(ev[2].kv.mod_revision, 6);
}

/* kvstore_compaction.go removes history in batches; a compaction interrupted by a restart goes on
 * (kvstore.go restore: "resume scheduled compaction"). */
static void test_compaction_resumes_after_restart(void **state)
{
    struct tcase *t = TC(state);
    struct store_options opts = {.compact_batch = 10};
    struct fx *f = tc_open(t, &opts);
    store_tx *tx = tc_write(t, f);
    char key[16], val[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%d", i % 10);
        snprintf(val, sizeof val, "v%d", i + 2);
        assert_rc(tc_put(t, tx, key, val, 0, NULL), 0); /* revision i + 2 */
    }
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(fx_rev(f), 301);

    tx = tc_write(t, f);
    assert_rc(store_compact(tx, 251), 0);
    assert_rc(tc_commit(t, tx), 0);
    bool done = false;
    tx = tc_write(t, f);
    assert_rc(store_compact_step(tx, &done), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_false(done); /* 240 superseded records, 10 per step */

    fx_reopen(f, &opts);
    assert_int_equal(compact_rev(t, f), 251);
    struct store_kv kv;
    assert_rc(fx_get(f, "k0", 250, &kv), CAIRN_E_COMPACTED);
    /* i = 249 is the last put of k9 at or below 251 (revision 251) */
    expect_kv(f, "k9", 251, "v251", 11, 251, 25);
    expect_kv(f, "k0", 251, "v242", 2, 242, 25);

    tx = tc_write(t, f);
    assert_rc(store_compact_step(tx, &done), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_false(done);
    int steps = 1;
    while (!done) {
        tx = tc_write(t, f);
        assert_rc(store_compact_step(tx, &done), 0);
        assert_rc(tc_commit(t, tx), 0);
        steps++;
        assert_true(steps < 100);
    }
    for (int k = 0; k < 10; k++) {
        snprintf(key, sizeof key, "k%d", k);
        /* at 251: the last i <= 249 with i % 10 == k */
        int i = 240 + k;
        snprintf(val, sizeof val, "v%d", i + 2);
        expect_kv(f, key, 251, val, k + 2, i + 2, i / 10 + 1);
        snprintf(val, sizeof val, "v%d", 290 + k + 2);
        expect_kv(f, key, 0, val, k + 2, 290 + k + 2, 30);
    }
    /* steps after done are no-ops */
    tx = tc_write(t, f);
    assert_rc(store_compact_step(tx, &done), 0);
    assert_true(done);
    assert_rc(tc_commit(t, tx), 0);
}

/* A store that never compacted, or finished, has nothing pending. */
static void test_step_without_compaction(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0);
    store_tx *tx = tc_write(t, f);
    bool done = false;
    assert_rc(store_compact_step(tx, &done), 0);
    assert_true(done);
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(fx_rev(f), 2);
}

/* Many revisions with the default batch (1000): several steps, and every key right afterwards. */
static void test_compact_many_revisions(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    enum { PUTS = 5000, KEYS = 50, AT = 4000 };
    char key[16], val[16];
    store_tx *tx = tc_write(t, f);
    for (int i = 0; i < PUTS; i++) {
        snprintf(key, sizeof key, "key%02d", i % KEYS);
        snprintf(val, sizeof val, "v%d", i + 2);
        assert_rc(tc_put(t, tx, key, val, 0, NULL), 0);
        tc_reset(t);
    }
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(fx_rev(f), PUTS + 1);

    tx = tc_write(t, f);
    assert_rc(store_compact(tx, AT), 0);
    assert_rc(tc_commit(t, tx), 0);
    int steps = 0;
    for (bool done = false; !done;) {
        tx = tc_write(t, f);
        assert_rc(store_compact_step(tx, &done), 0);
        assert_rc(tc_commit(t, tx), 0);
        steps++;
        assert_true(steps < 1000);
    }
    /* 3950 records superseded at or below 4000, at most 1000 removed per step */
    assert_true(steps >= 4);

    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "key%02d", k);
        int i = (AT - 2) - ((AT - 2 - k) % KEYS); /* last i <= AT-2 with i % KEYS == k */
        snprintf(val, sizeof val, "v%d", i + 2);
        expect_kv(f, key, AT, val, k + 2, i + 2, i / KEYS + 1);
        int last = PUTS - KEYS + k;
        snprintf(val, sizeof val, "v%d", last + 2);
        expect_kv(f, key, 0, val, k + 2, last + 2, PUTS / KEYS);
    }
    struct store_kv kv;
    assert_rc(fx_get(f, "key00", AT - 1, &kv), CAIRN_E_COMPACTED);
    struct store_range_res r;
    struct store_range_req all = {
        .key = sbl("\0"), .range_end = sbl("\0"), .revision = AT, .count_only = true};
    assert_rc(fx_range(f, &all, &r), 0);
    assert_int_equal(r.count, KEYS);

    /* the feed from the compacted revision on still has every later event */
    struct store_event *ev = test_malloc(sizeof *ev * (PUTS + 1 - AT + 1));
    size_t n = tc_events(t, f, AT + 1, false, ev, PUTS + 1 - AT + 1);
    size_t want = PUTS + 1 - AT;
    int64_t first = n ? ev[0].kv.mod_revision : -1;
    test_free(ev);
    assert_int_equal(n, want);
    assert_int_equal(first, AT + 1);
}

/* A read transaction begun before a compaction keeps its snapshot: the compacted revision as it
 * sees it, and the history it could read. */
static void test_reader_snapshot_across_compaction(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0); /* 3 */
    assert_rc(fx_put(f, "a", "3", 0, NULL), 0); /* 4 */
    store_tx *r = tc_read(t, f);
    store_tx *w = tc_write(t, f);
    assert_rc(store_compact(w, 4), 0);
    bool done = false;
    while (!done)
        assert_rc(store_compact_step(w, &done), 0);
    assert_rc(tc_commit(t, w), 0);

    assert_int_equal(store_tx_compact_rev(r), -1);
    struct store_range_req q = {.key = sb("a"), .revision = 2};
    struct store_range_res res;
    assert_rc(store_range(r, &q, &t->a, &res), 0);
    assert_int_equal(res.n_kvs, 1);
    assert_kv(res.kvs[0], "a", "1", 2, 2, 1, 0);
    tc_end(t, r);

    struct store_kv kv;
    assert_rc(fx_get(f, "a", 2, &kv), CAIRN_E_COMPACTED);
    assert_int_equal(compact_rev(t, f), 4);
}

/* Compaction in the same write transaction as writes after it: both apply. */
static void test_compact_and_write_in_one_transaction(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0); /* 3 */
    store_tx *w = tc_write(t, f);
    assert_rc(store_compact(w, 3), 0);
    struct store_put_res pr;
    assert_rc(tc_put(t, w, "a", "3", 0, &pr), 0);
    assert_int_equal(pr.revision, 4);
    assert_rc(store_compact(w, 4), 0);
    assert_int_equal(store_tx_compact_rev(w), 4);
    bool done = false;
    while (!done)
        assert_rc(store_compact_step(w, &done), 0);
    assert_rc(tc_commit(t, w), 0);
    expect_kv(f, "a", 4, "3", 2, 4, 3);
    struct store_kv kv;
    assert_rc(fx_get(f, "a", 3, &kv), CAIRN_E_COMPACTED);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_never_compacted, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_compact_boundary, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_compact_effective_before_steps, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_compact_bad_revisions, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_compact_keeps_latest_versions, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_writes_between_compact_and_steps, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_compaction_resumes_after_restart, tc_setup_bare,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_step_without_compaction, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_compact_many_revisions, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_reader_snapshot_across_compaction, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_compact_and_write_in_one_transaction, tc_setup,
                                        tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
