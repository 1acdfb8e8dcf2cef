/*
 * loadgen_send.c - the open-loop send phase of `munim loadgen`.
 *
 * Open loop: message i is due at start + loadgen_sched_at_us(i) and is
 * started then, whatever became of the messages before it. Its webhook
 * latency runs from that due time, not from when the request went out,
 * so a stall of munim (or of this loop) shows in the figures instead of
 * silently lowering the rate: no coordinated omission.
 *
 * Design
 *   One thread, one epoll set, one tools_http client (tools_http.c) with
 *   up to plan->connections keep-alive connections, each carrying one
 *   request at a time. The loop:
 *     1. start every due message while a connection is free: the webhook
 *        comes from a template whose strings were escaped once
 *        (loadgen_body_build), is signed, and goes out in one send(); a
 *        due message that finds every connection busy simply waits:
 *        messages go out in order, so the waiting ones are [next, first
 *        not yet due), and their latency keeps counting from their due
 *        time;
 *     2. fail the requests past --timeout-ms;
 *     3. sleep in epoll_pwait2 until a socket is ready, the next message
 *        is due or the next request times out. Its timeout is in
 *        nanoseconds (epoll_wait's milliseconds are too coarse at
 *        thousands of messages a second) and the thread's timer slack is
 *        1 us, so wake-ups are on time without a timer file descriptor.
 *        Where the kernel lacks epoll_pwait2 a timerfd (absolute,
 *        CLOCK_MONOTONIC, the clock of clock_mono_us) in the same set
 *        does the job.
 *   Answers are taken as they are read (on_done), so their times are
 *   never taken after later sends.
 *   How late each start was (the lag) is measured, so a loop that cannot
 *   keep up is reported rather than hidden. A message waited for a
 *   connection when all were busy at some moment between its due time and
 *   its start; as messages start in order, as soon as they are due and a
 *   connection is free, that is: due <= the end of the last all-busy
 *   spell (full_until). The lag of the others is the loop's own lateness.
 *
 * Threading: everything here belongs to the calling thread; it reads the
 * plan, which nobody writes while it runs.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

/* Most epoll events taken per wake-up. */
#define SEND_EVENTS 256
/* The longest sleep when nothing is due (a bound, not a tick). */
#define SEND_MAX_SLEEP_US 1000000

/* ---- the webhook template ---------------------------------------------------- */

/* A string as jansson writes it (quoted, non-ASCII as \u sequences); NULL if not UTF-8. */
static char *json_quoted(const char *s)
{
	json_t *v = json_string(s);
	if (!v)
		return NULL;
	char *q = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(v);
	return q;
}

int loadgen_body_init(struct loadgen_body *b, const char *name, const char *const *texts,
                      int ntexts)
{
	memset(b, 0, sizeof(*b));
	b->texts = texts;
	b->ntexts = ntexts;
	b->quoted = xcalloc((size_t)ntexts, sizeof(*b->quoted));
	b->name = json_quoted(name ? name : TOOLS_DEFAULT_NAME);
	if (!b->name)
		return ERR_INVAL;
	for (int k = 0; k < ntexts; k++) {
		b->quoted[k] = json_quoted(texts[k]);
		if (!b->quoted[k])
			return ERR_INVAL;
	}
	return 0;
}

void loadgen_body_release(struct loadgen_body *b)
{
	for (int k = 0; b->quoted && k < b->ntexts; k++)
		free(b->quoted[k]);
	free(b->quoted);
	free(b->name);
	memset(b, 0, sizeof(*b));
}

static void put(struct buf *out, const char *s)
{
	buf_append(out, s, strlen(s));
}

void loadgen_body_build(const struct loadgen_body *b, struct buf *out, const char *phone,
                        const char *from, const char *wamid, const char *text, int64_t ts_s)
{
	const char *qtext = NULL;
	for (int k = 0; k < b->ntexts && !qtext; k++)
		if (b->texts[k] == text)
			qtext = b->quoted[k];
	char ts[24];
	tools_fmt_u64(ts, ts_s > 0 ? (uint64_t)ts_s : 0, 0);
	buf_reset(out);
	/* jansson's key order: as packed (tools_webhook_build) */
	put(out, "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"0\",\"changes\":"
	         "[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
	         "\"metadata\":{\"display_phone_number\":\"");
	put(out, phone);
	put(out, "\",\"phone_number_id\":\"");
	put(out, phone);
	put(out, "\"},\"contacts\":[{\"profile\":{\"name\":");
	put(out, b->name);
	put(out, "},\"wa_id\":\"");
	put(out, from);
	put(out, "\"}],\"messages\":[{\"from\":\"");
	put(out, from);
	put(out, "\",\"id\":\"");
	put(out, wamid);
	put(out, "\",\"timestamp\":\"");
	put(out, ts);
	put(out, "\",\"type\":\"text\",\"text\":{\"body\":");
	put(out, qtext ? qtext : "\"\"");
	put(out, "}}]}}]}]}");
}

/* ---- the send loop ------------------------------------------------------------- */

struct sender {
	const struct loadgen_plan *p;
	struct loadgen_sent *out;
	struct tools_http *http;
	struct tools_url url;
	struct loadgen_body tmpl;
	struct buf body;
	int inflight, nconns;
	int64_t full_until; /* when a connection last came free after all were busy; 0: never */
	int epfd, tfd;      /* tfd: only where epoll_pwait2 is missing */
};

static void note_error(struct loadgen_sent *out, const char *why)
{
	out->errors++;
	if (!out->first_error[0])
		snprintf(out->first_error, sizeof(out->first_error), "%s", why);
}

/* The due time of message i on the monotonic clock. */
static int64_t due_at(const struct loadgen_plan *plan, uint64_t i, int *step)
{
	return plan->start_mono_us + loadgen_sched_at_us(plan->sched, i, step);
}

/* tools_http's callback: one webhook answered, or failed. */
static void on_done(void *ud, const struct tools_http_result *res)
{
	struct sender *sd = ud;
	struct loadgen_sent *out = sd->out;
	int64_t now = clock_mono_us();
	uint64_t i = res->tag;
	if (sd->inflight == sd->nconns)
		sd->full_until = now;
	sd->inflight--;
	if (res->err) {
		out->status[i] = 0;
		note_error(out, res->why);
		return;
	}
	int code = res->status; /* tools_http answers 100..599 only */
	out->status[i] = (uint16_t)code;
	out->codes[code - LOADGEN_CODE_MIN]++;
	if (code == 200) {
		int step;
		int64_t due = due_at(sd->p, i, &step);
		loadgen_hist_add(&out->webhook, now - due);
		loadgen_hist_add(&out->step_webhook[step], now - due);
	}
}

/* start_msg builds, signs and starts message i on a free connection. */
static void start_msg(struct sender *sd, uint64_t i)
{
	const struct loadgen_plan *p = sd->p;
	uint64_t phone, customer;
	const char *text;
	loadgen_pick(&p->mix, i, &phone, &customer, &text);
	char phone_s[24], from_s[24], wamid[LOADGEN_WAMID_CAP];
	tools_fmt_u64(phone_s, phone, 0);
	tools_fmt_u64(from_s, customer, 0);
	loadgen_wamid(p->tag, i, wamid);
	loadgen_body_build(&sd->tmpl, &sd->body, phone_s, from_s, wamid, text,
	                   clock_wall_ms() / 1000);
	static const char head[] = "Content-Type: application/json\r\nX-Hub-Signature-256: ";
	char headers[sizeof(head) + SIG_HEADER_LEN + 3];
	memcpy(headers, head, sizeof(head) - 1);
	sig_sign(p->secret, sd->body.data, sd->body.len, headers + sizeof(head) - 1);
	memcpy(headers + sizeof(head) - 1 + SIG_HEADER_LEN, "\r\n", 3);
	struct tools_http_req rq = {"POST",       sd->url.path[0] ? sd->url.path : "/",
	                            headers,      sd->body.data,
	                            sd->body.len, p->timeout_ms,
	                            (uint64_t)i};
	sd->inflight++;
	tools_http_start(sd->http, &rq); /* a connection is free: it cannot be refused */
}

/* arm_timer makes tfd readable at due_us (monotonic); due_us 0 disarms it. */
static int arm_timer(int tfd, int64_t due_us)
{
	struct itimerspec its = {0};
	if (due_us > 0) {
		its.it_value.tv_sec = due_us / 1000000;
		its.it_value.tv_nsec = (long)(due_us % 1000000) * 1000;
	}
	return timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/*
 * wait_events sleeps until an event or wake_us (monotonic). Returns what
 * epoll returned; the timerfd's own event (fallback only) is consumed.
 */
static int wait_events(struct sender *sd, struct epoll_event *evs, int64_t wake_us, int64_t now)
{
	if (sd->tfd < 0) {
		int64_t d = wake_us - now;
		struct timespec ts = {(time_t)(d / 1000000), (long)(d % 1000000) * 1000};
		int n = epoll_pwait2(sd->epfd, evs, SEND_EVENTS, &ts, NULL);
		if (n >= 0 || errno != ENOSYS)
			return n;
		sd->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
		struct epoll_event tev = {.events = EPOLLIN, .data.ptr = &sd->tfd};
		if (sd->tfd < 0 || epoll_ctl(sd->epfd, EPOLL_CTL_ADD, sd->tfd, &tev) != 0)
			return -1;
	}
	if (arm_timer(sd->tfd, wake_us) != 0)
		return -1;
	return epoll_wait(sd->epfd, evs, SEND_EVENTS, -1);
}

int loadgen_send(const struct loadgen_plan *plan, struct loadgen_sent *out)
{
	const struct loadgen_sched *sch = plan->sched;
	memset(out, 0, sizeof(*out));
	out->status = xcalloc(sch->total ? sch->total : 1, sizeof(*out->status));
	out->step_webhook = xcalloc((size_t)sch->nsteps, sizeof(*out->step_webhook));
	struct sender sd = {.p = plan, .out = out, .epfd = -1, .tfd = -1};
	buf_init(&sd.body);
	int rc = ERR_IO;
	sd.nconns = (int)plan->connections;
	/* wake-ups on time to the microsecond (the default slack is 50 us) */
	prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	if (tools_url_parse(plan->webhook_url, &sd.url, out->first_error) != 0)
		goto out;
	if (loadgen_body_init(&sd.tmpl, plan->name, plan->mix.texts, plan->mix.ntexts) != 0) {
		snprintf(out->first_error, sizeof(out->first_error),
		         "the name or a text is not UTF-8");
		goto out;
	}
	sd.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sd.epfd < 0) {
		snprintf(out->first_error, sizeof(out->first_error),
		         "could not create an epoll set: %s", strerror(errno));
		goto out;
	}
	struct tools_http_opts o = {sd.epfd, sd.nconns, 1 << 20, on_done, &sd};
	if (tools_http_new(&sd.url, &o, &sd.http) != 0) {
		snprintf(out->first_error, sizeof(out->first_error),
		         "could not create the HTTP client");
		goto out;
	}

	uint64_t next = 0;
	struct epoll_event evs[SEND_EVENTS];
	for (;;) {
		int64_t now = clock_mono_us();
		while (next < sch->total && tools_http_idle(sd.http) > 0) {
			int64_t due = due_at(plan, next, NULL);
			if (due > now)
				break;
			if (due <= sd.full_until)
				out->conn_waits++;
			else
				loadgen_hist_add(&out->loop_lag, now - due);
			loadgen_hist_add(&out->lag, now - due);
			out->last_start_us = now - plan->start_mono_us;
			start_msg(&sd, next);
			next++;
			now = clock_mono_us();
		}
		tools_http_expire(sd.http, now);
		if (next >= sch->total && sd.inflight == 0)
			break; /* all sent and answered */
		int64_t wake = now + SEND_MAX_SLEEP_US;
		if (next < sch->total && tools_http_idle(sd.http) > 0) {
			int64_t due = due_at(plan, next, NULL);
			if (due <= now)
				continue;
			wake = due < wake ? due : wake;
		}
		int64_t hdue = tools_http_next_due(sd.http);
		if (hdue >= 0 && hdue < wake)
			wake = hdue;
		if (wake <= now)
			continue;
		int n = wait_events(&sd, evs, wake, now);
		if (n < 0 && errno != EINTR) {
			snprintf(out->first_error, sizeof(out->first_error),
			         "could not wait for the sockets: %s", strerror(errno));
			goto out;
		}
		for (int k = 0; k < n; k++) {
			if (tools_http_handle(sd.http, &evs[k]))
				continue;
			uint64_t expirations; /* the fallback timer */
			if (read(sd.tfd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
				log_debug("loadgen.timer", "could not read the timer: %s",
				          strerror(errno));
		}
	}
	rc = 0;
out:
	tools_http_free(sd.http);
	loadgen_body_release(&sd.tmpl);
	buf_release(&sd.body);
	if (sd.tfd >= 0)
		close(sd.tfd);
	if (sd.epfd >= 0)
		close(sd.epfd);
	return rc;
}

void loadgen_sent_release(struct loadgen_sent *s)
{
	free(s->status);
	free(s->step_webhook);
	s->status = NULL;
	s->step_webhook = NULL;
}
