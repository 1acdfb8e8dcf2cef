/*
 * pg_ai.c - the PostgreSQL backend of the AI jobs, the OCR queue and the
 * companion app's records (store.h, "AI jobs and the OCR queue" and "the
 * companion app"; sqlite_ai.c and sqlite_companion.c are the reference
 * for every outcome).
 *
 * AI jobs (table ai_jobs):
 *   pg_ai_job_add:     INSERT PENDING ... ON CONFLICT (ext_id) DO NOTHING;
 *     no row back means a job for that wamid exists: ERR_CONFLICT, without
 *     an error that would abort the caller's transaction.
 *   pg_ai_job_waiting: one probe of the partial index ai_jobs_open.
 *   pg_ai_job_claim:   PENDING → CLAIMED for the oldest jobs whose
 *     customer has no older job not DONE, picked FOR UPDATE SKIP LOCKED so
 *     that several processes claim at once without waiting on each other
 *     or taking the same job; a customer's jobs still run one at a time
 *     and in order (the older job, claimed or locked by another claimer,
 *     is not DONE, so the younger one is not claimable).
 *   pg_ai_job_finish:  CLAIMED → DONE; pg_ai_job_release: CLAIMED →
 *     PENDING; pg_ai_job_recover: start-up, every CLAIMED → PENDING. Each a
 *     guarded UPDATE; only when it touched nothing does a second read tell
 *     ERR_NOTFOUND from ERR_CONFLICT.
 *
 * OCR queue (table ocr_queue): add (QUEUED; a queued wamid again is
 * ERR_CONFLICT, found by ON CONFLICT DO NOTHING), list by state in id
 * order, done (QUEUED → DONE, guarded), depth.
 *
 * Companion app: customer_ensure (find, or add without moving
 * last_inbound_at), orders_list (orders with their lines, newest first,
 * one statement) and the record of synced operations (companion_ops,
 * keyed by (tenant_id, client_id); a second put of a key is ERR_CONFLICT
 * and changes nothing).
 *
 * Scope: a tenant's own rows are read and written in PG_SCOPE_TENANT (job
 * and OCR adds, a customer's waiting jobs, and everything of the companion
 * app, which touches shop tables); work that names a job or an item by id
 * alone, or spans tenants (claims, recovery, counts, the OCR list), runs
 * in PG_SCOPE_SYSTEM. orders and order_lines are PARTITION BY HASH
 * (tenant_id): every statement on them carries tenant_id.
 *
 * Threads: every function uses only its connection (one per thread).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "store/pg_internal.h"

/*
 * one_i64 runs sql, whose $1 is id, and reads the first column of its
 * first row into *v: 1 when a row came back, 0 when none, < 0 on error.
 */
static int one_i64(struct store_conn *c, const char *what, const char *sql, int64_t id, int64_t *v)
{
	PGresult *r;
	int rc = store__pg_query(c, what, sql, &r, "i", id);
	if (rc < 0)
		return rc;
	rc = PQntuples(r) > 0;
	if (rc)
		*v = store__pg_i64(r, 0, 0);
	PQclear(r);
	return rc;
}

/* ---- AI jobs -------------------------------------------------------------------------------- */

#define AI_JOB_COLS                                                                                \
	"id, tenant_id, kind, state, ext_id, from_id, name, type, body, context_id, sent_at,"      \
	" received_at, created_at, attempts, outcome, rewritten, done_at"

static void read_job(const PGresult *r, int row, struct arena *a, struct ai_job *j)
{
	j->id = store__pg_i64(r, row, 0);
	j->tenant_id = store__pg_i64(r, row, 1);
	j->kind = (enum ai_job_kind)store__pg_i64(r, row, 2);
	j->state = (enum ai_job_state)store__pg_i64(r, row, 3);
	j->ext_id = store__pg_str(r, row, 4, a);
	j->from = store__pg_str(r, row, 5, a);
	j->name = store__pg_str(r, row, 6, a);
	j->type = store__pg_str(r, row, 7, a);
	j->body = store__pg_str(r, row, 8, a);
	j->context_id = store__pg_str(r, row, 9, a);
	j->sent_at = store__pg_i64(r, row, 10);
	j->received_at = store__pg_i64(r, row, 11);
	j->created_at = store__pg_i64(r, row, 12);
	j->attempts = (int)store__pg_i64(r, row, 13);
	j->outcome = store__pg_str(r, row, 14, a);
	j->rewritten = store__pg_str(r, row, 15, a);
	j->done_at = store__pg_i64(r, row, 16);
}

static int pg_ai_job_add(struct store_conn *c, const struct ai_job *j, int64_t *id)
{
	static const char sql[] =
	        "INSERT INTO ai_jobs (tenant_id, kind, state, ext_id, from_id, name, type, body,"
	        " context_id, sent_at, received_at, created_at)"
	        " VALUES ($1, $2, 0, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
	        " ON CONFLICT (ext_id) DO NOTHING RETURNING id";
	const char *what = "record AI job";
	PGresult *r;
	int own;
	*id = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, j->tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iittttttiii", j->tenant_id, (int64_t)j->kind,
	                     j->ext_id, j->from, j->name, j->type, j->body, j->context_id,
	                     j->sent_at, j->received_at, j->created_at);
	if (rc == 0) {
		if (PQntuples(r) == 1)
			*id = store__pg_i64(r, 0, 0);
		else
			rc = store__errf(c, ERR_CONFLICT,
			                 "could not record AI job: message \"%s\" has one already",
			                 j->ext_id);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_ai_job_waiting(struct store_conn *c, int64_t tenant_id, const char *from,
                             int *waiting)
{
	static const char sql[] = "SELECT EXISTS (SELECT 1 FROM ai_jobs"
	                          " WHERE tenant_id = $1 AND from_id = $2 AND state < 2)";
	const char *what = "look for AI jobs";
	PGresult *r;
	int own;
	*waiting = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "it", tenant_id, from);
	if (rc == 0) {
		*waiting = PQgetvalue(r, 0, 0)[0] == 't';
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int cmp_job_id(const void *pa, const void *pb)
{
	const struct ai_job *a = pa, *b = pb;
	return (a->id > b->id) - (a->id < b->id);
}

static int pg_ai_job_claim(struct store_conn *c, int limit, struct arena *a, struct ai_job **out,
                           int *n)
{
	static const char sql[] =
	        "WITH pick AS MATERIALIZED ("
	        " SELECT j.id FROM ai_jobs j WHERE j.state = 0"
	        "  AND NOT EXISTS (SELECT 1 FROM ai_jobs k WHERE k.tenant_id = j.tenant_id"
	        "   AND k.from_id = j.from_id AND k.state < 2 AND k.id < j.id)"
	        " ORDER BY j.id LIMIT $1 FOR UPDATE OF j SKIP LOCKED)"
	        " UPDATE ai_jobs SET state = 1, attempts = attempts + 1"
	        " FROM pick WHERE ai_jobs.id = pick.id AND ai_jobs.state = 0"
	        " RETURNING ai_jobs.id, ai_jobs.tenant_id, ai_jobs.kind, ai_jobs.state,"
	        " ai_jobs.ext_id, ai_jobs.from_id, ai_jobs.name, ai_jobs.type, ai_jobs.body,"
	        " ai_jobs.context_id, ai_jobs.sent_at, ai_jobs.received_at, ai_jobs.created_at,"
	        " ai_jobs.attempts, ai_jobs.outcome, ai_jobs.rewritten, ai_jobs.done_at";
	const char *what = "claim AI jobs";
	struct ai_job *jobs = NULL;
	PGresult *r;
	int own, rows = 0;
	*out = NULL;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "i", (int64_t)limit);
	if (rc == 0) {
		rows = PQntuples(r);
		jobs = store__pg_alloc_rows(a, rows, sizeof(*jobs));
		for (int i = 0; i < rows; i++)
			read_job(r, i, a, &jobs[i]);
		PQclear(r);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		return rc;
	/* RETURNING gives no order: oldest first, as the claim chose them */
	if (rows > 1)
		qsort(jobs, (size_t)rows, sizeof(*jobs), cmp_job_id);
	*out = jobs;
	*n = rows;
	return 0;
}

/* Why a guarded UPDATE of job id touched nothing: ERR_NOTFOUND or ERR_CONFLICT. */
static int job_state_error(struct store_conn *c, int64_t id, const char *what)
{
	int64_t state = 0;
	int rc = one_i64(c, what, "SELECT state FROM ai_jobs WHERE id = $1", id, &state);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not %s: no job %lld", what,
		                   (long long)id);
	return store__errf(c, ERR_CONFLICT, "could not %s: job %lld is %s, not claimed", what,
	                   (long long)id, state == AI_JOB_DONE ? "done" : "pending");
}

static int pg_ai_job_finish(struct store_conn *c, int64_t id, const char *outcome,
                            const char *rewritten, int64_t now)
{
	static const char sql[] = "UPDATE ai_jobs SET state = 2, outcome = $2, rewritten = $3,"
	                          " done_at = $4 WHERE id = $1 AND state = 1";
	const char *what = "finish AI job";
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "itti", id, outcome, rewritten, now);
	if (rc == 0)
		rc = job_state_error(c, id, what);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

static int pg_ai_job_release(struct store_conn *c, int64_t id)
{
	static const char sql[] = "UPDATE ai_jobs SET state = 0 WHERE id = $1 AND state = 1";
	const char *what = "release AI job";
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "i", id);
	if (rc == 0)
		rc = job_state_error(c, id, what);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

static int pg_ai_job_recover(struct store_conn *c, int *n)
{
	const char *what = "recover AI jobs";
	int own;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, "UPDATE ai_jobs SET state = 0 WHERE state = 1", "");
	if (rc >= 0) {
		*n = rc;
		rc = 0;
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		*n = 0;
	return rc;
}

static int pg_ai_job_get(struct store_conn *c, int64_t id, struct arena *a, struct ai_job *out)
{
	const char *what = "read AI job";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, "SELECT " AI_JOB_COLS " FROM ai_jobs WHERE id = $1", &r, "i",
	                     id);
	if (rc == 0) {
		if (PQntuples(r) == 1)
			read_job(r, 0, a, out);
		else
			rc = store__errf(c, ERR_NOTFOUND, "could not read AI job: no job %lld",
			                 (long long)id);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_ai_job_count(struct store_conn *c, int64_t *n)
{
	return store__pg_count_rows(c, "count AI jobs",
	                            "SELECT count(*) FROM ai_jobs WHERE state < 2", n);
}

/* ---- the OCR queue -------------------------------------------------------------------------- */

#define OCR_COLS                                                                                   \
	"id, tenant_id, from_id, ext_id, type, media_id, mime_type, caption, state, created_at,"   \
	" done_at, note"

static void read_ocr(const PGresult *r, int row, struct arena *a, struct ocr_item *o)
{
	o->id = store__pg_i64(r, row, 0);
	o->tenant_id = store__pg_i64(r, row, 1);
	o->from = store__pg_str(r, row, 2, a);
	o->ext_id = store__pg_str(r, row, 3, a);
	o->type = store__pg_str(r, row, 4, a);
	o->media_id = store__pg_str(r, row, 5, a);
	o->mime_type = store__pg_str(r, row, 6, a);
	o->caption = store__pg_str(r, row, 7, a);
	o->state = (enum ocr_state)store__pg_i64(r, row, 8);
	o->created_at = store__pg_i64(r, row, 9);
	o->done_at = store__pg_i64(r, row, 10);
	o->note = store__pg_str(r, row, 11, a);
}

static int pg_ocr_add(struct store_conn *c, const struct ocr_item *o, int64_t *id)
{
	static const char sql[] =
	        "INSERT INTO ocr_queue (tenant_id, from_id, ext_id, type, media_id, mime_type,"
	        " caption, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
	        " ON CONFLICT (ext_id) DO NOTHING RETURNING id";
	const char *what = "queue media for reading";
	PGresult *r;
	int own;
	*id = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, o->tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "itttttti", o->tenant_id, o->from, o->ext_id,
	                     o->type, o->media_id, o->mime_type, o->caption, o->created_at);
	if (rc == 0) {
		if (PQntuples(r) == 1)
			*id = store__pg_i64(r, 0, 0);
		else
			rc = store__errf(
			        c, ERR_CONFLICT,
			        "could not queue media for reading: message \"%s\" is queued "
			        "already",
			        o->ext_id);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_ocr_list(struct store_conn *c, enum ocr_state state, int64_t after_id, int limit,
                       struct arena *a, struct ocr_item **out, int *n)
{
	static const char sql[] = "SELECT " OCR_COLS " FROM ocr_queue"
	                          " WHERE state = $1 AND id > $2 ORDER BY id LIMIT $3";
	const char *what = "list the OCR queue";
	PGresult *r;
	int own;
	*out = NULL;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iii", (int64_t)state, after_id, (int64_t)limit);
	if (rc == 0) {
		int rows = PQntuples(r);
		struct ocr_item *items = store__pg_alloc_rows(a, rows, sizeof(*items));
		for (int i = 0; i < rows; i++)
			read_ocr(r, i, a, &items[i]);
		*out = items;
		*n = rows;
		PQclear(r);
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0) {
		*out = NULL;
		*n = 0;
	}
	return rc;
}

static int pg_ocr_done(struct store_conn *c, int64_t id, const char *note, int64_t now)
{
	static const char sql[] = "UPDATE ocr_queue SET state = 1, note = $2, done_at = $3"
	                          " WHERE id = $1 AND state = 0";
	const char *what = "mark media read";
	int64_t state = 0;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "iti", id, note, now);
	if (rc == 0) {
		rc = one_i64(c, what, "SELECT state FROM ocr_queue WHERE id = $1", id, &state);
		if (rc == 0)
			rc = store__errf(c, ERR_NOTFOUND, "could not mark media read: no item %lld",
			                 (long long)id);
		else if (rc == 1)
			rc = store__errf(c, ERR_CONFLICT,
			                 "could not mark media read: item %lld is done already",
			                 (long long)id);
	}
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

static int pg_ocr_depth(struct store_conn *c, int64_t *n)
{
	return store__pg_count_rows(c, "count the OCR queue",
	                            "SELECT count(*) FROM ocr_queue WHERE state = 0", n);
}

/* ---- the companion app ---------------------------------------------------------------------- */

/*
 * pg_customer_ensure: one statement that adds the customer unless it
 * exists and gives back the row either way (the insert's, or the one the
 * statement's snapshot sees). A customer added by a concurrent
 * transaction that committed after that snapshot is neither: the second
 * statement, with a new snapshot, reads it.
 */
static int pg_customer_ensure(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                              struct arena *a, struct customer *out)
{
	static const char ensure[] =
	        "WITH ins AS (INSERT INTO customers (tenant_id, wa_id) VALUES ($1, $2)"
	        " ON CONFLICT (tenant_id, wa_id) DO NOTHING"
	        " RETURNING id, tenant_id, wa_id, name, state_code, last_inbound_at)"
	        " SELECT * FROM ins UNION ALL"
	        " SELECT id, tenant_id, wa_id, name, state_code, last_inbound_at FROM customers"
	        " WHERE tenant_id = $1 AND wa_id = $2";
	static const char find[] = "SELECT id, tenant_id, wa_id, name, state_code, last_inbound_at"
	                           " FROM customers WHERE tenant_id = $1 AND wa_id = $2";
	const char *what = "find or add customer";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, ensure, &r, "it", tenant_id, wa_id);
	if (rc == 0 && PQntuples(r) == 0) {
		PQclear(r);
		rc = store__pg_query(c, what, find, &r, "it", tenant_id, wa_id);
		if (rc == 0 && PQntuples(r) == 0) {
			PQclear(r);
			rc = store__errf(c, ERR_DB, "could not %s: \"%s\" neither added nor found",
			                 what, wa_id);
		}
	}
	if (rc == 0) {
		store__pg_read_customer(r, 0, a, out);
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

/*
 * pg_orders_list reads the orders and their lines in one statement: the
 * page of orders (by the primary key (tenant_id, id), backwards, in the
 * tenant's one partition) joined to its lines, one row per line (an order
 * without lines gives one row with NULL line columns), newest order first
 * and lines in line order; the rows of one order are consecutive.
 */
static int pg_orders_list(struct store_conn *c, int64_t tenant_id, int status, int64_t before_id,
                          int limit, struct arena *a, struct order **out, int *n)
{
	static const char sql[] =
	        "WITH o AS MATERIALIZED (SELECT id, tenant_id, customer_id, status, total_paise,"
	        "  created_at, updated_at, paid_at FROM orders"
	        " WHERE tenant_id = $1 AND ($2::integer < 0 OR status = $2::integer)"
	        "  AND ($3::bigint <= 0 OR id < $3::bigint)"
	        " ORDER BY id DESC LIMIT $4)"
	        " SELECT o.id, o.tenant_id, o.customer_id, o.status, o.total_paise, o.created_at,"
	        "  o.updated_at, o.paid_at, l.line_no, l.product_id, l.name, l.unit,"
	        "  l.base_per_unit, l.qty_base, l.price_paise, l.gst_rate_bp, l.hsn,"
	        "  l.amount_paise"
	        " FROM o LEFT JOIN order_lines l ON l.tenant_id = $1 AND l.order_id = o.id"
	        " ORDER BY o.id DESC, l.line_no";
	const char *what = "list orders";
	PGresult *r;
	int own;
	*out = NULL;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iiii", tenant_id, (int64_t)status, before_id,
	                     (int64_t)limit);
	if (rc < 0)
		return store__pg_op_end(c, own, rc);

	int rows = PQntuples(r), norders = 0;
	for (int i = 0; i < rows; i++)
		if (i == 0 || store__pg_i64(r, i, 0) != store__pg_i64(r, i - 1, 0))
			norders++;
	struct order *orders = store__pg_alloc_rows(a, norders, sizeof(*orders));
	for (int i = 0, k = 0; i < rows; k++) {
		struct order *o = &orders[k];
		store__pg_read_order(r, i, o);
		/* its rows: up to the next order; one row with NULL lines if none */
		int j = i;
		while (j < rows && store__pg_i64(r, j, 0) == o->id)
			j++;
		if (!PQgetisnull(r, i, 8)) {
			o->nlines = j - i;
			o->lines = store__pg_alloc_rows(a, o->nlines, sizeof(*o->lines));
			for (int t = i; t < j; t++)
				store__pg_read_order_line(r, t, a, &o->lines[t - i]);
		}
		i = j;
	}
	PQclear(r);
	rc = store__pg_op_end(c, own, 0);
	if (rc == 0) {
		*out = orders;
		*n = norders;
	}
	return rc;
}

/* ---- synced operations ---------------------------------------------------------------------- */

static int pg_sync_op_get(struct store_conn *c, int64_t tenant_id, const char *client_id,
                          struct arena *a, struct sync_op_record *out)
{
	static const char sql[] = "SELECT client_id, device, op, digest, rejected, result,"
	                          " client_at, applied_at FROM companion_ops"
	                          " WHERE tenant_id = $1 AND client_id = $2";
	const char *what = "read synced operation";
	PGresult *r;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "it", tenant_id, client_id);
	if (rc == 0) {
		if (PQntuples(r) == 1) {
			out->client_id = store__pg_str(r, 0, 0, a);
			out->device = store__pg_str(r, 0, 1, a);
			out->op = store__pg_str(r, 0, 2, a);
			out->digest = store__pg_str(r, 0, 3, a);
			out->rejected = (int)store__pg_i64(r, 0, 4);
			out->result = store__pg_str(r, 0, 5, a);
			out->client_at = store__pg_str(r, 0, 6, a);
			out->applied_at = store__pg_i64(r, 0, 7);
		} else {
			rc = store__errf(c, ERR_NOTFOUND,
			                 "could not read synced operation: no \"%s\"", client_id);
		}
		PQclear(r);
	}
	return store__pg_op_end(c, own, rc);
}

static int pg_sync_op_put(struct store_conn *c, int64_t tenant_id, const struct sync_op_record *r)
{
	static const char sql[] =
	        "INSERT INTO companion_ops (tenant_id, client_id, device, op, digest, rejected,"
	        " result, client_at, applied_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
	        " ON CONFLICT (tenant_id, client_id) DO NOTHING";
	const char *what = "record synced operation";
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "ittttitti", tenant_id, r->client_id, r->device, r->op,
	                    r->digest, (int64_t)(r->rejected ? 1 : 0), r->result, r->client_at,
	                    r->applied_at);
	if (rc == 0)
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not record synced operation: \"%s\" is recorded already",
		                 r->client_id);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

void store__pg_ai_ops(struct store_ops *ops)
{
	ops->ai_job_add = pg_ai_job_add;
	ops->ai_job_waiting = pg_ai_job_waiting;
	ops->ai_job_claim = pg_ai_job_claim;
	ops->ai_job_finish = pg_ai_job_finish;
	ops->ai_job_release = pg_ai_job_release;
	ops->ai_job_recover = pg_ai_job_recover;
	ops->ai_job_get = pg_ai_job_get;
	ops->ai_job_count = pg_ai_job_count;
	ops->ocr_add = pg_ocr_add;
	ops->ocr_list = pg_ocr_list;
	ops->ocr_done = pg_ocr_done;
	ops->ocr_depth = pg_ocr_depth;
	ops->customer_ensure = pg_customer_ensure;
	ops->orders_list = pg_orders_list;
	ops->sync_op_get = pg_sync_op_get;
	ops->sync_op_put = pg_sync_op_put;
}
