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
 *   - Marketing (the end of this file): a customer's opt-out is a flag on
 *     the customer; cancelling their pending marketing moves rows of the
 *     outbox and counts the move (store__sq_count) like every outbox
 *     writer, so outbox_counts stays exact. The merchant API's token is
 *     kept only as its SHA-256.
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

static void read_product(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct product *p = row;
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
	rc = store__sq_prep(c, SQ_PRODUCT_UPSERT, sql, what, &st, "ittttiiit", p->tenant_id, p->sku,
	                    p->name, p->aliases, p->unit, p->base_per_unit, p->price_paise,
	                    (int64_t)p->gst_rate_bp, p->hsn);
	if (rc == 0)
		rc = store__sq_returning(c, st, what, store__sq_read_int64, NULL, id);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_products_list(struct store_conn *c, int64_t tenant_id, struct arena *a,
                            struct product **out, int *n)
{
	static const char sql[] =
	        "SELECT " PRODUCT_COLS " FROM products WHERE tenant_id = ?1 ORDER BY name, id";
	const char *what = "list products";
	sqlite3_stmt *st;
	void *rows = NULL;
	*n = 0;
	int rc = store__sq_prep(c, SQ_PRODUCTS_LIST, sql, what, &st, "i", tenant_id);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**out), read_product, &rows, n);
	*out = rows;
	return rc;
}

int store__sq_products_low(struct store_conn *c, int64_t tenant_id, int64_t threshold_units,
                           struct arena *a, struct product **out, int *n)
{
	static const char sql[] = "SELECT " PRODUCT_COLS " FROM products"
	                          " WHERE tenant_id = ?1 AND stock < ?2 * base_per_unit"
	                          " ORDER BY name, id";
	const char *what = "list low stock";
	sqlite3_stmt *st;
	void *rows = NULL;
	*n = 0;
	int rc = store__sq_prep(c, SQ_PRODUCTS_LOW, sql, what, &st, "ii", tenant_id,
	                        threshold_units);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**out), read_product, &rows, n);
	*out = rows;
	return rc;
}

int store__sq_product_get(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                          struct arena *a, struct product *out)
{
	static const char sql[] =
	        "SELECT " PRODUCT_COLS " FROM products WHERE tenant_id = ?1 AND id = ?2";
	const char *what = "read product";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_PRODUCT_GET, sql, what, &st, "ii", tenant_id, product_id);
	if (rc < 0)
		return rc;
	rc = store__sq_one(c, st, what, read_product, a, out);
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
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_PRODUCT_SET_PRICE, sql, what, "iii", tenant_id, product_id,
	                   price_paise);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not set price: no product %lld",
		                 (long long)product_id);
	return store__sq_op_end(c, mode, rc);
}

/* ---- stock ledger -------------------------------------------------------------------- */

/* short_stock explains why the guarded UPDATE touched nothing: always an
 * ERR_* (ERR_NOTFOUND, ERR_CONFLICT or the error met). */
static int short_stock(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t delta)
{
	static const char sql[] = "SELECT stock FROM products WHERE tenant_id = ?1 AND id = ?2";
	const char *what = "move stock";
	sqlite3_stmt *st;
	int64_t stock = 0;
	int rc = store__sq_prep(c, SQ_PRODUCT_EXISTS, sql, what, &st, "ii", tenant_id, product_id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, &stock);
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
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_prep(c, SQ_STOCK_UPDATE, upd, what, &st, "iii", tenant_id, product_id,
	                    delta);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, stock_after);
	if (rc == 0) /* no row: unknown product or short stock */
		rc = short_stock(c, tenant_id, product_id, delta);
	if (rc == 1) /* moved: the ledger records it */
		rc = store__sq_run(c, SQ_LEDGER_INSERT, ins, what, "iiitii", tenant_id, product_id,
		                   delta, reason, ref_id, clock_wall_ms());
	return store__sq_op_end(c, mode, rc);
}

int store__sq_ledger_sum(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t *sum)
{
	static const char sql[] = "SELECT coalesce(sum(delta), 0) FROM stock_ledger"
	                          " WHERE tenant_id = ?1 AND product_id = ?2";
	const char *what = "sum ledger";
	sqlite3_stmt *st;
	*sum = 0;
	int rc = store__sq_prep(c, SQ_LEDGER_SUM, sql, what, &st, "ii", tenant_id, product_id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, sum);
	return rc < 0 ? rc : 0;
}

/* ---- orders ---------------------------------------------------------------------------- */

#define ORDER_COLS                                                                                 \
	"id, tenant_id, customer_id, status, total_paise, created_at, updated_at, paid_at"

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
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_ORDER_INSERT, ins, what, "iiiii", o->tenant_id, o->customer_id,
	                   (int64_t)o->status, o->total_paise,
	                   o->created_at > 0 ? o->created_at : clock_wall_ms());
	if (rc < 0)
		goto done;
	int64_t oid = sqlite3_last_insert_rowid(store__sq_db(c));

	for (int i = 0; i < o->nlines; i++) {
		const struct order_line *l = &o->lines[i];
		rc = store__sq_run(c, SQ_ORDER_LINE_INSERT, line, what, "iiittiiiiti", oid,
		                   (int64_t)i + 1, l->product_id, l->name, l->unit,
		                   l->base_per_unit, l->qty_base, l->price_paise,
		                   (int64_t)l->gst_rate_bp, l->hsn, l->amount_paise);
		if (rc < 0)
			goto done;
	}
	*id = oid;
done:
	return store__sq_op_end(c, mode, rc);
}

static void read_order(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct order *o = row;
	(void)a;
	o->id = sqlite3_column_int64(st, 0);
	o->tenant_id = sqlite3_column_int64(st, 1);
	o->customer_id = sqlite3_column_int64(st, 2);
	o->status = (enum order_status)sqlite3_column_int(st, 3);
	o->total_paise = sqlite3_column_int64(st, 4);
	o->created_at = sqlite3_column_int64(st, 5);
	o->updated_at = sqlite3_column_int64(st, 6);
	o->paid_at = sqlite3_column_int64(st, 7);
	o->nlines = 0;
	o->lines = NULL;
}

static void read_order_line(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct order_line *l = row;
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

/*
 * order_one reads the order that statement id (text sql, selecting
 * ORDER_COLS with parameters ?1 = tenant_id, ?2 = key) finds, then its
 * lines. ERR_NOTFOUND without a message when there is none.
 */
static int order_one(struct store_conn *c, enum sq_stmt id, const char *sql, int64_t tenant_id,
                     int64_t key, struct arena *a, struct order *o)
{
	static const char lines[] = "SELECT product_id, name, unit, base_per_unit, qty_base,"
	                            " price_paise, gst_rate_bp, hsn, amount_paise"
	                            " FROM order_lines WHERE order_id = ?1 ORDER BY line_no";
	const char *what = "read order";
	sqlite3_stmt *st;
	void *rows;
	int rc = store__sq_prep(c, id, sql, what, &st, "ii", tenant_id, key);
	if (rc == 0)
		rc = store__sq_one(c, st, what, read_order, NULL, o);
	if (rc <= 0)
		return rc == 0 ? ERR_NOTFOUND : rc;

	rc = store__sq_prep(c, SQ_ORDER_LINES, lines, what, &st, "i", o->id);
	if (rc < 0)
		return rc;
	rc = store__sq_rows(c, st, what, a, sizeof(*o->lines), read_order_line, &rows, &o->nlines);
	o->lines = rows;
	return rc;
}

int store__sq_order_get(struct store_conn *c, int64_t tenant_id, int64_t order_id, struct arena *a,
                        struct order *out)
{
	static const char sql[] =
	        "SELECT " ORDER_COLS " FROM orders WHERE tenant_id = ?1 AND id = ?2";
	int rc = order_one(c, SQ_ORDER_GET, sql, tenant_id, order_id, a, out);
	if (rc == ERR_NOTFOUND)
		store__errf(c, rc, "could not read order: no order %lld", (long long)order_id);
	return rc;
}

/* order_last reads the customer's newest order that statement id (text sql)
 * selects; none says what the customer has not when there is none. */
static int order_last(struct store_conn *c, enum sq_stmt id, const char *sql, int64_t tenant_id,
                      int64_t customer_id, const char *none, struct arena *a, struct order *out)
{
	int rc = order_one(c, id, sql, tenant_id, customer_id, a, out);
	if (rc == ERR_NOTFOUND)
		store__errf(c, rc, "could not read order: customer %lld has %s",
		            (long long)customer_id, none);
	return rc;
}

int store__sq_order_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                         struct arena *a, struct order *out)
{
	static const char sql[] = "SELECT " ORDER_COLS " FROM orders"
	                          " WHERE tenant_id = ?1 AND customer_id = ?2"
	                          " ORDER BY id DESC LIMIT 1";
	return order_last(c, SQ_ORDER_LAST, sql, tenant_id, customer_id, "no order", a, out);
}

int store__sq_order_last_draft(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                               struct arena *a, struct order *out)
{
	static const char sql[] = "SELECT " ORDER_COLS " FROM orders"
	                          " WHERE tenant_id = ?1 AND customer_id = ?2 AND status = 0"
	                          " ORDER BY id DESC LIMIT 1";
	return order_last(c, SQ_ORDER_LAST_DRAFT, sql, tenant_id, customer_id, "no draft", a, out);
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
	int64_t now = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_ORDER_SET_STATUS, upd, what, "iiiii", tenant_id, order_id,
	                   (int64_t)from, (int64_t)to, clock_wall_ms());
	if (rc < 0 || sqlite3_changes(store__sq_db(c)) > 0)
		goto done;

	/* nothing changed: say whether the order is missing or elsewhere */
	rc = store__sq_prep(c, SQ_ORDER_EXISTS, sel, what, &st, "ii", tenant_id, order_id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, &now);
	if (rc == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not change order status: no order %lld",
		                 (long long)order_id);
	else if (rc == 1)
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not change order %lld from status %d to %d: it is in "
		                 "status %d",
		                 (long long)order_id, (int)from, (int)to, (int)now);
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

static void read_invoice(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct invoice *v = row;
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
	int rc = store__sq_prep(c, SQ_INVOICE_COUNTER, sql, what, &st, "it", tenant_id, fy);
	if (rc < 0)
		return rc;
	return store__sq_returning(c, st, what, store__sq_read_int64, NULL, seq);
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
	int64_t seq = 0;
	int rc = store__sq_op_begin(c, 1, what, &mode);
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

	rc = store__sq_run(c, SQ_INVOICE_INSERT, sql, what, "iiittiiitiiiiii", inv->tenant_id,
	                   inv->order_id, inv->customer_id, number, inv->fy, seq, inv->issued_at,
	                   (int64_t)(inv->intra_state ? 1 : 0), inv->place_of_supply,
	                   inv->taxable_paise, inv->cgst_paise, inv->sgst_paise, inv->igst_paise,
	                   inv->round_off_paise, inv->total_paise);
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

/*
 * invoice_one reads the invoice that statement id (text sql, selecting
 * INVOICE_COLS with parameters ?1 = tenant_id, ?2 = key) finds; key_name
 * names the key in the message of ERR_NOTFOUND.
 */
static int invoice_one(struct store_conn *c, enum sq_stmt id, const char *sql, int64_t tenant_id,
                       const char *key_name, int64_t key, struct arena *a, struct invoice *out)
{
	const char *what = "read invoice";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, id, sql, what, &st, "ii", tenant_id, key);
	if (rc < 0)
		return rc;
	rc = store__sq_one(c, st, what, read_invoice, a, out);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND,
		                   "could not read invoice: no invoice for %s %lld", key_name,
		                   (long long)key);
	return rc < 0 ? rc : 0;
}

int store__sq_invoice_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct invoice *out)
{
	static const char sql[] = "SELECT " INVOICE_COLS " FROM invoices"
	                          " WHERE tenant_id = ?1 AND customer_id = ?2"
	                          " ORDER BY id DESC LIMIT 1";
	return invoice_one(c, SQ_INVOICE_LAST, sql, tenant_id, "customer", customer_id, a, out);
}

int store__sq_invoice_by_order(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                               struct arena *a, struct invoice *out)
{
	static const char sql[] = "SELECT " INVOICE_COLS " FROM invoices"
	                          " WHERE tenant_id = ?1 AND order_id = ?2";
	return invoice_one(c, SQ_INVOICE_BY_ORDER, sql, tenant_id, "order", order_id, a, out);
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
	const char *what = "sum sales";
	sqlite3_stmt *st;
	*orders = *taxable_paise = *total_paise = 0;
	int rc = store__sq_prep(c, SQ_SALES_SINCE, sql, what, &st, "ii", tenant_id, since);
	if (rc < 0)
		return rc;
	rc = store__sq_step(c, st, what);
	if (rc == 1) {
		*orders = sqlite3_column_int64(st, 0);
		*taxable_paise = sqlite3_column_int64(st, 1);
		*total_paise = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	return rc < 0 ? rc : 0;
}

/* ---- orders: payment ---------------------------------------------------------------------- */

/* The state of an order for the payment gate: status and paid_at. */
struct paid_state {
	int64_t status, paid_at;
};

static void read_paid_state(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct paid_state *p = row;
	(void)a;
	p->status = sqlite3_column_int64(st, 0);
	p->paid_at = sqlite3_column_int64(st, 1);
}

/*
 * store__sq_order_set_paid: one guarded UPDATE (confirmed, not yet paid) is
 * the gate, so a second "paid" for the same order changes nothing; when it
 * touches no row, the order's state says why.
 */
int store__sq_order_set_paid(struct store_conn *c, int64_t tenant_id, int64_t order_id, int64_t at,
                             int64_t *paid_at)
{
	static const char upd[] =
	        "UPDATE orders SET paid_at = ?3"
	        " WHERE tenant_id = ?1 AND id = ?2 AND status = 1 AND paid_at = 0";
	static const char sel[] =
	        "SELECT status, paid_at FROM orders WHERE tenant_id = ?1 AND id = ?2";
	const char *what = "mark order paid";
	struct paid_state ps = {0, 0};
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	*paid_at = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_ORDER_SET_PAID, upd, what, "iii", tenant_id, order_id, at);
	if (rc < 0)
		goto done;
	if (sqlite3_changes(store__sq_db(c)) > 0) {
		*paid_at = at;
		goto done;
	}
	rc = store__sq_prep(c, SQ_ORDER_PAID_STATE, sel, what, &st, "ii", tenant_id, order_id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, read_paid_state, NULL, &ps);
	if (rc == 0) {
		rc = store__errf(c, ERR_NOTFOUND, "could not mark order paid: no order %lld",
		                 (long long)order_id);
	} else if (rc == 1 && ps.paid_at > 0) {
		*paid_at = ps.paid_at;
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not mark order %lld paid: it was marked paid already",
		                 (long long)order_id);
	} else if (rc == 1) {
		rc = store__errf(
		        c, ERR_CONFLICT,
		        "could not mark order %lld paid: it is in status %d, not confirmed",
		        (long long)order_id, (int)ps.status);
	}
done:
	return store__sq_op_end(c, mode, rc);
}

/* ---- marketing: templates and API tokens ---------------------------------------------------- */

static void read_template(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct tenant_template *t = row;
	t->name = store__sq_col(st, 0, a);
	t->lang = store__sq_col(st, 1, a);
}

int store__sq_tenant_template(struct store_conn *c, int64_t tenant_id, struct arena *a,
                              struct tenant_template *out)
{
	static const char sql[] = "SELECT template_name, template_lang FROM tenants WHERE id = ?1";
	const char *what = "read template";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_TENANT_TEMPLATE, sql, what, &st, "i", tenant_id);
	if (rc < 0)
		return rc;
	rc = store__sq_one(c, st, what, read_template, a, out);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not read template: no tenant %lld",
		                   (long long)tenant_id);
	return rc < 0 ? rc : 0;
}

/* update_tenant runs one UPDATE of tenant ?1 (statement id, text sql, its
 * parameters in types and the values after); ERR_NOTFOUND when there is no
 * such tenant. */
static int update_tenant(struct store_conn *c, enum sq_stmt id, const char *sql, const char *what,
                         int64_t tenant_id, const char *a1, const char *a2)
{
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = a2 ? store__sq_run(c, id, sql, what, "itt", tenant_id, a1, a2)
	        : store__sq_run(c, id, sql, what, "it", tenant_id, a1);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not %s: no tenant %lld", what,
		                 (long long)tenant_id);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_tenant_set_template(struct store_conn *c, int64_t tenant_id, const char *name,
                                  const char *lang)
{
	static const char sql[] =
	        "UPDATE tenants SET template_name = ?2, template_lang = ?3 WHERE id = ?1";
	return update_tenant(c, SQ_TENANT_SET_TEMPLATE, sql, "set template", tenant_id, name,
	                     *name ? lang : "");
}

int store__sq_tenant_set_token_hash(struct store_conn *c, int64_t tenant_id, const char *hash)
{
	static const char sql[] = "UPDATE tenants SET api_token_hash = ?2 WHERE id = ?1";
	return update_tenant(c, SQ_TENANT_SET_TOKEN, sql, "set API token", tenant_id, hash, NULL);
}

int store__sq_tenant_by_token_hash(struct store_conn *c, const char *hash, int64_t *tenant_id)
{
	static const char sql[] = "SELECT id FROM tenants WHERE api_token_hash = ?1"
	                          " AND api_token_hash <> ''"; /* the partial index */
	const char *what = "find tenant by token";
	sqlite3_stmt *st;
	*tenant_id = 0;
	int rc = store__sq_prep(c, SQ_TENANT_BY_TOKEN, sql, what, &st, "t", hash);
	if (rc < 0)
		return rc;
	rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, tenant_id);
	if (rc == 0) /* the hash is not echoed: it is as good as a password's */
		return store__errf(c, ERR_NOTFOUND,
		                   "could not find tenant: no tenant has that token");
	return rc < 0 ? rc : 0;
}

/* ---- marketing: customers ---------------------------------------------------------- */

int store__sq_customer_get(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct customer *out)
{
	static const char sql[] = "SELECT id, tenant_id, wa_id, name, state_code, last_inbound_at"
	                          " FROM customers WHERE tenant_id = ?1 AND id = ?2";
	const char *what = "read customer";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_CUSTOMER_GET, sql, what, &st, "ii", tenant_id, customer_id);
	if (rc < 0)
		return rc;
	rc = store__sq_one(c, st, what, store__sq_read_customer, a, out);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not read customer: no customer %lld",
		                   (long long)customer_id);
	return rc < 0 ? rc : 0;
}

/*
 * store__sq_customer_set_opted_out: the UPDATE returns the row only when
 * the flag really changes; no row means the customer is unknown or
 * already so, which a second look tells apart.
 */
int store__sq_customer_set_opted_out(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                     int opted_out, int *changed)
{
	static const char upd[] =
	        "UPDATE customers SET opted_out = ?3"
	        " WHERE tenant_id = ?1 AND wa_id = ?2 AND opted_out <> ?3 RETURNING id";
	static const char sel[] = "SELECT id FROM customers WHERE tenant_id = ?1 AND wa_id = ?2";
	const char *what = "record opt-out";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int64_t id = 0;
	*changed = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_prep(c, SQ_CUSTOMER_OPT_OUT, upd, what, &st, "iti", tenant_id, wa_id,
	                    (int64_t)opted_out);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, &id);
	if (rc == 1) {
		*changed = 1;
		rc = 0;
	} else if (rc == 0) {
		rc = store__sq_prep(c, SQ_CUSTOMER_OPTED_OUT, sel, what, &st, "it", tenant_id,
		                    wa_id);
		if (rc == 0)
			rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, &id);
		if (rc == 0)
			rc = store__errf(c, ERR_NOTFOUND,
			                 "could not record opt-out: no customer \"%s\"", wa_id);
		else if (rc == 1)
			rc = 0;
	}
	return store__sq_op_end(c, mode, rc);
}

static void read_contact(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct customer_contact *cc = row;
	cc->id = sqlite3_column_int64(st, 0);
	cc->wa_id = store__sq_col(st, 1, a);
	cc->last_inbound_at = sqlite3_column_int64(st, 2);
	cc->opted_out = sqlite3_column_int(st, 3) != 0;
}

/*
 * store__sq_customers_active: a range of customers_by_last_inbound, read in
 * its own order (the rowid completes the key), so each page starts where
 * the last ended without sorting and without an OFFSET that rereads.
 */
int store__sq_customers_active(struct store_conn *c, int64_t tenant_id, int64_t since,
                               const struct customer_contact *after, int limit, struct arena *a,
                               struct customer_contact **out, int *n)
{
	static const char sql[] = "SELECT id, wa_id, last_inbound_at, opted_out FROM customers"
	                          " WHERE tenant_id = ?1 AND last_inbound_at >= ?2"
	                          " AND (last_inbound_at, id) > (?3, ?4)"
	                          " ORDER BY last_inbound_at, id LIMIT ?5";
	const char *what = "list customers";
	sqlite3_stmt *st;
	void *rows = NULL;
	*n = 0;
	int rc = store__sq_prep(c, SQ_CUSTOMERS_ACTIVE, sql, what, &st, "iiiii", tenant_id, since,
	                        after ? after->last_inbound_at : INT64_MIN, after ? after->id : 0,
	                        (int64_t)limit);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**out), read_contact, &rows, n);
	*out = rows;
	return rc;
}

/*
 * store__sq_outbox_cancel_marketing: the statement names the partial index
 * outbox_pending_to's condition (state = 0) in a literal, so SQLite reads
 * that customer's waiting rows only.
 */
int store__sq_outbox_cancel_marketing(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                      int error_code, const char *error, int64_t now,
                                      int64_t *moved)
{
	static const char sql[] =
	        "UPDATE outbox SET state = 6, last_error_code = ?3, last_error = ?4, updated_at = "
	        "?5"
	        " WHERE tenant_id = ?1 AND to_id = ?2 AND state = 0 AND priority = 3";
	const char *what = "cancel marketing";
	enum sq_op_mode mode;
	*moved = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_OUTBOX_CANCEL_MARKETING, sql, what, "ititi", tenant_id, wa_id,
	                   (int64_t)error_code, error, now);
	if (rc == 0) {
		*moved = sqlite3_changes(store__sq_db(c));
		store__sq_count(c, PRIO_P3, OUTBOX_PENDING, OUTBOX_FAILED, *moved);
	}
	rc = store__sq_op_end(c, mode, rc);
	if (rc < 0)
		*moved = 0;
	return rc;
}
