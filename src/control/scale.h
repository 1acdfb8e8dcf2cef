/*
 * scale.h - the seed's scale_workers(target_multiplier) as arithmetic:
 * webhook workers to current x multiplier (at most their maximum), ERP
 * services to half of that ("ERP needs less scaling"), each within its
 * bounds.
 *
 * Pure: no clock, no I/O, no allocation; the caller owns the structs.
 */
#ifndef MUNIM_SCALE_H
#define MUNIM_SCALE_H

#define SCALE_MAX_SERVICES 8

/* One ERP service's bounds (an HPA's minReplicas..maxReplicas). */
struct scale_service {
	char name[32];
	int min_replicas, max_replicas;
};

struct scale_limits {
	int webhook_min, webhook_max;
	double erp_ratio; /* ERP pods per webhook worker: the seed's 0.5 */
	int nservices;
	struct scale_service services[SCALE_MAX_SERVICES];
};

struct scale_target {
	int webhook;                 /* webhook workers to run */
	int webhook_capped;          /* 1 when webhook_max cut current x multiplier */
	int erp_wanted;              /* ceil(webhook * erp_ratio), at least the minimums */
	int erp_total;               /* sum of erp[] */
	int erp[SCALE_MAX_SERVICES]; /* per service, in limits order */
	int erp_capped;              /* 1 when a service's maximum cut its share */
};

/* scale_limits_seed: webhook workers 10..100, ERP ratio 0.5, and the
 * seed's ERP services: order 10..100, inventory 5..50, invoice 5..50. */
void scale_limits_seed(struct scale_limits *l);

/*
 * scale_workers_target: the seed's scale_workers(multiplier) from current
 * webhook workers. webhook = min(ceil(current * multiplier), webhook_max),
 * at least webhook_min; the ERP pods wanted are ceil(webhook * erp_ratio),
 * at least the services' minimums summed, shared among the services by
 * scale_erp_share. 0, or ERR_INVAL for current < 0, a multiplier
 * not above 0, or limits out of order (min < 1, max < min, a ratio below
 * 0, no more than SCALE_MAX_SERVICES services).
 */
int scale_workers_target(const struct scale_limits *l, int current, double multiplier,
                         struct scale_target *out);

/*
 * scale_erp_share shares total ERP pods among the services in proportion
 * to their maximums (largest remainder: the shares add up to total, a pod
 * left over goes to the largest fraction, the earlier service on a tie),
 * then holds each within its min..max; out[i] per service. Returns 1 when
 * a maximum cut a share, else 0.
 */
int scale_erp_share(const struct scale_limits *l, int total, int out[SCALE_MAX_SERVICES]);

#endif
