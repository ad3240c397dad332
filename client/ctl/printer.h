/* client/ctl/printer.h — the output formats (-w simple|json|fields|table|protobuf), one file each,
 * behind one interface: etcdctl's printer.
 *
 * A printer writes a response to stdout (the simple printer's endpoint health goes to stderr, as
 * etcdctl's does) and returns an exit code: 0, or CTL_EXIT_BAD_FEATURE with "Error: <format> not
 * supported as output format" when the format has nothing for that response — the entry is NULL
 * then. The responses are the library's decoded messages. The entries that take an ID get the
 * one the command was given (member remove, update, promote) or found (move-leader's leader), as
 * etcdctl's printer does. */
#ifndef CAIRN_CTL_PRINTER_H
#define CAIRN_CTL_PRINTER_H

#include "client/ctl/ctl.h"
#include "client/ctl/text.h"

/* One endpoint's answer to `endpoint health`. */
struct ctl_ep_health {
    const char *ep; /* as given or as the member list has it */
    bool health;    /* the read succeeded */
    char *took;     /* Go duration text (malloc'd) */
    char *error;    /* error text (malloc'd), NULL when healthy */
};

/* One endpoint's answer to `endpoint status`. */
struct ctl_ep_status {
    const char *ep;
    const Etcdserverpb__StatusResponse *resp;
};

/* One endpoint's answer to `endpoint hashkv`. */
struct ctl_ep_hash {
    const char *ep;
    const Etcdserverpb__HashKVResponse *resp;
};

struct ctl_printer {
    const char *name; /* "simple", "json", ... */
    int (*get)(const struct ctl *ctl, const Etcdserverpb__RangeResponse *r);
    int (*put)(const struct ctl *ctl, const Etcdserverpb__PutResponse *r);
    int (*del)(const struct ctl *ctl, const Etcdserverpb__DeleteRangeResponse *r);
    int (*txn)(const struct ctl *ctl, const Etcdserverpb__TxnResponse *r);
    int (*member_list)(const struct ctl *ctl, const Etcdserverpb__MemberListResponse *r);
    int (*member_add)(const struct ctl *ctl, const Etcdserverpb__MemberAddResponse *r);
    int (*member_remove)(const struct ctl *ctl, uint64_t id,
                         const Etcdserverpb__MemberRemoveResponse *r);
    int (*member_update)(const struct ctl *ctl, uint64_t id,
                         const Etcdserverpb__MemberUpdateResponse *r);
    int (*member_promote)(const struct ctl *ctl, uint64_t id,
                          const Etcdserverpb__MemberPromoteResponse *r);
    int (*move_leader)(const struct ctl *ctl, uint64_t leader, uint64_t target,
                       const Etcdserverpb__MoveLeaderResponse *r);
    int (*alarm)(const struct ctl *ctl, const Etcdserverpb__AlarmResponse *r);
    int (*ep_health)(const struct ctl *ctl, const struct ctl_ep_health *h, size_t n);
    int (*ep_status)(const struct ctl *ctl, const struct ctl_ep_status *s, size_t n);
    int (*ep_hashkv)(const struct ctl *ctl, const struct ctl_ep_hash *h, size_t n);
    int (*watch)(const struct ctl *ctl, const Etcdserverpb__WatchResponse *r);
};

extern const struct ctl_printer ctl_print_simple, ctl_print_json, ctl_print_fields, ctl_print_table,
    ctl_print_protobuf;

/* The printer of a format. */
const struct ctl_printer *ctl_printer_for(enum ctl_format f);

/* Calls the printer's entry, or fails with "<name> not supported as output format". */
#define CTL_PRINT(ctl, entry, ...)             \
    ((ctl)->p->entry                           \
         ? (ctl)->p->entry((ctl), __VA_ARGS__) \
         : ctl_fail(CTL_EXIT_BAD_FEATURE, "%s not supported as output format", (ctl)->p->name))

/* Writes b to stdout and frees it; a failed buffer or write is "Error: ..." and exit 1. */
int ctl_print_flush(struct ctl_buf *b);

/* The rows etcdctl's simple and table printers share (print_table.c): member list, endpoint
 * status, health and hash. rows[i][j] are malloc'd; ctl_rows_free frees them. */
struct ctl_rows {
    const char *const *header; /* column titles, static */
    size_t n_cols;
    char ***rows; /* n_rows × n_cols strings */
    size_t n_rows;
    bool failed; /* out of memory while building */
};
void ctl_rows_member_list(const Etcdserverpb__MemberListResponse *r, struct ctl_rows *t);
void ctl_rows_ep_health(const struct ctl_ep_health *h, size_t n, struct ctl_rows *t);
void ctl_rows_ep_status(const struct ctl_ep_status *s, size_t n, struct ctl_rows *t);
void ctl_rows_ep_hash(const struct ctl_ep_hash *h, size_t n, struct ctl_rows *t);
void ctl_rows_free(struct ctl_rows *t);

/* Writes a KeyValue as etcdctl's simple printer does: key line (unless value_only), value line;
 * both as \xNN escapes with --hex. */
void ctl_simple_kv(const struct ctl *ctl, struct ctl_buf *b, const Mvccpb__KeyValue *kv);

/* An event type's name as Go's enum String gives it: "PUT", "DELETE", else the number (buf holds
 * it; 24 bytes). */
const char *ctl_event_type_name(int type, char buf[24]);

/* An alarm type's name as Go's enum String gives it ("NOSPACE"), or NULL for an unknown one. */
const char *ctl_alarm_name(int type);

#endif
