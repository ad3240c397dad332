/* common/error.h — the one error type of cairn: etcd's errors with their exact messages.
 *
 * Every layer (store, raft, api) returns these negative codes; api maps each to the gRPC status
 * code etcd 3.4 uses for it (etcdserver/api/v3rpc/rpctypes/error.go) and sends cairn_strerror() as
 * the grpc-message. 0 is success. Codes are stable within a process only; never persist or send
 * them. */
#ifndef CAIRN_COMMON_ERROR_H
#define CAIRN_COMMON_ERROR_H

/* X(name, grpc code, message). Messages are etcd's where etcd has the error; the ones marked
 * "cairn" are conditions etcd does not have (e.g. LMDB's key size limit) or local/system failures.
 */
#define CAIRN_ERRORS(X)                                                                           \
    X(EMPTY_KEY, 3, "etcdserver: key is not provided")                                            \
    X(KEY_NOT_FOUND, 3, "etcdserver: key not found")                                              \
    X(VALUE_PROVIDED, 3, "etcdserver: value is provided")                                         \
    X(LEASE_PROVIDED, 3, "etcdserver: lease is provided")                                         \
    X(TOO_MANY_OPS, 3, "etcdserver: too many operations in txn request")                          \
    X(DUPLICATE_KEY, 3, "etcdserver: duplicate key given in txn request")                         \
    X(COMPACTED, 11, "etcdserver: mvcc: required revision has been compacted")                    \
    X(FUTURE_REV, 11, "etcdserver: mvcc: required revision is a future revision")                 \
    X(NO_SPACE, 8, "etcdserver: mvcc: database space exceeded")                                   \
    X(LEASE_NOT_FOUND, 5, "etcdserver: requested lease not found")                                \
    X(LEASE_EXIST, 9, "etcdserver: lease already exists")                                         \
    X(LEASE_TTL_TOO_LARGE, 11, "etcdserver: too large lease TTL")                                 \
    X(REQUEST_TOO_LARGE, 3, "etcdserver: request is too large")                                   \
    X(CORRUPT_CLUSTER, 15, "etcdserver: corrupt cluster")                                         \
    X(NO_LEADER, 14, "etcdserver: no leader")                                                     \
    X(NOT_LEADER, 9, "etcdserver: not leader")                                                    \
    X(LEADER_CHANGED, 14, "etcdserver: leader changed")                                           \
    X(STOPPED, 14, "etcdserver: server stopped")                                                  \
    X(TIMEOUT, 14, "etcdserver: request timed out")                                               \
    X(BAD_LEADER_TRANSFEREE, 9, "etcdserver: bad leader transferee")                              \
    /* etcd answers it with code Unknown: it is not in its gRPC error table */                    \
    X(LEADER_TRANSFER_TIMEOUT, 2, "etcdserver: request timed out, leader transfer took too long") \
    X(MEMBER_BAD_URLS, 3, "etcdserver: given member URLs are invalid")                            \
    X(TOO_MANY_LEARNERS, 9, "etcdserver: too many learner members in cluster")                    \
    X(MEMBER_EXIST, 9, "etcdserver: member ID already exist")                                     \
    X(PEER_URL_EXIST, 9, "etcdserver: Peer URLs already exists")                                  \
    X(MEMBER_NOT_FOUND, 5, "etcdserver: member not found")                                        \
    X(MEMBER_NOT_LEARNER, 9, "etcdserver: can only promote a learner member")                     \
    X(LEARNER_NOT_READY, 9,                                                                       \
      "etcdserver: can only promote a learner member which is in sync with leader")               \
    /* cairn: LMDB keys are at most 511 bytes */                                                  \
    X(KEY_TOO_LARGE, 3, "etcdserver: key is too large")                                           \
    /* cairn: a value above the store's hard limit (far above --max-request-bytes) */             \
    X(VALUE_TOO_LARGE, 3, "etcdserver: value is too large")                                       \
    /* cairn: an enum or field outside its domain (etcd would misbehave or panic) */              \
    X(INVALID_ARGUMENT, 3, "etcdserver: invalid argument")                                        \
    X(UNIMPLEMENTED, 12, "cairn: not implemented")                                                \
    /* local failures: the data directory and the machine */                                      \
    X(NOT_STORE, 9, "cairn: data directory holds something that is not a cairn store")            \
    X(STORE_VERSION, 9, "cairn: store format version is not supported by this build")             \
    X(CORRUPT, 15, "cairn: store data is corrupt")                                                \
    X(LOCKED, 9, "cairn: data directory is in use by another process")                            \
    X(IO, 15, "cairn: I/O error on the data directory")                                           \
    X(NO_DISK, 8, "cairn: no space left on the data directory's disk")                            \
    X(NOMEM, 8, "cairn: out of memory")                                                           \
    X(INTERNAL, 13, "cairn: internal error")                                                      \
    X(LEARNER_NOT_SUPPORTED, 14, "etcdserver: rpc not supported for learner")

enum cairn_err {
    CAIRN_OK = 0,
    CAIRN_E__FIRST = -1000,
#define CAIRN_X_ENUM(name, code, msg) CAIRN_E_##name,
    CAIRN_ERRORS(CAIRN_X_ENUM)
#undef CAIRN_X_ENUM
        CAIRN_E__LAST
};

/* Text of an error code: etcd's exact message for etcd's errors. Never NULL; unknown codes give
 * "cairn: unknown error". The string is static. */
const char *cairn_strerror(int err);

/* The error whose message is msg exactly (what another member answered), 0 when none is. */
int cairn_err_from_message(const char *msg);

/* gRPC status code etcd answers for this error (0 for CAIRN_OK, 2 UNKNOWN for unknown codes). */
int cairn_err_grpc_code(int err);

#endif
