/* tests/unit/test_identity.c — etcd's member/cluster ID derivation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "raft/identity.h"

/* etcd with its defaults (peer URL http://localhost:2380, token etcd-cluster) is member
 * 8e9e05c52164694d of cluster cdf818194e3a8c32 — the IDs every default etcd prints. */
static void test_etcd_default_ids(void **state)
{
    (void)state;
    const char *urls[] = {"http://localhost:2380"};
    uint64_t m = identity_member_id(urls, 1, "etcd-cluster");
    assert_int_equal(m, 0x8e9e05c52164694dULL);
    assert_int_equal(identity_cluster_id(&m, 1), 0xcdf818194e3a8c32ULL);
}

/* Order of URLs and of member IDs does not matter; the token does. */
static void test_ids_order_independent(void **state)
{
    (void)state;
    const char *a[] = {"http://10.0.0.1:2380", "http://10.0.0.2:2380"};
    const char *b[] = {"http://10.0.0.2:2380", "http://10.0.0.1:2380"};
    assert_int_equal(identity_member_id(a, 2, "t"), identity_member_id(b, 2, "t"));
    assert_int_not_equal(identity_member_id(a, 2, "t"), identity_member_id(a, 2, "u"));
    uint64_t x[] = {1, 2, 3}, y[] = {3, 1, 2};
    assert_int_equal(identity_cluster_id(x, 3), identity_cluster_id(y, 3));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_etcd_default_ids),
        cmocka_unit_test(test_ids_order_independent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
