/*
 * sms_dlr.c - delivery reports from the SMS gateway.
 *
 * MSG91-style gateways POST reports to a webhook set in their dashboard,
 * unsigned, as a JSON array of objects (a single object is taken too):
 *   {"requestId":"<the id its send answer gave>","number":"91...",
 *    "status":"1","desc":"DELIVERED","failedReason":"..."}
 * The URL carries our secret instead: /sms/dlr?token=<--sms-dlr-token>,
 * compared in constant time. desc DELIVERED (or status "1") is delivered;
 * FAILED, REJECTED, UNDELIVERED, EXPIRED (or status "2", "9", "16", "17")
 * failed; anything else (queued, sent) is not tracked.
 *
 * Each report becomes a delivery status on the outbox row the SMS was
 * accepted for (send_status_apply, the same path as WhatsApp's statuses,
 * by request id without a tenant), all of one POST in one transaction.
 * A gateway may report before the sender has recorded the acceptance that
 * names the request id (the report races the send's answer): reports that
 * match no row are set aside and tried again every SMS_DLR_RETRY_MS by the
 * "sms-dlr" thread, for SMS_DLR_KEEP_MS, then dropped with a log line. They
 * are kept in memory only: a report lost to a crash leaves its row
 * accepted, which is settled anyway.
 * Answers: 200 {"applied":A,"waiting":W,"ignored":I}; 400 for a body
 * that is not reports; 401 for a missing or wrong token; 403 when no token
 * is configured (reports refused); 503 when the store failed (the gateway
 * retries).
 *
 * Threading: handlers run on the HTTP server's threads and share one store
 * connection, and the set-aside reports, with the retry thread under one
 * mutex (reports are a trickle beside the webhooks).
 */
#include "send/sms_dlr.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "send/sender.h"

/* Most reports taken from one POST (MSG91 batches a few dozen). */
#define SMS_DLR_MAX_REPORTS 1000
/* Reports naming no row yet are tried again this often, for this long;
 * at most this many wait. */
#define SMS_DLR_RETRY_MS  500
#define SMS_DLR_KEEP_MS   60000
#define SMS_DLR_MAX_EARLY 10000

/* One report, as applied. */
struct dlr_report {
	char *request_id;
	const char *status; /* "delivered" or "failed" (static) */
	char *reason;
	int64_t first_ms; /* when it came */
};

struct sms_dlr {
	struct app *app;
	pthread_mutex_t mu;
	struct store_conn *conn; /* under mu */
	/* under mu: reports whose row was not found, tried again by the
	 * thread - an SMS gateway may report before the sender has recorded
	 * the acceptance that names the request id */
	struct dlr_report *early;
	int nearly;
	_Atomic int stop;
	struct notify wake; /* rung by sms_dlr_stop */
	pthread_t thread;
	int started;
};

static void answer(struct http_req *r, unsigned int status, const char *code, const char *msg)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, msg);
	http_respond(r, status, "application/json", b.data, b.len);
	buf_release(&b);
}

static int token_ok(const char *want, const char *got)
{
	size_t n = strlen(want);
	return got && strlen(got) == n && CRYPTO_memcmp(want, got, n) == 0;
}

/* The status a report says: "delivered", "failed", or NULL (not tracked). */
static const char *report_status(const struct jsonr_val *rep)
{
	static const char *const bad_desc[] = {"FAILED", "REJECTED", "UNDELIVERED", "EXPIRED",
	                                       "NDNC"};
	static const char *const bad_code[] = {"2", "9", "16", "17"};
	const char *desc = jsonr_str(jsonr_get(rep, "desc"), NULL);
	const char *code = jsonr_str(jsonr_get(rep, "status"), NULL);
	if ((desc && strcasecmp(desc, "DELIVERED") == 0) || (code && strcmp(code, "1") == 0))
		return "delivered";
	for (size_t i = 0; desc && i < sizeof(bad_desc) / sizeof(bad_desc[0]); i++)
		if (strcasecmp(desc, bad_desc[i]) == 0)
			return "failed";
	for (size_t i = 0; code && i < sizeof(bad_code) / sizeof(bad_code[0]); i++)
		if (strcmp(code, bad_code[i]) == 0)
			return "failed";
	return NULL;
}

static void report_release(struct dlr_report *r)
{
	free(r->request_id);
	free(r->reason);
}

/*
 * apply writes reps[0..n) in one transaction (under d->mu). Afterwards
 * matched[i] says whether report i found its row; moves are counted once
 * committed. 0, or the store's error (logged; nothing applied).
 */
static int apply(struct sms_dlr *d, const struct dlr_report *reps, int n, int *matched)
{
	struct store_conn *c = d->conn;
	struct send_move *moves = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*moves));
	int rc = store_begin(c);
	for (int i = 0; rc == 0 && i < n; i++) {
		struct inbox_entry e = {
		        .kind = INBOX_STATUS,
		        .ext_id = reps[i].request_id,
		        .status = reps[i].status,
		        .error_title = reps[i].reason,
		        .callback_data = "",
		        .received_at = clock_wall_ms(),
		};
		rc = send_status_apply(d->app, c, &e, &moves[i]);
		matched[i] = !moves[i].unmatched;
	}
	if (rc == 0)
		rc = store_commit(c);
	if (rc != 0) {
		log_error("send.sms_dlr_failed", "could not record SMS delivery reports: %s",
		          store_errmsg(c));
		store_rollback(c);
	} else {
		for (int i = 0; i < n; i++)
			send_move_count(d->app, &moves[i]);
	}
	free(moves);
	return rc;
}

/* keep_early sets aside the reports not matched (under d->mu); owns them. */
static void keep_early(struct sms_dlr *d, struct dlr_report *reps, int n, const int *matched)
{
	for (int i = 0; i < n; i++) {
		if (matched[i] || d->nearly == SMS_DLR_MAX_EARLY) {
			if (!matched[i])
				log_warn("send.sms_dlr_unmatched",
				         "SMS delivery report for unknown request \"%s\" dropped",
				         reps[i].request_id);
			report_release(&reps[i]);
			continue;
		}
		if (!d->early)
			d->early = xcalloc(SMS_DLR_MAX_EARLY, sizeof(*d->early));
		d->early[d->nearly++] = reps[i];
	}
}

/* retry_early tries the set-aside reports again (under d->mu). */
static void retry_early(struct sms_dlr *d)
{
	int n = d->nearly;
	struct dlr_report *reps = xcalloc((size_t)n, sizeof(*reps));
	int *matched = xcalloc((size_t)n, sizeof(*matched));
	memcpy(reps, d->early, (size_t)n * sizeof(*reps));
	d->nearly = 0;
	if (apply(d, reps, n, matched) != 0)
		memset(matched, 0, (size_t)n * sizeof(*matched));
	int64_t now = clock_wall_ms();
	for (int i = 0; i < n; i++) {
		if (!matched[i] && now - reps[i].first_ms >= SMS_DLR_KEEP_MS) {
			log_warn("send.sms_dlr_unmatched",
			         "SMS delivery report for request \"%s\" named no message for %d s;"
			         " dropped",
			         reps[i].request_id, SMS_DLR_KEEP_MS / 1000);
			matched[i] = 1; /* dropped: released below */
		}
	}
	keep_early(d, reps, n, matched);
	free(reps);
	free(matched);
}

static void *early_main(void *arg)
{
	struct sms_dlr *d = arg;
	pthread_setname_np(pthread_self(), "sms-dlr");
	uint64_t seen = 0;
	while (!atomic_load(&d->stop)) {
		notify_wait(&d->wake, &seen, SMS_DLR_RETRY_MS);
		pthread_mutex_lock(&d->mu);
		if (!atomic_load(&d->stop) && d->nearly > 0)
			retry_early(d);
		pthread_mutex_unlock(&d->mu);
	}
	return NULL;
}

/* read_reports checks the body and copies its tracked reports into *out. */
static int read_reports(struct http_req *r, struct dlr_report **out, int *n, int *ignored)
{
	size_t len;
	const char *body = http_req_body(r, &len);
	const struct jsonr_val *root = NULL;
	*out = NULL;
	*n = *ignored = 0;
	if (jsonr_parse(body, len, http_req_arena(r), &root) != 0) {
		answer(r, 400, "not_json", "the body is not JSON");
		return ERR_INVAL;
	}
	/* one report or an array of them */
	struct jsonr_val one;
	const struct jsonr_val *reps = root;
	if (root->type == JSONR_OBJECT) {
		memset(&one, 0, sizeof(one));
		one.type = JSONR_ARRAY;
		one.len = 1;
		one.u.items = root;
		reps = &one;
	}
	size_t total = jsonr_len(reps);
	if (reps->type != JSONR_ARRAY || total == 0 || total > SMS_DLR_MAX_REPORTS) {
		answer(r, 400, "not_reports", "expected a report object or an array of 1..1000");
		return ERR_INVAL;
	}
	for (size_t i = 0; i < total; i++) {
		size_t idlen = 0;
		const char *id = jsonr_str(jsonr_get(jsonr_at(reps, i), "requestId"), &idlen);
		if (!id || idlen == 0 || idlen > 128 || strlen(id) != idlen) {
			answer(r, 400, "no_request_id",
			       "every report needs a requestId (a string of 1..128 bytes)");
			return ERR_INVAL;
		}
	}
	*out = xcalloc(total, sizeof(**out));
	int64_t now = clock_wall_ms();
	for (size_t i = 0; i < total; i++) {
		const struct jsonr_val *rep = jsonr_at(reps, i);
		const char *st = report_status(rep);
		if (!st) {
			(*ignored)++;
			continue;
		}
		const char *why = jsonr_str(jsonr_get(rep, "failedReason"), NULL);
		struct dlr_report *x = &(*out)[(*n)++];
		x->request_id = xstrdup(jsonr_str(jsonr_get(rep, "requestId"), NULL));
		x->status = st;
		x->reason = xstrndup(why ? why : "", 200);
		x->first_ms = now;
	}
	return 0;
}

static void on_dlr(struct http_req *r, void *ud)
{
	struct sms_dlr *d = ud;
	const char *want = d->app->cfg.sms_dlr_token;
	if (!want || !*want) {
		answer(r, 403, "dlr_disabled",
		       "SMS delivery reports are not taken: no --sms-dlr-token is set");
		return;
	}
	if (!token_ok(want, http_req_query(r, "token"))) {
		answer(r, 401, "bad_token", "missing or wrong token");
		return;
	}
	struct dlr_report *reps;
	int n, ignored;
	if (read_reports(r, &reps, &n, &ignored) != 0)
		return;
	int *matched = xcalloc((size_t)(n > 0 ? n : 1), sizeof(*matched));
	pthread_mutex_lock(&d->mu);
	int rc = apply(d, reps, n, matched);
	int applied = 0;
	for (int i = 0; rc == 0 && i < n; i++)
		applied += matched[i];
	if (rc == 0)
		keep_early(d, reps, n, matched);
	pthread_mutex_unlock(&d->mu);
	if (rc != 0)
		for (int i = 0; i < n; i++)
			report_release(&reps[i]);
	free(reps);
	free(matched);
	if (rc != 0) {
		answer(r, 503, "store_unavailable",
		       "could not record the reports; send them again");
		return;
	}
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "{\"applied\":%d,\"waiting\":%d,\"ignored\":%d}", applied, n - applied,
	           ignored);
	http_respond(r, 200, "application/json", b.data, b.len);
	buf_release(&b);
}

int sms_dlr_start(struct app *app, struct sms_dlr **out)
{
	*out = NULL;
	if (!app->cfg.sms_url || !*app->cfg.sms_url)
		return 0;
	struct sms_dlr *d = xcalloc(1, sizeof(*d));
	d->app = app;
	pthread_mutex_init(&d->mu, NULL);
	notify_init(&d->wake);
	int rc = store_connect(app->store, &d->conn);
	if (rc != 0) {
		log_error("serve.start_failed",
		          "could not connect to the store for SMS delivery reports: %s",
		          err_str(rc));
		d->conn = NULL;
		sms_dlr_stop(d);
		return rc;
	}
	int err = pthread_create(&d->thread, NULL, early_main, d);
	if (err != 0) {
		log_error("serve.start_failed", "could not start the SMS report thread: %s",
		          strerror(err));
		sms_dlr_stop(d);
		return ERR_NOMEM;
	}
	d->started = 1;
	*out = d;
	return 0;
}

int sms_dlr_routes(struct sms_dlr *d, struct http_route *routes, int cap)
{
	if (!d || cap < 1)
		return 0;
	routes[0] = (struct http_route){"POST", "/sms/dlr", 0, on_dlr, d, NULL};
	return 1;
}

void sms_dlr_stop(struct sms_dlr *d)
{
	if (!d)
		return;
	if (d->started) {
		atomic_store(&d->stop, 1);
		notify_signal(&d->wake);
		pthread_join(d->thread, NULL);
	}
	for (int i = 0; i < d->nearly; i++)
		report_release(&d->early[i]);
	free(d->early);
	if (d->conn)
		store_disconnect(d->conn);
	notify_release(&d->wake);
	pthread_mutex_destroy(&d->mu);
	free(d);
}
