/* api/watch.c — etcd's Watch service: watch streams, their watchers, and the hub that fans out
 * every applied revision's events once.
 *
 * A watcher is either synced — it has every matching event up to the hub's revision, and the hub
 * hands it each new revision's events as they are applied — or catching up: it has every matching
 * event below its next_rev and reads the rest from the store's change feed itself, whole revisions
 * gathered into responses of up to ~64 KiB (one revision each for a fragmenting watcher), until it
 * reaches the hub's revision and is synced again. A watcher starts catching up
 * when it asks for a past revision, or when its stream's send queue is over its high-water mark as
 * a revision arrives for it (a slow reader: the hub never queues more for it than one revision),
 * and continues when the queue drains (on_writable). So memory stays bounded per stream and no
 * event is dropped, duplicated or reordered. A catching-up watcher whose next revision is compacted
 * away is cancelled with compact_revision, as etcd's is.
 *
 * The hub runs on every member after each applied entry, from the member's own applied state. */
#include <stdlib.h>
#include <string.h>

#include "api/service.h"
#include "api/watch.h"
#include "api/watch_index.h"
#include "common/log.h"
#include "raft/etcd_conv.h"

#define WATCH_NO_ID (-1) /* clientv3's InvalidWatchID */

/* A catching-up watcher's responses: revisions are gathered until about this much. */
#define WATCH_BATCH_BYTES  (64 * 1024)
#define WATCH_BATCH_EVENTS 1000

/* Bytes queued on a stream before its watchers fall back to catching up. */
#define WATCH_STREAM_HIGH_WATER (256 * 1024)

struct wstream;

struct watcher {
    struct watch_key wk; /* the key (bytes follow the struct) and its index entry */
    struct wstream *s;
    struct watcher *next, *prev; /* the stream's watchers */
    int64_t id;
    int64_t next_rev; /* synced: the first revision it wants; catching up: the next to read */
    bool synced : 1;
    bool prev_kv : 1, noput : 1, nodelete : 1, fragment : 1;
    bool progress_notify : 1;
    bool quiet : 1; /* no event sent since the last progress tick (etcd's progress flag) */
};

struct wstream {
    struct watch_hub *hub;
    struct grpc_call *call;
    struct wstream *next, *prev; /* the hub's streams */
    struct watcher *watchers;
    int64_t next_id; /* the next server-assigned watch id */
    unsigned catching_up;
    bool blocked;         /* the send queue is over its high-water mark */
    bool hasleader;       /* the client requires a leader */
    bool progress_wanted; /* a progress request waits until every watcher is synced */
    bool finished;
};

/* One matching event of the revision being fanned out. */
struct hit {
    struct watcher *w;
    uint32_t ev; /* index into hub->evs */
};

struct watch_hub {
    struct api_server *srv;
    struct watch_index ix;
    struct wstream *streams;
    int64_t rev; /* every synced watcher has every event up to here */
    bool rev_known;
    unsigned prev_kv_watchers; /* synced or not: whether the feed must find previous values */
    uint64_t progress_ms;
    uv_timer_t progress_timer;
    uv_timer_t leader_timer;
    struct arena arena;              /* one revision's events and responses */
    struct arena tmp;                /* the event being read */
    Mvccpb__Event **evs, **evs_prev; /* the revision's events without and with prev_kv */
    size_t n_evs, cap_evs;
    struct hit *hits;
    size_t n_hits, cap_hits;
    int64_t hits_rev;                 /* the revision being fanned out */
    const struct store_event *cur_ev; /* the event being matched */
    bool retry;                       /* a watcher fell back to the feed without a full queue */
    unsigned no_leader_ticks;         /* consecutive election timeouts without a leader */
    unsigned timers_closed;
};

/* ---------------------------------------------------------------------------------------------- */
/* Responses */

static int64_t current_rev(struct watch_hub *h)
{
    if (!h->rev_known) {
        h->rev = api_current_rev(h->srv);
        h->rev_known = h->rev > 0; /* 0: the store could not be read; ask again next time */
    }
    return h->rev;
}

/* Packs and sends r on s; header revision rev (etcd fills the header's revision with the
 * response's revision, 0 included). Marks the stream blocked when its queue is full. */
static int send_response(struct wstream *s, Etcdserverpb__WatchResponse *r, int64_t rev)
{
    Etcdserverpb__ResponseHeader hdr = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    api_fill_header(s->hub->srv, &hdr);
    hdr.revision = rev;
    r->header = &hdr;
    size_t n = protobuf_c_message_get_packed_size(&r->base);
    uint8_t stackbuf[512];
    uint8_t *buf = n <= sizeof stackbuf ? stackbuf : malloc(n);
    if (!buf)
        return CAIRN_E_NOMEM;
    protobuf_c_message_pack(&r->base, buf);
    int rc = grpc_call_send(s->call, buf, n);
    if (buf != stackbuf)
        free(buf);
    r->header = NULL;
    if (rc == 1)
        s->blocked = true;
    return rc < 0 ? rc : 0;
}

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80)
        v >>= 7, n++;
    return n;
}

/* The packed size of w's response for rev without events. */
static size_t base_size(struct watcher *w, int64_t rev, bool fragment)
{
    Etcdserverpb__ResponseHeader hdr = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    api_fill_header(w->s->hub->srv, &hdr);
    hdr.revision = rev;
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.header = &hdr;
    r.watch_id = w->id;
    r.fragment = fragment;
    return protobuf_c_message_get_packed_size(&r.base);
}

static size_t event_field_size(const Mvccpb__Event *e)
{
    size_t len = protobuf_c_message_get_packed_size(&e->base);
    return 1 + varint_size(len) + len;
}

/* Sends w's events of one revision: in one response, or — when the watcher asked for fragments
 * and the response would reach etcd's limit (--max-request-bytes plus its 512 KiB allowance for
 * gRPC overhead) — in several, each as full as fits below the limit (at least one event), all but
 * the last marked fragment, as etcd's sendFragments splits them. */
static int send_events(struct watcher *w, Mvccpb__Event **evs, size_t n, int64_t rev)
{
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = w->id;
    w->quiet = false;
    if (w->fragment && n >= 2) {
        size_t limit = w->s->hub->srv->cfg.max_request_bytes + 512 * 1024;
        size_t total = base_size(w, rev, false);
        for (size_t i = 0; i < n && total < limit; i++)
            total += event_field_size(evs[i]);
        if (total >= limit) {
            size_t base = base_size(w, rev, true);
            for (size_t i = 0; i < n;) {
                size_t j = i, size = base;
                while (j < n) {
                    size_t add = event_field_size(evs[j]);
                    if (j > i && size + add >= limit)
                        break;
                    size += add;
                    j++;
                }
                r.events = evs + i;
                r.n_events = j - i;
                r.fragment = j < n;
                int err = send_response(w->s, &r, rev);
                if (err)
                    return err;
                i = j;
            }
            return 0;
        }
    }
    r.events = evs;
    r.n_events = n;
    return send_response(w->s, &r, rev);
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80)
        p[n++] = (uint8_t)(v | 0x80), v >>= 7;
    p[n++] = (uint8_t)v;
    return n;
}

/* A length-delimited field packed once per revision: tag, length, message. */
struct packed {
    uint8_t *p;
    size_t n;
};

static int pack_field(struct arena *a, uint8_t tag, const ProtobufCMessage *m, struct packed *out)
{
    size_t len = protobuf_c_message_get_packed_size(m);
    uint8_t *p = arena_alloc(a, 1 + 10 + len);
    if (!p)
        return CAIRN_E_NOMEM;
    p[0] = tag;
    size_t o = 1 + put_varint(p + 1, len);
    protobuf_c_message_pack(m, p + o);
    *out = (struct packed){p, o + len};
    return 0;
}

/* Sends a watcher the revision's events from their packed fields: a WatchResponse is its header
 * (field 1), the watch id (field 2, absent when 0) and the events (field 11), so each event and
 * the header are packed once per revision whoever watches them, not once per watcher. */
static int send_packed(struct watcher *w, const struct packed *hdr, const struct packed *evs,
                       size_t n)
{
    struct grpc_part stackparts[66];
    struct grpc_part *parts = n + 2 <= sizeof stackparts / sizeof *stackparts
                                  ? stackparts
                                  : malloc((n + 2) * sizeof *parts);
    if (!parts)
        return CAIRN_E_NOMEM;
    uint8_t id[11];
    size_t k = 0;
    parts[k++] = (struct grpc_part){hdr->p, hdr->n};
    if (w->id) {
        id[0] = 0x10;
        parts[k++] = (struct grpc_part){id, 1 + put_varint(id + 1, (uint64_t)w->id)};
    }
    for (size_t i = 0; i < n; i++)
        parts[k++] = (struct grpc_part){evs[i].p, evs[i].n};
    int rc = grpc_call_sendv(w->s->call, parts, k);
    if (parts != stackparts)
        free(parts);
    w->quiet = false;
    if (rc == 1)
        w->s->blocked = true;
    return rc < 0 ? rc : 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Watchers */

static void watcher_free(struct watch_hub *h, struct watcher *w)
{
    watch_index_remove(&h->ix, &w->wk);
    if (w->prev_kv)
        h->prev_kv_watchers--;
    if (!w->synced)
        w->s->catching_up--;
    if (w->prev)
        w->prev->next = w->next;
    else
        w->s->watchers = w->next;
    if (w->next)
        w->next->prev = w->prev;
    free(w);
}

static struct watcher *find_watcher(struct wstream *s, int64_t id)
{
    for (struct watcher *w = s->watchers; w; w = w->next)
        if (w->id == id)
            return w;
    return NULL;
}

/* Cancels w because its next revision is compacted away: etcd's response with compact_revision
 * (header revision 0, as etcd sends it) and canceled. */
static void cancel_compacted(struct watcher *w, int64_t compact_rev)
{
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = w->id;
    r.compact_revision = compact_rev;
    r.canceled = true;
    struct wstream *s = w->s;
    send_response(s, &r, 0);
    watcher_free(s->hub, w);
}

static bool event_wanted(const struct watcher *w, const struct store_event *ev)
{
    if (ev->type == STORE_EVENT_PUT ? w->noput : w->nodelete)
        return false;
    return true;
}

static bool key_in(const struct watcher *w, const store_bytes *key)
{
    const struct watch_key *k = &w->wk;
    size_t n = key->len < k->key_len ? key->len : k->key_len;
    int c = memcmp(key->data, k->key, n);
    if (!k->end && !k->to_infinity)
        return c == 0 && key->len == k->key_len;
    if (c < 0 || (c == 0 && key->len < k->key_len))
        return false; /* before the start */
    if (k->to_infinity)
        return true;
    n = key->len < k->end_len ? key->len : k->end_len;
    c = memcmp(key->data, k->end, n);
    return c < 0 || (c == 0 && key->len < k->end_len);
}

/* A copy of kv's bytes in a, converted. */
static Mvccpb__KeyValue *copy_kv(const struct store_kv *kv, struct arena *a)
{
    struct store_kv c = *kv;
    if (c.key.len && !(c.key.data = arena_dup(a, kv->key.data, kv->key.len)))
        return NULL;
    if (c.value.len && !(c.value.data = arena_dup(a, kv->value.data, kv->value.len)))
        return NULL;
    return conv_kv(&c, a);
}

/* The event as etcd sends it to a watcher, copied into a (the feed's memory is reused per event):
 * prev_kv only when asked and the event is not the key's creation. NULL on exhaustion. */
static Mvccpb__Event *conv_event(const struct store_event *ev, bool with_prev, struct arena *a)
{
    Mvccpb__Event *e = arena_alloc(a, sizeof *e);
    if (!e)
        return NULL;
    Mvccpb__Event init = MVCCPB__EVENT__INIT;
    *e = init;
    e->type = ev->type == STORE_EVENT_PUT ? MVCCPB__EVENT__EVENT_TYPE__PUT
                                          : MVCCPB__EVENT__EVENT_TYPE__DELETE;
    if (!(e->kv = copy_kv(&ev->kv, a)))
        return NULL;
    bool create = ev->type == STORE_EVENT_PUT && ev->kv.create_revision == ev->kv.mod_revision;
    if (with_prev && ev->prev_kv && !create && !(e->prev_kv = copy_kv(ev->prev_kv, a)))
        return NULL;
    return e;
}

static void stream_synced(struct wstream *s);

/* The next event of a catch-up's feed (tmp holds it until the next step) and its revision, which
 * is end + 1 once the feed is read to its end (rc 0). A negative rc is logged. */
static int feed_step(struct store_feed *f, struct arena *tmp, struct store_event *ev, int64_t end,
                     int64_t *evrev)
{
    arena_reset(tmp);
    int rc = store_feed_next(f, tmp, ev);
    if (rc < 0)
        log_error("watch: reading the history failed: %s", cairn_strerror(rc));
    *evrev = rc > 0 ? ev->kv.mod_revision : end + 1;
    return rc;
}

/* Reads a catching-up watcher's events from the feed, one revision per response, until its
 * stream's queue is full or it reached the hub's revision (then it is synced). */
static void catch_up(struct watcher *w)
{
    struct wstream *s = w->s;
    struct watch_hub *h = s->hub;
    store_tx *view;
    int err = store_tx_begin_view(h->srv->st, &view);
    if (err) {
        log_error("watch: reading the history failed: %s", cairn_strerror(err));
        return;
    }
    struct store_feed f;
    err = store_feed_open(view, w->next_rev, w->prev_kv, &f);
    if (err == CAIRN_E_COMPACTED) {
        int64_t compacted = store_tx_compact_rev(view);
        store_tx_end(view);
        cancel_compacted(w, compacted);
        return;
    }
    if (err) {
        store_tx_end(view);
        log_error("watch: reading the history failed: %s", cairn_strerror(err));
        return;
    }
    int64_t end = store_tx_rev(view);
    struct arena a = {0}, tmp = {0}; /* the revision's events; the event being read */
    Mvccpb__Event **evs = NULL;
    size_t n = 0, cap = 0, bytes = 0;
    int64_t rev = 0;
    for (;;) {
        struct store_event ev;
        int64_t evrev;
        int rc = feed_step(&f, &tmp, &ev, end, &evrev);
        if (rc < 0)
            break;
        if (evrev != rev && rev) {
            /* revision rev is complete. What is gathered goes out once it is large enough —
             * several revisions in one response, as etcd's catch-up sends them — at the end, and
             * per revision to a fragmenting watcher. Until it went out next_rev stays put. */
            if (!n) {
                w->next_rev = rev + 1;
            } else if (w->fragment || !rc || bytes >= WATCH_BATCH_BYTES ||
                       n >= WATCH_BATCH_EVENTS) {
                if (send_events(w, evs, n, rev) < 0)
                    break;
                w->next_rev = rev + 1;
                n = cap = bytes = 0;
                evs = NULL;
                arena_reset(&a);
                if (s->blocked)
                    break;
            }
        }
        if (!rc) {
            w->next_rev = end + 1;
            break;
        }
        rev = evrev;
        if (!key_in(w, &ev.kv.key) || !event_wanted(w, &ev))
            continue;
        Mvccpb__Event *e = conv_event(&ev, w->prev_kv, &a);
        if (!e || !(evs = arena_grow(&a, evs, n, &cap, sizeof *evs))) {
            log_error("watch: out of memory catching up watcher %lld", (long long)w->id);
            break;
        }
        evs[n++] = e;
        bytes += 32 + ev.kv.key.len + ev.kv.value.len + (e->prev_kv ? e->prev_kv->value.len : 0);
    }
    store_feed_close(&f);
    store_tx_end(view);
    arena_free(&a);
    arena_free(&tmp);
    if (w->next_rev > current_rev(h) && !w->synced) {
        w->synced = true;
        s->catching_up--;
        if (!s->catching_up)
            stream_synced(s);
    }
}

/* A catching-up watcher in a pass over the history for its whole stream: the events gathered for
 * its next response, packed, and the revision they end at. */
struct lag {
    struct watcher *w;
    struct packed *evs;
    size_t n, cap, bytes;
    int64_t rev;
};

/* Pass memory (packed events, the lags' arrays) above which every gathered batch goes out so that
 * the pass can start over with an empty arena. */
#define PASS_BYTES_MAX (16 * WATCH_BATCH_BYTES)

/* Sends l's gathered events; its watcher then has everything up to l->rev. */
static int lag_flush(struct lag *l, struct arena *a)
{
    if (!l->n)
        return 0;
    Etcdserverpb__ResponseHeader hdr = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    api_fill_header(l->w->s->hub->srv, &hdr);
    hdr.revision = l->rev;
    struct packed hp;
    int err = pack_field(a, 0x0a, &hdr.base, &hp);
    if (!err)
        err = send_packed(l->w, &hp, l->evs, l->n);
    if (err)
        return err;
    l->w->next_rev = l->rev + 1;
    l->evs = NULL;
    l->n = l->cap = l->bytes = 0;
    return 0;
}

/* Reads the history once for every catching-up, non-fragmenting watcher of s, from the lowest of
 * their next revisions: each event is packed once and handed to every watcher it concerns, and
 * each watcher's revisions are gathered into responses as catch_up() gathers them, until the
 * stream's queue is full or the history is read to its end (those watchers are then synced). */
static void stream_catch_up(struct wstream *s)
{
    struct watch_hub *h = s->hub;
    size_t n_lags = 0;
    for (struct watcher *w = s->watchers; w; w = w->next)
        n_lags += !w->synced && !w->fragment;
    if (!n_lags)
        return;
    struct lag *lags = calloc(n_lags, sizeof *lags);
    if (!lags) {
        log_error("watch: out of memory catching up a stream");
        return;
    }
    int64_t from = INT64_MAX;
    bool prev = false;
    size_t k = 0;
    for (struct watcher *w = s->watchers; w; w = w->next) {
        if (w->synced || w->fragment)
            continue;
        lags[k++].w = w;
        from = w->next_rev < from ? w->next_rev : from;
        prev = prev || w->prev_kv;
    }
    store_tx *view;
    int err = store_tx_begin_view(h->srv->st, &view);
    if (err) {
        log_error("watch: reading the history failed: %s", cairn_strerror(err));
        free(lags);
        return;
    }
    struct store_feed f;
    err = store_feed_open(view, from, prev, &f);
    if (err) {
        store_tx_end(view);
        if (err == CAIRN_E_COMPACTED) { /* each on its own: some are cancelled, some read on */
            for (size_t i = 0; i < n_lags && !s->blocked && !s->finished; i++)
                catch_up(lags[i].w);
        } else {
            log_error("watch: reading the history failed: %s", cairn_strerror(err));
        }
        free(lags);
        return;
    }
    int64_t end = store_tx_rev(view);
    struct arena a = {0}, tmp = {0}; /* packed events and arrays; the event being read */
    size_t pass_bytes = 0;
    int64_t rev = 0;
    bool stop = false;
    for (;;) {
        struct store_event ev;
        int64_t evrev;
        int rc = feed_step(&f, &tmp, &ev, end, &evrev);
        if (rc < 0)
            break;
        if (evrev != rev && rev) {
            /* revision rev is complete: batches large enough go out (all of them at the end or
             * when the pass holds too much); until a batch went out its watcher's next_rev stays */
            bool all = !rc || pass_bytes >= PASS_BYTES_MAX;
            for (size_t i = 0; i < n_lags && !stop; i++) {
                struct lag *l = &lags[i];
                if (!l->n) {
                    if (l->w->next_rev <= rev)
                        l->w->next_rev = rev + 1;
                } else if (all || l->bytes >= WATCH_BATCH_BYTES || l->n >= WATCH_BATCH_EVENTS) {
                    stop = lag_flush(l, &a) < 0 || s->blocked;
                }
            }
            if (stop)
                break;
            if (all) {
                arena_reset(&a);
                pass_bytes = 0;
            }
        }
        if (!rc) {
            for (size_t i = 0; i < n_lags; i++)
                lags[i].w->next_rev = end + 1;
            break;
        }
        rev = evrev;
        struct packed pk[2] = {{0}}; /* the event's field without and with prev_kv */
        Mvccpb__Event *m[2] = {0};
        for (size_t i = 0; i < n_lags; i++) {
            struct lag *l = &lags[i];
            struct watcher *w = l->w;
            if (w->next_rev > rev || !key_in(w, &ev.kv.key) || !event_wanted(w, &ev))
                continue;
            bool p = w->prev_kv;
            if (!pk[p].p &&
                (!(m[p] = conv_event(&ev, p, &a)) || pack_field(&a, 0x5a, &m[p]->base, &pk[p]))) {
                stop = true;
                break;
            }
            struct packed *evs = arena_grow(&a, l->evs, l->n, &l->cap, sizeof *evs);
            if (!evs) {
                stop = true;
                break;
            }
            l->evs = evs;
            l->evs[l->n++] = pk[p];
            l->bytes += pk[p].n;
            l->rev = rev;
            pass_bytes += pk[p].n + sizeof *evs;
        }
        if (stop) {
            log_error("watch: out of memory catching up a stream");
            break;
        }
    }
    store_feed_close(&f);
    store_tx_end(view);
    arena_free(&a);
    arena_free(&tmp);
    int64_t cur = current_rev(h);
    for (size_t i = 0; i < n_lags; i++) {
        struct watcher *w = lags[i].w;
        if (w->next_rev > cur && !w->synced) {
            w->synced = true;
            s->catching_up--;
        }
    }
    free(lags);
    if (!s->catching_up)
        stream_synced(s);
}

/* ---------------------------------------------------------------------------------------------- */
/* Streams */

static void send_progress(struct wstream *s, int64_t watch_id)
{
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = watch_id;
    send_response(s, &r, current_rev(s->hub));
}

/* Every watcher of s has every event up to the hub's revision. */
static void stream_synced(struct wstream *s)
{
    if (s->progress_wanted) {
        s->progress_wanted = false;
        send_progress(s, WATCH_NO_ID);
    }
}

static void stream_continue(struct wstream *s)
{
    if (!s->blocked && !s->finished)
        stream_catch_up(s);
    for (struct watcher *w = s->watchers, *next; w && !s->blocked && !s->finished; w = next) {
        next = w->next;
        if (!w->synced && w->fragment)
            catch_up(w);
    }
}

static void stream_free(struct wstream *s)
{
    struct watch_hub *h = s->hub;
    while (s->watchers)
        watcher_free(h, s->watchers);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    free(s);
}

static void stream_finish(struct wstream *s, int status, const char *message)
{
    if (s->finished)
        return;
    s->finished = true;
    grpc_call_set_data(s->call, NULL);
    grpc_call_finish(s->call, status, message);
    stream_free(s);
}

static void watch_create(struct wstream *s, const Etcdserverpb__WatchCreateRequest *cr)
{
    struct watch_hub *h = s->hub;
    int64_t cur = current_rev(h);
    /* etcd's normalization: an empty key is the smallest key, "\0" as range end means every key
     * from key on, an empty range end a single key */
    static const uint8_t zero = 0;
    const uint8_t *key = cr->key.len ? cr->key.data : &zero;
    size_t key_len = cr->key.len ? cr->key.len : 1;
    bool to_inf = cr->range_end.len == 1 && cr->range_end.data[0] == 0;
    bool ranged = cr->range_end.len && !to_inf;
    const char *why = NULL;
    if (ranged) {
        size_t m = key_len < cr->range_end.len ? key_len : cr->range_end.len;
        int c = memcmp(key, cr->range_end.data, m);
        if (c > 0 || (c == 0 && key_len >= cr->range_end.len))
            why = "mvcc: watcher range is empty";
    }
    int64_t id = cr->watch_id;
    if (!why && id != 0 && find_watcher(s, id))
        why = "mvcc: duplicate watch ID provided on the WatchStream";
    struct watcher *w = NULL;
    if (!why) {
        w = calloc(1, sizeof *w + key_len + (ranged ? cr->range_end.len : 0));
        if (!w)
            why = cairn_strerror(CAIRN_E_NOMEM);
    }
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.created = true;
    if (why) {
        r.watch_id = WATCH_NO_ID;
        r.canceled = true;
        r.cancel_reason = (char *)why;
        send_response(s, &r, cur);
        return;
    }
    if (id == 0) {
        while (find_watcher(s, s->next_id))
            s->next_id++;
        id = s->next_id++;
    }
    uint8_t *p = (uint8_t *)(w + 1);
    memcpy(p, key, key_len);
    w->wk.key = p;
    w->wk.key_len = (uint32_t)key_len;
    w->wk.to_infinity = to_inf;
    if (ranged) {
        memcpy(p + key_len, cr->range_end.data, cr->range_end.len);
        w->wk.end = p + key_len;
        w->wk.end_len = (uint32_t)cr->range_end.len;
    }
    w->s = s;
    w->id = id;
    w->prev_kv = cr->prev_kv;
    w->fragment = cr->fragment;
    w->progress_notify = cr->progress_notify;
    w->quiet = true;
    for (size_t i = 0; i < cr->n_filters; i++) {
        if (cr->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NOPUT)
            w->noput = true;
        else if (cr->filters[i] == ETCDSERVERPB__WATCH_CREATE_REQUEST__FILTER_TYPE__NODELETE)
            w->nodelete = true;
    }
    int64_t start = cr->start_revision > 0 ? cr->start_revision : cur + 1;
    w->next_rev = start;
    w->synced = start > cur;
    if (watch_index_add(&h->ix, &w->wk)) {
        free(w);
        r.watch_id = WATCH_NO_ID;
        r.canceled = true;
        r.cancel_reason = (char *)cairn_strerror(CAIRN_E_NOMEM);
        send_response(s, &r, cur);
        return;
    }
    w->next = s->watchers;
    if (s->watchers)
        s->watchers->prev = w;
    s->watchers = w;
    if (w->prev_kv)
        h->prev_kv_watchers++;
    if (!w->synced)
        s->catching_up++;
    r.watch_id = id;
    send_response(s, &r, cur);
    if (!w->synced && !s->blocked)
        catch_up(w);
}

static void watch_cancel(struct wstream *s, int64_t id)
{
    struct watcher *w = find_watcher(s, id);
    if (!w)
        return; /* etcd answers nothing for an unknown id */
    watcher_free(s->hub, w);
    Etcdserverpb__WatchResponse r = ETCDSERVERPB__WATCH_RESPONSE__INIT;
    r.watch_id = id;
    r.canceled = true;
    send_response(s, &r, current_rev(s->hub));
    if (!s->catching_up)
        stream_synced(s);
}

static void on_message(struct grpc_call *call, const uint8_t *msg, size_t len, void *ctx)
{
    struct api_server *srv = ctx;
    struct watch_hub *h = srv->watch;
    struct wstream *s = grpc_call_data(call);
    if (!s) {
        const char *hl = grpc_call_header(call, "hasleader");
        bool hasleader = hl && !strcmp(hl, "true");
        int refuse = api_call_refusal(srv, call);
        if (refuse) {
            grpc_call_finish(call, cairn_err_grpc_code(refuse), cairn_strerror(refuse));
            return;
        }
        if (!(s = calloc(1, sizeof *s))) {
            grpc_call_finish(call, GRPC_RESOURCE_EXHAUSTED, cairn_strerror(CAIRN_E_NOMEM));
            return;
        }
        s->hub = h;
        s->call = call;
        s->hasleader = hasleader;
        /* a stream whose reader lags this much reads from the history instead, in batches */
        grpc_call_set_high_water(call, WATCH_STREAM_HIGH_WATER);
        s->next = h->streams;
        if (h->streams)
            h->streams->prev = s;
        h->streams = s;
        grpc_call_set_data(call, s);
    }
    Etcdserverpb__WatchRequest *r = etcdserverpb__watch_request__unpack(NULL, len, msg);
    if (!r) {
        stream_finish(s, GRPC_INTERNAL, "grpc: failed to unmarshal the received message");
        return;
    }
    switch (r->request_union_case) {
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CREATE_REQUEST:
        watch_create(s, r->create_request);
        break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_CANCEL_REQUEST:
        watch_cancel(s, r->cancel_request->watch_id);
        break;
    case ETCDSERVERPB__WATCH_REQUEST__REQUEST_UNION_PROGRESS_REQUEST:
        /* etcd 3.4 answers at once with the current revision; cairn answers once every watcher
         * of the stream is synced, so that no event at or below the revision it reports follows
         * (what etcd 3.5 does) */
        if (s->catching_up)
            s->progress_wanted = true;
        else
            send_progress(s, WATCH_NO_ID);
        break;
    default:
        break; /* etcd ignores requests it does not know */
    }
    etcdserverpb__watch_request__free_unpacked(r, NULL);
}

static void on_cancel(struct grpc_call *call, void *ctx)
{
    (void)ctx;
    struct wstream *s = grpc_call_data(call);
    if (s)
        stream_finish(s, GRPC_CANCELLED, "context canceled");
    else
        grpc_call_finish(call, GRPC_CANCELLED, "context canceled");
}

static void on_writable(struct grpc_call *call, void *ctx)
{
    (void)ctx;
    struct wstream *s = grpc_call_data(call);
    if (!s)
        return;
    s->blocked = false;
    stream_continue(s);
}

/* ---------------------------------------------------------------------------------------------- */
/* The hub */

static void collect(struct watch_key *k, void *arg)
{
    struct watch_hub *h = arg;
    struct watcher *w = (struct watcher *)k; /* wk is the first member */
    if (!w->synced || h->hits_rev < w->next_rev || !event_wanted(w, h->cur_ev))
        return;
    if (w->s->blocked) {
        /* a slow reader: it reads this revision and the rest from the feed once it drains */
        w->synced = false;
        w->next_rev = h->hits_rev;
        w->s->catching_up++;
        return;
    }
    if (h->n_hits == h->cap_hits) {
        size_t cap = h->cap_hits ? h->cap_hits * 2 : 64;
        struct hit *n = realloc(h->hits, cap * sizeof *n);
        if (!n) {
            /* cannot remember the hit: let the watcher read it from the feed instead */
            h->retry = true;
            w->synced = false;
            w->next_rev = h->hits_rev;
            w->s->catching_up++;
            return;
        }
        h->hits = n;
        h->cap_hits = cap;
    }
    h->hits[h->n_hits++] = (struct hit){w, (uint32_t)h->n_evs};
}

static int hit_cmp(const void *a, const void *b)
{
    const struct hit *x = a, *y = b;
    if (x->w != y->w)
        return x->w < y->w ? -1 : 1;
    return x->ev < y->ev ? -1 : x->ev > y->ev;
}

/* Sends the collected revision to every watcher it concerns, one response each. */
static void flush_revision(struct watch_hub *h)
{
    if (!h->n_hits) {
        h->n_evs = 0;
        arena_reset(&h->arena);
        return; /* nobody watches what this revision changed */
    }
    if (h->n_evs > 1) /* group each watcher's hits; with one event each has at most one */
        qsort(h->hits, h->n_hits, sizeof *h->hits, hit_cmp);
    Etcdserverpb__ResponseHeader hdr = ETCDSERVERPB__RESPONSE_HEADER__INIT;
    api_fill_header(h->srv, &hdr);
    hdr.revision = h->hits_rev;
    struct packed hp;
    /* each event's field, without and with prev_kv, packed when a watcher first needs it */
    struct packed *pk = arena_alloc(&h->arena, 2 * h->n_evs * sizeof *pk);
    if (pk)
        memset(pk, 0, 2 * h->n_evs * sizeof *pk);
    bool packable = pk && pack_field(&h->arena, 0x0a, &hdr.base, &hp) == 0;
    Mvccpb__Event *batch[64];
    struct packed pbatch[64];
    for (size_t i = 0; i < h->n_hits;) {
        struct watcher *w = h->hits[i].w;
        size_t j = i;
        while (j < h->n_hits && h->hits[j].w == w)
            j++;
        size_t n = j - i;
        bool fast = packable && !w->fragment;
        Mvccpb__Event **evs = NULL;
        struct packed *pevs = NULL;
        if (fast)
            pevs = n <= 64 ? pbatch : arena_alloc(&h->arena, n * sizeof *pevs);
        else
            evs = n <= 64 ? batch : arena_alloc(&h->arena, n * sizeof *evs);
        bool ok = evs || pevs;
        for (size_t k = 0; ok && k < n; k++) {
            uint32_t e = h->hits[i + k].ev;
            bool with_prev = w->prev_kv && h->evs_prev[e];
            Mvccpb__Event *m = with_prev ? h->evs_prev[e] : h->evs[e];
            if (!fast) {
                evs[k] = m;
                continue;
            }
            struct packed *c = &pk[2 * e + with_prev];
            if (!c->p && pack_field(&h->arena, 0x5a, &m->base, c))
                ok = false;
            pevs[k] = *c;
        }
        if (!ok) {
            h->retry = true;
            w->synced = false; /* reads it from the feed instead */
            w->next_rev = h->hits_rev;
            w->s->catching_up++;
        } else if (fast) {
            send_packed(w, &hp, pevs, n);
        } else {
            send_events(w, evs, n, h->hits_rev);
        }
        i = j;
    }
    h->n_hits = 0;
    h->n_evs = 0;
    arena_reset(&h->arena);
}

/* Cancels every synced watcher: the history they need is gone (the store was replaced by a
 * leader's copy compacted past the hub's revision). */
static void cancel_all_compacted(struct watch_hub *h, int64_t compacted)
{
    for (struct wstream *s = h->streams; s; s = s->next)
        for (struct watcher *w = s->watchers, *next; w; w = next) {
            next = w->next;
            if (w->synced)
                cancel_compacted(w, compacted);
        }
}

void api_watch_applied(struct api_server *srv)
{
    struct watch_hub *h = srv->watch;
    if (!h || !h->streams) {
        if (h)
            h->rev_known = false;
        return;
    }
    int64_t from = current_rev(h) + 1;
    store_tx *view;
    int err = store_tx_begin_view(srv->st, &view);
    if (err) {
        log_error("watch: reading the applied revisions failed: %s", cairn_strerror(err));
        return;
    }
    int64_t end = store_tx_rev(view);
    if (end < from) {
        store_tx_end(view);
        return;
    }
    struct store_feed f;
    err = store_feed_open(view, from, h->prev_kv_watchers > 0, &f);
    if (err == CAIRN_E_COMPACTED) {
        int64_t compacted = store_tx_compact_rev(view);
        store_tx_end(view);
        cancel_all_compacted(h, compacted);
        h->rev = end;
        return;
    }
    if (err) {
        store_tx_end(view);
        log_error("watch: reading the applied revisions failed: %s", cairn_strerror(err));
        return;
    }
    h->hits_rev = 0;
    for (;;) {
        struct store_event ev;
        arena_reset(&h->tmp);
        int rc = store_feed_next(&f, &h->tmp, &ev);
        if (rc < 0)
            log_error("watch: reading the applied revisions failed: %s", cairn_strerror(rc));
        if (rc <= 0)
            break;
        if (ev.kv.mod_revision != h->hits_rev) {
            if (h->hits_rev)
                flush_revision(h);
            h->hits_rev = ev.kv.mod_revision;
        }
        if (h->n_evs == h->cap_evs) {
            size_t cap = h->cap_evs ? h->cap_evs * 2 : 64;
            Mvccpb__Event **a = realloc(h->evs, cap * sizeof *a);
            Mvccpb__Event **b = a ? realloc(h->evs_prev, cap * sizeof *b) : NULL;
            if (a)
                h->evs = a;
            if (b)
                h->evs_prev = b;
            if (!a || !b) {
                log_error("watch: out of memory fanning out revision %lld",
                          (long long)ev.kv.mod_revision);
                break;
            }
            h->cap_evs = cap;
        }
        /* filters are per watcher: collect checks them on the event at hand */
        size_t hits = h->n_hits;
        h->cur_ev = &ev;
        if (watch_index_match(&h->ix, ev.kv.key.data, ev.kv.key.len, collect, h))
            log_error("watch: out of memory matching revision %lld", (long long)h->hits_rev);
        h->cur_ev = NULL;
        if (h->n_hits == hits)
            continue; /* nobody watches this key */
        Mvccpb__Event *plain = conv_event(&ev, false, &h->arena);
        Mvccpb__Event *prev = ev.prev_kv ? conv_event(&ev, true, &h->arena) : NULL;
        if (!plain) {
            /* the watchers it concerns read it from the feed instead */
            for (size_t i = hits; i < h->n_hits; i++) {
                struct watcher *w = h->hits[i].w;
                if (w->synced) {
                    w->synced = false;
                    w->next_rev = h->hits_rev;
                    w->s->catching_up++;
                }
            }
            h->n_hits = hits;
            h->retry = true;
            continue;
        }
        h->evs[h->n_evs] = plain;
        h->evs_prev[h->n_evs] = prev && prev->prev_kv ? prev : NULL;
        h->n_evs++;
    }
    if (h->hits_rev)
        flush_revision(h);
    store_feed_close(&f);
    store_tx_end(view);
    h->rev = end;
    if (h->retry) {
        h->retry = false;
        for (struct wstream *s = h->streams, *next; s; s = next) {
            next = s->next;
            if (s->catching_up && !s->blocked)
                stream_continue(s);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Timers, life cycle */

/* etcd's progress ticker: a watcher that asked for progress notifications and got no event since
 * the last tick is told the hub's revision, when it is synced (so no event at or below it
 * follows). */
static void on_progress_tick(uv_timer_t *t)
{
    struct watch_hub *h = t->data;
    for (struct wstream *s = h->streams; s; s = s->next)
        for (struct watcher *w = s->watchers; w; w = w->next) {
            if (!w->progress_notify)
                continue;
            if (w->quiet && w->synced && !s->blocked)
                send_progress(s, w->id);
            w->quiet = true;
        }
}

/* etcd's leader monitor: streams of clients that require a leader end with "no leader" after
 * three election timeouts without one. */
static void on_leader_tick(uv_timer_t *t)
{
    struct watch_hub *h = t->data;
    struct proposer *p = h->srv->prop;
    if (p->leader(p)) {
        h->no_leader_ticks = 0;
        return;
    }
    if (++h->no_leader_ticks < 3)
        return;
    for (struct wstream *s = h->streams, *next; s; s = next) {
        next = s->next;
        if (s->hasleader)
            stream_finish(s, cairn_err_grpc_code(CAIRN_E_NO_LEADER),
                          cairn_strerror(CAIRN_E_NO_LEADER));
    }
}

void api_watch_register(struct api_server *s)
{
    api_add_method(s, "/etcdserverpb.Watch/Watch", true, on_message);
    struct grpc_method *m = &s->methods[s->n_methods - 1];
    m->on_cancel = on_cancel;
    m->on_writable = on_writable;
}

int api_watch_start(struct api_server *srv)
{
    struct watch_hub *h = calloc(1, sizeof *h);
    if (!h)
        return CAIRN_E_NOMEM;
    h->srv = srv;
    watch_index_init(&h->ix);
    uint64_t progress =
        srv->cfg.watch_progress_notify_ms ? srv->cfg.watch_progress_notify_ms : 10 * 60 * 1000;
    uint64_t election = srv->cfg.election_ms ? srv->cfg.election_ms : 1000;
    uv_timer_init(srv->loop, &h->progress_timer);
    uv_timer_init(srv->loop, &h->leader_timer);
    h->progress_timer.data = h->leader_timer.data = h;
    uv_timer_start(&h->progress_timer, on_progress_tick, progress, progress);
    uv_timer_start(&h->leader_timer, on_leader_tick, election, election);
    srv->watch = h;
    return 0;
}

static void on_timer_closed(uv_handle_t *t)
{
    struct watch_hub *h = t->data;
    if (++h->timers_closed == 2) {
        watch_index_free(&h->ix);
        free(h->evs);
        free(h->evs_prev);
        free(h->hits);
        arena_free(&h->arena);
        arena_free(&h->tmp);
        free(h);
    }
}

void api_watch_stop(struct api_server *srv)
{
    struct watch_hub *h = srv->watch;
    if (!h)
        return;
    /* streams end with the gRPC server's shutdown (on_cancel); any left are finished here */
    while (h->streams)
        stream_finish(h->streams, GRPC_UNAVAILABLE, "transport is closing");
    srv->watch = NULL;
    uv_close((uv_handle_t *)&h->progress_timer, on_timer_closed);
    uv_close((uv_handle_t *)&h->leader_timer, on_timer_closed);
}

void api_applied(void *owner)
{
    api_watch_applied(owner);
}
