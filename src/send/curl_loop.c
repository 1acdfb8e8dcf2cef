/*
 * curl_loop.c - libcurl's socket interface on epoll (see curl_loop.h).
 *
 * A socket curl hands over is registered with EPOLL_CTL_ADD the first time
 * (curl_multi_assign marks it known) and changed with EPOLL_CTL_MOD after;
 * curl says CURL_POLL_REMOVE before it closes one. The epoll data is the
 * socket itself; the eventfd's is -1.
 */
#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "send/curl_loop.h"

/* Events taken from one epoll_wait. */
#define CURL_LOOP_EVENTS 128

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *ud, void *known)
{
	struct curl_loop *l = ud;
	(void)easy;
	if (what == CURL_POLL_REMOVE) {
		epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL); /* gone already is fine */
		curl_multi_assign(l->multi, fd, NULL);
		return 0;
	}
	struct epoll_event ev = {0};
	ev.data.fd = fd;
	if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
		ev.events |= EPOLLIN;
	if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
		ev.events |= EPOLLOUT;
	int op = known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
	if (epoll_ctl(l->epfd, op, fd, &ev) != 0) {
		/* a number reused after a close curl did not report, or the reverse */
		op = errno == EEXIST ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
		if (epoll_ctl(l->epfd, op, fd, &ev) != 0)
			return -1; /* curl fails the transfer on this socket */
	}
	if (!known)
		curl_multi_assign(l->multi, fd, l);
	return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *ud)
{
	struct curl_loop *l = ud;
	(void)multi;
	l->due_us = timeout_ms < 0 ? -1 : clock_mono_us() + (int64_t)timeout_ms * 1000;
	return 0;
}

int curl_loop_init(struct curl_loop *l)
{
	l->multi = NULL;
	l->due_us = -1;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = -1};
	if (l->epfd < 0 || l->wakefd < 0 ||
	    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) != 0) {
		curl_loop_release(l);
		return ERR_IO;
	}
	if (!(l->multi = curl_multi_init())) {
		curl_loop_release(l);
		return ERR_NOMEM;
	}
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
	curl_multi_setopt(l->multi, CURLMOPT_SOCKETDATA, l);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERFUNCTION, on_timer);
	curl_multi_setopt(l->multi, CURLMOPT_TIMERDATA, l);
	return 0;
}

void curl_loop_release(struct curl_loop *l)
{
	if (l->multi)
		curl_multi_cleanup(l->multi);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	l->multi = NULL;
	l->epfd = l->wakefd = -1;
}

void curl_loop_wake(struct curl_loop *l)
{
	uint64_t one = 1;
	/* EAGAIN: the counter is full, so a wake is pending anyway */
	ssize_t n = write(l->wakefd, &one, sizeof(one));
	(void)n;
}

int curl_loop_wait(struct curl_loop *l, int timeout_ms)
{
	int wait = timeout_ms;
	if (l->due_us >= 0) {
		int64_t left = (l->due_us - clock_mono_us() + 999) / 1000;
		if (left < wait)
			wait = left > 0 ? (int)left : 0;
	}
	struct epoll_event evs[CURL_LOOP_EVENTS];
	int n = epoll_wait(l->epfd, evs, CURL_LOOP_EVENTS, wait);
	int woken = 0, running = 0;
	for (int i = 0; i < n; i++) {
		int fd = evs[i].data.fd;
		if (fd < 0) {
			uint64_t v;
			ssize_t r = read(l->wakefd, &v, sizeof(v));
			(void)r;
			woken = 1;
			continue;
		}
		int mask = 0;
		if (evs[i].events & EPOLLIN)
			mask |= CURL_CSELECT_IN;
		if (evs[i].events & EPOLLOUT)
			mask |= CURL_CSELECT_OUT;
		if (evs[i].events & (EPOLLERR | EPOLLHUP))
			mask |= CURL_CSELECT_ERR;
		curl_multi_socket_action(l->multi, fd, mask, &running);
	}
	if (l->due_us >= 0 && clock_mono_us() >= l->due_us) {
		l->due_us = -1; /* curl sets the next one through on_timer */
		curl_multi_socket_action(l->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	return woken;
}

CURL *curl_loop_easy_post(void *owner, curl_write_callback on_body, char *errbuf, long timeout_ms)
{
	CURL *e = curl_easy_init();
	if (!e)
		return NULL;
	curl_easy_setopt(e, CURLOPT_PRIVATE, owner);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, owner);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_POST, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	return e;
}
