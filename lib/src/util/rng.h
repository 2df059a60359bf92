/* util/rng.h — the random generator of steps (xoshiro256**) and
 * the derivation of per-step seeds. */
#ifndef XP_UTIL_RNG_H
#define XP_UTIL_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t s[4];
} xp_rng;

void xp__rng_seed(xp_rng *r, uint64_t seed);
uint64_t xp__rng_next(xp_rng *r);
/* Seed of a step: hash of (trial seed, step name). */
uint64_t xp__step_seed(uint64_t trial_seed, const char *step);
/* A fresh seed from the OS. */
uint64_t xp__random_seed(void);

#endif /* XP_UTIL_RNG_H */
