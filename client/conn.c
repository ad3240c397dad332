/* client/conn.c — one client-side HTTP/2 connection (h2c, prior knowledge) carrying gRPC calls.
 *
 * Lifecycle: resolving (only for a host name) → connecting → ready → closed. Calls submitted before
 * it is ready wait in its queue. Each call is one HTTP/2 stream: HEADERS with the gRPC request
 * fields, the framed request as DATA ending the stream, then the server's response HEADERS, the
 * framed response and the trailers with grpc-status. A connection that fails hands each of its
 * calls back to client.c as a failed attempt (to retry or finish) and frees itself once libuv is
 * done with its handle.
 *
 * Output: nghttp2_session_mem_send() frames are gathered into one write buffer per connection
 * (up to WRITE_CHUNK), written with uv_try_write() and, for what the socket does not take at once,
 * one uv_write() in flight; nghttp2 holds the rest until that write completes. nghttp2 is never
 * re-entered: flushes run from the client's check handle or a write completion, outside nghttp2.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/error.h"

#define WRITE_CHUNK   (256 * 1024) /* a flush writes at most this much at once */
#define STREAM_WINDOW (4 << 20)    /* our receive window per stream */
#define CONN_WINDOW   (64 << 20)   /* our receive window per connection */
#define USER_AGENT    "cairn-client/0.1"

enum { CONN_RESOLVING, CONN_CONNECTING, CONN_READY, CONN_CLOSED };

struct cl_conn {
    struct cl_client *client;    /* owner */
    struct cl_endpoint *ep;      /* where it connects */
    unsigned slot;               /* its index in ep->slots (while it is there) */
    int state;                   /* CONN_* */
    bool draining;               /* GOAWAY received or stream ids used up: no new calls */
    bool tcp_open;               /* tcp was initialized and is not closed yet */
    bool resolving;              /* gai is in flight */
    bool writing;                /* wreq is in flight */
    bool dirty;                  /* on the client's dirty list */
    bool mem;                    /* no socket: input by cl_conn_feed_mem(), output discarded */
    uv_tcp_t tcp;                /* the socket */
    uv_connect_t creq;           /* connect request */
    uv_getaddrinfo_t gai;        /* name lookup */
    uv_write_t wreq;             /* the write in flight */
    nghttp2_session *ng;         /* client session, once connected */
    uint64_t dial_deadline;      /* uv_now() time connecting gives up */
    size_t streams;              /* calls submitted as streams and not ended */
    struct cl_call *wait_head;   /* calls waiting for the connection (qnext_) */
    struct cl_call *wait_tail;   /* last of wait_head */
    uint8_t *wbuf;               /* output gathered for the socket */
    size_t wlen;                 /* bytes in wbuf */
    size_t wcap;                 /* size of wbuf */
    struct cl_conn *prev, *next; /* client->conns */
    struct cl_conn *dirty_next;  /* client->dirty */
};

static void conn_close(struct cl_conn *conn, int code, const char *message);

/* ---------------------------------------------------------------------------------------------- */
/* Bookkeeping */

static void maybe_free(struct cl_conn *conn)
{
    if (conn->state != CONN_CLOSED || conn->tcp_open || conn->resolving)
        return;
    struct cl_client *c = conn->client;
    if (conn->prev)
        conn->prev->next = conn->next;
    else
        c->conns = conn->next;
    if (conn->next)
        conn->next->prev = conn->prev;
    if (conn->dirty) { /* unlink from the dirty list */
        for (struct cl_conn **p = &c->dirty; *p; p = &(*p)->dirty_next) {
            if (*p == conn) {
                *p = conn->dirty_next;
                break;
            }
        }
    }
    free(conn->wbuf);
    free(conn);
    cl_client_conn_freed(c);
}

static void mark_dirty(struct cl_conn *conn)
{
    if (conn->dirty || conn->state != CONN_READY)
        return;
    conn->dirty = true;
    conn->dirty_next = conn->client->dirty;
    conn->client->dirty = conn;
    cl_client_kick(conn->client);
}

/* Leaves the endpoint's slot, so the next call opens a new connection there. */
static void leave_slot(struct cl_conn *conn)
{
    if (conn->ep->slots[conn->slot] == conn)
        conn->ep->slots[conn->slot] = NULL;
}

struct cl_conn *cl_conn_next(struct cl_conn *conn)
{
    return conn->next;
}

bool cl_conn_usable(const struct cl_conn *conn)
{
    return conn->state != CONN_CLOSED && !conn->draining;
}

/* ---------------------------------------------------------------------------------------------- */
/* Failing */

/* Hands every call of conn back to client.c as a failed attempt. Calls that reached the session
 * may have been processed by the server; queued ones were not. */
static void fail_calls(struct cl_conn *conn, int code, const char *message)
{
    struct cl_call *w = conn->wait_head;
    conn->wait_head = conn->wait_tail = NULL;
    while (w) {
        struct cl_call *next = w->qnext_;
        w->qnext_ = NULL;
        w->conn_ = NULL;
        cl_call_attempt_failed(w, code, message, true);
        w = next;
    }
    /* streams: the client's list of calls names their connection */
    for (struct cl_call *call = conn->client->calls; call;) {
        struct cl_call *next = call->next_;
        if (call->conn_ == conn && call->state_ == CALL_STREAM) {
            call->conn_ = NULL;
            call->stream_id_ = 0;
            cl_call_attempt_failed(call, code, message, false);
        }
        call = next;
    }
    conn->streams = 0;
}

void cl_conn_fail(struct cl_conn *conn, int code, const char *message)
{
    if (conn->state == CONN_CLOSED)
        return;
    if (conn->state != CONN_READY) {
        struct cl_endpoint *ep = conn->ep;
        ep->failures++;
        uint64_t delay = 50u << (ep->failures < 5 ? ep->failures : 5); /* up to 1.6 s */
        ep->down_until = uv_now(conn->client->loop) + delay;
    }
    conn_close(conn, code, message);
}

static void on_tcp_closed(uv_handle_t *h)
{
    struct cl_conn *conn = h->data;
    conn->tcp_open = false;
    maybe_free(conn);
}

/* Releases the session and the socket; the memory goes once libuv is done with it. Calls still
 * on the connection come back first as attempts failed with code and message. */
static void conn_close(struct cl_conn *conn, int code, const char *message)
{
    conn->state = CONN_CLOSED;
    leave_slot(conn);
    fail_calls(conn, code, message);
    if (conn->ng) {
        nghttp2_session_del(conn->ng); /* calls no callback */
        conn->ng = NULL;
    }
    if (conn->resolving)
        uv_cancel((uv_req_t *)&conn->gai);
    if (conn->tcp_open && !uv_is_closing((uv_handle_t *)&conn->tcp))
        uv_close((uv_handle_t *)&conn->tcp, on_tcp_closed);
    maybe_free(conn);
}

/* A connection with nothing left to do after GOAWAY closes. */
static void maybe_retire(struct cl_conn *conn)
{
    if (conn->draining && conn->streams == 0 && !conn->wait_head && !conn->writing &&
        conn->state == CONN_READY)
        conn_close(conn, GRPC_UNAVAILABLE, "transport is closing");
}

/* ---------------------------------------------------------------------------------------------- */
/* Output */

static int wbuf_append(struct cl_conn *conn, const uint8_t *p, size_t n)
{
    if (conn->wlen + n > conn->wcap) {
        size_t cap = conn->wcap ? conn->wcap : 16 * 1024;
        while (cap < conn->wlen + n)
            cap *= 2;
        uint8_t *b = realloc(conn->wbuf, cap);
        if (!b)
            return CAIRN_E_NOMEM;
        conn->wbuf = b;
        conn->wcap = cap;
    }
    memcpy(conn->wbuf + conn->wlen, p, n);
    conn->wlen += n;
    return 0;
}

static void on_write(uv_write_t *req, int status)
{
    struct cl_conn *conn = req->data;
    conn->writing = false;
    conn->wlen = 0;
    if (conn->state != CONN_READY)
        return;
    if (status < 0) {
        cl_conn_fail(conn, GRPC_UNAVAILABLE, "transport is closing");
        return;
    }
    cl_conn_flush(conn);
}

void cl_conn_flush(struct cl_conn *conn)
{
    while (conn->state == CONN_READY && !conn->writing) {
        while (conn->wlen < WRITE_CHUNK) {
            const uint8_t *p;
            ssize_t n = nghttp2_session_mem_send(conn->ng, &p);
            if (n < 0) {
                cl_conn_fail(conn, GRPC_INTERNAL, nghttp2_strerror((int)n));
                return;
            }
            if (n == 0)
                break;
            if (wbuf_append(conn, p, (size_t)n) != 0) {
                cl_conn_fail(conn, GRPC_RESOURCE_EXHAUSTED, "cairn: out of memory");
                return;
            }
        }
        if (conn->wlen == 0) {
            if (!nghttp2_session_want_read(conn->ng) && !nghttp2_session_want_write(conn->ng))
                conn_close(conn, GRPC_UNAVAILABLE, "transport is closing"); /* GOAWAY done */
            else
                maybe_retire(conn);
            return;
        }
        if (conn->mem) {
            conn->wlen = 0; /* nobody reads it */
            continue;
        }
        uv_buf_t b = uv_buf_init((char *)conn->wbuf, (unsigned)conn->wlen);
        int r = uv_try_write((uv_stream_t *)&conn->tcp, &b, 1);
        if (r == (int)conn->wlen) {
            conn->wlen = 0;
            continue;
        }
        if (r < 0 && r != UV_EAGAIN) {
            cl_conn_fail(conn, GRPC_UNAVAILABLE, "transport is closing");
            return;
        }
        size_t off = r > 0 ? (size_t)r : 0;
        b = uv_buf_init((char *)conn->wbuf + off, (unsigned)(conn->wlen - off));
        conn->wreq.data = conn;
        r = uv_write(&conn->wreq, (uv_stream_t *)&conn->tcp, &b, 1, on_write);
        if (r < 0) {
            cl_conn_fail(conn, GRPC_UNAVAILABLE, "transport is closing");
            return;
        }
        conn->writing = true;
    }
}

void cl_conn_flush_dirty(struct cl_client *c)
{
    while (c->dirty) {
        struct cl_conn *conn = c->dirty;
        c->dirty = conn->dirty_next;
        conn->dirty = false;
        cl_conn_flush(conn);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Streams */

/* nghttp2's data source for a request body: the framed request in the call. */
static ssize_t read_body(nghttp2_session *s, int32_t stream_id, uint8_t *buf, size_t length,
                         uint32_t *data_flags, nghttp2_data_source *source, void *ud)
{
    (void)ud;
    (void)source;
    struct cl_call *call = nghttp2_session_get_stream_user_data(s, stream_id);
    if (!call)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* detached: reset the stream */
    if (call->stream_)
        return cl_stream_read_body(call, buf, length, data_flags);
    size_t n = call->body_len_ - call->body_off_;
    if (n > length)
        n = length;
    memcpy(buf, call->body_ + call->body_off_, n);
    call->body_off_ += n;
    if (call->body_off_ == call->body_len_)
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

#define NV(n, v, vlen)                                                              \
    (nghttp2_nv)                                                                    \
    {                                                                               \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, (vlen), NGHTTP2_NV_FLAG_NONE \
    }

/* Submits call as a new stream. On failure the call is handed back as a failed attempt. */
static void submit_stream(struct cl_conn *conn, struct cl_call *call)
{
    const char *path = call->method_->path;
    nghttp2_nv nva[9];
    size_t n = 0;
    char timeout[10];
    nva[n++] = NV(":method", "POST", 4);
    nva[n++] = NV(":scheme", "http", 4);
    nva[n++] = NV(":path", path, strlen(path));
    nva[n++] = NV(":authority", conn->ep->name, strlen(conn->ep->name));
    nva[n++] = NV("content-type", "application/grpc", 16);
    nva[n++] = NV("te", "trailers", 8);
    nva[n++] = NV("user-agent", USER_AGENT, sizeof USER_AGENT - 1);
    if (call->stream_ && call->stream_->require_leader)
        nva[n++] = NV("hasleader", "true", 4);
    if (call->deadline_) {
        uint64_t now = uv_now(conn->client->loop);
        uint64_t left = call->deadline_ > now ? call->deadline_ - now : 1;
        grpc_timeout_format(left, timeout);
        nva[n++] = NV("grpc-timeout", timeout, strlen(timeout));
    }
    call->body_off_ = 0;
    call->code = -1;
    call->http_status_ = 0;
    call->headers_ok_ = false;
    grpc_frame_decoder_free(&call->dec_);
    grpc_frame_decoder_init(&call->dec_, conn->client->opts.max_recv_bytes);
    nghttp2_data_provider prd = {.source.ptr = call, .read_callback = read_body};
    int32_t id = nghttp2_submit_request(conn->ng, NULL, nva, n, &prd, call);
    if (id < 0) {
        /* stream ids used up (or out of memory): nothing was sent; another connection will do */
        conn->draining = true;
        leave_slot(conn);
        call->conn_ = NULL;
        cl_call_attempt_failed(call, GRPC_UNAVAILABLE, nghttp2_strerror(id), true);
        mark_dirty(conn); /* the flush retires it when it is done */
        return;
    }
    call->conn_ = conn;
    call->stream_id_ = id;
    call->state_ = CALL_STREAM;
    conn->streams++;
    mark_dirty(conn);
}

void cl_conn_submit(struct cl_conn *conn, struct cl_call *call)
{
    call->conn_ = conn;
    call->sent_ = false;
    if (conn->state == CONN_READY) {
        submit_stream(conn, call);
        return;
    }
    call->state_ = CALL_WAITING;
    call->qnext_ = NULL;
    if (conn->wait_tail)
        conn->wait_tail->qnext_ = call;
    else
        conn->wait_head = call;
    conn->wait_tail = call;
}

void cl_conn_resume(struct cl_conn *conn, struct cl_call *call)
{
    if (call->state_ != CALL_STREAM || !conn->ng)
        return;
    nghttp2_session_resume_data(conn->ng, call->stream_id_); /* an error: it was not deferred */
    mark_dirty(conn);
}

void cl_conn_detach(struct cl_conn *conn, struct cl_call *call)
{
    if (call->state_ == CALL_WAITING) {
        for (struct cl_call **p = &conn->wait_head, *prev = NULL; *p;
             prev = *p, p = &(*p)->qnext_) {
            if (*p == call) {
                *p = call->qnext_;
                if (conn->wait_tail == call)
                    conn->wait_tail = prev;
                break;
            }
        }
        call->qnext_ = NULL;
    } else if (call->state_ == CALL_STREAM && conn->ng) {
        nghttp2_session_set_stream_user_data(conn->ng, call->stream_id_, NULL);
        nghttp2_submit_rst_stream(conn->ng, NGHTTP2_FLAG_NONE, call->stream_id_, NGHTTP2_CANCEL);
        conn->streams--;
        mark_dirty(conn);
    }
    call->conn_ = NULL;
    call->stream_id_ = 0;
}

/* Ends the stream of call at once with a local error (bad response): reset, then finish. */
static void stream_abort(struct cl_conn *conn, struct cl_call *call, int code, const char *msg)
{
    cl_conn_detach(conn, call);
    cl_call_finish(call, code, msg);
}

/* ---------------------------------------------------------------------------------------------- */
/* nghttp2 callbacks */

static struct cl_call *stream_call(nghttp2_session *s, int32_t id)
{
    return id > 0 ? nghttp2_session_get_stream_user_data(s, id) : NULL;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    (void)ud;
    struct cl_call *call = stream_call(s, frame->hd.stream_id);
    if (!call || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
#define IS(lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)
    if (IS(":status")) {
        int v = 0;
        for (size_t i = 0; i < valuelen && i < 4; i++)
            v = v * 10 + (value[i] >= '0' && value[i] <= '9' ? value[i] - '0' : 0);
        call->http_status_ = v;
    } else if (IS("content-type")) {
        call->headers_ok_ = grpc_content_type_ok((const char *)value, valuelen);
    } else if (IS("grpc-status")) {
        int v = 0;
        bool ok = valuelen > 0 && valuelen < 6;
        for (size_t i = 0; ok && i < valuelen; i++) {
            ok = value[i] >= '0' && value[i] <= '9';
            v = v * 10 + (value[i] - '0');
        }
        call->code = ok ? v : GRPC_UNKNOWN;
    } else if (IS("grpc-message")) {
        free(call->message);
        call->message = grpc_message_decode((const char *)value, valuelen);
    }
#undef IS
    return 0;
}

static int on_data_chunk(nghttp2_session *s, uint8_t flags, int32_t stream_id, const uint8_t *data,
                         size_t len, void *ud)
{
    (void)flags;
    struct cl_conn *conn = ud;
    struct cl_call *call = stream_call(s, stream_id);
    if (!call)
        return 0;
    while (len > 0) {
        struct grpc_frame_msg msg;
        size_t used = 0;
        int r = grpc_frame_decode(&call->dec_, data, len, &used, &msg);
        data += used;
        len -= used;
        if (r < 0) {
            char text[96];
            if (r == GRPC_FRAME_E_TOO_LARGE)
                snprintf(text, sizeof text, "grpc: received message larger than max (%u vs. %zu)",
                         (unsigned)call->dec_.declared, conn->client->opts.max_recv_bytes);
            else
                snprintf(text, sizeof text, "grpc: malformed message framing in response");
            stream_abort(conn, call,
                         r == GRPC_FRAME_E_TOO_LARGE ? GRPC_RESOURCE_EXHAUSTED : GRPC_INTERNAL,
                         text);
            return 0;
        }
        if (r == 0)
            break;
        if (msg.compressed && call->stream_) {
            stream_abort(conn, call, GRPC_INTERNAL,
                         "grpc: server sent a compressed message although none was accepted");
            return 0;
        }
        if (call->stream_) {
            ProtobufCMessage *m = cl_stream_msg_unpack(call->method_->response, msg.len, msg.data);
            if (!m) {
                stream_abort(conn, call, GRPC_INTERNAL,
                             "grpc: failed to unmarshal the received message");
                return 0;
            }
            cl_stream_received(call, m);
            continue;
        }
        if (call->response) {
            stream_abort(conn, call, GRPC_INTERNAL,
                         "grpc: server sent more than one response message on a unary call");
            return 0;
        }
        if (msg.compressed) {
            stream_abort(conn, call, GRPC_INTERNAL,
                         "grpc: server sent a compressed message although none was accepted");
            return 0;
        }
        call->response =
            protobuf_c_message_unpack(call->method_->response, NULL, msg.len, msg.data);
        if (!call->response) {
            stream_abort(conn, call, GRPC_INTERNAL,
                         "grpc: failed to unmarshal the received message");
            return 0;
        }
    }
    return 0;
}

/* grpc-go's mapping of a response without grpc-status by its HTTP status. */
static int http_status_code(int http)
{
    switch (http) {
    case 400:
        return GRPC_INTERNAL;
    case 401:
        return GRPC_UNAUTHENTICATED;
    case 403:
        return GRPC_PERMISSION_DENIED;
    case 404:
        return GRPC_UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
        return GRPC_UNAVAILABLE;
    default:
        return GRPC_UNKNOWN;
    }
}

/* grpc-go's mapping of RST_STREAM error codes to statuses. */
static int rst_code(uint32_t error_code)
{
    switch (error_code) {
    case NGHTTP2_CANCEL:
        return GRPC_CANCELLED;
    case NGHTTP2_REFUSED_STREAM:
        return GRPC_UNAVAILABLE;
    case NGHTTP2_ENHANCE_YOUR_CALM:
        return GRPC_RESOURCE_EXHAUSTED;
    case NGHTTP2_INADEQUATE_SECURITY:
        return GRPC_PERMISSION_DENIED;
    default:
        return GRPC_INTERNAL;
    }
}

/* A stream ended: its call's attempt is over, with whatever the server said. */
static int on_stream_close(nghttp2_session *s, int32_t stream_id, uint32_t error_code, void *ud)
{
    struct cl_conn *conn = ud;
    struct cl_call *call = stream_call(s, stream_id);
    if (!call)
        return 0;
    nghttp2_session_set_stream_user_data(s, stream_id, NULL);
    conn->streams--;
    call->conn_ = NULL;
    call->stream_id_ = 0;
    char text[96];
    if (call->code >= 0 && error_code == NGHTTP2_NO_ERROR) {
        /* trailers (or Trailers-Only) arrived */
        int code = call->code;
        char *message = call->message;
        call->message = NULL;
        if (code == GRPC_OK && !call->response && !call->stream_)
            cl_call_finish(call, GRPC_INTERNAL, "grpc: server returned no response message");
        else if (code == GRPC_UNAVAILABLE)
            cl_call_attempt_failed(call, code, message, false);
        else
            cl_call_finish(call, code, message);
        free(message);
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        cl_call_attempt_failed(call, GRPC_UNAVAILABLE,
                               "the stream was refused by the server (REFUSED_STREAM)", true);
    } else if (error_code != NGHTTP2_NO_ERROR) {
        snprintf(text, sizeof text, "stream terminated by RST_STREAM with error code: %u",
                 (unsigned)error_code);
        if (rst_code(error_code) == GRPC_UNAVAILABLE)
            cl_call_attempt_failed(call, GRPC_UNAVAILABLE, text, false);
        else
            cl_call_finish(call, rst_code(error_code), text);
    } else if (call->http_status_ != 200) {
        snprintf(text, sizeof text, "unexpected HTTP status code received from server: %d",
                 call->http_status_);
        if (http_status_code(call->http_status_) == GRPC_UNAVAILABLE)
            cl_call_attempt_failed(call, GRPC_UNAVAILABLE, text, false);
        else
            cl_call_finish(call, http_status_code(call->http_status_), text);
    } else if (!call->headers_ok_) {
        cl_call_finish(call, GRPC_INTERNAL, "transport: received unexpected content-type");
    } else {
        cl_call_finish(call, GRPC_INTERNAL, "server closed the stream without sending trailers");
    }
    mark_dirty(conn); /* inside nghttp2: the flush retires it if it is done */
    return 0;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s;
    struct cl_conn *conn = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY) {
        conn->draining = true; /* streams above last_stream_id close with REFUSED_STREAM */
        leave_slot(conn);
    }
    return 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)ud;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        struct cl_call *call = stream_call(s, frame->hd.stream_id);
        if (call)
            call->sent_ = true; /* from here the server may act on it */
    }
    return 0;
}

/* The callbacks, made once per process: clients on several threads share them. */
static nghttp2_session_callbacks *cbs;

static void make_callbacks(void)
{
    if (nghttp2_session_callbacks_new(&cbs)) {
        cbs = NULL;
        return;
    }
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
}

static nghttp2_session_callbacks *callbacks(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, make_callbacks);
    return cbs;
}

/* ---------------------------------------------------------------------------------------------- */
/* Input */

static void recv_bytes(struct cl_conn *conn, const uint8_t *data, size_t len);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct cl_conn *conn = h->data;
    *buf = uv_buf_init((char *)conn->client->rbuf, sizeof conn->client->rbuf);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct cl_conn *conn = stream->data;
    if (conn->state != CONN_READY)
        return;
    if (nread < 0) {
        cl_conn_fail(conn, GRPC_UNAVAILABLE, "transport is closing");
        return;
    }
    if (nread == 0)
        return;
    recv_bytes(conn, (const uint8_t *)buf->base, (size_t)nread);
}

int cl_conn_feed_mem(struct cl_conn *conn, const uint8_t *data, size_t len)
{
    if (conn->state != CONN_READY)
        return CAIRN_E_INVALID_ARGUMENT;
    recv_bytes(conn, data, len);
    return 0;
}

/* Hands bytes from the server to nghttp2; a protocol error fails the connection. */
static void recv_bytes(struct cl_conn *conn, const uint8_t *data, size_t len)
{
    ssize_t r = nghttp2_session_mem_recv(conn->ng, data, len);
    if (conn->state != CONN_READY)
        return;
    if (r < 0) {
        char text[128];
        snprintf(text, sizeof text, "connection error: desc = \"transport: http2: %s\"",
                 nghttp2_strerror((int)r));
        cl_conn_fail(conn, GRPC_UNAVAILABLE, text);
        return;
    }
    mark_dirty(conn); /* acks, window updates, and calls started by finished ones */
}

/* ---------------------------------------------------------------------------------------------- */
/* Connecting */

static void dial_failed(struct cl_conn *conn, const char *what, int err)
{
    char text[256];
    snprintf(text, sizeof text,
             "connection error: desc = \"transport: Error while dialing dial tcp %s: %s: %s\"",
             conn->ep->name, what, uv_strerror(err));
    cl_conn_fail(conn, GRPC_UNAVAILABLE, text);
}

static int start_session(struct cl_conn *conn)
{
    if (!callbacks())
        return NGHTTP2_ERR_NOMEM;
    nghttp2_option *opt;
    int r = nghttp2_option_new(&opt);
    if (r)
        return r;
    /* the window updates we send are nghttp2's automatic ones, as the response is consumed */
    nghttp2_option_set_max_reserved_remote_streams(opt, 0); /* no server push */
    r = nghttp2_session_client_new2(&conn->ng, callbacks(), conn, opt);
    nghttp2_option_del(opt);
    if (r)
        return r;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, 1 << 20},
    };
    r = nghttp2_submit_settings(conn->ng, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    if (!r)
        r = nghttp2_session_set_local_window_size(conn->ng, NGHTTP2_FLAG_NONE, 0, CONN_WINDOW);
    return r;
}

static void become_ready(struct cl_conn *conn);

static void on_connect(uv_connect_t *req, int status)
{
    struct cl_conn *conn = req->data;
    if (conn->state != CONN_CONNECTING)
        return; /* closed meanwhile (status is UV_ECANCELED) */
    if (status < 0) {
        dial_failed(conn, "connect", status);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    int r = start_session(conn);
    if (r) {
        cl_conn_fail(conn, GRPC_INTERNAL, nghttp2_strerror(r));
        return;
    }
    r = uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
    if (r) {
        dial_failed(conn, "read", r);
        return;
    }
    become_ready(conn);
}

/* The session is up: submit the calls that waited. */
static void become_ready(struct cl_conn *conn)
{
    conn->state = CONN_READY;
    conn->ep->failures = 0;
    conn->ep->down_until = 0;
    struct cl_call *w = conn->wait_head;
    conn->wait_head = conn->wait_tail = NULL;
    while (w) {
        struct cl_call *next = w->qnext_;
        w->qnext_ = NULL;
        if (conn->state == CONN_READY && !conn->draining) {
            submit_stream(conn, w);
        } else {
            w->conn_ = NULL;
            cl_call_attempt_failed(w, GRPC_UNAVAILABLE, "transport is closing", true);
        }
        w = next;
    }
    mark_dirty(conn); /* the preface and SETTINGS at least */
}

static void start_connect(struct cl_conn *conn, const struct sockaddr *addr)
{
    int r = uv_tcp_init(conn->client->loop, &conn->tcp);
    if (r) {
        dial_failed(conn, "socket", r);
        return;
    }
    conn->tcp.data = conn;
    conn->tcp_open = true;
    conn->state = CONN_CONNECTING;
    conn->creq.data = conn;
    r = uv_tcp_connect(&conn->creq, &conn->tcp, addr, on_connect);
    if (r)
        dial_failed(conn, "connect", r);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct cl_conn *conn = req->data;
    conn->resolving = false;
    if (conn->state != CONN_RESOLVING) {
        uv_freeaddrinfo(res);
        maybe_free(conn);
        return;
    }
    if (status < 0 || !res) {
        dial_failed(conn, "lookup", status < 0 ? status : UV_EAI_NONAME);
        uv_freeaddrinfo(res);
        return;
    }
    start_connect(conn, res->ai_addr);
    uv_freeaddrinfo(res);
}

/* A new connection of c to ep, in ep's slot and the client's list (state CONN_RESOLVING). */
static struct cl_conn *conn_new(struct cl_client *c, struct cl_endpoint *ep, unsigned slot)
{
    struct cl_conn *conn = calloc(1, sizeof *conn);
    if (!conn)
        return NULL;
    conn->client = c;
    conn->ep = ep;
    conn->slot = slot;
    conn->state = CONN_RESOLVING;
    conn->next = c->conns;
    if (c->conns)
        c->conns->prev = conn;
    c->conns = conn;
    c->handles_open++;
    ep->slots[slot] = conn;
    return conn;
}

struct cl_conn *cl_conn_open(struct cl_client *c, struct cl_endpoint *ep, unsigned slot)
{
    struct cl_conn *conn = conn_new(c, ep, slot);
    if (!conn)
        return NULL;
    conn->dial_deadline = uv_now(c->loop) + c->opts.dial_timeout_ms;
    cl_client_wake_at(c, conn->dial_deadline);

    struct sockaddr_storage ss;
    if (uv_ip4_addr(ep->host, ep->port, (struct sockaddr_in *)&ss) == 0 ||
        uv_ip6_addr(ep->host, ep->port, (struct sockaddr_in6 *)&ss) == 0) {
        start_connect(conn, (struct sockaddr *)&ss);
        return conn;
    }
    char port[8];
    snprintf(port, sizeof port, "%d", ep->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    conn->gai.data = conn;
    int r = uv_getaddrinfo(c->loop, &conn->gai, on_resolved, ep->host, port, &hints);
    if (r) {
        dial_failed(conn, "lookup", r);
        return conn;
    }
    conn->resolving = true;
    return conn;
}

struct cl_conn *cl_conn_open_mem(struct cl_client *c, struct cl_endpoint *ep, unsigned slot)
{
    struct cl_conn *conn = conn_new(c, ep, slot);
    if (!conn)
        return NULL;
    conn->mem = true;
    if (start_session(conn)) {
        conn_close(conn, GRPC_INTERNAL, "cairn: out of memory");
        return NULL;
    }
    become_ready(conn);
    return conn;
}

uint64_t cl_conn_check_dial(struct cl_conn *conn, uint64_t now)
{
    if (conn->state != CONN_RESOLVING && conn->state != CONN_CONNECTING)
        return 0;
    if (now < conn->dial_deadline)
        return conn->dial_deadline;
    dial_failed(conn, "connect", UV_ETIMEDOUT);
    return 0;
}
