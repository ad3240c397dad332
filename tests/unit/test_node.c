/* tests/unit/test_node.c — a member on libraft (raft/node.c): the proposals of one loop turn
 * travel as one log entry and are answered together; the store commits behind the log and reads
 * on the loop see what is applied; a restart, clean or as after a crash, finds the data again from
 * the store and the log; snapshots; compactions answered once their history is gone; closing;
 * waiting for a leader.
 *
 * Most tests run one member, bootstrapped with itself as its only peer, on 127.0.0.1 and a free
 * port, over a temporary store and a temporary raft directory. Everything runs on the test's own
 * loop, which the test turns until the callbacks it waits for arrive (at most MAX_TURNS turns). */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "raft/node.h"
#include "tests/unit/helpers/fixture.h"

#define SELF        0x1234 /* the first member's id; the second is SELF + 1 */
#define MAX_MEMBERS 2
#define MAX_REQS    64   /* proposals one test makes */
#define MAX_TURNS   5000 /* loop turns a test waits for something before it fails */
#define HUGE_MS     (3600u * 1000u)

struct t;

/* One member: its store, its raft directory and address, its node. */
struct member {
    struct t *t;
    uint64_t id;
    struct fx *f;       /* the store */
    char raft_dir[256]; /* libraft's directory */
    char address[32];   /* 127.0.0.1:<free port> */
    struct node n;
    bool running; /* n started and not closed yet */
    bool closed;  /* node_close's callback ran */
};

/* One proposal with its request and its answer. */
struct req {
    struct t *t;
    struct member *m; /* proposed to */
    struct proposal p;
    Cairn__InternalRequest ir;
    Etcdserverpb__PutRequest put;
    Etcdserverpb__CompactionRequest compaction;
    struct arena a;
    char key[32];
    char value[32];
    int calls;       /* how many times cb ran */
    int answered;    /* order of the (first) answer among the test's answers; 0 while waiting */
    int err;         /* cb's err */
    unsigned turn;   /* loop turn the answer came in */
    bool compacting; /* the node still had compaction steps to run at the answer */
};

struct t {
    uv_loop_t loop; /* the test's own loop */
    struct member m[MAX_MEMBERS];
    size_t n_members; /* prepared members */
    unsigned turns;   /* loop turns so far */
    int answers;      /* proposals answered so far */
    struct req reqs[MAX_REQS];
    size_t n_reqs;
};

/* Turns the loop until cond holds, failing the test after MAX_TURNS turns. */
#define run_until(t, cond)                                 \
    do {                                                   \
        unsigned waited_ = 0;                              \
        while (!(cond)) {                                  \
            if (++waited_ > MAX_TURNS)                     \
                fail_msg("gave up waiting for %s", #cond); \
            turn(t);                                       \
        }                                                  \
    } while (0)

static void turn(struct t *t)
{
    uv_run(&t->loop, UV_RUN_ONCE);
    t->turns++;
}

/* A port nothing listens on now: libraft takes its address as host:port, so port 0 would not do. */
static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Prepares the next member: a store, a raft directory, an address. */
static struct member *member_add(struct t *t)
{
    assert_true(t->n_members < MAX_MEMBERS);
    struct member *m = &t->m[t->n_members++];
    m->t = t;
    m->id = SELF + (t->n_members - 1);
    m->f = fx_open(NULL);
    const char *tmp = getenv("TMPDIR");
    snprintf(m->raft_dir, sizeof m->raft_dir, "%s/cairn-raft-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(m->raft_dir));
    snprintf(m->address, sizeof m->address, "127.0.0.1:%d", free_port());
    return m;
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    assert_non_null(t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    *state = t;
    member_add(t);
    return 0;
}

static void on_closed(struct node *n)
{
    struct member *m = (struct member *)((char *)n - offsetof(struct member, n));
    m->closed = true;
}

/* node_close, then the loop until its callback. */
static void close_node(struct member *m)
{
    m->closed = false;
    m->running = false;
    node_close(&m->n, on_closed);
    run_until(m->t, m->closed);
}

static int teardown(void **state)
{
    struct t *t = *state;
    bool closed = true;
    for (size_t i = 0; i < t->n_members; i++) {
        struct member *m = &t->m[i];
        if (!m->running)
            continue;
        m->closed = m->running = false;
        node_close(&m->n, on_closed);
        for (unsigned k = 0; k < MAX_TURNS && !m->closed; k++)
            turn(t);
        closed = closed && m->closed;
    }
    for (unsigned k = 0; k < MAX_TURNS && uv_loop_alive(&t->loop); k++)
        uv_run(&t->loop, UV_RUN_NOWAIT);
    int loop_rc = uv_loop_close(&t->loop);
    for (size_t i = 0; i < t->n_reqs; i++)
        arena_free(&t->reqs[i].a);
    for (size_t i = 0; i < t->n_members; i++) {
        fx_close(t->m[i].f);
        fx_rmtree(t->m[i].raft_dir);
    }
    free(t);
    assert_true(closed);
    assert_int_equal(loop_rc, 0);
    return 0;
}

/* The node must not return from its fatal hook; in a test that is a crash with the reason. */
static void on_fatal(struct node *n, const char *why)
{
    (void)n;
    fprintf(stderr, "test_node: node fatal: %s\n", why);
    abort();
}

/* etcd's defaults, then a bootstrapped voter with short timeouts, its only peer itself. */
static struct node_options options(struct member *m)
{
    struct node_options o;
    node_options_default(&o);
    o.id = m->id;
    o.address = m->address;
    o.dir = m->raft_dir;
    o.peers[0].id = m->id;
    snprintf(o.peers[0].address, sizeof o.peers[0].address, "%s", m->address);
    o.n_peers = 1;
    o.bootstrap = true;
    o.election_ms = 50;
    o.heartbeat_ms = 10;
    return o;
}

/* options(), with every prepared member in the initial cluster. */
static struct node_options cluster_options(struct member *m)
{
    struct node_options o = options(m);
    struct t *t = m->t;
    for (size_t i = 0; i < t->n_members; i++) {
        o.peers[i].id = t->m[i].id;
        snprintf(o.peers[i].address, sizeof o.peers[i].address, "%s", t->m[i].address);
    }
    o.n_peers = t->n_members;
    return o;
}

/* Starts the member; it may not lead yet. */
static void start_member(struct member *m, const struct node_options *o)
{
    char why[512] = "";
    int err = node_start(&m->n, &m->t->loop, m->f->st, o, why, sizeof why);
    if (err)
        fail_msg("node_start: %s (%s)", why, cairn_strerror(err));
    m->n.fatal = on_fatal;
    m->running = true;
    m->closed = false;
}

/* Starts the member and turns the loop until it leads. */
static void start(struct member *m, const struct node_options *o)
{
    start_member(m, o);
    run_until(m->t, node_is_leader(&m->n));
    assert_int_equal(node_leader(&m->n), m->id);
}

/* As after a restart of the process: the store reopened, a new member on the same directory. */
static void restart(struct member *m, const struct node_options *o, const struct store_options *so)
{
    fx_reopen(m->f, so);
    start(m, o);
}

/* ---------------------------------------------------------------------------------------------- */
/* Requests */

static void on_answer(struct proposal *p, int err)
{
    struct req *r = p->data;
    r->calls++;
    if (r->calls > 1)
        return; /* the assertions on calls report it */
    r->answered = ++r->t->answers;
    r->err = err;
    r->turn = r->t->turns;
    r->compacting = r->m->n.fsm.compacting;
}

static struct req *req_new(struct t *t)
{
    assert_true(t->n_reqs < MAX_REQS);
    struct req *r = &t->reqs[t->n_reqs++];
    memset(r, 0, sizeof *r);
    r->t = t;
    r->ir = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
    r->p.req = &r->ir;
    r->p.cb = on_answer;
    r->p.data = r;
    r->p.arena = &r->a;
    return r;
}

/* A put of key = value ("v" when NULL). */
static struct req *put_req(struct t *t, const char *key, const char *value)
{
    struct req *r = req_new(t);
    snprintf(r->key, sizeof r->key, "%s", key);
    snprintf(r->value, sizeof r->value, "%s", value ? value : "v");
    r->put = (Etcdserverpb__PutRequest)ETCDSERVERPB__PUT_REQUEST__INIT;
    r->put.key = (ProtobufCBinaryData){strlen(r->key), (uint8_t *)r->key};
    r->put.value = (ProtobufCBinaryData){strlen(r->value), (uint8_t *)r->value};
    r->ir.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_PUT;
    r->ir.put = &r->put;
    return r;
}

static struct req *compaction_req(struct t *t, int64_t revision, bool physical)
{
    struct req *r = req_new(t);
    r->compaction = (Etcdserverpb__CompactionRequest)ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    r->compaction.revision = revision;
    r->compaction.physical = physical;
    r->ir.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_COMPACTION;
    r->ir.compaction = &r->compaction;
    return r;
}

static void propose(struct member *m, struct req *r)
{
    r->m = m;
    assert_int_equal(proposer_propose(&m->n.base, &r->p), 0);
}

/* Proposes a put and turns the loop until it is answered; returns its revision. */
static int64_t put_now(struct member *m, const char *key, const char *value)
{
    struct req *r = put_req(m->t, key, value);
    propose(m, r);
    run_until(m->t, r->calls);
    assert_int_equal(r->err, 0);
    assert_int_equal(r->p.res.err, 0);
    return r->p.res.put->header->revision;
}

/* ---------------------------------------------------------------------------------------------- */
/* What the store shows */

struct look {
    int64_t rev;     /* the transaction's revision */
    uint64_t index;  /* its consistent index */
    bool found;      /* the key exists (at the revision asked) */
    int64_t mod_rev; /* the key's mod revision */
    char value[32];  /* its value */
};

/* A look at key as of revision (0: the current one) through a view (what the loop's reads see) or
 * a read transaction (what the store committed). The transaction ends before this returns. */
static struct look look_at(struct member *m, bool view, const char *key, int64_t revision)
{
    struct look l = {0};
    store_tx *tx;
    int err = view ? store_tx_begin_view(m->f->st, &tx) : store_tx_begin_read(m->f->st, &tx);
    if (err)
        fail_msg("begin %s: %s", view ? "view" : "read", cairn_strerror(err));
    l.rev = store_tx_rev(tx);
    l.index = store_tx_consistent_index(tx);
    struct arena a = {0};
    struct store_range_req rq = {.key = sb(key), .revision = revision};
    struct store_range_res rs;
    err = store_range(tx, &rq, &a, &rs);
    if (err == 0 && rs.n_kvs == 1) {
        l.found = true;
        l.mod_rev = rs.kvs[0].mod_revision;
        snprintf(l.value, sizeof l.value, "%.*s", (int)rs.kvs[0].value.len,
                 (const char *)rs.kvs[0].value.data);
    }
    store_tx_end(tx);
    arena_free(&a);
    assert_int_equal(err, 0);
    return l;
}

static struct look look(struct member *m, bool view, const char *key)
{
    return look_at(m, view, key, 0);
}

/* How many snapshots libraft keeps in the member's directory. */
static int snapshot_files(struct member *m)
{
    DIR *d = opendir(m->raft_dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (!strncmp(e->d_name, "snapshot-", 9) && !strstr(e->d_name, ".meta"))
            n++;
    closedir(d);
    return n;
}

/* Two voters, the other one never up: no leader is ever known. */
static struct node_options leaderless(struct member *m)
{
    struct node_options o = options(m);
    o.peers[1].id = m->id + 1;
    snprintf(o.peers[1].address, sizeof o.peers[1].address, "127.0.0.1:%d", free_port());
    o.n_peers = 2;
    return o;
}

/* node_start in a child process (libraft cannot be closed after a failed start), on the member's
 * store, which the parent must have closed: 0 when it refused with CAIRN_E_CORRUPT, 1 when it
 * started, 2 on any other error. */
static int start_in_child(struct member *m, const struct node_options *o)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        store *st;
        uv_loop_t loop;
        struct node n;
        char why[512] = "";
        if (store_open(m->f->dir, NULL, &st) || uv_loop_init(&loop))
            _exit(3);
        int err = node_start(&n, &loop, st, o, why, sizeof why);
        _exit(err == CAIRN_E_CORRUPT ? 0 : err == 0 ? 1 : 2);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests */

/* The member leads alone; the proposals of one turn share one entry and are answered together, in
 * order, each at that entry's index, never from inside propose; the next turn's proposals get a
 * later entry. */
static void test_batch_of_one_turn(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    start(m, &o);
    assert_true(m->n.base.term(&m->n.base) >= 1);
    assert_int_equal(m->n.base.leader(&m->n.base), SELF);

    struct req *r[5];
    for (int i = 0; i < 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        propose(m, r[i] = put_req(t, k, NULL));
    }
    assert_int_equal(r[0]->calls, 0);
    turn(t); /* the check handle proposes the three as one entry */
    r[3] = put_req(t, "k3", NULL);
    r[4] = put_req(t, "k4", NULL);
    propose(m, r[3]);
    propose(m, r[4]);
    run_until(t, r[4]->calls);

    for (int i = 0; i < 5; i++) {
        assert_int_equal(r[i]->calls, 1);
        assert_int_equal(r[i]->answered, i + 1); /* in proposal order */
        assert_int_equal(r[i]->err, 0);
        assert_int_equal(r[i]->p.res.err, 0);
        assert_int_equal(r[i]->p.res.put->header->revision, i + 2);
    }
    assert_true(r[0]->p.index > 1); /* after the configuration entry */
    assert_int_equal(r[1]->p.index, r[0]->p.index);
    assert_int_equal(r[2]->p.index, r[0]->p.index);
    assert_int_equal(r[1]->turn, r[0]->turn); /* answered together */
    assert_int_equal(r[2]->turn, r[0]->turn);
    assert_true(r[3]->p.index > r[0]->p.index);
    assert_int_equal(r[4]->p.index, r[3]->p.index);
    assert_int_equal(r[4]->turn, r[3]->turn);
    assert_true(m->n.base.applied_index(&m->n.base) >= r[3]->p.index);
    assert_true(m->n.base.committed_index(&m->n.base) >= r[3]->p.index);
    assert_int_equal(m->n.fsm.applied, r[3]->p.index);
    struct look l = look(m, true, "k4");
    assert_true(l.found);
    assert_int_equal(l.rev, 6);
    assert_int_equal(l.index, r[3]->p.index);
}

/* A request failing with its own etcd error is answered err 0 with the error in its result and
 * changes nothing; the other requests of its entry apply. */
static void test_request_error_in_batch(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    start(m, &o);
    struct req *ok1 = put_req(t, "a", NULL);
    struct req *future = compaction_req(t, 100, false); /* above the current revision */
    struct req *missing = put_req(t, "missing", NULL);
    missing->put.ignore_value = true; /* keep the value of a key that does not exist */
    missing->put.value = (ProtobufCBinaryData){0, NULL};
    struct req *ok2 = put_req(t, "b", NULL);
    propose(m, ok1);
    propose(m, future);
    propose(m, missing);
    propose(m, ok2);
    run_until(t, ok2->calls);

    struct req *all[] = {ok1, future, missing, ok2};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(all[i]->calls, 1);
        assert_int_equal(all[i]->answered, i + 1);
        assert_int_equal(all[i]->err, 0); /* applied... */
        assert_int_equal(all[i]->p.index, ok1->p.index);
    }
    assert_int_equal(future->p.res.err, CAIRN_E_FUTURE_REV); /* ...with their etcd errors */
    assert_int_equal(missing->p.res.err, CAIRN_E_KEY_NOT_FOUND);
    assert_int_equal(ok1->p.res.err, 0);
    assert_int_equal(ok2->p.res.err, 0);
    assert_int_equal(ok1->p.res.put->header->revision, 2);
    assert_int_equal(ok2->p.res.put->header->revision, 3);
    assert_false(m->n.fsm.compacting);
    struct look l = look(m, true, "missing");
    assert_false(l.found);
    assert_int_equal(l.rev, 3);
    assert_int_equal(l.index, ok1->p.index);
    assert_true(look(m, true, "b").found);
}

/* Applied entries stay in the store's open write transaction: a view sees them, a read transaction
 * does not, until commit_requests requests have been applied and the store commits. */
static void test_view_sees_applied_before_commit(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    o.commit_interval_ms = HUGE_MS;
    o.commit_requests = 5;
    start(m, &o);
    struct req *r[5];
    for (int i = 0; i < 3; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        propose(m, r[i] = put_req(t, k, NULL));
    }
    run_until(t, r[2]->calls);
    assert_non_null(m->n.fsm.wtx);

    struct look v = look(m, true, "k2");
    assert_true(v.found);
    assert_int_equal(v.mod_rev, 4);
    assert_int_equal(v.rev, 4);
    assert_int_equal(v.index, r[0]->p.index);
    struct look c = look(m, false, "k2");
    assert_false(c.found);
    assert_int_equal(c.rev, 1);
    assert_int_equal(c.index, 0);

    r[3] = put_req(t, "k3", NULL);
    propose(m, r[3]);
    run_until(t, r[3]->calls);
    assert_false(look(m, false, "k3").found); /* 4 requests: still below commit_requests */
    assert_true(look(m, true, "k3").found);

    r[4] = put_req(t, "k4", NULL);
    propose(m, r[4]);
    run_until(t, r[4]->calls);
    assert_null(m->n.fsm.wtx); /* the fifth request made the store commit */
    c = look(m, false, "k4");
    assert_true(c.found);
    assert_int_equal(c.rev, 6);
    assert_int_equal(c.index, r[4]->p.index);
    assert_true(look(m, false, "k0").found);
}

/* The commit interval commits the store without further requests. */
static void test_commit_interval(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    o.commit_interval_ms = 20;
    o.commit_requests = 1000;
    start(m, &o);
    put_now(m, "k", NULL);
    run_until(t, look(m, false, "k").found);
    assert_null(m->n.fsm.wtx);
}

/* After a clean close and a restart the data and the consistent index are the store's, the log's
 * entries are not applied again, and new proposals take later indices. */
static void test_restart(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    o.commit_interval_ms = HUGE_MS;
    o.commit_requests = 1000;
    start(m, &o);
    put_now(m, "a", "1");
    put_now(m, "b", "2");
    struct req *last = put_req(t, "a", "3");
    propose(m, last);
    run_until(t, last->calls);
    assert_false(look(m, false, "a").found); /* nothing committed before the close */
    close_node(m);
    struct look before = look(m, false, "a");
    assert_true(before.found); /* the close committed */
    assert_int_equal(before.index, last->p.index);
    assert_int_equal(before.rev, 4);

    restart(m, &o, NULL);
    struct look after = look(m, true, "a");
    assert_true(after.found);
    assert_string_equal(after.value, "3");
    assert_int_equal(after.mod_rev, 4);
    assert_int_equal(after.rev, 4); /* not applied twice */
    assert_int_equal(after.index, before.index);
    assert_true(look(m, true, "b").found);
    assert_true(m->n.base.applied_index(&m->n.base) >= last->p.index);

    struct req *next = put_req(t, "c", NULL);
    propose(m, next);
    run_until(t, next->calls);
    assert_int_equal(next->err, 0);
    assert_true(next->p.index > last->p.index);
    assert_int_equal(next->p.res.put->header->revision, 5);
}

/* As after a crash: the store never committed what was applied (its write transaction is aborted
 * before the close, so the close commits nothing). At the next start the log applies the entries
 * again: the same data at the same revisions, the same consistent index. */
static void test_crash_replays_log(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    o.commit_interval_ms = HUGE_MS;
    o.commit_requests = 1000;
    start(m, &o);
    put_now(m, "a", "1");
    put_now(m, "b", "2");
    struct req *last = put_req(t, "a", "3");
    propose(m, last);
    run_until(t, last->calls);
    struct look applied = look(m, true, "a");
    assert_int_equal(applied.index, last->p.index);

    assert_non_null(m->n.fsm.wtx);
    store_tx_end(m->n.fsm.wtx); /* the crash: what was applied is lost */
    m->n.fsm.wtx = NULL;
    close_node(m);
    fx_reopen(m->f, NULL);
    struct look lost = look(m, false, "a");
    assert_false(lost.found);
    assert_int_equal(lost.rev, 1);
    assert_int_equal(lost.index, 0);

    restart(m, &o, NULL);
    struct look again = look(m, true, "a");
    assert_true(again.found);
    assert_string_equal(again.value, "3");
    assert_int_equal(again.mod_rev, applied.mod_rev);
    assert_int_equal(again.rev, applied.rev);
    assert_int_equal(again.index, applied.index);
    assert_true(look(m, true, "b").found);

    struct req *next = put_req(t, "c", NULL);
    propose(m, next);
    run_until(t, next->calls);
    assert_true(next->p.index > last->p.index);
    assert_int_equal(next->p.res.put->header->revision, applied.rev + 1);
    close_node(m);
    struct look committed = look(m, false, "c");
    assert_true(committed.found);
    assert_int_equal(committed.index, next->p.index);
}

/* Closing fails the proposals not proposed yet "server stopped"; proposing afterwards is refused
 * and its callback never runs. */
static void test_close_fails_queued(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    start(m, &o);
    struct req *a = put_req(t, "a", NULL), *b = put_req(t, "b", NULL);
    propose(m, a);
    propose(m, b);
    m->closed = false;
    node_close(&m->n, on_closed);
    m->running = false;
    assert_int_equal(a->calls, 1);
    assert_int_equal(b->calls, 1);
    assert_int_equal(a->err, CAIRN_E_STOPPED);
    assert_int_equal(b->err, CAIRN_E_STOPPED);
    assert_int_equal(a->answered, 1);
    assert_int_equal(b->answered, 2);
    struct req *late = put_req(t, "c", NULL);
    assert_int_equal(proposer_propose(&m->n.base, &late->p), CAIRN_E_STOPPED);
    run_until(t, m->closed);
    assert_int_equal(late->calls, 0);
    assert_int_equal(a->calls, 1);
    struct look l = look(m, false, "a");
    assert_false(l.found);
    assert_int_equal(l.rev, 1);
}

/* Proposals already handed to libraft but not applied when the member closes are answered exactly
 * once; one answered as applied is in the store after the close. Whatever the answer, the entry is
 * all or nothing: after a restart both of its puts are there or neither is. */
static void test_close_answers_proposed_once(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    start(m, &o);
    struct req *a = put_req(t, "a", NULL), *b = put_req(t, "b", NULL);
    propose(m, a);
    propose(m, b);
    uv_run(&t->loop, UV_RUN_NOWAIT); /* proposed: the entry is on its way to the disk */
    assert_int_equal(a->calls, 0);
    close_node(m);
    assert_int_equal(a->calls, 1);
    assert_int_equal(b->calls, 1);
    assert_int_equal(a->err, b->err); /* one entry: one fate */
    if (a->err == 0)
        assert_true(look(m, false, "a").found);
    for (int i = 0; i < 10; i++)
        uv_run(&t->loop, UV_RUN_NOWAIT);
    assert_int_equal(a->calls, 1);
    assert_int_equal(b->calls, 1);
    restart(m, &o, NULL);
    assert_int_equal(look(m, true, "a").found, look(m, true, "b").found);
}

/* With a small snapshot count libraft takes snapshots (the store committed durably, a marker of
 * its index) and drops the log behind them; a restart restores the latest marker and finds the
 * data and index. */
static void test_snapshot_and_restart(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    o.snapshot_count = 4;
    o.snapshot_trailing = 2;
    o.commit_interval_ms = HUGE_MS;
    o.commit_requests = 1000;
    start(m, &o);
    int64_t rev = 0;
    for (int i = 0; i < 20; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%02d", i);
        rev = put_now(m, k, k);
    }
    assert_int_equal(rev, 21);
    run_until(t, snapshot_files(m) > 0);
    struct look committed = look(m, false, "k00");
    assert_true(committed.found); /* every snapshot commits the store first */
    assert_true(committed.index > 0);
    uint64_t applied = m->n.fsm.applied;
    close_node(m);

    restart(m, &o, NULL);
    struct look l = look(m, true, "k19");
    assert_true(l.found);
    assert_string_equal(l.value, "k19");
    assert_int_equal(l.rev, 21);
    assert_int_equal(l.index, applied);
    assert_true(look(m, true, "k00").found);
    assert_true(m->n.base.applied_index(&m->n.base) >= applied);
    struct req *next = put_req(t, "next", NULL);
    propose(m, next);
    run_until(t, next->calls);
    assert_true(next->p.index > applied);
    assert_int_equal(next->p.res.put->header->revision, 22);
}

/* A crash after snapshots: the store has what the last snapshot committed; the start restores that
 * marker and applies the rest of the log again. */
static void test_crash_after_snapshot(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = options(m);
    o.snapshot_count = 4;
    o.snapshot_trailing = 2;
    o.commit_interval_ms = HUGE_MS;
    o.commit_requests = 1000;
    start(m, &o);
    for (int i = 0; i < 10; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%02d", i);
        put_now(m, k, k);
    }
    run_until(t, snapshot_files(m) > 0);
    struct req *last = put_req(t, "last", NULL);
    propose(m, last);
    run_until(t, last->calls);
    struct look applied = look(m, true, "last");
    assert_int_equal(applied.index, last->p.index);
    assert_false(look(m, false, "last").found); /* applied after the last snapshot's commit */
    uint64_t committed = look(m, false, "k00").index;
    assert_true(committed > 0);
    assert_true(committed < last->p.index);

    store_tx_end(m->n.fsm.wtx); /* the crash */
    m->n.fsm.wtx = NULL;
    close_node(m);
    restart(m, &o, NULL);
    struct look again = look(m, true, "last");
    assert_true(again.found);
    assert_int_equal(again.rev, applied.rev);
    assert_int_equal(again.mod_rev, applied.mod_rev);
    assert_int_equal(again.index, applied.index);
    assert_true(look(m, true, "k09").found);
}

/* A physical compaction is answered once its history is removed, which with a compact batch of one
 * record takes several turns; a put of the same entry is answered at once. */
static void test_physical_compaction_waits(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct store_options so = {.compact_batch = 1};
    fx_reopen(m->f, &so);
    struct node_options o = options(m);
    start(m, &o);
    int64_t rev = 0;
    for (int i = 0; i < 10; i++)
        rev = put_now(m, "k", NULL);
    struct req *c = compaction_req(t, rev, true);
    struct req *p = put_req(t, "other", NULL);
    propose(m, c);
    propose(m, p);
    run_until(t, c->calls);
    assert_int_equal(c->err, 0);
    assert_int_equal(c->p.res.err, 0);
    assert_non_null(c->p.res.compaction);
    assert_int_equal(p->calls, 1);
    assert_int_equal(p->answered + 1, c->answered);
    assert_int_equal(c->p.index, p->p.index);
    assert_true(p->compacting);  /* the put's answer came with the steps still due */
    assert_false(c->compacting); /* the compaction's once they were done */
    assert_true(c->turn > p->turn + 1);
    assert_false(m->n.fsm.compacting);
}

/* A compaction that is not physical is answered when applied, while its steps still run. */
static void test_logical_compaction_at_once(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct store_options so = {.compact_batch = 1};
    fx_reopen(m->f, &so);
    struct node_options o = options(m);
    start(m, &o);
    int64_t rev = 0;
    for (int i = 0; i < 10; i++)
        rev = put_now(m, "k", NULL);
    struct req *c = compaction_req(t, rev, false);
    struct req *p = put_req(t, "other", NULL);
    propose(m, c);
    propose(m, p);
    run_until(t, p->calls);
    assert_int_equal(c->calls, 1);
    assert_int_equal(c->err, 0);
    assert_int_equal(c->p.res.err, 0);
    assert_int_equal(c->answered + 1, p->answered);
    assert_int_equal(c->turn, p->turn);
    assert_true(c->compacting);
    run_until(t, !m->n.fsm.compacting);
    struct look l = look(m, true, "k");
    assert_true(l.found);
    assert_int_equal(l.mod_rev, rev);
}

/* A physical compaction still removing history when the member closes is answered (it is recorded
 * and durable); its removal resumes at the next start. */
static void test_physical_compaction_at_close(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct store_options so = {.compact_batch = 1};
    fx_reopen(m->f, &so);
    struct node_options o = options(m);
    start(m, &o);
    int64_t rev = 0;
    for (int i = 0; i < 20; i++)
        rev = put_now(m, "k", NULL);
    struct req *c = compaction_req(t, rev, true);
    struct req *p = put_req(t, "other", NULL);
    propose(m, c);
    propose(m, p);
    run_until(t, p->calls);
    assert_int_equal(c->calls, 0);
    assert_true(m->n.fsm.compacting);
    close_node(m);
    assert_int_equal(c->calls, 1);
    assert_int_equal(c->err, 0);
    assert_int_equal(c->p.res.err, 0);

    restart(m, &o, &so);
    assert_true(m->n.fsm.compacting);
    run_until(t, !m->n.fsm.compacting);
    struct look l = look(m, true, "k");
    assert_true(l.found);
    assert_int_equal(l.mod_rev, rev);
}

/* While no leader is known a proposal waits, then fails "request timed out". */
static void test_no_leader_times_out(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = leaderless(m);
    o.request_timeout_ms = 100;
    start_member(m, &o);
    struct req *r = put_req(t, "k", NULL);
    propose(m, r);
    run_until(t, r->calls);
    assert_int_equal(r->err, CAIRN_E_TIMEOUT);
    assert_false(node_is_leader(&m->n));
    assert_int_equal(node_leader(&m->n), 0);
    assert_false(look(m, true, "k").found);
}

/* Each proposal waits the request timeout from its own arrival: one proposed later than another
 * is still waiting when the earlier one times out (node.h: "while no leader is known, proposals
 * wait for one up to the request timeout"). */
static void test_timeout_counts_from_each_proposal(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    struct node_options o = leaderless(m);
    o.request_timeout_ms = 400;
    start_member(m, &o);
    struct req *early = put_req(t, "early", NULL), *late = put_req(t, "late", NULL);
    uint64_t t0 = uv_now(&t->loop);
    propose(m, early);
    run_until(t, uv_now(&t->loop) >= t0 + 300);
    uint64_t t_late = uv_now(&t->loop);
    propose(m, late);
    run_until(t, early->calls);
    uint64_t t_early = uv_now(&t->loop);
    assert_int_equal(early->err, CAIRN_E_TIMEOUT);
    if (t_early - t_late < o.request_timeout_ms) {
        if (late->calls)
            fail_msg("the later proposal failed (%s) after waiting %llu ms of %u",
                     cairn_strerror(late->err), (unsigned long long)(t_early - t_late),
                     o.request_timeout_ms);
    }
    run_until(t, late->calls);
    assert_int_equal(late->err, CAIRN_E_TIMEOUT);
}

/* A store that has applied entries but no raft log beside it (a damaged data directory) is
 * refused at every start, not only at the first: the refusal must not leave a bootstrapped log
 * behind that the next start accepts, skipping the new entries the store claims to have. */
static void test_store_without_log_refused_every_time(void **state)
{
    struct t *t = *state;
    struct member *m = &t->m[0];
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(m->f->st, &tx), 0);
    assert_int_equal(store_tx_set_consistent_index(tx, 5), 0);
    assert_int_equal(store_tx_commit(tx, true), 0);
    store_close(m->f->st); /* the children open it themselves */
    m->f->st = NULL;
    struct node_options o = options(m);
    assert_int_equal(start_in_child(m, &o), 0);
    int second = start_in_child(m, &o);
    fx_reopen(m->f, NULL);
    if (second != 0)
        fail_msg("the second start %s", second == 1 ? "accepted the store" : "failed otherwise");
}

/* An entry a member proposed in its previous run and that commits only after this run proposes
 * its own (two voters: the entry waits for the other's acknowledgement) is applied as the log has
 * it: the member's new proposal is not mistaken for it, even when the two runs started in the same
 * second (entry batch numbers start from the wall clock's second), and both members end with the
 * same history. */
static void test_old_entry_not_taken_for_new_proposal(void **state)
{
    struct t *t = *state;
    struct member *a = &t->m[0];
    struct member *b = member_add(t);
    struct node_options oa = cluster_options(a), ob = cluster_options(b);
    ob.election_ms = 60000; /* a leads */
    for (time_t s = time(NULL); time(NULL) == s;)
        usleep(1000); /* a fresh second, so that both runs of a are likely to start in it */
    start_member(a, &oa);
    start_member(b, &ob);
    run_until(t, node_is_leader(&a->n) && node_leader(&b->n) == a->id);

    struct req *old = put_req(t, "k", "old");
    propose(a, old);
    uv_run(&t->loop, UV_RUN_NOWAIT); /* proposed: in a's log, not acknowledged by b yet */
    uint64_t old_seq = a->n.next_batch - 1, old_index = raft_last_index(&a->n.raft);
    close_node(a);
    close_node(b);
    assert_int_equal(old->calls, 1);
    assert_int_not_equal(old->err, 0);

    fx_reopen(a->f, NULL);
    fx_reopen(b->f, NULL);
    start_member(a, &oa);
    if (a->n.next_batch != old_seq || raft_last_index(&a->n.raft) < old_index)
        skip(); /* the runs started in different seconds, or the entry never reached the disk */
    struct req *new = put_req(t, "k", "new");
    propose(a, new); /* waits for a to lead, then goes out before the old entry commits */
    start_member(b, &ob);
    run_until(t, new->calls);
    assert_int_equal(new->err, 0);
    uint64_t last = raft_last_applied(&a->n.raft);
    run_until(t, raft_last_applied(&b->n.raft) >= last);

    struct look at_old_a = look_at(a, true, "k", 2), at_old_b = look_at(b, true, "k", 2);
    struct look now_a = look(a, true, "k"), now_b = look(b, true, "k");
    assert_int_equal(now_a.rev, now_b.rev);
    assert_string_equal(at_old_b.value, "old"); /* the follower applies the log's entry */
    assert_string_equal(at_old_a.value, at_old_b.value);
    assert_true(new->p.index > old_index);
    assert_string_equal(now_a.value, "new");
    assert_string_equal(now_b.value, "new");
}

/* Starts a, the leader, and b, its follower (with request_timeout_ms when not 0), and turns the
 * loop until b knows a leads. */
static void start_leader_and_follower(struct member *a, struct member *b, unsigned timeout_ms)
{
    struct node_options oa = cluster_options(a), ob = cluster_options(b);
    ob.election_ms = 60000; /* a leads */
    if (timeout_ms)
        ob.request_timeout_ms = timeout_ms;
    start_member(a, &oa);
    start_member(b, &ob);
    run_until(a->t, node_is_leader(&a->n) && node_leader(&b->n) == a->id);
}

/* The leader's side of forwarding, as api/forward.c's Forward handler does it: the copies the
 * follower sent, proposed on the leader as they came. */
struct fake_leader {
    struct member *leader;
    unsigned calls;           /* forwards the follower made */
    uint64_t resent_after[4]; /* what each carried */
    struct req *copies[8];    /* proposed on the leader */
    Cairn__InternalRequest sent[8];
    size_t n_copies;
    struct t *t;
};

static struct fake_leader fake;

static void propose_copy(const Cairn__InternalRequest *req, uint64_t resent_after)
{
    assert_true(fake.n_copies < 8);
    Cairn__InternalRequest *sent = &fake.sent[fake.n_copies];
    *sent = *req;
    sent->resent_after = resent_after;
    struct req *r = req_new(fake.t);
    r->p.req = sent;
    r->p.local_only = true;
    fake.copies[fake.n_copies++] = r;
    propose(fake.leader, r);
}

/* The first forward fails as a call broken by the leader's death (the leader never got it); the
 * resend reaches the leader twice, as when an earlier copy also went through. */
static int forward_lost_then_twice(void *owner, const Cairn__InternalRequest *req, uint64_t leader,
                                   uint64_t resent_after)
{
    struct member *follower = owner;
    assert_true(leader == fake.leader->id);
    fake.resent_after[fake.calls < 4 ? fake.calls : 3] = resent_after;
    if (fake.calls++ == 0) {
        node_forward_failed(&follower->n, req->id, CAIRN_E_LEADER_CHANGED);
        return 0;
    }
    propose_copy(req, resent_after);
    propose_copy(req, resent_after);
    return 0;
}

/* A follower's forward fails without an answer: the write goes again, marked as a resend; the
 * leader gets two copies; the write is applied once, on both members, and the follower's call is
 * answered once, with the first copy's result. */
static void test_forward_failed_is_resent_and_applied_once(void **state)
{
    struct t *t = *state;
    struct member *a = &t->m[0], *b = member_add(t);
    start_leader_and_follower(a, b, 0);
    put_now(a, "before", NULL);
    memset(&fake, 0, sizeof fake);
    fake.leader = a;
    fake.t = t;
    b->n.forward = forward_lost_then_twice;
    b->n.owner = b;

    struct req *r = put_req(t, "k", NULL);
    Cairn__InternalHeader h = CAIRN__INTERNAL_HEADER__INIT;
    h.member_id = b->id;
    r->ir.header = &h;
    r->ir.id = node_next_request_id(&b->n);
    propose(b, r);
    run_until(t, r->calls && fake.n_copies == 2 && fake.copies[0]->calls && fake.copies[1]->calls);
    assert_int_equal(r->calls, 1);
    assert_int_equal(r->err, 0);
    assert_int_equal(r->p.res.err, 0);
    assert_false(r->p.res.duplicate);
    assert_int_equal(fake.calls, 2);
    assert_true(fake.resent_after[0] == 0); /* a first send */
    assert_true(fake.resent_after[1] >= 1); /* the resend: b's applied index at the first */
    assert_true(r->ir.resent_after == 0);   /* the caller's request is left as it was */
    assert_int_equal(fake.copies[0]->p.res.err, 0);
    assert_true(fake.copies[1]->p.res.duplicate);
    assert_int_equal(fake.copies[1]->p.res.err, CAIRN_E_TIMEOUT);

    uint64_t last = raft_last_applied(&a->n.raft);
    run_until(t, raft_last_applied(&b->n.raft) >= last);
    for (struct member *m = a; m; m = m == a ? b : NULL) {
        store_tx *tx;
        assert_int_equal(store_tx_begin_view(m->f->st, &tx), 0);
        struct arena ar = {0};
        struct store_range_req rq = {.key = sb("k")};
        struct store_range_res rs;
        assert_int_equal(store_range(tx, &rq, &ar, &rs), 0);
        assert_int_equal(rs.n_kvs, 1);
        assert_int_equal(rs.kvs[0].version, 1);
        bool seen = false;
        assert_int_equal(store_request_seen(tx, r->ir.id, &seen), 0);
        assert_true(seen);
        store_tx_end(tx);
        arena_free(&ar);
    }
}

/* A forward that keeps failing is sent again only until the request timeout, then fails. */
static int forward_always_lost(void *owner, const Cairn__InternalRequest *req, uint64_t leader,
                               uint64_t resent_after)
{
    (void)leader;
    (void)resent_after;
    struct member *follower = owner;
    fake.calls++;
    node_forward_failed(&follower->n, req->id, CAIRN_E_NOT_LEADER);
    return 0;
}

static void test_forward_resent_until_timeout(void **state)
{
    struct t *t = *state;
    struct member *a = &t->m[0], *b = member_add(t);
    start_leader_and_follower(a, b, 200);
    memset(&fake, 0, sizeof fake);
    b->n.forward = forward_always_lost;
    b->n.owner = b;
    struct req *r = put_req(t, "k", NULL);
    r->ir.id = node_next_request_id(&b->n);
    propose(b, r);
    run_until(t, r->calls);
    assert_true(r->err == CAIRN_E_TIMEOUT || r->err == CAIRN_E_NOT_LEADER);
    assert_true(fake.calls >= 2); /* sent again at least once, a heartbeat apart */
    assert_false(look(a, true, "k").found);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batch_of_one_turn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_error_in_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_sees_applied_before_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_replays_log, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_fails_queued, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_answers_proposed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_and_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_crash_after_snapshot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_physical_compaction_waits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_logical_compaction_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_physical_compaction_at_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_leader_times_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_counts_from_each_proposal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_store_without_log_refused_every_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_old_entry_not_taken_for_new_proposal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_forward_failed_is_resent_and_applied_once, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_forward_resent_until_timeout, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN); /* as in cairnd: peers' connections are written after they close */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
