/* common/duration.c — Go's time.ParseDuration. */
#include "common/duration.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

int go_parse_duration(const char *s, uint64_t *ns)
{
    static const struct {
        const char *unit;
        uint64_t ns;
    } units[] = {
        {"ns", 1},       {"us", 1000},         {"\xc2\xb5s", 1000},   {"\xce\xbcs", 1000},
        {"ms", 1000000}, {"s", 1000000000ULL}, {"m", 60000000000ULL}, {"h", 3600000000000ULL}};
    const char *p = s;
    if (*p == '+')
        p++;
    if (!strcmp(p, "0")) {
        *ns = 0;
        return 0;
    }
    if (!*p)
        return -1;
    long double total = 0;
    while (*p) {
        if (!isdigit((unsigned char)*p) && *p != '.')
            return -1;
        const char *num = p;
        while (isdigit((unsigned char)*p))
            p++;
        bool digits = p > num;
        long double v = strtold(num, NULL);
        if (*p == '.') {
            p++;
            const char *frac = p;
            while (isdigit((unsigned char)*p))
                p++;
            digits = digits || p > frac;
        }
        if (!digits)
            return -1;
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t l = strlen(units[i].unit);
            if (!strncmp(p, units[i].unit, l) && l > best_len) {
                best = i;
                best_len = l;
            }
        }
        if (!best_len)
            return -1; /* Go: missing unit */
        /* "m" must not swallow the "m" of "ms": the longest match above already prefers "ms". */
        total += v * (long double)units[best].ns;
        p += best_len;
        if (total > (long double)INT64_MAX)
            return -1;
    }
    *ns = (uint64_t)total;
    return 0;
}
