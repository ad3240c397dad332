/* store/env.c — opening and closing the store, its transactions, and the persisted state.
 *
 * The data directory holds two LMDB environments and our cairn.lock (an exclusive flock, so two
 * processes never open the same store): data.mdb (with lock.mdb) has every table but the history,
 * history.mdb (with history.mdb-lock) the history alone. Their "meta" tables identify them as a
 * cairn store and as halves of the same one (the "pair" record, random at creation). The state that
 * must move atomically with the data — current revision, consistent index and compaction progress —
 * is the "state" record of data.mdb's main table, rewritten in the same transaction as the changes
 * it describes. The main table holds the named tables' roots, so every commit rewrites its page
 * anyway: keeping the state there costs no extra page per commit.
 *
 * Why two files: LMDB reads every page through its map, and a commit rewrites each page it changes
 * into a free page somewhere in the file. Puts to scattered keys rewrite most of the key table at
 * every commit; in one file those copies land in pages all over it, the history's new pages then
 * take those pages over, and after a while the process has mapped nearly the whole file. With the
 * history alone in its file, its free list holds only its own right edge: new history pages come
 * from the file's end, are written and never read again unless a read asks for them.
 *
 * A store transaction is a transaction on each file. A commit keeps them in step so that no crash
 * leaves a state the two cannot be brought back to:
 * - history.mdb commits first and is made durable, then data.mdb commits. After a crash the
 *   history may hold records above data.mdb's revision, never fewer: opening deletes them (they
 *   belong to a commit data.mdb lost, which the raft log applies again).
 * - Compaction's removals from the history wait until data.mdb's record of the compaction's
 *   progress is durable; history.mdb's "removed" record says how far they have got. Opening
 *   finishes removals that a crash interrupted, from the records themselves.
 * - A commit holds pair_mu while it changes the two files, and a read transaction while it opens
 *   its two halves, so that a reader sees halves of the same commit. */
#include "store/internal.h"
#include "store/record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define FORMAT_MAGIC   "cairn-store"
/* 3: the history in history.mdb (2 held it in data.mdb, 1 also held values in the key table; both
 * refused as CAIRN_E_STORE_VERSION) */
#define FORMAT_VERSION 3
#define STATE_SIZE     40

static const char format_key[] = "format";
static const char state_key[] = "state";
static const char pair_key[] = "pair";       /* both files: 16 random bytes, equal in a store */
static const char removed_key[] = "removed"; /* history.mdb: compaction removals done up to */
#define PAIR_SIZE 16

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

#define HIST_FILE    "history.mdb"
#define HIST_LOCK    "history.mdb-lock"
#define INSTALL_FILE "install.tmp" /* another store's copy, while store_install() writes it */
#define INSTALL_HIST "install-history.tmp" /* the history half of that copy */

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
        else if (strcmp(n, "lock.mdb") && strcmp(n, "cairn.lock") && strcmp(n, INSTALL_FILE) &&
                 strcmp(n, HIST_FILE) && strcmp(n, HIST_LOCK) && strcmp(n, INSTALL_HIST))
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
static int check_file_size(MDB_env *env, size_t psize)
{
    MDB_envinfo info;
    int fd;
    struct stat s;
    if (mdb_env_info(env, &info) || mdb_env_get_fd(env, &fd) || fstat(fd, &s))
        return CAIRN_E_IO;
    if ((uint64_t)s.st_size < ((uint64_t)info.me_last_pgno + 1) * psize)
        return CAIRN_E_CORRUPT;
    return 0;
}

static void format_bytes(uint8_t fmt[sizeof FORMAT_MAGIC + 4])
{
    memcpy(fmt, FORMAT_MAGIC, sizeof FORMAT_MAGIC);
    fmt[sizeof FORMAT_MAGIC] = FORMAT_VERSION;
    fmt[sizeof FORMAT_MAGIC + 1] = fmt[sizeof FORMAT_MAGIC + 2] = fmt[sizeof FORMAT_MAGIC + 3] = 0;
}

static int put_record(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *data, size_t len)
{
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)data};
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    return rc ? tx_fail(NULL, rc) : 0;
}

/* A fixed-size record: 0, ST_ABSENT, or CAIRN_E_CORRUPT when its size is not len. */
static int get_record(MDB_txn *txn, MDB_dbi dbi, const char *key, void *data, size_t len)
{
    MDB_val k = {strlen(key), (void *)key}, v;
    int rc = mdb_get(txn, dbi, &k, &v);
    if (rc == MDB_NOTFOUND)
        return ST_ABSENT;
    if (rc)
        return tx_fail(NULL, rc);
    if (v.mv_size != len)
        return CAIRN_E_CORRUPT;
    memcpy(data, v.mv_data, len);
    return 0;
}

/* data.mdb's tables; a new store gets its format and pair records and a first state. */
static int open_main(store *st, bool create, const uint8_t pair[PAIR_SIZE], store_tx *state)
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

    uint8_t fmt[sizeof FORMAT_MAGIC + 4], got[sizeof fmt];
    format_bytes(fmt);
    int err;
    *state = (store_tx){.st = st, .txn = txn, .write = true, .rev = 1, .compact_rev = -1};
    if (create) {
        err = put_record(txn, st->meta, format_key, fmt, sizeof fmt);
        if (!err)
            err = put_record(txn, st->meta, pair_key, pair, PAIR_SIZE);
        if (!err)
            err = state_write(state);
    } else {
        err = get_record(txn, st->meta, format_key, got, sizeof got);
        if (err == ST_ABSENT || err == CAIRN_E_CORRUPT ||
            (!err && memcmp(got, FORMAT_MAGIC, sizeof FORMAT_MAGIC)))
            err = CAIRN_E_NOT_STORE;
        else if (!err && memcmp(got, fmt, sizeof fmt))
            err = CAIRN_E_STORE_VERSION;
        if (!err && (err = get_record(txn, st->meta, pair_key, (void *)pair, PAIR_SIZE)) > 0)
            err = CAIRN_E_CORRUPT;
        if (!err)
            err = state_read(state);
    }
    if (err) {
        mdb_txn_abort(txn);
        return err;
    }
    state->txn = NULL;
    rc = mdb_txn_commit(txn);
    if (rc)
        return tx_fail(NULL, rc);
    if (create && !st->o.nosync && mdb_env_sync(st->env, 1))
        return CAIRN_E_IO;
    return 0;
}

/* Removals of the compaction pass between history.mdb's "removed" record and data.mdb's progress:
 * each change in that range makes its predecessor removable, a tombstone itself (the key table's
 * side of it, in data.mdb, is done). The same rule as store_compact_step(), from the records. */
static int finish_removals(store *st, MDB_txn *h, const store_tx *state, bool *changed)
{
    uint8_t done[REV_KEY_SIZE];
    int err = get_record(h, st->hmeta, removed_key, done, sizeof done);
    int64_t dmain = 0, dsub = 0;
    if (err == ST_ABSENT)
        err = 0;
    else if (!err)
        err = rev_decode(done, sizeof done, &dmain, &dsub);
    if (err)
        return err;
    int64_t pmain = state->compact_done_main, psub = state->compact_done_sub;
    if (dmain > pmain || (dmain == pmain && dsub > psub))
        return CAIRN_E_CORRUPT; /* removals beyond what data.mdb recorded: never written so */
    if (dmain == pmain && dsub == psub)
        return 0;
    store_tx tx = {.st = st, .htxn = h, .write = true};
    MDB_cursor *c;
    int rc = mdb_cursor_open(h, st->hist, &c);
    if (rc)
        return tx_fail(NULL, rc);
    uint8_t start[REV_KEY_SIZE];
    rev_encode(start, dmain, dsub + 1);
    MDB_val k = {sizeof start, start}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        int64_t main, sub;
        struct hist_rec r;
        if ((err = rev_decode(k.mv_data, k.mv_size, &main, &sub)) ||
            (err = hist_rec_decode(v.mv_data, v.mv_size, &r)))
            break;
        if (main > pmain || (main == pmain && sub > psub))
            break;
        if ((err = removals_of_change(&tx, k.mv_data, &r)))
            break;
    }
    mdb_cursor_close(c);
    if (!err && rc && rc != MDB_NOTFOUND)
        err = tx_fail(NULL, rc);
    for (size_t i = 0; i < tx.rm.n && !err; i++) {
        MDB_val dk = {REV_KEY_SIZE, tx.rm.rev[i]};
        rc = mdb_del(h, st->hist, &dk, NULL);
        if (rc && rc != MDB_NOTFOUND)
            err = tx_fail(NULL, rc);
    }
    free(tx.rm.rev);
    if (!err) {
        rev_encode(done, pmain, psub);
        err = put_record(h, st->hmeta, removed_key, done, sizeof done);
    }
    *changed = true;
    return err;
}

/* Deletes the history records above revision rev (in h, a write transaction on history.mdb). */
static int hist_trim(store *st, MDB_txn *h, int64_t rev, bool *changed)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(h, st->hist, &cur);
    if (rc)
        return tx_fail(NULL, rc);
    int err = 0;
    MDB_val k, v;
    while (!err && (rc = mdb_cursor_get(cur, &k, &v, MDB_LAST)) == 0) {
        int64_t main, sub;
        if ((err = rev_decode(k.mv_data, k.mv_size, &main, &sub)) || main <= rev)
            break;
        if ((rc = mdb_cursor_del(cur, 0)))
            err = tx_fail(NULL, rc);
        *changed = true;
    }
    if (!err && rc && rc != MDB_NOTFOUND)
        err = tx_fail(NULL, rc);
    mdb_cursor_close(cur);
    return err;
}

/* history.mdb's tables, checked against data.mdb's pair, then brought back in step with data.mdb:
 * records above its revision go, interrupted removals are finished. */
static int open_hist(store *st, bool create, const uint8_t pair[PAIR_SIZE], const store_tx *state)
{
    MDB_txn *h;
    int rc = mdb_txn_begin(st->henv, NULL, 0, &h);
    if (rc)
        return tx_fail(NULL, rc);
    unsigned c = create ? MDB_CREATE : 0;
    rc = mdb_dbi_open(h, "meta", c, &st->hmeta);
    if (!rc)
        rc = mdb_dbi_open(h, "hist", c, &st->hist);
    if (rc) {
        mdb_txn_abort(h);
        return rc == MDB_NOTFOUND ? CAIRN_E_CORRUPT : tx_fail(NULL, rc);
    }
    uint8_t fmt[sizeof FORMAT_MAGIC + 4], got[sizeof fmt], hpair[PAIR_SIZE];
    format_bytes(fmt);
    int err = 0;
    bool changed = create;
    if (create) {
        err = put_record(h, st->hmeta, format_key, fmt, sizeof fmt);
        if (!err)
            err = put_record(h, st->hmeta, pair_key, pair, PAIR_SIZE);
    } else {
        if ((err = get_record(h, st->hmeta, format_key, got, sizeof got)) > 0 ||
            (!err && memcmp(got, fmt, sizeof fmt)))
            err = CAIRN_E_CORRUPT;
        if (!err && (err = get_record(h, st->hmeta, pair_key, hpair, sizeof hpair)) > 0)
            err = CAIRN_E_CORRUPT;
        if (!err && memcmp(hpair, pair, PAIR_SIZE))
            err = CAIRN_E_CORRUPT; /* another store's history */
    }
    if (!err && !create)
        err = hist_trim(st, h, state->rev, &changed); /* records of a commit data.mdb lost */
    if (!err && !create)
        err = finish_removals(st, h, state, &changed);
    if (err) {
        mdb_txn_abort(h);
        return err;
    }
    rc = mdb_txn_commit(h); /* also when nothing changed: an abort would close the handles */
    if (rc)
        return tx_fail(NULL, rc);
    if (changed && !st->o.nosync && mdb_env_sync(st->henv, 1))
        return CAIRN_E_IO;
    return 0;
}

static int env_new(MDB_env **env, const char *path, unsigned flags, const struct store_options *o)
{
    int rc = mdb_env_create(env);
    if (!rc)
        rc = mdb_env_set_maxdbs(*env, 16);
    if (!rc)
        rc = mdb_env_set_maxreaders(*env, 1024);
    if (!rc)
        rc = mdb_env_set_mapsize(*env, (size_t)o->map_bytes);
    if (rc)
        return tx_fail(NULL, rc);
    rc = mdb_env_open(*env, path, flags, 0600);
    if (rc)
        return rc == MDB_INVALID ? CAIRN_E_CORRUPT : tx_fail(NULL, rc);
    int dead;
    mdb_reader_check(*env, &dead); /* clear reader slots of crashed processes */
    return 0;
}

static void path_in(char *out, size_t n, const store *st, const char *name)
{
    snprintf(out, n, "%s/%s", st->dir, name);
}

static void sync_dir(const store *st)
{
    int dfd = open(st->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
}

/* Opens the store's two LMDB environments in st->dir and their tables (creating them when
 * !has_data). */
static int env_open(store *st, bool has_data)
{
    char hpath[4200];
    path_in(hpath, sizeof hpath, st, HIST_FILE);
    if (!has_data) {
        /* a history without data.mdb is left from a creation that did not finish */
        char lock[4200];
        path_in(lock, sizeof lock, st, HIST_LOCK);
        unlink(hpath);
        unlink(lock);
    }
    unsigned flags = MDB_NOTLS | MDB_NOMETASYNC | (st->o.nosync ? MDB_NOSYNC : 0);
    int err = env_new(&st->env, st->dir, flags, &st->o);
    if (err)
        return err;
    MDB_stat ms;
    mdb_env_stat(st->env, &ms);
    st->psize = ms.ms_psize;
    if (has_data && (err = check_file_size(st->env, st->psize)))
        return err;
    uint8_t pair[PAIR_SIZE];
    store_tx state;
    if (!has_data) {
        /* the history first: a creation cut short leaves no data.mdb that lacks its history */
        if (getrandom(pair, sizeof pair, 0) != (ssize_t)sizeof pair)
            return CAIRN_E_IO;
        if ((err = env_new(&st->henv, hpath, flags | MDB_NOSUBDIR, &st->o)) ||
            (err = open_hist(st, true, pair, NULL)))
            return err;
        return open_main(st, true, pair, &state);
    }
    if ((err = open_main(st, false, pair, &state)))
        return err;
    if (access(hpath, F_OK))
        return CAIRN_E_CORRUPT; /* data.mdb of this format without its history */
    if ((err = env_new(&st->henv, hpath, flags | MDB_NOSUBDIR, &st->o)) ||
        (err = check_file_size(st->henv, st->psize)))
        return err;
    return open_hist(st, false, pair, &state);
}

/* What an installation cut short by a crash left: before its swap, the old data is in place and
 * the copy goes; between its two renames (INSTALL_HIST without INSTALL_FILE), the swap is
 * finished. */
static int install_leftovers(store *st)
{
    char tmp[4200], htmp[4200], hpath[4200];
    path_in(tmp, sizeof tmp, st, INSTALL_FILE);
    path_in(htmp, sizeof htmp, st, INSTALL_HIST);
    path_in(hpath, sizeof hpath, st, HIST_FILE);
    if (access(htmp, F_OK) == 0 && access(tmp, F_OK)) {
        if (rename(htmp, hpath))
            return CAIRN_E_IO;
        sync_dir(st);
        return 0;
    }
    unlink(htmp);
    unlink(tmp);
    return 0;
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
    pthread_mutex_init(&st->pair_mu, NULL);
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
    if ((err = install_leftovers(st)))
        goto fail;
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

/* A copy (store_copy) is one stream: COPY_MAGIC, data.mdb's length (8 bytes little-endian), the
 * copy of data.mdb, then the copy of history.mdb to the end. */
#define COPY_MAGIC  "cairn-copy-3\0\0\0\0"
#define COPY_HEADER 24

static int copy_env(MDB_env *env, int fd)
{
    int rc = mdb_env_copyfd2(env, fd, MDB_CP_COMPACT);
    return rc ? tx_fail(NULL, rc) : 0;
}

int store_copy(store *st, int fd)
{
    uint8_t hdr[COPY_HEADER] = {0};
    memcpy(hdr, COPY_MAGIC, 16);
    off_t start = lseek(fd, 0, SEEK_CUR);
    if (start < 0)
        return CAIRN_E_INVALID_ARGUMENT; /* the header is filled in afterwards: seekable only */
    int err = write_all(fd, hdr, sizeof hdr);
    /* data.mdb first, then the history: the history's copy is of the same commit or a later one
     * (what is above data.mdb's revision goes when the copy is opened). Removals wait meanwhile:
     * the later history must not lack records that data.mdb's copy has not seen compacted. */
    __atomic_add_fetch(&st->copying, 1, __ATOMIC_SEQ_CST);
    if (!err)
        err = copy_env(st->env, fd);
    off_t mid = err ? 0 : lseek(fd, 0, SEEK_CUR);
    if (!err && mid < 0)
        err = CAIRN_E_IO;
    if (!err)
        err = copy_env(st->henv, fd);
    __atomic_sub_fetch(&st->copying, 1, __ATOMIC_SEQ_CST);
    if (!err) {
        le64_put(hdr + 16, (int64_t)(mid - start - COPY_HEADER));
        if (pwrite(fd, hdr, sizeof hdr, start) != (ssize_t)sizeof hdr)
            err = errno == ENOSPC ? CAIRN_E_NO_DISK : CAIRN_E_IO;
    }
    return err;
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
    int fd, hfd;                /* INSTALL_FILE and INSTALL_HIST, being written */
    uint8_t hdr[COPY_HEADER];   /* the copy's header, as it arrives */
    size_t got;                 /* bytes of the copy so far */
    uint64_t main_len;          /* data.mdb's length, from the header */
    char tmp[4200], htmp[4200]; /* their paths */
};

static int open_new(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return errno == ENOSPC ? CAIRN_E_NO_DISK : CAIRN_E_IO;
    return fd;
}

int store_install_begin(store *st, struct store_install **out)
{
    *out = NULL;
    if (st->wtx)
        return CAIRN_E_INVALID_ARGUMENT;
    struct store_install *in = calloc(1, sizeof *in);
    if (!in)
        return CAIRN_E_NOMEM;
    in->st = st;
    path_in(in->tmp, sizeof in->tmp, st, INSTALL_FILE);
    path_in(in->htmp, sizeof in->htmp, st, INSTALL_HIST);
    /* this order, and the reverse when removing them: INSTALL_HIST alone means the swap began */
    in->fd = open_new(in->tmp);
    in->hfd = in->fd < 0 ? -1 : open_new(in->htmp);
    if (in->hfd < 0) {
        int err = in->fd < 0 ? in->fd : in->hfd;
        if (in->fd >= 0) {
            close(in->fd);
            unlink(in->tmp);
        }
        free(in);
        return err;
    }
    *out = in;
    return 0;
}

int store_install_write(struct store_install *in, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len && in->got < COPY_HEADER) {
        in->hdr[in->got++] = *p++;
        len--;
        if (in->got == COPY_HEADER) {
            if (memcmp(in->hdr, COPY_MAGIC, 16))
                return CAIRN_E_INVALID_ARGUMENT; /* not a copy of a store of this format */
            in->main_len = (uint64_t)le64_get(in->hdr + 16);
        }
    }
    if (!len)
        return 0;
    uint64_t at = in->got - COPY_HEADER;
    size_t to_main =
        at < in->main_len ? (size_t)(in->main_len - at < len ? in->main_len - at : len) : 0;
    int err = to_main ? write_all(in->fd, p, to_main) : 0;
    if (!err && len > to_main)
        err = write_all(in->hfd, p + to_main, len - to_main);
    if (!err)
        in->got += len;
    return err;
}

void store_install_abort(struct store_install *in)
{
    if (!in)
        return;
    close(in->hfd);
    close(in->fd);
    unlink(in->htmp);
    unlink(in->tmp);
    free(in);
}

static void close_envs(store *st)
{
    if (st->spare) {
        mdb_txn_abort(st->spare->htxn);
        mdb_txn_abort(st->spare->txn);
        free(st->spare);
        st->spare = NULL;
    }
    if (st->henv)
        mdb_env_close(st->henv);
    if (st->env)
        mdb_env_close(st->env);
    st->henv = st->env = NULL;
    free(st->held.rev);
    memset(&st->held, 0, sizeof st->held);
    st->removals_dropped = false; /* the next open finishes what was dropped */
}

int store_install_finish(struct store_install *in)
{
    store *st = in->st;
    int err = 0;
    if (st->wtx)
        err = CAIRN_E_INVALID_ARGUMENT;
    else if (in->got < COPY_HEADER || in->got - COPY_HEADER <= in->main_len)
        err = CAIRN_E_INVALID_ARGUMENT; /* cut short */
    else if (fdatasync(in->fd) || fdatasync(in->hfd))
        err = CAIRN_E_IO;
    if (err) {
        store_install_abort(in);
        return err;
    }
    close(in->fd);
    close(in->hfd);
    in->fd = in->hfd = -1;
    /* the copy is durable: swap it in for the data files, then open it in the same struct. data.mdb
     * first; a crash before the history follows leaves INSTALL_HIST alone, and opening finishes. */
    char path[4200], hpath[4200];
    path_in(path, sizeof path, st, "data.mdb");
    path_in(hpath, sizeof hpath, st, HIST_FILE);
    close_envs(st);
    if (rename(in->tmp, path)) {
        store_install_abort(in);
        st->failed = CAIRN_E_IO;
        return CAIRN_E_IO;
    }
    sync_dir(st);
    err = rename(in->htmp, hpath) ? CAIRN_E_IO : 0;
    free(in);
    sync_dir(st);
    if (!err)
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
    close_envs(st);
    if (st->lock_fd >= 0)
        close(st->lock_fd);
    pthread_mutex_destroy(&st->spare_mu);
    pthread_mutex_destroy(&st->pair_mu);
    free(st);
}

/* ---------------------------------------------------------------------------------------------- */
/* Transactions */

static uint64_t env_bytes(MDB_env *env, size_t psize)
{
    MDB_envinfo info;
    if (mdb_env_info(env, &info))
        return 0;
    return ((uint64_t)info.me_last_pgno + 1) * psize;
}

static uint64_t committed_bytes(store *st)
{
    return env_bytes(st->env, st->psize) + env_bytes(st->henv, st->psize);
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
    int rc = 0;
    pthread_mutex_lock(&st->pair_mu);
    if (tx) {
        rc = mdb_txn_renew(tx->txn);
        if (!rc && (rc = mdb_txn_renew(tx->htxn)))
            mdb_txn_reset(tx->txn);
        if (rc) {
            mdb_txn_abort(tx->htxn);
            mdb_txn_abort(tx->txn);
            free(tx);
            tx = NULL;
        }
    }
    if (!tx) {
        tx = calloc(1, sizeof *tx);
        rc = tx ? mdb_txn_begin(st->env, NULL, MDB_RDONLY, &tx->txn) : ENOMEM;
        if (!rc && (rc = mdb_txn_begin(st->henv, NULL, MDB_RDONLY, &tx->htxn)))
            mdb_txn_abort(tx->txn);
        if (rc)
            free(tx);
    }
    pthread_mutex_unlock(&st->pair_mu);
    if (rc)
        return tx_fail(NULL, rc);
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
    if (!rc && (rc = mdb_txn_begin(st->henv, NULL, 0, &tx->htxn)))
        mdb_txn_abort(tx->txn);
    if (rc) {
        free(tx);
        return tx_fail(NULL, rc);
    }
    int err = state_read(tx);
    if (err) {
        mdb_txn_abort(tx->htxn);
        mdb_txn_abort(tx->txn);
        free(tx);
        return err;
    }
    tx->base_rev = tx->rev;
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
    *tx = *w; /* the state as applied so far, and the same LMDB transactions */
    tx->write = false;
    tx->view = true;
    tx->changes = 0;
    tx->pending_bytes = 0;
    tx->meta_dirty = false;
    memset(&tx->rm, 0, sizeof tx->rm);
    *out = tx;
    return 0;
}

void store_tx_end(store_tx *tx)
{
    if (!tx)
        return;
    store *st = tx->st;
    if (tx->view) {
        free(tx); /* the LMDB transactions belong to the write transaction */
        return;
    }
    if (tx->write) {
        mdb_txn_abort(tx->htxn);
        mdb_txn_abort(tx->txn);
        st->wtx = NULL;
        free(tx->rm.rev);
        free(tx);
        return;
    }
    mdb_txn_reset(tx->htxn);
    mdb_txn_reset(tx->txn);
    pthread_mutex_lock(&st->spare_mu);
    if (!st->spare) {
        st->spare = tx;
        tx = NULL;
    }
    pthread_mutex_unlock(&st->spare_mu);
    if (tx) {
        mdb_txn_abort(tx->htxn);
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

/* Moves tx's removals behind those held back (by a copy, or a failed removal). Out of memory, all
 * held removals are dropped and no more are held: the next open finishes them from the records. */
static void removals_hold(store *st, struct removals *rm)
{
    struct removals *h = &st->held;
    if (st->removals_dropped)
        return;
    if (!h->rev) {
        *h = *rm; /* the usual case: take the list over */
        memset(rm, 0, sizeof *rm);
        return;
    }
    if (h->n + rm->n > h->cap) {
        size_t cap = h->cap;
        while (cap < h->n + rm->n)
            cap *= 2;
        void *p = realloc(h->rev, cap * sizeof *h->rev);
        if (!p) {
            free(h->rev);
            memset(h, 0, sizeof *h);
            st->removals_dropped = true;
            return;
        }
        h->rev = p;
        h->cap = cap;
    }
    if (rm->n) /* (a step that removed nothing has no list) */
        memcpy(h->rev + h->n, rm->rev, rm->n * sizeof *rm->rev);
    h->n += rm->n;
    h->done_main = rm->done_main;
    h->done_sub = rm->done_sub;
}

/* Takes the held removals out of history.mdb and records how far they reach. Not made durable
 * here: after a crash, opening finishes them. On an error they stay held for the next commit. */
static int removals_apply(store *st)
{
    struct removals *h = &st->held;
    MDB_txn *txn;
    int rc = mdb_txn_begin(st->henv, NULL, 0, &txn);
    for (size_t i = 0; i < h->n && !rc; i++) {
        MDB_val k = {REV_KEY_SIZE, h->rev[i]};
        if ((rc = mdb_del(txn, st->hist, &k, NULL)) == MDB_NOTFOUND)
            rc = 0;
    }
    if (!rc) {
        uint8_t done[REV_KEY_SIZE];
        rev_encode(done, h->done_main, h->done_sub);
        MDB_val k = {sizeof removed_key - 1, (void *)removed_key}, v = {sizeof done, done};
        rc = mdb_put(txn, st->hmeta, &k, &v, 0);
    }
    if (rc) {
        mdb_txn_abort(txn);
        return tx_fail(NULL, rc);
    }
    if ((rc = mdb_txn_commit(txn)))
        return tx_fail(NULL, rc);
    h->n = 0;
    h->done_main = h->done_sub = 0;
    return 0;
}

/* Takes back what a commit added to history.mdb when data.mdb then refused its part, so the
 * history does not stay above data.mdb's revision (rev). */
static int hist_take_back(store *st, int64_t rev)
{
    MDB_txn *h;
    bool changed = false;
    int rc = mdb_txn_begin(st->henv, NULL, 0, &h);
    if (rc)
        return tx_fail(NULL, rc);
    int err = hist_trim(st, h, rev, &changed);
    if (err) {
        mdb_txn_abort(h);
        return err;
    }
    if ((rc = mdb_txn_commit(h)))
        return tx_fail(NULL, rc);
    if (changed && !st->o.nosync && mdb_env_sync(st->henv, 1))
        return CAIRN_E_IO;
    return 0;
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
    bool stepped = tx->rm.done_main > 0; /* a compaction step ran: removals to make */
    /* history.mdb first, durable before data.mdb's commit can be (see the top of this file) */
    pthread_mutex_lock(&st->pair_mu);
    int rc = mdb_txn_commit(tx->htxn);
    bool hist_lost = rc == 0 && !st->o.nosync && mdb_env_sync(st->henv, 1) != 0;
    if (rc || hist_lost) {
        mdb_txn_abort(tx->txn);
    } else if ((rc = mdb_txn_commit(tx->txn)) && hist_take_back(st, tx->base_rev)) {
        hist_lost = true; /* data.mdb refused the commit, and its history cannot be taken back */
    }
    pthread_mutex_unlock(&st->pair_mu);
    st->wtx = NULL;
    if (stepped && !rc && !hist_lost)
        removals_hold(st, &tx->rm);
    free(tx->rm.rev);
    free(tx);
    if (hist_lost) {
        /* The history's commit is visible but its flush (or its taking back) failed: whether it
         * survives a crash is unknown, and the page cache can no longer be trusted to reach the
         * disk. Refuse all further work; the owner must stop (etcd panics on a failed fsync). */
        st->failed = CAIRN_E_IO;
        return CAIRN_E_IO;
    }
    if (rc)
        return commit_error(st, rc);
    if ((durable || st->held.done_main) && !st->o.nosync && mdb_env_sync(st->env, 1)) {
        st->failed = CAIRN_E_IO; /* as above */
        return CAIRN_E_IO;
    }
    /* data.mdb's record of the compaction is durable now: the history may lose what it removes */
    if (st->held.done_main && !__atomic_load_n(&st->copying, __ATOMIC_SEQ_CST))
        removals_apply(st);
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
static int free_pages(MDB_txn *txn, uint64_t *n)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, 0, &c);
    if (rc)
        return tx_fail(NULL, rc);
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (v.mv_size >= sizeof(size_t))
            *n += *(const size_t *)v.mv_data;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : tx_fail(NULL, rc);
}

static int file_bytes(MDB_env *env, uint64_t *n)
{
    int fd;
    struct stat s;
    if (mdb_env_get_fd(env, &fd) || fstat(fd, &s))
        return CAIRN_E_IO;
    *n += (uint64_t)s.st_size;
    return 0;
}

int store_size(store_tx *tx, struct store_size *out)
{
    store *st = tx->st;
    uint64_t files = 0, nfree = 0;
    int err = file_bytes(st->env, &files);
    if (!err)
        err = file_bytes(st->henv, &files);
    if (err)
        return err;
    store_tx *r = tx;
    /* LMDB keeps its free list out of reach of write transactions: count the committed one */
    if ((tx->write || tx->view) && (err = store_tx_begin_read(st, &r)))
        return err;
    uint64_t used_bytes = committed_bytes(st);
    err = free_pages(r->txn, &nfree);
    if (!err)
        err = free_pages(r->htxn, &nfree);
    if (r != tx)
        store_tx_end(r);
    if (err)
        return err;
    uint64_t free_bytes = nfree * st->psize;
    out->file_bytes = files;
    out->in_use_bytes = used_bytes > free_bytes ? used_bytes - free_bytes : 0;
    out->quota_bytes = st->o.quota_bytes;
    return 0;
}
