/*
 * test_loadgen.c - the arithmetic of `munim loadgen`: the schedule of a
 * constant, a stepped and a surge profile (counts per step and per phase,
 * due times, the caps and their errors, each named), the log-linear histogram (bucket bounds, 1%
 * precision against exact sorted percentiles, the rank convention, empty and clamped values), who
 * sends which message, the wamids replies are matched by, the report's JSON line, and the webhook
 * template (byte for byte what tools_webhook_build makes, escapes and non-ASCII included; a text
 * that is not UTF-8 is ERR_INVAL).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

/* ---- schedule ------------------------------------------------------------- */

static void test_sched_constant(void **state)
{
	(void)state;
	struct loadgen_sched s;
	assert_int_equal(loadgen_sched_init(&s, 200, 0, 3, 3), 0);
	assert_int_equal(s.nsteps, 1);
	assert_int_equal(s.total, 600);
	int step = -1;
	assert_int_equal(loadgen_sched_at_us(&s, 0, &step), 0);
	assert_int_equal(step, 0);
	assert_int_equal(loadgen_sched_at_us(&s, 1, NULL), 5000);
	assert_int_equal(loadgen_sched_at_us(&s, 200, NULL), 1000000);
	assert_int_equal(loadgen_sched_at_us(&s, 599, NULL), 2995000);
	loadgen_sched_release(&s);

	/* a rate that does not divide a second: evenly spaced, rounded down */
	assert_int_equal(loadgen_sched_init(&s, 3, 0, 1, 1), 0);
	assert_int_equal(s.total, 3);
	assert_int_equal(loadgen_sched_at_us(&s, 1, NULL), 333333);
	assert_int_equal(loadgen_sched_at_us(&s, 2, NULL), 666666);
	loadgen_sched_release(&s);
}

static void test_sched_steps(void **state)
{
	(void)state;
	struct loadgen_sched s;
	/* 100/s for 2 s, 150/s for 2 s, 200/s for the last 1 s */
	assert_int_equal(loadgen_sched_init(&s, 100, 50, 2, 5), 0);
	assert_int_equal(s.nsteps, 3);
	assert_int_equal(s.total, 200 + 300 + 200);
	assert_int_equal(s.first[0], 0);
	assert_int_equal(s.first[1], 200);
	assert_int_equal(s.first[2], 500);
	assert_int_equal(s.first[3], 700);
	assert_int_equal(loadgen_sched_rate(&s, 2), 200);
	assert_int_equal(loadgen_sched_step_start_us(&s, 2), 4000000);
	int step = -1;
	assert_int_equal(loadgen_sched_at_us(&s, 199, &step), 1990000);
	assert_int_equal(step, 0);
	assert_int_equal(loadgen_sched_at_us(&s, 200, &step), 2000000);
	assert_int_equal(step, 1);
	assert_int_equal(loadgen_sched_at_us(&s, 499, &step), 2000000 + 299 * 1000000 / 150);
	assert_int_equal(step, 1);
	assert_int_equal(loadgen_sched_at_us(&s, 500, &step), 4000000);
	assert_int_equal(step, 2);
	assert_int_equal(loadgen_sched_at_us(&s, 699, &step), 4000000 + 199 * 5000);
	/* due times never go backwards and stay inside the run */
	int64_t prev = -1;
	for (uint64_t i = 0; i < s.total; i++) {
		int64_t t = loadgen_sched_at_us(&s, i, NULL);
		assert_true(t >= prev);
		assert_true(t < 5000000);
		prev = t;
	}
	loadgen_sched_release(&s);

	/* a step longer than the run is the whole run */
	assert_int_equal(loadgen_sched_init(&s, 10, 5, 100, 4), 0);
	assert_int_equal(s.nsteps, 1);
	assert_int_equal(s.total, 40);
	loadgen_sched_release(&s);
}

static void test_sched_inval(void **state)
{
	(void)state;
	struct loadgen_sched s;
	assert_int_equal(loadgen_sched_init(&s, 0, 0, 1, 1), ERR_INVAL);
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_init(&s, LOADGEN_MAX_RATE + 1, 0, 1, 1), ERR_INVAL);
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_init(&s, 10, 0, 1, 0), ERR_INVAL);
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_init(&s, 10, 0, 1, LOADGEN_MAX_DURATION + 1), ERR_INVAL);
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_init(&s, 10, 0, 0, 10), ERR_INVAL);
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_init(&s, 10, -1, 1, 10), ERR_INVAL);
	loadgen_sched_release(&s);
	/* the third step would run at 101000/s */
	assert_int_equal(loadgen_sched_init(&s, 99000, 1000, 1, 3), ERR_INVAL);
	loadgen_sched_release(&s);
	/* 1200 steps */
	assert_int_equal(loadgen_sched_init(&s, 1, 0, 3, 3600), ERR_INVAL);
	loadgen_sched_release(&s);
}

static void test_sched_toobig(void **state)
{
	(void)state;
	struct loadgen_sched s;
	assert_int_equal(loadgen_sched_init(&s, 100000, 0, 100, 100), 0);
	assert_int_equal(s.total, LOADGEN_MAX_MSGS);
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_init(&s, 100000, 0, 101, 101), ERR_TOOBIG);
	assert_int_equal(s.total, 10100000);
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_init(&s, 50000, 10000, 60, 240), ERR_TOOBIG);
	loadgen_sched_release(&s);
}

/* Due times never go backwards, stay inside the run, and each message
 * lies in the step that holds its time. */
static void assert_monotonic(const struct loadgen_sched *s)
{
	int64_t prev = -1;
	for (uint64_t i = 0; i < s->total; i++) {
		int k = -1;
		int64_t t = loadgen_sched_at_us(s, i, &k);
		assert_true(t >= prev);
		assert_true(t < s->duration_s * 1000000);
		assert_true(i >= s->first[k] && i < s->first[k + 1]);
		assert_true(t >= loadgen_sched_step_start_us(s, k));
		assert_true(t < loadgen_sched_step_start_us(s, k) + s->steps[k].len_s * 1000000);
		prev = t;
	}
}

static void test_sched_surge(void **state)
{
	(void)state;
	struct loadgen_sched s;
	/* the defaults: 10/s, x10 from 10 s for 10 s, then 10/s until 30 s */
	assert_int_equal(loadgen_sched_surge(&s, 10, 10, 10, 10, 30), 0);
	assert_int_equal(s.nsteps, 3);
	assert_string_equal(s.steps[0].name, "before");
	assert_string_equal(s.steps[1].name, "surge");
	assert_string_equal(s.steps[2].name, "after");
	assert_int_equal(loadgen_sched_rate(&s, 0), 10);
	assert_int_equal(loadgen_sched_rate(&s, 1), 100);
	assert_int_equal(loadgen_sched_rate(&s, 2), 10);
	/* messages per phase: rate times length */
	assert_int_equal(s.first[1] - s.first[0], 100);
	assert_int_equal(s.first[2] - s.first[1], 1000);
	assert_int_equal(s.first[3] - s.first[2], 100);
	assert_int_equal(s.total, 1200);
	assert_int_equal(s.duration_s, 30);
	assert_int_equal(loadgen_sched_step_start_us(&s, 1), 10000000);
	assert_int_equal(loadgen_sched_step_start_us(&s, 2), 20000000);
	int k = -1;
	assert_int_equal(loadgen_sched_at_us(&s, 99, &k), 9900000);
	assert_int_equal(k, 0);
	assert_int_equal(loadgen_sched_at_us(&s, 100, &k), 10000000);
	assert_int_equal(k, 1);
	assert_int_equal(loadgen_sched_at_us(&s, 101, &k), 10010000);
	assert_int_equal(loadgen_sched_at_us(&s, 1099, &k), 19990000);
	assert_int_equal(k, 1);
	assert_int_equal(loadgen_sched_at_us(&s, 1100, &k), 20000000);
	assert_int_equal(k, 2);
	assert_int_equal(loadgen_sched_at_us(&s, 1199, &k), 29900000);
	assert_monotonic(&s);
	loadgen_sched_release(&s);

	/* a factor that is not whole: 7 x 2.5 = 17.5, rounded to 18/s */
	assert_int_equal(loadgen_sched_surge(&s, 7, 2.5, 2, 3, 6), 0);
	assert_int_equal(loadgen_sched_rate(&s, 1), 18);
	assert_int_equal(s.total, 7 * 2 + 18 * 3 + 7 * 1);
	assert_monotonic(&s);
	loadgen_sched_release(&s);

	/* a surge from the start, or to the end, has no empty phase */
	assert_int_equal(loadgen_sched_surge(&s, 5, 4, 0, 3, 5), 0);
	assert_int_equal(s.nsteps, 2);
	assert_string_equal(s.steps[0].name, "surge");
	assert_string_equal(s.steps[1].name, "after");
	assert_int_equal(s.total, 20 * 3 + 5 * 2);
	assert_int_equal(loadgen_sched_at_us(&s, 60, &k), 3000000);
	assert_int_equal(k, 1);
	assert_monotonic(&s);
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_surge(&s, 5, 4, 2, 3, 5), 0);
	assert_int_equal(s.nsteps, 2);
	assert_string_equal(s.steps[1].name, "surge");
	assert_int_equal(s.total, 5 * 2 + 20 * 3);
	assert_monotonic(&s);
	loadgen_sched_release(&s);
	/* factor 1: a constant rate cut into phases */
	assert_int_equal(loadgen_sched_surge(&s, 50, 1, 1, 1, 3), 0);
	assert_int_equal(s.total, 150);
	assert_int_equal(loadgen_sched_at_us(&s, 75, NULL), 1500000);
	loadgen_sched_release(&s);
}

/* A surge out of bounds: ERR_INVAL (or ERR_TOOBIG) and why names the setting. */
static void assert_surge_refused(int64_t rate, double factor, int64_t at, int64_t len,
                                 int64_t duration, int want, const char *names)
{
	struct loadgen_sched s;
	assert_int_equal(loadgen_sched_surge(&s, rate, factor, at, len, duration), want);
	assert_non_null(strstr(s.why, names));
	assert_null(s.steps);
	loadgen_sched_release(&s);
}

static void test_sched_surge_inval(void **state)
{
	(void)state;
	assert_surge_refused(0, 10, 10, 10, 30, ERR_INVAL, "--rate");
	assert_surge_refused(LOADGEN_MAX_RATE + 1, 10, 10, 10, 30, ERR_INVAL, "--rate");
	assert_surge_refused(10, 0.5, 10, 10, 30, ERR_INVAL, "--surge-factor");
	assert_surge_refused(10, LOADGEN_MAX_SURGE_FACTOR + 1, 1, 1, 3, ERR_INVAL,
	                     "--surge-factor");
	assert_surge_refused(10, NAN, 1, 1, 3, ERR_INVAL, "--surge-factor");
	/* 20000 x 10 is past the most a step may ask */
	assert_surge_refused(20000, 10, 1, 1, 3, ERR_INVAL, "surge's rate");
	assert_surge_refused(10, 10, 10, 10, 0, ERR_INVAL, "--duration");
	assert_surge_refused(10, 10, 10, 10, LOADGEN_MAX_DURATION + 1, ERR_INVAL, "--duration");
	assert_surge_refused(10, 10, -1, 10, 30, ERR_INVAL, "--surge-at -1");
	assert_surge_refused(10, 10, 10, 0, 30, ERR_INVAL, "--surge-for 0");
	/* the defaults with the default --duration 10: the surge would end at 20 s */
	assert_surge_refused(10, 10, 10, 10, 10, ERR_INVAL, "end by --duration 10");
	assert_surge_refused(10, 10, 30, 1, 30, ERR_INVAL, "end by --duration 30");
	/* 10000/s x 10 for 101 s: 10.1 million messages */
	struct loadgen_sched s;
	assert_int_equal(loadgen_sched_surge(&s, 10000, 10, 0, 101, 101), ERR_TOOBIG);
	assert_int_equal(s.total, 10100000);
	assert_non_null(strstr(s.why, "at most 10000000"));
	loadgen_sched_release(&s);
}

/* The general builder: steps of their own rate and length, back to back. */
static void test_sched_build(void **state)
{
	(void)state;
	struct loadgen_sched s;
	const struct loadgen_step ok[] = {{30, 99, 2, NULL}, {1, 99, 1, NULL}, {400, 99, 3, NULL}};
	assert_int_equal(loadgen_sched_build(&s, ok, 3), 0);
	assert_int_equal(s.steps[0].start_s, 0); /* start_s is computed, not taken */
	assert_int_equal(s.steps[1].start_s, 2);
	assert_int_equal(s.steps[2].start_s, 3);
	assert_int_equal(s.total, 60 + 1 + 1200);
	assert_int_equal(s.duration_s, 6);
	assert_monotonic(&s);
	loadgen_sched_release(&s);

	const struct loadgen_step zero_len[] = {{30, 0, 2, NULL}, {30, 0, 0, NULL}};
	assert_int_equal(loadgen_sched_build(&s, zero_len, 2), ERR_INVAL);
	assert_non_null(strstr(s.why, "at least 1 s"));
	loadgen_sched_release(&s);
	const struct loadgen_step zero_rate[] = {{0, 0, 2, NULL}};
	assert_int_equal(loadgen_sched_build(&s, zero_rate, 1), ERR_INVAL);
	assert_non_null(strstr(s.why, "step 0 asks 0/s"));
	loadgen_sched_release(&s);
	const struct loadgen_step too_long[] = {{1, 0, 3000, NULL}, {1, 0, 601, NULL}};
	assert_int_equal(loadgen_sched_build(&s, too_long, 2), ERR_INVAL);
	assert_non_null(strstr(s.why, "at most 3600 s"));
	loadgen_sched_release(&s);
	assert_int_equal(loadgen_sched_build(&s, ok, 0), ERR_INVAL);
	assert_non_null(strstr(s.why, "1 to 1000 steps"));
	loadgen_sched_release(&s);
}

/* ---- histogram ------------------------------------------------------------ */

static void test_hist_buckets(void **state)
{
	(void)state;
	assert_int_equal(loadgen_hist_bucket(-5), 0);
	assert_int_equal(loadgen_hist_bucket(0), 0);
	assert_int_equal(loadgen_hist_bucket(255), 255);
	assert_int_equal(loadgen_hist_bucket(256), 256);
	assert_int_equal(loadgen_hist_bucket(257), 256);
	assert_int_equal(loadgen_hist_bucket(258), 257);
	assert_int_equal(loadgen_hist_bucket(512), 384);
	assert_int_equal(loadgen_hist_lowest(384), 512);
	int last = LOADGEN_HIST_BUCKETS - 1;
	assert_int_equal(loadgen_hist_bucket(((int64_t)1 << 32) - 1), last);
	assert_int_equal(loadgen_hist_bucket((int64_t)1 << 40), last);
	/* every value lies in its bucket, and a bucket is at most 1/128 of its values */
	int prev = 0;
	for (int64_t v = 1; v < ((int64_t)1 << 32); v = v * 21 / 20 + 1) {
		int b = loadgen_hist_bucket(v);
		assert_true(b >= prev);
		prev = b;
		int64_t lo = loadgen_hist_lowest(b), hi = loadgen_hist_lowest(b + 1);
		if (b == last)
			hi = (int64_t)1 << 32;
		assert_true(lo <= v && v < hi);
		assert_true((double)(hi - lo) <= (double)lo / 128.0 || hi - lo == 1);
	}
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static void test_hist_precision(void **state)
{
	(void)state;
	enum { N = 20000 };
	int64_t *v = xmalloc(N * sizeof(*v));
	struct loadgen_hist *h = xcalloc(1, sizeof(*h));
	uint64_t x = 88172645463325252ULL;
	for (int i = 0; i < N; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		/* log-uniform from 1 us to about 17 minutes */
		v[i] = (int64_t)exp((double)(x % 1000000) / 1000000.0 * 20.7);
		loadgen_hist_add(h, v[i]);
	}
	qsort(v, N, sizeof(*v), cmp_i64);
	const double pcts[] = {1, 10, 50, 90, 95, 99, 99.9};
	for (size_t k = 0; k < sizeof(pcts) / sizeof(pcts[0]); k++) {
		size_t rank = (size_t)ceil(pcts[k] / 100.0 * N);
		int64_t exact = v[rank - 1], got = loadgen_hist_pct(h, pcts[k]);
		assert_true(fabs((double)(got - exact)) <= (double)exact * 0.01);
	}
	assert_int_equal(loadgen_hist_pct(h, 100), v[N - 1]);
	assert_int_equal(h->n, N);
	free(v);
	free(h);
}

static void test_hist_rank_and_edges(void **state)
{
	(void)state;
	struct loadgen_hist *h = xcalloc(1, sizeof(*h));
	assert_int_equal(loadgen_hist_pct(h, 50), -1); /* empty */
	assert_int_equal(loadgen_hist_pct(h, 100), -1);
	/* 570 of 600 at 1 us: p95 is rank 570, still 1; p96 is the slow ones */
	for (int i = 0; i < 570; i++)
		loadgen_hist_add(h, 1);
	for (int i = 0; i < 30; i++)
		loadgen_hist_add(h, 100000);
	assert_int_equal(loadgen_hist_pct(h, 95), 1);
	int64_t p96 = loadgen_hist_pct(h, 96);
	assert_true(p96 >= 99500 && p96 <= 100000);
	assert_int_equal(loadgen_hist_pct(h, 100), 100000);
	/* never above the maximum, even in the middle of a wide bucket */
	memset(h, 0, sizeof(*h));
	loadgen_hist_add(h, 1000000);
	assert_int_equal(loadgen_hist_pct(h, 50), 1000000);
	/* negative latencies (clock resolution) count as 0; huge ones keep their max */
	memset(h, 0, sizeof(*h));
	loadgen_hist_add(h, -3);
	assert_int_equal(loadgen_hist_pct(h, 50), 0);
	loadgen_hist_add(h, (int64_t)1 << 40);
	assert_int_equal(loadgen_hist_pct(h, 100), (int64_t)1 << 40);
	assert_true(loadgen_hist_pct(h, 99) <= (int64_t)1 << 40);
	free(h);
}

/* ---- who sends what; wamids -------------------------------------------------- */

static void test_pick_rotates(void **state)
{
	(void)state;
	static const char *const texts[] = {"a", "b"};
	struct loadgen_mix m = {100, 900, 3, 2, texts, 2};
	uint64_t phone, cust;
	const char *text;
	const uint64_t want_phone[] = {100, 101, 102, 100, 101, 102, 100};
	const uint64_t want_cust[] = {900, 900, 900, 901, 901, 901, 900};
	const char *want_text[] = {"a", "a", "a", "b", "b", "b", "a"};
	for (uint64_t i = 0; i < 7; i++) {
		loadgen_pick(&m, i, &phone, &cust, &text);
		assert_int_equal(phone, want_phone[i]);
		assert_int_equal(cust, want_cust[i]);
		assert_string_equal(text, want_text[i]);
	}
}

static void test_wamid_index(void **state)
{
	(void)state;
	char tag[LOADGEN_TAG_CAP];
	loadgen_wamid_tag(0xABCDEF0123456789ULL, tag);
	assert_string_equal(tag, "ABCDEF0123456789");
	char w[LOADGEN_WAMID_CAP];
	uint64_t i = 99;
	loadgen_wamid(tag, 0, w);
	assert_string_equal(w, "wamid.LG00000000000000000000_ABCDEF0123456789");
	assert_int_equal(loadgen_wamid_index(tag, w, 10, &i), 0);
	assert_int_equal(i, 0);
	/* 0x9e3779b97f4a7c15, the scatter multiplier, in decimal */
	loadgen_wamid(tag, 1, w);
	assert_string_equal(w, "wamid.LG11400714819323198485_ABCDEF0123456789");
	uint64_t last[] = {599, 123456789, UINT64_MAX - 1};
	for (size_t k = 0; k < sizeof(last) / sizeof(last[0]); k++) {
		loadgen_wamid(tag, last[k], w);
		assert_int_equal(strlen(w), LOADGEN_WAMID_CAP - 1);
		assert_int_equal(loadgen_wamid_index(tag, w, last[k] + 1, &i), 0);
		assert_int_equal(i, last[k]);
		assert_int_equal(loadgen_wamid_index(tag, w, last[k], &i), ERR_NOTFOUND);
	}
}

static void test_wamid_index_notfound(void **state)
{
	(void)state;
	const char *t = "0000000000000001";
	uint64_t i;
	char w[LOADGEN_WAMID_CAP];
	assert_int_equal(loadgen_wamid_index(t, NULL, 10, &i), ERR_NOTFOUND);
	assert_int_equal(loadgen_wamid_index(t, "wamid.SAY123", 10, &i), ERR_NOTFOUND);
	loadgen_wamid("0000000000000002", 1, w);
	assert_int_equal(loadgen_wamid_index(t, w, 10, &i), ERR_NOTFOUND); /* another run */
	loadgen_wamid(t, 10, w);
	assert_int_equal(loadgen_wamid_index(t, w, 10, &i), ERR_NOTFOUND); /* beyond the run */
	static const char *const bad[] = {
	        "wamid.LG_0000000000000001",                      /* no number */
	        "wamid.LG1_0000000000000001",                     /* not 20 digits */
	        "wamid.LG0000000000000000000x_0000000000000001",  /* not a digit */
	        "wamid.LG00000000000000000000_000000000000000",   /* tag cut short */
	        "wamid.LG00000000000000000000_00000000000000012", /* tag run on */
	        "wamid.LG00000000000000000000-0000000000000001",  /* no '_' */
	        "wamid.LG00000000000000000001_0000000000000001",  /* 1: no index below 10 */
	        "wamid.LG18446744073709551616_0000000000000001",  /* 2^64 */
	        "wamid.LG99999999999999999999_0000000000000001",  /* past 64 bits */
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(loadgen_wamid_index(t, bad[k], 10, &i), ERR_NOTFOUND);
	assert_int_equal(
	        loadgen_wamid_index(t, "wamid.LG00000000000000000000_0000000000000001", 10, &i), 0);
	assert_int_equal(i, 0);
}

/* Consecutive messages' wamids are in no order, as real ones are: of the
 * first 1,000, about half are smaller than the one before. */
static void test_wamids_scatter(void **state)
{
	(void)state;
	char tag[LOADGEN_TAG_CAP], prev[LOADGEN_WAMID_CAP], w[LOADGEN_WAMID_CAP];
	loadgen_wamid_tag(42, tag);
	loadgen_wamid(tag, 0, prev);
	int descents = 0;
	for (uint64_t i = 1; i < 1000; i++) {
		loadgen_wamid(tag, i, w);
		assert_true(strcmp(w, prev) != 0);
		descents += strcmp(w, prev) < 0;
		memcpy(prev, w, sizeof(w));
	}
	assert_in_range(descents, 300, 700);
}

/* ---- the report --------------------------------------------------------------- */

static double num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);
	assert_true(json_is_number(v));
	return json_number_value(v);
}

static void test_report_json(void **state)
{
	(void)state;
	struct loadgen_hist *web = xcalloc(1, sizeof(*web)), *e2e = xcalloc(1, sizeof(*e2e));
	for (int i = 1; i <= 100; i++)
		loadgen_hist_add(web, i * 100); /* 0.1 .. 10 ms */
	struct loadgen_step_figures steps[2] = {
	        {100, 0, 500, 499, 1, web, e2e, NULL},
	        {200, 5000000, 1000, 1000, 0, web, e2e, NULL},
	};
	struct loadgen_report r = {
	        .profile = "step",
	        .rate = 100,
	        .step = 100,
	        .step_every_s = 5,
	        .duration_s = 10,
	        .tenants = 2,
	        .customers = 100,
	        .connections = 256,
	        .sent = 1500,
	        .ok = 1499,
	        .errors = 1,
	        .lost = 1,
	        .duplicates = 2,
	        .unexpected = 0,
	        .webhook = web,
	        .e2e = e2e,
	        .achieved_rate = 149.96,
	        .send_lag_p99_us = 250,
	        .loop_lag_p99_us = 100,
	        .conn_waits = 3,
	        .drain_s = 0.5,
	        .nsteps = 2,
	        .steps = steps,
	};
	r.codes[200 - LOADGEN_CODE_MIN] = 1499;
	struct buf b;
	buf_init(&b);
	loadgen_report_json(&b, &r);
	assert_null(strchr(b.data, '\n'));
	json_error_t err;
	json_t *root = json_loads(b.data, 0, &err);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "profile")), "step");
	assert_true(num(root, "rate") == 100);
	assert_true(num(root, "sent") == 1500);
	assert_true(num(root, "ok") == 1499);
	assert_true(num(root, "errors") == 1);
	assert_true(num(root, "lost") == 1);
	assert_true(num(root, "duplicates") == 2);
	assert_true(num(root, "send_lag_p99_ms") == 0.25);
	assert_true(num(root, "loop_lag_p99_ms") == 0.1);
	assert_true(num(root, "achieved_rate") == 150.0);
	json_t *codes = json_object_get(root, "codes");
	assert_int_equal(json_object_size(codes), 1);
	assert_true(num(codes, "200") == 1499);
	json_t *w = json_object_get(root, "webhook_ms");
	assert_true(fabs(num(w, "p50") - 5.0) <= 0.05); /* the middle of 5 ms's bucket */
	assert_true(num(w, "max") == 10.0);
	/* nothing measured: null, not 0 */
	assert_true(json_is_null(json_object_get(json_object_get(root, "e2e_ms"), "p99")));
	json_t *st = json_object_get(root, "steps");
	assert_int_equal(json_array_size(st), 2);
	assert_true(num(json_array_get(st, 1), "rate") == 200);
	assert_true(num(json_array_get(st, 1), "start_s") == 5.0);
	assert_true(num(json_array_get(st, 0), "lost") == 1);
	json_decref(root);

	/* a constant profile has no steps */
	r.profile = "constant";
	r.nsteps = 0;
	buf_reset(&b);
	loadgen_report_json(&b, &r);
	root = json_loads(b.data, 0, &err);
	assert_non_null(root);
	assert_null(json_object_get(root, "steps"));
	assert_null(json_object_get(root, "step"));
	json_decref(root);

	buf_reset(&b);
	loadgen_report_text(&b, &r);
	assert_non_null(strstr(b.data, "constant: 100/s for 10 s"));
	assert_non_null(strstr(b.data, "lost 1, duplicated 2"));

	/* a surge: its figures, and one entry per phase, by name */
	steps[0].name = "before";
	steps[1].name = "surge";
	r.profile = "surge";
	r.nsteps = 2;
	r.surge_factor = 2;
	r.surge_rate = 200;
	r.surge_at_s = 5;
	r.surge_for_s = 5;
	buf_reset(&b);
	loadgen_report_json(&b, &r);
	root = json_loads(b.data, 0, &err);
	assert_non_null(root);
	assert_string_equal(json_string_value(json_object_get(root, "profile")), "surge");
	assert_true(num(root, "surge_factor") == 2);
	assert_true(num(root, "surge_rate") == 200);
	assert_true(num(root, "surge_at_s") == 5);
	assert_true(num(root, "surge_for_s") == 5);
	assert_null(json_object_get(root, "steps"));
	assert_null(json_object_get(root, "step"));
	json_t *ph = json_object_get(root, "phases");
	assert_int_equal(json_array_size(ph), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(ph, 0), "phase")),
	                    "before");
	assert_string_equal(json_string_value(json_object_get(json_array_get(ph, 1), "phase")),
	                    "surge");
	assert_true(num(json_array_get(ph, 1), "rate") == 200);
	assert_true(num(json_array_get(ph, 1), "sent") == 1000);
	assert_true(num(json_array_get(ph, 0), "lost") == 1);
	assert_non_null(json_object_get(json_array_get(ph, 1), "e2e_ms"));
	json_decref(root);
	buf_reset(&b);
	loadgen_report_text(&b, &r);
	assert_non_null(strstr(b.data, "surge: 100/s, x2 (200/s) from 5 s for 5 s, for 10 s"));
	assert_non_null(strstr(b.data, "\nphases "));
	assert_non_null(strstr(b.data, "\nbefore    100"));
	assert_non_null(strstr(b.data, "\nsurge     200"));
	buf_release(&b);
	free(web);
	free(e2e);
}

/* ---- the webhook template -------------------------------------------------- */

static void test_body_matches_webhook_build(void **state)
{
	(void)state;
	static const char *const texts[] = {
	        "stock rice",
	        "atta \xe2\x82\xb9"
	        "50 \"quoted\" back\\slash/",
	        "tab\there\nnewline \x01 emoji \xf0\x9f\x98\x80",
	};
	static const char *const names[] = {NULL, "Asha", "R\xc3\xa9ka \"R\""};
	clock_set_fake(1700000000123);
	for (size_t n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
		struct loadgen_body b;
		assert_int_equal(loadgen_body_init(&b, names[n], texts, 3), 0);
		struct buf out;
		buf_init(&out);
		for (int k = 0; k < 3; k++) {
			struct tools_inbound in = {"100000000000001",
			                           "919800000001",
			                           names[n],
			                           "wamid.LG00000000000000000042_00000000000000AB",
			                           texts[k],
			                           NULL,
			                           NULL};
			char *want = tools_webhook_build(&in);
			assert_non_null(want);
			loadgen_body_build(&b, &out, in.phone_number_id, in.from, in.wamid,
			                   texts[k], clock_wall_ms() / 1000);
			assert_string_equal(out.data, want);
			assert_int_equal(out.len, strlen(want));
			free(want);
		}
		buf_release(&out);
		loadgen_body_release(&b);
	}
	clock_set_fake(-1);

	/* not UTF-8: refused up front, like tools_webhook_build refuses it */
	static const char *const bad[] = {"ok", "bad \xff byte"};
	struct loadgen_body b;
	assert_int_equal(loadgen_body_init(&b, NULL, bad, 2), ERR_INVAL);
	loadgen_body_release(&b);
	assert_int_equal(loadgen_body_init(&b, "\xc3", bad, 1), ERR_INVAL);
	loadgen_body_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sched_constant),
	        cmocka_unit_test(test_sched_steps),
	        cmocka_unit_test(test_sched_inval),
	        cmocka_unit_test(test_sched_toobig),
	        cmocka_unit_test(test_sched_surge),
	        cmocka_unit_test(test_sched_surge_inval),
	        cmocka_unit_test(test_sched_build),
	        cmocka_unit_test(test_hist_buckets),
	        cmocka_unit_test(test_hist_precision),
	        cmocka_unit_test(test_hist_rank_and_edges),
	        cmocka_unit_test(test_pick_rotates),
	        cmocka_unit_test(test_wamid_index),
	        cmocka_unit_test(test_wamid_index_notfound),
	        cmocka_unit_test(test_wamids_scatter),
	        cmocka_unit_test(test_report_json),
	        cmocka_unit_test(test_body_matches_webhook_build),
	};
	return cmocka_run_group_tests(tests, 0, 0);
}
