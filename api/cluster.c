/* api/cluster.c — etcd's Cluster service: MemberList (this member alone until replication). */
#include "api/service.h"
#include "raft/etcd_conv.h"

static void on_member_list(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_ctx *c = api_ctx_new(ctx, call);
    if (!c || !api_decode(c, &etcdserverpb__member_list_request__descriptor, msg, len))
        return;
    const struct api_member *self = &c->srv->cfg.self;
    Etcdserverpb__Member m = ETCDSERVERPB__MEMBER__INIT;
    m.id = self->id;
    m.name = (char *)self->name;
    m.n_peerurls = self->n_peer_urls;
    m.peerurls = (char **)self->peer_urls;
    m.n_clienturls = self->n_client_urls;
    m.clienturls = (char **)self->client_urls;
    Etcdserverpb__Member *members[1] = {&m};
    Etcdserverpb__MemberListResponse r = ETCDSERVERPB__MEMBER_LIST_RESPONSE__INIT;
    r.n_members = 1;
    r.members = members;
    if (!(r.header = conv_header(0, &c->arena))) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    api_fill_member_header(c->srv, r.header);
    api_reply(c, &r.base);
}

void api_cluster_register(struct api_server *s)
{
    api_add_method(s, "/etcdserverpb.Cluster/MemberList", false, on_member_list);
}
