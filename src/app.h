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

struct backlog;
struct delivery;

struct app {
	struct config cfg;
	struct store *store;
	struct metrics metrics;
	struct notify inbox_ready;  /* ingest committed new inbox entries */
	struct notify outbox_ready; /* worker committed new outbox rows */
	/* customers with messages waiting in the inbox (worker/backlog.h);
	 * non-NULL only when ingest runs messages itself (the fast path) */
	struct backlog *backlog;
	/* providers' delivery rates (send/delivery.h), fed by delivery reports;
	 * NULL: not kept */
	struct delivery *delivery;
	/* the controller's traffic spike level 0..4 (control/controller.h); 0
	 * when no controller runs */
	_Atomic int spike_level;
	_Atomic int stopping;
	_Atomic int ready;
};

#endif
