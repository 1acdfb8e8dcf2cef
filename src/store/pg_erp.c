/*
 * pg_erp.c - the PostgreSQL backend of the shop's books: catalogue, stock
 * ledger, orders, invoices and the sales summary. sqlite_erp.c is the
 * reference: the same rows, return codes and messages through store.h.
 *
 * Design
 *   Every operation runs in tenant scope (pg_internal.h) for the tenant it
 *   names, so row-level security holds it to that shop's rows, and every
 *   statement names tenant_id, so that orders and order_lines (PARTITION
 *   BY HASH (tenant_id)) are pruned to one partition.
 *   Round trips are kept to one per operation on the paths a message takes:
 *     stock_move     one statement: the guarded UPDATE and, from its
 *                    RETURNING, the ledger row (a data-modifying CTE);
 *     order_create   one statement: the order and all its lines, the
 *                    lines sent as arrays and unnested (an order has up to
 *                    STORE_MAX_ORDER_LINES lines, far past PG_MAX_ARGS);
 *     order reads    one statement: the order LEFT JOINed to its lines;
 *     invoice_issue  one statement: the checks, the counter and the row.
 *   A refused change (short stock, a status or payment already moved) is
 *   told apart by a second read, only on that path.
 *
 * Expected refusals raise no PostgreSQL error, which would abort the
 * caller's transaction (pg_internal.h): stock moves are a conditional
 * UPDATE ... RETURNING, status and payment changes a guarded UPDATE,
 * and invoice_issue checks the order and an earlier invoice inside the
 * statement that takes the number, touching nothing when either check
 * fails.
 *
 * Invariants (as in SQLite)
 *   - Stock moves only through pg_stock_move: the UPDATE refuses to go
 *     below zero (and the column's CHECK backs it) and the ledger row is
 *     written by the same statement, so the ledger's sum is the stock.
 *     The ledger is append-only (a trigger, and munim_app may only SELECT
 *     and INSERT it).
 *   - Invoice numbers: INSERT ... ON CONFLICT DO UPDATE on invoice_counters
 *     (tenant, fy) takes the next number and row-locks the counter until
 *     the caller's transaction ends; the invoice row goes in with it, so a
 *     rollback gives the number back: no gaps, no repeats. A number that
 *     would not fit GST's 16 characters is refused before the counter
 *     moves (ERR_FULL, nothing changed).
 *
 * Differences from SQLite, from the PostgreSQL schema (migrations_pg.c)
 *   - orders, order_lines and invoices do not reference customers and
 *     products (the partitioned tables keep no foreign keys out), so an
 *     order or invoice naming an unknown customer or product is stored
 *     where SQLite's foreign keys give ERR_DB. Callers build them from rows
 *     they have just read. An invoice for an unknown order is ERR_DB in
 *     both (here found by the statement's own check, nothing written).
 *   - A product of an unknown tenant breaks the foreign key: ERR_CONFLICT
 *     (class 23, pg_internal.h) where SQLite says ERR_DB.
 *   - Two transactions invoicing the same order at once: the second waits
 *     for the first's counter lock, then its insert breaks the unique key
 *     (ERR_CONFLICT, "already has one", with its transaction aborted;
 *     SQLite serialises writers, so it never meets this). Its rollback
 *     gives the number back.
 *   Not a difference: names sort with COLLATE "C", byte order like
 *   SQLite's BINARY, whatever the database's collation.
 *
 * Threads: as store_pg.c; every function uses only its connection.
 */
#include <stdio.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/pg_internal.h"

/* ---- catalogue ------------------------------------------------------------------------------ */

#define PRODUCT_COLS                                                                               \
	"id, tenant_id, sku, name, aliases, unit, base_per_unit, price_paise, gst_rate_bp, "       \
	"hsn, stock"

static void read_product(const PGresult *r, int row, struct arena *a, struct product *p)
{
	p->id = store__pg_i64(r, row, 0);
	p->tenant_id = store__pg_i64(r, row, 1);
	p->sku = store__pg_str(r, row, 2, a);
	p->name = store__pg_str(r, row, 3, a);
	p->aliases = store__pg_str(r, row, 4, a);
	p->unit = store__pg_str(r, row, 5, a);
	p->base_per_unit = store__pg_i64(r, row, 6);
	p->price_paise = store__pg_i64(r, row, 7);
	p->gst_rate_bp = (int)store__pg_i64(r, row, 8);
	p->hsn = store__pg_str(r, row, 9, a);
	p->stock = store__pg_i64(r, row, 10);
}

/*
 * pg_product_upsert: a new (tenant, sku) starts with stock 0; an existing
 * one gets the new name, aliases, unit with its base_per_unit, price, rate
 * and HSN. Stock is never written here.
 */
static int pg_product_upsert(struct store_conn *c, const struct product *p, int64_t *id)
{
	static const char sql[] =
	        "INSERT INTO products (tenant_id, sku, name, aliases, unit, base_per_unit,"
	        " price_paise, gst_rate_bp, hsn) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
	        " ON CONFLICT (tenant_id, sku) DO UPDATE SET name = excluded.name,"
	        " aliases = excluded.aliases, unit = excluded.unit,"
	        " base_per_unit = excluded.base_per_unit, price_paise = excluded.price_paise,"
	        " gst_rate_bp = excluded.gst_rate_bp, hsn = excluded.hsn"
	        " RETURNING id";
	const char *what = "save product";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, p->tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ittttiiit", p->tenant_id, p->sku, p->name,
	                     p->aliases, p->unit, p->base_per_unit, p->price_paise,
	                     (int64_t)p->gst_rate_bp, p->hsn);
	if (rc == 0) {
		if (PQntuples(r) == 1)
			*id = store__pg_i64(r, 0, 0);
		else
			rc = store__errf(c, ERR_DB, "could not save product: no id returned");
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

/*
 * products_read runs sql (selecting PRODUCT_COLS, $1 = tenant_id, $2 =
 * arg when types is "ii") and gives its rows in *out (from a), *n of them.
 */
static int products_read(struct store_conn *c, const char *what, const char *sql, const char *types,
                         int64_t tenant_id, int64_t arg, struct arena *a, struct product **out,
                         int *n)
{
	PGresult *r;
	int own;
	*out = NULL;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, types, tenant_id, arg);
	if (rc == 0) {
		int rows = PQntuples(r);
		struct product *p = store__pg_alloc_rows(a, rows, sizeof(*p));
		for (int i = 0; i < rows; i++)
			read_product(r, i, a, &p[i]);
		*out = p;
		*n = rows;
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_products_list(struct store_conn *c, int64_t tenant_id, struct arena *a,
                            struct product **out, int *n)
{
	static const char sql[] = "SELECT " PRODUCT_COLS " FROM products WHERE tenant_id = $1"
	                          " ORDER BY name COLLATE \"C\", id";
	return products_read(c, "list products", sql, "i", tenant_id, 0, a, out, n);
}

static int pg_products_low(struct store_conn *c, int64_t tenant_id, int64_t threshold_units,
                           struct arena *a, struct product **out, int *n)
{
	static const char sql[] = "SELECT " PRODUCT_COLS " FROM products"
	                          " WHERE tenant_id = $1 AND stock < $2 * base_per_unit"
	                          " ORDER BY name COLLATE \"C\", id";
	return products_read(c, "list low stock", sql, "ii", tenant_id, threshold_units, a, out, n);
}

static int pg_product_get(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                          struct arena *a, struct product *out)
{
	static const char sql[] =
	        "SELECT " PRODUCT_COLS " FROM products WHERE tenant_id = $1 AND id = $2";
	const char *what = "read product";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", tenant_id, product_id);
	if (rc == 0) {
		if (PQntuples(r) == 1)
			read_product(r, 0, a, out);
		else
			rc = store__errf(c, ERR_NOTFOUND, "could not read product: no product %lld",
			                 (long long)product_id);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_product_set_price(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                                int64_t price_paise)
{
	static const char sql[] =
	        "UPDATE products SET price_paise = $3 WHERE tenant_id = $1 AND id = $2";
	const char *what = "set price";
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "iii", tenant_id, product_id, price_paise);
	if (rc == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not set price: no product %lld",
		                 (long long)product_id);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

/* ---- stock ledger --------------------------------------------------------------------------- */

/* short_stock explains why the guarded UPDATE touched nothing: always an
 * ERR_* (ERR_NOTFOUND, ERR_CONFLICT or the error met). */
static int short_stock(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t delta)
{
	static const char sql[] = "SELECT stock FROM products WHERE tenant_id = $1 AND id = $2";
	const char *what = "move stock";
	PGresult *r;
	int rc = store__pg_query(c, what, sql, &r, "ii", tenant_id, product_id);
	if (rc < 0)
		return rc;
	int found = PQntuples(r) == 1;
	int64_t stock = found ? store__pg_i64(r, 0, 0) : 0;
	PQclear(r);
	if (!found)
		return store__errf(c, ERR_NOTFOUND, "could not move stock: no product %lld",
		                   (long long)product_id);
	return store__errf(c, ERR_CONFLICT,
	                   "could not move stock of product %lld: %lld on hand, change %lld "
	                   "would go below zero",
	                   (long long)product_id, (long long)stock, (long long)delta);
}

/*
 * pg_stock_move: the UPDATE moves the stock only if it stays >= 0, and the
 * ledger row is inserted from its RETURNING, so either both happen or
 * neither; no row back means short stock or no such product.
 */
static int pg_stock_move(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t delta,
                         const char *reason, int64_t ref_id, int64_t *stock_after)
{
	static const char sql[] =
	        "WITH moved AS ("
	        " UPDATE products SET stock = stock + $3::bigint"
	        " WHERE tenant_id = $1::bigint AND id = $2::bigint AND stock + $3::bigint >= 0"
	        " RETURNING stock),"
	        " ledger AS ("
	        " INSERT INTO stock_ledger (tenant_id, product_id, delta, reason, ref_id, "
	        "created_at)"
	        " SELECT $1::bigint, $2::bigint, $3::bigint, $4::text, $5::bigint, $6::bigint"
	        " FROM moved)"
	        " SELECT stock FROM moved";
	const char *what = "move stock";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iiitii", tenant_id, product_id, delta, reason,
	                     ref_id, clock_wall_ms());
	if (rc == 0) {
		int moved = PQntuples(r) == 1;
		if (moved)
			*stock_after = store__pg_i64(r, 0, 0);
		PQclear(r);
		if (!moved)
			rc = short_stock(c, tenant_id, product_id, delta);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_ledger_sum(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t *sum)
{
	static const char sql[] = "SELECT coalesce(sum(delta), 0) FROM stock_ledger"
	                          " WHERE tenant_id = $1 AND product_id = $2";
	const char *what = "sum ledger";
	PGresult *r;
	int own;
	*sum = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", tenant_id, product_id);
	if (rc == 0) {
		*sum = store__pg_i64(r, 0, 0);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

/* ---- orders --------------------------------------------------------------------------------- */

/* The columns of order_lines sent as arrays, in the order of the unnest. */
enum line_col {
	LC_PRODUCT,
	LC_NAME,
	LC_UNIT,
	LC_BASE,
	LC_QTY,
	LC_PRICE,
	LC_RATE,
	LC_HSN,
	LC_AMOUNT,
	LC_COUNT
};

/*
 * pg_order_create: the order and its lines in one statement; line_no is
 * the position in o->lines, from 1 (WITH ORDINALITY).
 */
static int pg_order_create(struct store_conn *c, const struct order *o, int64_t *id)
{
	static const char sql[] =
	        "WITH o AS ("
	        " INSERT INTO orders (tenant_id, customer_id, status, total_paise, created_at,"
	        " updated_at) VALUES ($1::bigint, $2::bigint, $3::smallint, $4::bigint,"
	        " $5::bigint, $5::bigint) RETURNING id),"
	        " l AS ("
	        " INSERT INTO order_lines (tenant_id, order_id, line_no, product_id, name, unit,"
	        " base_per_unit, qty_base, price_paise, gst_rate_bp, hsn, amount_paise)"
	        " SELECT $1::bigint, o.id, u.line_no, u.product_id, u.name, u.unit,"
	        " u.base_per_unit, u.qty_base, u.price_paise, u.gst_rate_bp, u.hsn, u.amount_paise"
	        " FROM o, unnest($6::bigint[], $7::text[], $8::text[], $9::bigint[],"
	        " $10::bigint[], $11::bigint[], $12::integer[], $13::text[], $14::bigint[])"
	        " WITH ORDINALITY AS u (product_id, name, unit, base_per_unit, qty_base,"
	        " price_paise, gst_rate_bp, hsn, amount_paise, line_no))"
	        " SELECT id FROM o";
	const char *what = "create order";
	struct buf col[LC_COUNT];
	PGresult *r;
	int own;

	for (int k = 0; k < LC_COUNT; k++)
		store__pg_arr_init(&col[k]);
	for (int i = 0; i < o->nlines; i++) {
		const struct order_line *l = &o->lines[i];
		store__pg_arr_int(&col[LC_PRODUCT], l->product_id);
		store__pg_arr_text(&col[LC_NAME], l->name);
		store__pg_arr_text(&col[LC_UNIT], l->unit);
		store__pg_arr_int(&col[LC_BASE], l->base_per_unit);
		store__pg_arr_int(&col[LC_QTY], l->qty_base);
		store__pg_arr_int(&col[LC_PRICE], l->price_paise);
		store__pg_arr_int(&col[LC_RATE], l->gst_rate_bp);
		store__pg_arr_text(&col[LC_HSN], l->hsn);
		store__pg_arr_int(&col[LC_AMOUNT], l->amount_paise);
	}
	for (int k = 0; k < LC_COUNT; k++)
		store__pg_arr_end(&col[k]);

	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, o->tenant_id, what, &own);
	if (rc < 0)
		goto out;
	rc = store__pg_query(c, what, sql, &r, "iiiiittttttttt", o->tenant_id, o->customer_id,
	                     (int64_t)o->status, o->total_paise,
	                     o->created_at > 0 ? o->created_at : clock_wall_ms(),
	                     col[LC_PRODUCT].data, col[LC_NAME].data, col[LC_UNIT].data,
	                     col[LC_BASE].data, col[LC_QTY].data, col[LC_PRICE].data,
	                     col[LC_RATE].data, col[LC_HSN].data, col[LC_AMOUNT].data);
	if (rc == 0) {
		if (PQntuples(r) == 1)
			*id = store__pg_i64(r, 0, 0);
		else
			rc = store__errf(c, ERR_DB, "could not create order: no id returned");
		PQclear(r);
	}
	rc = store__pg_op_end(c, own, rc);
out:
	for (int k = 0; k < LC_COUNT; k++)
		buf_release(&col[k]);
	return rc;
}

/*
 * ORDER_READ(where): the order that `where` (over orders, $1 = tenant_id,
 * $2 = the key) finds - the newest when several - LEFT JOINed to its
 * lines in line order: one row per line, or one row with NULL line
 * columns for an order without lines.
 */
#define ORDER_READ(where)                                                                          \
	"SELECT o.id, o.tenant_id, o.customer_id, o.status, o.total_paise, o.created_at,"          \
	" o.updated_at, o.paid_at, l.line_no, l.product_id, l.name, l.unit, l.base_per_unit,"      \
	" l.qty_base, l.price_paise, l.gst_rate_bp, l.hsn, l.amount_paise"                         \
	" FROM (SELECT * FROM orders WHERE tenant_id = $1 AND " where                              \
	" ORDER BY id DESC LIMIT 1) o"                                                             \
	" LEFT JOIN order_lines l ON l.tenant_id = $1 AND l.order_id = o.id"                       \
	" ORDER BY l.line_no"

void store__pg_read_order(const PGresult *r, int row, struct order *o)
{
	o->id = store__pg_i64(r, row, 0);
	o->tenant_id = store__pg_i64(r, row, 1);
	o->customer_id = store__pg_i64(r, row, 2);
	o->status = (enum order_status)store__pg_i64(r, row, 3);
	o->total_paise = store__pg_i64(r, row, 4);
	o->created_at = store__pg_i64(r, row, 5);
	o->updated_at = store__pg_i64(r, row, 6);
	o->paid_at = store__pg_i64(r, row, 7);
	o->nlines = 0;
	o->lines = NULL;
}

void store__pg_read_order_line(const PGresult *r, int row, struct arena *a, struct order_line *l)
{
	l->product_id = store__pg_i64(r, row, 9);
	l->name = store__pg_str(r, row, 10, a);
	l->unit = store__pg_str(r, row, 11, a);
	l->base_per_unit = store__pg_i64(r, row, 12);
	l->qty_base = store__pg_i64(r, row, 13);
	l->price_paise = store__pg_i64(r, row, 14);
	l->gst_rate_bp = (int)store__pg_i64(r, row, 15);
	l->hsn = store__pg_str(r, row, 16, a);
	l->amount_paise = store__pg_i64(r, row, 17);
}

/*
 * order_one reads the order (with its lines) that sql, an ORDER_READ,
 * finds for (tenant_id, key). ERR_NOTFOUND without a message when there is
 * none: the caller says what was missing.
 */
static int order_one(struct store_conn *c, const char *sql, int64_t tenant_id, int64_t key,
                     struct arena *a, struct order *o)
{
	const char *what = "read order";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", tenant_id, key);
	if (rc < 0)
		goto done;
	int rows = PQntuples(r);
	if (rows == 0) {
		rc = ERR_NOTFOUND;
	} else {
		store__pg_read_order(r, 0, o);
		o->nlines = PQgetisnull(r, 0, 8) ? 0 : rows;
		o->lines = store__pg_alloc_rows(a, o->nlines, sizeof(*o->lines));
		for (int i = 0; i < o->nlines; i++)
			store__pg_read_order_line(r, i, a, &o->lines[i]);
	}
	PQclear(r);
done:
	return store__pg_op_end(c, own, rc);
}

static int pg_order_get(struct store_conn *c, int64_t tenant_id, int64_t order_id, struct arena *a,
                        struct order *out)
{
	static const char sql[] = ORDER_READ("id = $2");
	int rc = order_one(c, sql, tenant_id, order_id, a, out);
	if (rc == ERR_NOTFOUND)
		store__errf(c, rc, "could not read order: no order %lld", (long long)order_id);
	return rc;
}

/* order_last reads the customer's newest order that sql selects; none
 * says what the customer has not when there is none. */
static int order_last(struct store_conn *c, const char *sql, int64_t tenant_id, int64_t customer_id,
                      const char *none, struct arena *a, struct order *out)
{
	int rc = order_one(c, sql, tenant_id, customer_id, a, out);
	if (rc == ERR_NOTFOUND)
		store__errf(c, rc, "could not read order: customer %lld has %s",
		            (long long)customer_id, none);
	return rc;
}

static int pg_order_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                         struct arena *a, struct order *out)
{
	static const char sql[] = ORDER_READ("customer_id = $2");
	return order_last(c, sql, tenant_id, customer_id, "no order", a, out);
}

static int pg_order_last_draft(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                               struct arena *a, struct order *out)
{
	static const char sql[] = ORDER_READ("customer_id = $2 AND status = 0");
	return order_last(c, sql, tenant_id, customer_id, "no draft", a, out);
}

/*
 * order_state reads the status and paid_at of the order, after a guarded
 * UPDATE touched nothing: 1 found, 0 none, or an ERR_*.
 */
static int order_state(struct store_conn *c, const char *what, int64_t tenant_id, int64_t order_id,
                       int64_t *status, int64_t *paid_at)
{
	static const char sql[] =
	        "SELECT status, paid_at FROM orders WHERE tenant_id = $1 AND id = $2";
	PGresult *r;
	int rc = store__pg_query(c, what, sql, &r, "ii", tenant_id, order_id);
	if (rc < 0)
		return rc;
	int found = PQntuples(r) == 1;
	if (found) {
		*status = store__pg_i64(r, 0, 0);
		*paid_at = store__pg_i64(r, 0, 1);
	}
	PQclear(r);
	return found;
}

static int pg_order_set_status(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                               enum order_status from, enum order_status to)
{
	static const char upd[] = "UPDATE orders SET status = $4, updated_at = $5"
	                          " WHERE tenant_id = $1 AND id = $2 AND status = $3";
	const char *what = "change order status";
	int64_t status = 0, paid_at = 0;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, upd, "iiiii", tenant_id, order_id, (int64_t)from, (int64_t)to,
	                    clock_wall_ms());
	if (rc != 0) /* changed, or an error */
		goto done;

	/* nothing changed: say whether the order is missing or elsewhere */
	rc = order_state(c, what, tenant_id, order_id, &status, &paid_at);
	if (rc == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not change order status: no order %lld",
		                 (long long)order_id);
	else if (rc == 1)
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not change order %lld from status %d to %d: it is in "
		                 "status %d",
		                 (long long)order_id, (int)from, (int)to, (int)status);
done:
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

/*
 * pg_order_set_paid: one guarded UPDATE (confirmed, not yet paid) is the
 * gate, so a second "paid" for the same order changes nothing; when it
 * touches no row, the order's state says why.
 */
static int pg_order_set_paid(struct store_conn *c, int64_t tenant_id, int64_t order_id, int64_t at,
                             int64_t *paid_at)
{
	static const char upd[] =
	        "UPDATE orders SET paid_at = $3"
	        " WHERE tenant_id = $1 AND id = $2 AND status = 1 AND paid_at = 0";
	const char *what = "mark order paid";
	int64_t status = 0, was_paid = 0;
	int own;
	*paid_at = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, upd, "iii", tenant_id, order_id, at);
	if (rc < 0)
		goto done;
	if (rc > 0) {
		*paid_at = at;
		rc = 0;
		goto done;
	}
	rc = order_state(c, what, tenant_id, order_id, &status, &was_paid);
	if (rc == 0) {
		rc = store__errf(c, ERR_NOTFOUND, "could not mark order paid: no order %lld",
		                 (long long)order_id);
	} else if (rc == 1 && was_paid > 0) {
		*paid_at = was_paid;
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not mark order %lld paid: it was marked paid already",
		                 (long long)order_id);
	} else if (rc == 1) {
		rc = store__errf(
		        c, ERR_CONFLICT,
		        "could not mark order %lld paid: it is in status %d, not confirmed",
		        (long long)order_id, (int)status);
	}
done:
	return store__pg_op_end(c, own, rc);
}

/* ---- invoices ------------------------------------------------------------------------------- */

#define INVOICE_COLS                                                                               \
	"id, tenant_id, order_id, customer_id, number, fy, seq, issued_at, intra_state,"           \
	" place_of_supply, taxable_paise, cgst_paise, sgst_paise, igst_paise,"                     \
	" round_off_paise, total_paise"

/* The longest number GST allows (Rule 46: at most 16 characters). */
#define INVOICE_NUMBER_MAX 16

static void read_invoice(const PGresult *r, struct arena *a, struct invoice *v)
{
	v->id = store__pg_i64(r, 0, 0);
	v->tenant_id = store__pg_i64(r, 0, 1);
	v->order_id = store__pg_i64(r, 0, 2);
	v->customer_id = store__pg_i64(r, 0, 3);
	v->number = store__pg_str(r, 0, 4, a);
	v->fy = store__pg_str(r, 0, 5, a);
	v->seq = store__pg_i64(r, 0, 6);
	v->issued_at = store__pg_i64(r, 0, 7);
	v->intra_state = (int)store__pg_i64(r, 0, 8);
	v->place_of_supply = store__pg_str(r, 0, 9, a);
	v->taxable_paise = store__pg_i64(r, 0, 10);
	v->cgst_paise = store__pg_i64(r, 0, 11);
	v->sgst_paise = store__pg_i64(r, 0, 12);
	v->igst_paise = store__pg_i64(r, 0, 13);
	v->round_off_paise = store__pg_i64(r, 0, 14);
	v->total_paise = store__pg_i64(r, 0, 15);
}

/*
 * max_seq: the largest sequence number whose invoice number
 * "INV/<fy>/<seq, at least 6 digits>" fits INVOICE_NUMBER_MAX characters
 * (store.c keeps fy to 1..5 characters, so at least 999999).
 */
static int64_t max_seq(const char *fy)
{
	int digits = INVOICE_NUMBER_MAX - 5 - (int)strlen(fy); /* "INV/" and "/" */
	int64_t m = 1;
	for (int i = 0; i < digits && m <= INT64_MAX / 10; i++)
		m *= 10;
	return m - 1;
}

/*
 * pg_invoice_issue: one statement. chk reads whether the order exists and
 * whether it has an invoice; only when it exists without one does num
 * take the next number of (tenant, fy) - 1 for a new series; an existing
 * counter moves only while the number still fits ($5) - and inv insert
 * the row numbered with it ('INV/' || fy || '/' || the number, zero-padded
 * to six digits, as SQLite's "%06lld"). The last column is the counter as
 * it was (the statement's snapshot), for the message of a used-up series.
 */
static int pg_invoice_issue(struct store_conn *c, struct invoice *inv, struct arena *a, int64_t *id)
{
	static const char sql[] =
	        "WITH chk AS ("
	        " SELECT EXISTS (SELECT 1 FROM orders WHERE tenant_id = $1::bigint"
	        " AND id = $2::bigint) AS has_order,"
	        " EXISTS (SELECT 1 FROM invoices WHERE tenant_id = $1::bigint"
	        " AND order_id = $2::bigint) AS has_invoice),"
	        " num AS ("
	        " INSERT INTO invoice_counters AS k (tenant_id, fy, next_seq)"
	        " SELECT $1::bigint, $4::text, 2 FROM chk WHERE has_order AND NOT has_invoice"
	        " ON CONFLICT (tenant_id, fy) DO UPDATE SET next_seq = k.next_seq + 1"
	        " WHERE k.next_seq <= $5::bigint"
	        " RETURNING k.next_seq - 1 AS seq),"
	        " inv AS ("
	        " INSERT INTO invoices (tenant_id, order_id, customer_id, number, fy, seq,"
	        " issued_at, intra_state, place_of_supply, taxable_paise, cgst_paise, sgst_paise,"
	        " igst_paise, round_off_paise, total_paise)"
	        " SELECT $1::bigint, $2::bigint, $3::bigint,"
	        " 'INV/' || $4::text || '/' || lpad(seq::text, greatest(6, length(seq::text)), "
	        "'0'),"
	        " $4::text, seq, $6::bigint, $7::integer, $8::text, $9::bigint, $10::bigint,"
	        " $11::bigint, $12::bigint, $13::bigint, $14::bigint FROM num"
	        " RETURNING id, seq, number)"
	        " SELECT chk.has_order, chk.has_invoice, inv.id, inv.seq, inv.number,"
	        " (SELECT next_seq FROM invoice_counters WHERE tenant_id = $1::bigint"
	        " AND fy = $4::text)"
	        " FROM chk LEFT JOIN inv ON true";
	const char *what = "issue invoice";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, inv->tenant_id, what, &own);
	if (rc < 0)
		return rc;
	if (inv->issued_at <= 0)
		inv->issued_at = clock_wall_ms();
	rc = store__pg_query(c, what, sql, &r, "iiitiiitiiiiii", inv->tenant_id, inv->order_id,
	                     inv->customer_id, inv->fy, max_seq(inv->fy), inv->issued_at,
	                     (int64_t)(inv->intra_state ? 1 : 0), inv->place_of_supply,
	                     inv->taxable_paise, inv->cgst_paise, inv->sgst_paise, inv->igst_paise,
	                     inv->round_off_paise, inv->total_paise);
	if (rc == ERR_CONFLICT) /* another transaction invoiced it meanwhile */
		store__errf(c, rc, "could not issue invoice: order %lld already has one",
		            (long long)inv->order_id);
	if (rc < 0)
		goto done;
	if (PQntuples(r) != 1) {
		rc = store__errf(c, ERR_DB, "could not issue invoice: no answer to the statement");
	} else if (PQgetvalue(r, 0, 0)[0] != 't') {
		/* SQLite's foreign key answers ERR_DB; here nothing was written */
		rc = store__errf(c, ERR_DB, "could not issue invoice: no order %lld",
		                 (long long)inv->order_id);
	} else if (PQgetvalue(r, 0, 1)[0] == 't') {
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not issue invoice: order %lld already has one",
		                 (long long)inv->order_id);
	} else if (PQgetisnull(r, 0, 2)) {
		rc = store__errf(c, ERR_FULL,
		                 "could not issue invoice: the series of FY %s is used up (%lld)",
		                 inv->fy, (long long)store__pg_i64(r, 0, 5));
	} else {
		*id = store__pg_i64(r, 0, 2);
		inv->id = *id;
		inv->seq = store__pg_i64(r, 0, 3);
		inv->number = store__pg_str(r, 0, 4, a);
	}
	PQclear(r);
done:
	return store__pg_op_end(c, own, rc);
}

/*
 * invoice_one reads the invoice that sql (selecting INVOICE_COLS, $1 =
 * tenant_id, $2 = key) finds; key_name names the key in the message of
 * ERR_NOTFOUND.
 */
static int invoice_one(struct store_conn *c, const char *sql, int64_t tenant_id,
                       const char *key_name, int64_t key, struct arena *a, struct invoice *out)
{
	const char *what = "read invoice";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", tenant_id, key);
	if (rc == 0) {
		if (PQntuples(r) == 1)
			read_invoice(r, a, out);
		else
			rc = store__errf(c, ERR_NOTFOUND,
			                 "could not read invoice: no invoice for %s %lld", key_name,
			                 (long long)key);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_invoice_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct invoice *out)
{
	static const char sql[] = "SELECT " INVOICE_COLS " FROM invoices"
	                          " WHERE tenant_id = $1 AND customer_id = $2"
	                          " ORDER BY id DESC LIMIT 1";
	return invoice_one(c, sql, tenant_id, "customer", customer_id, a, out);
}

static int pg_invoice_by_order(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                               struct arena *a, struct invoice *out)
{
	static const char sql[] = "SELECT " INVOICE_COLS " FROM invoices"
	                          " WHERE tenant_id = $1 AND order_id = $2";
	return invoice_one(c, sql, tenant_id, "order", order_id, a, out);
}

/*
 * pg_sales_since: orders confirmed (still confirmed, last changed at or
 * after since) and the invoiced totals of invoices issued since then whose
 * order is still confirmed.
 */
static int pg_sales_since(struct store_conn *c, int64_t tenant_id, int64_t since, int64_t *orders,
                          int64_t *taxable_paise, int64_t *total_paise)
{
	static const char sql[] =
	        "SELECT (SELECT count(*) FROM orders"
	        "         WHERE tenant_id = $1 AND status = 1 AND updated_at >= $2),"
	        " coalesce(sum(i.taxable_paise), 0), coalesce(sum(i.total_paise), 0)"
	        " FROM invoices i JOIN orders o ON o.tenant_id = $1 AND o.id = i.order_id"
	        " WHERE i.tenant_id = $1 AND i.issued_at >= $2 AND o.status = 1";
	const char *what = "sum sales";
	PGresult *r;
	int own;
	*orders = *taxable_paise = *total_paise = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", tenant_id, since);
	if (rc == 0) {
		*orders = store__pg_i64(r, 0, 0);
		*taxable_paise = store__pg_i64(r, 0, 1);
		*total_paise = store__pg_i64(r, 0, 2);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

/* ---- the ops table -------------------------------------------------------------------------- */

/* store__pg_erp_ops puts this file's operations into ops (pg_internal.h). */
void store__pg_erp_ops(struct store_ops *ops)
{
	ops->product_upsert = pg_product_upsert;
	ops->products_list = pg_products_list;
	ops->product_get = pg_product_get;
	ops->product_set_price = pg_product_set_price;
	ops->stock_move = pg_stock_move;
	ops->ledger_sum = pg_ledger_sum;
	ops->products_low = pg_products_low;
	ops->order_create = pg_order_create;
	ops->order_get = pg_order_get;
	ops->order_last = pg_order_last;
	ops->order_last_draft = pg_order_last_draft;
	ops->order_set_status = pg_order_set_status;
	ops->order_set_paid = pg_order_set_paid;
	ops->invoice_issue = pg_invoice_issue;
	ops->invoice_last = pg_invoice_last;
	ops->invoice_by_order = pg_invoice_by_order;
	ops->sales_since = pg_sales_since;
}
