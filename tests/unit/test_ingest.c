/*
 * test_ingest.c - the webhook endpoint end to end inside one process: a
 * real SQLite store in a temporary directory (or a PostgreSQL database
 * with MUNIM_TEST_PG set: store_fixture.h), the ingest committer, the
 * HTTP server on 127.0.0.1 port 0, and libcurl posting signed payloads.
 *
 * Covered: the GET handshake (200/403/400), 401 before anything is parsed
 * or stored, 400 for a body that is not a webhook, 413 past 1000 entries,
 * a message stored with its tenant and the workers woken, redelivery
 * counted as duplicate, unknown tenants skipped (200, no commit), the
 * negative tenant cache expiring, requests sharing commits under
 * concurrency, 503 + Retry-After while the database is locked by another
 * process, and ingest_stop finishing the commit in progress and answering
 * what still waits 503. The fast path (serve running the worker role too):
 * a message processed inside its webhook's commit, and left to the
 * workers when the inbox holds an earlier entry, when the group is over
 * inline-max, or when processing it fails (its attempt recorded, 200
 * still given, nothing lost).
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "app.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "http/http_internal.h"
#include "ingest/ingest_internal.h"
#include "sample_data.h"
#include "ingest/sig.h"
#include "store/store_internal.h"
#include "raw_db.h"
#include "store_fixture.h"
#include "worker/backlog.h"
#include "worker/worker.h"

#define SECRET "test-app-secret"
#define TOKEN  "verify-me"
#define PNID   "100000000000001"

struct fx {
	struct test_db db;
	struct app app;
	struct store_conn *c; /* the test's own connection */
	struct ingest *ig;
	struct http_server *http;
	struct http_route routes[4];
	int64_t tenant;
	int port;
};

struct reply {
	long code;
	struct buf body;
	struct buf headers;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	buf_append(ud, p, size * n);
	return size * n;
}

static void reply_release(struct reply *r)
{
	buf_release(&r->body);
	buf_release(&r->headers);
}

static CURL *post_handle(struct fx *f, const char *body, const char *sig, struct reply *out,
                         struct curl_slist **hdrs)
{
	char url[128], h[128];
	CURL *c = curl_easy_init();
	buf_init(&out->body);
	buf_init(&out->headers);
	out->code = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/webhooks/whatsapp", f->port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	*hdrs = curl_slist_append(NULL, "Content-Type: application/json");
	if (sig) {
		snprintf(h, sizeof(h), "X-Hub-Signature-256: %s", sig);
		*hdrs = curl_slist_append(*hdrs, h);
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, *hdrs);
	return c;
}

/* POSTs body signed with secret (NULL: no signature header). */
static long post(struct fx *f, const char *body, const char *secret, struct reply *out)
{
	char sig[SIG_HEADER_LEN + 1];
	struct curl_slist *hdrs;
	if (secret)
		sig_sign(secret, body, strlen(body), sig);
	CURL *c = post_handle(f, body, secret ? sig : NULL, out, &hdrs);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->code);
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return out->code;
}

static long get(struct fx *f, const char *query, struct reply *out)
{
	char url[512];
	CURL *c = curl_easy_init();
	buf_init(&out->body);
	buf_init(&out->headers);
	out->code = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/webhooks/whatsapp%s", f->port, query);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->code);
	curl_easy_cleanup(c);
	return out->code;
}

/* A one-message webhook for phone_number_id pnid from customer `from`. */
static char *text_payload_from(const char *pnid, const char *wamid, const char *from,
                               const char *text)
{
	struct buf b;
	buf_init(&b);
	buf_printf(
	        &b,
	        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":"
	        "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
	        "\"metadata\":{\"display_phone_number\":\"15550000000\",\"phone_number_id\":"
	        "\"%s\"},\"contacts\":[{\"profile\":{\"name\":\"Asha\"},\"wa_id\":"
	        "\"%s\"}],\"messages\":[{\"from\":\"%s\",\"id\":\"%s\","
	        "\"timestamp\":\"1750000000\",\"type\":\"text\",\"text\":{\"body\":\"%s\"}}]}}]}]}",
	        pnid, from, from, wamid, text);
	return buf_detach(&b);
}

/* The same from customer 919800000001. */
static char *text_payload(const char *pnid, const char *wamid, const char *text)
{
	return text_payload_from(pnid, wamid, "919800000001", text);
}

static uint64_t metric(_Atomic uint64_t *v)
{
	return atomic_load(v);
}

static int64_t depth(struct fx *f)
{
	int64_t n = -1;
	assert_int_equal(store_inbox_depth(f->c, &n), 0);
	return n;
}

/* ---- fixture --------------------------------------------------------------- */

static void fx_start_server(struct fx *f)
{
	int n = ingest_routes(f->ig, f->routes, 4);
	assert_int_equal(n, 2);
	assert_int_equal(http_server_start("127.0.0.1:0", 2, (size_t)f->app.cfg.max_body, f->routes,
	                                   n, &f->http),
	                 0);
	f->port = http_server_port(f->http);
}

static int setup_with(void **state, int fast_path, int64_t window_ms, int64_t batch, int64_t lanes)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	test_app_open(&f->db, "ingest", &f->app, 200, &f->c);
	free(f->app.cfg.app_secret);
	free(f->app.cfg.verify_token);
	f->app.cfg.app_secret = xstrdup(SECRET);
	f->app.cfg.verify_token = xstrdup(TOKEN);
	struct tenant t = {.name = "Sharma Kirana",
	                   .phone_number_id = PNID,
	                   .gstin = "",
	                   .state_code = "27",
	                   .upi_id = "sharma@upi",
	                   .owner_numbers = "919800000009",
	                   .address = "Pune"};
	assert_int_equal(store_tenant_add(f->c, &t, &f->tenant), 0);

	if (fast_path)
		f->app.backlog = backlog_new(1);
	f->app.cfg.commit_window_ms = window_ms;
	if (batch > 0)
		f->app.cfg.commit_batch = batch;
	if (lanes > 0)
		f->app.cfg.committers = lanes;
	assert_int_equal(ingest_start(&f->app, NULL, &f->ig), 0);
	fx_start_server(f);
	*state = f;
	return 0;
}

static int setup(void **state)
{
	return setup_with(state, 0, 0, 0, 0);
}

static int setup_fast(void **state)
{
	return setup_with(state, 1, 0, 0, 0);
}

/* A commit waits up to a second for three requests. */
static int setup_window(void **state)
{
	return setup_with(state, 0, 1000, 3, 0);
}

/* Two committer lanes, the fast path on. */
static int setup_lanes(void **state)
{
	return setup_with(state, 1, 0, 0, 2);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	http_server_stop(f->http);
	ingest_stop(f->ig);
	backlog_free(f->app.backlog);
	test_app_close(&f->db, &f->app, f->c);
	free(f);
	clock_set_fake(-1);
	return 0;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_verify_handshake(void **state)
{
	struct fx *f = *state;
	struct reply r;
	assert_int_equal(
	        get(f, "?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=" TOKEN, &r),
	        200);
	assert_string_equal(r.body.data, "1158201444");
	reply_release(&r);
}

static void test_verify_wrong_token_403(void **state)
{
	struct fx *f = *state;
	struct reply r;
	assert_int_equal(get(f, "?hub.mode=subscribe&hub.challenge=1&hub.verify_token=nope", &r),
	                 403);
	reply_release(&r);
	assert_int_equal(
	        get(f, "?hub.mode=subscribe&hub.challenge=1&hub.verify_token=" TOKEN "x", &r), 403);
	reply_release(&r);
	assert_int_equal(
	        get(f, "?hub.mode=unsubscribe&hub.challenge=1&hub.verify_token=" TOKEN, &r), 403);
	reply_release(&r);
	assert_int_equal(get(f, "", &r), 403);
	reply_release(&r);
	/* right token, no challenge to echo */
	assert_int_equal(get(f, "?hub.mode=subscribe&hub.verify_token=" TOKEN, &r), 400);
	reply_release(&r);
}

static void test_bad_signature_401_nothing_stored(void **state)
{
	struct fx *f = *state;
	struct reply r;
	char *body = text_payload(PNID, "wamid.BAD", "hello");
	assert_int_equal(post(f, body, "wrong-secret", &r), 401);
	assert_non_null(strstr(r.body.data, "\"error\""));
	reply_release(&r);
	assert_int_equal(post(f, body, NULL, &r), 401);
	reply_release(&r);
	/* garbage with a bad signature is refused before parsing: still 401 */
	assert_int_equal(post(f, "not json", "wrong-secret", &r), 401);
	reply_release(&r);
	assert_int_equal(depth(f), 0);
	assert_int_equal(metric(&f->app.metrics.webhook_requests[MCODE_401]), 3);
	assert_int_equal(metric(&f->app.metrics.commits), 0);
	free(body);
}

static void test_not_webhook_400(void **state)
{
	struct fx *f = *state;
	struct reply r;
	assert_int_equal(post(f, "not json", SECRET, &r), 400);
	assert_non_null(strstr(r.body.data, "{\"error\":"));
	reply_release(&r);
	assert_int_equal(post(f, "{\"object\":\"page\",\"entry\":[]}", SECRET, &r), 400);
	reply_release(&r);
	assert_int_equal(metric(&f->app.metrics.webhook_requests[MCODE_400]), 2);
	assert_int_equal(depth(f), 0);
}

static void test_too_many_entries_413(void **state)
{
	struct fx *f = *state;
	struct reply r;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"changes\":[{"
	             "\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
	             "\"metadata\":{\"phone_number_id\":\"" PNID "\"},\"statuses\":[");
	for (int i = 0; i < 1001; i++)
		buf_printf(&b, "%s{\"id\":\"w%d\",\"status\":\"sent\"}", i ? "," : "", i);
	buf_puts(&b, "]}}]}]}");
	assert_true(b.len < (size_t)f->app.cfg.max_body);
	assert_int_equal(post(f, b.data, SECRET, &r), 413);
	reply_release(&r);
	assert_int_equal(depth(f), 0);
	buf_release(&b);
}

static void test_message_stored_and_workers_woken(void **state)
{
	struct fx *f = *state;
	struct reply r;
	struct arena a;
	struct inbox_entry *e;
	int n;
	char *body = text_payload(PNID, "wamid.ONE", "stock rice");

	uint64_t seen = 0;
	assert_int_equal(post(f, body, SECRET, &r), 200);
	assert_string_equal(r.body.data, "{\"ok\":true}");
	reply_release(&r);
	assert_int_equal(notify_wait(&f->app.inbox_ready, &seen, 0), 1);
	assert_int_equal(metric(&f->app.metrics.inbox_new), 1);
	assert_int_equal(atomic_load(&f->app.metrics.inbox_depth), 1);
	assert_int_equal(metric(&f->app.metrics.commits), 1);
	assert_int_equal(metric(&f->app.metrics.commit_requests), 1);
	assert_int_equal(metric(&f->app.metrics.webhook_requests[MCODE_200]), 1);

	arena_init(&a, 0);
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 10, &a, &e, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(e[0].tenant_id, f->tenant);
	assert_int_equal(e[0].kind, INBOX_MESSAGE);
	assert_string_equal(e[0].ext_id, "wamid.ONE");
	assert_string_equal(e[0].from, "919800000001");
	assert_string_equal(e[0].name, "Asha");
	assert_string_equal(e[0].body, "stock rice");
	assert_int_equal(e[0].sent_at, 1750000000000LL);
	arena_release(&a);

	/* redelivery: 200 again, nothing new, counted as duplicate, no wake-up */
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	assert_int_equal(metric(&f->app.metrics.inbox_new), 1);
	assert_int_equal(metric(&f->app.metrics.inbox_duplicate), 1);
	assert_int_equal(notify_wait(&f->app.inbox_ready, &seen, 0), 0);
	assert_int_equal(depth(f), 1);
	free(body);
}

static void test_sample_payloads_stored(void **state)
{
	struct fx *f = *state;
	struct reply r;
	/* the pywa samples use phone_number_id 1122334455667 */
	struct tenant t = {.name = "Two", .phone_number_id = "1122334455667", .state_code = "27"};
	int64_t id;
	const char *files[] = {"pywa_status_failed_130472.json", "pywa_order_message.json",
	                       "pywa_template_quick_reply_button.json"};
	assert_int_equal(store_tenant_add(f->c, &t, &id), 0);
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		size_t n;
		char *data = sample_load(files[i], &n);
		assert_int_equal(post(f, data, SECRET, &r), 200);
		reply_release(&r);
		free(data);
	}
	/* the two messages wait in the inbox; the status was applied (to no
	 * row we know) in its webhook's commit, not queued */
	assert_int_equal(metric(&f->app.metrics.inbox_new), 2);
	assert_int_equal(depth(f), 2);
	assert_int_equal(metric(&f->app.metrics.statuses_applied), 1);
	assert_int_equal(metric(&f->app.metrics.statuses_unmatched), 1);
}

static char *status_payload(const char *wamid, const char *status)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b,
	           "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\","
	           "\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":"
	           "\"whatsapp\",\"metadata\":{\"phone_number_id\":\"" PNID "\"},"
	           "\"statuses\":[{\"id\":\"%s\",\"status\":\"%s\",\"timestamp\":"
	           "\"1750000000\",\"recipient_id\":\"919800000001\"}]}}]}]}",
	           wamid, status);
	return b.data;
}

/* A delivery status moves its outbox row inside the webhook's own commit:
 * done when the 200 comes back, with no inbox row and no worker. */
static void test_status_applied_in_commit(void **state)
{
	struct fx *f = *state;
	struct reply r;
	struct arena a;
	struct outbox_row *rows, *list;
	int n;
	int64_t id;
	struct outbox_new o = {.tenant_id = f->tenant,
	                       .priority = PRIO_P2,
	                       .phone_number_id = PNID,
	                       .to = "919800000001",
	                       .body = "{}"};
	arena_init(&a, 0);
	assert_int_equal(store_outbox_add(f->c, &o, &id), 0);
	assert_int_equal(store_outbox_claim(f->c, INT64_MAX / 2, 1, PRIO_P3, &a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_outbox_accepted(f->c, id, "wamid.OUT1", "", 1, NULL), 0);
	atomic_store(&f->app.metrics.outbox[PRIO_P2][OUTBOX_ACCEPTED], 1);

	char *body = status_payload("wamid.OUT1", "delivered");
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	assert_int_equal(store_outbox_list(f->c, OUTBOX_DELIVERED, 10, &a, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, id);
	assert_int_equal(depth(f), 0);
	assert_int_equal(metric(&f->app.metrics.inbox_new), 0);
	assert_int_equal(metric(&f->app.metrics.statuses_applied), 1);
	assert_int_equal(metric(&f->app.metrics.commits), 1);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_ACCEPTED]), 0);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_DELIVERED]), 1);

	/* redelivered, and an older status after it: 200, the row stays */
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	free(body);
	body = status_payload("wamid.OUT1", "sent");
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	assert_int_equal(store_outbox_list(f->c, OUTBOX_DELIVERED, 10, &a, &list, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_DELIVERED]), 1);
	assert_int_equal(metric(&f->app.metrics.statuses_unmatched), 0);
	free(body);
	arena_release(&a);
}

static void test_unknown_tenant_skipped_200_no_commit(void **state)
{
	struct fx *f = *state;
	struct reply r;
	char *body = text_payload("999999999999999", "wamid.UNK", "hello");
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	assert_int_equal(metric(&f->app.metrics.webhook_unknown_tenant), 1);
	assert_int_equal(metric(&f->app.metrics.commits), 0);
	assert_int_equal(depth(f), 0);
	free(body);
}

static void test_negative_cache_expires(void **state)
{
	struct fx *f = *state;
	int64_t id = -1, tid;
	struct tenant t = {.name = "New", .phone_number_id = "200000000000002", .state_code = "27"};

	clock_set_fake(1750000000000LL);
	assert_int_equal(ingest__resolve(f->ig, "200000000000002", &id), 0);
	assert_int_equal(id, 0);
	assert_int_equal(store_tenant_add(f->c, &t, &tid), 0);
	/* still cached as unknown a moment later */
	clock_set_fake(1750000000000LL + INGEST_NEG_TTL_MS - 1);
	assert_int_equal(ingest__resolve(f->ig, "200000000000002", &id), 0);
	assert_int_equal(id, 0);
	/* found once the negative entry expires */
	clock_set_fake(1750000000000LL + INGEST_NEG_TTL_MS + 1);
	assert_int_equal(ingest__resolve(f->ig, "200000000000002", &id), 0);
	assert_int_equal(id, tid);
	/* and the known one is served from the cache */
	assert_int_equal(ingest__resolve(f->ig, PNID, &id), 0);
	assert_int_equal(id, f->tenant);
	assert_int_equal(ingest__resolve(f->ig, "", &id), 0);
	assert_int_equal(id, 0);
	clock_set_fake(-1);
}

/* post_at_once posts n (at most 200) text messages at the same time
 * (wamids prefix0, prefix1, ...); each must be answered 200. */
static void post_at_once(struct fx *f, const char *prefix, int n)
{
	enum { N = 200 };
	CURLM *m = curl_multi_init();
	CURL *easy[N];
	struct reply rep[N];
	struct curl_slist *hdrs[N];
	char *bodies[N];
	char sig[N][SIG_HEADER_LEN + 1];
	int running = 0;

	assert_in_range(n, 1, N);
	for (int i = 0; i < n; i++) {
		char wamid[32], text[32];
		snprintf(wamid, sizeof(wamid), "%s%d", prefix, i);
		snprintf(text, sizeof(text), "msg %d", i);
		bodies[i] = text_payload(PNID, wamid, text);
		sig_sign(SECRET, bodies[i], strlen(bodies[i]), sig[i]);
		easy[i] = post_handle(f, bodies[i], sig[i], &rep[i], &hdrs[i]);
		curl_multi_add_handle(m, easy[i]);
	}
	do {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 50, NULL);
	} while (running);
	for (int i = 0; i < n; i++) {
		long code = 0;
		curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &code);
		assert_int_equal(code, 200);
		curl_multi_remove_handle(m, easy[i]);
		curl_easy_cleanup(easy[i]);
		curl_slist_free_all(hdrs[i]);
		reply_release(&rep[i]);
		free(bodies[i]);
	}
	curl_multi_cleanup(m);
}

/* Many requests at once: all 200, all stored, and fewer commits than
 * requests (they shared fsyncs). */
static void test_group_commit_under_concurrency(void **state)
{
	struct fx *f = *state;
	enum { N = 200 };
	post_at_once(f, "wamid.G", N);
	assert_int_equal(depth(f), N);
	assert_int_equal(metric(&f->app.metrics.inbox_new), N);
	assert_int_equal(metric(&f->app.metrics.commit_requests), N);
	uint64_t commits = metric(&f->app.metrics.commits);
	print_message("%d requests in %llu commits\n", N, (unsigned long long)commits);
	assert_true(commits >= 1 && commits < N);
}

static void lock_db(struct fx *f, struct raw_db *other)
{
	raw_open(other, f->db.path);
	raw_lock_writes(other);
}

static void unlock_db(struct raw_db *other)
{
	raw_unlock(other);
	raw_close(other);
}

static void test_store_locked_503_then_recovers(void **state)
{
	struct fx *f = *state;
	struct reply r;
	char *body = text_payload(PNID, "wamid.LOCK", "hello");
	struct raw_db other;
	lock_db(f, &other); /* "another process" holds the write lock */

	assert_int_equal(post(f, body, SECRET, &r), 503);
	assert_non_null(strstr(r.headers.data, "Retry-After: 5"));
	reply_release(&r);
	assert_int_equal(metric(&f->app.metrics.webhook_requests[MCODE_503]), 1);
	assert_int_equal(metric(&f->app.metrics.commits), 0);
	unlock_db(&other);

	/* the BSP retries: now it is stored */
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	assert_int_equal(depth(f), 1);
	free(body);
}

struct async {
	CURLM *m;
	CURL *c;
	struct reply r;
	struct curl_slist *h;
	char *body;
	char sig[SIG_HEADER_LEN + 1];
};

static void async_start(struct fx *f, struct async *a, const char *wamid)
{
	a->m = curl_multi_init();
	a->body = text_payload(PNID, wamid, "x");
	sig_sign(SECRET, a->body, strlen(a->body), a->sig);
	a->c = post_handle(f, a->body, a->sig, &a->r, &a->h);
	curl_multi_add_handle(a->m, a->c);
}

static int async_step(struct async *a)
{
	int running = 0;
	curl_multi_perform(a->m, &running);
	curl_multi_poll(a->m, NULL, 0, 10, NULL);
	return running;
}

static long async_finish(struct async *a)
{
	long code = 0;
	while (async_step(a))
		;
	curl_easy_getinfo(a->c, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(a->m, a->c);
	curl_easy_cleanup(a->c);
	curl_multi_cleanup(a->m);
	curl_slist_free_all(a->h);
	reply_release(&a->r);
	free(a->body);
	return code;
}

static void *stop_main(void *ig)
{
	ingest_stop(ig);
	return NULL;
}

/* ingest_stop while a commit is in progress and another request waits:
 * the commit finishes (200), the waiting request gets 503. The test holds
 * the store's write transaction, so the committer blocks in store_begin
 * with the first request while the second queues behind it. PostgreSQL
 * has no store-wide write lock for store_begin to take: another session's
 * lock on the inbox holds the committer in store_inbox_put instead, with
 * a busy timeout long enough to outlast the test's steps (PostgreSQL reads
 * it at each transaction's start). */
static void test_stop_finishes_commit_fails_queued(void **state)
{
	struct fx *f = *state;
	struct async a1, a2;
	struct raw_db other;
	pthread_t th;

	if (test_pg_base()) {
		store_set_busy_timeout(f->app.store, 60000);
		raw_open(&other, f->db.path);
		assert_int_equal(raw_exec(&other, "BEGIN; LOCK TABLE inbox IN EXCLUSIVE MODE"), 0);
	} else {
		assert_int_equal(store_begin(f->c), 0);
	}
	async_start(f, &a1, "wamid.S1");
	while (http_server_pending(f->http) < 1 || ingest__queued(f->ig) > 0)
		async_step(&a1); /* until the committer holds it */
	async_start(f, &a2, "wamid.S2");
	while (ingest__queued(f->ig) < 1) {
		async_step(&a1);
		async_step(&a2);
	}
	pthread_create(&th, NULL, stop_main, f->ig);
	while (!ingest__stopping(f->ig))
		async_step(&a1);
	/* the committer goes on */
	if (test_pg_base()) {
		raw_unlock(&other);
		raw_close(&other);
	} else {
		assert_int_equal(store_commit(f->c), 0);
	}
	assert_int_equal(async_finish(&a1), 200);
	assert_int_equal(async_finish(&a2), 503);
	pthread_join(th, NULL);
	f->ig = NULL;
	assert_int_equal(depth(f), 1);
	assert_int_equal(metric(&f->app.metrics.webhook_requests[MCODE_200]), 1);
	assert_int_equal(metric(&f->app.metrics.webhook_requests[MCODE_503]), 1);
}

static void test_start_without_secret_err_inval(void **state)
{
	struct fx *f = *state;
	struct app app = f->app;
	struct ingest *ig = (struct ingest *)1;
	app.cfg.app_secret = NULL;
	assert_int_equal(ingest_start(&app, NULL, &ig), ERR_INVAL);
	assert_null(ig);
	ingest_stop(NULL);
}

/* ---- the fast path ------------------------------------------------------------ */

/* One integer from the store, read on a connection of its own. */
static int64_t sql_int(struct fx *f, const char *sql)
{
	return raw_sql_int(f->db.path, sql);
}

/* A store that refuses every reply: processing a message fails. */
#define REFUSE_REPLIES_SQLITE                                                                      \
	"CREATE TRIGGER no_replies BEFORE INSERT ON outbox"                                        \
	" BEGIN SELECT RAISE(ABORT, 'replies refused'); END"
#define REFUSE_REPLIES_PG                                                                          \
	"CREATE FUNCTION no_replies() RETURNS trigger LANGUAGE plpgsql AS"                         \
	" $$ BEGIN RAISE EXCEPTION 'replies refused'; END $$;"                                     \
	" CREATE TRIGGER no_replies BEFORE INSERT ON outbox"                                       \
	" FOR EACH ROW EXECUTE FUNCTION no_replies()"
#define REFUSE_REPLIES (test_pg_base() ? REFUSE_REPLIES_PG : REFUSE_REPLIES_SQLITE)
#define ALLOW_REPLIES                                                                              \
	(test_pg_base() ? "DROP TRIGGER no_replies ON outbox; DROP FUNCTION no_replies()"          \
	                : "DROP TRIGGER no_replies")

/* The state of the inbox entry of wamid (-1: none). */
static int64_t entry_state(struct fx *f, const char *wamid)
{
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT state FROM inbox WHERE ext_id = '%s'", wamid);
	return sql_int(f, sql);
}

/* sql_exec runs sql on a connection of its own: 0 or -1. */
static int sql_exec(struct fx *f, const char *sql)
{
	return raw_sql_exec(f->db.path, sql);
}

static void post_ok_from(struct fx *f, const char *wamid, const char *from, const char *text)
{
	struct reply r;
	char *body = text_payload_from(PNID, wamid, from, text);
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	free(body);
}

static void post_ok(struct fx *f, const char *wamid, const char *text)
{
	post_ok_from(f, wamid, "919800000001", text);
}

/*
 * With a commit window, the committer waits for more requests to share a
 * commit: three posted at once go in one, however the committer's wake-up
 * falls between them; a lone one is answered once the window has passed.
 */
static void test_commit_window_gathers_requests(void **state)
{
	struct fx *f = *state;
	post_at_once(f, "wamid.W", 3);
	assert_int_equal(metric(&f->app.metrics.commit_requests), 3);
	assert_int_equal(metric(&f->app.metrics.commits), 1);
	assert_int_equal(depth(f), 3);
	post_ok(f, "wamid.ALONE", "hi");
	assert_int_equal(metric(&f->app.metrics.commits), 2);
	assert_int_equal(depth(f), 4);
}

static void test_fast_path_processes_in_commit(void **state)
{
	struct fx *f = *state;
	uint64_t seen = 0;
	post_ok(f, "wamid.FAST1", "hi");
	/* the entry is done and its reply queued by the same commit */
	assert_int_equal(entry_state(f, "wamid.FAST1"), INBOX_DONE);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE reply_to = 'wamid.FAST1'"),
	                 1);
	assert_int_equal(metric(&f->app.metrics.commits), 1);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 1);
	assert_int_equal(metric(&f->app.metrics.messages_processed), 1);
	assert_int_equal(atomic_load(&f->app.metrics.inbox_depth), 0);
	assert_int_equal(depth(f), 0);
	int64_t queued = 0;
	for (int p = 0; p < PRIO_COUNT; p++)
		queued += atomic_load(&f->app.metrics.outbox[p][OUTBOX_PENDING]);
	assert_int_equal(queued, 1);
	/* the sender is woken, the workers are not: nothing waits for them */
	assert_int_equal(notify_wait(&f->app.outbox_ready, &seen, 0), 1);
	seen = 0;
	assert_int_equal(notify_wait(&f->app.inbox_ready, &seen, 0), 0);
	/* a redelivery is a duplicate, processed no second time */
	post_ok(f, "wamid.FAST1", "hi");
	assert_int_equal(metric(&f->app.metrics.inbox_duplicate), 1);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 1);
}

/* Another process takes webhooks too (app.inline_off, set by the lease
 * keeper): the message is written pending for the workers, not run in
 * the commit. */
static void test_fast_path_off_leaves_messages_to_workers(void **state)
{
	struct fx *f = *state;
	uint64_t seen = 0;
	atomic_store(&f->app.inline_off, 1);
	post_ok(f, "wamid.SHARED1", "hi");
	assert_int_equal(entry_state(f, "wamid.SHARED1"), INBOX_PENDING);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 0);
	assert_int_equal(depth(f), 1);
	assert_int_equal(notify_wait(&f->app.inbox_ready, &seen, 0), 1);
	/* on again: the next message runs in its commit - but its customer's
	 * first waits, so it waits behind it */
	atomic_store(&f->app.inline_off, 0);
	post_ok(f, "wamid.SHARED2", "hi again");
	assert_int_equal(entry_state(f, "wamid.SHARED2"), INBOX_PENDING);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 0);
}

/* stored_entry: a text message "hi" of customer 919800000001, put in the
 * inbox pending by the test's own connection (its id set). */
static struct inbox_entry stored_text(struct fx *f, const char *wamid, const char *from,
                                      const char *text)
{
	struct inbox_entry e = {.tenant_id = f->tenant,
	                        .kind = INBOX_MESSAGE,
	                        .ext_id = wamid,
	                        .status = "",
	                        .from = from,
	                        .name = "",
	                        .type = "text",
	                        .body = text,
	                        .context_id = "",
	                        .error_title = "",
	                        .callback_data = ""};
	enum inbox_put_result res;
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_inbox_put(f->c, &e, 1, &res), 0);
	assert_int_equal(store_commit(f->c), 0);
	assert_true(e.id > 0);
	return e;
}

static struct inbox_entry stored_entry_from(struct fx *f, const char *wamid, const char *from)
{
	return stored_text(f, wamid, from, "hi");
}

static struct inbox_entry stored_entry(struct fx *f, const char *wamid)
{
	return stored_entry_from(f, wamid, "919800000001");
}

static void test_fast_path_waits_behind_pending_entry(void **state)
{
	struct fx *f = *state;
	/* an earlier entry waits in the inbox, as after a restart: who waits
	 * is not known until the inbox is seen empty */
	backlog_free(f->app.backlog);
	f->app.backlog = backlog_new(0);
	stored_entry(f, "wamid.EARLIER");
	atomic_store(&f->app.metrics.inbox_depth, 1);

	post_ok(f, "wamid.LATER", "hi");
	/* not overtaken: both wait for the workers, in order */
	assert_int_equal(entry_state(f, "wamid.LATER"), INBOX_PENDING);
	/* nor is another customer's: whose entry waits is not known */
	post_ok_from(f, "wamid.OTHER", "919800000002", "hi");
	assert_int_equal(entry_state(f, "wamid.OTHER"), INBOX_PENDING);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 0);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(depth(f), 3);

	/* once the inbox is empty (the workers' doing), all is known again */
	assert_int_equal(sql_exec(f, "UPDATE inbox SET state = 1"), 0);
	atomic_store(&f->app.metrics.inbox_depth, 0);
	post_ok_from(f, "wamid.AFTER", "919800000001", "hi");
	assert_int_equal(entry_state(f, "wamid.AFTER"), INBOX_DONE);
	assert_true(backlog_is_known(f->app.backlog));
}

static void test_fast_path_group_over_limit_left_pending(void **state)
{
	struct fx *f = *state;
	f->app.cfg.inline_max = 0; /* read by the committer at each commit */
	post_ok(f, "wamid.BIG", "hi");
	assert_int_equal(entry_state(f, "wamid.BIG"), INBOX_PENDING);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 0);
	assert_int_equal(atomic_load(&f->app.metrics.inbox_depth), 1);
	/* the customer's next message waits behind it, another's does not */
	f->app.cfg.inline_max = 64;
	post_ok(f, "wamid.NEXT", "hi");
	assert_int_equal(entry_state(f, "wamid.NEXT"), INBOX_PENDING);
	post_ok_from(f, "wamid.ELSE", "919800000002", "hi");
	assert_int_equal(entry_state(f, "wamid.ELSE"), INBOX_DONE);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 1);
	assert_int_equal(atomic_load(&f->app.metrics.inbox_depth), 2);
	assert_true(backlog_has(f->app.backlog, f->tenant, "919800000001"));
	assert_false(backlog_has(f->app.backlog, f->tenant, "919800000002"));
}

static void test_fast_path_failure_keeps_message(void **state)
{
	struct fx *f = *state;
	assert_int_equal(sql_exec(f, REFUSE_REPLIES), 0);
	uint64_t seen = 0;
	post_ok(f, "wamid.FAILS", "hi"); /* still 200: the message is kept */
	assert_int_equal(entry_state(f, "wamid.FAILS"), INBOX_PENDING);
	assert_int_equal(sql_int(f, "SELECT attempts FROM inbox WHERE ext_id = 'wamid.FAILS'"), 1);
	assert_int_equal(metric(&f->app.metrics.messages_failed), 1);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 0);
	assert_int_equal(atomic_load(&f->app.metrics.inbox_depth), 1);
	/* the workers are told: the entry is theirs now */
	assert_int_equal(notify_wait(&f->app.inbox_ready, &seen, 0), 1);
	assert_true(backlog_has(f->app.backlog, f->tenant, "919800000001"));
	assert_int_equal(sql_exec(f, ALLOW_REPLIES), 0);
}

/*
 * A worker's transaction whose replies cannot go to the outbox together:
 * worker_runner_flush fails and the transaction rolls back; the next one
 * queues each reply as it comes, so the message at fault fails alone
 * (its attempt counted) and its transaction commits.
 */
static void test_runner_replies_one_by_one_after_flush_failed(void **state)
{
	struct fx *f = *state;
	struct inbox_entry e = stored_entry(f, "wamid.RUNNER");
	assert_int_equal(sql_exec(f, REFUSE_REPLIES), 0);

	struct worker_runner *r = worker_runner_new(&f->app, NULL);
	int finished = 0;
	worker_runner_begin(r);
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(worker_runner_entry(r, f->c, &e, &finished), 0);
	assert_int_equal(finished, 1); /* its reply waits for the flush */
	int rc = worker_runner_flush(r, f->c);
	assert_true(rc < 0 && !err_transient(rc)); /* the trigger's, not the store's state */
	assert_non_null(strstr(store_errmsg(f->c), "replies refused"));
	store_rollback(f->c);
	worker_runner_rolled_back(r);
	assert_int_equal(sql_int(f, "SELECT attempts FROM inbox WHERE ext_id = 'wamid.RUNNER'"), 0);

	worker_runner_begin(r);
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(worker_runner_entry(r, f->c, &e, &finished), 0);
	assert_int_equal(finished, 0); /* failed on its own, to be tried again */
	assert_int_equal(worker_runner_flush(r, f->c), 0);
	assert_int_equal(store_commit(f->c), 0);
	worker_runner_committed(r, 1);
	assert_int_equal(entry_state(f, "wamid.RUNNER"), INBOX_PENDING);
	assert_int_equal(sql_int(f, "SELECT attempts FROM inbox WHERE ext_id = 'wamid.RUNNER'"), 1);

	/* with replies allowed again, they go together once more */
	assert_int_equal(sql_exec(f, ALLOW_REPLIES), 0);
	e.attempts = 1;
	worker_runner_begin(r);
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(worker_runner_entry(r, f->c, &e, &finished), 0);
	assert_int_equal(finished, 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 0); /* not yet written */
	assert_int_equal(worker_runner_flush(r, f->c), 0);
	assert_int_equal(store_commit(f->c), 0);
	worker_runner_committed(r, 1);
	assert_int_equal(entry_state(f, "wamid.RUNNER"), INBOX_DONE);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 1);
	worker_runner_free(r);
}

/*
 * Two messages of one customer in one webhook, both written done for the
 * fast path: the first fails, so the second must wait behind it - both end
 * pending (the first with its attempt counted, the second untried), and
 * the inbox's pending index knows them (the workers find them).
 */
/* Customer 919800000008 cannot be recorded: the ERP fails on its messages. */
#define REFUSED_CUSTOMER "919800000008"
#define REFUSE_CUSTOMER_SQLITE                                                                     \
	"CREATE TRIGGER no_customer BEFORE INSERT ON customers"                                    \
	" WHEN NEW.wa_id = '" REFUSED_CUSTOMER "'"                                                 \
	" BEGIN SELECT RAISE(ABORT, 'customer refused'); END"
#define REFUSE_CUSTOMER_PG                                                                         \
	"CREATE FUNCTION no_customer() RETURNS trigger LANGUAGE plpgsql AS"                        \
	" $$ BEGIN RAISE EXCEPTION 'customer refused'; END $$;"                                    \
	" CREATE TRIGGER no_customer BEFORE INSERT ON customers FOR EACH ROW"                      \
	" WHEN (NEW.wa_id = '" REFUSED_CUSTOMER "') EXECUTE FUNCTION no_customer()"
#define REFUSE_CUSTOMER (test_pg_base() ? REFUSE_CUSTOMER_PG : REFUSE_CUSTOMER_SQLITE)

/*
 * A transaction runs fast, its entries with no savepoint of their own: an
 * entry whose ERP work fails fails the run, nothing recorded, and the
 * runner asks for the transaction again; the careful second run records
 * that entry's attempt alone and commits the rest; after the commit the
 * runner is fast again.
 */
static void test_runner_again_carefully_after_entry_failed(void **state)
{
	struct fx *f = *state;
	struct inbox_entry good = stored_entry(f, "wamid.GOOD");
	struct inbox_entry bad = stored_entry_from(f, "wamid.BAD", REFUSED_CUSTOMER);
	assert_int_equal(sql_exec(f, REFUSE_CUSTOMER), 0);
	struct worker_runner *r = worker_runner_new(&f->app, NULL);
	int fin = 0;

	worker_runner_begin(r);
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(worker_runner_entry(r, f->c, &good, &fin), 0);
	assert_int_equal(fin, 1);
	int rc = worker_runner_entry(r, f->c, &bad, &fin);
	assert_true(rc < 0 && !err_transient(rc));
	assert_int_equal(fin, 0);
	assert_non_null(strstr(store_errmsg(f->c), "customer refused"));
	store_rollback(f->c);
	assert_int_equal(worker_runner_rolled_back(r), 1);
	assert_int_equal(sql_int(f, "SELECT attempts FROM inbox WHERE ext_id = 'wamid.BAD'"), 0);
	assert_int_equal(entry_state(f, "wamid.GOOD"), INBOX_PENDING);

	worker_runner_begin(r);
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(worker_runner_entry(r, f->c, &good, &fin), 0);
	assert_int_equal(fin, 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 0); /* not committed */
	assert_int_equal(worker_runner_entry(r, f->c, &bad, &fin), 0);
	assert_int_equal(fin, 0); /* failed on its own */
	assert_int_equal(worker_runner_flush(r, f->c), 0);
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(worker_runner_committed(r, 1), 1);
	assert_int_equal(entry_state(f, "wamid.GOOD"), INBOX_DONE);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 1); /* GOOD's reply */
	assert_int_equal(entry_state(f, "wamid.BAD"), INBOX_PENDING);
	assert_int_equal(sql_int(f, "SELECT attempts FROM inbox WHERE ext_id = 'wamid.BAD'"), 1);

	/* fast again: the failure is the transaction's once more */
	bad.attempts = 1;
	worker_runner_begin(r);
	assert_int_equal(store_begin(f->c), 0);
	rc = worker_runner_entry(r, f->c, &bad, &fin);
	assert_true(rc < 0 && !err_transient(rc));
	store_rollback(f->c);
	assert_int_equal(worker_runner_rolled_back(r), 1);
	worker_runner_free(r);
}

/*
 * A shop read ahead serves its first message only: an earlier message of a
 * transaction may change the shop's catalogue (here its price, as an
 * owner's command would), and the next message of that shop must see the
 * change - the catalogue cache keys on the revision read with the shop.
 */
static void test_runner_rereads_a_shop_its_message_changed(void **state)
{
	struct fx *f = *state;
	struct product p = {.tenant_id = f->tenant,
	                    .sku = "SALT1",
	                    .name = "Tata Salt",
	                    .aliases = "salt",
	                    .unit = "kg",
	                    .base_per_unit = 1000,
	                    .price_paise = 2800,
	                    .gst_rate_bp = 0,
	                    .hsn = "2501"};
	int64_t pid;
	assert_int_equal(store_product_upsert(f->c, &p, &pid), 0);
	struct inbox_entry one = stored_text(f, "wamid.PRICE1", "919800000001", "price salt");
	struct inbox_entry two = stored_text(f, "wamid.PRICE2", "919800000002", "price salt");
	struct worker_runner *r = worker_runner_new(&f->app, NULL);
	int fin;
	worker_runner_begin(r);
	assert_int_equal(store_begin(f->c), 0);
	worker_runner_expect(r, f->tenant);
	worker_runner_expect(r, f->tenant);
	assert_int_equal(worker_runner_prefetch(r, f->c), 0);
	assert_int_equal(worker_runner_entry(r, f->c, &one, &fin), 0);
	assert_int_equal(store_product_set_price(f->c, f->tenant, pid, 3100), 0);
	assert_int_equal(worker_runner_entry(r, f->c, &two, &fin), 0);
	assert_int_equal(fin, 1);
	assert_int_equal(worker_runner_flush(r, f->c), 0);
	assert_int_equal(store_commit(f->c), 0);
	worker_runner_committed(r, 1);
	worker_runner_free(r);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE reply_to = 'wamid.PRICE1'"
	                            " AND body LIKE '%28.00%'"),
	                 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox WHERE reply_to = 'wamid.PRICE2'"
	                            " AND body LIKE '%31.00%'"),
	                 1);
}

static void test_fast_path_written_done_reopened_behind_failure(void **state)
{
	struct fx *f = *state;
	assert_int_equal(sql_exec(f, REFUSE_REPLIES), 0);
	struct reply r;
	const char *body =
	        "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":"
	        "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
	        "\"metadata\":{\"display_phone_number\":\"15550000000\",\"phone_number_id\":"
	        "\"" PNID "\"},\"messages\":["
	        "{\"from\":\"919800000001\",\"id\":\"wamid.ONE\",\"timestamp\":\"1750000000\","
	        "\"type\":\"text\",\"text\":{\"body\":\"hi\"}},"
	        "{\"from\":\"919800000001\",\"id\":\"wamid.TWO\",\"timestamp\":\"1750000001\","
	        "\"type\":\"text\",\"text\":{\"body\":\"menu\"}}]}}]}]}";
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	assert_int_equal(entry_state(f, "wamid.ONE"), INBOX_PENDING);
	assert_int_equal(sql_int(f, "SELECT attempts FROM inbox WHERE ext_id = 'wamid.ONE'"), 1);
	assert_int_equal(entry_state(f, "wamid.TWO"), INBOX_PENDING);
	assert_int_equal(sql_int(f, "SELECT attempts FROM inbox WHERE ext_id = 'wamid.TWO'"), 0);
	assert_int_equal(depth(f), 2); /* counted through the pending index */
	assert_int_equal(atomic_load(&f->app.metrics.inbox_depth), 2);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 0);
	assert_int_equal(sql_exec(f, ALLOW_REPLIES), 0);
}

/* A second shop, one whose partition falls in the other of two lanes;
 * its phone_number_id in pnid. */
static int64_t other_lane_shop(struct fx *f, char *pnid, size_t cap)
{
	int home = store_partition(f->tenant) % 2;
	for (int i = 2; i < 100; i++) {
		snprintf(pnid, cap, "1000000000000%02d", i);
		struct tenant t = {.name = "Patel Medical",
		                   .phone_number_id = pnid,
		                   .gstin = "",
		                   .state_code = "27",
		                   .upi_id = "",
		                   .owner_numbers = "",
		                   .address = ""};
		int64_t id;
		assert_int_equal(store_tenant_add(f->c, &t, &id), 0);
		if (store_partition(id) % 2 != home)
			return id;
	}
	fail_msg("no shop in the other lane");
	return 0;
}

/* One webhook with a message for each of two shops (two entries). */
static char *two_shops_payload(const char *pnid1, const char *wamid1, const char *pnid2,
                               const char *wamid2)
{
	char *one = text_payload(pnid1, wamid1, "hi");
	char *two = text_payload(pnid2, wamid2, "hi");
	/* each is {"object":...,"entry":[E]}: keep the first's head, join Es */
	char *e1 = strstr(one, "\"entry\":[") + strlen("\"entry\":[");
	char *e2 = strstr(two, "\"entry\":[") + strlen("\"entry\":[");
	e1[strlen(e1) - 2] = '\0'; /* drop "]}" */
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "{\"object\":\"whatsapp_business_account\",\"entry\":[%s,%s", e1, e2);
	free(one);
	free(two);
	return buf_detach(&b);
}

#define REFUSE_INBOX_SQLITE                                                                        \
	"CREATE TRIGGER no_inbox BEFORE INSERT ON inbox WHEN NEW.tenant_id = %lld"                 \
	" BEGIN SELECT RAISE(ABORT, 'inbox refused'); END"
#define REFUSE_INBOX_PG                                                                            \
	"CREATE FUNCTION no_inbox() RETURNS trigger LANGUAGE plpgsql AS"                           \
	" $$ BEGIN RAISE EXCEPTION 'inbox refused'; END $$;"                                       \
	" CREATE TRIGGER no_inbox BEFORE INSERT ON inbox FOR EACH ROW"                             \
	" WHEN (NEW.tenant_id = %lld) EXECUTE FUNCTION no_inbox()"
#define ALLOW_INBOX                                                                                \
	(test_pg_base() ? "DROP TRIGGER no_inbox ON inbox; DROP FUNCTION no_inbox()"               \
	                : "DROP TRIGGER no_inbox")

/*
 * Two committer lanes: a webhook with messages for shops of both goes as
 * one part a lane, each committed (and run) by its lane, and is answered
 * once, 200 when both are stored. When one part cannot be stored the
 * answer is 503, the other part stays stored, and the redelivery stores
 * the rest (the stored one counted a duplicate).
 */
static void test_request_split_over_lanes(void **state)
{
	struct fx *f = *state;
	char pnid[32], sql[512];
	assert_int_equal(ingest__lanes(f->ig), 2);
	int64_t other = other_lane_shop(f, pnid, sizeof(pnid));
	struct reply r;
	char *body = two_shops_payload(PNID, "wamid.HOME1", pnid, "wamid.AWAY1");
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	free(body);
	assert_int_equal(metric(&f->app.metrics.commits), 2); /* one a lane */
	assert_int_equal(metric(&f->app.metrics.inline_processed), 2);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM inbox WHERE tenant_id = %lld",
	         (long long)other);
	assert_int_equal(sql_int(f, sql), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 2);

	snprintf(sql, sizeof(sql), test_pg_base() ? REFUSE_INBOX_PG : REFUSE_INBOX_SQLITE,
	         (long long)other);
	assert_int_equal(sql_exec(f, sql), 0);
	body = two_shops_payload(PNID, "wamid.HOME2", pnid, "wamid.AWAY2");
	assert_int_equal(post(f, body, SECRET, &r), 503);
	reply_release(&r);
	assert_int_equal(entry_state(f, "wamid.HOME2"), INBOX_DONE);
	assert_int_equal(entry_state(f, "wamid.AWAY2"), -1);
	assert_int_equal(sql_exec(f, ALLOW_INBOX), 0);
	assert_int_equal(post(f, body, SECRET, &r), 200);
	reply_release(&r);
	free(body);
	assert_int_equal(entry_state(f, "wamid.AWAY2"), INBOX_DONE);
	assert_int_equal(metric(&f->app.metrics.inbox_duplicate), 1);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 4);
}

static void test_fast_path_last_attempt_set_aside(void **state)
{
	struct fx *f = *state;
	f->app.cfg.process_attempts = 1;
	assert_int_equal(sql_exec(f, REFUSE_REPLIES), 0);
	post_ok(f, "wamid.LAST", "hi");
	/* set aside although its apology could not be queued either */
	assert_int_equal(entry_state(f, "wamid.LAST"), INBOX_FAILED);
	assert_int_equal(sql_int(f, "SELECT count(*) FROM outbox"), 0);
	assert_int_equal(metric(&f->app.metrics.messages_failed), 1);
	assert_int_equal(metric(&f->app.metrics.inline_processed), 1);
	assert_int_equal(atomic_load(&f->app.metrics.inbox_depth), 0);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_verify_handshake),
	        T(test_verify_wrong_token_403),
	        T(test_bad_signature_401_nothing_stored),
	        T(test_not_webhook_400),
	        T(test_too_many_entries_413),
	        T(test_message_stored_and_workers_woken),
	        T(test_sample_payloads_stored),
	        T(test_status_applied_in_commit),
	        T(test_unknown_tenant_skipped_200_no_commit),
	        T(test_negative_cache_expires),
	        T(test_group_commit_under_concurrency),
	        cmocka_unit_test_setup_teardown(test_commit_window_gathers_requests, setup_window,
	                                        teardown),
	        T(test_store_locked_503_then_recovers),
	        T(test_stop_finishes_commit_fails_queued),
	        T(test_start_without_secret_err_inval),
	        cmocka_unit_test_setup_teardown(test_fast_path_processes_in_commit, setup_fast,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_fast_path_off_leaves_messages_to_workers,
	                                        setup_fast, teardown),
	        cmocka_unit_test_setup_teardown(test_fast_path_waits_behind_pending_entry,
	                                        setup_fast, teardown),
	        cmocka_unit_test_setup_teardown(test_fast_path_group_over_limit_left_pending,
	                                        setup_fast, teardown),
	        cmocka_unit_test_setup_teardown(test_runner_replies_one_by_one_after_flush_failed,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_runner_again_carefully_after_entry_failed,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_split_over_lanes, setup_lanes,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_runner_rereads_a_shop_its_message_changed,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_fast_path_failure_keeps_message, setup_fast,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_fast_path_last_attempt_set_aside, setup_fast,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_fast_path_written_done_reopened_behind_failure,
	                                        setup_fast, teardown),
	};
#undef T
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
