/*
 * test_tools.c - the mock BSP's parts that carry logic of their own: the
 * bounded, indexed message log (eviction by count and by bytes, lookups by
 * quoted message and recipient that survive eviction, incremental polling)
 * and the timer that answers slow requests (order, close runs the rest,
 * refusals after close).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "tools/tools_internal.h"

static uint64_t add(struct mock_log *l, int i, const char *to, const char *ctx)
{
	char wamid[32], body[64];
	snprintf(wamid, sizeof(wamid), "wamid.M%d", i);
	snprintf(body, sizeof(body), "{\"n\":%d}", i);
	return mock_log_add(l, 1000 + i, wamid, "100", to, ctx, body, strlen(body));
}

static void query(struct mock_log *l, const char *ctx, const char *to, uint64_t since, int limit,
                  int desc, struct mock_hit **hits, int *n, uint64_t *next)
{
	struct mock_query q = {ctx, to, since, limit, desc};
	mock_log_query(l, &q, hits, n, next);
}

static void test_log_filters_and_order(void **state)
{
	(void)state;
	struct mock_log *l = mock_log_new(100, 1 << 20);
	for (int i = 0; i < 10; i++)
		assert_int_equal(
		        add(l, i, i % 2 ? "91odd" : "91even", i < 6 ? "wamid.A" : "wamid.B"),
		        (uint64_t)i);
	struct mock_hit *h;
	int n;
	uint64_t next;

	query(l, "wamid.A", NULL, 0, 100, 0, &h, &n, &next);
	assert_int_equal(n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(h[i].index, (uint64_t)i); /* oldest first */
	assert_string_equal(h[2].wamid, "wamid.M2");
	assert_string_equal(h[2].phone_number_id, "100");
	assert_string_equal(h[2].body, "{\"n\":2}");
	assert_int_equal(h[2].received_ms, 1002);
	assert_int_equal(next, 10);
	mock_hits_free(h, n);

	/* context and recipient together; since */
	query(l, "wamid.A", "91odd", 2, 100, 0, &h, &n, &next);
	assert_int_equal(n, 2);
	assert_int_equal(h[0].index, 3);
	assert_int_equal(h[1].index, 5);
	mock_hits_free(h, n);

	/* newest first with a limit */
	query(l, NULL, "91even", 0, 2, 1, &h, &n, &next);
	assert_int_equal(n, 2);
	assert_int_equal(h[0].index, 8);
	assert_int_equal(h[1].index, 6);
	mock_hits_free(h, n);

	/* oldest-first pages: next resumes after the last one returned */
	query(l, NULL, NULL, 0, 4, 0, &h, &n, &next);
	assert_int_equal(n, 4);
	assert_int_equal(next, 4);
	mock_hits_free(h, n);
	query(l, NULL, NULL, next, 4, 0, &h, &n, &next);
	assert_int_equal(h[0].index, 4);
	mock_hits_free(h, n);
	query(l, "wamid.A", NULL, 0, 4, 0, &h, &n, &next);
	assert_int_equal(n, 4);
	assert_int_equal(h[3].index, 3);
	assert_int_equal(next, 4);
	mock_hits_free(h, n);

	/* nothing quoted: no match, not a crash */
	query(l, "wamid.none", NULL, 0, 10, 0, &h, &n, &next);
	assert_int_equal(n, 0);
	mock_hits_free(h, n);
	mock_log_free(l);
}

static void test_log_evicts_by_count(void **state)
{
	(void)state;
	struct mock_log *l = mock_log_new(8, 1 << 20);
	for (int i = 0; i < 20; i++)
		add(l, i, "91x", "wamid.C");
	uint64_t held, bytes, next;
	mock_log_counts(l, &held, &bytes, &next);
	assert_int_equal(held, 8);
	assert_int_equal(next, 20);
	struct mock_hit *h;
	int n;
	uint64_t nx;
	/* chains through evicted records stop at the oldest kept */
	query(l, "wamid.C", NULL, 0, 100, 0, &h, &n, &nx);
	assert_int_equal(n, 8);
	assert_int_equal(h[0].index, 12);
	assert_int_equal(h[7].index, 19);
	mock_hits_free(h, n);
	query(l, NULL, "91x", 0, 100, 1, &h, &n, &nx);
	assert_int_equal(n, 8);
	assert_int_equal(h[0].index, 19);
	mock_hits_free(h, n);
	query(l, NULL, NULL, 3, 100, 0, &h, &n, &nx);
	assert_int_equal(n, 8);
	assert_int_equal(h[0].index, 12);
	mock_hits_free(h, n);
	mock_log_free(l);
}

static void test_log_evicts_by_bytes(void **state)
{
	(void)state;
	/* each record is "wamid.Mi\0" "100\0" body "\0": about 20 bytes */
	struct mock_log *l = mock_log_new(1000, 100);
	for (int i = 0; i < 50; i++)
		add(l, i, "91y", NULL);
	uint64_t held, bytes, next;
	mock_log_counts(l, &held, &bytes, &next);
	assert_true(bytes <= 100);
	assert_true(held >= 3 && held <= 6);
	assert_int_equal(next, 50);
	mock_log_clear(l);
	mock_log_counts(l, &held, &bytes, &next);
	assert_int_equal(held, 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(next, 50); /* indexes are never reused */
	assert_int_equal(add(l, 50, "91y", NULL), 50);
	mock_log_free(l);
}

static _Atomic int fired[8];
static _Atomic int order_pos;

static void on_timer(void *arg)
{
	int i = (int)(intptr_t)arg;
	atomic_store(&fired[i], atomic_fetch_add(&order_pos, 1) + 1);
}

static void test_timer_order_and_close(void **state)
{
	(void)state;
	struct mock_timer *t;
	assert_int_equal(mock_timer_new(&t), 0);
	int64_t now = clock_mono_us();
	/* added out of order; due in 30, 10, 20 ms */
	assert_int_equal(mock_timer_add(t, now + 30000, on_timer, (void *)(intptr_t)0), 0);
	assert_int_equal(mock_timer_add(t, now + 10000, on_timer, (void *)(intptr_t)1), 0);
	assert_int_equal(mock_timer_add(t, now + 20000, on_timer, (void *)(intptr_t)2), 0);
	/* one far in the future: close runs it at once */
	assert_int_equal(mock_timer_add(t, now + 3600 * 1000000LL, on_timer, (void *)(intptr_t)3),
	                 0);
	for (int i = 0; i < 200 && atomic_load(&fired[0]) == 0; i++) {
		struct timespec ts = {0, 5 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(atomic_load(&fired[1]), 1);
	assert_int_equal(atomic_load(&fired[2]), 2);
	assert_int_equal(atomic_load(&fired[0]), 3);
	assert_int_equal(atomic_load(&fired[3]), 0);
	mock_timer_close(t);
	assert_int_equal(atomic_load(&fired[3]), 4);
	/* ERR_INVAL after close: the caller answers itself */
	assert_int_equal(mock_timer_add(t, now, on_timer, (void *)(intptr_t)4), ERR_INVAL);
	mock_timer_free(t);
	mock_timer_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_log_filters_and_order),
	        cmocka_unit_test(test_log_evicts_by_count),
	        cmocka_unit_test(test_log_evicts_by_bytes),
	        cmocka_unit_test(test_timer_order_and_close),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
