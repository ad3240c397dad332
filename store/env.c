/* store/env.c — opening and closing the store, its transactions, and the persisted state.
 *
 * The data directory holds LMDB's data.mdb and lock.mdb and our cairn.lock (an exclusive flock, so
 * two processes never open the same store). The "meta" table identifies the file as a cairn store.
 * The state that must move atomically with the data — current revision, consistent index and
 * compaction progress — is the "state" record of LMDB's main table, rewritten in the same LMDB
 * transaction as the changes it describes. The main table holds the named tables' roots, so every
 * commit rewrites its page anyway: keeping the state there costs no extra page per commit. */
#include "store/internal.h"
#include "store/record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define FORMAT_MAGIC   "cairn-store"
/* 2: the key table without values (1 held them inline; refused as CAIRN_E_STORE_VERSION) */
#define FORMAT_VERSION 2
#define STATE_SIZE     40

static const char format_key[] = "format";
static const char state_key[] = "state";

/* ---------------------------------------------------------------------------------------------- */
/* Errors */

int tx_fail(store_tx *tx, int rc)
{
    int err;
    switch (rc) {
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
        err = CAIRN_E_NO_SPACE;
        break;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_BAD_DBI:
    case MDB_INCOMPATIBLE:
        err = CAIRN_E_CORRUPT;
        break;
    case MDB_VERSION_MISMATCH:
        err = CAIRN_E_STORE_VERSION;
        break;
    case ENOSPC:
    case EDQUOT:
        err = CAIRN_E_NO_DISK;
        break;
    case ENOMEM:
        err = CAIRN_E_NOMEM;
        break;
    case EIO:
    case EFBIG:
    case EROFS:
    case MDB_PANIC:
        err = CAIRN_E_IO;
        break;
    default:
        err = rc < 0 && rc > CAIRN_E__FIRST && rc < CAIRN_E__LAST ? rc : CAIRN_E_INTERNAL;
        if (rc > 0 && rc < 1000)
            err = CAIRN_E_IO; /* any other errno from the file system */
        break;
    }
    if (tx && tx->write && !tx->poison)
        tx->poison = err;
    return err;
}

int tx_check_write(const store_tx *tx)
{
    if (!tx->write)
        return CAIRN_E_INVALID_ARGUMENT;
    return tx->poison;
}

/* ---------------------------------------------------------------------------------------------- */
/* Persisted state */

static int state_read(store_tx *tx)
{
    MDB_val k = {sizeof state_key - 1, (void *)state_key}, v;
    int rc = mdb_get(tx->txn, tx->st->main, &k, &v);
    if (rc == MDB_NOTFOUND)
        return CAIRN_E_CORRUPT;
    if (rc)
        return tx_fail(tx, rc);
    if (v.mv_size != STATE_SIZE)
        return CAIRN_E_CORRUPT;
    const uint8_t *p = v.mv_data;
    tx->rev = le64_get(p);
    tx->ci = (uint64_t)le64_get(p + 8);
    tx->compact_rev = le64_get(p + 16);
    tx->compact_done_main = le64_get(p + 24);
    tx->compact_done_sub = le64_get(p + 32);
    if (tx->rev < 1 || tx->compact_rev < -1 || tx->compact_rev > tx->rev)
        return CAIRN_E_CORRUPT;
    return 0;
}

static int state_write(store_tx *tx)
{
    uint8_t buf[STATE_SIZE];
    le64_put(buf, tx->rev);
    le64_put(buf + 8, (int64_t)tx->ci);
    le64_put(buf + 16, tx->compact_rev);
    le64_put(buf + 24, tx->compact_done_main);
    le64_put(buf + 32, tx->compact_done_sub);
    MDB_val k = {sizeof state_key - 1, (void *)state_key}, v = {sizeof buf, buf};
    int rc = mdb_put(tx->txn, tx->st->main, &k, &v, 0);
    return rc ? tx_fail(tx, rc) : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Opening */

#define INSTALL_FILE "install.tmp" /* another store's copy, while store_install() writes it */

/* The directory may hold only what a store puts there; anything else means it is someone else's. */
static int check_dir_contents(const char *dir, bool *has_data)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOTDIR ? CAIRN_E_NOT_STORE : CAIRN_E_IO;
    *has_data = false;
    int err = 0;
    for (struct dirent *e; (e = readdir(d));) {
        const char *n = e->d_name;
        if (!strcmp(n, ".") || !strcmp(n, ".."))
            continue;
        if (!strcmp(n, "data.mdb"))
            *has_data = true;
        else if (strcmp(n, "lock.mdb") && strcmp(n, "cairn.lock") && strcmp(n, INSTALL_FILE))
            err = CAIRN_E_NOT_STORE;
    }
    closedir(d);
    return err;
}

static int mkdir_p(const char *dir)
{
    char path[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof path)
        return CAIRN_E_INVALID_ARGUMENT;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(path, 0700) && errno != EEXIST)
            return CAIRN_E_IO;
        *p = '/';
    }
    if (mkdir(path, 0700) && errno != EEXIST)
        return CAIRN_E_IO;
    return 0;
}

static int lock_dir(const char *dir, int *fd_out)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/cairn.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == ENOSPC ? CAIRN_E_NO_DISK : CAIRN_E_IO;
    if (flock(fd, LOCK_EX | LOCK_NB)) {
        int e = errno;
        close(fd);
        return e == EWOULDBLOCK ? CAIRN_E_LOCKED : CAIRN_E_IO;
    }
    *fd_out = fd;
    return 0;
}

static void fill_defaults(struct store_options *o, const struct store_options *in)
{
    if (in)
        *o = *in;
    else
        memset(o, 0, sizeof *o);
    if (!o->quota_bytes)
        o->quota_bytes = STORE_DEFAULT_QUOTA_BYTES;
    if (!o->max_txn_ops)
        o->max_txn_ops = STORE_DEFAULT_MAX_TXN_OPS;
    if (!o->compact_batch)
        o->compact_batch = STORE_DEFAULT_COMPACT_BATCH;
    if (!o->map_bytes) {
        /* The quota is the real limit; the map leaves room above it so that deletes and compaction
         * still work when the quota is reached. It is address space only, not memory. */
        uint64_t m = o->quota_bytes * 2;
        /* Without its own check, writes that passed the caller's check together can overshoot
         * the quota by a batch of maximal requests: more room, still only address space. */
        if (o->quota_by_caller)
            m += 4ull << 30;
        o->map_bytes = m < (256ull << 20) ? (256ull << 20) : m;
    }
}

/* A file shorter than the pages its meta page claims would fault (SIGBUS) when read: refuse it. */
static int check_file_size(store *st)
{
    MDB_envinfo info;
    int fd;
    struct stat s;
    if (mdb_env_info(st->env, &info) || mdb_env_get_fd(st->env, &fd) || fstat(fd, &s))
        return CAIRN_E_IO;
    if ((uint64_t)s.st_size < ((uint64_t)info.me_last_pgno + 1) * st->psize)
        return CAIRN_E_CORRUPT;
    return 0;
}

static int open_tables(store *st, bool create)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->env, NULL, 0, &txn);
    if (rc)
        return tx_fail(NULL, rc);
    unsigned c = create ? MDB_CREATE : 0;
    rc = mdb_dbi_open(txn, NULL, 0, &st->main);
    if (!rc)
        rc = mdb_dbi_open(txn, "meta", c, &st->meta);
    if (rc == MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return CAIRN_E_NOT_STORE; /* an LMDB file, but not ours */
    }
    if (!rc)
        rc = mdb_dbi_open(txn, "kv", c, &st->kv);
    if (!rc)
        rc = mdb_dbi_open(txn, "hist", c, &st->hist);
    if (!rc)
        rc = mdb_dbi_open(txn, "lease", c, &st->lease);
    if (!rc)
        rc = mdb_dbi_open(txn, "lkeys", c | MDB_DUPSORT, &st->lkeys);
    if (!rc)
        rc = mdb_dbi_open(txn, "alarm", c, &st->alarm);
    if (!rc) /* added during format 1: created if absent, so that such a store reaches the
              * version check below */
        rc = mdb_dbi_open(txn, "member", MDB_CREATE, &st->member);
    if (!rc) /* likewise */
        rc = mdb_dbi_open(txn, "reqs", MDB_CREATE, &st->reqs);
    if (!rc)
        rc = mdb_dbi_open(txn, "reqlog", MDB_CREATE, &st->reqlog);
    if (rc) {
        mdb_txn_abort(txn);
        return rc == MDB_NOTFOUND ? CAIRN_E_CORRUPT : tx_fail(NULL, rc);
    }

    uint8_t fmt[sizeof FORMAT_MAGIC + 4];
    memcpy(fmt, FORMAT_MAGIC, sizeof FORMAT_MAGIC);
    fmt[sizeof FORMAT_MAGIC] = FORMAT_VERSION;
    fmt[sizeof FORMAT_MAGIC + 1] = fmt[sizeof FORMAT_MAGIC + 2] = fmt[sizeof FORMAT_MAGIC + 3] = 0;
    MDB_val fk = {sizeof format_key - 1, (void *)format_key}, fv;
    if (create) {
        store_tx tx = {.st = st, .txn = txn, .write = true, .rev = 1, .compact_rev = -1};
        fv.mv_size = sizeof fmt;
        fv.mv_data = fmt;
        rc = mdb_put(txn, st->meta, &fk, &fv, 0);
        int err = rc ? tx_fail(NULL, rc) : state_write(&tx);
        if (err) {
            mdb_txn_abort(txn);
            return err;
        }
    } else {
        rc = mdb_get(txn, st->meta, &fk, &fv);
        int err = 0;
        if (rc)
            err = rc == MDB_NOTFOUND ? CAIRN_E_NOT_STORE : tx_fail(NULL, rc);
        else if (fv.mv_size != sizeof fmt || memcmp(fv.mv_data, FORMAT_MAGIC, sizeof FORMAT_MAGIC))
            err = CAIRN_E_NOT_STORE;
        else if (memcmp(fv.mv_data, fmt, sizeof fmt))
            err = CAIRN_E_STORE_VERSION;
        if (!err) {
            store_tx tx = {.st = st, .txn = txn};
            err = state_read(&tx);
        }
        if (err) {
            mdb_txn_abort(txn);
            return err;
        }
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        return tx_fail(NULL, rc);
    if (create && !st->o.nosync && mdb_env_sync(st->env, 1))
        return CAIRN_E_IO;
    return 0;
}

/* Opens LMDB's environment in st->dir and its tables (creating them when !has_data). */
static int env_open(store *st, bool has_data)
{
    int rc = mdb_env_create(&st->env);
    if (!rc)
        rc = mdb_env_set_maxdbs(st->env, 16);
    if (!rc)
        rc = mdb_env_set_maxreaders(st->env, 1024);
    if (!rc)
        rc = mdb_env_set_mapsize(st->env, (size_t)st->o.map_bytes);
    if (rc)
        return tx_fail(NULL, rc);
    unsigned flags = MDB_NOTLS | MDB_NOMETASYNC | (st->o.nosync ? MDB_NOSYNC : 0);
    rc = mdb_env_open(st->env, st->dir, flags, 0600);
    if (rc)
        return rc == MDB_INVALID ? CAIRN_E_CORRUPT : tx_fail(NULL, rc);
    MDB_stat ms;
    mdb_env_stat(st->env, &ms);
    st->psize = ms.ms_psize;
    int dead;
    mdb_reader_check(st->env, &dead); /* clear reader slots of crashed processes */
    int err = has_data ? check_file_size(st) : 0;
    if (!err)
        err = open_tables(st, !has_data);
    return err;
}

int store_open(const char *dir, const struct store_options *opts, store **out)
{
    *out = NULL;
    if (!dir || !*dir)
        return CAIRN_E_INVALID_ARGUMENT;
    int err = mkdir_p(dir);
    if (err)
        return err;
    bool has_data;
    err = check_dir_contents(dir, &has_data);
    if (err)
        return err;

    store *st = calloc(1, sizeof *st);
    if (!st)
        return CAIRN_E_NOMEM;
    st->lock_fd = -1;
    pthread_mutex_init(&st->spare_mu, NULL);
    fill_defaults(&st->o, opts);
    err = lock_dir(dir, &st->lock_fd);
    if (err)
        goto fail;

    if (has_data) {
        char path[4200];
        struct stat s;
        snprintf(path, sizeof path, "%s/data.mdb", dir);
        if (stat(path, &s) == 0 && s.st_size == 0)
            has_data = false; /* created but never committed: a fresh store */
        else if (stat(path, &s) == 0 && !S_ISREG(s.st_mode)) {
            err = CAIRN_E_NOT_STORE;
            goto fail;
        }
    }

    snprintf(st->dir, sizeof st->dir, "%s", dir);
    char leftover[4200];
    snprintf(leftover, sizeof leftover, "%s/%s", dir, INSTALL_FILE);
    unlink(leftover); /* an install that did not finish: the old data is still in place */
    if ((err = env_open(st, has_data)))
        goto fail;
    *out = st;
    return 0;

fail:
    store_close(st);
    return err;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return errno == ENOSPC ? CAIRN_E_NO_DISK : CAIRN_E_IO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int store_copy(store *st, int fd)
{
    int rc = mdb_env_copyfd2(st->env, fd, MDB_CP_COMPACT);
    return rc ? tx_fail(NULL, rc) : 0;
}

int store_copy_tmpfile(store *st, int *fd)
{
    *fd = open(st->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (*fd < 0)
        return errno == ENOSPC ? CAIRN_E_NO_DISK : CAIRN_E_IO;
    int err = store_copy(st, *fd);
    if (err) {
        close(*fd);
        *fd = -1;
    }
    return err;
}

struct store_install {
    store *st;
    int fd;         /* INSTALL_FILE, being written */
    char tmp[4200]; /* its path */
};

int store_install_begin(store *st, struct store_install **out)
{
    *out = NULL;
    if (st->wtx)
        return CAIRN_E_INVALID_ARGUMENT;
    struct store_install *in = calloc(1, sizeof *in);
    if (!in)
        return CAIRN_E_NOMEM;
    in->st = st;
    snprintf(in->tmp, sizeof in->tmp, "%s/%s", st->dir, INSTALL_FILE);
    in->fd = open(in->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (in->fd < 0) {
        int err = errno == ENOSPC ? CAIRN_E_NO_DISK : CAIRN_E_IO;
        free(in);
        return err;
    }
    *out = in;
    return 0;
}

int store_install_write(struct store_install *in, const void *data, size_t len)
{
    return write_all(in->fd, data, len);
}

void store_install_abort(struct store_install *in)
{
    if (!in)
        return;
    close(in->fd);
    unlink(in->tmp);
    free(in);
}

int store_install_finish(struct store_install *in)
{
    store *st = in->st;
    if (st->wtx) {
        store_install_abort(in);
        return CAIRN_E_INVALID_ARGUMENT;
    }
    int err = fdatasync(in->fd) ? CAIRN_E_IO : 0;
    if (err) {
        store_install_abort(in);
        return err;
    }
    close(in->fd);
    in->fd = -1;
    /* the copy is durable: swap it in for the data file, then open it in the same struct */
    char path[4200];
    snprintf(path, sizeof path, "%s/data.mdb", st->dir);
    if (st->spare) {
        mdb_txn_abort(st->spare->txn);
        free(st->spare);
        st->spare = NULL;
    }
    mdb_env_close(st->env);
    st->env = NULL;
    if (rename(in->tmp, path)) {
        unlink(in->tmp);
        free(in);
        st->failed = CAIRN_E_IO;
        return CAIRN_E_IO;
    }
    free(in);
    int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    err = env_open(st, true);
    if (err)
        st->failed = err;
    return err;
}

int store_install(store *st, const void *data, size_t len)
{
    struct store_install *in;
    int err = store_install_begin(st, &in);
    if (err)
        return err;
    if ((err = store_install_write(in, data, len))) {
        store_install_abort(in);
        return err;
    }
    return store_install_finish(in);
}

void store_close(store *st)
{
    if (!st)
        return;
    if (st->spare) {
        mdb_txn_abort(st->spare->txn);
        free(st->spare);
    }
    if (st->env)
        mdb_env_close(st->env);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    pthread_mutex_destroy(&st->spare_mu);
    free(st);
}

/* ---------------------------------------------------------------------------------------------- */
/* Transactions */

static uint64_t committed_bytes(store *st)
{
    MDB_envinfo info;
    if (mdb_env_info(st->env, &info))
        return 0;
    return ((uint64_t)info.me_last_pgno + 1) * st->psize;
}

int store_tx_begin_read(store *st, store_tx **out)
{
    if (st->failed)
        return st->failed;
    store_tx *tx = NULL;
    pthread_mutex_lock(&st->spare_mu);
    tx = st->spare;
    st->spare = NULL;
    pthread_mutex_unlock(&st->spare_mu);
    int rc;
    if (tx) {
        rc = mdb_txn_renew(tx->txn);
        if (rc) {
            mdb_txn_abort(tx->txn);
            free(tx);
            tx = NULL;
        }
    }
    if (!tx) {
        tx = calloc(1, sizeof *tx);
        if (!tx)
            return CAIRN_E_NOMEM;
        rc = mdb_txn_begin(st->env, NULL, MDB_RDONLY, &tx->txn);
        if (rc) {
            free(tx);
            return tx_fail(NULL, rc);
        }
    }
    tx->st = st;
    tx->write = false;
    tx->poison = 0;
    tx->changes = 0;
    int err = state_read(tx);
    if (err) {
        store_tx_end(tx);
        return err;
    }
    *out = tx;
    return 0;
}

int store_tx_begin_write(store *st, store_tx **out)
{
    if (st->failed)
        return st->failed;
    if (st->wtx)
        return CAIRN_E_INVALID_ARGUMENT; /* one writer at a time */
    store_tx *tx = calloc(1, sizeof *tx);
    if (!tx)
        return CAIRN_E_NOMEM;
    tx->st = st;
    tx->write = true;
    int rc = mdb_txn_begin(st->env, NULL, 0, &tx->txn);
    if (rc) {
        free(tx);
        return tx_fail(NULL, rc);
    }
    int err = state_read(tx);
    if (err) {
        mdb_txn_abort(tx->txn);
        free(tx);
        return err;
    }
    tx->base_bytes = committed_bytes(st);
    st->wtx = tx;
    *out = tx;
    return 0;
}

int store_tx_begin_view(store *st, store_tx **out)
{
    store_tx *w = st->wtx;
    if (!w)
        return store_tx_begin_read(st, out);
    if (w->poison)
        return w->poison;
    store_tx *tx = malloc(sizeof *tx);
    if (!tx)
        return CAIRN_E_NOMEM;
    *tx = *w; /* the state as applied so far, and the same LMDB transaction */
    tx->write = false;
    tx->view = true;
    tx->changes = 0;
    tx->pending_bytes = 0;
    tx->meta_dirty = false;
    *out = tx;
    return 0;
}

void store_tx_end(store_tx *tx)
{
    if (!tx)
        return;
    store *st = tx->st;
    if (tx->view) {
        free(tx); /* the LMDB transaction belongs to the write transaction */
        return;
    }
    if (tx->write) {
        mdb_txn_abort(tx->txn);
        st->wtx = NULL;
        free(tx);
        return;
    }
    mdb_txn_reset(tx->txn);
    pthread_mutex_lock(&st->spare_mu);
    if (!st->spare) {
        st->spare = tx;
        tx = NULL;
    }
    pthread_mutex_unlock(&st->spare_mu);
    if (tx) {
        mdb_txn_abort(tx->txn);
        free(tx);
    }
}

/* LMDB reports a short write on a full file system as EIO: tell the two apart by the free space. */
static int commit_error(store *st, int rc)
{
    int fd;
    struct statvfs v;
    if (rc == EIO && mdb_env_get_fd(st->env, &fd) == 0 && fstatvfs(fd, &v) == 0 &&
        (uint64_t)v.f_bavail * v.f_frsize < 16 * (uint64_t)st->psize)
        return CAIRN_E_NO_DISK;
    return tx_fail(NULL, rc);
}

int store_tx_commit(store_tx *tx, bool durable)
{
    if (!tx->write) {
        store_tx_end(tx);
        return CAIRN_E_INVALID_ARGUMENT;
    }
    store *st = tx->st;
    int err = tx->poison;
    if (!err && tx->meta_dirty)
        err = state_write(tx);
    if (err) {
        store_tx_end(tx);
        return err;
    }
    int rc = mdb_txn_commit(tx->txn);
    st->wtx = NULL;
    free(tx);
    if (rc)
        return commit_error(st, rc);
    if (durable && !st->o.nosync && (rc = mdb_env_sync(st->env, 1))) {
        /* The commit is visible but its flush failed: whether it survives a crash is unknown, and
         * the page cache can no longer be trusted to reach the disk. Refuse all further work; the
         * owner must stop (etcd panics on a failed fsync). */
        st->failed = CAIRN_E_IO;
        return CAIRN_E_IO;
    }
    return 0;
}

int64_t store_tx_rev(const store_tx *tx)
{
    return tx->rev;
}
int64_t store_tx_compact_rev(const store_tx *tx)
{
    return tx->compact_rev;
}
int meta_get_u64(store_tx *tx, const char *key, uint64_t *value)
{
    *value = 0;
    if (tx->poison)
        return tx->poison;
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(tx->txn, tx->st->meta, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return tx_fail(tx, rc);
    if (v.mv_size != 8)
        return CAIRN_E_CORRUPT;
    *value = (uint64_t)le64_get(v.mv_data);
    return 0;
}

int meta_put_u64(store_tx *tx, const char *key, uint64_t value)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    uint8_t b[8];
    le64_put(b, (int64_t)value);
    MDB_val k = {strlen(key), (void *)key}, v = {sizeof b, b};
    int rc = mdb_put(tx->txn, tx->st->meta, &k, &v, 0);
    return rc ? tx_fail(tx, rc) : 0;
}

int store_tx_cluster_id(store_tx *tx, uint64_t *id)
{
    return meta_get_u64(tx, "cluster", id);
}

int store_tx_set_cluster_id(store_tx *tx, uint64_t id)
{
    return meta_put_u64(tx, "cluster", id);
}

uint64_t store_tx_consistent_index(const store_tx *tx)
{
    return tx->ci;
}

int store_tx_set_consistent_index(store_tx *tx, uint64_t index)
{
    int err = tx_check_write(tx);
    if (err)
        return err;
    if (index < tx->ci)
        return CAIRN_E_INVALID_ARGUMENT;
    tx->ci = index;
    tx->meta_dirty = true;
    return 0;
}

int tx_out_bytes(const store_tx *tx, struct arena *a, store_bytes in, store_bytes *out)
{
    if ((!tx->write && !tx->view) || in.len == 0) {
        *out = in;
        return 0;
    }
    void *p = arena_dup(a, in.data, in.len);
    if (!p)
        return CAIRN_E_NOMEM;
    out->data = p;
    out->len = in.len;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Quota and sizes */

bool store_quota_fits(store *st, uint64_t cost)
{
    /* an open write transaction holds applied requests the committed size does not count yet */
    uint64_t used = st->wtx ? st->wtx->base_bytes + st->wtx->pending_bytes : committed_bytes(st);
    return cost == 0 || used + cost < st->o.quota_bytes;
}

int quota_charge(store_tx *tx, uint64_t cost)
{
    if (cost == 0 || tx->st->o.quota_by_caller)
        return 0;
    if (tx->base_bytes + tx->pending_bytes + cost >= tx->st->o.quota_bytes)
        return CAIRN_E_NO_SPACE;
    tx->pending_bytes += cost;
    return 0;
}

/* Pages on LMDB's free list: each record of the free DB is a page list whose first word counts. */
static int free_pages(store_tx *tx, uint64_t *n)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, 0, &c);
    if (rc)
        return tx_fail(tx, rc);
    MDB_val k, v;
    *n = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size >= sizeof(size_t))
            *n += *(const size_t *)v.mv_data;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : tx_fail(tx, rc);
}

int store_size(store_tx *tx, struct store_size *out)
{
    store *st = tx->st;
    MDB_envinfo info;
    int fd;
    struct stat s;
    if (mdb_env_info(st->env, &info) || mdb_env_get_fd(st->env, &fd) || fstat(fd, &s))
        return CAIRN_E_IO;
    uint64_t nfree = 0;
    int err;
    if (tx->write || tx->view) {
        /* LMDB keeps its free list out of reach of write transactions: count the committed one */
        store_tx *r;
        if ((err = store_tx_begin_read(st, &r)))
            return err;
        err = free_pages(r, &nfree);
        store_tx_end(r);
    } else {
        err = free_pages(tx, &nfree);
    }
    if (err)
        return err;
    uint64_t used_pages = (uint64_t)info.me_last_pgno + 1;
    out->file_bytes = (uint64_t)s.st_size;
    out->in_use_bytes = (used_pages > nfree ? used_pages - nfree : 0) * st->psize;
    out->quota_bytes = st->o.quota_bytes;
    return 0;
}
