/* raft/identity.c — etcd's member and cluster ID derivation (SHA-1 from libmd). */
#include "raft/identity.h"

#include <sha1.h> /* libmd */
#include <stdlib.h>
#include <string.h>

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t first8(const uint8_t d[SHA1_DIGEST_LENGTH])
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | d[i];
    return v;
}

uint64_t identity_member_id(const char *const *peer_urls, size_t n, const char *token)
{
    const char **sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted)
        return 0;
    memcpy(sorted, peer_urls, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, str_cmp);
    SHA1_CTX s;
    SHA1Init(&s);
    for (size_t i = 0; i < n; i++)
        SHA1Update(&s, (const uint8_t *)sorted[i], strlen(sorted[i]));
    SHA1Update(&s, (const uint8_t *)token, strlen(token));
    free(sorted);
    uint8_t d[SHA1_DIGEST_LENGTH];
    SHA1Final(d, &s);
    return first8(d);
}

uint64_t identity_cluster_id(const uint64_t *member_ids, size_t n)
{
    uint64_t *sorted = malloc((n ? n : 1) * sizeof *sorted);
    if (!sorted)
        return 0;
    memcpy(sorted, member_ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, u64_cmp);
    SHA1_CTX s;
    SHA1Init(&s);
    for (size_t i = 0; i < n; i++) {
        uint8_t b[8];
        for (int k = 0; k < 8; k++)
            b[k] = (uint8_t)(sorted[i] >> (56 - 8 * k));
        SHA1Update(&s, b, 8);
    }
    free(sorted);
    uint8_t d[SHA1_DIGEST_LENGTH];
    SHA1Final(d, &s);
    return first8(d);
}
