/*
 * pg_internal.h - what the PostgreSQL backend's files share: the
 * per-thread connection, the scope a statement runs in (which tenant's
 * rows it may see), and the helpers that run a statement with parameters,
 * read its rows and translate errors.
 *
 * Scope. Every table that holds a shop's data has row-level security,
 * forced on its owner too (migrations_pg.c). Its policies read two
 * transaction-local settings:
 *   munim.tenant  the tenant whose rows the transaction may see;
 *   munim.scope   'system' for the cross-tenant work of the queue (claims,
 *                 depths, recovery) and the tenant directory (a webhook's
 *                 phone number id, an API token): it opens the queue tables
 *                 (inbox, outbox, ai_jobs, ocr_queue) and tenants, never a
 *                 shop's own tables (products, customers, orders, invoices,
 *                 the ledger, the audit log).
 * With neither set a statement sees no row. Every operation names its
 * scope in store__pg_op_begin, which sets both with set_config(...,
 * true) in the operation's transaction (the caller's, or one of its own),
 * so a connection handed to another client by PgBouncer in transaction
 * mode carries nothing over.
 *
 * Errors. A statement that fails inside the caller's transaction leaves it
 * aborted (PostgreSQL's rule): the caller must roll back (or roll back to
 * its savepoint). So an operation whose outcome is an expected "no"
 * (short stock, a duplicate, a row in another state) finds it without an
 * error: ON CONFLICT DO NOTHING, a conditional UPDATE ... RETURNING, a
 * read first; only the unexpected raises.
 *
 * Lost connections. A connection error (or a primary that became a
 * standby) marks the connection broken and gives ERR_AGAIN; the next
 * operation outside a transaction, or the next store_begin, connects again
 * (libpq walks the hosts of a multi-host string, and
 * target_session_attrs=read-write finds the new primary). The transaction
 * in flight is not retried here: every write is idempotent by construction
 * (inbox keyed by wamid, outbox moves guarded by state, the ERP's effects
 * inside the inbox entry's transaction), so the caller's retry is safe.
 */
#ifndef MUNIM_STORE_PG_INTERNAL_H
#define MUNIM_STORE_PG_INTERNAL_H

#include <libpq-fe.h>

#include "core/buf.h"

#include "store/store_internal.h"

/* The role munim's statements run as: owns nothing, bypasses nothing. */
#define PG_APP_ROLE "munim_app"
/* Most parameters one statement of the backend takes. */
#define PG_MAX_ARGS 24

/* Which rows an operation may see (see the file comment). */
enum pg_scope { PG_SCOPE_TENANT = 1, PG_SCOPE_SYSTEM = 2 };

/* The backend half of a struct store (st->backend). */
struct pg_store {
	char *conninfo;  /* the primary: the url given to store_open */
	char **replicas; /* store_set_replicas: read replicas' urls */
	int nreplicas;
	int max_lag_ms;                /* a replica further behind is skipped */
	_Atomic unsigned next_replica; /* round robin over replicas */
	struct pg_listener *listener;  /* pg_listen.c, or NULL */
};

/* pg_listen.c: the store's listening thread (store_listen_start/_stop). */
int store__pg_listen_start(struct store *st, const char *url, store_wake_fn fn, void *arg);
void store__pg_listen_stop(struct store *st);

/* How often a replica connection checks its lag (between transactions). */
#define PG_LAG_CHECK_MS 1000
/* Bytes of statements a connection holds back (struct pg_session's lead). */
#define PG_LEAD_CAP 1024

/* The backend half of a struct store_conn (c->backend). */
struct pg_session {
	PGconn *db;
	const char *conninfo;   /* the server this connection uses (the store's) */
	int for_reads;          /* made by store_connect_read: a replica when one is fresh */
	int on_replica;         /* connected to a replica now */
	int64_t lag_checked_ms; /* monotonic ms of the last lag check */
	int broken;             /* lost: connect again before the next transaction */
	int set_role;        /* the session user bypasses RLS: each transaction sets PG_APP_ROLE */
	int lazy;            /* commits do not wait for the WAL flush (store_set_lazy_commits) */
	int txn_open;        /* BEGIN sent, or waiting in the lead */
	int unsynced;        /* lazy commits made since the last durable one */
	int unsynced_lost;   /* such commits on a connection since lost (pg_sync) */
	enum pg_scope scope; /* set in the open transaction (0: none yet) */
	int64_t tenant;      /* with PG_SCOPE_TENANT */
	int shard;           /* this connection's row of outbox_counts (0-15) */
	unsigned wake;       /* 1 << STORE_WAKE_*: NOTIFY at this transaction's commit */
	uint64_t wake_parts; /* the partitions of its inbox work: the NOTIFY's payload */
	/* outbox rows by priority and state that this transaction added or
	 * moved (store__pg_count), added to outbox_counts by its commit */
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	int64_t counts_at_savepoint[PRIO_COUNT][OUTBOX_STATE_COUNT];
	struct pg_prepared *prepared; /* PG_PREPARED_SLOTS, or NULL: none yet */
	int nprepared;
	/* The lead (store_pg.c): statements that need no answer of their own
	 * (BEGIN, the scope, SAVEPOINT, RELEASE), held back to go with the next
	 * statement in one round trip; nlead of them, each ending in a NUL. */
	char lead[PG_LEAD_CAP];
	size_t lead_len;
	int nlead;
	int lead_begins; /* the lead holds the transaction's BEGIN: nothing sent yet */
};

/*
 * Statements prepared on one connection (store_set_prepared): an open-
 * addressing table keyed by the statement's text, whose slot number names
 * the prepared statement ("m<slot>"). Full, a new statement is sent
 * unprepared. Emptied when the connection is made again (the server
 * forgets a session's statements with it).
 */
#define PG_PREPARED_SLOTS 1024
struct pg_prepared {
	char *sql; /* NULL: free slot */
	uint32_t hash;
};

/* Shards of outbox_counts (migrations_pg.c). */
#define PG_COUNT_SHARDS 16

/*
 * store__pg_count: n outbox rows of priority prio went from state `from`
 * (-1: new rows) to state `to` in the open transaction (the caller's or
 * the operation's own). The outbox's writers call it after their statement
 * succeeded; the commit adds the changes to outbox_counts in one statement,
 * a rollback (to the savepoint) forgets them.
 */
void store__pg_count(struct store_conn *c, enum outbox_prio prio, int from, int to, int64_t n);
/*
 * store__pg_wake: the open transaction (the caller's or the operation's
 * own) leaves new work of kind what in partition part (inbox work; -1:
 * not known or not partitioned); its commit sends the NOTIFY that other
 * processes' listeners wait for (pg_listen.c), with the inbox work's
 * partitions as a hexadecimal mask for its payload.
 */
void store__pg_wake(struct store_conn *c, enum store_wake what, int part);

/*
 * store__pg_in_part writes into buf (cap bytes) sql with every "@@"
 * replaced by part: "outbox_p@@" names the partition of a queue table
 * (migrations_pg.c, migration 3), so that a statement about one row plans
 * and locks one partition. Returns buf, or NULL when it does not fit (the
 * store__pg_query family fails on a NULL statement with ERR_TOOBIG).
 */
const char *store__pg_in_part(char *buf, size_t cap, const char *sql, int64_t part);
/* A buffer for it: the longest statement so written, and then some. */
#define PG_PART_SQL_MAX 4096

/* The delivery status statement for a status that names its tenant, with
 * "@@" for the tenant's partition (pg_outbox.c; its plan is tested). */
extern const char store__pg_status_sql[];
/* The same for many statuses of one partition. */
extern const char store__pg_status_set_sql[];

static inline PGconn *store__pg_db(const struct store_conn *c)
{
	return ((const struct pg_session *)c->backend)->db;
}

/*
 * Running a statement. Parameters follow a type string, one letter each
 * ($1 on), as in the SQLite backend:
 *   'i'  an int64_t, exactly (cast int, enum or bool arguments);
 *   't'  a const char *, sent as text (NULL sends "");
 *   'n'  a const char *, NULL sends SQL NULL.
 * Values are sent as text (no prepared statements: PgBouncer in
 * transaction mode cannot keep them).
 *
 * store__pg_query runs sql and gives its result in *res (the caller
 * PQclear()s it): 0, or an ERR_* with "could not <what>: <server message>"
 * on c and *res NULL.
 */
int store__pg_query(struct store_conn *c, const char *what, const char *sql, PGresult **res,
                    const char *types, ...);
/*
 * store__pg_exec runs sql for its effect: the number of rows it touched
 * (>= 0), or an ERR_* with the message on c.
 */
int store__pg_exec(struct store_conn *c, const char *what, const char *sql, const char *types, ...);
/* store__pg_simple runs sql (one or more statements, no parameters). */
int store__pg_simple(struct store_conn *c, const char *what, const char *sql);

/*
 * Array parameters, sent as one text value each: '{1,2}', '{"a","b"}'
 * (PostgreSQL's array input: a text element quoted, its '"' and '\'
 * escaped with '\'; a NULL string goes as ""). _init starts one in b
 * (buf_init), _end closes it and gives its text; the caller releases b.
 */
void store__pg_arr_init(struct buf *b);
void store__pg_arr_int(struct buf *b, int64_t v);
void store__pg_arr_text(struct buf *b, const char *s);
const char *store__pg_arr_end(struct buf *b);

/*
 * store__pg_count_rows runs sql, a count(*) with no parameters, across
 * tenants (the system scope), into *n (0 on an error).
 */
int store__pg_count_rows(struct store_conn *c, const char *what, const char *sql, int64_t *n);

/* store__pg_i64 reads column col of row as an int64_t (NULL reads 0). */
int64_t store__pg_i64(const PGresult *res, int row, int col);
/* store__pg_str copies column col of row into a ("" for NULL). */
const char *store__pg_str(const PGresult *res, int row, int col, struct arena *a);
/*
 * store__pg_alloc_rows gives an array of n zeroed elements of elem bytes
 * in a (NULL when n is 0), for the rows of a result.
 */
void *store__pg_alloc_rows(struct arena *a, int n, size_t elem);

/*
 * store__pg_err records "could not <what>: <message>" on c for a failed
 * result (res may be NULL: the connection's message), marks a lost
 * connection broken, and returns the ERR_* of its SQLSTATE:
 *   class 23 (a constraint)                    ERR_CONFLICT
 *   40001, 40P01, 55P03 (serialization, deadlock, lock timeout)  ERR_AGAIN
 *   class 08, 57P01-57P03, 25006 (the connection, or a primary that
 *   is now a standby)                          ERR_AGAIN, connection broken
 *   57014 (statement timeout)                  ERR_TIMEOUT
 *   53100, 53200 (disk, memory)                ERR_FULL
 *   anything else                              ERR_DB
 */
int store__pg_err(struct store_conn *c, const PGresult *res, const char *what);

/*
 * store__pg_op_begin makes ready an operation that runs in scope (tenant
 * with PG_SCOPE_TENANT): outside the caller's transaction it opens one of
 * its own (*own = 1, connecting again first if the connection was lost);
 * inside, it sets the scope when it differs from the one set (*own = 0).
 * store__pg_op_end commits its own transaction when rc == 0 (rolls it back
 * otherwise) and returns rc, or the commit's error. Read-only operations
 * use the same pair: a transaction of their own is what makes the scope
 * hold for their statement.
 */
int store__pg_op_begin(struct store_conn *c, enum pg_scope scope, int64_t tenant, const char *what,
                       int *own);
int store__pg_op_end(struct store_conn *c, int own, int rc);

/*
 * Row readers the files share: a customer from the columns id, tenant_id,
 * wa_id, name, state_code, last_inbound_at (pg_tenant.c); an order from
 * columns 0-7 (id, tenant_id, customer_id, status, total_paise, created_at,
 * updated_at, paid_at; no lines) and a line from columns 9-17 of an order
 * joined to its lines (pg_erp.c). Text is copied into a.
 */
void store__pg_read_customer(const PGresult *r, int row, struct arena *a, struct customer *cu);
void store__pg_read_order(const PGresult *r, int row, struct order *o);
void store__pg_read_order_line(const PGresult *r, int row, struct arena *a, struct order_line *l);

/* Migrations (migrations_pg.c): version i+1 is store__pg_migrations[i], a
 * NULL-terminated array of statements. */
extern const char *const *const store__pg_migrations[];
extern const int store__pg_nmigrations;

/*
 * The operations of each part of the backend, put into the ops table by
 * store_pg.c: pg_tenant.c (tenants, customers, templates, API tokens, the
 * audit log), pg_erp.c (catalogue, stock, orders, invoices, sales),
 * pg_inbox.c (the inbox), pg_outbox.c (the outbox), pg_ai.c (AI jobs, the
 * OCR queue, the companion app's records).
 */
void store__pg_tenant_ops(struct store_ops *ops);
void store__pg_erp_ops(struct store_ops *ops);
void store__pg_inbox_ops(struct store_ops *ops);
void store__pg_outbox_ops(struct store_ops *ops);
void store__pg_ai_ops(struct store_ops *ops);

#endif
