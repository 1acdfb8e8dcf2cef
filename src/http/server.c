/*
 * server.c - the HTTP server: libmicrohttpd underneath, our routing, body
 * collection and late answers on top.
 *
 * Threads
 *   MHD runs `threads` threads: epoll with a pool of two or more, poll(2)
 *   with one (MHD 0.9.75 with epoll and one thread stalls past ~128 open
 *   connections; poll does not, nor does epoll with a pool).
 *   A handler runs on the MHD thread that owns the connection. It answers
 *   at once with http_respond, or calls http_suspend and hands the request
 *   to another thread, which answers later with http_respond.
 *
 * A request's life (access callback = on_access, MHD calls it repeatedly)
 *
 *   first call      req_new; route it. 404 / 405 / 413 (Content-Length
 *                   over max_body) / 503 (stopping) are queued at once: MHD
 *                   then skips the body and closes the connection.
 *   upload calls    append to r->body up to max_body; past it, set too_big
 *                   and discard (closing the connection once the discarded
 *                   bytes pass a bound, so a client cannot stream forever).
 *   last call       413 if too_big; else run the handler (run_handler):
 *                     answered inside the handler -> queue it now
 *                     suspended, not answered yet -> MHD_suspend_connection
 *   resumed call    http_respond from another thread stored the response
 *                   and called MHD_resume_connection; queue it (on_resumed).
 *   completed       on_completed drops MHD's reference; r is freed when no
 *                   one holds it any more.
 *
 * The race between the handler and its responder
 *   http_respond may run on another thread before the handler has returned
 *   (the committer can be faster than the MHD thread). All hand-over state
 *   of every request (in_handler, answered, resp, refs, the suspended list)
 *   is guarded by the one server mutex s->mu, so exactly one of these
 *   happens: http_respond sees in_handler and only stores the response (the
 *   MHD thread queues it when the handler returns, without suspending); or
 *   the MHD thread suspended first and http_respond resumes. Because
 *   MHD_suspend_connection is called under s->mu, MHD_resume_connection is
 *   never called before it. Lock order: s->mu, then MHD's own locks.
 *
 * References
 *   MHD holds one reference from the first call until on_completed. A
 *   suspended request also holds one for its responder ("owed"), dropped in
 *   http_respond. Normally MHD's outlives the owed one; only at shutdown
 *   can the server answer for a responder (503, "forced"), and then the
 *   request stays allocated until the responder's http_respond drops the
 *   last reference. The server struct itself likewise stays until the last
 *   owed reference is gone.
 *
 * Shutdown (http_server_stop): answer new requests 503; give suspended
 * requests a grace period to be answered; answer the rest 503 ourselves;
 * give the answers in flight a moment to be sent; wait until MHD has
 * picked every resumed connection up (MHD 0.9.75 panics when stopped with
 * suspended connections); stop MHD, which closes the listening socket.
 * The socket is not closed earlier with MHD_quiesce_daemon: in 0.9.75 it
 * races the epoll worker threads, which drop the socket from their epoll
 * sets themselves once they see the daemon quiesced, and a lost race
 * aborts the process ("Failed to remove listen FD from epoll set").
 */
#include "http/http_internal.h"

#include <errno.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"

/* Per-connection memory of libmicrohttpd (headers, read and write buffers;
 * bodies go to our own buffer). MHD clears it for every request on a kept-
 * alive connection, so smaller is cheaper: a webhook's headers are small. */
#define HTTP_CONN_MEMORY     (16 * 1024)
#define HTTP_CONN_TIMEOUT_S  30
#define HTTP_BACKLOG         1024
#define HTTP_STOP_GRACE_MS   5000
#define HTTP_FLUSH_MS        2000 /* for answers in flight at stop */
#define HTTP_ARENA_BLOCK     8192
#define HTTP_BODY_PRESIZE    (64 * 1024) /* bytes reserved up front from Content-Length */
#define HTTP_MAX_DISCARD_MIN (16u << 20) /* bytes discarded after 413 before closing */

struct http_server {
	struct MHD_Daemon *d;
	size_t max_body;
	const struct http_route *routes;
	int nroutes;
	int port;
	int stop_grace_ms;
	_Atomic int stopping; /* new requests get 503 */

	pthread_mutex_t mu;         /* guards everything below and the hand-over
	                             * fields of every request */
	pthread_cond_t cv;          /* signalled when nowed or nsuspended drop */
	struct http_req *owed_head; /* suspended requests owed an answer */
	int nowed;                  /* owed references outstanding (incl. forced) */
	int nsuspended;             /* MHD_suspend_connection done, resumed call not seen */
	int nactive;                /* requests between their first call and on_completed */
	int forcing;                /* shutdown: the server answers for late responders */
	int dead;                   /* http_server_stop is done: last owed ref frees s */
};

struct http_req {
	struct http_server *srv;
	struct MHD_Connection *conn; /* NULL once MHD completed it */
	const struct http_route *route;
	const char *method;
	const char *path;
	struct arena arena;
	struct buf body;
	size_t discarded; /* bytes dropped after too_big */
	int too_big;
	int handler_called;
	int suspend_wanted; /* set by http_suspend, handler thread only */

	/* Set by the thread that will respond (http_set_header). */
	int nhdr;
	const char *hdr_name[HTTP_MAX_EXTRA_HEADERS];
	const char *hdr_value[HTTP_MAX_EXTRA_HEADERS];

	/* Guarded by srv->mu. */
	int in_handler;
	int answered;      /* http_respond was called */
	int forced;        /* the server answered 503 for the responder */
	int mhd_suspended; /* suspended in MHD, resumed call not seen yet */
	int refs;
	struct MHD_Response *resp; /* answer waiting to be queued */
	unsigned int status;
	struct http_req *prev, *next; /* srv->owed_head list */
};

/* ---- small helpers ----------------------------------------------------- */

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	log_warn("http.mhd", "%s", msg);
}

static struct MHD_Response *response_new(const char *content_type, const char *body, size_t len)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(len, (void *)(body ? body : ""),
	                                                            MHD_RESPMEM_MUST_COPY);
	if (!resp) {
		log_error("http.response_failed", "could not create a response of %zu bytes", len);
		return NULL;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
	                        content_type ? content_type : "text/plain; charset=utf-8");
	return resp;
}

static struct MHD_Response *json_error(const char *msg)
{
	char body[128];
	int n = snprintf(body, sizeof(body), "{\"error\":\"%s\"}", msg);
	return response_new("application/json", body, (size_t)n);
}

/* Queues resp (NULL: nothing could be built, close) and drops our handle. */
static enum MHD_Result queue(struct MHD_Connection *conn, unsigned int status,
                             struct MHD_Response *resp)
{
	if (!resp)
		return MHD_NO;
	enum MHD_Result ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static void owed_add(struct http_server *s, struct http_req *r)
{
	r->prev = NULL;
	r->next = s->owed_head;
	if (s->owed_head)
		s->owed_head->prev = r;
	s->owed_head = r;
}

static void owed_remove(struct http_server *s, struct http_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else if (s->owed_head == r)
		s->owed_head = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

static void server_free(struct http_server *s)
{
	pthread_cond_destroy(&s->cv);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

static void req_free(struct http_req *r)
{
	if (r->resp)
		MHD_destroy_response(r->resp);
	buf_release(&r->body);
	arena_release(&r->arena);
	free(r);
}

/* Drops one reference under s->mu; returns 1 when the caller must free r
 * (after unlocking). */
static int req_unref_locked(struct http_req *r)
{
	return --r->refs == 0;
}

/* Drops an owed reference under s->mu; returns 1 when the caller must free
 * the server (it was stopped and this was the last one). */
static int owed_drop_locked(struct http_server *s)
{
	s->nowed--;
	pthread_cond_broadcast(&s->cv);
	return s->dead && s->nowed == 0;
}

static const struct http_route *route_find(const struct http_server *s, const char *method,
                                           const char *path, struct buf *allow)
{
	for (int i = 0; i < s->nroutes; i++) {
		const struct http_route *rt = &s->routes[i];
		int match = rt->prefix ? strncmp(path, rt->path, strlen(rt->path)) == 0
		                       : strcmp(path, rt->path) == 0;
		if (!match)
			continue;
		if (strcmp(method, rt->method) == 0)
			return rt;
		if (allow->len)
			buf_puts(allow, ", ");
		buf_puts(allow, rt->method);
	}
	return NULL;
}

/* ---- the access callback ------------------------------------------------- */

static struct http_req *req_new(struct http_server *s, struct MHD_Connection *conn, const char *url,
                                const char *method)
{
	struct http_req *r = xcalloc(1, sizeof(*r));
	r->srv = s;
	r->conn = conn;
	r->refs = 1; /* MHD's, until on_completed */
	pthread_mutex_lock(&s->mu);
	s->nactive++;
	pthread_mutex_unlock(&s->mu);
	arena_init(&r->arena, HTTP_ARENA_BLOCK);
	buf_init(&r->body);
	r->method = arena_strdup(&r->arena, method);
	r->path = arena_strdup(&r->arena, url);
	return r;
}

/* First call: route, and answer at once what needs no body (r->route is
 * left NULL exactly when an answer was queued here). */
static enum MHD_Result on_first(struct http_server *s, struct http_req *r)
{
	struct buf allow;
	struct MHD_Response *resp;

	if (atomic_load(&s->stopping))
		return queue(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, json_error("shutting down"));
	buf_init(&allow);
	r->route = route_find(s, r->method, r->path, &allow);
	if (!r->route) {
		if (allow.len) {
			resp = json_error("method not allowed");
			if (resp)
				MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow.data);
			buf_release(&allow);
			return queue(r->conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
		}
		buf_release(&allow);
		return queue(r->conn, MHD_HTTP_NOT_FOUND, json_error("not found"));
	}
	buf_release(&allow);

	const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (cl) {
		char *end;
		errno = 0;
		unsigned long long n = strtoull(cl, &end, 10);
		if (errno == ERANGE || n > s->max_body) {
			if (r->route->on_refused)
				r->route->on_refused(MHD_HTTP_CONTENT_TOO_LARGE, r->route->ud);
			r->route = NULL;
			return queue(r->conn, MHD_HTTP_CONTENT_TOO_LARGE,
			             json_error("body too large"));
		}
		/* one allocation rather than a doubling series; a claim larger than
		 * HTTP_BODY_PRESIZE must be backed by bytes before it costs memory */
		if (*end == '\0' && n > 0)
			buf_reserve(&r->body,
			            n < HTTP_BODY_PRESIZE ? (size_t)n : HTTP_BODY_PRESIZE);
	}
	return MHD_YES;
}

static enum MHD_Result on_upload(struct http_server *s, struct http_req *r, const char *data,
                                 size_t *size)
{
	size_t n = *size;
	*size = 0;
	if (!r->too_big && r->body.len + n <= s->max_body) {
		buf_append(&r->body, data, n);
		return MHD_YES;
	}
	if (!r->too_big) {
		r->too_big = 1;
		r->discarded = r->body.len;
		buf_release(&r->body);
	}
	r->discarded += n;
	size_t bound =
	        s->max_body * 4 > HTTP_MAX_DISCARD_MIN ? s->max_body * 4 : HTTP_MAX_DISCARD_MIN;
	if (r->discarded > bound)
		return MHD_NO; /* enough: close the connection */
	return MHD_YES;
}

/* Last call: run the handler, then queue its answer or suspend. */
static enum MHD_Result run_handler(struct http_server *s, struct http_req *r)
{
	struct MHD_Response *resp;
	unsigned int status;

	r->handler_called = 1;
	if (r->too_big) {
		if (r->route->on_refused)
			r->route->on_refused(MHD_HTTP_CONTENT_TOO_LARGE, r->route->ud);
		return queue(r->conn, MHD_HTTP_CONTENT_TOO_LARGE, json_error("body too large"));
	}
	pthread_mutex_lock(&s->mu);
	if (s->forcing) {
		pthread_mutex_unlock(&s->mu);
		return queue(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, json_error("shutting down"));
	}
	r->in_handler = 1;
	pthread_mutex_unlock(&s->mu);

	r->route->fn(r, r->route->ud);

	pthread_mutex_lock(&s->mu);
	r->in_handler = 0;
	if (r->resp) {
		resp = r->resp;
		status = r->status;
		r->resp = NULL;
		pthread_mutex_unlock(&s->mu);
		return queue(r->conn, status, resp);
	}
	if (!r->suspend_wanted) {
		r->answered = 1; /* a late http_respond is reported, not obeyed */
		pthread_mutex_unlock(&s->mu);
		log_error("http.no_answer", "handler for %s \"%s\" neither answered nor suspended",
		          r->method, r->path);
		return queue(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, json_error("internal error"));
	}
	r->refs++; /* the responder's */
	s->nowed++;
	if (s->forcing) {
		/* stopping: answer for the responder, keep r for its call */
		r->forced = 1;
		pthread_mutex_unlock(&s->mu);
		return queue(r->conn, MHD_HTTP_SERVICE_UNAVAILABLE, json_error("shutting down"));
	}
	owed_add(s, r);
	r->mhd_suspended = 1;
	s->nsuspended++;
	MHD_suspend_connection(r->conn);
	pthread_mutex_unlock(&s->mu);
	return MHD_YES;
}

/* The call after MHD_resume_connection: queue what the responder left. */
static enum MHD_Result on_resumed(struct http_server *s, struct http_req *r)
{
	pthread_mutex_lock(&s->mu);
	struct MHD_Response *resp = r->resp;
	unsigned int status = r->status;
	r->resp = NULL;
	if (r->mhd_suspended) {
		r->mhd_suspended = 0;
		s->nsuspended--;
		pthread_cond_broadcast(&s->cv);
	}
	pthread_mutex_unlock(&s->mu);
	if (!resp) {
		log_error("http.no_answer", "resumed %s \"%s\" without an answer", r->method,
		          r->path);
		return queue(r->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, json_error("internal error"));
	}
	return queue(r->conn, status, resp);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	(void)version;

	if (!r) {
		r = req_new(s, conn, url, method);
		*con_cls = r;
		enum MHD_Result ret = on_first(s, r);
		if (!r->route)
			r->handler_called = 1; /* answered without a handler */
		return ret;
	}
	if (r->handler_called && !r->route) {
		*upload_data_size = 0; /* answered in the first call: nothing more */
		return MHD_YES;
	}
	if (*upload_data_size)
		return on_upload(s, r, upload_data, upload_data_size);
	if (!r->handler_called)
		return run_handler(s, r);
	return on_resumed(s, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	struct http_req *r = *con_cls;
	(void)conn;
	(void)toe;
	if (!r)
		return;
	*con_cls = NULL;
	pthread_mutex_lock(&s->mu);
	r->conn = NULL;
	if (r->mhd_suspended) {
		/* MHD dropped a suspended connection (it does not, short of a
		 * stop we never make with any left); keep the books right */
		r->mhd_suspended = 0;
		s->nsuspended--;
		owed_remove(s, r);
		r->forced = 1;
		pthread_cond_broadcast(&s->cv);
	}
	s->nactive--;
	pthread_cond_broadcast(&s->cv);
	int last = req_unref_locked(r);
	pthread_mutex_unlock(&s->mu);
	if (last)
		req_free(r);
}

/* ---- the request API ---------------------------------------------------- */

const char *http_req_method(const struct http_req *r)
{
	return r->method;
}

const char *http_req_path(const struct http_req *r)
{
	return r->path;
}

/* Valid while the request is unanswered: MHD does not touch a suspended
 * connection's headers, so the responder thread may read them too. */
const char *http_req_header(struct http_req *r, const char *name)
{
	return r->conn ? MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name) : NULL;
}

const char *http_req_query(struct http_req *r, const char *name)
{
	return r->conn ? MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name) : NULL;
}

const char *http_req_body(const struct http_req *r, size_t *len)
{
	if (len)
		*len = r->body.len;
	return r->body.data ? r->body.data : "";
}

struct arena *http_req_arena(struct http_req *r)
{
	return &r->arena;
}

/* http_suspend: called by the handler, on its thread, before it hands r to
 * the thread that will answer. */
void http_suspend(struct http_req *r)
{
	r->suspend_wanted = 1;
}

int http_set_header(struct http_req *r, const char *name, const char *value)
{
	if (!name || !value || strpbrk(name, "\r\n:") || strpbrk(value, "\r\n"))
		return ERR_INVAL;
	if (r->nhdr == HTTP_MAX_EXTRA_HEADERS)
		return ERR_FULL;
	r->hdr_name[r->nhdr] = arena_strdup(&r->arena, name);
	r->hdr_value[r->nhdr] = arena_strdup(&r->arena, value);
	r->nhdr++;
	return 0;
}

/*
 * http_respond: any thread, exactly once per request. Before the handler
 * returns it only leaves the answer for the MHD thread; after a suspension
 * it resumes the connection. r must not be touched after this call.
 */
void http_respond(struct http_req *r, unsigned int status, const char *content_type,
                  const char *body, size_t len)
{
	struct http_server *s = r->srv;
	struct MHD_Response *resp = response_new(content_type, body, len);
	int free_req = 0, free_srv = 0;

	if (resp)
		for (int i = 0; i < r->nhdr; i++)
			MHD_add_response_header(resp, r->hdr_name[i], r->hdr_value[i]);
	if (!resp)
		resp = json_error("internal error");

	pthread_mutex_lock(&s->mu);
	if (r->answered) {
		pthread_mutex_unlock(&s->mu);
		if (resp)
			MHD_destroy_response(resp);
		log_error("http.double_answer", "%s \"%s\" answered twice", r->method, r->path);
		return;
	}
	r->answered = 1;
	if (r->in_handler) {
		r->resp = resp;
		r->status = resp ? status : MHD_HTTP_INTERNAL_SERVER_ERROR;
		pthread_mutex_unlock(&s->mu);
		return;
	}
	if (r->forced) {
		/* the server already answered 503 at shutdown */
		free_req = req_unref_locked(r);
		free_srv = owed_drop_locked(s);
		pthread_mutex_unlock(&s->mu);
		if (resp)
			MHD_destroy_response(resp);
		if (free_req)
			req_free(r);
		if (free_srv)
			server_free(s);
		return;
	}
	r->resp = resp;
	r->status = resp ? status : MHD_HTTP_INTERNAL_SERVER_ERROR;
	owed_remove(s, r);
	MHD_resume_connection(r->conn);
	/* MHD's reference is alive until the resumed call completes, so this
	 * never frees r */
	req_unref_locked(r);
	free_srv = owed_drop_locked(s);
	pthread_mutex_unlock(&s->mu);
	if (free_srv)
		server_free(s);
}

/* ---- start and stop ------------------------------------------------------- */

/* "host:port", "[v6]:port" or ":port" → getaddrinfo result. */
static int resolve(const char *listen, struct addrinfo **out)
{
	char host[256];
	const char *colon = strrchr(listen, ':');
	const char *h = listen;
	size_t hlen;

	if (!colon || !colon[1])
		return ERR_INVAL;
	hlen = (size_t)(colon - listen);
	if (hlen >= 2 && h[0] == '[' && h[hlen - 1] == ']') {
		h++;
		hlen -= 2;
	}
	if (hlen >= sizeof(host))
		return ERR_INVAL;
	memcpy(host, h, hlen);
	host[hlen] = '\0';

	char *end;
	errno = 0;
	long port = strtol(colon + 1, &end, 10);
	if (errno || *end || port < 0 || port > 65535)
		return ERR_INVAL;

	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	int rc = getaddrinfo(hlen ? host : NULL, colon + 1, &hints, out);
	if (rc != 0) {
		log_error("http.listen", "could not resolve \"%s\": %s", listen, gai_strerror(rc));
		return ERR_INVAL;
	}
	return 0;
}

static uint16_t port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
}

/*
 * http_server_start: see http.h. ERR_INVAL for a bad listen address or
 * arguments, ERR_IO when MHD cannot start (port taken...; logged).
 */
int http_server_start(const char *listen, int threads, size_t max_body,
                      const struct http_route *routes, int nroutes, struct http_server **out)
{
	struct addrinfo *ai = NULL;
	struct http_server *s = NULL;
	int rc;

	*out = NULL;
	if (!listen || threads < 1 || threads > 256 || max_body == 0 || nroutes < 0 ||
	    (nroutes > 0 && !routes))
		return ERR_INVAL;
	rc = resolve(listen, &ai);
	if (rc)
		return rc;

	s = xcalloc(1, sizeof(*s));
	s->max_body = max_body;
	s->routes = routes;
	s->nroutes = nroutes;
	s->stop_grace_ms = HTTP_STOP_GRACE_MS;
	pthread_mutex_init(&s->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cv, &ca);
	pthread_condattr_destroy(&ca);

	/* epoll with a pool of threads; poll with one (libmicrohttpd 0.9.75's
	 * epoll mode stalls past ~128 connections on a single thread) */
	unsigned int flags =
	        (threads > 1 ? MHD_USE_EPOLL_INTERNAL_THREAD : MHD_USE_POLL_INTERNAL_THREAD) |
	        MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct MHD_OptionItem opts[] = {
	        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_log, NULL}, /* first, or MHD warns */
	        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s},
	        {MHD_OPTION_CONNECTION_TIMEOUT, HTTP_CONN_TIMEOUT_S, NULL},
	        {MHD_OPTION_CONNECTION_LIMIT, HTTP_MAX_CONNECTIONS, NULL},
	        {MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONN_MEMORY, NULL},
	        {MHD_OPTION_LISTEN_BACKLOG_SIZE, HTTP_BACKLOG, NULL},
	        {MHD_OPTION_SOCK_ADDR, 0, ai->ai_addr},
	        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, threads, NULL},
	        {MHD_OPTION_END, 0, NULL},
	};
	/* the port argument only labels MHD's messages: the address wins */
	s->d = MHD_start_daemon(flags, port_of(ai->ai_addr), NULL, NULL, on_access, s,
	                        MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
	freeaddrinfo(ai);
	if (!s->d) {
		log_error("http.listen", "could not listen on \"%s\"", listen);
		server_free(s);
		return ERR_IO;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info ? (int)info->port : 0;
	*out = s;
	return 0;
}

int http_server_port(const struct http_server *s)
{
	return s->port;
}

void http__set_stop_grace_ms(struct http_server *s, int ms)
{
	s->stop_grace_ms = ms;
}

int http_server_pending(struct http_server *s)
{
	pthread_mutex_lock(&s->mu);
	int n = s->nowed;
	pthread_mutex_unlock(&s->mu);
	return n;
}

/* Waits on s->cv (s->mu held) until *counter is 0 or deadline passes. */
static void wait_zero(struct http_server *s, const int *counter, const struct timespec *deadline)
{
	while (*counter > 0)
		if (pthread_cond_timedwait(&s->cv, &s->mu, deadline) != 0)
			break;
}

/*
 * http_server_stop: see http.h and the shutdown paragraph above. Suspended
 * requests get HTTP_STOP_GRACE_MS to be answered by their responders, then
 * 503. Call it from a thread that is not an MHD thread.
 */
void http_server_stop(struct http_server *s)
{
	struct timespec dl;
	int free_srv;

	if (!s)
		return;
	atomic_store(&s->stopping, 1);

	pthread_mutex_lock(&s->mu);
	dl = clock_deadline(CLOCK_MONOTONIC, s->stop_grace_ms);
	while (s->owed_head)
		if (pthread_cond_timedwait(&s->cv, &s->mu, &dl) != 0)
			break;
	s->forcing = 1;
	int nforced = 0;
	while (s->owed_head) {
		struct http_req *r = s->owed_head;
		owed_remove(s, r);
		r->forced = 1;
		r->resp = json_error("shutting down");
		r->status = MHD_HTTP_SERVICE_UNAVAILABLE;
		MHD_resume_connection(r->conn);
		nforced++;
	}
	/* let answers already queued reach their clients (a request
	 * completes once its response is sent), then make sure MHD has
	 * picked up every resumed connection */
	dl = clock_deadline(CLOCK_MONOTONIC, HTTP_FLUSH_MS);
	wait_zero(s, &s->nactive, &dl);
	dl = clock_deadline(CLOCK_MONOTONIC, HTTP_STOP_GRACE_MS);
	wait_zero(s, &s->nsuspended, &dl);
	int stuck = s->nsuspended;
	pthread_mutex_unlock(&s->mu);
	if (nforced)
		log_warn("http.stop", "answered %d requests 503 at shutdown", nforced);
	if (stuck) {
		/* MHD would abort the process if stopped now; leave it running
		 * (the process is on its way out) rather than crash */
		log_error("http.stop", "%d connections still suspended; server left running",
		          stuck);
		return;
	}
	MHD_stop_daemon(s->d);
	s->d = NULL;

	pthread_mutex_lock(&s->mu);
	s->dead = 1;
	free_srv = s->nowed == 0;
	pthread_mutex_unlock(&s->mu);
	if (free_srv)
		server_free(s);
}
