/* client/ctl/watch.c — `watch [options] [key or prefix] [range_end] [--] [exec-command arg1 ...]`:
 * Watch.Watch through the library's watcher on cairnctl's own loop, as etcdctl's watch command
 * does it (ctlv3/command/watch_command.go).
 *
 * Without -i: one watch; every response is printed with the chosen format (a cancel also as
 * "watch was canceled (<err>)" on stderr); after "--" a command runs once per event with the
 * ETCD_WATCH_* variables etcdctl sets. It runs until the server cancels the watch (then "Error:
 * watch is canceled by the server", exit 5) or the process is killed.
 * With -i: lines from stdin, "watch [options] <key> [range_end] [-- cmd ...]" or "progress", each
 * watch on the same stream; end of input is "Error: Error reading watch request line: EOF",
 * exit 3, as in etcdctl. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client/ctl/printer.h"
#include "client/ctl/text.h"

static const struct ctl_flag_spec watch_flags[] = {
    {"interactive", 'i', CTL_FLAG_BOOL, "false", "Interactive mode"},
    {"prefix", 0, CTL_FLAG_BOOL, "false", "Watch on a prefix if prefix is set"},
    {"prev-kv", 0, CTL_FLAG_BOOL, "false",
     "get the previous key-value pair before the event happens"},
    {"rev", 0, CTL_FLAG_INT64, "0", "Revision to start watching"},
};
#define N_WATCH_FLAGS (sizeof watch_flags / sizeof watch_flags[0])

#define ERR_BAD_ARGS     "bad number of arguments"
#define ERR_BAD_ARGS_SEP "bad number of arguments (found separator --, but no commands)"

/* One run of the command. */
struct run {
    struct ctl *ctl;
    struct cl_client *c;   /* the blocking client's, on its loop */
    uv_loop_t *loop;       /* that loop, run here */
    struct cl_watcher *wr; /* every watch's stream */
    bool interactive;      /* -i */
    bool closing;          /* the last responses are the close's: print nothing */
    bool stopped;          /* the command's end is decided: code */
    int code;              /* exit code once stopped */
    size_t running;        /* watches whose last response has not come */
    uv_pipe_t in_pipe;     /* stdin when it is a pipe */
    uv_tty_t in_tty;       /* stdin when it is a terminal */
    uv_stream_t *in;       /* one of them, or NULL */
    struct ctl_buf line;   /* stdin's bytes since the last newline */
};

/* One watch and what its events run. */
struct entry {
    struct cl_watch w; /* its handle (w.data: the run) */
    struct run *run;   /* owner */
    char **exec;       /* the command after "--" (copies), or NULL */
    size_t n_exec;     /* words in exec */
};

static void stop(struct run *r, int code)
{
    if (r->stopped)
        return;
    r->stopped = true;
    r->code = code;
    uv_stop(r->loop);
}

static void entry_free(struct entry *e)
{
    for (size_t i = 0; i < e->n_exec; i++)
        free(e->exec[i]);
    free(e->exec);
    cl_watch_reset(&e->w);
    free(e);
}

/* ---------------------------------------------------------------------------------------------- */
/* Running the command of an event */

static char *env_quoted(const char *name, const void *data, size_t len)
{
    struct ctl_buf b = {0};
    ctl_buf_printf(&b, "%s=", name);
    ctl_go_quote(&b, data, len);
    return ctl_buf_take(&b);
}

/* Go's %q of a []string: ["a" "b"]. */
static char *quoted_words(char *const *v, size_t n)
{
    struct ctl_buf b = {0};
    ctl_buf_putc(&b, '[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            ctl_buf_putc(&b, ' ');
        ctl_go_quote(&b, v[i], strlen(v[i]));
    }
    ctl_buf_putc(&b, ']');
    return ctl_buf_take(&b);
}

/* Runs e's command for ev of resp and waits for it. Returns 0, or 1 after printing etcdctl's
 * `command ["cmd" "arg"] error (exit status N)`. */
static int run_exec(const struct entry *e, const Etcdserverpb__WatchResponse *resp,
                    const Mvccpb__Event *ev)
{
    char rev[48], t[24];
    snprintf(rev, sizeof rev, "ETCD_WATCH_REVISION=%lld",
             (long long)(resp->header ? resp->header->revision : 0));
    const char *type = ctl_event_type_name(ev->type, t);
    char *env_type = env_quoted("ETCD_WATCH_EVENT_TYPE", type, strlen(type));
    char *env_key = env_quoted("ETCD_WATCH_KEY", ev->kv ? ev->kv->key.data : NULL,
                               ev->kv ? ev->kv->key.len : 0);
    char *env_value = env_quoted("ETCD_WATCH_VALUE", ev->kv ? ev->kv->value.data : NULL,
                                 ev->kv ? ev->kv->value.len : 0);
    char **argv = calloc(e->n_exec + 1, sizeof *argv);
    char err[96] = "";
    if (!env_type || !env_key || !env_value || !argv) {
        snprintf(err, sizeof err, "out of memory");
    } else {
        memcpy(argv, e->exec, e->n_exec * sizeof *argv);
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid == 0) {
            putenv(rev);
            putenv(env_type);
            putenv(env_key);
            putenv(env_value);
            execvp(argv[0], argv);
            _exit(127);
        }
        int status = 0;
        if (pid < 0)
            snprintf(err, sizeof err, "fork: %s", strerror(errno));
        else if (waitpid(pid, &status, 0) < 0)
            snprintf(err, sizeof err, "wait: %s", strerror(errno));
        else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
            snprintf(err, sizeof err, "exit status %d", WEXITSTATUS(status));
        else if (WIFSIGNALED(status))
            snprintf(err, sizeof err, "signal: %s", strsignal(WTERMSIG(status)));
    }
    free(env_type);
    free(env_key);
    free(env_value);
    free(argv);
    if (!err[0])
        return 0;
    char *q = quoted_words(e->exec, e->n_exec);
    fprintf(stderr, "command %s error (%s)\n", q ? q : "[]", err);
    free(q);
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Responses */

static bool is_progress(const Etcdserverpb__WatchResponse *r)
{
    return r->n_events == 0 && !r->canceled && !r->created && r->compact_revision == 0 &&
           r->header && r->header->revision != 0;
}

/* etcdctl's printWatchCh, for one response. */
static void on_response(struct cl_watch *w, const Etcdserverpb__WatchResponse *resp)
{
    struct entry *e = w->data;
    struct run *r = e->run;
    bool last = resp->canceled;
    if (!r->closing && !r->stopped) {
        if (last)
            fprintf(stderr, "watch was canceled (%s)\n", w->message ? w->message : "<nil>");
        if (is_progress(resp)) {
            printf("progress notify: %lld\n", (long long)resp->header->revision);
            fflush(stdout);
        }
        int code = CTL_PRINT(r->ctl, watch, resp);
        if (code) {
            stop(r, code);
        } else {
            for (size_t i = 0; e->n_exec && i < resp->n_events; i++) {
                if (run_exec(e, resp, resp->events[i])) {
                    stop(r, CTL_EXIT_ERROR);
                    break;
                }
            }
        }
    }
    if (!last)
        return;
    r->running--;
    entry_free(e);
    if (!r->interactive && !r->closing)
        stop(r, ctl_fail(CTL_EXIT_INTERRUPTED, "watch is canceled by the server"));
}

/* ---------------------------------------------------------------------------------------------- */
/* Arguments */

static int nomem(void)
{
    return ctl_fail(CTL_EXIT_ERROR, "out of memory");
}

/* Starts a watch of args (n of them; etcdctl's getWatchChan) with the options in fs and exec
 * (moved into the entry). Returns 0, or -1 with *err etcdctl's error text (static). */
static int start_watch(struct run *r, const struct ctl_flagset *fs, char **args, size_t n,
                       char **exec, size_t n_exec, const char **err)
{
    bool prefix = ctl_flag_bool(fs, "prefix");
    if (n < 1) {
        *err = ERR_BAD_ARGS;
        return -1;
    }
    if (n == 2 && prefix) {
        *err = "`range_end` and `--prefix` are mutually exclusive";
        return -1;
    }
    struct ctl_bytes end = {0};
    struct cl_watch_options o = {.key = (const uint8_t *)args[0], .key_len = strlen(args[0])};
    if (n == 2) { /* clientv3's WithRange; a third argument is ignored, as etcdctl does */
        o.range_end = (const uint8_t *)args[1];
        o.range_end_len = strlen(args[1]);
    }
    static const uint8_t zero[1] = {0};
    if (prefix) { /* clientv3's WithPrefix */
        if (o.key_len == 0) {
            o.key = o.range_end = zero;
            o.key_len = o.range_end_len = 1;
        } else {
            if (ctl_prefix_end(o.key, o.key_len, &end) < 0) {
                *err = "out of memory";
                return -1;
            }
            o.range_end = end.data ? end.data : zero;
            o.range_end_len = end.len;
        }
    }
    o.start_revision = ctl_flag_int(fs, "rev");
    o.prev_kv = ctl_flag_bool(fs, "prev-kv");
    struct entry *e = calloc(1, sizeof *e);
    if (!e) {
        ctl_bytes_free(&end);
        *err = "out of memory";
        return -1;
    }
    e->run = r;
    e->w.cb = on_response;
    e->w.data = e;
    int rc = cl_watch_start(r->wr, &e->w, &o);
    ctl_bytes_free(&end);
    if (rc) {
        free(e);
        *err = "cannot start the watch";
        return -1;
    }
    e->exec = exec;
    e->n_exec = n_exec;
    r->running++;
    return 0;
}

static char **copy_words(char *const *v, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; out && i < n; i++) {
        if (!(out[i] = strdup(v[i]))) {
            while (i--)
                free(out[i]);
            free(out);
            return NULL;
        }
    }
    return out;
}

static void free_words(char **v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i]);
    free(v);
}

/* The watch arguments without the exec command: etcdctl cuts them at the last one equal to the
 * command's first word. */
static size_t cut_at_exec(char **args, size_t n, char *const *exec, size_t n_exec)
{
    if (!n_exec)
        return n;
    for (size_t i = n; i-- > 0;)
        if (strcmp(args[i], exec[0]) == 0)
            return i;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Interactive input */

/* One line of stdin (without its newline), as etcdctl's watchInteractiveFunc takes it. */
static void interactive_line(struct run *r, const char *l)
{
    struct ctl_words w = {0};
    bool bad = false;
    if (ctl_argify(l, &w, &bad) < 0) {
        ctl_words_free(&w);
        stop(r, bad ? ctl_fail(CTL_EXIT_INVALID_INPUT, "invalid syntax") : nomem());
        return;
    }
    if (w.n < 1) {
        fprintf(stderr, "Invalid command: %s (watch and progress supported)\n", l);
    } else if (strcmp(w.v[0], "watch") == 0) {
        if (w.n < 2) {
            fprintf(stderr, "Invalid command %s (command type or key is not provided)\n", l);
            goto out;
        }
        char **args = w.v + 1;
        size_t n = w.n - 1, sep = n;
        for (size_t i = 0; i < n; i++) {
            if (strcmp(args[i], "--") == 0) {
                sep = i;
                break;
            }
        }
        if (sep == n - 1) {
            stop(r, ctl_fail(CTL_EXIT_BAD_ARGS, ERR_BAD_ARGS_SEP));
            goto out;
        }
        struct ctl_flagset fs = {0};
        char **pos = NULL, *err = NULL;
        size_t npos = 0;
        if (ctl_flagset_add(&fs, watch_flags, N_WATCH_FLAGS) < 0) {
            stop(r, nomem());
        } else if (ctl_flagset_parse(&fs, args, n, &pos, &npos, &err) < 0) {
            stop(r, ctl_fail(CTL_EXIT_BAD_ARGS, "%s", err ? err : "out of memory"));
        } else if (sep == n && npos < 1) {
            stop(r, ctl_fail(CTL_EXIT_BAD_ARGS, ERR_BAD_ARGS));
        } else {
            size_t n_exec = sep < n ? n - sep - 1 : 0;
            char **exec = n_exec ? copy_words(args + sep + 1, n_exec) : NULL;
            size_t nw = cut_at_exec(pos, npos, args + sep + 1, n_exec);
            const char *why = NULL;
            if (n_exec && !exec)
                stop(r, nomem());
            else if (start_watch(r, &fs, pos, nw, exec, n_exec, &why) < 0) {
                free_words(exec, n_exec);
                fprintf(stderr, "Invalid command %s (%s)\n", l, why);
            }
        }
        free(err);
        free(pos);
        ctl_flagset_free(&fs);
    } else if (strcmp(w.v[0], "progress") == 0) {
        (void)cl_watcher_request_progress(r->wr); /* no stream yet: nothing to report */
    } else {
        fprintf(stderr, "Invalid command %s (only support watch)\n", l);
    }
out:
    ctl_words_free(&w);
}

/* Takes the complete lines of r->line. */
static void take_lines(struct run *r)
{
    size_t start = 0;
    for (size_t i = 0; i < r->line.len && !r->stopped; i++) {
        if (r->line.p[i] != '\n')
            continue;
        r->line.p[i] = '\0';
        interactive_line(r, r->line.p + start);
        start = i + 1;
    }
    if (r->stopped)
        return;
    memmove(r->line.p, r->line.p + start, r->line.len - start);
    r->line.len -= start;
}

static void input_ended(struct run *r, const char *why)
{
    stop(r, ctl_fail(CTL_EXIT_INVALID_INPUT, "Error reading watch request line: %s", why));
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    static char b[4096];
    (void)suggested;
    *buf = uv_buf_init(b, sizeof b);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct run *r = s->data;
    if (r->stopped)
        return;
    if (n == UV_EOF) {
        input_ended(r, "EOF");
        return;
    }
    if (n < 0) {
        input_ended(r, uv_strerror((int)n));
        return;
    }
    ctl_buf_put(&r->line, buf->base, (size_t)n);
    if (r->line.failed) {
        stop(r, nomem());
        return;
    }
    take_lines(r);
}

/* Reads stdin on the loop (a pipe or terminal), or all at once (a file). Returns 0 or an exit
 * code after printing the error. */
static int open_input(struct run *r)
{
    uv_handle_type t = uv_guess_handle(0);
    int err = 0;
    if (t == UV_TTY) {
        err = uv_tty_init(r->loop, &r->in_tty, 0, 1);
        r->in = err ? NULL : (uv_stream_t *)&r->in_tty;
    } else if (t == UV_NAMED_PIPE || t == UV_TCP) {
        err = uv_pipe_init(r->loop, &r->in_pipe, 0);
        if (!err) {
            r->in = (uv_stream_t *)&r->in_pipe;
            err = uv_pipe_open(&r->in_pipe, 0);
        }
    } else { /* a file or nothing: read it now; its end ends the command, as in etcdctl */
        char b[4096];
        ssize_t n;
        while (!r->stopped && (n = read(0, b, sizeof b)) > 0) {
            ctl_buf_put(&r->line, b, (size_t)n);
            take_lines(r);
        }
        if (!r->stopped)
            input_ended(r, "EOF");
        return 0;
    }
    if (!err) {
        r->in->data = r;
        err = uv_read_start(r->in, on_alloc, on_read);
    }
    if (err)
        return ctl_fail(CTL_EXIT_INVALID_INPUT, "Error reading watch request line: %s",
                        uv_strerror(err));
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The command */

/* Non-interactive arguments (etcdctl's parseWatchArgs on os.Args): the exec command after "--".
 * Returns 0, or an exit code after printing the error. */
static int plain_args(struct ctl *ctl, char ***exec, size_t *n_exec, size_t *nw)
{
    char **raw = ctl->argv + 1;
    size_t nraw = ctl->argc > 0 ? ctl->argc - 1 : 0;
    for (size_t i = 0; i < nraw; i++) {
        if (strcmp(raw[i], "watch") == 0) {
            raw += i + 1;
            nraw -= i + 1;
            break;
        }
    }
    size_t sep = nraw;
    for (size_t i = 0; i < nraw; i++) {
        if (strcmp(raw[i], "--") == 0) {
            sep = i;
            break;
        }
    }
    if (sep < nraw && sep == nraw - 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, ERR_BAD_ARGS_SEP);
    if (sep == nraw && nraw < 1)
        return ctl_fail(CTL_EXIT_BAD_ARGS, ERR_BAD_ARGS);
    *n_exec = sep < nraw ? nraw - sep - 1 : 0;
    *exec = NULL;
    if (*n_exec && !(*exec = copy_words(raw + sep + 1, *n_exec)))
        return nomem();
    *nw = cut_at_exec(ctl->args, ctl->n_args, raw + sep + 1, *n_exec);
    return 0;
}

static void on_input_closed(uv_handle_t *h)
{
    (void)h;
}

static int run_watch(struct ctl *ctl)
{
    struct run r = {.ctl = ctl, .interactive = ctl_flag_bool(&ctl->fs, "interactive")};
    char **exec = NULL;
    size_t n_exec = 0, nw = 0;
    int code = 0;
    if (!r.interactive && (code = plain_args(ctl, &exec, &n_exec, &nw)))
        return code;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s) {
        free_words(exec, n_exec);
        return code;
    }
    r.c = cl_sync_client(s);
    r.loop = cl_client_loop(r.c);
    if (cl_watcher_new(r.c, true, &r.wr)) { /* etcdctl's WithRequireLeader */
        free_words(exec, n_exec);
        return nomem();
    }
    if (r.interactive) {
        code = open_input(&r);
    } else {
        const char *why = NULL;
        if (start_watch(&r, &ctl->fs, ctl->args, nw, exec, n_exec, &why) < 0) {
            free_words(exec, n_exec);
            code = ctl_fail(CTL_EXIT_BAD_ARGS, "%s", why);
        }
    }
    if (!code && !r.stopped)
        uv_run(r.loop, UV_RUN_DEFAULT);
    if (!code)
        code = r.stopped ? r.code : CTL_EXIT_SUCCESS;
    /* the watches' last responses come from the close, printed by nobody */
    r.closing = true;
    cl_watcher_close(r.wr);
    while (r.running && uv_run(r.loop, UV_RUN_ONCE))
        ;
    if (r.in && !uv_is_closing((uv_handle_t *)r.in))
        uv_close((uv_handle_t *)r.in, on_input_closed);
    uv_run(r.loop, UV_RUN_NOWAIT);
    ctl_buf_free(&r.line);
    return code;
}

const struct ctl_command ctl_cmd_watch = {
    .name = "watch",
    .use = "[options] [key or prefix] [range_end] [--] [exec-command arg1 arg2 ...]",
    .summary = "Watches events stream on keys or prefixes",
    .flags = watch_flags,
    .n_flags = N_WATCH_FLAGS,
    .run = run_watch,
};
