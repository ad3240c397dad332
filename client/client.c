/* client/client.c — the client: endpoints, the life of a call, retries and deadlines.
 *
 * A call goes: start (encode, pick a connection) → waiting or stream → done → its callback. An
 * attempt that ends without an answer (connection lost, refused) comes back here through
 * cl_call_attempt_failed(): the call is tried again on the next endpoint after a backoff when that
 * is safe, else it finishes with the error. One timer per client serves every deadline, backoff
 * and dial timeout: it is armed for the earliest one and, when it fires, scans the started calls.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/error.h"

#define DEFAULT_DIAL_TIMEOUT_MS 2000
#define DEFAULT_BACKOFF_MS      25
#define MAX_BACKOFF_MS          1000

static void on_timer(uv_timer_t *t);
static void on_check(uv_check_t *h);

void cl_options_default(struct cl_options *o)
{
    memset(o, 0, sizeof *o);
    o->conns_per_endpoint = 1;
    o->dial_timeout_ms = DEFAULT_DIAL_TIMEOUT_MS;
    o->backoff_ms = DEFAULT_BACKOFF_MS;
    o->max_recv_bytes = INT32_MAX;
}

/* ---------------------------------------------------------------------------------------------- */
/* Endpoints */

/* Parses "host:port", "[v6]:port" or "http://" followed by one of those (a trailing '/' allowed).
 */
static int parse_endpoint(const char *s, struct cl_endpoint *ep)
{
    if (strncmp(s, "http://", 7) == 0)
        s += 7;
    else if (strstr(s, "://"))
        return CAIRN_E_INVALID_ARGUMENT; /* https://, unix:// …: not supported */
    size_t len = strlen(s);
    if (len && s[len - 1] == '/')
        len--;
    const char *host = s, *colon;
    size_t hlen;
    if (len && s[0] == '[') {
        const char *close = memchr(s, ']', len);
        if (!close || close + 1 >= s + len || close[1] != ':')
            return CAIRN_E_INVALID_ARGUMENT;
        host = s + 1;
        hlen = (size_t)(close - host);
        colon = close + 1;
    } else {
        colon = NULL;
        for (size_t i = 0; i < len; i++)
            if (s[i] == ':')
                colon = s + i;
        if (!colon)
            return CAIRN_E_INVALID_ARGUMENT;
        hlen = (size_t)(colon - s);
    }
    const char *port = colon + 1, *end = s + len;
    if (hlen == 0 || port >= end || end - port > 5)
        return CAIRN_E_INVALID_ARGUMENT;
    int p = 0;
    for (const char *q = port; q < end; q++) {
        if (*q < '0' || *q > '9')
            return CAIRN_E_INVALID_ARGUMENT;
        p = p * 10 + (*q - '0');
    }
    if (p < 1 || p > 65535)
        return CAIRN_E_INVALID_ARGUMENT;
    for (size_t i = 0; i < hlen; i++)
        if (host[i] == '/' || host[i] == ' ' || host[i] == '@')
            return CAIRN_E_INVALID_ARGUMENT;
    ep->host = strndup(host, hlen);
    ep->name = strndup(s, len);
    ep->port = p;
    return ep->host && ep->name ? 0 : CAIRN_E_NOMEM;
}

static void free_endpoints(struct cl_client *c)
{
    for (size_t i = 0; i < c->n_eps; i++) {
        free(c->eps[i].host);
        free(c->eps[i].name);
        free(c->eps[i].slots);
    }
    free(c->eps);
    free(c->ep_names);
}

int cl_client_new(uv_loop_t *loop, const struct cl_options *o, struct cl_client **out)
{
    *out = NULL;
    if (!o->n_endpoints || !o->endpoints)
        return CAIRN_E_INVALID_ARGUMENT;
    struct cl_client *c = calloc(1, sizeof *c);
    if (!c)
        return CAIRN_E_NOMEM;
    c->loop = loop;
    c->opts = *o;
    if (!c->opts.conns_per_endpoint)
        c->opts.conns_per_endpoint = 1;
    if (!c->opts.dial_timeout_ms)
        c->opts.dial_timeout_ms = DEFAULT_DIAL_TIMEOUT_MS;
    if (!c->opts.backoff_ms)
        c->opts.backoff_ms = DEFAULT_BACKOFF_MS;
    if (!c->opts.max_retries)
        c->opts.max_retries = 2 * (unsigned)o->n_endpoints;
    if (!c->opts.max_recv_bytes)
        c->opts.max_recv_bytes = INT32_MAX;
    c->eps = calloc(o->n_endpoints, sizeof *c->eps);
    c->ep_names = calloc(o->n_endpoints, sizeof *c->ep_names);
    int err = c->eps && c->ep_names ? 0 : CAIRN_E_NOMEM;
    for (size_t i = 0; !err && i < o->n_endpoints; i++) {
        c->n_eps = i + 1;
        err = o->endpoints[i] ? parse_endpoint(o->endpoints[i], &c->eps[i])
                              : CAIRN_E_INVALID_ARGUMENT;
        if (!err) {
            c->eps[i].slots = calloc(c->opts.conns_per_endpoint, sizeof *c->eps[i].slots);
            err = c->eps[i].slots ? 0 : CAIRN_E_NOMEM;
            c->ep_names[i] = c->eps[i].name;
        }
    }
    if (err) {
        free_endpoints(c);
        free(c);
        return err;
    }
    c->opts.endpoints = c->ep_names;
    uv_timer_init(loop, &c->timer);
    uv_check_init(loop, &c->check);
    uv_idle_init(loop, &c->idle);
    c->timer.data = c->check.data = c->idle.data = c;
    uv_check_start(&c->check, on_check);
    uv_unref((uv_handle_t *)&c->check); /* only pending work keeps the loop alive */
    c->handles_open = 3;
    *out = c;
    return 0;
}

uv_loop_t *cl_client_loop(const struct cl_client *c)
{
    return c->loop;
}

size_t cl_client_endpoints(const struct cl_client *c, const char *const **out)
{
    *out = c->ep_names;
    return c->n_eps;
}

/* ---------------------------------------------------------------------------------------------- */
/* Deferred work */

static void on_idle(uv_idle_t *h)
{
    (void)h; /* while active, the loop polls without blocking: the check handle runs next */
}

void cl_client_kick(struct cl_client *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->idle))
        uv_idle_start(&c->idle, on_idle);
}

void cl_client_defer(struct cl_client *c, struct cl_defer *d)
{
    if (d->queued)
        return;
    d->queued = true;
    d->next = NULL;
    if (c->defer_tail)
        c->defer_tail->next = d;
    else
        c->defer_head = d;
    c->defer_tail = d;
    cl_client_kick(c);
}

/* Runs the deferred work queued so far (which may queue more, run on the next turn). */
static void run_deferred(struct cl_client *c)
{
    struct cl_defer *d = c->defer_head;
    c->defer_head = c->defer_tail = NULL;
    while (d) {
        struct cl_defer *next = d->next;
        d->queued = false;
        d->fn(d); /* may free d */
        d = next;
    }
}

void cl_client_wake_at(struct cl_client *c, uint64_t at)
{
    if (c->closing || (c->timer_at && c->timer_at <= at))
        return;
    uint64_t now = uv_now(c->loop);
    c->timer_at = at;
    uv_timer_start(&c->timer, on_timer, at > now ? at - now : 0, 0);
}

static void free_client(struct cl_client *c)
{
    void (*done)(void *) = c->on_closed;
    void *arg = c->on_closed_arg;
    free_endpoints(c);
    free(c);
    if (done)
        done(arg);
}

void cl_client_conn_freed(struct cl_client *c)
{
    if (--c->handles_open == 0 && c->closing)
        free_client(c);
}

static void on_handle_closed(uv_handle_t *h)
{
    cl_client_conn_freed(h->data);
}

/* ---------------------------------------------------------------------------------------------- */
/* Calls */

static void unlink_call(struct cl_call *call)
{
    struct cl_client *c = call->client_;
    if (call->prev_)
        call->prev_->next_ = call->next_;
    else if (c->calls == call)
        c->calls = call->next_;
    if (call->next_)
        call->next_->prev_ = call->prev_;
    call->prev_ = call->next_ = NULL;
}

void cl_call_finish(struct cl_call *call, int code, const char *message)
{
    if (call->state_ == CALL_DONE || call->state_ == CALL_FINISHED || call->state_ == CALL_IDLE)
        return;
    struct cl_client *c = call->client_;
    call->state_ = CALL_DONE;
    call->code = code;
    if (code != GRPC_OK && call->response) {
        protobuf_c_message_free_unpacked(call->response, NULL);
        call->response = NULL;
    }
    free(call->message);
    call->message = message ? strdup(message) : NULL;
    call->qnext_ = NULL;
    if (c->done_tail)
        c->done_tail->qnext_ = call;
    else
        c->done_head = call;
    c->done_tail = call;
    cl_client_kick(c);
}

/* Chooses the endpoint and connection of the next attempt: the first endpoint from the call's
 * round-robin position that is not resting after failures (or that position's, if all are), and
 * the next of its connection slots, opened when empty. Returns NULL when out of memory. */
static struct cl_conn *pick_conn(struct cl_call *call)
{
    struct cl_client *c = call->client_;
    uint64_t now = uv_now(c->loop);
    struct cl_endpoint *ep = &c->eps[call->next_endpoint_ % c->n_eps];
    for (size_t i = 0; i < c->n_eps; i++) {
        struct cl_endpoint *e = &c->eps[(call->next_endpoint_ + i) % c->n_eps];
        if (e->down_until <= now) {
            ep = e;
            break;
        }
    }
    call->next_endpoint_ = (unsigned)(ep - c->eps);
    unsigned slot = ep->next_slot++ % c->opts.conns_per_endpoint;
    struct cl_conn *conn = ep->slots[slot];
    if (conn && cl_conn_usable(conn))
        return conn;
    return cl_conn_open(c, ep, slot);
}

static void attempt(struct cl_call *call)
{
    call->attempts++;
    struct cl_conn *conn = pick_conn(call);
    call->endpoint = call->client_->eps[call->next_endpoint_].name;
    if (!conn) {
        cl_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "cairn: out of memory");
        return;
    }
    cl_conn_submit(conn, call);
}

void cl_call_attempt_failed(struct cl_call *call, int code, const char *message,
                            bool never_processed)
{
    struct cl_client *c = call->client_;
    call->conn_ = NULL;
    call->stream_id_ = 0;
    if (call->stream_) { /* a stream is never retried: its owner decides (watch.c resumes) */
        cl_call_finish(call, code, message);
        return;
    }
    uint64_t now = uv_now(c->loop);
    unsigned shift = call->attempts > 6 ? 6 : call->attempts - 1;
    uint64_t backoff = c->opts.backoff_ms << shift;
    if (backoff > MAX_BACKOFF_MS)
        backoff = MAX_BACKOFF_MS;
    bool safe = never_processed || !call->sent_ || call->method_->idempotent;
    /* with a deadline, retries go on until it passes (as clientv3's do); else max_retries */
    bool retry = code == GRPC_UNAVAILABLE && safe && !c->closing &&
                 (call->deadline_ ? now < call->deadline_ : call->attempts <= c->opts.max_retries);
    if (!retry) {
        cl_call_finish(call, code, message);
        return;
    }
    if (call->response) {
        protobuf_c_message_free_unpacked(call->response, NULL);
        call->response = NULL;
    }
    free(call->message);
    call->message = NULL;
    call->state_ = CALL_BACKOFF;
    call->wake_ = now + backoff;
    call->next_endpoint_++;
    cl_client_wake_at(c, call->wake_);
}

void cl_call_launch(struct cl_client *c, struct cl_call *call, const struct cl_method *m,
                    uint64_t delay_ms)
{
    call->client_ = c;
    call->method_ = m;
    call->code = -1;
    call->attempts = 0;
    call->next_endpoint_ = c->next_ep++;
    call->deadline_ = call->timeout_ms ? uv_now(c->loop) + call->timeout_ms : 0;
    call->state_ = CALL_BACKOFF; /* until attempt() places it */
    call->prev_ = NULL;
    call->next_ = c->calls;
    if (c->calls)
        c->calls->prev_ = call;
    c->calls = call;
    if (call->deadline_)
        cl_client_wake_at(c, call->deadline_);
    if (delay_ms) {
        call->wake_ = uv_now(c->loop) + delay_ms;
        cl_client_wake_at(c, call->wake_);
        return;
    }
    attempt(call);
}

int cl_call_start(struct cl_client *c, struct cl_call *call, const struct cl_method *m,
                  const ProtobufCMessage *req)
{
    if (!req || req->descriptor != m->request || !call->cb || call->state_ != CALL_IDLE)
        return CAIRN_E_INVALID_ARGUMENT;
    if (c->closing)
        return UV_ECANCELED;
    size_t len = protobuf_c_message_get_packed_size(req);
    if (len > UINT32_MAX)
        return CAIRN_E_INVALID_ARGUMENT;
    call->body_ = malloc(GRPC_FRAME_HEADER_SIZE + len);
    if (!call->body_)
        return CAIRN_E_NOMEM;
    grpc_frame_header_encode(call->body_, false, (uint32_t)len);
    protobuf_c_message_pack(req, call->body_ + GRPC_FRAME_HEADER_SIZE);
    call->body_len_ = GRPC_FRAME_HEADER_SIZE + len;
    call->stream_ = NULL;
    cl_call_launch(c, call, m, 0);
    return 0;
}

/* Takes a call off its connection or out of its backoff, before finishing it early. */
static void detach(struct cl_call *call)
{
    if (call->conn_)
        cl_conn_detach(call->conn_, call);
}

void cl_call_cancel(struct cl_call *call)
{
    if (call->state_ != CALL_WAITING && call->state_ != CALL_STREAM && call->state_ != CALL_BACKOFF)
        return;
    detach(call);
    cl_call_finish(call, GRPC_CANCELLED, "context canceled");
}

void cl_call_reset(struct cl_call *call)
{
    if (call->response)
        protobuf_c_message_free_unpacked(call->response, NULL);
    free(call->message);
    free(call->body_);
    grpc_frame_decoder_free(&call->dec_);
    cl_call_cb cb = call->cb;
    void *data = call->data;
    uint64_t timeout_ms = call->timeout_ms;
    memset(call, 0, sizeof *call);
    call->cb = cb;
    call->data = data;
    call->timeout_ms = timeout_ms;
}

char *cl_call_error_text(const struct cl_call *call)
{
    const char *msg = call->message ? call->message : "";
    if (call->code == GRPC_OK)
        return strdup("");
    if ((call->code == GRPC_DEADLINE_EXCEEDED && strcmp(msg, "context deadline exceeded") == 0) ||
        (call->code == GRPC_CANCELLED && strcmp(msg, "context canceled") == 0) ||
        strncmp(msg, "etcdserver: ", 12) == 0 || strncmp(msg, "mvcc: ", 6) == 0)
        return strdup(msg);
    char *out = NULL;
    if (asprintf(&out, "rpc error: code = %s desc = %s", grpc_code_name(call->code), msg) < 0)
        return NULL;
    return out;
}

/* ---------------------------------------------------------------------------------------------- */
/* The loop hooks */

static void on_timer(uv_timer_t *t)
{
    struct cl_client *c = t->data;
    uint64_t now = uv_now(c->loop), next = 0;
    c->timer_at = 0;
#define NEXT(at) (next = (!next || (at) < next) ? (at) : next)
    for (struct cl_call *call = c->calls; call;) {
        struct cl_call *after = call->next_;
        bool live = call->state_ == CALL_WAITING || call->state_ == CALL_STREAM ||
                    call->state_ == CALL_BACKOFF;
        if (live && call->deadline_ && now >= call->deadline_) {
            detach(call);
            cl_call_finish(call, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
        } else if (call->state_ == CALL_BACKOFF && now >= call->wake_) {
            attempt(call);
        }
        if (call->state_ == CALL_BACKOFF)
            NEXT(call->wake_);
        if ((call->state_ == CALL_WAITING || call->state_ == CALL_STREAM ||
             call->state_ == CALL_BACKOFF) &&
            call->deadline_)
            NEXT(call->deadline_);
        call = after;
    }
    for (size_t i = 0; i < c->n_eps; i++) {
        for (unsigned s = 0; s < c->opts.conns_per_endpoint; s++) {
            struct cl_conn *conn = c->eps[i].slots[s];
            uint64_t at = conn ? cl_conn_check_dial(conn, now) : 0;
            if (at)
                NEXT(at);
        }
    }
#undef NEXT
    if (next)
        cl_client_wake_at(c, next);
}

/* Runs the callbacks of finished calls (which may start more), then flushes. */
static void run_done(struct cl_client *c)
{
    while (c->done_head) {
        struct cl_call *call = c->done_head;
        c->done_head = call->qnext_;
        if (!c->done_head)
            c->done_tail = NULL;
        call->qnext_ = NULL;
        unlink_call(call);
        call->state_ = CALL_FINISHED;
        free(call->body_);
        call->body_ = NULL;
        grpc_frame_decoder_free(&call->dec_);
        call->cb(call);
    }
}

static void close_handles(struct cl_client *c)
{
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
    uv_close((uv_handle_t *)&c->check, on_handle_closed);
    uv_close((uv_handle_t *)&c->idle, on_handle_closed);
}

static void on_check(uv_check_t *h)
{
    struct cl_client *c = h->data;
    if (uv_is_closing((uv_handle_t *)h))
        return;
    cl_stream_run_rx(c);
    run_done(c);
    run_deferred(c);
    cl_conn_flush_dirty(c);
    cl_stream_run_rx(c);
    run_done(c); /* a flush can fail a connection, finishing calls */
    if (c->closing && !c->calls && !c->done_head && !c->defer_head && !c->rx_head) {
        close_handles(c);
        return;
    }
    if (!c->done_head && !c->dirty && !c->defer_head && !c->rx_head)
        uv_idle_stop(&c->idle);
}

void cl_client_close(struct cl_client *c, void (*done)(void *arg), void *arg)
{
    c->closing = true;
    c->on_closed = done;
    c->on_closed_arg = arg;
    uv_timer_stop(&c->timer);
    for (struct cl_call *call = c->calls; call; call = call->next_) {
        if (call->state_ == CALL_WAITING || call->state_ == CALL_STREAM ||
            call->state_ == CALL_BACKOFF) {
            detach(call);
            cl_call_finish(call, GRPC_CANCELLED, "grpc: the client connection is closing");
        }
    }
    for (struct cl_conn *conn = c->conns; conn;) {
        struct cl_conn *next = cl_conn_next(conn); /* fail may free conn */
        cl_conn_fail(conn, GRPC_CANCELLED, "grpc: the client connection is closing");
        conn = next;
    }
    uv_ref((uv_handle_t *)&c->check);
    cl_client_kick(c);
}
