/*
 * notify.h - a wake-up signal from one thread to many (ingest → workers,
 * workers → sender).
 *
 * A generation counter under a mutex: notify_signal bumps it and wakes
 * every waiter; each waiter keeps the generation it last saw, so a signal
 * given while it was busy is not lost and many signals coalesce into one
 * wake-up. notify_signal never blocks for long.
 */
#ifndef MUNIM_NOTIFY_H
#define MUNIM_NOTIFY_H

#include <pthread.h>
#include <stdint.h>

struct notify {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t gen; /* guarded by mu */
};

void notify_init(struct notify *n);
void notify_release(struct notify *n);
void notify_signal(struct notify *n);
/*
 * notify_wait returns 1 at once if the generation differs from *seen,
 * otherwise sleeps until a signal or timeout_ms (returns 0). *seen is
 * updated to the current generation either way.
 */
int notify_wait(struct notify *n, uint64_t *seen, int timeout_ms);

#endif
