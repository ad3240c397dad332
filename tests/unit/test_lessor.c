/* tests/unit/test_lessor.c — the leader's lease timers (raft/lessor.c) and the lease requests of
 * the state machine (raft/apply.c).
 *
 * The lessor runs on the test's loop over a temporary store, with a fake proposer: leader() says
 * who leads (the test decides), and proposals are queued until the test applies them with
 * apply_request() in a write transaction, as every member would. Expiry takes real loop time (the
 * lessor looks twice a second), so the leases here live one or two seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/apply.h"
#include "raft/lessor.h"
#include "tests/unit/helpers/fixture.h"

#define SELF       0x1234
#define OTHER      0x5678
#define MAX_QUEUED 64

struct t {
    struct proposer base; /* first member */
    uv_loop_t loop;
    struct fx *f;
    struct lessor l;
    uint64_t leader;
    uint64_t next_id;
    struct proposal *queued[MAX_QUEUED];
    size_t n_queued;
    /* copies of what was applied, for the assertions */
    int kinds[MAX_QUEUED];          /* request_case of each applied proposal */
    int64_t ids[MAX_QUEUED];        /* revoke: the lease; checkpoint: its first lease */
    int64_t remainings[MAX_QUEUED]; /* checkpoint: the first remaining TTL */
    size_t n_applied;
    bool closed;
};

static int fake_propose(struct proposer *self, struct proposal *p)
{
    struct t *t = (struct t *)self;
    assert_true(t->n_queued < MAX_QUEUED);
    t->queued[t->n_queued++] = p;
    return 0;
}

static uint64_t fake_leader(struct proposer *self)
{
    return ((struct t *)self)->leader;
}

static uint64_t fake_next_id(struct proposer *self)
{
    return ++((struct t *)self)->next_id;
}

/* Applies the queued proposals, in order, in one write transaction, and answers them. */
static void apply_queued(struct t *t)
{
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(t->f->st, &tx), 0);
    size_t n = t->n_queued;
    struct proposal *list[MAX_QUEUED];
    memcpy(list, t->queued, n * sizeof *list);
    t->n_queued = 0;
    for (size_t i = 0; i < n; i++) {
        const Cairn__InternalRequest *r = list[i]->req;
        assert_int_equal(apply_request(tx, r, list[i]->arena, &list[i]->res), 0);
        assert_true(t->n_applied < MAX_QUEUED);
        t->kinds[t->n_applied] = r->request_case;
        if (r->request_case == CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE) {
            t->ids[t->n_applied] = r->lease_revoke->id;
        } else if (r->request_case == CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT) {
            assert_true(r->lease_checkpoint->n_checkpoints > 0);
            t->ids[t->n_applied] = r->lease_checkpoint->checkpoints[0]->id;
            t->remainings[t->n_applied] = r->lease_checkpoint->checkpoints[0]->remaining_ttl;
        }
        t->n_applied++;
    }
    assert_int_equal(store_tx_commit(tx, false), 0);
    for (size_t i = 0; i < n; i++)
        list[i]->cb(list[i], 0);
}

/* Turns the loop (and applies what was proposed) until cond holds; fails after ~10 s. */
#define run_until(t, cond)                                 \
    do {                                                   \
        uint64_t start_ = uv_now(&(t)->loop);              \
        while (!(cond)) {                                  \
            if (uv_now(&(t)->loop) - start_ > 10000)       \
                fail_msg("gave up waiting for %s", #cond); \
            uv_run(&(t)->loop, UV_RUN_ONCE);               \
            if ((t)->n_queued)                             \
                apply_queued(t);                           \
        }                                                  \
    } while (0)

static void on_wait(uv_timer_t *h)
{
    (void)h;
}

/* Turns the loop for ms of loop time, applying what is proposed. */
static void run_for(struct t *t, uint64_t ms)
{
    uv_timer_t timer;
    uv_timer_init(&t->loop, &timer);
    uv_timer_start(&timer, on_wait, ms, 0);
    uint64_t end = uv_now(&t->loop) + ms;
    while (uv_now(&t->loop) < end) {
        uv_run(&t->loop, UV_RUN_ONCE);
        if (t->n_queued)
            apply_queued(t);
    }
    uv_close((uv_handle_t *)&timer, NULL);
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

static void start(struct t *t, unsigned election_ms, unsigned checkpoint_ms)
{
    struct lessor_options o = {
        .self = SELF, .election_ms = election_ms, .checkpoint_interval_ms = checkpoint_ms};
    assert_int_equal(lessor_start(&t->l, &t->loop, t->f->st, &t->base, &o), 0);
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->base.propose = fake_propose;
    t->base.leader = fake_leader;
    t->base.next_request_id = fake_next_id;
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->f = fx_open(NULL);
    t->leader = SELF;
    *state = t;
    return 0;
}

static void on_lessor_closed(struct lessor *l)
{
    struct t *t = (struct t *)((char *)l - offsetof(struct t, l));
    t->closed = true;
}

static int teardown(void **state)
{
    struct t *t = *state;
    if (t->l.loop) {
        lessor_close(&t->l, on_lessor_closed);
        while (!t->closed)
            uv_run(&t->loop, UV_RUN_ONCE);
        if (t->n_queued)
            apply_queued(t);
        lessor_free(&t->l);
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    fx_close(t->f);
    free(t);
    return 0;
}

/* A grant, a checkpoint or a revoke applied as the state machine applies it. */
static int apply_one(struct t *t, Cairn__InternalRequest *r, struct apply_result *res,
                     struct arena *a)
{
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(t->f->st, &tx), 0);
    assert_int_equal(apply_request(tx, r, a, res), 0);
    assert_int_equal(store_tx_commit(tx, false), 0);
    return res->err;
}

static int grant(struct t *t, int64_t id, int64_t ttl)
{
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.id = id;
    g.ttl = ttl;
    Cairn__InternalRequest r = CAIRN__INTERNAL_REQUEST__INIT;
    r.id = 1;
    r.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_GRANT;
    r.lease_grant = &g;
    struct apply_result res;
    struct arena a = ARENA_INIT;
    int err = apply_one(t, &r, &res, &a);
    if (!err) {
        assert_non_null(res.lease_grant);
        assert_int_equal(res.lease_grant->id, id);
        assert_int_equal(res.lease_grant->ttl, ttl);
    }
    arena_free(&a);
    return err;
}

static void checkpoint(struct t *t, int64_t id, int64_t remaining)
{
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(t->f->st, &tx), 0);
    assert_int_equal(store_lease_checkpoint(tx, id, remaining), 0);
    assert_int_equal(store_tx_commit(tx, false), 0);
}

static bool lease_exists(struct t *t, int64_t id, struct store_lease *out)
{
    store_tx *tx;
    struct store_lease l;
    assert_int_equal(store_tx_begin_read(t->f->st, &tx), 0);
    int err = store_lease_get(tx, id, false, NULL, &l);
    store_tx_end(tx);
    if (out)
        *out = l;
    return err == 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The state machine's lease requests */

static void test_apply_grant_rules(void **state)
{
    struct t *t = *state;
    assert_int_equal(grant(t, 7, 10), 0);
    assert_int_equal(grant(t, 7, 10), CAIRN_E_LEASE_EXIST);
    assert_int_equal(grant(t, 8, APPLY_MAX_LEASE_TTL + 1), CAIRN_E_LEASE_TTL_TOO_LARGE);
    assert_int_equal(grant(t, 9, APPLY_MAX_LEASE_TTL), 0);
    assert_int_equal(grant(t, 0, 10), CAIRN_E_LEASE_NOT_FOUND);
    assert_false(lease_exists(t, 8, NULL));
}

static void test_apply_revoke_deletes_keys_in_one_revision(void **state)
{
    struct t *t = *state;
    assert_int_equal(grant(t, 7, 10), 0);
    assert_int_equal(fx_put(t->f, "a", "1", 7, NULL), 0);
    assert_int_equal(fx_put(t->f, "b", "2", 7, NULL), 0);
    assert_int_equal(fx_put(t->f, "c", "3", 0, NULL), 0);
    int64_t before = fx_rev(t->f);
    Etcdserverpb__LeaseRevokeRequest v = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    v.id = 7;
    Cairn__InternalRequest r = CAIRN__INTERNAL_REQUEST__INIT;
    r.id = 2;
    r.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE;
    r.lease_revoke = &v;
    struct apply_result res;
    struct arena a = ARENA_INIT;
    assert_int_equal(apply_one(t, &r, &res, &a), 0);
    assert_non_null(res.lease_revoke);
    assert_int_equal(res.lease_revoke->header->revision, before + 1);
    assert_int_equal(fx_rev(t->f), before + 1);
    struct store_kv kv;
    assert_int_equal(fx_get(t->f, "a", 0, &kv), 0);
    assert_int_equal(fx_get(t->f, "b", 0, &kv), 0);
    assert_int_equal(fx_get(t->f, "c", 0, &kv), 1);
    fx_reset(t->f);
    arena_reset(&a);
    assert_int_equal(apply_one(t, &r, &res, &a), CAIRN_E_LEASE_NOT_FOUND);
    arena_free(&a);
}

static void test_apply_checkpoint_skips_missing_leases(void **state)
{
    struct t *t = *state;
    assert_int_equal(grant(t, 7, 100), 0);
    Etcdserverpb__LeaseCheckpoint c1 = ETCDSERVERPB__LEASE_CHECKPOINT__INIT, c2 = c1;
    c1.id = 99; /* revoked meanwhile */
    c1.remaining_ttl = 5;
    c2.id = 7;
    c2.remaining_ttl = 42;
    Etcdserverpb__LeaseCheckpoint *cps[2] = {&c1, &c2};
    Etcdserverpb__LeaseCheckpointRequest cr = ETCDSERVERPB__LEASE_CHECKPOINT_REQUEST__INIT;
    cr.checkpoints = cps;
    cr.n_checkpoints = 2;
    Cairn__InternalRequest r = CAIRN__INTERNAL_REQUEST__INIT;
    r.id = 3;
    r.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT;
    r.lease_checkpoint = &cr;
    struct apply_result res;
    struct arena a = ARENA_INIT;
    assert_int_equal(apply_one(t, &r, &res, &a), 0);
    assert_non_null(res.lease_checkpoint);
    arena_free(&a);
    struct store_lease l;
    assert_true(lease_exists(t, 7, &l));
    assert_int_equal(l.remaining_ttl, 42);
    assert_int_equal(l.ttl, 100);
}

/* ---------------------------------------------------------------------------------------------- */
/* The lessor */

static void test_leader_revokes_an_expired_lease_through_the_log(void **state)
{
    struct t *t = *state;
    assert_int_equal(grant(t, 7, 1), 0);
    assert_int_equal(grant(t, 8, 1000), 0);
    assert_int_equal(fx_put(t->f, "k", "v", 7, NULL), 0);
    start(t, 1000, 0);
    lessor_granted(&t->l, 7, 1);
    run_until(t, !lease_exists(t, 7, NULL));
    assert_int_equal(t->n_applied, 1);
    assert_int_equal(t->kinds[0], CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE);
    assert_int_equal(t->ids[0], 7);
    struct store_kv kv;
    assert_int_equal(fx_get(t->f, "k", 0, &kv), 0);
    fx_reset(t->f);
    assert_true(lease_exists(t, 8, NULL));
    int64_t ttl;
    assert_int_equal(lessor_renew(&t->l, 7, &ttl), CAIRN_E_LEASE_NOT_FOUND);
}

static void test_follower_keeps_no_timers(void **state)
{
    struct t *t = *state;
    t->leader = OTHER;
    assert_int_equal(grant(t, 7, 1), 0);
    start(t, 1000, 0);
    run_for(t, 2 * LESSOR_TICK_MS + 1200);
    assert_int_equal(t->n_applied, 0);
    assert_true(lease_exists(t, 7, NULL));
    int64_t ttl, rem;
    assert_int_equal(lessor_renew(&t->l, 7, &ttl), CAIRN_E_NOT_LEADER);
    assert_int_equal(lessor_remaining(&t->l, 7, &rem, &ttl), CAIRN_E_NOT_LEADER);
    assert_false(lessor_is_primary(&t->l));
}

static void test_renew_and_unknown_lease(void **state)
{
    struct t *t = *state;
    assert_int_equal(grant(t, 7, 30), 0);
    start(t, 1000, 0);
    int64_t ttl = 0, rem = 0, granted = 0;
    assert_int_equal(lessor_renew(&t->l, 7, &ttl), 0);
    assert_int_equal(ttl, 30);
    assert_int_equal(lessor_remaining(&t->l, 7, &rem, &granted), 0);
    assert_int_equal(granted, 30);
    assert_true(rem >= 29 && rem <= 30);
    assert_int_equal(lessor_renew(&t->l, 99, &ttl), CAIRN_E_LEASE_NOT_FOUND);
    assert_int_equal(lessor_remaining(&t->l, 99, &rem, &granted), CAIRN_E_LEASE_NOT_FOUND);
    assert_int_equal(t->n_queued, 0); /* nothing to checkpoint: no remaining TTL recorded */
}

/* etcd's Promote: the checkpointed remaining TTL plus an election timeout, not the full TTL; a
 * renewal then clears the checkpoint (a checkpoint of 0 through the log) and restarts the lease
 * from its TTL. */
static void test_new_leader_uses_checkpointed_ttl(void **state)
{
    struct t *t = *state;
    t->leader = OTHER;
    assert_int_equal(grant(t, 7, 100), 0);
    checkpoint(t, 7, 5);
    start(t, 3000, 0);
    assert_false(lessor_is_primary(&t->l));
    t->leader = SELF;
    int64_t rem = 0, granted = 0, ttl = 0;
    assert_int_equal(lessor_remaining(&t->l, 7, &rem, &granted), 0);
    assert_int_equal(granted, 100);
    assert_true(rem >= 7 && rem <= 8); /* 5 s + 3 s, less the moments since */
    assert_int_equal(lessor_renew(&t->l, 7, &ttl), 0);
    assert_int_equal(ttl, 100);
    assert_int_equal(t->n_queued, 1);
    apply_queued(t);
    assert_int_equal(t->kinds[0], CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT);
    assert_int_equal(t->remainings[0], 0);
    struct store_lease l;
    assert_true(lease_exists(t, 7, &l));
    assert_int_equal(l.remaining_ttl, 0);
    assert_int_equal(lessor_remaining(&t->l, 7, &rem, &granted), 0);
    assert_true(rem >= 99);
}

/* A lease that outlives the checkpoint interval gets its remaining TTL recorded through the log;
 * one that does not (etcd's rule: remaining TTL above the interval) is never checkpointed. */
static bool checkpointed(const struct t *t, int64_t id, int64_t *remaining)
{
    for (size_t i = 0; i < t->n_applied; i++)
        if (t->kinds[i] == CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT && t->ids[i] == id) {
            if (remaining)
                *remaining = t->remainings[i];
            return true;
        }
    return false;
}

static void test_checkpoints_of_long_leases(void **state)
{
    struct t *t = *state;
    assert_int_equal(grant(t, 7, 100), 0);
    assert_int_equal(grant(t, 8, 1), 0);
    start(t, 1000, 1000);
    lessor_granted(&t->l, 7, 100);
    lessor_granted(&t->l, 8, 1);
    int64_t rem = 0;
    run_until(t, checkpointed(t, 7, &rem) && !lease_exists(t, 8, NULL));
    assert_true(rem > 0 && rem < 100);
    struct store_lease l;
    assert_true(lease_exists(t, 7, &l));
    assert_true(l.remaining_ttl > 0 && l.remaining_ttl <= rem);
    assert_false(checkpointed(t, 8, NULL));
}

/* Leases revoked by entries the leader did not propose (a revoke applied from the log) leave the
 * table at the next tick, thousands at once; leases granted meanwhile join it, in id order. */
static void test_tick_takes_over_the_store_table(void **state)
{
    struct t *t = *state;
    for (int64_t id = 1; id <= 2000; id++)
        assert_int_equal(grant(t, id, 100), 0);
    start(t, 1000, 0);
    assert_true(lessor_is_primary(&t->l));
    assert_int_equal(t->l.n, 2000);
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(t->f->st, &tx), 0);
    for (int64_t id = 1; id <= 2000; id++) {
        int64_t rev;
        if (id != 1 && id != 1000 && id != 2000)
            assert_int_equal(store_lease_revoke(tx, id, &rev), 0);
    }
    assert_int_equal(store_tx_commit(tx, false), 0);
    assert_int_equal(grant(t, 5000, 100), 0);
    assert_int_equal(grant(t, 1500, 100), 0);
    run_for(t, LESSOR_TICK_MS + 200);
    assert_int_equal(t->l.n, 5);
    /* each found where the binary search looks (a miss would insert it again) */
    const int64_t want[] = {1, 1000, 1500, 2000, 5000};
    int64_t ttl = 0, rem = 0, granted = 0;
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(lessor_remaining(&t->l, want[i], &rem, &granted), 0);
    assert_int_equal(t->l.n, 5);
    assert_int_equal(lessor_renew(&t->l, 1000, &ttl), 0);
    assert_int_equal(ttl, 100);
    assert_int_equal(lessor_remaining(&t->l, 5000, &rem, &granted), 0);
    assert_true(rem >= 99 && granted == 100);
    assert_int_equal(lessor_renew(&t->l, 2, &ttl), CAIRN_E_LEASE_NOT_FOUND);
    assert_int_equal(t->n_applied, 0); /* nothing expired, nothing to checkpoint */
}

/* A leader that loses its leadership stops deciding: an expired lease is not revoked by it. */
static void test_demoted_leader_stops_revoking(void **state)
{
    struct t *t = *state;
    assert_int_equal(grant(t, 7, 1), 0);
    start(t, 1000, 0);
    assert_true(lessor_is_primary(&t->l));
    t->leader = OTHER;
    run_for(t, 2 * LESSOR_TICK_MS + 1500);
    assert_int_equal(t->n_applied, 0);
    assert_true(lease_exists(t, 7, NULL));
    t->leader = SELF; /* leads again: the lease gets its TTL plus an election timeout again */
    int64_t rem, granted;
    assert_int_equal(lessor_remaining(&t->l, 7, &rem, &granted), 0);
    assert_true(rem >= 1);
    run_until(t, !lease_exists(t, 7, NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_apply_grant_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_apply_revoke_deletes_keys_in_one_revision, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_apply_checkpoint_skips_missing_leases, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_leader_revokes_an_expired_lease_through_the_log, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_follower_keeps_no_timers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_renew_and_unknown_lease, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_leader_uses_checkpointed_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoints_of_long_leases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tick_takes_over_the_store_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_demoted_leader_stops_revoking, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
