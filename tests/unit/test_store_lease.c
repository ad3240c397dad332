/* tests/unit/test_store_lease.c — the persistent lease table and key attachment.
 *
 * Expected behaviour is etcd 3.4's lessor (lease/lessor.go: Grant "if _, ok := le.leaseMap[id]; ok
 * → ErrLeaseExists", Revoke deletes the keys "sorted so deletes are in same order among all
 * members" in one txn together with the lease, Checkpoint records remainingTTL) and mvcc's put
 * (kvstore_txn.go: a put detaches the key from its old lease and attaches it to the new one; a
 * delete detaches it). */
#include <string.h>

#include "tests/unit/helpers/store_case.h"

#define FX(state) (((struct tcase *)*(state))->fx[0])
#define TC(state) ((struct tcase *)*(state))

static void grant(struct tcase *t, struct fx *f, int64_t id, int64_t ttl)
{
    store_tx *tx = tc_write(t, f);
    assert_rc(store_lease_grant(tx, id, ttl), 0);
    assert_rc(tc_commit(t, tx), 0);
}

static int revoke(struct tcase *t, struct fx *f, int64_t id, int64_t *rev)
{
    store_tx *tx = tc_write(t, f);
    int rc = store_lease_revoke(tx, id, rev);
    assert_rc(tc_commit(t, tx), 0);
    return rc;
}

/* Looks a lease up with its keys; returns the store's result. */
static int lease_get(struct tcase *t, struct fx *f, int64_t id, struct store_lease *out)
{
    store_tx *tx = tc_read(t, f);
    int rc = store_lease_get(tx, id, true, &t->a, out);
    /* keys are copied out of the transaction's map before it ends */
    if (rc == 0) {
        store_bytes *keys = arena_alloc(&t->a, sizeof *keys * (out->n_keys + 1));
        for (size_t i = 0; i < out->n_keys; i++) {
            keys[i].len = out->keys[i].len;
            keys[i].data = arena_dup(&t->a, out->keys[i].data, out->keys[i].len);
        }
        out->keys = keys;
    }
    tc_end(t, tx);
    return rc;
}

#define assert_lease_keys(l, ...)                      \
    do {                                               \
        const char *const want_[] = {__VA_ARGS__};     \
        assert_int_equal((l).n_keys, N_ELEMS(want_));  \
        for (size_t i_ = 0; i_ < N_ELEMS(want_); i_++) \
            assert_sb((l).keys[i_], want_[i_]);        \
    } while (0)

static void expect_lease_of(struct fx *f, const char *key, int64_t lease)
{
    struct store_kv kv;
    assert_int_equal(fx_get(f, key, 0, &kv), 1);
    assert_int_equal(kv.lease, lease);
}

/* Grant: a new lease with its TTL, no keys, no revision; an id in use is LEASE_EXIST. */
static void test_grant(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    grant(t, f, 1, 30);
    struct store_lease l;
    assert_rc(lease_get(t, f, 1, &l), 0);
    assert_int_equal(l.id, 1);
    assert_int_equal(l.ttl, 30);
    assert_int_equal(l.remaining_ttl, 0);
    assert_int_equal(l.n_keys, 0);
    assert_int_equal(fx_rev(f), 1);

    store_tx *tx = tc_write(t, f);
    assert_rc(store_lease_grant(tx, 1, 60), CAIRN_E_LEASE_EXIST);
    /* the transaction is still usable; lessor.Grant refuses NoLease (id 0) */
    assert_true(store_lease_grant(tx, 0, 60) < 0);
    assert_rc(store_lease_grant(tx, 2, 60), 0);
    assert_rc(store_lease_grant(tx, 2, 60), CAIRN_E_LEASE_EXIST);
    assert_rc(tc_commit(t, tx), 0);
    assert_rc(lease_get(t, f, 1, &l), 0);
    assert_int_equal(l.ttl, 30);
    assert_rc(lease_get(t, f, 2, &l), 0);
    assert_int_equal(l.ttl, 60);
    assert_rc(lease_get(t, f, 3, &l), CAIRN_E_LEASE_NOT_FOUND);
    assert_int_equal(fx_rev(f), 1);

    /* an aborted grant leaves nothing */
    tx = tc_write(t, f);
    assert_rc(store_lease_grant(tx, 3, 5), 0);
    tc_end(t, tx);
    assert_rc(lease_get(t, f, 3, &l), CAIRN_E_LEASE_NOT_FOUND);
}

/* A put with a lease attaches the key; lease_get lists the keys sorted; an unknown lease is
 * LEASE_NOT_FOUND. */
static void test_put_attaches(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    grant(t, f, 7, 10);
    assert_rc(fx_put(f, "m", "1", 7, NULL), 0);
    assert_rc(fx_put(f, "b", "1", 7, NULL), 0);
    assert_rc(fx_put(f, "z", "1", 7, NULL), 0);
    assert_rc(fx_put(f, "free", "1", 0, NULL), 0);
    assert_rc(fx_put(f, "x", "1", 8, NULL), CAIRN_E_LEASE_NOT_FOUND);
    struct store_lease l;
    assert_rc(lease_get(t, f, 7, &l), 0);
    assert_lease_keys(l, "b", "m", "z");
    expect_lease_of(f, "m", 7);
    expect_lease_of(f, "free", 0);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "x", 0, &kv), 0);
    assert_int_equal(fx_rev(f), 5);
}

/* kvstore_txn.go put: "if oldLease != lease.NoLease → Detach"; a put with another lease, or none,
 * moves the key; a delete detaches it. */
static void test_put_moves_key_between_leases(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    grant(t, f, 1, 10);
    grant(t, f, 2, 10);
    assert_rc(fx_put(f, "k", "1", 1, NULL), 0);
    assert_rc(fx_put(f, "j", "1", 1, NULL), 0);
    assert_rc(fx_put(f, "k", "2", 2, NULL), 0);
    struct store_lease l;
    assert_rc(lease_get(t, f, 1, &l), 0);
    assert_lease_keys(l, "j");
    assert_rc(lease_get(t, f, 2, &l), 0);
    assert_lease_keys(l, "k");
    expect_lease_of(f, "k", 2);

    assert_rc(fx_put(f, "k", "3", 0, NULL), 0);
    assert_rc(lease_get(t, f, 2, &l), 0);
    assert_int_equal(l.n_keys, 0);
    expect_lease_of(f, "k", 0);

    assert_rc(fx_del(f, "j", NULL, NULL, NULL), 0);
    assert_rc(lease_get(t, f, 1, &l), 0);
    assert_int_equal(l.n_keys, 0);

    /* revoking leases whose keys went elsewhere deletes nothing and makes no revision */
    int64_t rev = fx_rev(f), got = -1;
    assert_rc(revoke(t, f, 1, &got), 0);
    assert_int_equal(got, rev);
    assert_rc(revoke(t, f, 2, &got), 0);
    assert_int_equal(got, rev);
    assert_int_equal(fx_rev(f), rev);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "k", 0, &kv), 1);
}

/* lessor.go Revoke: the attached keys are deleted in one txn, sorted, and the lease with them. */
static void test_revoke(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    grant(t, f, 3, 10);
    grant(t, f, 4, 10);
    assert_rc(fx_put(f, "c", "1", 3, NULL), 0);     /* 2 */
    assert_rc(fx_put(f, "a", "1", 3, NULL), 0);     /* 3 */
    assert_rc(fx_put(f, "other", "1", 4, NULL), 0); /* 4 */
    assert_rc(fx_put(f, "b", "1", 3, NULL), 0);     /* 5 */
    assert_rc(fx_put(f, "a", "2", 3, NULL), 0);     /* 6 */

    int64_t rev = -1;
    assert_rc(revoke(t, f, 3, &rev), 0);
    assert_int_equal(rev, 7);
    assert_int_equal(fx_rev(f), 7);

    struct store_event ev[8];
    size_t n = tc_events(t, f, 7, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 3);
    static const char *const keys[] = {"a", "b", "c"};
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ev[i].type, STORE_EVENT_DELETE);
        assert_sb(ev[i].kv.key, keys[i]);
        assert_int_equal(ev[i].kv.mod_revision, 7);
        assert_int_equal(ev[i].sub_revision, (int64_t)i);
    }

    struct store_lease l;
    assert_rc(lease_get(t, f, 3, &l), CAIRN_E_LEASE_NOT_FOUND);
    assert_rc(revoke(t, f, 3, &rev), CAIRN_E_LEASE_NOT_FOUND);
    assert_rc(revoke(t, f, 99, &rev), CAIRN_E_LEASE_NOT_FOUND);
    assert_int_equal(fx_rev(f), 7);
    struct store_range_res r;
    struct store_range_req all = {.key = sbl("\0"), .range_end = sbl("\0")};
    assert_rc(fx_range(f, &all, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "other");
    assert_rc(lease_get(t, f, 4, &l), 0);
    assert_lease_keys(l, "other");

    /* a revoked id can be granted again, with no keys */
    grant(t, f, 3, 5);
    assert_rc(lease_get(t, f, 3, &l), 0);
    assert_int_equal(l.n_keys, 0);
    assert_int_equal(l.ttl, 5);
}

/* A revoke in a write transaction that then aborts leaves lease and keys. */
static void test_revoke_aborted(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    grant(t, f, 3, 10);
    assert_rc(fx_put(f, "a", "1", 3, NULL), 0);
    store_tx *tx = tc_write(t, f);
    int64_t rev = -1;
    assert_rc(store_lease_revoke(tx, 3, &rev), 0);
    assert_int_equal(rev, 3);
    tc_end(t, tx);
    struct store_lease l;
    assert_rc(lease_get(t, f, 3, &l), 0);
    assert_lease_keys(l, "a");
    assert_int_equal(fx_rev(f), 2);
}

/* All leases, in id order, with their TTLs. */
static void test_list(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    store_tx *tx = tc_read(t, f);
    struct store_lease *ls = NULL;
    size_t n = 99;
    assert_rc(store_lease_list(tx, &t->a, &ls, &n), 0);
    assert_int_equal(n, 0);
    tc_end(t, tx);

    grant(t, f, 300, 3);
    grant(t, f, 100, 1);
    grant(t, f, 200, 2);
    grant(t, f, 0x7fffffffffffffffLL, 9);
    grant(t, f, 256, 4);
    int64_t rev;
    assert_rc(revoke(t, f, 200, &rev), 0);
    tx = tc_read(t, f);
    assert_rc(store_lease_list(tx, &t->a, &ls, &n), 0);
    static const int64_t ids[] = {100, 256, 300, 0x7fffffffffffffffLL};
    static const int64_t ttls[] = {1, 4, 3, 9};
    assert_int_equal(n, N_ELEMS(ids));
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(ls[i].id, ids[i]);
        assert_int_equal(ls[i].ttl, ttls[i]);
    }
    tc_end(t, tx);
}

/* Checkpoint records the remaining TTL (lessor.go Checkpoint, persisted: leasepb.Lease
 * RemainingTTL); it survives a restart, as do the lease's attachments. */
static void test_checkpoint_and_restart(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    grant(t, f, 5, 100);
    assert_rc(fx_put(f, "k2", "v", 5, NULL), 0);
    assert_rc(fx_put(f, "k1", "v", 5, NULL), 0);
    store_tx *tx = tc_write(t, f);
    assert_rc(store_lease_checkpoint(tx, 5, 42), 0);
    assert_rc(store_lease_checkpoint(tx, 6, 42), CAIRN_E_LEASE_NOT_FOUND);
    assert_rc(tc_commit(t, tx), 0);
    struct store_lease l;
    assert_rc(lease_get(t, f, 5, &l), 0);
    assert_int_equal(l.remaining_ttl, 42);
    assert_int_equal(l.ttl, 100);

    fx_reopen(f, NULL);
    assert_rc(lease_get(t, f, 5, &l), 0);
    assert_int_equal(l.remaining_ttl, 42);
    assert_int_equal(l.ttl, 100);
    assert_lease_keys(l, "k1", "k2");
    assert_int_equal(fx_rev(f), 3);

    tx = tc_write(t, f);
    assert_rc(store_lease_checkpoint(tx, 5, 17), 0);
    assert_rc(tc_commit(t, tx), 0);
    fx_reopen(f, NULL);
    assert_rc(lease_get(t, f, 5, &l), 0);
    assert_int_equal(l.remaining_ttl, 17);

    int64_t rev = -1;
    assert_rc(revoke(t, f, 5, &rev), 0);
    assert_int_equal(rev, 4);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "k1", 0, &kv), 0);
    assert_int_equal(fx_get(f, "k2", 0, &kv), 0);
}

/* A put with ignore_lease keeps the attachment; leases in txns attach like plain puts. */
static void test_lease_in_txn_and_ignore_lease(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    grant(t, f, 1, 10);
    struct store_op ops[] = {op_put("a", "1"), op_put("b", "1")};
    ops[0].u.put.lease = 1;
    ops[1].u.put.lease = 1;
    struct store_txn_req req = {.success = ops, .n_success = 2};
    struct store_txn_res res;
    store_tx *tx = tc_write(t, f);
    assert_rc(store_txn(tx, &req, &t->a, &res), 0);
    assert_rc(tc_commit(t, tx), 0);

    tx = tc_write(t, f);
    struct store_put_req keep = {.key = sb("a"), .value = sb("2"), .ignore_lease = true};
    struct store_put_res pr;
    assert_rc(store_put(tx, &keep, &t->a, &pr), 0);
    assert_rc(tc_commit(t, tx), 0);
    expect_lease_of(f, "a", 1);
    struct store_lease l;
    assert_rc(lease_get(t, f, 1, &l), 0);
    assert_lease_keys(l, "a", "b");

    int64_t rev = -1;
    assert_rc(revoke(t, f, 1, &rev), 0);
    assert_int_equal(rev, 4);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "a", 0, &kv), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_grant, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_attaches, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_moves_key_between_leases, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_revoke, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_revoke_aborted, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_list, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_and_restart, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_lease_in_txn_and_ignore_lease, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
