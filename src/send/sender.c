/*
 * sender.c - drains the outbox to the provider: start-up recovery, the
 * recorder thread, and stop. The network thread is in send_net.c.
 *
 * Design
 *   A reply the provider accepted must not be sent again after a crash, so
 *   the acceptance is made durable the moment it is read, by a thread that
 *   never waits for the store (whose writer lock the ingest committer and
 *   the workers also hold), in a local journal; the store hears of it a
 *   little later.
 *
 *        app->outbox_ready (workers)         provider (Cloud API)
 *                |                                   ^  |
 *                v                                   |  v
 *       +-------------------+  jobs (claimed rows) +------------------+
 *       | recorder thread   | -------------------> | network thread   |
 *       |  store_conn       |                      |  curl multi,     |
 *       |  claim, record    | <------------------- |  slots, journal  |
 *       +-------------------+  outcomes + ring     +------------------+
 *                |              outbox_ready                |
 *                v                                          v
 *         the store (outbox)                     <db>-sendlog (journal.c)
 *               "SENDING -> ACCEPTED ..."        "row R accepted as M",
 *                                                 synced once per pass
 *
 *   The recorder claims up to (nslots - outstanding) due rows, P0 first
 *   (store_outbox_claim), hands them over and wakes the network thread
 *   (curl_loop_wake). A transaction that queues a reply may also skip
 *   the claim (the direct hand-over, below): it reserves a slot, writes the
 *   row born claimed, and once its commit is durable gives the row straight
 *   to the network thread (sender_give), like a claimed one. The
 *   network thread starts their POSTs, and per pass of curl completions
 *   journals every acceptance, calls journal_sync once, then hands all the
 *   pass's outcomes back and rings app->outbox_ready (send_net.c). The
 *   recorder writes a batch of outcomes in ONE transaction
 *   (store_outbox_accepted/retry/fail); only after the commit do the
 *   metrics move and the rows stop counting as outstanding. With nothing
 *   to do the recorder sleeps on app->outbox_ready, waking at the earliest
 *   next_attempt_at of a pending row and at least every SEND_SWEEP_MS (rows
 *   added by another process).
 *
 *   What the journal cannot know is a send the provider received but had
 *   not answered when munim died (queued or being answered there). Every
 *   send carries our row id as biz_opaque_callback_data
 *   (wamsg_with_callback), and the provider echoes it in the status
 *   webhooks of the messages it accepted. So rows still in doubt after the
 *   replay wait cfg.send_recover_grace_ms before going out again, and a
 *   status naming one of them marks it accepted instead
 *   (store_outbox_status with row_hint, in the worker). A reply is sent
 *   twice only if the provider accepted it and its status did not arrive
 *   within the grace. serve gives every sender a journal (beside a SQLite
 *   file; munim-sendlog-<port> in the working directory with a PostgreSQL
 *   store); with none (cfg.send_journal empty) the statuses alone stand
 *   between a crash and a duplicate.
 *
 * The outbox row's life here (store.h has the whole diagram):
 *
 *                                       store_outbox_accepted
 *   PENDING --store_outbox_claim--> SENDING --2xx-------------------------> ACCEPTED
 *    ^  ^                            |  |  \--5xx/429/timeout, attempts --> DEAD
 *    |  |                            |  |   \  used up                      store_outbox_fail
 *    |  |                            |  |    \--other 4xx ----------------> FAILED
 *    |  |                            |  |                                   store_outbox_fail
 *    |  +--store_outbox_retry--------+  |  (5xx/429/timeout, attempts left)
 *    +-----store_outbox_recover---------+  (a crash mid-send: at the successor's
 *    |                                  |   start-up, or once the dead node's
 *    |                                  |   lease ran out)
 *    +-----store_outbox_defer-----------+  (release_lost: a row of this node
 *                                           this sender does not hold, its
 *                                           claim's answer lost; never sent)
 *
 *   At start-up the journal is replayed first: a SENDING row it holds goes
 *   to ACCEPTED (store_outbox_accepted, replay_journal); only the SENDING
 *   rows left then go back to PENDING (store_outbox_recover), due after the
 *   grace; a status with their row id may still move them to ACCEPTED and
 *   beyond first. Otherwise they are sent again: never lost.
 *
 *   Several senders share a store: every claim records this process's
 *   node (worker/lease.h), and recovery takes only the rows of nodes that
 *   are dead - at start-up those of this node's earlier run (after its
 *   journal's replay), and every SEND_RECOVER_EVERY_MS those of any node
 *   whose lease ran out (recover_dead) - never a live sender's. A dead
 *   sender's journal is replayed only by its successor (the same node
 *   name): until then, the grace and the statuses' row ids are what keep
 *   its accepted sends from going twice.
 *
 *   A claim can happen without the sender knowing: the connection drops
 *   between the commit and its answer (a failover), and the rows stay
 *   SENDING under this live node, which no recovery takes. So the sender
 *   keeps the ids of the rows it holds (mine: claimed, or held by a worker
 *   from before its commit until the outcome is recorded), and every
 *   SEND_RECOVER_EVERY_MS puts back, due now, this node's SENDING rows that
 *   are not among them and have not moved for SEND_LOST_AFTER_MS
 *   (release_lost).
 *
 * Invariants
 *   - At most nslots rows are outstanding (claimed, not yet recorded): that
 *     bounds both queues and gives every handed-over job a free slot.
 *   - A row this sender holds (mine) is never put back by release_lost; a
 *     SENDING row of this node it does not hold was never sent.
 *   - An outcome is kept until its commit succeeds; if the store refuses the
 *     write, the recorder retries every SEND_STORE_RETRY_MS and claims
 *     nothing meanwhile, so a database outage stops new sends instead of
 *     forgetting answers. The network side hands outcomes over and forgets
 *     them; the recorder never drops one.
 *   - metrics.outbox moves only after the commit that makes a move real.
 *   - A journal record is truncated away only after the store has it
 *     (applied == journaled, send_net.c); replaying a record the store
 *     already has changes nothing (ERR_CONFLICT).
 *   - Retry delays are full jitter (backoff_delay_ms); rate-limited answers
 *     (SEND_RATE) wait one doubling longer than other retryable ones.
 *   - A 2xx answer without messages[0].id is not taken as accepted: it is
 *     retried like a timeout (it is not a Cloud API answer).
 *
 * Threading: struct sender (send_internal.h) says which thread writes
 * which field. Shared with others: app->metrics (atomics),
 * app->outbox_ready (workers ring it for new rows, the network thread for
 * outcomes; the recorder alone waits on it), app->stopping.
 */
#include "send/sender.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "send/aggregate.h"
#include "send/delivery.h"
#include "send/send_internal.h"

/*
 * Keep-alive connections to one provider host: at least this many, and as
 * many as sends in flight, so that over HTTP/1.1 every send in flight has
 * its own connection (HTTP/2 multiplexes them anyway); requests beyond the
 * limit would wait inside curl with their timeout running.
 */
#define SEND_MIN_HOST_CONNS 32
/* Store writes tried at stop, once the network side is done. */
#define SEND_STOP_TRIES 5
/*
 * Outcomes are written at most this long after the first of them arrived
 * (or at once when half the slots wait to be recorded, or at stop): every
 * transaction of the recorder pays fixed costs - the page cache the other
 * writers emptied, read again; the same tail pages written again - and
 * empties the committer's cache in turn. Nothing waits on the record but
 * the slot (the journal already holds the acceptance).
 */
#define SEND_GATHER_MS 50
/* How often the recorder looks for the sends of dead senders (store.h,
 * store_outbox_recover): a dead node's rows move within its lease and this. */
#define SEND_RECOVER_EVERY_MS STORE_NODE_BEAT_MS

int send__stopping(struct sender *s)
{
	return atomic_load(&s->stop) || atomic_load(&s->app->stopping);
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static int64_t max64(int64_t a, int64_t b)
{
	return a > b ? a : b;
}

/* ---- the rows this sender holds ---------------------------------------- */

/*
 * mine_mark: the rows whose ids are at id, id + stride bytes, ... (n of
 * them: the id field of an array of rows, jobs or outcomes) become held
 * (hold 1) or let go (hold 0).
 */
static void mine_mark(struct sender *s, const int64_t *id, int n, size_t stride, int hold)
{
	const char *p = (const char *)id;
	pthread_mutex_lock(&s->mine_mu);
	for (int i = 0; i < n; i++, p += stride) {
		int64_t v = *(const int64_t *)p;
		if (hold)
			idset_add(&s->mine, v);
		else
			idset_del(&s->mine, v);
	}
	pthread_mutex_unlock(&s->mine_mu);
}

/* ---- recording outcomes ------------------------------------------------ */

/* take_outcomes moves what the network thread handed over into held. */
static void take_outcomes(struct sender *s)
{
	pthread_mutex_lock(&s->mu);
	/* held + outs never exceed the rows outstanding, so nslots */
	memcpy(s->held + s->nheld, s->outs, (size_t)s->nouts * sizeof(*s->outs));
	s->nheld += s->nouts;
	s->nouts = 0;
	pthread_mutex_unlock(&s->mu);
}

static int write_outcome(struct sender *s, struct send_outcome *o, int64_t now)
{
	o->landed = o->final;
	switch (o->final) {
	case OUTBOX_ACCEPTED: {
		const struct provider *p = o->provider >= 0 ? &s->providers.p[o->provider] : NULL;
		int rc = store_outbox_accepted(s->conn, o->id, o->msg_id, p ? p->name : "", now,
		                               &o->landed);
		/* WhatsApp's "failed" status overtook its own acceptance: a P0/P1
		 * goes by SMS, as when the status comes later (send_status_apply) */
		if (rc == 0 && o->landed == OUTBOX_FAILED && p &&
		    provider_sms_fallback(&s->app->cfg, o->prio, p->name)) {
			rc = store_outbox_resend(s->conn, o->id, PROVIDER_SMS, now, NULL);
			if (rc == 0) {
				o->landed = OUTBOX_PENDING;
				snprintf(o->pin, sizeof(o->pin), "%s", PROVIDER_SMS);
				snprintf(o->error, sizeof(o->error), "WhatsApp reports it failed");
			}
		}
		return rc;
	}
	case OUTBOX_PENDING: {
		if (o->deferred)
			return store_outbox_defer(s->conn, o->id, o->next_attempt_at, o->error, now,
			                          &o->landed);
		int rc = store_outbox_retry(s->conn, o->id, o->next_attempt_at, o->error_code,
		                            o->error, now, &o->landed);
		if (rc == 0 && o->pin[0] && o->landed == OUTBOX_PENDING)
			rc = store_outbox_resend(s->conn, o->id, o->pin, o->next_attempt_at, NULL);
		return rc;
	}
	default:
		return store_outbox_fail(s->conn, o->id, o->final, o->error_code, o->error, now,
		                         &o->landed);
	}
}

/* After the commit: metrics, logs, the wake-up time of retries. */
static void settle(struct sender *s, const struct send_outcome *o, int64_t now)
{
	struct metrics *m = &s->app->metrics;
	if (o->skipped) {
		/* the row had left SENDING behind our back (an operator's change):
		 * its new state is not ours to count */
		metrics_outbox_move(m, o->prio, OUTBOX_SENDING, -1);
		log_warn("send.row_moved",
		         "outbox row %lld was no longer sending; outcome \"%s\" dropped",
		         (long long)o->id, outbox_state_name(o->final));
		return;
	}
	metrics_outbox_move(m, o->prio, OUTBOX_SENDING, (int)o->landed);
	if (o->final == OUTBOX_ACCEPTED && o->landed != OUTBOX_ACCEPTED && o->provider >= 0) {
		/* a delivery report overtook the answer: it still counts */
		int delivered = o->landed == OUTBOX_DELIVERED || o->landed == OUTBOX_READ;
		if (delivered || o->pin[0] || o->landed == OUTBOX_FAILED)
			delivery_report(s->app->delivery, s->providers.p[o->provider].name,
			                delivered, now);
	}
	if (o->final == OUTBOX_ACCEPTED && o->pin[0]) {
		s->due_at = now;
		log_info("send.fallback", "reply %lld of tenant %lld to %s: %s; going through %s",
		         (long long)o->id, (long long)o->tenant_id, o->to, o->error, o->pin);
		return;
	}
	if (o->final == OUTBOX_PENDING && o->landed == OUTBOX_FAILED && o->prio == PRIO_P3) {
		log_info("send.not_again",
		         "offer %lld to %s is not sent again: the customer opted out, or the "
		         "provider reported it failed",
		         (long long)o->id, o->to);
		return;
	}
	if (o->landed != o->final && o->final != OUTBOX_ACCEPTED) {
		/* a delivery status overtook this answer: the provider has the
		 * message, so it is not retried or failed */
		log_info("send.status_first",
		         "reply %lld to %s: the provider reported it %s before its answer (%s) was "
		         "recorded; not sent again",
		         (long long)o->id, o->to, outbox_state_name(o->landed), o->error);
		return;
	}
	switch (o->final) {
	case OUTBOX_ACCEPTED:
		if (o->inbound_received_at > 0)
			metrics_observe_us(&m->reply_latency,
			                   (now - o->inbound_received_at) * 1000);
		break;
	case OUTBOX_PENDING:
		if (s->due_at == 0 || o->next_attempt_at < s->due_at)
			s->due_at = o->next_attempt_at;
		if (o->deferred)
			log_debug("send.held", "reply %lld to %s %s; again in %lld ms",
			          (long long)o->id, o->to, o->error,
			          (long long)(o->next_attempt_at - now));
		else if (o->pin[0])
			log_info("send.fallback",
			         "reply %lld of tenant %lld to %s: %s; going through %s instead",
			         (long long)o->id, (long long)o->tenant_id, o->to, o->error,
			         o->pin);
		else
			log_debug("send.retry",
			          "reply %lld to %s: attempt %d failed (%s); next in %lld ms",
			          (long long)o->id, o->to, o->attempts, o->error,
			          (long long)(o->next_attempt_at - now));
		break;
	case OUTBOX_DEAD:
		if (o->expired) {
			atomic_fetch_add(&s->expired, 1);
			log_info("send.expired", "reply %lld of tenant %lld to %s (%s) %s",
			         (long long)o->id, (long long)o->tenant_id, o->to,
			         outbox_prio_name(o->prio), o->error);
			break;
		}
		atomic_fetch_add_explicit(&m->dead_letters, 1, memory_order_relaxed);
		log_warn("send.dead_letter",
		         "reply %lld of tenant %lld to %s dead-lettered after %d attempts: %s",
		         (long long)o->id, (long long)o->tenant_id, o->to, o->attempts, o->error);
		break;
	default:
		log_warn("send.failed", "reply %lld of tenant %lld to %s failed for good: %s",
		         (long long)o->id, (long long)o->tenant_id, o->to, o->error);
		break;
	}
}

static int cmp_outcome_id(const void *pa, const void *pb)
{
	const struct send_outcome *a = pa, *b = pb;
	return store_outbox_cmp(a->id, b->id);
}

/*
 * apply writes every held outcome in one transaction, in the rows' order
 * (store_outbox_cmp, as the ingest committer applies delivery statuses:
 * two transactions on the same rows wait for each other, never deadlock),
 * then settles them. On a
 * store error nothing is settled and the caller tries again later.
 */
static int apply(struct sender *s)
{
	int64_t now = clock_wall_ms();
	qsort(s->held, (size_t)s->nheld, sizeof(*s->held), cmp_outcome_id);
	int rc = store_begin(s->conn);
	if (rc != 0)
		goto fail;
	for (int i = 0; i < s->nheld; i++) {
		struct send_outcome *o = &s->held[i];
		rc = write_outcome(s, o, now);
		/* the row left SENDING behind our back: nothing to write */
		o->skipped = rc == ERR_NOTFOUND || rc == ERR_CONFLICT;
		if (o->skipped)
			rc = 0;
		if (rc != 0)
			goto fail;
	}
	rc = store_commit(s->conn);
	if (rc != 0)
		goto fail;
	if (s->store_failing)
		log_info("send.store_recovered", "send outcomes are being recorded again");
	s->store_failing = 0;
	int64_t journaled = 0;
	for (int i = 0; i < s->nheld; i++) {
		settle(s, &s->held[i], now);
		journaled += s->held[i].journaled;
	}
	mine_mark(s, &s->held[0].id, s->nheld, sizeof(*s->held), 0);
	atomic_fetch_sub(&s->outstanding, s->nheld);
	s->nheld = 0;
	/* the commit was lazy: the journal may forget these acceptances only
	 * once the store has them on disk, which the next claim's sync makes
	 * sure of (a lost retry or failure is only a row sent again after a
	 * restart, as after any crash mid-send) */
	s->applied_unsynced += journaled;
	return 0;
fail:
	if (!s->store_failing)
		log_error("send.record_failed",
		          "could not record %d send outcomes (retrying every %d ms): %s", s->nheld,
		          SEND_STORE_RETRY_MS, store_errmsg(s->conn));
	s->store_failing = 1;
	/* after the message: a rollback with nothing open sets its own */
	store_rollback(s->conn);
	return rc;
}

/* The recorded acceptances are on disk (a store_sync just returned): the
 * journal may forget them. */
static void applied_synced(struct sender *s)
{
	if (s->applied_unsynced > 0) {
		atomic_fetch_add(&s->applied, s->applied_unsynced);
		s->applied_unsynced = 0;
	}
}

/* A sync for recorded acceptances alone, when no claim brought one. */
static void sync_applied(struct sender *s)
{
	if (s->applied_unsynced > 0 && store_sync(s->conn) == 0)
		applied_synced(s);
}

/* ---- claiming ----------------------------------------------------------- */

/*
 * hand_over_claimed gives claimed[0..k) to the network thread once they are
 * durable: the claim was a lazy commit, and the workers' batches that made
 * the rows may be too. A reply must never go out on the strength of
 * commits a power cut could undo (the message would be answered again).
 * Until a sync succeeds the jobs wait here (nunsynced). k, or ERR_IO.
 */
static int hand_over_claimed(struct sender *s, int k)
{
	if (k == 0)
		return 0;
	if (store_sync(s->conn) != 0) {
		if (!s->claim_failing)
			log_error("send.claim_failed", "could not sync claimed outbox rows: %s",
			          store_errmsg(s->conn));
		s->claim_failing = 1;
		s->nunsynced = k;
		return ERR_IO;
	}
	s->nunsynced = 0;
	applied_synced(s);
	pthread_mutex_lock(&s->mu);
	memcpy(s->jobs + s->njobs, s->claimed, (size_t)k * sizeof(*s->claimed));
	s->njobs += k;
	pthread_mutex_unlock(&s->mu);
	curl_loop_wake(&s->loop);
	return k;
}

/* reserve_slots takes up to want free slots; how many it got. */
static int reserve_slots(struct sender *s, int want)
{
	int cur = atomic_load(&s->outstanding);
	for (;;) {
		int cap = atomic_load_explicit(&s->cap, memory_order_relaxed);
		int got = cap - cur < want ? cap - cur : want;
		if (got <= 0)
			return 0;
		if (atomic_compare_exchange_weak(&s->outstanding, &cur, cur + got))
			return got;
	}
}

/*
 * gather claims, for each P1..P3 recipient among rows[0..n), the other
 * replies waiting for them (up to SEND_GATHER_PER_RECIPIENT each,
 * SEND_GATHER_MAX in all, of priority up to upto), and returns the rows
 * with those appended (in s->arena) and their count. A store refusal ends
 * the gathering (logged): what was gathered so far is still merged.
 */
static int gather(struct sender *s, int64_t now, int upto, struct outbox_row **rows, int n)
{
	struct outbox_row *all =
	        arena_alloc(&s->arena, sizeof(*all) * (size_t)(n + SEND_GATHER_MAX));
	memcpy(all, *rows, sizeof(*all) * (size_t)n);
	int total = n;
	for (int i = 0; i < n && total < n + SEND_GATHER_MAX; i++) {
		const struct outbox_row *r = &all[i];
		if (r->priority == PRIO_P0 || (r->provider && *r->provider) || !r->to)
			continue; /* a P0 or a row pinned to a provider goes alone */
		int seen = 0;
		for (int j = 0; j < i && !seen; j++)
			seen = all[j].tenant_id == r->tenant_id && all[j].to &&
			       strcmp(all[j].to, r->to) == 0;
		if (seen)
			continue;
		int room = n + SEND_GATHER_MAX - total, m = 0;
		struct outbox_row *more = NULL;
		int rc = store_outbox_claim_to(
		        s->conn, now, r->tenant_id, r->to, PRIO_P1, (enum outbox_prio)upto,
		        room < SEND_GATHER_PER_RECIPIENT ? room : SEND_GATHER_PER_RECIPIENT,
		        &s->arena, &more, &m);
		if (rc != 0) {
			log_warn("send.gather_failed",
			         "could not gather a customer's waiting replies to merge: %s",
			         store_errmsg(s->conn));
			break;
		}
		if (m > 0)
			memcpy(all + total, more, sizeof(*all) * (size_t)m);
		total += m;
	}
	*rows = all;
	return total;
}

/* unclaim puts a gathered row that found no slot back, unsent. */
static void unclaim(struct sender *s, const struct outbox_row *row, int64_t now)
{
	if (store_outbox_defer(s->conn, row->id, now, "", now, NULL) != 0)
		log_error("send.unclaim_failed",
		          "could not put outbox row %lld back: %s (start-up recovery will)",
		          (long long)row->id, store_errmsg(s->conn));
}

/*
 * claim takes up to room due rows and hands them to the network thread.
 * Returns how many were claimed, or a negative ERR_* when the store refused.
 */
static int claim(struct sender *s, int64_t now, int room)
{
	struct outbox_row *rows = NULL;
	int n = 0;
	if (s->nunsynced > 0)
		return hand_over_claimed(s, s->nunsynced);
	int upto = atomic_load(&s->claim_upto);
	if (upto < 0) /* no provider is up: what would be claimed goes back */
		return 0;
	/* a direct hand-over may have taken slots since room was counted */
	int got = reserve_slots(s, room);
	if (got == 0)
		return 0;
	room = got;
	if (s->hooks.in_claim)
		s->hooks.in_claim(s->hooks.ud);
	arena_reset(&s->arena);
	int rc = store_outbox_claim(s->conn, now, room, (enum outbox_prio)upto, &s->arena, &rows,
	                            &n);
	if (rc != 0) {
		atomic_fetch_sub(&s->outstanding, room);
		if (!s->claim_failing) /* once per outage, not every retry */
			log_error("send.claim_failed", "could not claim outbox rows: %s",
			          store_errmsg(s->conn));
		s->claim_failing = 1;
		return rc;
	}
	if (s->claim_failing)
		log_info("send.claim_recovered", "outbox rows are being claimed again");
	s->claim_failing = 0;
	/* under a traffic spike, replies to one customer go out as one
	 * (aggregate.h): each claimed customer's other waiting replies are
	 * claimed too, rows[n..total); a merged row needs no slot, the store
	 * has it MERGED; a gathered row left over goes back unsent */
	int merged = 0, total = n;
	if (n > 0 && atomic_load(&s->app->aggregate)) {
		total = gather(s, now, upto, &rows, n);
		struct aggregate_opts ao = {.sms_fallback = s->providers.sms >= 0};
		if (total > 1)
			merged = aggregate_claimed(s->conn, rows, total, &ao, now, &s->arena);
	}
	int k = 0;
	for (int i = 0; i < total; i++) {
		const struct outbox_row *row = &rows[i];
		if (k == room && i >= n && row->state != OUTBOX_MERGED) {
			unclaim(s, row, now);
			continue;
		}
		metrics_outbox_move(&s->app->metrics, row->priority, OUTBOX_PENDING,
		                    OUTBOX_SENDING);
		if (row->state == OUTBOX_MERGED) {
			metrics_outbox_move(&s->app->metrics, row->priority, OUTBOX_SENDING,
			                    OUTBOX_MERGED);
			continue;
		}
		if (k == room) {
			/* the store returned more than asked: the rest wait for
			 * release_lost rather than overrun the slots */
			log_error("send.claim_overrun", "claimed %d rows for %d free slots", n,
			          room);
			continue;
		}
		struct send_job *job = &s->claimed[k++];
		job->id = row->id;
		job->tenant_id = row->tenant_id;
		job->prio = row->priority;
		job->attempts = row->attempts;
		job->inbound_received_at = row->inbound_received_at;
		job->created_at = row->created_at;
		snprintf(job->to, sizeof(job->to), "%s", row->to ? row->to : "");
		snprintf(job->pin, sizeof(job->pin), "%s", row->provider ? row->provider : "");
		job->phone_number_id = xstrdup(row->phone_number_id ? row->phone_number_id : "");
		job->body = xstrdup(row->body ? row->body : "");
	}
	if (merged > 0)
		atomic_fetch_add_explicit(&s->app->metrics.outbox_merged, (uint64_t)merged,
		                          memory_order_relaxed);
	mine_mark(s, &s->claimed[0].id, k, sizeof(*s->claimed), 1);
	atomic_fetch_sub(&s->outstanding, room - k);
	int rc2 = hand_over_claimed(s, k);
	return rc2 < 0 ? rc2 : n;
}

/* ---- held rows ------------------------------------------------------------------ */

/*
 * expire_held: while no WhatsApp provider is up, P2/P3 rows wait in the
 * store; past cfg.hold_max_ms (the seed's hour) they are expired - DEAD,
 * with the reason, counted - rather than sent stale when WhatsApp returns.
 * P0/P1 rows never expire: they go by SMS, or wait.
 */
static void expire_held(struct sender *s, int64_t now)
{
	if (atomic_load(&s->claim_upto) >= PRIO_P2) {
		s->expire_at = 0;
		return;
	}
	if (now < s->expire_at)
		return;
	s->expire_at = now + SEND_EXPIRE_EVERY_MS;
	int64_t moved[PRIO_COUNT];
	int64_t hold = s->app->cfg.hold_max_ms;
	char why[96];
	snprintf(why, sizeof(why), "expired: held over %lld s while no WhatsApp provider was up",
	         (long long)(hold / 1000));
	if (store_outbox_expire(s->conn, PRIO_P2, now - hold, why, now, moved) != 0) {
		log_error("send.expire_failed", "could not expire held outbox rows: %s",
		          store_errmsg(s->conn));
		return;
	}
	int64_t total = 0;
	for (int p = 0; p < PRIO_COUNT; p++) {
		atomic_fetch_sub(&s->app->metrics.outbox[p][OUTBOX_PENDING], moved[p]);
		atomic_fetch_add(&s->app->metrics.outbox[p][OUTBOX_DEAD], moved[p]);
		total += moved[p];
	}
	if (total == 0)
		return;
	atomic_fetch_add(&s->expired, (uint64_t)total);
	log_warn("send.expired",
	         "%lld held replies expired (P2 %lld, P3 %lld): no WhatsApp provider for %lld s",
	         (long long)total, (long long)moved[PRIO_P2], (long long)moved[PRIO_P3],
	         (long long)(hold / 1000));
}

/* ---- the direct hand-over --------------------------------------------------- */

int sender_reserve(struct sender *s, enum outbox_prio prio)
{
	if (!s || atomic_load(&s->claims_closed) || atomic_load(&s->claim_upto) < (int)prio)
		return 0;
	/* under a traffic spike a reply waits in the outbox, where the claim
	 * merges it with the customer's others (aggregate.h); a P0 never merges */
	if (prio != PRIO_P0 && atomic_load(&s->app->aggregate))
		return 0;
	/* a reply waiting in the outbox at this priority or above goes first */
	for (int p = 0; p <= (int)prio && p < PRIO_COUNT; p++)
		if (atomic_load(&s->app->metrics.outbox[p][OUTBOX_PENDING]) > 0)
			return 0;
	return reserve_slots(s, 1);
}

void sender_hold(struct sender *s, int64_t id)
{
	if (s)
		mine_mark(s, &id, 1, sizeof(id), 1);
}

void sender_unreserve(struct sender *s, const struct outbox_row *rows, int n)
{
	if (!s || n <= 0)
		return;
	if (rows)
		mine_mark(s, &rows[0].id, n, sizeof(*rows), 0);
	atomic_fetch_sub(&s->outstanding, n);
}

void sender_give(struct sender *s, const struct outbox_row *rows, int n)
{
	if (!s || n <= 0)
		return;
	/* durable already: straight to the network thread, as a claim's rows
	 * go after their sync (held since sender_hold; a giver that did not
	 * hold them holds them now) */
	mine_mark(s, &rows[0].id, n, sizeof(*rows), 1);
	pthread_mutex_lock(&s->mu);
	for (int i = 0; i < n; i++) {
		/* each holds a reserved slot, so jobs never overflows */
		struct send_job *job = &s->jobs[s->njobs++];
		job->id = rows[i].id;
		job->tenant_id = rows[i].tenant_id;
		job->prio = rows[i].priority;
		job->attempts = 1;
		job->inbound_received_at = rows[i].inbound_received_at;
		job->created_at = clock_wall_ms();
		snprintf(job->to, sizeof(job->to), "%s", rows[i].to);
		job->pin[0] = '\0';
		job->phone_number_id = xstrdup(rows[i].phone_number_id);
		job->body = xstrdup(rows[i].body);
	}
	pthread_mutex_unlock(&s->mu);
	atomic_fetch_add_explicit(&s->app->metrics.sends_direct, (uint64_t)n, memory_order_relaxed);
	curl_loop_wake(&s->loop);
}

/*
 * woken_by_rows: after notify_wait saw the generation move from `before`,
 * did anyone besides the network thread (a worker with new rows) ring? The
 * network thread counts its rings before ringing, so this errs only
 * towards "no" for a ring still under way, which the next wait then
 * reports as "yes": one extra claim, never a missed one.
 */
static int woken_by_rows(struct sender *s, uint64_t before)
{
	uint64_t rings = atomic_load(&s->net_rings);
	uint64_t by_net = rings - s->net_rings_seen;
	s->net_rings_seen = rings;
	return s->seen - before > by_net;
}

static void recover_dead(struct sender *s, int *failing);
static void release_lost(struct sender *s, int *failing);

/* next_due: when the earliest pending row the sender may claim falls due
 * (after now), or 0: none, or no provider is up (the network thread rings
 * when one is). A store error gives a retry time. */
static int64_t next_due(struct sender *s, int64_t now)
{
	int64_t at = 0;
	int upto = atomic_load(&s->claim_upto);
	if (upto < 0)
		return 0;
	if (store_outbox_next_due(s->conn, (enum outbox_prio)upto, &at) != 0)
		return now + SEND_STORE_RETRY_MS;
	return at && at <= now ? now + 1 : at; /* just queued: next pass */
}

static void *recorder_main(void *arg)
{
	struct sender *s = arg;
	pthread_setname_np(pthread_self(), "send-record");
	int want = 1;               /* look for rows */
	int64_t next_sweep = 0;     /* look anyway at this time */
	int64_t store_retry_at = 0; /* next attempt at writing outcomes */
	int64_t gather_until = 0;   /* outcomes held: write them no sooner */
	int64_t ask_due_at = 0;     /* store_outbox_next_due no sooner, unless a row fell due */
	int closing = 0, final_failures = 0;
	/* the next look for dead senders' rows */
	int64_t recover_at = clock_wall_ms() + SEND_RECOVER_EVERY_MS;
	int recover_failing = 0, lost_failing = 0;
	for (;;) {
		if (!closing && send__stopping(s)) {
			closing = 1;
			atomic_store(&s->claims_closed, 1);
			curl_loop_wake(&s->loop);
		}
		/* read before taking: outcomes handed over before the network
		 * thread exited are all taken below */
		int net_gone = atomic_load(&s->net_exited);
		take_outcomes(s);
		int64_t now = clock_wall_ms();
		if (s->nheld > 0 && gather_until == 0)
			gather_until = now + SEND_GATHER_MS;
		int gathered =
		        closing || net_gone || now >= gather_until || s->nheld >= s->nslots / 2;
		if (s->nheld > 0 && gathered && now >= store_retry_at) {
			if (apply(s) != 0) {
				store_retry_at = now + SEND_STORE_RETRY_MS;
				if (net_gone && ++final_failures >= SEND_STOP_TRIES)
					break;
			} else {
				gather_until = 0;
			}
		}
		if (net_gone && s->nheld == 0)
			break;
		int by_due = s->due_at && now >= s->due_at;
		if (by_due || now >= next_sweep)
			want = 1;
		/* a claim holds the slots it asks for until the store answers;
		 * half the free ones stay free meanwhile for the direct hand-over,
		 * or every reply of that moment would wait in the outbox (and the
		 * later ones behind it) for the next claim */
		int room = atomic_load(&s->cap) - atomic_load(&s->outstanding);
		if (room > 1)
			room = (room + 1) / 2;
		int claimed = 0;
		if (!closing && ((want && room > 0) || s->nunsynced > 0)) {
			int got = claim(s, now, room);
			claimed = got > 0;
			if (got < 0) {
				want = 0;
				next_sweep = now + SEND_STORE_RETRY_MS;
			} else if (got < room) {
				/* every due row is ours. When the next one is due is a
				 * look at every partition: asked only when a row fell
				 * due, and once a sweep; between, the earliest due row
				 * known (settle keeps its own retries') stands */
				want = 0;
				next_sweep = now + SEND_SWEEP_MS;
				if (by_due || now >= ask_due_at) {
					ask_due_at = now + SEND_SWEEP_MS;
					s->due_at = next_due(s, now);
				}
			}
		}
		if (!closing)
			expire_held(s, now);
		if (!closing && now >= recover_at) {
			recover_at = now + SEND_RECOVER_EVERY_MS;
			recover_dead(s, &recover_failing);
			if (s->nheld == 0)
				release_lost(s, &lost_failing);
		}
		if (!claimed)
			sync_applied(s);
		int64_t wake = next_sweep;
		if (s->due_at)
			wake = min64(wake, s->due_at);
		if (s->nheld > 0)
			wake = min64(wake, max64(store_retry_at, gather_until));
		int64_t wait = wake - clock_wall_ms();
		if (wait > SEND_SWEEP_MS)
			wait = SEND_SWEEP_MS;
		if (wait < 0)
			wait = 0;
		uint64_t before = s->seen;
		if (notify_wait(&s->app->outbox_ready, &s->seen, (int)wait) &&
		    woken_by_rows(s, before))
			want = 1;
	}
	sync_applied(s);
	s->unrecorded = s->nheld;
	return NULL;
}

/* ---- metrics ------------------------------------------------------------------ */

static void help(struct buf *out, const char *name, const char *type, const char *text)
{
	buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

/* One sample of a per-provider counter: metric{provider="p",label="value"} v. */
static void counter(struct buf *out, const char *metric, const struct provider *p,
                    const char *label, const char *value, const _Atomic uint64_t *v)
{
	buf_printf(out, "%s{provider=\"%s\",%s=\"%s\"} %llu\n", metric, p->name, label, value,
	           (unsigned long long)atomic_load(v));
}

void sender_render_metrics(struct sender *s, struct buf *out)
{
	if (!s)
		return;
	const struct provider_list *l = &s->providers;
	help(out, "munim_breaker_state", "gauge",
	     "Circuit breaker of each provider: 0 closed, 1 open, 2 half-open.");
	for (int i = 0; i < l->n; i++)
		buf_printf(out, "munim_breaker_state{provider=\"%s\"} %d\n", l->p[i].name,
		           atomic_load(&l->p[i].state));
	help(out, "munim_provider_info", "gauge",
	     "The providers in failover order (bsp1, bsp2, ..., sms) and their URLs.");
	for (int i = 0; i < l->n; i++) {
		buf_printf(out, "munim_provider_info{provider=\"%s\",order=\"%d\",url=\"",
		           l->p[i].name, i + 1);
		/* a label value escapes backslash, quote and newline */
		for (const char *c = l->p[i].url; *c; c++) {
			if (*c == '\\' || *c == '"')
				buf_putc(out, '\\');
			if (*c == '\n')
				buf_puts(out, "\\n");
			else
				buf_putc(out, *c);
		}
		buf_puts(out, "\"} 1\n");
	}
	help(out, "munim_breaker_transitions_total", "counter",
	     "Breaker state changes by provider and the state entered.");
	for (int i = 0; i < l->n; i++) {
		const struct provider *p = &l->p[i];
		counter(out, "munim_breaker_transitions_total", p, "to", "open", &p->opened);
		counter(out, "munim_breaker_transitions_total", p, "to", "half_open",
		        &p->half_opened);
		counter(out, "munim_breaker_transitions_total", p, "to", "closed", &p->closed);
	}
	help(out, "munim_provider_sends_total", "counter",
	     "Requests to each provider: all started, accepted, and failures counted against "
	     "its breaker.");
	for (int i = 0; i < l->n; i++) {
		const struct provider *p = &l->p[i];
		counter(out, "munim_provider_sends_total", p, "result", "started", &p->sends);
		counter(out, "munim_provider_sends_total", p, "result", "accepted", &p->accepted);
		counter(out, "munim_provider_sends_total", p, "result", "failure", &p->failures);
	}
	help(out, "munim_outbox_expired_total", "counter",
	     "Held P2/P3 replies expired while no WhatsApp provider was up.");
	buf_printf(out, "munim_outbox_expired_total %llu\n",
	           (unsigned long long)atomic_load(&s->expired));
	help(out, "munim_alerts_total", "counter", "Alerts posted to the alert hook, by result.");
	buf_printf(out,
	           "munim_alerts_total{result=\"sent\"} %llu\n"
	           "munim_alerts_total{result=\"failed\"} %llu\n",
	           (unsigned long long)atomic_load(&s->alerts_sent),
	           (unsigned long long)atomic_load(&s->alerts_failed));
	buf_printf(out, "munim_alerts_total{result=\"dropped\"} %llu\n",
	           (unsigned long long)atomic_load(&s->alerts_dropped));
}

/* ---- start-up ------------------------------------------------------------- */

struct replay_ctx {
	struct sender *s;
	int64_t now;
	int records;
	int recorded;    /* rows this replay moved to ACCEPTED */
	int store_rc;    /* the store's error that stopped the replay */
	int read_failed; /* the journal could not be read (logged) */
};

static int replay_record(int64_t row_id, const char *msg_id, void *ud)
{
	struct replay_ctx *ctx = ud;
	ctx->records++;
	/* which provider took it is not journaled: the row names none */
	int rc = store_outbox_accepted(ctx->s->conn, row_id, msg_id, "", ctx->now, NULL);
	if (rc == 0)
		ctx->recorded++;
	/* already recorded (or gone): the record has nothing left to say */
	if (rc == ERR_CONFLICT || rc == ERR_NOTFOUND)
		rc = 0;
	ctx->store_rc = rc;
	return rc;
}

/* The store's outbox counts before and after a move of rows in bulk. */
struct counts_around {
	int64_t before[PRIO_COUNT][OUTBOX_STATE_COUNT];
	int64_t after[PRIO_COUNT][OUTBOX_STATE_COUNT];
};

/*
 * counted runs move(s, ctx), a move of rows in bulk (the journal's replay,
 * a recovery, a put-back), in a transaction of its own between two reads
 * of the store's outbox counts (the store keeps them: reading is cheap),
 * and commits; on any error it rolls back and returns it. The gauges
 * follow (follow_counts) once the caller knows the move is real.
 */
static int counted(struct sender *s, int (*move)(struct sender *s, void *ctx), void *ctx,
                   struct counts_around *ca)
{
	int rc = store_begin(s->conn);
	if (rc == 0)
		rc = store_outbox_counts(s->conn, ca->before);
	if (rc == 0)
		rc = move(s, ctx);
	if (rc == 0)
		rc = store_outbox_counts(s->conn, ca->after);
	if (rc == 0)
		rc = store_commit(s->conn);
	if (rc != 0)
		store_rollback(s->conn);
	return rc;
}

/* follow_counts moves the outbox gauges by a counted move's difference. */
static void follow_counts(struct metrics *m, const struct counts_around *ca)
{
	for (int p = 0; p < PRIO_COUNT; p++)
		for (int st = 0; st < OUTBOX_STATE_COUNT; st++)
			atomic_fetch_add_explicit(&m->outbox[p][st],
			                          ca->after[p][st] - ca->before[p][st],
			                          memory_order_relaxed);
}

static int replay_move(struct sender *s, void *ud)
{
	struct replay_ctx *ctx = ud;
	const char *path = s->app->cfg.send_journal;
	int rc = journal_replay(path, replay_record, ctx);
	if (rc != 0 && ctx->store_rc == 0) {
		log_error("send.start_failed", "could not read the send journal \"%s\": %s", path,
		          strerror(errno));
		ctx->read_failed = 1;
	}
	return rc;
}

/*
 * replay_journal records, in one transaction, the acceptances a crash kept
 * from the store, moving the gauges SENDING -> ACCEPTED by priority (the
 * counts before and after, inside the transaction), then empties the
 * journal. Logged on error.
 */
static int replay_journal(struct sender *s)
{
	struct counts_around ca;
	struct replay_ctx ctx = {.s = s, .now = clock_wall_ms()};
	const char *path = s->app->cfg.send_journal;
	int rc = counted(s, replay_move, &ctx, &ca);
	if (rc != 0) {
		if (!ctx.read_failed)
			log_error("send.start_failed",
			          "could not record the send journal's acceptances: %s",
			          store_errmsg(s->conn));
		return rc;
	}
	/* on disk before the journal that held them goes */
	if ((rc = store_sync(s->conn)) != 0) {
		log_error("send.start_failed",
		          "could not record the send journal's acceptances: %s",
		          store_errmsg(s->conn));
		return rc;
	}
	follow_counts(&s->app->metrics, &ca);
	log_info("send.journal_replayed",
	         "%d sends the provider accepted before a crash recorded from the send journal "
	         "(%d records)",
	         ctx.recorded, ctx.records);
	if (journal_truncate(s->journal) != 0) {
		log_error("send.start_failed", "could not truncate the send journal \"%s\": %s",
		          path, strerror(errno));
		return ERR_IO;
	}
	return 0;
}

/*
 * take_back runs store_outbox_recover in a transaction of its own, due
 * after the grace; *n rows went back. The gauges follow the store's counts
 * only when rows moved: in between, other processes' commits move the
 * counts too. 0, or the store's error (rolled back).
 */
static int recover_move(struct sender *s, void *n)
{
	return store_outbox_recover(s->conn, clock_wall_ms() + s->app->cfg.send_recover_grace_ms,
	                            n);
}

static int take_back(struct sender *s, int *n)
{
	struct counts_around ca;
	*n = 0;
	int rc = counted(s, recover_move, n, &ca);
	if (rc != 0) {
		*n = 0;
		return rc;
	}
	if (*n > 0)
		follow_counts(&s->app->metrics, &ca);
	return 0;
}

/*
 * recover puts rows a crash left SENDING back to PENDING, moving the
 * gauges that serve loaded from the store (store_outbox_counts) with them.
 * Whether the provider got such a send is unknown: the journal holds only
 * the answers that arrived. So they wait cfg.send_recover_grace_ms before
 * going out again: a send the provider did accept is followed by its status
 * webhook, which carries our row id (biz_opaque_callback_data, see
 * wamsg_with_callback) and marks the row accepted (store_outbox_status),
 * so it is not sent twice.
 */
static int recover(struct sender *s)
{
	int n = 0;
	int rc = take_back(s, &n);
	if (rc != 0) {
		log_error("send.recover_failed", "could not recover interrupted sends: %s",
		          store_errmsg(s->conn));
		return rc;
	}
	log_info("send.recovered",
	         "%d interrupted sends returned to the queue, resent after %lld ms unless the "
	         "provider reports them first",
	         n, (long long)s->app->cfg.send_recover_grace_ms);
	return 0;
}

/*
 * recover_dead takes back the sends of senders that died (their node's
 * lease ran out; store_outbox_recover spares live nodes and this one), due
 * after the grace as at start-up. Only with a node: without one, every
 * SENDING row, this sender's own, would count as a dead sender's. Errors
 * are logged once per outage (*failing).
 */
static void recover_dead(struct sender *s, int *failing)
{
	int n = 0;
	if (store_node(s->app->store) == 0)
		return;
	if (take_back(s, &n) != 0) {
		if (!*failing)
			log_warn("send.recover_failed",
			         "could not look for the sends of stopped senders: %s",
			         store_errmsg(s->conn));
		*failing = 1;
		return;
	}
	*failing = 0;
	if (n > 0)
		log_info("send.recovered",
		         "%d interrupted sends returned to the queue from a stopped sender, resent "
		         "after %lld ms unless the provider reports them first",
		         n, (long long)s->app->cfg.send_recover_grace_ms);
}

/*
 * lost_rows: of ids[0..n), listed SENDING under this node, the ones this
 * sender does not hold, moved to the front; how many.
 */
static int lost_rows(struct sender *s, int64_t *ids, int n)
{
	int k = 0;
	pthread_mutex_lock(&s->mine_mu);
	for (int i = 0; i < n; i++)
		if (!idset_has(&s->mine, ids[i]))
			ids[k++] = ids[i];
	pthread_mutex_unlock(&s->mine_mu);
	return k;
}

/*
 * release_lost puts back, due now, the rows this node has SENDING that
 * this sender does not hold: rows whose claim, or whose worker's commit,
 * happened although its answer was lost with the connection (a failover
 * mid-commit), a put-back (unclaim) lost likewise, rows a claim returned
 * beyond its slots. None reached the network thread, so none was sent,
 * and the attempt its claim counted is given back (store_outbox_defer).
 *
 * Held rows are never taken: a worker holds its row (sender_hold) before
 * the commit that makes it visible, and only this thread lets a row go
 * (apply) - between the listing and the put-back nothing is let go. Only
 * rows that have not moved for lost_after_ms are looked at, so a row's
 * ordinary way through (claim, hand-over, send, record) never meets this.
 * The gauges follow the store's counts. Errors are logged once per outage
 * (*failing); the rows stay for the next look.
 */
/* The rows release_lost puts back, and how many went. */
struct lost {
	const int64_t *ids;
	int n, put;
	int64_t now;
};

static int put_back(struct sender *s, void *ud)
{
	struct lost *l = ud;
	for (int i = 0; i < l->n; i++) {
		int rc =
		        store_outbox_defer(s->conn, l->ids[i], l->now,
		                           "taken back: its claim's answer was lost", l->now, NULL);
		if (rc == ERR_CONFLICT || rc == ERR_NOTFOUND) /* moved since the listing */
			continue;
		if (rc != 0)
			return rc;
		l->put++;
	}
	return 0;
}

static void release_lost(struct sender *s, int *failing)
{
	struct counts_around ca;
	int64_t now = clock_wall_ms(), *ids;
	int n = 0;
	arena_reset(&s->arena);
	int rc = store_outbox_claimed_here(s->conn, now - s->lost_after_ms, SEND_LOST_MAX,
	                                   &s->arena, &ids, &n);
	struct lost l = {.ids = ids, .n = rc == 0 ? lost_rows(s, ids, n) : 0, .now = now};
	if (rc == 0 && l.n > 0)
		rc = counted(s, put_back, &l, &ca);
	if (rc != 0) {
		if (!*failing)
			log_warn("send.release_failed",
			         "could not put back sends whose claim was lost: %s",
			         store_errmsg(s->conn));
		*failing = 1;
		return;
	}
	*failing = 0;
	if (l.n == 0)
		return;
	follow_counts(&s->app->metrics, &ca);
	if (l.put > 0) {
		log_warn(
		        "send.claims_lost",
		        "%d rows this node had claimed without this sender holding them (an answer "
		        "lost with the store's connection) put back, due now",
		        l.put);
		s->due_at = now;
	}
}

/* ---- lifecycle ------------------------------------------------------------ */

static void sender_free(struct sender *s)
{
	if (!s)
		return;
	send__net_release(s);
	for (int i = 0; s->jobs && i < s->njobs; i++) /* handed over, never started */
		send__job_release(&s->jobs[i]);
	free(s->jobs);
	free(s->outs);
	free(s->held);
	free(s->claimed);
	if (s->loop.multi)
		curl_loop_release(&s->loop);
	provider_list_release(&s->providers);
	journal_close(s->journal);
	if (s->conn)
		store_disconnect(s->conn);
	arena_release(&s->arena);
	pthread_mutex_destroy(&s->mu);
	pthread_mutex_destroy(&s->mine_mu);
	idset_free(&s->mine);
	free(s);
	curl_global_cleanup();
}

/* open_journal opens the configured journal and replays it; logged on error. */
static int open_journal(struct sender *s)
{
	const char *path = s->app->cfg.send_journal;
	if (!path || !*path) {
		log_info("send.no_journal", "no send journal: a crash may send again every "
		                            "request in flight");
		return 0;
	}
	if (journal_open(path, &s->journal) != 0) {
		log_error("send.start_failed", "could not open the send journal \"%s\": %s", path,
		          strerror(errno));
		return ERR_IO;
	}
	return replay_journal(s);
}

static int make_multi(struct sender *s)
{
	int rc = curl_loop_init(&s->loop);
	if (rc != 0) {
		log_error("send.start_failed", "could not create the curl multi handle: %s",
		          err_str(rc));
		return rc;
	}
	long conns = s->nslots > SEND_MIN_HOST_CONNS ? s->nslots : SEND_MIN_HOST_CONNS;
	curl_multi_setopt(s->loop.multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
	/* the connection cache must hold them all, or keep-alive is lost */
	curl_multi_setopt(s->loop.multi, CURLMOPT_MAXCONNECTS, conns);
	return 0;
}

/* join waits for whichever threads run. */
static void join(struct sender *s)
{
	atomic_store(&s->stop, 1);
	if (!s->rec_started) /* nobody else will tell the network thread */
		atomic_store(&s->claims_closed, 1);
	notify_signal(&s->app->outbox_ready);
	if (s->loop.multi)
		curl_loop_wake(&s->loop);
	if (s->rec_started)
		pthread_join(s->rec_thread, NULL);
	if (s->net_started)
		pthread_join(s->net_thread, NULL);
	s->rec_started = s->net_started = 0;
}

int sender__start(struct app *app, const struct send_hooks *hooks, struct sender **out)
{
	*out = NULL;
	const struct config *cfg = &app->cfg;
	if (!cfg->bsp_url || !cfg->graph_version) {
		log_error("send.start_failed", "the sender needs bsp-url and graph-version");
		return ERR_INVAL;
	}
	struct provider_list providers;
	if (provider_list_init(&providers, cfg) != 0) /* logged */
		return ERR_INVAL;
	struct pace_config pc;
	pace_config_default(&pc);
	pc.per_second = (int)cfg->pace_per_number;
	struct pace *pace;
	if (pace_new(&pc, &pace) != 0) {
		log_error("send.start_failed", "the pacing settings are out of bounds");
		provider_list_release(&providers);
		return ERR_INVAL;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("send.start_failed", "could not initialise libcurl");
		provider_list_release(&providers);
		pace_free(pace);
		return ERR_NOMEM;
	}
	struct sender *s = xcalloc(1, sizeof(*s));
	s->app = app;
	s->providers = providers;
	s->pace = pace;
	atomic_store(&s->claim_upto, PRIO_P3);
	atomic_store(&s->bsps_up, providers.nwa); /* until the network thread looks */
	atomic_store(&s->bsps_delivering, providers.nwa);
	for (int i = 0; i < PROVIDER_MAX; i++)
		s->delivering[i] = 1;
	buf_init(&s->alerts.body);
	if (hooks)
		s->hooks = *hooks;
	s->journal_max = s->hooks.journal_max > 0 ? s->hooks.journal_max : SEND_JOURNAL_MAX;
	s->lost_after_ms = s->hooks.lost_after_ms > 0 ? s->hooks.lost_after_ms : SEND_LOST_AFTER_MS;
	pthread_mutex_init(&s->mu, NULL);
	pthread_mutex_init(&s->mine_mu, NULL);
	arena_init(&s->arena, 64 * 1024);
	arena_init(&s->resp_arena, 4096);
	s->nslots = (int)cfg->send_inflight;
	atomic_store(&s->cap, s->nslots); /* until the controller sizes it */
	size_t n = (size_t)s->nslots;
	s->slots = xcalloc(n, sizeof(*s->slots));
	for (int i = 0; i < s->nslots; i++) {
		buf_init(&s->slots[i].url);
		buf_init(&s->slots[i].body);
		buf_init(&s->slots[i].resp);
	}
	s->jobs = xcalloc(n, sizeof(*s->jobs));
	s->jobs_spare = xcalloc(n, sizeof(*s->jobs_spare));
	s->claimed = xcalloc(n, sizeof(*s->claimed));
	s->outs = xcalloc(n, sizeof(*s->outs));
	s->held = xcalloc(n, sizeof(*s->held));
	idset_init(&s->mine, n);

	int rc = store_connect(app->store, &s->conn);
	/* durability where it matters comes from store_sync; with writers side
	 * by side every commit is durable itself (store_shared_writers: a
	 * lazy commit lost in a failover must not be taken for recorded) */
	if (rc == 0 && !store_shared_writers(app->store))
		rc = store_set_lazy_commits(s->conn, 1);
	if (rc != 0) {
		log_error("send.start_failed", "could not connect to the store: %s", err_str(rc));
		s->conn = NULL;
		goto fail;
	}
	/* the journal first: its rows are accepted, not interrupted */
	if ((rc = open_journal(s)) != 0 || (rc = recover(s)) != 0 || (rc = make_multi(s)) != 0)
		goto fail;

	int err = pthread_create(&s->net_thread, NULL, send__net_main, s);
	s->net_started = err == 0;
	if (err == 0) {
		err = pthread_create(&s->rec_thread, NULL, recorder_main, s);
		s->rec_started = err == 0;
	}
	if (err != 0) {
		log_error("send.start_failed", "could not start a sender thread: %s",
		          strerror(err));
		rc = ERR_NOMEM;
		join(s);
		goto fail;
	}
	struct buf to;
	buf_init(&to);
	for (int i = 0; i < s->providers.n; i++)
		buf_printf(&to, "%s%s %s", i ? ", " : "", s->providers.p[i].name,
		           s->providers.p[i].url);
	log_info("send.started", "sender started: %d in flight at most, through %s%s%s", s->nslots,
	         to.data, s->journal ? "; journal " : "", s->journal ? cfg->send_journal : "");
	buf_release(&to);
	*out = s;
	return 0;
fail:
	sender_free(s);
	return rc;
}

/*
 * sender_start replays the send journal into the store, returns
 * interrupted sends to the queue and starts the recorder and network
 * threads. app must outlive the sender and the metrics' outbox gauges must
 * already hold the store's counts. Returns 0, ERR_INVAL (no access token),
 * ERR_IO (the journal), or the store's or curl's error (all logged).
 */
int sender_start(struct app *app, struct sender **out)
{
	return sender__start(app, NULL, out);
}

/*
 * sender_stop asks both threads to stop: the recorder stops claiming, the
 * network thread finishes the sends in flight (bounded by the send
 * timeout), the recorder records their outcomes. Then an all-recorded
 * journal is emptied and everything freed. NULL is a no-op. Call once,
 * from the thread that started it.
 */
void sender_stop(struct sender *s)
{
	if (!s)
		return;
	join(s);
	if (s->unanswered > 0 || s->unrecorded > 0)
		log_warn("send.stop_unfinished",
		         "%d sends unanswered and %d outcomes unrecorded at stop; their rows are "
		         "retried after restart unless the send journal has them",
		         s->unanswered, s->unrecorded);
	/* a clean stop leaves an empty journal: nothing to replay, and no
	 * stale file if the store is replaced */
	if (s->journal && atomic_load(&s->applied) == s->journaled &&
	    journal_size(s->journal) > 0 && journal_truncate(s->journal) != 0)
		log_warn("send.journal_truncate_failed",
		         "could not truncate the send journal \"%s\": %s", s->app->cfg.send_journal,
		         strerror(errno));
	sender_free(s);
}

void sender_resize(struct sender *s, int n)
{
	if (!s)
		return;
	if (n < 1)
		n = 1;
	if (n > s->nslots)
		n = s->nslots;
	if (atomic_exchange(&s->cap, n) < n)
		notify_signal(&s->app->outbox_ready); /* room to claim into */
}

int sender_inflight_cap(struct sender *s)
{
	return s ? atomic_load(&s->cap) : 0;
}
