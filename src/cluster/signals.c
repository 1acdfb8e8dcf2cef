/*
 * signals.c - the controller's signals, summed over the fleet's processes.
 *
 * Each process's controller samples its own process once a second:
 * messages waiting as its gauges count them, the reply-latency histogram,
 * webhook answers, the AI's calls, its sender's view of the providers
 * (struct cluster_signals). In scale-out no process sees the whole: the
 * ingest process counts webhooks, the sender process replies. So with
 * --redis each controller publishes its sample under its own key
 * (munim:signals:<node>, a TTL of CLUSTER_SIGNALS_TTL_MS) and lists itself
 * in the sorted set munim:signals (score: when its key expires); the same
 * script (EXCHANGE_LUA) drops the expired and returns every live sample,
 * which cluster_signals_sum adds up. A process that stops publishing drops
 * out within CLUSTER_SIGNALS_TTL_MS; its counters then leave the sums, which
 * the controller's window sees as counts going back (its differences are
 * clamped at zero).
 *
 * The text form: "1 depth lat[0..14] requests errors refused ai_lat[0..14]
 * ai_calls ai_failed bsps bsps_up bsps_delivering sms ai_configured
 * ai_refusing", decimal, space separated; the leading 1 is the version (a
 * sample of another version is skipped, so processes of two releases can
 * run side by side during a rollout).
 *
 * Without Redis the controller uses its own sample (cluster_view_exchange
 * says 0), and says so in the log once per outage.
 *
 * Threading: a struct cluster_view belongs to the controller thread; the
 * pure functions run anywhere.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/cluster_internal.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"

#define SIGNALS_VERSION 1
/* Most processes summed (more are ignored: far beyond any fleet). */
#define SIGNALS_MAX_NODES 4096

/*
 * KEYS[1] the set of publishers, KEYS[2] this process's key; ARGV: its
 * name, the TTL, its sample. Returns every live sample (this one included).
 */
static const char EXCHANGE_LUA[] =
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
        "local ttl = tonumber(ARGV[2])\n"
        "redis.call('SET', KEYS[2], ARGV[3], 'PX', ttl)\n"
        "redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])\n"
        "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)\n"
        "redis.call('PEXPIRE', KEYS[1], ttl)\n"
        "local out = {}\n"
        "for _, n in ipairs(redis.call('ZRANGE', KEYS[1], 0, 4095)) do\n"
        "  local v = redis.call('GET', '" CLUSTER_PREFIX "signals:' .. n)\n"
        "  if v then out[#out + 1] = v end\n"
        "end\n"
        "return out\n";

struct cluster_view {
	struct cluster_redis *redis;
	struct cluster__script exchange;
	char *node;
	char *key;
	int shared;                  /* the last exchange answered */
	int known;                   /* an exchange was tried */
	struct cluster_signals last; /* the last sum, while shared */
	struct buf text;
};

/* The fields in text order, as pointers to 64-bit slots, and the ints apart. */
static void fields(struct cluster_signals *s, uint64_t **u, int64_t **d, int **ints)
{
	int k = 0;
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++)
		u[k++] = &s->lat[i];
	u[k++] = &s->requests;
	u[k++] = &s->errors;
	u[k++] = &s->refused;
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++)
		u[k++] = &s->ai_lat[i];
	u[k++] = &s->ai_calls;
	u[k++] = &s->ai_failed;
	*d = &s->depth;
	ints[0] = &s->bsps;
	ints[1] = &s->bsps_up;
	ints[2] = &s->bsps_delivering;
	ints[3] = &s->sms;
	ints[4] = &s->ai_configured;
	ints[5] = &s->ai_refusing;
}

#define SIGNALS_U64 (2 * (METRICS_LAT_BUCKETS + 1) + 5)

void cluster_signals_encode(const struct cluster_signals *s, struct buf *b)
{
	struct cluster_signals c = *s;
	uint64_t *u[SIGNALS_U64];
	int64_t *d;
	int *ints[6];
	fields(&c, u, &d, ints);
	buf_printf(b, "%d %" PRId64, SIGNALS_VERSION, *d);
	for (int i = 0; i < SIGNALS_U64; i++)
		buf_printf(b, " %" PRIu64, *u[i]);
	for (int i = 0; i < 6; i++)
		buf_printf(b, " %d", *ints[i]);
}

/* next_num reads one decimal (a leading '-' allowed when sign) from *p. */
static int next_num(const char **p, const char *end, int sign, int64_t *out)
{
	const char *s = *p;
	while (s < end && *s == ' ')
		s++;
	int neg = 0;
	if (sign && s < end && *s == '-') {
		neg = 1;
		s++;
	}
	if (s >= end || *s < '0' || *s > '9')
		return ERR_PROTO;
	uint64_t v = 0;
	for (; s < end && *s >= '0' && *s <= '9'; s++) {
		if (v > (UINT64_MAX - 9) / 10)
			return ERR_PROTO;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	if (s < end && *s != ' ')
		return ERR_PROTO;
	if (v > (uint64_t)INT64_MAX)
		return ERR_PROTO;
	*out = neg ? -(int64_t)v : (int64_t)v;
	*p = s;
	return 0;
}

int cluster_signals_decode(const char *text, size_t len, struct cluster_signals *out)
{
	const char *p = text, *end = text + len;
	struct cluster_signals s;
	memset(&s, 0, sizeof(s));
	uint64_t *u[SIGNALS_U64];
	int64_t *d;
	int *ints[6];
	fields(&s, u, &d, ints);
	int64_t v;
	if (next_num(&p, end, 0, &v) != 0 || v != SIGNALS_VERSION)
		return ERR_PROTO;
	if (next_num(&p, end, 1, d) != 0)
		return ERR_PROTO;
	for (int i = 0; i < SIGNALS_U64; i++) {
		if (next_num(&p, end, 0, &v) != 0)
			return ERR_PROTO;
		*u[i] = (uint64_t)v;
	}
	for (int i = 0; i < 6; i++) {
		if (next_num(&p, end, 0, &v) != 0 || v > 1000000)
			return ERR_PROTO;
		*ints[i] = (int)v;
	}
	while (p < end && *p == ' ')
		p++;
	if (p != end)
		return ERR_PROTO;
	*out = s;
	return 0;
}

static int imax(int a, int b)
{
	return a > b ? a : b;
}

void cluster_signals_sum(const struct cluster_signals *v, int n, struct cluster_signals *out)
{
	memset(out, 0, sizeof(*out));
	for (int k = 0; k < n; k++) {
		const struct cluster_signals *s = &v[k];
		out->depth += s->depth;
		for (int i = 0; i <= METRICS_LAT_BUCKETS; i++) {
			out->lat[i] += s->lat[i];
			out->ai_lat[i] += s->ai_lat[i];
		}
		out->requests += s->requests;
		out->errors += s->errors;
		out->refused += s->refused;
		out->ai_calls += s->ai_calls;
		out->ai_failed += s->ai_failed;
		/* a process without a sender says nothing of the providers */
		if (s->bsps > 0) {
			out->bsps = imax(out->bsps, s->bsps);
			out->bsps_up = imax(out->bsps_up, s->bsps_up);
			out->bsps_delivering = imax(out->bsps_delivering, s->bsps_delivering);
		}
		out->sms = imax(out->sms, s->sms);
		out->ai_configured = imax(out->ai_configured, s->ai_configured);
		out->ai_refusing = imax(out->ai_refusing, s->ai_refusing);
	}
}

int cluster_signals_went_back(const struct cluster_signals *before,
                              const struct cluster_signals *after)
{
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++)
		if (after->lat[i] < before->lat[i] || after->ai_lat[i] < before->ai_lat[i])
			return 1;
	return after->requests < before->requests || after->errors < before->errors ||
	       after->refused < before->refused || after->ai_calls < before->ai_calls ||
	       after->ai_failed < before->ai_failed;
}

/* ---- the controller's view ------------------------------------------------------- */

int cluster_view_new(const struct config *cfg, const char *node, struct cluster_view **out)
{
	*out = NULL;
	if (!cfg->redis || !*cfg->redis)
		return 0;
	struct cluster_redis *r;
	if (cluster_redis_new(cfg->redis, cfg->redis_timeout_ms, &r) != 0)
		return ERR_INVAL;
	struct cluster_view *v = xcalloc(1, sizeof(*v));
	v->redis = r;
	v->exchange = (struct cluster__script){.name = "signals", .text = EXCHANGE_LUA};
	v->node = xstrdup(node);
	struct buf k;
	buf_init(&k);
	buf_printf(&k, CLUSTER_PREFIX "signals:%s", node);
	v->key = buf_detach(&k);
	buf_init(&v->text);
	*out = v;
	return 0;
}

void cluster_view_free(struct cluster_view *v)
{
	if (!v)
		return;
	cluster_redis_free(v->redis);
	buf_release(&v->text);
	free(v->node);
	free(v->key);
	free(v);
}

/* changed logs the view's move between shared and alone. */
static void changed(struct cluster_view *v, int shared, int processes)
{
	if (shared == v->shared && v->known)
		return;
	if (shared)
		log_info(v->known ? "control.redis_back" : "control.redis_up",
		         "the controller reads the signals of %d process%s through %s", processes,
		         processes == 1 ? "" : "es", cluster_redis_where(v->redis));
	else
		log_warn("control.redis_lost",
		         "could not reach redis at %s (%s): the controller reads this process's "
		         "signals only",
		         cluster_redis_where(v->redis), cluster_redis_errmsg(v->redis));
	v->shared = shared;
	v->known = 1;
}

int cluster_view_exchange(struct cluster_view *v, const struct cluster_signals *mine,
                          struct cluster_signals *all, int *processes)
{
	*all = *mine;
	*processes = 1;
	buf_reset(&v->text);
	cluster_signals_encode(mine, &v->text);
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%d", CLUSTER_SIGNALS_TTL_MS);
	const char *argv[5] = {CLUSTER_PREFIX "signals", v->key, v->node, ttl, v->text.data};
	redisReply *rep;
	int rc = cluster__eval(v->redis, &v->exchange, 2, 5, argv, clock_wall_ms(), &rep);
	if (rc == 0 && rep->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(rep);
		rc = ERR_PROTO;
	}
	if (rc != 0) {
		changed(v, 0, 1); /* logged once per outage */
		return 0;
	}
	size_t n = rep->elements < SIGNALS_MAX_NODES ? rep->elements : SIGNALS_MAX_NODES;
	struct cluster_signals *each = xcalloc(n ? n : 1, sizeof(*each));
	int k = 0;
	for (size_t i = 0; i < n; i++) {
		const redisReply *e = rep->element[i];
		if (e->type == REDIS_REPLY_STRING &&
		    cluster_signals_decode(e->str, e->len, &each[k]) == 0)
			k++;
	}
	freeReplyObject(rep);
	if (k == 0) { /* not even our own: nothing to trust */
		free(each);
		changed(v, 0, 1);
		return 0;
	}
	cluster_signals_sum(each, k, all);
	free(each);
	*processes = k;
	int again = !v->shared || cluster_signals_went_back(&v->last, all);
	changed(v, 1, k);
	v->last = *all;
	return again ? 2 : 1;
}

void cluster_node_name(char *out, size_t cap)
{
	char host[128];
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "localhost");
	host[sizeof(host) - 1] = '\0';
	snprintf(out, cap, "%s/%ld", host, (long)getpid());
}
