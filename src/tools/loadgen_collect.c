/*
 * loadgen_collect.c - ties the shop's replies to loadgen's messages.
 *
 * munim quotes the inbound wamid in every reply (context.message_id); the
 * mock BSP logs each reply with that "context" and its "received_at" (wall
 * clock, ms). The collector reads the log in pages of LOADGEN_PAGE
 * (GET /_mock/messages?since=<next>&limit=...), and for each reply quoting
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
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

/* Messages per page: the mock's largest. */
#define LOADGEN_PAGE 10000
/* Largest page accepted: 10000 messages with their request bodies. */
#define LOADGEN_MAX_PAGE ((size_t)256 << 20)
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
	struct buf u;
	buf_init(&u);
	buf_printf(&u, "%s/_mock/messages", bsp);
	c->url = buf_detach(&u);
	c->replies = xcalloc(plan->sched->total ? plan->sched->total : 1, sizeof(*c->replies));
	c->step_e2e = xcalloc((size_t)plan->sched->nsteps, sizeof(*c->step_e2e));
	atomic_init(&c->stop, 0);
	return tools_client_init(&c->client, LOADGEN_MAX_PAGE);
}

void loadgen_collect_release(struct loadgen_collect *c)
{
	if (c->running)
		loadgen_collect_stop(c);
	tools_client_release(&c->client);
	free(c->url);
	free(c->replies);
	free(c->step_e2e);
	c->url = NULL;
	c->replies = NULL;
	c->step_e2e = NULL;
}

/* One reply from the log: count it against its message. */
static void take_reply(struct loadgen_collect *c, const char *context, int64_t received_ms)
{
	const struct loadgen_plan *p = c->plan;
	uint64_t i;
	if (loadgen_wamid_index(p->prefix, context, p->sched->total, &i) != 0) {
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

int loadgen_collect_poll(struct loadgen_collect *c, int *more)
{
	*more = 0;
	char url[1024];
	snprintf(url, sizeof(url), "%s?since=%llu&limit=%d", c->url, (unsigned long long)c->since,
	         LOADGEN_PAGE);
	long status = 0;
	if (tools_client_request(&c->client, url, NULL, 0, NULL, LOADGEN_POLL_TIMEOUT_MS,
	                         &status) != 0) {
		snprintf(c->last_error, sizeof(c->last_error), "%s", c->client.err);
		c->poll_failures++;
		return ERR_IO;
	}
	if (status != 200) {
		snprintf(c->last_error, sizeof(c->last_error), "the mock BSP answered HTTP %ld",
		         status);
		c->poll_failures++;
		return ERR_PROTO;
	}
	json_error_t jerr;
	json_t *root = json_loadb(c->client.answer.data, c->client.answer.len, 0, &jerr);
	json_t *msgs = json_object_get(root, "messages");
	json_t *next = json_object_get(root, "next");
	if (!json_is_array(msgs) || !json_is_integer(next) || json_integer_value(next) < 0) {
		snprintf(c->last_error, sizeof(c->last_error),
		         "the mock BSP's message list is not {\"next\",\"messages\"}: %s",
		         root ? "fields missing" : jerr.text);
		json_decref(root);
		c->poll_failures++;
		return ERR_PROTO;
	}
	size_t k;
	json_t *m;
	json_array_foreach(msgs, k, m)
	{
		const char *ctx = json_string_value(json_object_get(m, "context"));
		json_t *at = json_object_get(m, "received_at");
		if (ctx && json_is_integer(at))
			take_reply(c, ctx, (int64_t)json_integer_value(at));
		else
			c->foreign++;
	}
	*more = json_array_size(msgs) >= LOADGEN_PAGE;
	c->since = (uint64_t)json_integer_value(next);
	json_decref(root);
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
