/* store/hash.c — HashKV: a checksum of the history visible at a revision, in etcd's own encoding.
 *
 * etcd (mvcc/kvstore.go HashByRev) hashes with CRC-32C the bucket name "key" and then every history
 * record up to the revision, as its bolt key (8-byte big-endian main, '_', 8-byte big-endian sub,
 * and 't' for a tombstone) followed by the protobuf mvccpb.KeyValue stored there. Records at or
 * below the compacted revision count only if they are what compacting at the hashed revision would
 * keep — the key's latest change at or below it, if not a delete — so the hash does not depend on
 * how far the physical compaction has got. One quirk is kept: when no key at all is live at the
 * revision, etcd's keep set is empty and it counts every record still present below the compacted
 * revision. */
#include "store/internal.h"

#include <string.h>

/* protobuf encoding of mvccpb.KeyValue: fields 1 key, 2 create_revision, 3 mod_revision, 4 version,
 * 5 value, 6 lease; proto3 omits zero values. */
static uint8_t *pb_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint32_t hash_bytes_field(uint32_t h, unsigned field, store_bytes b)
{
    if (b.len == 0)
        return h;
    uint8_t hdr[16], *p = hdr;
    p = pb_varint(p, field << 3 | 2);
    p = pb_varint(p, b.len);
    h = crc32c_update(h, hdr, (size_t)(p - hdr));
    return crc32c_update(h, b.data, b.len);
}

static uint32_t hash_int_field(uint32_t h, unsigned field, int64_t v)
{
    if (v == 0)
        return h;
    uint8_t buf[16], *p = buf;
    p = pb_varint(p, field << 3 | 0);
    p = pb_varint(p, (uint64_t)v);
    return crc32c_update(h, buf, (size_t)(p - buf));
}

static uint32_t hash_record(uint32_t h, int64_t main, int64_t sub, const struct hist_rec *r)
{
    uint8_t k[18];
    rev_encode(k, main, sub);
    memmove(k + 9, k + 8, 8);
    k[8] = '_';
    size_t klen = 17;
    if (r->flags & REC_TOMBSTONE)
        k[klen++] = 't';
    h = crc32c_update(h, k, klen);
    h = hash_bytes_field(h, 1, r->key);
    if (r->flags & REC_TOMBSTONE)
        return h;
    h = hash_int_field(h, 2, r->create);
    h = hash_int_field(h, 3, main);
    h = hash_int_field(h, 4, r->version);
    h = hash_bytes_field(h, 5, r->value);
    return hash_int_field(h, 6, r->lease);
}

/* Whether record (main, sub) of key is the key's latest change at or below rev and not a delete. */
static int is_kept(store_tx *tx, store_bytes key, int64_t main, int64_t sub, int64_t rev,
                   bool *kept)
{
    struct latest_rec l;
    struct store_kv kv;
    int64_t at_sub;
    *kept = false;
    int rc = latest_get(tx, key, &l);
    if (rc != ST_FOUND)
        return rc < 0 ? rc : 0;
    rc = kv_at(tx, key, &l, rev, false, &kv, &at_sub);
    if (rc < 0)
        return rc;
    *kept = rc == 1 && kv.mod_revision == main && at_sub == sub;
    return 0;
}

/* Whether any key is live at rev (etcd's keep set is non-empty). */
static int any_live(store_tx *tx, int64_t rev, bool *live)
{
    *live = false;
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->kv, &c);
    if (rc)
        return tx_fail(tx, rc);
    MDB_val k, v;
    int err = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !*live;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        struct latest_rec l;
        struct store_kv kv;
        if ((err = latest_rec_decode(v.mv_data, v.mv_size, &l)))
            break;
        int r = kv_at(tx, (store_bytes){k.mv_data, k.mv_size}, &l, rev, false, &kv, NULL);
        if (r < 0) {
            err = r;
            break;
        }
        *live = r == 1;
    }
    mdb_cursor_close(c);
    if (err)
        return err;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : tx_fail(tx, rc);
}

int store_hash_kv(store_tx *tx, int64_t revision, uint32_t *hash, int64_t *compact_revision)
{
    if (tx->poison)
        return tx->poison;
    int64_t compact = tx->compact_rev;
    *compact_revision = compact;
    if (revision > 0 && revision <= compact)
        return CAIRN_E_COMPACTED;
    if (revision > tx->rev)
        return CAIRN_E_FUTURE_REV;
    if (revision == 0)
        revision = tx->rev; /* as etcd: only 0 means current; a negative revision hashes nothing */

    bool keep_nonempty = false;
    int err = compact >= 0 ? any_live(tx, revision, &keep_nonempty) : 0;
    if (err)
        return err;

    uint32_t h = crc32c_update(0, "key", 3);
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->htxn, tx->st->hist, &c);
    if (rc)
        return tx_fail(tx, rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        int64_t main, sub;
        struct hist_rec r;
        if ((err = rev_decode(k.mv_data, k.mv_size, &main, &sub)) ||
            (err = hist_rec_decode(v.mv_data, v.mv_size, &r)))
            break;
        if (main > revision)
            break;
        if (main <= compact && keep_nonempty) {
            bool kept;
            if ((err = is_kept(tx, r.key, main, sub, revision, &kept)))
                break;
            if (!kept)
                continue;
        }
        h = hash_record(h, main, sub, &r);
    }
    mdb_cursor_close(c);
    if (err)
        return err;
    if (rc && rc != MDB_NOTFOUND)
        return tx_fail(tx, rc);
    *hash = h;
    return 0;
}
