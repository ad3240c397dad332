/* tests/unit/test_store_install.c — a store's copy installed in place of another store's data:
 * what a member behind the leader's log does with the leader's store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/helpers/fixture.h"

static uint64_t ci_of(store *st)
{
    store_tx *tx;
    assert_int_equal(store_tx_begin_read(st, &tx), 0);
    uint64_t ci = store_tx_consistent_index(tx);
    store_tx_end(tx);
    return ci;
}

static void set_ci(store *st, uint64_t ci)
{
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(st, &tx), 0);
    assert_int_equal(store_tx_set_consistent_index(tx, ci), 0);
    assert_int_equal(store_tx_commit(tx, true), 0);
}

static void test_install_replaces_data_in_place(void **state)
{
    (void)state;
    struct fx *src = fx_open(NULL), *dst = fx_open(NULL);
    char key[16];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        assert_int_equal(fx_put(src, key, "v", 0, NULL), 0);
    }
    set_ci(src->st, 77);
    assert_int_equal(fx_put(dst, "only-in-dst", "x", 0, NULL), 0);
    store *handle = dst->st;
    size_t len;
    uint8_t *bytes = fx_copy(src->st, &len);
    assert_int_equal(store_install(dst->st, bytes, len), 0);
    free(bytes);
    /* the same handle now holds the source's data, revision and consistent index */
    assert_ptr_equal(dst->st, handle);
    struct store_kv kv;
    assert_int_equal(fx_get(dst, "k199", 0, &kv), 1);
    assert_int_equal(fx_get(dst, "only-in-dst", 0, &kv), 0);
    assert_int_equal(fx_rev(dst), fx_rev(src));
    assert_int_equal(ci_of(dst->st), 77);
    /* writes go on, and the installed data survives a reopen */
    assert_int_equal(fx_put(dst, "after", "y", 0, NULL), 0);
    fx_reset(dst);
    fx_reopen(dst, NULL);
    assert_int_equal(fx_get(dst, "after", 0, &kv), 1);
    assert_int_equal(fx_get(dst, "k000", 0, &kv), 1);
    assert_int_equal(ci_of(dst->st), 77);
    fx_close(src);
    fx_close(dst);
}

/* The copy made into an unnamed file and installed in pieces, as a member receives it; an
 * installation dropped half way leaves the old data. */
static void test_install_in_pieces_and_abort(void **state)
{
    (void)state;
    struct fx *src = fx_open(NULL), *dst = fx_open(NULL);
    char key[16];
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "k%03d", i);
        assert_int_equal(fx_put(src, key, "value", 0, NULL), 0);
    }
    assert_int_equal(fx_put(dst, "only-in-dst", "x", 0, NULL), 0);
    fx_reset(src);
    fx_reset(dst);
    int fd;
    assert_int_equal(store_copy_tmpfile(src->st, &fd), 0);
    off_t size = lseek(fd, 0, SEEK_END);
    assert_true(size > 4096);
    uint8_t *bytes = malloc((size_t)size);
    assert_int_equal(pread(fd, bytes, (size_t)size, 0), size);
    close(fd);
    /* half of it, then dropped: nothing changed */
    struct store_install *in;
    assert_int_equal(store_install_begin(dst->st, &in), 0);
    assert_int_equal(store_install_write(in, bytes, (size_t)size / 2), 0);
    store_install_abort(in);
    struct store_kv kv;
    assert_int_equal(fx_get(dst, "only-in-dst", 0, &kv), 1);
    char path[400];
    snprintf(path, sizeof path, "%s/install.tmp", dst->dir);
    assert_int_equal(access(path, F_OK), -1);
    /* in pieces of 1000 bytes: the source's data */
    assert_int_equal(store_install_begin(dst->st, &in), 0);
    for (off_t o = 0; o < size; o += 1000) {
        size_t n = size - o < 1000 ? (size_t)(size - o) : 1000;
        assert_int_equal(store_install_write(in, bytes + o, n), 0);
    }
    assert_int_equal(store_install_finish(in), 0);
    free(bytes);
    assert_int_equal(fx_get(dst, "k299", 0, &kv), 1);
    assert_int_equal(fx_get(dst, "only-in-dst", 0, &kv), 0);
    assert_int_equal(fx_rev(dst), fx_rev(src));
    fx_close(src);
    fx_close(dst);
}

static void test_install_refused_with_open_write(void **state)
{
    (void)state;
    struct fx *f = fx_open(NULL);
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(f->st, &tx), 0);
    uint8_t junk[8] = {0};
    assert_int_equal(store_install(f->st, junk, sizeof junk), CAIRN_E_INVALID_ARGUMENT);
    store_tx_end(tx);
    fx_close(f);
}

static void test_leftover_install_file_is_dropped(void **state)
{
    (void)state;
    struct fx *f = fx_open(NULL);
    assert_int_equal(fx_put(f, "kept", "1", 0, NULL), 0);
    fx_reset(f);
    store_close(f->st);
    f->st = NULL;
    /* a crash while writing the copy leaves install.tmp beside the old data */
    char path[400];
    snprintf(path, sizeof path, "%s/install.tmp", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("partial copy", fp);
    fclose(fp);
    fx_reopen(f, NULL);
    struct store_kv kv;
    assert_int_equal(fx_get(f, "kept", 0, &kv), 1);
    assert_int_equal(access(path, F_OK), -1);
    fx_close(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_install_replaces_data_in_place),
        cmocka_unit_test(test_install_in_pieces_and_abort),
        cmocka_unit_test(test_install_refused_with_open_write),
        cmocka_unit_test(test_leftover_install_file_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
