/* api/cluster.c — etcd's Cluster service, and this member publishing itself.
 *
 * Membership is replicated (raft/members.h): once started, a member proposes its name, peer URLs
 * and client URLs (etcd's publish), with the initial cluster from its flags, retrying until the
 * entry is applied, and every member records them in the store's member table. MemberList answers
 * from that table, in member ID order; a member that has not published yet is listed with its peer
 * URLs only, as etcd lists a member that has not started (empty name, no client URLs). MemberAdd,
 * MemberRemove, MemberUpdate and MemberPromote are checked and recorded through the log; the
 * leader then brings libraft's configuration in line (raft/node.c). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "api/service.h"
#include "common/log.h"
#include "raft/etcd_conv.h"
#include "raft/identity.h"
#include "raft/members.h"

#define PUBLISH_RETRY_MS 500

/* ---------------------------------------------------------------------------------------------- */
/* MemberList */

static int cmp_member(const void *a, const void *b)
{
    uint64_t x = (*(Etcdserverpb__Member *const *)a)->id;
    uint64_t y = (*(Etcdserverpb__Member *const *)b)->id;
    return x < y ? -1 : x > y;
}

/* The live members, by id, decoded into the call's arena; initial members without a record yet
 * (nobody published) are taken from the flags. */
static int live_members(struct api_ctx *c, Etcdserverpb__Member ***out, size_t *n_out)
{
    const struct api_config *cfg = &c->srv->cfg;
    store_tx *tx;
    Cairn__MemberRecord **recs = NULL;
    size_t n_recs = 0;
    int err = store_tx_begin_view(c->srv->st, &tx);
    if (!err) {
        err = members_load(tx, &c->alloc, &recs, &n_recs);
        store_tx_end(tx);
    }
    if (err)
        return err;
    size_t cap = n_recs + cfg->n_members;
    Etcdserverpb__Member **members = arena_alloc(&c->arena, (cap ? cap : 1) * sizeof *members);
    if (!members)
        return CAIRN_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < n_recs; i++)
        if (!recs[i]->removed)
            members[n++] = recs[i]->member;
    for (size_t i = 0; i < cfg->n_members; i++) {
        const struct api_member *m = &cfg->members[i];
        bool recorded = false;
        for (size_t j = 0; j < n_recs; j++)
            recorded |= recs[j]->member->id == m->id;
        if (recorded)
            continue;
        Etcdserverpb__Member *e = arena_alloc(&c->arena, sizeof *e);
        if (!e)
            return CAIRN_E_NOMEM;
        *e = (Etcdserverpb__Member)ETCDSERVERPB__MEMBER__INIT;
        e->id = m->id;
        e->n_peerurls = m->n_peer_urls;
        e->peerurls = (char **)m->peer_urls;
        members[n++] = e;
    }
    qsort(members, n, sizeof *members, cmp_member);
    *out = members;
    *n_out = n;
    return 0;
}

static void on_member_list(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c || !api_decode(c, &etcdserverpb__member_list_request__descriptor, msg, len))
        return;
    Etcdserverpb__MemberListResponse r = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    int err = live_members(c, &r.members, &r.n_members);
    if (!err && !(r.header = conv_header(0, &c->arena)))
        err = CAIRN_E_NOMEM;
    if (err) {
        api_reply_err(c, err);
        return;
    }
    api_fill_member_header(c->srv, r.header);
    api_reply(c, &r.base);
}

/* ---------------------------------------------------------------------------------------------- */
/* MemberAdd, MemberRemove, MemberUpdate, MemberPromote */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* etcd's types.NewURLs: each URL trimmed, with scheme http, https, unix or unixs, a host:port and
 * no path; then sorted. The normalized copies are in the call's arena. */
static int peer_urls(struct api_ctx *c, char **in, size_t n, char ***out)
{
    if (n == 0)
        return CAIRN_E_MEMBER_BAD_URLS;
    char **urls = arena_alloc(&c->arena, n * sizeof *urls);
    if (!urls)
        return CAIRN_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *u = in[i];
        while (*u == ' ' || *u == '\t' || *u == '\n' || *u == '\r')
            u++;
        size_t len = strlen(u);
        while (len && (u[len - 1] == ' ' || u[len - 1] == '\t' || u[len - 1] == '\n' ||
                       u[len - 1] == '\r'))
            len--;
        const char *sep = strstr(u, "://");
        if (!sep || (size_t)(sep - u) > 5 || (size_t)(sep - u) >= len)
            return CAIRN_E_MEMBER_BAD_URLS;
        char scheme[6] = {0};
        for (size_t k = 0; k < (size_t)(sep - u); k++)
            scheme[k] = (char)tolower((unsigned char)u[k]);
        if (strcmp(scheme, "http") && strcmp(scheme, "https") && strcmp(scheme, "unix") &&
            strcmp(scheme, "unixs"))
            return CAIRN_E_MEMBER_BAD_URLS;
        const char *host = sep + 3;
        size_t host_len = len - (size_t)(host - u);
        const char *colon = memrchr(host, ':', host_len);
        if (!colon || colon == host || colon + 1 == host + host_len ||
            memchr(host, '/', host_len) || memchr(host, '?', host_len) ||
            memchr(host, '#', host_len))
            return CAIRN_E_MEMBER_BAD_URLS; /* no host:port, or a path */
        for (const char *p = colon + 1; p < host + host_len; p++)
            if (*p < '0' || *p > '9')
                return CAIRN_E_MEMBER_BAD_URLS;
        size_t sl = strlen(scheme);
        char *v = arena_alloc(&c->arena, sl + 3 + host_len + 1);
        if (!v)
            return CAIRN_E_NOMEM;
        memcpy(v, scheme, sl);
        memcpy(v + sl, "://", 3);
        memcpy(v + sl + 3, host, host_len);
        v[sl + 3 + host_len] = 0;
        urls[i] = v;
    }
    qsort(urls, n, sizeof *urls, cmp_str);
    *out = urls;
    return 0;
}

/* The answer once the change is applied: the member (for MemberAdd) and the members now. */
static void on_member_changed(struct proposal *p, int err)
{
    struct api_ctx *c = p->data;
    if (!err)
        err = p->res.err;
    Etcdserverpb__ResponseHeader *h = err ? NULL : conv_header(0, &c->arena);
    Etcdserverpb__Member **members = NULL;
    size_t n = 0;
    if (!err && !h)
        err = CAIRN_E_NOMEM;
    if (!err)
        err = live_members(c, &members, &n);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    api_fill_member_header(c->srv, h);
    const Cairn__MemberChange *mc = c->ireq.member_change;
    switch (mc->op) {
    case CAIRN__MEMBER_CHANGE__OP__ADD: {
        Etcdserverpb__MemberAddResponse r = ETCDSERVERPB__MEMBER_ADD_RESPONSE__INIT;
        r.header = h;
        r.members = members;
        r.n_members = n;
        for (size_t i = 0; i < n; i++)
            if (members[i]->id == mc->id)
                r.member = members[i];
        api_reply(c, &r.base);
        return;
    }
    case CAIRN__MEMBER_CHANGE__OP__REMOVE: {
        Etcdserverpb__MemberRemoveResponse r = ETCDSERVERPB__MEMBER_REMOVE_RESPONSE__INIT;
        r.header = h;
        r.members = members;
        r.n_members = n;
        api_reply(c, &r.base);
        return;
    }
    case CAIRN__MEMBER_CHANGE__OP__UPDATE: {
        Etcdserverpb__MemberUpdateResponse r = ETCDSERVERPB__MEMBER_UPDATE_RESPONSE__INIT;
        r.header = h;
        r.members = members;
        r.n_members = n;
        api_reply(c, &r.base);
        return;
    }
    default: {
        Etcdserverpb__MemberPromoteResponse r = ETCDSERVERPB__MEMBER_PROMOTE_RESPONSE__INIT;
        r.header = h;
        r.members = members;
        r.n_members = n;
        api_reply(c, &r.base);
        return;
    }
    }
}

static void propose_change(struct api_ctx *c, Cairn__MemberChange__Op op, uint64_t id, char **urls,
                           size_t n_urls, bool learner)
{
    Cairn__MemberChange *mc = arena_alloc(&c->arena, sizeof *mc);
    if (!mc) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    *mc = (Cairn__MemberChange)CAIRN__MEMBER_CHANGE__INIT;
    mc->op = op;
    mc->id = id;
    mc->peer_urls = urls;
    mc->n_peer_urls = n_urls;
    mc->is_learner = learner;
    c->ireq = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
    c->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_MEMBER_CHANGE;
    c->ireq.member_change = mc;
    int err = api_propose(c, on_member_changed);
    if (err)
        api_reply_err(c, err);
}

static void on_member_add(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__MemberAddRequest *q =
        api_decode(c, &etcdserverpb__member_add_request__descriptor, msg, len);
    if (!q)
        return;
    char **urls;
    int err = peer_urls(c, q->peerurls, q->n_peerurls, &urls);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    /* the ID a member started with these peer URLs and this cluster's token computes for itself */
    uint64_t id =
        identity_member_id((const char *const *)urls, q->n_peerurls, c->srv->cfg.cluster_token);
    propose_change(c, CAIRN__MEMBER_CHANGE__OP__ADD, id, urls, q->n_peerurls, q->islearner);
}

static void on_member_remove(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__MemberRemoveRequest *q =
        api_decode(c, &etcdserverpb__member_remove_request__descriptor, msg, len);
    if (q)
        propose_change(c, CAIRN__MEMBER_CHANGE__OP__REMOVE, q->id, NULL, 0, false);
}

static void on_member_update(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__MemberUpdateRequest *q =
        api_decode(c, &etcdserverpb__member_update_request__descriptor, msg, len);
    if (!q)
        return;
    char **urls;
    int err = peer_urls(c, q->peerurls, q->n_peerurls, &urls);
    if (err) {
        api_reply_err(c, err);
        return;
    }
    propose_change(c, CAIRN__MEMBER_CHANGE__OP__UPDATE, q->id, urls, q->n_peerurls, false);
}

static void on_member_promote(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c)
        return;
    Etcdserverpb__MemberPromoteRequest *q =
        api_decode(c, &etcdserverpb__member_promote_request__descriptor, msg, len);
    if (q)
        propose_change(c, CAIRN__MEMBER_CHANGE__OP__PROMOTE, q->id, NULL, 0, false);
}

/* ---------------------------------------------------------------------------------------------- */
/* Publishing this member */

struct publish {
    struct proposal prop;
    Cairn__InternalRequest ireq;
    Cairn__InternalHeader hdr;
    Cairn__MemberPublish pub;
    Etcdserverpb__Member member;
    Etcdserverpb__Member initial[API_MAX_MEMBERS];
    Etcdserverpb__Member *initial_ptrs[API_MAX_MEMBERS];
    struct arena arena;
    struct api_server *srv;
};

static void publish(struct api_server *s);

static void on_publish_timer(uv_timer_t *t)
{
    publish(t->data);
}

static void on_published(struct proposal *p, int err)
{
    struct publish *pb = p->data;
    struct api_server *s = pb->srv;
    arena_free(&pb->arena);
    free(pb);
    s->publishing = false;
    if (s->stopping)
        return;
    if (err) {
        log_debug("cairnd: publishing this member failed (%s); retrying", cairn_strerror(err));
        uv_timer_start(&s->publish_timer, on_publish_timer, PUBLISH_RETRY_MS, 0);
        return;
    }
    s->published = true;
    log_info("cairnd: published this member's name and client URLs to the cluster");
}

static void publish(struct api_server *s)
{
    if (s->published || s->publishing || s->stopping)
        return;
    struct publish *pb = calloc(1, sizeof *pb);
    if (!pb) {
        uv_timer_start(&s->publish_timer, on_publish_timer, PUBLISH_RETRY_MS, 0);
        return;
    }
    const struct api_member *self = &s->cfg.self;
    pb->srv = s;
    pb->member = (Etcdserverpb__Member)ETCDSERVERPB__MEMBER__INIT;
    pb->member.id = self->id;
    pb->member.name = (char *)self->name;
    pb->member.n_peerurls = self->n_peer_urls;
    pb->member.peerurls = (char **)self->peer_urls;
    pb->member.n_clienturls = self->n_client_urls;
    pb->member.clienturls = (char **)self->client_urls;
    pb->pub = (Cairn__MemberPublish)CAIRN__MEMBER_PUBLISH__INIT;
    pb->pub.self = &pb->member;
    for (size_t i = 0; i < s->cfg.n_members && i < API_MAX_MEMBERS; i++) {
        const struct api_member *m = &s->cfg.members[i];
        pb->initial[i] = (Etcdserverpb__Member)ETCDSERVERPB__MEMBER__INIT;
        pb->initial[i].id = m->id;
        pb->initial[i].n_peerurls = m->n_peer_urls;
        pb->initial[i].peerurls = (char **)m->peer_urls;
        pb->initial_ptrs[i] = &pb->initial[i];
        pb->pub.n_initial = i + 1;
    }
    pb->pub.initial = pb->initial_ptrs;
    pb->hdr = (Cairn__InternalHeader)CAIRN__INTERNAL_HEADER__INIT;
    pb->hdr.member_id = self->id;
    pb->ireq = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
    pb->ireq.id = s->prop->next_request_id(s->prop);
    pb->ireq.header = &pb->hdr;
    pb->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_MEMBER_PUBLISH;
    pb->ireq.member_publish = &pb->pub;
    pb->prop.req = &pb->ireq;
    pb->prop.cb = on_published;
    pb->prop.data = pb;
    pb->prop.arena = &pb->arena;
    if (proposer_propose(s->prop, &pb->prop)) {
        free(pb);
        uv_timer_start(&s->publish_timer, on_publish_timer, PUBLISH_RETRY_MS, 0);
        return;
    }
    s->publishing = true;
}

void api_cluster_publish_start(struct api_server *s)
{
    uv_timer_init(s->loop, &s->publish_timer);
    s->publish_timer.data = s;
    s->publish_started = true;
    publish(s);
}

static void on_timer_closed(uv_handle_t *h)
{
    (void)h;
}

void api_cluster_publish_stop(struct api_server *s)
{
    if (s->publish_started)
        uv_close((uv_handle_t *)&s->publish_timer, on_timer_closed);
    s->publish_started = false;
}

void api_cluster_register(struct api_server *s)
{
    api_add_method(s, "/etcdserverpb.Cluster/MemberList", false, on_member_list);
    api_add_method(s, "/etcdserverpb.Cluster/MemberAdd", false, on_member_add);
    api_add_method(s, "/etcdserverpb.Cluster/MemberRemove", false, on_member_remove);
    api_add_method(s, "/etcdserverpb.Cluster/MemberUpdate", false, on_member_update);
    api_add_method(s, "/etcdserverpb.Cluster/MemberPromote", false, on_member_promote);
}
