/*
 * test_store.c - unit tests of the store through store.h: against a
 * temporary SQLite file under /tmp, or, with MUNIM_TEST_PG set, against a
 * fresh PostgreSQL database per test (store_fixture.h, pg_fixture.h); the
 * same assertions hold for both backends. The few tests of SQLite's own
 * machinery (its locks, checkpoints, statement helpers, query plans) skip
 * under PostgreSQL, each saying why; test_store_pg.c has PostgreSQL's own.
 *
 * Each test gets a fresh, migrated store with a short busy timeout and one
 * tenant; the clock is pinned (clock_set_fake) wherever the store stamps a
 * time. A second raw connection (raw_db.h) plays "another process".
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"
#include "store/sqlite_internal.h"
#include "store/store_internal.h"
#include "raw_db.h"
#include "store_fixture.h"

#define T0 1750000000000LL /* the pinned clock: 2025-06-15 */

struct fx {
	struct test_db db;
	struct store *st;
	struct store_conn *c;
	struct arena a;
	int64_t tenant;
};

/* The migrations of the backend under test. */
static int nmigrations(void)
{
	return test_pg_base() ? store__pg_nmigrations : store__sq_nmigrations;
}

/* fx_open_db: a store in a fresh directory, connected; PostgreSQL's is a
 * copy of a migrated template unless empty is set (a new SQLite file is
 * always empty). */
static struct fx *fx_open_db(int empty)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	if (empty)
		test_db_make_empty(&f->db, "store");
	else
		test_db_make(&f->db, "store");
	test_db_connect(&f->db, 100, &f->st, &f->c);
	arena_init(&f->a, 0);
	clock_set_fake(T0);
	return f;
}

/* fx_open: a store in a fresh directory, connected, not migrated. */
static struct fx *fx_open(void)
{
	return fx_open_db(1);
}

static int64_t add_tenant(struct store_conn *c, const char *phone)
{
	struct tenant t = {.name = "Sharma Kirana",
	                   .phone_number_id = phone,
	                   .gstin = "27AAAPA1234A1Z5",
	                   .state_code = "27",
	                   .upi_id = "sharma@upi",
	                   .owner_numbers = "919800000001",
	                   .address = "Pune"};
	int64_t id = 0;
	assert_int_equal(store_tenant_add(c, &t, &id), 0);
	assert_true(id > 0);
	return id;
}

static int setup(void **state)
{
	struct fx *f = fx_open_db(0);
	int applied = -1;
	assert_int_equal(store_migrate(f->c, &applied), 0);
	/* PostgreSQL's database is a copy of a migrated template: nothing to do */
	assert_int_equal(applied, test_pg_base() ? 0 : store__sq_nmigrations);
	f->tenant = add_tenant(f->c, "100000000001");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	clock_set_fake(-1);
	arena_release(&f->a);
	store_disconnect(f->c);
	store_close(f->st);
	test_db_remove(&f->db);
	free(f);
	return 0;
}

/* ---- lifecycle and migrations ------------------------------------------------ */

static void test_migrate_idempotent(void **state)
{
	(void)state;
	struct fx *f = fx_open();
	int v = -1, applied = -1;
	assert_int_equal(store_schema_version(f->c, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(store_migrate(f->c, &applied), 0);
	assert_int_equal(applied, nmigrations());
	assert_int_equal(store_schema_version(f->c, &v), 0);
	assert_int_equal(v, nmigrations());
	assert_int_equal(store_migrate(f->c, &applied), 0);
	assert_int_equal(applied, 0);
	assert_int_equal(store_migrate(f->c, NULL), 0);
	assert_int_equal(store_schema_version(f->c, &v), 0);
	assert_int_equal(v, nmigrations());
	/* a second connection sees the same schema */
	struct store_conn *c2;
	assert_int_equal(store_connect(f->st, &c2), 0);
	assert_int_equal(store_schema_version(c2, &v), 0);
	assert_int_equal(v, nmigrations());
	store_disconnect(c2);
	void *s = f;
	teardown(&s);
}

static void test_unmigrated_store_err_db(void **state)
{
	(void)state;
	struct fx *f = fx_open();
	int64_t n;
	assert_int_equal(store_tenant_count(f->c, &n), ERR_DB);
	if (test_pg_base()) /* the table, or munim_app on a server never migrated */
		assert_non_null(strstr(store_errmsg(f->c), "does not exist"));
	else
		assert_non_null(strstr(store_errmsg(f->c), "no such table"));
	void *s = f;
	teardown(&s);
}

static void test_open_bad_url_inval(void **state)
{
	(void)state;
	struct store *st = (struct store *)1;
	/* a PostgreSQL url is checked at open: a server that does not answer */
	assert_int_equal(store_open("postgres://u:p@127.0.0.1:1/munim", &st), ERR_IO);
	assert_null(st);
	st = (struct store *)1;
	assert_int_equal(store_open("postgresql://127.0.0.1:1/munim?connect_timeout=2", &st),
	                 ERR_IO);
	assert_null(st);
	assert_int_equal(store_open("", &st), ERR_INVAL);
	assert_int_equal(store_open("/nonexistent-dir-munim/x/munim.db", &st), ERR_IO);
	assert_null(st);
}

static void test_names_and_partition(void **state)
{
	(void)state;
	assert_string_equal(outbox_state_name(OUTBOX_PENDING), "pending");
	assert_string_equal(outbox_state_name(OUTBOX_DELIVERED), "delivered");
	assert_string_equal(outbox_state_name(OUTBOX_DEAD), "dead");
	assert_string_equal(outbox_state_name((enum outbox_state)42), "unknown");
	assert_string_equal(outbox_prio_name(PRIO_P0), "P0");
	assert_string_equal(outbox_prio_name(PRIO_P3), "P3");
	int seen[STORE_PARTITIONS] = {0};
	for (int64_t t = 1; t <= 2000; t++) {
		int p = store_partition(t);
		assert_true(p >= 0 && p < STORE_PARTITIONS);
		assert_int_equal(p, store_partition(t));
		seen[p]++;
	}
	for (int p = 0; p < STORE_PARTITIONS; p++)
		assert_true(seen[p] > 0); /* the hash spreads tenants over all partitions */
}

/* ---- tenants, customers, catalogue ------------------------------------------------ */

static void test_tenant_add_duplicate_phone_conflict(void **state)
{
	struct fx *f = *state;
	struct tenant t;
	int64_t id, n;
	assert_int_equal(store_tenant_get(f->c, f->tenant, &f->a, &t), 0);
	assert_string_equal(t.name, "Sharma Kirana");
	assert_string_equal(t.state_code, "27");
	assert_int_equal(t.created_at, T0);
	assert_int_equal(store_tenant_by_phone(f->c, "100000000001", &f->a, &t), 0);
	assert_int_equal(t.id, f->tenant);

	struct tenant dup = {.name = "Other", .phone_number_id = "100000000001"};
	assert_int_equal(store_tenant_add(f->c, &dup, &id), ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->c), "is taken"));
	assert_int_equal(store_tenant_count(f->c, &n), 0);
	assert_int_equal(n, 1);

	assert_int_equal(store_tenant_get(f->c, 999, &f->a, &t), ERR_NOTFOUND);
	assert_int_equal(store_tenant_by_phone(f->c, "nope", &f->a, &t), ERR_NOTFOUND);
	struct tenant bad = {.name = "", .phone_number_id = "1"};
	assert_int_equal(store_tenant_add(f->c, &bad, &id), ERR_INVAL);
}

/* Several shops read together: each in its place, a repeat too, an
 * unknown id not found (no error), within a transaction and outside one. */
static void test_tenants_get_together(void **state)
{
	struct fx *f = *state;
	struct tenant second = {.name = "Patel Medical", .phone_number_id = "100000000002"};
	int64_t other;
	assert_int_equal(store_tenant_add(f->c, &second, &other), 0);
	int64_t ids[] = {other, 999, f->tenant, other};
	struct tenant t[4];
	char found[4];
	for (int in_txn = 0; in_txn < 2; in_txn++) {
		if (in_txn)
			assert_int_equal(store_begin(f->c), 0);
		memset(found, 7, sizeof(found));
		assert_int_equal(store_tenants_get(f->c, ids, 4, &f->a, t, found), 0);
		assert_int_equal(found[0], 1);
		assert_int_equal(found[1], 0);
		assert_int_equal(found[2], 1);
		assert_int_equal(found[3], 1);
		assert_int_equal(t[0].id, other);
		assert_string_equal(t[0].name, "Patel Medical");
		assert_string_equal(t[0].phone_number_id, "100000000002");
		assert_int_equal(t[2].id, f->tenant);
		assert_string_equal(t[2].name, "Sharma Kirana");
		assert_string_equal(t[2].state_code, "27");
		assert_int_equal(t[2].created_at, T0);
		assert_string_equal(t[3].name, "Patel Medical");
		if (in_txn)
			assert_int_equal(store_commit(f->c), 0);
	}
	assert_int_equal(store_tenants_get(f->c, ids, 0, &f->a, t, found), 0);
	assert_int_equal(store_tenants_get(f->c, ids, -1, &f->a, t, found), ERR_INVAL);
	assert_int_equal(store_tenants_get(f->c, NULL, 2, &f->a, t, found), ERR_INVAL);
}

static void test_customer_touch(void **state)
{
	struct fx *f = *state;
	struct customer cu;
	assert_int_equal(
	        store_customer_touch(f->c, f->tenant, "919811111111", "Asha", T0, &f->a, &cu), 0);
	int64_t id = cu.id;
	assert_string_equal(cu.name, "Asha");
	assert_string_equal(cu.state_code, "");
	/* an empty name keeps the old one; an older time does not move it back */
	assert_int_equal(
	        store_customer_touch(f->c, f->tenant, "919811111111", "", T0 - 5, &f->a, &cu), 0);
	assert_int_equal(cu.id, id);
	assert_string_equal(cu.name, "Asha");
	assert_int_equal(cu.last_inbound_at, T0);
	assert_int_equal(store_customer_set_state(f->c, f->tenant, "919811111111", "29"), 0);
	assert_int_equal(
	        store_customer_touch(f->c, f->tenant, "919811111111", "Asha K", T0 + 9, &f->a, &cu),
	        0);
	assert_string_equal(cu.state_code, "29");
	assert_string_equal(cu.name, "Asha K");
	assert_int_equal(cu.last_inbound_at, T0 + 9);
	/* within the slack and no new name: the row is not rewritten */
	assert_int_equal(store_customer_touch(f->c, f->tenant, "919811111111", "Asha K",
	                                      T0 + 9 + STORE_INBOUND_SLACK_MS - 1, &f->a, &cu),
	                 0);
	assert_int_equal(cu.last_inbound_at, T0 + 9);
	/* past it, or with another name, it is */
	assert_int_equal(store_customer_touch(f->c, f->tenant, "919811111111", "",
	                                      T0 + 9 + STORE_INBOUND_SLACK_MS, &f->a, &cu),
	                 0);
	assert_int_equal(cu.last_inbound_at, T0 + 9 + STORE_INBOUND_SLACK_MS);
	assert_int_equal(store_customer_touch(f->c, f->tenant, "919811111111", "Asha Kumari",
	                                      T0 + 9 + STORE_INBOUND_SLACK_MS + 1, &f->a, &cu),
	                 0);
	assert_string_equal(cu.name, "Asha Kumari");
	assert_int_equal(cu.last_inbound_at, T0 + 9 + STORE_INBOUND_SLACK_MS + 1);
	assert_int_equal(cu.id, id);
	assert_int_equal(store_customer_set_state(f->c, f->tenant, "910000000000", "29"),
	                 ERR_NOTFOUND);
	assert_int_equal(store_audit(f->c, f->tenant, "919811111111", "order.confirm", "{}"), 0);
	assert_int_equal(store_audit(f->c, f->tenant, "x", "", "{}"), ERR_INVAL);
}

static int64_t add_product(struct fx *f, const char *sku, const char *name, int64_t price)
{
	struct product p = {.tenant_id = f->tenant,
	                    .sku = sku,
	                    .name = name,
	                    .aliases = "chawal",
	                    .unit = "kg",
	                    .base_per_unit = 1000,
	                    .price_paise = price,
	                    .gst_rate_bp = 500,
	                    .hsn = "1006"};
	int64_t id = 0;
	assert_int_equal(store_product_upsert(f->c, &p, &id), 0);
	return id;
}

static void test_product_upsert(void **state)
{
	struct fx *f = *state;
	struct product p, *list;
	int n;
	int64_t rice = add_product(f, "RICE", "Rice", 6000);
	int64_t atta = add_product(f, "ATTA", "Atta", 4500);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, 5000, "purchase", 0, NULL), 0);
	/* same sku: updated in place, stock untouched */
	assert_int_equal(add_product(f, "RICE", "Basmati Rice", 9000), rice);
	assert_int_equal(store_product_get(f->c, f->tenant, rice, &f->a, &p), 0);
	assert_string_equal(p.name, "Basmati Rice");
	assert_int_equal(p.price_paise, 9000);
	assert_int_equal(p.stock, 5000);
	assert_int_equal(p.base_per_unit, 1000);
	assert_string_equal(p.hsn, "1006");
	assert_int_equal(store_products_list(f->c, f->tenant, &f->a, &list, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].id, atta); /* ordered by name */
	assert_int_equal(list[1].id, rice);
	assert_int_equal(store_product_set_price(f->c, f->tenant, atta, 4700), 0);
	assert_int_equal(store_product_get(f->c, f->tenant, atta, &f->a, &p), 0);
	assert_int_equal(p.price_paise, 4700);
	assert_int_equal(store_product_set_price(f->c, f->tenant, 9999, 1), ERR_NOTFOUND);
	assert_int_equal(store_product_get(f->c, f->tenant + 1, rice, &f->a, &p), ERR_NOTFOUND);
	struct product bad = {.tenant_id = f->tenant, .sku = "X", .name = "X", .unit = "kg"};
	int64_t id;
	assert_int_equal(store_product_upsert(f->c, &bad, &id), ERR_INVAL); /* base_per_unit 0 */
	/* many products: the arena array grows past its first capacity */
	for (int i = 0; i < 40; i++) {
		char sku[16];
		snprintf(sku, sizeof(sku), "SKU%02d", i);
		add_product(f, sku, sku, 100 + i);
	}
	assert_int_equal(store_products_list(f->c, f->tenant, &f->a, &list, &n), 0);
	assert_int_equal(n, 42);
	assert_int_equal(store_products_low(f->c, f->tenant, 1, &f->a, &list, &n), 0);
	assert_int_equal(n, 41); /* all but the rice (5 kg) have less than 1 kg */
}

/* ---- stock ledger --------------------------------------------------------------- */

static int64_t catalog_rev(struct fx *f, int64_t tenant)
{
	struct tenant t;
	assert_int_equal(store_tenant_get(f->c, tenant, &f->a, &t), 0);
	return t.catalog_rev;
}

/* Every change to a tenant's products moves its catalogue revision, and
 * only its own; a refused change moves nothing. */
static void test_catalog_rev_follows_products(void **state)
{
	struct fx *f = *state;
	int64_t other = add_tenant(f->c, "100000000002");
	int64_t r0 = catalog_rev(f, f->tenant), o0 = catalog_rev(f, other);
	int64_t rice = add_product(f, "RICE", "Rice", 6000);
	int64_t r1 = catalog_rev(f, f->tenant);
	assert_true(r1 > r0);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, 1000, "purchase", 0, NULL), 0);
	int64_t r2 = catalog_rev(f, f->tenant);
	assert_true(r2 > r1);
	assert_int_equal(store_product_set_price(f->c, f->tenant, rice, 6500), 0);
	int64_t r3 = catalog_rev(f, f->tenant);
	assert_true(r3 > r2);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, -5000, "order", 1, NULL),
	                 ERR_CONFLICT);
	assert_int_equal(catalog_rev(f, f->tenant), r3);
	assert_int_equal(catalog_rev(f, other), o0);
}

static void test_stock_move_negative_conflict(void **state)
{
	struct fx *f = *state;
	int64_t rice = add_product(f, "RICE", "Rice", 6000), after = -1, sum = -1;
	struct product p;
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, 1000, "purchase", 0, &after), 0);
	assert_int_equal(after, 1000);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, -300, "order", 7, &after), 0);
	assert_int_equal(after, 700);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, -800, "order", 8, &after),
	                 ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->c), "below zero"));
	assert_int_equal(store_product_get(f->c, f->tenant, rice, &f->a, &p), 0);
	assert_int_equal(p.stock, 700);
	assert_int_equal(store_ledger_sum(f->c, f->tenant, rice, &sum), 0);
	assert_int_equal(sum, 700);
	assert_int_equal(store_stock_move(f->c, f->tenant, 9999, 5, "purchase", 0, NULL),
	                 ERR_NOTFOUND);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, 0, "purchase", 0, NULL),
	                 ERR_INVAL);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, 5, "", 0, NULL), ERR_INVAL);

	/* inside a transaction, a refused move leaves the others intact */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, -700, "order", 9, &after), 0);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, -1, "order", 9, &after),
	                 ERR_CONFLICT);
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(store_product_get(f->c, f->tenant, rice, &f->a, &p), 0);
	assert_int_equal(p.stock, 0);
	assert_int_equal(store_ledger_sum(f->c, f->tenant, rice, &sum), 0);
	assert_int_equal(sum, 0);
}

static void test_ledger_append_only(void **state)
{
	struct fx *f = *state;
	int64_t rice = add_product(f, "RICE", "Rice", 6000);
	assert_int_equal(store_stock_move(f->c, f->tenant, rice, 1000, "purchase", 0, NULL), 0);
	/* by hand, as the database's owner: the schema itself refuses (SQLite:
	 * a trigger's ABORT and a CHECK; PostgreSQL: a trigger's exception,
	 * P0001, and check_violation, 23514) */
	struct raw_db db;
	int pg = test_pg_base() != NULL;
	raw_open(&db, f->db.path);
	assert_int_equal(raw_exec(&db, "UPDATE stock_ledger SET delta = 5"), -1);
	assert_non_null(strstr(db.err, "append-only"));
	if (pg)
		assert_string_equal(db.sqlstate, "P0001");
	else
		assert_int_equal(db.sqlite_code, SQLITE_CONSTRAINT_TRIGGER);
	assert_int_equal(raw_exec(&db, "DELETE FROM stock_ledger"), -1);
	assert_non_null(strstr(db.err, "append-only"));
	if (!pg)
		assert_int_equal(db.sqlite_code, SQLITE_CONSTRAINT_TRIGGER);
	/* and stock itself cannot go negative even by hand */
	assert_int_equal(raw_exec(&db, "UPDATE products SET stock = -1"), -1);
	if (pg)
		assert_string_equal(db.sqlstate, "23514");
	else
		assert_int_equal(db.sqlite_code, SQLITE_CONSTRAINT_CHECK);
	raw_close(&db);
	int64_t sum;
	assert_int_equal(store_ledger_sum(f->c, f->tenant, rice, &sum), 0);
	assert_int_equal(sum, 1000);
}

/* ---- orders and invoices ---------------------------------------------------------- */

static int64_t add_customer(struct fx *f, const char *wa_id)
{
	struct customer cu;
	assert_int_equal(store_customer_touch(f->c, f->tenant, wa_id, "C", T0, &f->a, &cu), 0);
	return cu.id;
}

static int64_t add_order(struct fx *f, int64_t customer, int64_t product)
{
	struct order_line lines[2] = {
	        {.product_id = product,
	         .name = "Rice",
	         .unit = "kg",
	         .base_per_unit = 1000,
	         .qty_base = 2000,
	         .price_paise = 6000,
	         .gst_rate_bp = 500,
	         .hsn = "1006",
	         .amount_paise = 12000},
	        {.product_id = product,
	         .name = "Rice",
	         .unit = "kg",
	         .base_per_unit = 1000,
	         .qty_base = 500,
	         .price_paise = 6000,
	         .gst_rate_bp = 500,
	         .hsn = "1006",
	         .amount_paise = 3000},
	};
	struct order o = {.tenant_id = f->tenant,
	                  .customer_id = customer,
	                  .status = ORDER_DRAFT,
	                  .total_paise = 15000,
	                  .nlines = 2,
	                  .lines = lines};
	int64_t id = 0;
	assert_int_equal(store_order_create(f->c, &o, &id), 0);
	return id;
}

static void test_orders_and_set_status_conflict(void **state)
{
	struct fx *f = *state;
	int64_t rice = add_product(f, "RICE", "Rice", 6000);
	int64_t cu = add_customer(f, "919811111111");
	struct order o;
	assert_int_equal(store_order_last(f->c, f->tenant, cu, &f->a, &o), ERR_NOTFOUND);
	int64_t o1 = add_order(f, cu, rice);
	int64_t o2 = add_order(f, cu, rice);
	assert_int_equal(store_order_get(f->c, f->tenant, o1, &f->a, &o), 0);
	assert_int_equal(o.nlines, 2);
	assert_int_equal(o.lines[0].qty_base, 2000);
	assert_int_equal(o.lines[1].amount_paise, 3000);
	assert_string_equal(o.lines[0].hsn, "1006");
	assert_int_equal(o.total_paise, 15000);
	assert_int_equal(o.created_at, T0);
	assert_int_equal(store_order_last(f->c, f->tenant, cu, &f->a, &o), 0);
	assert_int_equal(o.id, o2);

	assert_int_equal(store_order_set_status(f->c, f->tenant, o2, ORDER_DRAFT, ORDER_CONFIRMED),
	                 0);
	/* a second Confirm finds it confirmed */
	assert_int_equal(store_order_set_status(f->c, f->tenant, o2, ORDER_DRAFT, ORDER_CONFIRMED),
	                 ERR_CONFLICT);
	assert_int_equal(store_order_last_draft(f->c, f->tenant, cu, &f->a, &o), 0);
	assert_int_equal(o.id, o1);
	assert_int_equal(store_order_last(f->c, f->tenant, cu, &f->a, &o), 0);
	assert_int_equal(o.id, o2);
	assert_int_equal(o.status, ORDER_CONFIRMED);
	assert_int_equal(store_order_set_status(f->c, f->tenant, o1, ORDER_DRAFT, ORDER_CANCELLED),
	                 0);
	assert_int_equal(store_order_last_draft(f->c, f->tenant, cu, &f->a, &o), ERR_NOTFOUND);
	assert_int_equal(
	        store_order_set_status(f->c, f->tenant, 9999, ORDER_DRAFT, ORDER_CONFIRMED),
	        ERR_NOTFOUND);
	/* another tenant's order is not found */
	assert_int_equal(store_order_get(f->c, f->tenant + 1, o1, &f->a, &o), ERR_NOTFOUND);
	struct order bad = {.tenant_id = f->tenant, .customer_id = cu, .nlines = 5000};
	int64_t id;
	assert_int_equal(store_order_create(f->c, &bad, &id), ERR_INVAL);
}

static int64_t issue(struct fx *f, int64_t order, int64_t customer, const char *fy,
                     struct invoice *inv)
{
	memset(inv, 0, sizeof(*inv));
	inv->tenant_id = f->tenant;
	inv->order_id = order;
	inv->customer_id = customer;
	inv->fy = fy;
	inv->intra_state = 1;
	inv->place_of_supply = "27";
	inv->taxable_paise = 15000;
	inv->cgst_paise = 375;
	inv->sgst_paise = 375;
	inv->round_off_paise = 50;
	inv->total_paise = 15800;
	int64_t id = 0;
	assert_int_equal(store_invoice_issue(f->c, inv, &f->a, &id), 0);
	return id;
}

static void test_invoice_numbering_gapless(void **state)
{
	struct fx *f = *state;
	int64_t rice = add_product(f, "RICE", "Rice", 6000);
	int64_t cu = add_customer(f, "919811111111");
	int64_t ord[6];
	struct invoice inv, got;
	int64_t id;
	for (int i = 0; i < 6; i++)
		ord[i] = add_order(f, cu, rice);

	assert_int_equal(store_begin(f->c), 0);
	issue(f, ord[0], cu, "2526", &inv);
	assert_int_equal(inv.seq, 1);
	assert_string_equal(inv.number, "INV/2526/000001");
	issue(f, ord[1], cu, "2526", &inv);
	assert_string_equal(inv.number, "INV/2526/000002");
	/* an order invoiced twice: refused, and the number is not used up */
	memset(&got, 0, sizeof(got));
	got.tenant_id = f->tenant;
	got.order_id = ord[1];
	got.customer_id = cu;
	got.fy = "2526";
	assert_int_equal(store_invoice_issue(f->c, &got, &f->a, &id), ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->c), "already has one"));
	issue(f, ord[2], cu, "2526", &inv);
	assert_string_equal(inv.number, "INV/2526/000003");
	assert_int_equal(store_commit(f->c), 0);

	/* a rolled-back invoice gives its number back */
	assert_int_equal(store_begin(f->c), 0);
	issue(f, ord[3], cu, "2526", &inv);
	assert_int_equal(inv.seq, 4);
	assert_int_equal(store_rollback(f->c), 0);
	assert_int_equal(store_begin(f->c), 0);
	issue(f, ord[4], cu, "2526", &inv);
	assert_int_equal(inv.seq, 4);
	assert_string_equal(inv.number, "INV/2526/000004");
	/* a new financial year starts a new series */
	issue(f, ord[3], cu, "2627", &inv);
	assert_int_equal(inv.seq, 1);
	assert_string_equal(inv.number, "INV/2627/000001");
	assert_int_equal(store_commit(f->c), 0);

	assert_int_equal(store_invoice_by_order(f->c, f->tenant, ord[4], &f->a, &got), 0);
	assert_string_equal(got.number, "INV/2526/000004");
	assert_int_equal(got.total_paise, 15800);
	assert_int_equal(got.issued_at, T0);
	assert_int_equal(got.intra_state, 1);
	assert_string_equal(got.place_of_supply, "27");
	assert_int_equal(store_invoice_last(f->c, f->tenant, cu, &f->a, &got), 0);
	assert_string_equal(got.number, "INV/2627/000001");
	assert_int_equal(store_invoice_by_order(f->c, f->tenant, ord[5], &f->a, &got),
	                 ERR_NOTFOUND);

	/* outside a transaction, or with a bad FY code: refused */
	memset(&got, 0, sizeof(got));
	got.tenant_id = f->tenant;
	got.order_id = ord[5];
	got.customer_id = cu;
	got.fy = "2526";
	assert_int_equal(store_invoice_issue(f->c, &got, &f->a, &id), ERR_INVAL);
	assert_int_equal(store_begin(f->c), 0);
	got.fy = "25/26";
	assert_int_equal(store_invoice_issue(f->c, &got, &f->a, &id), ERR_INVAL);
	got.fy = "202526";
	assert_int_equal(store_invoice_issue(f->c, &got, &f->a, &id), ERR_INVAL);
	assert_int_equal(store_rollback(f->c), 0);

	/* sales: invoices of confirmed orders only */
	for (int i = 0; i < 5; i++)
		store_order_set_status(f->c, f->tenant, ord[i], ORDER_DRAFT,
		                       i == 2 ? ORDER_CANCELLED : ORDER_CONFIRMED);
	int64_t orders, taxable, total;
	assert_int_equal(store_sales_since(f->c, f->tenant, T0 - 1000, &orders, &taxable, &total),
	                 0);
	assert_int_equal(orders, 4);
	assert_int_equal(taxable, 4 * 15000);
	assert_int_equal(total, 4 * 15800);
	assert_int_equal(store_sales_since(f->c, f->tenant, T0 + 1, &orders, &taxable, &total), 0);
	assert_int_equal(orders, 0);
	assert_int_equal(total, 0);
}

/* ---- inbox --------------------------------------------------------------------------- */

static struct inbox_entry msg(int64_t tenant, const char *wamid, const char *status,
                              const char *body)
{
	struct inbox_entry e = {.tenant_id = tenant,
	                        .kind = status[0] ? INBOX_STATUS : INBOX_MESSAGE,
	                        .ext_id = wamid,
	                        .status = status,
	                        .from = "919811111111",
	                        .name = "Asha",
	                        .type = "text",
	                        .body = body,
	                        .context_id = "",
	                        .sent_at = T0 - 2000,
	                        .received_at = T0,
	                        .error_title = ""};
	return e;
}

static void test_inbox_put_dedup(void **state)
{
	struct fx *f = *state;
	struct inbox_entry e[4] = {
	        msg(f->tenant, "wamid.A", "", "hi"),
	        msg(f->tenant, "wamid.A", "", "hi"),
	        msg(f->tenant, "wamid.OUT1", "sent", ""),
	        msg(f->tenant, "wamid.OUT1", "delivered", ""),
	};
	enum inbox_put_result r[4];
	int64_t depth;
	assert_int_equal(store_inbox_put(f->c, e, 4, r), 0);
	assert_int_equal(r[0], INBOX_PUT_NEW);
	assert_int_equal(r[1], INBOX_PUT_DUPLICATE);
	assert_int_equal(r[2], INBOX_PUT_NEW);
	assert_int_equal(r[3], INBOX_PUT_NEW);
	/* the webhook redelivered: all duplicates, nothing added */
	assert_int_equal(store_inbox_put(f->c, e, 4, r), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r[i], INBOX_PUT_DUPLICATE);
	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 3);

	struct inbox_entry *p;
	int n;
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 10, &f->a, &p, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(p[0].ext_id, "wamid.A");
	assert_string_equal(p[0].body, "hi");
	assert_string_equal(p[0].name, "Asha");
	assert_int_equal(p[0].received_at, T0);
	assert_int_equal(p[0].sent_at, T0 - 2000);
	assert_int_equal(p[0].kind, INBOX_MESSAGE);
	assert_string_equal(p[2].status, "delivered");
	assert_int_equal(p[2].kind, INBOX_STATUS);
	assert_true(p[0].id < p[1].id && p[1].id < p[2].id);

	/* a batch over two partitions (PostgreSQL: through the parent; one
	 * partition's goes into it by name) */
	int64_t other = f->tenant + 1;
	while (store_partition(other) == store_partition(f->tenant))
		other++;
	struct inbox_entry two[2] = {msg(other, "wamid.B", "", "ho"),
	                             msg(f->tenant, "wamid.C", "", "hu")};
	assert_int_equal(store_inbox_put(f->c, two, 2, r), 0);
	assert_int_equal(r[0], INBOX_PUT_NEW);
	assert_int_equal(r[1], INBOX_PUT_NEW);
	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 5);
	/* each in its tenant's partition */
	assert_int_equal(
	        store_inbox_pending(f->c, 1ULL << store_partition(other), 10, &f->a, &p, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(p[0].ext_id, "wamid.B");

	struct inbox_entry bad = msg(f->tenant, "", "", "x");
	assert_int_equal(store_inbox_put(f->c, &bad, 1, r), ERR_INVAL);
	assert_int_equal(store_inbox_put(f->c, e, STORE_MAX_BATCH + 1, r), ERR_INVAL);
}

/* A photo's media id and mime type go into the inbox and come back with
 * the entry; an entry that has none (NULL or "") reads back "". */
static void test_inbox_media_round_trip(void **state)
{
	struct fx *f = *state;
	struct inbox_entry e[3] = {
	        msg(f->tenant, "wamid.PHOTO", "", "meri list"),
	        msg(f->tenant, "wamid.TEXT", "", "hi"), /* media fields NULL */
	        msg(f->tenant, "wamid.DOC", "", ""),
	};
	e[0].type = "image";
	e[0].media_id = "1234567890987654";
	e[0].media_mime = "image/jpeg";
	e[2].type = "document";
	e[2].media_id = "";
	e[2].media_mime = "application/pdf";
	enum inbox_put_result r[3];
	assert_int_equal(store_inbox_put(f->c, e, 3, r), 0);
	for (int i = 0; i < 3; i++)
		assert_int_equal(r[i], INBOX_PUT_NEW);

	struct inbox_entry *p;
	int n;
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 10, &f->a, &p, &n), 0);
	assert_int_equal(n, 3);
	assert_string_equal(p[0].ext_id, "wamid.PHOTO");
	assert_string_equal(p[0].type, "image");
	assert_string_equal(p[0].body, "meri list");
	assert_string_equal(p[0].media_id, "1234567890987654");
	assert_string_equal(p[0].media_mime, "image/jpeg");
	assert_string_equal(p[1].ext_id, "wamid.TEXT");
	assert_string_equal(p[1].media_id, "");
	assert_string_equal(p[1].media_mime, "");
	assert_string_equal(p[2].ext_id, "wamid.DOC");
	assert_string_equal(p[2].media_id, "");
	assert_string_equal(p[2].media_mime, "application/pdf");
	/* the strings belong to the arena, not to the caller's entries */
	assert_ptr_not_equal(p[0].media_id, e[0].media_id);
}

/* An entry written done (the fast path's) is not pending; reopened, it is;
 * reopening touches only done entries; no other starting state is taken. */
static void test_inbox_put_done_and_reopen(void **state)
{
	struct fx *f = *state;
	struct inbox_entry e = msg(f->tenant, "wamid.INLINE", "", "hi");
	e.state = INBOX_DONE;
	enum inbox_put_result r;
	int64_t depth = -1;
	assert_int_equal(store_inbox_put(f->c, &e, 1, &r), 0);
	assert_int_equal(r, INBOX_PUT_NEW);
	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 0);
	assert_int_equal(store_inbox_reopen(f->c, e.id), 0);
	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 1);
	struct inbox_entry *p;
	int n;
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 10, &f->a, &p, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].id, e.id);
	/* pending already, or failed: reopening changes nothing */
	assert_int_equal(store_inbox_reopen(f->c, e.id), 0);
	assert_int_equal(store_inbox_failed(f->c, e.id, 1, "broken"), 0);
	assert_int_equal(store_inbox_reopen(f->c, e.id), 0);
	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 0);

	struct inbox_entry bad = msg(f->tenant, "wamid.ODD", "", "x");
	bad.state = INBOX_FAILED;
	assert_int_equal(store_inbox_put(f->c, &bad, 1, &r), ERR_INVAL);
	assert_non_null(strstr(store_errmsg(f->c), "pending or done"));
}

/* Whose messages wait: pending message entries only, each once; too many
 * is ERR_TOOBIG with nothing read. */
static void test_inbox_waiting(void **state)
{
	struct fx *f = *state;
	struct inbox_entry e[4] = {
	        msg(f->tenant, "wamid.W1", "", "hi"),
	        msg(f->tenant, "wamid.W2", "", "hi"),
	        msg(f->tenant, "wamid.W3", "", "hi"),
	        msg(f->tenant, "wamid.OUT9", "delivered", ""),
	};
	e[1].from = "919822222222";
	enum inbox_put_result r[4];
	struct inbox_waiting *w;
	int n = -1;
	assert_int_equal(store_inbox_waiting(f->c, 10, &f->a, &w, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_inbox_put(f->c, e, 4, r), 0);
	assert_int_equal(store_inbox_done(f->c, e[2].id), 0);
	assert_int_equal(store_inbox_waiting(f->c, 10, &f->a, &w, &n), 0);
	assert_int_equal(n, 2); /* W1 and W2; W3 is done, the status is no message */
	int saw[2] = {0, 0};
	for (int i = 0; i < n; i++) {
		assert_int_equal(w[i].tenant_id, f->tenant);
		saw[strcmp(w[i].from, "919811111111") == 0 ? 0 : 1]++;
	}
	assert_int_equal(saw[0], 1);
	assert_int_equal(saw[1], 1);
	assert_int_equal(store_inbox_waiting(f->c, 1, &f->a, &w, &n), ERR_TOOBIG);
	assert_int_equal(n, 0);
	assert_int_equal(store_inbox_waiting(f->c, -1, &f->a, &w, &n), ERR_INVAL);
}

static void test_inbox_pending_slices(void **state)
{
	struct fx *f = *state;
	enum { NT = 12, PER = 5, NS = 4 };
	int64_t tenants[NT];
	char phone[32], wamid[32];
	enum inbox_put_result r;
	tenants[0] = f->tenant;
	for (int t = 1; t < NT; t++) {
		snprintf(phone, sizeof(phone), "2000000000%02d", t);
		tenants[t] = add_tenant(f->c, phone);
	}
	/* interleave tenants so ids mix partitions */
	for (int i = 0; i < PER; i++)
		for (int t = 0; t < NT; t++) {
			snprintf(wamid, sizeof(wamid), "wamid.%d.%d", t, i);
			struct inbox_entry e = msg(tenants[t], wamid, "", "x");
			assert_int_equal(store_inbox_put(f->c, &e, 1, &r), 0);
		}

	struct inbox_entry *all, *p;
	int nall, n, total = 0;
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 1000, &f->a, &all, &nall),
	                 0);
	assert_int_equal(nall, NT * PER);
	for (int s = 0; s < NS; s++) {
		assert_int_equal(store_inbox_pending(f->c, store_partition_slice(s, NS), 1000,
		                                     &f->a, &p, &n),
		                 0);
		for (int i = 0; i < n; i++) {
			assert_int_equal(store_partition(p[i].tenant_id) % NS, s);
			if (i > 0)
				assert_true(p[i - 1].id < p[i].id);
		}
		total += n;
		/* a small limit gives the oldest entries of the slice */
		int want = 0;
		int64_t expect[3];
		for (int i = 0; i < nall && want < 3; i++)
			if (store_partition(all[i].tenant_id) % NS == s)
				expect[want++] = all[i].id;
		assert_int_equal(
		        store_inbox_pending(f->c, store_partition_slice(s, NS), 3, &f->a, &p, &n),
		        0);
		assert_int_equal(n, want);
		for (int i = 0; i < n; i++)
			assert_int_equal(p[i].id, expect[i]);
	}
	assert_int_equal(total, NT * PER); /* every entry in exactly one slice */

	/* no partitions: nothing to read (a slice out of range is none) */
	assert_int_equal(store_inbox_pending(f->c, store_partition_slice(4, 4), 10, &f->a, &p, &n),
	                 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_partition_slice(0, 65), 0);
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 0, &f->a, &p, &n),
	                 ERR_INVAL);
}

static void test_inbox_done_and_failed(void **state)
{
	struct fx *f = *state;
	struct inbox_entry e[2] = {msg(f->tenant, "wamid.1", "", "a"),
	                           msg(f->tenant, "wamid.2", "", "b")};
	enum inbox_put_result r[2];
	struct inbox_entry *p;
	int n;
	assert_int_equal(store_inbox_put(f->c, e, 2, r), 0);
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 10, &f->a, &p, &n), 0);
	assert_int_equal(n, 2);
	int64_t id1 = p[0].id, id2 = p[1].id;

	assert_int_equal(store_inbox_done(f->c, id1), 0);
	assert_int_equal(store_inbox_done(f->c, id1), ERR_CONFLICT); /* already done */
	assert_int_equal(store_inbox_done(f->c, 9999), ERR_NOTFOUND);

	assert_int_equal(store_inbox_failed(f->c, id2, 2, "boom"), 0);
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 10, &f->a, &p, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(p[0].attempts, 1);
	assert_int_equal(p[0].state, INBOX_PENDING);
	assert_int_equal(store_inbox_failed(f->c, id2, 2, "boom again"), 0);
	assert_int_equal(store_inbox_pending(f->c, STORE_ALL_PARTITIONS, 10, &f->a, &p, &n), 0);
	assert_int_equal(n, 0); /* FAILED after max attempts */
	assert_int_equal(store_inbox_failed(f->c, id2, 2, "more"), ERR_CONFLICT);
	assert_int_equal(store_inbox_failed(f->c, 9999, 2, "x"), ERR_NOTFOUND);
	assert_int_equal(store_inbox_failed(f->c, id2, 0, "x"), ERR_INVAL);
	int64_t depth;
	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 0);
}

/* ---- outbox ----------------------------------------------------------------------------- */

static int64_t queue(struct fx *f, enum outbox_prio prio, const char *body)
{
	struct outbox_new o = {.tenant_id = f->tenant,
	                       .priority = prio,
	                       .phone_number_id = "100000000001",
	                       .to = "919811111111",
	                       .reply_to = "wamid.IN",
	                       .body = body,
	                       .inbound_received_at = T0 - 10};
	int64_t id = 0;
	assert_int_equal(store_outbox_add(f->c, &o, &id), 0);
	return id;
}

/* store_outbox_status for the fixture's tenant; hint 0 = no row hint. */
static int status_of(struct fx *f, int64_t hint, const char *provider_id, enum outbox_state st,
                     int code, const char *err, int64_t at, enum outbox_state *o,
                     enum outbox_state *nw, enum outbox_prio *prio)
{
	struct outbox_status_update u = {.tenant_id = f->tenant,
	                                 .provider_msg_id = provider_id,
	                                 .row_hint = hint,
	                                 .state = st,
	                                 .error_code = code,
	                                 .error = err,
	                                 .at = at};
	struct outbox_status_result res;
	int rc = store_outbox_status(f->c, &u, &res);
	if (o)
		*o = res.from;
	if (nw)
		*nw = res.to;
	if (prio)
		*prio = res.prio;
	return rc;
}

/* The store's counts (kept by each commit) equal a count of the rows. */
static void counts_match_rows(struct fx *f)
{
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT], scan[PRIO_COUNT][OUTBOX_STATE_COUNT];
	memset(scan, 0, sizeof(scan));
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	for (int st = 0; st < OUTBOX_STATE_COUNT; st++) {
		struct outbox_row *rows;
		int n;
		assert_int_equal(
		        store_outbox_list(f->c, (enum outbox_state)st, 1000, &f->a, &rows, &n), 0);
		for (int i = 0; i < n; i++)
			scan[rows[i].priority][st]++;
	}
	for (int p = 0; p < PRIO_COUNT; p++)
		for (int st = 0; st < OUTBOX_STATE_COUNT; st++)
			assert_int_equal(counts[p][st], scan[p][st]);
}

static void test_outbox_claim_order(void **state)
{
	struct fx *f = *state;
	int64_t p2 = queue(f, PRIO_P2, "{\"b\":1}");
	int64_t p0a = queue(f, PRIO_P0, "{\"b\":2}");
	int64_t p3 = queue(f, PRIO_P3, "{\"b\":3}");
	int64_t p1 = queue(f, PRIO_P1, "{\"b\":4}");
	int64_t p0b = queue(f, PRIO_P0, "{\"b\":5}");
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_claim(f->c, T0, 3, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].id, p0a);
	assert_int_equal(rows[1].id, p0b);
	assert_int_equal(rows[2].id, p1);
	assert_int_equal(rows[0].state, OUTBOX_SENDING);
	assert_int_equal(rows[0].attempts, 1);
	assert_string_equal(rows[0].body, "{\"b\":2}");
	assert_string_equal(rows[0].reply_to, "wamid.IN");
	assert_string_equal(rows[0].provider_msg_id, "");
	assert_int_equal(rows[0].inbound_received_at, T0 - 10);
	assert_int_equal(rows[0].created_at, T0);
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].id, p2);
	assert_int_equal(rows[1].id, p3);
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 0);

	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P0][OUTBOX_SENDING], 2);
	assert_int_equal(counts[PRIO_P3][OUTBOX_SENDING], 1);
	assert_int_equal(counts[PRIO_P3][OUTBOX_PENDING], 0);
	counts_match_rows(f);
	assert_int_equal(store_outbox_claim(f->c, T0, 0, PRIO_P3, &f->a, &rows, &n), ERR_INVAL);
	struct outbox_new bad = {.tenant_id = f->tenant, .priority = PRIO_P0, .to = "x"};
	int64_t id;
	assert_int_equal(store_outbox_add(f->c, &bad, &id), ERR_INVAL);
}

static void test_outbox_retry_not_due(void **state)
{
	struct fx *f = *state;
	int64_t id = queue(f, PRIO_P2, "{}"), at = -1;
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P3, &at), 0);
	assert_int_equal(at, T0);
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P3, &at), 0);
	assert_int_equal(at, 0); /* nothing pending */
	assert_int_equal(store_outbox_retry(f->c, id, T0 + 60000, 130429, "rate limited", T0, NULL),
	                 0);
	assert_int_equal(store_outbox_retry(f->c, id, T0 + 60000, 1, "x", T0, NULL), ERR_CONFLICT);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P3, &at), 0);
	assert_int_equal(at, T0 + 60000);
	assert_int_equal(store_outbox_claim(f->c, T0 + 59999, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_claim(f->c, T0 + 60000, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].attempts, 2);
	assert_int_equal(rows[0].last_error_code, 130429);
	assert_string_equal(rows[0].last_error, "rate limited");
	assert_int_equal(store_outbox_retry(f->c, 9999, T0, 1, "x", T0, NULL), ERR_NOTFOUND);
}

static void test_outbox_claim_due_order(void **state)
{
	struct fx *f = *state;
	struct outbox_row *rows;
	int n;
	int64_t a = queue(f, PRIO_P2, "{}");
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(store_outbox_retry(f->c, a, T0 + 100, 500, "x", T0, NULL), 0);
	clock_set_fake(T0 + 50);
	int64_t b = queue(f, PRIO_P2, "{}");
	clock_set_fake(T0 + 150);
	int64_t p0 = queue(f, PRIO_P0, "{}");
	/* P0 first; then the P2 row that fell due first, though its id is newer */
	assert_int_equal(store_outbox_claim(f->c, T0 + 200, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].id, p0);
	assert_int_equal(rows[1].id, b);
	assert_int_equal(rows[2].id, a);
	assert_int_equal(rows[2].attempts, 2);
}

static void test_outbox_recover(void **state)
{
	struct fx *f = *state;
	queue(f, PRIO_P1, "{}");
	queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int n, rec = -1;
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_outbox_recover(f->c, T0, &rec), 0);
	assert_int_equal(rec, 2);
	assert_int_equal(store_outbox_recover(f->c, T0, &rec), 0);
	assert_int_equal(rec, 0);
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
}

/* The SENDING rows a node claimed, by when they last moved: only that
 * node's, only those that moved before the time given, oldest first, at
 * most the limit (ERR_INVAL outside 1..STORE_MAX_BATCH). */
static void test_outbox_claimed_here(void **state)
{
	struct fx *f = *state;
	int64_t a = queue(f, PRIO_P2, "{}");
	int64_t b = queue(f, PRIO_P2, "{}");
	queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int64_t *ids;
	int n;
	store_set_node(f->st, 5);
	assert_int_equal(store_outbox_claim(f->c, T0, 2, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	store_set_node(f->st, 6);
	assert_int_equal(store_outbox_claim(f->c, T0 + 100, 2, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);

	store_set_node(f->st, 5);
	assert_int_equal(store_outbox_claimed_here(f->c, T0 + 1, 10, &f->a, &ids, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(ids[0], a);
	assert_int_equal(ids[1], b);
	assert_int_equal(store_outbox_claimed_here(f->c, T0, 10, &f->a, &ids, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_claimed_here(f->c, T0 + 1, 1, &f->a, &ids, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], a);
	/* a row that left SENDING is no claim any more */
	assert_int_equal(store_outbox_accepted(f->c, a, "wamid.A", "", T0, NULL), 0);
	assert_int_equal(store_outbox_claimed_here(f->c, T0 + 1000, 10, &f->a, &ids, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], b);

	store_set_node(f->st, 6);
	assert_int_equal(store_outbox_claimed_here(f->c, T0 + 100, 10, &f->a, &ids, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_claimed_here(f->c, T0 + 101, 10, &f->a, &ids, &n), 0);
	assert_int_equal(n, 1);
	store_set_node(f->st, 0);
	assert_int_equal(store_outbox_claimed_here(f->c, T0 + 1000, 10, &f->a, &ids, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_claimed_here(f->c, T0, 0, &f->a, &ids, &n), ERR_INVAL);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_claimed_here(f->c, T0, STORE_MAX_BATCH + 1, &f->a, &ids, &n),
	                 ERR_INVAL);
}

static void test_outbox_recover_waits_for_grace(void **state)
{
	struct fx *f = *state;
	int64_t id = queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int n, rec = 0;
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_outbox_recover(f->c, T0 + 10000, &rec), 0);
	assert_int_equal(rec, 1);
	/* in doubt: not due before the grace ends */
	assert_int_equal(store_outbox_claim(f->c, T0 + 9999, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_claim(f->c, T0 + 10000, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, id);
}

static void test_outbox_status_hint_claims_send_in_doubt(void **state)
{
	struct fx *f = *state;
	int64_t id = queue(f, PRIO_P1, "{}");
	int64_t other = queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int n, rec = 0;
	enum outbox_state o, nw;
	enum outbox_prio prio = PRIO_P3;
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(store_outbox_recover(f->c, T0 + 10000, &rec), 0);
	/* no hint, unknown provider id: not found */
	assert_int_equal(
	        status_of(f, 0, "wamid.LOST", OUTBOX_DELIVERED, 0, "", T0 + 1, &o, &nw, &prio),
	        ERR_NOTFOUND);
	/* a hint naming another tenant's row or a wrong id finds nothing */
	int64_t saved = f->tenant;
	f->tenant = saved + 1000;
	assert_int_equal(
	        status_of(f, id, "wamid.LOST", OUTBOX_DELIVERED, 0, "", T0 + 1, &o, &nw, &prio),
	        ERR_NOTFOUND);
	f->tenant = saved;
	/* the provider's status names our row: it was accepted after all */
	assert_int_equal(
	        status_of(f, id, "wamid.LOST", OUTBOX_DELIVERED, 0, "", T0 + 1, &o, &nw, &prio), 0);
	assert_int_equal(o, OUTBOX_PENDING);
	assert_int_equal(nw, OUTBOX_DELIVERED);
	assert_int_equal(prio, PRIO_P1);
	/* only the other row is sent again */
	assert_int_equal(store_outbox_claim(f->c, T0 + 20000, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, other);
	/* later statuses find the row by its provider id */
	assert_int_equal(status_of(f, 0, "wamid.LOST", OUTBOX_READ, 0, "", T0 + 2, &o, &nw, NULL),
	                 0);
	assert_int_equal(nw, OUTBOX_READ);
	/* a hint is ignored for a row that already has its provider id */
	assert_int_equal(store_outbox_accepted(f->c, other, "wamid.OTHER", "", T0 + 20001, NULL),
	                 0);
	assert_int_equal(status_of(f, other, "wamid.X", OUTBOX_SENT, 0, "", T0 + 3, &o, &nw, NULL),
	                 ERR_NOTFOUND);
}

static void test_outbox_status_overtaking_the_answer(void **state)
{
	struct fx *f = *state;
	int64_t a = queue(f, PRIO_P1, "{}"), b = queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int n, rec = 0;
	enum outbox_state o, nw, fin = OUTBOX_PENDING;
	enum outbox_prio prio = PRIO_P3;
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	/* statuses arrive while both sends still wait for their answers */
	assert_int_equal(
	        status_of(f, a, "wamid.A", OUTBOX_DELIVERED, 0, "", T0 + 1, &o, &nw, &prio), 0);
	assert_int_equal(o, OUTBOX_SENDING); /* kept aside: no visible move */
	assert_int_equal(nw, OUTBOX_SENDING);
	assert_int_equal(prio, PRIO_P1);
	/* a later status for the same message finds it by provider id */
	assert_int_equal(status_of(f, 0, "wamid.A", OUTBOX_READ, 0, "", T0 + 2, &o, &nw, NULL), 0);
	assert_int_equal(nw, OUTBOX_SENDING);
	assert_int_equal(status_of(f, b, "wamid.B", OUTBOX_SENT, 0, "", T0 + 1, &o, &nw, NULL), 0);
	/* the answer lands: the row goes straight to the status it already had */
	assert_int_equal(store_outbox_accepted(f->c, a, "wamid.A", "", T0 + 3, &fin), 0);
	assert_int_equal(fin, OUTBOX_READ);
	/* a crash before b's answer was recorded: start-up gives b its status,
	 * it is not sent again */
	assert_int_equal(store_outbox_recover(f->c, T0 + 10000, &rec), 0);
	assert_int_equal(rec, 0);
	assert_int_equal(store_outbox_list(f->c, OUTBOX_SENT, 10, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, b);
	assert_string_equal(rows[0].provider_msg_id, "wamid.B");
	assert_int_equal(store_outbox_claim(f->c, T0 + 20000, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 0);
	counts_match_rows(f);
}

/*
 * store_outbox_add_many: a page of rows in one call, in order, all or none;
 * a bad row refuses the whole batch with ERR_INVAL before anything is
 * written; the counts follow.
 */
static void test_outbox_add_many(void **state)
{
	struct fx *f = *state;
	struct outbox_new o[300];
	int64_t ids[300];
	char to[300][16];
	for (int i = 0; i < 300; i++) {
		snprintf(to[i], sizeof(to[i]), "9198%08d", i);
		o[i] = (struct outbox_new){
		        .tenant_id = f->tenant,
		        .priority = PRIO_P3,
		        .phone_number_id = "100000000001",
		        .to = to[i],
		        .reply_to = "",
		        .body = "{\"offer\":\"a \\\"quoted\\\" {brace}, comma\"}"};
	}
	/* rolled back with its transaction */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_outbox_add_many(f->c, o, 300, ids), 0);
	assert_int_equal(store_rollback(f->c), 0);
	counts_match_rows(f);
	/* a row without a body: nothing written */
	o[7].body = "";
	assert_int_equal(store_outbox_add_many(f->c, o, 300, ids), ERR_INVAL);
	o[7].body = o[6].body;
	assert_int_equal(store_outbox_add_many(f->c, o, 0, ids), 0);
	/* outside a transaction: its own */
	assert_int_equal(store_outbox_add_many(f->c, o, 300, ids), 0);
	for (int i = 1; i < 300; i++)
		assert_true(ids[i] > ids[i - 1]);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_list(f->c, OUTBOX_PENDING, 1000, &f->a, &rows, &n), 0);
	assert_int_equal(n, 300);
	for (int i = 0; i < n; i++) {
		int k = -1;
		for (int j = 0; j < 300; j++)
			if (ids[j] == rows[i].id)
				k = j;
		assert_true(k >= 0);
		assert_string_equal(rows[i].to, to[k]);
		assert_string_equal(rows[i].body, o[k].body);
		assert_int_equal(rows[i].priority, PRIO_P3);
	}
	counts_match_rows(f);
}

/*
 * The counts follow only what commits: a reply undone with its message
 * (rollback to the savepoint) or its transaction is not counted; inside
 * a transaction the counts include its own changes; recovery moves rows
 * by the status kept aside for them.
 */
static void test_outbox_counts_follow_what_commits(void **state)
{
	struct fx *f = *state;
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_begin(f->c), 0);
	queue(f, PRIO_P1, "{\"kept\":1}");
	assert_int_equal(store_savepoint(f->c), 0);
	queue(f, PRIO_P1, "{\"undone\":1}");
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P1][OUTBOX_PENDING], 2); /* its own, uncommitted */
	assert_int_equal(store_rollback_to(f->c), 0);
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P1][OUTBOX_PENDING], 1);
	assert_int_equal(store_commit(f->c), 0);
	counts_match_rows(f);

	assert_int_equal(store_begin(f->c), 0);
	queue(f, PRIO_P0, "{}");
	assert_int_equal(store_rollback(f->c), 0);
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P0][OUTBOX_PENDING], 0);
	counts_match_rows(f);

	/* claimed, one proved delivered by a status, then a crash: recovery */
	int64_t a = queue(f, PRIO_P2, "{}");
	queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int n, rec = 0;
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(
	        status_of(f, a, "wamid.A", OUTBOX_DELIVERED, 0, "", T0 + 1, NULL, NULL, NULL), 0);
	counts_match_rows(f);
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_outbox_recover(f->c, T0 + 10000, &rec), 0);
	assert_int_equal(rec, 2);
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P2][OUTBOX_DELIVERED], 1);
	assert_int_equal(counts[PRIO_P2][OUTBOX_PENDING], 1);
	assert_int_equal(counts[PRIO_P1][OUTBOX_PENDING], 1);
	assert_int_equal(counts[PRIO_P2][OUTBOX_SENDING] + counts[PRIO_P1][OUTBOX_SENDING], 0);
	counts_match_rows(f);
}

static void test_outcome_defers_to_an_overtaking_status(void **state)
{
	struct fx *f = *state;
	int64_t a = queue(f, PRIO_P2, "{}"), b = queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int n;
	enum outbox_state landed = OUTBOX_PENDING;
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(status_of(f, a, "wamid.A", OUTBOX_SENT, 0, "", T0 + 1, NULL, NULL, NULL),
	                 0);
	assert_int_equal(
	        status_of(f, b, "wamid.B", OUTBOX_DELIVERED, 0, "", T0 + 1, NULL, NULL, NULL), 0);
	/* the answer timed out, yet the provider had the message: no retry */
	assert_int_equal(store_outbox_retry(f->c, a, T0 + 5, 0, "timeout", T0 + 2, &landed), 0);
	assert_int_equal(landed, OUTBOX_SENT);
	/* nor a dead letter */
	assert_int_equal(store_outbox_fail(f->c, b, OUTBOX_DEAD, 500, "gave up", T0 + 2, &landed),
	                 0);
	assert_int_equal(landed, OUTBOX_DELIVERED);
	assert_int_equal(store_outbox_claim(f->c, T0 + 60000, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 0);
	counts_match_rows(f);
}

/* A lazy connection's commits are visible at once like any other and made
 * durable by store_sync; neither the setting nor a sync inside a
 * transaction (ERR_INVAL). */
static void test_lazy_commits(void **state)
{
	struct fx *f = *state;
	struct store_conn *lazy;
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	struct outbox_new o = {.tenant_id = 1,
	                       .priority = PRIO_P3,
	                       .phone_number_id = "1",
	                       .to = "919800000001",
	                       .body = "{}"};
	int64_t id;
	assert_int_equal(store_connect(f->st, &lazy), 0);
	assert_int_equal(store_set_lazy_commits(lazy, 1), 0);
	assert_int_equal(store_begin(lazy), 0);
	assert_int_equal(store_set_lazy_commits(lazy, 0), ERR_INVAL);
	assert_int_equal(store_outbox_add(lazy, &o, &id), 0);
	assert_int_equal(store_sync(lazy), ERR_INVAL); /* not inside a transaction */
	assert_int_equal(store_commit(lazy), 0);
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P3][OUTBOX_PENDING], 1);
	/* synced; again (nothing new: no disk); from a connection with no
	 * commits of its own */
	assert_int_equal(store_sync(lazy), 0);
	assert_int_equal(store_sync(lazy), 0);
	assert_int_equal(store_sync(f->c), 0);
	assert_int_equal(store_set_lazy_commits(lazy, 0), 0);
	store_disconnect(lazy);
}

/* find_row: outbox row id, as the store lists it (fails the test if none). */
static struct outbox_row find_row(struct fx *f, int64_t id)
{
	for (int st = 0; st < OUTBOX_STATE_COUNT; st++) {
		struct outbox_row *rows;
		int n;
		assert_int_equal(
		        store_outbox_list(f->c, (enum outbox_state)st, 100, &f->a, &rows, &n), 0);
		for (int i = 0; i < n; i++)
			if (rows[i].id == id)
				return rows[i];
	}
	fail_msg("no outbox row %lld", (long long)id);
	return (struct outbox_row){0};
}

/* Delivery statuses of a set of rows x[0..5] (made by status_rows), their
 * provider ids starting with pfx; nine of them. */
#define NSTATUS_CASES 9
static void status_cases(const char *pfx, const int64_t *x, char ids[][32],
                         struct outbox_status_update *u)
{
	static const struct {
		int row; /* -1: no hint */
		const char *pmid;
		enum outbox_state st;
	} k[NSTATUS_CASES] = {
	        {0, "S0", OUTBOX_DELIVERED}, /* accepted: forward */
	        {1, "S1", OUTBOX_SENT},
	        {1, "S1", OUTBOX_DELIVERED},    /* the same row again */
	        {2, "S2", OUTBOX_DELIVERED},    /* still SENDING: kept aside */
	        {3, "S3", OUTBOX_READ},         /* a send in doubt: it was accepted */
	        {4, "S4", OUTBOX_FAILED},       /* failed, with its error */
	        {-1, "S5", OUTBOX_READ},        /* no hint: by the provider id */
	        {-1, "NONE", OUTBOX_DELIVERED}, /* nobody's */
	        {1, "S0", OUTBOX_READ},         /* a hint that does not fit: by the id */
	};
	for (int i = 0; i < NSTATUS_CASES; i++) {
		snprintf(ids[i], 32, "%s.%s", pfx, k[i].pmid);
		u[i] = (struct outbox_status_update){
		        .tenant_id = 0, /* set by the caller */
		        .provider_msg_id = ids[i],
		        .row_hint = k[i].row >= 0 ? x[k[i].row] : 0,
		        .state = k[i].st,
		        .error_code = k[i].st == OUTBOX_FAILED ? 131026 : 0,
		        .error = k[i].st == OUTBOX_FAILED ? "undeliverable" : "",
		        .at = T0 + 50 + i,
		};
	}
}

/*
 * Two sets of six rows in the same states: 0, 1, 4 and 5 accepted (their
 * provider ids pfx.S<i>), 2 SENDING, 3 a send in doubt (PENDING, no
 * provider id).
 */
static void status_rows(struct fx *f, int64_t *a, int64_t *b)
{
	struct outbox_row *rows;
	int n;
	char pmid[32];
	for (int i = 0; i < 6; i++) {
		a[i] = queue(f, PRIO_P1, "{}");
		b[i] = queue(f, PRIO_P1, "{}");
	}
	assert_int_equal(store_outbox_claim(f->c, T0, 20, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 12);
	for (int s = 0; s < 2; s++) {
		const int64_t *x = s ? b : a;
		for (int i = 0; i < 6; i++) {
			snprintf(pmid, sizeof(pmid), "%s.S%d", s ? "B" : "A", i);
			if (i == 3)
				assert_int_equal(store_outbox_retry(f->c, x[i], T0 + 1, 0,
				                                    "timeout", T0, NULL),
				                 0);
			else if (i != 2)
				assert_int_equal(
				        store_outbox_accepted(f->c, x[i], pmid, "", T0, NULL), 0);
		}
	}
}

/* Statuses applied together do what they do one by one. */
static void test_outbox_statuses_as_one_by_one(void **state)
{
	struct fx *f = *state;
	int64_t a[6], b[6];
	char ida[NSTATUS_CASES][32], idb[NSTATUS_CASES][32];
	struct outbox_status_update ua[NSTATUS_CASES], ub[NSTATUS_CASES];
	struct outbox_status_result ra[NSTATUS_CASES], rb[NSTATUS_CASES];
	int rca[NSTATUS_CASES];
	status_rows(f, a, b);
	status_cases("A", a, ida, ua);
	status_cases("B", b, idb, ub);
	for (int i = 0; i < NSTATUS_CASES; i++)
		ua[i].tenant_id = ub[i].tenant_id = f->tenant;

	assert_int_equal(store_outbox_statuses(f->c, ua, NSTATUS_CASES, ra, rca), 0);
	for (int i = 0; i < NSTATUS_CASES; i++) {
		int rcb = store_outbox_status(f->c, &ub[i], &rb[i]);
		assert_int_equal(rca[i], rcb);
		if (rcb != 0)
			continue;
		int ka = -1, kb = -1;
		for (int k = 0; k < 6; k++) {
			ka = a[k] == ra[i].id ? k : ka;
			kb = b[k] == rb[i].id ? k : kb;
		}
		assert_true(ka >= 0);
		assert_int_equal(ka, kb);
		assert_int_equal(ra[i].from, rb[i].from);
		assert_int_equal(ra[i].to, rb[i].to);
		assert_int_equal(ra[i].prio, rb[i].prio);
		assert_string_equal(ra[i].provider, rb[i].provider);
	}
	assert_int_equal(rca[7], ERR_NOTFOUND);
	assert_int_equal(ra[3].to, ra[3].from); /* kept aside */
	assert_int_equal(ra[4].to, OUTBOX_READ);
	for (int k = 0; k < 6; k++) {
		struct outbox_row x = find_row(f, a[k]), y = find_row(f, b[k]);
		assert_int_equal(x.state, y.state);
		assert_int_equal(x.last_error_code, y.last_error_code);
		assert_string_equal(x.last_error, y.last_error);
		assert_int_equal(x.provider_msg_id[0] == 'A', y.provider_msg_id[0] == 'B');
		assert_string_equal(x.provider_msg_id + 1, y.provider_msg_id + 1);
	}
	counts_match_rows(f);
	/* a bad status in the batch: nothing done, the reason named */
	ua[0].state = OUTBOX_PENDING;
	assert_int_equal(store_outbox_statuses(f->c, ua, 2, ra, rca), ERR_INVAL);
	assert_non_null(strstr(store_errmsg(f->c), "is not a delivery status"));
}

static void test_outbox_status_forward_only(void **state)
{
	struct fx *f = *state;
	int64_t a = queue(f, PRIO_P1, "{}"), b = queue(f, PRIO_P1, "{}");
	int64_t d = queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int n;
	enum outbox_state o, nw;
	enum outbox_prio prio = PRIO_P3;
	assert_int_equal(store_outbox_accepted(f->c, a, "wamid.A", "", T0, NULL),
	                 ERR_CONFLICT); /* pending */
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_outbox_accepted(f->c, a, "wamid.A", "", T0, NULL), 0);
	assert_int_equal(store_outbox_accepted(f->c, b, "wamid.B", "", T0, NULL), 0);
	assert_int_equal(store_outbox_accepted(f->c, a, "wamid.A", "", T0, NULL), ERR_CONFLICT);

	assert_int_equal(status_of(f, 0, "wamid.A", OUTBOX_SENT, 0, "", T0, &o, &nw, NULL), 0);
	assert_int_equal(o, OUTBOX_ACCEPTED);
	assert_int_equal(nw, OUTBOX_SENT);
	assert_int_equal(status_of(f, 0, "wamid.A", OUTBOX_DELIVERED, 0, "", T0, &o, &nw, NULL), 0);
	assert_int_equal(nw, OUTBOX_DELIVERED);
	/* a late "sent" is stale */
	assert_int_equal(status_of(f, 0, "wamid.A", OUTBOX_SENT, 0, "", T0, &o, &nw, NULL), 0);
	assert_int_equal(o, OUTBOX_DELIVERED);
	assert_int_equal(nw, OUTBOX_DELIVERED);
	assert_int_equal(status_of(f, 0, "wamid.A", OUTBOX_READ, 0, "", T0, &o, &nw, NULL), 0);
	assert_int_equal(nw, OUTBOX_READ);
	assert_int_equal(status_of(f, 0, "wamid.A", OUTBOX_FAILED, 131047, "x", T0, &o, &nw, NULL),
	                 0);
	assert_int_equal(nw, OUTBOX_READ); /* a read message does not fail afterwards */

	/* failed is terminal */
	assert_int_equal(status_of(f, 0, "wamid.B", OUTBOX_FAILED, 131026, "undeliverable", T0 + 5,
	                           &o, &nw, &prio),
	                 0);
	assert_int_equal(prio, PRIO_P1);
	assert_int_equal(o, OUTBOX_ACCEPTED);
	assert_int_equal(nw, OUTBOX_FAILED);
	assert_int_equal(status_of(f, 0, "wamid.B", OUTBOX_DELIVERED, 0, "", T0, &o, &nw, NULL), 0);
	assert_int_equal(o, OUTBOX_FAILED);
	assert_int_equal(nw, OUTBOX_FAILED);
	assert_int_equal(store_outbox_list(f->c, OUTBOX_FAILED, 10, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, b);
	assert_int_equal(rows[0].last_error_code, 131026);
	assert_string_equal(rows[0].last_error, "undeliverable");
	assert_string_equal(rows[0].provider_msg_id, "wamid.B");
	assert_int_equal(rows[0].updated_at, T0 + 5);

	assert_int_equal(status_of(f, 0, "wamid.NOPE", OUTBOX_SENT, 0, "", T0, &o, &nw, NULL),
	                 ERR_NOTFOUND);
	assert_int_equal(status_of(f, 0, "wamid.A", OUTBOX_PENDING, 0, "", T0, &o, &nw, NULL),
	                 ERR_INVAL);

	/* attempts used up: DEAD, and nothing moves it */
	assert_int_equal(store_outbox_fail(f->c, d, OUTBOX_DEAD, 500, "gave up", T0, NULL), 0);
	assert_int_equal(store_outbox_fail(f->c, d, OUTBOX_FAILED, 500, "x", T0, NULL),
	                 ERR_CONFLICT);
	assert_int_equal(store_outbox_fail(f->c, d, OUTBOX_SENT, 500, "x", T0, NULL), ERR_INVAL);
	assert_int_equal(store_outbox_list(f->c, OUTBOX_DEAD, 10, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, d);
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P1][OUTBOX_READ], 1);
	assert_int_equal(counts[PRIO_P1][OUTBOX_FAILED], 1);
	assert_int_equal(counts[PRIO_P2][OUTBOX_DEAD], 1);
	counts_match_rows(f);
}

/* ---- transactions and locking --------------------------------------------------------- */

/* SQLite: another process's exclusive lock makes store_begin and writes
 * give up with ERR_AGAIN after the busy timeout, reads go on. */
static void test_locked_returns_again(void **state)
{
	struct fx *f = *state;
	sqlite3 *other;
	/* SQLite's database-wide lock and its messages; PostgreSQL's lock
	 * timeout is test_store_pg.c's test_lock_timeout_again */
	if (test_pg_base())
		skip();
	int64_t n, id;
	enum inbox_put_result r;
	struct inbox_entry e = msg(f->tenant, "wamid.L", "", "x");
	struct tenant t = {.name = "B", .phone_number_id = "300000000001"};

	assert_int_equal(sqlite3_open(f->db.path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);

	assert_int_equal(store_begin(f->c), ERR_AGAIN);
	assert_string_equal(store_errmsg(f->c), "could not begin transaction: database is locked");
	/* writes outside a transaction wait, then give up the same way */
	assert_int_equal(store_tenant_add(f->c, &t, &id), ERR_AGAIN);
	assert_int_equal(store_inbox_put(f->c, &e, 1, &r), ERR_AGAIN);
	assert_string_equal(store_errmsg(f->c), "could not insert inbox entry: database is locked");
	/* WAL: readers are not blocked by the writer */
	assert_int_equal(store_tenant_count(f->c, &n), 0);
	assert_int_equal(n, 1);

	assert_int_equal(sqlite3_exec(other, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	/* the writer mutex was given back on each failure */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_inbox_put(f->c, &e, 1, &r), 0);
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(store_tenant_add(f->c, &t, &id), 0);
}

static void test_begin_holds_write_lock(void **state)
{
	struct fx *f = *state;
	sqlite3 *other;
	int64_t depth;
	enum inbox_put_result r;
	struct inbox_entry e = msg(f->tenant, "wamid.M", "", "x");
	/* SQLite's BEGIN IMMEDIATE; PostgreSQL's writers lock rows, not the
	 * database, and store_begin sends nothing until the first statement */
	if (test_pg_base())
		skip();
	assert_int_equal(sqlite3_open(f->db.path, &other), SQLITE_OK);
	sqlite3_busy_timeout(other, 100);
	/* BEGIN IMMEDIATE: the write lock is ours from store_begin on, so
	 * another process's write waits and gives up with SQLITE_BUSY */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(sqlite3_exec(other,
	                              "INSERT INTO audit_log (tenant_id, actor, action,"
	                              " created_at) VALUES (1, 'a', 'b', 0)",
	                              NULL, NULL, NULL),
	                 SQLITE_BUSY);
	assert_int_equal(store_inbox_put(f->c, &e, 1, &r), 0);
	assert_int_equal(store_commit(f->c), 0);
	sqlite3_close(other);
	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 1);
}

static void test_savepoint_batch(void **state)
{
	struct fx *f = *state;
	enum inbox_put_result r;
	char wamid[32];
	int64_t id, depth;
	struct outbox_row *rows;
	int n;

	assert_int_equal(store_savepoint(f->c), ERR_INVAL); /* no transaction */
	assert_int_equal(store_commit(f->c), ERR_INVAL);
	assert_int_equal(store_rollback(f->c), ERR_INVAL);
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_begin(f->c), ERR_INVAL);
	assert_int_equal(store_release(f->c), ERR_INVAL);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(store_savepoint(f->c), 0);
		if (i == 0)
			assert_int_equal(store_savepoint(f->c), ERR_INVAL); /* no nesting */
		snprintf(wamid, sizeof(wamid), "wamid.S%d", i);
		struct inbox_entry e = msg(f->tenant, wamid, "", "x");
		assert_int_equal(store_inbox_put(f->c, &e, 1, &r), 0);
		queue(f, PRIO_P2, wamid);
		if (i == 1)
			assert_int_equal(store_rollback_to(f->c), 0);
		else
			assert_int_equal(store_release(f->c), 0);
	}
	assert_int_equal(store_rollback_to(f->c), ERR_INVAL);
	assert_int_equal(store_commit(f->c), 0);

	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 2);
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].body, "wamid.S0");
	assert_string_equal(rows[1].body, "wamid.S2");
	/* the rolled-back message can come again */
	struct inbox_entry e = msg(f->tenant, "wamid.S1", "", "x");
	assert_int_equal(store_inbox_put(f->c, &e, 1, &r), 0);
	assert_int_equal(r, INBOX_PUT_NEW);
	(void)id;
}

struct writer_arg {
	struct store *st;
	int64_t tenant;
	int base;
	int failures;
};

static void *writer(void *p)
{
	struct writer_arg *w = p;
	struct store_conn *c;
	char wamid[32];
	enum inbox_put_result r;
	if (store_connect(w->st, &c) != 0) {
		w->failures++;
		return NULL;
	}
	for (int i = 0; i < 25; i++) {
		snprintf(wamid, sizeof(wamid), "wamid.T%d.%d", w->base, i);
		struct inbox_entry e = msg(w->tenant, wamid, "", "x");
		if (i % 2) {
			/* an explicit transaction... */
			if (store_begin(c) != 0 || store_inbox_put(c, &e, 1, &r) != 0 ||
			    store_commit(c) != 0)
				w->failures++;
		} else if (store_inbox_put(c, &e, 1, &r) != 0) {
			/* ...and an implicit one */
			w->failures++;
		}
	}
	store_disconnect(c);
	return NULL;
}

static void test_threads_queue_on_writer_mutex(void **state)
{
	struct fx *f = *state;
	/* a 100 ms busy timeout: without the mutex, threads would see ERR_AGAIN */
	pthread_t th[3];
	struct writer_arg w[3];
	int64_t depth;
	for (int i = 0; i < 3; i++) {
		w[i] = (struct writer_arg){.st = f->st, .tenant = f->tenant, .base = i};
		assert_int_equal(pthread_create(&th[i], NULL, writer, &w[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(w[i].failures, 0);
	}
	assert_int_equal(store_inbox_depth(f->c, &depth), 0);
	assert_int_equal(depth, 75);
}

/* ---- the SQLite statement helpers ----------------------------------------------- */

/*
 * The helpers of sqlite_internal.h on a connection of their own: statement
 * ids are only cache slots, so the probes borrow ids of real statements and
 * the connection is closed after (f->c keeps its own cache).
 */
/* ---- checkpoints ------------------------------------------------------------------ */

/* fill_log commits about 6 MB of outbox rows through c (some 1,500 pages
 * of the log, past the 1,000 that call for a checkpoint). */
static void fill_log(struct store_conn *c, int64_t tenant)
{
	static char body[3001];
	memset(body, 'x', sizeof(body) - 1);
	for (int t = 0; t < 20; t++) {
		assert_int_equal(store_begin(c), 0);
		for (int i = 0; i < 100; i++) {
			struct outbox_new o = {.tenant_id = tenant,
			                       .priority = PRIO_P2,
			                       .phone_number_id = "100000000001",
			                       .to = "919811111111",
			                       .reply_to = "wamid.IN",
			                       .body = body,
			                       .inbound_received_at = T0};
			int64_t id;
			assert_int_equal(store_outbox_add(c, &o, &id), 0);
		}
		assert_int_equal(store_commit(c), 0);
	}
}

/* After store_checkpoint_in_background, the thread copies the log that a
 * connection's commits filled, and every row stays readable. */
static void test_checkpoint_in_background(void **state)
{
	struct fx *f = *state;
	/* SQLite's WAL copied by a thread of munim's; the PostgreSQL server
	 * checkpoints by itself (store_checkpoint_in_background does nothing) */
	if (test_pg_base())
		skip();
	assert_int_equal(store_checkpoints(f->st), 0);
	assert_int_equal(store_checkpoint_in_background(f->st), 0);
	assert_int_equal(store_checkpoint_in_background(f->st), 0); /* one thread only */
	struct store_conn *c2;
	assert_int_equal(store_connect(f->st, &c2), 0);
	fill_log(c2, f->tenant);
	for (int i = 0; i < 500 && store_checkpoints(f->st) == 0; i++)
		usleep(10 * 1000);
	assert_true(store_checkpoints(f->st) >= 1);
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P2][OUTBOX_PENDING], 2000);
	assert_true(store_memory_bytes(f->st) > 0); /* two connections' caches at least */
	store_disconnect(c2);
}

/* Without it, commits checkpoint by themselves, as SQLite does: no thread,
 * none counted. */
static void test_checkpoint_inline_by_default(void **state)
{
	struct fx *f = *state;
	/* SQLite's checkpoints, as above */
	if (test_pg_base())
		skip();
	fill_log(f->c, f->tenant);
	assert_int_equal(store_checkpoints(f->st), 0);
}

static void test_sq_helpers_bind_and_rows(void **state)
{
	struct fx *f = *state;
	struct store_conn *c;
	sqlite3_stmt *st;
	int64_t v = 0, *rows = NULL;
	void *got = NULL;
	int n = -1;
	/* sqlite_internal.h's helpers; test_store_pg.c tests pg_internal.h's */
	if (test_pg_base())
		skip();
	assert_int_equal(store_connect(f->st, &c), 0);

	/* 'i' carries the whole int64_t range; 't' binds NULL as "" */
	assert_int_equal(store__sq_prep(c, SQ_TENANT_GET, "SELECT ?1 + 0 WHERE ?2 = ''", "probe",
	                                &st, "it", (int64_t)INT64_MIN, (const char *)NULL),
	                 0);
	assert_int_equal(store__sq_one(c, st, "probe", store__sq_read_int64, NULL, &v), 1);
	assert_true(v == INT64_MIN);

	/* no row: 0 and the row untouched; for RETURNING it is an error */
	v = 7;
	assert_int_equal(store__sq_prep(c, SQ_TENANT_GET, "SELECT ?1 + 0 WHERE ?2 = ''", "probe",
	                                &st, "it", (int64_t)1, "x"),
	                 0);
	assert_int_equal(store__sq_one(c, st, "probe", store__sq_read_int64, NULL, &v), 0);
	assert_int_equal(v, 7);
	assert_int_equal(store__sq_prep(c, SQ_PRODUCT_UPSERT,
	                                "UPDATE tenants SET name = name WHERE id = ?1 RETURNING id",
	                                "probe", &st, "i", (int64_t)-1),
	                 0);
	assert_int_equal(store__sq_returning(c, st, "probe", store__sq_read_int64, NULL, &v),
	                 ERR_DB);
	assert_string_equal(store_errmsg(c), "could not probe: no row returned");

	/* an unknown type letter is refused, naming the parameter */
	assert_int_equal(store__sq_run(c, SQ_AUDIT, "SELECT ?1, ?2", "probe", "ix", (int64_t)1),
	                 ERR_INVAL);
	assert_string_equal(store_errmsg(c), "could not probe: parameter 2 has type 'x'");

	/* rows: the array grows past its first 16 and 32 */
	assert_int_equal(store__sq_prep(c, SQ_TENANT_LIST,
	                                "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL"
	                                " SELECT x + 1 FROM s WHERE x < ?1) SELECT x FROM s",
	                                "probe", &st, "i", (int64_t)40),
	                 0);
	assert_int_equal(store__sq_rows(c, st, "probe", &f->a, sizeof(int64_t),
	                                store__sq_read_int64, &got, &n),
	                 0);
	assert_int_equal(n, 40);
	rows = got;
	for (int i = 0; i < n; i++)
		assert_int_equal(rows[i], i + 1);

	/* a statement that does not prepare */
	assert_int_equal(
	        store__sq_run(c, SQ_OUTBOX_LIST, "SELECT * FROM no_such_table", "probe", ""),
	        ERR_DB);
	assert_non_null(strstr(store_errmsg(c), "could not prepare query"));
	store_disconnect(c);
}

/* ---- marketing: templates, tokens, opt-outs, audiences, payment ------------------ */

static void test_tenant_template_and_token(void **state)
{
	struct fx *f = *state;
	struct tenant_template tpl;
	int64_t id = -1;
	static const char h1[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
	static const char h2[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

	assert_int_equal(store_tenant_template(f->c, f->tenant, &f->a, &tpl), 0);
	assert_string_equal(tpl.name, "");
	assert_int_equal(store_tenant_set_template(f->c, f->tenant, "diwali_offer", "hi"), 0);
	assert_int_equal(store_tenant_template(f->c, f->tenant, &f->a, &tpl), 0);
	assert_string_equal(tpl.name, "diwali_offer");
	assert_string_equal(tpl.lang, "hi");
	assert_int_equal(store_tenant_set_template(f->c, f->tenant, "x", ""), ERR_INVAL);
	assert_int_equal(store_tenant_set_template(f->c, f->tenant + 7, "x", "en"), ERR_NOTFOUND);
	assert_int_equal(store_tenant_template(f->c, f->tenant + 7, &f->a, &tpl), ERR_NOTFOUND);
	assert_int_equal(store_tenant_set_template(f->c, f->tenant, "", "en"), 0); /* cleared */
	assert_int_equal(store_tenant_template(f->c, f->tenant, &f->a, &tpl), 0);
	assert_string_equal(tpl.name, "");
	assert_string_equal(tpl.lang, "");

	/* tokens: only well-formed hashes; the newest replaces the last */
	assert_int_equal(store_tenant_by_token_hash(f->c, h1, &id), ERR_NOTFOUND);
	assert_int_equal(store_tenant_set_token_hash(f->c, f->tenant, h1), 0);
	assert_int_equal(store_tenant_by_token_hash(f->c, h1, &id), 0);
	assert_int_equal(id, f->tenant);
	assert_int_equal(store_tenant_set_token_hash(f->c, f->tenant, h2), 0);
	assert_int_equal(store_tenant_by_token_hash(f->c, h1, &id), ERR_NOTFOUND);
	assert_int_equal(store_tenant_by_token_hash(f->c, h2, &id), 0);
	assert_int_equal(store_tenant_set_token_hash(f->c, f->tenant, "abc"), ERR_INVAL);
	assert_int_equal(store_tenant_set_token_hash(f->c, f->tenant, ""), ERR_INVAL);
	assert_int_equal(store_tenant_by_token_hash(
	                         f->c,
	                         "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
	                         &id),
	                 ERR_INVAL);
	assert_int_equal(store_tenant_set_token_hash(f->c, f->tenant + 7, h1), ERR_NOTFOUND);
	/* one hash, one tenant */
	int64_t other = add_tenant(f->c, "100000000002");
	assert_int_equal(store_tenant_set_token_hash(f->c, other, h2), ERR_CONFLICT);
	/* tenants without a token share the empty value freely */
	assert_int_equal(add_tenant(f->c, "100000000003") > 0, 1);
}

static void test_customer_opt_out_and_active(void **state)
{
	struct fx *f = *state;
	struct customer_contact *cc, last;
	struct customer cu;
	int changed = -1, n = -1;
	char wa[32];

	assert_int_equal(store_customer_set_opted_out(f->c, f->tenant, "919811111111", 1, &changed),
	                 ERR_NOTFOUND);
	int64_t id = add_customer(f, "919811111111");
	assert_int_equal(store_customer_set_opted_out(f->c, f->tenant, "919811111111", 1, &changed),
	                 0);
	assert_int_equal(changed, 1);
	assert_int_equal(store_customer_set_opted_out(f->c, f->tenant, "919811111111", 1, &changed),
	                 0);
	assert_int_equal(changed, 0);
	assert_int_equal(store_customer_get(f->c, f->tenant, id, &f->a, &cu), 0);
	assert_string_equal(cu.wa_id, "919811111111");
	assert_int_equal(store_customer_get(f->c, f->tenant + 1, id, &f->a, &cu), ERR_NOTFOUND);
	assert_int_equal(store_customer_set_opted_out(f->c, f->tenant, "", 1, NULL), ERR_INVAL);

	/* the audience: since is inclusive, opted out included (flagged), in
	 * (last_inbound_at, id) order, page after page */
	for (int i = 0; i < 5; i++) {
		snprintf(wa, sizeof(wa), "91982222222%d", i);
		assert_int_equal(store_customer_touch(f->c, f->tenant, wa, "", T0 - 1000 * (i % 3),
		                                      &f->a, &cu),
		                 0);
	}
	assert_int_equal(
	        store_customer_touch(f->c, f->tenant, "919833333333", "", T0 - 5001, &f->a, &cu),
	        0);
	/* 6 in the period (5 new and the one opted out, at T0), by pages of 4 */
	int total = 0, opted = 0, pages = 0, have = 0;
	do {
		assert_int_equal(store_customers_active(f->c, f->tenant, T0 - 5000,
		                                        have ? &last : NULL, 4, &f->a, &cc, &n),
		                 0);
		for (int i = 0; i < n; i++) {
			if (have)
				assert_true(cc[i].last_inbound_at > last.last_inbound_at ||
				            (cc[i].last_inbound_at == last.last_inbound_at &&
				             cc[i].id > last.id));
			assert_true(cc[i].last_inbound_at >= T0 - 5000);
			opted += cc[i].opted_out;
			if (cc[i].opted_out)
				assert_string_equal(cc[i].wa_id, "919811111111");
			last = cc[i];
			have = 1;
		}
		total += n;
		pages++;
	} while (n == 4);
	assert_int_equal(total, 6);
	assert_int_equal(opted, 1);
	assert_int_equal(pages, 2);
	/* another tenant's customers are not in it */
	assert_int_equal(store_customers_active(f->c, f->tenant + 1, 0, NULL, 100, &f->a, &cc, &n),
	                 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_customers_active(f->c, f->tenant, 0, NULL, 0, &f->a, &cc, &n),
	                 ERR_INVAL);
	assert_int_equal(store_customers_active(f->c, f->tenant, 0, NULL, STORE_MAX_BATCH + 1,
	                                        &f->a, &cc, &n),
	                 ERR_INVAL);
}

/* The detail of EXPLAIN QUERY PLAN sql, its rows joined by " | ". */
static void query_plan(struct fx *f, const char *sql, char *out, size_t outsz)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	char q[1024];
	snprintf(q, sizeof(q), "EXPLAIN QUERY PLAN %s", sql);
	assert_int_equal(sqlite3_open(f->db.path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, q, -1, &st, NULL), SQLITE_OK);
	out[0] = '\0';
	while (sqlite3_step(st) == SQLITE_ROW)
		snprintf(out + strlen(out), outsz - strlen(out), "%s | ",
		         (const char *)sqlite3_column_text(st, 3));
	sqlite3_finalize(st);
	sqlite3_close(db);
}

/* The broadcast's page and the opt-out's cancel read their indexes, not
 * the tables (and the page needs no sort). */
static void test_marketing_queries_use_their_indexes(void **state)
{
	struct fx *f = *state;
	char plan[1024];
	/* SQLite's EXPLAIN QUERY PLAN of sqlite_erp.c's statements */
	if (test_pg_base())
		skip();
	/* the statements of sqlite_erp.c, as written there */
	query_plan(f,
	           "SELECT id, wa_id, last_inbound_at, opted_out FROM customers"
	           " WHERE tenant_id = ?1 AND last_inbound_at >= ?2"
	           " AND (last_inbound_at, id) > (?3, ?4)"
	           " ORDER BY last_inbound_at, id LIMIT ?5",
	           plan, sizeof(plan));
	if (!strstr(plan, "customers_by_last_inbound") || strstr(plan, "TEMP B-TREE"))
		fail_msg("broadcast page plan: %s", plan);
	query_plan(f,
	           "UPDATE outbox SET state = 6, last_error_code = ?3, last_error = ?4,"
	           " updated_at = ?5"
	           " WHERE tenant_id = ?1 AND to_id = ?2 AND state = 0 AND priority = 3",
	           plan, sizeof(plan));
	if (!strstr(plan, "outbox_pending_to"))
		fail_msg("opt-out cancel plan: %s", plan);
	query_plan(f,
	           "SELECT id FROM tenants WHERE api_token_hash = ?1"
	           " AND api_token_hash <> ''",
	           plan, sizeof(plan));
	if (!strstr(plan, "tenants_by_api_token"))
		fail_msg("token lookup plan: %s", plan);
}

static int64_t queue_to(struct fx *f, int64_t tenant, enum outbox_prio prio, const char *to,
                        int claimed)
{
	struct outbox_new o = {.tenant_id = tenant,
	                       .priority = prio,
	                       .phone_number_id = "100000000001",
	                       .to = to,
	                       .reply_to = "",
	                       .body = "{}",
	                       .claimed = claimed};
	int64_t id = 0;
	assert_int_equal(store_outbox_add(f->c, &o, &id), 0);
	return id;
}

static void test_outbox_cancel_marketing(void **state)
{
	struct fx *f = *state;
	struct outbox_row *rows;
	int64_t moved = -1;
	int n;
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	const char *me = "919811111111", *you = "919822222222";
	queue_to(f, f->tenant, PRIO_P3, me, 0);
	queue_to(f, f->tenant, PRIO_P3, me, 0);
	queue_to(f, f->tenant, PRIO_P3, me, 1);     /* in flight already: left alone */
	queue_to(f, f->tenant, PRIO_P2, me, 0);     /* a reply: not marketing */
	queue_to(f, f->tenant, PRIO_P3, you, 0);    /* someone else */
	queue_to(f, f->tenant + 1, PRIO_P3, me, 0); /* the same number at another shop */

	/* a rolled-back cancel changes neither rows nor counts */
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_outbox_cancel_marketing(f->c, f->tenant, me, 131050,
	                                               "recipient opted out", T0 + 5, &moved),
	                 0);
	assert_int_equal(moved, 2);
	assert_int_equal(store_rollback(f->c), 0);
	counts_match_rows(f);
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P3][OUTBOX_PENDING], 4);
	assert_int_equal(counts[PRIO_P3][OUTBOX_FAILED], 0);

	assert_int_equal(store_outbox_cancel_marketing(f->c, f->tenant, me, 131050,
	                                               "recipient opted out", T0 + 5, &moved),
	                 0);
	assert_int_equal(moved, 2);
	counts_match_rows(f);
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P3][OUTBOX_PENDING], 2);
	assert_int_equal(counts[PRIO_P3][OUTBOX_FAILED], 2);
	assert_int_equal(counts[PRIO_P3][OUTBOX_SENDING], 1);
	assert_int_equal(counts[PRIO_P2][OUTBOX_PENDING], 1);
	assert_int_equal(store_outbox_list(f->c, OUTBOX_FAILED, 100, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		assert_string_equal(rows[i].to, me);
		assert_int_equal(rows[i].tenant_id, f->tenant);
		assert_int_equal(rows[i].last_error_code, 131050);
		assert_string_equal(rows[i].last_error, "recipient opted out");
		assert_int_equal(rows[i].updated_at, T0 + 5);
	}
	/* nothing left to cancel */
	assert_int_equal(store_outbox_cancel_marketing(f->c, f->tenant, me, 131050, "", T0, &moved),
	                 0);
	assert_int_equal(moved, 0);
	assert_int_equal(store_outbox_cancel_marketing(f->c, f->tenant, "", 1, "", T0, &moved),
	                 ERR_INVAL);
}

/* A P3 row out (SENDING) when its customer wrote "stop" is not sent again:
 * its retry or hold lands FAILED 131050; a P2 reply and another customer's
 * offer go back to PENDING as ever. */
static void test_outbox_opted_out_while_sending(void **state)
{
	struct fx *f = *state;
	enum outbox_state landed;
	int changed = 0;
	const char *me = "919811111111", *you = "919822222222";
	int64_t offer = queue_to(f, f->tenant, PRIO_P3, me, 1);
	int64_t held = queue_to(f, f->tenant, PRIO_P3, me, 1);
	int64_t reply = queue_to(f, f->tenant, PRIO_P2, me, 1);
	int64_t other = queue_to(f, f->tenant, PRIO_P3, you, 1);
	add_customer(f, me);
	add_customer(f, you);
	assert_int_equal(store_customer_set_opted_out(f->c, f->tenant, me, 1, &changed), 0);
	assert_int_equal(changed, 1);

	assert_int_equal(store_outbox_retry(f->c, offer, T0 + 100, 131000, "boom", T0, &landed), 0);
	assert_int_equal(landed, OUTBOX_FAILED);
	assert_int_equal(store_outbox_defer(f->c, held, T0 + 100, "held", T0, &landed), 0);
	assert_int_equal(landed, OUTBOX_FAILED);
	assert_int_equal(store_outbox_retry(f->c, reply, T0 + 100, 131000, "boom", T0, &landed), 0);
	assert_int_equal(landed, OUTBOX_PENDING);
	assert_int_equal(store_outbox_retry(f->c, other, T0 + 100, 131000, "boom", T0, &landed), 0);
	assert_int_equal(landed, OUTBOX_PENDING);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_list(f->c, OUTBOX_FAILED, 100, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	for (int i = 0; i < n; i++) {
		assert_true(rows[i].id == offer || rows[i].id == held);
		assert_int_equal(rows[i].last_error_code, 131050);
		assert_string_equal(rows[i].last_error, "recipient opted out");
	}
	counts_match_rows(f);
}

static void test_order_set_paid(void **state)
{
	struct fx *f = *state;
	int64_t rice = add_product(f, "RICE", "Rice", 6000);
	int64_t cu = add_customer(f, "919811111111");
	int64_t o1 = add_order(f, cu, rice), at = -1;
	struct order o;
	assert_int_equal(store_order_set_paid(f->c, f->tenant, o1, T0, &at),
	                 ERR_CONFLICT); /* draft */
	assert_int_equal(at, 0);
	assert_int_equal(store_order_set_status(f->c, f->tenant, o1, ORDER_DRAFT, ORDER_CONFIRMED),
	                 0);
	assert_int_equal(store_order_set_paid(f->c, f->tenant + 1, o1, T0, &at), ERR_NOTFOUND);
	assert_int_equal(store_order_set_paid(f->c, f->tenant, o1, 0, &at), ERR_INVAL);
	assert_int_equal(store_order_set_paid(f->c, f->tenant, o1, T0 + 3, &at), 0);
	assert_int_equal(at, T0 + 3);
	assert_int_equal(store_order_set_paid(f->c, f->tenant, o1, T0 + 9, &at), ERR_CONFLICT);
	assert_int_equal(at, T0 + 3);
	assert_int_equal(store_order_get(f->c, f->tenant, o1, &f->a, &o), 0);
	assert_int_equal(o.paid_at, T0 + 3);
	assert_int_equal(o.status, ORDER_CONFIRMED);
	int64_t o2 = add_order(f, cu, rice);
	assert_int_equal(store_order_set_status(f->c, f->tenant, o2, ORDER_DRAFT, ORDER_CANCELLED),
	                 0);
	assert_int_equal(store_order_set_paid(f->c, f->tenant, o2, T0, NULL), ERR_CONFLICT);
	assert_int_equal(store_order_set_paid(f->c, f->tenant, 9999, T0, NULL), ERR_NOTFOUND);
}

/* ---- outbox: priorities, defer, resend, expire, providers ------------------------------ */

/* outbox_get: row id as the store has it (any state), read into *r from f->a. */
static void outbox_get(struct fx *f, int64_t id, struct outbox_row *r)
{
	for (int st = 0; st < OUTBOX_STATE_COUNT; st++) {
		struct outbox_row *rows;
		int n;
		assert_int_equal(
		        store_outbox_list(f->c, (enum outbox_state)st, 1000, &f->a, &rows, &n), 0);
		for (int i = 0; i < n; i++)
			if (rows[i].id == id) {
				*r = rows[i];
				return;
			}
	}
	fail_msg("no outbox row %lld", (long long)id);
}

static enum outbox_state state_of(struct fx *f, int64_t id)
{
	struct outbox_row r;
	outbox_get(f, id, &r);
	return r.state;
}

static void test_outbox_claim_max_prio(void **state)
{
	struct fx *f = *state;
	int64_t p3 = queue(f, PRIO_P3, "{}");
	int64_t p2 = queue(f, PRIO_P2, "{}");
	int64_t p1 = queue(f, PRIO_P1, "{}");
	int64_t p0 = queue(f, PRIO_P0, "{}");
	int64_t p2b = queue(f, PRIO_P2, "{}");
	struct outbox_row *rows;
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	int n;
	/* up to P1: the P0 and the P1 row, nothing below */
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P1, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(rows[0].id, p0);
	assert_int_equal(rows[1].id, p1);
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P1, &f->a, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P0][OUTBOX_SENDING], 1);
	assert_int_equal(counts[PRIO_P1][OUTBOX_SENDING], 1);
	assert_int_equal(counts[PRIO_P2][OUTBOX_PENDING], 2);
	assert_int_equal(counts[PRIO_P3][OUTBOX_PENDING], 1);
	assert_int_equal(state_of(f, p2), OUTBOX_PENDING);
	assert_int_equal(state_of(f, p3), OUTBOX_PENDING);
	counts_match_rows(f);
	/* P0 only: a new P1 row waits, the new P0 row goes */
	int64_t p1b = queue(f, PRIO_P1, "{}");
	int64_t p0b = queue(f, PRIO_P0, "{}");
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P0, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, p0b);
	assert_int_equal(state_of(f, p1b), OUTBOX_PENDING);
	/* up to P2: the P1 and both P2 rows, not the P3 */
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P2, &f->a, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].id, p1b);
	assert_int_equal(rows[1].id, p2);
	assert_int_equal(rows[2].id, p2b);
	assert_int_equal(state_of(f, p3), OUTBOX_PENDING);
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, p3);
	counts_match_rows(f);
	assert_int_equal(
	        store_outbox_claim(f->c, T0, 10, (enum outbox_prio)PRIO_COUNT, &f->a, &rows, &n),
	        ERR_INVAL);
	assert_int_equal(store_outbox_claim(f->c, T0, 10, (enum outbox_prio) - 1, &f->a, &rows, &n),
	                 ERR_INVAL);
}

static void test_outbox_next_due_max_prio(void **state)
{
	struct fx *f = *state;
	int64_t at = -1;
	/* rows fall due when created: P3 first, then P2, then P1 */
	queue(f, PRIO_P3, "{}");
	clock_set_fake(T0 + 10);
	queue(f, PRIO_P2, "{}");
	clock_set_fake(T0 + 20);
	int64_t p1 = queue(f, PRIO_P1, "{}");
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P3, &at), 0);
	assert_int_equal(at, T0);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P2, &at), 0);
	assert_int_equal(at, T0 + 10);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P1, &at), 0);
	assert_int_equal(at, T0 + 20);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P0, &at), 0);
	assert_int_equal(at, 0); /* no P0 row pending */
	/* a P0 row due later than the others still counts for P0 */
	clock_set_fake(T0 + 30);
	queue(f, PRIO_P0, "{}");
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P0, &at), 0);
	assert_int_equal(at, T0 + 30);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P1, &at), 0);
	assert_int_equal(at, T0 + 20);
	/* the P1 row sent and retried later: only the P0 row below P2 */
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_claim(f->c, T0 + 30, 10, PRIO_P1, &f->a, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_outbox_retry(f->c, p1, T0 + 5000, 0, "x", T0 + 30, NULL), 0);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P1, &at), 0);
	assert_int_equal(at, T0 + 5000);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P0, &at), 0);
	assert_int_equal(at, 0);
	assert_int_equal(store_outbox_next_due(f->c, PRIO_P3, &at), 0);
	assert_int_equal(at, T0);
	assert_int_equal(store_outbox_next_due(f->c, (enum outbox_prio)PRIO_COUNT, &at), ERR_INVAL);
	counts_match_rows(f);
}

static void test_outbox_defer(void **state)
{
	struct fx *f = *state;
	int64_t id = queue(f, PRIO_P1, "{}");
	struct outbox_row *rows, r;
	enum outbox_state landed = OUTBOX_DEAD;
	int n;
	assert_int_equal(store_outbox_claim(f->c, T0, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(rows[0].attempts, 1);
	assert_int_equal(
	        store_outbox_defer(f->c, id, T0 + 5000, "no provider can take it", T0 + 1, &landed),
	        0);
	assert_int_equal(landed, OUTBOX_PENDING);
	outbox_get(f, id, &r);
	assert_int_equal(r.state, OUTBOX_PENDING);
	assert_int_equal(r.attempts, 0); /* the claim's attempt given back */
	assert_int_equal(r.next_attempt_at, T0 + 5000);
	assert_string_equal(r.last_error, "no provider can take it");
	assert_int_equal(r.updated_at, T0 + 1);
	counts_match_rows(f);
	/* not due before then; then claimed as its first attempt again */
	assert_int_equal(store_outbox_claim(f->c, T0 + 4999, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(store_outbox_claim(f->c, T0 + 5000, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].attempts, 1);
	/* a retried row keeps the attempt that went, gives back the one that did not */
	assert_int_equal(store_outbox_retry(f->c, id, T0 + 6000, 500, "x", T0 + 5001, NULL), 0);
	assert_int_equal(store_outbox_claim(f->c, T0 + 6000, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(rows[0].attempts, 2);
	assert_int_equal(store_outbox_defer(f->c, id, T0 + 7000, "held", T0 + 6001, NULL), 0);
	outbox_get(f, id, &r);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.state, OUTBOX_PENDING);
	counts_match_rows(f);
	/* only a SENDING row can be deferred */
	assert_int_equal(store_outbox_defer(f->c, id, T0 + 8000, "again", T0 + 6002, &landed),
	                 ERR_CONFLICT);
	outbox_get(f, id, &r);
	assert_int_equal(r.next_attempt_at, T0 + 7000);
	assert_int_equal(store_outbox_claim(f->c, T0 + 7000, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(store_outbox_accepted(f->c, id, "wamid.D", "bsp1", T0 + 7001, NULL), 0);
	assert_int_equal(store_outbox_defer(f->c, id, T0 + 8000, "again", T0 + 7002, NULL),
	                 ERR_CONFLICT);
	assert_int_equal(state_of(f, id), OUTBOX_ACCEPTED);
	assert_int_equal(store_outbox_defer(f->c, 9999, T0 + 8000, "x", T0, NULL), ERR_NOTFOUND);
	counts_match_rows(f);
}

/* row_in: a row of priority prio brought to state st (through the real moves). */
static int64_t row_in(struct fx *f, enum outbox_prio prio, enum outbox_state st,
                      const char *provider_id)
{
	int64_t id = queue_to(f, f->tenant, prio, "919811111111", st != OUTBOX_PENDING);
	switch (st) {
	case OUTBOX_PENDING:
	case OUTBOX_SENDING: break;
	case OUTBOX_FAILED:
	case OUTBOX_DEAD:
		assert_int_equal(store_outbox_fail(f->c, id, st, 131026, "undeliverable", T0, NULL),
		                 0);
		break;
	default:
		assert_int_equal(store_outbox_accepted(f->c, id, provider_id, "bsp1", T0, NULL), 0);
		if (st != OUTBOX_ACCEPTED)
			assert_int_equal(
			        status_of(f, 0, provider_id, st, 0, "", T0, NULL, NULL, NULL), 0);
	}
	assert_int_equal(state_of(f, id), st);
	return id;
}

static void test_outbox_resend(void **state)
{
	struct fx *f = *state;
	static const enum outbox_state ok[] = {OUTBOX_FAILED, OUTBOX_ACCEPTED, OUTBOX_SENT,
	                                       OUTBOX_DELIVERED, OUTBOX_PENDING};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char wamid[32];
		snprintf(wamid, sizeof(wamid), "wamid.R%zu", i);
		int64_t id = row_in(f, PRIO_P2, ok[i], wamid);
		enum outbox_state from = OUTBOX_DEAD;
		clock_set_fake(T0 + 100);
		assert_int_equal(store_outbox_resend(f->c, id, "sms", T0 + 100, &from), 0);
		assert_int_equal(from, ok[i]);
		struct outbox_row r;
		outbox_get(f, id, &r);
		assert_int_equal(r.state, OUTBOX_PENDING);
		assert_string_equal(r.provider, "sms");
		assert_string_equal(r.provider_msg_id, "");
		assert_int_equal(r.next_attempt_at, T0 + 100);
		assert_int_equal(r.updated_at, T0 + 100);
		counts_match_rows(f);
		/* the old provider id no longer names it */
		if (ok[i] != OUTBOX_PENDING && ok[i] != OUTBOX_FAILED)
			assert_int_equal(status_of(f, 0, wamid, OUTBOX_READ, 0, "", T0 + 101, NULL,
			                           NULL, NULL),
			                 ERR_NOTFOUND);
		/* due now, and the claim says which provider it must go through */
		struct outbox_row *rows;
		int n;
		assert_int_equal(store_outbox_claim(f->c, T0 + 100, 10, PRIO_P3, &f->a, &rows, &n),
		                 0);
		assert_int_equal(n, 1);
		assert_int_equal(rows[0].id, id);
		assert_string_equal(rows[0].provider, "sms");
		assert_int_equal(
		        store_outbox_fail(f->c, id, OUTBOX_DEAD, 0, "done", T0 + 100, NULL), 0);
		clock_set_fake(T0);
	}
	/* not from SENDING, READ or DEAD: nothing changes */
	static const enum outbox_state refused[] = {OUTBOX_SENDING, OUTBOX_READ, OUTBOX_DEAD};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		char wamid[32];
		snprintf(wamid, sizeof(wamid), "wamid.X%zu", i);
		int64_t id = row_in(f, PRIO_P1, refused[i], wamid);
		struct outbox_row before, after;
		outbox_get(f, id, &before);
		enum outbox_state from = OUTBOX_DELIVERED;
		assert_int_equal(store_outbox_resend(f->c, id, "sms", T0 + 200, &from),
		                 ERR_CONFLICT);
		assert_int_equal(from, OUTBOX_DELIVERED);
		outbox_get(f, id, &after);
		assert_int_equal(after.state, refused[i]);
		assert_string_equal(after.provider, before.provider);
		assert_string_equal(after.provider_msg_id, before.provider_msg_id);
		assert_int_equal(after.updated_at, before.updated_at);
	}
	counts_match_rows(f);
	assert_int_equal(store_outbox_resend(f->c, 9999, "sms", T0, NULL), ERR_NOTFOUND);
	/* a provider name must fit a row: 15 characters do, 16 do not */
	int64_t id = row_in(f, PRIO_P2, OUTBOX_FAILED, "");
	assert_int_equal(store_outbox_resend(f->c, id, "abcdefghijklmnop", T0, NULL), ERR_INVAL);
	assert_int_equal(state_of(f, id), OUTBOX_FAILED);
	assert_int_equal(store_outbox_resend(f->c, id, "abcdefghijklmno", T0, NULL), 0);
	struct outbox_row r;
	outbox_get(f, id, &r);
	assert_string_equal(r.provider, "abcdefghijklmno");
	/* "" or NULL: any provider */
	assert_int_equal(store_outbox_resend(f->c, id, NULL, T0, NULL), 0);
	outbox_get(f, id, &r);
	assert_string_equal(r.provider, "");
	counts_match_rows(f);
}

static void test_outbox_expire(void **state)
{
	struct fx *f = *state;
	int64_t moved[PRIO_COUNT] = {-1, -1, -1, -1};
	int64_t old[PRIO_COUNT], young[PRIO_COUNT];
	for (int p = 0; p < PRIO_COUNT; p++)
		old[p] = queue(f, (enum outbox_prio)p, "{}");
	int64_t sending = row_in(f, PRIO_P3, OUTBOX_SENDING, "");
	int64_t failed = row_in(f, PRIO_P2, OUTBOX_FAILED, "");
	int64_t accepted = row_in(f, PRIO_P3, OUTBOX_ACCEPTED, "wamid.E");
	clock_set_fake(T0 + 1000);
	for (int p = 0; p < PRIO_COUNT; p++)
		young[p] = queue(f, (enum outbox_prio)p, "{}");
	/* P2 and P3 created before T0 + 1000: only the old pending ones go */
	assert_int_equal(store_outbox_expire(f->c, PRIO_P2, T0 + 1000, "expired in the queue",
	                                     T0 + 2000, moved),
	                 0);
	assert_int_equal(moved[PRIO_P0], 0);
	assert_int_equal(moved[PRIO_P1], 0);
	assert_int_equal(moved[PRIO_P2], 1);
	assert_int_equal(moved[PRIO_P3], 1);
	for (int p = 0; p < PRIO_COUNT; p++) {
		struct outbox_row r;
		outbox_get(f, old[p], &r);
		if (p >= PRIO_P2) {
			assert_int_equal(r.state, OUTBOX_DEAD);
			assert_string_equal(r.last_error, "expired in the queue");
			assert_int_equal(r.updated_at, T0 + 2000);
		} else {
			assert_int_equal(r.state, OUTBOX_PENDING);
			assert_string_equal(r.last_error, "");
		}
		assert_int_equal(state_of(f, young[p]), OUTBOX_PENDING);
	}
	assert_int_equal(state_of(f, sending), OUTBOX_SENDING);
	assert_int_equal(state_of(f, failed), OUTBOX_FAILED);
	assert_int_equal(state_of(f, accepted), OUTBOX_ACCEPTED);
	counts_match_rows(f);
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P2][OUTBOX_DEAD], 1);
	assert_int_equal(counts[PRIO_P3][OUTBOX_DEAD], 1);
	assert_int_equal(counts[PRIO_P3][OUTBOX_PENDING], 1);
	/* again: nothing more that old */
	assert_int_equal(store_outbox_expire(f->c, PRIO_P2, T0 + 1000, "x", T0 + 2001, moved), 0);
	for (int p = 0; p < PRIO_COUNT; p++)
		assert_int_equal(moved[p], 0);
	/* every priority, cut just after the young rows */
	assert_int_equal(store_outbox_expire(f->c, PRIO_P0, T0 + 1001, "x", T0 + 2002, moved), 0);
	for (int p = 0; p < PRIO_COUNT; p++)
		assert_int_equal(moved[p], p <= PRIO_P1 ? 2 : 1);
	assert_int_equal(state_of(f, old[PRIO_P0]), OUTBOX_DEAD);
	assert_int_equal(state_of(f, young[PRIO_P3]), OUTBOX_DEAD);
	assert_int_equal(state_of(f, sending), OUTBOX_SENDING);
	counts_match_rows(f);
	assert_int_equal(
	        store_outbox_expire(f->c, (enum outbox_prio)PRIO_COUNT, T0, "x", T0, moved),
	        ERR_INVAL);
	assert_int_equal(store_outbox_expire(f->c, PRIO_P0, T0, "x", T0, NULL), ERR_INVAL);
}

static void test_outbox_accepted_provider(void **state)
{
	struct fx *f = *state;
	int64_t a = queue_to(f, f->tenant, PRIO_P1, "919811111111", 1);
	int64_t b = queue_to(f, f->tenant, PRIO_P1, "919811111111", 1);
	int64_t c = queue_to(f, f->tenant, PRIO_P1, "919811111111", 1);
	enum outbox_state landed = OUTBOX_DEAD;
	assert_int_equal(store_outbox_accepted(f->c, a, "wamid.A", "bsp2", T0 + 1, &landed), 0);
	assert_int_equal(landed, OUTBOX_ACCEPTED);
	assert_int_equal(store_outbox_accepted(f->c, b, "req-77", "sms", T0 + 1, NULL), 0);
	/* a name too long for the row: refused, the row still SENDING */
	assert_int_equal(store_outbox_accepted(f->c, c, "wamid.C", "abcdefghijklmnop", T0, NULL),
	                 ERR_INVAL);
	assert_int_equal(state_of(f, c), OUTBOX_SENDING);
	assert_int_equal(store_outbox_accepted(f->c, c, "wamid.C", NULL, T0 + 1, NULL), 0);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_list(f->c, OUTBOX_ACCEPTED, 10, &f->a, &rows, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(rows[0].id, c); /* newest first */
	assert_string_equal(rows[0].provider, "");
	assert_int_equal(rows[1].id, b);
	assert_string_equal(rows[1].provider, "sms");
	assert_string_equal(rows[1].provider_msg_id, "req-77");
	assert_int_equal(rows[2].id, a);
	assert_string_equal(rows[2].provider, "bsp2");
	assert_string_equal(rows[2].provider_msg_id, "wamid.A");
	counts_match_rows(f);
}

static void test_outbox_status_any_tenant(void **state)
{
	struct fx *f = *state;
	int64_t t2 = add_tenant(f->c, "100000000002");
	int64_t mine = queue_to(f, f->tenant, PRIO_P2, "919811111111", 1);
	int64_t theirs = queue_to(f, t2, PRIO_P0, "919822222222", 1);
	assert_int_equal(store_outbox_accepted(f->c, mine, "req-1", "sms", T0 + 1, NULL), 0);
	assert_int_equal(store_outbox_accepted(f->c, theirs, "req-2", "sms", T0 + 1, NULL), 0);
	/* an SMS report names no shop: tenant 0 finds the row of any */
	struct outbox_status_update u = {.tenant_id = 0,
	                                 .provider_msg_id = "req-2",
	                                 .state = OUTBOX_DELIVERED,
	                                 .at = T0 + 5};
	struct outbox_status_result res;
	memset(&res, 0x5a, sizeof(res));
	assert_int_equal(store_outbox_status(f->c, &u, &res), 0);
	assert_int_equal(res.id, theirs);
	assert_int_equal(res.from, OUTBOX_ACCEPTED);
	assert_int_equal(res.to, OUTBOX_DELIVERED);
	assert_int_equal(res.prio, PRIO_P0);
	assert_string_equal(res.provider, "sms");
	assert_int_equal(state_of(f, theirs), OUTBOX_DELIVERED);
	u.provider_msg_id = "req-1";
	u.state = OUTBOX_FAILED;
	u.error_code = 30008;
	u.error = "dlr failed";
	assert_int_equal(store_outbox_status(f->c, &u, &res), 0);
	assert_int_equal(res.id, mine);
	assert_int_equal(res.from, OUTBOX_ACCEPTED);
	assert_int_equal(res.to, OUTBOX_FAILED);
	assert_int_equal(res.prio, PRIO_P2);
	assert_string_equal(res.provider, "sms");
	struct outbox_row r;
	outbox_get(f, mine, &r);
	assert_int_equal(r.state, OUTBOX_FAILED);
	assert_int_equal(r.last_error_code, 30008);
	assert_string_equal(r.last_error, "dlr failed");
	/* a shop's status still finds only its own rows */
	enum outbox_state o, nw;
	assert_int_equal(status_of(f, 0, "req-2", OUTBOX_READ, 0, "", T0 + 6, &o, &nw, NULL),
	                 ERR_NOTFOUND);
	assert_int_equal(state_of(f, theirs), OUTBOX_DELIVERED);
	u.tenant_id = t2;
	u.provider_msg_id = "req-2";
	u.state = OUTBOX_READ;
	assert_int_equal(store_outbox_status(f->c, &u, &res), 0);
	assert_int_equal(res.id, theirs);
	assert_int_equal(res.to, OUTBOX_READ);
	/* tenant 0 and an unknown id: not found */
	u.tenant_id = 0;
	u.provider_msg_id = "req-404";
	assert_int_equal(store_outbox_status(f->c, &u, &res), ERR_NOTFOUND);
	counts_match_rows(f);
}

/* A P1 WhatsApp accepted as wamid.OLD, then reported failed (131026), queued
 * again for SMS; its id. */
static int64_t failed_then_resent_by_sms(struct fx *f)
{
	int64_t id = row_in(f, PRIO_P1, OUTBOX_ACCEPTED, "wamid.OLD");
	assert_int_equal(status_of(f, id, "wamid.OLD", OUTBOX_FAILED, 131026, "undeliverable",
	                           T0 + 1, NULL, NULL, NULL),
	                 0);
	assert_int_equal(store_outbox_resend(f->c, id, "sms", T0 + 2, NULL), 0);
	return id;
}

/*
 * A row WhatsApp failed is queued again for SMS (store_outbox_resend).
 * WhatsApp's webhooks for the old send carry the row id as their hint and
 * come late, out of order, or again (a redelivery): none of them may take
 * the row back from the SMS send - the hint is for a send whose answer
 * munim never heard, not for one it gave up on.
 */
static void test_outbox_resend_late_status_of_old_send_pending(void **state)
{
	struct fx *f = *state;
	int64_t id = failed_then_resent_by_sms(f);
	static const enum outbox_state late[] = {OUTBOX_FAILED, OUTBOX_SENT, OUTBOX_DELIVERED};
	for (size_t i = 0; i < sizeof(late) / sizeof(late[0]); i++) {
		enum outbox_state o = OUTBOX_DEAD, nw = OUTBOX_DEAD;
		int rc = status_of(f, id, "wamid.OLD", late[i], 131026, "undeliverable", T0 + 3, &o,
		                   &nw, NULL);
		struct outbox_row r;
		outbox_get(f, id, &r);
		if (r.state != OUTBOX_PENDING)
			fail_msg("a late \"%s\" status of the failed WhatsApp send moved the row "
			         "queued for SMS to %s",
			         outbox_state_name(late[i]), outbox_state_name(r.state));
		assert_true(rc == ERR_NOTFOUND || (rc == 0 && o == nw));
		assert_string_equal(r.provider, "sms");
		assert_string_equal(r.provider_msg_id, "");
	}
	counts_match_rows(f);
}

static void test_outbox_resend_late_status_of_old_send_sending(void **state)
{
	struct fx *f = *state;
	int64_t id = failed_then_resent_by_sms(f);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_claim(f->c, T0 + 2, 10, PRIO_P3, &f->a, &rows, &n), 0);
	assert_int_equal(n, 1);
	/* the SMS is in flight when WhatsApp's failed status comes again */
	status_of(f, id, "wamid.OLD", OUTBOX_FAILED, 131026, "undeliverable", T0 + 3, NULL, NULL,
	          NULL);
	enum outbox_state landed = OUTBOX_DEAD;
	assert_int_equal(store_outbox_accepted(f->c, id, "req-SMS", "sms", T0 + 4, &landed), 0);
	if (landed != OUTBOX_ACCEPTED)
		fail_msg("the SMS the gateway accepted was recorded %s: WhatsApp's old status "
		         "was kept aside for it",
		         outbox_state_name(landed));
	struct outbox_row r;
	outbox_get(f, id, &r);
	assert_string_equal(r.provider_msg_id, "req-SMS");
	counts_match_rows(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_migrate_idempotent),
	        cmocka_unit_test(test_unmigrated_store_err_db),
	        cmocka_unit_test(test_open_bad_url_inval),
	        cmocka_unit_test(test_names_and_partition),
	        cmocka_unit_test_setup_teardown(test_tenants_get_together, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tenant_add_duplicate_phone_conflict, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_customer_touch, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_product_upsert, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stock_move_negative_conflict, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ledger_append_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_orders_and_set_status_conflict, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_invoice_numbering_gapless, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_inbox_put_dedup, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_inbox_media_round_trip, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_add_many, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_counts_follow_what_commits, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_inbox_put_done_and_reopen, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_inbox_waiting, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_inbox_pending_slices, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_inbox_done_and_failed, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_claim_order, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_retry_not_due, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_claim_due_order, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_recover, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_claimed_here, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_recover_waits_for_grace, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_status_hint_claims_send_in_doubt, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_status_overtaking_the_answer, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_outcome_defers_to_an_overtaking_status, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_lazy_commits, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_catalog_rev_follows_products, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_status_forward_only, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_statuses_as_one_by_one, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_locked_returns_again, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_begin_holds_write_lock, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_savepoint_batch, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_threads_queue_on_writer_mutex, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_checkpoint_in_background, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_checkpoint_inline_by_default, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sq_helpers_bind_and_rows, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tenant_template_and_token, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_customer_opt_out_and_active, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_marketing_queries_use_their_indexes, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_cancel_marketing, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_opted_out_while_sending, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_order_set_paid, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_claim_max_prio, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_next_due_max_prio, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_defer, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_resend, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_expire, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_accepted_provider, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_status_any_tenant, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_resend_late_status_of_old_send_pending,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_outbox_resend_late_status_of_old_send_sending,
	                                        setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
