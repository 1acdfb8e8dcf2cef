/*
 * notify.c - generation-counter wake-ups on a mutex and a condition
 * variable that runs on CLOCK_MONOTONIC (wall-clock jumps do not stretch a
 * wait).
 */
#include "core/notify.h"

#include <time.h>

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
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
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
