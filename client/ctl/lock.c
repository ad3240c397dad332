/* client/ctl/lock.c — `lock <lockname> [exec-command arg1 arg2 ...]`: etcdctl 3.4's distributed
 * lock (ctlv3/command/lock_command.go on clientv3/concurrency's Mutex).
 *
 * A session (a lease of --ttl seconds, kept alive) puts its key "<lockname>/<lease hex>" with
 * the lease, unless the key is there already; the key with the smallest create revision under
 * the prefix holds the lock, and every other waits until the keys created before its own are
 * deleted. Held, the lock's key is printed (as `get` prints it, in the chosen format) and kept
 * until SIGINT or SIGTERM, which deletes it (exit 0); or, with a command, the command runs with
 * ETCD_LOCK_KEY and ETCD_LOCK_REV in its environment, its stdin /dev/null, and the key is deleted
 * when it has ended. As in etcdctl, a command that fails is "Error: exit status N" (exit 1), a
 * signal while waiting is "Error: context canceled" (exit 1, the waiting key deleted), and the
 * session's lease is never revoked: it expires once the keep-alives stop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/ctl/concurrency.h"
#include "client/ctl/text.h"

extern char **environ;

static const struct ctl_flag_spec lock_flags[] = {
    {"ttl", 0, CTL_FLAG_INT64, "10", "timeout for session"},
};

/* concurrency's Mutex, once locked. */
struct mutex {
    const char *pfx;                   /* "<lockname>/" */
    char *key;                         /* the session's key under pfx (malloc'd) */
    int64_t rev;                       /* its create revision */
    Etcdserverpb__ResponseHeader *hdr; /* the header the lock was acquired with (a copy) */
};

static void mutex_free(struct mutex *m)
{
    free(m->key);
    if (m->hdr)
        protobuf_c_message_free_unpacked(&m->hdr->base, NULL);
}

/* Deletes the mutex's key (not under the context: etcdctl's Unlock runs with context.TODO() or
 * the client's context). Returns 0, or -1 with *err (malloc'd). */
static int mutex_unlock(struct ctl_cc *cc, struct mutex *m, char **err)
{
    Etcdserverpb__DeleteRangeRequest req = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    req.key.data = (uint8_t *)m->key;
    req.key.len = strlen(m->key);
    struct cl_call call = {0};
    int rc = 0;
    if (ctl_cc_call(cc, &call, &cl_method_delete_range, &req.base, false) != GRPC_OK) {
        *err = ctl_call_error(&call);
        rc = -1;
    }
    cl_call_reset(&call);
    return rc;
}

/* Mutex.Lock: one txn puts the key (or reads it, when the session has it already) and reads the
 * prefix's first key by create revision; when that is not ours, waits for the deletes before
 * ours (and deletes ours if the wait fails). Returns 0, or -1 with *err (malloc'd). */
static int mutex_lock(struct ctl_cc *cc, struct mutex *m, char **err)
{
    if (!(m->key = ctl_cc_key(m->pfx, cc->lease))) {
        *err = strdup("out of memory");
        return -1;
    }
    ProtobufCBinaryData key = {strlen(m->key), (uint8_t *)m->key};
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
    cmp.key = key;
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    cmp.create_revision = 0;
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = key;
    put.lease = cc->lease;
    Etcdserverpb__RangeRequest get = ETCDSERVERPB__RANGE_REQUEST__INIT;
    get.key = key;
    Etcdserverpb__RangeRequest owner = ETCDSERVERPB__RANGE_REQUEST__INIT;
    struct ctl_bytes end = {0};
    if (ctl_cc_top_request(&owner, m->pfx, true, &end) < 0) {
        *err = strdup("out of memory");
        return -1;
    }
    Etcdserverpb__RequestOp ops[3] = {ETCDSERVERPB__REQUEST_OP__INIT,
                                      ETCDSERVERPB__REQUEST_OP__INIT,
                                      ETCDSERVERPB__REQUEST_OP__INIT};
    ops[0].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    ops[0].request_put = &put;
    ops[1].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    ops[1].request_range = &get;
    ops[2].request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
    ops[2].request_range = &owner;
    Etcdserverpb__Compare *cmps[1] = {&cmp};
    Etcdserverpb__RequestOp *then[2] = {&ops[0], &ops[2]}, *els[2] = {&ops[1], &ops[2]};
    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    txn.n_compare = 1;
    txn.compare = cmps;
    txn.n_success = 2;
    txn.success = then;
    txn.n_failure = 2;
    txn.failure = els;
    struct cl_call call = {0};
    int rc = ctl_cc_call(cc, &call, &cl_method_txn, &txn.base, true);
    ctl_bytes_free(&end);
    if (rc != GRPC_OK) {
        *err = ctl_call_error(&call);
        cl_call_reset(&call);
        return -1;
    }
    const Etcdserverpb__TxnResponse *r = (const Etcdserverpb__TxnResponse *)call.response;
    const Etcdserverpb__RangeResponse *mine = NULL, *first = NULL;
    if (r->n_responses == 2 &&
        r->responses[0]->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE)
        mine = r->responses[0]->response_range;
    if (r->n_responses == 2 &&
        r->responses[1]->response_case == ETCDSERVERPB__RESPONSE_OP__RESPONSE_RESPONSE_RANGE)
        first = r->responses[1]->response_range;
    if (!r->header || !first || (!r->succeeded && (!mine || mine->n_kvs == 0))) {
        cl_call_reset(&call);
        *err = strdup("cairn: unexpected txn response");
        return -1;
    }
    m->rev = r->succeeded ? r->header->revision : mine->kvs[0]->create_revision;
    if (first->n_kvs == 0 || first->kvs[0]->create_revision == m->rev) {
        m->hdr = ctl_cc_header_dup(r->header);
        cl_call_reset(&call);
        return 0;
    }
    cl_call_reset(&call);
    if (ctl_cc_wait_deletes(cc, m->pfx, m->rev - 1, &m->hdr, err) == 0)
        return 0;
    char *unlock_err = NULL;
    mutex_unlock(cc, m, &unlock_err);
    free(unlock_err);
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* The command run with the lock held */

/* Go's exec.LookPath for a name without a slash: the first regular file with an execute bit in
 * $PATH (an empty entry is "."). Returns 0 with *path (malloc'd), or -1 with *err (malloc'd). */
static int look_path(const char *name, char **path, char **err)
{
    const char *env = getenv("PATH");
    const char *p = env ? env : "";
    struct ctl_buf b = {0};
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t n = colon ? (size_t)(colon - p) : strlen(p);
        while (n > 1 && p[n - 1] == '/')
            n--;
        b.len = 0;
        if (n == 0 || (n == 1 && p[0] == '.')) {
            ctl_buf_puts(&b, name);
        } else {
            ctl_buf_put(&b, p, n);
            if (!(n == 1 && p[0] == '/'))
                ctl_buf_putc(&b, '/');
            ctl_buf_puts(&b, name);
        }
        char *candidate = ctl_buf_take(&b);
        struct stat st;
        if (candidate && stat(candidate, &st) == 0 && !S_ISDIR(st.st_mode) && (st.st_mode & 0111)) {
            if (candidate[0] != '/') { /* Go 1.19's ErrDot */
                free(candidate);
                struct ctl_buf e = {0};
                ctl_buf_puts(&e, "exec: ");
                ctl_go_quote(&e, name, strlen(name));
                ctl_buf_puts(&e, ": cannot run executable found relative to current directory");
                *err = ctl_buf_take(&e);
                return -1;
            }
            *path = candidate;
            return 0;
        }
        free(candidate);
        if (!colon)
            break;
        p = colon + 1;
    }
    struct ctl_buf e = {0};
    ctl_buf_puts(&e, "exec: ");
    ctl_go_quote(&e, name, strlen(name));
    ctl_buf_puts(&e, ": executable file not found in $PATH");
    *err = ctl_buf_take(&e);
    return -1;
}

/* The command's process while it runs. */
struct child {
    uv_process_t proc; /* its handle (data: this struct) */
    bool exited;       /* exit_cb ran */
    bool closed;       /* proc's handle is closed */
    int64_t status;    /* its exit status */
    int term_signal;   /* the signal that ended it, or 0 */
};

static void on_child_closed(uv_handle_t *h)
{
    ((struct child *)h->data)->closed = true;
}

static void on_child_exit(uv_process_t *p, int64_t status, int term_signal)
{
    struct child *ch = p->data;
    ch->status = status;
    ch->term_signal = term_signal;
    ch->exited = true;
    uv_close((uv_handle_t *)p, on_child_closed);
}

/* "NAME=value" for the child, or NULL when the environment has NAME already (Go's exec keeps the
 * last of duplicate variables, and etcdctl puts its own before os.Environ()). */
static char *lock_var(const char *name, const char *value)
{
    if (getenv(name))
        return NULL;
    struct ctl_buf b = {0};
    ctl_buf_printf(&b, "%s=%s", name, value);
    return ctl_buf_take(&b);
}

/* Runs argv (n words) as etcdctl's lock does (exec.Command(...).Run()) and waits for it, the
 * loop running meanwhile (the session stays alive). Returns 0, or -1 with *err (malloc'd) Go's
 * error text: "exit status 3", "signal: killed", `exec: "x": executable file not found in
 * $PATH`, "fork/exec /x: no such file or directory". */
static int run_command(struct ctl_cc *cc, const struct mutex *m, char **argv, size_t n, char **err)
{
    char *path = NULL;
    if (strchr(argv[0], '/')) {
        path = strdup(argv[0]);
    } else if (argv[0][0] == '\0') {
        *err = strdup("exec: no command");
        return -1;
    } else if (look_path(argv[0], &path, err) < 0) {
        return -1;
    }
    char rev[32];
    snprintf(rev, sizeof rev, "%lld", (long long)(m->hdr ? m->hdr->revision : 0));
    char *vars[2] = {lock_var("ETCD_LOCK_KEY", m->key), lock_var("ETCD_LOCK_REV", rev)};
    size_t n_env = 0;
    while (environ && environ[n_env])
        n_env++;
    char **env = calloc(n_env + 3, sizeof *env);
    char **args = calloc(n + 1, sizeof *args);
    int rc = -1;
    if (!path || !env || !args) {
        *err = strdup("out of memory");
        goto out;
    }
    size_t k = 0;
    for (size_t i = 0; i < 2; i++)
        if (vars[i])
            env[k++] = vars[i];
    memcpy(env + k, environ, n_env * sizeof *env);
    memcpy(args, argv, n * sizeof *args);
    uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                     {.flags = UV_INHERIT_FD, .data.fd = 1},
                                     {.flags = UV_INHERIT_FD, .data.fd = 2}};
    uv_process_options_t o = {.exit_cb = on_child_exit,
                              .file = path,
                              .args = args,
                              .env = env,
                              .stdio_count = 3,
                              .stdio = stdio};
    struct child ch = {0};
    ch.proc.data = &ch;
    fflush(stdout);
    fflush(stderr);
    int e = uv_spawn(cc->loop, &ch.proc, &o);
    if (e) {
        uv_close((uv_handle_t *)&ch.proc, on_child_closed); /* uv_spawn wants it closed */
        ctl_cc_run_until(cc, &ch.closed);
        struct ctl_buf b = {0};
        ctl_buf_printf(&b, "fork/exec %s: %s", path, uv_strerror(e));
        *err = ctl_buf_take(&b);
        goto out;
    }
    ctl_cc_run_until(cc, &ch.closed);
    if (ch.term_signal) {
        char name[64];
        snprintf(name, sizeof name, "%s", strsignal(ch.term_signal));
        if (name[0] >= 'A' && name[0] <= 'Z') /* Go's names are glibc's, lowercased */
            name[0] = (char)(name[0] - 'A' + 'a');
        struct ctl_buf b = {0};
        ctl_buf_printf(&b, "signal: %s", name);
        *err = ctl_buf_take(&b);
    } else if (ch.status != 0) {
        struct ctl_buf b = {0};
        ctl_buf_printf(&b, "exit status %lld", (long long)ch.status);
        *err = ctl_buf_take(&b);
    } else {
        rc = 0;
    }
out:
    free(vars[0]);
    free(vars[1]);
    free(env);
    free(args);
    free(path);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* The command */

/* etcdctl's lockUntilSignal. Returns the exit code, after printing the error. */
static int lock_until_signal(struct ctl_cc *cc, const char *pfx, char **cmd, size_t n_cmd)
{
    char *err = NULL;
    int code = CTL_EXIT_SUCCESS;
    struct mutex m = {.pfx = pfx};
    if (ctl_cc_session(cc, ctl_flag_int(&cc->ctl->fs, "ttl"), &err) < 0)
        goto fail;
    if (ctl_cc_catch_signals(cc)) {
        err = strdup("cairn: cannot catch signals");
        goto fail;
    }
    if (mutex_lock(cc, &m, &err) < 0)
        goto fail;
    if (n_cmd) {
        int rc = run_command(cc, &m, cmd, n_cmd, &err);
        char *unlock_err = NULL;
        int urc = mutex_unlock(cc, &m, &unlock_err);
        if (rc == 0 && urc < 0)
            err = unlock_err;
        else
            free(unlock_err);
        if (rc < 0 || urc < 0)
            goto fail;
        goto out;
    }
    int held = ctl_cc_show_and_hold(cc, m.key, "lock lost on init", "session expired", &err);
    if (held < 0)
        goto fail;
    if ((code = held))
        goto out;
    if (mutex_unlock(cc, &m, &err) < 0)
        goto fail;
    goto out;
fail:
    code = ctl_fail(CTL_EXIT_ERROR, "%s", err ? err : "out of memory");
out:
    free(err);
    mutex_free(&m);
    return code;
}

static int run_lock(struct ctl *ctl)
{
    if (ctl->n_args == 0)
        return ctl_fail(CTL_EXIT_BAD_ARGS,
                        "lock takes a lock name argument and an optional command to execute");
    struct ctl_buf pfx = {0};
    ctl_buf_printf(&pfx, "%s/", ctl->args[0]);
    char *p = ctl_buf_take(&pfx);
    if (!p)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    struct ctl_cc cc;
    int code = ctl_cc_init(&cc, ctl);
    if (!code)
        code = lock_until_signal(&cc, p, ctl->args + 1, ctl->n_args - 1);
    ctl_cc_close(&cc);
    free(p);
    return code;
}

const struct ctl_command ctl_cmd_lock = {
    .name = "lock",
    .use = "<lockname> [exec-command arg1 arg2 ...]",
    .summary = "Acquires a named lock",
    .flags = lock_flags,
    .n_flags = sizeof lock_flags / sizeof lock_flags[0],
    .run = run_lock,
};
