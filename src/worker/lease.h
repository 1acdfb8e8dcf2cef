/*
 * lease.h - this process's place among the processes of its store: its
 * node (joined at start, its lease renewed every STORE_NODE_BEAT_MS, left
 * at stop) and, with the worker role, the queue partitions it holds by
 * lease (store_partitions_claim), which its worker threads divide among
 * themselves.
 *
 *   lease_start        join; a worker takes its first share at once
 *   lease_hold ...     a worker thread's batch: the partitions it may read
 *   lease_unhold       (between the two, no partition of it is given back)
 *   lease_drop_partitions  the workers have stopped: give them all back
 *   lease_stop         leave (after the sender's last sends are recorded)
 *
 * A partition is read only while its lease holds: when renewing fails for
 * longer than the lease less a margin, the keeper stops every read at
 * once, before another process may take the partitions over.
 */
#ifndef MUNIM_WORKER_LEASE_H
#define MUNIM_WORKER_LEASE_H

#include <stdint.h>

#include "app.h"
#include "core/buf.h"

struct lease;

/*
 * lease_start joins the store as a node running roles (STORE_ROLE_*),
 * named by cfg.node_name or, when that is empty, host:listen (host:pid
 * when the port is 0), sets it as the store's node (store_set_node) and,
 * with STORE_ROLE_WORKER, claims the first share of partitions before it
 * returns (a lone process: all of them). Then a thread of its own renews
 * both. 0, or ERR_* logged (the store unreachable, or not migrated).
 */
int lease_start(struct app *app, unsigned roles, struct lease **out);
/*
 * lease_stop ends the thread and leaves: the node's lease ends now, its
 * partitions are free at once. Call it after the roles have stopped (the
 * sender's sends in flight recorded). NULL: no-op.
 */
void lease_stop(struct lease *l);
/* lease_drop_partitions: the workers are gone; every partition goes back
 * now and none is claimed again. NULL: no-op. Any thread. */
void lease_drop_partitions(struct lease *l);

/*
 * lease_hold: a worker thread starts a batch; the partitions its process
 * may read now (NULL l: all of them, a process without leases). Until
 * lease_unhold no partition of the mask is given back to the store (a
 * lease running out still ends reads at once: the mask of the next
 * lease_hold is empty). Worker threads; they may hold at once.
 */
uint64_t lease_hold(struct lease *l);
void lease_unhold(struct lease *l);

/* lease_node: the node's id (0: NULL l). */
int64_t lease_node(const struct lease *l);
/* lease_partitions: the partitions held now (NULL: all). Any thread. */
uint64_t lease_partitions(const struct lease *l);

/* lease_render_metrics: munim_worker_partitions, the moves, the node's
 * id. NULL: nothing. */
void lease_render_metrics(const struct lease *l, struct buf *b);

#endif
