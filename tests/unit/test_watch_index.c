/* tests/unit/test_watch_index.c — the watch hub's key index (api/watch_index.c).
 *
 * The index must report exactly the entries whose single key equals the looked-up key, or whose
 * range [key, end) — or [key, ∞) for from-key — holds it: checked against a plain scan of every
 * entry, over random keys, ranges, removals and re-additions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/watch_index.h"

#define N 600

struct entry {
    struct watch_key k;
    uint8_t key[3], end[3];
    bool live;
    int hits;
};

static struct entry entries[N];

static void on_match(struct watch_key *k, void *arg)
{
    (void)arg;
    ((struct entry *)k)->hits++;
}

static int cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an < bn ? -1 : an > bn);
}

static bool holds(const struct entry *e, const uint8_t *key, size_t len)
{
    const struct watch_key *k = &e->k;
    if (!k->end && !k->to_infinity)
        return cmp(k->key, k->key_len, key, len) == 0;
    if (cmp(key, len, k->key, k->key_len) < 0)
        return false;
    return k->to_infinity || cmp(key, len, k->end, k->end_len) < 0;
}

/* Keys of 1-3 bytes from a small alphabet, so that ranges overlap and keys repeat. */
static size_t random_key(uint8_t *out)
{
    size_t n = 1 + (size_t)(rand() % 3);
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)('a' + rand() % 4);
    return n;
}

static void make_entry(struct entry *e)
{
    memset(&e->k, 0, sizeof e->k);
    e->k.key = e->key;
    e->k.key_len = random_key(e->key);
    int kind = rand() % 3;
    if (kind == 1) {
        e->k.to_infinity = true;
    } else if (kind == 2) {
        do
            e->k.end_len = random_key(e->end);
        while (cmp(e->key, e->k.key_len, e->end, e->k.end_len) >= 0 &&
               (e->k.key_len = random_key(e->key)));
        e->k.end = e->end;
    }
}

static void check_all_keys(struct watch_index *ix)
{
    /* every key of the alphabet up to 3 bytes, and some beyond it */
    for (int n = 1; n <= 3; n++) {
        int total = 1;
        for (int i = 0; i < n; i++)
            total *= 5;
        for (int code = 0; code < total; code++) {
            uint8_t key[3];
            int c = code;
            for (int i = 0; i < n; i++, c /= 5)
                key[i] = (uint8_t)('a' + c % 5);
            for (int i = 0; i < N; i++)
                entries[i].hits = 0;
            assert_int_equal(watch_index_match(ix, key, (size_t)n, on_match, NULL), 0);
            for (int i = 0; i < N; i++) {
                int want = entries[i].live && holds(&entries[i], key, (size_t)n);
                if (entries[i].hits != want)
                    fail_msg("entry %d, key %.*s: %d hits, want %d", i, n, (const char *)key,
                             entries[i].hits, want);
            }
        }
    }
}

static void test_matches_a_scan(void **state)
{
    (void)state;
    srand(7);
    struct watch_index ix;
    watch_index_init(&ix);
    for (int i = 0; i < N; i++) {
        make_entry(&entries[i]);
        assert_int_equal(watch_index_add(&ix, &entries[i].k), 0);
        entries[i].live = true;
    }
    check_all_keys(&ix);
    for (int round = 0; round < 5; round++) {
        for (int j = 0; j < N / 3; j++) {
            struct entry *e = &entries[rand() % N];
            if (e->live) {
                watch_index_remove(&ix, &e->k);
                e->live = false;
            } else {
                make_entry(e);
                assert_int_equal(watch_index_add(&ix, &e->k), 0);
                e->live = true;
            }
        }
        check_all_keys(&ix);
    }
    watch_index_free(&ix);
}

/* Many entries of the same few ranges (watchers of one prefix) share a node of the tree: each of
 * them still gets every key its range holds, once. */
static void test_shared_ranges(void **state)
{
    (void)state;
    struct watch_index ix;
    watch_index_init(&ix);
    for (int i = 0; i < N; i++) {
        struct entry *e = &entries[i];
        memset(&e->k, 0, sizeof e->k);
        e->k.key = e->key;
        e->k.key_len = 1;
        e->key[0] = i % 3 == 2 ? 'c' : 'b';
        if (i % 3 == 1) {
            e->k.to_infinity = true;
        } else {
            e->k.end = e->end;
            e->k.end_len = 1;
            e->end[0] = (uint8_t)(e->key[0] + 1); /* the prefix "b" or "c" */
        }
        e->live = true;
        assert_int_equal(watch_index_add(&ix, &e->k), 0);
    }
    check_all_keys(&ix);
    for (int i = 0; i < N; i += 2) { /* half of each group goes */
        watch_index_remove(&ix, &entries[i].k);
        entries[i].live = false;
    }
    check_all_keys(&ix);
    watch_index_free(&ix);
}

static void test_empty_and_single(void **state)
{
    (void)state;
    struct watch_index ix;
    watch_index_init(&ix);
    for (int i = 0; i < N; i++)
        entries[i].live = false;
    check_all_keys(&ix); /* nothing indexed: no match */
    struct entry *e = &entries[0];
    memset(&e->k, 0, sizeof e->k);
    memcpy(e->key, "b", 1);
    e->k.key = e->key;
    e->k.key_len = 1;
    assert_int_equal(watch_index_add(&ix, &e->k), 0);
    e->live = true;
    check_all_keys(&ix);
    watch_index_remove(&ix, &e->k);
    watch_index_remove(&ix, &e->k); /* a second removal is harmless */
    e->live = false;
    check_all_keys(&ix);
    watch_index_free(&ix);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_a_scan),
        cmocka_unit_test(test_shared_ranges),
        cmocka_unit_test(test_empty_and_single),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
