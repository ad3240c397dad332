/* raft/members.h — the cluster's members as the store records them (cairn.MemberRecord).
 *
 * The member table is replicated state: members publish themselves, membership changes are
 * checked and recorded at apply time, identically on every member. This file reads and changes
 * it for raft/ and api/; the store keeps the records without interpreting them. */
#ifndef CAIRN_RAFT_MEMBERS_H
#define CAIRN_RAFT_MEMBERS_H

#include "cairn/internal.pb-c.h"
#include "store/store.h"

/* One member's record, decoded. */
struct member_rec {
    Cairn__MemberRecord *rec; /* rec->member is never NULL */
};

/* Every record (removed ones included), by id, decoded with protobuf-c's allocator a (NULL: malloc;
 * free each with members_free()). */
int members_load(store_tx *tx, ProtobufCAllocator *a, Cairn__MemberRecord ***out, size_t *n);
void members_free(Cairn__MemberRecord **list, size_t n);

/* members_load() through a view of st (store_tx_begin_view(): on the thread that owns writes, the
 * applied state), with malloc. */
int members_load_view(store *st, Cairn__MemberRecord ***out, size_t *n);

/* Writes rec (write transaction). Scratch memory from arena. */
int members_put(store_tx *tx, const Cairn__MemberRecord *rec, struct arena *arena);

/* Applies a member's publish: its name and URLs (learner flag and removal kept as recorded), and
 * records for the initial members that have none yet. */
int members_apply_publish(store_tx *tx, const Cairn__MemberPublish *p, struct arena *arena);

/* Checks and applies a membership change as etcd's cluster does: an etcd error (MEMBER_EXIST,
 * PEER_URL_EXIST, MEMBER_NOT_FOUND, MEMBER_NOT_LEARNER) changes nothing. */
int members_apply_change(store_tx *tx, const Cairn__MemberChange *c, struct arena *arena);

#endif
