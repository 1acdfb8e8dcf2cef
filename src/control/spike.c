/*
 * spike.c - the traffic spike level with hysteresis.
 *
 * The seed's handle_traffic_spike checks four conditions in turn, each
 * raising the level:
 *
 *   1 elevated    depth > 500   or p95 > 1 s
 *   2 high        depth > 2000  or p95 > 2 s
 *   3 critical    depth > 5000  or webhook errors > 1 %
 *   4 emergency   depth > 10000 or webhook errors > 5 %
 *
 * A level is reached as soon as its condition holds. Leaving it waits
 * (hold.h): only when the signals have stayed below the current level for
 * hold_ms, without a break, does the level drop - one step - and the wait
 * starts again for the next. A queue that drains and refills within the
 * hold does not make P3 pause and resume each time (no flapping).
 *
 * Invariant: 0 <= level <= 4.
 *
 * Threading: none; the caller owns the struct.
 */
#include "control/spike.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

void spike_config_default(struct spike_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->depth[1] = 500;
	cfg->depth[2] = 2000;
	cfg->depth[3] = 5000;
	cfg->depth[4] = 10000;
	cfg->p95_ms[1] = 1000;
	cfg->p95_ms[2] = 2000;
	cfg->error_pct[3] = 1.0;
	cfg->error_pct[4] = 5.0;
	cfg->hold_ms = 60000;
}

int spike_init(struct spike *s, const struct spike_config *cfg)
{
	if (cfg->hold_ms < 0)
		return ERR_INVAL;
	int64_t depth = 0, p95 = 0;
	double err = 0;
	for (int l = 1; l < SPIKE_LEVELS; l++) {
		/* each threshold set must rise with the level (0: not a trigger) */
		if (cfg->depth[l] < 0 || cfg->p95_ms[l] < 0 || cfg->error_pct[l] < 0 ||
		    (cfg->depth[l] && cfg->depth[l] <= depth) ||
		    (cfg->p95_ms[l] && cfg->p95_ms[l] <= p95) ||
		    (cfg->error_pct[l] > 0 && cfg->error_pct[l] <= err))
			return ERR_INVAL;
		if (cfg->depth[l])
			depth = cfg->depth[l];
		if (cfg->p95_ms[l])
			p95 = cfg->p95_ms[l];
		if (cfg->error_pct[l] > 0)
			err = cfg->error_pct[l];
	}
	memset(s, 0, sizeof(*s));
	s->cfg = *cfg;
	hold_init(&s->hold, cfg->hold_ms);
	return 0;
}

/* meets: the signals meet level l's condition; which one, in *why. */
static int meets(const struct spike_config *c, const struct spike_signals *sig, int l, int *why)
{
	if (c->depth[l] && sig->depth > c->depth[l]) {
		*why = 0;
		return 1;
	}
	if (c->p95_ms[l] && sig->p95_ms > c->p95_ms[l]) {
		*why = 1;
		return 1;
	}
	if (c->error_pct[l] > 0 && sig->error_pct > c->error_pct[l]) {
		*why = 2;
		return 1;
	}
	return 0;
}

int spike_level_of(const struct spike_config *cfg, const struct spike_signals *sig)
{
	int level = 0, why;
	for (int l = 1; l < SPIKE_LEVELS; l++)
		if (meets(cfg, sig, l, &why))
			level = l;
	return level;
}

int spike_update(struct spike *s, const struct spike_signals *sig, int64_t now_ms, int *changed)
{
	return hold_step(&s->hold, spike_level_of(&s->cfg, sig), now_ms, changed);
}

const char *spike_reason(const struct spike_config *cfg, const struct spike_signals *sig, char *out,
                         size_t cap)
{
	int level = spike_level_of(cfg, sig), why = 0;
	if (level == 0 || !meets(cfg, sig, level, &why)) {
		snprintf(out, cap, "all signals below level 1");
		return out;
	}
	if (why == 0)
		snprintf(out, cap, "queue depth %lld > %lld", (long long)sig->depth,
		         (long long)cfg->depth[level]);
	else if (why == 1)
		snprintf(out, cap, "latency p95 %lld ms > %lld ms", (long long)sig->p95_ms,
		         (long long)cfg->p95_ms[level]);
	else
		snprintf(out, cap, "webhook errors %.2f %% > %.2f %%", sig->error_pct,
		         cfg->error_pct[level]);
	return out;
}

const char *spike_level_name(int level)
{
	static const char *const names[SPIKE_LEVELS] = {"normal", "elevated", "high", "critical",
	                                                "emergency"};
	return level >= 0 && level < SPIKE_LEVELS ? names[level] : "unknown";
}
