/*
 * ai.c - the "ai" thread: claims AI jobs, calls the endpoint, runs the
 * answer through the ERP, and keeps the AI's and the OCR queue's signals.
 *
 * Design
 *   One thread with one store connection and one curl multi handle. Each
 *   pass it claims at most as many jobs as it has free call slots
 *   (--ai-concurrency; store_ai_job_claim gives only each customer's
 *   oldest job, so a customer's jobs run one at a time, in order), starts
 *   a call for each REWRITE job the breaker allows, runs the others at
 *   once, then waits for answers up to --ai-poll-ms.
 *
 *   The life of a job here:
 *
 *     claimed ── PLAIN, or no endpoint ──────────────────────▶ run as typed
 *     claimed ── degraded (level >= 1) / breaker refuses ────▶ run as typed   (rejected)
 *     claimed ── breaker_allow ── POST ── 200 + a command ───▶ run the command (ok)
 *                                     ├── UNKNOWN / no command ▶ run as typed (ok)
 *                                     ├── other status, bad JSON ▶ run as typed (error)
 *                                     └── no answer in time ──▶ run as typed  (timeout)
 *
 *   "run" (run_job) is one transaction: erp_handle_job on a message made
 *   from the job (the customer's wamid, so the replies quote it), the
 *   replies as PENDING outbox rows, store_ai_job_finish. A text run as typed
 *   that the parser cannot read gets the menu, or the template reply while
 *   degraded or while the breaker refuses. If the run fails the job goes
 *   back to pending (store_ai_job_release) and is tried again; after
 *   --process-attempts runs it ends with an apology, as a worker sets a
 *   message aside.
 *
 *   The breaker (send/breaker.c) is this thread's: errors and timeouts are
 *   failures, answers (even UNKNOWN) successes; 5 failures open it for
 *   30 s, 3 successes close it (--ai-breaker-*). While it is open and not
 *   yet due to probe, `refusing` is 1 and the ERP answers unreadable text
 *   with the template reply instead of making jobs.
 *
 * Threading: the thread owns the connection, the multi handle, the calls,
 * the breaker and the catalogue cache. Written by the thread, read by any
 * (atomics): refusing, breaker_state, the counters, the latency histogram
 * and the gauges. ai_start/ai_stop run on serve's main thread.
 */
#include "ai/ai.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ai/ai_internal.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/xalloc.h"
#include "erp/erp.h"
#include "send/breaker.h"
#include "send/curl_loop.h"
#include "worker/worker.h"

/* Catalogue cache slots of the thread (erp/cache.c). */
#define AI_CATALOG_SLOTS 32
/* How often the queue gauges are read from the store, ms. */
#define AI_GAUGE_EVERY_MS 1000

/* One call to the endpoint. */
struct ai_call {
	struct ai *ai;
	CURL *easy;
	int busy;
	struct ai_job job; /* strings in arena */
	struct arena arena;
	struct buf req, resp;
	int too_big; /* the answer passed AI_MAX_ANSWER */
	int64_t started_us;
	char err[CURL_ERROR_SIZE];
};

struct ai {
	struct app *app;
	struct store_conn *conn;
	struct erp_cache *cache;
	pthread_t thread;
	int started;
	_Atomic int stop;
	int configured; /* --ai-url set */
	CURLM *multi;
	struct curl_slist *headers;
	int ncalls, busy;
	int failed_runs; /* runs that failed this pass: the next waits a poll */
	struct ai_call *calls;
	struct breaker breaker;
	uint64_t rnd;
	struct arena run_arena; /* one job's run */
	int64_t gauges_at;      /* mono ms of the last gauge read */
	/* published (atomics) */
	_Atomic int refusing;
	_Atomic int breaker_state;
	_Atomic uint64_t requests[AI_RESULT_COUNT];
	_Atomic uint64_t breaker_transitions;
	_Atomic uint64_t jobs_finished;
	_Atomic uint64_t jobs_rewritten;
	struct histogram latency;
	_Atomic int64_t jobs_waiting;
	_Atomic int64_t ocr_depth;
};

static const char *const result_names[AI_RESULT_COUNT] = {"ok", "error", "timeout", "rejected"};

static int64_t mono_ms(void)
{
	return clock_mono_us() / 1000;
}

/* ---- gauges and the breaker's publication ---------------------------------------------- */

static void read_gauges(struct ai *ai)
{
	int64_t jobs = 0, ocr = 0;
	if (store_ai_job_count(ai->conn, &jobs) == 0)
		atomic_store(&ai->jobs_waiting, jobs);
	if (store_ocr_depth(ai->conn, &ocr) == 0)
		atomic_store(&ai->ocr_depth, ocr);
	ai->gauges_at = mono_ms();
}

static void publish_breaker(struct ai *ai, int64_t now)
{
	enum breaker_state s = breaker_state(&ai->breaker);
	atomic_store(&ai->breaker_state, (int)s);
	atomic_store(&ai->refusing, s == BREAKER_OPEN && now < breaker_open_until(&ai->breaker));
}

static void record_outcome(struct ai *ai, enum breaker_outcome o)
{
	int64_t now = mono_ms();
	enum breaker_state before = breaker_state(&ai->breaker);
	if (breaker_record(&ai->breaker, now, o, rng_next(&ai->rnd))) {
		enum breaker_state after = breaker_state(&ai->breaker);
		atomic_fetch_add(&ai->breaker_transitions, 1);
		if (after == BREAKER_OPEN)
			log_warn("ai.breaker_open",
			         "the AI endpoint's breaker opened (was %s): unreadable text gets "
			         "the template reply for %lld ms",
			         breaker_state_name(before),
			         (long long)ai->app->cfg.ai_breaker_open_ms);
		else
			log_info(after == BREAKER_CLOSED ? "ai.breaker_closed"
			                                 : "ai.breaker_half_open",
			         "the AI endpoint's breaker is %s", breaker_state_name(after));
	}
	publish_breaker(ai, now);
}

/* ---- running a job through the ERP ------------------------------------------------------- */

/* The replies of one run as PENDING outbox rows quoting the job's message. */
static int queue_replies(struct ai *ai, const struct tenant *t, const struct inbox_entry *e,
                         const struct erp_result *res, int64_t queued[PRIO_COUNT])
{
	for (int i = 0; i < res->nreplies; i++) {
		const struct erp_reply *r = &res->replies[i];
		struct outbox_new o;
		if (worker_reply_row(t, e, r, &ai->run_arena, &o) != 0) {
			log_warn("ai.reply_unaddressable",
			         "reply to %s (message %s) not queued: the sender has no phone "
			         "number",
			         e->from, e->ext_id);
			continue;
		}
		int64_t id;
		int rc = store_outbox_add(ai->conn, &o, &id);
		if (rc < 0)
			return rc;
		queued[r->priority]++;
	}
	return 0;
}

/* After a commit: the gauges the rows moved, and the sender woken. */
static void committed(struct ai *ai, const int64_t queued[PRIO_COUNT],
                      const int64_t cancelled[PRIO_COUNT])
{
	struct metrics *m = &ai->app->metrics;
	int64_t any = 0;
	for (int p = 0; p < PRIO_COUNT; p++) {
		atomic_fetch_add(&m->outbox[p][OUTBOX_PENDING], queued[p] - cancelled[p]);
		atomic_fetch_add(&m->outbox[p][OUTBOX_FAILED], cancelled[p]);
		any += queued[p];
	}
	atomic_fetch_add(&ai->jobs_finished, 1);
	if (any)
		notify_signal(&ai->app->outbox_ready);
}

/*
 * run_job: the job's message with body text through erp_handle_job, its
 * replies and the job's end (outcome, rewritten), in one transaction.
 * apology: instead of the ERP, the apology of a job that failed too often.
 */
static int run_once(struct ai *ai, const struct ai_job *j, const char *text, const char *outcome,
                    const char *rewritten, int apology)
{
	struct store_conn *c = ai->conn;
	struct arena *a = &ai->run_arena;
	struct tenant t;
	struct erp_result res;
	int64_t queued[PRIO_COUNT] = {0};
	memset(&res, 0, sizeof(res));
	arena_reset(a);
	int rc = store_begin(c);
	if (rc < 0)
		return rc;
	rc = store_tenant_get(c, j->tenant_id, a, &t);
	struct inbox_entry e = {
	        .tenant_id = j->tenant_id,
	        .kind = INBOX_MESSAGE,
	        .ext_id = j->ext_id,
	        .status = "",
	        .from = j->from,
	        .name = j->name,
	        .type = rewritten && *rewritten ? "text" : j->type,
	        .body = text,
	        .context_id = j->context_id,
	        .sent_at = j->sent_at,
	        .received_at = j->received_at,
	        .error_title = "",
	        .callback_data = "",
	        .state = INBOX_DONE,
	};
	if (rc == 0 && apology) {
		res.nreplies = 1;
		res.replies[0] = (struct erp_reply){
		        .kind = ERP_REPLY_TEXT,
		        .priority = PRIO_P2,
		        .text = "Sorry, we could not process your message. The shop has been "
		                "told; please try again in a little while.",
		};
	} else if (rc == 0) {
		rc = erp_handle_job(c, ai->cache, &t, &e, a, &res);
	}
	if (rc == 0)
		rc = queue_replies(ai, &t, &e, &res, queued);
	if (rc == 0)
		rc = store_ai_job_finish(c, j->id, outcome, rewritten, clock_wall_ms());
	if (rc == 0)
		rc = store_commit(c);
	if (rc < 0) {
		store_rollback(c);
		erp_cache_clear(ai->cache); /* it may hold what the rollback undid */
		return rc;
	}
	for (int p = 0; p < PRIO_COUNT; p++)
		queued[p] += res.queued[p];
	committed(ai, queued, res.cancelled);
	return 0;
}

static void run_job(struct ai *ai, const struct ai_job *j, const char *text, const char *outcome,
                    const char *rewritten)
{
	int rc = run_once(ai, j, text, outcome, rewritten, 0);
	if (rc != 0)
		ai->failed_runs++;
	if (rc == 0) {
		log_debug("ai.job_done", "AI job %lld (message %s): %s", (long long)j->id,
		          j->ext_id, outcome);
		return;
	}
	const char *why = store_errmsg(ai->conn);
	if (!err_transient(rc) && j->attempts >= (int)ai->app->cfg.process_attempts) {
		const char *what = arena_sprintf(&ai->run_arena, "failed: %s", why);
		if (run_once(ai, j, "", what, "", 1) == 0) {
			log_error("ai.job_set_aside",
			          "AI job %lld (message %s) failed %d times and was set aside: %s",
			          (long long)j->id, j->ext_id, j->attempts, why);
			return;
		}
	}
	log_warn("ai.job_failed", "could not run AI job %lld (message %s): %s; it is tried again",
	         (long long)j->id, j->ext_id, why);
	if (store_ai_job_release(ai->conn, j->id) != 0)
		log_error("ai.release_failed",
		          "could not put AI job %lld back: %s; it runs again after a restart",
		          (long long)j->id, store_errmsg(ai->conn));
}

/* ---- calls ------------------------------------------------------------------------------ */

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
	struct ai_call *call = ud;
	size_t len = size * n;
	if (call->resp.len + len > AI_MAX_ANSWER) {
		call->too_big = 1;
		return 0; /* curl ends the transfer with a write error */
	}
	buf_append(&call->resp, p, len);
	return len;
}

static int start_call(struct ai *ai, const struct ai_job *j)
{
	struct ai_call *call = NULL;
	for (int i = 0; i < ai->ncalls && !call; i++)
		if (!ai->calls[i].busy)
			call = &ai->calls[i];
	if (!call)
		return ERR_FULL;
	arena_reset(&call->arena);
	call->job = *j;
	call->job.ext_id = arena_strdup(&call->arena, j->ext_id);
	call->job.from = arena_strdup(&call->arena, j->from);
	call->job.name = arena_strdup(&call->arena, j->name);
	call->job.type = arena_strdup(&call->arena, j->type);
	call->job.body = arena_strdup(&call->arena, j->body);
	call->job.context_id = arena_strdup(&call->arena, j->context_id);
	ai__request_body(&call->req, ai->app->cfg.ai_model, j->body);
	buf_reset(&call->resp);
	call->too_big = 0;
	call->err[0] = '\0';
	CURL *e = call->easy;
	curl_easy_setopt(e, CURLOPT_URL, ai->app->cfg.ai_url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, ai->headers);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->req.data);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)call->req.len);
	if (curl_multi_add_handle(ai->multi, e) != CURLM_OK)
		return ERR_IO;
	call->busy = 1;
	call->started_us = clock_mono_us();
	ai->busy++;
	return 0;
}

/* A call ended with curl's result cr: counted, recorded, its job run. */
static void finish_call(struct ai *ai, struct ai_call *call, CURLcode cr)
{
	struct ai_job *j = &call->job;
	long status = 0;
	curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_multi_remove_handle(ai->multi, call->easy);
	call->busy = 0;
	ai->busy--;
	int64_t took_us = clock_mono_us() - call->started_us;
	metrics_observe_us(&ai->latency, took_us);

	enum ai_result result;
	const char *command = NULL, *why = "";
	int prc = 0;
	if (cr == CURLE_OPERATION_TIMEDOUT) {
		result = AI_RESULT_TIMEOUT;
		why = "no answer in time";
	} else if (cr != CURLE_OK) {
		result = AI_RESULT_ERROR;
		why = call->too_big ? "the answer is too long" : curl_easy_strerror(cr);
	} else if (status != 200) {
		result = AI_RESULT_ERROR;
		why = arena_sprintf(&call->arena, "HTTP status %ld", status);
	} else {
		buf_putc(&call->resp, '\0');
		prc = ai__answer_parse(call->resp.data, call->resp.len - 1, &call->arena, &command,
		                       &why);
		result = prc == ERR_PROTO ? AI_RESULT_ERROR : AI_RESULT_OK;
	}
	atomic_fetch_add(&ai->requests[result], 1);
	record_outcome(ai, result == AI_RESULT_OK ? BREAKER_SUCCESS : BREAKER_FAILURE);
	if (result != AI_RESULT_OK)
		log_warn("ai.call_failed", "AI call for message %s failed (%s): %s", j->ext_id,
		         result_names[result], why);

	if (result == AI_RESULT_OK && prc == 0) {
		atomic_fetch_add(&ai->jobs_rewritten, 1);
		run_job(ai, j, command, "rewritten", command);
		return;
	}
	const char *outcome =
	        arena_sprintf(&call->arena, "%s: %s",
	                      result == AI_RESULT_OK ? "unanswered" : result_names[result], why);
	run_job(ai, j, j->body, outcome, "");
}

/* ---- the thread ------------------------------------------------------------------------ */

/* A claimed job: called, or run at once. */
static void take_job(struct ai *ai, const struct ai_job *j)
{
	int64_t now = mono_ms();
	if (j->kind == AI_JOB_PLAIN) {
		run_job(ai, j, j->body, "ran as typed (behind an earlier job)", "");
		return;
	}
	if (!ai->configured) {
		run_job(ai, j, j->body, "not asked: no AI endpoint", "");
		return;
	}
	if (atomic_load(&ai->app->degradation_level) >= 1) {
		atomic_fetch_add(&ai->requests[AI_RESULT_REJECTED], 1);
		run_job(ai, j, j->body, "not asked: degraded", "");
		return;
	}
	int changed = 0;
	int allowed = breaker_allow(&ai->breaker, now, &changed);
	publish_breaker(ai, now);
	if (changed)
		log_info("ai.breaker_half_open", "the AI endpoint's breaker is half open: probing");
	if (!allowed) {
		atomic_fetch_add(&ai->requests[AI_RESULT_REJECTED], 1);
		run_job(ai, j, j->body, "not asked: breaker open", "");
		return;
	}
	if (start_call(ai, j) != 0) {
		record_outcome(ai, BREAKER_IGNORED);
		atomic_fetch_add(&ai->requests[AI_RESULT_ERROR], 1);
		run_job(ai, j, j->body, "error: could not start the call", "");
	}
}

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void *ai_main(void *arg)
{
	struct ai *ai = arg;
	struct app *app = ai->app;
	struct arena claim_arena;
	pthread_setname_np(pthread_self(), "ai");
	arena_init(&claim_arena, 16 * 1024);
	int64_t poll = app->cfg.ai_poll_ms;
	while (!atomic_load(&ai->stop) && !atomic_load(&app->stopping)) {
		int64_t now = mono_ms();
		publish_breaker(ai, now);
		if (now - ai->gauges_at >= AI_GAUGE_EVERY_MS)
			read_gauges(ai);
		int free_slots = ai->configured ? ai->ncalls - ai->busy : 1;
		int n = 0;
		ai->failed_runs = 0;
		if (free_slots > 0) {
			struct ai_job *jobs;
			arena_reset(&claim_arena);
			int rc = store_ai_job_claim(ai->conn, free_slots, &claim_arena, &jobs, &n);
			if (rc < 0) {
				log_error("ai.claim_failed", "could not claim AI jobs: %s",
				          store_errmsg(ai->conn));
				n = 0;
			}
			for (int i = 0; i < n; i++)
				take_job(ai, &jobs[i]);
		}
		if (ai->busy > 0) {
			int running = 0;
			curl_multi_poll(ai->multi, NULL, 0, n > 0 ? 0 : (int)poll, NULL);
			curl_multi_perform(ai->multi, &running);
			CURLMsg *msg;
			int left;
			while ((msg = curl_multi_info_read(ai->multi, &left))) {
				if (msg->msg != CURLMSG_DONE)
					continue;
				struct ai_call *call = NULL;
				curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
				                  (char **)&call);
				if (call)
					finish_call(ai, call, msg->data.result);
			}
		} else if (n == 0 || ai->failed_runs > 0) {
			sleep_ms(poll);
		}
	}
	arena_release(&claim_arena);
	return NULL;
}

/* ---- start, stop, signals ----------------------------------------------------------------- */

static void ai_free(struct ai *ai)
{
	for (int i = 0; i < ai->ncalls; i++) {
		struct ai_call *call = &ai->calls[i];
		if (call->easy) {
			if (call->busy)
				curl_multi_remove_handle(ai->multi, call->easy);
			curl_easy_cleanup(call->easy);
		}
		arena_release(&call->arena);
		buf_release(&call->req);
		buf_release(&call->resp);
	}
	free(ai->calls);
	if (ai->multi)
		curl_multi_cleanup(ai->multi);
	curl_slist_free_all(ai->headers);
	erp_cache_free(ai->cache);
	arena_release(&ai->run_arena);
	store_disconnect(ai->conn);
	free(ai);
}

static int setup_calls(struct ai *ai)
{
	const struct config *cfg = &ai->app->cfg;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return ERR_IO;
	ai->multi = curl_multi_init();
	if (!ai->multi)
		return ERR_IO;
	ai->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (cfg->ai_token && *cfg->ai_token) {
		size_t n = strlen(cfg->ai_token) + sizeof("Authorization: Bearer ");
		char *h = xmalloc(n);
		snprintf(h, n, "Authorization: Bearer %s", cfg->ai_token);
		ai->headers = curl_slist_append(ai->headers, h);
		free(h);
	}
	ai->headers = curl_slist_append(ai->headers, "Expect:");
	ai->ncalls = (int)cfg->ai_concurrency;
	ai->calls = xcalloc((size_t)ai->ncalls, sizeof(*ai->calls));
	for (int i = 0; i < ai->ncalls; i++) {
		struct ai_call *call = &ai->calls[i];
		call->ai = ai;
		arena_init(&call->arena, 8 * 1024);
		buf_init(&call->req);
		buf_init(&call->resp);
		call->easy =
		        curl_loop_easy_post(call, on_body, call->err, (long)cfg->ai_timeout_ms);
		if (!call->easy)
			return ERR_IO;
		curl_easy_setopt(call->easy, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->ai_timeout_ms);
	}
	struct breaker_config bc;
	ai__breaker_config(cfg, &bc);
	return breaker_init(&ai->breaker, &bc);
}

int ai_start(struct app *app, struct ai **out)
{
	struct ai *ai = xcalloc(1, sizeof(*ai));
	int recovered = 0, rc;
	ai->app = app;
	ai->configured = app->cfg.ai_url && *app->cfg.ai_url;
	ai->cache = erp_cache_new(AI_CATALOG_SLOTS);
	arena_init(&ai->run_arena, 16 * 1024);
	ai->rnd = rng_seed();
	*out = NULL;
	if ((rc = store_connect(app->store, &ai->conn)) != 0) {
		log_error("ai.start_failed", "the AI thread could not connect to the store");
		goto fail;
	}
	if ((rc = store_ai_job_recover(ai->conn, &recovered)) != 0) {
		log_error("ai.start_failed", "could not recover AI jobs: %s",
		          store_errmsg(ai->conn));
		goto fail;
	}
	if (recovered > 0)
		log_info("ai.recovered", "%d AI jobs a stop interrupted are pending again",
		         recovered);
	read_gauges(ai);
	if (ai->configured && (rc = setup_calls(ai)) != 0) {
		log_error("ai.start_failed", "could not set up calls to the AI endpoint: %s",
		          err_str(rc));
		goto fail;
	}
	publish_breaker(ai, mono_ms());
	struct erp_ai setting = {
	        .jobs = ai->configured,
	        .degradation_level = &app->degradation_level,
	        .refusing = &ai->refusing,
	        .spike_level = &app->spike_level,
	};
	erp_ai_set(&setting);
	if (pthread_create(&ai->thread, NULL, ai_main, ai) != 0) {
		erp_ai_set(NULL);
		log_error("ai.start_failed", "could not start the AI thread");
		rc = ERR_IO;
		goto fail;
	}
	ai->started = 1;
	log_info("ai.started",
	         "AI endpoint %s; %lld jobs waiting, %lld photos and documents to read",
	         ai->configured ? app->cfg.ai_url : "off (unreadable text gets the menu)",
	         (long long)atomic_load(&ai->jobs_waiting), (long long)atomic_load(&ai->ocr_depth));
	*out = ai;
	return 0;
fail:
	ai_free(ai);
	return rc < 0 ? rc : ERR_IO;
}

void ai_stop(struct ai *ai)
{
	if (!ai)
		return;
	atomic_store(&ai->stop, 1);
	if (ai->started)
		pthread_join(ai->thread, NULL);
	erp_ai_set(NULL);
	ai_free(ai);
}

void ai_signals(const struct ai *ai, struct ai_signals *out)
{
	memset(out, 0, sizeof(*out));
	if (!ai)
		return;
	out->configured = ai->configured;
	out->breaker_state = atomic_load(&ai->breaker_state);
	out->refusing = atomic_load(&ai->refusing);
	for (int i = 0; i < AI_RESULT_COUNT; i++)
		out->requests[i] = atomic_load(&ai->requests[i]);
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++)
		out->latency_bucket[i] = atomic_load(&ai->latency.bucket[i]);
	out->latency_count = atomic_load(&ai->latency.count);
	out->latency_sum_us = atomic_load(&ai->latency.sum_us);
	out->jobs_waiting = atomic_load(&ai->jobs_waiting);
	out->ocr_depth = atomic_load(&ai->ocr_depth);
}

/* A metric of one sample without labels: its HELP and TYPE lines, then the value. */
static void render_one(struct buf *b, const char *name, const char *type, const char *help,
                       long long v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %lld\n", name, help, name, type, name, v);
}

void ai_render_metrics(const struct ai *ai, struct buf *b)
{
	struct ai_signals s;
	if (!ai)
		return;
	ai_signals(ai, &s);
	buf_puts(
	        b,
	        "# HELP munim_ai_requests_total Calls to the AI endpoint by result (rejected: "
	        "not called, breaker open or degraded).\n# TYPE munim_ai_requests_total counter\n");
	for (int i = 0; i < AI_RESULT_COUNT; i++)
		buf_printf(b, "munim_ai_requests_total{result=\"%s\"} %llu\n", result_names[i],
		           (unsigned long long)s.requests[i]);
	metrics_render_histogram(b, "munim_ai_latency_seconds",
	                         "Time from an AI call's start to its answer or failure.",
	                         &ai->latency);
	render_one(b, "munim_ai_breaker_state", "gauge",
	           "The AI endpoint's breaker: 0 closed, 1 open, 2 half open.", s.breaker_state);
	render_one(b, "munim_ai_breaker_transitions_total", "counter",
	           "Changes of the AI breaker's state.",
	           (long long)atomic_load(&ai->breaker_transitions));
	render_one(b, "munim_ai_jobs_waiting", "gauge", "AI jobs not yet done.",
	           (long long)s.jobs_waiting);
	render_one(b, "munim_ai_jobs_finished_total", "counter", "AI jobs ended (replied to).",
	           (long long)atomic_load(&ai->jobs_finished));
	render_one(b, "munim_ai_rewrites_total", "counter",
	           "AI answers that were a command and ran.",
	           (long long)atomic_load(&ai->jobs_rewritten));
	render_one(b, "munim_ocr_queue_depth", "gauge", "Photos and documents waiting to be read.",
	           (long long)s.ocr_depth);
}
