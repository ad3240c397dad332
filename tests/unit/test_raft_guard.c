/* tests/unit/test_raft_guard.c — raft/guard.c's receiving side, message by message.
 *
 * The seeded fixture runs (test_raft_fixture.c) exercise the guard inside whole clusters, but its
 * InstallSnapshot drop needs a snapshot to arrive while the member takes one of its own, which the
 * default seeds do not produce. Here each rule meets the exact state it is about: a libraft
 * instance is not started, only the fields the guard reads are set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/guard.h"

#define ELECTION_TIMEOUT 1000

struct guard_case {
    struct raft_io io;
    raft_time now;
    struct raft r;
    struct raft_guard g;
};

/* libraft's allocator, counting the blocks outstanding: what the guard drops, it must free. */
static long live_blocks;

static void *count_malloc(void *data, size_t size)
{
    (void)data;
    live_blocks++;
    return malloc(size);
}

static void count_free(void *data, void *ptr)
{
    (void)data;
    if (ptr)
        live_blocks--;
    free(ptr);
}

static void *count_calloc(void *data, size_t nmemb, size_t size)
{
    (void)data;
    live_blocks++;
    return calloc(nmemb, size);
}

static void *count_realloc(void *data, void *ptr, size_t size)
{
    (void)data;
    if (!ptr)
        live_blocks++;
    return realloc(ptr, size);
}

static void *count_aligned_alloc(void *data, size_t alignment, size_t size)
{
    (void)data;
    live_blocks++;
    return aligned_alloc(alignment, (size + alignment - 1) / alignment * alignment);
}

static void count_aligned_free(void *data, size_t alignment, void *ptr)
{
    (void)data;
    (void)alignment;
    if (ptr)
        live_blocks--;
    free(ptr);
}

static struct raft_heap counting_heap = {
    NULL,          count_malloc,        count_free,        count_calloc,
    count_realloc, count_aligned_alloc, count_aligned_free};

static raft_time fake_time(struct raft_io *io)
{
    struct guard_case *c = (struct guard_case *)((char *)io - offsetof(struct guard_case, io));
    return c->now;
}

/* A follower of leader 2 at time 50,000, having heard from it at 49,500. */
static int setup(void **state)
{
    struct guard_case *c = test_calloc(1, sizeof *c);
    c->io.time = fake_time;
    c->now = 50000;
    c->r.io = &c->io;
    c->r.state = RAFT_FOLLOWER;
    c->r.election_timeout = ELECTION_TIMEOUT;
    c->r.random = 12345;
    c->r.follower_state.current_leader.id = 2;
    c->g.leader_heard = 49500;
    live_blocks = 0;
    raft_heap_set(&counting_heap);
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    raft_heap_set_default();
    test_free(*state);
    return 0;
}

/* An InstallSnapshot as libraft's receive path hands it over: configuration and data allocated. */
static struct raft_message install_snapshot(void)
{
    struct raft_message m = {.type = RAFT_INSTALL_SNAPSHOT, .server_id = 2};
    m.install_snapshot.term = 3;
    m.install_snapshot.last_index = 100;
    m.install_snapshot.last_term = 3;
    raft_configuration_init(&m.install_snapshot.conf);
    assert_int_equal(raft_configuration_add(&m.install_snapshot.conf, 1, "127.0.0.1:1", RAFT_VOTER),
                     0);
    assert_int_equal(raft_configuration_add(&m.install_snapshot.conf, 2, "127.0.0.1:2", RAFT_VOTER),
                     0);
    m.install_snapshot.data.len = 4096;
    m.install_snapshot.data.base = raft_malloc(m.install_snapshot.data.len);
    assert_non_null(m.install_snapshot.data.base);
    memset(m.install_snapshot.data.base, 's', m.install_snapshot.data.len);
    return m;
}

/* While the member takes its own snapshot, an InstallSnapshot is dropped (as if lost on the way)
 * and freed, every block of it. It does not count as hearing from the leader. */
static void test_install_snapshot_dropped_while_taking_snapshot(void **state)
{
    struct guard_case *c = *state;
    c->r.legacy.snapshot_taking = true;
    struct raft_message m = install_snapshot();
    assert_true(live_blocks > 0);
    assert_false(raft_guard_recv(&c->g, &c->r, &m));
    assert_int_equal(c->g.held_off, 1);
    assert_int_equal(c->g.leader_heard, 49500);
    assert_int_equal(live_blocks, 0);

    m = install_snapshot();
    assert_false(raft_guard_recv(&c->g, &c->r, &m));
    assert_int_equal(c->g.held_off, 2);
    assert_int_equal(live_blocks, 0);
}

/* Otherwise it passes untouched, and the leader was heard. */
static void test_install_snapshot_passes_otherwise(void **state)
{
    struct guard_case *c = *state;
    struct raft_message m = install_snapshot();
    void *data = m.install_snapshot.data.base;
    assert_true(raft_guard_recv(&c->g, &c->r, &m));
    assert_int_equal(c->g.held_off, 0);
    assert_int_equal(c->g.leader_heard, 50000);
    assert_ptr_equal(m.install_snapshot.data.base, data);
    assert_int_equal(m.install_snapshot.data.len, 4096);
    assert_int_equal(m.install_snapshot.conf.n, 2);
    assert_int_equal(m.install_snapshot.last_index, 100);
    assert_true(live_blocks > 0);
    raft_configuration_close(&m.install_snapshot.conf);
    raft_free(m.install_snapshot.data.base);
    assert_int_equal(live_blocks, 0);
}

static bool vote_disrupts(struct guard_case *c)
{
    struct raft_message m = {.type = RAFT_REQUEST_VOTE, .server_id = 3};
    m.request_vote.term = 4;
    m.request_vote.candidate_id = 3;
    assert_true(raft_guard_recv(&c->g, &c->r, &m));
    return m.request_vote.disrupt_leader;
}

/* The thesis' rule: a vote request may disrupt the leader only once the follower has not heard
 * from it for a whole election timeout; within it, libraft's refusal stands. */
static void test_vote_disrupts_a_silent_leader_only(void **state)
{
    struct guard_case *c = *state;
    c->g.leader_heard = c->now - (ELECTION_TIMEOUT - 1);
    assert_false(vote_disrupts(c));
    c->g.leader_heard = c->now - ELECTION_TIMEOUT;
    assert_true(vote_disrupts(c));
    c->g.leader_heard = c->now - 10 * ELECTION_TIMEOUT;
    assert_true(vote_disrupts(c));

    /* no leader believed in, or not a follower: nothing to disrupt, the request is as sent */
    c->r.follower_state.current_leader.id = 0;
    assert_false(vote_disrupts(c));
    c->r.follower_state.current_leader.id = 2;
    c->r.state = RAFT_CANDIDATE;
    assert_false(vote_disrupts(c));
}

/* Appends, snapshots and TimeoutNow count as hearing from the leader; a vote request does not. */
static void test_leader_heard_from_leader_messages(void **state)
{
    struct guard_case *c = *state;
    struct raft_message m = {.type = RAFT_APPEND_ENTRIES, .server_id = 2};
    c->now = 60000;
    assert_true(raft_guard_recv(&c->g, &c->r, &m));
    assert_int_equal(c->g.leader_heard, 60000);
    c->now = 61000;
    assert_true(vote_disrupts(c));
    assert_int_equal(c->g.leader_heard, 60000);
    m = (struct raft_message){.type = RAFT_TIMEOUT_NOW, .server_id = 2};
    assert_true(raft_guard_recv(&c->g, &c->r, &m));
    assert_int_equal(c->g.leader_heard, 61000);
    assert_false(vote_disrupts(c));
}

/* Every append to a follower draws a new randomized election timeout in [timeout, 2 × timeout),
 * as libraft draws one; the draws vary. A candidate's timeout is left alone. */
static void test_append_redraws_election_timeout(void **state)
{
    struct guard_case *c = *state;
    unsigned lo = ELECTION_TIMEOUT * 2, hi = 0;
    for (int i = 0; i < 200; i++) {
        c->r.follower_state.randomized_election_timeout = 0;
        struct raft_message m = {.type = RAFT_APPEND_ENTRIES, .server_id = 2};
        assert_true(raft_guard_recv(&c->g, &c->r, &m));
        unsigned t = c->r.follower_state.randomized_election_timeout;
        assert_true(t >= ELECTION_TIMEOUT && t <= 2 * ELECTION_TIMEOUT);
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    assert_true(hi - lo > ELECTION_TIMEOUT / 2);

    c->r.state = RAFT_CANDIDATE;
    c->r.candidate_state.randomized_election_timeout = 1234;
    struct raft_message m = {.type = RAFT_APPEND_ENTRIES, .server_id = 2};
    assert_true(raft_guard_recv(&c->g, &c->r, &m));
    assert_int_equal(c->r.candidate_state.randomized_election_timeout, 1234);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_install_snapshot_dropped_while_taking_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_install_snapshot_passes_otherwise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vote_disrupts_a_silent_leader_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_heard_from_leader_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_redraws_election_timeout, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
