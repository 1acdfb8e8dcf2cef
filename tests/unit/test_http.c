/*
 * test_http.c - the HTTP server on 127.0.0.1, port 0, driven by libcurl:
 * routing (exact and prefix), 404, 405, 413 (declared and streamed),
 * bodies, headers and query arguments, keep-alive, answers from another
 * thread (late and racing the handler), hundreds of concurrent suspended
 * connections, and shutdown with requests still suspended.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "core/buf.h"
#include "core/err.h"
#include "http/http_internal.h"

#define MAX_BODY 4096

/* ---- a responder thread: answers suspended requests from a queue ------- */

struct responder {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct http_req *q[1024];
	int n;
	int hold; /* do not answer while set */
	int stop;
	int delay_ms;
	pthread_t th;
};

static struct responder resp;
static _Atomic int handler_calls;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void *responder_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&resp.mu);
	for (;;) {
		while (!resp.stop && (resp.n == 0 || resp.hold))
			pthread_cond_wait(&resp.cv, &resp.mu);
		if (resp.stop && (resp.n == 0 || resp.hold))
			break;
		struct http_req *r = resp.q[--resp.n];
		int delay = resp.delay_ms;
		pthread_mutex_unlock(&resp.mu);
		if (delay)
			sleep_ms(delay);
		size_t len;
		const char *body = http_req_body(r, &len);
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "later:%.*s", (int)len, body);
		http_set_header(r, "X-Answered-By", "responder");
		http_respond(r, 200, NULL, b.data, b.len);
		buf_release(&b);
		pthread_mutex_lock(&resp.mu);
	}
	pthread_mutex_unlock(&resp.mu);
	return NULL;
}

static void responder_push(struct http_req *r)
{
	pthread_mutex_lock(&resp.mu);
	resp.q[resp.n++] = r;
	pthread_cond_signal(&resp.cv);
	pthread_mutex_unlock(&resp.mu);
}

static void responder_hold(int hold)
{
	pthread_mutex_lock(&resp.mu);
	resp.hold = hold;
	pthread_cond_signal(&resp.cv);
	pthread_mutex_unlock(&resp.mu);
}

static int responder_queued(void)
{
	pthread_mutex_lock(&resp.mu);
	int n = resp.n;
	pthread_mutex_unlock(&resp.mu);
	return n;
}

/* Takes a held request back out of the queue (for the shutdown test). */
static struct http_req *responder_take(void)
{
	pthread_mutex_lock(&resp.mu);
	struct http_req *r = resp.n ? resp.q[--resp.n] : NULL;
	pthread_mutex_unlock(&resp.mu);
	return r;
}

/* ---- handlers ---------------------------------------------------------------- */

static void h_hello(struct http_req *r, void *ud)
{
	(void)ud;
	handler_calls++;
	http_respond(r, 200, NULL, "hi", 2);
}

static void h_echo(struct http_req *r, void *ud)
{
	size_t len;
	const char *body = http_req_body(r, &len);
	const char *x = http_req_header(r, "x-test"); /* sent as X-Test */
	struct buf b;
	(void)ud;
	handler_calls++;
	buf_init(&b);
	buf_printf(&b, "%s|%s|%zu|", http_req_method(r), x ? x : "-", len);
	buf_append(&b, body, len);
	http_set_header(r, "X-Extra", "yes");
	http_respond(r, 201, "application/json", b.data, b.len);
	buf_release(&b);
}

static void h_query(struct http_req *r, void *ud)
{
	const char *a = http_req_query(r, "hub.mode");
	(void)ud;
	http_respond(r, 200, NULL, a ? a : "-", a ? strlen(a) : 1);
}

static void h_prefix(struct http_req *r, void *ud)
{
	const char *p = http_req_path(r);
	(void)ud;
	http_respond(r, 200, NULL, p, strlen(p));
}

static void h_later(struct http_req *r, void *ud)
{
	(void)ud;
	handler_calls++;
	http_suspend(r);
	responder_push(r);
}

/* Answers from another thread with no delay: the answer usually arrives
 * while this handler is still running. */
static void h_race(struct http_req *r, void *ud)
{
	(void)ud;
	http_suspend(r);
	responder_push(r);
	if (rand() % 2)
		sleep_ms(1);
}

static void h_suspend_then_answer(struct http_req *r, void *ud)
{
	(void)ud;
	http_suspend(r);
	http_respond(r, 202, NULL, "sync", 4);
}

static void h_noanswer(struct http_req *r, void *ud)
{
	(void)ud;
	(void)r;
}

static const struct http_route routes[] = {
        {"GET", "/hello", 0, h_hello, NULL, NULL},
        {"POST", "/echo", 0, h_echo, NULL, NULL},
        {"PUT", "/echo", 0, h_echo, NULL, NULL},
        {"GET", "/query", 0, h_query, NULL, NULL},
        {"GET", "/p/", 1, h_prefix, NULL, NULL},
        {"POST", "/later", 0, h_later, NULL, NULL},
        {"POST", "/race", 0, h_race, NULL, NULL},
        {"GET", "/sync", 0, h_suspend_then_answer, NULL, NULL},
        {"GET", "/noanswer", 0, h_noanswer, NULL, NULL},
};
#define NROUTES ((int)(sizeof(routes) / sizeof(routes[0])))

/* ---- client ---------------------------------------------------------------- */

struct reply {
	long code;
	struct buf body;
	struct buf headers;
};

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	buf_append(ud, p, size * n);
	return size * n;
}

struct upload {
	const char *p;
	size_t left;
};

static size_t on_read(char *dst, size_t size, size_t n, void *ud)
{
	struct upload *u = ud;
	size_t k = size * n < u->left ? size * n : u->left;
	memcpy(dst, u->p, k);
	u->p += k;
	u->left -= k;
	return k;
}

static void reply_release(struct reply *r)
{
	buf_release(&r->body);
	buf_release(&r->headers);
}

static CURL *easy_new(struct reply *out)
{
	CURL *c = curl_easy_init();
	buf_init(&out->body);
	buf_init(&out->headers);
	out->code = 0;
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	return c;
}

/* One request; chunked when body is given with chunked set. */
static long do_req(int port, const char *method, const char *path, const char *body, size_t len,
                   int chunked, struct reply *out)
{
	char url[256];
	struct curl_slist *hdrs = NULL;
	struct upload up = {body, len};
	CURL *c = easy_new(out);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	hdrs = curl_slist_append(hdrs, "X-Test: abc");
	hdrs = curl_slist_append(hdrs, "Expect:");
	if (body && chunked) {
		curl_easy_setopt(c, CURLOPT_POST, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, &up);
		hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
	} else if (body) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	else if (strcmp(method, "POST") == 0 && !body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->code);
	else
		out->code = -(long)rc;
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(c);
	return out->code;
}

/* ---- fixture ------------------------------------------------------------------ */

static struct http_server *start(int threads)
{
	struct http_server *s = NULL;
	assert_int_equal(http_server_start("127.0.0.1:0", threads, MAX_BODY, routes, NROUTES, &s),
	                 0);
	assert_true(http_server_port(s) > 0);
	return s;
}

static int setup(void **state)
{
	memset(&resp, 0, sizeof(resp));
	pthread_mutex_init(&resp.mu, NULL);
	pthread_cond_init(&resp.cv, NULL);
	pthread_create(&resp.th, NULL, responder_main, NULL);
	handler_calls = 0;
	*state = start(2);
	return 0;
}

static void responder_stop(void)
{
	pthread_mutex_lock(&resp.mu);
	resp.stop = 1;
	resp.hold = 0;
	pthread_cond_signal(&resp.cv);
	pthread_mutex_unlock(&resp.mu);
	pthread_join(resp.th, NULL);
	pthread_cond_destroy(&resp.cv);
	pthread_mutex_destroy(&resp.mu);
}

static int teardown(void **state)
{
	http_server_stop(*state);
	responder_stop();
	return 0;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_route_exact(void **state)
{
	struct reply r;
	int port = http_server_port(*state);
	assert_int_equal(do_req(port, "GET", "/hello", NULL, 0, 0, &r), 200);
	assert_string_equal(r.body.data, "hi");
	assert_non_null(strstr(r.headers.data, "text/plain"));
	reply_release(&r);
	/* exact means exact */
	assert_int_equal(do_req(port, "GET", "/hello/x", NULL, 0, 0, &r), 404);
	reply_release(&r);
}

static void test_route_prefix(void **state)
{
	struct reply r;
	int port = http_server_port(*state);
	assert_int_equal(do_req(port, "GET", "/p/a/b?x=1", NULL, 0, 0, &r), 200);
	assert_string_equal(r.body.data, "/p/a/b");
	reply_release(&r);
}

static void test_unknown_path_404(void **state)
{
	struct reply r;
	assert_int_equal(do_req(http_server_port(*state), "GET", "/nope", NULL, 0, 0, &r), 404);
	assert_non_null(strstr(r.body.data, "not found"));
	reply_release(&r);
	assert_int_equal(do_req(http_server_port(*state), "POST", "/nope", "x", 1, 0, &r), 404);
	reply_release(&r);
}

static void test_wrong_method_405(void **state)
{
	struct reply r;
	int port = http_server_port(*state);
	assert_int_equal(do_req(port, "GET", "/echo", NULL, 0, 0, &r), 405);
	assert_non_null(strstr(r.headers.data, "Allow: POST, PUT"));
	reply_release(&r);
	assert_int_equal(do_req(port, "DELETE", "/hello", NULL, 0, 0, &r), 405);
	assert_non_null(strstr(r.headers.data, "Allow: GET"));
	reply_release(&r);
	assert_int_equal(handler_calls, 0);
}

static void test_body_headers_and_extra_header(void **state)
{
	struct reply r;
	int port = http_server_port(*state);
	assert_int_equal(do_req(port, "POST", "/echo", "{\"a\":1}", 7, 0, &r), 201);
	assert_string_equal(r.body.data, "POST|abc|7|{\"a\":1}");
	assert_non_null(strstr(r.headers.data, "X-Extra: yes"));
	assert_non_null(strstr(r.headers.data, "application/json"));
	reply_release(&r);
	/* a streamed (chunked) body arrives whole */
	assert_int_equal(do_req(port, "PUT", "/echo", "chunky body", 11, 1, &r), 201);
	assert_string_equal(r.body.data, "PUT|abc|11|chunky body");
	reply_release(&r);
	/* empty body */
	assert_int_equal(do_req(port, "POST", "/echo", NULL, 0, 0, &r), 201);
	assert_string_equal(r.body.data, "POST|abc|0|");
	reply_release(&r);
}

static void test_query_argument(void **state)
{
	struct reply r;
	int port = http_server_port(*state);
	assert_int_equal(do_req(port, "GET", "/query?hub.mode=subscribe&x=2", NULL, 0, 0, &r), 200);
	assert_string_equal(r.body.data, "subscribe");
	reply_release(&r);
	assert_int_equal(do_req(port, "GET", "/query?hub.mode=a%20b", NULL, 0, 0, &r), 200);
	assert_string_equal(r.body.data, "a b");
	reply_release(&r);
	assert_int_equal(do_req(port, "GET", "/query", NULL, 0, 0, &r), 200);
	assert_string_equal(r.body.data, "-");
	reply_release(&r);
}

static void test_body_at_cap_accepted(void **state)
{
	struct reply r;
	char *big = malloc(MAX_BODY);
	memset(big, 'b', MAX_BODY);
	assert_int_equal(do_req(http_server_port(*state), "POST", "/echo", big, MAX_BODY, 0, &r),
	                 201);
	assert_int_equal(r.body.len, strlen("POST|abc|4096|") + MAX_BODY);
	reply_release(&r);
	free(big);
}

static void test_content_length_over_cap_413(void **state)
{
	struct reply r;
	char *big = malloc(MAX_BODY + 1);
	memset(big, 'b', MAX_BODY + 1);
	assert_int_equal(
	        do_req(http_server_port(*state), "POST", "/echo", big, MAX_BODY + 1, 0, &r), 413);
	assert_int_equal(handler_calls, 0);
	reply_release(&r);
	free(big);
}

static void test_streamed_over_cap_413(void **state)
{
	struct reply r;
	size_t n = MAX_BODY * 3;
	char *big = malloc(n);
	memset(big, 'c', n);
	assert_int_equal(do_req(http_server_port(*state), "POST", "/echo", big, n, 1, &r), 413);
	assert_int_equal(handler_calls, 0);
	reply_release(&r);
	/* the server is still fine afterwards */
	assert_int_equal(do_req(http_server_port(*state), "GET", "/hello", NULL, 0, 0, &r), 200);
	reply_release(&r);
	free(big);
}

static void test_keep_alive(void **state)
{
	struct reply r;
	char url[128];
	long conns = -1;
	CURL *c = easy_new(&r);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", http_server_port(*state));
	curl_easy_setopt(c, CURLOPT_URL, url);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
	assert_int_equal(conns, 0); /* the second request reused the connection */
	/* and a suspended answer keeps it alive too */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/later", http_server_port(*state));
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "k");
	assert_int_equal(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_NUM_CONNECTS, &conns);
	assert_int_equal(conns, 0);
	assert_string_equal(r.body.data, "hihilater:k");
	curl_easy_cleanup(c);
	reply_release(&r);
}

static void test_suspended_answered_from_other_thread(void **state)
{
	struct reply r;
	resp.delay_ms = 50;
	assert_int_equal(do_req(http_server_port(*state), "POST", "/later", "abc", 3, 0, &r), 200);
	assert_string_equal(r.body.data, "later:abc");
	assert_non_null(strstr(r.headers.data, "X-Answered-By: responder"));
	reply_release(&r);
	assert_int_equal(http_server_pending(*state), 0);
}

static void test_answer_racing_the_handler(void **state)
{
	struct reply r;
	char body[32];
	resp.delay_ms = 0;
	for (int i = 0; i < 300; i++) {
		int n = snprintf(body, sizeof(body), "r%d", i);
		assert_int_equal(
		        do_req(http_server_port(*state), "POST", "/race", body, (size_t)n, 0, &r),
		        200);
		assert_memory_equal(r.body.data, "later:", 6);
		assert_string_equal(r.body.data + 6, body);
		reply_release(&r);
	}
}

static void test_suspend_then_answer_in_handler(void **state)
{
	struct reply r;
	assert_int_equal(do_req(http_server_port(*state), "GET", "/sync", NULL, 0, 0, &r), 202);
	assert_string_equal(r.body.data, "sync");
	reply_release(&r);
}

static void test_handler_without_answer_500(void **state)
{
	struct reply r;
	assert_int_equal(do_req(http_server_port(*state), "GET", "/noanswer", NULL, 0, 0, &r), 500);
	reply_release(&r);
}

/* N connections open at once, every one suspended before any is answered:
 * MHD 0.9.75 in epoll mode with one thread stalls past ~128 of these. */
static void concurrent(struct http_server *s, int n)
{
	CURLM *m = curl_multi_init();
	CURL **easy = calloc((size_t)n, sizeof(*easy));
	struct reply *rep = calloc((size_t)n, sizeof(*rep));
	char url[128];
	int running = 0;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/later", http_server_port(s));
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)n + 10);
	resp.delay_ms = 0;
	responder_hold(1);
	for (int i = 0; i < n; i++) {
		easy[i] = easy_new(&rep[i]);
		curl_easy_setopt(easy[i], CURLOPT_URL, url);
		curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, "c");
		curl_easy_setopt(easy[i], CURLOPT_FRESH_CONNECT, 1L);
		curl_multi_add_handle(m, easy[i]);
	}
	time_t t0 = time(NULL);
	int released = 0;
	do {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 50, NULL);
		if (!released && responder_queued() == n) {
			assert_int_equal(http_server_pending(s), n);
			responder_hold(0);
			released = 1;
		}
		if (time(NULL) - t0 > 30)
			fail_msg("stalled: %d suspended of %d, %d still running",
			         responder_queued(), n, running);
	} while (running);
	assert_true(released);
	CURLMsg *msg;
	int left, ok = 0;
	while ((msg = curl_multi_info_read(m, &left)) != NULL) {
		long code = 0;
		if (msg->msg != CURLMSG_DONE)
			continue;
		assert_int_equal(msg->data.result, CURLE_OK);
		curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
		assert_int_equal(code, 200);
		ok++;
	}
	assert_int_equal(ok, n);
	for (int i = 0; i < n; i++) {
		assert_string_equal(rep[i].body.data, "later:c");
		curl_multi_remove_handle(m, easy[i]);
		curl_easy_cleanup(easy[i]);
		reply_release(&rep[i]);
	}
	free(easy);
	free(rep);
	curl_multi_cleanup(m);
}

static void test_300_concurrent_suspended_two_threads(void **state)
{
	concurrent(*state, 300);
}

static void test_300_concurrent_suspended_one_thread(void **state)
{
	struct http_server *s = start(1);
	(void)state;
	concurrent(s, 300);
	http_server_stop(s);
}

/* Load over many open connections: 300 keep-alive connections, each
 * sending 10 requests one after another, against one server thread. */
static void test_300_connections_load_one_thread(void **state)
{
	enum { N = 300, PER = 10 };
	struct http_server *s = start(1);
	CURLM *m = curl_multi_init();
	CURL **easy = calloc(N, sizeof(*easy));
	struct reply *rep = calloc(N, sizeof(*rep));
	int *left = calloc(N, sizeof(*left));
	char url[128];
	int running = 0, done = 0;
	(void)state;
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/hello", http_server_port(s));
	curl_multi_setopt(m, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)N);
	curl_multi_setopt(m, CURLMOPT_MAXCONNECTS, (long)N);
	for (int i = 0; i < N; i++) {
		easy[i] = easy_new(&rep[i]);
		curl_easy_setopt(easy[i], CURLOPT_URL, url);
		curl_easy_setopt(easy[i], CURLOPT_PRIVATE, (void *)(intptr_t)i);
		left[i] = PER;
		curl_multi_add_handle(m, easy[i]);
	}
	time_t t0 = time(NULL);
	while (done < N * PER) {
		CURLMsg *msg;
		int q;
		curl_multi_perform(m, &running);
		while ((msg = curl_multi_info_read(m, &q)) != NULL) {
			void *priv;
			long code = 0;
			if (msg->msg != CURLMSG_DONE)
				continue;
			assert_int_equal(msg->data.result, CURLE_OK);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &code);
			assert_int_equal(code, 200);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
			int i = (int)(intptr_t)priv;
			done++;
			curl_multi_remove_handle(m, easy[i]);
			if (--left[i] > 0)
				curl_multi_add_handle(m, easy[i]); /* same handle: keep-alive */
		}
		curl_multi_poll(m, NULL, 0, 20, NULL);
		if (time(NULL) - t0 > 30)
			fail_msg("stalled: %d of %d requests done", done, N * PER);
	}
	print_message("%d requests over %d connections in %lds\n", N * PER, N,
	              (long)(time(NULL) - t0));
	for (int i = 0; i < N; i++) {
		curl_easy_cleanup(easy[i]);
		reply_release(&rep[i]);
	}
	free(easy);
	free(rep);
	free(left);
	curl_multi_cleanup(m);
	http_server_stop(s);
}

static void *stop_main(void *s)
{
	http_server_stop(s);
	return NULL;
}

/* A request still suspended at shutdown gets 503 after the grace period;
 * its responder answering afterwards is harmless (and frees it). */
static void test_stop_answers_suspended_503(void **state)
{
	struct http_server *s = start(2);
	struct reply r;
	CURLM *m = curl_multi_init();
	char url[128];
	int running = 1;
	(void)state;
	responder_hold(1);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/later", http_server_port(s));
	CURL *c = easy_new(&r);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "z");
	curl_multi_add_handle(m, c);
	while (responder_queued() == 0) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 20, NULL);
	}
	struct http_req *held = responder_take();
	assert_non_null(held);
	http__set_stop_grace_ms(s, 100);

	/* stop in a thread while this one keeps the client going */
	pthread_t th;
	pthread_create(&th, NULL, stop_main, s);
	do {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 20, NULL);
	} while (running);
	pthread_join(th, NULL);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	assert_int_equal(code, 503);
	/* the late answer: dropped, and the request and server freed now */
	http_respond(held, 200, NULL, "late", 4);
	responder_hold(0);
	curl_multi_remove_handle(m, c);
	curl_easy_cleanup(c);
	curl_multi_cleanup(m);
	reply_release(&r);
}

/* Suspended requests answered within the grace period get their answer. */
static void test_stop_waits_for_answers(void **state)
{
	struct http_server *s = start(2);
	struct reply r;
	CURLM *m = curl_multi_init();
	char url[128];
	int running = 1;
	(void)state;
	resp.delay_ms = 300; /* answered while stop waits */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/later", http_server_port(s));
	CURL *c = easy_new(&r);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, "w");
	curl_multi_add_handle(m, c);
	while (http_server_pending(s) == 0) {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 20, NULL);
	}
	pthread_t th;
	pthread_create(&th, NULL, stop_main, s);
	do {
		curl_multi_perform(m, &running);
		curl_multi_poll(m, NULL, 0, 20, NULL);
	} while (running);
	pthread_join(th, NULL);
	long code = 0;
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	assert_int_equal(code, 200);
	assert_string_equal(r.body.data, "later:w");
	curl_multi_remove_handle(m, c);
	curl_easy_cleanup(c);
	curl_multi_cleanup(m);
	reply_release(&r);
}

static void test_bad_listen_err_inval(void **state)
{
	struct http_server *s = NULL;
	(void)state;
	assert_int_equal(http_server_start("127.0.0.1", 1, MAX_BODY, routes, NROUTES, &s),
	                 ERR_INVAL);
	assert_int_equal(http_server_start("127.0.0.1:99999", 1, MAX_BODY, routes, NROUTES, &s),
	                 ERR_INVAL);
	assert_int_equal(http_server_start("127.0.0.1:x", 1, MAX_BODY, routes, NROUTES, &s),
	                 ERR_INVAL);
	assert_int_equal(http_server_start("127.0.0.1:0", 0, MAX_BODY, routes, NROUTES, &s),
	                 ERR_INVAL);
	assert_null(s);
	http_server_stop(NULL);
}

static void test_port_taken_err_io(void **state)
{
	struct http_server *s = NULL;
	char listen[64];
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", http_server_port(*state));
	assert_int_equal(http_server_start(listen, 1, MAX_BODY, routes, NROUTES, &s), ERR_IO);
	assert_null(s);
}

int main(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_route_exact),
	        T(test_route_prefix),
	        T(test_unknown_path_404),
	        T(test_wrong_method_405),
	        T(test_body_headers_and_extra_header),
	        T(test_query_argument),
	        T(test_body_at_cap_accepted),
	        T(test_content_length_over_cap_413),
	        T(test_streamed_over_cap_413),
	        T(test_keep_alive),
	        T(test_suspended_answered_from_other_thread),
	        T(test_answer_racing_the_handler),
	        T(test_suspend_then_answer_in_handler),
	        T(test_handler_without_answer_500),
	        T(test_300_concurrent_suspended_two_threads),
	        T(test_300_concurrent_suspended_one_thread),
	        T(test_300_connections_load_one_thread),
	        T(test_stop_answers_suspended_503),
	        T(test_stop_waits_for_answers),
	        T(test_bad_listen_err_inval),
	        T(test_port_taken_err_io),
	};
#undef T
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
