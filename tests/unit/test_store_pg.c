/*
 * test_store_pg.c - what only the PostgreSQL backend has: row-level
 * security and the scope of a transaction, munim's role, the migrations'
 * advisory lock and audit partitions, lost connections, lock and
 * statement timeouts, lazy commits and store_sync, and the statement
 * helpers of pg_internal.h. Every test skips without MUNIM_TEST_PG (the
 * url of a server whose user may create databases: tests/run-all starts
 * one); test_store.c holds what both backends share.
 *
 * Design: each test gets a fresh migrated database (pg_fixture.h) with two
 * shops, A and B, whose rows the server's superuser writes directly (an
 * admin connection, raw_db.h: the superuser is not held to row-level
 * security), in different numbers per table so that a count tells whose
 * rows a statement saw. munim's side goes through its own connections
 * (store_open, store_connect) and, for hand-written statements, through
 * an "operation" written as the backend's files write one: store__pg_op_begin
 * in a scope, the statement, store__pg_op_end (count_op, exec_op).
 *
 * Threads: the test's own, except test_concurrent_migrations (two
 * migrating threads, each with its own store and connection).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/pg_internal.h"
#include "store/store.h"
#include "pg_fixture.h"
#include "raw_db.h"

/* The two shops (ids chosen, not generated). */
#define TA 11
#define TB 22

/* Rows each shop has, per table (seed). */
struct rows {
	const char *table;
	int64_t a, b;
};
static const struct rows seeded[] = {
        {"customers", 2, 3}, {"products", 1, 2}, {"orders", 3, 1},
        {"inbox", 1, 2},     {"outbox", 2, 1},   {"audit_log", 1, 4},
};
#define NSEEDED (sizeof(seeded) / sizeof(seeded[0]))

struct pgfx {
	char url[256];
	struct store *st;
	struct store_conn *c;
	struct raw_db admin; /* the superuser, on the same database */
	struct arena a;
};

/* ---- the fixture ------------------------------------------------------------------------- */

/* need_pg: the fixture, or the test skipped when no server is named. */
static struct pgfx *need_pg(void **state)
{
	if (!test_pg_base())
		skip();
	return *state;
}

static void admin_exec(struct pgfx *f, const char *sql)
{
	if (raw_exec(&f->admin, sql) != 0)
		fail_msg("%s: %s", sql, f->admin.err);
}

/* seed writes shop A's and shop B's rows (the numbers of `seeded`). */
static void seed(struct pgfx *f)
{
	char sql[512];
	admin_exec(f, "INSERT INTO tenants (id, name, phone_number_id, created_at) VALUES"
	              " (11, 'Shop A', '100000000011', 0), (22, 'Shop B', '100000000022', 0)");
	for (size_t i = 0; i < NSEEDED; i++) {
		for (int shop = 0; shop < 2; shop++) {
			int64_t t = shop ? TB : TA, n = shop ? seeded[i].b : seeded[i].a;
			int part = store_partition(t);
			for (int64_t k = 1; k <= n; k++) {
				const char *tb = seeded[i].table;
				if (!strcmp(tb, "customers"))
					snprintf(sql, sizeof(sql),
					         "INSERT INTO customers (tenant_id, wa_id)"
					         " VALUES (%lld, '9198000000%02lld')",
					         (long long)t, (long long)k);
				else if (!strcmp(tb, "products"))
					snprintf(sql, sizeof(sql),
					         "INSERT INTO products (tenant_id, sku, name, unit,"
					         " base_per_unit, price_paise, gst_rate_bp, stock)"
					         " VALUES (%lld, 'SKU%lld', 'P', 'kg', 1000, 500, "
					         "0, 10)",
					         (long long)t, (long long)k);
				else if (!strcmp(tb, "orders"))
					snprintf(sql, sizeof(sql),
					         "INSERT INTO orders (tenant_id, customer_id, "
					         "status,"
					         " total_paise, created_at, updated_at)"
					         " VALUES (%lld, 1, 0, 100, 0, 0)",
					         (long long)t);
				else if (!strcmp(tb, "inbox"))
					snprintf(sql, sizeof(sql),
					         "INSERT INTO inbox (id, part, tenant_id, kind, "
					         "ext_id,"
					         " received_at) VALUES (nextval('inbox_id_seq') * "
					         "64 + %d,"
					         " %d, %lld, 1, 'wamid.%lld.%lld', 0)",
					         part, part, (long long)t, (long long)t,
					         (long long)k);
				else if (!strcmp(tb, "outbox"))
					snprintf(
					        sql, sizeof(sql),
					        "INSERT INTO outbox (id, part, tenant_id, priority,"
					        " phone_number_id, to_id, body, next_attempt_at,"
					        " created_at, updated_at)"
					        " VALUES (nextval('outbox_id_seq') * 64 + %d, %d, "
					        "%lld,"
					        " 2, '1', '919800000001', '{}', 0, 0, 0)",
					        part, part, (long long)t);
				else
					snprintf(sql, sizeof(sql),
					         "INSERT INTO audit_log (tenant_id, actor, action,"
					         " created_at) VALUES (%lld, 'seed', 'x',"
					         " (extract(epoch FROM now()) * 1000)::bigint)",
					         (long long)t);
				admin_exec(f, sql);
			}
		}
	}
}

static int setup(void **state)
{
	*state = NULL;
	if (!test_pg_base())
		return 0;
	struct pgfx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	test_pg_create("store_pg", f->url, sizeof(f->url));
	assert_int_equal(store_open(f->url, &f->st), 0);
	store_set_busy_timeout(f->st, 100);
	assert_int_equal(store_connect(f->st, &f->c), 0);
	raw_open(&f->admin, f->url);
	arena_init(&f->a, 0);
	seed(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct pgfx *f = *state;
	clock_set_fake(-1);
	if (!f)
		return 0;
	arena_release(&f->a);
	store_disconnect(f->c);
	store_close(f->st);
	raw_close(&f->admin);
	test_pg_drop(f->url);
	free(f);
	return 0;
}

/* ---- operations written as the backend writes them ---------------------------------------- */

/* count_op: SELECT count(*) FROM table (and what follows it in `table`,
 * e.g. a WHERE), as one operation in scope: 0 or the ERR_*. */
static int count_op(struct store_conn *c, enum pg_scope scope, int64_t tenant, const char *table,
                    int64_t *n)
{
	char sql[256];
	PGresult *r;
	int own;
	*n = -1;
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", table);
	int rc = store__pg_op_begin(c, scope, tenant, "count rows", &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, "count rows", sql, &r, "");
	if (rc == 0) {
		*n = store__pg_i64(r, 0, 0);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

/* count_in: count_op's count, failing the test on an error. */
static int64_t count_in(struct store_conn *c, enum pg_scope scope, int64_t tenant,
                        const char *table)
{
	int64_t n;
	int rc = count_op(c, scope, tenant, table, &n);
	if (rc != 0)
		fail_msg("count %s: %d %s", table, rc, store_errmsg(c));
	return n;
}

/* exec_op: sql as one operation in scope: the rows it touched, or the
 * ERR_*. */
static int exec_op(struct store_conn *c, enum pg_scope scope, int64_t tenant, const char *sql)
{
	int own;
	int rc = store__pg_op_begin(c, scope, tenant, "run statement", &own);
	if (rc < 0)
		return rc;
	int n = store__pg_exec(c, "run statement", sql, "");
	/* op_end's rc is 0 or an error: a count is the statement's own */
	rc = store__pg_op_end(c, own, n < 0 ? n : 0);
	return rc < 0 ? rc : n;
}

/* text_op: the first column of sql's first row, in scope, copied into
 * a; fails the test on an error. */
static const char *text_op(struct pgfx *f, enum pg_scope scope, int64_t tenant, const char *sql)
{
	PGresult *r;
	int own;
	const char *v = NULL;
	int rc = store__pg_op_begin(f->c, scope, tenant, "read", &own);
	if (rc == 0 && (rc = store__pg_query(f->c, "read", sql, &r, "")) == 0) {
		v = PQntuples(r) > 0 ? store__pg_str(r, 0, 0, &f->a) : NULL;
		PQclear(r);
	}
	rc = store__pg_op_end(f->c, own, rc);
	if (rc != 0)
		fail_msg("%s: %d %s", sql, rc, store_errmsg(f->c));
	return v;
}

/* ---- tenant isolation --------------------------------------------------------------------- */

/* A transaction scoped to one shop sees, changes and adds only that
 * shop's rows, whatever its statements say. */
static void test_tenant_scope_sees_only_its_rows(void **state)
{
	struct pgfx *f = need_pg(state);
	char sql[256];

	for (size_t i = 0; i < NSEEDED; i++) {
		assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, seeded[i].table), seeded[i].a);
		assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TB, seeded[i].table), seeded[i].b);
	}
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "tenants"), 1);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "tenants WHERE id = 22"), 0);

	/* hand-written statements naming the other shop, in the caller's
	 * transaction scoped to A */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "orders WHERE tenant_id = 22"), 0);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "customers WHERE tenant_id = 22"), 0);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "outbox WHERE tenant_id = 22"), 0);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA,
	                         "UPDATE products SET price_paise = 1 WHERE tenant_id = 22"),
	                 0);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "UPDATE products SET price_paise = 7"),
	                 1);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "DELETE FROM outbox"), 2);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "UPDATE tenants SET name = 'x'"), 1);
	/* the scope moves with the operation: B now, and only B */
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TB, "outbox"), 1);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TB, "orders"), 1);
	/* a row for another shop is refused (WITH CHECK), an error that
	 * aborts the transaction */
	snprintf(sql, sizeof(sql),
	         "INSERT INTO customers (tenant_id, wa_id) VALUES (%d, '919899999999')", TB);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, sql), ERR_DB);
	assert_non_null(strstr(store_errmsg(f->c), "row-level security"));
	assert_int_equal(store_rollback(f->c), 0);

	/* nothing of it stayed; B's rows were never touched */
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM products WHERE price_paise = 1"),
	                 0);
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM outbox"), 3);
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM tenants WHERE name = 'x'"), 0);

	/* and committed, A's change is A's alone */
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "UPDATE products SET price_paise = 7"),
	                 1);
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM products WHERE price_paise = 7"),
	                 1);
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM products WHERE price_paise = 7"
	                                    " AND tenant_id = 11"),
	                 1);
}

/* With neither munim.tenant nor munim.scope set, munim_app sees no row of
 * any table: through munim's connection with the settings cleared, and in
 * a new session that only took the role. */
static void test_no_scope_sees_nothing(void **state)
{
	struct pgfx *f = need_pg(state);
	static const char *const tables[] = {"tenants", "customers", "products", "orders",
	                                     "inbox",   "outbox",    "audit_log"};
	int own;

	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store__pg_op_begin(f->c, PG_SCOPE_TENANT, TA, "probe", &own), 0);
	assert_int_equal(own, 0);
	assert_int_equal(store__pg_simple(f->c, "clear the scope",
	                                  "SELECT set_config('munim.tenant', '', true),"
	                                  " set_config('munim.scope', '', true)"),
	                 0);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		PGresult *r;
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
		assert_int_equal(store__pg_query(f->c, "count", sql, &r, ""), 0);
		if (store__pg_i64(r, 0, 0) != 0)
			fail_msg("%s: %lld rows seen without a scope", tables[i],
			         (long long)store__pg_i64(r, 0, 0));
		PQclear(r);
	}
	assert_int_equal(store_rollback(f->c), 0);

	/* a session of its own, as munim_app, nothing set */
	struct raw_db s;
	raw_open(&s, f->url);
	assert_int_equal(raw_exec(&s, "BEGIN; SET LOCAL ROLE " PG_APP_ROLE), 0);
	for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++) {
		char sql[128];
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
		assert_int_equal(raw_int(&s, sql), 0);
	}
	assert_int_equal(raw_exec(&s, "ROLLBACK"), 0);
	raw_close(&s);
}

/* The system scope opens the queue tables and the tenant directory of
 * every shop, and still no shop's own table. */
static void test_system_scope_queues_not_shops(void **state)
{
	struct pgfx *f = need_pg(state);
	for (size_t i = 0; i < NSEEDED; i++) {
		const char *t = seeded[i].table;
		int queue = !strcmp(t, "inbox") || !strcmp(t, "outbox");
		int64_t n = count_in(f->c, PG_SCOPE_SYSTEM, 0, t);
		if (n != (queue ? seeded[i].a + seeded[i].b : 0))
			fail_msg("system scope saw %lld rows of %s", (long long)n, t);
	}
	assert_int_equal(count_in(f->c, PG_SCOPE_SYSTEM, 0, "tenants"), 2);
	assert_int_equal(count_in(f->c, PG_SCOPE_SYSTEM, 0, "order_lines"), 0);
	/* nor can it write a shop's table */
	assert_int_equal(exec_op(f->c, PG_SCOPE_SYSTEM, 0, "UPDATE products SET price_paise = 1"),
	                 0);
	assert_int_equal(exec_op(f->c, PG_SCOPE_SYSTEM, 0, "DELETE FROM customers"), 0);
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM customers"), 5);
}

/* A shop table's partition read directly would not be held to its
 * parent's policies: munim_app has no right on one. The queue's
 * partitions, which munim names in its hottest statements, carry the
 * parent's policy themselves: the same rows as through the parent. */
static void test_partitions_refused(void **state)
{
	struct pgfx *f = need_pg(state);
	static const char *const parts[] = {"orders_p0", "order_lines_p1", "audit_log_default"};
	int64_t n;
	for (size_t i = 3; i <= 4; i++) { /* seeded[]: inbox, outbox */
		char pa[32], pb[32];
		int same = store_partition(TA) == store_partition(TB);
		snprintf(pa, sizeof(pa), "%s_p%d", seeded[i].table, store_partition(TA));
		snprintf(pb, sizeof(pb), "%s_p%d", seeded[i].table, store_partition(TB));
		assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, pa), seeded[i].a);
		assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, pb), same ? seeded[i].a : 0);
		assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TB, pb), seeded[i].b);
		assert_int_equal(count_in(f->c, PG_SCOPE_SYSTEM, 0, pa),
		                 seeded[i].a + (same ? seeded[i].b : 0));
		/* and a tenant cannot write a row of another tenant into one */
		char sql[160];
		snprintf(sql, sizeof(sql), "UPDATE %s SET tenant_id = %d", pa, TB);
		assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, sql), ERR_DB);
		if (!strstr(store_errmsg(f->c), "row-level security"))
			fail_msg("%s: %s", pa, store_errmsg(f->c));
	}
	for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]); i++) {
		assert_int_equal(count_op(f->c, PG_SCOPE_TENANT, TA, parts[i], &n), ERR_DB);
		if (!strstr(store_errmsg(f->c), "permission denied"))
			fail_msg("%s: %s", parts[i], store_errmsg(f->c));
		assert_int_equal(count_op(f->c, PG_SCOPE_SYSTEM, 0, parts[i], &n), ERR_DB);
	}
	/* the refusal left the connection usable */
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "orders"), 3);
}

/* The url's user is the server's superuser; munim's statements run as
 * munim_app all the same, which owns nothing and cannot change the
 * schema or its policies. */
static void test_runs_as_app_role(void **state)
{
	struct pgfx *f = need_pg(state);
	/* a url whose user is held to row-level security by itself has
	 * nothing to prove here */
	if (!raw_int(&f->admin, "SELECT (rolsuper OR rolbypassrls)::int FROM pg_roles"
	                        " WHERE rolname = session_user"))
		skip();
	assert_true(((struct pg_session *)f->c->backend)->set_role);
	assert_string_not_equal(text_op(f, PG_SCOPE_TENANT, TA, "SELECT session_user"),
	                        PG_APP_ROLE);
	assert_string_equal(text_op(f, PG_SCOPE_TENANT, TA, "SELECT current_user"), PG_APP_ROLE);
	assert_string_equal(text_op(f, PG_SCOPE_SYSTEM, 0, "SELECT current_user"), PG_APP_ROLE);
	/* in the caller's transaction too */
	assert_int_equal(store_begin(f->c), 0);
	assert_string_equal(text_op(f, PG_SCOPE_TENANT, TB, "SELECT current_user"), PG_APP_ROLE);
	assert_int_equal(store_commit(f->c), 0);

	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA,
	                         "ALTER TABLE orders NO FORCE ROW LEVEL"
	                         " SECURITY"),
	                 ERR_DB);
	assert_non_null(strstr(store_errmsg(f->c), "must be owner"));
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "CREATE TABLE mine (x int)"), ERR_DB);
	assert_non_null(strstr(store_errmsg(f->c), "permission denied"));
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "DELETE FROM stock_ledger"), ERR_DB);
	assert_non_null(strstr(store_errmsg(f->c), "permission denied"));
	/* and back: set_config('role') lasted only as long as its transaction */
	assert_string_equal(text_op(f, PG_SCOPE_TENANT, TA, "SELECT current_user"), PG_APP_ROLE);
}

/* ---- migrations --------------------------------------------------------------------------- */

struct migrator {
	const char *url;
	pthread_barrier_t *go;
	int rc, applied;
	char err[STORE_ERRMSG_MAX];
};

static void *migrate_main(void *p)
{
	struct migrator *m = p;
	struct store *st;
	struct store_conn *c;
	m->rc = -1;
	if (store_open(m->url, &st) != 0)
		return NULL;
	if (store_connect(st, &c) != 0) {
		store_close(st);
		return NULL;
	}
	pthread_barrier_wait(m->go);
	m->rc = store_migrate(c, &m->applied);
	snprintf(m->err, sizeof(m->err), "%s", store_errmsg(c));
	store_disconnect(c);
	store_close(st);
	return NULL;
}

/* audit_partition_name: audit_log_yYYYYmMM of the month `ahead` months
 * after now's (UTC). */
static void audit_partition_name(int ahead, char *out, size_t cap)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	int m = tm.tm_year * 12 + tm.tm_mon + ahead;
	snprintf(out, cap, "audit_log_y%04dm%02d", 1900 + m / 12, m % 12 + 1);
}

/* Two connections migrating one new database at once: the advisory lock
 * lets one apply every version and the other none; a later migrate
 * applies nothing; the audit log has this month's partition and the next
 * three's, and a row dated far ahead still goes in (default partition). */
static void test_concurrent_migrations(void **state)
{
	(void)state;
	char url[256], name[64], sql[256];
	if (!test_pg_base())
		skip();
	test_pg_create_empty("migrate", url, sizeof(url));

	pthread_barrier_t go;
	pthread_t th[2];
	struct migrator m[2];
	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 2; i++) {
		m[i] = (struct migrator){.url = url, .go = &go, .applied = -1};
		assert_int_equal(pthread_create(&th[i], NULL, migrate_main, &m[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 2; i++)
		if (m[i].rc != 0)
			fail_msg("migrator %d: %d %s", i, m[i].rc, m[i].err);
	assert_int_equal(m[0].applied + m[1].applied, store__pg_nmigrations);
	assert_true(m[0].applied == 0 || m[1].applied == 0);

	struct raw_db admin;
	raw_open(&admin, url);
	assert_int_equal(raw_int(&admin, "SELECT count(*) FROM schema_migrations"),
	                 store__pg_nmigrations);
	assert_int_equal(raw_int(&admin, "SELECT max(version) FROM schema_migrations"),
	                 store__pg_nmigrations);

	struct store *st;
	struct store_conn *c;
	int applied = -1, v = -1;
	assert_int_equal(store_open(url, &st), 0);
	assert_int_equal(store_connect(st, &c), 0);
	assert_int_equal(store_migrate(c, &applied), 0);
	assert_int_equal(applied, 0);
	assert_int_equal(store_schema_version(c, &v), 0);
	assert_int_equal(v, store__pg_nmigrations);

	/* this month's partition and the next three's */
	for (int i = 0; i <= 3; i++) {
		audit_partition_name(i, name, sizeof(name));
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_log'::regclass"
		         " AND inhrelid = to_regclass('%s')",
		         name);
		if (raw_int(&admin, sql) != 1)
			fail_msg("no audit partition %s", name);
	}
	/* munim_app may make the next ones (serve does daily): none missing */
	int own;
	PGresult *r;
	assert_int_equal(store__pg_op_begin(c, PG_SCOPE_TENANT, TA, "probe", &own), 0);
	assert_int_equal(store__pg_query(c, "make audit partitions",
	                                 "SELECT munim_audit_partitions(3)", &r, ""),
	                 0);
	assert_int_equal(store__pg_i64(r, 0, 0), 0);
	PQclear(r);
	assert_int_equal(store__pg_op_end(c, own, 0), 0);

	/* a row dated past every partition made: the default one takes it,
	 * by hand and through store_audit (it stamps the wall clock) */
	assert_int_equal(exec_op(c, PG_SCOPE_TENANT, TA,
	                         "INSERT INTO audit_log (tenant_id, actor, action, created_at)"
	                         " VALUES (11, 'test', 'far', 32503680000000)"),
	                 1);
	clock_set_fake(4102444800000LL); /* 2100-01-01 */
	assert_int_equal(store_audit(c, TA, "test", "far.store", "{}"), 0);
	clock_set_fake(-1);
	assert_int_equal(raw_int(&admin, "SELECT count(*) FROM audit_log_default"
	                                 " WHERE action IN ('far', 'far.store')"),
	                 2);
	/* and this month's row goes to this month's partition */
	assert_int_equal(store_audit(c, TA, "test", "now", "{}"), 0);
	audit_partition_name(0, name, sizeof(name));
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s WHERE action = 'now'", name);
	assert_int_equal(raw_int(&admin, sql), 1);

	store_disconnect(c);
	store_close(st);
	raw_close(&admin);
	test_pg_drop(url);
}

/* ---- lost connections --------------------------------------------------------------------- */

/* terminate ends the server process behind c from the admin connection
 * and waits until it is gone. */
static void terminate(struct pgfx *f, struct store_conn *c)
{
	char sql[160];
	int pid = PQbackendPID(store__pg_db(c));
	assert_true(pid > 0);
	snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%d)::int", pid);
	assert_int_equal(raw_int(&f->admin, sql), 1);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM pg_stat_activity WHERE pid = %d", pid);
	for (int i = 0; i < 500 && raw_int(&f->admin, sql) != 0; i++)
		usleep(10 * 1000);
	assert_int_equal(raw_int(&f->admin, sql), 0);
}

/* Outside a transaction: the operation that meets the lost connection
 * gives ERR_AGAIN (store_pg.c does not retry a statement: the caller
 * does), and the next one connects again and succeeds. */
static void test_lost_connection_outside_transaction(void **state)
{
	struct pgfx *f = need_pg(state);
	int64_t n;
	int pid = PQbackendPID(store__pg_db(f->c));
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "orders"), 3);
	terminate(f, f->c);
	assert_int_equal(count_op(f->c, PG_SCOPE_TENANT, TA, "orders", &n), ERR_AGAIN);
	assert_non_null(strstr(store_errmsg(f->c), "connection lost"));
	assert_true(((struct pg_session *)f->c->backend)->broken);
	/* the next operation connects again: a new server process */
	assert_int_equal(count_op(f->c, PG_SCOPE_TENANT, TA, "orders", &n), 0);
	assert_int_equal(n, 3);
	assert_int_not_equal(PQbackendPID(store__pg_db(f->c)), pid);
	assert_false(((struct pg_session *)f->c->backend)->broken);
	/* and it is munim_app again, in scope */
	assert_string_equal(text_op(f, PG_SCOPE_TENANT, TB, "SELECT current_user"), PG_APP_ROLE);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TB, "orders"), 1);
}

/* Inside a transaction: every operation gives ERR_AGAIN (its work is
 * gone with the server process), the commit too; after the rollback the
 * connection works again. */
static void test_lost_connection_inside_transaction(void **state)
{
	struct pgfx *f = need_pg(state);
	int64_t n;
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "UPDATE products SET price_paise = 9"),
	                 1);
	terminate(f, f->c);
	assert_int_equal(count_op(f->c, PG_SCOPE_TENANT, TA, "orders", &n), ERR_AGAIN);
	assert_int_equal(count_op(f->c, PG_SCOPE_TENANT, TA, "orders", &n), ERR_AGAIN);
	assert_non_null(strstr(store_errmsg(f->c), "roll back"));
	assert_int_equal(count_op(f->c, PG_SCOPE_SYSTEM, 0, "inbox", &n), ERR_AGAIN);
	assert_int_equal(store_commit(f->c), ERR_AGAIN);
	/* the commit ended the transaction on munim's side; roll back is
	 * what a caller does after an error, and must be harmless here */
	store_rollback(f->c);
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM products WHERE price_paise = 9"),
	                 0);

	/* a second lost transaction, this time rolled back by the caller */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "orders"), 3);
	terminate(f, f->c);
	assert_int_equal(count_op(f->c, PG_SCOPE_TENANT, TA, "orders", &n), ERR_AGAIN);
	assert_int_equal(store_rollback(f->c), 0);

	/* works again: a transaction of the caller's, and one of its own */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "UPDATE products SET price_paise = 9"),
	                 1);
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM products WHERE price_paise = 9"),
	                 1);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TB, "orders"), 1);
}

/* A write refused because the server became read-only (25006: a primary
 * demoted to a standby) gives ERR_AGAIN and marks the connection for
 * connecting again, where target_session_attrs would find the new
 * primary. The session here is read-only by its own setting. */
static void test_read_only_server_again(void **state)
{
	struct pgfx *f = need_pg(state);
	char url[400];
	struct store *st;
	struct store_conn *c;
	int64_t n;
	snprintf(url, sizeof(url), "%s?options=-c%%20default_transaction_read_only%%3Don", f->url);
	assert_int_equal(store_open(url, &st), 0);
	assert_int_equal(store_connect(st, &c), 0);
	assert_int_equal(count_op(c, PG_SCOPE_TENANT, TA, "orders", &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(exec_op(c, PG_SCOPE_TENANT, TA, "UPDATE products SET price_paise = 3"),
	                 ERR_AGAIN);
	assert_non_null(strstr(store_errmsg(c), "read-only"));
	assert_true(((struct pg_session *)c->backend)->broken);
	assert_int_equal(count_op(c, PG_SCOPE_TENANT, TA, "orders", &n), 0);
	store_disconnect(c);
	store_close(st);
}

/* ---- the lead ----------------------------------------------------------------------------- */

static int nlead(const struct store_conn *c)
{
	return ((const struct pg_session *)c->backend)->nlead;
}

/* BEGIN, the scope, SAVEPOINT and RELEASE wait in the lead and go with
 * the next statement; a savepoint's failed statement is rolled back to it
 * and the rest commits; a transaction that sent nothing ends without a
 * word to the server; an error in the lead is the next statement's. */
static void test_lead_goes_with_next_statement(void **state)
{
	struct pgfx *f = need_pg(state);
	struct pg_session *pg = f->c->backend;

	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_savepoint(f->c), 0);
	assert_int_equal(nlead(f->c), 3); /* BEGIN, the system scope, SAVEPOINT */
	assert_true(pg->lead_begins);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "UPDATE products SET price_paise = 7"),
	                 1);
	assert_int_equal(nlead(f->c), 0);
	assert_false(pg->lead_begins);
	assert_int_equal(store_release(f->c), 0);
	assert_int_equal(store_savepoint(f->c), 0);
	assert_int_equal(nlead(f->c), 2);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "SELECT 1/0"), ERR_DB);
	assert_non_null(strstr(store_errmsg(f->c), "division by zero"));
	assert_int_equal(store_rollback_to(f->c), 0);
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(nlead(f->c), 0);
	assert_int_equal(raw_int(&f->admin, "SELECT count(*) FROM products WHERE price_paise = 7"),
	                 1);

	/* nothing sent: the commit and the rollback send nothing either */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_savepoint(f->c), 0);
	assert_int_equal(store_commit(f->c), 0);
	assert_false(pg->txn_open);
	assert_int_equal(nlead(f->c), 0);
	assert_int_equal(PQtransactionStatus(store__pg_db(f->c)), PQTRANS_IDLE);

	/* the SAVEPOINT of an aborted transaction fails with the next statement */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "SELECT 1/0"), ERR_DB);
	assert_int_equal(store_savepoint(f->c), 0);
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "SELECT 1"), ERR_DB);
	assert_non_null(strstr(store_errmsg(f->c), "current transaction is aborted"));
	assert_int_equal(store_rollback(f->c), 0);
	assert_int_equal(PQtransactionStatus(store__pg_db(f->c)), PQTRANS_IDLE);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "orders"), 3);
}

/* ---- locks and timeouts ------------------------------------------------------------------- */

/* Another session's lock: a write waits the busy timeout (lock_timeout,
 * set with each transaction) and gives ERR_AGAIN; reads go on; once the
 * lock is gone the write goes through. */
static void test_lock_timeout_again(void **state)
{
	struct pgfx *f = need_pg(state);
	struct raw_db other;
	int64_t n;

	assert_int_equal(store_begin(f->c), 0);
	assert_string_equal(text_op(f, PG_SCOPE_TENANT, TA, "SHOW lock_timeout"), "100ms");
	assert_int_equal(store_rollback(f->c), 0);

	raw_open(&other, f->url);
	raw_lock_writes(&other);
	int64_t t0 = clock_wall_ms();
	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "UPDATE products SET price_paise = 5"),
	                 ERR_AGAIN);
	assert_true(clock_wall_ms() - t0 < 5000);
	assert_non_null(strstr(store_errmsg(f->c), "lock timeout"));
	assert_int_equal(count_op(f->c, PG_SCOPE_TENANT, TA, "products", &n), 0);
	assert_int_equal(n, 1);
	/* in the caller's transaction the same; the caller rolls back */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(exec_op(f->c, PG_SCOPE_SYSTEM, 0, "UPDATE outbox SET attempts = 1"),
	                 ERR_AGAIN);
	assert_int_equal(store_rollback(f->c), 0);
	raw_unlock(&other);
	raw_close(&other);

	assert_int_equal(exec_op(f->c, PG_SCOPE_TENANT, TA, "UPDATE products SET price_paise = 5"),
	                 1);
}

/* A statement past statement_timeout: ERR_TIMEOUT. */
static void test_statement_timeout(void **state)
{
	struct pgfx *f = need_pg(state);
	int own;
	assert_int_equal(store__pg_op_begin(f->c, PG_SCOPE_TENANT, TA, "probe", &own), 0);
	int rc = store__pg_simple(f->c, "wait",
	                          "SET LOCAL statement_timeout = 50; SELECT pg_sleep(5)");
	assert_int_equal(store__pg_op_end(f->c, own, rc), ERR_TIMEOUT);
	assert_non_null(strstr(store_errmsg(f->c), "could not wait: canceling statement"));
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "orders"), 3);
}

/* ---- lazy commits and store_sync ---------------------------------------------------------- */

/* A lazy connection's transactions commit without waiting for the WAL
 * flush (synchronous_commit off, set with each), are visible at once,
 * and store_sync makes them durable with one ordinary commit. */
static void test_lazy_commits_and_sync(void **state)
{
	struct pgfx *f = need_pg(state);
	struct store_conn *lazy;
	assert_int_equal(store_connect(f->st, &lazy), 0);
	struct pg_session *pg = lazy->backend;
	assert_int_equal(store_set_lazy_commits(lazy, 1), 0);

	assert_int_equal(store_begin(lazy), 0);
	PGresult *r;
	int own;
	assert_int_equal(store__pg_op_begin(lazy, PG_SCOPE_TENANT, TA, "probe", &own), 0);
	assert_int_equal(store__pg_query(lazy, "probe", "SHOW synchronous_commit", &r, ""), 0);
	assert_string_equal(PQgetvalue(r, 0, 0), "off");
	PQclear(r);
	assert_int_equal(store__pg_exec(lazy, "probe",
	                                "INSERT INTO audit_log (tenant_id, actor, action,"
	                                " created_at) VALUES ($1, 'lazy', 'x', $2)",
	                                "ii", (int64_t)TA, clock_wall_ms()),
	                 1);
	assert_int_equal(store__pg_op_end(lazy, own, 0), 0);
	assert_int_equal(store_sync(lazy), ERR_INVAL); /* not inside a transaction */
	assert_int_equal(store_commit(lazy), 0);
	assert_int_equal(pg->unsynced, 1);
	/* visible at once to another connection */
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "audit_log WHERE actor = 'lazy'"), 1);
	assert_int_equal(store_sync(lazy), 0);
	assert_int_equal(pg->unsynced, 0);
	assert_int_equal(store_sync(lazy), 0); /* nothing new */

	/* an ordinary connection's commits wait for the flush */
	assert_int_equal(store_begin(f->c), 0);
	assert_string_equal(text_op(f, PG_SCOPE_TENANT, TA, "SHOW synchronous_commit"), "on");
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(store_sync(f->c), 0);
	/* and lazy no more, neither is this one */
	assert_int_equal(store_set_lazy_commits(lazy, 0), 0);
	assert_int_equal(exec_op(lazy, PG_SCOPE_TENANT, TA,
	                         "INSERT INTO audit_log (tenant_id, actor, action, created_at)"
	                         " VALUES (11, 'lazy', 'y', 0)"),
	                 1);
	assert_int_equal(pg->unsynced, 0);

	/* lazy commits on a connection since lost may be lost with it (a
	 * failover): the first sync after says so, once */
	assert_int_equal(store_set_lazy_commits(lazy, 1), 0);
	assert_int_equal(exec_op(lazy, PG_SCOPE_TENANT, TA,
	                         "INSERT INTO audit_log (tenant_id, actor, action, created_at)"
	                         " VALUES (11, 'lazy', 'z', 0)"),
	                 1);
	assert_int_equal(pg->unsynced, 1);
	terminate(f, lazy);
	int64_t n;
	assert_int_equal(count_op(lazy, PG_SCOPE_TENANT, TA, "orders", &n), ERR_AGAIN);
	assert_int_equal(count_op(lazy, PG_SCOPE_TENANT, TA, "orders", &n), 0);
	assert_int_equal(store_sync(lazy), ERR_AGAIN);
	assert_non_null(strstr(store_errmsg(lazy), "may be lost"));
	assert_int_equal(store_sync(lazy), 0);
	store_disconnect(lazy);
}

/* ---- the statement helpers ---------------------------------------------------------------- */

/* first_of: the first column of sql's first row on c (system scope), as an
 * integer or through text (*txt, copied into a); fails the test on an error. */
static int64_t first_of(struct store_conn *c, struct arena *a, const char *sql, const char **txt)
{
	PGresult *r;
	int own;
	int64_t v = -1;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, "read", &own);
	if (rc == 0 && (rc = store__pg_query(c, "read", sql, &r, "")) == 0) {
		v = store__pg_i64(r, 0, 0);
		if (txt)
			*txt = store__pg_str(r, 0, 0, a);
		PQclear(r);
	}
	if (store__pg_op_end(c, own, rc) != 0)
		fail_msg("%s: %s", sql, store_errmsg(c));
	return v;
}

/* By default a connection prepares each statement once, with generic
 * plans; store_set_prepared(st, 0) (--db-prepare off, for PgBouncer)
 * makes connections that prepare nothing and leave the server's default. */
static void test_prepared_statements(void **state)
{
	struct pgfx *f = need_pg(state);
	static const char count[] = "SELECT count(*) FROM pg_prepared_statements";
	const char *mode = NULL;
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "orders"), 3);
	assert_true(first_of(f->c, &f->a, count, NULL) >= 2);
	first_of(f->c, &f->a, "SHOW plan_cache_mode", &mode);
	assert_string_equal(mode, "force_generic_plan");
	/* the same text again runs under the same name: nothing new prepared */
	int64_t before = first_of(f->c, &f->a, count, NULL);
	assert_int_equal(count_in(f->c, PG_SCOPE_TENANT, TA, "orders"), 3);
	assert_int_equal(first_of(f->c, &f->a, count, NULL), before);

	store_set_prepared(f->st, 0);
	struct store_conn *plain;
	assert_int_equal(store_connect(f->st, &plain), 0);
	assert_int_equal(count_in(plain, PG_SCOPE_TENANT, TA, "orders"), 3);
	assert_int_equal(first_of(plain, &f->a, count, NULL), 0);
	first_of(plain, &f->a, "SHOW plan_cache_mode", &mode);
	assert_string_equal(mode, "auto");
	store_disconnect(plain);
	store_set_prepared(f->st, 1);
}

/* 'i' carries the whole int64_t range, 't' sends NULL as "", 'n' as SQL
 * NULL; NULL columns read 0 and ""; unknown letters and too many
 * parameters are refused before anything is sent; a constraint is
 * ERR_CONFLICT, anything unexpected ERR_DB. */
/* What the listener heard: the partitions per channel, under mu. */
struct heard {
	pthread_mutex_t mu;
	uint64_t parts[STORE_WAKE_COUNT];
	int calls[STORE_WAKE_COUNT];
};

static void on_wake(void *arg, enum store_wake what, uint64_t parts)
{
	struct heard *h = arg;
	pthread_mutex_lock(&h->mu);
	h->parts[what] |= parts;
	h->calls[what]++;
	pthread_mutex_unlock(&h->mu);
}

/* Waits (up to 5 s) until the listener heard channel what; its mask. */
static uint64_t heard_on(struct heard *h, enum store_wake what)
{
	for (int i = 0; i < 500; i++) {
		pthread_mutex_lock(&h->mu);
		uint64_t p = h->calls[what] ? h->parts[what] : 0;
		memset(h->parts, 0, sizeof(h->parts));
		memset(h->calls, 0, sizeof(h->calls));
		pthread_mutex_unlock(&h->mu);
		if (p)
			return p;
		usleep(10 * 1000);
	}
	fail_msg("the listener heard nothing on channel %d", (int)what);
	return 0;
}

/* A text message from a customer of tenant, pending. */
static struct inbox_entry text_entry(int64_t tenant, const char *wamid)
{
	return (struct inbox_entry){.tenant_id = tenant,
	                            .kind = INBOX_MESSAGE,
	                            .ext_id = wamid,
	                            .from = "9198",
	                            .name = "",
	                            .type = "text",
	                            .body = "hi",
	                            .context_id = "",
	                            .media_id = "",
	                            .media_mime = "",
	                            .status = "",
	                            .error_title = "",
	                            .callback_data = ""};
}

/*
 * Another process's commit wakes the listener: new inbox entries name
 * their partitions (the NOTIFY's payload), so a process wakes only the
 * workers that read them; outbox rows name none (every partition); a
 * notification sent by hand without a payload, or with one that is no
 * mask, stands for every partition.
 */
static void test_listen_names_partitions(void **state)
{
	struct pgfx *f = need_pg(state);
	if (!f)
		return;
	struct heard h = {.mu = PTHREAD_MUTEX_INITIALIZER};
	assert_int_equal(store_listen_start(f->st, NULL, on_wake, &h), 0);
	/* the listener connects, then calls back once on each channel */
	heard_on(&h, STORE_WAKE_INBOX);

	struct inbox_entry e[2] = {text_entry(TA, "wamid.L1"), text_entry(TB, "wamid.L2")};
	enum inbox_put_result res[2];
	assert_int_equal(store_inbox_put(f->c, e, 1, res), 0);
	assert_int_equal(heard_on(&h, STORE_WAKE_INBOX), 1ULL << store_partition(TA));
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_inbox_put(f->c, e + 1, 1, res), 0);
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(heard_on(&h, STORE_WAKE_INBOX), 1ULL << store_partition(TB));

	raw_exec(&f->admin, "NOTIFY munim_inbox");
	assert_int_equal(heard_on(&h, STORE_WAKE_INBOX), ~0ULL);
	raw_exec(&f->admin, "NOTIFY munim_inbox, 'zz'");
	assert_int_equal(heard_on(&h, STORE_WAKE_INBOX), ~0ULL);
	raw_exec(&f->admin, "NOTIFY munim_outbox");
	assert_int_equal(heard_on(&h, STORE_WAKE_OUTBOX), ~0ULL);
	store_listen_stop(f->st);
}

/*
 * keyed_scans: the generic plan of sql (a statement on partition part,
 * "@@" in it) PREPAREd with the parameter types types and run with args:
 * how many times it reads outbox_p<part> by its primary key; fails the
 * test when it reads that partition otherwise (a scan of the whole table,
 * or of the key's index without its leading column).
 */
static int keyed_scans(struct pgfx *f, const char *sql, int64_t part, const char *types,
                       const char *args)
{
	char stmt[PG_PART_SQL_MAX], prep[PG_PART_SQL_MAX + 256], table[32], pkey[40];
	assert_non_null(store__pg_in_part(stmt, sizeof(stmt), sql, part));
	snprintf(prep, sizeof(prep), "DEALLOCATE ALL; PREPARE st(%s) AS %s", types, stmt);
	admin_exec(f, "SET plan_cache_mode = force_generic_plan");
	admin_exec(f, prep);
	snprintf(prep, sizeof(prep), "EXPLAIN EXECUTE st(%s)", args);
	PGresult *r = PQexec(f->admin.pg, prep);
	assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
	snprintf(table, sizeof(table), " on outbox_p%lld ", (long long)part);
	snprintf(pkey, sizeof(pkey), "outbox_p%lld_pkey", (long long)part);
	int scans = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		const char *line = PQgetvalue(r, i, 0);
		if (strstr(line, "Seq Scan") && strstr(line, table))
			fail_msg("a scan of the whole partition: %s", line);
		if (!strstr(line, pkey) || i + 1 >= PQntuples(r))
			continue;
		const char *cond = PQgetvalue(r, i + 1, 0);
		if (!strstr(cond, "Index Cond"))
			continue;
		scans++;
		if (!strstr(cond, "part ="))
			fail_msg("a scan of %s without its leading column: %s", pkey, cond);
	}
	PQclear(r);
	return scans;
}

/*
 * The delivery status statements find the rows their statuses name by the
 * whole primary key (part, id) in the generic plans munim runs: by id
 * alone, or by a join the planner may turn into a scan, the partition
 * would be read from end to end, a cost that grows with every row it
 * holds.
 */
static void test_status_reads_one_key(void **state)
{
	struct pgfx *f = need_pg(state);
	int64_t part = store_partition(TA);
	char args[256], fill[512];
	/* a partition with some history, its statistics known: an empty one
	 * is as cheap to read whole */
	snprintf(fill, sizeof(fill),
	         "INSERT INTO outbox_p%lld (id, part, tenant_id, priority, state, phone_number_id,"
	         " to_id, body, next_attempt_at, created_at, updated_at, provider_msg_id)"
	         " SELECT (1000000 + g) * 64 + %lld, %lld, %d, 2, 4, '1', '9198', '{}', 0, 0, 0, "
	         "'wamid.' || g"
	         " FROM generate_series(1, 20000) g; ANALYZE outbox_p%lld",
	         (long long)part, (long long)part, (long long)part, TA, (long long)part);
	admin_exec(f, fill);
	snprintf(args, sizeof(args), "'wamid.A', %d, %lld, 4, 0, '', 1", TA,
	         (long long)(64 * 7 + part));
	assert_true(keyed_scans(f, store__pg_status_sql, part,
	                        "text, bigint, bigint, integer, integer, text, bigint", args) >= 1);
	snprintf(
	        args, sizeof(args),
	        "ARRAY['wamid.A', 'wamid.B'], ARRAY[%d, %d]::bigint[], ARRAY[%lld, %lld]::bigint[],"
	        " ARRAY[4, 5], ARRAY[0, 0], ARRAY['', ''], 1",
	        TA, TA, (long long)(64 * 7 + part), (long long)(64 * 8 + part));
	assert_true(keyed_scans(f, store__pg_status_set_sql, part,
	                        "text[], bigint[], bigint[], integer[], integer[], text[], bigint",
	                        args) >= 1);
}

static void test_pg_helpers(void **state)
{
	struct pgfx *f = need_pg(state);
	PGresult *r;
	int own;
	assert_int_equal(store__pg_op_begin(f->c, PG_SCOPE_SYSTEM, 0, "probe", &own), 0);
	assert_int_equal(store__pg_query(f->c, "probe",
	                                 "SELECT $1::bigint, $2::text = '', $3::text IS NULL,"
	                                 " NULL::bigint, NULL::text, $4::bigint",
	                                 &r, "itni", (int64_t)INT64_MIN, (const char *)NULL,
	                                 (const char *)NULL, (int64_t)INT64_MAX),
	                 0);
	assert_true(store__pg_i64(r, 0, 0) == INT64_MIN);
	assert_string_equal(PQgetvalue(r, 0, 1), "t");
	assert_string_equal(PQgetvalue(r, 0, 2), "t");
	assert_int_equal(store__pg_i64(r, 0, 3), 0);
	assert_string_equal(store__pg_str(r, 0, 4, &f->a), "");
	assert_true(store__pg_i64(r, 0, 5) == INT64_MAX);
	PQclear(r);

	r = (PGresult *)1;
	assert_int_equal(store__pg_query(f->c, "probe", "SELECT $1", &r, "x", (int64_t)1),
	                 ERR_INVAL);
	assert_null(r);
	assert_string_equal(store_errmsg(f->c), "could not probe: unknown parameter type 'x'");
	assert_int_equal(store__pg_exec(f->c, "probe", "SELECT 1", "iiiiiiiiiiiiiiiiiiiiiiiii",
	                                (int64_t)1, (int64_t)2, (int64_t)3, (int64_t)4, (int64_t)5,
	                                (int64_t)6, (int64_t)7, (int64_t)8, (int64_t)9, (int64_t)10,
	                                (int64_t)11, (int64_t)12, (int64_t)13, (int64_t)14,
	                                (int64_t)15, (int64_t)16, (int64_t)17, (int64_t)18,
	                                (int64_t)19, (int64_t)20, (int64_t)21, (int64_t)22,
	                                (int64_t)23, (int64_t)24, (int64_t)25),
	                 ERR_INVAL);
	assert_string_equal(store_errmsg(f->c), "could not probe: too many parameters");
	/* nothing was sent: the transaction is still good */
	assert_int_equal(
	        store__pg_exec(f->c, "probe", "UPDATE inbox SET attempts = $1", "i", (int64_t)0),
	        3);
	assert_int_equal(store__pg_op_end(f->c, own, 0), 0);

	/* a duplicate key: ERR_CONFLICT, the operation's transaction rolled
	 * back, its message kept */
	assert_int_equal(exec_op(f->c, PG_SCOPE_SYSTEM, 0,
	                         "INSERT INTO tenants (id, name, phone_number_id, created_at)"
	                         " VALUES (11, 'again', '100000000099', 0)"),
	                 ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->c), "could not run statement: duplicate key"));
	assert_int_equal(exec_op(f->c, PG_SCOPE_SYSTEM, 0, "SELEC 1"), ERR_DB);
	assert_non_null(strstr(store_errmsg(f->c), "syntax error"));
	assert_int_equal(count_in(f->c, PG_SCOPE_SYSTEM, 0, "tenants"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_tenant_scope_sees_only_its_rows, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_no_scope_sees_nothing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_system_scope_queues_not_shops, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_partitions_refused, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_runs_as_app_role, setup, teardown),
	        cmocka_unit_test(test_concurrent_migrations),
	        cmocka_unit_test_setup_teardown(test_lost_connection_outside_transaction, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_lost_connection_inside_transaction, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_read_only_server_again, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lead_goes_with_next_statement, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_lock_timeout_again, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_statement_timeout, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lazy_commits_and_sync, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_listen_names_partitions, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_pg_helpers, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_status_reads_one_key, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_prepared_statements, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
