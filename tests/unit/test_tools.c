/*
 * test_tools.c - the tools' parts that carry logic of their own: the mock
 * BSP's bounded, indexed message log (eviction by count and by bytes,
 * lookups by quoted message and recipient that survive eviction,
 * incremental polling, the compact replies feed), the timer that answers
 * slow requests (order, close runs the rest, refusals after close), and
 * the tools' HTTP/1.1 client against a scripted server on loopback:
 * keep-alive reuse, the server closing (told and untold), answers arriving
 * a byte at a time, chunked bodies, 1xx and read-to-close answers, a
 * request too big for one write, malformed answers (ERR_PROTO), bodies
 * over the limit (ERR_TOOBIG), no answer (ERR_TIMEOUT), refused
 * connections (ERR_IO), no free connection (ERR_FULL) and URL parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "tools/tools_internal.h"

static uint64_t add(struct mock_log *l, int i, const char *to, const char *ctx)
{
	char wamid[32], body[64];
	snprintf(wamid, sizeof(wamid), "wamid.M%d", i);
	snprintf(body, sizeof(body), "{\"n\":%d}", i);
	return mock_log_add(l, 1000 + i, wamid, "100", to, ctx, body, strlen(body));
}

static void query(struct mock_log *l, const char *ctx, const char *to, uint64_t since, int limit,
                  int desc, struct mock_hit **hits, int *n, uint64_t *next)
{
	struct mock_query q = {ctx, to, since, limit, desc};
	mock_log_query(l, &q, hits, n, next);
}

static void test_log_filters_and_order(void **state)
{
	(void)state;
	struct mock_log *l = mock_log_new(100, 1 << 20);
	for (int i = 0; i < 10; i++)
		assert_int_equal(
		        add(l, i, i % 2 ? "91odd" : "91even", i < 6 ? "wamid.A" : "wamid.B"),
		        (uint64_t)i);
	struct mock_hit *h;
	int n;
	uint64_t next;

	query(l, "wamid.A", NULL, 0, 100, 0, &h, &n, &next);
	assert_int_equal(n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(h[i].index, (uint64_t)i); /* oldest first */
	assert_string_equal(h[2].wamid, "wamid.M2");
	assert_string_equal(h[2].phone_number_id, "100");
	assert_string_equal(h[2].body, "{\"n\":2}");
	assert_int_equal(h[2].received_ms, 1002);
	assert_int_equal(next, 10);
	mock_hits_free(h, n);

	/* context and recipient together; since */
	query(l, "wamid.A", "91odd", 2, 100, 0, &h, &n, &next);
	assert_int_equal(n, 2);
	assert_int_equal(h[0].index, 3);
	assert_int_equal(h[1].index, 5);
	mock_hits_free(h, n);

	/* newest first with a limit */
	query(l, NULL, "91even", 0, 2, 1, &h, &n, &next);
	assert_int_equal(n, 2);
	assert_int_equal(h[0].index, 8);
	assert_int_equal(h[1].index, 6);
	mock_hits_free(h, n);

	/* oldest-first pages: next resumes after the last one returned */
	query(l, NULL, NULL, 0, 4, 0, &h, &n, &next);
	assert_int_equal(n, 4);
	assert_int_equal(next, 4);
	mock_hits_free(h, n);
	query(l, NULL, NULL, next, 4, 0, &h, &n, &next);
	assert_int_equal(h[0].index, 4);
	mock_hits_free(h, n);
	query(l, "wamid.A", NULL, 0, 4, 0, &h, &n, &next);
	assert_int_equal(n, 4);
	assert_int_equal(h[3].index, 3);
	assert_int_equal(next, 4);
	mock_hits_free(h, n);

	/* nothing quoted: no match, not a crash */
	query(l, "wamid.none", NULL, 0, 10, 0, &h, &n, &next);
	assert_int_equal(n, 0);
	mock_hits_free(h, n);
	mock_log_free(l);
}

static void test_log_evicts_by_count(void **state)
{
	(void)state;
	struct mock_log *l = mock_log_new(8, 1 << 20);
	for (int i = 0; i < 20; i++)
		add(l, i, "91x", "wamid.C");
	uint64_t held, bytes, next;
	mock_log_counts(l, &held, &bytes, &next);
	assert_int_equal(held, 8);
	assert_int_equal(next, 20);
	struct mock_hit *h;
	int n;
	uint64_t nx;
	/* chains through evicted records stop at the oldest kept */
	query(l, "wamid.C", NULL, 0, 100, 0, &h, &n, &nx);
	assert_int_equal(n, 8);
	assert_int_equal(h[0].index, 12);
	assert_int_equal(h[7].index, 19);
	mock_hits_free(h, n);
	query(l, NULL, "91x", 0, 100, 1, &h, &n, &nx);
	assert_int_equal(n, 8);
	assert_int_equal(h[0].index, 19);
	mock_hits_free(h, n);
	query(l, NULL, NULL, 3, 100, 0, &h, &n, &nx);
	assert_int_equal(n, 8);
	assert_int_equal(h[0].index, 12);
	mock_hits_free(h, n);
	mock_log_free(l);
}

static void test_log_evicts_by_bytes(void **state)
{
	(void)state;
	/* each record is "wamid.Mi\0" "100\0" body "\0": about 20 bytes */
	struct mock_log *l = mock_log_new(1000, 100);
	for (int i = 0; i < 50; i++)
		add(l, i, "91y", NULL);
	uint64_t held, bytes, next;
	mock_log_counts(l, &held, &bytes, &next);
	assert_true(bytes <= 100);
	assert_true(held >= 3 && held <= 6);
	assert_int_equal(next, 50);
	mock_log_clear(l);
	mock_log_counts(l, &held, &bytes, &next);
	assert_int_equal(held, 0);
	assert_int_equal(bytes, 0);
	assert_int_equal(next, 50); /* indexes are never reused */
	assert_int_equal(add(l, 50, "91y", NULL), 50);
	mock_log_free(l);
}

static _Atomic int fired[8];
static _Atomic int order_pos;

static void on_timer(void *arg)
{
	int i = (int)(intptr_t)arg;
	atomic_store(&fired[i], atomic_fetch_add(&order_pos, 1) + 1);
}

static void test_timer_order_and_close(void **state)
{
	(void)state;
	struct mock_timer *t;
	assert_int_equal(mock_timer_new(&t), 0);
	int64_t now = clock_mono_us();
	/* added out of order; due in 30, 10, 20 ms */
	assert_int_equal(mock_timer_add(t, now + 30000, on_timer, (void *)(intptr_t)0), 0);
	assert_int_equal(mock_timer_add(t, now + 10000, on_timer, (void *)(intptr_t)1), 0);
	assert_int_equal(mock_timer_add(t, now + 20000, on_timer, (void *)(intptr_t)2), 0);
	/* one far in the future: close runs it at once */
	assert_int_equal(mock_timer_add(t, now + 3600 * 1000000LL, on_timer, (void *)(intptr_t)3),
	                 0);
	for (int i = 0; i < 200 && atomic_load(&fired[0]) == 0; i++) {
		struct timespec ts = {0, 5 * 1000000L};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(atomic_load(&fired[1]), 1);
	assert_int_equal(atomic_load(&fired[2]), 2);
	assert_int_equal(atomic_load(&fired[0]), 3);
	assert_int_equal(atomic_load(&fired[3]), 0);
	mock_timer_close(t);
	assert_int_equal(atomic_load(&fired[3]), 4);
	/* ERR_INVAL after close: the caller answers itself */
	assert_int_equal(mock_timer_add(t, now, on_timer, (void *)(intptr_t)4), ERR_INVAL);
	mock_timer_free(t);
	mock_timer_free(NULL);
}

/* ---- the replies feed ------------------------------------------------------ */

static void test_log_replies_feed(void **state)
{
	(void)state;
	struct mock_log *l = mock_log_new(5, 1 << 20);
	mock_log_add(l, 1700000000123, "wamid.M0", "100", "91a", "wamid.LGX_1", "{}", 2);
	mock_log_add(l, 1700000000124, "wamid.M1", "100", "91a", NULL, "{}", 2);
	mock_log_add(l, 1700000000125, "wamid.M2", "100", "91a", "has space", "{}", 2);
	mock_log_add(l, 1700000000126, "wamid.M3", "100", "91a", "wamid.LGX_2", "{}", 2);
	struct buf b;
	buf_init(&b);
	int n;
	uint64_t next;
	mock_log_replies(l, 0, 100, &b, &n, &next);
	assert_int_equal(n, 4);
	assert_int_equal(next, 4);
	assert_string_equal(b.data, "0 1700000000123 wamid.LGX_1\n"
	                            "1 1700000000124 -\n"
	                            "2 1700000000125 -\n"
	                            "3 1700000000126 wamid.LGX_2\n");
	/* pages: next resumes after the last line given */
	buf_reset(&b);
	mock_log_replies(l, 1, 2, &b, &n, &next);
	assert_int_equal(n, 2);
	assert_int_equal(next, 3);
	assert_string_equal(b.data, "1 1700000000124 -\n2 1700000000125 -\n");
	buf_reset(&b);
	mock_log_replies(l, next, 2, &b, &n, &next);
	assert_int_equal(n, 1);
	assert_int_equal(next, 4);
	/* since past the end: nothing, next stays at the end */
	buf_reset(&b);
	mock_log_replies(l, 9, 2, &b, &n, &next);
	assert_int_equal(n, 0);
	assert_int_equal(next, 4);
	assert_int_equal(b.len, 0);
	/* evicted messages are skipped: since below the oldest starts there */
	for (int i = 0; i < 4; i++)
		mock_log_add(l, 1, "wamid.X", "100", "91a", "c", "{}", 2);
	buf_reset(&b);
	mock_log_replies(l, 0, 100, &b, &n, &next);
	assert_int_equal(n, 5);
	assert_int_equal(next, 8);
	assert_memory_equal(b.data, "3 1700000000126 wamid.LGX_2\n", 28);
	/* the hit keeps its context too */
	struct mock_hit *h;
	struct mock_query q = {"wamid.LGX_2", NULL, 0, 10, 0};
	mock_log_query(l, &q, &h, &n, &next);
	assert_int_equal(n, 1);
	assert_string_equal(h[0].context, "wamid.LGX_2");
	assert_string_equal(h[0].body, "{}");
	mock_hits_free(h, n);
	buf_release(&b);
	mock_log_free(l);
}

/* ---- the HTTP client ---------------------------------------------------------- */

/* How the scripted server answers each request. */
enum srv_mode {
	SRV_KEEP,        /* 200 with Content-Length, keep-alive */
	SRV_CLOSE,       /* the same with Connection: close, then closes */
	SRV_UNTOLD,      /* 200 looking keep-alive, then closes without a word */
	SRV_DRIBBLE,     /* 201 written a byte at a time */
	SRV_CHUNKED,     /* chunked, written in awkward pieces, with a trailer */
	SRV_STATUS_BAD,  /* "HTTP/1.1 2x0" */
	SRV_GARBAGE,     /* not HTTP at all */
	SRV_HEADER_BAD,  /* a header line without a colon */
	SRV_BIG,         /* Content-Length far above the client's limit */
	SRV_BIG_CHUNK,   /* one chunk far above the limit */
	SRV_SILENT,      /* reads the request, never answers */
	SRV_TO_CLOSE,    /* HTTP/1.0 without a length: the body runs to the close */
	SRV_CONTINUE,    /* 100 Continue, then 200 */
	SRV_SLOW_READER, /* waits before reading; answers with the body's length */
	SRV_EARLY_CLOSE, /* closes in the middle of the body */
};

struct srv {
	int lfd, port;
	pthread_t thread;
	_Atomic int mode;
	_Atomic int accepts, requests;
	char last_head[4096]; /* written by the server thread; read after the answer */
	size_t last_body;
};

static void srv_write(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t k = send(fd, s, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}

static void srv_puts(int fd, const char *s)
{
	srv_write(fd, s, strlen(s));
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Reads one request (head and Content-Length body); 0, or -1 at EOF. */
static int srv_read_request(struct srv *sv, int fd)
{
	static char buf[1 << 16];
	size_t len = 0;
	char *end = NULL;
	while (!end) {
		ssize_t k = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
		if (k <= 0)
			return -1;
		len += (size_t)k;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
	}
	size_t head = (size_t)(end - buf) + 4;
	snprintf(sv->last_head, sizeof(sv->last_head), "%.*s", (int)head, buf);
	size_t clen = 0;
	const char *cl = strcasestr(buf, "\r\nContent-Length: ");
	if (cl && cl < end)
		clen = strtoul(cl + 18, NULL, 10);
	if (atomic_load(&sv->mode) == SRV_SLOW_READER)
		sleep_ms(100); /* the client's send buffer fills meanwhile */
	size_t have = len - head;
	while (have < clen) {
		ssize_t k = recv(fd, buf, sizeof(buf) < clen - have ? sizeof(buf) : clen - have, 0);
		if (k <= 0)
			return -1;
		have += (size_t)k;
	}
	sv->last_body = clen;
	atomic_fetch_add(&sv->requests, 1);
	return 0;
}

/* Answers one request; returns 1 to keep the connection, 0 to close it. */
static int srv_answer(struct srv *sv, int fd)
{
	char big[48 * 1024];
	switch (atomic_load(&sv->mode)) {
	case SRV_KEEP: srv_puts(fd, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"); return 1;
	case SRV_CLOSE:
		srv_puts(fd,
		         "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 3\r\n\r\nbye");
		return 0;
	case SRV_UNTOLD: srv_puts(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); return 0;
	case SRV_DRIBBLE: {
		const char *a = "HTTP/1.1 201 Created\r\ncontent-length:  5 \r\n\r\nabcde";
		for (; *a; a++) {
			srv_write(fd, a, 1);
			sleep_ms(1);
		}
		return 1;
	}
	case SRV_CHUNKED: {
		static const char *const pieces[] = {
		        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r",
		        "\nhel",
		        "lo\r\n7;ext=1\r\n, w",
		        "orld\r",
		        "\n0\r\nX-Trailer: t\r\n",
		        "\r\n"};
		for (size_t k = 0; k < sizeof(pieces) / sizeof(pieces[0]); k++) {
			srv_puts(fd, pieces[k]);
			sleep_ms(2);
		}
		return 1;
	}
	case SRV_STATUS_BAD: srv_puts(fd, "HTTP/1.1 2x0 OK\r\n\r\n"); return 0;
	case SRV_GARBAGE: srv_puts(fd, "SSH-2.0-OpenSSH_9.2\r\n\r\n"); return 0;
	case SRV_HEADER_BAD:
		srv_puts(fd, "HTTP/1.1 200 OK\r\nNoColonHere\r\nContent-Length: 0\r\n\r\n");
		return 0;
	case SRV_BIG:
		srv_puts(fd, "HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nxx");
		return 0;
	case SRV_BIG_CHUNK:
		srv_puts(fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n186a0\r\nxx");
		return 0;
	case SRV_SILENT:
		while (recv(fd, big, sizeof(big), 0) > 0)
			; /* until the client gives up and closes */
		return 0;
	case SRV_TO_CLOSE: srv_puts(fd, "HTTP/1.0 200 OK\r\n\r\nto the end"); return 0;
	case SRV_CONTINUE:
		srv_puts(fd, "HTTP/1.1 100 Continue\r\n\r\n");
		sleep_ms(2);
		srv_puts(fd, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
		return 1;
	case SRV_SLOW_READER: {
		char b[64];
		int n = snprintf(b, sizeof(b), "%zu", sv->last_body);
		char head[128];
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", n,
		         b);
		srv_puts(fd, head);
		return 1;
	}
	case SRV_EARLY_CLOSE:
		srv_puts(fd, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc");
		return 0;
	default: return 0;
	}
}

static void *srv_main(void *arg)
{
	struct srv *sv = arg;
	for (;;) {
		int fd = accept(sv->lfd, NULL, NULL);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL; /* shut down */
		}
		atomic_fetch_add(&sv->accepts, 1);
		while (srv_read_request(sv, fd) == 0 && srv_answer(sv, fd))
			;
		close(fd);
	}
}

static void srv_start(struct srv *sv, enum srv_mode mode)
{
	memset(sv, 0, sizeof(*sv));
	atomic_store(&sv->mode, (int)mode);
	sv->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(sv->lfd >= 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(sv->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(sv->lfd, 16), 0);
	socklen_t al = sizeof(a);
	getsockname(sv->lfd, (struct sockaddr *)&a, &al);
	sv->port = ntohs(a.sin_port);
	assert_int_equal(pthread_create(&sv->thread, NULL, srv_main, sv), 0);
}

static void srv_stop(struct srv *sv)
{
	shutdown(sv->lfd, SHUT_RDWR); /* accept fails: the thread ends */
	pthread_join(sv->thread, NULL);
	close(sv->lfd);
}

static void fetch_open(struct tools_fetch *f, const struct srv *sv, size_t max_answer)
{
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", sv->port);
	assert_int_equal(tools_fetch_init(f, url, max_answer), 0);
}

static void test_http_keepalive_reuse(void **state)
{
	(void)state;
	struct srv sv;
	srv_start(&sv, SRV_KEEP);
	struct tools_fetch f;
	fetch_open(&f, &sv, 1024);
	int status = 0;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tools_fetch_request(&f, "POST", "/x?y=1", "X-A: b\r\n", "body", 4,
		                                     2000, &status),
		                 0);
		assert_int_equal(status, 200);
		assert_int_equal(f.answer.len, 5);
		assert_string_equal(f.answer.data, "hello");
	}
	assert_int_equal(atomic_load(&sv.accepts), 1); /* one connection for all three */
	assert_int_equal(atomic_load(&sv.requests), 3);
	assert_int_equal(tools_http_open_conns(f.h), 1);
	assert_non_null(strstr(sv.last_head, "POST /x?y=1 HTTP/1.1\r\n"));
	assert_non_null(strstr(sv.last_head, "\r\nX-A: b\r\n"));
	assert_non_null(strstr(sv.last_head, "\r\nContent-Length: 4\r\n"));
	char host[64];
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", sv.port);
	assert_non_null(strstr(sv.last_head, host));
	/* a GET carries no Content-Length */
	assert_int_equal(tools_fetch_request(&f, "GET", "/g", NULL, NULL, 0, 2000, &status), 0);
	assert_null(strstr(sv.last_head, "Content-Length"));
	tools_fetch_release(&f);
	srv_stop(&sv);
}

static void test_http_server_closes(void **state)
{
	(void)state;
	struct srv sv;
	int status = 0;
	/* told: Connection: close, so each request gets a new connection */
	srv_start(&sv, SRV_CLOSE);
	struct tools_fetch f;
	fetch_open(&f, &sv, 1024);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 2000, &status),
		                 0);
		assert_int_equal(status, 200);
		assert_string_equal(f.answer.data, "bye");
		assert_int_equal(tools_http_open_conns(f.h), 0);
	}
	assert_int_equal(atomic_load(&sv.accepts), 2);
	tools_fetch_release(&f);
	srv_stop(&sv);

	/* untold: the idle connection is dead; the request is sent again on a new one */
	srv_start(&sv, SRV_UNTOLD);
	fetch_open(&f, &sv, 1024);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(tools_fetch_request(&f, "POST", "/", NULL, "x", 1, 2000, &status),
		                 0);
		assert_int_equal(status, 200);
		assert_string_equal(f.answer.data, "ok");
		sleep_ms(20); /* the server's close arrives while the connection is idle */
	}
	assert_int_equal(atomic_load(&sv.accepts), 3);
	assert_int_equal(atomic_load(&sv.requests), 3); /* no request was answered twice */
	tools_fetch_release(&f);
	srv_stop(&sv);

	/* closed in the middle of an answer: an error, not a retry */
	srv_start(&sv, SRV_EARLY_CLOSE);
	fetch_open(&f, &sv, 1024);
	assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 2000, &status), ERR_IO);
	assert_non_null(strstr(f.why, "in the middle of an answer"));
	assert_int_equal(atomic_load(&sv.requests), 1);
	tools_fetch_release(&f);
	srv_stop(&sv);
}

static void test_http_partial_reads(void **state)
{
	(void)state;
	struct srv sv;
	int status = 0;
	srv_start(&sv, SRV_DRIBBLE);
	struct tools_fetch f;
	fetch_open(&f, &sv, 1024);
	assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 5000, &status), 0);
	assert_int_equal(status, 201);
	assert_string_equal(f.answer.data, "abcde");
	tools_fetch_release(&f);
	srv_stop(&sv);

	srv_start(&sv, SRV_CHUNKED);
	fetch_open(&f, &sv, 1024);
	for (int i = 0; i < 2; i++) { /* the connection stays usable after a chunked body */
		assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 5000, &status),
		                 0);
		assert_int_equal(status, 200);
		assert_int_equal(f.answer.len, 12);
		assert_string_equal(f.answer.data, "hello, world");
	}
	assert_int_equal(atomic_load(&sv.accepts), 1);
	tools_fetch_release(&f);
	srv_stop(&sv);

	srv_start(&sv, SRV_CONTINUE);
	fetch_open(&f, &sv, 1024);
	assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 5000, &status), 0);
	assert_int_equal(status, 200);
	assert_string_equal(f.answer.data, "ok");
	tools_fetch_release(&f);
	srv_stop(&sv);

	srv_start(&sv, SRV_TO_CLOSE);
	fetch_open(&f, &sv, 1024);
	assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 5000, &status), 0);
	assert_int_equal(status, 200);
	assert_string_equal(f.answer.data, "to the end");
	tools_fetch_release(&f);
	srv_stop(&sv);
}

static void test_http_partial_writes(void **state)
{
	(void)state;
	struct srv sv;
	int status = 0;
	srv_start(&sv, SRV_SLOW_READER);
	struct tools_fetch f;
	fetch_open(&f, &sv, 1024);
	/* larger than a loopback socket's buffers: send() stops short, EPOLLOUT resumes it */
	size_t n = (size_t)16 << 20;
	char *body = malloc(n);
	assert_non_null(body);
	memset(body, 'z', n);
	assert_int_equal(tools_fetch_request(&f, "POST", "/", NULL, body, n, 20000, &status), 0);
	assert_int_equal(status, 200);
	assert_string_equal(f.answer.data, "16777216");
	assert_int_equal(sv.last_body, n);
	free(body);
	tools_fetch_release(&f);
	srv_stop(&sv);
}

static void test_http_malformed_is_err_proto(void **state)
{
	(void)state;
	static const struct {
		enum srv_mode mode;
		const char *why;
	} cases[] = {
	        {SRV_STATUS_BAD, "malformed status line"},
	        {SRV_GARBAGE, "malformed status line"},
	        {SRV_HEADER_BAD, "malformed header line"},
	};
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct srv sv;
		int status = -1;
		srv_start(&sv, cases[k].mode);
		struct tools_fetch f;
		fetch_open(&f, &sv, 1024);
		assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 2000, &status),
		                 ERR_PROTO);
		assert_int_equal(status, 0);
		assert_non_null(strstr(f.why, cases[k].why));
		assert_int_equal(tools_http_open_conns(f.h), 0); /* not reused */
		tools_fetch_release(&f);
		srv_stop(&sv);
	}
}

static void test_http_answer_limit_is_err_toobig(void **state)
{
	(void)state;
	enum srv_mode modes[] = {SRV_BIG, SRV_BIG_CHUNK};
	for (size_t k = 0; k < 2; k++) {
		struct srv sv;
		int status = -1;
		srv_start(&sv, modes[k]);
		struct tools_fetch f;
		fetch_open(&f, &sv, 1000);
		assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 2000, &status),
		                 ERR_TOOBIG);
		assert_non_null(strstr(f.why, "larger than 1000 bytes"));
		tools_fetch_release(&f);
		srv_stop(&sv);
	}
}

static void test_http_timeout_and_refused(void **state)
{
	(void)state;
	struct srv sv;
	int status = -1;
	srv_start(&sv, SRV_SILENT);
	struct tools_fetch f;
	fetch_open(&f, &sv, 1024);
	int64_t t0 = clock_mono_us();
	assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 100, &status),
	                 ERR_TIMEOUT);
	int64_t took = clock_mono_us() - t0;
	assert_true(took >= 100000 && took < 2000000);
	assert_non_null(strstr(f.why, "within 100 ms"));
	tools_fetch_release(&f); /* closes: the server's read ends */
	srv_stop(&sv);

	/* nothing listens on the port any more */
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", sv.port);
	assert_int_equal(tools_fetch_init(&f, url, 1024), 0);
	assert_int_equal(tools_fetch_request(&f, "GET", "/", NULL, NULL, 0, 2000, &status), ERR_IO);
	assert_non_null(strstr(f.why, "could not connect to 127.0.0.1:"));
	tools_fetch_release(&f);
}

static int nfull_done;
static int last_done_status;

static void count_done(void *ud, const struct tools_http_result *res)
{
	(void)ud;
	nfull_done++;
	last_done_status = res->status;
}

static void test_http_no_free_connection_is_err_full(void **state)
{
	(void)state;
	struct srv sv;
	srv_start(&sv, SRV_KEEP);
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/base", sv.port);
	struct tools_url u;
	char why[TOOLS_HTTP_ERR_CAP];
	assert_int_equal(tools_url_parse(url, &u, why), 0);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct tools_http *h;
	struct tools_http_opts o = {ep, 1, 1024, count_done, NULL};
	assert_int_equal(tools_http_new(&u, &o, &h), 0);
	struct tools_http_req rq = {"GET", "/base/a", NULL, NULL, 0, 2000, 7};
	nfull_done = 0;
	assert_int_equal(tools_http_idle(h), 1);
	assert_int_equal(tools_http_start(h, &rq), 0);
	assert_int_equal(tools_http_idle(h), 0);
	assert_int_equal(tools_http_start(h, &rq), ERR_FULL);
	assert_true(tools_http_next_due(h) > 0);
	while (nfull_done == 0) {
		struct epoll_event ev[4];
		int n = epoll_wait(ep, ev, 4, 1000);
		assert_true(n > 0);
		for (int k = 0; k < n; k++)
			assert_int_equal(tools_http_handle(h, &ev[k]), 1);
	}
	assert_int_equal(nfull_done, 1); /* the refused start was never reported */
	assert_int_equal(last_done_status, 200);
	assert_int_equal(tools_http_idle(h), 1);
	assert_int_equal(tools_http_next_due(h), -1);
	struct epoll_event other = {.events = EPOLLIN, .data.ptr = &nfull_done};
	assert_int_equal(tools_http_handle(h, &other), 0); /* not the client's */
	tools_http_free(h);
	tools_http_free(NULL);
	close(ep);
	srv_stop(&sv);
}

/* The numbering behind the tools' message ids: one to one, undone exactly;
 * decimals padded when asked. */
static void test_scatter_and_fmt(void **state)
{
	(void)state;
	uint64_t v[] = {0, 1, 2, 599, 0x123456789ULL, UINT64_MAX};
	for (size_t k = 0; k < sizeof(v) / sizeof(v[0]); k++)
		assert_true(tools_gather_u64(tools_scatter_u64(v[k])) == v[k]);
	assert_true(tools_scatter_u64(1) != tools_scatter_u64(2));
	char out[24];
	assert_int_equal(tools_fmt_u64(out, 0, 0), 1);
	assert_string_equal(out, "0");
	assert_int_equal(tools_fmt_u64(out, 42, 5), 5);
	assert_string_equal(out, "00042");
	assert_int_equal(tools_fmt_u64(out, UINT64_MAX, 20), 20);
	assert_string_equal(out, "18446744073709551615");
	assert_int_equal(tools_fmt_u64(out, 7, 30), 20); /* never wider than 20 */
}

static void test_url_parse(void **state)
{
	(void)state;
	struct tools_url u;
	char why[TOOLS_HTTP_ERR_CAP];
	assert_int_equal(tools_url_parse("http://127.0.0.1:9090", &u, why), 0);
	assert_string_equal(u.host, "127.0.0.1");
	assert_int_equal(u.port, 9090);
	assert_string_equal(u.authority, "127.0.0.1:9090");
	assert_string_equal(u.path, "");
	assert_int_equal(tools_url_parse("HTTP://localhost/webhooks/whatsapp?x=1#frag", &u, why),
	                 0);
	assert_string_equal(u.host, "localhost");
	assert_int_equal(u.port, 80);
	assert_string_equal(u.path, "/webhooks/whatsapp?x=1");
	assert_int_equal(tools_url_parse("http://[::1]:8080/p", &u, why), 0);
	assert_string_equal(u.host, "::1");
	assert_int_equal(u.port, 8080);
	assert_string_equal(u.authority, "[::1]:8080");

	assert_int_equal(tools_url_parse("https://127.0.0.1:9090", &u, why), ERR_INVAL);
	assert_non_null(strstr(why, "https is not supported"));
	static const char *const bad[] = {
	        "ftp://x",        "127.0.0.1:80", "http://",     "http://:80/", "http://h:0",
	        "http://h:65536", "http://h:8x",  "http://u@h/", "http://[::1", "http://[::1]x",
	};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		assert_int_equal(tools_url_parse(bad[k], &u, why), ERR_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_log_filters_and_order),
	        cmocka_unit_test(test_log_evicts_by_count),
	        cmocka_unit_test(test_log_evicts_by_bytes),
	        cmocka_unit_test(test_timer_order_and_close),
	        cmocka_unit_test(test_log_replies_feed),
	        cmocka_unit_test(test_http_keepalive_reuse),
	        cmocka_unit_test(test_http_server_closes),
	        cmocka_unit_test(test_http_partial_reads),
	        cmocka_unit_test(test_http_partial_writes),
	        cmocka_unit_test(test_http_malformed_is_err_proto),
	        cmocka_unit_test(test_http_answer_limit_is_err_toobig),
	        cmocka_unit_test(test_http_timeout_and_refused),
	        cmocka_unit_test(test_http_no_free_connection_is_err_full),
	        cmocka_unit_test(test_url_parse),
	        cmocka_unit_test(test_scatter_and_fmt),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
