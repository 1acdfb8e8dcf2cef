/*
 * tools_internal.h - the parts of `munim mock-bsp` shared between its files.
 *
 *   mock_bsp.c         the command, the Cloud API endpoint, faults, the /_mock endpoints
 *   mock_bsp_log.c     the bounded log of accepted messages, indexed
 *   mock_bsp_timer.c   late answers (the latency fault) from a timer thread
 *   mock_bsp_status.c  signed "delivered" status webhooks, batched, retried
 *
 * Every type here is thread-safe as documented on it.
 */
#ifndef MUNIM_TOOLS_INTERNAL_H
#define MUNIM_TOOLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* ---- the message log (mock_bsp_log.c) -------------------------------- */

/*
 * A bounded FIFO of accepted messages: at most max_msgs and max_bytes of
 * stored text; the oldest go first. Every message gets an index, counting
 * from 0 at start and never reused (a reset drops messages, not indexes).
 * Lookups by the quoted message (context.message_id) and by recipient go
 * through hash chains, so a poll costs the number of matches, not the
 * number of messages held. One mutex; calls are short.
 */
struct mock_log;

/* One message as kept: wamid, phone_number_id and the raw request body. */
struct mock_hit {
	uint64_t index;
	int64_t received_ms;
	char *wamid; /* the three point into one allocation owned by the hit */
	char *phone_number_id;
	char *body;
};

struct mock_query {
	const char *context; /* only replies quoting this wamid; NULL: any */
	const char *to;      /* only messages to this wa_id (no '+'); NULL: any */
	uint64_t since;      /* only index >= since */
	int limit;           /* at most this many (≥ 1) */
	int newest_first;    /* order: 0 oldest first, 1 newest first */
};

struct mock_log *mock_log_new(size_t max_msgs, size_t max_bytes);
void mock_log_free(struct mock_log *l);
/*
 * mock_log_add keeps one message (the strings are copied); to is the
 * recipient without '+', context the quoted wamid or "" / NULL. Returns
 * the message's index.
 */
uint64_t mock_log_add(struct mock_log *l, int64_t received_ms, const char *wamid,
                      const char *phone_number_id, const char *to, const char *context,
                      const char *body, size_t body_len);
/*
 * mock_log_query copies the matches into *out (free with mock_hits_free).
 * Hash matches are not re-checked here: the caller compares the fields it
 * parses. *next gets the index the next incremental poll should use.
 */
void mock_log_query(struct mock_log *l, const struct mock_query *q, struct mock_hit **out, int *n,
                    uint64_t *next);
void mock_hits_free(struct mock_hit *hits, int n);
/* mock_log_clear drops every message (indexes go on from where they were). */
void mock_log_clear(struct mock_log *l);
/* Messages and bytes held, and the index the next message will get. */
void mock_log_counts(struct mock_log *l, uint64_t *held, uint64_t *bytes, uint64_t *next);

/* ---- late answers (mock_bsp_timer.c) --------------------------------- */

typedef void (*mock_timer_fn)(void *arg);

/* One thread running callbacks at their time (monotonic clock). */
struct mock_timer;

int mock_timer_new(struct mock_timer **out);
/*
 * mock_timer_add runs fn(arg) on the timer thread at due_us
 * (clock_mono_us). Returns 0, or ERR_FULL when too many are waiting and
 * ERR_INVAL once the timer is closed: then the caller runs fn itself.
 */
int mock_timer_add(struct mock_timer *t, int64_t due_us, mock_timer_fn fn, void *arg);
/* mock_timer_close runs everything waiting now and refuses new work. */
void mock_timer_close(struct mock_timer *t);
/* Closes if needed, stops the thread, frees. NULL is a no-op. */
void mock_timer_free(struct mock_timer *t);

/* ---- status webhooks (mock_bsp_status.c) ----------------------------- */

/*
 * A background thread POSTing signed "delivered" statuses to url in
 * batches (one entry per phone_number_id), with a few retries on any
 * answer but 200. Enqueueing never blocks on the network; past a bounded
 * queue statuses are dropped and counted.
 */
struct mock_status;

struct mock_status_counts {
	uint64_t queued;  /* accepted into the queue */
	uint64_t sent;    /* in a POST answered 200 */
	uint64_t failed;  /* in a POST that failed every attempt */
	uint64_t dropped; /* queue full, or still queued at stop */
	uint64_t posts;   /* POST attempts */
};

int mock_status_new(const char *url, const char *secret, struct mock_status **out);
/* biz_opaque_callback_data longer than this is not echoed (Meta allows 512;
 * the mock keeps its status queue small). */
#define MOCK_MAX_CALLBACK 128

/* mock_status_enqueue queues one delivered status; strings are copied;
 * callback ("" for none) is echoed as biz_opaque_callback_data. */
void mock_status_enqueue(struct mock_status *st, const char *wamid, const char *phone_number_id,
                         const char *recipient_id, const char *callback);
void mock_status_counts(struct mock_status *st, struct mock_status_counts *out);
/* Sends what is queued (bounded wait), stops the thread, frees. NULL is a no-op. */
void mock_status_free(struct mock_status *st);

#endif
