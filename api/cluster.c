/* api/cluster.c — etcd's Cluster service (MemberList), and this member publishing itself.
 *
 * Membership is replicated: once started, a member proposes its name, peer URLs and client URLs
 * (etcd's publish), retrying until the entry is applied, and every member records them in the
 * store's member table. MemberList answers from that table, in member ID order; a member of the
 * initial cluster that has not published yet is listed from the flags with its peer URLs only, as
 * etcd lists a member that has not started (empty name, no client URLs). */
#include <stdlib.h>

#include "api/service.h"
#include "common/log.h"
#include "raft/etcd_conv.h"

#define PUBLISH_RETRY_MS 500

/* ---------------------------------------------------------------------------------------------- */
/* MemberList */

static int cmp_member(const void *a, const void *b)
{
    uint64_t x = (*(Etcdserverpb__Member *const *)a)->id;
    uint64_t y = (*(Etcdserverpb__Member *const *)b)->id;
    return x < y ? -1 : x > y;
}

static void on_member_list(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c || !api_decode(c, &etcdserverpb__member_list_request__descriptor, msg, len))
        return;
    const struct api_config *cfg = &c->srv->cfg;
    store_tx *tx;
    struct store_member *recs = NULL;
    size_t n_recs = 0;
    int err = store_tx_begin_view(c->srv->st, &tx);
    if (!err) {
        err = store_member_list(tx, &c->arena, &recs, &n_recs);
        store_tx_end(tx);
    }
    size_t cap = n_recs + cfg->n_members;
    Etcdserverpb__Member **members = arena_alloc(&c->arena, (cap ? cap : 1) * sizeof *members);
    if (!err && !members)
        err = CAIRN_E_NOMEM;
    size_t n = 0;
    for (size_t i = 0; !err && i < n_recs; i++) {
        members[n] = etcdserverpb__member__unpack(&c->alloc, recs[i].data.len, recs[i].data.data);
        if (!members[n])
            err = CAIRN_E_CORRUPT;
        n++;
    }
    for (size_t i = 0; !err && i < cfg->n_members; i++) {
        const struct api_member *m = &cfg->members[i];
        bool listed = false;
        for (size_t j = 0; j < n_recs; j++)
            listed |= recs[j].id == m->id;
        if (listed)
            continue;
        Etcdserverpb__Member *e = arena_alloc(&c->arena, sizeof *e);
        if (!e) {
            err = CAIRN_E_NOMEM;
            break;
        }
        *e = (Etcdserverpb__Member)ETCDSERVERPB__MEMBER__INIT;
        e->id = m->id;
        e->n_peerurls = m->n_peer_urls;
        e->peerurls = (char **)m->peer_urls;
        members[n++] = e;
    }
    if (err) {
        api_reply_err(c, err);
        return;
    }
    qsort(members, n, sizeof *members, cmp_member);
    Etcdserverpb__MemberListResponse r = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    r.n_members = n;
    r.members = members;
    if (!(r.header = conv_header(0, &c->arena))) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    api_fill_member_header(c->srv, r.header);
    api_reply(c, &r.base);
}

/* ---------------------------------------------------------------------------------------------- */
/* Publishing this member */

struct publish {
    struct proposal prop;
    Cairn__InternalRequest ireq;
    Cairn__InternalHeader hdr;
    Etcdserverpb__Member member;
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
    pb->hdr = (Cairn__InternalHeader)CAIRN__INTERNAL_HEADER__INIT;
    pb->hdr.member_id = self->id;
    pb->ireq = (Cairn__InternalRequest)CAIRN__INTERNAL_REQUEST__INIT;
    pb->ireq.id = s->prop->next_request_id(s->prop);
    pb->ireq.header = &pb->hdr;
    pb->ireq.request_case = CAIRN__INTERNAL_REQUEST__REQUEST_MEMBER_PUBLISH;
    pb->ireq.member_publish = &pb->member;
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
}
