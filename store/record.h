/* store/record.h — the on-disk encoding of the store's LMDB records.
 *
 * Named tables hold the data (docs/ARCHITECTURE.md draws them), all in data.mdb but the history:
 * - hist (history.mdb): revision (16 bytes: main, sub, big-endian) → one change, a put or a
 *   tombstone; beside it history.mdb's meta: "format", "pair", "removed" (env.c);
 * - kv: user key → the key's latest change without its value (the value is in that change's hist
 *   record: the key table stays small, so a commit of scattered puts dirties few of its pages);
 * - lease: lease id (8 bytes big-endian) → granted TTL, checkpointed remaining TTL;
 * - lkeys: lease id → attached user keys (sorted duplicates);
 * - alarm: alarm type, member id → nothing; member: member id → the member's record;
 * - reqs, reqlog: applied request ids by id and by index (store/requests.c);
 * - meta: "format" → format magic; "pair" → 16 random bytes, the same in history.mdb's meta;
 *   "cluster" → cluster ID; "reqs_forgotten" → see requests.c.
 * LMDB's main table, beside the named tables' roots, holds "state": revision, consistent index,
 * compaction progress. Integers inside records are LEB128 varints. Every decoder checks bounds and
 * returns CAIRN_E_CORRUPT on a malformed record instead of reading past it. */
#ifndef CAIRN_STORE_RECORD_H
#define CAIRN_STORE_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

#define REV_KEY_SIZE 16

/* Record flags */
#define REC_TOMBSTONE 0x01

/* A history record: one change of one key at revision (main, sub). */
struct hist_rec {
    uint8_t flags;     /* REC_TOMBSTONE for a delete */
    int64_t create;    /* create revision (0 for tombstones) */
    int64_t version;   /* version (0 for tombstones) */
    int64_t lease;     /* lease id (0 for tombstones) */
    int64_t prev_main; /* the key's previous change, (0, 0) if none: the chain that historical */
    int64_t prev_sub;  /*   reads and compaction follow */
    store_bytes key;
    store_bytes value; /* empty for tombstones */
};

/* The latest change of a key: the key table's value. The change's value is in its hist record at
 * (mod_main, mod_sub). */
struct latest_rec {
    uint8_t flags; /* REC_TOMBSTONE: deleted, kept until compaction passes the delete */
    int64_t mod_main;
    int64_t mod_sub;
    int64_t create;
    int64_t version;
    int64_t lease;
};

/* Encodes revision (main, sub) as a 16-byte key that sorts in revision order. */
void rev_encode(uint8_t out[REV_KEY_SIZE], int64_t main, int64_t sub);

/* Decodes a revision key; CAIRN_E_CORRUPT if size is wrong. */
int rev_decode(const void *p, size_t n, int64_t *main, int64_t *sub);

/* Size of the encoded record, then its encoding into out (which has that size). */
size_t hist_rec_size(const struct hist_rec *r);
void hist_rec_encode(const struct hist_rec *r, uint8_t *out);

/* Decodes; key and value borrow from p. */
int hist_rec_decode(const void *p, size_t n, struct hist_rec *r);

size_t latest_rec_size(const struct latest_rec *r);
void latest_rec_encode(const struct latest_rec *r, uint8_t *out);
int latest_rec_decode(const void *p, size_t n, struct latest_rec *r);

/* Fixed 8-byte little-endian integers, for the fixed-size state and lease records. */
void le64_put(uint8_t *p, int64_t v);
int64_t le64_get(const void *p);

/* Fixed 8-byte big-endian integers, for keys that sort as unsigned numbers. */
void be64_put(uint8_t *p, uint64_t v);
uint64_t be64_get(const void *p);

/* 8-byte big-endian encoding of a lease id (sorts by id as unsigned). */
void lease_id_encode(uint8_t out[8], int64_t id);
int64_t lease_id_decode(const void *p);

#endif
