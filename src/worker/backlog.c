/*
 * backlog.c - the set of customers with messages waiting in the inbox
 * (backlog.h): a chained hash table of (tenant id, wa_id) -> count under
 * one mutex. Buckets double when the table is over 3/4 full, so lookups
 * stay short; nodes are freed as counts reach zero.
 */
#include "worker/backlog.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/xalloc.h"

#define BACKLOG_MIN_BUCKETS 256

struct node {
	struct node *next;
	uint64_t hash;
	int64_t tenant_id;
	int count;
	char wa_id[]; /* NUL-terminated */
};

struct backlog {
	pthread_mutex_t mu;
	struct node **buckets;
	size_t nbuckets; /* a power of two */
	size_t n;        /* customers in the set */
	int known;
};

static uint64_t key_hash(int64_t tenant_id, const char *wa_id)
{
	return hash_u64((uint64_t)tenant_id) ^ hash_fnv1a(wa_id, strlen(wa_id));
}

/* The link that points at the customer's node, or at the NULL ending its chain. */
static struct node **find(struct backlog *b, uint64_t h, int64_t tenant_id, const char *wa_id)
{
	struct node **p = &b->buckets[h & (b->nbuckets - 1)];
	while (*p && !((*p)->hash == h && (*p)->tenant_id == tenant_id &&
	               strcmp((*p)->wa_id, wa_id) == 0))
		p = &(*p)->next;
	return p;
}

static void clear(struct backlog *b)
{
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct node *x = b->buckets[i];
		while (x) {
			struct node *next = x->next;
			free(x);
			x = next;
		}
		b->buckets[i] = NULL;
	}
	b->n = 0;
}

static void grow(struct backlog *b)
{
	size_t nb = b->nbuckets * 2;
	struct node **nbk = xcalloc(nb, sizeof(*nbk));
	for (size_t i = 0; i < b->nbuckets; i++) {
		struct node *x = b->buckets[i];
		while (x) {
			struct node *next = x->next;
			x->next = nbk[x->hash & (nb - 1)];
			nbk[x->hash & (nb - 1)] = x;
			x = next;
		}
	}
	free(b->buckets);
	b->buckets = nbk;
	b->nbuckets = nb;
}

struct backlog *backlog_new(int known)
{
	struct backlog *b = xcalloc(1, sizeof(*b));
	pthread_mutex_init(&b->mu, NULL);
	b->nbuckets = BACKLOG_MIN_BUCKETS;
	b->buckets = xcalloc(b->nbuckets, sizeof(*b->buckets));
	b->known = known;
	return b;
}

void backlog_free(struct backlog *b)
{
	if (!b)
		return;
	clear(b);
	free(b->buckets);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

void backlog_add(struct backlog *b, int64_t tenant_id, const char *wa_id)
{
	uint64_t h = key_hash(tenant_id, wa_id);
	pthread_mutex_lock(&b->mu);
	if (b->known) {
		struct node **p = find(b, h, tenant_id, wa_id);
		if (*p) {
			(*p)->count++;
		} else if (b->n >= BACKLOG_MAX) {
			/* too many to follow: nobody overtakes until the inbox empties */
			b->known = 0;
			clear(b);
		} else {
			size_t len = strlen(wa_id);
			struct node *x = xmalloc(sizeof(*x) + len + 1);
			x->next = NULL;
			x->hash = h;
			x->tenant_id = tenant_id;
			x->count = 1;
			memcpy(x->wa_id, wa_id, len + 1);
			*p = x;
			if (++b->n > b->nbuckets / 4 * 3)
				grow(b);
		}
	}
	pthread_mutex_unlock(&b->mu);
}

void backlog_remove(struct backlog *b, int64_t tenant_id, const char *wa_id)
{
	uint64_t h = key_hash(tenant_id, wa_id);
	pthread_mutex_lock(&b->mu);
	struct node **p = find(b, h, tenant_id, wa_id);
	if (*p && --(*p)->count == 0) {
		struct node *x = *p;
		*p = x->next;
		free(x);
		b->n--;
	}
	pthread_mutex_unlock(&b->mu);
}

int backlog_has(struct backlog *b, int64_t tenant_id, const char *wa_id)
{
	uint64_t h = key_hash(tenant_id, wa_id);
	pthread_mutex_lock(&b->mu);
	int has = !b->known || *find(b, h, tenant_id, wa_id) != NULL;
	pthread_mutex_unlock(&b->mu);
	return has;
}

void backlog_known(struct backlog *b)
{
	pthread_mutex_lock(&b->mu);
	clear(b);
	b->known = 1;
	pthread_mutex_unlock(&b->mu);
}

int backlog_is_known(struct backlog *b)
{
	pthread_mutex_lock(&b->mu);
	int known = b->known;
	pthread_mutex_unlock(&b->mu);
	return known;
}
