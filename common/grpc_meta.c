/* common/grpc_meta.c — grpc-timeout, grpc-message and status names (see grpc_meta.h). */
#include "common/grpc_meta.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *grpc_code_name(int code)
{
    static const char *const names[] = {
        "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
        "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
        "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
        "DataLoss", "Unauthenticated"};
    static char other[24];
    if (code >= 0 && code < (int)(sizeof names / sizeof names[0]))
        return names[code];
    snprintf(other, sizeof other, "Code(%d)", code);
    return other;
}

bool grpc_content_type_ok(const char *v, size_t len)
{
    return len >= 16 && strncasecmp(v, "application/grpc", 16) == 0 &&
           (len == 16 || v[16] == '+' || v[16] == ';');
}

int grpc_timeout_parse(const char *s, uint64_t *ms)
{
    size_t n = strlen(s);
    if (n < 2 || n > 9)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    switch (s[n - 1]) {
    case 'H':
        *ms = v * 3600000;
        break;
    case 'M':
        *ms = v * 60000;
        break;
    case 'S':
        *ms = v * 1000;
        break;
    case 'm':
        *ms = v;
        break;
    case 'u':
        *ms = (v + 999) / 1000;
        break;
    case 'n':
        *ms = (v + 999999) / 1000000;
        break;
    default:
        return -1;
    }
    return 0;
}

char *grpc_timeout_format(uint64_t ms, char out[10])
{
    static const struct {
        uint64_t ms;
        char unit;
    } units[] = {{3600000, 'H'}, {60000, 'M'}, {1000, 'S'}, {1, 'm'}};
    const uint64_t max = 99999999;
    if (ms <= max) {
        /* the coarsest unit that divides ms exactly; milliseconds always do */
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            if (ms % units[i].ms == 0 && ms / units[i].ms <= max) {
                snprintf(out, 10, "%llum", (unsigned long long)(ms / units[i].ms));
                out[strlen(out) - 1] = units[i].unit;
                return out;
            }
        }
    }
    /* too long for 8 digits of milliseconds: round up to the first unit that fits */
    for (size_t i = sizeof units / sizeof units[0]; i-- > 0;) {
        uint64_t v = (ms + units[i].ms - 1) / units[i].ms;
        if (v <= max) {
            snprintf(out, 10, "%llu%c", (unsigned long long)v, units[i].unit);
            return out;
        }
    }
    snprintf(out, 10, "%lluH", (unsigned long long)max);
    return out;
}

static bool plain(unsigned char c)
{
    return c >= 0x20 && c <= 0x7e && c != '%';
}

char *grpc_message_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += plain(*p) ? 1 : 3;
    char *out = malloc(n + 1), *o = out;
    if (!out)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (plain(*p)) {
            *o++ = (char)*p;
        } else {
            *o++ = '%';
            *o++ = hex[*p >> 4];
            *o++ = hex[*p & 15];
        }
    }
    *o = '\0';
    return out;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

char *grpc_message_decode(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 &&
            (lo = hexval(s[i + 2])) >= 0) {
            *o++ = (char)(hi << 4 | lo);
            i += 2;
        } else {
            *o++ = s[i];
        }
    }
    *o = '\0';
    return out;
}
