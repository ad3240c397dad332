/* tests/unit/test_grpc_server.c — the gRPC server transport (api/h2.c, api/grpc.c) end to end.
 *
 * Each test starts a server on 127.0.0.1:0 and talks to it over TCP on the same libuv loop with a
 * raw nghttp2 client session, so every byte on the wire is the test's to choose. Expected
 * behaviour is gRPC's PROTOCOL-HTTP2.md and grpc-go's server (status codes and message wording
 * that etcd 3.4's clients see), and api/grpc.h's call lifetime: on_cancel when the client goes
 * away, freed only after both the stream ended and the handler finished. Teardown shuts the
 * server down, closes the loop and frees everything, so ASan (SANITIZE=1) checks for leaks. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <nghttp2/nghttp2.h>
#include <uv.h>

#include "api/grpc.h"
#include "common/grpc_frame.h"

#define MAX_HELD 128

struct fx;

/* One client stream: what the test sends and what came back. */
struct cstream {
    struct client *cl;      /* connection */
    struct cstream *next;   /* fx->streams */
    int32_t id;             /* stream id */
    uint8_t *req;           /* request bytes to send (DATA payload) */
    size_t req_len;         /* bytes in req */
    size_t req_off;         /* bytes of req sent */
    size_t max_chunk;       /* largest DATA frame payload to send (0: no limit) */
    bool req_end;           /* END_STREAM after req */
    bool deferred;          /* the data provider waits for more */
    int http_status;        /* :status of the first header block */
    char ctype[128];        /* content-type */
    int grpc_status;        /* -1 until received */
    char grpc_message[512]; /* raw (percent-encoded) grpc-message */
    int header_blocks;      /* HEADERS frames received */
    bool trailers_only;     /* grpc-status came in the first header block */
    uint8_t *body;          /* response DATA bytes */
    size_t body_len;        /* bytes in body */
    size_t unconsumed;      /* received but not yet given back to flow control (manual mode) */
    bool closed;            /* the stream closed */
    uint32_t close_code;    /* its error code */
};

struct client {
    struct fx *f;            /* owner */
    struct client *next;     /* fx->clients */
    uv_tcp_t tcp;            /* socket */
    uv_connect_t creq;       /* connect request */
    nghttp2_session *s;      /* client session, NULL in raw mode */
    bool connected;          /* connect completed */
    bool got_settings;       /* server SETTINGS received */
    bool eof;                /* the server closed the connection */
    bool closing;            /* uv_close called */
    bool closed;             /* close callback ran */
    bool goaway;             /* GOAWAY received */
    int32_t goaway_last;     /* its last stream id */
    bool ping_ack;           /* PING ACK received */
    bool manual_window;      /* flow control: the test consumes received data itself */
    uint8_t rbuf[64 * 1024]; /* read buffer */
};

/* Test fixture: loop, server, clients, and what the handlers saw. */
struct fx {
    uv_loop_t loop;
    struct grpc_server *srv;
    uv_timer_t timer;     /* bounds run_until */
    bool timed_out;       /* the timer fired */
    bool shutdown_called; /* grpc_server_shutdown ran */
    bool shutdown_done;   /* its callback ran */
    struct client *clients;
    struct cstream *streams;
    int n_messages;                   /* on_message calls */
    int n_cancel;                     /* on_cancel calls */
    int n_half_close;                 /* on_half_close calls */
    int n_writable;                   /* on_writable calls */
    int n_full;                       /* grpc_call_send returned 1 */
    struct grpc_call *held[MAX_HELD]; /* calls the Hold methods keep unfinished */
    int n_held;
    bool cancel_finishes; /* Hold's on_cancel finishes the call */
};

/* ---------------------------------------------------------------------------------------------- */
/* Handlers */

static void hold_add(struct fx *f, struct grpc_call *call)
{
    assert_true(f->n_held < MAX_HELD);
    f->held[f->n_held++] = call;
}

static void hold_forget(struct fx *f, struct grpc_call *call)
{
    for (int i = 0; i < f->n_held; i++)
        if (f->held[i] == call) {
            f->held[i] = f->held[--f->n_held];
            return;
        }
}

static void echo_unary(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct fx *f = ctx;
    f->n_messages++;
    assert_int_equal(grpc_call_send(call, msg, len), 0);
    grpc_call_finish(call, GRPC_OK, NULL);
}

static void fail_unary(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    (void)msg;
    (void)len;
    ((struct fx *)ctx)->n_messages++;
    grpc_call_finish(call, GRPC_NOT_FOUND, "not found: \xc3\xbc 100%\n");
}

static void header_unary(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    (void)msg;
    (void)len;
    (void)ctx;
    const char *v = grpc_call_header(call, "x-test");
    assert_null(grpc_call_header(call, "x-absent"));
    assert_string_equal(grpc_call_header(call, ":path"), "/test.Echo/Header");
    grpc_call_send(call, (const uint8_t *)(v ? v : ""), v ? strlen(v) : 0);
    grpc_call_finish(call, GRPC_OK, NULL);
}

static void hold_message(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    (void)msg;
    (void)len;
    struct fx *f = ctx;
    f->n_messages++;
    hold_add(f, call);
}

static void hold_cancel(struct grpc_call *call, void *ctx)
{
    struct fx *f = ctx;
    f->n_cancel++;
    assert_true(grpc_call_cancelled(call));
    assert_true(grpc_call_send(call, (const uint8_t *)"x", 1) < 0);
    if (f->cancel_finishes) {
        hold_forget(f, call);
        grpc_call_finish(call, GRPC_CANCELLED, "cancelled");
    }
}

static void stream_message(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct fx *f = ctx;
    f->n_messages++;
    if (!grpc_call_data(call)) {
        grpc_call_set_data(call, f);
        hold_add(f, call);
    }
    grpc_call_send(call, msg, len);
}

static void stream_half_close(struct grpc_call *call, void *ctx)
{
    struct fx *f = ctx;
    f->n_half_close++;
    hold_forget(f, call);
    grpc_call_finish(call, GRPC_OK, NULL);
}

static void stream_cancel(struct grpc_call *call, void *ctx)
{
    struct fx *f = ctx;
    f->n_cancel++;
    hold_forget(f, call);
    grpc_call_finish(call, GRPC_CANCELLED, NULL);
}

/* Flood: the request is "<count> <size>"; sends count messages of size bytes as fast as
 * back-pressure allows, then finishes. */
struct flood {
    int left;
    size_t size;
};

static void flood_pump(struct grpc_call *call, struct fx *f)
{
    struct flood *fl = grpc_call_data(call);
    uint8_t *buf = calloc(1, fl->size);
    while (fl->left > 0) {
        memset(buf, 'a' + fl->left % 26, fl->size);
        fl->left--;
        int rv = grpc_call_send(call, buf, fl->size);
        assert_true(rv >= 0);
        if (rv == 1) {
            f->n_full++;
            break;
        }
    }
    free(buf);
    if (fl->left == 0) {
        free(fl);
        hold_forget(f, call);
        grpc_call_finish(call, GRPC_OK, NULL);
    }
}

static void flood_message(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct fx *f = ctx;
    char text[64];
    snprintf(text, sizeof text, "%.*s", (int)len, (const char *)msg);
    struct flood *fl = calloc(1, sizeof *fl);
    assert_int_equal(sscanf(text, "%d %zu", &fl->left, &fl->size), 2);
    grpc_call_set_data(call, fl);
    hold_add(f, call);
    flood_pump(call, f);
}

static void flood_writable(struct grpc_call *call, void *ctx)
{
    struct fx *f = ctx;
    f->n_writable++;
    flood_pump(call, f);
}

static void flood_cancel(struct grpc_call *call, void *ctx)
{
    struct fx *f = ctx;
    f->n_cancel++;
    free(grpc_call_data(call));
    hold_forget(f, call);
    grpc_call_finish(call, GRPC_CANCELLED, NULL);
}

static struct grpc_method methods[] = {
    {.path = "/test.Echo/Unary", .on_message = echo_unary},
    {.path = "/test.Echo/Fail", .on_message = fail_unary},
    {.path = "/test.Echo/Header", .on_message = header_unary},
    {.path = "/test.Echo/Hold", .on_message = hold_message, .on_cancel = hold_cancel},
    {.path = "/test.Echo/Stream",
     .streaming = true,
     .on_message = stream_message,
     .on_half_close = stream_half_close,
     .on_cancel = stream_cancel},
    {.path = "/test.Echo/Flood",
     .streaming = true,
     .on_message = flood_message,
     .on_cancel = flood_cancel,
     .on_writable = flood_writable},
};
#define N_METHODS (sizeof methods / sizeof methods[0])

/* ---------------------------------------------------------------------------------------------- */
/* Loop helpers */

static void on_timeout(uv_timer_t *t)
{
    ((struct fx *)t->data)->timed_out = true;
}

/* Runs the loop until cond holds; fails the test after 10 s. */
#define RUN_UNTIL(f, cond)                                 \
    do {                                                   \
        (f)->timed_out = false;                            \
        uv_timer_start(&(f)->timer, on_timeout, 10000, 0); \
        while (!(cond) && !(f)->timed_out)                 \
            uv_run(&(f)->loop, UV_RUN_ONCE);               \
        uv_timer_stop(&(f)->timer);                        \
        assert_true(cond);                                 \
    } while (0)

/* Runs the loop for ms milliseconds. */
static void run_for(struct fx *f, uint64_t ms)
{
    f->timed_out = false;
    uv_timer_start(&f->timer, on_timeout, ms, 0);
    while (!f->timed_out)
        uv_run(&f->loop, UV_RUN_ONCE);
}

/* ---------------------------------------------------------------------------------------------- */
/* Client */

struct cwrite {
    uv_write_t req;
    uint8_t data[];
};

static void on_cwrite(uv_write_t *req, int status)
{
    (void)status;
    free(req);
}

static void cl_write(struct client *cl, const uint8_t *p, size_t n)
{
    if (cl->closing || cl->eof)
        return;
    struct cwrite *w = malloc(sizeof *w + n);
    memcpy(w->data, p, n);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
    if (uv_write(&w->req, (uv_stream_t *)&cl->tcp, &b, 1, on_cwrite) != 0)
        free(w);
}

static void cl_flush(struct client *cl)
{
    if (!cl->s || cl->closing)
        return;
    for (;;) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(cl->s, &p);
        assert_true(n >= 0);
        if (n == 0)
            break;
        cl_write(cl, p, (size_t)n);
    }
}

static int c_on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *ud)
{
    (void)flags;
    (void)ud;
    struct cstream *cs = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    if (!cs)
        return 0;
    char n[64], v[512];
    snprintf(n, sizeof n, "%.*s", (int)(namelen < 63 ? namelen : 63), name);
    snprintf(v, sizeof v, "%.*s", (int)(valuelen < 511 ? valuelen : 511), value);
    if (strcmp(n, ":status") == 0) {
        cs->http_status = atoi(v);
    } else if (strcmp(n, "content-type") == 0) {
        snprintf(cs->ctype, sizeof cs->ctype, "%.127s", v);
    } else if (strcmp(n, "grpc-status") == 0) {
        cs->grpc_status = atoi(v);
        cs->trailers_only = cs->header_blocks == 0;
    } else if (strcmp(n, "grpc-message") == 0) {
        memcpy(cs->grpc_message, v, sizeof v);
    }
    return 0;
}

static int c_on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct client *cl = ud;
    struct cstream *cs = nghttp2_session_get_stream_user_data(s, frame->hd.stream_id);
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (cs)
            cs->header_blocks++;
        break;
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            cl->got_settings = true;
        break;
    case NGHTTP2_GOAWAY:
        cl->goaway = true;
        cl->goaway_last = frame->goaway.last_stream_id;
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            cl->ping_ack = true;
        break;
    }
    return 0;
}

static int c_on_data(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                     void *ud)
{
    (void)flags;
    (void)ud;
    struct cstream *cs = nghttp2_session_get_stream_user_data(s, id);
    if (!cs)
        return 0;
    cs->body = realloc(cs->body, cs->body_len + len + 1);
    memcpy(cs->body + cs->body_len, data, len);
    cs->body_len += len;
    cs->unconsumed += len;
    return 0;
}

static int c_on_close(nghttp2_session *s, int32_t id, uint32_t code, void *ud)
{
    (void)ud;
    struct cstream *cs = nghttp2_session_get_stream_user_data(s, id);
    if (cs) {
        cs->closed = true;
        cs->close_code = code;
    }
    return 0;
}

static ssize_t c_read_req(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len, uint32_t *flags,
                          nghttp2_data_source *src, void *ud)
{
    (void)s;
    (void)id;
    (void)ud;
    struct cstream *cs = src->ptr;
    size_t n = cs->req_len - cs->req_off;
    if (n > len)
        n = len;
    if (cs->max_chunk && n > cs->max_chunk)
        n = cs->max_chunk;
    memcpy(buf, cs->req + cs->req_off, n);
    cs->req_off += n;
    if (cs->req_off == cs->req_len) {
        if (cs->req_end) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
        } else if (n == 0) {
            cs->deferred = true;
            return NGHTTP2_ERR_DEFERRED;
        }
    }
    return (ssize_t)n;
}

static void on_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)sz;
    struct client *cl = h->data;
    *buf = uv_buf_init((char *)cl->rbuf, sizeof cl->rbuf);
}

static void on_cread(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    struct client *cl = st->data;
    if (nread < 0) {
        cl->eof = true;
        uv_read_stop(st);
        return;
    }
    if (cl->s && nread > 0) {
        ssize_t rv = nghttp2_session_mem_recv(cl->s, (const uint8_t *)buf->base, (size_t)nread);
        assert_true(rv >= 0);
        cl_flush(cl);
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    struct client *cl = req->data;
    assert_int_equal(status, 0);
    cl->connected = true;
    uv_tcp_nodelay(&cl->tcp, 1);
    uv_read_start((uv_stream_t *)&cl->tcp, on_alloc, on_cread);
    cl_flush(cl);
}

/* Connects a client; raw: no HTTP/2 session (the test writes bytes itself). window: the client's
 * SETTINGS_INITIAL_WINDOW_SIZE (0: nghttp2's default) — with it, the test gives received data back
 * to flow control itself (cs_consume). */
static struct client *cl_connect(struct fx *f, bool raw, uint32_t window)
{
    struct client *cl = calloc(1, sizeof *cl);
    cl->f = f;
    cl->next = f->clients;
    f->clients = cl;
    if (!raw) {
        nghttp2_session_callbacks *cbs;
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_on_frame_recv);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
        nghttp2_option *opt;
        nghttp2_option_new(&opt);
        if (window) {
            nghttp2_option_set_no_auto_window_update(opt, 1);
            cl->manual_window = true;
        }
        assert_int_equal(nghttp2_session_client_new2(&cl->s, cbs, cl, opt), 0);
        nghttp2_option_del(opt);
        nghttp2_session_callbacks_del(cbs);
        nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, window}};
        nghttp2_submit_settings(cl->s, NGHTTP2_FLAG_NONE, iv, window ? 1 : 0);
    }
    uv_tcp_init(&f->loop, &cl->tcp);
    cl->tcp.data = cl;
    cl->creq.data = cl;
    struct sockaddr_in sa;
    uv_ip4_addr("127.0.0.1", grpc_server_port(f->srv), &sa);
    assert_int_equal(uv_tcp_connect(&cl->creq, &cl->tcp, (struct sockaddr *)&sa, on_connect), 0);
    RUN_UNTIL(f, cl->connected);
    if (!raw)
        RUN_UNTIL(f, cl->got_settings);
    return cl;
}

static void on_cclosed(uv_handle_t *h)
{
    struct client *cl = h->data;
    cl->closed = true;
}

static void cl_close(struct client *cl)
{
    if (cl->closing)
        return;
    cl->closing = true;
    uv_close((uv_handle_t *)&cl->tcp, on_cclosed);
}

/* Starts a call: standard gRPC request headers plus extra (name, value, ..., NULL), then req
 * (len bytes; NULL with end: END_STREAM on the HEADERS frame). */
static struct cstream *cl_call_h(struct client *cl, const char *path, const char **extra,
                                 const void *req, size_t len, bool end, size_t max_chunk)
{
    struct fx *f = cl->f;
    struct cstream *cs = calloc(1, sizeof *cs);
    cs->cl = cl;
    cs->grpc_status = -1;
    cs->next = f->streams;
    f->streams = cs;
    cs->req = malloc(len + 1);
    if (len)
        memcpy(cs->req, req, len);
    cs->req_len = len;
    cs->req_end = end;
    cs->max_chunk = max_chunk;
    nghttp2_nv nv[16];
    size_t n = 0;
#define CNV(a, b) \
    nv[n++] =     \
        (nghttp2_nv){(uint8_t *)(a), (uint8_t *)(b), strlen(a), strlen(b), NGHTTP2_NV_FLAG_NONE}
    CNV(":method", "POST");
    CNV(":scheme", "http");
    CNV(":path", path);
    CNV(":authority", "127.0.0.1");
    bool has_ct = false;
    for (const char **e = extra; e && *e; e += 2)
        has_ct |= strcmp(e[0], "content-type") == 0;
    if (!has_ct)
        CNV("content-type", "application/grpc");
    CNV("te", "trailers");
    for (const char **e = extra; e && *e; e += 2)
        CNV(e[0], e[1]);
    nghttp2_data_provider prd = {.source = {.ptr = cs}, .read_callback = c_read_req};
    cs->id = nghttp2_submit_request(cl->s, NULL, nv, n, (req || !end) ? &prd : NULL, cs);
    assert_true(cs->id > 0);
    cl_flush(cl);
    return cs;
}

static struct cstream *cl_call(struct client *cl, const char *path, const void *req, size_t len)
{
    return cl_call_h(cl, path, NULL, req, len, true, 0);
}

/* Appends request bytes to an open stream (end: then END_STREAM). */
static void cs_send(struct cstream *cs, const void *data, size_t len, bool end)
{
    cs->req = realloc(cs->req, cs->req_len + len + 1);
    if (len)
        memcpy(cs->req + cs->req_len, data, len);
    cs->req_len += len;
    cs->req_end = end;
    if (cs->deferred) {
        cs->deferred = false;
        assert_int_equal(nghttp2_session_resume_data(cs->cl->s, cs->id), 0);
    }
    cl_flush(cs->cl);
}

static void cs_reset(struct cstream *cs)
{
    nghttp2_submit_rst_stream(cs->cl->s, NGHTTP2_FLAG_NONE, cs->id, NGHTTP2_CANCEL);
    cl_flush(cs->cl);
}

/* Gives received data back to flow control (manual-window clients). */
static void cs_consume(struct cstream *cs)
{
    if (cs->unconsumed) {
        nghttp2_session_consume(cs->cl->s, cs->id, cs->unconsumed);
        cs->unconsumed = 0;
        cl_flush(cs->cl);
    }
}

/* A framed message of a C string, in a static buffer. */
static const uint8_t *msg(const char *s, size_t *len)
{
    static uint8_t buf[4096];
    *len = grpc_frame_encode(buf, false, (const uint8_t *)s, strlen(s));
    return buf;
}

/* Checks that body holds exactly the messages want[0..n). */
static void assert_messages(const struct cstream *cs, const char **want, size_t n)
{
    struct grpc_frame_decoder d;
    grpc_frame_decoder_init(&d, 1 << 24);
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        size_t used;
        struct grpc_frame_msg m;
        assert_int_equal(grpc_frame_decode(&d, cs->body + off, cs->body_len - off, &used, &m), 1);
        off += used;
        assert_int_equal(m.len, strlen(want[i]));
        assert_memory_equal(m.data, want[i], m.len);
    }
    assert_int_equal(off, cs->body_len);
    grpc_frame_decoder_free(&d);
}

static void assert_status(const struct cstream *cs, int status, const char *message)
{
    assert_int_equal(cs->http_status, 200);
    assert_int_equal(cs->grpc_status, status);
    if (message)
        assert_string_equal(cs->grpc_message, message);
}

/* ---------------------------------------------------------------------------------------------- */
/* Fixture */

static int fx_setup_opts(void **state, const struct grpc_server_options *opts)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_int_equal(uv_loop_init(&f->loop), 0);
    uv_timer_init(&f->loop, &f->timer);
    f->timer.data = f;
    for (size_t i = 0; i < N_METHODS; i++)
        methods[i].ctx = f;
    assert_int_equal(grpc_server_new(&f->loop, opts, &f->srv), 0);
    grpc_server_register(f->srv, methods, N_METHODS);
    assert_int_equal(grpc_server_listen(f->srv, "127.0.0.1", 0), 0);
    assert_true(grpc_server_port(f->srv) > 0);
    f->cancel_finishes = true;
    *state = f;
    return 0;
}

static int fx_setup(void **state)
{
    return fx_setup_opts(state, NULL);
}

static int fx_setup_small(void **state)
{
    struct grpc_server_options o = {.max_recv_msg_size = 1024, .send_high_water = 64 * 1024};
    return fx_setup_opts(state, &o);
}

static void on_shutdown(void *arg)
{
    ((struct fx *)arg)->shutdown_done = true;
}

static void fx_shutdown(struct fx *f)
{
    if (!f->shutdown_called) {
        f->shutdown_called = true;
        grpc_server_shutdown(f->srv, on_shutdown, f);
    }
}

static int fx_teardown(void **state)
{
    struct fx *f = *state;
    for (struct client *cl = f->clients; cl; cl = cl->next)
        cl_close(cl);
    fx_shutdown(f);
    /* calls the handlers still hold (a test that failed midway) */
    while (f->n_held > 0) {
        struct grpc_call *call = f->held[--f->n_held];
        grpc_call_finish(call, GRPC_OK, NULL);
    }
    RUN_UNTIL(f, f->shutdown_done);
    grpc_server_free(f->srv);
    uv_close((uv_handle_t *)&f->timer, NULL);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    for (struct client *cl = f->clients, *next; cl; cl = next) {
        next = cl->next;
        assert_true(cl->closed);
        if (cl->s)
            nghttp2_session_del(cl->s);
        free(cl);
    }
    for (struct cstream *cs = f->streams, *next; cs; cs = next) {
        next = cs->next;
        free(cs->req);
        free(cs->body);
        free(cs);
    }
    free(f);
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests */

/* The server speaks first with SETTINGS: a stream window of at least 1 MiB, no small cap on
 * concurrent streams, a large connection window; and it answers PING. */
static void test_settings_and_ping(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    assert_true(nghttp2_session_get_remote_settings(cl->s, NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE) >=
                1u << 20);
    assert_int_equal(
        nghttp2_session_get_remote_settings(cl->s, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS),
        INT32_MAX);
    RUN_UNTIL(f, nghttp2_session_get_remote_window_size(cl->s) >= 16 << 20);
    nghttp2_submit_ping(cl->s, NGHTTP2_FLAG_NONE, NULL);
    cl_flush(cl);
    RUN_UNTIL(f, cl->ping_ack);
}

/* A unary call: HEADERS 200 application/grpc, the message, trailers with grpc-status 0. */
static void test_unary_echo(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("hello", &len);
    struct cstream *cs = cl_call(cl, "/test.Echo/Unary", m, len);
    RUN_UNTIL(f, cs->closed);
    assert_status(cs, GRPC_OK, "");
    assert_string_equal(cs->ctype, "application/grpc");
    assert_false(cs->trailers_only);
    assert_int_equal(cs->header_blocks, 2);
    assert_int_equal(cs->close_code, NGHTTP2_NO_ERROR);
    const char *want[] = {"hello"};
    assert_messages(cs, want, 1);
    assert_int_equal(f->n_messages, 1);
}

/* Zero-length request and response messages are valid. */
static void test_unary_empty_message(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("", &len);
    struct cstream *cs = cl_call(cl, "/test.Echo/Unary", m, len);
    RUN_UNTIL(f, cs->closed);
    assert_status(cs, GRPC_OK, NULL);
    assert_int_equal(cs->body_len, 5);
    assert_memory_equal(cs->body, "\0\0\0\0\0", 5);
}

/* A request split into 1-byte DATA frames, prefix included, is reassembled. */
static void test_unary_split_frames(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("split across many frames", &len);
    struct cstream *cs = cl_call_h(cl, "/test.Echo/Unary", NULL, m, len, true, 1);
    RUN_UNTIL(f, cs->closed);
    assert_status(cs, GRPC_OK, NULL);
    const char *want[] = {"split across many frames"};
    assert_messages(cs, want, 1);
}

/* An error with no message sent is a Trailers-Only response with a percent-encoded message. */
static void test_error_trailers_only(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("x", &len);
    struct cstream *cs = cl_call(cl, "/test.Echo/Fail", m, len);
    RUN_UNTIL(f, cs->closed);
    assert_status(cs, GRPC_NOT_FOUND, "not found: %C3%BC 100%25%0A");
    assert_true(cs->trailers_only);
    assert_int_equal(cs->header_blocks, 1);
    assert_string_equal(cs->ctype, "application/grpc");
    assert_int_equal(cs->body_len, 0);
}

/* Request metadata reaches the handler. */
static void test_request_header(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("", &len);
    const char *extra[] = {"x-test", "value-1", NULL};
    struct cstream *cs = cl_call_h(cl, "/test.Echo/Header", extra, m, len, true, 0);
    RUN_UNTIL(f, cs->closed);
    assert_status(cs, GRPC_OK, NULL);
    const char *want[] = {"value-1"};
    assert_messages(cs, want, 1);
}

/* grpc-go's wording for unknown services and methods, and for malformed paths. */
static void test_unknown_paths(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("", &len);
    struct cstream *a = cl_call(cl, "/etcdserverpb.Foo/Range", m, len);
    struct cstream *b = cl_call(cl, "/test.Echo/Bar", m, len);
    struct cstream *c = cl_call(cl, "/nothing", m, len);
    /* the client has not ended this one: the server answers and resets it */
    struct cstream *d = cl_call_h(cl, "/test.Foo/Bar", NULL, m, len, false, 0);
    RUN_UNTIL(f, a->closed && b->closed && c->closed && d->closed);
    assert_status(a, GRPC_UNIMPLEMENTED, "unknown service etcdserverpb.Foo");
    assert_status(b, GRPC_UNIMPLEMENTED, "unknown method Bar for service test.Echo");
    assert_status(c, GRPC_UNIMPLEMENTED, "malformed method name: \"/nothing\"");
    assert_status(d, GRPC_UNIMPLEMENTED, "unknown service test.Foo");
    assert_true(a->trailers_only);
    assert_int_equal(f->n_messages, 0);
}

/* A content-type other than application/grpc[+...|;...] gets HTTP 415, as from grpc-go. */
static void test_bad_content_type(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("", &len);
    const char *json[] = {"content-type", "application/json", NULL};
    const char *proto[] = {"content-type", "application/grpc+proto", NULL};
    struct cstream *a = cl_call_h(cl, "/test.Echo/Unary", json, m, len, true, 0);
    struct cstream *b = cl_call_h(cl, "/test.Echo/Unary", proto, m, len, true, 0);
    RUN_UNTIL(f, a->closed && b->closed);
    assert_int_equal(a->http_status, 415);
    assert_int_equal(a->grpc_status, GRPC_INVALID_ARGUMENT);
    assert_string_equal(a->grpc_message, "invalid gRPC request content-type \"application/json\"");
    assert_status(b, GRPC_OK, NULL);
}

/* Messages above max_recv_msg_size: RESOURCE_EXHAUSTED with grpc-go's message, and a 4 GiB
 * length prefix allocates nothing (ASan would notice a 4 GiB allocation). */
static void test_message_too_large(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    uint8_t *big = calloc(1, 5 + 2000);
    grpc_frame_header_encode(big, false, 2000);
    struct cstream *a = cl_call(cl, "/test.Echo/Unary", big, 5 + 2000);
    uint8_t huge[5];
    grpc_frame_header_encode(huge, false, 0xffffffff);
    struct cstream *b = cl_call_h(cl, "/test.Echo/Unary", NULL, huge, 5, false, 0);
    struct cstream *c = cl_call_h(cl, "/test.Echo/Stream", NULL, huge, 5, false, 0);
    free(big);
    RUN_UNTIL(f, a->closed && b->closed && c->closed);
    assert_status(a, GRPC_RESOURCE_EXHAUSTED,
                  "grpc: received message larger than max (2000 vs. 1024)");
    assert_status(b, GRPC_RESOURCE_EXHAUSTED,
                  "grpc: received message larger than max (4294967295 vs. 1024)");
    assert_status(c, GRPC_RESOURCE_EXHAUSTED, NULL);
    assert_int_equal(f->n_messages, 0);
    assert_int_equal(f->n_cancel, 0); /* the handlers never saw these calls */
    /* exactly the maximum is accepted */
    uint8_t *max = calloc(1, 5 + 1024);
    grpc_frame_header_encode(max, false, 1024);
    struct cstream *d = cl_call(cl, "/test.Echo/Unary", max, 5 + 1024);
    free(max);
    RUN_UNTIL(f, d->closed);
    assert_status(d, GRPC_OK, NULL);
    assert_int_equal(d->body_len, 5 + 1024);
}

/* Compressed messages: no decompressor is installed. */
static void test_compressed(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    uint8_t m[8];
    size_t len = grpc_frame_encode(m, true, (const uint8_t *)"abc", 3);
    const char *gzip[] = {"grpc-encoding", "gzip", NULL};
    struct cstream *a = cl_call_h(cl, "/test.Echo/Unary", gzip, m, len, true, 0);
    struct cstream *b = cl_call(cl, "/test.Echo/Unary", m, len);
    /* the header alone, with uncompressed messages, is fine */
    size_t plen;
    const uint8_t *plain = msg("abc", &plen);
    struct cstream *c = cl_call_h(cl, "/test.Echo/Unary", gzip, plain, plen, true, 0);
    RUN_UNTIL(f, a->closed && b->closed && c->closed);
    assert_status(a, GRPC_UNIMPLEMENTED,
                  "grpc: Decompressor is not installed for grpc-encoding \"gzip\"");
    assert_status(b, GRPC_INTERNAL, "grpc: compressed flag set with identity or empty encoding");
    assert_status(c, GRPC_OK, NULL);
}

/* A unary request stream that ends without a complete message is INTERNAL. */
static void test_unary_incomplete(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    struct cstream *a = cl_call(cl, "/test.Echo/Unary", NULL, 0);
    struct cstream *b = cl_call(cl, "/test.Echo/Unary",
                                "\0\0\0\0\x09"
                                "abc",
                                8);
    struct cstream *c = cl_call(cl, "/test.Echo/Unary", "\0\0", 2);
    RUN_UNTIL(f, a->closed && b->closed && c->closed);
    assert_status(a, GRPC_INTERNAL, NULL);
    assert_status(b, GRPC_INTERNAL, NULL);
    assert_status(c, GRPC_INTERNAL, NULL);
    assert_int_equal(f->n_messages, 0);
}

/* grpc-timeout: when it passes before the handler finishes, the handler is cancelled and the
 * client gets DEADLINE_EXCEEDED. */
static void test_deadline(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("x", &len);
    const char *t50[] = {"grpc-timeout", "50000000n", NULL};
    const char *tlong[] = {"grpc-timeout", "1H", NULL};
    const char *tbad[] = {"grpc-timeout", "12x", NULL};
    struct cstream *a = cl_call_h(cl, "/test.Echo/Hold", t50, m, len, true, 0);
    struct cstream *b = cl_call_h(cl, "/test.Echo/Unary", tlong, m, len, true, 0);
    struct cstream *c = cl_call_h(cl, "/test.Echo/Hold", tbad, m, len, true, 0);
    RUN_UNTIL(f, b->closed && c->closed);
    assert_status(b, GRPC_OK, NULL);
    assert_int_equal(c->grpc_status, GRPC_INTERNAL);
    assert_false(a->closed);
    assert_int_equal(f->n_held, 1);
    RUN_UNTIL(f, a->closed);
    assert_status(a, GRPC_DEADLINE_EXCEEDED, "context deadline exceeded");
    assert_int_equal(f->n_cancel, 1);
    assert_int_equal(f->n_held, 0);
}

/* The client resets a stream: on_cancel; a handler may finish later, after the stream is gone;
 * until then sends fail and the call reports itself cancelled. */
static void test_client_cancel(void **state)
{
    struct fx *f = *state;
    f->cancel_finishes = false;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("x", &len);
    struct cstream *a = cl_call(cl, "/test.Echo/Hold", m, len);
    RUN_UNTIL(f, f->n_held == 1);
    struct grpc_call *call = f->held[0];
    assert_false(grpc_call_cancelled(call));
    cs_reset(a);
    RUN_UNTIL(f, f->n_cancel == 1);
    assert_true(grpc_call_cancelled(call));
    assert_true(grpc_call_send(call, (const uint8_t *)"late", 4) < 0);
    f->n_held = 0;
    grpc_call_finish(call, GRPC_OK, NULL); /* frees it: ASan checks */
    /* the connection is still fine */
    struct cstream *b = cl_call(cl, "/test.Echo/Unary", m, len);
    RUN_UNTIL(f, b->closed);
    assert_status(b, GRPC_OK, NULL);
}

/* The client vanishes with calls in flight: every handler that knows its call is cancelled. */
static void test_connection_lost(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("x", &len);
    cl_call(cl, "/test.Echo/Hold", m, len);
    cl_call(cl, "/test.Echo/Hold", m, len);
    struct cstream *s = cl_call_h(cl, "/test.Echo/Stream", NULL, m, len, false, 0);
    /* a unary call whose message never came: the handler never hears of it */
    cl_call_h(cl, "/test.Echo/Hold", NULL, "\0\0", 2, false, 0);
    RUN_UNTIL(f, f->n_held == 3 && s->body_len == len);
    cl_close(cl);
    RUN_UNTIL(f, f->n_cancel == 3);
    assert_int_equal(f->n_held, 0);
    run_for(f, 20);
    assert_int_equal(f->n_cancel, 3);
}

/* A bidirectional stream: messages in any framing (several per DATA frame, one split over
 * frames), echoed in order, then the client half-closes and the handler finishes with trailers
 * after the messages. */
static void test_streaming(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    uint8_t buf[128];
    size_t n = grpc_frame_encode(buf, false, (const uint8_t *)"one", 3);
    n += grpc_frame_encode(buf + n, false, (const uint8_t *)"", 0);
    n += grpc_frame_encode(buf + n, false, (const uint8_t *)"three", 5);
    struct cstream *cs = cl_call_h(cl, "/test.Echo/Stream", NULL, buf, n, false, 0);
    RUN_UNTIL(f, f->n_messages == 3);
    RUN_UNTIL(f, cs->body_len == n);
    assert_int_equal(f->n_half_close, 0);
    n = grpc_frame_encode(buf, false, (const uint8_t *)"four, split", 11);
    cs_send(cs, buf, 3, false);
    run_for(f, 10);
    assert_int_equal(f->n_messages, 3);
    cs_send(cs, buf + 3, n - 3, false);
    RUN_UNTIL(f, f->n_messages == 4);
    cs_send(cs, NULL, 0, true);
    RUN_UNTIL(f, cs->closed);
    assert_int_equal(f->n_half_close, 1);
    assert_status(cs, GRPC_OK, NULL);
    assert_false(cs->trailers_only);
    const char *want[] = {"one", "", "three", "four, split"};
    assert_messages(cs, want, 4);
    assert_int_equal(f->n_cancel, 0);
}

/* Back-pressure: a client that does not give its flow-control window back makes the server's
 * send queue fill; grpc_call_send reports 1 at the high-water mark, on_writable comes once the
 * client reads again, and every message arrives in order. */
static void test_backpressure(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 64 * 1024);
    size_t len;
    const uint8_t *m = msg("200 10000", &len);
    struct cstream *cs = cl_call_h(cl, "/test.Echo/Flood", NULL, m, len, false, 0);
    /* the first 64 KiB drain into the client's window, the queue refills, and stays full */
    RUN_UNTIL(f, f->n_full >= 2 && cs->body_len >= 64 * 1024 - 16384);
    run_for(f, 20);
    int writable = f->n_writable, full = f->n_full;
    size_t got = cs->body_len;
    run_for(f, 20);
    assert_int_equal(f->n_writable, writable); /* nothing drains while the window is shut */
    assert_int_equal(f->n_full, full);
    assert_int_equal(cs->body_len, got);
    assert_true(got <= 64 * 1024);
    while (!cs->closed) {
        cs_consume(cs);
        uv_run(&f->loop, UV_RUN_ONCE);
    }
    assert_true(f->n_writable > writable);
    assert_true(f->n_full > full);
    assert_status(cs, GRPC_OK, NULL);
    assert_int_equal(cs->body_len, 200 * (5 + 10000));
    for (int i = 0; i < 200; i++) {
        const uint8_t *p = cs->body + (size_t)i * (5 + 10000);
        assert_int_equal(p[5], 'a' + (200 - i) % 26);
    }
}

static int count_refused(struct cstream **cs, int n)
{
    int r = 0;
    for (int i = 0; i < n; i++)
        r += cs[i]->closed && cs[i]->close_code == NGHTTP2_REFUSED_STREAM;
    return r;
}

/* Output back-pressure per connection: a client that keeps sending requests but reads no answers
 * gets its new streams refused (REFUSED_STREAM, which clients retry) once the queued answers pass
 * 64 MiB; the connection is still read (PINGs answered, window updates seen) and serves new calls
 * again once the client reads. */
static void test_connection_backpressure(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 64 * 1024);
    enum { N = 70 };
    struct cstream *cs[N];
    size_t len;
    const uint8_t *m = msg("20 60000", &len); /* 1.2 MB each, over the 1 MiB high-water mark */
    for (int i = 0; i < N; i++)
        cs[i] = cl_call_h(cl, "/test.Echo/Flood", NULL, m, len, false, 0);
    /* about 62 calls fill 64 MiB; the later ones are refused */
    int refused = 0;
    RUN_UNTIL(f, f->n_full + (refused = count_refused(cs, N)) == N);
    assert_true(f->n_full >= 60);
    assert_true(refused >= 1);
    nghttp2_submit_ping(cl->s, NGHTTP2_FLAG_NONE, NULL);
    cl_flush(cl);
    RUN_UNTIL(f, cl->ping_ack);
    f->timed_out = false;
    uv_timer_start(&f->timer, on_timeout, 20000, 0);
    for (int done = 0; done < N && !f->timed_out;) {
        for (int i = 0; i < N; i++)
            cs_consume(cs[i]);
        uv_run(&f->loop, UV_RUN_ONCE);
        for (done = 0; done < N && cs[done]->closed; done++)
            ;
    }
    uv_timer_stop(&f->timer);
    for (int i = 0; i < N; i++) {
        assert_true(cs[i]->closed);
        if (cs[i]->close_code == NGHTTP2_REFUSED_STREAM) {
            assert_int_equal(cs[i]->header_blocks, 0);
            continue;
        }
        assert_status(cs[i], GRPC_OK, NULL);
        assert_int_equal(cs[i]->body_len, 20 * (5 + 60000));
    }
    assert_int_equal(count_refused(cs, N), refused);
    struct cstream *again = cl_call(cl, "/test.Echo/Unary", m, len);
    while (!again->closed) {
        cs_consume(again);
        RUN_UNTIL(f, again->closed || again->unconsumed);
    }
    assert_status(again, GRPC_OK, NULL);
}

/* Thousands of concurrent streams on one connection. */
static void test_many_streams(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    enum { N = 3000 };
    struct cstream **cs = calloc(N, sizeof *cs);
    char text[32];
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof text, "m%d", i);
        size_t len;
        const uint8_t *m = msg(text, &len);
        cs[i] = cl_call(cl, "/test.Echo/Unary", m, len);
    }
    int done = 0;
    f->timed_out = false;
    uv_timer_start(&f->timer, on_timeout, 20000, 0);
    while (done < N && !f->timed_out) {
        uv_run(&f->loop, UV_RUN_ONCE);
        for (done = 0; done < N && cs[done]->closed; done++)
            ;
    }
    uv_timer_stop(&f->timer);
    for (int i = 0; i < N; i++) {
        assert_true(cs[i]->closed);
        assert_status(cs[i], GRPC_OK, NULL);
        snprintf(text, sizeof text, "m%d", i);
        const char *want[] = {text};
        assert_messages(cs[i], want, 1);
    }
    free(cs);
    /* and as many cancelled ones (nghttp2's default RST_STREAM rate limit would trip) */
    f->cancel_finishes = true;
    for (int i = 0; i < 1500; i++) {
        struct cstream *h = cl_call_h(cl, "/test.Echo/Stream", NULL, NULL, 0, false, 0);
        cs_reset(h);
    }
    size_t len;
    const uint8_t *m = msg("after", &len);
    struct cstream *last = cl_call(cl, "/test.Echo/Unary", m, len);
    RUN_UNTIL(f, last->closed);
    assert_status(last, GRPC_OK, NULL);
    assert_false(cl->goaway);
}

/* Garbage and HTTP/1.1 get the connection closed (after a GOAWAY where possible). */
static void test_garbage(void **state)
{
    struct fx *f = *state;
    struct client *a = cl_connect(f, true, 0);
    const char *http1 = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    cl_write(a, (const uint8_t *)http1, strlen(http1));
    struct client *b = cl_connect(f, true, 0);
    const char *preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    cl_write(b, (const uint8_t *)preface, strlen(preface));
    cl_write(b, (const uint8_t *)"\x00\x00\x04\x09\x00\x00\x00\x00\x07garbage-frame", 22);
    RUN_UNTIL(f, a->eof && b->eof);
    /* the server still serves others */
    struct client *c = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("ok", &len);
    struct cstream *cs = cl_call(c, "/test.Echo/Unary", m, len);
    RUN_UNTIL(f, cs->closed);
    assert_status(cs, GRPC_OK, NULL);
}

/* Graceful shutdown: GOAWAY; streaming calls are cancelled and end UNAVAILABLE "transport is
 * closing"; a unary call in flight still completes; then the connection closes and done runs. */
static void test_shutdown(void **state)
{
    struct fx *f = *state;
    f->cancel_finishes = false;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("x", &len);
    struct cstream *s = cl_call_h(cl, "/test.Echo/Stream", NULL, m, len, false, 0);
    struct cstream *u = cl_call(cl, "/test.Echo/Hold", m, len);
    RUN_UNTIL(f, f->n_held == 2 && s->body_len == len);
    fx_shutdown(f);
    RUN_UNTIL(f, cl->goaway && s->closed);
    assert_int_equal(cl->goaway_last, u->id);
    assert_status(s, GRPC_UNAVAILABLE, "transport is closing");
    assert_int_equal(f->n_cancel, 1);
    run_for(f, 20);
    assert_false(u->closed);
    assert_false(f->shutdown_done);
    assert_int_equal(f->n_held, 1);
    struct grpc_call *call = f->held[0];
    f->n_held = 0;
    assert_false(grpc_call_cancelled(call));
    assert_int_equal(grpc_call_send(call, (const uint8_t *)"late", 4), 0);
    grpc_call_finish(call, GRPC_OK, NULL);
    RUN_UNTIL(f, u->closed && f->shutdown_done && cl->eof);
    assert_status(u, GRPC_OK, NULL);
    const char *want[] = {"late"};
    assert_messages(u, want, 1);
}

/* Shutdown of a server with idle connections and none. */
static void test_shutdown_idle(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    fx_shutdown(f);
    RUN_UNTIL(f, f->shutdown_done && cl->eof);
    assert_true(cl->goaway);
}

/* A unary call whose request never completes does not hold a shutdown up: it is answered
 * UNAVAILABLE (nothing of it was done) and the connection closes. */
static void test_shutdown_partial_request(void **state)
{
    struct fx *f = *state;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("a longer request", &len);
    struct cstream *p = cl_call_h(cl, "/test.Echo/Unary", NULL, m, len - 4, false, 0);
    run_for(f, 20);
    assert_false(p->closed);
    fx_shutdown(f);
    RUN_UNTIL(f, p->closed && f->shutdown_done && cl->eof);
    assert_status(p, GRPC_UNAVAILABLE, "transport is closing");
    assert_int_equal(f->n_messages, 0);
}

static int fx_setup_grace(void **state)
{
    struct grpc_server_options o = {.shutdown_grace_ms = 50};
    return fx_setup_opts(state, &o);
}

/* After the grace period a shutdown closes connections whose calls have not finished; their
 * handlers are cancelled and still finish (the call is freed then), and done follows. */
static void test_shutdown_grace_over(void **state)
{
    struct fx *f = *state;
    f->cancel_finishes = false;
    struct client *cl = cl_connect(f, false, 0);
    size_t len;
    const uint8_t *m = msg("x", &len);
    struct cstream *u = cl_call(cl, "/test.Echo/Hold", m, len);
    RUN_UNTIL(f, f->n_held == 1);
    fx_shutdown(f);
    RUN_UNTIL(f, cl->eof && f->n_cancel == 1);
    assert_false(u->closed && u->grpc_status == GRPC_OK); /* no answer was sent */
    RUN_UNTIL(f, f->shutdown_done);
    struct grpc_call *call = f->held[0];
    f->n_held = 0;
    assert_true(grpc_call_cancelled(call));
    grpc_call_finish(call, GRPC_OK, NULL);
}

/* Memory connections (for the fuzz target): bytes in, answers out through the sink. */
struct sink {
    uint8_t *data;
    size_t len;
};

static void sink_fn(void *arg, const uint8_t *data, size_t len)
{
    struct sink *s = arg;
    s->data = realloc(s->data, s->len + len);
    memcpy(s->data + s->len, data, len);
    s->len += len;
}

static void test_mem_conn(void **state)
{
    struct fx *f = *state;
    struct sink out = {0};
    struct grpc_mem_conn *mc;
    assert_int_equal(grpc_mem_conn_open(f->srv, sink_fn, &out, &mc), 0);
    assert_true(out.len >= 9);
    assert_int_equal(out.data[3], NGHTTP2_SETTINGS); /* the server's SETTINGS first */
    /* build a client's bytes with a client session */
    struct client tmp = {.f = f};
    struct client *cl = &tmp;
    nghttp2_session_callbacks *cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, c_on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, c_on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, c_on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, c_on_close);
    nghttp2_session_client_new(&cl->s, cbs, cl);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(cl->s, NGHTTP2_FLAG_NONE, NULL, 0);
    cl->closing = true; /* cl_call's flush must not write to a socket */
    size_t len;
    const uint8_t *m = msg("mem", &len);
    struct cstream *cs = cl_call(cl, "/test.Echo/Unary", m, len);
    cl->closing = false;
    for (int round = 0; round < 4; round++) {
        const uint8_t *p;
        ssize_t n;
        while ((n = nghttp2_session_mem_send(cl->s, &p)) > 0)
            assert_int_equal(grpc_mem_conn_feed(mc, p, (size_t)n), 0);
        uv_run(&f->loop, UV_RUN_NOWAIT);
        if (out.len) {
            assert_true(nghttp2_session_mem_recv(cl->s, out.data, out.len) >= 0);
            out.len = 0;
        }
    }
    assert_true(cs->closed);
    assert_status(cs, GRPC_OK, NULL);
    const char *want[] = {"mem"};
    assert_messages(cs, want, 1);
    /* a hold call, then the client vanishes */
    cl->closing = true;
    cl_call(cl, "/test.Echo/Hold", m, len);
    const uint8_t *p;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(cl->s, &p)) > 0)
        assert_int_equal(grpc_mem_conn_feed(mc, p, (size_t)n), 0);
    assert_int_equal(f->n_held, 1);
    grpc_mem_conn_close(mc);
    assert_int_equal(f->n_cancel, 1);
    nghttp2_session_del(cl->s);
    free(out.data);
    /* garbage closes a memory connection too */
    assert_int_equal(grpc_mem_conn_open(f->srv, NULL, NULL, &mc), 0);
    assert_true(grpc_mem_conn_feed(mc, (const uint8_t *)"GET / HTTP/1.1\r\n\r\n", 18) < 0);
    grpc_mem_conn_close(mc);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN); /* as in any server process: a write to a closed socket fails */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_settings_and_ping, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unary_echo, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unary_empty_message, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unary_split_frames, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_error_trailers_only, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_request_header, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_paths, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_content_type, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_message_too_large, fx_setup_small, fx_teardown),
        cmocka_unit_test_setup_teardown(test_compressed, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_unary_incomplete, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_deadline, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_client_cancel, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connection_lost, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_streaming, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_backpressure, fx_setup_small, fx_teardown),
        cmocka_unit_test_setup_teardown(test_connection_backpressure, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_many_streams, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_garbage, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_idle, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_partial_request, fx_setup, fx_teardown),
        cmocka_unit_test_setup_teardown(test_shutdown_grace_over, fx_setup_grace, fx_teardown),
        cmocka_unit_test_setup_teardown(test_mem_conn, fx_setup, fx_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
