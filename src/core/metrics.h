/*
 * metrics.h - the process's counters, gauges and histograms, rendered in
 * the Prometheus text format at /metrics.
 *
 * A fixed struct of atomics rather than a registry: every metric is known
 * at compile time, updates are one relaxed atomic add, and rendering walks
 * the struct. Any thread may update any field.
 */
#ifndef MUNIM_METRICS_H
#define MUNIM_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

#include "core/buf.h"
#include "store/store.h"

/* Latency histogram buckets, seconds (upper bounds; +Inf implied). */
#define METRICS_LAT_BUCKETS 14
extern const double metrics_lat_bounds[METRICS_LAT_BUCKETS];

struct histogram {
	_Atomic uint64_t bucket[METRICS_LAT_BUCKETS + 1]; /* last: +Inf */
	_Atomic uint64_t count;
	_Atomic uint64_t sum_us;
};

/* HTTP status codes the webhook endpoint answers, for the by-code counter. */
enum metrics_code {
	MCODE_200,
	MCODE_400,
	MCODE_401,
	MCODE_403,
	MCODE_404,
	MCODE_405,
	MCODE_413,
	MCODE_500,
	MCODE_503,
	MCODE_OTHER,
	MCODE_COUNT
};

/* The companion app's API (companion/companion.h): its routes, the
 * statuses counted by name (the last is every other), and the outcomes of
 * synced operations. */
enum metrics_companion_route {
	MCOMP_STOCK,
	MCOMP_ORDERS,
	MCOMP_ORDER,
	MCOMP_ORDER_CREATE,
	MCOMP_INVOICE,
	MCOMP_SYNC,
	MCOMP_ROUTES
};
#define METRICS_COMPANION_CODES 10
enum metrics_sync_status { MSYNC_APPLIED, MSYNC_DUPLICATE, MSYNC_REJECTED, MSYNC_COUNT };

struct metrics {
	int64_t started_at_ms;
	_Atomic uint64_t webhook_requests[MCODE_COUNT];
	_Atomic uint64_t webhook_unknown_tenant;  /* changes for unknown phone_number_id */
	_Atomic uint64_t webhook_entries_skipped; /* messages/statuses without id or sender */
	_Atomic uint64_t webhook_payload_errors;  /* value.errors[] reported by the platform */
	_Atomic uint64_t inbox_new;               /* entries stored */
	_Atomic uint64_t inbox_duplicate;         /* entries already present */
	_Atomic int64_t inbox_depth;              /* pending entries */
	_Atomic uint64_t commits;                 /* ingest group commits */
	_Atomic uint64_t commit_requests;         /* requests covered by those commits */
	_Atomic uint64_t inline_processed;        /* messages processed in their webhook's commit */
	_Atomic uint64_t sends_direct;            /* replies handed to the sender born claimed */
	_Atomic uint64_t messages_processed;
	_Atomic uint64_t messages_failed;    /* processing errors (retried) */
	struct histogram processing_latency; /* received → ERP txn committed */
	struct histogram reply_latency;      /* received → reply accepted by provider */
	_Atomic int64_t outbox[PRIO_COUNT][OUTBOX_STATE_COUNT];
	_Atomic uint64_t send_attempts;
	_Atomic uint64_t send_errors;       /* failed attempts of any kind */
	_Atomic uint64_t marketing_refused; /* campaigns refused at spike level 4 */
	_Atomic uint64_t dead_letters;
	_Atomic uint64_t outbox_merged;      /* replies merged into another (send/aggregate.h) */
	_Atomic uint64_t statuses_applied;   /* delivery statuses stored with their webhook */
	_Atomic uint64_t statuses_unmatched; /* status for a message we do not know */
	_Atomic uint64_t companion_requests[MCOMP_ROUTES][METRICS_COMPANION_CODES];
	_Atomic uint64_t sync_ops[MSYNC_COUNT];
};

void metrics_init(struct metrics *m);
int metrics_code_index(unsigned int http_status);
void metrics_observe_us(struct histogram *h, int64_t us);
/* metrics_outbox_move counts one row leaving `from` (ignored if < 0) for `to`. */
void metrics_outbox_move(struct metrics *m, enum outbox_prio p, int from, int to);
/* metrics_companion_request counts one answer of the companion API. */
void metrics_companion_request(struct metrics *m, enum metrics_companion_route route,
                               unsigned int http_status);
void metrics_render(const struct metrics *m, struct buf *out);
/* metrics_render_histogram appends h as the Prometheus histogram name (with
 * its HELP and TYPE lines) to out: for histograms kept outside struct metrics. */
void metrics_render_histogram(struct buf *out, const char *name, const char *help,
                              const struct histogram *h);

#endif
