/* api/watch_index.h — which watchers a changed key concerns.
 *
 * The watch hub looks up every event's key here once, whatever the number of watchers: watchers of
 * one key sit in a hash table by key; watchers of a range (prefix, from-key) in an interval index,
 * a sorted array of range starts with the largest range end of every subtree of the implicit
 * binary tree over it, so a lookup visits O(log n + matches) entries. The tree is over the
 * distinct ranges: watchers of the same range (many watching one prefix is the common case) share
 * a node, so the lookup compares the key against that range once and then hands every one of them
 * the event. The interval index is
 * rebuilt (O(n log n)) at the first lookup after ranges were added or removed, so creating many
 * watchers at once costs one rebuild.
 *
 * The index does not own the entries: the caller embeds a struct watch_key in its watcher and
 * keeps the key bytes alive while the entry is indexed. */
#ifndef CAIRN_API_WATCH_INDEX_H
#define CAIRN_API_WATCH_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct watch_key {
    const uint8_t *key;
    const uint8_t *end;      /* range end (exclusive); NULL: the single key */
    struct watch_key *hnext; /* hash chain (single keys) */
    uint32_t key_len, end_len;
    uint32_t pos;         /* position in the range array (ranges) */
    bool to_infinity : 1; /* from-key: every key >= key (end unused) */
    bool indexed : 1;
};

struct watch_index {
    struct watch_key **buckets; /* single keys, chained */
    size_t n_buckets, n_keys;
    struct watch_key **ranges; /* ranges, sorted by start once built */
    size_t n_ranges, cap_ranges;
    uint32_t *first; /* distinct range i: ranges[first[i]] up to first[i + 1] (a sentinel) */
    size_t n_distinct;
    struct watch_key **maxend; /* per implicit tree node (a distinct range): the entry with the
                                * largest end below it */
    bool dirty;                /* ranges changed since the last build */
};

void watch_index_init(struct watch_index *ix);
void watch_index_free(struct watch_index *ix);

/* Adds an entry (not indexed yet). Returns 0 or CAIRN_E_NOMEM. */
int watch_index_add(struct watch_index *ix, struct watch_key *k);

/* Removes an indexed entry. */
void watch_index_remove(struct watch_index *ix, struct watch_key *k);

/* Calls fn(k, arg) for every entry whose key or range holds key. Returns 0, or CAIRN_E_NOMEM when
 * a needed rebuild could not allocate (nothing is called then). fn must not add or remove
 * entries. */
int watch_index_match(struct watch_index *ix, const uint8_t *key, size_t len,
                      void (*fn)(struct watch_key *k, void *arg), void *arg);

#endif
