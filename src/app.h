/*
 * app.h - the one struct that main builds and passes down: configuration,
 * the store, metrics and the wake-ups between the roles of `serve`.
 *
 * Written by the serve command before any thread starts, except:
 *   metrics     - any thread (atomics)
 *   stopping    - set by the signal handler path, read by every loop
 *   ready       - set once start-up recovery is done (read by /readyz)
 */
#ifndef MUNIM_APP_H
#define MUNIM_APP_H

#include <stdatomic.h>

#include "core/config.h"
#include "core/metrics.h"
#include "core/notify.h"
#include "store/store.h"

struct ai;
struct backlog;
struct cluster_sender;
struct delivery;
struct leader;
struct lease;

struct app {
	struct config cfg;
	struct store *store;
	struct metrics metrics;
	struct notify inbox_ready; /* ingest committed new inbox entries */
	/* the partitions with inbox entries a worker thread has not read since
	 * they were rung for (app_inbox_wake); a thread takes its own bits */
	_Atomic uint64_t inbox_parts;
	struct notify outbox_ready; /* worker committed new outbox rows */
	/* customers with messages waiting in the inbox (worker/backlog.h);
	 * non-NULL only when ingest runs messages itself (the fast path) */
	struct backlog *backlog;
	/* providers' delivery rates (send/delivery.h), fed by delivery reports;
	 * NULL: not kept */
	struct delivery *delivery;
	/* with --redis and the sender role, the per-number budget, live senders
	 * and breaker states shared with the fleet (cluster/cluster.h): used by
	 * the sender's network thread alone, its metrics by any; NULL: the
	 * sender paces and judges providers alone */
	struct cluster_sender *cluster;
	/* the AI thread (ai/ai.h): its signals for the controller (ai_signals);
	 * NULL when it does not run (no worker role) */
	struct ai *ai;
	/* this process's node and partition leases (worker/lease.h): the
	 * workers read only the partitions it holds; NULL: every partition
	 * (no lease keeper, as in tests) */
	struct lease *lease;
	/* the controllers' leadership (control/leader.h): the cluster-wide
	 * jobs run only while it leads; NULL: never (no controller role) */
	struct leader *leader;
	/* 1 while another live process takes webhooks (worker/lease.c): the
	 * fast path's backlog would not see its entries, so this process's
	 * ingest leaves every message to the workers */
	_Atomic int inline_off;
	/* the controller's traffic spike level 0..4 (control/controller.h); 0
	 * when no controller runs */
	_Atomic int spike_level;
	/* the graceful degradation level 0..4 (control/degrade.h): 1 AI
	 * degraded, 2 WhatsApp degraded, 3 companion app only, 4 offline; 0
	 * when no controller runs */
	_Atomic int degradation_level;
	/*
	 * The modes the controller switches on from the levels and the
	 * festival calendar (control/controller.c); the roles read them. All 0
	 * when no controller runs.
	 *   batch_factor     batch sizes times this: 2 from spike level 1 or in
	 *                    a pre-scale window (increase_batch_size(2x)); 0
	 *                    and 1 mean 1 (app_batch)
	 *   pause_p3         1: the sender claims no P3 (spike level 2+, or a
	 *                    festival peak's defer-p3)
	 *   aggregate        1: replies waiting for one recipient are merged
	 *                    (spike level 2+, or 1+ with aggregation armed)
	 *   priority_strict  1: P3 is claimed only while no P0..P2 waits
	 *   sms_critical     1: a P0/P1 that would wait for WhatsApp goes by
	 *                    SMS (spike level 3+, or 2+ with SMS on standby);
	 *                    2: every P0/P1 goes by SMS (spike level 4)
	 */
	_Atomic int batch_factor;
	_Atomic int pause_p3;
	_Atomic int aggregate;
	_Atomic int priority_strict;
	_Atomic int sms_critical;
	_Atomic int stopping;
	_Atomic int ready;
};

/*
 * app_inbox_wake: new inbox entries in the partitions parts (a mask; all
 * ones: any, or not known): the workers that read them wake.
 */
static inline void app_inbox_wake(struct app *app, uint64_t parts)
{
	atomic_fetch_or(&app->inbox_parts, parts);
	notify_signal(&app->inbox_ready);
}

/* app_batch: base times the batch factor, at most cap. */
static inline int app_batch(struct app *app, int64_t base, int cap)
{
	int f = atomic_load_explicit(&app->batch_factor, memory_order_relaxed);
	int64_t n = base * (f > 1 ? f : 1);
	return n > cap ? cap : (int)n;
}

#endif
