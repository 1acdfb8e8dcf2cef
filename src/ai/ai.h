/*
 * ai.h - the optional AI endpoint: free text the local parser cannot read,
 * rewritten into one of munim's own commands by an OpenAI-compatible
 * chat-completions endpoint, and the signals of graceful degradation
 * level 1 (the seed's "AI degraded").
 *
 * The ERP never calls the network: a message it cannot read becomes an AI
 * job in its own transaction (erp.h, "The AI endpoint"). The "ai" thread
 * (ai_start) claims the jobs, asks the endpoint (libcurl, up to
 * --ai-concurrency at once, --ai-timeout-ms each, behind a circuit breaker
 * of its own: send/breaker.c with --ai-breaker-* settings), then runs the
 * rewrite through the ERP (erp_handle_job) in one transaction with the
 * replies (outbox rows quoting the customer's message) and the job's end.
 * An answer that is no command, an error, a timeout, an open breaker or a
 * degradation level of 1 or more: the text runs as typed, and the ERP
 * answers with the menu or the template reply. Each job ends exactly once
 * (store_ai_job_finish in that transaction); a job claimed but not ended
 * when the process died is claimed again after the restart.
 *
 * The thread also runs when no endpoint is configured: it ends jobs an
 * earlier run left (with the menu) and keeps the gauges of the job queue
 * and the OCR queue (munim_ocr_queue_depth) in step with the store.
 *
 * Threads: ai_start/ai_stop from serve's main thread; ai_signals and
 * ai_render_metrics from any thread (atomics only).
 */
#ifndef MUNIM_AI_H
#define MUNIM_AI_H

#include <stdint.h>

#include "app.h"
#include "core/buf.h"
#include "core/metrics.h"

struct ai;

/* What became of a call to the endpoint (munim_ai_requests_total{result}). */
enum ai_result {
	AI_RESULT_OK = 0,       /* answered 200 with a readable answer */
	AI_RESULT_ERROR = 1,    /* no connection, a non-200 status, an unreadable answer */
	AI_RESULT_TIMEOUT = 2,  /* no answer within --ai-timeout-ms */
	AI_RESULT_REJECTED = 3, /* not called: breaker open, or degraded */
	AI_RESULT_COUNT = 4,
};

/*
 * A snapshot of the signals the degradation controller polls. Counters
 * and the latency histogram only grow: the controller keeps the previous
 * snapshot and diffs (as it does with the metrics' reply latency).
 */
struct ai_signals {
	int configured;    /* an endpoint is set (--ai-url) */
	int breaker_state; /* enum breaker_state (send/breaker.h) */
	int refusing;      /* the breaker refuses calls now */
	uint64_t requests[AI_RESULT_COUNT];
	uint64_t latency_bucket[METRICS_LAT_BUCKETS + 1]; /* as struct histogram, +Inf last */
	uint64_t latency_count;
	uint64_t latency_sum_us;
	int64_t jobs_waiting; /* jobs not yet done */
	int64_t ocr_depth;    /* photos and documents waiting to be read */
};

/*
 * ai_start connects to the store, puts jobs a crash left claimed back to
 * pending, reads the queue gauges, sets the ERP's AI setting (erp_ai_set)
 * and starts the "ai" thread. Call it before any thread runs the ERP.
 * 0 or ERR_* (logged).
 */
int ai_start(struct app *app, struct ai **out);
/* ai_stop ends the thread (calls in flight are abandoned: their jobs stay
 * claimed and run again after a restart), clears the ERP's AI setting and
 * frees ai. NULL: nothing. Call it once no other thread runs the ERP. */
void ai_stop(struct ai *ai);
/* ai_signals fills *out (zeros when ai is NULL); any thread. */
void ai_signals(const struct ai *ai, struct ai_signals *out);
/* ai_render_metrics appends the AI's and the OCR queue's metrics; any thread. */
void ai_render_metrics(const struct ai *ai, struct buf *b);

/* `munim ocr` (ocr_cmd.c): list the photos and documents waiting to be
 * read, or mark one read. */
int cmd_ocr(int argc, char **argv);

#endif
