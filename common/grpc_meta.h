/* common/grpc_meta.h — gRPC's header-field codecs, shared by the server (api/) and the client
 * library (client/).
 *
 * grpc-timeout is "TimeoutValue TimeoutUnit": 1 to 8 ASCII digits and one of H M S m u n.
 * grpc-message is percent-encoded: bytes outside 0x20-0x7E, and '%' itself, travel as "%XX"
 * (gRPC's PROTOCOL-HTTP2.md). Pure functions: no I/O, no state. */
#ifndef CAIRN_COMMON_GRPC_META_H
#define CAIRN_COMMON_GRPC_META_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The gRPC status codes (grpc-go's codes package). */
enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16
};

/* The code's name as grpc-go prints it ("Unavailable", "DeadlineExceeded"), or "Code(N)" for a
 * code outside the table (written into a static buffer: not reentrant for those). */
const char *grpc_code_name(int code);

/* Whether a content-type value of len bytes is gRPC's: "application/grpc" (any case) alone or
 * followed by '+' or ';' (grpc-go's rule). */
bool grpc_content_type_ok(const char *v, size_t len);

/* Parses a grpc-timeout value. Returns 0 and the timeout in milliseconds, rounded up, or -1 when
 * s is malformed. */
int grpc_timeout_parse(const char *s, uint64_t *ms);

/* Writes a grpc-timeout value for ms milliseconds into out (at least 10 bytes): in the coarsest
 * unit that keeps 8 digits exact, else rounded up. Returns out. */
char *grpc_timeout_format(uint64_t ms, char out[10]);

/* Percent-encodes s for grpc-message. Returns a malloc'd string (the caller frees it) or NULL when
 * out of memory. */
char *grpc_message_encode(const char *s);

/* Decodes a grpc-message of len bytes (not necessarily NUL-terminated): "%XX" becomes the byte;
 * a '%' not followed by two hex digits is kept as it is, as gRPC's decoders do. Returns a malloc'd
 * NUL-terminated string (the caller frees it) or NULL when out of memory. */
char *grpc_message_decode(const char *s, size_t len);

#endif
