/*
 * delivery.c - rolling delivery rates per provider.
 *
 * A provider can take every send and still deliver few of them (the seed's
 * scenario 3 detects a WhatsApp outage as "delivery failures > 10 %"). The
 * reports come long after the send, through another path - status webhooks
 * applied by ingest, SMS delivery reports - so the rate is kept here,
 * apart from the sender, and the sender only asks delivery_ok.
 *
 * Each provider has DELIVERY_BUCKETS buckets of window_ms / DELIVERY_BUCKETS,
 * tagged with their epoch (now / bucket length) like the breaker's window:
 * a bucket DELIVERY_BUCKETS or more epochs old is forgotten, so idleness
 * needs no sweep. A rate counts only over min_reports reports: a provider
 * nobody reports on is presumed to deliver.
 *
 * Threading: one mutex around everything; reports come one commit at a
 * time and the sender asks once per routing decision, so it is never hot.
 */
#include "send/delivery.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/xalloc.h"
#include "store/store.h"

#define DELIVERY_BUCKETS   10
#define DELIVERY_PROVIDERS 16

struct delivery_bucket {
	int64_t epoch;
	int64_t delivered, failed;
};

struct delivery_provider {
	char name[OUTBOX_PROVIDER_MAX];
	struct delivery_bucket b[DELIVERY_BUCKETS];
	uint64_t delivered_total, failed_total;
};

struct delivery {
	pthread_mutex_t mu;
	int64_t bucket_ms;
	int min_reports, min_pct;
	int n;
	struct delivery_provider p[DELIVERY_PROVIDERS];
};

int delivery_new(int64_t window_ms, int min_reports, int min_pct, struct delivery **out)
{
	*out = NULL;
	if (window_ms < DELIVERY_BUCKETS || min_reports < 1 || min_pct < 0 || min_pct > 100)
		return ERR_INVAL;
	struct delivery *d = xcalloc(1, sizeof(*d));
	pthread_mutex_init(&d->mu, NULL);
	d->bucket_ms = window_ms / DELIVERY_BUCKETS;
	d->min_reports = min_reports;
	d->min_pct = min_pct;
	*out = d;
	return 0;
}

void delivery_free(struct delivery *d)
{
	if (!d)
		return;
	pthread_mutex_destroy(&d->mu);
	free(d);
}

/* find: the provider's entry (made when make and there is room), or NULL. */
static struct delivery_provider *find(struct delivery *d, const char *name, int make)
{
	for (int i = 0; i < d->n; i++)
		if (strcmp(d->p[i].name, name) == 0)
			return &d->p[i];
	if (!make || d->n == DELIVERY_PROVIDERS || strlen(name) >= OUTBOX_PROVIDER_MAX)
		return NULL;
	struct delivery_provider *p = &d->p[d->n++];
	snprintf(p->name, sizeof(p->name), "%s", name);
	return p;
}

void delivery_report(struct delivery *d, const char *provider, int delivered, int64_t now_ms)
{
	if (!d || !provider || !*provider)
		return;
	int64_t epoch = now_ms / d->bucket_ms;
	pthread_mutex_lock(&d->mu);
	struct delivery_provider *p = find(d, provider, 1);
	if (p) {
		struct delivery_bucket *b = &p->b[(uint64_t)epoch % DELIVERY_BUCKETS];
		if (b->epoch != epoch) {
			b->epoch = epoch;
			b->delivered = b->failed = 0;
		}
		if (delivered) {
			b->delivered++;
			p->delivered_total++;
		} else {
			b->failed++;
			p->failed_total++;
		}
	}
	pthread_mutex_unlock(&d->mu);
}

/* rate_locked: per mille delivered, or -1 below min_reports. */
static int rate_locked(const struct delivery *d, const struct delivery_provider *p, int64_t now_ms)
{
	int64_t epoch = now_ms / d->bucket_ms, ok = 0, bad = 0;
	for (int i = 0; i < DELIVERY_BUCKETS; i++) {
		const struct delivery_bucket *b = &p->b[i];
		if (b->epoch > epoch - DELIVERY_BUCKETS && b->epoch <= epoch) {
			ok += b->delivered;
			bad += b->failed;
		}
	}
	if (ok + bad < d->min_reports)
		return -1;
	return (int)(ok * 1000 / (ok + bad));
}

int delivery_rate_pm(struct delivery *d, const char *provider, int64_t now_ms)
{
	if (!d || !provider)
		return -1;
	pthread_mutex_lock(&d->mu);
	const struct delivery_provider *p = find(d, provider, 0);
	int r = p ? rate_locked(d, p, now_ms) : -1;
	pthread_mutex_unlock(&d->mu);
	return r;
}

int delivery_ok(struct delivery *d, const char *provider, int64_t now_ms)
{
	if (!d)
		return 1;
	int r = delivery_rate_pm(d, provider, now_ms);
	return r < 0 || r >= d->min_pct * 10;
}

void delivery_render(struct delivery *d, struct buf *out, int64_t now_ms)
{
	if (!d)
		return;
	buf_puts(out, "# HELP munim_delivery_rate Share of a provider's messages reported delivered"
	              " over the rolling window (-1: too few reports).\n"
	              "# TYPE munim_delivery_rate gauge\n");
	pthread_mutex_lock(&d->mu);
	for (int i = 0; i < d->n; i++) {
		int r = rate_locked(d, &d->p[i], now_ms);
		buf_printf(out, "munim_delivery_rate{provider=\"%s\"} %s%d.%03d\n", d->p[i].name,
		           r < 0 ? "-" : "", r < 0 ? 1 : r / 1000, r < 0 ? 0 : r % 1000);
	}
	buf_puts(out, "# HELP munim_delivery_reports_total Delivery reports by provider and"
	              " outcome.\n# TYPE munim_delivery_reports_total counter\n");
	for (int i = 0; i < d->n; i++)
		buf_printf(
		        out,
		        "munim_delivery_reports_total{provider=\"%s\",result=\"delivered\"} %llu\n"
		        "munim_delivery_reports_total{provider=\"%s\",result=\"failed\"} %llu\n",
		        d->p[i].name, (unsigned long long)d->p[i].delivered_total, d->p[i].name,
		        (unsigned long long)d->p[i].failed_total);
	pthread_mutex_unlock(&d->mu);
}
