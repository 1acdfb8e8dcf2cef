/*
 * festival.h - the festival calendar: windows of days, each a phase of the
 * seed's pre-scaling playbook (T-3, T-1, D-Day, T+2), with the capacity
 * multiplier the controller's floor follows and the software steps the
 * phase switches on.
 *
 * Pure: instants come in as wall_ms (UTC epoch milliseconds, the caller's
 * clock); a window starts at 00:00 IST (UTC+05:30) of its date. No I/O;
 * festival_parse allocates the windows, festival_calendar_release frees
 * them. A parsed calendar is read-only, so threads may share it.
 *
 * The seed's gantt chart ("Festival Calendar-Based Pre-Scaling") and the
 * phase kind each bar is:
 *
 *   bar                  kind             playbook step   steps switched on
 *   Monitoring Phase     monitor          T-7 .. T-4      none (1x)
 *   Pre-Scale 2x / 3x    prescale         T-3             batch, pools, aggregation-armed
 *   Pre-Scale 5x         prescale-strict  T-1             + priority-strict, sms-standby
 *   Peak (10x) / (5x)    peak             D-Day           + defer-p3, depth-alert (1000)
 *   Scale Down 5x        scaledown        T+2             pools only; the floor falls by
 *                                                         10 % of the peak per hour
 *   Normal               normal           after           none (1x)
 *
 * Spec (one line, the setting festival-calendar): windows separated by
 * ';', each
 *
 *   name:kind:YYYY-MM-DD:<days>d[:<multiplier>x][:alert=<depth>]
 *
 * e.g. "diwali:peak:2025-10-30:3d:10x". The multiplier may be left out
 * only for monitor and normal (which must be 1x); alert= sets the queue
 * depth alert of a window with the depth-alert step (default 1000). Names
 * are 1..31 letters, digits, '-' or '_'. An empty spec is no calendar.
 */
#ifndef MUNIM_FESTIVAL_H
#define MUNIM_FESTIVAL_H

#include <stddef.h>
#include <stdint.h>

#define FESTIVAL_MAX_WINDOWS       64
#define FESTIVAL_NAME_MAX          31
#define FESTIVAL_MAX_DAYS          366
#define FESTIVAL_MAX_MULTIPLIER    1000.0
#define FESTIVAL_DEPTH_ALERT       1000 /* the seed's D-Day "alert at 1000" */
#define FESTIVAL_RAMP_PCT_PER_HOUR 10   /* the seed's T+2 "10% per hour" */
#define FESTIVAL_DAY_MS            86400000LL

/* The seed's calendar, exactly the gantt chart's bars (Diwali 2025, New
 * Year 2025/26). */
#define FESTIVAL_SEED_CALENDAR                                                                     \
	"diwali:monitor:2025-10-20:5d:1x;diwali:prescale:2025-10-25:3d:2x;"                        \
	"diwali:prescale-strict:2025-10-28:2d:5x;diwali:peak:2025-10-30:3d:10x;"                   \
	"diwali:scaledown:2025-11-02:2d:5x;diwali:normal:2025-11-04:5d:1x;"                        \
	"newyear:monitor:2025-12-28:3d:1x;newyear:prescale:2025-12-31:1d:3x;"                      \
	"newyear:peak:2026-01-01:2d:5x;newyear:normal:2026-01-03:5d:1x"

enum festival_kind {
	FESTIVAL_MONITOR = 0,
	FESTIVAL_PRESCALE = 1,
	FESTIVAL_PRESCALE_STRICT = 2,
	FESTIVAL_PEAK = 3,
	FESTIVAL_SCALEDOWN = 4,
	FESTIVAL_NORMAL = 5,
};
#define FESTIVAL_KINDS 6

/* The software steps a phase switches on (bits of festival_window.steps). */
enum festival_step {
	FESTIVAL_STEP_BATCH = 1u << 0,             /* batch sizes doubled */
	FESTIVAL_STEP_POOLS = 1u << 1,             /* pool floor = multiplier x baseline */
	FESTIVAL_STEP_AGGREGATION_ARMED = 1u << 2, /* message aggregation ready */
	FESTIVAL_STEP_PRIORITY_STRICT = 1u << 3,   /* priority queue strict mode */
	FESTIVAL_STEP_SMS_STANDBY = 1u << 4,       /* SMS fallback on standby */
	FESTIVAL_STEP_DEFER_P3 = 1u << 5,          /* marketing deferred */
	FESTIVAL_STEP_DEPTH_ALERT = 1u << 6,       /* alert at queue depth depth_alert */
};
#define FESTIVAL_STEPS 7

struct festival_window {
	char name[32];
	char phase[24];           /* the kind's name: "monitor", "prescale", ... */
	int kind;                 /* enum festival_kind */
	int64_t start_ms, end_ms; /* UTC epoch ms; 00:00 IST of the date, + days */
	double multiplier;
	unsigned steps;        /* enum festival_step bits */
	int64_t depth_alert;   /* with FESTIVAL_STEP_DEPTH_ALERT, else 0 */
	double ramp_from;      /* scaledown: the multiplier the ramp starts from
	                        * (the window active just before), else 0 */
	int ramp_pct_per_hour; /* scaledown: FESTIVAL_RAMP_PCT_PER_HOUR, else 0 */
};

struct festival_calendar {
	struct festival_window *w; /* in spec order */
	int n;
};

/*
 * festival_parse reads a spec (above) into *out (release with
 * festival_calendar_release; an empty or NULL spec gives n = 0). 0, or
 * ERR_INVAL with a message in err naming the bad window and part: a date
 * that does not exist (2025-02-30), days or a multiplier not above zero,
 * an unknown kind, over FESTIVAL_MAX_WINDOWS windows, a name too long.
 * On error *out is empty.
 */
int festival_parse(const char *spec, struct festival_calendar *out, char *err, size_t errcap);
void festival_calendar_release(struct festival_calendar *cal);

/* The window active at wall_ms (UTC epoch ms), or NULL; when windows
 * overlap, the later-starting one (the later in the spec on a tie). */
const struct festival_window *festival_at(const struct festival_calendar *cal, int64_t wall_ms);

/*
 * festival_multiplier: the floor multiplier at wall_ms - 1.0 outside every
 * window, the window's multiplier inside one; in a scaledown window that
 * follows a higher multiplier, ramp_from less ramp_pct_per_hour % of it
 * for each whole hour since the window started, never below the window's
 * own multiplier.
 */
double festival_multiplier(const struct festival_calendar *cal, int64_t wall_ms);

/* "batch", "pools", "aggregation-armed", "priority-strict", "sms-standby",
 * "defer-p3", "depth-alert"; "?" for anything else (one bit expected). */
const char *festival_step_name(unsigned step);

/* "monitor", "prescale", "prescale-strict", "peak", "scaledown", "normal". */
const char *festival_kind_name(int kind);

/* The steps a kind switches on. */
unsigned festival_kind_steps(int kind);

/* festival_steps_format writes the step names of steps, comma-separated
 * ("" for none), into out; returns out. */
const char *festival_steps_format(unsigned steps, char *out, size_t cap);

/* festival_date_ms: 00:00 IST of year-month-day as UTC epoch ms; 0, or
 * ERR_INVAL when the date does not exist or the year is outside 1970..9999. */
int festival_date_ms(int year, int month, int day, int64_t *out);

#endif
