/* util/rng.h — the random generator of steps (xoshiro256**) and
 * the derivation of per-step seeds. */
#ifndef XP_UTIL_RNG_H
#define XP_UTIL_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t s[4];
} xp_rng;

void xp__rng_seed(xp_rng *r, uint64_t seed);
uint64_t xp__rng_next(xp_rng *r);
/* Seed of a step: hash of (trial seed, step name). */
uint64_t xp__step_seed(uint64_t trial_seed, const char *step);
/* Fills buf with n unguessable bytes (getrandom, else /dev/urandom);
 * -1 when the system has none to give. */
int xp__random_bytes(void *buf, size_t n);
/* A fresh seed from the OS (from the clock and pid when it has none). */
uint64_t xp__random_seed(void);

#endif /* XP_UTIL_RNG_H */
