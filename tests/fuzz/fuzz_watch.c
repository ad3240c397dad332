/* tests/fuzz/fuzz_watch.c — fuzz target for the Watch service (api/watch.c, api/watch_index.c).
 *
 * One cairnd API server on a real store (a temporary directory, kept for the process) with a
 * stand-in proposer (a sole member that leads). Each input is a script for one client connection
 * on a memory connection: the harness writes a valid HTTP/2 preface and a Watch request stream,
 * and the script's records become that stream's gRPC messages (fuzzed WatchRequest bytes: creates,
 * cancels, progress requests with any fields) interleaved with store changes (puts, range deletes,
 * compactions) after which the hub fans out, with loop turns between. The client never reads, so
 * streams also fill their send queues. Then the client vanishes. Nothing may crash, leak or touch
 * freed memory. Built with libFuzzer by `make fuzz`; `make test` replays the corpus. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "api/server.h"
#include "api/watch.h"
#include "common/arena.h"

static uv_loop_t loop;
static store *st;
static struct proposer prop;
static struct api_server srv;

static uint64_t one(struct proposer *p)
{
    (void)p;
    return 1;
}
static bool no(struct proposer *p)
{
    (void)p;
    return false;
}
static int refuse(struct proposer *p, struct proposal *pr)
{
    (void)p;
    (void)pr;
    return CAIRN_E_UNIMPLEMENTED;
}

static char dir[] = "/tmp/cairn-fuzz-watch.XXXXXX";

/* Removes the store's directory when the process ends. */
static void remove_dir(void)
{
    static const char *const files[] = {"data.mdb", "lock.mdb", "history.mdb", "history.mdb-lock",
                                        "cairn.lock"};
    char path[sizeof dir + 16];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void setup(void)
{
    if (!mkdtemp(dir) || uv_loop_init(&loop))
        abort();
    atexit(remove_dir);
    struct store_options so = {.nosync = true, .map_bytes = 256u << 20};
    if (store_open(dir, &so, &st))
        abort();
    prop = (struct proposer){.propose = refuse,
                             .term = one,
                             .applied_index = one,
                             .committed_index = one,
                             .leader = one,
                             .cluster_id = one,
                             .is_learner = no,
                             .next_request_id = one};
    struct api_config cfg = {.cluster_id = 1,
                             .self = {.id = 1, .name = "fuzz"},
                             .max_request_bytes = 4096, /* small: fragments happen */
                             .max_txn_ops = 128};
    if (api_server_init(&srv, &loop, st, &prop, &cfg))
        abort();
}

/* HTTP/2 frame header */
static size_t frame_head(uint8_t *p, size_t len, uint8_t type, uint8_t flags, uint32_t stream)
{
    p[0] = (uint8_t)(len >> 16), p[1] = (uint8_t)(len >> 8), p[2] = (uint8_t)len;
    p[3] = type, p[4] = flags;
    p[5] = (uint8_t)(stream >> 24), p[6] = (uint8_t)(stream >> 16), p[7] = (uint8_t)(stream >> 8);
    p[8] = (uint8_t)stream;
    return 9;
}

/* A literal header field without indexing, new name (RFC 7541 6.2.2); short strings only. */
static size_t literal(uint8_t *p, const char *name, const char *value)
{
    size_t n = strlen(name), v = strlen(value), o = 0;
    p[o++] = 0;
    p[o++] = (uint8_t)n;
    memcpy(p + o, name, n), o += n;
    p[o++] = (uint8_t)v;
    memcpy(p + o, value, v), o += v;
    return o;
}

static void feed(struct grpc_mem_conn *mc, const uint8_t *p, size_t n)
{
    grpc_mem_conn_feed(mc, p, n);
}

/* Opens stream `id` as a Watch call. */
static void open_watch(struct grpc_mem_conn *mc, uint32_t id)
{
    uint8_t b[256];
    size_t o = 9;
    o += literal(b + o, ":method", "POST");
    o += literal(b + o, ":scheme", "http");
    o += literal(b + o, ":path", "/etcdserverpb.Watch/Watch");
    o += literal(b + o, ":authority", "fuzz");
    o += literal(b + o, "content-type", "application/grpc");
    o += literal(b + o, "te", "trailers");
    frame_head(b, o - 9, 1 /* HEADERS */, 4 /* END_HEADERS */, id);
    feed(mc, b, o);
}

/* One gRPC message on stream id. */
static void send_message(struct grpc_mem_conn *mc, uint32_t id, const uint8_t *msg, size_t len)
{
    uint8_t b[9 + 5 + 256];
    frame_head(b, 5 + len, 0 /* DATA */, 0, id);
    b[9] = 0;
    b[10] = (uint8_t)(len >> 24), b[11] = (uint8_t)(len >> 16), b[12] = (uint8_t)(len >> 8);
    b[13] = (uint8_t)len;
    memcpy(b + 14, msg, len);
    feed(mc, b, 14 + len);
}

/* A change to the store, then the hub's turn. */
static void change(uint8_t op, const uint8_t *arg, size_t len)
{
    store_tx *tx;
    if (store_tx_begin_write(st, &tx))
        return;
    struct arena a = ARENA_INIT;
    static const uint8_t zero = 0;
    store_bytes key = {len ? arg : &zero, len ? (len > 3 ? 3 : len) : 1};
    switch (op % 4) {
    case 0:
    case 1: {
        /* values up to 8 KiB, so that a revision can exceed the fragment limit */
        static uint8_t value[8192];
        size_t vlen = len ? (size_t)arg[len - 1] * 32 : 0;
        struct store_put_req r = {.key = key, .value = {value, vlen}};
        struct store_put_res res;
        store_put(tx, &r, &a, &res);
        break;
    }
    case 2: {
        struct store_delete_req r = {.key = key, .range_end = {(const uint8_t *)"\xff", 1}};
        struct store_delete_res res;
        store_delete_range(tx, &r, &a, &res);
        break;
    }
    case 3: {
        int64_t rev = store_tx_rev(tx) - (len ? arg[0] % 8 : 0);
        if (rev > store_tx_compact_rev(tx) && store_compact(tx, rev) == 0) {
            bool done = false;
            while (!done && store_compact_step(tx, &done) == 0)
                ;
        }
        break;
    }
    }
    store_tx_commit(tx, false);
    arena_free(&a);
    api_watch_applied(&srv);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        setup();
        ready = true;
    }
    struct grpc_mem_conn *mc;
    if (grpc_mem_conn_open(srv.grpc, NULL, NULL, &mc))
        abort();
    static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    feed(mc, (const uint8_t *)preface, sizeof preface - 1);
    uint8_t settings[9];
    frame_head(settings, 0, 4 /* SETTINGS */, 0, 0);
    feed(mc, settings, sizeof settings);
    uint32_t streams = 0;
    /* records: op, length, bytes. op 0-3: a message on stream 1 + (op % 2) * 2 (opened on first
     * use); 4-7: a store change; 8+: a loop turn. */
    size_t i = 0;
    while (i + 2 <= size) {
        uint8_t op = data[i] % 12, len = data[i + 1];
        i += 2;
        if (len > size - i)
            len = (uint8_t)(size - i);
        const uint8_t *arg = data + i;
        i += len;
        if (op < 4) {
            uint32_t id = 1 + (uint32_t)(op % 2) * 2;
            if (!(streams & (1u << id))) {
                open_watch(mc, id);
                streams |= 1u << id;
            }
            send_message(mc, id, arg, len);
        } else if (op < 8) {
            change(op, arg, len);
        } else {
            uv_run(&loop, UV_RUN_NOWAIT);
        }
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    grpc_mem_conn_close(mc);
    uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
