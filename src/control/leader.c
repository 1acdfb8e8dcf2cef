/*
 * leader.c - the controllers' leadership (leader.h).
 *
 * Design
 *   A thread of its own holds the store's leader lock (store_lock_new:
 *   PostgreSQL's session-level advisory lock on a connection of its own;
 *   SQLite's one process always holds it):
 *
 *     standby --store_lock_try: taken--> leading
 *        ^  \--not taken, or an error: again in LEADER_RETRY_MS
 *        |
 *     leading --store_lock_try: the session answers--> leading (again in
 *        |                                             LEADER_CHECK_MS)
 *        +------ an error (the session is dropped, so the server frees
 *                the lock), or no answer for LEADER_STALE_MS ---------+
 *
 *   leader_is answers from what the thread last saw, and says no once the
 *   last good check is LEADER_STALE_MS old, so a leader whose thread is
 *   stuck waiting for a lost server stops acting on its own before a
 *   standby can take the lock (the server frees it only once it sees the
 *   session gone).
 *
 * Threading: the thread owns the lock and writes leading and ok_at
 * (atomics); leader_is and the metrics read them from any thread.
 */
#include "control/leader.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/xalloc.h"

/* The lock's key: "munimLDR". */
#define LEADER_LOCK_KEY 0x6d756e696d4c4452LL
/* A standby tries for the lock this often; a leader checks its session. */
#define LEADER_RETRY_MS 2000
#define LEADER_CHECK_MS 1000
/* A leader that has not seen its session answer for this long stops. */
#define LEADER_STALE_MS 3000

struct leader {
	struct app *app;
	struct store_lock *lock; /* the thread's */
	pthread_t thread;
	int started;
	struct notify wake; /* leader_stop */
	_Atomic int stop;
	_Atomic int leading;    /* the last try held the lock */
	_Atomic int64_t ok_at;  /* mono ms of that try */
	_Atomic uint64_t taken; /* times this process became the leader */
	int failing;            /* the thread's: an error was logged */
	int announced;          /* the thread's: leadership logged as taken */
};

static int64_t mono_ms(void)
{
	return clock_mono_us() / 1000;
}

/* try_lock takes or keeps the lock once and logs a change of leadership. */
static void try_lock(struct leader *l)
{
	int held = 0;
	int64_t at = mono_ms();
	int rc = store_lock_try(l->lock, &held);
	if (rc != 0) {
		if (!l->failing || l->announced)
			log_warn("control.leader_lock_failed", "%s", store_lock_errmsg(l->lock));
		l->failing = 1;
	} else {
		l->failing = 0;
	}
	atomic_store(&l->leading, held);
	if (held)
		atomic_store(&l->ok_at, at);
	if (held && !l->announced) {
		l->announced = 1;
		atomic_fetch_add(&l->taken, 1);
		log_info("control.leader",
		         "this process leads the controllers (node %lld): the cluster-wide jobs "
		         "run here",
		         (long long)store_node(l->app->store));
	} else if (!held && l->announced) {
		l->announced = 0;
		log_warn("control.leader_lost",
		         "this process no longer leads the controllers (node %lld)%s%s",
		         (long long)store_node(l->app->store), rc ? ": " : "",
		         rc ? store_lock_errmsg(l->lock) : "");
	}
}

static void *leader_main(void *arg)
{
	struct leader *l = arg;
	pthread_setname_np(pthread_self(), "leader");
	uint64_t seen = 0;
	while (!atomic_load(&l->stop)) {
		notify_wait(&l->wake, &seen,
		            atomic_load(&l->leading) ? LEADER_CHECK_MS : LEADER_RETRY_MS);
		if (!atomic_load(&l->stop))
			try_lock(l);
	}
	return NULL;
}

int leader_start(struct app *app, struct leader **out)
{
	*out = NULL;
	struct leader *l = xcalloc(1, sizeof(*l));
	l->app = app;
	notify_init(&l->wake);
	int rc = store_lock_new(app->store, app->cfg.db_listen, LEADER_LOCK_KEY, &l->lock);
	if (rc != 0) {
		log_error("serve.start_failed", "could not prepare the controllers' lock: %s",
		          err_str(rc));
		notify_release(&l->wake);
		free(l);
		return rc;
	}
	try_lock(l); /* a lone process leads from the start */
	int err = pthread_create(&l->thread, NULL, leader_main, l);
	if (err != 0) {
		log_error("serve.start_failed", "could not start the leader thread: %s",
		          strerror(err));
		store_lock_free(l->lock);
		notify_release(&l->wake);
		free(l);
		return ERR_NOMEM;
	}
	l->started = 1;
	if (!leader_is(l))
		log_info("control.standby",
		         "another process leads the controllers; this one stands by");
	*out = l;
	return 0;
}

void leader_stop(struct leader *l)
{
	if (!l)
		return;
	atomic_store(&l->stop, 1);
	notify_signal(&l->wake);
	if (l->started)
		pthread_join(l->thread, NULL);
	if (l->announced)
		log_info("control.leader_lost",
		         "this process stops leading the controllers (stopping)");
	store_lock_free(l->lock); /* the session ends: a standby takes over */
	notify_release(&l->wake);
	free(l);
}

int leader_is(const struct leader *l)
{
	if (!l || !atomic_load(&l->leading))
		return 0;
	return mono_ms() - atomic_load(&l->ok_at) <= LEADER_STALE_MS;
}

void leader_render_metrics(const struct leader *l, struct buf *b)
{
	if (!l)
		return;
	buf_printf(b,
	           "# HELP munim_controller_leader 1 while this process leads the controllers"
	           " (the cluster-wide jobs run here).\n# TYPE munim_controller_leader gauge\n"
	           "munim_controller_leader %d\n",
	           leader_is(l));
	buf_printf(b,
	           "# HELP munim_controller_leader_taken_total Times this process became the"
	           " leader.\n# TYPE munim_controller_leader_taken_total counter\n"
	           "munim_controller_leader_taken_total %llu\n",
	           (unsigned long long)atomic_load(&l->taken));
}
