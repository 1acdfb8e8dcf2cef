/*
 * loadgen_collect.c - ties the shop's replies to loadgen's messages.
 *
 * munim quotes the inbound wamid in every reply (context.message_id); the
 * mock BSP logs each reply with that "context" and its "received_at" (wall
 * clock, ms). The collector reads the log in pages of LOADGEN_PAGE from
 * the mock's compact feed (GET /_mock/replies?since=<next>&limit=...:
 * "next I" then "<index> <received_at> <context>" lines, no bodies, parsed
 * in place), over one keep-alive connection, and for each reply quoting
 * one of this run's wamids (loadgen_wamid_index) counts it against the
 * message; the first reply's received_at minus the message's scheduled
 * time is its end-to-end latency. received_at is whole milliseconds, so
 * the middle of its millisecond is taken (an unbiased estimate; the
 * figures carry that +-0.5 ms).
 *
 * The log holds at most a million messages, so the collector reads it
 * while the messages go out, on its own thread, and the sender never
 * waits for a page to be parsed. Once sending is over the caller joins
 * the thread, hands over the HTTP statuses (loadgen_collect_set_status)
 * and polls on itself until every message answered 200 has its reply.
 *
 * Threading: until loadgen_collect_stop, only the collector thread touches
 * the fields (stop is the atomic the caller writes); after it, only the
 * caller's thread. pthread_create/join order the two.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

/* Messages per page (the mock's largest is 100000). */
#define LOADGEN_PAGE 50000
/* Largest page accepted: LOADGEN_PAGE lines of at most a few hundred bytes. */
#define LOADGEN_MAX_PAGE ((size_t)64 << 20)
/* Pause between polls that found the log read to its end. */
#define LOADGEN_POLL_MS 50
/* After a failed poll. */
#define LOADGEN_RETRY_MS        200
#define LOADGEN_POLL_TIMEOUT_MS 10000

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

int loadgen_collect_init(struct loadgen_collect *c, const struct loadgen_plan *plan,
                         const char *bsp, uint64_t since)
{
	memset(c, 0, sizeof(*c));
	c->plan = plan;
	c->since = since;
	c->replies = xcalloc(plan->sched->total ? plan->sched->total : 1, sizeof(*c->replies));
	c->step_e2e = xcalloc((size_t)plan->sched->nsteps, sizeof(*c->step_e2e));
	atomic_init(&c->stop, 0);
	int rc = tools_fetch_init(&c->fetch, bsp, LOADGEN_MAX_PAGE);
	if (rc != 0)
		snprintf(c->last_error, sizeof(c->last_error), "%s", c->fetch.why);
	return rc;
}

void loadgen_collect_release(struct loadgen_collect *c)
{
	if (c->running)
		loadgen_collect_stop(c);
	tools_fetch_release(&c->fetch);
	free(c->replies);
	free(c->step_e2e);
	c->replies = NULL;
	c->step_e2e = NULL;
}

/* One reply from the log: count it against its message. */
static void take_reply(struct loadgen_collect *c, const char *context, int64_t received_ms)
{
	const struct loadgen_plan *p = c->plan;
	uint64_t i;
	if (loadgen_wamid_index(p->tag, context, p->sched->total, &i) != 0) {
		c->foreign++;
		return;
	}
	if (c->replies[i] == UINT8_MAX)
		return;
	if (c->replies[i]++ > 0)
		return; /* a duplicate: counted, no latency */
	int step;
	int64_t due_wall_us = p->start_wall_us + loadgen_sched_at_us(p->sched, i, &step);
	int64_t e2e = received_ms * 1000 + 500 - due_wall_us;
	loadgen_hist_add(&c->e2e, e2e);
	loadgen_hist_add(&c->step_e2e[step], e2e);
	if (c->status && c->status[i] == 200 && c->pending > 0)
		c->pending--;
}

/* Reads a decimal at *p up to stop; 0 and *out, or ERR_PROTO. */
static int read_u64(const char **p, const char *end, char stop, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return ERR_PROTO;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s == *p || s == end || *s != stop)
		return ERR_PROTO;
	*p = s + 1;
	*out = v;
	return 0;
}

/*
 * parse_page reads the feed "next I\n" then "<index> <ms> <context>\n"
 * lines, counting each reply; *lines gets how many. 0 or ERR_PROTO.
 */
static int parse_page(struct loadgen_collect *c, char *text, size_t len, uint64_t *next,
                      uint64_t *lines)
{
	const char *p = text, *end = text + len;
	*lines = 0;
	if (len < 5 || memcmp(p, "next ", 5) != 0)
		return ERR_PROTO;
	p += 5;
	if (read_u64(&p, end, '\n', next) != 0)
		return ERR_PROTO;
	while (p < end) {
		uint64_t index, ms;
		if (read_u64(&p, end, ' ', &index) != 0 || read_u64(&p, end, ' ', &ms) != 0 ||
		    ms > INT64_MAX / 1000 - 1)
			return ERR_PROTO;
		char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol || eol == p)
			return ERR_PROTO;
		*eol = '\0'; /* the context, in place */
		if (strcmp(p, "-") == 0)
			c->foreign++;
		else
			take_reply(c, p, (int64_t)ms);
		p = eol + 1;
		(*lines)++;
	}
	return 0;
}

int loadgen_collect_poll(struct loadgen_collect *c, int *more)
{
	*more = 0;
	char path[96];
	snprintf(path, sizeof(path), "/_mock/replies?since=%llu&limit=%d",
	         (unsigned long long)c->since, LOADGEN_PAGE);
	int status = 0;
	int rc = tools_fetch_request(&c->fetch, "GET", path, NULL, NULL, 0, LOADGEN_POLL_TIMEOUT_MS,
	                             &status);
	if (rc != 0) {
		snprintf(c->last_error, sizeof(c->last_error), "%s", c->fetch.why);
		c->poll_failures++;
		return ERR_IO;
	}
	if (status != 200) {
		snprintf(c->last_error, sizeof(c->last_error), "the mock BSP answered HTTP %d",
		         status);
		c->poll_failures++;
		return ERR_PROTO;
	}
	uint64_t next = 0, lines = 0;
	struct buf *a = &c->fetch.answer;
	if (parse_page(c, a->data ? a->data : "", a->len, &next, &lines) != 0) {
		snprintf(c->last_error, sizeof(c->last_error),
		         "the mock BSP's reply feed is not \"next I\" and "
		         "\"<index> <received_at> <context>\" lines");
		c->poll_failures++;
		return ERR_PROTO;
	}
	*more = lines >= LOADGEN_PAGE;
	c->since = next;
	return 0;
}

void loadgen_collect_set_status(struct loadgen_collect *c, const uint16_t *status)
{
	c->status = status;
	c->pending = 0;
	for (uint64_t i = 0; i < c->plan->sched->total; i++)
		if (status[i] == 200 && c->replies[i] == 0)
			c->pending++;
}

static void *collect_main(void *arg)
{
	struct loadgen_collect *c = arg;
	while (!atomic_load(&c->stop)) {
		int more = 0;
		int rc = loadgen_collect_poll(c, &more);
		if (rc != 0) {
			log_debug("loadgen.poll_failed", "could not read the mock BSP's log: %s",
			          c->last_error);
			sleep_ms(LOADGEN_RETRY_MS);
		} else if (!more) {
			sleep_ms(LOADGEN_POLL_MS);
		}
	}
	return NULL;
}

int loadgen_collect_start(struct loadgen_collect *c)
{
	atomic_store(&c->stop, 0);
	if (pthread_create(&c->thread, NULL, collect_main, c) != 0)
		return ERR_IO;
	c->running = 1;
	return 0;
}

void loadgen_collect_stop(struct loadgen_collect *c)
{
	if (!c->running)
		return;
	atomic_store(&c->stop, 1);
	pthread_join(c->thread, NULL);
	c->running = 0;
}
