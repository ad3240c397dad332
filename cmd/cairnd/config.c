/* cmd/cairnd/config.c — flags as etcd spells them (--flag value, --flag=value, -flag), each also
 * read from CAIRN_<FLAG> (dashes as underscores, upper case), with etcd's defaults. */
#include "cmd/cairnd/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/duration.h"
#include "common/log.h"
#include "raft/identity.h"

enum kind { K_STRING, K_URLS, K_UINT, K_DURATION, K_BOOL, K_LOG_LEVEL, K_DATA_DIR };

struct flag {
    const char *name;
    enum kind kind;
    const char *def; /* default, as text; NULL = none */
    const char *help;
};

static const struct flag flags[] = {
    {"name", K_STRING, "default", "human-readable name for this member"},
    {"data-dir", K_DATA_DIR, NULL, "path to the data directory (default \"${name}.cairn\")"},
    {"listen-client-urls", K_URLS, "http://localhost:2379", "URLs to listen on for client traffic"},
    {"advertise-client-urls", K_URLS, "http://localhost:2379",
     "this member's client URLs to advertise to the public"},
    {"listen-peer-urls", K_URLS, "http://localhost:2380", "URLs to listen on for peer traffic"},
    {"initial-advertise-peer-urls", K_URLS, "http://localhost:2380",
     "this member's peer URLs to advertise to the rest of the cluster"},
    {"initial-cluster", K_STRING, NULL,
     "initial cluster configuration for bootstrapping (default \"${name}=<peer url>\")"},
    {"initial-cluster-state", K_STRING, "new", "initial cluster state ('new' or 'existing')"},
    {"initial-cluster-token", K_STRING, "etcd-cluster",
     "initial cluster token for the cluster during bootstrap"},
    {"max-request-bytes", K_UINT, "1572864", "maximum client request size in bytes"},
    {"quota-backend-bytes", K_UINT, "0",
     "raise alarms when the backend size exceeds the given quota (0 defaults to 2 GiB)"},
    {"max-txn-ops", K_UINT, "128", "maximum number of operations permitted in a transaction"},
    {"election-timeout", K_UINT, "1000", "time (in milliseconds) for an election to timeout"},
    {"heartbeat-interval", K_UINT, "100", "time (in milliseconds) of a heartbeat interval"},
    {"snapshot-count", K_UINT, "100000", "number of committed transactions to trigger a snapshot"},
    {"experimental-watch-progress-notify-interval", K_DURATION, "10m",
     "duration of periodic watch progress notifications"},
    {"log-level", K_LOG_LEVEL, "info", "log level: debug, info, warn, error"},
    {"help", K_BOOL, NULL, "show this help and exit"},
    {"version", K_BOOL, NULL, "print the version and exit"},
};
#define N_FLAGS (sizeof flags / sizeof flags[0])

void config_usage(void)
{
    printf("Usage: cairnd [flags]\n\n"
           "cairnd is a replicated key-value store that speaks etcd's v3 API.\n"
           "Every flag can also be set by an environment variable: --max-txn-ops as "
           "CAIRN_MAX_TXN_OPS.\n\nFlags:\n");
    for (size_t i = 0; i < N_FLAGS; i++) {
        printf("  --%s\n        %s", flags[i].name, flags[i].help);
        if (flags[i].def)
            printf(" (default \"%s\")", flags[i].def);
        printf("\n");
    }
}

static int fail(char *err, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return -1;
}

/* http://host:port; host a name or address (IPv6 in brackets). */
static int parse_url(const char *s, struct config_url *u, char *err, size_t n)
{
    if (strlen(s) >= sizeof u->text)
        return fail(err, n, "URL too long: %s", s);
    snprintf(u->text, sizeof u->text, "%s", s);
    if (!strncmp(s, "https://", 8) || !strncmp(s, "unixs://", 8))
        return fail(err, n, "TLS URLs are not supported yet: %s", s);
    if (strncmp(s, "http://", 7))
        return fail(err, n, "URL scheme must be http: %s", s);
    const char *h = s + 7, *colon;
    size_t hl;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close || close[1] != ':')
            return fail(err, n, "invalid URL (expected http://[address]:port): %s", s);
        h++;
        hl = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return fail(err, n, "URL must have a port: %s", s);
        hl = (size_t)(colon - h);
    }
    if (hl == 0 || hl >= sizeof u->host)
        return fail(err, n, "invalid host in URL: %s", s);
    memcpy(u->host, h, hl);
    u->host[hl] = 0;
    char *end;
    errno = 0;
    long port = strtol(colon + 1, &end, 10);
    if (errno || end == colon + 1 || (*end && strcmp(end, "/")) || port < 0 || port > 65535)
        return fail(err, n, "invalid port in URL: %s", s);
    u->port = (int)port;
    return 0;
}

/* Splits a comma-separated list (in place, in a copy the config owns until config_free). */
static int split_urls(struct config *c, const char *v, const char **out, size_t *n, char *err,
                      size_t errn)
{
    char **owned = realloc(c->owned, (c->n_owned + 1) * sizeof *owned);
    if (!owned)
        return fail(err, errn, "out of memory");
    c->owned = owned;
    char *copy = strdup(v);
    if (!copy)
        return fail(err, errn, "out of memory");
    c->owned[c->n_owned++] = copy;
    *n = 0;
    for (char *save, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == CONFIG_MAX_URLS)
            return fail(err, errn, "too many URLs in %s", v);
        out[(*n)++] = tok;
    }
    if (*n == 0)
        return fail(err, errn, "empty URL list");
    struct config_url u;
    for (size_t i = 0; i < *n; i++)
        if (parse_url(out[i], &u, err, errn))
            return -1;
    return 0;
}

static int parse_uint(const char *v, uint64_t *out)
{
    if (!*v || !isdigit((unsigned char)*v))
        return -1;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end)
        return -1;
    *out = x;
    return 0;
}

static int set(struct config *c, const struct flag *f, const char *v, char *err, size_t n)
{
    const char *name = f->name;
    switch (f->kind) {
    case K_BOOL:
        if (!strcmp(v, "true") || !strcmp(v, "1"))
            *(!strcmp(name, "help") ? &c->help : &c->version) = true;
        else if (strcmp(v, "false") && strcmp(v, "0"))
            return fail(err, n, "invalid boolean value \"%s\" for flag --%s", v, name);
        return 0;
    case K_LOG_LEVEL:
        if ((c->log_level = log_level_parse(v)) < 0)
            return fail(err, n,
                        "invalid value \"%s\" for flag --log-level: use debug, info, warn "
                        "or error",
                        v);
        return 0;
    case K_DATA_DIR:
        if (!*v || strlen(v) >= sizeof c->data_dir)
            return fail(err, n, "invalid value \"%s\" for flag --data-dir", v);
        snprintf(c->data_dir, sizeof c->data_dir, "%s", v);
        return 0;
    case K_DURATION: {
        uint64_t ns;
        if (go_parse_duration(v, &ns) || ns < 1000000)
            return fail(err, n, "invalid value \"%s\" for flag --%s: not a duration of 1ms or more",
                        v, name);
        c->watch_progress_notify_ms = ns / 1000000;
        return 0;
    }
    case K_UINT: {
        uint64_t x;
        if (parse_uint(v, &x))
            return fail(err, n, "invalid value \"%s\" for flag --%s: not a non-negative integer", v,
                        name);
        uint64_t *dst = !strcmp(name, "max-request-bytes")     ? &c->max_request_bytes
                        : !strcmp(name, "quota-backend-bytes") ? &c->quota_backend_bytes
                        : !strcmp(name, "max-txn-ops")         ? &c->max_txn_ops
                        : !strcmp(name, "election-timeout")    ? &c->election_timeout_ms
                        : !strcmp(name, "heartbeat-interval")  ? &c->heartbeat_interval_ms
                                                               : &c->snapshot_count;
        *dst = x;
        return 0;
    }
    case K_URLS: {
        if (!strcmp(name, "listen-client-urls")) {
            const char *list[CONFIG_MAX_URLS];
            if (split_urls(c, v, list, &c->n_listen_client, err, n))
                return -1;
            for (size_t i = 0; i < c->n_listen_client; i++)
                parse_url(list[i], &c->listen_client[i], err, n);
            return 0;
        }
        const char **dst = !strcmp(name, "advertise-client-urls") ? c->advertise_client
                           : !strcmp(name, "listen-peer-urls")    ? c->listen_peer
                                                                  : c->advertise_peer;
        size_t *dn = !strcmp(name, "advertise-client-urls") ? &c->n_advertise_client
                     : !strcmp(name, "listen-peer-urls")    ? &c->n_listen_peer
                                                            : &c->n_advertise_peer;
        return split_urls(c, v, dst, dn, err, n);
    }
    case K_STRING:
        if (!strcmp(name, "name"))
            c->name = v;
        else if (!strcmp(name, "initial-cluster"))
            c->initial_cluster = v;
        else if (!strcmp(name, "initial-cluster-state")) {
            if (strcmp(v, "new") && strcmp(v, "existing"))
                return fail(err, n,
                            "invalid value \"%s\" for flag --initial-cluster-state: use "
                            "new or existing",
                            v);
            c->initial_cluster_state = v;
        } else
            c->initial_cluster_token = v;
        return 0;
    }
    return 0;
}

static const struct flag *find(const char *name, size_t len)
{
    for (size_t i = 0; i < N_FLAGS; i++)
        if (strlen(flags[i].name) == len && !strncmp(flags[i].name, name, len))
            return &flags[i];
    return NULL;
}

/* The member of that name in c->members, added if new. */
static struct config_member *member_named(struct config *c, const char *name, size_t len)
{
    for (size_t i = 0; i < c->n_members; i++)
        if (strlen(c->members[i].name) == len && !strncmp(c->members[i].name, name, len))
            return &c->members[i];
    if (c->n_members == CONFIG_MAX_MEMBERS || len >= sizeof c->members[0].name)
        return NULL;
    struct config_member *m = &c->members[c->n_members++];
    memset(m, 0, sizeof *m);
    memcpy(m->name, name, len);
    return m;
}

/* Whether two URL lists hold the same URLs (etcd compares them as sets). */
static bool same_urls(const char *const *a, size_t na, const char *const *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        bool found = false;
        for (size_t j = 0; j < nb && !found; j++)
            found = !strcmp(a[i], b[j]);
        if (!found)
            return false;
    }
    return true;
}

/* --initial-cluster name=peerURL,...: a name may appear once per URL. Without the flag the cluster
 * is this member alone, at its advertised peer URLs. This member must be in it with exactly its
 * advertised peer URLs, as etcd requires. Fills c->members (with their IDs) and c->self. */
static int parse_cluster(struct config *c, char *err, size_t n)
{
    c->n_members = 0;
    if (!c->initial_cluster) {
        struct config_member *m = member_named(c, c->name, strlen(c->name));
        if (!m)
            return fail(err, n, "--name is too long");
        for (size_t i = 0; i < c->n_advertise_peer; i++)
            m->peer_urls[m->n_peer_urls++] = c->advertise_peer[i];
    } else {
        char **owned = realloc(c->owned, (c->n_owned + 1) * sizeof *owned);
        if (!owned)
            return fail(err, n, "out of memory");
        c->owned = owned;
        char *copy = strdup(c->initial_cluster);
        if (!copy)
            return fail(err, n, "out of memory");
        c->owned[c->n_owned++] = copy;
        for (char *save, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
            char *eq = strchr(tok, '=');
            if (!eq || eq == tok || !eq[1])
                return fail(err, n, "invalid --initial-cluster \"%s\": expected name=url,...",
                            c->initial_cluster);
            struct config_member *m = member_named(c, tok, (size_t)(eq - tok));
            if (!m)
                return fail(err, n,
                            "--initial-cluster: too many members (at most %d) or a name "
                            "too long",
                            CONFIG_MAX_MEMBERS);
            if (m->n_peer_urls == CONFIG_MAX_URLS)
                return fail(err, n, "--initial-cluster: too many URLs for %s", m->name);
            *eq = 0;
            struct config_url u;
            if (parse_url(eq + 1, &u, err, n))
                return -1;
            for (size_t i = 0; i < m->n_peer_urls; i++)
                if (!strcmp(m->peer_urls[i], eq + 1))
                    return fail(err, n, "--initial-cluster: %s appears twice for %s", eq + 1,
                                m->name);
            m->peer_urls[m->n_peer_urls++] = eq + 1;
        }
        if (c->n_members == 0)
            return fail(err, n, "--initial-cluster is empty");
    }
    c->self = NULL;
    for (size_t i = 0; i < c->n_members; i++) {
        struct config_member *m = &c->members[i];
        m->id = identity_member_id(m->peer_urls, m->n_peer_urls, c->initial_cluster_token);
        for (size_t j = 0; j < i; j++)
            if (c->members[j].id == m->id)
                return fail(err, n, "--initial-cluster: members %s and %s have the same peer URLs",
                            c->members[j].name, m->name);
        if (!strcmp(m->name, c->name))
            c->self = m;
    }
    if (!c->self)
        return fail(err, n,
                    "couldn't find local name \"%s\" in the initial cluster "
                    "configuration",
                    c->name);
    if (!same_urls(c->self->peer_urls, c->self->n_peer_urls, c->advertise_peer,
                   c->n_advertise_peer))
        return fail(err, n,
                    "--initial-cluster has %s=%s but missing from --initial-advertise-peer-urls",
                    c->self->name, c->self->peer_urls[0]);
    uint64_t ids[CONFIG_MAX_MEMBERS];
    for (size_t i = 0; i < c->n_members; i++)
        ids[i] = c->members[i].id;
    c->cluster_id = identity_cluster_id(ids, c->n_members);
    return 0;
}

void config_free(struct config *c)
{
    for (size_t i = 0; i < c->n_owned; i++)
        free(c->owned[i]);
    free(c->owned);
    c->owned = NULL;
    c->n_owned = 0;
}

int config_parse(struct config *c, int argc, char **argv, char *err, size_t n)
{
    memset(c, 0, sizeof *c);
    c->log_level = LOG_INFO;
    /* defaults, then environment, then flags */
    for (size_t i = 0; i < N_FLAGS; i++)
        if (flags[i].def && set(c, &flags[i], flags[i].def, err, n))
            return -1;
    for (size_t i = 0; i < N_FLAGS; i++) {
        char env[64] = "CAIRN_";
        size_t k = 6;
        for (const char *q = flags[i].name; *q && k < sizeof env - 1; q++)
            env[k++] = *q == '-' ? '_' : (char)toupper((unsigned char)*q);
        env[k] = 0;
        const char *v = getenv(env);
        if (v && set(c, &flags[i], v, err, n)) {
            char why[256];
            snprintf(why, sizeof why, "%s", err);
            return fail(err, n, "environment variable %s: %s", env, why);
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || !a[1])
            return fail(err, n, "unexpected argument \"%s\" (flags start with --)", a);
        a += a[1] == '-' ? 2 : 1;
        if (!strcmp(a, "h")) { /* etcd's one short flag */
            c->help = true;
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const struct flag *f = find(a, len);
        if (!f)
            return fail(err, n, "unknown flag --%.*s (see cairnd --help)", (int)len, a);
        const char *v;
        if (eq)
            v = eq + 1;
        else if (f->kind == K_BOOL)
            v = "true";
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return fail(err, n, "flag needs an argument: --%s", f->name);
        if (set(c, f, v, err, n))
            return -1;
    }
    if (!c->data_dir[0])
        snprintf(c->data_dir, sizeof c->data_dir, "%s.cairn", c->name);
    if (!*c->name)
        return fail(err, n, "--name must not be empty");
    if (c->max_request_bytes == 0)
        return fail(err, n, "--max-request-bytes must be positive");
    if (c->max_txn_ops == 0)
        return fail(err, n, "--max-txn-ops must be positive");
    return parse_cluster(c, err, n);
}
