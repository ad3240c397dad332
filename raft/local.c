/* raft/local.c — single-member proposer: group commit per turn of the event loop. */
#include "raft/local.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void on_idle(uv_idle_t *h);

static struct local_proposer *from_base(struct proposer *p)
{
    return (struct local_proposer *)p; /* base is the first member */
}

static int lp_propose(struct proposer *self, struct proposal *p)
{
    struct local_proposer *lp = from_base(self);
    if (lp->closing)
        return CAIRN_E_INTERNAL;
    p->next = NULL;
    if (lp->tail)
        lp->tail->next = p;
    else
        lp->head = p;
    lp->tail = p;
    uv_idle_start(&lp->idle, on_idle); /* apply on this turn of the loop, whatever woke it */
    return 0;
}

static uint64_t lp_term(struct proposer *self)
{
    (void)self;
    return 1; /* no elections without replication: the first and only term */
}

static uint64_t lp_applied_index(struct proposer *self)
{
    return from_base(self)->index;
}

/* Answers every proposal of a list with err. */
static void fail_all(struct proposal *p, int err)
{
    while (p) {
        struct proposal *next = p->next;
        p->cb(p, err);
        p = next;
    }
}

/* Applies the queued proposals in one write transaction and one durable commit, then answers. */
static void apply_batch(struct local_proposer *lp)
{
    struct proposal *batch = lp->head;
    if (!batch)
        return;
    lp->head = lp->tail = NULL;

    store_tx *tx;
    int err = store_tx_begin_write(lp->st, &tx);
    if (err) {
        log_error("store: cannot begin a write transaction: %s", cairn_strerror(err));
        fail_all(batch, err);
        return;
    }
    uint64_t index = lp->index;
    bool compacted = false;
    for (struct proposal *p = batch; p && !err; p = p->next) {
        p->index = ++index;
        err = apply_request(tx, p->req, p->arena, &p->res);
        if (!err)
            err = store_tx_set_consistent_index(tx, index);
        compacted |= !err && p->res.compacted;
    }
    if (!err)
        err = store_tx_commit(tx, true);
    else
        store_tx_end(tx);
    if (err) {
        /* Nothing of the batch is applied; answer every proposal with the storage error. */
        log_error("store: batch of writes failed: %s", cairn_strerror(err));
        fail_all(batch, err);
        return;
    }
    lp->index = index;
    if (compacted)
        lp->compacting = true;
    while (batch) {
        struct proposal *next = batch->next;
        const Etcdserverpb__CompactionRequest *c =
            batch->req->request_case == CAIRN__INTERNAL_REQUEST__REQUEST_COMPACTION
                ? batch->req->compaction
                : NULL;
        if (c && c->physical && !batch->res.err) {
            batch->next = lp->physical; /* answered once the history is removed */
            lp->physical = batch;
        } else {
            batch->cb(batch, 0);
        }
        batch = next;
    }
}

/* One bounded compaction step in its own (non-durable: it is redone after a crash) commit. */
static void compact_step(struct local_proposer *lp)
{
    store_tx *tx;
    bool done = true;
    int err = store_tx_begin_write(lp->st, &tx);
    if (!err) {
        err = store_compact_step(tx, &done);
        err = err ? (store_tx_end(tx), err) : store_tx_commit(tx, false);
    }
    if (err) {
        log_error("store: compaction step failed: %s", cairn_strerror(err));
        done = true;
    }
    if (done) {
        lp->compacting = false;
        struct proposal *waiting = lp->physical;
        lp->physical = NULL;
        fail_all(waiting, err); /* err 0: answered as applied */
    }
}

/* The idle handle has no work of its own: while it is active the loop does not block in its poll,
 * so the check handle runs on the next turn even if no I/O arrives. */
static void on_idle(uv_idle_t *h)
{
    (void)h;
}

static void on_check(uv_check_t *h)
{
    struct local_proposer *lp = h->data;
    apply_batch(lp);
    if (lp->compacting)
        compact_step(lp);
    if (!lp->compacting && !lp->head)
        uv_idle_stop(&lp->idle);
}

int local_proposer_init(struct local_proposer *lp, uv_loop_t *loop, store *st)
{
    memset(lp, 0, sizeof *lp);
    lp->base.propose = lp_propose;
    lp->base.term = lp_term;
    lp->base.applied_index = lp_applied_index;
    lp->loop = loop;
    lp->st = st;
    store_tx *tx;
    int err = store_tx_begin_read(st, &tx);
    if (err)
        return err;
    lp->index = store_tx_consistent_index(tx);
    /* a compaction recorded before a restart may have steps left */
    lp->compacting = store_tx_compact_rev(tx) >= 0;
    store_tx_end(tx);
    uv_check_init(loop, &lp->check);
    uv_idle_init(loop, &lp->idle);
    lp->check.data = lp->idle.data = lp;
    uv_check_start(&lp->check, on_check);
    if (lp->compacting)
        uv_idle_start(&lp->idle, on_idle);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    struct local_proposer *lp = h->data;
    if (--lp->handles_open == 0 && lp->on_closed)
        lp->on_closed(lp);
}

void local_proposer_close(struct local_proposer *lp, void (*done)(struct local_proposer *lp))
{
    apply_batch(lp);
    lp->closing = true;
    struct proposal *waiting = lp->physical;
    lp->physical = NULL;
    fail_all(waiting, 0); /* recorded and durable; the removal resumes at the next start */
    lp->on_closed = done;
    lp->handles_open = 2;
    uv_close((uv_handle_t *)&lp->check, on_handle_closed);
    uv_close((uv_handle_t *)&lp->idle, on_handle_closed);
}
