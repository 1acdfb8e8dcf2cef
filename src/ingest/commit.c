/*
 * commit.c - the webhook group commit, in committer lanes.
 *
 * Lanes
 *   --committers lanes (1 with SQLite, one writer at a time; 2 with
 *   PostgreSQL, where a lane's statements are one server process's work and
 *   one lane would cap the rate at one core of it), each a thread with its
 *   own store connection and queue. Lane i takes the shops whose partition
 *   p has p % lanes == i, so one customer's messages always meet in one
 *   lane, in order. A request with shops in several lanes goes as one job
 *   a lane (ingest__submit), answered by the last part done: 200 if every
 *   part was stored, else 503 (the redelivery finds the stored part's
 *   entries duplicates).
 *
 * Group commit (ingest__committer_main)
 *   Handlers append jobs to their lane's queue under l->mu and signal
 *   l->cv. The lane's thread repeatedly takes every queued job (at most
 *   cfg.commit_batch; with a commit window, after waiting up to it for
 *   more) and stores them all in ONE transaction: their inbox entries in
 *   one store_inbox_put, the new messages through the fast path (a runner,
 *   worker.h, in this same transaction), their delivery statuses straight
 *   onto their outbox rows (no inbox row, no worker pass), store_commit,
 *   then store_sync - one fsync for the lot, waited for after the writer
 *   lock is released so that other writers are not held up by the disk.
 *   Only then does it answer each request (200), so a 2xx always means
 *   durable. While that commit runs, new jobs pile up in the queue and
 *   form the next batch: the busier the endpoint, the more requests share
 *   each fsync.
 *
 * Failures
 *   A message that fails in the fast run sends the commit round once more,
 *   each message on its own (worker.h). A batch that fails for a reason
 *   tied to its content (ERR_INVAL, ERR_CONFLICT, ERR_DB) is retried one
 *   job per transaction, so one bad request cannot fail its neighbours;
 *   failures of the store itself (ERR_AGAIN, ERR_FULL, ERR_IO) answer the
 *   whole batch 503 and Meta retries. A failure is logged once when it
 *   starts and once when commits succeed again.
 *
 *   ingest_stop: each lane finishes the commit in progress, answers every
 *   job still queued with 503 and exits.
 *
 * Threads: a lane's queue under its mu; the rest of the lane (conn,
 * runner, buffers) its thread's alone; the commit lock (commit_jobs) held
 * shared by every commit, alone to find the inbox empty.
 */
#include "ingest/ingest_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "send/wamsg.h"
#include "worker/backlog.h"
#include "worker/worker.h"

/* The most entries put_all offers in one call. */
#define INGEST_PUT_MAX 2000

/* A job is done: its request is answered, 200 if stored (for a part of a
 * split request, once every part is done, 200 if every one was stored). */
static void finish_job(struct ingest *ig, struct ingest_job *j, int stored, const char *error_body)
{
	struct job_group *g = j->group;
	if (g) {
		if (!stored)
			atomic_store(&g->failed, 1);
		if (atomic_fetch_sub(&g->left, 1) != 1)
			return;
		stored = !atomic_load(&g->failed);
	}
	if (stored)
		ingest__answer(ig, j->req, 200, INGEST_OK_BODY);
	else
		ingest__answer(ig, j->req, 503, error_body);
}

/*
 * mark_inline picks the entries of j the fast path takes, while *budget
 * lasts: those whose customer has nothing waiting in the inbox (processing
 * them would not overtake an earlier message). They are written done from
 * the start, so they never enter the inbox's pending index and need no
 * UPDATE when they are done; the rest are written pending.
 */
static void mark_inline(struct ingest *ig, struct ingest_job *j, int64_t *budget)
{
	for (int k = 0; k < j->n; k++) {
		struct inbox_entry *e = &j->entries[k];
		e->state = INBOX_PENDING;
		if (*budget > 0 && !backlog_has(ig->app->backlog, e->tenant_id, e->from)) {
			e->state = INBOX_DONE;
			(*budget)--;
		}
	}
}

/*
 * The fast path, for each new entry of job j that mark_inline picked:
 * through the ERP in this very transaction - unless an earlier message of
 * its customer failed in this same transaction and now waits. An entry
 * left pending - so, or because it failed - is reopened and joins the
 * backlog before the commit makes it visible to the workers, and every
 * later message of its customer then waits behind it. Runs with the
 * writer lock held: no worker commit lands in between.
 */
static int run_new(struct lane *l, struct ingest_job *j)
{
	struct backlog *bl = l->ig->app->backlog;
	for (int k = 0; k < j->n; k++) {
		if (j->results[k] != INBOX_PUT_NEW)
			continue;
		const struct inbox_entry *e = &j->entries[k];
		int finished = 0, rc = 0;
		if (e->state == INBOX_DONE && !backlog_has(bl, e->tenant_id, e->from) &&
		    (rc = worker_runner_entry(l->runner, l->conn, e, &finished)) != 0)
			return rc;
		if (finished)
			continue;
		if (e->state == INBOX_DONE && (rc = store_inbox_reopen(l->conn, e->id)) != 0)
			return rc;
		backlog_add(bl, e->tenant_id, e->from);
		if (l->nadded == l->added_cap) {
			l->added_cap = l->added_cap ? l->added_cap * 2 : 64;
			l->added = xrealloc(l->added, (size_t)l->added_cap * sizeof(*l->added));
		}
		l->added[l->nadded++] = e;
	}
	return 0;
}

/*
 * put_all offers the entries of jobs[0..n) to the inbox in one call (one
 * statement a partition, where the store batches): their ids and results
 * land in each job's own arrays.
 */
static int put_all(struct lane *l, struct store_conn *c, struct ingest_job **jobs, int n)
{
	int total = 0;
	for (int i = 0; i < n; i++)
		total += jobs[i]->n;
	if (total == 0)
		return 0;
	if (n == 1 || total > INGEST_PUT_MAX) { /* a request at a time */
		int rc = 0;
		for (int i = 0; i < n && rc == 0; i++)
			if (jobs[i]->n > 0)
				rc = store_inbox_put(c, jobs[i]->entries, jobs[i]->n,
				                     jobs[i]->results);
		return rc;
	}
	if (total > l->put_cap) {
		l->put_cap = total;
		l->put = xrealloc(l->put, (size_t)total * sizeof(*l->put));
		l->put_results = xrealloc(l->put_results, (size_t)total * sizeof(*l->put_results));
	}
	int m = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < jobs[i]->n; k++)
			l->put[m++] = jobs[i]->entries[k];
	int rc = store_inbox_put(c, l->put, total, l->put_results);
	if (rc != 0)
		return rc;
	m = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < jobs[i]->n; k++, m++) {
			jobs[i]->entries[k] = l->put[m];
			jobs[i]->results[k] = l->put_results[m];
		}
	return 0;
}

/* The transaction failed: what it put in the backlog was never pending. */
static void undo_added(struct lane *l)
{
	for (int i = 0; i < l->nadded; i++)
		backlog_remove(l->ig->app->backlog, l->added[i]->tenant_id, l->added[i]->from);
	l->nadded = 0;
}

/* A delivery status of a commit: job, index, and the outbox row it names. */
struct status_ref {
	int64_t row; /* 0: not named (found by the provider's id) */
	int job, k;
};

static int cmp_status_ref(const void *pa, const void *pb)
{
	const struct status_ref *a = pa, *b = pb;
	if ((a->row == 0) != (b->row == 0))
		return a->row == 0 ? 1 : -1;
	return store_outbox_cmp(a->row, b->row);
}

/*
 * apply_statuses applies the delivery statuses of jobs[0..n) in the order
 * of the outbox rows they name (store_outbox_cmp, as the sender records
 * its outcomes: two transactions writing the same rows wait for each
 * other, never deadlock), those that name none last.
 */
static int apply_statuses(struct ingest *ig, struct store_conn *c, struct ingest_job **jobs, int n)
{
	int total = 0;
	for (int i = 0; i < n; i++)
		total += jobs[i]->nstatus;
	if (total == 0)
		return 0;
	struct status_ref *refs = xmalloc((size_t)total * sizeof(*refs));
	const struct inbox_entry **e = xmalloc((size_t)total * sizeof(*e));
	struct send_move *mv = xmalloc((size_t)total * sizeof(*mv));
	int m = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < jobs[i]->nstatus; k++) {
			int64_t row = wamsg_callback_row(jobs[i]->statuses[k].callback_data);
			refs[m++] = (struct status_ref){row > 0 ? row : 0, i, k};
		}
	qsort(refs, (size_t)m, sizeof(*refs), cmp_status_ref);
	for (int r = 0; r < m; r++)
		e[r] = &jobs[refs[r].job]->statuses[refs[r].k];
	int rc = send_statuses_apply(ig->app, c, e, m, mv);
	for (int r = 0; r < m && rc == 0; r++)
		jobs[refs[r].job]->moves[refs[r].k] = mv[r];
	free(refs);
	free(e);
	free(mv);
	return rc;
}

/* Stores jobs[0..n) in one transaction; 0 or the store's error. Counts
 * metrics and adds to *fresh the new entries left for the workers. */
static int commit_txn(struct lane *l, struct ingest_job **jobs, int n, int64_t *fresh,
                      int find_known)
{
	struct store_conn *c = l->conn;
	int64_t nnew = 0, ndup = 0;
	int rc = store_begin(c);
	if (rc) {
		snprintf(l->why, sizeof(l->why), "%s", store_errmsg(c));
		return rc;
	}
	int run = l->runner != NULL;
	int64_t budget = atomic_load(&l->ig->app->inline_off) ? 0 : l->ig->app->cfg.inline_max;
	l->nadded = 0;
	if (run) {
		worker_runner_begin(l->runner);
		/* an empty inbox, seen with the store's writer lock held (SQLite)
		 * and no other lane inside a commit: no entry is pending, so the
		 * backlog is exactly none */
		if (find_known && atomic_load(&l->ig->app->metrics.inbox_depth) == 0)
			backlog_known(l->ig->app->backlog);
	}
	for (int i = 0; i < n && run; i++)
		mark_inline(l->ig, jobs[i], &budget);
	if ((rc = put_all(l, c, jobs, n)) != 0)
		goto fail;
	for (int i = 0; i < n && run; i++)
		for (int k = 0; k < jobs[i]->n; k++)
			if (jobs[i]->results[k] == INBOX_PUT_NEW &&
			    jobs[i]->entries[k].state == INBOX_DONE)
				worker_runner_expect(l->runner, jobs[i]->entries[k].tenant_id);
	if (run && (rc = worker_runner_prefetch(l->runner, c)) != 0)
		goto fail;
	/* in the requests' order: a customer's message that failed waits in
	 * the backlog, and the later ones of that customer (written done)
	 * are reopened behind it */
	for (int i = 0; i < n && run; i++)
		if ((rc = run_new(l, jobs[i])) != 0)
			goto fail;
	if (run && (rc = worker_runner_flush(l->runner, c)) != 0)
		goto fail;
	if ((rc = apply_statuses(l->ig, c, jobs, n)) != 0)
		goto fail;
	rc = store_commit(c);
	if (rc)
		goto fail;
	struct metrics *m = &l->ig->app->metrics;
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < jobs[i]->nstatus; k++) {
			send_move_count(l->ig->app, &jobs[i]->moves[k]);
		}
		atomic_fetch_add_explicit(&m->statuses_applied, (uint64_t)jobs[i]->nstatus,
		                          memory_order_relaxed);
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < jobs[i]->n; k++) {
			if (jobs[i]->results[k] == INBOX_PUT_NEW)
				nnew++;
			else
				ndup++;
		}
	atomic_fetch_add_explicit(&m->inbox_new, (uint64_t)nnew, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->inbox_duplicate, (uint64_t)ndup, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->inbox_depth, nnew, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->commits, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->commit_requests, (uint64_t)n, memory_order_relaxed);
	/* durable before any 200. The disk is waited for outside the writer
	 * lock, so workers and sender write meanwhile. If it fails the rows
	 * are there but not known to be on disk: 503, and the redelivery
	 * finds them (duplicates are counted, statuses only move forward).
	 * With writers side by side the commit was durable: nothing to do. */
	rc = store_sync(c);
	if (rc)
		snprintf(l->why, sizeof(l->why), "%s", store_errmsg(c));
	int64_t done = 0;
	if (run) {
		/* after the sync: the sender, woken now, finds its claim covered */
		done = worker_runner_committed(l->runner, rc == 0);
		atomic_fetch_add_explicit(&m->inline_processed, (uint64_t)done,
		                          memory_order_relaxed);
	}
	*fresh += nnew - done;
	return rc;
fail:
	snprintf(l->why, sizeof(l->why), "%s", store_errmsg(c));
	store_rollback(c);
	if (run) {
		l->again = worker_runner_rolled_back(l->runner);
		undo_added(l);
	}
	return rc;
}

/*
 * commit_jobs: commit_txn under the commit lock: shared, or alone while the
 * backlog is unknown - another lane's commit in progress may have put a
 * customer in the backlog for an entry the inbox depth does not count yet,
 * and finding the inbox empty then would forget it.
 */
static int commit_jobs(struct lane *l, struct ingest_job **jobs, int n, int64_t *fresh)
{
	struct ingest *ig = l->ig;
	int find_known = l->runner && !backlog_is_known(ig->app->backlog);
	if (find_known)
		pthread_rwlock_wrlock(&ig->commit_lock);
	else
		pthread_rwlock_rdlock(&ig->commit_lock);
	int rc = commit_txn(l, jobs, n, fresh, find_known);
	pthread_rwlock_unlock(&ig->commit_lock);
	return rc;
}

/* The partitions of the entries jobs[0..n) stored new: those the workers
 * may have to read (the fast path finished most of them); all ones when
 * none is known. */
static uint64_t new_parts(struct ingest_job **jobs, int n)
{
	uint64_t parts = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; jobs[i]->rc == 0 && k < jobs[i]->n; k++)
			if (jobs[i]->results[k] == INBOX_PUT_NEW)
				parts |= 1ULL << store_partition(jobs[i]->entries[k].tenant_id);
	return parts ? parts : ~0ULL;
}

/* Commits a batch (falling back to one job per transaction when the
 * content, not the store, is at fault), answers every job, wakes workers. */
static void commit_batch(struct lane *l, struct ingest_job **jobs, int n)
{
	int64_t fresh = 0;
	int rc = commit_jobs(l, jobs, n, &fresh);
	/* a message (or the replies together) failed in the fast run: once
	 * more, each message on its own, so that only those at fault fail */
	if (rc && l->again) {
		l->again = 0;
		rc = commit_jobs(l, jobs, n, &fresh);
	}

	for (int i = 0; i < n; i++)
		jobs[i]->rc = rc;
	if (rc && !err_transient(rc) && n > 1) {
		for (int i = 0; i < n; i++)
			jobs[i]->rc = commit_jobs(l, &jobs[i], 1, &fresh);
	}
	int failed = 0;
	for (int i = 0; i < n; i++)
		if (jobs[i]->rc) {
			failed++;
			rc = jobs[i]->rc;
		}
	if (failed) {
		if (!l->failing)
			log_error("ingest.commit_failed",
			          "could not store %d of %d webhook requests: %s: %s", failed, n,
			          err_str(rc), l->why);
		l->failing = 1;
		l->fail_count += failed;
	} else if (l->failing) {
		log_info("ingest.commit_recovered",
		         "inbox commits succeed again after %ld failed requests", l->fail_count);
		l->failing = 0;
		l->fail_count = 0;
	}
	if (fresh > 0)
		app_inbox_wake(l->ig->app, new_parts(jobs, n));
	for (int i = 0; i < n; i++) {
		finish_job(l->ig, jobs[i], jobs[i]->rc == 0,
		           "{\"error\":\"could not store, retry\"}");
	}
}

/*
 * gather, with ig->mu held and a request queued, waits up to the commit
 * window for more to share its commit, until max are queued: a commit's
 * statements then serve several requests (the store does a batch's
 * entries in one statement a partition), at a cost in latency of at most
 * the window.
 */
static void gather(struct lane *l, int max)
{
	int64_t window = l->ig->window_ms;
	if (window <= 0 || l->nqueued >= max)
		return;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += window / 1000;
	until.tv_nsec += (window % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (!l->stop && l->nqueued < max && pthread_cond_timedwait(&l->cv, &l->mu, &until) == 0)
		;
}

void *ingest__committer_main(void *arg)
{
	struct lane *l = arg;
	/* room for the largest batch: doubled from spike level 1 (app_batch) */
	int room = (int)l->ig->app->cfg.commit_batch * 2;
	if (room < 1)
		room = 1;
	struct ingest_job **batch = xmalloc(sizeof(*batch) * (size_t)room);

	for (;;) {
		int n = 0, max = app_batch(l->ig->app, l->ig->app->cfg.commit_batch, room);
		pthread_mutex_lock(&l->mu);
		while (!l->head && !l->stop)
			pthread_cond_wait(&l->cv, &l->mu);
		if (l->stop) {
			pthread_mutex_unlock(&l->mu);
			break;
		}
		gather(l, max);
		while (l->head && n < max) {
			batch[n++] = l->head;
			l->head = l->head->next;
		}
		if (!l->head)
			l->tail = NULL;
		l->nqueued -= n;
		pthread_mutex_unlock(&l->mu);
		commit_batch(l, batch, n);
	}

	/* stopping: whatever still waits gets 503 (the BSP retries) */
	pthread_mutex_lock(&l->mu);
	struct ingest_job *j = l->head;
	l->head = l->tail = NULL;
	l->nqueued = 0;
	pthread_mutex_unlock(&l->mu);
	while (j) {
		struct ingest_job *next = j->next; /* j dies with its request */
		finish_job(l->ig, j, 0, "{\"error\":\"shutting down\"}");
		j = next;
	}
	free(batch);
	return NULL;
}

/* Queues job for the committer; ERR_AGAIN when ingest is stopping. */
static int enqueue(struct lane *l, struct ingest_job *job)
{
	pthread_mutex_lock(&l->mu);
	if (l->stop) {
		pthread_mutex_unlock(&l->mu);
		return ERR_AGAIN;
	}
	job->next = NULL;
	if (l->tail)
		l->tail->next = job;
	else
		l->head = job;
	l->tail = job;
	l->nqueued++;
	pthread_cond_signal(&l->cv);
	pthread_mutex_unlock(&l->mu);
	return 0;
}

int ingest__queued(struct ingest *ig)
{
	int n = 0;
	for (int i = 0; i < ig->nlanes; i++) {
		pthread_mutex_lock(&ig->lanes[i].mu);
		n += ig->lanes[i].nqueued;
		pthread_mutex_unlock(&ig->lanes[i].mu);
	}
	return n;
}

int ingest__stopping(struct ingest *ig)
{
	pthread_mutex_lock(&ig->lanes[0].mu);
	int stop = ig->lanes[0].stop;
	pthread_mutex_unlock(&ig->lanes[0].mu);
	return stop;
}

int ingest__lanes(const struct ingest *ig)
{
	return ig->nlanes;
}

static int lane_of(const struct ingest *ig, int64_t tenant_id)
{
	return store_partition(tenant_id) % ig->nlanes;
}

/* A part of job j: its entries and statuses of lane `lane`, in order. */
static struct ingest_job *job_part(struct ingest *ig, struct arena *a, const struct ingest_job *j,
                                   int lane, struct job_group *g)
{
	struct ingest_job *p = arena_calloc(a, sizeof(*p));
	p->req = j->req;
	p->group = g;
	p->entries = arena_alloc(a, sizeof(*p->entries) * (size_t)(j->n ? j->n : 1));
	p->statuses = arena_alloc(a, sizeof(*p->statuses) * (size_t)(j->nstatus ? j->nstatus : 1));
	for (int k = 0; k < j->n; k++)
		if (lane_of(ig, j->entries[k].tenant_id) == lane)
			p->entries[p->n++] = j->entries[k];
	for (int k = 0; k < j->nstatus; k++)
		if (lane_of(ig, j->statuses[k].tenant_id) == lane)
			p->statuses[p->nstatus++] = j->statuses[k];
	p->results = arena_calloc(a, sizeof(*p->results) * (size_t)(p->n ? p->n : 1));
	p->moves = arena_calloc(a, sizeof(*p->moves) * (size_t)(p->nstatus ? p->nstatus : 1));
	return p;
}

/* A request with shops in several lanes goes as one part a lane. */
void ingest__submit(struct ingest *ig, struct arena *a, struct ingest_job *job)
{
	const char *stopping = "{\"error\":\"shutting down\"}";
	uint32_t lanes = 0;
	for (int k = 0; k < job->n; k++)
		lanes |= 1u << lane_of(ig, job->entries[k].tenant_id);
	for (int k = 0; k < job->nstatus; k++)
		lanes |= 1u << lane_of(ig, job->statuses[k].tenant_id);
	if (__builtin_popcount(lanes) == 1) {
		if (enqueue(&ig->lanes[__builtin_ctz(lanes)], job) != 0)
			finish_job(ig, job, 0, stopping);
		return;
	}
	struct job_group *g = arena_calloc(a, sizeof(*g));
	atomic_init(&g->left, __builtin_popcount(lanes));
	atomic_init(&g->failed, 0);
	struct ingest_job *parts[INGEST_LANES_MAX];
	int at[INGEST_LANES_MAX], n = 0;
	for (int i = 0; i < ig->nlanes; i++) /* every part made before one goes */
		if (lanes & (1u << i)) {
			at[n] = i;
			parts[n++] = job_part(ig, a, job, i, g);
		}
	for (int i = 0; i < n; i++)
		if (enqueue(&ig->lanes[at[i]], parts[i]) != 0)
			finish_job(ig, parts[i], 0, stopping);
}

/* ---- lanes ---------------------------------------------------------------------- */

/* lane_open: lane l's queue and its own store connection (and runner). */
int ingest__lane_open(struct ingest *ig, struct lane *l, int index, struct sender *sender)
{
	struct app *app = ig->app;
	l->ig = ig;
	pthread_mutex_init(&l->mu, NULL);
	pthread_condattr_t ca; /* gather's deadline is monotonic */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&l->cv, &ca);
	pthread_condattr_destroy(&ca);
	int rc = store_connect(app->store, &l->conn);
	/* one writer at a time: lazy, and store_sync per commit after the lock */
	if (rc == 0 && !store_shared_writers(app->store))
		rc = store_set_lazy_commits(l->conn, 1);
	if (rc) {
		log_error("ingest.start_failed", "could not connect ingest committer %d: %s", index,
		          err_str(rc));
		return rc;
	}
	if (app->backlog)
		l->runner = worker_runner_new(app, sender);
	return 0;
}

void ingest__lanes_stop(struct ingest *ig)
{
	for (int i = 0; i < ig->nlanes; i++) {
		struct lane *l = &ig->lanes[i];
		pthread_mutex_lock(&l->mu);
		l->stop = 1;
		pthread_cond_signal(&l->cv);
		pthread_mutex_unlock(&l->mu);
	}
	for (int i = 0; i < ig->nlanes; i++)
		if (ig->lanes[i].thread_started)
			pthread_join(ig->lanes[i].thread, NULL);
}

void ingest__lane_free(struct lane *l)
{
	store_disconnect(l->conn);
	worker_runner_free(l->runner);
	free(l->added);
	free(l->put);
	free(l->put_results);
	pthread_mutex_destroy(&l->mu);
	pthread_cond_destroy(&l->cv);
}
