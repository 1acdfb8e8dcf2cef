/*
 * tools_http.c - a small HTTP/1.1 client for munim's own test tools
 * (loadgen's sender and collector, the mock BSP's status poster): plain
 * HTTP to one host:port over persistent connections, cheap per request.
 *
 * Why not libcurl: at thousands of requests a second a curl easy handle
 * costs more CPU than the server it measures (header lists, option
 * bookkeeping, a socket callback and an epoll_ctl per transfer). The tools
 * only ever talk plain HTTP/1.1 to loopback, so this does exactly that.
 *
 * Design
 *   A client owns up to `conns` connections ("conns"), each carrying one
 *   request at a time (no pipelining). Free connections sit on a LIFO
 *   stack, so the most recently used (open) connection is reused first
 *   and a steady load keeps the fewest connections open. A request is
 *   formatted into the connection's output buffer (request line, Host,
 *   the caller's header lines, Content-Length, body) and written with one
 *   send(); the answer is read into the input buffer and parsed in place.
 *
 *   The sockets live in the caller's epoll set, level-triggered, with
 *   data.ptr pointing at the connection. Each socket is added once, with
 *   EPOLLIN|EPOLLOUT while connecting; then EPOLLIN only, and EPOLLOUT is
 *   added back (EPOLL_CTL_MOD) only while a write is incomplete, so the
 *   interest set changes only on connect and on a full send buffer.
 *   Idle connections stay watched: the server closing one is seen at
 *   once and the connection is dropped, not reused.
 *
 *   A connection's life (state, and the function for each edge):
 *
 *     CLOSED --conn_open--> CONNECTING --on_connected--> SENDING
 *     IDLE ----start------> SENDING --conn_write--> RECEIVING
 *     RECEIVING --answer complete, keep-alive--> IDLE (finish)
 *     any --error, Connection: close, timeout--> CLOSED (conn_close)
 *
 *   The answer: a status line "HTTP/1.x NNN", header lines up to
 *   HTTP_HEAD_MAX bytes, then a body of Content-Length bytes, chunked, or
 *   (no length, HTTP/1.0 style) up to the close. 1xx interim answers are
 *   skipped. A body above max_answer is ERR_TOOBIG; anything that is not
 *   HTTP is ERR_PROTO and the connection is closed.
 *
 *   Time limits: running requests are kept on a list ordered by due time
 *   (appended at the tail; a shorter limit is walked back into place), so
 *   the next timeout is the head and expiry is O(expired).
 *
 *   A request sent on a reused connection that turns out closed by the
 *   server (reset, or EOF before any byte of an answer) is sent once more
 *   on a fresh connection: a keep-alive connection may be closed by the
 *   server at any time while idle (RFC 9112 9.3.1), and that race is no
 *   failure of the request.
 *
 * Threading: a client and its connections belong to one thread.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

/* The most bytes of status line and header lines of one answer. */
#define HTTP_HEAD_MAX (32 * 1024)
/* Room made in the input buffer before each read. */
#define HTTP_READ_ROOM 16384
/* The longest chunk-size line of a chunked body. */
#define HTTP_CHUNK_LINE_MAX 1024

enum conn_state { CONN_CLOSED, CONN_IDLE, CONN_CONNECTING, CONN_SENDING, CONN_RECEIVING };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };
enum body_kind { BODY_NONE, BODY_LENGTH, BODY_CHUNKED, BODY_CLOSE };

struct conn {
	struct tools_http *h;
	int fd;
	enum conn_state state;
	uint32_t events; /* what epoll watches for fd */
	uint32_t gen;    /* counts the sockets this connection has had */
	int served;      /* answers read on this connection */
	int retried;     /* the request moved to a fresh connection once already */
	uint64_t tag;
	int64_t start_us, due_us;
	struct buf out;
	size_t out_off;
	struct buf in;
	/* the answer being read */
	size_t scanned;  /* bytes of in searched for the head's end */
	size_t head_len; /* 0 until the head is complete */
	int status;
	int keep; /* the connection may carry another request */
	enum body_kind kind;
	uint64_t clen;
	size_t parse_off; /* chunked: bytes of in decoded */
	enum chunk_state chunk;
	uint64_t chunk_left;
	struct buf body;          /* chunked: the decoded body */
	struct conn *prev, *next; /* the running list, by due time */
};

struct tools_http {
	int epfd;
	struct tools_url url;
	struct sockaddr_storage addr;
	socklen_t addrlen; /* 0 until resolved */
	struct conn *conns;
	int nconns;
	int *free; /* stack of free connection numbers; the top is reused first */
	int nfree;
	struct conn *run_head, *run_tail;
	size_t max_answer;
	tools_http_done_fn done;
	void *ud;
};

/* ---- URLs ------------------------------------------------------------------ */

int tools_url_parse(const char *url, struct tools_url *out, char why[TOOLS_HTTP_ERR_CAP])
{
	memset(out, 0, sizeof(*out));
	if (strncasecmp(url, "https://", 8) == 0) {
		snprintf(why, TOOLS_HTTP_ERR_CAP,
		         "https is not supported: the tools speak plain HTTP (use http://)");
		return ERR_INVAL;
	}
	if (strncasecmp(url, "http://", 7) != 0) {
		snprintf(why, TOOLS_HTTP_ERR_CAP, "\"%.*s\" is not an http:// URL", 160, url);
		return ERR_INVAL;
	}
	const char *a = url + 7;
	size_t alen = strcspn(a, "/?#");
	const char *rest = a + alen;
	if (alen == 0 || alen >= sizeof(out->authority) || memchr(a, '@', alen)) {
		snprintf(why, TOOLS_HTTP_ERR_CAP, "\"%.*s\" has no usable host", 160, url);
		return ERR_INVAL;
	}
	memcpy(out->authority, a, alen);
	const char *host = a, *host_end, *port = NULL;
	if (*a == '[') { /* an IPv6 literal */
		host = a + 1;
		host_end = memchr(a, ']', alen);
		if (!host_end || host_end == host) {
			snprintf(why, TOOLS_HTTP_ERR_CAP, "\"%.*s\" has a malformed host", 160,
			         url);
			return ERR_INVAL;
		}
		if (host_end + 1 < a + alen) {
			if (host_end[1] != ':') {
				snprintf(why, TOOLS_HTTP_ERR_CAP, "\"%.*s\" has a malformed host",
				         160, url);
				return ERR_INVAL;
			}
			port = host_end + 2;
		}
	} else {
		host_end = memchr(a, ':', alen);
		if (host_end)
			port = host_end + 1;
		else
			host_end = a + alen;
	}
	if (host_end == host || (size_t)(host_end - host) >= sizeof(out->host)) {
		snprintf(why, TOOLS_HTTP_ERR_CAP, "\"%.*s\" has no usable host", 160, url);
		return ERR_INVAL;
	}
	memcpy(out->host, host, (size_t)(host_end - host));
	out->port = 80;
	if (port) {
		long p = 0;
		const char *q = port;
		for (; q < a + alen && *q >= '0' && *q <= '9' && p <= 65535; q++)
			p = p * 10 + (*q - '0');
		if (q == port || q != a + alen || p < 1 || p > 65535) {
			snprintf(why, TOOLS_HTTP_ERR_CAP, "\"%.*s\" has a malformed port", 160,
			         url);
			return ERR_INVAL;
		}
		out->port = (int)p;
	}
	if (*rest == '#')
		rest = "";
	if (strlen(rest) >= sizeof(out->path)) {
		snprintf(why, TOOLS_HTTP_ERR_CAP, "the path of \"%.*s\" is too long", 160, url);
		return ERR_INVAL;
	}
	snprintf(out->path, sizeof(out->path), "%.*s", (int)strcspn(rest, "#"), rest);
	return 0;
}

/* ---- small helpers ------------------------------------------------------------ */

/* The lower-case description of errno e, as messages for people want it. */
static const char *errno_text(int e, char *tmp, size_t cap)
{
	snprintf(tmp, cap, "%s", strerror(e));
	if (tmp[0] >= 'A' && tmp[0] <= 'Z' && (tmp[1] < 'A' || tmp[1] > 'Z'))
		tmp[0] = (char)(tmp[0] - 'A' + 'a');
	return tmp;
}

/* ---- the running list ------------------------------------------------------------ */

static void run_add(struct tools_http *h, struct conn *c)
{
	struct conn *after = h->run_tail;
	while (after && after->due_us > c->due_us)
		after = after->prev;
	c->prev = after;
	c->next = after ? after->next : h->run_head;
	if (c->next)
		c->next->prev = c;
	else
		h->run_tail = c;
	if (after)
		after->next = c;
	else
		h->run_head = c;
}

static void run_remove(struct tools_http *h, struct conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		h->run_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		h->run_tail = c->prev;
	c->prev = c->next = NULL;
}

/* ---- connections ----------------------------------------------------------------- */

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also leaves the epoll set: nobody else holds the fd */
	c->fd = -1;
	c->state = CONN_CLOSED;
	c->events = 0;
	c->served = 0;
}

/* Resets the parse state for a new answer. */
static void answer_reset(struct conn *c)
{
	c->in.len = 0;
	c->scanned = 0;
	c->head_len = 0;
	c->status = 0;
	c->keep = 1;
	c->kind = BODY_NONE;
	c->clen = 0;
	c->parse_off = 0;
	c->chunk = CH_SIZE;
	c->chunk_left = 0;
	c->body.len = 0;
}

/*
 * finish ends the running request: reports it, then frees the connection
 * (closed unless the answer allows keep-alive). The connection is pushed
 * back only after done returns, so the body stays valid during the call.
 */
static void finish(struct conn *c, int err, const char *why, const char *body, size_t len)
{
	struct tools_http *h = c->h;
	run_remove(h, c);
	if (err || !c->keep || c->out_off < c->out.len)
		conn_close(c);
	else {
		c->state = CONN_IDLE;
		c->served++;
	}
	struct tools_http_result res = {
	        .tag = c->tag,
	        .status = err ? 0 : c->status,
	        .err = err,
	        .why = err ? why : NULL,
	        .body = body ? body : "",
	        .len = body ? len : 0,
	        .latency_us = clock_mono_us() - c->start_us,
	};
	h->done(h->ud, &res);
	h->free[h->nfree++] = (int)(c - h->conns);
}

static void fail(struct conn *c, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static void fail(struct conn *c, int err, const char *fmt, ...)
{
	char why[TOOLS_HTTP_ERR_CAP];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	finish(c, err, why, NULL, 0);
}

static int watch(struct conn *c, uint32_t events)
{
	if (c->events == events)
		return 0;
	struct epoll_event ev = {.events = events, .data.ptr = c};
	int rc = epoll_ctl(c->h->epfd, c->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev);
	if (rc == 0)
		c->events = events;
	return rc;
}

static int resolve(struct tools_http *h, char *why, size_t cap)
{
	if (h->addrlen)
		return 0;
	char port[8];
	snprintf(port, sizeof(port), "%d", h->url.port);
	struct addrinfo hints = {
	        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(h->url.host, port, &hints, &ai);
	if (rc != 0 || !ai) {
		snprintf(why, cap, "could not resolve host \"%s\": %s", h->url.host,
		         rc ? gai_strerror(rc) : "no address");
		if (ai)
			freeaddrinfo(ai);
		return ERR_IO;
	}
	memcpy(&h->addr, ai->ai_addr, ai->ai_addrlen);
	h->addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

static void conn_write(struct conn *c);
static void conn_read(struct conn *c);

/* conn_open starts connecting c for its request; failures finish it. */
static void conn_open(struct conn *c)
{
	struct tools_http *h = c->h;
	char why[TOOLS_HTTP_ERR_CAP], tmp[96];
	if (resolve(h, why, sizeof(why)) != 0) {
		fail(c, ERR_IO, "%s", why);
		return;
	}
	c->fd = socket(h->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		c->state = CONN_CLOSED;
		fail(c, ERR_IO, "could not open a socket: %s", errno_text(errno, tmp, sizeof(tmp)));
		return;
	}
	c->gen++;
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c->events = 0;
	c->served = 0;
	int rc = connect(c->fd, (const struct sockaddr *)&h->addr, h->addrlen);
	if (rc != 0 && errno != EINPROGRESS) {
		int e = errno;
		conn_close(c);
		fail(c, ERR_IO, "could not connect to %s: %s", h->url.authority,
		     errno_text(e, tmp, sizeof(tmp)));
		return;
	}
	if (watch(c, rc == 0 ? EPOLLIN : EPOLLIN | EPOLLOUT) != 0) {
		int e = errno;
		conn_close(c);
		fail(c, ERR_IO, "could not watch a socket: %s", errno_text(e, tmp, sizeof(tmp)));
		return;
	}
	c->state = rc == 0 ? CONN_SENDING : CONN_CONNECTING;
	if (rc == 0)
		conn_write(c);
}

/*
 * broken handles a connection that failed under a request (e is the errno,
 * 0 for an EOF): sent again once on a fresh connection when the connection
 * had served before and nothing of an answer came, else the request fails.
 */
static void broken(struct conn *c, int e, const char *what)
{
	char tmp[96];
	int stale = c->served > 0 && !c->retried && c->in.len == 0;
	conn_close(c);
	if (stale) {
		c->retried = 1;
		c->out_off = 0;
		answer_reset(c);
		conn_open(c);
		return;
	}
	if (e)
		fail(c, ERR_IO, "%s %s: %s", what, c->h->url.authority,
		     errno_text(e, tmp, sizeof(tmp)));
	else
		fail(c, ERR_IO, "%s %s", what, c->h->url.authority);
}

static void on_connected(struct conn *c)
{
	int e = 0;
	socklen_t len = sizeof(e);
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &e, &len) != 0)
		e = errno;
	if (e) {
		char tmp[96];
		conn_close(c);
		fail(c, ERR_IO, "could not connect to %s: %s", c->h->url.authority,
		     errno_text(e, tmp, sizeof(tmp)));
		return;
	}
	c->state = CONN_SENDING;
	conn_write(c);
}

static void conn_write(struct conn *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
		                 MSG_NOSIGNAL);
		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			/* still connecting (a stale event) or the send buffer is full */
			if (watch(c, EPOLLIN | EPOLLOUT) != 0)
				broken(c, errno, "could not watch the connection to");
			return;
		}
		broken(c, n < 0 ? errno : EPIPE, "could not send to");
		return;
	}
	c->state = CONN_RECEIVING;
	if (watch(c, EPOLLIN) != 0)
		broken(c, errno, "could not watch the connection to");
}

/* ---- reading the answer ------------------------------------------------------------ */

/* Case-insensitive: does the comma-separated list v (n bytes) hold token t? */
static int has_token(const char *v, size_t n, const char *t)
{
	size_t tl = strlen(t);
	const char *end = v + n;
	while (v < end) {
		while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
			v++;
		const char *s = v;
		while (v < end && *v != ',')
			v++;
		const char *e = v;
		while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - s) == tl && strncasecmp(s, t, tl) == 0)
			return 1;
	}
	return 0;
}

/*
 * parse_head reads the status line and the headers of in[0, head_len).
 * 0, or ERR_PROTO / ERR_TOOBIG with why set.
 */
static int parse_head(struct conn *c, char *why, size_t cap)
{
	const char *p = c->in.data, *end = p + c->head_len - 2; /* the last line's CRLF */
	if (c->head_len < 14 || strncmp(p, "HTTP/1.", 7) != 0 || p[7] < '0' || p[7] > '9' ||
	    p[8] != ' ' || p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' || p[11] < '0' ||
	    p[11] > '9' || (p[12] != ' ' && p[12] != '\r')) {
		snprintf(why, cap, "malformed status line from %s", c->h->url.authority);
		return ERR_PROTO;
	}
	int http10 = p[7] == '0';
	c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	int have_len = 0, chunked = 0, close_hdr = 0, keepalive_hdr = 0;
	uint64_t clen = 0;
	p = (const char *)memchr(p, '\n', (size_t)(end - p)) + 1;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end + 2 - p));
		const char *line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
		const char *colon = memchr(p, ':', (size_t)(line_end - p));
		if (!colon || colon == p) {
			snprintf(why, cap, "malformed header line from %s", c->h->url.authority);
			return ERR_PROTO;
		}
		size_t nl = (size_t)(colon - p);
		const char *v = colon + 1;
		while (v < line_end && (*v == ' ' || *v == '\t'))
			v++;
		const char *ve = line_end;
		while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
			ve--;
		if (nl == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
			uint64_t n = 0;
			const char *d = v;
			for (; d < ve && *d >= '0' && *d <= '9' && n <= UINT64_MAX / 100; d++)
				n = n * 10 + (uint64_t)(*d - '0');
			if (d == v || d != ve || (have_len && n != clen)) {
				snprintf(why, cap, "malformed Content-Length from %s",
				         c->h->url.authority);
				return ERR_PROTO;
			}
			have_len = 1;
			clen = n;
		} else if (nl == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
			if (has_token(v, (size_t)(ve - v), "chunked"))
				chunked = 1;
			else if (!has_token(v, (size_t)(ve - v), "identity")) {
				snprintf(why, cap, "unsupported Transfer-Encoding \"%.*s\" from %s",
				         (int)(ve - v > 40 ? 40 : ve - v), v, c->h->url.authority);
				return ERR_PROTO;
			}
		} else if (nl == 10 && strncasecmp(p, "Connection", 10) == 0) {
			close_hdr |= has_token(v, (size_t)(ve - v), "close");
			keepalive_hdr |= has_token(v, (size_t)(ve - v), "keep-alive");
		}
		p = eol + 1;
	}
	c->keep = !close_hdr && (!http10 || keepalive_hdr);
	if (c->status == 204 || c->status == 304 || (c->status >= 100 && c->status < 200)) {
		c->kind = BODY_NONE;
	} else if (chunked) {
		c->kind = BODY_CHUNKED;
		c->parse_off = c->head_len;
	} else if (have_len) {
		if (clen > c->h->max_answer) {
			snprintf(why, cap, "answer from %s larger than %zu bytes",
			         c->h->url.authority, c->h->max_answer);
			return ERR_TOOBIG;
		}
		c->kind = BODY_LENGTH;
		c->clen = clen;
	} else {
		c->kind = BODY_CLOSE;
		c->keep = 0;
	}
	return 0;
}

/* Decodes what has arrived of a chunked body: 1 done, 0 more needed, or an error. */
static int decode_chunks(struct conn *c, char *why, size_t cap)
{
	for (;;) {
		char *p = c->in.data + c->parse_off;
		size_t avail = c->in.len - c->parse_off;
		if (c->chunk == CH_DATA) {
			size_t take = avail < c->chunk_left ? avail : (size_t)c->chunk_left;
			if (c->body.len + take > c->h->max_answer)
				goto toobig;
			buf_append(&c->body, p, take);
			c->parse_off += take;
			c->chunk_left -= take;
			if (c->chunk_left)
				return 0;
			c->chunk = CH_DATA_END;
			continue;
		}
		if (c->chunk == CH_DATA_END) {
			if (avail < 2)
				return 0;
			if (p[0] != '\r' || p[1] != '\n')
				goto malformed;
			c->parse_off += 2;
			c->chunk = CH_SIZE;
			continue;
		}
		char *eol = memmem(p, avail, "\r\n", 2);
		if (!eol) {
			if (avail > HTTP_CHUNK_LINE_MAX)
				goto malformed;
			return 0;
		}
		c->parse_off += (size_t)(eol - p) + 2;
		if (c->chunk == CH_TRAILER) {
			if (eol != p)
				continue; /* a trailer field: ignored */
			if (c->parse_off != c->in.len)
				c->keep =
				        0; /* bytes after the answer: do not trust the connection */
			return 1;
		}
		uint64_t n = 0;
		char *d = p;
		for (; d < eol; d++) {
			int x = *d >= '0' && *d <= '9'   ? *d - '0'
			        : *d >= 'a' && *d <= 'f' ? *d - 'a' + 10
			        : *d >= 'A' && *d <= 'F' ? *d - 'A' + 10
			                                 : -1;
			if (x < 0)
				break;
			n = n * 16 + (uint64_t)x;
			if (n > c->h->max_answer)
				goto toobig;
		}
		if (d == p || (d < eol && *d != ';' && *d != ' ' && *d != '\t'))
			goto malformed;
		c->chunk_left = n;
		c->chunk = n ? CH_DATA : CH_TRAILER;
	}
malformed:
	snprintf(why, cap, "malformed chunked body from %s", c->h->url.authority);
	return ERR_PROTO;
toobig:
	snprintf(why, cap, "answer from %s larger than %zu bytes", c->h->url.authority,
	         c->h->max_answer);
	return ERR_TOOBIG;
}

/*
 * parse reads what has arrived: 1 when the answer is complete (finished),
 * 0 when more is needed, -1 when it failed (finished as an error).
 * eof: the server closed the connection after these bytes.
 */
static int parse(struct conn *c, int eof)
{
	char why[TOOLS_HTTP_ERR_CAP];
	int rc;
	while (!c->head_len) {
		size_t from = c->scanned > 3 ? c->scanned - 3 : 0;
		char *e = c->in.len > from
		                  ? memmem(c->in.data + from, c->in.len - from, "\r\n\r\n", 4)
		                  : NULL;
		if (!e) {
			c->scanned = c->in.len;
			if (c->in.len > HTTP_HEAD_MAX) {
				fail(c, ERR_PROTO, "answer head from %s longer than %d bytes",
				     c->h->url.authority, HTTP_HEAD_MAX);
				return -1;
			}
			if (eof)
				goto eof_early;
			return 0;
		}
		c->head_len = (size_t)(e - c->in.data) + 4;
		if (c->head_len > HTTP_HEAD_MAX) {
			fail(c, ERR_PROTO, "answer head from %s longer than %d bytes",
			     c->h->url.authority, HTTP_HEAD_MAX);
			return -1;
		}
		rc = parse_head(c, why, sizeof(why));
		if (rc != 0) {
			c->keep = 0;
			fail(c, rc, "%s", why);
			return -1;
		}
		if (c->status >= 100 && c->status < 200) {
			if (c->status == 101) {
				fail(c, ERR_PROTO, "%s switched protocols", c->h->url.authority);
				return -1;
			}
			/* an interim answer (100 Continue): drop it, read the real one */
			memmove(c->in.data, c->in.data + c->head_len, c->in.len - c->head_len);
			c->in.len -= c->head_len;
			c->head_len = 0;
			c->scanned = 0;
		}
	}
	switch (c->kind) {
	case BODY_NONE:
		if (c->in.len != c->head_len)
			c->keep = 0;
		finish(c, 0, NULL, NULL, 0);
		return 1;
	case BODY_LENGTH:
		if (c->in.len - c->head_len < c->clen) {
			if (eof)
				goto eof_early;
			return 0;
		}
		if (c->in.len - c->head_len > c->clen)
			c->keep = 0;
		c->in.data[c->head_len + c->clen] = '\0';
		finish(c, 0, NULL, c->in.data + c->head_len, (size_t)c->clen);
		return 1;
	case BODY_CHUNKED:
		rc = decode_chunks(c, why, sizeof(why));
		if (rc < 0) {
			fail(c, rc, "%s", why);
			return -1;
		}
		if (rc == 0) {
			if (eof)
				goto eof_early;
			/* drop what is decoded, so the raw bytes kept stay small */
			memmove(c->in.data + c->head_len, c->in.data + c->parse_off,
			        c->in.len - c->parse_off);
			c->in.len -= c->parse_off - c->head_len;
			c->parse_off = c->head_len;
			return 0;
		}
		buf_reserve(&c->body, 1);
		c->body.data[c->body.len] = '\0';
		finish(c, 0, NULL, c->body.data, c->body.len);
		return 1;
	case BODY_CLOSE:
		if (c->in.len - c->head_len > c->h->max_answer) {
			fail(c, ERR_TOOBIG, "answer from %s larger than %zu bytes",
			     c->h->url.authority, c->h->max_answer);
			return -1;
		}
		if (!eof)
			return 0;
		c->in.data[c->in.len] = '\0';
		finish(c, 0, NULL, c->in.data + c->head_len, c->in.len - c->head_len);
		return 1;
	}
	return 0;
eof_early:
	if (c->in.len == 0) {
		broken(c, 0, "the connection was closed without an answer by");
		return -1;
	}
	fail(c, ERR_IO, "the connection was closed in the middle of an answer by %s",
	     c->h->url.authority);
	return -1;
}

static void conn_read(struct conn *c)
{
	for (;;) {
		buf_reserve(&c->in, HTTP_READ_ROOM + 1);
		size_t room = c->in.cap - c->in.len - 1; /* one byte kept for a NUL */
		ssize_t n = recv(c->fd, c->in.data + c->in.len, room, 0);
		if (n > 0) {
			c->in.len += (size_t)n;
			if (parse(c, 0) != 0 || (size_t)n < room)
				return; /* done, failed, or drained (level-triggered: epoll says if
				           not) */
			continue;
		}
		if (n == 0) {
			parse(c, 1);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			return;
		broken(c, errno, "could not read from");
		return;
	}
}

/* An idle connection became readable: the server closed it (or spoke out of turn). */
static void idle_event(struct conn *c)
{
	char b[256];
	ssize_t n;
	do
		n = recv(c->fd, b, sizeof(b), 0);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN)
		return;
	conn_close(c);
}

/* ---- the client -------------------------------------------------------------------- */

int tools_http_new(const struct tools_url *u, const struct tools_http_opts *o,
                   struct tools_http **out)
{
	*out = NULL;
	if (o->conns < 1 || o->epfd < 0 || !o->done)
		return ERR_INVAL;
	struct tools_http *h = xcalloc(1, sizeof(*h));
	h->epfd = o->epfd;
	h->url = *u;
	h->nconns = o->conns;
	h->max_answer = o->max_answer;
	h->done = o->done;
	h->ud = o->ud;
	h->conns = xcalloc((size_t)o->conns, sizeof(*h->conns));
	h->free = xcalloc((size_t)o->conns, sizeof(*h->free));
	for (int k = 0; k < o->conns; k++) {
		h->conns[k].h = h;
		h->conns[k].fd = -1;
		h->free[h->nfree++] = o->conns - 1 - k; /* connection 0 on top */
	}
	*out = h;
	return 0;
}

void tools_http_free(struct tools_http *h)
{
	if (!h)
		return;
	for (int k = 0; k < h->nconns; k++) {
		struct conn *c = &h->conns[k];
		conn_close(c);
		buf_release(&c->out);
		buf_release(&c->in);
		buf_release(&c->body);
	}
	free(h->conns);
	free(h->free);
	free(h);
}

int tools_http_idle(const struct tools_http *h)
{
	return h->nfree;
}

int tools_http_open_conns(const struct tools_http *h)
{
	int n = 0;
	for (int k = 0; k < h->nconns; k++)
		n += h->conns[k].fd >= 0;
	return n;
}

int tools_http_start(struct tools_http *h, const struct tools_http_req *rq)
{
	if (h->nfree == 0)
		return ERR_FULL;
	struct conn *c = &h->conns[h->free[--h->nfree]];
	c->tag = rq->tag;
	c->start_us = clock_mono_us();
	c->due_us = c->start_us + (rq->timeout_ms > 0 ? rq->timeout_ms : 1) * 1000;
	c->retried = 0;
	c->out.len = 0;
	c->out_off = 0;
	answer_reset(c);
	struct buf *b = &c->out;
	size_t ml = strlen(rq->method), pl = strlen(rq->path);
	size_t hl = rq->headers ? strlen(rq->headers) : 0;
	buf_reserve(b, ml + pl + hl + strlen(h->url.authority) + rq->len + 64);
	buf_append(b, rq->method, ml);
	buf_append(b, " ", 1);
	buf_append(b, rq->path, pl);
	buf_append(b, " HTTP/1.1\r\nHost: ", 17);
	buf_append(b, h->url.authority, strlen(h->url.authority));
	buf_append(b, "\r\n", 2);
	if (hl)
		buf_append(b, rq->headers, hl);
	if (rq->body) {
		buf_append(b, "Content-Length: ", 16);
		buf_put_u64(b, rq->len);
		buf_append(b, "\r\n\r\n", 4);
		buf_append(b, rq->body, rq->len);
	} else {
		buf_append(b, "\r\n", 2);
	}
	run_add(h, c);
	if (c->state == CONN_IDLE) {
		c->state = CONN_SENDING;
		conn_write(c);
	} else {
		conn_open(c);
	}
	return 0;
}

int tools_http_handle(struct tools_http *h, const struct epoll_event *ev)
{
	struct conn *c = ev->data.ptr;
	if (c < h->conns || c >= h->conns + h->nconns)
		return 0;
	switch (c->state) {
	case CONN_CONNECTING: on_connected(c); break;
	case CONN_SENDING: {
		uint32_t gen = c->gen; /* conn_write may move the request to a new socket */
		if (ev->events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
			conn_write(c);
		if (c->state == CONN_SENDING && c->gen == gen && c->out_off > 0 &&
		    (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
			/* an answer before the request was all written (a 413, say) */
			c->state = CONN_RECEIVING;
			conn_read(c);
		}
		break;
	}
	case CONN_RECEIVING: conn_read(c); break;
	case CONN_IDLE: idle_event(c); break;
	case CONN_CLOSED: break; /* an event of a socket closed earlier in this batch */
	}
	return 1;
}

int64_t tools_http_next_due(const struct tools_http *h)
{
	return h->run_head ? h->run_head->due_us : -1;
}

void tools_http_expire(struct tools_http *h, int64_t now)
{
	while (h->run_head && h->run_head->due_us <= now) {
		struct conn *c = h->run_head;
		c->keep = 0;
		fail(c, ERR_TIMEOUT, "no answer from %s within %lld ms", h->url.authority,
		     (long long)((c->due_us - c->start_us) / 1000));
	}
}

/* ---- the blocking fetcher --------------------------------------------------------------- */

static void fetch_done(void *ud, const struct tools_http_result *res)
{
	struct tools_fetch *f = ud;
	f->done = 1;
	f->status = res->status;
	f->err = res->err;
	buf_reset(&f->answer);
	if (res->err)
		snprintf(f->why, sizeof(f->why), "%s", res->why);
	else
		buf_append(&f->answer, res->body, res->len);
}

int tools_fetch_init(struct tools_fetch *f, const char *base_url, size_t max_answer)
{
	memset(f, 0, sizeof(*f));
	buf_init(&f->answer);
	f->epfd = -1;
	int rc = tools_url_parse(base_url, &f->url, f->why);
	if (rc != 0)
		return rc;
	f->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (f->epfd < 0) {
		char tmp[96];
		snprintf(f->why, sizeof(f->why), "could not create an epoll set: %s",
		         errno_text(errno, tmp, sizeof(tmp)));
		return ERR_IO;
	}
	struct tools_http_opts o = {f->epfd, 1, max_answer, fetch_done, f};
	return tools_http_new(&f->url, &o, &f->h);
}

void tools_fetch_release(struct tools_fetch *f)
{
	tools_http_free(f->h);
	f->h = NULL;
	if (f->epfd >= 0)
		close(f->epfd);
	f->epfd = -1;
	buf_release(&f->answer);
}

int tools_fetch_request(struct tools_fetch *f, const char *method, const char *path,
                        const char *headers, const void *body, size_t len, int64_t timeout_ms,
                        int *status)
{
	char full[2048];
	if ((size_t)snprintf(full, sizeof(full), "%s%s", f->url.path, path) >= sizeof(full)) {
		snprintf(f->why, sizeof(f->why), "the path is too long");
		return ERR_INVAL;
	}
	f->done = 0;
	f->why[0] = '\0';
	struct tools_http_req rq = {method, full[0] ? full : "/", headers, body,
	                            len,    timeout_ms,           0};
	if (tools_http_start(f->h, &rq) != 0) {
		snprintf(f->why, sizeof(f->why), "a request is already running");
		return ERR_INVAL;
	}
	while (!f->done) {
		int64_t now = clock_mono_us(), due = tools_http_next_due(f->h);
		int wait_ms = due < 0 ? 1000 : (int)((due - now + 999) / 1000);
		struct epoll_event evs[4];
		int n = epoll_wait(f->epfd, evs, 4, wait_ms < 0 ? 0 : wait_ms);
		for (int k = 0; k < n; k++)
			tools_http_handle(f->h, &evs[k]);
		if (!f->done)
			tools_http_expire(f->h, clock_mono_us());
	}
	*status = f->status;
	return f->err;
}
