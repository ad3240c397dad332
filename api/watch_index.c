/* api/watch_index.c — the hash table of single keys and the interval index of ranges. */
#include "api/watch_index.h"

#include <stdlib.h>
#include <string.h>

#include "common/error.h"

static int bytes_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static uint64_t hash_key(const uint8_t *p, size_t n)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

void watch_index_init(struct watch_index *ix)
{
    memset(ix, 0, sizeof *ix);
}

void watch_index_free(struct watch_index *ix)
{
    free(ix->buckets);
    free(ix->ranges);
    free(ix->maxend);
    free(ix->first);
    memset(ix, 0, sizeof *ix);
}

static int rehash(struct watch_index *ix, size_t n)
{
    struct watch_key **b = calloc(n, sizeof *b);
    if (!b)
        return CAIRN_E_NOMEM;
    for (size_t i = 0; i < ix->n_buckets; i++) {
        struct watch_key *k = ix->buckets[i];
        while (k) {
            struct watch_key *next = k->hnext;
            size_t j = hash_key(k->key, k->key_len) & (n - 1);
            k->hnext = b[j];
            b[j] = k;
            k = next;
        }
    }
    free(ix->buckets);
    ix->buckets = b;
    ix->n_buckets = n;
    return 0;
}

int watch_index_add(struct watch_index *ix, struct watch_key *k)
{
    if (!k->end && !k->to_infinity) {
        if (ix->n_keys >= ix->n_buckets && rehash(ix, ix->n_buckets ? ix->n_buckets * 2 : 64))
            return CAIRN_E_NOMEM;
        size_t j = hash_key(k->key, k->key_len) & (ix->n_buckets - 1);
        k->hnext = ix->buckets[j];
        ix->buckets[j] = k;
        ix->n_keys++;
    } else {
        if (ix->n_ranges == ix->cap_ranges) {
            size_t cap = ix->cap_ranges ? ix->cap_ranges * 2 : 16;
            struct watch_key **r = realloc(ix->ranges, cap * sizeof *r);
            if (!r)
                return CAIRN_E_NOMEM;
            ix->ranges = r;
            ix->cap_ranges = cap;
        }
        k->pos = (uint32_t)ix->n_ranges;
        ix->ranges[ix->n_ranges++] = k;
        ix->dirty = true;
    }
    k->indexed = true;
    return 0;
}

void watch_index_remove(struct watch_index *ix, struct watch_key *k)
{
    if (!k->indexed)
        return;
    k->indexed = false;
    if (!k->end && !k->to_infinity) {
        struct watch_key **pp = &ix->buckets[hash_key(k->key, k->key_len) & (ix->n_buckets - 1)];
        while (*pp && *pp != k)
            pp = &(*pp)->hnext;
        if (*pp)
            *pp = k->hnext;
        ix->n_keys--;
        return;
    }
    struct watch_key *last = ix->ranges[--ix->n_ranges];
    ix->ranges[k->pos] = last;
    last->pos = k->pos;
    ix->dirty = true;
}

/* Whether a's range ends after b's. */
static bool ends_after(const struct watch_key *a, const struct watch_key *b)
{
    if (a->to_infinity || b->to_infinity)
        return a->to_infinity && !b->to_infinity;
    return bytes_cmp(a->end, a->end_len, b->end, b->end_len) > 0;
}

/* Ranges by start, then by end: equal ranges end up next to each other. */
static int range_cmp(const void *a, const void *b)
{
    const struct watch_key *x = *(struct watch_key *const *)a, *y = *(struct watch_key *const *)b;
    int c = bytes_cmp(x->key, x->key_len, y->key, y->key_len);
    if (c)
        return c;
    return ends_after(x, y) ? 1 : ends_after(y, x) ? -1 : 0;
}

/* Whether key lies before k's end. */
static bool before_end(const struct watch_key *k, const uint8_t *key, size_t len)
{
    return k->to_infinity || bytes_cmp(key, len, k->end, k->end_len) < 0;
}

/* The tree over the distinct ranges: distinct range i is ranges[first[i]], shared by the entries
 * up to first[i + 1]. */
static struct watch_key *build(struct watch_index *ix, size_t lo, size_t hi)
{
    if (lo >= hi)
        return NULL;
    size_t mid = lo + (hi - lo) / 2;
    struct watch_key *m = ix->ranges[ix->first[mid]];
    struct watch_key *l = build(ix, lo, mid), *r = build(ix, mid + 1, hi);
    if (l && ends_after(l, m))
        m = l;
    if (r && ends_after(r, m))
        m = r;
    ix->maxend[mid] = m;
    return m;
}

static int rebuild(struct watch_index *ix)
{
    free(ix->maxend);
    free(ix->first);
    ix->maxend = NULL;
    ix->first = NULL;
    ix->n_distinct = 0;
    if (ix->n_ranges) {
        ix->maxend = malloc(ix->n_ranges * sizeof *ix->maxend);
        ix->first = malloc((ix->n_ranges + 1) * sizeof *ix->first);
        if (!ix->maxend || !ix->first) {
            free(ix->maxend);
            free(ix->first);
            ix->maxend = NULL;
            ix->first = NULL;
            return CAIRN_E_NOMEM;
        }
        qsort(ix->ranges, ix->n_ranges, sizeof *ix->ranges, range_cmp);
        for (size_t i = 0; i < ix->n_ranges; i++) {
            ix->ranges[i]->pos = (uint32_t)i;
            if (i == 0 || range_cmp(&ix->ranges[i - 1], &ix->ranges[i]))
                ix->first[ix->n_distinct++] = (uint32_t)i;
        }
        ix->first[ix->n_distinct] = (uint32_t)ix->n_ranges;
        build(ix, 0, ix->n_distinct);
    }
    ix->dirty = false;
    return 0;
}

/* Visits the distinct ranges in [lo, hi) of the tree that hold key, and every entry of each. */
static void match_ranges(struct watch_index *ix, size_t lo, size_t hi, const uint8_t *key,
                         size_t len, void (*fn)(struct watch_key *k, void *arg), void *arg)
{
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (!before_end(ix->maxend[mid], key, len))
            return; /* every range below ends at or before key */
        match_ranges(ix, lo, mid, key, len, fn, arg);
        struct watch_key *m = ix->ranges[ix->first[mid]];
        if (bytes_cmp(m->key, m->key_len, key, len) > 0)
            return; /* this and every later range start after key */
        if (before_end(m, key, len))
            for (uint32_t i = ix->first[mid]; i < ix->first[mid + 1]; i++)
                fn(ix->ranges[i], arg);
        lo = mid + 1;
    }
}

int watch_index_match(struct watch_index *ix, const uint8_t *key, size_t len,
                      void (*fn)(struct watch_key *k, void *arg), void *arg)
{
    if (ix->dirty && rebuild(ix))
        return CAIRN_E_NOMEM;
    if (ix->n_keys) {
        struct watch_key *k = ix->buckets[hash_key(key, len) & (ix->n_buckets - 1)];
        for (; k; k = k->hnext)
            if (k->key_len == len && !memcmp(k->key, key, len))
                fn(k, arg);
    }
    match_ranges(ix, 0, ix->n_distinct, key, len, fn, arg);
    return 0;
}
