/*
 * delivery.h - each provider's rolling delivery rate, from the delivery
 * reports (WhatsApp status webhooks, SMS delivery reports).
 */
#ifndef MUNIM_DELIVERY_H
#define MUNIM_DELIVERY_H

#include <stdint.h>

#include "core/buf.h"

struct delivery;

/*
 * delivery_new: rates over window_ms, counted once min_reports reports are
 * in the window; a provider below min_pct is "not delivering". 0, or
 * ERR_INVAL (window_ms below 10, min_reports below 1, min_pct outside
 * 0..100).
 */
int delivery_new(int64_t window_ms, int min_reports, int min_pct, struct delivery **out);
void delivery_free(struct delivery *d);

/* delivery_report counts one report about a message provider accepted:
 * delivered 1 (delivered or read), 0 (failed). Any thread; NULL d or an
 * empty provider: ignored. */
void delivery_report(struct delivery *d, const char *provider, int delivered, int64_t now_ms);

/* delivery_rate_pm: delivered per mille over the window, or -1 while fewer
 * than min_reports reports are in it. Any thread. */
int delivery_rate_pm(struct delivery *d, const char *provider, int64_t now_ms);

/* delivery_ok: the provider is not known to be failing deliveries (too few
 * reports, or a rate of min_pct or more). NULL d: 1. */
int delivery_ok(struct delivery *d, const char *provider, int64_t now_ms);

/* delivery_render appends munim_delivery_rate{provider} and the report
 * counters, for every provider that has had a report. */
void delivery_render(struct delivery *d, struct buf *out, int64_t now_ms);

#endif
