/* store/kv.c — keys and their history: Range, Put and DeleteRange with etcd 3.4's semantics.
 *
 * The key table holds each key's latest change without its value; a current read of a value is a
 * lookup in the key table, then one of that change in the history table. Keeping values out of the
 * key table keeps it small: a group commit of puts to scattered keys rewrites a few of its pages,
 * where values inline made each put dirty a page of its own. A read at an older revision follows
 * the key's chain of changes backwards through the history table (each change records the previous
 * one) until it reaches one at or below the revision. Writes append the change to the history
 * (revision order, so always at the end of the B-tree) and replace the key's latest record. Deleted
 * keys keep a tombstone as their latest record until compaction passes the delete, so that older
 * revisions can still be read. */
#include "store/internal.h"

#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Lookups */

int latest_get(store_tx *tx, store_bytes key, struct latest_rec *out)
{
    MDB_val k = {key.len, (void *)key.data}, v;
    int rc = mdb_get(tx->txn, tx->st->kv, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ST_ABSENT;
    if (rc)
        return tx_fail(tx, rc);
    return latest_rec_decode(v.mv_data, v.mv_size, out);
}

int hist_get(store_tx *tx, int64_t main, int64_t sub, struct hist_rec *out)
{
    uint8_t kb[REV_KEY_SIZE];
    rev_encode(kb, main, sub);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_get(tx->htxn, tx->st->hist, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ST_ABSENT;
    if (rc)
        return tx_fail(tx, rc);
    return hist_rec_decode(v.mv_data, v.mv_size, out);
}

/* The value of key's latest change l, which is not a delete: its history record (compaction never
 * removes a key's latest change). */
static int latest_value(store_tx *tx, store_bytes key, const struct latest_rec *l,
                        store_bytes *value)
{
    struct hist_rec h;
    int rc = hist_get(tx, l->mod_main, l->mod_sub, &h);
    if (rc < 0)
        return rc;
    if (rc == ST_ABSENT || (h.flags & REC_TOMBSTONE) || h.key.len != key.len ||
        memcmp(h.key.data, key.data, key.len))
        return CAIRN_E_CORRUPT;
    *value = h.value;
    return 0;
}

int kv_at(store_tx *tx, store_bytes key, const struct latest_rec *l, int64_t rev, bool want_value,
          struct store_kv *kv, int64_t *sub_out)
{
    int64_t ignored;
    if (!sub_out)
        sub_out = &ignored;
    *sub_out = -1;
    if (l->mod_main <= rev) {
        *sub_out = l->mod_sub;
        if (l->flags & REC_TOMBSTONE)
            return 0;
        kv->value = (store_bytes){0};
        if (want_value) {
            int rc = latest_value(tx, key, l, &kv->value);
            if (rc < 0)
                return rc;
        }
        kv->key = key;
        kv->create_revision = l->create;
        kv->mod_revision = l->mod_main;
        kv->version = l->version;
        kv->lease = l->lease;
        return 1;
    }
    /* Walk back from the latest change. A missing link means the older changes were compacted away:
     * the only changes compaction removes are ones superseded at or before the compacted revision,
     * or tombstones there, so at any readable revision the key did not exist. */
    struct hist_rec h;
    int64_t main = l->mod_main, sub = l->mod_sub;
    for (;;) {
        int rc = hist_get(tx, main, sub, &h);
        if (rc == ST_ABSENT)
            return 0;
        if (rc < 0)
            return rc;
        if (main <= rev) {
            *sub_out = sub;
            break;
        }
        if (h.prev_main == 0)
            return 0;
        if (h.prev_main > main || (h.prev_main == main && h.prev_sub >= sub))
            return CAIRN_E_CORRUPT; /* a chain must go back in time */
        main = h.prev_main;
        sub = h.prev_sub;
    }
    if (h.flags & REC_TOMBSTONE)
        return 0;
    kv->key = key;
    kv->value = want_value ? h.value : (store_bytes){0};
    kv->create_revision = h.create;
    kv->mod_revision = main;
    kv->version = h.version;
    kv->lease = h.lease;
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Changes */

static int hist_append(store_tx *tx, int64_t main, int64_t sub, const struct hist_rec *r)
{
    uint8_t kb[REV_KEY_SIZE];
    rev_encode(kb, main, sub);
    MDB_val k = {sizeof kb, kb}, v = {hist_rec_size(r), NULL};
    int rc = mdb_put(tx->htxn, tx->st->hist, &k, &v, MDB_APPEND | MDB_RESERVE);
    if (rc == MDB_KEYEXIST)
        return tx_fail(tx, MDB_CORRUPTED); /* history above the current revision */
    if (rc)
        return tx_fail(tx, rc);
    hist_rec_encode(r, v.mv_data);
    return 0;
}

int hist_unappend(store_tx *tx, int64_t main, int64_t changes)
{
    for (int64_t sub = 0; sub < changes; sub++) {
        uint8_t kb[REV_KEY_SIZE];
        rev_encode(kb, main, sub);
        MDB_val k = {sizeof kb, kb};
        int rc = mdb_del(tx->htxn, tx->st->hist, &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return tx_fail(tx, rc);
    }
    return 0;
}

static int latest_put(store_tx *tx, store_bytes key, const struct latest_rec *l)
{
    MDB_val k = {key.len, (void *)key.data}, v = {latest_rec_size(l), NULL};
    int rc = mdb_put(tx->txn, tx->st->kv, &k, &v, MDB_RESERVE);
    if (rc)
        return tx_fail(tx, rc);
    latest_rec_encode(l, v.mv_data);
    return 0;
}

/* Moves key from lease `from` to lease `to` in the attachment table (0 = none). */
static int lease_attach(store_tx *tx, store_bytes key, int64_t from, int64_t to)
{
    if (from == to)
        return 0;
    uint8_t id[8];
    MDB_val k = {sizeof id, id}, v = {key.len, (void *)key.data};
    int rc;
    if (from) {
        lease_id_encode(id, from);
        rc = mdb_del(tx->txn, tx->st->lkeys, &k, &v);
        if (rc && rc != MDB_NOTFOUND)
            return tx_fail(tx, rc);
    }
    if (to) {
        lease_id_encode(id, to);
        rc = mdb_put(tx->txn, tx->st->lkeys, &k, &v, MDB_NODUPDATA);
        if (rc && rc != MDB_KEYEXIST)
            return tx_fail(tx, rc);
    }
    return 0;
}

int change_put(store_tx *tx, store_bytes key, store_bytes value, int64_t lease,
               const struct latest_rec *old)
{
    int64_t main = tx->rev + 1, sub = tx->changes;
    bool live = old && !(old->flags & REC_TOMBSTONE);
    struct hist_rec h = {
        .create = live ? old->create : main,
        .version = live ? old->version + 1 : 1,
        .lease = lease,
        .prev_main = old ? old->mod_main : 0,
        .prev_sub = old ? old->mod_sub : 0,
        .key = key,
        .value = value,
    };
    int64_t old_lease = live ? old->lease : 0;
    struct latest_rec l = {0, main, sub, h.create, h.version, lease};
    int err = hist_append(tx, main, sub, &h);
    if (!err)
        err = latest_put(tx, key, &l);
    if (!err)
        err = lease_attach(tx, key, old_lease, lease);
    if (err)
        return err;
    tx->changes++;
    return 0;
}

int change_delete(store_tx *tx, store_bytes key, const struct latest_rec *old)
{
    int64_t main = tx->rev + 1, sub = tx->changes;
    struct hist_rec h = {
        .flags = REC_TOMBSTONE,
        .prev_main = old->mod_main,
        .prev_sub = old->mod_sub,
        .key = key,
    };
    struct latest_rec l = {.flags = REC_TOMBSTONE, .mod_main = main, .mod_sub = sub};
    int64_t old_lease = old->lease;
    int err = hist_append(tx, main, sub, &h);
    if (!err)
        err = latest_put(tx, key, &l);
    if (!err)
        err = lease_attach(tx, key, old_lease, 0);
    if (err)
        return err;
    tx->changes++;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Validation (etcd's v3rpc checks, plus the store's size limits) */

int check_range(const struct store_range_req *req)
{
    if (req->key.len == 0)
        return CAIRN_E_EMPTY_KEY;
    if (req->sort_order < STORE_SORT_NONE || req->sort_order > STORE_SORT_DESCEND ||
        req->sort_target < STORE_SORT_KEY || req->sort_target > STORE_SORT_VALUE)
        return CAIRN_E_INVALID_ARGUMENT;
    return 0;
}

int check_put(const struct store_put_req *req)
{
    if (req->key.len == 0)
        return CAIRN_E_EMPTY_KEY;
    if (req->ignore_value && req->value.len != 0)
        return CAIRN_E_VALUE_PROVIDED;
    if (req->ignore_lease && req->lease != 0)
        return CAIRN_E_LEASE_PROVIDED;
    if (req->key.len > STORE_MAX_KEY_SIZE)
        return CAIRN_E_KEY_TOO_LARGE;
    if (req->value.len > STORE_MAX_VALUE_SIZE)
        return CAIRN_E_VALUE_TOO_LARGE;
    return 0;
}

int check_delete(const struct store_delete_req *req)
{
    return req->key.len == 0 ? CAIRN_E_EMPTY_KEY : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Iterating a key range */

/* [key, end) as etcd reads it: end empty = the key alone; end "\0" = no upper bound. */
struct span {
    store_bytes key;
    store_bytes end;
    bool single;
    bool unbounded;
};

static struct span span_of(store_bytes key, store_bytes end)
{
    struct span s = {key, end, end.len == 0, end.len == 1 && end.data[0] == 0};
    return s;
}

static int bytes_cmp(store_bytes a, store_bytes b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.data, b.data, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

typedef int (*span_fn)(store_tx *tx, store_bytes key, const struct latest_rec *l, void *ctx);

/* Calls fn for each key table entry in the span, in key order, until fn returns non-zero (a
 * positive value stops the walk without error). */
static int span_walk(store_tx *tx, struct span s, span_fn fn, void *ctx)
{
    struct latest_rec l;
    if (s.single) {
        if (s.key.len > STORE_MAX_KEY_SIZE)
            return 0; /* cannot exist */
        int rc = latest_get(tx, s.key, &l);
        if (rc == ST_ABSENT)
            return 0;
        if (rc < 0)
            return rc;
        rc = fn(tx, s.key, &l, ctx);
        return rc > 0 ? 0 : rc;
    }
    if (!s.unbounded && bytes_cmp(s.end, s.key) <= 0)
        return 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->kv, &c);
    if (rc)
        return tx_fail(tx, rc);
    /* LMDB cannot seek to a key above its size limit; such a key sorts after its 511-byte prefix.
     */
    store_bytes start = s.key;
    if (start.len > STORE_MAX_KEY_SIZE)
        start.len = STORE_MAX_KEY_SIZE;
    MDB_val k = {start.len, (void *)start.data}, v;
    int err = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        store_bytes kb = {k.mv_data, k.mv_size};
        if (bytes_cmp(kb, s.key) < 0)
            continue;
        if (!s.unbounded && bytes_cmp(kb, s.end) >= 0)
            break;
        err = latest_rec_decode(v.mv_data, v.mv_size, &l);
        if (!err)
            err = fn(tx, kb, &l, ctx);
        if (err)
            break;
    }
    mdb_cursor_close(c);
    if (err)
        return err > 0 ? 0 : err;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : tx_fail(tx, rc);
}

/* ---------------------------------------------------------------------------------------------- */
/* Range */

struct range_ctx {
    const struct store_range_req *req;
    struct arena *a;
    int64_t rev;     /* revision read */
    size_t keep;     /* how many key-values to keep (the rest are only counted) */
    bool want_value; /* load values: asked for, or needed to sort by value */
    struct store_kv *kvs;
    size_t n, cap;
    int64_t count;
    bool more;
};

static bool filtered_out(const struct store_range_req *r, const struct store_kv *kv)
{
    return (r->max_mod_revision && kv->mod_revision > r->max_mod_revision) ||
           (r->min_mod_revision && kv->mod_revision < r->min_mod_revision) ||
           (r->max_create_revision && kv->create_revision > r->max_create_revision) ||
           (r->min_create_revision && kv->create_revision < r->min_create_revision);
}

static int kvs_push(struct range_ctx *c, const struct store_kv *kv)
{
    struct store_kv *p = arena_grow(c->a, c->kvs, c->n, &c->cap, sizeof *p);
    if (!p)
        return CAIRN_E_NOMEM;
    c->kvs = p;
    c->kvs[c->n++] = *kv;
    return 0;
}

static int range_one(store_tx *tx, store_bytes key, const struct latest_rec *l, void *vctx)
{
    struct range_ctx *c = vctx;
    const struct store_range_req *r = c->req;
    struct store_kv kv;
    int rc = kv_at(tx, key, l, c->rev, c->want_value, &kv, NULL);
    if (rc <= 0)
        return rc;
    c->count++;
    if (r->count_only || filtered_out(r, &kv))
        return 0;
    if (c->n >= c->keep)
        return 0;
    int err = tx_out_bytes(tx, c->a, kv.key, &kv.key);
    if (!err)
        err = tx_out_bytes(tx, c->a, kv.value, &kv.value);
    if (!err)
        err = kvs_push(c, &kv);
    return err;
}

static int target_cmp(int target, const struct store_kv *a, const struct store_kv *b)
{
    int64_t x, y;
    switch (target) {
    case STORE_SORT_VERSION:
        x = a->version, y = b->version;
        break;
    case STORE_SORT_CREATE:
        x = a->create_revision, y = b->create_revision;
        break;
    case STORE_SORT_MOD:
        x = a->mod_revision, y = b->mod_revision;
        break;
    case STORE_SORT_VALUE:
        return bytes_cmp(a->value, b->value);
    default:
        return 0;
    }
    return x < y ? -1 : x > y;
}

/* qsort has no context argument; sorting happens on the owning thread only, one sort at a time
 * per thread. */
static _Thread_local int sort_target;
static _Thread_local bool sort_descend;

/* Ties stay in key order in both directions, as etcd's (Go's) sort leaves them for small results.
 */
static int kv_sort_cmp(const void *pa, const void *pb)
{
    const struct store_kv *a = pa, *b = pb;
    int c =
        sort_target == STORE_SORT_KEY ? bytes_cmp(a->key, b->key) : target_cmp(sort_target, a, b);
    if (c)
        return sort_descend ? -c : c;
    return bytes_cmp(a->key, b->key);
}

int range_op(store_tx *tx, const struct store_range_req *req, struct arena *a,
             struct store_range_res *res)
{
    int64_t cur = req_cur_rev(tx);
    int64_t rev = req->revision;
    memset(res, 0, sizeof *res);
    if (rev > cur) {
        res->revision = cur;
        return CAIRN_E_FUTURE_REV;
    }
    if (rev <= 0)
        rev = cur;
    if (rev < tx->compact_rev)
        return CAIRN_E_COMPACTED;

    /* As etcd's applierV3backend.Range: with a sort order or a filter, every key-value is fetched,
     * then filtered, sorted and cut to the limit; otherwise only the first limit + 1 in key order
     * are fetched (the one extra tells `more`), and those are what a sort target sorts. */
    bool filters = req->min_mod_revision || req->max_mod_revision || req->min_create_revision ||
                   req->max_create_revision;
    bool fetch_all = req->sort_order != STORE_SORT_NONE || filters;
    /* a sort target other than KEY with order NONE sorts ascending */
    int order = req->sort_order;
    if (req->sort_target != STORE_SORT_KEY && order == STORE_SORT_NONE)
        order = STORE_SORT_ASCEND;
    bool needs_sort = order == STORE_SORT_DESCEND ||
                      (order == STORE_SORT_ASCEND && req->sort_target != STORE_SORT_KEY);

    /* keys_only clears values in the response only: sorting by value still sees them (etcd);
     * count_only reads no value at all */
    struct range_ctx c = {.req = req,
                          .a = a,
                          .rev = rev,
                          .keep = fetch_all || req->limit <= 0 ? SIZE_MAX : (size_t)req->limit + 1,
                          .want_value = !req->count_only &&
                                        (!req->keys_only || req->sort_target == STORE_SORT_VALUE)};
    int err = span_walk(tx, span_of(req->key, req->range_end), range_one, &c);
    if (err)
        return err;
    if (needs_sort && c.n > 1) {
        sort_target = req->sort_target;
        sort_descend = order == STORE_SORT_DESCEND;
        qsort(c.kvs, c.n, sizeof *c.kvs, kv_sort_cmp);
    }
    if (req->limit > 0 && (int64_t)c.n > req->limit) {
        c.n = (size_t)req->limit;
        c.more = true;
    }
    if (req->keys_only)
        for (size_t i = 0; i < c.n; i++)
            c.kvs[i].value = (store_bytes){0};
    res->kvs = c.kvs;
    res->n_kvs = c.n;
    res->count = c.count;
    res->more = c.more;
    res->revision = cur;
    return 0;
}

int store_range(store_tx *tx, const struct store_range_req *req, struct arena *a,
                struct store_range_res *res)
{
    if (tx->poison)
        return tx->poison;
    int err = check_range(req);
    if (err)
        return err;
    return range_op(tx, req, a, res);
}

/* ---------------------------------------------------------------------------------------------- */
/* Put */

int put_op(store_tx *tx, const struct store_put_req *req, struct arena *a,
           struct store_put_res *res)
{
    struct latest_rec old;
    int rc = latest_get(tx, req->key, &old);
    if (rc < 0)
        return rc;
    bool exists = rc == ST_FOUND;
    bool live = exists && !(old.flags & REC_TOMBSTONE);
    if ((req->ignore_value || req->ignore_lease) && !live)
        return CAIRN_E_KEY_NOT_FOUND; /* ignore_{value,lease} need the previous key-value */

    /* The old value lives in a page this change may rewrite: copy what outlives the change. */
    store_bytes value = req->value;
    int err = 0;
    res->prev_kv = NULL;
    if (req->ignore_value || (req->prev_kv && live)) {
        struct store_kv prev;
        rc = kv_at(tx, req->key, &old, old.mod_main, true, &prev, NULL);
        if (rc <= 0)
            return rc < 0 ? rc : CAIRN_E_CORRUPT; /* a live key reads at its own revision */
        prev.value.data = arena_dup(a, prev.value.data, prev.value.len);
        if (!prev.value.data)
            return CAIRN_E_NOMEM;
        if (req->ignore_value)
            value = prev.value;
        if (req->prev_kv) {
            struct store_kv *p = arena_alloc(a, sizeof *p);
            if (!p || !(prev.key.data = arena_dup(a, req->key.data, req->key.len)))
                return CAIRN_E_NOMEM;
            *p = prev;
            res->prev_kv = p;
        }
    }
    int64_t lease = req->ignore_lease ? old.lease : req->lease;
    err = change_put(tx, req->key, value, lease, exists ? &old : NULL);
    if (err)
        return err;
    res->revision = tx->rev + 1;
    return 0;
}

int store_put(store_tx *tx, const struct store_put_req *req, struct arena *a,
              struct store_put_res *res)
{
    int err = tx_check_write(tx);
    if (!err)
        err = check_put(req);
    if (err)
        return err;
    if (req->lease) { /* etcd's Put looks the lease up before anything else */
        int rc = lease_exists(tx, req->lease);
        if (rc < 0)
            return rc;
        if (rc == ST_ABSENT)
            return CAIRN_E_LEASE_NOT_FOUND;
    }
    uint64_t cost = QUOTA_KV_OVERHEAD + req->key.len + req->value.len;
    err = quota_charge(tx, cost);
    if (err)
        return err;
    req_begin(tx);
    err = put_op(tx, req, a, res);
    req_end(tx);
    if (err)
        quota_refund(tx, cost);
    return err;
}

/* ---------------------------------------------------------------------------------------------- */
/* DeleteRange */

struct del_item {
    store_bytes key;
    struct latest_rec old;
    store_bytes value; /* the old value, when prev_kv asks for it */
};

struct del_ctx {
    struct arena *a;
    bool want_value;
    struct del_item *items;
    size_t n, cap;
};

/* Collects the live keys first: deleting rewrites the key table the walk is reading. */
static int del_collect(store_tx *tx, store_bytes key, const struct latest_rec *l, void *vctx)
{
    struct del_ctx *c = vctx;
    if (l->flags & REC_TOMBSTONE)
        return 0;
    struct del_item *items = arena_grow(c->a, c->items, c->n, &c->cap, sizeof *items);
    if (!items)
        return CAIRN_E_NOMEM;
    c->items = items;
    struct del_item *it = &c->items[c->n];
    it->old = *l;
    it->key.len = key.len;
    it->key.data = arena_dup(c->a, key.data, key.len);
    it->value = (store_bytes){0};
    if (c->want_value) {
        int rc = latest_value(tx, key, l, &it->value);
        if (rc < 0)
            return rc;
        if (!(it->value.data = arena_dup(c->a, it->value.data, it->value.len)))
            return CAIRN_E_NOMEM;
    }
    if (!it->key.data)
        return CAIRN_E_NOMEM;
    c->n++;
    return 0;
}

int delete_op(store_tx *tx, const struct store_delete_req *req, struct arena *a,
              struct store_delete_res *res)
{
    memset(res, 0, sizeof *res);
    struct del_ctx c = {.a = a, .want_value = req->prev_kv};
    int err = span_walk(tx, span_of(req->key, req->range_end), del_collect, &c);
    if (err)
        return err;
    if (req->prev_kv && c.n) {
        res->prev_kvs = arena_alloc(a, c.n * sizeof *res->prev_kvs);
        if (!res->prev_kvs)
            return CAIRN_E_NOMEM;
        for (size_t i = 0; i < c.n; i++) {
            const struct latest_rec *l = &c.items[i].old;
            res->prev_kvs[i] = (struct store_kv){c.items[i].key, c.items[i].value, l->create,
                                                 l->mod_main,    l->version,       l->lease};
        }
        res->n_prev_kvs = c.n;
    }
    for (size_t i = 0; i < c.n; i++) {
        err = change_delete(tx, c.items[i].key, &c.items[i].old);
        if (err)
            return err;
    }
    res->deleted = (int64_t)c.n;
    res->revision = req_cur_rev(tx);
    return 0;
}

int store_delete_range(store_tx *tx, const struct store_delete_req *req, struct arena *a,
                       struct store_delete_res *res)
{
    int err = tx_check_write(tx);
    if (!err)
        err = check_delete(req);
    if (err)
        return err;
    req_begin(tx);
    err = delete_op(tx, req, a, res);
    req_end(tx);
    return err;
}
