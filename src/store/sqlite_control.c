/*
 * sqlite_control.c - what the controller asks of the SQLite outbox: who has
 * rows waiting (the shops a degradation or a dropped broadcast concerns).
 *
 * Threading: the caller's connection, as every store op.
 */
#include <sqlite3.h>

#include "store/sqlite_internal.h"

static void read_tenant_count(sqlite3_stmt *st, struct arena *a, void *row)
{
	(void)a;
	struct outbox_tenant_count *r = row;
	r->tenant_id = sqlite3_column_int64(st, 0);
	r->n = sqlite3_column_int64(st, 1);
}

int store__sq_outbox_waiting_by_tenant(struct store_conn *c, enum outbox_prio min_prio, int limit,
                                       struct arena *a, struct outbox_tenant_count **out, int *n)
{
	static const char sql[] = "SELECT tenant_id, count(*) AS k FROM outbox"
	                          " WHERE state = 0 AND priority >= ?1"
	                          " GROUP BY tenant_id ORDER BY k DESC, tenant_id LIMIT ?2";
	const char *what = "count waiting outbox rows";
	sqlite3_stmt *st;
	void *rows = NULL;
	int rc = store__sq_prep(c, SQ_OUTBOX_WAITING_BY_TENANT, sql, what, &st, "ii",
	                        (int64_t)min_prio, (int64_t)limit);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**out), read_tenant_count, &rows, n);
	*out = rows;
	return rc;
}
