/*
 * pg_tenant.c - the PostgreSQL backend's directory of shops (tenants), their
 * customers, the marketing settings (template, API token, opt-outs, the
 * broadcast audience, cancelling a customer's waiting marketing) and the
 * audit log. The SQLite versions are in store_sqlite.c and sqlite_erp.c;
 * these give the same rows and the same return codes through store.h.
 *
 * Design
 *   Each operation is one store__pg_op_begin / statement(s) /
 *   store__pg_op_end. The scope (pg_internal.h) follows what the operation
 *   touches: looking a shop up by its phone number id or its API token,
 *   counting and listing shops, and adding one are directory work
 *   (PG_SCOPE_SYSTEM); everything about one known shop - its row, its
 *   customers, its outbox rows, its audit log - runs in PG_SCOPE_TENANT with
 *   that shop, so row-level security holds it to that shop's rows.
 *
 *   Round trips: the hot paths take one statement each. store_customer_touch
 *   (every inbound message) reads and, only when something changed, upserts
 *   in one statement (a data-modifying WITH); the opt-out's update and the
 *   "is there such a customer" check that tells "unchanged" from "unknown"
 *   are one statement too.
 *
 * Invariants
 *   - An expected "no" raises no PostgreSQL error inside the caller's
 *     transaction: a taken phone number id is found by ON CONFLICT DO
 *     NOTHING, an unknown tenant or customer by an UPDATE that touched no
 *     row or a SELECT that found none. (A token hash held by another shop
 *     does raise - the unique index's violation, ERR_CONFLICT - because
 *     another shop's row is not visible in tenant scope to look first; the
 *     hash is of 32 random bytes, so that is never an expected outcome, and
 *     the only caller, `munim tenant token`, runs outside a transaction.)
 *   - Cancelling marketing moves outbox rows of the tenant's one partition
 *     (part = store_partition(tenant)) and counts the move with
 *     store__pg_count, like every outbox writer, so outbox_counts stays
 *     exact; a rollback forgets the count with the rows.
 *
 * Threads: as store_pg.c; every function uses only its connection.
 */
#include <stdint.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "store/pg_internal.h"

/* ---- tenants -------------------------------------------------------------------------------- */

#define TENANT_COLS                                                                                \
	"id, name, phone_number_id, gstin, state_code, upi_id, owner_numbers, address, "           \
	"created_at, catalog_rev"

/* read_tenant fills *t from row `row` of a result whose columns from col
 * on are TENANT_COLS (strings in a). */
static void read_tenant(const PGresult *r, int row, int col, struct arena *a, struct tenant *t)
{
	t->id = store__pg_i64(r, row, col);
	t->name = store__pg_str(r, row, col + 1, a);
	t->phone_number_id = store__pg_str(r, row, col + 2, a);
	t->gstin = store__pg_str(r, row, col + 3, a);
	t->state_code = store__pg_str(r, row, col + 4, a);
	t->upi_id = store__pg_str(r, row, col + 5, a);
	t->owner_numbers = store__pg_str(r, row, col + 6, a);
	t->address = store__pg_str(r, row, col + 7, a);
	t->created_at = store__pg_i64(r, row, col + 8);
	t->catalog_rev = store__pg_i64(r, row, col + 9);
}

/*
 * pg_tenant_add: a phone number id that is taken inserts nothing (ON
 * CONFLICT DO NOTHING returns no row), which is told apart without an
 * error, so the caller's transaction goes on.
 */
static int pg_tenant_add(struct store_conn *c, const struct tenant *t, int64_t *id)
{
	static const char sql[] = "INSERT INTO tenants (name, phone_number_id, gstin, state_code,"
	                          " upi_id, owner_numbers, address, created_at)"
	                          " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
	                          " ON CONFLICT (phone_number_id) DO NOTHING RETURNING id";
	const char *what = "add tenant";
	PGresult *r = NULL;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ttttttti", t->name, t->phone_number_id, t->gstin,
	                     t->state_code, t->upi_id, t->owner_numbers, t->address,
	                     clock_wall_ms());
	if (rc == 0 && PQntuples(r) == 0)
		rc = store__errf(c, ERR_CONFLICT,
		                 "could not add tenant: phone number id \"%s\" is taken",
		                 t->phone_number_id);
	else if (rc == 0)
		*id = store__pg_i64(r, 0, 0);
	PQclear(r);
	return store__pg_op_end(c, own, rc);
}

static int pg_tenant_get(struct store_conn *c, int64_t id, struct arena *a, struct tenant *out)
{
	static const char sql[] = "SELECT " TENANT_COLS " FROM tenants WHERE id = $1";
	const char *what = "read tenant";
	PGresult *r = NULL;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "i", id);
	if (rc == 0 && PQntuples(r) == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not read tenant: no tenant %lld",
		                 (long long)id);
	else if (rc == 0)
		read_tenant(r, 0, 0, a, out);
	PQclear(r);
	return store__pg_op_end(c, own, rc);
}

/* pg_tenants_get: one statement for them all, in the system scope (the
 * directory's policy), each row carrying the place of its id in ids. */
static int pg_tenants_get(struct store_conn *c, const int64_t *ids, int n, struct arena *a,
                          struct tenant *out, char *found)
{
	static const char sql[] =
	        "SELECT x.i, " TENANT_COLS " FROM unnest($1::bigint[]) WITH ORDINALITY AS x(tid, i)"
	        " JOIN tenants ON id = x.tid";
	const char *what = "read tenants";
	PGresult *r = NULL;
	struct buf b;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	store__pg_arr_init(&b);
	for (int i = 0; i < n; i++)
		store__pg_arr_int(&b, ids[i]);
	rc = store__pg_query(c, what, sql, &r, "t", store__pg_arr_end(&b));
	buf_release(&b);
	for (int row = 0; rc == 0 && row < PQntuples(r); row++) {
		int64_t i = store__pg_i64(r, row, 0) - 1;
		if (i < 0 || i >= n) {
			rc = store__errf(c, ERR_DB, "could not read tenants: row for place %lld",
			                 (long long)i);
			break;
		}
		read_tenant(r, row, 1, a, &out[i]);
		found[i] = 1;
	}
	PQclear(r);
	return store__pg_op_end(c, own, rc);
}

static int pg_tenant_by_phone(struct store_conn *c, const char *phone_number_id, struct arena *a,
                              struct tenant *out)
{
	static const char sql[] = "SELECT " TENANT_COLS " FROM tenants WHERE phone_number_id = $1";
	const char *what = "find tenant";
	PGresult *r = NULL;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "t", phone_number_id);
	if (rc == 0 && PQntuples(r) == 0)
		rc = store__errf(c, ERR_NOTFOUND,
		                 "could not find tenant: no tenant has phone number id \"%s\"",
		                 phone_number_id);
	else if (rc == 0)
		read_tenant(r, 0, 0, a, out);
	PQclear(r);
	return store__pg_op_end(c, own, rc);
}

static int pg_tenant_list(struct store_conn *c, int64_t after_id, int limit, struct arena *a,
                          struct tenant **out, int *n)
{
	static const char sql[] =
	        "SELECT " TENANT_COLS " FROM tenants WHERE id > $1 ORDER BY id LIMIT $2";
	const char *what = "list tenants";
	PGresult *r = NULL;
	int own;
	*out = NULL;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", after_id, (int64_t)limit);
	if (rc == 0) {
		int rows = PQntuples(r);
		struct tenant *t = store__pg_alloc_rows(a, rows, sizeof(*t));
		for (int i = 0; i < rows; i++)
			read_tenant(r, i, 0, a, &t[i]);
		*out = t;
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

static int pg_tenant_count(struct store_conn *c, int64_t *n)
{
	return store__pg_count_rows(c, "count tenants", "SELECT count(*) FROM tenants", n);
}

/* ---- marketing: templates and API tokens ---------------------------------------------------- */

static int pg_tenant_template(struct store_conn *c, int64_t tenant_id, struct arena *a,
                              struct tenant_template *out)
{
	static const char sql[] = "SELECT template_name, template_lang FROM tenants WHERE id = $1";
	const char *what = "read template";
	PGresult *r = NULL;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "i", tenant_id);
	if (rc == 0 && PQntuples(r) == 0) {
		rc = store__errf(c, ERR_NOTFOUND, "could not read template: no tenant %lld",
		                 (long long)tenant_id);
	} else if (rc == 0) {
		out->name = store__pg_str(r, 0, 0, a);
		out->lang = store__pg_str(r, 0, 1, a);
	}
	PQclear(r);
	return store__pg_op_end(c, own, rc);
}

/*
 * update_tenant runs sql, an UPDATE of tenant $1 with $2 = a1 and, when a2
 * is not NULL, $3 = a2, in that tenant's scope; ERR_NOTFOUND when it
 * touched no row (no such tenant).
 */
static int update_tenant(struct store_conn *c, const char *sql, const char *what, int64_t tenant_id,
                         const char *a1, const char *a2)
{
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = a2 ? store__pg_exec(c, what, sql, "itt", tenant_id, a1, a2)
	        : store__pg_exec(c, what, sql, "it", tenant_id, a1);
	if (rc == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not %s: no tenant %lld", what,
		                 (long long)tenant_id);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

/* pg_tenant_set_template: an empty name clears the language too. */
static int pg_tenant_set_template(struct store_conn *c, int64_t tenant_id, const char *name,
                                  const char *lang)
{
	static const char sql[] =
	        "UPDATE tenants SET template_name = $2, template_lang = $3 WHERE id = $1";
	return update_tenant(c, sql, "set template", tenant_id, name, *name ? lang : "");
}

/*
 * pg_tenant_set_token_hash: a hash another shop holds violates the unique
 * index (ERR_CONFLICT, raised: see the file comment).
 */
static int pg_tenant_set_token_hash(struct store_conn *c, int64_t tenant_id, const char *hash)
{
	static const char sql[] = "UPDATE tenants SET api_token_hash = $2 WHERE id = $1";
	return update_tenant(c, sql, "set API token", tenant_id, hash, NULL);
}

static int pg_tenant_by_token_hash(struct store_conn *c, const char *hash, int64_t *tenant_id)
{
	static const char sql[] = "SELECT id FROM tenants WHERE api_token_hash = $1"
	                          " AND api_token_hash <> ''"; /* the partial index */
	const char *what = "find tenant by token";
	PGresult *r = NULL;
	int own;
	*tenant_id = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_SYSTEM, 0, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "t", hash);
	if (rc == 0 && PQntuples(r) == 0) /* the hash is not echoed: it is as good as a password */
		rc = store__errf(c, ERR_NOTFOUND,
		                 "could not find tenant: no tenant has that token");
	else if (rc == 0)
		*tenant_id = store__pg_i64(r, 0, 0);
	PQclear(r);
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		*tenant_id = 0;
	return rc;
}

/* ---- customers ------------------------------------------------------------------------------ */

#define CUSTOMER_COLS "id, tenant_id, wa_id, name, state_code, last_inbound_at"

void store__pg_read_customer(const PGresult *r, int row, struct arena *a, struct customer *cu)
{
	cu->id = store__pg_i64(r, row, 0);
	cu->tenant_id = store__pg_i64(r, row, 1);
	cu->wa_id = store__pg_str(r, row, 2, a);
	cu->name = store__pg_str(r, row, 3, a);
	cu->state_code = store__pg_str(r, row, 4, a);
	cu->last_inbound_at = store__pg_i64(r, row, 5);
}

/*
 * pg_customer_touch: `found` reads the customer; `put` upserts only when
 * that row is missing, a new name came, or the message is past the slack
 * (store.h) - the usual case, a known customer writing again, writes
 * nothing. The answer is the upserted row, or else the row as found. A
 * customer added meanwhile by another transaction is met by ON CONFLICT,
 * as in SQLite's upsert.
 */
static int pg_customer_touch(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                             const char *name, int64_t inbound_at, struct arena *a,
                             struct customer *out)
{
	static const char sql[] =
	        "WITH found AS ("
	        "  SELECT " CUSTOMER_COLS " FROM customers"
	        "  WHERE tenant_id = $1::bigint AND wa_id = $2::text),"
	        " put AS ("
	        "  INSERT INTO customers AS cu (tenant_id, wa_id, name, last_inbound_at)"
	        "  SELECT $1::bigint, $2::text, $3::text, $4::bigint"
	        "  WHERE NOT EXISTS (SELECT 1 FROM found"
	        "   WHERE ($3::text = '' OR found.name = $3::text)"
	        "   AND $4::bigint < found.last_inbound_at + $5::bigint)"
	        "  ON CONFLICT (tenant_id, wa_id) DO UPDATE SET"
	        "  name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE cu.name END,"
	        "  last_inbound_at = greatest(cu.last_inbound_at, excluded.last_inbound_at)"
	        "  RETURNING " CUSTOMER_COLS ")"
	        " SELECT " CUSTOMER_COLS " FROM put"
	        " UNION ALL"
	        " SELECT " CUSTOMER_COLS " FROM found WHERE NOT EXISTS (SELECT 1 FROM put)";
	const char *what = "record customer";
	PGresult *r = NULL;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ittii", tenant_id, wa_id, name, inbound_at,
	                     (int64_t)STORE_INBOUND_SLACK_MS);
	if (rc == 0 && PQntuples(r) != 1)
		rc = store__errf(c, ERR_DB, "could not record customer: %d rows returned",
		                 PQntuples(r));
	else if (rc == 0)
		store__pg_read_customer(r, 0, a, out);
	PQclear(r);
	return store__pg_op_end(c, own, rc);
}

static int pg_customer_set_state(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                 const char *state_code)
{
	static const char sql[] =
	        "UPDATE customers SET state_code = $3 WHERE tenant_id = $1 AND wa_id = $2";
	const char *what = "set customer state";
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "itt", tenant_id, wa_id, state_code);
	if (rc == 0)
		rc = store__errf(c, ERR_NOTFOUND,
		                 "could not set customer state: no customer \"%s\"", wa_id);
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

static int pg_customer_get(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct customer *out)
{
	static const char sql[] =
	        "SELECT " CUSTOMER_COLS " FROM customers WHERE tenant_id = $1 AND id = $2";
	const char *what = "read customer";
	PGresult *r = NULL;
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "ii", tenant_id, customer_id);
	if (rc == 0 && PQntuples(r) == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not read customer: no customer %lld",
		                 (long long)customer_id);
	else if (rc == 0)
		store__pg_read_customer(r, 0, a, out);
	PQclear(r);
	return store__pg_op_end(c, own, rc);
}

/*
 * pg_customer_set_opted_out: the UPDATE touches the row only when the flag
 * really changes; the same statement says whether the customer exists at
 * all (its snapshot is the one before the update: the row is there either
 * way), which tells "already so" from "unknown".
 */
static int pg_customer_set_opted_out(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                     int opted_out, int *changed)
{
	static const char sql[] =
	        "WITH put AS ("
	        "  UPDATE customers SET opted_out = $3::integer"
	        "  WHERE tenant_id = $1::bigint AND wa_id = $2::text AND opted_out <> $3::integer"
	        "  RETURNING id)"
	        " SELECT (SELECT count(*) FROM put),"
	        " EXISTS (SELECT 1 FROM customers WHERE tenant_id = $1::bigint AND wa_id = "
	        "$2::text)";
	const char *what = "record opt-out";
	PGresult *r = NULL;
	int own;
	*changed = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iti", tenant_id, wa_id, (int64_t)opted_out);
	if (rc == 0 && PQgetvalue(r, 0, 1)[0] != 't')
		rc = store__errf(c, ERR_NOTFOUND, "could not record opt-out: no customer \"%s\"",
		                 wa_id);
	else if (rc == 0)
		*changed = store__pg_i64(r, 0, 0) > 0;
	PQclear(r);
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		*changed = 0;
	return rc;
}

/*
 * pg_customers_active: a range of customers_by_last_inbound (tenant_id,
 * last_inbound_at), each page starting where the last ended by the row
 * comparison, so no OFFSET rereads the pages before it.
 */
static int pg_customers_active(struct store_conn *c, int64_t tenant_id, int64_t since,
                               const struct customer_contact *after, int limit, struct arena *a,
                               struct customer_contact **out, int *n)
{
	static const char sql[] = "SELECT id, wa_id, last_inbound_at, opted_out FROM customers"
	                          " WHERE tenant_id = $1 AND last_inbound_at >= $2"
	                          " AND (last_inbound_at, id) > ($3::bigint, $4::bigint)"
	                          " ORDER BY last_inbound_at, id LIMIT $5";
	const char *what = "list customers";
	PGresult *r = NULL;
	int own;
	*out = NULL;
	*n = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_query(c, what, sql, &r, "iiiii", tenant_id, since,
	                     after ? after->last_inbound_at : INT64_MIN, after ? after->id : 0,
	                     (int64_t)limit);
	if (rc == 0) {
		int rows = PQntuples(r);
		struct customer_contact *cc = store__pg_alloc_rows(a, rows, sizeof(*cc));
		for (int i = 0; i < rows; i++) {
			cc[i].id = store__pg_i64(r, i, 0);
			cc[i].wa_id = store__pg_str(r, i, 1, a);
			cc[i].last_inbound_at = store__pg_i64(r, i, 2);
			cc[i].opted_out = store__pg_i64(r, i, 3) != 0;
		}
		*out = cc;
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

/*
 * pg_outbox_cancel_marketing: PENDING (0) P3 (3) rows to wa_id go to
 * FAILED (6), in the tenant's one partition (the partial index
 * outbox_pending_to there); the move is counted for outbox_counts. A row a
 * sender claimed meanwhile is SENDING when the UPDATE rechecks it, and is
 * left alone.
 */
static int pg_outbox_cancel_marketing(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                      int error_code, const char *error, int64_t now,
                                      int64_t *moved)
{
	static const char sql[] =
	        "UPDATE outbox SET state = 6, last_error_code = $3, last_error = $4, updated_at = "
	        "$5"
	        " WHERE part = $6 AND tenant_id = $1 AND to_id = $2 AND state = 0 AND priority = 3";
	const char *what = "cancel marketing";
	int own;
	*moved = 0;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "ititii", tenant_id, wa_id, (int64_t)error_code, error,
	                    now, (int64_t)store_partition(tenant_id));
	if (rc >= 0) {
		*moved = rc;
		store__pg_count(c, PRIO_P3, OUTBOX_PENDING, OUTBOX_FAILED, *moved);
		rc = 0;
	}
	rc = store__pg_op_end(c, own, rc);
	if (rc < 0)
		*moved = 0;
	return rc;
}

/* ---- audit ---------------------------------------------------------------------------------- */

/* pg_audit: the row goes to its month's partition of audit_log (or the
 * default one, when that month's was not made in time). */
static int pg_audit(struct store_conn *c, int64_t tenant_id, const char *actor, const char *action,
                    const char *detail)
{
	static const char sql[] =
	        "INSERT INTO audit_log (tenant_id, actor, action, detail, created_at)"
	        " VALUES ($1, $2, $3, $4, $5)";
	const char *what = "write audit record";
	int own;
	int rc = store__pg_op_begin(c, PG_SCOPE_TENANT, tenant_id, what, &own);
	if (rc < 0)
		return rc;
	rc = store__pg_exec(c, what, sql, "ittti", tenant_id, actor, action, detail,
	                    clock_wall_ms());
	return store__pg_op_end(c, own, rc < 0 ? rc : 0);
}

/* ---- the ops table -------------------------------------------------------------------------- */

void store__pg_tenant_ops(struct store_ops *ops)
{
	ops->tenant_add = pg_tenant_add;
	ops->tenant_get = pg_tenant_get;
	ops->tenants_get = pg_tenants_get;
	ops->tenant_by_phone = pg_tenant_by_phone;
	ops->tenant_count = pg_tenant_count;
	ops->tenant_list = pg_tenant_list;
	ops->tenant_template = pg_tenant_template;
	ops->tenant_set_template = pg_tenant_set_template;
	ops->tenant_set_token_hash = pg_tenant_set_token_hash;
	ops->tenant_by_token_hash = pg_tenant_by_token_hash;
	ops->customer_touch = pg_customer_touch;
	ops->customer_set_state = pg_customer_set_state;
	ops->customer_get = pg_customer_get;
	ops->customer_set_opted_out = pg_customer_set_opted_out;
	ops->customers_active = pg_customers_active;
	ops->outbox_cancel_marketing = pg_outbox_cancel_marketing;
	ops->audit = pg_audit;
}
