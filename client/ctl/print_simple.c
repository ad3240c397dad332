/* client/ctl/print_simple.c — -w simple, etcdctl's default format (printer_simple.go): keys and
 * values on lines of their own, comma-separated rows for member and endpoint lists. */
#include <stdio.h>
#include <string.h>

#include "client/ctl/printer.h"

void ctl_simple_kv(const struct ctl *ctl, struct ctl_buf *b, const Mvccpb__KeyValue *kv)
{
    if (!ctl->value_only) {
        if (ctl->hex)
            ctl_hex_escaped(b, kv->key.data, kv->key.len);
        else
            ctl_buf_put(b, kv->key.data, kv->key.len);
        ctl_buf_putc(b, '\n');
    }
    if (ctl->hex)
        ctl_hex_escaped(b, kv->value.data, kv->value.len);
    else
        ctl_buf_put(b, kv->value.data, kv->value.len);
    ctl_buf_putc(b, '\n');
}

static void del_to(const struct ctl *ctl, struct ctl_buf *b,
                   const Etcdserverpb__DeleteRangeResponse *r)
{
    ctl_buf_printf(b, "%lld\n", (long long)r->deleted);
    for (size_t i = 0; i < r->n_prev_kvs; i++)
        ctl_simple_kv(ctl, b, r->prev_kvs[i]);
}

static void get_to(const struct ctl *ctl, struct ctl_buf *b, const Etcdserverpb__RangeResponse *r)
{
    for (size_t i = 0; i < r->n_kvs; i++)
        ctl_simple_kv(ctl, b, r->kvs[i]);
}

static void put_to(const struct ctl *ctl, struct ctl_buf *b, const Etcdserverpb__PutResponse *r)
{
    ctl_buf_puts(b, "OK\n");
    if (r->prev_kv)
        ctl_simple_kv(ctl, b, r->prev_kv);
}

static int simple_get(const struct ctl *ctl, const Etcdserverpb__RangeResponse *r)
{
    struct ctl_buf b = {0};
    get_to(ctl, &b, r);
    return ctl_print_flush(&b);
}

static int simple_put(const struct ctl *ctl, const Etcdserverpb__PutResponse *r)
{
    struct ctl_buf b = {0};
    put_to(ctl, &b, r);
    return ctl_print_flush(&b);
}

static int simple_del(const struct ctl *ctl, const Etcdserverpb__DeleteRangeResponse *r)
{
    struct ctl_buf b = {0};
    del_to(ctl, &b, r);
    return ctl_print_flush(&b);
}

static int simple_txn(const struct ctl *ctl, const Etcdserverpb__TxnResponse *r)
{
    struct ctl_buf b = {0};
    ctl_buf_puts(&b, r->succeeded ? "SUCCESS\n" : "FAILURE\n");
    for (size_t i = 0; i < r->n_responses; i++) {
        const Etcdserverpb__ResponseOp *op = r->responses[i];
        ctl_buf_putc(&b, '\n');
        switch (op->response_case) {
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
            get_to(ctl, &b, op->response_range);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
            put_to(ctl, &b, op->response_put);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
            del_to(ctl, &b, op->response_delete_range);
            break;
        default:
            ctl_buf_puts(&b, "unexpected response\n");
        }
    }
    return ctl_print_flush(&b);
}

/* Rows joined by ", ", one line each. */
static int rows_out(struct ctl_rows *t)
{
    struct ctl_buf b = {0};
    for (size_t i = 0; i < t->n_rows; i++) {
        for (size_t j = 0; j < t->n_cols; j++)
            ctl_buf_printf(&b, "%s%s", j ? ", " : "", t->rows[i][j]);
        ctl_buf_putc(&b, '\n');
    }
    if (t->failed)
        b.failed = true;
    ctl_rows_free(t);
    return ctl_print_flush(&b);
}

static int simple_member_list(const struct ctl *ctl, const Etcdserverpb__MemberListResponse *r)
{
    (void)ctl;
    struct ctl_rows t;
    ctl_rows_member_list(r, &t);
    return rows_out(&t);
}

static int simple_ep_status(const struct ctl *ctl, const struct ctl_ep_status *s, size_t n)
{
    (void)ctl;
    struct ctl_rows t;
    ctl_rows_ep_status(s, n, &t);
    return rows_out(&t);
}

static int simple_ep_hashkv(const struct ctl *ctl, const struct ctl_ep_hash *h, size_t n)
{
    (void)ctl;
    struct ctl_rows t;
    ctl_rows_ep_hash(h, n, &t);
    return rows_out(&t);
}

/* "Member <id> <what> cluster <cluster id>", both in hex padded to 16 with spaces (Go's %16x). */
static int member_line(uint64_t id, const char *what, const Etcdserverpb__ResponseHeader *h)
{
    struct ctl_buf b = {0};
    ctl_buf_printf(&b, "Member %16llx %s cluster %16llx\n", (unsigned long long)id, what,
                   (unsigned long long)(h ? h->cluster_id : 0));
    return ctl_print_flush(&b);
}

static int simple_member_add(const struct ctl *ctl, const Etcdserverpb__MemberAddResponse *r)
{
    (void)ctl;
    return member_line(r->member ? r->member->id : 0, "added to", r->header);
}

static int simple_member_remove(const struct ctl *ctl, uint64_t id,
                                const Etcdserverpb__MemberRemoveResponse *r)
{
    (void)ctl;
    return member_line(id, "removed from", r->header);
}

static int simple_member_update(const struct ctl *ctl, uint64_t id,
                                const Etcdserverpb__MemberUpdateResponse *r)
{
    (void)ctl;
    return member_line(id, "updated in", r->header);
}

static int simple_member_promote(const struct ctl *ctl, uint64_t id,
                                 const Etcdserverpb__MemberPromoteResponse *r)
{
    (void)ctl;
    return member_line(id, "promoted in", r->header);
}

/* IDs as etcd's types.ID prints them: hex, no padding. */
static int simple_move_leader(const struct ctl *ctl, uint64_t leader, uint64_t target,
                              const Etcdserverpb__MoveLeaderResponse *r)
{
    (void)ctl;
    (void)r;
    struct ctl_buf b = {0};
    ctl_buf_printf(&b, "Leadership transferred from %llx to %llx\n", (unsigned long long)leader,
                   (unsigned long long)target);
    return ctl_print_flush(&b);
}

/* On stderr, as etcdctl prints it. */
static int simple_ep_health(const struct ctl *ctl, const struct ctl_ep_health *h, size_t n)
{
    (void)ctl;
    fflush(stdout);
    for (size_t i = 0; i < n; i++) {
        if (!h[i].error)
            fprintf(stderr, "%s is healthy: successfully committed proposal: took = %s\n", h[i].ep,
                    h[i].took ? h[i].took : "");
        else
            fprintf(stderr, "%s is unhealthy: failed to commit proposal: %s\n", h[i].ep,
                    h[i].error);
    }
    return 0;
}

const char *ctl_alarm_name(int type)
{
    switch (type) {
    case ETCDSERVERPB__ALARM_TYPE__NONE:
        return "NONE";
    case ETCDSERVERPB__ALARM_TYPE__NOSPACE:
        return "NOSPACE";
    case ETCDSERVERPB__ALARM_TYPE__CORRUPT:
        return "CORRUPT";
    }
    return NULL;
}

/* gogo-protobuf's compact text of an AlarmMember: "memberID:<id> alarm:<NAME> ", zero fields
 * left out. */
static int simple_alarm(const struct ctl *ctl, const Etcdserverpb__AlarmResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    for (size_t i = 0; i < r->n_alarms; i++) {
        const Etcdserverpb__AlarmMember *a = r->alarms[i];
        if (a->memberid)
            ctl_buf_printf(&b, "memberID:%llu ", (unsigned long long)a->memberid);
        if (a->alarm) {
            const char *name = ctl_alarm_name(a->alarm);
            if (name)
                ctl_buf_printf(&b, "alarm:%s ", name);
            else
                ctl_buf_printf(&b, "alarm:%d ", (int)a->alarm);
        }
        ctl_buf_putc(&b, '\n');
    }
    return ctl_print_flush(&b);
}

const char *ctl_event_type_name(int type, char buf[24])
{
    if (type == MVCCPB__EVENT__EVENT_TYPE__PUT)
        return "PUT";
    if (type == MVCCPB__EVENT__EVENT_TYPE__DELETE)
        return "DELETE";
    snprintf(buf, 24, "%d", type);
    return buf;
}

/* Each event: its type, the previous key-value when there is one, the key-value. */
static int simple_watch(const struct ctl *ctl, const Etcdserverpb__WatchResponse *r)
{
    struct ctl_buf b = {0};
    for (size_t i = 0; i < r->n_events; i++) {
        const Mvccpb__Event *e = r->events[i];
        char t[24];
        ctl_buf_puts(&b, ctl_event_type_name(e->type, t));
        ctl_buf_putc(&b, '\n');
        if (e->prev_kv)
            ctl_simple_kv(ctl, &b, e->prev_kv);
        if (e->kv)
            ctl_simple_kv(ctl, &b, e->kv);
    }
    return ctl_print_flush(&b);
}

const struct ctl_printer ctl_print_simple = {
    .name = "simple",
    .get = simple_get,
    .put = simple_put,
    .del = simple_del,
    .txn = simple_txn,
    .member_list = simple_member_list,
    .member_add = simple_member_add,
    .member_remove = simple_member_remove,
    .member_update = simple_member_update,
    .member_promote = simple_member_promote,
    .move_leader = simple_move_leader,
    .alarm = simple_alarm,
    .ep_health = simple_ep_health,
    .ep_status = simple_ep_status,
    .ep_hashkv = simple_ep_hashkv,
    .watch = simple_watch,
};
