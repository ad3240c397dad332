/* store/internal.h — what the store's files share: the open store, transactions, and the helpers
 * every request uses (error mapping, request boundaries, record lookups). Not for use outside
 * store/. */
#ifndef CAIRN_STORE_INTERNAL_H
#define CAIRN_STORE_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>

#include "store/record.h"
#include "store/store.h"

/* Internal result of lookups: found / not found; negative values are cairn errors. */
#define ST_FOUND  0
#define ST_ABSENT 1

/* History records that compaction removes: taken out of history.mdb only after the commit that
 * records the compaction's progress in data.mdb is durable (env.c). */
struct removals {
    uint8_t (*rev)[REV_KEY_SIZE];
    size_t n, cap;
    int64_t done_main, done_sub; /* compaction progress once they are removed */
};

struct store {
    MDB_env *env;           /* data.mdb: every table but the history */
    MDB_env *henv;          /* history.mdb: the history alone (see env.c: why, and the order) */
    MDB_dbi main;           /* LMDB's main table: the named tables' roots, and "state" */
    MDB_dbi meta;           /* "format", "pair" */
    MDB_dbi kv;             /* user key → latest change */
    MDB_dbi hist;           /* (history.mdb) revision → change */
    MDB_dbi hmeta;          /* (history.mdb) "format", "pair", "removed" */
    MDB_dbi lease;          /* lease id → TTLs */
    MDB_dbi lkeys;          /* lease id → attached keys (dupsort) */
    MDB_dbi alarm;          /* alarm type, member id → (nothing) */
    MDB_dbi member;         /* member id → the member's record (the caller's encoding) */
    MDB_dbi reqs;           /* applied request id → its index (store/requests.c) */
    MDB_dbi reqlog;         /* index, request id → nothing: the ids in the order applied */
    struct store_options o; /* options with defaults filled in */
    int lock_fd;            /* flock'd <dir>/cairn.lock, held while open */
    size_t psize;           /* LMDB page size */
    store_tx *wtx;          /* the open write transaction, if any */
    int failed;             /* a durable commit's flush failed: its fate is unknown, refuse work */
    pthread_mutex_t spare_mu;
    store_tx *spare;         /* a finished read transaction kept for reuse (reset, not freed) */
    pthread_mutex_t pair_mu; /* held while a commit changes both files, and while a read
                              * transaction opens its two halves: readers see matching halves */
    int copying;             /* store_copy() calls running: history removals wait (atomic) */
    struct removals held;    /* removals a commit could not make (a copy ran, or they failed) */
    bool removals_dropped;   /* held removals were dropped for want of memory: until the next
                              * open (which finishes them) none are made */
    char dir[4096];          /* the directory */
};

struct store_tx {
    store *st;
    MDB_txn *txn;        /* LMDB transaction on data.mdb (a child during a writing Txn request) */
    MDB_txn *htxn;       /* and on history.mdb */
    struct removals rm;  /* write transactions: history records compaction steps took out */
    bool write;          /* write transaction */
    bool view;           /* a read view borrowing the open write transaction's LMDB txn */
    int poison;          /* storage error that doomed this write transaction, or 0 */
    int64_t rev;         /* current revision, including requests applied in this transaction */
    int64_t base_rev;    /* write transactions: the committed revision they began at */
    int64_t compact_rev; /* compacted revision, -1 if never */
    int64_t compact_done_main; /* physical compaction has processed history up to this */
    int64_t compact_done_sub;  /*   revision (inclusive) */
    uint64_t ci;               /* consistent index */
    bool meta_dirty;           /* state must be written at commit */
    int64_t changes;        /* changes made by the request being applied: its next sub-revision */
    uint64_t base_bytes;    /* committed data size when the transaction began (for the quota) */
    uint64_t pending_bytes; /* quota cost of the requests applied in this transaction */
};

/* Adds a history record to tx's removals; NOMEM on exhaustion. */
int removals_add(store_tx *tx, const uint8_t rev[REV_KEY_SIZE]);

/* Compaction's rule for one change h at rev (at or below the compacted revision): its predecessor
 * goes, and the change itself if it is a tombstone. Adds them to tx's removals. */
int removals_of_change(store_tx *tx, const uint8_t rev[REV_KEY_SIZE], const struct hist_rec *h);

/* Maps an LMDB or errno code to a cairn error; for write transactions also poisons tx. */
int tx_fail(store_tx *tx, int mdb_rc);

/* 0 if tx is a usable write transaction, else its poison or INVALID_ARGUMENT. */
int tx_check_write(const store_tx *tx);

/* Request boundaries: every write request is one revision if it changes anything. */
static inline void req_begin(store_tx *tx)
{
    tx->changes = 0;
}
static inline void req_end(store_tx *tx)
{
    if (tx->changes > 0) {
        tx->rev++;
        tx->meta_dirty = true;
    }
    tx->changes = 0;
}
/* The revision a read inside the running request sees (etcd: beginRev + 1 once it changed
 * something). */
static inline int64_t req_cur_rev(const store_tx *tx)
{
    return tx->rev + (tx->changes > 0);
}

/* Charges `cost` bytes against the quota as etcd's backend quota does: fails NO_SPACE (changing
 * nothing) when size + cost would reach the quota. A cost of 0 always passes. */
int quota_charge(store_tx *tx, uint64_t cost);

/* Gives back a charge whose request failed without changing anything. */
static inline void quota_refund(store_tx *tx, uint64_t cost)
{
    tx->pending_bytes -= cost;
}

/* etcd's estimate of what a put costs: key + value + 256 bytes of metadata (etcdserver/quota.go).
 */
#define QUOTA_KV_OVERHEAD    256
#define QUOTA_LEASE_OVERHEAD 64

/* 8-byte integers in the meta table under key (little-endian): get gives 0 for an absent key. */
int meta_get_u64(store_tx *tx, const char *key, uint64_t *value);
int meta_put_u64(store_tx *tx, const char *key, uint64_t value);

/* Bytes handed to a caller: borrowed in read transactions, copied into a in write transactions
 * (whose pages later writes in the same transaction may change). NOMEM on exhaustion. */
int tx_out_bytes(const store_tx *tx, struct arena *a, store_bytes in, store_bytes *out);

/* Lookups. Results borrow from the transaction. */
int latest_get(store_tx *tx, store_bytes key, struct latest_rec *out);
int hist_get(store_tx *tx, int64_t main, int64_t sub, struct hist_rec *out);

/* The key's state at revision rev (>= the compacted revision): 1 with *kv filled (value only if
 * want_value; bytes borrowed from tx), 0 if the key did not exist then, or a negative error. l is
 * the key's latest record; key the key bytes. When sub is not NULL it gets the sub-revision of the
 * change found (also for a tombstone, with 0 returned), or -1 if there is no change at or below
 * rev. */
int kv_at(store_tx *tx, store_bytes key, const struct latest_rec *l, int64_t rev, bool want_value,
          struct store_kv *kv, int64_t *sub);

/* Changes, inside a request of a write transaction. `old` is the key's latest record or NULL.
 * key and value must not point into LMDB pages that the change rewrites (copy them first). */
int change_put(store_tx *tx, store_bytes key, store_bytes value, int64_t lease,
               const struct latest_rec *old);
int change_delete(store_tx *tx, store_bytes key, const struct latest_rec *old);

/* Deletes the history records (main, 0) .. (main, changes - 1) a failed request appended. */
int hist_unappend(store_tx *tx, int64_t main, int64_t changes);

/* Request bodies without request boundaries or validation, for store_txn and lease revoke. */
int range_op(store_tx *tx, const struct store_range_req *req, struct arena *a,
             struct store_range_res *res);
int put_op(store_tx *tx, const struct store_put_req *req, struct arena *a,
           struct store_put_res *res);
int delete_op(store_tx *tx, const struct store_delete_req *req, struct arena *a,
              struct store_delete_res *res);

/* Request validation shared by the single ops and txn checks (etcd's checkXRequest, plus size
 * limits). */
int check_range(const struct store_range_req *req);
int check_put(const struct store_put_req *req);
int check_delete(const struct store_delete_req *req);

/* Whether a lease exists. */
int lease_exists(store_tx *tx, int64_t id);

/* CRC-32C (Castagnoli), as etcd's hash uses. */
uint32_t crc32c_update(uint32_t crc, const void *data, size_t n);

#endif
