/* client/ctl/txn.c — `txn [options]`: KV.Txn from etcdctl's line grammar on stdin
 * (ctlv3/command/txn_command.go).
 *
 * Three blocks, each ended by an empty line: compares, the ops on success, the ops on failure.
 *
 *   compare: <target>("<key>") <op> "<value>"   target: ver|version c|create m|mod val|value
 *            lease; op: = != < >; values quoted (Go syntax: "..." or `...`)
 *   op:      a get, put or del command line with its flags ("put k v --prev-kv"), words split as
 *            etcdctl splits them: "double quoted" (Go escapes), 'single quoted', bare
 *
 * With -i/--interactive a prompt precedes each block. Input that ends before a block's empty
 * line is "Error: EOF" (exit 3), as etcdctl's. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/printer.h"
#include "client/ctl/text.h"

static const struct ctl_flag_spec txn_flags[] = {
    {"interactive", 'i', CTL_FLAG_BOOL, "false", "Prompt for each block of the transaction"},
};

/* ---------------------------------------------------------------------------------------------- */
/* Go string literals */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void put_rune(struct ctl_buf *b, uint32_t r)
{
    char u[4];
    if (r < 0x80) {
        ctl_buf_putc(b, (char)r);
    } else if (r < 0x800) {
        u[0] = (char)(0xc0 | r >> 6), u[1] = (char)(0x80 | (r & 63));
        ctl_buf_put(b, u, 2);
    } else if (r < 0x10000) {
        u[0] = (char)(0xe0 | r >> 12), u[1] = (char)(0x80 | ((r >> 6) & 63));
        u[2] = (char)(0x80 | (r & 63));
        ctl_buf_put(b, u, 3);
    } else {
        u[0] = (char)(0xf0 | r >> 18), u[1] = (char)(0x80 | ((r >> 12) & 63));
        u[2] = (char)(0x80 | ((r >> 6) & 63)), u[3] = (char)(0x80 | (r & 63));
        ctl_buf_put(b, u, 4);
    }
}

/* strconv.Unquote of a double-quoted literal s[0..len) (quotes included). Returns 0 or -1. */
static int go_unquote(const char *s, size_t len, struct ctl_buf *out)
{
    if (len < 2 || s[0] != '"' || s[len - 1] != '"')
        return -1;
    for (size_t i = 1; i < len - 1;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\n')
            return -1;
        if (c != '\\') {
            ctl_buf_putc(out, (char)c);
            i++;
            continue;
        }
        if (++i >= len - 1)
            return -1;
        c = (unsigned char)s[i++];
        int n = 0;
        switch (c) {
        case 'a':
            ctl_buf_putc(out, '\a');
            break;
        case 'b':
            ctl_buf_putc(out, '\b');
            break;
        case 'f':
            ctl_buf_putc(out, '\f');
            break;
        case 'n':
            ctl_buf_putc(out, '\n');
            break;
        case 'r':
            ctl_buf_putc(out, '\r');
            break;
        case 't':
            ctl_buf_putc(out, '\t');
            break;
        case 'v':
            ctl_buf_putc(out, '\v');
            break;
        case '\\':
            ctl_buf_putc(out, '\\');
            break;
        case '"':
            ctl_buf_putc(out, '"');
            break;
        case 'x':
            n = 2;
            break;
        case 'u':
            n = 4;
            break;
        case 'U':
            n = 8;
            break;
        default:
            if (c >= '0' && c <= '7') { /* three octal digits */
                if (i + 2 > len - 1)
                    return -1;
                int v = c - '0';
                for (int k = 0; k < 2; k++) {
                    char d = s[i++];
                    if (d < '0' || d > '7')
                        return -1;
                    v = v * 8 + (d - '0');
                }
                if (v > 255)
                    return -1;
                ctl_buf_putc(out, (char)v);
                break;
            }
            return -1;
        }
        if (n) {
            if (i + (size_t)n > len - 1)
                return -1;
            uint32_t v = 0;
            for (int k = 0; k < n; k++) {
                int h = hexval((unsigned char)s[i++]);
                if (h < 0)
                    return -1;
                v = v * 16 + (uint32_t)h;
            }
            if (c == 'x')
                ctl_buf_putc(out, (char)v);
            else if (v > 0x10ffff || (v >= 0xd800 && v < 0xe000))
                return -1;
            else
                put_rune(out, v);
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Splitting an op line into words (etcdctl's argify) */

void ctl_words_free(struct ctl_words *w)
{
    for (size_t i = 0; i < w->n; i++)
        free(w->v[i]);
    free(w->v);
    *w = (struct ctl_words){0};
}

static int words_push(struct ctl_words *w, struct ctl_buf *b)
{
    char *s = ctl_buf_take(b);
    char **v = s ? realloc(w->v, (w->n + 1) * sizeof *v) : NULL;
    if (!v) {
        free(s);
        return -1;
    }
    w->v = v;
    w->v[w->n++] = s;
    return 0;
}

/* RE2's \s: tab, newline, form feed, carriage return, space. */
static bool re_space(char c)
{
    return c == '\t' || c == '\n' || c == '\f' || c == '\r' || c == ' ';
}

/* Words of line: "double quoted" (unquoted as Go does; a bad escape is an error), 'single
 * quoted' (the quotes dropped), or a run of non-spaces; an unmatched quote is skipped. Returns 0,
 * or -1 with *bad set for a double-quoted word Go cannot unquote (or when out of memory). */
int ctl_argify(const char *line, struct ctl_words *w, bool *bad)
{
    size_t len = strlen(line);
    *bad = false;
    for (size_t i = 0; i < len;) {
        char c = line[i];
        struct ctl_buf b = {0};
        if (c == '"') {
            size_t j = i + 1;
            while (j < len && line[j] != '"') {
                if (line[j] == '\\') {
                    if (j + 1 >= len || line[j + 1] == '\n')
                        break;
                    j++;
                } else if (line[j] == '\n') {
                    break;
                }
                j++;
            }
            if (j >= len || line[j] != '"') {
                i++;
                continue;
            }
            if (go_unquote(line + i, j + 1 - i, &b) < 0) {
                ctl_buf_free(&b);
                *bad = true;
                return -1;
            }
            i = j + 1;
        } else if (c == '\'') {
            const char *end = strchr(line + i + 1, '\'');
            if (!end) {
                i++;
                continue;
            }
            ctl_buf_put(&b, line + i + 1, (size_t)(end - line - i - 1));
            i = (size_t)(end - line) + 1;
        } else if (re_space(c)) {
            i++;
            continue;
        } else {
            size_t j = i;
            while (j < len && !re_space(line[j]))
                j++;
            ctl_buf_put(&b, line + i, j - i);
            i = j;
        }
        if (words_push(w, &b) < 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Compares: <target>("<key>") <op> "<value>", scanned as Go's Sscanf("%q) %s %q") does */

struct scan {
    const char *p; /* next input */
};

static void skip_spaces(struct scan *sc)
{
    while (*sc->p == ' ' || *sc->p == '\t' || *sc->p == '\r')
        sc->p++;
}

/* %q: a "..." or `...` literal after optional spaces. Returns 0 or -1. */
static int scan_quoted(struct scan *sc, struct ctl_buf *out)
{
    skip_spaces(sc);
    const char *s = sc->p;
    if (*s == '`') {
        const char *end = strchr(s + 1, '`');
        if (!end)
            return -1;
        ctl_buf_put(out, s + 1, (size_t)(end - s - 1));
        sc->p = end + 1;
        return 0;
    }
    if (*s != '"')
        return -1;
    size_t j = 1;
    for (;;) {
        if (s[j] == '\0')
            return -1;
        if (s[j] == '\\') {
            if (s[j + 1] == '\0')
                return -1;
            j += 2;
            continue;
        }
        if (s[j++] == '"')
            break;
    }
    if (go_unquote(s, j, out) < 0)
        return -1;
    sc->p = s + j;
    return 0;
}

/* %s: a run of non-spaces after optional spaces. */
static int scan_word(struct scan *sc, struct ctl_buf *out)
{
    skip_spaces(sc);
    size_t n = 0;
    while (sc->p[n] && !isspace((unsigned char)sc->p[n]))
        n++;
    if (n == 0)
        return -1;
    ctl_buf_put(out, sc->p, n);
    sc->p += n;
    return 0;
}

static const char *str_or_empty(const struct ctl_buf *b)
{
    return b->p ? b->p : "";
}

/* A compare of one line into *cmp (its key and value bytes in *key, *val). Returns 0, or an
 * exit code after printing etcdctl's error. */
static int parse_compare(const char *line, Etcdserverpb__Compare *cmp, struct ctl_buf *key,
                         struct ctl_buf *val)
{
    const char *paren = strchr(line, '(');
    if (!paren)
        return ctl_fail(CTL_EXIT_INVALID_INPUT, "malformed comparison: %s", line);
    char *target = strndup(line, (size_t)(paren - line));
    if (!target)
        return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    struct scan sc = {paren + 1};
    struct ctl_buf op = {0};
    int n = 0, code = 0;
    /* a space in Sscanf's format needs at least one space in the input */
    if (scan_quoted(&sc, key) == 0) {
        n++;
        if (*sc.p == ')' && isspace((unsigned char)sc.p[1])) {
            sc.p++;
            if (scan_word(&sc, &op) == 0) {
                n++;
                if (isspace((unsigned char)*sc.p) && scan_quoted(&sc, val) == 0)
                    n++;
            }
        }
    }
    if (n != 3) {
        struct ctl_buf qk = {0}, qv = {0};
        ctl_go_quote(&qk, key->p, key->len);
        ctl_go_quote(&qv, val->p, val->len);
        code = ctl_fail(CTL_EXIT_INVALID_INPUT, "malformed comparison: %s; got %s(%s) %s %s", line,
                        target, str_or_empty(&qk), str_or_empty(&op), str_or_empty(&qv));
        ctl_buf_free(&qk);
        ctl_buf_free(&qv);
        goto out;
    }
    const char *o = str_or_empty(&op);
    if (strcmp(o, "=") == 0) {
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    } else if (strcmp(o, "!=") == 0) {
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__NOT_EQUAL;
    } else if (strcmp(o, ">") == 0) {
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__GREATER;
    } else if (strcmp(o, "<") == 0) {
        cmp->result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__LESS;
    } else {
        /* etcdctl panics here ("Unknown result op") */
        code = ctl_fail(CTL_EXIT_INVALID_INPUT, "malformed comparison: %s (unknown operator %s)",
                        line, o);
        goto out;
    }
    cmp->key = (ProtobufCBinaryData){key->len, (uint8_t *)key->p};
    int64_t v = 0;
    char *err = NULL;
    const char *vs = str_or_empty(val);
    bool is_int = true;
    if (strcmp(target, "ver") == 0 || strcmp(target, "version") == 0) {
        cmp->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VERSION;
        cmp->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VERSION;
    } else if (strcmp(target, "c") == 0 || strcmp(target, "create") == 0) {
        cmp->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__CREATE;
        cmp->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_CREATE_REVISION;
    } else if (strcmp(target, "m") == 0 || strcmp(target, "mod") == 0) {
        cmp->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__MOD;
        cmp->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_MOD_REVISION;
    } else if (strcmp(target, "val") == 0 || strcmp(target, "value") == 0) {
        cmp->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
        cmp->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
        cmp->value = (ProtobufCBinaryData){val->len, (uint8_t *)val->p};
        is_int = false;
    } else if (strcmp(target, "lease") == 0) {
        /* etcdctl 3.4 panics on lease compares; this is 3.5's: the lease ID in hexadecimal */
        cmp->target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__LEASE;
        cmp->target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_LEASE;
        if (ctl_parse_int64(vs, 16, &v, &err) < 0) {
            free(err);
            code = ctl_fail(CTL_EXIT_INVALID_INPUT, "invalid txn compare request: %s", line);
            goto out;
        }
        cmp->lease = v;
        is_int = false;
    } else {
        code = ctl_fail(CTL_EXIT_INVALID_INPUT, "malformed comparison: %s (unknown target %s)",
                        line, target);
        goto out;
    }
    if (is_int) {
        if (ctl_parse_int64(vs, 10, &v, &err) < 0) {
            free(err);
            code = ctl_fail(CTL_EXIT_INVALID_INPUT, "invalid txn compare request: %s", line);
            goto out;
        }
        cmp->version = v; /* the union's int64 members share the storage */
    }
out:
    ctl_buf_free(&op);
    free(target);
    return code;
}

/* ---------------------------------------------------------------------------------------------- */
/* Ops: get/put/del lines, parsed with those commands' own flags */

/* What a txn owns while it is built. */
struct txn_build {
    Etcdserverpb__TxnRequest req;
    Etcdserverpb__Compare **cmps;
    Etcdserverpb__RequestOp **ops[2]; /* success, failure */
    size_t n_ops[2];
    struct ctl_buf *bufs; /* compare keys and values */
    size_t n_bufs;
    struct ctl_get_op **gets;
    size_t n_gets;
    struct ctl_put_op **puts;
    size_t n_puts;
    struct ctl_del_op **dels;
    size_t n_dels;
};

#define GROW(arr, n)                                          \
    ({                                                        \
        void *_p = realloc((arr), ((n) + 1) * sizeof *(arr)); \
        if (_p)                                               \
            (arr) = _p;                                       \
        _p != NULL;                                           \
    })

static const struct ctl_command *const op_commands[] = {&ctl_cmd_del, &ctl_cmd_get, &ctl_cmd_put};

/* The op command named (or uniquely prefixed, as cobra matches) by word. */
static const struct ctl_command *op_command(const char *word)
{
    const struct ctl_command *found = NULL;
    size_t n = strlen(word);
    for (size_t i = 0; i < 3; i++) {
        if (strcmp(op_commands[i]->name, word) == 0)
            return op_commands[i];
        if (n && strncmp(op_commands[i]->name, word, n) == 0) {
            if (found)
                return NULL;
            found = op_commands[i];
        }
    }
    return found;
}

static const struct ctl_flag_spec op_help_flag[] = {{"help", 'h', CTL_FLAG_BOOL, "false", ""}};

static int parse_op(const char *line, struct txn_build *t, Etcdserverpb__RequestOp *rop)
{
    struct ctl_words w = {0};
    bool bad = false;
    if (ctl_argify(line, &w, &bad) < 0) {
        ctl_words_free(&w);
        return bad ? ctl_fail(CTL_EXIT_INVALID_INPUT, "invalid syntax")
                   : ctl_fail(CTL_EXIT_ERROR, "out of memory");
    }
    if (w.n < 2) {
        ctl_words_free(&w);
        return ctl_fail(CTL_EXIT_INVALID_INPUT, "invalid txn compare request: %s", line);
    }
    const struct ctl_command *cmd = op_command(w.v[0]);
    struct ctl_flagset fs = {0};
    char **pos = NULL, *err = NULL;
    size_t npos = 0;
    int code = 0;
    if (!cmd || ctl_flagset_add(&fs, cmd->flags, cmd->n_flags) < 0 ||
        ctl_flagset_add(&fs, op_help_flag, 1) < 0 ||
        ctl_flagset_parse(&fs, w.v + 1, w.n - 1, &pos, &npos, &err) < 0 ||
        ctl_flag_bool(&fs, "help")) {
        code = ctl_fail(CTL_EXIT_INVALID_INPUT, "invalid txn request: %s", line);
        goto out;
    }
    if (cmd == &ctl_cmd_get) {
        struct ctl_get_op *op = calloc(1, sizeof *op);
        if (!op || !GROW(t->gets, t->n_gets)) {
            free(op);
            code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
        t->gets[t->n_gets++] = op;
        if ((code = ctl_get_op_build(&fs, pos, npos, op)))
            goto out;
        rop->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_RANGE;
        rop->request_range = &op->req;
    } else if (cmd == &ctl_cmd_put) {
        struct ctl_put_op *op = calloc(1, sizeof *op);
        if (!op || !GROW(t->puts, t->n_puts)) {
            free(op);
            code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
        t->puts[t->n_puts++] = op;
        if ((code = ctl_put_op_build(&fs, pos, npos, false, op)))
            goto out;
        rop->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
        rop->request_put = &op->req;
    } else {
        struct ctl_del_op *op = calloc(1, sizeof *op);
        if (!op || !GROW(t->dels, t->n_dels)) {
            free(op);
            code = ctl_fail(CTL_EXIT_ERROR, "out of memory");
            goto out;
        }
        t->dels[t->n_dels++] = op;
        if ((code = ctl_del_op_build(&fs, pos, npos, op)))
            goto out;
        rop->request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_DELETE_RANGE;
        rop->request_delete_range = &op->req;
    }
out:
    free(err);
    free(pos);
    ctl_flagset_free(&fs);
    ctl_words_free(&w);
    return code;
}

static void txn_build_free(struct txn_build *t)
{
    for (size_t i = 0; i < t->req.n_compare; i++)
        free(t->cmps[i]);
    free(t->cmps);
    for (int k = 0; k < 2; k++) {
        for (size_t i = 0; i < t->n_ops[k]; i++)
            free(t->ops[k][i]);
        free(t->ops[k]);
    }
    for (size_t i = 0; i < t->n_bufs; i++)
        ctl_buf_free(&t->bufs[i]);
    free(t->bufs);
    for (size_t i = 0; i < t->n_gets; i++) {
        ctl_get_op_free(t->gets[i]);
        free(t->gets[i]);
    }
    free(t->gets);
    for (size_t i = 0; i < t->n_puts; i++) {
        ctl_put_op_free(t->puts[i]);
        free(t->puts[i]);
    }
    free(t->puts);
    for (size_t i = 0; i < t->n_dels; i++) {
        ctl_del_op_free(t->dels[i]);
        free(t->dels[i]);
    }
    free(t->dels);
}

/* ---------------------------------------------------------------------------------------------- */
/* Reading the blocks */

/* The next line, trimmed of spaces. Returns 1 with *line (malloc'd), or an exit code (after
 * "Error: EOF") when input ends before a newline. */
static int read_line(char **line)
{
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n = getline(&buf, &cap, stdin);
    if (n < 0 || buf[n - 1] != '\n') {
        free(buf);
        return ctl_fail(CTL_EXIT_INVALID_INPUT, "EOF");
    }
    char *s = buf, *e = buf + n;
    while (s < e && isspace((unsigned char)*s))
        s++;
    while (e > s && isspace((unsigned char)e[-1]))
        e--;
    memmove(buf, s, (size_t)(e - s));
    buf[e - s] = '\0';
    *line = buf;
    return 1;
}

static void prompt(bool interactive, const char *s)
{
    if (interactive) {
        puts(s);
        fflush(stdout);
    }
}

static int read_compares(struct txn_build *t)
{
    for (;;) {
        char *line = NULL;
        int r = read_line(&line);
        if (r != 1)
            return r;
        if (*line == '\0') {
            free(line);
            return 0;
        }
        Etcdserverpb__Compare *cmp = malloc(sizeof *cmp);
        struct ctl_buf *bufs = realloc(t->bufs, (t->n_bufs + 2) * sizeof *bufs);
        if (bufs)
            t->bufs = bufs;
        if (!cmp || !bufs || !GROW(t->cmps, t->req.n_compare)) {
            free(cmp);
            free(line);
            return ctl_fail(CTL_EXIT_ERROR, "out of memory");
        }
        etcdserverpb__compare__init(cmp);
        t->cmps[t->req.n_compare++] = cmp;
        struct ctl_buf *key = &t->bufs[t->n_bufs++], *val = &t->bufs[t->n_bufs++];
        *key = *val = (struct ctl_buf){0};
        int code = parse_compare(line, cmp, key, val);
        free(line);
        if (code)
            return code;
        if (key->failed || val->failed)
            return ctl_fail(CTL_EXIT_ERROR, "out of memory");
    }
}

static int read_ops(struct txn_build *t, int k)
{
    for (;;) {
        char *line = NULL;
        int r = read_line(&line);
        if (r != 1)
            return r;
        if (*line == '\0') {
            free(line);
            return 0;
        }
        Etcdserverpb__RequestOp *rop = malloc(sizeof *rop);
        if (!rop || !GROW(t->ops[k], t->n_ops[k])) {
            free(rop);
            free(line);
            return ctl_fail(CTL_EXIT_ERROR, "out of memory");
        }
        etcdserverpb__request_op__init(rop);
        t->ops[k][t->n_ops[k]++] = rop;
        int code = parse_op(line, t, rop);
        free(line);
        if (code)
            return code;
    }
}

static int run_txn(struct ctl *ctl)
{
    if (ctl->n_args != 0)
        return ctl_fail(CTL_EXIT_BAD_ARGS, "txn command does not accept argument");
    int code = 0;
    struct cl_sync *s = ctl_client(ctl, &code);
    if (!s)
        return code;
    bool interactive = ctl_flag_bool(&ctl->fs, "interactive");
    struct txn_build t = {.req = ETCDSERVERPB__TXN_REQUEST__INIT};
    prompt(interactive, "compares:");
    if ((code = read_compares(&t)))
        goto out;
    prompt(interactive, "success requests (get, put, del):");
    if ((code = read_ops(&t, 0)))
        goto out;
    prompt(interactive, "failure requests (get, put, del):");
    if ((code = read_ops(&t, 1)))
        goto out;
    t.req.compare = t.cmps;
    t.req.success = t.ops[0];
    t.req.n_success = t.n_ops[0];
    t.req.failure = t.ops[1];
    t.req.n_failure = t.n_ops[1];
    struct cl_call call = {0};
    if (ctl_call(ctl, s, &call, &cl_method_txn, &t.req.base) != GRPC_OK)
        code = ctl_fail_call(&call);
    else
        code = CTL_PRINT(ctl, txn, (const Etcdserverpb__TxnResponse *)call.response);
    cl_call_reset(&call);
out:
    txn_build_free(&t);
    return code;
}

const struct ctl_command ctl_cmd_txn = {
    .name = "txn",
    .use = "[options]",
    .summary = "Runs compares and then one of two lists of requests, atomically",
    .description = "Reads from standard input three blocks, each ended by an empty line:\n"
                   "compares such as  mod(\"k\") > \"3\"  or  val(\"k\") = \"v\"  (targets ver, "
                   "c, m, val, lease),\n"
                   "then the requests to run when all compares hold, then those to run otherwise\n"
                   "(get, put and del command lines with their flags).\n",
    .flags = txn_flags,
    .n_flags = sizeof txn_flags / sizeof txn_flags[0],
    .run = run_txn,
};
