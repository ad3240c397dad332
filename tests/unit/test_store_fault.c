/* tests/unit/test_store_fault.c — the store when space or the disk runs out.
 *
 * (a) the quota: writes past it fail NO_SPACE and change nothing; reads, deletes and compaction go
 * on. (b) LMDB's map full (MDB_MAP_FULL): the write fails NO_SPACE, poisons its transaction, and a
 * commit of several requests applies none of them; earlier commits stay intact, also after a
 * reopen. (c) the file cannot grow (RLIMIT_FSIZE, EFBIG) in a child process: the commit fails with
 * an error, not a crash, and applies nothing. (d) a real ENOSPC on a small tmpfs, when this process
 * may mount one (else the test is skipped). */
#include "tests/unit/helpers/fixture.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Deterministic value of key number i, len bytes, in buf. */
static store_bytes val_of(int i, size_t len, uint8_t *buf)
{
    for (size_t j = 0; j < len; j++)
        buf[j] = (uint8_t)(i * 131 + j * 7 + (j >> 8));
    return (store_bytes){buf, len};
}

static void key_of(const char *prefix, int i, char out[32])
{
    snprintf(out, 32, "%s%05d", prefix, i);
}

/* One put in its own durable write transaction; the put's and the commit's result. */
static int put_one(store *st, const char *key, store_bytes v, int *put_rc, struct arena *a)
{
    store_tx *tx;
    int rc = store_tx_begin_write(st, &tx);
    if (rc)
        return rc;
    struct store_put_req q = {.key = sb(key), .value = v};
    struct store_put_res r;
    *put_rc = store_put(tx, &q, a, &r);
    arena_reset(a);
    if (*put_rc) {
        store_tx_end(tx);
        return *put_rc;
    }
    return store_tx_commit(tx, true);
}

/* 1 if key has exactly value v at the current revision, 0 if absent, -1 if different. */
static int has_value(struct fx *f, const char *key, store_bytes v)
{
    struct store_kv kv;
    int rc = fx_get(f, key, 0, &kv);
    if (rc < 0)
        fail_msg("get %s: %s", key, cairn_strerror(rc));
    if (rc == 0)
        return 0;
    return kv.value.len == v.len && memcmp(kv.value.data, v.data, v.len) == 0 ? 1 : -1;
}

static uint32_t hash_now(struct fx *f, int64_t *rev)
{
    store_tx *tx;
    assert_int_equal(store_tx_begin_read(f->st, &tx), 0);
    uint32_t h;
    int64_t c;
    assert_int_equal(store_hash_kv(tx, 0, &h, &c), 0);
    if (rev)
        *rev = store_tx_rev(tx);
    store_tx_end(tx);
    return h;
}

static int teardown_fx(void **state)
{
    fx_close(*state);
    *state = NULL;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* (a) quota */

static void test_quota_reached(void **state)
{
    struct store_options o = {.quota_bytes = 1u << 20};
    struct fx *f = fx_open(&o);
    *state = f;
    static uint8_t buf[4096];
    char key[32];
    int n = 0, rc = 0;
    int64_t rev = fx_rev(f);
    for (; n < 4000; n++) {
        key_of("q/", n, key);
        int put_rc = 0;
        rc = put_one(f->st, key, val_of(n, sizeof buf, buf), &put_rc, &f->a);
        if (rc)
            break;
        rev++;
    }
    if (rc != CAIRN_E_NO_SPACE)
        fail_msg("expected NO_SPACE filling a 1 MiB quota, got %s after %d puts",
                 cairn_strerror(rc), n);
    print_message("quota: NO_SPACE after %d puts of 4 KiB\n", n);
    assert_true(n > 10);

    /* the failed put left nothing */
    assert_int_equal(fx_rev(f), rev);
    key_of("q/", n, key);
    int64_t r;
    struct store_kv kv;
    assert_int_equal(fx_get(f, key, 0, &kv), 0);

    /* the store stays readable */
    for (int i = 0; i < n; i++) {
        key_of("q/", i, key);
        if (has_value(f, key, val_of(i, sizeof buf, buf)) != 1)
            fail_msg("after NO_SPACE: %s lost its value", key);
    }

    /* a quota NO_SPACE is a request error: the transaction stays usable for a delete */
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(f->st, &tx), 0);
    struct store_put_req q = {.key = sb("q/extra"), .value = val_of(1, sizeof buf, buf)};
    struct store_put_res pres;
    assert_int_equal(store_put(tx, &q, &f->a, &pres), CAIRN_E_NO_SPACE);
    assert_int_equal(store_tx_rev(tx), rev);
    key_of("q/", 0, key);
    struct store_delete_req d = {.key = sb(key)};
    struct store_delete_res dres;
    assert_int_equal(store_delete_range(tx, &d, &f->a, &dres), 0);
    assert_int_equal(dres.deleted, 1);
    assert_int_equal(store_tx_commit(tx, true), 0);
    assert_int_equal(fx_rev(f), rev + 1);
    assert_int_equal(fx_get(f, key, 0, &kv), 0);
    assert_int_equal(fx_get(f, "q/extra", 0, &kv), 0);
    rev++;

    /* a txn with a put is charged too, and changes nothing when refused */
    assert_int_equal(store_tx_begin_write(f->st, &tx), 0);
    struct store_op op = {.type = STORE_OP_PUT};
    op.u.put.key = sb("q/txn");
    op.u.put.value = val_of(2, sizeof buf, buf);
    struct store_txn_req t = {NULL, 0, &op, 1, NULL, 0};
    struct store_txn_res tres;
    rc = store_txn(tx, &t, &f->a, &tres);
    if (rc != 0 && rc != CAIRN_E_NO_SPACE)
        fail_msg("txn at the quota: %s", cairn_strerror(rc));
    if (rc == CAIRN_E_NO_SPACE)
        assert_int_equal(store_tx_rev(tx), rev);
    assert_int_equal(store_tx_commit(tx, true), 0);
    if (rc == 0)
        rev++;

    /* deletes of a range and compaction work */
    int64_t deleted;
    assert_int_equal(fx_del(f, "q/", "q0", &deleted, &r), 0);
    assert_true(deleted >= n - 1);
    assert_int_equal(r, rev + 1);
    rev = r;
    assert_int_equal(fx_compact(f, rev), 0);
    assert_int_equal(fx_rev(f), rev);
    struct store_range_req all = {.key = sb("q/"), .range_end = sb("q0")};
    struct store_range_res res;
    assert_int_equal(fx_range(f, &all, &res), 0);
    assert_int_equal(res.count, 0);

    /* after a restart too */
    fx_reopen(f, &o);
    assert_int_equal(fx_rev(f), rev);
    /* a small write: allowed or still refused (etcd counts the file, which does not shrink), but a
     * refusal changes nothing */
    rc = fx_put(f, "after", "x", 0, &r);
    if (rc != 0 && rc != CAIRN_E_NO_SPACE)
        fail_msg("put after compaction: %s", cairn_strerror(rc));
    assert_int_equal(fx_rev(f), rc ? rev : rev + 1);
}

/* ---------------------------------------------------------------------------------------------- */
/* (b) MDB_MAP_FULL */

static void test_map_full(void **state)
{
    struct store_options o = {.map_bytes = 256u << 10, .quota_bytes = 1ull << 30};
    struct fx *f = fx_open(&o);
    *state = f;
    static uint8_t buf[8192];
    char key[32];
    assert_int_equal(fx_put(f, "first", "1", 0, NULL), 0);
    int64_t rev0 = fx_rev(f);
    uint32_t h0 = hash_now(f, NULL);

    /* one transaction: early puts succeed, a later one hits the map's end */
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(f->st, &tx), 0);
    int n = 0, rc = 0;
    for (; n < 200; n++) {
        key_of("g/", n, key);
        struct store_put_req q = {.key = sb(key), .value = val_of(n, sizeof buf, buf)};
        struct store_put_res r;
        rc = store_put(tx, &q, &f->a, &r);
        arena_reset(&f->a);
        if (rc)
            break;
    }
    if (rc != CAIRN_E_NO_SPACE)
        fail_msg("expected NO_SPACE from a 256 KiB map, got %s after %d puts", cairn_strerror(rc),
                 n);
    print_message("map full: NO_SPACE after %d puts of 8 KiB in one transaction\n", n);
    assert_true(n >= 2);
    /* poisoned: every later call fails the same way */
    struct store_put_req small = {.key = sb("small"), .value = sb("s")};
    struct store_put_res pr;
    assert_int_equal(store_put(tx, &small, &f->a, &pr), CAIRN_E_NO_SPACE);
    struct store_delete_req d = {.key = sb("first")};
    struct store_delete_res dr;
    assert_int_equal(store_delete_range(tx, &d, &f->a, &dr), CAIRN_E_NO_SPACE);
    assert_int_equal(store_tx_commit(tx, true), CAIRN_E_NO_SPACE);

    /* none of it applied */
    assert_int_equal(fx_rev(f), rev0);
    struct store_kv kv;
    for (int i = 0; i <= n; i++) {
        key_of("g/", i, key);
        if (fx_get(f, key, 0, &kv) != 0)
            fail_msg("%s of the failed commit is visible", key);
    }
    assert_int_equal(fx_get(f, "small", 0, &kv), 0);
    assert_int_equal(fx_get(f, "first", 0, &kv), 1);
    assert_int_equal(hash_now(f, NULL), h0);

    /* one put per commit until full */
    int m = 0;
    int put_rc = 0;
    int64_t rev = rev0;
    for (; m < 400; m++) {
        key_of("s/", m, key);
        rc = put_one(f->st, key, val_of(m, 2000, buf), &put_rc, &f->a);
        if (rc)
            break;
        rev++;
    }
    if (rc != CAIRN_E_NO_SPACE)
        fail_msg("expected NO_SPACE filling the map, got %s (put %s) after %d commits",
                 cairn_strerror(rc), cairn_strerror(put_rc), m);
    print_message("map full: NO_SPACE (from %s) after %d single commits of 2000 bytes\n",
                  put_rc ? "the put" : "the commit", m);
    assert_int_equal(fx_rev(f), rev);
    key_of("s/", m, key);
    assert_int_equal(fx_get(f, key, 0, &kv), 0);
    for (int i = 0; i < m; i++) {
        key_of("s/", i, key);
        if (has_value(f, key, val_of(i, 2000, buf)) != 1)
            fail_msg("after map full: %s lost its value", key);
    }
    int64_t hrev;
    uint32_t h1 = hash_now(f, &hrev);
    assert_int_equal(hrev, rev);

    /* a delete may need pages too: it works or fails NO_SPACE without changing anything */
    int64_t deleted, r;
    rc = fx_del(f, "s/", "s0", &deleted, &r);
    if (rc != 0 && rc != CAIRN_E_NO_SPACE)
        fail_msg("delete at map full: %s", cairn_strerror(rc));
    print_message("map full: a range delete %s\n", rc ? "fails NO_SPACE" : "works");
    if (rc == 0) {
        assert_int_equal(deleted, m);
        assert_int_equal(fx_rev(f), rev + 1);
        rev++;
        h1 = hash_now(f, NULL);
    } else {
        assert_int_equal(fx_rev(f), rev);
        assert_int_equal(hash_now(f, NULL), h1);
    }

    /* reopen: the same state */
    fx_reopen(f, &o);
    int64_t rrev;
    assert_int_equal(hash_now(f, &rrev), h1);
    assert_int_equal(rrev, rev);
    assert_int_equal(fx_get(f, "first", 0, &kv), 1);
    if (rc != 0)
        for (int i = 0; i < m; i++) {
            key_of("s/", i, key);
            if (has_value(f, key, val_of(i, 2000, buf)) != 1)
                fail_msg("after map full and reopen: %s lost its value", key);
        }
}

/* ---------------------------------------------------------------------------------------------- */
/* (c) the file cannot grow: RLIMIT_FSIZE in a child */

struct fsize_report {
    int stage;         /* 0 ok; 1 open, 2 begin, 3 put, 4 commit: where the first error came */
    int code;          /* that error */
    int acked;         /* puts committed before it */
    int64_t rev;       /* revision after the last acknowledged commit */
    int64_t rev_after; /* revision a read transaction sees after the failure */
    int visible;       /* the failed key is visible afterwards (must be 0) */
    int lost;          /* acknowledged keys missing afterwards (must be 0) */
    int second_rc;     /* a second write attempt after the failure */
};

static void fsize_child(const char *dir, off_t limit, size_t vlen, int fd)
{
    struct fsize_report rep;
    memset(&rep, 0, sizeof rep);
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {(rlim_t)limit, (rlim_t)limit};
    if (setrlimit(RLIMIT_FSIZE, &rl))
        _exit(3);
    store *st;
    struct arena a = ARENA_INIT;
    static uint8_t buf[4096];
    char key[32];
    int rc = store_open(dir, NULL, &st);
    if (rc) {
        rep.stage = 1;
        rep.code = rc;
        goto out;
    }
    store_tx *tx;
    if ((rc = store_tx_begin_read(st, &tx)) == 0) {
        rep.rev = store_tx_rev(tx);
        store_tx_end(tx);
    }
    for (int i = 0; i < 20000; i++) {
        key_of("f/", i, key);
        int put_rc = 0;
        rc = put_one(st, key, val_of(i, vlen, buf), &put_rc, &a);
        if (rc) {
            rep.stage = put_rc ? 3 : 4;
            rep.code = rc;
            break;
        }
        rep.acked++;
        rep.rev++;
    }
    if (!rep.stage)
        goto out_close;
    /* still readable, nothing of the failed commit visible, every acknowledged key there */
    if ((rc = store_tx_begin_read(st, &tx)) == 0) {
        rep.rev_after = store_tx_rev(tx);
        for (int i = 0; i <= rep.acked; i++) {
            key_of("f/", i, key);
            struct store_range_req q = {.key = sb(key)};
            struct store_range_res res;
            if (store_range(tx, &q, &a, &res) != 0)
                rep.lost++;
            else if (i == rep.acked)
                rep.visible = res.n_kvs != 0;
            else if (res.n_kvs != 1 || res.kvs[0].value.len != vlen)
                rep.lost++;
            arena_reset(&a);
        }
        store_tx_end(tx);
    } else {
        rep.rev_after = -1;
    }
    {
        int put_rc;
        rep.second_rc = put_one(st, "f/second", val_of(1, vlen, buf), &put_rc, &a);
    }
out_close:
    store_close(st);
out:
    arena_free(&a);
    if (write(fd, &rep, sizeof rep) != (ssize_t)sizeof rep)
        _exit(4);
    _exit(0);
}

/* Writes puts of vlen-byte values in a child whose files cannot grow past `room` bytes beyond
 * data.mdb's size, then checks that the failure lost and showed nothing. */
static void file_size_limit(struct fx *f, off_t room, size_t vlen)
{
    char key[32];
    static uint8_t buf[4096];
    for (int i = 0; i < 20; i++) {
        key_of("base/", i, key);
        int put_rc;
        assert_int_equal(put_one(f->st, key, val_of(i, 1000, buf), &put_rc, &f->a), 0);
    }
    int64_t rev0;
    uint32_t h0 = hash_now(f, &rev0);
    fx_reset(f);
    store_close(f->st);
    f->st = NULL;
    char path[300];
    snprintf(path, sizeof path, "%s/data.mdb", f->dir);
    struct stat s;
    if (stat(path, &s) != 0)
        fail_msg("no %s: the test assumes LMDB's data file there", path);
    off_t limit = s.st_size + room;

    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        fsize_child(f->dir, limit, vlen, fds[1]);
    }
    close(fds[1]);
    struct fsize_report rep;
    ssize_t n = read(fds[0], &rep, sizeof rep);
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        fail_msg("the writer died of signal %d (%s) when the file could not grow", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    if (n != (ssize_t)sizeof rep)
        fail_msg("the writer exited with status %d without a report", WEXITSTATUS(status));
    print_message("file size limit: after %d commits, %s failed with %s; a second write: %s\n",
                  rep.acked,
                  rep.stage == 3   ? "the put"
                  : rep.stage == 4 ? "the commit"
                                   : "open/begin",
                  cairn_strerror(rep.code), cairn_strerror(rep.second_rc));
    if (rep.stage == 0)
        fail_msg("20000 puts of 4 KiB fit under a file size limit of %lld bytes", (long long)limit);
    if (rep.stage == 1 || rep.stage == 2)
        fail_msg("the store did not open or begin under the limit: %s", cairn_strerror(rep.code));
    if (rep.code != CAIRN_E_IO && rep.code != CAIRN_E_NO_DISK)
        fail_msg("EFBIG reported as %s, expected an I/O or no-disk error",
                 cairn_strerror(rep.code));
    assert_true(rep.acked > 0);
    assert_int_equal(rep.rev, rev0 + rep.acked);
    if (rep.rev_after != rep.rev)
        fail_msg("after the failed commit the writer sees revision %" PRId64
                 ", acknowledged %" PRId64,
                 rep.rev_after, rep.rev);
    assert_int_equal(rep.visible, 0);
    assert_int_equal(rep.lost, 0);
    /* a second write in the same process: done, or refused the same way, never CORRUPT (which a
     * history left above the revision by the failed commit would give) */
    if (rep.second_rc != 0 && rep.second_rc != CAIRN_E_IO && rep.second_rc != CAIRN_E_NO_DISK)
        fail_msg("a write after the failed commit: %s", cairn_strerror(rep.second_rc));

    /* the parent, without the limit: the same, and writable again */
    int rc = store_open(f->dir, NULL, &f->st);
    if (rc)
        fail_msg("reopen after EFBIG: %s", cairn_strerror(rc));
    int64_t rev = fx_rev(f);
    bool second = rep.second_rc == 0;
    assert_int_equal(rev, rep.rev + (second ? 1 : 0));
    for (int i = 0; i < 20; i++) {
        key_of("base/", i, key);
        assert_int_equal(has_value(f, key, val_of(i, 1000, buf)), 1);
    }
    for (int i = 0; i <= rep.acked; i++) {
        key_of("f/", i, key);
        assert_int_equal(has_value(f, key, val_of(i, vlen, buf)), i < rep.acked ? 1 : 0);
    }
    (void)h0;
    int64_t r;
    assert_int_equal(fx_put(f, "after", "ok", 0, &r), 0);
    assert_int_equal(r, rev + 1);
}

/* history.mdb, where the values go, is the file that cannot grow. */
static void test_file_size_limit(void **state)
{
    struct fx *f = fx_open(NULL);
    *state = f;
    file_size_limit(f, 256 << 10, 4096);
}

/* data.mdb is the file that cannot grow (leases, which only data.mdb holds, made it the larger):
 * its commit fails after history.mdb's succeeded, and the history's part is taken back. */
static void test_data_file_size_limit(void **state)
{
    struct fx *f = fx_open(NULL);
    *state = f;
    store_tx *tx;
    assert_int_equal(store_tx_begin_write(f->st, &tx), 0);
    for (int64_t id = 1; id <= 20000; id++)
        assert_int_equal(store_lease_grant(tx, id, 60), 0);
    assert_int_equal(store_tx_commit(tx, true), 0);
    file_size_limit(f, 16 << 10, 100);
}

/* ---------------------------------------------------------------------------------------------- */
/* (d) a real ENOSPC on a small tmpfs */

struct enospc_report {
    int status; /* 0 ok, 1 failure, 77 skipped */
    char msg[400];
};

static void enospc_report(int fd, int status, const char *fmt, ...)
{
    struct enospc_report rep;
    memset(&rep, 0, sizeof rep);
    rep.status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rep.msg, sizeof rep.msg, fmt, ap);
    va_end(ap);
    if (write(fd, &rep, sizeof rep) < 0)
        _exit(4);
}

static int write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, s, strlen(s));
    close(fd);
    return n == (ssize_t)strlen(s) ? 0 : -1;
}

/* Mounts a 1 MiB tmpfs on mnt in a mount namespace of this process only. */
static int mount_small_tmpfs(const char *mnt, char *why, size_t why_len)
{
    if (unshare(CLONE_NEWNS) != 0) {
        int e = errno;
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
            snprintf(why, why_len, "unshare(CLONE_NEWNS): %s; with CLONE_NEWUSER: %s", strerror(e),
                     strerror(errno));
            return -1;
        }
        char map[64];
        write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof map, "0 %u 1", (unsigned)gid);
        write_file("/proc/self/gid_map", map);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        snprintf(why, why_len, "making mounts private: %s", strerror(errno));
        return -1;
    }
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=1m") != 0) {
        snprintf(why, why_len, "mount -t tmpfs -o size=1m: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void enospc_child(const char *mnt, int fd)
{
    char why[300];
    if (mount_small_tmpfs(mnt, why, sizeof why) != 0) {
        enospc_report(fd, 77, "cannot mount a small tmpfs: %s", why);
        _exit(0);
    }
    char dir[300];
    snprintf(dir, sizeof dir, "%s/store", mnt);
    struct store_options o = {.quota_bytes = 1ull << 30, .map_bytes = 64u << 20};
    store *st;
    int rc = store_open(dir, &o, &st);
    if (rc) {
        umount2(mnt, MNT_DETACH);
        enospc_report(fd, 1, "store_open on the tmpfs: %s", cairn_strerror(rc));
        _exit(0);
    }
    struct arena a = ARENA_INIT;
    static uint8_t buf[4096];
    char key[32];
    int acked = 0, put_rc = 0;
    for (; acked < 2000; acked++) {
        key_of("e/", acked, key);
        rc = put_one(st, key, val_of(acked, sizeof buf, buf), &put_rc, &a);
        if (rc)
            break;
    }
    int status = 0;
    char msg[400];
    snprintf(msg, sizeof msg, "after %d commits of 4 KiB, %s failed with %s", acked,
             put_rc ? "the put" : "the commit", cairn_strerror(rc));
    if (rc != CAIRN_E_NO_DISK && rc != CAIRN_E_IO)
        status = 1;
    /* consistent: acknowledged revision, the failed key absent, all acknowledged keys there */
    store_tx *tx;
    if (status == 0 && (rc = store_tx_begin_read(st, &tx)) != 0) {
        status = 1;
        snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "; begin read: %s",
                 cairn_strerror(rc));
    } else if (status == 0) {
        if (store_tx_rev(tx) != 1 + acked) {
            status = 1;
            snprintf(msg + strlen(msg), sizeof msg - strlen(msg),
                     "; revision %" PRId64 " after %d acknowledged commits", store_tx_rev(tx),
                     acked);
        }
        for (int i = 0; i <= acked && status == 0; i++) {
            key_of("e/", i, key);
            struct store_range_req q = {.key = sb(key)};
            struct store_range_res res;
            rc = store_range(tx, &q, &a, &res);
            if (rc || res.n_kvs != (i < acked ? 1u : 0u)) {
                status = 1;
                snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "; key %s %s", key,
                         rc          ? cairn_strerror(rc)
                         : i < acked ? "lost"
                                     : "of the failed commit visible");
            }
            arena_reset(&a);
        }
        store_tx_end(tx);
    }
    store_close(st);
    if (status == 0) {
        /* reopening on the full disk works and shows the same revision */
        rc = store_open(dir, &o, &st);
        if (rc) {
            status = 1;
            snprintf(msg + strlen(msg), sizeof msg - strlen(msg), "; reopen on the full disk: %s",
                     cairn_strerror(rc));
        } else {
            if (store_tx_begin_read(st, &tx) == 0) {
                if (store_tx_rev(tx) != 1 + acked) {
                    status = 1;
                    snprintf(msg + strlen(msg), sizeof msg - strlen(msg),
                             "; revision %" PRId64 " after reopen", store_tx_rev(tx));
                }
                store_tx_end(tx);
            }
            store_close(st);
        }
    }
    arena_free(&a);
    if (umount2(mnt, 0) != 0)
        umount2(mnt, MNT_DETACH);
    enospc_report(fd, status, "%s", msg);
    _exit(0);
}

struct mnt_state {
    char mnt[256];
};

static int setup_mnt(void **state)
{
    struct mnt_state *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    const char *tmp = getenv("TMPDIR");
    snprintf(s->mnt, sizeof s->mnt, "%s/cairn-enospc-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(s->mnt))
        return -1;
    *state = s;
    return 0;
}

static int teardown_mnt(void **state)
{
    struct mnt_state *s = *state;
    umount2(s->mnt, MNT_DETACH); /* only if a mount leaked into our namespace */
    fx_rmtree(s->mnt);
    free(s);
    return 0;
}

static void test_disk_full(void **state)
{
    struct mnt_state *s = *state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        enospc_child(s->mnt, fds[1]);
    }
    close(fds[1]);
    struct enospc_report rep;
    ssize_t n = read(fds[0], &rep, sizeof rep);
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(status))
        fail_msg("the writer died of signal %d (%s) on the full disk", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    if (n != (ssize_t)sizeof rep)
        fail_msg("the writer exited with status %d without a report", WEXITSTATUS(status));
    if (rep.status == 77) {
        print_message("disk full: skipped: %s\n", rep.msg);
        skip();
    }
    print_message("disk full: %s\n", rep.msg);
    if (rep.status != 0)
        fail_msg("disk full: %s", rep.msg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_quota_reached, teardown_fx),
        cmocka_unit_test_teardown(test_map_full, teardown_fx),
        cmocka_unit_test_teardown(test_file_size_limit, teardown_fx),
        cmocka_unit_test_teardown(test_data_file_size_limit, teardown_fx),
        cmocka_unit_test_setup_teardown(test_disk_full, setup_mnt, teardown_mnt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
