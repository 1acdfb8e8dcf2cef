/*
 * send_net.c - the sender's network thread: libcurl multi, the requests in
 * flight, and the send journal. It never calls the store, so an answer is
 * read, judged and (if it is an acceptance) made durable in the journal
 * within a pass of curl, however long the store keeps the recorder waiting.
 *
 * A pass:
 *   1. take the jobs the recorder handed over, each into a free slot, and
 *      route it (route): through the first WhatsApp BSP whose breaker lets
 *      it and whose number's pace allows (start_send: POST
 *      {url}/{graph_version}/{phone_number_id}/messages, the row's body as
 *      stored); with no BSP up, P0/P1 through the SMS gateway; else the
 *      job waits in its slot (parked: a pace's next token, a half-open
 *      breaker's probes) or goes back to the store (held until a breaker
 *      may close; past hold_max a P2/P3 row expires). Nothing starts while
 *      the journal is past SEND_JOURNAL_HOLD times its truncation size
 *      (journal_full);
 *   2. wait (curl_loop_wait: curl's socket interface on epoll) until an
 *      answer, a wake (jobs, stop), curl's timer, a parked job's time or
 *      SEND_SWEEP_MS, and collect the finished requests (reap): each slot
 *      now holds its outcome (finish), and the provider's breaker has
 *      counted it;
 *   3. hand_over: append every acceptance to the journal, journal_sync ONCE
 *      for the pass, then give all the pass's outcomes to the recorder and
 *      ring app->outbox_ready;
 *   4. truncate the journal when it is large and the recorder has recorded
 *      everything in it (maybe_truncate); publish what may be claimed
 *      (claim_upto) and post queued alerts.
 *
 * Routing (route):
 *
 *     customer pair-limited (131056)? --> park (< 2 s) or hold until then
 *     first BSP in order whose breaker allows and that delivers >= 90 %
 *       +-- number paced out? ----------> park until its next token
 *       +-- else ------------------------> send through it
 *     none, P0/P1, SMS breaker allows ---> send by SMS
 *     none, a BSP half-open (probing) ---> park (< 2 s), then hold
 *     none, P2/P3 older than hold_max ---> expire (DEAD, counted)
 *     none ------------------------------> hold until the earliest reopening
 *
 * With --redis the number's pace is the fleet's (cluster_sender_take: one
 * budget for all senders, slowed for all by a 130429), and a breaker that
 * opens here opens the other senders' too (record, share_breakers); when
 * Redis does not answer, this sender paces at its share and its breakers
 * judge alone.
 *
 * Invariants
 *   - An acceptance is handed to the recorder only after the journal_sync
 *     that holds it returned (or failed: then the store is its only record,
 *     as without a journal). So when the process dies, every acceptance
 *     read before the last sync is in the store or in the journal; what a
 *     restart sends twice is only what the provider had taken and this
 *     thread had not yet journaled (still in flight, or in the current pass).
 *   - Every acceptance counted in `journaled` is handed over once, and the
 *     recorder counts it in `applied` once committed and synced to disk:
 *     applied == journaled means every counted record is in the store, so
 *     the file may go.
 *   - There is always a free slot for a job (send_internal.h).
 *
 * Threading: runs on its own thread; owns the slots, the journal, rng and
 * the multi handle (which the recorder and sender_stop only wake).
 */
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "core/log.h"
#include "send/send_internal.h"
#include "core/rng.h"
#include "core/xalloc.h"
#include "send/delivery.h"

/* Largest answer kept (a Cloud API answer is a few hundred bytes). */
#define SEND_RESP_MAX (64 * 1024)
/* The network thread's wait while outcomes wait for room in the queue
 * (which cannot happen, see above) or the journal holds new sends back. */
#define SEND_POLL_MS 5
/* The drain's wait between passes. */
#define SEND_DRAIN_POLL_MS 50
/* Extra time, past the send timeout, that the drain waits for answers. */
#define SEND_DRAIN_SLACK_MS 1000

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct send_slot *slot = ud;
	size_t len = size * n;
	if (slot->resp.len + len > SEND_RESP_MAX)
		slot->resp_truncated = 1; /* keep reading; the answer is cut */
	else
		buf_append(&slot->resp, p, len);
	return len;
}

/* A phone_number_id goes into the URL path: only these characters. */
static int phone_id_ok(const char *p)
{
	size_t n = 0;
	for (; *p; p++, n++) {
		char c = *p;
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      c == '_' || c == '-' || c == '.'))
			return 0;
	}
	return n > 0 && n <= 64;
}

static void set_outcome(struct send_outcome *o, enum outbox_state final, int code, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

static void set_outcome(struct send_outcome *o, enum outbox_state final, int code, const char *fmt,
                        ...)
{
	o->final = final;
	o->error_code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(o->error, sizeof(o->error), fmt, ap);
	va_end(ap);
}

/*
 * decide_failure turns a failed attempt into its outcome: retry later, or
 * dead when this was the last attempt allowed.
 */
static void decide_failure(struct sender *s, struct send_outcome *o, enum send_class cls,
                           int64_t now)
{
	const struct config *cfg = &s->app->cfg;
	int attempt = o->attempts > 0 ? o->attempts : 1;
	atomic_fetch_add_explicit(&s->app->metrics.send_errors, 1, memory_order_relaxed);
	if (cls == SEND_PERMANENT) {
		o->final = OUTBOX_FAILED;
		return;
	}
	if (attempt >= cfg->send_max_attempts) {
		o->final = OUTBOX_DEAD;
		return;
	}
	int exp = cls == SEND_RATE ? attempt + 1 : attempt;
	o->final = OUTBOX_PENDING;
	o->next_attempt_at = now + backoff_delay_ms(exp, cfg->retry_base_ms, cfg->retry_cap_ms,
	                                            rng_next(&s->rng));
}

/* ---- alerts --------------------------------------------------------------------- */

/* alert_post starts the oldest queued alert, if none is in flight. */
static void alert_post(struct sender *s)
{
	struct send_alerts *al = &s->alerts;
	if (al->busy || al->n == 0)
		return;
	char *json = al->queue[al->head];
	al->queue[al->head] = NULL;
	al->head = (al->head + 1) % SEND_ALERTS_MAX;
	al->n--;
	buf_reset(&al->body);
	buf_puts(&al->body, json);
	free(json);
	if (!al->easy) {
		al->easy = curl_easy_init();
		al->headers = curl_slist_append(NULL, "Content-Type: application/json");
		if (!al->easy || !al->headers) {
			atomic_fetch_add(&s->alerts_failed, 1);
			return;
		}
		curl_easy_setopt(al->easy, CURLOPT_PRIVATE, al);
		curl_easy_setopt(al->easy, CURLOPT_URL, s->app->cfg.alert_url);
		curl_easy_setopt(al->easy, CURLOPT_HTTPHEADER, al->headers);
		curl_easy_setopt(al->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(al->easy, CURLOPT_TIMEOUT_MS, (long)s->app->cfg.send_timeout_ms);
	}
	curl_easy_setopt(al->easy, CURLOPT_POSTFIELDS, al->body.data);
	curl_easy_setopt(al->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)al->body.len);
	if (curl_multi_add_handle(s->loop.multi, al->easy) != CURLM_OK) {
		atomic_fetch_add(&s->alerts_failed, 1);
		return;
	}
	al->busy = 1;
}

/* alert_done reads the answer of the alert in flight. */
static void alert_done(struct sender *s, CURLcode res)
{
	struct send_alerts *al = &s->alerts;
	long status = 0;
	curl_easy_getinfo(al->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(s->loop.multi, al->easy);
	al->busy = 0;
	if (res == CURLE_OK && status >= 200 && status <= 299) {
		atomic_fetch_add(&s->alerts_sent, 1);
		return;
	}
	atomic_fetch_add(&s->alerts_failed, 1);
	log_warn("send.alert_failed", "could not deliver an alert to %s: %s", s->app->cfg.alert_url,
	         res != CURLE_OK ? curl_easy_strerror(res) : "the hook did not answer 2xx");
}

/* alert raises a breaker's change: a log line, and the hook when configured. */
static void alert(struct sender *s, const struct provider *p, enum breaker_state to, int64_t now)
{
	const char *what = to == BREAKER_OPEN        ? "opened: its sends go elsewhere or wait"
	                   : to == BREAKER_HALF_OPEN ? "half-open: probing it"
	                                             : "closed: sending through it again";
	if (to == BREAKER_OPEN)
		log_warn("send.breaker_open", "provider %s (%s) %s until %lld", p->name, p->url,
		         what, (long long)breaker_open_until(&p->br));
	else
		log_info(to == BREAKER_CLOSED ? "send.breaker_closed" : "send.breaker_half_open",
		         "provider %s (%s) %s", p->name, p->url, what);
	const char *url = s->app->cfg.alert_url;
	if (!url || !*url)
		return;
	struct send_alerts *al = &s->alerts;
	if (al->n == SEND_ALERTS_MAX) { /* the hook is down: keep the newest */
		free(al->queue[al->head]);
		al->head = (al->head + 1) % SEND_ALERTS_MAX;
		al->n--;
		atomic_fetch_add(&s->alerts_dropped, 1);
	}
	struct buf b;
	buf_init(&b);
	buf_printf(&b,
	           "{\"source\":\"munim\",\"event\":\"breaker_%s\",\"provider\":\"%s\","
	           "\"state\":%d,\"at_ms\":%lld,\"text\":\"provider %s %s\"}",
	           breaker_state_name(to), p->name, (int)to, (long long)now, p->name, what);
	al->queue[(al->head + al->n) % SEND_ALERTS_MAX] = xstrdup(b.data);
	al->n++;
	buf_release(&b);
}

/* ---- breakers --------------------------------------------------------------------- */

/* changed: p's breaker just moved to `to`; publish, count and tell. */
static void changed(struct sender *s, struct provider *p, int64_t now)
{
	enum breaker_state to = breaker_state(&p->br);
	provider_publish(p);
	atomic_fetch_add(to == BREAKER_OPEN        ? &p->opened
	                 : to == BREAKER_HALF_OPEN ? &p->half_opened
	                                           : &p->closed,
	                 1);
	alert(s, p, to, now);
}

/* allow: may a send go through p now (a half-open probe is taken)? */
static int allow(struct sender *s, struct provider *p, int64_t now)
{
	int moved = 0;
	int ok = breaker_allow(&p->br, now, &moved);
	if (moved)
		changed(s, p, now);
	return ok;
}

/* record counts the answer of a send through p in its breaker. */
static void record(struct sender *s, struct provider *p, enum breaker_outcome o, int64_t now)
{
	if (o == BREAKER_FAILURE)
		atomic_fetch_add_explicit(&p->failures, 1, memory_order_relaxed);
	if (breaker_record(&p->br, now, o, rng_next(&s->rng))) {
		changed(s, p, now);
		/* what this sender saw, the fleet heeds (share_breakers) */
		if (s->app->cluster && breaker_state(&p->br) == BREAKER_OPEN)
			cluster_sender_opened(s->app->cluster, p->url, breaker_open_until(&p->br),
			                      now);
	}
}

/*
 * share_breakers: with Redis, at each of its ticks (cluster_sender_tick),
 * opens the breakers another sender holds open, until that end plus this
 * sender's own jitter (so that the fleet's probes do not all come at one
 * instant). A breaker already open as long is left alone.
 */
static void share_breakers(struct sender *s, int64_t now)
{
	struct cluster_sender *cl = s->app->cluster;
	struct provider_list *l = &s->providers;
	const char *keys[PROVIDER_MAX];
	int64_t until[PROVIDER_MAX];
	if (!cl)
		return;
	for (int i = 0; i < l->n; i++)
		keys[i] = l->p[i].url;
	if (cluster_sender_tick(cl, now, keys, l->n, until) != 1)
		return;
	for (int i = 0; i < l->n; i++) {
		struct provider *p = &l->p[i];
		enum breaker_state was = breaker_state(&p->br);
		if (until[i] <= now ||
		    (was == BREAKER_OPEN && breaker_open_until(&p->br) >= until[i]))
			continue;
		uint64_t span = (uint64_t)((until[i] - now) * s->app->cfg.breaker_jitter_pct / 100);
		int64_t end = until[i] + (int64_t)(rng_next(&s->rng) % (span + 1));
		if (!breaker_force_open(&p->br, now, end))
			continue;
		provider_publish(p);
		if (was == BREAKER_OPEN)
			continue;
		atomic_fetch_add(&p->opened, 1);
		cluster_sender_forced_add(cl);
		log_warn("send.breaker_shared_open",
		         "provider %s (%s) opened until %lld: another sender saw it fail", p->name,
		         p->url, (long long)end);
	}
}

/* usable: could p take a send soon (not OPEN before its time)? */
static int usable(const struct provider *p, int64_t now)
{
	return breaker_state(&p->br) != BREAKER_OPEN || now >= breaker_open_until(&p->br);
}

/* waiting_above_p3: some P0..P2 row waits in the outbox. */
static int waiting_above_p3(struct app *app)
{
	for (int p = 0; p < PRIO_P3; p++)
		if (atomic_load_explicit(&app->metrics.outbox[p][OUTBOX_PENDING],
		                         memory_order_relaxed) > 0)
			return 1;
	return 0;
}

/*
 * publish_claim_upto tells the recorder what is worth claiming: every
 * priority while a BSP is usable and delivering, P0/P1 while only the SMS
 * gateway is, nothing otherwise. Rings it when that widens.
 */
static void publish_claim_upto(struct sender *s, int64_t now)
{
	struct provider_list *l = &s->providers;
	int upto = -1, up = 0, delivering = 0;
	for (int i = 0; i < l->n; i++)
		s->delivering[i] = delivery_ok(s->app->delivery, l->p[i].name, now);
	for (int i = 0; i < l->nwa; i++) {
		if (!usable(&l->p[i], now))
			continue;
		up++;
		delivering += s->delivering[i];
	}
	atomic_store_explicit(&s->bsps_up, up, memory_order_relaxed);
	atomic_store_explicit(&s->bsps_delivering, delivering, memory_order_relaxed);
	if (delivering > 0)
		upto = PRIO_P3;
	if (upto < 0 && l->sms >= 0 && usable(&l->p[l->sms], now))
		upto = PRIO_P1;
	/* the controller pauses marketing (a spike of level 2+, a festival
	 * peak), or lets it go only while nothing else waits (strict mode) */
	struct app *app = s->app;
	if (upto > PRIO_P2 && (atomic_load(&app->pause_p3) ||
	                       (atomic_load(&app->priority_strict) && waiting_above_p3(app))))
		upto = PRIO_P2;
	int was = atomic_exchange(&s->claim_upto, upto);
	if (upto > was)
		notify_signal(&s->app->outbox_ready);
}

/* ---- sending ---------------------------------------------------------------------- */

static int slot_prepare(struct sender *s, struct send_slot *slot)
{
	if (slot->easy)
		return 0;
	slot->easy = curl_loop_easy_post(slot, on_body, slot->curl_err,
	                                 (long)s->app->cfg.send_timeout_ms);
	return slot->easy ? 0 : ERR_NOMEM;
}

/* done_now: the slot's job ends without a request; its outcome is set. */
static void done_now(struct sender *s, struct send_slot *slot)
{
	if (slot->state == SLOT_PARKED)
		s->parked--;
	send__job_release(&slot->job);
	slot->state = SLOT_DONE;
	s->done++;
}

/* start_send hands the slot's job to curl through provider pi. */
static void start_send(struct sender *s, struct send_slot *slot, int pi, int64_t now)
{
	struct send_outcome *o = &slot->o;
	struct provider *p = &s->providers.p[pi];
	const struct send_job *job = &slot->job;
	o->provider = pi;
	slot->curl_err[0] = '\0';
	slot->resp_truncated = 0;
	buf_reset(&slot->resp);
	atomic_fetch_add_explicit(&s->app->metrics.send_attempts, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&p->sends, 1, memory_order_relaxed);

	if (slot_prepare(s, slot) != 0) {
		record(s, p, BREAKER_IGNORED, now);
		set_outcome(o, OUTBOX_PENDING, 0, "could not create a request");
		decide_failure(s, o, SEND_RETRY, now);
		done_now(s, slot);
		return;
	}
	arena_reset(&s->resp_arena);
	if (provider_request(p, &s->app->cfg, job->id, job->phone_number_id, job->to, job->body,
	                     &slot->url, &slot->body, &s->resp_arena) != 0) {
		record(s, p, BREAKER_IGNORED, now);
		set_outcome(o, OUTBOX_FAILED, 0, "%s cannot carry this message: it has no text",
		            p->name);
		atomic_fetch_add_explicit(&s->app->metrics.send_errors, 1, memory_order_relaxed);
		done_now(s, slot);
		return;
	}
	curl_easy_setopt(slot->easy, CURLOPT_URL, slot->url.data);
	curl_easy_setopt(slot->easy, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDS, slot->body.data ? slot->body.data : "");
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)slot->body.len);
	CURLMcode mc = curl_multi_add_handle(s->loop.multi, slot->easy);
	if (mc != CURLM_OK) {
		record(s, p, BREAKER_IGNORED, now);
		set_outcome(o, OUTBOX_PENDING, 0, "could not start a request: %s",
		            curl_multi_strerror(mc));
		decide_failure(s, o, SEND_RETRY, now);
		done_now(s, slot);
		return;
	}
	slot->started_us = clock_mono_us();
	if (slot->state == SLOT_PARKED)
		s->parked--;
	slot->state = SLOT_ACTIVE;
	s->active++;
}

/* hold sends the slot's job back to the store, due at `until`. */
static void hold(struct sender *s, struct send_slot *slot, int64_t until, const char *why)
{
	struct send_outcome *o = &slot->o;
	set_outcome(o, OUTBOX_PENDING, 0, "%s", why);
	o->deferred = 1;
	o->next_attempt_at = until;
	done_now(s, slot);
}

/* park keeps the slot's job here until `until` (wall ms). */
static void park(struct sender *s, struct send_slot *slot, int64_t until, int64_t now)
{
	if (slot->state != SLOT_PARKED) {
		slot->state = SLOT_PARKED;
		slot->parked_since = now;
		s->parked++;
	}
	slot->park_until = until;
	if (s->parked_due == 0 || until < s->parked_due)
		s->parked_due = until;
}

/* The earliest time an open breaker among the BSPs (or, pinned to SMS, the
 * gateway) lets a probe through; at least SEND_HOLD_MIN_MS away. */
static int64_t reopen_at(struct sender *s, const struct send_job *job, int sms_only, int64_t now)
{
	const struct provider_list *l = &s->providers;
	int64_t at = 0;
	for (int i = 0; i < l->n; i++) {
		const struct provider *p = &l->p[i];
		int eligible = sms_only ? i == l->sms : i < l->nwa || job->prio <= PRIO_P1;
		if (eligible && breaker_state(&p->br) == BREAKER_OPEN &&
		    (at == 0 || breaker_open_until(&p->br) < at))
			at = breaker_open_until(&p->br);
	}
	return at > now + SEND_HOLD_MIN_MS ? at : now + SEND_HOLD_MIN_MS;
}

/*
 * route decides what becomes of the job in slot (FREE or PARKED): sent
 * (ACTIVE), parked, held or expired (DONE). See the diagram at the top.
 */
static void route(struct sender *s, struct send_slot *slot, int64_t now)
{
	struct provider_list *l = &s->providers;
	const struct send_job *job = &slot->job;
	const struct config *cfg = &s->app->cfg;
	int sms_only = strcmp(job->pin, PROVIDER_SMS) == 0 && l->sms >= 0;
	int64_t first = slot->state == SLOT_PARKED ? slot->parked_since : now;
	int can_park = now - first < SEND_PARK_MAX_MS;

	if (!phone_id_ok(job->phone_number_id)) {
		set_outcome(&slot->o, OUTBOX_FAILED, 0, "invalid phone_number_id \"%.64s\"",
		            job->phone_number_id);
		atomic_fetch_add_explicit(&s->app->metrics.send_errors, 1, memory_order_relaxed);
		done_now(s, slot);
		return;
	}
	/* the seed's spike levels (app.h sms_critical): from 3 a critical
	 * message that would wait goes by SMS instead, at 4 every one does */
	int mode = atomic_load_explicit(&s->app->sms_critical, memory_order_relaxed);
	int critical_sms = l->sms >= 0 && job->prio <= PRIO_P1 && mode >= 1;
	if (critical_sms && mode >= 2 && !sms_only && allow(s, &l->p[l->sms], now)) {
		start_send(s, slot, l->sms, now);
		return;
	}
	int64_t w = sms_only ? 0 : pace_recipient_wait(s->pace, job->phone_number_id, job->to, now);
	if (w > 0) {
		if (can_park && w < SEND_PARK_MAX_MS)
			park(s, slot, now + w, now);
		else
			hold(s, slot, now + w, "waiting out the customer's rate limit (131056)");
		return;
	}
	int probing = 0;
	for (int i = 0; i < l->nwa && !sms_only; i++) {
		struct provider *p = &l->p[i];
		if (!s->delivering[i])
			continue;
		if (!allow(s, p, now)) {
			probing |= breaker_state(&p->br) == BREAKER_HALF_OPEN;
			continue;
		}
		/* the number's budget: the fleet's with Redis, else this sender's */
		int64_t pw = s->app->cluster ? cluster_sender_take(s->app->cluster,
		                                                   job->phone_number_id, now)
		                             : pace_take(s->pace, job->phone_number_id, now);
		if (pw == 0) {
			start_send(s, slot, i, now);
			return;
		}
		record(s, p, BREAKER_IGNORED, now); /* gives back a half-open probe */
		if (critical_sms && allow(s, &l->p[l->sms], now)) {
			start_send(s, slot, l->sms, now);
			return;
		}
		if (can_park)
			park(s, slot, now + pw, now);
		else
			hold(s, slot, now + pw, "paced: the number's sends per second are used up");
		return;
	}
	if (l->sms >= 0 && (job->prio <= PRIO_P1 || sms_only)) {
		if (allow(s, &l->p[l->sms], now)) {
			start_send(s, slot, l->sms, now);
			return;
		}
		probing |= breaker_state(&l->p[l->sms].br) == BREAKER_HALF_OPEN;
	}
	if (probing && can_park) {
		park(s, slot, now + SEND_POLL_MS * 10, now);
		return;
	}
	if (job->prio >= PRIO_P2 && job->created_at > 0 &&
	    now - job->created_at >= cfg->hold_max_ms) {
		set_outcome(&slot->o, OUTBOX_DEAD, 0,
		            "expired: held %lld s while no WhatsApp provider was up",
		            (long long)((now - job->created_at) / 1000));
		slot->o.expired = 1;
		done_now(s, slot);
		return;
	}
	hold(s, slot, reopen_at(s, job, sms_only, now),
	     sms_only ? "held: the SMS gateway is down"
	              : "held: no provider is up for this message");
}

/*
 * route_parked routes again the parked jobs whose time has come, P0 first,
 * and works out when the next one is due.
 */
static void route_parked(struct sender *s, int64_t now)
{
	if (s->parked == 0 || now < s->parked_due)
		return;
	s->parked_due = 0;
	for (int prio = 0; prio < PRIO_COUNT; prio++) {
		for (int i = 0; i < s->nslots; i++) {
			struct send_slot *slot = &s->slots[i];
			if (slot->state != SLOT_PARKED || (int)slot->job.prio != prio)
				continue;
			if (slot->park_until > now) {
				if (s->parked_due == 0 || slot->park_until < s->parked_due)
					s->parked_due = slot->park_until;
				continue;
			}
			route(s, slot, now);
		}
	}
}

/* place puts a handed-over job into a free slot, ready to route. */
static void place(struct send_slot *slot, struct send_job *job)
{
	struct send_outcome *o = &slot->o;
	memset(o, 0, sizeof(*o));
	o->id = job->id;
	o->tenant_id = job->tenant_id;
	o->prio = job->prio;
	o->attempts = job->attempts;
	o->inbound_received_at = job->inbound_received_at;
	o->provider = -1;
	memcpy(o->to, job->to, sizeof(o->to));
	slot->job = *job; /* the strings move to the slot */
	job->phone_number_id = NULL;
	job->body = NULL;
}

/* on_answer adjusts the pacing to what p's answer said about the job. */
static void on_answer(struct sender *s, struct send_slot *slot, const struct provider_answer *a,
                      long status, int64_t now)
{
	const struct send_job *job = &slot->job;
	if (s->providers.p[slot->o.provider].kind != PROVIDER_WHATSAPP)
		return;
	if (a->cls == SEND_OK) {
		pace_recipient_ok(s->pace, job->phone_number_id, job->to);
	} else if (a->error_code == 131056) {
		int64_t w = pace_recipient_limited(s->pace, job->phone_number_id, job->to, now);
		if (slot->o.final == OUTBOX_PENDING && slot->o.next_attempt_at < now + w)
			slot->o.next_attempt_at = now + w;
	} else if (a->error_code == 130429 || (a->error_code == 0 && status == 429)) {
		pace_slow(s->pace, job->phone_number_id, now);
		if (s->app->cluster)
			cluster_sender_slow(s->app->cluster, job->phone_number_id, now);
	}
}

/* finish judges the answer of a completed request into its slot's outcome. */
static void finish(struct sender *s, struct send_slot *slot, CURLcode res, int64_t now)
{
	struct send_outcome *o = &slot->o;
	struct provider *p = &s->providers.p[o->provider];
	struct provider_answer a;
	long status = 0;
	if (res == CURLE_OK)
		curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
	if (res == CURLE_OK && status == 0)
		status = -1; /* an answer without a status line: not "no answer" */
	arena_reset(&s->resp_arena);
	provider_judge(p, status < 0 ? 0 : status,
	               slot->curl_err[0] ? slot->curl_err : curl_easy_strerror(res),
	               slot->resp.data, slot->resp.len, slot->resp_truncated, &s->resp_arena, &a);
	int64_t took_ms = (clock_mono_us() - slot->started_us) / 1000;
	record(s, p, breaker_outcome_of(a.cls, took_ms, s->app->cfg.breaker_slow_ms), now);
	if (a.cls == SEND_OK) {
		memcpy(o->msg_id, a.msg_id, strlen(a.msg_id) + 1);
		o->final = OUTBOX_ACCEPTED;
		atomic_fetch_add_explicit(&p->accepted, 1, memory_order_relaxed);
		on_answer(s, slot, &a, status, now);
		return;
	}
	set_outcome(o, OUTBOX_PENDING, a.error_code, "%s %s", p->name, a.error);
	decide_failure(s, o, a.cls, now);
	/* WhatsApp refused a P0/P1 for good (not on WhatsApp, blocked...):
	 * the SMS gateway may still reach the customer */
	if (o->final == OUTBOX_FAILED && provider_sms_fallback(&s->app->cfg, o->prio, p->name)) {
		o->final = OUTBOX_PENDING;
		o->next_attempt_at = now;
		snprintf(o->pin, sizeof(o->pin), "%s", PROVIDER_SMS);
	}
	on_answer(s, slot, &a, status, now);
}

/*
 * journal_full: the journal is past its hold size and still holds records
 * the store lacks; new sends wait until the recorder catches up and the
 * journal can be truncated.
 */
static int journal_full(struct sender *s)
{
	return s->journal && journal_size(s->journal) > s->journal_max * SEND_JOURNAL_HOLD &&
	       atomic_load(&s->applied) != s->journaled;
}

/* take_jobs routes every job the recorder handed over, then the parked ones due. */
static void take_jobs(struct sender *s)
{
	if (journal_full(s)) {
		if (!s->held_back)
			log_warn("send.journal_hold",
			         "the send journal holds %lld bytes the store has not caught up "
			         "with; new sends wait",
			         (long long)journal_size(s->journal));
		s->held_back = 1;
		return;
	}
	s->held_back = 0;
	pthread_mutex_lock(&s->mu);
	struct send_job *jobs = s->jobs;
	int n = s->njobs;
	s->jobs = s->jobs_spare;
	s->njobs = 0;
	pthread_mutex_unlock(&s->mu);
	s->jobs_spare = jobs;

	int64_t now = clock_wall_ms();
	int k = 0;
	for (int i = 0; i < n; i++) {
		while (k < s->nslots && s->slots[k].state != SLOT_FREE)
			k++;
		if (k < s->nslots) {
			place(&s->slots[k], &jobs[i]);
			route(s, &s->slots[k], now);
		} else { /* cannot happen: at most nslots rows are outstanding */
			log_error("send.no_slot",
			          "no request slot for outbox row %lld; it is sent after a restart",
			          (long long)jobs[i].id);
			send__job_release(&jobs[i]);
		}
	}
	route_parked(s, now);
}

/* reap collects the requests curl has finished. */
static void reap(struct sender *s)
{
	CURLMsg *m;
	int left;
	int64_t now = clock_wall_ms();
	while ((m = curl_multi_info_read(s->loop.multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode res = m->data.result;
		if (e == s->alerts.easy) {
			alert_done(s, res);
			continue;
		}
		struct send_slot *slot = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&slot);
		curl_multi_remove_handle(s->loop.multi, e);
		finish(s, slot, res, now);
		send__job_release(&slot->job);
		slot->state = SLOT_DONE;
		s->active--;
		s->done++;
	}
}

/* ring wakes the recorder, which sleeps on app->outbox_ready. */
static void ring(struct sender *s)
{
	atomic_fetch_add(&s->net_rings, 1);
	notify_signal(&s->app->outbox_ready);
}

/* journal_pass journals the acceptances among the DONE slots, one sync. */
static void journal_pass(struct sender *s)
{
	int n = 0;
	for (int i = 0; i < s->nslots; i++) {
		struct send_slot *slot = &s->slots[i];
		if (slot->state == SLOT_DONE && slot->o.final == OUTBOX_ACCEPTED &&
		    !slot->o.journaled &&
		    journal_append(s->journal, slot->o.id, slot->o.msg_id) == 0)
			n++;
	}
	if (n == 0)
		return;
	if (journal_sync(s->journal) != 0) {
		if (!s->journal_failing) /* once per outage */
			log_error("send.journal_failed",
			          "could not write the send journal \"%s\": %s; acceptances are "
			          "recorded in the store only",
			          s->app->cfg.send_journal, strerror(errno));
		s->journal_failing = 1;
		return;
	}
	if (s->journal_failing)
		log_info("send.journal_recovered", "the send journal is written again");
	s->journal_failing = 0;
	for (int i = 0; i < s->nslots; i++) {
		struct send_slot *slot = &s->slots[i];
		if (slot->state == SLOT_DONE && slot->o.final == OUTBOX_ACCEPTED &&
		    !slot->o.journaled)
			slot->o.journaled = 1;
	}
	s->journaled += n;
}

/*
 * hand_over journals this pass's acceptances, then gives every outcome to
 * the recorder. A test hook may drop them instead (a simulated kill).
 */
static void hand_over(struct sender *s)
{
	if (s->done == 0)
		return;
	if (s->journal) {
		int64_t before = s->journaled;
		journal_pass(s);
		if (s->journaled > before && s->hooks.after_journal_sync &&
		    s->hooks.after_journal_sync(s->hooks.ud)) {
			for (int i = 0; i < s->nslots; i++)
				if (s->slots[i].state == SLOT_DONE)
					s->slots[i].state = SLOT_FREE;
			s->done = 0;
			return;
		}
	}
	int handed = 0;
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < s->nslots && s->nouts < s->nslots; i++) {
		struct send_slot *slot = &s->slots[i];
		if (slot->state != SLOT_DONE)
			continue;
		s->outs[s->nouts++] = slot->o;
		slot->state = SLOT_FREE;
		s->done--;
		handed++;
	}
	pthread_mutex_unlock(&s->mu);
	if (handed > 0)
		ring(s);
}

/* maybe_truncate empties a large journal once the store has it all. */
static void maybe_truncate(struct sender *s)
{
	if (!s->journal || journal_size(s->journal) <= s->journal_max ||
	    atomic_load(&s->applied) != s->journaled)
		return;
	if (journal_truncate(s->journal) != 0) {
		if (!s->truncate_failing)
			log_error("send.journal_truncate_failed",
			          "could not truncate the send journal \"%s\": %s",
			          s->app->cfg.send_journal, strerror(errno));
		s->truncate_failing = 1;
		return;
	}
	s->truncate_failing = 0;
}

/*
 * One pass: start what was handed over, wait up to timeout_ms for answers
 * (or a wake), collect them and hand them back.
 */
static void pass(struct sender *s, int timeout_ms)
{
	take_jobs(s);
	curl_loop_wait(&s->loop, timeout_ms);
	reap(s);
	hand_over(s);
	maybe_truncate(s);
	int64_t now = clock_wall_ms();
	share_breakers(s, now);
	publish_claim_upto(s, now);
	alert_post(s);
	if (now - s->swept_at >= SEND_SWEEP_MS * 10) {
		pace_sweep(s->pace, now);
		s->swept_at = now;
	}
}

/* The wait of a pass: short while outcomes or held-back jobs wait, until
 * the next parked job's time, else a sweep's. */
static int wait_ms(struct sender *s)
{
	if (s->done > 0 || s->held_back)
		return SEND_POLL_MS;
	if (s->parked > 0) {
		int64_t w = s->parked_due - clock_wall_ms();
		return w <= 0 ? 0 : w < SEND_SWEEP_MS ? (int)w : SEND_SWEEP_MS;
	}
	return SEND_SWEEP_MS;
}

static void run(struct sender *s)
{
	while (!send__stopping(s))
		pass(s, wait_ms(s));
}

/* unpark_all gives every parked job back to the store, due now (stopping). */
static void unpark_all(struct sender *s)
{
	int64_t now = clock_wall_ms();
	for (int i = 0; i < s->nslots && s->parked > 0; i++) {
		if (s->slots[i].state == SLOT_PARKED)
			hold(s, &s->slots[i], now, "the sender stopped before it went");
	}
	s->parked_due = 0;
}

/*
 * drain starts the jobs handed over before the recorder stopped claiming,
 * lets the requests in flight finish (bounded by the send timeout) and
 * hands their outcomes over. Requests still unanswered are cut off: their
 * rows stay SENDING and are retried after a restart.
 */
static void drain(struct sender *s)
{
	int64_t deadline =
	        clock_mono_us() + (s->app->cfg.send_timeout_ms + SEND_DRAIN_SLACK_MS) * 1000;
	for (;;) {
		/* read before taking: a job handed over later cannot exist */
		int closed = atomic_load(&s->claims_closed);
		pass(s, 0);
		unpark_all(s);
		if (closed && s->active == 0 && s->done == 0 && !s->held_back && s->parked == 0)
			break;
		if (clock_mono_us() >= deadline)
			break;
		curl_loop_wait(&s->loop, SEND_DRAIN_POLL_MS);
	}
	s->unanswered = s->active + s->done;
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].state == SLOT_ACTIVE)
			curl_multi_remove_handle(s->loop.multi, s->slots[i].easy);
	if (s->alerts.busy)
		curl_multi_remove_handle(s->loop.multi, s->alerts.easy);
}

void *send__net_main(void *arg)
{
	struct sender *s = arg;
	pthread_setname_np(pthread_self(), "send-net");
	s->rng = rng_seed();
	run(s);
	drain(s);
	atomic_store(&s->net_exited, 1);
	ring(s);
	return NULL;
}

void send__job_release(struct send_job *job)
{
	free(job->phone_number_id);
	free(job->body);
	job->phone_number_id = NULL;
	job->body = NULL;
}

void send__net_release(struct sender *s)
{
	for (int i = 0; s->slots && i < s->nslots; i++) {
		struct send_slot *slot = &s->slots[i];
		if (slot->easy)
			curl_easy_cleanup(slot->easy);
		send__job_release(&slot->job);
		buf_release(&slot->url);
		buf_release(&slot->body);
		buf_release(&slot->resp);
	}
	free(s->slots);
	free(s->jobs_spare);
	s->slots = NULL;
	s->jobs_spare = NULL;
	arena_release(&s->resp_arena);
	pace_free(s->pace);
	s->pace = NULL;
	struct send_alerts *al = &s->alerts;
	if (al->easy)
		curl_easy_cleanup(al->easy);
	curl_slist_free_all(al->headers);
	for (int i = 0; i < al->n; i++)
		free(al->queue[(al->head + i) % SEND_ALERTS_MAX]);
	buf_release(&al->body);
	memset(al, 0, sizeof(*al));
}

void sender_health(struct sender *s, struct sender_health *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	out->bsps = s->providers.nwa;
	out->bsps_up = atomic_load_explicit(&s->bsps_up, memory_order_relaxed);
	out->bsps_delivering = atomic_load_explicit(&s->bsps_delivering, memory_order_relaxed);
	out->sms = s->providers.sms >= 0;
}
