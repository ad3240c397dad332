/* client/msg.c — stream messages decoded into one block each, with a direct decoder for the
 * message a watching client receives most: the watch response. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"

/* ---- messages in one block each
 *
 * protobuf-c's unpacker allocates every submessage, array and bytes field on its own; a watch
 * response of a thousand small events costs thousands of malloc and free calls, which were half
 * of a watching client's time. A stream message is therefore unpacked into one block sized from
 * its wire length: allocations are carved from it in order, those that do not fit come from
 * malloc, and freeing the message frees the block. protobuf-c allocates the message struct
 * first, so the block is found from the message's address. */

struct msg_block {
    size_t used, cap;   /* bytes of data carved out, and available */
    size_t outside;     /* allocations that did not fit and came from malloc */
    max_align_t data[]; /* the message struct first, then its parts */
};

#define BLOCK_OF(m) ((struct msg_block *)((char *)(m)-offsetof(struct msg_block, data)))

static void *block_alloc(void *data, size_t size)
{
    struct msg_block *b = data;
    size_t at = (b->used + 7) & ~(size_t)7; /* protobuf-c's fields are at most 8 bytes wide */
    if (size <= b->cap && at <= b->cap - size) {
        b->used = at + size;
        return (char *)b->data + at;
    }
    void *p = malloc(size);
    if (p)
        b->outside++;
    return p;
}

static void block_free(void *data, void *p)
{
    struct msg_block *b = data;
    char *start = (char *)b->data;
    if ((char *)p < start || (char *)p >= start + b->cap) {
        free(p);
        b->outside--;
    }
}

ProtobufCMessage *cl_stream_msg_unpack(const ProtobufCMessageDescriptor *d, size_t len,
                                       const uint8_t *data)
{
    if (d == &etcdserverpb__watch_response__descriptor) {
        ProtobufCMessage *m = cl_msg_decode_watch_response(len, data);
        if (m)
            return m;
    }
    /* in memory a small event takes about four times its wire size (structs, pointers, copies) */
    size_t cap = d->sizeof_message + 256 + (len <= SIZE_MAX / 8 ? 4 * len : len);
    struct msg_block *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->used = b->outside = 0;
    b->cap = cap;
    ProtobufCAllocator a = {.alloc = block_alloc, .free = block_free, .allocator_data = b};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, len, data);
    if (m && (void *)m != (void *)b->data) {
        /* not the first allocation: this protobuf-c lays messages out differently */
        protobuf_c_message_free_unpacked(m, &a);
        m = NULL;
    }
    if (!m)
        free(b);
    return m;
}

void cl_stream_msg_free(ProtobufCMessage *m)
{
    if (!m)
        return;
    struct msg_block *b = BLOCK_OF(m);
    if (b->outside) { /* walk the message only to find what is outside the block */
        ProtobufCAllocator a = {.alloc = block_alloc, .free = block_free, .allocator_data = b};
        protobuf_c_message_free_unpacked(m, &a);
    }
    free(b);
}

/* ---- watch responses, decoded directly
 *
 * protobuf-c's unpacker is driven by the descriptors: two passes over the bytes, a field lookup
 * and a type dispatch per field, an init call per submessage. For a watching client that was a
 * quarter of its time. A watch response as servers write it — known fields only, each singular
 * field at most once, in any order — is decoded here straight into the same structs, in one block
 * sized from a first pass. Anything else (an unknown field, a singular field twice, which
 * protobuf-c merges or overwrites, an unexpected wire type, a tag or length that is not plain, a
 * cancel reason: rare, and a string's rules are protobuf-c's to apply) is left to protobuf-c, so
 * that whatever either path decodes is the message protobuf-c would have made, and what it refuses
 * is refused. */

enum { WT_VARINT = 0, WT_LEN = 2 };

struct rd {
    const uint8_t *p, *end;
};

/* A varint of at most 10 bytes whose value fits in 64 bits. */
static bool rd_varint(struct rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (unsigned i = 0; i < 10 && r->p < r->end; i++) {
        uint8_t b = *r->p++;
        if (i == 9 && b > 1)
            return false;
        x |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* A one-byte tag: its field number and wire type. */
static bool rd_tag(struct rd *r, unsigned *field, unsigned *wire)
{
    if (r->p == r->end || (*r->p & 0x80))
        return false;
    *field = *r->p >> 3;
    *wire = *r->p & 7;
    r->p++;
    return *field != 0;
}

/* A length-delimited field's contents (a length of at most 5 bytes, as protobuf-c reads it). */
static bool rd_len(struct rd *r, struct rd *out)
{
    struct rd h = {r->p, r->end - r->p > 5 ? r->p + 5 : r->end};
    uint64_t n;
    if (!rd_varint(&h, &n) || n > INT_MAX || n > (uint64_t)(r->end - h.p))
        return false;
    *out = (struct rd){h.p, h.p + n};
    r->p = h.p + n;
    return true;
}

/* A singular field seen twice (bit per field number in *seen). */
static bool once(uint32_t *seen, unsigned field)
{
    uint32_t bit = 1u << field;
    if (*seen & bit)
        return false;
    *seen |= bit;
    return true;
}

/* The block being filled: structs at 8-byte boundaries, bytes anywhere. */
struct carver {
    struct msg_block *b;
};

static void *carve(struct carver *c, size_t size, size_t align)
{
    struct msg_block *b = c->b;
    size_t at = (b->used + align - 1) & ~(align - 1);
    if (size > b->cap || at > b->cap - size)
        return NULL;
    b->used = at + size;
    return (char *)b->data + at;
}

static bool copy_bytes(struct carver *c, const struct rd *f, ProtobufCBinaryData *out)
{
    size_t n = (size_t)(f->end - f->p);
    out->len = n;
    out->data = NULL; /* protobuf-c leaves empty bytes without storage */
    if (n && !(out->data = carve(c, n, 1)))
        return false;
    if (n)
        memcpy(out->data, f->p, n);
    return true;
}

static bool decode_kv(struct carver *c, struct rd r, Mvccpb__KeyValue **out)
{
    Mvccpb__KeyValue *kv = carve(c, sizeof *kv, 8);
    if (!kv)
        return false;
    *kv = (Mvccpb__KeyValue)MVCCPB__KEY_VALUE__INIT;
    uint32_t seen = 0;
    unsigned field, wire;
    while (r.p < r.end) {
        if (!rd_tag(&r, &field, &wire) || !once(&seen, field))
            return false;
        uint64_t v;
        struct rd f;
        if (field == 1 || field == 5) {
            if (wire != WT_LEN || !rd_len(&r, &f) ||
                !copy_bytes(c, &f, field == 1 ? &kv->key : &kv->value))
                return false;
            continue;
        }
        if (wire != WT_VARINT || !rd_varint(&r, &v))
            return false;
        switch (field) {
        case 2:
            kv->create_revision = (int64_t)v;
            break;
        case 3:
            kv->mod_revision = (int64_t)v;
            break;
        case 4:
            kv->version = (int64_t)v;
            break;
        case 6:
            kv->lease = (int64_t)v;
            break;
        default:
            return false;
        }
    }
    *out = kv;
    return true;
}

static bool decode_event(struct carver *c, struct rd r, Mvccpb__Event **out)
{
    Mvccpb__Event *ev = carve(c, sizeof *ev, 8);
    if (!ev)
        return false;
    *ev = (Mvccpb__Event)MVCCPB__EVENT__INIT;
    uint32_t seen = 0;
    unsigned field, wire;
    while (r.p < r.end) {
        if (!rd_tag(&r, &field, &wire) || !once(&seen, field))
            return false;
        struct rd f;
        uint64_t v;
        if (field == 1) {
            if (wire != WT_VARINT || !rd_varint(&r, &v))
                return false;
            ev->type = (Mvccpb__Event__EventType)(int32_t)(uint32_t)v; /* as protobuf-c's int32 */
        } else if (field == 2 || field == 3) {
            if (wire != WT_LEN || !rd_len(&r, &f) ||
                !decode_kv(c, f, field == 2 ? &ev->kv : &ev->prev_kv))
                return false;
        } else {
            return false;
        }
    }
    *out = ev;
    return true;
}

static bool decode_header(struct carver *c, struct rd r, Etcdserverpb__ResponseHeader **out)
{
    Etcdserverpb__ResponseHeader *h = carve(c, sizeof *h, 8);
    if (!h)
        return false;
    *h = (Etcdserverpb__ResponseHeader)ETCDSERVERPB__RESPONSE_HEADER__INIT;
    uint32_t seen = 0;
    unsigned field, wire;
    while (r.p < r.end) {
        uint64_t v;
        if (!rd_tag(&r, &field, &wire) || !once(&seen, field) || wire != WT_VARINT ||
            !rd_varint(&r, &v))
            return false;
        switch (field) {
        case 1:
            h->cluster_id = v;
            break;
        case 2:
            h->member_id = v;
            break;
        case 3:
            h->revision = (int64_t)v;
            break;
        case 4:
            h->raft_term = v;
            break;
        default:
            return false;
        }
    }
    *out = h;
    return true;
}

/* The first pass: the top level's fields are plain and known; counts the events. */
static bool scan_top(struct rd r, size_t *n_events)
{
    uint32_t seen = 0;
    unsigned field, wire;
    *n_events = 0;
    while (r.p < r.end) {
        struct rd f;
        uint64_t v;
        if (!rd_tag(&r, &field, &wire))
            return false;
        if (field == 11) {
            if (wire != WT_LEN || !rd_len(&r, &f))
                return false;
            (*n_events)++;
            continue;
        }
        if (!once(&seen, field))
            return false;
        switch (field) {
        case 1:
            if (wire != WT_LEN || !rd_len(&r, &f))
                return false;
            break;
        case 2:
        case 3:
        case 4:
        case 5:
        case 7:
            if (wire != WT_VARINT || !rd_varint(&r, &v))
                return false;
            break;
        default: /* 6, the cancel reason, included */
            return false;
        }
    }
    return true;
}

ProtobufCMessage *cl_msg_decode_watch_response(size_t len, const uint8_t *data)
{
    struct rd top = {data, data + len};
    size_t n;
    if (!scan_top(top, &n))
        return NULL;
    /* every struct with its alignment, the events' array, and at most len bytes of contents */
    size_t structs =
        sizeof(Etcdserverpb__WatchResponse) + sizeof(Etcdserverpb__ResponseHeader) +
        n * (sizeof(Mvccpb__Event *) + sizeof(Mvccpb__Event) + 2 * sizeof(Mvccpb__KeyValue));
    size_t cap = structs + 8 * (3 + 4 * n) + len;
    struct msg_block *b = malloc(sizeof *b + cap);
    if (!b)
        return NULL;
    b->used = b->outside = 0;
    b->cap = cap;
    struct carver c = {b};
    Etcdserverpb__WatchResponse *m = carve(&c, sizeof *m, 8);
    *m = (Etcdserverpb__WatchResponse)ETCDSERVERPB__WATCH_RESPONSE__INIT;
    if (n && !(m->events = carve(&c, n * sizeof *m->events, 8)))
        goto fail;
    unsigned field = 0, wire = 0;
    struct rd r = top;
    while (r.p < r.end) {
        struct rd f = {NULL, NULL};
        uint64_t v = 0;
        rd_tag(&r, &field, &wire); /* checked by scan_top */
        if (wire == WT_LEN)
            rd_len(&r, &f);
        else
            rd_varint(&r, &v);
        switch (field) {
        case 1:
            if (!decode_header(&c, f, &m->header))
                goto fail;
            break;
        case 2:
            m->watch_id = (int64_t)v;
            break;
        case 3:
            m->created = v != 0;
            break;
        case 4:
            m->canceled = v != 0;
            break;
        case 5:
            m->compact_revision = (int64_t)v;
            break;
        case 7:
            m->fragment = v != 0;
            break;
        case 11:
            if (!decode_event(&c, f, &m->events[m->n_events]))
                goto fail;
            m->n_events++;
            break;
        }
    }
    return &m->base;
fail:
    free(b);
    return NULL;
}
