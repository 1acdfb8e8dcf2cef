/*
 * test_spike.c - the traffic spike level against the seed's thresholds
 * with an injected clock: each threshold and its edge (strictly greater),
 * the highest condition met wins, rising at once, falling one level per
 * unbroken hold, a bounce resetting the hold, the reasons given, and the
 * config's bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "control/controller.h"
#include "control/spike.h"
#include "core/err.h"

#define S 1000

static int level(int64_t depth, int64_t p95, double err)
{
	struct spike_config c;
	spike_config_default(&c);
	struct spike_signals sig = {depth, p95, err};
	return spike_level_of(&c, &sig);
}

static void test_thresholds(void **state)
{
	(void)state;
	assert_int_equal(level(0, 0, 0), 0);
	/* depth: strictly greater than 500, 2000, 5000, 10000 */
	assert_int_equal(level(500, 0, 0), 0);
	assert_int_equal(level(501, 0, 0), 1);
	assert_int_equal(level(2000, 0, 0), 1);
	assert_int_equal(level(2001, 0, 0), 2);
	assert_int_equal(level(5001, 0, 0), 3);
	assert_int_equal(level(10000, 0, 0), 3);
	assert_int_equal(level(10001, 0, 0), 4);
	/* p95: levels 1 and 2 only */
	assert_int_equal(level(0, 1000, 0), 0);
	assert_int_equal(level(0, 1001, 0), 1);
	assert_int_equal(level(0, 2001, 0), 2);
	assert_int_equal(level(0, 60000, 0), 2);
	/* webhook errors: levels 3 and 4 only */
	assert_int_equal(level(0, 0, 1.0), 0);
	assert_int_equal(level(0, 0, 1.01), 3);
	assert_int_equal(level(0, 0, 5.01), 4);
	/* the highest condition met wins */
	assert_int_equal(level(600, 2500, 0), 2);
	assert_int_equal(level(2500, 0, 6), 4);
}

static void test_rise_at_once_fall_after_hold(void **state)
{
	(void)state;
	struct spike_config c;
	spike_config_default(&c);
	struct spike s;
	assert_int_equal(spike_init(&s, &c), 0);
	struct spike_signals calm = {0, 100, 0}, high = {3000, 100, 0}, emergency = {20000, 0, 0};
	int changed = -1;
	assert_int_equal(spike_update(&s, &calm, 0, &changed), 0);
	assert_int_equal(changed, 0);
	assert_int_equal(spike_update(&s, &high, 1 * S, &changed), 2);
	assert_int_equal(changed, 1);
	assert_int_equal(spike_update(&s, &emergency, 2 * S, &changed), 4);
	/* calm from 3 s: 4 holds for 60 s, then one step a minute */
	assert_int_equal(spike_update(&s, &calm, 3 * S, &changed), 4);
	assert_int_equal(spike_update(&s, &calm, 62 * S, &changed), 4);
	assert_int_equal(changed, 0);
	assert_int_equal(spike_update(&s, &calm, 63 * S, &changed), 3);
	assert_int_equal(changed, 1);
	assert_int_equal(spike_update(&s, &calm, 100 * S, NULL), 3);
	assert_int_equal(spike_update(&s, &calm, 123 * S, NULL), 2);
	assert_int_equal(spike_update(&s, &calm, 183 * S, NULL), 1);
	assert_int_equal(spike_update(&s, &calm, 243 * S, NULL), 0);
	assert_int_equal(spike_update(&s, &calm, 999 * S, NULL), 0);
}

static void test_bounce_resets_hold(void **state)
{
	(void)state;
	struct spike_config c;
	spike_config_default(&c);
	c.hold_ms = 10 * S;
	struct spike s;
	assert_int_equal(spike_init(&s, &c), 0);
	struct spike_signals calm = {0, 0, 0}, high = {2500, 0, 0}, elevated = {800, 0, 0};
	assert_int_equal(spike_update(&s, &high, 0, NULL), 2);
	assert_int_equal(spike_update(&s, &calm, 1 * S, NULL), 2);
	/* back at level 2 for a moment: the hold starts again */
	assert_int_equal(spike_update(&s, &high, 9 * S, NULL), 2);
	assert_int_equal(spike_update(&s, &calm, 10 * S, NULL), 2);
	assert_int_equal(spike_update(&s, &calm, 19 * S, NULL), 2);
	assert_int_equal(spike_update(&s, &calm, 20 * S, NULL), 1);
	/* signals at level 1 keep it there: no further hold runs */
	assert_int_equal(spike_update(&s, &elevated, 25 * S, NULL), 1);
	assert_int_equal(spike_update(&s, &elevated, 500 * S, NULL), 1);
	/* a hold of 0: the first calm sample starts it, each later one steps
	 * down a level */
	c.hold_ms = 0;
	assert_int_equal(spike_init(&s, &c), 0);
	assert_int_equal(spike_update(&s, &high, 0, NULL), 2);
	assert_int_equal(spike_update(&s, &calm, 1, NULL), 2);
	assert_int_equal(spike_update(&s, &calm, 2, NULL), 1);
	assert_int_equal(spike_update(&s, &calm, 3, NULL), 0);
}

static void test_reasons_and_names(void **state)
{
	(void)state;
	struct spike_config c;
	spike_config_default(&c);
	char buf[96];
	struct spike_signals sig = {2345, 0, 0};
	assert_string_equal(spike_reason(&c, &sig, buf, sizeof(buf)), "queue depth 2345 > 2000");
	sig = (struct spike_signals){10, 1500, 0};
	assert_string_equal(spike_reason(&c, &sig, buf, sizeof(buf)),
	                    "latency p95 1500 ms > 1000 ms");
	sig = (struct spike_signals){10, 0, 7.5};
	assert_string_equal(spike_reason(&c, &sig, buf, sizeof(buf)),
	                    "webhook errors 7.50 % > 5.00 %");
	sig = (struct spike_signals){10, 0, 0};
	assert_string_equal(spike_reason(&c, &sig, buf, sizeof(buf)), "all signals below level 1");
	assert_string_equal(spike_level_name(0), "normal");
	assert_string_equal(spike_level_name(4), "emergency");
	assert_string_equal(spike_level_name(5), "unknown");
}

static void test_config_bounds(void **state)
{
	(void)state;
	struct spike_config c;
	struct spike s;
	spike_config_default(&c);
	c.hold_ms = -1;
	assert_int_equal(spike_init(&s, &c), ERR_INVAL);
	spike_config_default(&c);
	c.depth[3] = 2000; /* not above level 2's */
	assert_int_equal(spike_init(&s, &c), ERR_INVAL);
	spike_config_default(&c);
	c.p95_ms[2] = 500;
	assert_int_equal(spike_init(&s, &c), ERR_INVAL);
	spike_config_default(&c);
	c.error_pct[4] = 0.5;
	assert_int_equal(spike_init(&s, &c), ERR_INVAL);
	spike_config_default(&c);
	c.depth[1] = -5;
	assert_int_equal(spike_init(&s, &c), ERR_INVAL);
	/* a signal switched off at a level is allowed */
	spike_config_default(&c);
	c.p95_ms[2] = 0;
	assert_int_equal(spike_init(&s, &c), 0);
	struct spike_signals sig = {0, 5000, 0};
	assert_int_equal(spike_level_of(&c, &sig), 1);
}

static void test_window_p95(void **state)
{
	(void)state;
	uint64_t before[METRICS_LAT_BUCKETS + 1] = {0}, now[METRICS_LAT_BUCKETS + 1] = {0};
	assert_int_equal(controller_p95_ms(before, now), -1); /* nothing observed */
	/* 100 answers in (0.5 s, 1 s]: the 95th at 0.5 + 0.5 * 95 / 100 */
	now[9] = 100;
	assert_int_equal(controller_p95_ms(before, now), 975);
	/* only what came after `before` counts */
	before[9] = 100;
	now[0] = 90;  /* <= 1 ms */
	now[10] = 10; /* (1 s, 2 s] */
	assert_int_equal(controller_p95_ms(before, now), 1500);
	/* past the last bound: that bound */
	uint64_t zero[METRICS_LAT_BUCKETS + 1] = {0}, inf[METRICS_LAT_BUCKETS + 1] = {0};
	inf[METRICS_LAT_BUCKETS] = 7;
	assert_int_equal(controller_p95_ms(zero, inf), 30000);
	/* a counter that went back (a reset) counts as nothing */
	assert_int_equal(controller_p95_ms(inf, zero), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_thresholds),
	        cmocka_unit_test(test_rise_at_once_fall_after_hold),
	        cmocka_unit_test(test_bounce_resets_hold),
	        cmocka_unit_test(test_reasons_and_names),
	        cmocka_unit_test(test_config_bounds),
	        cmocka_unit_test(test_window_p95),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
