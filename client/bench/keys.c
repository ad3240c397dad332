/* client/bench/keys.c — benchmark keys, values and random numbers (see keys.h). */
#include "client/bench/keys.h"

#include "client/bench/flags.h"

#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <uv.h>

static uint64_t zigzag(uint64_t n)
{
    /* PutVarint of a non-negative int64 x writes the unsigned varint of 2x; numbers beyond
     * INT64_MAX do not occur (the key space is an int64 in etcd). */
    int64_t x = (int64_t)n;
    return ((uint64_t)x << 1) ^ (uint64_t)(x >> 63);
}

size_t bench_key_bytes(uint64_t n)
{
    uint64_t u = zigzag(n);
    size_t len = 1;
    while (u >= 0x80) {
        u >>= 7;
        len++;
    }
    return len;
}

void bench_key_write(uint8_t *key, size_t size, uint64_t n)
{
    uint64_t u = zigzag(n);
    size_t i = 0;
    while (u >= 0x80) {
        key[i++] = (uint8_t)(u | 0x80);
        u >>= 7;
    }
    key[i++] = (uint8_t)u;
    memset(key + i, 0, size - i);
}

void bench_rng_seed(struct bench_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

uint64_t bench_rng_next(struct bench_rng *rng)
{
    uint64_t z = (rng->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t bench_rng_below(struct bench_rng *rng, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)bench_rng_next(rng) * n) >> 64);
}

void bench_rng_fill(struct bench_rng *rng, uint8_t *buf, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint64_t r = bench_rng_next(rng);
        for (int b = 0; b < 8 && i < len; b++, r >>= 8)
            buf[i++] = (uint8_t)r;
    }
}

uint64_t bench_seed(void)
{
    uint64_t s;
    if (getrandom(&s, sizeof s, GRND_NONBLOCK) == (ssize_t)sizeof s)
        return s;
    return uv_hrtime() ^ ((uint64_t)uv_os_getpid() << 32);
}

int bench_value_new(const struct bench_config *cfg, uint64_t seed, void **shared)
{
    struct bench_value *v = malloc(sizeof *v);
    uint8_t *bytes = malloc(cfg->val_size ? cfg->val_size : 1);
    if (!v || !bytes) {
        free(v);
        free(bytes);
        return -1;
    }
    struct bench_rng rng;
    bench_rng_seed(&rng, seed);
    bench_rng_fill(&rng, bytes, cfg->val_size);
    *v = (struct bench_value){.bytes = bytes, .len = cfg->val_size};
    *shared = v;
    return 0;
}

void bench_value_free(void *shared)
{
    struct bench_value *v = shared;
    if (v)
        free(v->bytes);
    free(v);
}
