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
 *   One thread, one curl multi handle driven by curl_multi_socket_action
 *   over epoll, up to plan->connections easy handles ("slots") with
 *   keep-alive connections. (curl_multi_poll would poll() every
 *   connection at each wake-up: with 256 connections and thousands of
 *   wake-ups a second that was most of this thread's time.) The loop:
 *     1. start every due message while a slot is free (build the webhook,
 *        sign it, curl_multi_add_handle); a due message that finds every
 *        slot busy simply waits: messages go out in order, so the waiting
 *        ones are [next, first not yet due), and their latency keeps
 *        counting from their due time;
 *     2. run curl's timer when due (a new handle sets it to 0), reap
 *        finished transfers (status, latency, slot back on the free list);
 *     3. sleep in epoll_wait until a socket is ready, curl's timer runs
 *        out, or the next message is due. epoll_wait's timeout is in
 *        milliseconds, too coarse at thousands of messages a second, so
 *        the due time arms a timerfd (CLOCK_MONOTONIC, absolute, the
 *        clock of clock_mono_us) in the same epoll set; curl's own timers
 *        (request time limits) are fine at a millisecond.
 *   on_socket keeps the epoll set equal to the sockets curl wants watched;
 *   on_timer records when curl wants its timeout run.
 *   How late each start was (the lag) is measured, so a loop that cannot
 *   keep up is reported rather than hidden. A message waited for a
 *   connection when all were busy at some moment between its due time and
 *   its start; as messages start in order, as soon as they are due and a
 *   slot is free, that is: due <= the end of the last all-busy spell
 *   (full_until). The lag of the others is the loop's own lateness.
 *
 * Threading: everything here belongs to the calling thread; it reads the
 * plan, which nobody writes while it runs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

/* One request slot: an easy handle and what its current message holds. */
struct slot {
	CURL *easy;
	uint64_t msg;
	int step;
	int64_t due_us;
	char *body;
	struct curl_slist *headers;
	char err[CURL_ERROR_SIZE];
};

struct sender {
	const struct loadgen_plan *p;
	struct loadgen_sent *out;
	CURLM *multi;
	struct slot *slots;
	int *free_slots; /* stack of free slot numbers */
	int nfree, nslots;
	int64_t full_until; /* when a slot last came free after all were busy; 0: never */
	int epfd, tfd;
	int64_t curl_due_us; /* when curl wants CURL_SOCKET_TIMEOUT run; -1: no timer */
	char sys_err[128];   /* an epoll_ctl failure inside on_socket */
};

/* Most epoll events taken per wake-up. */
#define SEND_EVENTS 256

/* The answer's body is not needed: discard it. */
static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* curl_slist_append, aborting like xmalloc when memory runs out. */
static struct curl_slist *slist_add(struct curl_slist *l, const char *s)
{
	struct curl_slist *n = curl_slist_append(l, s);
	if (!n) {
		fprintf(stderr, "munim loadgen: out of memory\n");
		abort();
	}
	return n;
}

static void note_error(struct loadgen_sent *out, const char *why)
{
	out->errors++;
	if (!out->first_error[0])
		snprintf(out->first_error, sizeof(out->first_error), "%s", why);
}

/*
 * start_msg builds, signs and starts message i in slot s. A webhook that
 * cannot be built (it was checked before the run, so only a failing
 * allocation inside jansson) counts as a message without an answer.
 */
static void start_msg(struct sender *sd, struct slot *s, uint64_t i, int step, int64_t due_us)
{
	const struct loadgen_plan *p = sd->p;
	uint64_t phone, customer;
	const char *text;
	loadgen_pick(&p->mix, i, &phone, &customer, &text);
	char phone_s[24], from_s[24], wamid[LOADGEN_PREFIX_CAP + 24];
	snprintf(phone_s, sizeof(phone_s), "%llu", (unsigned long long)phone);
	snprintf(from_s, sizeof(from_s), "%llu", (unsigned long long)customer);
	snprintf(wamid, sizeof(wamid), "%s%llu", p->prefix, (unsigned long long)i);
	struct tools_inbound in = {
	        .phone_number_id = phone_s,
	        .from = from_s,
	        .name = p->name,
	        .wamid = wamid,
	        .text = text,
	};
	char *body = tools_webhook_build(&in);
	if (!body) {
		sd->out->status[i] = 0;
		note_error(sd->out, "could not build a webhook");
		sd->free_slots[sd->nfree++] = (int)(s - sd->slots);
		return;
	}
	size_t len = strlen(body);
	char hdr[TOOLS_SIG_HEADER_CAP];
	tools_sig_header(p->secret, body, len, hdr);
	struct curl_slist *h = slist_add(NULL, "Content-Type: application/json");
	h = slist_add(h, "Expect:");
	h = slist_add(h, hdr);
	s->msg = i;
	s->step = step;
	s->due_us = due_us;
	s->body = body;
	s->headers = h;
	s->err[0] = '\0';
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, h);
	CURLMcode mc = curl_multi_add_handle(sd->multi, s->easy);
	if (mc != CURLM_OK) {
		sd->out->status[i] = 0;
		note_error(sd->out, curl_multi_strerror(mc));
		free(s->body);
		curl_slist_free_all(s->headers);
		s->body = NULL;
		s->headers = NULL;
		sd->free_slots[sd->nfree++] = (int)(s - sd->slots);
	}
}

/* reap takes every finished transfer; returns how many. */
static int reap(struct sender *sd)
{
	struct loadgen_sent *out = sd->out;
	int n = 0, left;
	CURLMsg *m;
	while ((m = curl_multi_info_read(sd->multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURL *easy = m->easy_handle;
		CURLcode res = m->data.result;
		int64_t now = clock_mono_us();
		char *priv = NULL;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
		struct slot *s = (struct slot *)priv;
		long code = 0;
		if (res == CURLE_OK)
			curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code);
		if (res != CURLE_OK) {
			out->status[s->msg] = 0;
			note_error(out, s->err[0] ? s->err : curl_easy_strerror(res));
		} else if (code < LOADGEN_CODE_MIN || code > LOADGEN_CODE_MAX) {
			out->status[s->msg] = 0;
			note_error(out, "an answer without a valid HTTP status");
		} else {
			out->status[s->msg] = (uint16_t)code;
			out->codes[code - LOADGEN_CODE_MIN]++;
			if (code == 200) {
				loadgen_hist_add(&out->webhook, now - s->due_us);
				loadgen_hist_add(&out->step_webhook[s->step], now - s->due_us);
			}
		}
		curl_multi_remove_handle(sd->multi, easy);
		free(s->body);
		curl_slist_free_all(s->headers);
		s->body = NULL;
		s->headers = NULL;
		if (sd->nfree == 0)
			sd->full_until = now;
		sd->free_slots[sd->nfree++] = (int)(s - sd->slots);
		n++;
	}
	return n;
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

/* CURLMOPT_SOCKETFUNCTION: watch s for what curl asks, or stop watching it. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
	(void)easy;
	struct sender *sd = userp;
	if (what == CURL_POLL_REMOVE) {
		/* curl is done with s (it may already be closed: then ENOENT/EBADF) */
		epoll_ctl(sd->epfd, EPOLL_CTL_DEL, s, NULL);
		return 0;
	}
	struct epoll_event ev = {0};
	ev.data.fd = s;
	if (what & CURL_POLL_IN)
		ev.events |= EPOLLIN;
	if (what & CURL_POLL_OUT)
		ev.events |= EPOLLOUT;
	int rc = epoll_ctl(sd->epfd, socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, s, &ev);
	if (rc != 0 && errno == EEXIST)
		rc = epoll_ctl(sd->epfd, EPOLL_CTL_MOD, s, &ev);
	else if (rc != 0 && errno == ENOENT)
		rc = epoll_ctl(sd->epfd, EPOLL_CTL_ADD, s, &ev);
	if (rc != 0) {
		snprintf(sd->sys_err, sizeof(sd->sys_err), "could not watch a socket: %s",
		         strerror(errno));
		return -1; /* curl fails the transfers on this socket */
	}
	if (!socketp)
		curl_multi_assign(sd->multi, s, sd); /* any non-NULL: "registered" */
	return 0;
}

/* CURLMOPT_TIMERFUNCTION: when curl wants CURL_SOCKET_TIMEOUT run. */
static int on_timer(CURLM *multi, long timeout_ms, void *userp)
{
	(void)multi;
	struct sender *sd = userp;
	sd->curl_due_us = timeout_ms < 0 ? -1 : clock_mono_us() + (int64_t)timeout_ms * 1000;
	return 0;
}

static int setup(struct sender *sd)
{
	const struct loadgen_plan *p = sd->p;
	sd->curl_due_us = -1;
	sd->multi = curl_multi_init();
	if (!sd->multi)
		return ERR_IO;
	curl_multi_setopt(sd->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(sd->multi, CURLMOPT_SOCKETDATA, sd);
	curl_multi_setopt(sd->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(sd->multi, CURLMOPT_TIMERDATA, sd);
	curl_multi_setopt(sd->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)p->connections);
	curl_multi_setopt(sd->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)p->connections);
	curl_multi_setopt(sd->multi, CURLMOPT_MAXCONNECTS, (long)p->connections);
	sd->nslots = (int)p->connections;
	sd->slots = xcalloc((size_t)sd->nslots, sizeof(*sd->slots));
	sd->free_slots = xcalloc((size_t)sd->nslots, sizeof(*sd->free_slots));
	for (int k = 0; k < sd->nslots; k++) {
		struct slot *s = &sd->slots[k];
		s->easy = curl_easy_init();
		if (!s->easy)
			return ERR_IO;
		curl_easy_setopt(s->easy, CURLOPT_URL, p->webhook_url);
		curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
		curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, s->err);
		curl_easy_setopt(s->easy, CURLOPT_PRIVATE, (char *)s);
		sd->free_slots[sd->nfree++] = sd->nslots - 1 - k; /* slot 0 on top */
	}
	return 0;
}

static void teardown(struct sender *sd)
{
	for (int k = 0; sd->slots && k < sd->nslots; k++) {
		struct slot *s = &sd->slots[k];
		if (!s->easy)
			continue;
		if (s->body) /* still attached: only when the loop failed */
			curl_multi_remove_handle(sd->multi, s->easy);
		curl_easy_cleanup(s->easy);
		free(s->body);
		curl_slist_free_all(s->headers);
	}
	free(sd->slots);
	free(sd->free_slots);
	if (sd->multi)
		curl_multi_cleanup(sd->multi);
}

/* Runs curl on one ready socket (fd) or, with fd CURL_SOCKET_TIMEOUT, its timer. */
static int drive(struct sender *sd, curl_socket_t fd, int flags)
{
	int still;
	CURLMcode mc = curl_multi_socket_action(sd->multi, fd, flags, &still);
	if (mc != CURLM_OK) {
		snprintf(sd->out->first_error, sizeof(sd->out->first_error), "%s",
		         sd->sys_err[0] ? sd->sys_err : curl_multi_strerror(mc));
		return ERR_IO;
	}
	return 0;
}

/* The due time of message i on the monotonic clock. */
static int64_t due_at(const struct loadgen_plan *plan, uint64_t i, int *step)
{
	return plan->start_mono_us + loadgen_sched_at_us(plan->sched, i, step);
}

int loadgen_send(const struct loadgen_plan *plan, struct loadgen_sent *out)
{
	const struct loadgen_sched *sch = plan->sched;
	memset(out, 0, sizeof(*out));
	out->status = xcalloc(sch->total ? sch->total : 1, sizeof(*out->status));
	out->step_webhook = xcalloc((size_t)sch->nsteps, sizeof(*out->step_webhook));
	struct sender sd = {.p = plan, .out = out, .epfd = -1, .tfd = -1};
	int rc = ERR_IO;
	sd.epfd = epoll_create1(EPOLL_CLOEXEC);
	sd.tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	struct epoll_event tev = {.events = EPOLLIN, .data.fd = sd.tfd};
	if (sd.epfd < 0 || sd.tfd < 0 || epoll_ctl(sd.epfd, EPOLL_CTL_ADD, sd.tfd, &tev) != 0) {
		snprintf(out->first_error, sizeof(out->first_error), "could not create a timer: %s",
		         strerror(errno));
		goto out;
	}
	if (setup(&sd) != 0) {
		snprintf(out->first_error, sizeof(out->first_error),
		         "could not create the HTTP clients");
		goto out;
	}

	uint64_t next = 0;
	struct epoll_event evs[SEND_EVENTS];
	for (;;) {
		int64_t now = clock_mono_us();
		int step = 0;
		while (next < sch->total && sd.nfree > 0) {
			int64_t due = due_at(plan, next, &step);
			if (due > now)
				break;
			struct slot *s = &sd.slots[sd.free_slots[--sd.nfree]];
			if (due <= sd.full_until)
				out->conn_waits++;
			else
				loadgen_hist_add(&out->loop_lag, now - due);
			loadgen_hist_add(&out->lag, now - due);
			out->last_start_us = now - plan->start_mono_us;
			start_msg(&sd, s, next, step, due);
			next++;
			now = clock_mono_us();
		}
		if (sd.curl_due_us >= 0 && sd.curl_due_us <= now) {
			sd.curl_due_us = -1;
			if (drive(&sd, CURL_SOCKET_TIMEOUT, 0) != 0)
				goto out;
		}
		reap(&sd);
		if (sd.sys_err[0]) {
			snprintf(out->first_error, sizeof(out->first_error), "%s", sd.sys_err);
			goto out;
		}
		if (next >= sch->total && sd.nfree == sd.nslots)
			break; /* all sent and answered */
		now = clock_mono_us();
		int64_t wake = 0; /* the next message, when a slot is free for it */
		if (next < sch->total && sd.nfree > 0) {
			wake = due_at(plan, next, NULL);
			if (wake <= now)
				continue;
		}
		if (sd.curl_due_us >= 0 && sd.curl_due_us <= now)
			continue;
		if (arm_timer(sd.tfd, wake) != 0) {
			snprintf(out->first_error, sizeof(out->first_error),
			         "could not set a timer: %s", strerror(errno));
			goto out;
		}
		int timeout_ms = 1000;
		if (sd.curl_due_us >= 0 && (sd.curl_due_us - now + 999) / 1000 < timeout_ms)
			timeout_ms = (int)((sd.curl_due_us - now + 999) / 1000);
		int n = epoll_wait(sd.epfd, evs, SEND_EVENTS, timeout_ms);
		if (n < 0 && errno != EINTR) {
			snprintf(out->first_error, sizeof(out->first_error),
			         "could not wait for the sockets: %s", strerror(errno));
			goto out;
		}
		for (int k = 0; k < n; k++) {
			if (evs[k].data.fd == sd.tfd) {
				uint64_t expirations;
				if (read(sd.tfd, &expirations, sizeof(expirations)) < 0 &&
				    errno != EAGAIN)
					log_debug("loadgen.timer", "could not read the timer: %s",
					          strerror(errno));
				continue;
			}
			int flags = 0;
			if (evs[k].events & EPOLLIN)
				flags |= CURL_CSELECT_IN;
			if (evs[k].events & EPOLLOUT)
				flags |= CURL_CSELECT_OUT;
			if (evs[k].events & (EPOLLERR | EPOLLHUP))
				flags |= CURL_CSELECT_ERR;
			if (drive(&sd, evs[k].data.fd, flags) != 0)
				goto out;
		}
		reap(&sd); /* now, so the answers' times are not taken after new sends */
	}
	rc = 0;
out:
	teardown(&sd);
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
