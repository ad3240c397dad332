/* store/lease.c — the persistent lease table: grant, revoke (with the attached keys), checkpoint.
 *
 * Timers and expiry decisions live above the store (the lessor); here a lease is its id, granted
 * TTL, last checkpointed remaining TTL, and the keys attached to it. Revoking deletes the attached
 * keys in one revision, in key order, as etcd's lessor does. */
#include "store/internal.h"

#include <string.h>

#define LEASE_REC_SIZE 16

static int lease_read(store_tx *tx, int64_t id, int64_t *ttl, int64_t *remaining)
{
    uint8_t kb[8];
    lease_id_encode(kb, id);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_get(tx->txn, tx->st->lease, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ST_ABSENT;
    if (rc)
        return tx_fail(tx, rc);
    if (v.mv_size != LEASE_REC_SIZE)
        return CAIRN_E_CORRUPT;
    *ttl = le64_get(v.mv_data);
    *remaining = le64_get((const uint8_t *)v.mv_data + 8);
    return ST_FOUND;
}

static int lease_write(store_tx *tx, int64_t id, int64_t ttl, int64_t remaining)
{
    uint8_t kb[8], vb[LEASE_REC_SIZE];
    lease_id_encode(kb, id);
    le64_put(vb, ttl);
    le64_put(vb + 8, remaining);
    MDB_val k = {sizeof kb, kb}, v = {sizeof vb, vb};
    int rc = mdb_put(tx->txn, tx->st->lease, &k, &v, 0);
    return rc ? tx_fail(tx, rc) : 0;
}

int lease_exists(store_tx *tx, int64_t id)
{
    int64_t ttl, rem;
    return lease_read(tx, id, &ttl, &rem);
}

int store_lease_grant(store_tx *tx, int64_t id, int64_t ttl)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    if (id == 0)
        return CAIRN_E_INVALID_ARGUMENT; /* 0 is "no lease"; the lessor picks ids */
    int rc = lease_exists(tx, id);
    if (rc < 0)
        return rc;
    if (rc == ST_FOUND)
        return CAIRN_E_LEASE_EXIST;
    err = quota_charge(tx, QUOTA_LEASE_OVERHEAD);
    return err ? err : lease_write(tx, id, ttl, 0);
}

int store_lease_checkpoint(store_tx *tx, int64_t id, int64_t remaining_ttl)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    int64_t ttl, rem;
    int rc = lease_read(tx, id, &ttl, &rem);
    if (rc < 0)
        return rc;
    if (rc == ST_ABSENT)
        return CAIRN_E_LEASE_NOT_FOUND;
    return lease_write(tx, id, ttl, remaining_ttl);
}

/* Attached keys of a lease, sorted, copied into a. */
static int lease_keys(store_tx *tx, int64_t id, struct arena *a, store_bytes **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->lkeys, &c);
    if (rc)
        return tx_fail(tx, rc);
    uint8_t kb[8];
    lease_id_encode(kb, id);
    MDB_val k = {sizeof kb, kb}, v;
    size_t cap = 0;
    int err = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_DUP)) {
        store_bytes *p = arena_grow(a, *out, *n, &cap, sizeof *p);
        if (!p) {
            err = CAIRN_E_NOMEM;
            break;
        }
        *out = p;
        store_bytes *b = &(*out)[(*n)++];
        b->len = v.mv_size;
        if (!(b->data = arena_dup(a, v.mv_data, v.mv_size))) {
            err = CAIRN_E_NOMEM;
            break;
        }
    }
    mdb_cursor_close(c);
    if (err)
        return err;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : tx_fail(tx, rc);
}

int store_lease_revoke(store_tx *tx, int64_t id, int64_t *revision)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    int rc = lease_exists(tx, id);
    if (rc < 0)
        return rc;
    if (rc == ST_ABSENT)
        return CAIRN_E_LEASE_NOT_FOUND;
    struct arena a = ARENA_INIT;
    store_bytes *keys;
    size_t n;
    err = lease_keys(tx, id, &a, &keys, &n);
    req_begin(tx);
    for (size_t i = 0; i < n && !err; i++) {
        struct latest_rec old;
        rc = latest_get(tx, keys[i], &old);
        if (rc < 0)
            err = rc;
        else if (rc == ST_FOUND && !(old.flags & REC_TOMBSTONE))
            err = change_delete(tx, keys[i], &old);
    }
    if (!err) {
        uint8_t kb[8];
        lease_id_encode(kb, id);
        MDB_val k = {sizeof kb, kb};
        rc = mdb_del(tx->txn, tx->st->lease, &k, NULL);
        if (rc)
            err = tx_fail(tx, rc);
        rc = err ? 0 : mdb_del(tx->txn, tx->st->lkeys, &k, NULL);
        if (rc && rc != MDB_NOTFOUND)
            err = tx_fail(tx, rc);
    }
    req_end(tx);
    arena_free(&a);
    if (!err && revision)
        *revision = tx->rev;
    return err;
}

int store_lease_get(store_tx *tx, int64_t id, bool keys, struct arena *a, struct store_lease *out)
{
    memset(out, 0, sizeof *out);
    int rc = lease_read(tx, id, &out->ttl, &out->remaining_ttl);
    if (rc < 0)
        return rc;
    if (rc == ST_ABSENT)
        return CAIRN_E_LEASE_NOT_FOUND;
    out->id = id;
    return keys ? lease_keys(tx, id, a, &out->keys, &out->n_keys) : 0;
}

int store_lease_list(store_tx *tx, struct arena *a, struct store_lease **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->lease, &c);
    if (rc)
        return tx_fail(tx, rc);
    MDB_val k, v;
    size_t cap = 0;
    int err = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || v.mv_size != LEASE_REC_SIZE) {
            err = CAIRN_E_CORRUPT;
            break;
        }
        struct store_lease *p = arena_grow(a, *out, *n, &cap, sizeof *p);
        if (!p) {
            err = CAIRN_E_NOMEM;
            break;
        }
        *out = p;
        struct store_lease *l = &(*out)[(*n)++];
        memset(l, 0, sizeof *l);
        l->id = lease_id_decode(k.mv_data);
        l->ttl = le64_get(v.mv_data);
        l->remaining_ttl = le64_get((const uint8_t *)v.mv_data + 8);
    }
    mdb_cursor_close(c);
    if (err)
        return err;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : tx_fail(tx, rc);
}
