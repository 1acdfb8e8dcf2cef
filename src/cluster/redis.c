/*
 * redis.c - one connection to Redis (hiredis, blocking with timeouts) and
 * the scripts run on it.
 *
 * Design
 *   A caller on a hot path (the sender's network thread) must never wait
 *   on Redis for long, and must not pay a failed connect on every call
 *   while Redis is down. So:
 *     - the connect and every command are bounded by timeout_ms (tens of
 *       ms: loopback or one network hop);
 *     - any failure to talk (refused, reset, timed out, a torn reply)
 *       drops the context - after a timeout a blocking hiredis context may
 *       still receive the late reply, so it is never reused - and
 *       schedules the next connect: 250 ms later, doubling, at most 1 s;
 *     - until then every call fails at once with ERR_AGAIN, without I/O.
 *
 *       connected --command fails--> down (retry_at = now + backoff)
 *           ^                          |
 *           +--connect succeeds--------+ (the first call at or after retry_at)
 *
 *   Everything runs as Lua scripts (EVALSHA): one round trip per
 *   operation, atomic on the server. A script's SHA1 comes from SCRIPT
 *   LOAD the first time it is needed; a NOSCRIPT answer (Redis restarted
 *   or flushed its scripts) loads it again and runs it once more.
 *
 * Invariants: ctx is NULL or connected and authenticated; retry_at only
 * matters while ctx is NULL; backoff_ms is 0 after a success.
 *
 * Threading: a struct cluster_redis belongs to one thread (hiredis
 * contexts are not thread-safe). SIGPIPE must be ignored by the process
 * (serve does, core/proc.c): a write to a server that went away would
 * otherwise kill it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "cluster/cluster_internal.h"
#include "core/err.h"
#include "core/xalloc.h"

#define REDIS_DEFAULT_PORT   6379
#define REDIS_BACKOFF_MIN_MS 250
#define REDIS_BACKOFF_MAX_MS 1000

struct cluster_redis {
	char *host;     /* TCP: host name or address; NULL for a socket */
	int port;       /* TCP */
	char *path;     /* unix socket path, or NULL */
	char *user;     /* ACL user, or NULL */
	char *password; /* NULL: no AUTH */
	int db;
	int64_t timeout_ms;
	char where[160];   /* for messages: no password */
	redisContext *ctx; /* NULL while down */
	int64_t retry_at;  /* wall ms of the next connect while down */
	int64_t backoff_ms;
	char err[200];
};

/* A decimal number of at most 9 digits in s[0..n): 0, or -1. */
static int parse_small(const char *s, size_t n, int *out)
{
	if (n == 0 || n > 9)
		return -1;
	int v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static char *dup_n(const char *s, size_t n)
{
	char *d = xmalloc(n + 1);
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* parse_unix: "path[?db=N]". */
static int parse_unix(struct cluster_redis *r, const char *s)
{
	const char *q = strchr(s, '?');
	size_t n = q ? (size_t)(q - s) : strlen(s);
	if (n == 0 || s[0] != '/')
		return ERR_INVAL;
	if (q && (strncmp(q, "?db=", 4) != 0 || parse_small(q + 4, strlen(q + 4), &r->db) != 0))
		return ERR_INVAL;
	r->path = dup_n(s, n);
	snprintf(r->where, sizeof(r->where), "unix:%.120s", r->path);
	return 0;
}

/* parse_tcp: "[[user]:password@]host[:port][/db]" (after "redis://"). */
static int parse_tcp(struct cluster_redis *r, const char *s)
{
	const char *at = strrchr(s, '@');
	if (at) {
		const char *colon = memchr(s, ':', (size_t)(at - s));
		if (!colon) /* redis://password@host, as some clients take it */
			r->password = dup_n(s, (size_t)(at - s));
		else {
			if (colon > s)
				r->user = dup_n(s, (size_t)(colon - s));
			r->password = dup_n(colon + 1, (size_t)(at - colon - 1));
		}
		s = at + 1;
	}
	const char *slash = strchr(s, '/');
	size_t hp = slash ? (size_t)(slash - s) : strlen(s);
	if (slash && slash[1] && parse_small(slash + 1, strlen(slash + 1), &r->db) != 0)
		return ERR_INVAL;
	const char *host = s, *port = NULL;
	size_t hn = hp;
	if (s[0] == '[') { /* [v6 address] */
		const char *close = memchr(s, ']', hp);
		if (!close)
			return ERR_INVAL;
		host = s + 1;
		hn = (size_t)(close - s - 1);
		if (close + 1 < s + hp) {
			if (close[1] != ':')
				return ERR_INVAL;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(s, ':', hp);
		if (colon) {
			hn = (size_t)(colon - s);
			port = colon + 1;
		}
	}
	r->port = REDIS_DEFAULT_PORT;
	if (port && (parse_small(port, (size_t)(s + hp - port), &r->port) != 0 || r->port < 1 ||
	             r->port > 65535))
		return ERR_INVAL;
	if (hn == 0)
		return ERR_INVAL;
	r->host = dup_n(host, hn);
	snprintf(r->where, sizeof(r->where), "redis://%.100s:%d/%d", r->host, r->port, r->db);
	return 0;
}

static void release_fields(struct cluster_redis *r)
{
	free(r->host);
	free(r->path);
	free(r->user);
	free(r->password);
}

static int parse_url(struct cluster_redis *r, const char *url)
{
	if (!url || !*url)
		return ERR_INVAL;
	if (strncmp(url, "redis://", 8) == 0)
		return parse_tcp(r, url + 8);
	if (strncmp(url, "unix://", 7) == 0)
		return parse_unix(r, url + 7);
	if (url[0] == '/')
		return parse_unix(r, url);
	return ERR_INVAL;
}

int cluster_redis_check(const char *url)
{
	struct cluster_redis r;
	memset(&r, 0, sizeof(r));
	int rc = parse_url(&r, url);
	release_fields(&r);
	return rc;
}

int cluster_redis_new(const char *url, int64_t timeout_ms, struct cluster_redis **out)
{
	*out = NULL;
	struct cluster_redis *r = xcalloc(1, sizeof(*r));
	if (timeout_ms < 1 || parse_url(r, url) != 0) {
		release_fields(r);
		free(r);
		return ERR_INVAL;
	}
	r->timeout_ms = timeout_ms;
	*out = r;
	return 0;
}

static void drop(struct cluster_redis *r)
{
	if (r->ctx)
		redisFree(r->ctx);
	r->ctx = NULL;
}

void cluster_redis_free(struct cluster_redis *r)
{
	if (!r)
		return;
	drop(r);
	release_fields(r);
	free(r);
}

const char *cluster_redis_where(const struct cluster_redis *r)
{
	return r->where;
}

const char *cluster_redis_errmsg(const struct cluster_redis *r)
{
	return r->err;
}

/*
 * down drops the connection after a failure to talk and schedules the next
 * connect. The code: ERR_TIMEOUT when the wait ran out, else ERR_IO.
 */
static int down(struct cluster_redis *r, int64_t now_ms, const char *what)
{
	int timed_out = 0;
	if (r->ctx) {
		timed_out = r->ctx->err == REDIS_ERR_IO &&
		            (errno == EAGAIN || errno == EWOULDBLOCK || errno == ETIMEDOUT ||
		             strstr(r->ctx->errstr, "temporarily unavailable") ||
		             strstr(r->ctx->errstr, "timed out"));
		snprintf(r->err, sizeof(r->err), "could not %s: %s", what,
		         timed_out           ? "timed out"
		         : r->ctx->errstr[0] ? r->ctx->errstr
		                             : "no answer");
	} else {
		snprintf(r->err, sizeof(r->err), "could not %s: out of memory", what);
	}
	drop(r);
	r->backoff_ms = r->backoff_ms == 0                         ? REDIS_BACKOFF_MIN_MS
	                : r->backoff_ms * 2 > REDIS_BACKOFF_MAX_MS ? REDIS_BACKOFF_MAX_MS
	                                                           : r->backoff_ms * 2;
	r->retry_at = now_ms + r->backoff_ms;
	return timed_out ? ERR_TIMEOUT : ERR_IO;
}

/* command runs one command; NULL reply: the connection is dropped (down). */
static redisReply *command(struct cluster_redis *r, int argc, const char **argv)
{
	size_t lens[CLUSTER_ARGS_MAX + 4];
	for (int i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	return redisCommandArgv(r->ctx, argc, argv, lens);
}

/* A reply that is an error: its text into err, the reply freed. */
static int refused(struct cluster_redis *r, redisReply *rep, const char *what)
{
	snprintf(r->err, sizeof(r->err), "could not %s: %.*s", what,
	         rep->str ? (int)(rep->len < 150 ? rep->len : 150) : 0, rep->str ? rep->str : "");
	freeReplyObject(rep);
	return ERR_PROTO;
}

/* connect_now opens the connection, authenticates and selects the db. */
static int connect_now(struct cluster_redis *r, int64_t now_ms)
{
	struct timeval tv = {(time_t)(r->timeout_ms / 1000),
	                     (suseconds_t)(r->timeout_ms % 1000) * 1000};
	r->ctx = r->path ? redisConnectUnixWithTimeout(r->path, tv)
	                 : redisConnectWithTimeout(r->host, r->port, tv);
	if (!r->ctx || r->ctx->err)
		return down(r, now_ms, "connect");
	if (redisSetTimeout(r->ctx, tv) != REDIS_OK)
		return down(r, now_ms, "set the timeout");
	char db[16];
	const char *auth[3] = {"AUTH", r->user ? r->user : r->password, r->password};
	const char *select[2] = {"SELECT", db};
	snprintf(db, sizeof(db), "%d", r->db);
	for (int step = 0; step < 2; step++) {
		if (step == 0 && !r->password)
			continue;
		if (step == 1 && r->db == 0)
			continue;
		redisReply *rep =
		        step == 0 ? command(r, r->user ? 3 : 2, auth) : command(r, 2, select);
		if (!rep)
			return down(r, now_ms, step == 0 ? "authenticate" : "select the database");
		if (rep->type == REDIS_REPLY_ERROR) {
			refused(r, rep, step == 0 ? "authenticate" : "select the database");
			/* a refusal is not a network fault, but this connection is
			 * of no use: retried at the usual pace */
			char keep[sizeof(r->err)];
			memcpy(keep, r->err, sizeof(keep));
			down(r, now_ms, "connect");
			memcpy(r->err, keep, sizeof(keep));
			return ERR_PROTO;
		}
		freeReplyObject(rep);
	}
	return 0;
}

/* load asks the server for s's SHA1 (SCRIPT LOAD). */
static int load(struct cluster_redis *r, struct cluster__script *s, int64_t now_ms)
{
	const char *argv[3] = {"SCRIPT", "LOAD", s->text};
	redisReply *rep = command(r, 3, argv);
	if (!rep)
		return down(r, now_ms, "load a script");
	if (rep->type == REDIS_REPLY_ERROR)
		return refused(r, rep, "load a script");
	if (rep->type != REDIS_REPLY_STRING || rep->len != 40) {
		freeReplyObject(rep);
		snprintf(r->err, sizeof(r->err), "could not load script %s: unexpected answer",
		         s->name);
		return ERR_PROTO;
	}
	memcpy(s->sha, rep->str, 40);
	s->sha[40] = '\0';
	freeReplyObject(rep);
	return 0;
}

int cluster__eval(struct cluster_redis *r, struct cluster__script *s, int nkeys, int argc,
                  const char *const *argv, int64_t now_ms, redisReply **out)
{
	*out = NULL;
	if (argc > CLUSTER_ARGS_MAX || nkeys > argc)
		return ERR_INVAL;
	if (!r->ctx) {
		if (now_ms < r->retry_at) {
			/* r->err still says why it went down */
			return ERR_AGAIN;
		}
		int rc = connect_now(r, now_ms);
		if (rc != 0)
			return rc;
	}
	char nk[16];
	snprintf(nk, sizeof(nk), "%d", nkeys);
	const char *args[CLUSTER_ARGS_MAX + 3];
	args[0] = "EVALSHA";
	args[2] = nk;
	memcpy(args + 3, argv, (size_t)argc * sizeof(*argv));
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!s->sha[0]) {
			int rc = load(r, s, now_ms);
			if (rc != 0)
				return rc;
		}
		args[1] = s->sha;
		redisReply *rep = command(r, argc + 3, args);
		if (!rep)
			return down(r, now_ms, "run a script");
		if (rep->type == REDIS_REPLY_ERROR && rep->str &&
		    strncmp(rep->str, "NOSCRIPT", 8) == 0) {
			freeReplyObject(rep);
			s->sha[0] = '\0'; /* the server forgot it: load it again */
			continue;
		}
		if (rep->type == REDIS_REPLY_ERROR)
			return refused(r, rep, "run a script");
		r->backoff_ms = 0;
		r->err[0] = '\0';
		*out = rep;
		return 0;
	}
	snprintf(r->err, sizeof(r->err), "could not run script %s: the server keeps forgetting it",
	         s->name);
	return ERR_PROTO;
}

int64_t cluster__int(const redisReply *rep, size_t i, int64_t def)
{
	if (!rep || rep->type != REDIS_REPLY_ARRAY || i >= rep->elements)
		return def;
	const redisReply *e = rep->element[i];
	if (e->type == REDIS_REPLY_INTEGER)
		return (int64_t)e->integer;
	if (e->type == REDIS_REPLY_STRING && e->str) {
		char *end;
		long long v = strtoll(e->str, &end, 10);
		return end != e->str ? (int64_t)v : def;
	}
	return def;
}
