/* common/grpc_frame.c — gRPC's length-prefixed message framing (see grpc_frame.h). */
#include "common/grpc_frame.h"

#include <stdlib.h>
#include <string.h>

/* A delivered message's buffer above this size is released rather than kept for the next one, so
 * a stream that once carried a large message does not hold its memory while idle. */
#define KEEP_BUFFER_MAX (64 * 1024)

void grpc_frame_header_encode(uint8_t out[GRPC_FRAME_HEADER_SIZE], bool compressed, uint32_t len)
{
    out[0] = compressed ? 1 : 0;
    out[1] = (uint8_t)(len >> 24);
    out[2] = (uint8_t)(len >> 16);
    out[3] = (uint8_t)(len >> 8);
    out[4] = (uint8_t)len;
}

size_t grpc_frame_encode(uint8_t *out, bool compressed, const uint8_t *msg, size_t len)
{
    grpc_frame_header_encode(out, compressed, (uint32_t)len);
    if (len)
        memcpy(out + GRPC_FRAME_HEADER_SIZE, msg, len);
    return GRPC_FRAME_HEADER_SIZE + len;
}

void grpc_frame_decoder_init(struct grpc_frame_decoder *d, size_t max)
{
    memset(d, 0, sizeof *d);
    d->max = max;
}

void grpc_frame_decoder_free(struct grpc_frame_decoder *d)
{
    free(d->buf);
    d->buf = NULL;
    d->len = d->cap = 0;
}

bool grpc_frame_decoder_partial(const struct grpc_frame_decoder *d)
{
    return !d->delivered && d->hdr_len > 0;
}

/* Makes room for want more body bytes: doubles, but never beyond the declared length (already
 * checked against max), so memory follows the bytes that actually arrived. */
static int reserve(struct grpc_frame_decoder *d, size_t want)
{
    size_t need = d->len + want;
    if (need <= d->cap)
        return 0;
    size_t cap = d->cap ? d->cap * 2 : 256;
    if (cap < need)
        cap = need;
    if (cap > d->declared)
        cap = d->declared;
    uint8_t *p = realloc(d->buf, cap);
    if (!p)
        return GRPC_FRAME_E_NOMEM;
    d->buf = p;
    d->cap = cap;
    return 0;
}

int grpc_frame_decode(struct grpc_frame_decoder *d, const uint8_t *in, size_t n, size_t *used,
                      struct grpc_frame_msg *msg)
{
    static const uint8_t empty[1];
    size_t pos = 0;
    *used = 0;
    if (d->err)
        return d->err;
    if (d->delivered) {
        d->delivered = false;
        d->hdr_len = 0;
        d->len = 0;
        if (d->cap > KEEP_BUFFER_MAX) {
            free(d->buf);
            d->buf = NULL;
            d->cap = 0;
        }
    }
    while (d->hdr_len < GRPC_FRAME_HEADER_SIZE) {
        if (pos == n)
            return 0;
        d->hdr[d->hdr_len++] = in[pos++];
        *used = pos;
        if (d->hdr_len == GRPC_FRAME_HEADER_SIZE) {
            d->declared = (uint32_t)d->hdr[1] << 24 | (uint32_t)d->hdr[2] << 16 |
                          (uint32_t)d->hdr[3] << 8 | d->hdr[4];
            if (d->hdr[0] > 1)
                return d->err = GRPC_FRAME_E_FLAG;
            if (d->declared > d->max)
                return d->err = GRPC_FRAME_E_TOO_LARGE;
        }
    }
    msg->compressed = d->hdr[0] == 1;
    size_t missing = d->declared - d->len;
    size_t avail = n - pos;
    if (d->len == 0 && avail >= missing) {
        /* the whole body is in this input: lend it without copying */
        msg->data = missing ? in + pos : empty;
        msg->len = missing;
        *used = pos + missing;
        d->delivered = true;
        return 1;
    }
    size_t take = avail < missing ? avail : missing;
    int rv = reserve(d, take);
    if (rv)
        return d->err = rv;
    if (take)
        memcpy(d->buf + d->len, in + pos, take);
    d->len += take;
    *used = pos + take;
    if (d->len < d->declared)
        return 0;
    msg->data = d->buf;
    msg->len = d->len;
    d->delivered = true;
    return 1;
}
