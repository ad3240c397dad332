/* raft/etcd_conv.c — etcd wire messages ↔ store requests and results. */
#include "raft/etcd_conv.h"

#include <string.h>

static store_bytes bytes_of(ProtobufCBinaryData b)
{
    store_bytes s = {b.data, b.len};
    return s;
}

static ProtobufCBinaryData pb_bytes(store_bytes b)
{
    ProtobufCBinaryData p = {b.len, (uint8_t *)b.data};
    return p;
}

#define ALLOC(a, T) ((T *)arena_alloc((a), sizeof(T)))

/* ---------------------------------------------------------------------------------------------- */
/* Requests */

void conv_range_req(const Etcdserverpb__RangeRequest *in, struct store_range_req *out)
{
    memset(out, 0, sizeof *out);
    out->key = bytes_of(in->key);
    out->range_end = bytes_of(in->range_end);
    out->limit = in->limit;
    out->revision = in->revision;
    out->sort_order = (int)in->sort_order;
    out->sort_target = (int)in->sort_target;
    out->keys_only = in->keys_only;
    out->count_only = in->count_only;
    out->min_mod_revision = in->min_mod_revision;
    out->max_mod_revision = in->max_mod_revision;
    out->min_create_revision = in->min_create_revision;
    out->max_create_revision = in->max_create_revision;
}

void conv_put_req(const Etcdserverpb__PutRequest *in, struct store_put_req *out)
{
    memset(out, 0, sizeof *out);
    out->key = bytes_of(in->key);
    out->value = bytes_of(in->value);
    out->lease = in->lease;
    out->prev_kv = in->prev_kv;
    out->ignore_value = in->ignore_value;
    out->ignore_lease = in->ignore_lease;
}

void conv_delete_req(const Etcdserverpb__DeleteRangeRequest *in, struct store_delete_req *out)
{
    memset(out, 0, sizeof *out);
    out->key = bytes_of(in->key);
    out->range_end = bytes_of(in->range_end);
    out->prev_kv = in->prev_kv;
}

/* etcd reads the compared number from the union member that matches the target; any other member
 * (or none) compares as 0 / empty (etcdserver/apply.go compareKV). */
static void conv_compare(const Etcdserverpb__Compare *in, struct store_compare *out)
{
    memset(out, 0, sizeof *out);
    out->result = (int)in->result;
    out->target = (int)in->target;
    out->key = bytes_of(in->key);
    out->range_end = bytes_of(in->range_end);
    switch (in->target) {
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION)
            out->number = in->version;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION)
            out->number = in->create_revision;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION)
            out->number = in->mod_revision;
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE)
            out->value = bytes_of(in->value);
        break;
    case ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE:
        if (in->target_union_case == ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE)
            out->number = in->lease;
        break;
    default:
        break;
    }
}

static int conv_ops(Etcdserverpb__RequestOp *const *in, size_t n, struct arena *a,
                    struct store_op **out)
{
    *out = NULL;
    if (!n)
        return 0;
    struct store_op *ops = arena_alloc(a, n * sizeof *ops);
    if (!ops)
        return CAIRN_E_NOMEM;
    *out = ops;
    for (size_t i = 0; i < n; i++) {
        const Etcdserverpb__RequestOp *op = in[i];
        memset(&ops[i], 0, sizeof ops[i]);
        switch (op->request_case) {
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE:
            ops[i].type = STORE_OP_RANGE;
            conv_range_req(op->request_range, &ops[i].u.range);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT:
            ops[i].type = STORE_OP_PUT;
            conv_put_req(op->request_put, &ops[i].u.put);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE:
            ops[i].type = STORE_OP_DELETE;
            conv_delete_req(op->request_delete_range, &ops[i].u.del);
            break;
        case ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_TXN: {
            ops[i].type = STORE_OP_TXN;
            struct store_txn_req *t = ALLOC(a, struct store_txn_req);
            if (!t)
                return CAIRN_E_NOMEM;
            int err = conv_txn_req(op->request_txn, a, t);
            if (err)
                return err;
            ops[i].u.txn = t;
            break;
        }
        default:
            ops[i].type = STORE_OP_NONE;
            break;
        }
    }
    return 0;
}

int conv_txn_req(const Etcdserverpb__TxnRequest *in, struct arena *a, struct store_txn_req *out)
{
    memset(out, 0, sizeof *out);
    if (in->n_compare) {
        out->compares = arena_alloc(a, in->n_compare * sizeof *out->compares);
        if (!out->compares)
            return CAIRN_E_NOMEM;
        for (size_t i = 0; i < in->n_compare; i++)
            conv_compare(in->compare[i], &out->compares[i]);
        out->n_compares = in->n_compare;
    }
    int err = conv_ops(in->success, in->n_success, a, &out->success);
    if (!err)
        err = conv_ops(in->failure, in->n_failure, a, &out->failure);
    out->n_success = in->n_success;
    out->n_failure = in->n_failure;
    return err;
}

/* ---------------------------------------------------------------------------------------------- */
/* Nesting check on the wire: TxnRequest.success = 2, .failure = 3 (RequestOp);
 * RequestOp.request_txn = 4 (TxnRequest). Anything malformed is left for the decoder to reject. */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return 0;
    }
    return -1;
}

/* Walks one message; `nested` is the field number holding the next level (or 0). */
static int depth_walk(const uint8_t *p, const uint8_t *end, int depth, int max_depth, bool is_txn)
{
    if (depth > max_depth)
        return CAIRN_E_INVALID_ARGUMENT;
    while (p < end) {
        uint64_t tag, len;
        if (read_varint(&p, end, &tag))
            return 0;
        unsigned field = (unsigned)(tag >> 3), wire = (unsigned)(tag & 7);
        switch (wire) {
        case 0:
            if (read_varint(&p, end, &len))
                return 0;
            break;
        case 1:
            p += 8;
            break;
        case 5:
            p += 4;
            break;
        case 2:
            if (read_varint(&p, end, &len) || len > (uint64_t)(end - p))
                return 0;
            if (is_txn && (field == 2 || field == 3)) {
                int err = depth_walk(p, p + len, depth, max_depth, false);
                if (err)
                    return err;
            } else if (!is_txn && field == 4) {
                int err = depth_walk(p, p + len, depth + 1, max_depth, true);
                if (err)
                    return err;
            }
            p += len;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

int conv_txn_depth_check(const uint8_t *buf, size_t len, int max_depth)
{
    return depth_walk(buf, buf + len, 0, max_depth, true);
}

/* ---------------------------------------------------------------------------------------------- */
/* Responses */

Etcdserverpb__ResponseHeader *conv_header(int64_t revision, struct arena *a)
{
    Etcdserverpb__ResponseHeader *h = ALLOC(a, Etcdserverpb__ResponseHeader);
    if (!h)
        return NULL;
    Etcdserverpb__ResponseHeader init = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    *h = init;
    h->revision = revision;
    return h;
}

Mvccpb__KeyValue *conv_kv(const struct store_kv *kv, struct arena *a)
{
    Mvccpb__KeyValue *k = ALLOC(a, Mvccpb__KeyValue);
    if (!k)
        return NULL;
    Mvccpb__KeyValue init = MVCCPB__KEY_VALUE__INIT;
    *k = init;
    k->key = pb_bytes(kv->key);
    k->value = pb_bytes(kv->value);
    k->create_revision = kv->create_revision;
    k->mod_revision = kv->mod_revision;
    k->version = kv->version;
    k->lease = kv->lease;
    return k;
}

static Mvccpb__KeyValue **conv_kvs(const struct store_kv *kvs, size_t n, struct arena *a)
{
    Mvccpb__KeyValue **out = arena_alloc(a, (n ? n : 1) * sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++)
        if (!(out[i] = conv_kv(&kvs[i], a)))
            return NULL;
    return out;
}

Etcdserverpb__RangeResponse *conv_range_res(const struct store_range_res *r, struct arena *a)
{
    Etcdserverpb__RangeResponse *o = ALLOC(a, Etcdserverpb__RangeResponse);
    if (!o)
        return NULL;
    Etcdserverpb__RangeResponse init = ETCDSERVERPB__RANGE_RESPONSE__INIT;
    *o = init;
    if (!(o->header = conv_header(r->revision, a)) || !(o->kvs = conv_kvs(r->kvs, r->n_kvs, a)))
        return NULL;
    o->n_kvs = r->n_kvs;
    o->count = r->count;
    o->more = r->more;
    return o;
}

Etcdserverpb__PutResponse *conv_put_res(const struct store_put_res *r, struct arena *a)
{
    Etcdserverpb__PutResponse *o = ALLOC(a, Etcdserverpb__PutResponse);
    if (!o)
        return NULL;
    Etcdserverpb__PutResponse init = ETCDSERVERPB__PUT_RESPONSE__INIT;
    *o = init;
    if (!(o->header = conv_header(r->revision, a)))
        return NULL;
    if (r->prev_kv && !(o->prev_kv = conv_kv(r->prev_kv, a)))
        return NULL;
    return o;
}

Etcdserverpb__DeleteRangeResponse *conv_delete_res(const struct store_delete_res *r,
                                                   struct arena *a)
{
    Etcdserverpb__DeleteRangeResponse *o = ALLOC(a, Etcdserverpb__DeleteRangeResponse);
    if (!o)
        return NULL;
    Etcdserverpb__DeleteRangeResponse init = ETCDSERVERPB__DELETE_RANGE_RESPONSE__INIT;
    *o = init;
    if (!(o->header = conv_header(r->revision, a)))
        return NULL;
    o->deleted = r->deleted;
    if (r->n_prev_kvs) {
        if (!(o->prev_kvs = conv_kvs(r->prev_kvs, r->n_prev_kvs, a)))
            return NULL;
        o->n_prev_kvs = r->n_prev_kvs;
    }
    return o;
}

Etcdserverpb__TxnResponse *conv_txn_res(const struct store_txn_res *r, struct arena *a)
{
    Etcdserverpb__TxnResponse *o = ALLOC(a, Etcdserverpb__TxnResponse);
    if (!o)
        return NULL;
    Etcdserverpb__TxnResponse init = ETCDSERVERPB__TXN_RESPONSE__INIT;
    *o = init;
    /* nested txns carry an empty header with revision 0, as etcd's newTxnResp leaves them */
    if (!(o->header = conv_header(r->revision, a)))
        return NULL;
    o->succeeded = r->succeeded;
    o->n_responses = r->n_responses;
    o->responses = arena_alloc(a, (r->n_responses ? r->n_responses : 1) * sizeof *o->responses);
    if (!o->responses)
        return NULL;
    for (size_t i = 0; i < r->n_responses; i++) {
        const struct store_op_res *in = &r->responses[i];
        Etcdserverpb__ResponseOp *op = ALLOC(a, Etcdserverpb__ResponseOp);
        if (!op)
            return NULL;
        Etcdserverpb__ResponseOp opinit = ETCDSERVERPB__RESPONSE_OP__INIT;
        *op = opinit;
        switch (in->type) {
        case STORE_OP_RANGE:
            op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE;
            op->response_range = conv_range_res(&in->u.range, a);
            if (!op->response_range)
                return NULL;
            break;
        case STORE_OP_PUT:
            op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT;
            if (!(op->response_put = conv_put_res(&in->u.put, a)))
                return NULL;
            break;
        case STORE_OP_DELETE:
            op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE;
            if (!(op->response_delete_range = conv_delete_res(&in->u.del, a)))
                return NULL;
            break;
        case STORE_OP_TXN:
            op->response_case = ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_TXN;
            if (!(op->response_txn = conv_txn_res(in->u.txn, a)))
                return NULL;
            break;
        default:
            break;
        }
        o->responses[i] = op;
    }
    return o;
}
