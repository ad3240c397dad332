/* tests/unit/test_raft_fixture.c — the replicated state machine on libraft's in-memory cluster.
 *
 * Every member of a raft_fixture (libraft's deterministic cluster: simulated time, network and
 * disk) runs cairn's real state machine (raft/fsm.c) over a temporary store of its own. Members
 * propose Put requests as entry_encode() frames them; the proposer's fsm takes its own batches
 * back (take/answered hooks, as raft/node.c sets them), and the applied hook commits the store at
 * random points: durably, not durably, or not at all (the write transaction stays open across
 * entries). A member whose store is behind a snapshot it receives fetches the leader's store
 * (fetch_store: store_copy, then store_install).
 *
 * Three stories read like their scenario: a killed leader is replaced and catches up when
 * revived; a minority partition cannot commit while the majority can; a member that lagged past
 * the leader's log fetches the leader's store. Seeded runs then mix elections (random election
 * timeouts), partitions (cut links, sometimes one way), message loss (saturated links), kills
 * (mostly of the leader) and revivals, latency changes and proposals; a variant also takes
 * snapshots every few entries, keeping few, so that lagging members install snapshots.
 *
 * After each run everything is healed, a leader commits a barrier, and every member applies the
 * same last index. Then every store must have the same HashKV, consistent index and revision,
 * hold every acknowledged put (libraft's apply callback with status 0) at the revision it was
 * applied at, and hold nothing that was not proposed. Along the way: the fsm answers exactly the
 * batches libraft acknowledges, at their index; a snapshot leaves the store committed at its
 * marker; libraft's applied index never goes back.
 *
 * The fixture's raft_io is wrapped as a member's is (raft/guard.h: two libraft 0.22.1 bugs in
 * sending, one in receiving, and the thesis' vote rule), and its truncation is skipped
 * (truncate_skipped, a bug of the fixture's own).
 *
 * Seeds: normal runs use a fixed set; CAIRN_TEST_LONG=1 runs many more, longer; CAIRN_RAFT_SEED=<n>
 * runs that seed only (in both seeded tests); CAIRN_RAFT_TRACE=1 prints what a run does, with
 * libraft's own diagnostics. A failure, or a crash inside libraft, names its seed. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <raft.h>
#include <raft/fixture.h>

#include "common/log.h"
#include "raft/fsm.h"
#include "raft/guard.h"
#include "tests/unit/helpers/fixture.h"

#define MAX_MEMBERS 5
#define NKEYS       48    /* key space of the seeded runs, so that puts overwrite each other */
#define WAIT_MS     30000 /* simulated time allowed for anything that must happen */
#define ELECTION_MS 1000  /* the fixture's election timeout */
#define INSTALL_MS  3000  /* InstallSnapshot timeout (the fixture's is 30 s) */
#define STORY_SEED  0     /* the stories' PRNG seed (they use it only for commit points) */

/* ---------------------------------------------------------------------------------------------- */
/* Random numbers: xorshift64*, seeded through splitmix64, so a seed fully determines a run. */

static uint64_t splitmix(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* Uniform in [0, n). */
static unsigned below(uint64_t *s, unsigned n)
{
    return (unsigned)(rnd(s) % n);
}

/* ---------------------------------------------------------------------------------------------- */
/* The cluster: fixture, members, proposals */

struct cluster;

struct member {
    struct cluster *c;
    unsigned i;            /* fixture index; the member id is i + 1 */
    struct fx *fx;         /* its store */
    struct fsm fsm;        /* cairn's state machine over it */
    bool fsm_ready;        /* fsm_init succeeded */
    uint64_t next_batch;   /* cairn.Entry.batch of its next proposal */
    unsigned durable;      /* commits the applied hook made durably */
    unsigned lazy;         /* ... and not durably */
    unsigned snapshots;    /* fsm_snapshot calls */
    unsigned restores;     /* fsm_restore calls that returned */
    unsigned fetches;      /* stores fetched from the leader (a snapshot beyond the store) */
    struct guard guard;    /* its messages received (recv_guarded); guard.held_off counts the
                            * InstallSnapshots dropped while it took a snapshot */
    unsigned max_lag;      /* the longest the member was behind the leader's last index */
    uint64_t last_applied; /* raft_last_applied() at the previous step: it never goes back */
};

/* One Put of a proposed entry. p comes first: the fsm hands proposals back as struct proposal. */
struct put {
    struct proposal p; /* p.data: the batch */
    Cairn__InternalRequest ir;
    Etcdserverpb__PutRequest put;
    char key[16];
    char value[48];
    int64_t rev; /* revision it was applied at on its proposer; 0 until answered */
};

/* One proposed entry: its puts, and what libraft and the proposer's fsm said about it. */
struct batch {
    struct raft_apply req; /* libraft's request; req.data is the cluster */
    struct member *m;      /* the proposer */
    uint64_t seq;          /* cairn.Entry.batch */
    bool refused;          /* raft_apply returned an error: never in the log */
    bool done;             /* libraft's callback ran */
    int status;            /* its status: 0 means acknowledged */
    bool taken;            /* the proposer's fsm took it back to apply */
    uint64_t index;        /* log index the fsm answered it at */
    struct arena a;        /* the responses */
    size_t n;
    struct put puts[];
};

struct cluster {
    struct raft_fixture f;
    bool fixture_ready; /* raft_fixture_init succeeded: close it */
    bool unsafe;        /* a failure left libraft mid-call: do not close the fixture */
    bool stepping;      /* inside raft_fixture_step (a crash there leaves it unsafe) */
    unsigned n;         /* members */
    struct member m[MAX_MEMBERS];
    uint64_t seed;      /* for failure messages */
    uint64_t rng;       /* the run's random numbers */
    bool trace;         /* print what the run does */
    unsigned p_durable; /* percent of entries after which the store commits durably */
    unsigned p_lazy;    /* ... not durably (else the transaction stays open) */
    bool part[MAX_MEMBERS][MAX_MEMBERS];  /* messages i -> j cannot be sent (partition) */
    bool lossy[MAX_MEMBERS][MAX_MEMBERS]; /* messages i -> j are sent and lost */
    bool dead[MAX_MEMBERS];               /* killed */
    struct batch **b;                     /* every batch proposed, in order */
    size_t nb, cap;
    struct raft_barrier barrier; /* the convergence barrier */
    bool barrier_busy;           /* its callback has not run yet */
    int barrier_status;
    store_tx *view; /* the verification's open view, ended by cluster_free after a failure */
    struct arena a; /* verification results */
    char err[512];  /* the first failure noticed inside a callback */
};

/* The test state: the cluster of the current run, closed by teardown also when a test failed. */
struct t {
    struct cluster *c;
};

/* What to print if libraft aborts during a run (it checks its own invariants with assert). */
static char crash_note[160];

static void on_abort(int sig)
{
    (void)sig;
    ssize_t w = write(STDERR_FILENO, crash_note, strlen(crash_note));
    (void)w;
    signal(SIGABRT, SIG_DFL);
    raise(SIGABRT);
}

/* A failure noticed inside a libraft callback: kept until the step returns, so that the test fails
 * (and cmocka unwinds) only where libraft is not in the middle of a call. */
static void note(struct cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct cluster *c, const char *fmt, ...)
{
    if (c->err[0])
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
}

#define FAIL(c, fmt, ...)                                                                  \
    fail_msg("seed %" PRIu64 " (reproduce: CAIRN_RAFT_SEED=%" PRIu64 "), t=%llu ms: " fmt, \
             (c)->seed, (c)->seed, (unsigned long long)(c)->f.time, __VA_ARGS__)

#define CHECK(c, cond, fmt, ...)       \
    do {                               \
        if (!(cond))                   \
            FAIL(c, fmt, __VA_ARGS__); \
    } while (0)

static void check_notes(struct cluster *c)
{
    if (c->err[0])
        FAIL(c, "%s", c->err);
}

static void trace(struct cluster *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace(struct cluster *c, const char *fmt, ...)
{
    if (!c->trace)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    print_message("[%6llu] %s\n", (unsigned long long)c->f.time, line);
}

static struct raft *raft_of(struct cluster *c, unsigned i)
{
    return raft_fixture_get(&c->f, i);
}

/* ---------------------------------------------------------------------------------------------- */
/* The fsm's hooks, as the owner (raft/node.c) sets them */

/* The proposer's own batch, while its callback has not run (node.c forgets a batch libraft gave
 * up on: a later apply of it goes to the fsm's scratch). */
static struct proposal *on_take(struct fsm *f, uint64_t seq, size_t n, uint64_t index)
{
    struct member *m = f->data;
    struct cluster *c = m->c;
    for (size_t k = c->nb; k-- > 0;) {
        struct batch *b = c->b[k];
        if (b->m != m || b->seq != seq)
            continue;
        if (b->refused)
            note(c, "member %u applied its batch %" PRIu64 " that raft_apply refused", m->i, seq);
        if (b->done || b->refused || b->n != n)
            return NULL;
        if (index != b->req.index)
            note(c,
                 "member %u applied its batch %" PRIu64 " at index %" PRIu64 ", proposed at %llu",
                 m->i, seq, index, (unsigned long long)b->req.index);
        if (b->taken)
            note(c, "member %u applied its batch %" PRIu64 " twice", m->i, seq);
        b->taken = true;
        return &b->puts[0].p;
    }
    note(c, "member %u applied a batch %" PRIu64 " it never proposed", m->i, seq);
    return NULL;
}

static void on_answered(struct fsm *f, struct proposal *list, uint64_t index)
{
    struct member *m = f->data;
    for (struct proposal *p = list; p; p = p->next) {
        struct put *u = (struct put *)p;
        struct batch *b = p->data;
        p->index = index;
        b->index = index;
        if (p->res.err)
            note(m->c, "member %u: put %s of batch %" PRIu64 " failed: %s", m->i, u->key, b->seq,
                 cairn_strerror(p->res.err));
        else if (!p->res.put || !p->res.put->header)
            note(m->c, "member %u: put %s of batch %" PRIu64 " answered without a response", m->i,
                 u->key, b->seq);
        else
            u->rev = p->res.put->header->revision;
    }
}

/* After every entry: commit the store now and then, durably or not, or leave it open. */
static void on_applied_entry(struct fsm *f, unsigned requests)
{
    struct member *m = f->data;
    struct cluster *c = m->c;
    if (requests == 0)
        note(c, "member %u applied an entry without requests", m->i);
    /* libraft counts the entry in last_applied once apply returns */
    if (f->applied != raft_last_applied(f->raft) + 1)
        note(c, "member %u applied index %" PRIu64 " but libraft is applying %llu", m->i,
             f->applied, (unsigned long long)raft_last_applied(f->raft) + 1);
    unsigned r = below(&c->rng, 100);
    if (r < c->p_durable) {
        fsm_commit(f, true);
        m->durable++;
    } else if (r < c->p_durable + c->p_lazy) {
        fsm_commit(f, false);
        m->lazy++;
    }
}

/* The fsm stops the member: it must not return. Fail the test (cmocka unwinds from inside
 * libraft, so the fixture cannot be closed afterwards). */
static void on_fatal(struct fsm *f, const char *why)
{
    struct member *m = f->data;
    m->c->unsafe = true;
    FAIL(m->c, "member %u stopped: %s", m->i, why);
}

/* fsm_snapshot wrapped to check its contract: the store is committed, durably, at the index. */
static int (*real_snapshot)(struct raft_fsm *, struct raft_buffer **, unsigned *);
static int (*real_restore)(struct raft_fsm *, struct raft_buffer *);

static int on_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct fsm *f = rf->data;
    struct member *m = f->data;
    int rv = real_snapshot(rf, bufs, n_bufs);
    if (rv)
        return rv;
    m->snapshots++;
    Cairn__SnapshotMarker *mk =
        *n_bufs == 1 ? cairn__snapshot_marker__unpack(NULL, (*bufs)[0].len, (*bufs)[0].base) : NULL;
    store_tx *tx;
    if (!mk)
        note(m->c, "member %u: the snapshot is not one marker", m->i);
    else if (f->wtx)
        note(m->c, "member %u: the store is not committed after a snapshot", m->i);
    else if (store_tx_begin_read(f->st, &tx) == 0) {
        if (store_tx_consistent_index(tx) != f->applied || mk->index != f->applied ||
            mk->revision != store_tx_rev(tx))
            note(m->c,
                 "member %u: snapshot marker at index %" PRIu64 " revision %" PRId64
                 "; applied %" PRIu64 ", store committed at %" PRIu64 " revision %" PRId64,
                 m->i, mk->index, mk->revision, f->applied, store_tx_consistent_index(tx),
                 store_tx_rev(tx));
        store_tx_end(tx);
    }
    cairn__snapshot_marker__free_unpacked(mk, NULL);
    return 0;
}

static int on_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct fsm *f = rf->data;
    struct member *m = f->data;
    int rv = real_restore(rf, buf);
    if (rv == 0)
        m->restores++;
    return rv;
}

/* The store of another member, as node.c fetches it from the leader: its committed state
 * (store_copy) installed over this member's store (store_install). */
static int on_fetch_store(struct fsm *f, uint64_t index)
{
    struct member *m = f->data;
    struct cluster *c = m->c;
    raft_id leader;
    const char *address;
    raft_leader(f->raft, &leader, &address);
    if (leader == 0 || leader == m->i + 1)
        return CAIRN_E_NO_LEADER;
    trace(c, "member %u fetches the store of %llu for the snapshot at %" PRIu64, m->i,
          (unsigned long long)leader - 1, index);
    int fd = memfd_create("cairn-test-store", MFD_CLOEXEC);
    if (fd < 0)
        return CAIRN_E_IO;
    int err = store_copy(c->m[leader - 1].fx->st, fd);
    off_t size = err ? 0 : lseek(fd, 0, SEEK_END);
    void *data =
        err || size <= 0 ? MAP_FAILED : mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (!err && data == MAP_FAILED)
        err = CAIRN_E_IO;
    if (!err)
        err = store_install(f->st, data, (size_t)size);
    if (data != MAP_FAILED)
        munmap(data, (size_t)size);
    close(fd);
    m->fetches += err == 0;
    return err;
}

/* The fixture's send and receive are wrapped as a member's uv I/O is (raft/guard.h): around two
 * libraft 0.22.1 bugs in messages sent (one of them, the AppendEntries rejection without
 * last_log_index, would also make a seed replay differently under ASLR: the leader reads whatever
 * the stack held), one in messages received, and with the thesis' rule for votes. */
static int (*real_send)(struct raft_io *, struct raft_io_send *, const struct raft_message *,
                        raft_io_send_cb);

static int send_guarded(struct raft_io *io, struct raft_io_send *req,
                        const struct raft_message *msg, raft_io_send_cb cb)
{
    struct raft_message m = *msg;
    guard_send(io->data, &m); /* io->data: the sending raft instance */
    return real_send(io, req, &m, cb);
}

/* The fixture's in-memory disk is what a restarted member would load, and the fixture never
 * restarts one. Its truncation miscounts once a snapshot was installed (src/fixture.c,
 * ioMethodTruncate ignores start_index and copies past the array), so it is skipped: the disk
 * keeps entries it no longer needs, which nothing reads. */
static int truncate_skipped(struct raft_io *io, raft_index index)
{
    (void)io;
    (void)index;
    return 0;
}

static raft_io_recv_cb real_recv;
static int (*real_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);

static void recv_guarded(struct raft_io *io, struct raft_message *msg)
{
    struct raft *r = io->data;
    struct fsm *f = r->fsm->data;
    if (guard_recv(&((struct member *)f->data)->guard, r, f->applied, msg))
        real_recv(io, msg);
}

static int start_guarded(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                         raft_io_recv_cb recv)
{
    real_recv = recv;
    return real_start(io, msecs, tick, recv_guarded);
}

/* ---------------------------------------------------------------------------------------------- */
/* Setting the cluster up and down */

struct config {
    unsigned n;         /* members */
    bool pre_vote;      /* libraft's pre-vote */
    unsigned threshold; /* snapshot threshold; 0: libraft's default (no snapshot in a run) */
    unsigned trailing;  /* entries kept after a snapshot */
    unsigned p_durable; /* see struct cluster */
    unsigned p_lazy;
    unsigned latency_ms; /* network latency; 0: the fixture's 15 ms */
};

static struct cluster *cluster_new(struct t *t, uint64_t seed, const struct config *cfg)
{
    struct cluster *c = calloc(1, sizeof *c);
    assert_non_null(c);
    t->c = c;
    c->n = cfg->n;
    c->seed = seed;
    c->rng = splitmix(seed) | 1;
    const char *tr = getenv("CAIRN_RAFT_TRACE");
    c->trace = tr && *tr == '1';
    c->p_durable = cfg->p_durable;
    c->p_lazy = cfg->p_lazy;
    snprintf(crash_note, sizeof crash_note,
             "\nraft fixture: aborted during seed %" PRIu64 " (reproduce: CAIRN_RAFT_SEED=%" PRIu64
             ")\n",
             seed, seed);

    assert_int_equal(raft_fixture_init(&c->f), 0);
    c->fixture_ready = true;
    for (unsigned i = 0; i < c->n; i++) {
        struct member *m = &c->m[i];
        m->c = c;
        m->i = i;
        m->fx = fx_open(NULL);
        assert_int_equal(fsm_init(&m->fsm, m->fx->st, i + 1), 0);
        m->fsm_ready = true;
        m->fsm.data = m;
        m->fsm.take = on_take;
        m->fsm.answered = on_answered;
        m->fsm.applied_hook = on_applied_entry;
        m->fsm.fatal = on_fatal;
        m->fsm.fetch_store = on_fetch_store;
        real_snapshot = m->fsm.base.snapshot;
        real_restore = m->fsm.base.restore;
        m->fsm.base.snapshot = on_snapshot;
        m->fsm.base.restore = on_restore;
        assert_int_equal(raft_fixture_grow(&c->f, &m->fsm.base), 0);
        struct raft *r = raft_of(c, i);
        m->fsm.raft = r;
        real_send = r->io->send;
        r->io->send = send_guarded;
        r->io->truncate = truncate_skipped;
        real_start = r->io->start;
        r->io->start = start_guarded;
        raft_set_install_snapshot_timeout(r, INSTALL_MS);
        if (!c->trace)
            r->tracer = NULL; /* the fixture's tracer prints libraft's diagnostics */
        raft_set_pre_vote(r, cfg->pre_vote);
        if (cfg->threshold) {
            raft_set_snapshot_threshold(r, cfg->threshold);
            raft_set_snapshot_trailing(r, cfg->trailing);
        }
        if (cfg->latency_ms)
            raft_fixture_set_network_latency(&c->f, i, cfg->latency_ms);
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&c->f, c->n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&c->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&c->f), 0);
    return c;
}

/* Closes libraft (its pending callbacks run with RAFT_SHUTDOWN), then the state machines (a
 * durable commit, or an abort after a failure) and the stores. */
static void cluster_free(struct t *t)
{
    struct cluster *c = t->c;
    if (!c)
        return;
    t->c = NULL;
    store_tx_end(c->view);
    bool failed = c->unsafe || c->err[0];
    if (c->fixture_ready && !c->unsafe)
        raft_fixture_close(&c->f);
    for (unsigned i = 0; i < c->n; i++) {
        struct member *m = &c->m[i];
        if (m->fsm_ready) {
            if (failed && m->fsm.wtx) {
                store_tx_end(m->fsm.wtx);
                m->fsm.wtx = NULL;
            }
            fsm_close(&m->fsm);
        }
        fx_close(m->fx);
    }
    for (size_t k = 0; k < c->nb; k++) {
        arena_free(&c->b[k]->a);
        free(c->b[k]);
    }
    free(c->b);
    arena_free(&c->a);
    free(c);
}

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    if (!t)
        return -1;
    *state = t;
    signal(SIGABRT, on_abort);
    return 0;
}

static int teardown(void **state)
{
    struct t *t = *state;
    if (t->c) { /* the test failed during a run */
        print_message("raft fixture: the run of seed %" PRIu64
                      " failed (reproduce: CAIRN_RAFT_SEED=%" PRIu64 ")\n",
                      t->c->seed, t->c->seed);
        t->c->unsafe |= t->c->stepping;
    }
    cluster_free(t);
    free(t);
    signal(SIGABRT, SIG_DFL);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Links, kills and revivals
 *
 * The fixture has two flags per direction: connected (a disconnected send fails, as with a
 * partition) and saturated (messages are sent and lost). kill/revive saturate and desaturate all
 * of a member's links, and saturating requires a connected link. So the wanted state is kept here
 * and written back to every link after each change. */

static void sync_links(struct cluster *c)
{
    for (unsigned i = 0; i < c->n; i++)
        for (unsigned j = 0; j < c->n; j++) {
            if (i == j)
                continue;
            raft_fixture_reconnect(&c->f, i, j);
            if (c->lossy[i][j] || c->dead[i] || c->dead[j])
                raft_fixture_saturate(&c->f, i, j);
            else
                raft_fixture_desaturate(&c->f, i, j);
            if (c->part[i][j])
                raft_fixture_disconnect(&c->f, i, j);
        }
}

static void connect_all(struct cluster *c)
{
    for (unsigned i = 0; i < c->n; i++)
        for (unsigned j = 0; j < c->n; j++)
            if (i != j)
                raft_fixture_reconnect(&c->f, i, j);
}

/* The member stops: no ticks, no messages. libraft's instance and the open store transaction stay
 * as they are (the fixture does not restart it). */
static void kill_member(struct cluster *c, unsigned i)
{
    trace(c, "kill %u%s", i, raft_state(raft_of(c, i)) == RAFT_LEADER ? " (leader)" : "");
    connect_all(c);
    raft_fixture_kill(&c->f, i);
    c->dead[i] = true;
    sync_links(c);
}

static void revive_member(struct cluster *c, unsigned i)
{
    trace(c, "revive %u", i);
    connect_all(c);
    raft_fixture_revive(&c->f, i);
    c->dead[i] = false;
    sync_links(c);
}

/* Members in side_a on one side, the others on the other; both directions cut. */
static void partition(struct cluster *c, const bool *side_a)
{
    for (unsigned i = 0; i < c->n; i++)
        for (unsigned j = 0; j < c->n; j++)
            c->part[i][j] = i != j && side_a[i] != side_a[j];
    sync_links(c);
}

/* Every link up, every member alive. */
static void heal(struct cluster *c)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->dead[i])
            revive_member(c, i);
    memset(c->part, 0, sizeof c->part);
    memset(c->lossy, 0, sizeof c->lossy);
    sync_links(c);
}

/* ---------------------------------------------------------------------------------------------- */
/* Stepping */

static bool has_leader(struct cluster *c, void *arg)
{
    (void)arg;
    return raft_fixture_leader_index(&c->f) < c->n;
}

/* Steps until stop holds or max_ms of simulated time pass; returns whether stop holds. Checks the
 * callbacks' notes and libraft's applied index (it never goes back: the fixture never restarts a
 * member) after every step, and how far each member lags behind the leader's log. */
static bool step_until(struct cluster *c, bool (*stop)(struct cluster *, void *), void *arg,
                       unsigned max_ms)
{
    raft_time start = c->f.time;
    for (;;) {
        if (stop && stop(c, arg))
            return true;
        if (c->f.time - start >= max_ms)
            return false;
        c->stepping = true;
        raft_fixture_step(&c->f);
        c->stepping = false;
        check_notes(c);
        raft_index last = 0;
        for (unsigned i = 0; i < c->n; i++)
            if (raft_state(raft_of(c, i)) == RAFT_LEADER && raft_last_index(raft_of(c, i)) > last)
                last = raft_last_index(raft_of(c, i));
        for (unsigned i = 0; i < c->n; i++) {
            struct member *m = &c->m[i];
            raft_index applied = raft_last_applied(raft_of(c, i));
            CHECK(c, applied >= m->last_applied,
                  "member %u: last applied went from %" PRIu64 " back to %llu", i, m->last_applied,
                  (unsigned long long)applied);
            m->last_applied = applied;
            raft_index have = raft_last_index(raft_of(c, i));
            if (last > have && last - have > m->max_lag)
                m->max_lag = (unsigned)(last - have);
        }
    }
}

static void step_for(struct cluster *c, unsigned ms)
{
    step_until(c, NULL, NULL, ms);
}

static bool batch_done(struct cluster *c, void *arg)
{
    (void)c;
    return ((struct batch *)arg)->done;
}

/* ---------------------------------------------------------------------------------------------- */
/* Proposals */

static void on_entry_done(struct raft_apply *req, int status, void *result)
{
    (void)result;
    struct batch *b = (struct batch *)req;
    struct cluster *c = req->data;
    if (b->done)
        note(c, "batch %" PRIu64 " of member %u answered twice", b->seq, b->m->i);
    b->done = true;
    b->status = status;
    if (status != 0)
        return;
    if (!b->taken)
        note(c, "entry %llu (member %u, batch %" PRIu64 ") acknowledged, but the fsm never took it",
             (unsigned long long)req->index, b->m->i, b->seq);
    else if (b->index != req->index)
        note(c, "entry %llu (member %u, batch %" PRIu64 ") answered by the fsm at index %" PRIu64,
             (unsigned long long)req->index, b->m->i, b->seq, b->index);
}

/* Proposes one entry on member i with a put of keys[k] for each of the n keys (values unique:
 * "v.<member>.<batch>.<k>"). Returns the batch; b->refused when raft_apply said no (not leader). */
static struct batch *propose(struct cluster *c, unsigned i, size_t n, const char *const *keys)
{
    struct member *m = &c->m[i];
    struct batch *b = calloc(1, sizeof *b + n * sizeof b->puts[0]);
    assert_non_null(b);
    if (c->nb == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 64;
        c->b = realloc(c->b, c->cap * sizeof *c->b);
        assert_non_null(c->b);
    }
    c->b[c->nb++] = b;
    b->m = m;
    b->seq = m->next_batch++;
    b->n = n;
    for (size_t k = 0; k < n; k++) {
        struct put *u = &b->puts[k];
        snprintf(u->key, sizeof u->key, "%s", keys[k]);
        snprintf(u->value, sizeof u->value, "v.%u.%" PRIu64 ".%zu", i + 1, b->seq, k);
        u->put = (Etcdserverpb__PutRequest)ETCDSERVERPB__PUT_REQUEST__INIT;
        u->put.key = (ProtobufCBinaryData){strlen(u->key), (uint8_t *)u->key};
        u->put.value = (ProtobufCBinaryData){strlen(u->value), (uint8_t *)u->value};
        u->ir = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
        u->ir.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_PUT;
        u->ir.put = &u->put;
        u->p.req = &u->ir;
        u->p.data = b;
        u->p.arena = &b->a;
        u->p.next = k + 1 < n ? &b->puts[k + 1].p : NULL;
    }
    struct raft_buffer buf;
    assert_int_equal(entry_encode(i + 1, b->seq, &b->puts[0].p, &buf), 0);
    b->req.data = c;
    int rv = raft_apply(raft_of(c, i), &b->req, &buf, 1, on_entry_done);
    if (rv) {
        raft_free(buf.base); /* libraft takes the payload over only when it accepts the entry */
        b->refused = true;
        b->status = rv;
    }
    if (rv)
        trace(c, "propose on %u: batch %" PRIu64 " refused: %s", i, b->seq, raft_strerror(rv));
    else
        trace(c, "propose on %u: batch %" PRIu64 " at index %llu (%zu puts, first %s)", i, b->seq,
              (unsigned long long)b->req.index, n, b->puts[0].key);
    return b;
}

static struct batch *propose1(struct cluster *c, unsigned i, const char *key)
{
    return propose(c, i, 1, &key);
}

static bool acked(const struct batch *b)
{
    return b->done && b->status == 0;
}

/* Proposes key on member i and steps until libraft answers; the put must be acknowledged. */
static struct batch *put_acked(struct cluster *c, unsigned i, const char *key)
{
    struct batch *b = propose1(c, i, key);
    CHECK(c, !b->refused, "member %u refused %s: %s", i, key, raft_strerror(b->status));
    CHECK(c, step_until(c, batch_done, b, WAIT_MS), "put %s on member %u never answered", key, i);
    CHECK(c, b->status == 0, "put %s on member %u: %s", key, i, raft_strerror(b->status));
    return b;
}

/* ---------------------------------------------------------------------------------------------- */
/* Convergence and the checks */

static void on_barrier(struct raft_barrier *req, int status)
{
    struct cluster *c = req->data;
    c->barrier_busy = false;
    c->barrier_status = status;
}

static bool barrier_done(struct cluster *c, void *arg)
{
    (void)arg;
    return !c->barrier_busy;
}

struct applied_at {
    raft_index index;
};

static bool all_applied(struct cluster *c, void *arg)
{
    raft_index index = ((struct applied_at *)arg)->index;
    for (unsigned i = 0; i < c->n; i++)
        if (raft_last_applied(raft_of(c, i)) < index)
            return false;
    return true;
}

/* New election timeouts for every member, in [ELECTION_MS, 2 ELECTION_MS]: who times out first
 * changes. (The fixture fixes each member's timeout, so without this the member with the longest
 * log can keep losing the race to members it never votes for.) */
static void shuffle_timeouts(struct cluster *c)
{
    for (unsigned i = 0; i < c->n; i++)
        raft_fixture_set_randomized_election_timeout(&c->f, i,
                                                     ELECTION_MS + below(&c->rng, ELECTION_MS + 1));
}

/* Steps until there is a stable leader, as Raft's random timeouts would, within WAIT_MS. */
static bool wait_for_leader(struct cluster *c)
{
    for (unsigned waited = 0; waited < WAIT_MS; waited += 3 * ELECTION_MS) {
        if (step_until(c, has_leader, NULL, 3 * ELECTION_MS))
            return true;
        shuffle_timeouts(c);
    }
    return false;
}

/* Heals everything, lets a leader that every member follows commit a barrier in its term (which
 * commits whatever earlier terms left), then steps until every member applied the same index. */
static void converge(struct cluster *c)
{
    heal(c);
    trace(c, "heal");
    unsigned leader = c->n;
    for (int attempt = 0;; attempt++) {
        CHECK(c, attempt < 20, "no leader commits a barrier after healing (%d attempts)", attempt);
        CHECK(c, wait_for_leader(c), "%s", "no stable leader after healing");
        check_notes(c);
        leader = raft_fixture_leader_index(&c->f);
        c->barrier.data = c;
        c->barrier_busy = true;
        int rv = raft_barrier(raft_of(c, leader), &c->barrier, on_barrier);
        if (rv) {
            c->barrier_busy = false;
            step_for(c, ELECTION_MS / 2);
            continue;
        }
        CHECK(c, step_until(c, barrier_done, NULL, WAIT_MS), "the barrier on %u never answered",
              leader);
        if (c->barrier_status == 0)
            break;
        trace(c, "barrier on %u: %s", leader, raft_strerror(c->barrier_status));
    }
    for (;;) {
        struct applied_at at = {raft_last_applied(raft_of(c, leader))};
        CHECK(c, step_until(c, all_applied, &at, WAIT_MS), "not every member applied index %llu",
              (unsigned long long)at.index);
        step_for(c, 3 * ELECTION_MS / 10); /* some heartbeats more: nothing else may come */
        bool same = true;
        for (unsigned i = 0; i < c->n; i++)
            if (raft_last_applied(raft_of(c, i)) != raft_last_applied(raft_of(c, leader)))
                same = false;
        if (same)
            break;
    }
    trace(c, "converged at index %llu", (unsigned long long)raft_last_applied(raft_of(c, leader)));
}

/* The value of key at revision rev (0: current) in tx: 1 with *kv, 0 if absent. */
static int get_at(struct cluster *c, store_tx *tx, const char *key, int64_t rev,
                  struct store_kv *kv)
{
    struct store_range_req req = {.key = sb(key), .revision = rev};
    struct store_range_res res;
    int err = store_range(tx, &req, &c->a, &res);
    CHECK(c, err == 0, "range %s at %" PRId64 ": %s", key, rev, cairn_strerror(err));
    if (res.n_kvs == 0)
        return 0;
    *kv = res.kvs[0];
    return 1;
}

/* The put whose value is v ("v.<member>.<batch>.<k>"), or NULL. */
static const struct put *put_of_value(struct cluster *c, store_bytes v)
{
    char s[48];
    if (v.len >= sizeof s)
        return NULL;
    memcpy(s, v.data, v.len);
    s[v.len] = 0;
    unsigned id;
    uint64_t seq;
    size_t k;
    if (sscanf(s, "v.%u.%" SCNu64 ".%zu", &id, &seq, &k) != 3)
        return NULL;
    for (size_t j = 0; j < c->nb; j++) {
        const struct batch *b = c->b[j];
        if (b->m->i + 1 == id && b->seq == seq)
            return k < b->n && !b->refused ? &b->puts[k] : NULL;
    }
    return NULL;
}

/* Every store: the same hash, consistent index and revision; every acknowledged put at the
 * revision it was applied at; every live key's value one proposed for that key. Reads go through
 * a view, so a write transaction left open is read as applied. */
static void verify(struct cluster *c)
{
    uint32_t hash0 = 0;
    uint64_t index0 = 0;
    int64_t rev0 = 0;
    for (unsigned i = 0; i < c->n; i++) {
        struct member *m = &c->m[i];
        CHECK(c, store_tx_begin_view(m->fx->st, &c->view) == 0, "member %u: no view", i);
        store_tx *tx = c->view;
        uint64_t index = store_tx_consistent_index(tx);
        int64_t rev = store_tx_rev(tx), compacted;
        uint32_t hash;
        int err = store_hash_kv(tx, 0, &hash, &compacted);
        CHECK(c, err == 0, "member %u: hash: %s", i, cairn_strerror(err));
        CHECK(c, index == m->fsm.applied,
              "member %u: store at consistent index %" PRIu64 ", fsm applied %" PRIu64, i, index,
              m->fsm.applied);
        if (i == 0) {
            hash0 = hash;
            index0 = index;
            rev0 = rev;
        }
        CHECK(c, index == index0, "member %u at consistent index %" PRIu64 ", member 0 at %" PRIu64,
              i, index, index0);
        CHECK(c, rev == rev0, "member %u at revision %" PRId64 ", member 0 at %" PRId64, i, rev,
              rev0);
        CHECK(c, hash == hash0, "member %u hashes %08x, member 0 %08x (revision %" PRId64 ")", i,
              hash, hash0, rev);

        for (size_t j = 0; j < c->nb; j++) {
            const struct batch *b = c->b[j];
            if (!acked(b))
                continue;
            for (size_t k = 0; k < b->n; k++) {
                const struct put *u = &b->puts[k];
                struct store_kv kv;
                CHECK(c, u->rev > 1, "acknowledged put %s (%s) has no revision", u->key, u->value);
                CHECK(c, get_at(c, tx, u->key, u->rev, &kv) == 1,
                      "member %u lost acknowledged put %s=%s at revision %" PRId64, i, u->key,
                      u->value, u->rev);
                CHECK(c, sb_eq(kv.value, u->value) && kv.mod_revision == u->rev,
                      "member %u: acknowledged put %s=%s at revision %" PRId64
                      " reads %.*s (mod revision %" PRId64 ")",
                      i, u->key, u->value, u->rev, (int)kv.value.len, (const char *)kv.value.data,
                      kv.mod_revision);
            }
        }

        static const uint8_t zero = 0;
        struct store_range_req all = {.key = {&zero, 1}, .range_end = {&zero, 1}};
        struct store_range_res res;
        err = store_range(tx, &all, &c->a, &res);
        CHECK(c, err == 0, "member %u: range: %s", i, cairn_strerror(err));
        for (size_t j = 0; j < res.n_kvs; j++) {
            const struct put *u = put_of_value(c, res.kvs[j].value);
            CHECK(c, u && sb_eq(res.kvs[j].key, u->key),
                  "member %u holds %.*s=%.*s, never proposed", i, (int)res.kvs[j].key.len,
                  (const char *)res.kvs[j].key.data, (int)res.kvs[j].value.len,
                  (const char *)res.kvs[j].value.data);
        }
        store_tx_end(tx);
        c->view = NULL;
        arena_reset(&c->a);
    }
}

/* Whether key is absent from every store. */
static bool absent_everywhere(struct cluster *c, const char *key)
{
    for (unsigned i = 0; i < c->n; i++) {
        CHECK(c, store_tx_begin_view(c->m[i].fx->st, &c->view) == 0, "member %u: no view", i);
        struct store_kv kv;
        int found = get_at(c, c->view, key, 0, &kv);
        store_tx_end(c->view);
        c->view = NULL;
        arena_reset(&c->a);
        if (found)
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------- */
/* Stories */

static const struct config story3 = {.n = 3, .p_durable = 30, .p_lazy = 30};
static const struct config story5 = {.n = 5, .p_durable = 30, .p_lazy = 30};

/* A stable leader (one every connected member follows) other than member *arg. */
static bool other_leader(struct cluster *c, void *arg)
{
    unsigned i = raft_fixture_leader_index(&c->f);
    return i < c->n && i != *(unsigned *)arg;
}

/* 3 members. 0 leads and commits; it is killed; another member is elected and commits more; 0
 * comes back as a follower and catches up; all stores agree. */
static void test_leader_killed_and_replaced(void **state)
{
    struct cluster *c = cluster_new(*state, STORY_SEED, &story3);
    raft_fixture_elect(&c->f, 0);
    struct batch *first = propose(c, 0, 2, (const char *const[]){"a", "b"});
    CHECK(c, step_until(c, batch_done, first, WAIT_MS) && acked(first), "%s", "first put");
    put_acked(c, 0, "c");

    kill_member(c, 0);
    unsigned zero = 0;
    CHECK(c, step_until(c, other_leader, &zero, WAIT_MS), "%s", "no new leader");
    unsigned leader = raft_fixture_leader_index(&c->f);
    put_acked(c, leader, "d");
    put_acked(c, leader, "a"); /* overwrites the first leader's a */
    /* the dead member still thinks it leads: what it accepts now never commits */
    struct batch *stale = propose1(c, 0, "stale");
    assert_false(stale->refused);
    step_for(c, 2 * ELECTION_MS);
    assert_false(acked(stale));

    revive_member(c, 0);
    converge(c);
    verify(c);
    assert_int_equal(raft_state(raft_of(c, 0)), RAFT_FOLLOWER);
    assert_true(stale->done);
    assert_int_not_equal(stale->status, 0);
    assert_true(absent_everywhere(c, "stale"));
    cluster_free(*state);
}

/* 3 members with pre-vote, as cairnd runs. 0 leads and is killed; 1's election timer is set to
 * expire at the minimum (the election timeout), 2's near twice that (raft_fixture_elect gave both
 * the longest; they take these with the next append). 1 must win at its own timeout:
 * 2 has heard nothing from its leader for an election timeout when 1's requests arrive, so it
 * weighs them although it still believes in 0 (raft/guard.h). libraft alone would refuse them
 * until 2's own timer expired, and the new leader would come only after that. */
static void test_successor_elected_at_the_first_timeout(void **state)
{
    static const struct config cfg = {.n = 3, .pre_vote = true, .p_durable = 30, .p_lazy = 30};
    struct cluster *c = cluster_new(*state, STORY_SEED, &cfg);
    raft_fixture_elect(&c->f, 0);
    put_acked(c, 0, "a");
    const unsigned late = 2 * ELECTION_MS - 100;
    raft_fixture_set_randomized_election_timeout(&c->f, 1, ELECTION_MS);
    raft_fixture_set_randomized_election_timeout(&c->f, 2, late);
    step_for(c, 3 * ELECTION_MS / 10); /* drawn again at each append (raft/guard.h) */

    raft_time killed = raft_fixture_time(&c->f);
    kill_member(c, 0);
    unsigned zero = 0;
    CHECK(c, step_until(c, other_leader, &zero, WAIT_MS), "%s", "no new leader");
    raft_time elected = raft_fixture_time(&c->f);
    assert_int_equal(raft_fixture_leader_index(&c->f), 1);
    assert_true(elected - killed < late);
    put_acked(c, 1, "b");
    revive_member(c, 0);
    converge(c);
    verify(c);
    cluster_free(*state);
}

static bool majority_side_leads(struct cluster *c, void *arg)
{
    raft_term old = *(raft_term *)arg;
    for (unsigned i = 2; i < c->n; i++)
        if (raft_state(raft_of(c, i)) == RAFT_LEADER && raft_current_term(raft_of(c, i)) > old)
            return true;
    return false;
}

static bool steps_down(struct cluster *c, void *arg)
{
    return raft_state(raft_of(c, *(unsigned *)arg)) != RAFT_LEADER;
}

/* 5 members. 0 leads; {0, 1} are cut off from {2, 3, 4}. 0 still accepts proposals but cannot
 * commit them; the majority elects a leader and commits; 0 steps down and its proposals fail.
 * After healing, the minority's proposals are nowhere and the majority's everywhere. */
static void test_minority_partition_cannot_commit(void **state)
{
    struct cluster *c = cluster_new(*state, STORY_SEED, &story5);
    raft_fixture_elect(&c->f, 0);
    put_acked(c, 0, "before");
    raft_term old = raft_current_term(raft_of(c, 0));

    partition(c, (const bool[]){true, true, false, false, false});
    struct batch *minority[3];
    for (int k = 0; k < 3; k++) {
        char key[16];
        snprintf(key, sizeof key, "minority%u", (unsigned)k % 10);
        minority[k] = propose1(c, 0, key);
        assert_false(minority[k]->refused); /* 0 does not know yet */
        step_for(c, 100);
    }
    CHECK(c, step_until(c, majority_side_leads, &old, WAIT_MS), "%s", "the majority elects nobody");
    unsigned leader = 2;
    while (raft_state(raft_of(c, leader)) != RAFT_LEADER)
        leader++;
    put_acked(c, leader, "majority");
    put_acked(c, leader, "before");
    unsigned zero = 0;
    CHECK(c, step_until(c, steps_down, &zero, WAIT_MS), "%s",
          "the minority leader never steps down");
    for (int k = 0; k < 3; k++) {
        assert_false(acked(minority[k]));
        assert_true(minority[k]->done); /* failed when 0 lost its leadership */
    }
    assert_true(propose1(c, 0, "refused")->refused);

    partition(c, (const bool[]){false, false, false, false, false});
    converge(c);
    verify(c);
    for (int k = 0; k < 3; k++)
        assert_true(absent_everywhere(c, minority[k]->puts[0].key));
    assert_false(absent_everywhere(c, "majority"));
    cluster_free(*state);
}

/* 3 members, a snapshot every 8 entries keeping 2. Member 2 is down while 0 commits 24 puts, so
 * the leader's log no longer holds what 2 misses: revived, it gets an InstallSnapshot, and its
 * fsm, whose store is behind the snapshot, fetches the leader's store; it then applies what
 * follows and agrees with the others. */
static void test_lagging_member_fetches_store(void **state)
{
    static const struct config cfg = {
        .n = 3, .threshold = 8, .trailing = 2, .p_durable = 30, .p_lazy = 30};
    struct cluster *c = cluster_new(*state, STORY_SEED, &cfg);
    raft_fixture_elect(&c->f, 0);
    put_acked(c, 0, "a");
    kill_member(c, 2);
    for (unsigned k = 0; k < 24; k++) {
        char key[16];
        snprintf(key, sizeof key, "k%02u", k % 100);
        put_acked(c, 0, key);
    }
    assert_true(c->m[0].snapshots > 0);
    revive_member(c, 2);
    put_acked(c, 0, "after");
    put_acked(c, 0, "a");
    converge(c);
    verify(c);
    assert_int_equal(c->m[2].fetches, 1);
    assert_int_equal(c->m[2].restores, 1);
    assert_int_equal(c->m[0].fetches + c->m[1].fetches, 0);
    cluster_free(*state);
}

/* ---------------------------------------------------------------------------------------------- */
/* Seeded runs */

struct totals {
    unsigned runs;
    unsigned proposed, acked, refused;
    unsigned kills, partitions, losses;
    unsigned durable, lazy, open_at_end;
    unsigned snapshots, restores, fetches, held_off;
    unsigned max_lag;
    uint64_t sim_ms;
};

static unsigned random_leader(struct cluster *c)
{
    unsigned cand[MAX_MEMBERS], n = 0;
    for (unsigned i = 0; i < c->n; i++)
        if (!c->dead[i] && raft_state(raft_of(c, i)) == RAFT_LEADER)
            cand[n++] = i;
    return n ? cand[below(&c->rng, n)] : c->n;
}

static unsigned count_dead(struct cluster *c)
{
    unsigned n = 0;
    for (unsigned i = 0; i < c->n; i++)
        n += c->dead[i];
    return n;
}

/* One random change to the cluster's conditions. */
static void disturb(struct cluster *c, struct totals *tot)
{
    unsigned r = below(&c->rng, 100);
    if (r < 14) { /* a partition into two random sides (sometimes one-way) */
        bool side[MAX_MEMBERS];
        unsigned in_a = 0;
        for (unsigned i = 0; i < c->n; i++)
            in_a += side[i] = below(&c->rng, 2);
        if (in_a == 0 || in_a == c->n) {
            unsigned i = below(&c->rng, c->n);
            side[i] = !side[i];
        }
        bool one_way = below(&c->rng, 5) == 0;
        for (unsigned i = 0; i < c->n; i++)
            for (unsigned j = 0; j < c->n; j++)
                c->part[i][j] = i != j && side[i] != side[j] && (!one_way || side[i]);
        sync_links(c);
        tot->partitions++;
        trace(c, "partition%s: side a %u%u%u%u%u", one_way ? " (a cannot send)" : "", side[0],
              c->n > 1 && side[1], c->n > 2 && side[2], c->n > 3 && side[3], c->n > 4 && side[4]);
    } else if (r < 26) { /* partitions heal */
        memset(c->part, 0, sizeof c->part);
        sync_links(c);
        trace(c, "%s", "partitions heal");
    } else if (r < 36) { /* messages on a few links are lost */
        for (unsigned k = 1 + below(&c->rng, 3); k > 0; k--) {
            unsigned i = below(&c->rng, c->n), j = below(&c->rng, c->n);
            if (i != j)
                c->lossy[i][j] = true;
        }
        sync_links(c);
        tot->losses++;
        trace(c, "%s", "message loss on some links");
    } else if (r < 44) {
        memset(c->lossy, 0, sizeof c->lossy);
        sync_links(c);
        trace(c, "%s", "no more message loss");
    } else if (r < 58) { /* a kill: usually the leader; a majority dies only rarely */
        unsigned i = random_leader(c);
        if (i == c->n || below(&c->rng, 3) == 0)
            i = below(&c->rng, c->n);
        unsigned limit = below(&c->rng, 10) == 0 ? c->n - 1 : (c->n - 1) / 2;
        if (!c->dead[i] && count_dead(c) < limit) {
            kill_member(c, i);
            tot->kills++;
        }
    } else if (r < 70) { /* a revival */
        unsigned dead = count_dead(c);
        for (unsigned i = 0, k = dead ? below(&c->rng, dead) : 0; dead && i < c->n; i++)
            if (c->dead[i] && k-- == 0)
                revive_member(c, i);
    } else if (r < 76) {
        for (unsigned i = 0; i < c->n; i++) {
            raft_fixture_set_network_latency(&c->f, i, 2 + below(&c->rng, 60));
            raft_fixture_set_disk_latency(&c->f, i, 1 + below(&c->rng, 30));
        }
        trace(c, "%s", "new latencies");
    } else if (r < 84) {
        shuffle_timeouts(c);
        trace(c, "%s", "new election timeouts");
    }
}

/* A few proposals, mostly on a leader, sometimes on any member (usually refused). */
static void propose_some(struct cluster *c, struct totals *tot)
{
    for (unsigned k = below(&c->rng, 4); k > 0; k--) {
        unsigned i = random_leader(c);
        if (i == c->n && below(&c->rng, 3) != 0)
            continue; /* mostly wait for a leader */
        if (i == c->n || below(&c->rng, 8) == 0)
            i = below(&c->rng, c->n);
        if (c->dead[i])
            continue;
        size_t n = 1 + below(&c->rng, 3);
        char keys[3][16];
        const char *kp[3];
        for (size_t j = 0; j < n; j++) {
            snprintf(keys[j], sizeof keys[j], "k%02u", below(&c->rng, NKEYS));
            kp[j] = keys[j];
        }
        struct batch *b = propose(c, i, n, kp);
        tot->proposed++;
        tot->refused += b->refused;
    }
}

static void run_seed(struct t *t, uint64_t seed, bool snapshots, unsigned rounds,
                     struct totals *tot)
{
    uint64_t s = splitmix(seed ^ 0x5eed) | 1;
    struct config cfg = {
        .n = below(&s, 3) == 0 ? 3 : 5,
        .pre_vote = below(&s, 2),
        .p_durable = below(&s, 30),
        .p_lazy = below(&s, 40),
        .latency_ms = 5 + below(&s, 30),
    };
    if (snapshots) {
        cfg.threshold = 4 + below(&s, 28);
        cfg.trailing = 1 + below(&s, 48); /* lagging members fetch a store now and then */
    }
    struct cluster *c = cluster_new(t, seed, &cfg);
    trace(c,
          "seed %" PRIu64 ": %u members, pre-vote %d, commit %u%% durable %u%% not, snapshot %u/%u",
          seed, cfg.n, cfg.pre_vote, cfg.p_durable, cfg.p_lazy, cfg.threshold, cfg.trailing);
    shuffle_timeouts(c);
    for (unsigned round = 0; round < rounds; round++) {
        disturb(c, tot);
        for (unsigned slice = 1 + below(&c->rng, 3); slice > 0; slice--) {
            propose_some(c, tot);
            step_for(c, below(&c->rng, 600));
        }
    }
    converge(c);
    verify(c);

    tot->runs++;
    tot->sim_ms += c->f.time;
    for (size_t k = 0; k < c->nb; k++)
        tot->acked += acked(c->b[k]);
    for (unsigned i = 0; i < c->n; i++) {
        struct member *m = &c->m[i];
        tot->durable += m->durable;
        tot->lazy += m->lazy;
        tot->open_at_end += m->fsm.wtx != NULL;
        tot->snapshots += m->snapshots;
        tot->restores += m->restores;
        tot->fetches += m->fetches;
        tot->held_off += m->guard.held_off;
        if (m->max_lag > tot->max_lag)
            tot->max_lag = m->max_lag;
    }
    cluster_free(t);
}

static bool long_mode(void)
{
    const char *v = getenv("CAIRN_TEST_LONG");
    return v && *v == '1';
}

static void run_seeds(struct t *t, bool snapshots, unsigned normal, unsigned extended)
{
    const char *one = getenv("CAIRN_RAFT_SEED");
    bool lng = long_mode();
    unsigned rounds = lng ? 60 : 30;
    struct totals tot = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (one && *one) {
        run_seed(t, strtoull(one, NULL, 0), snapshots, rounds, &tot);
    } else {
        unsigned n = lng ? extended : normal;
        for (unsigned k = 0; k < n; k++)
            run_seed(t, (snapshots ? 100000 : 1) + k, snapshots, rounds, &tot);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("raft fixture%s: %u seeds x %u rounds in %.1f s (%.0f simulated s): %u entries "
                  "proposed, %u acknowledged, %u refused; %u kills, %u partitions, %u lossy; "
                  "commits %u durable %u not, %u left open; %u snapshots, %u restores (%u fetched "
                  "a store, %u installs held off); longest lag %u entries\n",
                  snapshots ? " with snapshots" : "", tot.runs, rounds, secs,
                  (double)tot.sim_ms / 1000, tot.proposed, tot.acked, tot.refused, tot.kills,
                  tot.partitions, tot.losses, tot.durable, tot.lazy, tot.open_at_end, tot.snapshots,
                  tot.restores, tot.fetches, tot.held_off, tot.max_lag);
}

static void test_seeded(void **state)
{
    run_seeds(*state, false, 100, 1500);
}

static void test_seeded_with_snapshots(void **state)
{
    run_seeds(*state, true, 60, 800);
}

int main(void)
{
    const char *tr = getenv("CAIRN_RAFT_TRACE");
    if (!tr || *tr != '1')
        log_set_level(LOG_WARN); /* fsm_snapshot logs every snapshot */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leader_killed_and_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_successor_elected_at_the_first_timeout, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_minority_partition_cannot_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lagging_member_fetches_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seeded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seeded_with_snapshots, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
