/* tests/unit/test_store_files.c — the store's two files (data.mdb, history.mdb) kept in step: what
 * a crash between their commits, a crash during compaction's removals, or an installation cut short
 * between its renames leaves is brought back on open; halves of different stores are refused. */
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/unit/helpers/fixture.h"

static void close_store(struct fx *f)
{
    fx_reset(f);
    store_close(f->st);
    f->st = NULL;
}

static char *path_of(const struct fx *f, const char *name)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    return path;
}

static uint8_t *read_whole(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat s;
    assert_int_equal(fstat(fd, &s), 0);
    uint8_t *b = malloc((size_t)s.st_size + 1);
    assert_non_null(b);
    assert_int_equal(pread(fd, b, (size_t)s.st_size, 0), s.st_size);
    close(fd);
    *len = (size_t)s.st_size;
    return b;
}

static void write_whole(const char *path, const uint8_t *b, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, b, len), (ssize_t)len);
    close(fd);
}

/* history.mdb of a closed store, opened with LMDB directly in a write transaction on "hist". */
static MDB_env *hist_open(struct fx *f, MDB_txn **txn, MDB_dbi *dbi)
{
    MDB_env *env;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_set_mapsize(env, 64 << 20), 0);
    assert_int_equal(mdb_env_open(env, path_of(f, "history.mdb"), MDB_NOSUBDIR, 0600), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, txn), 0);
    assert_int_equal(mdb_dbi_open(*txn, "hist", 0, dbi), 0);
    return env;
}

/* The number of history records of a closed store. */
static size_t hist_records(struct fx *f)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *env = hist_open(f, &txn, &dbi);
    MDB_stat s;
    assert_int_equal(mdb_stat(txn, dbi, &s), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return s.ms_entries;
}

static void assert_value(struct fx *f, const char *key, const char *value)
{
    struct store_kv kv;
    assert_int_equal(fx_get(f, key, 0, &kv), 1);
    assert_true(sb_eq(kv.value, value));
}

/* A crash after history.mdb's commit and before data.mdb's leaves history above data.mdb's
 * revision: opening drops it, and the revision it held is written again (the raft log's replay). */
static void test_history_above_revision_dropped(void **state)
{
    (void)state;
    struct fx *f = fx_open(NULL);
    assert_int_equal(fx_put(f, "a", "1", 0, NULL), 0); /* 2 */
    assert_int_equal(fx_put(f, "b", "1", 0, NULL), 0); /* 3 */
    close_store(f);
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_env *env = hist_open(f, &txn, &dbi);
    for (int sub = 0; sub < 2; sub++) {
        uint8_t rev[16] = {0};
        rev[7] = 4;
        rev[15] = (uint8_t)sub;
        MDB_val k = {sizeof rev, rev}, v = {5, "stale"};
        assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    }
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    assert_int_equal(hist_records(f), 4);

    fx_reopen(f, NULL);
    assert_int_equal(fx_rev(f), 3);
    int64_t rev;
    assert_int_equal(fx_put(f, "c", "new", 0, &rev), 0);
    assert_int_equal(rev, 4);
    assert_value(f, "c", "new");
    assert_value(f, "a", "1");
    close_store(f);
    assert_int_equal(hist_records(f), 3);
    fx_close(f);
}

/* A crash after data.mdb recorded a compaction's progress and before history.mdb lost the records
 * it removes: opening removes them, so the history ends as a finished compaction leaves it. */
static void test_interrupted_removals_finished(void **state)
{
    (void)state;
    struct fx *f = fx_open(NULL);
    char key[16], val[16];
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < 50; i++) {
            snprintf(key, sizeof key, "k%02d", i);
            snprintf(val, sizeof val, "v%d", round);
            assert_int_equal(fx_put(f, key, val, 0, NULL), 0);
        }
    int64_t deleted;
    assert_int_equal(fx_del(f, "k00", "k10", &deleted, NULL), 0);
    assert_int_equal(deleted, 10);
    close_store(f);
    assert_int_equal(hist_records(f), 160);
    size_t len;
    uint8_t *before = read_whole(path_of(f, "history.mdb"), &len);

    fx_reopen(f, NULL);
    assert_int_equal(fx_compact(f, fx_rev(f)), 0);
    close_store(f);
    size_t compacted = hist_records(f);
    assert_int_equal(compacted, 40); /* each live key's latest change; no deleted key's */

    /* history.mdb as it was before the removals, beside data.mdb after them */
    write_whole(path_of(f, "history.mdb"), before, len);
    free(before);
    assert_int_equal(hist_records(f), 160);
    fx_reopen(f, NULL);
    close_store(f);
    assert_int_equal(hist_records(f), compacted);
    fx_reopen(f, NULL);
    assert_value(f, "k10", "v2");
    assert_value(f, "k49", "v2");
    struct store_kv kv;
    assert_int_equal(fx_get(f, "k00", 0, &kv), 0);
    fx_close(f);
}

/* An installation cut short by a crash after data.mdb was swapped in and before history.mdb was:
 * opening finishes it. One cut short before its swap leaves the old data, and the copy goes. */
static void test_install_cut_between_renames(void **state)
{
    (void)state;
    struct fx *src = fx_open(NULL), *dst = fx_open(NULL);
    for (int i = 0; i < 100; i++) {
        char key[16];
        snprintf(key, sizeof key, "s%03d", i);
        assert_int_equal(fx_put(src, key, "from-src", 0, NULL), 0);
    }
    assert_int_equal(fx_put(dst, "only-in-dst", "x", 0, NULL), 0);
    fx_reset(src);
    size_t len;
    uint8_t *copy = fx_copy(src->st, &len);
    /* the copy's layout (store/env.c): 16-byte magic, data.mdb's length, then the two files */
    assert_true(len > 24);
    assert_memory_equal(copy, "cairn-copy-3", 12);
    uint64_t main_len = 0;
    for (int i = 7; i >= 0; i--)
        main_len = main_len << 8 | copy[16 + i];
    assert_true(main_len > 0 && 24 + main_len < len);
    close_store(dst);

    /* before the swap: both halves beside the old data */
    write_whole(path_of(dst, "install.tmp"), copy + 24, main_len);
    write_whole(path_of(dst, "install-history.tmp"), copy + 24 + main_len, len - 24 - main_len);
    fx_reopen(dst, NULL);
    assert_value(dst, "only-in-dst", "x");
    assert_int_equal(access(path_of(dst, "install.tmp"), F_OK), -1);
    assert_int_equal(access(path_of(dst, "install-history.tmp"), F_OK), -1);
    close_store(dst);

    /* between the renames: data.mdb is the copy's, its history still waits */
    write_whole(path_of(dst, "data.mdb"), copy + 24, main_len);
    write_whole(path_of(dst, "install-history.tmp"), copy + 24 + main_len, len - 24 - main_len);
    free(copy);
    fx_reopen(dst, NULL);
    assert_value(dst, "s099", "from-src");
    struct store_kv kv;
    assert_int_equal(fx_get(dst, "only-in-dst", 0, &kv), 0);
    assert_int_equal(fx_rev(dst), fx_rev(src));
    assert_int_equal(access(path_of(dst, "install-history.tmp"), F_OK), -1);
    fx_close(src);
    fx_close(dst);
}

static int open_in(const char *dir)
{
    store *st = NULL;
    int rc = store_open(dir, NULL, &st);
    store_close(st);
    return rc;
}

/* history.mdb of another store, or none, beside a data.mdb: CORRUPT, and nothing is changed. */
static void test_foreign_or_missing_history_refused(void **state)
{
    (void)state;
    struct fx *a = fx_open(NULL), *b = fx_open(NULL);
    assert_int_equal(fx_put(a, "a", "1", 0, NULL), 0);
    assert_int_equal(fx_put(b, "a", "1", 0, NULL), 0);
    close_store(a);
    close_store(b);
    size_t alen, blen;
    uint8_t *ah = read_whole(path_of(a, "history.mdb"), &alen);
    uint8_t *bh = read_whole(path_of(b, "history.mdb"), &blen);
    write_whole(path_of(a, "history.mdb"), bh, blen);
    assert_int_equal(open_in(a->dir), CAIRN_E_CORRUPT);
    size_t n;
    uint8_t *now = read_whole(path_of(a, "history.mdb"), &n);
    assert_int_equal(n, blen);
    assert_memory_equal(now, bh, blen);
    free(now);

    assert_int_equal(unlink(path_of(a, "history.mdb")), 0);
    assert_int_equal(open_in(a->dir), CAIRN_E_CORRUPT);
    assert_int_equal(access(path_of(a, "history.mdb"), F_OK), -1);

    write_whole(path_of(a, "history.mdb"), ah, alen);
    fx_reopen(a, NULL);
    assert_value(a, "a", "1");
    free(ah);
    free(bh);
    fx_close(a);
    fx_close(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_history_above_revision_dropped),
        cmocka_unit_test(test_interrupted_removals_finished),
        cmocka_unit_test(test_install_cut_between_renames),
        cmocka_unit_test(test_foreign_or_missing_history_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
