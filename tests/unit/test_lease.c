/*
 * test_lease.c - several processes over one store: the nodes, the
 * partition leases the worker processes divide the queue by, recovery
 * that takes back only dead senders' sends, and the leader's lock
 * (store.h, "processes"; worker/lease.c). Against a temporary SQLite file,
 * or, with MUNIM_TEST_PG set, a fresh PostgreSQL database per test
 * (store_fixture.h): the same assertions hold for both.
 *
 * Each "process" is a store handle of its own on the test's database
 * (store_open twice), with its own connection and node. Times are passed
 * to the lease operations explicitly (T0 on), and recovery reads the
 * pinned clock (clock_set_fake), so leases run out without sleeping;
 * only the lease keeper's test (give-back between batches) runs on the
 * real clock, as its thread does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "store/store.h"
#include "worker/backlog.h"
#include "worker/lease.h"
#include "store_fixture.h"

#define T0    1750000000000LL /* 2025-06-15 */
#define LEASE 6000

/* One "process": a store handle of its own, connected, and its node. */
struct proc {
	struct store *st;
	struct store_conn *c;
	int64_t node;
};

struct fx {
	struct test_db db;
	struct proc p[3];
	struct arena a;
	int64_t tenant;
};

static void proc_open(struct fx *f, struct proc *p)
{
	test_db_connect(&f->db, 5000, &p->st, &p->c);
	p->node = 0;
}

static void proc_close(struct proc *p)
{
	store_disconnect(p->c);
	store_close(p->st);
}

/* join: p joins as a node named name running roles at now. */
static int64_t join(struct proc *p, const char *name, unsigned roles, int64_t now)
{
	struct store_node n = {.name = name, .roles = roles, .host = "test", .pid = 1};
	int64_t id = 0;
	assert_int_equal(store_node_join(p->c, &n, now, LEASE, &id), 0);
	assert_true(id > 0);
	p->node = id;
	store_set_node(p->st, id);
	return id;
}

/* claim: p's node claims at now; returns what it holds after, with the
 * share and what it took now. */
static uint64_t claim(struct proc *p, int64_t now, int *share, uint64_t *taken)
{
	uint64_t owned = 0, t = 0;
	int sh = 0;
	int rc = store_partitions_claim(p->c, p->node, now, LEASE, &owned, &sh, &t);
	if (rc != 0)
		fail_msg("claim failed: %s", store_errmsg(p->c));
	if (share)
		*share = sh;
	if (taken)
		*taken = t;
	return owned;
}

/* The count highest partitions of owned: what the lease keeper gives back. */
static uint64_t highest(uint64_t owned, int count)
{
	uint64_t out = 0;
	for (int q = STORE_PARTITIONS - 1; q >= 0 && count > 0; q--)
		if (owned & (1ULL << q)) {
			out |= 1ULL << q;
			count--;
		}
	return out;
}

static int bits(uint64_t m)
{
	return __builtin_popcountll(m);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	test_db_make(&f->db, "lease");
	for (int i = 0; i < 3; i++)
		proc_open(f, &f->p[i]);
	assert_int_equal(store_migrate(f->p[0].c, NULL), 0);
	struct tenant t = {.name = "Sharma Kirana",
	                   .phone_number_id = "100000000001",
	                   .state_code = "27",
	                   .owner_numbers = "919800000001"};
	assert_int_equal(store_tenant_add(f->p[0].c, &t, &f->tenant), 0);
	arena_init(&f->a, 0);
	clock_set_fake(T0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	clock_set_fake(-1);
	arena_release(&f->a);
	for (int i = 0; i < 3; i++)
		proc_close(&f->p[i]);
	test_db_remove(&f->db);
	free(f);
	return 0;
}

/* ---- nodes ------------------------------------------------------------------------------ */

static void test_nodes_join_beat_leave(void **state)
{
	struct fx *f = *state;
	struct store_node *n;
	int cnt, lapsed = -1;
	int64_t a = join(&f->p[0], "host:1", STORE_ROLE_WORKER | STORE_ROLE_SENDER, T0);
	int64_t b = join(&f->p[1], "host:2", STORE_ROLE_SENDER, T0);
	assert_true(b > a);
	assert_int_equal(store_nodes_live(f->p[0].c, T0 + 1, &f->a, &n, &cnt), 0);
	assert_int_equal(cnt, 2);
	assert_int_equal(n[0].id, a);
	assert_string_equal(n[0].name, "host:1");
	assert_int_equal(n[0].roles, STORE_ROLE_WORKER | STORE_ROLE_SENDER);
	assert_int_equal(n[0].expires_at, T0 + LEASE);

	/* a beat in time renews; a late one says so, and renews all the same */
	assert_int_equal(store_node_beat(f->p[0].c, a, T0 + 2000, LEASE, &lapsed), 0);
	assert_int_equal(lapsed, 0);
	assert_int_equal(store_nodes_live(f->p[0].c, T0 + 7000, &f->a, &n, &cnt), 0);
	assert_int_equal(cnt, 1); /* b's lease ran out at T0 + 6000 */
	assert_int_equal(n[0].id, a);
	assert_int_equal(store_node_beat(f->p[1].c, b, T0 + 7000, LEASE, &lapsed), 0);
	assert_int_equal(lapsed, 1);
	assert_int_equal(store_node_beat(f->p[1].c, 999999, T0, LEASE, NULL), ERR_NOTFOUND);

	/* a later run of a name makes the earlier one dead at once */
	int64_t a2 = join(&f->p[2], "host:1", STORE_ROLE_WORKER, T0 + 7000);
	assert_int_equal(store_nodes_live(f->p[0].c, T0 + 7001, &f->a, &n, &cnt), 0);
	assert_int_equal(cnt, 2);
	assert_int_equal(n[0].id, b);
	assert_int_equal(n[1].id, a2);

	assert_int_equal(store_node_leave(f->p[1].c, b, T0 + 7002), 0);
	assert_int_equal(store_nodes_live(f->p[0].c, T0 + 7002, &f->a, &n, &cnt), 0);
	assert_int_equal(cnt, 1);
	assert_int_equal(n[0].id, a2);

	struct store_node bad = {.name = "", .roles = STORE_ROLE_WORKER};
	int64_t id;
	assert_int_equal(store_node_join(f->p[0].c, &bad, T0, LEASE, &id), ERR_INVAL);
	bad.name = "x";
	bad.roles = 0;
	assert_int_equal(store_node_join(f->p[0].c, &bad, T0, LEASE, &id), ERR_INVAL);
}

/* ---- partition leases ---------------------------------------------------------------------- */

static void test_lease_alone_takes_all(void **state)
{
	struct fx *f = *state;
	int share;
	uint64_t taken;
	join(&f->p[0], "host:1", STORE_ROLE_WORKER, T0);
	assert_true(claim(&f->p[0], T0, &share, &taken) == STORE_ALL_PARTITIONS);
	assert_int_equal(share, STORE_PARTITIONS);
	assert_true(taken == STORE_ALL_PARTITIONS);
	/* renewed, nothing new */
	assert_true(claim(&f->p[0], T0 + 2000, &share, &taken) == STORE_ALL_PARTITIONS);
	assert_true(taken == 0);
	/* given back, taken again */
	assert_int_equal(store_partitions_release(f->p[0].c, f->p[0].node, 0xffULL), 0);
	assert_true(claim(&f->p[0], T0 + 4000, &share, &taken) == STORE_ALL_PARTITIONS);
	assert_true(taken == 0xffULL);
	/* not a worker's arguments */
	uint64_t owned;
	assert_int_equal(store_partitions_claim(f->p[0].c, 0, T0, LEASE, &owned, &share, NULL),
	                 ERR_INVAL);
}

static void test_lease_fair_share(void **state)
{
	struct fx *f = *state;
	int share;
	uint64_t taken;
	join(&f->p[0], "host:1", STORE_ROLE_WORKER, T0);
	uint64_t a = claim(&f->p[0], T0, &share, NULL);
	assert_true(a == STORE_ALL_PARTITIONS);

	/* b joins: nothing free yet, its share is half */
	join(&f->p[1], "host:2", STORE_ROLE_WORKER, T0 + 100);
	uint64_t b = claim(&f->p[1], T0 + 100, &share, &taken);
	assert_true(b == 0);
	assert_int_equal(share, 32);
	/* a sees the new share and gives back what is over it */
	a = claim(&f->p[0], T0 + 200, &share, NULL);
	assert_int_equal(share, 32);
	assert_int_equal(bits(a), 64);
	assert_int_equal(store_partitions_release(f->p[0].c, f->p[0].node, highest(a, 32)), 0);
	a &= ~highest(a, 32);
	b = claim(&f->p[1], T0 + 300, &share, &taken);
	assert_int_equal(bits(b), 32);
	assert_true(taken == b);
	assert_true((a & b) == 0);
	assert_true((a | b) == STORE_ALL_PARTITIONS);

	/* a node that is not a worker does not count */
	join(&f->p[2], "host:3", STORE_ROLE_SENDER, T0 + 400);
	assert_true(claim(&f->p[1], T0 + 400, &share, NULL) == b);
	assert_int_equal(share, 32);

	/* a third worker: ceil(64 / 3) = 22 each, 22 + 22 + 20 */
	join(&f->p[2], "host:3w", STORE_ROLE_WORKER, T0 + 500);
	uint64_t c = claim(&f->p[2], T0 + 500, &share, NULL);
	assert_int_equal(share, 22);
	assert_true(c == 0);
	for (int i = 0; i < 2; i++) {
		uint64_t *m = i ? &b : &a;
		*m = claim(&f->p[i], T0 + 600, &share, NULL);
		assert_int_equal(share, 22);
		uint64_t give = highest(*m, bits(*m) - 22);
		assert_int_equal(store_partitions_release(f->p[i].c, f->p[i].node, give), 0);
		*m &= ~give;
	}
	c = claim(&f->p[2], T0 + 700, &share, NULL);
	assert_int_equal(bits(a), 22);
	assert_int_equal(bits(b), 22);
	assert_int_equal(bits(c), 20);
	assert_true((a & b) == 0 && (a & c) == 0 && (b & c) == 0);
	assert_true((a | b | c) == STORE_ALL_PARTITIONS);
}

static void test_lease_expiry_takeover(void **state)
{
	struct fx *f = *state;
	int share;
	uint64_t taken;
	join(&f->p[0], "host:1", STORE_ROLE_WORKER, T0);
	assert_true(claim(&f->p[0], T0, NULL, NULL) == STORE_ALL_PARTITIONS);
	join(&f->p[1], "host:2", STORE_ROLE_WORKER, T0 + 1000);
	/* a's leases hold until T0 + LEASE */
	assert_true(claim(&f->p[1], T0 + 1000, &share, NULL) == 0);
	assert_int_equal(share, 32);
	assert_true(claim(&f->p[1], T0 + LEASE - 1, NULL, NULL) == 0);
	/* a stopped renewing: its node and its leases have run out; b alone */
	assert_int_equal(store_node_beat(f->p[1].c, f->p[1].node, T0 + LEASE, LEASE, NULL), 0);
	uint64_t b = claim(&f->p[1], T0 + LEASE, &share, &taken);
	assert_int_equal(share, STORE_PARTITIONS);
	assert_true(b == STORE_ALL_PARTITIONS);
	assert_true(taken == STORE_ALL_PARTITIONS);
	/* a comes back late: it holds nothing, and takes nothing b holds */
	assert_int_equal(store_node_beat(f->p[0].c, f->p[0].node, T0 + 7000, LEASE, NULL), 0);
	assert_true(claim(&f->p[0], T0 + 7000, &share, &taken) == 0);
	assert_int_equal(share, 32);
	assert_true(taken == 0);
}

static void test_lease_successor_takes_over_at_once(void **state)
{
	struct fx *f = *state;
	int share;
	uint64_t taken;
	join(&f->p[0], "host:1", STORE_ROLE_WORKER, T0);
	assert_true(claim(&f->p[0], T0, NULL, NULL) == STORE_ALL_PARTITIONS);
	join(&f->p[1], "host:2", STORE_ROLE_WORKER, T0 + 500);
	/* host:1 restarted (killed, its lease still running): the new run is
	 * alone with b, and takes its earlier run's partitions at once */
	join(&f->p[2], "host:1", STORE_ROLE_WORKER, T0 + 1000);
	uint64_t a2 = claim(&f->p[2], T0 + 1000, &share, &taken);
	assert_int_equal(share, 32);
	assert_int_equal(bits(a2), 32);
	assert_true(taken == a2);
	/* b must still wait for the earlier run's lease on the rest */
	assert_true(claim(&f->p[1], T0 + 1000, &share, NULL) == 0);
	assert_int_equal(share, 32);
	uint64_t b = claim(&f->p[1], T0 + LEASE, &share, NULL);
	assert_int_equal(bits(b), 32);
	assert_true((a2 & b) == 0 && (a2 | b) == STORE_ALL_PARTITIONS);
}

/* ---- two claimers at once ------------------------------------------------------------------ */

struct racer {
	struct proc *p;
	pthread_barrier_t *go;
	uint64_t owned[40];
	int n;
	int err;
};

static void *race(void *arg)
{
	struct racer *r = arg;
	pthread_barrier_wait(r->go);
	for (int i = 0; i < 40; i++) {
		uint64_t owned = 0;
		int share;
		int rc = store_partitions_claim(r->p->c, r->p->node, T0 + 100 + i, LEASE, &owned,
		                                &share, NULL);
		if (rc == ERR_AGAIN) /* a lock wait given up: the keeper claims again */
			continue;
		if (rc != 0) {
			r->err = rc;
			return NULL;
		}
		r->owned[r->n++] = owned;
	}
	return NULL;
}

static void test_lease_concurrent_claims_never_double(void **state)
{
	struct fx *f = *state;
	join(&f->p[0], "host:1", STORE_ROLE_WORKER, T0);
	join(&f->p[1], "host:2", STORE_ROLE_WORKER, T0);
	pthread_barrier_t go;
	pthread_barrier_init(&go, NULL, 2);
	struct racer r[2] = {{.p = &f->p[0], .go = &go}, {.p = &f->p[1], .go = &go}};
	pthread_t t[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&t[i], NULL, race, &r[i]), 0);
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	pthread_barrier_destroy(&go);
	assert_int_equal(r[0].err, 0);
	assert_int_equal(r[1].err, 0);
	assert_true(r[0].n > 0 && r[1].n > 0);
	/* nothing was given back and no lease ran out: what each held only
	 * grew, so the last answers being apart means they always were */
	uint64_t a = r[0].owned[r[0].n - 1], b = r[1].owned[r[1].n - 1];
	for (int i = 1; i < r[0].n; i++)
		assert_true((r[0].owned[i - 1] & ~r[0].owned[i]) == 0);
	for (int i = 1; i < r[1].n; i++)
		assert_true((r[1].owned[i - 1] & ~r[1].owned[i]) == 0);
	assert_true((a & b) == 0);
	assert_int_equal(bits(a), 32);
	assert_int_equal(bits(b), 32);
	/* and the store agrees: each partition is held by the one that says so */
	uint64_t again_a = claim(&f->p[0], T0 + 200, NULL, NULL);
	uint64_t again_b = claim(&f->p[1], T0 + 200, NULL, NULL);
	assert_true(again_a == a && again_b == b);
}

/* ---- the lease keeper: give-back between batches --------------------------------------- */

static int64_t wall(void)
{
	return clock_wall_ms();
}

/* app fields a lease keeper uses, for a test's process */
static void app_init(struct app *app, struct store *st)
{
	memset(app, 0, sizeof(*app));
	config_defaults(&app->cfg);
	metrics_init(&app->metrics);
	notify_init(&app->inbox_ready);
	notify_init(&app->outbox_ready);
	app->store = st;
}

static void app_release(struct app *app)
{
	notify_release(&app->inbox_ready);
	notify_release(&app->outbox_ready);
	config_release(&app->cfg);
}

static void test_keeper_gives_back_between_batches(void **state)
{
	struct fx *f = *state;
	clock_set_fake(-1); /* the keeper's thread runs on the real clock */
	struct app app;
	app_init(&app, f->p[0].st);
	struct lease *l;
	assert_int_equal(lease_start(&app, STORE_ROLE_WORKER, &l), 0);
	/* alone: every partition at once, before lease_start returns */
	assert_true(lease_partitions(l) == STORE_ALL_PARTITIONS);
	assert_true(store_node(app.store) == lease_node(l));

	/* a batch in progress holds the mask */
	assert_true(lease_hold(l) == STORE_ALL_PARTITIONS);
	join(&f->p[1], "other:2", STORE_ROLE_WORKER, wall());
	uint64_t b = claim(&f->p[1], wall(), NULL, NULL);
	assert_true(b == 0);
	/* the keeper now wants to give 32 back but waits for the batch: past
	 * a beat and its wait, everything is still ours */
	usleep((STORE_NODE_BEAT_MS + 1500) * 1000);
	assert_true(lease_partitions(l) == STORE_ALL_PARTITIONS);
	assert_true(claim(&f->p[1], wall(), NULL, NULL) == 0);
	lease_unhold(l);

	/* between batches it gives them back, and b takes them */
	int64_t until = wall() + 3 * STORE_NODE_BEAT_MS + 2000;
	while (bits(lease_partitions(l)) != 32 && wall() < until)
		usleep(50 * 1000);
	uint64_t a = lease_partitions(l);
	assert_int_equal(bits(a), 32);
	b = claim(&f->p[1], wall(), NULL, NULL);
	assert_int_equal(bits(b), 32);
	assert_true((a & b) == 0);

	/* it leaves: its partitions are free at once, its node dead */
	lease_stop(l);
	int share;
	b = claim(&f->p[1], wall(), &share, NULL);
	assert_int_equal(share, STORE_PARTITIONS);
	assert_true(b == STORE_ALL_PARTITIONS);
	assert_true(store_node(app.store) == 0);
	app_release(&app);
}

static int wait_inline_off(struct app *app, int want)
{
	int64_t until = wall() + 2 * STORE_NODE_BEAT_MS + 1000;
	while (atomic_load(&app->inline_off) != want && wall() < until)
		usleep(50 * 1000);
	return atomic_load(&app->inline_off);
}

/* The fast path (a process with the ingest and the worker role) stands
 * aside while another live node takes webhooks, and comes back once none
 * does; an ingest joining beside a fast path waits for it to see it. */
static void test_fast_path_stands_aside_for_another_ingest(void **state)
{
	struct fx *f = *state;
	clock_set_fake(-1); /* the keeper's thread runs on the real clock */
	struct app app;
	app_init(&app, f->p[0].st);
	app.backlog = backlog_new(1);
	struct lease *l;
	assert_int_equal(lease_start(&app, STORE_ROLE_INGEST | STORE_ROLE_WORKER, &l), 0);
	assert_int_equal(atomic_load(&app.inline_off), 0); /* alone */
	struct buf b;
	buf_init(&b);
	lease_render_metrics(l, &b);
	assert_non_null(strstr(b.data, "munim_ingest_fast_path 1\n"));

	/* a second ingest (a sender's node changes nothing) */
	join(&f->p[1], "other:2", STORE_ROLE_SENDER, wall());
	usleep((STORE_NODE_BEAT_MS + 500) * 1000);
	assert_int_equal(atomic_load(&app.inline_off), 0);
	assert_int_equal(store_node_leave(f->p[1].c, f->p[1].node, wall()), 0);
	join(&f->p[1], "other:3", STORE_ROLE_INGEST, wall());
	assert_int_equal(wait_inline_off(&app, 1), 1);
	buf_reset(&b);
	lease_render_metrics(l, &b);
	assert_non_null(strstr(b.data, "munim_ingest_fast_path 0\n"));
	/* it leaves: on again */
	assert_int_equal(store_node_leave(f->p[1].c, f->p[1].node, wall()), 0);
	assert_int_equal(wait_inline_off(&app, 0), 0);

	/* an ingest process starting beside it waits a beat and more first */
	struct app other;
	app_init(&other, f->p[1].st);
	free(other.cfg.node_name); /* not a successor of the first: a name of its own */
	other.cfg.node_name = strdup("ingest:2");
	struct lease *l2;
	int64_t t0 = wall();
	assert_int_equal(lease_start(&other, STORE_ROLE_INGEST, &l2), 0);
	assert_true(wall() - t0 >= STORE_NODE_BEAT_MS);
	assert_int_equal(wait_inline_off(&app, 1), 1);
	lease_stop(l2);
	assert_int_equal(wait_inline_off(&app, 0), 0);

	/* a second fast path: its own off from the start, and it waits too */
	struct app third;
	app_init(&third, f->p[1].st);
	free(third.cfg.node_name);
	third.cfg.node_name = strdup("fast:3");
	third.backlog = backlog_new(1);
	t0 = wall();
	assert_int_equal(lease_start(&third, STORE_ROLE_INGEST | STORE_ROLE_WORKER, &l2), 0);
	assert_true(wall() - t0 >= STORE_NODE_BEAT_MS);
	assert_int_equal(atomic_load(&third.inline_off), 1);
	assert_int_equal(wait_inline_off(&app, 1), 1);
	lease_stop(l2);
	assert_int_equal(wait_inline_off(&app, 0), 0);
	backlog_free(third.backlog);
	app_release(&third);

	lease_stop(l);
	buf_release(&b);
	backlog_free(app.backlog);
	app_release(&other);
	app_release(&app);
}

/* ---- recovery spares live senders --------------------------------------------------------- */

static int64_t queue(struct fx *f, struct proc *p)
{
	struct outbox_new o = {.tenant_id = f->tenant,
	                       .priority = PRIO_P1,
	                       .phone_number_id = "100000000001",
	                       .to = "919811111111",
	                       .reply_to = "wamid.IN",
	                       .body = "{}"};
	int64_t id = 0;
	assert_int_equal(store_outbox_add(p->c, &o, &id), 0);
	return id;
}

static int claim_rows(struct fx *f, struct proc *p)
{
	struct outbox_row *rows;
	int n = 0;
	assert_int_equal(store_outbox_claim(p->c, clock_wall_ms(), 10, PRIO_P3, &f->a, &rows, &n),
	                 0);
	return n;
}

static int recover(struct proc *p)
{
	int n = -1;
	assert_int_equal(store_outbox_recover(p->c, T0, &n), 0);
	return n;
}

static void test_recover_spares_live_senders(void **state)
{
	struct fx *f = *state;
	struct proc *a = &f->p[0], *b = &f->p[1], *none = &f->p[2];
	join(a, "host:1", STORE_ROLE_SENDER, T0);
	join(b, "host:2", STORE_ROLE_SENDER, T0);
	queue(f, a);
	queue(f, a);
	assert_int_equal(claim_rows(f, a), 2);
	/* a lives: nobody takes its sends, a itself neither */
	clock_set_fake(T0 + 1000);
	assert_int_equal(recover(b), 0);
	assert_int_equal(recover(a), 0);
	assert_int_equal(recover(none), 0); /* a process without a node */
	/* b's own sends are b's */
	queue(f, b);
	assert_int_equal(claim_rows(f, b), 1);
	assert_int_equal(recover(a), 0);
	/* a stops beating; once its lease has run out, its sends go back */
	assert_int_equal(store_node_beat(b->c, b->node, T0 + 5000, LEASE, NULL), 0);
	clock_set_fake(T0 + LEASE);
	assert_int_equal(recover(b), 2);
	assert_int_equal(recover(b), 0);
	/* a clean stop: b's at once, to a process without a node too */
	assert_int_equal(store_node_leave(b->c, b->node, T0 + LEASE), 0);
	assert_int_equal(recover(none), 1);
	/* the recovered rows are claimable again, due after the grace (T0) */
	assert_int_equal(claim_rows(f, none), 3);
}

static void test_recover_successor_at_once(void **state)
{
	struct fx *f = *state;
	struct proc *a = &f->p[0], *b = &f->p[1], *a2 = &f->p[2];
	join(a, "host:1", STORE_ROLE_SENDER, T0);
	join(b, "host:2", STORE_ROLE_SENDER, T0);
	queue(f, a);
	assert_int_equal(claim_rows(f, a), 1);
	/* host:1 killed and restarted: its new run takes the sends of the
	 * earlier one at once (after its journal's replay), b still waits */
	clock_set_fake(T0 + 1000);
	join(a2, "host:1", STORE_ROLE_SENDER, T0 + 1000);
	assert_int_equal(recover(b), 0);
	assert_int_equal(recover(a2), 1);
	/* born claimed rows carry the node too */
	struct outbox_new o = {.tenant_id = f->tenant,
	                       .priority = PRIO_P0,
	                       .phone_number_id = "100000000001",
	                       .to = "919811111111",
	                       .body = "{}",
	                       .claimed = 1};
	int64_t id;
	assert_int_equal(store_outbox_add(a2->c, &o, &id), 0);
	assert_int_equal(recover(b), 0);
	assert_int_equal(recover(a2), 0);
	clock_set_fake(T0 + 1000 + LEASE);
	assert_int_equal(recover(b), 1);
}

/* ---- the leader's lock ------------------------------------------------------------------ */

static void test_leader_lock(void **state)
{
	struct fx *f = *state;
	struct store_lock *l1, *l2, *l3;
	int held = -1;
	assert_int_equal(store_lock_new(f->p[0].st, NULL, 42, &l1), 0);
	assert_int_equal(store_lock_new(f->p[1].st, "", 42, &l2), 0);
	assert_int_equal(store_lock_new(f->p[1].st, NULL, 43, &l3), 0);
	assert_int_equal(store_lock_try(l1, &held), 0);
	assert_int_equal(held, 1);
	assert_int_equal(store_lock_try(l2, &held), 0);
	/* PostgreSQL: one holder; SQLite: its one process always leads */
	assert_int_equal(held, test_pg_base() ? 0 : 1);
	assert_int_equal(store_lock_try(l1, &held), 0); /* kept, not stacked */
	assert_int_equal(held, 1);
	assert_int_equal(store_lock_try(l3, &held), 0); /* another key */
	assert_int_equal(held, 1);
	/* the holder's session ends: the other takes over (the server lets go
	 * of the lock once that session's process has exited: a moment after) */
	store_lock_free(l1);
	int64_t until = clock_mono_us() / 1000 + 2000;
	do {
		assert_int_equal(store_lock_try(l2, &held), 0);
		if (!held)
			usleep(20 * 1000);
	} while (!held && clock_mono_us() / 1000 < until);
	assert_int_equal(held, 1);
	store_lock_free(l2);
	store_lock_free(l3);

	/* a server that does not answer: not held, and the reason */
	if (test_pg_base()) {
		struct store_lock *bad;
		assert_int_equal(
		        store_lock_new(f->p[0].st, "postgresql://nobody@127.0.0.1:1/x", 42, &bad),
		        0);
		assert_int_equal(store_lock_try(bad, &held), ERR_AGAIN);
		assert_int_equal(held, 0);
		assert_non_null(strstr(store_lock_errmsg(bad), "could not connect"));
		store_lock_free(bad);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_nodes_join_beat_leave, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lease_alone_takes_all, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lease_fair_share, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lease_expiry_takeover, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_lease_successor_takes_over_at_once, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_lease_concurrent_claims_never_double, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_fast_path_stands_aside_for_another_ingest,
	                                        setup, teardown),
	        cmocka_unit_test_setup_teardown(test_keeper_gives_back_between_batches, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_recover_spares_live_senders, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_recover_successor_at_once, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_leader_lock, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
