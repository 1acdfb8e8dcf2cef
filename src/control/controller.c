/*
 * controller.c - serve's controller thread.
 *
 * Every second it samples the process's own metrics and feeds the spike
 * level (spike.c):
 *
 *   depth      inbox entries waiting + outbox rows PENDING of P0..P2 (marketing
 *              waiting is not a spike: it is what level 2 pauses, and
 *              counting it would hold the level up by itself)
 *   p95        message latency (received -> reply accepted by the provider)
 *              over the last --control-window-s, from the difference of two
 *              snapshots of the reply-latency histogram
 *   errors     webhook requests answered 500 or 503, as a share of all
 *              webhook requests over the same window
 *
 * and publishes the level in app->spike_level (munim_spike_level), logging
 * each change with the signal that caused it. What follows a level is up to
 * the roles that read it: at level 2 and above the sender claims no P3
 * (marketing waits; it goes again once the level falls).
 *
 * Snapshots are kept in a ring of CONTROL_MAX_WINDOW + 1 seconds; until the
 * ring has a full window, the oldest snapshot starts it.
 *
 * Threading: one thread of its own; reads metrics atomics, writes
 * app->spike_level only.
 */
#include "control/controller.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"

/* Longest window, seconds (the ring's size). */
#define CONTROL_MAX_WINDOW 600
#define CONTROL_TICK_MS    1000

struct snapshot {
	uint64_t lat[METRICS_LAT_BUCKETS + 1];
	uint64_t requests, errors;
};

struct controller {
	struct app *app;
	struct spike spike;
	int window; /* seconds */
	pthread_t thread;
	struct notify wake; /* rung by controller_stop */
	_Atomic int stop;
	struct snapshot ring[CONTROL_MAX_WINDOW + 1];
	int head, n;
};

int64_t controller_p95_ms(const uint64_t before[METRICS_LAT_BUCKETS + 1],
                          const uint64_t now[METRICS_LAT_BUCKETS + 1])
{
	uint64_t d[METRICS_LAT_BUCKETS + 1], total = 0;
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++) {
		d[i] = now[i] >= before[i] ? now[i] - before[i] : 0;
		total += d[i];
	}
	if (total == 0)
		return -1;
	double rank = 0.95 * (double)total, seen = 0;
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++) {
		if (seen + (double)d[i] >= rank && d[i] > 0) {
			if (i == METRICS_LAT_BUCKETS) /* past the last bound */
				return (int64_t)(metrics_lat_bounds[METRICS_LAT_BUCKETS - 1] *
				                 1000);
			double lo = i == 0 ? 0 : metrics_lat_bounds[i - 1],
			       hi = metrics_lat_bounds[i];
			double s = lo + (hi - lo) * (rank - seen) / (double)d[i];
			return (int64_t)(s * 1000 + 0.5);
		}
		seen += (double)d[i];
	}
	return (int64_t)(metrics_lat_bounds[METRICS_LAT_BUCKETS - 1] * 1000);
}

static void take(const struct metrics *m, struct snapshot *s)
{
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++)
		s->lat[i] = atomic_load_explicit(&m->reply_latency.bucket[i], memory_order_relaxed);
	s->requests = 0;
	for (int i = 0; i < MCODE_COUNT; i++)
		s->requests += atomic_load_explicit(&m->webhook_requests[i], memory_order_relaxed);
	s->errors = atomic_load_explicit(&m->webhook_requests[MCODE_500], memory_order_relaxed) +
	            atomic_load_explicit(&m->webhook_requests[MCODE_503], memory_order_relaxed);
}

/* sample takes this second's snapshot and moves the level. */
static void sample(struct controller *c, int64_t now_ms)
{
	struct metrics *m = &c->app->metrics;
	struct snapshot *now = &c->ring[c->head];
	take(m, now);
	int back = c->n < c->window ? c->n : c->window;
	const struct snapshot *old =
	        &c->ring[(c->head - back + CONTROL_MAX_WINDOW + 1) % (CONTROL_MAX_WINDOW + 1)];
	c->head = (c->head + 1) % (CONTROL_MAX_WINDOW + 1);
	if (c->n < CONTROL_MAX_WINDOW)
		c->n++;

	struct spike_signals sig = {0};
	sig.depth = atomic_load(&m->inbox_depth);
	for (int p = 0; p < PRIO_P3; p++)
		sig.depth += atomic_load(&m->outbox[p][OUTBOX_PENDING]);
	int64_t p95 = controller_p95_ms(old->lat, now->lat);
	sig.p95_ms = p95 < 0 ? 0 : p95;
	uint64_t reqs = now->requests - old->requests, errs = now->errors - old->errors;
	sig.error_pct = reqs ? 100.0 * (double)errs / (double)reqs : 0;

	int changed = 0, was = c->spike.level;
	int level = spike_update(&c->spike, &sig, now_ms, &changed);
	if (!changed)
		return;
	atomic_store(&c->app->spike_level, level);
	char why[128], lat[48];
	spike_reason(&c->spike.cfg, &sig, why, sizeof(why));
	if (p95 < 0)
		snprintf(lat, sizeof(lat), "no reply in the last %d s", c->window);
	else
		snprintf(lat, sizeof(lat), "p95 %lld ms", (long long)p95);
	if (level > was)
		log_warn("control.spike_level",
		         "spike level %d (%s) from %d: %s; depth %lld, %s, webhook errors %.2f %%",
		         level, spike_level_name(level), was, why, (long long)sig.depth, lat,
		         sig.error_pct);
	else
		log_info("control.spike_level",
		         "spike level %d (%s) from %d after %lld ms below it: %s; depth %lld, %s, "
		         "webhook errors %.2f %%",
		         level, spike_level_name(level), was, (long long)c->spike.cfg.hold_ms, why,
		         (long long)sig.depth, lat, sig.error_pct);
}

static void *control_main(void *arg)
{
	struct controller *c = arg;
	pthread_setname_np(pthread_self(), "control");
	uint64_t seen = 0;
	while (!atomic_load(&c->stop)) {
		notify_wait(&c->wake, &seen, CONTROL_TICK_MS);
		if (!atomic_load(&c->stop))
			sample(c, clock_mono_us() / 1000);
	}
	return NULL;
}

int controller_start(struct app *app, struct controller **out)
{
	*out = NULL;
	const struct config *cfg = &app->cfg;
	struct spike_config sc;
	spike_config_default(&sc);
	for (int l = 1; l < SPIKE_LEVELS; l++)
		sc.depth[l] = cfg->spike_depth[l];
	sc.p95_ms[1] = cfg->spike_p95_ms[1];
	sc.p95_ms[2] = cfg->spike_p95_ms[2];
	sc.error_pct[3] = cfg->spike_error_pct[3];
	sc.error_pct[4] = cfg->spike_error_pct[4];
	sc.hold_ms = cfg->spike_hold_ms;
	struct controller *c = xcalloc(1, sizeof(*c));
	if (spike_init(&c->spike, &sc) != 0) {
		log_error("serve.start_failed",
		          "the spike thresholds must rise with the level (--spike-depth-1..4, "
		          "--spike-p95-ms-1..2, --spike-error-pct-3..4)");
		free(c);
		return ERR_INVAL;
	}
	c->app = app;
	c->window = (int)cfg->control_window_s;
	notify_init(&c->wake);
	int err = pthread_create(&c->thread, NULL, control_main, c);
	if (err != 0) {
		log_error("serve.start_failed", "could not start the controller thread: %s",
		          strerror(err));
		notify_release(&c->wake);
		free(c);
		return ERR_NOMEM;
	}
	*out = c;
	return 0;
}

void controller_stop(struct controller *c)
{
	if (!c)
		return;
	atomic_store(&c->stop, 1);
	notify_signal(&c->wake);
	pthread_join(c->thread, NULL);
	notify_release(&c->wake);
	free(c);
}
