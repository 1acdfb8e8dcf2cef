/*
 * festival.c - the festival calendar: parsing its one-line spec, and which
 * window and floor multiplier hold at an instant.
 *
 * Design: a calendar is an array of windows in spec order, each resolved at
 * parse time to UTC epoch milliseconds (a date is 00:00 IST, UTC+05:30;
 * IST has no daylight saving, so this is plain arithmetic) and to the steps
 * of its kind (festival.h has the table). Lookups scan the array: a
 * calendar has at most FESTIVAL_MAX_WINDOWS windows and is consulted about
 * once a second.
 *
 * The scaledown ramp (the seed's T+2 "gradual scale down, 10% per hour"):
 * a scaledown window remembers the multiplier active the instant before it
 * starts (ramp_from, normally the peak's). During the window the floor is
 *
 *   max(multiplier, ramp_from * (1 - ramp_pct_per_hour/100 * whole hours))
 *
 * so after a 10x peak it is 10x for the first hour, 9x for the second, ...
 * and 5x from the fifth hour on, until the window ends.
 *
 * Invariants: every window has 1 <= days <= FESTIVAL_MAX_DAYS (end > start)
 * and 0 < multiplier <= FESTIVAL_MAX_MULTIPLIER; monitor and normal are
 * 1x; steps are those of the kind.
 *
 * Threading: none inside; a parsed calendar is read-only and may be shared.
 */
#include "control/festival.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"

static const char *const kind_names[FESTIVAL_KINDS] = {
        "monitor", "prescale", "prescale-strict", "peak", "scaledown", "normal",
};

static const char *const step_names[FESTIVAL_STEPS] = {
        "batch",       "pools",    "aggregation-armed", "priority-strict",
        "sms-standby", "defer-p3", "depth-alert",
};

#define STEPS_PRESCALE (FESTIVAL_STEP_BATCH | FESTIVAL_STEP_POOLS | FESTIVAL_STEP_AGGREGATION_ARMED)
#define STEPS_STRICT   (STEPS_PRESCALE | FESTIVAL_STEP_PRIORITY_STRICT | FESTIVAL_STEP_SMS_STANDBY)
#define STEPS_PEAK     (STEPS_STRICT | FESTIVAL_STEP_DEFER_P3 | FESTIVAL_STEP_DEPTH_ALERT)

unsigned festival_kind_steps(int kind)
{
	switch (kind) {
	case FESTIVAL_PRESCALE: return STEPS_PRESCALE;
	case FESTIVAL_PRESCALE_STRICT: return STEPS_STRICT;
	case FESTIVAL_PEAK: return STEPS_PEAK;
	case FESTIVAL_SCALEDOWN: return FESTIVAL_STEP_POOLS;
	default: return 0;
	}
}

const char *festival_kind_name(int kind)
{
	return kind >= 0 && kind < FESTIVAL_KINDS ? kind_names[kind] : "?";
}

const char *festival_step_name(unsigned step)
{
	for (int i = 0; i < FESTIVAL_STEPS; i++)
		if (step == 1u << i)
			return step_names[i];
	return "?";
}

const char *festival_steps_format(unsigned steps, char *out, size_t cap)
{
	size_t len = 0;
	if (cap == 0)
		return out;
	out[0] = '\0';
	for (int i = 0; i < FESTIVAL_STEPS; i++) {
		if (!(steps & (1u << i)))
			continue;
		int n = snprintf(out + len, cap - len, "%s%s", len ? "," : "", step_names[i]);
		if (n < 0 || (size_t)n >= cap - len)
			break;
		len += (size_t)n;
	}
	return out;
}

/* days since 1970-01-01 of a civil date (Howard Hinnant's algorithm, the
 * inverse of clock.c's civil_from_days) */
static int64_t days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static int days_in_month(int year, int month)
{
	static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
	return month == 2 && leap ? 29 : mdays[month - 1];
}

int festival_date_ms(int year, int month, int day, int64_t *out)
{
	if (year < 1970 || year > 9999 || month < 1 || month > 12 || day < 1 ||
	    day > days_in_month(year, month))
		return ERR_INVAL;
	*out = days_from_civil(year, month, day) * FESTIVAL_DAY_MS - CLOCK_IST_OFFSET_MS;
	return 0;
}

/* Parsing state: the part being read, and where errors are written. */
struct parser {
	char *err;
	size_t errcap;
	int index; /* 1-based window number, for messages */
};

static int fail(struct parser *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* fail writes "festival window N: <message>" into the parser's err; parts of
 * the spec are quoted with "%.*s" and cut to 64 characters by the caller. */
static int fail(struct parser *p, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (p->errcap)
		snprintf(p->err, p->errcap, "festival window %d: %s", p->index, msg);
	return ERR_INVAL;
}

/* At most 64 characters of a part, for messages. */
static int cut(size_t len)
{
	return len < 64 ? (int)len : 64;
}

static int parse_date(struct parser *p, const char *s, size_t len, int64_t *out)
{
	int y = 0, m = 0, d = 0;
	if (len != 10 || s[4] != '-' || s[7] != '-')
		return fail(p, "bad date \"%.*s\" (want YYYY-MM-DD)", cut(len), s);
	for (size_t i = 0; i < 10; i++)
		if (i != 4 && i != 7 && !isdigit((unsigned char)s[i]))
			return fail(p, "bad date \"%.*s\" (want YYYY-MM-DD)", cut(len), s);
	y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
	m = (s[5] - '0') * 10 + (s[6] - '0');
	d = (s[8] - '0') * 10 + (s[9] - '0');
	if (festival_date_ms(y, m, d, out) != 0)
		return fail(p, "no such date \"%.*s\"", cut(len), s);
	return 0;
}

/* A positive decimal with an optional one-letter suffix; *out. */
static int parse_number(const char *s, size_t len, char suffix, double *out)
{
	char tmp[32];
	if (len > 0 && s[len - 1] == suffix)
		len--;
	if (len == 0 || len >= sizeof(tmp))
		return ERR_INVAL;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	for (size_t i = 0; i < len; i++)
		if (!isdigit((unsigned char)tmp[i]) && tmp[i] != '.')
			return ERR_INVAL;
	char *end;
	errno = 0;
	double v = strtod(tmp, &end);
	if (errno || *end || !isfinite(v))
		return ERR_INVAL;
	*out = v;
	return 0;
}

static int parse_window(struct parser *p, const char *s, size_t len, struct festival_window *w)
{
	const char *field[6];
	size_t flen[6];
	int nf = 0;
	const char *q = s, *end = s + len;
	for (;;) {
		const char *c = memchr(q, ':', (size_t)(end - q));
		if (nf == 6)
			return fail(p,
			            "too many fields in \"%.*s\" (want "
			            "name:kind:date:days[:mult][:alert=N])",
			            cut(len), s);
		field[nf] = q;
		flen[nf++] = c ? (size_t)(c - q) : (size_t)(end - q);
		if (!c)
			break;
		q = c + 1;
	}
	if (nf < 4)
		return fail(
		        p, "too few fields in \"%.*s\" (want name:kind:date:days[:mult][:alert=N])",
		        cut(len), s);
	memset(w, 0, sizeof(*w));
	/* name */
	if (flen[0] == 0)
		return fail(p, "empty name");
	if (flen[0] > FESTIVAL_NAME_MAX)
		return fail(p, "name \"%.*s\" too long (at most 31 characters)", cut(flen[0]),
		            field[0]);
	for (size_t i = 0; i < flen[0]; i++) {
		unsigned char ch = (unsigned char)field[0][i];
		if (!isalnum(ch) && ch != '-' && ch != '_')
			return fail(p, "bad name \"%.*s\" (letters, digits, '-', '_')",
			            cut(flen[0]), field[0]);
	}
	memcpy(w->name, field[0], flen[0]);
	/* kind */
	w->kind = -1;
	for (int k = 0; k < FESTIVAL_KINDS; k++)
		if (strlen(kind_names[k]) == flen[1] &&
		    memcmp(kind_names[k], field[1], flen[1]) == 0)
			w->kind = k;
	if (w->kind < 0)
		return fail(p,
		            "unknown phase \"%.*s\" (monitor, prescale, prescale-strict, peak, "
		            "scaledown or normal)",
		            cut(flen[1]), field[1]);
	snprintf(w->phase, sizeof(w->phase), "%s", kind_names[w->kind]);
	/* date and days */
	if (parse_date(p, field[2], flen[2], &w->start_ms) != 0)
		return ERR_INVAL;
	double days;
	if (parse_number(field[3], flen[3], 'd', &days) != 0 || days != floor(days))
		return fail(p, "bad length \"%.*s\" (want whole days, e.g. 3d)", cut(flen[3]),
		            field[3]);
	if (days < 1 || days > FESTIVAL_MAX_DAYS)
		return fail(p, "length \"%.*s\" out of range (1d..366d)", cut(flen[3]), field[3]);
	w->end_ms = w->start_ms + (int64_t)days * FESTIVAL_DAY_MS;
	/* multiplier and alert */
	int fixed_one = w->kind == FESTIVAL_MONITOR || w->kind == FESTIVAL_NORMAL;
	int have_mult = 0;
	w->multiplier = 1.0;
	for (int i = 4; i < nf; i++) {
		if (flen[i] > 6 && memcmp(field[i], "alert=", 6) == 0) {
			double a;
			if (parse_number(field[i] + 6, flen[i] - 6, '\0', &a) != 0 ||
			    a != floor(a) || a < 1 || a > 1e12)
				return fail(p, "bad depth alert \"%.*s\" (want alert=N, N >= 1)",
				            cut(flen[i]), field[i]);
			if (!(festival_kind_steps(w->kind) & FESTIVAL_STEP_DEPTH_ALERT))
				return fail(
				        p,
				        "depth alert \"%.*s\" on a phase without one (only peak)",
				        cut(flen[i]), field[i]);
			w->depth_alert = (int64_t)a;
			continue;
		}
		if (have_mult || i != 4)
			return fail(p, "unexpected field \"%.*s\"", cut(flen[i]), field[i]);
		if (parse_number(field[i], flen[i], 'x', &w->multiplier) != 0)
			return fail(p, "bad multiplier \"%.*s\" (want e.g. 2x or 2.5x)",
			            cut(flen[i]), field[i]);
		if (!(w->multiplier > 0) || w->multiplier > FESTIVAL_MAX_MULTIPLIER)
			return fail(p, "multiplier \"%.*s\" out of range (above 0, at most 1000x)",
			            cut(flen[i]), field[i]);
		have_mult = 1;
	}
	if (fixed_one && w->multiplier != 1.0)
		return fail(p, "multiplier \"%.*s\" on a monitor or normal window (they are 1x)",
		            cut(flen[4]), field[4]);
	if (!fixed_one && !have_mult)
		return fail(p, "phase \"%.*s\" needs a multiplier (e.g. 2x)", cut(flen[1]),
		            field[1]);
	w->steps = festival_kind_steps(w->kind);
	if ((w->steps & FESTIVAL_STEP_DEPTH_ALERT) && w->depth_alert == 0)
		w->depth_alert = FESTIVAL_DEPTH_ALERT;
	return 0;
}

/* The scaledown windows' ramp: the multiplier active just before each. */
static void resolve_ramps(struct festival_calendar *cal)
{
	for (int i = 0; i < cal->n; i++) {
		struct festival_window *w = &cal->w[i];
		if (w->kind != FESTIVAL_SCALEDOWN)
			continue;
		const struct festival_window *before = festival_at(cal, w->start_ms - 1);
		if (before && before != w && before->multiplier > w->multiplier) {
			w->ramp_from = before->multiplier;
			w->ramp_pct_per_hour = FESTIVAL_RAMP_PCT_PER_HOUR;
		}
	}
}

int festival_parse(const char *spec, struct festival_calendar *out, char *err, size_t errcap)
{
	out->w = NULL;
	out->n = 0;
	if (errcap)
		err[0] = '\0';
	if (!spec)
		return 0;
	struct parser p = {err, errcap, 0};
	const char *s = spec;
	while (*s == ' ')
		s++;
	if (*s == '\0')
		return 0;
	struct festival_window *w = xcalloc(FESTIVAL_MAX_WINDOWS, sizeof(*w));
	int n = 0;
	for (;;) {
		const char *semi = strchr(s, ';');
		size_t len = semi ? (size_t)(semi - s) : strlen(s);
		/* blanks around a window are allowed, a trailing ';' too */
		while (len > 0 && s[0] == ' ')
			s++, len--;
		while (len > 0 && s[len - 1] == ' ')
			len--;
		if (len == 0 && !semi)
			break;
		p.index = n + 1;
		if (len == 0) {
			fail(&p, "empty window");
			goto fail;
		}
		if (n == FESTIVAL_MAX_WINDOWS) {
			if (errcap)
				snprintf(err, errcap, "festival calendar: more than %d windows",
				         FESTIVAL_MAX_WINDOWS);
			goto fail;
		}
		if (parse_window(&p, s, len, &w[n]) != 0)
			goto fail;
		n++;
		if (!semi)
			break;
		s = semi + 1;
	}
	out->w = w;
	out->n = n;
	resolve_ramps(out);
	return 0;
fail:
	free(w);
	return ERR_INVAL;
}

void festival_calendar_release(struct festival_calendar *cal)
{
	free(cal->w);
	cal->w = NULL;
	cal->n = 0;
}

const struct festival_window *festival_at(const struct festival_calendar *cal, int64_t wall_ms)
{
	const struct festival_window *best = NULL;
	for (int i = 0; i < cal->n; i++) {
		const struct festival_window *w = &cal->w[i];
		if (wall_ms >= w->start_ms && wall_ms < w->end_ms &&
		    (!best || w->start_ms >= best->start_ms))
			best = w;
	}
	return best;
}

double festival_multiplier(const struct festival_calendar *cal, int64_t wall_ms)
{
	const struct festival_window *w = festival_at(cal, wall_ms);
	if (!w)
		return 1.0;
	if (w->kind != FESTIVAL_SCALEDOWN || w->ramp_from <= w->multiplier)
		return w->multiplier;
	int64_t hours = (wall_ms - w->start_ms) / 3600000;
	double m = w->ramp_from * (1.0 - w->ramp_pct_per_hour / 100.0 * (double)hours);
	return m > w->multiplier ? m : w->multiplier;
}
