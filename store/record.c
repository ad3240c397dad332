/* store/record.c — encoding and bounds-checked decoding of the store's records. */
#include "store/record.h"

#include <string.h>

void be64_put(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t be64_get(const void *vp)
{
    const uint8_t *p = vp;
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

void rev_encode(uint8_t out[REV_KEY_SIZE], int64_t main, int64_t sub)
{
    be64_put(out, (uint64_t)main);
    be64_put(out + 8, (uint64_t)sub);
}

int rev_decode(const void *p, size_t n, int64_t *main, int64_t *sub)
{
    if (n != REV_KEY_SIZE)
        return CAIRN_E_CORRUPT;
    *main = (int64_t)be64_get(p);
    *sub = (int64_t)be64_get((const uint8_t *)p + 8);
    return 0;
}

void le64_put(uint8_t *p, int64_t sv)
{
    uint64_t v = (uint64_t)sv;
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)v;
}

int64_t le64_get(const void *vp)
{
    const uint8_t *p = vp;
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return (int64_t)v;
}

void lease_id_encode(uint8_t out[8], int64_t id)
{
    be64_put(out, (uint64_t)id);
}
int64_t lease_id_decode(const void *p)
{
    return (int64_t)be64_get(p);
}

/* LEB128 varints of the two's-complement value: negative numbers take 10 bytes, as in protobuf. */
static size_t varint_size(int64_t sv)
{
    uint64_t v = (uint64_t)sv;
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *varint_put(uint8_t *p, int64_t sv)
{
    uint64_t v = (uint64_t)sv;
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a varint from [*p, end); CAIRN_E_CORRUPT when truncated or longer than 10 bytes. */
static int varint_get(const uint8_t **p, const uint8_t *end, int64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (*p >= end)
            return CAIRN_E_CORRUPT;
        uint8_t b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = (int64_t)v;
            return 0;
        }
    }
    return CAIRN_E_CORRUPT;
}

size_t hist_rec_size(const struct hist_rec *r)
{
    return 1 + varint_size(r->create) + varint_size(r->version) + varint_size(r->lease) +
           varint_size(r->prev_main) + varint_size(r->prev_sub) + varint_size((int64_t)r->key.len) +
           r->key.len + r->value.len;
}

void hist_rec_encode(const struct hist_rec *r, uint8_t *p)
{
    *p++ = r->flags;
    p = varint_put(p, r->create);
    p = varint_put(p, r->version);
    p = varint_put(p, r->lease);
    p = varint_put(p, r->prev_main);
    p = varint_put(p, r->prev_sub);
    p = varint_put(p, (int64_t)r->key.len);
    if (r->key.len)
        memcpy(p, r->key.data, r->key.len);
    p += r->key.len;
    if (r->value.len)
        memcpy(p, r->value.data, r->value.len);
}

int hist_rec_decode(const void *data, size_t n, struct hist_rec *r)
{
    const uint8_t *p = data, *end = p + n;
    int64_t klen;
    if (n < 1)
        return CAIRN_E_CORRUPT;
    r->flags = *p++;
    if (r->flags & ~REC_TOMBSTONE)
        return CAIRN_E_CORRUPT;
    if (varint_get(&p, end, &r->create) || varint_get(&p, end, &r->version) ||
        varint_get(&p, end, &r->lease) || varint_get(&p, end, &r->prev_main) ||
        varint_get(&p, end, &r->prev_sub) || varint_get(&p, end, &klen))
        return CAIRN_E_CORRUPT;
    if (klen <= 0 || klen > end - p)
        return CAIRN_E_CORRUPT;
    r->key.data = p;
    r->key.len = (size_t)klen;
    p += klen;
    r->value.data = p;
    r->value.len = (size_t)(end - p);
    return 0;
}

size_t latest_rec_size(const struct latest_rec *r)
{
    return 1 + varint_size(r->mod_main) + varint_size(r->mod_sub) + varint_size(r->create) +
           varint_size(r->version) + varint_size(r->lease);
}

void latest_rec_encode(const struct latest_rec *r, uint8_t *p)
{
    *p++ = r->flags;
    p = varint_put(p, r->mod_main);
    p = varint_put(p, r->mod_sub);
    p = varint_put(p, r->create);
    p = varint_put(p, r->version);
    varint_put(p, r->lease);
}

int latest_rec_decode(const void *data, size_t n, struct latest_rec *r)
{
    const uint8_t *p = data, *end = p + n;
    if (n < 1)
        return CAIRN_E_CORRUPT;
    r->flags = *p++;
    if (r->flags & ~REC_TOMBSTONE)
        return CAIRN_E_CORRUPT;
    if (varint_get(&p, end, &r->mod_main) || varint_get(&p, end, &r->mod_sub) ||
        varint_get(&p, end, &r->create) || varint_get(&p, end, &r->version) ||
        varint_get(&p, end, &r->lease))
        return CAIRN_E_CORRUPT;
    if (r->mod_main <= 1)
        return CAIRN_E_CORRUPT; /* revision 1 is the empty store: no change carries it */
    return p == end ? 0 : CAIRN_E_CORRUPT;
}
