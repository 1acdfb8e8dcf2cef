/*
 * test_campaign.c - the merchant API's POST /v1/campaigns without HTTP
 * (campaign_handle) against a real SQLite store in a temporary directory
 * (or a PostgreSQL database with MUNIM_TEST_PG set), and its tokens: made from getrandom, kept only
 * as their SHA-256.
 */
#include <setjmp.h>
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
#include "core/clock.h"
#include "core/err.h"
#include "core/notify.h"
#include "erp/erp.h"
#include "raw_db.h"
#include "store_fixture.h"

/* 2026-11-27 10:00 IST */
#define NOW_MS  1795753800000LL
#define HOUR_MS (3600LL * 1000)

struct fx {
	struct test_db db;
	struct app app;
	struct store_conn *c;
	struct campaign *cp;
	struct arena a;
	int64_t tenant;
	char token[CAMPAIGN_TOKEN_HEX + 1];
	char auth[CAMPAIGN_TOKEN_HEX + 16];
};

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	char hash[STORE_TOKEN_HASH_LEN + 1];
	struct customer cu;
	struct tenant t = {.name = "Sharma Kirana",
	                   .phone_number_id = "1122334455",
	                   .state_code = "27",
	                   .owner_numbers = "919000000001"};
	assert_non_null(f);
	clock_set_fake(NOW_MS);
	test_app_open(&f->db, "campaign", &f->app, 50, &f->c);
	assert_int_equal(store_tenant_add(f->c, &t, &f->tenant), 0);
	assert_int_equal(campaign_token_new(f->token, hash), 0);
	assert_int_equal(store_tenant_set_token_hash(f->c, f->tenant, hash), 0);
	snprintf(f->auth, sizeof(f->auth), "Bearer %s", f->token);
	arena_init(&f->a, 0);
	assert_int_equal(store_customer_touch(f->c, f->tenant, "919800000001", "", NOW_MS - HOUR_MS,
	                                      &f->a, &cu),
	                 0);
	assert_int_equal(store_customer_touch(f->c, f->tenant, "919800000002", "",
	                                      NOW_MS - 48 * HOUR_MS, &f->a, &cu),
	                 0);
	assert_int_equal(campaign_start(&f->app, &f->cp), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	campaign_stop(f->cp);
	test_app_close(&f->db, &f->app, f->c);
	arena_release(&f->a);
	clock_set_fake(-1);
	free(f);
	return 0;
}

/* POSTs body with the Authorization header auth (NULL: none); the answer's
 * body parsed (json_decref it), its status in *status. */
static json_t *post(struct fx *f, const char *auth, const char *body, size_t len,
                    unsigned int *status)
{
	struct campaign_answer ans = {0, NULL, 0};
	json_error_t jerr;
	campaign_handle(f->cp, auth, body, len, &f->a, &ans);
	assert_non_null(ans.body);
	json_t *v = json_loads(ans.body, 0, &jerr);
	if (!v)
		fail_msg("answer is not JSON (%s): %s", jerr.text, ans.body);
	*status = ans.status;
	return v;
}

/* Expects the error (status, code) for body sent with auth. */
static void expect_error(struct fx *f, const char *auth, const char *body, size_t len,
                         unsigned int want_status, const char *want_code)
{
	unsigned int status;
	json_t *v = post(f, auth, body, len, &status);
	json_t *err = json_object_get(v, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	if (status != want_status || !code || strcmp(code, want_code) != 0)
		fail_msg("want %u %s, got %u %s", want_status, want_code, status,
		         code ? code : "(no code)");
	assert_non_null(json_string_value(json_object_get(err, "message")));
	json_decref(v);
}

static int64_t pending_p3(struct fx *f)
{
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	return counts[PRIO_P3][OUTBOX_PENDING];
}

static void test_token_hash_and_new(void **state)
{
	(void)state;
	char hash[STORE_TOKEN_HASH_LEN + 1], t1[CAMPAIGN_TOKEN_HEX + 1], t2[CAMPAIGN_TOKEN_HEX + 1];
	char h1[STORE_TOKEN_HASH_LEN + 1], h2[STORE_TOKEN_HASH_LEN + 1];
	/* FIPS 180-2's example: SHA-256("abc") */
	assert_int_equal(campaign_token_hash("abc", 3, hash), 0);
	assert_string_equal(hash,
	                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(campaign_token_new(t1, h1), 0);
	assert_int_equal(campaign_token_new(t2, h2), 0);
	assert_int_equal(strlen(t1), CAMPAIGN_TOKEN_HEX);
	assert_int_equal(strspn(t1, "0123456789abcdef"), CAMPAIGN_TOKEN_HEX);
	assert_string_not_equal(t1, t2);
	assert_int_equal(campaign_token_hash(t1, strlen(t1), hash), 0);
	assert_string_equal(hash, h1);
	assert_string_not_equal(h1, t1); /* the hash, not the token */
}

static void test_campaign_queues_and_counts(void **state)
{
	struct fx *f = *state;
	unsigned int status;
	static const char body[] = "{\"text\":\"Diwali sale: 10% off!\"}";
	int64_t gauge = atomic_load(&f->app.metrics.outbox[PRIO_P3][OUTBOX_PENDING]);

	/* no template: the customer outside the window is skipped */
	json_t *v = post(f, f->auth, body, strlen(body), &status);
	assert_int_equal(status, 202);
	assert_int_equal(json_integer_value(json_object_get(v, "queued")), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "as_text")), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "by_template")), 0);
	assert_int_equal(json_integer_value(json_object_get(v, "skipped_no_template")), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "skipped_opted_out")), 0);
	json_decref(v);
	assert_int_equal(pending_p3(f), 1);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P3][OUTBOX_PENDING]), gauge + 1);

	/* a template, an opt-out, and "Bearer" in any case */
	assert_int_equal(store_tenant_set_template(f->c, f->tenant, "offer", "en"), 0);
	assert_int_equal(store_customer_set_opted_out(f->c, f->tenant, "919800000001", 1, NULL), 0);
	char auth[CAMPAIGN_TOKEN_HEX + 16];
	snprintf(auth, sizeof(auth), "  bearer   %s ", f->token);
	v = post(f, auth, body, strlen(body), &status);
	assert_int_equal(status, 202);
	assert_int_equal(json_integer_value(json_object_get(v, "queued")), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "by_template")), 1);
	assert_int_equal(json_integer_value(json_object_get(v, "skipped_opted_out")), 1);
	assert_string_equal(json_string_value(json_object_get(v, "template")), "offer");
	json_decref(v);
	assert_int_equal(pending_p3(f), 2);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P3][OUTBOX_PENDING]), gauge + 2);

	/* exactly the longest text passes */
	char big[ERP_BROADCAST_TEXT_MAX + 32];
	memcpy(big, "{\"text\":\"", 9);
	memset(big + 9, 'x', ERP_BROADCAST_TEXT_MAX);
	memcpy(big + 9 + ERP_BROADCAST_TEXT_MAX, "\"}", 3);
	v = post(f, f->auth, big, strlen(big), &status);
	assert_int_equal(status, 202);
	json_decref(v);
}

/* Spike level 4 (the seed's reject_new_marketing_requests): erp_broadcast
 * queues nothing and the endpoint answers 503 with a Retry-After; the
 * level back below 4, the same campaign goes. */
static void test_campaign_paused_at_spike_level_4(void **state)
{
	struct fx *f = *state;
	static const char body[] = "{\"text\":\"Diwali sale: 10% off!\"}";
	struct erp_ai setting = {.spike_level = &f->app.spike_level};
	erp_ai_set(&setting);
	atomic_store(&f->app.spike_level, 4);
	struct campaign_answer ans = {0, NULL, 0};
	campaign_handle(f->cp, f->auth, body, strlen(body), &f->a, &ans);
	assert_int_equal(ans.status, 503);
	assert_non_null(strstr(ans.body, "\"marketing_paused\""));
	assert_int_equal(ans.retry_after_s, f->app.cfg.marketing_retry_after_s);
	assert_int_equal(atomic_load(&f->app.metrics.marketing_refused), 1);
	assert_int_equal(pending_p3(f), 0);
	atomic_store(&f->app.spike_level, 3);
	unsigned int status;
	json_t *v = post(f, f->auth, body, strlen(body), &status);
	assert_int_equal(status, 202);
	json_decref(v);
	assert_int_equal(pending_p3(f), 1);
	erp_ai_set(NULL);
}

static void test_campaign_refusals(void **state)
{
	struct fx *f = *state;
	static const char ok[] = "{\"text\":\"hello\"}";
	char other[CAMPAIGN_TOKEN_HEX + 16], h[STORE_TOKEN_HASH_LEN + 1], t[CAMPAIGN_TOKEN_HEX + 1];

	expect_error(f, NULL, ok, strlen(ok), 401, "missing_token");
	expect_error(f, "", ok, strlen(ok), 401, "missing_token");
	expect_error(f, "Bearer", ok, strlen(ok), 401, "missing_token");
	expect_error(f, "Bearer    ", ok, strlen(ok), 401, "missing_token");
	expect_error(f, "Basic dXNlcjpwYXNz", ok, strlen(ok), 401, "missing_token");
	expect_error(f, f->token, ok, strlen(ok), 401, "missing_token"); /* no scheme */
	expect_error(f, "Bearer not-a-token", ok, strlen(ok), 401, "invalid_token");
	/* a token that is well made but not this store's */
	assert_int_equal(campaign_token_new(t, h), 0);
	snprintf(other, sizeof(other), "Bearer %s", t);
	expect_error(f, other, ok, strlen(ok), 401, "invalid_token");
	/* the hash itself is not a token */
	assert_int_equal(campaign_token_hash(f->token, strlen(f->token), h), 0);
	snprintf(other, sizeof(other), "Bearer %s", h);
	expect_error(f, other, ok, strlen(ok), 401, "invalid_token");
	/* a bad token is refused before the body is looked at */
	expect_error(f, "Bearer nope", "not json", 8, 401, "invalid_token");

	expect_error(f, f->auth, "not json", 8, 400, "invalid_json");
	expect_error(f, f->auth, "", 0, 400, "invalid_json");
	expect_error(f, f->auth, "[\"text\"]", 8, 400, "invalid_json");
	expect_error(f, f->auth, "{\"text\":\"a\"", 11, 400, "invalid_json");
	expect_error(f, f->auth, "{}", 2, 400, "missing_text");
	expect_error(f, f->auth, "{\"txt\":\"a\"}", 11, 400, "missing_text");
	expect_error(f, f->auth, "{\"text\":5}", 10, 400, "invalid_text");
	expect_error(f, f->auth, "{\"text\":null}", 13, 400, "invalid_text");
	expect_error(f, f->auth, "{\"text\":\"a\\u0000b\"}", 19, 400, "invalid_text");
	expect_error(f, f->auth, "{\"text\":\"\"}", 11, 400, "empty_text");
	expect_error(f, f->auth, "{\"text\":\" \\n\\t \"}", 17, 400, "empty_text");
	expect_error(f, f->auth, "{\"text\":\"\\u0001\\u0002\"}", 23, 400, "empty_text");
	char big[ERP_BROADCAST_TEXT_MAX + 32];
	memcpy(big, "{\"text\":\"", 9);
	memset(big + 9, 'x', ERP_BROADCAST_TEXT_MAX + 1);
	memcpy(big + 9 + ERP_BROADCAST_TEXT_MAX + 1, "\"}", 3);
	expect_error(f, f->auth, big, strlen(big), 400, "text_too_long");
	assert_int_equal(pending_p3(f), 0); /* nothing queued by any of them */
}

static void test_campaign_store_unavailable(void **state)
{
	struct fx *f = *state;
	static const char ok[] = "{\"text\":\"hello\"}";
	struct raw_db other; /* another process holds the write lock */
	raw_open(&other, f->db.path);
	raw_lock_writes(&other);
	expect_error(f, f->auth, ok, strlen(ok), 503, "store_unavailable");
	raw_unlock(&other);
	raw_close(&other);
	assert_int_equal(pending_p3(f), 0);
	/* and it recovers */
	unsigned int status;
	json_t *v = post(f, f->auth, ok, strlen(ok), &status);
	assert_int_equal(status, 202);
	json_decref(v);
	assert_int_equal(pending_p3(f), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_token_hash_and_new),
	        cmocka_unit_test_setup_teardown(test_campaign_queues_and_counts, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_campaign_refusals, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_campaign_paused_at_spike_level_4, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_campaign_store_unavailable, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
