/* client/sync.c — the blocking wrapper: a client on a private loop, run until each call ends. */
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/error.h"

struct cl_sync {
    uv_loop_t loop;      /* private */
    struct cl_client *c; /* on loop */
    bool closed;         /* cl_client_close() finished */
};

int cl_sync_new(const struct cl_options *o, struct cl_sync **out)
{
    *out = NULL;
    struct cl_sync *s = calloc(1, sizeof *s);
    if (!s)
        return CAIRN_E_NOMEM;
    int err = uv_loop_init(&s->loop);
    if (err) {
        free(s);
        return err;
    }
    err = cl_client_new(&s->loop, o, &s->c);
    if (err) {
        uv_loop_close(&s->loop);
        free(s);
        return err;
    }
    *out = s;
    return 0;
}

static void on_closed(void *arg)
{
    ((struct cl_sync *)arg)->closed = true;
}

void cl_sync_free(struct cl_sync *s)
{
    if (!s)
        return;
    cl_client_close(s->c, on_closed, s);
    while (!s->closed && uv_run(&s->loop, UV_RUN_ONCE))
        ;
    uv_run(&s->loop, UV_RUN_NOWAIT); /* the last close callbacks */
    uv_loop_close(&s->loop);
    free(s);
}

void cl_sync_run(struct cl_sync *s, const bool *done)
{
    while (!*done && uv_run(&s->loop, UV_RUN_ONCE))
        ;
}

struct cl_client *cl_sync_client(struct cl_sync *s)
{
    return s->c;
}

static void on_done(struct cl_call *call)
{
    *(bool *)call->data = true;
}

int cl_sync_call(struct cl_sync *s, struct cl_call *call, const struct cl_method *m,
                 const ProtobufCMessage *req)
{
    bool done = false;
    cl_call_cb cb = call->cb;
    void *data = call->data;
    call->cb = on_done;
    call->data = &done;
    int err = cl_call_start(s->c, call, m, req);
    if (err) {
        call->cb = cb;
        call->data = data;
        call->code = GRPC_INTERNAL;
        free(call->message);
        call->message = strdup(err == CAIRN_E_NOMEM ? "cairn: out of memory"
                                                    : "cairn: the request could not be started");
        return call->code;
    }
    while (!done && uv_run(&s->loop, UV_RUN_ONCE))
        ;
    call->cb = cb;
    call->data = data;
    if (!done) { /* cannot happen: a started call keeps a handle active until it finishes */
        call->code = GRPC_INTERNAL;
        return call->code;
    }
    return call->code;
}
