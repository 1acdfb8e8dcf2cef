/*
 * store_pg.c - the PostgreSQL backend: opening, connections, running
 * statements, error translation, transactions, the scope of a
 * transaction, durable commits and migrations. The operations themselves
 * are in pg_erp.c, pg_queue.c and pg_ai.c (see pg_internal.h for what
 * they share).
 *
 * Design
 *   One libpq connection per struct store_conn (each thread owns its own),
 *   parameters in text format. Each statement is prepared on a connection
 *   the first time it runs there and run by name from then on, with
 *   plan_cache_mode = force_generic_plan: planned once, its partitions
 *   pruned when it runs (planning a statement over 64 partitions costs
 *   far more than running it). store_set_prepared(st, 0) sends every
 *   statement's text instead, for PgBouncer in transaction mode, which
 *   (before 1.21) cannot carry prepared statements.
 *
 *   Commits are durable when COMMIT returns (synchronous_commit on: with a
 *   synchronous standby, on both servers), except on a connection that
 *   asked for lazy commits, whose transactions set synchronous_commit off
 *   and whose store_sync is one small durable transaction: its commit
 *   record is flushed (and replicated) after every earlier one, so it
 *   covers them all. munim's own threads ask for none on this store
 *   (store_shared_writers).
 *
 *   The scope (pg_internal.h) is set with set_config(..., true) on the
 *   transaction's first statement and whenever an operation needs another;
 *   a session user that would bypass row-level security (a superuser, or a
 *   role with BYPASSRLS) gets set_config('role', 'munim_app', true) with
 *   it, so munim's statements never run with more than munim_app's rights.
 *   Migrations run as the session user: they create what munim_app uses.
 *
 *   The lead: a statement whose answer is only "done" (BEGIN, the scope's
 *   set_config, SAVEPOINT, RELEASE) is not sent on its own. It waits in
 *   the connection's lead and goes with the next statement that has an
 *   answer, in one round trip: ahead of a simple query's text, or as the
 *   first statements of a libpq pipeline ending in that statement. An
 *   error in the lead is that statement's error (the pipeline skips the
 *   rest), and the transaction is then aborted as it would have been.
 *   A message's savepoint, its tenant's scope and the release of the one
 *   before all travel with its first read.
 *
 * Transaction state of a connection (c->in_txn, pg->txn_open):
 *
 *   idle --store_begin--> in_txn, BEGIN not yet queued
 *   in_txn --first operation: BEGIN, set_config... into the lead--> txn_open
 *          (sent with the operation's first statement)
 *   in_txn --store_commit: lead; COMMIT (nothing if BEGIN never left)--> idle
 *   in_txn --store_rollback: ROLLBACK (the lead dropped)--> idle
 *   in_txn --store_savepoint: SAVEPOINT msg into the lead--> in_savepoint
 *   in_savepoint --store_release: RELEASE into the lead--> in_txn
 *   in_savepoint --store_rollback_to: lead; ROLLBACK TO; RELEASE--> in_txn
 *
 * Threads: struct store is read-only after store_open; a store_conn
 * belongs to one thread.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/pg_internal.h"

/* ---- errors --------------------------------------------------------------------------------- */

static int sqlstate_err(const char *state, int *lost)
{
	*lost = 0;
	if (!state || strlen(state) != 5)
		return ERR_DB;
	if (!strncmp(state, "23", 2))
		return ERR_CONFLICT;
	if (!strcmp(state, "40001") || !strcmp(state, "40P01") || !strcmp(state, "55P03"))
		return ERR_AGAIN;
	if (!strncmp(state, "08", 2) || !strcmp(state, "57P01") || !strcmp(state, "57P02") ||
	    !strcmp(state, "57P03") || !strcmp(state, "25006")) {
		*lost = 1;
		return ERR_AGAIN;
	}
	if (!strcmp(state, "57014"))
		return ERR_TIMEOUT;
	if (!strcmp(state, "53100") || !strcmp(state, "53200"))
		return ERR_FULL;
	return ERR_DB;
}

/* one_line copies msg into out without its trailing newline. */
static void one_line(char *out, size_t cap, const char *msg)
{
	snprintf(out, cap, "%s", msg ? msg : "");
	size_t n = strlen(out);
	while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == ' '))
		out[--n] = '\0';
}

int store__pg_err(struct store_conn *c, const PGresult *res, const char *what)
{
	struct pg_session *pg = c->backend;
	char msg[STORE_ERRMSG_MAX];
	int lost = 0, rc;

	if (res && PQresultErrorField(res, PG_DIAG_SQLSTATE)) {
		rc = sqlstate_err(PQresultErrorField(res, PG_DIAG_SQLSTATE), &lost);
		one_line(msg, sizeof(msg), PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	} else {
		/* no SQLSTATE: libpq's own failure, the connection's */
		rc = ERR_AGAIN;
		lost = 1;
		one_line(msg, sizeof(msg), PQerrorMessage(pg->db));
	}
	if (PQstatus(pg->db) != CONNECTION_OK)
		lost = 1;
	if (lost) {
		pg->broken = 1;
		rc = ERR_AGAIN;
	}
	if (rc == ERR_DB && !strncmp(msg, "relation ", 9) && strstr(msg, "does not exist"))
		return store__errf(c, rc, "could not %s: %s (is the store migrated?)", what, msg);
	return store__errf(c, rc, "could not %s: %s%s", what, msg,
	                   lost ? " (connection lost)" : "");
}

/* ---- statements ----------------------------------------------------------------------------- */

/* Text of the parameters of one statement. */
struct pg_args {
	int n;
	const char *v[PG_MAX_ARGS];
	char num[PG_MAX_ARGS][24];
};

static int args_bind(struct store_conn *c, const char *what, struct pg_args *a, const char *types,
                     va_list ap)
{
	a->n = 0;
	for (const char *t = types; *t; t++) {
		if (a->n == PG_MAX_ARGS)
			return store__errf(c, ERR_INVAL, "could not %s: too many parameters", what);
		switch (*t) {
		case 'i':
			snprintf(a->num[a->n], sizeof(a->num[a->n]), "%lld",
			         (long long)va_arg(ap, int64_t));
			a->v[a->n] = a->num[a->n];
			break;
		case 't': {
			const char *s = va_arg(ap, const char *);
			a->v[a->n] = s ? s : "";
			break;
		}
		case 'n': a->v[a->n] = va_arg(ap, const char *); break;
		default:
			return store__errf(c, ERR_INVAL,
			                   "could not %s: unknown parameter type '%c'", what, *t);
		}
		a->n++;
	}
	return 0;
}

static uint32_t sql_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* prepared_forget empties c's table: its connection is gone or going. */
static void prepared_forget(struct pg_session *pg)
{
	if (!pg->prepared)
		return;
	for (int i = 0; i < PG_PREPARED_SLOTS; i++)
		free(pg->prepared[i].sql);
	free(pg->prepared);
	pg->prepared = NULL;
	pg->nprepared = 0;
}

/*
 * prepared_name writes into name (cap bytes) the name sql is prepared
 * under on c's connection, preparing it first when new. 1: run it by that
 * name; 0: send it unprepared (turned off, or the table is three quarters
 * full); or the error of preparing it (a statement that does not parse
 * fails here as it would unprepared).
 */
static int prepared_name(struct store_conn *c, const char *what, const char *sql, char *name,
                         size_t cap)
{
	struct pg_session *pg = c->backend;
	if (c->st->unprepared)
		return 0;
	if (!pg->prepared)
		pg->prepared = xcalloc(PG_PREPARED_SLOTS, sizeof(*pg->prepared));
	uint32_t h = sql_hash(sql);
	int slot = (int)(h % PG_PREPARED_SLOTS);
	while (pg->prepared[slot].sql) {
		const struct pg_prepared *p = &pg->prepared[slot];
		if (p->hash == h && !strcmp(p->sql, sql)) {
			snprintf(name, cap, "m%d", slot);
			return 1;
		}
		slot = (slot + 1) % PG_PREPARED_SLOTS;
	}
	if (pg->nprepared >= PG_PREPARED_SLOTS / 4 * 3)
		return 0;
	/* preparing takes the statement's table locks: within the transaction,
	 * under its lock_timeout, so the lead goes first */
	int rc = pg->nlead > 0 ? store__pg_simple(c, what, "") : 0;
	if (rc < 0)
		return rc;
	snprintf(name, cap, "m%d", slot);
	PGresult *r = PQprepare(pg->db, name, sql, 0, NULL);
	rc = 1;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = store__pg_err(c, r, what);
	PQclear(r);
	if (rc == 1) {
		pg->prepared[slot].sql = xstrdup(sql);
		pg->prepared[slot].hash = h;
		pg->nprepared++;
	}
	return rc;
}

/* ---- the lead ------------------------------------------------------------------------------ */

static void lead_clear(struct pg_session *pg)
{
	pg->lead_len = 0;
	pg->nlead = 0;
	pg->lead_begins = 0;
}

/*
 * simple_exec runs sql (statements, no parameters; "" for none) after the
 * lead's, as one simple query: PQexec's result (the last statement's, or
 * the first error's).
 */
static PGresult *simple_exec(struct store_conn *c, const char *sql)
{
	struct pg_session *pg = c->backend;
	if (pg->nlead == 0)
		return PQexec(pg->db, sql);
	struct buf b;
	buf_init(&b);
	for (const char *s = pg->lead; s < pg->lead + pg->lead_len; s += strlen(s) + 1) {
		if (b.len > 0)
			buf_puts(&b, "; ");
		buf_puts(&b, s);
	}
	if (*sql)
		buf_printf(&b, "; %s", sql);
	lead_clear(pg);
	PGresult *r = PQexec(pg->db, b.data);
	buf_release(&b);
	return r;
}

/* lead_add queues sql, one statement; a full lead is sent first on its own. */
static int lead_add(struct store_conn *c, const char *what, const char *sql)
{
	struct pg_session *pg = c->backend;
	size_t n = strlen(sql) + 1;
	if (pg->nlead > 0 && pg->lead_len + n > sizeof(pg->lead)) {
		int rc = store__pg_simple(c, what, "");
		if (rc < 0)
			return rc;
	}
	if (n > sizeof(pg->lead))
		return store__pg_simple(c, what, sql);
	memcpy(pg->lead + pg->lead_len, sql, n);
	pg->lead_len += n;
	pg->nlead++;
	return 0;
}

/* pipeline_end reads the pipeline's Sync and leaves pipeline mode: 0, or
 * -1 when the connection cannot go on (it is then broken). */
static int pipeline_end(PGconn *db)
{
	int ok = PQstatus(db) == CONNECTION_OK;
	if (ok) {
		PGresult *r = PQgetResult(db);
		ok = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
		PQclear(r);
	}
	return ok && PQexitPipelineMode(db) ? 0 : -1;
}

/*
 * exec_led sends the lead's statements and then the statement (prepared as
 * name, or NULL: its text sql) in one pipeline, one round trip, and reads
 * every answer: the statement's result, or NULL with the first error in
 * *err (a lead statement's: the rest were skipped), or with *err NULL when
 * the connection failed.
 */
static PGresult *exec_led(struct store_conn *c, const char *name, const char *sql,
                          const struct pg_args *a, PGresult **err)
{
	struct pg_session *pg = c->backend;
	PGconn *db = pg->db;
	PGresult *res = NULL;
	int sent = 0, want = pg->nlead + 1;
	int ok = PQenterPipelineMode(db);

	*err = NULL;
	for (const char *s = pg->lead; ok && s < pg->lead + pg->lead_len; s += strlen(s) + 1) {
		ok = PQsendQueryParams(db, s, 0, NULL, NULL, NULL, NULL, 0);
		sent += ok;
	}
	lead_clear(pg);
	if (ok) {
		ok = name ? PQsendQueryPrepared(db, name, a->n, a->v, NULL, NULL, 0)
		          : PQsendQueryParams(db, sql, a->n, NULL, a->v, NULL, NULL, 0);
		sent += ok;
	}
	if (ok)
		ok = PQpipelineSync(db);
	for (int q = 0; ok && q < sent; q++) {
		PGresult *r;
		while ((r = PQgetResult(db)) != NULL) {
			ExecStatusType s = PQresultStatus(r);
			int good = s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK;
			if (good && q == want - 1 && !res)
				res = r;
			else if (!good && s != PGRES_PIPELINE_ABORTED && !*err)
				*err = r;
			else
				PQclear(r);
		}
		ok = PQstatus(db) == CONNECTION_OK;
	}
	if (!ok || pipeline_end(db) < 0) {
		pg->broken = 1;
		PQclear(res);
		return NULL;
	}
	if (*err) {
		PQclear(res);
		return NULL;
	}
	return res;
}

/* ---- statements, continued ------------------------------------------------------------------ */

static int vquery(struct store_conn *c, const char *what, const char *sql, PGresult **res,
                  const char *types, va_list ap)
{
	struct pg_args a;
	char name[16];
	int rc;

	*res = NULL;
	if (!sql)
		return store__errf(c, ERR_TOOBIG, "could not %s: the statement is too long", what);
	if ((rc = args_bind(c, what, &a, types, ap)) < 0)
		return rc;
	if ((rc = prepared_name(c, what, sql, name, sizeof(name))) < 0)
		return rc;
	struct pg_session *pg = c->backend;
	PGresult *r, *err = NULL;
	if (pg->nlead > 0)
		r = exec_led(c, rc ? name : NULL, sql, &a, &err);
	else
		r = rc ? PQexecPrepared(pg->db, name, a.n, a.v, NULL, NULL, 0)
		       : PQexecParams(pg->db, sql, a.n, NULL, a.v, NULL, NULL, 0);
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK) {
		rc = store__pg_err(c, err ? err : r, what);
		PQclear(err);
		PQclear(r);
		return rc;
	}
	*res = r;
	return 0;
}

int store__pg_query(struct store_conn *c, const char *what, const char *sql, PGresult **res,
                    const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int rc = vquery(c, what, sql, res, types, ap);
	va_end(ap);
	return rc;
}

int store__pg_exec(struct store_conn *c, const char *what, const char *sql, const char *types, ...)
{
	PGresult *r;
	va_list ap;
	va_start(ap, types);
	int rc = vquery(c, what, sql, &r, types, ap);
	va_end(ap);
	if (rc < 0)
		return rc;
	rc = atoi(PQcmdTuples(r));
	PQclear(r);
	return rc;
}

int store__pg_simple(struct store_conn *c, const char *what, const char *sql)
{
	PGresult *r = simple_exec(c, sql);
	ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
	int rc = 0;
	if (s != PGRES_TUPLES_OK && s != PGRES_COMMAND_OK)
		rc = store__pg_err(c, r, what);
	PQclear(r);
	return rc;
}

const char *store__pg_in_part(char *buf, size_t cap, const char *sql, int64_t part)
{
	char num[24];
	int nlen = snprintf(num, sizeof(num), "%lld", (long long)part);
	size_t n = 0;
	for (const char *p = sql; *p; p++) {
		int mark = p[0] == '@' && p[1] == '@';
		size_t len = mark ? (size_t)nlen : 1;
		if (n + len >= cap)
			return NULL;
		memcpy(buf + n, mark ? num : p, len);
		n += len;
		p += mark;
	}
	buf[n] = 0;
	return buf;
}

int store__pg_count_rows(struct store_conn *c, const char *what, const char *sql, int64_t *n)
{
	PGresult *r;
	int own;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "");
	if (rc == 0) {
		*n = store__pg_i64(r, 0, 0);
		PQclear(r);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		*n = 0;
	return rc;
}

void store__pg_arr_init(struct buf *b)
{
	buf_init(b);
	buf_putc(b, '{');
}

void store__pg_arr_int(struct buf *b, int64_t v)
{
	if (b->len > 1)
		buf_putc(b, ',');
	if (v < 0) {
		buf_putc(b, '-');
		buf_put_u64(b, 0 - (uint64_t)v);
	} else {
		buf_put_u64(b, (uint64_t)v);
	}
}

void store__pg_arr_text(struct buf *b, const char *s)
{
	if (b->len > 1)
		buf_putc(b, ',');
	buf_putc(b, '"');
	if (s) {
		const char *run = s;
		for (; *s; s++) {
			if (*s != '"' && *s != '\\')
				continue;
			buf_append(b, run, (size_t)(s - run));
			buf_putc(b, '\\');
			run = s; /* the quote or backslash itself starts the next run */
		}
		buf_append(b, run, (size_t)(s - run));
	}
	buf_putc(b, '"');
}

const char *store__pg_arr_end(struct buf *b)
{
	buf_putc(b, '}');
	return b->data;
}

int64_t store__pg_i64(const PGresult *res, int row, int col)
{
	if (PQgetisnull(res, row, col))
		return 0;
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

const char *store__pg_str(const PGresult *res, int row, int col, struct arena *a)
{
	if (PQgetisnull(res, row, col))
		return "";
	return arena_strndup(a, PQgetvalue(res, row, col), (size_t)PQgetlength(res, row, col));
}

void *store__pg_alloc_rows(struct arena *a, int n, size_t elem)
{
	if (n <= 0)
		return NULL;
	void *p = arena_alloc(a, (size_t)n * elem);
	memset(p, 0, (size_t)n * elem);
	return p;
}

/* ---- connections ---------------------------------------------------------------------------- */

/*
 * pg_session_check reads whether the session user would bypass row-level
 * security and, on a connection for writes, that the server takes them;
 * on a replica, how far its replay is behind (*lag_ms: 0 when it has
 * replayed all it received, else the age of the last transaction it
 * replayed).
 */
static int pg_session_check(struct store_conn *c, int64_t *lag_ms)
{
	struct pg_session *pg = c->backend;
	PGresult *r;
	int rc = store__pg_query(c, "read the session's role",
	                         "SELECT rolsuper OR rolbypassrls, pg_is_in_recovery(),"
	                         " CASE WHEN NOT pg_is_in_recovery()"
	                         "  OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
	                         "  ELSE coalesce(extract(epoch FROM now() - "
	                         "pg_last_xact_replay_timestamp()) * 1000,"
	                         "   0)::bigint END"
	                         " FROM pg_roles WHERE rolname = current_user",
	                         &r, "");
	if (rc < 0)
		return rc;
	*lag_ms = 0;
	if (PQntuples(r) == 1) {
		pg->set_role = PQgetvalue(r, 0, 0)[0] == 't';
		*lag_ms = store__pg_i64(r, 0, 2);
		if (PQgetvalue(r, 0, 1)[0] == 't' && !pg->on_replica)
			rc = store__errf(
			        c, ERR_AGAIN,
			        "could not connect: the server is a standby (read-only); "
			        "list the primary, or add target_session_attrs=read-write");
	}
	PQclear(r);
	return rc;
}

/* Notices ("relation ... already exists, skipping") are not errors. */
static void ignore_notice(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

/*
 * pg_connect_url opens (again) c's libpq connection to url (replica: a read
 * replica, whose lag goes to *lag_ms).
 */
static int pg_connect_url(struct store_conn *c, const char *url, int replica, int64_t *lag_ms)
{
	struct pg_session *pg = c->backend;

	prepared_forget(pg);
	if (pg->db)
		PQfinish(pg->db);
	pg->unsynced_lost += pg->unsynced;
	pg->unsynced = 0;
	pg->conninfo = url;
	pg->on_replica = replica;
	pg->db = PQconnectdb(url);
	if (pg->db)
		PQsetNoticeProcessor(pg->db, ignore_notice, NULL);
	pg->broken = 0;
	pg->txn_open = 0;
	pg->scope = 0;
	lead_clear(pg);
	if (!pg->db || PQstatus(pg->db) != CONNECTION_OK) {
		char msg[STORE_ERRMSG_MAX];
		one_line(msg, sizeof(msg), pg->db ? PQerrorMessage(pg->db) : "out of memory");
		pg->broken = 1;
		return store__errf(c, ERR_AGAIN, "could not connect to PostgreSQL: %s", msg);
	}
	int rc = pg_session_check(c, lag_ms);
	/* prepared statements get one plan for all parameters: a custom plan
	 * per call would plan every partition's pruning again each time */
	if (rc == 0 && !c->st->unprepared)
		rc = store__pg_simple(c, "choose generic plans",
		                      "SET plan_cache_mode = force_generic_plan");
	if (rc < 0)
		pg->broken = 1;
	pg->lag_checked_ms = clock_mono_us() / 1000;
	return rc;
}

/*
 * pg_connect_db connects c: a connection for writes to the primary; one for
 * reads to the next replica (round robin) that answers and is within the
 * lag bound, else to the primary.
 */
static int pg_connect_db(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	struct pg_store *ps = c->st->backend;
	int64_t lag = 0;

	if (pg->for_reads && ps->nreplicas > 0) {
		unsigned first = atomic_fetch_add(&ps->next_replica, 1);
		for (int i = 0; i < ps->nreplicas; i++) {
			const char *url =
			        ps->replicas[(first + (unsigned)i) % (unsigned)ps->nreplicas];
			if (pg_connect_url(c, url, 1, &lag) == 0 && lag <= ps->max_lag_ms)
				return 0;
		}
	}
	return pg_connect_url(c, ps->conninfo, 0, &lag);
}

/*
 * replica_check: a replica connection between transactions, its lag not
 * read for PG_LAG_CHECK_MS, reads it; past the bound, it moves (another
 * replica, or the primary).
 */
static int replica_check(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	struct pg_store *ps = c->st->backend;
	int64_t now = clock_mono_us() / 1000, lag = 0;
	if (!pg->on_replica || now - pg->lag_checked_ms < PG_LAG_CHECK_MS)
		return 0;
	pg->lag_checked_ms = now;
	if (pg_session_check(c, &lag) == 0 && lag <= ps->max_lag_ms)
		return 0;
	log_warn("store.replica_behind", "a read replica is %lld ms behind (over %d): moving",
	         (long long)lag, ps->max_lag_ms);
	return pg_connect_db(c);
}

static int pg_reconnect_if_broken(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	if (!pg->broken && pg->db && PQstatus(pg->db) == CONNECTION_OK)
		return replica_check(c);
	log_warn("store.reconnect", "PostgreSQL connection lost: connecting again");
	return pg_connect_db(c);
}

static int pg_connect_as(struct store *st, int for_reads, struct store_conn **out)
{
	struct store_conn *c = xcalloc(1, sizeof(*c));
	struct pg_session *pg = xcalloc(1, sizeof(*pg));
	pg->for_reads = for_reads;
	static _Atomic int next_shard;
	c->ops = st->ops;
	c->st = st;
	c->backend = pg;
	pg->shard = (int)(atomic_fetch_add(&next_shard, 1) % PG_COUNT_SHARDS);
	int rc = pg_connect_db(c);
	if (rc < 0) {
		log_error("store.connect_failed", "%s", c->errmsg);
		prepared_forget(pg);
		if (pg->db)
			PQfinish(pg->db);
		free(pg);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static int pg_connect(struct store *st, struct store_conn **out)
{
	return pg_connect_as(st, 0, out);
}

static int pg_connect_read(struct store *st, struct store_conn **out)
{
	return pg_connect_as(st, 1, out);
}

static void pg_set_replicas(struct store *st, const char *urls, int max_lag_ms)
{
	struct pg_store *ps = st->backend;
	for (int i = 0; i < ps->nreplicas; i++)
		free(ps->replicas[i]);
	free(ps->replicas);
	ps->replicas = NULL;
	ps->nreplicas = 0;
	ps->max_lag_ms = max_lag_ms;
	for (const char *p = urls; *p;) {
		size_t len = strcspn(p, ",");
		if (len > 0) {
			ps->replicas = xrealloc(ps->replicas, (size_t)(ps->nreplicas + 1) *
			                                              sizeof(*ps->replicas));
			ps->replicas[ps->nreplicas++] = xstrndup(p, len);
		}
		p += len + (p[len] == ',');
	}
}

static void pg_disconnect(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	prepared_forget(pg);
	if (pg->db)
		PQfinish(pg->db); /* an open transaction is rolled back by the server */
	free(pg);
	free(c);
}

static void pg_close(struct store *st)
{
	struct pg_store *ps = st->backend;
	if (ps) {
		store__pg_listen_stop(st);
		pg_set_replicas(st, "", 0);
		free(ps->conninfo);
	}
	free(ps);
	free(st->url);
	free(st);
}

/* ---- transactions and scope ----------------------------------------------------------------- */

/*
 * scope_sql writes into buf the statement that sets the scope (and the
 * role and commit mode, at the start of a transaction): values are
 * integers and fixed names, so they are written into the text, which lets
 * it wait in the lead.
 */
static void scope_sql(const struct store_conn *c, enum pg_scope scope, int64_t tenant, int first,
                      char *buf, size_t cap)
{
	const struct pg_session *pg = c->backend;
	int n = snprintf(buf, cap,
	                 "SELECT set_config('munim.tenant', '%lld', true),"
	                 " set_config('munim.scope', '%s', true)",
	                 scope == PG_SCOPE_TENANT ? (long long)tenant : -1LL,
	                 scope == PG_SCOPE_SYSTEM ? "system" : "");
	if (first && pg->set_role)
		n += snprintf(buf + n, cap - (size_t)n,
		              ", set_config('role', '" PG_APP_ROLE "', true)");
	if (first && pg->lazy)
		n += snprintf(buf + n, cap - (size_t)n,
		              ", set_config('synchronous_commit', 'off', true)");
	if (first && c->st->busy_timeout_ms > 0)
		snprintf(buf + n, cap - (size_t)n, ", set_config('lock_timeout', '%d', true)",
		         c->st->busy_timeout_ms);
}

/* roll_back ends the transaction the server has begun, if any (ROLLBACK),
 * and drops the lead. */
static int roll_back(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	int sent = pg->txn_open && !pg->lead_begins;
	lead_clear(pg);
	return sent && !pg->broken ? store__pg_simple(c, "roll back", "ROLLBACK") : 0;
}

static int set_scope(struct store_conn *c, enum pg_scope scope, int64_t tenant, const char *what)
{
	struct pg_session *pg = c->backend;
	char sql[512];
	int first = !pg->txn_open;

	if (!first && pg->scope == scope && (scope != PG_SCOPE_TENANT || pg->tenant == tenant))
		return 0;
	scope_sql(c, scope, tenant, first, sql, sizeof(sql));
	int rc = 0;
	if (first) {
		lead_clear(pg);
		rc = lead_add(c, what, "BEGIN");
		pg->lead_begins = 1;
	}
	if (rc == 0)
		rc = lead_add(c, what, sql);
	if (rc < 0) {
		pg->scope = 0;
		return rc;
	}
	pg->txn_open = 1;
	pg->scope = scope;
	pg->tenant = tenant;
	return 0;
}

int store__pg_op_begin(struct store_conn *c, enum pg_scope scope, int64_t tenant, const char *what,
                       int *own)
{
	struct pg_session *pg = c->backend;
	int rc;

	*own = 0;
	if (!c->in_txn) {
		if ((rc = pg_reconnect_if_broken(c)) < 0)
			return rc;
		pg->txn_open = 0;
		*own = 1;
	} else if (pg->broken) {
		return store__errf(c, ERR_AGAIN, "could not %s: connection lost (roll back)", what);
	}
	rc = set_scope(c, scope, tenant, what);
	if (rc < 0 && *own) {
		roll_back(c);
		pg->txn_open = 0;
		*own = 0;
	}
	return rc;
}

/* ---- outbox counts -------------------------------------------------------------------------- */

void store__pg_count(struct store_conn *c, enum outbox_prio prio, int from, int to, int64_t n)
{
	struct pg_session *pg = c->backend;
	if (n == 0 || (unsigned)prio >= PRIO_COUNT || to < 0 || to >= OUTBOX_STATE_COUNT)
		return;
	if (from >= 0 && from < OUTBOX_STATE_COUNT)
		pg->counts[prio][from] -= n;
	pg->counts[prio][to] += n;
}

void store__pg_wake(struct store_conn *c, enum store_wake what, int part)
{
	struct pg_session *pg = c->backend;
	pg->wake |= 1u << what;
	if (what == STORE_WAKE_INBOX)
		pg->wake_parts |= part >= 0 && part < STORE_PARTITIONS ? 1ULL << part : ~0ULL;
}

/*
 * commit_sql writes into sql what a commit sends, in one round trip: the
 * transaction's outbox counts added to its shard of outbox_counts (one
 * statement for every cell that changed), the NOTIFYs it asked for, and
 * COMMIT. A statement that fails stops the rest: the transaction is then
 * aborted, and end_txn rolls it back.
 */
static void commit_sql(const struct pg_session *pg, char *sql, size_t cap)
{
	size_t n = 0;
	int cells = 0;
	for (int p = 0; p < PRIO_COUNT; p++)
		for (int s = 0; s < OUTBOX_STATE_COUNT; s++)
			if (pg->counts[p][s] != 0)
				n += (size_t)snprintf(
				        sql + n, cap - n, "%s(%d, %d, %d, %lld)",
				        cells++ ? ", "
				                : "INSERT INTO outbox_counts AS o"
				                  " (shard, priority, state, n) VALUES ",
				        pg->shard, p, s, (long long)pg->counts[p][s]);
	if (cells > 0)
		n += (size_t)snprintf(sql + n, cap - n,
		                      " ON CONFLICT (shard, priority, state)"
		                      " DO UPDATE SET n = o.n + excluded.n; ");
	if (pg->wake & (1u << STORE_WAKE_INBOX))
		n += (size_t)snprintf(sql + n, cap - n, "NOTIFY munim_inbox, '%llx'; ",
		                      (unsigned long long)pg->wake_parts);
	if (pg->wake & (1u << STORE_WAKE_OUTBOX))
		n += (size_t)snprintf(sql + n, cap - n, "NOTIFY munim_outbox; ");
	snprintf(sql + n, cap - n, "COMMIT");
}

/*
 * commit_send sends sql (ending in COMMIT); a transaction that an earlier
 * error had aborted answers COMMIT with "ROLLBACK", which is a failure.
 */
static int commit_send(struct store_conn *c, const char *sql)
{
	PGresult *r = simple_exec(c, sql);
	int rc = 0;
	if (!r || PQresultStatus(r) != PGRES_COMMAND_OK)
		rc = store__pg_err(c, r, "commit");
	else if (strcmp(PQcmdStatus(r), "COMMIT") != 0)
		rc = store__errf(
		        c, ERR_DB,
		        "could not commit: the transaction was aborted by an earlier error");
	PQclear(r);
	return rc;
}

/* end_txn commits (with commit_sql) or rolls back a transaction that was
 * begun; a failed commit is rolled back. */
static int end_txn(struct store_conn *c, int commit)
{
	struct pg_session *pg = c->backend;
	int sent = pg->txn_open && !pg->lead_begins; /* else nothing reached the server */
	int rc = 0;
	if (sent && !pg->broken) {
		char sql[2048];
		if (commit) {
			commit_sql(pg, sql, sizeof(sql));
			rc = commit_send(c, sql);
		} else {
			rc = roll_back(c);
		}
		if (rc < 0 && commit) { /* a failed commit is rolled back */
			char msg[STORE_ERRMSG_MAX];
			memcpy(msg, c->errmsg, sizeof(msg));
			roll_back(c);
			memcpy(c->errmsg, msg, sizeof(msg));
		}
	} else if (sent && commit) {
		rc = store__errf(c, ERR_AGAIN, "could not commit: connection lost");
	}
	if (rc == 0 && commit && sent && pg->lazy)
		pg->unsynced++;
	lead_clear(pg);
	memset(pg->counts, 0, sizeof(pg->counts));
	pg->wake = 0;
	pg->wake_parts = 0;
	pg->txn_open = 0;
	pg->scope = 0;
	return rc;
}

int store__pg_op_end(struct store_conn *c, int own, int rc)
{
	if (!own)
		return rc;
	if (rc < 0) {
		char msg[STORE_ERRMSG_MAX];
		memcpy(msg, c->errmsg, sizeof(msg));
		end_txn(c, 0);
		memcpy(c->errmsg, msg, sizeof(msg));
		return rc;
	}
	return end_txn(c, 1);
}

static int pg_begin(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	int rc = pg_reconnect_if_broken(c);
	if (rc < 0)
		return rc;
	pg->txn_open = 0; /* BEGIN goes with the first statement's scope */
	pg->scope = 0;
	c->in_txn = 1;
	c->in_savepoint = 0;
	return 0;
}

static int pg_commit(struct store_conn *c)
{
	int rc = end_txn(c, 1);
	c->in_txn = 0;
	c->in_savepoint = 0;
	return rc;
}

static int pg_rollback(struct store_conn *c)
{
	end_txn(c, 0);
	c->in_txn = 0;
	c->in_savepoint = 0;
	return 0;
}

/* A savepoint needs the transaction begun: an empty scope opens it. */
static int pg_savepoint(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	int rc = 0;
	if (pg->broken)
		return store__errf(c, ERR_AGAIN, "could not set savepoint: connection lost");
	if (!pg->txn_open)
		rc = set_scope(c, PG_SCOPE_SYSTEM, 0, "set savepoint");
	if (rc == 0)
		rc = lead_add(c, "set savepoint", "SAVEPOINT msg");
	if (rc == 0) {
		memcpy(pg->counts_at_savepoint, pg->counts, sizeof(pg->counts));
		c->in_savepoint = 1;
	}
	return rc;
}

static int pg_release(struct store_conn *c)
{
	int rc = lead_add(c, "release savepoint", "RELEASE SAVEPOINT msg");
	c->in_savepoint = 0;
	return rc;
}

/* The scope set before the savepoint may have changed after it: forget it,
 * so that the next operation sets its own. */
static int pg_rollback_to(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	int rc = store__pg_simple(c, "roll back to savepoint",
	                          "ROLLBACK TO SAVEPOINT msg; RELEASE SAVEPOINT msg");
	memcpy(pg->counts, pg->counts_at_savepoint, sizeof(pg->counts));
	pg->scope = 0;
	c->in_savepoint = 0;
	return rc;
}

static int pg_set_lazy_commits(struct store_conn *c, int lazy)
{
	((struct pg_session *)c->backend)->lazy = lazy;
	return 0;
}

/*
 * pg_sync: a transaction that writes to the WAL (a transactional logical
 * message: a transaction that wrote nothing commits without waiting, like
 * an asynchronous one) and commits with synchronous_commit on; the WAL is
 * flushed (and, with a synchronous standby, replicated) in order, so
 * every lazy commit before it is durable once it returns. Lazy commits
 * made before the connection was lost may have been lost with the server:
 * the first sync after that fails (ERR_AGAIN), so that the caller does not
 * take them for durable.
 */
static int pg_sync(struct store_conn *c)
{
	struct pg_session *pg = c->backend;
	if (pg->unsynced_lost) {
		int n = pg->unsynced_lost;
		pg->unsynced_lost = 0;
		return store__errf(c, ERR_AGAIN,
		                   "could not sync: the connection was lost after %d lazy "
		                   "commits, which may be lost with it",
		                   n);
	}
	if (pg->unsynced == 0)
		return 0;
	if (pg->broken)
		return store__errf(c, ERR_AGAIN, "could not sync: connection lost");
	int rc = store__pg_simple(c, "sync",
	                          "BEGIN; SELECT pg_logical_emit_message(true, 'munim.sync', '');"
	                          " COMMIT");
	if (rc == 0)
		pg->unsynced = 0;
	return rc;
}

/* ---- migrations ----------------------------------------------------------------------------- */

/* Two migrators never interleave: the first holds this lock until commit. */
#define PG_MIGRATE_LOCK 0x6d756e696dLL /* "munim" */

static int pg_schema_version(struct store_conn *c, int *version)
{
	PGresult *r;
	/* two statements: one naming a missing table fails to parse */
	int rc = store__pg_query(c, "read schema version",
	                         "SELECT to_regclass('schema_migrations') IS NOT NULL", &r, "");
	*version = 0;
	if (rc < 0)
		return rc;
	int exists = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (!exists)
		return 0;
	rc = store__pg_query(c, "read schema version",
	                     "SELECT coalesce(max(version), 0) FROM schema_migrations", &r, "");
	if (rc < 0)
		return rc;
	*version = (int)store__pg_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

/*
 * pg_migrate applies every missing version in one transaction, under an
 * advisory lock held to its commit, as the session user (who must be able
 * to create tables, and the role munim_app when it does not exist yet).
 */
static int pg_migrate(struct store_conn *c, int *applied)
{
	struct pg_session *pg = c->backend;
	char what[64], ins[160];
	int cur = 0, rc;

	*applied = 0;
	if ((rc = pg_reconnect_if_broken(c)) < 0)
		return rc;
	/* up to date: nothing to lock or create (serve, as munim_app, cannot) */
	if ((rc = pg_schema_version(c, &cur)) < 0)
		return rc;
	if (cur >= store__pg_nmigrations)
		return 0;
	if ((rc = store__pg_simple(c, "migrate", "BEGIN")) < 0)
		return rc;
	pg->txn_open = 1;
	rc = store__pg_exec(c, "migrate", "SELECT pg_advisory_xact_lock($1)", "i",
	                    (int64_t)PG_MIGRATE_LOCK);
	if (rc >= 0)
		rc = store__pg_simple(c, "migrate",
		                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
		                      " version integer PRIMARY KEY, applied_at bigint NOT NULL)");
	if (rc >= 0)
		rc = pg_schema_version(c, &cur);
	for (int v = cur + 1; rc >= 0 && v <= store__pg_nmigrations; v++) {
		snprintf(what, sizeof(what), "apply migration %d", v);
		for (const char *const *sql = store__pg_migrations[v - 1]; rc >= 0 && *sql; sql++)
			rc = store__pg_simple(c, what, *sql);
		snprintf(ins, sizeof(ins),
		         "INSERT INTO schema_migrations (version, applied_at) VALUES (%d, %lld)", v,
		         (long long)clock_wall_ms());
		if (rc >= 0)
			rc = store__pg_simple(c, what, ins);
		if (rc >= 0)
			(*applied)++;
	}
	if (rc < 0) {
		*applied = 0;
		return store__pg_op_end(c, 1, rc);
	}
	return end_txn(c, 1);
}

/*
 * pg_maintain makes the audit log's partitions ahead (munim_audit_partitions,
 * migrations_pg.c). Two processes making the same month at once: the
 * loser's CREATE fails (ERR_CONFLICT or ERR_DB); the month exists, so that
 * is success.
 */
static int pg_maintain(struct store_conn *c, int *made)
{
	PGresult *r;
	int rc = pg_reconnect_if_broken(c);
	if (rc == 0)
		rc = store__pg_query(c, "make the audit log's partitions",
		                     "SELECT munim_audit_partitions(3)", &r, "");
	if (rc < 0) {
		if (rc == ERR_AGAIN || rc == ERR_TIMEOUT || rc == ERR_FULL ||
		    !strstr(c->errmsg, "already exists"))
			return rc;
		return 0;
	}
	*made = (int)store__pg_i64(r, 0, 0);
	PQclear(r);
	return 0;
}

/* ---- opening -------------------------------------------------------------------------------- */

static struct store_ops pg_ops = {
        .name = "postgresql",
        .shared_writers = 1,
        .close = pg_close,
        .connect = pg_connect,
        .connect_read = pg_connect_read,
        .set_replicas = pg_set_replicas,
        .listen_start = store__pg_listen_start,
        .listen_stop = store__pg_listen_stop,
        /* no checkpoint_in_background, checkpoints, memory_bytes: the server
         * checkpoints by itself, and the client holds no page cache */
        .disconnect = pg_disconnect,
        .migrate = pg_migrate,
        .schema_version = pg_schema_version,
        .maintain = pg_maintain,
        .begin = pg_begin,
        .commit = pg_commit,
        .rollback = pg_rollback,
        .savepoint = pg_savepoint,
        .release = pg_release,
        .rollback_to = pg_rollback_to,
        .set_lazy_commits = pg_set_lazy_commits,
        .sync = pg_sync,
};

static pthread_once_t pg_ops_once = PTHREAD_ONCE_INIT;

static void pg_ops_fill(void)
{
	store__pg_tenant_ops(&pg_ops);
	store__pg_erp_ops(&pg_ops);
	store__pg_inbox_ops(&pg_ops);
	store__pg_outbox_ops(&pg_ops);
	store__pg_ai_ops(&pg_ops);
	store__pg_lease_ops(&pg_ops);
}

/*
 * store__pg_open (store_internal.h) checks the url and that the server
 * answers, so that a typo fails at start; connections are made by
 * store_connect.
 */
int store__pg_open(const char *conninfo, struct store **out, char *why)
{
	pthread_once(&pg_ops_once, pg_ops_fill);
	struct store *st = xcalloc(1, sizeof(*st));
	struct pg_store *ps = xcalloc(1, sizeof(*ps));
	ps->conninfo = xstrdup(conninfo);
	st->ops = &pg_ops;
	st->url = xstrdup(conninfo);
	st->busy_timeout_ms = STORE_BUSY_TIMEOUT_MS;
	st->backend = ps;

	PGconn *db = PQconnectdb(conninfo);
	if (!db || PQstatus(db) != CONNECTION_OK) {
		one_line(why, STORE_ERRMSG_MAX, db ? PQerrorMessage(db) : "out of memory");
		PQfinish(db);
		pg_close(st);
		return ERR_IO;
	}
	PQfinish(db);
	*out = st;
	return 0;
}
