/*
 * spike.h - the traffic spike level (the seed's handle_traffic_spike): 0
 * normal, 1 elevated, 2 high, 3 critical, 4 emergency, from queue depth,
 * message latency p95 and the webhook error rate, with hysteresis.
 *
 * Pure: the caller samples the signals and passes its clock (now_ms,
 * monotonic). One struct spike per controller, owned by one thread.
 */
#ifndef MUNIM_SPIKE_H
#define MUNIM_SPIKE_H

#include <stddef.h>
#include <stdint.h>

#include "control/hold.h"

#define SPIKE_LEVELS 5 /* 0..4 */

struct spike_config {
	int64_t depth[SPIKE_LEVELS];    /* [1..4]: 500, 2000, 5000, 10000 messages */
	int64_t p95_ms[SPIKE_LEVELS];   /* [1..2]: 1000, 2000 ms; 0: not a trigger */
	double error_pct[SPIKE_LEVELS]; /* [3..4]: 1 %, 5 %; 0: not a trigger */
	int64_t hold_ms;                /* a level is left only after this long below it (60,000) */
};

struct spike_signals {
	int64_t depth;    /* messages waiting (inbox + outbox) */
	int64_t p95_ms;   /* message latency p95 over the window */
	double error_pct; /* webhook requests answered with an error, % */
};

struct spike {
	struct spike_config cfg;
	struct hold hold; /* hold.level is the level */
};

/* spike_config_default: the seed's thresholds (above) and a 60 s hold. */
void spike_config_default(struct spike_config *cfg);

/* spike_init: level 0. 0, or ERR_INVAL when the thresholds of a signal do
 * not rise with the level, one is negative, or hold_ms is. */
int spike_init(struct spike *s, const struct spike_config *cfg);

/* spike_level_of: the highest level whose condition the signals meet (the
 * seed's IFs are checked in turn, each raising the level). */
int spike_level_of(const struct spike_config *cfg, const struct spike_signals *sig);

/*
 * spike_update: the level now. It rises at once to spike_level_of; it falls
 * one level at a time, each only after the signals have stayed below the
 * current level for hold_ms without a break. *changed (may be NULL) is 1
 * when the level moved.
 */
int spike_update(struct spike *s, const struct spike_signals *sig, int64_t now_ms, int *changed);

/*
 * spike_reason writes why the signals are at the level they are at (the
 * first condition of that level they meet, e.g. "queue depth 2345 > 2000"),
 * or "all signals below level 1" for 0. Returns out.
 */
const char *spike_reason(const struct spike_config *cfg, const struct spike_signals *sig, char *out,
                         size_t cap);

/* spike_level_name: "normal", "elevated", "high", "critical", "emergency". */
const char *spike_level_name(int level);

#endif
