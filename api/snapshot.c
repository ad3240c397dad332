/* api/snapshot.c — the store for a member whose log ends before the leader's first entry.
 *
 * Leader side: /cairn.Internal/Snapshot is a stream. On its request the thread pool writes LMDB's
 * compacted copy of the committed state into an unnamed file in the data directory; then each piece
 * of SNAPSHOT_PIECE bytes is read on the thread pool too (uv_fs_read) and sent, the next one once
 * the stream's send queue has room, and the stream ends with OK. So neither the copy nor its queue
 * is held in memory, whatever the store's size.
 *
 * Every member serves it, not only the leader: each piece also says the raft index the copy has
 * reached at least (the store's committed consistent index when the copy began).
 *
 * Member side: api_fetch_store() opens the stream to a member's client port on a private loop (the
 * member has nothing to serve before it has a store), writes each piece into the store's
 * installation file as it arrives and swaps the copy in once the stream ended with OK and every
 * byte of it came. A stream that fails, stalls for SNAPSHOT_IDLE_MS, ends short or comes from a
 * member whose copy is older than the snapshot leaves the old data, and the next member is asked:
 * the leader first when one is known, then the others from the member table, in up to
 * FETCH_ROUNDS passes a second apart. So a member whose leader died during the transfer, or one
 * restarted after its raft snapshot was saved but before the store came (no leader is known at
 * start), still gets a store. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/server.h"
#include "api/service.h"
#include "client/cairn_client.h"
#include "common/log.h"
#include "common/url.h"
#include "raft/members.h"

#define SNAPSHOT_PIECE   (1024 * 1024) /* bytes of the copy per response */
#define SNAPSHOT_IDLE_MS (60 * 1000)   /* the member gives up when nothing arrives for this long */
#define FETCH_ROUNDS     30            /* passes over the other members before giving up */
#define FETCH_PAUSE_MS   1000          /* between two passes */

static const struct cl_method snapshot_method = {
    .path = "/cairn.Internal/Snapshot",
    .request = &cairn__snapshot_request__descriptor,
    .response = &cairn__snapshot_response__descriptor,
    .idempotent = true,
};

/* ---------------------------------------------------------------------------------------------- */
/* The leader's side */

struct snap_send {
    uv_work_t work; /* making the copy */
    uv_fs_t read;   /* reading the next piece */
    uv_loop_t *loop;
    struct grpc_call *call;
    store *st;
    uint8_t *piece; /* SNAPSHOT_PIECE bytes */
    int fd;         /* the copy, -1 before it is made */
    uint64_t size, sent;
    uint64_t index; /* the copy has applied the log at least up to here */
    int err;        /* making the copy */
    bool busy;      /* the copy is being made or a piece read, on the thread pool */
    bool cancelled; /* the caller went away meanwhile: the callback ends it */
    bool blocked;   /* the queue is over its high-water mark: on_writable goes on */
};

static void send_free(struct snap_send *ss)
{
    if (ss->fd >= 0)
        close(ss->fd);
    free(ss->piece);
    free(ss);
}

static void send_end(struct snap_send *ss, int err)
{
    grpc_call_set_data(ss->call, NULL);
    if (err)
        grpc_call_finish(ss->call, cairn_err_grpc_code(err), cairn_strerror(err));
    else
        grpc_call_finish(ss->call, GRPC_OK, NULL);
    send_free(ss);
}

/* A thread pool callback found the call cancelled meanwhile: it ends here. */
static bool ended_meanwhile(struct snap_send *ss)
{
    ss->busy = false;
    if (!ss->cancelled)
        return false;
    grpc_call_finish(ss->call, GRPC_CANCELLED, NULL); /* not sent: nobody listens */
    send_free(ss);
    return true;
}

static void on_piece_read(uv_fs_t *req);

/* Reads the next piece on the thread pool (the copy may be far larger than the page cache), or
 * ends the stream with OK once every piece went. */
static void read_piece(struct snap_send *ss)
{
    if (ss->sent == ss->size) {
        log_info("cairnd: sent the store's copy (%llu bytes)", (unsigned long long)ss->size);
        send_end(ss, 0);
        return;
    }
    uint64_t left = ss->size - ss->sent;
    uv_buf_t buf =
        uv_buf_init((char *)ss->piece, left < SNAPSHOT_PIECE ? (unsigned)left : SNAPSHOT_PIECE);
    ss->read.data = ss;
    ss->busy = true;
    int rc = uv_fs_read(ss->loop, &ss->read, ss->fd, &buf, 1, (int64_t)ss->sent, on_piece_read);
    if (rc) {
        ss->busy = false;
        log_error("cairnd: reading the store's copy failed: %s", uv_strerror(rc));
        send_end(ss, CAIRN_E_IO);
    }
}

/* Sends the piece read, then reads the next unless the queue is full. */
static void on_piece_read(uv_fs_t *req)
{
    struct snap_send *ss = req->data;
    ssize_t r = req->result;
    uv_fs_req_cleanup(req);
    if (ended_meanwhile(ss))
        return;
    if (r <= 0) {
        log_error("cairnd: reading the store's copy failed: %s",
                  r < 0 ? uv_strerror((int)r) : "short file");
        send_end(ss, CAIRN_E_IO);
        return;
    }
    Cairn__SnapshotResponse resp = CAIRN__SNAPSHOT_RESPONSE__INIT;
    resp.store = (ProtobufCBinaryData){(size_t)r, ss->piece};
    resp.size = ss->size;
    resp.index = ss->index;
    size_t len = protobuf_c_message_get_packed_size(&resp.base);
    uint8_t *out = malloc(len);
    if (!out) {
        send_end(ss, CAIRN_E_NOMEM);
        return;
    }
    protobuf_c_message_pack(&resp.base, out);
    int rc = grpc_call_send(ss->call, out, len);
    free(out);
    if (rc < 0) { /* the connection is gone */
        send_end(ss, CAIRN_E_IO);
        return;
    }
    ss->sent += (uint64_t)r;
    if (rc == 1)
        ss->blocked = true;
    else
        read_piece(ss);
}

/* On the thread pool: the copy, into an unnamed file beside the data. */
static void make_copy(uv_work_t *w)
{
    struct snap_send *ss = w->data;
    store_tx *tx; /* the committed index before the copy: the copy holds at least as much */
    ss->err = store_tx_begin_read(ss->st, &tx);
    if (ss->err)
        return;
    ss->index = store_tx_consistent_index(tx);
    store_tx_end(tx);
    ss->err = store_copy_tmpfile(ss->st, &ss->fd);
    if (!ss->err) {
        off_t end = lseek(ss->fd, 0, SEEK_END);
        if (end < 0)
            ss->err = CAIRN_E_IO;
        else
            ss->size = (uint64_t)end;
    }
}

static void copy_made(uv_work_t *w, int status)
{
    struct snap_send *ss = w->data;
    if (ended_meanwhile(ss))
        return;
    if (status || ss->err) {
        log_error("cairnd: copying the store for a member failed: %s",
                  cairn_strerror(ss->err ? ss->err : CAIRN_E_INTERNAL));
        send_end(ss, ss->err ? ss->err : CAIRN_E_INTERNAL);
        return;
    }
    read_piece(ss);
}

static void on_snapshot_msg(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_server *srv = ctx;
    if (grpc_call_data(call))
        return; /* one request per stream; more change nothing */
    Cairn__SnapshotRequest *q = cairn__snapshot_request__unpack(NULL, len, msg);
    if (!q) {
        grpc_call_finish(call, GRPC_INTERNAL, "grpc: error unmarshalling request");
        return;
    }
    cairn__snapshot_request__free_unpacked(q, NULL);
    struct snap_send *ss = calloc(1, sizeof *ss);
    if (!ss || !(ss->piece = malloc(SNAPSHOT_PIECE))) {
        free(ss);
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, cairn_strerror(CAIRN_E_NOMEM));
        return;
    }
    ss->call = call;
    ss->loop = srv->loop;
    ss->st = srv->st;
    ss->fd = -1;
    ss->work.data = ss;
    ss->busy = true;
    grpc_call_set_data(call, ss);
    if (uv_queue_work(srv->loop, &ss->work, make_copy, copy_made)) {
        ss->busy = false;
        send_end(ss, CAIRN_E_INTERNAL);
    }
}

static void on_snapshot_writable(struct grpc_call *call, void *ctx)
{
    (void)ctx;
    struct snap_send *ss = grpc_call_data(call);
    if (ss && ss->blocked) {
        ss->blocked = false;
        read_piece(ss);
    }
}

static void on_snapshot_cancel(struct grpc_call *call, void *ctx)
{
    (void)ctx;
    struct snap_send *ss = grpc_call_data(call);
    if (!ss) {
        grpc_call_finish(call, GRPC_CANCELLED, NULL);
        return;
    }
    grpc_call_set_data(call, NULL);
    if (ss->busy) {
        ss->cancelled = true; /* the thread pool's callback ends it */
        return;
    }
    grpc_call_finish(call, GRPC_CANCELLED, NULL);
    send_free(ss);
}

void api_snapshot_register(struct api_server *s)
{
    api_add_method(s, snapshot_method.path, true, on_snapshot_msg);
    struct grpc_method *m = &s->methods[s->n_methods - 1];
    m->on_cancel = on_snapshot_cancel;
    m->on_writable = on_snapshot_writable;
}

/* ---------------------------------------------------------------------------------------------- */
/* The member's side */

struct snap_fetch {
    struct cl_stream s;
    struct store_install *in;
    uv_timer_t idle;
    uint64_t need; /* the index the copy must have reached */
    uint64_t size, got;
    int err;      /* writing the pieces (a failure of this member's own disk) */
    bool too_old; /* the sender's copy is before `need` */
    bool done;    /* the stream ended */
};

static void on_piece(struct cl_stream *s, ProtobufCMessage *msg)
{
    struct snap_fetch *f = s->data;
    const Cairn__SnapshotResponse *r = (const Cairn__SnapshotResponse *)msg;
    uv_timer_again(&f->idle);
    if (!f->err && !f->too_old) {
        bool bad = (f->size && r->size != f->size) || r->store.len > r->size - f->got;
        if (r->index < f->need) {
            f->too_old = true;
            log_info("cairnd: that member's store is at index %llu, before %llu: asking another",
                     (unsigned long long)r->index, (unsigned long long)f->need);
        } else if (bad) {
            f->too_old = true; /* pieces of different copies, or more than announced */
            log_error("cairnd: the store's pieces do not add up: asking another member");
        } else {
            f->size = r->size;
            f->err = store_install_write(f->in, r->store.data, r->store.len);
            f->got += r->store.len;
        }
        if (f->err || f->too_old)
            cl_stream_cancel(s);
    }
    cl_stream_msg_free(msg);
}

static void on_fetch_end(struct cl_stream *s)
{
    struct snap_fetch *f = s->data;
    f->done = true;
    uv_timer_stop(&f->idle);
}

static void on_idle(uv_timer_t *t)
{
    struct snap_fetch *f = t->data;
    log_error("cairnd: no part of the store arrived for %d s", SNAPSHOT_IDLE_MS / 1000);
    cl_stream_cancel(&f->s);
}

/* One attempt: the store of the member at endpoint, if it has reached index `need`, written into
 * the installation file and swapped in. Returns 0 once installed; FETCH_RETRY when that member
 * could not give it (gone, stalled, behind, a short or inconsistent copy: the old data stays); or
 * this member's own failure (its disk, memory), which no other member can mend. */
#define FETCH_RETRY 1
static int fetch_from(store *st, const char *endpoint, uint64_t need)
{
    struct cl_options o;
    cl_options_default(&o);
    const char *eps[1] = {endpoint};
    o.endpoints = eps;
    o.n_endpoints = 1;
    struct cl_sync *sync;
    int err = cl_sync_new(&o, &sync);
    if (err)
        return err;
    struct snap_fetch f = {.s = {.on_msg = on_piece, .on_end = on_fetch_end}, .need = need};
    f.s.data = &f;
    if ((err = store_install_begin(st, &f.in))) {
        cl_sync_free(sync);
        return err;
    }
    struct cl_client *c = cl_sync_client(sync);
    uv_timer_init(cl_client_loop(c), &f.idle);
    f.idle.data = &f;
    uv_timer_start(&f.idle, on_idle, SNAPSHOT_IDLE_MS, SNAPSHOT_IDLE_MS);
    log_info("cairnd: fetching the store from the member at %s", endpoint);
    Cairn__SnapshotRequest q = CAIRN__SNAPSHOT_REQUEST__INIT;
    bool opened = (err = cl_stream_open(c, &f.s, &snapshot_method, 0)) == 0;
    if (!err && !(err = cl_stream_send(&f.s, &q.base)))
        cl_stream_close_send(&f.s);
    if (err)
        cl_stream_cancel(&f.s); /* ends it, if it was opened */
    if (opened)
        cl_sync_run(sync, &f.done);
    uv_close((uv_handle_t *)&f.idle, NULL);
    if (!err && f.err)
        err = f.err;
    else if (!err && (f.too_old || f.s.code != GRPC_OK || f.got != f.size || f.size == 0))
        err = FETCH_RETRY;
    if (err == FETCH_RETRY && !f.too_old)
        log_error("cairnd: fetching the store failed after %llu of %llu bytes: %s",
                  (unsigned long long)f.got, (unsigned long long)f.size,
                  f.s.message ? f.s.message : "the stream ended short");
    cl_stream_reset(&f.s);
    cl_sync_free(sync); /* runs the loop until the timer's close is done too */
    if (err) {
        store_install_abort(f.in);
        return err;
    }
    err = store_install_finish(f.in);
    log_info("cairnd: received %llu bytes of store: %s", (unsigned long long)f.got,
             cairn_strerror(err));
    return err;
}

/* The client endpoints of the other members, the leader first when it is known. */
static int fetch_candidates(store *st, uint64_t self, uint64_t leader, char (**out)[256], size_t *n)
{
    *out = NULL;
    *n = 0;
    Cairn__MemberRecord **list;
    size_t count;
    int err = members_load_view(st, &list, &count); /* no write transaction is open here */
    if (err)
        return err;
    char(*eps)[256] = calloc(count ? count : 1, sizeof *eps);
    if (!eps) {
        members_free(list, count);
        return CAIRN_E_NOMEM;
    }
    for (int pass = 0; pass < 2; pass++) /* the leader, then the rest */
        for (size_t i = 0; i < count; i++) {
            const Etcdserverpb__Member *m = list[i]->member;
            if (m->id == self || m->n_clienturls == 0 || (m->id == leader) != (pass == 0))
                continue;
            if (url_host_port(m->clienturls[0], eps[*n], sizeof eps[*n]) == 0)
                (*n)++;
        }
    members_free(list, count);
    *out = eps;
    return 0;
}

int api_fetch_store(store *st, uint64_t self, uint64_t leader, uint64_t index)
{
    char(*eps)[256];
    size_t n;
    int err = fetch_candidates(st, self, leader, &eps, &n);
    if (err)
        return err;
    err = n ? FETCH_RETRY : CAIRN_E_NO_LEADER;
    for (unsigned round = 0; n && err == FETCH_RETRY && round < FETCH_ROUNDS; round++) {
        if (round)
            uv_sleep(FETCH_PAUSE_MS);
        for (size_t i = 0; i < n && err == FETCH_RETRY; i++)
            err = fetch_from(st, eps[i], index);
    }
    free(eps);
    if (err == FETCH_RETRY) {
        log_error("cairnd: no member sent a store at index %llu or later in %u attempts",
                  (unsigned long long)index, FETCH_ROUNDS);
        err = CAIRN_E_NO_LEADER;
    }
    return err;
}
