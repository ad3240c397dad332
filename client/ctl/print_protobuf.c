/* client/ctl/print_protobuf.c — -w protobuf (printer_protobuf.go): the response message in
 * protobuf's wire encoding, as it came (fields in number order, zero values left out — what
 * etcd's gogo marshaller writes too). Endpoint lists have no message: not supported, as in
 * etcdctl. */
#include <stdlib.h>

#include "client/ctl/printer.h"

static int pb_out(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *p = malloc(n ? n : 1);
    if (!p)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    protobuf_c_message_pack(m, p);
    struct ctl_buf b = {0};
    ctl_buf_put(&b, p, n);
    free(p);
    return ctl_print_flush(&b);
}

static int pb_get(const struct ctl *ctl, const Etcdserverpb__RangeResponse *r)
{
    (void)ctl;
    return pb_out(&r->base);
}

static int pb_put(const struct ctl *ctl, const Etcdserverpb__PutResponse *r)
{
    (void)ctl;
    return pb_out(&r->base);
}

static int pb_del(const struct ctl *ctl, const Etcdserverpb__DeleteRangeResponse *r)
{
    (void)ctl;
    return pb_out(&r->base);
}

static int pb_txn(const struct ctl *ctl, const Etcdserverpb__TxnResponse *r)
{
    (void)ctl;
    return pb_out(&r->base);
}

static int pb_member_list(const struct ctl *ctl, const Etcdserverpb__MemberListResponse *r)
{
    (void)ctl;
    return pb_out(&r->base);
}

static int pb_member_add(const struct ctl *ctl, const Etcdserverpb__MemberAddResponse *r)
{
    (void)ctl;
    return pb_out(&r->base);
}

static int pb_member_remove(const struct ctl *ctl, uint64_t id,
                            const Etcdserverpb__MemberRemoveResponse *r)
{
    (void)ctl;
    (void)id;
    return pb_out(&r->base);
}

static int pb_member_update(const struct ctl *ctl, uint64_t id,
                            const Etcdserverpb__MemberUpdateResponse *r)
{
    (void)ctl;
    (void)id;
    return pb_out(&r->base);
}

/* etcdctl 3.4 has no protobuf rendering of MemberPromote's response and crashes (after the
 * promotion); this is the encoding its other member commands print. */
static int pb_member_promote(const struct ctl *ctl, uint64_t id,
                             const Etcdserverpb__MemberPromoteResponse *r)
{
    (void)ctl;
    (void)id;
    return pb_out(&r->base);
}

static int pb_move_leader(const struct ctl *ctl, uint64_t leader, uint64_t target,
                          const Etcdserverpb__MoveLeaderResponse *r)
{
    (void)ctl;
    (void)leader;
    (void)target;
    return pb_out(&r->base);
}

static int pb_alarm(const struct ctl *ctl, const Etcdserverpb__AlarmResponse *r)
{
    (void)ctl;
    return pb_out(&r->base);
}

/* etcdctl rebuilds the message from clientv3's WatchResponse: header, events, compact revision,
 * canceled and created only. */
static int pb_watch(const struct ctl *ctl, const Etcdserverpb__WatchResponse *r)
{
    (void)ctl;
    Etcdserverpb__WatchResponse w = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader zero = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    w.header = r->header ? r->header : &zero;
    w.n_events = r->n_events;
    w.events = r->events;
    w.compact_revision = r->compact_revision;
    w.canceled = r->canceled;
    w.created = r->created;
    return pb_out(&w.base);
}

const struct ctl_printer ctl_print_protobuf = {
    .name = "protobuf",
    .get = pb_get,
    .put = pb_put,
    .del = pb_del,
    .txn = pb_txn,
    .member_list = pb_member_list,
    .member_add = pb_member_add,
    .member_remove = pb_member_remove,
    .member_update = pb_member_update,
    .member_promote = pb_member_promote,
    .move_leader = pb_move_leader,
    .alarm = pb_alarm,
    .watch = pb_watch,
};
