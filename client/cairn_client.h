/* client/cairn_client.h — cairn's C client library: etcd v3's gRPC API over HTTP/2 (h2c) on libuv.
 *
 * It speaks to cairnd and to etcd 3.4 alike. Read this file top to bottom; it is the whole public
 * API.
 *
 * Threads and loops. A client belongs to one libuv loop, the caller's, and must be used from the
 * thread that runs that loop. Every callback of this library runs on that thread, from inside the
 * loop (never from inside the call that started the work). For simple programs without a loop of
 * their own, cl_sync (at the end) wraps a client around a private loop and blocks.
 *
 * Messages. Requests and responses are the protobuf-c structs generated from proto/ (etcd's wire),
 * e.g. Etcdserverpb__RangeRequest. A request is encoded when the call starts, so the caller may
 * free or change it as soon as cl_call_start() returns. The response is decoded into memory the
 * call owns, valid until cl_call_reset().
 *
 * Calls. A call is a request struct in the libuv style: the caller owns its memory, sets `cb` (and
 * `data`, `timeout_ms`), starts it, and keeps the struct alive until `cb` has run. Inside `cb` (or
 * after it) the caller reads code/message/response, then calls cl_call_reset() — after which the
 * struct may be started again or freed. Many calls may be in flight at once: they are multiplexed
 * as HTTP/2 streams on the client's connections.
 *
 * Endpoints and retries. A client has one or more endpoints and opens conns_per_endpoint HTTP/2
 * connections to each, lazily. Calls are spread round-robin over the connections that are up.
 * A call that fails with UNAVAILABLE or with its connection dropped is retried, after a backoff,
 * on the next endpoint — if its method is idempotent (reads, status: cl_method.idempotent) or if
 * its request never left this process. A write that may have reached a server is never retried
 * silently: it reports the error, as etcd's clientv3 does. A call with a deadline is retried until
 * the deadline passes (then it fails with DEADLINE_EXCEEDED); one without, max_retries times.
 *
 * Errors. code is a gRPC status (enum grpc_code, common/grpc_meta.h): GRPC_OK, or the server's
 * status with its grpc-message (etcd's text, e.g. "etcdserver: mvcc: required revision has been
 * compacted"), or one made here: DEADLINE_EXCEEDED "context deadline exceeded" when timeout_ms
 * passed, UNAVAILABLE when no endpoint could be reached, CANCELLED on cl_call_cancel() or client
 * close, INTERNAL for a response that does not decode. Functions that return int return 0 or a
 * negative CAIRN_E_* / libuv error code.
 *
 * Streams. A bidirectional stream (cl_stream, below) is a call that stays open: the caller sends
 * messages on it and receives the server's through a callback, on the same connections as calls.
 * A stream is never retried by the library; the watch API on top of it (cl_watcher, cl_watch)
 * resumes its watches on another endpoint after a lost connection, as etcd's clientv3 does, and
 * the lease keep-alive API (cl_lessor, cl_keepalive) continues its keep-alives there. */
#ifndef CAIRN_CLIENT_H
#define CAIRN_CLIENT_H

#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "common/grpc_frame.h"
#include "common/grpc_meta.h"
#include "etcdserverpb/rpc.pb-c.h"

/* ---------------------------------------------------------------------------------------------- */
/* Clients */

struct cl_client;

struct cl_options {
    const char *const *endpoints; /* "host:port" or "http://host:port"; copied by cl_client_new */
    size_t n_endpoints;           /* at least 1 */
    unsigned conns_per_endpoint;  /* HTTP/2 connections to each endpoint (default 1) */
    uint64_t dial_timeout_ms;     /* TCP connect + name lookup per attempt (default 2000) */
    unsigned max_retries;         /* further attempts of a retryable call without a deadline
                                     (default 2 × endpoints) */
    uint64_t backoff_ms;          /* delay before the first retry, doubled up to 1 s (default 25) */
    size_t max_recv_bytes;        /* largest response message accepted (default 2^31 - 1) */
};

/* Fills o with the defaults above and no endpoints. */
void cl_options_default(struct cl_options *o);

/* Makes a client on loop. Validates every endpoint (a malformed one, or a scheme other than
 * http://, is CAIRN_E_INVALID_ARGUMENT, and *out stays NULL) but connects only when a call needs a
 * connection. The client keeps handles on loop until cl_client_close(). */
int cl_client_new(uv_loop_t *loop, const struct cl_options *o, struct cl_client **out);

/* Closes the client: calls in flight or waiting complete with CANCELLED "grpc: the client
 * connection is closing", connections close, and once every handle is closed the client is freed
 * and done(arg) runs (done may be NULL). The client must not be used after this call. */
void cl_client_close(struct cl_client *c, void (*done)(void *arg), void *arg);

/* The loop the client runs on. */
uv_loop_t *cl_client_loop(const struct cl_client *c);

/* The endpoints, normalized to "host:port", in the order given. Borrowed from the client. */
size_t cl_client_endpoints(const struct cl_client *c, const char *const **out);

/* ---------------------------------------------------------------------------------------------- */
/* Methods */

/* A unary gRPC method of etcd's API. */
struct cl_method {
    const char *path;                           /* HTTP/2 :path, "/etcdserverpb.KV/Range" */
    const ProtobufCMessageDescriptor *request;  /* the request message type */
    const ProtobufCMessageDescriptor *response; /* the response message type */
    bool idempotent;                            /* may run twice: retried after it was sent */
};

extern const struct cl_method cl_method_range;              /* KV.Range (idempotent) */
extern const struct cl_method cl_method_put;                /* KV.Put */
extern const struct cl_method cl_method_delete_range;       /* KV.DeleteRange */
extern const struct cl_method cl_method_txn;                /* KV.Txn */
extern const struct cl_method cl_method_compact;            /* KV.Compact */
extern const struct cl_method cl_method_status;             /* Maintenance.Status (idempotent) */
extern const struct cl_method cl_method_hash;               /* Maintenance.Hash (idempotent) */
extern const struct cl_method cl_method_hash_kv;            /* Maintenance.HashKV (idempotent) */
extern const struct cl_method cl_method_alarm;              /* Maintenance.Alarm */
extern const struct cl_method cl_method_member_list;        /* Cluster.MemberList (idempotent) */
extern const struct cl_method cl_method_lease_grant;        /* Lease.LeaseGrant (idempotent) */
extern const struct cl_method cl_method_lease_revoke;       /* Lease.LeaseRevoke (idempotent) */
extern const struct cl_method cl_method_lease_time_to_live; /* Lease.LeaseTimeToLive (idem.) */
extern const struct cl_method cl_method_lease_leases;       /* Lease.LeaseLeases (idempotent) */

/* ---------------------------------------------------------------------------------------------- */
/* Calls */

struct cl_call;

/* Runs once per started call, on the loop thread, with the results in the call. */
typedef void (*cl_call_cb)(struct cl_call *call);

struct cl_call {
    /* set by the caller before cl_call_start() */
    cl_call_cb cb;       /* required */
    void *data;          /* the caller's */
    uint64_t timeout_ms; /* deadline from the start, sent as grpc-timeout; 0: none */

    /* results, read in or after cb; owned by the call until cl_call_reset() */
    int code;                   /* GRPC_OK or the failure's gRPC status */
    char *message;              /* the status message (NUL-terminated), or NULL when none */
    ProtobufCMessage *response; /* the decoded response when code is GRPC_OK, else NULL */
    const char *endpoint;       /* "host:port" of the last attempt, or NULL; borrowed from the
                                   client */
    unsigned attempts;          /* how many times the request was sent or tried */

    /* private to the library */
    struct cl_client *client_;       /* while started */
    const struct cl_method *method_; /* while started */
    uint8_t *body_;                  /* framed request (malloc'd) */
    size_t body_len_;                /* bytes in body_ */
    size_t body_off_;                /* bytes of body_ handed to nghttp2 */
    struct cl_conn *conn_;           /* connection of the current attempt, or NULL */
    int32_t stream_id_;              /* HTTP/2 stream of the current attempt, or 0 */
    bool sent_;                      /* bytes of the request reached a socket */
    bool headers_ok_;                /* response headers said 200 + application/grpc */
    int state_;                      /* where the call is (client/call.c) */
    uint64_t deadline_;              /* uv_now() time the call times out, or 0 */
    uint64_t wake_;                  /* uv_now() time of the next retry while backing off */
    unsigned next_endpoint_;         /* endpoint of the next attempt */
    struct grpc_frame_decoder dec_;  /* response message reassembly */
    uint8_t *resp_buf_;              /* the response message's bytes (malloc'd), or NULL */
    size_t resp_len_;                /* bytes in resp_buf_ */
    int http_status_;                /* :status of the response */
    struct cl_call *prev_, *next_;   /* the client's list of started calls */
    struct cl_call *qnext_;          /* a connection's queue of calls waiting for it */
    struct cl_stream *stream_;       /* the stream this call carries, or NULL for a unary call */
};

/* Starts call with request req of method m (req's descriptor must be m->request). The call must
 * be zeroed or reset, with cb set. Returns 0 — cb will run exactly once, later — or a negative
 * error (CAIRN_E_INVALID_ARGUMENT for a wrong request type, CAIRN_E_NOMEM), in which case cb will
 * not run. */
int cl_call_start(struct cl_client *c, struct cl_call *call, const struct cl_method *m,
                  const ProtobufCMessage *req);

/* Cancels a started call: its stream is reset and cb runs (from the loop) with CANCELLED
 * "context canceled" — unless the call had already completed, in which case nothing changes. */
void cl_call_cancel(struct cl_call *call);

/* Frees what the call's results own and zeroes everything but cb, data and timeout_ms, so the
 * struct can be started again. Must not be called while the call is in flight. */
void cl_call_reset(struct cl_call *call);

/* The error text of a finished call as etcd's Go client renders it: "" for OK; the bare message
 * for etcd's own errors ("etcdserver: ...", "mvcc: ..."); "context deadline exceeded" and
 * "context canceled" as they are; else "rpc error: code = <Name> desc = <message>". Returns a
 * malloc'd string (the caller frees it) or NULL when out of memory. */
char *cl_call_error_text(const struct cl_call *call);

/* Typed starts, for readability: cl_range(c, &call, &req) is cl_call_start() with
 * cl_method_range. The typed response is (Etcdserverpb__RangeResponse *)call.response. */
#define CL_TYPED_START(name, method, Req)                                             \
    static inline int name(struct cl_client *c, struct cl_call *call, const Req *req) \
    {                                                                                 \
        return cl_call_start(c, call, &(method), &req->base);                         \
    }
CL_TYPED_START(cl_range, cl_method_range, Etcdserverpb__RangeRequest)
CL_TYPED_START(cl_put, cl_method_put, Etcdserverpb__PutRequest)
CL_TYPED_START(cl_delete_range, cl_method_delete_range, Etcdserverpb__DeleteRangeRequest)
CL_TYPED_START(cl_txn, cl_method_txn, Etcdserverpb__TxnRequest)
CL_TYPED_START(cl_compact, cl_method_compact, Etcdserverpb__CompactionRequest)
CL_TYPED_START(cl_status, cl_method_status, Etcdserverpb__StatusRequest)
CL_TYPED_START(cl_hash, cl_method_hash, Etcdserverpb__HashRequest)
CL_TYPED_START(cl_hash_kv, cl_method_hash_kv, Etcdserverpb__HashKVRequest)
CL_TYPED_START(cl_alarm, cl_method_alarm, Etcdserverpb__AlarmRequest)
CL_TYPED_START(cl_member_list, cl_method_member_list, Etcdserverpb__MemberListRequest)
CL_TYPED_START(cl_lease_grant, cl_method_lease_grant, Etcdserverpb__LeaseGrantRequest)
CL_TYPED_START(cl_lease_revoke, cl_method_lease_revoke, Etcdserverpb__LeaseRevokeRequest)
CL_TYPED_START(cl_lease_time_to_live, cl_method_lease_time_to_live,
               Etcdserverpb__LeaseTimeToLiveRequest)
CL_TYPED_START(cl_lease_leases, cl_method_lease_leases, Etcdserverpb__LeaseLeasesRequest)
#undef CL_TYPED_START

/* ---------------------------------------------------------------------------------------------- */
/* Streams */

/* A bidirectional streaming gRPC method: a cl_method whose idempotent flag is ignored. */
extern const struct cl_method cl_method_watch;            /* Watch.Watch */
extern const struct cl_method cl_method_lease_keep_alive; /* Lease.LeaseKeepAlive */

struct cl_stream;
struct cl_watch_frags;

/* Runs for each message the server sends, in order, on the loop thread. msg is decoded with the
 * method's response type and owned by the callee, who frees it with cl_stream_msg_free() (not
 * protobuf_c_message_free_unpacked(): its parts share one allocation). */
typedef void (*cl_stream_msg_cb)(struct cl_stream *s, ProtobufCMessage *msg);

/* Frees a message a stream delivered, with everything it points to. NULL is ignored. */
void cl_stream_msg_free(ProtobufCMessage *msg);

/* Runs once per opened stream when it has ended: after every message it delivered, with the
 * status in s->code and s->message. After it returns the struct may be reset or freed. */
typedef void (*cl_stream_end_cb)(struct cl_stream *s);

/* A stream is a handle in the libuv style: the caller owns the memory, sets on_msg, on_end (and
 * data), opens it, and keeps the struct alive until on_end has run. */
struct cl_stream {
    /* set by the caller before cl_stream_open() */
    cl_stream_msg_cb on_msg; /* required */
    cl_stream_end_cb on_end; /* required */
    void *data;              /* the caller's */
    bool require_leader;     /* send etcd's "hasleader: true" metadata (clientv3's
                                WithRequireLeader): without a leader the server ends the stream
                                with UNAVAILABLE "etcdserver: no leader" */

    /* results, read in or after on_end; owned by the stream until cl_stream_reset() */
    int code;             /* GRPC_OK (the server ended it with OK) or the failure's status */
    char *message;        /* the status message, or NULL */
    const char *endpoint; /* "host:port" it went to, or NULL; borrowed from the client */

    /* private to the library */
    struct cl_call call_;              /* the HTTP/2 stream, carried as a call is */
    size_t body_cap_;                  /* bytes allocated at call_.body_ (the send queue) */
    bool half_closed_;                 /* cl_stream_close_send() ran */
    bool in_rx_;                       /* on the client's list of streams with messages due */
    ProtobufCMessage **rx_;            /* received messages not yet delivered */
    size_t rx_head_, rx_len_, rx_cap_; /* the queue in rx_ */
    struct cl_stream *rx_next_;        /* the client's list of streams with messages due */
};

/* Opens stream s of method m on c: on the next endpoint in the client's round robin that is not
 * resting after failures, after delay_ms (0: at once). s must be zeroed or reset, with on_msg and
 * on_end set. Returns 0 — on_end will run exactly once, later — or a negative error
 * (CAIRN_E_INVALID_ARGUMENT, UV_ECANCELED when the client is closing), and on_end will not run.
 * Messages sent before the stream is connected wait for it. A stream is never retried: a lost
 * connection ends it with UNAVAILABLE. */
int cl_stream_open(struct cl_client *c, struct cl_stream *s, const struct cl_method *m,
                   uint64_t delay_ms);

/* Queues msg (of m->request's type) for sending; it is encoded at once, so the caller may free it
 * when this returns. Returns 0, CAIRN_E_INVALID_ARGUMENT (wrong type, stream not open, ended or
 * half-closed) or CAIRN_E_NOMEM. */
int cl_stream_send(struct cl_stream *s, const ProtobufCMessage *msg);

/* Half-closes the stream: once what is queued is sent, the request side ends (END_STREAM). The
 * server's messages still arrive until it ends the stream. */
void cl_stream_close_send(struct cl_stream *s);

/* Cancels the stream: it is reset, undelivered messages are dropped, and on_end runs (from the
 * loop) with CANCELLED "context canceled" — unless it had ended already. */
void cl_stream_cancel(struct cl_stream *s);

/* Frees what the stream's results own and zeroes everything but on_msg, on_end, data and
 * require_leader. Must not
 * be called between cl_stream_open() and the end of on_end. */
void cl_stream_reset(struct cl_stream *s);

/* ---------------------------------------------------------------------------------------------- */
/* Watches */

/* A watcher is one Watch stream carrying any number of watches (clientv3's watchGrpcStream). It
 * is opened on the first watch and, when its connection is lost or the server answers
 * UNAVAILABLE or INTERNAL, opened again on another endpoint (with a backoff of up to 1 s) where
 * every watch resumes from the revision after the last one it delivered: no event is delivered
 * twice or skipped. Made by cl_watcher_new (the library owns its memory) on a client. */
struct cl_watcher;

struct cl_watch;

/* Runs for each response of a watch, on the loop thread: a batch of events (fragments of one
 * batch are reassembled first), a progress notification (no events, header.revision), the
 * creation (only with created_notify), or — last of all — canceled set: the server cancelled the
 * watch (compact_revision set when start_revision was compacted, cancel_reason), or it ended
 * with an error (w->code, w->message), or cl_watch_cancel() ran. resp is borrowed for the call
 * and its header is never NULL. After the last response the struct may be freed (also inside
 * the callback). */
typedef void (*cl_watch_cb)(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp);

struct cl_watch_options {
    const uint8_t *key;       /* the key, or the start of the range */
    size_t key_len;           /* bytes in key */
    const uint8_t *range_end; /* end of the range [key, range_end), "\0" for every key from key on;
                                 NULL for the key alone */
    size_t range_end_len;     /* bytes in range_end */
    int64_t start_revision;   /* first revision to deliver; 0: from the next write on */
    bool prev_kv;             /* events carry the key's previous version */
    bool no_put;              /* leave out PUT events */
    bool no_delete;           /* leave out DELETE events */
    bool progress_notify;     /* the server sends progress notifications when idle */
    bool fragment;            /* the server may split large batches (reassembled here) */
    bool created_notify;      /* deliver the creation response (once, not when resuming) */
};

struct cl_watch {
    /* set by the caller before cl_watch_start() */
    cl_watch_cb cb; /* required */
    void *data;     /* the caller's */

    /* results */
    int code;      /* with the last response: GRPC_OK when the server cancelled the watch,
                      CANCELLED after cl_watch_cancel(), or the stream's error */
    char *message; /* the error as clientv3's WatchResponse.Err() renders it ("etcdserver: mvcc:
                      required revision has been compacted"), or NULL; owned by the watch, freed
                      by cl_watch_reset() */
    int64_t id;    /* the server's watch ID on the current stream, -1 while not created */

    /* private to the library */
    struct cl_watcher *watcher_;           /* while started */
    Etcdserverpb__WatchCreateRequest req_; /* the create request, start_revision updated */
    uint8_t *key_, *end_;                  /* copies of the range */
    Etcdserverpb__WatchCreateRequest__FilterType filters_[2];
    int state_;                   /* where the watch is (client/watch.c) */
    bool created_once_;           /* the first creation was seen */
    bool created_notify_;         /* options' created_notify */
    struct cl_watch_frags *frag_; /* fragments of a batch being reassembled */
    struct cl_watch *next_;       /* the watcher's list */
};

/* Makes a watcher on c. Returns 0 and *out, or CAIRN_E_NOMEM. It opens a stream only when a watch
 * starts. With require_leader its streams carry etcd's "hasleader" metadata (as etcdctl's watch
 * does): a server without a leader then ends them with "etcdserver: no leader", which ends every
 * watch with that error (not resumed, as in clientv3). */
int cl_watcher_new(struct cl_client *c, bool require_leader, struct cl_watcher **out);

/* Closes the watcher: every watch still running gets its last response (canceled, CANCELLED),
 * the stream is cancelled, and the watcher frees itself once the stream has ended. Must be called
 * before cl_client_close() ends the client. */
void cl_watcher_close(struct cl_watcher *wr);

/* Sends a progress request: every watch of the watcher gets a progress notification (etcd 3.4
 * answers it once the watchers are synced). Returns 0 or a negative error. */
int cl_watcher_request_progress(struct cl_watcher *wr);

/* Starts watch w (zeroed or reset, cb set) with options o on wr. o and what it points to may be
 * freed once this returns. Returns 0 — cb will run later, until a response with canceled — or a
 * negative error (CAIRN_E_INVALID_ARGUMENT, CAIRN_E_NOMEM) and cb will not run. */
int cl_watch_start(struct cl_watcher *wr, struct cl_watch *w, const struct cl_watch_options *o);

/* Cancels a running watch: the server is told, and cb runs (from the loop) with its last
 * response, canceled, code CANCELLED "context canceled". Nothing happens if it has ended. */
void cl_watch_cancel(struct cl_watch *w);

/* Frees what the watch's results own and zeroes everything but cb and data. Must not be called
 * while the watch runs. */
void cl_watch_reset(struct cl_watch *w);

/* ---------------------------------------------------------------------------------------------- */
/* Lease keep-alives */

/* A lessor is one LeaseKeepAlive stream carrying the keep-alives of any number of leases
 * (clientv3's lessor: one per client — make one and share it). It is opened on the first
 * keep-alive and, when it ends with an error other than a cancel (a lost connection is
 * UNAVAILABLE), opened again on the next endpoint — at once the first time, then after 50 ms
 * doubling to 1 s — where every keep-alive continues. Made by cl_lessor_new (the library owns its
 * memory). A lessor must be closed before cl_client_close(). */
struct cl_lessor;

struct cl_keepalive;

/* Runs for each keep-alive response of the lease, on the loop thread; resp is borrowed for the
 * call and resp->header is never NULL. The last call has k->ended set (after it the struct may be
 * freed, also inside the callback): resp is the response that ended it — with --once semantics
 * the one response (code GRPC_OK), or one with TTL 0 (the lease expired or was revoked: code
 * GRPC_NOT_FOUND, message "etcdserver: requested lease not found") — or NULL when it ended
 * without one: cl_keepalive_cancel() or cl_lessor_close() (CANCELLED "context canceled"), no
 * response within the lease's TTL (DEADLINE_EXCEEDED "context deadline exceeded", as clientv3's
 * keep-alive deadline), or a stream error the lessor does not retry (its status). */
typedef void (*cl_keepalive_cb)(struct cl_keepalive *k,
                                const Etcdserverpb__LeaseKeepAliveResponse *resp);

struct cl_keepalive {
    /* set by the caller before cl_keepalive_start() */
    cl_keepalive_cb cb; /* required */
    void *data;         /* the caller's */

    /* results */
    int64_t id;    /* the lease */
    int64_t ttl;   /* the TTL of the last response, 0 before the first */
    bool ended;    /* the last callback is running or has run */
    int code;      /* with the last callback: GRPC_OK or the reason it ended */
    char *message; /* with the last callback: the reason's text, or NULL; owned by the struct,
                      freed by cl_keepalive_reset() */

    /* private to the library */
    struct cl_lessor *lessor_;  /* while started */
    int state_;                 /* where it is (client/lease.c) */
    bool once_;                 /* ends with the first response */
    uint64_t next_at_;          /* uv_now() time the next keep-alive is sent */
    uint64_t deadline_;         /* uv_now() time it ends without a response, 0: none */
    struct cl_keepalive *next_; /* the lessor's list */
};

/* Makes a lessor on c. Returns 0 and *out, or CAIRN_E_NOMEM. */
int cl_lessor_new(struct cl_client *c, struct cl_lessor **out);

/* Closes the lessor: every keep-alive still running gets its last callback (CANCELLED), the
 * stream is cancelled, and the lessor frees itself once its stream and timer have ended. */
void cl_lessor_close(struct cl_lessor *lr);

/* Starts keeping lease id alive with k (zeroed or reset, cb set): a keep-alive is sent at once,
 * then TTL/3 after each response (every 500 ms while none comes, as clientv3), until the lease
 * is gone, k is cancelled or the lessor closes. With once, k ends after the first response
 * (clientv3's KeepAliveOnce). Returns 0 — cb will run later — or CAIRN_E_INVALID_ARGUMENT (k
 * running, no cb, the lessor closing) and cb will not run. */
int cl_keepalive_start(struct cl_lessor *lr, struct cl_keepalive *k, int64_t id, bool once);

/* Stops keeping the lease alive (the lease itself stays until its TTL runs out): cb runs (from
 * the loop) for the last time, with CANCELLED "context canceled". Nothing if it has ended. */
void cl_keepalive_cancel(struct cl_keepalive *k);

/* Frees what k's results own and zeroes everything but cb and data. Not while it runs. */
void cl_keepalive_reset(struct cl_keepalive *k);

/* ---------------------------------------------------------------------------------------------- */
/* Blocking use */

/* A client on a private loop, for programs without a loop of their own (cairnctl). Not for use
 * from inside a libuv callback. */
struct cl_sync;

/* Makes a blocking client with options o (see cl_client_new). Returns 0 and *out, or an error. */
int cl_sync_new(const struct cl_options *o, struct cl_sync **out);

/* Closes the client and its loop and frees it. */
void cl_sync_free(struct cl_sync *s);

/* Runs one call to completion: starts it (call->cb is ignored and may be NULL; timeout_ms is
 * honoured) and runs the private loop until it finishes. Returns call->code (GRPC_OK or the
 * failure's status), with the results in call as for cl_call_start(); cl_call_reset() it after.
 * A start error (bad request type, out of memory) is returned as GRPC_INTERNAL with a message. */
int cl_sync_call(struct cl_sync *s, struct cl_call *call, const struct cl_method *m,
                 const ProtobufCMessage *req);

/* Runs s's private loop until *done is true — set by a callback of what was started on
 * cl_sync_client(s), such as a stream's on_end — or nothing is left to run. */
void cl_sync_run(struct cl_sync *s, const bool *done);

/* The client inside s (for cl_client_endpoints(), or streams run by cl_sync_run()). */
struct cl_client *cl_sync_client(struct cl_sync *s);

#endif
