/*
 * test_idset.c - the id set: adds, lookups and deletions agree with a
 * plain array through growth and through deletions inside runs of
 * colliding ids (backward shift), in random order; ids <= 0 are refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/idset.h"
#include "core/rng.h"

#define UNIVERSE 4096

static void test_add_has_del(void **state)
{
	(void)state;
	struct idset s;
	idset_init(&s, 4);
	assert_int_equal(idset_add(&s, 7), 1);
	assert_int_equal(idset_add(&s, 7), 0);
	assert_true(idset_has(&s, 7));
	assert_false(idset_has(&s, 8));
	assert_int_equal(idset_del(&s, 8), 0);
	assert_int_equal(idset_del(&s, 7), 1);
	assert_false(idset_has(&s, 7));
	assert_int_equal(s.n, 0);
	/* not ids: never in */
	assert_int_equal(idset_add(&s, 0), 0);
	assert_int_equal(idset_add(&s, -3), 0);
	assert_false(idset_has(&s, 0));
	assert_int_equal(idset_del(&s, -3), 0);
	idset_free(&s);
}

/* Random adds and deletions over a small universe (long runs, wrapping
 * ones too) against a plain array of flags. */
static void test_matches_a_plain_array(void **state)
{
	(void)state;
	static unsigned char in[UNIVERSE + 1];
	memset(in, 0, sizeof(in));
	struct idset s;
	idset_init(&s, 1);
	uint64_t rng = 12345;
	size_t n = 0;
	for (int step = 0; step < 200000; step++) {
		int64_t id = 1 + (int64_t)(rng_next(&rng) % UNIVERSE);
		if (rng_next(&rng) % 3 != 0) {
			assert_int_equal(idset_add(&s, id), !in[id]);
			n += !in[id];
			in[id] = 1;
		} else {
			assert_int_equal(idset_del(&s, id), in[id]);
			n -= in[id];
			in[id] = 0;
		}
		if (step % 1000 == 0)
			for (int64_t k = 1; k <= UNIVERSE; k++)
				assert_int_equal(idset_has(&s, k), in[k]);
	}
	assert_int_equal(s.n, n);
	for (int64_t k = 1; k <= UNIVERSE; k++)
		assert_int_equal(idset_has(&s, k), in[k]);
	idset_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_add_has_del),
	        cmocka_unit_test(test_matches_a_plain_array),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
