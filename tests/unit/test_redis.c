/*
 * test_redis.c - what munim's processes share through Redis
 * (cluster/cluster.h), against a redis-server the test starts on a unix
 * socket of its own (and stops by pid): the per-number bucket shared by
 * two senders never spends more than its rate over a window; a slow-down
 * one sender hears holds for the other; with the server killed each sender
 * falls back to its share (the budget over the live senders it last saw)
 * within the call that failed, and a stopped server costs a call no more
 * than the timeout; once the server is back the budget is shared again
 * (scripts loaded again); a breaker one sender opens is read by the other
 * and opens its breaker (breaker_force_open); the controllers' signals are
 * summed over the live processes. Without Redis: breaker_force_open's
 * edges, the signals' sum and text form, and the urls --redis takes.
 *
 * Without redis-server on PATH the tests that need it are skipped (with a
 * message); CI installs it (scripts/deps.sh).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cluster/cluster.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "send/breaker.h"

/* ---- the server ---------------------------------------------------------------- */

static struct {
	char dir[64];
	char sock[96];
	char url[128];
	pid_t pid;
	int missing; /* redis-server is not installed */
} srv;

static void sleep_ms(int64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* ping: the server at the socket answers PING. */
static int ping(void)
{
	struct timeval tv = {0, 200000};
	redisContext *c = redisConnectUnixWithTimeout(srv.sock, tv);
	int ok = 0;
	if (c && !c->err) {
		redisReply *r = redisCommand(c, "PING");
		ok = r && r->type == REDIS_REPLY_STATUS;
		if (r)
			freeReplyObject(r);
	}
	if (c)
		redisFree(c);
	return ok;
}

/* raw runs one command on a connection of its own; 0 when it answered. */
static int raw(const char *cmd)
{
	struct timeval tv = {1, 0};
	redisContext *c = redisConnectUnixWithTimeout(srv.sock, tv);
	int ok = 0;
	if (c && !c->err) {
		redisReply *r = redisCommand(c, cmd);
		ok = r && r->type != REDIS_REPLY_ERROR;
		if (r)
			freeReplyObject(r);
	}
	if (c)
		redisFree(c);
	return ok ? 0 : -1;
}

static int server_start(void)
{
	unlink(srv.sock);
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
		}
		execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", srv.sock,
		       "--save", "", "--appendonly", "no", "--dir", srv.dir, (char *)NULL);
		_exit(127);
	}
	srv.pid = pid;
	for (int i = 0; i < 250; i++) {
		if (ping())
			return 0;
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			srv.pid = 0;
			return -1;
		}
		sleep_ms(20);
	}
	return -1;
}

static void server_kill(int sig)
{
	if (srv.pid <= 0)
		return;
	kill(srv.pid, sig);
	if (sig == SIGSTOP || sig == SIGCONT)
		return;
	waitpid(srv.pid, NULL, 0);
	srv.pid = 0;
}

static int have_redis_server(void)
{
	const char *path = getenv("PATH");
	char buf[512];
	while (path && *path) {
		size_t n = strcspn(path, ":");
		snprintf(buf, sizeof(buf), "%.*s/redis-server", (int)n, path);
		if (access(buf, X_OK) == 0)
			return 1;
		path += n + (path[n] == ':');
	}
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	signal(SIGPIPE, SIG_IGN); /* as serve does (core/proc.c) */
	if (!have_redis_server()) {
		srv.missing = 1;
		fprintf(stderr, "test_redis: redis-server is not installed (scripts/deps.sh "
		                "installs it); the tests that need a server are skipped\n");
		return 0;
	}
	snprintf(srv.dir, sizeof(srv.dir), "/tmp/munim-redis-XXXXXX");
	if (!mkdtemp(srv.dir))
		return -1;
	snprintf(srv.sock, sizeof(srv.sock), "%s/s", srv.dir);
	snprintf(srv.url, sizeof(srv.url), "unix://%s", srv.sock);
	return server_start();
}

static int group_teardown(void **state)
{
	(void)state;
	if (srv.missing)
		return 0;
	server_kill(SIGCONT);
	server_kill(SIGKILL);
	unlink(srv.sock);
	rmdir(srv.dir);
	return 0;
}

/* Each test starts from an empty server that runs. */
static int setup(void **state)
{
	(void)state;
	if (srv.missing)
		return 0;
	if (srv.pid <= 0 && server_start() != 0)
		return -1;
	return raw("FLUSHALL");
}

#define NEED_SERVER()                                                                              \
	do {                                                                                       \
		if (srv.missing) {                                                                 \
			fprintf(stderr, "skipped: no redis-server\n");                             \
			skip();                                                                    \
		}                                                                                  \
	} while (0)

static void config_for(struct config *cfg, int per_second, int senders)
{
	config_defaults(cfg);
	free(cfg->redis);
	cfg->redis = strdup(srv.url);
	cfg->redis_timeout_ms = 50;
	cfg->pace_per_number = per_second;
	cfg->senders = senders;
}

static struct cluster_sender *new_sender(int per_second, int senders, const char *node)
{
	struct config cfg;
	config_for(&cfg, per_second, senders);
	struct cluster_sender *cs;
	assert_int_equal(cluster_sender_new(&cfg, node, &cs), 0);
	config_release(&cfg);
	return cs;
}

/* take_for: sends of number granted to cs over ms of asking without pause. */
static int take_for(struct cluster_sender *cs, const char *number, int64_t ms)
{
	int n = 0;
	int64_t end = clock_wall_ms() + ms;
	for (int64_t now; (now = clock_wall_ms()) < end;) {
		int64_t w = cluster_sender_take(cs, number, now);
		if (w == 0)
			n++;
		else
			sleep_ms(w < 3 ? w : 3);
	}
	return n;
}

/* ---- the budget ------------------------------------------------------------------ */

static void test_bucket_shared_by_two_senders(void **state)
{
	(void)state;
	NEED_SERVER();
	struct cluster_sender *a = new_sender(50, 1, "a"), *b = new_sender(50, 1, "b");
	int64_t keys_until[1];
	const char *none[1] = {"x"};
	/* both register: the second to do so counts two senders */
	assert_int_equal(cluster_sender_tick(b, clock_wall_ms(), none, 0, keys_until), 1);
	assert_int_equal(cluster_sender_tick(a, clock_wall_ms(), none, 0, keys_until), 1);
	int na = 0, nb = 0;
	int64_t t0 = clock_wall_ms();
	while (clock_wall_ms() - t0 < 2000) {
		int64_t now = clock_wall_ms();
		int64_t wa = cluster_sender_take(a, "911", now);
		int64_t wb = cluster_sender_take(b, "911", now);
		na += wa == 0;
		nb += wb == 0;
		if (wa && wb)
			sleep_ms(2);
	}
	int64_t took = clock_wall_ms() - t0;
	/* a second's burst and the rate since: the budget, never more */
	int most = 50 + (int)(50 * took / 1000) + 1;
	print_message("two senders, 50/s shared: %d + %d sends in %lld ms (at most %d)\n", na, nb,
	              (long long)took, most);
	assert_true(na + nb <= most);
	assert_true(na + nb >= most - 25); /* and it is used */
	assert_true(na >= 20 && nb >= 20); /* both get some */
	struct cluster_sender_stats st;
	cluster_sender_stats(a, &st);
	assert_int_equal(st.up, 1);
	assert_int_equal(st.live, 2);
	assert_int_equal(st.fallbacks, 0);
	/* batches: far fewer scripts than sends */
	assert_true(st.calls < (uint64_t)(na + 10));
	/* another number has its own budget */
	assert_true(take_for(a, "922", 200) >= 50);
	cluster_sender_free(a);
	cluster_sender_free(b);
}

static void test_slow_down_is_shared(void **state)
{
	(void)state;
	NEED_SERVER();
	struct cluster_sender *a = new_sender(40, 1, "a"), *b = new_sender(40, 1, "b");
	take_for(b, "933", 300); /* the burst spent: b sends at the rate */
	int before = take_for(b, "933", 1000);
	cluster_sender_slow(a, "933", clock_wall_ms()); /* a hears 130429 */
	int after = take_for(b, "933", 900);
	print_message("40/s: %d sends in 1 s, %d in 0.9 s once another sender slowed it\n", before,
	              after);
	assert_in_range(before, 30, 46);
	assert_in_range(after, 10, 25); /* halved (20/s), climbing back 4/s each second */
	cluster_sender_free(a);
	cluster_sender_free(b);
}

static void test_fallback_share_then_back(void **state)
{
	(void)state;
	NEED_SERVER();
	struct cluster_sender *a = new_sender(40, 1, "a"), *b = new_sender(40, 1, "b");
	int64_t u[1];
	const char *none[1] = {"x"};
	assert_int_equal(cluster_sender_tick(b, clock_wall_ms(), none, 0, u), 1);
	assert_int_equal(cluster_sender_tick(a, clock_wall_ms(), none, 0, u), 1);
	assert_int_equal(cluster_sender_take(a, "944", clock_wall_ms()), 0);

	server_kill(SIGKILL);
	/* the call that meets the dead server still answers, from the share */
	int64_t t0 = clock_mono_us();
	assert_int_equal(cluster_sender_take(a, "955", clock_wall_ms()), 0);
	assert_true(clock_mono_us() - t0 < 200 * 1000);
	struct cluster_sender_stats st;
	cluster_sender_stats(a, &st);
	assert_int_equal(st.up, 0);
	assert_int_equal(st.live, 2);
	assert_int_equal(st.share, 20);
	assert_int_equal(st.lost, 1);
	/* 40/s over two senders: 20/s each (a second's burst of 20 first) */
	int n = take_for(a, "955", 2000);
	print_message("redis killed: one sender of two made %d sends in 2 s at a share of 20/s\n",
	              n + 1);
	assert_in_range(n + 1, 40, 61);
	cluster_sender_stats(a, &st);
	assert_true(st.fallbacks >= (uint64_t)n);
	assert_int_equal(st.lost, 1); /* logged and counted once */

	/* back: shared again within a second or so, scripts loaded anew */
	assert_int_equal(server_start(), 0);
	int64_t deadline = clock_wall_ms() + 3000;
	do {
		sleep_ms(50);
		cluster_sender_take(a, "966", clock_wall_ms());
		cluster_sender_stats(a, &st);
	} while (!st.up && clock_wall_ms() < deadline);
	assert_int_equal(st.up, 1);
	assert_int_equal(st.lost, 1);
	assert_true(take_for(a, "966", 300) >= 30);
	cluster_sender_free(a);
	cluster_sender_free(b);
}

static void test_stalled_server_costs_the_timeout(void **state)
{
	(void)state;
	NEED_SERVER();
	struct cluster_sender *a = new_sender(40, 3, "a");
	assert_int_equal(cluster_sender_take(a, "977", clock_wall_ms()), 0);
	server_kill(SIGSTOP); /* connected, never answering */
	int64_t worst = 0;
	int n = 0;
	int64_t end = clock_wall_ms() + 1500;
	while (clock_wall_ms() < end) {
		int64_t t0 = clock_mono_us();
		int64_t w = cluster_sender_take(a, "988", clock_wall_ms());
		int64_t took = clock_mono_us() - t0;
		worst = took > worst ? took : worst;
		n += w == 0;
		if (w)
			sleep_ms(w < 5 ? w : 5);
	}
	server_kill(SIGCONT);
	struct cluster_sender_stats st;
	cluster_sender_stats(a, &st);
	print_message("redis stopped: longest call %lld us; %d sends at the share of %d/s\n",
	              (long long)worst, n, st.share);
	assert_true(worst < 150 * 1000); /* the 50 ms timeout, and scheduling */
	assert_int_equal(st.up, 0);
	assert_int_equal(st.live, 3); /* never counted: --senders */
	assert_int_equal(st.share, 13);
	assert_true(n >= 13 && n <= 13 + 20 + 4);
	cluster_sender_free(a);
}

static void test_script_flushed_is_loaded_again(void **state)
{
	(void)state;
	NEED_SERVER();
	struct cluster_sender *a = new_sender(40, 1, "a");
	assert_int_equal(cluster_sender_take(a, "999", clock_wall_ms()), 0);
	assert_int_equal(raw("SCRIPT FLUSH"), 0);
	assert_int_equal(raw("DEL munim:pace:999"), 0);
	assert_true(take_for(a, "999", 100) >= 30);
	struct cluster_sender_stats st;
	cluster_sender_stats(a, &st);
	assert_int_equal(st.up, 1);
	assert_int_equal(st.lost, 0);
	cluster_sender_free(a);
}

static void test_unpaced_needs_no_redis(void **state)
{
	(void)state;
	struct config cfg;
	config_defaults(&cfg);
	free(cfg.redis);
	cfg.redis = strdup("redis://127.0.0.1:1");
	cfg.pace_per_number = 0;
	struct cluster_sender *cs;
	assert_int_equal(cluster_sender_new(&cfg, "n", &cs), 0);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(cluster_sender_take(cs, "1", clock_wall_ms()), 0);
	struct cluster_sender_stats st;
	cluster_sender_stats(cs, &st);
	assert_int_equal(st.calls, 0);
	cluster_sender_free(cs);
	cfg.senders = 0;
	assert_int_equal(cluster_sender_new(&cfg, "n", &cs), ERR_INVAL);
	free(cfg.redis);
	cfg.redis = strdup("http://x");
	cfg.senders = 1;
	assert_int_equal(cluster_sender_new(&cfg, "n", &cs), ERR_INVAL);
	assert_null(cs);
	config_release(&cfg);
}

/* ---- breakers -------------------------------------------------------------------- */

static void test_breaker_opened_by_another_sender(void **state)
{
	(void)state;
	NEED_SERVER();
	struct cluster_sender *a = new_sender(80, 1, "a"), *b = new_sender(80, 1, "b");
	const char *keys[2] = {"http://bsp-one", "http://bsp-two"};
	int64_t until[2] = {-1, -1};
	int64_t now = clock_wall_ms();
	assert_int_equal(cluster_sender_tick(b, now, keys, 2, until), 1);
	assert_true(until[0] == 0 && until[1] == 0);
	/* a's breaker of bsp-one opens for 5 s; a shorter end later changes nothing */
	cluster_sender_opened(a, keys[0], now + 5000, now);
	cluster_sender_opened(a, keys[0], now + 1000, now);
	/* b's next tick, a second on (by b's clock), reads it: as time left,
	 * whatever the two clocks say */
	assert_int_equal(cluster_sender_tick(b, now + 10, keys, 2, until), 0); /* not yet */
	assert_int_equal(cluster_sender_tick(b, now + 1000, keys, 2, until), 1);
	assert_in_range(until[0], now + 6000 - 100, now + 6000 + 100);
	assert_int_equal(until[1], 0);

	struct breaker br;
	struct breaker_config bc;
	breaker_config_default(&bc);
	assert_int_equal(breaker_init(&br, &bc), 0);
	assert_int_equal(breaker_force_open(&br, now + 1000, until[0]), 1);
	assert_int_equal(breaker_state(&br), BREAKER_OPEN);
	assert_int_equal(breaker_allow(&br, now + 2000, NULL), 0);
	assert_int_equal(breaker_allow(&br, until[0], NULL), 1); /* the probe */
	assert_int_equal(breaker_state(&br), BREAKER_HALF_OPEN);
	cluster_sender_free(a);
	cluster_sender_free(b);
}

static void test_breaker_force_open(void **state)
{
	(void)state;
	struct breaker b;
	struct breaker_config cfg;
	breaker_config_default(&cfg);
	assert_int_equal(breaker_init(&b, &cfg), 0);
	/* an end already past changes nothing */
	assert_int_equal(breaker_force_open(&b, 1000, 1000), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	/* failures counted before are forgotten */
	for (int i = 0; i < 4; i++)
		breaker_record(&b, 1000, BREAKER_FAILURE, 0);
	assert_int_equal(breaker_force_open(&b, 1000, 9000), 1);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_open_until(&b), 9000);
	/* open: only a later end counts */
	assert_int_equal(breaker_force_open(&b, 2000, 8000), 0);
	assert_int_equal(breaker_open_until(&b), 9000);
	assert_int_equal(breaker_force_open(&b, 2000, 12000), 1);
	assert_int_equal(breaker_open_until(&b), 12000);
	/* half-open: the probe in flight is forgotten, its late answer ignored */
	assert_int_equal(breaker_allow(&b, 12000, NULL), 1);
	assert_int_equal(breaker_state(&b), BREAKER_HALF_OPEN);
	assert_int_equal(breaker_force_open(&b, 12001, 20000), 1);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_record(&b, 12002, BREAKER_SUCCESS, 0), 0);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	/* then as ever: a probe at the end, successes close it, counts fresh */
	assert_int_equal(breaker_allow(&b, 20000, NULL), 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(breaker_allow(&b, 20000, NULL), 1);
	for (int i = 0; i < 3; i++)
		breaker_record(&b, 20001, BREAKER_SUCCESS, 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	for (int i = 0; i < 4; i++)
		assert_int_equal(breaker_record(&b, 20002, BREAKER_FAILURE, 0), 0);
	assert_int_equal(breaker_record(&b, 20002, BREAKER_FAILURE, 0), 1);
	/* time does not go back: an end before the latest time seen is past */
	assert_int_equal(breaker_init(&b, &cfg), 0);
	breaker_allow(&b, 5000, NULL);
	assert_int_equal(breaker_force_open(&b, 1000, 4000), 0);
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
}

/* ---- the controller's signals ------------------------------------------------------- */

static struct cluster_signals sample_signals(int k)
{
	struct cluster_signals s;
	memset(&s, 0, sizeof(s));
	s.depth = 10 * k;
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++) {
		s.lat[i] = (uint64_t)(k * 100 + i);
		s.ai_lat[i] = (uint64_t)(k + i);
	}
	s.requests = 1000u * (unsigned)k;
	s.errors = (uint64_t)k;
	s.refused = 1;
	s.ai_calls = 7;
	s.ai_failed = (uint64_t)k % 2;
	return s;
}

static void test_signals_sum(void **state)
{
	(void)state;
	struct cluster_signals v[3] = {sample_signals(1), sample_signals(2), sample_signals(3)};
	/* an ingest process (no sender), a sender with one of two BSPs up, one
	 * with both up and an SMS gateway; AI configured in the first */
	v[0].ai_configured = 1;
	v[1].bsps = 2;
	v[1].bsps_up = 1;
	v[1].bsps_delivering = 1;
	v[2].bsps = 2;
	v[2].bsps_up = 2;
	v[2].bsps_delivering = 0;
	v[2].sms = 1;
	v[2].depth = -5; /* a gauge a process moved below its start */
	struct cluster_signals all;
	cluster_signals_sum(v, 3, &all);
	assert_int_equal(all.depth, 10 + 20 - 5);
	for (int i = 0; i <= METRICS_LAT_BUCKETS; i++) {
		assert_int_equal(all.lat[i], 600 + 3 * i);
		assert_int_equal(all.ai_lat[i], 6 + 3 * i);
	}
	assert_int_equal(all.requests, 6000);
	assert_int_equal(all.errors, 6);
	assert_int_equal(all.refused, 3);
	assert_int_equal(all.ai_calls, 21);
	assert_int_equal(all.ai_failed, 2);
	assert_int_equal(all.bsps, 2);
	assert_int_equal(all.bsps_up, 2);
	assert_int_equal(all.bsps_delivering, 1);
	assert_int_equal(all.sms, 1);
	assert_int_equal(all.ai_configured, 1);
	assert_int_equal(all.ai_refusing, 0);
	cluster_signals_sum(v, 0, &all);
	assert_int_equal(all.requests, 0);
	assert_int_equal(all.bsps, 0);

	/* going back: any counter below the last sum's; gauges may fall */
	struct cluster_signals a = sample_signals(2), b = a;
	assert_false(cluster_signals_went_back(&a, &b));
	b.depth = 0;
	b.bsps_up = 0;
	b.requests++;
	assert_false(cluster_signals_went_back(&a, &b));
	b.lat[METRICS_LAT_BUCKETS]--;
	assert_true(cluster_signals_went_back(&a, &b));
	b = a;
	b.ai_calls--;
	assert_true(cluster_signals_went_back(&a, &b));
	b = a;
	b.refused--;
	assert_true(cluster_signals_went_back(&a, &b));
}

static void test_signals_text(void **state)
{
	(void)state;
	struct cluster_signals s = sample_signals(4), back;
	s.depth = -3;
	s.bsps = 3;
	s.ai_refusing = 1;
	s.requests = UINT64_C(9000000000000000000);
	struct buf b;
	buf_init(&b);
	cluster_signals_encode(&s, &b);
	assert_int_equal(cluster_signals_decode(b.data, b.len, &back), 0);
	assert_memory_equal(&s, &back, sizeof(s));
	/* cut short, another version, junk at the end, a huge number */
	assert_int_equal(cluster_signals_decode(b.data, b.len - 2, &back), ERR_PROTO);
	b.data[0] = '2';
	assert_int_equal(cluster_signals_decode(b.data, b.len, &back), ERR_PROTO);
	b.data[0] = '1';
	buf_puts(&b, " x");
	assert_int_equal(cluster_signals_decode(b.data, b.len, &back), ERR_PROTO);
	const char *big = "1 99999999999999999999999";
	assert_int_equal(cluster_signals_decode(big, strlen(big), &back), ERR_PROTO);
	assert_int_equal(cluster_signals_decode("", 0, &back), ERR_PROTO);
	buf_release(&b);
}

static void test_signals_over_live_processes(void **state)
{
	(void)state;
	NEED_SERVER();
	struct config cfg;
	config_for(&cfg, 80, 1);
	struct cluster_view *p1, *p2;
	assert_int_equal(cluster_view_new(&cfg, "host/1", &p1), 0);
	assert_int_equal(cluster_view_new(&cfg, "host/2", &p2), 0);
	struct cluster_signals s1 = sample_signals(1), s2 = sample_signals(2), all;
	int n = 0;
	/* the first sum of each: a window starts (2) */
	assert_int_equal(cluster_view_exchange(p1, &s1, &all, &n), 2);
	assert_int_equal(n, 1);
	assert_int_equal(all.requests, 1000);
	assert_int_equal(cluster_view_exchange(p2, &s2, &all, &n), 2);
	assert_int_equal(n, 2);
	assert_int_equal(all.requests, 3000);
	assert_int_equal(all.depth, 30);
	/* a sample that is not ours is skipped; a process joining is more */
	assert_int_equal(raw("SET munim:signals:host/3 garbage"), 0);
	assert_int_equal(raw("ZADD munim:signals 99999999999999 host/3"), 0);
	assert_int_equal(cluster_view_exchange(p1, &s1, &all, &n), 1);
	assert_int_equal(n, 2);
	s1.requests += 5;
	assert_int_equal(cluster_view_exchange(p1, &s1, &all, &n), 1);
	assert_int_equal(all.requests, 3005);
	/* a process that stops publishing drops out with its key: its counts
	 * leave the sum, which goes back (2) */
	assert_int_equal(raw("DEL munim:signals:host/2"), 0);
	assert_int_equal(cluster_view_exchange(p1, &s1, &all, &n), 2);
	assert_int_equal(n, 1);
	assert_int_equal(all.requests, 1005);
	/* no Redis: this process's own */
	server_kill(SIGKILL);
	assert_int_equal(cluster_view_exchange(p1, &s1, &all, &n), 0);
	assert_int_equal(n, 1);
	assert_memory_equal(&all, &s1, sizeof(all));
	cluster_view_free(p1);
	cluster_view_free(p2);
	/* without --redis: no view */
	free(cfg.redis);
	cfg.redis = strdup("");
	struct cluster_view *none = (struct cluster_view *)1;
	assert_int_equal(cluster_view_new(&cfg, "host/1", &none), 0);
	assert_null(none);
	config_release(&cfg);
}

static void test_urls(void **state)
{
	(void)state;
	const char *good[] = {"redis://127.0.0.1:6379",
	                      "redis://localhost",
	                      "redis://:secret@10.0.0.1:7000/2",
	                      "redis://user:secret@host:1/0",
	                      "redis://[::1]:6380",
	                      "unix:///run/redis.sock",
	                      "unix:///run/redis.sock?db=3",
	                      "/tmp/redis.sock"};
	const char *bad[] = {"",
	                     "http://x",
	                     "redis://",
	                     "redis://:1",
	                     "redis://h:0",
	                     "redis://h:99999",
	                     "redis://h:12x",
	                     "redis://h/x",
	                     "unix://",
	                     "unix://rel/path",
	                     "/s?db=x",
	                     "redis://[::1",
	                     "relative"};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (cluster_redis_check(good[i]) != 0)
			fail_msg("refused %s", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (cluster_redis_check(bad[i]) != ERR_INVAL)
			fail_msg("took %s", bad[i]);
	struct cluster_redis *r;
	assert_int_equal(cluster_redis_new("redis://:pw@h:7000/2", 50, &r), 0);
	assert_string_equal(cluster_redis_where(r), "redis://h:7000/2"); /* no password */
	assert_string_equal(cluster_redis_errmsg(r), "");
	cluster_redis_free(r);
	assert_int_equal(cluster_redis_new("redis://h", 0, &r), ERR_INVAL);
	assert_null(r);
	char node[160];
	cluster_node_name(node, sizeof(node));
	assert_non_null(strchr(node, '/'));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_urls),
	        cmocka_unit_test(test_breaker_force_open),
	        cmocka_unit_test(test_signals_sum),
	        cmocka_unit_test(test_signals_text),
	        cmocka_unit_test(test_unpaced_needs_no_redis),
	        cmocka_unit_test_setup(test_bucket_shared_by_two_senders, setup),
	        cmocka_unit_test_setup(test_slow_down_is_shared, setup),
	        cmocka_unit_test_setup(test_script_flushed_is_loaded_again, setup),
	        cmocka_unit_test_setup(test_breaker_opened_by_another_sender, setup),
	        cmocka_unit_test_setup(test_signals_over_live_processes, setup),
	        cmocka_unit_test_setup(test_stalled_server_costs_the_timeout, setup),
	        cmocka_unit_test_setup(test_fallback_share_then_back, setup),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
