/*
 * cluster.h - what munim's processes share through Redis (--redis): the
 * per-number send budget, the breaker states of the providers, the live
 * senders and the controller's signals.
 *
 * Nothing correctness needs lives only in Redis. Every piece has a local
 * stand-in that takes over when Redis does not answer within a few tens of
 * milliseconds: the sender paces each number at its share of the budget
 * (per_second / live senders) and trusts its own breakers; the controller
 * reads its own process's signals. A thread never waits on Redis longer
 * than the configured timeout, and retries it about once a second.
 *
 * Three objects, each owned by one thread (hiredis contexts are not shared):
 *   struct cluster_redis    one connection: the URL, the timeouts, the
 *                           reconnect backoff, the Lua scripts (redis.c)
 *   struct cluster_sender   a sender's view: the budget, liveness and the
 *                           shared breakers (budget.c); the sender's
 *                           network thread, its metrics from any thread
 *   struct cluster_view     the controller's: its signals published, the
 *                           fleet's summed (signals.c); the controller thread
 */
#ifndef MUNIM_CLUSTER_H
#define MUNIM_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "core/metrics.h"

struct buf;

/* ---- the connection (redis.c) ------------------------------------------------ */

struct cluster_redis;

/*
 * cluster_redis_new reads url - redis://[[user]:password@]host[:port][/db],
 * unix:///path/to/socket[?db=N], or a socket path starting with '/' - and
 * makes a handle that connects on first use. timeout_ms bounds the connect
 * and every command. 0, or ERR_INVAL for a url it cannot read (*out NULL).
 */
int cluster_redis_new(const char *url, int64_t timeout_ms, struct cluster_redis **out);
/* NULL: no-op. */
void cluster_redis_free(struct cluster_redis *r);
/* cluster_redis_check: 0 when url can be read, else ERR_INVAL. Pure. */
int cluster_redis_check(const char *url);
/* cluster_redis_where: the url as shown in logs, without a password. */
const char *cluster_redis_where(const struct cluster_redis *r);
/* cluster_redis_errmsg: why the last call failed ("" when none did). */
const char *cluster_redis_errmsg(const struct cluster_redis *r);

/* ---- a sender's shared state (budget.c) -------------------------------------- */

struct cluster_sender;

/* How long a live sender's registration lasts, and how often it is renewed
 * (and the shared breaker states read). */
#define CLUSTER_SENDER_TTL_MS  6000
#define CLUSTER_SENDER_TICK_MS 1000
/* Most tokens taken from the shared bucket at once. */
#define CLUSTER_BATCH_MAX 10

/*
 * cluster_sender_new makes the sender's shared state from cfg: --redis
 * (required here), --redis-timeout-ms, --pace-per-number and --senders
 * (the live senders assumed until Redis has been seen). node names this
 * process among the senders (unique: host and pid). No I/O. 0, ERR_INVAL
 * (bad url or pacing settings).
 */
int cluster_sender_new(const struct config *cfg, const char *node, struct cluster_sender **out);
void cluster_sender_free(struct cluster_sender *cs);

/*
 * cluster_sender_take: may `number` send now? 0: yes, and a token of the
 * number's shared bucket is spent; else the ms until it may (nothing
 * spent). Tokens come from Redis in batches of up to CLUSTER_BATCH_MAX
 * kept locally for a short while, so most calls do no I/O. When Redis
 * fails or times out the same call answers from the local share
 * (per_second / live senders, its own bucket per number) and Redis is
 * tried again about once a second. Network thread.
 */
int64_t cluster_sender_take(struct cluster_sender *cs, const char *number, int64_t now_ms);

/*
 * cluster_sender_slow: the provider said number sends too fast (130429 or
 * 429). The number's shared rate halves for every sender, then climbs back
 * by a tenth a quiet second (as pace_slow); tokens held locally for it are
 * dropped. Without Redis, the local share slows the same way. Network
 * thread.
 */
void cluster_sender_slow(struct cluster_sender *cs, const char *number, int64_t now_ms);

/*
 * cluster_sender_tick, at most once every CLUSTER_SENDER_TICK_MS: renews
 * this sender's registration, counts the live senders, and reads the
 * shared breaker state of each of the n providers named by keys (a
 * provider's URL). Returns 1 when it read them: until[i] is then the wall
 * ms (in now_ms's clock) until which another sender holds provider i open,
 * 0 for none; 0 when it was not time yet or Redis did not answer (until
 * untouched). Network thread.
 */
int cluster_sender_tick(struct cluster_sender *cs, int64_t now_ms, const char *const *keys, int n,
                        int64_t *until);

/*
 * cluster_sender_opened publishes that this sender's breaker of the
 * provider `key` opened until until_ms (its own clock): the others open
 * theirs at their next tick. A later end already published stays. Lost
 * when Redis does not answer (each breaker then works alone). Network
 * thread.
 */
void cluster_sender_opened(struct cluster_sender *cs, const char *key, int64_t until_ms,
                           int64_t now_ms);

/* What /metrics shows of it (atomics: any thread). */
struct cluster_sender_stats {
	int up;             /* Redis answered the last call */
	int live;           /* live senders last seen, or --senders */
	int share;          /* per-number rate in use without Redis: per_second / live */
	int per_second;     /* the whole per-number budget */
	uint64_t lost;      /* times Redis was lost */
	uint64_t calls;     /* scripts run */
	uint64_t fallbacks; /* sends paced by the local share */
	uint64_t forced;    /* breakers opened from another sender's report */
};
void cluster_sender_stats(const struct cluster_sender *cs, struct cluster_sender_stats *out);
/* cluster_sender_forced_add counts a breaker opened from the shared state. */
void cluster_sender_forced_add(struct cluster_sender *cs);
/* cluster_sender_render appends munim_redis_up and the budget's metrics.
 * NULL cs: nothing. Any thread. */
void cluster_sender_render(const struct cluster_sender *cs, struct buf *b);

/* ---- the controller's signals (signals.c) ------------------------------------ */

/*
 * What one process's controller reads of its own process; summed over the
 * live processes it is the fleet's. Counters (lat, requests, ...) are
 * totals since the process started, as in core/metrics.h.
 */
struct cluster_signals {
	/* inbox waiting + outbox P0..P2 pending, as this process's gauges say
	 * (kept for the operator: the controller counts the fleet's in the store,
	 * since every process's gauges start from the store's count) */
	int64_t depth;
	uint64_t lat[METRICS_LAT_BUCKETS + 1];
	uint64_t requests, errors, refused; /* webhooks: all, 500/503, 503 */
	uint64_t ai_lat[METRICS_LAT_BUCKETS + 1];
	uint64_t ai_calls, ai_failed;
	int bsps, bsps_up, bsps_delivering, sms; /* sender_health; 0 without a sender */
	int ai_configured, ai_refusing;
};

/*
 * cluster_signals_sum: the fleet's signals from n processes': depth and the
 * counters summed; the providers' health is the best any sender reports
 * (breakers are shared: a provider one sender can use is usable); AI
 * configured or refusing if any process says so. n = 0: all zero. Pure.
 */
void cluster_signals_sum(const struct cluster_signals *v, int n, struct cluster_signals *out);

/*
 * cluster_signals_went_back: some counter of after is below before's (a
 * process left the sum, or restarted): differences between the two mean
 * nothing. Pure.
 */
int cluster_signals_went_back(const struct cluster_signals *before,
                              const struct cluster_signals *after);

/* cluster_signals_encode writes s as text (a version and the numbers, space
 * separated) into b. cluster_signals_decode reads it back: 0 or ERR_PROTO. */
void cluster_signals_encode(const struct cluster_signals *s, struct buf *b);
int cluster_signals_decode(const char *text, size_t len, struct cluster_signals *out);

struct cluster_view;

/* Each process's signals live this long in Redis unless published again. */
#define CLUSTER_SIGNALS_TTL_MS 5000

/*
 * cluster_view_new: the controller's Redis view from cfg (--redis,
 * --redis-timeout-ms); *out NULL and 0 when --redis is not set. node names
 * this process. ERR_INVAL for a bad url.
 */
int cluster_view_new(const struct config *cfg, const char *node, struct cluster_view **out);
void cluster_view_free(struct cluster_view *v);

/*
 * cluster_view_exchange publishes mine under this process's key (for
 * CLUSTER_SIGNALS_TTL_MS) and reads every live process's, in one round
 * trip. 1: *all holds the sum over them (this one included), *processes
 * how many; 2: the same, but a counter of the sum went back since the last
 * exchange (cluster_signals_went_back), so a window over the sums must
 * start again; 0: Redis did not answer, *all = *mine. The loss and the
 * return are logged once each. Controller thread.
 */
int cluster_view_exchange(struct cluster_view *v, const struct cluster_signals *mine,
                          struct cluster_signals *all, int *processes);

/* cluster_node_name writes "host/pid" into out (a process's name among the
 * fleet). */
void cluster_node_name(char *out, size_t cap);

#endif
