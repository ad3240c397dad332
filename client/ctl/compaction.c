/* client/ctl/compaction.c — `compaction [options] <revision>`: KV.Compact
 * (ctlv3/command/compaction_command.go). It prints the same line in every output format, as
 * etcdctl does. */
#include <stdio.h>
#include <stdlib.h>

#include "client/ctl/printer.h"

static const struct ctl_flag_spec compaction_flags[] = {
    {"physical", 0, CTL_FLAG_BOOL, "false",
     "Wait until the compacted revisions are removed from the backend"},
};

static int run_compaction(struct ctl *ctl)
{
    if (ctl->n_args != 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "compaction command needs 1 argument");
    int64_t rev;
    char *err = NULL;
    if (ctl_parse_int64(ctl->args[0], 10, &rev, &err) < 0) {
        int code = ctl_fail(CTL_EXIT_ERROR, "%s", err ? err : "out of memory");
        free(err);
        return code;
    }
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    Etcdserverpb__CompactionRequest req = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    req.revision = rev;
    req.physical = ctl_flag_bool(&ctl->fs, "physical");
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &cl_method_compact, &req.base) != GRPC_OK) {
        code = ctl_fail_call(&call);
    } else {
        printf("compacted revision %lld\n", (long long)rev);
        code = fflush(stdout) == 0 ? 0 : ctl_fail(CTL_EXIT_IO, "writing the output failed");
    }
    cl_call_reset(&call);
    return code;
}

const struct ctl_command ctl_cmd_compaction = {
    .name = "compaction",
    .use = "[options] <revision>",
    .summary = "Discards the key-value history before a revision",
    .flags = compaction_flags,
    .n_flags = sizeof compaction_flags / sizeof compaction_flags[0],
    .run = run_compaction,
};
