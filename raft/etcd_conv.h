/* raft/etcd_conv.h — etcd's wire messages (protobuf-c structs) to store requests, and store results
 * back to etcd's response messages.
 *
 * Both the apply path (raft/apply.c, for replicated writes) and the read path (api/kv.c) speak the
 * store's language through these. Conversions to the store borrow the protobuf's bytes; conversions
 * from the store build responses in the caller's arena, pointing at the result's bytes — which live
 * in the same arena for write transactions and in the read transaction's map for reads, so a
 * response must be packed before its transaction ends and its arena is reset. */
#ifndef CAIRN_RAFT_ETCD_CONV_H
#define CAIRN_RAFT_ETCD_CONV_H

#include "etcdserverpb/rpc.pb-c.h"
#include "store/store.h"

/* Deepest txn nesting accepted (etcd sets no limit; decoding unbounded nesting would exhaust the
 * stack). */
#define CONV_MAX_TXN_DEPTH 64

void conv_range_req(const Etcdserverpb__RangeRequest *in, struct store_range_req *out);
void conv_put_req(const Etcdserverpb__PutRequest *in, struct store_put_req *out);
void conv_delete_req(const Etcdserverpb__DeleteRangeRequest *in, struct store_delete_req *out);

/* Converts a txn request tree; NOMEM on exhaustion. */
int conv_txn_req(const Etcdserverpb__TxnRequest *in, struct arena *a, struct store_txn_req *out);

/* Checks, on the encoded bytes of a TxnRequest and before decoding it, that txns nest at most
 * max_depth deep. Returns 0, or CAIRN_E_INVALID_ARGUMENT when deeper or malformed. */
int conv_txn_depth_check(const uint8_t *buf, size_t len, int max_depth);

/* Responses (NULL on exhaustion). The header carries only the revision; the server fills in
 * cluster_id, member_id and raft_term of the top-level header (nested ones keep only the revision,
 * as etcd's do). */
Etcdserverpb__ResponseHeader *conv_header(int64_t revision, struct arena *a);
Mvccpb__KeyValue *conv_kv(const struct store_kv *kv, struct arena *a);
Etcdserverpb__RangeResponse *conv_range_res(const struct store_range_res *r, struct arena *a);
Etcdserverpb__PutResponse *conv_put_res(const struct store_put_res *r, struct arena *a);
Etcdserverpb__DeleteRangeResponse *conv_delete_res(const struct store_delete_res *r,
                                                   struct arena *a);
Etcdserverpb__TxnResponse *conv_txn_res(const struct store_txn_res *r, struct arena *a);

#endif
