/* store/requests.c — the replicated memory of applied request ids, so a request applied once is not
 * applied again.
 *
 * A follower forwards a write to the leader; when the call fails without an answer (the leader
 * died, leadership moved) the write may or may not be in the log, and the follower sends it again.
 * The applier records the id of every such request with the index it was applied at and drops a
 * second copy. Every member applies the same entries, so every member records the same ids and
 * decides the same. The memory is bounded: beyond `keep` ids the oldest are forgotten, and the
 * highest index among the forgotten ones is kept, so that the applier can tell when the memory no
 * longer reaches back far enough to answer for a request.
 *
 * Records: "reqs": request id (8 bytes big-endian) → index it was applied at (8 bytes big-endian);
 * "reqlog": index, id (16 bytes big-endian) → nothing, in index order, for forgetting the oldest
 * first; meta "reqs_forgotten" → the highest forgotten index (8 bytes little-endian, as meta's
 * other integers), absent while nothing was forgotten. Not part of HashKV, which hashes keys. */
#include "store/internal.h"

#include <string.h>

static const char forgotten_key[] = "reqs_forgotten";

int store_request_seen(store_tx *tx, uint64_t id, bool *seen)
{
    *seen = false;
    if (tx->poison)
        return tx->poison;
    uint8_t kb[8];
    be64_put(kb, id);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_get(tx->txn, tx->st->reqs, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return tx_fail(tx, rc);
    *seen = true;
    return 0;
}

int store_requests_forgotten(store_tx *tx, uint64_t *index)
{
    return meta_get_u64(tx, forgotten_key, index);
}

/* Forgets the oldest record (the first of reqlog, at cursor c) and raises the forgotten index to
 * its index. */
static int forget_oldest(store_tx *tx, MDB_cursor *c)
{
    MDB_val k, v;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    if (rc)
        return tx_fail(tx, rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc);
    if (k.mv_size != 16)
        return tx_fail(tx, MDB_CORRUPTED);
    uint64_t index = be64_get(k.mv_data);
    uint8_t idb[8];
    memcpy(idb, (const uint8_t *)k.mv_data + 8, sizeof idb);
    if ((rc = mdb_cursor_del(c, 0)))
        return tx_fail(tx, rc);
    MDB_val ik = {sizeof idb, idb};
    rc = mdb_del(tx->txn, tx->st->reqs, &ik, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return tx_fail(tx, rc);
    uint64_t was;
    int err = store_requests_forgotten(tx, &was);
    if (err)
        return err;
    return index > was ? meta_put_u64(tx, forgotten_key, index) : 0;
}

int store_request_record(store_tx *tx, uint64_t id, uint64_t index, uint64_t keep)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    uint8_t kb[8], vb[8], lb[16];
    be64_put(kb, id);
    be64_put(vb, index);
    be64_put(lb, index);
    be64_put(lb + 8, id);
    MDB_val k = {sizeof kb, kb}, v = {sizeof vb, vb};
    int rc = mdb_put(tx->txn, tx->st->reqs, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return CAIRN_E_INVALID_ARGUMENT; /* the caller checks store_request_seen() first */
    if (rc)
        return tx_fail(tx, rc);
    MDB_val lk = {sizeof lb, lb}, lv = {0, NULL};
    if ((rc = mdb_put(tx->txn, tx->st->reqlog, &lk, &lv, 0)))
        return tx_fail(tx, rc);
    MDB_stat ms;
    if ((rc = mdb_stat(tx->txn, tx->st->reqs, &ms)))
        return tx_fail(tx, rc);
    if (ms.ms_entries <= keep)
        return 0;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(tx->txn, tx->st->reqlog, &c)))
        return tx_fail(tx, rc);
    for (size_t n = ms.ms_entries; n > keep && !err; n--)
        err = forget_oldest(tx, c);
    mdb_cursor_close(c);
    return err;
}
