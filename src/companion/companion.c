/*
 * companion.c - the companion app's REST routes: stock, orders, invoices
 * (the batch sync is sync.c).
 *
 * The path of a request (companion_handle, on an HTTP server thread)
 *
 *   no route of ours                         → 404 not_found
 *   no "Authorization: Bearer <token>"       → 401 missing_token
 *   token's SHA-256 held by no tenant        → 401 invalid_token
 *   (campaign_authenticate: the merchant API's one check)
 *   GET  /v1/stock, /v1/orders[/{id}], /v1/invoices/{id}: reads
 *   POST /v1/orders: BEGIN; tenant; erp_direct_order; COMMIT → 201
 *                    a refusal (unknown item, short stock) → ROLLBACK, 400/409
 *   POST /v1/sync: companion__sync
 *   the store busy, full or failing          → 503 store_unavailable
 *
 * Orders go through erp_direct_* (src/erp/direct.c), that is through the
 * same commands a WhatsApp message runs, so the app and the chat keep one
 * set of books: one stock ledger, one invoice series. Its writes never
 * touch the sender: what they tell the customer is committed to the outbox
 * as PENDING rows, and goes when a provider can take it.
 *
 * Answers are built with jansson (no hot path here). Reads run outside a
 * transaction: each store read sees one snapshot of its own.
 *
 * Reads that may be a little stale - GET /v1/stock, /v1/orders,
 * /v1/invoices - go through cp->read_conn: a read replica's when serve
 * has --db-replica (PostgreSQL) and one is within --replica-max-lag-ms, the
 * primary otherwise. What a POST wrote is answered from cp->conn.
 *
 * Threads: cp->conn, cp->read_conn and cp->cache only under cp->mu; app's metrics are
 * atomics. A request holds the mutex for its whole work, so the API's
 * requests run one at a time (each is small; a sync of 500 operations holds
 * the store's writer lock for a few milliseconds).
 */
#include "companion/companion_internal.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "campaign/campaign.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"

#define COMPANION_RETRY_AFTER   "5"
#define COMPANION_LIMIT_DEFAULT 50
#define COMPANION_LIMIT_MAX     200
/* The longest ?q= matched (bytes). */
#define COMPANION_QUERY_MAX 64
/* Catalogues the API keeps (one per shop that used it lately). */
#define COMPANION_CACHE_SLOTS 64

/* ---- answers ------------------------------------------------------------------------ */

json_t *companion__error(const char *code, const char *message)
{
	return json_pack("{s:s, s:s}", "code", code, "message", message ? message : "");
}

const char *companion__dump(struct arena *a, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	const char *out = arena_strdup(a, s ? s : "{}");
	free(s);
	return out;
}

void companion__fail(struct companion_answer *ans, struct arena *a, unsigned int status,
                     const char *code, const char *message)
{
	ans->status = status;
	ans->body =
	        companion__dump(a, json_pack("{s:o}", "error", companion__error(code, message)));
}

void companion__fail_store(struct companion_answer *ans, struct arena *a, struct store_conn *c,
                           int rc, const char *doing)
{
	log_error("companion.store_failed", "could not %s: %s", doing, store_errmsg(c));
	if (err_transient(rc))
		companion__fail(ans, a, 503, "store_unavailable",
		                "the store is unavailable for now; try again in a few seconds");
	else
		companion__fail(ans, a, 500, "internal", "the request could not be completed");
}

unsigned int companion__refusal_status(const char *code)
{
	static const struct {
		const char *code;
		unsigned int status;
	} map[] = {
	        {"short_stock", 409},     {"not_draft", 409}, {"empty_order", 409},
	        {"order_not_found", 404}, {"id_reused", 409},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (code && strcmp(code, map[i].code) == 0)
			return map[i].status;
	return 400;
}

void companion__committed(struct companion *cp, const int64_t queued[PRIO_COUNT])
{
	int64_t any = 0;
	for (int p = 0; p < PRIO_COUNT; p++) {
		if (queued[p] > 0)
			atomic_fetch_add(&cp->app->metrics.outbox[p][OUTBOX_PENDING], queued[p]);
		any += queued[p];
	}
	if (any > 0)
		notify_signal(&cp->app->outbox_ready);
}

/* ---- JSON of the books -------------------------------------------------------------- */

static const char *status_name(enum order_status s)
{
	switch (s) {
	case ORDER_DRAFT: return "draft";
	case ORDER_CONFIRMED: return "confirmed";
	case ORDER_CANCELLED: return "cancelled";
	}
	return "unknown";
}

/* base units as a decimal of selling units ("12.5"), to 3 places */
static json_t *qty_json(int64_t base, int64_t per)
{
	char s[48];
	if (per <= 0)
		per = 1;
	int64_t whole = base / per, rem = base % per;
	if (rem == 0) {
		snprintf(s, sizeof(s), "%" PRId64, whole);
	} else {
		int64_t milli = (rem * 1000 + per / 2) / per;
		snprintf(s, sizeof(s), "%" PRId64 ".%03" PRId64, whole, milli);
		for (size_t n = strlen(s); n > 0 && s[n - 1] == '0'; n--)
			s[n - 1] = '\0';
	}
	return json_string(s);
}

static json_t *invoice_brief(const struct invoice *inv)
{
	return json_pack("{s:s, s:I, s:I, s:I}", "number", inv->number, "taxable_paise",
	                 (json_int_t)inv->taxable_paise, "gst_paise",
	                 (json_int_t)(inv->cgst_paise + inv->sgst_paise + inv->igst_paise),
	                 "total_paise", (json_int_t)inv->total_paise);
}

int companion__order_json(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                          struct arena *a, json_t **out)
{
	struct order o;
	struct customer cu;
	struct invoice inv;
	*out = NULL;
	int rc = store_order_get(c, tenant_id, order_id, a, &o);
	if (rc < 0)
		return rc;
	rc = store_customer_get(c, tenant_id, o.customer_id, a, &cu);
	if (rc < 0 && rc != ERR_NOTFOUND)
		return rc;
	const char *who = rc == 0 ? arena_sprintf(a, "+%s", cu.wa_id) : "";
	json_t *lines = json_array();
	for (int i = 0; i < o.nlines; i++) {
		const struct order_line *l = &o.lines[i];
		json_array_append_new(
		        lines,
		        json_pack("{s:I, s:s, s:o, s:s, s:I, s:I, s:i, s:s, s:I}", "product_id",
		                  (json_int_t)l->product_id, "item", l->name, "qty",
		                  qty_json(l->qty_base, l->base_per_unit), "unit", l->unit,
		                  "qty_base", (json_int_t)l->qty_base, "price_paise",
		                  (json_int_t)l->price_paise, "gst_rate_bp", l->gst_rate_bp, "hsn",
		                  l->hsn, "amount_paise", (json_int_t)l->amount_paise));
	}
	json_t *v = json_pack("{s:I, s:s, s:s, s:o, s:I, s:I, s:I, s:I}", "id", (json_int_t)o.id,
	                      "status", status_name(o.status), "customer", who, "lines", lines,
	                      "taxable_paise", (json_int_t)o.total_paise, "created_at",
	                      (json_int_t)o.created_at, "updated_at", (json_int_t)o.updated_at,
	                      "paid_at", (json_int_t)o.paid_at);
	rc = store_invoice_by_order(c, tenant_id, o.id, a, &inv);
	if (rc == 0)
		json_object_set_new(v, "invoice", invoice_brief(&inv));
	else if (rc == ERR_NOTFOUND)
		json_object_set_new(v, "invoice", json_null());
	else {
		json_decref(v);
		return rc;
	}
	*out = v;
	return 0;
}

/* ---- routes --------------------------------------------------------------------------- */

/* 1 when needle (lower case, ASCII) is in hay, ignoring ASCII case. */
static int contains(const char *hay, const char *needle)
{
	size_t n = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, n) == 0)
			return 1;
	return n == 0;
}

static void get_stock(struct companion *cp, int64_t tenant_id, const struct companion_request *rq,
                      struct arena *a, struct companion_answer *ans)
{
	struct product *p = NULL;
	int n = 0;
	const char *q = rq->q ? rq->q : "";
	if (strlen(q) > COMPANION_QUERY_MAX) {
		companion__fail(ans, a, 400, "invalid_query",
		                arena_sprintf(a, "q has at most %d bytes", COMPANION_QUERY_MAX));
		return;
	}
	int rc = store_products_list(cp->read_conn, tenant_id, a, &p, &n);
	if (rc < 0) {
		companion__fail_store(ans, a, cp->read_conn, rc, "list products");
		return;
	}
	json_t *items = json_array();
	for (int i = 0; i < n; i++) {
		if (!contains(p[i].name, q) && !contains(p[i].sku, q) && !contains(p[i].aliases, q))
			continue;
		json_array_append_new(
		        items,
		        json_pack("{s:I, s:s, s:s, s:s, s:o, s:I, s:I, s:I, s:i, s:s}", "id",
		                  (json_int_t)p[i].id, "sku", p[i].sku, "name", p[i].name, "unit",
		                  p[i].unit, "quantity", qty_json(p[i].stock, p[i].base_per_unit),
		                  "stock_base", (json_int_t)p[i].stock, "base_per_unit",
		                  (json_int_t)p[i].base_per_unit, "price_paise",
		                  (json_int_t)p[i].price_paise, "gst_rate_bp", p[i].gst_rate_bp,
		                  "hsn", p[i].hsn));
	}
	ans->status = 200;
	ans->body = companion__dump(a, json_pack("{s:o}", "items", items));
}

/* A positive decimal id of at most 18 digits, else 0. */
static int64_t parse_id(const char *s)
{
	int64_t v = 0;
	size_t n = 0;
	if (!s)
		return 0;
	for (; s[n]; n++) {
		if (s[n] < '0' || s[n] > '9' || n >= 18)
			return 0;
		v = v * 10 + (s[n] - '0');
	}
	return v;
}

static void get_orders(struct companion *cp, int64_t tenant_id, const struct companion_request *rq,
                       struct arena *a, struct companion_answer *ans)
{
	int status = -1;
	int64_t limit = COMPANION_LIMIT_DEFAULT, before = 0;
	struct order *o = NULL;
	int n = 0;
	if (rq->status && *rq->status) {
		static const char *const names[] = {"draft", "confirmed", "cancelled"};
		for (int i = 0; i < 3; i++)
			if (strcmp(rq->status, names[i]) == 0)
				status = i;
		if (status < 0) {
			companion__fail(ans, a, 400, "invalid_status",
			                "status must be draft, confirmed or cancelled");
			return;
		}
	}
	if (rq->limit && (limit = parse_id(rq->limit)) <= 0) {
		companion__fail(ans, a, 400, "invalid_limit",
		                arena_sprintf(a, "limit must be a whole number from 1 to %d",
		                              COMPANION_LIMIT_MAX));
		return;
	}
	if (limit > COMPANION_LIMIT_MAX)
		limit = COMPANION_LIMIT_MAX;
	if (rq->before && (before = parse_id(rq->before)) <= 0) {
		companion__fail(ans, a, 400, "invalid_before", "before must be an order id");
		return;
	}
	int rc = store_orders_list(cp->read_conn, tenant_id, status, before, (int)limit, a, &o, &n);
	if (rc < 0) {
		companion__fail_store(ans, a, cp->read_conn, rc, "list orders");
		return;
	}
	json_t *list = json_array();
	for (int i = 0; i < n; i++) {
		json_t *v = NULL;
		rc = companion__order_json(cp->read_conn, tenant_id, o[i].id, a, &v);
		if (rc < 0) {
			json_decref(list);
			companion__fail_store(ans, a, cp->read_conn, rc, "read an order");
			return;
		}
		json_array_append_new(list, v);
	}
	ans->status = 200;
	ans->body = companion__dump(a, json_pack("{s:o}", "orders", list));
}

static void get_order(struct companion *cp, int64_t tenant_id, int64_t id, struct arena *a,
                      struct companion_answer *ans)
{
	json_t *v = NULL;
	int rc = id > 0 ? companion__order_json(cp->read_conn, tenant_id, id, a, &v) : ERR_NOTFOUND;
	if (rc == ERR_NOTFOUND) {
		companion__fail(ans, a, 404, "order_not_found", "there is no such order");
		return;
	}
	if (rc < 0) {
		companion__fail_store(ans, a, cp->read_conn, rc, "read an order");
		return;
	}
	ans->status = 200;
	ans->body = companion__dump(a, v);
}

static void get_invoice(struct companion *cp, int64_t tenant_id, int64_t order_id, struct arena *a,
                        struct companion_answer *ans)
{
	struct store_conn *c = cp->read_conn;
	struct order o;
	struct invoice inv;
	struct customer cu;
	struct tenant t;
	int rc = order_id > 0 ? store_order_get(c, tenant_id, order_id, a, &o) : ERR_NOTFOUND;
	if (rc == ERR_NOTFOUND) {
		companion__fail(ans, a, 404, "order_not_found", "there is no such order");
		return;
	}
	if (rc == 0) {
		rc = store_invoice_by_order(c, tenant_id, order_id, a, &inv);
		if (rc == ERR_NOTFOUND) {
			companion__fail(
			        ans, a, 404, "invoice_not_found",
			        arena_sprintf(a,
			                      "order %" PRId64 " has no invoice: it is %s (an "
			                      "invoice is issued when an order is confirmed)",
			                      order_id, status_name(o.status)));
			return;
		}
	}
	if (rc == 0)
		rc = store_tenant_get(c, tenant_id, a, &t);
	if (rc == 0)
		rc = store_customer_get(c, tenant_id, o.customer_id, a, &cu);
	if (rc < 0) {
		companion__fail_store(ans, a, c, rc, "read an invoice");
		return;
	}
	json_t *lines = json_array();
	for (int i = 0; i < o.nlines; i++) {
		const struct order_line *l = &o.lines[i];
		int64_t cg = 0, sg = 0, ig = 0;
		erp_direct_line_tax(l->amount_paise, l->gst_rate_bp, inv.intra_state, &cg, &sg,
		                    &ig);
		json_array_append_new(
		        lines, json_pack("{s:s, s:s, s:o, s:s, s:I, s:I, s:i, s:I, s:I, s:I}",
		                         "item", l->name, "hsn", l->hsn, "qty",
		                         qty_json(l->qty_base, l->base_per_unit), "unit", l->unit,
		                         "price_paise", (json_int_t)l->price_paise, "taxable_paise",
		                         (json_int_t)l->amount_paise, "gst_rate_bp", l->gst_rate_bp,
		                         "cgst_paise", (json_int_t)cg, "sgst_paise", (json_int_t)sg,
		                         "igst_paise", (json_int_t)ig));
	}
	struct erp_direct d = {c, cp->cache, &t, "app", a};
	json_t *v = json_pack(
	        "{s:s, s:s, s:I, s:I, s:s, s:s, s:s, s:s, s:b, s:o, s:I, s:I, s:I, s:I, s:I, s:I}",
	        "number", inv.number, "fy", inv.fy, "order_id", (json_int_t)inv.order_id,
	        "issued_at", (json_int_t)inv.issued_at, "customer",
	        arena_sprintf(a, "+%s", cu.wa_id), "shop", t.name, "gstin", t.gstin,
	        "place_of_supply", inv.place_of_supply, "intra_state", inv.intra_state, "lines",
	        lines, "taxable_paise", (json_int_t)inv.taxable_paise, "cgst_paise",
	        (json_int_t)inv.cgst_paise, "sgst_paise", (json_int_t)inv.sgst_paise, "igst_paise",
	        (json_int_t)inv.igst_paise, "round_off_paise", (json_int_t)inv.round_off_paise,
	        "total_paise", (json_int_t)inv.total_paise);
	json_object_set_new(v, "text", json_string(erp_direct_invoice_text(&d, &inv, &o, &cu)));
	ans->status = 200;
	ans->body = companion__dump(a, v);
}

int companion__read_order(json_t *args, struct arena *a, const char **customer,
                          struct erp_direct_line **lines, int *n, int *confirm, const char **code,
                          const char **message)
{
	json_t *cu = json_object_get(args, "customer");
	json_t *ls = json_object_get(args, "lines");
	json_t *cf = json_object_get(args, "confirm");
	*code = "invalid_order";
	if (!json_is_object(args)) {
		*message = "the order must be a JSON object";
		return ERR_INVAL;
	}
	if (!json_is_string(cu)) {
		*code = "invalid_customer";
		*message =
		        "\"customer\" must be the customer's phone number, e.g. \"+919876543210\"";
		return ERR_INVAL;
	}
	if (!json_is_array(ls) || json_array_size(ls) == 0) {
		*code = "no_lines";
		*message = "\"lines\" must be a list of {\"item\", \"qty\"}";
		return ERR_INVAL;
	}
	if (json_array_size(ls) > ERP_MAX_ORDER_LINES) {
		*code = "too_many_lines";
		*message = arena_sprintf(a, "an order has at most %d lines, not %zu",
		                         ERP_MAX_ORDER_LINES, json_array_size(ls));
		return ERR_INVAL;
	}
	if (cf && !json_is_boolean(cf)) {
		*message = "\"confirm\" must be true or false";
		return ERR_INVAL;
	}
	*confirm = cf ? json_is_true(cf) : 1;
	*customer = arena_strdup(a, json_string_value(cu));
	*n = (int)json_array_size(ls);
	*lines = arena_alloc(a, sizeof(**lines) * (size_t)*n);
	for (int i = 0; i < *n; i++) {
		json_t *l = json_array_get(ls, (size_t)i);
		json_t *item = json_object_get(l, "item"), *qty = json_object_get(l, "qty");
		char num[32];
		if (!json_is_object(l) || !json_is_string(item) ||
		    (qty && !json_is_string(qty) && !json_is_integer(qty))) {
			*code = "invalid_line";
			*message =
			        arena_sprintf(a,
			                      "line %d must be {\"item\": text, \"qty\": text like "
			                      "\"2 kg\" or a whole number}",
			                      i + 1);
			return ERR_INVAL;
		}
		(*lines)[i].item = arena_strdup(a, json_string_value(item));
		if (json_is_integer(qty)) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
			         json_integer_value(qty));
			(*lines)[i].qty = arena_strdup(a, num);
		} else {
			(*lines)[i].qty = qty ? arena_strdup(a, json_string_value(qty)) : NULL;
		}
	}
	return 0;
}

static void post_order(struct companion *cp, int64_t tenant_id, const char *body, size_t len,
                       struct arena *a, struct companion_answer *ans, int64_t queued[PRIO_COUNT])
{
	struct store_conn *c = cp->conn;
	struct erp_direct_line *lines = NULL;
	struct erp_direct_result res;
	const char *customer = NULL, *code = NULL, *message = NULL;
	struct tenant t;
	json_error_t jerr;
	json_t *v = NULL;
	int n = 0, confirm = 1;
	json_t *root = body ? json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr) : NULL;
	if (!json_is_object(root)) {
		json_decref(root);
		companion__fail(ans, a, 400, "invalid_json", "the body must be a JSON object");
		return;
	}
	int rc = companion__read_order(root, a, &customer, &lines, &n, &confirm, &code, &message);
	json_decref(root);
	if (rc != 0) {
		companion__fail(ans, a, 400, code, message);
		return;
	}
	if ((rc = store_begin(c)) < 0) {
		companion__fail_store(ans, a, c, rc, "begin an order");
		return;
	}
	rc = store_tenant_get(c, tenant_id, a, &t);
	struct erp_direct d = {c, cp->cache, &t, "app", a};
	if (rc == 0)
		rc = erp_direct_order(&d, customer, lines, n, confirm, &res);
	if (rc == 0 && res.refusal) {
		store_rollback(c);
		erp_cache_clear(cp->cache);
		companion__fail(ans, a, companion__refusal_status(res.refusal), res.refusal,
		                res.message);
		return;
	}
	if (rc == 0)
		rc = store_commit(c);
	if (rc < 0) {
		companion__fail_store(ans, a, c, rc, "place an order");
		store_rollback(c); /* after a failed commit too (it may leave it open) */
		erp_cache_clear(cp->cache);
		return;
	}
	memcpy(queued, res.queued, sizeof(res.queued));
	log_info("companion.order", "tenant %lld: order %lld placed from the app (%s)",
	         (long long)tenant_id, (long long)res.order_id, confirm ? "confirmed" : "draft");
	rc = companion__order_json(c, tenant_id, res.order_id, a, &v);
	if (rc < 0) { /* committed: say so even if it cannot be read back now */
		v = json_pack("{s:I}", "id", (json_int_t)res.order_id);
	}
	json_object_set_new(v, "message", json_string(res.message ? res.message : ""));
	ans->status = 201;
	ans->body = companion__dump(a, v);
}

/* ---- dispatch ------------------------------------------------------------------------ */

enum route { R_NONE = -1, R_STOCK, R_ORDERS, R_ORDER, R_ORDER_CREATE, R_INVOICE, R_SYNC };

static enum route route_of(const struct companion_request *rq, const char **arg)
{
	const char *m = rq->method ? rq->method : "", *p = rq->path ? rq->path : "";
	int get = strcmp(m, "GET") == 0, post = strcmp(m, "POST") == 0;
	*arg = NULL;
	if (get && strcmp(p, "/v1/stock") == 0)
		return R_STOCK;
	if (get && strcmp(p, "/v1/orders") == 0)
		return R_ORDERS;
	if (post && strcmp(p, "/v1/orders") == 0)
		return R_ORDER_CREATE;
	if (post && strcmp(p, "/v1/sync") == 0)
		return R_SYNC;
	if (get && strncmp(p, "/v1/orders/", 11) == 0) {
		*arg = p + 11;
		return R_ORDER;
	}
	if (get && strncmp(p, "/v1/invoices/", 13) == 0) {
		*arg = p + 13;
		return R_INVOICE;
	}
	return R_NONE;
}

static void handle_locked(struct companion *cp, const struct companion_request *rq, enum route r,
                          const char *arg, struct arena *a, struct companion_answer *ans,
                          int64_t queued[PRIO_COUNT])
{
	int64_t tenant_id = 0;
	int rc = campaign_authenticate(cp->conn, rq->authorization, &tenant_id);
	if (rc == ERR_INVAL) {
		companion__fail(ans, a, 401, "missing_token",
		                "send Authorization: Bearer <your API token>");
		return;
	}
	if (rc == ERR_NOTFOUND) {
		companion__fail(ans, a, 401, "invalid_token", "the API token is not valid");
		return;
	}
	if (rc < 0) {
		companion__fail_store(ans, a, cp->conn, rc, "find the tenant of an API token");
		return;
	}
	switch (r) {
	case R_STOCK: get_stock(cp, tenant_id, rq, a, ans); break;
	case R_ORDERS: get_orders(cp, tenant_id, rq, a, ans); break;
	case R_ORDER: get_order(cp, tenant_id, parse_id(arg), a, ans); break;
	case R_ORDER_CREATE: post_order(cp, tenant_id, rq->body, rq->len, a, ans, queued); break;
	case R_INVOICE: get_invoice(cp, tenant_id, parse_id(arg), a, ans); break;
	case R_SYNC: companion__sync(cp, tenant_id, rq->body, rq->len, a, ans, queued); break;
	case R_NONE: break;
	}
}

void companion_handle(struct companion *cp, const struct companion_request *rq, struct arena *a,
                      struct companion_answer *ans)
{
	int64_t queued[PRIO_COUNT] = {0};
	const char *arg = NULL;
	enum route r = route_of(rq, &arg);
	if (r == R_NONE) {
		companion__fail(ans, a, 404, "not_found", "no such companion API route");
		return;
	}
	pthread_mutex_lock(&cp->mu);
	handle_locked(cp, rq, r, arg, a, ans, queued);
	pthread_mutex_unlock(&cp->mu);
	companion__committed(cp, queued);
	metrics_companion_request(&cp->app->metrics, (enum metrics_companion_route)r, ans->status);
}

static void on_request(struct http_req *r, void *ud)
{
	struct companion_answer ans = {500, "{}"};
	struct companion_request rq;
	memset(&rq, 0, sizeof(rq));
	rq.method = http_req_method(r);
	rq.path = http_req_path(r);
	rq.authorization = http_req_header(r, "Authorization");
	rq.body = http_req_body(r, &rq.len);
	rq.q = http_req_query(r, "q");
	rq.status = http_req_query(r, "status");
	rq.limit = http_req_query(r, "limit");
	rq.before = http_req_query(r, "before");
	companion_handle(ud, &rq, http_req_arena(r), &ans);
	if (ans.status == 401)
		http_set_header(r, "WWW-Authenticate", "Bearer");
	if (ans.status == 503)
		http_set_header(r, "Retry-After", COMPANION_RETRY_AFTER);
	http_respond(r, ans.status, "application/json", ans.body, strlen(ans.body));
}

/* The server refused a body over --max-body (413) before the handler ran. */
static void on_sync_refused(unsigned int status, void *ud)
{
	struct companion *cp = ud;
	metrics_companion_request(&cp->app->metrics, MCOMP_SYNC, status);
}

static void on_order_refused(unsigned int status, void *ud)
{
	struct companion *cp = ud;
	metrics_companion_request(&cp->app->metrics, MCOMP_ORDER_CREATE, status);
}

/* ---- life ----------------------------------------------------------------------------- */

int companion_start(struct app *app, struct companion **out)
{
	struct companion *cp = xcalloc(1, sizeof(*cp));
	*out = NULL;
	cp->app = app;
	int rc = store_connect(app->store, &cp->conn);
	if (rc == 0 && (rc = store_connect_read(app->store, &cp->read_conn)) != 0)
		store_disconnect(cp->conn);
	if (rc != 0) {
		log_error("companion.start_failed",
		          "could not connect the companion API to the store: %s", err_str(rc));
		free(cp);
		return rc;
	}
	cp->cache = erp_cache_new(COMPANION_CACHE_SLOTS);
	pthread_mutex_init(&cp->mu, NULL);
	*out = cp;
	return 0;
}

void companion_stop(struct companion *cp)
{
	if (!cp)
		return;
	store_disconnect(cp->conn);
	store_disconnect(cp->read_conn);
	erp_cache_free(cp->cache);
	pthread_mutex_destroy(&cp->mu);
	free(cp);
}

int companion_routes(struct companion *cp, struct http_route *routes, int max)
{
	if (max < COMPANION_ROUTES)
		return ERR_INVAL;
	routes[0] = (struct http_route){"GET", "/v1/stock", 0, on_request, cp, NULL};
	routes[1] = (struct http_route){"GET", "/v1/orders", 0, on_request, cp, NULL};
	routes[2] = (struct http_route){"POST", "/v1/orders", 0, on_request, cp, on_order_refused};
	routes[3] = (struct http_route){"GET", "/v1/orders/", 1, on_request, cp, NULL};
	routes[4] = (struct http_route){"GET", "/v1/invoices/", 1, on_request, cp, NULL};
	routes[5] = (struct http_route){"POST", "/v1/sync", 0, on_request, cp, on_sync_refused};
	return COMPANION_ROUTES;
}
