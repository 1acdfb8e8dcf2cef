/*
 * rng.c - seeding the random source (rng.h).
 */
#include "core/rng.h"

#include <sys/random.h>
#include <sys/types.h>

#include "core/clock.h"

uint64_t rng_seed(void)
{
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)clock_mono_us() ^ ((uint64_t)clock_wall_ms() << 20);
	return seed ? seed : 0x9e3779b97f4a7c15ULL;
}
