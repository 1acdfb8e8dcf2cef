/*
 * pg_fixture.h - a fresh PostgreSQL database for one unit test, when the
 * environment names a server: MUNIM_TEST_PG is a url without a database
 * (postgresql://postgres@127.0.0.1:PORT) of a role that may create
 * databases (tests/run-all starts such a server, scripts/pg-server).
 *
 * Each test's database is a copy of a migrated template, made once per
 * schema (munim_tmpl_<hash of the migrations' text>, under an advisory
 * lock so that test binaries running at once make it once), so that a test
 * costs a CREATE DATABASE, not a migration. The store fixtures call
 * test_pg_create in place of making a SQLite file when MUNIM_TEST_PG is
 * set, and test_pg_drop afterwards.
 *
 * Test code: static inline functions, included after cmocka.h; called from
 * the test's own thread.
 */
#ifndef MUNIM_TEST_PG_FIXTURE_H
#define MUNIM_TEST_PG_FIXTURE_H

#include <libpq-fe.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/pg_internal.h"
#include "store/store.h"

/* test_pg_base: the server's url from MUNIM_TEST_PG, or NULL (SQLite). */
static inline const char *test_pg_base(void)
{
	const char *b = getenv("MUNIM_TEST_PG");
	return b && *b ? b : NULL;
}

/* test_pg_admin runs sql on the server's "postgres" database; fails the
 * test on an error. */
static inline void test_pg_admin(const char *sql)
{
	char url[512];
	snprintf(url, sizeof(url), "%s/postgres", test_pg_base());
	PGconn *db = PQconnectdb(url);
	assert_int_equal(PQstatus(db), CONNECTION_OK);
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
		fail_msg("%s: %s", sql, PQerrorMessage(db));
	PQclear(r);
	PQfinish(db);
}

/* test_pg_template_name: munim_tmpl_ and an FNV-1a hash of every migration
 * statement, so that a changed schema gets a new template. */
static inline void test_pg_template_name(char *out, size_t cap)
{
	uint64_t h = 1469598103934665603ULL;
	for (int v = 0; v < store__pg_nmigrations; v++)
		for (const char *const *s = store__pg_migrations[v]; *s; s++)
			for (const char *p = *s; *p; p++)
				h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	snprintf(out, cap, "munim_tmpl_%016llx", (unsigned long long)h);
}

/* test_pg_template makes the migrated template unless it exists. */
static inline void test_pg_template(const char *tmpl)
{
	char url[512], sql[256];
	snprintf(url, sizeof(url), "%s/postgres", test_pg_base());
	PGconn *db = PQconnectdb(url);
	assert_int_equal(PQstatus(db), CONNECTION_OK);
	PQclear(PQexec(db, "SELECT pg_advisory_lock(7001)"));
	snprintf(sql, sizeof(sql), "SELECT 1 FROM pg_database WHERE datname = '%s'", tmpl);
	PGresult *r = PQexec(db, sql);
	int exists = PQntuples(r) == 1;
	PQclear(r);
	if (!exists) {
		struct store *st;
		struct store_conn *c;
		snprintf(sql, sizeof(sql), "CREATE DATABASE %s_new TEMPLATE template0", tmpl);
		PQclear(PQexec(db, sql));
		snprintf(url, sizeof(url), "%s/%s_new", test_pg_base(), tmpl);
		assert_int_equal(store_open(url, &st), 0);
		assert_int_equal(store_connect(st, &c), 0);
		if (store_migrate(c, NULL) != 0)
			fail_msg("could not migrate the template: %s", store_errmsg(c));
		store_disconnect(c);
		store_close(st);
		snprintf(sql, sizeof(sql), "ALTER DATABASE %s_new RENAME TO %s", tmpl, tmpl);
		r = PQexec(db, sql);
		if (PQresultStatus(r) != PGRES_COMMAND_OK)
			fail_msg("%s: %s", sql, PQerrorMessage(db));
		PQclear(r);
	}
	PQclear(PQexec(db, "SELECT pg_advisory_unlock(7001)"));
	PQfinish(db);
}

/*
 * test_pg_create_from makes the database munim_t_<name>_<pid>_<n>, a copy
 * of the database tmpl, and writes its url into url (cap bytes).
 */
static inline void test_pg_create_from(const char *name, const char *tmpl, char *url, size_t cap)
{
	static int seq;
	char db[128], sql[320];
	snprintf(db, sizeof(db), "munim_t_%s_%d_%d", name, (int)getpid(), ++seq);
	for (char *p = db; *p; p++)
		if (*p == '-' || *p == '.')
			*p = '_';
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s TEMPLATE %s", db, tmpl);
	test_pg_admin(sql);
	int n = snprintf(url, cap, "%s/%s", test_pg_base(), db);
	assert_true(n > 0 && (size_t)n < cap);
}

/*
 * The migrated databases this test binary made, reused: a copy of the
 * template costs seconds (some 1,900 relations: 64 partitions of four
 * tables and their indexes), emptying one a tenth of that. test_pg_drop
 * gives a pooled database back; test_pg_create empties a free one; they
 * are dropped when the binary exits.
 */
#define TEST_PG_POOL 8
static struct {
	char url[256];
	int busy;
} test_pg_pool[TEST_PG_POOL];
static int test_pg_npool;

static inline void test_pg_pool_drop_all(void)
{
	for (int i = 0; i < test_pg_npool; i++) {
		char sql[320];
		snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
		         strrchr(test_pg_pool[i].url, '/') + 1);
		test_pg_admin(sql);
	}
	test_pg_npool = 0;
}

/*
 * test_pg_shape: a count of url's own relations, functions and triggers;
 * a test that made or dropped one (a trigger that refuses writes...) left
 * a database that emptying cannot give back.
 */
static inline long long test_pg_shape(const char *url)
{
	PGconn *db = PQconnectdb(url);
	assert_int_equal(PQstatus(db), CONNECTION_OK);
	PGresult *r = PQexec(db, "SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n"
	                         "  ON n.oid = c.relnamespace WHERE n.nspname = 'public')"
	                         " + (SELECT count(*) FROM pg_proc p JOIN pg_namespace n"
	                         "  ON n.oid = p.pronamespace WHERE n.nspname = 'public') * 100000"
	                         " + (SELECT count(*) FROM pg_trigger) * 10000000000");
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	long long shape = atoll(PQgetvalue(r, 0, 0));
	PQclear(r);
	PQfinish(db);
	return shape;
}

/*
 * test_pg_empty deletes every row of url's database (as the superuser,
 * with triggers and foreign keys off: session_replication_role replica)
 * and restarts its sequences, so that it reads as freshly migrated.
 */
static inline void test_pg_empty(const char *url)
{
	static const char sql[] =
	        "SET session_replication_role = replica;"
	        "DO $$ DECLARE t text; BEGIN"
	        " FOR t IN SELECT c.relname FROM pg_class c"
	        "  JOIN pg_namespace n ON n.oid = c.relnamespace"
	        "  WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
	        "  AND c.relname <> 'schema_migrations' LOOP"
	        "  EXECUTE format('DELETE FROM %I', t);"
	        " END LOOP;"
	        " FOR t IN SELECT sequencename FROM pg_sequences WHERE schemaname = 'public' LOOP"
	        "  PERFORM setval(quote_ident(t), 1, false);"
	        " END LOOP;"
	        " END $$";
	PGconn *db = PQconnectdb(url);
	assert_int_equal(PQstatus(db), CONNECTION_OK);
	PGresult *r = PQexec(db, sql);
	if (PQresultStatus(r) != PGRES_COMMAND_OK)
		fail_msg("could not empty %s: %s", url, PQerrorMessage(db));
	PQclear(r);
	PQfinish(db);
}

/*
 * test_pg_create gives a migrated database with no rows: a free one of
 * the pool, emptied, or a new copy of the template
 * (munim_t_<name>_<pid>_<n>); its url goes into url (cap bytes). Needs
 * MUNIM_TEST_PG.
 */
static inline void test_pg_create(const char *name, char *url, size_t cap)
{
	static long long shape = -1; /* of a database fresh from the template */
	for (int i = 0; i < test_pg_npool; i++)
		if (!test_pg_pool[i].busy && test_pg_shape(test_pg_pool[i].url) != shape) {
			char sql[320];
			snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)",
			         strrchr(test_pg_pool[i].url, '/') + 1);
			test_pg_admin(sql);
			test_pg_pool[i] = test_pg_pool[--test_pg_npool];
			i--;
		}
	for (int i = 0; i < test_pg_npool; i++)
		if (!test_pg_pool[i].busy) {
			test_pg_empty(test_pg_pool[i].url);
			test_pg_pool[i].busy = 1;
			int n = snprintf(url, cap, "%s", test_pg_pool[i].url);
			assert_true(n > 0 && (size_t)n < cap);
			return;
		}
	char tmpl[64];
	test_pg_template_name(tmpl, sizeof(tmpl));
	test_pg_template(tmpl);
	test_pg_create_from(name, tmpl, url, cap);
	if (shape < 0)
		shape = test_pg_shape(url);
	if (test_pg_npool < TEST_PG_POOL) {
		if (test_pg_npool == 0)
			atexit(test_pg_pool_drop_all);
		snprintf(test_pg_pool[test_pg_npool].url, sizeof(test_pg_pool[0].url), "%s", url);
		test_pg_pool[test_pg_npool++].busy = 1;
	}
}

/* test_pg_create_empty: the same, but empty (never migrated), for the
 * tests of the migrations themselves. */
static inline void test_pg_create_empty(const char *name, char *url, size_t cap)
{
	test_pg_create_from(name, "template0", url, cap);
}

/* test_pg_drop gives a pooled database back, or drops the database of url
 * (made by test_pg_create_*), ending any connection to it that is left. */
static inline void test_pg_drop(const char *url)
{
	const char *db = strrchr(url, '/');
	char sql[320];
	assert_non_null(db);
	for (int i = 0; i < test_pg_npool; i++)
		if (test_pg_pool[i].busy && !strcmp(test_pg_pool[i].url, url)) {
			test_pg_pool[i].busy = 0; /* emptied by its next test_pg_create */
			return;
		}
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", db + 1);
	test_pg_admin(sql);
}

#endif
