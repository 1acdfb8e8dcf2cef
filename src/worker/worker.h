/*
 * worker.h - the pool of threads that process the inbox.
 *
 * Thread i of n owns the partitions p with p % n == i among those its
 * process holds by lease (worker/lease.h, app->lease), so one customer's
 * messages (one tenant, one partition) are handled by one thread in arrival
 * order, while different shops run in parallel. Each message runs in its own
 * savepoint inside a batch transaction: inbox entry done + ERP changes +
 * outbox rows commit together.
 */
#ifndef MUNIM_WORKER_H
#define MUNIM_WORKER_H

#include "app.h"
#include "send/sender.h"
#include "store/store.h"

struct worker_pool;

/*
 * A runner does a worker's work on one entry inside a write transaction
 * the caller holds: the ERP effects, the replies into the outbox, the
 * entry marked done (or its failed attempt recorded, and later entries of
 * the same customer left for another transaction, so order holds). One
 * runner per thread; it keeps that thread's catalogue cache.
 *
 * A transaction runs fast first: its entries share it with no savepoint
 * of their own (PostgreSQL spends a statement on each savepoint and each
 * release, as much as on a message's real work). If one of them fails for
 * a reason other than the store's state, the caller rolls the whole
 * transaction back (worker_runner_rolled_back says to run it again) and
 * runs it once more carefully: each entry in a savepoint of its own and
 * each reply written as it comes, so that the entry at fault fails alone,
 * its attempt recorded, and the rest commit. After a commit the runner is
 * fast again.
 *
 * With a sender (direct), a reply may skip the outbox's claim: it is
 * written born claimed on a slot the sender reserved (sender_reserve) and
 * handed over (sender_give) once a commit is durable - the caller says so
 * to worker_runner_committed; rows of a commit not yet durable wait for
 * the next durable one (workers, whose commits are lazy, sync first when
 * they hold such rows).
 *
 * An entry may come written DONE already (e->state; store_inbox_put in
 * this same transaction, the ingest fast path): its success needs no
 * store_inbox_done, its failure reopens it before the attempt is recorded,
 * and when *finished stays 0 for another reason (its customer is blocked)
 * the caller reopens it (store_inbox_reopen).
 *
 * The replies of a fast transaction wait in the runner and go to the
 * outbox in one call before its commit (worker_runner_flush: one statement
 * for PostgreSQL, where a statement, not a row, is what costs). Should
 * that fail for a reason other than the store's state, the transaction
 * runs again carefully, as above.
 *
 *   worker_runner_begin        a transaction starts
 *   (worker_runner_expect ..., worker_runner_prefetch)
 *   worker_runner_entry ...    0: go on; < 0: roll back (the store failed,
 *                              or an entry of a fast transaction did);
 *                              *finished: the entry leaves the pending state
 *                              (done, or set aside) if the commit lands
 *   worker_runner_flush        the replies into the outbox; < 0: roll back
 *   store_commit, then worker_runner_committed (metrics move, the sender is
 *   woken; returns how many entries left the pending state)
 *   or store_rollback, then worker_runner_rolled_back (1: run the same
 *   transaction again at once, carefully; 0: the store's trouble)
 */
struct worker_runner;

struct worker_runner *worker_runner_new(struct app *app, struct sender *direct);
void worker_runner_free(struct worker_runner *r);
void worker_runner_begin(struct worker_runner *r);
int worker_runner_entry(struct worker_runner *r, struct store_conn *c, const struct inbox_entry *e,
                        int *finished);
int worker_runner_flush(struct worker_runner *r, struct store_conn *c);
/*
 * Before the entries, optionally: worker_runner_expect names the shop of
 * each message to come, worker_runner_prefetch reads those shops together
 * (store_tenants_get: one statement, where a message would take one each).
 * A shop read ahead serves its first message; a later message of the same
 * shop reads it again, with whatever the earlier one changed.
 */
void worker_runner_expect(struct worker_runner *r, int64_t tenant_id);
int worker_runner_prefetch(struct worker_runner *r, struct store_conn *c);
int worker_runner_committed(struct worker_runner *r, int durable);
int worker_runner_rolled_back(struct worker_runner *r);

/*
 * worker_reply_row fills *o with the outbox row of the ERP's reply r to
 * message e of tenant t: the Cloud API body (text, or text with reply
 * buttons) quoting e, built in a; not claimed. The ERP's other caller (the
 * AI thread, ai.c) writes its replies with it too. Returns 0, or ERR_INVAL
 * when e's sender has no phone number (a business-scoped user id, which
 * the "to" field cannot take): the caller logs it and queues nothing.
 * Any thread.
 */
struct arena;
struct erp_reply;
int worker_reply_row(const struct tenant *t, const struct inbox_entry *e, const struct erp_reply *r,
                     struct arena *a, struct outbox_new *o);

/* sender: where replies may go directly (NULL: none in this process). */
int worker_pool_start(struct app *app, struct sender *sender, struct worker_pool **out);
/* Joins the threads; the batch in progress commits or rolls back first. */
void worker_pool_stop(struct worker_pool *wp);
/*
 * worker_pool_resize makes n threads work the inbox (clamped to --workers
 * .. --workers-max), once the batches in flight are done; returns the
 * count now. Any thread; NULL wp: 0.
 */
int worker_pool_resize(struct worker_pool *wp, int n);
/* The threads working now, and the most there can be; NULL: 0. */
int worker_pool_size(const struct worker_pool *wp);
int worker_pool_capacity(const struct worker_pool *wp);

#endif
