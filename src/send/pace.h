/*
 * pace.h - send pacing: how fast one business phone number may send, and
 * when one customer may be written to again.
 *
 * Pure like breaker.h: time comes in as now_ms (monotonic milliseconds;
 * an earlier value counts as no time passing), no clock, no I/O. Owned by
 * one thread (the sender's network thread); no locking.
 */
#ifndef MUNIM_PACE_H
#define MUNIM_PACE_H

#include <stddef.h>
#include <stdint.h>

struct pace_config {
	int per_second;            /* sends per second per number; 0: unpaced (80) */
	int64_t recipient_base_ms; /* first wait after a pair rate limit (4,000) */
	int64_t recipient_cap_ms;  /* longest such wait (256,000) */
	int64_t idle_ms;           /* state untouched this long is forgotten (60,000) */
};

struct pace;

/* pace_config_default fills cfg with the defaults in parentheses above. */
void pace_config_default(struct pace_config *cfg);

/* pace_new: 0, or ERR_INVAL for a negative rate or a base/cap/idle below 1. */
int pace_new(const struct pace_config *cfg, struct pace **out);
void pace_free(struct pace *p);

/*
 * pace_take: may the number send now? 0: yes, and the send is counted;
 * else the ms until it may (nothing counted). Each number has a bucket of
 * per_second sends refilled continuously, so a quiet number may send a
 * second's worth at once.
 */
int64_t pace_take(struct pace *p, const char *number, int64_t now_ms);

/*
 * pace_slow: the provider said the number sends too fast (130429, 429):
 * its rate halves (at least 1 a second), then climbs back by a tenth of
 * per_second for every second without another such answer.
 */
void pace_slow(struct pace *p, const char *number, int64_t now_ms);

/* pace_rate: the number's present rate (per_second unless slowed). */
int pace_rate(struct pace *p, const char *number, int64_t now_ms);

/*
 * pace_recipient_limited: the provider refused a send from number to `to`
 * for the pair's rate (131056). That pair waits recipient_base_ms, four
 * times longer on each refusal in a row (4 s, 16 s, 64 s, ...), at most
 * recipient_cap_ms. Returns the wait.
 */
int64_t pace_recipient_limited(struct pace *p, const char *number, const char *to, int64_t now_ms);
/* pace_recipient_ok: a send to the pair went through; its refusals are forgotten. */
void pace_recipient_ok(struct pace *p, const char *number, const char *to);
/* pace_recipient_wait: ms until the pair may be written to again, 0 if now. */
int64_t pace_recipient_wait(struct pace *p, const char *number, const char *to, int64_t now_ms);

/* pace_sweep forgets state idle for idle_ms (call now and then). */
void pace_sweep(struct pace *p, int64_t now_ms);
/* pace_entries: numbers and pairs remembered (for tests and memory checks). */
size_t pace_entries(const struct pace *p);

#endif
