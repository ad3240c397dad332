/* raft/proposer.h — how api/ hands a write to the replicated state machine.
 *
 * A proposal is a request struct (libuv style): the caller fills req, cb and data, keeps the struct
 * and the request alive until cb runs, and gets the result in the struct. The proposer replies only
 * once the request is applied and durable: on a quorum when replicated, on the local disk for a
 * single member. Implementation: raft/node.c (libraft). */
#ifndef CAIRN_RAFT_PROPOSER_H
#define CAIRN_RAFT_PROPOSER_H

#include "cairn/internal.pb-c.h"
#include "common/arena.h"
#include "raft/apply.h"

struct proposal;

/* err: 0 when the request was applied (its own etcd error, if any, is in p->res.err), or the error
 * that kept it from being applied (storage failure, no leader, shutdown). Runs on the loop thread.
 */
typedef void (*proposal_cb)(struct proposal *p, int err);

struct proposal {
    const Cairn__InternalRequest *req; /* set by the caller; borrowed until cb */
    proposal_cb cb;                    /* set by the caller */
    void *data;                        /* the caller's */
    struct arena *arena;               /* set by the caller: the response is built here */
    struct apply_result res;           /* filled before cb when err == 0 */
    uint64_t index;                    /* log index the request was applied at */
    bool local_only;                   /* set by the caller: fail NOT_LEADER rather than forward */
    uint64_t queued_at;                /* the proposer's: loop time (ms) it was proposed */
    uint64_t forwarded_after;          /* the proposer's: its applied index when first forwarded */
    bool resend;                       /* the proposer's: a forward failed, send it again */
    bool resent;                       /* the proposer's: sent again, with forwarded_after */
    struct proposal *next;             /* the proposer's queue link */
};

/* A linearizable read waiting until this member's applied state is at least the leader's commit
 * index at the time the read arrived (etcd's read index). Caller-owned like a proposal. */
struct read_wait;
typedef void (*read_wait_cb)(struct read_wait *w, int err);
struct read_wait {
    read_wait_cb cb;        /* set by the caller */
    void *data;             /* the caller's */
    bool local_only;        /* set by the caller: fail NOT_LEADER rather than ask the leader */
    uint64_t index;         /* the read index, once known */
    struct read_wait *next; /* the proposer's queue link */
};

/* A leadership transfer (MoveLeader), caller-owned. */
struct transfer_wait;
typedef void (*transfer_cb)(struct transfer_wait *w, int err);
struct transfer_wait {
    transfer_cb cb;  /* set by the caller; err 0: the target leads now */
    void *data;      /* the caller's */
    uint64_t target; /* set by the caller */
};

struct proposer {
    /* Queues p. Returns 0 (cb will run, never from inside this call) or an error (cb will not
     * run). */
    int (*propose)(struct proposer *self, struct proposal *p);
    /* Raft term and index as the response header and Status report them. */
    uint64_t (*term)(struct proposer *self);
    uint64_t (*applied_index)(struct proposer *self);
    /* The highest log index known committed (Status's raftIndex). */
    uint64_t (*committed_index)(struct proposer *self);
    /* The leader's member id, 0 while none is known. */
    uint64_t (*leader)(struct proposer *self);
    /* The cluster's ID (learned from the peers by a member that joined), and whether this member
     * is a learner. */
    uint64_t (*cluster_id)(struct proposer *self);
    bool (*is_learner)(struct proposer *self);
    /* An id for a new request, unique in the cluster and across restarts. */
    uint64_t (*next_request_id)(struct proposer *self);
    /* Returns 1 when a linearizable read may run now (w unused), 0 when w->cb will run later
     * (err 0: read now), or an error. */
    int (*read_index)(struct proposer *self, struct read_wait *w);
    /* Transfers leadership to w->target (a voter): cb runs once it leads or the transfer gave
     * up. Returns 0, or NOT_LEADER / BAD_LEADER_TRANSFEREE at once (cb does not run). */
    int (*transfer)(struct proposer *self, struct transfer_wait *w);
    /* The leader answered a follower that now waits to learn the commit index (a forwarded write
     * or a read index): the leader sends it soon rather than with its next heartbeat. */
    void (*followers_wait)(struct proposer *self);
    /* The leader's answer to the read index question this member asked (err, or its index). */
    void (*read_index_done)(struct proposer *self, int err, uint64_t index);
    /* The leader did not take the request with this id that this member forwarded (err). */
    void (*forward_failed)(struct proposer *self, uint64_t request_id, int err);
};

static inline int proposer_propose(struct proposer *pr, struct proposal *p)
{
    return pr->propose(pr, p);
}

#endif
