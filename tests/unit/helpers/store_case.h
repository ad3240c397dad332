/* tests/unit/helpers/store_case.h — per-test state of the store's unit tests, and short builders.
 *
 * A test's cmocka state is a struct tcase: its stores (fixtures), an arena for results of requests
 * the test makes directly, and the transactions it has open. tc_teardown() ends those transactions
 * and closes (and removes) every store, also when the test failed half-way, so no temporary
 * directory outlives its test and no store is closed with a transaction still open. */
#ifndef CAIRN_TESTS_STORE_CASE_H
#define CAIRN_TESTS_STORE_CASE_H

#include "tests/unit/helpers/fixture.h"

#define TC_MAX_TX 8
#define TC_MAX_FX 4

struct tcase {
    struct fx *fx[TC_MAX_FX];    /* open stores; fx[0] is the one tc_setup opens */
    struct arena a;              /* results of the test's own requests */
    store_tx *tx[TC_MAX_TX];     /* transactions begun through tc_write/tc_read, not yet ended */
    struct fx *tx_fx[TC_MAX_TX]; /* the store each of them belongs to */
};

/* cmocka setup: a tcase with one store of default options in fx[0]. */
int tc_setup(void **state);

/* cmocka setup: a tcase without a store (the test opens its own with tc_open). */
int tc_setup_bare(void **state);

/* cmocka teardown: ends open transactions, closes and removes all stores, frees the tcase. */
int tc_teardown(void **state);

/* Opens one more temporary store (opts may be NULL) owned by the tcase. */
struct fx *tc_open(struct tcase *t, const struct store_options *opts);

/* Closes and removes a store of the tcase before the teardown (ending its open transactions). */
void tc_close(struct tcase *t, struct fx *f);

/* Begins a write / read transaction on f, tracked by the tcase. Both end f's helper read
 * transaction first (fx_reset), so a test never holds two read transactions on one thread. */
store_tx *tc_write(struct tcase *t, struct fx *f);
store_tx *tc_read(struct tcase *t, struct fx *f);

/* Commits (durably) a tracked write transaction; returns store_tx_commit's result. */
int tc_commit(struct tcase *t, store_tx *tx);

/* Ends (aborts) a tracked transaction. */
void tc_end(struct tcase *t, store_tx *tx);

/* Asserts that an error code is the expected one, naming both by their messages. */
#define assert_rc(got, want) tc_assert_rc((got), (want), #got, __FILE__, __LINE__)
void tc_assert_rc(int got, int want, const char *expr, const char *file, int line);

/* Asserts a key-value's fields (key and value as C strings; value NULL: not checked). */
#define assert_kv(kv, key, value, create, mod, version, lease) \
    tc_assert_kv(&(kv), (key), (value), (create), (mod), (version), (lease), __FILE__, __LINE__)
void tc_assert_kv(const struct store_kv *kv, const char *key, const char *value, int64_t create,
                  int64_t mod, int64_t version, int64_t lease, const char *file, int line);

/* Asserts that a store_bytes equals a C string. */
#define assert_sb(b, s) tc_assert_sb((b), (s), __FILE__, __LINE__)
void tc_assert_sb(store_bytes b, const char *s, const char *file, int line);

/* Asserts that a range result holds exactly these keys, in this order:
 * assert_keys(res.kvs, res.n_kvs, "a", "b"). */
#define assert_keys(kvs, n, ...)                                                                \
    tc_assert_keys((kvs), (n), (const char *const[]){__VA_ARGS__},                              \
                   sizeof((const char *const[]){__VA_ARGS__}) / sizeof(const char *), __FILE__, \
                   __LINE__)
#define assert_no_keys(kvs, n) tc_assert_keys((kvs), (n), NULL, 0, __FILE__, __LINE__)
void tc_assert_keys(const struct store_kv *kvs, size_t n, const char *const *keys, size_t n_keys,
                    const char *file, int line);

/* store_bytes of a literal that may hold NUL bytes: sbl("\0") is the one byte 0. */
#define sbl(lit) ((store_bytes){(const uint8_t *)(lit), sizeof(lit) - 1})

/* Requests with their results from t->a. */
int tc_put(struct tcase *t, store_tx *tx, const char *key, const char *value, int64_t lease,
           struct store_put_res *res);

/* Reads the events of f's history from from_rev on, in a fresh read transaction, into out (at most
 * max); returns how many. Fails the test on an error. Results live in t->a until tc_reset. */
size_t tc_events(struct tcase *t, struct fx *f, int64_t from_rev, bool prev_kv,
                 struct store_event *out, size_t max);

/* Resets t->a. */
void tc_reset(struct tcase *t);

/* Builders of txn parts. Strings are borrowed (string literals in tests). */
struct store_op op_put(const char *key, const char *value);
struct store_op op_del(const char *key, const char *range_end);
struct store_op op_get(const char *key, const char *range_end);
struct store_op op_txn(struct store_txn_req *txn);
struct store_compare cmp_num(int target, int result, const char *key, int64_t number);
struct store_compare cmp_value(int result, const char *key, const char *value);

/* Number of elements of an array. */
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

#endif
