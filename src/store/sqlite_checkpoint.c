/*
 * sqlite_checkpoint.c - the WAL copied into the database by a thread of its
 * own (store_checkpoint_in_background).
 *
 * Left to itself, SQLite checkpoints inside the commit that takes the WAL
 * past 1,000 pages: that writer copies every page the log holds into the
 * database file and fsyncs both, while the webhooks of its group wait for
 * their 200. Real message ids are random, so every message dirties its own
 * leaf of the inbox's id index and another of the outbox's provider-id
 * index, and those checkpoints came several times a second.
 *
 * Once started, connections made afterwards register a WAL hook instead of
 * the automatic checkpoint: a commit that leaves SQ_CKPT_PAGES or more in
 * the log not yet copied wakes the checkpoint thread (the hook is told the
 * log's length; the thread notes how much of it its last checkpoint
 * copied). It copies in two
 * PASSIVE checkpoints (they never wait for readers or writers) on its own
 * connection: the bulk while the others go on committing, then what they
 * added meanwhile with the store's writer mutex held - so the log is all
 * copied when the next writer begins, and that writer starts the log from
 * its beginning again instead of making it longer. If the thread falls
 * SQ_CKPT_BEHIND times behind, the committing connection checkpoints
 * itself, as SQLite would have, so the log cannot grow without bound.
 *
 * Durability is unchanged: a checkpoint syncs the WAL before it copies and
 * the database after (the thread's connection is synchronous=FULL), which
 * is what store_sync relies on.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/sqlite_internal.h"

/* Pages in the WAL that call for a checkpoint (SQLite's own default). */
#define SQ_CKPT_PAGES 1000
/* ... and how far past that a committing connection stops waiting for the
 * thread and checkpoints itself. */
#define SQ_CKPT_BEHIND 16

struct sq_checkpointer {
	struct store *st;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;             /* under mu */
	atomic_int wanted;    /* a commit asked for a checkpoint */
	atomic_int copied;    /* frames of the log the last checkpoint had copied */
	sqlite3 *db;          /* the thread's own connection */
	_Atomic int64_t done; /* checkpoints completed */
};

static int on_wal_commit(void *ud, sqlite3 *db, const char *name, int pages)
{
	struct sq_checkpointer *k = ud;
	int copied = atomic_load(&k->copied);
	/* pages is the log's length; below copied, the log has started over */
	int waiting = pages >= copied ? pages - copied : pages;
	if (waiting < SQ_CKPT_PAGES)
		return SQLITE_OK;
	if (waiting >= SQ_CKPT_PAGES * SQ_CKPT_BEHIND) {
		/* the thread is not keeping up: what SQLite would have done */
		sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
		return SQLITE_OK;
	}
	if (!atomic_exchange(&k->wanted, 1)) {
		pthread_mutex_lock(&k->mu);
		pthread_cond_signal(&k->cv);
		pthread_mutex_unlock(&k->mu);
	}
	return SQLITE_OK;
}

static void *checkpoint_main(void *arg)
{
	struct sq_checkpointer *k = arg;
	pthread_setname_np(pthread_self(), "store-ckpt");
	int failing = 0;
	pthread_mutex_lock(&k->mu);
	while (!k->stop) {
		if (!atomic_load(&k->wanted)) {
			/* set before the signal, under mu: no wake-up is missed */
			pthread_cond_wait(&k->cv, &k->mu);
			continue;
		}
		atomic_store(&k->wanted, 0);
		pthread_mutex_unlock(&k->mu);
		int log_pages = 0, copied = 0;
		int rc = sqlite3_wal_checkpoint_v2(k->db, "main", SQLITE_CHECKPOINT_PASSIVE, NULL,
		                                   NULL);
		if (rc == SQLITE_OK) {
			pthread_mutex_lock(&k->st->write_mu);
			rc = sqlite3_wal_checkpoint_v2(k->db, "main", SQLITE_CHECKPOINT_PASSIVE,
			                               &log_pages, &copied);
			pthread_mutex_unlock(&k->st->write_mu);
		}
		if (rc == SQLITE_OK) {
			atomic_store(&k->copied, copied);
			atomic_fetch_add(&k->done, 1);
			if (failing)
				log_info("store.checkpoint_recovered",
				         "WAL checkpoints succeed again");
			failing = 0;
		} else if ((rc & 0xff) != SQLITE_BUSY && !failing) {
			/* busy: another checkpoint is running, fine */
			log_error("store.checkpoint_failed", "could not checkpoint the WAL: %s",
			          sqlite3_errmsg(k->db));
			failing = 1;
		}
		pthread_mutex_lock(&k->mu);
	}
	pthread_mutex_unlock(&k->mu);
	return NULL;
}

int store__sq_checkpoint_start(struct store *st, sqlite3 *db)
{
	if (st->backend) {
		sqlite3_close(db);
		return 0; /* already running */
	}
	struct sq_checkpointer *k = xcalloc(1, sizeof(*k));
	k->st = st;
	k->db = db;
	pthread_mutex_init(&k->mu, NULL);
	pthread_cond_init(&k->cv, NULL);
	if (pthread_create(&k->thread, NULL, checkpoint_main, k) != 0) {
		log_error("store.checkpoint_failed", "could not start the checkpoint thread");
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
		sqlite3_close(db);
		free(k);
		return ERR_NOMEM;
	}
	st->backend = k;
	return 0;
}

void store__sq_checkpoint_hook(struct store *st, sqlite3 *db)
{
	struct sq_checkpointer *k = st->backend;
	if (k)
		sqlite3_wal_hook(db, on_wal_commit, k); /* replaces the automatic one */
}

int64_t store__sq_checkpoints(const struct store *st)
{
	const struct sq_checkpointer *k = st->backend;
	return k ? atomic_load(&k->done) : 0;
}

void store__sq_checkpoint_stop(struct store *st)
{
	struct sq_checkpointer *k = st->backend;
	if (!k)
		return;
	pthread_mutex_lock(&k->mu);
	k->stop = 1;
	pthread_cond_signal(&k->cv);
	pthread_mutex_unlock(&k->mu);
	pthread_join(k->thread, NULL);
	sqlite3_close(k->db);
	pthread_cond_destroy(&k->cv);
	pthread_mutex_destroy(&k->mu);
	free(k);
	st->backend = NULL;
}
