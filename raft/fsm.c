/* raft/fsm.c — applying committed entries to the store; snapshot markers. */
#include "raft/fsm.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "raft/apply.h"

#define ENTRY_HEADER 8 /* the packed cairn.Entry's length, little endian */

/* How many applied request ids the store remembers (store/requests.c). Only requests that may
 * reach the log twice are remembered (forwarded ones and resends), and a resend older than the
 * memory is refused "request timed out", so the number bounds no correctness: it is how many
 * forwarded writes may be applied between a follower's first forward and its resend (at most its
 * request timeout, 7 s by default) before the resend is refused rather than applied. 100,000 is
 * above the forwarded writes a member applies in that time, and costs a few MiB of store. */
#define FSM_REMEMBERED_REQUESTS 100000

static void put_le64(void *p, uint64_t v)
{
    uint8_t *b = p;
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const void *p)
{
    const uint8_t *b = p;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)b[i] << (8 * i);
    return v;
}

static void fatal(struct fsm *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fatal(struct fsm *f, const char *fmt, ...)
{
    char why[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    if (f->fatal)
        f->fatal(f, why);
    log_error("raft: %s; stopping this member", why);
    exit(1);
}

int entry_encode(uint64_t member, uint64_t batch, const struct proposal *list,
                 struct raft_buffer *buf)
{
    size_t count = 0;
    for (const struct proposal *p = list; p; p = p->next)
        count++;
    Cairn__InternalRequest **reqs = malloc((count ? count : 1) * sizeof *reqs);
    if (!reqs)
        return CAIRN_E_NOMEM;
    size_t resent = 0;
    for (const struct proposal *p = list; p; p = p->next)
        resent += p->resent;
    Cairn__InternalRequest *copies = resent ? malloc(resent * sizeof *copies) : NULL;
    if (resent && !copies) {
        free(reqs);
        return CAIRN_E_NOMEM;
    }
    size_t i = 0, j = 0;
    for (const struct proposal *p = list; p; p = p->next) {
        reqs[i] = (Cairn__InternalRequest *)p->req;
        if (p->resent) {
            /* a write this member forwarded before it led: the first copy may be in the log */
            copies[j] = *p->req;
            copies[j].resent_after = p->forwarded_after;
            reqs[i] = &copies[j++];
        }
        i++;
    }
    Cairn__Entry e = CAIRN__ENTRY__INIT;
    e.member_id = member;
    e.batch = batch;
    e.n_requests = count;
    e.requests = reqs;
    size_t len = cairn__entry__get_packed_size(&e);
    buf->len = ENTRY_HEADER + ((len + 7) & ~(size_t)7);
    buf->base = raft_malloc(buf->len);
    if (!buf->base) {
        free(copies);
        free(reqs);
        return CAIRN_E_NOMEM;
    }
    memset((uint8_t *)buf->base + buf->len - 8, 0, 8);
    put_le64(buf->base, len);
    cairn__entry__pack(&e, (uint8_t *)buf->base + ENTRY_HEADER);
    free(copies);
    free(reqs);
    return 0;
}

static store_tx *write_tx(struct fsm *f)
{
    if (!f->wtx) {
        int err = store_tx_begin_write(f->st, &f->wtx);
        if (err)
            fatal(f, "cannot begin a store write transaction: %s", cairn_strerror(err));
    }
    return f->wtx;
}

void fsm_commit(struct fsm *f, bool durable)
{
    if (!f->wtx)
        return;
    store_tx *tx = f->wtx;
    f->wtx = NULL;
    f->uncommitted = 0;
    int err = store_tx_commit(tx, durable);
    if (err)
        fatal(f, "cannot commit applied entries to the store: %s", cairn_strerror(err));
}

void fsm_compact_step(struct fsm *f, bool *done)
{
    *done = true;
    int err = store_compact_step(write_tx(f), done);
    if (err)
        fatal(f, "compaction step failed: %s", cairn_strerror(err));
    f->uncommitted++;
    if (*done)
        f->compacting = false;
}

/* A request that may reach the log more than once: one forwarded to the leader (the member that
 * built it is not the entry's proposer), or one sent again. */
static bool tracked(const Cairn__Entry *e, const Cairn__InternalRequest *req)
{
    if (req->id == 0)
        return false;
    return req->resent_after != 0 || (req->header && req->header->member_id != e->member_id);
}

/* Whether the tracked request req (as the log holds it) is to be applied. Not when its id was
 * applied already: a second copy changes nothing, and since the first copy's result is not known
 * here, it gets etcd's "request timed out" (the member that took the call answers from its own
 * application of the first copy when it still waits). Nor when it is a resend and some request
 * applied after its resent_after may have been forgotten: whether the first copy was applied can
 * no longer be told, so it is refused "request timed out" too. Depends only on the log and the
 * store: every member decides the same. */
static int admit(store_tx *tx, const Cairn__InternalRequest *req, struct apply_result *res,
                 bool *apply)
{
    *apply = false;
    bool seen;
    int err = store_request_seen(tx, req->id, &seen);
    if (err)
        return err;
    uint64_t forgotten = 0;
    if (!seen && req->resent_after && (err = store_requests_forgotten(tx, &forgotten)))
        return err;
    if (seen || (req->resent_after && forgotten > req->resent_after)) {
        memset(res, 0, sizeof *res);
        res->err = CAIRN_E_TIMEOUT;
        res->duplicate = seen;
        return 0;
    }
    *apply = true;
    return 0;
}

/* libraft applies in order and counts every entry in last_applied, also its own barrier and
 * configuration entries, so the entry being applied is the one after it. */
static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct fsm *f = rf->data;
    *result = NULL;
    uint64_t index = raft_last_applied(f->raft) + 1;
    if (index <= f->applied)
        return 0; /* in the store already: replayed after a restart */
    uint64_t len = buf->len >= ENTRY_HEADER ? get_le64(buf->base) : UINT64_MAX;
    Cairn__Entry *e =
        len <= buf->len - ENTRY_HEADER
            ? cairn__entry__unpack(NULL, len, (const uint8_t *)buf->base + ENTRY_HEADER)
            : NULL;
    if (!e)
        fatal(f, "log entry %llu cannot be decoded", (unsigned long long)index);
    struct proposal *mine =
        e->member_id == f->self && f->take ? f->take(f, e->batch, e->n_requests, index) : NULL;
    store_tx *tx = write_tx(f);
    struct proposal *p = mine;
    for (size_t i = 0; i < e->n_requests; i++) {
        struct apply_result scratch;
        const Cairn__InternalRequest *req = e->requests[i];
        struct proposal *one = NULL;
        if (!mine && req->header && req->header->member_id == f->self && f->take_one)
            one = f->take_one(f, req);
        struct proposal *w = p ? p : one;
        if (w)
            req = w->req;
        struct arena *a = w ? w->arena : &f->scratch;
        struct apply_result *res = w ? &w->res : &scratch;
        const Cairn__InternalRequest *logged = e->requests[i]; /* w->req lacks resent_after */
        bool apply = true;
        int err = tracked(e, logged) ? admit(tx, logged, res, &apply) : 0;
        if (!err && apply)
            err = apply_request(tx, req, a, res);
        if (!err && apply && tracked(e, logged))
            err = store_request_record(tx, logged->id, index, FSM_REMEMBERED_REQUESTS);
        if (err)
            fatal(f, "applying log entry %llu failed: %s", (unsigned long long)index,
                  cairn_strerror(err));
        if (res->compacted)
            f->compacting = true;
        if (res->members_changed)
            f->members_changed = true;
        if (res->members_changed &&
            req->request_case == CAIRN__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE &&
            req->member_change->op == CAIRN__MEMBER_CHANGE__OP__REMOVE &&
            req->member_change->id == f->self)
            f->removed_self = true;
        if (one && f->answered) {
            one->next = NULL;
            f->answered(f, one, index);
        }
        if (p)
            p = p->next;
    }
    if (!f->cluster_recorded && f->cluster_id) {
        uint64_t have = 0;
        int e2 = store_tx_cluster_id(tx, &have);
        if (!e2 && have == 0)
            e2 = store_tx_set_cluster_id(tx, f->cluster_id);
        if (e2)
            fatal(f, "recording the cluster ID failed: %s", cairn_strerror(e2));
        f->cluster_recorded = true;
    }
    int err = store_tx_set_consistent_index(tx, index);
    if (err)
        fatal(f, "recording index %llu in the store failed: %s", (unsigned long long)index,
              cairn_strerror(err));
    f->applied = index;
    unsigned requests = (unsigned)e->n_requests;
    f->since_snapshot_entries++;
    f->since_snapshot_requests += requests;
    f->since_snapshot_bytes += buf->len;
    cairn__entry__free_unpacked(e, NULL);
    arena_reset(&f->scratch);
    f->uncommitted += requests;
    if (mine && f->answered)
        f->answered(f, mine, index);
    if (f->applied_hook)
        f->applied_hook(f, requests);
    return 0;
}

/* libraft wants a snapshot at its last applied entry: make the store durable there and record how
 * far it got. The log before the snapshot (but the trailing entries) is deleted afterwards. */
static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    fsm_commit(f, true);
    f->since_snapshot_entries = f->since_snapshot_requests = f->since_snapshot_bytes = 0;
    Cairn__SnapshotMarker m = CAIRN__SNAPSHOT_MARKER__INIT;
    m.index = f->applied;
    store_tx *tx;
    if (store_tx_begin_read(f->st, &tx) == 0) {
        m.revision = store_tx_rev(tx);
        store_tx_end(tx);
    }
    size_t len = cairn__snapshot_marker__get_packed_size(&m);
    struct raft_buffer *b = raft_malloc(sizeof *b);
    void *data = raft_malloc(len ? len : 1);
    if (!b || !data) {
        raft_free(b);
        raft_free(data);
        return RAFT_NOMEM;
    }
    cairn__snapshot_marker__pack(&m, data);
    b->base = data;
    b->len = len;
    *bufs = b;
    *n_bufs = 1;
    log_info("raft: snapshot at index %llu (store revision %lld)", (unsigned long long)m.index,
             (long long)m.revision);
    return 0;
}

/* At start with the latest snapshot, or when the leader sent one. */
static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct fsm *f = rf->data;
    Cairn__SnapshotMarker *m = cairn__snapshot_marker__unpack(NULL, buf->len, buf->base);
    if (!m)
        fatal(f, "the raft snapshot cannot be decoded");
    uint64_t index = m->index;
    cairn__snapshot_marker__free_unpacked(m, NULL);
    if (index > f->applied) {
        /* the store is behind the snapshot: take the leader's (libraft then applies the entries
         * after the snapshot; those the copy holds already are skipped) */
        log_info("raft: the store is at index %llu, the snapshot at %llu: fetching the store",
                 (unsigned long long)f->applied, (unsigned long long)index);
        fsm_commit(f, true);
        int err = f->fetch_store ? f->fetch_store(f, index) : CAIRN_E_UNIMPLEMENTED;
        store_tx *tx;
        if (!err && !(err = store_tx_begin_read(f->st, &tx))) {
            f->applied = store_tx_consistent_index(tx);
            f->compacting = store_tx_compact_rev(tx) >= 0;
            store_tx_end(tx);
        }
        if (err || f->applied < index)
            fatal(f, "cannot install the store for the snapshot at index %llu: %s",
                  (unsigned long long)index, err ? cairn_strerror(err) : "the copy is older");
        f->members_changed = true;
        log_info("raft: installed the store at index %llu", (unsigned long long)f->applied);
    }
    raft_free(buf->base);
    return 0;
}

int fsm_init(struct fsm *f, store *st, uint64_t self)
{
    memset(f, 0, sizeof *f);
    f->base.version = 1;
    f->base.data = f;
    f->base.apply = fsm_apply;
    f->base.snapshot = fsm_snapshot;
    f->base.restore = fsm_restore;
    f->st = st;
    f->self = self;
    store_tx *tx;
    int err = store_tx_begin_read(st, &tx);
    if (err)
        return err;
    f->applied = store_tx_consistent_index(tx);
    f->compacting = store_tx_compact_rev(tx) >= 0; /* steps may remain from before a restart */
    store_tx_end(tx);
    return 0;
}

void fsm_close(struct fsm *f)
{
    fsm_commit(f, true);
    arena_free(&f->scratch);
}
