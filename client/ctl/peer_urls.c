/* client/ctl/peer_urls.c — the check etcd's client makes of peer URLs before it sends MemberAdd
 * or MemberUpdate (clientv3's "fail-fast", pkg/types.NewURLs): every URL, trimmed of white
 * space, must parse as Go's net/url.Parse (Go 1.19) parses it and have the scheme http, https,
 * unix or unixs, a host:port and no path. The messages are Go's and etcd's words. */
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"
#include "client/ctl/text.h"

/* unicode.IsSpace */
static bool is_space(uint32_t r)
{
    switch (r) {
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case ' ':
    case 0x85:
    case 0xa0:
    case 0x1680:
    case 0x2028:
    case 0x2029:
    case 0x202f:
    case 0x205f:
    case 0x3000:
        return true;
    }
    return r >= 0x2000 && r <= 0x200a;
}

/* strings.TrimSpace: the bytes [*b, *e) of s (len bytes) without leading and trailing white
 * space; a byte that is not UTF-8 is not space. */
static void trim_space(const char *s, size_t len, size_t *b, size_t *e)
{
    bool seen = false;
    *b = *e = 0;
    for (size_t i = 0; i < len;) {
        uint32_t r;
        size_t k = ctl_utf8_decode((const unsigned char *)s + i, len - i, &r);
        bool space = k && is_space(r);
        if (!k)
            k = 1;
        if (!space) {
            if (!seen)
                *b = i;
            seen = true;
            *e = i + k;
        }
        i += k;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* net/url.Parse */

/* The parts of the URL the check looks at. */
struct url {
    char scheme[16]; /* lower case, truncated (long schemes are wrong anyway) */
    const char *host;
    size_t host_len;
    bool has_path;
};

/* Which part is being unescaped: decides what counts as an error (net/url's encoding modes). */
enum part { PART_PATH, PART_FRAGMENT, PART_USERINFO, PART_HOST, PART_ZONE };

static bool ishex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static unsigned unhex(char c)
{
    if (c >= '0' && c <= '9')
        return (unsigned)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (unsigned)(c - 'a' + 10);
    return (unsigned)(c - 'A' + 10);
}

/* net/url's shouldEscape for the host and zone modes: what may not stand in a host name. */
static bool bad_in_host(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return false;
    return !strchr("!$&'()*+,;=:[]<>\"-_.~", c) || c == '\0';
}

/* `<what> "<text>"<after>` with the text quoted as strconv.Quote does; malloc'd or NULL. */
static char *quoted_error(const char *what, const char *text, size_t len, const char *after)
{
    struct ctl_buf b = {0};
    ctl_buf_printf(&b, "%s ", what);
    ctl_go_quote(&b, text, len);
    ctl_buf_puts(&b, after);
    return ctl_buf_take(&b);
}

/* net/url's unescape, for its errors only. Returns 0 or -1 with *err (malloc'd). */
static int unescape(const char *s, size_t len, enum part mode, char **err)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            if (i + 2 >= len || !ishex(s[i + 1]) || !ishex(s[i + 2])) {
                size_t n = len - i > 3 ? 3 : len - i;
                *err = quoted_error("invalid URL escape", s + i, n, "");
                return -1;
            }
            bool pct25 = s[i + 1] == '2' && s[i + 2] == '5';
            /* in a host, escapes are for bytes beyond ASCII only (and %25 in a zone) */
            if (mode == PART_HOST && unhex(s[i + 1]) < 8 && !pct25) {
                *err = quoted_error("invalid URL escape", s + i, 3, "");
                return -1;
            }
            if (mode == PART_ZONE) {
                unsigned char v = (unsigned char)(unhex(s[i + 1]) << 4 | unhex(s[i + 2]));
                if (!pct25 && v != ' ' && bad_in_host(v)) {
                    *err = quoted_error("invalid URL escape", s + i, 3, "");
                    return -1;
                }
            }
            i += 2;
        } else if ((mode == PART_HOST || mode == PART_ZONE) && (unsigned char)s[i] < 0x80 &&
                   bad_in_host((unsigned char)s[i])) {
            *err = quoted_error("invalid character", s + i, 1, " in host name");
            return -1;
        }
    }
    return 0;
}

/* ":<digits>" or nothing */
static bool valid_optional_port(const char *s, size_t len)
{
    if (len == 0)
        return true;
    if (s[0] != ':')
        return false;
    for (size_t i = 1; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
    }
    return true;
}

static const char *last_of(const char *s, size_t len, char c)
{
    for (size_t i = len; i-- > 0;) {
        if (s[i] == c)
            return s + i;
    }
    return NULL;
}

static const char *find(const char *s, size_t len, const char *what)
{
    size_t n = strlen(what);
    for (size_t i = 0; i + n <= len; i++) {
        if (memcmp(s + i, what, n) == 0)
            return s + i;
    }
    return NULL;
}

/* net/url's parseHost. */
static int parse_host(const char *h, size_t len, char **err)
{
    if (len && h[0] == '[') {
        const char *close = last_of(h, len, ']');
        if (!close) {
            *err = strdup("missing ']' in host");
            return -1;
        }
        size_t i = (size_t)(close - h);
        if (!valid_optional_port(h + i + 1, len - i - 1)) {
            *err = quoted_error("invalid port", h + i + 1, len - i - 1, " after host");
            return -1;
        }
        const char *zone = find(h, i, "%25");
        if (zone) {
            size_t z = (size_t)(zone - h);
            if (unescape(h, z, PART_HOST, err) < 0 || unescape(zone, i - z, PART_ZONE, err) < 0)
                return -1;
            return unescape(close, len - i, PART_HOST, err);
        }
    } else {
        const char *colon = last_of(h, len, ':');
        if (colon && !valid_optional_port(colon, len - (size_t)(colon - h))) {
            *err = quoted_error("invalid port", colon, len - (size_t)(colon - h), " after host");
            return -1;
        }
    }
    return unescape(h, len, PART_HOST, err);
}

/* net/url's validUserinfo: ASCII letters, digits and a few marks only. */
static bool valid_userinfo(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (c == '\0' || !strchr("-._:~!$&'()*+,;=%@", c))
            return false;
    }
    return true;
}

/* net/url's parseAuthority; the host goes into u. */
static int parse_authority(const char *a, size_t len, struct url *u, char **err)
{
    const char *at = last_of(a, len, '@');
    const char *host = at ? at + 1 : a;
    size_t host_len = len - (size_t)(host - a);
    if (parse_host(host, host_len, err) < 0)
        return -1;
    u->host = host;
    u->host_len = host_len;
    if (!at)
        return 0;
    size_t ui_len = (size_t)(at - a);
    if (!valid_userinfo(a, ui_len)) {
        *err = strdup("net/url: invalid userinfo");
        return -1;
    }
    const char *colon = memchr(a, ':', ui_len);
    if (!colon)
        return unescape(a, ui_len, PART_USERINFO, err);
    if (unescape(a, (size_t)(colon - a), PART_USERINFO, err) < 0)
        return -1;
    return unescape(colon + 1, ui_len - (size_t)(colon - a) - 1, PART_USERINFO, err);
}

/* net/url's getScheme: the scheme's length in *n (0: none). Returns -1 for "missing protocol
 * scheme" (a colon first). */
static int get_scheme(const char *s, size_t len, size_t *n)
{
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            continue;
        if ((c >= '0' && c <= '9') || c == '+' || c == '-' || c == '.') {
            if (i == 0)
                return 0;
            continue;
        }
        if (c == ':') {
            if (i == 0)
                return -1;
            *n = i;
        }
        return 0;
    }
    return 0;
}

/* net/url's parse of s (len bytes, the URL without its fragment). */
static int parse(const char *s, size_t len, struct url *u, char **err)
{
    *u = (struct url){.host = ""};
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < ' ' || s[i] == 0x7f) {
            *err = strdup("net/url: invalid control character in URL");
            return -1;
        }
    }
    size_t sn;
    if (get_scheme(s, len, &sn) < 0) {
        *err = strdup("missing protocol scheme");
        return -1;
    }
    for (size_t i = 0; i < sn && i + 1 < sizeof u->scheme; i++)
        u->scheme[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] - 'A' + 'a' : s[i]);
    const char *rest = sn ? s + sn + 1 : s;
    size_t rest_len = len - (size_t)(rest - s);
    const char *q = memchr(rest, '?', rest_len);
    if (q)
        rest_len = (size_t)(q - rest);
    if (rest_len == 0 || rest[0] != '/') {
        if (sn) /* an opaque URL ("http:x"): no host, no path */
            return 0;
        const char *slash = memchr(rest, '/', rest_len);
        if (memchr(rest, ':', slash ? (size_t)(slash - rest) : rest_len)) {
            *err = strdup("first path segment in URL cannot contain colon");
            return -1;
        }
    }
    bool triple = rest_len >= 3 && memcmp(rest, "///", 3) == 0;
    if ((sn || !triple) && rest_len >= 2 && memcmp(rest, "//", 2) == 0) {
        const char *auth = rest + 2;
        size_t auth_len = rest_len - 2;
        const char *slash = memchr(auth, '/', auth_len);
        if (slash)
            auth_len = (size_t)(slash - auth);
        if (parse_authority(auth, auth_len, u, err) < 0)
            return -1;
        rest_len -= 2 + auth_len;
        rest = auth + auth_len;
    }
    if (unescape(rest, rest_len, PART_PATH, err) < 0)
        return -1;
    u->has_path = rest_len > 0;
    return 0;
}

/* Whether net.SplitHostPort accepts h. */
static bool split_host_port_ok(const char *h, size_t len)
{
    const char *colon = last_of(h, len, ':');
    if (!colon)
        return false;
    size_t i = (size_t)(colon - h), j = 0, k = 0;
    if (h[0] == '[') {
        const char *close = memchr(h, ']', len);
        if (!close || (size_t)(close - h) + 1 != i)
            return false;
        j = 1;
        k = i;
    } else if (memchr(h, ':', i)) {
        return false;
    }
    return !memchr(h + j, '[', len - j) && !memchr(h + k, ']', len - k);
}

/* `parse "<url>": <why>`, as url.Error words it; takes why. Returns NULL when out of memory. */
static char *parse_error(const char *s, size_t len, char *why)
{
    char *out = why ? quoted_error("parse", s, len, ": ") : NULL, *full = NULL;
    if (out && asprintf(&full, "%s%s", out, why) < 0)
        full = NULL;
    free(out);
    free(why);
    return full;
}

/* types.NewURLs' check of one URL. */
static int check_one(const char *raw, char **err)
{
    size_t b, e;
    trim_space(raw, strlen(raw), &b, &e);
    char *in = strndup(raw + b, e - b);
    if (!in)
        return -1;
    size_t len = strlen(in); /* a NUL inside ends the text here, as it ends argv's */
    const char *hash = memchr(in, '#', len);
    size_t ulen = hash ? (size_t)(hash - in) : len;
    struct url u;
    char *why = NULL;
    int r = -1;
    if (parse(in, ulen, &u, &why) < 0) {
        *err = parse_error(in, ulen, why);
    } else if (hash && unescape(hash + 1, len - ulen - 1, PART_FRAGMENT, &why) < 0) {
        *err = parse_error(in, len, why);
    } else if (strcmp(u.scheme, "http") && strcmp(u.scheme, "https") && strcmp(u.scheme, "unix") &&
               strcmp(u.scheme, "unixs")) {
        *err = NULL;
        if (asprintf(err, "URL scheme must be http, https, unix, or unixs: %s", in) < 0)
            *err = NULL;
    } else if (!split_host_port_ok(u.host, u.host_len)) {
        if (asprintf(err, "URL address does not have the form \"host:port\": %s", in) < 0)
            *err = NULL;
    } else if (u.has_path) {
        if (asprintf(err, "URL must not contain a path: %s", in) < 0)
            *err = NULL;
    } else {
        r = 0;
    }
    free(in);
    return r;
}

int ctl_peer_urls_check(char *const *urls, size_t n, char **err)
{
    *err = NULL;
    if (n == 0) {
        *err = strdup("no valid URLs given");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (check_one(urls[i], err) < 0)
            return -1;
    }
    return 0;
}
