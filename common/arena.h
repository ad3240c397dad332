/* common/arena.h — a bump allocator for per-request results.
 *
 * A request's results (key-value arrays, copied bytes) are allocated from an arena the caller owns
 * and are freed all at once by arena_reset() or arena_free(). Reusing one arena across requests
 * means the hot path does not call malloc once the arena has grown to the working size. Not
 * thread-safe. */
#ifndef CAIRN_COMMON_ARENA_H
#define CAIRN_COMMON_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
    struct arena_chunk *head; /* chunk being filled; older chunks follow */
    size_t chunk_size;        /* size of the next chunk to allocate */
};

/* An arena that allocates nothing until first use. */
#define ARENA_INIT \
    {              \
        0, 0       \
    }

/* Returns `size` bytes aligned for any type, valid until the next arena_reset()/arena_free(), or
 * NULL when memory is exhausted. size 0 returns a valid non-NULL pointer. */
void *arena_alloc(struct arena *a, size_t size);

/* Copies `n` bytes into the arena; NULL on exhaustion (n == 0 gives a valid pointer). */
void *arena_dup(struct arena *a, const void *src, size_t n);

/* Makes room for one more element in an array that lives in the arena: when n == *cap, allocates an
 * array twice as large and copies the n elements over (the old one stays until the arena is reset).
 * Returns the array to use (items itself when there was room), or NULL on exhaustion. */
void *arena_grow(struct arena *a, void *items, size_t n, size_t *cap, size_t size);

/* Releases everything allocated, keeping the largest chunk for reuse. */
void arena_reset(struct arena *a);

/* Releases everything, including the kept chunk. The arena may be used again afterwards. */
void arena_free(struct arena *a);

#endif
