/*
 * sqlite_erp.c - the SQLite backend of the shop's books: catalogue, stock
 * ledger, orders, invoices and the sales summary.
 *
 * Invariants
 *   - Stock moves only through store__sq_stock_move: one guarded UPDATE
 *     (stock + delta >= 0) and one ledger row, under one savepoint, so the
 *     ledger's sum is the stock. The ledger refuses UPDATE and DELETE by
 *     trigger.
 *   - Invoice numbers: one upsert on invoice_counters (tenant, fy) takes the
 *     next sequence number and the invoice row is inserted under the same
 *     savepoint in the caller's transaction. The counter row stays write-
 *     locked until that transaction ends, and a rollback returns the number:
 *     the series has no gaps and no repeats.
 *
 * Threads: as store_sqlite.c; every function uses only its connection.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/sqlite_internal.h"

/* ---- catalogue --------------------------------------------------------------- */

#define PRODUCT_COLS                                                                               \
	"id, tenant_id, sku, name, aliases, unit, base_per_unit, price_paise, gst_rate_bp, "       \
	"hsn, stock"

static void read_product(sqlite3_stmt *st, struct arena *a, struct product *p)
{
	p->id = sqlite3_column_int64(st, 0);
	p->tenant_id = sqlite3_column_int64(st, 1);
	p->sku = store__sq_col(st, 2, a);
	p->name = store__sq_col(st, 3, a);
	p->aliases = store__sq_col(st, 4, a);
	p->unit = store__sq_col(st, 5, a);
	p->base_per_unit = sqlite3_column_int64(st, 6);
	p->price_paise = sqlite3_column_int64(st, 7);
	p->gst_rate_bp = sqlite3_column_int(st, 8);
	p->hsn = store__sq_col(st, 9, a);
	p->stock = sqlite3_column_int64(st, 10);
}

/* product_rows reads every row of st (bound already) into an arena array. */
static int product_rows(struct store_conn *c, sqlite3_stmt *st, struct arena *a,
                        struct product **out, int *n, const char *what)
{
	struct product *arr = NULL;
	int cap = 0, cnt = 0, rc;
	while ((rc = store__sq_step(c, st, what)) == 1) {
		arr = store__sq_grow(a, arr, sizeof(*arr), cnt, &cap);
		read_product(st, a, &arr[cnt++]);
	}
	sqlite3_reset(st);
	*out = arr;
	*n = rc < 0 ? 0 : cnt;
	return rc;
}

/*
 * store__sq_product_upsert: a new (tenant, sku) starts with stock 0; an
 * existing one gets the new name, aliases, unit with its base_per_unit,
 * price, rate and HSN (unit and base_per_unit change together or the
 * stock, kept in base units, would be misread). Stock is never written here.
 */
int store__sq_product_upsert(struct store_conn *c, const struct product *p, int64_t *id)
{
	static const char sql[] =
	        "INSERT INTO products (tenant_id, sku, name, aliases, unit, base_per_unit,"
	        " price_paise, gst_rate_bp, hsn) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
	        " ON CONFLICT (tenant_id, sku) DO UPDATE SET name = excluded.name,"
	        " aliases = excluded.aliases, unit = excluded.unit,"
	        " base_per_unit = excluded.base_per_unit, price_paise = excluded.price_paise,"
	        " gst_rate_bp = excluded.gst_rate_bp, hsn = excluded.hsn"
	        " RETURNING id";
	const char *what = "save product";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_stmt(c, SQ_PRODUCT_UPSERT, sql, &st);
	if (rc < 0)
		goto done;
	int b = store__sq_int(st, 1, p->tenant_id);
	b = b ? b : store__sq_text(st, 2, p->sku);
	b = b ? b : store__sq_text(st, 3, p->name);
	b = b ? b : store__sq_text(st, 4, p->aliases);
	b = b ? b : store__sq_text(st, 5, p->unit);
	b = b ? b : store__sq_int(st, 6, p->base_per_unit);
	b = b ? b : store__sq_int(st, 7, p->price_paise);
	b = b ? b : store__sq_int(st, 8, p->gst_rate_bp);
	b = b ? b : store__sq_text(st, 9, p->hsn);
	if (b) {
		rc = store__sq_bind_err(c, st, b, what);
		goto done;
	}
	rc = store__sq_step(c, st, what);
	if (rc == 1) {
		*id = sqlite3_column_int64(st, 0);
		rc = store__sq_exec(c, st, what);
	} else if (rc == 0) {
		rc = store__errf(c, ERR_DB, "could not save product: no row returned");
	}
	sqlite3_reset(st);
done:
	return store__sq_op_end(c, mode, rc);
}

int store__sq_products_list(struct store_conn *c, int64_t tenant_id, struct arena *a,
                            struct product **out, int *n)
{
	static const char sql[] =
	        "SELECT " PRODUCT_COLS " FROM products WHERE tenant_id = ?1 ORDER BY name, id";
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, SQ_PRODUCTS_LIST, sql, &st);
	*out = NULL;
	*n = 0;
	if (rc < 0)
		return rc;
	if ((rc = store__sq_int(st, 1, tenant_id)) != SQLITE_OK)
		return store__sq_bind_err(c, st, rc, "list products");
	return product_rows(c, st, a, out, n, "list products");
}

int store__sq_products_low(struct store_conn *c, int64_t tenant_id, int64_t threshold_units,
                           struct arena *a, struct product **out, int *n)
{
	static const char sql[] = "SELECT " PRODUCT_COLS " FROM products"
	                          " WHERE tenant_id = ?1 AND stock < ?2 * base_per_unit"
	                          " ORDER BY name, id";
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, SQ_PRODUCTS_LOW, sql, &st);
	*out = NULL;
	*n = 0;
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, threshold_units);
	if (b)
		return store__sq_bind_err(c, st, b, "list low stock");
	return product_rows(c, st, a, out, n, "list low stock");
}

int store__sq_product_get(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                          struct arena *a, struct product *out)
{
	static const char sql[] =
	        "SELECT " PRODUCT_COLS " FROM products WHERE tenant_id = ?1 AND id = ?2";
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, SQ_PRODUCT_GET, sql, &st);
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, product_id);
	if (b)
		return store__sq_bind_err(c, st, b, "read product");
	rc = store__sq_step(c, st, "read product");
	if (rc == 1)
		read_product(st, a, out);
	sqlite3_reset(st);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not read product: no product %lld",
		                   (long long)product_id);
	return rc < 0 ? rc : 0;
}

int store__sq_product_set_price(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                                int64_t price_paise)
{
	static const char sql[] =
	        "UPDATE products SET price_paise = ?3 WHERE tenant_id = ?1 AND id = ?2";
	const char *what = "set price";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_stmt(c, SQ_PRODUCT_SET_PRICE, sql, &st);
	if (rc < 0)
		goto done;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, product_id);
	b = b ? b : store__sq_int(st, 3, price_paise);
	if (b) {
		rc = store__sq_bind_err(c, st, b, what);
		goto done;
	}
	rc = store__sq_exec(c, st, what);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not set price: no product %lld",
		                 (long long)product_id);
done:
	return store__sq_op_end(c, mode, rc);
}

/* ---- stock ledger -------------------------------------------------------------------- */

/* short_stock explains why the guarded UPDATE touched nothing. */
static int short_stock(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t delta)
{
	static const char sql[] = "SELECT stock FROM products WHERE tenant_id = ?1 AND id = ?2";
	const char *what = "move stock";
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, SQ_PRODUCT_EXISTS, sql, &st);
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, product_id);
	if (b)
		return store__sq_bind_err(c, st, b, what);
	rc = store__sq_step(c, st, what);
	int64_t stock = rc == 1 ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not move stock: no product %lld",
		                   (long long)product_id);
	return store__errf(c, ERR_CONFLICT,
	                   "could not move stock of product %lld: %lld on hand, change %lld "
	                   "would go below zero",
	                   (long long)product_id, (long long)stock, (long long)delta);
}

int store__sq_stock_move(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t delta,
                         const char *reason, int64_t ref_id, int64_t *stock_after)
{
	static const char upd[] = "UPDATE products SET stock = stock + ?3"
	                          " WHERE tenant_id = ?1 AND id = ?2 AND stock + ?3 >= 0"
	                          " RETURNING stock";
	static const char ins[] =
	        "INSERT INTO stock_ledger (tenant_id, product_id, delta, reason, ref_id,"
	        " created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
	const char *what = "move stock";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int b, rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_stmt(c, SQ_STOCK_UPDATE, upd, &st);
	if (rc < 0)
		goto done;
	b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, product_id);
	b = b ? b : store__sq_int(st, 3, delta);
	if (b) {
		rc = store__sq_bind_err(c, st, b, what);
		goto done;
	}
	rc = store__sq_step(c, st, what);
	int moved = rc == 1;
	if (moved) {
		*stock_after = sqlite3_column_int64(st, 0);
		rc = store__sq_exec(c, st, what);
	}
	sqlite3_reset(st);
	if (rc == 0 && !moved) /* no row: unknown product or short stock */
		rc = short_stock(c, tenant_id, product_id, delta);
	if (rc < 0)
		goto done;

	rc = store__sq_stmt(c, SQ_LEDGER_INSERT, ins, &st);
	if (rc < 0)
		goto done;
	b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, product_id);
	b = b ? b : store__sq_int(st, 3, delta);
	b = b ? b : store__sq_text(st, 4, reason);
	b = b ? b : store__sq_int(st, 5, ref_id);
	b = b ? b : store__sq_int(st, 6, clock_wall_ms());
	if (b) {
		rc = store__sq_bind_err(c, st, b, what);
		goto done;
	}
	rc = store__sq_exec(c, st, what);
done:
	return store__sq_op_end(c, mode, rc);
}

int store__sq_ledger_sum(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t *sum)
{
	static const char sql[] = "SELECT coalesce(sum(delta), 0) FROM stock_ledger"
	                          " WHERE tenant_id = ?1 AND product_id = ?2";
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, SQ_LEDGER_SUM, sql, &st);
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, product_id);
	if (b)
		return store__sq_bind_err(c, st, b, "sum ledger");
	rc = store__sq_step(c, st, "sum ledger");
	*sum = rc == 1 ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

/* ---- orders ---------------------------------------------------------------------------- */

#define ORDER_COLS "id, tenant_id, customer_id, status, total_paise, created_at, updated_at"

int store__sq_order_create(struct store_conn *c, const struct order *o, int64_t *id)
{
	static const char ins[] =
	        "INSERT INTO orders (tenant_id, customer_id, status, total_paise, created_at,"
	        " updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?5)";
	static const char line[] =
	        "INSERT INTO order_lines (order_id, line_no, product_id, name, unit,"
	        " base_per_unit, qty_base, price_paise, gst_rate_bp, hsn, amount_paise)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";
	const char *what = "create order";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int64_t oid;
	int b, rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_stmt(c, SQ_ORDER_INSERT, ins, &st);
	if (rc < 0)
		goto done;
	b = store__sq_int(st, 1, o->tenant_id);
	b = b ? b : store__sq_int(st, 2, o->customer_id);
	b = b ? b : store__sq_int(st, 3, o->status);
	b = b ? b : store__sq_int(st, 4, o->total_paise);
	b = b ? b : store__sq_int(st, 5, o->created_at > 0 ? o->created_at : clock_wall_ms());
	if (b) {
		rc = store__sq_bind_err(c, st, b, what);
		goto done;
	}
	rc = store__sq_exec(c, st, what);
	if (rc < 0)
		goto done;
	oid = sqlite3_last_insert_rowid(store__sq_db(c));

	for (int i = 0; i < o->nlines; i++) {
		const struct order_line *l = &o->lines[i];
		rc = store__sq_stmt(c, SQ_ORDER_LINE_INSERT, line, &st);
		if (rc < 0)
			goto done;
		b = store__sq_int(st, 1, oid);
		b = b ? b : store__sq_int(st, 2, i + 1);
		b = b ? b : store__sq_int(st, 3, l->product_id);
		b = b ? b : store__sq_text(st, 4, l->name);
		b = b ? b : store__sq_text(st, 5, l->unit);
		b = b ? b : store__sq_int(st, 6, l->base_per_unit);
		b = b ? b : store__sq_int(st, 7, l->qty_base);
		b = b ? b : store__sq_int(st, 8, l->price_paise);
		b = b ? b : store__sq_int(st, 9, l->gst_rate_bp);
		b = b ? b : store__sq_text(st, 10, l->hsn);
		b = b ? b : store__sq_int(st, 11, l->amount_paise);
		if (b) {
			rc = store__sq_bind_err(c, st, b, what);
			goto done;
		}
		rc = store__sq_exec(c, st, what);
		if (rc < 0)
			goto done;
	}
	*id = oid;
done:
	return store__sq_op_end(c, mode, rc);
}

/*
 * order_read runs st (bound already; selects ORDER_COLS) for one order and
 * then reads its lines. ERR_NOTFOUND without a message when there is none.
 */
static int order_read(struct store_conn *c, sqlite3_stmt *st, struct arena *a, struct order *o)
{
	static const char sql[] = "SELECT product_id, name, unit, base_per_unit, qty_base,"
	                          " price_paise, gst_rate_bp, hsn, amount_paise"
	                          " FROM order_lines WHERE order_id = ?1 ORDER BY line_no";
	const char *what = "read order";
	int cap = 0, rc = store__sq_step(c, st, what);
	if (rc == 1) {
		o->id = sqlite3_column_int64(st, 0);
		o->tenant_id = sqlite3_column_int64(st, 1);
		o->customer_id = sqlite3_column_int64(st, 2);
		o->status = (enum order_status)sqlite3_column_int(st, 3);
		o->total_paise = sqlite3_column_int64(st, 4);
		o->created_at = sqlite3_column_int64(st, 5);
		o->updated_at = sqlite3_column_int64(st, 6);
		o->nlines = 0;
		o->lines = NULL;
	}
	sqlite3_reset(st);
	if (rc <= 0)
		return rc == 0 ? ERR_NOTFOUND : rc;

	rc = store__sq_stmt(c, SQ_ORDER_LINES, sql, &st);
	if (rc < 0)
		return rc;
	if ((rc = store__sq_int(st, 1, o->id)) != SQLITE_OK)
		return store__sq_bind_err(c, st, rc, what);
	while ((rc = store__sq_step(c, st, what)) == 1) {
		o->lines = store__sq_grow(a, o->lines, sizeof(*o->lines), o->nlines, &cap);
		struct order_line *l = &o->lines[o->nlines++];
		l->product_id = sqlite3_column_int64(st, 0);
		l->name = store__sq_col(st, 1, a);
		l->unit = store__sq_col(st, 2, a);
		l->base_per_unit = sqlite3_column_int64(st, 3);
		l->qty_base = sqlite3_column_int64(st, 4);
		l->price_paise = sqlite3_column_int64(st, 5);
		l->gst_rate_bp = sqlite3_column_int(st, 6);
		l->hsn = store__sq_col(st, 7, a);
		l->amount_paise = sqlite3_column_int64(st, 8);
	}
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

int store__sq_order_get(struct store_conn *c, int64_t tenant_id, int64_t order_id, struct arena *a,
                        struct order *out)
{
	static const char sql[] =
	        "SELECT " ORDER_COLS " FROM orders WHERE tenant_id = ?1 AND id = ?2";
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, SQ_ORDER_GET, sql, &st);
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, order_id);
	if (b)
		return store__sq_bind_err(c, st, b, "read order");
	rc = order_read(c, st, a, out);
	if (rc == ERR_NOTFOUND)
		store__errf(c, rc, "could not read order: no order %lld", (long long)order_id);
	return rc;
}

static int order_last(struct store_conn *c, enum sq_stmt id, const char *sql, int64_t tenant_id,
                      int64_t customer_id, struct arena *a, struct order *out)
{
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, id, sql, &st);
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, customer_id);
	if (b)
		return store__sq_bind_err(c, st, b, "read order");
	rc = order_read(c, st, a, out);
	if (rc == ERR_NOTFOUND)
		store__errf(c, rc, "could not read order: customer %lld has %s",
		            (long long)customer_id, id == SQ_ORDER_LAST ? "no order" : "no draft");
	return rc;
}

int store__sq_order_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                         struct arena *a, struct order *out)
{
	static const char sql[] = "SELECT " ORDER_COLS " FROM orders"
	                          " WHERE tenant_id = ?1 AND customer_id = ?2"
	                          " ORDER BY id DESC LIMIT 1";
	return order_last(c, SQ_ORDER_LAST, sql, tenant_id, customer_id, a, out);
}

int store__sq_order_last_draft(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                               struct arena *a, struct order *out)
{
	static const char sql[] = "SELECT " ORDER_COLS " FROM orders"
	                          " WHERE tenant_id = ?1 AND customer_id = ?2 AND status = 0"
	                          " ORDER BY id DESC LIMIT 1";
	return order_last(c, SQ_ORDER_LAST_DRAFT, sql, tenant_id, customer_id, a, out);
}

int store__sq_order_set_status(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                               enum order_status from, enum order_status to)
{
	static const char upd[] = "UPDATE orders SET status = ?4, updated_at = ?5"
	                          " WHERE tenant_id = ?1 AND id = ?2 AND status = ?3";
	static const char sel[] = "SELECT status FROM orders WHERE tenant_id = ?1 AND id = ?2";
	const char *what = "change order status";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int b, rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_stmt(c, SQ_ORDER_SET_STATUS, upd, &st);
	if (rc < 0)
		goto done;
	b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, order_id);
	b = b ? b : store__sq_int(st, 3, from);
	b = b ? b : store__sq_int(st, 4, to);
	b = b ? b : store__sq_int(st, 5, clock_wall_ms());
	if (b) {
		rc = store__sq_bind_err(c, st, b, what);
		goto done;
	}
	rc = store__sq_exec(c, st, what);
	if (rc < 0 || sqlite3_changes(store__sq_db(c)) > 0)
		goto done;

	/* nothing changed: say whether the order is missing or elsewhere */
	rc = store__sq_stmt(c, SQ_ORDER_EXISTS, sel, &st);
	if (rc < 0)
		goto done;
	b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, order_id);
	if (b) {
		rc = store__sq_bind_err(c, st, b, what);
		goto done;
	}
	rc = store__sq_step(c, st, what);
	int now = rc == 1 ? sqlite3_column_int(st, 0) : 0;
	sqlite3_reset(st);
	if (rc == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not change order status: no order %lld",
		                 (long long)order_id);
	else if (rc == 1)
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not change order %lld from status %d to %d: it is in "
		                 "status %d",
		                 (long long)order_id, (int)from, (int)to, now);
done:
	return store__sq_op_end(c, mode, rc);
}

/* ---- invoices ---------------------------------------------------------------------------- */

#define INVOICE_COLS                                                                               \
	"id, tenant_id, order_id, customer_id, number, fy, seq, issued_at, intra_state,"           \
	" place_of_supply, taxable_paise, cgst_paise, sgst_paise, igst_paise,"                     \
	" round_off_paise, total_paise"

/* The longest number GST allows (Rule 46: at most 16 characters). */
#define INVOICE_NUMBER_MAX 16

static void read_invoice(sqlite3_stmt *st, struct arena *a, struct invoice *v)
{
	v->id = sqlite3_column_int64(st, 0);
	v->tenant_id = sqlite3_column_int64(st, 1);
	v->order_id = sqlite3_column_int64(st, 2);
	v->customer_id = sqlite3_column_int64(st, 3);
	v->number = store__sq_col(st, 4, a);
	v->fy = store__sq_col(st, 5, a);
	v->seq = sqlite3_column_int64(st, 6);
	v->issued_at = sqlite3_column_int64(st, 7);
	v->intra_state = sqlite3_column_int(st, 8);
	v->place_of_supply = store__sq_col(st, 9, a);
	v->taxable_paise = sqlite3_column_int64(st, 10);
	v->cgst_paise = sqlite3_column_int64(st, 11);
	v->sgst_paise = sqlite3_column_int64(st, 12);
	v->igst_paise = sqlite3_column_int64(st, 13);
	v->round_off_paise = sqlite3_column_int64(st, 14);
	v->total_paise = sqlite3_column_int64(st, 15);
}

/* next_seq takes the next number of (tenant, fy): 1 for a new series. */
static int next_seq(struct store_conn *c, int64_t tenant_id, const char *fy, int64_t *seq)
{
	static const char sql[] =
	        "INSERT INTO invoice_counters (tenant_id, fy, next_seq) VALUES (?1, ?2, 2)"
	        " ON CONFLICT (tenant_id, fy) DO UPDATE SET next_seq = next_seq + 1"
	        " RETURNING next_seq - 1";
	const char *what = "take invoice number";
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, SQ_INVOICE_COUNTER, sql, &st);
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_text(st, 2, fy);
	if (b)
		return store__sq_bind_err(c, st, b, what);
	rc = store__sq_step(c, st, what);
	if (rc == 1) {
		*seq = sqlite3_column_int64(st, 0);
		rc = store__sq_exec(c, st, what);
	} else if (rc == 0) {
		rc = store__errf(c, ERR_DB, "could not take invoice number: no row returned");
	}
	sqlite3_reset(st);
	return rc;
}

int store__sq_invoice_issue(struct store_conn *c, struct invoice *inv, struct arena *a, int64_t *id)
{
	static const char sql[] =
	        "INSERT INTO invoices (tenant_id, order_id, customer_id, number, fy, seq,"
	        " issued_at, intra_state, place_of_supply, taxable_paise, cgst_paise, sgst_paise,"
	        " igst_paise, round_off_paise, total_paise)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
	const char *what = "issue invoice";
	char number[64];
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int64_t seq = 0;
	int b, rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = next_seq(c, inv->tenant_id, inv->fy, &seq);
	if (rc < 0)
		goto done;
	int len = snprintf(number, sizeof(number), "INV/%s/%06lld", inv->fy, (long long)seq);
	if (len < 0 || len > INVOICE_NUMBER_MAX) {
		rc = store__errf(c, ERR_FULL,
		                 "could not issue invoice: the series of FY %s is used up (%lld)",
		                 inv->fy, (long long)seq);
		goto done;
	}
	if (inv->issued_at <= 0)
		inv->issued_at = clock_wall_ms();

	rc = store__sq_stmt(c, SQ_INVOICE_INSERT, sql, &st);
	if (rc < 0)
		goto done;
	b = store__sq_int(st, 1, inv->tenant_id);
	b = b ? b : store__sq_int(st, 2, inv->order_id);
	b = b ? b : store__sq_int(st, 3, inv->customer_id);
	b = b ? b : store__sq_text(st, 4, number);
	b = b ? b : store__sq_text(st, 5, inv->fy);
	b = b ? b : store__sq_int(st, 6, seq);
	b = b ? b : store__sq_int(st, 7, inv->issued_at);
	b = b ? b : store__sq_int(st, 8, inv->intra_state ? 1 : 0);
	b = b ? b : store__sq_text(st, 9, inv->place_of_supply);
	b = b ? b : store__sq_int(st, 10, inv->taxable_paise);
	b = b ? b : store__sq_int(st, 11, inv->cgst_paise);
	b = b ? b : store__sq_int(st, 12, inv->sgst_paise);
	b = b ? b : store__sq_int(st, 13, inv->igst_paise);
	b = b ? b : store__sq_int(st, 14, inv->round_off_paise);
	b = b ? b : store__sq_int(st, 15, inv->total_paise);
	if (b) {
		rc = store__sq_bind_err(c, st, b, what);
		goto done;
	}
	rc = store__sq_exec(c, st, what);
	if (rc == ERR_CONFLICT) {
		store__errf(c, rc, "could not issue invoice: order %lld already has one",
		            (long long)inv->order_id);
		goto done;
	}
	if (rc < 0)
		goto done;
	*id = sqlite3_last_insert_rowid(store__sq_db(c));
	inv->id = *id;
	inv->seq = seq;
	inv->number = arena_strdup(a, number);
done:
	return store__sq_op_end(c, mode, rc);
}

static int invoice_one(struct store_conn *c, enum sq_stmt id, const char *sql, int64_t tenant_id,
                       int64_t key, struct arena *a, struct invoice *out)
{
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, id, sql, &st);
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, key);
	if (b)
		return store__sq_bind_err(c, st, b, "read invoice");
	rc = store__sq_step(c, st, "read invoice");
	if (rc == 1)
		read_invoice(st, a, out);
	sqlite3_reset(st);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND,
		                   "could not read invoice: no invoice for %s %lld",
		                   id == SQ_INVOICE_LAST ? "customer" : "order", (long long)key);
	return rc < 0 ? rc : 0;
}

int store__sq_invoice_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct invoice *out)
{
	static const char sql[] = "SELECT " INVOICE_COLS " FROM invoices"
	                          " WHERE tenant_id = ?1 AND customer_id = ?2"
	                          " ORDER BY id DESC LIMIT 1";
	return invoice_one(c, SQ_INVOICE_LAST, sql, tenant_id, customer_id, a, out);
}

int store__sq_invoice_by_order(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                               struct arena *a, struct invoice *out)
{
	static const char sql[] = "SELECT " INVOICE_COLS " FROM invoices"
	                          " WHERE tenant_id = ?1 AND order_id = ?2";
	return invoice_one(c, SQ_INVOICE_BY_ORDER, sql, tenant_id, order_id, a, out);
}

/*
 * store__sq_sales_since: orders confirmed (still confirmed, last changed at
 * or after since) and the invoiced totals of invoices issued since then
 * whose order is still confirmed.
 */
int store__sq_sales_since(struct store_conn *c, int64_t tenant_id, int64_t since, int64_t *orders,
                          int64_t *taxable_paise, int64_t *total_paise)
{
	static const char sql[] =
	        "SELECT (SELECT count(*) FROM orders"
	        "         WHERE tenant_id = ?1 AND status = 1 AND updated_at >= ?2),"
	        " coalesce(sum(i.taxable_paise), 0), coalesce(sum(i.total_paise), 0)"
	        " FROM invoices i JOIN orders o ON o.id = i.order_id"
	        " WHERE i.tenant_id = ?1 AND i.issued_at >= ?2 AND o.status = 1";
	sqlite3_stmt *st;
	int rc = store__sq_stmt(c, SQ_SALES_SINCE, sql, &st);
	*orders = *taxable_paise = *total_paise = 0;
	if (rc < 0)
		return rc;
	int b = store__sq_int(st, 1, tenant_id);
	b = b ? b : store__sq_int(st, 2, since);
	if (b)
		return store__sq_bind_err(c, st, b, "sum sales");
	rc = store__sq_step(c, st, "sum sales");
	if (rc == 1) {
		*orders = sqlite3_column_int64(st, 0);
		*taxable_paise = sqlite3_column_int64(st, 1);
		*total_paise = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}
