/* client/bench/leader.c — finding the leader's endpoint (see leader.h). */
#include "client/bench/leader.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "client/cairn_client.h"

#define CALL_TIMEOUT_MS 5000

static struct cl_sync *open_one(const char *ep, uint64_t dial_timeout_ms)
{
    struct cl_options o;
    cl_options_default(&o);
    o.endpoints = &ep;
    o.n_endpoints = 1;
    if (dial_timeout_ms)
        o.dial_timeout_ms = dial_timeout_ms;
    struct cl_sync *s = NULL;
    return cl_sync_new(&o, &s) == 0 ? s : NULL;
}

static void print_call_error(FILE *err, const char *ep, const char *what, struct cl_call *call)
{
    char *text = cl_call_error_text(call);
    fprintf(err, "cairn-bench: %s of %s failed: %s\n", what, ep, text ? text : "out of memory");
    free(text);
}

static int one(char ***out, size_t *n_out, const char *ep)
{
    *out = calloc(1, sizeof **out);
    if (!*out || !((*out)[0] = strdup(ep))) {
        free(*out);
        *out = NULL;
        return -1;
    }
    *n_out = 1;
    return 0;
}

/* The leader's client URLs from MemberList through ep. */
static int from_member_list(const char *ep, uint64_t dial_timeout_ms, uint64_t leader, char ***out,
                            size_t *n_out, FILE *err)
{
    struct cl_sync *s = open_one(ep, dial_timeout_ms);
    if (!s)
        return -1;
    struct cl_call call = {.timeout_ms = CALL_TIMEOUT_MS};
    Etcdserverpb__MemberListRequest req = ETCDSERVERPB__MEMBER_LIST_REQUEST__INIT;
    int rc = -1;
    if (cl_sync_call(s, &call, &cl_method_member_list, &req.base) != GRPC_OK) {
        print_call_error(err, ep, "MemberList", &call);
    } else {
        const Etcdserverpb__MemberListResponse *r =
            (const Etcdserverpb__MemberListResponse *)call.response;
        for (size_t i = 0; i < r->n_members; i++) {
            const Etcdserverpb__Member *m = r->members[i];
            if (m->id != leader || !m->n_clienturls)
                continue;
            char **urls = calloc(m->n_clienturls, sizeof *urls);
            size_t k = 0;
            for (; urls && k < m->n_clienturls; k++)
                if (!(urls[k] = strdup(m->clienturls[k])))
                    break;
            if (urls && k == m->n_clienturls) {
                *out = urls;
                *n_out = k;
                rc = 0;
            } else {
                for (size_t j = 0; urls && j < k; j++)
                    free(urls[j]);
                free(urls);
            }
            break;
        }
    }
    cl_call_reset(&call);
    cl_sync_free(s);
    return rc;
}

int bench_find_leader(char *const *endpoints, size_t n, uint64_t dial_timeout_ms, char ***out,
                      size_t *n_out, FILE *err)
{
    uint64_t leader = 0;
    const char *asked = NULL; /* an endpoint that answered with a leader */
    for (size_t i = 0; i < n; i++) {
        struct cl_sync *s = open_one(endpoints[i], dial_timeout_ms);
        if (!s) {
            fprintf(err, "cairn-bench: bad endpoint %s\n", endpoints[i]);
            continue;
        }
        struct cl_call call = {.timeout_ms = CALL_TIMEOUT_MS};
        Etcdserverpb__StatusRequest req = ETCDSERVERPB__STATUS_REQUEST__INIT;
        bool found = false;
        if (cl_sync_call(s, &call, &cl_method_status, &req.base) != GRPC_OK) {
            print_call_error(err, endpoints[i], "Status", &call);
        } else {
            const Etcdserverpb__StatusResponse *r =
                (const Etcdserverpb__StatusResponse *)call.response;
            if (r->leader) {
                leader = r->leader;
                asked = asked ? asked : endpoints[i];
                found = r->header && r->header->member_id == r->leader;
            }
        }
        cl_call_reset(&call);
        cl_sync_free(s);
        if (found) {
            if (one(out, n_out, endpoints[i]) == 0)
                return 0;
            fprintf(err, "cairn-bench: out of memory\n");
            return -1;
        }
    }
    if (leader && from_member_list(asked, dial_timeout_ms, leader, out, n_out, err) == 0)
        return 0;
    fprintf(err, "cairn-bench: failed to find a leader endpoint\n");
    return -1;
}
