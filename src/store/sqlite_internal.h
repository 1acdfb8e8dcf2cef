/*
 * sqlite_internal.h - what the SQLite backend's files share: the per-thread
 * connection with its cache of prepared statements, the statement ids, and
 * the helpers that bind, step, translate errors and wrap writes.
 *
 * Statement cache: every statement a backend function runs has an id in
 * enum sq_stmt; store__sq_prep prepares it on first use on a connection
 * (SQLITE_PREPARE_PERSISTENT) and hands it back reset and bound on every
 * later use. Callers reset it when they are done (store__sq_exec,
 * store__sq_one and store__sq_rows do it for them), so no statement keeps a
 * read snapshot open between calls.
 *
 * Write wrapping: a write made outside store_begin runs in its own
 * transaction (taking the writer mutex); a write of several statements made
 * inside the caller's transaction runs under an internal savepoint, so each
 * store operation is all-or-nothing either way (store__sq_op_begin/end).
 */
#ifndef MUNIM_STORE_SQLITE_INTERNAL_H
#define MUNIM_STORE_SQLITE_INTERNAL_H

#include <sqlite3.h>

#include "store/store_internal.h"

enum sq_stmt {
	/* transactions (store_sqlite.c) */
	SQ_BEGIN,
	SQ_BEGIN_READ,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_SAVEPOINT,
	SQ_RELEASE,
	SQ_ROLLBACK_TO,
	SQ_OP_SAVEPOINT,
	SQ_OP_RELEASE,
	SQ_OP_ROLLBACK_TO,
	/* tenants, customers, audit (store_sqlite.c) */
	SQ_TENANT_ADD,
	SQ_TENANT_GET,
	SQ_TENANT_BY_PHONE,
	SQ_TENANT_COUNT,
	SQ_TENANT_LIST,
	SQ_CUSTOMER_FIND,
	SQ_CUSTOMER_TOUCH,
	SQ_CUSTOMER_SET_STATE,
	SQ_AUDIT,
	/* catalogue, stock, orders, invoices (sqlite_erp.c) */
	SQ_PRODUCT_UPSERT,
	SQ_PRODUCTS_LIST,
	SQ_PRODUCT_GET,
	SQ_PRODUCT_SET_PRICE,
	SQ_PRODUCT_EXISTS,
	SQ_STOCK_UPDATE,
	SQ_LEDGER_INSERT,
	SQ_LEDGER_SUM,
	SQ_PRODUCTS_LOW,
	SQ_ORDER_INSERT,
	SQ_ORDER_LINE_INSERT,
	SQ_ORDER_GET,
	SQ_ORDER_LINES,
	SQ_ORDER_LAST,
	SQ_ORDER_LAST_DRAFT,
	SQ_ORDER_SET_STATUS,
	SQ_ORDER_EXISTS,
	SQ_INVOICE_COUNTER,
	SQ_INVOICE_INSERT,
	SQ_INVOICE_LAST,
	SQ_INVOICE_BY_ORDER,
	SQ_SALES_SINCE,
	/* marketing: templates, API tokens, opt-outs, audiences, payments (sqlite_erp.c) */
	SQ_TENANT_TEMPLATE,
	SQ_TENANT_SET_TEMPLATE,
	SQ_TENANT_SET_TOKEN,
	SQ_TENANT_BY_TOKEN,
	SQ_CUSTOMER_GET,
	SQ_CUSTOMER_OPT_OUT,
	SQ_CUSTOMER_OPTED_OUT,
	SQ_CUSTOMERS_ACTIVE,
	SQ_OUTBOX_CANCEL_MARKETING,
	SQ_ORDER_SET_PAID,
	SQ_ORDER_PAID_STATE,
	/* inbox and outbox (sqlite_queue.c) */
	SQ_INBOX_INSERT,
	SQ_INBOX_PENDING_IDS,
	SQ_INBOX_GET,
	SQ_INBOX_DONE,
	SQ_INBOX_REOPEN,
	SQ_INBOX_FAILED,
	SQ_INBOX_STATE,
	SQ_INBOX_DEPTH,
	SQ_INBOX_WAITING,
	SQ_OUTBOX_INSERT,
	SQ_OUTBOX_CLAIM,
	SQ_OUTBOX_CLAIM_TO,
	SQ_OUTBOX_RECOVER,
	SQ_OUTBOX_ACCEPTED,
	SQ_OUTBOX_RETRY,
	SQ_OUTBOX_FAIL,
	SQ_OUTBOX_STATE,
	SQ_OUTBOX_BY_PROVIDER,
	SQ_OUTBOX_BY_HINT,
	SQ_SYNC_NORMAL,
	SQ_SYNC_FULL,
	SQ_OUTBOX_RECOVER_PROVED,
	SQ_OUTBOX_PARK_STATUS,
	SQ_OUTBOX_SET_STATUS,
	SQ_OUTBOX_LIST,
	SQ_OUTBOX_COUNTS,
	SQ_OUTBOX_NEXT_DUE,
	SQ_OUTBOX_GUARD,
	SQ_OUTBOX_COUNTS_ADD,
	SQ_OUTBOX_SENDING_COUNTS,
	SQ_OUTBOX_CLAIMED_HERE,
	SQ_OUTBOX_DEFER,
	SQ_OUTBOX_RESEND,
	SQ_OUTBOX_EXPIRE,
	SQ_OUTBOX_OPTED_OUT,
	SQ_OUTBOX_MERGE_READ,
	SQ_OUTBOX_MERGE_BODY,
	SQ_OUTBOX_MERGE_ROW,
	SQ_OUTBOX_WAITING_BY_TENANT,
	/* AI jobs and the OCR queue (sqlite_ai.c) */
	SQ_AI_JOB_ADD,
	SQ_AI_JOB_WAITING,
	SQ_AI_JOB_CLAIM,
	SQ_AI_JOB_FINISH,
	SQ_AI_JOB_RELEASE,
	SQ_AI_JOB_RECOVER,
	SQ_AI_JOB_GET,
	SQ_AI_JOB_STATE,
	SQ_AI_JOB_COUNT,
	SQ_OCR_ADD,
	SQ_OCR_LIST,
	SQ_OCR_DONE,
	SQ_OCR_STATE,
	SQ_OCR_DEPTH,
	/* the companion app (sqlite_companion.c) */
	SQ_COMPANION_CUSTOMER_ADD,
	SQ_COMPANION_ORDERS,
	SQ_COMPANION_OP_GET,
	SQ_COMPANION_OP_PUT,
	SQ_NSTMT
};

/* The backend half of a struct store_conn (c->backend). */
struct sq_conn {
	sqlite3 *db;
	sqlite3_stmt *stmt[SQ_NSTMT];
	int lazy;         /* synchronous=NORMAL (store_set_lazy_commits) */
	int64_t last_seq; /* st->commit_seq of this connection's last commit */
	/* outbox rows by priority and state that this transaction added or
	 * moved (store__sq_count), written to outbox_counts by its commit */
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	int64_t counts_at_savepoint[PRIO_COUNT][OUTBOX_STATE_COUNT]; /* as at SAVEPOINT msg */
};

/*
 * store__sq_count: n outbox rows of priority prio went from state `from`
 * (-1: new rows) to state `to` in the open transaction. The outbox's
 * writers call it after their statement succeeded; the commit adds the
 * changes to outbox_counts in one statement per cell, a rollback (to the
 * savepoint) forgets them.
 */
void store__sq_count(struct store_conn *c, enum outbox_prio prio, int from, int to, int64_t n);

/*
 * The background checkpoint (sqlite_checkpoint.c): _start takes db, the
 * thread's own connection (closing it if one runs already); _hook makes a
 * new connection wake that thread instead of checkpointing by itself;
 * _stop ends it (before the store is freed). st->backend holds it.
 */
int store__sq_checkpoint_start(struct store *st, sqlite3 *db);
void store__sq_checkpoint_hook(struct store *st, sqlite3 *db);
int64_t store__sq_checkpoints(const struct store *st);
void store__sq_checkpoint_stop(struct store *st);

static inline sqlite3 *store__sq_db(const struct store_conn *c)
{
	return ((const struct sq_conn *)c->backend)->db;
}

/* Migrations (migrations_sqlite.c): version i+1 is store__sq_migrations[i],
 * a NULL-terminated array of statements. */
extern const char *const *const store__sq_migrations[];
extern const int store__sq_nmigrations;

/* store__sq_map translates a (possibly extended) SQLite result code. */
int store__sq_map(int rc);
/* store__sq_err records "could not <what>: <sqlite message>" on c and returns
 * the translated code of rc. */
int store__sq_err(struct store_conn *c, int rc, const char *what);

/*
 * Running a statement. Every statement of the backend is named by its id
 * and its text; the helpers below prepare it on first use (cached), bind
 * its parameters, step it and reset it, recording "could not <what>: ..."
 * on c when anything fails, so that an operation reads as its SQL and what
 * it means.
 *
 * Parameters are bound from a type string, one letter per parameter from
 * ?1 on, the values following it:
 *   'i'  an int64_t, exactly: it is read with va_arg(ap, int64_t), which is
 *        undefined behaviour for an int, enum or bool argument, so cast
 *        those at the call, e.g. (int64_t)limit.
 *   't'  a const char * (or char *), bound as text without a copy: it must
 *        live until the statement is reset. NULL binds "".
 * A value SQLite refuses gives "could not <what>: ..." (ERR_INVAL when it
 * is too big); an unknown letter gives ERR_INVAL.
 */

/*
 * store__sq_prep gives in *out the cached statement id (text sql) with its
 * parameters bound from types. 0, or an ERR_* with the message on c: a
 * statement that cannot be prepared ("could not prepare query (is the store
 * migrated?): ..."), or a value that cannot be bound ("could not <what>:
 * ...", the statement reset). The caller steps *out and resets it.
 */
int store__sq_prep(struct store_conn *c, enum sq_stmt id, const char *sql, const char *what,
                   sqlite3_stmt **out, const char *types, ...);
/*
 * store__sq_run: store__sq_prep, then the statement runs to its end (rows
 * are ignored) and is reset. 0 or ERR_*. Statements without parameters
 * (BEGIN, COMMIT...) pass types "".
 */
int store__sq_run(struct store_conn *c, enum sq_stmt id, const char *sql, const char *what,
                  const char *types, ...);
/* store__sq_step steps st once: 1 = a row, 0 = done, < 0 = ERR_* (message on
 * c, st reset). The caller resets st after reading its rows. */
int store__sq_step(struct store_conn *c, sqlite3_stmt *st, const char *what);
/* store__sq_exec runs st to the end (ignoring rows) and resets it. */
int store__sq_exec(struct store_conn *c, sqlite3_stmt *st, const char *what);

/* A row reader fills *row, a struct of its own type, from the current row of
 * st, copying text into a (a may be NULL for a reader that reads no text). */
typedef void (*sq_row_fn)(sqlite3_stmt *st, struct arena *a, void *row);

/*
 * store__sq_one steps st (bound already) for its one row: when there is a
 * row, read fills row from it and st then runs to its end, so that an
 * INSERT/UPDATE ... RETURNING completes (the queries it serves select at
 * most one row). st is reset. 1 = row read, 0 = no row (row untouched),
 * < 0 = ERR_* (message on c).
 */
int store__sq_one(struct store_conn *c, sqlite3_stmt *st, const char *what, sq_row_fn read,
                  struct arena *a, void *row);
/*
 * store__sq_returning: store__sq_one for an INSERT/UPDATE ... RETURNING that
 * must give its row. 0, or ERR_DB "could not <what>: no row returned", or
 * the ERR_* met.
 */
int store__sq_returning(struct store_conn *c, sqlite3_stmt *st, const char *what, sq_row_fn read,
                        struct arena *a, void *row);
/*
 * store__sq_rows reads every row of st (bound already) into a new array in
 * a of elements of elem bytes, each filled by read, and resets st. 0 with
 * *rows (NULL when there is no row) and *n, or ERR_* with *rows NULL, *n 0.
 */
int store__sq_rows(struct store_conn *c, sqlite3_stmt *st, const char *what, struct arena *a,
                   size_t elem, sq_row_fn read, void **rows, int *n);
/* store__sq_read_int64: a row reader for the int64_t in column 0 (row is an
 * int64_t *; SQL NULL reads 0). */
void store__sq_read_int64(sqlite3_stmt *st, struct arena *a, void *row);
/* store__sq_read_customer: a row reader for a struct customer from the
 * columns id, tenant_id, wa_id, name, state_code, last_inbound_at. */
void store__sq_read_customer(sqlite3_stmt *st, struct arena *a, void *row);
/*
 * store__sq_customer_find reads the customer wa_id of tenant_id into *out
 * (strings in a): 1 = found, 0 = no such customer (*out untouched), < 0 =
 * ERR_* with the message, naming what, on c. Writes nothing.
 */
int store__sq_customer_find(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                            const char *what, struct arena *a, struct customer *out);

/* store__sq_col copies text column i into a (never NULL: "" for NULL). */
const char *store__sq_col(sqlite3_stmt *st, int i, struct arena *a);

/* Ways store__sq_op_begin made a write safe; pass back to store__sq_op_end. */
enum sq_op_mode { SQ_MODE_NONE = 0, SQ_MODE_TXN = 1, SQ_MODE_SAVEPOINT = 2 };
/*
 * store__sq_op_begin: outside a transaction, open one (SQ_MODE_TXN);
 * inside one and multi (the operation runs several statements), set the
 * internal savepoint (SQ_MODE_SAVEPOINT); else nothing.
 * store__sq_op_end commits/releases when rc == 0, undoes otherwise, and
 * returns rc (or the commit's error). The message of rc is kept. A lock
 * that cannot be had reads "could not <what>: database is locked".
 */
int store__sq_op_begin(struct store_conn *c, int multi, const char *what, enum sq_op_mode *mode);
int store__sq_op_end(struct store_conn *c, enum sq_op_mode mode, int rc);

/* Backend functions in sqlite_erp.c. */
int store__sq_product_upsert(struct store_conn *c, const struct product *p, int64_t *id);
int store__sq_products_list(struct store_conn *c, int64_t tenant_id, struct arena *a,
                            struct product **out, int *n);
int store__sq_product_get(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                          struct arena *a, struct product *out);
int store__sq_product_set_price(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                                int64_t price_paise);
int store__sq_stock_move(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t delta,
                         const char *reason, int64_t ref_id, int64_t *stock_after);
int store__sq_ledger_sum(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t *sum);
int store__sq_products_low(struct store_conn *c, int64_t tenant_id, int64_t threshold_units,
                           struct arena *a, struct product **out, int *n);
int store__sq_order_create(struct store_conn *c, const struct order *o, int64_t *id);
int store__sq_order_get(struct store_conn *c, int64_t tenant_id, int64_t order_id, struct arena *a,
                        struct order *out);
int store__sq_order_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                         struct arena *a, struct order *out);
int store__sq_order_last_draft(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                               struct arena *a, struct order *out);
int store__sq_order_set_status(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                               enum order_status from, enum order_status to);
int store__sq_invoice_issue(struct store_conn *c, struct invoice *inv, struct arena *a,
                            int64_t *id);
int store__sq_invoice_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct invoice *out);
int store__sq_invoice_by_order(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                               struct arena *a, struct invoice *out);
int store__sq_sales_since(struct store_conn *c, int64_t tenant_id, int64_t since, int64_t *orders,
                          int64_t *taxable_paise, int64_t *total_paise);
int store__sq_tenant_template(struct store_conn *c, int64_t tenant_id, struct arena *a,
                              struct tenant_template *out);
int store__sq_tenant_set_template(struct store_conn *c, int64_t tenant_id, const char *name,
                                  const char *lang);
int store__sq_tenant_set_token_hash(struct store_conn *c, int64_t tenant_id, const char *hash);
int store__sq_tenant_by_token_hash(struct store_conn *c, const char *hash, int64_t *tenant_id);
int store__sq_customer_get(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct customer *out);
int store__sq_customer_set_opted_out(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                     int opted_out, int *changed);
int store__sq_customers_active(struct store_conn *c, int64_t tenant_id, int64_t since,
                               const struct customer_contact *after, int limit, struct arena *a,
                               struct customer_contact **out, int *n);
int store__sq_outbox_cancel_marketing(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                      int error_code, const char *error, int64_t now,
                                      int64_t *moved);
int store__sq_order_set_paid(struct store_conn *c, int64_t tenant_id, int64_t order_id, int64_t at,
                             int64_t *paid_at);

/* Backend functions in sqlite_queue.c. */
int store__sq_inbox_put(struct store_conn *c, struct inbox_entry *e, int n,
                        enum inbox_put_result *result);
int store__sq_inbox_pending(struct store_conn *c, uint64_t parts, int limit, struct arena *a,
                            struct inbox_entry **out, int *n);
int store__sq_inbox_done(struct store_conn *c, int64_t id);
int store__sq_inbox_reopen(struct store_conn *c, int64_t id);
int store__sq_inbox_failed(struct store_conn *c, int64_t id, int max_attempts, const char *why);
int store__sq_inbox_depth(struct store_conn *c, int64_t *n);
int store__sq_inbox_waiting(struct store_conn *c, int limit, struct arena *a,
                            struct inbox_waiting **out, int *n);
int store__sq_outbox_add(struct store_conn *c, const struct outbox_new *o, int64_t *id);
int store__sq_outbox_claim_to(struct store_conn *c, int64_t now, int64_t tenant_id, const char *to,
                              enum outbox_prio min_prio, enum outbox_prio max_prio, int limit,
                              struct arena *a, struct outbox_row **out, int *n);
int store__sq_outbox_claim(struct store_conn *c, int64_t now, int limit, enum outbox_prio max_prio,
                           struct arena *a, struct outbox_row **out, int *n);
int store__sq_outbox_recover(struct store_conn *c, int64_t resend_at, int *n);
int store__sq_outbox_claimed_here(struct store_conn *c, int64_t moved_before, int limit,
                                  struct arena *a, int64_t **ids, int *n);
int store__sq_outbox_accepted(struct store_conn *c, int64_t id, const char *provider_msg_id,
                              const char *provider, int64_t now, enum outbox_state *landed);
int store__sq_outbox_retry(struct store_conn *c, int64_t id, int64_t next_attempt_at,
                           int error_code, const char *error, int64_t now,
                           enum outbox_state *landed);
int store__sq_outbox_fail(struct store_conn *c, int64_t id, enum outbox_state state, int error_code,
                          const char *error, int64_t now, enum outbox_state *landed);
int store__sq_outbox_defer(struct store_conn *c, int64_t id, int64_t next_attempt_at,
                           const char *why, int64_t now, enum outbox_state *landed);
int store__sq_outbox_resend(struct store_conn *c, int64_t id, const char *provider, int64_t now,
                            enum outbox_state *from);
int store__sq_outbox_waiting_by_tenant(struct store_conn *c, enum outbox_prio min_prio, int limit,
                                       struct arena *a, struct outbox_tenant_count **out, int *n);
int store__sq_outbox_expire(struct store_conn *c, enum outbox_prio min_prio, int64_t created_before,
                            const char *why, int64_t now, int64_t moved[PRIO_COUNT]);
int store__sq_outbox_status(struct store_conn *c, const struct outbox_status_update *u,
                            struct outbox_status_result *res);
int store__sq_outbox_merge(struct store_conn *c, int64_t keeper_id, const char *body,
                           const int64_t *merged, int n, int64_t now);
int store__sq_outbox_list(struct store_conn *c, enum outbox_state st, int limit, struct arena *a,
                          struct outbox_row **out, int *n);
int store__sq_outbox_counts(struct store_conn *c, int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT]);
int store__sq_outbox_next_due(struct store_conn *c, enum outbox_prio max_prio, int64_t *at);

/* Backend functions in sqlite_ai.c. */
int store__sq_ai_job_add(struct store_conn *c, const struct ai_job *j, int64_t *id);
int store__sq_ai_job_waiting(struct store_conn *c, int64_t tenant_id, const char *from,
                             int *waiting);
int store__sq_ai_job_claim(struct store_conn *c, int limit, struct arena *a, struct ai_job **out,
                           int *n);
int store__sq_ai_job_finish(struct store_conn *c, int64_t id, const char *outcome,
                            const char *rewritten, int64_t now);
int store__sq_ai_job_release(struct store_conn *c, int64_t id);
int store__sq_ai_job_recover(struct store_conn *c, int *n);
int store__sq_ai_job_get(struct store_conn *c, int64_t id, struct arena *a, struct ai_job *out);
int store__sq_ai_job_count(struct store_conn *c, int64_t *n);
int store__sq_ocr_add(struct store_conn *c, const struct ocr_item *o, int64_t *id);
int store__sq_ocr_list(struct store_conn *c, enum ocr_state st, int64_t after_id, int limit,
                       struct arena *a, struct ocr_item **out, int *n);
int store__sq_ocr_done(struct store_conn *c, int64_t id, const char *note, int64_t now);
int store__sq_ocr_depth(struct store_conn *c, int64_t *n);

/* Backend functions in sqlite_companion.c. */
int store__sq_customer_ensure(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                              struct arena *a, struct customer *out);
int store__sq_orders_list(struct store_conn *c, int64_t tenant_id, int status, int64_t before_id,
                          int limit, struct arena *a, struct order **out, int *n);
int store__sq_sync_op_get(struct store_conn *c, int64_t tenant_id, const char *client_id,
                          struct arena *a, struct sync_op_record *out);
int store__sq_sync_op_put(struct store_conn *c, int64_t tenant_id, const struct sync_op_record *r);

#endif
