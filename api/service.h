/* api/service.h — what the service files (kv.c, maintenance.c, cluster.c, health.c) share: the
 * per-call context, request decoding, response encoding, errors and the response header. Internal
 * to api/. */
#ifndef CAIRN_API_SERVICE_H
#define CAIRN_API_SERVICE_H

#include <protobuf-c/protobuf-c.h>

#include "api/server.h"
#include "etcdserverpb/rpc.pb-c.h"

/* One call in progress: its arena holds the decoded request, the store's results and the response,
 * and is freed with the context when the call is answered. */
struct api_ctx {
    struct api_server *srv;
    struct grpc_call *call;
    struct arena arena;
    ProtobufCAllocator alloc; /* protobuf-c allocations from the arena */
    struct proposal prop;     /* for writes */
    Cairn__InternalRequest ireq;
    uint64_t quota_cost; /* the write's quota cost (etcd's), checked before proposing */
    struct read_wait rw; /* a linearizable read waiting for its read index */
    void (*req_read)(struct api_ctx *c); /* what runs once it may */
    void *req;                           /* the decoded request of a read that waits */
    struct store_txn_req txn_req;        /* a waiting read-only txn, converted */
};

/* Runs read(c) now when linearizable reads may run at once, or once the read index is applied
 * here; answers with the error when it cannot be obtained. */
void api_linearizable(struct api_ctx *c, void (*read)(struct api_ctx *c));

/* etcd's interceptors: the error a call is refused with before its handler looks at it —
 * LEARNER_NOT_SUPPORTED on a learner for what learners do not serve (all but Status and Range),
 * NO_LEADER for a client that requires a leader while there is none — or 0. api_ctx_new() asks
 * it for unary calls; streams (Watch, LeaseKeepAlive) ask it when they open. */
int api_call_refusal(struct api_server *srv, struct grpc_call *call);

/* A new context for call (NULL when memory is exhausted or api_call_refusal() refuses it; the
 * call is then answered). */
struct api_ctx *api_ctx_new(struct api_server *srv, struct grpc_call *call);

/* Answers with status OK and msg (packed here), or with the error code and message of err
 * (cairn_err_grpc_code / cairn_strerror), and frees the context. */
void api_reply(struct api_ctx *c, const ProtobufCMessage *msg);
void api_reply_err(struct api_ctx *c, int err);
void api_reply_status(struct api_ctx *c, int grpc_status, const char *message);

/* Decodes a request message into the context's arena; NULL after answering the call with grpc-go's
 * "grpc: error unmarshalling request" (INTERNAL) when the bytes are not a valid message. */
void *api_decode(struct api_ctx *c, const ProtobufCMessageDescriptor *d, const uint8_t *msg,
                 size_t len);

/* Fills a top-level response header as etcd's does: cluster and member ID, raft term, and the
 * current revision when the handler left it 0. */
void api_fill_header(struct api_server *s, Etcdserverpb__ResponseHeader *h);

/* The header of the Cluster service's responses: cluster and member ID and raft term, no revision
 * (etcd's cluster server fills no revision). */
void api_fill_member_header(struct api_server *s, Etcdserverpb__ResponseHeader *h);

/* The store's current revision (a short read transaction), 0 on error. */
int64_t api_current_rev(struct api_server *s);

/* Proposes c->ireq (its request set by the caller) and calls done when applied. */
int api_propose(struct api_ctx *c, void (*done)(struct proposal *p, int err));

/* etcd's quotaAlarmer: whether a write of this quota cost fits; when it does not, this member's
 * NOSPACE alarm is raised (proposed, unless raised already) and the caller answers NO_SPACE. */
bool api_quota_check(struct api_server *s, uint64_t cost);

/* Proposes this member's NOSPACE alarm unless it is raised or being raised. */
void api_raise_nospace(struct api_server *s);

/* Method tables of the services: each appends its methods to s->methods. */
void api_kv_register(struct api_server *s);
void api_maintenance_register(struct api_server *s);
void api_cluster_register(struct api_server *s);
void api_health_register(struct api_server *s);
void api_unimplemented_register(struct api_server *s);
void api_forward_register(struct api_server *s);

/* Starts call (caller-owned; cb and data set, timeout_ms 0 for etcd's request timeout) of one of
 * leader's internal methods, through the client forwarded writes use. Returns 0 (cb will run) or
 * an error (CAIRN_E_NO_LEADER: the leader has not published where clients reach it). */
struct cl_call;
struct cl_method;
int api_leader_call(struct api_server *s, uint64_t leader, struct cl_call *call,
                    const struct cl_method *m, const ProtobufCMessage *req);

/* host:port of the first client URL leader published, into out (n bytes); CAIRN_E_NO_LEADER while
 * it has published none. */
int api_leader_endpoint(struct api_server *s, uint64_t leader, char *out, size_t n);

/* The store for a member behind the leader's log: the leader's /cairn.Internal/Snapshot
 * (api/snapshot.c; api_fetch_store() in server.h is the other side). */
void api_snapshot_register(struct api_server *s);

/* The error of a failed call to the leader (its etcd error, else "leader changed"); forgets the
 * leader's client when the leader no longer leads. */
int api_leader_error(struct api_server *s, const struct cl_call *call);

/* etcd's Lease service and the leader's internal lease methods (api/lease.c); stop closes the
 * lessor's timer at shutdown, free releases it after the loop ended. */
void api_lease_register(struct api_server *s);
void api_lease_stop(struct api_server *s);
void api_lease_free(struct api_server *s);

/* Closes the client forwarded writes go through (at shutdown). */
void api_forward_stop(struct api_server *s);

/* Stops publishing (at shutdown). */
void api_cluster_publish_stop(struct api_server *s);

/* Appends one method (path, handlers) with ctx = s. */
void api_add_method(struct api_server *s, const char *path, bool streaming,
                    void (*on_message)(struct grpc_call *, const uint8_t *, size_t, void *));

#endif
