/*
 * report.c - a profile's run of the simulation and its report.
 *
 * The offered rate at an instant is
 *
 *   normal_peak_qps x tenants / 100,000 x plan_curve(t) x multiplier(t)
 *
 * where multiplier(t) is the festival calendar's (festival_multiplier:
 * the seed gives traffic only as "festival 10x", so the plan's capacity
 * multipliers stand for the traffic too) for a festival profile, and 1 for
 * "normal". The simulation starts a day before the reported minutes (a
 * warm-up, not printed) so the autoscaler's windows and the queue are in
 * their state of the previous day.
 *
 * The report: a header; one line per minute (time IST, mean offered rate,
 * replicas at the minute's end - all, ready, the festival floor - the
 * deepest queue, the highest p95 estimate and spike level of the minute);
 * a summary against the SLOs; the weak spots found, each from figures of
 * the run. With csv, the minutes are CSV and the rest comment lines ('#').
 *
 * Threading: none.
 */
#include "plan/plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"

/* One reported minute. */
struct minute {
	int64_t at_ms;
	double offered; /* mean over the minute, /s */
	int replicas, ready, floor, needed;
	double depth_max, p95_max;
	int spike_max;
};

static void hhmm(char *out, size_t cap, int64_t wall_ms, int with_date)
{
	int y, m, d;
	clock_ist_date(wall_ms, &y, &m, &d);
	int64_t into = wall_ms - clock_ist_day_start(wall_ms);
	if (with_date)
		snprintf(out, cap, "%04d-%02d-%02d %02d:%02d", y, m, d, (int)(into / 3600000),
		         (int)(into / 60000 % 60));
	else
		snprintf(out, cap, "%02d:%02d", (int)(into / 3600000), (int)(into / 60000 % 60));
}

/* The profile's day (00:00 IST) and whether its traffic follows the
 * calendar. */
static int profile_day(const struct plan_settings *ps, const char *profile, int64_t *day,
                       int *festive, char *err, size_t errcap)
{
	if (strcmp(profile, "normal") == 0) {
		*festive = 0;
		return festival_date_ms(PLAN_NORMAL_YEAR, PLAN_NORMAL_MONTH, PLAN_NORMAL_DAY, day);
	}
	*festive = 1;
	const struct festival_window *best = NULL;
	for (int i = 0; i < ps->cal.n; i++) {
		const struct festival_window *w = &ps->cal.w[i];
		if (w->kind == FESTIVAL_PEAK && strcmp(w->name, profile) == 0 &&
		    (!best || w->start_ms < best->start_ms))
			best = w;
	}
	if (!best) {
		snprintf(err, errcap,
		         "unknown profile \"%.40s\": \"normal\", or the name of a festival with a "
		         "peak window in the festival calendar (the seed's: diwali, newyear)",
		         profile);
		return ERR_INVAL;
	}
	*day = best->start_ms;
	return 0;
}

static double offered_at(const struct plan_settings *ps, const struct plan_run_opts *o, int festive,
                         int64_t t)
{
	double rate = (double)o->normal_peak_qps * (double)o->tenants / 100000.0 * plan_curve(t);
	return festive ? rate * festival_multiplier(&ps->cal, t) : rate;
}

/* Figures the summary and the weak spots are made of. */
struct totals {
	int64_t arrived, late;
	int over_slo, lagging, lag_startup, above_max_minutes;
	double depth_max, offered_max, p95_max;
	int64_t depth_max_at, offered_max_at, p95_max_at;
	int replicas_max, replicas_min, shortfall_max;
	int64_t replicas_max_at, shortfall_at;
	int floor_max;
	double excess_replica_min; /* after the busiest minute, above max(need, floor, min) */
	double after_replica_min;  /* all replica-minutes after the busiest minute */
	int spike_max;
	double rise_max; /* the largest rise of the offered rate from one minute to the next */
	int64_t rise_at;
	char rise_text[16];
};

static const char *when_rise(const struct totals *t)
{
	return t->rise_text;
}

static void print_minute(struct buf *out, const struct minute *m, int csv)
{
	char t[32];
	hhmm(t, sizeof(t), m->at_ms, 1);
	if (csv)
		buf_printf(out, "%s,%.1f,%d,%d,%d,%d,%.0f,%.0f,%d\n", t, m->offered, m->replicas,
		           m->ready, m->floor, m->needed, m->depth_max, m->p95_max, m->spike_max);
	else
		buf_printf(out, "%-16s %9.1f %8d %6d %6d %7d %10.0f %9.0f  %d %s\n", t, m->offered,
		           m->replicas, m->ready, m->floor, m->needed, m->depth_max, m->p95_max,
		           m->spike_max, spike_level_name(m->spike_max));
}

/* The weak spots: each a sentence from the run's own figures. */
static void weak_spots(struct buf *out, const char *pre, const struct plan_settings *ps,
                       const struct plan_sim_config *c, const struct totals *t)
{
	const struct hpa_config *h = &ps->hpa;
	double ceiling = h->max_replicas * c->per_instance_rps;
	double at_target = ceiling * ps->cpu_pct / 100.0;
	int need_peak = plan_replicas_needed(ps, c->per_instance_rps, t->offered_max);
	char when[32];
	int n = 0;
	hhmm(when, sizeof(when), t->offered_max_at, 0);
	if (ceiling < t->offered_max) {
		buf_printf(out,
		           "%s- capacity ceiling: the autoscaler's maximum, %d replicas x %.1f/s = "
		           "%.0f/s, is below the busiest minute's %.0f/s (%s IST): the queue grows "
		           "for %d minutes; the peak needs %d replicas at the %d %% CPU target\n",
		           pre, h->max_replicas, c->per_instance_rps, ceiling, t->offered_max, when,
		           t->above_max_minutes, need_peak, ps->cpu_pct);
		n++;
	} else if (at_target < t->offered_max) {
		buf_printf(
		        out,
		        "%s- capacity ceiling: %d replicas carry the busiest minute's %.0f/s only "
		        "above the %d %% CPU target (at the target: %.0f/s); no headroom for a "
		        "failed zone or a slow provider\n",
		        pre, h->max_replicas, t->offered_max, ps->cpu_pct, at_target);
		n++;
	}
	/* the festival floors the maximum cuts */
	for (int i = 0; i < ps->cal.n; i++) {
		const struct festival_window *w = &ps->cal.w[i];
		double want = ceil(ps->baseline_workers * w->multiplier - 1e-9);
		if (want > h->max_replicas) {
			char d[32];
			hhmm(d, sizeof(d), w->start_ms, 1);
			buf_printf(
			        out,
			        "%s- festival floor cut: %s %s (%.10s, %gx) asks for %.0f workers "
			        "(%d x %g), the maximum is %d\n",
			        pre, w->name, w->phase, d, w->multiplier, want,
			        ps->baseline_workers, w->multiplier, h->max_replicas);
			n++;
		}
	}
	if (t->floor_max > 0 && need_peak * 4 <= t->floor_max) {
		buf_printf(
		        out,
		        "%s- over-provisioned: the festival floor holds %d replicas while the "
		        "busiest minute needs %d at the %d %% CPU target (%.1f/s each): the floor "
		        "is sized for a slower worker than this one\n",
		        pre, t->floor_max, need_peak, ps->cpu_pct, c->per_instance_rps);
		n++;
	}
	if (t->lagging > 0) {
		char at[32];
		hhmm(at, sizeof(at), t->shortfall_at, 0);
		buf_printf(
		        out,
		        "%s- scale-up lag: %d minutes with fewer ready replicas than the load "
		        "needed "
		        "(largest shortfall %d at %s IST); the policies allow +max(%d pods, %d %%) "
		        "per %llds after a %llds window, and a pod serves %llds after it is made; "
		        "%d of those minutes only the start-up kept replicas from serving\n",
		        pre, t->lagging, t->shortfall_max, at, h->up.policies[0].value,
		        h->up.policies[1].value, (long long)(h->up.policies[0].period_ms / 1000),
		        (long long)(h->up.stabilization_ms / 1000),
		        (long long)(c->pod_startup_ms / 1000), t->lag_startup);
		n++;
	}
	/* slow: a tenth or more of the replica-minutes after the busiest one
	 * were more than the load, the floor and the minimum asked for */
	int slow_down =
	        t->excess_replica_min >= 60 && t->excess_replica_min * 10 >= t->after_replica_min;
	if (slow_down) {
		/* from the day's most replicas to the minimum: the window, then one
		 * policy period per step (a step removes at least one) */
		int r = t->replicas_max, steps = 0;
		while (r > h->min_replicas && steps < 100000) {
			double next = floor(r * (1 - h->down.policies[0].value / 100.0));
			r = next < r ? (int)next : r - 1;
			steps++;
		}
		int64_t minutes =
		        (h->down.stabilization_ms + steps * h->down.policies[0].period_ms) / 60000;
		buf_printf(out,
		           "%s- slow scale-down: after the busiest minute %.0f replica-hours (%.0f "
		           "%%) "
		           "above what the load, the floor and the minimum asked for; the %llds "
		           "window and "
		           "%d %% per %llds take %lld min from %d to %d replicas\n",
		           pre, t->excess_replica_min / 60.0,
		           100.0 * t->excess_replica_min / t->after_replica_min,
		           (long long)(h->down.stabilization_ms / 1000), h->down.policies[0].value,
		           (long long)(h->down.policies[0].period_ms / 1000), (long long)minutes,
		           t->replicas_max, h->min_replicas);
		n++;
	}
	if (n == 0)
		buf_printf(out, "%s- none found on this day at %.1f/s per instance\n", pre,
		           c->per_instance_rps);
	/* what was checked and held */
	buf_printf(out, "%sheld\n", pre);
	if (t->lagging == 0)
		buf_printf(
		        out,
		        "%s- scale-up kept pace: the steepest rise, +%.0f/s in a minute (%s IST), "
		        "never left fewer ready replicas than the load needed\n",
		        pre, t->rise_max, when_rise(t));
	if (ceiling >= t->offered_max)
		buf_printf(out,
		           "%s- capacity: %d replicas x %.1f/s = %.0f/s covers the busiest "
		           "minute's %.0f/s\n",
		           pre, h->max_replicas, c->per_instance_rps, ceiling, t->offered_max);
	if (!slow_down)
		buf_printf(out,
		           "%s- scale-down: %.0f replica-hours (%.0f %%) above need after the "
		           "busiest minute\n",
		           pre, t->excess_replica_min / 60.0,
		           t->after_replica_min > 0
		                   ? 100.0 * t->excess_replica_min / t->after_replica_min
		                   : 0.0);
}

int plan_run(const struct plan_settings *ps, const struct plan_sim_config *c,
             const struct plan_run_opts *o, struct buf *out, char *err, size_t errcap)
{
	int64_t day;
	int festive;
	if (errcap)
		err[0] = '\0';
	if (o->tenants < 1 || o->normal_peak_qps < 1 || o->minutes < 1) {
		snprintf(err, errcap, "tenants, normal-peak-qps and minutes must be at least 1");
		return ERR_INVAL;
	}
	int rc = profile_day(ps, o->profile, &day, &festive, err, errcap);
	if (rc != 0)
		return rc;
	int64_t start = day - FESTIVAL_DAY_MS;
	struct plan_sim sim;
	if (plan_sim_init(&sim, ps, c, start, offered_at(ps, o, festive, start)) != 0) {
		snprintf(err, errcap, "simulation settings out of bounds");
		return ERR_INVAL;
	}
	const char *pre = o->csv ? "# " : "";
	char d0[32];
	hhmm(d0, sizeof(d0), day, 1);
	buf_printf(out,
	           "%smunim plan simulate: profile %s, %lld tenants, normal peak %lld/s at 100,000 "
	           "tenants, %.1f/s per instance, pod start-up %llds, service %.0f ms\n",
	           pre, o->profile, (long long)o->tenants, (long long)o->normal_peak_qps,
	           c->per_instance_rps, (long long)(c->pod_startup_ms / 1000), c->service_ms);
	buf_printf(out,
	           "%sautoscaler: %d..%d replicas, CPU %d %%, depth %lld per worker, p95 %lld ms, "
	           "decisions every %llds; festival floor %d x multiplier; from %.10s 00:00 IST, "
	           "%lld minutes (a day of warm-up before)\n",
	           pre, ps->hpa.min_replicas, ps->hpa.max_replicas, ps->cpu_pct,
	           (long long)ps->depth_per_worker, (long long)ps->p95_ms,
	           (long long)(ps->sync_ms / 1000), ps->baseline_workers, d0,
	           (long long)o->minutes);
	if (o->csv)
		buf_puts(out,
		         "time_ist,offered_per_s,replicas,ready,floor,needed,depth,p95_ms,spike\n");
	else
		buf_printf(out, "%-16s %9s %8s %6s %6s %7s %10s %9s  %s\n", "time (IST)",
		           "offered/s", "replicas", "ready", "floor", "needed", "depth", "p95 ms",
		           "spike");

	struct totals t = {0};
	t.replicas_min = ps->hpa.max_replicas + 1;
	int64_t end = day + o->minutes * 60000;
	struct minute m = {0};
	double offered_sum = 0;
	struct minute *mins = xcalloc((size_t)o->minutes, sizeof(*mins));
	int nmins = 0;
	for (int64_t now = start; now < end; now += 1000) {
		struct plan_second s;
		double rate = offered_at(ps, o, festive, now);
		plan_sim_step(&sim, rate, &s);
		if (now < day)
			continue;
		int64_t sec = (now - day) / 1000;
		if (sec % 60 == 0) {
			memset(&m, 0, sizeof(m));
			m.at_ms = now;
			offered_sum = 0;
		}
		offered_sum += rate;
		if (s.depth > m.depth_max)
			m.depth_max = s.depth;
		if (s.p95_ms > m.p95_max)
			m.p95_max = s.p95_ms;
		if (s.spike > m.spike_max)
			m.spike_max = s.spike;
		t.arrived += s.arrived;
		t.late += s.late;
		if (s.depth > t.depth_max) {
			t.depth_max = s.depth;
			t.depth_max_at = now;
		}
		if (s.p95_ms > t.p95_max) {
			t.p95_max = s.p95_ms;
			t.p95_max_at = now;
		}
		if (sec % 60 != 59)
			continue;
		m.offered = offered_sum / 60.0;
		m.replicas = s.replicas;
		m.ready = s.ready;
		m.floor = s.floor;
		m.needed = plan_replicas_needed(ps, c->per_instance_rps, m.offered);
		mins[nmins++] = m;
		print_minute(out, &m, o->csv);
	}
	plan_sim_release(&sim);

	/* the summary's figures, minute by minute */
	int busiest = 0;
	for (int i = 0; i < nmins; i++) {
		const struct minute *x = &mins[i];
		if (i > 0 && x->offered - mins[i - 1].offered > t.rise_max) {
			t.rise_max = x->offered - mins[i - 1].offered;
			t.rise_at = x->at_ms;
		}
		if (x->offered > t.offered_max) {
			t.offered_max = x->offered;
			t.offered_max_at = x->at_ms;
			busiest = i;
		}
		if (x->p95_max > (double)c->slo_p95_ms)
			t.over_slo++;
		if (x->replicas > t.replicas_max) {
			t.replicas_max = x->replicas;
			t.replicas_max_at = x->at_ms;
		}
		if (x->replicas < t.replicas_min)
			t.replicas_min = x->replicas;
		if (x->floor > t.floor_max)
			t.floor_max = x->floor;
		if (x->spike_max > t.spike_max)
			t.spike_max = x->spike_max;
		if (x->offered > ps->hpa.max_replicas * c->per_instance_rps)
			t.above_max_minutes++;
		/* lagging: fewer ready than the load needs at full use, while the
		 * maximum would have had room */
		int full = (int)ceil(x->offered / c->per_instance_rps - 1e-9);
		int cap = full < ps->hpa.max_replicas ? full : ps->hpa.max_replicas;
		if (x->ready < cap) {
			t.lagging++;
			if (x->replicas >= cap)
				t.lag_startup++;
			if (cap - x->ready > t.shortfall_max) {
				t.shortfall_max = cap - x->ready;
				t.shortfall_at = x->at_ms;
			}
		}
	}
	for (int i = busiest + 1; i < nmins; i++) {
		const struct minute *x = &mins[i];
		int want = x->needed > x->floor ? x->needed : x->floor;
		if (want < ps->hpa.min_replicas)
			want = ps->hpa.min_replicas;
		if (want > ps->hpa.max_replicas)
			want = ps->hpa.max_replicas;
		if (x->replicas > want)
			t.excess_replica_min += x->replicas - want;
		t.after_replica_min += x->replicas;
	}
	free(mins);
	hhmm(t.rise_text, sizeof(t.rise_text), t.rise_at, 0);
	if (nmins == 0)
		t.replicas_min = 0;

	double avail = t.arrived ? 100.0 * (double)(t.arrived - t.late) / (double)t.arrived : 100.0;
	int p95_ok = t.over_slo == 0, avail_ok = avail >= c->slo_availability_pct;
	char a1[32], a2[32], a3[32];
	hhmm(a1, sizeof(a1), t.offered_max_at, 0);
	hhmm(a2, sizeof(a2), t.depth_max_at, 0);
	hhmm(a3, sizeof(a3), t.replicas_max_at, 0);
	buf_printf(out, "%ssummary\n", pre);
	buf_printf(out, "%s  messages offered: %lld; busiest minute %s IST at %.0f/s\n", pre,
	           (long long)t.arrived, a1, t.offered_max);
	buf_printf(out, "%s  minutes over the p95 SLO (%lld ms): %d of %d; highest p95 %.0f ms\n",
	           pre, (long long)c->slo_p95_ms, t.over_slo, nmins, t.p95_max);
	if (t.depth_max > 0)
		buf_printf(out, "%s  max queue depth: %.0f (%s IST)", pre, t.depth_max, a2);
	else
		buf_printf(out, "%s  max queue depth: 0", pre);
	buf_printf(out, "; highest spike level %d (%s)\n", t.spike_max,
	           spike_level_name(t.spike_max));
	buf_printf(out, "%s  max replicas: %d (%s IST); fewest %d\n", pre, t.replicas_max, a3,
	           t.replicas_min);
	buf_printf(out, "%s  availability: %.3f %% (answered within %lld ms)\n", pre, avail,
	           (long long)c->late_ms);
	buf_printf(out, "%s  SLO p95 < %lld ms: %s\n", pre, (long long)c->slo_p95_ms,
	           p95_ok ? "holds" : "fails");
	buf_printf(out, "%s  SLO availability >= %g %%: %s\n", pre, c->slo_availability_pct,
	           avail_ok ? "holds" : "fails");
	buf_printf(out, "%sweak spots\n", pre);
	weak_spots(out, pre, ps, c, &t);
	return 0;
}
