/*
 * pg_lease.c - the PostgreSQL backend of munim's processes (store.h,
 * "processes"): the nodes and their leases, the partition leases the
 * worker nodes divide the queue by, and the leading controller's lock.
 * sqlite_lease.c is the same rules for a SQLite file.
 *
 * Tables (migrations_pg.c, migration 2), both in the system scope:
 *   nodes             id, name, roles, host, pid, started_at, beat_at,
 *                     expires_at: a node is live while expires_at > now
 *                     and no later run of its name has joined;
 *   partition_leases  part, owner, expires_at, taken_at: a row per
 *                     partition ever taken; owner 0 is a free partition.
 *
 * A partition's life, each edge one conditional write:
 *
 *   free (no row, owner 0, lease run out, owner an earlier run of the
 *   claimer's name)
 *     --pg_partitions_claim (INSERT ... ON CONFLICT DO UPDATE ... WHERE
 *       still free)--> owned by N until now + lease
 *   owned by N --pg_partitions_claim by N: renewed
 *   owned by N --pg_partitions_release, pg_node_leave--> free (owner 0)
 *   owned by N --its lease runs out--> free
 *
 * The take is one statement whose ON CONFLICT clause re-checks, on the row
 * as it is when locked, that it is still free: of two nodes taking one
 * partition at once, the second finds it owned and gets nothing, without
 * an error. The candidates go in partition order, so two takers lock rows
 * in the same order and never deadlock.
 *
 * The leader's lock: a session-level advisory lock on a connection of the
 * lock's own (not the store's: a store connection may go through a
 * transaction-mode PgBouncer, which would lend the session, and with it
 * the lock, to others). The connection keeps TCP keepalives and a user
 * timeout short, so a leader cut off from the server notices within
 * seconds and stops leading, while the server frees the lock when it sees
 * the session gone (at once for a killed process).
 *
 * Threads: every function uses only its connection (or lock); the lock is
 * used by one thread at a time.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "store/pg_internal.h"

/* Nodes whose lease ended this long ago are forgotten at a join. */
#define PG_NODE_FORGET_MS (24LL * 3600 * 1000)
/* The lock's connection: how long to wait for the server, and when a
 * silent peer counts as gone (s; tcp_user_timeout in ms). */
#define PG_LOCK_CONNECT_TIMEOUT "5"
#define PG_LOCK_KEEPALIVE_IDLE  "5"
#define PG_LOCK_KEEPALIVE_INTVL "2"
#define PG_LOCK_KEEPALIVE_COUNT "2"
#define PG_LOCK_USER_TIMEOUT    "6000"

/* The ids of the earlier runs of node $1's name (a subquery). */
#define EARLIER_RUNS                                                                               \
	"(SELECT o.id FROM nodes o JOIN nodes m ON m.name = o.name"                                \
	" WHERE m.id = $1::bigint AND o.id < $1::bigint)"

/* ---- nodes ---------------------------------------------------------------------------------- */

static int pg_node_join(struct store_conn *c, const struct store_node *n, int64_t now,
                        int64_t lease_ms, int64_t *id)
{
	static const char forget[] = "DELETE FROM nodes WHERE expires_at < $1::bigint";
	static const char sql[] =
	        "INSERT INTO nodes (name, roles, host, pid, started_at, beat_at, expires_at)"
	        " VALUES ($1, $2::integer, $3, $4::bigint, $5::bigint, $6::bigint, $7::bigint)"
	        " RETURNING id";
	const char *what = "join the store's nodes";
	PGresult *r;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, forget, "i", now - PG_NODE_FORGET_MS);
	if (rc >= 0)
		rc = store__pg_query(c, what, sql, &r, "titiiii", n->name, (int64_t)n->roles,
		                     n->host, n->pid, n->started_at, now, now + lease_ms);
	if (rc >= 0) {
		*id = store__pg_i64(r, 0, 0);
		PQclear(r);
		rc = 0;
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_node_beat(struct store_conn *c, int64_t id, int64_t now, int64_t lease_ms,
                        int *lapsed)
{
	/* the lease as it was, to tell a beat that came too late */
	static const char sql[] = "UPDATE nodes n SET beat_at = $2::bigint, expires_at = $3::bigint"
	                          " FROM (SELECT id, expires_at FROM nodes WHERE id = $1::bigint"
	                          "  FOR UPDATE) o"
	                          " WHERE n.id = o.id RETURNING o.expires_at <= $2::bigint";
	const char *what = "renew the node's lease";
	PGresult *r;
	*lapsed = 0;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iii", id, now, now + lease_ms);
	if (rc == 0) {
		if (PQntuples(r) == 0)
			rc = store__errf(c, ERR_NOTFOUND, "could not %s: no node %lld", what,
			                 (long long)id);
		else
			*lapsed = PQgetvalue(r, 0, 0)[0] == 't';
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_node_leave(struct store_conn *c, int64_t id, int64_t now)
{
	static const char end[] = "UPDATE nodes SET expires_at = least(expires_at, $2::bigint)"
	                          " WHERE id = $1::bigint";
	static const char give[] = "UPDATE partition_leases SET owner = 0, expires_at = 0"
	                           " WHERE owner = $1::bigint";
	const char *what = "leave the store's nodes";
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, end, "ii", id, now);
	if (rc >= 0)
		rc = store__pg_exec(c, what, give, "i", id);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

static int pg_nodes_live(struct store_conn *c, int64_t now, struct arena *a,
                         struct store_node **out, int *n)
{
	static const char sql[] =
	        "SELECT id, name, roles, host, pid, started_at, expires_at FROM nodes n"
	        " WHERE expires_at > $1::bigint AND NOT EXISTS (SELECT 1 FROM nodes l"
	        "  WHERE l.name = n.name AND l.id > n.id)"
	        " ORDER BY id LIMIT $2::bigint";
	const char *what = "list the store's nodes";
	PGresult *r = NULL;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", now, (int64_t)STORE_MAX_BATCH);
	if (rc == 0) {
		int rows = PQntuples(r);
		struct store_node *arr = store__pg_alloc_rows(a, rows, sizeof(*arr));
		for (int i = 0; i < rows; i++) {
			arr[i].id = store__pg_i64(r, i, 0);
			arr[i].name = store__pg_str(r, i, 1, a);
			arr[i].roles = (unsigned)store__pg_i64(r, i, 2);
			arr[i].host = store__pg_str(r, i, 3, a);
			arr[i].pid = store__pg_i64(r, i, 4);
			arr[i].started_at = store__pg_i64(r, i, 5);
			arr[i].expires_at = store__pg_i64(r, i, 6);
		}
		*out = arr;
		*n = rows;
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

/* ---- partition leases ----------------------------------------------------------------------- */

/* parts_array writes the partitions of a mask as "{p,p,...}", ascending. */
static const char *parts_array(struct buf *b, uint64_t parts)
{
	store__pg_arr_init(b);
	for (int p = 0; p < STORE_PARTITIONS; p++)
		if (parts & (1ULL << p))
			store__pg_arr_int(b, p);
	return store__pg_arr_end(b);
}

/* mask_of reads column 0 of every row of r as a partition into a mask. */
static uint64_t mask_of(const PGresult *r)
{
	uint64_t parts = 0;
	for (int i = 0; i < PQntuples(r); i++) {
		int64_t p = store__pg_i64(r, i, 0);
		if (p >= 0 && p < STORE_PARTITIONS)
			parts |= 1ULL << p;
	}
	return parts;
}

/*
 * claim_free reads which partitions node may take at now into *free: those
 * with no row, and those free by the rules in the file comment.
 */
static int claim_free(struct store_conn *c, const char *what, int64_t node, int64_t now,
                      uint64_t *free)
{
	static const char sql[] = "SELECT part FROM partition_leases"
	                          " WHERE owner <> $1::bigint AND owner <> 0"
	                          " AND expires_at > $2::bigint AND owner NOT IN " EARLIER_RUNS;
	PGresult *r;
	int rc = store__pg_query(c, what, sql, &r, "ii", node, now);
	if (rc < 0)
		return rc;
	*free = ~mask_of(r); /* every partition nobody else holds */
	PQclear(r);
	return 0;
}

static int pg_partitions_claim(struct store_conn *c, int64_t node, int64_t now, int64_t lease_ms,
                               uint64_t *owned, int *share, uint64_t *taken)
{
	/* the live worker nodes, this one always among them */
	static const char count[] =
	        "SELECT count(*) FROM nodes n WHERE n.id = $1::bigint"
	        " OR ((n.roles & $3::integer) <> 0 AND n.expires_at > $2::bigint"
	        "  AND NOT EXISTS (SELECT 1 FROM nodes l WHERE l.name = n.name AND l.id > n.id))";
	static const char renew[] = "UPDATE partition_leases SET expires_at = $2::bigint"
	                            " WHERE owner = $1::bigint RETURNING part";
	static const char take[] =
	        "INSERT INTO partition_leases AS l (part, owner, expires_at, taken_at)"
	        " SELECT p, $1::bigint, $3::bigint, $2::bigint FROM unnest($4::smallint[]) AS p"
	        " ON CONFLICT (part) DO UPDATE SET owner = excluded.owner,"
	        "  expires_at = excluded.expires_at, taken_at = excluded.taken_at"
	        " WHERE l.owner = 0 OR l.expires_at <= $2::bigint OR l.owner IN " EARLIER_RUNS
	        " RETURNING part";
	const char *what = "claim partitions";
	PGresult *r;
	uint64_t mine = 0, free = 0;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, count, &r, "iii", node, now, (int64_t)STORE_ROLE_WORKER);
	if (rc == 0) {
		*share = store__lease_share(store__pg_i64(r, 0, 0));
		PQclear(r);
		rc = store__pg_query(c, what, renew, &r, "ii", node, now + lease_ms);
	}
	if (rc == 0) {
		mine = mask_of(r);
		PQclear(r);
	}
	int want = *share - store__popcount(mine);
	if (rc == 0 && want > 0)
		rc = claim_free(c, what, node, now, &free);
	uint64_t pick = rc == 0 && want > 0 ? store__lease_pick(free & ~mine, node, want) : 0;
	if (pick) {
		struct buf b;
		rc = store__pg_query(c, what, take, &r, "iiit", node, now, now + lease_ms,
		                     parts_array(&b, pick));
		buf_release(&b);
		if (rc == 0) {
			*taken = mask_of(r);
			PQclear(r);
		}
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*taken = 0;
		return rc;
	}
	*owned = mine | *taken;
	return 0;
}

static int pg_partitions_release(struct store_conn *c, int64_t node, uint64_t parts)
{
	static const char sql[] = "UPDATE partition_leases SET owner = 0, expires_at = 0"
	                          " WHERE owner = $1::bigint AND part = ANY($2::smallint[])";
	const char *what = "give back partitions";
	struct buf b;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "it", node, parts_array(&b, parts));
	buf_release(&b);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

/* ---- the leader's lock ---------------------------------------------------------------------- */

/* The lock's own session (l->backend). */
struct pg_lock {
	PGconn *db;
	int held;
};

static int lock_err(struct store_lock *l, const char *what)
{
	struct pg_lock *pl = l->backend;
	char msg[STORE_ERRMSG_MAX / 2]; /* room left in errmsg for what */
	snprintf(msg, sizeof(msg), "%s", pl->db ? PQerrorMessage(pl->db) : "out of memory");
	size_t n = strlen(msg);
	while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
		msg[--n] = '\0';
	snprintf(l->errmsg, sizeof(l->errmsg), "could not %s: %s", what, msg);
	/* the session goes, and the lock with it, so that another takes over */
	PQfinish(pl->db);
	pl->db = NULL;
	pl->held = 0;
	return ERR_AGAIN;
}

static int pg_lock_open(struct store_lock *l, const char *url)
{
	(void)url;
	l->backend = xcalloc(1, sizeof(struct pg_lock));
	return 0;
}

/* lock_connect opens the lock's session to l->url, with short timeouts. */
static int lock_connect(struct store_lock *l)
{
	struct pg_lock *pl = l->backend;
	/* expand_dbname: the url is parsed first, the options after it win */
	const char *const keys[] = {"dbname",           "connect_timeout",     "keepalives",
	                            "keepalives_idle",  "keepalives_interval", "keepalives_count",
	                            "tcp_user_timeout", "application_name",    NULL};
	const char *const vals[] = {l->url,
	                            PG_LOCK_CONNECT_TIMEOUT,
	                            "1",
	                            PG_LOCK_KEEPALIVE_IDLE,
	                            PG_LOCK_KEEPALIVE_INTVL,
	                            PG_LOCK_KEEPALIVE_COUNT,
	                            PG_LOCK_USER_TIMEOUT,
	                            "munim-leader",
	                            NULL};
	pl->db = PQconnectdbParams(keys, vals, 1);
	if (!pl->db || PQstatus(pl->db) != CONNECTION_OK)
		return lock_err(l, "connect for the leader's lock");
	return 0;
}

static int pg_lock_try(struct store_lock *l, int *held)
{
	struct pg_lock *pl = l->backend;
	char key[24];
	const char *args[1] = {key};
	int rc;
	*held = 0;
	if (pl->db && PQstatus(pl->db) != CONNECTION_OK)
		lock_err(l, "keep the leader's lock");
	if (!pl->db && (rc = lock_connect(l)) < 0)
		return rc;
	/* held: the session still answering is the lock still held (a
	 * session-level lock taken again would only stack) */
	snprintf(key, sizeof(key), "%lld", (long long)l->key);
	PGresult *r = pl->held ? PQexec(pl->db, "SELECT true")
	                       : PQexecParams(pl->db, "SELECT pg_try_advisory_lock($1::bigint)", 1,
	                                      NULL, args, NULL, NULL, 0);
	if (!r || PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
		PQclear(r);
		return lock_err(l, pl->held ? "keep the leader's lock" : "take the leader's lock");
	}
	pl->held = PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	*held = pl->held;
	return 0;
}

static void pg_lock_close(struct store_lock *l)
{
	struct pg_lock *pl = l->backend;
	if (!pl)
		return;
	if (pl->db)
		PQfinish(pl->db); /* the session's locks go with it */
	free(pl);
	l->backend = NULL;
}

void store__pg_lease_ops(struct store_ops *ops)
{
	ops->node_join = pg_node_join;
	ops->node_beat = pg_node_beat;
	ops->node_leave = pg_node_leave;
	ops->nodes_live = pg_nodes_live;
	ops->partitions_claim = pg_partitions_claim;
	ops->partitions_release = pg_partitions_release;
	ops->lock_open = pg_lock_open;
	ops->lock_try = pg_lock_try;
	ops->lock_close = pg_lock_close;
}
