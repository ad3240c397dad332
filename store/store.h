/* store/store.h — cairn's multi-version key-value engine on LMDB, with etcd v3's semantics.
 *
 * The store keeps every key's history by revision, exactly as etcd 3.4's mvcc package does: an
 * empty store is at revision 1; each write request that changes something takes the next main
 * revision, and its changes take sub-revisions 0, 1, ... in order. It knows nothing of raft or the
 * network: the layers above hand it decoded requests and get results back, and apply replicated
 * entries to it in log order.
 *
 * Lifecycle (LMDB's, made explicit): store_open() → store_tx_begin_read()/store_tx_begin_write() →
 * requests (store_range, store_put, ...) → store_tx_end()/store_tx_commit() → store_close().
 *
 * Ownership of results: every request fills a result struct whose arrays come from a caller-owned
 * struct arena (common/arena.h) and whose bytes either borrow from the transaction's memory map
 * (read transactions) or are copied into the arena (write transactions, whose pages later writes
 * may change). Results are valid until the transaction ends AND the arena is reset, whichever comes
 * first.
 *
 * Errors: functions return 0 or a negative enum cairn_err (common/error.h). A request that fails
 * with an etcd error (CAIRN_E_KEY_NOT_FOUND, CAIRN_E_COMPACTED, ...) has changed nothing and leaves
 * its transaction usable. A failure of the storage itself (CAIRN_E_IO, CAIRN_E_NO_DISK,
 * CAIRN_E_CORRUPT, CAIRN_E_NOMEM, or CAIRN_E_NO_SPACE from a full memory map) poisons a write
 * transaction: every later call on it returns the same error and store_tx_commit() aborts it, so
 * nothing is half-applied.
 *
 * Threads: one thread owns the write transactions (LMDB allows one writer at a time). Read
 * transactions may be used from any thread, one thread at a time each. */
#ifndef CAIRN_STORE_STORE_H
#define CAIRN_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/arena.h"
#include "common/error.h"

/* Limits. Keys are bounded by LMDB's compile-time key size; values by a hard cap far above what
 * etcd's --max-request-bytes lets through. */
#define STORE_MAX_KEY_SIZE          511
#define STORE_MAX_VALUE_SIZE        (64u << 20)
#define STORE_DEFAULT_QUOTA_BYTES   (2ull << 30) /* etcd's --quota-backend-bytes default */
#define STORE_DEFAULT_MAX_TXN_OPS   128          /* etcd's --max-txn-ops default */
#define STORE_DEFAULT_COMPACT_BATCH 1000         /* history records removed per compaction step */

typedef struct store store;       /* an open store: one LMDB environment in <dir> */
typedef struct store_tx store_tx; /* a read or write transaction on it */

/* A byte string that the store does not own. data may be NULL when len is 0. */
typedef struct {
    const uint8_t *data;
    size_t len;
} store_bytes;

struct store_options {
    uint64_t quota_bytes;   /* 0 → STORE_DEFAULT_QUOTA_BYTES; writes past it fail NO_SPACE */
    uint64_t map_bytes;     /* LMDB map size; 0 → derived from the quota. Tests set it small. */
    unsigned max_txn_ops;   /* 0 → STORE_DEFAULT_MAX_TXN_OPS */
    unsigned compact_batch; /* 0 → STORE_DEFAULT_COMPACT_BATCH */
    bool nosync; /* benchmarks only: commits are never flushed; a power loss can corrupt */
    /* Writes are not checked against the quota: the caller checks before writing (etcd's API
     * does, before proposing). For replicated writes, whose outcome must not depend on when this
     * member last committed. store_quota_fits() still answers. */
    bool quota_by_caller;
};

/* Opens (creating if absent) the store in directory `dir`, which must exist or be creatable. A
 * directory holding something that is not a cairn store gives CAIRN_E_NOT_STORE, a newer format
 * CAIRN_E_STORE_VERSION, a damaged file CAIRN_E_CORRUPT, a store open in another process
 * CAIRN_E_LOCKED. opts may be NULL for defaults. On success *out is owned by the caller. */
int store_open(const char *dir, const struct store_options *opts, store **out);

/* Writes a consistent, compacted copy of the store's committed state to fd, from its current
 * offset: a header, then LMDB's copies of both files, each with its own read transaction (any
 * thread, while the store is in use). fd must be seekable (the header is written last);
 * CAIRN_E_INVALID_ARGUMENT if it is not. */
int store_copy(store *st, int fd);

/* As store_copy(), into an unnamed temporary file in the store's directory (so a large copy
 * takes disk, not memory). Returns 0 and *fd (the caller closes it; the file vanishes then). */
int store_copy_tmpfile(store *st, int *fd);

/* An installation of another store's copy in progress: the copy written next to the data file
 * piece by piece (as it arrives from the network), then swapped in by store_install_finish(). */
struct store_install;

/* Starts one. No transaction may be open (CAIRN_E_INVALID_ARGUMENT). Returns 0 and *out. */
int store_install_begin(store *st, struct store_install **out);

/* Appends len bytes of the copy. CAIRN_E_NO_DISK when the disk is full, CAIRN_E_INVALID_ARGUMENT
 * when the bytes do not start as a copy of this format's store. */
int store_install_write(struct store_install *in, const void *data, size_t len);

/* Flushes the copy, swaps it in for the store's data and opens it in the same handle, so pointers
 * to the store stay valid; frees in. A copy cut short is CAIRN_E_INVALID_ARGUMENT and leaves the
 * old data. A crash before the swap leaves the old data; after it (or part-way through it), the
 * new. An error after the old data was closed leaves the store refusing all work (the owner must
 * stop). */
int store_install_finish(struct store_install *in);

/* Drops an installation: the old data stays. Frees in. */
void store_install_abort(struct store_install *in);

/* The whole installation for a copy in memory (len bytes), as begin, write, finish. */
int store_install(store *st, const void *data, size_t len);

/* Closes the store. No transaction may be open. NULL is a no-op. */
void store_close(store *st);

/* ---------------------------------------------------------------------------------------------- */
/* Transactions */

/* Begins a read transaction: a consistent snapshot at the last committed revision. */
int store_tx_begin_read(store *st, store_tx **out);

/* Begins the write transaction. Requests applied in it become visible to readers, and durable, only
 * at store_tx_commit(): many requests can share one commit (group commit). Must be called from the
 * thread that owns writes; only one write transaction exists at a time. */
int store_tx_begin_write(store *st, store_tx **out);

/* Begins a view for reads on the thread that owns writes. While a write transaction is open the
 * view reads through it, so it sees the requests applied there but not committed yet (for owners
 * whose own log is the durable record and who commit the store later); otherwise it is a read
 * transaction. A view of a write transaction is valid only until that transaction applies,
 * commits or ends: end it first, on the same thread. Its results are copied into the arena.
 * store_tx_end() ends it. */
int store_tx_begin_view(store *st, store_tx **out);

/* Ends a read transaction or a view, or aborts a write transaction (discarding all its requests).
 */
void store_tx_end(store_tx *tx);

/* Commits a write transaction and ends it, whatever the result. With durable, the commit is on disk
 * when this returns (two fdatasyncs); without, it is ordered and crash-consistent but may be lost
 * by a power failure (one fdatasync) — for callers whose own log is the durable record. Returns 0,
 * or the error that poisoned the transaction (nothing of it is applied), or
 * CAIRN_E_IO/CAIRN_E_NO_DISK from writing the commit (nothing is applied either). One case differs:
 * when the commit was written but the final flush of a durable commit fails, it returns CAIRN_E_IO
 * with the commit visible and its durability unknown, and from then on the store refuses every
 * transaction with CAIRN_E_IO: the owner must stop (etcd panics on a failed fsync). */
int store_tx_commit(store_tx *tx, bool durable);

/* The current revision as this transaction sees it (after its own applied requests, for writes). */
int64_t store_tx_rev(const store_tx *tx);

/* The compacted revision as this transaction sees it; -1 when never compacted, as etcd reports it.
 * Reads at revisions below it fail with CAIRN_E_COMPACTED; reading exactly at it works. */
int64_t store_tx_compact_rev(const store_tx *tx);

/* The consistent index: the raft log index of the last replicated entry applied. It is written in
 * the same LMDB transaction as that entry's effects. */
uint64_t store_tx_consistent_index(const store_tx *tx);

/* The ID of the cluster this store belongs to, as recorded (0: none yet), and recording it (a
 * write transaction). */
int store_tx_cluster_id(store_tx *tx, uint64_t *id);
int store_tx_set_cluster_id(store_tx *tx, uint64_t id);

/* Records the consistent index in a write transaction (it only ever grows; smaller values are an
 * INVALID_ARGUMENT). */
int store_tx_set_consistent_index(store_tx *tx, uint64_t index);

/* ---------------------------------------------------------------------------------------------- */
/* Key-value data, as etcd's mvccpb.KeyValue */

struct store_kv {
    store_bytes key;
    store_bytes value;       /* empty for keys_only ranges and delete events */
    int64_t create_revision; /* main revision of the put that created this generation of the key */
    int64_t mod_revision;    /* main revision of the last change */
    int64_t version;         /* 1 at creation, +1 per put; a delete ends the key's generation */
    int64_t lease;           /* attached lease id, 0 if none */
};

/* etcd's RangeRequest.SortOrder and SortTarget values */
enum store_sort_order { STORE_SORT_NONE = 0, STORE_SORT_ASCEND = 1, STORE_SORT_DESCEND = 2 };
enum store_sort_target {
    STORE_SORT_KEY = 0,
    STORE_SORT_VERSION = 1,
    STORE_SORT_CREATE = 2,
    STORE_SORT_MOD = 3,
    STORE_SORT_VALUE = 4
};

/* Range: the keys in [key, range_end) as of `revision`.
 * An empty range_end means the single key `key`; range_end "\0" means every key >= key (so key "\0"
 * with range_end "\0" is every key). range_end <= key selects nothing, as in etcd. */
struct store_range_req {
    store_bytes key; /* must not be empty */
    store_bytes range_end;
    int64_t limit;            /* 0: no limit */
    int64_t revision;         /* <= 0: the current revision */
    int sort_order;           /* enum store_sort_order */
    int sort_target;          /* enum store_sort_target */
    bool keys_only;           /* values left empty */
    bool count_only;          /* no kvs, just count */
    int64_t min_mod_revision; /* filters: 0 means unset */
    int64_t max_mod_revision;
    int64_t min_create_revision;
    int64_t max_create_revision;
};

struct store_range_res {
    struct store_kv *kvs; /* filtered, sorted, then cut to limit */
    size_t n_kvs;
    int64_t count;    /* keys in the range at the revision, before filters and limit */
    bool more;        /* the limit cut the (filtered) result */
    int64_t revision; /* header revision: the current revision, also for a historical read */
};

/* Range request semantics are etcd's applierV3backend.Range: filters and sorting apply before the
 * limit; a sort target other than KEY with order NONE sorts ascending. A revision above the current
 * one fails FUTURE_REV, one below the compacted revision COMPACTED. */
int store_range(store_tx *tx, const struct store_range_req *req, struct arena *a,
                struct store_range_res *res);

struct store_put_req {
    store_bytes key; /* must not be empty, at most STORE_MAX_KEY_SIZE */
    store_bytes value;
    int64_t lease;     /* 0: none; otherwise a granted lease, else LEASE_NOT_FOUND */
    bool prev_kv;      /* return the previous key-value */
    bool ignore_value; /* keep the current value (value must be empty; key must exist) */
    bool ignore_lease; /* keep the current lease (lease must be 0; key must exist) */
};

struct store_put_res {
    int64_t revision;         /* revision of the write */
    struct store_kv *prev_kv; /* NULL unless asked and the key existed */
};

/* Put in a write transaction: always a new revision, even with an unchanged value. */
int store_put(store_tx *tx, const struct store_put_req *req, struct arena *a,
              struct store_put_res *res);

struct store_delete_req {
    store_bytes key; /* must not be empty; range_end as in store_range_req */
    store_bytes range_end;
    bool prev_kv;
};

struct store_delete_res {
    int64_t revision; /* revision of the write; unchanged current revision if none deleted */
    int64_t deleted;  /* number of keys deleted */
    struct store_kv *prev_kvs; /* when asked: the deleted key-values, in key order */
    size_t n_prev_kvs;
};

/* DeleteRange in a write transaction: one revision for all deleted keys, sub-revisions in key
 * order. */
int store_delete_range(store_tx *tx, const struct store_delete_req *req, struct arena *a,
                       struct store_delete_res *res);

/* ---------------------------------------------------------------------------------------------- */
/* Txn: etcd's mini-transaction */

/* etcd's Compare.CompareTarget and Compare.CompareResult values */
enum store_cmp_target {
    STORE_CMP_VERSION = 0,
    STORE_CMP_CREATE = 1,
    STORE_CMP_MOD = 2,
    STORE_CMP_VALUE = 3,
    STORE_CMP_LEASE = 4
};
enum store_cmp_result {
    STORE_CMP_EQUAL = 0,
    STORE_CMP_GREATER = 1,
    STORE_CMP_LESS = 2,
    STORE_CMP_NOT_EQUAL = 3
};

struct store_compare {
    int result;            /* enum store_cmp_result */
    int target;            /* enum store_cmp_target */
    store_bytes key;       /* must not be empty */
    store_bytes range_end; /* as in store_range_req: the compare must hold for every key */
    int64_t number;        /* version, create/mod revision or lease, per target */
    store_bytes value;     /* for STORE_CMP_VALUE */
};

enum store_op_type {
    STORE_OP_NONE = 0, /* an empty RequestOp: rejected with KEY_NOT_FOUND, as etcd does */
    STORE_OP_RANGE,
    STORE_OP_PUT,
    STORE_OP_DELETE,
    STORE_OP_TXN
};

struct store_txn_req;
struct store_txn_res;

struct store_op {
    enum store_op_type type;
    union {
        struct store_range_req range;
        struct store_put_req put;
        struct store_delete_req del;
        struct store_txn_req *txn;
    } u;
};

struct store_txn_req {
    struct store_compare *compares;
    size_t n_compares;
    struct store_op *success;
    size_t n_success;
    struct store_op *failure;
    size_t n_failure;
};

struct store_op_res {
    enum store_op_type type;
    union {
        struct store_range_res range;
        struct store_put_res put;
        struct store_delete_res del;
        struct store_txn_res *txn;
    } u;
};

struct store_txn_res {
    bool succeeded;                 /* the compares held: the success branch ran */
    struct store_op_res *responses; /* one per op of the branch taken */
    size_t n_responses;
    int64_t revision; /* top level: revision after the txn; nested txns: 0, as etcd */
};

/* Checks a txn request as etcd's API does before accepting it (checkTxnRequest, checkIntervals): at
 * most max_ops compares/ops per list (nested lists get what is left), no empty keys, no empty ops,
 * no put overlapping another put or a delete in the same branch. Needs no transaction. */
int store_txn_check(const struct store_txn_req *req, unsigned max_ops);

/* Whether a txn has no put or delete in either branch, at any depth (etcd's isTxnReadonly): such a
 * txn can run in a read transaction. */
bool store_txn_is_read_only(const struct store_txn_req *req);

/* Txn: evaluates the compares at the current revision, then applies the success or failure ops in
 * order; later ops see earlier ones' writes; all writes share one revision. A read-only txn (or one
 * whose taken branch writes nothing) needs only a read transaction and creates no revision. Runs
 * store_txn_check() with the store's max_txn_ops first. In a read transaction, a txn whose taken
 * branch writes fails INVALID_ARGUMENT (decided after the compares). */
int store_txn(store_tx *tx, const struct store_txn_req *req, struct arena *a,
              struct store_txn_res *res);

/* ---------------------------------------------------------------------------------------------- */
/* Compaction */

/* Compact(revision) in a write transaction: from now on reads below `revision` fail COMPACTED, and
 * history superseded at or before it is scheduled for removal, keeping each live key's latest
 * version at or below it. revision <= the compacted revision fails COMPACTED, above the current
 * FUTURE_REV. Removal itself happens in bounded steps, store_compact_step(), so it never holds
 * writes for long. */
int store_compact(store_tx *tx, int64_t revision);

/* Removes up to the store's compact_batch history records of the pending compaction within the
 * write transaction tx. *done is set when nothing is pending. Resumes after a restart. */
int store_compact_step(store_tx *tx, bool *done);

/* ---------------------------------------------------------------------------------------------- */
/* Change feed: the events of every revision after the compacted one, in revision order */

enum store_event_type { STORE_EVENT_PUT = 0, STORE_EVENT_DELETE = 1 }; /* mvccpb.Event.EventType */

struct store_event {
    int type;                 /* enum store_event_type */
    struct store_kv kv;       /* deletes: key and mod_revision only */
    struct store_kv *prev_kv; /* when asked and the key existed before; NULL otherwise */
    int64_t sub_revision;     /* order of the change within its revision */
};

/* A cursor over the history, opened in a transaction and valid while it lasts. */
struct store_feed {
    store_tx *tx;
    void *cursor;     /* LMDB cursor on the history */
    int64_t next_rev; /* main revision of the next event to return */
    int64_t next_sub;
    bool prev_kv; /* fill store_event.prev_kv */
    bool eof_seen;
};

/* Opens a feed of the events with main revision >= from_rev (from_rev <= 0 means the current
 * revision + 1, i.e. only what this transaction sees as new: nothing). Fails COMPACTED when
 * from_rev is below the compacted revision, as a watch does. */
int store_feed_open(store_tx *tx, int64_t from_rev, bool prev_kv, struct store_feed *f);

/* Next event, up to the transaction's revision. Returns 1 with *ev filled (allocations in a), 0 at
 * the end, or a negative error. */
int store_feed_next(struct store_feed *f, struct arena *a, struct store_event *ev);

/* Closes the feed's cursor. Idempotent. */
void store_feed_close(struct store_feed *f);

/* ---------------------------------------------------------------------------------------------- */
/* Hash */

/* HashKV(revision) as etcd's mvcc HashByRev: CRC-32C over the history visible at revision (records
 * above the compacted revision, and the compacted revision's survivors still live at `revision`),
 * in etcd's own record encoding, so that members with equal history hash equal whatever their
 * physical compaction progress — and equal to etcd's for the same history. revision 0: the current
 * revision. revision <= compacted: COMPACTED; above current: FUTURE_REV. */
int store_hash_kv(store_tx *tx, int64_t revision, uint32_t *hash, int64_t *compact_revision);

/* ---------------------------------------------------------------------------------------------- */
/* Leases: the persistent lease table (the lessor with its timers lives above the store) */

struct store_lease {
    int64_t id;
    int64_t ttl;           /* granted TTL in seconds */
    int64_t remaining_ttl; /* last checkpointed remaining TTL; 0 if never checkpointed */
    store_bytes *keys;     /* attached keys, sorted, when asked */
    size_t n_keys;
};

/* Grants a lease with the given id (> 0) and TTL: LEASE_EXIST if taken. */
int store_lease_grant(store_tx *tx, int64_t id, int64_t ttl);

/* Revokes a lease: deletes its attached keys in one revision (in key order) and the lease itself.
 * *revision gets the revision after it (unchanged when there were no keys). LEASE_NOT_FOUND if
 * absent. */
int store_lease_revoke(store_tx *tx, int64_t id, int64_t *revision);

/* Records the remaining TTL of a lease (etcd's lease checkpoint). LEASE_NOT_FOUND if absent. */
int store_lease_checkpoint(store_tx *tx, int64_t id, int64_t remaining_ttl);

/* Looks up a lease; with keys, fills out->keys from a. LEASE_NOT_FOUND if absent. */
int store_lease_get(store_tx *tx, int64_t id, bool keys, struct arena *a, struct store_lease *out);

/* All leases (without keys), in id order, allocated from a. */
int store_lease_list(store_tx *tx, struct arena *a, struct store_lease **out, size_t *n);

/* ---------------------------------------------------------------------------------------------- */
/* Size and quota */

struct store_size {
    uint64_t file_bytes;   /* size of the data file: etcd's dbSize */
    uint64_t in_use_bytes; /* pages in use (not on LMDB's free list): etcd's dbSizeInUse */
    uint64_t quota_bytes;
};

/* Sizes as of the transaction's snapshot. */
int store_size(store_tx *tx, struct store_size *out);

/* etcd's quota costs (etcdserver/quota.go): a put is key + value + 256 bytes; a txn costs its more
 * expensive branch's direct puts (0 for a txn without them, whatever it nests); a lease 64. */
uint64_t store_put_cost(const struct store_put_req *r);
uint64_t store_txn_cost(const struct store_txn_req *r);
#define STORE_LEASE_COST 64

/* Whether a request of that cost fits the quota as of the last commit and what the open write
 * transaction has applied since: the check etcd's API makes
 * before proposing (a cost of 0 always fits). Needs no transaction. */
bool store_quota_fits(store *st, uint64_t cost);

/* ---------------------------------------------------------------------------------------------- */
/* Alarms: etcd's alarm store (NOSPACE, CORRUPT), replicated state kept with the data */

enum store_alarm_type { /* etcdserverpb.AlarmType */
                        STORE_ALARM_NONE = 0,
                        STORE_ALARM_NOSPACE = 1,
                        STORE_ALARM_CORRUPT = 2
};

struct store_alarm {
    uint64_t member_id; /* the member the alarm is about */
    int type;           /* enum store_alarm_type */
};

/* Raises (member_id, type) in a write transaction; *added says it was not raised before. Changes
 * no revision. Any type >= 0 is kept, as etcd keeps types it does not know; negative ones are
 * INVALID_ARGUMENT. */
int store_alarm_activate(store_tx *tx, uint64_t member_id, int type, bool *added);

/* Clears (member_id, type); *removed says it was raised. */
int store_alarm_deactivate(store_tx *tx, uint64_t member_id, int type, bool *removed);

/* The raised alarms of one type (STORE_ALARM_NONE: every type), ordered by type then member id,
 * in an array from a. */
int store_alarm_list(store_tx *tx, int type, struct arena *a, struct store_alarm **out, size_t *n);

/* Whether any member raised an alarm of this type (not NONE). */
int store_alarm_active(store_tx *tx, int type, bool *active);

/* ---------------------------------------------------------------------------------------------- */
/* Members (store/member.c): the cluster's members as replicated state; the caller encodes each. */

struct store_member {
    uint64_t id;
    store_bytes data; /* the caller's encoding of the member */
};

/* Sets member id's record (write transaction). */
int store_member_put(store_tx *tx, uint64_t id, store_bytes data);

/* Removes member id's record; *removed tells whether there was one. */
int store_member_delete(store_tx *tx, uint64_t id, bool *removed);

/* Every member, by id. Results as for ranges. */
int store_member_list(store_tx *tx, struct arena *a, struct store_member **out, size_t *n);

/* ---------------------------------------------------------------------------------------------- */
/* Applied request ids (store/requests.c): replicated memory of the requests applied, so that a
 * request sent twice is applied once. Not part of HashKV. */

/* Whether request id is remembered as applied (any transaction). */
int store_request_seen(store_tx *tx, uint64_t id, bool *seen);

/* Remembers request id as applied at log index `index` (write transaction; id must not be
 * remembered already: INVALID_ARGUMENT). Then, while more than `keep` ids are remembered, forgets
 * the oldest (lowest index) and raises the forgotten index to its index. */
int store_request_record(store_tx *tx, uint64_t id, uint64_t index, uint64_t keep);

/* The highest index among the forgotten records, 0 while none was forgotten: whether a request
 * applied at or below it was applied can no longer be told. */
int store_requests_forgotten(store_tx *tx, uint64_t *index);

#endif
