/* client/ctl/flags.c — pflag's command-line syntax and Go's value parsers (see flags.h). */
#include "client/ctl/flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/ctl/text.h"

/* ---------------------------------------------------------------------------------------------- */
/* Go's value syntaxes */

/* `strconv.<fn>: parsing "<s>": <what>` */
static char *num_error(const char *fn, const char *s, const char *what)
{
    struct ctl_buf b = {0};
    ctl_buf_printf(&b, "strconv.%s: parsing ", fn);
    ctl_go_quote(&b, s, strlen(s));
    ctl_buf_printf(&b, ": %s", what);
    return ctl_buf_take(&b);
}

static char lower(char c)
{
    return (char)(c | ('x' - 'X'));
}

/* strconv's underscoreOK: underscores only between digits (or after a base prefix). */
static bool underscore_ok(const char *s)
{
    char saw = '^';
    size_t i = 0, n;
    if (*s == '-' || *s == '+')
        s++;
    n = strlen(s);
    bool hex = false;
    if (n >= 2 && s[0] == '0' && (lower(s[1]) == 'b' || lower(s[1]) == 'o' || lower(s[1]) == 'x')) {
        i = 2;
        saw = '0';
        hex = lower(s[1]) == 'x';
    }
    for (; i < n; i++) {
        if ((s[i] >= '0' && s[i] <= '9') || (hex && lower(s[i]) >= 'a' && lower(s[i]) <= 'f')) {
            saw = '0';
            continue;
        }
        if (s[i] == '_') {
            if (saw != '0')
                return false;
            saw = '_';
            continue;
        }
        if (saw == '_')
            return false;
        saw = '!';
    }
    return saw != '_';
}

/* strconv.ParseUint's body; fn and s0 name the error. 1: range error (out = max). */
static int parse_uint(const char *s, int base, uint64_t *out, const char *fn, const char *s0,
                      char **err)
{
    if (*s == '\0') {
        *err = num_error(fn, s0, "invalid syntax");
        return -1;
    }
    bool base0 = base == 0;
    const char *p = s;
    if (base == 0) {
        base = 10;
        if (p[0] == '0') {
            size_t n = strlen(p);
            if (n >= 3 && lower(p[1]) == 'b')
                base = 2, p += 2;
            else if (n >= 3 && lower(p[1]) == 'o')
                base = 8, p += 2;
            else if (n >= 3 && lower(p[1]) == 'x')
                base = 16, p += 2;
            else
                base = 8, p += 1;
        }
    } else if (base < 2 || base > 36) {
        *err = num_error(fn, s0, "invalid base");
        return -1;
    }
    uint64_t cutoff = UINT64_MAX / (uint64_t)base + 1, n = 0;
    bool underscores = false;
    for (; *p; p++) {
        unsigned d;
        char c = *p;
        if (c == '_' && base0) {
            underscores = true;
            continue;
        } else if (c >= '0' && c <= '9') {
            d = (unsigned)(c - '0');
        } else if (lower(c) >= 'a' && lower(c) <= 'z') {
            d = (unsigned)(lower(c) - 'a' + 10);
        } else {
            *err = num_error(fn, s0, "invalid syntax");
            return -1;
        }
        if (d >= (unsigned)base) {
            *err = num_error(fn, s0, "invalid syntax");
            return -1;
        }
        if (n >= cutoff) {
            *out = UINT64_MAX;
            return 1;
        }
        n *= (uint64_t)base;
        uint64_t n1 = n + d;
        if (n1 < n) {
            *out = UINT64_MAX;
            return 1;
        }
        n = n1;
    }
    if (underscores && !underscore_ok(s0)) {
        *err = num_error(fn, s0, "invalid syntax");
        return -1;
    }
    *out = n;
    return 0;
}

int ctl_parse_uint64(const char *s, int base, uint64_t *out, char **err)
{
    int r = parse_uint(s, base, out, "ParseUint", s, err);
    if (r == 1) {
        *err = num_error("ParseUint", s, "value out of range");
        return -1;
    }
    return r;
}

int ctl_parse_int64(const char *s, int base, int64_t *out, char **err)
{
    if (*s == '\0') {
        *err = num_error("ParseInt", s, "invalid syntax");
        return -1;
    }
    const char *p = s;
    bool neg = false;
    if (*p == '+')
        p++;
    else if (*p == '-')
        neg = true, p++;
    uint64_t un;
    int r = parse_uint(p, base, &un, "ParseInt", s, err);
    if (r < 0)
        return -1;
    uint64_t cutoff = (uint64_t)1 << 63;
    if (r == 1 || (!neg && un >= cutoff) || (neg && un > cutoff)) {
        *err = num_error("ParseInt", s, "value out of range");
        return -1;
    }
    *out = neg ? (int64_t)((uint64_t)0 - un) : (int64_t)un;
    return 0;
}

int ctl_parse_bool(const char *s, bool *out, char **err)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < 6; i++) {
        if (strcmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    *err = num_error("ParseBool", s, "invalid syntax");
    return -1;
}

/* The time package's own quoting: bytes outside printable ASCII as \xNN. */
static void time_quote(struct ctl_buf *b, const char *s, size_t len)
{
    ctl_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x80 || c < ' ') {
            ctl_buf_printf(b, "\\x%02x", c);
        } else {
            if (c == '"' || c == '\\')
                ctl_buf_putc(b, '\\');
            ctl_buf_putc(b, (char)c);
        }
    }
    ctl_buf_putc(b, '"');
}

static char *dur_error(const char *what, const char *orig)
{
    struct ctl_buf b = {0};
    ctl_buf_printf(&b, "time: %s ", what);
    time_quote(&b, orig, strlen(orig));
    return ctl_buf_take(&b);
}

int ctl_parse_duration(const char *orig, int64_t *ns, char **err)
{
    static const struct {
        const char *name;
        uint64_t ns;
    } units[] = {
        {"ns", 1},           {"us", 1000},         {"\xc2\xb5s", 1000}, /* U+00B5 */
        {"\xce\xbcs", 1000},                                            /* U+03BC */
        {"ms", 1000000},     {"s", 1000000000ull}, {"m", 60000000000ull}, {"h", 3600000000000ull}};
    const char *s = orig;
    uint64_t d = 0;
    bool neg = false;
    if (*s == '-' || *s == '+') {
        neg = *s == '-';
        s++;
    }
    if (strcmp(s, "0") == 0) {
        *ns = 0;
        return 0;
    }
    if (*s == '\0')
        goto invalid;
    while (*s) {
        uint64_t v = 0, f = 0;
        double scale = 1;
        if (!(*s == '.' || (*s >= '0' && *s <= '9')))
            goto invalid;
        const char *start = s;
        for (; *s >= '0' && *s <= '9'; s++) {
            if (v > (UINT64_C(1) << 63) / 10)
                goto invalid;
            v = v * 10 + (uint64_t)(*s - '0');
            if (v > (UINT64_C(1) << 63))
                goto invalid;
        }
        bool pre = s != start, post = false;
        if (*s == '.') {
            s++;
            const char *fs = s;
            bool overflow = false;
            for (; *s >= '0' && *s <= '9'; s++) {
                if (overflow)
                    continue;
                if (f > (UINT64_C(1) << 63) / 10) {
                    overflow = true;
                    continue;
                }
                uint64_t y = f * 10 + (uint64_t)(*s - '0');
                if (y > (UINT64_C(1) << 63)) {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10;
            }
            post = s != fs;
        }
        if (!pre && !post)
            goto invalid;
        size_t i = 0;
        while (s[i] && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9'))
            i++;
        if (i == 0) {
            *err = dur_error("missing unit in duration", orig);
            return -1;
        }
        uint64_t unit = 0;
        for (size_t k = 0; k < sizeof units / sizeof units[0]; k++) {
            if (strlen(units[k].name) == i && memcmp(units[k].name, s, i) == 0)
                unit = units[k].ns;
        }
        if (!unit) {
            struct ctl_buf b = {0};
            ctl_buf_puts(&b, "time: unknown unit ");
            time_quote(&b, s, i);
            ctl_buf_puts(&b, " in duration ");
            time_quote(&b, orig, strlen(orig));
            *err = ctl_buf_take(&b);
            return -1;
        }
        s += i;
        if (v > (UINT64_C(1) << 63) / unit)
            goto invalid;
        v *= unit;
        if (f > 0) {
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > (UINT64_C(1) << 63))
                goto invalid;
        }
        d += v;
        if (d > (UINT64_C(1) << 63))
            goto invalid;
    }
    if (neg) {
        *ns = (int64_t)((uint64_t)0 - d);
        return 0;
    }
    if (d > (uint64_t)INT64_MAX)
        goto invalid;
    *ns = (int64_t)d;
    return 0;
invalid:
    *err = dur_error("invalid duration", orig);
    return -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Flag sets */

static void flag_clear(struct ctl_flag *f)
{
    free(f->s);
    f->s = NULL;
    for (size_t i = 0; i < f->n_list; i++)
        free(f->list[i]);
    free(f->list);
    f->list = NULL;
    f->n_list = 0;
}

/* Appends the comma-separated items of value to f's list. */
static int list_append(struct ctl_flag *f, const char *value)
{
    if (*value == '\0')
        return 0;
    const char *p = value;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char **l = realloc(f->list, (f->n_list + 1) * sizeof *l);
        if (!l)
            return -1;
        f->list = l;
        if (!(f->list[f->n_list] = strndup(p, len)))
            return -1;
        f->n_list++;
        if (!comma)
            return 0;
        p = comma + 1;
    }
}

/* Sets f's value from text without marking it changed. */
static int flag_assign(struct ctl_flag *f, const char *value, char **err)
{
    *err = NULL;
    switch (f->spec->type) {
    case CTL_FLAG_BOOL:
        return ctl_parse_bool(value, &f->b, err);
    case CTL_FLAG_INT64:
        return ctl_parse_int64(value, 0, &f->i, err);
    case CTL_FLAG_DURATION:
        return ctl_parse_duration(value, &f->i, err);
    case CTL_FLAG_STRING: {
        char *s = strdup(value);
        if (!s)
            return -1;
        free(f->s);
        f->s = s;
        return 0;
    }
    case CTL_FLAG_STRINGS:
        /* pflag's StringSlice: the first use replaces the default, later ones append */
        if (!f->changed)
            flag_clear(f);
        return list_append(f, value);
    }
    return -1;
}

int ctl_flagset_add(struct ctl_flagset *fs, const struct ctl_flag_spec *specs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ctl_flag_find(fs, specs[i].name))
            continue;
        struct ctl_flag *v = realloc(fs->v, (fs->n + 1) * sizeof *v);
        if (!v)
            return -1;
        fs->v = v;
        struct ctl_flag *f = &fs->v[fs->n++];
        *f = (struct ctl_flag){.spec = &specs[i]};
        char *err = NULL;
        if (flag_assign(f, specs[i].def, &err) < 0) {
            free(err);
            return -1;
        }
    }
    return 0;
}

void ctl_flagset_free(struct ctl_flagset *fs)
{
    for (size_t i = 0; i < fs->n; i++)
        flag_clear(&fs->v[i]);
    free(fs->v);
    fs->v = NULL;
    fs->n = 0;
}

struct ctl_flag *ctl_flag_find(const struct ctl_flagset *fs, const char *name)
{
    for (size_t i = 0; i < fs->n; i++) {
        if (strcmp(fs->v[i].spec->name, name) == 0)
            return &fs->v[i];
    }
    return NULL;
}

struct ctl_flag *ctl_flag_find_short(const struct ctl_flagset *fs, char c)
{
    for (size_t i = 0; i < fs->n; i++) {
        if (c && fs->v[i].spec->shorthand == c)
            return &fs->v[i];
    }
    return NULL;
}

int ctl_flag_set(struct ctl_flag *f, const char *value, char **err)
{
    if (flag_assign(f, value, err) < 0) {
        if (!*err)
            *err = strdup("out of memory");
        return -1;
    }
    f->changed = true;
    return 0;
}

/* `invalid argument "<value>" for "<flag>" flag: <why>` */
static char *invalid_argument(const struct ctl_flag *f, const char *value, const char *why)
{
    struct ctl_buf b = {0}, name = {0};
    if (f->spec->shorthand)
        ctl_buf_printf(&name, "-%c, --%s", f->spec->shorthand, f->spec->name);
    else
        ctl_buf_printf(&name, "--%s", f->spec->name);
    ctl_buf_puts(&b, "invalid argument ");
    ctl_go_quote(&b, value, strlen(value));
    ctl_buf_puts(&b, " for ");
    ctl_go_quote(&b, name.p ? name.p : "", name.len);
    ctl_buf_printf(&b, " flag: %s", why);
    ctl_buf_free(&name);
    return ctl_buf_take(&b);
}

static char *errorf(const char *fmt, const char *a, const char *b)
{
    char *out = NULL;
    if (asprintf(&out, fmt, a, b) < 0)
        return NULL;
    return out;
}

static int set_or_fail(struct ctl_flag *f, const char *value, char **err)
{
    char *why = NULL;
    if (ctl_flag_set(f, value, &why) == 0)
        return 0;
    *err = invalid_argument(f, value, why ? why : "out of memory");
    free(why);
    return -1;
}

static int push_pos(char ***pos, size_t *npos, char *arg)
{
    char **p = realloc(*pos, (*npos + 1) * sizeof *p);
    if (!p)
        return -1;
    *pos = p;
    p[(*npos)++] = arg;
    return 0;
}

int ctl_flagset_parse(struct ctl_flagset *fs, char **argv, size_t argc, char ***pos, size_t *npos,
                      char **err)
{
    *pos = NULL;
    *npos = 0;
    *err = NULL;
    for (size_t i = 0; i < argc; i++) {
        char *s = argv[i];
        if (s[0] != '-' || s[1] == '\0') {
            if (push_pos(pos, npos, s) < 0)
                goto nomem;
            continue;
        }
        if (s[1] == '-') {
            if (s[2] == '\0') { /* "--" ends the flags */
                for (i++; i < argc; i++) {
                    if (push_pos(pos, npos, argv[i]) < 0)
                        goto nomem;
                }
                break;
            }
            const char *name = s + 2;
            if (name[0] == '-' || name[0] == '=') {
                *err = errorf("bad flag syntax: %s%s", s, "");
                goto fail;
            }
            const char *eq = strchr(name, '=');
            char *fname = eq ? strndup(name, (size_t)(eq - name)) : strdup(name);
            if (!fname)
                goto nomem;
            struct ctl_flag *f = ctl_flag_find(fs, fname);
            if (!f) {
                *err = errorf("unknown flag: --%s%s", fname, "");
                free(fname);
                goto fail;
            }
            free(fname);
            const char *value;
            if (eq)
                value = eq + 1;
            else if (f->spec->type == CTL_FLAG_BOOL)
                value = "true";
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                *err = errorf("flag needs an argument: %s%s", s, "");
                goto fail;
            }
            if (set_or_fail(f, value, err) < 0)
                goto fail;
            continue;
        }
        /* one-letter flags: "-abc", "-wjson", "-w=json", "-w json" */
        const char *shorts = s + 1;
        while (*shorts) {
            char c = *shorts;
            struct ctl_flag *f = ctl_flag_find_short(fs, c);
            if (!f) {
                char q[8];
                snprintf(q, sizeof q, "'%c'", c);
                *err = errorf("unknown shorthand flag: %s in -%s", q, shorts);
                goto fail;
            }
            const char *value;
            const char *rest = shorts + 1;
            if (shorts[1] == '=' && shorts[2] != '\0') {
                value = shorts + 2;
                rest = "";
            } else if (f->spec->type == CTL_FLAG_BOOL) {
                value = "true";
            } else if (shorts[1] != '\0') {
                value = shorts + 1;
                rest = "";
            } else if (i + 1 < argc) {
                value = argv[++i];
            } else {
                char q[8];
                snprintf(q, sizeof q, "'%c'", c);
                *err = errorf("flag needs an argument: %s in -%s", q, shorts);
                goto fail;
            }
            if (set_or_fail(f, value, err) < 0)
                goto fail;
            shorts = rest;
        }
    }
    return 0;
nomem:
    *err = strdup("out of memory");
fail:
    free(*pos);
    *pos = NULL;
    *npos = 0;
    if (!*err)
        *err = strdup("out of memory");
    return -1;
}

static const struct ctl_flag *must_find(const struct ctl_flagset *fs, const char *name)
{
    const struct ctl_flag *f = ctl_flag_find(fs, name);
    if (!f) {
        fprintf(stderr, "cairnctl: internal error: no flag --%s\n", name);
        abort();
    }
    return f;
}

bool ctl_flag_bool(const struct ctl_flagset *fs, const char *name)
{
    return must_find(fs, name)->b;
}

const char *ctl_flag_str(const struct ctl_flagset *fs, const char *name)
{
    const struct ctl_flag *f = must_find(fs, name);
    return f->s ? f->s : "";
}

int64_t ctl_flag_int(const struct ctl_flagset *fs, const char *name)
{
    return must_find(fs, name)->i;
}

bool ctl_flag_changed(const struct ctl_flagset *fs, const char *name)
{
    return must_find(fs, name)->changed;
}

char *ctl_flag_default_text(const struct ctl_flag_spec *spec)
{
    struct ctl_buf b = {0};
    switch (spec->type) {
    case CTL_FLAG_STRING:
        ctl_go_quote(&b, spec->def, strlen(spec->def));
        break;
    case CTL_FLAG_STRINGS:
        ctl_buf_printf(&b, "[%s]", spec->def);
        break;
    case CTL_FLAG_DURATION: {
        int64_t ns = 0;
        char *err = NULL;
        if (ctl_parse_duration(spec->def, &ns, &err) < 0)
            free(err);
        ctl_go_duration(&b, ns);
        break;
    }
    default:
        ctl_buf_puts(&b, spec->def);
    }
    return ctl_buf_take(&b);
}
