/* store/txn.c — etcd's Txn: compares, then the ops of the branch taken, as one revision.
 *
 * Follows etcdserver/apply.go: all compares, nested ones included, are evaluated against the state
 * before the txn (compareToPath); then the puts of the taken path are checked (ignore_* needs the
 * key, a lease must exist), then the ranges (revision neither future nor compacted); then the ops
 * run in order, each seeing the earlier ones' writes. Before all that, the request is checked as
 * etcd's API does (v3rpc checkTxnRequest and checkIntervals). A writing txn runs in an LMDB child
 * transaction so that a failure part-way leaves the enclosing group commit untouched. */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Request checks: etcd's checkTxnRequest */

static int check_op(const struct store_op *op, unsigned max_ops);

static int check_txn(const struct store_txn_req *r, unsigned max_ops)
{
    size_t opc = r->n_compares;
    if (opc < r->n_success)
        opc = r->n_success;
    if (opc < r->n_failure)
        opc = r->n_failure;
    if (opc > max_ops)
        return CAIRN_E_TOO_MANY_OPS;
    for (size_t i = 0; i < r->n_compares; i++)
        if (r->compares[i].key.len == 0)
            return CAIRN_E_EMPTY_KEY;
    /* nested txns get the ops this level leaves (etcd passes maxTxnOps - opc) */
    unsigned left = max_ops - (unsigned)opc;
    for (size_t i = 0; i < r->n_success; i++) {
        int err = check_op(&r->success[i], left);
        if (err)
            return err;
    }
    for (size_t i = 0; i < r->n_failure; i++) {
        int err = check_op(&r->failure[i], left);
        if (err)
            return err;
    }
    return 0;
}

static int check_op(const struct store_op *op, unsigned max_ops)
{
    switch (op->type) {
    case STORE_OP_RANGE:
        return check_range(&op->u.range);
    case STORE_OP_PUT:
        return check_put(&op->u.put);
    case STORE_OP_DELETE:
        return check_delete(&op->u.del);
    case STORE_OP_TXN:
        return op->u.txn ? check_txn(op->u.txn, max_ops) : CAIRN_E_KEY_NOT_FOUND;
    default:
        return CAIRN_E_KEY_NOT_FOUND; /* an empty RequestOp, as etcd answers it */
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Request checks: etcd's checkIntervals (no put may overlap another put or a delete) */

/* A delete interval [begin, end), or the point `begin` when point is set. Compared as plain
 * strings, as etcd's interval tree does (so a range_end of "\0" makes an empty interval there). */
struct ival {
    store_bytes begin, end;
    bool point;
};

struct kset { /* a small set of put keys or delete intervals */
    void *items;
    size_t n, cap;
};

static int bcmp_(store_bytes a, store_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    return c ? c : (a.len < b.len ? -1 : a.len > b.len);
}

static bool puts_has(const struct kset *puts, store_bytes k)
{
    const store_bytes *p = puts->items;
    for (size_t i = 0; i < puts->n; i++)
        if (!bcmp_(p[i], k))
            return true;
    return false;
}

static int kset_add(struct kset *s, const void *item, size_t size)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        void *p = realloc(s->items, cap * size);
        if (!p)
            return CAIRN_E_NOMEM;
        s->items = p;
        s->cap = cap;
    }
    memcpy((char *)s->items + s->n * size, item, size);
    s->n++;
    return 0;
}

/* Adds a put key; put keys are a set (etcd keeps them in a map), so a key already there stays one.
 */
static int puts_add(struct kset *puts, store_bytes k)
{
    return puts_has(puts, k) ? 0 : kset_add(puts, &k, sizeof k);
}

static bool dels_hit(const struct kset *dels, store_bytes k)
{
    const struct ival *iv = dels->items;
    for (size_t i = 0; i < dels->n; i++) {
        if (iv[i].point ? !bcmp_(iv[i].begin, k)
                        : bcmp_(iv[i].begin, k) <= 0 && bcmp_(k, iv[i].end) < 0)
            return true;
    }
    return false;
}

/* Fills puts and dels for one op list; returns DUPLICATE_KEY on overlap. */
static int intervals(const struct store_op *ops, size_t n, struct kset *puts, struct kset *dels)
{
    int err = 0;
    for (size_t i = 0; i < n && !err; i++) {
        if (ops[i].type != STORE_OP_DELETE)
            continue;
        const struct store_delete_req *d = &ops[i].u.del;
        struct ival iv = {d->key, d->range_end, d->range_end.len == 0};
        err = kset_add(dels, &iv, sizeof iv);
    }
    for (size_t i = 0; i < n && !err; i++) {
        if (ops[i].type != STORE_OP_TXN || !ops[i].u.txn)
            continue;
        const struct store_txn_req *t = ops[i].u.txn;
        struct kset pt = {0}, dt = {0}, pe = {0}, de = {0};
        err = intervals(t->success, t->n_success, &pt, &dt);
        if (!err)
            err = intervals(t->failure, t->n_failure, &pe, &de);
        const store_bytes *k = pt.items;
        for (size_t j = 0; !err && j < pt.n; j++) {
            if (puts_has(puts, k[j]) || dels_hit(dels, k[j]))
                err = CAIRN_E_DUPLICATE_KEY;
            else
                err = puts_add(puts, k[j]);
        }
        k = pe.items;
        for (size_t j = 0; !err && j < pe.n; j++) {
            /* the same key in then and else is fine: only one branch runs */
            if ((puts_has(puts, k[j]) && !puts_has(&pt, k[j])) || dels_hit(dels, k[j]))
                err = CAIRN_E_DUPLICATE_KEY;
            else
                err = puts_add(puts, k[j]);
        }
        const struct ival *iv = dt.items;
        for (size_t j = 0; !err && j < dt.n; j++)
            err = kset_add(dels, &iv[j], sizeof iv[j]);
        iv = de.items;
        for (size_t j = 0; !err && j < de.n; j++)
            err = kset_add(dels, &iv[j], sizeof iv[j]);
        free(pt.items);
        free(dt.items);
        free(pe.items);
        free(de.items);
    }
    for (size_t i = 0; i < n && !err; i++) {
        if (ops[i].type != STORE_OP_PUT)
            continue;
        store_bytes k = ops[i].u.put.key;
        if (puts_has(puts, k) || dels_hit(dels, k))
            err = CAIRN_E_DUPLICATE_KEY;
        else
            err = puts_add(puts, k);
    }
    return err;
}

static int check_intervals(const struct store_op *ops, size_t n)
{
    struct kset puts = {0}, dels = {0};
    int err = intervals(ops, n, &puts, &dels);
    free(puts.items);
    free(dels.items);
    return err;
}

int store_txn_check(const struct store_txn_req *req, unsigned max_ops)
{
    int err = check_txn(req, max_ops);
    if (!err)
        err = check_intervals(req->success, req->n_success);
    if (!err)
        err = check_intervals(req->failure, req->n_failure);
    return err;
}

static bool ops_read_only(const struct store_op *ops, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type == STORE_OP_PUT || ops[i].type == STORE_OP_DELETE)
            return false;
        if (ops[i].type == STORE_OP_TXN && ops[i].u.txn && !store_txn_is_read_only(ops[i].u.txn))
            return false;
    }
    return true;
}

bool store_txn_is_read_only(const struct store_txn_req *req)
{
    return ops_read_only(req->success, req->n_success) &&
           ops_read_only(req->failure, req->n_failure);
}

uint64_t store_put_cost(const struct store_put_req *r)
{
    return QUOTA_KV_OVERHEAD + r->key.len + r->value.len;
}

uint64_t store_txn_cost(const struct store_txn_req *r)
{
    uint64_t s = 0, f = 0;
    for (size_t i = 0; i < r->n_success; i++)
        if (r->success[i].type == STORE_OP_PUT)
            s += QUOTA_KV_OVERHEAD + r->success[i].u.put.key.len + r->success[i].u.put.value.len;
    for (size_t i = 0; i < r->n_failure; i++)
        if (r->failure[i].type == STORE_OP_PUT)
            f += QUOTA_KV_OVERHEAD + r->failure[i].u.put.key.len + r->failure[i].u.put.value.len;
    return s > f ? s : f;
}

/* ---------------------------------------------------------------------------------------------- */
/* Compares */

struct cmp_ctx {
    const struct store_compare *c;
    bool ok;  /* every key so far satisfied the compare */
    bool any; /* some key exists */
};

static bool compare_kv(const struct store_compare *c, const struct store_kv *kv)
{
    int r;
    switch (c->target) {
    case STORE_CMP_VALUE: {
        store_bytes a = kv->value, b = c->value;
        size_t n = a.len < b.len ? a.len : b.len;
        r = n ? memcmp(a.data, b.data, n) : 0;
        if (!r)
            r = a.len < b.len ? -1 : a.len > b.len;
        break;
    }
    case STORE_CMP_CREATE:
        r = kv->create_revision < c->number ? -1 : kv->create_revision > c->number;
        break;
    case STORE_CMP_MOD:
        r = kv->mod_revision < c->number ? -1 : kv->mod_revision > c->number;
        break;
    case STORE_CMP_VERSION:
        r = kv->version < c->number ? -1 : kv->version > c->number;
        break;
    case STORE_CMP_LEASE:
        r = kv->lease < c->number ? -1 : kv->lease > c->number;
        break;
    default:
        r = 0; /* etcd leaves an unknown target's result at 0 */
        break;
    }
    switch (c->result) {
    case STORE_CMP_EQUAL:
        return r == 0;
    case STORE_CMP_NOT_EQUAL:
        return r != 0;
    case STORE_CMP_GREATER:
        return r > 0;
    case STORE_CMP_LESS:
        return r < 0;
    default:
        return true; /* etcd: an unknown result passes */
    }
}

/* Evaluates one compare at the current revision: it must hold for every key of its span. */
static int compare(store_tx *tx, const struct store_compare *c, bool *ok)
{
    struct store_range_req rr = {
        .key = c->key, .range_end = c->range_end, .keys_only = c->target != STORE_CMP_VALUE};
    struct arena a = ARENA_INIT;
    struct store_range_res res;
    int err = range_op(tx, &rr, &a, &res);
    if (err) {
        arena_free(&a);
        *ok = false; /* etcd: a compare whose range fails is false; storage failures propagate */
        return err == CAIRN_E_COMPACTED || err == CAIRN_E_FUTURE_REV ? 0 : err;
    }
    struct cmp_ctx x = {c, true, res.n_kvs > 0};
    for (size_t i = 0; i < res.n_kvs && x.ok; i++)
        if (!compare_kv(c, &res.kvs[i]))
            x.ok = false;
    arena_free(&a);
    if (!x.any) {
        /* no key: a VALUE compare always fails (no way to represent a missing value); the numeric
         * targets compare against a zero key-value */
        struct store_kv zero = {0};
        *ok = c->target != STORE_CMP_VALUE && compare_kv(c, &zero);
        return 0;
    }
    *ok = x.ok;
    return 0;
}

/* The branch taken by every txn along the path, in etcd's order (compareToPath): the top txn, then
 * for each nested txn of its taken branch, recursively. */
struct path {
    bool *taken;
    size_t n, cap;
};

static int path_build(store_tx *tx, const struct store_txn_req *r, struct path *p)
{
    bool ok = true;
    for (size_t i = 0; i < r->n_compares && ok; i++) {
        int err = compare(tx, &r->compares[i], &ok);
        if (err)
            return err;
    }
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        bool *t = realloc(p->taken, cap * sizeof *t);
        if (!t)
            return CAIRN_E_NOMEM;
        p->taken = t;
        p->cap = cap;
    }
    p->taken[p->n++] = ok;
    const struct store_op *ops = ok ? r->success : r->failure;
    size_t n = ok ? r->n_success : r->n_failure;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type != STORE_OP_TXN)
            continue;
        int err = path_build(tx, ops[i].u.txn, p);
        if (err)
            return err;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Checks along the taken path (etcd's checkRequests with checkRequestPut, then checkRequestRange)
 */

typedef int (*op_check_fn)(store_tx *tx, const struct store_op *op);

static int path_check(store_tx *tx, const struct store_txn_req *r, const struct path *p,
                      size_t *pos, op_check_fn fn)
{
    bool ok = p->taken[(*pos)++];
    const struct store_op *ops = ok ? r->success : r->failure;
    size_t n = ok ? r->n_success : r->n_failure;
    for (size_t i = 0; i < n; i++) {
        int err = ops[i].type == STORE_OP_TXN ? path_check(tx, ops[i].u.txn, p, pos, fn)
                                              : fn(tx, &ops[i]);
        if (err)
            return err;
    }
    return 0;
}

/* Whether the branches taken along the path contain a put or a delete. */
static bool path_writes(const struct store_txn_req *r, const struct path *p, size_t *pos)
{
    bool ok = p->taken[(*pos)++], w = false;
    const struct store_op *ops = ok ? r->success : r->failure;
    size_t n = ok ? r->n_success : r->n_failure;
    for (size_t i = 0; i < n; i++) {
        if (ops[i].type == STORE_OP_TXN)
            w = path_writes(ops[i].u.txn, p, pos) || w;
        else if (ops[i].type == STORE_OP_PUT || ops[i].type == STORE_OP_DELETE)
            w = true;
    }
    return w;
}

static int check_put_op(store_tx *tx, const struct store_op *op)
{
    if (op->type != STORE_OP_PUT)
        return 0;
    const struct store_put_req *r = &op->u.put;
    if (r->ignore_value || r->ignore_lease) {
        struct latest_rec l;
        int rc = latest_get(tx, r->key, &l);
        if (rc < 0)
            return rc;
        if (rc == ST_ABSENT || (l.flags & REC_TOMBSTONE))
            return CAIRN_E_KEY_NOT_FOUND;
    }
    if (r->lease) {
        int rc = lease_exists(tx, r->lease);
        if (rc < 0)
            return rc;
        if (rc == ST_ABSENT)
            return CAIRN_E_LEASE_NOT_FOUND;
    }
    return 0;
}

static int check_range_op(store_tx *tx, const struct store_op *op)
{
    if (op->type != STORE_OP_RANGE || op->u.range.revision == 0)
        return 0;
    if (op->u.range.revision > tx->rev)
        return CAIRN_E_FUTURE_REV;
    if (op->u.range.revision < tx->compact_rev)
        return CAIRN_E_COMPACTED;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Applying */

static int apply(store_tx *tx, const struct store_txn_req *r, const struct path *p, size_t *pos,
                 struct arena *a, struct store_txn_res *res)
{
    bool ok = p->taken[(*pos)++];
    const struct store_op *ops = ok ? r->success : r->failure;
    size_t n = ok ? r->n_success : r->n_failure;
    res->succeeded = ok;
    res->n_responses = n;
    res->revision = 0;
    res->responses = n ? arena_alloc(a, n * sizeof *res->responses) : NULL;
    if (n && !res->responses)
        return CAIRN_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        struct store_op_res *o = &res->responses[i];
        memset(o, 0, sizeof *o);
        o->type = ops[i].type;
        int err;
        switch (ops[i].type) {
        case STORE_OP_RANGE:
            err = range_op(tx, &ops[i].u.range, a, &o->u.range);
            break;
        case STORE_OP_PUT:
            err = put_op(tx, &ops[i].u.put, a, &o->u.put);
            break;
        case STORE_OP_DELETE:
            err = delete_op(tx, &ops[i].u.del, a, &o->u.del);
            break;
        case STORE_OP_TXN:
            o->u.txn = arena_alloc(a, sizeof *o->u.txn);
            err = o->u.txn ? apply(tx, ops[i].u.txn, p, pos, a, o->u.txn) : CAIRN_E_NOMEM;
            break;
        default:
            err = CAIRN_E_KEY_NOT_FOUND;
            break;
        }
        if (err)
            return err;
    }
    return 0;
}

int store_txn(store_tx *tx, const struct store_txn_req *req, struct arena *a,
              struct store_txn_res *res)
{
    if (tx->poison)
        return tx->poison;
    memset(res, 0, sizeof *res);
    int err = store_txn_check(req, tx->st->o.max_txn_ops);
    if (err)
        return err;
    /* etcd charges the quota for any txn that can write, whichever branch it takes */
    uint64_t cost = tx->write && !store_txn_is_read_only(req) ? store_txn_cost(req) : 0;
    if ((err = quota_charge(tx, cost)))
        return err;

    struct path p = {0};
    size_t pos = 0;
    err = path_build(tx, req, &p);
    bool writes = false;
    if (!err)
        writes = path_writes(req, &p, &pos);
    pos = 0;
    if (!err && writes && !tx->write)
        err = CAIRN_E_INVALID_ARGUMENT; /* the taken branch writes: needs a write transaction */
    if (!err && writes)
        err = path_check(tx, req, &p, &pos, check_put_op);
    pos = 0;
    if (!err)
        err = path_check(tx, req, &p, &pos, check_range_op);
    if (err) {
        free(p.taken);
        quota_refund(tx, cost);
        return err;
    }

    /* Apply in a child transaction: an error part-way (which etcd would panic on) discards the
     * txn's changes alone, leaving the rest of the group commit intact. The history is only
     * appended to: there the failed request's records are deleted instead (history.mdb has no
     * child transaction, which would cost a copy of LMDB's page lists per request). */
    MDB_txn *parent = tx->txn, *child = NULL;
    if (writes) {
        int rc = mdb_txn_begin(tx->st->env, parent, 0, &child);
        if (rc) {
            free(p.taken);
            return tx_fail(tx, rc);
        }
        tx->txn = child;
    }
    req_begin(tx);
    pos = 0;
    err = apply(tx, req, &p, &pos, a, res);
    free(p.taken);
    if (writes) {
        tx->txn = parent;
        if (err) {
            mdb_txn_abort(child);
            /* changes + 1: a change that failed after its history record was written */
            int herr = hist_unappend(tx, tx->rev + 1, tx->changes + 1);
            tx->changes = 0;
            /* the child's failure does not doom the parent: clear a poison it set */
            tx->poison = 0;
            quota_refund(tx, cost);
            if (herr)
                tx->poison = herr;
            return herr ? herr : err;
        }
        int rc = mdb_txn_commit(child);
        if (rc) {
            tx->changes = 0;
            return tx_fail(tx, rc);
        }
    }
    req_end(tx);
    res->revision = tx->rev;
    return err;
}
