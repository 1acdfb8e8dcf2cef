/*
 * mock_bsp_status.c - the mock BSP's reports back to munim: for every
 * WhatsApp message it accepts, a signed Cloud API status webhook
 * ("delivered", or "failed" under the failed-rate fault), and for every
 * SMS it accepts, an MSG91-style delivery report. One poster sends one
 * kind (enum mock_post_kind); everything but the body and its headers is
 * shared.
 *
 * Design
 *   Request threads append to a bounded ring (MOCK_STATUS_QUEUE) under a
 *   mutex and, when the poster may be asleep, wake it through an eventfd.
 *   The poster thread takes up to MOCK_STATUS_BATCH reports per POST and
 *   writes the body of its kind:
 *     WhatsApp  {"object":"whatsapp_business_account","entry":[...]}, one
 *               entry per phone_number_id as Meta groups them, signed
 *               over the exact bytes with the app secret
 *               (X-Hub-Signature-256);
 *     SMS       [{"requestId","number","status","desc","date"
 *               [,"failedReason"]}, ...], unsigned, the date in IST
 *               ("YYYY-MM-DD HH:MM:SS", as MSG91 writes it);
 *   It keeps up to MOCK_STATUS_POSTS POSTs in flight on a tools_http
 *   client (tools_http.c: keep-alive connections, one send() a POST) in
 *   its own epoll set with the eventfd. Any answer but 200 (or none) is
 *   retried after 100 ms · 2^attempt (at most 2 s), MOCK_STATUS_ATTEMPTS
 *   times in all (about 20 s, so a receiver that restarts gets its
 *   reports, as Meta and MSG91 keep retrying); then the batch is counted
 *   failed and logged. A failed report is never fatal to the mock.
 *
 *   Nothing here can slow the request path: a full ring drops the report
 *   (counted) instead of waiting.
 *
 * Threading: the ring, `wake_pending`, `stop` and the counters are guarded
 * by mu; the batches and the HTTP client belong to the poster thread.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

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

/* India Standard Time, the zone MSG91's report dates are written in (no DST). */
#define MOCK_IST_OFFSET_S (5 * 3600 + 30 * 60)

struct status_item {
	char id[64]; /* the wamid, or the SMS request id */
	char phone[40];
	char recipient[40];
	char callback[MOCK_MAX_CALLBACK + 1];
	int64_t ts_s;
	int failed;
};

enum batch_state { BATCH_FREE = 0, BATCH_FLIGHT = 1, BATCH_WAIT = 2 };

struct batch {
	enum batch_state state;
	struct buf body;
	char headers[TOOLS_SIG_HEADER_CAP + 40]; /* Content-Type and the signature */
	int count;
	int attempts;
	int64_t retry_at_us;
};

struct mock_status {
	enum mock_post_kind kind;
	const char *what; /* "statuses" or "delivery reports", for messages */
	char *url;
	char *secret; /* NULL: unsigned */
	struct tools_url u;
	pthread_t thread;
	int epfd, evfd;
	struct tools_http *http;
	struct batch batches[MOCK_STATUS_POSTS];

	pthread_mutex_t mu;
	struct status_item *ring; /* MOCK_STATUS_QUEUE items */
	size_t head, len;
	int wake_pending; /* a wake-up is on its way or the poster is awake */
	int stop;
	struct mock_status_counts c;
};

/* Copies s into out (cap bytes), cut short if need be, as snprintf "%s" does. */
static void copy_str(char *out, size_t cap, const char *s)
{
	size_t n = strnlen(s, cap - 1);
	memcpy(out, s, n);
	out[n] = '\0';
}

/* Wakes the poster thread out of epoll_wait. */
static void wake_poster(struct mock_status *st)
{
	uint64_t one = 1;
	/* EAGAIN: the counter is full, so the poster is being woken anyway */
	if (write(st->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("mock_bsp.wake_failed", "could not wake the status sender: %s",
		         strerror(errno));
}

void mock_status_enqueue(struct mock_status *st, const struct mock_report *rp)
{
	int wake = 0;
	pthread_mutex_lock(&st->mu);
	if (st->len == MOCK_STATUS_QUEUE || st->stop) {
		st->c.dropped++;
	} else {
		struct status_item *it = &st->ring[(st->head + st->len) % MOCK_STATUS_QUEUE];
		copy_str(it->id, sizeof(it->id), rp->id);
		copy_str(it->phone, sizeof(it->phone),
		         rp->phone_number_id ? rp->phone_number_id : "");
		copy_str(it->recipient, sizeof(it->recipient), rp->recipient);
		copy_str(it->callback, sizeof(it->callback), rp->callback ? rp->callback : "");
		it->ts_s = clock_wall_ms() / 1000;
		it->failed = rp->failed != 0;
		st->len++;
		st->c.queued++;
		wake = !st->wake_pending;
		st->wake_pending = 1;
	}
	pthread_mutex_unlock(&st->mu);
	if (wake)
		wake_poster(st);
}

void mock_status_counts(struct mock_status *st, struct mock_status_counts *out)
{
	pthread_mutex_lock(&st->mu);
	*out = st->c;
	pthread_mutex_unlock(&st->mu);
}

/* Appends s as a JSON string: as is when nothing in it needs escaping
 * (ids, the usual case), else through buf_json_str. */
static void json_str(struct buf *b, const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x20 || s[n] == '"' || s[n] == '\\' ||
		    (unsigned char)s[n] >= 0x7f)
			break;
	if (s[n]) {
		buf_json_str(b, s);
		return;
	}
	buf_putc(b, '"');
	buf_append(b, s, n);
	buf_putc(b, '"');
}

/* Writes the webhook for items (one entry per phone_number_id) into b. */
static void build_wa_body(struct buf *b, struct status_item *items, int n)
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
		json_str(b, items[i].phone);
		buf_puts(b, ",\"phone_number_id\":");
		json_str(b, items[i].phone);
		buf_puts(b, "},\"statuses\":[");
		int k = 0;
		for (int j = i; j < n; j++) {
			if (done[j] || strcmp(items[j].phone, items[i].phone) != 0)
				continue;
			done[j] = 1;
			buf_puts(b, k++ ? ",{\"id\":" : "{\"id\":");
			json_str(b, items[j].id);
			buf_puts(b, items[j].failed ? ",\"status\":\"failed\",\"timestamp\":\""
			                            : ",\"status\":\"delivered\",\"timestamp\":\"");
			buf_put_u64(b, items[j].ts_s > 0 ? (uint64_t)items[j].ts_s : 0);
			buf_puts(b, "\",\"recipient_id\":");
			json_str(b, items[j].recipient);
			if (items[j].callback[0]) {
				buf_puts(b, ",\"biz_opaque_callback_data\":");
				json_str(b, items[j].callback);
			}
			if (items[j].failed)
				buf_puts(b, ",\"errors\":[{\"code\":131026,\"title\":\"Message "
				            "undeliverable\",\"message\":\"Message undeliverable\","
				            "\"error_data\":{\"details\":\"Message "
				            "Undeliverable.\"}}]");
			buf_putc(b, '}');
		}
		buf_puts(b, "]}}]}");
	}
	buf_puts(b, "]}");
}

/* Writes the MSG91-style delivery reports for items, a JSON array, into b. */
static void build_sms_body(struct buf *b, struct status_item *items, int n)
{
	buf_reset(b);
	buf_putc(b, '[');
	for (int i = 0; i < n; i++) {
		time_t t = (time_t)(items[i].ts_s + MOCK_IST_OFFSET_S);
		struct tm tm;
		char date[32];
		if (!gmtime_r(&t, &tm) ||
		    strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S", &tm) == 0)
			snprintf(date, sizeof(date), "1970-01-01 05:30:00");
		buf_puts(b, i ? ",{\"requestId\":" : "{\"requestId\":");
		json_str(b, items[i].id);
		buf_puts(b, ",\"number\":");
		json_str(b, items[i].recipient);
		buf_puts(b, items[i].failed ? ",\"status\":\"2\",\"desc\":\"FAILED\","
		                              "\"failedReason\":\"Number out of service\""
		                            : ",\"status\":\"1\",\"desc\":\"DELIVERED\"");
		buf_puts(b, ",\"date\":");
		json_str(b, date);
		buf_putc(b, '}');
	}
	buf_putc(b, ']');
}

static void batch_failed(struct mock_status *st, struct batch *bt, const char *why);

static int batch_post(struct mock_status *st, struct batch *bt)
{
	struct tools_http_req rq = {"POST",
	                            st->u.path[0] ? st->u.path : "/",
	                            bt->headers,
	                            bt->body.data,
	                            bt->body.len,
	                            MOCK_STATUS_TIMEOUT_MS,
	                            (uint64_t)(bt - st->batches)};
	bt->state = BATCH_FLIGHT;
	pthread_mutex_lock(&st->mu);
	st->c.posts++;
	pthread_mutex_unlock(&st->mu);
	/* a free connection is there for every batch; done may run right away */
	if (tools_http_start(st->http, &rq) != 0) {
		bt->state = BATCH_FREE;
		return ERR_FULL;
	}
	return 0;
}

/* Writes the batch's header lines: the type and, with a secret, the body's signature. */
static void batch_headers(struct mock_status *st, struct batch *bt)
{
	if (!st->secret) {
		snprintf(bt->headers, sizeof(bt->headers), "Content-Type: application/json\r\n");
		return;
	}
	char sig[SIG_HEADER_LEN + 1];
	sig_sign(st->secret, bt->body.data, bt->body.len, sig);
	snprintf(bt->headers, sizeof(bt->headers),
	         "Content-Type: application/json\r\nX-Hub-Signature-256: %s\r\n", sig);
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
	log_warn(st->kind == MOCK_POST_SMS_DLR ? "mock_bsp.sms_dlr_failed"
	                                       : "mock_bsp.status_failed",
	         "gave up posting %d %s to %s after %d attempts: %s", bt->count, st->what, st->url,
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
		if (st->kind == MOCK_POST_SMS_DLR)
			build_sms_body(&bt->body, items, n);
		else
			build_wa_body(&bt->body, items, n);
		batch_headers(st, bt);
		bt->count = n;
		bt->attempts = 0;
		if (batch_post(st, bt) != 0)
			batch_failed(st, bt, "could not start the request");
	}
}

/* tools_http's callback: one POST answered, or failed. */
static void on_done(void *ud, const struct tools_http_result *res)
{
	struct mock_status *st = ud;
	struct batch *bt = &st->batches[res->tag];
	if (res->status == 200) {
		pthread_mutex_lock(&st->mu);
		st->c.sent += (uint64_t)bt->count;
		pthread_mutex_unlock(&st->mu);
		bt->state = BATCH_FREE;
		return;
	}
	char why[TOOLS_HTTP_ERR_CAP];
	if (res->err)
		snprintf(why, sizeof(why), "%s", res->why);
	else
		snprintf(why, sizeof(why), "answered %d", res->status);
	batch_failed(st, bt, why);
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
	struct epoll_event evs[MOCK_STATUS_POSTS + 1];
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
		tools_http_expire(st->http, now);
		int64_t wake = now + (int64_t)MOCK_STATUS_POLL_MS * 1000;
		for (int b = 0; b < MOCK_STATUS_POSTS; b++) {
			const struct batch *bt = &st->batches[b];
			if (bt->state == BATCH_WAIT && bt->retry_at_us < wake)
				wake = bt->retry_at_us;
		}
		int64_t due = tools_http_next_due(st->http);
		if (due >= 0 && due < wake)
			wake = due;
		int timeout = wake <= now ? 0 : (int)((wake - now + 999) / 1000);
		/* asleep only with an empty ring: then producers must wake us */
		pthread_mutex_lock(&st->mu);
		if (st->len == 0)
			st->wake_pending = 0;
		else if (!busy(st))
			timeout = 0;
		pthread_mutex_unlock(&st->mu);
		int n = epoll_wait(st->epfd, evs, MOCK_STATUS_POSTS + 1, timeout);
		for (int k = 0; k < n; k++) {
			if (tools_http_handle(st->http, &evs[k]))
				continue;
			uint64_t v;
			if (read(st->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_debug("mock_bsp.wake_read", "could not read the wake-up: %s",
				          strerror(errno));
		}
	}
	/* whatever is still queued or in flight is dropped */
	pthread_mutex_lock(&st->mu);
	st->c.dropped += st->len;
	st->len = 0;
	for (int b = 0; b < MOCK_STATUS_POSTS; b++)
		if (st->batches[b].state != BATCH_FREE)
			st->c.dropped += (uint64_t)st->batches[b].count;
	pthread_mutex_unlock(&st->mu);
	return NULL;
}

static void status_release(struct mock_status *st)
{
	tools_http_free(st->http);
	for (int b = 0; b < MOCK_STATUS_POSTS; b++)
		buf_release(&st->batches[b].body);
	if (st->evfd >= 0)
		close(st->evfd);
	if (st->epfd >= 0)
		close(st->epfd);
	pthread_mutex_destroy(&st->mu);
	free(st->ring);
	free(st->url);
	free(st->secret);
	free(st);
}

int mock_status_new(enum mock_post_kind kind, const char *url, const char *secret,
                    struct mock_status **out)
{
	*out = NULL;
	struct mock_status *st = xcalloc(1, sizeof(*st));
	char why[TOOLS_HTTP_ERR_CAP];
	int rc = ERR_IO;
	pthread_mutex_init(&st->mu, NULL);
	st->kind = kind;
	st->what = kind == MOCK_POST_SMS_DLR ? "delivery reports" : "statuses";
	st->epfd = st->evfd = -1;
	st->url = xstrdup(url);
	st->secret = kind == MOCK_POST_WA_STATUS && secret ? xstrdup(secret) : NULL;
	for (int b = 0; b < MOCK_STATUS_POSTS; b++)
		buf_init(&st->batches[b].body);
	if (tools_url_parse(url, &st->u, why) != 0) {
		rc = ERR_INVAL;
		goto fail;
	}
	st->ring = xcalloc(MOCK_STATUS_QUEUE, sizeof(*st->ring));
	st->epfd = epoll_create1(EPOLL_CLOEXEC);
	st->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &st->evfd};
	if (st->epfd < 0 || st->evfd < 0 || epoll_ctl(st->epfd, EPOLL_CTL_ADD, st->evfd, &ev) != 0)
		goto fail;
	struct tools_http_opts o = {st->epfd, MOCK_STATUS_POSTS, 1 << 20, on_done, st};
	if (tools_http_new(&st->u, &o, &st->http) != 0)
		goto fail;
	if (pthread_create(&st->thread, NULL, status_main, st) != 0)
		goto fail;
	*out = st;
	return 0;
fail:
	status_release(st);
	return rc;
}

void mock_status_free(struct mock_status *st)
{
	if (!st)
		return;
	pthread_mutex_lock(&st->mu);
	st->stop = 1;
	pthread_mutex_unlock(&st->mu);
	wake_poster(st);
	pthread_join(st->thread, NULL);
	struct mock_status_counts c = st->c;
	if (c.dropped || c.failed)
		log_warn(st->kind == MOCK_POST_SMS_DLR ? "mock_bsp.sms_dlrs_lost"
		                                       : "mock_bsp.statuses_lost",
		         "%llu %s dropped and %llu failed", (unsigned long long)c.dropped, st->what,
		         (unsigned long long)c.failed);
	status_release(st);
}
