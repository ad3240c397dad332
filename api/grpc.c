/* api/grpc.c — gRPC calls on HTTP/2 streams: the server, its listeners and calls (see grpc.h).
 *
 * Wire rules follow gRPC's PROTOCOL-HTTP2.md and grpc-go's server (the implementation etcd 3.4
 * runs), including its status messages, which clients show to users:
 * - a request is POST with content-type application/grpc[+proto|;...]; otherwise grpc-go answers
 *   HTTP 415 (405 for another method) with grpc-status and grpc-message in one HEADERS frame;
 * - an unknown path gets UNIMPLEMENTED "unknown service S" / "unknown method M for service S";
 * - grpc-timeout ("<=8 digits><H|M|S|m|u|n>") bounds the call: when it passes, the handler is
 *   cancelled and the client gets DEADLINE_EXCEEDED "context deadline exceeded";
 * - a response is HEADERS (:status 200, content-type), DATA with length-prefixed messages, then
 *   trailers with grpc-status and a percent-encoded grpc-message; a call that ends before sending
 *   a message answers Trailers-Only (one HEADERS frame with END_STREAM).
 *
 * Handlers never see callbacks re-entered from the functions they call: grpc_call_send() and
 * grpc_call_finish() only queue; connections touched outside nghttp2's callbacks are flushed from
 * a uv_idle handle, before the loop next blocks in poll (an active idle handle makes poll not
 * block), which also gathers the answers of one loop iteration into fewer writes. */
#include "api/grpc.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/h2.h"
#include "common/grpc_frame.h"
#include "common/grpc_meta.h"

#define DEFAULT_MAX_RECV   (2 * 1024 * 1024 + 1024)
#define DEFAULT_HIGH_WATER (1024 * 1024)
#define DEFAULT_GRACE_MS   7000 /* etcd's request timeout: 5 s + 2 × the 1 s election timeout */
/* A connection whose calls hold more unsent output than this gets its new streams refused
 * (RST_STREAM REFUSED_STREAM, which gRPC clients retry): a client that sends requests but does not
 * read the answers cannot grow the server's memory without bound. The connection is still read,
 * or the WINDOW_UPDATEs that would drain it, its PINGs and its end would go unseen. */
#define CONN_REFUSE_BYTES  ((size_t)64 << 20)

struct listener {
    uv_tcp_t tcp;            /* listening socket */
    struct grpc_server *srv; /* NULL once the server forgot it (failed listen) */
    struct listener *next;   /* srv->listeners */
};

/* The gRPC side of one HTTP/2 connection. */
struct gconn {
    struct grpc_server *srv;   /* owner */
    struct h2_conn *h2;        /* the connection */
    struct gconn *prev, *next; /* srv->conns (until on_close) */
    struct gconn *dirty_next;  /* srv->dirty */
    struct grpc_call *calls;   /* calls whose stream is open */
    struct grpc_call *wlist;   /* calls owed on_writable */
    size_t queued;             /* bytes queued in the calls' send queues */
    bool dirty;                /* in srv->dirty: output submitted outside nghttp2's callbacks */
    bool closed;               /* on_close ran */
};

struct grpc_mem_conn {
    struct h2_conn *h2; /* a memory connection */
};

struct grpc_server {
    uv_loop_t *loop;                   /* the loop everything runs on */
    struct grpc_server_options opts;   /* with defaults applied */
    struct h2_options h2o;             /* HTTP/2 settings of every connection */
    const struct grpc_method **method; /* registered methods */
    size_t n_methods, cap_methods;     /* used and allocated entries of method */
    struct listener *listeners;        /* listening sockets */
    size_t n_listeners;                /* listeners not yet closed */
    struct gconn *conns;               /* open connections */
    size_t n_conns;                    /* connections not yet freed */
    struct gconn *dirty;               /* connections to flush before the next poll */
    uv_idle_t *idle;                   /* flushes dirty connections; NULL until needed */
    bool idle_active;                  /* idle is started */
    bool idle_closing;                 /* shutdown closes idle; done follows */
    uint8_t *rbuf;                     /* read buffer shared by the connections */
    int port;                          /* port of the first listener */
    bool shutting_down;                /* grpc_server_shutdown() was called */
    bool shutdown_done;                /* done was called */
    void (*done)(void *arg);           /* shutdown's callback */
    void *done_arg;                    /* its argument */
    uv_timer_t *grace;                 /* shutdown: closes what is still open when it fires */
};

/* One queued response message with its prefix. */
struct chunk {
    struct chunk *next; /* queue order */
    size_t len, cap;    /* bytes in data, and room for */
    uint8_t data[];     /* prefixed messages */
};

/* A stream's small messages share chunks of this size: one allocation for many responses. */
#define CHUNK_MIN (4096 - sizeof(struct chunk))

struct grpc_call {
    struct gconn *conn;            /* NULL once the stream is gone */
    int32_t id;                    /* stream id */
    const struct grpc_method *m;   /* the method */
    struct h2_headers *hs;         /* request headers */
    struct grpc_frame_decoder dec; /* request messages */
    bool identity;                 /* grpc-encoding absent or identity */
    struct chunk *head, *tail;     /* send queue */
    size_t head_off;               /* bytes of head already sent */
    size_t queued;                 /* bytes in the send queue */
    size_t high_water;             /* grpc_call_send reports 1 at or above */
    struct grpc_call *prev, *next; /* conn->calls */
    struct grpc_call *wnext;       /* conn->wlist */
    uv_timer_t *timer;             /* deadline, or NULL */
    void *data;                    /* grpc_call_data() */
    char *message;                 /* percent-encoded grpc-message of the trailers, or NULL */
    int status;                    /* grpc-status of the trailers */
    bool handed;                   /* the handler knows the call (and owes a finish) */
    bool delivered;                /* unary: the request message was delivered */
    bool finished;                 /* no finish is owed any more (handler's or transport's) */
    bool ended;                    /* trailers decided: nothing more is sent or delivered */
    bool cancelled;                /* grpc_call_cancelled() */
    bool cancel_notified;          /* on_cancel ran */
    bool closing_shutdown;         /* cancelled by shutdown: finish sends UNAVAILABLE */
    bool headers_sent;             /* response HEADERS submitted */
    bool deferred;                 /* read_body returned NGHTTP2_ERR_DEFERRED */
    bool want_writable;            /* send reported 1: on_writable is owed */
    bool in_wlist;                 /* in conn->wlist */
};

static const struct h2_handler handler;

/* ---------------------------------------------------------------------------------------------- */
/* Server */

int grpc_server_new(uv_loop_t *loop, const struct grpc_server_options *opts,
                    struct grpc_server **out)
{
    struct grpc_server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return UV_ENOMEM;
    srv->rbuf = malloc(H2_READ_BUFFER_SIZE);
    if (!srv->rbuf) {
        free(srv);
        return UV_ENOMEM;
    }
    srv->loop = loop;
    if (opts)
        srv->opts = *opts;
    if (!srv->opts.max_recv_msg_size)
        srv->opts.max_recv_msg_size = DEFAULT_MAX_RECV;
    if (!srv->opts.send_high_water)
        srv->opts.send_high_water = DEFAULT_HIGH_WATER;
    if (!srv->opts.shutdown_grace_ms)
        srv->opts.shutdown_grace_ms = DEFAULT_GRACE_MS;
    h2_options_default(&srv->h2o);
    if (srv->opts.max_concurrent_streams)
        srv->h2o.max_concurrent_streams = srv->opts.max_concurrent_streams;
    srv->opts.max_concurrent_streams = srv->h2o.max_concurrent_streams;
    *out = srv;
    return 0;
}

void grpc_server_register(struct grpc_server *srv, const struct grpc_method *methods, size_t n)
{
    if (srv->n_methods + n > srv->cap_methods) {
        size_t cap = srv->cap_methods ? srv->cap_methods : 16;
        while (cap < srv->n_methods + n)
            cap *= 2;
        const struct grpc_method **p = realloc(srv->method, cap * sizeof *p);
        if (!p)
            abort(); /* registration happens once at startup */
        srv->method = p;
        srv->cap_methods = cap;
    }
    for (size_t i = 0; i < n; i++)
        srv->method[srv->n_methods++] = &methods[i];
}

static const struct grpc_method *find_method(const struct grpc_server *srv, const char *path)
{
    for (size_t i = 0; i < srv->n_methods; i++)
        if (strcmp(srv->method[i]->path, path) == 0)
            return srv->method[i];
    return NULL;
}

/* Does any method belong to the service "/<service>/"? (prefix: "/service/", len bytes) */
static bool known_service(const struct grpc_server *srv, const char *prefix, size_t len)
{
    for (size_t i = 0; i < srv->n_methods; i++)
        if (strncmp(srv->method[i]->path, prefix, len) == 0 &&
            !strchr(srv->method[i]->path + len, '/'))
            return true;
    return false;
}

static void flush_dirty(uv_idle_t *idle)
{
    struct grpc_server *srv = idle->data;
    struct gconn *g;
    while ((g = srv->dirty)) {
        srv->dirty = g->dirty_next;
        g->dirty = false;
        h2_flush(g->h2); /* may close g: then on_close already took it off the list */
    }
    uv_idle_stop(srv->idle);
    srv->idle_active = false;
}

static void free_handle(uv_handle_t *h)
{
    free(h);
}

/* The idle handle is created with the first connection or listener. It lives in its own
 * allocation, so that grpc_server_free() can leave its closing to the loop. */
static int idle_init(struct grpc_server *srv)
{
    if (srv->idle)
        return 0;
    uv_idle_t *idle = malloc(sizeof *idle);
    if (!idle)
        return UV_ENOMEM;
    int rv = uv_idle_init(srv->loop, idle);
    if (rv) {
        free(idle);
        return rv;
    }
    idle->data = srv;
    uv_unref((uv_handle_t *)idle);
    srv->idle = idle;
    return 0;
}

/* Output was submitted on g outside nghttp2's callbacks: flush it before the next poll. */
static void touch(struct gconn *g)
{
    if (g->dirty || g->closed)
        return;
    struct grpc_server *srv = g->srv;
    g->dirty = true;
    g->dirty_next = srv->dirty;
    srv->dirty = g;
    if (!srv->idle_active) {
        uv_idle_start(srv->idle, flush_dirty);
        srv->idle_active = true;
    }
}

static void on_idle_closed(uv_handle_t *h)
{
    struct grpc_server *srv = h->data;
    free(h);
    srv->shutdown_done = true;
    if (srv->done)
        srv->done(srv->done_arg);
}

static void maybe_done(struct grpc_server *srv)
{
    if (!srv->shutting_down || srv->n_listeners || srv->n_conns || srv->shutdown_done)
        return;
    if (srv->idle_closing)
        return;
    if (srv->grace) {
        srv->grace->data = NULL;
        uv_close((uv_handle_t *)srv->grace, free_handle);
        srv->grace = NULL;
    }
    if (srv->idle) {
        uv_idle_t *idle = srv->idle;
        srv->idle = NULL;
        srv->idle_active = false;
        srv->idle_closing = true;
        uv_close((uv_handle_t *)idle, on_idle_closed);
        return;
    }
    srv->shutdown_done = true; /* never had a connection: nothing to wait for */
    if (srv->done)
        srv->done(srv->done_arg);
}

static void on_listener_closed(uv_handle_t *h)
{
    struct listener *l = h->data;
    struct grpc_server *srv = l->srv;
    free(l);
    if (srv) {
        srv->n_listeners--;
        maybe_done(srv);
    }
}

static struct gconn *gconn_new(struct grpc_server *srv)
{
    struct gconn *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->srv = srv;
    g->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = g;
    srv->conns = g;
    srv->n_conns++;
    return g;
}

/* Undoes gconn_new for a connection that never opened. */
static void gconn_abandon(struct gconn *g)
{
    struct grpc_server *srv = g->srv;
    if (g->prev)
        g->prev->next = g->next;
    else
        srv->conns = g->next;
    if (g->next)
        g->next->prev = g->prev;
    srv->n_conns--;
    free(g);
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct listener *l = listener->data;
    struct grpc_server *srv = l->srv;
    if (status < 0 || !srv || srv->shutting_down)
        return;
    struct gconn *g = gconn_new(srv);
    if (!g)
        return;
    if (h2_conn_accept(listener, &srv->h2o, &handler, g, srv->rbuf, &g->h2) != 0)
        gconn_abandon(g);
}

int grpc_server_listen(struct grpc_server *srv, const char *host, int port)
{
    struct sockaddr_storage ss;
    if (srv->shutting_down)
        return UV_EINVAL;
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0)
        return UV_EINVAL;
    int rv = idle_init(srv);
    if (rv)
        return rv;
    struct listener *l = calloc(1, sizeof *l);
    if (!l)
        return UV_ENOMEM;
    rv = uv_tcp_init(srv->loop, &l->tcp);
    if (rv) {
        free(l);
        return rv;
    }
    l->tcp.data = l;
    rv = uv_tcp_bind(&l->tcp, (const struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&l->tcp, 511, on_connection);
    struct sockaddr_storage bound;
    int blen = sizeof bound;
    if (rv == 0)
        rv = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&bound, &blen);
    if (rv) {
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed); /* l->srv is NULL: srv untouched */
        return rv;
    }
    l->srv = srv;
    l->next = srv->listeners;
    srv->listeners = l;
    srv->n_listeners++;
    if (!srv->port)
        srv->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                      : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int grpc_server_port(const struct grpc_server *srv)
{
    return srv->port;
}

void grpc_server_free(struct grpc_server *srv)
{
    if (!srv)
        return;
    assert(srv->n_conns == 0 && srv->n_listeners == 0);
    if (srv->idle) { /* never shut down (every listen failed): the loop frees the handle */
        srv->idle->data = NULL;
        uv_close((uv_handle_t *)srv->idle, free_handle);
    }
    free(srv->method);
    free(srv->rbuf);
    free(srv);
}

/* ---------------------------------------------------------------------------------------------- */
/* Calls: sending */

#define NV(n, v)                                                                       \
    {                                                                                  \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NONE \
    }

/* Fills nv with the status fields; returns how many. */
static size_t status_nv(nghttp2_nv *nv, char code[12], int status, const char *pct_message)
{
    snprintf(code, 12, "%d", status);
    size_t n = 0;
    nv[n++] = (nghttp2_nv)NV("grpc-status", code);
    if (pct_message && *pct_message)
        nv[n++] = (nghttp2_nv)NV("grpc-message", pct_message);
    return n;
}

/* Answers a stream that never becomes a call with one HEADERS frame ending it, as grpc-go's
 * early aborts and unknown-method replies do. */
static void early_answer(struct h2_conn *c, int32_t id, int http_status, int status,
                         const char *message)
{
    char hs[12], code[12];
    char *pct = grpc_message_encode(message);
    snprintf(hs, sizeof hs, "%d", http_status);
    nghttp2_nv nv[4] = {NV(":status", hs), NV("content-type", "application/grpc")};
    size_t n = 2 + status_nv(nv + 2, code, status, pct);
    if (h2_submit_headers(c, id, nv, n, false) != 0)
        h2_submit_rst(c, id, NGHTTP2_INTERNAL_ERROR);
    free(pct);
}

static void conn_queued(struct gconn *g, size_t add, size_t sub)
{
    g->queued = g->queued + add - sub;
}

static void stop_timer(struct grpc_call *call)
{
    if (!call->timer)
        return;
    call->timer->data = NULL;
    uv_close((uv_handle_t *)call->timer, free_handle);
    call->timer = NULL;
}

/* Decides the trailers (status and message) and submits them, or submits a Trailers-Only answer
 * when no message went out. The queue still drains first. */
static void end_call(struct grpc_call *call, int status, const char *message)
{
    assert(call->conn && !call->ended);
    call->ended = true;
    call->status = status;
    call->message = message ? grpc_message_encode(message) : NULL;
    stop_timer(call);
    struct h2_conn *c = call->conn->h2;
    if (!call->headers_sent) {
        call->headers_sent = true;
        char code[12];
        nghttp2_nv nv[4] = {NV(":status", "200"), NV("content-type", "application/grpc")};
        size_t n = 2 + status_nv(nv + 2, code, status, call->message);
        if (h2_submit_headers(c, call->id, nv, n, false) != 0)
            h2_submit_rst(c, call->id, NGHTTP2_INTERNAL_ERROR);
    } else if (call->deferred) {
        call->deferred = false;
        h2_resume(c, call->id);
    }
    touch(call->conn);
}

static ssize_t read_body(struct h2_conn *c, void *sd, uint8_t *buf, size_t len,
                         uint32_t *data_flags)
{
    (void)c;
    struct grpc_call *call = sd;
    size_t n = 0;
    while (n < len && call->head) {
        struct chunk *k = call->head;
        size_t take = k->len - call->head_off;
        if (take > len - n)
            take = len - n;
        memcpy(buf + n, k->data + call->head_off, take);
        n += take;
        call->head_off += take;
        if (call->head_off == k->len) {
            call->head = k->next;
            if (!call->head)
                call->tail = NULL;
            call->head_off = 0;
            free(k);
        }
    }
    call->queued -= n;
    conn_queued(call->conn, 0, n);
    if (call->want_writable && call->queued < call->high_water / 2 && !call->in_wlist) {
        call->want_writable = false;
        call->in_wlist = true;
        call->wnext = call->conn->wlist;
        call->conn->wlist = call;
    }
    if (!call->head) {
        if (call->ended) {
            char code[12];
            nghttp2_nv nv[2];
            size_t nn = status_nv(nv, code, call->status, call->message);
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
            if (h2_submit_trailers(c, call->id, nv, nn) == 0)
                *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
        } else if (n == 0) {
            call->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

int grpc_call_send(struct grpc_call *call, const uint8_t *msg, size_t len)
{
    struct grpc_part part = {msg, len};
    return grpc_call_sendv(call, &part, 1);
}

int grpc_call_sendv(struct grpc_call *call, const struct grpc_part *parts, size_t n)
{
    if (call->finished || call->ended || call->cancelled || !call->conn)
        return UV_ECANCELED;
    size_t len = 0;
    for (size_t i = 0; i < n; i++)
        len += parts[i].len;
    if (len > UINT32_MAX)
        return UV_E2BIG;
    size_t need = GRPC_FRAME_HEADER_SIZE + len;
    struct chunk *k = call->tail;
    if (!k || k->cap - k->len < need) {
        size_t cap = need < CHUNK_MIN && call->m->streaming ? CHUNK_MIN : need;
        if (!(k = malloc(sizeof *k + cap)))
            return UV_ENOMEM;
        k->next = NULL;
        k->len = 0;
        k->cap = cap;
        if (call->tail)
            call->tail->next = k;
        else
            call->head = k;
        call->tail = k;
    }
    uint8_t *p = k->data + k->len;
    grpc_frame_header_encode(p, false, (uint32_t)len);
    p += GRPC_FRAME_HEADER_SIZE;
    for (size_t i = 0; i < n; i++) {
        if (parts[i].len)
            memcpy(p, parts[i].data, parts[i].len);
        p += parts[i].len;
    }
    k->len += need;
    call->queued += need;
    conn_queued(call->conn, need, 0);
    struct h2_conn *c = call->conn->h2;
    if (!call->headers_sent) {
        call->headers_sent = true;
        nghttp2_nv nv[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
        if (h2_submit_headers(c, call->id, nv, 2, true) != 0)
            h2_submit_rst(c, call->id, NGHTTP2_INTERNAL_ERROR);
    } else if (call->deferred) {
        call->deferred = false;
        h2_resume(c, call->id);
    }
    touch(call->conn);
    if (call->queued >= call->high_water) {
        call->want_writable = true;
        return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Calls: lifetime */

static void call_free(struct grpc_call *call)
{
    assert(!call->conn);
    stop_timer(call);
    for (struct chunk *k = call->head, *next; k; k = next) {
        next = k->next;
        free(k);
    }
    grpc_frame_decoder_free(&call->dec);
    free(call->hs);
    free(call->message);
    free(call);
}

/* Tells the handler nobody listens any more, if it knows the call and has not finished it. The
 * call may be freed when this returns (the handler may finish it inside on_cancel). */
static void notify_cancel(struct grpc_call *call)
{
    call->cancelled = true;
    if (call->finished || call->cancel_notified)
        return;
    call->cancel_notified = true;
    if (call->m->on_cancel)
        call->m->on_cancel(call, call->m->ctx);
}

/* The stream is gone (closed, reset, or its connection lost): unlink the call from it. Frees the
 * call unless the handler still owes its finish. */
static void detach(struct grpc_call *call)
{
    struct gconn *g = call->conn;
    if (call->prev)
        call->prev->next = call->next;
    else
        g->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    if (call->in_wlist) {
        struct grpc_call **pp = &g->wlist;
        while (*pp != call)
            pp = &(*pp)->wnext;
        *pp = call->wnext;
        call->in_wlist = false;
    }
    if (!g->closed)
        conn_queued(g, 0, call->queued);
    call->conn = NULL;
    stop_timer(call);
    bool cancelled = !call->ended; /* gone before the answer was complete */
    if (!call->handed)
        call->finished = true; /* the handler never saw it: nothing is owed */
    if (call->finished) {
        call_free(call);
        return;
    }
    if (cancelled)
        notify_cancel(call); /* may free the call */
}

/* The transport ends the call with its own status (deadline, bad message): the trailers go out
 * now, and the handler, if it knows the call, is cancelled. */
static void abort_call(struct grpc_call *call, int status, const char *message)
{
    if (!call->ended)
        end_call(call, status, message);
    if (!call->handed)
        call->finished = true;
    notify_cancel(call);
}

void grpc_call_finish(struct grpc_call *call, int status, const char *message)
{
    assert(!call->finished);
    call->finished = true;
    if (!call->conn) {
        call_free(call);
        return;
    }
    if (call->ended)
        return; /* the transport answered already (deadline, error): freed when the stream ends */
    if (call->closing_shutdown) {
        status = GRPC_UNAVAILABLE;
        message = "transport is closing";
    }
    end_call(call, status, message);
}

bool grpc_call_cancelled(const struct grpc_call *call)
{
    return call->cancelled;
}
void grpc_call_set_data(struct grpc_call *call, void *data)
{
    call->data = data;
}
void *grpc_call_data(const struct grpc_call *call)
{
    return call->data;
}

void grpc_call_set_high_water(struct grpc_call *call, size_t bytes)
{
    call->high_water = bytes ? bytes : 1;
}

const char *grpc_call_path(const struct grpc_call *call)
{
    return call->m->path;
}

const char *grpc_call_header(const struct grpc_call *call, const char *name)
{
    return h2_headers_get(call->hs, name);
}

static void on_deadline(uv_timer_t *t)
{
    struct grpc_call *call = t->data;
    if (call && call->conn)
        abort_call(call, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
}

/* ---------------------------------------------------------------------------------------------- */
/* Requests */

/* Unknown path: grpc-go's wording (server.go handleStream). */
static void answer_unknown(struct grpc_server *srv, struct h2_conn *c, int32_t id, const char *path)
{
    char msg[512];
    const char *sm = path[0] == '/' ? path + 1 : path;
    const char *slash = strrchr(sm, '/');
    if (!slash) {
        snprintf(msg, sizeof msg, "malformed method name: \"%.400s\"", path);
    } else {
        int slen = (int)(slash - sm);
        if (known_service(srv, path, (size_t)(slash + 1 - path)))
            snprintf(msg, sizeof msg, "unknown method %.200s for service %.*s", slash + 1,
                     slen > 200 ? 200 : slen, sm);
        else
            snprintf(msg, sizeof msg, "unknown service %.*s", slen > 400 ? 400 : slen, sm);
    }
    early_answer(c, id, 200, GRPC_UNIMPLEMENTED, msg);
}

static void on_request(struct h2_conn *c, int32_t id, struct h2_headers *hs)
{
    struct gconn *g = h2_conn_data(c);
    struct grpc_server *srv = g->srv;
    const char *method = h2_headers_get(hs, ":method");
    const char *ct = h2_headers_get(hs, "content-type");
    const char *path = h2_headers_get(hs, ":path");
    const char *timeout = h2_headers_get(hs, "grpc-timeout");
    const char *enc = h2_headers_get(hs, "grpc-encoding");
    char msg[256];
    uint64_t ms = 0;
    if (g->queued > CONN_REFUSE_BYTES) {
        h2_submit_rst(c, id, NGHTTP2_REFUSED_STREAM); /* output back-pressure */
    } else if (!method || strcmp(method, "POST") != 0) {
        snprintf(msg, sizeof msg,
                 "http2Server.operateHeaders parsed a :method field: %.100s which should be POST",
                 method ? method : "");
        early_answer(c, id, 405, GRPC_INTERNAL, msg);
    } else if (!ct || !grpc_content_type_ok(ct, strlen(ct))) {
        snprintf(msg, sizeof msg, "invalid gRPC request content-type \"%.100s\"", ct ? ct : "");
        early_answer(c, id, 415, GRPC_INVALID_ARGUMENT, msg);
    } else if (timeout && grpc_timeout_parse(timeout, &ms) != 0) {
        snprintf(msg, sizeof msg, "malformed grpc-timeout: \"%.100s\"", timeout);
        early_answer(c, id, 400, GRPC_INTERNAL, msg);
    } else {
        const struct grpc_method *m = path ? find_method(srv, path) : NULL;
        if (!m) {
            answer_unknown(srv, c, id, path ? path : "");
        } else {
            struct grpc_call *call = calloc(1, sizeof *call);
            if (!call) {
                h2_submit_rst(c, id, NGHTTP2_INTERNAL_ERROR);
                free(hs);
                return;
            }
            call->conn = g;
            call->id = id;
            call->m = m;
            call->hs = hs;
            call->identity = !enc || strcmp(enc, "identity") == 0;
            call->high_water = srv->opts.send_high_water;
            grpc_frame_decoder_init(&call->dec, srv->opts.max_recv_msg_size);
            call->next = g->calls;
            if (g->calls)
                g->calls->prev = call;
            g->calls = call;
            h2_stream_set_data(c, id, call);
            if (timeout) {
                call->timer = malloc(sizeof *call->timer);
                if (call->timer) {
                    uv_timer_init(srv->loop, call->timer);
                    call->timer->data = call;
                    uv_timer_start(call->timer, on_deadline, ms, 0);
                }
            }
            return;
        }
    }
    free(hs);
}

static void on_data(struct h2_conn *c, void *sd, const uint8_t *data, size_t len)
{
    (void)c;
    struct grpc_call *call = sd;
    while (!call->ended && !call->delivered) {
        size_t used;
        struct grpc_frame_msg msg;
        int rv = grpc_frame_decode(&call->dec, data, len, &used, &msg);
        data += used;
        len -= used;
        if (rv == 0)
            return;
        if (rv < 0) {
            char text[128];
            if (rv == GRPC_FRAME_E_TOO_LARGE) {
                snprintf(text, sizeof text, "grpc: received message larger than max (%u vs. %zu)",
                         (unsigned)call->dec.declared, call->dec.max);
                abort_call(call, GRPC_RESOURCE_EXHAUSTED, text);
            } else if (rv == GRPC_FRAME_E_FLAG) {
                snprintf(text, sizeof text, "grpc: received unexpected payload format %u",
                         (unsigned)call->dec.hdr[0]);
                abort_call(call, GRPC_INTERNAL, text);
            } else {
                abort_call(call, GRPC_RESOURCE_EXHAUSTED, "grpc: out of memory");
            }
            return;
        }
        if (msg.compressed) {
            char text[160];
            const char *enc = h2_headers_get(call->hs, "grpc-encoding");
            if (call->identity) {
                abort_call(call, GRPC_INTERNAL,
                           "grpc: compressed flag set with identity or empty encoding");
            } else {
                snprintf(text, sizeof text,
                         "grpc: Decompressor is not installed for grpc-encoding \"%.100s\"", enc);
                abort_call(call, GRPC_UNIMPLEMENTED, text);
            }
            return;
        }
        call->handed = true;
        if (!call->m->streaming)
            call->delivered = true; /* later bytes are ignored, as grpc-go's unary server does */
        call->m->on_message(call, msg.data, msg.len, call->m->ctx);
        /* a finish inside on_message leaves the call alive: its stream is still open */
    }
}

static void on_end_stream(struct h2_conn *c, void *sd)
{
    (void)c;
    struct grpc_call *call = sd;
    if (call->ended || call->delivered)
        return;
    if (grpc_frame_decoder_partial(&call->dec)) {
        abort_call(call, GRPC_INTERNAL,
                   "grpc: the client ended the request stream in the middle of a message");
    } else if (!call->m->streaming) {
        abort_call(call, GRPC_INTERNAL,
                   "grpc: the client ended the request stream without a request message");
    } else if (call->m->on_half_close) {
        call->handed = true;
        call->m->on_half_close(call, call->m->ctx);
    } else if (!call->handed) {
        end_call(call, GRPC_OK, NULL); /* the handler never heard of it */
        call->finished = true;
    }
}

static void on_stream_close(struct h2_conn *c, void *sd, uint32_t error_code)
{
    (void)c;
    (void)error_code;
    detach(sd);
}

static void on_flushed(struct h2_conn *c)
{
    struct gconn *g = h2_conn_data(c);
    struct grpc_call *call;
    while ((call = g->wlist) && !g->closed) {
        g->wlist = call->wnext;
        call->in_wlist = false;
        if (!call->finished && !call->ended && !call->cancelled && call->m->on_writable)
            call->m->on_writable(call, call->m->ctx);
    }
}

static void on_close(struct h2_conn *c)
{
    struct gconn *g = h2_conn_data(c);
    struct grpc_server *srv = g->srv;
    g->closed = true;
    if (g->prev)
        g->prev->next = g->next;
    else
        srv->conns = g->next;
    if (g->next)
        g->next->prev = g->prev;
    g->prev = g->next = NULL;
    if (g->dirty) {
        struct gconn **pp = &srv->dirty;
        while (*pp != g)
            pp = &(*pp)->dirty_next;
        *pp = g->dirty_next;
        g->dirty = false;
    }
    struct grpc_call *call;
    while ((call = g->calls))
        detach(call); /* on_cancel for the unfinished */
}

static void on_free(struct h2_conn *c)
{
    struct gconn *g = h2_conn_data(c);
    struct grpc_server *srv = g->srv;
    free(g);
    srv->n_conns--;
    maybe_done(srv);
}

static const struct h2_handler handler = {
    .on_request = on_request,
    .on_data = on_data,
    .on_end_stream = on_end_stream,
    .on_stream_close = on_stream_close,
    .read_body = read_body,
    .on_flushed = on_flushed,
    .on_close = on_close,
    .on_free = on_free,
};

/* ---------------------------------------------------------------------------------------------- */
/* Shutdown and memory connections */

/* The grace period of a shutdown is over: close what is still open (a client that keeps a
 * request half-sent, or reads nothing of what it is sent). Handlers still get on_cancel. */
static void on_grace_over(uv_timer_t *t)
{
    struct grpc_server *srv = t->data;
    if (!srv)
        return;
    struct gconn *g;
    while ((g = srv->conns))
        h2_conn_close(g->h2); /* on_close takes g off the list */
}

static void start_grace_timer(struct grpc_server *srv)
{
    if (!srv->n_conns)
        return;
    uv_timer_t *t = malloc(sizeof *t);
    if (!t || uv_timer_init(srv->loop, t) != 0) {
        free(t);
        return; /* without the timer the shutdown waits for the clients */
    }
    t->data = srv;
    uv_timer_start(t, on_grace_over, srv->opts.shutdown_grace_ms, 0);
    srv->grace = t;
}

void grpc_server_shutdown(struct grpc_server *srv, void (*done)(void *arg), void *arg)
{
    assert(!srv->shutting_down);
    srv->shutting_down = true;
    srv->done = done;
    srv->done_arg = arg;
    for (struct listener *l = srv->listeners, *next; l; l = next) {
        next = l->next;
        uv_close((uv_handle_t *)&l->tcp, on_listener_closed);
    }
    srv->listeners = NULL;
    for (struct gconn *g = srv->conns, *gnext; g; g = gnext) {
        gnext = g->next;
        /* streaming calls (watches, keep-alives) would never end: cancel them; a unary call
         * whose request has not fully arrived is refused (nothing of it was done); unary calls in
         * flight finish normally */
        for (struct grpc_call *call = g->calls, *next; call; call = next) {
            next = call->next;
            if (call->ended || (!call->m->streaming && call->handed))
                continue;
            if (call->handed) {
                call->closing_shutdown = true;
                notify_cancel(call);
            } else {
                abort_call(call, GRPC_UNAVAILABLE, "transport is closing");
            }
        }
        h2_conn_goaway(g->h2); /* may close g right away */
    }
    start_grace_timer(srv);
    maybe_done(srv);
}

int grpc_mem_conn_open(struct grpc_server *srv,
                       void (*sink)(void *arg, const uint8_t *data, size_t len), void *sink_arg,
                       struct grpc_mem_conn **out)
{
    if (srv->shutting_down)
        return UV_EINVAL;
    int rv = idle_init(srv);
    if (rv)
        return rv;
    struct grpc_mem_conn *mc = malloc(sizeof *mc);
    if (!mc)
        return UV_ENOMEM;
    struct gconn *g = gconn_new(srv);
    if (!g) {
        free(mc);
        return UV_ENOMEM;
    }
    rv = h2_conn_new_mem(&srv->h2o, &handler, g, sink, sink_arg, &g->h2);
    if (rv) {
        gconn_abandon(g);
        free(mc);
        return rv;
    }
    mc->h2 = g->h2;
    *out = mc;
    return 0;
}

int grpc_mem_conn_feed(struct grpc_mem_conn *mc, const uint8_t *data, size_t len)
{
    return h2_conn_feed(mc->h2, data, len) == 0 ? 0 : UV_EOF;
}

void grpc_mem_conn_close(struct grpc_mem_conn *mc)
{
    h2_conn_mem_free(mc->h2);
    free(mc);
}
