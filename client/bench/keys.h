/* client/bench/keys.h — the keys and values the write workloads send, as etcd's benchmark makes
 * them: a key is a key-size buffer of zero bytes with the key's number written at its start as a
 * Go signed varint (encoding/binary.PutVarint: zigzag, then base-128 little-endian groups); a
 * value is val-size random bytes, the same for every request. Plus the small random number
 * generator that picks random keys. */
#ifndef CAIRN_CLIENT_BENCH_KEYS_H
#define CAIRN_CLIENT_BENCH_KEYS_H

#include <stddef.h>
#include <stdint.h>

/* How many bytes the signed varint of n takes (1 to 10). */
size_t bench_key_bytes(uint64_t n);

/* Writes key number n into key (size bytes, at least bench_key_bytes(n)): the varint, then zero
 * bytes up to size. */
void bench_key_write(uint8_t *key, size_t size, uint64_t n);

/* A splitmix64 generator: fast, 64 bits of state, good enough to spread keys. */
struct bench_rng {
    uint64_t state; /* advanced by every draw */
};

/* Seeds rng; the same seed gives the same sequence. */
void bench_rng_seed(struct bench_rng *rng, uint64_t seed);

/* The next 64 random bits. */
uint64_t bench_rng_next(struct bench_rng *rng);

/* A uniform number in [0, n) (n ≥ 1), by multiply-and-shift. */
uint64_t bench_rng_below(struct bench_rng *rng, uint64_t n);

/* Fills buf with len random bytes from rng. */
void bench_rng_fill(struct bench_rng *rng, uint8_t *buf, size_t len);

/* The value of the write workloads, shared by all their requests. */
struct bench_value {
    uint8_t *bytes; /* len random bytes (malloc'd; never NULL) */
    size_t len;     /* --val-size */
};

/* Makes the value for cfg: val_size random bytes from seed. Returns 0 and *shared (a struct
 * bench_value, freed by bench_value_free), or -1 when out of memory. The signature is a
 * workload's shared_new (workload.h). */
struct bench_config;
int bench_value_new(const struct bench_config *cfg, uint64_t seed, void **shared);

/* Frees a value made by bench_value_new() (NULL is fine). */
void bench_value_free(void *shared);

/* A seed that differs from run to run (the kernel's randomness, else the clock). */
uint64_t bench_seed(void);

#endif
