/* raft/fsm.h — the replicated state machine: committed log entries applied to the store.
 *
 * libraft calls the state machine for every committed command entry, in log order, on every
 * member. An entry (cairn.Entry, framed as entry_encode() writes it) carries the requests one
 * member proposed together; they are applied in order, in the store's open write transaction, and
 * the entry's index becomes the store's consistent index. Entries at or below the consistent index
 * are in the store already (replayed after a restart) and are skipped. The write transaction stays
 * open across entries: the owner decides when to commit (fsm_commit()), because its log is the
 * durable record and the store only has to catch up with it.
 *
 * Snapshots: fsm_snapshot commits the store durably and records only the index the store reached
 * (cairn.SnapshotMarker): the store itself is the snapshot's data. Restoring a marker the store has
 * reached is a no-op; one beyond it needs the store of another member (the owner's fetch_store).
 *
 * At most once: a request that may reach the log twice (one a follower forwarded, or sent again
 * after a forward failed without an answer) is applied only if the store does not remember its id
 * as applied; its id is then remembered with the entry's index (store/requests.c). A second copy
 * changes nothing and gets "request timed out" (apply_result.duplicate), as does a resend from
 * before what the store still remembers.
 *
 * Failures that would make this member diverge from the others (a storage error while applying, an
 * entry that cannot be decoded) go to the owner's fatal hook, which must not return. */
#ifndef CAIRN_RAFT_FSM_H
#define CAIRN_RAFT_FSM_H

#include <raft.h>

#include "raft/proposer.h"
#include "store/store.h"

struct fsm {
    struct raft_fsm base; /* what libraft calls (base.data is this struct) */
    struct raft *raft;    /* the raft instance applying: its last applied index is ours - 1 */
    store *st;
    uint64_t self;        /* this member's id: entries it proposed are answered here */
    store_tx *wtx;        /* applied entries not committed to the store yet */
    uint64_t applied;     /* the store's consistent index as applied (committed or not) */
    unsigned uncommitted; /* requests and compaction steps applied since the last commit */
    bool compacting;      /* a compaction was applied and physical steps remain */
    bool members_changed; /* the member table changed (the owner clears it) */
    uint64_t since_snapshot_entries;  /* applied since the last snapshot: entries, */
    uint64_t since_snapshot_requests; /*   the requests they carried, */
    uint64_t since_snapshot_bytes;    /*   their size */
    bool removed_self;                /* this member's removal was applied */
    uint64_t cluster_id;   /* recorded in the store with the next entry when it has none */
    bool cluster_recorded; /* the store holds it */
    struct arena scratch;  /* responses of entries nobody here waits for */
    void *data;            /* the owner's */
    /* The owner's hooks. take: the proposals of this member's entry `batch` holding n requests at
     * log index `index`, if they still wait (NULL otherwise); they are then applied with the
     * proposals' own requests and arenas, and passed to answered() with the entry's index. applied:
     * after every entry, with the number of requests (the owner commits when it likes). fatal: see
     * above. */
    struct proposal *(*take)(struct fsm *f, uint64_t batch, size_t n, uint64_t index);
    /* take_one: for a request in an entry another member proposed whose header names this member
     * (one this member forwarded to the leader): its waiting proposal, if any; it is answered
     * through answered() like a batch of one. */
    struct proposal *(*take_one)(struct fsm *f, const Cairn__InternalRequest *req);
    void (*answered)(struct fsm *f, struct proposal *list, uint64_t index);
    void (*applied_hook)(struct fsm *f, unsigned requests);
    void (*fatal)(struct fsm *f, const char *why);
    /* Replaces the store with another member's copy at or after index (a snapshot this member's
     * store has not reached); 0 or an error. NULL: such a snapshot stops the member. */
    int (*fetch_store)(struct fsm *f, uint64_t index);
};

/* Prepares f over st (which must outlive it) for member self; raft is set by the owner before
 * libraft starts. The applied index starts at the store's consistent index. */
int fsm_init(struct fsm *f, store *st, uint64_t self);

/* Commits the open write transaction, if any: durable (on disk when this returns) or not (one
 * flush; a power failure may lose it, the log still has the entries). A failure is fatal. */
void fsm_commit(struct fsm *f, bool durable);

/* One bounded step of physical compaction in the write transaction; *done when none remain. */
void fsm_compact_step(struct fsm *f, bool *done);

/* Commits durably and frees what f holds. */
void fsm_close(struct fsm *f);

/* An entry's payload for libraft (8-byte length, packed cairn.Entry, zeros to a multiple of 8
 * bytes as libraft requires): the requests of the proposals in list, in order; a proposal sent
 * again after this member forwarded it (p->resent) goes with resent_after = p->forwarded_after, in
 * a copy (p->req is not changed). buf->base comes from raft_malloc (libraft takes it over in
 * raft_apply). Returns 0 or CAIRN_E_NOMEM. */
int entry_encode(uint64_t member, uint64_t batch, const struct proposal *list,
                 struct raft_buffer *buf);

#endif
