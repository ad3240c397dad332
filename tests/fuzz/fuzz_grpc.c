/* tests/fuzz/fuzz_grpc.c — fuzz target for the gRPC server transport (api/h2.c, api/grpc.c,
 * api/grpc_frame.c).
 *
 * The input is what a client sends on a connection: it goes through a server-side nghttp2 session
 * on a memory connection (no socket), the gRPC request checks and message framing, and dispatch
 * to a few dummy methods (unary echo, streaming echo, a unary call that only ends when cancelled);
 * the server's output is discarded. Then the server shuts down gracefully, the client vanishes
 * midway, and everything must be freed (ASan's leak check) without touching freed memory. Built
 * with libFuzzer by `make fuzz`; its corpus is replayed by `make test` (tests/fuzz/replay.c). */
#include <stdint.h>
#include <stdlib.h>

#include <uv.h>

#include "api/grpc.h"

#define MAX_HELD 64

struct ctx {
    struct grpc_call *held[MAX_HELD]; /* calls of Hold not yet finished */
    int n_held;
};

static void forget(struct ctx *c, struct grpc_call *call)
{
    for (int i = 0; i < c->n_held; i++)
        if (c->held[i] == call) {
            c->held[i] = c->held[--c->n_held];
            return;
        }
}

static void echo(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    (void)ctx;
    grpc_call_send(call, msg, len);
    grpc_call_finish(call, len % 2 ? 0 : 5, len % 3 ? NULL : "even \xff\x01 %");
}

static void stream_msg(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct ctx *c = ctx;
    if (!grpc_call_data(call)) {
        if (c->n_held == MAX_HELD) {
            grpc_call_finish(call, 8, "too many");
            return;
        }
        grpc_call_set_data(call, c);
        c->held[c->n_held++] = call;
    }
    if (len == 1 && msg[0] == 'F') {
        forget(c, call);
        grpc_call_finish(call, 0, NULL); /* finished mid-stream, from on_message */
        return;
    }
    grpc_call_send(call, msg, len);
}

static void stream_end(struct grpc_call *call, void *ctx)
{
    forget(ctx, call);
    grpc_call_finish(call, 0, NULL);
}

static void hold(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    (void)msg;
    (void)len;
    struct ctx *c = ctx;
    if (c->n_held == MAX_HELD) {
        grpc_call_finish(call, 8, "too many");
        return;
    }
    c->held[c->n_held++] = call;
}

static void on_cancel(struct grpc_call *call, void *ctx)
{
    forget(ctx, call);
    grpc_call_finish(call, 1, NULL);
}

static void on_shutdown_done(void *arg)
{
    *(int *)arg = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uv_loop_t loop;
    struct ctx c = {0};
    struct grpc_method methods[] = {
        {.path = "/f.S/Echo", .on_message = echo, .ctx = &c},
        {.path = "/f.S/Hold", .on_message = hold, .on_cancel = on_cancel, .ctx = &c},
        {.path = "/f.S/Stream",
         .streaming = true,
         .on_message = stream_msg,
         .on_half_close = stream_end,
         .on_cancel = on_cancel,
         .ctx = &c},
    };
    struct grpc_server_options opts = {.max_recv_msg_size = 4096, .send_high_water = 1024};
    struct grpc_server *srv;
    struct grpc_mem_conn *mc;
    if (uv_loop_init(&loop) != 0)
        abort();
    if (grpc_server_new(&loop, &opts, &srv) != 0)
        abort();
    grpc_server_register(srv, methods, sizeof methods / sizeof methods[0]);
    if (grpc_mem_conn_open(srv, NULL, NULL, &mc) != 0)
        abort();
    /* in two parts, with a loop turn between: queued answers are flushed */
    size_t half = size / 2;
    if (grpc_mem_conn_feed(mc, data, half) == 0) {
        uv_run(&loop, UV_RUN_NOWAIT);
        grpc_mem_conn_feed(mc, data + half, size - half);
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    /* a held call finished while its client is still there */
    if (c.n_held > 0) {
        struct grpc_call *call = c.held[--c.n_held];
        grpc_call_send(call, (const uint8_t *)"late", 4);
        grpc_call_finish(call, 0, NULL);
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    /* graceful shutdown with the connection open: streaming calls are cancelled, the unary ones
     * finish during it; then the client vanishes and whatever is left is cancelled */
    int done = 0;
    grpc_server_shutdown(srv, on_shutdown_done, &done);
    uv_run(&loop, UV_RUN_NOWAIT);
    if (c.n_held > 0) {
        grpc_call_finish(c.held[--c.n_held], 2, "finished during shutdown");
        uv_run(&loop, UV_RUN_NOWAIT);
    }
    grpc_mem_conn_close(mc);
    while (c.n_held > 0)
        grpc_call_finish(c.held[--c.n_held], 0, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!done)
        abort();
    grpc_server_free(srv);
    if (uv_loop_close(&loop) != 0)
        abort();
    return 0;
}
