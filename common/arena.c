/* common/arena.c — bump allocation in growing chunks. */
#include "common/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_ALIGN     16
#define ARENA_MIN_CHUNK 4096

struct arena_chunk {
    struct arena_chunk *next; /* older chunk */
    size_t size;              /* usable bytes in data */
    size_t used;              /* bytes handed out */
    _Alignas(ARENA_ALIGN) unsigned char data[];
};

static size_t align_up(size_t n)
{
    return (n + ARENA_ALIGN - 1) & ~(size_t)(ARENA_ALIGN - 1);
}

void *arena_alloc(struct arena *a, size_t size)
{
    size = align_up(size ? size : 1);
    struct arena_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t want = a->chunk_size < ARENA_MIN_CHUNK ? ARENA_MIN_CHUNK : a->chunk_size;
        while (want < size)
            want *= 2;
        if (want > SIZE_MAX - sizeof *c)
            return NULL;
        c = malloc(sizeof *c + want);
        if (!c)
            return NULL;
        c->next = a->head;
        c->size = want;
        c->used = 0;
        a->head = c;
        a->chunk_size = want * 2; /* geometric growth keeps the chunk count logarithmic */
    }
    void *p = c->data + c->used;
    c->used += size;
    return p;
}

void *arena_dup(struct arena *a, const void *src, size_t n)
{
    void *p = arena_alloc(a, n);
    if (p && n)
        memcpy(p, src, n);
    return p;
}

void *arena_grow(struct arena *a, void *items, size_t n, size_t *cap, size_t size)
{
    if (n < *cap)
        return items;
    size_t ncap = *cap ? *cap * 2 : 16;
    if (ncap > SIZE_MAX / size)
        return NULL;
    void *p = arena_alloc(a, ncap * size);
    if (!p)
        return NULL;
    if (n)
        memcpy(p, items, n * size);
    *cap = ncap;
    return p;
}

void arena_reset(struct arena *a)
{
    struct arena_chunk *keep = NULL;
    for (struct arena_chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        if (!keep || c->size > keep->size) {
            free(keep);
            keep = c;
        } else {
            free(c);
        }
    }
    if (keep) {
        keep->next = NULL;
        keep->used = 0;
    }
    a->head = keep;
}

void arena_free(struct arena *a)
{
    arena_reset(a);
    free(a->head);
    a->head = NULL;
    a->chunk_size = 0;
}
