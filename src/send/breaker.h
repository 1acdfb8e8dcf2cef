/*
 * breaker.h - the circuit breaker of one provider (a BSP, the SMS gateway).
 *
 * Pure: it never reads the clock, draws random numbers, allocates or does
 * I/O. Time comes in as now_ms (any monotonic milliseconds; a value earlier
 * than one already seen counts as no time passing) and randomness as rnd
 * (any 64-bit random value), so tests drive it without sleeping.
 *
 * The caller embeds a struct breaker per provider. Every call that
 * breaker_allow let through must be recorded exactly once with
 * breaker_record (BREAKER_IGNORED when it ended with no verdict, such as a
 * send cancelled at shutdown): a half-open probe that is never recorded
 * holds its slot for good.
 *
 * Threads: none of its own and no locking. One thread at a time per
 * breaker; the caller serialises (the sender's network thread owns it).
 */
#ifndef MUNIM_BREAKER_H
#define MUNIM_BREAKER_H

#include <stdint.h>

#include "send/sender.h"

/* The numeric values are a contract: a metric exports them. */
enum breaker_state {
	BREAKER_CLOSED = 0,    /* calls go; failures are counted */
	BREAKER_OPEN = 1,      /* calls are refused until open_until */
	BREAKER_HALF_OPEN = 2, /* a few probe calls go; their outcome decides */
};

enum breaker_outcome {
	BREAKER_SUCCESS, /* the provider answered, in time */
	BREAKER_FAILURE, /* no answer, 5xx, a transient error code, or too slow */
	BREAKER_IGNORED, /* rate limited, or no verdict: counts neither way */
};

struct breaker_config {
	int failure_threshold;  /* consecutive failures that open (5) */
	int success_threshold;  /* half-open successes that close (3) */
	int64_t open_ms;        /* how long OPEN lasts before jitter (30,000) */
	int jitter_pct;         /* OPEN lasts up to this % longer, 0..100 (20) */
	int64_t window_ms;      /* the failure-rate window (10,000) */
	int min_calls;          /* calls in the window before the rate counts (20) */
	int rate_threshold_pct; /* failure share that opens, 1..100 (30) */
	int half_open_probes;   /* calls in flight at once in HALF_OPEN (3) */
	int64_t slow_ms;        /* an answer this slow is a failure; 0: off (2,000) */
};

/* The window is kept as this many buckets of window_ms / BREAKER_BUCKETS. */
#define BREAKER_BUCKETS 10

struct breaker_bucket {
	int64_t epoch; /* now_ms / bucket_ms of the calls counted here */
	int64_t calls; /* successes and failures */
	int64_t failures;
};

/* Embedded by the caller; its fields are private to breaker.c. */
struct breaker {
	struct breaker_config cfg;
	enum breaker_state state;
	int64_t now_ms;     /* the latest time seen: time never goes back */
	int64_t open_until; /* OPEN: the first instant breaker_allow probes */
	int failures_in_row;
	int probes_in_flight; /* HALF_OPEN */
	int probe_successes;  /* HALF_OPEN */
	int64_t bucket_ms;
	struct breaker_bucket buckets[BREAKER_BUCKETS];
};

/* breaker_config_default fills cfg with the defaults in parentheses above. */
void breaker_config_default(struct breaker_config *cfg);

/*
 * breaker_init sets b up CLOSED with nothing counted, keeping a copy of cfg.
 * 0, or ERR_INVAL for a config out of bounds (a threshold, open_ms,
 * min_calls or half_open_probes below 1, jitter_pct outside 0..100,
 * window_ms below BREAKER_BUCKETS, rate_threshold_pct outside 1..100,
 * slow_ms below 0); b is then left as it was.
 */
int breaker_init(struct breaker *b, const struct breaker_config *cfg);

/*
 * breaker_allow asks whether a call may go now: 1 yes, 0 refused. CLOSED
 * always says yes; OPEN says no until open_until, and from then on the
 * next ask moves the breaker to HALF_OPEN; HALF_OPEN says yes while fewer
 * than half_open_probes calls are in flight, and the yes takes a slot. If
 * changed is not NULL, *changed is set to 1 when this ask changed the state
 * (OPEN -> HALF_OPEN), else 0.
 */
int breaker_allow(struct breaker *b, int64_t now_ms, int *changed);

/*
 * breaker_record counts the outcome o of a call that breaker_allow let
 * through; rnd is drawn on only if this opens the breaker (the jitter).
 * Returns 1 when it changed the state, else 0. A call recorded while OPEN
 * (allowed before the breaker opened) changes nothing, and so does one
 * recorded in HALF_OPEN while no probe is in flight. In HALF_OPEN, any
 * answer while a probe is in flight is taken as a probe's.
 */
int breaker_record(struct breaker *b, int64_t now_ms, enum breaker_outcome o, uint64_t rnd);

/*
 * breaker_force_open: another sender of the fleet saw the provider fail and
 * holds it open until until_ms. The breaker goes OPEN until then - from
 * CLOSED or HALF_OPEN with every count cleared, as when it trips itself
 * (a probe in flight is forgotten: its late answer changes nothing) - or,
 * already OPEN, stays so until the later of its own end and until_ms.
 * Returns 1 when the state or its end changed, 0 when until_ms is not
 * after now_ms or the breaker already stays open as long.
 */
int breaker_force_open(struct breaker *b, int64_t now_ms, int64_t until_ms);

enum breaker_state breaker_state(const struct breaker *b);

/* breaker_open_until: the ms from which an OPEN breaker lets a probe through;
 * meaningful only in OPEN. */
int64_t breaker_open_until(const struct breaker *b);

/* breaker_state_name: "closed", "open", "half_open" (a static string; "unknown"
 * for a value that is no state). */
const char *breaker_state_name(enum breaker_state s);

/*
 * breaker_outcome_of maps a send's class and duration to the breaker's
 * outcome: SEND_RETRY is a failure; SEND_RATE is ignored (the provider asked
 * us to slow down, it is not failing); SEND_OK and SEND_PERMANENT are
 * successes (the provider answered; a customer's own permanent error says
 * nothing about it), unless slow_ms > 0 and took_ms >= slow_ms: a slow
 * provider counts as failing. Pure, any thread.
 */
enum breaker_outcome breaker_outcome_of(enum send_class c, int64_t took_ms, int64_t slow_ms);

#endif
