/*
 * clock.h - time, injectable for tests.
 *
 * Everything that decides by time (backoff, expiry, invoice dates, breakers)
 * reads it through these functions so a unit test can set the clock instead
 * of sleeping.
 */
#ifndef MUNIM_CLOCK_H
#define MUNIM_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Wall clock, milliseconds since the Unix epoch. */
int64_t clock_wall_ms(void);
/* Monotonic clock, microseconds from an arbitrary origin. */
int64_t clock_mono_us(void);

/*
 * clock_deadline: the instant ms from now on clock id, for a timed wait
 * (CLOCK_MONOTONIC for a condition variable set to it, CLOCK_REALTIME for
 * pthread_rwlock_timedwrlock). Real time: the fake clock does not move it.
 */
struct timespec clock_deadline(clockid_t id, int ms);

/*
 * clock_set_fake pins the wall clock at ms (and the monotonic clock at
 * ms*1000) until clock_set_fake(-1). For tests; not thread-safe against
 * concurrent readers of the clock.
 */
void clock_set_fake(int64_t ms);

/* IST is UTC+05:30; Indian dates (invoice date, financial year, "today"). */
#define CLOCK_IST_OFFSET_MS (19800LL * 1000)

/*
 * clock_ist_date splits an epoch-ms instant into the Indian civil date.
 * clock_ist_day_start returns the epoch-ms of 00:00 IST of that day.
 */
void clock_ist_date(int64_t ms, int *year, int *month, int *day);
int64_t clock_ist_day_start(int64_t ms);

#endif
