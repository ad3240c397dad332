/* store/alarm.c — the alarm table: which member raised which alarm (etcd's alarm store).
 *
 * Alarms are replicated state, like the keys: every member applies the same activations and
 * deactivations in log order, and a member with an active NOSPACE alarm refuses the same writes at
 * the same index as every other (etcd's capped applier). They live in the store so that they
 * survive a restart with the data they describe, in the same transaction as the entry that changed
 * them. Record: key = alarm type (4 bytes) then member ID (8 bytes), big-endian, so that one type's
 * alarms are one key range; value empty. */
#include "store/internal.h"

#include <string.h>

#define ALARM_KEY_SIZE 12

static void be32_put(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint32_t be32_get(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void alarm_key(uint8_t k[ALARM_KEY_SIZE], uint64_t member_id, int type)
{
    be32_put(k, (uint32_t)type);
    be32_put(k + 4, (uint32_t)(member_id >> 32));
    be32_put(k + 8, (uint32_t)member_id);
}

/* etcd keeps alarms of any type a client names; only negative values cannot be encoded here */
static int check_type(int type)
{
    return type >= 0 ? 0 : CAIRN_E_INVALID_ARGUMENT;
}

int store_alarm_activate(store_tx *tx, uint64_t member_id, int type, bool *added)
{
    int err = tx_check_write(tx);
    if (!err)
        err = check_type(type);
    if (err)
        return err;
    uint8_t kb[ALARM_KEY_SIZE];
    alarm_key(kb, member_id, type);
    MDB_val k = {sizeof kb, kb}, v = {0, NULL};
    int rc = mdb_put(tx->txn, tx->st->alarm, &k, &v, MDB_NOOVERWRITE);
    *added = rc == 0;
    return rc == 0 || rc == MDB_KEYEXIST ? 0 : tx_fail(tx, rc);
}

int store_alarm_deactivate(store_tx *tx, uint64_t member_id, int type, bool *removed)
{
    int err = tx_check_write(tx);
    if (!err)
        err = check_type(type);
    if (err)
        return err;
    uint8_t kb[ALARM_KEY_SIZE];
    alarm_key(kb, member_id, type);
    MDB_val k = {sizeof kb, kb};
    int rc = mdb_del(tx->txn, tx->st->alarm, &k, NULL);
    *removed = rc == 0;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : tx_fail(tx, rc);
}

int store_alarm_list(store_tx *tx, int type, struct arena *a, struct store_alarm **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (tx->poison)
        return tx->poison;
    int err = check_type(type);
    if (err)
        return err;
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx->txn, tx->st->alarm, &c);
    if (rc)
        return tx_fail(tx, rc);
    uint8_t kb[ALARM_KEY_SIZE];
    alarm_key(kb, 0, type);
    MDB_val k = {type == STORE_ALARM_NONE ? 0 : sizeof kb, kb}, v;
    rc = mdb_cursor_get(c, &k, &v, type == STORE_ALARM_NONE ? MDB_FIRST : MDB_SET_RANGE);
    struct store_alarm *arr = NULL;
    size_t cap = 0;
    for (; rc == 0; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const uint8_t *p = k.mv_data;
        if (k.mv_size != ALARM_KEY_SIZE) {
            err = CAIRN_E_CORRUPT;
            break;
        }
        int t = (int)be32_get(p);
        if (type != STORE_ALARM_NONE && t != type)
            break;
        if (!a) { /* only whether there is one */
            *n = 1;
            break;
        }
        if (!(arr = arena_grow(a, arr, *n, &cap, sizeof *arr))) {
            err = CAIRN_E_NOMEM;
            break;
        }
        arr[*n].type = t;
        arr[*n].member_id = (uint64_t)be32_get(p + 4) << 32 | be32_get(p + 8);
        (*n)++;
    }
    mdb_cursor_close(c);
    if (!err && rc && rc != MDB_NOTFOUND)
        err = tx_fail(tx, rc);
    if (err) {
        *n = 0;
        return err;
    }
    *out = arr;
    return 0;
}

int store_alarm_active(store_tx *tx, int type, bool *active)
{
    struct store_alarm *unused;
    size_t n;
    int err = type == STORE_ALARM_NONE ? CAIRN_E_INVALID_ARGUMENT
                                       : store_alarm_list(tx, type, NULL, &unused, &n);
    *active = !err && n > 0;
    return err;
}
