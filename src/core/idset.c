/*
 * idset.c - see idset.h. Deletion shifts the following run back, so no
 * tombstones build up and a lookup stops at the first empty slot.
 */
#include "core/idset.h"

#include <stdlib.h>

#include "core/hash.h"
#include "core/xalloc.h"

#define IDSET_MIN_CAP 16

static size_t home(const struct idset *s, int64_t id)
{
	return (size_t)hash_u64((uint64_t)id) & (s->cap - 1);
}

void idset_init(struct idset *s, size_t expect)
{
	size_t cap = IDSET_MIN_CAP;
	while (cap < expect * 2)
		cap *= 2;
	s->slots = xcalloc(cap, sizeof(*s->slots));
	s->cap = cap;
	s->n = 0;
}

void idset_free(struct idset *s)
{
	free(s->slots);
	s->slots = NULL;
	s->cap = s->n = 0;
}

/* find: the slot holding id, or the empty slot where it would go. */
static size_t find(const struct idset *s, int64_t id)
{
	size_t i = home(s, id);
	while (s->slots[i] != 0 && s->slots[i] != id)
		i = (i + 1) & (s->cap - 1);
	return i;
}

static void grow(struct idset *s)
{
	struct idset bigger = {xcalloc(s->cap * 2, sizeof(*s->slots)), s->cap * 2, 0};
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i] != 0)
			bigger.slots[find(&bigger, s->slots[i])] = s->slots[i];
	bigger.n = s->n;
	free(s->slots);
	*s = bigger;
}

int idset_add(struct idset *s, int64_t id)
{
	if (id <= 0)
		return 0;
	if ((s->n + 1) * 2 > s->cap)
		grow(s);
	size_t i = find(s, id);
	if (s->slots[i] == id)
		return 0;
	s->slots[i] = id;
	s->n++;
	return 1;
}

int idset_has(const struct idset *s, int64_t id)
{
	return id > 0 && s->slots[find(s, id)] == id;
}

int idset_del(struct idset *s, int64_t id)
{
	if (id <= 0)
		return 0;
	size_t mask = s->cap - 1, i = find(s, id);
	if (s->slots[i] != id)
		return 0;
	/* shift back each later entry of the run that may sit at i */
	for (size_t j = (i + 1) & mask; s->slots[j] != 0; j = (j + 1) & mask) {
		size_t h = home(s, s->slots[j]);
		/* j's entry may move to i unless its home lies in (i, j] */
		int stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
		if (!stays) {
			s->slots[i] = s->slots[j];
			i = j;
		}
	}
	s->slots[i] = 0;
	s->n--;
	return 1;
}
