/* tests/unit/test_grpc_frame.c — gRPC's length-prefixed message framing (api/grpc_frame.c).
 *
 * Expected behaviour is gRPC's PROTOCOL-HTTP2.md: "Length-Prefixed-Message → Compressed-Flag
 * Message-Length Message", a 1-byte flag and a 4-byte big-endian length; messages may span DATA
 * frames and several may share one; zero-length messages are valid. And the decoder's own
 * promise: it never allocates on a length it has not checked against its maximum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/grpc_frame.h"

/* Frames msg into out; returns the framed length. */
static size_t frame(uint8_t *out, const char *msg)
{
    return grpc_frame_encode(out, false, (const uint8_t *)msg, strlen(msg));
}

static void test_header_encoding(void **state)
{
    (void)state;
    uint8_t h[GRPC_FRAME_HEADER_SIZE];
    grpc_frame_header_encode(h, false, 0x01020304);
    assert_memory_equal(h, "\x00\x01\x02\x03\x04", 5);
    grpc_frame_header_encode(h, true, 0xffffffff);
    assert_memory_equal(h, "\x01\xff\xff\xff\xff", 5);
    uint8_t buf[16];
    assert_int_equal(frame(buf, "abc"), 8);
    assert_memory_equal(buf,
                        "\x00\x00\x00\x00\x03"
                        "abc",
                        8);
}

/* A message whole in one input is lent from the input, not copied. */
static void test_whole_message_zero_copy(void **state)
{
    (void)state;
    struct grpc_frame_decoder d;
    grpc_frame_decoder_init(&d, 100);
    uint8_t buf[16];
    size_t n = frame(buf, "hello"), used;
    struct grpc_frame_msg m;
    assert_int_equal(grpc_frame_decode(&d, buf, n, &used, &m), 1);
    assert_int_equal(used, n);
    assert_int_equal(m.len, 5);
    assert_ptr_equal(m.data, buf + 5);
    assert_false(m.compressed);
    assert_null(d.buf);
    assert_false(grpc_frame_decoder_partial(&d));
    assert_int_equal(grpc_frame_decode(&d, NULL, 0, &used, &m), 0);
    assert_false(grpc_frame_decoder_partial(&d));
    grpc_frame_decoder_free(&d);
}

/* Several messages in one input, one of them empty: each call returns the next. */
static void test_several_in_one_input(void **state)
{
    (void)state;
    struct grpc_frame_decoder d;
    grpc_frame_decoder_init(&d, 100);
    uint8_t buf[64];
    size_t n = frame(buf, "one");
    n += frame(buf + n, "");
    n += frame(buf + n, "three");
    const char *want[] = {"one", "", "three"};
    size_t off = 0, used;
    struct grpc_frame_msg m;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(grpc_frame_decode(&d, buf + off, n - off, &used, &m), 1);
        off += used;
        assert_int_equal(m.len, strlen(want[i]));
        assert_non_null(m.data);
        assert_memory_equal(m.data, want[i], m.len);
    }
    assert_int_equal(off, n);
    assert_int_equal(grpc_frame_decode(&d, buf + off, 0, &used, &m), 0);
    grpc_frame_decoder_free(&d);
}

/* Byte by byte, including the prefix: the message comes out whole once its last byte arrives. */
static void test_byte_by_byte(void **state)
{
    (void)state;
    struct grpc_frame_decoder d;
    grpc_frame_decoder_init(&d, 1000);
    uint8_t buf[600];
    char msg[501];
    for (int i = 0; i < 500; i++)
        msg[i] = (char)('a' + i % 26);
    msg[500] = '\0';
    size_t n = frame(buf, msg);
    n += frame(buf + n, "zz");
    int got = 0;
    struct grpc_frame_msg m;
    for (size_t i = 0; i < n; i++) {
        size_t used;
        int rv = grpc_frame_decode(&d, buf + i, 1, &used, &m);
        assert_int_equal(used, 1);
        if (i == 504) {
            assert_int_equal(rv, 1);
            assert_int_equal(m.len, 500);
            assert_memory_equal(m.data, msg, 500);
            assert_false(grpc_frame_decoder_partial(&d));
            got++;
        } else if (i == n - 1) {
            assert_int_equal(rv, 1);
            assert_int_equal(m.len, 2);
            assert_memory_equal(m.data, "zz", 2);
            got++;
        } else {
            assert_int_equal(rv, 0);
            assert_true(grpc_frame_decoder_partial(&d));
            /* memory follows the bytes received, never the declared length up front */
            assert_true(d.cap <= 500);
        }
    }
    assert_int_equal(got, 2);
    grpc_frame_decoder_free(&d);
}

/* Splits at every position of a two-message stream give the same messages. */
static void test_every_split(void **state)
{
    (void)state;
    uint8_t buf[64];
    size_t n = frame(buf, "first message");
    n += frame(buf + n, "second");
    for (size_t cut = 0; cut <= n; cut++) {
        struct grpc_frame_decoder d;
        grpc_frame_decoder_init(&d, 64);
        char out[2][32];
        int got = 0;
        size_t parts[2][2] = {{0, cut}, {cut, n}};
        for (int p = 0; p < 2; p++) {
            size_t off = parts[p][0], end = parts[p][1], used;
            struct grpc_frame_msg m;
            int rv;
            while ((rv = grpc_frame_decode(&d, buf + off, end - off, &used, &m)) == 1) {
                off += used;
                assert_true(got < 2);
                memcpy(out[got], m.data, m.len);
                out[got++][m.len] = '\0';
            }
            assert_int_equal(rv, 0);
            assert_int_equal(off + used, end);
        }
        assert_int_equal(got, 2);
        assert_string_equal(out[0], "first message");
        assert_string_equal(out[1], "second");
        grpc_frame_decoder_free(&d);
    }
}

/* A length above the maximum is refused at the prefix: nothing is allocated, even for 4 GiB, and
 * the error sticks. Exactly the maximum is fine. */
static void test_too_large(void **state)
{
    (void)state;
    struct grpc_frame_decoder d;
    grpc_frame_decoder_init(&d, 1024);
    uint8_t pfx[5];
    size_t used;
    struct grpc_frame_msg m;
    grpc_frame_header_encode(pfx, false, 0xffffffff);
    assert_int_equal(grpc_frame_decode(&d, pfx, 5, &used, &m), GRPC_FRAME_E_TOO_LARGE);
    assert_int_equal(used, 5);
    assert_int_equal(d.declared, 0xffffffffu);
    assert_null(d.buf);
    assert_int_equal(grpc_frame_decode(&d, pfx, 5, &used, &m), GRPC_FRAME_E_TOO_LARGE);
    assert_int_equal(used, 0);
    grpc_frame_decoder_free(&d);

    grpc_frame_decoder_init(&d, 1024);
    grpc_frame_header_encode(pfx, false, 1025);
    assert_int_equal(grpc_frame_decode(&d, pfx, 5, &used, &m), GRPC_FRAME_E_TOO_LARGE);
    assert_int_equal(d.declared, 1025);
    grpc_frame_decoder_free(&d);

    grpc_frame_decoder_init(&d, 1024);
    uint8_t *big = calloc(1, 5 + 1024);
    grpc_frame_header_encode(big, false, 1024);
    assert_int_equal(grpc_frame_decode(&d, big, 3, &used, &m), 0);
    assert_int_equal(grpc_frame_decode(&d, big + 3, 5 + 1024 - 3, &used, &m), 1);
    assert_int_equal(m.len, 1024);
    free(big);
    grpc_frame_decoder_free(&d);
}

/* The compressed flag is reported; a flag byte other than 0 or 1 is an error. */
static void test_flags(void **state)
{
    (void)state;
    struct grpc_frame_decoder d;
    grpc_frame_decoder_init(&d, 100);
    uint8_t buf[16];
    size_t n = grpc_frame_encode(buf, true, (const uint8_t *)"x", 1), used;
    struct grpc_frame_msg m;
    assert_int_equal(grpc_frame_decode(&d, buf, n, &used, &m), 1);
    assert_true(m.compressed);
    buf[0] = 2;
    assert_int_equal(grpc_frame_decode(&d, buf, n, &used, &m), GRPC_FRAME_E_FLAG);
    grpc_frame_decoder_free(&d);
}

/* A large message's buffer is released once it was delivered; a small one is kept for reuse. */
static void test_buffer_release(void **state)
{
    (void)state;
    struct grpc_frame_decoder d;
    grpc_frame_decoder_init(&d, 1 << 20);
    size_t big = 200 * 1024;
    uint8_t *buf = calloc(1, 5 + big);
    grpc_frame_header_encode(buf, false, (uint32_t)big);
    size_t used;
    struct grpc_frame_msg m;
    assert_int_equal(grpc_frame_decode(&d, buf, 100, &used, &m), 0);
    assert_int_equal(grpc_frame_decode(&d, buf + 100, 5 + big - 100, &used, &m), 1);
    assert_int_equal(m.len, big);
    assert_ptr_equal(m.data, d.buf);
    assert_int_equal(grpc_frame_decode(&d, NULL, 0, &used, &m), 0);
    assert_null(d.buf);
    free(buf);

    uint8_t small[16];
    size_t n = frame(small, "abcdef");
    assert_int_equal(grpc_frame_decode(&d, small, 7, &used, &m), 0);
    assert_int_equal(grpc_frame_decode(&d, small + 7, n - 7, &used, &m), 1);
    assert_memory_equal(m.data, "abcdef", 6);
    assert_int_equal(grpc_frame_decode(&d, small, 2, &used, &m), 0);
    assert_non_null(d.buf);
    assert_true(grpc_frame_decoder_partial(&d));
    grpc_frame_decoder_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_encoding),
        cmocka_unit_test(test_whole_message_zero_copy),
        cmocka_unit_test(test_several_in_one_input),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_every_split),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_buffer_release),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
