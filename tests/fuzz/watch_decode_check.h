/* tests/fuzz/watch_decode_check.h — the client's direct WatchResponse decoder held against
 * protobuf-c's (client/msg.c): shared by the fuzz target and the unit test. */
#ifndef CAIRN_TESTS_FUZZ_WATCH_DECODE_CHECK_H
#define CAIRN_TESTS_FUZZ_WATCH_DECODE_CHECK_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"

/* Empty bytes have no storage in protobuf-c's messages: the same must hold in both. */
static inline bool wd_same_storage(const Mvccpb__KeyValue *a, const Mvccpb__KeyValue *b)
{
    if (!a || !b)
        return !a == !b;
    return !a->key.data == !b->key.data && !a->value.data == !b->value.data;
}

/* Two messages are the same when they pack to the same bytes (unknown fields included) and
 * their empty bytes fields agree. */
static inline bool wd_same(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a), lb = protobuf_c_message_get_packed_size(b);
    if (la != lb)
        return false;
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    bool same = pa && pb && protobuf_c_message_pack(a, pa) == la &&
                protobuf_c_message_pack(b, pb) == lb && memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    const Etcdserverpb__WatchResponse *x = (const void *)a, *y = (const void *)b;
    for (size_t i = 0; same && i < x->n_events; i++)
        same = wd_same_storage(x->events[i]->kv, y->events[i]->kv) &&
               wd_same_storage(x->events[i]->prev_kv, y->events[i]->prev_kv);
    return same;
}

/* Decodes data with protobuf-c, with the direct decoder, and the way a stream does (direct, else
 * protobuf-c into a block). Returns false when they disagree: the direct decoder took what
 * protobuf-c refuses or decoded it differently, or the stream's result differs from protobuf-c's.
 * *direct tells whether the direct decoder took it. */
static inline bool wd_check(const uint8_t *data, size_t size, bool *direct)
{
    const ProtobufCMessageDescriptor *d = &etcdserverpb__watch_response__descriptor;
    ProtobufCMessage *ref = protobuf_c_message_unpack(d, NULL, size, data);
    ProtobufCMessage *fast = cl_msg_decode_watch_response(size, data);
    ProtobufCMessage *via = cl_stream_msg_unpack(d, size, data);
    bool ok = !fast || (ref && ref->n_unknown_fields == 0 && wd_same(fast, ref));
    ok = ok && !via == !ref && (!via || wd_same(via, ref));
    if (direct)
        *direct = fast != NULL;
    cl_stream_msg_free(fast);
    cl_stream_msg_free(via);
    if (ref)
        protobuf_c_message_free_unpacked(ref, NULL);
    return ok;
}

#endif
