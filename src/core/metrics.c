/*
 * metrics.c - Prometheus text exposition of struct metrics.
 */
#include "core/metrics.h"

#include <stdio.h>
#include <string.h>

#include "core/clock.h"

const double metrics_lat_bounds[METRICS_LAT_BUCKETS] = {
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30,
};

static const unsigned int code_values[MCODE_COUNT] = {200, 400, 401, 403, 404,
                                                      405, 413, 500, 503, 0};

void metrics_init(struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->started_at_ms = clock_wall_ms();
}

int metrics_code_index(unsigned int http_status)
{
	for (int i = 0; i < MCODE_OTHER; i++)
		if (code_values[i] == http_status)
			return i;
	return MCODE_OTHER;
}

void metrics_observe_us(struct histogram *h, int64_t us)
{
	if (us < 0)
		us = 0;
	double s = (double)us / 1e6;
	int i = 0;
	while (i < METRICS_LAT_BUCKETS && s > metrics_lat_bounds[i])
		i++;
	atomic_fetch_add_explicit(&h->bucket[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->count, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, (uint64_t)us, memory_order_relaxed);
}

void metrics_outbox_move(struct metrics *m, enum outbox_prio p, int from, int to)
{
	if ((int)p < 0 || p >= PRIO_COUNT)
		return;
	if (from >= 0 && from < OUTBOX_STATE_COUNT)
		atomic_fetch_sub_explicit(&m->outbox[p][from], 1, memory_order_relaxed);
	if (to >= 0 && to < OUTBOX_STATE_COUNT)
		atomic_fetch_add_explicit(&m->outbox[p][to], 1, memory_order_relaxed);
}

static void counter(struct buf *o, const char *name, const char *help, uint64_t v)
{
	buf_printf(o, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
	           (unsigned long long)v);
}

static void gauge(struct buf *o, const char *name, const char *help, int64_t v)
{
	buf_printf(o, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name,
	           (long long)v);
}

static void histogram(struct buf *o, const char *name, const char *help, const struct histogram *h)
{
	buf_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
	uint64_t cum = 0;
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++) {
		cum += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		if (i < METRICS_LAT_BUCKETS)
			buf_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, metrics_lat_bounds[i],
			           (unsigned long long)cum);
		else
			buf_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name,
			           (unsigned long long)cum);
	}
	buf_printf(o, "%s_sum %.6f\n%s_count %llu\n", name,
	           (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6, name,
	           (unsigned long long)cum);
}

#define LOAD(x) atomic_load_explicit(&(x), memory_order_relaxed)

static const unsigned int companion_codes[METRICS_COMPANION_CODES] = {200, 201, 400, 401, 404,
                                                                      409, 413, 500, 503, 0};

void metrics_companion_request(struct metrics *m, enum metrics_companion_route route,
                               unsigned int http_status)
{
	int i = 0;
	while (i < METRICS_COMPANION_CODES - 1 && companion_codes[i] != http_status)
		i++;
	if ((int)route >= 0 && route < MCOMP_ROUTES)
		atomic_fetch_add_explicit(&m->companion_requests[route][i], 1,
		                          memory_order_relaxed);
}

static void companion_render(const struct metrics *m, struct buf *o)
{
	static const char *const routes[MCOMP_ROUTES] = {"stock",        "orders",  "order",
	                                                 "order_create", "invoice", "sync"};
	static const char *const sync[MSYNC_COUNT] = {"applied", "duplicate", "rejected"};
	buf_puts(o, "# HELP munim_companion_requests_total Companion API requests answered, by "
	            "route and HTTP status.\n# TYPE munim_companion_requests_total counter\n");
	for (int r = 0; r < MCOMP_ROUTES; r++)
		for (int i = 0; i < METRICS_COMPANION_CODES; i++) {
			char code[16] = "other";
			if (i < METRICS_COMPANION_CODES - 1)
				snprintf(code, sizeof(code), "%u", companion_codes[i]);
			buf_printf(
			        o,
			        "munim_companion_requests_total{route=\"%s\",code=\"%s\"} %llu\n",
			        routes[r], code,
			        (unsigned long long)LOAD(m->companion_requests[r][i]));
		}
	buf_puts(o, "# HELP munim_sync_ops_total Operations of companion syncs, by outcome.\n"
	            "# TYPE munim_sync_ops_total counter\n");
	for (int i = 0; i < MSYNC_COUNT; i++)
		buf_printf(o, "munim_sync_ops_total{status=\"%s\"} %llu\n", sync[i],
		           (unsigned long long)LOAD(m->sync_ops[i]));
}

void metrics_render_histogram(struct buf *out, const char *name, const char *help,
                              const struct histogram *h)
{
	histogram(out, name, help, h);
}

void metrics_render(const struct metrics *m, struct buf *o)
{
	buf_puts(o, "# HELP munim_webhook_requests_total Webhook POSTs answered, by HTTP status.\n"
	            "# TYPE munim_webhook_requests_total counter\n");
	for (int i = 0; i < MCODE_COUNT; i++) {
		uint64_t v = LOAD(m->webhook_requests[i]);
		if (i == MCODE_OTHER)
			buf_printf(o, "munim_webhook_requests_total{code=\"other\"} %llu\n",
			           (unsigned long long)v);
		else
			buf_printf(o, "munim_webhook_requests_total{code=\"%u\"} %llu\n",
			           code_values[i], (unsigned long long)v);
	}
	counter(o, "munim_webhook_unknown_tenant_total",
	        "Webhook changes for a phone_number_id no tenant owns.",
	        LOAD(m->webhook_unknown_tenant));
	counter(o, "munim_webhook_entries_skipped_total",
	        "Messages or statuses without an id or a sender, not stored.",
	        LOAD(m->webhook_entries_skipped));
	counter(o, "munim_webhook_payload_errors_total",
	        "Errors the platform reported inside webhooks (value.errors[]).",
	        LOAD(m->webhook_payload_errors));
	counter(o, "munim_inbox_received_total", "Inbox entries stored.", LOAD(m->inbox_new));
	counter(o, "munim_inbox_duplicates_total", "Inbox entries already stored (redeliveries).",
	        LOAD(m->inbox_duplicate));
	gauge(o, "munim_inbox_depth", "Inbox entries waiting to be processed.",
	      LOAD(m->inbox_depth));
	counter(o, "munim_ingest_commits_total", "Group commits of the ingest path.",
	        LOAD(m->commits));
	counter(o, "munim_ingest_commit_requests_total",
	        "Webhook requests made durable by those commits.", LOAD(m->commit_requests));
	counter(o, "munim_inline_processed_total",
	        "Messages processed within their webhook's own commit (the fast path).",
	        LOAD(m->inline_processed));
	counter(o, "munim_send_direct_total",
	        "Replies handed to the sender by the transaction that made them, without a claim.",
	        LOAD(m->sends_direct));
	counter(o, "munim_messages_processed_total", "Inbox entries processed.",
	        LOAD(m->messages_processed));
	counter(o, "munim_messages_failed_total", "Processing attempts that failed.",
	        LOAD(m->messages_failed));
	histogram(o, "munim_processing_latency_seconds",
	          "From webhook received to its ERP transaction committed.",
	          &m->processing_latency);
	histogram(o, "munim_message_latency_seconds",
	          "From webhook received to the reply accepted by the provider.",
	          &m->reply_latency);
	buf_puts(o, "# HELP munim_outbox_messages Outbox rows by priority and state.\n"
	            "# TYPE munim_outbox_messages gauge\n");
	for (int p = 0; p < PRIO_COUNT; p++)
		for (int s = 0; s < OUTBOX_STATE_COUNT; s++)
			buf_printf(o, "munim_outbox_messages{priority=\"%s\",state=\"%s\"} %lld\n",
			           outbox_prio_name((enum outbox_prio)p),
			           outbox_state_name((enum outbox_state)s),
			           (long long)LOAD(m->outbox[p][s]));
	counter(o, "munim_send_attempts_total", "Sends attempted to a provider.",
	        LOAD(m->send_attempts));
	counter(o, "munim_send_errors_total", "Send attempts that failed.", LOAD(m->send_errors));
	counter(o, "munim_marketing_refused_total",
	        "Marketing requests refused 503 at spike level 4.", LOAD(m->marketing_refused));
	counter(o, "munim_dead_letters_total", "Outbox rows that used up their attempts.",
	        LOAD(m->dead_letters));
	counter(o, "munim_outbox_merged_total",
	        "Replies merged into another reply to the same customer under a traffic spike.",
	        LOAD(m->outbox_merged));
	counter(o, "munim_statuses_applied_total",
	        "Delivery statuses applied to the outbox in their webhook's commit.",
	        LOAD(m->statuses_applied));
	counter(o, "munim_statuses_unmatched_total",
	        "Delivery statuses for messages the outbox does not hold.",
	        LOAD(m->statuses_unmatched));
	companion_render(m, o);
}
