/*
 * hpa.c - the Horizontal Pod Autoscaler's decision, as Kubernetes makes it
 * (pkg/controller/podautoscaler: replica_calculator.go and
 * normalizeDesiredReplicasWithBehaviors in horizontal.go), step by step:
 *
 *   1. proposal (hpa_proposal): per metric, ratio = current / target; within
 *      the tolerance of 1 the metric proposes the replicas there are, else
 *      ceil(ratio * replicas); the largest proposal wins.
 *   2. a count outside min..max goes straight to the bound (the controller
 *      does so before looking at metrics).
 *   3. stabilization: the proposal joins the recommendations of the last
 *      windows; scaling up goes no higher than the lowest recommendation of
 *      the up window, scaling down no lower than the highest of the down
 *      window - so one high reading does not scale up while the window
 *      remembers low ones, and a dip does not scale down for 300 s.
 *   4. rate: each policy allows, from the replicas at the start of its
 *      period (the count now less what scale events in the period added,
 *      plus what they removed), +value pods or ceil(*(1 + value/100)) up,
 *      -value pods or floor(*(1 - value/100)) down; Max picks the policy
 *      allowing the largest change, Min the smallest, Disabled none. A
 *      limit never undoes past scaling (up: not below the count now).
 *   5. the result is clamped to min..max; a change is a scale event.
 *   A fresh autoscaler remembers the count it finds, which bounds scaling
 *   down (not up) for its first down window.
 *
 * Invariants: the result is within min..max whenever the count given is;
 * recommendations and events are kept newest last in rings of HPA_HISTORY
 * (older ones fall out first, so a window longer than HPA_HISTORY
 * decisions is cut short).
 *
 * Threading: none; the caller owns the struct.
 */
#include "control/hpa.h"

#include <limits.h>
#include <math.h>
#include <string.h>

#include "core/err.h"

void hpa_config_default(struct hpa_config *cfg, int min_replicas, int max_replicas)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->min_replicas = min_replicas;
	cfg->max_replicas = max_replicas;
	cfg->tolerance = 0.1;
	cfg->up.stabilization_ms = 0;
	cfg->up.select = HPA_SELECT_MAX;
	cfg->up.npolicies = 2;
	cfg->up.policies[0] = (struct hpa_policy){HPA_PODS, 4, 15000};
	cfg->up.policies[1] = (struct hpa_policy){HPA_PERCENT, 100, 15000};
	cfg->down.stabilization_ms = 300000;
	cfg->down.select = HPA_SELECT_MAX;
	cfg->down.npolicies = 1;
	cfg->down.policies[0] = (struct hpa_policy){HPA_PERCENT, 100, 15000};
}

void hpa_config_seed_webhook_workers(struct hpa_config *cfg)
{
	hpa_config_default(cfg, 10, 100);
	cfg->up.stabilization_ms = 60000;
	cfg->up.policies[0] = (struct hpa_policy){HPA_PODS, 10, 60000};
	cfg->up.policies[1] = (struct hpa_policy){HPA_PERCENT, 100, 60000};
	cfg->down.stabilization_ms = 300000;
	cfg->down.policies[0] = (struct hpa_policy){HPA_PERCENT, 10, 60000};
}

static int rules_ok(const struct hpa_rules *r)
{
	if (r->stabilization_ms < 0 || r->npolicies < 0 || r->npolicies > HPA_MAX_POLICIES ||
	    (unsigned)r->select > HPA_SELECT_DISABLED)
		return 0;
	for (int i = 0; i < r->npolicies; i++) {
		const struct hpa_policy *p = &r->policies[i];
		if (p->value < 1 || p->period_ms < 1 || (unsigned)p->type > HPA_PERCENT)
			return 0;
	}
	return 1;
}

int hpa_init(struct hpa *h, const struct hpa_config *cfg)
{
	if (cfg->min_replicas < 1 || cfg->max_replicas < cfg->min_replicas || cfg->tolerance < 0 ||
	    cfg->tolerance > 1 || !rules_ok(&cfg->up) || !rules_ok(&cfg->down))
		return ERR_INVAL;
	memset(h, 0, sizeof(*h));
	h->cfg = *cfg;
	return 0;
}

int hpa_proposal(int current_replicas, const struct hpa_metric *m, int n, double tolerance)
{
	int best = -1;
	for (int i = 0; i < n; i++) {
		if (!(m[i].target > 0))
			continue;
		double ratio = m[i].current / m[i].target;
		int want = current_replicas;
		if (fabs(ratio - 1.0) > tolerance) {
			double r = ceil(ratio * current_replicas);
			want = r > INT_MAX ? INT_MAX : (int)r;
		}
		if (want > best)
			best = want;
	}
	return best < 0 ? current_replicas : best;
}

/* The i-th newest entry of a ring whose newest is at head - 1. */
static int ring_at(int head, int i)
{
	return ((head - 1 - i) % HPA_HISTORY + HPA_HISTORY) % HPA_HISTORY;
}

static void remember(struct hpa *h, int64_t now_ms, int replicas)
{
	h->recs[h->rec_head] = (struct hpa_recommendation){now_ms, replicas};
	h->rec_head = (h->rec_head + 1) % HPA_HISTORY;
	if (h->nrecs < HPA_HISTORY)
		h->nrecs++;
}

/* stabilize: step 3 above; the proposal is remembered afterwards. */
static int stabilize(struct hpa *h, int current, int proposal, int64_t now_ms)
{
	int up = proposal, down = proposal;
	if (h->born_ms > now_ms - h->cfg.down.stabilization_ms && h->born_replicas > down)
		down = h->born_replicas;
	for (int i = 0; i < h->nrecs; i++) {
		const struct hpa_recommendation *r = &h->recs[ring_at(h->rec_head, i)];
		if (r->at_ms > now_ms - h->cfg.up.stabilization_ms && r->replicas < up)
			up = r->replicas;
		if (r->at_ms > now_ms - h->cfg.down.stabilization_ms && r->replicas > down)
			down = r->replicas;
	}
	remember(h, now_ms, proposal);
	int rec = current;
	if (rec < up)
		rec = up;
	if (rec > down)
		rec = down;
	return rec;
}

/* Replicas added and removed by scale events within period_ms before now. */
static void changes_in(const struct hpa *h, int64_t period_ms, int64_t now_ms, int *added,
                       int *removed)
{
	*added = *removed = 0;
	for (int i = 0; i < h->nevents; i++) {
		const struct hpa_event *e = &h->events[ring_at(h->event_head, i)];
		if (e->at_ms <= now_ms - period_ms)
			continue;
		if (e->change > 0)
			*added += e->change;
		else
			*removed -= e->change;
	}
}

/* limit: the furthest step 4 lets the count go in direction up (1) or down (0). */
static int limit(const struct hpa *h, const struct hpa_rules *r, int up, int current,
                 int64_t now_ms)
{
	int pick_max = (r->select == HPA_SELECT_MAX) == up; /* the most change */
	int result = pick_max ? INT_MIN : INT_MAX;
	for (int i = 0; i < r->npolicies; i++) {
		const struct hpa_policy *p = &r->policies[i];
		int added, removed;
		changes_in(h, p->period_ms, now_ms, &added, &removed);
		int start = current - added + removed;
		double v;
		if (p->type == HPA_PODS)
			v = up ? (double)start + p->value : (double)start - p->value;
		else if (up)
			v = ceil(start * (1.0 + p->value / 100.0));
		else
			v = floor(start * (1.0 - p->value / 100.0));
		int proposed = v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
		if (pick_max ? proposed > result : proposed < result)
			result = proposed;
	}
	return result;
}

static void record_event(struct hpa *h, int64_t now_ms, int change)
{
	h->events[h->event_head] = (struct hpa_event){now_ms, change};
	h->event_head = (h->event_head + 1) % HPA_HISTORY;
	if (h->nevents < HPA_HISTORY)
		h->nevents++;
}

int hpa_decide(struct hpa *h, int current_replicas, int proposal, int64_t now_ms)
{
	const struct hpa_config *c = &h->cfg;
	int desired;
	if (current_replicas > c->max_replicas) {
		desired = c->max_replicas;
	} else if (current_replicas < c->min_replicas) {
		desired = c->min_replicas;
	} else {
		/* a fresh autoscaler does not scale down within its first down
		 * window (Kubernetes seeds that window with the count it finds) */
		if (h->nrecs == 0 && h->born_replicas == 0) {
			h->born_ms = now_ms;
			h->born_replicas = current_replicas;
		}
		desired = stabilize(h, current_replicas, proposal, now_ms);
		if (desired > current_replicas) {
			int cap = c->up.select == HPA_SELECT_DISABLED
			                  ? current_replicas
			                  : limit(h, &c->up, 1, current_replicas, now_ms);
			if (cap < current_replicas)
				cap = current_replicas;
			if (cap > c->max_replicas)
				cap = c->max_replicas;
			if (desired > cap)
				desired = cap;
		} else if (desired < current_replicas) {
			int floor_ = c->down.select == HPA_SELECT_DISABLED
			                     ? current_replicas
			                     : limit(h, &c->down, 0, current_replicas, now_ms);
			if (floor_ > current_replicas)
				floor_ = current_replicas;
			if (floor_ < c->min_replicas)
				floor_ = c->min_replicas;
			if (desired < floor_)
				desired = floor_;
		}
	}
	if (desired != current_replicas)
		record_event(h, now_ms, desired - current_replicas);
	return desired;
}
