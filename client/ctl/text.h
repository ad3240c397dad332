/* client/ctl/text.h — a growable text buffer and the Go renderings etcdctl's output is made of:
 * strconv.Quote (%q), encoding/json strings, base64, time.Duration's String, go-humanize's
 * Bytes and the display width tablewriter measures cells with.
 *
 * Pure functions over a buffer; a buffer that ran out of memory stays failed (every later append
 * is a no-op) so callers check once, at the end. */
#ifndef CAIRN_CTL_TEXT_H
#define CAIRN_CTL_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ctl_buf {
    char *p;     /* malloc'd, NUL-terminated while not failed */
    size_t len;  /* bytes in p */
    size_t cap;  /* allocated bytes */
    bool failed; /* an allocation failed */
};

void ctl_buf_put(struct ctl_buf *b, const void *data, size_t len);
void ctl_buf_puts(struct ctl_buf *b, const char *s);
void ctl_buf_putc(struct ctl_buf *b, char c);
void ctl_buf_printf(struct ctl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ctl_buf_free(struct ctl_buf *b);

/* Takes the text out of b (malloc'd, NUL-terminated; NULL if b failed); b is empty after. */
char *ctl_buf_take(struct ctl_buf *b);

/* Writes b to stdout. Returns 0, or -1 (after freeing nothing) if b failed or the write did. */
int ctl_buf_write_stdout(const struct ctl_buf *b);

/* Go's strconv.Quote of the bytes: "..." with \a \b \f \n \r \t \v \\ \", \xNN for bytes that
 * are not UTF-8 and for ASCII controls, \uNNNN for runes Go does not print (approximated:
 * C1 controls, format characters, separators, private use and non-characters). */
void ctl_go_quote(struct ctl_buf *b, const void *data, size_t len);

/* Go's encoding/json string: "..." with \" \\ \n \r \t, \u00XX for other controls, \u003c \u003e
 * \u0026 for < > &, \u2028 \u2029, and U+FFFD for bytes that are not UTF-8. */
void ctl_json_string(struct ctl_buf *b, const void *data, size_t len);

/* Standard base64 with padding. */
void ctl_base64(struct ctl_buf *b, const void *data, size_t len);

/* etcdctl's --hex rendering of bytes: "\x" and two lowercase hex digits per byte. */
void ctl_hex_escaped(struct ctl_buf *b, const void *data, size_t len);

/* Go's time.Duration String: "0s", "853.49µs", "1.5s", "1h2m3s". */
void ctl_go_duration(struct ctl_buf *b, int64_t ns);

/* go-humanize's Bytes (SI units): "8 B", "20 kB", "2.1 MB". */
void ctl_humanize_bytes(struct ctl_buf *b, uint64_t n);

/* The display width of UTF-8 text (len bytes) as go-runewidth counts it: 1 per rune, 2 for East
 * Asian wide runes, 0 for combining marks; an invalid byte counts 1. */
size_t ctl_text_width(const char *s, size_t len);

/* Decodes one UTF-8 rune at s (len > 0 bytes). Returns its length (1 to 4) and *r, or 0 for an
 * invalid sequence (one byte to skip). */
size_t ctl_utf8_decode(const unsigned char *s, size_t len, uint32_t *r);

#endif
