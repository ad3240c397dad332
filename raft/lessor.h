/* raft/lessor.h — lease expiry: the leader's timers over the store's lease table (etcd's lessor).
 *
 * The lease table (granted TTL, last checkpointed remaining TTL, attached keys) is replicated state
 * in the store; what is not replicated is when each lease expires. Only the leader (etcd's
 * "primary" lessor) keeps expiry times, in memory, in loop time: a lease it learns of (granted,
 * found in the store) expires its TTL from then; a renewal (keepalive) restarts that. An expired
 * lease is proposed as a LeaseRevoke through the log, so every member deletes the same keys at the
 * same revision. Followers keep no timers.
 *
 * On becoming leader (etcd's Promote) every lease gets its remaining TTL — the checkpointed one if
 * there is one, else its granted TTL — plus an election timeout. Checkpoints (etcd's
 * --experimental-enable-lease-checkpoint, always on here): a lease whose remaining TTL exceeds the
 * checkpoint interval gets its remaining TTL proposed as a LeaseCheckpoint every interval, so a new
 * leader does not restart long leases from their full TTL; a renewal of a lease with a
 * checkpointed TTL proposes a checkpoint of 0, which clears it (etcd's Renew).
 *
 * Everything runs on the loop thread. The lessor notices a change of leadership on its timer and at
 * each call; the proposer's leader() is the truth. */
#ifndef CAIRN_RAFT_LESSOR_H
#define CAIRN_RAFT_LESSOR_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "raft/proposer.h"
#include "store/store.h"

#define LESSOR_TICK_MS         500    /* etcd's lessor loop: expiry checked twice a second */
#define LESSOR_REVOKE_RETRY_MS 3000   /* etcd's expiredLeaseRetryInterval */
#define LESSOR_CHECKPOINT_MS   300000 /* etcd's default checkpoint interval (5 minutes) */
#define LESSOR_MAX_REVOKES     500    /* per tick: etcd's leaseRevokeRate of 1000/s */
#define LESSOR_MAX_CHECKPOINTS 1000   /* per proposal: etcd's maxLeaseCheckpointBatchSize */

struct lessor_options {
    uint64_t self;                   /* this member's id */
    unsigned election_ms;            /* the extension a new leader gives every lease */
    unsigned checkpoint_interval_ms; /* 0: LESSOR_CHECKPOINT_MS */
};

struct lessor_lease; /* raft/lessor.c */

struct lessor {
    uv_loop_t *loop;
    store *st;
    struct proposer *prop;
    struct lessor_options o;
    uv_timer_t timer;            /* LESSOR_TICK_MS while started */
    bool primary;                /* this member leads and keeps the timers */
    bool closing;                /* lessor_close() began */
    struct lessor_lease *leases; /* the primary's leases, sorted by id */
    size_t n, cap;
    unsigned in_flight; /* the lessor's own proposals not answered yet */
    void (*on_closed)(struct lessor *l);
};

/* Prepares l and starts its timer on loop; st and prop must outlive it. Returns 0 or an error. */
int lessor_start(struct lessor *l, uv_loop_t *loop, store *st, struct proposer *prop,
                 const struct lessor_options *o);

/* Whether this member keeps the timers now (it leads). */
bool lessor_is_primary(struct lessor *l);

/* A grant applied on the leader that took it: its expiry starts now. */
void lessor_granted(struct lessor *l, int64_t id, int64_t ttl);

/* etcd's Renew on the primary: the lease's expiry starts again from now; *ttl gets its granted
 * TTL. Returns 0, CAIRN_E_LEASE_NOT_FOUND (unknown, or expired and being revoked), or
 * CAIRN_E_NOT_LEADER when this member does not lead. */
int lessor_renew(struct lessor *l, int64_t id, int64_t *ttl);

/* The remaining time of a lease on the primary in whole seconds (truncated, never negative), and
 * its granted TTL. Returns 0, CAIRN_E_LEASE_NOT_FOUND or CAIRN_E_NOT_LEADER. */
int lessor_remaining(struct lessor *l, int64_t id, int64_t *remaining, int64_t *granted);

/* Stops the timer; done runs once it is closed (the lessor's proposals still in flight are then
 * answered by the proposer, and l must stay allocated until the proposer closed). */
void lessor_close(struct lessor *l, void (*done)(struct lessor *l));

/* Frees the in-memory table (after close). */
void lessor_free(struct lessor *l);

#endif
