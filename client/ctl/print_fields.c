/* client/ctl/print_fields.c — -w fields (printer_fields.go): one `"Name" : value` line per field,
 * strings quoted as Go's %q quotes them. A response without a header (Alarm's) prints no header
 * lines; etcdctl crashes on it. Member changes and move-leader have no fields rendering, as in
 * etcdctl. */
#include <string.h>

#include "client/ctl/printer.h"

static void hdr(struct ctl_buf *b, const Etcdserverpb__ResponseHeader *h)
{
    if (!h)
        return;
    ctl_buf_printf(b, "\"ClusterID\" : %llu\n", (unsigned long long)h->cluster_id);
    ctl_buf_printf(b, "\"MemberID\" : %llu\n", (unsigned long long)h->member_id);
    ctl_buf_printf(b, "\"Revision\" : %lld\n", (long long)h->revision);
    ctl_buf_printf(b, "\"RaftTerm\" : %llu\n", (unsigned long long)h->raft_term);
}

static void quoted(struct ctl_buf *b, const char *name, const void *s, size_t len)
{
    ctl_buf_printf(b, "\"%s\" : ", name);
    ctl_go_quote(b, s, len);
    ctl_buf_putc(b, '\n');
}

static void kv(struct ctl_buf *b, const char *pfx, const Mvccpb__KeyValue *k)
{
    ctl_buf_printf(b, "\"%sKey\" : ", pfx);
    ctl_go_quote(b, k->key.data, k->key.len);
    ctl_buf_printf(b, "\n\"%sCreateRevision\" : %lld\n", pfx, (long long)k->create_revision);
    ctl_buf_printf(b, "\"%sModRevision\" : %lld\n", pfx, (long long)k->mod_revision);
    ctl_buf_printf(b, "\"%sVersion\" : %lld\n", pfx, (long long)k->version);
    ctl_buf_printf(b, "\"%sValue\" : ", pfx);
    ctl_go_quote(b, k->value.data, k->value.len);
    ctl_buf_printf(b, "\n\"%sLease\" : %lld\n", pfx, (long long)k->lease);
}

static const char *tf(bool v)
{
    return v ? "true" : "false";
}

static void get_to(struct ctl_buf *b, const Etcdserverpb__RangeResponse *r)
{
    hdr(b, r->header);
    for (size_t i = 0; i < r->n_kvs; i++)
        kv(b, "", r->kvs[i]);
    ctl_buf_printf(b, "\"More\" : %s\n\"Count\" : %lld\n", tf(r->more), (long long)r->count);
}

static void put_to(struct ctl_buf *b, const Etcdserverpb__PutResponse *r)
{
    hdr(b, r->header);
    if (r->prev_kv)
        kv(b, "Prev", r->prev_kv);
}

static void del_to(struct ctl_buf *b, const Etcdserverpb__DeleteRangeResponse *r)
{
    hdr(b, r->header);
    ctl_buf_printf(b, "\"Deleted\" : %lld\n", (long long)r->deleted);
    for (size_t i = 0; i < r->n_prev_kvs; i++)
        kv(b, "Prev", r->prev_kvs[i]);
}

static int fields_get(const struct ctl *ctl, const Etcdserverpb__RangeResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    get_to(&b, r);
    return ctl_print_flush(&b);
}

static int fields_put(const struct ctl *ctl, const Etcdserverpb__PutResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    put_to(&b, r);
    return ctl_print_flush(&b);
}

static int fields_del(const struct ctl *ctl, const Etcdserverpb__DeleteRangeResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    del_to(&b, r);
    return ctl_print_flush(&b);
}

static int fields_txn(const struct ctl *ctl, const Etcdserverpb__TxnResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    hdr(&b, r->header);
    ctl_buf_printf(&b, "\"Succeeded\" : %s\n", tf(r->succeeded));
    for (size_t i = 0; i < r->n_responses; i++) {
        const Etcdserverpb__ResponseOp *op = r->responses[i];
        switch (op->response_case) {
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE:
            get_to(&b, op->response_range);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_PUT:
            put_to(&b, op->response_put);
            break;
        case ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_DELETE_RANGE:
            del_to(&b, op->response_delete_range);
            break;
        default:
            ctl_buf_puts(&b, "\"Unknown\" : \"\"\n");
        }
    }
    return ctl_print_flush(&b);
}

static int fields_member_list(const struct ctl *ctl, const Etcdserverpb__MemberListResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    hdr(&b, r->header);
    for (size_t i = 0; i < r->n_members; i++) {
        const Etcdserverpb__Member *m = r->members[i];
        ctl_buf_printf(&b, "\"ID\" : %llu\n", (unsigned long long)m->id);
        quoted(&b, "Name", m->name, strlen(m->name));
        for (size_t j = 0; j < m->n_peerurls; j++)
            quoted(&b, "PeerURL", m->peerurls[j], strlen(m->peerurls[j]));
        for (size_t j = 0; j < m->n_clienturls; j++)
            quoted(&b, "ClientURL", m->clienturls[j], strlen(m->clienturls[j]));
        ctl_buf_printf(&b, "\"IsLearner\" : %s\n\n", tf(m->islearner));
    }
    return ctl_print_flush(&b);
}

static int fields_ep_health(const struct ctl *ctl, const struct ctl_ep_health *h, size_t n)
{
    (void)ctl;
    struct ctl_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        quoted(&b, "Endpoint", h[i].ep, strlen(h[i].ep));
        ctl_buf_printf(&b, "\"Health\" : %s\n\"Took\" : %s\n\"Error\" : %s\n\n", tf(h[i].health),
                       h[i].took ? h[i].took : "", h[i].error ? h[i].error : "");
    }
    return ctl_print_flush(&b);
}

static int fields_ep_status(const struct ctl *ctl, const struct ctl_ep_status *s, size_t n)
{
    (void)ctl;
    struct ctl_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        const Etcdserverpb__StatusResponse *r = s[i].resp;
        hdr(&b, r->header);
        quoted(&b, "Version", r->version, strlen(r->version));
        ctl_buf_printf(&b, "\"DBSize\" : %lld\n", (long long)r->dbsize);
        ctl_buf_printf(&b, "\"Leader\" : %llu\n", (unsigned long long)r->leader);
        ctl_buf_printf(&b, "\"IsLearner\" : %s\n", tf(r->islearner));
        ctl_buf_printf(&b, "\"RaftIndex\" : %llu\n", (unsigned long long)r->raftindex);
        ctl_buf_printf(&b, "\"RaftTerm\" : %llu\n", (unsigned long long)r->raftterm);
        ctl_buf_printf(&b, "\"RaftAppliedIndex\" : %llu\n",
                       (unsigned long long)r->raftappliedindex);
        ctl_buf_puts(&b, "\"Errors\" : [");
        for (size_t j = 0; j < r->n_errors; j++)
            ctl_buf_printf(&b, "%s%s", j ? " " : "", r->errors[j]);
        ctl_buf_puts(&b, "]\n");
        quoted(&b, "Endpoint", s[i].ep, strlen(s[i].ep));
        ctl_buf_putc(&b, '\n');
    }
    return ctl_print_flush(&b);
}

static int fields_ep_hashkv(const struct ctl *ctl, const struct ctl_ep_hash *h, size_t n)
{
    (void)ctl;
    struct ctl_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        hdr(&b, h[i].resp->header);
        quoted(&b, "Endpoint", h[i].ep, strlen(h[i].ep));
        ctl_buf_printf(&b, "\"Hash\" : %u\n\n", (unsigned)h[i].resp->hash);
    }
    return ctl_print_flush(&b);
}

static int fields_alarm(const struct ctl *ctl, const Etcdserverpb__AlarmResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    hdr(&b, r->header);
    for (size_t i = 0; i < r->n_alarms; i++) {
        const char *name = ctl_alarm_name(r->alarms[i]->alarm);
        ctl_buf_printf(&b, "\"MemberID\" : %llu\n", (unsigned long long)r->alarms[i]->memberid);
        if (name)
            ctl_buf_printf(&b, "\"AlarmType\" : %s\n\n", name);
        else
            ctl_buf_printf(&b, "\"AlarmType\" : %d\n\n", (int)r->alarms[i]->alarm);
    }
    return ctl_print_flush(&b);
}

static int fields_watch(const struct ctl *ctl, const Etcdserverpb__WatchResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    static const Etcdserverpb__ResponseHeader zero = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    hdr(&b, r->header ? r->header : &zero);
    for (size_t i = 0; i < r->n_events; i++) {
        const Mvccpb__Event *e = r->events[i];
        char t[24];
        ctl_buf_printf(&b, "\"Type\" : %s\n", ctl_event_type_name(e->type, t));
        if (e->prev_kv)
            kv(&b, "Prev", e->prev_kv);
        if (e->kv)
            kv(&b, "", e->kv);
    }
    return ctl_print_flush(&b);
}

const struct ctl_printer ctl_print_fields = {
    .name = "fields",
    .get = fields_get,
    .put = fields_put,
    .del = fields_del,
    .txn = fields_txn,
    .member_list = fields_member_list,
    .alarm = fields_alarm,
    .ep_health = fields_ep_health,
    .ep_status = fields_ep_status,
    .ep_hashkv = fields_ep_hashkv,
    .watch = fields_watch,
};
