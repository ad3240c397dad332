/* client/ctl/del.c — `del [options] <key> [range_end]`: KV.DeleteRange
 * (ctlv3/command/del_command.go). */
#include <stdlib.h>
#include <string.h>

#include "client/ctl/printer.h"

static const struct ctl_flag_spec del_flags[] = {
    {"from-key", 0, CTL_FLAG_BOOL, "false", "Delete every key at or after <key> (byte order)"},
    {"prefix", 0, CTL_FLAG_BOOL, "false", "Delete every key that starts with <key>"},
    {"prev-kv", 0, CTL_FLAG_BOOL, "false", "Print the deleted key-value pairs"},
};

int ctl_del_op_build(const struct ctl_flagset *fs, char **args, size_t n, struct ctl_del_op *op)
{
    *op = (struct ctl_del_op){.req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT};
    bool prefix = ctl_flag_bool(fs, "prefix"), from_key = ctl_flag_bool(fs, "from-key");
    if (n == 0 || n > 2)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "del command needs one argument as key and an optional "
                                           "argument as range_end");
    if (prefix && from_key)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "`--prefix` and `--from-key` cannot be set at the same "
                                           "time, choose one");
    if (ctl_bytes_set(&op->key, args[0], strlen(args[0])) < 0)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    if (n > 1) {
        if (prefix || from_key)
            return ctl_fail(CTL_EXIT_BAD_ARGS, "too many arguments, only accept one argument when "
                                               "`--prefix` or `--from-key` is set");
        if (ctl_bytes_set(&op->end, args[1], strlen(args[1])) < 0)
            return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    }
    if (prefix || from_key) {
        int err;
        if (op->key.len == 0)
            err = ctl_bytes_set(&op->key, "", 1) | ctl_bytes_set(&op->end, "", 1);
        else if (prefix)
            err = ctl_prefix_end(op->key.data, op->key.len, &op->end);
        else
            err = ctl_bytes_set(&op->end, "", 1);
        if (err)
            return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    }
    op->req.key = (ProtobufCBinaryData){op->key.len, op->key.data};
    op->req.range_end = (ProtobufCBinaryData){op->end.len, op->end.data};
    op->req.prev_kv = ctl_flag_bool(fs, "prev-kv");
    return 0;
}

void ctl_del_op_free(struct ctl_del_op *op)
{
    ctl_bytes_free(&op->key);
    ctl_bytes_free(&op->end);
}

static int run_del(struct ctl *ctl)
{
    struct ctl_del_op op;
    int code = ctl_del_op_build(&ctl->fs, ctl->args, ctl->n_args, &op);
    struct cl_sync *s = code ? NULL : ctl_client(ctl, &code);
    if (!s) {
        ctl_del_op_free(&op);
        return code;
    }
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &cl_method_delete_range, &op.req.base) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, del, (const Etcdserverpb__DeleteRangeResponse *)call.response);
    cl_call_reset(&call);
    ctl_del_op_free(&op);
    return code;
}

const struct ctl_command ctl_cmd_del = {
    .name = "del",
    .use = "[options] <key> [range_end]",
    .summary = "Deletes a key or the keys of a range [key, range_end)",
    .flags = del_flags,
    .n_flags = sizeof del_flags / sizeof del_flags[0],
    .run = run_del,
};
