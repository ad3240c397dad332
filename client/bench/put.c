/* client/bench/put.c — the put workload: one PutRequest per issue, key number i modulo the key
 * space with --sequential-keys, else uniformly random in it; the same random value in all. */
#include <stdlib.h>

#include "client/bench/keys.h"
#include "client/bench/workload.h"

struct put_state {
    Etcdserverpb__PutRequest req; /* rebuilt by each make() */
    const struct bench_config *cfg;
    struct bench_rng rng; /* picks random keys */
    uint8_t key[];        /* key_size bytes */
};

static int put_client_new(const struct bench_config *cfg, void *shared, uint64_t seed, void **state)
{
    const struct bench_value *v = shared;
    struct put_state *s = malloc(sizeof *s + cfg->key_size);
    if (!s)
        return -1;
    s->req = (Etcdserverpb__PutRequest)ETCDSERVERPB__PUT_REQUEST__INIT;
    s->req.key = (ProtobufCBinaryData){cfg->key_size, s->key};
    s->req.value = (ProtobufCBinaryData){v->len, v->bytes};
    s->cfg = cfg;
    bench_rng_seed(&s->rng, seed);
    *state = s;
    return 0;
}

static void put_client_free(void *state)
{
    free(state);
}

static const ProtobufCMessage *put_make(void *state, uint64_t i)
{
    struct put_state *s = state;
    uint64_t space = s->cfg->key_space_size;
    uint64_t n = s->cfg->sequential_keys ? i % space : bench_rng_below(&s->rng, space);
    bench_key_write(s->key, s->cfg->key_size, n);
    return &s->req.base;
}

const struct bench_workload bench_workload_put = {
    .name = "put",
    .method = &cl_method_put,
    .shared_new = bench_value_new,
    .shared_free = bench_value_free,
    .client_new = put_client_new,
    .client_free = put_client_free,
    .make = put_make,
};
