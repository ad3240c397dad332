/* api/h2.h — one server-side HTTP/2 connection (h2c, prior knowledge) on a libuv loop.
 *
 * Internal to api/. Owns the nghttp2 server session and the socket: reads into a buffer shared by
 * all connections of a loop, feeds nghttp2, and writes what nghttp2 produces with a bounded number
 * of uv_write requests in flight. It always reads: flow control (WINDOW_UPDATE), PINGs and the
 * peer's end must be seen even while output is blocked; nghttp2 bounds the control frames it
 * queues in reply (a flood closes the connection). Sends its SETTINGS first (large windows, no
 * small stream cap). Knows nothing of gRPC: the layer above (api/grpc.c) gets request streams,
 * their body bytes and their ends through struct h2_handler, and answers with h2_submit_*().
 *
 * A connection can also run without a socket (h2_conn_new_mem): input is handed in by
 * h2_conn_feed() and output goes to a sink, so tests and the fuzz target drive the real code path.
 *
 * Reentrancy: the handler's callbacks run inside nghttp2 (or inside a flush); from them the upper
 * layer may call h2_submit_*(), h2_resume(), h2_flush() and h2_conn_close() — flushing is then
 * deferred to when nghttp2 returns. After on_close, no callback of the handler runs again for
 * this connection except on_free. */
#ifndef CAIRN_API_H2_H
#define CAIRN_API_H2_H

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <uv.h>

struct h2_conn;

/* One request header field. Names are lower case (HTTP/2); nghttp2 has validated both strings,
 * which hold no NUL. */
struct h2_header {
    const char *name;  /* NUL-terminated */
    const char *value; /* NUL-terminated */
};

/* A request's header fields in one allocation: free() it. Pseudo-headers (":path") included. */
struct h2_headers {
    size_t n;             /* fields */
    struct h2_header h[]; /* followed by the strings */
};

/* The value of the first field called name, or NULL. */
const char *h2_headers_get(const struct h2_headers *hs, const char *name);

/* The layer above. conn_data is h2_conn_data(); stream_data is what on_request attached with
 * h2_stream_set_data() (NULL if nothing was: the stream's later events are then dropped, and its
 * body discarded). */
struct h2_handler {
    /* A request's header block is complete. hs is the callee's to free(). When the block ended
     * the stream, on_end_stream follows (if stream data was attached). */
    void (*on_request)(struct h2_conn *c, int32_t stream_id, struct h2_headers *hs);
    /* Bytes of the request body (DATA payload), borrowed for the call. */
    void (*on_data)(struct h2_conn *c, void *stream_data, const uint8_t *data, size_t len);
    /* The client half-closed the stream (END_STREAM). */
    void (*on_end_stream)(struct h2_conn *c, void *stream_data);
    /* The stream is gone: completed both ways, reset by either side (error_code is the HTTP/2
     * error, NGHTTP2_NO_ERROR for a normal end). Not called for streams still open when the
     * connection closes: on_close covers those. */
    void (*on_stream_close)(struct h2_conn *c, void *stream_data, uint32_t error_code);
    /* nghttp2's data source for a response body (see nghttp2_data_source_read_callback): copy
     * at most len bytes into buf; return NGHTTP2_ERR_DEFERRED when nothing is ready (then
     * h2_resume() when it is); set NGHTTP2_DATA_FLAG_EOF (with NO_END_STREAM and
     * h2_submit_trailers() to end with trailers). */
    ssize_t (*read_body)(struct h2_conn *c, void *stream_data, uint8_t *buf, size_t len,
                         uint32_t *data_flags);
    /* A flush round ended with everything nghttp2 had to send handed to the socket or with the
     * write window full; a good time for deferred work such as back-pressure notifications. May be
     * NULL. */
    void (*on_flushed)(struct h2_conn *c);
    /* The connection is closing (peer gone, protocol error, or h2_conn_close()): forget every
     * stream_data; no more callbacks except on_free follow. */
    void (*on_close)(struct h2_conn *c);
    /* The connection's memory is about to be released (after its socket closed). May be NULL. */
    void (*on_free)(struct h2_conn *c);
};

/* Settings of a connection; every field must be set (see h2_options_default). */
struct h2_options {
    uint32_t max_concurrent_streams; /* SETTINGS_MAX_CONCURRENT_STREAMS */
    uint32_t initial_window_size;    /* SETTINGS_INITIAL_WINDOW_SIZE (per stream) */
    int32_t conn_window_size;        /* connection receive window */
    uint32_t max_header_list_size;   /* SETTINGS_MAX_HEADER_LIST_SIZE, also enforced */
};

/* 2^31-1 streams, 1 MiB stream window, 16 MiB connection window, 256 KiB of headers. */
void h2_options_default(struct h2_options *o);

/* Size of the read buffer h2_conn_accept() needs. */
#define H2_READ_BUFFER_SIZE (64 * 1024)

/* Accepts a pending connection of listener into a new h2 connection, sends the server's SETTINGS
 * and starts reading. rbuf (H2_READ_BUFFER_SIZE bytes) is shared by every connection of the loop
 * and must outlive them. Returns 0 and *out, or a negative libuv/nghttp2 error (nothing to free).
 */
int h2_conn_accept(uv_stream_t *listener, const struct h2_options *o, const struct h2_handler *h,
                   void *conn_data, uint8_t *rbuf, struct h2_conn **out);

/* A connection without a socket: what the server writes is passed to sink (NULL discards it).
 * Freed by h2_conn_mem_free() only, also after it closed. */
int h2_conn_new_mem(const struct h2_options *o, const struct h2_handler *h, void *conn_data,
                    void (*sink)(void *arg, const uint8_t *data, size_t len), void *sink_arg,
                    struct h2_conn **out);

/* Feeds bytes as if read from the socket (memory connections only). Returns 0, or a negative
 * error once the connection is closed (the bytes are then ignored). */
int h2_conn_feed(struct h2_conn *c, const uint8_t *data, size_t len);

/* Closes a memory connection if still open (as if the peer vanished) and frees it. */
void h2_conn_mem_free(struct h2_conn *c);

/* The conn_data given when the connection was made. */
void *h2_conn_data(const struct h2_conn *c);

/* Attaches the upper layer's data to a stream (from on_request). */
void h2_stream_set_data(struct h2_conn *c, int32_t stream_id, void *stream_data);

/* Submits the response header block; with a body (read_body supplies it) or, when !has_body,
 * ending the stream (a Trailers-Only response). Returns 0 or a negative nghttp2 error. */
int h2_submit_headers(struct h2_conn *c, int32_t stream_id, const nghttp2_nv *nva, size_t n,
                      bool has_body);

/* Submits trailers (from read_body, after setting NGHTTP2_DATA_FLAG_NO_END_STREAM). */
int h2_submit_trailers(struct h2_conn *c, int32_t stream_id, const nghttp2_nv *nva, size_t n);

/* Resets a stream with an HTTP/2 error code. */
int h2_submit_rst(struct h2_conn *c, int32_t stream_id, uint32_t error_code);

/* The body of stream_id has data again after read_body returned NGHTTP2_ERR_DEFERRED. */
int h2_resume(struct h2_conn *c, int32_t stream_id);

/* Sends what nghttp2 has queued (now, or when the current callback returns). */
void h2_flush(struct h2_conn *c);

/* Graceful close: GOAWAY (a shutdown notice, then the last stream id), so the client opens no new
 * streams; the connection closes by itself once its streams are done and its output flushed. */
void h2_conn_goaway(struct h2_conn *c);

/* Closes at once: on_close runs now, the socket closes (unsent output is dropped), on_free runs
 * when its memory is released. Idempotent. */
void h2_conn_close(struct h2_conn *c);

#endif
