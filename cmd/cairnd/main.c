/* cmd/cairnd/main.c — cairnd: flags, the data directory, and wiring store, proposer and API
 * server on one event loop. Exits 0 after a graceful shutdown (SIGTERM/SIGINT), 2 on bad flags, 1
 * when it cannot start. */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "api/server.h"
#include "cmd/cairnd/config.h"
#include "common/log.h"
#include "common/url.h"
#include "raft/node.h"

#define CAIRN_VERSION "0.1.0"

struct daemon {
    struct config cfg;
    uv_loop_t loop;
    store *st;
    struct node node;
    struct api_server api;
    struct api_member members[CONFIG_MAX_MEMBERS];
    uv_signal_t sigterm, sigint;
    uv_timer_t trim;
    bool stopping;
};

/* The data directory holds only what cairnd puts there: member/, and inside it store/ (and raft/
 * from the replication issue on). Anything else means it belongs to something else. */
static int check_dir(const char *dir, const char *const *allowed, char *why, size_t n)
{
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT)
            return 0;
        snprintf(why, n, "cannot open %s: %s", dir, strerror(errno));
        return -1;
    }
    int rc = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            ok |= !strcmp(e->d_name, *a);
        if (!ok) {
            snprintf(why, n, "%s is not a cairn data directory (it holds \"%s\")", dir, e->d_name);
            rc = -1;
            break;
        }
    }
    closedir(d);
    return rc;
}

static int open_store(struct daemon *d)
{
    char member[4200], store_dir[4300], why[4400];
    snprintf(member, sizeof member, "%s/member", d->cfg.data_dir);
    snprintf(store_dir, sizeof store_dir, "%s/store", member);
    static const char *const top[] = {"member", NULL};
    static const char *const inside[] = {"store", "raft", NULL};
    if (check_dir(d->cfg.data_dir, top, why, sizeof why) ||
        check_dir(member, inside, why, sizeof why)) {
        log_error("cairnd: %s", why);
        return -1;
    }
    struct store_options o = {.quota_bytes = d->cfg.quota_backend_bytes,
                              .max_txn_ops = (unsigned)d->cfg.max_txn_ops,
                              .quota_by_caller = true}; /* replicated: see store_options */
    int err = store_open(store_dir, &o, &d->st);
    if (err) {
        log_error("cairnd: cannot open the data directory %s: %s", d->cfg.data_dir,
                  cairn_strerror(err));
        return -1;
    }
    return 0;
}

static void on_closed_signal(uv_handle_t *h)
{
    (void)h;
}

static void on_node_closed(struct node *n)
{
    struct daemon *d = (struct daemon *)((char *)n - offsetof(struct daemon, node));
    uv_close((uv_handle_t *)&d->sigterm, on_closed_signal);
    uv_close((uv_handle_t *)&d->sigint, on_closed_signal);
    uv_close((uv_handle_t *)&d->trim, on_closed_signal);
}

static void on_api_stopped(void *arg)
{
    struct daemon *d = arg;
    node_close(&d->node, on_node_closed);
}

static void stop(struct daemon *d)
{
    if (d->stopping)
        return;
    d->stopping = true;
    api_server_shutdown(&d->api, on_api_stopped, d);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (!d->stopping)
        log_info("cairnd: received %s, shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
    stop(d);
}

/* Freed heap goes back to the system once a second: glibc keeps what a burst of requests freed in
 * the heap, where it counts as the process's memory until reused (Go's runtime returns etcd's in
 * the background the same way). */
static void on_trim(uv_timer_t *t)
{
    (void)t;
    malloc_trim(0);
}

static void on_removed(struct node *n)
{
    struct daemon *d = (struct daemon *)((char *)n - offsetof(struct daemon, node));
    log_info("cairnd: this member was removed from the cluster; shutting down");
    stop(d);
}

static void on_fatal(struct node *n, const char *why)
{
    (void)n;
    log_error("cairnd: %s; stopping this member", why);
    _exit(1);
}

/* node_options.fetch_store: this member's store from another member (api/snapshot.c). */
static int fetch_store(void *arg, uint64_t leader, uint64_t index)
{
    struct daemon *d = arg;
    return api_fetch_store(d->st, d->cfg.self->id, leader, index);
}

static int start_node(struct daemon *d)
{
    struct config *c = &d->cfg;
    char raft_dir[4300], address[256], bind[256], why[1024];
    snprintf(raft_dir, sizeof raft_dir, "%s/member/raft", c->data_dir);
    struct node_options o;
    node_options_default(&o);
    o.id = c->self->id;
    o.cluster_id = c->cluster_id;
    if (url_host_port(c->advertise_peer[0], address, sizeof address) ||
        url_host_port(c->listen_peer[0], bind, sizeof bind)) {
        log_error("cairnd: invalid peer URL");
        return -1;
    }
    o.address = address;
    o.bind_address = bind;
    o.dir = raft_dir;
    for (size_t i = 0; i < c->n_members; i++) {
        o.peers[i].id = c->members[i].id;
        if (url_host_port(c->members[i].peer_urls[0], o.peers[i].address,
                          sizeof o.peers[i].address)) {
            log_error("cairnd: invalid peer URL %s", c->members[i].peer_urls[0]);
            return -1;
        }
    }
    o.n_peers = c->n_members;
    o.bootstrap = !strcmp(c->initial_cluster_state ? c->initial_cluster_state : "new", "new");
    o.election_ms = (unsigned)c->election_timeout_ms;
    o.heartbeat_ms = (unsigned)c->heartbeat_interval_ms;
    if (c->snapshot_count)
        o.snapshot_count = c->snapshot_count > 1u << 30 ? 1u << 30 : (unsigned)c->snapshot_count;
    o.fetch_store = fetch_store;
    o.fetch_arg = d;
    int err = node_start(&d->node, &d->loop, d->st, &o, why, sizeof why);
    if (err) {
        log_error("cairnd: %s", why);
        return -1;
    }
    d->node.fatal = on_fatal;
    return 0;
}

static int start(struct daemon *d)
{
    struct config *c = &d->cfg;
    uint64_t member_id = c->self->id;
    if (open_store(d))
        return -1;
    /* a member that joined a cluster recorded the cluster's ID, which its flags do not give */
    store_tx *tx;
    uint64_t recorded = 0;
    if (store_tx_begin_read(d->st, &tx) == 0) {
        if (store_tx_cluster_id(tx, &recorded))
            recorded = 0;
        store_tx_end(tx);
    }
    if (recorded)
        c->cluster_id = recorded;
    uint64_t cluster_id = c->cluster_id;
    if (start_node(d))
        return -1;
    int err;
    for (size_t i = 0; i < c->n_members; i++)
        d->members[i] = (struct api_member){c->members[i].id,
                                            c->members[i].name,
                                            c->members[i].peer_urls,
                                            c->members[i].n_peer_urls,
                                            NULL,
                                            0};
    struct api_config ac = {
        .cluster_id = cluster_id,
        .self = {member_id, c->name, c->advertise_peer, c->n_advertise_peer, c->advertise_client,
                 c->n_advertise_client},
        .members = d->members,
        .cluster_token = c->initial_cluster_token,
        .n_members = c->n_members,
        .max_request_bytes = (size_t)c->max_request_bytes,
        .max_txn_ops = (unsigned)c->max_txn_ops,
        .election_ms = (unsigned)c->election_timeout_ms,
        .heartbeat_ms = (unsigned)c->heartbeat_interval_ms,
        .watch_progress_notify_ms = c->watch_progress_notify_ms,
    };
    if ((err = api_server_init(&d->api, &d->loop, d->st, &d->node.base, &ac))) {
        log_error("cairnd: cannot start the gRPC server: %s", uv_strerror(err));
        return -1;
    }
    d->node.forward = api_forward;
    d->node.on_removed = on_removed;
    d->node.ask_read_index = api_ask_read_index;
    d->node.applied = api_applied;
    d->node.owner = &d->api;
    for (size_t i = 0; i < c->n_listen_client; i++) {
        const struct config_url *u = &c->listen_client[i];
        if ((err = api_server_listen(&d->api, u->host, u->port))) {
            log_error("cairnd: cannot listen on %s: %s", u->text, uv_strerror(err));
            return -1;
        }
        log_info("cairnd: serving insecure client requests on %s:%d", u->host,
                 u->port ? u->port : grpc_server_port(d->api.grpc));
    }
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    d->sigterm.data = d->sigint.data = d;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_timer_init(&d->loop, &d->trim);
    uv_timer_start(&d->trim, on_trim, 1000, 1000);
    log_info("cairnd: member %016llx of cluster %016llx, data in %s", (unsigned long long)member_id,
             (unsigned long long)cluster_id, c->data_dir);
    api_cluster_publish_start(&d->api);
    log_info("cairnd: ready to serve client requests");
    return 0;
}

static int run(struct daemon *d)
{
    log_set_level((enum log_level)d->cfg.log_level);
    signal(SIGPIPE, SIG_IGN);
    uv_loop_init(&d->loop);
    if (start(d)) {
        /* Nothing was acknowledged yet: the store and the log are consistent whatever state they
         * are in; leave the rest to the process's exit. */
        return 1;
    }
    uv_run(&d->loop, UV_RUN_DEFAULT);
    api_server_free(&d->api);
    uv_loop_close(&d->loop);
    store_close(d->st);
    log_info("cairnd: stopped");
    return 0;
}

int main(int argc, char **argv)
{
    static struct daemon d;
    char err[512];
    int rc = 0;
    if (config_parse(&d.cfg, argc, argv, err, sizeof err)) {
        fprintf(stderr, "cairnd: %s\n", err);
        rc = 2;
    } else if (d.cfg.help) {
        config_usage();
    } else if (d.cfg.version) {
        printf("cairnd Version: %s\netcd API Version: %s\n", CAIRN_VERSION, API_ETCD_VERSION);
    } else {
        rc = run(&d);
    }
    config_free(&d.cfg);
    return rc;
}
