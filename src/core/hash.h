/*
 * hash.h - small non-cryptographic hashes.
 */
#ifndef MUNIM_HASH_H
#define MUNIM_HASH_H

#include <stddef.h>
#include <stdint.h>

/* FNV-1a, 64 bit. */
static inline uint64_t hash_fnv1a(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

/* A 64-bit integer mixer (splitmix64 finaliser), for partitioning by id. */
static inline uint64_t hash_u64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

#endif
