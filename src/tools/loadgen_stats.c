/*
 * loadgen_stats.c - the arithmetic of `munim loadgen`, kept pure so the
 * unit tests can pin it: the schedule (when message i is due), the
 * latency histogram and its percentiles, who sends message i and what,
 * and the wamids that tie a reply to its message.
 *
 * The schedule is computed, not stored: a run of 10^7 messages needs only
 * one index per step. Every profile (constant, step, surge) is a list of
 * steps, each with its own rate and length; message i of step k is due at
 *     start_k * 10^6 + (i - first[k]) * 10^6 / rate_k   microseconds,
 * so sends within a step are evenly spaced and a step's count is exactly
 * rate_k times its length.
 *
 * The histogram is HdrHistogram's log-linear layout with 2 significant
 * figures and a bit: values below 256 us have a bucket each; from there
 * every power of two [2^b, 2^(b+1)) is cut into 128 equal buckets, so a
 * bucket is never wider than 1/128 of its values (0.8%). 3328 buckets of
 * 4 bytes cover 1 us .. 71 minutes.
 *
 * Nothing here keeps state between calls; the histogram is not
 * thread-safe (one writer, readers after it is done).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

/* ---- the schedule ---------------------------------------------------------- */

int loadgen_sched_build(struct loadgen_sched *s, const struct loadgen_step *steps, int n)
{
	memset(s, 0, sizeof(*s));
	if (n < 1 || n > LOADGEN_MAX_STEPS) {
		snprintf(s->why, sizeof(s->why), "a profile has 1 to %d steps, not %d",
		         LOADGEN_MAX_STEPS, n);
		return ERR_INVAL;
	}
	int64_t duration = 0;
	for (int k = 0; k < n; k++) {
		if (steps[k].rate < 1 || steps[k].rate > LOADGEN_MAX_RATE) {
			snprintf(s->why, sizeof(s->why),
			         "every step's rate must be within 1..%d/s; step %d asks %lld/s",
			         LOADGEN_MAX_RATE, k, (long long)steps[k].rate);
			return ERR_INVAL;
		}
		if (steps[k].len_s < 1 || steps[k].len_s > LOADGEN_MAX_DURATION - duration) {
			snprintf(s->why, sizeof(s->why),
			         "every step lasts at least 1 s and the run at most %d s",
			         LOADGEN_MAX_DURATION);
			return ERR_INVAL;
		}
		duration += steps[k].len_s;
	}
	s->nsteps = n;
	s->duration_s = duration;
	s->steps = xcalloc((size_t)n, sizeof(*s->steps));
	s->first = xcalloc((size_t)n + 1, sizeof(*s->first));
	uint64_t total = 0;
	int64_t start = 0;
	for (int k = 0; k < n; k++) {
		s->steps[k] = steps[k];
		s->steps[k].start_s = start;
		start += steps[k].len_s;
		s->first[k] = total;
		/* at most 10^5 * 3600 per step: no overflow */
		total += (uint64_t)(steps[k].rate * steps[k].len_s);
	}
	s->first[n] = total;
	s->total = total;
	if (total > LOADGEN_MAX_MSGS) {
		snprintf(s->why, sizeof(s->why), "that is %llu messages; at most %d in one run",
		         (unsigned long long)total, LOADGEN_MAX_MSGS);
		return ERR_TOOBIG;
	}
	return 0;
}

int loadgen_sched_init(struct loadgen_sched *s, int64_t rate, int64_t step, int64_t step_every_s,
                       int64_t duration_s)
{
	memset(s, 0, sizeof(*s));
	if (rate < 1 || rate > LOADGEN_MAX_RATE || step < 0 || step > LOADGEN_MAX_RATE ||
	    step_every_s < 1 || duration_s < 1 || duration_s > LOADGEN_MAX_DURATION)
		goto inval;
	if (step_every_s > duration_s)
		step_every_s = duration_s;
	int64_t nsteps = (duration_s + step_every_s - 1) / step_every_s;
	if (nsteps > LOADGEN_MAX_STEPS || rate + (nsteps - 1) * step > LOADGEN_MAX_RATE)
		goto inval;
	struct loadgen_step *steps = xcalloc((size_t)nsteps, sizeof(*steps));
	for (int64_t k = 0; k < nsteps; k++) {
		int64_t begin = k * step_every_s;
		steps[k].rate = rate + k * step;
		steps[k].len_s =
		        duration_s - begin < step_every_s ? duration_s - begin : step_every_s;
	}
	int rc = loadgen_sched_build(s, steps, (int)nsteps);
	free(steps);
	return rc;
inval:
	snprintf(s->why, sizeof(s->why),
	         "the profile must keep every step's rate within 1..%d/s and have at most %d "
	         "steps",
	         LOADGEN_MAX_RATE, LOADGEN_MAX_STEPS);
	return ERR_INVAL;
}

int loadgen_sched_surge(struct loadgen_sched *s, int64_t rate, double factor, int64_t at_s,
                        int64_t for_s, int64_t duration_s)
{
	memset(s, 0, sizeof(*s));
	if (rate < 1 || rate > LOADGEN_MAX_RATE) {
		snprintf(s->why, sizeof(s->why), "--rate must be within 1..%d/s", LOADGEN_MAX_RATE);
		return ERR_INVAL;
	}
	/* written so that NaN fails too */
	if (!(factor >= 1 && factor <= LOADGEN_MAX_SURGE_FACTOR)) {
		snprintf(s->why, sizeof(s->why), "--surge-factor must be within 1..%d",
		         LOADGEN_MAX_SURGE_FACTOR);
		return ERR_INVAL;
	}
	double peak = floor((double)rate * factor + 0.5);
	if (peak > LOADGEN_MAX_RATE) {
		snprintf(s->why, sizeof(s->why),
		         "the surge's rate (--rate %lld x --surge-factor %g) is above %d/s",
		         (long long)rate, factor, LOADGEN_MAX_RATE);
		return ERR_INVAL;
	}
	if (duration_s < 1 || duration_s > LOADGEN_MAX_DURATION) {
		snprintf(s->why, sizeof(s->why), "--duration must be within 1..%d s",
		         LOADGEN_MAX_DURATION);
		return ERR_INVAL;
	}
	if (at_s < 0 || for_s < 1 || at_s > duration_s || for_s > duration_s - at_s) {
		snprintf(
		        s->why, sizeof(s->why),
		        "the surge (--surge-at %lld, --surge-for %lld) must start at 0 s or later, "
		        "last at least 1 s and end by --duration %lld",
		        (long long)at_s, (long long)for_s, (long long)duration_s);
		return ERR_INVAL;
	}
	struct loadgen_step steps[3];
	int n = 0;
	if (at_s > 0)
		steps[n++] = (struct loadgen_step){rate, 0, at_s, "before"};
	steps[n++] = (struct loadgen_step){(int64_t)peak, 0, for_s, "surge"};
	if (duration_s - at_s - for_s > 0)
		steps[n++] = (struct loadgen_step){rate, 0, duration_s - at_s - for_s, "after"};
	return loadgen_sched_build(s, steps, n);
}

void loadgen_sched_release(struct loadgen_sched *s)
{
	free(s->first);
	free(s->steps);
	s->first = NULL;
	s->steps = NULL;
}

int64_t loadgen_sched_rate(const struct loadgen_sched *s, int k)
{
	return s->steps[k].rate;
}

int64_t loadgen_sched_step_start_us(const struct loadgen_sched *s, int k)
{
	return s->steps[k].start_s * 1000000;
}

int64_t loadgen_sched_at_us(const struct loadgen_sched *s, uint64_t i, int *step)
{
	/* the last step whose first message is <= i */
	int lo = 0, hi = s->nsteps - 1;
	while (lo < hi) {
		int mid = lo + (hi - lo + 1) / 2;
		if (s->first[mid] <= i)
			lo = mid;
		else
			hi = mid - 1;
	}
	if (step)
		*step = lo;
	int64_t j = (int64_t)(i - s->first[lo]);
	return loadgen_sched_step_start_us(s, lo) + j * 1000000 / loadgen_sched_rate(s, lo);
}

/* ---- the histogram ------------------------------------------------------------- */

#define HIST_LINEAR (2 * LOADGEN_HIST_SUB) /* values with a bucket each */
#define HIST_TOP    ((int64_t)1 << LOADGEN_HIST_BITS)

int loadgen_hist_bucket(int64_t us)
{
	if (us < 0)
		us = 0;
	if (us >= HIST_TOP)
		us = HIST_TOP - 1;
	if (us < HIST_LINEAR)
		return (int)us;
	int bits = 64 - __builtin_clzll((unsigned long long)us);
	int m = bits - 8; /* 8 bits: the width of HIST_LINEAR's values */
	return m * LOADGEN_HIST_SUB + (int)(us >> m);
}

int64_t loadgen_hist_lowest(int bucket)
{
	if (bucket < HIST_LINEAR)
		return bucket;
	int m = bucket / LOADGEN_HIST_SUB - 1;
	return (int64_t)(bucket - m * LOADGEN_HIST_SUB) << m;
}

static int64_t bucket_width(int bucket)
{
	if (bucket < HIST_LINEAR)
		return 1;
	return (int64_t)1 << (bucket / LOADGEN_HIST_SUB - 1);
}

void loadgen_hist_add(struct loadgen_hist *h, int64_t us)
{
	if (us < 0)
		us = 0;
	h->counts[loadgen_hist_bucket(us)]++;
	if (h->n == 0 || us > h->max)
		h->max = us;
	h->n++;
}

int64_t loadgen_hist_pct(const struct loadgen_hist *h, double pct)
{
	if (h->n == 0)
		return -1;
	if (pct >= 100)
		return h->max;
	/* the small slack keeps 95% of 600 at rank 570, not 571 */
	double r = ceil(pct / 100.0 * (double)h->n - 1e-9);
	uint64_t rank = r < 1 ? 1 : (uint64_t)r;
	uint64_t seen = 0;
	for (int b = 0; b < LOADGEN_HIST_BUCKETS; b++) {
		seen += h->counts[b];
		if (seen >= rank) {
			int64_t v = loadgen_hist_lowest(b) + (bucket_width(b) - 1) / 2;
			return v < h->max ? v : h->max;
		}
	}
	return h->max;
}

/* ---- who sends what -------------------------------------------------------------- */

void loadgen_pick(const struct loadgen_mix *m, uint64_t i, uint64_t *phone, uint64_t *customer,
                  const char **text)
{
	uint64_t round = i / (uint64_t)m->tenants;
	*phone = m->first_phone + i % (uint64_t)m->tenants;
	*customer = m->first_customer + round % (uint64_t)m->customers;
	*text = m->texts[round % (uint64_t)m->ntexts];
}

#define WAMID_HEAD     "wamid.LG"
#define WAMID_HEAD_LEN (sizeof(WAMID_HEAD) - 1)

void loadgen_wamid_tag(uint64_t run_id, char out[LOADGEN_TAG_CAP])
{
	snprintf(out, LOADGEN_TAG_CAP, "%016llX", (unsigned long long)run_id);
}

void loadgen_wamid(const char *tag, uint64_t i, char out[LOADGEN_WAMID_CAP])
{
	memcpy(out, WAMID_HEAD, WAMID_HEAD_LEN);
	size_t n = WAMID_HEAD_LEN + tools_fmt_u64(out + WAMID_HEAD_LEN, tools_scatter_u64(i), 20);
	out[n++] = '_';
	size_t tl = strnlen(tag, LOADGEN_TAG_CAP - 1); /* no printf per message */
	memcpy(out + n, tag, tl);
	out[n + tl] = '\0';
}

int loadgen_wamid_index(const char *tag, const char *wamid, uint64_t total, uint64_t *i)
{
	if (!wamid || strncmp(wamid, WAMID_HEAD, WAMID_HEAD_LEN) != 0)
		return ERR_NOTFOUND;
	const char *p = wamid + WAMID_HEAD_LEN;
	uint64_t v = 0;
	for (int k = 0; k < 20; k++, p++) {
		unsigned d = (unsigned)(*p - '0');
		if (d > 9 || v > (UINT64_MAX - d) / 10)
			return ERR_NOTFOUND; /* not 20 digits, or past 64 bits */
		v = v * 10 + d;
	}
	if (*p != '_' || strcmp(p + 1, tag) != 0)
		return ERR_NOTFOUND;
	v = tools_gather_u64(v);
	if (v >= total)
		return ERR_NOTFOUND;
	*i = v;
	return 0;
}
