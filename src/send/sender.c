/*
 * sender.c - the thread that drains the outbox to the provider.
 *
 * Design
 *   One thread, its own store connection, one libcurl multi handle with
 *   keep-alive connections (as many as sends in flight, at least
 *   SEND_MIN_HOST_CONNS) and up to cfg.send_inflight requests in flight. Each request lives in a
 * slot that keeps its easy handle (and so its buffers) from one send to the next.
 *
 *   A pass of the loop:
 *     1. claim up to (free slots) due rows, P0 first (store_outbox_claim);
 *        start a POST {bsp_url}/{graph_version}/{phone_number_id}/messages
 *        for each, with the row's body exactly as stored;
 *     2. let curl run for a few milliseconds (curl_multi_poll) and collect
 *        the finished requests: each slot now holds its outcome;
 *     3. write every outcome of the pass in ONE transaction (store_begin,
 *        store_outbox_accepted/retry/fail..., store_commit); only after the
 *        commit do the metrics move and the slots become free.
 *   With nothing in flight it sleeps on app->outbox_ready (the worker's
 *   signal), waking at the earliest next_attempt_at of a pending row and at
 *   least every SEND_SWEEP_MS (rows added by another process).
 *
 * The outbox row's life here (store.h has the whole diagram):
 *
 *   PENDING --store_outbox_claim--> SENDING --2xx----------------> ACCEPTED
 *                                      |     store_outbox_accepted
 *      ^   store_outbox_retry          |--5xx/429/timeout, attempts left
 *      +-------------------------------+
 *                                      |--same, attempts used up --> DEAD
 *                                      |        store_outbox_fail
 *                                      +--other 4xx ---------------> FAILED
 *                                               store_outbox_fail
 *
 *   SENDING rows found at start (a crash mid-send) go back to PENDING
 *   (store_outbox_recover in sender_start): such a row may be sent twice,
 *   the price of never losing one.
 *
 * Invariants
 *   - A slot's outcome is written before the slot is reused; if the store
 *     refuses the write, the slot stays taken and the write is retried every
 *     SEND_STORE_RETRY_MS, so a database outage stops new sends instead of
 *     forgetting answers.
 *   - metrics.outbox moves only after the commit that makes a move real.
 *   - Retry delays are full jitter (backoff_delay_ms); rate-limited answers
 *     (SEND_RATE) wait one doubling longer than other retryable ones.
 *   - A 2xx answer without messages[0].id is not taken as accepted: it is
 *     retried like a timeout (it is not a Cloud API answer).
 *
 * Threading: everything in struct sender belongs to the sender thread,
 * except `stop`, written by sender_stop. Shared with others: app->metrics
 * (atomics), app->outbox_ready, app->stopping.
 */
#include "send/sender.h"

#include <curl/curl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"

/*
 * Keep-alive connections to one provider host: at least this many, and as
 * many as sends in flight, so that over HTTP/1.1 every send in flight has
 * its own connection (HTTP/2 multiplexes them anyway); requests beyond the
 * limit would wait inside curl with their timeout running.
 */
#define SEND_MIN_HOST_CONNS 32
/* curl_multi_poll timeout while requests are in flight: the longest a newly
 * queued row waits for a free pass when the sender is busy. */
#define SEND_POLL_MS 5
/* Longest idle sleep: rows another process queued are found this late. */
#define SEND_SWEEP_MS 1000
/* Wait after the store refused a claim or the outcomes' write. */
#define SEND_STORE_RETRY_MS 200
/* Largest answer kept (a Cloud API answer is a few hundred bytes). */
#define SEND_RESP_MAX (64 * 1024)
/* Error text stored on the row. */
#define SEND_ERR_MAX 240
/* Largest provider message id taken from an answer. */
#define SEND_MSGID_MAX 256
/* Extra time, past the send timeout, that sender_stop waits for a drain. */
#define SEND_DRAIN_SLACK_MS 1000

enum slot_state { SLOT_FREE = 0, SLOT_ACTIVE = 1, SLOT_DONE = 2 };

struct send_slot {
	enum slot_state state;
	CURL *easy;
	/* the claimed row, copied out of the claim arena */
	int64_t id;
	int64_t tenant_id;
	enum outbox_prio prio;
	int attempts; /* this attempt's number, 1 for the first (claims count it) */
	int64_t inbound_received_at;
	char to[32];
	struct buf url, body, resp;
	int resp_truncated;
	char curl_err[CURL_ERROR_SIZE];
	/* the outcome, once DONE */
	enum outbox_state final; /* ACCEPTED, PENDING (retry), FAILED or DEAD */
	int error_code;
	char error[SEND_ERR_MAX];
	char msg_id[SEND_MSGID_MAX + 1];
	int64_t next_attempt_at;
	int skipped; /* the store found the row no longer SENDING */
};

struct sender {
	struct app *app;
	struct store_conn *conn;
	pthread_t thread;
	int started;
	_Atomic int stop; /* written by sender_stop */
	CURLM *multi;
	struct curl_slist *headers;
	char *base_url; /* bsp_url without a trailing '/' */
	struct send_slot *slots;
	int nslots;
	int active;        /* slots in SLOT_ACTIVE */
	int done;          /* slots in SLOT_DONE */
	int64_t due_at;    /* earliest known next_attempt_at of a pending row, 0: none */
	int store_failing; /* the last write of outcomes failed (log once) */
	int claim_failing; /* the last claim failed (log once) */
	uint64_t seen;     /* the outbox_ready generation last seen */
	uint64_t rng;
	struct arena arena; /* claimed rows, reset before each claim */
};

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

static int stopping(struct sender *s)
{
	return atomic_load(&s->stop) || atomic_load(&s->app->stopping);
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

static void slot_outcome(struct send_slot *slot, enum outbox_state final, int code, const char *fmt,
                         ...) __attribute__((format(printf, 4, 5)));

static void slot_outcome(struct send_slot *slot, enum outbox_state final, int code, const char *fmt,
                         ...)
{
	slot->final = final;
	slot->error_code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(slot->error, sizeof(slot->error), fmt, ap);
	va_end(ap);
}

/*
 * decide turns a failed attempt into its outcome: retry later, or dead
 * when this was the last attempt allowed.
 */
static void decide_failure(struct sender *s, struct send_slot *slot, enum send_class cls,
                           int64_t now)
{
	const struct config *cfg = &s->app->cfg;
	int attempt = slot->attempts > 0 ? slot->attempts : 1;
	atomic_fetch_add_explicit(&s->app->metrics.send_errors, 1, memory_order_relaxed);
	if (cls == SEND_PERMANENT) {
		slot->final = OUTBOX_FAILED;
		return;
	}
	if (attempt >= cfg->send_max_attempts) {
		slot->final = OUTBOX_DEAD;
		return;
	}
	int exp = cls == SEND_RATE ? attempt + 1 : attempt;
	slot->final = OUTBOX_PENDING;
	slot->next_attempt_at = now + backoff_delay_ms(exp, cfg->retry_base_ms, cfg->retry_cap_ms,
	                                               rng_next(&s->rng));
}

/* finish records the outcome of a completed request in its slot. */
static void finish(struct sender *s, struct send_slot *slot, CURLcode res, int64_t now)
{
	json_t *root = NULL;
	slot->msg_id[0] = '\0';
	slot->error[0] = '\0';
	slot->error_code = 0;
	if (res != CURLE_OK) {
		slot_outcome(slot, OUTBOX_PENDING, 0, "no answer: %s",
		             slot->curl_err[0] ? slot->curl_err : curl_easy_strerror(res));
		decide_failure(s, slot, SEND_RETRY, now);
		goto out;
	}
	long status = 0;
	curl_easy_getinfo(slot->easy, CURLINFO_RESPONSE_CODE, &status);
	if (!slot->resp_truncated && slot->resp.len > 0)
		root = json_loadb(slot->resp.data, slot->resp.len, 0, NULL);
	if (status >= 200 && status <= 299) {
		json_t *msgs = json_object_get(root, "messages");
		const char *id = json_string_value(json_object_get(json_array_get(msgs, 0), "id"));
		if (id && *id && strlen(id) <= SEND_MSGID_MAX) {
			memcpy(slot->msg_id, id, strlen(id) + 1);
			slot->final = OUTBOX_ACCEPTED;
			goto out;
		}
		slot_outcome(slot, OUTBOX_PENDING, 0, "http %ld without messages[0].id", status);
		decide_failure(s, slot, SEND_RETRY, now);
		goto out;
	}
	json_t *err = json_object_get(root, "error");
	json_t *code = json_object_get(err, "code");
	const char *msg = json_string_value(json_object_get(err, "message"));
	json_int_t jc = json_is_integer(code) ? json_integer_value(code) : 0;
	int ecode = jc > 0 && jc <= INT_MAX ? (int)jc : 0;
	slot_outcome(slot, OUTBOX_PENDING, ecode, "http %ld: %s", status,
	             msg ? msg : "no error message");
	decide_failure(s, slot, send_classify(status, ecode), now);
out:
	json_decref(root);
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

/* start_send copies row into a free slot and hands it to curl. */
static void start_send(struct sender *s, struct send_slot *slot, const struct outbox_row *row,
                       int64_t now)
{
	slot->id = row->id;
	slot->tenant_id = row->tenant_id;
	slot->prio = row->priority;
	slot->attempts = row->attempts;
	slot->inbound_received_at = row->inbound_received_at;
	snprintf(slot->to, sizeof(slot->to), "%s", row->to ? row->to : "");
	slot->curl_err[0] = '\0';
	slot->resp_truncated = 0;
	buf_reset(&slot->resp);
	atomic_fetch_add_explicit(&s->app->metrics.send_attempts, 1, memory_order_relaxed);

	if (!row->phone_number_id || !phone_id_ok(row->phone_number_id)) {
		slot_outcome(slot, OUTBOX_FAILED, 0, "invalid phone_number_id \"%.64s\"",
		             row->phone_number_id ? row->phone_number_id : "");
		atomic_fetch_add_explicit(&s->app->metrics.send_errors, 1, memory_order_relaxed);
		goto done_now;
	}
	if (slot_prepare(s, slot) != 0) {
		slot_outcome(slot, OUTBOX_PENDING, 0, "could not create a request");
		decide_failure(s, slot, SEND_RETRY, now);
		goto done_now;
	}
	buf_reset(&slot->url);
	buf_printf(&slot->url, "%s/%s/%s/messages", s->base_url, s->app->cfg.graph_version,
	           row->phone_number_id);
	buf_reset(&slot->body);
	buf_puts(&slot->body, row->body ? row->body : "");
	curl_easy_setopt(slot->easy, CURLOPT_URL, slot->url.data);
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDS, slot->body.data);
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)slot->body.len);
	CURLMcode mc = curl_multi_add_handle(s->multi, slot->easy);
	if (mc != CURLM_OK) {
		slot_outcome(slot, OUTBOX_PENDING, 0, "could not start a request: %s",
		             curl_multi_strerror(mc));
		decide_failure(s, slot, SEND_RETRY, now);
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
 * claim takes up to room due rows and starts them. Returns how many were
 * claimed, or a negative ERR_* when the store refused.
 */
static int claim(struct sender *s, int64_t now, int room)
{
	struct outbox_row *rows = NULL;
	int n = 0;
	arena_reset(&s->arena);
	int rc = store_outbox_claim(s->conn, now, room, &s->arena, &rows, &n);
	if (rc != 0) {
		if (!s->claim_failing) /* once per outage, not every retry */
			log_error("send.claim_failed", "could not claim outbox rows: %s",
			          store_errmsg(s->conn));
		s->claim_failing = 1;
		return rc;
	}
	if (s->claim_failing)
		log_info("send.claim_recovered", "outbox rows are being claimed again");
	s->claim_failing = 0;
	int k = 0;
	for (int i = 0; i < n; i++) {
		metrics_outbox_move(&s->app->metrics, rows[i].priority, OUTBOX_PENDING,
		                    OUTBOX_SENDING);
		while (k < s->nslots && s->slots[k].state != SLOT_FREE)
			k++;
		if (k == s->nslots) {
			/* the store returned more than asked: the rest wait for a
			 * restart's recovery rather than overrun the slots */
			log_error("send.claim_overrun", "claimed %d rows for %d free slots", n,
			          room);
			break;
		}
		start_send(s, &s->slots[k], &rows[i], now);
	}
	return n;
}

/* reap collects the requests curl has finished. */
static void reap(struct sender *s)
{
	CURLMsg *m;
	int left;
	int64_t now = clock_wall_ms();
	while ((m = curl_multi_info_read(s->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *e = m->easy_handle;
		CURLcode res = m->data.result;
		struct send_slot *slot = NULL;
		curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&slot);
		curl_multi_remove_handle(s->multi, e);
		finish(s, slot, res, now);
		slot->state = SLOT_DONE;
		s->active--;
		s->done++;
	}
}

static int write_outcome(struct sender *s, struct send_slot *slot, int64_t now)
{
	switch (slot->final) {
	case OUTBOX_ACCEPTED: return store_outbox_accepted(s->conn, slot->id, slot->msg_id, now);
	case OUTBOX_PENDING:
		return store_outbox_retry(s->conn, slot->id, slot->next_attempt_at,
		                          slot->error_code, slot->error, now);
	default:
		return store_outbox_fail(s->conn, slot->id, slot->final, slot->error_code,
		                         slot->error, now);
	}
}

/* After the commit: metrics, logs, the wake-up time of retries; frees the slot. */
static void settle(struct sender *s, struct send_slot *slot, int64_t now)
{
	struct metrics *m = &s->app->metrics;
	if (slot->skipped) {
		/* the row had left SENDING behind our back (an operator's change):
		 * its new state is not ours to count */
		metrics_outbox_move(m, slot->prio, OUTBOX_SENDING, -1);
		log_warn("send.row_moved",
		         "outbox row %lld was no longer sending; outcome "
		         "\"%s\" dropped",
		         (long long)slot->id, outbox_state_name(slot->final));
		goto free_slot;
	}
	metrics_outbox_move(m, slot->prio, OUTBOX_SENDING, (int)slot->final);
	switch (slot->final) {
	case OUTBOX_ACCEPTED:
		if (slot->inbound_received_at > 0)
			metrics_observe_us(&m->reply_latency,
			                   (now - slot->inbound_received_at) * 1000);
		break;
	case OUTBOX_PENDING:
		if (s->due_at == 0 || slot->next_attempt_at < s->due_at)
			s->due_at = slot->next_attempt_at;
		log_debug("send.retry", "reply %lld to %s: attempt %d failed (%s); next in %lld ms",
		          (long long)slot->id, slot->to, slot->attempts, slot->error,
		          (long long)(slot->next_attempt_at - now));
		break;
	case OUTBOX_DEAD:
		atomic_fetch_add_explicit(&m->dead_letters, 1, memory_order_relaxed);
		log_warn("send.dead_letter",
		         "reply %lld of tenant %lld to %s dead-lettered after %d attempts: %s",
		         (long long)slot->id, (long long)slot->tenant_id, slot->to, slot->attempts,
		         slot->error);
		break;
	default:
		log_warn("send.failed", "reply %lld of tenant %lld to %s failed for good: %s",
		         (long long)slot->id, (long long)slot->tenant_id, slot->to, slot->error);
		break;
	}
free_slot:
	slot->state = SLOT_FREE;
	s->done--;
}

/*
 * apply writes every DONE slot's outcome in one transaction, then settles
 * them. On a store error nothing is settled and the caller tries again.
 */
static int apply(struct sender *s)
{
	int64_t now = clock_wall_ms();
	int rc = store_begin(s->conn);
	if (rc != 0)
		goto fail;
	for (int i = 0; i < s->nslots; i++) {
		struct send_slot *slot = &s->slots[i];
		if (slot->state != SLOT_DONE)
			continue;
		rc = write_outcome(s, slot, now);
		/* the row left SENDING behind our back: nothing to write */
		slot->skipped = rc == ERR_NOTFOUND || rc == ERR_CONFLICT;
		if (slot->skipped)
			rc = 0;
		if (rc != 0) {
			store_rollback(s->conn);
			goto fail;
		}
	}
	rc = store_commit(s->conn);
	if (rc != 0) {
		store_rollback(s->conn);
		goto fail;
	}
	if (s->store_failing)
		log_info("send.store_recovered", "send outcomes are being recorded again");
	s->store_failing = 0;
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].state == SLOT_DONE)
			settle(s, &s->slots[i], now);
	return 0;
fail:
	if (!s->store_failing)
		log_error("send.record_failed",
		          "could not record %d send outcomes (retrying every %d ms): %s", s->done,
		          SEND_STORE_RETRY_MS, store_errmsg(s->conn));
	s->store_failing = 1;
	return rc;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void run(struct sender *s)
{
	int want = 1;               /* look for rows on this pass */
	int64_t next_sweep = 0;     /* look anyway at this time */
	int64_t store_retry_at = 0; /* next attempt at writing outcomes */
	while (!stopping(s)) {
		int64_t now = clock_wall_ms();
		if (notify_wait(&s->app->outbox_ready, &s->seen, 0))
			want = 1;
		if ((s->due_at && now >= s->due_at) || now >= next_sweep)
			want = 1;
		int room = s->nslots - s->active - s->done;
		if (want && room > 0) {
			int got = claim(s, now, room);
			if (got < 0) {
				want = 0;
				next_sweep = now + SEND_STORE_RETRY_MS;
			} else if (got < room) {
				/* every due row is ours: learn when the next one is due */
				int64_t at = 0;
				want = 0;
				next_sweep = now + SEND_SWEEP_MS;
				if (store_outbox_next_due(s->conn, &at) != 0)
					at = now + SEND_STORE_RETRY_MS;
				else if (at && at <= now)
					at = now + SEND_POLL_MS; /* just queued: next pass */
				s->due_at = at;
			}
			room = s->nslots - s->active - s->done;
		}
		if (s->active > 0) {
			int timeout = want && room > 0 ? 0 : SEND_POLL_MS;
			int running = 0;
			curl_multi_poll(s->multi, NULL, 0, timeout, NULL);
			curl_multi_perform(s->multi, &running);
			reap(s);
		} else {
			int64_t wake = next_sweep;
			if (s->due_at)
				wake = min64(wake, s->due_at);
			if (s->done > 0)
				wake = min64(wake, store_retry_at);
			if (want && room > 0)
				wake = now;
			int64_t wait = wake - now;
			if (wait > SEND_SWEEP_MS)
				wait = SEND_SWEEP_MS;
			if (wait > 0 && notify_wait(&s->app->outbox_ready, &s->seen, (int)wait))
				want = 1;
		}
		if (s->done > 0 && clock_wall_ms() >= store_retry_at && apply(s) != 0)
			store_retry_at = clock_wall_ms() + SEND_STORE_RETRY_MS;
	}
}

/* drain lets the requests in flight finish (bounded), and records them. */
static void drain(struct sender *s)
{
	int64_t deadline =
	        clock_mono_us() + (s->app->cfg.send_timeout_ms + SEND_DRAIN_SLACK_MS) * 1000;
	while (s->active > 0 && clock_mono_us() < deadline) {
		int running = 0;
		curl_multi_poll(s->multi, NULL, 0, 50, NULL);
		curl_multi_perform(s->multi, &running);
		reap(s);
	}
	for (int tries = 0; s->done > 0 && tries < 5; tries++) {
		if (apply(s) == 0)
			break;
		struct timespec ts = {0, SEND_STORE_RETRY_MS * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (s->active > 0 || s->done > 0)
		log_warn("send.stop_unfinished",
		         "%d sends unanswered and %d outcomes unrecorded at stop; their rows are "
		         "retried after restart",
		         s->active, s->done);
	for (int i = 0; i < s->nslots; i++)
		if (s->slots[i].state == SLOT_ACTIVE)
			curl_multi_remove_handle(s->multi, s->slots[i].easy);
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	s->rng = rng_seed();
	run(s);
	drain(s);
	return NULL;
}

static void sender_free(struct sender *s)
{
	if (!s)
		return;
	for (int i = 0; i < s->nslots; i++) {
		struct send_slot *slot = &s->slots[i];
		if (slot->easy)
			curl_easy_cleanup(slot->easy);
		buf_release(&slot->url);
		buf_release(&slot->body);
		buf_release(&slot->resp);
	}
	free(s->slots);
	if (s->multi)
		curl_multi_cleanup(s->multi);
	curl_slist_free_all(s->headers);
	if (s->conn)
		store_disconnect(s->conn);
	arena_release(&s->arena);
	free(s->base_url);
	free(s);
	curl_global_cleanup();
}

/*
 * recover puts rows a crash left SENDING back to PENDING, moving the
 * gauges that serve loaded from the store (store_outbox_counts) with them.
 */
static int recover(struct sender *s)
{
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	int n = 0;
	int rc = store_outbox_counts(s->conn, counts);
	if (rc == 0)
		rc = store_outbox_recover(s->conn, &n);
	if (rc != 0) {
		log_error("send.recover_failed", "could not recover interrupted sends: %s",
		          store_errmsg(s->conn));
		return rc;
	}
	int64_t moved = 0;
	for (int p = 0; p < PRIO_COUNT; p++) {
		for (int64_t i = 0; i < counts[p][OUTBOX_SENDING]; i++)
			metrics_outbox_move(&s->app->metrics, (enum outbox_prio)p, OUTBOX_SENDING,
			                    OUTBOX_PENDING);
		moved += counts[p][OUTBOX_SENDING];
	}
	if (moved != n)
		log_warn("send.recover_mismatch",
		         "recovered %d sending rows but counted %lld just before", n,
		         (long long)moved);
	log_info("send.recovered", "%d interrupted sends returned to the queue", n);
	return 0;
}

/*
 * sender_start connects to the store, returns interrupted sends to the
 * queue and starts the sender thread. app must outlive the sender and the
 * metrics' outbox gauges must already hold the store's counts. Returns 0,
 * ERR_INVAL (no access token), or the store's or curl's error (logged).
 */
int sender_start(struct app *app, struct sender **out)
{
	*out = NULL;
	const struct config *cfg = &app->cfg;
	if (!cfg->access_token || !*cfg->access_token || !cfg->bsp_url || !cfg->graph_version) {
		log_error("send.start_failed", "the sender needs bsp-url, graph-version and an "
		                               "access token");
		return ERR_INVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("send.start_failed", "could not initialise libcurl");
		return ERR_NOMEM;
	}
	struct sender *s = xcalloc(1, sizeof(*s));
	s->app = app;
	arena_init(&s->arena, 64 * 1024);
	size_t blen = strlen(cfg->bsp_url);
	while (blen > 0 && cfg->bsp_url[blen - 1] == '/')
		blen--;
	s->base_url = xstrndup(cfg->bsp_url, blen);
	s->nslots = (int)cfg->send_inflight;
	s->slots = xcalloc((size_t)s->nslots, sizeof(*s->slots));
	for (int i = 0; i < s->nslots; i++) {
		buf_init(&s->slots[i].url);
		buf_init(&s->slots[i].body);
		buf_init(&s->slots[i].resp);
	}

	int rc = store_connect(app->store, &s->conn);
	if (rc != 0) {
		log_error("send.start_failed", "could not connect to the store: %s", err_str(rc));
		s->conn = NULL;
		goto fail;
	}
	rc = recover(s);
	if (rc != 0)
		goto fail;

	rc = ERR_NOMEM;
	s->multi = curl_multi_init();
	if (!s->multi) {
		log_error("send.start_failed", "could not create the curl multi handle");
		goto fail;
	}
	long conns = s->nslots > SEND_MIN_HOST_CONNS ? s->nslots : SEND_MIN_HOST_CONNS;
	curl_multi_setopt(s->multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
	/* the connection cache must hold them all, or keep-alive is lost */
	curl_multi_setopt(s->multi, CURLMOPT_MAXCONNECTS, conns);
	struct buf auth;
	buf_init(&auth);
	buf_printf(&auth, "Authorization: Bearer %s", cfg->access_token);
	s->headers = curl_slist_append(NULL, auth.data);
	buf_release(&auth);
	struct curl_slist *h = s->headers;
	if (h)
		h = curl_slist_append(h, "Content-Type: application/json");
	if (h) /* no "Expect: 100-continue" round trip before larger bodies */
		h = curl_slist_append(h, "Expect:");
	if (!h) {
		log_error("send.start_failed", "could not build the request headers");
		goto fail;
	}

	int err = pthread_create(&s->thread, NULL, sender_main, s);
	if (err != 0) {
		log_error("send.start_failed", "could not start the sender thread: %s",
		          strerror(err));
		goto fail;
	}
	s->started = 1;
	log_info("send.started", "sender started: %d in flight at most, to %s", s->nslots,
	         s->base_url);
	*out = s;
	return 0;
fail:
	sender_free(s);
	return rc;
}

/*
 * sender_stop asks the thread to stop, waits for the sends in flight
 * (bounded by the send timeout) and their outcomes' write, then frees
 * everything. NULL is a no-op. Call once, from the thread that started it.
 */
void sender_stop(struct sender *s)
{
	if (!s)
		return;
	if (s->started) {
		atomic_store(&s->stop, 1);
		notify_signal(&s->app->outbox_ready);
		pthread_join(s->thread, NULL);
	}
	sender_free(s);
}
