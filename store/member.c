/* store/member.c — the member table: the cluster's members as the replicated log describes them.
 *
 * Membership is replicated state like the keys: every member applies the same changes (a member
 * publishing its name and client URLs, a member added or removed) at the same index, so that
 * MemberList answers the same on every member and survives restarts with the data. The store does
 * not interpret a member's record; the layer above encodes it (etcd's Member message). Record: key
 * = member ID (8 bytes, big-endian), value = the caller's bytes. */
#include "store/internal.h"

#include <string.h>

int store_member_put(store_tx *tx, uint64_t id, store_bytes data)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    uint8_t kb[8];
    be64_put(kb, id);
    MDB_val k = {sizeof kb, kb}, v = {data.len, (void *)data.data};
    int rc = mdb_put(tx->txn, tx->st->member, &k, &v, 0);
    return rc ? tx_fail(tx, rc) : 0;
}

int store_member_delete(store_tx *tx, uint64_t id, bool *removed)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    uint8_t kb[8];
    be64_put(kb, id);
    MDB_val k = {sizeof kb, kb};
    int rc = mdb_del(tx->txn, tx->st->member, &k, NULL);
    *removed = rc == 0;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : tx_fail(tx, rc);
}

int store_member_list(store_tx *tx, struct arena *a, struct store_member **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (tx->poison)
        return tx->poison;
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->member, &c);
    if (rc)
        return tx_fail(tx, rc);
    MDB_val k, v;
    struct store_member *arr = NULL;
    size_t cap = 0;
    int err = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8) {
            err = CAIRN_E_CORRUPT;
            break;
        }
        if (!(arr = arena_grow(a, arr, *n, &cap, sizeof *arr))) {
            err = CAIRN_E_NOMEM;
            break;
        }
        arr[*n].id = be64_get(k.mv_data);
        err = tx_out_bytes(tx, a, (store_bytes){v.mv_data, v.mv_size}, &arr[*n].data);
        if (err)
            break;
        (*n)++;
    }
    mdb_cursor_close(c);
    if (!err && rc && rc != MDB_NOTFOUND)
        err = tx_fail(tx, rc);
    if (err) {
        *n = 0;
        return err;
    }
    *out = arr;
    return 0;
}
