/*
 * test_hpa.c - the Horizontal Pod Autoscaler's arithmetic against cases
 * worked by hand (injected clock): the proposal per metric and the
 * tolerance; the seed's webhook-worker behaviour - +10 pods or +100 % per
 * 60 s, the larger, after a 60 s up window; 10 % per 60 s down after a
 * 300 s window; the first window of a fresh autoscaler; Min and Disabled
 * policy selection; counts outside min..max; and the config's bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "control/hpa.h"
#include "core/err.h"

#define S 1000 /* ms */

static void test_proposal(void **state)
{
	(void)state;
	/* CPU at 90 % against a 60 % target: ceil(10 * 1.5) */
	struct hpa_metric cpu = {90, 60};
	assert_int_equal(hpa_proposal(10, &cpu, 1, 0.1), 15);
	/* 65 / 60 = 1.083, within the 0.1 tolerance: no change */
	cpu.current = 65;
	assert_int_equal(hpa_proposal(10, &cpu, 1, 0.1), 10);
	/* 54 / 60 = 0.9 exactly: still within; 53 / 60 is not: ceil(8.83) */
	cpu.current = 54;
	assert_int_equal(hpa_proposal(10, &cpu, 1, 0.1), 10);
	cpu.current = 53;
	assert_int_equal(hpa_proposal(10, &cpu, 1, 0.1), 9);
	/* the largest over metrics: queue depth 250 a worker against 100, p95
	 * 800 ms against 1,000 ms, CPU 30 % against 60 % */
	struct hpa_metric m[] = {{30, 60}, {250, 100}, {800, 1000}, {5, 0}};
	assert_int_equal(hpa_proposal(10, m, 4, 0.1), 25);
	/* no usable metric: the count there is */
	assert_int_equal(hpa_proposal(7, &m[3], 1, 0.1), 7);
	assert_int_equal(hpa_proposal(7, NULL, 0, 0.1), 7);
}

static struct hpa seed(void)
{
	struct hpa_config cfg;
	hpa_config_seed_webhook_workers(&cfg);
	struct hpa h;
	assert_int_equal(hpa_init(&h, &cfg), 0);
	return h;
}

static void test_seed_config(void **state)
{
	(void)state;
	struct hpa_config c;
	hpa_config_seed_webhook_workers(&c);
	assert_int_equal(c.min_replicas, 10);
	assert_int_equal(c.max_replicas, 100);
	assert_int_equal(c.up.stabilization_ms, 60 * S);
	assert_int_equal(c.up.select, HPA_SELECT_MAX);
	assert_int_equal(c.up.npolicies, 2);
	assert_int_equal(c.up.policies[0].type, HPA_PODS);
	assert_int_equal(c.up.policies[0].value, 10);
	assert_int_equal(c.up.policies[1].type, HPA_PERCENT);
	assert_int_equal(c.up.policies[1].value, 100);
	assert_int_equal(c.up.policies[1].period_ms, 60 * S);
	assert_int_equal(c.down.stabilization_ms, 300 * S);
	assert_int_equal(c.down.npolicies, 1);
	assert_int_equal(c.down.policies[0].type, HPA_PERCENT);
	assert_int_equal(c.down.policies[0].value, 10);
	assert_true(c.tolerance > 0.099 && c.tolerance < 0.101);
}

/* 10 -> 60 asked: +10 pods and +100 % both allow 20; within that 60 s no
 * more (the period starts at 10); after it 20 + 100 % = 40 beats 20 + 10. */
static void test_seed_scale_up_policies(void **state)
{
	(void)state;
	struct hpa h = seed();
	assert_int_equal(hpa_decide(&h, 10, 60, 0), 20);
	assert_int_equal(hpa_decide(&h, 20, 60, 15 * S), 20);
	assert_int_equal(hpa_decide(&h, 20, 60, 59 * S), 20);
	assert_int_equal(hpa_decide(&h, 20, 60, 61 * S), 40);
	/* at 40 the next period allows 80 (+100 %), the ask is 60 */
	assert_int_equal(hpa_decide(&h, 40, 60, 122 * S), 60);
	/* asking past max stops at max */
	assert_int_equal(hpa_decide(&h, 60, 500, 183 * S), 100);
}

/* The up window: a high reading scales up only once the window holds no
 * lower one. */
static void test_seed_scale_up_window(void **state)
{
	(void)state;
	struct hpa h = seed();
	assert_int_equal(hpa_decide(&h, 10, 10, 0), 10);
	assert_int_equal(hpa_decide(&h, 10, 50, 30 * S), 10);
	assert_int_equal(hpa_decide(&h, 10, 50, 59 * S), 10); /* t=0 is not yet out */
	assert_int_equal(hpa_decide(&h, 10, 50, 60 * S), 20); /* the window is (t-60 s, t] */
	/* the lowest of the window bounds it: 30 asked within 60 s of 50 */
	struct hpa g = seed();
	assert_int_equal(hpa_decide(&g, 10, 50, 0), 20);
	assert_int_equal(hpa_decide(&g, 20, 30, 70 * S), 30);
}

/* Down: a fresh autoscaler holds its count for the 300 s window; then 10 %
 * of the count at the start of each 60 s period, never below min. */
static void test_seed_scale_down(void **state)
{
	(void)state;
	struct hpa h = seed();
	for (int64_t t = 0; t < 300 * S; t += 15 * S)
		assert_int_equal(hpa_decide(&h, 100, 50, t), 100);
	assert_int_equal(hpa_decide(&h, 100, 50, 300 * S), 90);
	assert_int_equal(hpa_decide(&h, 90, 50, 316 * S), 90); /* start of period: 100 */
	assert_int_equal(hpa_decide(&h, 90, 50, 361 * S), 81);
	assert_int_equal(hpa_decide(&h, 81, 50, 422 * S), 72); /* floor(72.9) */
	/* a spike inside the window holds the count up: 80 asked at 430 s */
	assert_int_equal(hpa_decide(&h, 72, 80, 430 * S), 72);
	assert_int_equal(hpa_decide(&h, 72, 50, 500 * S), 72);
	assert_int_equal(hpa_decide(&h, 72, 50, 731 * S), 64); /* 430 s is out: floor(64.8) */
	/* min bounds the way down */
	struct hpa g = seed();
	assert_int_equal(hpa_decide(&g, 11, 1, 0), 11);
	assert_int_equal(hpa_decide(&g, 11, 1, 301 * S), 10);
}

static void test_select_min_and_disabled(void **state)
{
	(void)state;
	struct hpa_config c;
	hpa_config_default(&c, 1, 1000);
	c.up.select = HPA_SELECT_MIN;
	struct hpa h;
	assert_int_equal(hpa_init(&h, &c), 0);
	/* +4 pods or +100 % from 5: Min takes 9, Max would take 10 */
	assert_int_equal(hpa_decide(&h, 5, 100, 0), 9);
	c.up.select = HPA_SELECT_MAX;
	assert_int_equal(hpa_init(&h, &c), 0);
	assert_int_equal(hpa_decide(&h, 5, 100, 0), 10);
	/* Kubernetes' default down: 300 s, then all of it at once (100 %) */
	assert_int_equal(hpa_decide(&h, 10, 1, 301 * S), 1);
	c.up.select = HPA_SELECT_DISABLED;
	c.down.select = HPA_SELECT_DISABLED;
	assert_int_equal(hpa_init(&h, &c), 0);
	assert_int_equal(hpa_decide(&h, 5, 100, 0), 5);
	assert_int_equal(hpa_decide(&h, 5, 1, 400 * S), 5);
}

static void test_out_of_bounds_and_config(void **state)
{
	(void)state;
	struct hpa h = seed();
	assert_int_equal(hpa_decide(&h, 150, 150, 0), 100);
	assert_int_equal(hpa_decide(&h, 3, 3, 1 * S), 10);
	assert_int_equal(hpa_decide(&h, 10, 10, 2 * S), 10);
	/* ERR_INVAL for every bound */
	struct hpa_config c;
	hpa_config_seed_webhook_workers(&c);
	c.min_replicas = 0;
	assert_int_equal(hpa_init(&h, &c), ERR_INVAL);
	hpa_config_seed_webhook_workers(&c);
	c.max_replicas = 9;
	assert_int_equal(hpa_init(&h, &c), ERR_INVAL);
	hpa_config_seed_webhook_workers(&c);
	c.tolerance = -0.1;
	assert_int_equal(hpa_init(&h, &c), ERR_INVAL);
	hpa_config_seed_webhook_workers(&c);
	c.up.policies[1].value = 0;
	assert_int_equal(hpa_init(&h, &c), ERR_INVAL);
	hpa_config_seed_webhook_workers(&c);
	c.down.policies[0].period_ms = 0;
	assert_int_equal(hpa_init(&h, &c), ERR_INVAL);
	hpa_config_seed_webhook_workers(&c);
	c.down.npolicies = HPA_MAX_POLICIES + 1;
	assert_int_equal(hpa_init(&h, &c), ERR_INVAL);
	hpa_config_seed_webhook_workers(&c);
	c.up.stabilization_ms = -1;
	assert_int_equal(hpa_init(&h, &c), ERR_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_proposal),
	        cmocka_unit_test(test_seed_config),
	        cmocka_unit_test(test_seed_scale_up_policies),
	        cmocka_unit_test(test_seed_scale_up_window),
	        cmocka_unit_test(test_seed_scale_down),
	        cmocka_unit_test(test_select_min_and_disabled),
	        cmocka_unit_test(test_out_of_bounds_and_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
