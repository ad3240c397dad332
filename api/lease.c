/* api/lease.c — etcd's Lease service: LeaseGrant, LeaseRevoke, LeaseTimeToLive, LeaseLeases and
 * the LeaseKeepAlive stream; and the leader's internal lease methods.
 *
 * Grants and revokes are replicated (proposed like writes; a follower's go to the leader through
 * the forwarding path). Renewals and remaining TTLs are the leader's alone (raft/lessor.h): on the
 * leader they are answered by its lessor; a follower asks the leader's internal methods
 * /cairn.Internal/LeaseRenew (LeaseKeepAliveRequest → LeaseKeepAliveResponse) and
 * /cairn.Internal/LeaseTimeToLive (LeaseTimeToLiveRequest → LeaseTimeToLiveResponse), which answer
 * etcd's errors as statuses, as etcd's followers ask their leader over its peer port. While no
 * leader is known, or the one asked no longer leads, the question is asked again every 50 ms up to
 * etcd's request timeout (etcd's LeaseRenew loop), then "etcdserver: request timed out".
 *
 * etcd's answers kept here: LeaseTimeToLive of an unknown lease is TTL -1 (not an error); a
 * keepalive of an unknown or expired lease is answered with TTL 0 and the stream goes on. */
#include <stdlib.h>
#include <string.h>

#include "api/service.h"
#include "client/cairn_client.h"
#include "raft/etcd_conv.h"
#include "raft/lessor.h"

#define LEASE_RETRY_MS   50   /* between questions to the leader (etcd throttles by 50 ms) */
#define LEASE_ATTEMPT_MS 2000 /* one question's deadline: a leader answers from memory */

static const struct cl_method renew_method = {
    .path = "/cairn.Internal/LeaseRenew",
    .request = &etcdserverpb__lease_keep_alive_request__descriptor,
    .response = &etcdserverpb__lease_keep_alive_response__descriptor,
    .idempotent = true,
};

static const struct cl_method ttl_method = {
    .path = "/cairn.Internal/LeaseTimeToLive",
    .request = &etcdserverpb__lease_time_to_live_request__descriptor,
    .response = &etcdserverpb__lease_time_to_live_response__descriptor,
    .idempotent = true,
};

/* etcd's minimum TTL: ceil(1.5 × the election timeout) seconds, the election timeout counted in
 * whole heartbeats as etcd counts it (etcdserver: (3 × ElectionTicks / 2) × heartbeat). */
static int64_t min_ttl(const struct api_server *s)
{
    unsigned hb = s->cfg.heartbeat_ms ? s->cfg.heartbeat_ms : 100;
    unsigned el = s->cfg.election_ms ? s->cfg.election_ms : 1000;
    uint64_t ms = (uint64_t)((3 * (el / hb)) / 2) * hb;
    return (int64_t)((ms + 999) / 1000);
}

/* ---------------------------------------------------------------------------------------------- */
/* LeaseGrant, LeaseRevoke: through the log */

static void on_grant_applied(struct proposal *p, int err)
{
    struct api_ctx *c = p->data;
    if (!err)
        err = p->res.err;
    if (!err && !p->res.lease_grant)
        err = CAIRN_E_INTERNAL;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    Etcdserverpb__LeaseGrantResponse *g = p->res.lease_grant;
    lessor_granted(c->srv->lessor, g->id, g->ttl); /* its expiry starts now, on the leader */
    api_fill_header(c->srv, g->header);
    api_reply(c, &g->base);
}

static void on_grant(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__LeaseGrantRequest *r =
        api_decode(c, &etcdserverpb__lease_grant_request__descriptor, msg, len);
    if (!r)
        return;
    struct api_server *s = c->srv;
    /* etcd's quota check of a grant, then its lessor's rules */
    if (!api_quota_check(s, STORE_LEASE_COST)) {
        api_reply_err(c, CAIRN_E_NO_SPACE);
        return;
    }
    if (r->ttl > APPLY_MAX_LEASE_TTL) {
        api_reply_err(c, CAIRN_E_LEASE_TTL_TOO_LARGE);
        return;
    }
    if (r->ttl < min_ttl(s))
        r->ttl = min_ttl(s);
    /* no id given: a positive one of the cluster-unique request ids, as etcd picks it */
    while (r->id == 0)
        r->id = (int64_t)(s->prop->next_request_id(s->prop) & INT64_MAX);
    c->ireq = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
    c->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_GRANT;
    c->ireq.lease_grant = r;
    int err = api_propose(c, on_grant_applied);
    if (err)
        api_reply_err(c, err);
}

static void on_revoke_applied(struct proposal *p, int err)
{
    struct api_ctx *c = p->data;
    if (!err)
        err = p->res.err;
    if (!err && !p->res.lease_revoke)
        err = CAIRN_E_INTERNAL;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    api_fill_header(c->srv, p->res.lease_revoke->header);
    api_reply(c, &p->res.lease_revoke->base);
}

static void on_revoke(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__LeaseRevokeRequest *r =
        api_decode(c, &etcdserverpb__lease_revoke_request__descriptor, msg, len);
    if (!r)
        return;
    c->ireq = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
    c->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_LEASE_REVOKE;
    c->ireq.lease_revoke = r;
    int err = api_propose(c, on_revoke_applied);
    if (err)
        api_reply_err(c, err);
}

/* ---------------------------------------------------------------------------------------------- */
/* LeaseLeases: this member's lease table, as etcd answers from its own lessor */

static void on_leases(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c || !api_decode(c, &etcdserverpb__lease_leases_request__descriptor, msg, len))
        return;
    store_tx *tx;
    struct store_lease *list = NULL;
    size_t n = 0;
    int err = store_tx_begin_view(c->srv->st, &tx);
    if (!err) {
        err = store_lease_list(tx, &c->arena, &list, &n);
        store_tx_end(tx);
    }
    Etcdserverpb__LeaseLeasesResponse r = ETCDSERVERPB__LEASE_LEASES_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    r.header = &h;
    if (!err && n) {
        r.leases = arena_alloc(&c->arena, n * sizeof *r.leases);
        Etcdserverpb__LeaseStatus *st = arena_alloc(&c->arena, n * sizeof *st);
        if (!r.leases || !st)
            err = CAIRN_E_NOMEM;
        for (size_t i = 0; !err && i < n; i++) {
            st[i] = (Etcdserverpb__LeaseStatus)ETCDSERVERPB__LEASE_STATUS__INIT;
            st[i].id = list[i].id;
            r.leases[i] = &st[i];
        }
        r.n_leases = n;
    }
    if (err) {
        api_reply_err(c, err);
        return;
    }
    api_fill_header(c->srv, &h);
    api_reply(c, &r.base);
}

/* ---------------------------------------------------------------------------------------------- */
/* Answers of the primary */

/* The TimeToLive answer on the primary into out (keys from the store into a). Returns 0,
 * LEASE_NOT_FOUND or NOT_LEADER. */
static int local_ttl(struct api_server *s, const Etcdserverpb__LeaseTimeToLiveRequest *r,
                     struct arena *a, Etcdserverpb__LeaseTimeToLiveResponse *out)
{
    int64_t remaining, granted;
    int err = lessor_remaining(s->lessor, r->id, &remaining, &granted);
    if (err)
        return err;
    out->id = r->id;
    out->ttl = remaining;
    out->grantedttl = granted;
    if (!r->keys)
        return 0;
    store_tx *tx;
    struct store_lease l;
    if ((err = store_tx_begin_view(s->st, &tx)))
        return err;
    err = store_lease_get(tx, r->id, true, a, &l);
    store_tx_end(tx);
    if (err)
        return err;
    if (l.n_keys) {
        out->keys = arena_alloc(a, l.n_keys * sizeof *out->keys);
        if (!out->keys)
            return CAIRN_E_NOMEM;
        for (size_t i = 0; i < l.n_keys; i++)
            out->keys[i] = (ProtobufCBinaryData){l.keys[i].len, (uint8_t *)l.keys[i].data};
        out->n_keys = l.n_keys;
    }
    return 0;
}

/* /cairn.Internal/LeaseRenew on the leader */
static void on_internal_renew(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__LeaseKeepAliveRequest *r =
        api_decode(c, &etcdserverpb__lease_keep_alive_request__descriptor, msg, len);
    if (!r)
        return;
    int64_t ttl = 0;
    int err = lessor_renew(c->srv->lessor, r->id, &ttl);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    Etcdserverpb__LeaseKeepAliveResponse out = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
    out.id = r->id;
    out.ttl = ttl;
    api_reply(c, &out.base);
}

/* /cairn.Internal/LeaseTimeToLive on the leader */
static void on_internal_ttl(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__LeaseTimeToLiveRequest *r =
        api_decode(c, &etcdserverpb__lease_time_to_live_request__descriptor, msg, len);
    if (!r)
        return;
    Etcdserverpb__LeaseTimeToLiveResponse out = ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
    int err = local_ttl(c->srv, r, &c->arena, &out);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    api_reply(c, &out.base);
}

/* ---------------------------------------------------------------------------------------------- */
/* Questions to the leader, asked again until one leads or the request timeout passed */

struct ka_stream;

struct lease_ask {
    struct cl_call call; /* first member */
    struct api_server *s;
    uv_timer_t retry;                          /* the wait before the next question */
    uint64_t started;                          /* loop time of the first */
    bool in_call;                              /* call is started */
    struct ka_stream *ka;                      /* a keepalive: the stream to answer, or */
    struct api_ctx *c;                         /* a TimeToLive: the call to answer */
    Etcdserverpb__LeaseKeepAliveRequest renew; /* the question */
    Etcdserverpb__LeaseTimeToLiveRequest ttl;
};

static void ka_answer(struct ka_stream *ka, int64_t id, int64_t ttl);
static void ka_fail(struct ka_stream *ka, int err);
static void ttl_answer(struct api_ctx *c, const Etcdserverpb__LeaseTimeToLiveResponse *r, int err);
static void ask_attempt(struct lease_ask *q);

static void on_ask_closed(uv_handle_t *h)
{
    free(h->data);
}

static void ask_free(struct lease_ask *q)
{
    uv_close((uv_handle_t *)&q->retry, on_ask_closed);
}

/* The leader's answer (err 0 and resp), or err. */
static void ask_done(struct lease_ask *q, const ProtobufCMessage *resp, int err)
{
    if (q->ka) {
        const Etcdserverpb__LeaseKeepAliveResponse *k = (const void *)resp;
        if (err == CAIRN_E_LEASE_NOT_FOUND)
            ka_answer(q->ka, q->renew.id, 0);
        else if (err)
            ka_fail(q->ka, err);
        else
            ka_answer(q->ka, q->renew.id, k->ttl);
    } else {
        ttl_answer(q->c, (const Etcdserverpb__LeaseTimeToLiveResponse *)resp, err);
    }
}

static void on_retry(uv_timer_t *t)
{
    ask_attempt(t->data);
}

/* Asks again after a while if the leader could not answer because there is none (yet) or it no
 * longer leads; otherwise the answer is err. */
static void ask_again_or_fail(struct lease_ask *q, int err)
{
    bool leadership =
        err == CAIRN_E_NOT_LEADER || err == CAIRN_E_LEADER_CHANGED || err == CAIRN_E_NO_LEADER;
    uint64_t waited = uv_now(q->s->loop) - q->started;
    if (leadership && !q->s->stopping && waited < API_REQUEST_TIMEOUT_MS) {
        uv_timer_start(&q->retry, on_retry, LEASE_RETRY_MS, 0);
        return;
    }
    ask_done(q, NULL, leadership ? CAIRN_E_TIMEOUT : err);
    ask_free(q);
}

static void on_asked(struct cl_call *call)
{
    struct lease_ask *q = (struct lease_ask *)call;
    q->in_call = false;
    if (call->code == GRPC_OK) {
        ask_done(q, call->response, 0);
        cl_call_reset(call);
        ask_free(q);
        return;
    }
    int err = api_leader_error(q->s, call);
    cl_call_reset(call);
    if (err == CAIRN_E_LEASE_NOT_FOUND) {
        ask_done(q, NULL, err);
        ask_free(q);
        return;
    }
    ask_again_or_fail(q, err);
}

/* Answers from this member's lessor if it leads, else asks the leader. */
static void ask_attempt(struct lease_ask *q)
{
    struct api_server *s = q->s;
    if (lessor_is_primary(s->lessor)) {
        int err;
        if (q->ka) {
            Etcdserverpb__LeaseKeepAliveResponse k = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
            err = lessor_renew(s->lessor, q->renew.id, &k.ttl);
            ask_done(q, &k.base, err);
        } else {
            Etcdserverpb__LeaseTimeToLiveResponse t =
                ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
            err = local_ttl(s, &q->ttl, &q->c->arena, &t);
            ask_done(q, &t.base, err);
        }
        ask_free(q);
        return;
    }
    uint64_t leader = s->prop->leader(s->prop);
    int err = CAIRN_E_NO_LEADER;
    if (leader) {
        uint64_t left = API_REQUEST_TIMEOUT_MS - (uv_now(s->loop) - q->started);
        q->call = (struct cl_call){.cb = on_asked,
                                   .timeout_ms = left < LEASE_ATTEMPT_MS ? left : LEASE_ATTEMPT_MS};
        err = api_leader_call(s, leader, &q->call, q->ka ? &renew_method : &ttl_method,
                              q->ka ? &q->renew.base : &q->ttl.base);
        q->in_call = !err;
    }
    if (err)
        ask_again_or_fail(q, err);
}

static struct lease_ask *ask_new(struct api_server *s)
{
    struct lease_ask *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->s = s;
    q->started = uv_now(s->loop);
    uv_timer_init(s->loop, &q->retry);
    q->retry.data = q;
    return q;
}

/* ---------------------------------------------------------------------------------------------- */
/* LeaseTimeToLive */

static void ttl_answer(struct api_ctx *c, const Etcdserverpb__LeaseTimeToLiveResponse *r, int err)
{
    Etcdserverpb__LeaseTimeToLiveResponse out = ETCDSERVERPB__LEASE_TIME_TO_LIVE_RESPONSE__INIT;
    Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    if (err == CAIRN_E_LEASE_NOT_FOUND) {
        out.id = ((Etcdserverpb__LeaseTimeToLiveRequest *)c->req)->id;
        out.ttl = -1; /* etcd's answer for a lease it does not know */
    } else if (err) {
        api_reply_err(c, err);
        return;
    } else {
        out = *r;
    }
    out.header = &h; /* this member's header, as etcd's lease server fills it */
    api_fill_header(c->srv, &h);
    api_reply(c, &out.base);
}

static void on_ttl(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__LeaseTimeToLiveRequest *r =
        api_decode(c, &etcdserverpb__lease_time_to_live_request__descriptor, msg, len);
    if (!r)
        return;
    c->req = r;
    struct lease_ask *q = ask_new(c->srv);
    if (!q) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    q->c = c;
    q->ttl = (Etcdserverpb__LeaseTimeToLiveRequest)ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    q->ttl.id = r->id;
    q->ttl.keys = r->keys;
    ask_attempt(q);
}

/* ---------------------------------------------------------------------------------------------- */
/* LeaseKeepAlive: a stream of renewals, each answered with the lease's id and TTL */

struct ka_stream {
    struct api_server *s;
    struct grpc_call *call; /* until finished */
    unsigned pending;       /* renewals not answered yet */
    bool closed;            /* the client half-closed or went away */
    bool finished;          /* grpc_call_finish() was called */
};

static void ka_release(struct ka_stream *ka)
{
    if (ka->closed && ka->pending == 0 && !ka->finished) {
        ka->finished = true;
        grpc_call_finish(ka->call, GRPC_OK, NULL);
    }
    if (ka->finished && ka->pending == 0)
        free(ka);
}

static void ka_answer(struct ka_stream *ka, int64_t id, int64_t ttl)
{
    ka->pending--;
    if (!ka->finished && !grpc_call_cancelled(ka->call)) {
        Etcdserverpb__LeaseKeepAliveResponse r = ETCDSERVERPB__LEASE_KEEP_ALIVE_RESPONSE__INIT;
        Etcdserverpb__ResponseHeader h = ETCDSERVERPB__RESPONSE_HEADER__INIT;
        r.header = &h;
        r.id = id;
        r.ttl = ttl;
        api_fill_header(ka->s, &h);
        uint8_t small[128];
        size_t n = protobuf_c_message_get_packed_size(&r.base);
        uint8_t *buf = n <= sizeof small ? small : malloc(n);
        if (buf) {
            protobuf_c_message_pack(&r.base, buf);
            grpc_call_send(ka->call, buf, n);
            if (buf != small)
                free(buf);
        }
    }
    ka_release(ka);
}

/* A renewal that could not be made ends the stream with its error, as etcd's does. */
static void ka_fail(struct ka_stream *ka, int err)
{
    ka->pending--;
    if (!ka->finished) {
        ka->finished = true;
        grpc_call_finish(ka->call, cairn_err_grpc_code(err), cairn_strerror(err));
    }
    ka_release(ka);
}

static void on_keepalive(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_server *s = ctx;
    struct ka_stream *ka = grpc_call_data(call);
    if (!ka) {
        int refuse = api_call_refusal(s, call);
        if (refuse) {
            grpc_call_finish(call, cairn_err_grpc_code(refuse), cairn_strerror(refuse));
            return;
        }
        if (!(ka = calloc(1, sizeof *ka))) {
            grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, cairn_strerror(CAIRN_E_NOMEM));
            return;
        }
        ka->s = s;
        ka->call = call;
        grpc_call_set_data(call, ka);
    }
    if (ka->finished)
        return;
    Etcdserverpb__LeaseKeepAliveRequest *r =
        etcdserverpb__lease_keep_alive_request__unpack(NULL, len, msg);
    if (!r) {
        ka->finished = true;
        grpc_call_finish(call, GRPC_INTERNAL,
                         "grpc: error unmarshalling request: proto: cannot parse invalid "
                         "wire-format data");
        ka_release(ka);
        return;
    }
    int64_t id = r->id;
    etcdserverpb__lease_keep_alive_request__free_unpacked(r, NULL);
    ka->pending++;
    int64_t ttl = 0;
    if (lessor_is_primary(s->lessor)) {
        int err = lessor_renew(s->lessor, id, &ttl);
        if (err && err != CAIRN_E_LEASE_NOT_FOUND)
            ka_fail(ka, err);
        else
            ka_answer(ka, id, err ? 0 : ttl);
        return;
    }
    struct lease_ask *q = ask_new(s);
    if (!q) {
        ka_fail(ka, CAIRN_E_NOMEM);
        return;
    }
    q->ka = ka;
    q->renew = (Etcdserverpb__LeaseKeepAliveRequest)ETCDSERVERPB__LEASE_KEEP_ALIVE_REQUEST__INIT;
    q->renew.id = id;
    ask_attempt(q);
}

static void on_keepalive_half_close(struct grpc_call *call, void *ctx)
{
    (void)ctx;
    struct ka_stream *ka = grpc_call_data(call);
    if (!ka) {
        grpc_call_finish(call, GRPC_OK, NULL);
        return;
    }
    ka->closed = true;
    ka_release(ka);
}

static void on_keepalive_cancel(struct grpc_call *call, void *ctx)
{
    (void)ctx;
    struct ka_stream *ka = grpc_call_data(call);
    if (!ka) {
        grpc_call_finish(call, GRPC_CANCELLED, NULL);
        return;
    }
    ka->closed = true;
    if (!ka->finished) {
        ka->finished = true; /* nobody listens: renewals in flight are answered into the void */
        grpc_call_finish(call, GRPC_CANCELLED, NULL);
    }
    ka_release(ka);
}

/* ---------------------------------------------------------------------------------------------- */
/* Registration and lifecycle */

void api_lease_register(struct api_server *s)
{
    struct lessor_options o = {
        .self = s->cfg.self.id,
        .election_ms = s->cfg.election_ms ? s->cfg.election_ms : 1000,
    };
    s->lessor = calloc(1, sizeof *s->lessor);
    if (!s->lessor || lessor_start(s->lessor, s->loop, s->st, s->prop, &o)) {
        free(s->lessor);
        s->lessor = NULL;
        return; /* the lease methods stay unregistered: UNIMPLEMENTED rather than a crash */
    }
    api_add_method(s, "/etcdserverpb.Lease/LeaseGrant", false, on_grant);
    api_add_method(s, "/etcdserverpb.Lease/LeaseRevoke", false, on_revoke);
    api_add_method(s, "/etcdserverpb.Lease/LeaseTimeToLive", false, on_ttl);
    api_add_method(s, "/etcdserverpb.Lease/LeaseLeases", false, on_leases);
    api_add_method(s, "/etcdserverpb.Lease/LeaseKeepAlive", true, on_keepalive);
    s->methods[s->n_methods - 1].on_half_close = on_keepalive_half_close;
    s->methods[s->n_methods - 1].on_cancel = on_keepalive_cancel;
    api_add_method(s, "/cairn.Internal/LeaseRenew", false, on_internal_renew);
    api_add_method(s, "/cairn.Internal/LeaseTimeToLive", false, on_internal_ttl);
}

void api_lease_stop(struct api_server *s)
{
    if (s->lessor && !s->lessor->closing)
        lessor_close(s->lessor, NULL);
}

void api_lease_free(struct api_server *s)
{
    if (!s->lessor)
        return;
    lessor_free(s->lessor);
    free(s->lessor);
    s->lessor = NULL;
}
