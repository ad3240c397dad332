/* tests/unit/helpers/store_case.c — per-test state of the store's unit tests. */
#include "tests/unit/helpers/store_case.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int tc_setup_bare(void **state)
{
    struct tcase *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    *state = t;
    return 0;
}

int tc_setup(void **state)
{
    if (tc_setup_bare(state) != 0)
        return -1;
    struct tcase *t = *state;
    struct fx *f = tc_open(t, NULL);
    return f ? 0 : -1;
}

static void end_tx_of(struct tcase *t, struct fx *f)
{
    for (size_t i = 0; i < TC_MAX_TX; i++) {
        if (t->tx[i] && (f == NULL || t->tx_fx[i] == f)) {
            store_tx_end(t->tx[i]);
            t->tx[i] = NULL;
            t->tx_fx[i] = NULL;
        }
    }
}

int tc_teardown(void **state)
{
    struct tcase *t = *state;
    if (!t)
        return 0;
    end_tx_of(t, NULL);
    arena_free(&t->a);
    for (size_t i = 0; i < TC_MAX_FX; i++) {
        fx_close(t->fx[i]);
        t->fx[i] = NULL;
    }
    free(t);
    *state = NULL;
    return 0;
}

struct fx *tc_open(struct tcase *t, const struct store_options *opts)
{
    for (size_t i = 0; i < TC_MAX_FX; i++) {
        if (!t->fx[i]) {
            t->fx[i] = fx_open(opts);
            return t->fx[i];
        }
    }
    fail_msg("tc_open: more than %d stores in one test", TC_MAX_FX);
    return NULL;
}

void tc_close(struct tcase *t, struct fx *f)
{
    end_tx_of(t, f);
    for (size_t i = 0; i < TC_MAX_FX; i++) {
        if (t->fx[i] == f)
            t->fx[i] = NULL;
    }
    fx_close(f);
}

static void track(struct tcase *t, struct fx *f, store_tx *tx)
{
    for (size_t i = 0; i < TC_MAX_TX; i++) {
        if (!t->tx[i]) {
            t->tx[i] = tx;
            t->tx_fx[i] = f;
            return;
        }
    }
    store_tx_end(tx);
    fail_msg("more than %d open transactions in one test", TC_MAX_TX);
}

static void untrack(struct tcase *t, store_tx *tx)
{
    for (size_t i = 0; i < TC_MAX_TX; i++) {
        if (t->tx[i] == tx) {
            t->tx[i] = NULL;
            t->tx_fx[i] = NULL;
            return;
        }
    }
}

store_tx *tc_write(struct tcase *t, struct fx *f)
{
    fx_reset(f);
    store_tx *tx = NULL;
    int rc = store_tx_begin_write(f->st, &tx);
    if (rc != 0)
        fail_msg("store_tx_begin_write: %s", cairn_strerror(rc));
    track(t, f, tx);
    return tx;
}

store_tx *tc_read(struct tcase *t, struct fx *f)
{
    fx_reset(f);
    store_tx *tx = NULL;
    int rc = store_tx_begin_read(f->st, &tx);
    if (rc != 0)
        fail_msg("store_tx_begin_read: %s", cairn_strerror(rc));
    track(t, f, tx);
    return tx;
}

int tc_commit(struct tcase *t, store_tx *tx)
{
    untrack(t, tx);
    return store_tx_commit(tx, true);
}

void tc_end(struct tcase *t, store_tx *tx)
{
    untrack(t, tx);
    store_tx_end(tx);
}

void tc_reset(struct tcase *t)
{
    arena_reset(&t->a);
}

void tc_assert_rc(int got, int want, const char *expr, const char *file, int line)
{
    if (got == want)
        return;
    print_error("%s is %d (%s), expected %d (%s)\n", expr, got, cairn_strerror(got), want,
                cairn_strerror(want));
    _fail(file, line);
}

static void print_bytes(const char *what, store_bytes b)
{
    print_error("%s \"", what);
    for (size_t i = 0; i < b.len; i++) {
        if (b.data[i] >= 0x20 && b.data[i] < 0x7f)
            print_error("%c", b.data[i]);
        else
            print_error("\\x%02x", b.data[i]);
    }
    print_error("\"");
}

void tc_assert_sb(store_bytes b, const char *s, const char *file, int line)
{
    if (sb_eq(b, s))
        return;
    print_bytes("bytes", b);
    print_error(", expected \"%s\"\n", s);
    _fail(file, line);
}

void tc_assert_kv(const struct store_kv *kv, const char *key, const char *value, int64_t create,
                  int64_t mod, int64_t version, int64_t lease, const char *file, int line)
{
    bool ok = sb_eq(kv->key, key) && (value == NULL || sb_eq(kv->value, value)) &&
              kv->create_revision == create && kv->mod_revision == mod && kv->version == version &&
              kv->lease == lease;
    if (ok)
        return;
    print_bytes("kv: key", kv->key);
    print_bytes(" value", kv->value);
    print_error(" create %" PRId64 " mod %" PRId64 " version %" PRId64 " lease %" PRId64 "\n",
                kv->create_revision, kv->mod_revision, kv->version, kv->lease);
    print_error("expected key \"%s\" value \"%s\" create %" PRId64 " mod %" PRId64
                " version %" PRId64 " lease %" PRId64 "\n",
                key, value ? value : "(any)", create, mod, version, lease);
    _fail(file, line);
}

void tc_assert_keys(const struct store_kv *kvs, size_t n, const char *const *keys, size_t n_keys,
                    const char *file, int line)
{
    bool ok = n == n_keys;
    for (size_t i = 0; ok && i < n; i++)
        ok = sb_eq(kvs[i].key, keys[i]);
    if (ok)
        return;
    print_error("keys:");
    for (size_t i = 0; i < n; i++)
        print_bytes(" ", kvs[i].key);
    print_error("\nexpected:");
    for (size_t i = 0; i < n_keys; i++)
        print_error(" \"%s\"", keys[i]);
    print_error("\n");
    _fail(file, line);
}

int tc_put(struct tcase *t, store_tx *tx, const char *key, const char *value, int64_t lease,
           struct store_put_res *res)
{
    struct store_put_req req = {.key = sb(key), .value = sb(value), .lease = lease};
    struct store_put_res scratch;
    return store_put(tx, &req, &t->a, res ? res : &scratch);
}

size_t tc_events(struct tcase *t, struct fx *f, int64_t from_rev, bool prev_kv,
                 struct store_event *out, size_t max)
{
    store_tx *tx = tc_read(t, f);
    struct store_feed feed;
    int rc = store_feed_open(tx, from_rev, prev_kv, &feed);
    if (rc != 0) {
        tc_end(t, tx);
        fail_msg("store_feed_open(%lld): %s", (long long)from_rev, cairn_strerror(rc));
    }
    size_t n = 0;
    for (;;) {
        struct store_event ev;
        rc = store_feed_next(&feed, &t->a, &ev);
        if (rc <= 0)
            break;
        if (n == max) {
            rc = 1;
            break;
        }
        out[n++] = ev;
    }
    store_feed_close(&feed);
    /* The events borrow from the transaction's map only for read transactions' bytes; keep them
     * valid by copying what the tests look at into the arena before ending it. */
    for (size_t i = 0; i < n; i++) {
        struct store_kv *kvs[2] = {&out[i].kv, out[i].prev_kv};
        for (size_t j = 0; j < 2; j++) {
            if (!kvs[j])
                continue;
            if (j == 1) {
                struct store_kv *copy = arena_alloc(&t->a, sizeof *copy);
                *copy = *kvs[j];
                out[i].prev_kv = copy;
                kvs[j] = copy;
            }
            kvs[j]->key.data = arena_dup(&t->a, kvs[j]->key.data, kvs[j]->key.len);
            kvs[j]->value.data = arena_dup(&t->a, kvs[j]->value.data, kvs[j]->value.len);
        }
    }
    tc_end(t, tx);
    if (rc < 0)
        fail_msg("store_feed_next: %s", cairn_strerror(rc));
    if (rc == 1)
        fail_msg("tc_events: more than %zu events", max);
    return n;
}

struct store_op op_put(const char *key, const char *value)
{
    struct store_op op = {.type = STORE_OP_PUT};
    op.u.put.key = sb(key);
    op.u.put.value = sb(value);
    return op;
}

struct store_op op_del(const char *key, const char *range_end)
{
    struct store_op op = {.type = STORE_OP_DELETE};
    op.u.del.key = sb(key);
    op.u.del.range_end = sb(range_end);
    return op;
}

struct store_op op_get(const char *key, const char *range_end)
{
    struct store_op op = {.type = STORE_OP_RANGE};
    op.u.range.key = sb(key);
    op.u.range.range_end = sb(range_end);
    return op;
}

struct store_op op_txn(struct store_txn_req *txn)
{
    struct store_op op = {.type = STORE_OP_TXN};
    op.u.txn = txn;
    return op;
}

struct store_compare cmp_num(int target, int result, const char *key, int64_t number)
{
    struct store_compare c = {.result = result, .target = target, .key = sb(key), .number = number};
    return c;
}

struct store_compare cmp_value(int result, const char *key, const char *value)
{
    struct store_compare c = {
        .result = result, .target = STORE_CMP_VALUE, .key = sb(key), .value = sb(value)};
    return c;
}
