/* client/ctl/print_json.c — -w json (printer_json.go): the response as Go's encoding/json
 * marshals etcd's generated structs. Written from the protobuf-c descriptors, which carry the
 * same names (the structs' json tags are the .proto field names): fields in declaration order,
 * zero values left out (omitempty), 64-bit integers as numbers, bytes as base64, enums as
 * numbers, a set oneof as {"<Oneof>":{"<CamelCaseField>":...}} (gogo's wrapper structs). */
#include <ctype.h>
#include <string.h>

#include "client/ctl/printer.h"

static void message(struct ctl_buf *b, const ProtobufCMessage *m);

/* Whether a field is absent (and so left out, as omitempty does). */
static bool absent(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        return *(const uint32_t *)p == 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return *(const uint64_t *)p == 0;
    case PROTOBUF_C_TYPE_FLOAT:
        return *(const float *)p == 0;
    case PROTOBUF_C_TYPE_DOUBLE:
        return *(const double *)p == 0;
    case PROTOBUF_C_TYPE_BOOL:
        return !*(const protobuf_c_boolean *)p;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        return !s || !*s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return ((const ProtobufCBinaryData *)p)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE:
        return *(const void *const *)p == NULL;
    }
    return true;
}

static void value(struct ctl_buf *b, const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_ENUM:
        ctl_buf_printf(b, "%d", *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        ctl_buf_printf(b, "%u", *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        ctl_buf_printf(b, "%lld", (long long)*(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        ctl_buf_printf(b, "%llu", (unsigned long long)*(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        ctl_buf_printf(b, "%g", (double)*(const float *)p);
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        ctl_buf_printf(b, "%g", *(const double *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        ctl_buf_puts(b, *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(const char *const *)p;
        ctl_json_string(b, s ? s : "", s ? strlen(s) : 0);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *d = p;
        ctl_buf_putc(b, '"');
        ctl_base64(b, d->data, d->len);
        ctl_buf_putc(b, '"');
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
        if (sub)
            message(b, sub);
        else
            ctl_buf_puts(b, "null");
        break;
    }
    }
}

static size_t type_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

/* "response_put" → "ResponsePut", as Go names the oneof's wrapper field. */
static void camel(struct ctl_buf *b, const char *name)
{
    bool up = true;
    for (const char *p = name; *p; p++) {
        if (*p == '_') {
            up = true;
            continue;
        }
        ctl_buf_putc(b, up ? (char)toupper((unsigned char)*p) : *p);
        up = false;
    }
}

static void message(struct ctl_buf *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    bool first = true, oneof_done = false;
    ctl_buf_putc(b, '{');
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const void *p = base + f->offset;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            /* etcd's response messages have one oneof at most (ResponseOp's "response") */
            if (oneof_done)
                continue;
            uint32_t which = *(const uint32_t *)(base + f->quantifier_offset);
            bool set = false;
            for (unsigned k = i; k < d->n_fields; k++) {
                const ProtobufCFieldDescriptor *g = &d->fields[k];
                if ((g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && g->id == which &&
                    g->quantifier_offset == f->quantifier_offset) {
                    ctl_buf_puts(b, first ? "\"Response\":{\"" : ",\"Response\":{\"");
                    camel(b, g->name);
                    ctl_buf_puts(b, "\":");
                    value(b, g, base + g->offset);
                    ctl_buf_putc(b, '}');
                    set = true;
                    break;
                }
            }
            if (!set)
                ctl_buf_puts(b, first ? "\"Response\":null" : ",\"Response\":null");
            first = false;
            oneof_done = true;
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            if (n == 0)
                continue;
            ctl_buf_printf(b, "%s\"%s\":[", first ? "" : ",", f->name);
            const char *arr = *(const char *const *)p;
            for (size_t k = 0; k < n; k++) {
                if (k)
                    ctl_buf_putc(b, ',');
                value(b, f, arr + k * type_size(f->type));
            }
            ctl_buf_putc(b, ']');
            first = false;
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->quantifier_offset &&
            f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING &&
            !*(const protobuf_c_boolean *)(base + f->quantifier_offset))
            continue;
        if (absent(f, p))
            continue;
        ctl_buf_printf(b, "%s\"%s\":", first ? "" : ",", f->name);
        value(b, f, p);
        first = false;
    }
    ctl_buf_putc(b, '}');
}

static int print_message(const ProtobufCMessage *m)
{
    struct ctl_buf b = {0};
    message(&b, m);
    ctl_buf_putc(&b, '\n');
    return ctl_print_flush(&b);
}

static int json_get(const struct ctl *ctl, const Etcdserverpb__RangeResponse *r)
{
    (void)ctl;
    return print_message(&r->base);
}

static int json_put(const struct ctl *ctl, const Etcdserverpb__PutResponse *r)
{
    (void)ctl;
    return print_message(&r->base);
}

static int json_del(const struct ctl *ctl, const Etcdserverpb__DeleteRangeResponse *r)
{
    (void)ctl;
    return print_message(&r->base);
}

static int json_txn(const struct ctl *ctl, const Etcdserverpb__TxnResponse *r)
{
    (void)ctl;
    return print_message(&r->base);
}

static int json_member_list(const struct ctl *ctl, const Etcdserverpb__MemberListResponse *r)
{
    (void)ctl;
    return print_message(&r->base);
}

static int json_member_add(const struct ctl *ctl, const Etcdserverpb__MemberAddResponse *r)
{
    (void)ctl;
    return print_message(&r->base);
}

static int json_member_remove(const struct ctl *ctl, uint64_t id,
                              const Etcdserverpb__MemberRemoveResponse *r)
{
    (void)ctl;
    (void)id;
    return print_message(&r->base);
}

static int json_member_update(const struct ctl *ctl, uint64_t id,
                              const Etcdserverpb__MemberUpdateResponse *r)
{
    (void)ctl;
    (void)id;
    return print_message(&r->base);
}

/* etcdctl 3.4 has no JSON rendering of MemberPromote's response and crashes (after the promotion);
 * this is the JSON its other member commands print. */
static int json_member_promote(const struct ctl *ctl, uint64_t id,
                               const Etcdserverpb__MemberPromoteResponse *r)
{
    (void)ctl;
    (void)id;
    return print_message(&r->base);
}

static int json_move_leader(const struct ctl *ctl, uint64_t leader, uint64_t target,
                            const Etcdserverpb__MoveLeaderResponse *r)
{
    (void)ctl;
    (void)leader;
    (void)target;
    return print_message(&r->base);
}

static int json_alarm(const struct ctl *ctl, const Etcdserverpb__AlarmResponse *r)
{
    (void)ctl;
    return print_message(&r->base);
}

static int json_ep_health(const struct ctl *ctl, const struct ctl_ep_health *h, size_t n)
{
    (void)ctl;
    struct ctl_buf b = {0};
    ctl_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        ctl_buf_puts(&b, i ? ",{\"endpoint\":" : "{\"endpoint\":");
        ctl_json_string(&b, h[i].ep, strlen(h[i].ep));
        ctl_buf_printf(&b, ",\"health\":%s,\"took\":", h[i].health ? "true" : "false");
        ctl_json_string(&b, h[i].took ? h[i].took : "", h[i].took ? strlen(h[i].took) : 0);
        if (h[i].error && *h[i].error) {
            ctl_buf_puts(&b, ",\"error\":");
            ctl_json_string(&b, h[i].error, strlen(h[i].error));
        }
        ctl_buf_putc(&b, '}');
    }
    ctl_buf_puts(&b, "]\n");
    return ctl_print_flush(&b);
}

static int json_ep_status(const struct ctl *ctl, const struct ctl_ep_status *s, size_t n)
{
    (void)ctl;
    struct ctl_buf b = {0};
    ctl_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        ctl_buf_puts(&b, i ? ",{\"Endpoint\":" : "{\"Endpoint\":");
        ctl_json_string(&b, s[i].ep, strlen(s[i].ep));
        ctl_buf_puts(&b, ",\"Status\":");
        message(&b, &s[i].resp->base);
        ctl_buf_putc(&b, '}');
    }
    ctl_buf_puts(&b, "]\n");
    return ctl_print_flush(&b);
}

static int json_ep_hashkv(const struct ctl *ctl, const struct ctl_ep_hash *h, size_t n)
{
    (void)ctl;
    struct ctl_buf b = {0};
    ctl_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        ctl_buf_puts(&b, i ? ",{\"Endpoint\":" : "{\"Endpoint\":");
        ctl_json_string(&b, h[i].ep, strlen(h[i].ep));
        ctl_buf_puts(&b, ",\"HashKV\":");
        message(&b, &h[i].resp->base);
        ctl_buf_putc(&b, '}');
    }
    ctl_buf_puts(&b, "]\n");
    return ctl_print_flush(&b);
}

/* clientv3's WatchResponse, a Go struct of its own: Header (a value, so always there), Events
 * (clientv3 makes the slice for every response from the server, so [] when empty), then
 * CompactRevision, Canceled and Created without omitempty. */
static int json_watch(const struct ctl *ctl, const Etcdserverpb__WatchResponse *r)
{
    (void)ctl;
    struct ctl_buf b = {0};
    ctl_buf_puts(&b, "{\"Header\":");
    if (r->header)
        message(&b, &r->header->base);
    else
        ctl_buf_puts(&b, "{}");
    ctl_buf_puts(&b, ",\"Events\":[");
    for (size_t i = 0; i < r->n_events; i++) {
        if (i)
            ctl_buf_putc(&b, ',');
        message(&b, &r->events[i]->base);
    }
    ctl_buf_putc(&b, ']');
    ctl_buf_printf(&b, ",\"CompactRevision\":%lld,\"Canceled\":%s,\"Created\":%s}\n",
                   (long long)r->compact_revision, r->canceled ? "true" : "false",
                   r->created ? "true" : "false");
    return ctl_print_flush(&b);
}

const struct ctl_printer ctl_print_json = {
    .name = "json",
    .get = json_get,
    .put = json_put,
    .del = json_del,
    .txn = json_txn,
    .member_list = json_member_list,
    .member_add = json_member_add,
    .member_remove = json_member_remove,
    .member_update = json_member_update,
    .member_promote = json_member_promote,
    .move_leader = json_move_leader,
    .alarm = json_alarm,
    .ep_health = json_ep_health,
    .ep_status = json_ep_status,
    .ep_hashkv = json_ep_hashkv,
    .watch = json_watch,
};
