/* tests/tools/store_replay.c — drives a store with requests read from stdin, one result per line.
 *
 * Usage: store_replay DIR
 *
 * Opens (creating DIR if absent) a store in DIR, which should be fresh, then reads one command per
 * line on stdin and answers each with exactly one line on stdout, flushed at once, so that a test
 * can run the same history against etcd and against the store and compare what both observe
 * (tests/integration/test_store_vs_etcd.py). Every write runs in its own durable commit.
 *
 * Commands (tokens separated by spaces; B is bytes in hex, or "-" for empty; N is a decimal int64):
 *
 *   put K V FLAGS          FLAGS: "-" or letters: p prev_kv, v ignore_value, l ignore_lease
 *   del K END FLAGS        END "-": the single key K; "00": every key >= K. FLAGS: "-" or p
 *   get K END REV LIMIT ORDER TARGET KEYS_ONLY COUNT_ONLY MINMOD MAXMOD MINCREATE MAXCREATE
 *                          ORDER, TARGET: etcd's RangeRequest enums; KEYS_ONLY, COUNT_ONLY: 0/1
 *   txn NCMP CMP... NSUCC OP... NFAIL OP...
 *       CMP := RESULT TARGET K END ARG
 *              RESULT, TARGET: etcd's Compare enums (EQUAL 0, GREATER 1, LESS 2, NOT_EQUAL 3;
 *              VERSION 0, CREATE 1, MOD 2, VALUE 3, LEASE 4); ARG is B for VALUE, else N
 *       OP  := put ... | del ... | get ... | txn ... | none    (none: an empty RequestOp)
 *   compact REV            records the compaction, then runs every step, each in its own commit
 *   hash REV               HashKV(REV); 0 is the current revision
 *   rev                    the current and compacted revisions
 *
 * Answers: "ok " followed by one JSON object, or "err " followed by cairn_strerror()'s text ("err
 * bad command" for a line that does not parse). Bytes are hex strings; a key-value is
 * {"key","value","create","mod","version","lease"}. Per command:
 *
 *   put      {"rev", "prev_kv": KV or null}
 *   del      {"rev", "deleted", "prev_kvs": [KV...]}
 *   get      {"rev", "count", "more", "kvs": [KV...]}
 *   txn      {"rev", "succeeded", "responses": [{"put": ...} | {"del": ...} | {"get": ...} |
 *            {"txn": ...} | {"none": {}}]}    (a nested txn's "rev" is 0, as etcd's)
 *   compact  {"rev"}                          (the current revision, as etcd's response header)
 *   hash     {"rev", "hash", "compact_rev"}   (rev: the current revision, as etcd's header)
 *   rev      {"rev", "compact_rev"} */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/arena.h"
#include "common/error.h"
#include "store/store.h"

#define MAX_TXN_DEPTH 32 /* deeper nesting is rejected as a bad command (bounds the recursion) */

/* ---------------------------------------------------------------------------------------------- */
/* Parsing: a line split into tokens, consumed left to right. Every allocation (decoded bytes, op
 * arrays) comes from the command's arena. Any error sets `bad` and makes later calls fail too. */

struct parser {
    char **tok;      /* the line's tokens */
    size_t n_tok;    /* how many */
    size_t next;     /* index of the next token to consume */
    struct arena *a; /* where decoded requests live */
    bool bad;        /* the line is malformed */
};

/* Splits `line` in place at blanks; the token array comes from a. Returns false on exhaustion. */
static bool tokenize(char *line, struct arena *a, struct parser *p)
{
    size_t cap = strlen(line) / 2 + 1; /* at most one token per two characters */
    *p = (struct parser){.a = a};
    p->tok = arena_alloc(a, cap * sizeof *p->tok);
    if (!p->tok)
        return false;
    for (char *s = line; *s;) {
        while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
            *s++ = '\0';
        if (!*s)
            break;
        p->tok[p->n_tok++] = s;
        while (*s && *s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            s++;
    }
    return true;
}

/* The next token, or NULL (and bad) at the end of the line. */
static const char *take(struct parser *p)
{
    if (p->bad || p->next >= p->n_tok) {
        p->bad = true;
        return NULL;
    }
    return p->tok[p->next++];
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* B: hex-encoded bytes, "-" for empty. */
static store_bytes take_bytes(struct parser *p)
{
    store_bytes b = {NULL, 0};
    const char *t = take(p);
    if (!t || strcmp(t, "-") == 0)
        return b;
    size_t len = strlen(t);
    uint8_t *d = len % 2 == 0 ? arena_alloc(p->a, len / 2) : NULL;
    if (!d) {
        p->bad = true;
        return b;
    }
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hex_digit(t[2 * i]), lo = hex_digit(t[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            p->bad = true;
            return b;
        }
        d[i] = (uint8_t)(hi << 4 | lo);
    }
    b.data = d;
    b.len = len / 2;
    return b;
}

/* N: a decimal int64, the whole token. */
static int64_t take_int(struct parser *p)
{
    const char *t = take(p);
    if (!t)
        return 0;
    char *end;
    errno = 0;
    long long v = strtoll(t, &end, 10);
    if (errno || end == t || *end) {
        p->bad = true;
        return 0;
    }
    return v;
}

/* An int in [lo, hi]. */
static int take_enum(struct parser *p, int lo, int hi)
{
    int64_t v = take_int(p);
    if (v < lo || v > hi)
        p->bad = true;
    return (int)v;
}

/* FLAGS: "-" or a set of letters, each from `allowed`; returns whether `flag` is among them. The
 * token is consumed by the caller (take) and checked here. */
static bool check_flags(struct parser *p, const char *flags, const char *allowed)
{
    if (!flags || strcmp(flags, "-") == 0)
        return true;
    for (const char *f = flags; *f; f++)
        if (!strchr(allowed, *f))
            p->bad = true;
    return !p->bad;
}

static bool has_flag(const char *flags, char flag)
{
    return flags && strchr(flags, flag);
}

/* Whether the whole line parsed: no error and no token left over. Commands check it before they
 * touch the store, so a malformed line changes nothing. */
static bool parsed(struct parser *p)
{
    if (p->next != p->n_tok)
        p->bad = true;
    return !p->bad;
}

static void parse_put(struct parser *p, struct store_put_req *r)
{
    *r = (struct store_put_req){0};
    r->key = take_bytes(p);
    r->value = take_bytes(p);
    const char *flags = take(p);
    if (!check_flags(p, flags, "pvl"))
        return;
    r->prev_kv = has_flag(flags, 'p');
    r->ignore_value = has_flag(flags, 'v');
    r->ignore_lease = has_flag(flags, 'l');
}

static void parse_del(struct parser *p, struct store_delete_req *r)
{
    *r = (struct store_delete_req){0};
    r->key = take_bytes(p);
    r->range_end = take_bytes(p);
    const char *flags = take(p);
    if (check_flags(p, flags, "p"))
        r->prev_kv = has_flag(flags, 'p');
}

static void parse_get(struct parser *p, struct store_range_req *r)
{
    *r = (struct store_range_req){0};
    r->key = take_bytes(p);
    r->range_end = take_bytes(p);
    r->revision = take_int(p);
    r->limit = take_int(p);
    r->sort_order = take_enum(p, STORE_SORT_NONE, STORE_SORT_DESCEND);
    r->sort_target = take_enum(p, STORE_SORT_KEY, STORE_SORT_VALUE);
    r->keys_only = take_enum(p, 0, 1);
    r->count_only = take_enum(p, 0, 1);
    r->min_mod_revision = take_int(p);
    r->max_mod_revision = take_int(p);
    r->min_create_revision = take_int(p);
    r->max_create_revision = take_int(p);
}

static void parse_txn(struct parser *p, struct store_txn_req *r, int depth);

/* An array of n elements of the given size from the arena; n comes from the input, so it is bounded
 * by what the rest of the line could hold before allocating. */
static void *take_array(struct parser *p, size_t *n, size_t size)
{
    int64_t v = take_int(p);
    if (p->bad || v < 0 || (uint64_t)v > p->n_tok - p->next) {
        p->bad = true;
        return NULL;
    }
    *n = (size_t)v;
    void *arr = arena_alloc(p->a, *n * size);
    if (!arr)
        p->bad = true;
    return arr;
}

static void parse_cmp(struct parser *p, struct store_compare *c)
{
    *c = (struct store_compare){0};
    c->result = take_enum(p, STORE_CMP_EQUAL, STORE_CMP_NOT_EQUAL);
    c->target = take_enum(p, STORE_CMP_VERSION, STORE_CMP_LEASE);
    c->key = take_bytes(p);
    c->range_end = take_bytes(p);
    if (p->bad)
        return;
    if (c->target == STORE_CMP_VALUE)
        c->value = take_bytes(p);
    else
        c->number = take_int(p);
}

static void parse_op(struct parser *p, struct store_op *op, int depth)
{
    *op = (struct store_op){.type = STORE_OP_NONE};
    const char *t = take(p);
    if (!t)
        return;
    if (strcmp(t, "put") == 0) {
        op->type = STORE_OP_PUT;
        parse_put(p, &op->u.put);
    } else if (strcmp(t, "del") == 0) {
        op->type = STORE_OP_DELETE;
        parse_del(p, &op->u.del);
    } else if (strcmp(t, "get") == 0) {
        op->type = STORE_OP_RANGE;
        parse_get(p, &op->u.range);
    } else if (strcmp(t, "txn") == 0) {
        op->type = STORE_OP_TXN;
        op->u.txn = arena_alloc(p->a, sizeof *op->u.txn);
        if (!op->u.txn)
            p->bad = true;
        else
            parse_txn(p, op->u.txn, depth + 1);
    } else if (strcmp(t, "none") != 0) {
        p->bad = true;
    }
}

static void parse_ops(struct parser *p, struct store_op **ops, size_t *n, int depth)
{
    *ops = take_array(p, n, sizeof **ops);
    for (size_t i = 0; !p->bad && i < *n; i++)
        parse_op(p, &(*ops)[i], depth);
}

static void parse_txn(struct parser *p, struct store_txn_req *r, int depth)
{
    *r = (struct store_txn_req){0};
    if (depth > MAX_TXN_DEPTH) {
        p->bad = true;
        return;
    }
    r->compares = take_array(p, &r->n_compares, sizeof *r->compares);
    for (size_t i = 0; !p->bad && i < r->n_compares; i++)
        parse_cmp(p, &r->compares[i]);
    parse_ops(p, &r->success, &r->n_success, depth);
    parse_ops(p, &r->failure, &r->n_failure, depth);
}

/* ---------------------------------------------------------------------------------------------- */
/* Output: JSON on one line */

static void out_hex(store_bytes b)
{
    putchar('"');
    for (size_t i = 0; i < b.len; i++)
        printf("%02x", b.data[i]);
    putchar('"');
}

static void out_kv(const struct store_kv *kv)
{
    if (!kv) {
        fputs("null", stdout);
        return;
    }
    fputs("{\"key\":", stdout);
    out_hex(kv->key);
    fputs(",\"value\":", stdout);
    out_hex(kv->value);
    printf(",\"create\":%lld,\"mod\":%lld,\"version\":%lld,\"lease\":%lld}",
           (long long)kv->create_revision, (long long)kv->mod_revision, (long long)kv->version,
           (long long)kv->lease);
}

static void out_kvs(const struct store_kv *kvs, size_t n)
{
    putchar('[');
    for (size_t i = 0; i < n; i++) {
        if (i)
            putchar(',');
        out_kv(&kvs[i]);
    }
    putchar(']');
}

static void out_range(const struct store_range_res *r)
{
    printf("{\"rev\":%lld,\"count\":%lld,\"more\":%s,\"kvs\":", (long long)r->revision,
           (long long)r->count, r->more ? "true" : "false");
    out_kvs(r->kvs, r->n_kvs);
    putchar('}');
}

static void out_put(const struct store_put_res *r)
{
    printf("{\"rev\":%lld,\"prev_kv\":", (long long)r->revision);
    out_kv(r->prev_kv);
    putchar('}');
}

static void out_del(const struct store_delete_res *r)
{
    printf("{\"rev\":%lld,\"deleted\":%lld,\"prev_kvs\":", (long long)r->revision,
           (long long)r->deleted);
    out_kvs(r->prev_kvs, r->n_prev_kvs);
    putchar('}');
}

static void out_txn(const struct store_txn_res *r)
{
    printf("{\"rev\":%lld,\"succeeded\":%s,\"responses\":[", (long long)r->revision,
           r->succeeded ? "true" : "false");
    for (size_t i = 0; i < r->n_responses; i++) {
        const struct store_op_res *o = &r->responses[i];
        if (i)
            putchar(',');
        switch (o->type) {
        case STORE_OP_RANGE:
            fputs("{\"get\":", stdout);
            out_range(&o->u.range);
            break;
        case STORE_OP_PUT:
            fputs("{\"put\":", stdout);
            out_put(&o->u.put);
            break;
        case STORE_OP_DELETE:
            fputs("{\"del\":", stdout);
            out_del(&o->u.del);
            break;
        case STORE_OP_TXN:
            fputs("{\"txn\":", stdout);
            out_txn(o->u.txn);
            break;
        default:
            fputs("{\"none\":{}", stdout);
            break;
        }
        putchar('}');
    }
    fputs("]}", stdout);
}

/* Begins the "ok" answer; the caller prints the JSON object and ends the line. */
static void ok(void)
{
    fputs("ok ", stdout);
}

static void answer_err(const char *msg)
{
    printf("err %s\n", msg);
}

/* ---------------------------------------------------------------------------------------------- */
/* Commands. Each returns 0 after printing its answer, or an error for the caller to print. */

/* Ends a write request's transaction after `rc` from the request: commits it durably, or aborts it
 * when the request failed. */
static int write_end(store_tx *tx, int rc)
{
    if (rc != 0) {
        store_tx_end(tx);
        return rc;
    }
    return store_tx_commit(tx, true);
}

static int cmd_put(store *st, struct parser *p, struct arena *a)
{
    struct store_put_req req;
    parse_put(p, &req);
    if (!parsed(p))
        return 0;
    store_tx *tx;
    int rc = store_tx_begin_write(st, &tx);
    if (rc)
        return rc;
    struct store_put_res res;
    if ((rc = write_end(tx, store_put(tx, &req, a, &res))))
        return rc;
    ok(); /* results of a write transaction are copies in the arena: valid after the commit */
    out_put(&res);
    putchar('\n');
    return 0;
}

static int cmd_del(store *st, struct parser *p, struct arena *a)
{
    struct store_delete_req req;
    parse_del(p, &req);
    if (!parsed(p))
        return 0;
    store_tx *tx;
    int rc = store_tx_begin_write(st, &tx);
    if (rc)
        return rc;
    struct store_delete_res res;
    if ((rc = write_end(tx, store_delete_range(tx, &req, a, &res))))
        return rc;
    ok();
    out_del(&res);
    putchar('\n');
    return 0;
}

static int cmd_get(store *st, struct parser *p, struct arena *a)
{
    struct store_range_req req;
    parse_get(p, &req);
    if (!parsed(p))
        return 0;
    store_tx *tx;
    int rc = store_tx_begin_read(st, &tx);
    if (rc)
        return rc;
    struct store_range_res res;
    rc = store_range(tx, &req, a, &res);
    if (rc == 0) { /* the result borrows from the read transaction: print before ending it */
        ok();
        out_range(&res);
        putchar('\n');
    }
    store_tx_end(tx);
    return rc;
}

/* A txn that writes nothing runs in a read transaction, one that may write in its own commit. */
static int cmd_txn(store *st, struct parser *p, struct arena *a)
{
    struct store_txn_req req;
    parse_txn(p, &req, 0);
    if (!parsed(p))
        return 0;
    bool read_only = store_txn_is_read_only(&req);
    store_tx *tx;
    int rc = read_only ? store_tx_begin_read(st, &tx) : store_tx_begin_write(st, &tx);
    if (rc)
        return rc;
    struct store_txn_res res;
    rc = store_txn(tx, &req, a, &res);
    if (read_only) {
        if (rc == 0) {
            ok();
            out_txn(&res);
            putchar('\n');
        }
        store_tx_end(tx);
        return rc;
    }
    if ((rc = write_end(tx, rc)))
        return rc;
    ok();
    out_txn(&res);
    putchar('\n');
    return 0;
}

/* The current and compacted revisions, from a fresh read transaction. */
static int revisions(store *st, int64_t *rev, int64_t *compact_rev)
{
    store_tx *tx;
    int rc = store_tx_begin_read(st, &tx);
    if (rc)
        return rc;
    *rev = store_tx_rev(tx);
    if (compact_rev)
        *compact_rev = store_tx_compact_rev(tx);
    store_tx_end(tx);
    return 0;
}

/* Compaction as etcd's Compact with physical=true: recorded, then carried out, before answering. */
static int cmd_compact(store *st, struct parser *p)
{
    int64_t revision = take_int(p);
    if (!parsed(p))
        return 0;
    store_tx *tx;
    int rc = store_tx_begin_write(st, &tx);
    if (rc)
        return rc;
    if ((rc = write_end(tx, store_compact(tx, revision))))
        return rc;
    for (bool done = false; !done;) {
        if ((rc = store_tx_begin_write(st, &tx)))
            return rc;
        if ((rc = write_end(tx, store_compact_step(tx, &done))))
            return rc;
    }
    int64_t rev;
    if ((rc = revisions(st, &rev, NULL)))
        return rc;
    ok();
    printf("{\"rev\":%lld}\n", (long long)rev);
    return 0;
}

static int cmd_hash(store *st, struct parser *p)
{
    int64_t revision = take_int(p);
    if (!parsed(p))
        return 0;
    store_tx *tx;
    int rc = store_tx_begin_read(st, &tx);
    if (rc)
        return rc;
    uint32_t hash;
    int64_t compact_rev, rev = store_tx_rev(tx);
    rc = store_hash_kv(tx, revision, &hash, &compact_rev);
    store_tx_end(tx);
    if (rc)
        return rc;
    ok();
    printf("{\"rev\":%lld,\"hash\":%lu,\"compact_rev\":%lld}\n", (long long)rev,
           (unsigned long)hash, (long long)compact_rev);
    return 0;
}

static int cmd_rev(store *st, struct parser *p)
{
    if (!parsed(p))
        return 0;
    int64_t rev, compact_rev;
    int rc = revisions(st, &rev, &compact_rev);
    if (rc)
        return rc;
    ok();
    printf("{\"rev\":%lld,\"compact_rev\":%lld}\n", (long long)rev, (long long)compact_rev);
    return 0;
}

/* Runs one command line and prints its one answer line. */
static void run_line(store *st, char *line, struct arena *a)
{
    struct parser p;
    if (!tokenize(line, a, &p)) {
        answer_err(cairn_strerror(CAIRN_E_NOMEM));
        return;
    }
    const char *cmd = take(&p);
    if (!cmd)
        cmd = ""; /* an empty line: take() marked it bad, and "" matches no command */
    int rc = 0;
    if (strcmp(cmd, "put") == 0)
        rc = cmd_put(st, &p, a);
    else if (strcmp(cmd, "del") == 0)
        rc = cmd_del(st, &p, a);
    else if (strcmp(cmd, "get") == 0)
        rc = cmd_get(st, &p, a);
    else if (strcmp(cmd, "txn") == 0)
        rc = cmd_txn(st, &p, a);
    else if (strcmp(cmd, "compact") == 0)
        rc = cmd_compact(st, &p);
    else if (strcmp(cmd, "hash") == 0)
        rc = cmd_hash(st, &p);
    else if (strcmp(cmd, "rev") == 0)
        rc = cmd_rev(st, &p);
    else
        p.bad = true;

    if (p.bad) /* the command returned 0 without touching the store */
        answer_err("bad command");
    else if (rc)
        answer_err(cairn_strerror(rc));
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s DIR   (commands on stdin; see the source's header)\n", argv[0]);
        return 2;
    }
    if (mkdir(argv[1], 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "store_replay: mkdir %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    store *st;
    int rc = store_open(argv[1], NULL, &st);
    if (rc) {
        fprintf(stderr, "store_replay: store_open %s: %s\n", argv[1], cairn_strerror(rc));
        return 1;
    }

    struct arena a = ARENA_INIT;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, stdin)) >= 0) {
        if (strlen(line) != (size_t)len) /* a NUL byte inside the line */
            answer_err("bad command");
        else
            run_line(st, line, &a);
        fflush(stdout);
        arena_reset(&a);
    }
    free(line);
    arena_free(&a);
    store_close(st);
    return 0;
}
