/*
 * simulate.c - the capacity plan in fixed steps of one second: one pool of
 * replicas (the webhook workers, each a whole munim instance) behind one
 * queue, sized by the Kubernetes autoscaler of hpa.c with the festival
 * floor, against an offered rate the caller gives second by second.
 *
 * Each second (plan_sim_step):
 *   1. pods whose start-up is over become ready;
 *   2. arrivals: Poisson around the offered rate (a fixed-seed generator,
 *      so a run is the same every time);
 *   3. service: the ready replicas serve up to ready x per_instance_rps;
 *      what they cannot serve waits (a fluid queue);
 *   4. latency p95: service time, plus the 95th percentile of waiting in an
 *      M/M/1 queue at this utilisation (P(W > t) = rho e^(-mu(1-rho)t), so
 *      t95 = ln(20 rho) / (mu (1 - rho)), rho held below 0.99), plus the
 *      time to drain the queue ahead (depth / capacity); arrivals of a
 *      second whose drain time passes late_ms count as late (unavailable);
 *   5. the spike level (spike.c) from depth and p95;
 *   6. every sync period the autoscaler decides: each metric proposes
 *      replicas from the ready ones (CPU utilisation averaged since the
 *      last decision against the CPU target; queue depth per ready worker
 *      against depth_per_worker; p95 against the p95 target), the largest
 *      wins, raised to the festival floor (KEDA's cron trigger is one more
 *      metric); while pods are still starting it does not propose fewer
 *      than there are (Kubernetes leaves unready pods out of a scale-down);
 *      hpa_decide applies the windows and policies. New pods start; pods
 *      removed go at once, those still starting first.
 *
 * Memory is not simulated: a munim instance's memory does not grow with
 * its load (docs/performance.md: RSS flat at 23-25 MB over a 600 s soak),
 * so the memory target never drives the count.
 *
 * Threading: none; the caller owns the struct.
 */
#include "plan/plan.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/rng.h"
#include "core/xalloc.h"

/* uniform in (0, 1) */
static double rng_unit(uint64_t *s)
{
	return ((double)(rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

/* Poisson arrivals with mean lambda: Knuth's product of uniforms while
 * small, the normal approximation (Box-Muller) above 30. */
static int64_t poisson(uint64_t *s, double lambda)
{
	if (!(lambda > 0))
		return 0;
	if (lambda < 30) {
		double limit = exp(-lambda), p = 1.0;
		int64_t k = 0;
		do {
			k++;
			p *= rng_unit(s);
		} while (p > limit);
		return k - 1;
	}
	double u1 = rng_unit(s), u2 = rng_unit(s);
	double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
	double v = floor(lambda + sqrt(lambda) * z + 0.5);
	return v < 0 ? 0 : (int64_t)v;
}

/* The day's shape before scaling, h hours into the IST day: a night
 * floor, a daytime plateau (08:00-22:00, smooth edges), a morning peak at
 * 11:00 and a higher evening one at 19:30. */
static double curve_raw(double h)
{
	double day = 0.08 / (1 + exp(-(h - 8.0) / 0.6)) / (1 + exp((h - 22.0) / 0.6));
	double am = 0.55 * exp(-0.5 * pow((h - 11.0) / 1.1, 2));
	double pm = 0.9 * exp(-0.5 * pow((h - 19.5) / 1.1, 2));
	return 0.02 + day + am + pm;
}

double plan_curve(int64_t wall_ms)
{
	double h = (double)(wall_ms - clock_ist_day_start(wall_ms)) / 3600000.0;
	double v = curve_raw(h) / curve_raw(19.5);
	return v > 1.0 ? 1.0 : v;
}

int plan_replicas_needed(const struct plan_settings *ps, double per_instance_rps, double offered)
{
	double per = per_instance_rps * ps->cpu_pct / 100.0;
	double n = per > 0 ? ceil(offered / per - 1e-9) : 0;
	return n > 1e9 ? 1000000000 : n < 0 ? 0 : (int)n;
}

int plan_festival_floor(const struct plan_settings *ps, int64_t wall_ms)
{
	if (!festival_at(&ps->cal, wall_ms))
		return 0;
	double want = ceil(ps->baseline_workers * festival_multiplier(&ps->cal, wall_ms) - 1e-9);
	return want > ps->hpa.max_replicas ? ps->hpa.max_replicas : (int)want;
}

static int pods_ready(const struct plan_sim *s)
{
	int n = 0;
	for (int i = 0; i < s->npods; i++)
		if (s->pods[i].ready_at_ms <= s->now_ms)
			n += s->pods[i].count;
	return n;
}

static void pods_add(struct plan_sim *s, int count, int64_t ready_at)
{
	if (s->npods == s->podcap) {
		s->podcap = s->podcap ? s->podcap * 2 : 16;
		s->pods = xrealloc(s->pods, (size_t)s->podcap * sizeof(*s->pods));
	}
	s->pods[s->npods++] = (struct plan_pods){ready_at, count};
}

/* Removes count pods, the newest (still starting) first. */
static void pods_remove(struct plan_sim *s, int count)
{
	while (count > 0 && s->npods > 0) {
		struct plan_pods *p = &s->pods[s->npods - 1];
		int take = p->count < count ? p->count : count;
		p->count -= take;
		count -= take;
		if (p->count == 0)
			s->npods--;
	}
}

/* Merges the ready groups into one, so the list stays short. */
static void pods_compact(struct plan_sim *s)
{
	int ready = 0, j = 0;
	for (int i = 0; i < s->npods; i++) {
		if (s->pods[i].ready_at_ms <= s->now_ms)
			ready += s->pods[i].count;
		else
			s->pods[j++] = s->pods[i];
	}
	if (ready > 0) {
		memmove(s->pods + 1, s->pods, (size_t)j * sizeof(*s->pods));
		s->pods[0] = (struct plan_pods){INT64_MIN, ready};
		j++;
	}
	s->npods = j;
}

int plan_sim_init(struct plan_sim *s, const struct plan_settings *ps,
                  const struct plan_sim_config *c, int64_t start_ms, double initial_rate)
{
	memset(s, 0, sizeof(*s));
	if (!(c->per_instance_rps > 0) || c->pod_startup_ms < 0 || !(c->service_ms >= 0) ||
	    ps->sync_ms < 1000 || ps->cpu_pct < 1 || ps->depth_per_worker < 1 || ps->p95_ms < 1 ||
	    !(initial_rate >= 0))
		return ERR_INVAL;
	s->cfg = *c;
	s->ps = ps;
	if (hpa_init(&s->hpa, &ps->hpa) != 0 || spike_init(&s->spike, &c->spike) != 0)
		return ERR_INVAL;
	s->rng = c->seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
	if (s->rng == 0)
		s->rng = 1;
	s->now_ms = start_ms;
	s->next_decision_ms = start_ms + ps->sync_ms;
	int n = plan_replicas_needed(ps, c->per_instance_rps, initial_rate);
	int fl = plan_festival_floor(ps, start_ms);
	if (n < fl)
		n = fl;
	if (n < ps->hpa.min_replicas)
		n = ps->hpa.min_replicas;
	if (n > ps->hpa.max_replicas)
		n = ps->hpa.max_replicas;
	s->replicas = n;
	pods_add(s, n, INT64_MIN);
	s->p95_ms = c->service_ms;
	return 0;
}

void plan_sim_release(struct plan_sim *s)
{
	free(s->pods);
	s->pods = NULL;
	s->npods = s->podcap = 0;
}

static void decide(struct plan_sim *s, int ready)
{
	const struct plan_settings *ps = s->ps;
	double cpu = s->cpu_n ? s->cpu_sum / s->cpu_n : 0;
	s->cpu_sum = 0;
	s->cpu_n = 0;
	int base = ready > 0 ? ready : 1;
	struct hpa_metric m[3] = {
	        {cpu, (double)ps->cpu_pct},
	        {s->depth / base, (double)ps->depth_per_worker},
	        {s->p95_ms, (double)ps->p95_ms},
	};
	int proposal = hpa_proposal(base, m, 3, ps->hpa.tolerance);
	int fl = plan_festival_floor(ps, s->now_ms);
	if (proposal < fl)
		proposal = fl;
	if (ready < s->replicas && proposal < s->replicas)
		proposal = s->replicas;
	int want = hpa_decide(&s->hpa, s->replicas, proposal, s->now_ms);
	if (want > s->replicas)
		pods_add(s, want - s->replicas, s->now_ms + s->cfg.pod_startup_ms);
	else if (want < s->replicas)
		pods_remove(s, s->replicas - want);
	s->replicas = want;
	pods_compact(s);
}

void plan_sim_step(struct plan_sim *s, double offered, struct plan_second *out)
{
	const struct plan_sim_config *c = &s->cfg;
	memset(out, 0, sizeof(*out));
	out->at_ms = s->now_ms;
	out->offered = offered;
	int ready = pods_ready(s);
	int64_t arrived = poisson(&s->rng, offered);
	double capacity = ready * c->per_instance_rps;
	double work = s->depth + (double)arrived;
	double served = work < capacity ? work : capacity;
	s->depth = work - served;
	if (s->depth < 1e-9)
		s->depth = 0;
	double rho = capacity > 0 ? served / capacity : 1.0;
	s->cpu_sum += rho * 100.0;
	s->cpu_n++;
	/* latency: service, M/M/1 waiting at this utilisation, the backlog */
	double mu = c->per_instance_rps, r = rho < 0.99 ? rho : 0.99;
	double wait_s = 20 * r > 1 ? log(20 * r) / (mu * (1 - r)) : 0;
	double drain_s = capacity > 0 ? s->depth / capacity : 86400.0;
	s->p95_ms = c->service_ms + 1000.0 * (wait_s + drain_s);
	if (1000.0 * drain_s + c->service_ms > (double)c->late_ms)
		out->late = arrived;
	struct spike_signals sig = {(int64_t)s->depth, (int64_t)s->p95_ms, 0};
	out->spike = spike_update(&s->spike, &sig, s->now_ms, NULL);

	out->arrived = arrived;
	out->served = served;
	out->depth = s->depth;
	out->cpu_pct = rho * 100.0;
	out->p95_ms = s->p95_ms;
	s->now_ms += 1000;
	if (s->now_ms >= s->next_decision_ms) {
		decide(s, pods_ready(s));
		s->next_decision_ms += s->ps->sync_ms;
	}
	out->replicas = s->replicas;
	out->ready = pods_ready(s);
	out->floor = plan_festival_floor(s->ps, out->at_ms);
}
