/* raft/apply.h — the state machine: one replicated request applied to the store.
 *
 * Every member applies the same requests in the same order, so the outcome must depend only on the
 * request and the store's state: no clocks, no local configuration beyond what every member shares.
 * Alarms are part of that state: while a NOSPACE alarm is raised, puts, txns with puts and lease
 * grants fail "database space exceeded" (etcd's capped applier); reads and deletes go on.
 *
 * Leases: a grant is recorded with the TTL in the request — the proposing member raised it to its
 * minimum TTL before proposing, since the minimum depends on a member's election timeout, which is
 * local configuration — and refused above APPLY_MAX_LEASE_TTL as etcd's lessor refuses it. Expiry
 * is not decided here: the leader's lessor proposes a revoke. */
#ifndef CAIRN_RAFT_APPLY_H
#define CAIRN_RAFT_APPLY_H

#include "cairn/internal.pb-c.h"
#include "store/store.h"

/* etcd's lease.MaxLeaseTTL: longer TTLs are "etcdserver: too large lease TTL". */
#define APPLY_MAX_LEASE_TTL 9000000000LL

/* The outcome of one request. On err == 0 exactly the response matching the request is set. */
struct apply_result {
    int err; /* 0, or the etcd error of the request, which then changed nothing */
    Etcdserverpb__PutResponse *put;
    Etcdserverpb__DeleteRangeResponse *delete_range;
    Etcdserverpb__TxnResponse *txn;
    Etcdserverpb__CompactionResponse *compaction;
    Etcdserverpb__AlarmResponse *alarm;
    Etcdserverpb__LeaseGrantResponse *lease_grant;
    Etcdserverpb__LeaseRevokeResponse *lease_revoke;
    Etcdserverpb__LeaseCheckpointResponse *lease_checkpoint;
    bool compacted;       /* a compaction was recorded: physical steps are due */
    bool members_changed; /* the member table changed */
    bool duplicate;       /* the request was applied before: nothing changed, err is TIMEOUT */
};

/* Applies req in the write transaction tx, building the response in a (valid until a is reset; it
 * does not borrow from tx). Returns 0 — also when the request failed with an etcd error, which is
 * in res->err — or a storage error that poisoned tx: then the whole batch must be abandoned. */
int apply_request(store_tx *tx, const Cairn__InternalRequest *req, struct arena *a,
                  struct apply_result *res);

#endif
