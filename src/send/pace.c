/*
 * pace.c - send pacing per business phone number and per customer.
 *
 * The Cloud API lets one business phone number send 80 messages a second
 * by default (130429 past it) and one customer only a few messages a
 * minute from one number (131056, the pair rate limit). Past either
 * limit a send is refused, costs a round trip and an attempt, and
 * repeated refusals may flag the number. So the sender asks before each
 * send:
 *
 *   numbers   a token bucket each: per_second tokens refilled
 *             continuously, holding at most per_second (a second's burst).
 *             Kept in milli-tokens so that any rate refills exactly.
 *             A 130429/429 answer halves the rate (pace_slow), after
 *             which it climbs back by per_second/10 each quiet second
 *             (additive increase, multiplicative decrease, as TCP does).
 *   pairs     number + customer: after the n-th pair-rate refusal in a
 *             row, no send for base * 4^(n-1) ms (4 s, 16 s, 64 s...), the
 *             4^X backoff the API's documentation suggests; a send that
 *             goes through forgets the count.
 *
 * Both live in one chained hash table keyed by text ("number" and
 * "number\x1fcustomer"), grown at load 1; pace_sweep drops entries idle
 * for idle_ms, so the table holds the numbers sending lately, not every
 * number ever seen.
 *
 * Invariants: 0 <= tokens <= rate * 1000; 1 <= rate <= per_second; an
 * entry's last_ms never decreases.
 *
 * Threading: none; one owner thread.
 */
#include "send/pace.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/xalloc.h"

#define PACE_MILLI 1000
/* Initial buckets of the table (a power of two). */
#define PACE_INITIAL 64

struct pace_entry {
	struct pace_entry *next;
	uint64_t hash;
	int64_t last_ms; /* when last touched (refill time for numbers) */
	/* numbers */
	int64_t tokens; /* milli-tokens */
	int rate;       /* sends per second now */
	int64_t slowed_ms;
	int64_t raised_ms;
	/* pairs */
	int refusals;
	int64_t until_ms;
	char key[]; /* NUL-terminated */
};

struct pace {
	struct pace_config cfg;
	struct pace_entry **tab;
	size_t cap; /* buckets, a power of two */
	size_t n;
};

void pace_config_default(struct pace_config *cfg)
{
	cfg->per_second = 80;
	cfg->recipient_base_ms = 4000;
	cfg->recipient_cap_ms = 256000;
	cfg->idle_ms = 60000;
}

int pace_new(const struct pace_config *cfg, struct pace **out)
{
	*out = NULL;
	if (cfg->per_second < 0 || cfg->recipient_base_ms < 1 ||
	    cfg->recipient_cap_ms < cfg->recipient_base_ms || cfg->idle_ms < 1)
		return ERR_INVAL;
	struct pace *p = xcalloc(1, sizeof(*p));
	p->cfg = *cfg;
	p->cap = PACE_INITIAL;
	p->tab = xcalloc(p->cap, sizeof(*p->tab));
	*out = p;
	return 0;
}

void pace_free(struct pace *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->cap; i++) {
		struct pace_entry *e = p->tab[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(p->tab);
	free(p);
}

static void grow(struct pace *p)
{
	size_t cap = p->cap * 2;
	struct pace_entry **tab = xcalloc(cap, sizeof(*tab));
	for (size_t i = 0; i < p->cap; i++) {
		struct pace_entry *e = p->tab[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = tab[e->hash & (cap - 1)];
			tab[e->hash & (cap - 1)] = e;
		}
	}
	free(p->tab);
	p->tab = tab;
	p->cap = cap;
}

/* find returns the entry of key a (+ "\x1f" + b when b), made if create. */
static struct pace_entry *find(struct pace *p, const char *a, const char *b, int create,
                               int64_t now_ms)
{
	size_t la = strlen(a), lb = b ? strlen(b) : 0, len = la + (b ? 1 + lb : 0);
	char stack[128];
	char *key = len < sizeof(stack) ? stack : xmalloc(len + 1);
	memcpy(key, a, la);
	if (b) {
		key[la] = '\x1f';
		memcpy(key + la + 1, b, lb);
	}
	key[len] = '\0';
	uint64_t h = hash_fnv1a(key, len);
	struct pace_entry *e = p->tab[h & (p->cap - 1)];
	while (e && !(e->hash == h && strcmp(e->key, key) == 0))
		e = e->next;
	if (!e && create) {
		if (p->n >= p->cap)
			grow(p);
		e = xcalloc(1, sizeof(*e) + len + 1);
		memcpy(e->key, key, len + 1);
		e->hash = h;
		e->last_ms = now_ms;
		e->rate = p->cfg.per_second;
		e->tokens = (int64_t)e->rate * PACE_MILLI;
		e->raised_ms = now_ms;
		e->next = p->tab[h & (p->cap - 1)];
		p->tab[h & (p->cap - 1)] = e;
		p->n++;
	}
	if (key != stack)
		free(key);
	return e;
}

/* refill brings a number's bucket (and its rate) up to now. */
static void refill(struct pace *p, struct pace_entry *e, int64_t now_ms)
{
	if (now_ms <= e->last_ms)
		return;
	int64_t dt = now_ms - e->last_ms;
	e->last_ms = now_ms;
	int step = p->cfg.per_second / 10 > 0 ? p->cfg.per_second / 10 : 1;
	if (e->rate < p->cfg.per_second) {
		/* one step up per quiet second since the last slow-down or raise */
		int64_t from = e->raised_ms > e->slowed_ms ? e->raised_ms : e->slowed_ms;
		int64_t steps = (now_ms - from) / 1000;
		if (steps > 0) {
			int64_t r = e->rate + steps * step;
			e->rate = r < p->cfg.per_second ? (int)r : p->cfg.per_second;
			e->raised_ms = from + steps * 1000;
		}
	}
	int64_t cap = (int64_t)e->rate * PACE_MILLI;
	/* rate tokens a second is rate milli-tokens a ms; a second refills all */
	int64_t add = dt >= PACE_MILLI ? cap : dt * e->rate;
	e->tokens = e->tokens + add < cap ? e->tokens + add : cap;
}

int64_t pace_take(struct pace *p, const char *number, int64_t now_ms)
{
	if (p->cfg.per_second == 0)
		return 0;
	struct pace_entry *e = find(p, number, NULL, 1, now_ms);
	refill(p, e, now_ms);
	if (e->tokens >= PACE_MILLI) {
		e->tokens -= PACE_MILLI;
		return 0;
	}
	/* ceil((1000 - tokens) / rate) ms */
	return (PACE_MILLI - e->tokens + e->rate - 1) / e->rate;
}

void pace_slow(struct pace *p, const char *number, int64_t now_ms)
{
	if (p->cfg.per_second == 0)
		return;
	struct pace_entry *e = find(p, number, NULL, 1, now_ms);
	refill(p, e, now_ms);
	e->rate = e->rate / 2 > 0 ? e->rate / 2 : 1;
	if (e->tokens > (int64_t)e->rate * PACE_MILLI)
		e->tokens = (int64_t)e->rate * PACE_MILLI;
	e->slowed_ms = e->last_ms;
	e->raised_ms = e->last_ms;
}

int pace_rate(struct pace *p, const char *number, int64_t now_ms)
{
	struct pace_entry *e = find(p, number, NULL, 0, now_ms);
	if (!e)
		return p->cfg.per_second;
	refill(p, e, now_ms);
	return e->rate;
}

int64_t pace_recipient_limited(struct pace *p, const char *number, const char *to, int64_t now_ms)
{
	struct pace_entry *e = find(p, number, to, 1, now_ms);
	if (now_ms > e->last_ms)
		e->last_ms = now_ms;
	int64_t wait = p->cfg.recipient_base_ms;
	for (int i = 0; i < e->refusals && wait < p->cfg.recipient_cap_ms; i++)
		wait *= 4;
	if (wait > p->cfg.recipient_cap_ms)
		wait = p->cfg.recipient_cap_ms;
	e->refusals++;
	e->until_ms = e->last_ms + wait;
	return wait;
}

void pace_recipient_ok(struct pace *p, const char *number, const char *to)
{
	struct pace_entry *e = find(p, number, to, 0, 0);
	if (e) {
		e->refusals = 0;
		e->until_ms = 0;
	}
}

int64_t pace_recipient_wait(struct pace *p, const char *number, const char *to, int64_t now_ms)
{
	struct pace_entry *e = find(p, number, to, 0, now_ms);
	return e && e->until_ms > now_ms ? e->until_ms - now_ms : 0;
}

void pace_sweep(struct pace *p, int64_t now_ms)
{
	for (size_t i = 0; i < p->cap; i++) {
		struct pace_entry **pe = &p->tab[i];
		while (*pe) {
			struct pace_entry *e = *pe;
			int64_t quiet_since = e->until_ms > e->last_ms ? e->until_ms : e->last_ms;
			if (now_ms - quiet_since >= p->cfg.idle_ms) {
				*pe = e->next;
				free(e);
				p->n--;
			} else {
				pe = &e->next;
			}
		}
	}
}

size_t pace_entries(const struct pace *p)
{
	return p->n;
}
