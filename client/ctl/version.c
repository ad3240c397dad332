/* client/ctl/version.c — `version`: cairnctl's version and the etcd API version it speaks. */
#include <stdio.h>

#include "client/ctl/ctl.h"

static int run_version(struct ctl *ctl)
{
    (void)ctl;
    printf("cairnctl version: %s\nAPI version: %s\n", CTL_VERSION, CTL_API_VERSION);
    return fflush(stdout) == 0 ? 0 : ctl_fail(CTL_EXIT_IO, "writing the output failed");
}

const struct ctl_command ctl_cmd_version = {
    .name = "version",
    .use = "",
    .summary = "Prints the version of cairnctl",
    .run = run_version,
};
