/* api/maintenance.c — etcd's Maintenance service: Status, Hash, HashKV, Alarm; and the NOSPACE
 * alarm this member raises when a write would pass the quota. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/service.h"
#include "common/log.h"
#include "raft/etcd_conv.h"

/* etcd's text of an alarm (the protobuf text form of an AlarmMember), as Status.errors and
 * etcdctl's alarm list show it: "memberID:<id> alarm:<TYPE> ". */
static char *alarm_text(const struct store_alarm *al, struct arena *a)
{
    char type[16], buf[64];
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&etcdserverpb__alarm_type__descriptor, al->type);
    if (v)
        snprintf(type, sizeof type, "%s", v->name);
    else
        snprintf(type, sizeof type, "%d", al->type);
    int n = snprintf(buf, sizeof buf, "memberID:%" PRIu64 " alarm:%s ", al->member_id, type);
    return arena_dup(a, buf, (size_t)n + 1);
}

static void on_status(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c || !api_decode(c, &etcdserverpb__status_request__descriptor, msg, len))
        return;
    struct api_server *s = c->srv;
    store_tx *tx;
    struct store_size size;
    int err = store_tx_begin_view(s->st, &tx);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    err = store_size(tx, &size);
    int64_t rev = store_tx_rev(tx);
    struct store_alarm *alarms = NULL;
    size_t n_alarms = 0;
    if (!err)
        err = store_alarm_list(tx, STORE_ALARM_NONE, &c->arena, &alarms, &n_alarms);
    store_tx_end(tx);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    Etcdserverpb__StatusResponse r = ETCDSERVERPB__STATUS_RESPONSE__INIT;
    r.header = conv_header(rev, &c->arena);
    if (!r.header) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    api_fill_header(s, r.header);
    r.version = API_ETCD_VERSION;
    r.dbsize = (int64_t)size.file_bytes;
    r.dbsizeinuse = (int64_t)size.in_use_bytes;
    r.leader = s->prop->leader(s->prop);
    r.raftindex = s->prop->committed_index(s->prop);
    r.raftappliedindex = s->prop->applied_index(s->prop);
    r.islearner = s->prop->is_learner(s->prop);
    r.raftterm = s->prop->term(s->prop);
    size_t n_errors = n_alarms + (r.leader == 0);
    if (n_errors && !(r.errors = arena_alloc(&c->arena, n_errors * sizeof *r.errors))) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    if (r.leader == 0) /* etcd lists it first */
        r.errors[r.n_errors++] = (char *)cairn_strerror(CAIRN_E_NO_LEADER);
    for (size_t i = 0; i < n_alarms; i++) {
        if (!(r.errors[r.n_errors++] = alarm_text(&alarms[i], &c->arena))) {
            api_reply_err(c, CAIRN_E_NOMEM);
            return;
        }
    }
    api_reply(c, &r.base);
}

/* The hash and current/compacted revision of the key-value history at rev (0: current). */
static int hash_at(struct api_server *s, int64_t rev, uint32_t *hash, int64_t *compact,
                   int64_t *current)
{
    store_tx *tx;
    int err = store_tx_begin_view(s->st, &tx);
    if (err)
        return err;
    err = store_hash_kv(tx, rev, hash, compact);
    *current = store_tx_rev(tx);
    store_tx_end(tx);
    return err;
}

static void on_hash_kv(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__HashKVRequest *q =
        api_decode(c, &etcdserverpb__hash_kvrequest__descriptor, msg, len);
    if (!q)
        return;
    Etcdserverpb__HashKVResponse r = ETCDSERVERPB__HASH_KVRESPONSE__INIT;
    int64_t current;
    int err = hash_at(c->srv, q->revision, &r.hash, &r.compact_revision, &current);
    if (!err && !(r.header = conv_header(current, &c->arena)))
        err = CAIRN_E_NOMEM;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    api_fill_header(c->srv, r.header);
    api_reply(c, &r.base);
}

/* etcd's Hash covers its whole backend file (every bucket, in bolt's layout), which has no
 * counterpart here; cairn answers with the hash of the key-value history at the current revision,
 * which serves the same purpose of comparing members. */
static void on_hash(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c || !api_decode(c, &etcdserverpb__hash_request__descriptor, msg, len))
        return;
    Etcdserverpb__HashResponse r = ETCDSERVERPB__HASH_RESPONSE__INIT;
    int64_t compact, current;
    int err = hash_at(c->srv, 0, &r.hash, &compact, &current);
    if (!err && !(r.header = conv_header(current, &c->arena)))
        err = CAIRN_E_NOMEM;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    api_fill_header(c->srv, r.header);
    api_reply(c, &r.base);
}

/* ---------------------------------------------------------------------------------------------- */
/* Alarms */

static void on_alarm_applied(struct proposal *p, int err)
{
    struct api_ctx *c = p->data;
    if (!err)
        err = p->res.err;
    if (!err && !p->res.alarm)
        err = CAIRN_E_INTERNAL;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    api_reply(c, &p->res.alarm->base); /* etcd's AlarmResponse carries no header */
}

/* Every action goes through the log, GET too, as etcd's does: the answer is the alarms as of a
 * point in the log order. */
static void on_alarm(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__AlarmRequest *r =
        api_decode(c, &etcdserverpb__alarm_request__descriptor, msg, len);
    if (!r)
        return;
    if (r->alarm < 0) {
        api_reply_err(c, CAIRN_E_INVALID_ARGUMENT);
        return;
    }
    Cairn__InternalRequest init = CAIRN__INTERNAL_REQUEST__INIT;
    c->ireq = init;
    c->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_ALARM;
    c->ireq.alarm = r;
    int err = api_propose(c, on_alarm_applied);
    if (err)
        api_reply_err(c, err);
}

/* A NOSPACE activation this member proposes on its own. */
struct raise {
    struct proposal prop;
    Cairn__InternalRequest ireq;
    Cairn__InternalHeader hdr;
    Etcdserverpb__AlarmRequest ar;
    struct arena arena;
    struct api_server *srv;
};

static void on_raised(struct proposal *p, int err)
{
    struct raise *r = p->data;
    r->srv->raising_nospace = false;
    if (err || p->res.err)
        log_error("api: cannot raise the NOSPACE alarm: %s",
                  cairn_strerror(err ? err : p->res.err));
    else
        log_warn("api: alarm raised: NOSPACE for member %016" PRIx64 " (writes are refused until "
                 "it is disarmed)",
                 r->srv->cfg.self.id);
    arena_free(&r->arena);
    free(r);
}

/* Whether this member's NOSPACE alarm is raised already (then nothing is proposed). */
static bool nospace_raised(struct api_server *s)
{
    store_tx *tx;
    struct arena a = {0};
    struct store_alarm *list;
    size_t n = 0;
    bool found = false;
    if (store_tx_begin_view(s->st, &tx))
        return false;
    if (store_alarm_list(tx, STORE_ALARM_NOSPACE, &a, &list, &n) == 0)
        for (size_t i = 0; i < n; i++)
            found |= list[i].member_id == s->cfg.self.id;
    store_tx_end(tx);
    arena_free(&a);
    return found;
}

void api_raise_nospace(struct api_server *s)
{
    if (s->raising_nospace || nospace_raised(s))
        return;
    struct raise *r = calloc(1, sizeof *r);
    if (!r)
        return;
    Cairn__InternalRequest ireq = CAIRN__INTERNAL_REQUEST__INIT;
    Etcdserverpb__AlarmRequest ar = ETCDSERVERPB__ALARM_REQUEST__INIT;
    r->ireq = ireq;
    r->ar = ar;
    r->srv = s;
    r->ar.action = ETCDSERVERPB__ALARM_REQUEST__ALARM_ACTION__ACTIVATE;
    r->ar.memberid = s->cfg.self.id;
    r->ar.alarm = ETCDSERVERPB__ALARM_TYPE__NOSPACE;
    r->ireq.id = s->prop->next_request_id(s->prop);
    r->hdr = (Cairn__InternalHeader)CAIRN__INTERNAL_HEADER__INIT;
    r->hdr.member_id = s->cfg.self.id;
    r->ireq.header = &r->hdr;
    r->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_ALARM;
    r->ireq.alarm = &r->ar;
    r->prop.req = &r->ireq;
    r->prop.cb = on_raised;
    r->prop.data = r;
    r->prop.arena = &r->arena;
    if (proposer_propose(s->prop, &r->prop) != 0) {
        free(r);
        return;
    }
    s->raising_nospace = true;
}

bool api_quota_check(struct api_server *s, uint64_t cost)
{
    if (store_quota_fits(s->st, cost))
        return true;
    api_raise_nospace(s);
    return false;
}

/* etcd's MoveLeader: only the leader moves the leadership, to a voting member; the call returns
 * once the target leads (or the transfer gave up). */
struct move {
    struct transfer_wait w;
    struct api_ctx *c;
};

static void on_moved(struct transfer_wait *w, int err)
{
    struct move *m = (struct move *)w;
    struct api_ctx *c = m->c;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    Etcdserverpb__MoveLeaderResponse r = ETCDSERVERPB__MOVE_LEADER_RESPONSE__INIT;
    api_reply(c, &r.base); /* etcd's has no header */
}

static void on_move_leader(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__MoveLeaderRequest *q =
        api_decode(c, &etcdserverpb__move_leader_request__descriptor, msg, len);
    if (!q)
        return;
    struct proposer *p = c->srv->prop;
    if (p->leader(p) != c->srv->cfg.self.id) {
        api_reply_err(c, CAIRN_E_NOT_LEADER);
        return;
    }
    struct move *m = arena_alloc(&c->arena, sizeof *m);
    if (!m) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    memset(m, 0, sizeof *m);
    m->c = c;
    m->w.cb = on_moved;
    m->w.target = q->targetid;
    if (q->targetid == c->srv->cfg.self.id) { /* leads already: etcd's loop ends at once */
        on_moved(&m->w, 0);
        return;
    }
    int err = p->transfer(p, &m->w);
    if (err)
        api_reply_err(c, err);
}

void api_maintenance_register(struct api_server *s)
{
    api_add_method(s, "/etcdserverpb.Maintenance/MoveLeader", false, on_move_leader);
    api_add_method(s, "/etcdserverpb.Maintenance/Alarm", false, on_alarm);
    api_add_method(s, "/etcdserverpb.Maintenance/Status", false, on_status);
    api_add_method(s, "/etcdserverpb.Maintenance/Hash", false, on_hash);
    api_add_method(s, "/etcdserverpb.Maintenance/HashKV", false, on_hash_kv);
}
