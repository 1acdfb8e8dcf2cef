/*
 * arena.h - region allocation: many small allocations, freed in one place.
 *
 * One arena per webhook request and per message processed. Memory comes from
 * a chain of blocks; arena_reset keeps the first block for reuse, so a
 * long-lived worker arena stops touching malloc once it is warm.
 * Not thread-safe: an arena belongs to one thread at a time.
 */
#ifndef MUNIM_ARENA_H
#define MUNIM_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena_block;

struct arena {
	struct arena_block *head; /* current block, newest first */
	size_t block_size;        /* size of ordinary blocks */
};

void arena_init(struct arena *a, size_t block_size);
void arena_release(struct arena *a);
/* arena_reset frees everything allocated but keeps one block for reuse. */
void arena_reset(struct arena *a);
/* arena_footprint: bytes of the blocks a holds now (what it costs in memory). */
size_t arena_footprint(const struct arena *a);

/* Memory aligned for any type; aborts when out of memory. */
void *arena_alloc(struct arena *a, size_t n);
void *arena_calloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_sprintf(struct arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *arena_vsprintf(struct arena *a, const char *fmt, va_list ap)
        __attribute__((format(printf, 2, 0)));

#endif
