/* client/ctl/help.c — help text (see help.h). */
#include "client/ctl/help.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/text.h"

/* The -h/--help flag every command has (its usage line names the command in help). */
static const struct ctl_flag_spec help_flag = {"help", 'h', CTL_FLAG_BOOL, "false", "help"};

int ctl_cmd_flagset(const struct ctl_cmd_path *p, struct ctl_flagset *fs)
{
    const struct ctl_command *cmd = p->path[p->depth];
    if (ctl_flagset_add(fs, cmd->flags, cmd->n_flags) < 0 ||
        ctl_flagset_add(fs, cmd->pflags, cmd->n_pflags) < 0 ||
        ctl_flagset_add(fs, &help_flag, 1) < 0)
        return -1;
    for (size_t d = p->depth; d-- > 0;) {
        if (ctl_flagset_add(fs, p->path[d]->pflags, p->path[d]->n_pflags) < 0)
            return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Go's text/tabwriter with minwidth 0, tabwidth 8, padding 1, padchar '\t': cells end at tabs;
 * a column block is a run of consecutive lines that have a cell in that column; its width is
 * the widest cell + 1, rounded up to a multiple of 8, filled with tabs. */

struct cell {
    const char *s;
    size_t len;   /* bytes */
    size_t width; /* runes */
};

struct line {
    struct cell *cells; /* the last one is the text after the last tab */
    size_t n;
};

struct tw {
    struct line *lines;
    size_t n;
    size_t widths[16]; /* column widths of the enclosing blocks */
    size_t n_widths;
    struct ctl_buf *out;
};

static size_t runes(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += ((unsigned char)s[i] & 0xc0) != 0x80;
    return n;
}

static void write_lines(struct tw *t, size_t line0, size_t line1)
{
    for (size_t i = line0; i < line1; i++) {
        struct line *l = &t->lines[i];
        for (size_t j = 0; j < l->n; j++) {
            struct cell *c = &l->cells[j];
            ctl_buf_put(t->out, c->s, c->len);
            if (j < t->n_widths && j + 1 < l->n) {
                size_t cellw = (t->widths[j] + 7) / 8 * 8;
                size_t pad = cellw - c->width;
                for (size_t k = 0; k < (pad + 7) / 8; k++)
                    ctl_buf_putc(t->out, '\t');
            }
        }
        if (i + 1 < t->n)
            ctl_buf_putc(t->out, '\n');
    }
}

static void format(struct tw *t, size_t line0, size_t line1)
{
    size_t column = t->n_widths;
    for (size_t this = line0; this < line1; this ++) {
        if (column + 1 >= t->lines[this].n)
            continue;
        write_lines(t, line0, this);
        line0 = this;
        size_t width = 0;
        for (; this < line1; this ++) {
            struct line *l = &t->lines[this];
            if (column + 1 >= l->n)
                break;
            if (l->cells[column].width + 1 > width)
                width = l->cells[column].width + 1;
        }
        if (t->n_widths < sizeof t->widths / sizeof t->widths[0]) {
            t->widths[t->n_widths++] = width;
            format(t, line0, this);
            t->n_widths--;
        }
        line0 = this; /* the line that ended the block has no cell here: skipping it is fine */
    }
    write_lines(t, line0, line1);
}

/* Aligns text (tab-separated cells) into out. */
static void tabwrite(const char *text, struct ctl_buf *out)
{
    struct tw t = {.out = out};
    const char *p = text;
    bool failed = false;
    for (;;) {
        const char *nl = strchr(p, '\n');
        const char *end = nl ? nl : p + strlen(p);
        struct line l = {0};
        const char *c = p;
        for (;;) {
            const char *tab = memchr(c, '\t', (size_t)(end - c));
            const char *ce = tab ? tab : end;
            struct cell *cells = realloc(l.cells, (l.n + 1) * sizeof *cells);
            if (!cells) {
                failed = true;
                break;
            }
            l.cells = cells;
            l.cells[l.n++] = (struct cell){c, (size_t)(ce - c), runes(c, (size_t)(ce - c))};
            if (!tab)
                break;
            c = tab + 1;
        }
        struct line *lines = realloc(t.lines, (t.n + 1) * sizeof *lines);
        if (!lines || failed) {
            free(l.cells);
            failed = true;
            break;
        }
        t.lines = lines;
        t.lines[t.n++] = l;
        if (!nl)
            break;
        p = nl + 1;
    }
    if (failed)
        out->failed = true;
    else
        format(&t, 0, t.n);
    for (size_t i = 0; i < t.n; i++)
        free(t.lines[i].cells);
    free(t.lines);
}

/* ---------------------------------------------------------------------------------------------- */
/* The usage text */

/* One flag line: "  -w, --write-out=\"simple\"\t<usage>" as etcdctl's help prints it. */
static void flag_line(struct ctl_buf *b, const struct ctl_flag_spec *f, const char *usage)
{
    if (f->shorthand)
        ctl_buf_printf(b, "  -%c, --%s", f->shorthand, f->name);
    else
        ctl_buf_printf(b, "      --%s", f->name);
    char *def = ctl_flag_default_text(f);
    if (f->type == CTL_FLAG_BOOL)
        ctl_buf_printf(b, "[=%s]", def ? def : "");
    else
        ctl_buf_printf(b, "=%s", def ? def : "");
    free(def);
    ctl_buf_printf(b, "\t%s\n", usage ? usage : f->usage);
}

static int spec_cmp(const void *a, const void *b)
{
    const struct ctl_flag_spec *x = *(const struct ctl_flag_spec *const *)a;
    const struct ctl_flag_spec *y = *(const struct ctl_flag_spec *const *)b;
    return strcmp(x->name, y->name);
}

/* The flag lines of specs (sorted by name), with the help flag's usage for cmd if help. */
static void flag_lines(struct ctl_buf *b, const struct ctl_flagset *fs, const char *help_usage)
{
    const struct ctl_flag_spec **v = calloc(fs->n ? fs->n : 1, sizeof *v);
    if (!v) {
        b->failed = true;
        return;
    }
    for (size_t i = 0; i < fs->n; i++)
        v[i] = fs->v[i].spec;
    qsort(v, fs->n, sizeof *v, spec_cmp);
    for (size_t i = 0; i < fs->n; i++)
        flag_line(b, v[i], strcmp(v[i]->name, "help") == 0 ? help_usage : NULL);
    free(v);
}

/* The command path from the root's child to cmd, or from start's child. */
static void cmd_name(struct ctl_buf *b, const struct ctl_cmd_path *p, size_t from)
{
    for (size_t d = from; d <= p->depth; d++)
        ctl_buf_printf(b, "%s%s", d > from ? " " : "", p->path[d]->name);
}

/* Every runnable command below p, depth first in name order, as "\t<relative path>\t<summary>". */
static void sub_commands(struct ctl_buf *b, struct ctl_cmd_path *p, size_t start)
{
    const struct ctl_command *cmd = p->path[p->depth];
    bool help_done = !(p->depth == 0 && start == 0);
    for (size_t i = 0; i < cmd->n_subs && p->depth + 1 < 8; i++) {
        if (!help_done && strcmp(cmd->subs[i]->name, "help") > 0) {
            /* the help command, in its place among the root's commands as cobra lists it */
            ctl_buf_puts(b, "\thelp\tHelp about any command\n");
            help_done = true;
        }
        p->path[++p->depth] = cmd->subs[i];
        if (cmd->subs[i]->run) {
            ctl_buf_putc(b, '\t');
            cmd_name(b, p, start + 1);
            ctl_buf_printf(b, "\t%s\n", cmd->subs[i]->summary);
        }
        sub_commands(b, p, start);
        p->depth--;
    }
    if (!help_done)
        ctl_buf_puts(b, "\thelp\tHelp about any command\n");
}

void ctl_help_print(const struct ctl_cmd_path *p)
{
    const struct ctl_command *cmd = p->path[p->depth];
    struct ctl_buf b = {0}, out = {0};
    ctl_buf_puts(&b, "NAME:\n\t");
    if (p->depth == 0)
        ctl_buf_puts(&b, cmd->name);
    else
        cmd_name(&b, p, 1);
    ctl_buf_printf(&b, " - %s\n\nUSAGE:\n\t", cmd->summary);
    for (size_t d = 0; d <= p->depth; d++)
        ctl_buf_printf(&b, "%s%s", d ? " " : "", p->path[d]->name);
    if (cmd->use && *cmd->use)
        ctl_buf_printf(&b, " %s", cmd->use);
    ctl_buf_puts(&b, " [flags]\n");
    if (p->depth == 0)
        ctl_buf_printf(&b, "\nVERSION:\n\t%s\n", CTL_VERSION);
    if (cmd->n_subs) {
        struct ctl_cmd_path q = *p;
        ctl_buf_printf(&b, "\nAPI VERSION:\n\t%s\n\n\nCOMMANDS:\n", CTL_API_VERSION);
        sub_commands(&b, &q, p->depth);
    }
    if (cmd->description) {
        ctl_buf_puts(&b, "\nDESCRIPTION:\n");
        const char *s = cmd->description;
        while (*s == '\n' || *s == ' ' || *s == '\t')
            s++;
        size_t len = strlen(s);
        while (len && (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t'))
            len--;
        while (len) {
            const char *nl = memchr(s, '\n', len);
            size_t n = nl ? (size_t)(nl - s) : len;
            ctl_buf_putc(&b, '\t');
            ctl_buf_put(&b, s, n);
            ctl_buf_putc(&b, '\n');
            s += n + (nl != NULL);
            len -= n + (nl != NULL);
        }
    }
    char help_usage[64];
    snprintf(help_usage, sizeof help_usage, "help for %s", cmd->name);
    /* local flags: the command's own, its persistent ones and help */
    struct ctl_flagset local = {0}, inherited = {0};
    if (ctl_flagset_add(&local, cmd->flags, cmd->n_flags) < 0 ||
        ctl_flagset_add(&local, cmd->pflags, cmd->n_pflags) < 0 ||
        ctl_flagset_add(&local, &help_flag, 1) < 0)
        b.failed = true;
    for (size_t d = p->depth; d-- > 0;) {
        if (ctl_flagset_add(&inherited, p->path[d]->pflags, p->path[d]->n_pflags) < 0)
            b.failed = true;
    }
    ctl_buf_puts(&b, "\nOPTIONS:\n");
    flag_lines(&b, &local, help_usage);
    if (inherited.n) {
        ctl_buf_puts(&b, "\nGLOBAL OPTIONS:\n");
        flag_lines(&b, &inherited, NULL);
    }
    ctl_buf_putc(&b, '\n');
    ctl_flagset_free(&local);
    ctl_flagset_free(&inherited);
    if (!b.failed)
        tabwrite(b.p, &out);
    fflush(stderr);
    if (b.failed || out.failed || ctl_buf_write_stdout(&out) < 0)
        fputs("cairnctl: cannot write the help text\n", stderr);
    ctl_buf_free(&b);
    ctl_buf_free(&out);
}
