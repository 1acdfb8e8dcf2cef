/*
 * pg_outbox.c - the PostgreSQL backend of the outbox: the replies waiting
 * to be sent, the outcome of each send and the delivery statuses that
 * follow (store.h, "outbox"; sqlite_queue.c is the reference for every
 * outcome, edge case and message).
 *
 * Layout (migrations_pg.c): outbox is PARTITION BY LIST (part), part =
 * store_partition(tenant_id), and a row's id is nextval('outbox_id_seq') *
 * 64 + part: time-ordered, and naming its partition in its low six bits.
 * A statement about one row says `part = <id & 63>`, one about a tenant's
 * rows `part = store_partition(tenant)`. The values travel as parameters
 * of an unnamed statement, which the server plans with them, so such a
 * statement is planned and run against its one partition. Only the sweeps
 * (claim, next due, recovery, expiry, the lists and counts) read all 64.
 *
 * The row's life (store.h draws it whole), and the function for each edge:
 *
 *   (new) --pg_outbox_add--> PENDING, or SENDING when born claimed
 *   PENDING --pg_outbox_claim, pg_outbox_claim_to--> SENDING
 *   SENDING --pg_outbox_accepted--> ACCEPTED (or the status kept aside)
 *   SENDING --pg_outbox_retry, pg_outbox_defer--> PENDING (or the status
 *           kept aside; FAILED: marketing to a customer who opted out)
 *   PENDING, SENDING --pg_outbox_fail--> FAILED, DEAD (or the status kept aside)
 *   SENDING --pg_outbox_recover (its node dead)--> PENDING (or the status kept aside)
 *   SENDING --pg_outbox_merge--> MERGED
 *   PENDING, ACCEPTED, SENT, DELIVERED, FAILED --pg_outbox_resend--> PENDING
 *   PENDING --pg_outbox_expire--> DEAD
 *   ACCEPTED --pg_outbox_status--> SENT --> DELIVERED --> READ, or FAILED
 *
 * Design
 *   Claims are safe with several senders at once: the rows are chosen with
 *   FOR UPDATE SKIP LOCKED, in SQLite's order (priority, next_attempt_at,
 *   id), so two claims never take one row and neither waits for the other.
 *   pg_outbox_claim reads every partition, so it picks in one statement
 *   and moves what it picked in a second, whose target is pruned to the
 *   partitions named (part = ANY): one UPDATE ... WHERE (part, id) IN
 *   (SELECT ...) cannot be pruned when planned, and costs the planning and
 *   a hash join of all 64 partitions (measured on 200,000 rows: some
 *   hundreds of ms, against some tens for the two statements).
 *   pg_outbox_claim_to stays in the tenant's partition: one statement.
 *
 *   A send's outcome (accepted, retry, fail, defer) and a resend are one
 *   UPDATE of the row joined with a locked read of itself (FROM (SELECT ...
 *   FOR UPDATE)), which gives its state before the change: the guard, the
 *   status kept aside that overrides the outcome, and the move to count,
 *   in one round trip. Only when the guard left the row alone does a
 *   second read tell ERR_NOTFOUND from ERR_CONFLICT; nothing raises an
 *   error in the caller's transaction for an expected "no".
 *
 *   A retry or hold of marketing (P3) that lands PENDING checks whether the
 *   customer opted out meanwhile: customers is a shop table, visible in
 *   the row's tenant scope only, so that one statement runs in it. Retry
 *   and defer therefore run in the caller's transaction or in one of their
 *   own opened with the backend's begin (own_begin), inside which the scope
 *   may change.
 *
 *   pg_outbox_status is one statement: it finds the row by the hint first
 *   (our row id echoed in callback_data: a primary-key probe), by the
 *   provider id only when the hint finds nothing (in the tenant's partition;
 *   in all 64 for a status naming no tenant, an SMS report), locks it,
 *   computes its move (status_move in sqlite_queue.c, written in SQL),
 *   applies it and returns where it was and where it went.
 *
 *   pg_outbox_merge reads every row it names, locked, in one statement,
 *   checks them in C in SQLite's order, and writes only when all pass (one
 *   statement for the keeper and the merged rows): a refused merge changes
 *   nothing and raises nothing.
 *
 *   Every statement that adds or moves rows reports the moves to
 *   store__pg_count once it succeeded; the commit adds them to
 *   outbox_counts (this connection's shard), and pg_outbox_counts reads the
 *   sum over the shards plus what the open transaction has not committed.
 *
 * Scope: PG_SCOPE_SYSTEM for the sender's cross-tenant work; a tenant's own
 * scope for pg_outbox_add, pg_outbox_claim_to and a status naming its
 * tenant, unless the caller's transaction is in system scope already (it
 * sees every tenant's queue rows: switching would only cost a round trip).
 *
 * Differences from SQLite: a status's row hint is tried before its provider
 * id (SQLite tries the provider id first). Both find the same row unless
 * two rows carry one provider id, which a provider never hands out twice.
 *
 * Threads: every function uses only its connection (one per thread).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "store/pg_internal.h"

_Static_assert(STORE_PARTITIONS == 64, "outbox ids carry the partition in six bits");

#define OUTBOX_COLS                                                                                \
	"id, tenant_id, priority, state, phone_number_id, to_id, reply_to, body, attempts,"        \
	" next_attempt_at, created_at, inbound_received_at, provider_msg_id,"                      \
	" last_error_code, last_error, updated_at, provider, merged_into"

static void read_outbox(const PGresult *r, int row, struct arena *a, struct outbox_row *o)
{
	o->id = store__pg_i64(r, row, 0);
	o->tenant_id = store__pg_i64(r, row, 1);
	o->priority = (enum outbox_prio)store__pg_i64(r, row, 2);
	o->state = (enum outbox_state)store__pg_i64(r, row, 3);
	o->phone_number_id = store__pg_str(r, row, 4, a);
	o->to = store__pg_str(r, row, 5, a);
	o->reply_to = store__pg_str(r, row, 6, a);
	o->body = store__pg_str(r, row, 7, a);
	o->attempts = (int)store__pg_i64(r, row, 8);
	o->next_attempt_at = store__pg_i64(r, row, 9);
	o->created_at = store__pg_i64(r, row, 10);
	o->inbound_received_at = store__pg_i64(r, row, 11);
	o->provider_msg_id = store__pg_str(r, row, 12, a);
	o->last_error_code = (int)store__pg_i64(r, row, 13);
	o->last_error = store__pg_str(r, row, 14, a);
	o->updated_at = store__pg_i64(r, row, 15);
	o->provider = store__pg_str(r, row, 16, a);
	o->merged_into = store__pg_i64(r, row, 17);
}

/* The partition a row's id names (its low six bits). */
static int64_t id_part(int64_t id)
{
	return (int64_t)((uint64_t)id & (STORE_PARTITIONS - 1));
}

/*
 * on_row: sql, whose table is written outbox_p@@, on row id's partition
 * (buf holds the text; NULL if too long, which the statement then fails on).
 */
static const char *on_row(char buf[PG_PART_SQL_MAX], const char *sql, int64_t id)
{
	return store__pg_in_part(buf, PG_PART_SQL_MAX, sql, id_part(id));
}

/*
 * tenant_scope: the scope for work on one tenant's queue rows: the
 * tenant's own, unless the caller's transaction is in system scope already,
 * which sees them too (a switch would cost a round trip and change nothing).
 */
static enum pg_scope tenant_scope(const struct store_conn *c)
{
	const struct pg_session *pg = c->backend;
	if (c->in_txn && pg->txn_open && pg->scope == PG_SCOPE_SYSTEM)
		return PG_SCOPE_SYSTEM;
	return PG_SCOPE_TENANT;
}

/*
 * own_begin opens a transaction of the operation's own (*own = 1) unless
 * the caller has one, for an operation whose statements need different
 * scopes: store__pg_op_begin changes the scope only inside a transaction
 * begun this way. own_end commits it when rc == 0, rolls it back (keeping
 * rc's message) otherwise, and returns rc or the commit's error.
 */
static int own_begin(struct store_conn *c, int *own)
{
	*own = !c->in_txn;
	return *own ? c->ops->begin(c) : 0;
}

static int own_end(struct store_conn *c, int own, int rc)
{
	if (!own)
		return rc;
	if (rc == 0)
		return c->ops->commit(c);
	char msg[STORE_ERRMSG_MAX];
	memcpy(msg, c->errmsg, sizeof(msg));
	c->ops->rollback(c);
	memcpy(c->errmsg, msg, sizeof(msg));
	return rc;
}

/* ---- array literals ------------------------------------------------------------------------- */

/* ids_text writes "{id,id,...}" (an array parameter) into b (initialized). */
static void ids_text(struct buf *b, const int64_t *ids, int n)
{
	buf_putc(b, '{');
	for (int i = 0; i < n; i++)
		buf_printf(b, "%s%lld", i ? "," : "", (long long)ids[i]);
	buf_putc(b, '}');
}

/* parts_text writes the partitions of the ids as "{p,p,...}", each once. */
static void parts_text(struct buf *b, const int64_t *ids, int n)
{
	uint64_t mask = 0;
	int first = 1;
	for (int i = 0; i < n; i++)
		mask |= 1ULL << id_part(ids[i]);
	buf_putc(b, '{');
	for (int p = 0; p < STORE_PARTITIONS; p++)
		if (mask & (1ULL << p)) {
			buf_printf(b, "%s%d", first ? "" : ",", p);
			first = 0;
		}
	buf_putc(b, '}');
}

/* ---- adding and claiming -------------------------------------------------------------------- */

static int pg_outbox_add(struct store_conn *c, const struct outbox_new *o, int64_t *id)
{
	/* born claimed: SENDING (1), attempt 1 and the node, as a claim leaves it ($5, $12) */
	static const char sql[] =
	        "INSERT INTO outbox (id, part, tenant_id, priority, state, phone_number_id, to_id,"
	        " reply_to, body, attempts, next_attempt_at, created_at, inbound_received_at,"
	        " updated_at, claimed_by)"
	        " VALUES (nextval('outbox_id_seq') * 64 + $1::bigint, $2::smallint, $3::bigint,"
	        " $4::smallint, $5::smallint, $6, $7, $8, $9, $5::smallint, $10::bigint,"
	        " $10::bigint, $11::bigint, $10::bigint, $12::bigint)"
	        " RETURNING id";
	const char *what = "queue message";
	int64_t part = store_partition(o->tenant_id), claimed = o->claimed != 0;
	PGresult *r;
	int own, rc = store__pg_op_begin(c, tenant_scope(c), o->tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iiiiittttiii", part, part, o->tenant_id,
	                     (int64_t)o->priority, claimed, o->phone_number_id, o->to, o->reply_to,
	                     o->body, clock_wall_ms(), o->inbound_received_at,
	                     claimed ? store_node(c->st) : 0);
	if (rc == 0) {
		*id = store__pg_i64(r, 0, 0);
		PQclear(r);
		store__pg_count(c, o->priority, -1, claimed ? OUTBOX_SENDING : OUTBOX_PENDING, 1);
		if (!claimed) /* work for the senders of every process */
			store__pg_wake(c, STORE_WAKE_OUTBOX, -1);
	}
	return store__pg_op_end(c, own, rc);
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/*
 * pg_outbox_add_many: n rows in one statement (a broadcast's page): their
 * columns as arrays, unnested in order; ids come from the sequence in that
 * order, so the ids returned, sorted, are o[0..n-1]'s. One tenant's rows go
 * in its scope, a mix in the system scope.
 */
static int pg_outbox_add_many(struct store_conn *c, const struct outbox_new *o, int n, int64_t *ids)
{
	static const char sql[] =
	        "INSERT INTO outbox (id, part, tenant_id, priority, state, phone_number_id, to_id,"
	        " reply_to, body, attempts, next_attempt_at, created_at, inbound_received_at,"
	        " updated_at, claimed_by)"
	        " SELECT nextval('outbox_id_seq') * 64 + r.part, r.part, r.tenant, r.prio, "
	        "r.claimed,"
	        " r.pnid, r.to_id, r.reply_to, r.body, r.claimed, $10::bigint, $10::bigint,"
	        " r.inbound, $10::bigint, r.claimed * $11::bigint"
	        " FROM unnest($1::smallint[], $2::bigint[], $3::smallint[], $4::smallint[],"
	        " $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[]) WITH ORDINALITY"
	        " AS r(part, tenant, prio, claimed, pnid, to_id, reply_to, body, inbound, ord)"
	        " ORDER BY r.ord RETURNING id";
	enum { C_PART, C_TENANT, C_PRIO, C_CLAIMED, C_PNID, C_TO, C_REPLY, C_BODY, C_INBOUND, C_N };
	const char *what = "queue messages";
	struct buf col[C_N];
	enum pg_scope scope = tenant_scope(c);
	PGresult *r;
	int own, wake = 0;

	for (int k = 0; k < C_N; k++)
		store__pg_arr_init(&col[k]);
	for (int i = 0; i < n; i++) {
		if (o[i].tenant_id != o[0].tenant_id)
			scope = PG_SCOPE_SYSTEM;
		wake |= !o[i].claimed;
		store__pg_arr_int(&col[C_PART], store_partition(o[i].tenant_id));
		store__pg_arr_int(&col[C_TENANT], o[i].tenant_id);
		store__pg_arr_int(&col[C_PRIO], (int64_t)o[i].priority);
		store__pg_arr_int(&col[C_CLAIMED], o[i].claimed != 0);
		store__pg_arr_text(&col[C_PNID], o[i].phone_number_id);
		store__pg_arr_text(&col[C_TO], o[i].to);
		store__pg_arr_text(&col[C_REPLY], o[i].reply_to);
		store__pg_arr_text(&col[C_BODY], o[i].body);
		store__pg_arr_int(&col[C_INBOUND], o[i].inbound_received_at);
	}
	for (int k = 0; k < C_N; k++)
		store__pg_arr_end(&col[k]);
	int rc = store__pg_op_begin(c, scope, o[0].tenant_id, what, &own);
	if (rc == 0)
		rc = store__pg_query(c, what, sql, &r, "tttttttttii", col[0].data, col[1].data,
		                     col[2].data, col[3].data, col[4].data, col[5].data,
		                     col[6].data, col[7].data, col[8].data, clock_wall_ms(),
		                     store_node(c->st));
	for (int k = 0; k < C_N; k++)
		buf_release(&col[k]);
	if (rc < 0)
		return own ? store__pg_op_end(c, own, rc) : rc;
	if (PQntuples(r) != n) {
		rc = store__errf(c, ERR_DB, "could not %s: %d of %d rows came back", what,
		                 PQntuples(r), n);
	} else {
		for (int i = 0; i < n; i++)
			ids[i] = store__pg_i64(r, i, 0);
		qsort(ids, (size_t)n, sizeof(*ids), cmp_i64);
		for (int i = 0; i < n; i++)
			store__pg_count(c, o[i].priority, -1,
			                o[i].claimed ? OUTBOX_SENDING : OUTBOX_PENDING, 1);
		if (wake)
			store__pg_wake(c, STORE_WAKE_OUTBOX, -1);
	}
	PQclear(r);
	return store__pg_op_end(c, own, rc);
}

/*
 * claimed_rows reads the rows a claim's UPDATE ... RETURNING r moved to
 * SENDING (r is cleared), tallies them and sorts them P0 first, then as
 * they fell due (RETURNING promises no order).
 */
static void claimed_rows(struct store_conn *c, PGresult *r, struct arena *a,
                         struct outbox_row **out, int *n)
{
	int rows = PQntuples(r);
	struct outbox_row *arr = store__pg_alloc_rows(a, rows, sizeof(*arr));
	for (int i = 0; i < rows; i++) {
		read_outbox(r, i, a, &arr[i]);
		store__pg_count(c, arr[i].priority, OUTBOX_PENDING, OUTBOX_SENDING, 1);
	}
	PQclear(r);
	if (rows > 1)
		qsort(arr, (size_t)rows, sizeof(*arr), store__cmp_claim);
	*out = arr;
	*n = rows;
}

static int pg_outbox_claim(struct store_conn *c, int64_t now, int limit, enum outbox_prio max_prio,
                           struct arena *a, struct outbox_row **out, int *n)
{
	/*
	 * Within a priority, rows go in the order they fell due, then by id:
	 * the order of the partial index outbox_due (priority, next_attempt_at,
	 * id) WHERE state = 0, so each partition's scan stops early. Rows
	 * another sender holds are skipped, not waited for.
	 */
	static const char pick[] =
	        "SELECT id FROM outbox WHERE state = 0 AND priority <= $1::smallint"
	        " AND next_attempt_at <= $2::bigint"
	        " ORDER BY priority, next_attempt_at, id LIMIT $3::bigint FOR UPDATE SKIP LOCKED";
	/* attempts counts claims: a claimed row carries the number of this attempt */
	static const char take[] = "UPDATE outbox SET state = 1, attempts = attempts + 1,"
	                           " updated_at = $1::bigint, claimed_by = $4::bigint"
	                           " WHERE part = ANY($2::smallint[]) AND id = ANY($3::bigint[])"
	                           " AND state = 0"
	                           " RETURNING " OUTBOX_COLS;
	const char *what = "claim outbox rows";
	PGresult *r;
	int64_t *ids = NULL;
	int nids = 0;
	*out = NULL;
	*n = 0;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, pick, &r, "iii", (int64_t)max_prio, now, (int64_t)limit);
	if (rc == 0) {
		nids = PQntuples(r);
		ids = nids ? arena_alloc(a, (size_t)nids * sizeof(*ids)) : NULL;
		for (int i = 0; i < nids; i++)
			ids[i] = store__pg_i64(r, i, 0);
		PQclear(r);
	}
	if (rc == 0 && nids > 0) {
		struct buf parts, list;
		buf_init(&parts);
		buf_init(&list);
		parts_text(&parts, ids, nids);
		ids_text(&list, ids, nids);
		rc = store__pg_query(c, what, take, &r, "itti", now, parts.data, list.data,
		                     store_node(c->st));
		buf_release(&parts);
		buf_release(&list);
		if (rc == 0)
			claimed_rows(c, r, a, out, n);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int pg_outbox_claim_to(struct store_conn *c, int64_t now, int64_t tenant_id, const char *to,
                              enum outbox_prio min_prio, enum outbox_prio max_prio, int limit,
                              struct arena *a, struct outbox_row **out, int *n)
{
	/* the tenant's one partition; outbox_pending_to finds the recipient's rows */
	static const char sql[] =
	        "UPDATE outbox SET state = 1, attempts = attempts + 1, updated_at = $1::bigint,"
	        " claimed_by = $8::bigint"
	        " WHERE part = $2::smallint AND state = 0 AND id IN (SELECT id FROM outbox"
	        "  WHERE part = $2::smallint AND tenant_id = $3::bigint AND to_id = $4"
	        "  AND state = 0 AND priority BETWEEN $5::smallint AND $6::smallint"
	        "  AND next_attempt_at <= $1::bigint"
	        "  ORDER BY id LIMIT $7::bigint FOR UPDATE SKIP LOCKED)"
	        " RETURNING " OUTBOX_COLS;
	const char *what = "claim a recipient's outbox rows";
	PGresult *r;
	*out = NULL;
	*n = 0;
	int own, rc = store__pg_op_begin(c, tenant_scope(c), tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iiitiiii", now, (int64_t)store_partition(tenant_id),
	                     tenant_id, to, (int64_t)min_prio, (int64_t)max_prio, (int64_t)limit,
	                     store_node(c->st));
	if (rc == 0)
		claimed_rows(c, r, a, out, n);
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* ---- one send's outcome --------------------------------------------------------------------- */

/*
 * row_state reads row id's state: 1 (and *state), 0 when there is no such
 * row, or an error.
 */
static int row_state(struct store_conn *c, int64_t id, const char *what, enum outbox_state *state)
{
	static const char sql[] =
	        "SELECT state FROM outbox WHERE part = $1::smallint AND id = $2::bigint";
	PGresult *r;
	int rc = store__pg_query(c, what, sql, &r, "ii", id_part(id), id);
	if (rc < 0)
		return rc;
	int found = PQntuples(r) == 1;
	if (found)
		*state = (enum outbox_state)store__pg_i64(r, 0, 0);
	PQclear(r);
	return found;
}

/* outbox_moved explains why a guarded UPDATE of row id changed nothing. */
static int outbox_moved(struct store_conn *c, int64_t id, const char *what)
{
	enum outbox_state state = OUTBOX_PENDING;
	int rc = row_state(c, id, what, &state);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not %s: no outbox row %lld", what,
		                   (long long)id);
	return store__errf(c, ERR_CONFLICT, "could not %s: outbox row %lld is %s", what,
	                   (long long)id, outbox_state_name(state));
}

/*
 * The frame of an outcome's UPDATE: row id ($2, in partition $1) must be
 * SENDING, or PENDING too when $4 is 1; it takes state $3 unless a
 * delivery status overtook the answer (early_state, kept aside by
 * pg_outbox_status): the provider accepted that send, whatever munim heard
 * back, so the row takes the status and is never sent again. set adds the
 * outcome's own columns ($5 on). The statement returns the state before
 * and after, the priority and the tenant.
 */
#define OUTCOME_SQL(set)                                                                           \
	"UPDATE outbox_p@@ AS o SET"                                                               \
	" state = CASE WHEN g.early_state <> 0 THEN g.early_state ELSE $3::smallint END, " set     \
	" FROM (SELECT state, early_state FROM outbox_p@@"                                         \
	"  WHERE part = $1::smallint AND id = $2::bigint FOR UPDATE) AS g"                         \
	" WHERE o.part = $1::smallint AND o.id = $2::bigint"                                       \
	" AND (g.state = 1 OR ($4::integer = 1 AND g.state = 0))"                                  \
	" RETURNING g.state, o.state, o.priority, o.tenant_id"

/* What an outcome's UPDATE did to its row. */
struct outcome {
	enum outbox_state from, to;
	enum outbox_prio prio;
	int64_t tenant;
};

/*
 * outcome_read takes the result r of an OUTCOME_SQL statement for row id
 * (r is cleared): the move, counted, in *o; or, when the guard left the row
 * alone, ERR_NOTFOUND / ERR_CONFLICT saying why.
 */
static int outcome_read(struct store_conn *c, PGresult *r, int64_t id, const char *what,
                        struct outcome *o)
{
	if (PQntuples(r) != 1) {
		PQclear(r);
		return outbox_moved(c, id, what);
	}
	o->from = (enum outbox_state)store__pg_i64(r, 0, 0);
	o->to = (enum outbox_state)store__pg_i64(r, 0, 1);
	o->prio = (enum outbox_prio)store__pg_i64(r, 0, 2);
	o->tenant = store__pg_i64(r, 0, 3);
	PQclear(r);
	store__pg_count(c, o->prio, o->from, o->to, 1);
	return 0;
}

static int pg_outbox_accepted(struct store_conn *c, int64_t id, const char *provider_msg_id,
                              const char *provider, int64_t now, enum outbox_state *landed)
{
	static const char sql[] =
	        OUTCOME_SQL("provider_msg_id = $5, provider = $6, updated_at = $7::bigint");
	const char *what = "record acceptance";
	char buf[PG_PART_SQL_MAX];
	struct outcome o;
	PGresult *r;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, on_row(buf, sql, id), &r, "iiiitti", id_part(id), id,
	                     (int64_t)OUTBOX_ACCEPTED, (int64_t)0, provider_msg_id, provider, now);
	if (rc == 0)
		rc = outcome_read(c, r, id, what, &o);
	if (rc == 0)
		*landed = o.to;
	return store__pg_op_end(c, own, rc);
}

/*
 * unless_opted_out: row id (of tenant) just went back to PENDING; if it is
 * marketing (P3) to a customer who wrote "stop" while it was out - after
 * the stop failed their waiting rows (store_outbox_cancel_marketing) - it
 * fails now instead of going again (131050, as the stop's own). *landed
 * follows. customers is a shop table: this runs in the tenant's scope,
 * inside the transaction own_begin made sure of.
 */
static int unless_opted_out(struct store_conn *c, int64_t id, int64_t tenant, int64_t now,
                            enum outbox_state *landed)
{
	static const char sql[] =
	        "UPDATE outbox_p@@ AS o SET state = 6, last_error_code = 131050,"
	        " last_error = 'recipient opted out', updated_at = $3::bigint"
	        " WHERE o.part = $1::smallint AND o.id = $2::bigint AND o.state = 0"
	        " AND o.priority = 3 AND EXISTS (SELECT 1 FROM customers AS k"
	        "  WHERE k.tenant_id = o.tenant_id AND k.wa_id = o.to_id AND k.opted_out = 1)";
	const char *what = "drop marketing to a customer who opted out";
	char buf[PG_PART_SQL_MAX];
	int own, rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, on_row(buf, sql, id), "iii", id_part(id), id, now);
	if (rc > 0) {
		store__pg_count(c, PRIO_P3, OUTBOX_PENDING, OUTBOX_FAILED, 1);
		*landed = OUTBOX_FAILED;
	}
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

/* A send that goes back to PENDING: retried (an attempt went) or held
 * (none went: the claim's attempt is given back). */
struct back_to_pending {
	int held;
	int64_t next_attempt_at;
	int error_code; /* retried only */
	const char *error;
};

/*
 * back_to_pending records b for SENDING row id, then the opt-out check
 * (unless_opted_out), in the caller's transaction or one of its own
 * (own_begin): the check runs in another scope.
 */
static int back_to_pending(struct store_conn *c, int64_t id, const struct back_to_pending *b,
                           int64_t now, enum outbox_state *landed)
{
	static const char retry_sql[] = OUTCOME_SQL("next_attempt_at = $5::bigint,"
	                                            " last_error_code = $6::integer,"
	                                            " last_error = $7, updated_at = $8::bigint");
	static const char hold_sql[] = OUTCOME_SQL("next_attempt_at = $5::bigint,"
	                                           " attempts = greatest(o.attempts - 1, 0),"
	                                           " last_error = $6, updated_at = $7::bigint");
	const char *what = b->held ? "hold outbox row" : "schedule retry";
	char buf[PG_PART_SQL_MAX];
	struct outcome o = {0};
	PGresult *r;
	int txn, own, rc = own_begin(c, &txn);
	if (rc < 0)
		return rc;
	rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc == 0) {
		if (b->held)
			rc = store__pg_query(c, what, on_row(buf, hold_sql, id), &r, "iiiiiti",
			                     id_part(id), id, (int64_t)OUTBOX_PENDING, (int64_t)0,
			                     b->next_attempt_at, b->error, now);
		else
			rc = store__pg_query(c, what, on_row(buf, retry_sql, id), &r, "iiiiiiti",
			                     id_part(id), id, (int64_t)OUTBOX_PENDING, (int64_t)0,
			                     b->next_attempt_at, (int64_t)b->error_code, b->error,
			                     now);
		if (rc == 0)
			rc = outcome_read(c, r, id, what, &o);
		rc = store__pg_op_end(c, own, rc);
	}
	if (rc == 0) {
		*landed = o.to;
		if (o.to == OUTBOX_PENDING && o.prio == PRIO_P3)
			rc = unless_opted_out(c, id, o.tenant, now, landed);
	}
	return own_end(c, txn, rc);
}

static int pg_outbox_retry(struct store_conn *c, int64_t id, int64_t next_attempt_at,
                           int error_code, const char *error, int64_t now,
                           enum outbox_state *landed)
{
	struct back_to_pending b = {
	        .next_attempt_at = next_attempt_at, .error_code = error_code, .error = error};
	return back_to_pending(c, id, &b, now, landed);
}

static int pg_outbox_defer(struct store_conn *c, int64_t id, int64_t next_attempt_at,
                           const char *why, int64_t now, enum outbox_state *landed)
{
	struct back_to_pending b = {.held = 1, .next_attempt_at = next_attempt_at, .error = why};
	return back_to_pending(c, id, &b, now, landed);
}

static int pg_outbox_fail(struct store_conn *c, int64_t id, enum outbox_state state, int error_code,
                          const char *error, int64_t now, enum outbox_state *landed)
{
	static const char sql[] = OUTCOME_SQL(
	        "last_error_code = $5::integer, last_error = $6, updated_at = $7::bigint");
	const char *what = "fail outbox row";
	char buf[PG_PART_SQL_MAX];
	struct outcome o;
	PGresult *r;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, on_row(buf, sql, id), &r, "iiiiiti", id_part(id), id,
	                     (int64_t)state, (int64_t)1, (int64_t)error_code, error, now);
	if (rc == 0)
		rc = outcome_read(c, r, id, what, &o);
	if (rc == 0)
		*landed = o.to;
	return store__pg_op_end(c, own, rc);
}

static int pg_outbox_resend(struct store_conn *c, int64_t id, const char *provider, int64_t now,
                            enum outbox_state *from)
{
	/* not from SENDING (1), READ (5), DEAD (7) or MERGED (8) */
	static const char sql[] =
	        "UPDATE outbox_p@@ AS o SET state = 0, provider = $3, provider_msg_id = NULL,"
	        " early_state = 0, attempts = 0, next_attempt_at = $4::bigint,"
	        " updated_at = $4::bigint"
	        " FROM (SELECT state FROM outbox_p@@"
	        "  WHERE part = $1::smallint AND id = $2::bigint FOR UPDATE) AS g"
	        " WHERE o.part = $1::smallint AND o.id = $2::bigint AND g.state IN (0, 2, 3, 4, 6)"
	        " RETURNING g.state, o.priority";
	const char *what = "queue outbox row again";
	char buf[PG_PART_SQL_MAX];
	enum outbox_state st = OUTBOX_PENDING;
	PGresult *r;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, on_row(buf, sql, id), &r, "iiti", id_part(id), id, provider,
	                     now);
	if (rc == 0 && PQntuples(r) == 1) {
		st = (enum outbox_state)store__pg_i64(r, 0, 0);
		store__pg_count(c, (enum outbox_prio)store__pg_i64(r, 0, 1), st, OUTBOX_PENDING, 1);
		store__pg_wake(c, STORE_WAKE_OUTBOX, -1);
		*from = st;
		PQclear(r);
	} else if (rc == 0) {
		PQclear(r);
		rc = row_state(c, id, what, &st);
		if (rc == 0)
			rc = store__errf(c, ERR_NOTFOUND, "could not %s %lld: no such row", what,
			                 (long long)id);
		else if (rc == 1)
			rc = store__errf(c, ERR_CONFLICT, "could not %s %lld: it is %s", what,
			                 (long long)id, outbox_state_name(st));
	}
	return store__pg_op_end(c, own, rc);
}

/* ---- sweeps ----------------------------------------------------------------------------- */

static int pg_outbox_recover(struct store_conn *c, int64_t resend_at, int *n)
{
	/*
	 * SENDING rows that a delivery status already proved accepted take it;
	 * the others go back to PENDING, due no earlier than resend_at ($2).
	 * Only rows whose claiming node is not live at $1 (store.h): never this
	 * store's node's ($3), nor a live one's (its lease running, no later
	 * run of its name; an earlier run of $3's own name is not live).
	 * Answered by priority and status kept aside, for the counts.
	 */
	static const char sql[] =
	        "WITH m AS (UPDATE outbox SET"
	        "  state = CASE WHEN early_state <> 0 THEN early_state ELSE 0 END,"
	        "  next_attempt_at = CASE WHEN early_state <> 0 THEN next_attempt_at"
	        "   ELSE greatest(next_attempt_at, $2::bigint) END,"
	        "  updated_at = $1::bigint"
	        "  WHERE state = 1 AND (claimed_by <> $3::bigint OR $3::bigint = 0)"
	        "  AND claimed_by NOT IN (SELECT id FROM nodes WHERE expires_at > $1::bigint"
	        "   AND NOT (name = (SELECT name FROM nodes WHERE id = $3::bigint)"
	        "   AND id < $3::bigint))"
	        "  RETURNING priority, early_state)"
	        " SELECT priority, early_state, count(*) FROM m GROUP BY priority, early_state";
	const char *what = "recover outbox rows";
	PGresult *r;
	*n = 0;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iii", clock_wall_ms(), resend_at,
	                     store_node(c->st));
	if (rc == 0) {
		for (int i = 0; i < PQntuples(r); i++) {
			enum outbox_prio prio = (enum outbox_prio)store__pg_i64(r, i, 0);
			int early = (int)store__pg_i64(r, i, 1);
			int64_t k = store__pg_i64(r, i, 2);
			store__pg_count(c, prio, OUTBOX_SENDING, early ? early : OUTBOX_PENDING, k);
			if (!early)
				*n += (int)k;
		}
		PQclear(r);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		*n = 0;
	return rc;
}

static int pg_outbox_claimed_here(struct store_conn *c, int64_t moved_before, int limit,
                                  struct arena *a, int64_t **ids, int *n)
{
	static const char sql[] =
	        "SELECT id FROM outbox WHERE state = 1 AND claimed_by = $1::bigint"
	        " AND updated_at < $2::bigint ORDER BY id LIMIT $3::bigint";
	const char *what = "list this node's claims";
	PGresult *r;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iii", store_node(c->st), moved_before,
	                     (int64_t)limit);
	if (rc == 0) {
		int rows = PQntuples(r);
		*ids = store__pg_alloc_rows(a, rows, sizeof(**ids));
		for (int i = 0; i < rows; i++)
			(*ids)[i] = store__pg_i64(r, i, 0);
		*n = rows;
		PQclear(r);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*ids = NULL;
		*n = 0;
	}
	return rc;
}

static int pg_outbox_expire(struct store_conn *c, enum outbox_prio min_prio, int64_t created_before,
                            const char *why, int64_t now, int64_t moved[PRIO_COUNT])
{
	static const char sql[] =
	        "WITH m AS (UPDATE outbox SET state = 7, last_error = $3, updated_at = $4::bigint"
	        "  WHERE state = 0 AND priority >= $1::smallint AND created_at < $2::bigint"
	        "  RETURNING priority)"
	        " SELECT priority, count(*) FROM m GROUP BY priority";
	const char *what = "expire outbox rows";
	PGresult *r;
	memset(moved, 0, sizeof(int64_t) * PRIO_COUNT);
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iiti", (int64_t)min_prio, created_before, why, now);
	if (rc == 0) {
		for (int i = 0; i < PQntuples(r); i++) {
			int64_t p = store__pg_i64(r, i, 0);
			if (p >= 0 && p < PRIO_COUNT)
				moved[p] = store__pg_i64(r, i, 1);
		}
		PQclear(r);
		for (int p = 0; p < PRIO_COUNT; p++)
			store__pg_count(c, (enum outbox_prio)p, OUTBOX_PENDING, OUTBOX_DEAD,
			                moved[p]);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		memset(moved, 0, sizeof(int64_t) * PRIO_COUNT);
	return rc;
}

static int pg_outbox_waiting_by_tenant(struct store_conn *c, enum outbox_prio min_prio, int limit,
                                       struct arena *a, struct outbox_tenant_count **out, int *n)
{
	static const char sql[] = "SELECT tenant_id, count(*) AS k FROM outbox"
	                          " WHERE state = 0 AND priority >= $1::smallint"
	                          " GROUP BY tenant_id ORDER BY k DESC, tenant_id LIMIT $2::bigint";
	const char *what = "count waiting outbox rows";
	PGresult *r;
	*out = NULL;
	*n = 0;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", (int64_t)min_prio, (int64_t)limit);
	if (rc == 0) {
		int rows = PQntuples(r);
		struct outbox_tenant_count *arr = store__pg_alloc_rows(a, rows, sizeof(*arr));
		for (int i = 0; i < rows; i++) {
			arr[i].tenant_id = store__pg_i64(r, i, 0);
			arr[i].n = store__pg_i64(r, i, 1);
		}
		PQclear(r);
		*out = arr;
		*n = rows;
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* ---- delivery statuses ---------------------------------------------------------------------- */

/*
 * The status statements. Each reads the rows its statuses name into f
 * (ord: the status's place, by_hint, and the status itself: pmid, st,
 * ecode, err), and STATUS_MOVE does the rest, with $7 the time:
 *   b, n  the row with its move: base is the state the status applies to
 *      (the status kept aside for a SENDING row, else ACCEPTED; ACCEPTED
 *      for a send in doubt), nw what it becomes (status_move in
 *      sqlite_queue.c: READ, FAILED, DEAD and MERGED are final; a "failed"
 *      moves any other state to FAILED; otherwise forward only);
 *   u  the write: a SENDING row keeps nw aside (early_state) and takes the
 *      provider id; another moves to nw when that differs, a send in doubt
 *      taking the provider id.
 * The answer is the row before the write, with the state it shows after.
 */
#define STATUS_MOVE(table)                                                                         \
	" b AS (SELECT f.*, CASE WHEN state = 1 THEN"                                              \
	"   CASE WHEN early_state <> 0 THEN early_state ELSE 2 END"                                \
	"  WHEN by_hint THEN 2 ELSE state END AS base FROM f),"                                    \
	" n AS (SELECT b.*, CASE WHEN base IN (5, 6, 7, 8) THEN base"                              \
	"  WHEN st = 6 THEN 6 ELSE greatest(base, st) END AS nw FROM b),"                          \
	" u AS (UPDATE " table " AS o SET"                                                         \
	"  state = CASE WHEN n.state = 1 THEN 1 ELSE n.nw END,"                                    \
	"  early_state = CASE WHEN n.state = 1 THEN n.nw ELSE o.early_state END,"                  \
	"  provider_msg_id = CASE WHEN n.state = 1 OR n.by_hint THEN n.pmid"                       \
	"   ELSE o.provider_msg_id END,"                                                           \
	"  last_error_code = CASE WHEN n.nw = 6 THEN n.ecode ELSE o.last_error_code END,"          \
	"  last_error = CASE WHEN n.nw = 6 THEN n.err ELSE o.last_error END,"                      \
	"  updated_at = $7::bigint"                                                                \
	"  FROM n WHERE o.part = n.part AND o.id = n.id AND (n.state = 1 OR n.nw <> n.state))"     \
	" SELECT ord, id, state, priority, provider, CASE WHEN state = 1 THEN 1 ELSE nw END FROM " \
	"n"

/* Which rows a status may name by its hint: the one carrying its provider
 * id, or a send in doubt (PENDING or SENDING, no provider id, not pinned
 * to a provider) - by_hint then says the latter, and that it was accepted. */
#define STATUS_HINT_OK(o, pmid)                                                                    \
	"(" o "provider_msg_id = " pmid " OR (coalesce(" o "provider_msg_id, '') = ''"             \
	" AND " o "state IN (0, 1) AND " o "provider = ''))"

/*
 * One status, in one of two tables: the tenant's partition of the outbox
 * (outbox_p@@) when the status names its tenant, else the whole outbox.
 * Parameters: $1 the provider id, $2 the tenant (0: any), $3 the row hint
 * (0: none; one in another partition is none), $4 the status's state, $5
 * and $6 its error, $7 its time.
 *   h  the hinted row (STATUS_HINT_OK), found by the whole primary key
 *      (part, id): by id alone the index would be read from end to end, a
 *      cost that grows with the partition;
 *   m  else the newest row carrying the provider id (the tenant's).
 */
#define STATUS_SQL(table, h_where, m_where)                                                        \
	"WITH h AS (SELECT 1::bigint AS ord, part, id, state, priority, early_state, provider,"    \
	"  provider_msg_id IS DISTINCT FROM $1 AS by_hint,"                                        \
	"  $1 AS pmid, $4::integer AS st, $5::integer AS ecode, $6 AS err"                         \
	"  FROM " table " WHERE " h_where " AND " STATUS_HINT_OK(                                  \
	        "", "$1") " FOR UPDATE),"                                                          \
	                  " m AS (SELECT 1::bigint, part, id, state, priority, early_state, "      \
	                  "provider, false,"                                                       \
	                  "  $1, $4::integer, $5::integer, $6"                                     \
	                  "  FROM " table " WHERE provider_msg_id = $1 AND " m_where               \
	                  "  AND NOT EXISTS (SELECT 1 FROM h)"                                     \
	                  "  ORDER BY id DESC LIMIT 1 FOR UPDATE),"                                \
	                  " f AS (SELECT * FROM h UNION ALL SELECT * FROM m)," STATUS_MOVE(table)

const char store__pg_status_sql[] = STATUS_SQL(
        "outbox_p@@", "$3::bigint > 0 AND part = @@ AND id = $3::bigint AND tenant_id = $2::bigint",
        "tenant_id = $2::bigint");

/*
 * Many statuses that name their rows (hints) in partition @@, each row at
 * most once: $1..$6 arrays of the provider ids, tenants, hints, states and
 * errors, $7 the time. Each row is found by its key and locked in a
 * subquery of its own, in the arrays' order (the caller's: store_outbox_cmp
 * order); a join would let the planner read the whole partition. A status
 * whose hint finds no row it may name gets no answer.
 */
const char store__pg_status_set_sql[] =
        "WITH x AS (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::integer[],"
        "  $5::integer[], $6::text[]) WITH ORDINALITY AS x(pmid, tenant, hint, st, ecode, err, "
        "ord)),"
        " f AS (SELECT x.ord, o.part, o.id, o.state, o.priority, o.early_state, o.provider,"
        "  o.provider_msg_id IS DISTINCT FROM x.pmid AS by_hint, x.pmid, x.st, x.ecode, x.err"
        "  FROM x CROSS JOIN LATERAL (SELECT * FROM outbox_p@@ r"
        "   WHERE r.part = @@ AND r.id = x.hint AND r.tenant_id = x.tenant"
        "   AND " STATUS_HINT_OK("r.", "x.pmid") " FOR UPDATE) o)," STATUS_MOVE("outbox_p@@");

/* status_read fills res from row i of a status statement's answer and
 * counts its move; the answer's ord. */
static int64_t status_read(struct store_conn *c, PGresult *r, int i,
                           struct outbox_status_result *res)
{
	res->id = store__pg_i64(r, i, 1);
	res->from = (enum outbox_state)store__pg_i64(r, i, 2);
	res->prio = (enum outbox_prio)store__pg_i64(r, i, 3);
	snprintf(res->provider, sizeof(res->provider), "%s", PQgetvalue(r, i, 4));
	res->to = (enum outbox_state)store__pg_i64(r, i, 5);
	if (res->to != res->from)
		store__pg_count(c, res->prio, res->from, res->to, 1);
	return store__pg_i64(r, i, 0);
}

static int pg_outbox_status(struct store_conn *c, const struct outbox_status_update *u,
                            struct outbox_status_result *res)
{
	/* no tenant: no hint either ($2 and $3 only keep their types) */
	static const char any_sql[] =
	        STATUS_SQL("outbox", "$2::bigint <> 0 AND $3::bigint > 0 AND false", "true");
	const char *what = "apply delivery status";
	enum pg_scope scope = u->tenant_id != 0 ? tenant_scope(c) : PG_SCOPE_SYSTEM;
	int64_t part = store_partition(u->tenant_id);
	int64_t hint = u->row_hint > 0 && id_part(u->row_hint) == part ? u->row_hint : 0;
	char buf[PG_PART_SQL_MAX];
	const char *sql = u->tenant_id != 0
	                          ? store__pg_in_part(buf, sizeof(buf), store__pg_status_sql, part)
	                          : any_sql;
	PGresult *r;
	memset(res, 0, sizeof(*res));
	int own, rc = store__pg_op_begin(c, scope, u->tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "tiiiiti", u->provider_msg_id, u->tenant_id, hint,
	                     (int64_t)u->state, (int64_t)u->error_code, u->error, u->at);
	if (rc == 0 && PQntuples(r) != 1) {
		PQclear(r);
		rc = store__errf(c, ERR_NOTFOUND,
		                 "could not %s: no message with provider id \"%s\"", what,
		                 u->provider_msg_id);
	} else if (rc == 0) {
		status_read(c, r, 0, res);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

/* The partition whose row u names by its hint, or -1. */
static int64_t hinted_part(const struct outbox_status_update *u)
{
	if (u->tenant_id == 0 || u->row_hint <= 0)
		return -1;
	int64_t part = store_partition(u->tenant_id);
	return id_part(u->row_hint) == part ? part : -1;
}

/*
 * status_set applies, in one statement, u[first] and every later status
 * not yet tried that names a row of the same partition by its hint, one a
 * row; marks them tried, and answered those it found.
 */
static int status_set(struct store_conn *c, const struct outbox_status_update *u, int n, int first,
                      char *tried, char *answered, struct outbox_status_result *res)
{
	enum { C_PMID, C_TENANT, C_HINT, C_ST, C_ECODE, C_ERR, C_N };
	const char *what = "apply delivery statuses";
	int64_t part = hinted_part(&u[first]);
	int *ord = xmalloc((size_t)(n - first) * sizeof(*ord));
	struct buf col[C_N];
	int m = 0;
	for (int k = 0; k < C_N; k++)
		store__pg_arr_init(&col[k]);
	for (int i = first; i < n; i++) {
		if (tried[i] || hinted_part(&u[i]) != part)
			continue;
		int twice = 0;
		for (int k = 0; k < m && !twice; k++)
			twice = u[ord[k]].row_hint == u[i].row_hint;
		if (twice)
			continue; /* the next statement's */
		tried[i] = 1;
		ord[m++] = i;
		store__pg_arr_text(&col[C_PMID], u[i].provider_msg_id);
		store__pg_arr_int(&col[C_TENANT], u[i].tenant_id);
		store__pg_arr_int(&col[C_HINT], u[i].row_hint);
		store__pg_arr_int(&col[C_ST], (int64_t)u[i].state);
		store__pg_arr_int(&col[C_ECODE], (int64_t)u[i].error_code);
		store__pg_arr_text(&col[C_ERR], u[i].error ? u[i].error : "");
	}
	for (int k = 0; k < C_N; k++)
		store__pg_arr_end(&col[k]);
	char buf[PG_PART_SQL_MAX];
	PGresult *r;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc == 0)
		rc = store__pg_query(
		        c, what,
		        store__pg_in_part(buf, sizeof(buf), store__pg_status_set_sql, part), &r,
		        "tttttti", col[0].data, col[1].data, col[2].data, col[3].data, col[4].data,
		        col[5].data, u[first].at);
	for (int k = 0; k < C_N; k++)
		buf_release(&col[k]);
	if (rc == 0) {
		for (int i = 0; i < PQntuples(r); i++) {
			struct outbox_status_result got;
			int64_t o = status_read(c, r, i, &got);
			if (o >= 1 && o <= m) {
				res[ord[o - 1]] = got;
				answered[ord[o - 1]] = 1;
			}
		}
		PQclear(r);
	}
	free(ord);
	return own ? store__pg_op_end(c, own, rc) : rc;
}

/*
 * pg_outbox_statuses: the statuses that name a row of their tenant's
 * partition go in one statement a partition (status_set; a row named
 * twice waits for the next); then, one by one in their order, those that
 * found no row so and the rest (pg_outbox_status: by the provider id).
 */
static int pg_outbox_statuses(struct store_conn *c, const struct outbox_status_update *u, int n,
                              struct outbox_status_result *res, int *rcs)
{
	char *tried = xcalloc((size_t)n * 2, 1), *answered = tried + n;
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++)
		if (!tried[i] && hinted_part(&u[i]) >= 0)
			rc = status_set(c, u, n, i, tried, answered, res);
	for (int i = 0; i < n && rc == 0; i++) {
		if (answered[i])
			continue;
		rcs[i] = pg_outbox_status(c, &u[i], &res[i]);
		if (rcs[i] != 0 && rcs[i] != ERR_NOTFOUND)
			rc = rcs[i];
	}
	free(tried);
	return rc;
}

/* ---- merging -------------------------------------------------------------------------------- */

/* What pg_outbox_merge checks of each row (strings borrowed from the result). */
struct merge_row {
	int64_t id;
	enum outbox_state state;
	enum outbox_prio prio;
	int early; /* a status kept aside */
	int known; /* the provider gave it an id */
	int64_t tenant;
	const char *phone_number_id, *to;
	int taken; /* named already among the merged rows */
};

static int cmp_merge_row(const void *pa, const void *pb)
{
	const struct merge_row *a = pa, *b = pb;
	return (a->id > b->id) - (a->id < b->id);
}

/* merge_find: row id among the n rows read (sorted by id), or NULL. */
static struct merge_row *merge_find(struct merge_row *rows, int n, int64_t id)
{
	struct merge_row key = {.id = id};
	return bsearch(&key, rows, (size_t)n, sizeof(*rows), cmp_merge_row);
}

/*
 * merge_check tells why row id (x, NULL when missing) may not take part in
 * a merge into keeper k: 0, or an error with its message; as SQLite's
 * merge_check, plus a row named twice, which SQLite finds MERGED by then.
 */
static int merge_check(struct store_conn *c, int64_t id, struct merge_row *x,
                       const struct merge_row *k, const char *what)
{
	if (!x)
		return store__errf(c, ERR_NOTFOUND, "could not %s: no outbox row %lld", what,
		                   (long long)id);
	if (x->taken)
		return store__errf(c, ERR_CONFLICT, "could not %s: outbox row %lld is %s", what,
		                   (long long)id, outbox_state_name(OUTBOX_MERGED));
	if (x->state != OUTBOX_SENDING)
		return store__errf(c, ERR_CONFLICT, "could not %s: outbox row %lld is %s", what,
		                   (long long)id, outbox_state_name(x->state));
	if (x->early || x->known)
		return store__errf(c, ERR_CONFLICT,
		                   "could not %s: the provider already knows outbox row %lld", what,
		                   (long long)id);
	if (x->tenant != k->tenant || strcmp(x->to, k->to) != 0 ||
	    strcmp(x->phone_number_id, k->phone_number_id) != 0)
		return store__errf(c, ERR_CONFLICT,
		                   "could not %s: outbox row %lld goes to another recipient", what,
		                   (long long)id);
	return 0;
}

/*
 * merge_read reads, locked, the keeper and the merged rows into rows
 * (sorted by id; *nrows of them; strings in a) and checks them in
 * SQLite's order: the keeper first (missing: ERR_NOTFOUND before any other
 * complaint), then each merged row as named. moved[p] gets how many merged
 * rows of priority p go.
 */
static int merge_read(struct store_conn *c, int64_t keeper_id, const int64_t *merged, int n,
                      struct arena *a, const char *what, int64_t moved[PRIO_COUNT])
{
	static const char sql[] =
	        "SELECT id, state, priority, early_state, coalesce(provider_msg_id, '') <> '',"
	        " tenant_id, phone_number_id, to_id FROM outbox"
	        " WHERE part = ANY($1::smallint[]) AND id = ANY($2::bigint[]) FOR UPDATE";
	int64_t *all = arena_alloc(a, ((size_t)n + 1) * sizeof(*all));
	struct buf parts, list;
	PGresult *r;
	all[0] = keeper_id;
	memcpy(all + 1, merged, (size_t)n * sizeof(*all));
	buf_init(&parts);
	buf_init(&list);
	parts_text(&parts, all, n + 1);
	ids_text(&list, all, n + 1);
	int rc = store__pg_query(c, what, sql, &r, "tt", parts.data, list.data);
	buf_release(&parts);
	buf_release(&list);
	if (rc < 0)
		return rc;
	int nrows = PQntuples(r);
	struct merge_row *rows = store__pg_alloc_rows(a, nrows, sizeof(*rows));
	for (int i = 0; i < nrows; i++) {
		rows[i].id = store__pg_i64(r, i, 0);
		rows[i].state = (enum outbox_state)store__pg_i64(r, i, 1);
		rows[i].prio = (enum outbox_prio)store__pg_i64(r, i, 2);
		rows[i].early = store__pg_i64(r, i, 3) != 0;
		rows[i].known = PQgetvalue(r, i, 4)[0] == 't';
		rows[i].tenant = store__pg_i64(r, i, 5);
		rows[i].phone_number_id = store__pg_str(r, i, 6, a);
		rows[i].to = store__pg_str(r, i, 7, a);
	}
	PQclear(r);
	if (nrows > 1)
		qsort(rows, (size_t)nrows, sizeof(*rows), cmp_merge_row);
	struct merge_row *k = merge_find(rows, nrows, keeper_id);
	rc = merge_check(c, keeper_id, k, k, what);
	for (int i = 0; rc == 0 && i < n; i++) {
		struct merge_row *x = merge_find(rows, nrows, merged[i]);
		rc = merge_check(c, merged[i], x, k, what);
		if (rc == 0) {
			x->taken = 1;
			if ((unsigned)x->prio < PRIO_COUNT)
				moved[x->prio]++;
		}
	}
	return rc;
}

static int pg_outbox_merge(struct store_conn *c, int64_t keeper_id, const char *body,
                           const int64_t *merged, int n, int64_t now)
{
	/* the claim counted an attempt for a send a merged row never makes */
	static const char sql[] = "WITH k AS (UPDATE outbox SET body = $3, updated_at = $4::bigint"
	                          "  WHERE part = $5::smallint AND id = $6::bigint)"
	                          " UPDATE outbox SET state = 8, merged_into = $6::bigint,"
	                          " attempts = greatest(attempts - 1, 0), updated_at = $4::bigint"
	                          " WHERE part = ANY($1::smallint[]) AND id = ANY($2::bigint[])";
	char what[64];
	snprintf(what, sizeof(what), "merge into outbox row %lld", (long long)keeper_id);
	int64_t moved[PRIO_COUNT] = {0};
	struct arena a;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	arena_init(&a, 4096);
	rc = merge_read(c, keeper_id, merged, n, &a, what, moved);
	arena_release(&a);
	if (rc == 0) {
		struct buf parts, list;
		buf_init(&parts);
		buf_init(&list);
		parts_text(&parts, merged, n);
		ids_text(&list, merged, n);
		rc = store__pg_exec(c, what, sql, "tttiii", parts.data, list.data, body, now,
		                    id_part(keeper_id), keeper_id);
		buf_release(&parts);
		buf_release(&list);
	}
	if (rc >= 0) {
		rc = 0;
		for (int p = 0; p < PRIO_COUNT; p++)
			store__pg_count(c, (enum outbox_prio)p, OUTBOX_SENDING, OUTBOX_MERGED,
			                moved[p]);
	}
	return store__pg_op_end(c, own, rc);
}

/* ---- reading -------------------------------------------------------------------------------- */

static int pg_outbox_list(struct store_conn *c, enum outbox_state state, int limit, struct arena *a,
                          struct outbox_row **out, int *n)
{
	static const char sql[] = "SELECT " OUTBOX_COLS " FROM outbox WHERE state = $1::smallint"
	                          " ORDER BY id DESC LIMIT $2::bigint";
	const char *what = "list outbox";
	PGresult *r;
	*out = NULL;
	*n = 0;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", (int64_t)state, (int64_t)limit);
	if (rc == 0) {
		int rows = PQntuples(r);
		struct outbox_row *arr = store__pg_alloc_rows(a, rows, sizeof(*arr));
		for (int i = 0; i < rows; i++)
			read_outbox(r, i, a, &arr[i]);
		PQclear(r);
		*out = arr;
		*n = rows;
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int pg_outbox_counts(struct store_conn *c, int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT])
{
	/* a few rows per shard, whatever the history; the open transaction's
	 * own moves (not in the table before its commit) are added */
	static const char sql[] = "SELECT priority, state, sum(n)::bigint FROM outbox_counts"
	                          " GROUP BY priority, state";
	const char *what = "count outbox";
	const struct pg_session *pg = c->backend;
	PGresult *r;
	memset(counts, 0, sizeof(int64_t) * PRIO_COUNT * OUTBOX_STATE_COUNT);
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "");
	if (rc == 0) {
		for (int i = 0; i < PQntuples(r); i++) {
			int64_t p = store__pg_i64(r, i, 0), s = store__pg_i64(r, i, 1);
			if (p >= 0 && p < PRIO_COUNT && s >= 0 && s < OUTBOX_STATE_COUNT)
				counts[p][s] = store__pg_i64(r, i, 2);
		}
		PQclear(r);
		for (int p = 0; p < PRIO_COUNT; p++)
			for (int s = 0; s < OUTBOX_STATE_COUNT; s++)
				counts[p][s] += pg->counts[p][s];
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_outbox_next_due(struct store_conn *c, enum outbox_prio max_prio, int64_t *at)
{
	/*
	 * One index probe per priority (outbox_due, in each partition) rather
	 * than a scan of every pending row; a priority past max_prio ($1) is
	 * a constant false once planned with its value, and not probed.
	 * least() skips NULLs; all NULL (nothing pending) reads 0.
	 */
	static const char sql[] =
	        "SELECT least("
	        " (SELECT min(next_attempt_at) FROM outbox WHERE state = 0 AND priority = 0),"
	        " (SELECT min(next_attempt_at) FROM outbox"
	        "  WHERE $1::integer >= 1 AND state = 0 AND priority = 1),"
	        " (SELECT min(next_attempt_at) FROM outbox"
	        "  WHERE $1::integer >= 2 AND state = 0 AND priority = 2),"
	        " (SELECT min(next_attempt_at) FROM outbox"
	        "  WHERE $1::integer >= 3 AND state = 0 AND priority = 3))";
	const char *what = "read next due time";
	PGresult *r;
	*at = 0;
	int own, rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "i", (int64_t)max_prio);
	if (rc == 0) {
		*at = store__pg_i64(r, 0, 0);
		PQclear(r);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		*at = 0;
	return rc;
}

/* store__pg_outbox_ops (pg_internal.h) puts this file's operations into ops. */
void store__pg_outbox_ops(struct store_ops *ops)
{
	ops->outbox_add = pg_outbox_add;
	ops->outbox_add_many = pg_outbox_add_many;
	ops->outbox_claim_to = pg_outbox_claim_to;
	ops->outbox_claim = pg_outbox_claim;
	ops->outbox_recover = pg_outbox_recover;
	ops->outbox_claimed_here = pg_outbox_claimed_here;
	ops->outbox_accepted = pg_outbox_accepted;
	ops->outbox_retry = pg_outbox_retry;
	ops->outbox_fail = pg_outbox_fail;
	ops->outbox_defer = pg_outbox_defer;
	ops->outbox_resend = pg_outbox_resend;
	ops->outbox_waiting_by_tenant = pg_outbox_waiting_by_tenant;
	ops->outbox_expire = pg_outbox_expire;
	ops->outbox_status = pg_outbox_status;
	ops->outbox_statuses = pg_outbox_statuses;
	ops->outbox_merge = pg_outbox_merge;
	ops->outbox_list = pg_outbox_list;
	ops->outbox_counts = pg_outbox_counts;
	ops->outbox_next_due = pg_outbox_next_due;
}
