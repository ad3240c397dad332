/* tests/unit/helpers/fixture.h — a temporary store per test, and short ways to drive it.
 *
 * Every helper asserts (cmocka) on unexpected errors, so a test reads like its scenario. Temporary
 * directories are removed by fx_close(), also when the test failed before it (cmocka teardown). */
#ifndef CAIRN_TESTS_FIXTURE_H
#define CAIRN_TESTS_FIXTURE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "store/store.h"

struct fx {
    char dir[256];  /* temporary directory holding the store */
    store *st;      /* the open store */
    struct arena a; /* results of the helpers; reset by fx_reset() */
    store_tx *rtx;  /* read transaction of the last fx_get/fx_range, ended on the next call */
};

/* A store_bytes of a C string (NULL → empty). */
store_bytes sb(const char *s);

/* Compares a store_bytes with a C string. */
int sb_eq(store_bytes b, const char *s);

/* Creates a temporary directory and opens a store in it (opts may be NULL). */
struct fx *fx_open(const struct store_options *opts);

/* Closes and reopens the same store (as after a restart). */
void fx_reopen(struct fx *f, const struct store_options *opts);

/* Closes the store and removes its directory. NULL is a no-op. */
void fx_close(struct fx *f);

/* Frees helper results and ends the helpers' read transaction. */
void fx_reset(struct fx *f);

/* Removes a directory tree (used by fx_close; exposed for tests making their own dirs). */
void fx_rmtree(const char *path);

/* One write request in its own durable write transaction; return the store's result code. */
int fx_put(struct fx *f, const char *key, const char *value, int64_t lease, int64_t *rev);
int fx_del(struct fx *f, const char *key, const char *range_end, int64_t *deleted, int64_t *rev);
int fx_compact(struct fx *f, int64_t rev); /* also runs compaction steps until done */

/* Point get at a revision (0 = current) in a fresh read transaction. Returns 1 and fills *kv if
 * found (borrowed until fx_reset or the next fx_ call), 0 if absent, or a negative error. */
int fx_get(struct fx *f, const char *key, int64_t rev, struct store_kv *kv);

/* Range in a fresh read transaction (result valid until fx_reset or the next fx_ call). */
int fx_range(struct fx *f, const struct store_range_req *req, struct store_range_res *res);

/* The current revision (fresh read transaction). */
int64_t fx_rev(struct fx *f);

/* The bytes of st's copy (store_copy), malloc'd; *len their number. */
uint8_t *fx_copy(store *st, size_t *len);

#endif
