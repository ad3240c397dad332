/* tests/unit/test_grpc_meta.c — grpc-timeout, grpc-message and status names (common/grpc_meta). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/grpc_meta.h"

static void test_timeout_parse(void **state)
{
    (void)state;
    uint64_t ms;
    assert_int_equal(grpc_timeout_parse("1H", &ms), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(grpc_timeout_parse("2M", &ms), 0);
    assert_int_equal(ms, 120000);
    assert_int_equal(grpc_timeout_parse("5S", &ms), 0);
    assert_int_equal(ms, 5000);
    assert_int_equal(grpc_timeout_parse("250m", &ms), 0);
    assert_int_equal(ms, 250);
    assert_int_equal(grpc_timeout_parse("1500u", &ms), 0);
    assert_int_equal(ms, 2); /* rounded up */
    assert_int_equal(grpc_timeout_parse("1n", &ms), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(grpc_timeout_parse("99999999S", &ms), 0);
    const char *bad[] = {"", "S", "1", "123456789S", "1s", "-1S", "1 S", "1x", "1.5S"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(grpc_timeout_parse(bad[i], &ms), -1);
}

/* Formatting picks the coarsest exact unit and always parses back to at least the same time. */
static void test_timeout_format(void **state)
{
    (void)state;
    char out[10];
    assert_string_equal(grpc_timeout_format(5000, out), "5S");
    assert_string_equal(grpc_timeout_format(7200000, out), "2H");
    assert_string_equal(grpc_timeout_format(60000, out), "1M");
    assert_string_equal(grpc_timeout_format(1500, out), "1500m");
    assert_string_equal(grpc_timeout_format(0, out), "0H");
    const uint64_t cases[] = {1, 999, 1001, 99999999, 100000001, 123456789012ull, UINT64_MAX / 2};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t back;
        grpc_timeout_format(cases[i], out);
        assert_true(strlen(out) <= 9);
        assert_int_equal(grpc_timeout_parse(out, &back), 0);
        assert_true(back >= cases[i] || back == 99999999ull * 3600000);
    }
}

static void test_message_codec(void **state)
{
    (void)state;
    const char *plain = "etcdserver: key not found";
    char *e = grpc_message_encode(plain);
    assert_string_equal(e, plain);
    free(e);
    e = grpc_message_encode("100% \xc3\xa9\n");
    assert_string_equal(e, "100%25 %C3%A9%0A");
    char *d = grpc_message_decode(e, strlen(e));
    assert_string_equal(d, "100% \xc3\xa9\n");
    free(d);
    free(e);
    /* a stray or truncated escape stays as it is; lower-case hex decodes */
    d = grpc_message_decode("a%zz b%4 c%", 11);
    assert_string_equal(d, "a%zz b%4 c%");
    free(d);
    d = grpc_message_decode("%e2%82%ac", 9);
    assert_string_equal(d, "\xe2\x82\xac");
    free(d);
    /* not NUL-terminated input: only len bytes are read */
    d = grpc_message_decode("abcdef", 3);
    assert_string_equal(d, "abc");
    free(d);
}

static void test_content_type(void **state)
{
    (void)state;
    const char *ok[] = {"application/grpc", "application/grpc+proto", "application/grpc;charset=x",
                        "Application/GRPC"};
    const char *bad[] = {"", "application/json", "application/grpcx", "application/grp",
                         "text/plain+application/grpc"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        assert_true(grpc_content_type_ok(ok[i], strlen(ok[i])));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(grpc_content_type_ok(bad[i], strlen(bad[i])));
    /* only len bytes count: a prefix of a longer buffer */
    assert_true(grpc_content_type_ok("application/grpcXYZ", 16));
}

static void test_code_names(void **state)
{
    (void)state;
    assert_string_equal(grpc_code_name(GRPC_OK), "OK");
    assert_string_equal(grpc_code_name(GRPC_UNAVAILABLE), "Unavailable");
    assert_string_equal(grpc_code_name(GRPC_DEADLINE_EXCEEDED), "DeadlineExceeded");
    assert_string_equal(grpc_code_name(GRPC_CANCELLED), "Canceled");
    assert_string_equal(grpc_code_name(GRPC_UNAUTHENTICATED), "Unauthenticated");
    assert_string_equal(grpc_code_name(99), "Code(99)");
    assert_string_equal(grpc_code_name(-1), "Code(-1)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_timeout_parse), cmocka_unit_test(test_timeout_format),
        cmocka_unit_test(test_message_codec), cmocka_unit_test(test_content_type),
        cmocka_unit_test(test_code_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
