/*
 * clock.c - wall and monotonic time, with a fake for tests, and Indian
 * civil dates computed without the C library's time zone state (which is
 * neither thread-safe nor needed: IST has no daylight saving).
 */
#include "core/clock.h"

#include <stdatomic.h>
#include <time.h>

static _Atomic int64_t fake_ms = -1;

void clock_set_fake(int64_t ms)
{
	atomic_store(&fake_ms, ms);
}

int64_t clock_wall_ms(void)
{
	int64_t f = atomic_load(&fake_ms);
	if (f >= 0)
		return f;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t clock_mono_us(void)
{
	int64_t f = atomic_load(&fake_ms);
	if (f >= 0)
		return f * 1000;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* days since 1970-01-01 → civil date (Howard Hinnant's algorithm) */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t yy = yoe + era * 400;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	int64_t dd = doy - (153 * mp + 2) / 5 + 1;
	int64_t mm = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)(yy + (mm <= 2));
	*m = (int)mm;
	*d = (int)dd;
}

static int64_t floor_div(int64_t a, int64_t b)
{
	int64_t q = a / b;
	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void clock_ist_date(int64_t ms, int *year, int *month, int *day)
{
	int64_t days = floor_div(ms + CLOCK_IST_OFFSET_MS, 86400000LL);
	civil_from_days(days, year, month, day);
}

int64_t clock_ist_day_start(int64_t ms)
{
	int64_t days = floor_div(ms + CLOCK_IST_OFFSET_MS, 86400000LL);
	return days * 86400000LL - CLOCK_IST_OFFSET_MS;
}

struct timespec clock_deadline(clockid_t id, int ms)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}
