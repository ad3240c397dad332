/* client/ctl/lease.c — `lease grant|revoke|timetolive|list|keep-alive`: the Lease service
 * (ctlv3/command/lease_command.go), with etcdctl's output in every format it has.
 *
 * etcdctl prints clientv3's lease responses, not the protobuf messages: -w json marshals Go
 * structs that embed the header (its fields flattened into the object, except in revoke's
 * response, which is the message itself), and -w protobuf marshals whatever Marshal method the
 * struct has — the embedded header's, so only the header's bytes are written; revoke's response
 * has none ("marshal unsupported", exit 4). -w table has nothing for leases (exit 4). Those
 * renderings live here, next to the commands, rather than in the printers, which render
 * messages.
 *
 * As in etcdctl, grant and revoke run with --command-timeout, timetolive, list and keep-alive
 * without a deadline; a failure of the latter three exits 2 (ExitBadConnection). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/printer.h"
#include "client/ctl/text.h"

#define LEASE_NOT_FOUND "etcdserver: requested lease not found"

/* ---------------------------------------------------------------------------------------------- */
/* Output */

static int table_unsupported(const struct ctl *ctl)
{
    return ctl_fail(CTL_EXIT_BAD_FEATURE, "%s not supported as output format", ctl->p->name);
}

/* The header's fields as encoding/json writes an embedded *ResponseHeader (omitempty), each
 * followed by a comma. */
static void json_hdr_flat(struct ctl_buf *b, const Etcdserverpb__ResponseHeader *h)
{
    if (!h)
        return;
    if (h->cluster_id)
        ctl_buf_printf(b, "\"cluster_id\":%llu,", (unsigned long long)h->cluster_id);
    if (h->member_id)
        ctl_buf_printf(b, "\"member_id\":%llu,", (unsigned long long)h->member_id);
    if (h->revision)
        ctl_buf_printf(b, "\"revision\":%lld,", (long long)h->revision);
    if (h->raft_term)
        ctl_buf_printf(b, "\"raft_term\":%llu,", (unsigned long long)h->raft_term);
}

static void fields_hdr(struct ctl_buf *b, const Etcdserverpb__ResponseHeader *h)
{
    if (!h)
        return;
    ctl_buf_printf(b, "\"ClusterID\" : %llu\n", (unsigned long long)h->cluster_id);
    ctl_buf_printf(b, "\"MemberID\" : %llu\n", (unsigned long long)h->member_id);
    ctl_buf_printf(b, "\"Revision\" : %lld\n", (long long)h->revision);
    ctl_buf_printf(b, "\"RaftTerm\" : %llu\n", (unsigned long long)h->raft_term);
}

/* The header in protobuf's wire encoding (what -w protobuf writes for lease responses). */
static void pb_hdr(struct ctl_buf *b, const Etcdserverpb__ResponseHeader *h)
{
    if (!h)
        return;
    size_t n = protobuf_c_message_get_packed_size(&h->base);
    uint8_t *p = malloc(n ? n : 1);
    if (!p) {
        b->failed = true;
        return;
    }
    protobuf_c_message_pack(&h->base, p);
    ctl_buf_put(b, p, n);
    free(p);
}

/* Go's %016x of a LeaseID (an int64: a negative one is "-" and the magnitude). */
static void lease_hex(struct ctl_buf *b, int64_t id)
{
    if (id < 0)
        ctl_buf_printf(b, "-%015llx", (unsigned long long)(-(uint64_t)id));
    else
        ctl_buf_printf(b, "%016llx", (unsigned long long)id);
}

/* Prints what display.Grant / display.KeepAlive print: the same shape (header, ID, TTL), grant's
 * JSON with the server's error string. */
static int print_id_ttl(const struct ctl *ctl, const char *verb,
                        const Etcdserverpb__ResponseHeader *h, int64_t id, int64_t ttl,
                        const char *grant_error)
{
    struct ctl_buf b = {0};
    switch (ctl->format) {
    case CTL_FMT_SIMPLE:
        ctl_buf_puts(&b, "lease ");
        lease_hex(&b, id);
        if (grant_error)
            ctl_buf_printf(&b, " %s with TTL(%llds)\n", verb, (long long)ttl);
        else
            ctl_buf_printf(&b, " %s with TTL(%lld)\n", verb, (long long)ttl);
        break;
    case CTL_FMT_JSON:
        ctl_buf_putc(&b, '{');
        json_hdr_flat(&b, h);
        ctl_buf_printf(&b, "\"ID\":%lld,\"TTL\":%lld", (long long)id, (long long)ttl);
        if (grant_error) {
            ctl_buf_puts(&b, ",\"Error\":");
            ctl_json_string(&b, grant_error, strlen(grant_error));
        }
        ctl_buf_puts(&b, "}\n");
        break;
    case CTL_FMT_FIELDS:
        fields_hdr(&b, h);
        ctl_buf_printf(&b, "\"ID\" : %lld\n\"TTL\" : %lld\n", (long long)id, (long long)ttl);
        break;
    case CTL_FMT_PROTOBUF:
        pb_hdr(&b, h);
        break;
    default:
        ctl_buf_free(&b);
        return table_unsupported(ctl);
    }
    return ctl_print_flush(&b);
}

/* The text format of a header as gogo's String() writes it (non-zero fields, each followed by a
 * space), for the protobuf printer's refusal of revoke's response. */
static void text_hdr(struct ctl_buf *b, const Etcdserverpb__ResponseHeader *h)
{
    if (!h) {
        ctl_buf_puts(b, "<nil>");
        return;
    }
    if (h->cluster_id)
        ctl_buf_printf(b, "cluster_id:%llu ", (unsigned long long)h->cluster_id);
    if (h->member_id)
        ctl_buf_printf(b, "member_id:%llu ", (unsigned long long)h->member_id);
    if (h->revision)
        ctl_buf_printf(b, "revision:%lld ", (long long)h->revision);
    if (h->raft_term)
        ctl_buf_printf(b, "raft_term:%llu ", (unsigned long long)h->raft_term);
}

static int print_revoke(const struct ctl *ctl, int64_t id,
                        const Etcdserverpb__LeaseRevokeResponse *r)
{
    struct ctl_buf b = {0};
    switch (ctl->format) {
    case CTL_FMT_SIMPLE:
        ctl_buf_puts(&b, "lease ");
        lease_hex(&b, id);
        ctl_buf_puts(&b, " revoked\n");
        break;
    case CTL_FMT_JSON:
        ctl_buf_putc(&b, '{');
        if (r->header) {
            ctl_buf_puts(&b, "\"header\":{");
            size_t at = b.len;
            json_hdr_flat(&b, r->header);
            if (b.len > at)
                b.len--; /* the last comma */
            ctl_buf_putc(&b, '}');
        }
        ctl_buf_puts(&b, "}\n");
        break;
    case CTL_FMT_FIELDS:
        fields_hdr(&b, r->header);
        break;
    case CTL_FMT_PROTOBUF: {
        text_hdr(&b, r->header);
        char *t = ctl_buf_take(&b);
        int code = ctl_fail(CTL_EXIT_BAD_FEATURE,
                            "marshal unsupported for type clientv3.LeaseRevokeResponse ({%s})",
                            t ? t : "");
        free(t);
        return code;
    }
    default:
        ctl_buf_free(&b);
        return table_unsupported(ctl);
    }
    return ctl_print_flush(&b);
}

static int print_ttl(const struct ctl *ctl, const Etcdserverpb__LeaseTimeToLiveResponse *r,
                     bool keys)
{
    struct ctl_buf b = {0};
    switch (ctl->format) {
    case CTL_FMT_SIMPLE:
        ctl_buf_puts(&b, "lease ");
        lease_hex(&b, r->id);
        if (r->grantedttl == 0 && r->ttl == -1) {
            ctl_buf_puts(&b, " already expired\n");
            break;
        }
        ctl_buf_printf(&b, " granted with TTL(%llds), remaining(%llds)", (long long)r->grantedttl,
                       (long long)r->ttl);
        if (keys) {
            ctl_buf_puts(&b, ", attached keys([");
            for (size_t i = 0; i < r->n_keys; i++) {
                if (i)
                    ctl_buf_putc(&b, ' ');
                ctl_buf_put(&b, r->keys[i].data, r->keys[i].len);
            }
            ctl_buf_puts(&b, "])");
        }
        ctl_buf_putc(&b, '\n');
        break;
    case CTL_FMT_JSON:
        ctl_buf_putc(&b, '{');
        json_hdr_flat(&b, r->header);
        ctl_buf_printf(&b,
                       "\"id\":%lld,\"ttl\":%lld,\"granted-ttl\":%lld,\"keys\":", (long long)r->id,
                       (long long)r->ttl, (long long)r->grantedttl);
        if (r->n_keys == 0) {
            ctl_buf_puts(&b, "null");
        } else {
            ctl_buf_putc(&b, '[');
            for (size_t i = 0; i < r->n_keys; i++) {
                if (i)
                    ctl_buf_putc(&b, ',');
                ctl_buf_putc(&b, '"');
                ctl_base64(&b, r->keys[i].data, r->keys[i].len);
                ctl_buf_putc(&b, '"');
            }
            ctl_buf_putc(&b, ']');
        }
        ctl_buf_puts(&b, "}\n");
        break;
    case CTL_FMT_FIELDS:
        fields_hdr(&b, r->header);
        ctl_buf_printf(&b, "\"ID\" : %lld\n\"TTL\" : %lld\n\"GrantedTTL\" : %lld\n",
                       (long long)r->id, (long long)r->ttl, (long long)r->grantedttl);
        for (size_t i = 0; i < r->n_keys; i++) {
            ctl_buf_puts(&b, "\"Key\" : ");
            ctl_go_quote(&b, r->keys[i].data, r->keys[i].len);
            ctl_buf_putc(&b, '\n');
        }
        break;
    case CTL_FMT_PROTOBUF:
        pb_hdr(&b, r->header);
        break;
    default:
        ctl_buf_free(&b);
        return table_unsupported(ctl);
    }
    return ctl_print_flush(&b);
}

static int print_leases(const struct ctl *ctl, const Etcdserverpb__LeaseLeasesResponse *r)
{
    struct ctl_buf b = {0};
    switch (ctl->format) {
    case CTL_FMT_SIMPLE:
        ctl_buf_printf(&b, "found %zu leases\n", r->n_leases);
        for (size_t i = 0; i < r->n_leases; i++) {
            lease_hex(&b, r->leases[i]->id);
            ctl_buf_putc(&b, '\n');
        }
        break;
    case CTL_FMT_JSON:
        ctl_buf_putc(&b, '{');
        json_hdr_flat(&b, r->header);
        ctl_buf_puts(&b, "\"leases\":[");
        for (size_t i = 0; i < r->n_leases; i++)
            ctl_buf_printf(&b, "%s{\"id\":%lld}", i ? "," : "", (long long)r->leases[i]->id);
        ctl_buf_puts(&b, "]}\n");
        break;
    case CTL_FMT_FIELDS:
        fields_hdr(&b, r->header);
        for (size_t i = 0; i < r->n_leases; i++)
            ctl_buf_printf(&b, "\"ID\" : %lld\n", (long long)r->leases[i]->id);
        break;
    case CTL_FMT_PROTOBUF:
        pb_hdr(&b, r->header);
        break;
    default:
        ctl_buf_free(&b);
        return table_unsupported(ctl);
    }
    return ctl_print_flush(&b);
}

/* ---------------------------------------------------------------------------------------------- */
/* Arguments */

/* etcdctl's leaseFromArgs: a lease ID in hexadecimal. Returns 0, or the exit code after the
 * error. */
static int lease_arg(const char *arg, int64_t *id)
{
    char *err = NULL;
    if (ctl_parse_int64(arg, 16, id, &err) == 0)
        return 0;
    int code = ctl_fail(CTL_EXIT_BAD_ARGS, "bad lease ID arg (%s), expecting ID in Hex",
                        err ? err : "out of memory");
    free(err);
    return code;
}

/* One call without a deadline (etcdctl's context.TODO()). */
static int call_no_deadline(struct cl_sync *s, struct cl_call *call, const struct cl_method *m,
                            const ProtobufCMessage *req)
{
    call->timeout_ms = 0;
    return cl_sync_call(s, call, m, req);
}

/* ---------------------------------------------------------------------------------------------- */
/* grant, revoke, timetolive, list */

/* Calls m as etcdctl's lease commands do: grant and revoke (what: "grant", "revoke") under the
 * command timeout, failing "failed to <what> lease (<error>)" with CTL_EXIT_ERROR; timetolive and
 * list (what NULL) without a deadline, failing with the bare error and CTL_EXIT_BAD_CONNECTION.
 * Returns 0 when the call succeeded (call->response is the answer), else the exit code. */
static int lease_rpc(struct ctl *ctl, struct cl_sync *s, struct cl_call *call,
                     const struct cl_method *m, const ProtobufCMessage *req, const char *what)
{
    int rc = what ? ctl_call(ctl, s, call, m, req) : call_no_deadline(s, call, m, req);
    if (rc == GRPC_OK)
        return 0;
    char *text = ctl_call_error(call);
    int code = what ? ctl_fail(CTL_EXIT_ERROR, "failed to %s lease (%s)", what, text)
                    : ctl_fail(CTL_EXIT_BAD_CONNECTION, "%s", text);
    free(text);
    return code;
}

static int run_grant(struct ctl *ctl)
{
    if (ctl->n_args != 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "lease grant command needs TTL argument");
    int64_t ttl;
    char *err = NULL;
    if (ctl_parse_int64(ctl->args[0], 10, &ttl, &err) < 0) {
        int code = ctl_fail(CTL_EXIT_BAD_ARGS, "bad TTL (%s)", err ? err : "out of memory");
        free(err);
        return code;
    }
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    req.ttl = ttl;
    struct cl_call call = {0};
    if (!(code = lease_rpc(ctl, s, &call, &cl_method_lease_grant, &req.base, "grant"))) {
        const Etcdserverpb__LeaseGrantResponse *r =
            (const Etcdserverpb__LeaseGrantResponse *)call.response;
        code = print_id_ttl(ctl, "granted", r->header, r->id, r->ttl, r->error ? r->error : "");
    }
    cl_call_reset(&call);
    return code;
}

static int run_revoke(struct ctl *ctl)
{
    if (ctl->n_args != 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "lease revoke command needs 1 argument");
    int64_t id;
    int code = lease_arg(ctl->args[0], &id);
    struct cl_sync *s = code ? NULL : ctl_client(ctl, &code);
    if (!s)
        return code;
    Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    req.id = id;
    struct cl_call call = {0};
    if (!(code = lease_rpc(ctl, s, &call, &cl_method_lease_revoke, &req.base, "revoke")))
        code = print_revoke(ctl, id, (const Etcdserverpb__LeaseRevokeResponse *)call.response);
    cl_call_reset(&call);
    return code;
}

static int run_timetolive(struct ctl *ctl)
{
    if (ctl->n_args != 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "lease timetolive command needs lease ID as argument");
    int64_t id;
    int code = lease_arg(ctl->args[0], &id);
    struct cl_sync *s = code ? NULL : ctl_client(ctl, &code);
    if (!s)
        return code;
    bool keys = ctl_flag_bool(&ctl->fs, "keys");
    Etcdserverpb__LeaseTimeToLiveRequest req = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    req.id = id;
    req.keys = keys;
    struct cl_call call = {0};
    if (!(code = lease_rpc(ctl, s, &call, &cl_method_lease_time_to_live, &req.base, NULL)))
        code = print_ttl(ctl, (const Etcdserverpb__LeaseTimeToLiveResponse *)call.response, keys);
    cl_call_reset(&call);
    return code;
}

static int run_list(struct ctl *ctl)
{
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    Etcdserverpb__LeaseLeasesRequest req = ETCDSERVERPB__LEASE_LEASES_REQUEST__INIT;
    struct cl_call call = {0};
    if (!(code = lease_rpc(ctl, s, &call, &cl_method_lease_leases, &req.base, NULL)))
        code = print_leases(ctl, (const Etcdserverpb__LeaseLeasesResponse *)call.response);
    cl_call_reset(&call);
    return code;
}

/* ---------------------------------------------------------------------------------------------- */
/* keep-alive */

struct ka_run {
    struct ctl *ctl;
    bool once;  /* --once */
    bool ended; /* the keep-alive's last callback ran */
    int code;   /* exit code decided meanwhile (a failed print, --once's error), or 0 */
};

static void on_keepalive(struct cl_keepalive *k, const Etcdserverpb__LeaseKeepAliveResponse *resp)
{
    struct ka_run *r = k->data;
    bool print = resp && r->code == 0 && (k->ended ? k->code == GRPC_OK : true);
    if (print) {
        int code = print_id_ttl(r->ctl, "keepalived", resp->header, resp->id, resp->ttl, NULL);
        if (code) {
            r->code = code;
            cl_keepalive_cancel(k);
        }
    }
    if (!k->ended)
        return;
    r->ended = true;
    if (r->once && r->code == 0 && k->code != GRPC_OK)
        r->code =
            ctl_fail(CTL_EXIT_BAD_CONNECTION, "%s", k->message ? k->message : LEASE_NOT_FOUND);
}

static int run_keepalive(struct ctl *ctl)
{
    if (ctl->n_args != 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "lease keep-alive command needs lease ID as argument");
    int64_t id;
    int code = lease_arg(ctl->args[0], &id);
    struct cl_sync *s = code ? NULL : ctl_client(ctl, &code);
    if (!s)
        return code;
    struct cl_client *c = cl_sync_client(s);
    uv_loop_t *loop = cl_client_loop(c);
    struct cl_lessor *lr = NULL;
    if (cl_lessor_new(c, &lr))
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    struct ka_run run = {.ctl = ctl, .once = ctl_flag_bool(&ctl->fs, "once")};
    struct cl_keepalive k = {.cb = on_keepalive, .data = &run};
    if (cl_keepalive_start(lr, &k, id, run.once)) {
        cl_lessor_close(lr);
        return ctl_fail(CTL_EXIT_ERROR, "cannot start the keep-alive");
    }
    while (!run.ended && uv_run(loop, UV_RUN_ONCE))
        ;
    cl_lessor_close(lr); /* frees itself as cl_sync_free runs the loop */
    uv_run(loop, UV_RUN_NOWAIT);
    code = run.code;
    cl_keepalive_reset(&k);
    if (code == 0 && !run.once && ctl->format == CTL_FMT_SIMPLE) {
        struct ctl_buf b = {0};
        ctl_buf_puts(&b, "lease ");
        lease_hex(&b, id);
        ctl_buf_puts(&b, " expired or revoked.\n");
        code = ctl_print_flush(&b);
    }
    return code;
}

/* ---------------------------------------------------------------------------------------------- */
/* The commands */

static const struct ctl_flag_spec ttl_flags[] = {
    {"keys", 0, CTL_FLAG_BOOL, "false", "Get keys attached to this lease"},
};

static const struct ctl_flag_spec keepalive_flags[] = {
    {"once", 0, CTL_FLAG_BOOL, "false",
     "Resets the keep-alive time to its original value and exits immediately"},
};

static const struct ctl_command cmd_grant = {
    .name = "grant",
    .use = "<ttl>",
    .summary = "Creates leases",
    .description = "Grants a lease of <ttl> seconds and prints its ID (hexadecimal).\n",
    .run = run_grant,
};

static const struct ctl_command cmd_keepalive = {
    .name = "keep-alive",
    .use = "[options] <leaseID>",
    .summary = "Keeps leases alive (renew)",
    .description = "Renews the lease every third of its TTL and prints each renewal, until the\n"
                   "lease has expired or was revoked. With --once, renews it once and exits.\n",
    .flags = keepalive_flags,
    .n_flags = sizeof keepalive_flags / sizeof keepalive_flags[0],
    .run = run_keepalive,
};

static const struct ctl_command cmd_list = {
    .name = "list",
    .use = "",
    .summary = "List all active leases",
    .run = run_list,
};

static const struct ctl_command cmd_revoke = {
    .name = "revoke",
    .use = "<leaseID>",
    .summary = "Revokes leases",
    .description = "Revokes the lease <leaseID> (hexadecimal) and deletes its keys.\n",
    .run = run_revoke,
};

static const struct ctl_command cmd_timetolive = {
    .name = "timetolive",
    .use = "<leaseID> [options]",
    .summary = "Get lease information",
    .description = "Prints the lease's granted and remaining TTL (with --keys, its keys).\n",
    .flags = ttl_flags,
    .n_flags = sizeof ttl_flags / sizeof ttl_flags[0],
    .run = run_timetolive,
};

static const struct ctl_command *const lease_subs[] = {
    &cmd_grant, &cmd_keepalive, &cmd_list, &cmd_revoke, &cmd_timetolive,
};

const struct ctl_command ctl_cmd_lease = {
    .name = "lease",
    .use = "<subcommand>",
    .summary = "Lease related commands",
    .subs = lease_subs,
    .n_subs = sizeof lease_subs / sizeof lease_subs[0],
};
