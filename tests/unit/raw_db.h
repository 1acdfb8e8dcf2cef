/*
 * raw_db.h - "another process" on a unit test's database: a connection of
 * the test's own beside munim's, for what the store's interface does not
 * offer (reading a column, a trigger that refuses rows, holding the write
 * lock while munim tries to write).
 *
 * The database is named as the store fixtures name it (struct test_db's
 * path, or a fixture's url): a SQLite file, opened with sqlite3; or a
 * PostgreSQL url (MUNIM_TEST_PG, pg_fixture.h), opened with libpq as the
 * server's superuser, which row-level security does not hold (SQLite has
 * none either), so a raw statement sees every tenant's rows on both.
 * Statements written for both must be plain SQL both understand; where
 * they differ (triggers) the test passes each its own.
 *
 * Test code: static inline functions, included after cmocka.h; one raw_db
 * belongs to the thread that opened it.
 */
#ifndef MUNIM_TEST_RAW_DB_H
#define MUNIM_TEST_RAW_DB_H

#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One raw connection: sq for a SQLite file, pg for a PostgreSQL url. */
struct raw_db {
	sqlite3 *sq;
	PGconn *pg;
	char err[512];    /* the message of the last failed statement */
	char sqlstate[6]; /* PostgreSQL: its SQLSTATE ("" for SQLite) */
	int sqlite_code;  /* SQLite: its extended result code (0 for PostgreSQL) */
};

static inline int raw_is_pg(const char *path)
{
	return !strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13);
}

/* raw_open connects r to the database at path; fails the test if it
 * cannot. */
static inline void raw_open(struct raw_db *r, const char *path)
{
	memset(r, 0, sizeof(*r));
	if (raw_is_pg(path)) {
		r->pg = PQconnectdb(path);
		if (PQstatus(r->pg) != CONNECTION_OK)
			fail_msg("could not connect to \"%s\": %s", path, PQerrorMessage(r->pg));
		return;
	}
	assert_int_equal(sqlite3_open(path, &r->sq), SQLITE_OK);
	sqlite3_extended_result_codes(r->sq, 1);
}

static inline void raw_close(struct raw_db *r)
{
	if (r->pg)
		PQfinish(r->pg);
	if (r->sq)
		sqlite3_close(r->sq);
	r->pg = NULL;
	r->sq = NULL;
}

/*
 * raw_exec runs sql (one or more statements, no result wanted): 0, or -1
 * with the reason in r->err (and r->sqlstate or r->sqlite_code).
 */
static inline int raw_exec(struct raw_db *r, const char *sql)
{
	r->err[0] = '\0';
	r->sqlstate[0] = '\0';
	r->sqlite_code = 0;
	if (r->sq) {
		int rc = sqlite3_exec(r->sq, sql, NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			return 0;
		r->sqlite_code = rc;
		snprintf(r->err, sizeof(r->err), "%s", sqlite3_errmsg(r->sq));
		return -1;
	}
	PGresult *res = PQexec(r->pg, sql);
	ExecStatusType st = PQresultStatus(res);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
		snprintf(r->err, sizeof(r->err), "%s", PQerrorMessage(r->pg));
		snprintf(r->sqlstate, sizeof(r->sqlstate), "%s", state ? state : "");
		rc = -1;
	}
	PQclear(res);
	return rc;
}

/* raw_int: the first column of the first row of sql as an integer, or -1
 * when there is no row (or it is NULL); fails the test on an error. */
static inline int64_t raw_int(struct raw_db *r, const char *sql)
{
	int64_t v = -1;
	if (r->sq) {
		sqlite3_stmt *st;
		if (sqlite3_prepare_v2(r->sq, sql, -1, &st, NULL) != SQLITE_OK)
			fail_msg("%s: %s", sql, sqlite3_errmsg(r->sq));
		if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
			v = sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
		return v;
	}
	PGresult *res = PQexec(r->pg, sql);
	if (PQresultStatus(res) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(r->pg));
	if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0))
		v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	return v;
}

/*
 * raw_lock_writes takes the write lock as another process would and keeps
 * it until raw_unlock: munim's writes then wait for it (and give up with
 * ERR_AGAIN after the busy timeout) while its reads go on. SQLite: BEGIN
 * EXCLUSIVE (in WAL mode readers are not blocked). PostgreSQL has no
 * database-wide write lock: every table of the schema locked IN EXCLUSIVE
 * MODE (a partitioned table's partitions with it), which lets only plain
 * reads (ACCESS SHARE) through.
 */
static inline void raw_lock_writes(struct raw_db *r)
{
	static const char pg_lock[] =
	        "BEGIN; DO $$ DECLARE t text; BEGIN"
	        " FOR t IN SELECT c.relname FROM pg_class c"
	        "  JOIN pg_namespace n ON n.oid = c.relnamespace"
	        "  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
	        " LOOP EXECUTE format('LOCK TABLE %I IN EXCLUSIVE MODE', t); END LOOP;"
	        " END $$";
	if (raw_exec(r, r->sq ? "BEGIN EXCLUSIVE" : pg_lock) != 0)
		fail_msg("could not lock the database: %s", r->err);
}

/* raw_unlock ends raw_lock_writes' transaction. */
static inline void raw_unlock(struct raw_db *r)
{
	if (raw_exec(r, "COMMIT") != 0)
		fail_msg("could not unlock the database: %s", r->err);
}

/* raw_sql_int: raw_int on a connection of its own to path. */
static inline int64_t raw_sql_int(const char *path, const char *sql)
{
	struct raw_db r;
	raw_open(&r, path);
	int64_t v = raw_int(&r, sql);
	raw_close(&r);
	return v;
}

/* raw_sql_exec: raw_exec on a connection of its own to path; 0 or -1. */
static inline int raw_sql_exec(const char *path, const char *sql)
{
	struct raw_db r;
	raw_open(&r, path);
	int rc = raw_exec(&r, sql);
	raw_close(&r);
	return rc;
}

#endif
