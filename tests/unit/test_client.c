/* tests/unit/test_client.c — the client library against the real server, in one process.
 *
 * The server (api/ + a single-member raft/node + store, as cairnd wires them) runs on its own loop
 * in a thread; the client runs on the test's loop. Fakes on the test's loop stand for broken
 * servers: a port nothing listens on, an HTTP/2 server that never answers (it records the request
 * headers), and one that drops the connection as soon as a request arrives. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "api/h2.h"
#include "api/server.h"
#include "client/cairn_client.h"
#include "client/internal.h" /* cl_conn_fail: a connection lost under a watch */
#include "common/error.h"
#include "raft/node.h"
#include "tests/unit/helpers/fixture.h"

/* ---------------------------------------------------------------------------------------------- */
/* The real server, in a thread */

struct srv {
    struct fx *store_fx;   /* temporary store */
    uv_loop_t loop;        /* the server's loop */
    uv_async_t stop;       /* asks the server loop to shut down */
    struct node node;      /* a single-member cluster */
    char raft_dir[64];     /* its log */
    struct api_server api; /* etcd's services */
    pthread_t thread;      /* runs loop */
    int port;              /* where it listens */
    char endpoint[32];     /* "127.0.0.1:port" */
};

static void on_node_closed(struct node *n)
{
    struct srv *s = (struct srv *)((char *)n - offsetof(struct srv, node));
    uv_close((uv_handle_t *)&s->stop, NULL);
}

static void on_api_stopped(void *arg)
{
    struct srv *s = arg;
    node_close(&s->node, on_node_closed);
}

static void on_stop(uv_async_t *a)
{
    struct srv *s = a->data;
    api_server_shutdown(&s->api, on_api_stopped, s);
}

static void *srv_main(void *arg)
{
    struct srv *s = arg;
    uv_run(&s->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* A TCP port on 127.0.0.1 that nothing listens on now. */
static int free_tcp_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static const char *const peer_urls[] = {"http://127.0.0.1:2380"};
static const char *const client_urls[] = {"http://127.0.0.1:2379"};

static struct srv *srv_start(void)
{
    struct srv *s = calloc(1, sizeof *s);
    s->store_fx = fx_open(NULL);
    assert_int_equal(uv_loop_init(&s->loop), 0);
    snprintf(s->raft_dir, sizeof s->raft_dir, "/tmp/cairn-test-raft-XXXXXX");
    assert_non_null(mkdtemp(s->raft_dir));
    struct node_options o;
    node_options_default(&o);
    char address[32];
    snprintf(address, sizeof address, "127.0.0.1:%d", free_tcp_port());
    o.id = 0xabcd;
    o.cluster_id = 0x1234; /* as the API configuration below says */
    o.address = address;
    o.dir = s->raft_dir;
    o.peers[0].id = o.id;
    snprintf(o.peers[0].address, sizeof o.peers[0].address, "%s", address);
    o.n_peers = 1;
    o.bootstrap = true;
    char why[256];
    assert_int_equal(node_start(&s->node, &s->loop, s->store_fx->st, &o, why, sizeof why), 0);
    struct api_config cfg = {.cluster_id = 0x1234,
                             .self = {0xabcd, "test", peer_urls, 1, client_urls, 1},
                             .max_request_bytes = 1572864,
                             .max_txn_ops = 128};
    assert_int_equal(api_server_init(&s->api, &s->loop, s->store_fx->st, &s->node.base, &cfg), 0);
    s->node.applied = api_applied; /* as cairnd wires it: watches see what is applied */
    s->node.owner = &s->api;
    api_cluster_publish_start(&s->api); /* as cairnd does: MemberList lists this member */
    assert_int_equal(api_server_listen(&s->api, "127.0.0.1", 0), 0);
    s->port = grpc_server_port(s->api.grpc);
    snprintf(s->endpoint, sizeof s->endpoint, "127.0.0.1:%d", s->port);
    uv_async_init(&s->loop, &s->stop, on_stop);
    s->stop.data = s;
    assert_int_equal(pthread_create(&s->thread, NULL, srv_main, s), 0);
    return s;
}

static void srv_stop(struct srv *s)
{
    if (!s)
        return;
    uv_async_send(&s->stop);
    pthread_join(s->thread, NULL);
    api_server_free(&s->api);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    fx_close(s->store_fx);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->raft_dir);
    assert_int_equal(system(cmd), 0);
    free(s);
}

/* ---------------------------------------------------------------------------------------------- */
/* Fakes on the test's loop */

enum fake_kind { FAKE_SILENT, FAKE_DROP };

struct fake {
    enum fake_kind kind;
    uv_tcp_t listener;
    int port;
    char endpoint[32];
    struct h2_conn *conns[8]; /* FAKE_SILENT: accepted connections */
    size_t n_conns;
    uv_tcp_t drops[8]; /* FAKE_DROP: accepted sockets */
    size_t n_drops;
    int requests;      /* request header blocks (SILENT) or reads (DROP) seen */
    char timeout[16];  /* grpc-timeout of the last request, "" when none */
    char path[64];     /* :path of the last request */
    char hasleader[8]; /* its "hasleader" metadata, "" when none */
    uint8_t rbuf[H2_READ_BUFFER_SIZE];
    uint8_t dbuf[4096];
};

static void silent_request(struct h2_conn *c, int32_t id, struct h2_headers *hs)
{
    struct fake *f = h2_conn_data(c);
    const char *t = h2_headers_get(hs, "grpc-timeout");
    const char *p = h2_headers_get(hs, ":path");
    snprintf(f->timeout, sizeof f->timeout, "%s", t ? t : "");
    snprintf(f->path, sizeof f->path, "%s", p ? p : "");
    const char *hl = h2_headers_get(hs, "hasleader");
    snprintf(f->hasleader, sizeof f->hasleader, "%s", hl ? hl : "");
    f->requests++;
    (void)id;
    free(hs);
}

static void silent_nop_data(struct h2_conn *c, void *sd, const uint8_t *d, size_t n)
{
    (void)c, (void)sd, (void)d, (void)n;
}
static void silent_nop_end(struct h2_conn *c, void *sd)
{
    (void)c, (void)sd;
}
static void silent_nop_close(struct h2_conn *c, void *sd, uint32_t e)
{
    (void)c, (void)sd, (void)e;
}
static ssize_t silent_body(struct h2_conn *c, void *sd, uint8_t *b, size_t n, uint32_t *fl)
{
    (void)c, (void)sd, (void)b, (void)n, (void)fl;
    return NGHTTP2_ERR_DEFERRED;
}
static void silent_conn_close(struct h2_conn *c)
{
    struct fake *f = h2_conn_data(c);
    for (size_t i = 0; i < f->n_conns; i++)
        if (f->conns[i] == c)
            f->conns[i] = NULL;
}

static const struct h2_handler silent_handler = {
    .on_request = silent_request,
    .on_data = silent_nop_data,
    .on_end_stream = silent_nop_end,
    .on_stream_close = silent_nop_close,
    .read_body = silent_body,
    .on_close = silent_conn_close,
};

static void drop_alloc(uv_handle_t *h, size_t sz, uv_buf_t *buf)
{
    (void)sz;
    struct fake *f = h->data;
    *buf = uv_buf_init((char *)f->dbuf, sizeof f->dbuf);
}

static void drop_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    (void)buf;
    struct fake *f = s->data;
    if (n == 0)
        return;
    /* the client's preface, SETTINGS and first request arrive together or in pieces: drop the
     * connection once anything beyond the 24-byte preface is in, as a server killed mid-call */
    f->requests++;
    if (!uv_is_closing((uv_handle_t *)s))
        uv_close((uv_handle_t *)s, NULL);
}

static void fake_connection(uv_stream_t *l, int status)
{
    struct fake *f = l->data;
    assert_int_equal(status, 0);
    if (f->kind == FAKE_SILENT) {
        struct h2_options o;
        h2_options_default(&o);
        assert_true(f->n_conns < 8);
        assert_int_equal(h2_conn_accept(l, &o, &silent_handler, f, f->rbuf, &f->conns[f->n_conns]),
                         0);
        f->n_conns++;
    } else {
        assert_true(f->n_drops < 8);
        uv_tcp_t *t = &f->drops[f->n_drops++];
        uv_tcp_init(l->loop, t);
        t->data = f;
        assert_int_equal(uv_accept(l, (uv_stream_t *)t), 0);
        uv_read_start((uv_stream_t *)t, drop_alloc, drop_read);
    }
}

static struct fake *fake_start(uv_loop_t *loop, enum fake_kind kind)
{
    struct fake *f = calloc(1, sizeof *f);
    f->kind = kind;
    uv_tcp_init(loop, &f->listener);
    f->listener.data = f;
    struct sockaddr_in a;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&f->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->listener, 16, fake_connection), 0);
    struct sockaddr_in got;
    int len = sizeof got;
    uv_tcp_getsockname(&f->listener, (struct sockaddr *)&got, &len);
    f->port = ntohs(got.sin_port);
    snprintf(f->endpoint, sizeof f->endpoint, "127.0.0.1:%d", f->port);
    return f;
}

static void fake_stop(struct fake *f, uv_loop_t *loop)
{
    uv_close((uv_handle_t *)&f->listener, NULL);
    for (size_t i = 0; i < f->n_conns; i++)
        if (f->conns[i])
            h2_conn_close(f->conns[i]);
    for (size_t i = 0; i < f->n_drops; i++)
        if (!uv_is_closing((uv_handle_t *)&f->drops[i]))
            uv_close((uv_handle_t *)&f->drops[i], NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    uv_run(loop, UV_RUN_NOWAIT);
    free(f);
}

/* "127.0.0.1:port" of a port nothing listens on (bound, then released). */
static void closed_endpoint(char out[32])
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    uv_tcp_t t;
    uv_tcp_init(&loop, &t);
    struct sockaddr_in a, got;
    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_bind(&t, (struct sockaddr *)&a, 0);
    int len = sizeof got;
    uv_tcp_getsockname(&t, (struct sockaddr *)&got, &len);
    snprintf(out, 32, "127.0.0.1:%d", ntohs(got.sin_port));
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
}

/* ---------------------------------------------------------------------------------------------- */
/* Test state */

struct t {
    uv_loop_t loop;
    struct srv *srv;
    struct cl_client *c;
    bool closed;
};

static int setup(void **state)
{
    struct t *t = calloc(1, sizeof *t);
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->srv = srv_start();
    *state = t;
    return 0;
}

static void on_client_closed(void *arg)
{
    ((struct t *)arg)->closed = true;
}

static void close_client(struct t *t)
{
    if (!t->c)
        return;
    cl_client_close(t->c, on_client_closed, t);
    t->c = NULL;
    while (!t->closed)
        uv_run(&t->loop, UV_RUN_ONCE);
    t->closed = false;
}

static int teardown(void **state)
{
    struct t *t = *state;
    close_client(t);
    srv_stop(t->srv);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
    free(t);
    return 0;
}

static void client_with(struct t *t, const char *const *eps, size_t n, unsigned conns)
{
    struct cl_options o;
    cl_options_default(&o);
    o.endpoints = eps;
    o.n_endpoints = n;
    o.conns_per_endpoint = conns;
    o.dial_timeout_ms = 1000;
    assert_int_equal(cl_client_new(&t->loop, &o, &t->c), 0);
}

static void client_live(struct t *t)
{
    const char *eps[] = {t->srv->endpoint};
    client_with(t, eps, 1, 1);
}

static void on_done(struct cl_call *call)
{
    (*(int *)call->data)++;
}

/* Runs one call to completion on the test's loop; returns its code. */
static int run_call(struct t *t, struct cl_call *call, const struct cl_method *m,
                    const ProtobufCMessage *req)
{
    int done = 0;
    call->cb = on_done;
    call->data = &done;
    assert_int_equal(cl_call_start(t->c, call, m, req), 0);
    assert_int_equal(done, 0); /* never from inside the start */
    while (!done)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(done, 1);
    return call->code;
}

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static int put(struct t *t, const char *k, const char *v)
{
    Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
    req.key = bin(k);
    req.value = bin(v);
    struct cl_call call = {0};
    int code = run_call(t, &call, &cl_method_put, &req.base);
    cl_call_reset(&call);
    return code;
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests: every call against the real server */

static void test_put_and_range(void **state)
{
    struct t *t = *state;
    client_live(t);
    Etcdserverpb__PutRequest preq = ETCDSERVERPB__PUT_REQUEST__INIT;
    preq.key = bin("foo");
    preq.value = bin("bar");
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_put, &preq.base), GRPC_OK);
    Etcdserverpb__PutResponse *pres = (Etcdserverpb__PutResponse *)call.response;
    assert_non_null(pres);
    assert_int_equal(pres->header->revision, 2);
    assert_int_equal(pres->header->cluster_id, 0x1234);
    assert_int_equal(pres->header->member_id, 0xabcd);
    assert_string_equal(call.endpoint, t->srv->endpoint);
    assert_int_equal(call.attempts, 1);
    cl_call_reset(&call);

    Etcdserverpb__RangeRequest rreq = ETCDSERVERPB__RANGE_REQUEST__INIT;
    rreq.key = bin("foo");
    assert_int_equal(run_call(t, &call, &cl_method_range, &rreq.base), GRPC_OK);
    Etcdserverpb__RangeResponse *rres = (Etcdserverpb__RangeResponse *)call.response;
    assert_int_equal(rres->n_kvs, 1);
    assert_int_equal(rres->count, 1);
    assert_memory_equal(rres->kvs[0]->value.data, "bar", 3);
    assert_int_equal(rres->kvs[0]->create_revision, 2);
    assert_int_equal(rres->kvs[0]->version, 1);
    cl_call_reset(&call);
}

static void test_range_options(void **state)
{
    struct t *t = *state;
    client_live(t);
    for (int i = 0; i < 5; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        assert_int_equal(put(t, k, "v"), GRPC_OK);
    }
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin("k");
    req.range_end = bin("l");
    req.limit = 2;
    req.sort_order = ETCDSERVERPB__RANGE_REQUEST__SORT_ORDER__DESCEND;
    req.keys_only = true;
    req.serializable = true;
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_OK);
    Etcdserverpb__RangeResponse *res = (Etcdserverpb__RangeResponse *)call.response;
    assert_int_equal(res->n_kvs, 2);
    assert_int_equal(res->count, 5);
    assert_true(res->more);
    assert_memory_equal(res->kvs[0]->key.data, "k4", 2);
    assert_int_equal(res->kvs[0]->value.len, 0);
    cl_call_reset(&call);

    req.count_only = true;
    req.limit = 0;
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_OK);
    res = (Etcdserverpb__RangeResponse *)call.response;
    assert_int_equal(res->n_kvs, 0);
    assert_int_equal(res->count, 5);
    cl_call_reset(&call);
}

static void test_delete_txn_compact(void **state)
{
    struct t *t = *state;
    client_live(t);
    assert_int_equal(put(t, "a", "1"), GRPC_OK); /* rev 2 */
    assert_int_equal(put(t, "b", "2"), GRPC_OK); /* rev 3 */

    Etcdserverpb__DeleteRangeRequest dreq = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    dreq.key = bin("a");
    dreq.prev_kv = true;
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_delete_range, &dreq.base), GRPC_OK);
    Etcdserverpb__DeleteRangeResponse *dres = (Etcdserverpb__DeleteRangeResponse *)call.response;
    assert_int_equal(dres->deleted, 1);
    assert_int_equal(dres->n_prev_kvs, 1);
    assert_memory_equal(dres->prev_kvs[0]->value.data, "1", 1);
    cl_call_reset(&call);

    /* txn: if b's value is "2" then put c */
    Etcdserverpb__Compare cmp = ETCDSERVERPB__COMPARE__INIT;
    cmp.result = ETCDSERVERPB__COMPARE__COMPARE_RESULT__EQUAL;
    cmp.target = ETCDSERVERPB__COMPARE__COMPARE_TARGET__VALUE;
    cmp.key = bin("b");
    cmp.target_union_case = ETCDSERVERPB__COMPARE__TARGET_UNION_VALUE;
    cmp.value = bin("2");
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = bin("c");
    p.value = bin("3");
    Etcdserverpb__RequestOp op = ETCDSERVERPB__REQUEST_OP__INIT;
    op.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    op.request_put = &p;
    Etcdserverpb__Compare *cmps[] = {&cmp};
    Etcdserverpb__RequestOp *ops[] = {&op};
    Etcdserverpb__TxnRequest treq = ETCDSERVERPB__TXN_REQUEST__INIT;
    treq.n_compare = 1;
    treq.compare = cmps;
    treq.n_success = 1;
    treq.success = ops;
    assert_int_equal(run_call(t, &call, &cl_method_txn, &treq.base), GRPC_OK);
    Etcdserverpb__TxnResponse *tres = (Etcdserverpb__TxnResponse *)call.response;
    assert_true(tres->succeeded);
    assert_int_equal(tres->n_responses, 1);
    assert_int_equal(tres->header->revision, 5);
    cl_call_reset(&call);

    Etcdserverpb__CompactionRequest creq = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    creq.revision = 4;
    assert_int_equal(run_call(t, &call, &cl_method_compact, &creq.base), GRPC_OK);
    cl_call_reset(&call);

    /* a read below the compacted revision: etcd's error, code and message */
    Etcdserverpb__RangeRequest rreq = ETCDSERVERPB__RANGE_REQUEST__INIT;
    rreq.key = bin("b");
    rreq.revision = 2;
    assert_int_equal(run_call(t, &call, &cl_method_range, &rreq.base), GRPC_OUT_OF_RANGE);
    assert_string_equal(call.message, "etcdserver: mvcc: required revision has been compacted");
    assert_null(call.response);
    char *text = cl_call_error_text(&call);
    assert_string_equal(text, "etcdserver: mvcc: required revision has been compacted");
    free(text);
    assert_int_equal(call.attempts, 1); /* not a retryable error */
    cl_call_reset(&call);
}

static void test_maintenance_and_cluster(void **state)
{
    struct t *t = *state;
    client_live(t);
    assert_int_equal(put(t, "x", "y"), GRPC_OK);
    struct cl_call call = {0};

    Etcdserverpb__StatusRequest sreq = ETCDSERVERPB__STATUS_REQUEST__INIT;
    assert_int_equal(run_call(t, &call, &cl_method_status, &sreq.base), GRPC_OK);
    Etcdserverpb__StatusResponse *s = (Etcdserverpb__StatusResponse *)call.response;
    assert_string_equal(s->version, API_ETCD_VERSION);
    assert_int_equal(s->leader, 0xabcd);
    assert_true(s->dbsize > 0);
    cl_call_reset(&call);

    Etcdserverpb__HashKVRequest hreq = ETCDSERVERPB__HASH_KVREQUEST__INIT;
    assert_int_equal(run_call(t, &call, &cl_method_hash_kv, &hreq.base), GRPC_OK);
    Etcdserverpb__HashKVResponse *h = (Etcdserverpb__HashKVResponse *)call.response;
    uint32_t first = h->hash;
    assert_int_equal(h->header->revision, 2);
    cl_call_reset(&call);
    assert_int_equal(run_call(t, &call, &cl_method_hash_kv, &hreq.base), GRPC_OK);
    assert_int_equal(((Etcdserverpb__HashKVResponse *)call.response)->hash, first);
    cl_call_reset(&call);

    Etcdserverpb__HashRequest hr = ETCDSERVERPB__HASH_REQUEST__INIT;
    assert_int_equal(run_call(t, &call, &cl_method_hash, &hr.base), GRPC_OK);
    cl_call_reset(&call);

    Etcdserverpb__MemberListRequest mreq = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    assert_int_equal(run_call(t, &call, &cl_method_member_list, &mreq.base), GRPC_OK);
    Etcdserverpb__MemberListResponse *m = (Etcdserverpb__MemberListResponse *)call.response;
    assert_int_equal(m->n_members, 1);
    assert_int_equal(m->members[0]->id, 0xabcd);
    assert_string_equal(m->members[0]->name, "test");
    assert_string_equal(m->members[0]->clienturls[0], client_urls[0]);
    cl_call_reset(&call);

    Etcdserverpb__AlarmRequest areq = ETCDSERVERPB__ALARM_REQUEST__INIT;
    assert_int_equal(run_call(t, &call, &cl_method_alarm, &areq.base), GRPC_OK);
    assert_int_equal(((Etcdserverpb__AlarmResponse *)call.response)->n_alarms, 0);
    cl_call_reset(&call);
}

/* Many calls in flight at once, multiplexed over a few connections, each answered once. */
static void test_many_concurrent_calls(void **state)
{
    struct t *t = *state;
    const char *eps[] = {t->srv->endpoint};
    client_with(t, eps, 1, 4);
    enum { N = 2000 };
    struct cl_call *calls = calloc(N, sizeof *calls);
    char(*keys)[16] = calloc(N, 16);
    int done = 0;
    for (int i = 0; i < N; i++) {
        Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
        snprintf(keys[i], 16, "key%05d", i);
        req.key = bin(keys[i]);
        req.value = bin("v");
        calls[i].cb = on_done;
        calls[i].data = &done;
        assert_int_equal(cl_put(t->c, &calls[i], &req), 0);
    }
    while (done < N)
        uv_run(&t->loop, UV_RUN_ONCE);
    int64_t max_rev = 0;
    for (int i = 0; i < N; i++) {
        assert_int_equal(calls[i].code, GRPC_OK);
        int64_t r = ((Etcdserverpb__PutResponse *)calls[i].response)->header->revision;
        max_rev = r > max_rev ? r : max_rev;
        cl_call_reset(&calls[i]);
    }
    assert_int_equal(done, N);
    assert_int_equal(max_rev, N + 1);
    free(calls);
    free(keys);
}

/* A response above max_recv_bytes is refused, as grpc-go refuses it. */
static void test_response_too_large(void **state)
{
    struct t *t = *state;
    client_live(t);
    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(put(t, "big", big), GRPC_OK);
    close_client(t);
    struct cl_options o;
    cl_options_default(&o);
    const char *eps[] = {t->srv->endpoint};
    o.endpoints = eps;
    o.n_endpoints = 1;
    o.max_recv_bytes = 1024;
    assert_int_equal(cl_client_new(&t->loop, &o, &t->c), 0);
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin("big");
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_RESOURCE_EXHAUSTED);
    assert_non_null(strstr(call.message, "grpc: received message larger than max"));
    cl_call_reset(&call);
    /* the connection is still good for the next call */
    req.key = bin("small");
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_OK);
    cl_call_reset(&call);
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests: deadlines, cancellation, close */

static void test_deadline_sent_and_enforced(void **state)
{
    struct t *t = *state;
    struct fake *f = fake_start(&t->loop, FAKE_SILENT);
    const char *eps[] = {f->endpoint};
    client_with(t, eps, 1, 1);
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin("k");
    struct cl_call call = {.timeout_ms = 300};
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_DEADLINE_EXCEEDED);
    assert_string_equal(call.message, "context deadline exceeded");
    char *text = cl_call_error_text(&call);
    assert_string_equal(text, "context deadline exceeded");
    free(text);
    assert_int_equal(f->requests, 1);
    assert_string_equal(f->path, "/etcdserverpb.KV/Range");
    uint64_t ms = 0;
    assert_int_equal(grpc_timeout_parse(f->timeout, &ms), 0);
    assert_true(ms > 0 && ms <= 300);
    cl_call_reset(&call);
    close_client(t);
    fake_stop(f, &t->loop);
}

static void test_cancel(void **state)
{
    struct t *t = *state;
    struct fake *f = fake_start(&t->loop, FAKE_SILENT);
    const char *eps[] = {f->endpoint};
    client_with(t, eps, 1, 1);
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin("k");
    int done = 0;
    struct cl_call call = {.cb = on_done, .data = &done};
    assert_int_equal(cl_range(t->c, &call, &req), 0);
    while (f->requests == 0)
        uv_run(&t->loop, UV_RUN_ONCE);
    cl_call_cancel(&call);
    assert_int_equal(done, 0);
    while (!done)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(call.code, GRPC_CANCELLED);
    assert_string_equal(call.message, "context canceled");
    cl_call_cancel(&call); /* finished: nothing happens */
    assert_int_equal(done, 1);
    cl_call_reset(&call);
    close_client(t);
    fake_stop(f, &t->loop);
}

static void test_close_with_calls_in_flight(void **state)
{
    struct t *t = *state;
    struct fake *f = fake_start(&t->loop, FAKE_SILENT);
    const char *eps[] = {f->endpoint};
    client_with(t, eps, 1, 1);
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin("k");
    int done = 0;
    struct cl_call calls[3] = {{.cb = on_done, .data = &done},
                               {.cb = on_done, .data = &done},
                               {.cb = on_done, .data = &done}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(cl_range(t->c, &calls[i], &req), 0);
    while (f->requests < 3)
        uv_run(&t->loop, UV_RUN_ONCE);
    close_client(t);
    assert_int_equal(done, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(calls[i].code, GRPC_CANCELLED);
        assert_string_equal(calls[i].message, "grpc: the client connection is closing");
        cl_call_reset(&calls[i]);
    }
    fake_stop(f, &t->loop);
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests: endpoints and failover */

static void test_bad_options(void **state)
{
    struct t *t = *state;
    const char *bad[] = {"https://127.0.0.1:2379", "127.0.0.1", "127.0.0.1:0",
                         "127.0.0.1:99999",        ":2379",     "127.0.0.1:12a",
                         "unix:///tmp/x",          "[::1]2379", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct cl_options o;
        cl_options_default(&o);
        o.endpoints = &bad[i];
        o.n_endpoints = 1;
        struct cl_client *c = (struct cl_client *)1;
        assert_int_equal(cl_client_new(&t->loop, &o, &c), CAIRN_E_INVALID_ARGUMENT);
        assert_null(c);
    }
    struct cl_options o;
    cl_options_default(&o);
    struct cl_client *c;
    assert_int_equal(cl_client_new(&t->loop, &o, &c), CAIRN_E_INVALID_ARGUMENT); /* none */

    const char *good[] = {"http://127.0.0.1:2379/", "localhost:2379", "[::1]:2379"};
    o.endpoints = good;
    o.n_endpoints = 3;
    assert_int_equal(cl_client_new(&t->loop, &o, &t->c), 0);
    const char *const *names;
    assert_int_equal(cl_client_endpoints(t->c, &names), 3);
    assert_string_equal(names[0], "127.0.0.1:2379");
    assert_string_equal(names[1], "localhost:2379");
    assert_string_equal(names[2], "[::1]:2379");

    /* a request of the wrong type for the method: refused, no callback */
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    int done = 0;
    struct cl_call call = {.cb = on_done, .data = &done};
    assert_int_equal(cl_call_start(t->c, &call, &cl_method_put, &req.base),
                     CAIRN_E_INVALID_ARGUMENT);
    uv_run(&t->loop, UV_RUN_NOWAIT);
    assert_int_equal(done, 0);
}

/* A read through [unreachable, live] is retried on the live endpoint; so is a write that never
 * left the client (its connection never came up). */
static void test_failover_unreachable(void **state)
{
    struct t *t = *state;
    char dead[32];
    closed_endpoint(dead);
    const char *eps[] = {dead, t->srv->endpoint};
    client_with(t, eps, 2, 1);
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin("k");
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_OK);
    assert_int_equal(call.attempts, 2);
    assert_string_equal(call.endpoint, t->srv->endpoint);
    cl_call_reset(&call);

    /* the next call starts at the next endpoint (round robin), the live one */
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_OK);
    assert_int_equal(call.attempts, 1);
    cl_call_reset(&call);

    /* round robin brings the dead endpoint back; while it rests after its failure, the pick
     * skips it — and a write whose connection fails was never sent, so it moves on too */
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = bin("k");
    p.value = bin("v");
    for (int i = 0; i < 4; i++) {
        assert_int_equal(run_call(t, &call, &cl_method_put, &p.base), GRPC_OK);
        assert_string_equal(call.endpoint, t->srv->endpoint);
        cl_call_reset(&call);
    }
}

static void test_all_unreachable(void **state)
{
    struct t *t = *state;
    char dead1[32], dead2[32];
    closed_endpoint(dead1);
    closed_endpoint(dead2);
    const char *eps[] = {dead1, dead2};
    client_with(t, eps, 2, 1);
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin("k");
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_UNAVAILABLE);
    assert_non_null(strstr(call.message, "connection refused"));
    assert_int_equal(call.attempts, 1 + 2 * 2); /* max_retries defaults to 2 × endpoints */
    char *text = cl_call_error_text(&call);
    assert_non_null(strstr(text, "rpc error: code = Unavailable desc = connection error"));
    free(text);
    cl_call_reset(&call);

    /* with a deadline shorter than the retries, the deadline ends it */
    call.timeout_ms = 60;
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_DEADLINE_EXCEEDED);
    cl_call_reset(&call);
}

/* The server of [dropping, live] vanishes with the request in flight: a read is retried on the
 * live endpoint; a write reports the failure — it may have been applied — and is not retried. */
static void test_connection_lost_mid_call(void **state)
{
    struct t *t = *state;
    struct fake *f = fake_start(&t->loop, FAKE_DROP);
    const char *eps[] = {f->endpoint, t->srv->endpoint};
    client_with(t, eps, 2, 1);
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = bin("k");
    p.value = bin("v");
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_put, &p.base), GRPC_UNAVAILABLE);
    assert_int_equal(call.attempts, 1);
    assert_string_equal(call.endpoint, f->endpoint);
    assert_null(call.response);
    cl_call_reset(&call);

    close_client(t);
    client_with(t, eps, 2, 1); /* start again at the dropping endpoint */
    Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
    req.key = bin("k");
    assert_int_equal(run_call(t, &call, &cl_method_range, &req.base), GRPC_OK);
    assert_int_equal(call.attempts, 2);
    assert_string_equal(call.endpoint, t->srv->endpoint);
    /* the write above was not applied by the live server */
    assert_int_equal(((Etcdserverpb__RangeResponse *)call.response)->count, 0);
    cl_call_reset(&call);
    close_client(t);
    fake_stop(f, &t->loop);
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests: watches (a Watch stream under them) */

/* What a watch delivered: each response's events as "PUT key=value" / "DELETE key" words. */
struct seen {
    char log[4096];      /* the events, one per line, prev_kv as "(prev=value)" */
    int responses;       /* responses delivered */
    int created;         /* of them, creations */
    int progress;        /* of them, progress notifications */
    int events;          /* events in them */
    int max_batch;       /* the most events in one response */
    bool ended;          /* the last response came */
    int64_t compact_rev; /* its compact_revision */
    int code;            /* the watch's code then */
    char message[160];   /* and its message */
};

static void on_watch(struct cl_watch *w, const Etcdserverpb__WatchResponse *r)
{
    struct seen *s = w->data;
    assert_false(s->ended); /* nothing after the last response */
    assert_non_null(r->header);
    s->responses++;
    s->created += r->created;
    s->progress += r->n_events == 0 && !r->created && !r->canceled;
    s->events += (int)r->n_events;
    if ((int)r->n_events > s->max_batch)
        s->max_batch = (int)r->n_events;
    for (size_t i = 0; i < r->n_events; i++) {
        const Mvccpb__Event *e = r->events[i];
        size_t n = strlen(s->log);
        int vlen = e->kv->value.len > 8 ? 8 : (int)e->kv->value.len;
        snprintf(s->log + n, sizeof s->log - n, "%s %.*s=%.*s", e->type ? "DELETE" : "PUT",
                 (int)e->kv->key.len, (const char *)e->kv->key.data, vlen,
                 (const char *)e->kv->value.data);
        n = strlen(s->log);
        if (e->prev_kv)
            snprintf(s->log + n, sizeof s->log - n, " (prev=%.*s)",
                     e->prev_kv->value.len > 8 ? 8 : (int)e->prev_kv->value.len,
                     (const char *)e->prev_kv->value.data);
        n = strlen(s->log);
        snprintf(s->log + n, sizeof s->log - n, "\n");
    }
    if (r->canceled) {
        s->ended = true;
        s->compact_rev = r->compact_revision;
        s->code = w->code;
        snprintf(s->message, sizeof s->message, "%s", w->message ? w->message : "");
    }
}

static void run_until(struct t *t, const int *counter, int at_least)
{
    while (*counter < at_least)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static void run_until_ended(struct t *t, const struct seen *s)
{
    while (!s->ended)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static void watch_start(struct cl_watcher *wr, struct cl_watch *w, struct seen *s,
                        struct cl_watch_options *o)
{
    memset(s, 0, sizeof *s);
    w->cb = on_watch;
    w->data = s;
    assert_int_equal(cl_watch_start(wr, w, o), 0);
    assert_int_equal(s->responses, 0); /* never from inside the start */
}

static void watcher_close(struct t *t, struct cl_watcher *wr)
{
    cl_watcher_close(wr);
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

static void test_watch_events_and_cancel(void **state)
{
    struct t *t = *state;
    client_live(t);
    struct cl_watcher *wr;
    assert_int_equal(cl_watcher_new(t->c, false, &wr), 0);
    struct cl_watch w = {0}, one = {0};
    struct seen s, s1;
    struct cl_watch_options o = {.key = (const uint8_t *)"w/",
                                 .key_len = 2,
                                 .range_end = (const uint8_t *)"w0",
                                 .range_end_len = 2,
                                 .created_notify = true};
    watch_start(wr, &w, &s, &o);
    struct cl_watch_options o1 = {.key = (const uint8_t *)"x", .key_len = 1};
    watch_start(wr, &one, &s1, &o1);
    run_until(t, &s.created, 1);
    assert_true(w.id >= 0);
    assert_int_equal(put(t, "w/a", "1"), GRPC_OK);
    assert_int_equal(put(t, "x", "2"), GRPC_OK);
    assert_int_equal(put(t, "w/b", "3"), GRPC_OK);
    assert_int_equal(put(t, "y", "4"), GRPC_OK);
    run_until(t, &s.events, 2);
    run_until(t, &s1.events, 1);
    assert_string_equal(s.log, "PUT w/a=1\nPUT w/b=3\n");
    assert_string_equal(s1.log, "PUT x=2\n");
    assert_int_equal(s1.created, 0); /* not asked for */

    cl_watch_cancel(&w);
    assert_false(s.ended); /* from the loop, not inside the cancel */
    run_until_ended(t, &s);
    assert_int_equal(s.code, GRPC_CANCELLED);
    assert_string_equal(s.message, "context canceled");
    cl_watch_reset(&w);
    /* the other watch goes on on the same stream */
    assert_int_equal(put(t, "w/c", "5"), GRPC_OK);
    assert_int_equal(put(t, "x", "6"), GRPC_OK);
    run_until(t, &s1.events, 2);
    assert_string_equal(s1.log, "PUT x=2\nPUT x=6\n");
    assert_string_equal(s.log, "PUT w/a=1\nPUT w/b=3\n");
    /* closing the watcher ends the rest */
    watcher_close(t, wr);
    run_until_ended(t, &s1);
    assert_int_equal(s1.code, GRPC_CANCELLED);
    cl_watch_reset(&one);
    close_client(t);
}

static void test_watch_history_prev_kv_filters(void **state)
{
    struct t *t = *state;
    client_live(t);
    assert_int_equal(put(t, "h", "1"), GRPC_OK); /* rev 2 */
    assert_int_equal(put(t, "h", "2"), GRPC_OK); /* rev 3 */
    Etcdserverpb__DeleteRangeRequest d = ETCDSERVERPB__DELETE_RANGE_REQUEST__INIT;
    d.key = bin("h");
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_delete_range, &d.base), GRPC_OK); /* rev 4 */
    cl_call_reset(&call);
    assert_int_equal(put(t, "h", "3"), GRPC_OK); /* rev 5 */

    struct cl_watcher *wr;
    assert_int_equal(cl_watcher_new(t->c, false, &wr), 0);
    struct cl_watch all = {0}, puts = {0}, dels = {0};
    struct seen sa, sp, sd;
    struct cl_watch_options o = {
        .key = (const uint8_t *)"h", .key_len = 1, .start_revision = 2, .prev_kv = true};
    watch_start(wr, &all, &sa, &o);
    o.prev_kv = false;
    o.no_delete = true;
    watch_start(wr, &puts, &sp, &o);
    o.no_delete = false;
    o.no_put = true;
    o.start_revision = 3;
    watch_start(wr, &dels, &sd, &o);
    run_until(t, &sa.events, 4);
    run_until(t, &sp.events, 3);
    run_until(t, &sd.events, 1);
    assert_string_equal(sa.log, "PUT h=1\nPUT h=2 (prev=1)\nDELETE h= (prev=2)\nPUT h=3\n");
    assert_string_equal(sp.log, "PUT h=1\nPUT h=2\nPUT h=3\n");
    assert_string_equal(sd.log, "DELETE h=\n");
    watcher_close(t, wr);
    run_until_ended(t, &sa);
    run_until_ended(t, &sp);
    run_until_ended(t, &sd);
    cl_watch_reset(&all);
    cl_watch_reset(&puts);
    cl_watch_reset(&dels);
    close_client(t);
}

static void test_watch_compacted(void **state)
{
    struct t *t = *state;
    client_live(t);
    for (int i = 0; i < 4; i++)
        assert_int_equal(put(t, "c", "v"), GRPC_OK); /* revs 2..5 */
    Etcdserverpb__CompactionRequest cr = ETCDSERVERPB__COMPACTION_REQUEST__INIT;
    cr.revision = 4;
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_compact, &cr.base), GRPC_OK);
    cl_call_reset(&call);
    struct cl_watcher *wr;
    assert_int_equal(cl_watcher_new(t->c, false, &wr), 0);
    struct cl_watch w = {0};
    struct seen s;
    struct cl_watch_options o = {.key = (const uint8_t *)"c", .key_len = 1, .start_revision = 2};
    watch_start(wr, &w, &s, &o);
    run_until_ended(t, &s);
    assert_int_equal(s.events, 0);
    assert_int_equal(s.compact_rev, 4);
    assert_int_equal(s.code, GRPC_OK);
    assert_string_equal(s.message, "etcdserver: mvcc: required revision has been compacted");
    cl_watch_reset(&w);
    /* the watcher is still good for another watch, from the compacted revision on */
    o.start_revision = 4;
    watch_start(wr, &w, &s, &o);
    run_until(t, &s.events, 2);
    assert_string_equal(s.log, "PUT c=v\nPUT c=v\n");
    watcher_close(t, wr);
    run_until_ended(t, &s);
    cl_watch_reset(&w);
    close_client(t);
}

/* Drops every connection of the client, as a read error would. */
static void drop_connections(struct t *t)
{
    for (struct cl_conn *conn = t->c->conns; conn;) {
        struct cl_conn *next = cl_conn_next(conn);
        cl_conn_fail(conn, GRPC_UNAVAILABLE, "transport is closing");
        conn = next;
    }
}

static void test_watch_resumes_after_lost_connection(void **state)
{
    struct t *t = *state;
    client_live(t);
    struct cl_watcher *wr;
    assert_int_equal(cl_watcher_new(t->c, false, &wr), 0);
    struct cl_watch now = {0}, hist = {0};
    struct seen sn, sh;
    struct cl_watch_options o = {.key = (const uint8_t *)"r", .key_len = 1, .created_notify = true};
    watch_start(wr, &now, &sn, &o);
    run_until(t, &sn.created, 1);
    /* lost before anything was delivered: resumes from the creation's revision + 1 */
    drop_connections(t);
    assert_int_equal(put(t, "r", "1"), GRPC_OK);
    run_until(t, &sn.events, 1);
    o.start_revision = 1;
    o.created_notify = false;
    watch_start(wr, &hist, &sh, &o);
    run_until(t, &sh.events, 1);
    for (int i = 2; i <= 4; i++) {
        drop_connections(t); /* lost after events: resumes from the last one's revision + 1 */
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        assert_int_equal(put(t, "r", v), GRPC_OK);
        run_until(t, &sn.events, i);
        run_until(t, &sh.events, i);
    }
    assert_int_equal(put(t, "r", "5"), GRPC_OK);
    run_until(t, &sn.events, 5);
    run_until(t, &sh.events, 5);
    /* every event once, in order; the creation delivered once */
    assert_string_equal(sn.log, "PUT r=1\nPUT r=2\nPUT r=3\nPUT r=4\nPUT r=5\n");
    assert_string_equal(sh.log, sn.log);
    assert_int_equal(sn.created, 1);
    assert_int_equal(sh.created, 0);
    assert_false(sn.ended);
    assert_false(sh.ended);
    watcher_close(t, wr);
    run_until_ended(t, &sn);
    run_until_ended(t, &sh);
    assert_int_equal(sn.events, 5);
    cl_watch_reset(&now);
    cl_watch_reset(&hist);
    close_client(t);
}

static void test_watch_fragments_reassembled(void **state)
{
    struct t *t = *state;
    client_live(t);
    size_t big = 700 * 1024;
    char *v = malloc(big + 1);
    memset(v, 'a', big);
    v[big] = '\0';
    assert_int_equal(put(t, "f1", v), GRPC_OK); /* rev 2 */
    assert_int_equal(put(t, "f2", v), GRPC_OK); /* rev 3 */
    /* one revision of two 700 KiB puts; with their previous values over 2.7 MiB of events, more
     * than one response may carry (the request limit plus 512 KiB) */
    memset(v, 'b', big);
    Etcdserverpb__PutRequest p1 = ETCDSERVERPB__PUT_REQUEST__INIT, p2 = p1;
    p1.key = bin("f1");
    p1.value = bin(v);
    p2.key = bin("f2");
    p2.value = bin(v);
    Etcdserverpb__RequestOp op1 = ETCDSERVERPB__REQUEST_OP__INIT, op2 = op1;
    op1.request_case = op2.request_case = ETCDSERVERPB__REQUEST_OP__REQUEST_REQUEST_PUT;
    op1.request_put = &p1;
    op2.request_put = &p2;
    Etcdserverpb__RequestOp *ops[] = {&op1, &op2};
    Etcdserverpb__TxnRequest txn = ETCDSERVERPB__TXN_REQUEST__INIT;
    txn.success = ops;
    txn.n_success = 2;
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_txn, &txn.base), GRPC_OK); /* rev 4 */
    cl_call_reset(&call);
    free(v);

    struct cl_watcher *wr;
    assert_int_equal(cl_watcher_new(t->c, false, &wr), 0);
    struct cl_watch w = {0};
    struct seen s;
    struct cl_watch_options o = {.key = (const uint8_t *)"f",
                                 .key_len = 1,
                                 .range_end = (const uint8_t *)"g",
                                 .range_end_len = 1,
                                 .start_revision = 4,
                                 .prev_kv = true,
                                 .fragment = true};
    watch_start(wr, &w, &s, &o);
    run_until(t, &s.events, 2);
    assert_int_equal(s.responses, 1); /* the fragments as one batch */
    assert_int_equal(s.max_batch, 2);
    assert_string_equal(s.log,
                        "PUT f1=bbbbbbbb (prev=aaaaaaaa)\nPUT f2=bbbbbbbb (prev=aaaaaaaa)\n");
    watcher_close(t, wr);
    run_until_ended(t, &s);
    cl_watch_reset(&w);
    close_client(t);
}

static void test_watch_stream_metadata(void **state)
{
    struct t *t = *state;
    struct fake *f = fake_start(&t->loop, FAKE_SILENT);
    const char *eps[] = {f->endpoint};
    client_with(t, eps, 1, 1);
    for (int leader = 0; leader < 2; leader++) {
        struct cl_watcher *wr;
        assert_int_equal(cl_watcher_new(t->c, leader, &wr), 0);
        struct cl_watch w = {0};
        struct seen s;
        struct cl_watch_options o = {.key = (const uint8_t *)"m", .key_len = 1};
        int before = f->requests;
        watch_start(wr, &w, &s, &o);
        run_until(t, &f->requests, before + 1);
        assert_string_equal(f->path, "/etcdserverpb.Watch/Watch");
        assert_string_equal(f->timeout, ""); /* a stream has no deadline */
        assert_string_equal(f->hasleader, leader ? "true" : "");
        watcher_close(t, wr);
        run_until_ended(t, &s);
        assert_int_equal(s.code, GRPC_CANCELLED);
        assert_string_equal(s.message, "context canceled");
        cl_watch_reset(&w);
    }
    close_client(t);
    fake_stop(f, &t->loop);
}

/* A put on the live server through a client of its own (cl_sync, on its private loop). */
static void live_put(struct t *t, const char *k, const char *v)
{
    struct cl_options o;
    cl_options_default(&o);
    const char *eps[] = {t->srv->endpoint};
    o.endpoints = eps;
    o.n_endpoints = 1;
    struct cl_sync *s;
    assert_int_equal(cl_sync_new(&o, &s), 0);
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = bin(k);
    p.value = bin(v);
    struct cl_call call = {0};
    assert_int_equal(cl_sync_call(s, &call, &cl_method_put, &p.base), GRPC_OK);
    cl_call_reset(&call);
    cl_sync_free(s);
}

static void test_watch_resumes_on_another_endpoint(void **state)
{
    struct t *t = *state;
    struct fake *f = fake_start(&t->loop, FAKE_DROP);
    char dead[32];
    closed_endpoint(dead);
    const char *eps[] = {f->endpoint, dead, t->srv->endpoint};
    client_with(t, eps, 3, 1);
    live_put(t, "e", "1");
    struct cl_watcher *wr;
    assert_int_equal(cl_watcher_new(t->c, false, &wr), 0);
    struct cl_watch w = {0};
    struct seen s;
    struct cl_watch_options o = {.key = (const uint8_t *)"e", .key_len = 1, .start_revision = 1};
    watch_start(wr, &w, &s, &o);
    run_until(t, &s.events, 1); /* dropped, refused, then the live server */
    assert_true(f->requests >= 1);
    live_put(t, "e", "2");
    run_until(t, &s.events, 2);
    assert_string_equal(s.log, "PUT e=1\nPUT e=2\n");
    assert_false(s.ended);
    watcher_close(t, wr);
    run_until_ended(t, &s);
    cl_watch_reset(&w);
    close_client(t);
    fake_stop(f, &t->loop);
}

/* The stream under the watches, by itself: a create and its answer, then a cancel. */
struct raw {
    int msgs;
    bool ended;
    int64_t watch_id;
};

static void raw_msg(struct cl_stream *s, ProtobufCMessage *m)
{
    struct raw *r = s->data;
    Etcdserverpb__WatchResponse *resp = (Etcdserverpb__WatchResponse *)m;
    assert_ptr_equal(m->descriptor, &etcdserverpb__watch_response__descriptor);
    if (r->msgs++ == 0) {
        assert_true(resp->created);
        r->watch_id = resp->watch_id;
    }
    cl_stream_msg_free(m);
}

static void raw_end(struct cl_stream *s)
{
    ((struct raw *)s->data)->ended = true;
}

static void test_stream_raw(void **state)
{
    struct t *t = *state;
    client_live(t);
    struct raw r = {0};
    struct cl_stream s = {.on_msg = raw_msg, .on_end = raw_end, .data = &r};
    assert_int_equal(cl_stream_open(t->c, &s, &cl_method_watch, 0), 0);
    Etcdserverpb__WatchCreateRequest cr = ETCDSERVERPB__WATCH_CREATE_REQUEST__INIT;
    cr.key = bin("s");
    Etcdserverpb__WatchRequest req = ETCDSERVERPB__WATCH_REQUEST__INIT;
    req.request_union_case = ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST;
    req.create_request = &cr;
    /* sent before the connection is up: it waits */
    assert_int_equal(cl_stream_send(&s, &req.base), 0);
    /* a wrong message type is refused */
    Etcdserverpb__RangeRequest bad = ETCDSERVERPB__RANGE_REQUEST__INIT;
    assert_int_equal(cl_stream_send(&s, &bad.base), CAIRN_E_INVALID_ARGUMENT);
    run_until(t, &r.msgs, 1);
    assert_int_equal(put(t, "s", "1"), GRPC_OK);
    run_until(t, &r.msgs, 2);
    assert_false(r.ended);
    cl_stream_cancel(&s);
    assert_false(r.ended);
    while (!r.ended)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(s.code, GRPC_CANCELLED);
    assert_string_equal(s.message, "context canceled");
    assert_string_equal(s.endpoint, t->srv->endpoint);
    assert_int_equal(cl_stream_send(&s, &req.base), CAIRN_E_INVALID_ARGUMENT);
    cl_stream_reset(&s);

    /* a stream to nowhere ends UNAVAILABLE (it is never retried by itself) */
    close_client(t);
    char dead[32];
    closed_endpoint(dead);
    const char *eps[] = {dead};
    client_with(t, eps, 1, 1);
    r = (struct raw){0};
    assert_int_equal(cl_stream_open(t->c, &s, &cl_method_watch, 0), 0);
    assert_int_equal(cl_stream_send(&s, &req.base), 0);
    while (!r.ended)
        uv_run(&t->loop, UV_RUN_ONCE);
    assert_int_equal(s.code, GRPC_UNAVAILABLE);
    assert_int_equal(r.msgs, 0);
    cl_stream_reset(&s);
    close_client(t);
}

/* ---------------------------------------------------------------------------------------------- */
/* Tests: the blocking wrapper */

static void test_sync(void **state)
{
    struct t *t = *state;
    struct cl_options o;
    cl_options_default(&o);
    const char *eps[] = {t->srv->endpoint};
    o.endpoints = eps;
    o.n_endpoints = 1;
    struct cl_sync *s;
    assert_int_equal(cl_sync_new(&o, &s), 0);
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = bin("s");
    p.value = bin("1");
    struct cl_call call = {0};
    assert_int_equal(cl_sync_call(s, &call, &cl_method_put, &p.base), GRPC_OK);
    assert_int_equal(((Etcdserverpb__PutResponse *)call.response)->header->revision, 2);
    cl_call_reset(&call);
    Etcdserverpb__RangeRequest r = ETCDSERVERPB__RANGE_REQUEST__INIT;
    r.key = bin("s");
    r.revision = 99;
    assert_int_equal(cl_sync_call(s, &call, &cl_method_range, &r.base), GRPC_OUT_OF_RANGE);
    assert_string_equal(call.message, "etcdserver: mvcc: required revision is a future revision");
    cl_call_reset(&call);
    /* a start error comes back as a status */
    assert_int_equal(cl_sync_call(s, &call, &cl_method_put, &r.base), GRPC_INTERNAL);
    assert_non_null(call.message);
    cl_call_reset(&call);
    cl_sync_free(s);
}

/* ---------------------------------------------------------------------------------------------- */
/* Leases */

static int64_t lease_grant(struct t *t, int64_t ttl, int64_t *granted_ttl)
{
    Etcdserverpb__LeaseGrantRequest req = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    req.ttl = ttl;
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_lease_grant, &req.base), GRPC_OK);
    const Etcdserverpb__LeaseGrantResponse *r = (Etcdserverpb__LeaseGrantResponse *)call.response;
    assert_non_null(r->header);
    assert_true(r->id > 0);
    int64_t id = r->id;
    if (granted_ttl)
        *granted_ttl = r->ttl;
    cl_call_reset(&call);
    return id;
}

static int lease_revoke(struct t *t, int64_t id, char *message, size_t n)
{
    Etcdserverpb__LeaseRevokeRequest req = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    req.id = id;
    struct cl_call call = {0};
    int code = run_call(t, &call, &cl_method_lease_revoke, &req.base);
    if (message)
        snprintf(message, n, "%s", call.message ? call.message : "");
    cl_call_reset(&call);
    return code;
}

static void test_lease_unary(void **state)
{
    struct t *t = *state;
    client_live(t);
    int64_t ttl = 0;
    int64_t id = lease_grant(t, 60, &ttl);
    assert_int_equal(ttl, 60);
    int64_t other = lease_grant(t, 90, NULL);
    assert_int_not_equal(other, id);

    /* a key on the lease */
    Etcdserverpb__PutRequest p = ETCDSERVERPB__PUT_REQUEST__INIT;
    p.key = bin("lk");
    p.value = bin("v");
    p.lease = id;
    struct cl_call call = {0};
    assert_int_equal(run_call(t, &call, &cl_method_put, &p.base), GRPC_OK);
    cl_call_reset(&call);

    /* TimeToLive, with and without its keys */
    Etcdserverpb__LeaseTimeToLiveRequest tr = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    tr.id = id;
    tr.keys = true;
    assert_int_equal(run_call(t, &call, &cl_method_lease_time_to_live, &tr.base), GRPC_OK);
    const Etcdserverpb__LeaseTimeToLiveResponse *ttr =
        (Etcdserverpb__LeaseTimeToLiveResponse *)call.response;
    assert_int_equal(ttr->id, id);
    assert_int_equal(ttr->grantedttl, 60);
    assert_true(ttr->ttl > 0 && ttr->ttl <= 60);
    assert_int_equal(ttr->n_keys, 1);
    assert_memory_equal(ttr->keys[0].data, "lk", 2);
    cl_call_reset(&call);
    tr.keys = false;
    assert_int_equal(run_call(t, &call, &cl_method_lease_time_to_live, &tr.base), GRPC_OK);
    assert_int_equal(((Etcdserverpb__LeaseTimeToLiveResponse *)call.response)->n_keys, 0);
    cl_call_reset(&call);

    /* Leases lists both */
    Etcdserverpb__LeaseLeasesRequest lr = ETCDSERVERPB__LEASE_LEASES_REQUEST__INIT;
    assert_int_equal(run_call(t, &call, &cl_method_lease_leases, &lr.base), GRPC_OK);
    const Etcdserverpb__LeaseLeasesResponse *ls =
        (Etcdserverpb__LeaseLeasesResponse *)call.response;
    assert_int_equal(ls->n_leases, 2);
    bool seen_id = false, seen_other = false;
    for (size_t i = 0; i < ls->n_leases; i++) {
        seen_id |= ls->leases[i]->id == id;
        seen_other |= ls->leases[i]->id == other;
    }
    assert_true(seen_id && seen_other);
    cl_call_reset(&call);

    /* Revoke deletes the key; the lease is gone then */
    char msg[128];
    assert_int_equal(lease_revoke(t, id, msg, sizeof msg), GRPC_OK);
    Etcdserverpb__RangeRequest rr = ETCDSERVERPB__RANGE_REQUEST__INIT;
    rr.key = bin("lk");
    assert_int_equal(run_call(t, &call, &cl_method_range, &rr.base), GRPC_OK);
    assert_int_equal(((Etcdserverpb__RangeResponse *)call.response)->n_kvs, 0);
    cl_call_reset(&call);
    tr.id = id;
    assert_int_equal(run_call(t, &call, &cl_method_lease_time_to_live, &tr.base), GRPC_OK);
    assert_int_equal(((Etcdserverpb__LeaseTimeToLiveResponse *)call.response)->ttl, -1);
    cl_call_reset(&call);
    assert_int_equal(lease_revoke(t, id, msg, sizeof msg), GRPC_NOT_FOUND);
    assert_string_equal(msg, "etcdserver: requested lease not found");
    assert_int_equal(run_call(t, &call, &cl_method_put, &p.base), GRPC_NOT_FOUND);
    char *text = cl_call_error_text(&call);
    assert_string_equal(text, "etcdserver: requested lease not found");
    free(text);
    cl_call_reset(&call);
    close_client(t);
}

static void test_lease_sync(void **state)
{
    struct t *t = *state;
    struct cl_options o;
    cl_options_default(&o);
    const char *eps[] = {t->srv->endpoint};
    o.endpoints = eps;
    o.n_endpoints = 1;
    struct cl_sync *s;
    assert_int_equal(cl_sync_new(&o, &s), 0);
    Etcdserverpb__LeaseGrantRequest g = ETCDSERVERPB__LEASE_GRANT_REQUEST__INIT;
    g.ttl = 30;
    struct cl_call call = {0};
    assert_int_equal(cl_sync_call(s, &call, &cl_method_lease_grant, &g.base), GRPC_OK);
    int64_t id = ((Etcdserverpb__LeaseGrantResponse *)call.response)->id;
    cl_call_reset(&call);
    Etcdserverpb__LeaseRevokeRequest r = ETCDSERVERPB__LEASE_REVOKE_REQUEST__INIT;
    r.id = id;
    assert_int_equal(cl_sync_call(s, &call, &cl_method_lease_revoke, &r.base), GRPC_OK);
    cl_call_reset(&call);
    cl_sync_free(s);
}

/* What a keep-alive's callback saw. */
struct kseen {
    int responses;  /* callbacks with a response */
    int64_t ttl;    /* the last response's TTL */
    int64_t id;     /* and its ID */
    bool bad_ttl;   /* a response before the last had TTL <= 0 */
    bool ended;     /* the last callback came */
    bool last_resp; /* it had a response */
    int code;       /* k->code then */
    char message[128];
};

static void on_keepalive(struct cl_keepalive *k, const Etcdserverpb__LeaseKeepAliveResponse *resp)
{
    struct kseen *s = k->data;
    assert_false(s->ended); /* nothing after the last callback */
    if (resp) {
        assert_non_null(resp->header);
        s->responses++;
        s->ttl = resp->ttl;
        s->id = resp->id;
        if (!k->ended && resp->ttl <= 0)
            s->bad_ttl = true;
    }
    if (k->ended) {
        s->ended = true;
        s->last_resp = resp != NULL;
        s->code = k->code;
        snprintf(s->message, sizeof s->message, "%s", k->message ? k->message : "");
    }
}

static void ka_start(struct cl_lessor *lr, struct cl_keepalive *k, struct kseen *s, int64_t id,
                     bool once)
{
    memset(s, 0, sizeof *s);
    k->cb = on_keepalive;
    k->data = s;
    assert_int_equal(cl_keepalive_start(lr, k, id, once), 0);
    assert_int_equal(s->responses, 0); /* never from inside the start */
}

static void run_until_ka_ended(struct t *t, const struct kseen *s)
{
    while (!s->ended)
        uv_run(&t->loop, UV_RUN_ONCE);
}

static void lessor_close(struct t *t, struct cl_lessor *lr)
{
    cl_lessor_close(lr);
    uv_run(&t->loop, UV_RUN_NOWAIT);
}

static void test_lease_keepalive(void **state)
{
    struct t *t = *state;
    client_live(t);
    int64_t ttl = 0;
    int64_t id = lease_grant(t, 3, &ttl);
    struct cl_lessor *lr;
    assert_int_equal(cl_lessor_new(t->c, &lr), 0);

    /* once: one response with the granted TTL, then the end */
    struct cl_keepalive once = {0};
    struct kseen so;
    ka_start(lr, &once, &so, id, true);
    run_until_ka_ended(t, &so);
    assert_int_equal(so.responses, 1);
    assert_true(so.last_resp);
    assert_int_equal(so.code, GRPC_OK);
    assert_int_equal(so.id, id);
    assert_int_equal(so.ttl, ttl);
    cl_keepalive_reset(&once);

    /* kept alive: responses every TTL/3; past several TTLs the lease still lives */
    struct cl_keepalive k = {0};
    struct kseen sk;
    ka_start(lr, &k, &sk, id, false);
    run_until(t, &sk.responses, (int)(3 * 3 + 1)); /* three TTLs' worth of keep-alives */
    assert_int_equal(sk.ttl, ttl);
    assert_false(sk.bad_ttl);
    assert_false(sk.ended);
    struct cl_call call = {0};
    Etcdserverpb__LeaseTimeToLiveRequest tr = ETCDSERVERPB__LEASE_TIME_TO_LIVE_REQUEST__INIT;
    tr.id = id;
    assert_int_equal(run_call(t, &call, &cl_method_lease_time_to_live, &tr.base), GRPC_OK);
    assert_true(((Etcdserverpb__LeaseTimeToLiveResponse *)call.response)->ttl > 0);
    cl_call_reset(&call);

    /* a lost connection: the stream is opened again and the keep-alives go on */
    int before = sk.responses;
    drop_connections(t);
    run_until(t, &sk.responses, before + 2);
    assert_false(sk.ended);

    /* revoked: the next response has TTL 0 and ends the keep-alive */
    assert_int_equal(lease_revoke(t, id, NULL, 0), GRPC_OK);
    run_until_ka_ended(t, &sk);
    assert_true(sk.last_resp);
    assert_int_equal(sk.ttl, 0);
    assert_int_equal(sk.code, GRPC_NOT_FOUND);
    assert_string_equal(sk.message, "etcdserver: requested lease not found");
    assert_false(sk.bad_ttl);
    cl_keepalive_reset(&k);

    /* an unknown lease, once: ends at once with not found */
    ka_start(lr, &once, &so, id + 1000, true);
    run_until_ka_ended(t, &so);
    assert_int_equal(so.code, GRPC_NOT_FOUND);
    assert_int_equal(so.ttl, 0);
    cl_keepalive_reset(&once);

    /* a restart after reset is allowed; a running one cannot be started twice */
    int64_t id2 = lease_grant(t, 30, NULL);
    ka_start(lr, &k, &sk, id2, false);
    assert_int_equal(cl_keepalive_start(lr, &k, id2, false), CAIRN_E_INVALID_ARGUMENT);
    run_until(t, &sk.responses, 1);
    /* cancel: the last callback comes from the loop, without a response */
    cl_keepalive_cancel(&k);
    assert_false(sk.ended);
    run_until_ka_ended(t, &sk);
    assert_false(sk.last_resp);
    assert_int_equal(sk.code, GRPC_CANCELLED);
    assert_string_equal(sk.message, "context canceled");
    cl_keepalive_reset(&k);

    /* close with one running: it ends CANCELLED */
    ka_start(lr, &k, &sk, id2, false);
    lessor_close(t, lr);
    run_until_ka_ended(t, &sk);
    assert_int_equal(sk.code, GRPC_CANCELLED);
    cl_keepalive_reset(&k);
    close_client(t);
}

static void test_lease_keepalive_on_another_endpoint(void **state)
{
    struct t *t = *state;
    struct fake *f = fake_start(&t->loop, FAKE_DROP);
    char dead[32];
    closed_endpoint(dead);
    const char *eps[] = {f->endpoint, dead, t->srv->endpoint};
    client_with(t, eps, 3, 1);
    int64_t id = lease_grant(t, 30, NULL);
    struct cl_lessor *lr;
    assert_int_equal(cl_lessor_new(t->c, &lr), 0);
    struct cl_keepalive k = {0};
    struct kseen s;
    ka_start(lr, &k, &s, id, true);
    run_until_ka_ended(t, &s); /* dropped, refused, then the live server */
    assert_int_equal(s.code, GRPC_OK);
    assert_int_equal(s.ttl, 30);
    assert_true(f->requests >= 1);
    cl_keepalive_reset(&k);
    lessor_close(t, lr);
    close_client(t);
    fake_stop(f, &t->loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_and_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_txn_compact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_maintenance_and_cluster, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent_calls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deadline_sent_and_enforced, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_with_calls_in_flight, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_options, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failover_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_all_unreachable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_lost_mid_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_events_and_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_history_prev_kv_filters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_compacted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_resumes_after_lost_connection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_fragments_reassembled, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_stream_metadata, setup, teardown),
        cmocka_unit_test_setup_teardown(test_watch_resumes_on_another_endpoint, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_raw, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_unary, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_keepalive, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lease_keepalive_on_another_endpoint, setup, teardown),
    };
    signal(SIGPIPE, SIG_IGN); /* as in cairnd: peers' connections are written after they close */
    return cmocka_run_group_tests(tests, NULL, NULL);
}
