/*
 * notify.c - generation-counter wake-ups on a mutex and a condition
 * variable that runs on CLOCK_MONOTONIC (wall-clock jumps do not stretch a
 * wait).
 */
#include "core/notify.h"

#include <time.h>

#include "core/clock.h"

void notify_init(struct notify *n)
{
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&n->mu, NULL);
	pthread_cond_init(&n->cv, &ca);
	pthread_condattr_destroy(&ca);
	n->gen = 0;
}

void notify_release(struct notify *n)
{
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
}

void notify_signal(struct notify *n)
{
	pthread_mutex_lock(&n->mu);
	n->gen++;
	pthread_cond_broadcast(&n->cv);
	pthread_mutex_unlock(&n->mu);
}

int notify_wait(struct notify *n, uint64_t *seen, int timeout_ms)
{
	struct timespec ts = clock_deadline(CLOCK_MONOTONIC, timeout_ms);
	pthread_mutex_lock(&n->mu);
	while (n->gen == *seen) {
		if (pthread_cond_timedwait(&n->cv, &n->mu, &ts) != 0)
			break;
	}
	int got = n->gen != *seen;
	*seen = n->gen;
	pthread_mutex_unlock(&n->mu);
	return got;
}
