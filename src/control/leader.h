/*
 * leader.h - which controller leads. Every process with the controller
 * role tries for the store's leader lock (store_lock_try); the one that
 * holds it does the cluster-wide jobs (the store's housekeeping, the
 * notices to shops, marketing dropped under a spike, alerts), the others
 * stand by and try again every LEADER_RETRY_MS. The lock lives as long as
 * its session: a leader that dies or loses the server gives it up, and a
 * standby takes over within a retry or two.
 */
#ifndef MUNIM_CONTROL_LEADER_H
#define MUNIM_CONTROL_LEADER_H

#include "app.h"
#include "core/buf.h"

struct leader;

/*
 * leader_start prepares the lock (through --db-listen when set: it needs
 * the server itself, as LISTEN does; else --db) and starts the thread
 * that takes and keeps it; the first try is made before it returns. 0,
 * or ERR_* logged.
 */
int leader_start(struct app *app, struct leader **out);
/* leader_stop ends the thread and gives the lock up. NULL: no-op. */
void leader_stop(struct leader *l);
/*
 * leader_is: 1 while this process leads - it holds the lock and saw its
 * session alive within LEADER_STALE_MS - else 0 (NULL: 0). Any thread.
 */
int leader_is(const struct leader *l);
/* leader_render_metrics: munim_controller_leader and its changes. NULL:
 * nothing. */
void leader_render_metrics(const struct leader *l, struct buf *b);

#endif
