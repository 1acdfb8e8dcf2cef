/*
 * degrade.c - the graceful degradation level (see degrade.h).
 *
 * Threading: none; the caller owns the struct.
 */
#include "control/degrade.h"

#include <stdio.h>
#include <string.h>

#include "core/err.h"

void degrade_config_default(struct degrade_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->ai_p95_ms = 3000;
	cfg->ai_error_pct = 5.0;
	cfg->ai_min_calls = 20;
	cfg->store_error_pct = 5.0;
	cfg->store_min_calls = 20;
	cfg->hold_ms = 60000;
}

int degrade_init(struct degrade *d, const struct degrade_config *cfg)
{
	if (cfg->ai_p95_ms < 0 || cfg->ai_error_pct < 0 || cfg->ai_min_calls < 0 ||
	    cfg->store_error_pct < 0 || cfg->store_min_calls < 0 || cfg->hold_ms < 0)
		return ERR_INVAL;
	memset(d, 0, sizeof(*d));
	d->cfg = *cfg;
	hold_init(&d->hold, cfg->hold_ms);
	return 0;
}

static int ai_slow(const struct degrade_config *c, const struct degrade_signals *s)
{
	return s->ai_calls >= c->ai_min_calls && s->ai_p95_ms > c->ai_p95_ms;
}

static int ai_failing(const struct degrade_config *c, const struct degrade_signals *s)
{
	return s->ai_calls >= c->ai_min_calls && s->ai_error_pct > c->ai_error_pct;
}

static int store_down(const struct degrade_config *c, const struct degrade_signals *s)
{
	return s->webhooks >= c->store_min_calls && s->store_error_pct > c->store_error_pct;
}

int degrade_level_of(const struct degrade_config *cfg, const struct degrade_signals *sig)
{
	int level = DEGRADE_FULL;
	if (sig->ai_configured &&
	    (sig->ai_breaker_open || ai_slow(cfg, sig) || ai_failing(cfg, sig)))
		level = DEGRADE_AI;
	if (sig->bsps > 0 && sig->bsps_delivering == 0)
		level = DEGRADE_WHATSAPP;
	if (sig->bsps > 0 && sig->bsps_up == 0)
		level = DEGRADE_COMPANION;
	if (level == DEGRADE_COMPANION && store_down(cfg, sig))
		level = DEGRADE_OFFLINE;
	return level;
}

int degrade_update(struct degrade *d, const struct degrade_signals *sig, int64_t now_ms,
                   int *changed)
{
	return hold_step(&d->hold, degrade_level_of(&d->cfg, sig), now_ms, changed);
}

const char *degrade_reason(const struct degrade_config *cfg, const struct degrade_signals *sig,
                           char *out, size_t cap)
{
	switch (degrade_level_of(cfg, sig)) {
	case DEGRADE_OFFLINE:
		snprintf(out, cap, "no WhatsApp provider is up and %.2f %% of webhooks got 503",
		         sig->store_error_pct);
		break;
	case DEGRADE_COMPANION:
		snprintf(out, cap, "none of %d WhatsApp providers is up", sig->bsps);
		break;
	case DEGRADE_WHATSAPP:
		snprintf(out, cap, "none of %d WhatsApp providers up delivers the minimum rate",
		         sig->bsps);
		break;
	case DEGRADE_AI:
		if (sig->ai_breaker_open)
			snprintf(out, cap, "the AI endpoint's breaker is open");
		else if (ai_slow(cfg, sig))
			snprintf(out, cap, "AI latency p95 %lld ms > %lld ms",
			         (long long)sig->ai_p95_ms, (long long)cfg->ai_p95_ms);
		else
			snprintf(out, cap, "AI errors %.2f %% > %.2f %%", sig->ai_error_pct,
			         cfg->ai_error_pct);
		break;
	default: snprintf(out, cap, "everything is up"); break;
	}
	return out;
}

const char *degrade_level_name(int level)
{
	static const char *const names[DEGRADE_LEVELS] = {
	        "full", "ai-degraded", "whatsapp-degraded", "companion-only", "offline"};
	return level >= 0 && level < DEGRADE_LEVELS ? names[level] : "unknown";
}
