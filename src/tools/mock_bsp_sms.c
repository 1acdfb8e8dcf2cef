/*
 * mock_bsp_sms.c - the mock's SMS gateway: MSG91's "flow" send call, as
 * munim's SMS fallback speaks it, on the same listener as the fake Cloud
 * API, with a log to inspect, two faults and delivery reports.
 *
 * The send call
 *   POST /api/v5/flow   (also /api/v5/flow/)
 *   authkey: <non-empty>
 *   {"template_id":"T","short_url":"0",
 *    "recipients":[{"mobiles":"919812345678","var":"the text"}, ...]}
 * is checked in this order, each refusal answered
 * {"type":"error","message":"..."}:
 *   401 "authkey missing"          the header is missing or empty
 *   503 "service unavailable"      the sms_outage fault is on
 *   400 "body is not JSON" / "body is not a JSON object"
 *   400 "template_id missing"      absent, not a string, or empty
 *   400 "recipients missing"       absent or not an array
 *   400 "recipients must hold 1 to 100 entries"
 *   400 "recipients[i].mobiles must be 10 to 15 digits"
 *   400 "recipients[i].var missing or not a string"
 *   400 "recipients[i].var longer than 1000 bytes"
 * A call is accepted whole or not at all: 200
 * {"type":"success","message":"<request id>"}, the id 24 lowercase hex
 * digits: the low 32 bits of the mock's start time (ms) then the call's
 * sequence number scattered over 64 bits (tools_scatter_u64), so ids are
 * unique within a run and differ between runs, as make_wamid's are.
 *
 * Each recipient of an accepted call is one SMS: it goes into the log and,
 * with a delivery-report URL, one report (mock_bsp_status.c, kind
 * MOCK_POST_SMS_DLR) is queued once the answer has been sent - DELIVERED,
 * or FAILED for the fraction sms_failed_rate picks (decided when the SMS
 * is accepted, and shown in the log's "status").
 *
 * The log
 *   A growable ring of records under one mutex: SMS i lives in
 *   recs[i % alloc] while oldest <= i < next; alloc doubles (records moved
 *   to their new slots) until MOCK_SMS_KEEP. Past MOCK_SMS_KEEP SMS or
 *   MOCK_SMS_KEEP_BYTES of strings the oldest are dropped. Indexes count
 *   from 0 and are never reused (a reset drops SMS, not indexes), so
 *   GET /_mock/sms?since=&limit= polls incrementally as /_mock/messages
 *   does. A page is formatted under the lock: SMS are few and small.
 *
 * Threading: handlers run on the HTTP server's threads; faults and
 * counters are atomics, the log is guarded by its mutex, the rest is set
 * before the server starts.
 */
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "http/http.h"
#include "tools/tools_internal.h"

/* SMS remembered, and the most bytes of their strings (oldest dropped first). */
#define MOCK_SMS_KEEP       1000000
#define MOCK_SMS_KEEP_BYTES ((size_t)256 << 20)
#define MOCK_SMS_FIRST      1024 /* the ring's first size */
/* Recipients one call may carry, and the longest text (bytes). */
#define MOCK_SMS_MAX_RECIPIENTS 100
#define MOCK_SMS_MAX_VAR        1000
#define MOCK_SMS_MIN_DIGITS     10
#define MOCK_SMS_MAX_DIGITS     15
/* /_mock/sms: default and largest page. */
#define MOCK_SMS_PAGE_DEFAULT 1000
#define MOCK_SMS_PAGE_MAX     10000
/* A request id: 24 hex digits and the NUL. */
#define MOCK_SMS_ID_CAP 25

struct sms_rec {
	uint64_t index;
	int64_t received_ms;
	int failed;
	char *blob; /* "request_id\0template_id\0mobiles\0var\0", owned */
	size_t blob_len;
};

struct mock_sms {
	pthread_mutex_t mu; /* guards the log: recs, alloc, oldest, next, bytes */
	struct sms_rec *recs;
	size_t alloc;
	uint64_t oldest, next;
	size_t bytes;

	struct mock_status *dlr; /* NULL: no delivery reports */
	uint32_t tag;            /* low 32 bits of the start time, in every request id */
	_Atomic uint64_t seq;    /* calls accepted, for request ids */

	_Atomic int64_t outage;
	_Atomic int64_t failed_ppm;
	_Atomic uint64_t received, accepted, rejected, failed_by_fault;
};

/* ---- the log ------------------------------------------------------------- */

/* Drops the oldest SMS; caller holds mu and oldest < next. */
static void evict_oldest(struct mock_sms *s)
{
	struct sms_rec *r = &s->recs[s->oldest % s->alloc];
	s->bytes -= r->blob_len;
	free(r->blob);
	r->blob = NULL;
	r->blob_len = 0;
	s->oldest++;
}

/* Doubles the ring (at most MOCK_SMS_KEEP), moving records to their new slots; caller holds mu. */
static void grow(struct mock_sms *s)
{
	size_t alloc = s->alloc * 2 < MOCK_SMS_KEEP ? s->alloc * 2 : MOCK_SMS_KEEP;
	struct sms_rec *recs = xcalloc(alloc, sizeof(*recs));
	for (uint64_t i = s->oldest; i < s->next; i++)
		recs[i % alloc] = s->recs[i % s->alloc];
	free(s->recs);
	s->recs = recs;
	s->alloc = alloc;
}

/* Keeps one SMS, taking ownership of blob; caller holds mu. */
static void log_add_locked(struct mock_sms *s, int64_t received_ms, char *blob, size_t len,
                           int failed)
{
	while (s->oldest < s->next &&
	       (s->next - s->oldest >= MOCK_SMS_KEEP || s->bytes + len > MOCK_SMS_KEEP_BYTES))
		evict_oldest(s);
	if (s->next - s->oldest == s->alloc)
		grow(s);
	uint64_t i = s->next++;
	struct sms_rec *r = &s->recs[i % s->alloc];
	r->index = i;
	r->received_ms = received_ms;
	r->failed = failed;
	r->blob = blob;
	r->blob_len = len;
	s->bytes += len;
}

/* "a\0b\0c\0d\0" in one allocation the caller owns; *len gets its size. */
static char *make_blob(const char *a, const char *b, const char *c, const char *d, size_t *len)
{
	size_t la = strlen(a) + 1, lb = strlen(b) + 1, lc = strlen(c) + 1, ld = strlen(d) + 1;
	char *blob = xmalloc(la + lb + lc + ld);
	memcpy(blob, a, la);
	memcpy(blob + la, b, lb);
	memcpy(blob + la + lb, c, lc);
	memcpy(blob + la + lb + lc, d, ld);
	*len = la + lb + lc + ld;
	return blob;
}

/* ---- the send call ------------------------------------------------------- */

static void respond_sms(struct http_req *r, unsigned int status, const char *type, const char *msg)
{
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"type\":");
	buf_json_str(&b, type);
	buf_puts(&b, ",\"message\":");
	buf_json_str(&b, msg);
	buf_putc(&b, '}');
	http_respond(r, status, "application/json", b.data, b.len);
	buf_release(&b);
}

static int all_digits(const char *s, size_t min, size_t max)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (s[n] < '0' || s[n] > '9')
			return 0;
	return n >= min && n <= max;
}

/*
 * check_body applies the gateway's rules to a parsed body (NULL: not
 * JSON). 0, or ERR_INVAL with why (at most cap bytes) said.
 */
static int check_body(json_t *root, char *why, size_t cap)
{
	if (!root) {
		snprintf(why, cap, "body is not JSON");
		return ERR_INVAL;
	}
	if (!json_is_object(root)) {
		snprintf(why, cap, "body is not a JSON object");
		return ERR_INVAL;
	}
	const char *tid = json_string_value(json_object_get(root, "template_id"));
	if (!tid || !*tid) {
		snprintf(why, cap, "template_id missing");
		return ERR_INVAL;
	}
	json_t *rcpts = json_object_get(root, "recipients");
	if (!json_is_array(rcpts)) {
		snprintf(why, cap, "recipients missing");
		return ERR_INVAL;
	}
	size_t n = json_array_size(rcpts);
	if (n < 1 || n > MOCK_SMS_MAX_RECIPIENTS) {
		snprintf(why, cap, "recipients must hold 1 to %d entries", MOCK_SMS_MAX_RECIPIENTS);
		return ERR_INVAL;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *rc = json_array_get(rcpts, i);
		const char *mobiles = json_string_value(json_object_get(rc, "mobiles"));
		json_t *var = json_object_get(rc, "var");
		if (!mobiles || !all_digits(mobiles, MOCK_SMS_MIN_DIGITS, MOCK_SMS_MAX_DIGITS)) {
			snprintf(why, cap, "recipients[%zu].mobiles must be %d to %d digits", i,
			         MOCK_SMS_MIN_DIGITS, MOCK_SMS_MAX_DIGITS);
			return ERR_INVAL;
		}
		if (!json_is_string(var)) {
			snprintf(why, cap, "recipients[%zu].var missing or not a string", i);
			return ERR_INVAL;
		}
		if (json_string_length(var) > MOCK_SMS_MAX_VAR) {
			snprintf(why, cap, "recipients[%zu].var longer than %d bytes", i,
			         MOCK_SMS_MAX_VAR);
			return ERR_INVAL;
		}
	}
	return 0;
}

/* The request id of the n-th accepted call: 24 lowercase hex digits. */
static void make_request_id(const struct mock_sms *s, uint64_t n, char out[MOCK_SMS_ID_CAP])
{
	snprintf(out, MOCK_SMS_ID_CAP, "%08x%016llx", (unsigned)s->tag,
	         (unsigned long long)tools_scatter_u64(n));
}

void mock_sms_on_send(struct http_req *r, void *ud)
{
	struct mock_sms *s = ud;
	atomic_fetch_add_explicit(&s->received, 1, memory_order_relaxed);
	const char *key = http_req_header(r, "authkey");
	if (!key || !*key) {
		atomic_fetch_add_explicit(&s->rejected, 1, memory_order_relaxed);
		respond_sms(r, 401, "error", "authkey missing");
		return;
	}
	if (atomic_load_explicit(&s->outage, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&s->failed_by_fault, 1, memory_order_relaxed);
		respond_sms(r, 503, "error", "service unavailable");
		return;
	}
	size_t len;
	const char *body = http_req_body(r, &len);
	json_t *root = json_loadb(body, len, 0, NULL);
	char why[96];
	if (check_body(root, why, sizeof(why)) != 0) {
		json_decref(root);
		atomic_fetch_add_explicit(&s->rejected, 1, memory_order_relaxed);
		respond_sms(r, 400, "error", why);
		return;
	}

	char id[MOCK_SMS_ID_CAP];
	make_request_id(s, atomic_fetch_add_explicit(&s->seq, 1, memory_order_relaxed), id);
	const char *tid = json_string_value(json_object_get(root, "template_id"));
	json_t *rcpts = json_object_get(root, "recipients");
	size_t n = json_array_size(rcpts);
	int failed[MOCK_SMS_MAX_RECIPIENTS];
	char *blobs[MOCK_SMS_MAX_RECIPIENTS];
	size_t lens[MOCK_SMS_MAX_RECIPIENTS];
	int64_t ppm = atomic_load_explicit(&s->failed_ppm, memory_order_relaxed);
	uint64_t nfailed = 0;
	for (size_t i = 0; i < n; i++) {
		json_t *rc = json_array_get(rcpts, i);
		/* one getrandom a SMS: cheap at the rates an SMS fallback sees */
		failed[i] = ppm > 0 && (int64_t)(tools_random_u64() % 1000000) < ppm;
		nfailed += (uint64_t)failed[i];
		blobs[i] = make_blob(id, tid, json_string_value(json_object_get(rc, "mobiles")),
		                     json_string_value(json_object_get(rc, "var")), &lens[i]);
	}
	int64_t now = clock_wall_ms();
	pthread_mutex_lock(&s->mu);
	for (size_t i = 0; i < n; i++)
		log_add_locked(s, now, blobs[i], lens[i], failed[i]); /* one call: consecutive */
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add_explicit(&s->accepted, n, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->failed_by_fault, nfailed, memory_order_relaxed);

	respond_sms(r, 200, "success", id);
	/* the reports go after the answer, as the gateway's do */
	for (size_t i = 0; s->dlr && i < n; i++) {
		struct mock_report rp = {
		        .id = id,
		        .recipient = json_string_value(
		                json_object_get(json_array_get(rcpts, i), "mobiles")),
		        .failed = failed[i],
		};
		mock_status_enqueue(s->dlr, &rp);
	}
	json_decref(root);
}

/* ---- GET /_mock/sms ------------------------------------------------------ */

static void put_rec(struct buf *b, const struct sms_rec *r)
{
	const char *id = r->blob;
	const char *tid = id + strlen(id) + 1;
	const char *mobiles = tid + strlen(tid) + 1;
	const char *var = mobiles + strlen(mobiles) + 1;
	buf_puts(b, "{\"index\":");
	buf_put_u64(b, r->index);
	buf_puts(b, ",\"request_id\":");
	buf_json_str(b, id);
	buf_puts(b, ",\"template_id\":");
	buf_json_str(b, tid);
	buf_puts(b, ",\"mobiles\":");
	buf_json_str(b, mobiles);
	buf_puts(b, ",\"var\":");
	buf_json_str(b, var);
	buf_puts(b, r->failed ? ",\"status\":\"failed\"" : ",\"status\":\"delivered\"");
	buf_puts(b, ",\"received_at\":");
	buf_put_u64(b, r->received_ms > 0 ? (uint64_t)r->received_ms : 0);
	buf_putc(b, '}');
}

void mock_sms_on_list(struct http_req *r, void *ud)
{
	struct mock_sms *s = ud;
	const char *since = http_req_query(r, "since");
	const char *limit = http_req_query(r, "limit");
	uint64_t from = 0, lim = MOCK_SMS_PAGE_DEFAULT;
	if (since && mock__parse_u64(since, UINT64_MAX - 1, &from) != 0) {
		respond_sms(r, 400, "error", "since must be an SMS index");
		return;
	}
	if (limit && (mock__parse_u64(limit, MOCK_SMS_PAGE_MAX, &lim) != 0 || lim == 0)) {
		respond_sms(r, 400, "error", "limit must be from 1 to 10000");
		return;
	}
	struct buf items, out;
	buf_init(&items);
	buf_init(&out);
	uint64_t k = 0;
	pthread_mutex_lock(&s->mu);
	uint64_t i = from > s->oldest ? from : s->oldest;
	for (; i < s->next && k < lim; i++, k++) {
		if (k)
			buf_putc(&items, ',');
		put_rec(&items, &s->recs[i % s->alloc]);
	}
	/* as /_mock/messages: after the last one returned, or the end */
	uint64_t next = k == lim ? i : s->next;
	pthread_mutex_unlock(&s->mu);
	buf_puts(&out, "{\"count\":");
	buf_put_u64(&out, k);
	buf_puts(&out, ",\"next\":");
	buf_put_u64(&out, next);
	buf_puts(&out, ",\"sms\":[");
	if (items.len)
		buf_append(&out, items.data, items.len);
	buf_puts(&out, "]}");
	http_respond(r, 200, "application/json", out.data, out.len);
	buf_release(&items);
	buf_release(&out);
}

/* ---- faults, counters, life ---------------------------------------------- */

void mock_sms_set_outage(struct mock_sms *s, int on)
{
	atomic_store(&s->outage, on != 0);
}

void mock_sms_set_failed_ppm(struct mock_sms *s, int64_t ppm)
{
	atomic_store(&s->failed_ppm, ppm);
}

int mock_sms_outage(struct mock_sms *s)
{
	return atomic_load(&s->outage) != 0;
}

int64_t mock_sms_failed_ppm(struct mock_sms *s)
{
	return atomic_load(&s->failed_ppm);
}

void mock_sms_counts(struct mock_sms *s, struct mock_sms_counts *out)
{
	memset(out, 0, sizeof(*out));
	out->received = atomic_load(&s->received);
	out->accepted = atomic_load(&s->accepted);
	out->rejected = atomic_load(&s->rejected);
	out->failed_by_fault = atomic_load(&s->failed_by_fault);
	pthread_mutex_lock(&s->mu);
	out->held = s->next - s->oldest;
	out->next = s->next;
	pthread_mutex_unlock(&s->mu);
	if (s->dlr)
		mock_status_counts(s->dlr, &out->dlr);
}

void mock_sms_reset(struct mock_sms *s)
{
	pthread_mutex_lock(&s->mu);
	while (s->oldest < s->next)
		evict_oldest(s);
	pthread_mutex_unlock(&s->mu);
	atomic_store(&s->outage, 0);
	atomic_store(&s->failed_ppm, 0);
	atomic_store(&s->received, 0);
	atomic_store(&s->accepted, 0);
	atomic_store(&s->rejected, 0);
	atomic_store(&s->failed_by_fault, 0);
}

int mock_sms_new(const char *dlr_url, int64_t started_ms, struct mock_sms **out)
{
	*out = NULL;
	struct mock_sms *s = xcalloc(1, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	s->alloc = MOCK_SMS_FIRST;
	s->recs = xcalloc(s->alloc, sizeof(*s->recs));
	s->tag = (uint32_t)started_ms;
	if (dlr_url && *dlr_url) {
		int rc = mock_status_new(MOCK_POST_SMS_DLR, dlr_url, NULL, &s->dlr);
		if (rc != 0) {
			mock_sms_free(s);
			return rc;
		}
	}
	*out = s;
	return 0;
}

void mock_sms_free(struct mock_sms *s)
{
	if (!s)
		return;
	mock_status_free(s->dlr);
	while (s->oldest < s->next)
		evict_oldest(s);
	free(s->recs);
	pthread_mutex_destroy(&s->mu);
	free(s);
}
