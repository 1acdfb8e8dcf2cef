/*
 * test_proc.c - the open-files limit the long-running commands raise for
 * their connections: raised to what is needed, never past the hard limit,
 * ERR_FULL when the need does not fit, left alone when it is high enough.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>

#include <cmocka.h>

#include "core/err.h"
#include "core/proc.h"

static rlim_t soft_limit(void)
{
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	return rl.rlim_cur;
}

/* The hard limit this test may work under: the process's own, at most 4096. */
static rlim_t hard_limit(void)
{
	struct rlimit rl;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < 1024)
		skip(); /* too low a ceiling to tell raising from not */
	return rl.rlim_max == RLIM_INFINITY || rl.rlim_max > 4096 ? 4096 : rl.rlim_max;
}

/* Sets the soft limit to soft and the hard one to hard (hard only ever lowered). */
static void set_limits(rlim_t soft, rlim_t hard)
{
	struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static void test_raises_soft_limit_to_need(void **state)
{
	(void)state;
	set_limits(256, hard_limit());
	long long have = 0;
	assert_int_equal(proc_ensure_fds(1000, &have), 0);
	assert_int_equal(have, 1000);
	assert_int_equal(soft_limit(), 1000);
	/* enough already: nothing changes, not even downwards */
	assert_int_equal(proc_ensure_fds(100, &have), 0);
	assert_int_equal(have, 1000);
	assert_int_equal(soft_limit(), 1000);
}

static void test_need_beyond_hard_limit_is_err_full(void **state)
{
	(void)state;
	rlim_t hard = hard_limit();
	set_limits(256, hard);
	long long have = 0;
	assert_int_equal(proc_ensure_fds((long long)hard + 1000, &have), ERR_FULL);
	/* raised as far as allowed, and says how far */
	assert_int_equal(have, (long long)hard);
	assert_int_equal(soft_limit(), hard);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_raises_soft_limit_to_need),
	        cmocka_unit_test(test_need_beyond_hard_limit_is_err_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
