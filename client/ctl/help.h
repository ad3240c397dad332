/* client/ctl/help.h — help text as etcdctl lays it out (NAME, USAGE, VERSION, API VERSION,
 * COMMANDS, DESCRIPTION, OPTIONS, GLOBAL OPTIONS), aligned the way Go's text/tabwriter aligns it
 * with tabs. */
#ifndef CAIRN_CTL_HELP_H
#define CAIRN_CTL_HELP_H

#include "client/ctl/ctl.h"

/* A command with the chain of commands above it: path[0] is the root, path[depth] the command. */
struct ctl_cmd_path {
    const struct ctl_command *path[8];
    size_t depth;
};

/* Writes the help of p's command to stdout. */
void ctl_help_print(const struct ctl_cmd_path *p);

/* The flags the command of p accepts: its own, its persistent ones, those of the commands above
 * it, and -h/--help. Returns 0 or -1 when out of memory. */
int ctl_cmd_flagset(const struct ctl_cmd_path *p, struct ctl_flagset *fs);

#endif
