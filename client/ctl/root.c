/* client/ctl/root.c — the command tree's root: global flags, CAIRNCTL_* environment variables,
 * finding the command as cobra does (flags anywhere, unique prefixes match), `help`, and running.
 *
 * Errors of the command line are reported as etcdctl (cobra) reports them: for a flag error,
 * "Error: <msg>" on stderr, the command's help on stdout, an empty line and "Error: <msg>" again
 * on stderr, exit 1; for an unknown command "Error: unknown command ..." with a hint, exit 1. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/help.h"
#include "client/ctl/printer.h"

static const struct ctl_flag_spec global_flags[] = {
    {"cacert", 0, CTL_FLAG_STRING, "", "CA bundle to verify TLS servers with (not supported)"},
    {"cert", 0, CTL_FLAG_STRING, "", "TLS client certificate file (not supported)"},
    {"command-timeout", 0, CTL_FLAG_DURATION, "5s",
     "time limit of a command's requests (the dial timeout excluded)"},
    {"debug", 0, CTL_FLAG_BOOL, "false", "accepted for etcdctl's sake; does nothing"},
    {"dial-timeout", 0, CTL_FLAG_DURATION, "2s", "time limit of connecting to an endpoint"},
    {"discovery-srv", 'd', CTL_FLAG_STRING, "", "domain of DNS SRV discovery (not supported)"},
    {"discovery-srv-name", 0, CTL_FLAG_STRING, "",
     "service name of DNS SRV discovery (not supported)"},
    {"endpoints", 0, CTL_FLAG_STRINGS, "127.0.0.1:2379", "the servers, comma-separated host:port"},
    {"hex", 0, CTL_FLAG_BOOL, "false", "print keys and values as hex escapes"},
    {"insecure-discovery", 0, CTL_FLAG_BOOL, "true", "accept insecure SRV records (no effect)"},
    {"insecure-skip-tls-verify", 0, CTL_FLAG_BOOL, "false",
     "skip TLS certificate checks (not supported)"},
    {"insecure-transport", 0, CTL_FLAG_BOOL, "true", "plain-text connections (the only kind)"},
    {"keepalive-time", 0, CTL_FLAG_DURATION, "2s", "keepalive interval (accepted, not used)"},
    {"keepalive-timeout", 0, CTL_FLAG_DURATION, "6s", "keepalive timeout (accepted, not used)"},
    {"key", 0, CTL_FLAG_STRING, "", "TLS client key file (not supported)"},
    {"password", 0, CTL_FLAG_STRING, "", "password for authentication (not supported)"},
    {"user", 0, CTL_FLAG_STRING, "", "user[:password] for authentication (not supported)"},
    {"write-out", 'w', CTL_FLAG_STRING, "simple",
     "output format: fields, json, protobuf, simple or table"},
};

static const struct ctl_command *const root_subs[] = {
    &ctl_cmd_alarm, &ctl_cmd_compaction, &ctl_cmd_del,     &ctl_cmd_elect,  &ctl_cmd_endpoint,
    &ctl_cmd_get,   &ctl_cmd_lease,      &ctl_cmd_lock,    &ctl_cmd_member, &ctl_cmd_move_leader,
    &ctl_cmd_put,   &ctl_cmd_txn,        &ctl_cmd_version, &ctl_cmd_watch,
};

const struct ctl_command ctl_root = {
    .name = "cairnctl",
    .use = "",
    .summary = "A command line client for cairn (and etcd v3).",
    .pflags = global_flags,
    .n_pflags = sizeof global_flags / sizeof global_flags[0],
    .subs = root_subs,
    .n_subs = sizeof root_subs / sizeof root_subs[0],
};

/* ---------------------------------------------------------------------------------------------- */
/* Finding the command */

/* The sub-command of cmd named word (exactly, or by a unique prefix), or NULL. */
static const struct ctl_command *find_sub(const struct ctl_command *cmd, const char *word)
{
    const struct ctl_command *found = NULL;
    size_t n = strlen(word), matches = 0;
    for (size_t i = 0; i < cmd->n_subs; i++) {
        if (strcmp(cmd->subs[i]->name, word) == 0)
            return cmd->subs[i];
        if (n && strncmp(cmd->subs[i]->name, word, n) == 0) {
            found = cmd->subs[i];
            matches++;
        }
    }
    return matches == 1 ? found : NULL;
}

/* Whether "--name" / "-c" names a flag that takes no value (a bool) in fs. */
static bool takes_no_value(const struct ctl_flagset *fs, const char *arg)
{
    const struct ctl_flag *f =
        arg[1] == '-' ? ctl_flag_find(fs, arg + 2) : ctl_flag_find_short(fs, arg[1]);
    return f && f->spec->type == CTL_FLAG_BOOL;
}

/* The index in argv[from..argc) of the first word that is not a flag or a flag's value (cobra's
 * stripFlags), or argc. */
static size_t first_word(char **argv, size_t from, size_t argc, const struct ctl_flagset *fs)
{
    for (size_t i = from; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--") == 0)
            return argc;
        if (s[0] == '-' && !strchr(s, '=') &&
            ((s[1] == '-' && !takes_no_value(fs, s)) ||
             (s[1] != '-' && strlen(s) == 2 && !takes_no_value(fs, s)))) {
            if (i + 2 >= argc) /* cobra stops here when the value is the last word */
                return argc;
            i++;
            continue;
        }
        if (s[0] != '\0' && s[0] != '-')
            return i;
    }
    return argc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Globals */

static int set_from_env(struct ctl_flagset *fs)
{
    for (size_t i = 0; i < sizeof global_flags / sizeof global_flags[0]; i++) {
        struct ctl_flag *f = ctl_flag_find(fs, global_flags[i].name);
        if (!f || f->changed)
            continue;
        char env[64] = "CAIRNCTL_";
        size_t n = strlen(env);
        for (const char *p = global_flags[i].name; *p && n + 1 < sizeof env; p++)
            env[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
        env[n] = '\0';
        const char *v = getenv(env);
        if (!v)
            continue;
        char *err = NULL;
        if (ctl_flag_set(f, v, &err) < 0) {
            int code = ctl_fail(CTL_EXIT_BAD_ARGS, "invalid value \"%s\" for %s: %s", v, env,
                                err ? err : "out of memory");
            free(err);
            return code;
        }
    }
    return 0;
}

/* The features of etcdctl's global flags that cairnctl does not have. */
static int check_unsupported(const struct ctl_flagset *fs)
{
    static const char *const tls[] = {"cert", "key", "cacert"};
    for (size_t i = 0; i < 3; i++) {
        if (ctl_flag_changed(fs, tls[i]) && *ctl_flag_str(fs, tls[i]) == '\0')
            return ctl_fail(CTL_EXIT_BAD_ARGS, "empty string is passed to --%s option", tls[i]);
        if (*ctl_flag_str(fs, tls[i]))
            return ctl_fail(CTL_EXIT_BAD_FEATURE, "--%s: TLS is not supported by cairnctl", tls[i]);
    }
    if (!ctl_flag_bool(fs, "insecure-transport") || ctl_flag_bool(fs, "insecure-skip-tls-verify"))
        return ctl_fail(CTL_EXIT_BAD_FEATURE, "TLS is not supported by cairnctl");
    if (*ctl_flag_str(fs, "user") || *ctl_flag_str(fs, "password"))
        return ctl_fail(CTL_EXIT_BAD_FEATURE, "authentication is not supported by cairnctl");
    if (*ctl_flag_str(fs, "discovery-srv"))
        return ctl_fail(CTL_EXIT_BAD_FEATURE, "DNS discovery is not supported by cairnctl");
    return 0;
}

static int take_globals(struct ctl *ctl)
{
    const struct ctl_flagset *fs = &ctl->fs;
    int code = check_unsupported(fs);
    if (code)
        return code;
    const struct ctl_flag *eps = ctl_flag_find(fs, "endpoints");
    ctl->endpoints = calloc(eps->n_list ? eps->n_list : 1, sizeof *ctl->endpoints);
    if (!ctl->endpoints)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    for (size_t i = 0; i < eps->n_list; i++) {
        const char *s = eps->list[i], *e = s + strlen(s);
        while (isspace((unsigned char)*s))
            s++;
        while (e > s && isspace((unsigned char)e[-1]))
            e--;
        if (!(ctl->endpoints[ctl->n_endpoints] = strndup(s, (size_t)(e - s))))
            return ctl_fail(CTL_EXIT_ERROR, "out of memory");
        ctl->n_endpoints++;
    }
    if (ctl->n_endpoints == 0)
        return ctl_fail(CTL_EXIT_BAD_CONNECTION, "etcdclient: no available endpoints");
    ctl->dial_timeout_ns = ctl_flag_int(fs, "dial-timeout");
    ctl->command_timeout_ns = ctl_flag_int(fs, "command-timeout");
    ctl->hex = ctl_flag_bool(fs, "hex");
    static const struct {
        const char *name;
        enum ctl_format f;
    } formats[] = {{"simple", CTL_FMT_SIMPLE},
                   {"json", CTL_FMT_JSON},
                   {"fields", CTL_FMT_FIELDS},
                   {"table", CTL_FMT_TABLE},
                   {"protobuf", CTL_FMT_PROTOBUF}};
    const char *w = ctl_flag_str(fs, "write-out");
    for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++) {
        if (strcmp(w, formats[i].name) == 0) {
            ctl->format = formats[i].f;
            ctl->p = ctl_printer_for(formats[i].f);
            return 0;
        }
    }
    return ctl_fail(CTL_EXIT_BAD_FEATURE, "unsupported output format");
}

/* ---------------------------------------------------------------------------------------------- */
/* Running */

static int flag_error(const struct ctl_cmd_path *p, const char *msg)
{
    fflush(stdout);
    fprintf(stderr, "Error: %s\n", msg);
    ctl_help_print(p);
    fputs("\n", stderr);
    fprintf(stderr, "Error: %s\n", msg);
    return CTL_EXIT_ERROR;
}

/* `help [command...]` */
static int run_help(char **words, size_t n)
{
    struct ctl_cmd_path p = {.path = {&ctl_root}};
    for (size_t i = 0; i < n; i++) {
        const struct ctl_command *sub = find_sub(p.path[p.depth], words[i]);
        if (!sub) {
            if (p.depth == 0) {
                fprintf(stderr, "Unknown help topic [`%s`]\n", words[i]);
                p.depth = 0;
            }
            break;
        }
        if (p.depth + 1 >= 8)
            break;
        p.path[++p.depth] = sub;
    }
    ctl_help_print(&p);
    return 0;
}

int ctl_main(int argc, char **argv)
{
    size_t n = argc > 0 ? (size_t)argc : 0;
    struct ctl ctl = {.argv = argv, .argc = n};
    struct ctl_cmd_path path = {.path = {&ctl_root}};
    char **rest = calloc(n + 1, sizeof *rest);
    if (!rest)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    size_t n_rest = 0;
    for (size_t i = 1; i < n; i++)
        rest[n_rest++] = argv[i];
    int code = 0;
    /* walk down the tree: the first non-flag word at each level names a sub-command */
    for (;;) {
        const struct ctl_command *cmd = path.path[path.depth];
        struct ctl_flagset fs = {0};
        if (ctl_cmd_flagset(&path, &fs) < 0) {
            ctl_flagset_free(&fs);
            code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
        size_t w = first_word(rest, 0, n_rest, &fs);
        ctl_flagset_free(&fs);
        if (w >= n_rest || cmd->n_subs == 0)
            break;
        if (path.depth == 0 && strcmp(rest[w], "help") == 0) {
            code = run_help(rest + w + 1, n_rest - w - 1);
            goto out;
        }
        const struct ctl_command *sub = find_sub(cmd, rest[w]);
        if (!sub) {
            if (path.depth == 0) {
                fflush(stdout);
                fprintf(stderr,
                        "Error: unknown command \"%s\" for \"cairnctl\"\n"
                        "Run 'cairnctl --help' for usage.\n",
                        rest[w]);
                code = ctl_fail(CTL_EXIT_ERROR, "unknown command \"%s\" for \"cairnctl\"", rest[w]);
                goto out;
            }
            break; /* a parent given arguments: its help, as cobra prints it */
        }
        memmove(rest + w, rest + w + 1, (n_rest - w - 1) * sizeof *rest);
        n_rest--;
        if (path.depth + 1 >= 8)
            break;
        path.path[++path.depth] = sub;
    }
    ctl.cmd = path.path[path.depth];
    if (ctl_cmd_flagset(&path, &ctl.fs) < 0) {
        code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
        goto out;
    }
    char *err = NULL;
    if (ctl_flagset_parse(&ctl.fs, rest, n_rest, &ctl.args, &ctl.n_args, &err) < 0) {
        code = flag_error(&path, err);
        free(err);
        goto out;
    }
    if (ctl_flag_bool(&ctl.fs, "help") || !ctl.cmd->run) {
        ctl_help_print(&path);
        goto out;
    }
    if ((code = set_from_env(&ctl.fs)) || (code = take_globals(&ctl)))
        goto out;
    code = ctl.cmd->run(&ctl);
out:
    if (ctl.sync)
        cl_sync_free(ctl.sync);
    for (size_t i = 0; i < ctl.n_endpoints; i++)
        free(ctl.endpoints[i]);
    free(ctl.endpoints);
    free(ctl.args);
    ctl_flagset_free(&ctl.fs);
    free(rest);
    fflush(stdout);
    return code;
}
