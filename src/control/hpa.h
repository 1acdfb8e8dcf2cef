/*
 * hpa.h - the Kubernetes Horizontal Pod Autoscaler's arithmetic (autoscaling/v2
 * with behavior), so that serve can size its own pools by the rules the seed
 * gives its webhook workers and ERP services, and `munim plan` can predict
 * what a cluster would do.
 *
 * Pure: time comes in as now_ms (monotonic milliseconds), no clock, no I/O,
 * no allocation. One struct hpa per scaled thing, owned by one thread.
 * Kubernetes decides every 15 s; the history keeps HPA_HISTORY decisions,
 * so at one decision a second a 300 s window is whole.
 */
#ifndef MUNIM_HPA_H
#define MUNIM_HPA_H

#include <stdint.h>

/* Policies per direction, metrics per target, and the remembered history. */
#define HPA_MAX_POLICIES 4
#define HPA_MAX_METRICS  8
#define HPA_HISTORY      512

enum hpa_policy_type { HPA_PODS = 0, HPA_PERCENT = 1 };
enum hpa_select { HPA_SELECT_MAX = 0, HPA_SELECT_MIN = 1, HPA_SELECT_DISABLED = 2 };

struct hpa_policy {
	enum hpa_policy_type type;
	int value;
	int64_t period_ms;
};

/* One direction's behavior (spec.behavior.scaleUp / scaleDown). */
struct hpa_rules {
	int64_t stabilization_ms;
	enum hpa_select select;
	int npolicies;
	struct hpa_policy policies[HPA_MAX_POLICIES];
};

struct hpa_config {
	int min_replicas, max_replicas;
	double tolerance; /* 0.1: no change while |current/target - 1| <= it */
	struct hpa_rules up, down;
};

/* A metric's reading against its target (utilisation %, average value per
 * replica, ...); the ratio current/target is what counts. */
struct hpa_metric {
	double current;
	double target;
};

struct hpa_recommendation {
	int64_t at_ms;
	int replicas;
};

struct hpa_event {
	int64_t at_ms;
	int change; /* replicas added (> 0) or removed (< 0) */
};

struct hpa {
	struct hpa_config cfg;
	/* the count found by the first decision, and when: it bounds scaling
	 * down (only) for the first down window */
	int64_t born_ms;
	int born_replicas;
	struct hpa_recommendation recs[HPA_HISTORY]; /* ring, oldest overwritten */
	int nrecs, rec_head;
	struct hpa_event events[HPA_HISTORY];
	int nevents, event_head;
};

/*
 * hpa_config_default: Kubernetes' own defaults - tolerance 0.1; scale up
 * with no stabilization, at most +4 pods or +100 % per 15 s, the larger;
 * scale down after a 300 s stabilization window, up to 100 % per 15 s.
 */
void hpa_config_default(struct hpa_config *cfg, int min_replicas, int max_replicas);

/*
 * hpa_config_seed_webhook_workers: the seed's webhook-worker autoscaler
 * (scalability-and-reliability.md, "Auto-Scaling Configuration"): 10..100
 * replicas; scale up with a 60 s window, +10 pods or +100 % per 60 s (the
 * larger); scale down with a 300 s window, at most 10 % per 60 s.
 */
void hpa_config_seed_webhook_workers(struct hpa_config *cfg);

/* hpa_init: 0, or ERR_INVAL for a config out of bounds (min < 1, max < min,
 * tolerance outside 0..1, a policy with value < 1 or period < 1 ms, too many
 * policies, a negative window). */
int hpa_init(struct hpa *h, const struct hpa_config *cfg);

/*
 * hpa_proposal: the replicas the metrics alone ask for - for each metric
 * ceil(current_replicas * current / target), or current_replicas while the
 * ratio is within the tolerance of 1 - and the largest of those (Kubernetes
 * takes the max over metrics). Metrics with a target <= 0 are skipped; with
 * none, current_replicas.
 */
int hpa_proposal(int current_replicas, const struct hpa_metric *m, int n, double tolerance);

/*
 * hpa_decide: the replicas to run now, given the current count and what the
 * metrics propose, by the HPA's behavior: the proposal is remembered; scale
 * up takes the lowest proposal of the up window, scale down the highest of
 * the down window; the change is then limited by the direction's policies
 * (relative to the replicas at the start of each policy's period, from the
 * remembered scale events; Max takes the policy allowing the most change,
 * Min the least, Disabled none), and clamped to min..max. A change is
 * remembered as a scale event. now_ms must not go back.
 */
int hpa_decide(struct hpa *h, int current_replicas, int proposal, int64_t now_ms);

#endif
