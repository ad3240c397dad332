/* client/ctl/get.c — `get [options] <key> [range_end]`: KV.Range, with etcdctl's options and
 * checks (ctlv3/command/get_command.go). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/ctl/printer.h"
#include "client/ctl/text.h"

static const struct ctl_flag_spec get_flags[] = {
    {"consistency", 0, CTL_FLAG_STRING, "l", "Linearizable (l) or serializable (s) read"},
    {"count-only", 0, CTL_FLAG_BOOL, "false", "Print only the number of keys (-w fields)"},
    {"from-key", 0, CTL_FLAG_BOOL, "false", "Get every key at or after <key> (byte order)"},
    {"keys-only", 0, CTL_FLAG_BOOL, "false", "Get the keys without their values"},
    {"limit", 0, CTL_FLAG_INT64, "0", "At most this many keys (0: no limit)"},
    {"order", 0, CTL_FLAG_STRING, "", "Sort order: ASCEND or DESCEND (default ascending)"},
    {"prefix", 0, CTL_FLAG_BOOL, "false", "Get every key that starts with <key>"},
    {"print-value-only", 0, CTL_FLAG_BOOL, "false", "Print only the values (simple format only)"},
    {"rev", 0, CTL_FLAG_INT64, "0", "Read at this revision (0: the current one)"},
    {"sort-by", 0, CTL_FLAG_STRING, "", "Sort by CREATE, KEY, MODIFY, VALUE or VERSION"},
};

/* The sort order and target names etcdctl takes (case-insensitive). */
static int sort_order(const char *s, Etcdserverpb__RangeRequest__SortOrder *o)
{
    if (strcasecmp(s, "ASCEND") == 0)
        *o = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND;
    else if (strcasecmp(s, "DESCEND") == 0)
        *o = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    else if (*s == '\0')
        *o = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE;
    else
        return -1;
    return 0;
}

static int sort_target(const char *s, Etcdserverpb__RangeRequest__SortTarget *t)
{
    static const struct {
        const char *name;
        Etcdserverpb__RangeRequest__SortTarget t;
    } names[] = {{"CREATE", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__CREATE},
                 {"KEY", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY},
                 {"MODIFY", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__MOD},
                 {"VALUE", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VALUE},
                 {"VERSION", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__VERSION},
                 {"", ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *t = names[i].t;
            return 0;
        }
    }
    return -1;
}

static int nomem(void)
{
    return ctl_fail(CTL_EXIT_ERROR, "out of memory");
}

int ctl_get_op_build(const struct ctl_flagset *fs, char **args, size_t n, struct ctl_get_op *op)
{
    *op = (struct ctl_get_op){.req = ETCDSERVERPB__RANGE_REQUEST__INIT};
    Etcdserverpb__RangeRequest *r = &op->req;
    bool prefix = ctl_flag_bool(fs, "prefix"), from_key = ctl_flag_bool(fs, "from-key");
    if (n == 0)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "get command needs one argument as key and an optional "
                                           "argument as range_end");
    if (prefix && from_key)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "`--prefix` and `--from-key` cannot be set at the same "
                                           "time, choose one");
    op->count_only = ctl_flag_bool(fs, "count-only");
    if (op->count_only && ctl_flag_bool(fs, "keys-only"))
        return ctl_fail(CTL_EXIT_BAD_ARGS, "`--keys-only` and `--count-only` cannot be set at the "
                                           "same time, choose one");
    const char *consistency = ctl_flag_str(fs, "consistency");
    if (strcmp(consistency, "s") == 0) {
        r->serializable = true;
    } else if (strcmp(consistency, "l") != 0) {
        struct ctl_buf q = {0};
        ctl_go_quote(&q, consistency, strlen(consistency));
        int code = ctl_fail(CTL_EXIT_BAD_FEATURE, "unknown consistency flag %s", q.p ? q.p : "");
        ctl_buf_free(&q);
        return code;
    }
    if (ctl_bytes_set(&op->key, args[0], strlen(args[0])) < 0)
        return nomem();
    if (n > 1) {
        if (prefix || from_key)
            return ctl_fail(CTL_EXIT_BAD_ARGS, "too many arguments, only accept one argument when "
                                               "`--prefix` or `--from-key` is set");
        if (ctl_bytes_set(&op->end, args[1], strlen(args[1])) < 0)
            return nomem();
    }
    r->limit = ctl_flag_int(fs, "limit");
    if (ctl_flag_int(fs, "rev") > 0)
        r->revision = ctl_flag_int(fs, "rev");
    const char *order = ctl_flag_str(fs, "order"), *target = ctl_flag_str(fs, "sort-by");
    if (sort_order(order, &r->sort_order) < 0)
        return ctl_fail(CTL_EXIT_BAD_FEATURE, "bad sort order %s", order);
    if (sort_target(target, &r->sort_target) < 0)
        return ctl_fail(CTL_EXIT_BAD_FEATURE, "bad sort target %s", target);
    /* clientv3's WithSort: keys come sorted ascending anyway, so that order is no order */
    if (r->sort_target == ETCDSERVERPB__RANGE_REQUEST__SORT_TARGET__KEY &&
        r->sort_order == ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__ASCEND)
        r->sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__NONE;
    if (prefix || from_key) {
        int err;
        if (op->key.len == 0) /* every key: from "\0" on */
            err = ctl_bytes_set(&op->key, "", 1) | ctl_bytes_set(&op->end, "", 1);
        else if (prefix)
            err = ctl_prefix_end(op->key.data, op->key.len, &op->end);
        else
            err = ctl_bytes_set(&op->end, "", 1);
        if (err)
            return nomem();
    }
    r->keys_only = ctl_flag_bool(fs, "keys-only");
    r->count_only = op->count_only;
    r->key = (ProtobufCBinaryData){op->key.len, op->key.data};
    r->range_end = (ProtobufCBinaryData){op->end.len, op->end.data};
    return 0;
}

void ctl_get_op_free(struct ctl_get_op *op)
{
    ctl_bytes_free(&op->key);
    ctl_bytes_free(&op->end);
}

static int run_get(struct ctl *ctl)
{
    struct ctl_get_op op;
    int code = ctl_get_op_build(&ctl->fs, ctl->args, ctl->n_args, &op);
    if (code == 0 && op.count_only && ctl->format != CTL_FMT_FIELDS)
        code = ctl_fail(CTL_EXIT_BAD_ARGS, "--count-only is only for `--write-out=fields`");
    struct cl_sync *s = code ? NULL : ctl_client(ctl, &code);
    if (!s) {
        ctl_get_op_free(&op);
        return code;
    }
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &cl_method_range, &op.req.base) != GRPC_OK) {
        code = ctl_fail_call(&call);
    } else if (ctl_flag_bool(&ctl->fs, "print-value-only") && ctl->format != CTL_FMT_SIMPLE) {
        code = ctl_fail(CTL_EXIT_BAD_ARGS, "print-value-only is only for `--write-out=simple`");
    } else {
        ctl->value_only = ctl_flag_bool(&ctl->fs, "print-value-only");
        code = CTL_PRINT(ctl, get, (const Etcdserverpb__RangeResponse *)call.response);
    }
    cl_call_reset(&call);
    ctl_get_op_free(&op);
    return code;
}

const struct ctl_command ctl_cmd_get = {
    .name = "get",
    .use = "[options] <key> [range_end]",
    .summary = "Reads a key or a range of keys",
    .flags = get_flags,
    .n_flags = sizeof get_flags / sizeof get_flags[0],
    .run = run_get,
};
