/*
 * breaker.c - the circuit breaker of one provider: stop sending to a
 * provider that is failing, so that replies go another way (a second BSP,
 * SMS for P0/P1) or wait, instead of each spending a send slot and a
 * timeout on it; then try it again with a few probes.
 *
 *                 breaker_record: 5 failures in a row, or
 *                 >= 30 % failures of >= 20 calls in 10 s
 *     +--------+ ------------------------------> +------+
 *     | CLOSED |                                  | OPEN | <-----------+
 *     +--------+                                  +------+             |
 *         ^                                          |                 |
 *         | breaker_record:                          | breaker_allow   | breaker_record:
 *         | 3 probe successes                        | at or after     | any probe
 *         | (window and counts cleared)              | open_until      | failure
 *         |                                          v                 |
 *         |                                    +-----------+           |
 *         +----------------------------------- | HALF_OPEN | ----------+
 *                                              +-----------+
 *                                          at most 3 probes in flight
 *
 * Thresholds. The seed design's breaker (scalability-and-reliability.md,
 * "Circuit Breaker Pattern") opens after failure_threshold = 5 consecutive
 * failures, stays open 30 s (open_ms) and closes after success_threshold =
 * 3 successes; those are the defaults. Four additions, each for a way the
 * seed's breaker misses trouble or makes it:
 *
 *  - failure rate: a provider failing 40 % of calls, interleaved with
 *    successes, never fails 5 in a row yet loses 4 replies in 10. CLOSED
 *    also opens when, over window_ms (10 s), at least min_calls (20) calls
 *    were counted and rate_threshold_pct (30 %) of them failed. The
 *    window is BREAKER_BUCKETS buckets of window_ms / BREAKER_BUCKETS,
 *    each tagged with its epoch (now_ms / bucket_ms): a bucket whose epoch
 *    is BREAKER_BUCKETS or more behind now's is forgotten, so an idle gap
 *    of any length needs no sweep. The window thus covers between 9/10 of
 *    window_ms and all of it. The rate is looked at after every counted
 *    call, success or failure (as Resilience4j does), so the call that
 *    brings the count to min_calls may open it.
 *  - probe cap: the seed lets every call through in HALF_OPEN; a provider
 *    coming back would meet the whole backlog at once. At most
 *    half_open_probes (3) are in flight; BREAKER_IGNORED frees a slot.
 *  - jitter: OPEN lasts open_ms plus a uniform draw in
 *    [0, open_ms * jitter_pct / 100] (20 %: 30-36 s) from the rnd given to
 *    the breaker_record that opens it, so that the breakers of several
 *    senders, opened by the same outage, do not all probe at one instant.
 *  - slow calls (breaker_outcome_of): an answer taking slow_ms (2 s, the
 *    p95 target of a whole reply) or more is a failure; a provider that
 *    answers slowly holds send slots as a dead one does.
 *
 * Rate limits (SEND_RATE) are BREAKER_IGNORED: the provider is up and
 * asked us to slow down, which pacing does; opening would only stop the
 * replies it would still take.
 *
 * Shared opening (breaker_force_open): CLOSED or HALF_OPEN -> OPEN until a
 * given end, when another sender of the fleet saw the provider fail
 * (cluster/cluster.h reads that from Redis); the end comes from outside,
 * the jitter with it. An OPEN breaker only lengthens to it.
 *
 * Invariants: now_ms never decreases (an earlier time counts as no time
 * passing, so nothing is counted twice or in a bucket already reused);
 * every bucket's epoch is at most now's; probes_in_flight stays within
 * 0..half_open_probes; OPEN and CLOSED are entered with all counts zero.
 *
 * Threading: none. One thread at a time per breaker; the caller serialises.
 */
#include "send/breaker.h"

#include <string.h>

#include "core/err.h"

void breaker_config_default(struct breaker_config *cfg)
{
	*cfg = (struct breaker_config){
	        .failure_threshold = 5,
	        .success_threshold = 3,
	        .open_ms = 30000,
	        .jitter_pct = 20,
	        .window_ms = 10000,
	        .min_calls = 20,
	        .rate_threshold_pct = 30,
	        .half_open_probes = 3,
	        .slow_ms = 2000,
	};
}

static int config_valid(const struct breaker_config *c)
{
	return c->failure_threshold >= 1 && c->success_threshold >= 1 && c->open_ms >= 1 &&
	       c->jitter_pct >= 0 && c->jitter_pct <= 100 && c->window_ms >= BREAKER_BUCKETS &&
	       c->min_calls >= 1 && c->rate_threshold_pct >= 1 && c->rate_threshold_pct <= 100 &&
	       c->half_open_probes >= 1 && c->slow_ms >= 0;
}

/* Forgets every count: the state OPEN and CLOSED are entered with. */
static void clear_counts(struct breaker *b)
{
	b->failures_in_row = 0;
	b->probes_in_flight = 0;
	b->probe_successes = 0;
	memset(b->buckets, 0, sizeof(b->buckets));
}

int breaker_init(struct breaker *b, const struct breaker_config *cfg)
{
	if (!config_valid(cfg))
		return ERR_INVAL;
	memset(b, 0, sizeof(*b));
	b->cfg = *cfg;
	b->state = BREAKER_CLOSED;
	b->now_ms = INT64_MIN; /* no time seen yet */
	b->bucket_ms = cfg->window_ms / BREAKER_BUCKETS;
	clear_counts(b);
	return 0;
}

/* Moves the breaker's time to now_ms unless that is earlier; returns its time. */
static int64_t advance(struct breaker *b, int64_t now_ms)
{
	if (now_ms > b->now_ms)
		b->now_ms = now_ms;
	return b->now_ms;
}

/* Floor division: the epoch of a negative time is still the bucket it lies in. */
static int64_t epoch_of(const struct breaker *b, int64_t t)
{
	int64_t q = t / b->bucket_ms;
	return (t % b->bucket_ms < 0) ? q - 1 : q;
}

static int64_t sat_add(int64_t a, int64_t x) /* x >= 0 */
{
	return a > INT64_MAX - x ? INT64_MAX : a + x;
}

/* Counts a success or failure at time t in the window. */
static void window_add(struct breaker *b, int64_t t, int failed)
{
	int64_t e = epoch_of(b, t);
	struct breaker_bucket *k =
	        &b->buckets[((e % BREAKER_BUCKETS) + BREAKER_BUCKETS) % BREAKER_BUCKETS];
	if (k->epoch != e || k->calls == 0)
		*k = (struct breaker_bucket){.epoch = e};
	k->calls++;
	k->failures += failed;
}

/* Whether the window as of time t holds enough calls failing often enough. */
static int window_trips(const struct breaker *b, int64_t t)
{
	int64_t e = epoch_of(b, t);
	/* the oldest epoch still in the window, without overflowing */
	int64_t lo = e < INT64_MIN + (BREAKER_BUCKETS - 1) ? INT64_MIN : e - (BREAKER_BUCKETS - 1);
	int64_t calls = 0, failures = 0;
	for (int i = 0; i < BREAKER_BUCKETS; i++) {
		const struct breaker_bucket *k = &b->buckets[i];
		if (k->calls > 0 && k->epoch >= lo) {
			calls += k->calls;
			failures += k->failures;
		}
	}
	return calls >= b->cfg.min_calls &&
	       failures * 100 >= (int64_t)b->cfg.rate_threshold_pct * calls;
}

/* CLOSED or HALF_OPEN -> OPEN at time t, for open_ms plus a jitter drawn from rnd. */
static void trip(struct breaker *b, int64_t t, uint64_t rnd)
{
	int64_t open_ms = b->cfg.open_ms;
	/* open_ms * jitter_pct / 100, exact and without overflowing */
	int64_t span = open_ms / 100 * b->cfg.jitter_pct + open_ms % 100 * b->cfg.jitter_pct / 100;
	int64_t jitter = (int64_t)(rnd % ((uint64_t)span + 1));
	b->state = BREAKER_OPEN;
	b->open_until = sat_add(sat_add(t, open_ms), jitter);
	clear_counts(b);
}

int breaker_allow(struct breaker *b, int64_t now_ms, int *changed)
{
	int64_t t = advance(b, now_ms);
	if (changed)
		*changed = 0;
	switch (b->state) {
	case BREAKER_CLOSED: return 1;
	case BREAKER_OPEN:
		if (t < b->open_until)
			return 0;
		b->state = BREAKER_HALF_OPEN;
		b->probes_in_flight = 0;
		b->probe_successes = 0;
		if (changed)
			*changed = 1;
		break; /* this ask is the first probe */
	case BREAKER_HALF_OPEN: break;
	}
	if (b->probes_in_flight >= b->cfg.half_open_probes)
		return 0;
	b->probes_in_flight++;
	return 1;
}

static int record_half_open(struct breaker *b, int64_t t, enum breaker_outcome o, uint64_t rnd)
{
	if (b->probes_in_flight == 0)
		return 0; /* not a probe's answer: a late one from before OPEN */
	b->probes_in_flight--;
	switch (o) {
	case BREAKER_SUCCESS:
		if (++b->probe_successes < b->cfg.success_threshold)
			return 0;
		b->state = BREAKER_CLOSED;
		clear_counts(b);
		return 1;
	case BREAKER_FAILURE: trip(b, t, rnd); return 1;
	case BREAKER_IGNORED: return 0;
	}
	return 0;
}

int breaker_record(struct breaker *b, int64_t now_ms, enum breaker_outcome o, uint64_t rnd)
{
	int64_t t = advance(b, now_ms);
	switch (b->state) {
	case BREAKER_OPEN: return 0; /* allowed before it opened: nothing to learn */
	case BREAKER_HALF_OPEN: return record_half_open(b, t, o, rnd);
	case BREAKER_CLOSED: break;
	}
	if (o == BREAKER_SUCCESS) {
		b->failures_in_row = 0;
		window_add(b, t, 0);
	} else if (o == BREAKER_FAILURE) {
		b->failures_in_row++;
		window_add(b, t, 1);
	} else {
		return 0; /* ignored: neither way */
	}
	if (b->failures_in_row >= b->cfg.failure_threshold || window_trips(b, t)) {
		trip(b, t, rnd);
		return 1;
	}
	return 0;
}

int breaker_force_open(struct breaker *b, int64_t now_ms, int64_t until_ms)
{
	int64_t t = advance(b, now_ms);
	if (until_ms <= t)
		return 0;
	if (b->state == BREAKER_OPEN) {
		if (b->open_until >= until_ms)
			return 0;
		b->open_until = until_ms;
		return 1;
	}
	b->state = BREAKER_OPEN;
	b->open_until = until_ms;
	clear_counts(b);
	return 1;
}

enum breaker_state breaker_state(const struct breaker *b)
{
	return b->state;
}

int64_t breaker_open_until(const struct breaker *b)
{
	return b->open_until;
}

const char *breaker_state_name(enum breaker_state s)
{
	switch (s) {
	case BREAKER_CLOSED: return "closed";
	case BREAKER_OPEN: return "open";
	case BREAKER_HALF_OPEN: return "half_open";
	}
	return "unknown";
}

enum breaker_outcome breaker_outcome_of(enum send_class c, int64_t took_ms, int64_t slow_ms)
{
	switch (c) {
	case SEND_RETRY: return BREAKER_FAILURE;
	case SEND_RATE: return BREAKER_IGNORED;
	case SEND_OK:
	case SEND_PERMANENT:
		return slow_ms > 0 && took_ms >= slow_ms ? BREAKER_FAILURE : BREAKER_SUCCESS;
	}
	return BREAKER_IGNORED; /* not a class: no verdict */
}
