/* api/server.c — wiring the services onto the gRPC server, and what their handlers share. */
#include "api/service.h"
#include "api/watch.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"

/* ---------------------------------------------------------------------------------------------- */
/* Per-call context */

static void *arena_pb_alloc(void *data, size_t size)
{
    return arena_alloc(data, size);
}
static void arena_pb_free(void *data, void *p)
{
    (void)data;
    (void)p; /* freed with the arena */
}

/* etcd's isRPCSupportedForLearner: a learner answers Status and serializable Ranges (Range checks
 * that itself once decoded) and refuses everything else; cairn's internal methods between
 * members are not client calls. */
static bool learner_serves(const char *path)
{
    return !strcmp(path, "/etcdserverpb.Maintenance/Status") ||
           !strcmp(path, "/etcdserverpb.KV/Range") || !strncmp(path, "/cairn.Internal/", 16);
}

int api_call_refusal(struct api_server *srv, struct grpc_call *call)
{
    if (srv->prop->is_learner(srv->prop) && !learner_serves(grpc_call_path(call)))
        return CAIRN_E_LEARNER_NOT_SUPPORTED;
    /* etcd's interceptor: a client that requires a leader ("hasleader" metadata, as clientv3's
     * WithRequireLeader sets it) gets "no leader" at once while there is none */
    const char *hl = grpc_call_header(call, "hasleader");
    if (hl && !strcmp(hl, "true") && srv->prop->leader(srv->prop) == 0)
        return CAIRN_E_NO_LEADER;
    return 0;
}

struct api_ctx *api_ctx_new(struct api_server *srv, struct grpc_call *call)
{
    struct api_ctx *c = calloc(1, sizeof *c);
    if (!c) {
        grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, cairn_strerror(CAIRN_E_NOMEM));
        return NULL;
    }
    c->srv = srv;
    c->call = call;
    c->alloc.alloc = arena_pb_alloc;
    c->alloc.free = arena_pb_free;
    c->alloc.allocator_data = &c->arena;
    int refuse = api_call_refusal(srv, call);
    if (refuse) {
        api_reply_err(c, refuse);
        return NULL;
    }
    return c;
}

static void ctx_free(struct api_ctx *c)
{
    arena_free(&c->arena);
    free(c);
}

void api_reply_status(struct api_ctx *c, int grpc_status, const char *message)
{
    grpc_call_finish(c->call, grpc_status, message);
    ctx_free(c);
}

void api_reply_err(struct api_ctx *c, int err)
{
    api_reply_status(c, cairn_err_grpc_code(err), cairn_strerror(err));
}

void api_reply(struct api_ctx *c, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = arena_alloc(&c->arena, n);
    if (!buf) {
        api_reply_err(c, CAIRN_E_NOMEM);
        return;
    }
    protobuf_c_message_pack(msg, buf);
    grpc_call_send(c->call, buf, n); /* copies; fails only if the client is gone */
    api_reply_status(c, GRPC_OK, NULL);
}

void *api_decode(struct api_ctx *c, const ProtobufCMessageDescriptor *d, const uint8_t *msg,
                 size_t len)
{
    void *m = protobuf_c_message_unpack(d, &c->alloc, len, msg);
    if (!m)
        api_reply_status(
            c, GRPC_INTERNAL,
            "grpc: error unmarshalling request: proto: cannot parse invalid wire-format "
            "data");
    return m;
}

void api_fill_member_header(struct api_server *s, Etcdserverpb__ResponseHeader *h)
{
    if (!h)
        return;
    h->cluster_id = s->prop->cluster_id(s->prop);
    h->member_id = s->cfg.self.id;
    h->raft_term = s->prop->term(s->prop);
}

void api_fill_header(struct api_server *s, Etcdserverpb__ResponseHeader *h)
{
    if (!h)
        return;
    api_fill_member_header(s, h);
    if (h->revision == 0)
        h->revision = api_current_rev(s);
}

int64_t api_current_rev(struct api_server *s)
{
    store_tx *tx;
    if (store_tx_begin_view(s->st, &tx))
        return 0;
    int64_t rev = store_tx_rev(tx);
    store_tx_end(tx);
    return rev;
}

static void on_read_index_ready(struct read_wait *w, int err)
{
    struct api_ctx *c = w->data;
    if (err)
        api_reply_err(c, err);
    else
        c->req_read(c);
}

void api_linearizable(struct api_ctx *c, void (*read)(struct api_ctx *c))
{
    c->req_read = read;
    c->rw.cb = on_read_index_ready;
    c->rw.data = c;
    int rc = c->srv->prop->read_index(c->srv->prop, &c->rw);
    if (rc == 1)
        read(c);
    else if (rc < 0)
        api_reply_err(c, rc);
}

int api_propose(struct api_ctx *c, void (*done)(struct proposal *p, int err))
{
    struct api_server *s = c->srv;
    Cairn__InternalRequest *r = &c->ireq;
    r->id = s->prop->next_request_id(s->prop);
    Cairn__InternalHeader *h = arena_alloc(&c->arena, sizeof *h);
    if (!h)
        return CAIRN_E_NOMEM;
    *h = (Cairn__InternalHeader)CAIRN__INTERNAL_HEADER__INIT;
    h->member_id = s->cfg.self.id;
    r->header = h;
    /* etcd refuses a request whose replicated form exceeds --max-request-bytes */
    if (protobuf_c_message_get_packed_size(&r->base) > s->cfg.max_request_bytes)
        return CAIRN_E_REQUEST_TOO_LARGE;
    c->prop.req = r;
    c->prop.cb = done;
    c->prop.data = c;
    c->prop.arena = &c->arena;
    return proposer_propose(s->prop, &c->prop);
}

/* ---------------------------------------------------------------------------------------------- */
/* Registration */

void api_add_method(struct api_server *s, const char *path, bool streaming,
                    void (*on_message)(struct grpc_call *, const uint8_t *, size_t, void *))
{
    if (s->n_methods == API_MAX_METHODS) {
        log_error("api: too many methods, %s not registered", path);
        return;
    }
    struct grpc_method *m = &s->methods[s->n_methods++];
    memset(m, 0, sizeof *m);
    m->path = path;
    m->streaming = streaming;
    m->on_message = on_message;
    m->ctx = s;
}

int api_server_init(struct api_server *s, uv_loop_t *loop, store *st, struct proposer *prop,
                    const struct api_config *cfg)
{
    memset(s, 0, sizeof *s);
    s->cfg = *cfg;
    s->loop = loop;
    s->st = st;
    s->prop = prop;
    /* gRPC's receive limit: the request limit plus etcd's allowance for gRPC overhead (512 KiB) */
    struct grpc_server_options o = {.max_recv_msg_size = cfg->max_request_bytes + 512 * 1024};
    int err = grpc_server_new(loop, &o, &s->grpc);
    if (err)
        return err;
    api_kv_register(s);
    api_watch_register(s);
    api_maintenance_register(s);
    api_cluster_register(s);
    api_health_register(s);
    api_lease_register(s);
    api_unimplemented_register(s);
    api_forward_register(s);
    api_snapshot_register(s);
    grpc_server_register(s->grpc, s->methods, s->n_methods);
    return api_watch_start(s) ? CAIRN_E_NOMEM : 0;
}

int api_server_listen(struct api_server *s, const char *host, int port)
{
    return grpc_server_listen(s->grpc, host, port);
}

static void on_grpc_down(void *arg)
{
    struct api_server *s = arg;
    /* every call is answered: nothing waits for a forward any more */
    api_forward_stop(s);
    api_cluster_publish_stop(s);
    api_watch_stop(s);
    api_lease_stop(s);
    s->shutdown_done(s->shutdown_arg);
}

void api_server_shutdown(struct api_server *s, void (*done)(void *arg), void *arg)
{
    s->stopping = true;
    s->shutdown_done = done;
    s->shutdown_arg = arg;
    grpc_server_shutdown(s->grpc, on_grpc_down, s);
}

void api_server_free(struct api_server *s)
{
    grpc_server_free(s->grpc);
    s->grpc = NULL;
    api_lease_free(s);
}
