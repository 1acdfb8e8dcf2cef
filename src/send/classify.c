/*
 * classify.c - what to do with a provider's answer, and how long to wait
 * before trying again.
 *
 * send_classify follows the Cloud API's advice to branch on error.code, not
 * on the HTTP status: a known code decides first, then the status does.
 *
 *   no answer (timeout, refused, reset) ............ SEND_RETRY
 *   2xx ............................................ SEND_OK
 *   130429 131056 4 80007 (throughput, pair rate) .. SEND_RATE
 *   190 (token expired), 131048 (spam pause) ....... SEND_RATE: the
 *     account's problem, not the message's; retried slowly so that replies
 *     survive until an operator renews the token or the pause ends
 *   131000 131016 2 133004 131057 (transient) ...... SEND_RETRY
 *   131026 131050 131047 131049 131031 368
 *   100 130403 131008 131009 131042 132000-132999 SEND_PERMANENT
 *   other code: 429 → RATE, 408/5xx → RETRY, else PERMANENT
 *
 * backoff_delay_ms is "full jitter" (AWS architecture blog, 2015): a uniform
 * draw below an exponentially growing ceiling, so that many rows failing at
 * once (a provider outage) do not come back at once.
 *
 * Pure functions: no state, thread-safe.
 */
#include "send/sender.h"

static int code_is_rate(int code)
{
	switch (code) {
	case 130429: /* throughput reached */
	case 131056: /* pair rate limit */
	case 4:      /* app API rate limit */
	case 80007:  /* WABA rate limit */
	case 190:    /* access token expired: wait for a new one */
	case 131048: /* spam rate limit: paused for a while */ return 1;
	default: return 0;
	}
}

static int code_is_transient(int code)
{
	switch (code) {
	case 131000: /* unknown error */
	case 131016: /* service unavailable */
	case 2:      /* temporarily unavailable */
	case 133004: /* server temporarily unavailable */
	case 131057: /* account in maintenance */ return 1;
	default: return 0;
	}
}

static int code_is_permanent(int code)
{
	if (code >= 132000 && code <= 132999) /* template problems */
		return 1;
	switch (code) {
	case 131026: /* undeliverable */
	case 131050: /* user stopped marketing messages */
	case 131047: /* outside the 24 h window: needs a template */
	case 131049: /* marketing not delivered for ecosystem health */
	case 131031: /* account locked */
	case 368:    /* temporarily blocked for policy violations */
	case 100:    /* invalid parameter */
	case 130403: /* unsupported recipient */
	case 131008: /* required parameter missing */
	case 131009: /* parameter value not valid */
	case 131042: /* payment problem on the account */ return 1;
	default: return 0;
	}
}

enum send_class send_classify(long http_status, int error_code)
{
	if (http_status == 0)
		return SEND_RETRY;
	if (http_status >= 200 && http_status <= 299)
		return SEND_OK;
	if (error_code != 0) {
		if (code_is_rate(error_code))
			return SEND_RATE;
		if (code_is_transient(error_code))
			return SEND_RETRY;
		if (code_is_permanent(error_code))
			return SEND_PERMANENT;
	}
	if (http_status == 429)
		return SEND_RATE;
	if (http_status == 408 || (http_status >= 500 && http_status <= 599))
		return SEND_RETRY;
	return SEND_PERMANENT;
}

int64_t backoff_delay_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t rnd)
{
	if (base_ms <= 0 || cap_ms <= 0)
		return 0;
	if (attempt < 1)
		attempt = 1;
	int64_t ceiling = base_ms < cap_ms ? base_ms : cap_ms;
	/* double attempt-1 times, stopping at the cap (no overflow: ceiling ≤ cap) */
	for (int i = 1; i < attempt && ceiling < cap_ms; i++)
		ceiling = ceiling > cap_ms / 2 ? cap_ms : ceiling * 2;
	return (int64_t)(rnd % ((uint64_t)ceiling + 1));
}
