/* client/ctl/text.c — the text buffer and Go's renderings (see text.h). */
#include "client/ctl/text.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool grow(struct ctl_buf *b, size_t more)
{
    if (b->failed)
        return false;
    if (b->len + more + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void ctl_buf_put(struct ctl_buf *b, const void *data, size_t len)
{
    if (!grow(b, len))
        return;
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void ctl_buf_puts(struct ctl_buf *b, const char *s)
{
    ctl_buf_put(b, s, strlen(s));
}

void ctl_buf_putc(struct ctl_buf *b, char c)
{
    ctl_buf_put(b, &c, 1);
}

void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[128];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        ctl_buf_put(b, small, (size_t)n);
        return;
    }
    if (!grow(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void ctl_buf_free(struct ctl_buf *b)
{
    free(b->p);
    *b = (struct ctl_buf){0};
}

char *ctl_buf_take(struct ctl_buf *b)
{
    char *p = NULL;
    if (!b->failed) {
        p = b->p ? b->p : strdup("");
        b->p = NULL;
    }
    ctl_buf_free(b);
    return p;
}

int ctl_buf_write_stdout(const struct ctl_buf *b)
{
    if (b->failed)
        return -1;
    if (b->len && fwrite(b->p, 1, b->len, stdout) != b->len)
        return -1;
    return fflush(stdout) == 0 ? 0 : -1;
}

/* ---------------------------------------------------------------------------------------------- */
/* UTF-8 */

size_t ctl_utf8_decode(const unsigned char *s, size_t len, uint32_t *r)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *r = c;
        return 1;
    }
    size_t n;
    uint32_t min, v;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2, min = 0x80, v = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3, min = 0x800, v = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4, min = 0x10000, v = c & 0x07;
    } else {
        return 0;
    }
    if (len < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        v = v << 6 | (s[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
        return 0;
    *r = v;
    return n;
}

/* Whether Go's strconv.IsPrint holds for a non-ASCII rune — approximated by the ranges that
 * matter in practice: controls, format characters, separators, private use, non-characters. */
static bool go_is_print(uint32_t r)
{
    if (r < 0xa1)
        return false; /* C1 controls and U+00A0 (a space other than ASCII's) */
    if (r == 0xad || r == 0x61c || r == 0x180e || r == 0x1680 || r == 0x202f || r == 0x205f ||
        r == 0x3000 || r == 0xfeff)
        return false;
    if ((r >= 0x2000 && r <= 0x200f) || (r >= 0x2028 && r <= 0x202e) ||
        (r >= 0x2060 && r <= 0x206f) || (r >= 0xd800 && r <= 0xf8ff) ||
        (r >= 0xfff0 && r <= 0xfffb) || (r & 0xfffe) == 0xfffe || (r >= 0xe0000 && r <= 0xe007f) ||
        r >= 0xf0000)
        return false;
    return true;
}

static const char hexdig[] = "0123456789abcdef";

void ctl_go_quote(struct ctl_buf *b, const void *data, size_t len)
{
    const unsigned char *s = data;
    ctl_buf_putc(b, '"');
    for (size_t i = 0; i < len;) {
        uint32_t r;
        size_t n = ctl_utf8_decode(s + i, len - i, &r);
        if (n == 0) {
            ctl_buf_printf(b, "\\x%c%c", hexdig[s[i] >> 4], hexdig[s[i] & 15]);
            i++;
            continue;
        }
        if (r == '"' || r == '\\') {
            ctl_buf_putc(b, '\\');
            ctl_buf_putc(b, (char)r);
        } else if (r >= 0x20 && r < 0x7f) {
            ctl_buf_putc(b, (char)r);
        } else if (r >= 0x80 && go_is_print(r)) {
            ctl_buf_put(b, s + i, n);
        } else {
            switch (r) {
            case '\a':
                ctl_buf_puts(b, "\\a");
                break;
            case '\b':
                ctl_buf_puts(b, "\\b");
                break;
            case '\f':
                ctl_buf_puts(b, "\\f");
                break;
            case '\n':
                ctl_buf_puts(b, "\\n");
                break;
            case '\r':
                ctl_buf_puts(b, "\\r");
                break;
            case '\t':
                ctl_buf_puts(b, "\\t");
                break;
            case '\v':
                ctl_buf_puts(b, "\\v");
                break;
            default:
                if (r < 0x20 || r == 0x7f)
                    ctl_buf_printf(b, "\\x%02x", (unsigned)r);
                else if (r < 0x10000)
                    ctl_buf_printf(b, "\\u%04x", (unsigned)r);
                else
                    ctl_buf_printf(b, "\\U%08x", (unsigned)r);
            }
        }
        i += n;
    }
    ctl_buf_putc(b, '"');
}

void ctl_json_string(struct ctl_buf *b, const void *data, size_t len)
{
    const unsigned char *s = data;
    ctl_buf_putc(b, '"');
    for (size_t i = 0; i < len;) {
        uint32_t r;
        size_t n = ctl_utf8_decode(s + i, len - i, &r);
        if (n == 0) {
            ctl_buf_puts(b, "\\ufffd");
            i++;
            continue;
        }
        switch (r) {
        case '"':
            ctl_buf_puts(b, "\\\"");
            break;
        case '\\':
            ctl_buf_puts(b, "\\\\");
            break;
        case '\n':
            ctl_buf_puts(b, "\\n");
            break;
        case '\r':
            ctl_buf_puts(b, "\\r");
            break;
        case '\t':
            ctl_buf_puts(b, "\\t");
            break;
        case '<':
        case '>':
        case '&':
        case 0x2028:
        case 0x2029:
            ctl_buf_printf(b, "\\u%04x", (unsigned)r);
            break;
        default:
            if (r < 0x20)
                ctl_buf_printf(b, "\\u%04x", (unsigned)r);
            else
                ctl_buf_put(b, s + i, n);
        }
        i += n;
    }
    ctl_buf_putc(b, '"');
}

void ctl_base64(struct ctl_buf *b, const void *data, size_t len)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = data;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
        char out[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], tab[v & 63]};
        ctl_buf_put(b, out, 4);
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        char out[4] = {tab[v >> 18], tab[(v >> 12) & 63], '=', '='};
        ctl_buf_put(b, out, 4);
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8;
        char out[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63], '='};
        ctl_buf_put(b, out, 4);
    }
}

void ctl_hex_escaped(struct ctl_buf *b, const void *data, size_t len)
{
    const unsigned char *s = data;
    for (size_t i = 0; i < len; i++) {
        char out[4] = {'\\', 'x', hexdig[s[i] >> 4], hexdig[s[i] & 15]};
        ctl_buf_put(b, out, 4);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* time.Duration.String, written from the right as Go does */

static size_t fmt_frac(char *buf, size_t w, uint64_t *v, int prec)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = (unsigned)(*v % 10);
        print = print || digit != 0;
        if (print)
            buf[--w] = (char)('0' + digit);
        *v /= 10;
    }
    if (print)
        buf[--w] = '.';
    return w;
}

static size_t fmt_int(char *buf, size_t w, uint64_t v)
{
    if (v == 0)
        buf[--w] = '0';
    while (v > 0) {
        buf[--w] = (char)('0' + v % 10);
        v /= 10;
    }
    return w;
}

void ctl_go_duration(struct ctl_buf *b, int64_t ns)
{
    char buf[40];
    size_t w = sizeof buf;
    bool neg = ns < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)ns : (uint64_t)ns;
    if (u < 1000000000ull) {
        int prec = 0;
        buf[--w] = 's';
        if (u == 0) {
            ctl_buf_puts(b, "0s");
            return;
        } else if (u < 1000ull) {
            prec = 0;
            buf[--w] = 'n';
        } else if (u < 1000000ull) {
            prec = 3;
            buf[--w] = (char)0xb5; /* U+00B5 'µ' is 0xC2 0xB5 */
            buf[--w] = (char)0xc2;
        } else {
            prec = 6;
            buf[--w] = 'm';
        }
        w = fmt_frac(buf, w, &u, prec);
        w = fmt_int(buf, w, u);
    } else {
        buf[--w] = 's';
        w = fmt_frac(buf, w, &u, 9);
        w = fmt_int(buf, w, u % 60);
        u /= 60;
        if (u > 0) {
            buf[--w] = 'm';
            w = fmt_int(buf, w, u % 60);
            u /= 60;
            if (u > 0) {
                buf[--w] = 'h';
                w = fmt_int(buf, w, u);
            }
        }
    }
    if (neg)
        buf[--w] = '-';
    ctl_buf_put(b, buf + w, sizeof buf - w);
}

void ctl_humanize_bytes(struct ctl_buf *b, uint64_t n)
{
    static const char *const sizes[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
    if (n < 10) {
        ctl_buf_printf(b, "%llu B", (unsigned long long)n);
        return;
    }
    /* e = floor(log1000(n)), without libm */
    int e = 0;
    double div = 1;
    for (uint64_t m = n; m >= 1000; m /= 1000) {
        e++;
        div *= 1000;
    }
    double x = (double)n / div * 10 + 0.5;
    double val = (double)(uint64_t)x / 10; /* floor: x is positive */
    ctl_buf_printf(b, val < 10 ? "%.1f %s" : "%.0f %s", val, sizes[e]);
}

/* ---------------------------------------------------------------------------------------------- */
/* Display width (go-runewidth, approximated by its main tables) */

static int rune_width(uint32_t r)
{
    if (r == 0)
        return 0;
    if ((r >= 0x300 && r <= 0x36f) || (r >= 0x200b && r <= 0x200f) || (r >= 0xfe00 && r <= 0xfe0f))
        return 0;
    if ((r >= 0x1100 && r <= 0x115f) || (r >= 0x2e80 && r <= 0x303e) ||
        (r >= 0x3041 && r <= 0x33ff) || (r >= 0x3400 && r <= 0x4dbf) ||
        (r >= 0x4e00 && r <= 0x9fff) || (r >= 0xa000 && r <= 0xa4cf) ||
        (r >= 0xac00 && r <= 0xd7a3) || (r >= 0xf900 && r <= 0xfaff) ||
        (r >= 0xfe30 && r <= 0xfe4f) || (r >= 0xff00 && r <= 0xff60) ||
        (r >= 0xffe0 && r <= 0xffe6) || (r >= 0x1f300 && r <= 0x1f64f) ||
        (r >= 0x1f900 && r <= 0x1f9ff) || (r >= 0x20000 && r <= 0x3fffd))
        return 2;
    return 1;
}

size_t ctl_text_width(const char *s, size_t len)
{
    size_t w = 0;
    for (size_t i = 0; i < len;) {
        uint32_t r;
        size_t n = ctl_utf8_decode((const unsigned char *)s + i, len - i, &r);
        if (n == 0) {
            w++;
            i++;
            continue;
        }
        w += (size_t)rune_width(r);
        i += n;
    }
    return w;
}
