/* raft/node.c — a member on libraft: batching proposals into entries, applying committed entries
 * to the store, committing the store behind the log, snapshots. */
#include "raft/node.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "common/log.h"
#include "common/url.h"
#include "raft/members.h"

/* One proposed entry: the proposals it carries, in order, waiting for the entry to be applied. */
struct node_batch {
    struct raft_apply req;   /* libraft's request; req.data is the node */
    uint64_t seq;            /* cairn.Entry.batch */
    struct proposal *first;  /* the proposals, linked by next */
    size_t n;                /* how many */
    bool applied;            /* the state machine applied the entry and answered them */
    bool failed;             /* libraft gave up on it: answered with an error */
    struct node_batch *next; /* inflight list */
};

static void on_idle(uv_idle_t *h);

static struct node *from_base(struct proposer *p)
{
    return (struct node *)p; /* base is the first member */
}

void node_options_default(struct node_options *o)
{
    memset(o, 0, sizeof *o);
    o->election_ms = 1000;
    o->heartbeat_ms = 100;
    o->snapshot_count = 100000;
    o->snapshot_trailing = 5000; /* etcd keeps 5000 entries for followers to catch up from */
    o->commit_interval_ms = 100; /* etcd commits its backend every 100 ms ... */
    o->commit_requests = 10000;  /* ... or after 10000 writes */
    o->request_timeout_ms = 7000;
}

static struct node *of_fsm(struct fsm *f)
{
    return f->data;
}

static void on_commit_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    fsm_commit(&n->fsm, false);
}

/* After an entry or a compaction step: commit now if enough is pending, else within the interval.
 */
static void commit_policy(struct node *n)
{
    if (n->fsm.uncommitted >= n->o.commit_requests) {
        uv_timer_stop(&n->commit_timer);
        fsm_commit(&n->fsm, false);
    } else if (n->fsm.wtx && !uv_is_active((uv_handle_t *)&n->commit_timer)) {
        uv_timer_start(&n->commit_timer, on_commit_timer, n->o.commit_interval_ms, 0);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Answering proposals */

static void fail_list(struct proposal *p, int err)
{
    while (p) {
        struct proposal *next = p->next;
        p->cb(p, err);
        p = next;
    }
}

static void inflight_remove(struct node *n, struct node_batch *b)
{
    struct node_batch **pp = &n->inflight, *prev = NULL;
    while (*pp && *pp != b) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp)
        return;
    *pp = b->next;
    if (n->inflight_tail == b)
        n->inflight_tail = prev;
    b->next = NULL;
}

/* The entry this member proposed with sequence seq, if it still waits. Entries are applied in the
 * order they were proposed, so it is normally the oldest. */
static struct node_batch *inflight_find(struct node *n, uint64_t seq)
{
    for (struct node_batch *b = n->inflight; b; b = b->next)
        if (b->seq == seq)
            return b;
    return NULL;
}

/* Answers the proposals of an applied entry, except physical compactions, which wait for their
 * history to be removed. */
static void answer_list(struct node *n, struct proposal *p, uint64_t index)
{
    while (p) {
        struct proposal *next = p->next;
        p->index = index;
        const Etcdserverpb__CompactionRequest *c =
            p->req->request_case == CAIRN__INTERNAL_REQUEST__REQUEST_COMPACTION ? p->req->compaction
                                                                                : NULL;
        if (c && c->physical && !p->res.err) {
            p->next = n->physical;
            n->physical = p;
        } else {
            p->cb(p, 0);
        }
        p = next;
    }
}

static int raft_err_to_cairn(int rv)
{
    switch (rv) {
    case RAFT_NOTLEADER:
        return CAIRN_E_NOT_LEADER;
    case RAFT_LEADERSHIPLOST:
        return CAIRN_E_LEADER_CHANGED;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return CAIRN_E_STOPPED;
    case RAFT_NOMEM:
        return CAIRN_E_NOMEM;
    case RAFT_NOSPACE:
        return CAIRN_E_NO_DISK;
    case RAFT_IOERR:
        return CAIRN_E_IO;
    case RAFT_TOOBIG:
        return CAIRN_E_REQUEST_TOO_LARGE;
    default:
        return CAIRN_E_INTERNAL;
    }
}

/* libraft is done with an entry: applied (answered already), or given up on. */
static void on_entry_done(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct node_batch *b = (struct node_batch *)req;
    struct node *n = req->data;
    if (!b->applied) {
        inflight_remove(n, b);
        if (status == 0)
            log_error("raft: entry of batch %llu committed but not applied",
                      (unsigned long long)b->seq);
        /* at close libraft fails what it holds as a lost leadership: etcd says "server stopped" */
        int err = n->closing ? CAIRN_E_STOPPED
                  : status   ? raft_err_to_cairn(status)
                             : CAIRN_E_INTERNAL;
        fail_list(b->first, err);
    }
    free(b);
}

/* ---------------------------------------------------------------------------------------------- */
/* The state machine's hooks */

static struct proposal *fsm_take(struct fsm *f, uint64_t seq, size_t count, uint64_t index)
{
    struct node *n = of_fsm(f);
    struct node_batch *b = inflight_find(n, seq);
    /* libraft gave the entry its index when it was proposed: an entry of an earlier run with the
     * same sequence number sits at another index */
    if (!b || b->n != count || b->req.index != index)
        return NULL; /* not ours after all */
    b->applied = true;
    inflight_remove(n, b);
    struct proposal *list = b->first;
    b->first = NULL;
    return list;
}

static void release_applied(struct node *n);
static void start_reads(struct node *n);
static void nudge_followers(struct node *n);
static const struct raft_server *config_server(const struct node *n, uint64_t id);
static bool learner_ready(struct node *n, uint64_t id);
static void reconcile(struct node *n);
static bool removal_due(struct node *n, uint64_t id);

/* Unlinks the proposal with request id `id` from the list at *pp (whose last element *tail
 * points to, when tail is not NULL); NULL if it is not there. */
static struct proposal *unlink_request(struct proposal **pp, struct proposal **tail, uint64_t id)
{
    struct proposal *prev = NULL;
    for (; *pp; prev = *pp, pp = &(*pp)->next) {
        struct proposal *p = *pp;
        if (p->req->id != id)
            continue;
        *pp = p->next;
        if (tail && *tail == p)
            *tail = prev;
        p->next = NULL;
        return p;
    }
    return NULL;
}

/* A request this member forwarded waits in n->forwarded, or in the queue between a failed forward
 * and its resend: found in either, it is answered by the first copy applied. */
static struct proposal *fsm_take_one(struct fsm *f, const Cairn__InternalRequest *req)
{
    struct node *n = of_fsm(f);
    struct proposal *p = unlink_request(&n->forwarded, NULL, req->id);
    if (!p && n->head)
        p = unlink_request(&n->head, &n->tail, req->id);
    return p;
}

static bool past_deadline(const struct node *n, const struct proposal *p)
{
    return uv_now(n->loop) - p->queued_at >= n->o.request_timeout_ms;
}

static void on_resend_timer(uv_timer_t *t);

void node_forward_failed(struct node *n, uint64_t request_id, int err)
{
    struct proposal *p = NULL;
    for (p = n->forwarded; p && p->req->id != request_id; p = p->next)
        ;
    if (!p)
        return;
    if ((err == CAIRN_E_LEADER_CHANGED || err == CAIRN_E_NOT_LEADER) && !n->closing &&
        !past_deadline(n, p)) {
        /* the request may be in the log or not: it stays where its first copy, if applied, finds
         * it, and goes again a heartbeat later (a member that still believes in a stale leader
         * does not spin) */
        p->resend = true;
        if (!uv_is_active((uv_handle_t *)&n->resend_timer))
            uv_timer_start(&n->resend_timer, on_resend_timer, n->o.heartbeat_ms, 0);
        return;
    }
    unlink_request(&n->forwarded, NULL, request_id);
    p->cb(p, err);
}

uint64_t node_next_request_id(struct node *n)
{
    /* etcd's generator: 2 bytes of the member ID, 5 of milliseconds at start, 1 counter byte
     * carrying into the time part */
    return (n->o.id & 0xffff) << 48 | ((n->next_request++) & 0xffffffffffffull);
}

static void fsm_answered(struct fsm *f, struct proposal *list, uint64_t index)
{
    answer_list(of_fsm(f), list, index);
}

#define SNAPSHOT_LOG_BYTES      (8u << 20) /* entries kept in memory before a snapshot, at most */
#define SNAPSHOT_TRAILING_BYTES (4u << 20) /* entries kept behind a snapshot, at most */

/* libraft counts entries, and keeps every entry since the last snapshot in memory; an entry
 * carries a batch of requests. So that memory follows the requests, as etcd's --snapshot-count
 * does (it counts requests), a snapshot is due after snapshot_count requests or 8 MiB of entries,
 * and about snapshot_trailing requests (at most 4 MiB) stay behind it. */
static void snapshot_policy(struct node *n)
{
    const struct fsm *f = &n->fsm;
    if (f->since_snapshot_requests < n->o.snapshot_count &&
        f->since_snapshot_bytes < SNAPSHOT_LOG_BYTES) {
        raft_set_snapshot_threshold(&n->raft, n->o.snapshot_count); /* not due yet */
        return;
    }
    uint64_t entries = f->since_snapshot_entries ? f->since_snapshot_entries : 1;
    uint64_t per_entry = f->since_snapshot_requests / entries;
    uint64_t bytes_per_entry = f->since_snapshot_bytes / entries;
    uint64_t trailing = n->o.snapshot_trailing / (per_entry ? per_entry : 1);
    uint64_t by_bytes = SNAPSHOT_TRAILING_BYTES / (bytes_per_entry ? bytes_per_entry : 1);
    if (trailing > by_bytes)
        trailing = by_bytes;
    if (trailing < 16)
        trailing = 16;
    raft_set_snapshot_trailing(&n->raft, (unsigned)trailing);
    raft_set_snapshot_threshold(&n->raft, (unsigned)entries);
}

static void fsm_applied(struct fsm *f, unsigned requests)
{
    (void)requests;
    struct node *n = of_fsm(f);
    snapshot_policy(n);
    if (f->compacting)
        uv_idle_start(&n->idle, on_idle);
    if (n->reads_apply)
        release_applied(n);
    commit_policy(n);
    if (n->applied)
        n->applied(n->owner);
}

/* Any member that has applied index will do; the leader, when one is known, is asked first (at
 * start none is). */
static int fsm_fetch_store(struct fsm *f, uint64_t index)
{
    struct node *n = of_fsm(f);
    uint64_t leader = node_leader(n);
    if (!n->o.fetch_store)
        return CAIRN_E_UNIMPLEMENTED;
    return n->o.fetch_store(n->o.fetch_arg, leader == n->o.id ? 0 : leader, index);
}

static void fsm_fatal(struct fsm *f, const char *why)
{
    struct node *n = of_fsm(f);
    if (n->fatal)
        n->fatal(n, why);
    log_error("raft: %s; stopping this member", why);
    exit(1);
}

/* ---------------------------------------------------------------------------------------------- */
/* Proposing */

static int node_propose(struct proposer *self, struct proposal *p)
{
    struct node *n = from_base(self);
    if (n->closing || !n->started)
        return CAIRN_E_STOPPED;
    p->next = NULL;
    p->queued_at = uv_now(n->loop);
    p->forwarded_after = 0;
    p->resend = p->resent = false;
    if (n->tail)
        n->tail->next = p;
    else
        n->head = p;
    n->tail = p;
    uv_idle_start(&n->idle, on_idle); /* propose on this turn of the loop, whatever woke it */
    return 0;
}

static void expire_waiting(struct node *n);

static void on_wait_timer(uv_timer_t *t)
{
    expire_waiting(t->data);
}

/* Puts p back in the queue, in arrival order (expire_waiting() fails the queue's head first). */
static void requeue(struct node *n, struct proposal *p)
{
    struct proposal **pp = &n->head;
    while (*pp && (*pp)->queued_at <= p->queued_at)
        pp = &(*pp)->next;
    p->next = *pp;
    *pp = p;
    if (!p->next)
        n->tail = p;
}

/* The forwards that failed without an answer go again: back in the queue, to the leader known by
 * then (or proposed here, if this member leads now), unless their request timed out meanwhile. */
static void on_resend_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    struct proposal *expired = NULL;
    unsigned again = 0;
    for (struct proposal **pp = &n->forwarded; *pp;) {
        struct proposal *p = *pp;
        if (!p->resend) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        p->resend = false;
        if (past_deadline(n, p)) {
            p->next = expired;
            expired = p;
        } else {
            p->resent = true;
            requeue(n, p);
            again++;
        }
    }
    if (again)
        log_info("raft: sending %u forwarded writes again", again);
    fail_list(expired, CAIRN_E_TIMEOUT);
    if (n->head)
        uv_idle_start(&n->idle, on_idle); /* propose on this turn, as node_propose() does */
}

/* Hands each proposal to the owner's forwarder, keeping it until it is applied here. A leader the
 * owner cannot reach yet (it has not published its client URLs: CAIRN_E_NO_LEADER) is asked again
 * on a later turn, within the proposal's request timeout. */
static void forward_list(struct node *n, struct proposal *p, uint64_t leader)
{
    while (p) {
        struct proposal *next = p->next;
        int err = n->forward && !p->local_only ? 0 : CAIRN_E_NOT_LEADER;
        if (!err) {
            if (!p->forwarded_after) /* every copy of it will lie after this index */
                p->forwarded_after = n->fsm.applied ? n->fsm.applied : 1;
            p->next = n->forwarded; /* before the call: its answer may come at once */
            n->forwarded = p;
            err = n->forward(n->owner, p->req, leader, p->resent ? p->forwarded_after : 0);
            if (err == CAIRN_E_NO_LEADER) {
                n->forwarded = p->next;
                requeue(n, p);
            } else if (err) {
                node_forward_failed(n, p->req->id, err);
            }
        } else {
            p->cb(p, err);
        }
        p = next;
    }
}

/* Proposes every queued request as one entry. */
static void propose_queued(struct node *n)
{
    if (!n->head)
        return;
    if (raft_state(&n->raft) != RAFT_LEADER) {
        uint64_t leader = node_leader(n);
        if (leader != 0) {
            struct proposal *list = n->head;
            n->head = n->tail = NULL;
            forward_list(n, list, leader);
        } else if (!uv_is_active((uv_handle_t *)&n->wait_timer)) {
            uint64_t waited = uv_now(n->loop) - n->head->queued_at;
            uint64_t left = waited < n->o.request_timeout_ms ? n->o.request_timeout_ms - waited : 0;
            uv_timer_start(&n->wait_timer, on_wait_timer, left, 0);
        }
        return;
    }
    uv_timer_stop(&n->wait_timer);
    struct proposal *list = NULL, **lt = &list;
    for (struct proposal *p = n->head, *next; p; p = next) {
        next = p->next;
        const Cairn__MemberChange *mc =
            p->req->request_case == CAIRN__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE
                ? p->req->member_change
                : NULL;
        if (mc && mc->op == CAIRN__MEMBER_CHANGE__OP__PROMOTE && config_server(n, mc->id) &&
            config_server(n, mc->id)->role == RAFT_STANDBY && !learner_ready(n, mc->id)) {
            p->cb(p, CAIRN_E_LEARNER_NOT_READY); /* the leader's check, as etcd's */
            continue;
        }
        p->next = NULL;
        *lt = p;
        lt = &p->next;
    }
    n->head = n->tail = NULL;
    if (!list)
        return;
    size_t count = 0;
    for (struct proposal *p = list; p; p = p->next)
        count++;
    struct node_batch *b = calloc(1, sizeof *b);
    struct raft_buffer buf;
    if (!b || entry_encode(n->o.id, n->next_batch, list, &buf)) {
        free(b);
        fail_list(list, CAIRN_E_NOMEM);
        return;
    }
    b->seq = n->next_batch++;
    b->first = list;
    b->n = count;
    b->req.data = n;
    int rv = raft_apply(&n->raft, &b->req, &buf, 1, on_entry_done);
    if (rv) {
        /* libraft frees buf.base on some of its error paths and not on others: never freeing it
         * here risks a leak on an error that is fatal to proposing anyway, never a double free */
        log_warn("raft: cannot propose: %s", raft_errmsg(&n->raft));
        free(b);
        fail_list(list, raft_err_to_cairn(rv));
        return;
    }
    if (b->req.index <= n->fsm.applied) {
        /* a leader whose log lost entries its store applied (check_log_covers_store): the
         * entry would be committed at an index every member with that store skips */
        char why[256];
        snprintf(why, sizeof why,
                 "this leader put a new entry at index %llu, which the store applied before: "
                 "its log lost entries",
                 (unsigned long long)b->req.index);
        fsm_fatal(&n->fsm, why);
    }
    if (n->inflight_tail)
        n->inflight_tail->next = b;
    else
        n->inflight = b;
    n->inflight_tail = b;
}

/* Proposals that waited longer than the request timeout for a leader fail; the queue is in
 * arrival order, so they are its head. */
static void expire_waiting(struct node *n)
{
    if (!n->head || raft_state(&n->raft) == RAFT_LEADER)
        return;
    uint64_t now = uv_now(n->loop);
    struct proposal *expired = NULL, **tail = &expired;
    while (n->head && now - n->head->queued_at >= n->o.request_timeout_ms) {
        struct proposal *p = n->head;
        n->head = p->next;
        p->next = NULL;
        *tail = p;
        tail = &p->next;
    }
    if (!n->head)
        n->tail = NULL;
    uv_timer_stop(&n->wait_timer); /* re-armed for the next oldest on the next turn */
    fail_list(expired, CAIRN_E_TIMEOUT);
}

/* One bounded step of physical compaction inside the store's write transaction. */
static void compact_step(struct node *n)
{
    bool done;
    fsm_compact_step(&n->fsm, &done);
    commit_policy(n);
    if (done) {
        struct proposal *waiting = n->physical;
        n->physical = NULL;
        fail_list(waiting, 0); /* err 0: answered as applied */
    }
}

/* While the idle handle is active the loop does not block in its poll, so the check handle runs on
 * the next turn even if no I/O arrives. */
static void on_idle(uv_idle_t *h)
{
    (void)h;
}

static void on_check(uv_check_t *h)
{
    struct node *n = h->data;
    if (n->closing)
        return;
    expire_waiting(n);
    nudge_followers(n);
    propose_queued(n);
    start_reads(n);
    if (n->reads_apply)
        release_applied(n);
    bool leads = raft_state(&n->raft) == RAFT_LEADER;
    if (n->fsm.members_changed || (leads && !n->was_leader)) {
        n->fsm.members_changed = false;
        n->members_dirty = true;
    }
    n->was_leader = leads;
    if (n->fsm.removed_self && n->on_removed) {
        n->fsm.removed_self = false;
        n->on_removed(n);
        return;
    }
    if (leads && n->members_dirty && !n->changing)
        reconcile(n);
    if (n->fsm.compacting)
        compact_step(n);
    if (!n->fsm.compacting && (!n->head || raft_state(&n->raft) != RAFT_LEADER) &&
        (!n->reads_next || n->reads_busy || uv_now(n->loop) < n->reads_retry_at))
        uv_idle_stop(&n->idle);
}

/* ---------------------------------------------------------------------------------------------- */
/* Linearizable reads */

/* The only voter is this member: its applied state holds every committed entry. */
static bool sole_voter(struct node *n)
{
    const struct raft_configuration *c = &n->raft.configuration;
    unsigned voters = 0;
    bool me = false;
    for (unsigned i = 0; i < c->n; i++) {
        if (c->servers[i].role != RAFT_VOTER)
            continue;
        voters++;
        me |= c->servers[i].id == n->o.id;
    }
    return voters == 1 && me;
}

static void answer_reads(struct read_wait *w, int err)
{
    while (w) {
        struct read_wait *next = w->next;
        w->cb(w, err);
        w = next;
    }
}

static void on_read_barrier(struct raft_barrier *req, int status)
{
    struct node *n = req->data;
    struct read_wait *list = n->reads_asked;
    n->reads_asked = NULL;
    n->reads_busy = false;
    /* the barrier is applied: everything committed before the reads arrived is in the store */
    answer_reads(list, status ? raft_err_to_cairn(status) : 0);
    start_reads(n);
}

/* Reads wait until an index is applied here; answers those that may go. */
static void release_applied(struct node *n)
{
    uint64_t applied = raft_last_applied(&n->raft);
    for (struct read_wait **pp = &n->reads_apply; *pp;) {
        struct read_wait *w = *pp;
        if (w->index <= applied) {
            *pp = w->next;
            w->cb(w, 0);
        } else {
            pp = &w->next;
        }
    }
}

void node_read_index_done(struct node *n, int err, uint64_t index)
{
    struct read_wait *list = n->reads_asked;
    n->reads_asked = NULL;
    n->reads_busy = false;
    if (err) {
        answer_reads(list, err);
    } else {
        while (list) {
            struct read_wait *next = list->next;
            list->index = index;
            list->next = n->reads_apply;
            n->reads_apply = list;
            list = next;
        }
        release_applied(n);
    }
    start_reads(n);
}

/* Starts the next barrier (leader) or question (follower) for the reads queued since the last. */
static void start_reads(struct node *n)
{
    if (n->reads_busy || !n->reads_next || n->closing || uv_now(n->loop) < n->reads_retry_at)
        return;
    if (raft_state(&n->raft) == RAFT_LEADER) {
        n->reads_asked = n->reads_next;
        n->reads_next = NULL;
        n->reads_busy = true;
        n->barrier.data = n;
        int rv = raft_barrier(&n->raft, &n->barrier, on_read_barrier);
        if (rv) {
            n->reads_busy = false;
            struct read_wait *list = n->reads_asked;
            n->reads_asked = NULL;
            answer_reads(list, raft_err_to_cairn(rv));
        }
        return;
    }
    uint64_t leader = node_leader(n);
    if (leader == 0) {
        if (uv_now(n->loop) - n->reads_since >= n->o.request_timeout_ms) {
            struct read_wait *list = n->reads_next;
            n->reads_next = NULL;
            answer_reads(list, CAIRN_E_TIMEOUT);
        }
        return; /* the check handle tries again on later turns */
    }
    /* reads that must not travel (a leader's answer to a follower's question) */
    for (struct read_wait **pp = &n->reads_next; *pp;) {
        struct read_wait *w = *pp;
        if (w->local_only || !n->ask_read_index) {
            *pp = w->next;
            w->cb(w, CAIRN_E_NOT_LEADER);
        } else {
            pp = &w->next;
        }
    }
    if (!n->reads_next)
        return;
    n->reads_asked = n->reads_next;
    n->reads_next = NULL;
    n->reads_busy = true;
    int err = n->ask_read_index(n->owner, leader);
    if (err == CAIRN_E_NO_LEADER && uv_now(n->loop) - n->reads_since < n->o.request_timeout_ms) {
        /* the leader cannot be reached yet (not published): ask again on a later turn */
        n->reads_next = n->reads_asked;
        n->reads_asked = NULL;
        n->reads_busy = false;
        n->reads_retry_at = uv_now(n->loop) + 50; /* the loop turns with libraft's ticks */
    } else if (err) {
        node_read_index_done(n, err, 0);
    }
}

static int node_read_index(struct proposer *self, struct read_wait *w)
{
    struct node *n = from_base(self);
    if (n->closing || !n->started)
        return CAIRN_E_STOPPED;
    if (raft_state(&n->raft) == RAFT_LEADER && sole_voter(n))
        return 1;
    if (!n->reads_next)
        n->reads_since = uv_now(n->loop);
    w->next = n->reads_next;
    n->reads_next = w;
    uv_idle_start(&n->idle, on_idle); /* asked on this turn of the loop */
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Membership: the leader brings libraft's configuration in line with the member table */

static void on_change_done(struct raft_change *req, int status)
{
    struct node *n = req->data;
    n->changing = false;
    if (status)
        log_warn("raft: configuration change failed: %s", raft_strerror(status));
    n->members_dirty = true; /* look again: more may be due, or this one again */
}

static const struct raft_server *config_server(const struct node *n, uint64_t id)
{
    const struct raft_configuration *c = &n->raft.configuration;
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return &c->servers[i];
    return NULL;
}

#define REMOVAL_GRACE_MS 300  /* three heartbeats carrying the commit index of the removal */
#define REMOVAL_WAIT_MS  5000 /* a member that does not catch up is removed all the same */

/* A removed member stops once it applies its removal; once out of libraft's configuration it
 * hears nothing more, so the leader takes it out only after it has the removal entry and a few
 * heartbeats told it the entry is committed (or, if it is down or far behind, after 5 s). */
static bool removal_due(struct node *n, uint64_t id)
{
    uint64_t now = uv_now(n->loop);
    if (n->removing != id) {
        n->removing = id;
        n->removing_index = raft_commit_index(&n->raft);
        n->removing_since = now;
        n->removing_caught_up = 0;
        return false;
    }
    if (now - n->removing_since >= REMOVAL_WAIT_MS)
        return true;
    raft_index match = 0;
    if (raft_match_index(&n->raft, id, &match) == 0 && match >= n->removing_index) {
        if (!n->removing_caught_up)
            n->removing_caught_up = now;
        return now - n->removing_caught_up >= REMOVAL_GRACE_MS;
    }
    return false;
}

/* One step towards the recorded membership: a member recorded and not configured is added (as a
 * spare, then given its role on the next step), a role that differs is assigned (a learner is a
 * standby: it replicates without voting), a removed member is removed. libraft takes one change
 * at a time. Peer URL updates stay in the records: libraft cannot change an address in place. */
static void reconcile(struct node *n)
{
    n->members_dirty = false;
    Cairn__MemberRecord **list;
    size_t count;
    if (members_load_view(n->st, &list, &count))
        return;
    int rv = 0;
    bool started = false;
    n->change.data = n;
    for (size_t i = 0; i < count && !started; i++) {
        const Etcdserverpb__Member *m = list[i]->member;
        const struct raft_server *srv = config_server(n, m->id);
        if (list[i]->removed) {
            if (srv && removal_due(n, m->id)) {
                log_info("raft: removing member %016llx", (unsigned long long)m->id);
                rv = raft_remove(&n->raft, &n->change, m->id, on_change_done);
                started = true;
            } else if (srv) {
                n->members_dirty = true; /* look again on a later turn */
            }
            continue;
        }
        int role = m->islearner ? RAFT_STANDBY : RAFT_VOTER;
        if (!srv && m->n_peerurls > 0) {
            char address[256];
            if (url_host_port(m->peerurls[0], address, sizeof address))
                continue; /* not an address libraft can take */
            log_info("raft: adding member %016llx at %s", (unsigned long long)m->id, address);
            rv = raft_add(&n->raft, &n->change, m->id, address, on_change_done);
            started = true;
        } else if (srv && srv->role != role) {
            log_info("raft: member %016llx becomes a %s", (unsigned long long)m->id,
                     role == RAFT_VOTER ? "voter" : "learner");
            rv = raft_assign(&n->raft, &n->change, m->id, role, on_change_done);
            started = true;
        }
    }
    members_free(list, count);
    if (started && rv) {
        log_warn("raft: configuration change refused: %s", raft_errmsg(&n->raft));
        n->members_dirty = true; /* try again on a later turn */
    } else if (started) {
        n->changing = true;
    }
}

/* etcd's isLearnerReady: a learner may be promoted once its log reached 90% of the leader's. */
static bool learner_ready(struct node *n, uint64_t id)
{
    const struct raft_server *srv = config_server(n, id);
    raft_index match = 0;
    if (!srv || srv->role != RAFT_STANDBY || raft_match_index(&n->raft, id, &match))
        return false;
    return (double)match >= 0.9 * (double)raft_last_index(&n->raft);
}

/* ---------------------------------------------------------------------------------------------- */
/* Leadership transfer */

struct node_transfer {
    struct raft_transfer req; /* libraft's; first member */
    struct node *n;
    struct transfer_wait *w;
};

/* libraft is done: the target leads now, or the transfer gave up (after an election timeout). */
static void on_transferred(struct raft_transfer *req)
{
    struct node_transfer *t = (struct node_transfer *)req;
    struct transfer_wait *w = t->w;
    int err = node_leader(t->n) == w->target ? 0 : CAIRN_E_LEADER_TRANSFER_TIMEOUT;
    free(t);
    w->cb(w, err);
}

static int node_transfer(struct proposer *self, struct transfer_wait *w)
{
    struct node *n = from_base(self);
    if (n->closing || !node_is_leader(n))
        return CAIRN_E_NOT_LEADER;
    const struct raft_configuration *c = &n->raft.configuration;
    bool voter = false;
    for (unsigned i = 0; i < c->n; i++)
        voter |= c->servers[i].id == w->target && c->servers[i].role == RAFT_VOTER;
    if (!voter || w->target == n->o.id) /* etcd: not a member, or a learner */
        return CAIRN_E_BAD_LEADER_TRANSFEREE;
    struct node_transfer *t = calloc(1, sizeof *t);
    if (!t)
        return CAIRN_E_NOMEM;
    t->n = n;
    t->w = w;
    int rv = raft_transfer(&n->raft, &t->req, w->target, on_transferred);
    if (rv) {
        free(t);
        return rv == RAFT_BADID || rv == RAFT_NOTFOUND ? CAIRN_E_BAD_LEADER_TRANSFEREE
                                                       : raft_err_to_cairn(rv);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The proposer interface */

static uint64_t node_term(struct proposer *self)
{
    return raft_current_term(&from_base(self)->raft);
}

static uint64_t node_applied_index(struct proposer *self)
{
    return raft_last_applied(&from_base(self)->raft);
}

static uint64_t node_committed_index(struct proposer *self)
{
    return raft_commit_index(&from_base(self)->raft);
}

static uint64_t node_request_id_of(struct proposer *self)
{
    return node_next_request_id(from_base(self));
}

static void node_forward_failed_of(struct proposer *self, uint64_t id, int err)
{
    node_forward_failed(from_base(self), id, err);
}

static void node_read_index_done_of(struct proposer *self, int err, uint64_t index)
{
    node_read_index_done(from_base(self), err, index);
}

/* libraft tells followers a new commit index only with its next append or heartbeat (up to a
 * heartbeat interval later). A follower that forwarded a write or asked for a read index waits for
 * it, so the leader appends an empty barrier at once: its append carries the commit index. */
static void on_nudged(struct raft_barrier *req, int status)
{
    (void)status;
    struct node *n = req->data;
    n->nudging = false;
}

static void nudge_followers(struct node *n)
{
    if (!n->nudge_due || n->nudging || raft_state(&n->raft) != RAFT_LEADER)
        return;
    n->nudge_due = false;
    if (n->head)
        return; /* the next entry, proposed on this turn, carries it */
    n->nudge.data = n;
    if (raft_barrier(&n->raft, &n->nudge, on_nudged) == 0)
        n->nudging = true;
}

static void node_followers_wait_of(struct proposer *self)
{
    struct node *n = from_base(self);
    n->nudge_due = true;
    uv_idle_start(&n->idle, on_idle); /* nudged on this turn of the loop */
}

static uint64_t node_cluster_id_of(struct proposer *self)
{
    return from_base(self)->o.cluster_id;
}

static bool node_is_learner_of(struct proposer *self)
{
    struct node *n = from_base(self);
    const struct raft_server *srv = config_server(n, n->o.id);
    return srv && srv->role == RAFT_STANDBY;
}

static uint64_t node_leader_of(struct proposer *self)
{
    return node_leader(from_base(self));
}

bool node_is_leader(struct node *n)
{
    return n->started && raft_state(&n->raft) == RAFT_LEADER;
}

uint64_t node_leader(struct node *n)
{
    if (!n->started)
        return 0;
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(&n->raft, &id, &address);
    return id;
}

/* ---------------------------------------------------------------------------------------------- */
/* Lifecycle */

static int mkdir_p(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0700) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(path, 0700) && errno != EEXIST ? -1 : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* libraft's uv I/O, wrapped (raft/guard.h) */

/* How often the vote requests not answered are sent again (raft/guard.h). */
#define VOTE_RESEND_MS 10

static void on_vote_resent(struct raft_io_send *req, int status)
{
    (void)status;
    free(req);
}

static void send_vote_again(void *ctx, const struct raft_message *msg)
{
    struct node *n = ctx;
    struct raft_io_send *req = malloc(sizeof *req);
    if (req && n->real_send(&n->io, req, msg, on_vote_resent) != 0)
        free(req);
}

static void on_vote_timer(uv_timer_t *t)
{
    struct node *n = t->data;
    if (n->closing || !guard_votes_resend(&n->votes, &n->raft, send_vote_again, n))
        uv_timer_stop(t);
}

static int send_guarded(struct raft_io *io, struct raft_io_send *req,
                        const struct raft_message *msg, raft_io_send_cb cb)
{
    struct raft *r = io->data;
    struct node *n = r->data;
    struct raft_message m = *msg;
    guard_send(r, &m);
    if (m.type == RAFT_REQUEST_VOTE && !n->closing && guard_vote_sent(&n->votes, &m) &&
        !uv_is_active((uv_handle_t *)&n->vote_timer))
        uv_timer_start(&n->vote_timer, on_vote_timer, VOTE_RESEND_MS, VOTE_RESEND_MS);
    return n->real_send(io, req, &m, cb);
}

static void recv_guarded(struct raft_io *io, struct raft_message *msg)
{
    struct raft *r = io->data;
    struct node *n = r->data;
    guard_vote_received(&n->votes, msg);
    if (guard_recv(&n->guard, r, n->fsm.applied, msg))
        n->real_recv(io, msg);
    else if (msg->type == RAFT_REQUEST_VOTE)
        log_warn("raft: vote request of member %llx refused: its log ends at index %llu, below "
                 "the store's %llu",
                 (unsigned long long)msg->server_id,
                 (unsigned long long)msg->request_vote.last_log_index,
                 (unsigned long long)n->fsm.applied);
}

static int start_guarded(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                         raft_io_recv_cb recv)
{
    struct node *n = ((struct raft *)io->data)->data;
    n->real_recv = recv;
    return n->real_start(io, msecs, tick, recv_guarded);
}

/* The seed of libraft's randomized election timeouts. libraft's uv I/O seeds them from the clock
 * alone (its srand() runs before it knows the member's id), so members started in the same
 * millisecond draw the same timeouts: after a leader dies they time out together, split the vote
 * and wait for another timeout, and the first to time out is never earlier than a single draw. */
static unsigned election_seed(uint64_t id)
{
    unsigned seed;
    if (getrandom(&seed, sizeof seed, 0) != (ssize_t)sizeof seed)
        seed = (unsigned)(id ^ (id >> 32) ^ uv_hrtime());
    return seed;
}

/* Whether libraft has written its state (metadata files) in dir. */
static bool has_raft_state(const char *dir)
{
    char path[4200];
    struct stat st;
    for (int i = 1; i <= 2; i++) {
        snprintf(path, sizeof path, "%s/metadata%d", dir, i);
        if (stat(path, &st) == 0)
            return true;
    }
    return false;
}

/* A peer belongs to another cluster. A member that never applied an entry and finds most of the
 * other members of its initial cluster in another cluster was started with the wrong cluster (its
 * token or initial cluster differ from theirs): it stops, saying so. Otherwise the foreign peer's
 * connections are refused, and that is all. */
static void on_cluster_mismatch(struct cluster_transport *t, const char *address, uint64_t theirs,
                                bool accepted)
{
    (void)accepted;
    struct node *n = t->data;
    if (n->fsm.applied > 0)
        return;
    bool known = false;
    for (size_t i = 0; i < n->n_foreign; i++)
        known |= !strcmp(n->foreign[i], address);
    if (!known && n->n_foreign < NODE_MAX_PEERS)
        snprintf(n->foreign[n->n_foreign++], sizeof n->foreign[0], "%s", address);
    size_t others = n->o.n_peers > 0 ? n->o.n_peers - 1 : 0;
    if (others == 0 || n->n_foreign * 2 <= others)
        return;
    char why[512];
    snprintf(why, sizeof why,
             "the member at %s belongs to cluster %016llx, this member to %016llx: check "
             "--initial-cluster and --initial-cluster-token",
             address, (unsigned long long)theirs, (unsigned long long)n->o.cluster_id);
    fsm_fatal(&n->fsm, why);
}

/* The address of peer id's first peer URL as the member table has it now (a MemberUpdate
 * changes it there; libraft keeps the one the member was added with). */
static bool peer_address(struct cluster_transport *t, raft_id id, char *buf, size_t len)
{
    struct node *n = t->data;
    Cairn__MemberRecord **list;
    size_t count;
    if (members_load_view(n->st, &list, &count))
        return false;
    bool found = false;
    for (size_t i = 0; i < count && !found; i++) {
        const Etcdserverpb__Member *m = list[i]->member;
        if (m->id == id && !list[i]->removed && m->n_peerurls > 0)
            found = url_host_port(m->peerurls[0], buf, len) == 0;
    }
    members_free(list, count);
    return found;
}

static void on_cluster_adopted(struct cluster_transport *t)
{
    struct node *n = t->data;
    n->o.cluster_id = t->cluster_id;
    n->fsm.cluster_id = t->cluster_id; /* recorded in the store with the first entry applied */
}

static void init_handles(struct node *n)
{
    uv_timer_init(n->loop, &n->commit_timer);
    uv_timer_init(n->loop, &n->wait_timer);
    uv_timer_init(n->loop, &n->resend_timer);
    uv_timer_init(n->loop, &n->vote_timer);
    uv_check_init(n->loop, &n->check);
    uv_idle_init(n->loop, &n->idle);
    n->commit_timer.data = n->wait_timer.data = n->resend_timer.data = n->vote_timer.data = n;
    n->check.data = n->idle.data = n;
    uv_check_start(&n->check, on_check);
}

/* The store never applies an entry before the member's log holds it, except on a leader whose
 * followers made the entry committed before its own write of it ended (libraft counts the
 * followers' copies), if it then crashed. So a log that ends below the store's index lost
 * entries (a damaged disk, or a log restored from an older copy than the store). With other
 * voters, the entries at those indexes are committed ones, which the leader sends again and the
 * state machine skips as applied. As the only voter the member would put new entries at those
 * indexes itself, and skip them: it refuses to start. */
static int check_log_covers_store(struct node *n, char *why, size_t why_len)
{
    raft_index last = raft_last_index(&n->raft);
    if (n->fsm.applied <= last)
        return 0;
    if (!sole_voter(n)) {
        log_warn("raft: the log in %s ends at index %llu, below the store's %llu: the leader "
                 "sends those entries again",
                 n->o.dir, (unsigned long long)last, (unsigned long long)n->fsm.applied);
        return 0;
    }
    snprintf(why, why_len,
             "the raft log in %s ends at index %llu but the store has applied entries up to "
             "index %llu: the log lost entries this member acknowledged (a damaged disk, or a log "
             "older than the store)",
             n->o.dir, (unsigned long long)last, (unsigned long long)n->fsm.applied);
    return CAIRN_E_CORRUPT;
}

int node_start(struct node *n, uv_loop_t *loop, store *st, const struct node_options *o, char *why,
               size_t why_len)
{
    memset(n, 0, sizeof *n);
    n->base.propose = node_propose;
    n->base.term = node_term;
    n->base.applied_index = node_applied_index;
    n->base.committed_index = node_committed_index;
    n->base.leader = node_leader_of;
    n->base.next_request_id = node_request_id_of;
    n->base.forward_failed = node_forward_failed_of;
    n->base.read_index = node_read_index;
    n->base.transfer = node_transfer;
    n->base.cluster_id = node_cluster_id_of;
    n->base.followers_wait = node_followers_wait_of;
    n->base.is_learner = node_is_learner_of;
    n->base.read_index_done = node_read_index_done_of;
    n->loop = loop;
    n->st = st;
    n->o = *o;
    /* Sequence numbers unique across restarts, so an entry of an earlier run is never taken for
     * one this run waits for. */
    n->next_batch = ((uint64_t)time(NULL) << 24) + 1; /* plus the entry's index when matched */
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    n->next_request = ((uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000) << 8;

    int err = fsm_init(&n->fsm, st, o->id);
    if (err) {
        snprintf(why, why_len, "cannot read the store: %s", cairn_strerror(err));
        return err;
    }
    n->fsm.raft = &n->raft;
    n->fsm.data = n;
    n->fsm.take = fsm_take;
    n->fsm.take_one = fsm_take_one;
    n->fsm.answered = fsm_answered;
    n->fsm.applied_hook = fsm_applied;
    n->fsm.fatal = fsm_fatal;
    n->fsm.fetch_store = fsm_fetch_store;
    n->fsm.cluster_id = o->cluster_id;

    if (mkdir_p(o->dir)) {
        snprintf(why, why_len, "cannot create %s: %s", o->dir, strerror(errno));
        return CAIRN_E_IO;
    }
    init_handles(n);   /* raft_start may apply entries already */
    n->io.version = 2; /* the struct version libraft asks its users to set */
    int rv = cluster_transport_init(&n->transport, loop, o->cluster_id);
    n->transport.mismatch = on_cluster_mismatch;
    n->transport.adopted = on_cluster_adopted;
    n->transport.address_of = peer_address;
    n->transport.data = n;
    /* a member joining an existing cluster cannot compute the cluster's ID from its flags */
    n->transport.adopt = !o->bootstrap && n->fsm.applied == 0 && !has_raft_state(o->dir);
    if (rv) {
        snprintf(why, why_len, "cannot set up the peer transport: %s", n->transport.base.errmsg);
        return CAIRN_E_INTERNAL;
    }
    if (o->bind_address &&
        (rv = cluster_transport_set_bind_address(&n->transport, o->bind_address))) {
        snprintf(why, why_len, "invalid peer listen address %s: %s", o->bind_address,
                 raft_strerror(rv));
        cluster_transport_free(&n->transport);
        return CAIRN_E_INVALID_ARGUMENT;
    }
    if ((rv = raft_uv_init(&n->io, loop, o->dir, &n->transport.base))) {
        snprintf(why, why_len, "cannot open the raft log in %s: %s", o->dir, n->io.errmsg);
        cluster_transport_free(&n->transport);
        return CAIRN_E_IO;
    }
    /* A damaged segment is an error, as a damaged WAL is to etcd. libraft's auto-recovery would
     * set it aside and start without its entries: entries this member acknowledged, which it
     * could then vote and propose as if it had never had them. A torn last write of the open
     * segment is still cut off, as etcd repairs its WAL's torn tail. */
    raft_uv_set_auto_recovery(&n->io, false);
    if ((rv = raft_init(&n->raft, &n->io, &n->fsm.base, o->id, o->address))) {
        snprintf(why, why_len, "cannot initialize raft: %s", raft_errmsg(&n->raft));
        raft_uv_close(&n->io);
        cluster_transport_free(&n->transport);
        return CAIRN_E_INTERNAL;
    }
    n->raft.data = n;
    raft_seed(&n->raft, election_seed(o->id));
    n->real_send = n->io.send;
    n->real_start = n->io.start;
    n->io.send = send_guarded;
    n->io.start = start_guarded;
    raft_set_election_timeout(&n->raft, o->election_ms);
    raft_set_heartbeat_timeout(&n->raft, o->heartbeat_ms);
    raft_set_pre_vote(&n->raft, true);
    raft_set_snapshot_threshold(&n->raft, o->snapshot_count);
    raft_set_snapshot_trailing(&n->raft, o->snapshot_trailing);

    err = 0;
    if (n->fsm.applied > 0 && !has_raft_state(o->dir)) {
        snprintf(why, why_len,
                 "the store has entries up to index %llu but there is no raft log in %s: the "
                 "data directory is damaged or from an older cairnd",
                 (unsigned long long)n->fsm.applied, o->dir);
        return CAIRN_E_CORRUPT;
    }
    if (o->bootstrap) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        for (size_t i = 0; i < o->n_peers && !rv; i++)
            rv = raft_configuration_add(&conf, o->peers[i].id, o->peers[i].address, RAFT_VOTER);
        if (!rv) {
            rv = raft_bootstrap(&n->raft, &conf);
            if (rv == RAFT_CANTBOOTSTRAP) {
                rv = 0; /* a log exists: restart with it, the initial cluster is history */
            } else if (rv) {
                snprintf(why, why_len, "cannot bootstrap the cluster: %s", raft_errmsg(&n->raft));
            }
        } else {
            snprintf(why, why_len, "invalid initial cluster: %s", raft_strerror(rv));
        }
        raft_configuration_close(&conf);
    }
    if (!rv && !err && (rv = raft_start(&n->raft)))
        snprintf(why, why_len, "cannot start raft: %s (%s)", raft_strerror(rv),
                 raft_errmsg(&n->raft));
    if (!rv && !err)
        err = check_log_covers_store(n, why, why_len);
    if (rv || err) {
        n->closing = true;
        /* libraft must be closed through its callback; the caller exits on this error anyway. */
        return err ? err : CAIRN_E_IO;
    }
    n->started = true;
    if (n->fsm.compacting)
        uv_idle_start(&n->idle, on_idle);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct node *n = h->data;
    if (--n->handles_open == 0) {
        guard_votes_close(&n->votes);
        if (n->on_closed)
            n->on_closed(n);
    }
}

static void on_raft_closed(struct raft *r)
{
    struct node *n = r->data;
    /* libraft failed what it still held (its callbacks ran); make the store durable */
    uv_timer_stop(&n->commit_timer);
    fsm_close(&n->fsm);
    raft_uv_close(&n->io);
    cluster_transport_free(&n->transport);
    struct proposal *waiting = n->physical;
    n->physical = NULL;
    fail_list(waiting, 0); /* recorded and durable; the removal resumes at the next start */
    n->handles_open = 6;
    uv_close((uv_handle_t *)&n->commit_timer, on_handle_closed);
    uv_close((uv_handle_t *)&n->vote_timer, on_handle_closed);
    uv_close((uv_handle_t *)&n->wait_timer, on_handle_closed);
    uv_close((uv_handle_t *)&n->resend_timer, on_handle_closed);
    uv_close((uv_handle_t *)&n->check, on_handle_closed);
    uv_close((uv_handle_t *)&n->idle, on_handle_closed);
}

void node_close(struct node *n, void (*done)(struct node *n))
{
    n->closing = true;
    n->on_closed = done;
    struct proposal *queued = n->head;
    n->head = n->tail = NULL;
    fail_list(queued, CAIRN_E_STOPPED);
    queued = n->forwarded;
    n->forwarded = NULL;
    fail_list(queued, CAIRN_E_STOPPED);
    uv_timer_stop(&n->resend_timer);
    uv_timer_stop(&n->vote_timer);
    struct read_wait *reads = n->reads_next;
    n->reads_next = NULL;
    answer_reads(reads, CAIRN_E_STOPPED);
    reads = n->reads_apply;
    n->reads_apply = NULL;
    answer_reads(reads, CAIRN_E_STOPPED);
    /* a barrier in flight fails when libraft closes; a question in flight was answered when the
     * owner's client closed */
    raft_close(&n->raft, on_raft_closed);
}
