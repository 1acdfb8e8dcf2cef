/*
 * store_internal.h - what the files of src/store/ share: the ops table that
 * every backend fills, the generic parts of the two handles, the caps on
 * sizes that callers control, and the backends' entry points.
 *
 * store.c checks arguments and the transaction state, then calls through
 * st->ops / c->ops; a backend never sees a NULL out-pointer, an out-of-range
 * enum or a limit above its cap. Tests may include this header to shorten
 * the busy timeout.
 */
#ifndef MUNIM_STORE_INTERNAL_H
#define MUNIM_STORE_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdarg.h>

#include "store/store.h"

/* Caps on what callers pass (rows per call, lines per order). */
#define STORE_MAX_BATCH       10000
#define STORE_MAX_ORDER_LINES 1000
/* |delta| of one stock move: a billion base units (a thousand tonnes in g). */
#define STORE_MAX_STOCK_DELTA 1000000000000LL
#define STORE_ERRMSG_MAX      512
#define STORE_BUSY_TIMEOUT_MS 5000

/* One function pointer per operation of store.h; see there for contracts. */
struct store_ops {
	const char *name;
	int shared_writers; /* store_shared_writers */
	void (*close)(struct store *st);
	int (*connect)(struct store *st, struct store_conn **out);
	/* NULL: connect; see store_connect_read */
	int (*connect_read)(struct store *st, struct store_conn **out);
	void (*set_replicas)(struct store *st, const char *urls, int max_lag_ms);
	/* NULL: nothing to do (see store_listen_start) */
	int (*listen_start)(struct store *st, const char *url, store_wake_fn fn, void *arg);
	void (*listen_stop)(struct store *st);
	int (*checkpoint_in_background)(struct store *st);
	int64_t (*checkpoints)(const struct store *st);
	int64_t (*memory_bytes)(const struct store *st);
	void (*disconnect)(struct store_conn *c);

	int (*migrate)(struct store_conn *c, int *applied);
	int (*schema_version)(struct store_conn *c, int *version);
	int (*maintain)(struct store_conn *c, int *made); /* NULL: nothing to do */

	int (*begin)(struct store_conn *c);
	int (*commit)(struct store_conn *c);
	int (*rollback)(struct store_conn *c);
	int (*savepoint)(struct store_conn *c);
	int (*release)(struct store_conn *c);
	int (*rollback_to)(struct store_conn *c);
	int (*set_lazy_commits)(struct store_conn *c, int lazy);
	int (*sync)(struct store_conn *c);

	int (*tenant_add)(struct store_conn *c, const struct tenant *t, int64_t *id);
	int (*tenant_get)(struct store_conn *c, int64_t id, struct arena *a, struct tenant *out);
	/* NULL: store_tenants_get reads them one by one */
	int (*tenants_get)(struct store_conn *c, const int64_t *ids, int n, struct arena *a,
	                   struct tenant *out, char *found);
	int (*tenant_by_phone)(struct store_conn *c, const char *phone_number_id, struct arena *a,
	                       struct tenant *out);
	int (*tenant_count)(struct store_conn *c, int64_t *n);
	int (*tenant_list)(struct store_conn *c, int64_t after_id, int limit, struct arena *a,
	                   struct tenant **out, int *n);
	int (*tenant_template)(struct store_conn *c, int64_t tenant_id, struct arena *a,
	                       struct tenant_template *out);
	int (*tenant_set_template)(struct store_conn *c, int64_t tenant_id, const char *name,
	                           const char *lang);
	int (*tenant_set_token_hash)(struct store_conn *c, int64_t tenant_id, const char *hash);
	int (*tenant_by_token_hash)(struct store_conn *c, const char *hash, int64_t *tenant_id);

	int (*product_upsert)(struct store_conn *c, const struct product *p, int64_t *id);
	int (*products_list)(struct store_conn *c, int64_t tenant_id, struct arena *a,
	                     struct product **out, int *n);
	int (*product_get)(struct store_conn *c, int64_t tenant_id, int64_t product_id,
	                   struct arena *a, struct product *out);
	int (*product_set_price)(struct store_conn *c, int64_t tenant_id, int64_t product_id,
	                         int64_t price_paise);
	int (*stock_move)(struct store_conn *c, int64_t tenant_id, int64_t product_id,
	                  int64_t delta, const char *reason, int64_t ref_id, int64_t *stock_after);
	int (*ledger_sum)(struct store_conn *c, int64_t tenant_id, int64_t product_id,
	                  int64_t *sum);
	int (*products_low)(struct store_conn *c, int64_t tenant_id, int64_t threshold_units,
	                    struct arena *a, struct product **out, int *n);

	int (*customer_touch)(struct store_conn *c, int64_t tenant_id, const char *wa_id,
	                      const char *name, int64_t inbound_at, struct arena *a,
	                      struct customer *out);
	int (*customer_set_state)(struct store_conn *c, int64_t tenant_id, const char *wa_id,
	                          const char *state_code);
	int (*customer_get)(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
	                    struct arena *a, struct customer *out);
	int (*customer_set_opted_out)(struct store_conn *c, int64_t tenant_id, const char *wa_id,
	                              int opted_out, int *changed);
	int (*customers_active)(struct store_conn *c, int64_t tenant_id, int64_t since,
	                        const struct customer_contact *after, int limit, struct arena *a,
	                        struct customer_contact **out, int *n);
	int (*outbox_cancel_marketing)(struct store_conn *c, int64_t tenant_id, const char *wa_id,
	                               int error_code, const char *error, int64_t now,
	                               int64_t *moved);

	int (*order_create)(struct store_conn *c, const struct order *o, int64_t *id);
	int (*order_get)(struct store_conn *c, int64_t tenant_id, int64_t order_id, struct arena *a,
	                 struct order *out);
	int (*order_last)(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
	                  struct arena *a, struct order *out);
	int (*order_last_draft)(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
	                        struct arena *a, struct order *out);
	int (*order_set_status)(struct store_conn *c, int64_t tenant_id, int64_t order_id,
	                        enum order_status from, enum order_status to);
	int (*order_set_paid)(struct store_conn *c, int64_t tenant_id, int64_t order_id, int64_t at,
	                      int64_t *paid_at);

	int (*invoice_issue)(struct store_conn *c, struct invoice *inv, struct arena *a,
	                     int64_t *id);
	int (*invoice_last)(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
	                    struct arena *a, struct invoice *out);
	int (*invoice_by_order)(struct store_conn *c, int64_t tenant_id, int64_t order_id,
	                        struct arena *a, struct invoice *out);
	int (*sales_since)(struct store_conn *c, int64_t tenant_id, int64_t since, int64_t *orders,
	                   int64_t *taxable_paise, int64_t *total_paise);

	int (*audit)(struct store_conn *c, int64_t tenant_id, const char *actor, const char *action,
	             const char *detail);

	int (*inbox_put)(struct store_conn *c, struct inbox_entry *e, int n,
	                 enum inbox_put_result *result);
	int (*inbox_pending)(struct store_conn *c, uint64_t parts, int limit, struct arena *a,
	                     struct inbox_entry **out, int *n);
	int (*inbox_done)(struct store_conn *c, int64_t id);
	int (*inbox_reopen)(struct store_conn *c, int64_t id);
	int (*inbox_failed)(struct store_conn *c, int64_t id, int max_attempts, const char *why);
	int (*inbox_depth)(struct store_conn *c, int64_t *n);
	int (*inbox_waiting)(struct store_conn *c, int limit, struct arena *a,
	                     struct inbox_waiting **out, int *n);

	int (*outbox_add)(struct store_conn *c, const struct outbox_new *o, int64_t *id);
	/* NULL: outbox_add one by one (store.c) */
	int (*outbox_add_many)(struct store_conn *c, const struct outbox_new *o, int n,
	                       int64_t *ids);
	int (*outbox_claim_to)(struct store_conn *c, int64_t now, int64_t tenant_id, const char *to,
	                       enum outbox_prio min_prio, enum outbox_prio max_prio, int limit,
	                       struct arena *a, struct outbox_row **out, int *n);
	int (*outbox_claim)(struct store_conn *c, int64_t now, int limit, enum outbox_prio max_prio,
	                    struct arena *a, struct outbox_row **out, int *n);
	int (*outbox_recover)(struct store_conn *c, int64_t resend_at, int *n);
	int (*outbox_claimed_here)(struct store_conn *c, int64_t moved_before, int limit,
	                           struct arena *a, int64_t **ids, int *n);
	int (*outbox_accepted)(struct store_conn *c, int64_t id, const char *provider_msg_id,
	                       const char *provider, int64_t now, enum outbox_state *final);
	int (*outbox_retry)(struct store_conn *c, int64_t id, int64_t next_attempt_at,
	                    int error_code, const char *error, int64_t now,
	                    enum outbox_state *landed);
	int (*outbox_fail)(struct store_conn *c, int64_t id, enum outbox_state state,
	                   int error_code, const char *error, int64_t now,
	                   enum outbox_state *landed);
	int (*outbox_defer)(struct store_conn *c, int64_t id, int64_t next_attempt_at,
	                    const char *why, int64_t now, enum outbox_state *landed);
	int (*outbox_resend)(struct store_conn *c, int64_t id, const char *provider, int64_t now,
	                     enum outbox_state *from);
	int (*outbox_waiting_by_tenant)(struct store_conn *c, enum outbox_prio min_prio, int limit,
	                                struct arena *a, struct outbox_tenant_count **out, int *n);
	int (*outbox_expire)(struct store_conn *c, enum outbox_prio min_prio,
	                     int64_t created_before, const char *why, int64_t now,
	                     int64_t moved[PRIO_COUNT]);
	int (*outbox_status)(struct store_conn *c, const struct outbox_status_update *u,
	                     struct outbox_status_result *res);
	/* NULL: store_outbox_statuses applies them one by one */
	int (*outbox_statuses)(struct store_conn *c, const struct outbox_status_update *u, int n,
	                       struct outbox_status_result *res, int *rcs);
	int (*outbox_merge)(struct store_conn *c, int64_t keeper_id, const char *body,
	                    const int64_t *merged, int n, int64_t now);
	int (*outbox_list)(struct store_conn *c, enum outbox_state st, int limit, struct arena *a,
	                   struct outbox_row **out, int *n);
	int (*outbox_counts)(struct store_conn *c, int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT]);
	int (*outbox_next_due)(struct store_conn *c, enum outbox_prio max_prio, int64_t *at);

	int (*ai_job_add)(struct store_conn *c, const struct ai_job *j, int64_t *id);
	int (*ai_job_waiting)(struct store_conn *c, int64_t tenant_id, const char *from,
	                      int *waiting);
	int (*ai_job_claim)(struct store_conn *c, int limit, struct arena *a, struct ai_job **out,
	                    int *n);
	int (*ai_job_finish)(struct store_conn *c, int64_t id, const char *outcome,
	                     const char *rewritten, int64_t now);
	int (*ai_job_release)(struct store_conn *c, int64_t id);
	int (*ai_job_recover)(struct store_conn *c, int *n);
	int (*ai_job_get)(struct store_conn *c, int64_t id, struct arena *a, struct ai_job *out);
	int (*ai_job_count)(struct store_conn *c, int64_t *n);
	int (*ocr_add)(struct store_conn *c, const struct ocr_item *o, int64_t *id);
	int (*ocr_list)(struct store_conn *c, enum ocr_state st, int64_t after_id, int limit,
	                struct arena *a, struct ocr_item **out, int *n);
	int (*ocr_done)(struct store_conn *c, int64_t id, const char *note, int64_t now);
	int (*ocr_depth)(struct store_conn *c, int64_t *n);

	int (*customer_ensure)(struct store_conn *c, int64_t tenant_id, const char *wa_id,
	                       struct arena *a, struct customer *out);
	int (*orders_list)(struct store_conn *c, int64_t tenant_id, int status, int64_t before_id,
	                   int limit, struct arena *a, struct order **out, int *n);
	int (*sync_op_get)(struct store_conn *c, int64_t tenant_id, const char *client_id,
	                   struct arena *a, struct sync_op_record *out);
	int (*sync_op_put)(struct store_conn *c, int64_t tenant_id, const struct sync_op_record *r);

	int (*node_join)(struct store_conn *c, const struct store_node *n, int64_t now,
	                 int64_t lease_ms, int64_t *id);
	int (*node_beat)(struct store_conn *c, int64_t id, int64_t now, int64_t lease_ms,
	                 int *lapsed);
	int (*node_leave)(struct store_conn *c, int64_t id, int64_t now);
	int (*nodes_live)(struct store_conn *c, int64_t now, struct arena *a,
	                  struct store_node **out, int *n);
	int (*partitions_claim)(struct store_conn *c, int64_t node, int64_t now, int64_t lease_ms,
	                        uint64_t *owned, int *share, uint64_t *taken);
	int (*partitions_release)(struct store_conn *c, int64_t node, uint64_t parts);
	/* NULL: the lock is always held (one process serves the store) */
	int (*lock_open)(struct store_lock *l, const char *url);
	int (*lock_try)(struct store_lock *l, int *held);
	void (*lock_close)(struct store_lock *l);
};

/*
 * The process-wide handle. Written once by the backend's open, except:
 *   busy_timeout_ms  set by store_set_busy_timeout before connections are
 *                    made (read by connect);
 *   unprepared       set by store_set_prepared (0: prepare) likewise;
 *   write_mu         locked by the thread whose connection is writing;
 *   node             set by store_set_node (serve, before the roles
 *                    start), read by the claims and recovery of every
 *                    connection.
 */
struct store {
	const struct store_ops *ops;
	char *url;
	int busy_timeout_ms;
	int unprepared;
	/*
	 * A single-writer backend (SQLite) queues the threads of this process
	 * here, held from BEGIN IMMEDIATE to COMMIT/ROLLBACK, so they wait on a
	 * mutex instead of polling in the database's busy handler.
	 */
	pthread_mutex_t write_mu;
	/*
	 * Commits in log order, numbered under write_mu (single-writer
	 * backends): commit_seq the last one made, durable_seq the last one
	 * known to be on disk. store_sync skips the disk when another
	 * connection's sync or ordinary commit already covered its commits.
	 */
	_Atomic int64_t commit_seq;
	_Atomic int64_t durable_seq;
	_Atomic int64_t node; /* store_set_node: the process's node, or 0 */
	void *backend;        /* the backend's own (SQLite: its checkpoint thread, or NULL) */
};

/* A lock of store_lock_new; the thread using it owns every field. */
struct store_lock {
	struct store *st;
	int64_t key;
	char *url; /* where to take it: the store's url or the caller's */
	char errmsg[STORE_ERRMSG_MAX];
	void *backend; /* the backend's session, or NULL */
};

/* One thread's connection; every field belongs to that thread. */
struct store_conn {
	const struct store_ops *ops;
	struct store *st;
	int in_txn;       /* between store_begin and commit/rollback (holds write_mu) */
	int in_savepoint; /* between store_savepoint and release/rollback_to */
	char errmsg[STORE_ERRMSG_MAX];
	void *backend;
};

/* store__cmp_claim: qsort order of claimed outbox rows (struct outbox_row),
 * the claim's own: priority, then next_attempt_at, then id. */
int store__cmp_claim(const void *pa, const void *pb);

/* store__errf records the message on c and returns err. */
int store__errf(struct store_conn *c, int err, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int store__verrf(struct store_conn *c, int err, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

/*
 * store__sqlite_open opens (creating) the SQLite database at path and puts
 * WAL mode on it. On failure *why (at least STORE_ERRMSG_MAX bytes) says why.
 */
int store__sqlite_open(const char *path, struct store **out, char *why);
/* store__pg_open: the same for a PostgreSQL url (store_pg.c). */
int store__pg_open(const char *conninfo, struct store **out, char *why);

/*
 * Nodes and partition leases, the same rules in both backends
 * (sqlite_lease.c, pg_lease.c). store__lease_share: the fair share of w
 * live worker nodes, ceil(STORE_PARTITIONS / w). store__lease_pick: up to
 * want partitions of the mask free, walking from a place of node's own (so
 * that nodes claiming at once mostly want different ones).
 */
int store__lease_share(int64_t workers);
uint64_t store__lease_pick(uint64_t free, int64_t node, int want);
/* store__popcount: the partitions in a mask. */
int store__popcount(uint64_t parts);
/* The backends' lease operations, put into their ops tables. */
int store__sq_node_join(struct store_conn *c, const struct store_node *n, int64_t now,
                        int64_t lease_ms, int64_t *id);
int store__sq_node_beat(struct store_conn *c, int64_t id, int64_t now, int64_t lease_ms,
                        int *lapsed);
int store__sq_node_leave(struct store_conn *c, int64_t id, int64_t now);
int store__sq_nodes_live(struct store_conn *c, int64_t now, struct arena *a,
                         struct store_node **out, int *n);
int store__sq_partitions_claim(struct store_conn *c, int64_t node, int64_t now, int64_t lease_ms,
                               uint64_t *owned, int *share, uint64_t *taken);
int store__sq_partitions_release(struct store_conn *c, int64_t node, uint64_t parts);
void store__pg_lease_ops(struct store_ops *ops);

#endif
