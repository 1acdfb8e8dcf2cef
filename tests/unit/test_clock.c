/*
 * test_clock.c - clock_deadline: the instant ms ahead on the clock asked
 * for, its nanoseconds always below a second (carried into the seconds),
 * whatever the fake clock says.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <time.h>

#include "core/clock.h"

static int64_t ns_of(struct timespec t)
{
	return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void ahead_by(clockid_t id, int ms)
{
	struct timespec before, after;
	clock_gettime(id, &before);
	struct timespec d = clock_deadline(id, ms);
	clock_gettime(id, &after);
	assert_true(d.tv_nsec >= 0 && d.tv_nsec < 1000000000L);
	assert_true(ns_of(d) >= ns_of(before) + (int64_t)ms * 1000000LL);
	assert_true(ns_of(d) <= ns_of(after) + (int64_t)ms * 1000000LL);
}

static void test_deadline_ahead(void **state)
{
	(void)state;
	clock_set_fake(1000); /* the fake clock does not move a deadline */
	for (int ms = 0; ms < 3000; ms += 37) {
		ahead_by(CLOCK_MONOTONIC, ms);
		ahead_by(CLOCK_REALTIME, ms);
	}
	ahead_by(CLOCK_MONOTONIC, 999);
	ahead_by(CLOCK_REALTIME, 60000);
	clock_set_fake(-1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_deadline_ahead),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
