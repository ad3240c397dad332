/* tests/unit/helpers/fixture.c — temporary stores for unit tests. */
#include "tests/unit/helpers/fixture.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

store_bytes sb(const char *s)
{
    store_bytes b = {(const uint8_t *)s, s ? strlen(s) : 0};
    return b;
}

int sb_eq(store_bytes b, const char *s)
{
    size_t n = strlen(s);
    return b.len == n && (n == 0 || memcmp(b.data, s, n) == 0);
}

static int rm_one(const char *path, const struct stat *sbuf, int type, struct FTW *ftw)
{
    (void)sbuf;
    (void)type;
    (void)ftw;
    return remove(path);
}

void fx_rmtree(const char *path)
{
    nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

struct fx *fx_open(const struct store_options *opts)
{
    struct fx *f = calloc(1, sizeof *f);
    assert_non_null(f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/cairn-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    int rc = store_open(f->dir, opts, &f->st);
    if (rc != 0)
        fail_msg("store_open(%s): %s", f->dir, cairn_strerror(rc));
    return f;
}

void fx_reset(struct fx *f)
{
    if (f->rtx) {
        store_tx_end(f->rtx);
        f->rtx = NULL;
    }
    arena_reset(&f->a);
}

void fx_reopen(struct fx *f, const struct store_options *opts)
{
    fx_reset(f);
    store_close(f->st);
    f->st = NULL;
    int rc = store_open(f->dir, opts, &f->st);
    if (rc != 0)
        fail_msg("store_open(%s) again: %s", f->dir, cairn_strerror(rc));
}

void fx_close(struct fx *f)
{
    if (!f)
        return;
    fx_reset(f);
    arena_free(&f->a);
    store_close(f->st);
    fx_rmtree(f->dir);
    free(f);
}

static store_tx *begin_write(struct fx *f)
{
    fx_reset(f);
    store_tx *tx;
    int rc = store_tx_begin_write(f->st, &tx);
    if (rc != 0)
        fail_msg("store_tx_begin_write: %s", cairn_strerror(rc));
    return tx;
}

static int finish_write(store_tx *tx, int rc)
{
    if (rc != 0) {
        store_tx_end(tx);
        return rc;
    }
    return store_tx_commit(tx, true);
}

int fx_put(struct fx *f, const char *key, const char *value, int64_t lease, int64_t *rev)
{
    store_tx *tx = begin_write(f);
    struct store_put_req req = {.key = sb(key), .value = sb(value), .lease = lease};
    struct store_put_res res;
    int rc = store_put(tx, &req, &f->a, &res);
    if (rc == 0 && rev)
        *rev = res.revision;
    return finish_write(tx, rc);
}

int fx_del(struct fx *f, const char *key, const char *range_end, int64_t *deleted, int64_t *rev)
{
    store_tx *tx = begin_write(f);
    struct store_delete_req req = {.key = sb(key), .range_end = sb(range_end)};
    struct store_delete_res res;
    int rc = store_delete_range(tx, &req, &f->a, &res);
    if (rc == 0) {
        if (deleted)
            *deleted = res.deleted;
        if (rev)
            *rev = res.revision;
    }
    return finish_write(tx, rc);
}

int fx_compact(struct fx *f, int64_t rev)
{
    store_tx *tx = begin_write(f);
    int rc = store_compact(tx, rev);
    rc = finish_write(tx, rc);
    if (rc != 0)
        return rc;
    for (bool done = false; !done;) {
        tx = begin_write(f);
        rc = finish_write(tx, store_compact_step(tx, &done));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static store_tx *begin_read(struct fx *f)
{
    fx_reset(f);
    int rc = store_tx_begin_read(f->st, &f->rtx);
    if (rc != 0)
        fail_msg("store_tx_begin_read: %s", cairn_strerror(rc));
    return f->rtx;
}

int fx_get(struct fx *f, const char *key, int64_t rev, struct store_kv *kv)
{
    store_tx *tx = begin_read(f);
    struct store_range_req req = {.key = sb(key), .revision = rev};
    struct store_range_res res;
    int rc = store_range(tx, &req, &f->a, &res);
    if (rc != 0)
        return rc;
    if (res.n_kvs == 0)
        return 0;
    *kv = res.kvs[0];
    return 1;
}

int fx_range(struct fx *f, const struct store_range_req *req, struct store_range_res *res)
{
    store_tx *tx = begin_read(f);
    return store_range(tx, req, &f->a, res);
}

int64_t fx_rev(struct fx *f)
{
    store_tx *tx = begin_read(f);
    return store_tx_rev(tx);
}

uint8_t *fx_copy(store *st, size_t *len)
{
    int fd = memfd_create("copy", 0);
    assert_true(fd >= 0);
    assert_int_equal(store_copy(st, fd), 0);
    off_t n = lseek(fd, 0, SEEK_END);
    assert_true(n > 0);
    uint8_t *b = malloc((size_t)n);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, (size_t)n, 0), n);
    close(fd);
    *len = (size_t)n;
    return b;
}
