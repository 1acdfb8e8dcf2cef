/*
 * sqlite_lease.c - the SQLite backend of munim's processes (store.h,
 * "processes"): the nodes and their leases, and the partition leases the
 * worker nodes divide the queue by. pg_lease.c is the same rules on
 * PostgreSQL, and its file comment draws a partition's life.
 *
 * A SQLite file is served by one process (the leader's lock is always
 * held: store.c), whose worker node finds every partition free and takes
 * them all at its first claim. The tables and rules are PostgreSQL's all
 * the same, so that the two stores answer every operation alike: the
 * nodes (migration 12) are live while expires_at > now and no later run of
 * their name has joined; a partition is free with no row, owner 0, a lease
 * run out, or an owner that is an earlier run of the claimer's name. A
 * take is an upsert whose DO UPDATE re-checks that the row is still free,
 * so it never takes a partition from a live owner.
 *
 * These operations run every couple of seconds, not per message: their
 * statements are prepared on each call rather than kept in the
 * connection's cache.
 *
 * Threads: as store_sqlite.c; every function uses only its connection.
 */
#include <stdarg.h>
#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "store/sqlite_internal.h"

/* Nodes whose lease ended this long ago are forgotten at a join. */
#define SQ_NODE_FORGET_MS (24LL * 3600 * 1000)

/* The ids of the earlier runs of node ?1's name (a subquery). */
#define EARLIER_RUNS                                                                               \
	"(SELECT o.id FROM nodes o JOIN nodes m ON m.name = o.name"                                \
	" WHERE m.id = ?1 AND o.id < ?1)"

/*
 * vprep prepares sql on c into *out and binds its parameters from types
 * ('i' an int64_t, 't' a string, NULL as ""), as store__sq_prep does for
 * the cached statements. The caller finalizes *out. 0 or ERR_* (message
 * on c, *out NULL).
 */
static int vprep(struct store_conn *c, const char *what, const char *sql, sqlite3_stmt **out,
                 const char *types, va_list ap)
{
	sqlite3 *db = store__sq_db(c);
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	*out = NULL;
	if (rc != SQLITE_OK) {
		sqlite3_finalize(st);
		return store__sq_err(c, rc, what);
	}
	for (int i = 0; rc == SQLITE_OK && types[i]; i++) {
		if (types[i] == 'i') {
			rc = sqlite3_bind_int64(st, i + 1, va_arg(ap, int64_t));
		} else {
			const char *s = va_arg(ap, const char *);
			rc = sqlite3_bind_text(st, i + 1, s ? s : "", -1, SQLITE_STATIC);
		}
	}
	if (rc != SQLITE_OK) {
		rc = store__sq_err(c, rc, what);
		sqlite3_finalize(st);
		return rc;
	}
	*out = st;
	return 0;
}

static int prep(struct store_conn *c, const char *what, const char *sql, sqlite3_stmt **out,
                const char *types, ...)
{
	va_list ap;
	va_start(ap, types);
	int rc = vprep(c, what, sql, out, types, ap);
	va_end(ap);
	return rc;
}

/* run prepares, binds and runs sql to its end (rows ignored). 0 or ERR_*. */
static int run(struct store_conn *c, const char *what, const char *sql, const char *types, ...)
{
	sqlite3_stmt *st;
	va_list ap;
	va_start(ap, types);
	int rc = vprep(c, what, sql, &st, types, ap);
	va_end(ap);
	if (rc == 0) {
		rc = store__sq_exec(c, st, what);
		sqlite3_finalize(st);
	}
	return rc;
}

/*
 * parts_of steps st (prepared) to its end, reading column 0 of each row as
 * a partition into *parts, and finalizes it. 0 or ERR_*.
 */
static int parts_of(struct store_conn *c, sqlite3_stmt *st, const char *what, uint64_t *parts)
{
	int rc;
	*parts = 0;
	while ((rc = store__sq_step(c, st, what)) == 1) {
		int64_t p = sqlite3_column_int64(st, 0);
		if (p >= 0 && p < STORE_PARTITIONS)
			*parts |= 1ULL << p;
	}
	sqlite3_finalize(st);
	return rc;
}

/* ---- nodes ---------------------------------------------------------------------------------- */

int store__sq_node_join(struct store_conn *c, const struct store_node *n, int64_t now,
                        int64_t lease_ms, int64_t *id)
{
	static const char forget[] = "DELETE FROM nodes WHERE expires_at < ?1";
	static const char sql[] =
	        "INSERT INTO nodes (name, roles, host, pid, started_at, beat_at, expires_at)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
	const char *what = "join the store's nodes";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = run(c, what, forget, "i", now - SQ_NODE_FORGET_MS);
	if (rc == 0)
		rc = run(c, what, sql, "titiiii", n->name, (int64_t)n->roles, n->host, n->pid,
		         n->started_at, now, now + lease_ms);
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(store__sq_db(c));
	return store__sq_op_end(c, mode, rc);
}

int store__sq_node_beat(struct store_conn *c, int64_t id, int64_t now, int64_t lease_ms,
                        int *lapsed)
{
	static const char get[] = "SELECT expires_at FROM nodes WHERE id = ?1";
	static const char sql[] = "UPDATE nodes SET beat_at = ?2, expires_at = ?3 WHERE id = ?1";
	const char *what = "renew the node's lease";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	*lapsed = 0;
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = prep(c, what, get, &st, "i", id);
	if (rc == 0) {
		rc = store__sq_step(c, st, what);
		if (rc == 1)
			*lapsed = sqlite3_column_int64(st, 0) <= now;
		sqlite3_finalize(st);
		if (rc == 0)
			rc = store__errf(c, ERR_NOTFOUND, "could not %s: no node %lld", what,
			                 (long long)id);
	}
	if (rc == 1)
		rc = run(c, what, sql, "iii", id, now, now + lease_ms);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_node_leave(struct store_conn *c, int64_t id, int64_t now)
{
	static const char end[] = "UPDATE nodes SET expires_at = min(expires_at, ?2) WHERE id = ?1";
	static const char give[] = "UPDATE partition_leases SET owner = 0, expires_at = 0"
	                           " WHERE owner = ?1";
	const char *what = "leave the store's nodes";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = run(c, what, end, "ii", id, now);
	if (rc == 0)
		rc = run(c, what, give, "i", id);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_nodes_live(struct store_conn *c, int64_t now, struct arena *a,
                         struct store_node **out, int *n)
{
	static const char sql[] =
	        "SELECT id, name, roles, host, pid, started_at, expires_at FROM nodes n"
	        " WHERE expires_at > ?1 AND NOT EXISTS (SELECT 1 FROM nodes l"
	        "  WHERE l.name = n.name AND l.id > n.id)"
	        " ORDER BY id LIMIT ?2";
	const char *what = "list the store's nodes";
	sqlite3_stmt *st;
	int rc = prep(c, what, sql, &st, "ii", now, (int64_t)STORE_MAX_BATCH);
	if (rc < 0)
		return rc;
	int cap = 0, cnt = 0;
	struct store_node *arr = NULL;
	while ((rc = store__sq_step(c, st, what)) == 1) {
		if (cnt == cap) {
			int ncap = cap ? cap * 2 : 16;
			struct store_node *bigger = arena_alloc(a, (size_t)ncap * sizeof(*bigger));
			if (cnt)
				memcpy(bigger, arr, (size_t)cnt * sizeof(*arr));
			arr = bigger;
			cap = ncap;
		}
		struct store_node *x = &arr[cnt++];
		x->id = sqlite3_column_int64(st, 0);
		x->name = store__sq_col(st, 1, a);
		x->roles = (unsigned)sqlite3_column_int64(st, 2);
		x->host = store__sq_col(st, 3, a);
		x->pid = sqlite3_column_int64(st, 4);
		x->started_at = sqlite3_column_int64(st, 5);
		x->expires_at = sqlite3_column_int64(st, 6);
	}
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	*out = arr;
	*n = cnt;
	return 0;
}

/* ---- partition leases ----------------------------------------------------------------------- */

int store__sq_partitions_claim(struct store_conn *c, int64_t node, int64_t now, int64_t lease_ms,
                               uint64_t *owned, int *share, uint64_t *taken)
{
	/* the live worker nodes, this one always among them */
	static const char count[] =
	        "SELECT count(*) FROM nodes n WHERE n.id = ?1"
	        " OR ((n.roles & ?3) <> 0 AND n.expires_at > ?2"
	        "  AND NOT EXISTS (SELECT 1 FROM nodes l WHERE l.name = n.name AND l.id > n.id))";
	static const char renew[] = "UPDATE partition_leases SET expires_at = ?2 WHERE owner = ?1"
	                            " RETURNING part";
	static const char held[] = "SELECT part FROM partition_leases"
	                           " WHERE owner <> ?1 AND owner <> 0 AND expires_at > ?2"
	                           " AND owner NOT IN " EARLIER_RUNS;
	static const char take[] =
	        "INSERT INTO partition_leases (part, owner, expires_at, taken_at)"
	        " VALUES (?4, ?1, ?3, ?2)"
	        " ON CONFLICT (part) DO UPDATE SET owner = excluded.owner,"
	        "  expires_at = excluded.expires_at, taken_at = excluded.taken_at"
	        " WHERE owner = 0 OR expires_at <= ?2 OR owner IN " EARLIER_RUNS " RETURNING part";
	const char *what = "claim partitions";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	uint64_t mine = 0, others = 0;
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = prep(c, what, count, &st, "iii", node, now, (int64_t)STORE_ROLE_WORKER);
	if (rc == 0) {
		rc = store__sq_step(c, st, what);
		if (rc == 1) {
			*share = store__lease_share(sqlite3_column_int64(st, 0));
			rc = 0;
		}
		sqlite3_finalize(st);
	}
	if (rc == 0)
		rc = prep(c, what, renew, &st, "ii", node, now + lease_ms);
	if (rc == 0)
		rc = parts_of(c, st, what, &mine);
	int want = *share - store__popcount(mine);
	if (rc == 0 && want > 0)
		rc = prep(c, what, held, &st, "ii", node, now);
	if (rc == 0 && want > 0)
		rc = parts_of(c, st, what, &others);
	uint64_t pick = rc == 0 && want > 0 ? store__lease_pick(~(others | mine), node, want) : 0;
	for (int p = 0; rc == 0 && p < STORE_PARTITIONS; p++) {
		uint64_t got = 0;
		if (!(pick & (1ULL << p)))
			continue;
		rc = prep(c, what, take, &st, "iiii", node, now, now + lease_ms, (int64_t)p);
		if (rc == 0)
			rc = parts_of(c, st, what, &got);
		*taken |= got;
	}
	rc = store__sq_op_end(c, mode, rc);
	if (rc < 0) {
		*taken = 0;
		return rc;
	}
	*owned = mine | *taken;
	return 0;
}

int store__sq_partitions_release(struct store_conn *c, int64_t node, uint64_t parts)
{
	static const char sql[] = "UPDATE partition_leases SET owner = 0, expires_at = 0"
	                          " WHERE owner = ?1 AND part = ?2";
	const char *what = "give back partitions";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	for (int p = 0; rc == 0 && p < STORE_PARTITIONS; p++)
		if (parts & (1ULL << p))
			rc = run(c, what, sql, "ii", node, (int64_t)p);
	return store__sq_op_end(c, mode, rc);
}
