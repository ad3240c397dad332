/* tests/unit/test_store_kv.c — Put, Range and DeleteRange with etcd 3.4's semantics.
 *
 * Expected values come from etcd's mvcc (kvstore_txn.go: put, deleteRange, rangeKeys; index.go:
 * Revisions), its applier (etcdserver/apply.go: Put, Range, DeleteRange) and the API checks
 * (etcdserver/api/v3rpc/key.go: checkPutRequest, checkRangeRequest, checkDeleteRequest). */
#include <stdlib.h>
#include <string.h>

#include "tests/unit/helpers/store_case.h"

#define FX(state) (((struct tcase *)*(state))->fx[0])
#define TC(state) ((struct tcase *)*(state))

static void put_ok(struct fx *f, const char *key, const char *value, int64_t want_rev)
{
    int64_t rev = -1;
    assert_rc(fx_put(f, key, value, 0, &rev), 0);
    assert_int_equal(rev, want_rev);
}

static void get_ok(struct fx *f, const char *key, int64_t at, struct store_kv *kv)
{
    int rc = fx_get(f, key, at, kv);
    if (rc != 1)
        fail_msg("get %s at %lld: %d (%s), expected the key", key, (long long)at, rc,
                 cairn_strerror(rc));
}

static void get_absent(struct fx *f, const char *key, int64_t at)
{
    struct store_kv kv;
    int rc = fx_get(f, key, at, &kv);
    if (rc != 0)
        fail_msg("get %s at %lld: %d (%s), expected no key", key, (long long)at, rc,
                 cairn_strerror(rc));
}

/* mvcc/kvstore_test.go TestStoreRev: a new store is at revision 1 (etcd starts currentRev at 1). */
static void test_empty_store_is_revision_1(void **state)
{
    struct fx *f = FX(state);
    assert_int_equal(fx_rev(f), 1);
    struct store_range_req req = {.key = sbl("\0"), .range_end = sbl("\0")};
    struct store_range_res res;
    assert_rc(fx_range(f, &req, &res), 0);
    assert_int_equal(res.n_kvs, 0);
    assert_int_equal(res.count, 0);
    assert_false(res.more);
    assert_int_equal(res.revision, 1);
}

/* Each put takes the next main revision; create_revision stays, version counts puts. */
static void test_put_revisions_and_versions(void **state)
{
    struct fx *f = FX(state);
    put_ok(f, "a", "1", 2);
    put_ok(f, "b", "1", 3);
    put_ok(f, "a", "2", 4);
    put_ok(f, "a", "3", 5);
    assert_int_equal(fx_rev(f), 5);
    struct store_kv kv;
    get_ok(f, "a", 0, &kv);
    assert_kv(kv, "a", "3", 2, 5, 3, 0);
    get_ok(f, "b", 0, &kv);
    assert_kv(kv, "b", "1", 3, 3, 1, 0);
}

/* kvstore_txn.go put(): an unchanged value is still a new revision and a new version. */
static void test_put_same_value_makes_new_revision(void **state)
{
    struct fx *f = FX(state);
    put_ok(f, "k", "v", 2);
    put_ok(f, "k", "v", 3);
    struct store_kv kv;
    get_ok(f, "k", 0, &kv);
    assert_kv(kv, "k", "v", 2, 3, 2, 0);
}

/* An empty value is a value: the key exists with version 1. */
static void test_put_empty_value(void **state)
{
    struct fx *f = FX(state);
    put_ok(f, "k", "", 2);
    struct store_kv kv;
    get_ok(f, "k", 0, &kv);
    assert_kv(kv, "k", "", 2, 2, 1, 0);
}

/* key_index.go: a tombstone ends the generation; the next put starts a new one at version 1. */
static void test_delete_then_recreate(void **state)
{
    struct fx *f = FX(state);
    put_ok(f, "a", "1", 2);
    put_ok(f, "a", "2", 3);
    int64_t deleted = -1, rev = -1;
    assert_rc(fx_del(f, "a", NULL, &deleted, &rev), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(rev, 4);
    get_absent(f, "a", 0);
    put_ok(f, "a", "3", 5);
    struct store_kv kv;
    get_ok(f, "a", 0, &kv);
    assert_kv(kv, "a", "3", 5, 5, 1, 0);
    /* the old generation is still readable at its revisions */
    get_ok(f, "a", 3, &kv);
    assert_kv(kv, "a", "2", 2, 3, 2, 0);
    get_absent(f, "a", 4);
}

/* apply.go Put: prev_kv is the key-value before the put, absent for a create. */
static void test_put_prev_kv(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    store_tx *tx = tc_write(t, f);
    struct store_put_req req = {.key = sb("k"), .value = sb("1"), .prev_kv = true};
    struct store_put_res res;
    assert_rc(store_put(tx, &req, &t->a, &res), 0);
    assert_int_equal(res.revision, 2);
    assert_null(res.prev_kv);
    assert_rc(tc_commit(t, tx), 0);

    tx = tc_write(t, f);
    req.value = sb("2");
    assert_rc(store_put(tx, &req, &t->a, &res), 0);
    assert_int_equal(res.revision, 3);
    assert_non_null(res.prev_kv);
    assert_kv(*res.prev_kv, "k", "1", 2, 2, 1, 0);

    req.prev_kv = false;
    req.value = sb("3");
    assert_rc(store_put(tx, &req, &t->a, &res), 0);
    assert_null(res.prev_kv);
    assert_rc(tc_commit(t, tx), 0);
}

/* apply.go Put with ignore_value: the previous value is kept; key.go checkPutRequest:
 * ignore_value with a value is VALUE_PROVIDED; apply.go: a missing key is KEY_NOT_FOUND. */
static void test_put_ignore_value(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    put_ok(f, "k", "orig", 2);

    store_tx *tx = tc_write(t, f);
    struct store_put_req req = {.key = sb("k"), .ignore_value = true};
    struct store_put_res res;
    assert_rc(store_put(tx, &req, &t->a, &res), 0);
    assert_int_equal(res.revision, 3);

    req.value = sb("x");
    assert_rc(store_put(tx, &req, &t->a, &res), CAIRN_E_VALUE_PROVIDED);

    struct store_put_req missing = {.key = sb("nope"), .ignore_value = true};
    assert_rc(store_put(tx, &missing, &t->a, &res), CAIRN_E_KEY_NOT_FOUND);
    /* the API check comes first: a value with ignore_value on a missing key */
    missing.value = sb("x");
    assert_rc(store_put(tx, &missing, &t->a, &res), CAIRN_E_VALUE_PROVIDED);
    /* failed requests changed nothing and the transaction is still usable */
    assert_int_equal(store_tx_rev(tx), 3);
    assert_rc(tc_commit(t, tx), 0);

    struct store_kv kv;
    get_ok(f, "k", 0, &kv);
    assert_kv(kv, "k", "orig", 2, 3, 2, 0);
    get_absent(f, "nope", 0);
    assert_int_equal(fx_rev(f), 3);
}

/* apply.go Put with ignore_lease: the key's lease is kept; LEASE_PROVIDED with a lease. */
static void test_put_ignore_lease(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    store_tx *tx = tc_write(t, f);
    assert_rc(store_lease_grant(tx, 7, 100), 0);
    assert_rc(tc_put(t, tx, "k", "v1", 7, NULL), 0);
    assert_rc(tc_commit(t, tx), 0);

    tx = tc_write(t, f);
    struct store_put_req req = {.key = sb("k"), .value = sb("v2"), .ignore_lease = true};
    struct store_put_res res;
    assert_rc(store_put(tx, &req, &t->a, &res), 0);
    assert_int_equal(res.revision, 3);
    req.lease = 7;
    assert_rc(store_put(tx, &req, &t->a, &res), CAIRN_E_LEASE_PROVIDED);
    struct store_put_req missing = {.key = sb("nope"), .ignore_lease = true};
    assert_rc(store_put(tx, &missing, &t->a, &res), CAIRN_E_KEY_NOT_FOUND);
    assert_rc(tc_commit(t, tx), 0);

    struct store_kv kv;
    get_ok(f, "k", 0, &kv);
    assert_kv(kv, "k", "v2", 2, 3, 2, 7);

    /* both flags: the key is re-put with its value and lease */
    tx = tc_write(t, f);
    struct store_put_req both = {.key = sb("k"), .ignore_value = true, .ignore_lease = true};
    assert_rc(store_put(tx, &both, &t->a, &res), 0);
    assert_rc(tc_commit(t, tx), 0);
    get_ok(f, "k", 0, &kv);
    assert_kv(kv, "k", "v2", 2, 4, 3, 7);
}

/* apply.go Put: a lease that the lessor does not know is LEASE_NOT_FOUND, nothing written. */
static void test_put_unknown_lease(void **state)
{
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "k", "v", 99, NULL), CAIRN_E_LEASE_NOT_FOUND);
    get_absent(f, "k", 0);
    assert_int_equal(fx_rev(f), 1);
}

/* key.go checkPutRequest/checkRangeRequest/checkDeleteRequest: an empty key is EMPTY_KEY. */
static void test_empty_key(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "", "v", 0, NULL), CAIRN_E_EMPTY_KEY);
    assert_rc(fx_del(f, "", NULL, NULL, NULL), CAIRN_E_EMPTY_KEY);
    assert_rc(fx_del(f, "", "z", NULL, NULL), CAIRN_E_EMPTY_KEY);
    struct store_range_req req = {.key = sb("")};
    struct store_range_res res;
    assert_rc(fx_range(f, &req, &res), CAIRN_E_EMPTY_KEY);
    req.range_end = sb("z");
    assert_rc(fx_range(f, &req, &res), CAIRN_E_EMPTY_KEY);
    (void)t;
    assert_int_equal(fx_rev(f), 1);
}

/* LMDB keys: 511 bytes is the most the store takes (cairn's KEY_TOO_LARGE above it). */
static void test_key_size_limit(void **state)
{
    struct fx *f = FX(state);
    char key[STORE_MAX_KEY_SIZE + 2];
    memset(key, 'k', sizeof key - 1);
    key[STORE_MAX_KEY_SIZE + 1] = '\0';
    assert_int_equal(strlen(key), 512);
    assert_rc(fx_put(f, key, "v", 0, NULL), CAIRN_E_KEY_TOO_LARGE);
    assert_int_equal(fx_rev(f), 1);

    key[STORE_MAX_KEY_SIZE] = '\0';
    assert_int_equal(strlen(key), 511);
    put_ok(f, key, "v", 2);
    struct store_kv kv;
    get_ok(f, key, 0, &kv);
    assert_kv(kv, key, "v", 2, 2, 1, 0);
}

/* A value above the store's hard cap is refused (cairn's VALUE_TOO_LARGE). */
static void test_value_size_limit(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    size_t n = STORE_MAX_VALUE_SIZE + 1;
    uint8_t *big = calloc(1, n);
    assert_non_null(big);
    store_tx *tx = tc_write(t, f);
    struct store_put_req req = {.key = sb("k"), .value = {big, n}};
    struct store_put_res res;
    int rc = store_put(tx, &req, &t->a, &res);
    free(big);
    assert_rc(rc, CAIRN_E_VALUE_TOO_LARGE);
    tc_end(t, tx);
    assert_int_equal(fx_rev(f), 1);
}

static void put_keys(struct fx *f, const char *const *keys, size_t n)
{
    for (size_t i = 0; i < n; i++)
        assert_rc(fx_put(f, keys[i], "v", 0, NULL), 0);
}

/* index.go Revisions: an empty range_end is one key; otherwise [key, range_end). */
static void test_range_single_and_interval(void **state)
{
    struct fx *f = FX(state);
    static const char *const keys[] = {"a", "b", "bb", "c", "d"};
    put_keys(f, keys, N_ELEMS(keys));
    struct store_range_res res;

    struct store_range_req one = {.key = sb("b")};
    assert_rc(fx_range(f, &one, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "b");
    assert_int_equal(res.count, 1);

    struct store_range_req absent = {.key = sb("ba")};
    assert_rc(fx_range(f, &absent, &res), 0);
    assert_no_keys(res.kvs, res.n_kvs);
    assert_int_equal(res.count, 0);

    struct store_range_req iv = {.key = sb("b"), .range_end = sb("d")};
    assert_rc(fx_range(f, &iv, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "b", "bb", "c");
    assert_int_equal(res.count, 3);
    assert_false(res.more);
    assert_int_equal(res.revision, 6);
}

/* apply.go mkGteRange: range_end "\0" means every key >= key; key "\0" with it is everything. */
static void test_range_end_nul(void **state)
{
    struct fx *f = FX(state);
    static const char *const keys[] = {"\x01", "a", "b", "c", "\xff"};
    put_keys(f, keys, N_ELEMS(keys));
    struct store_range_res res;

    struct store_range_req gte = {.key = sb("b"), .range_end = sbl("\0")};
    assert_rc(fx_range(f, &gte, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "b", "c", "\xff");
    assert_int_equal(res.count, 3);

    struct store_range_req all = {.key = sbl("\0"), .range_end = sbl("\0")};
    assert_rc(fx_range(f, &all, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "\x01", "a", "b", "c", "\xff");
    assert_int_equal(res.count, 5);
}

/* Keys compare as unsigned bytes (Go's bytes.Compare); a prefix whose last bytes are 0xff ends at
 * the next prefix (clientv3.GetPrefixRangeEnd("a\xff") == "b"; of "\xff", "\0"). */
static void test_range_prefix_with_ff_bytes(void **state)
{
    struct fx *f = FX(state);
    static const char *const keys[] = {"a",         "a\x7f", "a\x80", "a\xff",
                                       "a\xff\xff", "b",     "\xff",  "\xff\xff"};
    put_keys(f, keys, N_ELEMS(keys));
    struct store_range_res res;

    struct store_range_req a = {.key = sb("a"), .range_end = sb("b")};
    assert_rc(fx_range(f, &a, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "a", "a\x7f", "a\x80", "a\xff", "a\xff\xff");

    struct store_range_req aff = {.key = sb("a\xff"), .range_end = sb("b")};
    assert_rc(fx_range(f, &aff, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "a\xff", "a\xff\xff");
    assert_int_equal(res.count, 2);

    struct store_range_req ff = {.key = sb("\xff"), .range_end = sbl("\0")};
    assert_rc(fx_range(f, &ff, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "\xff", "\xff\xff");

    struct store_range_req hi = {.key = sb("a\x80"), .range_end = sb("a\xff\xff")};
    assert_rc(fx_range(f, &hi, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "a\x80", "a\xff");
}

/* index.go visit: iteration stops at the first key >= range_end, so range_end <= key is empty. */
static void test_range_end_not_after_key_is_empty(void **state)
{
    struct fx *f = FX(state);
    static const char *const keys[] = {"a", "b", "c"};
    put_keys(f, keys, N_ELEMS(keys));
    struct store_range_res res;

    struct store_range_req back = {.key = sb("c"), .range_end = sb("a")};
    assert_rc(fx_range(f, &back, &res), 0);
    assert_no_keys(res.kvs, res.n_kvs);
    assert_int_equal(res.count, 0);

    struct store_range_req same = {.key = sb("b"), .range_end = sb("b")};
    assert_rc(fx_range(f, &same, &res), 0);
    assert_no_keys(res.kvs, res.n_kvs);
    assert_int_equal(res.count, 0);

    int64_t deleted = -1, rev = -1;
    assert_rc(fx_del(f, "c", "a", &deleted, &rev), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(rev, 4);
    assert_int_equal(fx_rev(f), 4);
}

/* apply.go Range: count is every key in the range; more is set when the limit cut the result. */
static void test_range_count_and_limit(void **state)
{
    struct fx *f = FX(state);
    static const char *const keys[] = {"a", "b", "c", "d", "e"};
    put_keys(f, keys, N_ELEMS(keys));
    struct store_range_res res;

    struct store_range_req req = {.key = sb("a"), .range_end = sb("z"), .limit = 2};
    assert_rc(fx_range(f, &req, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "a", "b");
    assert_int_equal(res.count, 5);
    assert_true(res.more);

    req.limit = 5;
    assert_rc(fx_range(f, &req, &res), 0);
    assert_int_equal(res.n_kvs, 5);
    assert_int_equal(res.count, 5);
    assert_false(res.more);

    req.limit = 6;
    assert_rc(fx_range(f, &req, &res), 0);
    assert_int_equal(res.n_kvs, 5);
    assert_false(res.more);

    req.limit = 4;
    assert_rc(fx_range(f, &req, &res), 0);
    assert_int_equal(res.n_kvs, 4);
    assert_true(res.more);
}

/* Three keys whose targets all order differently:
 *   a: create 3, mod 6, version 3, value "3"
 *   b: create 4, mod 4, version 1, value "1"
 *   c: create 2, mod 7, version 2, value "2" */
static void make_sort_data(struct fx *f)
{
    put_ok(f, "c", "x", 2);
    put_ok(f, "a", "x", 3);
    put_ok(f, "b", "1", 4);
    put_ok(f, "a", "y", 5);
    put_ok(f, "a", "3", 6);
    put_ok(f, "c", "2", 7);
}

static void sorted(struct fx *f, int order, int target, int64_t limit, struct store_range_res *res)
{
    struct store_range_req req = {.key = sb("a"),
                                  .range_end = sb("z"),
                                  .sort_order = order,
                                  .sort_target = target,
                                  .limit = limit};
    assert_rc(fx_range(f, &req, res), 0);
    assert_int_equal(res->count, 3);
}

/* apply.go Range: sort by each target, both orders; kvSortBy* compare those fields. */
static void test_range_sort(void **state)
{
    struct fx *f = FX(state);
    make_sort_data(f);
    struct store_range_res r;
    struct store_kv kv;
    get_ok(f, "a", 0, &kv);
    assert_kv(kv, "a", "3", 3, 6, 3, 0);

    sorted(f, STORE_SORT_ASCEND, STORE_SORT_KEY, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "a", "b", "c");
    sorted(f, STORE_SORT_DESCEND, STORE_SORT_KEY, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "c", "b", "a");
    sorted(f, STORE_SORT_ASCEND, STORE_SORT_VERSION, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "b", "c", "a");
    sorted(f, STORE_SORT_DESCEND, STORE_SORT_VERSION, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "a", "c", "b");
    sorted(f, STORE_SORT_ASCEND, STORE_SORT_CREATE, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "c", "a", "b");
    sorted(f, STORE_SORT_DESCEND, STORE_SORT_CREATE, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "b", "a", "c");
    sorted(f, STORE_SORT_ASCEND, STORE_SORT_MOD, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "b", "a", "c");
    sorted(f, STORE_SORT_DESCEND, STORE_SORT_MOD, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "c", "a", "b");
    sorted(f, STORE_SORT_ASCEND, STORE_SORT_VALUE, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "b", "c", "a");
    sorted(f, STORE_SORT_DESCEND, STORE_SORT_VALUE, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "a", "c", "b");
}

/* apply.go Range: "sort ASCEND by default only when target is not 'KEY'". */
static void test_range_sort_order_none(void **state)
{
    struct fx *f = FX(state);
    make_sort_data(f);
    struct store_range_res r;
    sorted(f, STORE_SORT_NONE, STORE_SORT_KEY, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "a", "b", "c");
    sorted(f, STORE_SORT_NONE, STORE_SORT_VERSION, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "b", "c", "a");
    sorted(f, STORE_SORT_NONE, STORE_SORT_CREATE, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "c", "a", "b");
    sorted(f, STORE_SORT_NONE, STORE_SORT_MOD, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "b", "a", "c");
    sorted(f, STORE_SORT_NONE, STORE_SORT_VALUE, 0, &r);
    assert_keys(r.kvs, r.n_kvs, "b", "c", "a");
}

/* apply.go Range: with a sort order everything is fetched, sorted, then cut to the limit. */
static void test_range_sort_then_limit(void **state)
{
    struct fx *f = FX(state);
    make_sort_data(f);
    struct store_range_res r;
    sorted(f, STORE_SORT_DESCEND, STORE_SORT_MOD, 2, &r);
    assert_keys(r.kvs, r.n_kvs, "c", "a");
    assert_true(r.more);
    sorted(f, STORE_SORT_DESCEND, STORE_SORT_KEY, 1, &r);
    assert_keys(r.kvs, r.n_kvs, "c");
    assert_true(r.more);
    /* order NONE fetches only the first limit + 1 keys in key order (a, b) and sorts those by the
     * target (the differential test against etcd 3.4 confirms it): a, created before b */
    sorted(f, STORE_SORT_NONE, STORE_SORT_CREATE, 1, &r);
    assert_keys(r.kvs, r.n_kvs, "a");
    assert_true(r.more);
    sorted(f, STORE_SORT_ASCEND, STORE_SORT_VALUE, 3, &r);
    assert_keys(r.kvs, r.n_kvs, "b", "c", "a");
    assert_false(r.more);
}

/* apply.go Range: keys_only clears values, count_only returns no kvs but the count. */
static void test_range_keys_only_count_only(void **state)
{
    struct fx *f = FX(state);
    make_sort_data(f);
    struct store_range_res r;
    struct store_range_req req = {.key = sb("a"), .range_end = sb("z"), .keys_only = true};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "b", "c");
    assert_kv(r.kvs[0], "a", "", 3, 6, 3, 0);
    assert_kv(r.kvs[1], "b", "", 4, 4, 1, 0);
    assert_kv(r.kvs[2], "c", "", 2, 7, 2, 0);

    struct store_range_req cnt = {.key = sb("a"), .range_end = sb("z"), .count_only = true};
    assert_rc(fx_range(f, &cnt, &r), 0);
    assert_int_equal(r.n_kvs, 0);
    assert_int_equal(r.count, 3);
    assert_false(r.more);
    assert_int_equal(r.revision, 7);

    cnt.limit = 1;
    assert_rc(fx_range(f, &cnt, &r), 0);
    assert_int_equal(r.n_kvs, 0);
    assert_int_equal(r.count, 3);
    assert_false(r.more);

    cnt.key = sb("b");
    cnt.range_end = sb("");
    assert_rc(fx_range(f, &cnt, &r), 0);
    assert_int_equal(r.count, 1);
}

/* apply.go Range: pruneKVs applies the min/max filters before the limit; count is unfiltered. */
static void test_range_revision_filters(void **state)
{
    struct fx *f = FX(state);
    make_sort_data(f);
    struct store_range_res r;
    struct store_range_req req = {.key = sb("a"), .range_end = sb("z")};

    req.min_mod_revision = 5;
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "c");
    assert_int_equal(r.count, 3);

    req = (struct store_range_req){.key = sb("a"), .range_end = sb("z"), .max_mod_revision = 6};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "b");
    assert_int_equal(r.count, 3);

    req = (struct store_range_req){.key = sb("a"), .range_end = sb("z"), .min_create_revision = 3};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "b");

    req = (struct store_range_req){.key = sb("a"), .range_end = sb("z"), .max_create_revision = 3};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "c");

    req = (struct store_range_req){
        .key = sb("a"), .range_end = sb("z"), .min_create_revision = 3, .max_create_revision = 3};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a");
    assert_int_equal(r.count, 3);

    /* the filter runs before the limit: the first key in order ("a") is filtered out, "b" stays */
    req = (struct store_range_req){
        .key = sb("a"), .range_end = sb("z"), .max_mod_revision = 4, .limit = 1};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "b");
    assert_false(r.more);
    assert_int_equal(r.count, 3);

    req = (struct store_range_req){
        .key = sb("a"), .range_end = sb("z"), .min_mod_revision = 5, .limit = 1};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a");
    assert_true(r.more);
    assert_int_equal(r.count, 3);

    /* and count_only ignores the filters */
    req = (struct store_range_req){
        .key = sb("a"), .range_end = sb("z"), .min_mod_revision = 7, .count_only = true};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_int_equal(r.count, 3);
    assert_int_equal(r.n_kvs, 0);
}

/* kvstore_txn.go rangeKeys: a read at a past revision sees the keys as of then; the header revision
 * is the current one (RangeResult.Rev = curRev). */
static void test_range_past_revisions(void **state)
{
    struct fx *f = FX(state);
    put_ok(f, "a", "1", 2);
    put_ok(f, "b", "1", 3);
    put_ok(f, "a", "2", 4);
    assert_rc(fx_del(f, "b", NULL, NULL, NULL), 0); /* 5 */
    put_ok(f, "c", "1", 6);

    struct store_kv kv;
    get_ok(f, "a", 2, &kv);
    assert_kv(kv, "a", "1", 2, 2, 1, 0);
    get_ok(f, "a", 3, &kv);
    assert_kv(kv, "a", "1", 2, 2, 1, 0);
    get_ok(f, "a", 4, &kv);
    assert_kv(kv, "a", "2", 2, 4, 2, 0);
    get_ok(f, "b", 4, &kv);
    assert_kv(kv, "b", "1", 3, 3, 1, 0);
    get_absent(f, "b", 5);
    get_absent(f, "b", 2);
    get_absent(f, "c", 5);
    get_ok(f, "c", 6, &kv);
    assert_kv(kv, "c", "1", 6, 6, 1, 0);
    get_absent(f, "a", 1);

    struct store_range_res r;
    struct store_range_req all = {.key = sbl("\0"), .range_end = sbl("\0"), .revision = 3};
    assert_rc(fx_range(f, &all, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "b");
    assert_int_equal(r.count, 2);
    assert_int_equal(r.revision, 6);
    assert_kv(r.kvs[0], "a", "1", 2, 2, 1, 0);

    all.revision = 5;
    assert_rc(fx_range(f, &all, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a");
    assert_int_equal(r.revision, 6);

    all.revision = 6;
    assert_rc(fx_range(f, &all, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "c");
}

/* kvstore_txn.go rangeKeys: "if rev > curRev { ... ErrFutureRev }". */
static void test_range_future_revision(void **state)
{
    struct fx *f = FX(state);
    put_ok(f, "a", "1", 2);
    struct store_range_res r;
    struct store_range_req req = {.key = sb("a"), .revision = 3};
    assert_rc(fx_range(f, &req, &r), CAIRN_E_FUTURE_REV);
    req.revision = 2;
    assert_rc(fx_range(f, &req, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    req.revision = 1;
    assert_rc(fx_range(f, &req, &r), 0);
    assert_int_equal(r.n_kvs, 0);
}

/* kvstore_txn.go deleteRange/delete: one revision for all keys, sub-revisions in key order;
 * apply.go DeleteRange: prev_kvs are the range before the delete, in key order. */
static void test_delete_range(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    static const char *const keys[] = {"d", "c", "b", "a"};
    put_keys(f, keys, N_ELEMS(keys));            /* d 2, c 3, b 4, a 5 */
    assert_rc(fx_put(f, "c", "v2", 0, NULL), 0); /* 6 */

    store_tx *tx = tc_write(t, f);
    struct store_delete_req req = {.key = sb("b"), .range_end = sb("d"), .prev_kv = true};
    struct store_delete_res res;
    assert_rc(store_delete_range(tx, &req, &t->a, &res), 0);
    assert_int_equal(res.deleted, 2);
    assert_int_equal(res.revision, 7);
    assert_int_equal(res.n_prev_kvs, 2);
    assert_kv(res.prev_kvs[0], "b", "v", 4, 4, 1, 0);
    assert_kv(res.prev_kvs[1], "c", "v2", 3, 6, 2, 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(fx_rev(f), 7);

    struct store_event ev[8];
    size_t n = tc_events(t, f, 7, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].type, STORE_EVENT_DELETE);
    assert_sb(ev[0].kv.key, "b");
    assert_int_equal(ev[0].kv.mod_revision, 7);
    assert_int_equal(ev[0].sub_revision, 0);
    assert_int_equal(ev[1].type, STORE_EVENT_DELETE);
    assert_sb(ev[1].kv.key, "c");
    assert_int_equal(ev[1].kv.mod_revision, 7);
    assert_int_equal(ev[1].sub_revision, 1);

    struct store_range_res r;
    struct store_range_req all = {.key = sbl("\0"), .range_end = sbl("\0")};
    assert_rc(fx_range(f, &all, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "d");
}

/* kvstore_txn.go DeleteRange: "return 0, tw.beginRev" — deleting nothing makes no revision. */
static void test_delete_nothing_makes_no_revision(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    put_ok(f, "a", "1", 2);
    int64_t deleted = -1, rev = -1;
    assert_rc(fx_del(f, "zz", NULL, &deleted, &rev), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(rev, 2);
    assert_rc(fx_del(f, "b", "z", &deleted, &rev), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(rev, 2);
    assert_int_equal(fx_rev(f), 2);

    /* a deleted key deleted again is nothing too */
    assert_rc(fx_del(f, "a", NULL, &deleted, &rev), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(rev, 3);
    assert_rc(fx_del(f, "a", NULL, &deleted, &rev), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(rev, 3);

    store_tx *tx = tc_write(t, f);
    struct store_delete_req req = {.key = sb("a"), .prev_kv = true};
    struct store_delete_res res;
    assert_rc(store_delete_range(tx, &req, &t->a, &res), 0);
    assert_int_equal(res.n_prev_kvs, 0);
    assert_int_equal(res.deleted, 0);
    assert_rc(tc_commit(t, tx), 0);

    put_ok(f, "b", "1", 4);
    struct store_event ev[8];
    size_t n = tc_events(t, f, 2, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 3);
    assert_int_equal(ev[1].kv.mod_revision, 3);
    assert_int_equal(ev[2].kv.mod_revision, 4);
}

/* mkGteRange in DeleteRange too: range_end "\0" deletes every key >= key. */
static void test_delete_range_end_nul(void **state)
{
    struct fx *f = FX(state);
    static const char *const keys[] = {"a", "b", "c", "\xff"};
    put_keys(f, keys, N_ELEMS(keys));
    struct tcase *t = TC(state);
    store_tx *tx = tc_write(t, f);
    struct store_delete_req req = {.key = sb("b"), .range_end = sbl("\0")};
    struct store_delete_res res;
    assert_rc(store_delete_range(tx, &req, &t->a, &res), 0);
    assert_int_equal(res.deleted, 3);
    assert_int_equal(res.revision, 6);
    assert_int_equal(res.n_prev_kvs, 0);
    assert_rc(tc_commit(t, tx), 0);
    struct store_range_res r;
    struct store_range_req all = {.key = sbl("\0"), .range_end = sbl("\0")};
    assert_rc(fx_range(f, &all, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a");
}

/* Several requests in one write transaction (group commit) still take one revision each, and a
 * reader sees none of them before the commit. */
static void test_group_commit_revisions(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    store_tx *tx = tc_write(t, f);
    struct store_put_res pr;
    assert_rc(tc_put(t, tx, "a", "1", 0, &pr), 0);
    assert_int_equal(pr.revision, 2);
    assert_rc(tc_put(t, tx, "b", "1", 0, &pr), 0);
    assert_int_equal(pr.revision, 3);
    assert_int_equal(store_tx_rev(tx), 3);
    struct store_range_req q = {.key = sb("a")};
    struct store_range_res r;
    assert_rc(store_range(tx, &q, &t->a, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    assert_kv(r.kvs[0], "a", "1", 2, 2, 1, 0);
    assert_int_equal(r.revision, 3);
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(fx_rev(f), 3);
}

/* apply.go Range sorts the full key-values and clears values for keys_only only when assembling
 * the response, so keys_only with a VALUE sort still orders by the values. */
static void test_range_keys_only_sorted_by_value(void **state)
{
    struct fx *f = FX(state);
    make_sort_data(f);
    struct store_range_req req = {.key = sb("a"),
                                  .range_end = sb("z"),
                                  .keys_only = true,
                                  .sort_order = STORE_SORT_DESCEND,
                                  .sort_target = STORE_SORT_VALUE,
                                  .limit = 2};
    struct store_range_res r;
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "c");
    assert_int_equal(r.kvs[0].value.len, 0);
    assert_true(r.more);
}

/* Keys and values are byte strings: NUL bytes inside them are data. */
static void test_binary_keys_and_values(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    store_tx *tx = tc_write(t, f);
    struct store_put_req p1 = {.key = sbl("a\0b"), .value = sbl("x\0y\0")};
    struct store_put_req p2 = {.key = sbl("a"), .value = sbl("plain")};
    struct store_put_req p3 = {.key = sbl("a\0"), .value = sbl("")};
    struct store_put_res res;
    assert_rc(store_put(tx, &p1, &t->a, &res), 0);
    assert_rc(store_put(tx, &p2, &t->a, &res), 0);
    assert_rc(store_put(tx, &p3, &t->a, &res), 0);
    assert_rc(tc_commit(t, tx), 0);

    struct store_range_req one = {.key = sbl("a\0b")};
    struct store_range_res r;
    assert_rc(fx_range(f, &one, &r), 0);
    assert_int_equal(r.n_kvs, 1);
    assert_int_equal(r.kvs[0].key.len, 3);
    assert_memory_equal(r.kvs[0].key.data, "a\0b", 3);
    assert_int_equal(r.kvs[0].value.len, 4);
    assert_memory_equal(r.kvs[0].value.data, "x\0y\0", 4);

    struct store_range_req all = {.key = sbl("a"), .range_end = sbl("b")};
    assert_rc(fx_range(f, &all, &r), 0);
    assert_int_equal(r.n_kvs, 3);
    assert_int_equal(r.kvs[0].key.len, 1);
    assert_int_equal(r.kvs[1].key.len, 2);
    assert_int_equal(r.kvs[2].key.len, 3);
    assert_int_equal(r.kvs[1].create_revision, 4);
}

/* Values far above a page (LMDB overflow pages) come back whole, at the current and a past
 * revision. */
static void test_large_values(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    size_t n = 1u << 20;
    uint8_t *big = malloc(n);
    assert_non_null(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (uint8_t)(i * 7 + (i >> 11));
    store_tx *tx = tc_write(t, f);
    struct store_put_req req = {.key = sb("big"), .value = {big, n}};
    struct store_put_res res;
    int rc = store_put(tx, &req, &t->a, &res);
    if (rc == 0)
        rc = tc_commit(t, tx);
    else
        tc_end(t, tx);
    assert_rc(rc, 0);
    assert_rc(fx_put(f, "big", "small", 0, NULL), 0);

    struct store_range_req q = {.key = sb("big"), .revision = 2};
    struct store_range_res r;
    rc = fx_range(f, &q, &r);
    bool same = rc == 0 && r.n_kvs == 1 && r.kvs[0].value.len == n &&
                memcmp(r.kvs[0].value.data, big, n) == 0;
    free(big);
    assert_rc(rc, 0);
    assert_true(same);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "big", 0, &kv), 1);
    assert_kv(kv, "big", "small", 2, 3, 2, 0);
}

/* A read transaction is a snapshot: later commits change neither its revision nor its data, and
 * a revision committed after it began is a future one for it. */
static void test_read_snapshot(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    put_ok(f, "a", "1", 2);
    store_tx *r = tc_read(t, f);
    put_ok(f, "a", "2", 3);
    put_ok(f, "b", "1", 4);
    assert_int_equal(store_tx_rev(r), 2);
    struct store_range_req q = {.key = sb("a"), .range_end = sb("z")};
    struct store_range_res res;
    assert_rc(store_range(r, &q, &t->a, &res), 0);
    assert_keys(res.kvs, res.n_kvs, "a");
    assert_kv(res.kvs[0], "a", "1", 2, 2, 1, 0);
    assert_int_equal(res.revision, 2);
    q.revision = 3;
    assert_rc(store_range(r, &q, &t->a, &res), CAIRN_E_FUTURE_REV);
    tc_end(t, r);
    assert_int_equal(fx_rev(f), 4);
}

/* ignore_value/ignore_lease on a deleted key: KEY_NOT_FOUND, as for one never written. */
static void test_put_ignore_on_deleted_key(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    put_ok(f, "k", "1", 2);
    assert_rc(fx_del(f, "k", NULL, NULL, NULL), 0);
    store_tx *tx = tc_write(t, f);
    struct store_put_req req = {.key = sb("k"), .ignore_value = true};
    struct store_put_res res;
    assert_rc(store_put(tx, &req, &t->a, &res), CAIRN_E_KEY_NOT_FOUND);
    req = (struct store_put_req){.key = sb("k"), .value = sb("x"), .ignore_lease = true};
    assert_rc(store_put(tx, &req, &t->a, &res), CAIRN_E_KEY_NOT_FOUND);
    assert_rc(tc_commit(t, tx), 0);
    assert_int_equal(fx_rev(f), 3);
}

/* apply.go Range: a limit <= 0 is no limit ("if r.Limit > 0 && len(rr.KVs) > int(r.Limit)"), and
 * mvcc's "limit <= 0 || limit > len(revpairs)" takes everything, also for the largest limit (whose
 * limit+1 wraps in etcd). */
static void test_range_extreme_limits(void **state)
{
    struct fx *f = FX(state);
    static const char *const keys[] = {"a", "b", "c"};
    put_keys(f, keys, N_ELEMS(keys));
    struct store_range_res r;
    struct store_range_req req = {.key = sb("a"), .range_end = sb("z"), .limit = INT64_MAX};
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "b", "c");
    assert_false(r.more);
    req.sort_order = STORE_SORT_DESCEND;
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "c", "b", "a");
    assert_false(r.more);
    req.sort_order = STORE_SORT_NONE;
    req.limit = -1;
    assert_rc(fx_range(f, &req, &r), 0);
    assert_keys(r.kvs, r.n_kvs, "a", "b", "c");
    assert_false(r.more);
}

/* common/error.h: an enum outside its domain is INVALID_ARGUMENT (etcd's sort.Sort(nil) would
 * panic on an unknown sort target). */
static void test_range_bad_sort_enums(void **state)
{
    struct fx *f = FX(state);
    put_ok(f, "a", "1", 2);
    struct store_range_res r;
    struct store_range_req req = {
        .key = sb("a"), .range_end = sb("z"), .sort_order = STORE_SORT_ASCEND, .sort_target = 9};
    assert_rc(fx_range(f, &req, &r), CAIRN_E_INVALID_ARGUMENT);
    req.sort_target = STORE_SORT_KEY;
    req.sort_order = 3;
    assert_rc(fx_range(f, &req, &r), CAIRN_E_INVALID_ARGUMENT);
    req.sort_order = -1;
    assert_rc(fx_range(f, &req, &r), CAIRN_E_INVALID_ARGUMENT);
}

/* Range bounds have no size limit in etcd: a key or range_end longer than any stored key still
 * compares bytewise (a key that is a prefix of the bound sorts before it). */
static void test_range_long_bounds(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    char k511[STORE_MAX_KEY_SIZE + 1], k510b[STORE_MAX_KEY_SIZE + 1], bound[700];
    memset(k511, 'a', STORE_MAX_KEY_SIZE);
    k511[STORE_MAX_KEY_SIZE] = '\0';
    memcpy(k510b, k511, sizeof k510b);
    k510b[STORE_MAX_KEY_SIZE - 1] = 'b';
    put_ok(f, k511, "1", 2);
    put_ok(f, k510b, "1", 3);
    memset(bound, 'a', sizeof bound - 1);
    bound[sizeof bound - 1] = '\0';

    struct store_range_res r;
    /* [a, "a"*699): holds "a"*511, not "a"*510 "b" */
    struct store_range_req below = {.key = sb("a"), .range_end = sb(bound)};
    assert_rc(fx_range(f, &below, &r), 0);
    assert_keys(r.kvs, r.n_kvs, k511);
    /* ["a"*699, \0): holds "a"*510 "b" only */
    struct store_range_req above = {.key = sb(bound), .range_end = sbl("\0")};
    assert_rc(fx_range(f, &above, &r), 0);
    assert_keys(r.kvs, r.n_kvs, k510b);
    /* a single key longer than any key: nothing */
    struct store_range_req one = {.key = sb(bound)};
    assert_rc(fx_range(f, &one, &r), 0);
    assert_int_equal(r.n_kvs, 0);
    int64_t deleted = -1;
    assert_rc(fx_del(f, bound, NULL, &deleted, NULL), 0);
    assert_int_equal(deleted, 0);
    assert_rc(fx_del(f, bound, "b", &deleted, NULL), 0);
    assert_int_equal(deleted, 1);
    (void)t;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_empty_store_is_revision_1, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_revisions_and_versions, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_same_value_makes_new_revision, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_empty_value, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_delete_then_recreate, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_prev_kv, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_ignore_value, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_ignore_lease, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_unknown_lease, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_empty_key, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_key_size_limit, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_value_size_limit, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_single_and_interval, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_end_nul, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_prefix_with_ff_bytes, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_end_not_after_key_is_empty, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_count_and_limit, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_sort, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_sort_order_none, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_sort_then_limit, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_keys_only_count_only, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_revision_filters, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_past_revisions, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_future_revision, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_delete_range, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_delete_nothing_makes_no_revision, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_delete_range_end_nul, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_group_commit_revisions, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_keys_only_sorted_by_value, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_binary_keys_and_values, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_large_values, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_read_snapshot, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_put_ignore_on_deleted_key, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_extreme_limits, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_bad_sort_enums, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_range_long_bounds, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
