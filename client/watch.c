/* client/watch.c — etcd's watches on one Watch stream per watcher, resumed across failures.
 *
 * Creating: creates are sent one at a time, as clientv3 does; etcd answers each with created and
 * the watch ID it chose, in order, so the answer belongs to the watch whose create is in flight.
 * A watch that ends locally while its create is in flight leaves an orphan: its ID, once it comes,
 * is cancelled on the server.
 *
 * Resuming: each watch remembers the first revision it has not delivered (req_.start_revision):
 * after a batch, the last event's mod_revision + 1; after a progress notification or the first
 * creation of a watch "from now", the header's revision + 1. (clientv3 3.4 resumes from the
 * header's revision itself there, which can deliver an event at that revision twice; the + 1
 * cannot skip one: everything at or below that revision was already in the store when the server
 * said so.) When the stream ends with UNAVAILABLE or INTERNAL (clientv3's non-halting errors; a
 * lost connection is UNAVAILABLE) — but not "etcdserver: no leader" — it is opened again — at once
 * the first time, then after 50 ms doubling to 1 s — on the next endpoint, and every running watch
 * is created again from there. The creation responses of resumed watches are not delivered. A batch
 * split into fragments is delivered only when complete, so a stream lost mid-batch resends the
 * batch from its start.
 *
 * Last responses that are not the server's (cancel, close, errors) are delivered from the
 * client's check handle, never from inside the caller's function. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/error.h"

#define RESUME_BACKOFF_MS     50
#define RESUME_MAX_BACKOFF_MS 1000

/* Where a watch is (cl_watch.state_). */
enum {
    W_IDLE = 0, /* not started, or reset */
    W_PENDING,  /* to be created on the stream */
    W_CREATING, /* its create is in flight */
    W_ACTIVE,   /* created: events arrive for its id */
    W_ENDING,   /* its last response is due (deferred) */
    W_DONE      /* its last response was delivered */
};

struct cl_watcher {
    struct cl_client *c;       /* owner */
    struct cl_stream s;        /* the Watch stream (while stream_open) */
    bool stream_open;          /* s opened and its on_end not run yet */
    struct cl_watch *watches;  /* every started watch not yet done, in start order */
    struct cl_watch *creating; /* whose create is in flight, or NULL */
    unsigned orphans;          /* creates in flight whose watch ended meanwhile (at most 1) */
    unsigned failures;         /* stream failures since the last creation */
    bool closing;              /* cl_watcher_close() ran */
    bool require_leader;       /* streams carry "hasleader" */
    struct cl_defer defer;     /* delivers the last responses of W_ENDING watches */
};

static const Etcdserverpb__ResponseHeader empty_header = ETCDSERVERPB__RESPONSE_HEADER__INIT;

static void pump(struct cl_watcher *wr);
static int open_stream(struct cl_watcher *wr, uint64_t delay_ms);

/* ---------------------------------------------------------------------------------------------- */
/* Bookkeeping */

static void unlink_watch(struct cl_watcher *wr, struct cl_watch *w)
{
    for (struct cl_watch **p = &wr->watches; *p; p = &(*p)->next_) {
        if (*p == w) {
            *p = w->next_;
            break;
        }
    }
    w->next_ = NULL;
}

static void maybe_free(struct cl_watcher *wr)
{
    if (wr->closing && !wr->stream_open && !wr->watches && !wr->defer.queued) {
        cl_stream_reset(&wr->s);
        free(wr);
    }
}

static bool running(const struct cl_watch *w)
{
    return w->state_ == W_PENDING || w->state_ == W_CREATING || w->state_ == W_ACTIVE;
}

/* A batch arriving in fragments: the responses so far (stream messages share no parts, so they
 * are kept whole) and the response delivered once the last has come. */
struct cl_watch_frags {
    Etcdserverpb__WatchResponse whole; /* the last fragment's fields with every fragment's events */
    ProtobufCMessage **parts;
    size_t n_parts, cap_parts;
};

static void frags_free(struct cl_watch_frags *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_parts; i++)
        cl_stream_msg_free(f->parts[i]);
    free(f->parts);
    free(f->whole.events);
    free(f);
}

static void drop_fragments(struct cl_watch *w)
{
    frags_free(w->frag_);
    w->frag_ = NULL;
}

static void set_message(struct cl_watch *w, const char *msg)
{
    free(w->message);
    w->message = msg ? strdup(msg) : NULL;
}

/* Ends w locally: its last response (canceled, code, message) is delivered from the loop. */
static void end_later(struct cl_watcher *wr, struct cl_watch *w, int code, const char *message)
{
    if (w->state_ == W_CREATING && wr->creating == w) {
        wr->creating = NULL;
        wr->orphans++;
    } else if (w->state_ == W_ACTIVE && wr->stream_open && w->id >= 0) {
        Etcdserverpb__WatchCancelRequest cr = ETCDSERVERPB__WATCH_CANCEL_REQUEST__INIT;
        Etcdserverpb__WatchRequest r = ETCDSERVERPB__WATCH_REQUEST__INIT;
        cr.watch_id = w->id;
        r.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST;
        r.cancel_request = &cr;
        (void)cl_stream_send(&wr->s, &r.base); /* a failure: the stream is ending anyway */
    }
    drop_fragments(w);
    w->state_ = W_ENDING;
    w->code = code;
    set_message(w, message);
    cl_client_defer(wr->c, &wr->defer);
}

static void run_endings(struct cl_defer *d)
{
    struct cl_watcher *wr = (struct cl_watcher *)((char *)d - offsetof(struct cl_watcher, defer));
    for (;;) {
        struct cl_watch *w = wr->watches;
        while (w && w->state_ != W_ENDING)
            w = w->next_;
        if (!w)
            break;
        unlink_watch(wr, w);
        w->state_ = W_DONE;
        w->watcher_ = NULL;
        Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
        r.header = (Etcdserverpb__ResponseHeader *)&empty_header;
        r.watch_id = w->id;
        r.canceled = 1;
        w->cb(w, &r); /* may free w */
    }
    pump(wr);
    maybe_free(wr);
}

/* ---------------------------------------------------------------------------------------------- */
/* The stream */

/* Sends the next pending create, when none is in flight. */
static void pump(struct cl_watcher *wr)
{
    if (!wr->stream_open || wr->creating || wr->orphans || wr->closing)
        return;
    struct cl_watch *w = wr->watches;
    while (w && w->state_ != W_PENDING)
        w = w->next_;
    if (!w)
        return;
    Etcdserverpb__WatchRequest r = ETCDSERVERPB__WATCH_REQUEST__INIT;
    r.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    r.create_request = &w->req_;
    int err = cl_stream_send(&wr->s, &r.base);
    if (err == CAIRN_E_NOMEM) {
        end_later(wr, w, GRPC_RESOURCE_EXHAUSTED, "cairn: out of memory");
        return;
    }
    if (err)
        return; /* the stream has ended; its on_end resumes */
    w->state_ = W_CREATING;
    wr->creating = w;
}

/* Delivers resp to w, after which w may be gone if resp is its last. */
static void deliver(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    if (!resp->header) {
        Etcdserverpb__WatchResponse copy = *resp;
        copy.header = (Etcdserverpb__ResponseHeader *)&empty_header;
        w->cb(w, &copy);
        return;
    }
    w->cb(w, resp);
}

/* The text clientv3's WatchResponse.Err() gives a server's cancel. */
static void cancel_text(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    const char *reason = resp->cancel_reason ? resp->cancel_reason : "";
    if (resp->compact_revision != 0) {
        set_message(w, "etcdserver: mvcc: required revision has been compacted");
    } else if (*reason == '\0') {
        set_message(w, "etcdserver: mvcc: required revision is a future revision");
    } else if (strncmp(reason, "etcdserver: ", 12) == 0 || strncmp(reason, "mvcc: ", 6) == 0) {
        set_message(w, reason);
    } else {
        char *t = NULL;
        if (asprintf(&t, "rpc error: code = FailedPrecondition desc = %s", reason) < 0)
            t = NULL;
        free(w->message);
        w->message = t;
    }
}

/* The server cancelled w: its last response is resp. */
static void server_cancel(struct cl_watcher *wr, struct cl_watch *w,
                          const Etcdserverpb__WatchResponse *resp)
{
    unlink_watch(wr, w);
    drop_fragments(w);
    w->state_ = W_DONE;
    w->watcher_ = NULL;
    w->code = GRPC_OK;
    cancel_text(w, resp);
    deliver(w, resp);
}

/* The first revision after what resp tells w. */
static void advance(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    if (resp->n_events > 0) {
        const Mvccpb__Event *ev = resp->events[resp->n_events - 1];
        if (ev->kv)
            w->req_.start_revision = ev->kv->mod_revision + 1;
    } else if (resp->header && resp->header->revision + 1 > w->req_.start_revision) {
        w->req_.start_revision = resp->header->revision + 1;
    }
}

/* Appends the events of more (then emptied) to w's fragments. Returns 0 or -1 (out of memory). */
/* Adds a fragment to w's batch, taking msg (freed on failure as well). -1 when memory is
 * exhausted. */
static int add_fragment(struct cl_watch *w, Etcdserverpb__WatchResponse *more)
{
    struct cl_watch_frags *f = w->frag_;
    if (!f && !(f = w->frag_ = calloc(1, sizeof *f))) {
        cl_stream_msg_free(&more->base);
        return -1;
    }
    size_t n = f->whole.n_events + more->n_events;
    Mvccpb__Event **ev = realloc(f->whole.events, (n ? n : 1) * sizeof *ev);
    if (ev)
        f->whole.events = ev;
    if (ev && f->n_parts == f->cap_parts) {
        size_t cap = f->cap_parts ? 2 * f->cap_parts : 4;
        ProtobufCMessage **p = realloc(f->parts, cap * sizeof *p);
        if (p) {
            f->parts = p;
            f->cap_parts = cap;
        }
    }
    if (!ev || f->n_parts == f->cap_parts) {
        cl_stream_msg_free(&more->base);
        return -1;
    }
    memcpy(ev + f->whole.n_events, more->events, more->n_events * sizeof *ev);
    f->parts[f->n_parts++] = &more->base;
    /* the batch's header and flags are the last fragment's */
    f->whole = *more;
    f->whole.events = ev;
    f->whole.n_events = n;
    return 0;
}

static void on_created(struct cl_watcher *wr, Etcdserverpb__WatchResponse *resp)
{
    if (wr->orphans) { /* its watch ended meanwhile: cancel it on the server */
        wr->orphans--;
        if (!resp->canceled) {
            Etcdserverpb__WatchCancelRequest cr = ETCDSERVERPB__WATCH_CANCEL_REQUEST__INIT;
            Etcdserverpb__WatchRequest r = ETCDSERVERPB__WATCH_REQUEST__INIT;
            cr.watch_id = resp->watch_id;
            r.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST;
            r.cancel_request = &cr;
            (void)cl_stream_send(&wr->s, &r.base);
        }
        pump(wr);
        return;
    }
    struct cl_watch *w = wr->creating;
    if (!w)
        return; /* not ours: ignore */
    wr->creating = NULL;
    wr->failures = 0;
    w->id = resp->watch_id;
    if (resp->canceled) {
        server_cancel(wr, w, resp);
        pump(wr);
        return;
    }
    w->state_ = W_ACTIVE;
    bool first = !w->created_once_;
    w->created_once_ = true;
    if (first && w->req_.start_revision <= 0 && resp->header)
        w->req_.start_revision = resp->header->revision + 1;
    pump(wr);
    if (first && w->created_notify_)
        deliver(w, resp);
}

static struct cl_watch *find(struct cl_watcher *wr, int64_t id)
{
    for (struct cl_watch *w = wr->watches; w; w = w->next_)
        if (w->state_ == W_ACTIVE && w->id == id)
            return w;
    return NULL;
}

static bool is_progress(const Etcdserverpb__WatchResponse *r)
{
    return r->n_events == 0 && !r->canceled && !r->created && r->compact_revision == 0 &&
           r->header && r->header->revision != 0;
}

static void on_msg(struct cl_stream *s, ProtobufCMessage *msg)
{
    struct cl_watcher *wr = s->data;
    Etcdserverpb__WatchResponse *resp = (Etcdserverpb__WatchResponse *)msg;
    if (wr->closing) {
        cl_stream_msg_free(msg);
        return;
    }
    if (resp->created) {
        on_created(wr, resp);
        cl_stream_msg_free(msg);
        return;
    }
    struct cl_watch *w = find(wr, resp->watch_id);
    if (!w) {
        if (resp->watch_id == -1 && is_progress(resp)) { /* an answer to a progress request */
            for (struct cl_watch *x = wr->watches, *next; x; x = next) {
                next = x->next_;
                if (x->state_ == W_ACTIVE) {
                    advance(x, resp);
                    deliver(x, resp);
                }
            }
        }
        cl_stream_msg_free(msg);
        return;
    }
    if (resp->canceled) {
        server_cancel(wr, w, resp);
        cl_stream_msg_free(msg);
        return;
    }
    if (w->frag_ || resp->fragment) {
        bool last = !resp->fragment;
        if (add_fragment(w, resp)) {
            end_later(wr, w, GRPC_RESOURCE_EXHAUSTED, "cairn: out of memory");
            return;
        }
        if (!last)
            return;
        struct cl_watch_frags *f = w->frag_;
        w->frag_ = NULL; /* the callback may reset or free w */
        advance(w, &f->whole);
        deliver(w, &f->whole);
        frags_free(f);
        return;
    }
    advance(w, resp);
    deliver(w, resp);
    cl_stream_msg_free(msg);
}

static void on_end(struct cl_stream *s)
{
    struct cl_watcher *wr = s->data;
    wr->stream_open = false;
    wr->creating = NULL;
    wr->orphans = 0;
    bool any = false;
    for (struct cl_watch *w = wr->watches; w; w = w->next_) {
        drop_fragments(w);
        if (running(w)) {
            w->state_ = W_PENDING;
            w->id = -1;
            any = true;
        }
    }
    if (wr->closing || !any) {
        maybe_free(wr);
        return;
    }
    int code = s->code;
    bool no_leader = s->message && strcmp(s->message, "etcdserver: no leader") == 0;
    if ((code == GRPC_UNAVAILABLE || code == GRPC_INTERNAL) && !no_leader) {
        wr->failures++;
        uint64_t delay = 0;
        if (wr->failures > 1) {
            unsigned shift = wr->failures - 2 > 5 ? 5 : wr->failures - 2;
            delay = (uint64_t)RESUME_BACKOFF_MS << shift;
            if (delay > RESUME_MAX_BACKOFF_MS)
                delay = RESUME_MAX_BACKOFF_MS;
        }
        if (open_stream(wr, delay) == 0)
            return;
        code = GRPC_CANCELLED; /* the client is closing */
        free(s->message);
        s->message = strdup("grpc: the client connection is closing");
    }
    /* a halting error: every watch ends with it, as clientv3's closeErr */
    struct cl_call tmp = {.code = code == GRPC_OK ? GRPC_UNKNOWN : code,
                          .message = code == GRPC_OK ? "EOF" : s->message};
    char *text = cl_call_error_text(&tmp);
    for (struct cl_watch *w = wr->watches; w; w = w->next_)
        if (running(w))
            end_later(wr, w, tmp.code, text);
    free(text);
}

static int open_stream(struct cl_watcher *wr, uint64_t delay_ms)
{
    cl_stream_reset(&wr->s);
    wr->s.on_msg = on_msg;
    wr->s.on_end = on_end;
    wr->s.data = wr;
    wr->s.require_leader = wr->require_leader;
    int err = cl_stream_open(wr->c, &wr->s, &cl_method_watch, delay_ms);
    if (err)
        return err;
    wr->stream_open = true;
    pump(wr);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The API */

int cl_watcher_new(struct cl_client *c, bool require_leader, struct cl_watcher **out)
{
    *out = NULL;
    struct cl_watcher *wr = calloc(1, sizeof *wr);
    if (!wr)
        return CAIRN_E_NOMEM;
    wr->c = c;
    wr->require_leader = require_leader;
    wr->defer.fn = run_endings;
    *out = wr;
    return 0;
}

void cl_watcher_close(struct cl_watcher *wr)
{
    if (wr->closing)
        return;
    for (struct cl_watch *w = wr->watches; w; w = w->next_)
        if (running(w))
            end_later(wr, w, GRPC_CANCELLED, "context canceled");
    wr->closing = true;
    if (wr->stream_open)
        cl_stream_cancel(&wr->s);
    maybe_free(wr);
}

int cl_watcher_request_progress(struct cl_watcher *wr)
{
    if (!wr->stream_open || wr->closing)
        return CAIRN_E_INVALID_ARGUMENT;
    Etcdserverpb__WatchProgressRequest pr = ETCDSERVERPB__WATCH_PROGRESS_REQUEST__INIT;
    Etcdserverpb__WatchRequest r = ETCDSERVERPB__WATCH_REQUEST__INIT;
    r.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST;
    r.progress_request = &pr;
    return cl_stream_send(&wr->s, &r.base);
}

static uint8_t *dup_bytes(const uint8_t *p, size_t n)
{
    uint8_t *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

int cl_watch_start(struct cl_watcher *wr, struct cl_watch *w, const struct cl_watch_options *o)
{
    if (!w->cb || w->state_ != W_IDLE || wr->closing || (o->key_len && !o->key) ||
        (o->range_end_len && !o->range_end))
        return CAIRN_E_INVALID_ARGUMENT;
    w->key_ = dup_bytes(o->key, o->key_len);
    w->end_ = o->range_end ? dup_bytes(o->range_end, o->range_end_len) : NULL;
    if (!w->key_ || (o->range_end && !w->end_)) {
        free(w->key_);
        free(w->end_);
        w->key_ = w->end_ = NULL;
        return CAIRN_E_NOMEM;
    }
    Etcdserverpb__WatchCreateRequest *r = &w->req_;
    *r = (Etcdserverpb__WatchCreateRequest)ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    r->key = (ProtobufCBinaryData){o->key_len, w->key_};
    r->range_end = (ProtobufCBinaryData){o->range_end ? o->range_end_len : 0, w->end_};
    r->start_revision = o->start_revision > 0 ? o->start_revision : 0;
    r->progress_notify = o->progress_notify;
    r->prev_kv = o->prev_kv;
    r->fragment = o->fragment;
    r->filters = w->filters_;
    if (o->no_put)
        w->filters_[r->n_filters++] = ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT;
    if (o->no_delete)
        w->filters_[r->n_filters++] = ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE;
    w->created_notify_ = o->created_notify;
    w->created_once_ = false;
    w->code = GRPC_OK;
    w->id = -1;
    w->watcher_ = wr;
    w->frag_ = NULL;
    w->state_ = W_PENDING;
    w->next_ = NULL;
    struct cl_watch **tail = &wr->watches;
    while (*tail)
        tail = &(*tail)->next_;
    *tail = w;
    if (!wr->stream_open) {
        wr->failures = 0;
        int err = open_stream(wr, 0);
        if (err) {
            unlink_watch(wr, w);
            free(w->key_);
            free(w->end_);
            w->key_ = w->end_ = NULL;
            w->state_ = W_IDLE;
            w->watcher_ = NULL;
            return err;
        }
        return 0;
    }
    pump(wr);
    return 0;
}

void cl_watch_cancel(struct cl_watch *w)
{
    if (!w->watcher_ || !running(w))
        return;
    end_later(w->watcher_, w, GRPC_CANCELLED, "context canceled");
}

void cl_watch_reset(struct cl_watch *w)
{
    drop_fragments(w);
    free(w->key_);
    free(w->end_);
    free(w->message);
    cl_watch_cb cb = w->cb;
    void *data = w->data;
    memset(w, 0, sizeof *w);
    w->cb = cb;
    w->data = data;
}
