/*
 * scale.c - the seed's scale_workers (scalability-and-reliability.md,
 * "Traffic Spike Handling"):
 *
 *   target = min(current * target_multiplier, MAX_WORKERS)
 *   scale_webhook_workers(target)
 *   scale_erp_services(target * 0.5)
 *
 * Rounding: a fractional count rounds up (a 1.5x of 7 workers is 11, not
 * 10: the multiplier is a floor on capacity). The seed scales "ERP
 * services" as one number; here it is shared among the services by their
 * maximums (order 100 : inventory 50 : invoice 50 gives 2 : 1 : 1) by
 * largest remainder, so the shares add up to the wanted total; each is
 * then held within its own bounds (a maximum can cut the total, the
 * minimums can raise it).
 *
 * Threading: none; pure functions.
 */
#include "control/scale.h"

#include <math.h>
#include <string.h>

#include "core/err.h"

void scale_limits_seed(struct scale_limits *l)
{
	memset(l, 0, sizeof(*l));
	l->webhook_min = 10;
	l->webhook_max = 100;
	l->erp_ratio = 0.5;
	l->nservices = 3;
	l->services[0] = (struct scale_service){"order-service", 10, 100};
	l->services[1] = (struct scale_service){"inventory-service", 5, 50};
	l->services[2] = (struct scale_service){"invoice-service", 5, 50};
}

static int limits_ok(const struct scale_limits *l)
{
	if (l->webhook_min < 1 || l->webhook_max < l->webhook_min || !(l->erp_ratio >= 0) ||
	    l->nservices < 0 || l->nservices > SCALE_MAX_SERVICES)
		return 0;
	for (int i = 0; i < l->nservices; i++)
		if (l->services[i].min_replicas < 1 ||
		    l->services[i].max_replicas < l->services[i].min_replicas)
			return 0;
	return 1;
}

static int clamp_count(double v, int lo, int hi)
{
	if (!(v >= lo))
		return lo;
	if (v >= hi)
		return hi;
	return (int)v;
}

int scale_erp_share(const struct scale_limits *l, int total, int out[SCALE_MAX_SERVICES])
{
	double sum = 0, frac[SCALE_MAX_SERVICES];
	int given = 0, capped = 0;
	for (int i = 0; i < l->nservices; i++)
		sum += l->services[i].max_replicas;
	for (int i = 0; i < l->nservices; i++) {
		double exact = sum > 0 ? (double)total * l->services[i].max_replicas / sum : 0;
		out[i] = (int)floor(exact + 1e-9);
		frac[i] = exact - out[i];
		given += out[i];
	}
	for (; given < total && l->nservices > 0; given++) {
		int best = 0;
		for (int i = 1; i < l->nservices; i++)
			if (frac[i] > frac[best] + 1e-9)
				best = i;
		out[best]++;
		frac[best] = -1;
	}
	for (int i = 0; i < l->nservices; i++) {
		const struct scale_service *s = &l->services[i];
		if (out[i] > s->max_replicas)
			capped = 1;
		out[i] = clamp_count(out[i], s->min_replicas, s->max_replicas);
	}
	return capped;
}

int scale_workers_target(const struct scale_limits *l, int current, double multiplier,
                         struct scale_target *out)
{
	memset(out, 0, sizeof(*out));
	if (current < 0 || !(multiplier > 0) || !isfinite(multiplier) || !limits_ok(l))
		return ERR_INVAL;
	/* 1e-9: 30 * 1.1 is 33.000000000000004 in binary, still 33 workers */
	double want = ceil((double)current * multiplier - 1e-9);
	out->webhook_capped = want > l->webhook_max;
	out->webhook = clamp_count(want, l->webhook_min, l->webhook_max);
	int mins = 0;
	for (int i = 0; i < l->nservices; i++)
		mins += l->services[i].min_replicas;
	double erp = ceil(out->webhook * l->erp_ratio - 1e-9);
	out->erp_wanted = erp < mins ? mins : (int)erp;
	out->erp_capped = scale_erp_share(l, out->erp_wanted, out->erp);
	for (int i = 0; i < l->nservices; i++)
		out->erp_total += out->erp[i];
	return 0;
}
