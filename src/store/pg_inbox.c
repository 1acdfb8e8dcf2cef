/*
 * pg_inbox.c - the PostgreSQL backend of the inbox: what webhooks brought,
 * waiting for the workers (store.h, "inbox"; sqlite_queue.c is the
 * reference for every outcome).
 *
 * Layout (migrations_pg.c): inbox is PARTITION BY LIST (part), part =
 * store_partition(tenant_id), and an entry's id is
 * nextval('inbox_id_seq') * 64 + part, so the id alone names the
 * partition (id & 63) and every statement about one entry adds
 * `part = <id & 63>` to touch one partition only. Entries are
 * deduplicated by the unique key (part, ext_id, status): a wamid always
 * comes to the same shop's number, hence the same partition.
 *
 *     PENDING --pg_inbox_done--> DONE --pg_inbox_reopen--> PENDING
 *        |  ^
 *        |  +--pg_inbox_failed (attempts < max)
 *        +-----pg_inbox_failed (attempts reach max)--> FAILED
 *
 * Design
 *   pg_inbox_put is the ingest's group commit: one statement for the whole
 *   batch, whatever its tenants. The entries travel as one array per
 *   column (text parameters, '{...}' literals), are numbered WITH
 *   ORDINALITY and given their ids in a materialized CTE, inserted in that
 *   order with ON CONFLICT DO NOTHING (so a duplicate, in the table or
 *   earlier in the same batch, is skipped without an error that would
 *   abort the caller's transaction), and the statement answers which
 *   ordinals were inserted, with their ids. The first of two equal
 *   entries in a batch is the new one, as in SQLite.
 *
 *   pg_inbox_pending reads the partitions of a mask (a worker thread's
 *   share of its process's partition leases) in one statement that
 *   walks the partial index inbox_pending (part, id) WHERE state = 0 of
 *   each partition and stops at limit, merging by id (a UNION ALL of one
 *   branch per partition for a few, a LATERAL join over the mask's parts
 *   for many: see pending_query). The cost is bounded by partitions x
 *   limit whatever the backlog, and a flooded tenant cannot slow another
 *   worker's partitions.
 *
 *   A state move (done, reopen, failed) is one guarded UPDATE; only when
 *   it touched nothing does a second read tell ERR_NOTFOUND from
 *   ERR_CONFLICT, without raising anything in the caller's transaction.
 *
 * Scope: PG_SCOPE_SYSTEM throughout (queue work across tenants).
 *
 * Threads: every function uses only its connection (one per thread).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "store/pg_internal.h"

#define INBOX_COLS                                                                                 \
	"id, tenant_id, kind, ext_id, status, from_id, name, type, body, context_id,"              \
	" sent_at, received_at, error_code, error_title, state, attempts, callback_data,"          \
	" media_id, media_mime"

static void read_inbox(const PGresult *r, int row, struct arena *a, struct inbox_entry *e)
{
	e->id = store__pg_i64(r, row, 0);
	e->tenant_id = store__pg_i64(r, row, 1);
	e->kind = (enum inbox_kind)store__pg_i64(r, row, 2);
	e->ext_id = store__pg_str(r, row, 3, a);
	e->status = store__pg_str(r, row, 4, a);
	e->from = store__pg_str(r, row, 5, a);
	e->name = store__pg_str(r, row, 6, a);
	e->type = store__pg_str(r, row, 7, a);
	e->body = store__pg_str(r, row, 8, a);
	e->context_id = store__pg_str(r, row, 9, a);
	e->sent_at = store__pg_i64(r, row, 10);
	e->received_at = store__pg_i64(r, row, 11);
	e->error_code = (int)store__pg_i64(r, row, 12);
	e->error_title = store__pg_str(r, row, 13, a);
	e->state = (enum inbox_state)store__pg_i64(r, row, 14);
	e->attempts = (int)store__pg_i64(r, row, 15);
	e->callback_data = store__pg_str(r, row, 16, a);
	e->media_id = store__pg_str(r, row, 17, a);
	e->media_mime = store__pg_str(r, row, 18, a);
}

/* The partition an entry's id names (its low six bits). */
static int64_t id_part(int64_t id)
{
	return (int64_t)((uint64_t)id & (STORE_PARTITIONS - 1));
}

/* ---- put ---------------------------------------------------------------------------------- */

/* The columns of an offered entry, in the order of put_sql's arrays. */
enum {
	PUT_PART,
	PUT_TENANT,
	PUT_KIND,
	PUT_EXT_ID,
	PUT_STATUS,
	PUT_FROM,
	PUT_NAME,
	PUT_TYPE,
	PUT_BODY,
	PUT_CONTEXT,
	PUT_SENT_AT,
	PUT_RECEIVED_AT,
	PUT_ERROR_CODE,
	PUT_ERROR_TITLE,
	PUT_CALLBACK,
	PUT_STATE,
	PUT_MEDIA_ID,
	PUT_MEDIA_MIME,
	PUT_NCOLS
};

/*
 * One statement for the batch: the entries numbered (ord) and given ids in
 * input order, inserted in that order, and the ordinals that were new
 * with their ids as the answer.
 */
#define PUT_SQL(table)                                                                             \
	"WITH input AS MATERIALIZED ("                                                             \
	" SELECT nextval('inbox_id_seq') * 64 + x.part AS id, x.*"                                 \
	" FROM unnest($1::smallint[], $2::bigint[], $3::smallint[], $4::text[], $5::text[],"       \
	"  $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::bigint[],"            \
	"  $12::bigint[], $13::integer[], $14::text[], $15::text[], $16::smallint[],"              \
	"  $17::text[], $18::text[])"                                                              \
	" WITH ORDINALITY AS x(part, tenant_id, kind, ext_id, status, from_id, name, type,"        \
	"  body, context_id, sent_at, received_at, error_code, error_title, callback_data,"        \
	"  state, media_id, media_mime, ord)"                                                      \
	" ORDER BY x.ord),"                                                                        \
	" ins AS ("                                                                                \
	" INSERT INTO " table " (id, part, tenant_id, kind, ext_id, status, from_id, name, type,"  \
	"  body, context_id, sent_at, received_at, error_code, error_title, callback_data,"        \
	"  state, media_id, media_mime)"                                                           \
	" SELECT id, part, tenant_id, kind, ext_id, status, from_id, name, type, body,"            \
	"  context_id, sent_at, received_at, error_code, error_title, callback_data, state,"       \
	"  media_id, media_mime"                                                                   \
	" FROM input ORDER BY ord"                                                                 \
	" ON CONFLICT (part, ext_id, status) DO NOTHING"                                           \
	" RETURNING id)" /* an array, not a join: a generic plan would hash-join a row or two */   \
	" SELECT ord, id FROM input WHERE id = ANY (ARRAY(SELECT id FROM ins))"
/* Through the parent, each insert sets up the routing to the partition and
 * finds its arbiter index in the catalogue again (ON CONFLICT): a batch
 * whose entries share one partition (the usual webhook, one shop) goes
 * into it by name. */
static const char put_sql[] = PUT_SQL("inbox");
static const char put_part_sql[] = PUT_SQL("inbox_p@@");

static void put_args(const struct inbox_entry *e, int n, struct buf col[PUT_NCOLS])
{
	for (int k = 0; k < PUT_NCOLS; k++)
		store__pg_arr_init(&col[k]);
	for (int i = 0; i < n; i++) {
		const struct inbox_entry *x = &e[i];
		store__pg_arr_int(&col[PUT_PART], store_partition(x->tenant_id));
		store__pg_arr_int(&col[PUT_TENANT], x->tenant_id);
		store__pg_arr_int(&col[PUT_KIND], (int64_t)x->kind);
		store__pg_arr_text(&col[PUT_EXT_ID], x->ext_id);
		store__pg_arr_text(&col[PUT_STATUS], x->status);
		store__pg_arr_text(&col[PUT_FROM], x->from);
		store__pg_arr_text(&col[PUT_NAME], x->name);
		store__pg_arr_text(&col[PUT_TYPE], x->type);
		store__pg_arr_text(&col[PUT_BODY], x->body);
		store__pg_arr_text(&col[PUT_CONTEXT], x->context_id);
		store__pg_arr_int(&col[PUT_SENT_AT], x->sent_at);
		store__pg_arr_int(&col[PUT_RECEIVED_AT], x->received_at);
		store__pg_arr_int(&col[PUT_ERROR_CODE], (int64_t)x->error_code);
		store__pg_arr_text(&col[PUT_ERROR_TITLE], x->error_title);
		store__pg_arr_text(&col[PUT_CALLBACK], x->callback_data);
		store__pg_arr_int(&col[PUT_STATE], (int64_t)x->state);
		store__pg_arr_text(&col[PUT_MEDIA_ID], x->media_id);
		store__pg_arr_text(&col[PUT_MEDIA_MIME], x->media_mime);
	}
	for (int k = 0; k < PUT_NCOLS; k++)
		store__pg_arr_end(&col[k]);
}

/*
 * pg_inbox_put: every entry DUPLICATE with id 0 first, then the ordinals
 * the statement inserted NEW with their ids; attempts 0 for all.
 */
static int pg_inbox_put(struct store_conn *c, struct inbox_entry *e, int n,
                        enum inbox_put_result *result)
{
	const char *what = "insert inbox entries";
	struct buf col[PUT_NCOLS];
	char buf[PG_PART_SQL_MAX];
	const char *sql = put_sql;
	PGresult *r = NULL;
	int own, rc, part = n > 0 ? store_partition(e[0].tenant_id) : -1;

	for (int i = 0; i < n; i++) {
		result[i] = INBOX_PUT_DUPLICATE;
		e[i].id = 0;
		e[i].attempts = 0;
		if (store_partition(e[i].tenant_id) != part)
			part = -1;
	}
	if (part >= 0)
		sql = store__pg_in_part(buf, sizeof(buf), put_part_sql, part);
	if ((rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own)) < 0)
		return rc;
	put_args(e, n, col);
	rc = store__pg_query(c, what, sql, &r, "tttttttttttttttttt", col[0].data, col[1].data,
	                     col[2].data, col[3].data, col[4].data, col[5].data, col[6].data,
	                     col[7].data, col[8].data, col[9].data, col[10].data, col[11].data,
	                     col[12].data, col[13].data, col[14].data, col[15].data, col[16].data,
	                     col[17].data);
	for (int k = 0; k < PUT_NCOLS; k++)
		buf_release(&col[k]);
	for (int row = 0; rc == 0 && row < PQntuples(r); row++) {
		int64_t ord = store__pg_i64(r, row, 0);
		if (ord < 1 || ord > n) {
			rc = store__errf(c, ERR_DB, "could not %s: entry %lld of %d came back",
			                 what, (long long)ord, n);
			break;
		}
		result[ord - 1] = INBOX_PUT_NEW;
		e[ord - 1].id = store__pg_i64(r, row, 1);
		if (e[ord - 1].state == INBOX_PENDING) /* work for another process's workers */
			store__pg_wake(c, STORE_WAKE_INBOX, (int)id_part(e[ord - 1].id));
	}
	PQclear(r);
	if (rc < 0) {
		for (int i = 0; i < n; i++)
			e[i].id = 0;
	}
	return store__pg_op_end(c, own, rc);
}

/* ---- pending -------------------------------------------------------------------------------- */

/*
 * Reading a set of partitions. part = ANY($1) ORDER BY id on the parent
 * is no good: the planner cannot see that a partition holds one part, so
 * it reads every pending entry of the set and sorts them (measured: 80 ms with
 * 50,000 pending, growing with the backlog). Two shapes that walk
 * inbox_pending (part, id) per partition and stop at limit instead:
 *
 *   union    one branch per partition, part a constant, merged by id
 *            (Merge Append of Limit + Index Scan): reads about limit +
 *            partitions rows, but the planning grows with the branches;
 *   lateral  unnest($1::smallint[]) joined LATERAL to the same subquery
 *            on part = s.part: the partition is chosen when it runs
 *            (run-time pruning), so planning costs the same for any slice
 *            (that of the 64 partitions), while up to partitions x limit
 *            rows are sorted.
 *
 * Measured on 1,000,000 entries (100,000 pending, limit 100): union is
 * the cheaper for up to 16 partitions (the usual slice, four workers or
 * more), lateral for more (one or two workers). The cost of either is
 * bounded by partitions x limit whatever the backlog.
 */
#define PENDING_UNION_MAX 16

static const char pending_lateral[] =
        "SELECT e.* FROM unnest($2::smallint[]) AS s(part) CROSS JOIN LATERAL"
        " (SELECT " INBOX_COLS " FROM inbox WHERE state = 0 AND inbox.part = s.part"
        "  ORDER BY id LIMIT $1) e"
        " ORDER BY e.id LIMIT $1";

/* pending_union writes into b the union statement for parts ($1 = limit). */
static void pending_union(struct buf *b, uint64_t parts)
{
	int first = 1;
	buf_puts(b, "SELECT " INBOX_COLS " FROM (");
	for (int part = 0; part < STORE_PARTITIONS; part++) {
		if (!(parts & (1ULL << part)))
			continue;
		if (!first)
			buf_puts(b, " UNION ALL ");
		first = 0;
		buf_puts(b, "(SELECT " INBOX_COLS " FROM inbox WHERE state = 0 AND part = ");
		buf_put_u64(b, (uint64_t)part);
		buf_puts(b, " ORDER BY id LIMIT $1)");
	}
	buf_puts(b, ") p ORDER BY id LIMIT $1");
}

/* pending_query runs the statement that suits the number of parts. */
static int pending_query(struct store_conn *c, const char *what, uint64_t parts, int limit,
                         PGresult **r)
{
	struct buf b;
	int rc;

	if (__builtin_popcountll(parts) <= PENDING_UNION_MAX) {
		buf_init(&b);
		pending_union(&b, parts);
		rc = store__pg_query(c, what, b.data, r, "i", (int64_t)limit);
	} else {
		store__pg_arr_init(&b);
		for (int part = 0; part < STORE_PARTITIONS; part++)
			if (parts & (1ULL << part))
				store__pg_arr_int(&b, part);
		store__pg_arr_end(&b);
		rc = store__pg_query(c, what, pending_lateral, r, "it", (int64_t)limit, b.data);
	}
	buf_release(&b);
	return rc;
}

static int pg_inbox_pending(struct store_conn *c, uint64_t parts, int limit, struct arena *a,
                            struct inbox_entry **out, int *n)
{
	const char *what = "read inbox";
	PGresult *r = NULL;
	int own, rc;

	*out = NULL;
	*n = 0;
	if ((rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own)) < 0)
		return rc;
	rc = pending_query(c, what, parts, limit, &r);
	if (rc == 0) {
		int rows = PQntuples(r);
		struct inbox_entry *arr = store__pg_alloc_rows(a, rows, sizeof(*arr));
		for (int i = 0; i < rows; i++)
			read_inbox(r, i, a, &arr[i]);
		*out = arr;
		*n = rows;
	}
	PQclear(r);
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*out = NULL;
		*n = 0;
	}
	return rc;
}

/* ---- state moves ---------------------------------------------------------------------------- */

/*
 * inbox_not_pending explains why an UPDATE ... AND state = 0 of entry id
 * touched nothing: ERR_NOTFOUND, or ERR_CONFLICT naming its state.
 */
static int inbox_not_pending(struct store_conn *c, int64_t id, const char *what)
{
	PGresult *r;
	int rc = store__pg_query(c, what, "SELECT state FROM inbox WHERE part = $1 AND id = $2", &r,
	                         "ii", id_part(id), id);
	if (rc < 0)
		return rc;
	if (PQntuples(r) == 0) {
		PQclear(r);
		return store__errf(c, ERR_NOTFOUND, "could not %s: no inbox entry %lld", what,
		                   (long long)id);
	}
	int64_t state = store__pg_i64(r, 0, 0);
	PQclear(r);
	return store__errf(c, ERR_CONFLICT, "could not %s: inbox entry %lld is %s", what,
	                   (long long)id,
	                   state == INBOX_DONE     ? "done"
	                   : state == INBOX_FAILED ? "failed"
	                                           : "pending");
}

/*
 * inbox_move runs a guarded state UPDATE of entry id (sql's $1 = part,
 * $2 = id); with strict, a row the guard left alone is an error
 * (inbox_not_pending).
 */
static int inbox_move(struct store_conn *c, const char *sql, const char *what, int64_t id,
                      int strict)
{
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "ii", id_part(id), id);
	if (rc == 0 && strict)
		rc = inbox_not_pending(c, id, what);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

static int pg_inbox_done(struct store_conn *c, int64_t id)
{
	return inbox_move(c, "UPDATE inbox SET state = 1 WHERE part = $1 AND id = $2 AND state = 0",
	                  "mark inbox entry done", id, 1);
}

static int pg_inbox_reopen(struct store_conn *c, int64_t id)
{
	int rc = inbox_move(c,
	                    "UPDATE inbox SET state = 0 WHERE part = $1 AND id = $2 AND state = 1",
	                    "reopen inbox entry", id, 0);
	if (rc == 0 && c->in_txn) /* pending again: other processes' workers may take it */
		store__pg_wake(c, STORE_WAKE_INBOX, (int)id_part(id));
	return rc;
}

static int pg_inbox_failed(struct store_conn *c, int64_t id, int max_attempts, const char *why)
{
	static const char sql[] = "UPDATE inbox SET attempts = attempts + 1, last_error = $4,"
	                          " state = CASE WHEN attempts + 1 >= $3 THEN 2 ELSE 0 END"
	                          " WHERE part = $1 AND id = $2 AND state = 0";
	const char *what = "record inbox failure";
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "iiit", id_part(id), id, (int64_t)max_attempts, why);
	if (rc == 0)
		rc = inbox_not_pending(c, id, what);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

/* ---- counts --------------------------------------------------------------------------------- */

static int pg_inbox_depth(struct store_conn *c, int64_t *n)
{
	return store__pg_count_rows(c, "count inbox", "SELECT count(*) FROM inbox WHERE state = 0",
	                            n);
}

static int pg_inbox_waiting(struct store_conn *c, int limit, struct arena *a,
                            struct inbox_waiting **out, int *n)
{
	static const char sql[] =
	        "SELECT tenant_id, from_id FROM inbox WHERE state = 0 AND kind = 1 LIMIT $1";
	const char *what = "read waiting customers";
	PGresult *r;
	int own;
	*out = NULL;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	/* one more than asked tells "too many" */
	rc = store__pg_query(c, what, sql, &r, "i", (int64_t)limit + 1);
	if (rc == 0) {
		int rows = PQntuples(r);
		if (rows > limit) {
			rc = store__errf(c, ERR_TOOBIG, "could not %s: more than %d", what, limit);
		} else {
			struct inbox_waiting *w = store__pg_alloc_rows(a, rows, sizeof(*w));
			for (int i = 0; i < rows; i++) {
				w[i].tenant_id = store__pg_i64(r, i, 0);
				w[i].from = store__pg_str(r, i, 1, a);
			}
			*out = w;
			*n = rows;
		}
		PQclear(r);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*out = NULL;
		*n = 0;
	}
	return rc;
}

void store__pg_inbox_ops(struct store_ops *ops)
{
	ops->inbox_put = pg_inbox_put;
	ops->inbox_pending = pg_inbox_pending;
	ops->inbox_done = pg_inbox_done;
	ops->inbox_reopen = pg_inbox_reopen;
	ops->inbox_failed = pg_inbox_failed;
	ops->inbox_depth = pg_inbox_depth;
	ops->inbox_waiting = pg_inbox_waiting;
}
