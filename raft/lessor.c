/* raft/lessor.c — the leader's lease timers; expired leases proposed as revokes, checkpoints. */
#include "raft/lessor.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* A lease as the primary sees it. Times are loop times (uv_now, ms). */
struct lessor_lease {
    int64_t id;
    int64_t ttl;            /* granted TTL, seconds */
    int64_t remaining;      /* checkpointed remaining TTL in the store, 0: none */
    uint64_t expiry;        /* when it expires */
    uint64_t revoke_at;     /* when its revoke was proposed, 0: not yet */
    uint64_t checkpoint_at; /* when its next checkpoint is due, 0: none scheduled */
};

/* One proposal of the lessor's own (a revoke or a checkpoint), freed when answered. */
struct lessor_prop {
    struct proposal p; /* first member */
    struct lessor *l;
    struct arena arena;
    Cairn__InternalRequest req;
    Etcdserverpb__LeaseRevokeRequest revoke;
    Etcdserverpb__LeaseCheckpointRequest checkpoint;
    Etcdserverpb__LeaseCheckpoint *cps; /* checkpoint.checkpoints points into it */
    Etcdserverpb__LeaseCheckpoint **cpp;
};

static uint64_t now_ms(struct lessor *l)
{
    return uv_now(l->loop);
}

static uint64_t interval(const struct lessor *l)
{
    return l->o.checkpoint_interval_ms ? l->o.checkpoint_interval_ms : LESSOR_CHECKPOINT_MS;
}

/* etcd's RemainingTTL: the checkpointed remaining TTL if there is one, else the granted TTL. */
static int64_t remaining_ttl(const struct lessor_lease *e)
{
    return e->remaining > 0 ? e->remaining : e->ttl;
}

/* etcd's scheduleCheckpointIfNeeded: only leases that outlive an interval are checkpointed. */
static void schedule_checkpoint(struct lessor *l, struct lessor_lease *e)
{
    uint64_t iv = interval(l);
    e->checkpoint_at = (uint64_t)remaining_ttl(e) * 1000 > iv ? now_ms(l) + iv : 0;
}

/* Index of id in the sorted table, or where it would go (*found false). */
static size_t find(const struct lessor *l, int64_t id, bool *found)
{
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (l->leases[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < l->n && l->leases[lo].id == id;
    return lo;
}

/* Inserts a lease at position i; NULL when memory is exhausted. */
static struct lessor_lease *insert_at(struct lessor *l, size_t i, int64_t id)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        struct lessor_lease *p = realloc(l->leases, cap * sizeof *p);
        if (!p)
            return NULL;
        l->leases = p;
        l->cap = cap;
    }
    memmove(&l->leases[i + 1], &l->leases[i], (l->n - i) * sizeof *l->leases);
    l->n++;
    struct lessor_lease *e = &l->leases[i];
    memset(e, 0, sizeof *e);
    e->id = id;
    return e;
}

static void remove_at(struct lessor *l, size_t i)
{
    memmove(&l->leases[i], &l->leases[i + 1], (l->n - i - 1) * sizeof *l->leases);
    l->n--;
}

/* A lease the primary learns of now: it expires its remaining TTL (plus extend ms) from now. */
static void track(struct lessor *l, struct lessor_lease *e, const struct store_lease *s,
                  uint64_t extend)
{
    e->ttl = s->ttl;
    e->remaining = s->remaining_ttl;
    e->expiry = now_ms(l) + extend + (uint64_t)remaining_ttl(e) * 1000;
    schedule_checkpoint(l, e);
}

/* Brings the table in line with the store's lease table: leases gone are dropped, new ones are
 * tracked from now (plus extend ms), checkpointed TTLs are taken over. The store's list is the
 * new table, so it is built beside the old one in one pass over both (sorted by id): the tick
 * after thousands of revokes costs no more than any other (removing them one by one from the
 * array moved its tail once per revoke, quadratic in the table's size). */
static void reconcile(struct lessor *l, uint64_t extend)
{
    store_tx *tx;
    struct arena a = ARENA_INIT;
    struct store_lease *list;
    size_t count;
    if (store_tx_begin_view(l->st, &tx))
        return;
    int err = store_lease_list(tx, &a, &list, &count);
    store_tx_end(tx);
    struct lessor_lease *next = NULL;
    size_t cap = count > 64 ? count : 64;
    if (err || !(next = malloc(cap * sizeof *next))) {
        arena_free(&a); /* the table stays as it is: lookup() checks the store anyway */
        return;
    }
    size_t i = 0;
    for (size_t j = 0; j < count; j++) {
        while (i < l->n && l->leases[i].id < list[j].id)
            i++; /* revoked */
        struct lessor_lease *e = &next[j];
        if (i < l->n && l->leases[i].id == list[j].id) {
            *e = l->leases[i++];
            e->ttl = list[j].ttl;
            e->remaining = list[j].remaining_ttl;
        } else {
            memset(e, 0, sizeof *e);
            e->id = list[j].id;
            track(l, e, &list[j], extend);
        }
    }
    free(l->leases);
    l->leases = next;
    l->n = count;
    l->cap = cap;
    arena_free(&a);
}

/* etcd's Promote and Demote, when leadership changed since the last look. */
static bool sync_primary(struct lessor *l)
{
    bool leads = !l->closing && l->prop->leader(l->prop) == l->o.self;
    if (leads && !l->primary) {
        l->primary = true;
        l->n = 0;
        reconcile(l, l->o.election_ms);
        log_info("lessor: leading: %zu leases get their remaining TTL", l->n);
    } else if (!leads && l->primary) {
        l->primary = false;
        l->n = 0; /* a follower keeps no timers */
    }
    return l->primary;
}

bool lessor_is_primary(struct lessor *l)
{
    return sync_primary(l);
}

/* The primary's entry for id, checked against the store (which a revoke may have emptied since
 * the last tick); NULL when the lease does not exist. */
static struct lessor_lease *lookup(struct lessor *l, int64_t id)
{
    store_tx *tx;
    struct store_lease s;
    if (store_tx_begin_view(l->st, &tx))
        return NULL;
    int err = store_lease_get(tx, id, false, NULL, &s);
    store_tx_end(tx);
    bool found;
    size_t i = find(l, id, &found);
    if (err) {
        if (found)
            remove_at(l, i);
        return NULL;
    }
    if (found)
        return &l->leases[i];
    struct lessor_lease *e = insert_at(l, i, id);
    if (e)
        track(l, e, &s, 0);
    return e;
}

void lessor_granted(struct lessor *l, int64_t id, int64_t ttl)
{
    if (!sync_primary(l))
        return;
    struct lessor_lease *e = lookup(l, id);
    if (e) {
        e->ttl = ttl;
        e->remaining = 0;
        e->expiry = now_ms(l) + (uint64_t)ttl * 1000;
        e->revoke_at = 0;
        schedule_checkpoint(l, e);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* The lessor's proposals */

static void on_prop_done(struct proposal *p, int err)
{
    struct lessor_prop *lp = (struct lessor_prop *)p;
    if (err && err != CAIRN_E_STOPPED)
        log_warn("lessor: proposal failed: %s", cairn_strerror(err));
    lp->l->in_flight--;
    arena_free(&lp->arena);
    free(lp->cps);
    free(lp->cpp);
    free(lp);
}

static struct lessor_prop *prop_new(struct lessor *l)
{
    struct lessor_prop *lp = calloc(1, sizeof *lp);
    if (!lp)
        return NULL;
    lp->l = l;
    lp->req = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
    lp->req.id = l->prop->next_request_id(l->prop);
    lp->p.req = &lp->req;
    lp->p.cb = on_prop_done;
    lp->p.data = lp;
    lp->p.arena = &lp->arena;
    lp->p.local_only = true; /* the primary's decision: a member that no longer leads drops it */
    return lp;
}

static void propose(struct lessor *l, struct lessor_prop *lp)
{
    l->in_flight++;
    int err = proposer_propose(l->prop, &lp->p);
    if (err)
        on_prop_done(&lp->p, err);
}

static void propose_revoke(struct lessor *l, int64_t id)
{
    struct lessor_prop *lp = prop_new(l);
    if (!lp)
        return;
    lp->revoke = (Etcdserverpb__LeaseRevokeRequest)ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    lp->revoke.id = id;
    lp->req.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE;
    lp->req.lease_revoke = &lp->revoke;
    propose(l, lp);
}

/* Proposes one LeaseCheckpoint of n (id, remaining) pairs. */
static void propose_checkpoint(struct lessor *l, const int64_t (*pairs)[2], size_t n)
{
    struct lessor_prop *lp = prop_new(l);
    if (!lp)
        return;
    lp->cps = calloc(n, sizeof *lp->cps);
    lp->cpp = calloc(n, sizeof *lp->cpp);
    if (!lp->cps || !lp->cpp) {
        free(lp->cps);
        free(lp->cpp);
        free(lp);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        lp->cps[i] = (Etcdserverpb__LeaseCheckpoint)ETCDSERVERPB__LEASE_CHECKPOINT__INIT;
        lp->cps[i].id = pairs[i][0];
        lp->cps[i].remaining_ttl = pairs[i][1];
        lp->cpp[i] = &lp->cps[i];
    }
    lp->checkpoint =
        (Etcdserverpb__LeaseCheckpointRequest)ETCDSERVERPB__LEASE_CHECKPOINT_REQUEST__INIT;
    lp->checkpoint.checkpoints = lp->cpp;
    lp->checkpoint.n_checkpoints = n;
    lp->req.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT;
    lp->req.lease_checkpoint = &lp->checkpoint;
    propose(l, lp);
}

/* ---------------------------------------------------------------------------------------------- */
/* Renewals and lookups */

int lessor_renew(struct lessor *l, int64_t id, int64_t *ttl)
{
    if (!sync_primary(l))
        return CAIRN_E_NOT_LEADER;
    struct lessor_lease *e = lookup(l, id);
    if (!e)
        return CAIRN_E_LEASE_NOT_FOUND;
    uint64_t now = now_ms(l);
    /* etcd's Renew waits for an expired lease's revoke and then says it is not found */
    if (e->expiry <= now)
        return CAIRN_E_LEASE_NOT_FOUND;
    if (e->remaining > 0) {
        /* etcd's Renew clears a checkpointed remaining TTL, so a new leader restarts the lease
         * from its full TTL again */
        int64_t pair[1][2] = {{id, 0}};
        propose_checkpoint(l, (const int64_t(*)[2])pair, 1);
        e->remaining = 0;
    }
    e->expiry = now + (uint64_t)e->ttl * 1000;
    schedule_checkpoint(l, e);
    *ttl = e->ttl;
    return 0;
}

int lessor_remaining(struct lessor *l, int64_t id, int64_t *remaining, int64_t *granted)
{
    if (!sync_primary(l))
        return CAIRN_E_NOT_LEADER;
    struct lessor_lease *e = lookup(l, id);
    if (!e)
        return CAIRN_E_LEASE_NOT_FOUND;
    uint64_t now = now_ms(l);
    *remaining = e->expiry > now ? (int64_t)((e->expiry - now) / 1000) : 0;
    *granted = e->ttl;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The timer */

/* etcd's revokeExpiredLeases and checkpointScheduledLeases, on the primary. */
static void on_tick(uv_timer_t *t)
{
    struct lessor *l = t->data;
    if (!sync_primary(l))
        return;
    reconcile(l, 0);
    uint64_t now = now_ms(l);
    unsigned revokes = 0;
    int64_t(*due)[2] = NULL;
    size_t n_due = 0;
    for (size_t i = 0; i < l->n; i++) {
        struct lessor_lease *e = &l->leases[i];
        if (e->expiry <= now) {
            if (revokes < LESSOR_MAX_REVOKES &&
                (!e->revoke_at || now - e->revoke_at >= LESSOR_REVOKE_RETRY_MS)) {
                e->revoke_at = now;
                revokes++;
                propose_revoke(l, e->id);
            }
            continue;
        }
        if (!e->checkpoint_at || e->checkpoint_at > now || n_due == LESSOR_MAX_CHECKPOINTS)
            continue;
        /* etcd's findDueScheduledCheckpoints: the remaining TTL rounded up, unless it is the
         * whole TTL still */
        int64_t rem = (int64_t)((e->expiry - now + 999) / 1000);
        e->checkpoint_at = 0;
        if (rem >= e->ttl)
            continue;
        if (!due && !(due = malloc(LESSOR_MAX_CHECKPOINTS * sizeof *due)))
            continue;
        due[n_due][0] = e->id;
        due[n_due][1] = rem;
        n_due++;
        e->remaining = rem;
        schedule_checkpoint(l, e); /* etcd reschedules when the checkpoint is applied */
    }
    if (n_due)
        propose_checkpoint(l, (const int64_t(*)[2])due, n_due);
    free(due);
}

int lessor_start(struct lessor *l, uv_loop_t *loop, store *st, struct proposer *prop,
                 const struct lessor_options *o)
{
    memset(l, 0, sizeof *l);
    l->loop = loop;
    l->st = st;
    l->prop = prop;
    l->o = *o;
    int rv = uv_timer_init(loop, &l->timer);
    if (rv)
        return CAIRN_E_INTERNAL;
    l->timer.data = l;
    uv_timer_start(&l->timer, on_tick, LESSOR_TICK_MS, LESSOR_TICK_MS);
    return 0;
}

static void on_timer_closed(uv_handle_t *h)
{
    struct lessor *l = h->data;
    if (l->on_closed)
        l->on_closed(l);
}

void lessor_close(struct lessor *l, void (*done)(struct lessor *l))
{
    l->closing = true;
    l->primary = false;
    l->on_closed = done;
    uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

void lessor_free(struct lessor *l)
{
    free(l->leases);
    l->leases = NULL;
    l->n = l->cap = 0;
}
