/*
 * serve.c - `munim serve`: the service. Builds the one struct app, opens
 * and migrates the store, starts the sender (which first recovers sends a
 * crash interrupted), the worker pool, the ingest committer and the HTTP
 * server, then waits for SIGINT/SIGTERM.
 *
 * Start-up order matters for the durability promise: nothing answers a
 * webhook until the store is migrated and open; at shutdown a request is
 * answered 200 only if its commit finished, 503 otherwise, and the HTTP
 * server stops before the ingest state its handlers use is freed.
 *
 * Endpoints besides the webhooks: /metrics (Prometheus text), /healthz
 * (the process is alive), /readyz (start-up finished, not stopping), and
 * with the ingest role the merchant API's POST /v1/campaigns
 * (campaign/campaign.h) and the companion app's /v1/stock, /v1/orders,
 * /v1/invoices and /v1/sync (companion/companion.h).
 *
 * --roles names which parts run (default all): ingest (the webhook routes
 * and their committer), worker (the inbox pool), sender (the outbox),
 * controller (may lead the cluster-wide jobs: control/leader.h). Without
 * ingest the server still answers /metrics, /healthz and /readyz. The
 * parts that run keep the order above.
 *
 * Every process joins the store as a node first (worker/lease.h): the
 * workers read only the partitions it holds by lease, and the sender's
 * claims carry its id, so that a dead process's work is taken over and a
 * live one's never. It leaves last, once the sender's last sends are
 * recorded.
 *
 * With --redis (cluster/cluster.h) the sender shares each number's budget
 * and its breakers' openings with the other senders, and the controller
 * reads the signals of every process; without it, or while Redis does not
 * answer, each process goes on alone.
 */
#include <malloc.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ai/ai.h"
#include "app.h"
#include "campaign/campaign.h"
#include "companion/companion.h"
#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "cluster/cluster.h"
#include "control/controller.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/proc.h"
#include "core/xalloc.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "plan/plan.h"
#include "send/delivery.h"
#include "send/sender.h"
#include "send/sms_dlr.h"
#include "control/leader.h"
#include "worker/backlog.h"
#include "worker/lease.h"
#include "worker/worker.h"

const char *const cli_serve_opts[] = {
        CLI_STORE_OPTS,
        "db-busy-timeout-ms",
        "db-replica",
        "replica-max-lag-ms",
        "db-listen",
        "listen",
        "bsp-url",
        "app-secret",
        "verify-token",
        "access-token",
        "graph-version",
        "workers",
        "http-threads",
        "max-body",
        "commit-batch",
        "commit-window-ms",
        "worker-batch",
        "inline-max",
        "send-inflight",
        "send-journal",
        "send-recover-grace-ms",
        "send-timeout-ms",
        "send-max-attempts",
        "retry-base-ms",
        "retry-cap-ms",
        "process-attempts",
        "roles",
        "node-name",
        "bsp-token",
        "bsp-auth-header",
        "bsp-format",
        "sms-url",
        "sms-token",
        "sms-template-id",
        "sms-dlr-token",
        "breaker-failures",
        "breaker-successes",
        "breaker-open-ms",
        "breaker-jitter-pct",
        "breaker-window-ms",
        "breaker-min-calls",
        "breaker-failure-rate-pct",
        "breaker-probes",
        "breaker-slow-ms",
        "pace-per-number",
        "redis",
        "redis-timeout-ms",
        "senders",
        "hold-max-ms",
        "delivery-min-pct",
        "delivery-window-ms",
        "delivery-min-reports",
        "alert-url",
        PLAN_SPIKE_OPTS,
        "spike-error-pct-3",
        "spike-error-pct-4",
        "spike-hold-ms",
        "control-window-s",
        "companion-sync-max-ops",
        "degrade-ai-p95-ms",
        "degrade-ai-error-pct",
        "degrade-store-error-pct",
        "degrade-hold-ms",
        "marketing-retry-after-s",
        "workers-max",
        PLAN_AUTOSCALE_OPTS,
        "ai-url",
        "ai-token",
        "ai-model",
        "ai-timeout-ms",
        "ai-concurrency",
        "ai-breaker-failures",
        "ai-breaker-successes",
        "ai-breaker-open-ms",
        "ai-poll-ms",
        NULL,
};

/* What /metrics reads: the app, and the sender once it runs. */
struct metrics_src {
	struct app *app;
	struct sender *sender;
	struct controller *control;
};

/* GET /status: the controller's levels and why, as JSON. */
static void on_status(struct http_req *r, void *ud)
{
	struct buf b;
	buf_init(&b);
	controller_render_status(ud, &b);
	http_respond(r, 200, "application/json", b.data, b.len);
	buf_release(&b);
}

static void on_metrics(struct http_req *r, void *ud)
{
	const struct metrics_src *src = ud;
	struct app *app = src->app;
	struct buf b;
	buf_init(&b);
	metrics_render(&app->metrics, &b);
	sender_render_metrics(src->sender, &b);
	cluster_sender_render(app->cluster, &b);
	ai_render_metrics(app->ai, &b);
	delivery_render(app->delivery, &b, clock_wall_ms());
	controller_render_metrics(src->control, &b);
	lease_render_metrics(app->lease, &b);
	leader_render_metrics(app->leader, &b);
	buf_printf(&b,
	           "# HELP munim_ready 1 when serve is ready.\n# TYPE munim_ready gauge\n"
	           "munim_ready %d\n",
	           atomic_load(&app->ready) && !atomic_load(&app->stopping));
	buf_printf(&b,
	           "# HELP munim_store_checkpoints_total WAL checkpoints made by the store's"
	           " background thread.\n# TYPE munim_store_checkpoints_total counter\n"
	           "munim_store_checkpoints_total %lld\n",
	           (long long)store_checkpoints(app->store));
	buf_printf(&b,
	           "# HELP munim_store_memory_bytes Memory the database library holds (page"
	           " caches, statements).\n# TYPE munim_store_memory_bytes gauge\n"
	           "munim_store_memory_bytes %lld\n",
	           (long long)store_memory_bytes(app->store));
	http_respond(r, 200, "text/plain; version=0.0.4", b.data, b.len);
	buf_release(&b);
}

static void on_healthz(struct http_req *r, void *ud)
{
	(void)ud;
	http_respond(r, 200, "text/plain", "ok\n", 3);
}

static void on_readyz(struct http_req *r, void *ud)
{
	struct app *app = ud;
	if (atomic_load(&app->ready) && !atomic_load(&app->stopping))
		http_respond(r, 200, "text/plain", "ready\n", 6);
	else
		http_respond(r, 503, "text/plain", "not ready\n", 10);
}

/* The roles, as the store's nodes record them. */
enum {
	ROLE_INGEST = STORE_ROLE_INGEST,
	ROLE_WORKER = STORE_ROLE_WORKER,
	ROLE_SENDER = STORE_ROLE_SENDER,
	ROLE_CONTROLLER = STORE_ROLE_CONTROLLER,
};

/*
 * parse_roles turns a comma-separated list of role names into ROLE_* bits in
 * *out. Every element must name a role (a repeat is harmless); an empty list
 * or element is refused. Returns 0, or ERR_INVAL with the message printed.
 */
static int parse_roles(const char *list, unsigned *out)
{
	static const struct {
		const char *name;
		unsigned bit;
	} names[] = {{"ingest", ROLE_INGEST},
	             {"worker", ROLE_WORKER},
	             {"sender", ROLE_SENDER},
	             {"controller", ROLE_CONTROLLER}};
	unsigned roles = 0;
	const char *p = list ? list : "";
	for (;;) {
		size_t len = strcspn(p, ",");
		unsigned bit = 0;
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (strlen(names[i].name) == len && memcmp(names[i].name, p, len) == 0)
				bit = names[i].bit;
		if (!bit) {
			int shown = len > 64 ? 64 : (int)len;
			fprintf(stderr,
			        "munim serve: unknown role \"%.*s\" (ingest, worker, sender, "
			        "controller)\n",
			        shown, p);
			return ERR_INVAL;
		}
		roles |= bit;
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	*out = roles;
	return 0;
}

static int require(const char *value, const char *flag, const char *env)
{
	if (value && *value)
		return 0;
	fprintf(stderr, "munim serve: %s is required (or set %s)\n", flag, env);
	return ERR_INVAL;
}

/* on_store_wake: another process committed work for this one's roles
 * (store_listen_start; PostgreSQL). */
static void on_store_wake(void *arg, enum store_wake what, uint64_t parts)
{
	struct app *app = arg;
	if (what == STORE_WAKE_INBOX)
		app_inbox_wake(app, parts);
	else
		notify_signal(&app->outbox_ready);
}

/*
 * The gauges that mirror store state (inbox depth, outbox rows by priority
 * and state) start from the store's own counts, read before any role runs;
 * every change after that moves them as it commits. Both reads cost the
 * same however large the history (a partial index, a table of 16 counts).
 */
static int load_gauges(struct app *app, struct store_conn *c)
{
	int64_t depth = 0;
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	int rc = store_inbox_depth(c, &depth);
	if (rc == 0)
		rc = store_outbox_counts(c, counts);
	if (rc != 0) {
		log_error("serve.start_failed", "could not read queue depths: %s", store_errmsg(c));
		return rc;
	}
	atomic_store(&app->metrics.inbox_depth, depth);
	for (int p = 0; p < PRIO_COUNT; p++)
		for (int s = 0; s < OUTBOX_STATE_COUNT; s++)
			atomic_store(&app->metrics.outbox[p][s], counts[p][s]);
	return 0;
}

/* Most waiting entries read at start-up to know whose messages wait. */
#define SERVE_BACKLOG_LOAD 100000
/* Open files beyond the connections: the store, its journal, logs, epoll sets. */
#define SERVE_SPARE_FDS 64

/*
 * The customers whose messages wait in the inbox at start-up (a crash, or
 * a stop under load, left them): known, the fast path serves everyone
 * else at once rather than after the workers have emptied the inbox.
 * More than SERVE_BACKLOG_LOAD entries, or a failed read: unknown until
 * the inbox is seen empty (backlog.h). Before any role runs.
 */
static struct backlog *load_backlog(struct app *app, struct store_conn *c)
{
	if (atomic_load(&app->metrics.inbox_depth) == 0)
		return backlog_new(1);
	struct arena a;
	struct inbox_waiting *w;
	int n;
	arena_init(&a, 64 * 1024);
	int rc = store_inbox_waiting(c, SERVE_BACKLOG_LOAD, &a, &w, &n);
	struct backlog *b = backlog_new(rc == 0);
	for (int i = 0; rc == 0 && i < n; i++)
		backlog_add(b, w[i].tenant_id, w[i].from);
	if (rc == 0)
		log_info("serve.backlog_loaded",
		         "%d messages wait in the inbox; their customers' next ones wait behind "
		         "them, everyone else's take the fast path",
		         n);
	else
		log_info("serve.backlog_unknown",
		         "messages wait in the inbox and whose is not known (%s): none takes the "
		         "fast path until the workers have processed them",
		         store_errmsg(c));
	arena_release(&a);
	return b;
}

int cmd_serve(int argc, char **argv)
{
	struct app app;
	memset(&app, 0, sizeof(app));
	int64_t t0 = clock_mono_us();
	int npos, exit_code = 1;
	int rc = cli_setup(&app.cfg, "serve", "[options]", cli_serve_opts, argc, argv, NULL, 0,
	                   &npos);
	if (rc != 0) {
		config_release(&app.cfg);
		return rc > 0 ? 0 : 2;
	}
	if (require(app.cfg.app_secret, "--app-secret", "MUNIM_APP_SECRET") ||
	    require(app.cfg.verify_token, "--verify-token", "MUNIM_VERIFY_TOKEN") ||
	    require(app.cfg.access_token, "--access-token", "MUNIM_ACCESS_TOKEN")) {
		config_release(&app.cfg);
		return 2;
	}
	unsigned roles = 0;
	if (parse_roles(app.cfg.roles, &roles) != 0) {
		config_release(&app.cfg);
		return 2;
	}
	if (*app.cfg.redis && cluster_redis_check(app.cfg.redis) != 0) {
		fprintf(stderr, "munim serve: --redis must be redis://[:password@]host[:port][/db] "
		                "or a unix socket path\n");
		config_release(&app.cfg);
		return 2;
	}

	/* glibc hands the top of each thread's heap back to the kernel whenever
	 * more than the trim threshold is free there, and raises the threshold
	 * on its own as it goes: a busy worker gave memory back and took it
	 * again about 500 times a second (madvise + page faults). A fixed
	 * threshold keeps up to 8 MiB per heap; memory stays bounded by what
	 * the threads really use at their busiest. */
	mallopt(M_TRIM_THRESHOLD, 8 << 20);

	/* stop signals go to the main thread only: block them before threads start */
	sigset_t sigs;
	proc_block_stop_signals(&sigs);
	/* every webhook connection and every request in flight to the provider
	 * holds a file open; the common soft limit of 1,024 is not enough */
	long long need_fds = HTTP_MAX_CONNECTIONS + app.cfg.send_inflight + SERVE_SPARE_FDS;
	long long have_fds = 0;
	if (proc_ensure_fds(need_fds, &have_fds) != 0)
		log_warn("serve.fd_limit",
		         "the open-files limit is %lld, below the %lld that %d webhook "
		         "connections and --send-inflight %lld need; raise it (ulimit -n)",
		         have_fds, need_fds, HTTP_MAX_CONNECTIONS,
		         (long long)app.cfg.send_inflight);

	metrics_init(&app.metrics);
	notify_init(&app.inbox_ready);
	notify_init(&app.outbox_ready);

	struct store_conn *c = NULL;
	struct sender *sender = NULL;
	struct worker_pool *workers = NULL;
	struct ingest *ingest = NULL;
	struct campaign *campaigns = NULL;
	struct companion *companions = NULL;
	struct sms_dlr *dlr = NULL;
	struct controller *control = NULL;
	struct http_server *http = NULL;

	if (!*app.cfg.send_journal && (roles & ROLE_SENDER)) {
		/* a file store keeps the send journal beside it; a server's
		 * sender process keeps its own in the working directory, named
		 * by its port so that processes of one machine keep apart */
		const char *port = strrchr(app.cfg.listen, ':');
		size_t n = strlen(app.cfg.db) + strlen(app.cfg.listen) + sizeof("munim-sendlog-");
		free(app.cfg.send_journal);
		app.cfg.send_journal = xmalloc(n);
		if (strstr(app.cfg.db, "://"))
			snprintf(app.cfg.send_journal, n, "munim-sendlog-%s",
			         port ? port + 1 : "0");
		else
			snprintf(app.cfg.send_journal, n, "%s-sendlog", app.cfg.db);
	}
	if (cli_open(&app.cfg, 1, &app.store, &c) != 0)
		goto out;
	store_set_replicas(app.store, app.cfg.db_replica, (int)app.cfg.replica_max_lag_ms);
	if (*app.cfg.db_replica && !strstr(app.cfg.db, "://"))
		log_warn("serve.replicas_ignored", "--db-replica is for a PostgreSQL store; a "
		                                   "SQLite store reads its own file");
	if (load_gauges(&app, c) != 0)
		goto out;
	if (delivery_new(app.cfg.delivery_window_ms, (int)app.cfg.delivery_min_reports,
	                 (int)app.cfg.delivery_min_pct, &app.delivery) != 0) {
		log_error("serve.start_failed", "the delivery-rate settings are out of bounds");
		goto out;
	}
	/* before the threads connect: no commit of theirs copies the WAL */
	if (store_checkpoint_in_background(app.store) != 0)
		goto out;
	/* the fast path needs both ends in this process; its backlog knows
	 * this process's inbox writes only, so on a shared store it stands
	 * aside while another process takes webhooks (lease.c) */
	if ((roles & ROLE_INGEST) && (roles & ROLE_WORKER) && app.cfg.inline_max > 0)
		app.backlog = load_backlog(&app, c);
	/* a node before any role: the workers' partitions, the sender's
	 * claims and its recovery of a dead node's sends need it */
	if (lease_start(&app, roles, &app.lease) != 0)
		goto out;
	if ((roles & (ROLE_WORKER | ROLE_SENDER)) &&
	    store_listen_start(app.store, app.cfg.db_listen, on_store_wake, &app) != 0) {
		log_error("serve.start_failed", "could not start listening for other processes");
		goto out;
	}
	if ((roles & ROLE_SENDER) && *app.cfg.redis) {
		char node[160];
		cluster_node_name(node, sizeof(node));
		if (cluster_sender_new(&app.cfg, node, &app.cluster) != 0) {
			log_error("serve.start_failed",
			          "the shared send budget's settings are invalid");
			goto out;
		}
	}
	if ((roles & ROLE_SENDER) && sender_start(&app, &sender) != 0)
		goto out;
	/* before the ERP runs anywhere - workers, the fast path, campaigns: it
	 * reads the AI setting and the spike level through it - and before the
	 * controller (it polls the AI's signals) */
	if ((roles & (ROLE_WORKER | ROLE_INGEST)) && ai_start(&app, &app.ai) != 0)
		goto out;
	if ((roles & ROLE_WORKER) && worker_pool_start(&app, sender, &workers) != 0)
		goto out;
	if ((roles & ROLE_CONTROLLER) && leader_start(&app, &app.leader) != 0)
		goto out;
	if (controller_start(&app, sender, workers, &control) != 0)
		goto out;
	if ((roles & ROLE_INGEST) && ingest_start(&app, sender, &ingest) != 0)
		goto out;
	if ((roles & ROLE_INGEST) && campaign_start(&app, &campaigns) != 0)
		goto out;
	if ((roles & ROLE_INGEST) && companion_start(&app, &companions) != 0)
		goto out;

	if ((roles & ROLE_INGEST) && sms_dlr_start(&app, &dlr) != 0)
		goto out;

	struct http_route routes[24];
	int nroutes = ingest ? ingest_routes(ingest, routes, 8) : 0;
	if (campaigns)
		nroutes += campaign_routes(campaigns, routes + nroutes, 8 - nroutes);
	nroutes += sms_dlr_routes(dlr, routes + nroutes, 9 - nroutes);
	if (companions) /* room left for the four below */
		nroutes += companion_routes(companions, routes + nroutes, 20 - nroutes);
	struct metrics_src msrc = {&app, sender, control};
	routes[nroutes++] = (struct http_route){"GET", "/metrics", 0, on_metrics, &msrc, NULL};
	routes[nroutes++] = (struct http_route){"GET", "/status", 0, on_status, control, NULL};
	routes[nroutes++] = (struct http_route){"GET", "/healthz", 0, on_healthz, &app, NULL};
	routes[nroutes++] = (struct http_route){"GET", "/readyz", 0, on_readyz, &app, NULL};
	rc = http_server_start(app.cfg.listen, (int)app.cfg.http_threads, (size_t)app.cfg.max_body,
	                       routes, nroutes, &http);
	if (rc != 0) {
		log_error("serve.listen_failed", "could not listen on %s: %s", app.cfg.listen,
		          err_str(rc));
		goto out;
	}
	atomic_store(&app.ready, 1);
	char shown[STORE_URL_SHOWN];
	log_info("serve.ready",
	         "munim serving on port %d (store %s, roles %s, %lld workers), ready in %lld ms",
	         http_server_port(http), store_url_display(app.cfg.db, shown, sizeof(shown)),
	         app.cfg.roles, (long long)(workers ? app.cfg.workers : 0),
	         (long long)((clock_mono_us() - t0) / 1000));

	int sig = proc_wait_stop(&sigs);
	log_info("serve.stopping", "received signal %d, stopping", sig);
	exit_code = 0;
out:
	atomic_store(&app.stopping, 1);
	/* the server answers new requests 503 and gives suspended webhooks a
	 * grace period to get their commit's answer (503 past it); then the
	 * committer finishes its commit and answers anything still queued 503 */
	http_server_stop(http);
	campaign_stop(campaigns);
	companion_stop(companions);
	sms_dlr_stop(dlr);
	ingest_stop(ingest);
	controller_stop(control); /* it resizes the pool and reads the sender */
	leader_stop(app.leader);  /* a standby takes over */
	app.leader = NULL;
	worker_pool_stop(workers);
	lease_drop_partitions(app.lease); /* another worker process takes them */
	sender_stop(sender);
	cluster_sender_free(app.cluster); /* after its only user, the sender */
	app.cluster = NULL;
	if (app.store)
		store_listen_stop(app.store);
	ai_stop(app.ai); /* after the controller, which reads its signals */
	app.ai = NULL;
	/* last: a live node's sends are never taken over while it records them */
	lease_stop(app.lease);
	app.lease = NULL;
	backlog_free(app.backlog);
	delivery_free(app.delivery);
	cli_close(app.store, c);
	notify_release(&app.inbox_ready);
	notify_release(&app.outbox_ready);
	config_release(&app.cfg);
	return exit_code;
}
