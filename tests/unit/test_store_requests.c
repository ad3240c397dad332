/* tests/unit/test_store_requests.c — the memory of applied request ids (store/requests.c): a
 * recorded id is seen, the memory keeps exactly the `keep` newest ids and remembers the highest
 * index it forgot, it persists with the data and aborts with its transaction, it stays out of
 * HashKV, and a store written before the tables existed gets them when opened. */
#include <lmdb.h>

#include "tests/unit/helpers/store_case.h"

#define FX(state) (((struct tcase *)*(state))->fx[0])
#define TC(state) ((struct tcase *)*(state))

static bool seen(struct tcase *t, struct fx *f, uint64_t id)
{
    store_tx *tx = tc_read(t, f);
    bool s = false;
    assert_rc(store_request_seen(tx, id, &s), 0);
    tc_end(t, tx);
    return s;
}

static uint64_t forgotten(struct tcase *t, struct fx *f)
{
    store_tx *tx = tc_read(t, f);
    uint64_t index = 99;
    assert_rc(store_requests_forgotten(tx, &index), 0);
    tc_end(t, tx);
    return index;
}

/* Records ids first..first+n-1 at indexes 10*id, in one transaction. */
static void record(struct tcase *t, struct fx *f, uint64_t first, uint64_t n, uint64_t keep)
{
    store_tx *tx = tc_write(t, f);
    for (uint64_t id = first; id < first + n; id++)
        assert_rc(store_request_record(tx, id, 10 * id, keep), 0);
    assert_rc(tc_commit(t, tx), 0);
}

static void test_record_and_seen(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_false(seen(t, f, 7));
    assert_int_equal(forgotten(t, f), 0);
    record(t, f, 7, 1, 100);
    assert_true(seen(t, f, 7));
    assert_false(seen(t, f, 8));
    /* ids sort as unsigned numbers: the highest bits are the member's */
    record(t, f, 0xfffe000000000001ull, 1, 100);
    assert_true(seen(t, f, 0xfffe000000000001ull));
    assert_int_equal(forgotten(t, f), 0);

    /* an id recorded twice is the caller's mistake; the transaction stays usable */
    store_tx *tx = tc_write(t, f);
    assert_rc(store_request_record(tx, 7, 1000, 100), CAIRN_E_INVALID_ARGUMENT);
    bool s = false;
    assert_rc(store_request_seen(tx, 7, &s), 0); /* a write transaction sees its own */
    assert_true(s);
    assert_rc(store_request_record(tx, 9, 90, 100), 0);
    assert_rc(store_request_seen(tx, 9, &s), 0);
    assert_true(s);
    tc_end(t, tx); /* aborted: 9 is not remembered */
    assert_false(seen(t, f, 9));

    tx = tc_read(t, f);
    assert_rc(store_request_record(tx, 10, 100, 100), CAIRN_E_INVALID_ARGUMENT);
    tc_end(t, tx);
}

static void test_keeps_the_newest(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    record(t, f, 1, 5, 5);
    assert_int_equal(forgotten(t, f), 0); /* exactly keep: nothing forgotten */
    for (uint64_t id = 1; id <= 5; id++)
        assert_true(seen(t, f, id));
    record(t, f, 6, 3, 5); /* 8 ids, keep 5: 1..3 go, the highest forgotten index is 30 */
    for (uint64_t id = 1; id <= 3; id++)
        assert_false(seen(t, f, id));
    for (uint64_t id = 4; id <= 8; id++)
        assert_true(seen(t, f, id));
    assert_int_equal(forgotten(t, f), 30);

    /* a smaller keep forgets down to it at once, oldest index first whatever the ids */
    store_tx *tx = tc_write(t, f);
    assert_rc(store_request_record(tx, 2, 5, 2), 0); /* id 2 again, at an index below all */
    assert_rc(tc_commit(t, tx), 0);
    assert_false(seen(t, f, 2));
    for (uint64_t id = 4; id <= 6; id++)
        assert_false(seen(t, f, id));
    assert_true(seen(t, f, 7) && seen(t, f, 8));
    assert_int_equal(forgotten(t, f), 60); /* never lowered by the older index 5 */
}

static void test_survives_reopen(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    record(t, f, 1, 4, 3);
    fx_reopen(f, NULL);
    assert_false(seen(t, f, 1));
    assert_true(seen(t, f, 2) && seen(t, f, 3) && seen(t, f, 4));
    assert_int_equal(forgotten(t, f), 10);
}

static uint32_t hash_now(struct tcase *t, struct fx *f)
{
    store_tx *tx = tc_read(t, f);
    uint32_t hash;
    int64_t compacted;
    assert_rc(store_hash_kv(tx, 0, &hash, &compacted), 0);
    tc_end(t, tx);
    return hash;
}

/* The tables are no part of the data HashKV hashes: members that remember different ids (one
 * installed a copy, one pruned at another keep) hash equal when their keys are equal. */
static void test_not_in_hash(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "k", "v", 0, NULL), 0);
    uint32_t before = hash_now(t, f);
    record(t, f, 1, 3, 100);
    assert_int_equal(hash_now(t, f), before);
}

/* Removes the tables from the closed store in dir, as a store written before they existed. */
static void drop_tables(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "reqs", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_dbi_open(txn, "reqlog", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_dbi_open(txn, "reqs", 0, &dbi), MDB_NOTFOUND);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_older_store_gets_the_tables(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "k", "v", 0, NULL), 0);
    fx_reset(f);
    store_close(f->st);
    f->st = NULL;
    drop_tables(f->dir);
    assert_rc(store_open(f->dir, NULL, &f->st), 0);
    assert_false(seen(t, f, 1));
    assert_int_equal(forgotten(t, f), 0);
    record(t, f, 1, 2, 1);
    assert_true(seen(t, f, 2));
    assert_int_equal(forgotten(t, f), 10);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "k", 0, &kv), 1); /* the data is as it was */
    assert_sb(kv.value, "v");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_record_and_seen, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_keeps_the_newest, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_survives_reopen, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_not_in_hash, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_older_store_gets_the_tables, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
