/*
 * pg_listen.c - wake-ups between processes: a commit that leaves new work
 * in the inbox or the outbox sends NOTIFY on munim_inbox / munim_outbox
 * (store_pg.c, at COMMIT, when the transaction asked for it with
 * store__pg_wake), and a thread of each process that wants to know LISTENs
 * and calls the process's callback.
 *
 * Design
 *   One thread and one connection per store (store_listen_start). LISTEN
 *   lasts for a session, so this connection must go to PostgreSQL itself,
 *   not through PgBouncer in transaction mode: the url is the store's, or
 *   --db-listen's. The thread polls the socket (1 s), reads every
 *   notification and calls back once per channel per wake-up, with the
 *   partitions the notifications named (munim_inbox's payload: a
 *   hexadecimal mask; none, or one that does not read as a mask, stands
 *   for every partition), so a process's workers read only those. NOTIFY is
 *   transactional: a notification arrives only after the commit it belongs
 *   to, so a woken worker finds the rows.
 *
 *   Wake-ups are a latency optimisation, never the only way work is found:
 *   workers and senders also poll (every 200 ms and at their next due
 *   time). So a lost listening connection only costs latency: the thread
 *   connects again (1 s apart) and, once back, calls back on both channels
 *   in case something was missed meanwhile.
 *
 * Threads: the listener thread owns its connection; store_listen_stop
 * joins it. The callback runs on that thread.
 */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/pg_internal.h"

#define PG_LISTEN_POLL_MS  1000
#define PG_LISTEN_RETRY_MS 1000

struct pg_listener {
	char *url;
	store_wake_fn fn;
	void *arg;
	pthread_t thread;
	_Atomic int stop;
};

static const char *const channel_names[STORE_WAKE_COUNT] = {"munim_inbox", "munim_outbox"};

/* listen_connect: a connection that LISTENs on both channels, or NULL. */
static PGconn *listen_connect(const char *url)
{
	PGconn *db = PQconnectdb(url);
	if (PQstatus(db) != CONNECTION_OK) {
		PQfinish(db);
		return NULL;
	}
	PGresult *r = PQexec(db, "LISTEN munim_inbox; LISTEN munim_outbox");
	int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (!ok) {
		PQfinish(db);
		return NULL;
	}
	return db;
}

/* The partitions a notification's payload names: all when it names none. */
static uint64_t payload_parts(const char *extra)
{
	char *end;
	if (!extra || !*extra)
		return ~0ULL;
	errno = 0;
	unsigned long long v = strtoull(extra, &end, 16);
	return errno || *end || v == 0 ? ~0ULL : (uint64_t)v;
}

static void *listen_main(void *arg)
{
	struct pg_listener *l = arg;
	PGconn *db = NULL;
	int warned = 0;
	pthread_setname_np(pthread_self(), "pg-listen");
	while (!atomic_load(&l->stop)) {
		if (!db) {
			db = listen_connect(l->url);
			if (!db) {
				if (!warned++)
					log_warn(
					        "store.listen_lost",
					        "could not listen for other processes' commits: "
					        "trying again every second (work is still polled)");
				poll(NULL, 0, PG_LISTEN_RETRY_MS);
				continue;
			}
			if (warned)
				log_info("store.listen_back",
				         "listening for other processes' commits");
			warned = 0;
			/* what was committed while not listening */
			for (int ch = 0; ch < STORE_WAKE_COUNT; ch++)
				l->fn(l->arg, (enum store_wake)ch, ~0ULL);
		}
		struct pollfd p = {.fd = PQsocket(db), .events = POLLIN};
		if (poll(&p, 1, PG_LISTEN_POLL_MS) < 0 || !PQconsumeInput(db) ||
		    PQstatus(db) != CONNECTION_OK) {
			PQfinish(db);
			db = NULL;
			continue;
		}
		uint64_t seen[STORE_WAKE_COUNT] = {0};
		PGnotify *n;
		while ((n = PQnotifies(db)) != NULL) {
			for (int ch = 0; ch < STORE_WAKE_COUNT; ch++)
				if (!strcmp(n->relname, channel_names[ch]))
					seen[ch] |= payload_parts(n->extra);
			PQfreemem(n);
		}
		for (int ch = 0; ch < STORE_WAKE_COUNT; ch++)
			if (seen[ch])
				l->fn(l->arg, (enum store_wake)ch, seen[ch]);
	}
	PQfinish(db);
	return NULL;
}

int store__pg_listen_start(struct store *st, const char *url, store_wake_fn fn, void *arg)
{
	struct pg_store *ps = st->backend;
	if (ps->listener)
		return ERR_INVAL;
	struct pg_listener *l = xcalloc(1, sizeof(*l));
	l->url = xstrdup(url && *url ? url : ps->conninfo);
	l->fn = fn;
	l->arg = arg;
	if (pthread_create(&l->thread, NULL, listen_main, l) != 0) {
		free(l->url);
		free(l);
		return ERR_NOMEM;
	}
	ps->listener = l;
	return 0;
}

void store__pg_listen_stop(struct store *st)
{
	struct pg_store *ps = st->backend;
	struct pg_listener *l = ps->listener;
	if (!l)
		return;
	atomic_store(&l->stop, 1);
	pthread_join(l->thread, NULL);
	free(l->url);
	free(l);
	ps->listener = NULL;
}
