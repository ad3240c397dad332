/* api/forward.c — writes taken by a follower travel to the leader, over the leader's client port.
 *
 * Follower side: the proposer hands a request it cannot propose itself to api_forward(), which
 * sends it to the leader's internal method /cairn.Internal/Forward through the client library (one
 * client per leader, to the first client URL the leader published). The proposer answers the
 * waiting call when it applies the request itself; a failed forward is reported back with
 * forward_failed(). The proposer sends a request again when the call failed without an answer or
 * the leader no longer leads (raft/node.c), marked with resent_after; the applier drops a second
 * copy by its id (raft/fsm.c), so the request is applied at most once.
 *
 * Leader side: /cairn.Internal/Forward proposes the request as it came (its id and header name the
 * follower) and answers once it is applied, with an empty ForwardResponse or the request's storage
 * or raft error; the request's own etcd result is the follower's to compute. */
#include <stdlib.h>
#include <string.h>

#include "api/service.h"
#include "client/cairn_client.h"
#include "common/grpc_meta.h"
#include "common/log.h"
#include "common/url.h"
#include "raft/members.h"

static const struct cl_method forward_method = {
    .path = "/cairn.Internal/Forward",
    .request = &cairn__internal_request__descriptor,
    .response = &cairn__forward_response__descriptor,
    .idempotent = false,
};

struct fwd_call {
    struct cl_call call; /* first member */
    struct api_server *s;
    uint64_t id; /* the request's id */
};

int api_leader_endpoint(struct api_server *s, uint64_t leader, char *out, size_t n)
{
    Cairn__MemberRecord **list;
    size_t count;
    int err = members_load_view(s->st, &list, &count);
    if (err)
        return err;
    int found = CAIRN_E_NO_LEADER; /* it has not published where clients reach it yet */
    for (size_t i = 0; i < count && found; i++) {
        const Etcdserverpb__Member *m = list[i]->member;
        if (m->id != leader || m->n_clienturls == 0)
            continue;
        if (url_host_port(m->clienturls[0], out, n) == 0)
            found = 0;
    }
    members_free(list, count);
    return found;
}

static void on_client_closed(void *arg)
{
    (void)arg;
}

static void drop_client(struct api_server *s)
{
    if (s->fwd_client)
        cl_client_close(s->fwd_client, on_client_closed, NULL);
    s->fwd_client = NULL;
    s->fwd_leader = 0;
}

static int error_of(const struct cl_call *call);
static int leader_client(struct api_server *s, uint64_t leader);
static int call_leader(struct api_server *s, uint64_t leader, const struct cl_method *m,
                       const ProtobufCMessage *req, uint64_t id, cl_call_cb cb);

static void on_forwarded(struct cl_call *call)
{
    struct fwd_call *f = (struct fwd_call *)call;
    if (call->code != GRPC_OK) {
        int err = error_of(call);
        if (err == CAIRN_E_NOT_LEADER || err == CAIRN_E_LEADER_CHANGED)
            drop_client(f->s); /* ask again who leads before the next forward */
        f->s->prop->forward_failed(f->s->prop, f->id, err);
    }
    cl_call_reset(call);
    free(f);
}

int api_leader_call(struct api_server *s, uint64_t leader, struct cl_call *call,
                    const struct cl_method *m, const ProtobufCMessage *req)
{
    if (s->stopping)
        return CAIRN_E_STOPPED;
    int err = leader_client(s, leader);
    if (err)
        return err;
    if (!call->timeout_ms)
        call->timeout_ms = API_REQUEST_TIMEOUT_MS;
    return cl_call_start(s->fwd_client, call, m, req);
}

int api_leader_error(struct api_server *s, const struct cl_call *call)
{
    int err = error_of(call);
    if (err == CAIRN_E_NOT_LEADER || err == CAIRN_E_LEADER_CHANGED)
        drop_client(s); /* ask again who leads before the next call */
    return err;
}

/* Starts a call of method m to leader's internal methods; cb gets the fwd_call. */
static int call_leader(struct api_server *s, uint64_t leader, const struct cl_method *m,
                       const ProtobufCMessage *req, uint64_t id, cl_call_cb cb)
{
    struct fwd_call *f = calloc(1, sizeof *f);
    if (!f)
        return CAIRN_E_NOMEM;
    f->s = s;
    f->id = id;
    f->call.cb = cb;
    int err = api_leader_call(s, leader, &f->call, m, req);
    if (err)
        free(f);
    return err;
}

int api_forward(void *owner, const Cairn__InternalRequest *req, uint64_t leader,
                uint64_t resent_after)
{
    Cairn__InternalRequest sent = *req; /* shallow: the call packs it before this returns */
    sent.resent_after = resent_after;
    return call_leader(owner, leader, &forward_method, &sent.base, req->id, on_forwarded);
}

/* ---------------------------------------------------------------------------------------------- */
/* Read index */

static const struct cl_method read_index_method = {
    .path = "/cairn.Internal/ReadIndex",
    .request = &cairn__read_index_request__descriptor,
    .response = &cairn__read_index_response__descriptor,
    .idempotent = true,
};

/* The error a failed call to the leader gives the waiting caller: the leader's own (etcd's
 * message), or, when the call itself failed (connection lost, closed, timed out while leadership
 * moved), "leader changed": the request may or may not have been applied. */
static int error_of(const struct cl_call *call)
{
    int err = cairn_err_from_message(call->message);
    return err ? err : CAIRN_E_LEADER_CHANGED;
}

static void on_read_index(struct cl_call *call)
{
    struct fwd_call *f = (struct fwd_call *)call;
    struct api_server *s = f->s;
    int err = 0;
    uint64_t index = 0;
    if (call->code != GRPC_OK) {
        err = error_of(call);
        if (err == CAIRN_E_NOT_LEADER || err == CAIRN_E_LEADER_CHANGED)
            drop_client(s);
    } else {
        index = ((const Cairn__ReadIndexResponse *)call->response)->index;
    }
    cl_call_reset(call);
    free(f);
    s->prop->read_index_done(s->prop, err, index);
}

/* The client to leader's client port, made when the leader changed. */
static int leader_client(struct api_server *s, uint64_t leader)
{
    if (s->fwd_client && s->fwd_leader == leader)
        return 0;
    drop_client(s);
    char endpoint[256];
    int err = api_leader_endpoint(s, leader, endpoint, sizeof endpoint);
    if (err)
        return err;
    struct cl_options o;
    cl_options_default(&o);
    const char *eps[1] = {endpoint};
    o.endpoints = eps;
    o.n_endpoints = 1;
    if ((err = cl_client_new(s->loop, &o, &s->fwd_client)))
        return err;
    s->fwd_leader = leader;
    return 0;
}

int api_ask_read_index(void *owner, uint64_t leader)
{
    Cairn__ReadIndexRequest q = CAIRN__READ_INDEX_REQUEST__INIT;
    return call_leader(owner, leader, &read_index_method, &q.base, 0, on_read_index);
}

/* The leader's side: confirm leadership, answer the applied index. */
struct read_index_ctx {
    struct read_wait w;
    struct api_ctx *c;
};

static void on_leader_read_ready(struct read_wait *w, int err)
{
    struct read_index_ctx *r = (struct read_index_ctx *)w;
    struct api_ctx *c = r->c;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    Cairn__ReadIndexResponse resp = CAIRN__READ_INDEX_RESPONSE__INIT;
    resp.index = c->srv->prop->applied_index(c->srv->prop);
    c->srv->prop->followers_wait(c->srv->prop);
    api_reply(c, &resp.base);
}

static void on_read_index_call(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c || !api_decode(c, &cairn__read_index_request__descriptor, msg, len))
        return;
    struct read_index_ctx *r = arena_alloc(&c->arena, sizeof *r);
    if (!r) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    memset(r, 0, sizeof *r);
    r->c = c;
    r->w.cb = on_leader_read_ready;
    r->w.local_only = true;
    int rc = c->srv->prop->read_index(c->srv->prop, &r->w);
    if (rc == 1)
        on_leader_read_ready(&r->w, 0);
    else if (rc < 0)
        api_reply_err(c, rc);
}

void api_forward_stop(struct api_server *s)
{
    drop_client(s);
}

/* ---------------------------------------------------------------------------------------------- */
/* The leader's side */

static void on_forward_applied(struct proposal *p, int err)
{
    struct api_ctx *c = p->data;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    Cairn__ForwardResponse r = CAIRN__FORWARD_RESPONSE__INIT;
    c->srv->prop->followers_wait(c->srv->prop);
    api_reply(c, &r.base);
}

static void on_forward(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Cairn__InternalRequest *r = api_decode(c, &cairn__internal_request__descriptor, msg, len);
    if (!r)
        return;
    if (r->id == 0 || !r->header || r->header->member_id == 0 ||
        r->request_case == CAIRN__INTERNAL_REQUEST__REQUEST__NOT_SET) {
        api_reply_err(c, CAIRN_E_INVALID_ARGUMENT);
        return;
    }
    c->prop.req = r;
    c->prop.cb = on_forward_applied;
    c->prop.data = c;
    c->prop.arena = &c->arena;
    c->prop.local_only = true; /* a member that no longer leads says so; the follower asks again */
    int err = proposer_propose(c->srv->prop, &c->prop);
    if (err)
        api_reply_err(c, err);
}

void api_forward_register(struct api_server *s)
{
    api_add_method(s, "/cairn.Internal/Forward", false, on_forward);
    api_add_method(s, "/cairn.Internal/ReadIndex", false, on_read_index_call);
}
