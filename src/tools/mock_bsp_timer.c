/*
 * mock_bsp_timer.c - callbacks run later by one thread: how the mock BSP
 * answers slowly (the latency fault) without holding an HTTP thread per
 * slow request. The handler suspends its request and leaves the answer
 * here; the timer thread sends it when it is due.
 *
 * Design: a binary min-heap of (due, fn, arg) under a mutex, and a
 * condition variable on CLOCK_MONOTONIC that the thread sleeps on until the
 * earliest due time or a new earlier entry. Callbacks run outside the lock.
 * At most MOCK_TIMER_MAX entries wait (a few seconds of latency at a few
 * thousand requests a second fits); past that the caller answers at once.
 *
 * Closing runs every waiting callback at once, so a stopping mock answers
 * its slow requests instead of leaving them to the server's 503.
 *
 * Threading: mock_timer_add and mock_timer_close from any thread.
 */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

#define MOCK_TIMER_MAX 200000

struct timer_item {
	int64_t due_us;
	uint64_t seq; /* ties keep the order of arrival */
	mock_timer_fn fn;
	void *arg;
};

struct mock_timer {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	struct timer_item *heap; /* guarded by mu, like the fields below */
	size_t n, cap;
	uint64_t seq;
	int closed;  /* refuse new entries, run the rest now */
	int quit;    /* the thread should end */
	int running; /* the thread is inside callbacks it took (close waits for it) */
};

static int before(const struct timer_item *a, const struct timer_item *b)
{
	return a->due_us < b->due_us || (a->due_us == b->due_us && a->seq < b->seq);
}

static void heap_push(struct mock_timer *t, struct timer_item it)
{
	if (t->n == t->cap) {
		t->cap = t->cap ? t->cap * 2 : 256;
		t->heap = xrealloc(t->heap, t->cap * sizeof(*t->heap));
	}
	size_t i = t->n++;
	while (i > 0) {
		size_t p = (i - 1) / 2;
		if (!before(&it, &t->heap[p]))
			break;
		t->heap[i] = t->heap[p];
		i = p;
	}
	t->heap[i] = it;
}

static struct timer_item heap_pop(struct mock_timer *t)
{
	struct timer_item top = t->heap[0];
	struct timer_item last = t->heap[--t->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->n)
			break;
		if (c + 1 < t->n && before(&t->heap[c + 1], &t->heap[c]))
			c++;
		if (!before(&t->heap[c], &last))
			break;
		t->heap[i] = t->heap[c];
		i = c;
	}
	if (t->n)
		t->heap[i] = last;
	return top;
}

static void abs_time(int64_t mono_us, struct timespec *ts)
{
	ts->tv_sec = (time_t)(mono_us / 1000000);
	ts->tv_nsec = (long)(mono_us % 1000000) * 1000;
}

static void *timer_main(void *arg)
{
	struct mock_timer *t = arg;
	pthread_mutex_lock(&t->mu);
	for (;;) {
		if (t->n == 0) {
			if (t->quit)
				break;
			pthread_cond_wait(&t->cv, &t->mu);
			continue;
		}
		int64_t now = clock_mono_us();
		if (!t->closed && t->heap[0].due_us > now) {
			struct timespec ts;
			abs_time(t->heap[0].due_us, &ts);
			pthread_cond_timedwait(&t->cv, &t->mu, &ts);
			continue;
		}
		struct timer_item it = heap_pop(t);
		t->running = 1;
		pthread_mutex_unlock(&t->mu);
		it.fn(it.arg);
		pthread_mutex_lock(&t->mu);
		t->running = 0;
		if (t->n == 0)
			pthread_cond_broadcast(&t->cv); /* mock_timer_close may wait */
	}
	pthread_mutex_unlock(&t->mu);
	return NULL;
}

int mock_timer_new(struct mock_timer **out)
{
	struct mock_timer *t = xcalloc(1, sizeof(*t));
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_mutex_init(&t->mu, NULL);
	pthread_cond_init(&t->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&t->thread, NULL, timer_main, t) != 0) {
		pthread_cond_destroy(&t->cv);
		pthread_mutex_destroy(&t->mu);
		free(t);
		*out = NULL;
		return ERR_NOMEM;
	}
	*out = t;
	return 0;
}

int mock_timer_add(struct mock_timer *t, int64_t due_us, mock_timer_fn fn, void *arg)
{
	int rc = 0;
	pthread_mutex_lock(&t->mu);
	if (t->closed) {
		rc = ERR_INVAL;
	} else if (t->n >= MOCK_TIMER_MAX) {
		rc = ERR_FULL;
	} else {
		int wake = t->n == 0 || due_us < t->heap[0].due_us;
		heap_push(t, (struct timer_item){due_us, t->seq++, fn, arg});
		if (wake)
			pthread_cond_broadcast(&t->cv);
	}
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void mock_timer_close(struct mock_timer *t)
{
	pthread_mutex_lock(&t->mu);
	t->closed = 1;
	pthread_cond_broadcast(&t->cv);
	while (t->n > 0 || t->running)
		pthread_cond_wait(&t->cv, &t->mu);
	pthread_mutex_unlock(&t->mu);
}

void mock_timer_free(struct mock_timer *t)
{
	if (!t)
		return;
	mock_timer_close(t);
	pthread_mutex_lock(&t->mu);
	t->quit = 1;
	pthread_cond_broadcast(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	free(t->heap);
	pthread_cond_destroy(&t->cv);
	pthread_mutex_destroy(&t->mu);
	free(t);
}
