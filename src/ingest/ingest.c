/*
 * ingest.c - the webhook endpoint: GET verification, POST signature check,
 * parsing, tenant resolution and the group commit into the inbox.
 *
 * POST /webhooks/whatsapp (on_post, on an HTTP server thread)
 *
 *   X-Hub-Signature-256 wrong/missing     -> 401, nothing parsed or stored
 *   body not a WhatsApp payload           -> 400 {"error":...}
 *   more than 1000 messages and statuses  -> 413 (see envelope.c)
 *   tenant lookup failed (store error)    -> 503 + Retry-After
 *   no change for a known tenant          -> 200 at once, no commit
 *   otherwise: the entries become a job, the request is suspended and the
 *   job queued for the committer:
 *     committed                           -> 200 {"ok":true}
 *     store failed (locked, disk full...) -> 503 + Retry-After
 *     ingest stopping                     -> 503 + Retry-After
 *
 *   Changes whose phone_number_id no tenant owns are skipped, counted in
 *   metrics.webhook_unknown_tenant and logged; the rest of the body is kept.
 *
 * Group commit (committer thread, committer_main)
 *
 *   Handlers append jobs to a queue under ig->mu and signal ig->cv. The one
 *   committer thread, with its own store connection, repeatedly takes every
 *   queued job (at most cfg.commit_batch) and stores them all in ONE
 *   transaction: store_begin, per job store_inbox_put of its messages and
 *   send_status_apply of each delivery status (statuses go straight to
 *   their outbox rows: no inbox row, no worker pass), store_commit, then
 *   store_sync - one fsync for the lot, waited for after the writer lock
 *   is released so that other writers are not held up by the disk. Only
 *   then does it answer each request (200), so a 2xx always means durable.
 *   While that commit runs, new jobs pile up in the queue and form the
 *   next batch: the busier the endpoint, the more requests share each
 *   fsync, with no timer and no added latency when idle.
 *
 *   A batch that fails for a reason tied to its content (ERR_INVAL,
 *   ERR_CONFLICT, ERR_DB) is retried one job per transaction, so one bad
 *   request cannot fail its neighbours; failures of the store itself
 *   (ERR_AGAIN, ERR_FULL, ERR_IO) answer the whole batch 503 and Meta
 *   retries. A failure is logged once when it starts and once when commits
 *   succeed again, not on every commit in between.
 *
 *   ingest_stop: the committer finishes the commit in progress, answers
 *   every job still queued with 503 and exits.
 *
 * Tenant cache
 *   phone_number_id -> tenant id, direct-mapped (INGEST_CACHE_SLOTS slots,
 *   a colliding key replaces the old one, so it never grows), one mutex per
 *   stripe of slots. Known tenants live INGEST_POS_TTL_MS, unknown ids
 *   INGEST_NEG_TTL_MS so that a tenant provisioned a moment ago is found
 *   soon. Misses read the store through a small pool of connections (HTTP
 *   threads are not ours, so they cannot own connections).
 *
 * Threads and ownership
 *   struct ingest: app and cfg are read-only; queue fields under ig->mu;
 *   cache slots under their stripe's mutex; pool under pool_mu; conn is the
 *   committer's alone. A job lives in its request's arena: the handler
 *   builds it, then it belongs to the committer until http_respond.
 *   ingest_stop must be called once the HTTP server can no longer call the
 *   handlers (after http_server_stop), since it frees what they use.
 */
#include "ingest/ingest_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "ingest/envelope.h"
#include "ingest/sig.h"
#include "send/sender.h"
#include "send/wamsg.h"
#include "worker/backlog.h"
#include "worker/worker.h"

#define INGEST_PATH          "/webhooks/whatsapp"
#define INGEST_STRIPES       64
#define INGEST_POOL_MAX      8
#define INGEST_RETRY_AFTER   "5"
#define INGEST_CHALLENGE_MAX 1024
/* The commit window by default with a database server (--commit-window-ms
 * -1): what a statement costs there is the server's work and a round trip,
 * whatever its rows, so a commit's requests share their statements. */
#define INGEST_SERVER_WINDOW_MS 5
/* The most entries put_all offers in one call. */
#define INGEST_PUT_MAX 2000

struct ingest_job {
	struct http_req *req;
	struct inbox_entry *entries; /* messages, tenant ids resolved */
	int n;
	enum inbox_put_result *results;
	struct inbox_entry *statuses; /* delivery statuses, tenant ids resolved */
	int nstatus;
	struct send_move *moves; /* committer: what each status did to its row */
	int rc;                  /* committer: outcome of this job */
	struct ingest_job *next;
};

struct cache_slot {
	char key[INGEST_CACHE_KEYMAX + 1]; /* "" = empty */
	int64_t tenant_id;                 /* 0 = no such tenant */
	int64_t expires_ms;                /* monotonic */
};

struct ingest {
	struct app *app;
	pthread_t thread;
	int thread_started;
	struct store_conn *conn;      /* the committer's */
	struct worker_runner *runner; /* the committer's, NULL: no fast path */
	/* committer only: entries the transaction in progress put in the backlog */
	const struct inbox_entry **added;
	int nadded, added_cap;
	/* committer only: the entries of a commit's requests, put together */
	struct inbox_entry *put;
	enum inbox_put_result *put_results;
	int put_cap;

	pthread_mutex_t mu; /* queue */
	pthread_cond_t cv;
	struct ingest_job *head, *tail;
	int nqueued;
	int stop;

	int64_t window_ms; /* gather's */
	int failing;       /* committer only: the last commit failed */
	int again;         /* committer only: the runner asks for the commit again */
	long fail_count;
	char why[256]; /* committer only: text of the last store error */

	pthread_mutex_t stripe_mu[INGEST_STRIPES];
	struct cache_slot *slots; /* INGEST_CACHE_SLOTS */

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	struct store_conn *pool[INGEST_POOL_MAX];
	int pool_free; /* pool[0..pool_free) are idle */
	int pool_open; /* connections made */
};

static const char OK_BODY[] = "{\"ok\":true}";

/* ---- answers --------------------------------------------------------------- */

static void respond_json(struct http_req *r, unsigned int status, const char *body)
{
	http_respond(r, status, "application/json", body, strlen(body));
}

/* Answers a POST and counts it by status. */
static void answer(struct ingest *ig, struct http_req *r, unsigned int status, const char *body)
{
	atomic_fetch_add_explicit(&ig->app->metrics.webhook_requests[metrics_code_index(status)], 1,
	                          memory_order_relaxed);
	if (status == 503)
		http_set_header(r, "Retry-After", INGEST_RETRY_AFTER);
	respond_json(r, status, body);
}

/* ---- tenant cache and lookup connections ---------------------------------- */

static struct store_conn *pool_get(struct ingest *ig, int *rc)
{
	struct store_conn *c = NULL;
	*rc = 0;
	pthread_mutex_lock(&ig->pool_mu);
	while (ig->pool_free == 0 && ig->pool_open == INGEST_POOL_MAX)
		pthread_cond_wait(&ig->pool_cv, &ig->pool_mu);
	if (ig->pool_free > 0) {
		c = ig->pool[--ig->pool_free];
		pthread_mutex_unlock(&ig->pool_mu);
		return c;
	}
	ig->pool_open++;
	pthread_mutex_unlock(&ig->pool_mu);
	*rc = store_connect(ig->app->store, &c);
	if (*rc) {
		pthread_mutex_lock(&ig->pool_mu);
		ig->pool_open--;
		pthread_cond_signal(&ig->pool_cv);
		pthread_mutex_unlock(&ig->pool_mu);
		return NULL;
	}
	return c;
}

static void pool_put(struct ingest *ig, struct store_conn *c)
{
	pthread_mutex_lock(&ig->pool_mu);
	ig->pool[ig->pool_free++] = c;
	pthread_cond_signal(&ig->pool_cv);
	pthread_mutex_unlock(&ig->pool_mu);
}

/* 1 and *tenant_id on a live cache entry, else 0. */
static int cache_get(struct ingest *ig, const char *key, size_t klen, int64_t now,
                     int64_t *tenant_id)
{
	if (klen > INGEST_CACHE_KEYMAX)
		return 0;
	size_t i = hash_fnv1a(key, klen) % INGEST_CACHE_SLOTS;
	pthread_mutex_t *mu = &ig->stripe_mu[i % INGEST_STRIPES];
	int hit = 0;
	pthread_mutex_lock(mu);
	struct cache_slot *sl = &ig->slots[i];
	if (sl->expires_ms > now && strcmp(sl->key, key) == 0) {
		*tenant_id = sl->tenant_id;
		hit = 1;
	}
	pthread_mutex_unlock(mu);
	return hit;
}

static void cache_put(struct ingest *ig, const char *key, size_t klen, int64_t tenant_id,
                      int64_t expires)
{
	if (klen > INGEST_CACHE_KEYMAX)
		return;
	size_t i = hash_fnv1a(key, klen) % INGEST_CACHE_SLOTS;
	pthread_mutex_t *mu = &ig->stripe_mu[i % INGEST_STRIPES];
	pthread_mutex_lock(mu);
	struct cache_slot *sl = &ig->slots[i];
	memcpy(sl->key, key, klen + 1);
	sl->tenant_id = tenant_id;
	sl->expires_ms = expires;
	pthread_mutex_unlock(mu);
}

int ingest__resolve(struct ingest *ig, const char *pnid, int64_t *tenant_id)
{
	size_t klen = strlen(pnid);
	int64_t now = clock_mono_us() / 1000;
	struct tenant t;
	struct arena a;
	int rc;

	*tenant_id = 0;
	if (klen == 0)
		return 0;
	if (cache_get(ig, pnid, klen, now, tenant_id))
		return 0;
	struct store_conn *c = pool_get(ig, &rc);
	if (!c)
		return rc;
	arena_init(&a, 1024);
	rc = store_tenant_by_phone(c, pnid, &a, &t);
	if (rc == 0) {
		*tenant_id = t.id;
		cache_put(ig, pnid, klen, t.id, now + INGEST_POS_TTL_MS);
	} else if (rc == ERR_NOTFOUND) {
		rc = 0;
		cache_put(ig, pnid, klen, 0, now + INGEST_NEG_TTL_MS);
	} else {
		log_error("ingest.tenant_lookup_failed",
		          "could not look up tenant of phone_number_id \"%s\": %s", pnid,
		          store_errmsg(c));
	}
	arena_release(&a);
	pool_put(ig, c);
	return rc;
}

/* ---- the committer ----------------------------------------------------------- */

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
static int run_new(struct ingest *ig, struct ingest_job *j)
{
	struct backlog *bl = ig->app->backlog;
	for (int k = 0; k < j->n; k++) {
		if (j->results[k] != INBOX_PUT_NEW)
			continue;
		const struct inbox_entry *e = &j->entries[k];
		int finished = 0, rc = 0;
		if (e->state == INBOX_DONE && !backlog_has(bl, e->tenant_id, e->from) &&
		    (rc = worker_runner_entry(ig->runner, ig->conn, e, &finished)) != 0)
			return rc;
		if (finished)
			continue;
		if (e->state == INBOX_DONE && (rc = store_inbox_reopen(ig->conn, e->id)) != 0)
			return rc;
		backlog_add(bl, e->tenant_id, e->from);
		if (ig->nadded == ig->added_cap) {
			ig->added_cap = ig->added_cap ? ig->added_cap * 2 : 64;
			ig->added = xrealloc(ig->added, (size_t)ig->added_cap * sizeof(*ig->added));
		}
		ig->added[ig->nadded++] = e;
	}
	return 0;
}

/*
 * put_all offers the entries of jobs[0..n) to the inbox in one call (one
 * statement a partition, where the store batches): their ids and results
 * land in each job's own arrays.
 */
static int put_all(struct ingest *ig, struct store_conn *c, struct ingest_job **jobs, int n)
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
	if (total > ig->put_cap) {
		ig->put_cap = total;
		ig->put = xrealloc(ig->put, (size_t)total * sizeof(*ig->put));
		ig->put_results =
		        xrealloc(ig->put_results, (size_t)total * sizeof(*ig->put_results));
	}
	int m = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < jobs[i]->n; k++)
			ig->put[m++] = jobs[i]->entries[k];
	int rc = store_inbox_put(c, ig->put, total, ig->put_results);
	if (rc != 0)
		return rc;
	m = 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < jobs[i]->n; k++, m++) {
			jobs[i]->entries[k] = ig->put[m];
			jobs[i]->results[k] = ig->put_results[m];
		}
	return 0;
}

/* The transaction failed: what it put in the backlog was never pending. */
static void undo_added(struct ingest *ig)
{
	for (int i = 0; i < ig->nadded; i++)
		backlog_remove(ig->app->backlog, ig->added[i]->tenant_id, ig->added[i]->from);
	ig->nadded = 0;
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
static int commit_jobs(struct ingest *ig, struct ingest_job **jobs, int n, int64_t *fresh)
{
	struct store_conn *c = ig->conn;
	int64_t nnew = 0, ndup = 0;
	int rc = store_begin(c);
	if (rc) {
		snprintf(ig->why, sizeof(ig->why), "%s", store_errmsg(c));
		return rc;
	}
	int run = ig->runner != NULL;
	int64_t budget = atomic_load(&ig->app->inline_off) ? 0 : ig->app->cfg.inline_max;
	ig->nadded = 0;
	if (run) {
		worker_runner_begin(ig->runner);
		/* an empty inbox, seen with the writer lock held: no entry is
		 * pending, so the backlog is exactly none */
		if (!backlog_is_known(ig->app->backlog) &&
		    atomic_load(&ig->app->metrics.inbox_depth) == 0)
			backlog_known(ig->app->backlog);
	}
	for (int i = 0; i < n && run; i++)
		mark_inline(ig, jobs[i], &budget);
	if ((rc = put_all(ig, c, jobs, n)) != 0)
		goto fail;
	for (int i = 0; i < n && run; i++)
		for (int k = 0; k < jobs[i]->n; k++)
			if (jobs[i]->results[k] == INBOX_PUT_NEW &&
			    jobs[i]->entries[k].state == INBOX_DONE)
				worker_runner_expect(ig->runner, jobs[i]->entries[k].tenant_id);
	if (run && (rc = worker_runner_prefetch(ig->runner, c)) != 0)
		goto fail;
	/* in the requests' order: a customer's message that failed waits in
	 * the backlog, and the later ones of that customer (written done)
	 * are reopened behind it */
	for (int i = 0; i < n && run; i++)
		if ((rc = run_new(ig, jobs[i])) != 0)
			goto fail;
	if (run && (rc = worker_runner_flush(ig->runner, c)) != 0)
		goto fail;
	if ((rc = apply_statuses(ig, c, jobs, n)) != 0)
		goto fail;
	rc = store_commit(c);
	if (rc)
		goto fail;
	struct metrics *m = &ig->app->metrics;
	for (int i = 0; i < n; i++) {
		for (int k = 0; k < jobs[i]->nstatus; k++) {
			send_move_count(ig->app, &jobs[i]->moves[k]);
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
		snprintf(ig->why, sizeof(ig->why), "%s", store_errmsg(c));
	int64_t done = 0;
	if (run) {
		/* after the sync: the sender, woken now, finds its claim covered */
		done = worker_runner_committed(ig->runner, rc == 0);
		atomic_fetch_add_explicit(&m->inline_processed, (uint64_t)done,
		                          memory_order_relaxed);
	}
	*fresh += nnew - done;
	return rc;
fail:
	snprintf(ig->why, sizeof(ig->why), "%s", store_errmsg(c));
	store_rollback(c);
	if (run) {
		ig->again = worker_runner_rolled_back(ig->runner);
		undo_added(ig);
	}
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
static void commit_batch(struct ingest *ig, struct ingest_job **jobs, int n)
{
	int64_t fresh = 0;
	int rc = commit_jobs(ig, jobs, n, &fresh);
	/* a message (or the replies together) failed in the fast run: once
	 * more, each message on its own, so that only those at fault fail */
	if (rc && ig->again) {
		ig->again = 0;
		rc = commit_jobs(ig, jobs, n, &fresh);
	}

	for (int i = 0; i < n; i++)
		jobs[i]->rc = rc;
	if (rc && !err_transient(rc) && n > 1) {
		for (int i = 0; i < n; i++)
			jobs[i]->rc = commit_jobs(ig, &jobs[i], 1, &fresh);
	}
	int failed = 0;
	for (int i = 0; i < n; i++)
		if (jobs[i]->rc) {
			failed++;
			rc = jobs[i]->rc;
		}
	if (failed) {
		if (!ig->failing)
			log_error("ingest.commit_failed",
			          "could not store %d of %d webhook requests: %s: %s", failed, n,
			          err_str(rc), ig->why);
		ig->failing = 1;
		ig->fail_count += failed;
	} else if (ig->failing) {
		log_info("ingest.commit_recovered",
		         "inbox commits succeed again after %ld failed requests", ig->fail_count);
		ig->failing = 0;
		ig->fail_count = 0;
	}
	if (fresh > 0)
		app_inbox_wake(ig->app, new_parts(jobs, n));
	for (int i = 0; i < n; i++) {
		if (jobs[i]->rc == 0)
			answer(ig, jobs[i]->req, 200, OK_BODY);
		else
			answer(ig, jobs[i]->req, 503, "{\"error\":\"could not store, retry\"}");
	}
}

/*
 * gather, with ig->mu held and a request queued, waits up to the commit
 * window for more to share its commit, until max are queued: a commit's
 * statements then serve several requests (the store does a batch's
 * entries in one statement a partition), at a cost in latency of at most
 * the window.
 */
static void gather(struct ingest *ig, int max)
{
	int64_t window = ig->window_ms;
	if (window <= 0 || ig->nqueued >= max)
		return;
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += window / 1000;
	until.tv_nsec += (window % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	while (!ig->stop && ig->nqueued < max &&
	       pthread_cond_timedwait(&ig->cv, &ig->mu, &until) == 0)
		;
}

static void *committer_main(void *arg)
{
	struct ingest *ig = arg;
	pthread_setname_np(pthread_self(), "ingest-commit");
	/* room for the largest batch: doubled from spike level 1 (app_batch) */
	int room = (int)ig->app->cfg.commit_batch * 2;
	if (room < 1)
		room = 1;
	struct ingest_job **batch = xmalloc(sizeof(*batch) * (size_t)room);

	for (;;) {
		int n = 0, max = app_batch(ig->app, ig->app->cfg.commit_batch, room);
		pthread_mutex_lock(&ig->mu);
		while (!ig->head && !ig->stop)
			pthread_cond_wait(&ig->cv, &ig->mu);
		if (ig->stop) {
			pthread_mutex_unlock(&ig->mu);
			break;
		}
		gather(ig, max);
		while (ig->head && n < max) {
			batch[n++] = ig->head;
			ig->head = ig->head->next;
		}
		if (!ig->head)
			ig->tail = NULL;
		ig->nqueued -= n;
		pthread_mutex_unlock(&ig->mu);
		commit_batch(ig, batch, n);
	}

	/* stopping: whatever still waits gets 503 (the BSP retries) */
	pthread_mutex_lock(&ig->mu);
	struct ingest_job *j = ig->head;
	ig->head = ig->tail = NULL;
	ig->nqueued = 0;
	pthread_mutex_unlock(&ig->mu);
	while (j) {
		struct ingest_job *next = j->next; /* j dies with its request */
		answer(ig, j->req, 503, "{\"error\":\"shutting down\"}");
		j = next;
	}
	free(batch);
	return NULL;
}

/* Queues job for the committer; ERR_AGAIN when ingest is stopping. */
static int enqueue(struct ingest *ig, struct ingest_job *job)
{
	pthread_mutex_lock(&ig->mu);
	if (ig->stop) {
		pthread_mutex_unlock(&ig->mu);
		return ERR_AGAIN;
	}
	job->next = NULL;
	if (ig->tail)
		ig->tail->next = job;
	else
		ig->head = job;
	ig->tail = job;
	ig->nqueued++;
	pthread_cond_signal(&ig->cv);
	pthread_mutex_unlock(&ig->mu);
	return 0;
}

int ingest__queued(struct ingest *ig)
{
	pthread_mutex_lock(&ig->mu);
	int n = ig->nqueued;
	pthread_mutex_unlock(&ig->mu);
	return n;
}

int ingest__stopping(struct ingest *ig)
{
	pthread_mutex_lock(&ig->mu);
	int stop = ig->stop;
	pthread_mutex_unlock(&ig->mu);
	return stop;
}

/* ---- handlers ------------------------------------------------------------------- */

/* Equal in time independent of where (or whether) a and b differ. */
static int token_equal(const char *a, const char *b)
{
	unsigned char ha[SHA256_DIGEST_LENGTH], hb[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)a, strlen(a), ha);
	SHA256((const unsigned char *)b, strlen(b), hb);
	return CRYPTO_memcmp(ha, hb, sizeof(ha)) == 0;
}

/* GET: the subscription handshake. */
static void on_verify(struct http_req *r, void *ud)
{
	struct ingest *ig = ud;
	const char *mode = http_req_query(r, "hub.mode");
	const char *token = http_req_query(r, "hub.verify_token");
	const char *challenge = http_req_query(r, "hub.challenge");
	const char *want = ig->app->cfg.verify_token;

	if (!mode || strcmp(mode, "subscribe") != 0 || !token || !want || !*want ||
	    !token_equal(token, want)) {
		respond_json(r, 403, "{\"error\":\"forbidden\"}");
		return;
	}
	if (!challenge || strlen(challenge) > INGEST_CHALLENGE_MAX) {
		respond_json(r, 400, "{\"error\":\"bad hub.challenge\"}");
		return;
	}
	log_info("webhook.verified", "webhook subscription verified");
	http_respond(r, 200, "text/plain", challenge, strlen(challenge));
}

/* POST: a notification. */
static void on_post(struct http_req *r, void *ud)
{
	struct ingest *ig = ud;
	struct arena *a = http_req_arena(r);
	struct envelope env;
	size_t len;
	const char *body = http_req_body(r, &len);
	int rc;

	if (sig_verify(ig->app->cfg.app_secret, body, len,
	               http_req_header(r, "X-Hub-Signature-256")) != 0) {
		answer(ig, r, 401, "{\"error\":\"bad signature\"}");
		return;
	}
	rc = envelope_parse(body, len, clock_wall_ms(), a, &env);
	if (rc == ERR_TOOBIG) {
		answer(ig, r, 413, "{\"error\":\"more than 1000 messages and statuses\"}");
		return;
	}
	if (rc) {
		answer(ig, r, 400, "{\"error\":\"not a whatsapp business account webhook\"}");
		return;
	}

	struct metrics *m = &ig->app->metrics;
	atomic_fetch_add_explicit(&m->webhook_entries_skipped, (uint64_t)env.nskipped,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&m->webhook_payload_errors, (uint64_t)env.nerrors,
	                          memory_order_relaxed);
	int total = 0;
	for (int i = 0; i < env.nchanges; i++)
		total += env.changes[i].nentries;
	struct ingest_job *job = arena_calloc(a, sizeof(*job));
	size_t cap = (size_t)(total ? total : 1);
	job->req = r;
	job->entries = arena_alloc(a, sizeof(*job->entries) * cap);
	job->statuses = arena_alloc(a, sizeof(*job->statuses) * cap);
	for (int i = 0; i < env.nchanges; i++) {
		const struct env_change *ch = &env.changes[i];
		int64_t tid;
		if (ch->nentries == 0)
			continue;
		rc = ingest__resolve(ig, ch->phone_number_id, &tid);
		if (rc) {
			answer(ig, r, 503, "{\"error\":\"could not look up tenant, retry\"}");
			return;
		}
		if (tid == 0) {
			atomic_fetch_add_explicit(&ig->app->metrics.webhook_unknown_tenant, 1,
			                          memory_order_relaxed);
			log_warn("webhook.unknown_tenant",
			         "no tenant has phone_number_id \"%s\"; %d entries skipped",
			         ch->phone_number_id, ch->nentries);
			continue;
		}
		for (int k = 0; k < ch->nentries; k++) {
			const struct inbox_entry *e = &ch->entries[k];
			struct inbox_entry *to = e->kind == INBOX_STATUS
			                                 ? &job->statuses[job->nstatus++]
			                                 : &job->entries[job->n++];
			*to = *e;
			to->tenant_id = tid;
		}
	}
	if (job->n == 0 && job->nstatus == 0) {
		answer(ig, r, 200, OK_BODY);
		return;
	}
	job->results = arena_calloc(a, sizeof(*job->results) * (size_t)(job->n ? job->n : 1));
	job->moves =
	        arena_calloc(a, sizeof(*job->moves) * (size_t)(job->nstatus ? job->nstatus : 1));
	http_suspend(r);
	if (enqueue(ig, job) != 0)
		answer(ig, r, 503, "{\"error\":\"shutting down\"}");
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void ingest_free(struct ingest *ig)
{
	for (int i = 0; i < ig->pool_free; i++)
		store_disconnect(ig->pool[i]);
	store_disconnect(ig->conn);
	worker_runner_free(ig->runner);
	free(ig->added);
	free(ig->put);
	free(ig->put_results);
	for (int i = 0; i < INGEST_STRIPES; i++)
		pthread_mutex_destroy(&ig->stripe_mu[i]);
	pthread_mutex_destroy(&ig->mu);
	pthread_cond_destroy(&ig->cv);
	pthread_mutex_destroy(&ig->pool_mu);
	pthread_cond_destroy(&ig->pool_cv);
	free(ig->slots);
	free(ig);
}

/*
 * ingest_start connects the committer to app->store and starts it.
 * ERR_INVAL when no app secret is configured (nothing could ever verify);
 * the store's error when it cannot connect.
 */
int ingest_start(struct app *app, struct sender *sender, struct ingest **out)
{
	struct ingest *ig;
	int rc;

	*out = NULL;
	if (!app->cfg.app_secret || !*app->cfg.app_secret) {
		log_error("ingest.start_failed",
		          "could not start ingest: no app secret configured");
		return ERR_INVAL;
	}
	ig = xcalloc(1, sizeof(*ig));
	ig->app = app;
	ig->slots = xcalloc(INGEST_CACHE_SLOTS, sizeof(*ig->slots));
	pthread_mutex_init(&ig->mu, NULL);
	pthread_condattr_t ca; /* gather's deadline is monotonic */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ig->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&ig->pool_mu, NULL);
	pthread_cond_init(&ig->pool_cv, NULL);
	for (int i = 0; i < INGEST_STRIPES; i++)
		pthread_mutex_init(&ig->stripe_mu[i], NULL);

	ig->window_ms = app->cfg.commit_window_ms;
	if (ig->window_ms < 0)
		ig->window_ms = store_shared_writers(app->store) ? INGEST_SERVER_WINDOW_MS : 0;
	rc = store_connect(app->store, &ig->conn);
	/* one writer at a time: lazy, and store_sync per commit after the lock */
	if (rc == 0 && !store_shared_writers(app->store))
		rc = store_set_lazy_commits(ig->conn, 1);
	if (rc) {
		log_error("ingest.start_failed", "could not connect the ingest committer: %s",
		          err_str(rc));
		goto fail;
	}
	if (app->backlog)
		ig->runner = worker_runner_new(app, sender);
	rc = pthread_create(&ig->thread, NULL, committer_main, ig);
	if (rc) {
		log_error("ingest.start_failed", "could not start the committer thread: %s",
		          strerror(rc));
		rc = ERR_AGAIN;
		goto fail;
	}
	ig->thread_started = 1;
	*out = ig;
	return 0;
fail:
	ingest_free(ig);
	return rc;
}

void ingest_stop(struct ingest *ig)
{
	if (!ig)
		return;
	if (ig->thread_started) {
		pthread_mutex_lock(&ig->mu);
		ig->stop = 1;
		pthread_cond_signal(&ig->cv);
		pthread_mutex_unlock(&ig->mu);
		pthread_join(ig->thread, NULL);
	}
	ingest_free(ig);
}

/* The server refused a webhook by itself (body too large): count it. */
static void on_refused(unsigned int status, void *ud)
{
	struct ingest *ig = ud;
	atomic_fetch_add_explicit(&ig->app->metrics.webhook_requests[metrics_code_index(status)], 1,
	                          memory_order_relaxed);
}

int ingest_routes(struct ingest *ig, struct http_route *routes, int max)
{
	if (max < 2)
		return ERR_INVAL;
	routes[0] = (struct http_route){"GET", INGEST_PATH, 0, on_verify, ig, NULL};
	routes[1] = (struct http_route){"POST", INGEST_PATH, 0, on_post, ig, on_refused};
	return 2;
}
