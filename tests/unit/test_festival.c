/*
 * test_festival.c - the festival calendar: the seed's gantt chart as the
 * default spec (every bar, its kind and steps, dates at 00:00 IST), the
 * window at an instant and the overlap rule, the scaledown ramp of 10 % of
 * the peak per hour, and each kind of bad spec refused with a message
 * naming the bad part.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "control/festival.h"
#include "core/err.h"

#define HOUR 3600000LL
#define DAY  86400000LL

/* 00:00 IST of a date, as UTC epoch ms */
static int64_t ist(int y, int m, int d)
{
	int64_t ms;
	assert_int_equal(festival_date_ms(y, m, d, &ms), 0);
	return ms;
}

static void test_date_is_ist_midnight(void **state)
{
	(void)state;
	/* 2025-10-30 00:00 IST is 2025-10-29 18:30 UTC: 1761762600 s */
	assert_true(ist(2025, 10, 30) == 1761762600000LL);
	assert_true(ist(1970, 1, 2) == DAY - 19800000LL);
	int64_t ms;
	assert_int_equal(festival_date_ms(2024, 2, 29, &ms), 0); /* leap year */
	assert_int_equal(festival_date_ms(2025, 2, 29, &ms), ERR_INVAL);
	assert_int_equal(festival_date_ms(2025, 2, 30, &ms), ERR_INVAL);
	assert_int_equal(festival_date_ms(2100, 2, 29, &ms), ERR_INVAL);
	assert_int_equal(festival_date_ms(2000, 2, 29, &ms), 0);
	assert_int_equal(festival_date_ms(2025, 13, 1, &ms), ERR_INVAL);
	assert_int_equal(festival_date_ms(2025, 4, 31, &ms), ERR_INVAL);
}

static void test_seed_calendar(void **state)
{
	(void)state;
	struct festival_calendar cal;
	char err[256];
	assert_int_equal(festival_parse(FESTIVAL_SEED_CALENDAR, &cal, err, sizeof(err)), 0);
	assert_int_equal(cal.n, 10);
	/* the gantt chart's bars, in order */
	static const struct {
		const char *name, *phase;
		int y, m, d, days;
		double mult;
	} bars[] = {
	        {"diwali", "monitor", 2025, 10, 20, 5, 1},
	        {"diwali", "prescale", 2025, 10, 25, 3, 2},
	        {"diwali", "prescale-strict", 2025, 10, 28, 2, 5},
	        {"diwali", "peak", 2025, 10, 30, 3, 10},
	        {"diwali", "scaledown", 2025, 11, 2, 2, 5},
	        {"diwali", "normal", 2025, 11, 4, 5, 1},
	        {"newyear", "monitor", 2025, 12, 28, 3, 1},
	        {"newyear", "prescale", 2025, 12, 31, 1, 3},
	        {"newyear", "peak", 2026, 1, 1, 2, 5},
	        {"newyear", "normal", 2026, 1, 3, 5, 1},
	};
	for (int i = 0; i < 10; i++) {
		const struct festival_window *w = &cal.w[i];
		assert_string_equal(w->name, bars[i].name);
		assert_string_equal(w->phase, bars[i].phase);
		assert_string_equal(festival_kind_name(w->kind), bars[i].phase);
		assert_true(w->start_ms == ist(bars[i].y, bars[i].m, bars[i].d));
		assert_true(w->end_ms == w->start_ms + bars[i].days * DAY);
		assert_true(w->multiplier == bars[i].mult);
	}
	/* the playbook's steps per kind */
	assert_int_equal(cal.w[0].steps, 0);
	assert_int_equal(cal.w[1].steps, FESTIVAL_STEP_BATCH | FESTIVAL_STEP_POOLS |
	                                         FESTIVAL_STEP_AGGREGATION_ARMED);
	assert_int_equal(cal.w[2].steps, cal.w[1].steps | FESTIVAL_STEP_PRIORITY_STRICT |
	                                         FESTIVAL_STEP_SMS_STANDBY);
	assert_int_equal(cal.w[3].steps,
	                 cal.w[2].steps | FESTIVAL_STEP_DEFER_P3 | FESTIVAL_STEP_DEPTH_ALERT);
	assert_int_equal(cal.w[3].depth_alert, 1000);
	assert_int_equal(cal.w[2].depth_alert, 0);
	assert_int_equal(cal.w[4].steps, FESTIVAL_STEP_POOLS);
	assert_int_equal(cal.w[5].steps, 0);
	char names[160];
	assert_string_equal(festival_steps_format(cal.w[3].steps, names, sizeof(names)),
	                    "batch,pools,aggregation-armed,priority-strict,sms-standby,defer-p3,"
	                    "depth-alert");
	assert_string_equal(festival_steps_format(0, names, sizeof(names)), "");
	assert_string_equal(festival_step_name(FESTIVAL_STEP_SMS_STANDBY), "sms-standby");
	assert_string_equal(festival_step_name(FESTIVAL_STEP_BATCH | FESTIVAL_STEP_POOLS), "?");
	festival_calendar_release(&cal);
}

static void test_window_at(void **state)
{
	(void)state;
	struct festival_calendar cal;
	char err[256];
	assert_int_equal(festival_parse(FESTIVAL_SEED_CALENDAR, &cal, err, sizeof(err)), 0);
	int64_t peak = ist(2025, 10, 30);
	/* a millisecond before 00:00 IST it is still the T-1 window */
	assert_string_equal(festival_at(&cal, peak - 1)->phase, "prescale-strict");
	assert_string_equal(festival_at(&cal, peak)->phase, "peak");
	assert_true(festival_multiplier(&cal, peak - 1) == 5.0);
	assert_true(festival_multiplier(&cal, peak) == 10.0);
	/* outside every window: none, 1x */
	assert_null(festival_at(&cal, ist(2025, 10, 19)));
	assert_true(festival_multiplier(&cal, ist(2025, 10, 19)) == 1.0);
	assert_null(festival_at(&cal, ist(2025, 11, 9)));
	assert_non_null(festival_at(&cal, ist(2025, 11, 9) - 1));
	/* New Year's Eve in India, 23:59 IST: the prescale window, 3x */
	assert_true(festival_multiplier(&cal, ist(2026, 1, 1) - 60000) == 3.0);
	festival_calendar_release(&cal);

	/* overlapping windows: the later-starting one; on a tie the later in the spec */
	assert_int_equal(festival_parse("a:prescale:2025-01-01:10d:2x;b:peak:2025-01-03:2d:4x;"
	                                "c:prescale:2025-01-03:1d:3x",
	                                &cal, err, sizeof(err)),
	                 0);
	assert_string_equal(festival_at(&cal, ist(2025, 1, 2))->name, "a");
	assert_string_equal(festival_at(&cal, ist(2025, 1, 3))->name, "c");
	assert_string_equal(festival_at(&cal, ist(2025, 1, 4))->name, "b");
	assert_string_equal(festival_at(&cal, ist(2025, 1, 6))->name, "a");
	festival_calendar_release(&cal);
}

static void test_scaledown_ramp(void **state)
{
	(void)state;
	struct festival_calendar cal;
	char err[256];
	assert_int_equal(festival_parse(FESTIVAL_SEED_CALENDAR, &cal, err, sizeof(err)), 0);
	const struct festival_window *w = &cal.w[4];
	assert_true(w->ramp_from == 10.0);
	assert_int_equal(w->ramp_pct_per_hour, 10);
	int64_t t0 = ist(2025, 11, 2);
	/* 10x the first hour, then 1x of the peak less each whole hour, to 5x */
	static const double want[] = {10, 9, 8, 7, 6, 5, 5, 5};
	for (int h = 0; h < 8; h++) {
		assert_true(fabs(festival_multiplier(&cal, t0 + h * HOUR) - want[h]) < 1e-9);
		assert_true(fabs(festival_multiplier(&cal, t0 + h * HOUR + HOUR - 1) - want[h]) <
		            1e-9);
	}
	assert_true(festival_multiplier(&cal, t0 + 47 * HOUR) == 5.0);
	/* then the Normal window: 1x */
	assert_true(festival_multiplier(&cal, t0 + 2 * DAY) == 1.0);
	festival_calendar_release(&cal);

	/* a scaledown after nothing higher does not ramp */
	assert_int_equal(festival_parse("x:scaledown:2025-03-01:1d:3x", &cal, err, sizeof(err)), 0);
	assert_true(cal.w[0].ramp_from == 0);
	assert_true(festival_multiplier(&cal, ist(2025, 3, 1)) == 3.0);
	festival_calendar_release(&cal);
}

static void test_spec_forms(void **state)
{
	(void)state;
	struct festival_calendar cal;
	char err[256];
	/* empty: no calendar */
	assert_int_equal(festival_parse("", &cal, err, sizeof(err)), 0);
	assert_int_equal(cal.n, 0);
	assert_null(festival_at(&cal, 0));
	assert_true(festival_multiplier(&cal, 0) == 1.0);
	assert_int_equal(festival_parse(NULL, &cal, err, sizeof(err)), 0);
	assert_int_equal(cal.n, 0);
	/* 1x may be left out for monitor and normal; suffixes optional; blanks
	 * around windows and a trailing ';'; alert= on a peak */
	assert_int_equal(festival_parse(" holi:monitor:2026-03-01:2d ; holi:peak:2026-03-03:1:2.5 ;"
	                                "holi_2:peak:2026-03-04:1d:3x:alert=2500;",
	                                &cal, err, sizeof(err)),
	                 0);
	assert_int_equal(cal.n, 3);
	assert_true(cal.w[0].multiplier == 1.0);
	assert_true(cal.w[1].multiplier == 2.5);
	assert_int_equal(cal.w[1].depth_alert, 1000);
	assert_int_equal(cal.w[2].depth_alert, 2500);
	festival_calendar_release(&cal);
}

/* bad specs: ERR_INVAL, nothing kept, a message naming the part */
static void expect_bad(const char *spec, const char *words)
{
	struct festival_calendar cal = {(void *)1, 7};
	char err[256];
	assert_int_equal(festival_parse(spec, &cal, err, sizeof(err)), ERR_INVAL);
	assert_null(cal.w);
	assert_int_equal(cal.n, 0);
	if (!strstr(err, words))
		fail_msg("spec \"%s\": message \"%s\" lacks \"%s\"", spec, err, words);
}

static void test_bad_specs(void **state)
{
	(void)state;
	expect_bad("diwali:peak:2025-02-30:3d:10x", "no such date \"2025-02-30\"");
	expect_bad("diwali:peak:2025-2-3:3d:10x", "bad date \"2025-2-3\"");
	expect_bad("diwali:peak:2025-10-30:0d:10x", "length \"0d\" out of range");
	expect_bad("diwali:peak:2025-10-30:-1d:10x", "bad length \"-1d\"");
	expect_bad("diwali:peak:2025-10-30:1.5d:10x", "bad length \"1.5d\"");
	expect_bad("diwali:peak:2025-10-30:400d:10x", "out of range (1d..366d)");
	expect_bad("diwali:peak:2025-10-30:3d:0x", "multiplier \"0x\" out of range");
	expect_bad("diwali:peak:2025-10-30:3d:-2x", "bad multiplier \"-2x\"");
	expect_bad("diwali:peak:2025-10-30:3d:ten", "bad multiplier \"ten\"");
	expect_bad("diwali:peak:2025-10-30:3d", "phase \"peak\" needs a multiplier");
	expect_bad("diwali:monitor:2025-10-30:3d:2x", "multiplier \"2x\" on a monitor or normal");
	expect_bad("diwali:party:2025-10-30:3d:2x", "unknown phase \"party\"");
	expect_bad("diwali:peak:2025-10-30", "too few fields");
	expect_bad("a:peak:2025-10-30:1d:2x:alert=5:extra", "too many fields");
	expect_bad("a:prescale:2025-10-30:1d:2x:alert=5", "depth alert \"alert=5\" on a phase");
	expect_bad("a:peak:2025-10-30:1d:2x:alert=0", "bad depth alert");
	expect_bad("a:peak:2025-10-30:1d:2x:3x", "unexpected field \"3x\"");
	expect_bad(":peak:2025-10-30:1d:2x", "empty name");
	expect_bad("diwali fest:peak:2025-10-30:1d:2x", "bad name \"diwali fest\"");
	expect_bad("abcdefghijklmnopqrstuvwxyz0123456:peak:2025-10-30:1d:2x", "too long");
	expect_bad("a:peak:2025-10-30:1d:2x;;b:peak:2025-11-30:1d:2x", "festival window 2: empty");
	/* the window's number is in the message */
	expect_bad("a:peak:2025-10-30:1d:2x;b:peak:2025-11-31:1d:2x", "festival window 2: no such");
	/* 64 windows are fine, 65 are not */
	char spec[65 * 40];
	size_t len = 0;
	for (int i = 0; i < 65; i++)
		len += (size_t)snprintf(spec + len, sizeof(spec) - len,
		                        "%sw%d:peak:2025-01-01:1d:2x", i ? ";" : "", i);
	expect_bad(spec, "more than 64 windows");
	*strrchr(spec, ';') = '\0';
	struct festival_calendar cal;
	char err[256];
	assert_int_equal(festival_parse(spec, &cal, err, sizeof(err)), 0);
	assert_int_equal(cal.n, 64);
	festival_calendar_release(&cal);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_date_is_ist_midnight),
	        cmocka_unit_test(test_seed_calendar),
	        cmocka_unit_test(test_window_at),
	        cmocka_unit_test(test_scaledown_ramp),
	        cmocka_unit_test(test_spec_forms),
	        cmocka_unit_test(test_bad_specs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
