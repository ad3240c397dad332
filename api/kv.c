/* api/kv.c — etcd's KV service: Range, Put, DeleteRange, Txn, Compact.
 *
 * Reads (Range, and Txns that cannot write) are answered from the store in a read transaction. With
 * a single member every read is linearizable: the store's committed state is the latest state.
 * Writes become an InternalRequest handed to the proposer; the reply is sent when it is applied and
 * durable. Errors carry etcd's gRPC code and message. */
#include <string.h>

#include "api/service.h"
#include "raft/etcd_conv.h"

/* ---------------------------------------------------------------------------------------------- */
/* Writes */

/* Answers a write once the proposer applied it. */
static void on_applied(struct proposal *p, int err)
{
    struct api_ctx *c = p->data;
    if (!err)
        err = p->res.err;
    /* the store's own quota check refused it at apply (writes that arrived together fitted one by
     * one): raise the alarm as the check before proposing would have. A refusal because the alarm
     * is raised already changes nothing. */
    if (err == CAIRN_E_NO_SPACE && c->quota_cost)
        api_quota_check(c->srv, c->quota_cost);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    const ProtobufCMessage *msg = NULL;
    Etcdserverpb__ResponseHeader *h = NULL;
    if (p->res.put)
        msg = &p->res.put->base, h = p->res.put->header;
    else if (p->res.delete_range)
        msg = &p->res.delete_range->base, h = p->res.delete_range->header;
    else if (p->res.txn)
        msg = &p->res.txn->base, h = p->res.txn->header;
    else if (p->res.compaction)
        msg = &p->res.compaction->base, h = p->res.compaction->header;
    if (!msg) {
        api_reply_err(c, CAIRN_E_INTERNAL);
        return;
    }
    api_fill_header(c->srv, h);
    api_reply(c, msg);
}

static void propose_or_fail(struct api_ctx *c)
{
    int err = api_propose(c, on_applied);
    if (err)
        api_reply_err(c, err);
}

static void on_put(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__PutRequest *r = api_decode(c, &etcdserverpb__put_request__descriptor, msg, len);
    if (!r)
        return;
    /* etcd's quota check, then its checkPutRequest, before anything is proposed */
    struct store_put_req pr;
    conv_put_req(r, &pr);
    c->quota_cost = store_put_cost(&pr);
    if (!api_quota_check(c->srv, c->quota_cost)) {
        api_reply_err(c, CAIRN_E_NO_SPACE);
        return;
    }
    if (pr.key.len == 0) {
        api_reply_err(c, CAIRN_E_EMPTY_KEY);
        return;
    }
    if (pr.ignore_value && pr.value.len) {
        api_reply_err(c, CAIRN_E_VALUE_PROVIDED);
        return;
    }
    if (pr.ignore_lease && pr.lease) {
        api_reply_err(c, CAIRN_E_LEASE_PROVIDED);
        return;
    }
    Cairn__InternalRequest init = CAIRN__INTERNAL_REQUEST__INIT;
    c->ireq = init;
    c->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_PUT;
    c->ireq.put = r;
    propose_or_fail(c);
}

static void on_delete_range(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__DeleteRangeRequest *r =
        api_decode(c, &etcdserverpb__delete_range_request__descriptor, msg, len);
    if (!r)
        return;
    if (r->key.len == 0) {
        api_reply_err(c, CAIRN_E_EMPTY_KEY);
        return;
    }
    Cairn__InternalRequest init = CAIRN__INTERNAL_REQUEST__INIT;
    c->ireq = init;
    c->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_DELETE_RANGE;
    c->ireq.delete_range = r;
    propose_or_fail(c);
}

static void on_compact(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__CompactionRequest *r =
        api_decode(c, &etcdserverpb__compaction_request__descriptor, msg, len);
    if (!r)
        return;
    Cairn__InternalRequest init = CAIRN__INTERNAL_REQUEST__INIT;
    c->ireq = init;
    c->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_COMPACTION;
    c->ireq.compaction = r;
    propose_or_fail(c);
}

/* ---------------------------------------------------------------------------------------------- */
/* Reads */

static void do_range(struct api_ctx *c)
{
    Etcdserverpb__RangeRequest *r = c->req;
    struct store_range_req req;
    struct store_range_res res;
    conv_range_req(r, &req);
    store_tx *tx;
    int err = store_tx_begin_view(c->srv->st, &tx);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    err = store_range(tx, &req, &c->arena, &res);
    Etcdserverpb__RangeResponse *out = err ? NULL : conv_range_res(&res, &c->arena);
    if (!err && !out)
        err = CAIRN_E_NOMEM;
    if (err) {
        store_tx_end(tx);
        api_reply_err(c, err);
        return;
    }
    api_fill_header(c->srv, out->header);
    api_reply(c, &out->base); /* packs while the read transaction still holds the bytes */
    store_tx_end(tx);
}

static void on_range(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__RangeRequest *r =
        api_decode(c, &etcdserverpb__range_request__descriptor, msg, len);
    if (!r)
        return;
    c->req = r;
    if (!r->serializable && c->srv->prop->is_learner(c->srv->prop)) {
        api_reply_err(c, CAIRN_E_LEARNER_NOT_SUPPORTED);
        return;
    }
    if (r->serializable)
        do_range(c);
    else
        api_linearizable(c, do_range);
}

/* etcd's isTxnSerializable: every top-level op of both branches is a serializable range. */
static bool txn_serializable(const Etcdserverpb__TxnRequest *r)
{
    for (size_t i = 0; i < r->n_success + r->n_failure; i++) {
        const Etcdserverpb__RequestOp *op =
            i < r->n_success ? r->success[i] : r->failure[i - r->n_success];
        if (op->request_case != ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE ||
            !op->request_range->serializable)
            return false;
    }
    return true;
}

/* A txn without puts or deletes, from the read view, without the log (as etcd answers it). */
static void do_read_txn(struct api_ctx *c)
{
    store_tx *tx;
    struct store_txn_res res;
    int err;
    if ((err = store_tx_begin_view(c->srv->st, &tx))) {
        api_reply_err(c, err);
        return;
    }
    err = store_txn(tx, &c->txn_req, &c->arena, &res);
    Etcdserverpb__TxnResponse *out = err ? NULL : conv_txn_res(&res, &c->arena);
    if (!err && !out)
        err = CAIRN_E_NOMEM;
    if (err) {
        store_tx_end(tx);
        api_reply_err(c, err);
        return;
    }
    api_fill_header(c->srv, out->header);
    api_reply(c, &out->base);
    store_tx_end(tx);
}

static void on_txn(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    if (conv_txn_depth_check(msg, len, CONV_MAX_TXN_DEPTH)) {
        api_reply_err(c, CAIRN_E_INVALID_ARGUMENT);
        return;
    }
    Etcdserverpb__TxnRequest *r = api_decode(c, &etcdserverpb__txn_request__descriptor, msg, len);
    if (!r)
        return;
    struct store_txn_req req;
    int err = conv_txn_req(r, &c->arena, &req);
    if (!err && !api_quota_check(c->srv, (c->quota_cost = store_txn_cost(&req))))
        err = CAIRN_E_NO_SPACE;
    if (!err)
        err = store_txn_check(&req, c->srv->cfg.max_txn_ops);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    if (!store_txn_is_read_only(&req)) {
        Cairn__InternalRequest init = CAIRN__INTERNAL_REQUEST__INIT;
        c->ireq = init;
        c->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_TXN;
        c->ireq.txn = r;
        propose_or_fail(c);
        return;
    }
    c->txn_req = req;
    if (txn_serializable(r))
        do_read_txn(c);
    else
        api_linearizable(c, do_read_txn);
}

void api_kv_register(struct api_server *s)
{
    api_add_method(s, "/etcdserverpb.KV/Range", false, on_range);
    api_add_method(s, "/etcdserverpb.KV/Put", false, on_put);
    api_add_method(s, "/etcdserverpb.KV/DeleteRange", false, on_delete_range);
    api_add_method(s, "/etcdserverpb.KV/Txn", false, on_txn);
    api_add_method(s, "/etcdserverpb.KV/Compact", false, on_compact);
}
