/*
 * idset.h - a set of positive 64-bit ids (row ids): open addressing with
 * linear probing, growing as it fills. Not thread-safe: the owner locks.
 */
#ifndef MUNIM_IDSET_H
#define MUNIM_IDSET_H

#include <stddef.h>
#include <stdint.h>

struct idset {
	int64_t *slots; /* 0: empty */
	size_t cap;     /* a power of two */
	size_t n;
};

/* idset_init: an empty set sized for about expect ids (it grows past). */
void idset_init(struct idset *s, size_t expect);
void idset_free(struct idset *s);
/* idset_add: 1 if id went in, 0 if it was there (or is not > 0). */
int idset_add(struct idset *s, int64_t id);
/* idset_del: 1 if id was there and went, 0 if it was not there. */
int idset_del(struct idset *s, int64_t id);
int idset_has(const struct idset *s, int64_t id);

#endif
