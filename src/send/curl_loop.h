/*
 * curl_loop.h - a libcurl multi handle driven from an epoll set of its own
 * (curl's socket interface), plus an eventfd that other threads ring.
 *
 * curl_multi_perform looks at every transfer on each call and
 * curl_multi_poll gathers every transfer's socket on each wait: with
 * hundreds of requests in flight, each answer cost a walk over all of them.
 * Here curl says which sockets it wants watched (CURLMOPT_SOCKETFUNCTION)
 * and when it next needs a call (CURLMOPT_TIMERFUNCTION); an answer costs
 * only its own socket.
 *
 * One thread owns the loop and the multi handle (curl_loop_wait,
 * curl_multi_add_handle, curl_multi_info_read); curl_loop_wake may be
 * called from any thread.
 */
#ifndef MUNIM_CURL_LOOP_H
#define MUNIM_CURL_LOOP_H

#include <curl/curl.h>
#include <stdint.h>

struct curl_loop {
	CURLM *multi;
	int epfd, wakefd;
	int64_t due_us; /* when curl wants a timeout call (clock_mono_us); -1: never */
};

/* curl_loop_init makes the multi handle, the epoll set and the eventfd.
 * 0, or ERR_NOMEM / ERR_IO (logged by the caller). */
int curl_loop_init(struct curl_loop *l);
/* Frees what init made (the caller removes its easy handles first). */
void curl_loop_release(struct curl_loop *l);
/* Any thread: makes the owner's current or next curl_loop_wait return. */
void curl_loop_wake(struct curl_loop *l);

/*
 * curl_loop_easy_post: a new easy handle for JSON POSTs to a provider -
 * owner as CURLOPT_PRIVATE, the answer's body to on_body(owner), errors in
 * errbuf (CURL_ERROR_SIZE), no signals, TCP_NODELAY and keep-alive, at
 * most timeout_ms in all. NULL when curl cannot make one. The caller adds
 * URL, headers and body per request.
 */
CURL *curl_loop_easy_post(void *owner, curl_write_callback on_body, char *errbuf, long timeout_ms);
/*
 * curl_loop_wait sleeps until a socket is ready, a wake, curl's timer or
 * timeout_ms, then lets curl act on what happened; finished transfers are
 * then read with curl_multi_info_read. Returns 1 when it was woken, else 0.
 */
int curl_loop_wait(struct curl_loop *l, int timeout_ms);

#endif
