/* tests/unit/test_store_alarm.c — the alarm table (etcd's alarm store, etcdserver/api/v3alarm):
 * Activate answers whether the alarm is new, Deactivate whether it was raised, Get lists one type
 * or all; alarms persist with the data and abort with their transaction. */
#include "tests/unit/helpers/store_case.h"

#define FX(state) (((struct tcase *)*(state))->fx[0])
#define TC(state) ((struct tcase *)*(state))

static bool activate(struct tcase *t, struct fx *f, uint64_t member, int type)
{
    store_tx *tx = tc_write(t, f);
    bool added = false;
    assert_rc(store_alarm_activate(tx, member, type, &added), 0);
    assert_rc(tc_commit(t, tx), 0);
    return added;
}

static bool deactivate(struct tcase *t, struct fx *f, uint64_t member, int type)
{
    store_tx *tx = tc_write(t, f);
    bool removed = false;
    assert_rc(store_alarm_deactivate(tx, member, type, &removed), 0);
    assert_rc(tc_commit(t, tx), 0);
    return removed;
}

/* The alarms of a type as "member:type" pairs, in order, into out. */
static size_t list(struct tcase *t, struct fx *f, int type, struct store_alarm *out, size_t max)
{
    store_tx *tx = tc_read(t, f);
    struct store_alarm *l;
    size_t n;
    assert_rc(store_alarm_list(tx, type, &t->a, &l, &n), 0);
    tc_end(t, tx);
    assert_true(n <= max);
    for (size_t i = 0; i < n; i++)
        out[i] = l[i];
    return n;
}

static bool active(struct tcase *t, struct fx *f, int type)
{
    store_tx *tx = tc_read(t, f);
    bool on = true;
    assert_rc(store_alarm_active(tx, type, &on), 0);
    tc_end(t, tx);
    return on;
}

static void test_activate_list_deactivate(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    struct store_alarm l[8];
    assert_int_equal(list(t, f, STORE_ALARM_NONE, l, 8), 0);
    assert_false(active(t, f, STORE_ALARM_NOSPACE));
    assert_true(activate(t, f, 0xfffffffffffffff0ull, STORE_ALARM_NOSPACE));
    assert_false(activate(t, f, 0xfffffffffffffff0ull, STORE_ALARM_NOSPACE)); /* raised before */
    assert_true(activate(t, f, 2, STORE_ALARM_NOSPACE));
    assert_true(activate(t, f, 1, STORE_ALARM_CORRUPT));
    assert_true(activate(t, f, 9, 7)); /* a type etcd does not know is kept, as etcd keeps it */
    assert_true(active(t, f, STORE_ALARM_NOSPACE));
    assert_true(active(t, f, STORE_ALARM_CORRUPT));

    /* ordered by type, then member id (as unsigned) */
    assert_int_equal(list(t, f, STORE_ALARM_NONE, l, 8), 4);
    assert_int_equal(l[0].type, STORE_ALARM_NOSPACE);
    assert_true(l[0].member_id == 2);
    assert_int_equal(l[1].type, STORE_ALARM_NOSPACE);
    assert_true(l[1].member_id == 0xfffffffffffffff0ull);
    assert_int_equal(l[2].type, STORE_ALARM_CORRUPT);
    assert_true(l[2].member_id == 1);
    assert_int_equal(l[3].type, 7);
    assert_int_equal(list(t, f, STORE_ALARM_NOSPACE, l, 8), 2);
    assert_int_equal(list(t, f, STORE_ALARM_CORRUPT, l, 8), 1);
    assert_int_equal(list(t, f, 3, l, 8), 0);

    assert_false(deactivate(t, f, 2, STORE_ALARM_CORRUPT)); /* not raised for that type */
    assert_true(deactivate(t, f, 2, STORE_ALARM_NOSPACE));
    assert_false(deactivate(t, f, 2, STORE_ALARM_NOSPACE));
    assert_true(active(t, f, STORE_ALARM_NOSPACE));
    assert_true(deactivate(t, f, 0xfffffffffffffff0ull, STORE_ALARM_NOSPACE));
    assert_false(active(t, f, STORE_ALARM_NOSPACE));
    assert_int_equal(list(t, f, STORE_ALARM_NONE, l, 8), 2);
}

static void test_alarms_change_no_revision(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    assert_rc(fx_put(f, "k", "v", 0, NULL), 0);
    int64_t rev = fx_rev(f);
    activate(t, f, 1, STORE_ALARM_NOSPACE);
    deactivate(t, f, 1, STORE_ALARM_NOSPACE);
    assert_int_equal(fx_rev(f), rev);
}

static void test_persist_and_abort(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    activate(t, f, 5, STORE_ALARM_NOSPACE);
    /* an aborted transaction leaves the table as it was */
    store_tx *tx = tc_write(t, f);
    bool changed;
    assert_rc(store_alarm_activate(tx, 6, STORE_ALARM_CORRUPT, &changed), 0);
    assert_rc(store_alarm_deactivate(tx, 5, STORE_ALARM_NOSPACE, &changed), 0);
    assert_true(changed);
    tc_end(t, tx);
    fx_reopen(f, NULL);
    struct store_alarm l[4];
    assert_int_equal(list(t, f, STORE_ALARM_NONE, l, 4), 1);
    assert_true(l[0].member_id == 5 && l[0].type == STORE_ALARM_NOSPACE);
}

static void test_bad_arguments(void **state)
{
    struct tcase *t = TC(state);
    struct fx *f = FX(state);
    bool changed;
    store_tx *tx = tc_read(t, f);
    /* a read transaction cannot change alarms */
    assert_rc(store_alarm_activate(tx, 1, STORE_ALARM_NOSPACE, &changed), CAIRN_E_INVALID_ARGUMENT);
    struct store_alarm *l;
    size_t n;
    assert_rc(store_alarm_list(tx, -1, &t->a, &l, &n), CAIRN_E_INVALID_ARGUMENT);
    assert_rc(store_alarm_active(tx, STORE_ALARM_NONE, &changed), CAIRN_E_INVALID_ARGUMENT);
    tc_end(t, tx);
    tx = tc_write(t, f);
    assert_rc(store_alarm_activate(tx, 1, -3, &changed), CAIRN_E_INVALID_ARGUMENT);
    assert_rc(store_alarm_deactivate(tx, 1, -3, &changed), CAIRN_E_INVALID_ARGUMENT);
    assert_rc(tc_commit(t, tx), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_activate_list_deactivate, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_alarms_change_no_revision, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_persist_and_abort, tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_bad_arguments, tc_setup, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
