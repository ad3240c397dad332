/* tests/unit/test_raft_guard.c — raft/guard.c's receiving side and its vote resends, message by
 * message.
 *
 * The seeded fixture runs (test_raft_fixture.c) exercise the guard inside whole clusters, but its
 * InstallSnapshot drop needs a snapshot to arrive while the member takes one of its own, which the
 * default seeds do not produce, and the vote resends run only in a member (on a timer, over TCP).
 * Here each rule meets the exact state it is about: a libraft instance is not started, only the
 * fields the guard reads are set, and the resend calls the timer would make are made by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/guard.h"

#define ELECTION_TIMEOUT 1000

struct guard_case {
    struct raft_io io;
    raft_time now;
    struct raft r;
    struct guard g;
    raft_index applied; /* the store's index the guard is given */
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
    assert_false(guard_recv(&c->g, &c->r, c->applied, &m));
    assert_int_equal(c->g.held_off, 1);
    assert_int_equal(c->g.leader_heard, 49500);
    assert_int_equal(live_blocks, 0);

    m = install_snapshot();
    assert_false(guard_recv(&c->g, &c->r, c->applied, &m));
    assert_int_equal(c->g.held_off, 2);
    assert_int_equal(live_blocks, 0);
}

/* Otherwise it passes untouched, and the leader was heard. */
static void test_install_snapshot_passes_otherwise(void **state)
{
    struct guard_case *c = *state;
    struct raft_message m = install_snapshot();
    void *data = m.install_snapshot.data.base;
    assert_true(guard_recv(&c->g, &c->r, c->applied, &m));
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
    assert_true(guard_recv(&c->g, &c->r, c->applied, &m));
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

/* A candidate whose log ends below the store's index lacks committed entries: its vote request
 * (and pre-vote) is dropped, whatever the member's own log holds; from that index on it passes. */
static void test_vote_from_candidate_without_applied_entries_dropped(void **state)
{
    struct guard_case *c = *state;
    c->applied = 84;
    c->r.follower_state.current_leader.id = 0;
    for (int pre = 0; pre <= 1; pre++) {
        struct raft_message m = {.type = RAFT_REQUEST_VOTE, .server_id = 3};
        m.request_vote.term = 5;
        m.request_vote.candidate_id = 3;
        m.request_vote.pre_vote = pre;
        m.request_vote.last_log_index = 83;
        m.request_vote.last_log_term = 9; /* a later term does not make up for the entries */
        assert_false(guard_recv(&c->g, &c->r, c->applied, &m));
        m.request_vote.last_log_index = 84;
        assert_true(guard_recv(&c->g, &c->r, c->applied, &m));
    }
}

/* Appends, snapshots and TimeoutNow count as hearing from the leader; a vote request does not. */
static void test_leader_heard_from_leader_messages(void **state)
{
    struct guard_case *c = *state;
    struct raft_message m = {.type = RAFT_APPEND_ENTRIES, .server_id = 2};
    c->now = 60000;
    assert_true(guard_recv(&c->g, &c->r, c->applied, &m));
    assert_int_equal(c->g.leader_heard, 60000);
    c->now = 61000;
    assert_true(vote_disrupts(c));
    assert_int_equal(c->g.leader_heard, 60000);
    m = (struct raft_message){.type = RAFT_TIMEOUT_NOW, .server_id = 2};
    assert_true(guard_recv(&c->g, &c->r, c->applied, &m));
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
        assert_true(guard_recv(&c->g, &c->r, c->applied, &m));
        unsigned t = c->r.follower_state.randomized_election_timeout;
        assert_true(t >= ELECTION_TIMEOUT && t <= 2 * ELECTION_TIMEOUT);
        lo = t < lo ? t : lo;
        hi = t > hi ? t : hi;
    }
    assert_true(hi - lo > ELECTION_TIMEOUT / 2);

    c->r.state = RAFT_CANDIDATE;
    c->r.candidate_state.randomized_election_timeout = 1234;
    struct raft_message m = {.type = RAFT_APPEND_ENTRIES, .server_id = 2};
    assert_true(guard_recv(&c->g, &c->r, c->applied, &m));
    assert_int_equal(c->r.candidate_state.randomized_election_timeout, 1234);
}

/* ---- vote resends ---------------------------------------------------------------------------- */

/* What guard_votes_resend() sent, in order. */
struct sent_log {
    raft_id to[64];
    char address[64][32];
    bool pre_vote[64];
    raft_term term[64];
    size_t n;
};

static void log_send(void *ctx, const struct raft_message *msg)
{
    struct sent_log *l = ctx;
    assert_int_equal(msg->type, RAFT_REQUEST_VOTE);
    assert_true(l->n < 64);
    l->to[l->n] = msg->server_id;
    snprintf(l->address[l->n], sizeof l->address[l->n], "%s", msg->server_address);
    l->pre_vote[l->n] = msg->request_vote.pre_vote;
    l->term[l->n] = msg->request_vote.term;
    l->n++;
}

/* A candidate in its vote phase at term 7 (a pre-vote asks for term 8 while at 7). */
static void become_candidate(struct guard_case *c, bool pre_vote)
{
    c->r.state = RAFT_CANDIDATE;
    c->r.current_term = 7;
    c->r.candidate_state.in_pre_vote = pre_vote;
}

/* The vote request r would send to peer id for the election it runs now. */
static struct raft_message vote_request(struct guard_case *c, raft_id id)
{
    static char address[32];
    snprintf(address, sizeof address, "127.0.0.1:%u", (unsigned)(7000 + id));
    struct raft_message m = {.type = RAFT_REQUEST_VOTE, .server_id = id, .server_address = address};
    m.request_vote.pre_vote = c->r.candidate_state.in_pre_vote;
    m.request_vote.term = c->r.current_term + (m.request_vote.pre_vote ? 1 : 0);
    m.request_vote.candidate_id = 1;
    return m;
}

static struct raft_message vote_answer(raft_id from, bool pre_vote)
{
    struct raft_message m = {.type = RAFT_REQUEST_VOTE_RESULT, .server_id = from};
    m.request_vote_result.term = 7;
    m.request_vote_result.vote_granted = true;
    m.request_vote_result.pre_vote = pre_vote;
    return m;
}

/* Unanswered requests are sent again, each exactly GUARD_VOTE_RESENDS times, to the peer and the
 * address they were first sent to; then the resends stop. */
static void test_votes_resent_until_the_limit(void **state)
{
    struct guard_case *c = *state;
    struct guard_votes v = {0};
    struct sent_log l = {0};
    become_candidate(c, false);
    for (raft_id id = 2; id <= 3; id++) {
        struct raft_message m = vote_request(c, id);
        assert_true(guard_vote_sent(&v, &m));
    }
    for (unsigned round = 1; round <= GUARD_VOTE_RESENDS; round++)
        assert_int_equal(guard_votes_resend(&v, &c->r, log_send, &l), round < GUARD_VOTE_RESENDS);
    assert_int_equal(l.n, 2 * GUARD_VOTE_RESENDS);
    for (size_t i = 0; i < l.n; i++) {
        raft_id to = i % 2 ? 3 : 2;
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)(7000 + to));
        assert_int_equal(l.to[i], to);
        assert_string_equal(l.address[i], want); /* its own copy: the caller's buffer was reused */
        assert_false(l.pre_vote[i]);
        assert_int_equal(l.term[i], 7);
    }
    assert_false(guard_votes_resend(&v, &c->r, log_send, &l));
    assert_int_equal(l.n, 2 * GUARD_VOTE_RESENDS);
    guard_votes_close(&v);
}

/* An answer ends its request's resends; the others go on. An answer to the pre-vote does not end
 * the vote's, and other messages from the peer end nothing. */
static void test_votes_answered_are_not_resent(void **state)
{
    struct guard_case *c = *state;
    struct guard_votes v = {0};
    struct sent_log l = {0};
    become_candidate(c, false);
    for (raft_id id = 2; id <= 4; id++) {
        struct raft_message m = vote_request(c, id);
        assert_true(guard_vote_sent(&v, &m));
    }
    struct raft_message m = vote_answer(2, false);
    guard_vote_received(&v, &m);
    m = vote_answer(3, true); /* a late answer to the pre-vote */
    guard_vote_received(&v, &m);
    m = (struct raft_message){.type = RAFT_APPEND_ENTRIES_RESULT, .server_id = 4};
    guard_vote_received(&v, &m);
    assert_true(guard_votes_resend(&v, &c->r, log_send, &l));
    assert_int_equal(l.n, 2);
    assert_int_equal(l.to[0], 3);
    assert_int_equal(l.to[1], 4);

    m = vote_answer(3, false);
    guard_vote_received(&v, &m);
    m = vote_answer(4, false);
    guard_vote_received(&v, &m);
    assert_false(guard_votes_resend(&v, &c->r, log_send, &l));
    assert_int_equal(l.n, 2);
    guard_votes_close(&v);
}

/* Requests of an election that is over are never sent again: the candidate won, stepped down,
 * moved on to a later term, or passed from its pre-vote to its vote. */
static void test_votes_of_an_ended_election_are_dropped(void **state)
{
    struct guard_case *c = *state;
    const int ends[] = {RAFT_LEADER, RAFT_FOLLOWER, 0, 1};
    for (size_t k = 0; k < sizeof ends / sizeof ends[0]; k++) {
        struct guard_votes v = {0};
        struct sent_log l = {0};
        become_candidate(c, ends[k] == 1);
        struct raft_message m = vote_request(c, 2);
        assert_true(guard_vote_sent(&v, &m));
        assert_true(guard_votes_resend(&v, &c->r, log_send, &l));
        assert_int_equal(l.n, 1);
        if (ends[k] == 0)
            c->r.current_term++; /* timed out: a new election at the next term */
        else if (ends[k] == 1)
            c->r.candidate_state.in_pre_vote = false; /* the pre-vote won */
        else
            c->r.state = ends[k];
        assert_false(guard_votes_resend(&v, &c->r, log_send, &l));
        assert_int_equal(l.n, 1);

        /* and it stays dropped if the same election state comes back */
        become_candidate(c, ends[k] == 1);
        assert_false(guard_votes_resend(&v, &c->r, log_send, &l));
        assert_int_equal(l.n, 1);
        guard_votes_close(&v);
    }
}

/* A new request to a peer replaces the older one and starts its count again; a pre-vote is sent
 * again with the pre-vote's term. */
static void test_votes_new_request_replaces_older(void **state)
{
    struct guard_case *c = *state;
    struct guard_votes v = {0};
    struct sent_log l = {0};
    become_candidate(c, true);
    struct raft_message m = vote_request(c, 2);
    assert_true(guard_vote_sent(&v, &m));
    for (unsigned i = 0; i < GUARD_VOTE_RESENDS - 1; i++)
        assert_true(guard_votes_resend(&v, &c->r, log_send, &l));
    assert_true(l.pre_vote[0]);
    assert_int_equal(l.term[0], 8);

    c->r.candidate_state.in_pre_vote = false;
    m = vote_request(c, 2);
    assert_true(guard_vote_sent(&v, &m));
    l.n = 0;
    for (unsigned round = 1; round <= GUARD_VOTE_RESENDS; round++)
        assert_int_equal(guard_votes_resend(&v, &c->r, log_send, &l), round < GUARD_VOTE_RESENDS);
    assert_int_equal(l.n, GUARD_VOTE_RESENDS);
    assert_false(l.pre_vote[0]);
    assert_int_equal(l.term[0], 7);
    assert_int_equal(v.n, 1);
    guard_votes_close(&v);
    assert_null(v.list);
    assert_int_equal(v.n, 0);
}

/* More peers than the first allocation holds: each is remembered and sent again once a round, to
 * its own address (the list moved as it grew; under ASan a pointer into the old one fails). */
static void test_votes_many_peers(void **state)
{
    struct guard_case *c = *state;
    struct guard_votes v = {0};
    struct sent_log l = {0};
    become_candidate(c, false);
    for (raft_id id = 2; id <= 21; id++) {
        struct raft_message m = vote_request(c, id);
        assert_true(guard_vote_sent(&v, &m));
    }
    assert_int_equal(v.n, 20);
    assert_true(guard_votes_resend(&v, &c->r, log_send, &l));
    assert_int_equal(l.n, 20);
    for (size_t i = 0; i < l.n; i++) {
        char want[32];
        snprintf(want, sizeof want, "127.0.0.1:%u", (unsigned)(7000 + i + 2));
        assert_int_equal(l.to[i], i + 2);
        assert_string_equal(l.address[i], want); /* also of the entries made before it grew */
    }
    guard_votes_close(&v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_install_snapshot_dropped_while_taking_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_install_snapshot_passes_otherwise, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vote_disrupts_a_silent_leader_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_vote_from_candidate_without_applied_entries_dropped,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_leader_heard_from_leader_messages, setup, teardown),
        cmocka_unit_test_setup_teardown(test_append_redraws_election_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_votes_resent_until_the_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_votes_answered_are_not_resent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_votes_of_an_ended_election_are_dropped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_votes_new_request_replaces_older, setup, teardown),
        cmocka_unit_test_setup_teardown(test_votes_many_peers, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
