/*
 * rng.h - the one small non-cryptographic random source: xorshift64* on a
 * caller-owned state (jitter, fault injection, simulation), and a seed.
 */
#ifndef MUNIM_RNG_H
#define MUNIM_RNG_H

#include <stdint.h>

/* rng_next advances *s (never 0) and returns the next value. */
static inline uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* rng_seed: a state from getrandom, else from the clocks; never 0. */
uint64_t rng_seed(void);

#endif
