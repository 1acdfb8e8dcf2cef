/*
 * http.h - a small HTTP server over libmicrohttpd, with routing, bodies
 * collected up to a cap, and responses that may come later from another
 * thread (so a webhook can wait for its group commit without holding a
 * server thread).
 *
 * A handler must answer every request exactly once with http_respond:
 * either before it returns, or after calling http_suspend, from any thread.
 * The server answers by itself: 404 (no route), 405 (route, wrong method),
 * 413 (body over max_body; the handler is not called).
 */
#ifndef MUNIM_HTTP_H
#define MUNIM_HTTP_H

#include <stddef.h>

#include "core/arena.h"

struct http_req;
struct http_server;

typedef void (*http_handler_fn)(struct http_req *r, void *ud);

struct http_route {
	const char *method; /* "GET", "POST" */
	const char *path;   /* exact path, or a prefix when prefix is set */
	int prefix;
	http_handler_fn fn;
	void *ud;
	/* Optional: told the status when the server answers a request for this
	 * route by itself (413 body too large), so the route's owner can count
	 * it. Called on a server thread; must not block. */
	void (*on_refused)(unsigned int status, void *ud);
};

const char *http_req_method(const struct http_req *r);
const char *http_req_path(const struct http_req *r);
/* Header value (case-insensitive name) or NULL. Valid until the response. */
const char *http_req_header(struct http_req *r, const char *name);
/* Query-string argument or NULL. Valid until the response. */
const char *http_req_query(struct http_req *r, const char *name);
/* The whole body (NUL-terminated copy; *len excludes the NUL). */
const char *http_req_body(const struct http_req *r, size_t *len);
/* An arena that lives until the response is sent. */
struct arena *http_req_arena(struct http_req *r);

/* Extra headers one response may carry (beyond Content-Type). */
/* Connections a server holds open at once; more wait in the listen queue. */
#define HTTP_MAX_CONNECTIONS 4096

#define HTTP_MAX_EXTRA_HEADERS 4

/*
 * http_set_header adds name: value to the response r will get; call it
 * before http_respond, from the thread that will respond. Both strings are
 * copied. Returns 0, or ERR_FULL when HTTP_MAX_EXTRA_HEADERS are already
 * set, ERR_INVAL when a name or value holds CR or LF.
 */
int http_set_header(struct http_req *r, const char *name, const char *value);

/* http_suspend: the handler will answer later, from any thread. */
void http_suspend(struct http_req *r);
/* http_respond copies body; content_type NULL means text/plain. */
void http_respond(struct http_req *r, unsigned int status, const char *content_type,
                  const char *body, size_t len);

/*
 * http_server_start listens on listen ("host:port", port 0 = any free port)
 * with `threads` server threads. routes must outlive the server.
 */
int http_server_start(const char *listen, int threads, size_t max_body,
                      const struct http_route *routes, int nroutes, struct http_server **out);
/* The port actually bound. */
int http_server_port(const struct http_server *s);
/* Answers new requests 503, gives suspended ones a grace period (then
 * 503), stops, frees (server.c has the order). NULL is a no-op. */
void http_server_stop(struct http_server *s);

#endif
