/*
 * send_fixture.h - the sender under test: a scripted Cloud API provider on
 * 127.0.0.1 (its answer chosen by the recipient's last digit, enum script)
 * and a fixture holding an app, a migrated SQLite store in a temporary
 * directory (with MUNIM_TEST_PG set, a fresh PostgreSQL database:
 * pg_fixture.h; the directory still holds the send journal, a file) and
 * the sender's settings pointed at that provider; with
 * find_row and wait_settled to watch the outbox.
 *
 * Test code: static functions, included (after cmocka.h) by the test files
 * that drive a real sender (test_send.c, test_aggregate.c). The provider's
 * counters (prov) are reset by setup_sender; its HTTP threads write them,
 * the test reads them (atomics).
 */
#ifndef MUNIM_TEST_SEND_FIXTURE_H
#define MUNIM_TEST_SEND_FIXTURE_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "http/http.h"
#include "store/store.h"
#include "pg_fixture.h"

#define T_PHONE "100000000000001"
#define T_TOKEN "test-token"

/* What the provider does, chosen by the recipient's last digit. */
enum script {
	S_OK = 1, /* 200 */
	S_ALWAYS_500 = 2,
	S_PERMANENT = 3, /* 400, code 131026 */
	S_503_THEN_OK = 4,
	S_SLOW_THEN_OK = 5, /* first answer after the send timeout */
	S_429_THEN_OK = 6,
	S_NO_ID = 7,  /* 200 without messages[0].id */
	S_URGENT = 9, /* 200; notes how many S_OK sends came before it */
};

struct fake_bsp {
	_Atomic int calls[10];
	_Atomic int bad_requests; /* wrong path, token or content type */
	_Atomic int late_threads;
	_Atomic int ok_before_urgent; /* calls[S_OK] when the S_URGENT send came */
	_Atomic int down;             /* answer every send 500 (131000) */
};

static struct fake_bsp prov;

struct late {
	struct http_req *r;
};

static void *late_answer(void *arg)
{
	struct late *l = arg;
	struct timespec ts = {0, 700 * 1000000L};
	nanosleep(&ts, NULL);
	static const char ok[] = "{\"messages\":[{\"id\":\"wamid.LATE\"}]}";
	http_respond(l->r, 200, "application/json", ok, sizeof(ok) - 1);
	free(l);
	atomic_fetch_sub(&prov.late_threads, 1);
	return NULL;
}

/* http_respond with len SIZE_MAX meaning strlen(body) */
static void answer(struct http_req *r, unsigned int status, const char *ctype, const char *body,
                   size_t len)
{
	http_respond(r, status, ctype, body, len == SIZE_MAX ? strlen(body) : len);
}

static void on_provider(struct http_req *r, void *ud)
{
	(void)ud;
	const char *auth = http_req_header(r, "Authorization");
	const char *ctype = http_req_header(r, "Content-Type");
	if (strcmp(http_req_path(r), "/v21.0/" T_PHONE "/messages") != 0 || !auth ||
	    strcmp(auth, "Bearer " T_TOKEN) != 0 || !ctype ||
	    strcmp(ctype, "application/json") != 0) {
		atomic_fetch_add(&prov.bad_requests, 1);
		answer(r, 400, "application/json", "{}", 2);
		return;
	}
	size_t len;
	const char *body = http_req_body(r, &len);
	json_t *root = json_loadb(body, len, 0, NULL);
	const char *to = json_string_value(json_object_get(root, "to"));
	int which = to && *to ? to[strlen(to) - 1] - '0' : 0;
	json_decref(root);
	if (which < 0 || which > 9)
		which = 0;
	if (atomic_load(&prov.down)) {
		atomic_fetch_add(&prov.calls[0], 1);
		answer(r, 500, "application/json",
		       "{\"error\":{\"message\":\"down\",\"code\":131000}}", SIZE_MAX);
		return;
	}
	if (which == S_URGENT)
		atomic_store(&prov.ok_before_urgent, atomic_load(&prov.calls[S_OK]));
	int call = atomic_fetch_add(&prov.calls[which], 1);
	char ok[128];
	snprintf(ok, sizeof(ok), "{\"messages\":[{\"id\":\"wamid.P%d.%d\"}]}", which, call);
	switch (which) {
	case S_ALWAYS_500:
		answer(r, 500, "application/json",
		       "{\"error\":{\"message\":\"boom\",\"code\":131000}}", SIZE_MAX);
		return;
	case S_PERMANENT:
		answer(r, 400, "application/json",
		       "{\"error\":{\"message\":\"undeliverable\",\"code\":131026}}", SIZE_MAX);
		return;
	case S_503_THEN_OK:
		if (call == 0) {
			answer(r, 503, "text/plain", "down", 4);
			return;
		}
		break;
	case S_SLOW_THEN_OK:
		if (call == 0) {
			struct late *l = malloc(sizeof(*l));
			l->r = r;
			http_suspend(r);
			pthread_t t;
			atomic_fetch_add(&prov.late_threads, 1);
			pthread_create(&t, NULL, late_answer, l);
			pthread_detach(t);
			return;
		}
		break;
	case S_429_THEN_OK:
		if (call == 0) {
			answer(r, 429, "application/json",
			       "{\"error\":{\"message\":\"slow down\",\"code\":130429}}", SIZE_MAX);
			return;
		}
		break;
	case S_NO_ID: answer(r, 200, "application/json", "{\"messages\":[]}", 15); return;
	default: break;
	}
	answer(r, 200, "application/json", ok, strlen(ok));
}

struct fixture {
	char dir[64];
	char db[256]; /* the SQLite file in dir, or the PostgreSQL database's url */
	char journal[112];
	struct app app;
	struct store_conn *c;
	struct http_server *http;
	struct http_route route;
	char url[64];
};

static int setup_sender(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	memset(&prov, 0, sizeof(prov));
	snprintf(f->dir, sizeof(f->dir), "/tmp/munim-test-send-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (test_pg_base())
		test_pg_create("send", f->db, sizeof(f->db));
	else
		snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
	snprintf(f->journal, sizeof(f->journal), "%s/t.db-sendlog", f->dir);
	config_defaults(&f->app.cfg);
	metrics_init(&f->app.metrics);
	notify_init(&f->app.inbox_ready);
	notify_init(&f->app.outbox_ready);
	if (store_open(f->db, &f->app.store) != 0 || store_connect(f->app.store, &f->c) != 0 ||
	    store_migrate(f->c, NULL) != 0)
		return -1;
	f->route = (struct http_route){"POST", "/", 1, on_provider, NULL, NULL};
	if (http_server_start("127.0.0.1:0", 2, 65536, &f->route, 1, &f->http) != 0)
		return -1;
	snprintf(f->url, sizeof(f->url), "http://127.0.0.1:%d/", http_server_port(f->http));
	struct config *cfg = &f->app.cfg;
	free(cfg->bsp_url);
	cfg->bsp_url = strdup(f->url); /* trailing '/' on purpose */
	free(cfg->access_token);
	cfg->access_token = strdup(T_TOKEN);
	free(cfg->graph_version);
	cfg->graph_version = strdup("v21.0");
	cfg->send_inflight = 4;
	cfg->send_timeout_ms = 300;
	cfg->send_max_attempts = 3;
	cfg->retry_base_ms = 1;
	cfg->retry_cap_ms = 20;
	/* these tests are about each answer; the breaker has its own (below,
	 * test_breaker.c, and end to end) */
	cfg->breaker_failures = 1000;
	cfg->breaker_min_calls = 1000000;
	/* as serve sets it for a file store (and as a PostgreSQL deployment
	 * sets it by hand) */
	free(cfg->send_journal);
	cfg->send_journal = strdup(f->journal);
	*state = f;
	return 0;
}

static int teardown_sender(void **state)
{
	struct fixture *f = *state;
	while (atomic_load(&prov.late_threads) > 0) {
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	http_server_stop(f->http);
	store_disconnect(f->c);
	store_close(f->app.store);
	notify_release(&f->app.inbox_ready);
	notify_release(&f->app.outbox_ready);
	config_release(&f->app.cfg);
	unlink(f->journal);
	if (test_pg_base()) {
		test_pg_drop(f->db);
	} else {
		char path[300];
		const char *suffixes[] = {"", "-wal", "-shm"};
		for (int i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s%s", f->db, suffixes[i]);
			unlink(path);
		}
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Finds row id in state st; fills *out (strings in a). */
static int find_row(struct fixture *f, enum outbox_state st, int64_t id, struct arena *a,
                    struct outbox_row *out)
{
	struct outbox_row *rows;
	int n;
	if (store_outbox_list(f->c, st, 1000, a, &rows, &n) != 0)
		return 0;
	for (int i = 0; i < n; i++) {
		if (rows[i].id == id) {
			*out = rows[i];
			return 1;
		}
	}
	return 0;
}

/* Waits (up to 10 s) until `want` rows are in final or accepted states. */
static void wait_settled(struct fixture *f, int64_t want)
{
	for (int i = 0; i < 500; i++) {
		int64_t n = 0;
		for (int p = 0; p < PRIO_COUNT; p++)
			n += atomic_load(&f->app.metrics.outbox[p][OUTBOX_ACCEPTED]) +
			     atomic_load(&f->app.metrics.outbox[p][OUTBOX_FAILED]) +
			     atomic_load(&f->app.metrics.outbox[p][OUTBOX_DEAD]);
		if (n >= want)
			return;
		struct timespec ts = {0, 20 * 1000000L};
		nanosleep(&ts, NULL);
	}
	fail_msg("rows did not settle in time");
}

#endif
