/*
 * test_breaker.c - the per-provider circuit breaker, driven by an injected
 * clock and fixed random values (no sleeping): the config's defaults and
 * bounds; opening on failures in a row and on the failure rate over the
 * window (interleaved failures, min_calls, the threshold's edge, old calls
 * and idle gaps forgotten, time going backwards); the jittered open period;
 * half-open probes (the cap, IGNORED freeing a slot, closing, re-opening);
 * late answers while open; and the mapping of a send's class to an outcome.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "core/err.h"
#include "send/breaker.h"
#include "send/sender.h"

static void init_default(struct breaker *b)
{
	struct breaker_config cfg;
	breaker_config_default(&cfg);
	assert_int_equal(breaker_init(b, &cfg), 0);
}

static enum breaker_outcome outcome_of_char(char c)
{
	switch (c) {
	case 'S': return BREAKER_SUCCESS;
	case 'F': return BREAKER_FAILURE;
	default: return BREAKER_IGNORED;
	}
}

/*
 * Records n calls at time t whose outcomes cycle through pattern ('S', 'F',
 * 'I'); returns the 1-based number of the call whose record changed the
 * state, or 0 if none did. Fails the test if more than one did.
 */
static int record_pattern(struct breaker *b, int64_t t, const char *pattern, int n)
{
	int changed_at = 0;
	size_t len = strlen(pattern);
	for (int i = 0; i < n; i++) {
		if (breaker_record(b, t, outcome_of_char(pattern[(size_t)i % len]), 0)) {
			if (changed_at)
				fail_msg("state changed at call %d and again at %d", changed_at,
				         i + 1);
			changed_at = i + 1;
		}
	}
	return changed_at;
}

/* Opens a default breaker at time t with 5 failures, the last drawing rnd. */
static void open_at(struct breaker *b, int64_t t, uint64_t rnd)
{
	for (int i = 0; i < 4; i++)
		assert_int_equal(breaker_record(b, t, BREAKER_FAILURE, 0), 0);
	assert_int_equal(breaker_record(b, t, BREAKER_FAILURE, rnd), 1);
	assert_int_equal(breaker_state(b), BREAKER_OPEN);
}

/* Moves an OPEN breaker to HALF_OPEN at its open_until; the ask takes a probe. */
static int64_t half_open(struct breaker *b)
{
	int64_t t = breaker_open_until(b);
	int changed = 0;
	assert_int_equal(breaker_allow(b, t, &changed), 1);
	assert_int_equal(changed, 1);
	assert_int_equal(breaker_state(b), BREAKER_HALF_OPEN);
	return t;
}

/* ---- configuration ---------------------------------------------------------- */

static void test_config_defaults(void **state)
{
	(void)state;
	struct breaker_config cfg;
	memset(&cfg, 0xff, sizeof(cfg));
	breaker_config_default(&cfg);
	assert_int_equal(cfg.failure_threshold, 5);
	assert_int_equal(cfg.success_threshold, 3);
	assert_int_equal(cfg.open_ms, 30000);
	assert_int_equal(cfg.jitter_pct, 20);
	assert_int_equal(cfg.window_ms, 10000);
	assert_int_equal(cfg.min_calls, 20);
	assert_int_equal(cfg.rate_threshold_pct, 30);
	assert_int_equal(cfg.half_open_probes, 3);
	assert_int_equal(cfg.slow_ms, 2000);
	struct breaker b;
	memset(&b, 0xff, sizeof(b));
	assert_int_equal(breaker_init(&b, &cfg), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	/* the numbers are a contract with the metric */
	assert_int_equal(BREAKER_CLOSED, 0);
	assert_int_equal(BREAKER_OPEN, 1);
	assert_int_equal(BREAKER_HALF_OPEN, 2);
}

#define FIELD(name)                                                                                \
#name, offsetof(struct breaker_config, name), sizeof(((struct breaker_config *)0)->name)

static void set_field(struct breaker_config *cfg, size_t off, size_t size, int64_t value)
{
	if (size == sizeof(int)) {
		int v = (int)value;
		memcpy((char *)cfg + off, &v, sizeof(v));
	} else {
		assert_int_equal(size, sizeof(int64_t));
		memcpy((char *)cfg + off, &value, sizeof(value));
	}
}

static void test_init_bounds(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		size_t off, size;
		int64_t value;
		int want;
	} cases[] = {
	        {FIELD(failure_threshold), 0, ERR_INVAL},
	        {FIELD(failure_threshold), -3, ERR_INVAL},
	        {FIELD(failure_threshold), 1, 0},
	        {FIELD(success_threshold), 0, ERR_INVAL},
	        {FIELD(success_threshold), 1, 0},
	        {FIELD(open_ms), 0, ERR_INVAL},
	        {FIELD(open_ms), -30000, ERR_INVAL},
	        {FIELD(open_ms), 1, 0},
	        {FIELD(jitter_pct), -1, ERR_INVAL},
	        {FIELD(jitter_pct), 101, ERR_INVAL},
	        {FIELD(jitter_pct), 0, 0},
	        {FIELD(jitter_pct), 100, 0},
	        {FIELD(window_ms), BREAKER_BUCKETS - 1, ERR_INVAL},
	        {FIELD(window_ms), 0, ERR_INVAL},
	        {FIELD(window_ms), BREAKER_BUCKETS, 0},
	        {FIELD(min_calls), 0, ERR_INVAL},
	        {FIELD(min_calls), 1, 0},
	        {FIELD(rate_threshold_pct), 0, ERR_INVAL},
	        {FIELD(rate_threshold_pct), 101, ERR_INVAL},
	        {FIELD(rate_threshold_pct), 1, 0},
	        {FIELD(rate_threshold_pct), 100, 0},
	        {FIELD(half_open_probes), 0, ERR_INVAL},
	        {FIELD(half_open_probes), 1, 0},
	        {FIELD(slow_ms), -1, ERR_INVAL},
	        {FIELD(slow_ms), 0, 0},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct breaker_config cfg;
		breaker_config_default(&cfg);
		set_field(&cfg, cases[i].off, cases[i].size, cases[i].value);
		struct breaker b, before;
		memset(&b, 0x5a, sizeof(b));
		memcpy(&before, &b, sizeof(b));
		int got = breaker_init(&b, &cfg);
		if (got != cases[i].want)
			fail_msg("%s = %lld: got %d, want %d", cases[i].name,
			         (long long)cases[i].value, got, cases[i].want);
		/* a refused config leaves the breaker as it was */
		if (got != 0 && memcmp(&b, &before, sizeof(b)) != 0)
			fail_msg("%s = %lld: refused but changed the breaker", cases[i].name,
			         (long long)cases[i].value);
	}
}

/* ---- CLOSED -> OPEN on failures in a row ------------------------------------ */

static void test_fifth_failure_in_row_opens(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	for (int i = 1; i <= 4; i++) {
		assert_int_equal(breaker_allow(&b, 1000, NULL), 1);
		assert_int_equal(breaker_record(&b, 1000, BREAKER_FAILURE, 0), 0);
		assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	}
	assert_int_equal(breaker_record(&b, 1000, BREAKER_FAILURE, 0), 1);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_open_until(&b), 31000);
}

static void test_success_resets_failure_run(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	/* 4 failures, a success, 4 failures: never 5 in a row (9 calls: below min_calls) */
	assert_int_equal(record_pattern(&b, 1000, "FFFFSFFFF", 9), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	/* the fifth in the new run opens */
	assert_int_equal(breaker_record(&b, 1000, BREAKER_FAILURE, 0), 1);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
}

static void test_ignored_counts_neither_way(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	/* an IGNORED between failures does not reset the run ... */
	assert_int_equal(record_pattern(&b, 1000, "FFFFIIIF", 8), 8);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);

	/* ... and is no call in the window: 18 calls at 50 % and many IGNORED
	 * stay below min_calls */
	init_default(&b);
	assert_int_equal(record_pattern(&b, 1000, "SF", 18), 0);
	assert_int_equal(record_pattern(&b, 1000, "I", 50), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	assert_int_equal(record_pattern(&b, 1000, "SF", 2), 2); /* the 20th call */
}

/* ---- OPEN and its jittered period -------------------------------------------- */

static void test_open_refuses_until_period_ends(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	open_at(&b, 5000, 0);
	int64_t until = breaker_open_until(&b);
	assert_int_equal(until, 35000);
	int changed = -1;
	for (int64_t t = 5000; t < until; t += 997) {
		assert_int_equal(breaker_allow(&b, t, &changed), 0);
		assert_int_equal(changed, 0);
	}
	assert_int_equal(breaker_allow(&b, until - 1, &changed), 0);
	assert_int_equal(changed, 0);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_allow(&b, until, &changed), 1);
	assert_int_equal(changed, 1);
	assert_int_equal(breaker_state(&b), BREAKER_HALF_OPEN);
	/* the next ask changes nothing more */
	assert_int_equal(breaker_allow(&b, until, &changed), 1);
	assert_int_equal(changed, 0);
	/* changed may be NULL */
	assert_int_equal(breaker_allow(&b, until, NULL), 1);
}

static void test_open_period_jitter(void **state)
{
	(void)state;
	static const struct {
		uint64_t rnd;
		int64_t want; /* -1: anywhere in [open_ms, open_ms * 1.2] */
	} cases[] = {
	        {0, 30000},
	        {1, 30001},
	        {5999, 35999},
	        {6000, 36000}, /* the top of the draw */
	        {6001, 30000}, /* wraps */
	        {123456789, 30000 + 123456789 % 6001},
	        {0xdeadbeefcafef00dULL, -1},
	        {UINT64_MAX / 2, -1},
	        {UINT64_MAX, 30000 + (int64_t)(UINT64_MAX % 6001)},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct breaker b;
		init_default(&b);
		open_at(&b, 1000, cases[i].rnd);
		int64_t period = breaker_open_until(&b) - 1000;
		if (period < 30000 || period > 36000)
			fail_msg("rnd %llu: open for %lld ms", (unsigned long long)cases[i].rnd,
			         (long long)period);
		if (cases[i].want >= 0 && period != cases[i].want)
			fail_msg("rnd %llu: open for %lld ms, want %lld",
			         (unsigned long long)cases[i].rnd, (long long)period,
			         (long long)cases[i].want);
	}

	/* jitter_pct 0: exactly open_ms whatever rnd */
	struct breaker_config cfg;
	breaker_config_default(&cfg);
	cfg.jitter_pct = 0;
	struct breaker b;
	assert_int_equal(breaker_init(&b, &cfg), 0);
	open_at(&b, 1000, UINT64_MAX);
	assert_int_equal(breaker_open_until(&b), 31000);
}

static void test_open_until_saturates(void **state)
{
	(void)state;
	struct breaker_config cfg;
	breaker_config_default(&cfg);
	cfg.open_ms = INT64_MAX / 2;
	cfg.jitter_pct = 100;
	struct breaker b;
	assert_int_equal(breaker_init(&b, &cfg), 0);
	int64_t t = INT64_MAX / 2 + 1000;
	open_at(&b, t, UINT64_MAX / 2);
	assert_int_equal(breaker_open_until(&b), INT64_MAX);
	assert_int_equal(breaker_allow(&b, INT64_MAX - 1, NULL), 0);
	assert_int_equal(breaker_allow(&b, INT64_MAX, NULL), 1);
	assert_int_equal(breaker_state(&b), BREAKER_HALF_OPEN);
}

/* ---- HALF_OPEN --------------------------------------------------------------- */

static void test_half_open_probe_cap(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	open_at(&b, 0, 0);
	int64_t t = half_open(&b); /* probe 1 */
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 0);
	assert_int_equal(breaker_allow(&b, t + 60000, NULL), 0);
	/* a rate-limited probe frees its slot, and changes nothing else */
	assert_int_equal(breaker_record(&b, t, BREAKER_IGNORED, 0), 0);
	assert_int_equal(breaker_state(&b), BREAKER_HALF_OPEN);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 0);

	/* half_open_probes 1: one at a time */
	struct breaker_config cfg;
	breaker_config_default(&cfg);
	cfg.half_open_probes = 1;
	assert_int_equal(breaker_init(&b, &cfg), 0);
	open_at(&b, 0, 0);
	t = half_open(&b);
	assert_int_equal(breaker_allow(&b, t, NULL), 0);
	assert_int_equal(breaker_record(&b, t, BREAKER_SUCCESS, 0), 0);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 0);
}

static void test_half_open_successes_close(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	open_at(&b, 0, 0);
	int64_t t = half_open(&b);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_record(&b, t + 10, BREAKER_SUCCESS, 0), 0);
	assert_int_equal(breaker_record(&b, t + 20, BREAKER_SUCCESS, 0), 0);
	assert_int_equal(breaker_state(&b), BREAKER_HALF_OPEN);
	assert_int_equal(breaker_record(&b, t + 30, BREAKER_SUCCESS, 0), 1);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	/* closed: no cap, and a fresh run of failures is needed to open again */
	for (int i = 0; i < 10; i++)
		assert_int_equal(breaker_allow(&b, t + 40, NULL), 1);
	assert_int_equal(record_pattern(&b, t + 40, "F", 4), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	assert_int_equal(breaker_record(&b, t + 40, BREAKER_FAILURE, 0), 1);

	/* successes add up across slots: success_threshold 5 with 3 probes */
	struct breaker_config cfg;
	breaker_config_default(&cfg);
	cfg.success_threshold = 5;
	assert_int_equal(breaker_init(&b, &cfg), 0);
	open_at(&b, 0, 0);
	t = half_open(&b);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(record_pattern(&b, t, "S", 3), 0);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(record_pattern(&b, t, "S", 2), 2);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
}

static void test_half_open_failure_reopens(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	open_at(&b, 0, 0);
	int64_t t = half_open(&b);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_record(&b, t + 100, BREAKER_SUCCESS, 0), 0);
	assert_int_equal(breaker_record(&b, t + 500, BREAKER_FAILURE, 1234), 1);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	int64_t until = breaker_open_until(&b);
	assert_int_equal(until, t + 500 + 30000 + 1234);
	assert_int_equal(breaker_allow(&b, t + 600, NULL), 0);
	/* the last probe answers late: nothing changes */
	assert_int_equal(breaker_record(&b, t + 700, BREAKER_SUCCESS, 0), 0);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_open_until(&b), until);
	/* the next half-open starts afresh: 3 probes, 3 successes needed */
	t = half_open(&b);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 0);
	assert_int_equal(record_pattern(&b, t, "S", 2), 0);
	assert_int_equal(breaker_record(&b, t, BREAKER_SUCCESS, 0), 1);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
}

static void test_half_open_answer_without_probe(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	open_at(&b, 0, 0);
	int64_t t = half_open(&b);
	assert_int_equal(breaker_record(&b, t, BREAKER_SUCCESS, 0), 0);
	/* no probe in flight: these are no probes' answers */
	assert_int_equal(breaker_record(&b, t, BREAKER_SUCCESS, 0), 0);
	assert_int_equal(breaker_record(&b, t, BREAKER_SUCCESS, 0), 0);
	assert_int_equal(breaker_record(&b, t, BREAKER_FAILURE, 0), 0);
	assert_int_equal(breaker_record(&b, t, BREAKER_IGNORED, 0), 0);
	assert_int_equal(breaker_state(&b), BREAKER_HALF_OPEN);
	/* and the count in flight did not go below zero */
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 0);
}

static void test_late_record_while_open(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	/* calls let through while closed, then the breaker opens */
	for (int i = 0; i < 12; i++)
		assert_int_equal(breaker_allow(&b, 1000, NULL), 1);
	open_at(&b, 1000, 0);
	assert_int_equal(breaker_open_until(&b), 31000);
	/* the others answer late: more failures in a row than open a closed breaker */
	assert_int_equal(record_pattern(&b, 2000, "FFFFFFSI", 8), 0);
	assert_int_equal(breaker_record(&b, 30999, BREAKER_FAILURE, 777), 0);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_open_until(&b), 31000);
	/* half-open as scheduled, with exactly 3 probes */
	int64_t t = half_open(&b);
	assert_int_equal(t, 31000);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 1);
	assert_int_equal(breaker_allow(&b, t, NULL), 0);
}

/* ---- the failure rate over the window ---------------------------------------- */

static void test_rate_interleaved_40_pct_opens(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	/* S F S F S: 40 %, never 2 failures in a row; 30 calls over 3 s */
	int opened_at = 0;
	for (int i = 0; i < 30 && !opened_at; i++) {
		enum breaker_outcome o = outcome_of_char("SFSFS"[i % 5]);
		assert_int_equal(breaker_allow(&b, i * 100, NULL), 1);
		if (breaker_record(&b, i * 100, o, 0))
			opened_at = i + 1;
	}
	/* opens once min_calls are counted: the 20th call, 8 of them failed */
	assert_int_equal(opened_at, 20);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_allow(&b, 3000, NULL), 0);
}

static void test_rate_below_min_calls_stays_closed(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	assert_int_equal(record_pattern(&b, 1000, "SFSFS", 19), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);

	/* the same share trips a breaker wanting fewer calls */
	struct breaker_config cfg;
	breaker_config_default(&cfg);
	cfg.min_calls = 10;
	assert_int_equal(breaker_init(&b, &cfg), 0);
	assert_int_equal(record_pattern(&b, 1000, "SFSFS", 19), 10);
}

static void test_rate_threshold_edge(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	/* 20 %: never */
	assert_int_equal(record_pattern(&b, 1000, "SSSSF", 60), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);

	/* 30 % exactly trips (>=), at the 20th call */
	init_default(&b);
	assert_int_equal(record_pattern(&b, 1000, "SSFSSFSSSF", 30), 20);

	/* just below does not: 29 of 100, 30 of 101; 31 of 102 does */
	struct breaker_config cfg;
	breaker_config_default(&cfg);
	cfg.min_calls = 100;
	assert_int_equal(breaker_init(&b, &cfg), 0);
	assert_int_equal(record_pattern(&b, 1000, "S", 42), 0);
	assert_int_equal(record_pattern(&b, 1000, "SF", 58), 0);
	assert_int_equal(breaker_record(&b, 1000, BREAKER_FAILURE, 0), 0);
	assert_int_equal(breaker_record(&b, 1000, BREAKER_FAILURE, 0), 1);
}

static void test_window_remembers_recent_calls(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	/* 18 calls at 50 % at t = 0, 2 more 9.999 s later: 20 calls, 10 failed */
	assert_int_equal(record_pattern(&b, 0, "SF", 18), 0);
	assert_int_equal(record_pattern(&b, 9999, "SF", 2), 2);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
}

static void test_window_forgets_old_calls(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	assert_int_equal(record_pattern(&b, 0, "SF", 18), 0);
	/* a window later: 20 calls at 20 % (with the old 18: 13 of 38, 34 %) */
	assert_int_equal(record_pattern(&b, 10000, "SSSSF", 20), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	/* the new calls do count: 2 more failures make 6 of 22, a third 7 of 23 */
	assert_int_equal(record_pattern(&b, 10500, "F", 2), 0);
	assert_int_equal(breaker_record(&b, 10500, BREAKER_FAILURE, 0), 1);

	/* sliding: calls leave bucket by bucket */
	init_default(&b);
	assert_int_equal(record_pattern(&b, 0, "SF", 10), 0);    /* 5 of 10 */
	assert_int_equal(record_pattern(&b, 5000, "SF", 8), 0);  /* 9 of 18 */
	assert_int_equal(record_pattern(&b, 12000, "S", 2), 0);  /* t = 0 gone: 4 of 10 */
	assert_int_equal(record_pattern(&b, 12000, "SF", 8), 0); /* 8 of 18 */
	assert_int_equal(record_pattern(&b, 12000, "F", 2), 2);  /* 10 of 20 */
}

static void test_window_idle_gap_clears(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	assert_int_equal(record_pattern(&b, 0, "SF", 18), 0);
	/* 3 h later (the same bucket slot as t = 0): only the new calls count */
	int64_t t = 3LL * 3600 * 1000;
	assert_int_equal(record_pattern(&b, t, "SSSSF", 20), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	/* and again after a week, a bucket off */
	t += 7LL * 24 * 3600 * 1000 + 1500;
	assert_int_equal(record_pattern(&b, t, "SF", 19), 0);
	assert_int_equal(breaker_record(&b, t, BREAKER_FAILURE, 0), 1); /* 10 of 20 */
}

static void test_time_backwards(void **state)
{
	(void)state;
	struct breaker b;
	init_default(&b);
	/* calls at earlier times count as at the latest time seen, once each */
	assert_int_equal(record_pattern(&b, 50000, "SF", 10), 0);
	assert_int_equal(record_pattern(&b, 20000, "SF", 6), 0);
	assert_int_equal(record_pattern(&b, 43000, "SF", 2), 0);
	assert_int_equal(record_pattern(&b, INT64_MIN, "S", 1), 0); /* 19 calls, 9 failed */
	assert_int_equal(breaker_record(&b, -1, BREAKER_FAILURE, 0), 1);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_open_until(&b), 80000);
	/* an OPEN breaker stays open for a clock going back */
	assert_int_equal(breaker_allow(&b, INT64_MIN, NULL), 0);
	assert_int_equal(breaker_allow(&b, 0, NULL), 0);
	assert_int_equal(breaker_open_until(&b), 80000);
	assert_int_equal(breaker_allow(&b, 80000, NULL), 1);

	/* those calls leave the window with the latest time's */
	init_default(&b);
	assert_int_equal(record_pattern(&b, 50000, "SF", 10), 0);
	assert_int_equal(record_pattern(&b, 1000, "SF", 8), 0);
	assert_int_equal(record_pattern(&b, 60000, "SSSSF", 20), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);

	/* a clock starting far in the negatives works too */
	init_default(&b);
	assert_int_equal(record_pattern(&b, INT64_MIN, "SF", 18), 0);
	assert_int_equal(record_pattern(&b, INT64_MIN + 5, "SF", 2), 2);
}

/* ---- outcomes ------------------------------------------------------------------ */

static void test_outcome_of(void **state)
{
	(void)state;
	static const struct {
		enum send_class c;
		int64_t took, slow;
		enum breaker_outcome want;
	} cases[] = {
	        {SEND_OK, 0, 2000, BREAKER_SUCCESS},
	        {SEND_OK, 1999, 2000, BREAKER_SUCCESS},
	        {SEND_OK, 2000, 2000, BREAKER_FAILURE}, /* slow */
	        {SEND_OK, 60000, 2000, BREAKER_FAILURE},
	        {SEND_OK, 60000, 0, BREAKER_SUCCESS}, /* slow_ms 0: off */
	        {SEND_PERMANENT, 10, 2000, BREAKER_SUCCESS},
	        {SEND_PERMANENT, 2000, 2000, BREAKER_FAILURE},
	        {SEND_PERMANENT, 60000, 0, BREAKER_SUCCESS},
	        {SEND_RETRY, 0, 2000, BREAKER_FAILURE},
	        {SEND_RETRY, 10, 0, BREAKER_FAILURE},
	        {SEND_RATE, 10, 2000, BREAKER_IGNORED},
	        {SEND_RATE, 60000, 2000, BREAKER_IGNORED}, /* asked to slow down, not failing */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum breaker_outcome got =
		        breaker_outcome_of(cases[i].c, cases[i].took, cases[i].slow);
		if (got != cases[i].want)
			fail_msg("class %d took %lld slow %lld: got %d, want %d", cases[i].c,
			         (long long)cases[i].took, (long long)cases[i].slow, got,
			         cases[i].want);
	}
	/* through send_classify: the provider's answers as they come */
	static const struct {
		long status;
		int code;
		enum breaker_outcome want;
	} answers[] = {
	        {0, 0, BREAKER_FAILURE}, /* timeout */
	        {200, 0, BREAKER_SUCCESS},      {503, 0, BREAKER_FAILURE},
	        {500, 131000, BREAKER_FAILURE}, {503, 131016, BREAKER_FAILURE},
	        {400, 133004, BREAKER_FAILURE}, {400, 131057, BREAKER_FAILURE},
	        {429, 130429, BREAKER_IGNORED}, {400, 131056, BREAKER_IGNORED},
	        {400, 131026, BREAKER_SUCCESS}, /* the customer's problem */
	        {400, 131050, BREAKER_SUCCESS},
	};
	for (size_t i = 0; i < sizeof(answers) / sizeof(answers[0]); i++) {
		enum send_class c = send_classify(answers[i].status, answers[i].code);
		enum breaker_outcome got = breaker_outcome_of(c, 100, 2000);
		if (got != answers[i].want)
			fail_msg("status %ld code %d: got %d, want %d", answers[i].status,
			         answers[i].code, got, answers[i].want);
	}
}

static void test_state_names(void **state)
{
	(void)state;
	assert_string_equal(breaker_state_name(BREAKER_CLOSED), "closed");
	assert_string_equal(breaker_state_name(BREAKER_OPEN), "open");
	assert_string_equal(breaker_state_name(BREAKER_HALF_OPEN), "half_open");
	assert_string_equal(breaker_state_name((enum breaker_state)7), "unknown");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_config_defaults),
	        cmocka_unit_test(test_init_bounds),
	        cmocka_unit_test(test_fifth_failure_in_row_opens),
	        cmocka_unit_test(test_success_resets_failure_run),
	        cmocka_unit_test(test_ignored_counts_neither_way),
	        cmocka_unit_test(test_open_refuses_until_period_ends),
	        cmocka_unit_test(test_open_period_jitter),
	        cmocka_unit_test(test_open_until_saturates),
	        cmocka_unit_test(test_half_open_probe_cap),
	        cmocka_unit_test(test_half_open_successes_close),
	        cmocka_unit_test(test_half_open_failure_reopens),
	        cmocka_unit_test(test_half_open_answer_without_probe),
	        cmocka_unit_test(test_late_record_while_open),
	        cmocka_unit_test(test_rate_interleaved_40_pct_opens),
	        cmocka_unit_test(test_rate_below_min_calls_stays_closed),
	        cmocka_unit_test(test_rate_threshold_edge),
	        cmocka_unit_test(test_window_remembers_recent_calls),
	        cmocka_unit_test(test_window_forgets_old_calls),
	        cmocka_unit_test(test_window_idle_gap_clears),
	        cmocka_unit_test(test_time_backwards),
	        cmocka_unit_test(test_outcome_of),
	        cmocka_unit_test(test_state_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
