/* client/ctl/ctl.h — what cairnctl's files share: the invocation context, exit codes, the command
 * tree and the helpers every command uses.
 *
 * cairnctl is a clone of etcdctl 3.4 (API v3) for the commands cairnd offers. A run is one
 * struct ctl: the parsed global flags, the chosen printer and, once a command needs one, a
 * blocking client (client/cairn_client.h, cl_sync). Commands return the process's exit code;
 * nothing calls exit() but main, so every command frees what it made. */
#ifndef CAIRN_CTL_CTL_H
#define CAIRN_CTL_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "client/cairn_client.h"
#include "client/ctl/flags.h"

/* The version cairnctl reports, and the etcd API version it speaks. */
#define CTL_VERSION     "0.1.0"
#define CTL_API_VERSION "3.4"

/* Exit codes, etcdctl's (ctlv3/command/error.go). */
enum ctl_exit {
    CTL_EXIT_SUCCESS = 0,
    CTL_EXIT_ERROR = 1,
    CTL_EXIT_BAD_CONNECTION = 2,
    CTL_EXIT_INVALID_INPUT = 3, /* txn input */
    CTL_EXIT_BAD_FEATURE = 4,   /* a valid flag with an unsupported value */
    CTL_EXIT_INTERRUPTED = 5,
    CTL_EXIT_IO = 6,
    CTL_EXIT_BAD_ARGS = 128
};

/* Output formats (-w/--write-out). */
enum ctl_format { CTL_FMT_SIMPLE, CTL_FMT_JSON, CTL_FMT_FIELDS, CTL_FMT_TABLE, CTL_FMT_PROTOBUF };

struct ctl_printer;
struct ctl_command;

/* One run of cairnctl. */
struct ctl {
    /* global flags, after flags, environment and defaults */
    char **endpoints;            /* --endpoints, split at commas and trimmed (owned) */
    size_t n_endpoints;          /* at least 1 */
    int64_t dial_timeout_ns;     /* --dial-timeout */
    int64_t command_timeout_ns;  /* --command-timeout */
    bool hex;                    /* --hex */
    enum ctl_format format;      /* -w/--write-out */
    const struct ctl_printer *p; /* the printer of format */
    bool value_only;             /* get --print-value-only (simple printer only) */

    /* the command being run */
    const struct ctl_command *cmd; /* found in the tree */
    struct ctl_flagset fs;         /* its flags with the inherited ones (owned) */
    char **args;                   /* its positional arguments (borrowed from argv) */
    size_t n_args;
    char **argv; /* the whole command line (os.Args; borrowed) */
    size_t argc;

    struct cl_sync *sync; /* the blocking client over all endpoints, made on first use */
};

/* A command of the tree: a leaf runs, a parent only groups sub-commands (and prints its help). */
struct ctl_command {
    const char *name;                      /* "get", "status" */
    const char *use;                       /* usage line after the command path, e.g. "[options]
                                              <key> [range_end]" ("" for none) */
    const char *summary;                   /* one line for the command lists */
    const char *description;               /* longer text for its help, or NULL */
    const struct ctl_flag_spec *flags;     /* its own flags */
    size_t n_flags;                        /* entries in flags */
    const struct ctl_flag_spec *pflags;    /* flags it passes down to its sub-commands */
    size_t n_pflags;                       /* entries in pflags */
    const struct ctl_command *const *subs; /* sub-commands, sorted by name */
    size_t n_subs;                         /* entries in subs */
    int (*run)(struct ctl *ctl);           /* NULL for a parent */
};

/* The root command (root.c). */
extern const struct ctl_command ctl_root;

/* The commands (one file each). */
extern const struct ctl_command ctl_cmd_get, ctl_cmd_put, ctl_cmd_del, ctl_cmd_txn,
    ctl_cmd_compaction, ctl_cmd_endpoint, ctl_cmd_member, ctl_cmd_move_leader, ctl_cmd_alarm,
    ctl_cmd_version, ctl_cmd_watch, ctl_cmd_lease, ctl_cmd_lock, ctl_cmd_elect;

/* Runs cairnctl with argv; returns the exit code (root.c). */
int ctl_main(int argc, char **argv);

/* ---------------------------------------------------------------------------------------------- */
/* Errors (errors.c) */

/* Prints "Error: <text>" on stderr, as etcdctl's ExitWithError does, and returns code. */
int ctl_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints a failed call's error as etcd's Go client renders it ("Error: etcdserver: ...",
 * "Error: context deadline exceeded") and returns CTL_EXIT_ERROR. */
int ctl_fail_call(const struct cl_call *call);

/* The error text of a failed call (cl_call_error_text); malloc'd, never NULL. */
char *ctl_call_error(const struct cl_call *call);

/* ---------------------------------------------------------------------------------------------- */
/* The connection (session.c) */

/* Fills o for endpoints eps (n of them) with the global dial timeout. */
void ctl_client_options(const struct ctl *ctl, const char *const *eps, size_t n,
                        struct cl_options *o);

/* The blocking client over all --endpoints, made on first use. Returns NULL after printing the
 * error (an endpoint the library refuses: exit CTL_EXIT_BAD_ARGS via *code). */
struct cl_sync *ctl_client(struct ctl *ctl, int *code);

/* Runs one call of method m on s with the command timeout (--command-timeout; a timeout of zero
 * or less fails at once with "context deadline exceeded", as a Go context does). Returns
 * call->code; the caller reads the results and cl_call_reset()s call. */
int ctl_call(const struct ctl *ctl, struct cl_sync *s, struct cl_call *call,
             const struct cl_method *m, const ProtobufCMessage *req);

/* A call that ran into a command timeout of zero or less: finished, DEADLINE_EXCEEDED. */
void ctl_call_expired(struct cl_call *call);

/* When calls that share one command timeout must have ended (etcdctl's one commandCtx around
 * several calls, as move-leader's): now plus --command-timeout, in uv_hrtime() nanoseconds. */
uint64_t ctl_deadline(const struct ctl *ctl);

/* ctl_call with what is left until deadline as the call's timeout (none left: it fails at once
 * with "context deadline exceeded"). */
int ctl_call_until(uint64_t deadline, struct cl_sync *s, struct cl_call *call,
                   const struct cl_method *m, const ProtobufCMessage *req);

/* ---------------------------------------------------------------------------------------------- */
/* Words of an input line (txn.c) */

/* A line's words (malloc'd each). */
struct ctl_words {
    char **v;
    size_t n;
};

/* Splits line as etcdctl's argify does: "double quoted" (unquoted as Go does), 'single quoted'
 * (the quotes dropped), or a run of non-spaces. Returns 0, or -1 with *bad set for a
 * double-quoted word Go cannot unquote (or when out of memory). w is freed by ctl_words_free. */
int ctl_argify(const char *line, struct ctl_words *w, bool *bad);
void ctl_words_free(struct ctl_words *w);

/* ---------------------------------------------------------------------------------------------- */
/* Peer URLs (peer_urls.c) */

/* Checks the peer URLs of member add and update (urls: --peer-urls split at commas, n of them)
 * as etcd's client does before sending them (pkg/types.NewURLs on each URL trimmed of white
 * space: Go's url.Parse, then scheme http, https, unix or unixs, host:port, no path). Returns 0,
 * or -1 with *err the first failure in Go's words (malloc'd; NULL when out of memory), e.g.
 * `URL scheme must be http, https, unix, or unixs: ftp://a` or
 * `parse "http://a b:1": invalid character " " in host name`. */
int ctl_peer_urls_check(char *const *urls, size_t n, char **err);

/* ---------------------------------------------------------------------------------------------- */
/* Key ranges shared by get, del and txn's ops (range.c) */

/* Byte strings the requests point into; freed with the request builder's owner. */
struct ctl_bytes {
    uint8_t *data; /* malloc'd (NUL-terminated for convenience), or NULL when len is 0 */
    size_t len;
};

/* The range end of "keys with this prefix" (clientv3's WithPrefix): the prefix with its last
 * byte below 0xff incremented and what follows dropped; "\0" (from the key on) when there is no
 * such byte. Returns 0 or -1 when out of memory. */
int ctl_prefix_end(const uint8_t *key, size_t len, struct ctl_bytes *out);

/* A copy of s (len bytes). Returns 0 or -1 when out of memory. */
int ctl_bytes_set(struct ctl_bytes *b, const void *s, size_t len);
void ctl_bytes_free(struct ctl_bytes *b);

/* ---------------------------------------------------------------------------------------------- */
/* Requests that get/put/del build and txn reuses (get.c, put.c, del.c) */

/* A request and the bytes it points to. */
struct ctl_get_op {
    Etcdserverpb__RangeRequest req;
    struct ctl_bytes key, end;
    bool count_only; /* --count-only given (printed as the fields printer does) */
};
struct ctl_put_op {
    Etcdserverpb__PutRequest req;
    struct ctl_bytes key, value;
};
struct ctl_del_op {
    Etcdserverpb__DeleteRangeRequest req;
    struct ctl_bytes key, end;
};

/* Build the request from the command's flags (fs) and positional arguments, with etcdctl's checks
 * and messages. Return 0, or an exit code after printing the error. The op must be freed with
 * the matching *_free even after a failure. A put without a value argument reads it from stdin
 * only if value_from_stdin (txn's ops cannot: etcdctl's reader has taken all of stdin by then, so
 * the value is missing). */
int ctl_get_op_build(const struct ctl_flagset *fs, char **args, size_t n, struct ctl_get_op *op);
void ctl_get_op_free(struct ctl_get_op *op);
int ctl_put_op_build(const struct ctl_flagset *fs, char **args, size_t n, bool value_from_stdin,
                     struct ctl_put_op *op);
void ctl_put_op_free(struct ctl_put_op *op);
int ctl_del_op_build(const struct ctl_flagset *fs, char **args, size_t n, struct ctl_del_op *op);
void ctl_del_op_free(struct ctl_del_op *op);

#endif
