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

static int pb_alarm(const struct ctl *ctl, const Etcdserverpb__AlarmResponse *r)
{
    (void)ctl;
    return pb_out(&r->base);
}

const struct ctl_printer ctl_print_protobuf = {
    .name = "protobuf",
    .get = pb_get,
    .put = pb_put,
    .del = pb_del,
    .txn = pb_txn,
    .member_list = pb_member_list,
    .alarm = pb_alarm,
};
