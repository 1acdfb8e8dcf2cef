/*
 * worker.c - the threads that turn inbox entries into ERP effects and
 * replies.
 *
 * Design
 *   The process reads the partitions its lease keeper holds (lease.c:
 *   with other worker processes, its fair share; alone, all 64). Thread i
 *   of n reads the pending entries of those partitions p with p % n == i
 *   (store_inbox_pending), oldest first. A tenant lives in one partition,
 *   so one customer's messages are always handled by the same thread in
 *   the order they arrived; other shops proceed in parallel. A partition
 *   coming or going from the lease never moves between threads, and one
 *   given back to the store leaves only between batches (lease_hold).
 *
 *   A thread reads only the partitions rung for since it last looked
 *   (app_inbox_wake: the ingest's new entries, another process's NOTIFY
 *   naming its partitions), the ones its last read left entries in, and
 *   every partition of its share at least every WORKER_IDLE_WAIT_MS, so a
 *   wake-up lost or merged costs that much latency, never an entry.
 *
 *   A batch of entries shares one transaction (one commit, lazy: it waits
 *   for no disk; the sender's sync before a reply goes makes it durable).
 *   It runs fast first, its entries side by side; if one fails, it is
 *   rolled back and runs again carefully, each entry in its own savepoint:
 *
 *       BEGIN                                  (fast)
 *         erp_handle + inbox done, ...   the replies together   COMMIT
 *         (an entry fails: ROLLBACK, and again, carefully:)
 *       BEGIN
 *         SAVEPOINT  erp_handle + outbox rows + inbox done   RELEASE
 *         SAVEPOINT  (error) ROLLBACK TO, record the attempt  RELEASE
 *         ...
 *       COMMIT                         → wake the sender
 *
 *   so every message has its whole effect exactly once or not at all, and
 *   a redelivered wamid never reaches a worker (the inbox deduplicates).
 *
 * Invariants
 *   - An entry that failed keeps its place: later entries of the same
 *     customer in the batch wait for the next batch, so order holds.
 *   - After cfg.process_attempts failures an entry is set aside (FAILED)
 *     and the customer gets an apology instead of silence.
 *   - Metrics move only after the commit that makes a change real.
 *
 * The per-entry work is a runner (struct worker_runner, worker.h): each
 * worker thread has one, and so does the ingest committer, which runs a
 * webhook's messages inside that webhook's own commit unless their
 * customer has a message waiting here (ingest.c, "the fast path";
 * backlog.c). A worker takes such a customer out of the backlog once the
 * commit that finishes the entry has landed.
 *
 * Threading: each thread owns its store connection, runner and arenas;
 * shared state is only app (metrics atomics, notifies, flags).
 */
#include "worker/worker.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "erp/erp.h"
#include "send/sender.h"
#include "send/wamsg.h"
#include "worker/backlog.h"
#include "worker/lease.h"

#define WORKER_IDLE_WAIT_MS  200
#define WORKER_ERROR_WAIT_MS 100
/* The largest batch (the bound of the worker-batch setting). */
#define WORKER_MAX_BATCH 1024

/* Written by worker_pool_start before the thread runs; then the thread's. */
/* Catalogue cache slots per worker (erp/cache.c: at most 64 KiB each). */
#define WORKER_CATALOG_SLOTS 128

struct worker {
	struct worker_pool *pool;
	int index;
	struct store_conn *conn;      /* opened by worker_pool_start */
	struct worker_runner *runner; /* this thread's */
	pthread_t thread;
	int started;
};

/*
 * The pool runs n threads (--workers-max), of which the first `active` work
 * (worker_pool_resize; --workers at start); the active ones divide the
 * inbox partitions among themselves (p % active == index). A batch runs
 * under resize_lock held shared; a resize takes it exclusive, so it waits
 * for the batches in flight and no partition is ever worked by two threads
 * at once (a customer's messages stay in order). Writers go first, so a
 * busy pool cannot starve a resize.
 */
struct worker_pool {
	struct app *app;
	int n;
	struct worker *workers;
	_Atomic int active;
	pthread_rwlock_t resize_lock;
	_Atomic int stop; /* set by worker_pool_stop */
};

/* What one committed batch changes in the metrics. */
struct batch_stats {
	int done;                           /* entries leaving the pending state */
	int failed_attempts;                /* processing errors */
	int64_t outbox_new[PRIO_COUNT];     /* rows queued PENDING */
	int64_t erp_queued[PRIO_COUNT];     /* of those, rows the ERP wrote itself */
	int64_t outbox_sending[PRIO_COUNT]; /* rows born claimed (the direct hand-over) */
	int64_t outbox_failed[PRIO_COUNT];  /* PENDING rows the ERP failed (an opt-out) */
	int nmoves;                         /* status-driven outbox state moves */
	struct send_move moves[WORKER_MAX_BATCH];
	int64_t latency_from[WORKER_MAX_BATCH]; /* received_at of processed messages */
	int nlat;
};

/*
 * The shops a transaction read ahead (worker_runner_prefetch): t[0..n) in
 * the order of their ids, their strings in arena; want[0..nwant): the ids
 * to read. A shop read ahead serves its first message only: that message
 * may change it (any change to its products moves catalog_rev, on which
 * the catalogue cache relies), so a later one reads it again.
 */
struct tenant_memo {
	struct tenant *t;
	int n, cap;
	struct arena arena;
	int64_t *want;
	int nwant, want_cap;
};

/* Is (tenant, customer) blocked for the rest of this batch? */
struct blocked {
	int n;
	int64_t tenant[WORKER_MAX_BATCH];
	const char *from[WORKER_MAX_BATCH];
};

struct worker_runner {
	struct app *app;
	struct erp_cache *catalogs; /* this thread's copies of catalogues */
	struct arena msg_arena;     /* one entry's scratch */
	struct batch_stats bs;      /* of the transaction in progress */
	struct blocked blk;
	struct tenant_memo shops; /* of the transaction in progress */
	/* the direct hand-over (NULL: rows are queued PENDING): rows born
	 * claimed, their strings in given_arena; given[0..ncommitted) are
	 * committed and wait for a durable commit, the rest belong to the
	 * transaction in progress */
	struct sender *direct;
	struct outbox_row *given;
	int ngiven, ncommitted, given_cap;
	struct arena given_arena;
	/* replies waiting for worker_runner_flush (fast), their strings in
	 * pend_arena */
	struct outbox_new *pend;
	int npend, pend_cap;
	struct arena pend_arena;
	/* careful: each entry in a savepoint, each reply written as it comes;
	 * set when an entry or the flush of a fast transaction failed (again:
	 * in this transaction, which is to run once more), cleared by a commit */
	int careful;
	int again;
	/* the replies this transaction queued PENDING: whom to (recipient_key)
	 * and at what priority, so a later reply to the same customer waits
	 * behind them (born_claimed) */
	struct waiting {
		uint64_t who;
		int prio;
	} * waiting;
	int nwaiting, waiting_cap;
};

/* What an entry has added so far, to take back if it is undone. */
struct entry_mark {
	int64_t outbox_new[PRIO_COUNT];
	int64_t erp_queued[PRIO_COUNT];
	int nwaiting;
	int64_t outbox_sending[PRIO_COUNT];
	int64_t outbox_failed[PRIO_COUNT];
	int nmoves;
	int ngiven;
	int npend;
};

static void mark_entry(const struct worker_runner *r, struct entry_mark *m)
{
	memcpy(m->outbox_new, r->bs.outbox_new, sizeof(m->outbox_new));
	memcpy(m->erp_queued, r->bs.erp_queued, sizeof(m->erp_queued));
	m->nwaiting = r->nwaiting;
	memcpy(m->outbox_sending, r->bs.outbox_sending, sizeof(m->outbox_sending));
	memcpy(m->outbox_failed, r->bs.outbox_failed, sizeof(m->outbox_failed));
	m->nmoves = r->bs.nmoves;
	m->ngiven = r->ngiven;
	m->npend = r->npend;
}

/* drop_pending forgets the replies waiting from the k-th on, giving back
 * the sender's slots of those born claimed. */
static void drop_pending(struct worker_runner *r, int k)
{
	int claimed = 0;
	for (int i = k; i < r->npend; i++)
		claimed += r->pend[i].claimed != 0;
	if (claimed)
		sender_unreserve(r->direct, NULL, claimed);
	r->npend = k;
}

/* After a rollback to the entry's savepoint: its rows are gone. */
static void undo_entry(struct worker_runner *r, const struct entry_mark *m)
{
	memcpy(r->bs.outbox_new, m->outbox_new, sizeof(m->outbox_new));
	memcpy(r->bs.erp_queued, m->erp_queued, sizeof(m->erp_queued));
	r->nwaiting = m->nwaiting;
	memcpy(r->bs.outbox_sending, m->outbox_sending, sizeof(m->outbox_sending));
	memcpy(r->bs.outbox_failed, m->outbox_failed, sizeof(m->outbox_failed));
	r->bs.nmoves = m->nmoves;
	sender_unreserve(r->direct, r->given + m->ngiven, r->ngiven - m->ngiven);
	r->ngiven = m->ngiven;
	drop_pending(r, m->npend);
}

/* A customer, for the waiting list: equal for equal customers (a collision
 * only makes a reply wait that need not). */
static uint64_t recipient_key(int64_t tenant_id, const char *to)
{
	return hash_u64((uint64_t)tenant_id) ^ hash_fnv1a(to, strlen(to));
}

/*
 * born_claimed: may this reply (of o) skip the outbox's claim? Not if a
 * row of its priority or above went PENDING earlier in this transaction
 * that it could overtake: a reply to the same customer, or any row the ERP
 * wrote itself (whose recipient the runner does not see). Replies to other
 * customers go on: queued PENDING, one reply does not hold back the rest of
 * its transaction. Then only if the sender reserves a slot for it
 * (sender_reserve, which also holds it behind rows waiting from earlier
 * commits).
 */
static int born_claimed(struct worker_runner *r, const struct outbox_new *o)
{
	if (!r->direct)
		return 0;
	for (int p = 0; p <= (int)o->priority; p++)
		if (r->bs.erp_queued[p] > 0)
			return 0;
	uint64_t who = recipient_key(o->tenant_id, o->to);
	for (int i = 0; i < r->nwaiting; i++)
		if (r->waiting[i].who == who && r->waiting[i].prio <= (int)o->priority)
			return 0;
	return sender_reserve(r->direct, o->priority);
}

/* o goes PENDING: later replies to its customer wait behind it. */
static void note_waiting(struct worker_runner *r, const struct outbox_new *o)
{
	if (r->nwaiting == r->waiting_cap) {
		r->waiting_cap = r->waiting_cap ? r->waiting_cap * 2 : 16;
		r->waiting = xrealloc(r->waiting, (size_t)r->waiting_cap * sizeof(*r->waiting));
	}
	r->waiting[r->nwaiting++] =
	        (struct waiting){recipient_key(o->tenant_id, o->to), (int)o->priority};
}

/* Keeps what sender_give will need of a row born claimed. */
static void keep_given(struct worker_runner *r, const struct outbox_new *o, int64_t id)
{
	if (r->ngiven == r->given_cap) {
		r->given_cap = r->given_cap ? r->given_cap * 2 : 16;
		r->given = xrealloc(r->given, (size_t)r->given_cap * sizeof(*r->given));
	}
	struct outbox_row *row = &r->given[r->ngiven++];
	memset(row, 0, sizeof(*row));
	row->id = id;
	row->tenant_id = o->tenant_id;
	row->priority = o->priority;
	row->state = OUTBOX_SENDING;
	row->attempts = 1;
	row->inbound_received_at = o->inbound_received_at;
	row->to = arena_strdup(&r->given_arena, o->to);
	row->phone_number_id = arena_strdup(&r->given_arena, o->phone_number_id);
	row->body = arena_strdup(&r->given_arena, o->body);
}

/* The place of tenant id in m, or where it would go (*hit 0). */
static int memo_find(const struct tenant_memo *m, int64_t id, int *hit)
{
	int lo = 0, hi = m->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2;
		if (m->t[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	*hit = lo < m->n && m->t[lo].id == id;
	return lo;
}

static void memo_put(struct tenant_memo *m, const struct tenant *t)
{
	int hit, at = memo_find(m, t->id, &hit);
	if (hit)
		return;
	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 32;
		m->t = xrealloc(m->t, (size_t)m->cap * sizeof(*m->t));
	}
	memmove(&m->t[at + 1], &m->t[at], (size_t)(m->n - at) * sizeof(*m->t));
	m->t[at] = *t;
	m->n++;
}

static void memo_clear(struct tenant_memo *m)
{
	m->n = 0;
	m->nwant = 0;
	arena_reset(&m->arena);
}

/* *out: shop id as read ahead, taken (once), or else read now. */
static int runner_tenant(struct worker_runner *r, struct store_conn *c, int64_t id,
                         struct tenant *out)
{
	struct tenant_memo *m = &r->shops;
	int hit, at = memo_find(m, id, &hit);
	if (!hit)
		return store_tenant_get(c, id, &m->arena, out);
	*out = m->t[at];
	memmove(&m->t[at], &m->t[at + 1], (size_t)(m->n - at - 1) * sizeof(*m->t));
	m->n--;
	return 0;
}

void worker_runner_expect(struct worker_runner *r, int64_t tenant_id)
{
	struct tenant_memo *m = &r->shops;
	if (m->nwant == m->want_cap) {
		m->want_cap = m->want_cap ? m->want_cap * 2 : 64;
		m->want = xrealloc(m->want, (size_t)m->want_cap * sizeof(*m->want));
	}
	m->want[m->nwant++] = tenant_id;
}

static int cmp_i64(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
	return (a > b) - (a < b);
}

/* The most shops read by one store_tenants_get. */
#define WORKER_PREFETCH_MAX 1000

int worker_runner_prefetch(struct worker_runner *r, struct store_conn *c)
{
	struct tenant_memo *m = &r->shops;
	int64_t *ids = m->want;
	int n = 0, hit;
	if (m->nwant == 0)
		return 0;
	qsort(ids, (size_t)m->nwant, sizeof(*ids), cmp_i64);
	for (int i = 0; i < m->nwant; i++) { /* each once, and not those read ahead */
		if (n > 0 && ids[n - 1] == ids[i])
			continue;
		memo_find(m, ids[i], &hit);
		if (!hit)
			ids[n++] = ids[i];
	}
	m->nwant = 0;
	struct tenant t[WORKER_PREFETCH_MAX];
	char found[WORKER_PREFETCH_MAX];
	int rc = 0;
	for (int done = 0; done < n && rc == 0; done += WORKER_PREFETCH_MAX) {
		int k = n - done < WORKER_PREFETCH_MAX ? n - done : WORKER_PREFETCH_MAX;
		rc = store_tenants_get(c, ids + done, k, &m->arena, t, found);
		for (int i = 0; i < k && rc == 0; i++)
			if (found[i])
				memo_put(m, &t[i]);
	}
	return rc;
}

static int is_blocked(const struct blocked *b, const struct inbox_entry *e)
{
	for (int i = 0; i < b->n; i++)
		if (b->tenant[i] == e->tenant_id && strcmp(b->from[i], e->from) == 0)
			return 1;
	return 0;
}

static void block(struct blocked *b, const struct inbox_entry *e)
{
	if (b->n < (int)(sizeof(b->tenant) / sizeof(b->tenant[0]))) {
		b->tenant[b->n] = e->tenant_id;
		b->from[b->n] = e->from;
		b->n++;
	}
}

/*
 * A reply goes to a phone number (wa_id: digits). A sender known only by a
 * business-scoped user id (BSUID, e.g. "US.1349...") cannot be addressed by
 * the "to" field, so its replies are not queued (logged) rather than queued
 * to fail at the provider.
 */
static int addressable(const char *wa_id)
{
	if (!wa_id || !*wa_id)
		return 0;
	for (const char *p = wa_id[0] == '+' ? wa_id + 1 : wa_id; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

int worker_reply_row(const struct tenant *t, const struct inbox_entry *e, const struct erp_reply *r,
                     struct arena *a, struct outbox_new *o)
{
	const char *body;
	if (!addressable(e->from))
		return ERR_INVAL;
	if (r->kind == ERP_REPLY_BUTTONS && r->nbuttons > 0) {
		struct wamsg_button b[ERP_MAX_BUTTONS];
		int nb = r->nbuttons < ERP_MAX_BUTTONS ? r->nbuttons : ERP_MAX_BUTTONS;
		for (int i = 0; i < nb; i++) {
			b[i].id = r->buttons[i].id;
			b[i].title = r->buttons[i].title;
		}
		body = wamsg_buttons(a, e->from, e->ext_id, r->text, b, nb);
	} else {
		body = wamsg_text(a, e->from, e->ext_id, r->text);
	}
	*o = (struct outbox_new){
	        .tenant_id = t->id,
	        .priority = r->priority,
	        .phone_number_id = t->phone_number_id,
	        .to = e->from,
	        .reply_to = e->ext_id,
	        .body = body,
	        .inbound_received_at = e->received_at,
	        .claimed = 0,
	};
	return 0;
}

/* handed: row id, born claimed, is the sender's once a commit is durable. */
static void handed(struct worker_runner *r, const struct outbox_new *o, int64_t id)
{
	if (!o->claimed)
		return;
	sender_hold(r->direct, id);
	keep_given(r, o, id);
}

static int queue_reply(struct worker_runner *run, struct store_conn *c, const struct tenant *t,
                       const struct inbox_entry *e, const struct erp_reply *r, struct arena *a)
{
	struct outbox_new o;
	if (worker_reply_row(t, e, r, a, &o) != 0) {
		log_warn("worker.reply_unaddressable",
		         "reply to %s (message %s) not queued: the sender has no phone number",
		         e->from, e->ext_id);
		return 0;
	}
	o.claimed = born_claimed(run, &o);
	if (!o.claimed)
		note_waiting(run, &o);
	if (run->careful) {
		int64_t id;
		int rc = store_outbox_add(c, &o, &id);
		if (rc != 0) {
			if (o.claimed)
				sender_unreserve(run->direct, NULL, 1);
			return rc;
		}
		handed(run, &o, id);
	} else {
		if (run->npend == run->pend_cap) {
			run->pend_cap = run->pend_cap ? run->pend_cap * 2 : 64;
			run->pend = xrealloc(run->pend, (size_t)run->pend_cap * sizeof(*run->pend));
		}
		struct arena *pa = &run->pend_arena;
		o.phone_number_id = arena_strdup(pa, o.phone_number_id);
		o.to = arena_strdup(pa, o.to);
		o.reply_to = arena_strdup(pa, o.reply_to);
		o.body = arena_strdup(pa, o.body);
		run->pend[run->npend++] = o;
	}
	if (o.claimed)
		run->bs.outbox_sending[r->priority]++;
	else
		run->bs.outbox_new[r->priority]++;
	return 0;
}

/* The most replies written by one call of worker_runner_flush. */
#define WORKER_FLUSH_MAX 500

int worker_runner_flush(struct worker_runner *r, struct store_conn *c)
{
	int64_t ids[WORKER_FLUSH_MAX];
	int rc = 0, done = 0;
	while (rc == 0 && done < r->npend) {
		int k = r->npend - done < WORKER_FLUSH_MAX ? r->npend - done : WORKER_FLUSH_MAX;
		rc = store_outbox_add_many(c, r->pend + done, k, ids);
		for (int i = 0; i < k && rc == 0; i++) {
			handed(r, &r->pend[done + i], ids[i]);
			/* its slot is a given row's now, given back with those */
			r->pend[done + i].claimed = 0;
		}
		if (rc == 0)
			done += k;
	}
	if (rc != 0 && !err_transient(rc)) {
		log_warn("worker.flush_failed",
		         "could not queue a transaction's %d replies together (%s); its messages"
		         " go again one by one",
		         r->npend, store_errmsg(c));
		r->careful = r->again = 1;
	}
	/* written: their slots are the given rows' now; else the rollback's */
	if (rc == 0) {
		r->npend = 0;
		arena_reset(&r->pend_arena);
	}
	return rc;
}

/* A status entry in the inbox: ingest now applies statuses in its own
 * commit, but a store written by an earlier version may still hold some
 * pending; they are applied the same way. */
static int handle_status(struct app *app, struct store_conn *c, const struct inbox_entry *e,
                         struct batch_stats *bs)
{
	struct send_move mv;
	int rc = send_status_apply(app, c, e, &mv);
	if (rc == 0 && mv.moved && bs->nmoves < (int)(sizeof(bs->moves) / sizeof(bs->moves[0])))
		bs->moves[bs->nmoves++] = mv;
	return rc;
}

static int handle_message(struct worker_runner *r, struct store_conn *c,
                          const struct inbox_entry *e, struct arena *a)
{
	struct tenant t;
	int rc = runner_tenant(r, c, e->tenant_id, &t);
	if (rc != 0)
		return rc;
	struct erp_result res;
	memset(&res, 0, sizeof(res));
	rc = erp_handle(c, r->catalogs, &t, e, a, &res);
	if (rc != 0)
		return rc;
	/* rows the ERP wrote itself (a broadcast, a payment notice) or cancelled
	 * (an opt-out): counted like the replies, before them, so that a reply
	 * is not born claimed ahead of a PENDING row of higher priority */
	for (int p = 0; p < PRIO_COUNT; p++) {
		r->bs.outbox_new[p] += res.queued[p];
		r->bs.erp_queued[p] += res.queued[p];
		r->bs.outbox_failed[p] += res.cancelled[p];
	}
	for (int i = 0; i < res.nreplies; i++) {
		rc = queue_reply(r, c, &t, e, &res.replies[i], a);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The entry failed for the last time: tell the customer rather than go quiet. */
static int apologise(struct worker_runner *run, struct store_conn *c, const struct inbox_entry *e)
{
	struct tenant t;
	if (e->kind != INBOX_MESSAGE || runner_tenant(run, c, e->tenant_id, &t) != 0)
		return 0;
	struct erp_reply r = {
	        .kind = ERP_REPLY_TEXT,
	        .priority = PRIO_P2,
	        .text = "Sorry, we could not process your message. The shop has been told; "
	                "please try again in a little while.",
	};
	return queue_reply(run, c, &t, e, &r, &run->msg_arena);
}

/*
 * The entry failed (its own work already undone): its attempt is recorded
 * and, after the last one, it is set aside with an apology to the
 * customer (set aside even if the apology cannot be queued). In a
 * savepoint of its own: if even the record fails, the entry stays pending
 * and the rest of the batch stands. 0 if the batch can go on.
 */
static int record_failure(struct worker_runner *r, struct store_conn *c,
                          const struct inbox_entry *e, int why, int *finished)
{
	struct batch_stats *bs = &r->bs;
	int limit = (int)r->app->cfg.process_attempts;
	int final = e->attempts + 1 >= limit;
	struct entry_mark mark;
	mark_entry(r, &mark);
	int rc = store_savepoint(c);
	if (rc != 0)
		return rc;
	rc = store_inbox_failed(c, e->id, limit, err_str(why));
	if (rc == 0 && final) {
		int arc = apologise(r, c, e);
		if (err_transient(arc)) {
			rc = arc;
		} else if (arc != 0) {
			/* the entry is set aside all the same; a statement that
			 * failed may have spoilt the work since the savepoint
			 * (PostgreSQL aborts it), so that is undone and the
			 * failure recorded again, without the apology */
			log_error("worker.apology_failed",
			          "could not queue an apology for inbox entry %lld (%s): %s",
			          (long long)e->id, e->ext_id, store_errmsg(c));
			undo_entry(r, &mark);
			rc = store_rollback_to(c);
			if (rc == 0)
				rc = store_savepoint(c);
			if (rc == 0)
				rc = store_inbox_failed(c, e->id, limit, err_str(why));
		}
	}
	if (rc == 0) {
		bs->failed_attempts++;
		if (final) {
			bs->done++;
			*finished = 1;
			log_error("worker.message_set_aside",
			          "inbox entry %lld (%s) failed %d times and was set aside",
			          (long long)e->id, e->ext_id, e->attempts + 1);
		} else {
			block(&r->blk, e); /* its customer's later messages wait */
		}
		return store_release(c);
	}
	if (err_transient(rc))
		return rc;
	log_error("worker.failure_unrecorded",
	          "could not record the failure of inbox entry %lld (%s): %s; it stays pending",
	          (long long)e->id, e->ext_id, store_errmsg(c));
	block(&r->blk, e);
	undo_entry(r, &mark);
	return store_rollback_to(c);
}

/* The entry's whole work, counted as done if it succeeds. */
static int run_entry(struct worker_runner *r, struct store_conn *c, const struct inbox_entry *e,
                     int *finished)
{
	struct batch_stats *bs = &r->bs;
	int rc = e->kind == INBOX_STATUS ? handle_status(r->app, c, e, bs)
	                                 : handle_message(r, c, e, &r->msg_arena);
	if (rc == 0 && e->state != INBOX_DONE) /* one written done needs no update */
		rc = store_inbox_done(c, e->id);
	if (rc == 0) {
		bs->done++;
		*finished = 1;
		if (e->kind == INBOX_MESSAGE && bs->nlat < WORKER_MAX_BATCH)
			bs->latency_from[bs->nlat++] = e->received_at;
	}
	return rc;
}

int worker_runner_entry(struct worker_runner *r, struct store_conn *c, const struct inbox_entry *e,
                        int *finished)
{
	*finished = 0;
	if (is_blocked(&r->blk, e))
		return 0;
	arena_reset(&r->msg_arena);
	if (!r->careful) {
		int rc = run_entry(r, c, e, finished);
		if (rc != 0 && !err_transient(rc)) {
			log_info(
			        "worker.entry_failed_fast",
			        "inbox entry %lld (%s) failed (%s); its transaction runs again with"
			        " each entry on its own",
			        (long long)e->id, e->ext_id, store_errmsg(c));
			r->careful = r->again = 1;
		}
		return rc;
	}
	struct entry_mark mark; /* taken back if the entry is undone */
	mark_entry(r, &mark);
	int rc = store_savepoint(c);
	if (rc != 0)
		return rc;
	rc = run_entry(r, c, e, finished);
	if (rc == 0)
		return store_release(c);
	/* the store's trouble (disk full, I/O, locked), not the message's: the
	 * whole batch rolls back and is tried again, no attempt is counted */
	if (err_transient(rc))
		return rc;
	/* this message failed: undo its partial work, keep the batch */
	log_warn("worker.message_failed", "could not process inbox entry %lld (%s): %s",
	         (long long)e->id, e->ext_id, store_errmsg(c));
	undo_entry(r, &mark);
	int rrc = store_rollback_to(c);
	erp_cache_clear(r->catalogs);           /* what it read since may be undone */
	if (rrc == 0 && e->state == INBOX_DONE) /* written done: the failure needs it pending */
		rrc = store_inbox_reopen(c, e->id);
	if (rrc != 0)
		return rrc;
	return record_failure(r, c, e, rc, finished);
}

struct worker_runner *worker_runner_new(struct app *app, struct sender *direct)
{
	struct worker_runner *r = xcalloc(1, sizeof(*r));
	r->app = app;
	r->direct = direct;
	r->catalogs = erp_cache_new(WORKER_CATALOG_SLOTS);
	arena_init(&r->msg_arena, 16 * 1024);
	arena_init(&r->given_arena, 16 * 1024);
	arena_init(&r->pend_arena, 16 * 1024);
	arena_init(&r->shops.arena, 16 * 1024);
	return r;
}

void worker_runner_free(struct worker_runner *r)
{
	if (!r)
		return;
	/* committed rows never made durable stay SENDING: the sender puts them
	 * back after a while (release_lost), or start-up recovery does */
	sender_unreserve(r->direct, r->given, r->ngiven);
	drop_pending(r, 0);
	erp_cache_free(r->catalogs);
	arena_release(&r->msg_arena);
	arena_release(&r->given_arena);
	arena_release(&r->pend_arena);
	arena_release(&r->shops.arena);
	free(r->shops.t);
	free(r->shops.want);
	free(r->waiting);
	free(r->given);
	free(r->pend);
	free(r);
}

void worker_runner_begin(struct worker_runner *r)
{
	memset(&r->bs, 0, sizeof(r->bs));
	r->blk.n = 0;
	r->again = 0;
	r->nwaiting = 0;
	memo_clear(&r->shops);
}

int worker_runner_rolled_back(struct worker_runner *r)
{
	int again = r->again;
	erp_cache_clear(r->catalogs); /* it may hold what the rollback undid */
	sender_unreserve(r->direct, r->given + r->ncommitted, r->ngiven - r->ncommitted);
	r->ngiven = r->ncommitted;
	drop_pending(r, 0);
	arena_reset(&r->pend_arena);
	worker_runner_begin(r);
	return again;
}

int worker_runner_committed(struct worker_runner *r, int durable)
{
	struct metrics *m = &r->app->metrics;
	const struct batch_stats *bs = &r->bs;
	int64_t now = clock_wall_ms(), queued = 0;
	r->careful = 0; /* a transaction landed: the next one runs fast */
	atomic_fetch_sub(&m->inbox_depth, bs->done);
	atomic_fetch_add(&m->messages_processed, (uint64_t)bs->done);
	atomic_fetch_add(&m->messages_failed, (uint64_t)bs->failed_attempts);
	for (int p = 0; p < PRIO_COUNT; p++) {
		atomic_fetch_add(&m->outbox[p][OUTBOX_PENDING], bs->outbox_new[p]);
		atomic_fetch_add(&m->outbox[p][OUTBOX_SENDING], bs->outbox_sending[p]);
		atomic_fetch_sub(&m->outbox[p][OUTBOX_PENDING], bs->outbox_failed[p]);
		atomic_fetch_add(&m->outbox[p][OUTBOX_FAILED], bs->outbox_failed[p]);
		queued += bs->outbox_new[p];
	}
	/* rows born claimed go once a commit is known durable (this one, or
	 * a later one whose sync covers it) */
	r->ncommitted = r->ngiven;
	if (durable && r->ngiven > 0) {
		sender_give(r->direct, r->given, r->ngiven);
		r->ngiven = r->ncommitted = 0;
		arena_reset(&r->given_arena);
	}
	for (int i = 0; i < bs->nmoves; i++)
		send_move_count(r->app, &bs->moves[i]);
	for (int i = 0; i < bs->nlat; i++)
		metrics_observe_us(&m->processing_latency, (now - bs->latency_from[i]) * 1000);
	if (queued)
		notify_signal(&r->app->outbox_ready);
	int done = bs->done;
	worker_runner_begin(r);
	return done;
}

/*
 * One batch of the partitions in parts: returns how many entries were read
 * (0 = idle), or < 0; *left how many of them are still pending (failed, or
 * behind a failed one of the same customer).
 */
static int run_batch(struct worker *w, uint64_t parts, struct store_conn *c,
                     struct arena *batch_arena, int *left)
{
	struct app *app = w->pool->app;
	struct inbox_entry *entries;
	int n = 0;
	*left = 0;
	arena_reset(batch_arena);
	int rc = store_inbox_pending(c, parts,
	                             app_batch(app, app->cfg.worker_batch, WORKER_MAX_BATCH),
	                             batch_arena, &entries, &n);
	if (rc != 0)
		return rc;
	if (n == 0)
		return 0;
	char finished[WORKER_MAX_BATCH];
	int again;
	do { /* fast, then (an entry failed) once more carefully */
		worker_runner_begin(w->runner);
		rc = store_begin(c);
		if (rc != 0)
			return rc;
		for (int i = 0; i < n; i++)
			if (entries[i].kind == INBOX_MESSAGE)
				worker_runner_expect(w->runner, entries[i].tenant_id);
		rc = worker_runner_prefetch(w->runner, c);
		memset(finished, 0, (size_t)n);
		for (int i = 0; i < n && rc == 0; i++) {
			int fin;
			rc = worker_runner_entry(w->runner, c, &entries[i], &fin);
			finished[i] = (char)fin;
		}
		if (rc == 0)
			rc = worker_runner_flush(w->runner, c);
		if (rc == 0)
			rc = store_commit(c);
		if (rc == 0)
			break;
		char why[256];
		snprintf(why, sizeof(why), "%s", store_errmsg(c));
		store_rollback(c);
		again = worker_runner_rolled_back(w->runner);
		if (!again)
			log_error("worker.batch_failed",
			          "could not commit a batch of %d messages: %s", n, why);
	} while (again);
	if (rc != 0)
		return rc;
	/* out of the backlog before the depth falls: once the ingest
	 * committer sees the inbox empty, no removal is still to come */
	for (int i = 0; i < n; i++) {
		*left += !finished[i];
		if (app->backlog && finished[i] && entries[i].kind == INBOX_MESSAGE)
			backlog_remove(app->backlog, entries[i].tenant_id, entries[i].from);
	}
	/* the commit was lazy: replies born claimed go only once it is on
	 * disk (a failed sync keeps them for the next batch's) */
	int durable = 0;
	if (w->runner->ngiven > 0) {
		durable = store_sync(c) == 0;
		if (!durable)
			log_error("worker.sync_failed", "could not sync a batch's replies: %s",
			          store_errmsg(c));
	}
	worker_runner_committed(w->runner, durable);
	return n;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct app *app = w->pool->app;
	char name[16];
	snprintf(name, sizeof name, "worker-%d", w->index);
	pthread_setname_np(pthread_self(), name);
	struct store_conn *c = w->conn;
	struct arena batch_arena;
	uint64_t seen = 0, last = 0;
	int64_t full_at = 0; /* read every partition of the share again then */
	int again = 0;       /* the last read's partitions have more */
	arena_init(&batch_arena, 64 * 1024);
	struct worker_pool *wp = w->pool;
	while (!atomic_load(&app->stopping) && !atomic_load(&wp->stop)) {
		pthread_rwlock_rdlock(&wp->resize_lock);
		int active = atomic_load(&wp->active), n = 0, left = 0;
		int batch = app_batch(app, app->cfg.worker_batch, WORKER_MAX_BATCH);
		if (w->index < active) {
			/* this thread's share of the partitions the process holds;
			 * of them, those rung for since it last looked, and those
			 * its last read left entries in; all of them every
			 * WORKER_IDLE_WAIT_MS, whatever was rung */
			uint64_t mine =
			        lease_hold(app->lease) & store_partition_slice(w->index, active);
			uint64_t parts = atomic_fetch_and(&app->inbox_parts, ~mine) & mine;
			int64_t now = clock_mono_us() / 1000;
			if (now >= full_at) {
				parts = mine;
				full_at = now + WORKER_IDLE_WAIT_MS;
			} else if (again) {
				parts |= last & mine;
			}
			n = parts ? run_batch(w, parts, c, &batch_arena, &left) : 0;
			again = n < 0 || n >= batch || left > 0;
			last = parts;
			lease_unhold(app->lease);
		}
		pthread_rwlock_unlock(&wp->resize_lock);
		if (w->index >= active) /* parked until the pool grows */
			notify_wait(&app->inbox_ready, &seen, WORKER_IDLE_WAIT_MS);
		else if (n < 0)
			notify_wait(&app->inbox_ready, &seen, WORKER_ERROR_WAIT_MS);
		else if (n < batch)
			/* the read took every entry there was: a later one rings
			 * (or rang already, since the last wait), so only entries
			 * left pending are read again at once */
			notify_wait(&app->inbox_ready, &seen, left > 0 ? 0 : WORKER_IDLE_WAIT_MS);
	}
	arena_release(&batch_arena);
	return NULL;
}

int worker_pool_start(struct app *app, struct sender *sender, struct worker_pool **out)
{
	struct worker_pool *wp = xcalloc(1, sizeof(*wp));
	wp->app = app;
	wp->n = (int)(app->cfg.workers_max > app->cfg.workers ? app->cfg.workers_max
	                                                      : app->cfg.workers);
	atomic_store(&wp->active, (int)app->cfg.workers);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&wp->resize_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	wp->workers = xcalloc((size_t)wp->n, sizeof(*wp->workers));
	/* every connection first: a worker that cannot reach the store must
	 * fail start-up, not leave its partitions unserved */
	for (int i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		w->pool = wp;
		w->index = i;
		w->runner = worker_runner_new(app, sender);
		/* lazy commits: a batch lost with the machine is redone from
		 * its inbox entries, which stay pending until a commit that
		 * reached the disk; a reply goes only once its batch is on
		 * disk - by the sender's sync of its claim, or by ours before
		 * a reply born claimed is handed over. With writers side by
		 * side (a server) every commit is durable itself: a lazy one
		 * lost in a failover would leave its replies handed over */
		if (store_connect(app->store, &w->conn) != 0 ||
		    (!store_shared_writers(app->store) &&
		     store_set_lazy_commits(w->conn, 1) != 0)) {
			log_error("worker.start_failed", "worker %d could not connect to the store",
			          i);
			worker_pool_stop(wp);
			return ERR_IO;
		}
	}
	for (int i = 0; i < wp->n; i++) {
		struct worker *w = &wp->workers[i];
		if (pthread_create(&w->thread, NULL, worker_main, w) != 0) {
			log_error("worker.start_failed", "could not start worker thread %d", i);
			worker_pool_stop(wp);
			return ERR_IO;
		}
		w->started = 1;
	}
	*out = wp;
	return 0;
}

void worker_pool_stop(struct worker_pool *wp)
{
	if (!wp)
		return;
	atomic_store(&wp->stop, 1);
	app_inbox_wake(wp->app, ~0ULL);
	for (int i = 0; i < wp->n; i++) {
		if (wp->workers[i].started)
			pthread_join(wp->workers[i].thread, NULL);
		store_disconnect(wp->workers[i].conn);
		worker_runner_free(wp->workers[i].runner);
	}
	free(wp->workers);
	pthread_rwlock_destroy(&wp->resize_lock);
	free(wp);
}

int worker_pool_resize(struct worker_pool *wp, int n)
{
	if (!wp)
		return 0;
	if (n < (int)wp->app->cfg.workers)
		n = (int)wp->app->cfg.workers;
	if (n > wp->n)
		n = wp->n;
	if (n == atomic_load(&wp->active))
		return n;
	pthread_rwlock_wrlock(&wp->resize_lock);
	atomic_store(&wp->active, n);
	pthread_rwlock_unlock(&wp->resize_lock);
	app_inbox_wake(wp->app, ~0ULL); /* the shares moved */
	return n;
}

int worker_pool_size(const struct worker_pool *wp)
{
	return wp ? atomic_load(&wp->active) : 0;
}

int worker_pool_capacity(const struct worker_pool *wp)
{
	return wp ? wp->n : 0;
}
