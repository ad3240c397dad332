/* raft/transport.h — libraft's TCP transport with a cluster check on every peer connection.
 *
 * etcd refuses peer traffic between members of different clusters ("request cluster ID
 * mismatch"): a member started with a wrong --initial-cluster-token or --initial-cluster must not
 * take part in another cluster's raft. libraft's own handshake carries only the server's id and
 * address, so this transport wraps libraft's TCP transport and adds one exchange after it: the
 * connecting side sends its cluster ID (8 bytes, big-endian) and waits; the accepting side answers
 * with its own and hands the connection to libraft only when they are equal. Either side drops a
 * connection whose IDs differ and reports it through mismatch. */
#ifndef CAIRN_RAFT_TRANSPORT_H
#define CAIRN_RAFT_TRANSPORT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdint.h>

struct cluster_handshake;

struct cluster_transport {
    struct raft_uv_transport base; /* what libraft is given (first member) */
    struct raft_uv_transport tcp;  /* libraft's TCP transport, doing the connections */
    uv_loop_t *loop;
    uint64_t cluster_id;
    raft_uv_accept_cb accept_cb;          /* libraft's */
    struct cluster_handshake *handshakes; /* exchanges in progress */
    raft_uv_transport_close_cb close_cb;  /* libraft's, once closed */
    bool adopt;                           /* take the first peer's cluster ID as ours */
    bool closing;
    bool tcp_closed;  /* the TCP transport finished closing */
    unsigned pending; /* records of ours not freed yet */
    /* A peer answered with another cluster's ID. accepted: it connected to us (else we to it). */
    void (*mismatch)(struct cluster_transport *t, const char *address, uint64_t theirs,
                     bool accepted);
    void (*adopted)(struct cluster_transport *t);
    /* May be NULL: where to connect to reach peer id, in place of the address libraft has —
     * libraft's configuration keeps the address a member was added with, and its peer URLs may
     * have been updated since (etcd's MemberUpdate). Writes it into buf (len bytes) and returns
     * true, or returns false for libraft's. */
    bool (*address_of)(struct cluster_transport *t, raft_id id, char *buf, size_t len);
    void *data; /* the owner's */
};

/* With t->adopt set (a member joining an existing cluster, which cannot compute the cluster's ID
 * from its flags), the first peer's cluster ID becomes t->cluster_id and adopted() is called. */
/* Initializes t on loop for cluster_id (the inner TCP transport included). Returns 0 or a libraft
 * error code (message in t->base.errmsg). */
int cluster_transport_init(struct cluster_transport *t, uv_loop_t *loop, uint64_t cluster_id);

/* Sets the address to listen on (as raft_uv_tcp_set_bind_address); before raft_init. */
int cluster_transport_set_bind_address(struct cluster_transport *t, const char *address);

/* Releases the inner transport's memory; after libraft closed the transport. */
void cluster_transport_free(struct cluster_transport *t);

#endif
