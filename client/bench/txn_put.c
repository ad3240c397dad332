/* client/bench/txn_put.c — the txn-put workload: a TxnRequest without compares whose success
 * branch puts --txn-ops keys, numbers i * txn-ops + j (j < txn-ops) modulo the key space, all
 * with the same random value. */
#include <stdlib.h>

#include "client/bench/keys.h"
#include "client/bench/workload.h"

struct txn_state {
    Etcdserverpb__TxnRequest req; /* success = ops */
    const struct bench_config *cfg;
    Etcdserverpb__RequestOp **ops; /* txn_ops pointers into op */
    Etcdserverpb__RequestOp *op;   /* txn_ops request_put ops */
    Etcdserverpb__PutRequest *put; /* txn_ops puts */
    uint8_t *keys;                 /* txn_ops × key_size bytes */
};

static void txn_client_free(void *state)
{
    struct txn_state *s = state;
    if (!s)
        return;
    free(s->ops);
    free(s->op);
    free(s->put);
    free(s->keys);
    free(s);
}

static int txn_client_new(const struct bench_config *cfg, void *shared, uint64_t seed, void **state)
{
    (void)seed;
    const struct bench_value *v = shared;
    size_t n = cfg->txn_ops;
    struct txn_state *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->ops = calloc(n, sizeof *s->ops);
    s->op = calloc(n, sizeof *s->op);
    s->put = calloc(n, sizeof *s->put);
    s->keys = malloc(n * cfg->key_size);
    if (!s->ops || !s->op || !s->put || !s->keys) {
        txn_client_free(s);
        return -1;
    }
    s->cfg = cfg;
    s->req = (Etcdserverpb__TxnRequest)ETCDSERVERPB__TXN_REQUEST__INIT;
    s->req.n_success = n;
    s->req.success = s->ops;
    for (size_t j = 0; j < n; j++) {
        s->put[j] = (Etcdserverpb__PutRequest)ETCDSERVERPB__PUT_REQUEST__INIT;
        s->put[j].key = (ProtobufCBinaryData){cfg->key_size, s->keys + j * cfg->key_size};
        s->put[j].value = (ProtobufCBinaryData){v->len, v->bytes};
        s->op[j] = (Etcdserverpb__RequestOp)ETCDSERVERPB__REQUEST_OP__INIT;
        s->op[j].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        s->op[j].request_put = &s->put[j];
        s->ops[j] = &s->op[j];
    }
    *state = s;
    return 0;
}

static const ProtobufCMessage *txn_make(void *state, uint64_t i)
{
    struct txn_state *s = state;
    uint64_t n = s->cfg->txn_ops, space = s->cfg->key_space_size;
    for (uint64_t j = 0; j < n; j++)
        bench_key_write(s->keys + j * s->cfg->key_size, s->cfg->key_size, (i * n + j) % space);
    return &s->req.base;
}

const struct bench_workload bench_workload_txn_put = {
    .name = "txn-put",
    .method = &cl_method_txn,
    .shared_new = bench_value_new,
    .shared_free = bench_value_free,
    .client_new = txn_client_new,
    .client_free = txn_client_free,
    .make = txn_make,
};
