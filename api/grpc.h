/* api/grpc.h — the server side of gRPC over HTTP/2 (h2c) on a libuv loop.
 *
 * The transport (api/h2.c, api/grpc.c) accepts TCP connections, speaks HTTP/2 with nghttp2, turns
 * each request stream into a call of a registered method, reassembles the 5-byte length-prefixed
 * gRPC messages, and sends responses and trailers. It knows nothing of etcd: service handlers
 * (api/kv.c, ...) register methods by path and answer calls through the functions below.
 *
 * Everything runs on the loop's thread. A call is a handle: the transport creates it when a request
 * stream opens for a registered method and frees it only when BOTH the stream is gone (finished,
 * reset by the client, connection lost) AND the handler has called grpc_call_finish() exactly once.
 * So a handler may keep a call pointer across asynchronous work (a proposal, a watch) and finish it
 * later even if the client vanished meanwhile — on_cancel tells it that nobody is listening. */
#ifndef CAIRN_API_GRPC_H
#define CAIRN_API_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/grpc_meta.h" /* enum grpc_code */

struct grpc_server;
struct grpc_call;

/* A method handler. All callbacks run on the loop thread; ctx is grpc_method.ctx. */
struct grpc_method {
    const char *path; /* ":path", e.g. "/etcdserverpb.KV/Range" */
    bool streaming;   /* bidirectional streaming (Watch, LeaseKeepAlive); else unary */
    /* A complete request message (borrowed for the duration of the callback). Unary: called once,
     * when the request message is complete; the handler must call grpc_call_finish() eventually.
     * Streaming: called per message while the call lives. */
    void (*on_message)(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx);
    /* Streaming only, may be NULL: the client half-closed (no more messages). */
    void (*on_half_close)(struct grpc_call *call, void *ctx);
    /* May be NULL: the client went away (RST_STREAM, connection lost, deadline passed, server
     * shutdown). The handler must still call grpc_call_finish() once (its status is not sent). */
    void (*on_cancel)(struct grpc_call *call, void *ctx);
    /* Streaming only, may be NULL: the call's send queue fell below its low-water mark after
     * grpc_call_send() reported it over the high-water mark (back-pressure). */
    void (*on_writable)(struct grpc_call *call, void *ctx);
    void *ctx;
};

struct grpc_server_options {
    size_t max_recv_msg_size; /* larger request messages: RESOURCE_EXHAUSTED "grpc: received message
                                 larger than max (N vs. M)"; 0 → 2 MiB + 1 KiB (etcd's default
                                 --max-request-bytes plus gRPC overhead) */
    size_t send_high_water; /* bytes queued per call before grpc_call_send() reports 1; 0 → 1 MiB */
    uint32_t max_concurrent_streams; /* 0 → 2^31-1 */
    uint64_t shutdown_grace_ms; /* how long a shutdown waits for calls in flight and for clients
                                   to read their answers before it closes connections; 0 → 7 s
                                   (etcd's request timeout) */
};

/* Creates a server on loop. opts may be NULL. */
int grpc_server_new(uv_loop_t *loop, const struct grpc_server_options *opts,
                    struct grpc_server **out);

/* Registers methods (the array must outlive the server). Unknown paths get UNIMPLEMENTED with
 * "unknown service X" / "unknown method Y for service X" as grpc-go words them. */
void grpc_server_register(struct grpc_server *srv, const struct grpc_method *methods, size_t n);

/* Listens on host:port (numeric IPv4/IPv6 or "localhost"); port 0 picks a free one, reported by
 * grpc_server_port(). Returns 0 or a negative libuv error. May be called for several addresses. */
int grpc_server_listen(struct grpc_server *srv, const char *host, int port);
int grpc_server_port(const struct grpc_server *srv);

/* Graceful shutdown: stop accepting, send GOAWAY, cancel streaming calls (UNAVAILABLE) and unary
 * calls whose request is incomplete, let unary calls in flight finish, flush, close connections
 * (those still open after shutdown_grace_ms are closed regardless); then call done (once) and free
 * nothing yet. done runs from the loop, or before this returns if the server never listened nor had
 * a connection. Calls the handlers have not finished may outlive the server: they only wait for
 * grpc_call_finish(). */
void grpc_server_shutdown(struct grpc_server *srv, void (*done)(void *arg), void *arg);

/* Frees the server after shutdown completed (or if it never listened). */
void grpc_server_free(struct grpc_server *srv);

/* A client connection without a socket, for tests and the fuzz target (added to the contract
 * for them): the bytes a client would send go in through grpc_mem_conn_feed(), and what the server
 * writes goes to sink (NULL discards it); everything else (calls, deadlines, shutdown) is as for a
 * TCP connection on srv's loop. grpc_mem_conn_feed() returns 0, or a negative error once the
 * server closed the connection (later bytes are ignored). grpc_mem_conn_close() drops the
 * connection as a vanished client would, if still open, and frees it; never call it from the
 * server's or a handler's callbacks. grpc_server_shutdown() completes only after every memory
 * connection was closed so. */
struct grpc_mem_conn;
int grpc_mem_conn_open(struct grpc_server *srv,
                       void (*sink)(void *arg, const uint8_t *data, size_t len), void *sink_arg,
                       struct grpc_mem_conn **out);
int grpc_mem_conn_feed(struct grpc_mem_conn *mc, const uint8_t *data, size_t len);
void grpc_mem_conn_close(struct grpc_mem_conn *mc);

/* ---------------------------------------------------------------------------------------------- */
/* Calls */

/* Queues a response message (copied). Returns 0 when the queue is below the high-water mark, 1 when
 * it is at or above it (the caller should stop sending until on_writable), or a negative error
 * (call finished or cancelled: the message is dropped). */
int grpc_call_send(struct grpc_call *call, const uint8_t *msg, size_t len);

/* A piece of a message given to grpc_call_sendv(). */
struct grpc_part {
    const uint8_t *data;
    size_t len;
};

/* As grpc_call_send() for the message made of n parts in order (copied straight into the queue:
 * a message assembled from pieces needs no buffer of its own). */
int grpc_call_sendv(struct grpc_call *call, const struct grpc_part *parts, size_t n);

/* Sets the call's high-water mark (bytes queued before grpc_call_send() reports 1), in place of
 * the server's send_high_water. */
void grpc_call_set_high_water(struct grpc_call *call, size_t bytes);

/* Ends the call: after the queued messages, trailers with grpc-status and, if message is not NULL,
 * a percent-encoded grpc-message. A call that sent no message and fails gets a Trailers-Only
 * response. Must be called exactly once per call; afterwards the handler must not touch the call.
 */
void grpc_call_finish(struct grpc_call *call, int status, const char *message);

/* The client cancelled or vanished (on_cancel has run or is about to). */
bool grpc_call_cancelled(const struct grpc_call *call);

/* Handler data attached to the call. */
void grpc_call_set_data(struct grpc_call *call, void *data);
void *grpc_call_data(const struct grpc_call *call);

/* The call's method path (":path"), valid while the call lives. */
const char *grpc_call_path(const struct grpc_call *call);

/* A request header value (e.g. "hasleader" metadata), or NULL. Lower-case name. Valid while the
 * call lives. */
const char *grpc_call_header(const struct grpc_call *call, const char *name);

#endif
