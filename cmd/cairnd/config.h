/* cmd/cairnd/config.h — cairnd's configuration: etcd's flags, their CAIRN_* environment variables,
 * defaults and validation. */
#ifndef CAIRN_CMD_CAIRND_CONFIG_H
#define CAIRN_CMD_CAIRND_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_URLS    8
#define CONFIG_MAX_MEMBERS 16

/* A member of the initial cluster. */
struct config_member {
    char name[128];
    const char *peer_urls[CONFIG_MAX_URLS];
    size_t n_peer_urls;
    uint64_t id; /* etcd's member ID: from the peer URLs and the cluster token */
};

/* A parsed http://host:port URL. */
struct config_url {
    char text[256]; /* as given */
    char host[200];
    int port;
};

struct config {
    const char *name;
    char data_dir[4096];
    struct config_url listen_client[CONFIG_MAX_URLS];
    size_t n_listen_client;
    const char *advertise_client[CONFIG_MAX_URLS];
    size_t n_advertise_client;
    const char *listen_peer[CONFIG_MAX_URLS];
    size_t n_listen_peer;
    const char *advertise_peer[CONFIG_MAX_URLS];
    size_t n_advertise_peer;
    const char *initial_cluster;
    const char *initial_cluster_state;
    const char *initial_cluster_token;
    uint64_t max_request_bytes;
    uint64_t quota_backend_bytes;
    uint64_t max_txn_ops;
    uint64_t election_timeout_ms;
    uint64_t heartbeat_interval_ms;
    uint64_t snapshot_count;
    uint64_t watch_progress_notify_ms; /* --experimental-watch-progress-notify-interval */
    int log_level;
    struct config_member members[CONFIG_MAX_MEMBERS]; /* the initial cluster, parsed */
    size_t n_members;
    struct config_member *self; /* this member among them */
    uint64_t cluster_id;        /* etcd's cluster ID: from the member IDs */
    bool help;
    bool version;
    char **owned; /* copies of URL lists the fields above point into */
    size_t n_owned;
};

/* Parses argv and the environment (flags win over CAIRN_* variables, which win over defaults).
 * Returns 0, or writes a one-line error to err and returns -1 (exit 2). The config borrows argv and
 * environment strings, and owns copies of URL lists: config_free() releases them (also after a
 * failed parse). */
int config_parse(struct config *c, int argc, char **argv, char *err, size_t errlen);

/* Frees what config_parse allocated. */
void config_free(struct config *c);

/* Writes the usage text. */
void config_usage(void);

#endif
