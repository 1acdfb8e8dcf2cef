/*
 * store_sqlite.c - the SQLite backend: opening, connections, the statement
 * cache, error translation, transactions, migrations, tenants, customers
 * and the audit log. The catalogue, orders and invoices are in
 * sqlite_erp.c, the inbox and outbox in sqlite_queue.c.
 *
 * Design
 *   One database file in WAL mode with synchronous=FULL: a commit returns
 *   after the WAL is fsync'd, and readers never block the writer. A
 *   connection may commit lazily instead (synchronous=NORMAL) and make its
 *   commits durable with store_sync, an fsync of the WAL outside the
 *   writer lock (sq_set_lazy_commits, sq_sync); commits are numbered in log
 *   order so that a sync already covered is skipped. Each
 *   thread has its own connection (SQLITE_OPEN_NOMUTEX) and its own cache
 *   of prepared statements. foreign_keys is on for the ERP tables.
 *
 *   SQLite allows one writer. Threads of this process queue on
 *   st->write_mu, taken by store_begin before BEGIN IMMEDIATE and given
 *   back by commit/rollback; so the busy handler (busy_timeout, 5 s by
 *   default) only ever waits for other processes (a `munim tenant` command
 *   beside a running server). A write made without store_begin takes the
 *   mutex for its own short transaction (store__sq_op_begin).
 *
 * Transaction state of a connection:
 *
 *   idle --store_begin: lock write_mu, BEGIN IMMEDIATE--> in_txn
 *   in_txn --store_commit: COMMIT, unlock--> idle
 *          (a failed COMMIT that leaves the transaction open keeps the lock:
 *           the caller must roll back)
 *   in_txn --store_rollback: ROLLBACK, unlock--> idle
 *   in_txn --store_savepoint: SAVEPOINT msg--> in_savepoint
 *   in_savepoint --store_release: RELEASE msg--> in_txn
 *   in_savepoint --store_rollback_to: ROLLBACK TO msg; RELEASE msg--> in_txn
 *
 *   An I/O or disk-full error may make SQLite roll the whole transaction
 *   back by itself; commit and rollback_to then report it and rollback
 *   still releases the lock.
 *
 * Errors: SQLITE_BUSY/LOCKED → ERR_AGAIN, FULL → ERR_FULL, IOERR* and
 * CANTOPEN → ERR_IO, UNIQUE/PRIMARY KEY/CHECK/trigger constraints →
 * ERR_CONFLICT, anything else ERR_DB; the text stays in c->errmsg.
 *
 * Threads: struct store is shared (its mutex is the only thing written);
 * a struct store_conn and its statements belong to one thread. A thread
 * must not open a transaction on a second connection while it holds one:
 * the mutex is not recursive.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/sqlite_internal.h"

/* Memory map of the database file (shared by every connection of the
 * process, paged in by the kernel) and each connection's own page cache
 * (negative: KiB). */
#define SQ_CACHE_KIB "-4096"

/* ---- errors, statements, columns -------------------------------------------- */

int store__sq_map(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE: return 0;
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return ERR_AGAIN;
	case SQLITE_FULL: return ERR_FULL;
	case SQLITE_IOERR:
	case SQLITE_CANTOPEN: return ERR_IO;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY ||
		    rc == SQLITE_CONSTRAINT_CHECK || rc == SQLITE_CONSTRAINT_TRIGGER)
			return ERR_CONFLICT;
		return ERR_DB;
	default: return ERR_DB;
	}
}

int store__sq_err(struct store_conn *c, int rc, const char *what)
{
	int err = store__sq_map(rc);
	if (err == 0)
		err = ERR_DB; /* an unexpected success code where a failure was met */
	return store__errf(c, err, "could not %s: %s", what, sqlite3_errmsg(store__sq_db(c)));
}

/* cached_stmt gives the cached statement id (text sql), preparing it on first
 * use and resetting it on every later one. 0 or ERR_*. */
static int cached_stmt(struct store_conn *c, enum sq_stmt id, const char *sql, sqlite3_stmt **out)
{
	struct sq_conn *q = c->backend;
	sqlite3_stmt *st = q->stmt[id];
	if (!st) {
		int rc = sqlite3_prepare_v3(q->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL);
		if (rc != SQLITE_OK) {
			sqlite3_finalize(st);
			return store__errf(c, store__sq_map(rc) ? store__sq_map(rc) : ERR_DB,
			                   "could not prepare query (is the store migrated?): %s",
			                   sqlite3_errmsg(q->db));
		}
		q->stmt[id] = st;
	} else {
		sqlite3_reset(st);
	}
	*out = st;
	return 0;
}

/* bind_err: binding parameter failed with rc; records it, resets st. */
static int bind_err(struct store_conn *c, sqlite3_stmt *st, int rc, const char *what)
{
	int err = store__sq_map(rc);
	if (rc == SQLITE_TOOBIG || rc == SQLITE_RANGE || err == 0)
		err = ERR_INVAL;
	store__errf(c, err, "could not %s: %s", what, sqlite3_errmsg(store__sq_db(c)));
	sqlite3_reset(st);
	return err;
}

/* prep_va is store__sq_prep with its values in ap. */
static int prep_va(struct store_conn *c, enum sq_stmt id, const char *sql, const char *what,
                   sqlite3_stmt **out, const char *types, va_list ap)
{
	sqlite3_stmt *st = NULL;
	int rc = cached_stmt(c, id, sql, &st);
	if (rc < 0)
		return rc;
	for (int i = 0; types[i]; i++) {
		if (types[i] == 'i') {
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		} else if (types[i] == 't') {
			const char *s = va_arg(ap, const char *);
			rc = sqlite3_bind_text(st, i + 1, s ? s : "", -1, SQLITE_STATIC);
		} else {
			sqlite3_reset(st);
			return store__errf(c, ERR_INVAL, "could not %s: parameter %d has type '%c'",
			                   what, i + 1, types[i]);
		}
		if (rc != SQLITE_OK)
			return bind_err(c, st, rc, what);
	}
	*out = st;
	return 0;
}

int store__sq_prep(struct store_conn *c, enum sq_stmt id, const char *sql, const char *what,
                   sqlite3_stmt **out, const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int rc = prep_va(c, id, sql, what, out, types, ap);
	va_end(ap);
	return rc;
}

int store__sq_run(struct store_conn *c, enum sq_stmt id, const char *sql, const char *what,
                  const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	va_start(ap, types);
	int rc = prep_va(c, id, sql, what, &st, types, ap);
	va_end(ap);
	if (rc < 0)
		return rc;
	return store__sq_exec(c, st, what);
}

int store__sq_step(struct store_conn *c, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE)
		return 0;
	int err = store__sq_err(c, rc, what);
	sqlite3_reset(st);
	return err;
}

int store__sq_exec(struct store_conn *c, sqlite3_stmt *st, const char *what)
{
	int rc;
	while ((rc = store__sq_step(c, st, what)) == 1)
		;
	sqlite3_reset(st);
	return rc;
}

int store__sq_one(struct store_conn *c, sqlite3_stmt *st, const char *what, sq_row_fn read,
                  struct arena *a, void *row)
{
	int rc = store__sq_step(c, st, what);
	if (rc == 1) {
		read(st, a, row);
		rc = store__sq_exec(c, st, what);
		return rc < 0 ? rc : 1;
	}
	sqlite3_reset(st);
	return rc;
}

int store__sq_returning(struct store_conn *c, sqlite3_stmt *st, const char *what, sq_row_fn read,
                        struct arena *a, void *row)
{
	int rc = store__sq_one(c, st, what, read, a, row);
	if (rc == 0)
		return store__errf(c, ERR_DB, "could not %s: no row returned", what);
	return rc < 0 ? rc : 0;
}

int store__sq_rows(struct store_conn *c, sqlite3_stmt *st, const char *what, struct arena *a,
                   size_t elem, sq_row_fn read, void **rows, int *n)
{
	char *arr = NULL;
	int cap = 0, cnt = 0, rc;
	while ((rc = store__sq_step(c, st, what)) == 1) {
		if (cnt == cap) {
			/* double the room; the old copy stays in the arena */
			int ncap = cap ? cap * 2 : 16;
			char *p = arena_alloc(a, elem * (size_t)ncap);
			if (cnt > 0)
				memcpy(p, arr, elem * (size_t)cnt);
			arr = p;
			cap = ncap;
		}
		read(st, a, arr + elem * (size_t)cnt++);
	}
	sqlite3_reset(st);
	*rows = rc < 0 ? NULL : arr;
	*n = rc < 0 ? 0 : cnt;
	return rc;
}

void store__sq_read_int64(sqlite3_stmt *st, struct arena *a, void *row)
{
	(void)a;
	*(int64_t *)row = sqlite3_column_int64(st, 0);
}

const char *store__sq_col(sqlite3_stmt *st, int i, struct arena *a)
{
	const unsigned char *s = sqlite3_column_text(st, i);
	if (!s)
		return "";
	return arena_strndup(a, (const char *)s, (size_t)sqlite3_column_bytes(st, i));
}

/* ---- opening ------------------------------------------------------------------ */

static int pragma_text(sqlite3 *db, const char *sql, char *out, size_t outlen)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *s = sqlite3_column_text(st, 0);
			snprintf(out, outlen, "%s", s ? (const char *)s : "");
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			out[0] = '\0';
			rc = SQLITE_OK;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/*
 * open_db opens path with munim's settings. On failure: an ERR_* and the
 * reason in why (STORE_ERRMSG_MAX bytes).
 */
static int open_db(const char *path, int busy_ms, sqlite3 **out, char *why)
{
	sqlite3 *db = NULL;
	char mode[32];
	int rc;

	*out = NULL;
	rc = sqlite3_open_v2(
	        path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_extended_result_codes(db, 1);
	sqlite3_busy_timeout(db, busy_ms);
	rc = pragma_text(db, "PRAGMA journal_mode", mode, sizeof(mode));
	if (rc != SQLITE_OK)
		goto fail;
	if (strcmp(mode, "wal") != 0) {
		rc = pragma_text(db, "PRAGMA journal_mode=WAL", mode, sizeof(mode));
		if (rc != SQLITE_OK)
			goto fail;
		if (strcmp(mode, "wal") != 0) {
			snprintf(why, STORE_ERRMSG_MAX,
			         "could not switch to WAL mode (journal mode stays \"%s\")", mode);
			sqlite3_close(db);
			return ERR_DB;
		}
	}
	/* every commit is fsync'd (FULL) unless the connection is made lazy.
	 * No memory map: in WAL mode SQLite unmaps the whole map whenever
	 * another connection has committed (sqlite3PagerSharedLock), so with
	 * several writing threads every transaction paid munmap, mmap and the
	 * page faults after them - more than the pread they save */
	rc = sqlite3_exec(db,
	                  "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
	                  " PRAGMA mmap_size=0; PRAGMA cache_size=" SQ_CACHE_KIB,
	                  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	*out = db;
	return 0;

fail:
	snprintf(why, STORE_ERRMSG_MAX, "%s", db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	sqlite3_close(db);
	return store__sq_map(rc) ? store__sq_map(rc) : ERR_DB;
}

static const struct store_ops sq_ops;

int store__sqlite_open(const char *path, struct store **out, char *why)
{
	sqlite3 *db;
	int rc;

	if (!sqlite3_threadsafe()) {
		snprintf(why, STORE_ERRMSG_MAX, "the SQLite library was built without threads");
		return ERR_DB;
	}
	/* Open once now: a bad path or a locked-out file fails here, not in the
	 * first thread that connects, and the file is in WAL mode from now on. */
	rc = open_db(path, STORE_BUSY_TIMEOUT_MS, &db, why);
	if (rc < 0)
		return rc;
	sqlite3_close(db);

	struct store *st = xcalloc(1, sizeof(*st));
	st->ops = &sq_ops;
	st->url = xstrdup(path);
	st->busy_timeout_ms = STORE_BUSY_TIMEOUT_MS;
	pthread_mutex_init(&st->write_mu, NULL);
	*out = st;
	return 0;
}

static void sq_close(struct store *st)
{
	store__sq_checkpoint_stop(st);
	pthread_mutex_destroy(&st->write_mu);
	free(st->url);
	free(st);
}

static int sq_connect(struct store *st, struct store_conn **out)
{
	char why[STORE_ERRMSG_MAX];
	sqlite3 *db;
	int rc = open_db(st->url, st->busy_timeout_ms, &db, why);
	if (rc < 0) {
		log_error("store.connect_failed", "could not connect to store \"%s\": %s", st->url,
		          why);
		return rc;
	}
	store__sq_checkpoint_hook(st, db);
	struct sq_conn *q = xcalloc(1, sizeof(*q));
	q->db = db;
	struct store_conn *c = xcalloc(1, sizeof(*c));
	c->ops = st->ops;
	c->st = st;
	c->backend = q;
	*out = c;
	return 0;
}

static int sq_checkpoint_in_background(struct store *st)
{
	char why[STORE_ERRMSG_MAX];
	sqlite3 *db;
	int rc = open_db(st->url, st->busy_timeout_ms, &db, why);
	if (rc == 0)
		rc = store__sq_checkpoint_start(st, db);
	else
		log_error("store.checkpoint_failed",
		          "could not start checkpointing \"%s\" in the background: %s", st->url,
		          why);
	return rc;
}

/* SQLite counts its memory for the whole process, every store included. */
static int64_t sq_memory_bytes(const struct store *st)
{
	(void)st;
	return sqlite3_memory_used();
}

static int sq_rollback(struct store_conn *c);

static void sq_disconnect(struct store_conn *c)
{
	struct sq_conn *q = c->backend;
	if (c->in_txn)
		sq_rollback(c);
	for (int i = 0; i < SQ_NSTMT; i++)
		sqlite3_finalize(q->stmt[i]);
	sqlite3_close(q->db);
	free(q);
	free(c);
}

/* ---- transactions -------------------------------------------------------------- */

/* *seq = max(*seq, to) */
static void seq_advance(_Atomic int64_t *seq, int64_t to)
{
	int64_t cur = atomic_load(seq);
	while (cur < to && !atomic_compare_exchange_weak(seq, &cur, to))
		;
}

static void unlock_writer(struct store_conn *c)
{
	c->in_txn = 0;
	c->in_savepoint = 0;
	pthread_mutex_unlock(&c->st->write_mu);
}

void store__sq_count(struct store_conn *c, enum outbox_prio prio, int from, int to, int64_t n)
{
	struct sq_conn *q = c->backend;
	if (prio < 0 || prio >= PRIO_COUNT || from >= OUTBOX_STATE_COUNT || to < 0 ||
	    to >= OUTBOX_STATE_COUNT || from == to || n == 0)
		return;
	if (from >= 0)
		q->counts[prio][from] -= n;
	q->counts[prio][to] += n;
}

static void counts_forget(struct sq_conn *q)
{
	memset(q->counts, 0, sizeof(q->counts));
}

/* begin_as opens a write transaction; a failure says "could not <what>". */
static int begin_as(struct store_conn *c, const char *what)
{
	pthread_mutex_lock(&c->st->write_mu);
	int rc = store__sq_run(c, SQ_BEGIN, "BEGIN IMMEDIATE", what, "");
	if (rc < 0) {
		pthread_mutex_unlock(&c->st->write_mu);
		return rc;
	}
	c->in_txn = 1;
	c->in_savepoint = 0;
	counts_forget(c->backend);
	return 0;
}

static int sq_begin(struct store_conn *c)
{
	return begin_as(c, "begin transaction");
}

/* synchronous=NORMAL in WAL mode: a commit appends to the WAL without an
 * fsync; the next FULL commit's fsync of the same file covers it. */
static int sq_set_lazy_commits(struct store_conn *c, int lazy)
{
	const char *what = "change how commits wait";
	int rc = lazy ? store__sq_run(c, SQ_SYNC_NORMAL, "PRAGMA synchronous=NORMAL", what, "")
	              : store__sq_run(c, SQ_SYNC_FULL, "PRAGMA synchronous=FULL", what, "");
	if (rc == 0)
		((struct sq_conn *)c->backend)->lazy = lazy;
	return rc;
}

/*
 * The WAL file's own sync (fdatasync), outside any lock. Frames our commits
 * wrote are either still in the WAL - this makes them durable - or already
 * copied into the database by a checkpoint, which in WAL mode syncs the WAL
 * before it copies and the database after. A connection that has not
 * opened the WAL yet has committed nothing through it.
 */
static int sq_sync(struct store_conn *c)
{
	struct sq_conn *q = c->backend;
	if (atomic_load(&c->st->durable_seq) >= q->last_seq)
		return 0; /* another sync, or an ordinary commit, came after ours */
	/* every commit numbered up to here has written its frames */
	int64_t upto = atomic_load(&c->st->commit_seq);
	sqlite3_file *wal = NULL;
	int rc = sqlite3_file_control(q->db, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal);
	if (rc != SQLITE_OK || !wal || !wal->pMethods)
		return 0;
	rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL);
	if (rc != SQLITE_OK)
		return store__errf(c, ERR_IO, "could not sync the write-ahead log: %s",
		                   sqlite3_errstr(rc));
	seq_advance(&c->st->durable_seq, upto);
	return 0;
}

/* counts_flush writes the transaction's outbox changes to outbox_counts. */
static int counts_flush(struct store_conn *c)
{
	static const char sql[] = "INSERT INTO outbox_counts (priority, state, n)"
	                          " VALUES (?1, ?2, ?3) ON CONFLICT (priority, state)"
	                          " DO UPDATE SET n = n + excluded.n";
	struct sq_conn *q = c->backend;
	for (int p = 0; p < PRIO_COUNT; p++)
		for (int s = 0; s < OUTBOX_STATE_COUNT; s++) {
			if (q->counts[p][s] == 0)
				continue;
			int rc = store__sq_run(c, SQ_OUTBOX_COUNTS_ADD, sql, "count outbox rows",
			                       "iii", (int64_t)p, (int64_t)s, q->counts[p][s]);
			if (rc < 0)
				return rc;
		}
	counts_forget(q); /* written: a retried COMMIT must not add them again */
	return 0;
}

static int sq_commit(struct store_conn *c)
{
	sqlite3 *db = store__sq_db(c);
	if (sqlite3_get_autocommit(db)) {
		counts_forget(c->backend);
		unlock_writer(c);
		return store__errf(c, ERR_DB,
		                   "could not commit: the transaction was rolled back after an "
		                   "earlier error");
	}
	int rc = counts_flush(c);
	if (rc < 0)
		return rc; /* the transaction stays open: the caller rolls it back */
	rc = store__sq_run(c, SQ_COMMIT, "COMMIT", "commit", "");
	if (rc == 0) {
		/* numbered under write_mu, so in the order of the log */
		struct sq_conn *q = c->backend;
		q->last_seq = atomic_fetch_add(&c->st->commit_seq, 1) + 1;
		if (!q->lazy) /* its fsync covered every commit before it */
			seq_advance(&c->st->durable_seq, q->last_seq);
	}
	if (rc == 0 || sqlite3_get_autocommit(db))
		unlock_writer(c);
	return rc;
}

static int sq_rollback(struct store_conn *c)
{
	int rc = 0;
	counts_forget(c->backend);
	if (!sqlite3_get_autocommit(store__sq_db(c)))
		rc = store__sq_run(c, SQ_ROLLBACK, "ROLLBACK", "roll back", "");
	unlock_writer(c);
	return rc;
}

static int sq_savepoint(struct store_conn *c)
{
	struct sq_conn *q = c->backend;
	int rc = store__sq_run(c, SQ_SAVEPOINT, "SAVEPOINT msg", "set savepoint", "");
	if (rc == 0) {
		c->in_savepoint = 1;
		memcpy(q->counts_at_savepoint, q->counts, sizeof(q->counts));
	}
	return rc;
}

static int sq_release(struct store_conn *c)
{
	int rc = store__sq_run(c, SQ_RELEASE, "RELEASE msg", "release savepoint", "");
	if (rc == 0 || sqlite3_get_autocommit(store__sq_db(c)))
		c->in_savepoint = 0;
	return rc;
}

static int sq_rollback_to(struct store_conn *c)
{
	int rc;
	c->in_savepoint = 0;
	if (sqlite3_get_autocommit(store__sq_db(c)))
		return store__errf(c, ERR_DB,
		                   "could not roll back to savepoint: the transaction was rolled "
		                   "back after an earlier error");
	rc = store__sq_run(c, SQ_ROLLBACK_TO, "ROLLBACK TO msg", "roll back to savepoint", "");
	if (rc == 0) {
		struct sq_conn *q = c->backend;
		memcpy(q->counts, q->counts_at_savepoint, sizeof(q->counts));
		rc = store__sq_run(c, SQ_RELEASE, "RELEASE msg", "release savepoint", "");
	}
	return rc;
}

int store__sq_op_begin(struct store_conn *c, int multi, const char *what, enum sq_op_mode *mode)
{
	int rc;
	*mode = SQ_MODE_NONE;
	if (!c->in_txn) {
		rc = begin_as(c, what);
		if (rc == 0)
			*mode = SQ_MODE_TXN;
		return rc;
	}
	if (!multi)
		return 0;
	rc = store__sq_run(c, SQ_OP_SAVEPOINT, "SAVEPOINT store_op", "set savepoint", "");
	if (rc == 0)
		*mode = SQ_MODE_SAVEPOINT;
	return rc;
}

int store__sq_op_end(struct store_conn *c, enum sq_op_mode mode, int rc)
{
	char msg[STORE_ERRMSG_MAX];
	sqlite3 *db = store__sq_db(c);

	if (mode == SQ_MODE_NONE)
		return rc;
	if (rc == 0) {
		if (mode == SQ_MODE_SAVEPOINT)
			return store__sq_run(c, SQ_OP_RELEASE, "RELEASE store_op",
			                     "release savepoint", "");
		rc = sq_commit(c);
		if (rc == 0 || !c->in_txn)
			return rc;
		/* the commit failed and left our own transaction open */
	}
	/* undo, keeping the message of the first error */
	memcpy(msg, c->errmsg, sizeof(msg));
	if (mode == SQ_MODE_TXN) {
		sq_rollback(c);
	} else if (!sqlite3_get_autocommit(db)) {
		if (store__sq_run(c, SQ_OP_ROLLBACK_TO, "ROLLBACK TO store_op",
		                  "roll back to savepoint", "") == 0)
			store__sq_run(c, SQ_OP_RELEASE, "RELEASE store_op", "release savepoint",
			              "");
	}
	memcpy(c->errmsg, msg, sizeof(msg));
	return rc;
}

/* ---- migrations ------------------------------------------------------------------ */

/* query_int runs a one-off query (not cached: it may name a table that does
 * not exist yet) and reads the integer in its first row (0 when no row). */
static int query_int(struct store_conn *c, const char *sql, int64_t *v, const char *what)
{
	sqlite3_stmt *st = NULL;
	sqlite3 *db = store__sq_db(c);
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	*v = 0;
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*v = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			rc = SQLITE_OK;
		}
	}
	int err = rc == SQLITE_OK ? 0 : store__sq_err(c, rc, what);
	sqlite3_finalize(st);
	return err;
}

static int sq_schema_version(struct store_conn *c, int *version)
{
	int64_t v;
	int rc = query_int(c,
	                   "SELECT count(*) FROM sqlite_master"
	                   " WHERE type = 'table' AND name = 'schema_migrations'",
	                   &v, "read schema version");
	if (rc == 0 && v > 0)
		rc = query_int(c, "SELECT coalesce(max(version), 0) FROM schema_migrations", &v,
		               "read schema version");
	*version = rc == 0 ? (int)v : 0;
	return rc;
}

/* exec_sql runs one statement of a migration. */
static int exec_sql(struct store_conn *c, const char *sql, int version)
{
	char what[64];
	int rc = sqlite3_exec(store__sq_db(c), sql, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		return 0;
	snprintf(what, sizeof(what), "apply migration %d", version);
	return store__sq_err(c, rc, what);
}

/*
 * sq_migrate applies each missing version in its own transaction. The
 * version is re-read inside the transaction (BEGIN IMMEDIATE holds the
 * write lock), so two processes migrating at once apply each version once.
 */
static int sq_migrate(struct store_conn *c, int *applied)
{
	int rc = 0;
	*applied = 0;
	for (int v = 1; v <= store__sq_nmigrations; v++) {
		int cur;
		char ins[128];
		rc = sq_begin(c);
		if (rc < 0)
			return rc;
		rc = exec_sql(c,
		              "CREATE TABLE IF NOT EXISTS schema_migrations ("
		              " version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)",
		              v);
		if (rc == 0)
			rc = sq_schema_version(c, &cur);
		if (rc < 0)
			goto fail;
		if (cur >= v) {
			rc = sq_commit(c);
			if (rc < 0)
				goto fail;
			continue;
		}
		for (const char *const *sql = store__sq_migrations[v - 1]; *sql; sql++) {
			rc = exec_sql(c, *sql, v);
			if (rc < 0)
				goto fail;
		}
		snprintf(ins, sizeof(ins),
		         "INSERT INTO schema_migrations (version, applied_at) VALUES (%d, %lld)", v,
		         (long long)clock_wall_ms());
		rc = exec_sql(c, ins, v);
		if (rc < 0)
			goto fail;
		rc = sq_commit(c);
		if (rc < 0)
			goto fail;
		(*applied)++;
	}
	return 0;

fail:
	if (c->in_txn) {
		char msg[STORE_ERRMSG_MAX];
		memcpy(msg, c->errmsg, sizeof(msg));
		sq_rollback(c);
		memcpy(c->errmsg, msg, sizeof(msg));
	}
	return rc;
}

/* ---- tenants ------------------------------------------------------------------------ */

#define TENANT_COLS                                                                                \
	"id, name, phone_number_id, gstin, state_code, upi_id, owner_numbers, address, "           \
	"created_at, catalog_rev"

static void read_tenant(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct tenant *t = row;
	t->id = sqlite3_column_int64(st, 0);
	t->name = store__sq_col(st, 1, a);
	t->phone_number_id = store__sq_col(st, 2, a);
	t->gstin = store__sq_col(st, 3, a);
	t->state_code = store__sq_col(st, 4, a);
	t->upi_id = store__sq_col(st, 5, a);
	t->owner_numbers = store__sq_col(st, 6, a);
	t->address = store__sq_col(st, 7, a);
	t->created_at = sqlite3_column_int64(st, 8);
	t->catalog_rev = sqlite3_column_int64(st, 9);
}

static int sq_tenant_add(struct store_conn *c, const struct tenant *t, int64_t *id)
{
	static const char sql[] = "INSERT INTO tenants (name, phone_number_id, gstin, state_code,"
	                          " upi_id, owner_numbers, address, created_at)"
	                          " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
	const char *what = "add tenant";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_TENANT_ADD, sql, what, "ttttttti", t->name, t->phone_number_id,
	                   t->gstin, t->state_code, t->upi_id, t->owner_numbers, t->address,
	                   clock_wall_ms());
	if (rc == ERR_CONFLICT)
		store__errf(c, rc, "could not add tenant: phone number id \"%s\" is taken",
		            t->phone_number_id);
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(store__sq_db(c));
	return store__sq_op_end(c, mode, rc);
}

static int sq_tenant_get(struct store_conn *c, int64_t id, struct arena *a, struct tenant *out)
{
	static const char sql[] = "SELECT " TENANT_COLS " FROM tenants WHERE id = ?1";
	const char *what = "read tenant";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_TENANT_GET, sql, what, &st, "i", id);
	if (rc < 0)
		return rc;
	rc = store__sq_one(c, st, what, read_tenant, a, out);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not read tenant: no tenant %lld",
		                   (long long)id);
	return rc < 0 ? rc : 0;
}

static int sq_tenant_by_phone(struct store_conn *c, const char *phone_number_id, struct arena *a,
                              struct tenant *out)
{
	static const char sql[] = "SELECT " TENANT_COLS " FROM tenants WHERE phone_number_id = ?1";
	const char *what = "find tenant";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_TENANT_BY_PHONE, sql, what, &st, "t", phone_number_id);
	if (rc < 0)
		return rc;
	rc = store__sq_one(c, st, what, read_tenant, a, out);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND,
		                   "could not find tenant: no tenant has phone number id \"%s\"",
		                   phone_number_id);
	return rc < 0 ? rc : 0;
}

static int sq_tenant_list(struct store_conn *c, int64_t after_id, int limit, struct arena *a,
                          struct tenant **out, int *n)
{
	static const char sql[] =
	        "SELECT " TENANT_COLS " FROM tenants WHERE id > ?1 ORDER BY id LIMIT ?2";
	const char *what = "list tenants";
	sqlite3_stmt *st;
	void *rows = NULL;
	*n = 0;
	int rc = store__sq_prep(c, SQ_TENANT_LIST, sql, what, &st, "ii", after_id, (int64_t)limit);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**out), read_tenant, &rows, n);
	*out = rows;
	return rc;
}

static int sq_tenant_count(struct store_conn *c, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM tenants";
	const char *what = "count tenants";
	sqlite3_stmt *st;
	*n = 0;
	int rc = store__sq_prep(c, SQ_TENANT_COUNT, sql, what, &st, "");
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, n);
	return rc < 0 ? rc : 0;
}

/* ---- customers ------------------------------------------------------------------------ */

void store__sq_read_customer(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct customer *cu = row;
	cu->id = sqlite3_column_int64(st, 0);
	cu->tenant_id = sqlite3_column_int64(st, 1);
	cu->wa_id = store__sq_col(st, 2, a);
	cu->name = store__sq_col(st, 3, a);
	cu->state_code = store__sq_col(st, 4, a);
	cu->last_inbound_at = sqlite3_column_int64(st, 5);
}

int store__sq_customer_find(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                            const char *what, struct arena *a, struct customer *out)
{
	static const char sql[] = "SELECT id, tenant_id, wa_id, name, state_code, last_inbound_at"
	                          " FROM customers WHERE tenant_id = ?1 AND wa_id = ?2";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_CUSTOMER_FIND, sql, what, &st, "it", tenant_id, wa_id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_customer, a, out);
	return rc;
}

static int sq_customer_touch(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                             const char *name, int64_t inbound_at, struct arena *a,
                             struct customer *out)
{
	static const char sql[] =
	        "INSERT INTO customers (tenant_id, wa_id, name, last_inbound_at)"
	        " VALUES (?1, ?2, ?3, ?4)"
	        " ON CONFLICT (tenant_id, wa_id) DO UPDATE SET"
	        " name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE customers.name END,"
	        " last_inbound_at = max(customers.last_inbound_at, excluded.last_inbound_at)"
	        " RETURNING id, tenant_id, wa_id, name, state_code, last_inbound_at";
	const char *what = "record customer";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	/* the usual case, a known customer writing again: nothing to write */
	rc = store__sq_customer_find(c, tenant_id, wa_id, what, a, out);
	if (rc == 1 && (!name[0] || strcmp(name, out->name) == 0) &&
	    inbound_at < out->last_inbound_at + STORE_INBOUND_SLACK_MS)
		return store__sq_op_end(c, mode, 0);
	if (rc < 0)
		return store__sq_op_end(c, mode, rc);
	rc = store__sq_prep(c, SQ_CUSTOMER_TOUCH, sql, what, &st, "itti", tenant_id, wa_id, name,
	                    inbound_at);
	if (rc == 0)
		rc = store__sq_returning(c, st, what, store__sq_read_customer, a, out);
	return store__sq_op_end(c, mode, rc);
}

static int sq_customer_set_state(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                 const char *state_code)
{
	static const char sql[] =
	        "UPDATE customers SET state_code = ?3 WHERE tenant_id = ?1 AND wa_id = ?2";
	const char *what = "set customer state";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_CUSTOMER_SET_STATE, sql, what, "itt", tenant_id, wa_id,
	                   state_code);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) == 0)
		rc = store__errf(c, ERR_NOTFOUND,
		                 "could not set customer state: no customer \"%s\"", wa_id);
	return store__sq_op_end(c, mode, rc);
}

/* ---- audit ------------------------------------------------------------------------------ */

static int sq_audit(struct store_conn *c, int64_t tenant_id, const char *actor, const char *action,
                    const char *detail)
{
	static const char sql[] =
	        "INSERT INTO audit_log (tenant_id, actor, action, detail, created_at)"
	        " VALUES (?1, ?2, ?3, ?4, ?5)";
	const char *what = "write audit record";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_AUDIT, sql, what, "ittti", tenant_id, actor, action, detail,
	                   clock_wall_ms());
	return store__sq_op_end(c, mode, rc);
}

/* ---- the ops table ------------------------------------------------------------------------ */

static const struct store_ops sq_ops = {
        .name = "sqlite",
        .close = sq_close,
        .connect = sq_connect,
        .checkpoint_in_background = sq_checkpoint_in_background,
        .checkpoints = store__sq_checkpoints,
        .memory_bytes = sq_memory_bytes,
        .disconnect = sq_disconnect,
        .migrate = sq_migrate,
        .schema_version = sq_schema_version,
        .begin = sq_begin,
        .set_lazy_commits = sq_set_lazy_commits,
        .sync = sq_sync,
        .commit = sq_commit,
        .rollback = sq_rollback,
        .savepoint = sq_savepoint,
        .release = sq_release,
        .rollback_to = sq_rollback_to,
        .tenant_add = sq_tenant_add,
        .tenant_get = sq_tenant_get,
        .tenant_by_phone = sq_tenant_by_phone,
        .tenant_count = sq_tenant_count,
        .tenant_list = sq_tenant_list,
        .tenant_template = store__sq_tenant_template,
        .tenant_set_template = store__sq_tenant_set_template,
        .tenant_set_token_hash = store__sq_tenant_set_token_hash,
        .tenant_by_token_hash = store__sq_tenant_by_token_hash,
        .product_upsert = store__sq_product_upsert,
        .products_list = store__sq_products_list,
        .product_get = store__sq_product_get,
        .product_set_price = store__sq_product_set_price,
        .stock_move = store__sq_stock_move,
        .ledger_sum = store__sq_ledger_sum,
        .products_low = store__sq_products_low,
        .customer_touch = sq_customer_touch,
        .customer_set_state = sq_customer_set_state,
        .customer_get = store__sq_customer_get,
        .customer_set_opted_out = store__sq_customer_set_opted_out,
        .customers_active = store__sq_customers_active,
        .outbox_cancel_marketing = store__sq_outbox_cancel_marketing,
        .order_create = store__sq_order_create,
        .order_get = store__sq_order_get,
        .order_last = store__sq_order_last,
        .order_last_draft = store__sq_order_last_draft,
        .order_set_status = store__sq_order_set_status,
        .order_set_paid = store__sq_order_set_paid,
        .invoice_issue = store__sq_invoice_issue,
        .invoice_last = store__sq_invoice_last,
        .invoice_by_order = store__sq_invoice_by_order,
        .sales_since = store__sq_sales_since,
        .audit = sq_audit,
        .inbox_put = store__sq_inbox_put,
        .inbox_pending = store__sq_inbox_pending,
        .inbox_done = store__sq_inbox_done,
        .inbox_reopen = store__sq_inbox_reopen,
        .inbox_failed = store__sq_inbox_failed,
        .inbox_depth = store__sq_inbox_depth,
        .inbox_waiting = store__sq_inbox_waiting,
        .outbox_add = store__sq_outbox_add,
        .outbox_claim = store__sq_outbox_claim,
        .outbox_claim_to = store__sq_outbox_claim_to,
        .outbox_recover = store__sq_outbox_recover,
        .outbox_claimed_here = store__sq_outbox_claimed_here,
        .outbox_accepted = store__sq_outbox_accepted,
        .outbox_retry = store__sq_outbox_retry,
        .outbox_fail = store__sq_outbox_fail,
        .outbox_defer = store__sq_outbox_defer,
        .outbox_resend = store__sq_outbox_resend,
        .outbox_expire = store__sq_outbox_expire,
        .outbox_waiting_by_tenant = store__sq_outbox_waiting_by_tenant,
        .outbox_status = store__sq_outbox_status,
        .outbox_merge = store__sq_outbox_merge,
        .outbox_list = store__sq_outbox_list,
        .outbox_counts = store__sq_outbox_counts,
        .outbox_next_due = store__sq_outbox_next_due,
        .ai_job_add = store__sq_ai_job_add,
        .ai_job_waiting = store__sq_ai_job_waiting,
        .ai_job_claim = store__sq_ai_job_claim,
        .ai_job_finish = store__sq_ai_job_finish,
        .ai_job_release = store__sq_ai_job_release,
        .ai_job_recover = store__sq_ai_job_recover,
        .ai_job_get = store__sq_ai_job_get,
        .ai_job_count = store__sq_ai_job_count,
        .ocr_add = store__sq_ocr_add,
        .ocr_list = store__sq_ocr_list,
        .ocr_done = store__sq_ocr_done,
        .ocr_depth = store__sq_ocr_depth,
        .customer_ensure = store__sq_customer_ensure,
        .orders_list = store__sq_orders_list,
        .sync_op_get = store__sq_sync_op_get,
        .sync_op_put = store__sq_sync_op_put,
        .node_join = store__sq_node_join,
        .node_beat = store__sq_node_beat,
        .node_leave = store__sq_node_leave,
        .nodes_live = store__sq_nodes_live,
        .partitions_claim = store__sq_partitions_claim,
        .partitions_release = store__sq_partitions_release,
};
