/* store/compact.c — Compact(revision): drop history that no read at or above it can see.
 *
 * etcd keeps, for each key, its latest change at or below the compacted revision unless that change
 * is a delete; everything older goes (mvcc/key_index.go compact). Here every change records the
 * key's previous change, so a change r at or below the compacted revision makes its predecessor
 * removable, and a tombstone there is removable itself (and so is the key's table entry, unless the
 * key was created again). One pass over the history between the last pass and the new compacted
 * revision finds all of it. The pass runs in bounded steps, each in the caller's write transaction,
 * and records its progress in the same transaction, so it resumes after a restart. The history
 * records a step finds go to the transaction's removals: history.mdb loses them when the commit
 * that records the progress is durable (env.c), so the two files never disagree on what was
 * compacted. */
#include "store/internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

int store_compact(store_tx *tx, int64_t revision)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    if (revision <= tx->compact_rev)
        return CAIRN_E_COMPACTED;
    if (revision > tx->rev)
        return CAIRN_E_FUTURE_REV;
    tx->compact_rev = revision;
    tx->meta_dirty = true;
    return 0;
}

int removals_add(store_tx *tx, const uint8_t rev[REV_KEY_SIZE])
{
    struct removals *r = &tx->rm;
    if (r->n == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 256;
        void *p = realloc(r->rev, cap * sizeof *r->rev);
        if (!p)
            return tx_fail(tx, ENOMEM);
        r->rev = p;
        r->cap = cap;
    }
    memcpy(r->rev[r->n++], rev, REV_KEY_SIZE);
    return 0;
}

/* Deletes the key's table entry if its latest change is still the tombstone (main, sub). */
static int latest_drop(store_tx *tx, store_bytes key, int64_t main, int64_t sub)
{
    struct latest_rec l;
    int rc = latest_get(tx, key, &l);
    if (rc != ST_FOUND)
        return rc < 0 ? rc : 0;
    if (l.mod_main != main || l.mod_sub != sub)
        return 0;
    MDB_val k = {key.len, (void *)key.data};
    rc = mdb_del(tx->txn, tx->st->kv, &k, NULL);
    return rc && rc != MDB_NOTFOUND ? tx_fail(tx, rc) : 0;
}

int removals_of_change(store_tx *tx, const uint8_t rev[REV_KEY_SIZE], const struct hist_rec *h)
{
    int err = 0;
    if (h->prev_main) {
        uint8_t prev[REV_KEY_SIZE];
        rev_encode(prev, h->prev_main, h->prev_sub);
        err = removals_add(tx, prev);
    }
    if (!err && (h->flags & REC_TOMBSTONE))
        err = removals_add(tx, rev);
    return err;
}

int store_compact_step(store_tx *tx, bool *done)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    *done = true;
    int64_t target = tx->compact_rev;
    if (target < 0)
        return 0;

    /* The scan changes nothing in history.mdb (its removals wait for the commit), so a tombstone's
     * key, borrowed from the history's page, stays valid while its key table entry goes. */
    unsigned batch = tx->st->o.compact_batch;
    size_t scanned = 0;
    int64_t last_main = tx->compact_done_main, last_sub = tx->compact_done_sub;
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->htxn, tx->st->hist, &c);
    if (rc)
        return tx_fail(tx, rc);
    uint8_t start[REV_KEY_SIZE];
    rev_encode(start, last_main, last_sub + 1);
    MDB_val k = {sizeof start, start}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && scanned < batch;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        int64_t main, sub;
        struct hist_rec h;
        if ((err = rev_decode(k.mv_data, k.mv_size, &main, &sub)) ||
            (err = hist_rec_decode(v.mv_data, v.mv_size, &h)))
            break;
        if (main > target)
            break;
        scanned++;
        last_main = main;
        last_sub = sub;
        if ((err = removals_of_change(tx, k.mv_data, &h)))
            break;
        if ((h.flags & REC_TOMBSTONE) && (err = latest_drop(tx, h.key, main, sub)))
            break;
    }
    mdb_cursor_close(c);
    if (!err && rc && rc != MDB_NOTFOUND)
        err = tx_fail(tx, rc);
    if (err)
        return err;
    if (scanned) {
        tx->compact_done_main = tx->rm.done_main = last_main;
        tx->compact_done_sub = tx->rm.done_sub = last_sub;
        tx->meta_dirty = true;
    }
    *done = scanned < batch;
    return 0;
}
