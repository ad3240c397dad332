/* tests/fuzz/fuzz_request.c — fuzz target for decoding client requests as the KV service does.
 *
 * The first byte picks the message type; the rest is the gRPC message body a client sent. The path
 * is the server's: the txn nesting check on the raw bytes, protobuf decoding into an arena,
 * conversion to store requests, and etcd's txn request checks. Nothing may crash, read out of
 * bounds or recurse without bound. */
#include <stdint.h>
#include <stdlib.h>

#include "raft/etcd_conv.h"

static void *pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}
static void pb_free(void *data, void *p)
{
    (void)data;
    (void)p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct arena a = ARENA_INIT;
    ProtobufCAllocator alloc = {pb_alloc, pb_free, &a};
    const uint8_t *msg = data + 1;
    size_t len = size - 1;
    switch (data[0] % 4) {
    case 0: {
        if (conv_txn_depth_check(msg, len, CONV_MAX_TXN_DEPTH))
            break;
        Etcdserverpb__TxnRequest *r = etcdserverpb__txn_request__unpack(&alloc, len, msg);
        struct store_txn_req req;
        if (r && conv_txn_req(r, &a, &req) == 0) {
            store_txn_check(&req, 128);
            store_txn_is_read_only(&req);
        }
        break;
    }
    case 1: {
        Etcdserverpb__RangeRequest *r = etcdserverpb__range_request__unpack(&alloc, len, msg);
        struct store_range_req req;
        if (r)
            conv_range_req(r, &req);
        break;
    }
    case 2: {
        Etcdserverpb__PutRequest *r = etcdserverpb__put_request__unpack(&alloc, len, msg);
        struct store_put_req req;
        if (r) {
            conv_put_req(r, &req);
            /* and back: a response built from it packs */
            struct store_put_res res = {.revision = 2};
            Etcdserverpb__PutResponse *o = conv_put_res(&res, &a);
            if (!o)
                abort();
            uint8_t *buf = arena_alloc(&a, etcdserverpb__put_response__get_packed_size(o));
            etcdserverpb__put_response__pack(o, buf);
        }
        break;
    }
    default: {
        Etcdserverpb__DeleteRangeRequest *r =
            etcdserverpb__delete_range_request__unpack(&alloc, len, msg);
        struct store_delete_req req;
        if (r)
            conv_delete_req(r, &req);
        break;
    }
    }
    arena_free(&a);
    return 0;
}
