/* client/ctl/print_table.c — -w table (printer_table.go) for member and endpoint lists: the rows
 * etcdctl's simple and table printers share, drawn as olekukonko/tablewriter draws them (upper-
 * case centred titles, cells right-aligned, cells wider than 30 wrapped at spaces with its
 * minimum-raggedness algorithm). */
#include <stdlib.h>
#include <string.h>

#include "client/ctl/printer.h"

/* ---------------------------------------------------------------------------------------------- */
/* Rows */

static bool rows_init(struct ctl_rows *t, const char *const *header, size_t n_cols, size_t n)
{
    *t = (struct ctl_rows){.header = header, .n_cols = n_cols};
    t->rows = calloc(n ? n : 1, sizeof *t->rows);
    if (!t->rows) {
        t->failed = true;
        return false;
    }
    return true;
}

/* Appends a row of n_cols cells taken from b[] (their texts move into the row). */
static void rows_add(struct ctl_rows *t, struct ctl_buf *cells)
{
    char **row = calloc(t->n_cols, sizeof *row);
    if (!row)
        t->failed = true;
    for (size_t j = 0; j < t->n_cols; j++) {
        char *s = ctl_buf_take(&cells[j]);
        if (!s)
            t->failed = true;
        if (row)
            row[j] = s ? s : NULL;
        else
            free(s);
    }
    if (!row)
        return;
    for (size_t j = 0; j < t->n_cols; j++) {
        if (!row[j] && !(row[j] = strdup("")))
            t->failed = true;
    }
    t->rows[t->n_rows++] = row;
}

void ctl_rows_free(struct ctl_rows *t)
{
    for (size_t i = 0; i < t->n_rows; i++) {
        for (size_t j = 0; j < t->n_cols; j++)
            free(t->rows[i][j]);
        free(t->rows[i]);
    }
    free(t->rows);
    t->rows = NULL;
    t->n_rows = 0;
}

static const char *tf(bool v)
{
    return v ? "true" : "false";
}

void ctl_rows_member_list(const Etcdserverpb__MemberListResponse *r, struct ctl_rows *t)
{
    static const char *const header[] = {"ID",         "Status",       "Name",
                                         "Peer Addrs", "Client Addrs", "Is Learner"};
    if (!rows_init(t, header, 6, r->n_members))
        return;
    for (size_t i = 0; i < r->n_members; i++) {
        const Etcdserverpb__Member *m = r->members[i];
        struct ctl_buf c[6] = {{0}};
        ctl_buf_printf(&c[0], "%llx", (unsigned long long)m->id);
        ctl_buf_puts(&c[1], *m->name ? "started" : "unstarted");
        ctl_buf_puts(&c[2], m->name);
        for (size_t j = 0; j < m->n_peerurls; j++)
            ctl_buf_printf(&c[3], "%s%s", j ? "," : "", m->peerurls[j]);
        for (size_t j = 0; j < m->n_clienturls; j++)
            ctl_buf_printf(&c[4], "%s%s", j ? "," : "", m->clienturls[j]);
        ctl_buf_puts(&c[5], tf(m->islearner));
        rows_add(t, c);
    }
}

void ctl_rows_ep_health(const struct ctl_ep_health *h, size_t n, struct ctl_rows *t)
{
    static const char *const header[] = {"endpoint", "health", "took", "error"};
    if (!rows_init(t, header, 4, n))
        return;
    for (size_t i = 0; i < n; i++) {
        struct ctl_buf c[4] = {{0}};
        ctl_buf_puts(&c[0], h[i].ep);
        ctl_buf_puts(&c[1], tf(h[i].health));
        ctl_buf_puts(&c[2], h[i].took ? h[i].took : "");
        ctl_buf_puts(&c[3], h[i].error ? h[i].error : "");
        rows_add(t, c);
    }
}

void ctl_rows_ep_status(const struct ctl_ep_status *s, size_t n, struct ctl_rows *t)
{
    static const char *const header[] = {"endpoint",  "ID",         "version",
                                         "db size",   "is leader",  "is learner",
                                         "raft term", "raft index", "raft applied index",
                                         "errors"};
    if (!rows_init(t, header, 10, n))
        return;
    for (size_t i = 0; i < n; i++) {
        const Etcdserverpb__StatusResponse *r = s[i].resp;
        uint64_t member = r->header ? r->header->member_id : 0;
        struct ctl_buf c[10] = {{0}};
        ctl_buf_puts(&c[0], s[i].ep);
        ctl_buf_printf(&c[1], "%llx", (unsigned long long)member);
        ctl_buf_puts(&c[2], r->version);
        ctl_humanize_bytes(&c[3], (uint64_t)r->dbsize);
        ctl_buf_puts(&c[4], tf(r->leader == member));
        ctl_buf_puts(&c[5], tf(r->islearner));
        ctl_buf_printf(&c[6], "%llu", (unsigned long long)r->raftterm);
        ctl_buf_printf(&c[7], "%llu", (unsigned long long)r->raftindex);
        ctl_buf_printf(&c[8], "%llu", (unsigned long long)r->raftappliedindex);
        for (size_t j = 0; j < r->n_errors; j++)
            ctl_buf_printf(&c[9], "%s%s", j ? ", " : "", r->errors[j]);
        rows_add(t, c);
    }
}

void ctl_rows_ep_hash(const struct ctl_ep_hash *h, size_t n, struct ctl_rows *t)
{
    static const char *const header[] = {"endpoint", "hash"};
    if (!rows_init(t, header, 2, n))
        return;
    for (size_t i = 0; i < n; i++) {
        struct ctl_buf c[2] = {{0}};
        ctl_buf_puts(&c[0], h[i].ep);
        ctl_buf_printf(&c[1], "%u", (unsigned)h[i].resp->hash);
        rows_add(t, c);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* tablewriter */

#define MAX_CELL_WIDTH 30 /* tablewriter's MAX_ROW_WIDTH */

/* A cell split into the lines it is drawn on. */
struct cell {
    char **lines;
    size_t n;
};

static size_t width_of(const char *s)
{
    return ctl_text_width(s, strlen(s));
}

static bool cell_push(struct cell *c, const char *s, size_t len)
{
    char **l = realloc(c->lines, (c->n + 1) * sizeof *l);
    if (!l)
        return false;
    c->lines = l;
    if (!(c->lines[c->n] = strndup(s, len)))
        return false;
    c->n++;
    return true;
}

/* tablewriter's WrapWords: lines of minimal raggedness (sum of squared shortfalls from lim, with
 * a penalty for lines longer than lim). Writes line breaks into brk (brk[i]: the word after the
 * line starting at word i). */
static bool wrap_words(const size_t *wlen, size_t n, size_t lim, size_t *brk)
{
    const long long pen = 100000;
    long long *cost = malloc(n * sizeof *cost);
    if (!cost)
        return false;
    for (size_t i = n; i-- > 0;) {
        size_t len = 0; /* length of words i..n-1 joined by spaces */
        for (size_t j = i; j < n; j++)
            len += wlen[j] + (j > i);
        cost[i] = 0x7fffffff;
        if (len <= lim) {
            cost[i] = 0;
            brk[i] = n;
            continue;
        }
        size_t l = 0; /* length of words i..j-1 */
        for (size_t j = i + 1; j < n; j++) {
            l += wlen[j - 1] + (j - 1 > i);
            long long d = (long long)lim - (long long)l;
            long long c = d * d + cost[j];
            if (l > lim)
                c += pen;
            if (c < cost[i]) {
                cost[i] = c;
                brk[i] = j;
            }
        }
    }
    free(cost);
    return true;
}

/* A cell's lines and the width it needs (tablewriter's parseDimension with auto-wrap). */
static bool cell_layout(const char *text, struct cell *c, size_t *width)
{
    *c = (struct cell){0};
    /* the width of its widest line, at most 30 */
    size_t max = 0;
    for (const char *p = text;;) {
        const char *nl = strchr(p, '\n');
        size_t w = ctl_text_width(p, nl ? (size_t)(nl - p) : strlen(p));
        if (w > max)
            max = w;
        if (!nl)
            break;
        p = nl + 1;
    }
    if (max > MAX_CELL_WIDTH)
        max = MAX_CELL_WIDTH;
    /* one paragraph, split into words at spaces (newlines count as spaces) */
    char *para = strdup(text);
    if (!para)
        return false;
    for (char *p = para; *p; p++) {
        if (*p == '\n')
            *p = ' ';
    }
    size_t n = 1;
    for (char *p = para; *p; p++)
        n += *p == ' ';
    char **words = malloc(n * sizeof *words);
    size_t *wlen = malloc(n * sizeof *wlen), *brk = malloc(n * sizeof *brk);
    bool ok = words && wlen && brk;
    if (ok) {
        char *w = para;
        for (size_t i = 0; i < n; i++) {
            char *sp = strchr(w, ' ');
            if (sp)
                *sp = '\0';
            words[i] = w;
            wlen[i] = width_of(w);
            w = sp ? sp + 1 : w + strlen(w);
        }
        size_t lim = max;
        for (size_t i = 0; i < n; i++) {
            if (wlen[i] > lim)
                lim = wlen[i];
        }
        ok = wrap_words(wlen, n, lim, brk);
        size_t newmax = max;
        for (size_t i = 0; ok && i < n; i = brk[i]) {
            struct ctl_buf line = {0};
            for (size_t k = i; k < brk[i]; k++)
                ctl_buf_printf(&line, "%s%s", k > i ? " " : "", words[k]);
            char *s = ctl_buf_take(&line);
            ok = s && cell_push(c, s, strlen(s));
            if (s && width_of(s) > newmax)
                newmax = width_of(s);
            free(s);
        }
        *width = newmax;
    }
    free(words);
    free(wlen);
    free(brk);
    free(para);
    return ok;
}

static void cell_free(struct cell *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->lines[i]);
    free(c->lines);
}

static void pad(struct ctl_buf *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ctl_buf_putc(b, ' ');
}

static void rule(struct ctl_buf *b, const size_t *w, size_t n)
{
    ctl_buf_putc(b, '+');
    for (size_t j = 0; j < n; j++) {
        for (size_t k = 0; k < w[j] + 2; k++)
            ctl_buf_putc(b, '-');
        ctl_buf_putc(b, '+');
    }
    ctl_buf_putc(b, '\n');
}

/* Draws t and frees it. */
static int table_out(struct ctl_rows *t)
{
    size_t nc = t->n_cols, nr = t->n_rows;
    struct cell *cells = calloc((nr + 1) * nc, sizeof *cells); /* row 0: the titles */
    size_t *w = calloc(nc, sizeof *w);
    struct ctl_buf b = {0};
    bool ok = cells && w && !t->failed;
    for (size_t j = 0; ok && j < nc; j++) {
        /* titles: upper case, '_' as a space */
        char *title = strdup(t->header[j]);
        ok = title != NULL;
        for (char *p = title; ok && *p; p++)
            *p = *p == '_' ? ' ' : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        size_t cw = 0;
        ok = ok && cell_layout(title, &cells[j], &cw);
        if (cw > w[j])
            w[j] = cw;
        free(title);
    }
    for (size_t i = 0; ok && i < nr; i++) {
        for (size_t j = 0; ok && j < nc; j++) {
            size_t cw = 0;
            ok = cell_layout(t->rows[i][j], &cells[(i + 1) * nc + j], &cw);
            if (cw > w[j])
                w[j] = cw;
        }
    }
    if (ok) {
        rule(&b, w, nc);
        for (size_t i = 0; i <= nr; i++) {
            size_t h = 0;
            for (size_t j = 0; j < nc; j++) {
                if (cells[i * nc + j].n > h)
                    h = cells[i * nc + j].n;
            }
            for (size_t x = 0; x < h; x++) {
                ctl_buf_putc(&b, '|');
                for (size_t j = 0; j < nc; j++) {
                    const struct cell *c = &cells[i * nc + j];
                    /* a cell with fewer lines is filled with "  " lines, as tablewriter does */
                    const char *s = x < c->n ? c->lines[x] : (i == 0 ? "" : "  ");
                    size_t sw = width_of(s), gap = w[j] > sw ? w[j] - sw : 0;
                    ctl_buf_putc(&b, ' ');
                    if (i == 0) { /* titles centred */
                        pad(&b, gap / 2);
                        ctl_buf_puts(&b, s);
                        pad(&b, gap - gap / 2);
                    } else { /* cells right-aligned */
                        pad(&b, gap);
                        ctl_buf_puts(&b, s);
                    }
                    ctl_buf_puts(&b, " |");
                }
                ctl_buf_putc(&b, '\n');
            }
            if (i == 0)
                rule(&b, w, nc);
        }
        rule(&b, w, nc);
    } else {
        b.failed = true;
    }
    if (cells) {
        for (size_t i = 0; i < (nr + 1) * nc; i++)
            cell_free(&cells[i]);
    }
    free(cells);
    free(w);
    ctl_rows_free(t);
    return ctl_print_flush(&b);
}

static int table_member_list(const struct ctl *ctl, const Etcdserverpb__MemberListResponse *r)
{
    (void)ctl;
    struct ctl_rows t;
    ctl_rows_member_list(r, &t);
    return table_out(&t);
}

static int table_ep_health(const struct ctl *ctl, const struct ctl_ep_health *h, size_t n)
{
    (void)ctl;
    struct ctl_rows t;
    ctl_rows_ep_health(h, n, &t);
    return table_out(&t);
}

static int table_ep_status(const struct ctl *ctl, const struct ctl_ep_status *s, size_t n)
{
    (void)ctl;
    struct ctl_rows t;
    ctl_rows_ep_status(s, n, &t);
    return table_out(&t);
}

static int table_ep_hashkv(const struct ctl *ctl, const struct ctl_ep_hash *h, size_t n)
{
    (void)ctl;
    struct ctl_rows t;
    ctl_rows_ep_hash(h, n, &t);
    return table_out(&t);
}

const struct ctl_printer ctl_print_table = {
    .name = "table",
    .member_list = table_member_list,
    .ep_health = table_ep_health,
    .ep_status = table_ep_status,
    .ep_hashkv = table_ep_hashkv,
};
