/*
 * budget.c - what the senders of a fleet share through Redis: each business
 * number's send budget, who is alive, and which providers are failing.
 *
 * The budget. The Cloud API lets a business number send per_second (80)
 * messages a second however many sender processes send for it, so the
 * token bucket of pace.c moves to Redis: a hash per number
 * (munim:pace:<number>: milli-tokens, refill time, rate, when slowed, when
 * last raised), refilled and spent by one Lua script (BUDGET_LUA) on the
 * server's clock, so that senders on machines whose clocks differ agree.
 * A 130429/429 halves the number's shared rate, which climbs back by a
 * tenth of per_second each quiet second (the same arithmetic as pace.c):
 * the slow-down holds for the whole fleet. To spare a round trip per send,
 * a sender takes up to CLUSTER_BATCH_MAX tokens at once - fewer as more
 * senders share the number, so that the bucket is not held idle in
 * allowances - and spends them locally within BUDGET_ALLOWANCE_MS (unspent
 * ones are dropped: the fleet may under-use the budget, never exceed it).
 * A refusal tells how long until a few tokens are back; the sender answers
 * from that until then without asking again.
 *
 * Liveness and breakers. Every CLUSTER_SENDER_TICK_MS one script
 * (SENDERS_LUA) renews this sender's entry in the sorted set munim:senders
 * (score: when it expires, CLUSTER_SENDER_TTL_MS ahead), drops the expired,
 * counts the live ones, and reads munim:breaker:<provider url> for each
 * provider: until when (server clock, shown to the caller as ms from now)
 * another sender holds it open. A sender whose breaker opens publishes its
 * end there (OPEN_LUA, keeping a later end, with a TTL to it).
 *
 * Without Redis.
 *
 *     UNKNOWN --a script answers--> UP --a call fails or times out--> DOWN
 *        |                           ^                                  |
 *        +--a call fails-------------|------------------------> DOWN    |
 *                                    +--a script answers (retried ~1/s)-+
 *
 *   DOWN: the call that failed, and every take after it, is answered from
 *   a local struct pace at share = per_second / live senders (the count
 *   last seen; --senders before Redis was ever seen), made at the loss:
 *   the fleet together stays within the number's budget as long as the
 *   count was right. Each sender's breakers work alone. The loss and the
 *   return are logged once each (send.redis_lost, send.redis_back).
 *
 *   The count of live senders comes back with Redis one registration at a
 *   time: after a reconnect it may rise at once but falls only after
 *   CLUSTER_SENDER_TTL_MS, so that a loss soon after a Redis restart does
 *   not share the budget among too few.
 *
 * Invariants: tokens held locally were taken from the shared bucket and are
 * spent at most BUDGET_ALLOWANCE_MS after; fallback is non-NULL exactly
 * while DOWN (or UNKNOWN after a failed first call); live >= 1.
 *
 * Threading: the sender's network thread makes every call but
 * cluster_sender_stats/render, which read the atomics from any thread.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/cluster_internal.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "send/pace.h"

/* Tokens taken from Redis are spent within this long, or dropped. */
#define BUDGET_ALLOWANCE_MS 500
/* A number's shared bucket is forgotten by Redis after this long unused. */
#define BUDGET_IDLE_MS 60000
/* Local entries unused this long are dropped (at a tick). */
#define BUDGET_SWEEP_MS 60000
#define BUDGET_INITIAL  64

/*
 * KEYS[1] the number's bucket; ARGV: per_second, tokens wanted (take),
 * "take" or "slow", the key's idle TTL. Returns {granted, wait ms (when
 * none granted: until min(wanted, rate/10) tokens are back), rate}.
 */
static const char BUDGET_LUA[] =
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
        "local per = tonumber(ARGV[1])\n"
        "local want = tonumber(ARGV[2])\n"
        "local h = redis.call('HMGET', KEYS[1], 'k', 'l', 'r', 's', 'u')\n"
        "local tok, last, rate, slowed, raised\n"
        "if h[1] then\n"
        "  tok = tonumber(h[1]); last = tonumber(h[2]); rate = tonumber(h[3])\n"
        "  slowed = tonumber(h[4]); raised = tonumber(h[5])\n"
        "  if rate > per then rate = per end\n"
        "  if rate < 1 then rate = 1 end\n"
        "else\n"
        "  tok = per * 1000; last = now; rate = per; slowed = 0; raised = now\n"
        "end\n"
        "if now > last then\n"
        "  local dt = now - last\n"
        "  last = now\n"
        "  if rate < per then\n"
        "    local step = math.max(1, math.floor(per / 10))\n"
        "    local from = math.max(raised, slowed)\n"
        "    local steps = math.floor((now - from) / 1000)\n"
        "    if steps > 0 then\n"
        "      rate = math.min(per, rate + steps * step)\n"
        "      raised = from + steps * 1000\n"
        "    end\n"
        "  end\n"
        "  local cap = rate * 1000\n"
        "  local add = cap\n"
        "  if dt < 1000 then add = dt * rate end\n"
        "  tok = math.min(cap, tok + add)\n"
        "end\n"
        "local granted, wait = 0, 0\n"
        "if ARGV[3] == 'slow' then\n"
        "  rate = math.max(1, math.floor(rate / 2))\n"
        "  if tok > rate * 1000 then tok = rate * 1000 end\n"
        "  slowed = last; raised = last\n"
        "else\n"
        "  granted = math.min(want, math.floor(tok / 1000))\n"
        "  tok = tok - granted * 1000\n"
        "  if granted == 0 then\n"
        "    local need = math.min(want, math.max(1, math.ceil(rate / 10)))\n"
        "    wait = math.ceil((need * 1000 - tok) / rate)\n"
        "  end\n"
        "end\n"
        "redis.call('HSET', KEYS[1], 'k', tok, 'l', last, 'r', rate, 's', slowed, 'u', raised)\n"
        "redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]))\n"
        "return {granted, wait, rate}\n";

/*
 * KEYS[1] the live senders' sorted set, KEYS[2..] breaker keys; ARGV: this
 * sender, the registration's TTL. Returns {live senders, then for each
 * breaker key the ms it stays open (0: not open)}.
 */
static const char SENDERS_LUA[] =
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
        "local ttl = tonumber(ARGV[2])\n"
        "redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])\n"
        "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. now)\n"
        "redis.call('PEXPIRE', KEYS[1], ttl)\n"
        "local out = {redis.call('ZCARD', KEYS[1])}\n"
        "for i = 2, #KEYS do\n"
        "  local left = (tonumber(redis.call('GET', KEYS[i]) or '0') or 0) - now\n"
        "  if left < 0 then left = 0 end\n"
        "  out[#out + 1] = left\n"
        "end\n"
        "return out\n";

/* KEYS[1] a breaker key; ARGV[1] ms it stays open from now. Keeps a later end. */
static const char OPEN_LUA[] =
        "local t = redis.call('TIME')\n"
        "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
        "local left = tonumber(ARGV[1])\n"
        "local upto = now + left\n"
        "local cur = tonumber(redis.call('GET', KEYS[1]) or '0') or 0\n"
        "if upto > cur then redis.call('SET', KEYS[1], upto, 'PX', left) end\n"
        "return 1\n";

enum budget_state { BUDGET_UNKNOWN, BUDGET_UP, BUDGET_DOWN };

/* A number's local allowance: tokens taken from its shared bucket. */
struct allowance {
	struct allowance *next;
	uint64_t hash;
	int tokens;
	int64_t expires_ms;   /* tokens are dropped from then */
	int64_t denied_until; /* Redis said no until then: no need to ask */
	int rate;             /* the number's shared rate, as last heard */
	int64_t last_ms;      /* last asked about */
	char key[];
};

struct cluster_sender {
	struct cluster_redis *redis;
	struct cluster__script budget, senders, open;
	char *node;
	int per_second;
	enum budget_state state;
	int live;         /* live senders, last seen, or --senders */
	int64_t up_since; /* when Redis last came (back) up, now_ms's clock */
	struct pace *fallback;
	int64_t tick_at;
	struct allowance **tab;
	size_t cap, n;
	struct buf scratch;
	/* for any thread */
	_Atomic int up_now, live_now, share_now;
	_Atomic uint64_t lost, calls, fallbacks, forced;
};

static int share_of(const struct cluster_sender *cs)
{
	int s = cs->per_second / (cs->live > 0 ? cs->live : 1);
	return s > 0 ? s : 1;
}

int cluster_sender_new(const struct config *cfg, const char *node, struct cluster_sender **out)
{
	*out = NULL;
	if (cfg->pace_per_number < 0 || cfg->senders < 1)
		return ERR_INVAL;
	struct cluster_redis *r;
	if (cluster_redis_new(cfg->redis, cfg->redis_timeout_ms, &r) != 0)
		return ERR_INVAL;
	struct cluster_sender *cs = xcalloc(1, sizeof(*cs));
	cs->redis = r;
	cs->budget = (struct cluster__script){.name = "budget", .text = BUDGET_LUA};
	cs->senders = (struct cluster__script){.name = "senders", .text = SENDERS_LUA};
	cs->open = (struct cluster__script){.name = "open", .text = OPEN_LUA};
	cs->node = xstrdup(node);
	cs->per_second = (int)cfg->pace_per_number;
	cs->live = (int)cfg->senders;
	cs->state = BUDGET_UNKNOWN;
	cs->cap = BUDGET_INITIAL;
	cs->tab = xcalloc(cs->cap, sizeof(*cs->tab));
	buf_init(&cs->scratch);
	atomic_store(&cs->live_now, cs->live);
	atomic_store(&cs->share_now, share_of(cs));
	*out = cs;
	return 0;
}

void cluster_sender_free(struct cluster_sender *cs)
{
	if (!cs)
		return;
	for (size_t i = 0; i < cs->cap; i++) {
		struct allowance *e = cs->tab[i], *next;
		for (; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	free(cs->tab);
	pace_free(cs->fallback);
	cluster_redis_free(cs->redis);
	buf_release(&cs->scratch);
	free(cs->node);
	free(cs);
}

/* ---- the local allowances ------------------------------------------------------ */

static void grow(struct cluster_sender *cs)
{
	size_t cap = cs->cap * 2;
	struct allowance **tab = xcalloc(cap, sizeof(*tab));
	for (size_t i = 0; i < cs->cap; i++) {
		struct allowance *e = cs->tab[i], *next;
		for (; e; e = next) {
			next = e->next;
			e->next = tab[e->hash & (cap - 1)];
			tab[e->hash & (cap - 1)] = e;
		}
	}
	free(cs->tab);
	cs->tab = tab;
	cs->cap = cap;
}

static struct allowance *find(struct cluster_sender *cs, const char *number)
{
	size_t len = strlen(number);
	uint64_t h = hash_fnv1a(number, len);
	struct allowance *e = cs->tab[h & (cs->cap - 1)];
	while (e && !(e->hash == h && strcmp(e->key, number) == 0))
		e = e->next;
	if (e)
		return e;
	if (cs->n >= cs->cap)
		grow(cs);
	e = xcalloc(1, sizeof(*e) + len + 1);
	memcpy(e->key, number, len + 1);
	e->hash = h;
	e->rate = cs->per_second;
	e->next = cs->tab[h & (cs->cap - 1)];
	cs->tab[h & (cs->cap - 1)] = e;
	cs->n++;
	return e;
}

static void sweep(struct cluster_sender *cs, int64_t now_ms)
{
	for (size_t i = 0; i < cs->cap; i++) {
		struct allowance **pe = &cs->tab[i];
		while (*pe) {
			struct allowance *e = *pe;
			if (now_ms - e->last_ms >= BUDGET_SWEEP_MS) {
				*pe = e->next;
				free(e);
				cs->n--;
			} else {
				pe = &e->next;
			}
		}
	}
}

/* ---- up and down ----------------------------------------------------------------- */

/* found: a script answered at now_ms. */
static void found(struct cluster_sender *cs, int64_t now_ms)
{
	atomic_fetch_add_explicit(&cs->calls, 1, memory_order_relaxed);
	if (cs->state == BUDGET_UP)
		return;
	if (cs->state == BUDGET_DOWN)
		log_info("send.redis_back",
		         "redis at %s answers again: the per-number budget of %d a second is "
		         "shared again",
		         cluster_redis_where(cs->redis), cs->per_second);
	else
		log_info("send.redis_up",
		         "the per-number budget of %d a second is shared through %s",
		         cs->per_second, cluster_redis_where(cs->redis));
	cs->state = BUDGET_UP;
	cs->up_since = now_ms;
	pace_free(cs->fallback);
	cs->fallback = NULL;
	atomic_store(&cs->up_now, 1);
}

/* lost: a call failed (rc); from now on the local share paces. */
static void lost(struct cluster_sender *cs, int rc)
{
	if (cs->state != BUDGET_DOWN) {
		log_warn("send.redis_lost",
		         "could not reach redis at %s (%s): each number sends at most %d a second "
		         "from this sender, its share of %d among %d senders, until redis answers "
		         "again",
		         cluster_redis_where(cs->redis),
		         *cluster_redis_errmsg(cs->redis) ? cluster_redis_errmsg(cs->redis)
		                                          : err_str(rc),
		         share_of(cs), cs->per_second, cs->live);
		cs->state = BUDGET_DOWN;
		atomic_store(&cs->up_now, 0);
		atomic_fetch_add(&cs->lost, 1);
	}
	if (!cs->fallback) {
		struct pace_config pc;
		pace_config_default(&pc);
		pc.per_second = share_of(cs);
		/* cannot fail: a positive rate and the default bounds */
		if (pace_new(&pc, &cs->fallback) != 0)
			abort();
	}
}

/* ---- the budget ------------------------------------------------------------------ */

/* bucket_key: the number's key, in cs->scratch. */
static const char *bucket_key(struct cluster_sender *cs, const char *number)
{
	buf_reset(&cs->scratch);
	buf_puts(&cs->scratch, CLUSTER_PREFIX "pace:");
	buf_puts(&cs->scratch, number);
	return cs->scratch.data;
}

/*
 * run_budget runs BUDGET_LUA for e's number: op "take" (want tokens) or
 * "slow". 0 with *granted, *wait_ms and e->rate set; else the failure (the
 * state is DOWN then).
 */
static int run_budget(struct cluster_sender *cs, struct allowance *e, const char *op, int want,
                      int64_t now_ms, int64_t *granted, int64_t *wait_ms)
{
	char per[16], n[16], idle[16];
	snprintf(per, sizeof(per), "%d", cs->per_second);
	snprintf(n, sizeof(n), "%d", want);
	snprintf(idle, sizeof(idle), "%d", BUDGET_IDLE_MS);
	const char *argv[5] = {bucket_key(cs, e->key), per, n, op, idle};
	redisReply *rep;
	int rc = cluster__eval(cs->redis, &cs->budget, 1, 5, argv, now_ms, &rep);
	if (rc == 0 && (rep->type != REDIS_REPLY_ARRAY || rep->elements != 3)) {
		freeReplyObject(rep);
		rc = ERR_PROTO;
	}
	if (rc != 0) {
		lost(cs, rc);
		return rc;
	}
	*granted = cluster__int(rep, 0, 0);
	*wait_ms = cluster__int(rep, 1, 1);
	int64_t rate = cluster__int(rep, 2, cs->per_second);
	e->rate = rate >= 1 && rate <= cs->per_second ? (int)rate : cs->per_second;
	freeReplyObject(rep);
	found(cs, now_ms);
	return 0;
}

/* batch: tokens to ask for - a quarter of the rate's share per sender, 1..10. */
static int batch(const struct cluster_sender *cs, const struct allowance *e)
{
	int b = e->rate / (4 * (cs->live > 0 ? cs->live : 1));
	return b < 1 ? 1 : b > CLUSTER_BATCH_MAX ? CLUSTER_BATCH_MAX : b;
}

int64_t cluster_sender_take(struct cluster_sender *cs, const char *number, int64_t now_ms)
{
	if (cs->per_second == 0)
		return 0;
	struct allowance *e = find(cs, number);
	e->last_ms = now_ms;
	if (e->tokens > 0 && now_ms < e->expires_ms) {
		e->tokens--;
		return 0;
	}
	e->tokens = 0;
	if (cs->state == BUDGET_UP && now_ms < e->denied_until)
		return e->denied_until - now_ms;
	int64_t granted = 0, wait = 0;
	if (run_budget(cs, e, "take", batch(cs, e), now_ms, &granted, &wait) == 0) {
		if (granted > 0) {
			e->tokens = (int)granted - 1;
			e->expires_ms = now_ms + BUDGET_ALLOWANCE_MS;
			return 0;
		}
		if (wait < 1)
			wait = 1;
		e->denied_until = now_ms + wait;
		return wait;
	}
	atomic_fetch_add_explicit(&cs->fallbacks, 1, memory_order_relaxed);
	return pace_take(cs->fallback, number, now_ms);
}

void cluster_sender_slow(struct cluster_sender *cs, const char *number, int64_t now_ms)
{
	if (cs->per_second == 0)
		return;
	struct allowance *e = find(cs, number);
	e->last_ms = now_ms;
	e->tokens = 0; /* too fast already: what is held is not spent */
	int64_t granted, wait;
	if (run_budget(cs, e, "slow", 0, now_ms, &granted, &wait) != 0)
		pace_slow(cs->fallback, number, now_ms);
}

/* ---- liveness and breakers ------------------------------------------------------- */

int cluster_sender_tick(struct cluster_sender *cs, int64_t now_ms, const char *const *keys, int n,
                        int64_t *until)
{
	if (now_ms < cs->tick_at)
		return 0;
	cs->tick_at = now_ms + CLUSTER_SENDER_TICK_MS;
	sweep(cs, now_ms);
	if (cs->fallback)
		pace_sweep(cs->fallback, now_ms);
	if (n > CLUSTER_ARGS_MAX - 3)
		n = CLUSTER_ARGS_MAX - 3;
	/* the keys side by side in scratch, NUL-separated; pointers after */
	size_t off[CLUSTER_ARGS_MAX];
	buf_reset(&cs->scratch);
	buf_puts(&cs->scratch, CLUSTER_PREFIX "senders");
	buf_putc(&cs->scratch, '\0');
	for (int i = 0; i < n; i++) {
		off[i] = cs->scratch.len;
		buf_puts(&cs->scratch, CLUSTER_PREFIX "breaker:");
		buf_puts(&cs->scratch, keys[i]);
		buf_putc(&cs->scratch, '\0');
	}
	char ttl[16];
	snprintf(ttl, sizeof(ttl), "%d", CLUSTER_SENDER_TTL_MS);
	const char *argv[CLUSTER_ARGS_MAX];
	argv[0] = cs->scratch.data;
	for (int i = 0; i < n; i++)
		argv[1 + i] = cs->scratch.data + off[i];
	argv[1 + n] = cs->node;
	argv[2 + n] = ttl;
	redisReply *rep;
	int rc = cluster__eval(cs->redis, &cs->senders, 1 + n, 3 + n, argv, now_ms, &rep);
	if (rc == 0 && (rep->type != REDIS_REPLY_ARRAY || rep->elements != (size_t)n + 1)) {
		freeReplyObject(rep);
		rc = ERR_PROTO;
	}
	if (rc != 0) {
		lost(cs, rc);
		return 0;
	}
	int64_t live = cluster__int(rep, 0, 1);
	if (live < 1 || live > 1000000)
		live = 1;
	/* a restarted Redis knows only the senders that registered since: the
	 * count may only fall once every live one has had a registration's
	 * time to come back */
	found(cs, now_ms);
	if (live >= cs->live || now_ms - cs->up_since >= CLUSTER_SENDER_TTL_MS)
		cs->live = (int)live;
	for (int i = 0; i < n; i++) {
		int64_t left = cluster__int(rep, (size_t)i + 1, 0);
		until[i] = left > 0 ? now_ms + left : 0;
	}
	freeReplyObject(rep);
	atomic_store(&cs->live_now, cs->live);
	atomic_store(&cs->share_now, share_of(cs));
	return 1;
}

void cluster_sender_opened(struct cluster_sender *cs, const char *key, int64_t until_ms,
                           int64_t now_ms)
{
	if (until_ms <= now_ms)
		return;
	buf_reset(&cs->scratch);
	buf_puts(&cs->scratch, CLUSTER_PREFIX "breaker:");
	buf_puts(&cs->scratch, key);
	char left[24];
	snprintf(left, sizeof(left), "%lld", (long long)(until_ms - now_ms));
	const char *argv[2] = {cs->scratch.data, left};
	redisReply *rep;
	int rc = cluster__eval(cs->redis, &cs->open, 1, 2, argv, now_ms, &rep);
	if (rc != 0) {
		lost(cs, rc);
		return;
	}
	freeReplyObject(rep);
	found(cs, now_ms);
}

/* ---- what it shows --------------------------------------------------------------- */

void cluster_sender_stats(const struct cluster_sender *cs, struct cluster_sender_stats *out)
{
	out->up = atomic_load(&cs->up_now);
	out->live = atomic_load(&cs->live_now);
	out->share = atomic_load(&cs->share_now);
	out->per_second = cs->per_second;
	out->lost = atomic_load(&cs->lost);
	out->calls = atomic_load(&cs->calls);
	out->fallbacks = atomic_load(&cs->fallbacks);
	out->forced = atomic_load(&cs->forced);
}

void cluster_sender_forced_add(struct cluster_sender *cs)
{
	atomic_fetch_add(&cs->forced, 1);
}

static void metric(struct buf *b, const char *name, const char *type, const char *help,
                   unsigned long long v)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

void cluster_sender_render(const struct cluster_sender *cs, struct buf *b)
{
	if (!cs)
		return;
	struct cluster_sender_stats st;
	cluster_sender_stats(cs, &st);
	metric(b, "munim_redis_up", "gauge", "1 while Redis answers the sender, else 0.",
	       (unsigned long long)st.up);
	metric(b, "munim_send_senders_live", "gauge",
	       "Live senders as last seen in Redis (--senders until it was seen).",
	       (unsigned long long)st.live);
	metric(b, "munim_send_number_rate", "gauge",
	       "Sends a second one business number may make from this sender: the shared "
	       "budget while Redis answers, its share (budget / live senders) while not.",
	       (unsigned long long)(st.up ? st.per_second : st.share));
	metric(b, "munim_redis_lost_total", "counter", "Times the sender lost Redis.",
	       (unsigned long long)st.lost);
	metric(b, "munim_redis_calls_total", "counter", "Scripts the sender ran on Redis.",
	       (unsigned long long)st.calls);
	metric(b, "munim_send_paced_locally_total", "counter",
	       "Sends paced by the local share because Redis did not answer.",
	       (unsigned long long)st.fallbacks);
	metric(b, "munim_breaker_shared_opens_total", "counter",
	       "Breakers opened because another sender saw the provider fail.",
	       (unsigned long long)st.forced);
}
