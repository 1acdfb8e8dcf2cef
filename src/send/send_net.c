/*
 * send_net.c - the sender's network thread: libcurl multi, the requests in
 * flight, and the send journal. It never calls the store, so an answer is
 * read, judged and (if it is an acceptance) made durable in the journal
 * within a pass of curl, however long the store keeps the recorder waiting.
 *
 * A pass:
 *   1. take the jobs the recorder handed over and start their POSTs
 *      {bsp_url}/{graph_version}/{phone_number_id}/messages, the row's body
 *      exactly as stored (start_send) - unless the journal has grown past
 *      SEND_JOURNAL_HOLD times its truncation size (journal_full);
 *   2. wait (curl_loop_wait: curl's socket interface on epoll) until an
 *      answer, a wake (jobs, stop), curl's timer or SEND_SWEEP_MS, and
 *      collect the finished requests (reap): each slot now holds its
 *      outcome (finish);
 *   3. hand_over: append every acceptance to the journal, journal_sync ONCE
 *      for the pass, then give all the pass's outcomes to the recorder and
 *      ring app->outbox_ready;
 *   4. truncate the journal when it is large and the recorder has recorded
 *      everything in it (maybe_truncate).
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
#include <sys/random.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "core/log.h"
#include "send/send_internal.h"
#include "send/wamsg.h"

/* Largest answer kept (a Cloud API answer is a few hundred bytes). */
#define SEND_RESP_MAX (64 * 1024)
/* The network thread's wait while outcomes wait for room in the queue
 * (which cannot happen, see above) or the journal holds new sends back. */
#define SEND_POLL_MS 5
/* The drain's wait between passes. */
#define SEND_DRAIN_POLL_MS 50
/* Extra time, past the send timeout, that the drain waits for answers. */
#define SEND_DRAIN_SLACK_MS 1000

/* xorshift64*: the jitter's random source; seeded from getrandom or the clock. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dULL;
}

static uint64_t rng_seed(void)
{
	uint64_t seed = 0;
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = (uint64_t)clock_mono_us() ^ ((uint64_t)clock_wall_ms() << 20);
	return seed ? seed : 0x9e3779b97f4a7c15ULL;
}

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

/* finish judges the answer of a completed request into its slot's outcome. */
static void finish(struct sender *s, struct send_slot *slot, CURLcode res, int64_t now)
{
	struct send_outcome *o = &slot->o;
	const struct jsonr_val *root = NULL;
	if (res != CURLE_OK) {
		set_outcome(o, OUTBOX_PENDING, 0, "no answer: %s",
		            slot->curl_err[0] ? slot->curl_err : curl_easy_strerror(res));
		decide_failure(s, o, SEND_RETRY, now);
		return;
	}
	long status = 0;
	curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
	arena_reset(&s->resp_arena);
	/* not JSON (or cut short): root stays NULL and every lookup says so */
	if (!slot->resp_truncated && slot->resp.len > 0)
		jsonr_parse(slot->resp.data, slot->resp.len, &s->resp_arena, &root);
	if (status >= 200 && status <= 299) {
		size_t idlen = 0;
		const char *id = jsonr_str(
		        jsonr_get(jsonr_at(jsonr_get(root, "messages"), 0), "id"), &idlen);
		if (id && idlen > 0 && idlen <= SEND_MSGID_MAX && strlen(id) == idlen) {
			memcpy(o->msg_id, id, idlen + 1);
			o->final = OUTBOX_ACCEPTED;
			return;
		}
		set_outcome(o, OUTBOX_PENDING, 0, "http %ld without messages[0].id", status);
		decide_failure(s, o, SEND_RETRY, now);
		return;
	}
	const struct jsonr_val *err = jsonr_get(root, "error");
	const char *msg = jsonr_str(jsonr_get(err, "message"), NULL);
	int64_t jc = 0;
	if (jsonr_int(jsonr_get(err, "code"), &jc) != 0)
		jc = 0;
	int ecode = jc > 0 && jc <= INT_MAX ? (int)jc : 0;
	set_outcome(o, OUTBOX_PENDING, ecode, "http %ld: %s", status,
	            msg ? msg : "no error message");
	decide_failure(s, o, send_classify(status, ecode), now);
}

static int slot_prepare(struct sender *s, struct send_slot *slot)
{
	if (slot->easy)
		return 0;
	slot->easy = curl_easy_init();
	if (!slot->easy)
		return ERR_NOMEM;
	CURL *e = slot->easy;
	curl_easy_setopt(e, CURLOPT_PRIVATE, slot);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, slot);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, slot->curl_err);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, s->headers);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->app->cfg.send_timeout_ms);
	return 0;
}

/* start_send copies job into a free slot and hands it to curl. */
static void start_send(struct sender *s, struct send_slot *slot, const struct send_job *job,
                       int64_t now)
{
	struct send_outcome *o = &slot->o;
	memset(o, 0, sizeof(*o));
	o->id = job->id;
	o->tenant_id = job->tenant_id;
	o->prio = job->prio;
	o->attempts = job->attempts;
	o->inbound_received_at = job->inbound_received_at;
	memcpy(o->to, job->to, sizeof(o->to));
	slot->curl_err[0] = '\0';
	slot->resp_truncated = 0;
	buf_reset(&slot->resp);
	atomic_fetch_add_explicit(&s->app->metrics.send_attempts, 1, memory_order_relaxed);

	if (!phone_id_ok(job->phone_number_id)) {
		set_outcome(o, OUTBOX_FAILED, 0, "invalid phone_number_id \"%.64s\"",
		            job->phone_number_id);
		atomic_fetch_add_explicit(&s->app->metrics.send_errors, 1, memory_order_relaxed);
		goto done_now;
	}
	if (slot_prepare(s, slot) != 0) {
		set_outcome(o, OUTBOX_PENDING, 0, "could not create a request");
		decide_failure(s, o, SEND_RETRY, now);
		goto done_now;
	}
	buf_reset(&slot->url);
	buf_printf(&slot->url, "%s/%s/%s/messages", s->base_url, s->app->cfg.graph_version,
	           job->phone_number_id);
	wamsg_with_callback(&slot->body, job->body, job->id);
	curl_easy_setopt(slot->easy, CURLOPT_URL, slot->url.data);
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDS, slot->body.data ? slot->body.data : "");
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)slot->body.len);
	CURLMcode mc = curl_multi_add_handle(s->loop.multi, slot->easy);
	if (mc != CURLM_OK) {
		set_outcome(o, OUTBOX_PENDING, 0, "could not start a request: %s",
		            curl_multi_strerror(mc));
		decide_failure(s, o, SEND_RETRY, now);
		goto done_now;
	}
	slot->state = SLOT_ACTIVE;
	s->active++;
	return;
done_now:
	slot->state = SLOT_DONE;
	s->done++;
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

/* take_jobs starts every job the recorder handed over. */
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
		if (k < s->nslots)
			start_send(s, &s->slots[k], &jobs[i], now);
		else /* cannot happen: at most nslots rows are outstanding */
			log_error("send.no_slot",
			          "no request slot for outbox row %lld; it is sent after a restart",
			          (long long)jobs[i].id);
		send__job_release(&jobs[i]);
	}
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
		struct send_slot *slot = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&slot);
		curl_multi_remove_handle(s->loop.multi, e);
		finish(s, slot, res, now);
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
}

static void run(struct sender *s)
{
	while (!send__stopping(s))
		pass(s, s->done > 0 || s->held_back ? SEND_POLL_MS : SEND_SWEEP_MS);
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
		if (closed && s->active == 0 && s->done == 0 && !s->held_back)
			break;
		if (clock_mono_us() >= deadline)
			break;
		curl_loop_wait(&s->loop, SEND_DRAIN_POLL_MS);
	}
	s->unanswered = s->active + s->done;
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].state == SLOT_ACTIVE)
			curl_multi_remove_handle(s->loop.multi, s->slots[i].easy);
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
		buf_release(&slot->url);
		buf_release(&slot->body);
		buf_release(&slot->resp);
	}
	free(s->slots);
	free(s->jobs_spare);
	s->slots = NULL;
	s->jobs_spare = NULL;
	arena_release(&s->resp_arena);
}
