/* tests/unit/test_fsm.c — the state machine's at-most-once rule (raft/fsm.c), entry by entry.
 *
 * The fsm is driven as libraft drives it (its apply callback, with the raft instance's last applied
 * index one below the entry's), over a temporary store, without a cluster: entries are framed by
 * entry_encode() and carry the requests a test builds. Member 1 is the follower that takes client
 * calls and forwards them, member 2 the leader that proposes them, member 3 a later leader.
 *
 * - A forwarded request applied twice (two entries, or twice in one entry) changes the store once;
 *   the second copy answers "request timed out" with res.duplicate, also when it is a resend.
 * - The follower's waiting call is answered by the first copy, with the put's response.
 * - A resend older than the store's memory of request ids is refused "request timed out" and
 *   changes nothing; one that the memory still covers is applied.
 * - Requests that cannot reach the log twice (the proposer's own, server requests without a
 *   header) are applied as before and not remembered.
 * - entry_encode() sends a proposal marked as resent with resent_after, leaving its request as it
 *   was. */
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "raft/fsm.h"
#include "tests/unit/helpers/fixture.h"

#define FOLLOWER   1
#define LEADER     2
#define NEW_LEADER 3

struct t {
    struct fx *fx;
    struct fsm fsm;
    struct raft raft;             /* only its last_applied is read (raft_last_applied) */
    struct proposal *waiting;     /* what take_one hands out: the follower's call */
    unsigned answered;            /* proposals answered through the hook */
    struct arena a;               /* responses of the waiting call */
    Etcdserverpb__PutRequest put; /* the request the tests send around */
    Cairn__InternalHeader header;
    Cairn__InternalRequest req;
};

static struct proposal *on_take_one(struct fsm *f, const Cairn__InternalRequest *req)
{
    struct t *t = f->data;
    struct proposal *p = t->waiting;
    if (!p || p->req->id != req->id)
        return NULL;
    t->waiting = NULL;
    return p;
}

static void on_answered(struct fsm *f, struct proposal *list, uint64_t index)
{
    struct t *t = f->data;
    for (struct proposal *p = list; p; p = p->next) {
        p->index = index;
        t->answered++;
    }
}

/* The follower's call for t->req, which take_one hands out once. */
static void wait_call(struct t *t, struct proposal *call)
{
    memset(call, 0, sizeof *call);
    call->req = &t->req;
    call->arena = &t->a;
    t->waiting = call;
}

static void on_fatal(struct fsm *f, const char *why)
{
    (void)f;
    fail_msg("the fsm stopped: %s", why);
}

/* The fsm of member `self` over a new store. */
static int setup_as(void **state, uint64_t self)
{
    struct t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->fx = fx_open(NULL);
    assert_int_equal(fsm_init(&t->fsm, t->fx->st, self), 0);
    t->fsm.raft = &t->raft;
    t->fsm.data = t;
    t->fsm.take_one = on_take_one;
    t->fsm.answered = on_answered;
    t->fsm.fatal = on_fatal;
    t->put = (Etcdserverpb__PutRequest)ETCDSERVERPB__PUT_REQUEST__INIT;
    t->put.key = (ProtobufCBinaryData){1, (uint8_t *)"k"};
    t->put.value = (ProtobufCBinaryData){1, (uint8_t *)"v"};
    t->header = (Cairn__InternalHeader)CAIRN__INTERNAL_HEADER__INIT;
    t->header.member_id = FOLLOWER;
    t->req = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
    t->req.id = 0x0001000000000042ull;
    t->req.header = &t->header;
    t->req.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_PUT;
    t->req.put = &t->put;
    *state = t;
    return 0;
}

static int setup(void **state)
{
    return setup_as(state, LEADER);
}

static int setup_follower(void **state)
{
    return setup_as(state, FOLLOWER);
}

static int teardown(void **state)
{
    struct t *t = *state;
    fsm_close(&t->fsm);
    fx_close(t->fx);
    arena_free(&t->a);
    free(t);
    return 0;
}

/* Applies an entry proposed by `member` holding n requests at log index `index`, as libraft
 * does. */
static void apply_at(struct t *t, uint64_t member, uint64_t index, Cairn__InternalRequest **reqs,
                     size_t n)
{
    struct proposal p[4];
    assert_true(n <= 4);
    memset(p, 0, sizeof p);
    for (size_t i = 0; i < n; i++) {
        p[i].req = reqs[i];
        p[i].next = i + 1 < n ? &p[i + 1] : NULL;
    }
    struct raft_buffer buf;
    assert_int_equal(entry_encode(member, 1, &p[0], &buf), 0);
    t->raft.last_applied = index - 1;
    void *result = NULL;
    assert_int_equal(t->fsm.base.apply(&t->fsm.base, &buf, &result), 0);
    raft_free(buf.base);
    assert_true(t->fsm.applied == index);
}

static void apply1(struct t *t, uint64_t member, uint64_t index, Cairn__InternalRequest *req)
{
    apply_at(t, member, index, &req, 1);
}

/* The key's version in the committed store (0: absent), and the store's revision. */
static int64_t version(struct t *t, const char *key)
{
    fsm_commit(&t->fsm, false);
    struct store_kv kv;
    int rc = fx_get(t->fx, key, 0, &kv);
    assert_true(rc >= 0);
    return rc ? kv.version : 0;
}

static int64_t revision(struct t *t)
{
    fsm_commit(&t->fsm, false);
    return fx_rev(t->fx);
}

static bool remembered(struct t *t, uint64_t id)
{
    fsm_commit(&t->fsm, false);
    store_tx *tx;
    assert_int_equal(store_tx_begin_read(t->fx->st, &tx), 0);
    bool seen = false;
    assert_int_equal(store_request_seen(tx, id, &seen), 0);
    store_tx_end(tx);
    return seen;
}

static void test_second_copy_changes_nothing(void **state)
{
    struct t *t = *state;
    apply1(t, LEADER, 5, &t->req);
    assert_int_equal(version(t, "k"), 1);
    int64_t rev = revision(t);
    assert_true(remembered(t, t->req.id));

    /* the same request again, from a later leader (the follower sent it again) */
    Cairn__InternalRequest again = t->req;
    again.resent_after = 3;
    apply1(t, NEW_LEADER, 6, &again);
    /* and once more as the leader got it first */
    apply1(t, LEADER, 7, &t->req);
    assert_int_equal(version(t, "k"), 1);
    assert_int_equal(revision(t), rev);
    assert_true(t->fsm.applied == 7);

    /* twice in one entry: once */
    Cairn__InternalRequest other = t->req;
    other.id++;
    Cairn__InternalRequest *both[] = {&other, &other};
    apply_at(t, LEADER, 8, both, 2);
    assert_int_equal(version(t, "k"), 2);
    assert_int_equal(revision(t), rev + 1);
}

static void test_follower_answered_by_first_copy(void **state)
{
    struct t *t = *state;
    struct proposal call;
    wait_call(t, &call);
    apply1(t, LEADER, 5, &t->req);
    assert_int_equal(t->answered, 1);
    assert_true(call.index == 5);
    assert_int_equal(call.res.err, 0);
    assert_false(call.res.duplicate);
    assert_non_null(call.res.put);

    /* a copy applied while a call still waits for it (the first copy went unnoticed here) is
     * answered "request timed out": its result is not known */
    struct proposal late;
    wait_call(t, &late);
    Cairn__InternalRequest again = t->req;
    again.resent_after = 4;
    apply1(t, NEW_LEADER, 6, &again);
    assert_int_equal(t->answered, 2);
    assert_true(late.res.duplicate);
    assert_int_equal(late.res.err, CAIRN_E_TIMEOUT);
    assert_null(late.res.put);
    assert_int_equal(version(t, "k"), 1);
}

static void test_resend_beyond_memory_refused(void **state)
{
    struct t *t = *state;
    /* the store forgot the ids applied up to index 50 */
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(t->fx->st, &tx), 0);
    assert_int_equal(store_request_record(tx, 77, 50, 0), 0);
    assert_int_equal(store_tx_commit(tx, false), 0);
    int64_t rev = revision(t);

    struct proposal call;
    wait_call(t, &call);
    Cairn__InternalRequest resend = t->req;
    resend.resent_after = 49; /* a first copy at index 50 would have been forgotten */
    apply1(t, NEW_LEADER, 60, &resend);
    assert_int_equal(t->answered, 1);
    assert_int_equal(call.res.err, CAIRN_E_TIMEOUT);
    assert_false(call.res.duplicate);
    assert_int_equal(version(t, "k"), 0);
    assert_int_equal(revision(t), rev);
    assert_false(remembered(t, t->req.id));

    /* first sent after index 50: every copy lies after it, all remembered */
    resend.resent_after = 50;
    apply1(t, NEW_LEADER, 61, &resend);
    assert_int_equal(version(t, "k"), 1);
    assert_true(remembered(t, t->req.id));
    /* a first send is not refused by the memory's reach, and its second copy is dropped */
    apply1(t, LEADER, 62, &t->req);
    assert_int_equal(version(t, "k"), 1);
}

static void test_untracked_requests_unchanged(void **state)
{
    struct t *t = *state;
    /* the leader's own client call, proposed by it: not forwarded, cannot come twice */
    t->header.member_id = LEADER;
    apply1(t, LEADER, 5, &t->req);
    apply1(t, LEADER, 6, &t->req);
    assert_int_equal(version(t, "k"), 2);
    assert_false(remembered(t, t->req.id));
    /* the server's own requests carry no header */
    Cairn__InternalRequest own = t->req;
    own.header = NULL;
    apply1(t, LEADER, 7, &own);
    assert_int_equal(version(t, "k"), 3);
    assert_false(remembered(t, own.id));
}

static void test_resent_proposal_encoded(void **state)
{
    (void)state;
    Cairn__InternalRequest req = CAIRN__INTERNAL_REQUEST__INIT;
    Cairn__InternalRequest req2 = CAIRN__INTERNAL_REQUEST__INIT;
    req.id = 5;
    req2.id = 6;
    struct proposal p[2];
    memset(p, 0, sizeof p);
    p[0].req = &req;
    p[0].forwarded_after = 9;
    p[0].resent = true;
    p[0].next = &p[1];
    p[1].req = &req2;
    p[1].forwarded_after = 9; /* forwarded once, never resent: a first send */
    struct raft_buffer buf;
    assert_int_equal(entry_encode(FOLLOWER, 1, &p[0], &buf), 0);
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--)
        len = len << 8 | ((const uint8_t *)buf.base)[i];
    Cairn__Entry *e = cairn__entry__unpack(NULL, len, (const uint8_t *)buf.base + 8);
    assert_non_null(e);
    assert_int_equal(e->n_requests, 2);
    assert_true(e->requests[0]->id == 5 && e->requests[0]->resent_after == 9);
    assert_true(e->requests[1]->id == 6 && e->requests[1]->resent_after == 0);
    assert_true(req.resent_after == 0); /* the caller's request is as it was */
    cairn__entry__free_unpacked(e, NULL);
    raft_free(buf.base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_second_copy_changes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_follower_answered_by_first_copy, setup_follower,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resend_beyond_memory_refused, setup_follower,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_untracked_requests_unchanged, setup, teardown),
        cmocka_unit_test(test_resent_proposal_encoded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
