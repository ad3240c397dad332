/* client/lease.c — keeping leases alive on one LeaseKeepAlive stream per lessor, as clientv3's
 * lessor does (clientv3/lease.go, 3.4).
 *
 * Sending: each keep-alive has the time its next request is due (next_at_): at once when it
 * starts or when the stream is opened again, TTL/3 after a response, and 500 ms after a request
 * that has not been answered yet (clientv3's sendKeepAliveLoop resends every 500 ms until the
 * lease's next keep-alive moves on). One timer per lessor is armed for the earliest due time or
 * deadline.
 *
 * Answers: etcd answers each request with the lease's ID and its new TTL; TTL 0 means the lease
 * is gone (expired or revoked) and ends every keep-alive of that ID. An answer is delivered to
 * every running keep-alive of its ID. As in clientv3, a keep-alive that gets no answer within its
 * lease's TTL (5 s before the first answer, clientv3's defaultTTL) ends: the lease has expired on
 * the server by then.
 *
 * Resuming: when the stream ends with anything but a cancel (a lost connection is UNAVAILABLE),
 * it is opened again on the next endpoint — at once the first time, then after 50 ms doubling to
 * 1 s — and every running keep-alive sends at once there. (clientv3 retries every error after
 * 500 ms; cairn's backoff reaches another endpoint sooner.)
 *
 * Last callbacks that are not the server's (cancel, close, deadline) are delivered from the
 * client's check handle, never from inside the caller's function. */
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/error.h"

#define RESEND_MS             500  /* clientv3's sendKeepAliveLoop tick */
#define FIRST_DEADLINE_MS     5000 /* clientv3's defaultTTL */
#define RESUME_BACKOFF_MS     50
#define RESUME_MAX_BACKOFF_MS 1000
#define LEASE_NOT_FOUND       "etcdserver: requested lease not found"

/* Where a keep-alive is (cl_keepalive.state_). */
enum {
    K_IDLE = 0, /* not started, or reset */
    K_RUNNING,  /* keeping its lease alive */
    K_ENDING,   /* its last callback is due (deferred) */
    K_DONE      /* its last callback ran */
};

struct cl_lessor {
    struct cl_client *c;      /* owner */
    struct cl_stream s;       /* the LeaseKeepAlive stream (while stream_open) */
    bool stream_open;         /* s opened and its on_end not run yet */
    struct cl_keepalive *kas; /* every started keep-alive not yet done, in start order */
    unsigned failures;        /* stream failures since the last answer */
    bool closing;             /* cl_lessor_close() ran */
    uv_timer_t timer;         /* the next due request or deadline */
    bool timer_closed;        /* timer's close callback ran */
    struct cl_defer defer;    /* delivers the last callbacks of K_ENDING keep-alives */
};

static const Etcdserverpb__ResponseHeader empty_header = ETCDSERVERPB__RESPONSE_HEADER__INIT;

static void tick(struct cl_lessor *lr);
static int open_stream(struct cl_lessor *lr, uint64_t delay_ms);

/* ---------------------------------------------------------------------------------------------- */
/* Bookkeeping */

static void unlink_ka(struct cl_lessor *lr, struct cl_keepalive *k)
{
    for (struct cl_keepalive **p = &lr->kas; *p; p = &(*p)->next_) {
        if (*p == k) {
            *p = k->next_;
            break;
        }
    }
    k->next_ = NULL;
}

static void maybe_free(struct cl_lessor *lr)
{
    if (lr->closing && lr->timer_closed && !lr->stream_open && !lr->kas && !lr->defer.queued) {
        cl_stream_reset(&lr->s);
        free(lr);
    }
}

static void set_end(struct cl_keepalive *k, int code, const char *message)
{
    k->code = code;
    free(k->message);
    k->message = message ? strdup(message) : NULL;
}

/* Ends k locally: its last callback (resp NULL) is delivered from the loop. */
static void end_later(struct cl_lessor *lr, struct cl_keepalive *k, int code, const char *message)
{
    k->state_ = K_ENDING;
    set_end(k, code, message);
    cl_client_defer(lr->c, &lr->defer);
}

static void run_endings(struct cl_defer *d)
{
    struct cl_lessor *lr = (struct cl_lessor *)((char *)d - offsetof(struct cl_lessor, defer));
    for (;;) {
        struct cl_keepalive *k = lr->kas;
        while (k && k->state_ != K_ENDING)
            k = k->next_;
        if (!k)
            break;
        unlink_ka(lr, k);
        k->state_ = K_DONE;
        k->lessor_ = NULL;
        k->ended = true;
        k->cb(k, NULL); /* may free k */
    }
    maybe_free(lr);
}

/* ---------------------------------------------------------------------------------------------- */
/* Sending and the timer */

static void on_timer(uv_timer_t *t)
{
    tick(t->data);
}

static void on_timer_closed(uv_handle_t *h)
{
    struct cl_lessor *lr = h->data;
    lr->timer_closed = true;
    maybe_free(lr);
}

/* Sends the requests that are due, ends the keep-alives past their deadline, re-arms the timer. */
static void tick(struct cl_lessor *lr)
{
    if (lr->closing)
        return;
    uv_loop_t *loop = cl_client_loop(lr->c);
    uint64_t now = uv_now(loop), next = 0;
    for (struct cl_keepalive *k = lr->kas; k; k = k->next_) {
        if (k->state_ != K_RUNNING)
            continue;
        if (k->deadline_ && now >= k->deadline_) {
            end_later(lr, k, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
            continue;
        }
        if (lr->stream_open && k->next_at_ <= now) {
            Etcdserverpb__LeaseKeepAliveRequest r = ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
            r.id = k->id;
            int err = cl_stream_send(&lr->s, &r.base);
            if (err == CAIRN_E_NOMEM) {
                end_later(lr, k, GRPC_RESOURCE_EXHAUSTED, "cairn: out of memory");
                continue;
            }
            /* another failure: the stream is ending; its on_end opens the next */
            k->next_at_ = now + RESEND_MS;
        }
        if (lr->stream_open && (!next || k->next_at_ < next))
            next = k->next_at_;
        if (k->deadline_ && (!next || k->deadline_ < next))
            next = k->deadline_;
    }
    if (next)
        uv_timer_start(&lr->timer, on_timer, next > now ? next - now : 0, 0);
    else
        uv_timer_stop(&lr->timer);
}

/* ---------------------------------------------------------------------------------------------- */
/* The stream */

static void on_msg(struct cl_stream *s, ProtobufCMessage *msg)
{
    struct cl_lessor *lr = s->data;
    Etcdserverpb__LeaseKeepAliveResponse *resp = (Etcdserverpb__LeaseKeepAliveResponse *)msg;
    if (lr->closing) {
        cl_stream_msg_free(msg);
        return;
    }
    lr->failures = 0;
    Etcdserverpb__LeaseKeepAliveResponse view = *resp;
    if (!view.header)
        view.header = (Etcdserverpb__ResponseHeader *)&empty_header;
    uint64_t now = uv_now(cl_client_loop(lr->c));
    for (struct cl_keepalive *k = lr->kas, *next; k; k = next) {
        next = k->next_;
        if (k->state_ != K_RUNNING || k->id != resp->id)
            continue;
        k->ttl = resp->ttl > 0 ? resp->ttl : 0;
        if (resp->ttl <= 0 || k->once_) {
            unlink_ka(lr, k);
            k->state_ = K_DONE;
            k->lessor_ = NULL;
            k->ended = true;
            if (resp->ttl <= 0)
                set_end(k, GRPC_NOT_FOUND, LEASE_NOT_FOUND);
            else
                set_end(k, GRPC_OK, NULL);
        } else {
            k->next_at_ = now + (uint64_t)resp->ttl * 1000 / 3;
            k->deadline_ = now + (uint64_t)resp->ttl * 1000;
        }
        k->cb(k, &view); /* may free k if it ended */
    }
    cl_stream_msg_free(msg);
    tick(lr);
}

static bool any_running(const struct cl_lessor *lr)
{
    for (const struct cl_keepalive *k = lr->kas; k; k = k->next_)
        if (k->state_ == K_RUNNING)
            return true;
    return false;
}

static void on_end(struct cl_stream *s)
{
    struct cl_lessor *lr = s->data;
    lr->stream_open = false;
    if (lr->closing || !any_running(lr)) {
        tick(lr);
        maybe_free(lr);
        return;
    }
    if (s->code != GRPC_CANCELLED) {
        lr->failures++;
        uint64_t delay = 0;
        if (lr->failures > 1) {
            unsigned shift = lr->failures - 2 > 5 ? 5 : lr->failures - 2;
            delay = (uint64_t)RESUME_BACKOFF_MS << shift;
            if (delay > RESUME_MAX_BACKOFF_MS)
                delay = RESUME_MAX_BACKOFF_MS;
        }
        if (open_stream(lr, delay) == 0)
            return;
        free(s->message); /* the client is closing */
        s->code = GRPC_CANCELLED;
        s->message = strdup("grpc: the client connection is closing");
    }
    struct cl_call tmp = {.code = s->code, .message = s->message};
    char *text = cl_call_error_text(&tmp);
    for (struct cl_keepalive *k = lr->kas; k; k = k->next_)
        if (k->state_ == K_RUNNING)
            end_later(lr, k, s->code, text);
    free(text);
    tick(lr);
}

static int open_stream(struct cl_lessor *lr, uint64_t delay_ms)
{
    cl_stream_reset(&lr->s);
    lr->s.on_msg = on_msg;
    lr->s.on_end = on_end;
    lr->s.data = lr;
    int err = cl_stream_open(lr->c, &lr->s, &cl_method_lease_keep_alive, delay_ms);
    if (err)
        return err;
    lr->stream_open = true;
    uint64_t now = uv_now(cl_client_loop(lr->c));
    for (struct cl_keepalive *k = lr->kas; k; k = k->next_)
        k->next_at_ = now; /* queued until the stream connects */
    tick(lr);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The API */

int cl_lessor_new(struct cl_client *c, struct cl_lessor **out)
{
    *out = NULL;
    struct cl_lessor *lr = calloc(1, sizeof *lr);
    if (!lr)
        return CAIRN_E_NOMEM;
    int err = uv_timer_init(cl_client_loop(c), &lr->timer);
    if (err) {
        free(lr);
        return err;
    }
    lr->timer.data = lr;
    lr->c = c;
    lr->defer.fn = run_endings;
    *out = lr;
    return 0;
}

void cl_lessor_close(struct cl_lessor *lr)
{
    if (lr->closing)
        return;
    for (struct cl_keepalive *k = lr->kas; k; k = k->next_)
        if (k->state_ == K_RUNNING)
            end_later(lr, k, GRPC_CANCELLED, "context canceled");
    lr->closing = true;
    if (lr->stream_open)
        cl_stream_cancel(&lr->s);
    uv_close((uv_handle_t *)&lr->timer, on_timer_closed);
    maybe_free(lr);
}

int cl_keepalive_start(struct cl_lessor *lr, struct cl_keepalive *k, int64_t id, bool once)
{
    if (!k->cb || k->state_ != K_IDLE || lr->closing)
        return CAIRN_E_INVALID_ARGUMENT;
    uint64_t now = uv_now(cl_client_loop(lr->c));
    k->id = id;
    k->ttl = 0;
    k->ended = false;
    k->code = GRPC_OK;
    k->lessor_ = lr;
    k->once_ = once;
    k->next_at_ = now;
    k->deadline_ = now + FIRST_DEADLINE_MS;
    k->state_ = K_RUNNING;
    k->next_ = NULL;
    struct cl_keepalive **tail = &lr->kas;
    while (*tail)
        tail = &(*tail)->next_;
    *tail = k;
    if (!lr->stream_open) {
        lr->failures = 0;
        int err = open_stream(lr, 0);
        if (err) {
            unlink_ka(lr, k);
            k->state_ = K_IDLE;
            k->lessor_ = NULL;
            return err == UV_ECANCELED ? CAIRN_E_INVALID_ARGUMENT : err;
        }
        return 0;
    }
    tick(lr);
    return 0;
}

void cl_keepalive_cancel(struct cl_keepalive *k)
{
    if (!k->lessor_ || k->state_ != K_RUNNING)
        return;
    end_later(k->lessor_, k, GRPC_CANCELLED, "context canceled");
}

void cl_keepalive_reset(struct cl_keepalive *k)
{
    free(k->message);
    cl_keepalive_cb cb = k->cb;
    void *data = k->data;
    memset(k, 0, sizeof *k);
    k->cb = cb;
    k->data = data;
}
