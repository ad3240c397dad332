/* raft/node.h — a cairn member on libraft: proposals, the log, and the state machine that applies
 * committed entries to the store.
 *
 * Write path: the requests proposed during one turn of the event loop travel as one log entry
 * (cairn.Entry). libraft appends it to the log under <dir> (one flush) and replicates it; once a
 * quorum holds it, every member applies it to the store in log order, and the member that proposed
 * it answers its callers. The log is the durable record: the store applies entries into a write
 * transaction that stays open across entries and is committed later (every commit_interval_ms, or
 * after commit_requests requests, and always before a snapshot), so a write costs one sequential
 * flush of the log instead of the store's own two. Reads on the loop see the applied entries
 * through store_tx_begin_view(). After a crash the store is at its last commit, and its consistent
 * index tells which entries of the log to apply again: entries at or below it are skipped.
 *
 * Snapshots: when libraft asks for one, the store is committed durably and the snapshot records
 * only the index the store had reached (cairn.SnapshotMarker): the store is the snapshot's data. A
 * member that needs the store from another member (its log is behind the leader's first entry)
 * replaces its store with the leader's copy through the owner's fetch_store hook (api/snapshot.c).
 *
 * Only the leader proposes. A follower hands writes to the owner's forward hook, which sends them
 * to the leader (api/forward.c), and answers each when it applies the request itself (the entry
 * names it in the request's header). A forward that failed without an answer (the call broke, the
 * leader no longer leads) leaves the request possibly in the log: it is sent again a heartbeat
 * later, marked with the member's applied index when it was first forwarded, and the applier drops
 * a second copy by its request id (raft/fsm.c); the first copy applied answers the call. While no
 * leader is known, proposals wait for one up to the request timeout, then fail "etcdserver:
 * request timed out"; resends stop at the same deadline. One ambiguous case is left: a follower
 * that becomes the leader and proposes its resend itself while the old leader's copy also commits
 * answers "request timed out" for a write that was applied (never a false success, never a second
 * application).
 *
 * All of it runs on one libuv loop. */
#ifndef CAIRN_RAFT_NODE_H
#define CAIRN_RAFT_NODE_H

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "raft/fsm.h"
#include "raft/guard.h"
#include "raft/proposer.h"
#include "raft/transport.h"
#include "store/store.h"

#define NODE_MAX_PEERS 16

struct node_peer {
    uint64_t id;       /* raft server id: the etcd member id */
    char address[256]; /* host:port where its peer port listens */
};

struct node_options {
    uint64_t id;                            /* this member */
    uint64_t cluster_id;                    /* its cluster: peers of another are refused */
    const char *address;                    /* host:port other members reach this one at */
    const char *bind_address;               /* host:port to listen on; NULL: address */
    const char *dir;                        /* libraft's directory (created if missing) */
    struct node_peer peers[NODE_MAX_PEERS]; /* the initial cluster, this member included */
    size_t n_peers;
    bool bootstrap;        /* a new cluster: write the initial configuration if the log is empty */
    unsigned election_ms;  /* etcd's --election-timeout */
    unsigned heartbeat_ms; /* etcd's --heartbeat-interval */
    unsigned snapshot_count;     /* entries between snapshots (etcd's --snapshot-count) */
    unsigned snapshot_trailing;  /* entries kept in the log behind a snapshot */
    unsigned commit_interval_ms; /* longest time applied entries stay uncommitted in the store */
    unsigned commit_requests;    /* requests applied before the store commits regardless */
    unsigned request_timeout_ms; /* how long a proposal waits for a leader */
    /* Replaces the store with a copy from another member that has applied at least index, the
     * leader first when it is not 0 (NULL: a member behind the leader's log stops). Blocks until
     * done: the member has nothing else to do before it has a store. Given at start because a
     * member restarted after saving a raft snapshot but before its store came needs it while
     * libraft starts. */
    int (*fetch_store)(void *arg, uint64_t leader, uint64_t index);
    void *fetch_arg;
};

/* Fills o with etcd's defaults (election 1000 ms, heartbeat 100 ms, snapshot count 100000). */
void node_options_default(struct node_options *o);

struct node_batch;

struct node {
    struct proposer base; /* propose/term/applied_index/...; first member */
    uv_loop_t *loop;
    store *st;
    struct node_options o;
    struct raft raft;
    struct raft_io io;
    struct cluster_transport transport; /* libraft's TCP transport with the cluster check */
    char foreign[NODE_MAX_PEERS][256];  /* peers found in another cluster */
    size_t n_foreign;
    struct fsm fsm; /* the state machine libraft applies entries to */
    /* libraft's uv I/O methods, wrapped (raft/guard.h) */
    int (*real_send)(struct raft_io *, struct raft_io_send *, const struct raft_message *,
                     raft_io_send_cb);
    int (*real_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    raft_io_recv_cb real_recv;
    struct guard guard;           /* what the wrapped receive remembers */
    struct guard_votes votes;     /* vote requests this candidate sent, until answered */
    uv_timer_t vote_timer;        /* sends the unanswered ones again */
    uv_timer_t commit_timer;      /* commits the store commit_interval_ms after an apply */
    uv_timer_t wait_timer;        /* fails proposals that waited too long for a leader */
    uv_timer_t resend_timer;      /* sends again the forwards that failed without an answer */
    uv_check_t check;             /* proposes the turn's requests after the loop polled */
    uv_idle_t idle;               /* keeps the loop turning while work is queued */
    struct proposal *head, *tail; /* proposals waiting for the next entry */
    struct node_batch *inflight;  /* proposed entries not applied yet, oldest first */
    struct node_batch *inflight_tail;
    uint64_t next_batch;       /* sequence number of the next entry this member proposes */
    uint64_t next_request;     /* counter behind node_next_request_id() */
    struct proposal *physical; /* compactions answered once their history is removed */
    bool started;              /* raft_start succeeded */
    bool closing;
    int handles_open;
    struct proposal *forwarded; /* sent to the leader, answered when applied here */
    /* Sends p's request to leader (set by the owner; NULL: a follower answers writes "not
     * leader"), with resent_after set in the copy sent (0: a first send; req is borrowed and not
     * changed). Returns 0 when the request went out: the node answers p once the request is
     * applied here, or when the owner reports node_forward_failed(); else an error for p. */
    int (*forward)(void *owner, const Cairn__InternalRequest *req, uint64_t leader,
                   uint64_t resent_after);
    /* Asks leader for its read index (set by the owner; NULL: followers refuse linearizable
     * reads "not leader"). Returns 0 when the question went out: the owner then reports the answer
     * with node_read_index_done(). */
    int (*ask_read_index)(void *owner, uint64_t leader);
    /* Entries were applied (set by the owner, may be NULL): called after every applied entry, from
     * the loop, once the store's view shows it. */
    void (*applied)(void *owner);
    void *owner;                   /* the owner's */
    struct read_wait *reads_next;  /* leader: reads for the next barrier; follower: next question */
    struct read_wait *reads_asked; /* in the barrier / the question in flight */
    struct read_wait *reads_apply; /* follower: index known, waiting until it is applied here */
    bool reads_busy;               /* a barrier or a question is in flight */
    struct raft_barrier barrier;   /* the leader's read barrier */
    struct raft_barrier nudge;     /* an entry that carries the commit index to the followers */
    bool nudge_due;                /* followers wait for the commit index */
    bool nudging;                  /* the nudge is in flight */
    struct raft_change change;     /* the configuration change in flight */
    bool changing;                 /* one is in flight */
    uint64_t removing;             /* the removed member waited for before raft_remove */
    uint64_t removing_index;       /*   the commit index it must reach */
    uint64_t removing_since;       /*   loop time (ms) the wait began */
    uint64_t removing_caught_up;   /*   loop time it reached the index, 0: not yet */
    bool members_dirty;            /* the member table may differ from libraft's configuration */
    bool was_leader;               /* led on the previous turn */
    uint64_t reads_retry_at;       /* loop time (ms) before which the leader is not asked again */
    uint64_t reads_since;          /* loop time (ms) the oldest queued read arrived */
    void (*on_closed)(struct node *n);
    /* This member's removal from the cluster was applied (etcd stops such a member). */
    void (*on_removed)(struct node *n);
    /* Called when the member cannot go on without diverging from the others (a storage failure
     * while applying, a log entry it cannot decode, a store behind its snapshot). Must not return
     * to the node: the owner logs and exits. NULL: log and exit(1). */
    void (*fatal)(struct node *n, const char *why);
};

/* Prepares n over st (which must outlive it) and starts libraft: loads the log, bootstraps the
 * initial cluster when o->bootstrap and the log is empty, listens on the peer address. Errors are
 * written to why (one line) and returned as a cairn error; the caller then exits without using n
 * again (libraft cannot be closed before it started). The process must ignore SIGPIPE, as any
 * server does: connections to peers are written after the peers close them. */
int node_start(struct node *n, uv_loop_t *loop, store *st, const struct node_options *o, char *why,
               size_t why_len);

/* Whether this member leads now; the leader's id (0: none known). */
bool node_is_leader(struct node *n);
uint64_t node_leader(struct node *n);

/* The leader did not take the forwarded request with this id (err). On "leader changed" or "not
 * leader" (the request may be in the log or not) its proposal, if it still waits and its request
 * timeout has not passed, is sent again a heartbeat later; on any other error, or past the
 * timeout, it is answered with err. */
void node_forward_failed(struct node *n, uint64_t request_id, int err);

/* The leader answered a read index question: every read asked with it may run once this member
 * applied index (err 0), or fails with err. */
void node_read_index_done(struct node *n, int err, uint64_t index);

/* A request id unique in the cluster and across this member's restarts (etcd's: the member ID's
 * low bits above a time-based counter). */
uint64_t node_next_request_id(struct node *n);

/* Stops: fails queued proposals "server stopped", closes libraft, commits the store durably and
 * closes the handles; done runs afterwards. */
void node_close(struct node *n, void (*done)(struct node *n));

#endif
