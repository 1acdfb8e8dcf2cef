/*
 * test_backlog.c - the set of customers with messages waiting in the
 * inbox: counts per customer, customers told apart by shop and number,
 * removal of what was never added, the unknown state (at start over a
 * non-empty inbox, and past BACKLOG_MAX customers) and its end.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#include "worker/backlog.h"

static void test_counts_per_customer(void **state)
{
	(void)state;
	struct backlog *b = backlog_new(1);
	assert_true(backlog_is_known(b));
	assert_false(backlog_has(b, 1, "919800000001"));
	backlog_add(b, 1, "919800000001");
	backlog_add(b, 1, "919800000001");
	assert_true(backlog_has(b, 1, "919800000001"));
	/* another shop's customer with the same number is someone else */
	assert_false(backlog_has(b, 2, "919800000001"));
	assert_false(backlog_has(b, 1, "919800000002"));
	backlog_remove(b, 1, "919800000001");
	assert_true(backlog_has(b, 1, "919800000001")); /* one still waits */
	backlog_remove(b, 1, "919800000001");
	assert_false(backlog_has(b, 1, "919800000001"));
	/* removing what was never there changes nothing */
	backlog_remove(b, 1, "919800000001");
	backlog_remove(b, 3, "x");
	backlog_add(b, 1, "919800000001");
	assert_true(backlog_has(b, 1, "919800000001"));
	backlog_free(b);
	backlog_free(NULL);
}

static void test_unknown_until_known(void **state)
{
	(void)state;
	struct backlog *b = backlog_new(0);
	assert_false(backlog_is_known(b));
	assert_true(backlog_has(b, 1, "919800000001")); /* anyone may wait */
	backlog_add(b, 1, "919800000001");
	backlog_known(b); /* the inbox was seen empty */
	assert_true(backlog_is_known(b));
	assert_false(backlog_has(b, 1, "919800000001"));
	backlog_free(b);
}

static void test_many_customers_then_too_many(void **state)
{
	(void)state;
	struct backlog *b = backlog_new(1);
	char id[32];
	for (int i = 0; i < BACKLOG_MAX; i++) {
		snprintf(id, sizeof(id), "91%010d", i);
		backlog_add(b, i % 7, id);
	}
	assert_true(backlog_is_known(b));
	for (int i = 0; i < BACKLOG_MAX; i += 4099) {
		snprintf(id, sizeof(id), "91%010d", i);
		assert_true(backlog_has(b, i % 7, id));
		assert_false(backlog_has(b, i % 7 + 1, id));
	}
	/* one customer more than it follows: nobody may overtake anybody */
	backlog_add(b, 9, "919999999999");
	assert_false(backlog_is_known(b));
	assert_true(backlog_has(b, 9, "910000000000"));
	backlog_known(b);
	assert_false(backlog_has(b, 0, "910000000000"));
	backlog_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_counts_per_customer),
	        cmocka_unit_test(test_unknown_until_known),
	        cmocka_unit_test(test_many_customers_then_too_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
