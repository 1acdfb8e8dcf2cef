/*
 * test_pace.c - send pacing with an injected clock: a number's bucket
 * (the burst, the refill, the wait it reports, unpaced), slowing down on
 * 130429 and climbing back, the per-customer waits after 131056 (growing
 * fourfold, capped, forgotten after a success), the sweep of idle state
 * and the config's bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>

#include "core/err.h"
#include "send/pace.h"

static struct pace *new_pace(int per_second)
{
	struct pace_config cfg;
	pace_config_default(&cfg);
	cfg.per_second = per_second;
	struct pace *p;
	assert_int_equal(pace_new(&cfg, &p), 0);
	return p;
}

/* Sends taken at time t until the first refusal; that refusal's wait in *wait. */
static int take_all(struct pace *p, const char *number, int64_t t, int64_t *wait)
{
	int n = 0;
	int64_t w;
	while ((w = pace_take(p, number, t)) == 0)
		n++;
	*wait = w;
	return n;
}

static void test_config_bounds(void **state)
{
	(void)state;
	struct pace_config cfg;
	struct pace *p = (struct pace *)1;
	pace_config_default(&cfg);
	assert_int_equal(cfg.per_second, 80);
	assert_int_equal(cfg.recipient_base_ms, 4000);
	cfg.per_second = -1;
	assert_int_equal(pace_new(&cfg, &p), ERR_INVAL);
	assert_null(p);
	pace_config_default(&cfg);
	cfg.recipient_cap_ms = cfg.recipient_base_ms - 1;
	assert_int_equal(pace_new(&cfg, &p), ERR_INVAL);
	pace_config_default(&cfg);
	cfg.idle_ms = 0;
	assert_int_equal(pace_new(&cfg, &p), ERR_INVAL);
}

static void test_burst_then_rate(void **state)
{
	(void)state;
	struct pace *p = new_pace(80);
	int64_t wait;
	/* a second's worth at once, then one every 12.5 ms */
	assert_int_equal(take_all(p, "100", 1000, &wait), 80);
	assert_int_equal(wait, 13);
	assert_int_not_equal(pace_take(p, "100", 1012), 0);
	assert_int_equal(pace_take(p, "100", 1013), 0);
	/* over 10 s of steady asking, 80 a second and no more */
	int sent = 0;
	for (int64_t t = 1014; t < 11014; t++)
		sent += pace_take(p, "100", t) == 0;
	assert_in_range(sent, 799, 801);
	/* another number has its own bucket */
	assert_int_equal(take_all(p, "200", 12000, &wait), 80);
	pace_free(p);
}

static void test_unpaced(void **state)
{
	(void)state;
	struct pace *p = new_pace(0);
	for (int i = 0; i < 100000; i++)
		assert_int_equal(pace_take(p, "100", 5), 0);
	pace_slow(p, "100", 5);
	assert_int_equal(pace_take(p, "100", 5), 0);
	assert_int_equal(pace_entries(p), 0);
	pace_free(p);
}

static void test_slow_halves_then_recovers(void **state)
{
	(void)state;
	struct pace *p = new_pace(80);
	int64_t wait;
	assert_int_equal(pace_rate(p, "100", 0), 80);
	pace_slow(p, "100", 1000);
	assert_int_equal(pace_rate(p, "100", 1000), 40);
	pace_slow(p, "100", 1000);
	assert_int_equal(pace_rate(p, "100", 1000), 20);
	/* the bucket shrank with the rate */
	assert_int_equal(take_all(p, "100", 1000, &wait), 20);
	assert_int_equal(wait, 50);
	/* +8 (a tenth) per quiet second, back to 80 and no further */
	assert_int_equal(pace_rate(p, "100", 1999), 20);
	assert_int_equal(pace_rate(p, "100", 2000), 28);
	assert_int_equal(pace_rate(p, "100", 4000), 44);
	assert_int_equal(pace_rate(p, "100", 60000), 80);
	/* a slow-down restarts the climb */
	pace_slow(p, "100", 60500);
	assert_int_equal(pace_rate(p, "100", 61000), 40);
	assert_int_equal(pace_rate(p, "100", 61500), 48);
	/* never below 1 a second */
	for (int i = 0; i < 10; i++)
		pace_slow(p, "100", 61500);
	assert_int_equal(pace_rate(p, "100", 61500), 1);
	pace_free(p);
}

static void test_recipient_waits_grow(void **state)
{
	(void)state;
	struct pace *p = new_pace(80);
	assert_int_equal(pace_recipient_wait(p, "100", "91981", 0), 0);
	assert_int_equal(pace_recipient_limited(p, "100", "91981", 1000), 4000);
	assert_int_equal(pace_recipient_wait(p, "100", "91981", 1000), 4000);
	assert_int_equal(pace_recipient_wait(p, "100", "91981", 4999), 1);
	assert_int_equal(pace_recipient_wait(p, "100", "91981", 5000), 0);
	/* the same customer from another number, another customer: free */
	assert_int_equal(pace_recipient_wait(p, "200", "91981", 1000), 0);
	assert_int_equal(pace_recipient_wait(p, "100", "91982", 1000), 0);
	assert_int_equal(pace_recipient_limited(p, "100", "91981", 5000), 16000);
	assert_int_equal(pace_recipient_limited(p, "100", "91981", 21000), 64000);
	assert_int_equal(pace_recipient_limited(p, "100", "91981", 85000), 256000);
	assert_int_equal(pace_recipient_limited(p, "100", "91981", 341000), 256000);
	/* a success forgets the run */
	pace_recipient_ok(p, "100", "91981");
	assert_int_equal(pace_recipient_wait(p, "100", "91981", 341000), 0);
	assert_int_equal(pace_recipient_limited(p, "100", "91981", 341000), 4000);
	pace_free(p);
}

static void test_sweep_forgets_idle(void **state)
{
	(void)state;
	struct pace *p = new_pace(80);
	char number[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(number, sizeof(number), "%d", 100000 + i);
		assert_int_equal(pace_take(p, number, 1000), 0);
	}
	pace_recipient_limited(p, "100000", "91981", 1000);
	assert_int_equal(pace_entries(p), 1001);
	pace_take(p, "100001", 30000);
	pace_sweep(p, 60999);
	assert_int_equal(pace_entries(p), 1001);
	/* idle for 60 s: gone, except the one used at 30 s and the pair,
	 * whose wait ended at 5 s */
	pace_sweep(p, 61000);
	assert_int_equal(pace_entries(p), 2);
	pace_sweep(p, 65000);
	assert_int_equal(pace_entries(p), 1);
	/* a forgotten number starts with a full bucket */
	int64_t wait;
	assert_int_equal(take_all(p, "100002", 61000, &wait), 80);
	pace_free(p);
}

static void test_time_backwards(void **state)
{
	(void)state;
	struct pace *p = new_pace(10);
	int64_t wait;
	assert_int_equal(take_all(p, "100", 5000, &wait), 10);
	/* an earlier time refills nothing */
	assert_int_not_equal(pace_take(p, "100", 1000), 0);
	assert_int_equal(pace_take(p, "100", 5100), 0);
	pace_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_config_bounds),
	        cmocka_unit_test(test_burst_then_rate),
	        cmocka_unit_test(test_unpaced),
	        cmocka_unit_test(test_slow_halves_then_recovers),
	        cmocka_unit_test(test_recipient_waits_grow),
	        cmocka_unit_test(test_sweep_forgets_idle),
	        cmocka_unit_test(test_time_backwards),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
