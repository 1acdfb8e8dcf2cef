/*
 * sqlite_queue.c - the SQLite backend of the two queues: the inbox (what
 * webhooks brought) and the outbox (what is to be sent).
 *
 * Inbox
 *   An entry is keyed by a monotonic id and deduplicated by the unique
 *   index (ext_id, status): a message has status "", each delivery status
 *   its own kind, so a redelivered webhook finds its entry and is reported
 *   INBOX_PUT_DUPLICATE. part = store_partition(tenant) splits the queue
 *   into STORE_PARTITIONS partitions; a worker reads the partitions of its
 *   mask (its share of its process's partition leases), oldest first.
 *
 *     PENDING --store_inbox_done--> DONE
 *        |  ^
 *        |  +--store_inbox_failed (attempts < max)
 *        +-----store_inbox_failed (attempts reach max)--> FAILED
 *
 *   Reading pending entries walks the partial index inbox_pending (part, id)
 *   WHERE state = 0 once per partition of the mask and merges the ids, so
 *   the cost is bounded by partitions x limit whatever the backlog, and a
 *   flooded tenant cannot make another worker's read slow.
 *
 * Outbox (the row's life is drawn in store.h)
 *   store__sq_outbox_claim: PENDING rows due now, P0 first, then in the
 *     order they fell due (then id), to SENDING in one UPDATE ... RETURNING;
 *     attempts counts claims, so a row returned by claim carries the number
 *     of this attempt (1 for the first).
 *   store__sq_outbox_accepted: SENDING --2xx--> ACCEPTED, with the provider id.
 *   store__sq_outbox_retry:    SENDING --retryable--> PENDING at a later time.
 *   store__sq_outbox_fail:     PENDING or SENDING --> FAILED or DEAD.
 *   store__sq_outbox_recover:  SENDING --its node dead--> PENDING, due after a grace.
 *   store__sq_outbox_merge:    SENDING --aggregation--> MERGED (terminal), the
 *     text carried by another SENDING row to the same recipient (merged_into).
 *   store__sq_outbox_status:   a PENDING row named by the status's
 *     row hint and with no provider id was accepted after all: it takes the
 *     provider id and moves on from ACCEPTED. A SENDING row keeps the
 *     status aside (early_state) for store__sq_outbox_accepted, which
 *     then moves it straight there, or for start-up recovery.
 *   store__sq_outbox_status:   ACCEPTED < SENT < DELIVERED < READ, forward only;
 *     "failed" moves any state short of READ to FAILED; FAILED and DEAD are
 *     final.
 *
 * Threads: as store_sqlite.c; every function uses only its connection.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "store/sqlite_internal.h"

/* ---- inbox -------------------------------------------------------------------- */

#define INBOX_COLS                                                                                 \
	"id, tenant_id, kind, ext_id, status, from_id, name, type, body, context_id,"              \
	" sent_at, received_at, error_code, error_title, state, attempts, callback_data,"          \
	" media_id, media_mime"

static void read_inbox(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct inbox_entry *e = row;
	e->id = sqlite3_column_int64(st, 0);
	e->tenant_id = sqlite3_column_int64(st, 1);
	e->kind = (enum inbox_kind)sqlite3_column_int(st, 2);
	e->ext_id = store__sq_col(st, 3, a);
	e->status = store__sq_col(st, 4, a);
	e->from = store__sq_col(st, 5, a);
	e->name = store__sq_col(st, 6, a);
	e->type = store__sq_col(st, 7, a);
	e->body = store__sq_col(st, 8, a);
	e->context_id = store__sq_col(st, 9, a);
	e->sent_at = sqlite3_column_int64(st, 10);
	e->received_at = sqlite3_column_int64(st, 11);
	e->error_code = sqlite3_column_int(st, 12);
	e->error_title = store__sq_col(st, 13, a);
	e->state = (enum inbox_state)sqlite3_column_int(st, 14);
	e->attempts = sqlite3_column_int(st, 15);
	e->callback_data = store__sq_col(st, 16, a);
	e->media_id = store__sq_col(st, 17, a);
	e->media_mime = store__sq_col(st, 18, a);
}

int store__sq_inbox_put(struct store_conn *c, struct inbox_entry *e, int n,
                        enum inbox_put_result *result)
{
	static const char sql[] =
	        "INSERT INTO inbox (part, tenant_id, kind, ext_id, status, from_id, name, type,"
	        " body, context_id, sent_at, received_at, error_code, error_title, callback_data,"
	        " state, media_id, media_mime)"
	        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16,"
	        " ?17, ?18)"
	        " ON CONFLICT (ext_id, status) DO NOTHING";
	const char *what = "insert inbox entry";
	sqlite3 *db = store__sq_db(c);
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, n > 1, what, &mode);
	if (rc < 0)
		return rc;
	for (int i = 0; i < n; i++) {
		struct inbox_entry *x = &e[i];
		rc = store__sq_run(c, SQ_INBOX_INSERT, sql, what, "iiitttttttiiittitt",
		                   (int64_t)store_partition(x->tenant_id), x->tenant_id,
		                   (int64_t)x->kind, x->ext_id, x->status, x->from, x->name,
		                   x->type, x->body, x->context_id, x->sent_at, x->received_at,
		                   (int64_t)x->error_code, x->error_title, x->callback_data,
		                   (int64_t)x->state, x->media_id, x->media_mime);
		if (rc < 0)
			break;
		int fresh = sqlite3_changes(db) > 0;
		result[i] = fresh ? INBOX_PUT_NEW : INBOX_PUT_DUPLICATE;
		x->id = fresh ? sqlite3_last_insert_rowid(db) : 0;
		x->attempts = 0;
	}
	return store__sq_op_end(c, mode, rc);
}

static int cmp_id(const void *pa, const void *pb)
{
	int64_t a = *(const int64_t *)pa, b = *(const int64_t *)pb;
	return (a > b) - (a < b);
}

/*
 * pending_ids collects the ids of the oldest `limit` pending entries of the
 * partitions in parts into ids (room for 2 * limit), sorted. Each
 * partition's query is bounded by the cut-off found so far, so later
 * partitions return only ids that can still make the cut.
 */
static int pending_ids(struct store_conn *c, uint64_t parts, int limit, int64_t *ids, int *nids)
{
	static const char sql[] = "SELECT id FROM inbox WHERE state = 0 AND part = ?1 AND id < ?2"
	                          " ORDER BY id LIMIT ?3";
	const char *what = "read inbox";
	int64_t cutoff = INT64_MAX;
	int n = 0, rc = 0;
	sqlite3_stmt *st;

	for (int part = 0; part < STORE_PARTITIONS; part++) {
		if (!(parts & (1ULL << part)))
			continue;
		rc = store__sq_prep(c, SQ_INBOX_PENDING_IDS, sql, what, &st, "iii", (int64_t)part,
		                    cutoff, (int64_t)limit);
		if (rc < 0)
			return rc;
		while ((rc = store__sq_step(c, st, what)) == 1)
			ids[n++] = sqlite3_column_int64(st, 0); /* ≤ limit per partition */
		sqlite3_reset(st);
		if (rc < 0)
			return rc;
		if (n >= limit) {
			qsort(ids, (size_t)n, sizeof(*ids), cmp_id);
			n = limit;
			cutoff = ids[limit - 1];
		}
	}
	qsort(ids, (size_t)n, sizeof(*ids), cmp_id);
	*nids = n;
	return 0;
}

int store__sq_inbox_pending(struct store_conn *c, uint64_t parts, int limit, struct arena *a,
                            struct inbox_entry **out, int *n)
{
	static const char get[] = "SELECT " INBOX_COLS " FROM inbox WHERE id = ?1 AND state = 0";
	const char *what = "read inbox";
	int64_t *ids = xmalloc(2 * (size_t)limit * sizeof(*ids));
	struct inbox_entry *arr = NULL;
	int nids = 0, cnt = 0, rc, own = 0;
	sqlite3_stmt *st;

	*out = NULL;
	*n = 0;
	/* one read transaction: ids and rows come from the same snapshot */
	if (!c->in_txn) {
		rc = store__sq_run(c, SQ_BEGIN_READ, "BEGIN", "begin read transaction", "");
		if (rc < 0)
			goto fail;
		own = 1;
	}
	rc = pending_ids(c, parts, limit, ids, &nids);
	if (rc < 0)
		goto fail;
	if (nids > 0)
		arr = arena_alloc(a, (size_t)nids * sizeof(*arr));
	for (int i = 0; i < nids; i++) {
		rc = store__sq_prep(c, SQ_INBOX_GET, get, what, &st, "i", ids[i]);
		if (rc == 0)
			rc = store__sq_one(c, st, what, read_inbox, a, &arr[cnt]);
		if (rc < 0)
			goto fail;
		if (rc == 1)
			cnt++;
	}
	if (own) {
		own = 0;
		rc = store__sq_run(c, SQ_COMMIT, "COMMIT", "end read transaction", "");
		if (rc < 0)
			goto fail;
	}
	free(ids);
	*out = arr;
	*n = cnt;
	return 0;

fail:
	if (own && !sqlite3_get_autocommit(store__sq_db(c))) {
		char msg[STORE_ERRMSG_MAX];
		memcpy(msg, c->errmsg, sizeof(msg));
		store__sq_run(c, SQ_ROLLBACK, "ROLLBACK", "end read transaction", "");
		memcpy(c->errmsg, msg, sizeof(msg));
	}
	free(ids);
	return rc;
}

/*
 * row_unchanged explains why a guarded single-row UPDATE of row id changed
 * nothing: ERR_NOTFOUND (no such row) or ERR_CONFLICT naming the state it is
 * in. sql reads that state; noun names the row ("inbox entry").
 */
static int row_unchanged(struct store_conn *c, enum sq_stmt sid, const char *sql, int64_t id,
                         const char *what, const char *noun, const char *(*name)(int64_t state))
{
	sqlite3_stmt *st;
	int64_t state = 0;
	int rc = store__sq_prep(c, sid, sql, what, &st, "i", id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, &state);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not %s: no %s %lld", what, noun,
		                   (long long)id);
	return store__errf(c, ERR_CONFLICT, "could not %s: %s %lld is %s", what, noun,
	                   (long long)id, name(state));
}

static const char *inbox_state_word(int64_t state)
{
	return state == INBOX_DONE ? "done" : "failed";
}

/* inbox_not_pending explains why an UPDATE ... WHERE state = 0 changed nothing. */
static int inbox_not_pending(struct store_conn *c, int64_t id, const char *what)
{
	return row_unchanged(c, SQ_INBOX_STATE, "SELECT state FROM inbox WHERE id = ?1", id, what,
	                     "inbox entry", inbox_state_word);
}

/* inbox_move runs a guarded state UPDATE of entry id (sql's ?1); with
 * strict, a row the guard left alone is an error (inbox_not_pending). */
static int inbox_move(struct store_conn *c, enum sq_stmt sid, const char *sql, const char *what,
                      int64_t id, int strict)
{
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, sid, sql, what, "i", id);
	if (strict && rc == 0 && sqlite3_changes(store__sq_db(c)) == 0)
		rc = inbox_not_pending(c, id, what);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_inbox_done(struct store_conn *c, int64_t id)
{
	return inbox_move(c, SQ_INBOX_DONE,
	                  "UPDATE inbox SET state = 1 WHERE id = ?1 AND state = 0",
	                  "mark inbox entry done", id, 1);
}

int store__sq_inbox_reopen(struct store_conn *c, int64_t id)
{
	return inbox_move(c, SQ_INBOX_REOPEN,
	                  "UPDATE inbox SET state = 0 WHERE id = ?1 AND state = 1",
	                  "reopen inbox entry", id, 0);
}

int store__sq_inbox_failed(struct store_conn *c, int64_t id, int max_attempts, const char *why)
{
	static const char sql[] = "UPDATE inbox SET attempts = attempts + 1, last_error = ?3,"
	                          " state = CASE WHEN attempts + 1 >= ?2 THEN 2 ELSE 0 END"
	                          " WHERE id = ?1 AND state = 0";
	const char *what = "record inbox failure";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_INBOX_FAILED, sql, what, "iit", id, (int64_t)max_attempts, why);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) == 0)
		rc = inbox_not_pending(c, id, what);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_inbox_depth(struct store_conn *c, int64_t *n)
{
	static const char sql[] = "SELECT count(*) FROM inbox WHERE state = 0";
	const char *what = "count inbox";
	sqlite3_stmt *st;
	*n = 0;
	int rc = store__sq_prep(c, SQ_INBOX_DEPTH, sql, what, &st, "");
	if (rc == 0)
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, n);
	return rc < 0 ? rc : 0;
}

static void read_waiting(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct inbox_waiting *w = row;
	w->tenant_id = sqlite3_column_int64(st, 0);
	w->from = store__sq_col(st, 1, a);
}

int store__sq_inbox_waiting(struct store_conn *c, int limit, struct arena *a,
                            struct inbox_waiting **out, int *n)
{
	static const char sql[] =
	        "SELECT tenant_id, from_id FROM inbox WHERE state = 0 AND kind = 1 LIMIT ?1";
	const char *what = "read waiting customers";
	sqlite3_stmt *st;
	void *rows = NULL;
	*out = NULL;
	*n = 0;
	/* one more than asked tells "too many" */
	int rc = store__sq_prep(c, SQ_INBOX_WAITING, sql, what, &st, "i", (int64_t)limit + 1);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**out), read_waiting, &rows, n);
	if (rc < 0)
		return rc;
	if (*n > limit) {
		*n = 0;
		return store__errf(c, ERR_TOOBIG, "could not read waiting customers: more than %d",
		                   limit);
	}
	*out = rows;
	return 0;
}

/* ---- outbox ---------------------------------------------------------------------- */

#define OUTBOX_COLS                                                                                \
	"id, tenant_id, priority, state, phone_number_id, to_id, reply_to, body, attempts,"        \
	" next_attempt_at, created_at, inbound_received_at, provider_msg_id,"                      \
	" last_error_code, last_error, updated_at, provider, merged_into"

static void read_outbox(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct outbox_row *r = row;
	r->id = sqlite3_column_int64(st, 0);
	r->tenant_id = sqlite3_column_int64(st, 1);
	r->priority = (enum outbox_prio)sqlite3_column_int(st, 2);
	r->state = (enum outbox_state)sqlite3_column_int(st, 3);
	r->phone_number_id = store__sq_col(st, 4, a);
	r->to = store__sq_col(st, 5, a);
	r->reply_to = store__sq_col(st, 6, a);
	r->body = store__sq_col(st, 7, a);
	r->attempts = sqlite3_column_int(st, 8);
	r->next_attempt_at = sqlite3_column_int64(st, 9);
	r->created_at = sqlite3_column_int64(st, 10);
	r->inbound_received_at = sqlite3_column_int64(st, 11);
	r->provider_msg_id = store__sq_col(st, 12, a);
	r->last_error_code = sqlite3_column_int(st, 13);
	r->last_error = store__sq_col(st, 14, a);
	r->updated_at = sqlite3_column_int64(st, 15);
	r->provider = store__sq_col(st, 16, a);
	r->merged_into = sqlite3_column_int64(st, 17);
}

int store__sq_outbox_add(struct store_conn *c, const struct outbox_new *o, int64_t *id)
{
	static const char sql[] =
	        "INSERT INTO outbox (tenant_id, priority, state, phone_number_id, to_id, reply_to,"
	        " body, attempts, next_attempt_at, created_at, inbound_received_at, updated_at,"
	        " claimed_by)"
	        " VALUES (?1, ?2, ?9, ?3, ?4, ?5, ?6, ?9, ?7, ?7, ?8, ?7, ?10)";
	const char *what = "queue message";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	/* born claimed: state SENDING (1), attempt 1 and the node, as a claim leaves it */
	rc = store__sq_run(c, SQ_OUTBOX_INSERT, sql, what, "iittttiiii", o->tenant_id,
	                   (int64_t)o->priority, o->phone_number_id, o->to, o->reply_to, o->body,
	                   clock_wall_ms(), o->inbound_received_at, (int64_t)(o->claimed != 0),
	                   o->claimed ? store_node(c->st) : 0);
	if (rc == 0) {
		*id = sqlite3_last_insert_rowid(store__sq_db(c));
		store__sq_count(c, o->priority, -1, o->claimed ? OUTBOX_SENDING : OUTBOX_PENDING,
		                1);
	}
	return store__sq_op_end(c, mode, rc);
}

/*
 * claimed_rows reads the rows a claim's UPDATE ... RETURNING st (prepared
 * with result rc) moved to SENDING, tallies them, ends the operation begun
 * in mode and sorts them P0 first, then as they fell due.
 */
static int claimed_rows(struct store_conn *c, sqlite3_stmt *st, int rc, const char *what,
                        enum sq_op_mode mode, struct arena *a, struct outbox_row **out, int *n)
{
	void *rows = NULL;
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**out), read_outbox, &rows, n);
	for (int i = 0; rc == 0 && i < *n; i++)
		store__sq_count(c, ((struct outbox_row *)rows)[i].priority, OUTBOX_PENDING,
		                OUTBOX_SENDING, 1);
	rc = store__sq_op_end(c, mode, rc);
	if (rc < 0) {
		*n = 0;
		return rc;
	}
	/* RETURNING gives rows in no promised order */
	*out = rows;
	if (*n > 1)
		qsort(*out, (size_t)*n, sizeof(**out), store__cmp_claim);
	return 0;
}

int store__sq_outbox_claim(struct store_conn *c, int64_t now, int limit, enum outbox_prio max_prio,
                           struct arena *a, struct outbox_row **out, int *n)
{
	/*
	 * Within a priority, rows go in the order they fell due, then by id
	 * (fresh rows are due when created, so that is their age). That is the
	 * order of the index outbox_due, so the scan stops after `limit` due
	 * rows: a backlog of rows waiting out their backoff, or of due P3
	 * rows, costs nothing (ORDER BY priority, id would sort all due rows).
	 * Priorities below max_prio are bound as -1, which no row has.
	 */
	static const char sql[] = "UPDATE outbox SET state = 1, attempts = attempts + 1,"
	                          " updated_at = ?1, claimed_by = ?7"
	                          " WHERE id IN (SELECT id FROM outbox"
	                          "  WHERE state = 0 AND priority IN (?3, ?4, ?5, ?6)"
	                          "  AND next_attempt_at <= ?1"
	                          "  ORDER BY priority, next_attempt_at, id LIMIT ?2)"
	                          " RETURNING " OUTBOX_COLS;
	const char *what = "claim outbox rows";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	*out = NULL;
	*n = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	int64_t p[PRIO_COUNT];
	for (int i = 0; i < PRIO_COUNT; i++)
		p[i] = i <= (int)max_prio ? i : -1;
	rc = store__sq_prep(c, SQ_OUTBOX_CLAIM, sql, what, &st, "iiiiiii", now, (int64_t)limit,
	                    p[0], p[1], p[2], p[3], store_node(c->st));
	return claimed_rows(c, st, rc, what, mode, a, out, n);
}

int store__sq_outbox_claim_to(struct store_conn *c, int64_t now, int64_t tenant_id, const char *to,
                              enum outbox_prio min_prio, enum outbox_prio max_prio, int limit,
                              struct arena *a, struct outbox_row **out, int *n)
{
	/* outbox_pending_to (migration 10) finds the recipient's waiting rows */
	static const char sql[] = "UPDATE outbox SET state = 1, attempts = attempts + 1,"
	                          " updated_at = ?1, claimed_by = ?7"
	                          " WHERE id IN (SELECT id FROM outbox"
	                          "  WHERE tenant_id = ?2 AND to_id = ?3 AND state = 0"
	                          "  AND priority BETWEEN ?4 AND ?5 AND next_attempt_at <= ?1"
	                          "  ORDER BY id LIMIT ?6)"
	                          " RETURNING " OUTBOX_COLS;
	const char *what = "claim a recipient's outbox rows";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	*out = NULL;
	*n = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_prep(c, SQ_OUTBOX_CLAIM_TO, sql, what, &st, "iitiiii", now, tenant_id, to,
	                    (int64_t)min_prio, (int64_t)max_prio, (int64_t)limit,
	                    store_node(c->st));
	return claimed_rows(c, st, rc, what, mode, a, out, n);
}

/* What recovery will move: SENDING rows by priority and kept-aside status. */
struct sending_count {
	enum outbox_prio prio;
	enum outbox_state early;
	int64_t n;
};

static void read_sending_count(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct sending_count *r = row;
	(void)a;
	r->prio = (enum outbox_prio)sqlite3_column_int(st, 0);
	r->early = (enum outbox_state)sqlite3_column_int(st, 1);
	r->n = sqlite3_column_int64(st, 2);
}

/*
 * The SENDING rows recovery may take (store.h, store_outbox_recover): not
 * this store's node's (?3), nor a node's live at ?1 (its lease running, no
 * later run of its name; an earlier run of ?3's own name is not live).
 */
#define RECOVERABLE                                                                                \
	" AND (claimed_by <> ?3 OR ?3 = 0) AND claimed_by NOT IN (SELECT id FROM nodes"            \
	"  WHERE expires_at > ?1 AND NOT (name = (SELECT name FROM nodes WHERE id = ?3)"           \
	"  AND id < ?3))"

int store__sq_outbox_recover(struct store_conn *c, int64_t resend_at, int *n)
{
	static const char proved[] = "UPDATE outbox SET state = early_state, updated_at = ?1"
	                             " WHERE state = 1 AND early_state <> 0" RECOVERABLE;
	static const char sql[] =
	        "UPDATE outbox SET state = 0, updated_at = ?1,"
	        " next_attempt_at = max(next_attempt_at, ?2) WHERE state = 1" RECOVERABLE;
	static const char counts[] =
	        "SELECT priority, early_state, count(*) FROM outbox"
	        " WHERE state = 1" RECOVERABLE " GROUP BY priority, early_state";
	const char *what = "recover outbox rows";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	struct arena a;
	void *rows = NULL;
	int nrows = 0;
	*n = 0;
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	int64_t now = clock_wall_ms(), node = store_node(c->st);
	arena_init(&a, 1024);
	rc = store__sq_prep(c, SQ_OUTBOX_SENDING_COUNTS, counts, what, &st, "iii", now, resend_at,
	                    node);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, &a, sizeof(struct sending_count),
		                    read_sending_count, &rows, &nrows);
	if (rc == 0)
		rc = store__sq_run(c, SQ_OUTBOX_RECOVER_PROVED, proved, what, "iii", now, resend_at,
		                   node);
	if (rc == 0)
		rc = store__sq_run(c, SQ_OUTBOX_RECOVER, sql, what, "iii", now, resend_at, node);
	if (rc == 0)
		*n = sqlite3_changes(store__sq_db(c));
	for (int i = 0; rc == 0 && i < nrows; i++) {
		const struct sending_count *sc = &((struct sending_count *)rows)[i];
		store__sq_count(c, sc->prio, OUTBOX_SENDING, sc->early ? sc->early : OUTBOX_PENDING,
		                sc->n);
	}
	arena_release(&a);
	rc = store__sq_op_end(c, mode, rc);
	if (rc < 0)
		*n = 0;
	return rc;
}

int store__sq_outbox_claimed_here(struct store_conn *c, int64_t moved_before, int limit,
                                  struct arena *a, int64_t **ids, int *n)
{
	static const char sql[] = "SELECT id FROM outbox WHERE state = 1 AND claimed_by = ?1"
	                          " AND updated_at < ?2 ORDER BY id LIMIT ?3";
	const char *what = "list this node's claims";
	sqlite3_stmt *st;
	void *rows = NULL;
	int rc = store__sq_prep(c, SQ_OUTBOX_CLAIMED_HERE, sql, what, &st, "iii", store_node(c->st),
	                        moved_before, (int64_t)limit);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**ids), store__sq_read_int64, &rows, n);
	*ids = rows;
	return rc;
}

static const char *outbox_state_word(int64_t state)
{
	return outbox_state_name((enum outbox_state)state);
}

/* outbox_moved explains why a guarded UPDATE of row id changed nothing. */
static int outbox_moved(struct store_conn *c, int64_t id, const char *what)
{
	return row_unchanged(c, SQ_OUTBOX_STATE, "SELECT state FROM outbox WHERE id = ?1", id, what,
	                     "outbox row", outbox_state_word);
}

/* What outbox_update reads of a row before it writes. */
struct outbox_guard {
	enum outbox_state state;
	enum outbox_state early; /* a status kept aside while SENDING, or 0 */
	enum outbox_prio prio;
};

static void read_guard(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct outbox_guard *g = row;
	(void)a;
	g->state = (enum outbox_state)sqlite3_column_int(st, 0);
	g->early = (enum outbox_state)sqlite3_column_int(st, 1);
	g->prio = (enum outbox_prio)sqlite3_column_int(st, 2);
}

/* guard_of reads row id's guard: 1, 0 when there is no such row, or an error. */
static int guard_of(struct store_conn *c, int64_t id, const char *what, struct outbox_guard *g)
{
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_OUTBOX_GUARD,
	                        "SELECT state, early_state, priority FROM outbox WHERE id = ?1",
	                        what, &st, "i", id);
	return rc < 0 ? rc : store__sq_one(c, st, what, read_guard, NULL, g);
}

/*
 * outbox_update records one send outcome on row id, which must be SENDING
 * (or, with from_pending, PENDING too): *landed gets the state it took,
 * target - unless a delivery status overtook the answer (early_state, kept
 * aside by store__sq_outbox_status): the provider accepted that send,
 * whatever munim heard back, so the row takes the status and is never
 * retried. sql is the UPDATE, with ?1 = id, ?2, ?3 (integers), ?4 (text),
 * ?5 (integer), ?6 = the state to take and, when t7 is not NULL, ?7 (text). ERR_NOTFOUND /
 * ERR_CONFLICT when the row is missing or in another state.
 *
 * The row is read first and written by id: one UPDATE ... RETURNING costs
 * SQLite a temporary table per call, about a third of the whole write.
 * Both run in one transaction (store__sq_op_begin takes the write lock),
 * so nothing moves the row in between.
 */
static int outbox_update(struct store_conn *c, enum sq_stmt sid, const char *sql, int64_t id,
                         enum outbox_state target, int from_pending, int64_t i2, int64_t i3,
                         const char *t4, int64_t i5, const char *t7, const char *what,
                         enum outbox_state *landed)
{
	enum sq_op_mode mode;
	struct outbox_guard g = {0};
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = guard_of(c, id, what, &g);
	if (rc == 1 && !(g.state == OUTBOX_SENDING || (from_pending && g.state == OUTBOX_PENDING)))
		rc = 0;
	if (rc == 0) /* missing, or not in a state the outcome may follow */
		rc = outbox_moved(c, id, what);
	else if (rc == 1) {
		*landed = g.early != 0 ? g.early : target;
		rc = store__sq_run(c, sid, sql, what, t7 ? "iiitiit" : "iiitii", id, i2, i3, t4, i5,
		                   (int64_t)*landed, t7);
		if (rc == 0)
			store__sq_count(c, g.prio, g.state, *landed, 1);
	}
	return store__sq_op_end(c, mode, rc);
}

int store__sq_outbox_accepted(struct store_conn *c, int64_t id, const char *provider_msg_id,
                              const char *provider, int64_t now, enum outbox_state *landed)
{
	/* ?2 and ?3 do not occur: SQLite accepts bindings to the gap */
	static const char sql[] = "UPDATE outbox SET state = ?6, provider_msg_id = ?4,"
	                          " provider = ?7, updated_at = ?5 WHERE id = ?1";
	return outbox_update(c, SQ_OUTBOX_ACCEPTED, sql, id, OUTBOX_ACCEPTED, 0, 0, 0,
	                     provider_msg_id, now, provider, "record acceptance", landed);
}

/*
 * unless_opted_out: row id just went back to PENDING; if it is marketing
 * (P3) to a customer who wrote "stop" while it was out - after the stop
 * failed their waiting rows (store_outbox_cancel_marketing) - it fails
 * now instead of going again (131050, as the stop's own). *landed follows.
 */
static int unless_opted_out(struct store_conn *c, int64_t id, int64_t now,
                            enum outbox_state *landed)
{
	static const char sql[] =
	        "UPDATE outbox SET state = 6, last_error_code = 131050,"
	        " last_error = 'recipient opted out', updated_at = ?2"
	        " WHERE id = ?1 AND state = 0 AND priority = 3 AND EXISTS (SELECT 1 FROM customers"
	        " WHERE tenant_id = outbox.tenant_id AND wa_id = outbox.to_id AND opted_out = 1)";
	const char *what = "drop marketing to a customer who opted out";
	enum sq_op_mode mode;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = store__sq_run(c, SQ_OUTBOX_OPTED_OUT, sql, what, "ii", id, now);
	if (rc == 0 && sqlite3_changes(store__sq_db(c)) > 0) {
		store__sq_count(c, PRIO_P3, OUTBOX_PENDING, OUTBOX_FAILED, 1);
		*landed = OUTBOX_FAILED;
	}
	return store__sq_op_end(c, mode, rc);
}

int store__sq_outbox_retry(struct store_conn *c, int64_t id, int64_t next_attempt_at,
                           int error_code, const char *error, int64_t now,
                           enum outbox_state *landed)
{
	static const char sql[] = "UPDATE outbox SET state = ?6, next_attempt_at = ?2,"
	                          " last_error_code = ?3, last_error = ?4, updated_at = ?5"
	                          " WHERE id = ?1";
	int rc = outbox_update(c, SQ_OUTBOX_RETRY, sql, id, OUTBOX_PENDING, 0, next_attempt_at,
	                       error_code, error, now, NULL, "schedule retry", landed);
	if (rc == 0 && *landed == OUTBOX_PENDING)
		rc = unless_opted_out(c, id, now, landed);
	return rc;
}

int store__sq_outbox_defer(struct store_conn *c, int64_t id, int64_t next_attempt_at,
                           const char *why, int64_t now, enum outbox_state *landed)
{
	/* ?3 does not occur; the claim counted an attempt that never went */
	static const char sql[] = "UPDATE outbox SET state = ?6, next_attempt_at = ?2,"
	                          " attempts = max(attempts - 1, 0), last_error = ?4,"
	                          " updated_at = ?5 WHERE id = ?1";
	int rc = outbox_update(c, SQ_OUTBOX_DEFER, sql, id, OUTBOX_PENDING, 0, next_attempt_at, 0,
	                       why, now, NULL, "hold outbox row", landed);
	if (rc == 0 && *landed == OUTBOX_PENDING)
		rc = unless_opted_out(c, id, now, landed);
	return rc;
}

int store__sq_outbox_fail(struct store_conn *c, int64_t id, enum outbox_state state, int error_code,
                          const char *error, int64_t now, enum outbox_state *landed)
{
	/* ?2 does not occur */
	static const char sql[] = "UPDATE outbox SET state = ?6, last_error_code = ?3,"
	                          " last_error = ?4, updated_at = ?5 WHERE id = ?1";
	return outbox_update(c, SQ_OUTBOX_FAIL, sql, id, state, 1, 0, error_code, error, now, NULL,
	                     "fail outbox row", landed);
}

int store__sq_outbox_resend(struct store_conn *c, int64_t id, const char *provider, int64_t now,
                            enum outbox_state *from)
{
	static const char sql[] =
	        "UPDATE outbox SET state = 0, provider = ?2, provider_msg_id = NULL,"
	        " early_state = 0, attempts = 0, next_attempt_at = ?3, updated_at = ?3"
	        " WHERE id = ?1";
	const char *what = "queue outbox row again";
	enum sq_op_mode mode;
	struct outbox_guard g = {0};
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	rc = guard_of(c, id, what, &g);
	if (rc == 1 && (g.state == OUTBOX_SENDING || g.state == OUTBOX_READ ||
	                g.state == OUTBOX_DEAD || g.state == OUTBOX_MERGED))
		rc = store__errf(c, ERR_CONFLICT, "could not %s %lld: it is %s", what,
		                 (long long)id, outbox_state_name(g.state));
	else if (rc == 0)
		rc = store__errf(c, ERR_NOTFOUND, "could not %s %lld: no such row", what,
		                 (long long)id);
	if (rc == 1) {
		*from = g.state;
		rc = store__sq_run(c, SQ_OUTBOX_RESEND, sql, what, "iti", id, provider, now);
		if (rc == 0)
			store__sq_count(c, g.prio, g.state, OUTBOX_PENDING, 1);
	}
	return store__sq_op_end(c, mode, rc);
}

static void read_prio(sqlite3_stmt *st, struct arena *a, void *row)
{
	(void)a;
	*(int64_t *)row = sqlite3_column_int64(st, 0);
}

int store__sq_outbox_expire(struct store_conn *c, enum outbox_prio min_prio, int64_t created_before,
                            const char *why, int64_t now, int64_t moved[PRIO_COUNT])
{
	static const char sql[] = "UPDATE outbox SET state = 7, last_error = ?3, updated_at = ?4"
	                          " WHERE state = 0 AND priority >= ?1 AND created_at < ?2"
	                          " RETURNING priority";
	const char *what = "expire outbox rows";
	enum sq_op_mode mode;
	sqlite3_stmt *st;
	struct arena a;
	void *rows = NULL;
	int n = 0;
	memset(moved, 0, sizeof(int64_t) * PRIO_COUNT);
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	arena_init(&a, 4096);
	rc = store__sq_prep(c, SQ_OUTBOX_EXPIRE, sql, what, &st, "iiti", (int64_t)min_prio,
	                    created_before, why, now);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, &a, sizeof(int64_t), read_prio, &rows, &n);
	for (int i = 0; rc == 0 && i < n; i++) {
		int64_t p = ((int64_t *)rows)[i];
		if (p >= 0 && p < PRIO_COUNT)
			moved[p]++;
	}
	for (int p = 0; rc == 0 && p < PRIO_COUNT; p++)
		if (moved[p])
			store__sq_count(c, (enum outbox_prio)p, OUTBOX_PENDING, OUTBOX_DEAD,
			                moved[p]);
	arena_release(&a);
	rc = store__sq_op_end(c, mode, rc);
	if (rc < 0)
		memset(moved, 0, sizeof(int64_t) * PRIO_COUNT);
	return rc;
}

/* status_move: the state a row in `old` takes on delivery status st. */
static enum outbox_state status_move(enum outbox_state old, enum outbox_state st)
{
	if (old == OUTBOX_FAILED || old == OUTBOX_DEAD || old == OUTBOX_READ ||
	    old == OUTBOX_MERGED)
		return old;
	if (st == OUTBOX_FAILED)
		return OUTBOX_FAILED;
	return st > old ? st : old;
}

/* What status_find reads of a row. */
struct status_row {
	int64_t id;
	enum outbox_state state;
	enum outbox_prio prio;
	enum outbox_state early; /* a status kept aside while SENDING, or 0 */
	char provider[OUTBOX_PROVIDER_MAX];
};

static void read_status_row(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct status_row *r = row;
	(void)a;
	r->id = sqlite3_column_int64(st, 0);
	r->state = (enum outbox_state)sqlite3_column_int(st, 1);
	r->prio = (enum outbox_prio)sqlite3_column_int(st, 2);
	r->early = (enum outbox_state)sqlite3_column_int(st, 3);
	const unsigned char *p = sqlite3_column_text(st, 4);
	snprintf(r->provider, sizeof(r->provider), "%s", p ? (const char *)p : "");
}

/* status_find: the row a status is about, by provider id, else by hint. */
static int status_find(struct store_conn *c, const struct outbox_status_update *u,
                       struct status_row *out, int *by_hint)
{
	static const char by_msg[] = "SELECT id, state, priority, early_state, provider FROM outbox"
	                             " WHERE provider_msg_id = ?1 AND (?2 = 0 OR tenant_id = ?2) "
	                             "ORDER BY id DESC LIMIT 1";
	static const char by_row[] =
	        "SELECT id, state, priority, early_state, provider FROM outbox WHERE id = ?1"
	        " AND tenant_id = ?2 AND coalesce(provider_msg_id, '') = '' AND state IN (0, 1)"
	        " AND provider = ''";
	const char *what = "apply delivery status";
	struct status_row r;
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_OUTBOX_BY_PROVIDER, by_msg, what, &st, "ti",
	                        u->provider_msg_id, u->tenant_id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, read_status_row, NULL, &r);
	if (rc == 0 && u->row_hint > 0) {
		rc = store__sq_prep(c, SQ_OUTBOX_BY_HINT, by_row, what, &st, "ii", u->row_hint,
		                    u->tenant_id);
		if (rc == 0)
			rc = store__sq_one(c, st, what, read_status_row, NULL, &r);
		if (rc == 1)
			*by_hint = 1;
	}
	if (rc < 0)
		return rc;
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND,
		                   "could not %s: no message with provider id \"%s\"", what,
		                   u->provider_msg_id);
	*out = r;
	return 0;
}

int store__sq_outbox_status(struct store_conn *c, const struct outbox_status_update *u,
                            struct outbox_status_result *res)
{
	static const char upd[] =
	        "UPDATE outbox SET state = ?2,"
	        " provider_msg_id = CASE WHEN ?6 THEN ?7 ELSE provider_msg_id END,"
	        " last_error_code = CASE WHEN ?2 = 6 THEN ?3 ELSE last_error_code END,"
	        " last_error = CASE WHEN ?2 = 6 THEN ?4 ELSE last_error END,"
	        " updated_at = ?5 WHERE id = ?1";
	static const char park[] =
	        "UPDATE outbox SET early_state = ?2, provider_msg_id = ?6,"
	        " last_error_code = CASE WHEN ?2 = 6 THEN ?3 ELSE last_error_code END,"
	        " last_error = CASE WHEN ?2 = 6 THEN ?4 ELSE last_error END,"
	        " updated_at = ?5 WHERE id = ?1";
	const char *what = "apply delivery status";
	enum sq_op_mode mode;
	struct status_row r = {0};
	int by_hint = 0;
	int rc = store__sq_op_begin(c, 0, what, &mode);
	if (rc < 0)
		return rc;
	memset(res, 0, sizeof(*res));
	rc = status_find(c, u, &r, &by_hint);
	if (rc < 0)
		goto done;
	res->id = r.id;
	res->prio = r.prio;
	res->from = r.state;
	memcpy(res->provider, r.provider, sizeof(res->provider));
	if (r.state == OUTBOX_SENDING) {
		/* the status overtook the send's answer: keep it aside for
		 * store__sq_outbox_accepted (or start-up recovery) */
		enum outbox_state e = status_move(r.early ? r.early : OUTBOX_ACCEPTED, u->state);
		res->to = r.state;
		rc = store__sq_run(c, SQ_OUTBOX_PARK_STATUS, park, what, "iiitit", r.id, (int64_t)e,
		                   (int64_t)u->error_code, u->error, u->at, u->provider_msg_id);
		goto done;
	}
	/* a row found by its hint was accepted by the provider: it is at least
	 * ACCEPTED, whatever munim had recorded */
	enum outbox_state nw = status_move(by_hint ? OUTBOX_ACCEPTED : r.state, u->state);
	res->to = nw;
	if (nw == r.state)
		goto done;
	rc = store__sq_run(c, SQ_OUTBOX_SET_STATUS, upd, what, "iiitiit", r.id, (int64_t)nw,
	                   (int64_t)u->error_code, u->error, u->at, (int64_t)by_hint,
	                   u->provider_msg_id);
	if (rc == 0)
		store__sq_count(c, r.prio, r.state, nw, 1);
done:
	return store__sq_op_end(c, mode, rc);
}

/* What store__sq_outbox_merge checks of each row. */
struct merge_row {
	enum outbox_state state;
	enum outbox_prio prio;
	int early; /* a status kept aside */
	int known; /* the provider gave it an id */
	int same;  /* the keeper's tenant, business number and recipient */
};

static void read_merge_row(sqlite3_stmt *st, struct arena *a, void *row)
{
	struct merge_row *r = row;
	(void)a;
	r->state = (enum outbox_state)sqlite3_column_int(st, 0);
	r->prio = (enum outbox_prio)sqlite3_column_int(st, 1);
	r->early = sqlite3_column_int(st, 2) != 0;
	r->known = sqlite3_column_int(st, 3) != 0;
	r->same = sqlite3_column_int(st, 4) != 0;
}

/* merge_check reads row id beside the keeper and tells why it may not take
 * part: 0 (and *r) or an error with its message. */
static int merge_check(struct store_conn *c, int64_t id, int64_t keeper_id, struct merge_row *r,
                       const char *what)
{
	static const char sql[] =
	        "SELECT o.state, o.priority, o.early_state, coalesce(o.provider_msg_id, '') <> '',"
	        " o.tenant_id = k.tenant_id AND o.to_id = k.to_id"
	        " AND o.phone_number_id = k.phone_number_id"
	        " FROM outbox AS o, outbox AS k WHERE o.id = ?1 AND k.id = ?2";
	sqlite3_stmt *st;
	int rc = store__sq_prep(c, SQ_OUTBOX_MERGE_READ, sql, what, &st, "ii", id, keeper_id);
	if (rc == 0)
		rc = store__sq_one(c, st, what, read_merge_row, NULL, r);
	if (rc < 0)
		return rc;
	if (rc == 0)
		return store__errf(c, ERR_NOTFOUND, "could not %s: no outbox row %lld", what,
		                   (long long)id);
	if (r->state != OUTBOX_SENDING)
		return store__errf(c, ERR_CONFLICT, "could not %s: outbox row %lld is %s", what,
		                   (long long)id, outbox_state_name(r->state));
	if (r->early || r->known)
		return store__errf(c, ERR_CONFLICT,
		                   "could not %s: the provider already knows outbox row %lld", what,
		                   (long long)id);
	if (!r->same)
		return store__errf(c, ERR_CONFLICT,
		                   "could not %s: outbox row %lld goes to another recipient", what,
		                   (long long)id);
	return 0;
}

int store__sq_outbox_merge(struct store_conn *c, int64_t keeper_id, const char *body,
                           const int64_t *merged, int n, int64_t now)
{
	static const char set_body[] = "UPDATE outbox SET body = ?2, updated_at = ?3 WHERE id = ?1";
	/* the claim counted an attempt for a send this row never makes */
	static const char set_merged[] =
	        "UPDATE outbox SET state = 8, merged_into = ?2, attempts = max(attempts - 1, 0),"
	        " updated_at = ?3 WHERE id = ?1";
	char what[64];
	snprintf(what, sizeof(what), "merge into outbox row %lld", (long long)keeper_id);
	enum sq_op_mode mode;
	struct merge_row r;
	int rc = store__sq_op_begin(c, 1, what, &mode);
	if (rc < 0)
		return rc;
	/* the keeper first: missing (ERR_NOTFOUND) before any other complaint */
	rc = merge_check(c, keeper_id, keeper_id, &r, what);
	if (rc == 0)
		rc = store__sq_run(c, SQ_OUTBOX_MERGE_BODY, set_body, what, "iti", keeper_id, body,
		                   now);
	/* tallied once all rows went: a failure undoes the statements (the
	 * savepoint inside a caller's transaction) but not a tally */
	int64_t moved[PRIO_COUNT] = {0};
	for (int i = 0; rc == 0 && i < n; i++) {
		rc = merge_check(c, merged[i], keeper_id, &r, what);
		if (rc == 0)
			rc = store__sq_run(c, SQ_OUTBOX_MERGE_ROW, set_merged, what, "iii",
			                   merged[i], keeper_id, now);
		if (rc == 0 && (unsigned)r.prio < PRIO_COUNT)
			moved[r.prio]++;
	}
	for (int p = 0; rc == 0 && p < PRIO_COUNT; p++)
		if (moved[p])
			store__sq_count(c, (enum outbox_prio)p, OUTBOX_SENDING, OUTBOX_MERGED,
			                moved[p]);
	return store__sq_op_end(c, mode, rc);
}

int store__sq_outbox_list(struct store_conn *c, enum outbox_state state, int limit, struct arena *a,
                          struct outbox_row **out, int *n)
{
	static const char sql[] =
	        "SELECT " OUTBOX_COLS " FROM outbox WHERE state = ?1 ORDER BY id DESC LIMIT ?2";
	const char *what = "list outbox";
	sqlite3_stmt *st;
	void *rows = NULL;
	*n = 0;
	int rc = store__sq_prep(c, SQ_OUTBOX_LIST, sql, what, &st, "ii", (int64_t)state,
	                        (int64_t)limit);
	if (rc == 0)
		rc = store__sq_rows(c, st, what, a, sizeof(**out), read_outbox, &rows, n);
	*out = rows;
	return rc;
}

int store__sq_outbox_counts(struct store_conn *c, int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT])
{
	/* kept by every commit that adds or moves rows (store__sq_count): a few
	 * rows, whatever the history; this transaction's own changes are added */
	static const char sql[] = "SELECT priority, state, n FROM outbox_counts";
	const char *what = "count outbox";
	sqlite3_stmt *st;
	for (int p = 0; p < PRIO_COUNT; p++)
		for (int s = 0; s < OUTBOX_STATE_COUNT; s++)
			counts[p][s] = 0;
	int rc = store__sq_prep(c, SQ_OUTBOX_COUNTS, sql, what, &st, "");
	if (rc < 0)
		return rc;
	while ((rc = store__sq_step(c, st, what)) == 1) {
		int p = sqlite3_column_int(st, 0), s = sqlite3_column_int(st, 1);
		if (p >= 0 && p < PRIO_COUNT && s >= 0 && s < OUTBOX_STATE_COUNT)
			counts[p][s] = sqlite3_column_int64(st, 2);
	}
	sqlite3_reset(st);
	const struct sq_conn *q = c->backend;
	for (int p = 0; rc == 0 && p < PRIO_COUNT; p++)
		for (int s = 0; s < OUTBOX_STATE_COUNT; s++)
			counts[p][s] += q->counts[p][s];
	return rc;
}

int store__sq_outbox_next_due(struct store_conn *c, enum outbox_prio max_prio, int64_t *at)
{
	/* one index probe per priority instead of a scan of every pending row;
	 * priorities past max_prio (?1) are not probed */
	static const char sql[] =
	        "SELECT min(t) FROM ("
	        " SELECT (SELECT min(next_attempt_at) FROM outbox WHERE state = 0 AND priority = 0)"
	        "  AS t"
	        " UNION ALL SELECT (SELECT min(next_attempt_at) FROM outbox"
	        "  WHERE ?1 >= 1 AND state = 0 AND priority = 1)"
	        " UNION ALL SELECT (SELECT min(next_attempt_at) FROM outbox"
	        "  WHERE ?1 >= 2 AND state = 0 AND priority = 2)"
	        " UNION ALL SELECT (SELECT min(next_attempt_at) FROM outbox"
	        "  WHERE ?1 >= 3 AND state = 0 AND priority = 3))";
	const char *what = "read next due time";
	sqlite3_stmt *st;
	*at = 0;
	int rc = store__sq_prep(c, SQ_OUTBOX_NEXT_DUE, sql, what, &st, "i", (int64_t)max_prio);
	if (rc == 0) /* min() of no row is NULL, which reads 0 */
		rc = store__sq_one(c, st, what, store__sq_read_int64, NULL, at);
	return rc < 0 ? rc : 0;
}
