/* client/ctl/put.c — `put [options] <key> <value>`: KV.Put, the value from stdin when it is not
 * an argument (ctlv3/command/put_command.go). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/printer.h"

static const struct ctl_flag_spec put_flags[] = {
    {"ignore-lease", 0, CTL_FLAG_BOOL, "false", "Keep the key's current lease"},
    {"ignore-value", 0, CTL_FLAG_BOOL, "false", "Keep the key's current value"},
    {"lease", 0, CTL_FLAG_STRING, "0", "Attach the key to this lease (ID in hexadecimal)"},
    {"prev-kv", 0, CTL_FLAG_BOOL, "false", "Print the key-value pair as it was before"},
};

#define PUT_USAGE "put command needs 1 argument and input from stdin or 2 arguments"

/* All of stdin into *out. Returns 0, or -1 on a read error or when out of memory. */
static int read_stdin(struct ctl_bytes *out)
{
    size_t cap = 4096, len = 0;
    uint8_t *p = malloc(cap + 1);
    if (!p)
        return -1;
    for (;;) {
        if (len == cap) {
            uint8_t *q = cap < SIZE_MAX / 4 ? realloc(p, cap * 2 + 1) : NULL;
            if (!q) {
                free(p);
                return -1;
            }
            p = q;
            cap *= 2;
        }
        size_t n = fread(p + len, 1, cap - len, stdin);
        len += n;
        if (n == 0)
            break;
    }
    if (ferror(stdin)) {
        free(p);
        return -1;
    }
    p[len] = '\0';
    ctl_bytes_free(out);
    out->data = p;
    out->len = len;
    return 0;
}

int ctl_put_op_build(const struct ctl_flagset *fs, char **args, size_t n, bool value_from_stdin,
                     struct ctl_put_op *op)
{
    *op = (struct ctl_put_op){.req = ETCDSERVERPB__PUT_REQUEST__INIT};
    bool ignore_value = ctl_flag_bool(fs, "ignore-value");
    if (n == 0)
        return ctl_fail(CTL_EXIT_BAD_ARGS, PUT_USAGE);
    if (ctl_bytes_set(&op->key, args[0], strlen(args[0])) < 0)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    if (ignore_value && n > 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS,
                        "put command needs only 1 argument when 'ignore-value' is set");
    if (!ignore_value) {
        if (n > 1) {
            if (ctl_bytes_set(&op->value, args[1], strlen(args[1])) < 0)
                return ctl_fail(CTL_EXIT_ERROR, "out of memory");
        } else if (!value_from_stdin || read_stdin(&op->value) < 0 || op->value.len == 0) {
            return ctl_fail(CTL_EXIT_BAD_ARGS, PUT_USAGE);
        }
    }
    int64_t lease;
    char *err = NULL;
    if (ctl_parse_int64(ctl_flag_str(fs, "lease"), 16, &lease, &err) < 0) {
        int code = ctl_fail(CTL_EXIT_BAD_ARGS, "bad lease ID (%s), expecting ID in Hex",
                            err ? err : "out of memory");
        free(err);
        return code;
    }
    Etcdserverpb__PutRequest *r = &op->req;
    r->key = (ProtobufCBinaryData){op->key.len, op->key.data};
    r->value = (ProtobufCBinaryData){op->value.len, op->value.data};
    r->lease = lease;
    r->prev_kv = ctl_flag_bool(fs, "prev-kv");
    r->ignore_value = ignore_value;
    r->ignore_lease = ctl_flag_bool(fs, "ignore-lease");
    return 0;
}

void ctl_put_op_free(struct ctl_put_op *op)
{
    ctl_bytes_free(&op->key);
    ctl_bytes_free(&op->value);
}

static int run_put(struct ctl *ctl)
{
    struct ctl_put_op op;
    int code = ctl_put_op_build(&ctl->fs, ctl->args, ctl->n_args, true, &op);
    struct cl_sync *s = code ? NULL : ctl_client(ctl, &code);
    if (!s) {
        ctl_put_op_free(&op);
        return code;
    }
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &cl_method_put, &op.req.base) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, put, (const Etcdserverpb__PutResponse *)call.response);
    cl_call_reset(&call);
    ctl_put_op_free(&op);
    return code;
}

const struct ctl_command ctl_cmd_put = {
    .name = "put",
    .use = "[options] <key> <value> (<value> can also be given from stdin)",
    .summary = "Writes a key with a value",
    .description = "Writes <key> with <value>.\n"
                   "\n"
                   "A <value> that starts with '-' reads as a flag; put \"--\" before it:\n"
                   "\n"
                   "$ put <key> -- <value>\n"
                   "$ put -- <key> <value>\n"
                   "\n"
                   "Without a <value> argument (and without --ignore-value), the value is all of\n"
                   "standard input, e.g.\n"
                   "$ cat file | put <key>\n",
    .flags = put_flags,
    .n_flags = sizeof put_flags / sizeof put_flags[0],
    .run = run_put,
};
