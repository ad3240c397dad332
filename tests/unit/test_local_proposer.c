/* tests/unit/test_local_proposer.c — the single-member proposer: the proposals of one loop turn
 * share one durable commit, each takes the next index, all are answered after it; close applies
 * what is queued. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "raft/local.h"
#include "tests/unit/helpers/fixture.h"

struct req {
    struct proposal p;
    Cairn__InternalRequest ir;
    Etcdserverpb__PutRequest put;
    struct arena a;
    char key[16];
    int answered; /* 1 + order of the answer among all events */
    int err;
};

struct t {
    struct fx *f;
    uv_loop_t loop;
    struct local_proposer lp;
    int events; /* answers and read callbacks, in order */
    bool closed;
};

static struct t *T;

static void on_answer(struct proposal *p, int err)
{
    struct req *r = p->data;
    r->answered = ++T->events;
    r->err = err;
}

static void req_init(struct req *r, const char *key)
{
    memset(r, 0, sizeof *r);
    snprintf(r->key, sizeof r->key, "%s", key);
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    r->put = put;
    r->put.key = (ProtobufCBinaryData){strlen(r->key), (uint8_t *)r->key};
    r->put.value = (ProtobufCBinaryData){1, (uint8_t *)"v"};
    Cairn__InternalRequest ir = CAIRN__INTERNAL_REQUEST__INIT;
    r->ir = ir;
    r->ir.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_PUT;
    r->ir.put = &r->put;
    r->p.req = &r->ir;
    r->p.cb = on_answer;
    r->p.data = r;
    r->p.arena = &r->a;
}

static void propose(struct req *r)
{
    assert_int_equal(proposer_propose(&T->lp.base, &r->p), 0);
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    t->f = fx_open(NULL);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    assert_int_equal(local_proposer_init(&t->lp, &t->loop, t->f->st), 0);
    T = t;
    *state = t;
    return 0;
}

static void on_closed(struct local_proposer *lp)
{
    (void)lp;
    T->closed = true;
}

static int teardown(void **state)
{
    struct t *t = *state;
    if (!t->closed) {
        local_proposer_close(&t->lp, on_closed);
        while (!t->closed)
            uv_run(&t->loop, UV_RUN_ONCE);
    }
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    fx_close(t->f);
    free(t);
    return 0;
}

/* Proposals of one turn share one commit; each takes the next index and revision, and all are
 * answered in that turn, never from inside propose. */
static void test_batch_of_one_turn(void **state)
{
    struct t *t = *state;
    struct req r[3];
    for (int i = 0; i < 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        req_init(&r[i], k);
        propose(&r[i]);
    }
    assert_int_equal(r[0].answered, 0);
    assert_int_equal(fx_rev(t->f), 1); /* nothing applied before the loop turns */
    uv_run(&t->loop, UV_RUN_NOWAIT);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].answered, i + 1); /* in proposal order */
        assert_int_equal(r[i].err, 0);
        assert_int_equal(r[i].p.index, (uint64_t)i + 1);
        assert_int_equal(r[i].p.res.put->header->revision, i + 2);
        arena_free(&r[i].a);
    }
    assert_int_equal(fx_rev(t->f), 4);
    assert_int_equal(t->lp.base.applied_index(&t->lp.base), 3);
}

/* An etcd error of one request (a put with ignore_value on a missing key) fails only it. */
static void test_request_error_in_batch(void **state)
{
    struct t *t = *state;
    struct req ok, bad;
    req_init(&ok, "a");
    req_init(&bad, "missing");
    bad.put.ignore_value = true;
    bad.put.value = (ProtobufCBinaryData){0, NULL};
    propose(&ok);
    propose(&bad);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    assert_int_equal(ok.err, 0);
    assert_int_equal(bad.err, 0);                           /* applied... */
    assert_int_equal(bad.p.res.err, CAIRN_E_KEY_NOT_FOUND); /* ...with its etcd error */
    assert_int_equal(ok.p.res.put->header->revision, 2);
    assert_int_equal(fx_rev(t->f), 2);
    arena_free(&ok.a);
    arena_free(&bad.a);
}

/* The applied index survives a restart: it is the store's consistent index. */
static void test_index_after_restart(void **state)
{
    struct t *t = *state;
    struct req r;
    req_init(&r, "x");
    propose(&r);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    arena_free(&r.a);
    local_proposer_close(&t->lp, on_closed);
    while (!t->closed)
        uv_run(&t->loop, UV_RUN_ONCE);
    fx_reopen(t->f, NULL);
    t->closed = false;
    assert_int_equal(local_proposer_init(&t->lp, &t->loop, t->f->st), 0);
    assert_int_equal(t->lp.base.applied_index(&t->lp.base), 1);
    req_init(&r, "y");
    propose(&r);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    assert_int_equal(r.p.index, 2);
    arena_free(&r.a);
}

/* Closing applies and answers what is queued; afterwards proposals are refused. */
static void test_close_applies_queue(void **state)
{
    struct t *t = *state;
    struct req a;
    req_init(&a, "q");
    propose(&a);
    local_proposer_close(&t->lp, on_closed);
    assert_int_not_equal(a.answered, 0);
    assert_int_equal(a.err, 0);
    struct req b;
    req_init(&b, "r");
    assert_int_equal(proposer_propose(&t->lp.base, &b.p), CAIRN_E_INTERNAL);
    while (!t->closed)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(fx_rev(t->f), 2);
    arena_free(&a.a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_of_one_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_error_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_index_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_applies_queue, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
