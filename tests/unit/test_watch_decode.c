/* tests/unit/test_watch_decode.c — the client's direct WatchResponse decoder (client/msg.c).
 *
 * Random watch responses as a server writes them are packed with protobuf-c and decoded both
 * ways: the direct decoder must take every one (but those with a cancel reason, which it leaves
 * to protobuf-c) and produce protobuf-c's message. Hand-made encodings a server does not write —
 * a field twice, unknown fields, long varints, wrong wire types, truncation — must decode as
 * protobuf-c decodes them, or be refused when it refuses them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/fuzz/watch_decode_check.h"

static uint64_t rng = 0x9e3779b97f4a7c15u;

static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* A value of any size: small, large or negative. */
static int64_t any(void)
{
    switch (next() % 4) {
    case 0:
        return 0;
    case 1:
        return (int64_t)(next() % 300);
    case 2:
        return -(int64_t)(next() % 5) - 1;
    default:
        return (int64_t)next();
    }
}

static void fill_bytes(ProtobufCBinaryData *b, uint8_t *buf, size_t max)
{
    b->len = next() % (max + 1);
    for (size_t i = 0; i < b->len; i++)
        buf[i] = (uint8_t)next();
    b->data = b->len ? buf : NULL;
}

struct kv_space {
    Mvccpb__KeyValue kv;
    uint8_t key[40], value[40];
};

static Mvccpb__KeyValue *random_kv(struct kv_space *s)
{
    if (next() % 4 == 0)
        return NULL;
    s->kv = (Mvccpb__KeyValue)MVCCPB__KEY_VALUE__INIT;
    fill_bytes(&s->kv.key, s->key, sizeof s->key);
    fill_bytes(&s->kv.value, s->value, sizeof s->value);
    s->kv.create_revision = any();
    s->kv.mod_revision = any();
    s->kv.version = any();
    s->kv.lease = any();
    return &s->kv;
}

static void test_random_responses(void **state)
{
    (void)state;
    enum { MAX_EVENTS = 20 };
    for (int round = 0; round < 3000; round++) {
        Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        Etcdserverpb__WatchResponse m = ETCDSERVERPB__WATCH_RESPONSE__INIT;
        Mvccpb__Event evs[MAX_EVENTS], *ev_ptrs[MAX_EVENTS];
        struct kv_space kvs[MAX_EVENTS], prevs[MAX_EVENTS];
        h.cluster_id = (uint64_t)any();
        h.member_id = (uint64_t)any();
        h.revision = any();
        h.raft_term = (uint64_t)any();
        m.header = next() % 5 ? &h : NULL;
        m.watch_id = any();
        m.created = next() % 8 == 0;
        m.canceled = next() % 8 == 0;
        m.fragment = next() % 8 == 0;
        m.compact_revision = next() % 8 == 0 ? any() : 0;
        bool reason = next() % 10 == 0;
        if (reason)
            m.cancel_reason = "etcdserver: mvcc: required revision has been compacted";
        m.n_events = next() % (MAX_EVENTS + 1);
        m.events = ev_ptrs;
        for (size_t i = 0; i < m.n_events; i++) {
            evs[i] = (Mvccpb__Event)MVCCPB__EVENT__INIT;
            evs[i].type = next() % 10 ? (Mvccpb__Event__EventType)(next() % 2)
                                      : (Mvccpb__Event__EventType)(int32_t)any();
            evs[i].kv = random_kv(&kvs[i]);
            evs[i].prev_kv = random_kv(&prevs[i]);
            ev_ptrs[i] = &evs[i];
        }
        size_t len = etcdserverpb__watch_response__get_packed_size(&m);
        uint8_t *buf = malloc(len + 1);
        assert_non_null(buf);
        etcdserverpb__watch_response__pack(&m, buf);
        bool direct = false;
        assert_true(wd_check(buf, len, &direct));
        assert_int_equal(direct, !reason);
        free(buf);
    }
}

struct encoding {
    const char *what;
    size_t len;
    const uint8_t *bytes;
    int direct;   /* 1: the direct decoder takes it, 0: it leaves it to protobuf-c */
    int accepted; /* protobuf-c (and so the stream) decodes it */
};

#define ENC(what, direct, accepted, ...)                                                      \
    {                                                                                         \
        what, sizeof((const uint8_t[]){__VA_ARGS__}), (const uint8_t[]){__VA_ARGS__}, direct, \
            accepted                                                                          \
    }

static const struct encoding encodings[] = {
    ENC("watch_id and an event", 1, 1, 0x10, 0x05, 0x5a, 0x04, 0x12, 0x02, 0x0a, 0x00),
    ENC("the header after the events", 1, 1, 0x5a, 0x00, 0x0a, 0x02, 0x18, 0x07),
    ENC("non-minimal varint", 1, 1, 0x10, 0x81, 0x80, 0x00),
    ENC("negative watch_id in ten bytes", 1, 1, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0x01),
    ENC("ten-byte varint overflowing 64 bits", 0, 1, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0xff, 0x7f),
    ENC("eleven-byte varint", 0, 0, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xff, 0x01),
    ENC("empty kv and empty key", 1, 1, 0x5a, 0x04, 0x12, 0x02, 0x0a, 0x00),
    ENC("watch_id twice: the last one counts", 0, 1, 0x10, 0x01, 0x10, 0x02),
    ENC("header twice: merged", 0, 1, 0x0a, 0x02, 0x08, 0x01, 0x0a, 0x02, 0x10, 0x02),
    ENC("kv twice in an event", 0, 1, 0x5a, 0x04, 0x12, 0x00, 0x12, 0x00),
    ENC("unknown top-level field", 0, 1, 0x10, 0x01, 0x48, 0x07),
    ENC("unknown field in a kv", 0, 1, 0x5a, 0x04, 0x12, 0x02, 0x38, 0x01),
    ENC("unknown field number 99", 0, 1, 0x98, 0x06, 0x01),
    ENC("watch_id sent length-delimited", 0, 0, 0x12, 0x01, 0x00),
    ENC("events sent as a varint", 0, 0, 0x58, 0x01),
    ENC("truncated event", 0, 0, 0x5a, 0x05, 0x12, 0x00),
    ENC("truncated varint", 0, 0, 0x10, 0x80),
    ENC("field number 0", 0, 0, 0x00, 0x01),
    ENC("a length in six bytes", 0, 0, 0x5a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00),
    ENC("a cancel reason", 0, 1, 0x20, 0x01, 0x32, 0x02, 'n', 'o'),
    ENC("event type as a large varint", 1, 1, 0x5a, 0x06, 0x08, 0xff, 0xff, 0xff, 0xff, 0x0f),
};

static void test_unusual_encodings(void **state)
{
    (void)state;
    const ProtobufCMessageDescriptor *d = &etcdserverpb__watch_response__descriptor;
    for (size_t i = 0; i < sizeof encodings / sizeof encodings[0]; i++) {
        const struct encoding *e = &encodings[i];
        bool direct = false;
        if (!wd_check(e->bytes, e->len, &direct))
            fail_msg("%s: the decoders disagree", e->what);
        if ((int)direct != e->direct)
            fail_msg("%s: direct decoder %s it", e->what, direct ? "took" : "left");
        ProtobufCMessage *m = cl_stream_msg_unpack(d, e->len, e->bytes);
        if ((m != NULL) != e->accepted)
            fail_msg("%s: %s", e->what, m ? "accepted" : "refused");
        cl_stream_msg_free(m);
    }
}

static void test_empty_and_prefixes(void **state)
{
    (void)state;
    bool direct = false;
    assert_true(wd_check((const uint8_t *)"", 0, &direct));
    assert_true(direct);
    /* every prefix of a full response: refused or decoded exactly as protobuf-c does */
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    h.revision = 77;
    Mvccpb__KeyValue kv = MVCCPB__KEY_VALUE__INIT, prev = MVCCPB__KEY_VALUE__INIT;
    kv.key = (ProtobufCBinaryData){3, (uint8_t *)"abc"};
    kv.value = (ProtobufCBinaryData){5, (uint8_t *)"value"};
    kv.mod_revision = 77;
    prev.key = kv.key;
    Mvccpb__Event ev = MVCCPB__EVENT__INIT, *evs[2] = {&ev, &ev};
    ev.type = MVCCPB__EVENT__EVENT_TYPE__DELETE;
    ev.kv = &kv;
    ev.prev_kv = &prev;
    Etcdserverpb__WatchResponse m = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    m.header = &h;
    m.watch_id = 3;
    m.n_events = 2;
    m.events = evs;
    uint8_t buf[256];
    size_t len = etcdserverpb__watch_response__pack(&m, buf);
    assert_true(len < sizeof buf);
    for (size_t n = 0; n <= len; n++)
        assert_true(wd_check(buf, n, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_responses),
        cmocka_unit_test(test_unusual_encodings),
        cmocka_unit_test(test_empty_and_prefixes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
