/* store/feed.c — the change feed: every change after the compacted revision, in revision order.
 *
 * The history table is the feed: its records are in (revision, sub-revision) order and each names
 * the key's previous change, which gives an event's prev_kv without another search. Watch catch-up
 * and live delivery both read it. */
#include "store/internal.h"

#include <string.h>

int store_feed_open(store_tx *tx, int64_t from_rev, bool prev_kv, struct store_feed *f)
{
    memset(f, 0, sizeof *f);
    if (tx->poison)
        return tx->poison;
    if (from_rev <= 0)
        from_rev = tx->rev + 1;
    if (from_rev < tx->compact_rev)
        return CAIRN_E_COMPACTED;
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->htxn, tx->st->hist, &c);
    if (rc)
        return tx_fail(tx, rc);
    f->tx = tx;
    f->cursor = c;
    f->next_rev = from_rev;
    f->next_sub = 0;
    f->prev_kv = prev_kv;
    return 0;
}

static int event_of(store_tx *tx, struct arena *a, int64_t main, int64_t sub,
                    const struct hist_rec *h, bool want_prev, struct store_event *ev)
{
    memset(ev, 0, sizeof *ev);
    ev->sub_revision = sub;
    ev->kv.mod_revision = main;
    int err = tx_out_bytes(tx, a, h->key, &ev->kv.key);
    if (err)
        return err;
    if (h->flags & REC_TOMBSTONE) {
        ev->type = STORE_EVENT_DELETE;
    } else {
        ev->type = STORE_EVENT_PUT;
        ev->kv.create_revision = h->create;
        ev->kv.version = h->version;
        ev->kv.lease = h->lease;
        if ((err = tx_out_bytes(tx, a, h->value, &ev->kv.value)))
            return err;
    }
    if (!want_prev || !h->prev_main)
        return 0;
    struct hist_rec p;
    int rc = hist_get(tx, h->prev_main, h->prev_sub, &p);
    if (rc < 0)
        return rc;
    if (rc == ST_ABSENT || (p.flags & REC_TOMBSTONE))
        return 0; /* created by this change, or compacted: no previous key-value */
    struct store_kv *pk = arena_alloc(a, sizeof *pk);
    if (!pk)
        return CAIRN_E_NOMEM;
    *pk = (struct store_kv){ev->kv.key, {0}, p.create, h->prev_main, p.version, p.lease};
    if ((err = tx_out_bytes(tx, a, p.value, &pk->value)))
        return err;
    ev->prev_kv = pk;
    return 0;
}

int store_feed_next(struct store_feed *f, struct arena *a, struct store_event *ev)
{
    if (!f->cursor || f->eof_seen)
        return 0;
    store_tx *tx = f->tx;
    uint8_t kb[REV_KEY_SIZE];
    rev_encode(kb, f->next_rev, f->next_sub);
    MDB_val k = {sizeof kb, kb}, v;
    /* Seek to the next position each time (one B-tree descent) rather than step the cursor: correct
     * even if the transaction wrote to the history since the last call. */
    int rc = mdb_cursor_get(f->cursor, &k, &v, MDB_SET_RANGE);
    if (rc == MDB_NOTFOUND) {
        f->eof_seen = true;
        return 0;
    }
    if (rc)
        return tx_fail(tx, rc);
    int64_t main, sub;
    struct hist_rec h;
    int err = rev_decode(k.mv_data, k.mv_size, &main, &sub);
    if (!err)
        err = hist_rec_decode(v.mv_data, v.mv_size, &h);
    if (err)
        return err;
    if (main > tx->rev) {
        f->eof_seen = true;
        return 0;
    }
    err = event_of(tx, a, main, sub, &h, f->prev_kv, ev);
    if (err)
        return err;
    f->next_rev = main;
    f->next_sub = sub + 1;
    return 1;
}

void store_feed_close(struct store_feed *f)
{
    if (f->cursor)
        mdb_cursor_close(f->cursor);
    f->cursor = NULL;
}
