/* client/methods.c — etcd's unary methods as the client calls them.
 *
 * idempotent follows etcd's clientv3 (3.4) retry policy: reads and status calls are repeatable;
 * Put, DeleteRange, Txn, Compact and Alarm are not, so they are retried only when they never
 * reached a server. clientv3 retries every Lease method (retryLeaseClient: repeatable). */
#include "client/cairn_client.h"

#define METHOD(var, service, name, Msg, idem)                                 \
    const struct cl_method var = {"/etcdserverpb." service "/" name,          \
                                  &etcdserverpb__##Msg##_request__descriptor, \
                                  &etcdserverpb__##Msg##_response__descriptor, idem}

METHOD(cl_method_range, "KV", "Range", range, true);
METHOD(cl_method_put, "KV", "Put", put, false);
METHOD(cl_method_delete_range, "KV", "DeleteRange", delete_range, false);
METHOD(cl_method_txn, "KV", "Txn", txn, false);
const struct cl_method cl_method_compact = {"/etcdserverpb.KV/Compact",
                                            &etcdserverpb__compaction_request__descriptor,
                                            &etcdserverpb__compaction_response__descriptor, false};
METHOD(cl_method_status, "Maintenance", "Status", status, true);
METHOD(cl_method_hash, "Maintenance", "Hash", hash, true);
const struct cl_method cl_method_hash_kv = {"/etcdserverpb.Maintenance/HashKV",
                                            &etcdserverpb__hash_kvrequest__descriptor,
                                            &etcdserverpb__hash_kvresponse__descriptor, true};
METHOD(cl_method_alarm, "Maintenance", "Alarm", alarm, false);
METHOD(cl_method_member_list, "Cluster", "MemberList", member_list, true);
METHOD(cl_method_lease_grant, "Lease", "LeaseGrant", lease_grant, true);
METHOD(cl_method_lease_revoke, "Lease", "LeaseRevoke", lease_revoke, true);
METHOD(cl_method_lease_time_to_live, "Lease", "LeaseTimeToLive", lease_time_to_live, true);
METHOD(cl_method_lease_leases, "Lease", "LeaseLeases", lease_leases, true);

/* Streaming methods: their paths and message types (a stream is never retried). */
METHOD(cl_method_watch, "Watch", "Watch", watch, false);
METHOD(cl_method_lease_keep_alive, "Lease", "LeaseKeepAlive", lease_keep_alive, false);
