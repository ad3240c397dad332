/* tests/unit/test_store_txn.c — etcd's mini-transactions: compares, branches, revisions, checks.
 *
 * Expected behaviour is etcd 3.4's: etcdserver/apply.go (Txn, compareToPath, applyCompare,
 * compareKV, applyTxn, checkRequests, checkRequestPut, checkRequestRange), mvcc/kvstore_txn.go
 * (storeTxnWrite's revisions) and etcdserver/api/v3rpc/key.go (checkTxnRequest, checkIntervals). */
#include <stdio.h>
#include <string.h>

#include "tests/unit/helpers/store_case.h"

#define FX(state) (((struct tcase *)*(state))->fx[0])
#define TC(state) ((struct tcase *)*(state))

/* Runs a txn in its own write transaction, which is committed whatever the txn returned: a failed
 * txn must have changed nothing. */
static int run_txn(struct tcase *t, struct fx *f, struct store_txn_req *req,
                   struct store_txn_res *res)
{
    store_tx *tx = tc_write(t, f);
    int rc = store_txn(tx, req, &t->a, res);
    assert_rc(tc_commit(t, tx), 0);
    return rc;
}

/* Whether a single compare holds, evaluated by a txn without ops in a read transaction. */
static bool holds(struct tcase *t, struct fx *f, struct store_compare c)
{
    struct store_txn_req req = {.compares = &c, .n_compares = 1};
    struct store_txn_res res;
    store_tx *tx = tc_read(t, f);
    int64_t rev = store_tx_rev(tx);
    assert_rc(store_txn(tx, &req, &t->a, &res), 0);
    assert_int_equal(res.n_responses, 0);
    assert_int_equal(res.revision, rev);
    tc_end(t, tx);
    return res.succeeded;
}

#define HOLDS(c) assert_true(holds(t, f, (c)))
#define FAILS(c) assert_false(holds(t, f, (c)))

/* k: create 2, mod 3, version 2, value "v2", lease 5 */
static void make_k(struct tcase *t, struct fx *f)
{
    store_tx *tx = tc_write(t, f);
    assert_rc(store_lease_grant(tx, 5, 60), 0);
    assert_rc(tc_commit(t, tx), 0);
    assert_rc(fx_put(f, "k", "v1", 0, NULL), 0);
    assert_rc(fx_put(f, "k", "v2", 5, NULL), 0);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "k", 0, &kv), 1);
    assert_kv(kv, "k", "v2", 2, 3, 2, 5);
}

/* compareKV: bytes.Compare for values, compareInt64 for the numeric targets. */
static void test_compare_targets(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    make_k(t, f);

    HOLDS(cmp_value(STORE_CMP_EQUAL, "k", "v2"));
    FAILS(cmp_value(STORE_CMP_EQUAL, "k", "v1"));
    HOLDS(cmp_value(STORE_CMP_NOT_EQUAL, "k", "v1"));
    FAILS(cmp_value(STORE_CMP_NOT_EQUAL, "k", "v2"));
    HOLDS(cmp_value(STORE_CMP_GREATER, "k", "v1"));
    HOLDS(cmp_value(STORE_CMP_GREATER, "k", "v"));
    FAILS(cmp_value(STORE_CMP_GREATER, "k", "v2"));
    HOLDS(cmp_value(STORE_CMP_LESS, "k", "v3"));
    HOLDS(cmp_value(STORE_CMP_LESS, "k", "v2\x01"));
    FAILS(cmp_value(STORE_CMP_LESS, "k", "v2"));
    FAILS(cmp_value(STORE_CMP_EQUAL, "k", ""));
    /* an existing key with an empty value does equal "" (only a missing key always fails) */
    assert_rc(fx_put(f, "e", "", 0, NULL), 0);
    HOLDS(cmp_value(STORE_CMP_EQUAL, "e", ""));
    HOLDS(cmp_value(STORE_CMP_LESS, "e", "a"));
    FAILS(cmp_value(STORE_CMP_GREATER, "e", ""));

    HOLDS(cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "k", 2));
    FAILS(cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "k", 1));
    HOLDS(cmp_num(STORE_CMP_VERSION, STORE_CMP_GREATER, "k", 1));
    FAILS(cmp_num(STORE_CMP_VERSION, STORE_CMP_GREATER, "k", 2));
    HOLDS(cmp_num(STORE_CMP_VERSION, STORE_CMP_LESS, "k", 3));
    FAILS(cmp_num(STORE_CMP_VERSION, STORE_CMP_LESS, "k", 2));
    FAILS(cmp_num(STORE_CMP_VERSION, STORE_CMP_NOT_EQUAL, "k", 2));
    HOLDS(cmp_num(STORE_CMP_VERSION, STORE_CMP_NOT_EQUAL, "k", 0));

    HOLDS(cmp_num(STORE_CMP_CREATE, STORE_CMP_EQUAL, "k", 2));
    FAILS(cmp_num(STORE_CMP_CREATE, STORE_CMP_EQUAL, "k", 3));
    FAILS(cmp_num(STORE_CMP_CREATE, STORE_CMP_GREATER, "k", 2));
    HOLDS(cmp_num(STORE_CMP_CREATE, STORE_CMP_GREATER, "k", 1));
    HOLDS(cmp_num(STORE_CMP_CREATE, STORE_CMP_LESS, "k", 3));
    HOLDS(cmp_num(STORE_CMP_CREATE, STORE_CMP_NOT_EQUAL, "k", 3));

    HOLDS(cmp_num(STORE_CMP_MOD, STORE_CMP_EQUAL, "k", 3));
    FAILS(cmp_num(STORE_CMP_MOD, STORE_CMP_NOT_EQUAL, "k", 3));
    HOLDS(cmp_num(STORE_CMP_MOD, STORE_CMP_GREATER, "k", 2));
    FAILS(cmp_num(STORE_CMP_MOD, STORE_CMP_LESS, "k", 3));
    HOLDS(cmp_num(STORE_CMP_MOD, STORE_CMP_LESS, "k", 4));

    HOLDS(cmp_num(STORE_CMP_LEASE, STORE_CMP_EQUAL, "k", 5));
    FAILS(cmp_num(STORE_CMP_LEASE, STORE_CMP_EQUAL, "k", 0));
    HOLDS(cmp_num(STORE_CMP_LEASE, STORE_CMP_GREATER, "k", 4));
    HOLDS(cmp_num(STORE_CMP_LEASE, STORE_CMP_LESS, "k", 6));
    FAILS(cmp_num(STORE_CMP_LEASE, STORE_CMP_NOT_EQUAL, "k", 5));
}

/* applyCompare: "Always fail if comparing a value on a key/keys that doesn't exist"; the other
 * targets compare a zero KeyValue, so version/create/mod/lease are 0. */
static void test_compare_missing_key(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "gone", "v", 0, NULL), 0);
    assert_rc(fx_del(f, "gone", NULL, NULL, NULL), 0);

    static const char *const keys[] = {"nope", "gone"};
    for (size_t i = 0; i < N_ELEMS(keys); i++) {
        const char *k = keys[i];
        FAILS(cmp_value(STORE_CMP_EQUAL, k, ""));
        FAILS(cmp_value(STORE_CMP_NOT_EQUAL, k, "x"));
        FAILS(cmp_value(STORE_CMP_LESS, k, "x"));
        FAILS(cmp_value(STORE_CMP_GREATER, k, ""));
        HOLDS(cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, k, 0));
        FAILS(cmp_num(STORE_CMP_VERSION, STORE_CMP_NOT_EQUAL, k, 0));
        FAILS(cmp_num(STORE_CMP_VERSION, STORE_CMP_GREATER, k, 0));
        HOLDS(cmp_num(STORE_CMP_VERSION, STORE_CMP_LESS, k, 1));
        HOLDS(cmp_num(STORE_CMP_CREATE, STORE_CMP_LESS, k, 1));
        HOLDS(cmp_num(STORE_CMP_CREATE, STORE_CMP_EQUAL, k, 0));
        HOLDS(cmp_num(STORE_CMP_MOD, STORE_CMP_EQUAL, k, 0));
        HOLDS(cmp_num(STORE_CMP_LEASE, STORE_CMP_EQUAL, k, 0));
        HOLDS(cmp_num(STORE_CMP_MOD, STORE_CMP_GREATER, k, -1));
    }
}

/* applyCompare over a range: it must hold for every key; an empty range compares a zero kv. */
static void test_compare_range(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "v", 0, NULL), 0);
    assert_rc(fx_put(f, "b", "v", 0, NULL), 0);
    assert_rc(fx_put(f, "b", "v", 0, NULL), 0);
    assert_rc(fx_put(f, "c", "v", 0, NULL), 0);

    struct store_compare c = cmp_num(STORE_CMP_VERSION, STORE_CMP_GREATER, "a", 0);
    c.range_end = sb("d");
    HOLDS(c);
    c = cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "a", 1);
    c.range_end = sb("d");
    FAILS(c); /* b is at version 2 */
    c.range_end = sb("b");
    HOLDS(c);
    c = cmp_num(STORE_CMP_VERSION, STORE_CMP_LESS, "a", 3);
    c.range_end = sbl("\0");
    HOLDS(c);
    c = cmp_value(STORE_CMP_EQUAL, "a", "v");
    c.range_end = sb("z");
    HOLDS(c);
    c = cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "x", 0);
    c.range_end = sb("z");
    HOLDS(c);
    c = cmp_value(STORE_CMP_EQUAL, "x", "");
    c.range_end = sb("z");
    FAILS(c);

    /* applyCompares: every compare must hold */
    struct store_compare two[] = {cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "a", 1),
                                  cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "b", 1)};
    struct store_txn_req req = {.compares = two, .n_compares = 2};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_false(res.succeeded);
    two[1].number = 2;
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_true(res.succeeded);
}

/* Txn: the success ops run when the compares hold, the failure ops otherwise; the response holds
 * one entry per op of the branch taken. */
static void test_branches(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    struct store_compare c = cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "k", 0);
    struct store_op yes[] = {op_put("k", "created"), op_put("made", "1")};
    struct store_op no[] = {op_put("k", "exists")};
    struct store_txn_req req = {.compares = &c,
                                .n_compares = 1,
                                .success = yes,
                                .n_success = 2,
                                .failure = no,
                                .n_failure = 1};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_true(res.succeeded);
    assert_int_equal(res.n_responses, 2);
    assert_int_equal(res.revision, 2);
    assert_int_equal(res.responses[0].type, STORE_OP_PUT);
    assert_int_equal(res.responses[0].u.put.revision, 2);
    assert_int_equal(res.responses[1].u.put.revision, 2);

    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_false(res.succeeded);
    assert_int_equal(res.n_responses, 1);
    assert_int_equal(res.revision, 3);
    assert_int_equal(res.responses[0].type, STORE_OP_PUT);
    assert_int_equal(res.responses[0].u.put.revision, 3);

    struct store_kv kv;
    assert_int_equal(fx_get(f, "k", 0, &kv), 1);
    assert_kv(kv, "k", "exists", 2, 3, 2, 0);
    assert_int_equal(fx_get(f, "made", 0, &kv), 1);
    assert_kv(kv, "made", "1", 2, 2, 1, 0);
}

/* applyTxn runs the ops in order on one TxnWrite: a range sees the puts and deletes before it;
 * storeTxnWrite.Range reads at beginRev+1 once there are changes, so its header is the txn's
 * revision, and beginRev before any change. */
static void test_ops_see_earlier_writes(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "0", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "d", "0", 0, NULL), 0); /* 3 */
    struct store_op ops[] = {op_get("a", NULL), op_put("a", "1"),  op_get("a", NULL),
                             op_del("d", NULL), op_get("d", NULL), op_put("b", "1"),
                             op_get("a", "z")};
    struct store_txn_req req = {.success = ops, .n_success = N_ELEMS(ops)};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_true(res.succeeded);
    assert_int_equal(res.revision, 4);
    assert_int_equal(res.n_responses, N_ELEMS(ops));

    struct store_range_res *r0 = &res.responses[0].u.range;
    assert_int_equal(res.responses[0].type, STORE_OP_RANGE);
    assert_int_equal(r0->n_kvs, 1);
    assert_kv(r0->kvs[0], "a", "0", 2, 2, 1, 0);
    assert_int_equal(r0->revision, 3);

    assert_int_equal(res.responses[1].type, STORE_OP_PUT);
    assert_int_equal(res.responses[1].u.put.revision, 4);

    struct store_range_res *r2 = &res.responses[2].u.range;
    assert_int_equal(r2->n_kvs, 1);
    assert_kv(r2->kvs[0], "a", "1", 2, 4, 2, 0);
    assert_int_equal(r2->revision, 4);

    assert_int_equal(res.responses[3].type, STORE_OP_DELETE);
    assert_int_equal(res.responses[3].u.del.deleted, 1);
    assert_int_equal(res.responses[3].u.del.revision, 4);

    assert_int_equal(res.responses[4].u.range.n_kvs, 0);
    assert_int_equal(res.responses[4].u.range.count, 0);

    struct store_range_res *r6 = &res.responses[6].u.range;
    assert_keys(r6->kvs, r6->n_kvs, "a", "b");
    assert_kv(r6->kvs[1], "b", "1", 4, 4, 1, 0);
    assert_int_equal(r6->count, 2);
    assert_int_equal(r6->revision, 4);

    assert_int_equal(fx_rev(f), 4);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "d", 0, &kv), 0);
}

/* kvstore_txn.go put/delete: every change of one txn has main revision beginRev+1 and
 * sub-revision len(changes) — 0, 1, 2 in op order. */
static void test_one_revision_sub_revisions_in_order(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "c", "0", 0, NULL), 0); /* 2 */
    struct store_op ops[] = {op_put("z", "1"), op_put("a", "1"), op_del("c", NULL)};
    struct store_txn_req req = {.success = ops, .n_success = 3};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_int_equal(res.revision, 3);

    struct store_event ev[8];
    size_t n = tc_events(t, f, 3, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 3);
    assert_int_equal(ev[0].type, STORE_EVENT_PUT);
    assert_kv(ev[0].kv, "z", "1", 3, 3, 1, 0);
    assert_int_equal(ev[0].sub_revision, 0);
    assert_int_equal(ev[1].type, STORE_EVENT_PUT);
    assert_kv(ev[1].kv, "a", "1", 3, 3, 1, 0);
    assert_int_equal(ev[1].sub_revision, 1);
    assert_int_equal(ev[2].type, STORE_EVENT_DELETE);
    assert_sb(ev[2].kv.key, "c");
    assert_int_equal(ev[2].kv.mod_revision, 3);
    assert_int_equal(ev[2].sub_revision, 2);
}

/* apply.go Txn: "rev := txn.Rev(); if len(txn.Changes()) != 0 { rev++ }" — a txn that changes
 * nothing (only ranges, a delete of nothing, or a taken branch without writes) makes no revision.
 */
static void test_read_only_txn_makes_no_revision(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */

    struct store_op reads[] = {op_get("a", NULL), op_get("a", "z")};
    struct store_txn_req ro = {.success = reads, .n_success = 2};
    assert_true(store_txn_is_read_only(&ro));
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &ro, &res), 0);
    assert_int_equal(res.revision, 2);
    assert_int_equal(fx_rev(f), 2);

    /* in a read transaction too */
    store_tx *tx = tc_read(t, f);
    assert_rc(store_txn(tx, &ro, &t->a, &res), 0);
    assert_int_equal(res.revision, 2);
    assert_int_equal(res.responses[0].u.range.n_kvs, 1);
    tc_end(t, tx);

    struct store_op del_nothing[] = {op_del("nope", NULL)};
    struct store_txn_req dn = {.success = del_nothing, .n_success = 1};
    assert_false(store_txn_is_read_only(&dn));
    assert_rc(run_txn(t, f, &dn, &res), 0);
    assert_int_equal(res.revision, 2);
    assert_int_equal(res.responses[0].u.del.deleted, 0);
    assert_int_equal(res.responses[0].u.del.revision, 2);
    assert_int_equal(fx_rev(f), 2);

    /* the taken branch reads only; the other one would write */
    struct store_compare c = cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "a", 7);
    struct store_op w[] = {op_put("b", "1")};
    struct store_txn_req br = {.compares = &c,
                               .n_compares = 1,
                               .success = w,
                               .n_success = 1,
                               .failure = reads,
                               .n_failure = 1};
    assert_false(store_txn_is_read_only(&br));
    assert_rc(run_txn(t, f, &br, &res), 0);
    assert_false(res.succeeded);
    assert_int_equal(res.revision, 2);
    assert_int_equal(fx_rev(f), 2);

    /* after a write, a delete of nothing in the same txn answers the txn's revision */
    struct store_op wd[] = {op_put("b", "1"), op_del("nope", NULL)};
    struct store_txn_req pw = {.success = wd, .n_success = 2};
    assert_rc(run_txn(t, f, &pw, &res), 0);
    assert_int_equal(res.revision, 3);
    assert_int_equal(res.responses[1].u.del.deleted, 0);
    assert_int_equal(res.responses[1].u.del.revision, 3);
}

/* store.h: "A read-only txn (or one whose taken branch writes nothing) needs only a read
 * transaction"; "A txn whose taken branch writes fails INVALID_ARGUMENT in a read transaction". */
static void test_read_tx_runs_txn_whose_taken_branch_reads(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    struct store_compare c = cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "a", 7);
    struct store_op w[] = {op_put("b", "1")};
    struct store_op reads[] = {op_get("a", NULL)};
    struct store_txn_req br = {.compares = &c,
                               .n_compares = 1,
                               .success = w,
                               .n_success = 1,
                               .failure = reads,
                               .n_failure = 1};
    struct store_txn_res res;
    store_tx *tx = tc_read(t, f);
    c.number = 1;
    assert_rc(store_txn(tx, &br, &t->a, &res), CAIRN_E_INVALID_ARGUMENT);
    c.number = 7;
    assert_rc(store_txn(tx, &br, &t->a, &res), 0);
    assert_false(res.succeeded);
    assert_int_equal(res.revision, 2);
    assert_int_equal(res.n_responses, 1);
    assert_int_equal(res.responses[0].u.range.n_kvs, 1);
    tc_end(t, tx);
    assert_int_equal(fx_rev(f), 2);
}

/* isTxnReadonly looks into nested txns at any depth. */
static void test_is_read_only_nested(void **state)
{
    (void)state;
    struct store_op inner_w[] = {op_put("x", "1")};
    struct store_op inner_r[] = {op_get("x", NULL)};
    struct store_txn_req inner = {
        .failure = inner_w, .n_failure = 1, .success = inner_r, .n_success = 1};
    struct store_op outer_ops[] = {op_get("a", NULL), op_txn(&inner)};
    struct store_txn_req outer = {.success = outer_ops, .n_success = 2};
    assert_false(store_txn_is_read_only(&outer));
    inner.n_failure = 0;
    assert_true(store_txn_is_read_only(&outer));
}

/* Nested txns: compareToPath evaluates every compare of the path before any op runs, so a nested
 * compare sees the store as it was before the outer txn's writes; nested responses carry header
 * revision 0 (newTxnResp gives them an empty header). */
static void test_nested_txn(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */

    struct store_compare inner_c = cmp_value(STORE_CMP_EQUAL, "a", "2");
    struct store_op inner_yes[] = {op_put("b", "then")};
    struct store_op inner_no[] = {op_put("b", "else"), op_get("a", NULL)};
    struct store_txn_req inner = {.compares = &inner_c,
                                  .n_compares = 1,
                                  .success = inner_yes,
                                  .n_success = 1,
                                  .failure = inner_no,
                                  .n_failure = 2};
    struct store_op outer_ops[] = {op_put("a", "2"), op_txn(&inner), op_put("c", "1")};
    struct store_txn_req outer = {.success = outer_ops, .n_success = 3};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &outer, &res), 0);
    assert_true(res.succeeded);
    assert_int_equal(res.revision, 3);
    assert_int_equal(res.n_responses, 3);
    assert_int_equal(res.responses[1].type, STORE_OP_TXN);
    struct store_txn_res *in = res.responses[1].u.txn;
    assert_non_null(in);
    assert_false(in->succeeded); /* a was "1" when the compares were evaluated */
    assert_int_equal(in->revision, 0);
    assert_int_equal(in->n_responses, 2);
    assert_int_equal(in->responses[0].u.put.revision, 3);
    /* but its ops see the outer put */
    assert_int_equal(in->responses[1].u.range.n_kvs, 1);
    assert_kv(in->responses[1].u.range.kvs[0], "a", "2", 2, 3, 2, 0);

    struct store_kv kv;
    assert_int_equal(fx_get(f, "b", 0, &kv), 1);
    assert_kv(kv, "b", "else", 3, 3, 1, 0);
    assert_int_equal(fx_get(f, "c", 0, &kv), 1);
    assert_kv(kv, "c", "1", 3, 3, 1, 0);

    struct store_event ev[8];
    size_t n = tc_events(t, f, 3, false, ev, N_ELEMS(ev));
    assert_int_equal(n, 3);
    assert_sb(ev[0].kv.key, "a");
    assert_sb(ev[1].kv.key, "b");
    assert_sb(ev[2].kv.key, "c");
    assert_int_equal(ev[2].sub_revision, 2);

    /* now a is "2": the same txn takes the inner then-branch */
    outer_ops[0] = op_put("a", "3");
    assert_rc(run_txn(t, f, &outer, &res), 0);
    in = res.responses[1].u.txn;
    assert_true(in->succeeded);
    assert_int_equal(in->n_responses, 1);
    assert_int_equal(fx_get(f, "b", 0, &kv), 1);
    assert_kv(kv, "b", "then", 3, 4, 2, 0);
}

static int check(struct store_op *success, size_t n_success, struct store_op *failure,
                 size_t n_failure)
{
    struct store_txn_req req = {
        .success = success, .n_success = n_success, .failure = failure, .n_failure = n_failure};
    return store_txn_check(&req, STORE_DEFAULT_MAX_TXN_OPS);
}

/* key.go checkIntervals: no key put twice, no put inside a delete's range, in one branch
 * (counting nested txns); then/else branches of a nested txn may put the same key. */
static void test_duplicate_keys(void **state)
{
    (void)state;
    struct store_op two_puts[] = {op_put("k", "1"), op_put("k", "2")};
    assert_rc(check(two_puts, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);
    assert_rc(check(NULL, 0, two_puts, 2), CAIRN_E_DUPLICATE_KEY);

    struct store_op put_del[] = {op_put("k", "1"), op_del("k", NULL)};
    assert_rc(check(put_del, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);
    struct store_op del_put[] = {op_del("a", "m"), op_put("k", "1")};
    assert_rc(check(del_put, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);
    struct store_op del_put_outside[] = {op_del("a", "k"), op_put("k", "1")};
    assert_rc(check(del_put_outside, 2, NULL, 0), 0);
    struct store_op two_dels[] = {op_del("k", NULL), op_del("a", "z")};
    assert_rc(check(two_dels, 2, NULL, 0), 0);
    struct store_op put_get[] = {op_put("k", "1"), op_get("k", NULL)};
    assert_rc(check(put_get, 2, NULL, 0), 0);

    /* the same key in success and failure: only one of them runs */
    struct store_op s[] = {op_put("k", "1")};
    struct store_op fl[] = {op_put("k", "2")};
    assert_rc(check(s, 1, fl, 1), 0);

    /* nested: outer put and nested put of the same key */
    struct store_op in_put[] = {op_put("k", "1")};
    struct store_txn_req nested_put = {.success = in_put, .n_success = 1};
    struct store_op outer1[] = {op_put("k", "0"), op_txn(&nested_put)};
    assert_rc(check(outer1, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);

    /* nested then and else putting the same key are fine */
    struct store_op in_put2[] = {op_put("k", "2")};
    struct store_txn_req then_else = {
        .success = in_put, .n_success = 1, .failure = in_put2, .n_failure = 1};
    struct store_op outer2[] = {op_txn(&then_else)};
    assert_rc(check(outer2, 1, NULL, 0), 0);

    /* two nested txns putting the same key */
    struct store_op outer3[] = {op_txn(&nested_put), op_txn(&nested_put)};
    assert_rc(check(outer3, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);

    /* nested else-put after a nested then-put of another txn */
    struct store_txn_req else_put = {.failure = in_put, .n_failure = 1};
    struct store_op outer3b[] = {op_txn(&nested_put), op_txn(&else_put)};
    assert_rc(check(outer3b, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);

    /* an outer delete covering a nested put, before or after it */
    struct store_op outer4[] = {op_del("a", "z"), op_txn(&nested_put)};
    assert_rc(check(outer4, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);
    struct store_op outer5[] = {op_txn(&nested_put), op_del("k", NULL)};
    assert_rc(check(outer5, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);

    /* a nested delete and an outer put of a key it covers */
    struct store_op in_del[] = {op_del("j", "l")};
    struct store_txn_req nested_del = {.success = in_del, .n_success = 1};
    struct store_op outer6[] = {op_txn(&nested_del), op_put("k", "1")};
    assert_rc(check(outer6, 2, NULL, 0), CAIRN_E_DUPLICATE_KEY);
    struct store_op outer6b[] = {op_txn(&nested_del), op_put("l", "1")};
    assert_rc(check(outer6b, 2, NULL, 0), 0);

    /* a nested txn putting in one branch and deleting in the other is fine */
    struct store_op in_del_k[] = {op_del("k", NULL)};
    struct store_txn_req put_or_del = {
        .success = in_put, .n_success = 1, .failure = in_del_k, .n_failure = 1};
    struct store_op outer7[] = {op_txn(&put_or_del)};
    assert_rc(check(outer7, 1, NULL, 0), 0);

    /* within a nested branch the same rules hold */
    struct store_txn_req nested_dup = {.success = two_puts, .n_success = 2};
    struct store_op outer8[] = {op_txn(&nested_dup)};
    assert_rc(check(outer8, 1, NULL, 0), CAIRN_E_DUPLICATE_KEY);
}

/* store_txn runs the checks: a duplicate changes nothing. */
static void test_duplicate_key_in_store_txn(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    struct store_op ops[] = {op_put("x", "1"), op_put("k", "1"), op_put("k", "2")};
    struct store_txn_req req = {.success = ops, .n_success = 3};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), CAIRN_E_DUPLICATE_KEY);
    assert_int_equal(fx_rev(f), 1);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "x", 0, &kv), 0);
}

/* key.go checkTxnRequest: max(len(compare), len(success), len(failure)) > maxTxnOps is
 * TOO_MANY_OPS; nested txns are checked against maxTxnOps minus that. */
static void test_too_many_ops(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    enum { N = STORE_DEFAULT_MAX_TXN_OPS + 1 };
    static char keys[N][16];
    struct store_op ops[N];
    struct store_compare cmps[N];
    for (int i = 0; i < N; i++) {
        snprintf(keys[i], sizeof keys[i], "k%03d", i);
        ops[i] = op_put(keys[i], "v");
        cmps[i] = cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, keys[i], 0);
    }
    struct store_txn_req req = {.success = ops, .n_success = N};
    assert_rc(store_txn_check(&req, STORE_DEFAULT_MAX_TXN_OPS), CAIRN_E_TOO_MANY_OPS);
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), CAIRN_E_TOO_MANY_OPS);
    assert_int_equal(fx_rev(f), 1);

    req.n_success = N - 1;
    assert_rc(store_txn_check(&req, STORE_DEFAULT_MAX_TXN_OPS), 0);
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_int_equal(res.revision, 2);

    struct store_txn_req fail = {.failure = ops, .n_failure = N};
    assert_rc(store_txn_check(&fail, STORE_DEFAULT_MAX_TXN_OPS), CAIRN_E_TOO_MANY_OPS);
    struct store_txn_req cmp = {.compares = cmps, .n_compares = N};
    assert_rc(store_txn_check(&cmp, STORE_DEFAULT_MAX_TXN_OPS), CAIRN_E_TOO_MANY_OPS);
    cmp.n_compares = N - 1;
    assert_rc(store_txn_check(&cmp, STORE_DEFAULT_MAX_TXN_OPS), 0);

    /* nested: 100 ops at the top leave 28 for the nested txn */
    struct store_txn_req inner = {.success = ops + 100, .n_success = 28};
    struct store_op outer[100];
    for (int i = 0; i < 99; i++)
        outer[i] = op_get(keys[i], NULL);
    outer[99] = op_txn(&inner);
    struct store_txn_req top = {.success = outer, .n_success = 100};
    assert_rc(store_txn_check(&top, STORE_DEFAULT_MAX_TXN_OPS), 0);
    inner.n_success = 29;
    assert_rc(store_txn_check(&top, STORE_DEFAULT_MAX_TXN_OPS), CAIRN_E_TOO_MANY_OPS);

    /* and the limit given to check is the one used */
    req.n_success = 5;
    assert_rc(store_txn_check(&req, 4), CAIRN_E_TOO_MANY_OPS);
    assert_rc(store_txn_check(&req, 5), 0);
}

/* The store's own max_txn_ops applies in store_txn. */
static void test_too_many_ops_store_option(void **state)
{
    struct tcase *t = TC(state);
    struct store_options opts = {.max_txn_ops = 2};
    struct fx *f = tc_open(t, &opts);
    struct store_op ops[] = {op_put("a", "1"), op_put("b", "1"), op_put("c", "1")};
    struct store_txn_req req = {.success = ops, .n_success = 3};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), CAIRN_E_TOO_MANY_OPS);
    req.n_success = 2;
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_int_equal(fx_rev(f), 2);
}

/* key.go checkRequestOp: "empty op / nil entry" is KEY_NOT_FOUND; empty keys are EMPTY_KEY;
 * checkPutRequest's VALUE_PROVIDED/LEASE_PROVIDED apply inside txns too. */
static void test_malformed_requests(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    struct store_op empty[] = {op_put("a", "1"), {.type = STORE_OP_NONE}};
    struct store_txn_req req = {.success = empty, .n_success = 2};
    assert_rc(store_txn_check(&req, 128), CAIRN_E_KEY_NOT_FOUND);
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), CAIRN_E_KEY_NOT_FOUND);
    struct store_txn_req req_f = {.failure = empty, .n_failure = 2};
    assert_rc(store_txn_check(&req_f, 128), CAIRN_E_KEY_NOT_FOUND);

    struct store_compare c = cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "", 0);
    struct store_txn_req rc_ = {.compares = &c, .n_compares = 1};
    assert_rc(store_txn_check(&rc_, 128), CAIRN_E_EMPTY_KEY);
    assert_rc(run_txn(t, f, &rc_, &res), CAIRN_E_EMPTY_KEY);

    struct store_op put_empty[] = {op_put("", "1")};
    struct store_txn_req pe = {.success = put_empty, .n_success = 1};
    assert_rc(store_txn_check(&pe, 128), CAIRN_E_EMPTY_KEY);
    struct store_op del_empty[] = {op_del("", NULL)};
    struct store_txn_req de = {.failure = del_empty, .n_failure = 1};
    assert_rc(store_txn_check(&de, 128), CAIRN_E_EMPTY_KEY);
    struct store_op get_empty[] = {op_get("", "z")};
    struct store_txn_req ge = {.success = get_empty, .n_success = 1};
    assert_rc(store_txn_check(&ge, 128), CAIRN_E_EMPTY_KEY);
    struct store_txn_req nested = {.success = put_empty, .n_success = 1};
    struct store_op outer[] = {op_txn(&nested)};
    struct store_txn_req ne = {.success = outer, .n_success = 1};
    assert_rc(store_txn_check(&ne, 128), CAIRN_E_EMPTY_KEY);

    struct store_op vp[] = {op_put("a", "1")};
    vp[0].u.put.ignore_value = true;
    struct store_txn_req vpr = {.success = vp, .n_success = 1};
    assert_rc(store_txn_check(&vpr, 128), CAIRN_E_VALUE_PROVIDED);
    struct store_op lp[] = {op_put("a", "")};
    lp[0].u.put.ignore_lease = true;
    lp[0].u.put.lease = 3;
    struct store_txn_req lpr = {.success = lp, .n_success = 1};
    assert_rc(store_txn_check(&lpr, 128), CAIRN_E_LEASE_PROVIDED);

    /* checkTxnRequest's order: too many ops before empty keys */
    struct store_compare many[3] = {c, c, c};
    struct store_txn_req order = {.compares = many, .n_compares = 3};
    assert_rc(store_txn_check(&order, 2), CAIRN_E_TOO_MANY_OPS);

    assert_int_equal(fx_rev(f), 1);
}

/* apply.go checkRequestRange: a range in the taken branch at a revision above the current one
 * (even the txn's own) is FUTURE_REV, below the compacted one COMPACTED, and the txn fails whole.
 */
static void test_txn_range_bad_revision(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "a", "2", 0, NULL), 0); /* 3 */

    struct store_op ops[] = {op_put("b", "1"), op_get("a", NULL)};
    ops[1].u.range.revision = 4;
    struct store_txn_req req = {.success = ops, .n_success = 2};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), CAIRN_E_FUTURE_REV);
    assert_int_equal(fx_rev(f), 3);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "b", 0, &kv), 0);

    /* the same range in the branch not taken does not matter */
    struct store_compare c = cmp_num(STORE_CMP_VERSION, STORE_CMP_EQUAL, "a", 9);
    struct store_op ok_ops[] = {op_put("b", "1")};
    struct store_txn_req other = {.compares = &c,
                                  .n_compares = 1,
                                  .success = ops,
                                  .n_success = 2,
                                  .failure = ok_ops,
                                  .n_failure = 1};
    assert_rc(run_txn(t, f, &other, &res), 0);
    assert_false(res.succeeded);
    assert_int_equal(fx_rev(f), 4);

    assert_rc(fx_compact(f, 3), 0);
    struct store_op old[] = {op_put("c", "1"), op_get("a", NULL)};
    old[1].u.range.revision = 2;
    struct store_txn_req oreq = {.success = old, .n_success = 2};
    assert_rc(run_txn(t, f, &oreq, &res), CAIRN_E_COMPACTED);
    assert_int_equal(fx_rev(f), 4);
    old[1].u.range.revision = 3;
    assert_rc(run_txn(t, f, &oreq, &res), 0);
    assert_int_equal(res.responses[1].u.range.n_kvs, 1);
    assert_kv(res.responses[1].u.range.kvs[0], "a", "2", 2, 3, 2, 0);
    assert_int_equal(res.responses[1].u.range.revision, 5);
}

/* apply.go checkRequestPut: an unknown lease, or ignore_value on a missing key, in the taken branch
 * fails the txn before anything is applied. */
static void test_txn_put_checks(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    struct store_op ops[] = {op_put("a", "1"), op_put("b", "1")};
    ops[1].u.put.lease = 42;
    struct store_txn_req req = {.success = ops, .n_success = 2};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), CAIRN_E_LEASE_NOT_FOUND);
    assert_int_equal(fx_rev(f), 1);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "a", 0, &kv), 0);

    struct store_op iv[] = {op_put("a", "1"), op_put("b", "")};
    iv[1].u.put.ignore_value = true;
    struct store_txn_req ivr = {.success = iv, .n_success = 2};
    assert_rc(run_txn(t, f, &ivr, &res), CAIRN_E_KEY_NOT_FOUND);
    assert_int_equal(fx_rev(f), 1);

    /* nested, in the taken path */
    struct store_txn_req inner = {.success = ops + 1, .n_success = 1};
    struct store_op outer[] = {op_put("a", "1"), op_txn(&inner)};
    struct store_txn_req oreq = {.success = outer, .n_success = 2};
    assert_rc(run_txn(t, f, &oreq, &res), CAIRN_E_LEASE_NOT_FOUND);
    assert_int_equal(fx_rev(f), 1);

    /* not in the taken branch: fine */
    struct store_compare c = cmp_num(STORE_CMP_VERSION, STORE_CMP_GREATER, "a", 0);
    struct store_op other[] = {op_put("c", "1")};
    struct store_txn_req br = {.compares = &c,
                               .n_compares = 1,
                               .success = ops,
                               .n_success = 2,
                               .failure = other,
                               .n_failure = 1};
    assert_rc(run_txn(t, f, &br, &res), 0);
    assert_false(res.succeeded);
    assert_int_equal(fx_get(f, "c", 0, &kv), 1);
    assert_kv(kv, "c", "1", 2, 2, 1, 0);
}

/* A txn with put prev_kv and delete prev_kvs inside: responses as for the plain requests. */
static void test_txn_prev_kv(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    assert_rc(fx_put(f, "b", "1", 0, NULL), 0); /* 3 */
    struct store_op ops[] = {op_put("a", "2"), op_del("b", "c")};
    ops[0].u.put.prev_kv = true;
    ops[1].u.del.prev_kv = true;
    struct store_txn_req req = {.success = ops, .n_success = 2};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_int_equal(res.revision, 4);
    assert_non_null(res.responses[0].u.put.prev_kv);
    assert_kv(*res.responses[0].u.put.prev_kv, "a", "1", 2, 2, 1, 0);
    assert_int_equal(res.responses[0].u.put.revision, 4);
    assert_int_equal(res.responses[1].u.del.deleted, 1);
    assert_int_equal(res.responses[1].u.del.n_prev_kvs, 1);
    assert_kv(res.responses[1].u.del.prev_kvs[0], "b", "1", 3, 3, 1, 0);
    assert_int_equal(res.responses[1].u.del.revision, 4);
}

/* A range in a txn at the revision before the txn (allowed by checkRequestRange: it is not above
 * rv.Rev()) reads history: it does not see the txn's own earlier put. */
static void test_txn_range_at_begin_revision(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    struct store_op ops[] = {op_put("a", "2"), op_get("a", NULL), op_get("a", NULL)};
    ops[1].u.range.revision = 2;
    struct store_txn_req req = {.success = ops, .n_success = 3};
    struct store_txn_res res;
    assert_rc(run_txn(t, f, &req, &res), 0);
    assert_int_equal(res.revision, 3);
    assert_int_equal(res.responses[1].u.range.n_kvs, 1);
    assert_kv(res.responses[1].u.range.kvs[0], "a", "1", 2, 2, 1, 0);
    assert_int_equal(res.responses[1].u.range.revision, 3);
    assert_kv(res.responses[2].u.range.kvs[0], "a", "2", 2, 3, 2, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_compare_targets, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_compare_missing_key, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_compare_range, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_branches, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ops_see_earlier_writes, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_one_revision_sub_revisions_in_order, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_read_only_txn_makes_no_revision, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_read_tx_runs_txn_whose_taken_branch_reads, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_is_read_only_nested, tc_setup_bare, tc_teardown),
        cmocka_unit_test_setup_teardown(test_nested_txn, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_keys, tc_setup_bare, tc_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key_in_store_txn, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_too_many_ops, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_too_many_ops_store_option, tc_setup_bare, tc_teardown),
        cmocka_unit_test_setup_teardown(test_malformed_requests, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_txn_range_bad_revision, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_txn_put_checks, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_txn_prev_kv, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_txn_range_at_begin_revision, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
