/* api/server.h — etcd's v3 services (KV, Maintenance, Cluster, Lease, Health) on a gRPC server.
 *
 * The server answers reads from the store directly and hands every write to a proposer (raft/
 * proposer.h), replying when it is applied and durable. cmd/cairnd builds the configuration from
 * flags and wires server, store and proposer together on one loop. */
#ifndef CAIRN_API_SERVER_H
#define CAIRN_API_SERVER_H

#include <uv.h>

#include "api/grpc.h"
#include "raft/proposer.h"
#include "store/store.h"

/* The etcd version this server speaks, as Maintenance.Status reports it (clients check it). */
#define API_ETCD_VERSION "3.4.0"

#define API_MAX_METHODS 96
#define API_MAX_MEMBERS 16

/* etcd's request timeout: how long a forwarded write may take (7 s: 5 s + 2 × election timeout). */
#define API_REQUEST_TIMEOUT_MS 7000

struct cl_client;
struct lessor;

struct api_member {
    uint64_t id;
    const char *name;
    const char *const *peer_urls;
    size_t n_peer_urls;
    const char *const *client_urls;
    size_t n_client_urls;
};

struct api_config {
    uint64_t cluster_id;
    struct api_member self;           /* this member (strings must outlive the server) */
    const struct api_member *members; /* the initial cluster, this member included */
    const char *cluster_token;        /* --initial-cluster-token: IDs of added members */
    size_t n_members;
    size_t max_request_bytes;          /* etcd's --max-request-bytes: larger requests are refused */
    unsigned max_txn_ops;              /* etcd's --max-txn-ops */
    unsigned election_ms;              /* etcd's --election-timeout (lease minimum TTL, the leader
                                          monitor of streams); 0: 1000 */
    unsigned heartbeat_ms;             /* etcd's --heartbeat-interval; 0: 100 */
    uint64_t watch_progress_notify_ms; /* progress notifications of watches; 0 → 10 minutes */
};

struct api_server {
    struct api_config cfg;
    uv_loop_t *loop;
    store *st;
    struct proposer *prop;
    struct grpc_server *grpc;
    struct grpc_method methods[API_MAX_METHODS]; /* registered with grpc */
    size_t n_methods;
    bool raising_nospace;         /* this member's NOSPACE alarm is proposed, not yet applied */
    bool stopping;                /* shutdown began */
    struct cl_client *fwd_client; /* to the leader that forwarded writes go to (api/forward.c) */
    uint64_t fwd_leader;          /* its member id */
    uv_timer_t publish_timer;     /* retries publishing this member's attributes */
    bool publish_started;         /* publish_timer is initialized */
    bool published;               /* they are applied */
    bool publishing;              /* a publish is in flight */
    struct api_ctx *publish_ctx;
    struct watch_hub *watch; /* api/watch.c */
    struct lessor *lessor;   /* lease expiry on the leader (api/lease.c, raft/lessor.h) */
    void (*shutdown_done)(void *arg);
    void *shutdown_arg;
};

/* Creates the gRPC server and registers every etcd method (those not built yet answer
 * UNIMPLEMENTED). st and prop must outlive the server. */
int api_server_init(struct api_server *s, uv_loop_t *loop, store *st, struct proposer *prop,
                    const struct api_config *cfg);

/* The proposer's forwarding hook (raft/node.h): sends a follower's write to the leader, with
 * resent_after set in the copy sent (req itself is borrowed and left as it is). owner is the
 * api_server. */
int api_forward(void *owner, const Cairn__InternalRequest *req, uint64_t leader,
                uint64_t resent_after);

/* The proposer's read index hook: asks the leader for its read index. owner is the api_server. */
int api_ask_read_index(void *owner, uint64_t leader);

/* The store fetch of member self (node_options.fetch_store): replaces st with another member's
 * copy that has applied at least `index` (blocking), asking the leader first when it is known
 * (leader != 0). The other members' client URLs come from st's member table. */
int api_fetch_store(store *st, uint64_t self, uint64_t leader, uint64_t index);

/* The proposer's applied hook: watches see the applied entries' events. owner is the api_server. */
void api_applied(void *owner);

/* Starts publishing this member's name and URLs through the log, retrying until it is applied. */
void api_cluster_publish_start(struct api_server *s);

/* Listens on host:port; 0 or a negative libuv error. */
int api_server_listen(struct api_server *s, const char *host, int port);

/* Graceful shutdown (see grpc_server_shutdown); done runs when every connection is closed. */
void api_server_shutdown(struct api_server *s, void (*done)(void *arg), void *arg);

/* Frees what init allocated; after shutdown completed. */
void api_server_free(struct api_server *s);

#endif
