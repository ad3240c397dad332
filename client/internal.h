/* client/internal.h — what the files of the client library share; not part of the public API.
 *
 * client/client.c  endpoints, the call lifecycle (attempts, retries, deadlines), the loop hooks
 * client/conn.c    one HTTP/2 connection: connect, nghttp2 client session, socket I/O, streams
 * client/methods.c etcd's unary methods (and the streaming ones' paths)
 * client/stream.c  bidirectional streams on the call machinery: send queue, received messages
 * client/watch.c   the watch API on a Watch stream: watches, fragments, resuming
 * client/lease.c   lease keep-alives on a LeaseKeepAlive stream: due times, deadlines, resuming
 * client/sync.c    the blocking wrapper
 *
 * Everything runs on the client's loop thread. Work that must not run inside nghttp2 or inside a
 * caller's function (user callbacks, flushes) is queued and done by the client's check handle,
 * which runs once per loop turn after I/O; an idle handle keeps the loop from blocking while any
 * is queued. */
#ifndef CAIRN_CLIENT_INTERNAL_H
#define CAIRN_CLIENT_INTERNAL_H

#include <nghttp2/nghttp2.h>

#include "client/cairn_client.h"

#define CL_READ_BUFFER_SIZE (64 * 1024)

/* Where a call is (cl_call.state_). */
enum {
    CALL_IDLE = 0, /* not started, or reset */
    CALL_WAITING,  /* queued on a connection that is connecting */
    CALL_STREAM,   /* submitted as a stream of a connection */
    CALL_BACKOFF,  /* waiting (wake_) to be tried again */
    CALL_DONE,     /* finished, its callback queued */
    CALL_FINISHED  /* its callback ran */
};

struct cl_endpoint {
    char *name;             /* "host:port" (also :authority) */
    char *host;             /* host part, without brackets */
    int port;               /* port */
    struct cl_conn **slots; /* conns_per_endpoint connections, NULL where none is open */
    unsigned next_slot;     /* round-robin position among slots */
    unsigned failures;      /* connection failures in a row */
    uint64_t down_until;    /* uv_now() before which a new connection is not tried */
};

/* Work deferred to the client's check handle (a callback that must not run inside the caller's
 * function). The node is owned by whoever queued it and must stay alive until fn has run. */
struct cl_defer {
    void (*fn)(struct cl_defer *d); /* runs once per cl_client_defer() */
    struct cl_defer *next;          /* the client's queue */
    bool queued;                    /* on the queue */
};

struct cl_client {
    uv_loop_t *loop;                   /* the caller's loop */
    struct cl_options opts;            /* with defaults applied; endpoints point into eps */
    struct cl_endpoint *eps;           /* endpoints */
    const char **ep_names;             /* eps[i].name, for cl_client_endpoints() */
    size_t n_eps;                      /* number of endpoints */
    unsigned next_ep;                  /* round-robin position among endpoints */
    uv_timer_t timer;                  /* deadlines, retry wake-ups, dial timeouts */
    uint64_t timer_at;                 /* uv_now() time the timer is armed for, 0 when not */
    uv_check_t check;                  /* runs queued work once per loop turn */
    uv_idle_t idle;                    /* active while work is queued */
    struct cl_call *calls;             /* every started, unfinished call (prev_/next_) */
    struct cl_call *done_head;         /* finished calls whose callback is due (qnext_) */
    struct cl_call *done_tail;         /* last of done_head */
    struct cl_stream *rx_head;         /* streams with received messages due (stream.c) */
    struct cl_stream *rx_tail;         /* last of rx_head */
    struct cl_defer *defer_head;       /* deferred work (cl_client_defer) */
    struct cl_defer *defer_tail;       /* last of defer_head */
    struct cl_conn *conns;             /* every connection not yet freed (conn.c's list) */
    struct cl_conn *dirty;             /* connections with output to flush (conn.c's list) */
    uint8_t rbuf[CL_READ_BUFFER_SIZE]; /* read buffer shared by the connections */
    int handles_open;                  /* of timer, check, idle and connections being closed */
    bool closing;                      /* cl_client_close() ran */
    void (*on_closed)(void *arg);      /* cl_client_close()'s done */
    void *on_closed_arg;               /* its argument */
};

/* ---- client.c, for conn.c ---- */

/* Queues deferred work: the check handle will run on this loop turn. */
void cl_client_kick(struct cl_client *c);

/* A connection's memory was released (one of handles_open fewer). */
void cl_client_conn_freed(struct cl_client *c);

/* Arms the client's timer to fire no later than at (a uv_now() time). */
void cl_client_wake_at(struct cl_client *c, uint64_t at);

/* An attempt of call ended without an answer from its server: the connection failed or dropped
 * (code UNAVAILABLE), the stream was refused (REFUSED_STREAM: never processed), and so on.
 * never_processed says the server did not act on it whatever sent_ says. Retries or finishes the
 * call. The call must be detached from its connection already. */
void cl_call_attempt_failed(struct cl_call *call, int code, const char *message,
                            bool never_processed);

/* The call finished with code/message (message copied); its response (if any) is in place. */
void cl_call_finish(struct cl_call *call, int code, const char *message);

/* Starts a call whose body (if any) is in place: links it into the client's calls and makes its
 * first attempt now, or after delay_ms. For cl_call_start() and streams. */
void cl_call_launch(struct cl_client *c, struct cl_call *call, const struct cl_method *m,
                    uint64_t delay_ms);

/* Queues d to run from the check handle on this loop turn (nothing if it is queued already). */
void cl_client_defer(struct cl_client *c, struct cl_defer *d);

/* ---- msg.c ---- */

/* Decodes one message of a stream into a single block (see msg.c); freed by
 * cl_stream_msg_free(). NULL when the bytes are not a valid message or memory is exhausted. */
ProtobufCMessage *cl_stream_msg_unpack(const ProtobufCMessageDescriptor *d, size_t len,
                                       const uint8_t *data);

/* The direct decoder of etcdserverpb.WatchResponse behind cl_stream_msg_unpack(): the message in
 * one block, or NULL when it holds anything the direct path leaves to protobuf-c (or memory is
 * exhausted). What it decodes is what protobuf-c decodes from the same bytes. */
ProtobufCMessage *cl_msg_decode_watch_response(size_t len, const uint8_t *data);

/* ---- stream.c, for conn.c and client.c ---- */

/* A message of a stream's call arrived (owned by the stream now): queued for its on_msg. */
void cl_stream_received(struct cl_call *call, ProtobufCMessage *msg);

/* Delivers the messages due on every stream (from the check handle). */
void cl_stream_run_rx(struct cl_client *c);

/* nghttp2's data source for a stream's request side: copies queued bytes into buf. Returns the
 * bytes copied, setting NGHTTP2_DATA_FLAG_EOF once half-closed and drained, or
 * NGHTTP2_ERR_DEFERRED when nothing is queued. */
ssize_t cl_stream_read_body(struct cl_call *call, uint8_t *buf, size_t length,
                            uint32_t *data_flags);

/* ---- conn.c ---- */

struct cl_conn;

/* Opens a connection to ep (slot index slot) and starts connecting. Returns it or NULL (out of
 * memory). */
struct cl_conn *cl_conn_open(struct cl_client *c, struct cl_endpoint *ep, unsigned slot);

/* A connection without a socket, ready at once, for the fuzz target and tests: the server's
 * bytes go in through cl_conn_feed_mem(), what the client writes is discarded. It occupies ep's
 * slot as a connected one would. Returns it or NULL (out of memory). */
struct cl_conn *cl_conn_open_mem(struct cl_client *c, struct cl_endpoint *ep, unsigned slot);

/* Feeds bytes as if read from the socket of a memory connection. Returns 0, or
 * CAIRN_E_INVALID_ARGUMENT once it is closed. */
int cl_conn_feed_mem(struct cl_conn *conn, const uint8_t *data, size_t len);

/* Whether the connection can take a new call now or once connected (not failed, not draining). */
bool cl_conn_usable(const struct cl_conn *conn);

/* Sends call on conn: queued until connected, then submitted as a stream. */
void cl_conn_submit(struct cl_conn *conn, struct cl_call *call);

/* Detaches call from conn (deadline, cancel): resets its stream, or drops it from the queue. */
void cl_conn_detach(struct cl_conn *conn, struct cl_call *call);

/* New bytes were queued on call's request side: resumes its deferred data and flushes later. */
void cl_conn_resume(struct cl_conn *conn, struct cl_call *call);

/* Flushes nghttp2's output to the socket (from the check handle). */
void cl_conn_flush(struct cl_conn *conn);

/* Fails the connection if it is still connecting at now (dial timeout). Returns the uv_now() time
 * its dial times out while it is still connecting, else 0. */
uint64_t cl_conn_check_dial(struct cl_conn *conn, uint64_t now);

/* Closes the connection: its calls fail with code/message as attempts that may be retried. */
void cl_conn_fail(struct cl_conn *conn, int code, const char *message);

/* Flushes every connection marked as having output (from the check handle). */
void cl_conn_flush_dirty(struct cl_client *c);

/* The connection after conn in the client's list, or NULL. */
struct cl_conn *cl_conn_next(struct cl_conn *conn);

#endif
