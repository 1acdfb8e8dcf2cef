/*
 * mock_bsp_status.c - the mock BSP's delivery statuses: for every message
 * it accepts, a signed Cloud API "delivered" status webhook to munim.
 *
 * Design
 *   Request threads append to a bounded ring (MOCK_STATUS_QUEUE) under a
 *   mutex and, when the poster may be asleep, wake it with
 *   curl_multi_wakeup. The poster thread takes up to MOCK_STATUS_BATCH
 *   statuses per POST (one entry per phone_number_id, as Meta groups them),
 *   signs the exact body with the app secret (X-Hub-Signature-256) and
 *   keeps up to MOCK_STATUS_POSTS POSTs in flight on one curl multi handle
 *   with keep-alive. Any answer but 200 (or none) is retried after
 *   100 ms · 2^attempt (at most 2 s), MOCK_STATUS_ATTEMPTS times in all
 *   (about 20 s, so a webhook receiver that restarts gets its statuses, as
 *   Meta keeps retrying); then the batch is counted failed and logged.
 *
 *   Nothing here can slow the request path: a full ring drops the status
 *   (counted) instead of waiting.
 *
 * Threading: the ring, `wake_pending`, `stop` and the counters are guarded
 * by mu; the batches and the curl handles belong to the poster thread.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "ingest/sig.h"
#include "tools/tools_internal.h"

#define MOCK_STATUS_QUEUE        65536
#define MOCK_STATUS_BATCH        100
#define MOCK_STATUS_POSTS        4
#define MOCK_STATUS_ATTEMPTS     14
#define MOCK_STATUS_RETRY_MS     100
#define MOCK_STATUS_RETRY_MAX_MS 2000
#define MOCK_STATUS_TIMEOUT_MS   10000
/* How long mock_status_free keeps trying to send what is queued. */
#define MOCK_STATUS_FLUSH_MS 3000
#define MOCK_STATUS_POLL_MS  100

struct status_item {
	char wamid[64];
	char phone[40];
	char recipient[40];
	char callback[MOCK_MAX_CALLBACK + 1];
	int64_t ts_s;
};

enum batch_state { BATCH_FREE = 0, BATCH_FLIGHT = 1, BATCH_WAIT = 2 };

struct batch {
	enum batch_state state;
	CURL *easy;
	struct curl_slist *headers;
	struct buf body;
	int count;
	int attempts;
	int64_t retry_at_us;
	char err[CURL_ERROR_SIZE];
};

struct mock_status {
	char *url;
	char *secret;
	pthread_t thread;
	CURLM *multi;
	struct batch batches[MOCK_STATUS_POSTS];

	pthread_mutex_t mu;
	struct status_item *ring; /* MOCK_STATUS_QUEUE items */
	size_t head, len;
	int wake_pending; /* a wake-up is on its way or the poster is awake */
	int stop;
	struct mock_status_counts c;
};

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

void mock_status_enqueue(struct mock_status *st, const char *wamid, const char *phone_number_id,
                         const char *recipient_id, const char *callback)
{
	int wake = 0;
	pthread_mutex_lock(&st->mu);
	if (st->len == MOCK_STATUS_QUEUE || st->stop) {
		st->c.dropped++;
	} else {
		struct status_item *it = &st->ring[(st->head + st->len) % MOCK_STATUS_QUEUE];
		snprintf(it->wamid, sizeof(it->wamid), "%s", wamid);
		snprintf(it->phone, sizeof(it->phone), "%s", phone_number_id);
		snprintf(it->recipient, sizeof(it->recipient), "%s", recipient_id);
		snprintf(it->callback, sizeof(it->callback), "%s", callback ? callback : "");
		it->ts_s = clock_wall_ms() / 1000;
		st->len++;
		st->c.queued++;
		wake = !st->wake_pending;
		st->wake_pending = 1;
	}
	pthread_mutex_unlock(&st->mu);
	if (wake)
		curl_multi_wakeup(st->multi);
}

void mock_status_counts(struct mock_status *st, struct mock_status_counts *out)
{
	pthread_mutex_lock(&st->mu);
	*out = st->c;
	pthread_mutex_unlock(&st->mu);
}

/* Writes the webhook for items (one entry per phone_number_id) into b. */
static void build_body(struct buf *b, struct status_item *items, int n)
{
	char done[MOCK_STATUS_BATCH] = {0};
	buf_reset(b);
	buf_puts(b, "{\"object\":\"whatsapp_business_account\",\"entry\":[");
	int entries = 0;
	for (int i = 0; i < n; i++) {
		if (done[i])
			continue;
		buf_puts(b, entries++ ? ",{\"id\":\"0\",\"changes\":[{\"field\":\"messages\","
		                      : "{\"id\":\"0\",\"changes\":[{\"field\":\"messages\",");
		buf_puts(b, "\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{"
		            "\"display_phone_number\":");
		buf_json_str(b, items[i].phone);
		buf_puts(b, ",\"phone_number_id\":");
		buf_json_str(b, items[i].phone);
		buf_puts(b, "},\"statuses\":[");
		int k = 0;
		for (int j = i; j < n; j++) {
			if (done[j] || strcmp(items[j].phone, items[i].phone) != 0)
				continue;
			done[j] = 1;
			buf_puts(b, k++ ? ",{\"id\":" : "{\"id\":");
			buf_json_str(b, items[j].wamid);
			buf_printf(b,
			           ",\"status\":\"delivered\",\"timestamp\":\"%lld\","
			           "\"recipient_id\":",
			           (long long)items[j].ts_s);
			buf_json_str(b, items[j].recipient);
			if (items[j].callback[0]) {
				buf_puts(b, ",\"biz_opaque_callback_data\":");
				buf_json_str(b, items[j].callback);
			}
			buf_putc(b, '}');
		}
		buf_puts(b, "]}}]}");
	}
	buf_puts(b, "]}");
}

static int batch_post(struct mock_status *st, struct batch *bt)
{
	char sig[SIG_HEADER_LEN + 1];
	char hdr[SIG_HEADER_LEN + 40];
	sig_sign(st->secret, bt->body.data, bt->body.len, sig);
	snprintf(hdr, sizeof(hdr), "X-Hub-Signature-256: %s", sig);
	curl_slist_free_all(bt->headers);
	bt->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (bt->headers)
		bt->headers = curl_slist_append(bt->headers, hdr);
	if (!bt->headers)
		return ERR_NOMEM;
	bt->err[0] = '\0';
	curl_easy_setopt(bt->easy, CURLOPT_HTTPHEADER, bt->headers);
	curl_easy_setopt(bt->easy, CURLOPT_POSTFIELDS, bt->body.data);
	curl_easy_setopt(bt->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bt->body.len);
	if (curl_multi_add_handle(st->multi, bt->easy) != CURLM_OK)
		return ERR_IO;
	bt->state = BATCH_FLIGHT;
	pthread_mutex_lock(&st->mu);
	st->c.posts++;
	pthread_mutex_unlock(&st->mu);
	return 0;
}

/* A POST failed: wait and try again, or give the batch up. */
static void batch_failed(struct mock_status *st, struct batch *bt, const char *why)
{
	bt->attempts++;
	if (bt->attempts < MOCK_STATUS_ATTEMPTS) {
		bt->state = BATCH_WAIT;
		int64_t ms = (int64_t)MOCK_STATUS_RETRY_MS << bt->attempts;
		bt->retry_at_us =
		        clock_mono_us() +
		        (ms < MOCK_STATUS_RETRY_MAX_MS ? ms : MOCK_STATUS_RETRY_MAX_MS) * 1000;
		return;
	}
	log_warn("mock_bsp.status_failed",
	         "gave up posting %d statuses to %s after %d attempts: %s", bt->count, st->url,
	         bt->attempts, why);
	pthread_mutex_lock(&st->mu);
	st->c.failed += (uint64_t)bt->count;
	pthread_mutex_unlock(&st->mu);
	bt->state = BATCH_FREE;
}

/* Fills free batches from the ring and starts them; retries waiting ones. */
static void start_batches(struct mock_status *st, int64_t now_us)
{
	struct status_item items[MOCK_STATUS_BATCH];
	for (int b = 0; b < MOCK_STATUS_POSTS; b++) {
		struct batch *bt = &st->batches[b];
		if (bt->state == BATCH_WAIT && now_us >= bt->retry_at_us) {
			if (batch_post(st, bt) != 0)
				batch_failed(st, bt, "could not start the request");
			continue;
		}
		if (bt->state != BATCH_FREE)
			continue;
		int n = 0;
		pthread_mutex_lock(&st->mu);
		while (n < MOCK_STATUS_BATCH && st->len > 0) {
			items[n++] = st->ring[st->head];
			st->head = (st->head + 1) % MOCK_STATUS_QUEUE;
			st->len--;
		}
		pthread_mutex_unlock(&st->mu);
		if (n == 0)
			break;
		build_body(&bt->body, items, n);
		bt->count = n;
		bt->attempts = 0;
		if (batch_post(st, bt) != 0)
			batch_failed(st, bt, "could not start the request");
	}
}

static void reap(struct mock_status *st)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(st->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct batch *bt = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&bt);
		CURLcode res = m->data.result;
		curl_multi_remove_handle(st->multi, m->easy_handle);
		long code = 0;
		if (res == CURLE_OK)
			curl_easy_getinfo(bt->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code == 200) {
			pthread_mutex_lock(&st->mu);
			st->c.sent += (uint64_t)bt->count;
			pthread_mutex_unlock(&st->mu);
			bt->state = BATCH_FREE;
			continue;
		}
		char why[CURL_ERROR_SIZE + 32];
		if (res != CURLE_OK)
			snprintf(why, sizeof(why), "%s",
			         bt->err[0] ? bt->err : curl_easy_strerror(res));
		else
			snprintf(why, sizeof(why), "answered %ld", code);
		batch_failed(st, bt, why);
	}
}

static int busy(const struct mock_status *st)
{
	for (int b = 0; b < MOCK_STATUS_POSTS; b++)
		if (st->batches[b].state != BATCH_FREE)
			return 1;
	return 0;
}

static void *status_main(void *arg)
{
	struct mock_status *st = arg;
	int64_t flush_deadline = 0;
	for (;;) {
		int64_t now = clock_mono_us();
		pthread_mutex_lock(&st->mu);
		int stop = st->stop;
		size_t queued = st->len;
		pthread_mutex_unlock(&st->mu);
		if (stop) {
			if (!flush_deadline)
				flush_deadline = now + (int64_t)MOCK_STATUS_FLUSH_MS * 1000;
			if ((queued == 0 && !busy(st)) || now >= flush_deadline)
				break;
		}
		start_batches(st, now);
		int running = 0;
		curl_multi_perform(st->multi, &running);
		reap(st);
		int timeout = MOCK_STATUS_POLL_MS;
		for (int b = 0; b < MOCK_STATUS_POSTS; b++) {
			const struct batch *bt = &st->batches[b];
			if (bt->state == BATCH_WAIT) {
				int64_t ms = (bt->retry_at_us - now) / 1000;
				if (ms < timeout)
					timeout = ms < 0 ? 0 : (int)ms;
			}
		}
		/* asleep only with an empty ring: then producers must wake us */
		pthread_mutex_lock(&st->mu);
		if (st->len == 0)
			st->wake_pending = 0;
		else if (!busy(st))
			timeout = 0;
		pthread_mutex_unlock(&st->mu);
		curl_multi_poll(st->multi, NULL, 0, timeout, NULL);
	}
	/* whatever is still queued or in flight is dropped */
	pthread_mutex_lock(&st->mu);
	st->c.dropped += st->len;
	st->len = 0;
	for (int b = 0; b < MOCK_STATUS_POSTS; b++)
		if (st->batches[b].state != BATCH_FREE)
			st->c.dropped += (uint64_t)st->batches[b].count;
	pthread_mutex_unlock(&st->mu);
	for (int b = 0; b < MOCK_STATUS_POSTS; b++)
		if (st->batches[b].state == BATCH_FLIGHT)
			curl_multi_remove_handle(st->multi, st->batches[b].easy);
	return NULL;
}

static void status_release(struct mock_status *st)
{
	for (int b = 0; b < MOCK_STATUS_POSTS; b++) {
		struct batch *bt = &st->batches[b];
		if (bt->easy)
			curl_easy_cleanup(bt->easy);
		curl_slist_free_all(bt->headers);
		buf_release(&bt->body);
	}
	if (st->multi)
		curl_multi_cleanup(st->multi);
	pthread_mutex_destroy(&st->mu);
	free(st->ring);
	free(st->url);
	free(st->secret);
	free(st);
	curl_global_cleanup();
}

int mock_status_new(const char *url, const char *secret, struct mock_status **out)
{
	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return ERR_NOMEM;
	struct mock_status *st = xcalloc(1, sizeof(*st));
	pthread_mutex_init(&st->mu, NULL);
	st->url = xstrdup(url);
	st->secret = xstrdup(secret);
	st->ring = xcalloc(MOCK_STATUS_QUEUE, sizeof(*st->ring));
	st->multi = curl_multi_init();
	if (!st->multi)
		goto fail;
	for (int b = 0; b < MOCK_STATUS_POSTS; b++) {
		struct batch *bt = &st->batches[b];
		buf_init(&bt->body);
		bt->easy = curl_easy_init();
		if (!bt->easy)
			goto fail;
		curl_easy_setopt(bt->easy, CURLOPT_URL, st->url);
		curl_easy_setopt(bt->easy, CURLOPT_PRIVATE, bt);
		curl_easy_setopt(bt->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(bt->easy, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(bt->easy, CURLOPT_ERRORBUFFER, bt->err);
		curl_easy_setopt(bt->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(bt->easy, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(bt->easy, CURLOPT_TIMEOUT_MS, (long)MOCK_STATUS_TIMEOUT_MS);
	}
	if (pthread_create(&st->thread, NULL, status_main, st) != 0)
		goto fail;
	*out = st;
	return 0;
fail:
	status_release(st);
	return ERR_NOMEM;
}

void mock_status_free(struct mock_status *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->mu);
	st->stop = 1;
	pthread_mutex_unlock(&st->mu);
	curl_multi_wakeup(st->multi);
	pthread_join(st->thread, NULL);
	struct mock_status_counts c = st->c;
	if (c.dropped || c.failed)
		log_warn("mock_bsp.statuses_lost", "%llu statuses dropped and %llu failed",
		         (unsigned long long)c.dropped, (unsigned long long)c.failed);
	status_release(st);
}
