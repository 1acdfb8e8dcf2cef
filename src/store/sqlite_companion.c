/*
 * sqlite_companion.c - the SQLite side of the shop's companion app: its
 * customers named by phone number, its order lists, and the record of
 * offline operations already synced (companion_ops), which makes a sync
 * idempotent.
 *
 * Invariants
 *   - companion_ops is keyed by (tenant_id, client_id): one row per
 *     operation a device ever sent, written in the same savepoint as the
 *     operation's effects (or alone, for a refused one), so an operation
 *     is either applied and recorded or neither. A second insert of the
 *     same key is ERR_CONFLICT, never a second effect.
 *   - store__sq_customer_ensure never moves last_inbound_at: a customer the
 *     shop serves through the app has not written on WhatsApp.
 *
 * Threads: as store_sqlite.c; every function uses only its connection.
 */
#include <sqlite3.h>
#include <string.h>

#include "core/err.h"
#include "store/sqlite_internal.h"

int store__sq_customer_ensure(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                              struct arena *a, struct customer *out)
{
	static const char add[] = "INSERT INTO customers (tenant_id, wa_id) VALUES (?1, ?2)"
	                          " RETURNING id, tenant_id, wa_id, name, state_code,"
	                          " last_inbound_at";
	const char *what = "find or add customer";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_customer_find(c, tenant_id, wa_id, what, a, out);
	if (rc == 0) {
		rc = store__sq_prep(c, SQ_COMPANION_CUSTOMER_ADD, add, what, &st, "it", tenant_id,
		                    wa_id);
		if (rc == 0)
			rc = store__sq_returning(c, st, what, store__sq_read_customer, a, out);
	}
	return store__sq_op_end(c, mode, rc < 0 ? rc : 0);
}

int store__sq_orders_list(struct store_conn *c, int64_t tenant_id, int status, int64_t before_id,
                          int limit, struct arena *a, struct order **out, int *n)
{
	static const char sql[] = "SELECT id FROM orders WHERE tenant_id = ?1"
	                          " AND (?2 < 0 OR status = ?2) AND (?3 <= 0 OR id < ?3)"
	                          " ORDER BY id DESC LIMIT ?4";
	const char *what = "list orders";
	sqlite3_stmt *st;
	void *rows = NULL;
	int nids = 0;
	*out = NULL;
	*n = 0;
	int rc = store__sq_prep(c, SQ_COMPANION_ORDERS, sql, what, &st, "iiii", tenant_id,
	                        (int64_t)status, before_id, (int64_t)limit);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(int64_t), store__sq_read_int64, &rows,
		                    &nids);
	if (rc < 0 || nids == 0)
		return rc;
	const int64_t *ids = rows;
	struct order *o = arena_alloc(a, sizeof(*o) * (size_t)nids);
	for (int i = 0; i < nids; i++) {
		rc = store__sq_order_get(c, tenant_id, ids[i], a, &o[i]);
		if (rc < 0)
			return rc;
	}
	*out = o;
	*n = nids;
	return 0;
}

static void read_sync_op(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct sync_op_record *r = row;
	r->client_id = store__sq_col(st, 0, a);
	r->device = store__sq_col(st, 1, a);
	r->op = store__sq_col(st, 2, a);
	r->digest = store__sq_col(st, 3, a);
	r->rejected = sqlite3_column_int(st, 4);
	r->result = store__sq_col(st, 5, a);
	r->client_at = store__sq_col(st, 6, a);
	r->applied_at = sqlite3_column_int64(st, 7);
}

int store__sq_sync_op_get(struct store_conn *c, int64_t tenant_id, const char *client_id,
                          struct arena *a, struct sync_op_record *out)
{
	static const char sql[] = "SELECT client_id, device, op, digest, rejected, result,"
	                          " client_at, applied_at FROM companion_ops"
	                          " WHERE tenant_id = ?1 AND client_id = ?2";
	const char *what = "read synced operation";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_COMPANION_OP_GET, sql, what, &st, "it", tenant_id, client_id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, read_sync_op, a, out);
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not read synced operation: no \"%s\"",
		                   client_id);
	return rc < 0 ? rc : 0;
}

int store__sq_sync_op_put(struct store_conn *c, int64_t tenant_id, const struct sync_op_record *r)
{
	static const char sql[] =
	        "INSERT INTO companion_ops (tenant_id, client_id, device, op, digest, rejected,"
	        " result, client_at, applied_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";
	const char *what = "record synced operation";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_COMPANION_OP_PUT, sql, what, "ittttitti", tenant_id, r->client_id,
	                   r->device, r->op, r->digest, (int64_t)(r->rejected ? 1 : 0), r->result,
	                   r->client_at, r->applied_at);
	if (rc == ERR_CONFLICT)
		store__errf(c, rc, "could not record synced operation: \"%s\" is recorded already",
		            r->client_id);
	return store__sq_op_end(c, mode, rc);
}
