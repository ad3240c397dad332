/* client/stream.c — bidirectional gRPC streams, carried by the call machinery of client.c and
 * conn.c.
 *
 * A stream is a call (its embedded cl_call, with stream_ set) whose request side is a queue of
 * framed messages instead of one body: nghttp2 reads it through cl_stream_read_body(), which
 * defers when it is empty until cl_stream_send() queues more and resumes the stream. Messages from
 * the server are decoded in conn.c and queued here; the client's check handle delivers them to
 * on_msg outside nghttp2, so a callback may send, cancel or close the client. The end of the call
 * (trailers, reset, lost connection, cancel) is the end of the stream: its call's callback
 * delivers what is still queued, then on_end. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "client/internal.h"
#include "common/error.h"

#define STREAM_OF(call) ((call)->stream_)

static void rx_drop(struct cl_stream *s)
{
    for (size_t i = s->rx_head_; i < s->rx_len_; i++)
        cl_stream_msg_free(s->rx_[i]);
    free(s->rx_);
    s->rx_ = NULL;
    s->rx_head_ = s->rx_len_ = s->rx_cap_ = 0;
}

/* Unlinks s from the client's list of streams with messages due. */
static void rx_unlink(struct cl_client *c, struct cl_stream *s)
{
    if (!s->in_rx_)
        return;
    struct cl_stream *prev = NULL;
    for (struct cl_stream *p = c->rx_head; p; prev = p, p = p->rx_next_) {
        if (p == s) {
            if (prev)
                prev->rx_next_ = s->rx_next_;
            else
                c->rx_head = s->rx_next_;
            if (c->rx_tail == s)
                c->rx_tail = prev;
            break;
        }
    }
    s->in_rx_ = false;
    s->rx_next_ = NULL;
}

void cl_stream_received(struct cl_call *call, ProtobufCMessage *msg)
{
    struct cl_stream *s = STREAM_OF(call);
    struct cl_client *c = call->client_;
    if (s->rx_head_ > 0 && s->rx_head_ == s->rx_len_)
        s->rx_head_ = s->rx_len_ = 0;
    if (s->rx_len_ == s->rx_cap_) {
        size_t cap = s->rx_cap_ ? 2 * s->rx_cap_ : 8;
        ProtobufCMessage **q = realloc(s->rx_, cap * sizeof *q);
        if (!q) {
            cl_stream_msg_free(msg);
            if (call->conn_)
                cl_conn_detach(call->conn_, call);
            cl_call_finish(call, GRPC_RESOURCE_EXHAUSTED, "cairn: out of memory");
            return;
        }
        s->rx_ = q;
        s->rx_cap_ = cap;
    }
    s->rx_[s->rx_len_++] = msg;
    if (!s->in_rx_) {
        s->in_rx_ = true;
        s->rx_next_ = NULL;
        if (c->rx_tail)
            c->rx_tail->rx_next_ = s;
        else
            c->rx_head = s;
        c->rx_tail = s;
    }
    cl_client_kick(c);
}

/* Delivers s's queued messages while it has some; on_msg may cancel s (dropping the rest). */
static void deliver(struct cl_stream *s)
{
    while (s->rx_head_ < s->rx_len_) {
        ProtobufCMessage *m = s->rx_[s->rx_head_++];
        s->on_msg(s, m);
    }
}

void cl_stream_run_rx(struct cl_client *c)
{
    while (c->rx_head) {
        struct cl_stream *s = c->rx_head;
        c->rx_head = s->rx_next_;
        if (!c->rx_head)
            c->rx_tail = NULL;
        s->in_rx_ = false;
        s->rx_next_ = NULL;
        deliver(s);
    }
}

ssize_t cl_stream_read_body(struct cl_call *call, uint8_t *buf, size_t length, uint32_t *data_flags)
{
    struct cl_stream *s = STREAM_OF(call);
    size_t n = call->body_len_ - call->body_off_;
    if (n == 0) {
        if (!s->half_closed_)
            return NGHTTP2_ERR_DEFERRED;
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    if (n > length)
        n = length;
    memcpy(buf, call->body_ + call->body_off_, n);
    call->body_off_ += n;
    if (call->body_off_ == call->body_len_) {
        call->body_off_ = call->body_len_ = 0; /* nghttp2 copied it: the queue starts over */
        if (s->half_closed_)
            *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    }
    return (ssize_t)n;
}

/* The stream's call ended (from the check handle): the last messages, then on_end. */
static void on_call_done(struct cl_call *call)
{
    struct cl_stream *s = STREAM_OF(call);
    rx_unlink(call->client_, s);
    if (call->code != GRPC_CANCELLED)
        deliver(s);
    rx_drop(s);
    s->code = call->code;
    free(s->message);
    s->message = call->message;
    call->message = NULL;
    s->endpoint = call->endpoint;
    s->on_end(s);
}

static bool live(const struct cl_stream *s)
{
    int st = s->call_.state_;
    return st == CALL_WAITING || st == CALL_STREAM || st == CALL_BACKOFF;
}

int cl_stream_open(struct cl_client *c, struct cl_stream *s, const struct cl_method *m,
                   uint64_t delay_ms)
{
    if (!s->on_msg || !s->on_end || s->call_.state_ != CALL_IDLE)
        return CAIRN_E_INVALID_ARGUMENT;
    if (c->closing)
        return UV_ECANCELED;
    struct cl_call *call = &s->call_;
    call->cb = on_call_done;
    call->data = s;
    call->timeout_ms = 0;
    call->stream_ = s;
    s->code = -1;
    cl_call_launch(c, call, m, delay_ms);
    return 0;
}

int cl_stream_send(struct cl_stream *s, const ProtobufCMessage *msg)
{
    struct cl_call *call = &s->call_;
    if (!msg || !live(s) || s->half_closed_ || msg->descriptor != call->method_->request)
        return CAIRN_E_INVALID_ARGUMENT;
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > UINT32_MAX - GRPC_FRAME_HEADER_SIZE)
        return CAIRN_E_INVALID_ARGUMENT;
    size_t need = call->body_len_ + GRPC_FRAME_HEADER_SIZE + len;
    if (need > s->body_cap_) {
        size_t cap = s->body_cap_ ? s->body_cap_ : 256;
        while (cap < need)
            cap *= 2;
        uint8_t *b = realloc(call->body_, cap);
        if (!b)
            return CAIRN_E_NOMEM;
        call->body_ = b;
        s->body_cap_ = cap;
    }
    uint8_t *p = call->body_ + call->body_len_;
    grpc_frame_header_encode(p, false, (uint32_t)len);
    protobuf_c_message_pack(msg, p + GRPC_FRAME_HEADER_SIZE);
    call->body_len_ = need;
    if (call->conn_)
        cl_conn_resume(call->conn_, call);
    return 0;
}

void cl_stream_close_send(struct cl_stream *s)
{
    if (!live(s) || s->half_closed_)
        return;
    s->half_closed_ = true;
    if (s->call_.conn_)
        cl_conn_resume(s->call_.conn_, &s->call_);
}

void cl_stream_cancel(struct cl_stream *s)
{
    if (!live(s))
        return;
    rx_unlink(s->call_.client_, s);
    rx_drop(s);
    cl_call_cancel(&s->call_);
}

void cl_stream_reset(struct cl_stream *s)
{
    rx_drop(s);
    cl_call_reset(&s->call_);
    free(s->message);
    cl_stream_msg_cb on_msg = s->on_msg;
    cl_stream_end_cb on_end = s->on_end;
    void *data = s->data;
    bool require_leader = s->require_leader;
    memset(s, 0, sizeof *s);
    s->on_msg = on_msg;
    s->on_end = on_end;
    s->data = data;
    s->require_leader = require_leader;
}
