/* tests/unit/test_store_feed.c — the change feed that watches are built on.
 *
 * Expected behaviour is etcd 3.4's watch: mvcc/watchable_store_txn.go End() (a txn's changes become
 * events of one revision, in order; a delete's event kv is the key with mod_revision set, nothing
 * else), mvcc/watchable_store.go (prev_kv is the key as of ModRevision-1) and
 * mvcc/watcher_group.go chooseAll ("if w.minRev < compactRev" → compacted: a watch from exactly the
 * compacted revision works). */
#include <string.h>

#include "tests/unit/helpers/store_case.h"

#define FX(state) (((struct tcase *)*(state))->fx[0])
#define TC(state) ((struct tcase *)*(state))

static void assert_delete_event(const struct store_event *ev, const char *key, int64_t rev)
{
    assert_int_equal(ev->type, STORE_EVENT_DELETE);
    assert_kv(ev->kv, key, "", 0, rev, 0, 0);
}

/* Every change after from_rev, in revision order; PUT events carry the whole kv. */
static void test_events_in_order(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    store_tx *tx = tc_write(t, f);
    assert_rc(store_lease_grant(tx, 9, 30), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0);     /* 2 */
    assert_rc(fx_put(f, "b", "1", 9, NULL), 0);     /* 3 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0);     /* 4 */
    assert_rc(fx_del(f, "b", NULL, NULL, NULL), 0); /* 5 */

    struct store_event ev[8];
    size_t n = tc_events(t, f, 1, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 4);
    assert_int_equal(ev[0].type, STORE_EVENT_PUT);
    assert_kv(ev[0].kv, "a", "1", 2, 2, 1, 0);
    assert_int_equal(ev[1].type, STORE_EVENT_PUT);
    assert_kv(ev[1].kv, "b", "1", 3, 3, 1, 9);
    assert_int_equal(ev[2].type, STORE_EVENT_PUT);
    assert_kv(ev[2].kv, "a", "2", 2, 4, 2, 0);
    assert_delete_event(&ev[3], "b", 5);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].sub_revision, 0);
        assert_null(ev[i].prev_kv);
    }

    n = tc_events(t, f, 4, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].kv.mod_revision, 4);

    n = tc_events(t, f, 5, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 1);
    n = tc_events(t, f, 6, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 0);
    n = tc_events(t, f, 0, false, ev, N_ELEMS(ev)); /* the current revision + 1 */
    assert_int_equal(n, 0);
}

/* A txn's changes share its revision, with sub-revisions in op order; a multi-key delete's events
 * come in key order. */
static void test_txn_events_share_revision(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "x1", "0", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "x2", "0", 0, NULL), 0); /* 3 */
    struct store_op ops[] = {op_put("m", "1"), op_del("x", "y"), op_put("b", "1")};
    struct store_txn_req req = {.success = ops, .n_success = 3};
    struct store_txn_res res;
    store_tx *tx = tc_write(t, f);
    assert_rc(store_txn(tx, &req, &t->a, &res), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(res.revision, 4);

    struct store_event ev[8];
    size_t n = tc_events(t, f, 4, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 4);
    assert_kv(ev[0].kv, "m", "1", 4, 4, 1, 0);
    assert_delete_event(&ev[1], "x1", 4);
    assert_delete_event(&ev[2], "x2", 4);
    assert_kv(ev[3].kv, "b", "1", 4, 4, 1, 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(ev[i].sub_revision, (int64_t)i);
}

/* prev_kv: the key as of the revision before the event; none for a creation. */
static void test_prev_kv(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0);     /* 2 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0);     /* 3 */
    assert_rc(fx_del(f, "a", NULL, NULL, NULL), 0); /* 4 */
    assert_rc(fx_put(f, "a", "3", 0, NULL), 0);     /* 5 */
    struct store_op ops[] = {op_put("a", "4"), op_put("n", "1")};
    struct store_txn_req req = {.success = ops, .n_success = 2};
    struct store_txn_res res;
    store_tx *tx = tc_write(t, f);
    assert_rc(store_txn(tx, &req, &t->a, &res), 0); /* 6 */
    assert_rc(tc_commit(t, tx), 0);

    struct store_event ev[8];
    size_t n = tc_events(t, f, 2, true, ev, N_ELEMS(ev));
    assert_int_equal(n, 6);
    assert_null(ev[0].prev_kv);
    assert_non_null(ev[1].prev_kv);
    assert_kv(*ev[1].prev_kv, "a", "1", 2, 2, 1, 0);
    assert_delete_event(&ev[2], "a", 4);
    assert_non_null(ev[2].prev_kv);
    assert_kv(*ev[2].prev_kv, "a", "2", 2, 3, 2, 0);
    assert_null(ev[3].prev_kv); /* re-created */
    assert_kv(ev[3].kv, "a", "3", 5, 5, 1, 0);
    assert_non_null(ev[4].prev_kv);
    assert_kv(*ev[4].prev_kv, "a", "3", 5, 5, 1, 0);
    assert_kv(ev[4].kv, "a", "4", 5, 6, 2, 0);
    assert_null(ev[5].prev_kv);
    assert_kv(ev[5].kv, "n", "1", 6, 6, 1, 0);
}

/* chooseAll: "if w.minRev < compactRev" → compacted; from the compacted revision itself the feed
 * opens, and holds that revision's surviving changes and everything after. */
static void test_feed_and_compaction(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0);     /* 2 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0);     /* 3 */
    assert_rc(fx_put(f, "b", "1", 0, NULL), 0);     /* 4 */
    assert_rc(fx_put(f, "a", "3", 0, NULL), 0);     /* 5 */
    assert_rc(fx_del(f, "b", NULL, NULL, NULL), 0); /* 6 */
    assert_rc(fx_compact(f, 4), 0);

    store_tx *tx = tc_read(t, f);
    struct store_feed feed;
    assert_rc(store_feed_open(tx, 3, false, &feed), CAIRN_E_COMPACTED);
    assert_rc(store_feed_open(tx, 1, false, &feed), CAIRN_E_COMPACTED);
    tc_end(t, tx);

    struct store_event ev[8];
    size_t n = tc_events(t, f, 4, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 3);
    assert_kv(ev[0].kv, "b", "1", 4, 4, 1, 0);
    assert_kv(ev[1].kv, "a", "3", 2, 5, 3, 0);
    assert_delete_event(&ev[2], "b", 6);

    n = tc_events(t, f, 5, true, ev, N_ELEMS(ev));
    assert_int_equal(n, 2);
    assert_non_null(ev[0].prev_kv);
    assert_kv(*ev[0].prev_kv, "a", "2", 2, 3, 2, 0);
    assert_non_null(ev[1].prev_kv);
    assert_kv(*ev[1].prev_kv, "b", "1", 4, 4, 1, 0);
}

/* The feed ends at the transaction's revision: a read transaction does not see later commits, and
 * a write transaction sees its own requests. */
static void test_feed_bounded_by_transaction(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    store_tx *rtx = tc_read(t, f);
    store_tx *wtx = tc_write(t, f);
    struct store_put_res pr;
    assert_rc(tc_put(t, wtx, "b", "1", 0, &pr), 0);
    assert_int_equal(pr.revision, 3);
    struct store_feed feed;
    struct store_event ev;
    assert_rc(store_feed_open(wtx, 3, false, &feed), 0);
    assert_int_equal(store_feed_next(&feed, &t->a, &ev), 1);
    assert_kv(ev.kv, "b", "1", 3, 3, 1, 0);
    assert_int_equal(store_feed_next(&feed, &t->a, &ev), 0);
    store_feed_close(&feed);
    store_feed_close(&feed); /* idempotent */
    assert_rc(tc_commit(t, wtx), 0);

    assert_rc(store_feed_open(rtx, 2, false, &feed), 0);
    assert_int_equal(store_feed_next(&feed, &t->a, &ev), 1);
    assert_kv(ev.kv, "a", "1", 2, 2, 1, 0);
    assert_int_equal(store_feed_next(&feed, &t->a, &ev), 0);
    store_feed_close(&feed);
    tc_end(t, rtx);

    struct store_event evs[4];
    assert_int_equal(tc_events(t, f, 2, false, evs, N_ELEMS(evs)), 2);
}

/* Lease revocation deletes its keys in one revision, in key order (lessor.go Revoke sorts them). */
static void test_feed_lease_revoke(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    store_tx *tx = tc_write(t, f);
    assert_rc(store_lease_grant(tx, 1, 10), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_rc(fx_put(f, "zz", "1", 1, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "aa", "1", 1, NULL), 0); /* 3 */
    assert_rc(fx_put(f, "mm", "1", 1, NULL), 0); /* 4 */
    tx = tc_write(t, f);
    int64_t rev = 0;
    assert_rc(store_lease_revoke(tx, 1, &rev), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(rev, 5);

    struct store_event ev[8];
    size_t n = tc_events(t, f, 5, true, ev, N_ELEMS(ev));
    assert_int_equal(n, 3);
    assert_delete_event(&ev[0], "aa", 5);
    assert_delete_event(&ev[1], "mm", 5);
    assert_delete_event(&ev[2], "zz", 5);
    assert_int_equal(ev[2].sub_revision, 2);
    assert_non_null(ev[0].prev_kv);
    assert_kv(*ev[0].prev_kv, "aa", "1", 3, 3, 1, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_events_in_order, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_txn_events_share_revision, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_prev_kv, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_feed_and_compaction, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_feed_bounded_by_transaction, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_feed_lease_revoke, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
