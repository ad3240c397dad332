/* raft/identity.h — member and cluster IDs, derived deterministically as etcd derives them.
 *
 * etcd (etcdserver/api/membership): a member's ID is the first 8 bytes, big-endian, of the SHA-1 of
 * its peer URLs sorted and concatenated, followed by the cluster token; the cluster's ID is the
 * same over its member IDs sorted, each as 8 big-endian bytes. So a cluster started with the same
 * flags gets the same IDs on every member, and on etcd. */
#ifndef CAIRN_RAFT_IDENTITY_H
#define CAIRN_RAFT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

/* Member ID from its peer URLs (any order) and the cluster token. */
uint64_t identity_member_id(const char *const *peer_urls, size_t n, const char *token);

/* Cluster ID from its member IDs (any order). */
uint64_t identity_cluster_id(const uint64_t *member_ids, size_t n);

#endif
