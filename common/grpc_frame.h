/* common/grpc_frame.h — the 5-byte length-prefixed message framing of gRPC over HTTP/2.
 *
 * "Length-Prefixed-Message → Compressed-Flag Message-Length Message" (gRPC's PROTOCOL-HTTP2.md):
 * one byte 0 or 1, a 4-byte big-endian length, then that many bytes. Messages may span DATA
 * frames, several may share one, and a zero-length message is valid. The decoder is pure (no I/O)
 * and allocation-bounded: it never allocates on a declared length it has not checked against its
 * maximum, and grows its buffer only as bytes actually arrive. Shared by the server (api/) and the
 * client library (client/). */
#ifndef CAIRN_COMMON_GRPC_FRAME_H
#define CAIRN_COMMON_GRPC_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRPC_FRAME_HEADER_SIZE 5

/* Errors of grpc_frame_decode(); sticky: once returned, every later call returns it again. */
enum {
    GRPC_FRAME_E_TOO_LARGE = -1, /* declared length above the maximum (see .declared) */
    GRPC_FRAME_E_FLAG = -2,      /* compressed-flag byte neither 0 nor 1 */
    GRPC_FRAME_E_NOMEM = -3      /* out of memory */
};

/* A reassembler of messages from a byte stream. Fields are private except where noted. */
struct grpc_frame_decoder {
    size_t max;                          /* largest message accepted */
    uint8_t hdr[GRPC_FRAME_HEADER_SIZE]; /* prefix being received */
    size_t hdr_len;                      /* bytes of hdr received */
    uint32_t declared;                   /* public: length from the last complete prefix */
    uint8_t *buf;                        /* body of a message spanning inputs */
    size_t len;                          /* bytes of the body in buf */
    size_t cap;                          /* allocated size of buf */
    bool delivered;                      /* the last call returned a message: reset first */
    int err;                             /* sticky error, 0 if none */
};

/* A decoded message, borrowed from the decoder or from the input (see grpc_frame_decode). */
struct grpc_frame_msg {
    const uint8_t *data; /* never NULL, also when len is 0 */
    size_t len;          /* message length */
    bool compressed;     /* the compressed flag was 1 */
};

/* Writes the prefix of a message of len bytes into out. */
void grpc_frame_header_encode(uint8_t out[GRPC_FRAME_HEADER_SIZE], bool compressed, uint32_t len);

/* Writes prefix and message into out, which must hold GRPC_FRAME_HEADER_SIZE + len bytes (len
 * must fit in 32 bits). Returns the bytes written. */
size_t grpc_frame_encode(uint8_t *out, bool compressed, const uint8_t *msg, size_t len);

/* Prepares d for messages of at most max bytes. Allocates nothing. */
void grpc_frame_decoder_init(struct grpc_frame_decoder *d, size_t max);

/* Releases d's buffer. d may be initialized again afterwards. */
void grpc_frame_decoder_free(struct grpc_frame_decoder *d);

/* Consumes bytes of in (n bytes, in may be NULL when n is 0) until one message is complete or
 * the input is used up; *used tells how many bytes were consumed. Returns:
 *   1  a message is complete: *msg points into in or into d's buffer, valid until the next call
 *      on d (or its free) and, when into in, as long as in is;
 *   0  all n bytes were consumed and no message completed;
 *   <0 GRPC_FRAME_E_* (sticky; *used is the bytes consumed up to the error).
 * A buffer is allocated only for a message that spans inputs, grown as its bytes arrive and never
 * beyond its declared length, which is checked against max first. Call again with the rest of in
 * (in + *used) to get the next message. */
int grpc_frame_decode(struct grpc_frame_decoder *d, const uint8_t *in, size_t n, size_t *used,
                      struct grpc_frame_msg *msg);

/* True when part of a message (prefix or body) has been consumed but the message is not
 * complete: a stream ending now ends mid-message. */
bool grpc_frame_decoder_partial(const struct grpc_frame_decoder *d);

#endif
