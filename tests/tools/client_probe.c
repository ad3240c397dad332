/* tests/tools/client_probe.c — drives the client library for the failover integration test.
 *
 *   client_probe ENDPOINTS OPS [TIMEOUT_MS]
 *
 * Runs OPS calls over one client with the comma-separated ENDPOINTS, two at a time: a put of key
 * "probe-<n>" (value "<n>") and a range of that key, alternately, each with a deadline of
 * TIMEOUT_MS (default 3000), pausing 5 ms between starts. Prints one line per finished call:
 *   put probe-<n> ok <endpoint> <revision>
 *   put probe-<n> err <code> <endpoint> <message>
 *   range probe-<n> ok <endpoint> <count>
 *   range probe-<n> err <code> <endpoint> <message>
 * and exits 0 once every call has finished. The test decides what the lines must satisfy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/cairn_client.h"

struct slot {
    struct cl_call call;
    bool is_put;
    char key[32];
    char value[16];
};

static struct cl_client *client;
static uv_timer_t pace;
static int ops, started, finished;
static uint64_t timeout_ms = 3000;
static struct slot slots[2];
static bool slot_busy[2];

static void start_one(int s);

static void on_done(struct cl_call *call)
{
    struct slot *sl = call->data;
    const char *kind = sl->is_put ? "put" : "range";
    const char *ep = call->endpoint ? call->endpoint : "-";
    if (call->code == GRPC_OK && sl->is_put)
        printf("%s %s ok %s %lld\n", kind, sl->key, ep,
               (long long)((Etcdserverpb__PutResponse *)call->response)->header->revision);
    else if (call->code == GRPC_OK)
        printf("%s %s ok %s %lld\n", kind, sl->key, ep,
               (long long)((Etcdserverpb__RangeResponse *)call->response)->count);
    else
        printf("%s %s err %d %s %s\n", kind, sl->key, call->code, ep,
               call->message ? call->message : "");
    fflush(stdout);
    cl_call_reset(call);
    finished++;
    slot_busy[sl - slots] = false;
    if (finished == ops) {
        uv_timer_stop(&pace);
        uv_close((uv_handle_t *)&pace, NULL);
        cl_client_close(client, NULL, NULL);
    }
}

static ProtobufCBinaryData bin(const char *s)
{
    return (ProtobufCBinaryData){strlen(s), (uint8_t *)s};
}

static void start_one(int s)
{
    struct slot *sl = &slots[s];
    int n = started++;
    sl->is_put = n % 2 == 0;
    snprintf(sl->key, sizeof sl->key, "probe-%d", n / 2);
    snprintf(sl->value, sizeof sl->value, "%d", n / 2);
    memset(&sl->call, 0, sizeof sl->call);
    sl->call.cb = on_done;
    sl->call.data = sl;
    sl->call.timeout_ms = timeout_ms;
    int err;
    if (sl->is_put) {
        Etcdserverpb__PutRequest req = ETCDSERVERPB__PUT_REQUEST__INIT;
        req.key = bin(sl->key);
        req.value = bin(sl->value);
        err = cl_put(client, &sl->call, &req);
    } else {
        Etcdserverpb__RangeRequest req = ETCDSERVERPB__RANGE_REQUEST__INIT;
        req.key = bin(sl->key);
        req.serializable = true;
        err = cl_range(client, &sl->call, &req);
    }
    if (err) {
        fprintf(stderr, "client_probe: cannot start a call: %d\n", err);
        exit(1);
    }
    slot_busy[s] = true;
}

static void on_pace(uv_timer_t *t)
{
    (void)t;
    for (int s = 0; s < 2 && started < ops; s++)
        if (!slot_busy[s]) {
            start_one(s);
            break;
        }
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: client_probe ENDPOINTS OPS [TIMEOUT_MS]\n");
        return 2;
    }
    char *list = strdup(argv[1]);
    const char *eps[16];
    size_t n = 0;
    for (char *tok = strtok(list, ","); tok && n < 16; tok = strtok(NULL, ","))
        eps[n++] = tok;
    ops = atoi(argv[2]);
    if (argc > 3)
        timeout_ms = strtoull(argv[3], NULL, 10);
    if (ops <= 0 || n == 0) {
        fprintf(stderr, "client_probe: bad arguments\n");
        return 2;
    }
    uv_loop_t *loop = uv_default_loop();
    struct cl_options o;
    cl_options_default(&o);
    o.endpoints = eps;
    o.n_endpoints = n;
    o.dial_timeout_ms = 1000;
    if (cl_client_new(loop, &o, &client) != 0) {
        fprintf(stderr, "client_probe: bad endpoints\n");
        return 2;
    }
    uv_timer_init(loop, &pace);
    uv_timer_start(&pace, on_pace, 0, 5);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    free(list);
    return 0;
}
