/* api/h2.c — one server-side HTTP/2 connection on libuv with nghttp2 (see h2.h).
 *
 * Output: nghttp2_session_mem_send() produces frames on demand; they are gathered into write
 * buffers of about WRITE_CHUNK bytes and at most MAX_WRITES uv_write requests are in flight, so a
 * client that stops reading costs at most MAX_WRITES buffers here (the rest waits in the layer
 * above, which bounds it). nghttp2 is never re-entered: a flush asked for from
 * inside one of its callbacks runs when the outer nghttp2 call returns. */
#include "api/h2.h"

#include <stdlib.h>
#include <string.h>

#define WRITE_CHUNK (64 * 1024) /* a write buffer is sent once it holds this much */
#define MAX_WRITES  8           /* uv_write requests in flight per connection */

struct write_req {
    uv_write_t req;    /* libuv request; req.data unused */
    struct h2_conn *c; /* owner */
    size_t len;        /* bytes in data */
    size_t cap;        /* size of data */
    uint8_t data[];    /* frames */
};

struct h2_conn {
    nghttp2_session *session;   /* server session */
    const struct h2_handler *h; /* the layer above */
    void *data;                 /* h2_conn_data() */
    uint32_t max_header_list;   /* enforced on request header blocks */
    bool mem;                   /* no socket: h2_conn_feed() in, sink out */
    uv_tcp_t tcp;               /* the socket (unless mem) */
    uint8_t *rbuf;              /* shared read buffer (unless mem) */
    void (*sink)(void *arg, const uint8_t *data, size_t len); /* mem: output */
    void *sink_arg;                                           /* mem: sink's argument */
    char *hbuf;      /* header block being received: "name\0value\0"... */
    size_t hlen;     /* bytes used in hbuf */
    size_t hcap;     /* size of hbuf */
    size_t hn;       /* fields in hbuf */
    int writes;      /* uv_write requests in flight */
    int depth;       /* nesting of nghttp2 calls: no flush while > 0 */
    bool flushing;   /* a flush loop runs (further requests only set want_flush) */
    bool want_flush; /* output was submitted while nghttp2 or a flush was busy */
    bool reading;    /* uv_read_start is active */
    bool failed;     /* nghttp2 failed or terminated: read nothing more */
    bool closing;    /* h2_conn_close ran: the handler is detached */
};

static void flush(struct h2_conn *c);
static void update_reading(struct h2_conn *c);

/* the handler of a connection that failed before the layer above knew it */
static const struct h2_handler no_handler;

void h2_options_default(struct h2_options *o)
{
    o->max_concurrent_streams = INT32_MAX;
    o->initial_window_size = 1u << 20;
    o->conn_window_size = 16 << 20;
    o->max_header_list_size = 256 << 10;
}

const char *h2_headers_get(const struct h2_headers *hs, const char *name)
{
    for (size_t i = 0; i < hs->n; i++)
        if (strcmp(hs->h[i].name, name) == 0)
            return hs->h[i].value;
    return NULL;
}

void *h2_conn_data(const struct h2_conn *c)
{
    return c->data;
}

/* ---------------------------------------------------------------------------------------------- */
/* nghttp2 callbacks */

static int on_begin_headers(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    (void)s;
    (void)frame;
    struct h2_conn *c = ud;
    if (c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    c->hlen = 0; /* header blocks arrive whole, one at a time: one buffer per connection */
    c->hn = 0;
    return 0;
}

static int on_header(nghttp2_session *s, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)s;
    (void)flags;
    struct h2_conn *c = ud;
    if (c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* request trailers: nothing of gRPC's is in them */
    /* RFC 9113 6.5.2: the size of a field is its name and value lengths plus 32 */
    size_t need = namelen + valuelen + 2;
    if (c->hlen + 32 * (c->hn + 1) + need > c->max_header_list)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* resets the stream */
    if (c->hlen + need > c->hcap) {
        size_t cap = c->hcap ? c->hcap * 2 : 1024;
        while (cap < c->hlen + need)
            cap *= 2;
        char *p = realloc(c->hbuf, cap);
        if (!p)
            return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        c->hbuf = p;
        c->hcap = cap;
    }
    memcpy(c->hbuf + c->hlen, name, namelen);
    c->hbuf[c->hlen + namelen] = '\0';
    c->hlen += namelen + 1;
    memcpy(c->hbuf + c->hlen, value, valuelen);
    c->hbuf[c->hlen + valuelen] = '\0';
    c->hlen += valuelen + 1;
    c->hn++;
    return 0;
}

/* The received header block as one allocation, or NULL (out of memory). */
static struct h2_headers *pack_headers(struct h2_conn *c)
{
    size_t arr = sizeof(struct h2_headers) + c->hn * sizeof(struct h2_header);
    struct h2_headers *hs = malloc(arr + c->hlen + 1);
    if (!hs)
        return NULL;
    char *p = (char *)hs + arr;
    if (c->hlen)
        memcpy(p, c->hbuf, c->hlen);
    hs->n = c->hn;
    for (size_t i = 0; i < c->hn; i++) {
        hs->h[i].name = p;
        p += strlen(p) + 1;
        hs->h[i].value = p;
        p += strlen(p) + 1;
    }
    return hs;
}

static int on_frame_recv(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_conn *c = ud;
    if (c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    int32_t id = frame->hd.stream_id;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
            struct h2_headers *hs = pack_headers(c);
            if (!hs)
                return nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id,
                                                 NGHTTP2_INTERNAL_ERROR) == 0
                           ? 0
                           : NGHTTP2_ERR_CALLBACK_FAILURE;
            c->h->on_request(c, id, hs);
            if (c->closing)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        break;
    case NGHTTP2_DATA:
        break;
    default:
        return 0;
    }
    if (end) {
        void *sd = nghttp2_session_get_stream_user_data(s, id);
        if (sd)
            c->h->on_end_stream(c, sd);
    }
    return c->closing ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_data_chunk_recv(nghttp2_session *s, uint8_t flags, int32_t id, const uint8_t *data,
                              size_t len, void *ud)
{
    (void)flags;
    struct h2_conn *c = ud;
    if (c->closing)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    void *sd = nghttp2_session_get_stream_user_data(s, id);
    if (sd)
        c->h->on_data(c, sd, data, len);
    return c->closing ? NGHTTP2_ERR_CALLBACK_FAILURE : 0;
}

static int on_frame_send(nghttp2_session *s, const nghttp2_frame *frame, void *ud)
{
    struct h2_conn *c = ud;
    if (c->closing)
        return 0;
    int32_t id = frame->hd.stream_id;
    /* RFC 9113 8.1: a server that completed its response before the request ended may end the
     * stream with RST_STREAM(NO_ERROR); gRPC servers do, so the stream is released now. */
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        nghttp2_session_get_stream_remote_close(s, id) == 0)
        nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *s, int32_t id, uint32_t error_code, void *ud)
{
    struct h2_conn *c = ud;
    if (c->closing)
        return 0;
    void *sd = nghttp2_session_get_stream_user_data(s, id);
    if (sd) {
        nghttp2_session_set_stream_user_data(s, id, NULL);
        c->h->on_stream_close(c, sd, error_code);
    }
    return 0;
}

static ssize_t read_body(nghttp2_session *s, int32_t id, uint8_t *buf, size_t len,
                         uint32_t *data_flags, nghttp2_data_source *src, void *ud)
{
    (void)src;
    struct h2_conn *c = ud;
    void *sd = nghttp2_session_get_stream_user_data(s, id);
    if (c->closing || !sd)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return c->h->read_body(c, sd, buf, len, data_flags);
}

/* ---------------------------------------------------------------------------------------------- */
/* Setup */

static int session_new(struct h2_conn *c, const struct h2_options *o)
{
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    int rv = nghttp2_session_callbacks_new(&cbs);
    if (rv)
        return rv;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    rv = nghttp2_option_new(&opt);
    if (rv) {
        nghttp2_session_callbacks_del(cbs);
        return rv;
    }
    /* Clients cancel calls with RST_STREAM as a matter of course (a watch closed, a deadline
     * passed); nghttp2's default (1000 burst, 33/s) would tear down a busy client's connection. */
    nghttp2_option_set_stream_reset_rate_limit(opt, 100000, 10000);
    /* closed streams kept for priority bookkeeping would cost memory per finished call */
    nghttp2_option_set_no_closed_streams(opt, 1);
    /* No HTTP messaging checks by nghttp2: grpc-go clients given an endpoint as a URL send it whole
     * as :authority ("http://127.0.0.1:2379"), which RFC 3986 forbids there and nghttp2 would
     * answer with RST_STREAM, but grpc-go's server (so etcd) accepts. What gRPC needs of a request
     * (:method POST, :path, content-type, grpc-timeout) api/grpc.c checks itself; the framing
     * (HPACK, flow control, stream states) stays nghttp2's. */
    nghttp2_option_set_no_http_messaging(opt, 1);
    rv = nghttp2_session_server_new2(&c->session, cbs, c, opt);
    nghttp2_option_del(opt);
    nghttp2_session_callbacks_del(cbs);
    if (rv)
        return rv;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o->initial_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o->max_header_list_size},
    };
    rv = nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
    if (rv == 0)
        rv = nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0,
                                                   o->conn_window_size);
    if (rv) {
        nghttp2_session_del(c->session);
        c->session = NULL;
    }
    return rv;
}

static struct h2_conn *conn_alloc(const struct h2_options *o, const struct h2_handler *h,
                                  void *conn_data)
{
    struct h2_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->h = h;
    c->data = conn_data;
    c->max_header_list = o->max_header_list_size;
    return c;
}

static void conn_free(struct h2_conn *c)
{
    if (c->h->on_free)
        c->h->on_free(c);
    nghttp2_session_del(c->session);
    free(c->hbuf);
    free(c);
}

static void on_tcp_closed(uv_handle_t *handle)
{
    conn_free(handle->data);
}

static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct h2_conn *c = handle->data;
    /* the buffer is shared: read_cb consumes it entirely before the loop reads again */
    *buf = uv_buf_init((char *)c->rbuf, H2_READ_BUFFER_SIZE);
}

static void recv_bytes(struct h2_conn *c, const uint8_t *data, size_t len)
{
    c->depth++;
    ssize_t rv = nghttp2_session_mem_recv(c->session, data, len);
    c->depth--;
    if (c->closing)
        return;
    if (rv < 0) {
        /* Garbage, HTTP/1.1, a flood, a failing callback: tell the client with GOAWAY if the
         * session still can, read nothing more, and close once the GOAWAY is out. */
        c->failed = true;
        update_reading(c);
        if (nghttp2_session_terminate_session(c->session, NGHTTP2_PROTOCOL_ERROR) != 0) {
            h2_conn_close(c);
            return;
        }
    }
    flush(c);
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct h2_conn *c = stream->data;
    if (nread == 0)
        return;
    if (nread < 0) { /* EOF or reset: the client is gone */
        h2_conn_close(c);
        return;
    }
    recv_bytes(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void update_reading(struct h2_conn *c)
{
    if (c->mem)
        return;
    bool want = !c->closing && !c->failed;
    if (want == c->reading)
        return;
    if (want) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
            h2_conn_close(c);
            return;
        }
    } else {
        uv_read_stop((uv_stream_t *)&c->tcp);
    }
    c->reading = want;
}

int h2_conn_accept(uv_stream_t *listener, const struct h2_options *o, const struct h2_handler *h,
                   void *conn_data, uint8_t *rbuf, struct h2_conn **out)
{
    struct h2_conn *c = conn_alloc(o, h, conn_data);
    if (!c)
        return UV_ENOMEM;
    c->rbuf = rbuf;
    int rv = uv_tcp_init(listener->loop, &c->tcp);
    if (rv) {
        free(c);
        return rv;
    }
    c->tcp.data = c;
    rv = uv_accept(listener, (uv_stream_t *)&c->tcp);
    if (rv == 0)
        rv = session_new(c, o);
    if (rv) {
        /* not yet known to the layer above: close quietly */
        c->closing = true;
        c->h = &no_handler;
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
        return rv;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    *out = c;
    update_reading(c);
    flush(c); /* the server's SETTINGS go first */
    return 0;
}

int h2_conn_new_mem(const struct h2_options *o, const struct h2_handler *h, void *conn_data,
                    void (*sink)(void *arg, const uint8_t *data, size_t len), void *sink_arg,
                    struct h2_conn **out)
{
    struct h2_conn *c = conn_alloc(o, h, conn_data);
    if (!c)
        return NGHTTP2_ERR_NOMEM;
    c->mem = true;
    c->sink = sink;
    c->sink_arg = sink_arg;
    int rv = session_new(c, o);
    if (rv) {
        free(c);
        return rv;
    }
    *out = c;
    flush(c);
    return 0;
}

int h2_conn_feed(struct h2_conn *c, const uint8_t *data, size_t len)
{
    if (c->closing || c->failed)
        return NGHTTP2_ERR_EOF;
    recv_bytes(c, data, len);
    return c->closing ? NGHTTP2_ERR_EOF : 0;
}

void h2_conn_mem_free(struct h2_conn *c)
{
    h2_conn_close(c);
    conn_free(c);
}

/* ---------------------------------------------------------------------------------------------- */
/* Output */

static void on_written(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct h2_conn *c = w->c;
    free(w);
    c->writes--;
    if (c->closing)
        return;
    if (status < 0) {
        h2_conn_close(c);
        return;
    }
    flush(c); /* room for another write, and the end may have come */
}

/* Hands a filled buffer to the socket (or the sink). Returns 0 or a libuv error. */
static int emit(struct h2_conn *c, struct write_req *w)
{
    if (c->mem) {
        if (c->sink)
            c->sink(c->sink_arg, w->data, w->len);
        free(w);
        return 0;
    }
    w->c = c;
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    int rv = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
    if (rv) {
        free(w);
        return rv;
    }
    c->writes++;
    return 0;
}

/* Moves nghttp2's output into writes until it has nothing more or MAX_WRITES are in flight.
 * Returns 0 or a negative error (the connection must close). */
static int send_some(struct h2_conn *c)
{
    while (c->mem || c->writes < MAX_WRITES) {
        struct write_req *w = NULL;
        while (!w || w->len < WRITE_CHUNK) {
            const uint8_t *p;
            c->depth++;
            ssize_t n = nghttp2_session_mem_send(c->session, &p);
            c->depth--;
            if (n < 0 || c->closing) {
                free(w);
                return n < 0 ? (int)n : 0;
            }
            if (n == 0)
                break;
            size_t len = w ? w->len : 0;
            size_t cap = w ? w->cap : 0;
            if (len + (size_t)n > cap) {
                cap = len + (size_t)n > WRITE_CHUNK ? len + (size_t)n : WRITE_CHUNK;
                struct write_req *nw = realloc(w, sizeof *w + cap);
                if (!nw) {
                    free(w);
                    return NGHTTP2_ERR_NOMEM;
                }
                w = nw;
                w->len = len;
                w->cap = cap;
            }
            memcpy(w->data + w->len, p, (size_t)n);
            w->len += (size_t)n;
        }
        if (!w)
            return 0;
        int rv = emit(c, w);
        if (rv)
            return rv;
    }
    return 0;
}

static void flush(struct h2_conn *c)
{
    if (c->closing)
        return;
    if (c->depth > 0 || c->flushing) {
        c->want_flush = true;
        return;
    }
    c->flushing = true;
    do {
        c->want_flush = false;
        int rv = send_some(c);
        if (c->closing)
            break;
        if (rv) {
            c->flushing = false;
            h2_conn_close(c);
            return;
        }
        if (c->h->on_flushed)
            c->h->on_flushed(c);
    } while (c->want_flush && !c->closing);
    c->flushing = false;
    if (c->closing)
        return;
    /* nghttp2 says the conversation is over (GOAWAY both ways done, or a fatal error sent) */
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session) &&
        c->writes == 0)
        h2_conn_close(c);
}

void h2_flush(struct h2_conn *c)
{
    flush(c);
}

void h2_stream_set_data(struct h2_conn *c, int32_t stream_id, void *stream_data)
{
    nghttp2_session_set_stream_user_data(c->session, stream_id, stream_data);
}

int h2_submit_headers(struct h2_conn *c, int32_t stream_id, const nghttp2_nv *nva, size_t n,
                      bool has_body)
{
    if (c->closing)
        return NGHTTP2_ERR_INVALID_STATE;
    nghttp2_data_provider prd = {.source = {.ptr = NULL}, .read_callback = read_body};
    return nghttp2_submit_response(c->session, stream_id, nva, n, has_body ? &prd : NULL);
}

int h2_submit_trailers(struct h2_conn *c, int32_t stream_id, const nghttp2_nv *nva, size_t n)
{
    if (c->closing)
        return NGHTTP2_ERR_INVALID_STATE;
    return nghttp2_submit_trailer(c->session, stream_id, nva, n);
}

int h2_submit_rst(struct h2_conn *c, int32_t stream_id, uint32_t error_code)
{
    if (c->closing)
        return NGHTTP2_ERR_INVALID_STATE;
    return nghttp2_submit_rst_stream(c->session, NGHTTP2_FLAG_NONE, stream_id, error_code);
}

int h2_resume(struct h2_conn *c, int32_t stream_id)
{
    if (c->closing)
        return NGHTTP2_ERR_INVALID_STATE;
    return nghttp2_session_resume_data(c->session, stream_id);
}

void h2_conn_goaway(struct h2_conn *c)
{
    if (c->closing || c->failed)
        return;
    /* RFC 9113 6.8: a shutdown notice (last id 2^31-1), then the real last stream id */
    nghttp2_submit_shutdown_notice(c->session);
    nghttp2_submit_goaway(c->session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(c->session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    flush(c);
}

void h2_conn_close(struct h2_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    if (c->reading)
        uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = false;
    c->h->on_close(c);
    if (!c->mem)
        uv_close((uv_handle_t *)&c->tcp, on_tcp_closed);
}
