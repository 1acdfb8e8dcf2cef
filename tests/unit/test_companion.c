/*
 * test_companion.c - the companion app's API without HTTP (companion_handle)
 * against a real SQLite store in a temporary directory: orders through the
 * WhatsApp commands' code (ledger, GST invoice, the customer's message in
 * the outbox), the batch sync's idempotence (one effect per client id, a
 * replayed batch changes nothing, a refused operation does not stop the
 * others) and tenant isolation.
 */
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "app.h"
#include "campaign/campaign.h"
#include "companion/companion.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/notify.h"
#include "store_fixture.h"

/* 2026-11-27 10:00 IST */
#define NOW_MS 1795753800000LL

struct fx {
	struct test_db db;
	struct app app;
	struct store_conn *c;
	struct companion *cp;
	struct arena a;
	int64_t tenant, tenant_b, atta, atta_b;
	char auth[CAMPAIGN_TOKEN_HEX + 16];
	char auth_b[CAMPAIGN_TOKEN_HEX + 16];
};

static int64_t add_tenant(struct fx *f, const char *name, const char *phone, char *auth)
{
	char token[CAMPAIGN_TOKEN_HEX + 1], hash[STORE_TOKEN_HASH_LEN + 1];
	struct tenant t = {.name = name,
	                   .phone_number_id = phone,
	                   .state_code = "27",
	                   .gstin = "27AAAAA0000A1Z5",
	                   .upi_id = "shop@upi"};
	int64_t id;
	assert_int_equal(store_tenant_add(f->c, &t, &id), 0);
	assert_int_equal(campaign_token_new(token, hash), 0);
	assert_int_equal(store_tenant_set_token_hash(f->c, id, hash), 0);
	snprintf(auth, CAMPAIGN_TOKEN_HEX + 16, "Bearer %s", token);
	return id;
}

static int64_t add_product(struct fx *f, int64_t tenant, const char *sku, const char *name,
                           const char *unit, int64_t per, int64_t price, int gst, int64_t stock)
{
	struct product p = {.tenant_id = tenant,
	                    .sku = sku,
	                    .name = name,
	                    .aliases = "",
	                    .unit = unit,
	                    .base_per_unit = per,
	                    .price_paise = price,
	                    .gst_rate_bp = gst,
	                    .hsn = "1101"};
	int64_t id;
	assert_int_equal(store_product_upsert(f->c, &p, &id), 0);
	assert_int_equal(store_stock_move(f->c, tenant, id, stock, "initial", 0, NULL), 0);
	return id;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	clock_set_fake(NOW_MS);
	test_app_open(&f->db, "companion", &f->app, 50, &f->c);
	f->tenant = add_tenant(f, "Sharma Kirana", "1122334455", f->auth);
	f->tenant_b = add_tenant(f, "Gupta Stores", "5566778899", f->auth_b);
	f->atta =
	        add_product(f, f->tenant, "ATTA", "Aashirvaad Atta", "kg", 1000, 5000, 500, 10000);
	add_product(f, f->tenant, "OIL", "Fortune Oil", "l", 1000, 15000, 500, 5000);
	f->atta_b = add_product(f, f->tenant_b, "ATTA", "Atta", "kg", 1000, 4000, 500, 3000);
	arena_init(&f->a, 0);
	assert_int_equal(companion_start(&f->app, &f->cp), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	companion_stop(f->cp);
	test_app_close(&f->db, &f->app, f->c);
	arena_release(&f->a);
	clock_set_fake(-1);
	free(f);
	return 0;
}

/* method path with auth and body (may be NULL); the answer parsed. */
static json_t *call(struct fx *f, const char *auth, const char *method, const char *path,
                    const char *body, unsigned int *status)
{
	struct companion_request rq = {.method = method,
	                               .path = path,
	                               .authorization = auth,
	                               .body = body,
	                               .len = body ? strlen(body) : 0};
	struct companion_answer ans = {0, NULL};
	json_error_t jerr;
	companion_handle(f->cp, &rq, &f->a, &ans);
	assert_non_null(ans.body);
	json_t *v = json_loads(ans.body, 0, &jerr);
	if (!v)
		fail_msg("answer is not JSON (%s): %s", jerr.text, ans.body);
	*status = ans.status;
	return v;
}

static void expect_error(struct fx *f, const char *auth, const char *method, const char *path,
                         const char *body, unsigned int want, const char *code)
{
	unsigned int status;
	json_t *v = call(f, auth, method, path, body, &status);
	const char *got = json_string_value(json_object_get(json_object_get(v, "error"), "code"));
	if (status != want || !got || strcmp(got, code) != 0)
		fail_msg("%s %s: want %u %s, got %u %s", method, path, want, code, status,
		         got ? got : "(none)");
	json_decref(v);
}

static int64_t stock_of(struct fx *f, int64_t tenant, int64_t product)
{
	struct product p;
	int64_t sum = 0;
	assert_int_equal(store_product_get(f->c, tenant, product, &f->a, &p), 0);
	assert_int_equal(store_ledger_sum(f->c, tenant, product, &sum), 0);
	assert_int_equal(sum, p.stock); /* the ledger is the stock */
	return p.stock;
}

static int64_t pending(struct fx *f, enum outbox_prio prio)
{
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	return counts[prio][OUTBOX_PENDING];
}

static void test_order_confirmed_with_invoice(void **state)
{
	struct fx *f = *state;
	unsigned int status;
	json_t *v = call(f, f->auth, "POST", "/v1/orders",
	                 "{\"customer\":\"+91 98000 00001\",\"lines\":[{\"item\":\"atta\","
	                 "\"qty\":\"2 kg\"},{\"item\":\"oil\",\"qty\":1}]}",
	                 &status);
	assert_int_equal(status, 201);
	assert_string_equal(json_string_value(json_object_get(v, "status")), "confirmed");
	assert_string_equal(json_string_value(json_object_get(v, "customer")), "+919800000001");
	int64_t id = json_integer_value(json_object_get(v, "id"));
	json_t *inv = json_object_get(v, "invoice");
	assert_string_equal(json_string_value(json_object_get(inv, "number")), "INV/2627/000001");
	/* 2 kg x 50 + 1 l x 150 = 250.00 taxable, 5 % GST 12.50, total 262.50 → 263 */
	assert_int_equal(json_integer_value(json_object_get(inv, "taxable_paise")), 25000);
	assert_int_equal(json_integer_value(json_object_get(inv, "total_paise")), 26300);
	json_decref(v);
	assert_int_equal(stock_of(f, f->tenant, f->atta), 8000);
	/* the customer's confirmation waits in the outbox, as a P1, for WhatsApp */
	assert_int_equal(pending(f, PRIO_P1), 1);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P1][OUTBOX_PENDING]), 1);

	char path[64];
	snprintf(path, sizeof(path), "/v1/invoices/%lld", (long long)id);
	v = call(f, f->auth, "GET", path, NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(v, "cgst_paise")), 625);
	assert_int_equal(json_integer_value(json_object_get(v, "sgst_paise")), 625);
	assert_int_equal(json_integer_value(json_object_get(v, "igst_paise")), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "round_off_paise")), 50);
	assert_int_equal(json_array_size(json_object_get(v, "lines")), 2);
	assert_non_null(strstr(json_string_value(json_object_get(v, "text")), "INV/2627/000001"));
	json_decref(v);

	/* a draft reserves nothing and has no invoice */
	v = call(
	        f, f->auth, "POST", "/v1/orders",
	        "{\"customer\":\"919800000002\",\"lines\":[{\"item\":\"atta\"}],\"confirm\":false}",
	        &status);
	assert_int_equal(status, 201);
	assert_string_equal(json_string_value(json_object_get(v, "status")), "draft");
	snprintf(path, sizeof(path), "/v1/invoices/%lld",
	         (long long)json_integer_value(json_object_get(v, "id")));
	json_decref(v);
	expect_error(f, f->auth, "GET", path, NULL, 404, "invoice_not_found");
	assert_int_equal(stock_of(f, f->tenant, f->atta), 8000);
	assert_int_equal(pending(f, PRIO_P2), 1); /* the draft with its buttons */

	v = call(f, f->auth, "GET", "/v1/orders", NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_array_size(json_object_get(v, "orders")), 2);
	json_decref(v);
}

static void test_order_refusals(void **state)
{
	struct fx *f = *state;
	expect_error(f, NULL, "GET", "/v1/stock", NULL, 401, "missing_token");
	expect_error(f, "Bearer nope", "GET", "/v1/stock", NULL, 401, "invalid_token");
	expect_error(f, f->auth, "POST", "/v1/orders", "{not json", 400, "invalid_json");
	expect_error(f, f->auth, "POST", "/v1/orders",
	             "{\"customer\":\"+919800000001\",\"lines\":[{\"item\":\"caviar\"}]}", 400,
	             "unknown_item");
	expect_error(f, f->auth, "POST", "/v1/orders",
	             "{\"customer\":\"+919800000001\",\"lines\":[{\"item\":\"atta\",\"qty\":\"11 "
	             "kg\"}]}",
	             409, "short_stock");
	expect_error(f, f->auth, "POST", "/v1/orders",
	             "{\"customer\":\"+919800000001\",\"lines\":[{\"item\":\"atta, 2 kg oil\"}]}",
	             400, "invalid_line");
	expect_error(f, f->auth, "POST", "/v1/orders",
	             "{\"customer\":\"shop\",\"lines\":[{\"item\":\"atta\"}]}", 400,
	             "invalid_customer");
	expect_error(f, f->auth, "GET", "/v1/orders/999", NULL, 404, "order_not_found");
	/* nothing of the refusals stayed */
	assert_int_equal(stock_of(f, f->tenant, f->atta), 10000);
	struct order *o;
	int k = 0;
	assert_int_equal(store_orders_list(f->c, f->tenant, -1, 0, 10, &f->a, &o, &k), 0);
	assert_int_equal(k, 0);
}

static const char batch[] =
        "{\"device\":\"counter-1\",\"ops\":["
        "{\"id\":\"op-1\",\"op\":\"stock.adjust\",\"args\":{\"item\":\"atta\",\"add\":\"5 kg\"}},"
        "{\"id\":\"op-2\",\"op\":\"order.create\",\"args\":{\"customer\":\"+919800000003\","
        "\"lines\":[{\"item\":\"caviar\",\"qty\":\"1\"}]}},"
        "{\"id\":\"op-3\",\"op\":\"order.create\",\"args\":{\"customer\":\"+919800000003\","
        "\"lines\":[{\"item\":\"atta\",\"qty\":\"3 kg\"}]},\"at\":\"2026-11-27T09:00:00+05:30\"},"
        "{\"id\":\"op-4\",\"op\":\"stock.adjust\",\"args\":{\"item\":\"oil\",\"remove\":\"1 l\"}}"
        "]}";

static const char *result_status(json_t *v, size_t i)
{
	return json_string_value(
	        json_object_get(json_array_get(json_object_get(v, "results"), i), "status"));
}

static void test_sync_once_per_client_id(void **state)
{
	struct fx *f = *state;
	unsigned int status;
	json_t *v = call(f, f->auth, "POST", "/v1/sync", batch, &status);
	assert_int_equal(status, 200);
	/* the unknown item is refused; the operations after it still apply */
	assert_string_equal(result_status(v, 0), "applied");
	assert_string_equal(result_status(v, 1), "rejected");
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_object_get(json_array_get(json_object_get(v, "results"), 1), "error"),
	                "code")),
	        "unknown_item");
	assert_string_equal(result_status(v, 2), "applied");
	assert_string_equal(result_status(v, 3), "applied");
	json_decref(v);
	assert_int_equal(stock_of(f, f->tenant, f->atta), 10000 + 5000 - 3000);
	int64_t p1 = pending(f, PRIO_P1);
	assert_int_equal(p1, 1);

	/* the same batch again (its answer was lost): nothing changes */
	v = call(f, f->auth, "POST", "/v1/sync", batch, &status);
	assert_int_equal(status, 200);
	for (size_t i = 0; i < 4; i++)
		assert_string_equal(result_status(v, i), "duplicate");
	json_t *r1 = json_array_get(json_object_get(v, "results"), 1);
	assert_string_equal(json_string_value(json_object_get(r1, "first")), "rejected");
	json_decref(v);
	assert_int_equal(stock_of(f, f->tenant, f->atta), 12000);
	assert_int_equal(pending(f, PRIO_P1), p1);
	struct order *o;
	int k = 0;
	assert_int_equal(store_orders_list(f->c, f->tenant, -1, 0, 10, &f->a, &o, &k), 0);
	assert_int_equal(k, 1);
	assert_int_equal(atomic_load(&f->app.metrics.sync_ops[MSYNC_DUPLICATE]), 4);

	/* an id reused for another operation is refused, not applied */
	v = call(f, f->auth, "POST", "/v1/sync",
	         "{\"ops\":[{\"id\":\"op-1\",\"op\":\"stock.adjust\",\"args\":{\"item\":\"atta\","
	         "\"add\":\"50 kg\"}},{\"op\":\"stock.adjust\"}]}",
	         &status);
	assert_int_equal(status, 200);
	assert_string_equal(result_status(v, 0), "rejected");
	assert_string_equal(result_status(v, 1), "rejected");
	json_decref(v);
	assert_int_equal(stock_of(f, f->tenant, f->atta), 12000);

	/* a batch over the cap is refused whole */
	f->app.cfg.companion_sync_max_ops = 3;
	expect_error(f, f->auth, "POST", "/v1/sync", batch, 413, "batch_too_long");
	expect_error(f, f->auth, "POST", "/v1/sync", "[1]", 400, "invalid_json");
	expect_error(f, f->auth, "POST", "/v1/sync", "{\"ops\":3}", 400, "missing_ops");
}

static void test_store_sync_op_record(void **state)
{
	struct fx *f = *state;
	struct sync_op_record r = {.client_id = "x-1",
	                           .device = "d",
	                           .op = "stock.adjust",
	                           .digest = "abc",
	                           .result = "{}",
	                           .client_at = "",
	                           .applied_at = NOW_MS};
	struct sync_op_record got;
	assert_int_equal(store_sync_op_get(f->c, f->tenant, "x-1", &f->a, &got), ERR_NOTFOUND);
	assert_int_equal(store_sync_op_put(f->c, f->tenant, &r), 0);
	assert_int_equal(store_sync_op_put(f->c, f->tenant, &r), ERR_CONFLICT);
	assert_int_equal(store_sync_op_put(f->c, f->tenant_b, &r), 0); /* per tenant */
	assert_int_equal(store_sync_op_get(f->c, f->tenant, "x-1", &f->a, &got), 0);
	assert_string_equal(got.op, "stock.adjust");
	r.client_id = "";
	assert_int_equal(store_sync_op_put(f->c, f->tenant, &r), ERR_INVAL);
}

static void test_tenant_isolation(void **state)
{
	struct fx *f = *state;
	unsigned int status;
	char path[64], body[256];
	json_t *v = call(f, f->auth, "POST", "/v1/orders",
	                 "{\"customer\":\"+919800000001\",\"lines\":[{\"item\":\"atta\"}],"
	                 "\"confirm\":false}",
	                 &status);
	assert_int_equal(status, 201);
	int64_t id = json_integer_value(json_object_get(v, "id"));
	json_decref(v);

	/* B sees none of A's orders, invoices or stock */
	snprintf(path, sizeof(path), "/v1/orders/%lld", (long long)id);
	expect_error(f, f->auth_b, "GET", path, NULL, 404, "order_not_found");
	snprintf(path, sizeof(path), "/v1/invoices/%lld", (long long)id);
	expect_error(f, f->auth_b, "GET", path, NULL, 404, "order_not_found");
	v = call(f, f->auth_b, "GET", "/v1/orders", NULL, &status);
	assert_int_equal(json_array_size(json_object_get(v, "orders")), 0);
	json_decref(v);
	v = call(f, f->auth_b, "GET", "/v1/stock", NULL, &status);
	assert_int_equal(json_array_size(json_object_get(v, "items")), 1);
	json_decref(v);

	/* nor can B confirm or cancel it */
	snprintf(body, sizeof(body),
	         "{\"ops\":[{\"id\":\"c1\",\"op\":\"order.cancel\",\"args\":{\"order_id\":%lld}},"
	         "{\"id\":\"c2\",\"op\":\"order.confirm\",\"args\":{\"order_id\":%lld}}]}",
	         (long long)id, (long long)id);
	v = call(f, f->auth_b, "POST", "/v1/sync", body, &status);
	assert_int_equal(status, 200);
	assert_string_equal(result_status(v, 0), "rejected");
	assert_string_equal(result_status(v, 1), "rejected");
	json_decref(v);
	struct order o;
	assert_int_equal(store_order_get(f->c, f->tenant, id, &f->a, &o), 0);
	assert_int_equal(o.status, ORDER_DRAFT);
	assert_int_equal(stock_of(f, f->tenant_b, f->atta_b), 3000);

	/* A's own confirm through sync works, with the same ids B used */
	v = call(f, f->auth, "POST", "/v1/sync", body, &status);
	assert_string_equal(result_status(v, 0), "applied");
	assert_string_equal(result_status(v, 1), "rejected"); /* cancelled first */
	json_decref(v);
	assert_int_equal(store_order_get(f->c, f->tenant, id, &f->a, &o), 0);
	assert_int_equal(o.status, ORDER_CANCELLED);
}

static void test_stock_filter(void **state)
{
	struct fx *f = *state;
	struct companion_request rq = {
	        .method = "GET", .path = "/v1/stock", .authorization = f->auth, .q = "OIL"};
	struct companion_answer ans;
	json_error_t jerr;
	companion_handle(f->cp, &rq, &f->a, &ans);
	assert_int_equal(ans.status, 200);
	json_t *v = json_loads(ans.body, 0, &jerr);
	json_t *items = json_object_get(v, "items");
	assert_int_equal(json_array_size(items), 1);
	json_t *it = json_array_get(items, 0);
	assert_string_equal(json_string_value(json_object_get(it, "quantity")), "5");
	assert_int_equal(json_integer_value(json_object_get(it, "price_paise")), 15000);
	json_decref(v);
	expect_error(f, f->auth, "GET", "/v1/nothing", NULL, 404, "not_found");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_order_confirmed_with_invoice, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_order_refusals, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sync_once_per_client_id, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_store_sync_op_record, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_tenant_isolation, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stock_filter, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
