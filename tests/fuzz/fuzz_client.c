/* tests/fuzz/fuzz_client.c — fuzz target for the client library's response handling
 * (client/conn.c, client/client.c, common/grpc_frame.c, common/grpc_meta.c).
 *
 * The input is what a server sends on a connection: it goes into a client-side nghttp2 session on
 * a memory connection (no socket) that carries three calls (Range, Put, Status), through the
 * response checks, the message framing and protobuf decoding. The first byte picks how the rest is
 * cut into reads. Afterwards the calls still open are cancelled and the client closed; everything
 * must be freed (ASan's leak check) without touching freed memory. Built with libFuzzer by `make
 * fuzz`; its corpus is replayed by `make test` (tests/fuzz/replay.c). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"

static int finished;

static void on_done(struct cl_call *call)
{
    finished++;
    cl_call_reset(call);
}

static void on_closed(void *arg)
{
    *(bool *)arg = true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t loop;
    if (uv_loop_init(&loop))
        return 0;
    const char *eps[] = {"127.0.0.1:1"};
    struct cl_options o;
    cl_options_default(&o);
    o.endpoints = eps;
    o.n_endpoints = 1;
    o.max_recv_bytes = 4096;
    o.max_retries = 1;
    struct cl_client *c;
    if (cl_client_new(&loop, &o, &c))
        return 0;
    if (!cl_conn_open_mem(c, &c->eps[0], 0))
        abort();

    struct cl_call calls[3];
    memset(calls, 0, sizeof calls);
    for (int i = 0; i < 3; i++)
        calls[i].cb = on_done;
    Etcdserverpb__RangeRequest range = ETCDSERVERPB__RANGE_REQUEST__INIT;
    range.key = (ProtobufCBinaryData){3, (uint8_t *)"foo"};
    Etcdserverpb__PutRequest put = ETCDSERVERPB__PUT_REQUEST__INIT;
    put.key = range.key;
    Etcdserverpb__StatusRequest status = ETCDSERVERPB__STATUS_REQUEST__INIT;
    finished = 0;
    if (cl_range(c, &calls[0], &range) || cl_put(c, &calls[1], &put) ||
        cl_status(c, &calls[2], &status))
        abort();
    uv_run(&loop, UV_RUN_NOWAIT); /* the requests go out (discarded) */

    size_t chunk = size ? (size_t)data[0] % 64 + 1 : 1;
    size_t off = size ? 1 : 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        struct cl_conn *conn = c->eps[0].slots[0];
        if (!conn || cl_conn_feed_mem(conn, data + off, n) != 0)
            break; /* the connection failed: the rest would go nowhere */
        off += n;
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    for (int i = 0; i < 3; i++)
        cl_call_cancel(&calls[i]); /* a finished call is left as it is */
    bool closed = false;
    cl_client_close(c, on_closed, &closed);
    while (!closed)
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (finished != 3 || uv_loop_close(&loop))
        abort();
    return 0;
}
