/* raft/apply.c — applying a replicated request to the store, with etcd's response. */
#include "raft/apply.h"

#include <string.h>

#include "raft/etcd_conv.h"
#include "raft/members.h"

/* Errors that come from the storage itself poison the transaction; everything else is the
 * request's own (etcd) error. */
static bool storage_error(int err)
{
    return err == CAIRN_E_IO || err == CAIRN_E_NO_DISK || err == CAIRN_E_CORRUPT ||
           err == CAIRN_E_NOMEM || err == CAIRN_E_INTERNAL;
}

/* etcd's alarmed appliers. With a CORRUPT alarm raised every write is refused ("corrupt
 * cluster"); with a NOSPACE alarm a request that costs quota is ("database space exceeded").
 * writes: the request can change the key space; cost: its quota cost. */
static int alarmed(store_tx *tx, bool writes, uint64_t cost)
{
    bool active = false;
    if (!writes)
        return 0;
    int err = store_alarm_active(tx, STORE_ALARM_CORRUPT, &active);
    if (err || active)
        return err ? err : CAIRN_E_CORRUPT_CLUSTER;
    if (cost == 0)
        return 0;
    err = store_alarm_active(tx, STORE_ALARM_NOSPACE, &active);
    return err ? err : active ? CAIRN_E_NO_SPACE : 0;
}

/* etcd's applierV3backend.Alarm: GET lists the alarms of a type (NONE: all); ACTIVATE answers with
 * the alarm, raised now or before; DEACTIVATE with the alarm it cleared, if it was raised. */
static int apply_alarm(store_tx *tx, const Etcdserverpb__AlarmRequest *r, struct arena *a,
                       Etcdserverpb__AlarmResponse **out)
{
    Etcdserverpb__AlarmResponse *resp = arena_alloc(a, sizeof *resp);
    if (!resp)
        return CAIRN_E_NOMEM;
    *resp = (Etcdserverpb__AlarmResponse)ETCDSERVERPB__ALARM_RESPONSE__INIT;
    struct store_alarm one = {r->memberid, r->alarm}, *list = NULL;
    size_t n = 0;
    bool changed;
    int err = 0;
    switch (r->action) {
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__GET:
        err = store_alarm_list(tx, r->alarm, a, &list, &n);
        break;
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE:
        err = store_alarm_activate(tx, r->memberid, r->alarm, &changed);
        list = &one;
        n = 1;
        break;
    case ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__DEACTIVATE:
        err = store_alarm_deactivate(tx, r->memberid, r->alarm, &changed);
        list = &one;
        n = changed ? 1 : 0;
        break;
    default:
        break; /* etcd answers an unknown action with nothing */
    }
    if (err)
        return err;
    if (n) {
        resp->alarms = arena_alloc(a, n * sizeof *resp->alarms);
        if (!resp->alarms)
            return CAIRN_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
            Etcdserverpb__AlarmMember *m = arena_alloc(a, sizeof *m);
            if (!m)
                return CAIRN_E_NOMEM;
            *m = (Etcdserverpb__AlarmMember)ETCDSERVERPB__ALARM_MEMBER__INIT;
            m->memberid = list[i].member_id;
            m->alarm = (Etcdserverpb__AlarmType)list[i].type;
            resp->alarms[i] = m;
        }
        resp->n_alarms = n;
    }
    *out = resp;
    return 0;
}

/* etcd's lessor.Grant (its minimum TTL applied by the proposer): the response has the lease's id
 * and TTL. */
static int apply_lease_grant(store_tx *tx, const Etcdserverpb__LeaseGrantRequest *r,
                             struct arena *a, Etcdserverpb__LeaseGrantResponse **out)
{
    if (r->id == 0)
        return CAIRN_E_LEASE_NOT_FOUND; /* etcd's answer; the API never proposes id 0 */
    if (r->ttl > APPLY_MAX_LEASE_TTL)
        return CAIRN_E_LEASE_TTL_TOO_LARGE;
    int err = alarmed(tx, true, STORE_LEASE_COST);
    if (!err)
        err = store_lease_grant(tx, r->id, r->ttl);
    if (err)
        return err;
    Etcdserverpb__LeaseGrantResponse *g = arena_alloc(a, sizeof *g);
    if (!g)
        return CAIRN_E_NOMEM;
    *g = (Etcdserverpb__LeaseGrantResponse)ETCDSERVERPB__LEASE_GRANT_RESPONSE__INIT;
    g->id = r->id;
    g->ttl = r->ttl;
    if (!(g->header = conv_header(store_tx_rev(tx), a)))
        return CAIRN_E_NOMEM;
    *out = g;
    return 0;
}

/* etcd's lessor.Revoke: the attached keys are deleted in one revision, then the lease. */
static int apply_lease_revoke(store_tx *tx, const Etcdserverpb__LeaseRevokeRequest *r,
                              struct arena *a, Etcdserverpb__LeaseRevokeResponse **out)
{
    int64_t rev = 0;
    int err = alarmed(tx, true, 0);
    if (!err)
        err = store_lease_revoke(tx, r->id, &rev);
    if (err)
        return err;
    Etcdserverpb__LeaseRevokeResponse *v = arena_alloc(a, sizeof *v);
    if (!v)
        return CAIRN_E_NOMEM;
    *v = (Etcdserverpb__LeaseRevokeResponse)ETCDSERVERPB__LEASE_REVOKE_RESPONSE__INIT;
    if (!(v->header = conv_header(rev, a)))
        return CAIRN_E_NOMEM;
    *out = v;
    return 0;
}

/* etcd's lessor.Checkpoint: records each lease's remaining TTL; leases gone meanwhile are
 * skipped, as etcd skips them. */
static int apply_lease_checkpoint(store_tx *tx, const Etcdserverpb__LeaseCheckpointRequest *r,
                                  struct arena *a, Etcdserverpb__LeaseCheckpointResponse **out)
{
    for (size_t i = 0; i < r->n_checkpoints; i++) {
        const Etcdserverpb__LeaseCheckpoint *cp = r->checkpoints[i];
        int err = store_lease_checkpoint(tx, cp->id, cp->remaining_ttl);
        if (err && err != CAIRN_E_LEASE_NOT_FOUND)
            return err;
    }
    Etcdserverpb__LeaseCheckpointResponse *c = arena_alloc(a, sizeof *c);
    if (!c)
        return CAIRN_E_NOMEM;
    *c = (Etcdserverpb__LeaseCheckpointResponse)ETCDSERVERPB__LEASE_CHECKPOINT_RESPONSE__INIT;
    if (!(c->header = conv_header(store_tx_rev(tx), a)))
        return CAIRN_E_NOMEM;
    *out = c;
    return 0;
}

int apply_request(store_tx *tx, const Cairn__InternalRequest *req, struct arena *a,
                  struct apply_result *res)
{
    memset(res, 0, sizeof *res);
    int err = 0;
    switch (req->request_case) {
    case CAIRN__INTERNAL_REQUEST__REQUEST_PUT: {
        struct store_put_req r;
        struct store_put_res out;
        conv_put_req(req->put, &r);
        err = alarmed(tx, true, store_put_cost(&r));
        if (!err)
            err = store_put(tx, &r, a, &out);
        if (!err && !(res->put = conv_put_res(&out, a)))
            err = CAIRN_E_NOMEM;
        break;
    }
    case CAIRN__INTERNAL_REQUEST__REQUEST_DELETE_RANGE: {
        struct store_delete_req r;
        struct store_delete_res out;
        conv_delete_req(req->delete_range, &r);
        err = alarmed(tx, true, 0);
        if (!err)
            err = store_delete_range(tx, &r, a, &out);
        if (!err && !(res->delete_range = conv_delete_res(&out, a)))
            err = CAIRN_E_NOMEM;
        break;
    }
    case CAIRN__INTERNAL_REQUEST__REQUEST_TXN: {
        struct store_txn_req r;
        struct store_txn_res out;
        err = conv_txn_req(req->txn, a, &r);
        if (!err)
            err = alarmed(tx, !store_txn_is_read_only(&r), store_txn_cost(&r));
        if (!err)
            err = store_txn(tx, &r, a, &out);
        if (!err && !(res->txn = conv_txn_res(&out, a)))
            err = CAIRN_E_NOMEM;
        break;
    }
    case CAIRN__INTERNAL_REQUEST__REQUEST_COMPACTION: {
        err = alarmed(tx, true, 0);
        if (!err)
            err = store_compact(tx, req->compaction->revision);
        if (!err) {
            Etcdserverpb__CompactionResponse *c = arena_alloc(a, sizeof *c);
            Etcdserverpb__CompactionResponse init = ETCDSERVERPB__COMPACTION_RESPONSE__INIT;
            if (!c || !(init.header = conv_header(store_tx_rev(tx), a)))
                err = CAIRN_E_NOMEM;
            else
                *c = init;
            res->compaction = c;
            res->compacted = !err;
        }
        break;
    }
    case CAIRN__INTERNAL_REQUEST__REQUEST_ALARM:
        err = apply_alarm(tx, req->alarm, a, &res->alarm);
        break;
    case CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_GRANT:
        err = apply_lease_grant(tx, req->lease_grant, a, &res->lease_grant);
        break;
    case CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE:
        err = apply_lease_revoke(tx, req->lease_revoke, a, &res->lease_revoke);
        break;
    case CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_CHECKPOINT:
        err = apply_lease_checkpoint(tx, req->lease_checkpoint, a, &res->lease_checkpoint);
        break;
    case CAIRN__INTERNAL_REQUEST__REQUEST_MEMBER_PUBLISH:
        err = members_apply_publish(tx, req->member_publish, a);
        res->members_changed = !err;
        break;
    case CAIRN__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE:
        err = members_apply_change(tx, req->member_change, a);
        res->members_changed = !err;
        break;
    default:
        /* A kind this build does not know: applying anything else would let members diverge. */
        return CAIRN_E_UNIMPLEMENTED;
    }
    if (err && storage_error(err))
        return err;
    res->err = err;
    return 0;
}
