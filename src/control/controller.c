/*
 * controller.c - serve's controller thread.
 *
 * Every second it samples the process's own metrics and the sender's view
 * of its providers, and moves two levels:
 *
 *   spike level (spike.c) from
 *     depth      inbox entries waiting + outbox rows PENDING of P0..P2
 *                (marketing waiting is not a spike: it is what level 2
 *                pauses, and counting it would hold the level up by itself)
 *     p95        message latency (received -> reply accepted by the
 *                provider) over the last --control-window-s, from the
 *                difference of two snapshots of the reply-latency histogram
 *     errors     webhook requests answered 500 or 503, as a share of all
 *                webhook requests over the same window
 *   degradation level (degrade.c) from
 *     the WhatsApp providers up and delivering (sender_health), and the
 *     webhooks answered 503 over the window (the store refusing)
 *
 * It publishes both (app->spike_level, app->degradation_level; metrics and
 * GET /status), logs each change with its cause, and acts:
 *
 *   spike 3+      P3 waiting is dropped (counted), each shop told how many
 *                 of its broadcast did not go (actions.c), every 10 s while
 *                 it lasts; on reaching 3 the on-call alert, on reaching 4
 *                 the page (--alert-url)
 *   degrade 2+    on reaching it, the seed's SMS notice to the shops with
 *                 replies waiting (with an SMS gateway: the notice promises
 *                 SMS; looked for again every 2 s while the level holds
 *                 and no shop was told: tell_shops); every change posted
 *                 to --alert-url
 *
 * What else follows a level is up to the roles that read it: at spike
 * level 2 and above the sender claims no P3 and merges replies; at 3 and 4
 * P0/P1 go by SMS (send_net.c); at 4 marketing requests are refused 503
 * (campaign.c, erp/broadcast.c).
 *
 * Snapshots are kept in a ring of CONTROL_MAX_WINDOW + 1 seconds; until the
 * ring has a full window, the oldest snapshot starts it.
 *
 * With --redis the signals are the fleet's: each process's controller
 * publishes its own sample and reads the sum over the live processes
 * (fleet(), cluster/cluster.h), so that a controller sees the webhooks of
 * the ingest processes and the replies of the sender processes alike.
 *
 * Every process runs this thread for what is its own (its levels, the
 * modes its roles follow, its worker pool's size); the cluster-wide jobs -
 * the store's housekeeping, the notices to shops, marketing dropped, the
 * alerts - run only in the leading controller (leader.h, app->leader).
 *
 * Threading: one thread of its own; reads metrics atomics, writes the
 * app's levels, the status copy under mu (read by controller_render_*).
 */
#include "control/controller.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai/ai.h"
#include "cluster/cluster.h"
#include "control/actions.h"
#include "control/festival.h"
#include "control/hpa.h"
#include "control/leader.h"
#include "plan/plan.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/proc.h"
#include "core/xalloc.h"
#include "worker/worker.h"

/* Longest window, seconds (the ring's size). */
#define CONTROL_MAX_WINDOW 600
#define CONTROL_TICK_MS    1000
/* While at spike level 3+, marketing is dropped at most this often. */
#define CONTROL_DROP_EVERY_MS 10000
/* How often the degradation notice looks again for shops to tell. */
#define CONTROL_NOTICE_RETRY_MS 2000
/* The store's housekeeping: hourly, so that a missed day is caught soon. */
#define CONTROL_MAINTAIN_EVERY_MS (3600 * 1000)
/* Shops told of a WhatsApp degradation at most, per episode. */
#define CONTROL_NOTICE_MAX 100000

struct snapshot {
	uint64_t lat[METRICS_LAT_BUCKETS + 1];
	uint64_t requests, errors, refused; /* refused: 503 only */
	uint64_t ai_lat[METRICS_LAT_BUCKETS + 1];
	uint64_t ai_calls, ai_failed; /* answered or not; failed: error or timeout */
};

/* What /status and /metrics show; under mu. */
struct control_status {
	struct spike_signals spike_sig;
	struct degrade_signals degrade_sig;
	int spike, degrade;
	char spike_why[128], degrade_why[128];
	int64_t spike_since, degrade_since; /* wall ms of the last change */
	int64_t p95_ms;                     /* -1: no reply in the window */
	int workers, workers_floor;         /* the pool now, and the festival's floor */
	const struct festival_window *fest; /* active window, or NULL */
	double multiplier;                  /* the festival floor's multiplier */
	int batch_factor, pause_p3, aggregate, priority_strict, sms_critical;
	uint64_t dropped, drop_notices, shop_notices, alerts, alerts_failed;
	double cpu_seconds;
	int64_t rss_bytes;
};

struct controller {
	struct app *app;
	struct sender *sender;
	struct worker_pool *workers; /* NULL: no pool to size */
	struct plan_settings plan;   /* the autoscaler's settings and the festival calendar */
	struct hpa hpa;
	int64_t up_window_ms; /* the plan's scale-up window (none when aggressive) */
	int depth_alerted;    /* the festival's depth alert fired; rearmed below it */
	int standby_warned;
	struct store_conn *conn;    /* actions */
	struct cluster_view *fleet; /* --redis: the fleet's signals (fleet()); NULL: alone */
	int fleet_shared;           /* the last sample was the fleet's */
	struct spike spike;
	struct degrade degrade;
	int window; /* seconds */
	pthread_t thread;
	struct notify wake; /* rung by controller_stop */
	_Atomic int stop;
	struct snapshot ring[CONTROL_MAX_WINDOW + 1];
	int head, n;
	int64_t drop_at;     /* mono ms of the next marketing drop */
	int64_t maintain_at; /* mono ms of the next store_maintain */
	int notice_pending;  /* degradation 2 reached, no shop told yet (tell_shops) */
	int64_t notice_at;   /* mono ms of tell_shops' next look */
	pthread_mutex_t mu;
	struct control_status st;
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

static void take(const struct app *app, struct snapshot *s)
{
	const struct metrics *m = &app->metrics;
	struct ai_signals ai;
	ai_signals(app->ai, &ai);
	memcpy(s->ai_lat, ai.latency_bucket, sizeof(s->ai_lat));
	s->ai_failed = ai.requests[AI_RESULT_ERROR] + ai.requests[AI_RESULT_TIMEOUT];
	s->ai_calls = ai.requests[AI_RESULT_OK] + s->ai_failed;
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++)
		s->lat[i] = atomic_load_explicit(&m->reply_latency.bucket[i], memory_order_relaxed);
	s->requests = 0;
	for (int i = 0; i < MCODE_COUNT; i++)
		s->requests += atomic_load_explicit(&m->webhook_requests[i], memory_order_relaxed);
	s->refused = atomic_load_explicit(&m->webhook_requests[MCODE_503], memory_order_relaxed);
	s->errors = atomic_load_explicit(&m->webhook_requests[MCODE_500], memory_order_relaxed) +
	            s->refused;
}

static double pct(uint64_t part, uint64_t whole)
{
	return whole ? 100.0 * (double)part / (double)whole : 0;
}

/* alert posts to the hook and counts it. */
static void alert(struct controller *c, const char *event, const char *severity, int level,
                  const char *text)
{
	if (!leader_is(c->app->leader)) /* the leader alerts for all */
		return;
	int rc = control_alert(c->app, event, severity, level, text);
	if (!c->app->cfg.alert_url || !*c->app->cfg.alert_url)
		return;
	pthread_mutex_lock(&c->mu);
	if (rc == 0)
		c->st.alerts++;
	else
		c->st.alerts_failed++;
	pthread_mutex_unlock(&c->mu);
}

/* spike_changed logs and announces a new spike level. */
static void spike_changed(struct controller *c, int level, int was, const char *why)
{
	const struct spike_signals *sig = &c->st.spike_sig;
	char lat[48], text[320];
	if (c->st.p95_ms < 0)
		snprintf(lat, sizeof(lat), "no reply in the last %d s", c->window);
	else
		snprintf(lat, sizeof(lat), "p95 %lld ms", (long long)c->st.p95_ms);
	snprintf(text, sizeof(text),
	         "spike level %d (%s) from %d: %s; depth %lld, %s, webhook errors %.2f %%", level,
	         spike_level_name(level), was, why, (long long)sig->depth, lat, sig->error_pct);
	if (level > was)
		log_warn("control.spike_level", "%s", text);
	else
		log_info("control.spike_level", "%s (after %lld ms below it)", text,
		         (long long)c->spike.cfg.hold_ms);
	/* the seed's IFs are cumulative: reaching 3 alerts on-call, reaching 4
	 * pages leadership; a jump from below 3 to 4 does both */
	int oncall = was < 3 && level >= 3, page = was < 4 && level >= 4;
	if (oncall)
		alert(c, "spike_level", "oncall", level, text);
	if (page)
		alert(c, "spike_level", "page", level, text);
	if (!oncall && !page)
		alert(c, "spike_level", "info", level, text);
}

/* degrade_changed logs and announces a new degradation level. */
static void degrade_changed(struct controller *c, int level, int was, const char *why)
{
	char text[256];
	snprintf(text, sizeof(text), "degradation level %d (%s) from %d: %s", level,
	         degrade_level_name(level), was, why);
	if (level > was)
		log_warn("control.degradation_level", "%s", text);
	else
		log_info("control.degradation_level", "%s (after %lld ms below it)", text,
		         (long long)c->degrade.cfg.hold_ms);
	alert(c, "degradation_level", level > was && level >= 2 ? "oncall" : "info", level, text);
	struct sender_health h;
	sender_health(c->sender, &h);
	/* the notice promises SMS: only with a gateway to keep the promise */
	if (was < DEGRADE_WHATSAPP && level >= DEGRADE_WHATSAPP && h.sms) {
		c->notice_pending = 1;
		c->notice_at = 0; /* at once: tell_shops, this same tick */
	}
}

/*
 * tell_shops: the notice of degradation level 2, once per episode, to the
 * shops with replies waiting. A shop's replies may all be in a send at the
 * moment the level is reached (none waiting), so when nobody was told it
 * looks again every CONTROL_NOTICE_RETRY_MS while the level holds.
 */
static void tell_shops(struct controller *c, int level, int64_t mono_ms)
{
	if (!c->notice_pending || level < DEGRADE_WHATSAPP) {
		c->notice_pending = 0;
		return;
	}
	if (mono_ms < c->notice_at)
		return;
	c->notice_at = mono_ms + CONTROL_NOTICE_RETRY_MS;
	int shops = 0;
	if (control_tell_shops(c->app, c->conn, CONTROL_NOTICE_MAX, clock_wall_ms(), &shops) != 0)
		return; /* logged; tried again */
	if (shops == 0)
		return;
	c->notice_pending = 0;
	log_info("control.shops_told", "told %d shops: \"%s\"", shops, CONTROL_SHOP_NOTICE);
	pthread_mutex_lock(&c->mu);
	c->st.shop_notices += (uint64_t)shops;
	pthread_mutex_unlock(&c->mu);
}

/* drop_marketing: at spike level 3+, P3 waiting goes, its shops told. */
static void drop_marketing(struct controller *c, int level, int64_t mono_ms)
{
	struct metrics *m = &c->app->metrics;
	if (level < 3 || mono_ms < c->drop_at ||
	    atomic_load(&m->outbox[PRIO_P3][OUTBOX_PENDING]) <= 0)
		return;
	c->drop_at = mono_ms + CONTROL_DROP_EVERY_MS;
	int64_t dropped = 0;
	int shops = 0;
	if (control_drop_marketing(c->app, c->conn, level, clock_wall_ms(), &dropped, &shops) != 0)
		return; /* logged; tried again in CONTROL_DROP_EVERY_MS */
	if (dropped == 0)
		return;
	log_warn("control.marketing_dropped",
	         "spike level %d: dropped %lld waiting marketing messages of %d shops, each told",
	         level, (long long)dropped, shops);
	pthread_mutex_lock(&c->mu);
	c->st.dropped += (uint64_t)dropped;
	c->st.drop_notices += (uint64_t)shops;
	pthread_mutex_unlock(&c->mu);
}

/*
 * publish_modes sets what the roles follow (app.h) from the levels and the
 * festival window's steps, logging the modes that change.
 */
static void publish_modes(struct controller *c, int level, unsigned steps)
{
	struct app *app = c->app;
	int standby = (steps & FESTIVAL_STEP_SMS_STANDBY) != 0;
	int batch = level >= 1 || (steps & FESTIVAL_STEP_BATCH) ? 2 : 1;
	int pause = level >= 2 || (steps & FESTIVAL_STEP_DEFER_P3);
	int aggregate = level >= 2 || (level >= 1 && (steps & FESTIVAL_STEP_AGGREGATION_ARMED));
	int strict = (steps & FESTIVAL_STEP_PRIORITY_STRICT) != 0;
	int sms = level >= 4 ? 2 : level >= 3 || (level >= 2 && standby) ? 1 : 0;
	struct {
		_Atomic int *at;
		int v;
		const char *name;
	} m[] = {
	        {&app->batch_factor, batch, "batch_factor"},
	        {&app->pause_p3, pause, "pause_p3"},
	        {&app->aggregate, aggregate, "aggregate"},
	        {&app->priority_strict, strict, "priority_strict"},
	        {&app->sms_critical, sms, "sms_critical"},
	};
	int eased = 0; /* a mode that held rows back was lifted */
	for (size_t i = 0; i < sizeof(m) / sizeof(m[0]); i++) {
		int was = atomic_exchange(m[i].at, m[i].v);
		if (was == m[i].v)
			continue;
		log_info("control.mode", "%s %d (was %d) at spike level %d%s", m[i].name, m[i].v,
		         was, level, steps ? " in a festival window" : "");
		eased |= (m[i].at == &app->pause_p3 || m[i].at == &app->priority_strict) &&
		         m[i].v < was;
	}
	if (eased)
		notify_signal(&app->outbox_ready); /* marketing may go again */
	if (standby && !c->standby_warned && (!app->cfg.sms_url || !*app->cfg.sms_url)) {
		c->standby_warned = 1;
		log_warn("control.sms_standby",
		         "the festival playbook puts the SMS fallback on standby, but no SMS "
		         "gateway is configured (--sms-url)");
		alert(c, "sms_standby", "oncall", level,
		      "the festival playbook puts the SMS fallback on standby, but no SMS gateway "
		      "is configured");
	}
	pthread_mutex_lock(&c->mu);
	c->st.batch_factor = batch;
	c->st.pause_p3 = pause;
	c->st.aggregate = aggregate;
	c->st.priority_strict = strict;
	c->st.sms_critical = sms;
	pthread_mutex_unlock(&c->mu);
}

/*
 * autoscale sizes the worker pool by the seed's autoscaling rules (hpa.c,
 * the --hpa-* settings `munim plan` uses too): inbox entries per worker
 * against --hpa-depth-per-worker (100) and the latency p95 against
 * --hpa-p95-ms (1 s), the larger proposal; scale-up with the seed's 60 s
 * window (none from spike level 1: the seed's
 * enable_aggressive_autoscaling), scale-down with its 300 s window and 10 %
 * a minute. CPU is not a signal here: every role shares the process's. The floor is --workers times
 * the festival multiplier while a window has the pools step.
 */
static void autoscale(struct controller *c, int level, const struct festival_window *w, double mult,
                      int64_t p95, int64_t mono_ms)
{
	struct app *app = c->app;
	int cur = worker_pool_size(c->workers), cap = worker_pool_capacity(c->workers);
	int base = (int)app->cfg.workers, floor = base;
	if (w && (w->steps & FESTIVAL_STEP_POOLS)) {
		double f = (double)base * mult;
		floor = f >= cap ? cap : (int)f + ((double)(int)f < f);
	}
	if (floor < base)
		floor = base;
	pthread_mutex_lock(&c->mu);
	c->st.workers = cur;
	c->st.workers_floor = floor;
	pthread_mutex_unlock(&c->mu);
	if (!c->workers || cap <= base || cur < 1)
		return;
	/* the sender's sends in flight follow the pool: --send-inflight with
	 * every worker thread running, that share of it with fewer */
	int64_t slots = app->cfg.send_inflight;
	sender_resize(c->sender, (int)((slots * cur + cap - 1) / cap));
	double depth = (double)atomic_load(&app->metrics.inbox_depth);
	struct hpa_metric m[2] = {
	        {depth / cur, (double)c->plan.depth_per_worker},
	        {p95 < 0 ? 0 : (double)p95, (double)c->plan.p95_ms},
	};
	int proposal = hpa_proposal(cur, m, 2, c->hpa.cfg.tolerance);
	c->hpa.cfg.min_replicas = floor;
	c->hpa.cfg.up.stabilization_ms = level >= 1 ? 0 : c->up_window_ms;
	int want = hpa_decide(&c->hpa, cur, proposal, mono_ms);
	if (want < floor) /* a floor that rose takes effect at once */
		want = floor;
	if (want == cur)
		return;
	int now = worker_pool_resize(c->workers, want);
	sender_resize(c->sender, (int)((slots * now + cap - 1) / cap));
	log_info("control.scaled",
	         "worker threads %d -> %d, sends in flight at most %d (proposal %d, floor %d, "
	         "inbox %.0f, %s%lld ms p95)",
	         cur, now, sender_inflight_cap(c->sender), proposal, floor, depth,
	         p95 < 0 ? "no " : "", (long long)(p95 < 0 ? 0 : p95));
	pthread_mutex_lock(&c->mu);
	c->st.workers = now;
	pthread_mutex_unlock(&c->mu);
}

/* festival_depth_alert: the D-Day playbook's alert at a queue depth. */
static void festival_depth_alert(struct controller *c, const struct festival_window *w,
                                 int64_t depth, int level)
{
	if (!w || !(w->steps & FESTIVAL_STEP_DEPTH_ALERT) || w->depth_alert <= 0)
		return;
	if (depth <= w->depth_alert) {
		c->depth_alerted = 0;
		return;
	}
	if (c->depth_alerted)
		return;
	c->depth_alerted = 1;
	char text[200];
	snprintf(text, sizeof(text), "%s %s: queue depth %lld > %lld", w->name, w->phase,
	         (long long)depth, (long long)w->depth_alert);
	log_warn("control.depth_alert", "%s", text);
	alert(c, "festival_depth", "oncall", level, text);
}

/* sample takes this second's snapshot and moves the levels. */
/* maintain: the store's housekeeping (next months' audit partitions) at
 * the first tick and every CONTROL_MAINTAIN_EVERY_MS after it; a failure is
 * logged and tried again at the next one. */
static void maintain(struct controller *c, int64_t mono_ms)
{
	if (mono_ms < c->maintain_at)
		return;
	c->maintain_at = mono_ms + CONTROL_MAINTAIN_EVERY_MS;
	int made = 0;
	if (store_maintain(c->conn, &made) != 0)
		log_warn("control.maintain_failed", "could not maintain the store: %s",
		         store_errmsg(c->conn));
	else if (made > 0)
		log_info("control.maintain", "made %d audit log partition(s) ahead", made);
}

/*
 * fleet: with --redis, this process's signals (now, *depth, *h, *ai) are
 * published and the sums over every live process replace them
 * (cluster_view_exchange); while Redis does not answer, this process's own
 * stand. A move between the two starts the window again: sums and one
 * process's counts do not subtract. The depth is the store's own count
 * instead (the queues are the store's): every process's gauges start from
 * that count, so their sum would hold a start-up backlog once per process.
 */
static void fleet(struct controller *c, struct snapshot *now, int64_t *depth,
                  struct sender_health *h, struct ai_signals *ai)
{
	if (!c->fleet)
		return;
	int64_t inbox = 0, rows[PRIO_COUNT][OUTBOX_STATE_COUNT];
	if (store_inbox_depth(c->conn, &inbox) == 0 && store_outbox_counts(c->conn, rows) == 0) {
		*depth = inbox;
		for (int p = 0; p < PRIO_P3; p++)
			*depth += rows[p][OUTBOX_PENDING];
	}
	struct cluster_signals mine = {0}, all;
	mine.depth = *depth;
	memcpy(mine.lat, now->lat, sizeof(mine.lat));
	memcpy(mine.ai_lat, now->ai_lat, sizeof(mine.ai_lat));
	mine.requests = now->requests;
	mine.errors = now->errors;
	mine.refused = now->refused;
	mine.ai_calls = now->ai_calls;
	mine.ai_failed = now->ai_failed;
	mine.bsps = h->bsps;
	mine.bsps_up = h->bsps_up;
	mine.bsps_delivering = h->bsps_delivering;
	mine.sms = h->sms;
	mine.ai_configured = ai->configured;
	mine.ai_refusing = ai->refusing;
	int processes = 0;
	int shared = cluster_view_exchange(c->fleet, &mine, &all, &processes);
	/* alone after the fleet, the fleet after alone, or a process left the
	 * sums: the window starts at this snapshot */
	if (shared == 2 || (shared != 0) != c->fleet_shared)
		c->n = 0;
	c->fleet_shared = shared != 0;
	if (!shared)
		return;
	memcpy(now->lat, all.lat, sizeof(now->lat));
	memcpy(now->ai_lat, all.ai_lat, sizeof(now->ai_lat));
	now->requests = all.requests;
	now->errors = all.errors;
	now->refused = all.refused;
	now->ai_calls = all.ai_calls;
	now->ai_failed = all.ai_failed;
	h->bsps = all.bsps;
	h->bsps_up = all.bsps_up;
	h->bsps_delivering = all.bsps_delivering;
	h->sms = all.sms;
	ai->configured = all.ai_configured;
	ai->refusing = all.ai_refusing;
}

static void sample(struct controller *c, int64_t mono_ms)
{
	struct metrics *m = &c->app->metrics;
	struct snapshot *now = &c->ring[c->head];
	take(c->app, now);
	struct sender_health h;
	sender_health(c->sender, &h);
	struct ai_signals ai;
	ai_signals(c->app->ai, &ai);
	int64_t depth = atomic_load(&m->inbox_depth);
	for (int p = 0; p < PRIO_P3; p++)
		depth += atomic_load(&m->outbox[p][OUTBOX_PENDING]);
	fleet(c, now, &depth, &h, &ai);
	int back = c->n < c->window ? c->n : c->window;
	const struct snapshot *old =
	        &c->ring[(c->head - back + CONTROL_MAX_WINDOW + 1) % (CONTROL_MAX_WINDOW + 1)];
	c->head = (c->head + 1) % (CONTROL_MAX_WINDOW + 1);
	if (c->n < CONTROL_MAX_WINDOW)
		c->n++;

	struct spike_signals sig = {0};
	sig.depth = depth;
	int64_t p95 = controller_p95_ms(old->lat, now->lat);
	sig.p95_ms = p95 < 0 ? 0 : p95;
	uint64_t reqs = now->requests - old->requests;
	sig.error_pct = pct(now->errors - old->errors, reqs);

	struct degrade_signals ds = {0};
	ds.bsps = h.bsps;
	ds.bsps_up = h.bsps_up;
	ds.bsps_delivering = h.bsps_delivering;
	ds.webhooks = (int64_t)reqs;
	ds.store_error_pct = pct(now->refused - old->refused, reqs);
	ds.ai_configured = ai.configured;
	ds.ai_breaker_open = ai.refusing;
	ds.ai_calls = (int64_t)(now->ai_calls - old->ai_calls);
	ds.ai_p95_ms = controller_p95_ms(old->ai_lat, now->ai_lat);
	ds.ai_error_pct = pct(now->ai_failed - old->ai_failed, now->ai_calls - old->ai_calls);

	int schanged = 0, dchanged = 0, swas = c->spike.hold.level, dwas = c->degrade.hold.level;
	int level = spike_update(&c->spike, &sig, mono_ms, &schanged);
	int dlevel = degrade_update(&c->degrade, &ds, mono_ms, &dchanged);
	double cpu;
	int64_t rss;
	proc_usage(&cpu, &rss);

	pthread_mutex_lock(&c->mu);
	struct control_status *st = &c->st;
	st->spike_sig = sig;
	st->degrade_sig = ds;
	st->p95_ms = p95;
	st->spike = level;
	st->degrade = dlevel;
	spike_reason(&c->spike.cfg, &sig, st->spike_why, sizeof(st->spike_why));
	degrade_reason(&c->degrade.cfg, &ds, st->degrade_why, sizeof(st->degrade_why));
	if (schanged)
		st->spike_since = clock_wall_ms();
	if (dchanged)
		st->degrade_since = clock_wall_ms();
	st->cpu_seconds = cpu;
	st->rss_bytes = rss;
	char swhy[128], dwhy[128];
	memcpy(swhy, st->spike_why, sizeof(swhy));
	memcpy(dwhy, st->degrade_why, sizeof(dwhy));
	pthread_mutex_unlock(&c->mu);

	if (schanged) {
		atomic_store(&c->app->spike_level, level);
		spike_changed(c, level, swas, swhy);
	}
	if (dchanged) {
		atomic_store(&c->app->degradation_level, dlevel);
		degrade_changed(c, dlevel, dwas, dwhy);
	}
	if (leader_is(c->app->leader)) { /* the cluster-wide jobs */
		tell_shops(c, dlevel, mono_ms);
		drop_marketing(c, level, mono_ms);
		maintain(c, mono_ms);
	}

	int64_t wall = clock_wall_ms();
	const struct festival_window *w = festival_at(&c->plan.cal, wall);
	double mult = festival_multiplier(&c->plan.cal, wall);
	if (w != c->st.fest)
		log_info("control.festival", "%s%s%s (floor x%.2f)",
		         w ? w->name : "no festival window", w ? " " : "", w ? w->phase : "", mult);
	pthread_mutex_lock(&c->mu);
	c->st.fest = w;
	c->st.multiplier = mult;
	pthread_mutex_unlock(&c->mu);
	publish_modes(c, level, w ? w->steps : 0);
	festival_depth_alert(c, w, sig.depth, level);
	autoscale(c, level, w, mult, p95, mono_ms);
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

/* configure: the spike and degradation settings from cfg; ERR_INVAL logged. */
static int configure(struct controller *c, const struct config *cfg)
{
	struct spike_config sc;
	spike_config_default(&sc);
	for (int l = 1; l < SPIKE_LEVELS; l++)
		sc.depth[l] = cfg->spike_depth[l];
	sc.p95_ms[1] = cfg->spike_p95_ms[1];
	sc.p95_ms[2] = cfg->spike_p95_ms[2];
	sc.error_pct[3] = cfg->spike_error_pct[3];
	sc.error_pct[4] = cfg->spike_error_pct[4];
	sc.hold_ms = cfg->spike_hold_ms;
	if (spike_init(&c->spike, &sc) != 0) {
		log_error("serve.start_failed",
		          "the spike thresholds must rise with the level (--spike-depth-1..4, "
		          "--spike-p95-ms-1..2, --spike-error-pct-3..4)");
		return ERR_INVAL;
	}
	struct degrade_config dc;
	degrade_config_default(&dc);
	dc.ai_p95_ms = cfg->degrade_ai_p95_ms;
	dc.ai_error_pct = cfg->degrade_ai_error_pct;
	dc.store_error_pct = cfg->degrade_store_error_pct;
	dc.hold_ms = cfg->degrade_hold_ms;
	if (degrade_init(&c->degrade, &dc) != 0) {
		log_error("serve.start_failed", "the degradation thresholds are out of bounds");
		return ERR_INVAL;
	}
	char err[256];
	if (plan_settings_from_config(cfg, &c->plan, err, sizeof(err)) != 0) {
		plan_settings_release(&c->plan);
		log_error("serve.start_failed", "%s", err);
		return ERR_INVAL;
	}
	/* the plan's behaviour, the pool's own bounds */
	struct hpa_config hc = c->plan.hpa;
	hc.min_replicas = (int)cfg->workers;
	hc.max_replicas = (int)(cfg->workers_max > cfg->workers ? cfg->workers_max : cfg->workers);
	c->up_window_ms = hc.up.stabilization_ms;
	if (hpa_init(&c->hpa, &hc) != 0) {
		plan_settings_release(&c->plan);
		log_error("serve.start_failed",
		          "the worker pool's autoscaling settings are invalid");
		return ERR_INVAL;
	}
	return 0;
}

int controller_start(struct app *app, struct sender *sender, struct worker_pool *workers,
                     struct controller **out)
{
	*out = NULL;
	struct controller *c = xcalloc(1, sizeof(*c));
	c->app = app;
	c->sender = sender;
	c->workers = workers;
	c->window = (int)app->cfg.control_window_s;
	c->st.p95_ms = -1;
	c->st.spike_since = c->st.degrade_since = clock_wall_ms();
	snprintf(c->st.spike_why, sizeof(c->st.spike_why), "all signals below level 1");
	snprintf(c->st.degrade_why, sizeof(c->st.degrade_why), "everything is up");
	if (configure(c, &app->cfg) != 0) {
		free(c);
		return ERR_INVAL;
	}
	if (store_connect(app->store, &c->conn) != 0) {
		log_error("serve.start_failed", "the controller could not connect to the store");
		plan_settings_release(&c->plan);
		free(c);
		return ERR_IO;
	}
	char node[160];
	cluster_node_name(node, sizeof(node));
	if (cluster_view_new(&app->cfg, node, &c->fleet) != 0) {
		log_error("serve.start_failed", "the controller cannot use --redis as given");
		store_disconnect(c->conn);
		plan_settings_release(&c->plan);
		free(c);
		return ERR_INVAL;
	}
	/* the window's first snapshot: what happened before the thread's
	 * first second counts in it */
	take(app, &c->ring[0]);
	c->head = c->n = 1;
	pthread_mutex_init(&c->mu, NULL);
	notify_init(&c->wake);
	int err = pthread_create(&c->thread, NULL, control_main, c);
	if (err != 0) {
		log_error("serve.start_failed", "could not start the controller thread: %s",
		          strerror(err));
		notify_release(&c->wake);
		pthread_mutex_destroy(&c->mu);
		store_disconnect(c->conn);
		cluster_view_free(c->fleet);
		plan_settings_release(&c->plan);
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
	pthread_mutex_destroy(&c->mu);
	store_disconnect(c->conn);
	cluster_view_free(c->fleet);
	plan_settings_release(&c->plan);
	free(c);
}

/* ---- what it shows ------------------------------------------------------------- */

static void gauge(struct buf *b, const char *name, const char *help, double v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

static void counter(struct buf *b, const char *name, const char *help, double v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %.17g\n", name, help, name, name, v);
}

void controller_render_metrics(struct controller *c, struct buf *b)
{
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	struct control_status st = c->st;
	pthread_mutex_unlock(&c->mu);
	gauge(b, "munim_spike_level",
	      "Traffic spike level: 0 normal, 1 elevated, 2 high (P3 paused, replies merged),"
	      " 3 critical (P3 dropped, SMS for P0/P1), 4 emergency (marketing refused).",
	      st.spike);
	gauge(b, "munim_degradation_level",
	      "Graceful degradation level: 0 full, 1 AI degraded, 2 WhatsApp degraded,"
	      " 3 companion app only, 4 offline.",
	      st.degrade);
	gauge(b, "munim_control_depth",
	      "Messages waiting as the controller counts them"
	      " (inbox + outbox P0..P2 pending).",
	      (double)st.spike_sig.depth);
	gauge(b, "munim_control_latency_p95_seconds",
	      "Message latency p95 over the control window (0 when no reply).",
	      st.p95_ms < 0 ? 0 : (double)st.p95_ms / 1000.0);
	gauge(b, "munim_control_webhook_error_ratio",
	      "Webhook requests answered 500/503 over the control window, as a ratio.",
	      st.spike_sig.error_pct / 100.0);
	gauge(b, "munim_whatsapp_providers_up",
	      "WhatsApp providers whose breaker lets sends through.", st.degrade_sig.bsps_up);
	gauge(b, "munim_whatsapp_providers_delivering",
	      "WhatsApp providers up and delivering at least the minimum rate.",
	      st.degrade_sig.bsps_delivering);
	counter(b, "munim_marketing_dropped_total",
	        "Waiting marketing (P3) messages dropped at spike level 3 or above.",
	        (double)st.dropped);
	counter(b, "munim_marketing_drop_notices_total",
	        "Shops told how many of their broadcast were dropped.", (double)st.drop_notices);
	counter(b, "munim_shop_notices_total", "Shops sent the notice that WhatsApp is degraded.",
	        (double)st.shop_notices);
	counter(b, "munim_control_alerts_total", "Controller alerts delivered to the alert hook.",
	        (double)st.alerts);
	counter(b, "munim_control_alerts_failed_total",
	        "Controller alerts the alert hook did not take.", (double)st.alerts_failed);
	gauge(b, "munim_worker_threads", "Worker threads working the inbox now.", st.workers);
	gauge(b, "munim_send_inflight_cap", "Sends that may be in flight at once now.",
	      sender_inflight_cap(c->sender));
	gauge(b, "munim_worker_threads_floor",
	      "The least worker threads the controller keeps (the festival floor).",
	      st.workers_floor);
	gauge(b, "munim_festival_multiplier",
	      "The festival calendar's capacity multiplier now (1 outside every window).",
	      st.multiplier > 0 ? st.multiplier : 1);
	gauge(b, "munim_batch_factor", "What batch sizes are multiplied by now.",
	      st.batch_factor > 0 ? st.batch_factor : 1);
	counter(b, "process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
	        st.cpu_seconds);
	gauge(b, "process_resident_memory_bytes", "Resident memory size in bytes.",
	      (double)st.rss_bytes);
}

static void json_str(struct buf *b, const char *key, const char *v)
{
	buf_printf(b, "\"%s\":\"", key);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			buf_printf(b, "\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			buf_printf(b, "\\u%04x", (unsigned char)*p);
		else
			buf_putc(b, *p);
	}
	buf_putc(b, '"');
}

void controller_render_status(struct controller *c, struct buf *b)
{
	struct control_status st = {0};
	if (c) {
		pthread_mutex_lock(&c->mu);
		st = c->st;
		pthread_mutex_unlock(&c->mu);
	}
	buf_printf(b, "{\"spike_level\":%d,", st.spike);
	json_str(b, "spike_level_name", spike_level_name(st.spike));
	buf_putc(b, ',');
	json_str(b, "spike_reason", st.spike_why);
	buf_printf(b, ",\"spike_since_ms\":%lld,\"degradation_level\":%d,",
	           (long long)st.spike_since, st.degrade);
	json_str(b, "degradation_level_name", degrade_level_name(st.degrade));
	buf_putc(b, ',');
	json_str(b, "degradation_reason", st.degrade_why);
	buf_printf(b, ",\"degradation_since_ms\":%lld,\"festival\":", (long long)st.degrade_since);
	if (st.fest) {
		char steps[160];
		buf_putc(b, '{');
		json_str(b, "name", st.fest->name);
		buf_putc(b, ',');
		json_str(b, "phase", st.fest->phase);
		buf_printf(b, ",\"start_ms\":%lld,\"end_ms\":%lld,\"multiplier\":%.3f,",
		           (long long)st.fest->start_ms, (long long)st.fest->end_ms, st.multiplier);
		json_str(b, "steps", festival_steps_format(st.fest->steps, steps, sizeof(steps)));
		buf_putc(b, '}');
	} else {
		buf_puts(b, "null");
	}
	buf_printf(b,
	           ",\"modes\":{\"batch_factor\":%d,\"pause_p3\":%d,\"aggregate\":%d,"
	           "\"priority_strict\":%d,\"sms_critical\":%d},"
	           "\"workers\":{\"threads\":%d,\"floor\":%d,\"send_inflight_cap\":%d},",
	           st.batch_factor > 0 ? st.batch_factor : 1, st.pause_p3, st.aggregate,
	           st.priority_strict, st.sms_critical, st.workers, st.workers_floor,
	           c ? sender_inflight_cap(c->sender) : 0);
	buf_printf(b,
	           "\"signals\":{\"depth\":%lld,\"latency_p95_ms\":%lld,"
	           "\"webhook_error_pct\":%.3f,\"whatsapp_providers\":%d,"
	           "\"whatsapp_providers_up\":%d,\"whatsapp_providers_delivering\":%d,"
	           "\"store_error_pct\":%.3f,\"ai_calls\":%lld,\"ai_latency_p95_ms\":%lld,"
	           "\"ai_error_pct\":%.3f,\"ai_breaker_open\":%d},"
	           "\"marketing_dropped\":%llu,\"shop_notices\":%llu}",
	           (long long)st.spike_sig.depth, (long long)st.p95_ms, st.spike_sig.error_pct,
	           st.degrade_sig.bsps, st.degrade_sig.bsps_up, st.degrade_sig.bsps_delivering,
	           st.degrade_sig.store_error_pct, (long long)st.degrade_sig.ai_calls,
	           (long long)st.degrade_sig.ai_p95_ms, st.degrade_sig.ai_error_pct,
	           st.degrade_sig.ai_breaker_open, (unsigned long long)st.dropped,
	           (unsigned long long)st.shop_notices);
}
