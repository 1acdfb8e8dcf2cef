/*
 * lease.c - the lease keeper: this process's node in the store, and the
 * queue partitions its workers may read (lease.h).
 *
 * Design
 *   Every serve process is a node (store.h, "processes"). The keeper joins
 *   at start, then, on a thread and a store connection of its own, every
 *   STORE_NODE_BEAT_MS:
 *
 *     store_node_beat           the node's lease, to now + STORE_NODE_LEASE_MS
 *     store_partitions_claim    (worker role) its partitions renewed, free
 *                               ones taken up to its fair share
 *     give back what is over the share: out of the mask under give_lock
 *                               held exclusive (the batches reading them
 *                               end first), then store_partitions_release
 *
 *   A process with both the ingest and the worker role runs messages in
 *   its webhooks' commits (the fast path), which is right only while it is
 *   the store's one ingest: its backlog sees only its own inbox writes. So
 *   after each beat its keeper reads the live nodes and, while another one
 *   has the ingest role, sets app->inline_off (every message then goes
 *   through the workers), clearing it once none has. An ingest process
 *   that joins beside such a process waits a beat and a margin
 *   (LEASE_INGEST_WAIT_MS) before its webhooks start, so that the fast
 *   path there is off by the time it writes an entry (a process with a
 *   fast path of its own too: its own is off from the start).
 *
 *   A partition's life in this process:
 *
 *            claim took it              over the share: give_back
 *     (not ours) -----------> in mask ------------------------------> (not ours)
 *                               |  the store says another holds it,
 *                               |  or no claim succeeded for
 *                               +--LEASE_READ_MS: reads end at once------> (not read)
 *
 *   The workers split the mask by partition number (worker.c: p % threads
 *   == thread), so a partition joining or leaving the mask never moves
 *   between threads: taking needs no lock, and a batch that read a
 *   partition is the only one reading it.
 *
 *   Reads end before the lease does: a claim that succeeded at t (the
 *   moment it was sent) lets the workers read until t + LEASE_READ_MS,
 *   STORE_NODE_LEASE_MS less LEASE_MARGIN_MS; another node may take the
 *   partitions only once the store's lease has run out (at the earliest
 *   t + STORE_NODE_LEASE_MS by the clocks of both), so the margin covers a
 *   batch still finishing and a small difference between the hosts'
 *   clocks. lease_hold checks the time itself, so a keeper stuck in a
 *   store call cannot keep the workers reading.
 *
 * Invariants
 *   - Only partitions the store granted (renewed or taken by the last
 *     claim) are in the mask, and only until their read deadline.
 *   - A partition given back leaves the mask before the store hears of
 *     it, while no batch holds the mask (give_lock exclusive).
 *
 * Threading: the keeper thread owns conn and writes mask, read_until and
 * the counters (atomics); worker threads call lease_hold/lease_unhold;
 * lease_start and lease_stop run on serve's main thread, before the
 * keeper thread starts and after it ended.
 */
#include "worker/lease.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/xalloc.h"

/* Reads stop this long before the store's lease ends (see the file comment). */
#define LEASE_MARGIN_MS 1000
#define LEASE_READ_MS   (STORE_NODE_LEASE_MS - LEASE_MARGIN_MS)
/* How long giving back waits for the batches in flight before trying at
 * the next beat. */
#define LEASE_GIVE_WAIT_MS 1000
/* How long a new ingest waits when another process runs the fast path. */
#define LEASE_INGEST_WAIT_MS (STORE_NODE_BEAT_MS + 1000)

struct lease {
	struct app *app;
	unsigned roles;
	char name[STORE_NODE_NAME_MAX];
	char host[64];
	_Atomic int64_t node;    /* written by the keeper (again after a lost node) */
	struct store_conn *conn; /* the keeper's */
	pthread_t thread;
	int started;
	struct notify wake; /* lease_stop, lease_drop_partitions */
	_Atomic int stop;
	_Atomic int drop; /* lease_drop_partitions: give all back, take none */
	/* the partitions the workers may read, and until when (mono ms) */
	_Atomic uint64_t mask;
	_Atomic int64_t read_until;
	pthread_rwlock_t give_lock; /* shared over a batch, exclusive to give back */
	/* keeper only */
	int beat_failing, claim_failing;
	/* counters, for the metrics */
	_Atomic uint64_t taken, given, lost, beat_failures;
};

static int64_t mono_ms(void)
{
	return clock_mono_us() / 1000;
}

static int nparts(uint64_t parts)
{
	return __builtin_popcountll(parts);
}

/* parts_text writes a mask as ranges ("0-15,32,40-47") into out. */
static const char *parts_text(uint64_t parts, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = '\0';
	for (int p = 0; p < STORE_PARTITIONS && n < cap; p++) {
		if (!(parts & (1ULL << p)))
			continue;
		int q = p;
		while (q + 1 < STORE_PARTITIONS && (parts & (1ULL << (q + 1))))
			q++;
		n += (size_t)snprintf(out + n, cap - n, q > p ? "%s%d-%d" : "%s%d", n ? "," : "", p,
		                      q);
		p = q;
	}
	if (!out[0])
		snprintf(out, cap, "none");
	return out;
}

/* node_name: --node-name, or host:port of --listen (host:pid<pid> for port 0). */
static void node_name(const struct config *cfg, const char *host, char *out, size_t cap)
{
	if (cfg->node_name && *cfg->node_name) {
		snprintf(out, cap, "%.*s", (int)cap - 1, cfg->node_name);
		return;
	}
	const char *colon = cfg->listen ? strrchr(cfg->listen, ':') : NULL;
	int port = colon ? atoi(colon + 1) : 0;
	if (port > 0)
		snprintf(out, cap, "%.63s:%d", host, port);
	else
		snprintf(out, cap, "%.63s:pid%ld", host, (long)getpid());
}

/* join makes the process a node (again, after the store forgot it). */
static int join(struct lease *l)
{
	struct store_node n = {
	        .name = l->name,
	        .roles = l->roles,
	        .host = l->host,
	        .pid = (int64_t)getpid(),
	        .started_at = clock_wall_ms(),
	};
	int64_t id = 0;
	int rc = store_node_join(l->conn, &n, clock_wall_ms(), STORE_NODE_LEASE_MS, &id);
	if (rc != 0)
		return rc;
	atomic_store(&l->node, id);
	store_set_node(l->app->store, id);
	return 0;
}

/*
 * give_back takes parts out of the mask once no batch holds it, then gives
 * them back to the store. 0, or 1 when the batches did not end in time
 * (tried again at the next beat).
 */
static int give_back(struct lease *l, uint64_t parts)
{
	struct timespec until = clock_deadline(CLOCK_REALTIME, LEASE_GIVE_WAIT_MS);
	if (pthread_rwlock_timedwrlock(&l->give_lock, &until) != 0)
		return 1;
	atomic_fetch_and(&l->mask, ~parts);
	pthread_rwlock_unlock(&l->give_lock);
	char text[256];
	int rc = store_partitions_release(l->conn, atomic_load(&l->node), parts);
	if (rc != 0) {
		/* still ours in the store: the next claim renews them, and they
		 * are given back again then */
		log_warn("lease.give_failed", "could not give back partitions %s: %s",
		         parts_text(parts, text, sizeof(text)), store_errmsg(l->conn));
		return 0;
	}
	atomic_fetch_add(&l->given, (uint64_t)nparts(parts));
	log_info("lease.given", "gave back partitions %s (over this node's fair share)",
	         parts_text(parts, text, sizeof(text)));
	return 0;
}

/* over_share: the count highest partitions of owned, to give back. */
static uint64_t over_share(uint64_t owned, int count)
{
	uint64_t give = 0;
	for (int p = STORE_PARTITIONS - 1; p >= 0 && count > 0; p--)
		if (owned & (1ULL << p)) {
			give |= 1ULL << p;
			count--;
		}
	return give;
}

/* claim renews and takes partitions, and gives back what is over the share. */
static void claim(struct lease *l, int64_t sent_mono)
{
	uint64_t owned = 0, taken = 0;
	int share = 0;
	char text[256];
	int rc = store_partitions_claim(l->conn, atomic_load(&l->node), clock_wall_ms(),
	                                STORE_NODE_LEASE_MS, &owned, &share, &taken);
	if (rc != 0) {
		if (!l->claim_failing)
			log_error("lease.claim_failed",
			          "could not renew this node's partitions: %s (reads stop when the "
			          "lease runs out)",
			          store_errmsg(l->conn));
		l->claim_failing = 1;
		return;
	}
	if (l->claim_failing)
		log_info("lease.claim_recovered", "this node's partitions are renewed again");
	l->claim_failing = 0;
	uint64_t had = atomic_load(&l->mask);
	int64_t was_until = atomic_load(&l->read_until);
	uint64_t lost = had & ~owned;
	if (lost) {
		atomic_fetch_and(&l->mask, owned);
		atomic_fetch_add(&l->lost, (uint64_t)nparts(lost));
		log_warn("lease.lost", "partitions %s are no longer this node's: reads stopped",
		         parts_text(lost, text, sizeof(text)));
	}
	/* over the share (another node joined): the highest go back */
	int over = nparts(owned) - share;
	uint64_t give = over > 0 ? over_share(owned, over) : 0;
	atomic_store(&l->read_until, sent_mono + LEASE_READ_MS);
	/* everything granted is readable again, a lapse's partitions too */
	uint64_t gained = owned & ~give & ~(was_until > sent_mono ? had : 0);
	atomic_fetch_or(&l->mask, owned & ~give);
	if (taken) {
		atomic_fetch_add(&l->taken, (uint64_t)nparts(taken));
		log_info("lease.taken", "took partitions %s (fair share %d, %d held)",
		         parts_text(taken, text, sizeof(text)), share, nparts(owned));
	}
	if (gained)
		app_inbox_wake(l->app, gained); /* workers: more to read */
	if (give)
		give_back(l, give);
}

/* beat renews the node's lease (joining again if the store forgot it). */
static void beat(struct lease *l)
{
	int lapsed = 0;
	int64_t node = atomic_load(&l->node);
	int rc = store_node_beat(l->conn, node, clock_wall_ms(), STORE_NODE_LEASE_MS, &lapsed);
	if (rc == ERR_NOTFOUND) {
		log_error("lease.node_forgotten",
		          "the store no longer knows node %lld (its lease ran out long ago): "
		          "joining again",
		          (long long)node);
		rc = join(l);
	}
	if (rc != 0) {
		atomic_fetch_add(&l->beat_failures, 1);
		if (!l->beat_failing)
			log_error("lease.beat_failed", "could not renew node %lld's lease: %s",
			          (long long)node, store_errmsg(l->conn));
		l->beat_failing = 1;
		return;
	}
	if (l->beat_failing || lapsed)
		log_warn("lease.beat_recovered", "node %lld's lease is renewed again%s",
		         (long long)node,
		         lapsed ? "; it had run out, so the others may have taken over its "
		                  "partitions and sends meanwhile"
		                : "");
	l->beat_failing = 0;
}

/*
 * other_ingest reads the live nodes: 1 if one besides this node has the
 * ingest role (and, with fast_only, the worker role too: a fast path),
 * its name in who; 0 if none; < 0 if they could not be read.
 */
static int other_ingest(struct lease *l, int fast_only, char *who, size_t cap)
{
	struct arena a;
	struct store_node *nodes;
	int n = 0, found = 0;
	unsigned want = STORE_ROLE_INGEST | (fast_only ? STORE_ROLE_WORKER : 0);
	arena_init(&a, 4096);
	int rc = store_nodes_live(l->conn, clock_wall_ms(), &a, &nodes, &n);
	for (int i = 0; rc == 0 && i < n && !found; i++)
		if (nodes[i].id != atomic_load(&l->node) && (nodes[i].roles & want) == want) {
			snprintf(who, cap, "%s", nodes[i].name);
			found = 1;
		}
	arena_release(&a);
	return rc < 0 ? rc : found;
}

/* check_fast_path: with the fast path here, off while another live node
 * takes webhooks, on again once none does. */
static void check_fast_path(struct lease *l)
{
	char who[STORE_NODE_NAME_MAX] = "";
	int other = other_ingest(l, 0, who, sizeof(who));
	if (other < 0)
		return; /* unknown: as it was, until the next beat */
	if (atomic_exchange(&l->app->inline_off, other) == other)
		return;
	if (other)
		log_warn("lease.fast_path_off",
		         "node \"%s\" also takes webhooks: messages go through the workers, not "
		         "the webhooks' commits, while it lives",
		         who);
	else
		log_info("lease.fast_path_on",
		         "no other node takes webhooks: the webhooks' commits run messages again");
}

/* drop_all gives back every partition, the workers gone. */
static void drop_all(struct lease *l)
{
	uint64_t had = atomic_exchange(&l->mask, 0);
	atomic_store(&l->read_until, 0);
	/* the store may hold more for us than the mask (a claim's grant not
	 * yet read): all of them */
	if (store_partitions_release(l->conn, atomic_load(&l->node), STORE_ALL_PARTITIONS) != 0)
		log_warn("lease.give_failed", "could not give back this node's partitions: %s",
		         store_errmsg(l->conn));
	else if (had)
		atomic_fetch_add(&l->given, (uint64_t)nparts(had));
}

static int fast_path(const struct lease *l)
{
	return l->app->backlog != NULL;
}

static void *keeper_main(void *arg)
{
	struct lease *l = arg;
	pthread_setname_np(pthread_self(), "lease");
	uint64_t seen = 0;
	int dropped = 0;
	int64_t next = mono_ms() + STORE_NODE_BEAT_MS;
	while (!atomic_load(&l->stop)) {
		int64_t wait = next - mono_ms();
		if (wait > 0)
			notify_wait(&l->wake, &seen, (int)wait);
		if (atomic_load(&l->stop))
			break;
		if (atomic_load(&l->drop) && !dropped) {
			drop_all(l);
			dropped = 1;
		}
		if (mono_ms() < next)
			continue;
		int64_t sent = mono_ms();
		next = sent + STORE_NODE_BEAT_MS;
		beat(l);
		if (fast_path(l))
			check_fast_path(l);
		if ((l->roles & STORE_ROLE_WORKER) && !atomic_load(&l->drop))
			claim(l, sent);
	}
	return NULL;
}

int lease_start(struct app *app, unsigned roles, struct lease **out)
{
	*out = NULL;
	struct lease *l = xcalloc(1, sizeof(*l));
	l->app = app;
	l->roles = roles;
	if (gethostname(l->host, sizeof(l->host)) != 0 || !l->host[0])
		snprintf(l->host, sizeof(l->host), "localhost");
	l->host[sizeof(l->host) - 1] = '\0';
	node_name(&app->cfg, l->host, l->name, sizeof(l->name));
	notify_init(&l->wake);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&l->give_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	int rc = store_connect(app->store, &l->conn);
	if (rc == 0)
		rc = join(l);
	if (rc != 0) {
		log_error("serve.start_failed", "could not join the store's nodes as \"%s\": %s",
		          l->name, l->conn ? store_errmsg(l->conn) : err_str(rc));
		goto fail;
	}
	if (roles & STORE_ROLE_WORKER) {
		claim(l, mono_ms());
		if (l->claim_failing) {
			rc = ERR_AGAIN;
			goto fail;
		}
	}
	char who[STORE_NODE_NAME_MAX] = "";
	if (fast_path(l))
		check_fast_path(l);
	/* a fast path elsewhere must be off before this ingest writes an entry
	 * (this one's own, if any, is off already: it sees that one) */
	if ((roles & STORE_ROLE_INGEST) && other_ingest(l, 1, who, sizeof(who)) == 1) {
		log_info("lease.ingest_wait",
		         "node \"%s\" runs messages in its webhooks' commits: waiting %d ms for it "
		         "to see this one before taking webhooks",
		         who, LEASE_INGEST_WAIT_MS);
		usleep(LEASE_INGEST_WAIT_MS * 1000);
	}
	if ((rc = pthread_create(&l->thread, NULL, keeper_main, l)) != 0) {
		log_error("serve.start_failed", "could not start the lease thread: %s",
		          strerror(rc));
		rc = ERR_NOMEM;
		goto fail;
	}
	l->started = 1;
	char text[256];
	log_info("lease.joined", "node %lld \"%s\" joined%s%s", (long long)atomic_load(&l->node),
	         l->name, (roles & STORE_ROLE_WORKER) ? "; partitions " : "",
	         (roles & STORE_ROLE_WORKER) ? parts_text(atomic_load(&l->mask), text, sizeof(text))
	                                     : "");
	*out = l;
	return 0;
fail:
	store_disconnect(l->conn);
	l->conn = NULL;
	pthread_rwlock_destroy(&l->give_lock);
	notify_release(&l->wake);
	free(l);
	return rc;
}

void lease_stop(struct lease *l)
{
	if (!l)
		return;
	atomic_store(&l->stop, 1);
	notify_signal(&l->wake);
	if (l->started)
		pthread_join(l->thread, NULL);
	atomic_store(&l->mask, 0);
	int64_t node = atomic_load(&l->node);
	if (store_node_leave(l->conn, node, clock_wall_ms()) != 0)
		log_warn("lease.leave_failed",
		         "could not leave the store's nodes: %s (the others take over when the "
		         "lease runs out)",
		         store_errmsg(l->conn));
	else
		log_info("lease.left", "node %lld left; its partitions are free", (long long)node);
	store_set_node(l->app->store, 0);
	store_disconnect(l->conn);
	pthread_rwlock_destroy(&l->give_lock);
	notify_release(&l->wake);
	free(l);
}

void lease_drop_partitions(struct lease *l)
{
	if (!l)
		return;
	atomic_store(&l->drop, 1);
	atomic_store(&l->mask, 0);
	notify_signal(&l->wake);
}

uint64_t lease_hold(struct lease *l)
{
	if (!l)
		return STORE_ALL_PARTITIONS;
	pthread_rwlock_rdlock(&l->give_lock);
	if (mono_ms() >= atomic_load(&l->read_until))
		return 0; /* the lease may have run out: read nothing */
	return atomic_load(&l->mask);
}

void lease_unhold(struct lease *l)
{
	if (l)
		pthread_rwlock_unlock(&l->give_lock);
}

int64_t lease_node(const struct lease *l)
{
	return l ? atomic_load(&l->node) : 0;
}

uint64_t lease_partitions(const struct lease *l)
{
	if (!l)
		return STORE_ALL_PARTITIONS;
	if (mono_ms() >= atomic_load(&l->read_until))
		return 0;
	return atomic_load(&l->mask);
}

void lease_render_metrics(const struct lease *l, struct buf *b)
{
	if (!l)
		return;
	buf_printf(b,
	           "# HELP munim_node_id This process's node in the store (its id).\n"
	           "# TYPE munim_node_id gauge\nmunim_node_id %lld\n",
	           (long long)atomic_load(&l->node));
	buf_printf(b,
	           "# HELP munim_node_beat_failures_total Renewals of the node's lease that "
	           "failed.\n# TYPE munim_node_beat_failures_total counter\n"
	           "munim_node_beat_failures_total %llu\n",
	           (unsigned long long)atomic_load(&l->beat_failures));
	if (fast_path(l))
		buf_printf(b,
		           "# HELP munim_ingest_fast_path 1 while webhooks' commits run their "
		           "messages; 0 while another process takes webhooks too.\n"
		           "# TYPE munim_ingest_fast_path gauge\nmunim_ingest_fast_path %d\n",
		           !atomic_load(&l->app->inline_off));
	if (!(l->roles & STORE_ROLE_WORKER))
		return;
	buf_printf(b,
	           "# HELP munim_worker_partitions Queue partitions this process's workers read"
	           " now (held by lease).\n# TYPE munim_worker_partitions gauge\n"
	           "munim_worker_partitions %d\n",
	           nparts(lease_partitions(l)));
	buf_printf(b,
	           "# HELP munim_worker_partition_moves_total Partition leases this process took,"
	           " gave back (over its share) and lost (run out or taken).\n"
	           "# TYPE munim_worker_partition_moves_total counter\n"
	           "munim_worker_partition_moves_total{move=\"taken\"} %llu\n"
	           "munim_worker_partition_moves_total{move=\"given\"} %llu\n"
	           "munim_worker_partition_moves_total{move=\"lost\"} %llu\n",
	           (unsigned long long)atomic_load(&l->taken),
	           (unsigned long long)atomic_load(&l->given),
	           (unsigned long long)atomic_load(&l->lost));
}
