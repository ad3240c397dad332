/* common/url.c — host:port of a URL. */
#include "common/url.h"

#include <string.h>

int url_host_port(const char *url, char *out, size_t n)
{
    const char *h = strncmp(url, "http://", 7) ? url : url + 7;
    size_t len = strcspn(h, "/");
    if (len == 0 || len >= n)
        return -1;
    memcpy(out, h, len);
    out[len] = 0;
    return 0;
}
