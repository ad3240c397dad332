/* raft/transport.c — the cluster check on top of libraft's TCP transport. */
#include "raft/transport.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define HANDSHAKE_TIMEOUT_MS 5000

/* One exchange of cluster IDs on a new connection. */
struct cluster_handshake {
    struct cluster_transport *t;
    uv_stream_t *stream;          /* the connection (libraft's uv_tcp_t, raft_malloc'd) */
    bool accepted;                /* it connected to us */
    raft_id id;                   /* the peer's raft id */
    char address[256];            /* the peer's address */
    struct raft_uv_connect inner; /* connecting: the request given to the TCP transport */
    struct raft_uv_connect *req;  /* connecting: libraft's request */
    uint8_t ours[8];              /* our cluster ID, as sent */
    uint8_t theirs[8];            /* what arrived of the peer's */
    size_t got;                   /* bytes of it */
    uv_write_t write;
    uv_timer_t timer;               /* gives up on a peer that never answers */
    bool written, done;             /* our ID is written; the outcome is decided */
    bool matched;                   /* the IDs are equal */
    struct cluster_handshake *next; /* the transport's list */
};

static struct cluster_transport *of(struct raft_uv_transport *base)
{
    return (struct cluster_transport *)base; /* base is the first member */
}

static void be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t be64_get(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static void unlink_handshake(struct cluster_handshake *h)
{
    for (struct cluster_handshake **pp = &h->t->handshakes; *pp; pp = &(*pp)->next)
        if (*pp == h) {
            *pp = h->next;
            return;
        }
}

static void on_stream_closed(uv_handle_t *s)
{
    raft_free(s);
}

static void maybe_fire_close(struct cluster_transport *t);

static struct cluster_handshake *record_new(struct cluster_transport *t)
{
    struct cluster_handshake *h = calloc(1, sizeof *h);
    if (h) {
        h->t = t;
        t->pending++;
    }
    return h;
}

static void record_free(struct cluster_handshake *h)
{
    struct cluster_transport *t = h->t;
    free(h);
    t->pending--;
    maybe_fire_close(t);
}

static void on_timer_closed(uv_handle_t *timer)
{
    record_free(timer->data);
}

/* The exchange is over (matched or not); the handshake goes once its timer is closed. */
static void finish(struct cluster_handshake *h, bool matched)
{
    if (h->done)
        return;
    h->done = true;
    unlink_handshake(h);
    uv_timer_stop(&h->timer);
    uv_read_stop(h->stream);
    struct cluster_transport *t = h->t;
    if (matched && !t->closing) {
        h->stream->data = NULL;
        if (h->accepted)
            t->accept_cb(&t->base, h->id, h->address, h->stream);
        else
            h->req->cb(h->req, h->stream, 0);
    } else {
        uv_close((uv_handle_t *)h->stream, on_stream_closed);
        if (!h->accepted)
            h->req->cb(h->req, NULL, t->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
    }
    uv_close((uv_handle_t *)&h->timer, on_timer_closed);
}

static void on_timeout(uv_timer_t *timer)
{
    struct cluster_handshake *h = timer->data;
    log_warn("raft: peer %s did not complete the cluster check", h->address);
    finish(h, false);
}

/* A joining member takes the first peer's cluster ID as its own. */
static void maybe_adopt(struct cluster_handshake *h)
{
    uint64_t theirs = be64_get(h->theirs);
    if (!h->t->adopt || theirs == 0)
        return;
    log_info("raft: joining cluster %016llx (from peer %s)", (unsigned long long)theirs,
             h->address);
    h->t->cluster_id = theirs;
    h->t->adopt = false;
    if (h->t->adopted)
        h->t->adopted(h->t);
}

/* Decides once our ID is written and the peer's has arrived. */
static void decide(struct cluster_handshake *h)
{
    if (!h->written || h->got < sizeof h->theirs || h->done)
        return;
    uint64_t theirs = be64_get(h->theirs);
    maybe_adopt(h);
    bool ok = theirs == h->t->cluster_id;
    if (!ok) {
        log_error("raft: peer %s (member %016llx) belongs to cluster %016llx, this member to "
                  "%016llx: connection refused (check --initial-cluster and "
                  "--initial-cluster-token)",
                  h->address, (unsigned long long)h->id, (unsigned long long)theirs,
                  (unsigned long long)h->t->cluster_id);
        if (h->t->mismatch)
            h->t->mismatch(h->t, h->address, theirs, h->accepted);
    }
    finish(h, ok);
}

static void on_written(uv_write_t *w, int status)
{
    struct cluster_handshake *h = w->data;
    if (h->done)
        return;
    if (status) {
        finish(h, false);
        return;
    }
    h->written = true;
    decide(h);
}

static void send_ours(struct cluster_handshake *h)
{
    be64_put(h->ours, h->t->cluster_id);
    uv_buf_t b = uv_buf_init((char *)h->ours, sizeof h->ours);
    h->write.data = h;
    if (uv_write(&h->write, h->stream, &b, 1, on_written))
        finish(h, false);
}

static void on_alloc(uv_handle_t *s, size_t suggested, uv_buf_t *buf)
{
    (void)suggested;
    struct cluster_handshake *h = s->data;
    /* never more than the ID: the peer sends nothing else before the answer */
    *buf = uv_buf_init((char *)h->theirs + h->got, (unsigned)(sizeof h->theirs - h->got));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct cluster_handshake *h = s->data;
    if (n < 0) {
        finish(h, false);
        return;
    }
    h->got += (size_t)n;
    if (h->got == sizeof h->theirs) {
        uv_read_stop(s);
        if (h->accepted) {
            maybe_adopt(h);
            send_ours(h); /* answer only a peer of whose cluster we know */
        }
        decide(h);
    }
}

static struct cluster_handshake *begin(struct cluster_transport *t, uv_stream_t *stream,
                                       bool accepted, raft_id id, const char *address)
{
    struct cluster_handshake *h = record_new(t);
    if (!h)
        return NULL;
    h->stream = stream;
    h->accepted = accepted;
    h->id = id;
    snprintf(h->address, sizeof h->address, "%s", address ? address : "?");
    uv_timer_init(t->loop, &h->timer);
    h->timer.data = h;
    stream->data = h;
    h->next = t->handshakes;
    t->handshakes = h;
    uv_timer_start(&h->timer, on_timeout, HANDSHAKE_TIMEOUT_MS, 0);
    /* libraft's TCP transport leaves Nagle's algorithm on: a small message written while the
     * previous one is unacknowledged would wait for the peer's delayed ACK (40 ms on Linux) */
    uv_tcp_nodelay((uv_tcp_t *)stream, 1);
    if (uv_read_start(stream, on_alloc, on_read))
        finish(h, false);
    return h;
}

/* ---------------------------------------------------------------------------------------------- */
/* The transport interface */

static void on_tcp_accept(struct raft_uv_transport *tcp, raft_id id, const char *address,
                          uv_stream_t *stream)
{
    struct cluster_transport *t = tcp->data;
    if (t->closing || !begin(t, stream, true, id, address))
        uv_close((uv_handle_t *)stream, on_stream_closed);
}

static int ct_init(struct raft_uv_transport *base, raft_id id, const char *address)
{
    struct cluster_transport *t = of(base);
    int rv = t->tcp.init(&t->tcp, id, address);
    if (rv)
        memcpy(base->errmsg, t->tcp.errmsg, sizeof base->errmsg);
    return rv;
}

static int ct_listen(struct raft_uv_transport *base, raft_uv_accept_cb cb)
{
    struct cluster_transport *t = of(base);
    t->accept_cb = cb;
    int rv = t->tcp.listen(&t->tcp, on_tcp_accept);
    if (rv)
        memcpy(base->errmsg, t->tcp.errmsg, sizeof base->errmsg);
    return rv;
}

static void on_tcp_connect(struct raft_uv_connect *inner, uv_stream_t *stream, int status)
{
    struct cluster_handshake *h = inner->data;
    struct cluster_transport *t = h->t;
    struct raft_uv_connect *req = h->req;
    if (status || t->closing) {
        if (stream)
            uv_close((uv_handle_t *)stream, on_stream_closed);
        req->cb(req, NULL, status ? status : RAFT_CANCELED);
        record_free(h);
        return;
    }
    raft_id id = h->id;
    char address[256];
    snprintf(address, sizeof address, "%s", h->address);
    struct cluster_handshake *x = begin(t, stream, false, id, address);
    record_free(h); /* the pending connect is over; the exchange has its own record */
    if (!x) {
        uv_close((uv_handle_t *)stream, on_stream_closed);
        req->cb(req, NULL, RAFT_NOMEM);
        return;
    }
    x->req = req;
    if (!x->done)
        send_ours(x);
}

static int ct_connect(struct raft_uv_transport *base, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb)
{
    struct cluster_transport *t = of(base);
    char updated[256];
    if (t->address_of && t->address_of(t, id, updated, sizeof updated))
        address = updated;
    struct cluster_handshake *h = record_new(t); /* only t, req, id, address until then */
    if (!h)
        return RAFT_NOMEM;
    h->req = req;
    req->cb = cb;
    h->id = id;
    snprintf(h->address, sizeof h->address, "%s", address);
    h->inner.data = h;
    int rv = t->tcp.connect(&t->tcp, &h->inner, id, address, on_tcp_connect);
    if (rv) {
        memcpy(base->errmsg, t->tcp.errmsg, sizeof base->errmsg);
        free(h);
        t->pending--;
    }
    return rv;
}

/* libraft may release the transport once the TCP transport closed and no record of ours is left. */
static void maybe_fire_close(struct cluster_transport *t)
{
    if (!t->closing || !t->tcp_closed || t->pending || !t->close_cb)
        return;
    raft_uv_transport_close_cb cb = t->close_cb;
    t->close_cb = NULL;
    cb(&t->base);
}

static void on_tcp_closed(struct raft_uv_transport *tcp)
{
    struct cluster_transport *t = tcp->data;
    t->tcp_closed = true;
    maybe_fire_close(t);
}

static void ct_close(struct raft_uv_transport *base, raft_uv_transport_close_cb cb)
{
    struct cluster_transport *t = of(base);
    t->closing = true;
    t->close_cb = cb;
    /* exchanges in progress end now; the TCP transport then cancels its pending connects */
    while (t->handshakes)
        finish(t->handshakes, false);
    t->tcp.close(&t->tcp, on_tcp_closed);
}

int cluster_transport_init(struct cluster_transport *t, uv_loop_t *loop, uint64_t cluster_id)
{
    memset(t, 0, sizeof *t);
    t->loop = loop;
    t->cluster_id = cluster_id;
    t->tcp.version = 1;
    t->tcp.data = t;
    int rv = raft_uv_tcp_init(&t->tcp, loop);
    if (rv) {
        memcpy(t->base.errmsg, t->tcp.errmsg, sizeof t->base.errmsg);
        return rv;
    }
    t->base.version = 1;
    t->base.init = ct_init;
    t->base.listen = ct_listen;
    t->base.connect = ct_connect;
    t->base.close = ct_close;
    return 0;
}

int cluster_transport_set_bind_address(struct cluster_transport *t, const char *address)
{
    return raft_uv_tcp_set_bind_address(&t->tcp, address);
}

void cluster_transport_free(struct cluster_transport *t)
{
    raft_uv_tcp_close(&t->tcp);
}
