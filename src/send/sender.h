/*
 * sender.h - the thread that drains the outbox to the provider.
 *
 * libcurl multi with keep-alive connections and many sends in flight. Rows
 * are claimed highest priority first; 2xx records the provider's message id;
 * 5xx, timeouts and 429 retry with exponential backoff and full jitter;
 * other 4xx fail with the provider's error code; after the attempt limit a
 * row is dead-lettered.
 */
#ifndef MUNIM_SENDER_H
#define MUNIM_SENDER_H

#include <stdint.h>

#include "app.h"
#include "store/store.h"

struct sender;

int sender_start(struct app *app, struct sender **out);
/* Waits for the sends in flight (bounded by the send timeout), then frees. */
void sender_stop(struct sender *s);

/*
 * The direct hand-over: a reply skips the outbox claim. In the transaction
 * that queues it, sender_reserve takes a free send slot for it - 1, or 0
 * when none is free, the sender is stopping, or a reply of this priority
 * or above waits in the outbox (that one goes first). The row is then
 * written born claimed (outbox_new.claimed), and sender_hold told its id
 * before the commit: the sender then knows the row is its own, even while
 * the commit's answer is awaited. Once the transaction's commit is durable,
 * sender_give hands the rows over (copied: id, tenant_id, priority, to,
 * phone_number_id, body, inbound_received_at); if it rolls back or fails
 * instead, sender_unreserve gives n slots back and forgets the rows held
 * (rows[0..n), NULL: none was written). A row forgotten whose commit had
 * happened after all (its answer lost with the connection) is put back
 * by the sender after a while (sender.c, release_lost). Rows given while
 * the sender stops stay SENDING for the start-up recovery. Any thread;
 * s may be NULL (no sender: reserve says 0).
 */
int sender_reserve(struct sender *s, enum outbox_prio prio);
void sender_hold(struct sender *s, int64_t id);
void sender_unreserve(struct sender *s, const struct outbox_row *rows, int n);
void sender_give(struct sender *s, const struct outbox_row *rows, int n);

/*
 * sender_render_metrics appends the sender's own metrics: each provider's
 * breaker state (munim_breaker_state{provider}: 0 closed, 1 open, 2
 * half-open), its state changes and sends, rows expired, alerts. Any
 * thread; NULL s: nothing.
 */
struct buf;
void sender_render_metrics(struct sender *s, struct buf *out);

/*
 * sender_resize lets at most n rows be outstanding (in flight or parked),
 * clamped to 1..--send-inflight; rows already out above it finish. Any
 * thread; NULL s: nothing. sender_inflight_cap: the cap now (NULL: 0).
 */
void sender_resize(struct sender *s, int n);
int sender_inflight_cap(struct sender *s);

/* What the controller reads of the providers' health (control/degrade.h). */
struct sender_health {
	int bsps;            /* WhatsApp providers configured */
	int bsps_up;         /* ... whose breaker lets a send through now or soon */
	int bsps_delivering; /* ... of those, delivering at least the minimum rate */
	int sms;             /* 1: an SMS gateway is configured */
};
/* sender_health: as of the network thread's last pass. Any thread; NULL s:
 * all zero. */
void sender_health(struct sender *s, struct sender_health *out);

enum send_class {
	SEND_OK = 0,
	SEND_RETRY = 1,     /* 5xx, timeout, network, retryable error codes */
	SEND_RATE = 2,      /* 429 / throughput codes: retry, slower */
	SEND_PERMANENT = 3, /* other 4xx: record and stop */
};

/*
 * send_classify sorts an answer: http_status 0 means no answer (timeout or
 * connection error); error_code is the Cloud API error.code (0 if none).
 */
enum send_class send_classify(long http_status, int error_code);

/*
 * backoff_delay_ms: full jitter, a uniform draw in [0, min(cap, base·2^(attempt-1))]
 * using rnd (any 64-bit random value), for the attempt-th failure (≥ 1).
 */
int64_t backoff_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t rnd);

/* An outbox row's move between states, counted in the gauges by the caller
 * once its transaction has committed. */
struct send_move {
	int moved; /* 0: nothing to count */
	enum outbox_prio prio;
	enum outbox_state from, to;
	/* a delivery report about provider's message: 1 delivered, 0 failed,
	 * -1 none (for its delivery rate) */
	int report;
	char provider[OUTBOX_PROVIDER_MAX];
	int unmatched; /* the status named no known row */
};

/* send_move_count counts mv, once its transaction has committed: the outbox
 * gauges and the provider's delivery rate (app->delivery). */
void send_move_count(struct app *app, const struct send_move *mv);

/*
 * send_status_apply applies the delivery status e (kind INBOX_STATUS,
 * tenant_id resolved) to the tenant's outbox row it names, through c inside
 * the caller's transaction; *mv gets the row's move, if any. A P0/P1
 * message WhatsApp reports failed goes again by SMS when an SMS gateway is
 * configured (store_outbox_resend). Statuses not tracked ("deleted", ...)
 * and statuses of no known row are not errors (the latter are counted in
 * statuses_unmatched). 0, ERR_INVAL for an entry that is not a status, or
 * the store's error.
 */
int send_status_apply(struct app *app, struct store_conn *c, const struct inbox_entry *e,
                      struct send_move *mv);
/* send_statuses_apply: send_status_apply for e[0..n), mv[i] e[i]'s move,
 * in few statements (store_outbox_statuses). */
int send_statuses_apply(struct app *app, struct store_conn *c, const struct inbox_entry *const *e,
                        int n, struct send_move *mv);

#endif
