/*
 * worker.h - the pool of threads that process the inbox.
 *
 * Thread i of n owns the partitions p with p % n == i, so one customer's
 * messages (one tenant, one partition) are handled by one thread in arrival
 * order, while different shops run in parallel. Each message runs in its own
 * savepoint inside a batch transaction: inbox entry done + ERP changes +
 * outbox rows commit together.
 */
#ifndef MUNIM_WORKER_H
#define MUNIM_WORKER_H

#include "app.h"

struct worker_pool;

int worker_pool_start(struct app *app, struct worker_pool **out);
/* Joins the threads; the batch in progress commits or rolls back first. */
void worker_pool_stop(struct worker_pool *wp);

#endif
