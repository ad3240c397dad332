/* client/ctl/range.c — byte strings of requests and clientv3's key-range options. */
#include <stdlib.h>
#include <string.h>

#include "client/ctl/ctl.h"

int ctl_bytes_set(struct ctl_bytes *b, const void *s, size_t len)
{
    ctl_bytes_free(b);
    b->data = malloc(len + 1);
    if (!b->data)
        return -1;
    if (len)
        memcpy(b->data, s, len);
    b->data[len] = '\0';
    b->len = len;
    return 0;
}

void ctl_bytes_free(struct ctl_bytes *b)
{
    free(b->data);
    b->data = NULL;
    b->len = 0;
}

int ctl_prefix_end(const uint8_t *key, size_t len, struct ctl_bytes *out)
{
    for (size_t i = len; i > 0; i--) {
        if (key[i - 1] < 0xff) {
            if (ctl_bytes_set(out, key, i) < 0)
                return -1;
            out->data[i - 1]++;
            return 0;
        }
    }
    /* no next prefix (all 0xff): from the key on */
    return ctl_bytes_set(out, "", 1);
}
