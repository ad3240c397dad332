/* tests/unit/test_store_record.c — the store's record encodings (store/record.h): what is written
 * reads back, and what is malformed — including a key table record of format 1, which carried the
 * value after its fields — is CORRUPT. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "store/record.h"

static void test_latest_round_trip(void **state)
{
    (void)state;
    const struct latest_rec cases[] = {
        {0, 2, 0, 2, 1, 0},
        {REC_TOMBSTONE, 9, 3, 0, 0, 0},
        {0, INT64_MAX, 70000, 5, 123456789, -1},
        {0, 300, 1, 299, 2, INT64_MIN},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t buf[64];
        size_t n = latest_rec_size(&cases[i]);
        assert_true(n <= sizeof buf);
        latest_rec_encode(&cases[i], buf);
        struct latest_rec r;
        assert_int_equal(latest_rec_decode(buf, n, &r), 0);
        assert_int_equal(r.flags, cases[i].flags);
        assert_int_equal(r.mod_main, cases[i].mod_main);
        assert_int_equal(r.mod_sub, cases[i].mod_sub);
        assert_int_equal(r.create, cases[i].create);
        assert_int_equal(r.version, cases[i].version);
        assert_int_equal(r.lease, cases[i].lease);
        /* every shorter prefix is truncated, every longer buffer has bytes the format has not */
        for (size_t cut = 0; cut < n; cut++)
            assert_int_equal(latest_rec_decode(buf, cut, &r), CAIRN_E_CORRUPT);
        buf[n] = 0;
        assert_int_equal(latest_rec_decode(buf, n + 1, &r), CAIRN_E_CORRUPT);
    }
}

/* Format 1 wrote the value inline after the fields: such a record is not read as format 2's. */
static void test_latest_with_inline_value_is_corrupt(void **state)
{
    (void)state;
    static const uint8_t v1[] = {0x00, 0x07, 0x00, 0x05, 0x02, 0x00, 'v', 'a', 'l', 'u', 'e'};
    struct latest_rec r;
    assert_int_equal(latest_rec_decode(v1, sizeof v1, &r), CAIRN_E_CORRUPT);
    assert_int_equal(latest_rec_decode(v1, 6, &r), 0);
    assert_int_equal(r.mod_main, 7);
    assert_int_equal(r.create, 5);
    assert_int_equal(r.version, 2);
}

static void test_latest_bad_fields_are_corrupt(void **state)
{
    (void)state;
    struct latest_rec r;
    static const uint8_t unknown_flag[] = {0x02, 0x07, 0x00, 0x05, 0x02, 0x00};
    assert_int_equal(latest_rec_decode(unknown_flag, sizeof unknown_flag, &r), CAIRN_E_CORRUPT);
    static const uint8_t rev_one[] = {0x00, 0x01, 0x00, 0x01, 0x01, 0x00};
    assert_int_equal(latest_rec_decode(rev_one, sizeof rev_one, &r), CAIRN_E_CORRUPT);
    static const uint8_t long_varint[] = {0x00, 0x87, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
                                          0x80, 0x80, 0x80, 0x80, 0x00, 0x00, 0x00, 0x00};
    assert_int_equal(latest_rec_decode(long_varint, sizeof long_varint, &r), CAIRN_E_CORRUPT);
}

/* The history record keeps the value (the only copy of it) and reads back key and value. */
static void test_hist_round_trip(void **state)
{
    (void)state;
    struct hist_rec h = {.create = 5,
                         .version = 2,
                         .lease = 7,
                         .prev_main = 5,
                         .prev_sub = 1,
                         .key = {(const uint8_t *)"key", 3},
                         .value = {(const uint8_t *)"a value", 7}};
    uint8_t buf[64];
    size_t n = hist_rec_size(&h);
    assert_true(n <= sizeof buf);
    hist_rec_encode(&h, buf);
    struct hist_rec r;
    assert_int_equal(hist_rec_decode(buf, n, &r), 0);
    assert_int_equal(r.create, 5);
    assert_int_equal(r.version, 2);
    assert_int_equal(r.lease, 7);
    assert_int_equal(r.prev_main, 5);
    assert_int_equal(r.prev_sub, 1);
    assert_int_equal(r.key.len, 3);
    assert_memory_equal(r.key.data, "key", 3);
    assert_int_equal(r.value.len, 7);
    assert_memory_equal(r.value.data, "a value", 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_latest_round_trip),
        cmocka_unit_test(test_latest_with_inline_value_is_corrupt),
        cmocka_unit_test(test_latest_bad_fields_are_corrupt),
        cmocka_unit_test(test_hist_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
