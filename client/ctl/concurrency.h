/* client/ctl/concurrency.h — what `lock` and `elect` share: etcd's concurrency recipes
 * (clientv3/concurrency: a session, keys under a prefix queued by create revision, waiting for
 * the deletes before one's own key) on cairnctl's client, with SIGINT and SIGTERM as the cancel
 * of etcdctl's context.
 *
 * Everything runs on the loop of cairnctl's blocking client (ctl_client), driven from here: each
 * function below runs that loop until its work is done, so the session's keep-alives and the
 * signal handlers keep running while a command waits. Errors are returned as Go's err.Error()
 * texts etcdctl prints after "Error: ". None of the calls has a deadline (etcdctl runs these
 * recipes with context.TODO() and a cancel, never --command-timeout). */
#ifndef CAIRN_CTL_CONCURRENCY_H
#define CAIRN_CTL_CONCURRENCY_H

#include "client/ctl/ctl.h"

/* One run of lock or elect: the session and what a signal cancels. */
struct ctl_cc {
    struct ctl *ctl;        /* the invocation (its client and printer) */
    struct cl_client *c;    /* the blocking client's, on loop */
    uv_loop_t *loop;        /* run by every function below */
    struct cl_lessor *lr;   /* the session's keep-alive stream, or NULL */
    struct cl_keepalive ka; /* the session lease's keep-alive */
    int64_t lease;          /* the session's lease, 0 before ctl_cc_session */
    bool ka_started;        /* ka was started (its last callback is due or ran) */
    struct cl_watcher *wr;  /* the watches' stream, made on first use */
    uv_signal_t sig[2];     /* SIGINT, SIGTERM */
    bool sig_on;            /* sig are initialized (closed by ctl_cc_close) */
    bool interrupted;       /* a signal came: the context is cancelled */
    struct cl_call *call;   /* the cancellable call in flight, or NULL */
    struct cl_watch *watch; /* the cancellable watch running, or NULL */
};

/* Sets up cc for ctl: connects nothing yet. Returns 0, or an exit code after printing the error
 * (the client could not be made). cc must be closed with ctl_cc_close even after a failure. */
int ctl_cc_init(struct ctl_cc *cc, struct ctl *ctl);

/* Stops keeping the session alive (the lease is left to expire, as etcdctl leaves it), closes the
 * watches and the signal handlers. Nothing of cc may be used afterwards. */
void ctl_cc_close(struct ctl_cc *cc);

/* concurrency.NewSession: grants a lease of ttl seconds (60 when ttl <= 0) and keeps it alive
 * from now on. Returns 0, or -1 with *err (malloc'd) the grant's error. */
int ctl_cc_session(struct ctl_cc *cc, int64_t ttl, char **err);

/* Whether the session has ended: its lease expired or was revoked, or its keep-alives failed
 * (etcdctl's Session.Done()). */
bool ctl_cc_session_done(const struct ctl_cc *cc);

/* From now on SIGINT and SIGTERM cancel the context: the cancellable call or watch in flight ends
 * with "context canceled", and so does every later one. Returns 0 or a libuv error. */
int ctl_cc_catch_signals(struct ctl_cc *cc);

/* Runs one call of m with req on the loop. With cancellable it runs under the context: it fails
 * at once with CANCELLED "context canceled" once a signal has come, and a signal cancels it.
 * Returns call->code; the caller reads the results and cl_call_reset()s call. */
int ctl_cc_call(struct ctl_cc *cc, struct cl_call *call, const struct cl_method *m,
                const ProtobufCMessage *req, bool cancellable);

/* The key of the session under prefix pfx (the lock's or election's name and "/"): pfx and the
 * lease ID in lowercase hexadecimal (Go's %x). Returns a malloc'd string, or NULL when out of
 * memory. */
char *ctl_cc_key(const char *pfx, int64_t lease);

/* Fills req (initialized) to get the first (first: true) or last key under prefix pfx by create
 * revision (clientv3's WithFirstCreate / WithLastCreate: the prefix range
 * sorted by create revision, limit 1). end receives the range end (freed by the caller with
 * ctl_bytes_free); req points into pfx and end. Returns 0 or -1 when out of memory. */
int ctl_cc_top_request(Etcdserverpb__RangeRequest *req, const char *pfx, bool first,
                       struct ctl_bytes *end);

/* concurrency's waitDeletes: until no key under pfx has a create revision of max_create_rev
 * or less, waits for the deletion of the last of them (by create revision), each time watching it
 * from the revision of the read that found it. Runs under the context. Returns 0 with *hdr the
 * header of the last read (malloc'd copy, the caller frees it with
 * protobuf_c_message_free_unpacked; hdr may be NULL), or -1 with *err (malloc'd). */
int ctl_cc_wait_deletes(struct ctl_cc *cc, const char *pfx, int64_t max_create_rev,
                        Etcdserverpb__ResponseHeader **hdr, char **err);

/* The end of lock and elect once the key is held: gets key, prints the response with get's
 * printer, and holds it until a signal (then returns 0) or the session's end. Returns the
 * printer's exit code when it asks to exit (> 0), or -1 with *err (malloc'd): the get's error,
 * `lost` when the key is gone (NULL: not checked, as etcdctl's elect does not), `expired` when
 * the session ended first. */
int ctl_cc_show_and_hold(struct ctl_cc *cc, const char *key, const char *lost, const char *expired,
                         char **err);

/* Runs the loop until a signal has come or the session has ended. Returns true for a signal. */
bool ctl_cc_hold(struct ctl_cc *cc);

/* The watcher of cc, made on first use (NULL when out of memory). */
struct cl_watcher *ctl_cc_watcher(struct ctl_cc *cc);

/* Runs the loop until *flag is true (or nothing is left to run). */
void ctl_cc_run_until(struct ctl_cc *cc, const bool *flag);

/* A copy of a header (a protobuf copy: free with protobuf_c_message_free_unpacked), or NULL. */
Etcdserverpb__ResponseHeader *ctl_cc_header_dup(const Etcdserverpb__ResponseHeader *h);

#endif
