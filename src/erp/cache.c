/*
 * cache.c - each worker's copies of recently used catalogues.
 *
 * Loading a shop's catalogue (every product, then the match keys of every
 * name and alias) was the largest cost of a message. A worker keeps the
 * catalogues it loaded in a small direct-mapped cache: slot = tenant id mod
 * the slot count, each slot with its own arena holding the products and
 * their keys.
 *
 * Exactness: a slot is used only while the tenant's catalog_rev (read with
 * the tenant, in the message's own transaction) equals the revision the
 * copy was read at. Any change to any of the tenant's products moves the
 * revision (triggers, migration 2), so a copy in use is the catalogue the
 * transaction would read. The one way a revision could come back with
 * other contents is a rolled-back write (revision r+1 read inside a
 * transaction that was undone, then a different change that also makes
 * r+1): the worker clears its cache whenever it rolls anything back
 * (erp_cache_clear).
 *
 * Memory: a miss loads into the cache's scratch arena; a copy of at most
 * ERP_CACHE_MAX_BYTES then trades arenas with its slot (the slot's old
 * arena becomes the scratch), a bigger one stays in the scratch for this
 * message only and is dropped at the next miss. So a cache holds at most
 * slots × ERP_CACHE_MAX_BYTES plus one catalogue.
 *
 * Thread safety: none; a cache belongs to one worker thread.
 */
#include <stdlib.h>

#include "core/xalloc.h"
#include "erp/erp_internal.h"

#define ERP_CACHE_MAX_BYTES (64 * 1024)
#define ERP_CACHE_BLOCK     (16 * 1024)

struct cache_slot {
	int64_t tenant_id; /* 0: empty */
	int64_t rev;
	struct arena arena;
	struct product *products;
	int nproducts;
	struct erp_catalog cat;
};

struct erp_cache {
	int nslots;
	struct cache_slot *slots;
	struct arena scratch;
	struct erp_cache_stats stats;
};

struct erp_cache *erp_cache_new(int slots)
{
	if (slots < 1)
		slots = 1;
	struct erp_cache *c = xcalloc(1, sizeof(*c));
	c->nslots = slots;
	c->slots = xcalloc((size_t)slots, sizeof(*c->slots));
	for (int i = 0; i < slots; i++)
		arena_init(&c->slots[i].arena, ERP_CACHE_BLOCK);
	arena_init(&c->scratch, ERP_CACHE_BLOCK);
	return c;
}

void erp_cache_free(struct erp_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nslots; i++)
		arena_release(&c->slots[i].arena);
	arena_release(&c->scratch);
	free(c->slots);
	free(c);
}

static void slot_empty(struct cache_slot *s)
{
	s->tenant_id = 0;
	s->products = NULL;
	s->nproducts = 0;
	s->cat.n = 0;
	s->cat.items = NULL;
	arena_reset(&s->arena);
}

void erp_cache_clear(struct erp_cache *c)
{
	if (!c)
		return;
	for (int i = 0; i < c->nslots; i++)
		if (c->slots[i].tenant_id)
			slot_empty(&c->slots[i]);
	c->stats.clears++;
}

struct erp_cache_stats erp_cache_stats(const struct erp_cache *c)
{
	return c->stats;
}

static struct cache_slot *slot_of(struct erp_cache *c, int64_t tenant_id)
{
	return &c->slots[(uint64_t)tenant_id % (uint64_t)c->nslots];
}

int erp__cache_load(struct erp_cache *c, struct store_conn *conn, const struct tenant *t,
                    struct product **products, int *n, struct erp_catalog *cat)
{
	struct cache_slot *s = slot_of(c, t->id);
	if (s->tenant_id == t->id && s->rev == t->catalog_rev) {
		c->stats.hits++;
		*products = s->products;
		*n = s->nproducts;
		*cat = s->cat;
		return 0;
	}
	c->stats.misses++;
	slot_empty(s);
	arena_reset(&c->scratch);
	int rc = store_products_list(conn, t->id, &c->scratch, products, n);
	if (rc < 0)
		return rc;
	erp__catalog_init(cat, *products, *n, &c->scratch);
	if (arena_footprint(&c->scratch) > ERP_CACHE_MAX_BYTES) {
		c->stats.too_big++; /* used from the scratch, this message only */
		return 0;
	}
	struct arena old = s->arena;
	s->arena = c->scratch;
	c->scratch = old;
	s->tenant_id = t->id;
	s->rev = t->catalog_rev;
	s->products = *products;
	s->nproducts = *n;
	s->cat = *cat;
	return 0;
}
