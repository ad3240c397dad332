/* client/bench/range.c — the range workload: the same RangeRequest for KEY (and END) every
 * time, linearizable unless --consistency s. */
#include <stdlib.h>
#include <string.h>

#include "client/bench/workload.h"

struct range_state {
    Etcdserverpb__RangeRequest req; /* the same for every issue */
};

static int range_client_new(const struct bench_config *cfg, void *shared, uint64_t seed,
                            void **state)
{
    (void)shared;
    (void)seed;
    struct range_state *s = malloc(sizeof *s);
    if (!s)
        return -1;
    s->req = (Etcdserverpb__RangeRequest)ETCDSERVERPB__RANGE_REQUEST__INIT;
    s->req.key = (ProtobufCBinaryData){strlen(cfg->range_key), (uint8_t *)cfg->range_key};
    if (cfg->range_end)
        s->req.range_end = (ProtobufCBinaryData){strlen(cfg->range_end), (uint8_t *)cfg->range_end};
    s->req.serializable = cfg->serializable;
    *state = s;
    return 0;
}

static void range_client_free(void *state)
{
    free(state);
}

static const ProtobufCMessage *range_make(void *state, uint64_t i)
{
    (void)i;
    return &((struct range_state *)state)->req.base;
}

static int range_shared_new(const struct bench_config *cfg, uint64_t seed, void **shared)
{
    (void)cfg;
    (void)seed;
    *shared = NULL;
    return 0;
}

static void range_shared_free(void *shared)
{
    (void)shared;
}

const struct bench_workload bench_workload_range = {
    .name = "range",
    .method = &cl_method_range,
    .shared_new = range_shared_new,
    .shared_free = range_shared_free,
    .client_new = range_client_new,
    .client_free = range_client_free,
    .make = range_make,
};
