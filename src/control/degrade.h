/*
 * degrade.h - the graceful degradation level (the seed's "Graceful
 * Degradation Modes"), from the health of what munim depends on, with the
 * same hysteresis as the spike level (hold.h).
 *
 *   0 full               everything works
 *   1 AI degraded        the AI endpoint's latency p95 > 3 s or its errors
 *                        > 5 % (or its breaker is open): template replies
 *                        with buttons, photos queued for OCR later
 *   2 WhatsApp degraded  no WhatsApp provider that could take a send
 *                        delivers 90 % or more: WhatsApp for P0/P1 only,
 *                        SMS for critical messages and payment notices,
 *                        shops told by SMS
 *   3 companion only     no WhatsApp provider can take a send at all
 *                        (every breaker open): the shop works through the
 *                        companion API; replies wait for WhatsApp
 *   4 offline            WhatsApp down and munim's own store failing
 *                        (webhooks answered 503): the companion app keeps
 *                        operations locally and syncs them later
 *
 * Each level's condition is checked in turn, the highest met wins; AI
 * trouble alone never makes it more than 1.
 *
 * Pure: the caller samples the signals and passes its clock.
 */
#ifndef MUNIM_DEGRADE_H
#define MUNIM_DEGRADE_H

#include <stddef.h>
#include <stdint.h>

#include "control/hold.h"

#define DEGRADE_LEVELS 5 /* 0..4 */

enum degrade_level {
	DEGRADE_FULL = 0,
	DEGRADE_AI = 1,
	DEGRADE_WHATSAPP = 2,
	DEGRADE_COMPANION = 3,
	DEGRADE_OFFLINE = 4,
};

struct degrade_config {
	int64_t ai_p95_ms;       /* 3000: the seed's "AI latency > 3 s" */
	double ai_error_pct;     /* 5: the seed's "errors > 5 %" */
	int64_t ai_min_calls;    /* fewer calls in the window say nothing (20) */
	double store_error_pct;  /* 5: webhooks answered 503 beyond this = the store is down */
	int64_t store_min_calls; /* fewer webhooks in the window say nothing (20) */
	int64_t hold_ms;         /* a level is left only after this long below it (60,000) */
};

struct degrade_signals {
	int ai_configured;      /* an AI endpoint is set */
	int ai_breaker_open;    /* its breaker refuses calls */
	int64_t ai_calls;       /* calls finished in the window */
	int64_t ai_p95_ms;      /* their latency p95, -1 none */
	double ai_error_pct;    /* their share that failed or timed out */
	int bsps;               /* WhatsApp providers configured */
	int bsps_up;            /* ... whose breaker lets a send through (or soon) */
	int bsps_delivering;    /* ... of those, delivering at least the minimum rate */
	int64_t webhooks;       /* webhook requests in the window */
	double store_error_pct; /* their share answered 503 (the store refused) */
};

struct degrade {
	struct degrade_config cfg;
	struct hold hold; /* hold.level is the level */
};

/* degrade_config_default: the seed's triggers (above) and a 60 s hold. */
void degrade_config_default(struct degrade_config *cfg);

/* degrade_init: level 0. 0, or ERR_INVAL for a negative threshold. */
int degrade_init(struct degrade *d, const struct degrade_config *cfg);

/* degrade_level_of: the highest level whose condition the signals meet. */
int degrade_level_of(const struct degrade_config *cfg, const struct degrade_signals *sig);

/* degrade_update: as spike_update - up at once, down one level per hold. */
int degrade_update(struct degrade *d, const struct degrade_signals *sig, int64_t now_ms,
                   int *changed);

/* degrade_reason writes why the signals are at their level. Returns out. */
const char *degrade_reason(const struct degrade_config *cfg, const struct degrade_signals *sig,
                           char *out, size_t cap);

/* degrade_level_name: "full", "ai-degraded", "whatsapp-degraded",
 * "companion-only", "offline". */
const char *degrade_level_name(int level);

#endif
