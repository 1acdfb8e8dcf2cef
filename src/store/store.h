/*
 * store.h - the one interface between munim and its database.
 *
 * Everything durable goes through here: tenants and catalogue, customers,
 * the stock ledger, orders, invoices, the inbox (received webhooks), the
 * outbox (replies to send) and the audit log. Two implementations sit
 * behind the ops table: SQLite (embedded, store_sqlite.c) and, later,
 * PostgreSQL. Nothing outside src/store/ includes a database header.
 *
 * Handles and threads
 *   struct store        one per process (store_open); thread-safe; owns the
 *                       configuration and whatever the backend shares.
 *   struct store_conn   one per thread (store_connect); never shared.
 *
 * Transactions
 *   Writes happen between store_begin and store_commit on a connection.
 *   store_savepoint / store_release / store_rollback_to nest one message's
 *   work inside a batch transaction, so that many messages share one commit
 *   (and one fsync) while each stays all-or-nothing.  Read functions may be
 *   called inside or outside a transaction.
 *
 * Memory
 *   Functions that return rows take a struct arena; every string and array
 *   in the result lives in that arena and dies with it.
 *
 * Errors
 *   0 or a negative ERR_* (core/err.h).  ERR_AGAIN: locked/busy, the caller
 *   may retry; ERR_FULL: disk full; ERR_NOTFOUND: no such row; ERR_CONFLICT:
 *   a rule was violated (short stock, duplicate key).  store_errmsg() holds
 *   the text of the last error on that connection.
 *
 * Money is integer paise, stock integer base units, times epoch milliseconds.
 */
#ifndef MUNIM_STORE_H
#define MUNIM_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

struct store;
struct store_conn;

/* Number of queue partitions; a tenant's rows live in store_partition(id). */
#define STORE_PARTITIONS 64
int store_partition(int64_t tenant_id);
/*
 * A set of partitions is a mask: bit p stands for partition p.
 * store_partition_slice gives the partitions p with p % nslices == slice
 * (0 when slice is not in 0..nslices-1, or nslices not in 1..64).
 */
#define STORE_ALL_PARTITIONS UINT64_MAX
uint64_t store_partition_slice(int slice, int nslices);
/*
 * store_outbox_cmp orders outbox row ids as every writer that takes several
 * rows in one transaction takes them (the sender's outcomes, the ingest
 * committer's delivery statuses, a statement over the whole outbox): by
 * partition, then id. Two such transactions on the same rows wait for each
 * other and never deadlock. <0, 0 or >0, as for qsort. (A PostgreSQL row
 * id carries its partition, id % STORE_PARTITIONS; SQLite has one writer
 * at a time, so any fixed order serves it.)
 */
int store_outbox_cmp(int64_t a, int64_t b);

/* ---- rows ---------------------------------------------------------- */

struct tenant {
	int64_t id;
	const char *name;
	const char *phone_number_id; /* WhatsApp phone_number_id, unique */
	const char *gstin;           /* may be "" for unregistered shops */
	const char *state_code;      /* two-digit GST state code, e.g. "27" */
	const char *upi_id;          /* VPA for pay links, e.g. "shop@upi" */
	const char *owner_numbers;   /* comma-separated wa_ids of the owners */
	const char *address;
	int64_t created_at;
	int64_t catalog_rev; /* read only: changes with every change to its products */
};

struct customer {
	int64_t id;
	int64_t tenant_id;
	const char *wa_id;
	const char *name;
	const char *state_code; /* "" = unknown: place of supply is the shop's state */
	int64_t last_inbound_at;
};

struct product {
	int64_t id;
	int64_t tenant_id;
	const char *sku;
	const char *name;
	const char *aliases;   /* comma-separated, lower case: "chawal,basmati" */
	const char *unit;      /* selling unit: "kg", "g", "l", "ml", "pc", "packet" */
	int64_t base_per_unit; /* base units in one selling unit: kg→1000 (g) */
	int64_t price_paise;   /* pre-tax price of one selling unit */
	int gst_rate_bp;       /* GST rate in basis points: 500 = 5 % */
	const char *hsn;
	int64_t stock; /* base units on hand */
};

enum order_status {
	ORDER_DRAFT = 0,
	ORDER_CONFIRMED = 1,
	ORDER_CANCELLED = 2,
};

struct order_line {
	int64_t product_id;
	const char *name; /* product name at order time */
	const char *unit;
	int64_t base_per_unit;
	int64_t qty_base;    /* quantity in base units */
	int64_t price_paise; /* per selling unit, at order time */
	int gst_rate_bp;
	const char *hsn;
	int64_t amount_paise; /* taxable value of the line */
};

struct order {
	int64_t id;
	int64_t tenant_id;
	int64_t customer_id;
	enum order_status status;
	int64_t total_paise; /* taxable total (before tax) */
	int64_t created_at;
	int64_t updated_at;
	int64_t paid_at; /* when the owner marked it paid (store_order_set_paid); 0: not */
	int nlines;
	struct order_line *lines;
};

struct invoice {
	int64_t id;
	int64_t tenant_id;
	int64_t order_id;
	int64_t customer_id;
	const char *number; /* e.g. "INV/2526/000042", gapless per tenant+FY */
	const char *fy;     /* financial year code, "2526" for 2025-26 */
	int64_t seq;        /* the gapless sequence within tenant+FY */
	int64_t issued_at;
	int intra_state;             /* 1: CGST+SGST, 0: IGST */
	const char *place_of_supply; /* state code */
	int64_t taxable_paise;
	int64_t cgst_paise;
	int64_t sgst_paise;
	int64_t igst_paise;
	int64_t round_off_paise; /* signed, so that total is whole rupees */
	int64_t total_paise;
};

enum inbox_kind {
	INBOX_MESSAGE = 1, /* a customer's message */
	INBOX_STATUS = 2,  /* a delivery status of one of our messages */
};

enum inbox_state {
	INBOX_PENDING = 0,
	INBOX_DONE = 1,
	INBOX_FAILED = 2, /* gave up after repeated processing errors */
};

struct inbox_entry {
	int64_t id; /* assigned by the store, monotonic */
	int64_t tenant_id;
	enum inbox_kind kind;
	const char *ext_id;      /* message: wamid; status: the wamid it is about */
	const char *status;      /* status kind: sent/delivered/read/failed; else "" */
	const char *from;        /* message: customer wa_id; status: recipient_id */
	const char *name;        /* contact profile name, may be "" */
	const char *type;        /* message type: text, interactive, button, image... */
	const char *body;        /* text body, or reply/button id for taps; "" if none */
	const char *context_id;  /* message answered (context.id), may be "" */
	const char *media_id;    /* image, video, document...: Cloud API media id, or "" */
	const char *media_mime;  /* its mime_type, or "" */
	int64_t sent_at;         /* the sender's timestamp, epoch ms */
	int64_t received_at;     /* when munim received it, epoch ms */
	int error_code;          /* status kind: errors[0].code, else 0 */
	const char *error_title; /* status kind: errors[0].title, else "" */
	/* status kind: biz_opaque_callback_data the provider echoed from our
	 * send (our outbox row, see send/wamsg.h), else "" */
	const char *callback_data;
	enum inbox_state state;
	int attempts;
};

enum outbox_prio { PRIO_P0 = 0, PRIO_P1 = 1, PRIO_P2 = 2, PRIO_P3 = 3 };
#define PRIO_COUNT 4

/*
 * Outbox row life (see send/sender.c):
 *
 *   PENDING --claim--> SENDING --2xx--> ACCEPTED --status--> SENT/DELIVERED/READ
 *      ^                  |  \--4xx permanent--> FAILED
 *      +---retryable------+   \--attempts exhausted--> DEAD
 *   SENDING rows of a sender that died (a crash mid-send) go back to
 *   PENDING, due after a grace, at its successor's start-up or once its
 *   node's lease has expired (store_outbox_recover); a status naming one
 *   (row hint) claims it first. A live sender puts back, due now, the rows
 *   of its node it does not hold - a claim that happened though its answer
 *   was lost with the connection (store_outbox_claimed_here, then
 *   store_outbox_defer).
 *   A status arriving while a row is SENDING is kept aside and applied when
 *   the answer is recorded (or at start-up).
 *   A "failed" status webhook moves ACCEPTED/SENT/DELIVERED to FAILED.
 *   SENDING --store_outbox_merge--> MERGED (terminal): under a traffic
 *   spike its text went out inside another reply to the same customer
 *   (merged_into, send/aggregate.c); it is never recovered or sent again.
 */
enum outbox_state {
	OUTBOX_PENDING = 0,
	OUTBOX_SENDING = 1,
	OUTBOX_ACCEPTED = 2,
	OUTBOX_SENT = 3,
	OUTBOX_DELIVERED = 4,
	OUTBOX_READ = 5,
	OUTBOX_FAILED = 6,
	OUTBOX_DEAD = 7,
	OUTBOX_MERGED = 8,
};
#define OUTBOX_STATE_COUNT 9
const char *outbox_state_name(enum outbox_state s);
const char *outbox_prio_name(enum outbox_prio p);

struct outbox_row {
	int64_t id;
	int64_t tenant_id;
	enum outbox_prio priority;
	enum outbox_state state;
	const char *phone_number_id; /* the shop's number it goes out from */
	const char *to;              /* recipient wa_id */
	const char *reply_to;        /* inbound wamid it answers ("" if none) */
	const char *body;            /* complete Cloud API request body (JSON) */
	int attempts;
	int64_t next_attempt_at; /* epoch ms */
	int64_t created_at;
	int64_t inbound_received_at; /* received_at of the message answered, 0 if none */
	const char *provider_msg_id; /* "" until accepted */
	/* accepted: the provider that took it ("bsp1", "sms"...); pending: a
	 * provider the row must go through ("sms" after WhatsApp failed it),
	 * or "" for any */
	const char *provider;
	int last_error_code;
	const char *last_error;
	int64_t updated_at;
	int64_t merged_into; /* MERGED: the row whose send carries its text; else 0 */
};

/* A new outbox row; the store fills id, state, attempts and times. */
struct outbox_new {
	int64_t tenant_id;
	enum outbox_prio priority;
	const char *phone_number_id;
	const char *to;
	const char *reply_to;
	const char *body;
	int64_t inbound_received_at;
	/* 1: the row is born claimed (SENDING, attempt 1, the store's node)
	 * for a sender that took it directly (sender_reserve); 0: PENDING,
	 * claimed later */
	int claimed;
};

/* Result of offering an entry to the inbox. */
enum inbox_put_result { INBOX_PUT_NEW = 0, INBOX_PUT_DUPLICATE = 1 };

/* ---- lifecycle ------------------------------------------------------ */

/*
 * store_open opens the store named by url: a SQLite file path (created if
 * needed), or a PostgreSQL url (postgres:// or postgresql://, anything
 * libpq takes: several hosts and target_session_attrs=read-write for a
 * failover), whose server must answer now. It does not migrate. The handle
 * is thread-safe.
 */
int store_open(const char *url, struct store **out);
/*
 * store_url_display writes url into buf (cap bytes) with any password
 * replaced by "***" (user:password@ of a url, password=... of a
 * connection string), for messages and logs; returns buf.
 */
const char *store_url_display(const char *url, char *buf, size_t cap);
#define STORE_URL_SHOWN 512 /* a buffer for it (longer urls are cut) */
void store_close(struct store *st);
/* How long a connection made after this call waits for another process's
 * write lock before giving up with ERR_AGAIN (ms, >= 0). */
void store_set_busy_timeout(struct store *st, int ms);
/*
 * store_set_prepared: whether connections made after this call prepare each
 * statement once and run it by name from then on (1, the default), or send
 * its text every time (0). PostgreSQL: prepared statements are planned once
 * (a generic plan), which is most of a statement's cost over partitioned
 * tables; a pooler in transaction mode that cannot carry them (PgBouncer
 * before 1.21) needs 0. SQLite prepares either way.
 */
void store_set_prepared(struct store *st, int on);
/*
 * store_checkpoint_in_background: from now on the log the store writes
 * ahead (SQLite's WAL) is copied into the database by a thread of the
 * store's own instead of inside the commit that fills it, so no commit
 * waits for that copy. Applies to connections made after the call (call
 * it before starting the threads that connect); store_close stops the
 * thread. 0 or the reason it could not start (logged).
 */
int store_checkpoint_in_background(struct store *st);
/* store_checkpoints: checkpoints the background thread has completed. */
int64_t store_checkpoints(const struct store *st);
/* store_memory_bytes: the memory the database library holds for this
 * process now (SQLite: page caches, statements, schema), or 0 if unknown. */
int64_t store_memory_bytes(const struct store *st);
/* store_connect opens a connection for the calling thread. */
int store_connect(struct store *st, struct store_conn **out);
/*
 * store_set_replicas names read replicas (urls, comma-separated; PostgreSQL
 * only, ignored by SQLite) for store_connect_read, and how far behind the
 * primary one may be (ms) to be used. Call before connections are made.
 */
void store_set_replicas(struct store *st, const char *urls, int max_lag_ms);

/* New work another process committed: inbox entries, or outbox rows. */
enum store_wake { STORE_WAKE_INBOX = 0, STORE_WAKE_OUTBOX = 1, STORE_WAKE_COUNT = 2 };
/* parts: the partitions the work is in (a mask, store_partition_slice);
 * all ones when not known */
typedef void (*store_wake_fn)(void *arg, enum store_wake what, uint64_t parts);
/*
 * store_listen_start: from now on fn(arg, what, parts) is called (on a
 * thread of the store's) soon after any process commits new work of that
 * kind, and once more, for every partition, after a lost listening
 * connection came back. Inbox work names its partitions. url: where to
 * listen (PostgreSQL; "" or NULL: the store's url; it must reach the
 * server itself, not a transaction-mode PgBouncer). SQLite: nothing to do
 * (one process commits; its own notifies suffice). One listener per store;
 * store_listen_stop ends it (before store_close).
 */
int store_listen_start(struct store *st, const char *url, store_wake_fn fn, void *arg);
void store_listen_stop(struct store *st);
/*
 * store_connect_read: a connection for reads that may be a little stale
 * (stock lists, order and invoice lookups for a shop's app, reports): to a
 * replica within the lag bound when one is configured and up, else to the
 * primary like store_connect. It checks its replica's lag between
 * transactions and moves (to another replica, or the primary) when it
 * falls behind. Never write through it; anything that must see its own
 * write uses store_connect.
 */
int store_connect_read(struct store *st, struct store_conn **out);
void store_disconnect(struct store_conn *c);
/* Text of the last error on c (never NULL). */
const char *store_errmsg(const struct store_conn *c);

/* store_migrate applies every migration not yet applied, in order; *applied
 * gets how many ran (may be NULL). Idempotent. */
int store_migrate(struct store_conn *c, int *applied);
/* store_schema_version: the highest migration applied (0 on a new store). */
int store_schema_version(struct store_conn *c, int *version);
/*
 * store_maintain does the store's housekeeping that time needs: the audit
 * log's partitions for this month and the next three (PostgreSQL; SQLite
 * has nothing to do). *made: partitions made now. Safe to run from several
 * processes at once; run hourly by the controller.
 */
int store_maintain(struct store_conn *c, int *made);

/* ---- transactions ---------------------------------------------------- */

/*
 * store_set_lazy_commits(c, 1): c's commits no longer wait for the disk.
 * Such a commit is atomic and visible at once; it becomes durable when any
 * later ordinary commit on any connection returns (all share one log,
 * written in order), and a crash of the machine before that loses it as a
 * whole, never in part. For work that is redone from durable input if lost
 * (the workers: their inbox entries stay pending until a commit that did
 * reach the disk), never for an answer promised to someone outside. A
 * process crash loses nothing either way. (SQLite: synchronous=NORMAL on
 * this connection.) 0 or the store's error; not inside a transaction.
 */
int store_set_lazy_commits(struct store_conn *c, int lazy);
/*
 * store_shared_writers: 1 when connections write side by side (a server,
 * PostgreSQL), 0 when one writes at a time (SQLite). A lazy commit and a
 * store_sync pay off with one writer at a time, which does not wait for the
 * disk while holding the lock; with writers side by side an ordinary
 * commit gives the same in one round trip instead of two.
 */
int store_shared_writers(const struct store *st);
/*
 * store_sync makes every commit made so far through c durable - lazy ones
 * too, and with them all that any connection committed before them (they
 * share one log). Called outside a transaction, it waits for the disk
 * without holding the writer lock, so other connections write meanwhile:
 * a lazy commit followed by store_sync is an ordinary commit that does not
 * keep the next writer waiting for the disk. 0, ERR_INVAL inside a
 * transaction, or ERR_IO.
 */
int store_sync(struct store_conn *c);

int store_begin(struct store_conn *c);
int store_commit(struct store_conn *c);
int store_rollback(struct store_conn *c);
int store_savepoint(struct store_conn *c);
int store_release(struct store_conn *c);
int store_rollback_to(struct store_conn *c);

/* ---- tenants and catalogue ------------------------------------------ */

/* store_tenant_add inserts t (t->id ignored); *id gets the new id.
 * ERR_CONFLICT if the phone_number_id is taken. */
int store_tenant_add(struct store_conn *c, const struct tenant *t, int64_t *id);
int store_tenant_get(struct store_conn *c, int64_t id, struct arena *a, struct tenant *out);
/*
 * store_tenants_get reads the tenants ids[0..n) (n <= STORE_MAX_BATCH), in
 * one statement where the store has a server: out[i] is the tenant ids[i],
 * found[i] 1; found[i] 0 when there is no such tenant (not an error).
 */
int store_tenants_get(struct store_conn *c, const int64_t *ids, int n, struct arena *a,
                      struct tenant *out, char *found);
int store_tenant_by_phone(struct store_conn *c, const char *phone_number_id, struct arena *a,
                          struct tenant *out);
int store_tenant_count(struct store_conn *c, int64_t *n);
/* Up to limit tenants with id > after_id, in id order (for paging). */
int store_tenant_list(struct store_conn *c, int64_t after_id, int limit, struct arena *a,
                      struct tenant **out, int *n);

/* The shop's approved WhatsApp template for marketing outside the 24-hour
 * window (`munim tenant set --template`); name "" when none is set. */
struct tenant_template {
	const char *name; /* e.g. "weekly_offer" */
	const char *lang; /* e.g. "en", "hi", "en_US" */
};
/* store_tenant_template reads it (strings in a); ERR_NOTFOUND: no tenant. */
int store_tenant_template(struct store_conn *c, int64_t tenant_id, struct arena *a,
                          struct tenant_template *out);
/* store_tenant_set_template sets both (name "" clears the template);
 * ERR_NOTFOUND: no tenant. */
int store_tenant_set_template(struct store_conn *c, int64_t tenant_id, const char *name,
                              const char *lang);
/*
 * The merchant API's token is kept only as its SHA-256 (64 lower-case hex
 * digits): store_tenant_set_token_hash replaces the tenant's (ERR_NOTFOUND:
 * no tenant), store_tenant_by_token_hash finds the tenant holding one
 * (ERR_NOTFOUND: none). ERR_INVAL for anything but 64 lower-case hex digits.
 */
#define STORE_TOKEN_HASH_LEN 64
int store_tenant_set_token_hash(struct store_conn *c, int64_t tenant_id, const char *hash);
int store_tenant_by_token_hash(struct store_conn *c, const char *hash, int64_t *tenant_id);

/* store_product_upsert inserts p or, when (tenant, sku) exists, updates its
 * name, aliases, unit, price, rate and HSN; stock is never set here (it
 * moves only through the ledger). *id gets the product id. */
int store_product_upsert(struct store_conn *c, const struct product *p, int64_t *id);
/* All products of a tenant, ordered by name. */
int store_products_list(struct store_conn *c, int64_t tenant_id, struct arena *a,
                        struct product **out, int *n);
int store_product_get(struct store_conn *c, int64_t tenant_id, int64_t product_id, struct arena *a,
                      struct product *out);
int store_product_set_price(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                            int64_t price_paise);

/*
 * store_stock_move appends (delta, reason, ref) to the stock ledger and
 * applies delta to the product's stock in the same statement group.
 * ERR_CONFLICT if the stock would go below zero (nothing changes).
 * *stock_after may be NULL.
 */
int store_stock_move(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t delta,
                     const char *reason, int64_t ref_id, int64_t *stock_after);
/* Sum of the ledger for one product (for checks: must equal its stock). */
int store_ledger_sum(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t *sum);

/* ---- customers -------------------------------------------------------- */

/* store_customer_touch finds or creates (tenant, wa_id), updates its name
 * (when name is not empty) and last_inbound_at; fills *out. To spare a
 * write per message, last_inbound_at is kept to within
 * STORE_INBOUND_SLACK_MS: a message that soon after the recorded one (and
 * no new name) leaves the row as it is - the recorded time is then at most
 * that much early, which only ever shortens a window counted from it. */
#define STORE_INBOUND_SLACK_MS 60000
int store_customer_touch(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                         const char *name, int64_t inbound_at, struct arena *a,
                         struct customer *out);
int store_customer_set_state(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                             const char *state_code);
/* store_customer_get reads customer customer_id of the tenant; ERR_NOTFOUND. */
int store_customer_get(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                       struct arena *a, struct customer *out);
/*
 * store_customer_set_opted_out records that (tenant, wa_id) asked for no
 * more marketing (opted_out 1: "stop") or asked for it again (0: "start").
 * *changed (may be NULL) is 1 when the flag changed. ERR_NOTFOUND: no such
 * customer.
 */
int store_customer_set_opted_out(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                 int opted_out, int *changed);
/* Who a broadcast may reach: one customer, in (last_inbound_at, id) order. */
struct customer_contact {
	int64_t id;
	const char *wa_id;
	int64_t last_inbound_at;
	int opted_out;
};
/*
 * store_customers_active reads up to limit (1..STORE_MAX_BATCH) customers of
 * the tenant who wrote at or after `since`, opted out or not, ordered by
 * (last_inbound_at, id), starting after *after (NULL: from the first) -
 * pass the last row of one page to get the next.
 */
int store_customers_active(struct store_conn *c, int64_t tenant_id, int64_t since,
                           const struct customer_contact *after, int limit, struct arena *a,
                           struct customer_contact **out, int *n);
/*
 * store_outbox_cancel_marketing: the tenant's PENDING P3 (marketing) rows
 * to wa_id go to FAILED with error_code and error (an opt-out: 131050,
 * "recipient opted out"), counted in outbox_counts like any move; *moved
 * gets how many (all of PRIO_P3, from PENDING to FAILED: the caller moves
 * its gauges once its transaction has committed). Rows already claimed
 * are in flight and left alone.
 */
int store_outbox_cancel_marketing(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                  int error_code, const char *error, int64_t now, int64_t *moved);

/* ---- orders and invoices ---------------------------------------------- */

/* store_order_create inserts o with its lines (o->id ignored); *id gets it. */
int store_order_create(struct store_conn *c, const struct order *o, int64_t *id);
int store_order_get(struct store_conn *c, int64_t tenant_id, int64_t order_id, struct arena *a,
                    struct order *out);
/* The customer's most recent order in any status; ERR_NOTFOUND if none. */
int store_order_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id, struct arena *a,
                     struct order *out);
/* The customer's most recent draft; ERR_NOTFOUND if none. */
int store_order_last_draft(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct order *out);
/* Moves an order from status `from` to `to`; ERR_CONFLICT if it was not in
 * `from` (a second Confirm tap finds the order already confirmed). */
int store_order_set_status(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                           enum order_status from, enum order_status to);
/*
 * store_order_set_paid records that a CONFIRMED order was paid at `at`
 * (> 0). ERR_NOTFOUND: no such order; ERR_CONFLICT: it is not confirmed,
 * or was marked paid already (then *paid_at, which may be NULL, gets when).
 */
int store_order_set_paid(struct store_conn *c, int64_t tenant_id, int64_t order_id, int64_t at,
                         int64_t *paid_at);

/*
 * store_invoice_issue takes the next number of (tenant, inv->fy) from the
 * gapless counter and inserts the invoice; inv->seq and inv->number are
 * filled in by the store (number = "<prefix><fy>/<seq as 6 digits>", prefix
 * "INV/"), *id gets the id. Must run inside a transaction: a rollback
 * returns the number, so the series has no gaps.
 */
int store_invoice_issue(struct store_conn *c, struct invoice *inv, struct arena *a, int64_t *id);
int store_invoice_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                       struct arena *a, struct invoice *out);
int store_invoice_by_order(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                           struct arena *a, struct invoice *out);

/* Products whose stock is at or below threshold base units... expressed in
 * selling units: stock < threshold_units * base_per_unit. */
int store_products_low(struct store_conn *c, int64_t tenant_id, int64_t threshold_units,
                       struct arena *a, struct product **out, int *n);
/* Confirmed orders and invoiced totals since `since` (epoch ms). */
int store_sales_since(struct store_conn *c, int64_t tenant_id, int64_t since, int64_t *orders,
                      int64_t *taxable_paise, int64_t *total_paise);

/* ---- audit ------------------------------------------------------------- */

int store_audit(struct store_conn *c, int64_t tenant_id, const char *actor, const char *action,
                const char *detail);

/* ---- inbox -------------------------------------------------------------- */

/*
 * store_inbox_put offers n entries in the caller's transaction; each is
 * deduplicated by (ext_id, status) and result[i] says whether it was new.
 * A new entry's id is set in e[i].id (a duplicate's to 0), its attempts to
 * 0. Entries' partitions come from their tenant. Each starts in e[i].state:
 * PENDING, or DONE for one its caller processes in this same transaction
 * (it then never passes through the pending index, and needs no
 * store_inbox_done); store_inbox_reopen makes such an entry pending after
 * all if it is not processed. Any other state is ERR_INVAL.
 */
int store_inbox_put(struct store_conn *c, struct inbox_entry *e, int n,
                    enum inbox_put_result *result);
/*
 * store_inbox_pending reads up to limit pending entries of the partitions
 * in the mask parts (bit p: partition p; see store_partition_slice),
 * oldest first (per-customer order follows); an empty mask reads nothing.
 */
int store_inbox_pending(struct store_conn *c, uint64_t parts, int limit, struct arena *a,
                        struct inbox_entry **out, int *n);
int store_inbox_done(struct store_conn *c, int64_t id);
/* store_inbox_reopen: a DONE entry back to PENDING (no change in another state). */
int store_inbox_reopen(struct store_conn *c, int64_t id);
/* Records a processing failure; after max_attempts the entry is FAILED. */
int store_inbox_failed(struct store_conn *c, int64_t id, int max_attempts, const char *why);
int store_inbox_depth(struct store_conn *c, int64_t *n);
/* Whose message waits: a shop and a customer's wa_id. */
struct inbox_waiting {
	int64_t tenant_id;
	const char *from;
};
/*
 * store_inbox_waiting reads whose message entries are pending, one item per
 * entry, in no particular order, into *out (from a; *n items). ERR_TOOBIG,
 * with nothing read, when more than limit entries wait.
 */
int store_inbox_waiting(struct store_conn *c, int limit, struct arena *a,
                        struct inbox_waiting **out, int *n);

/* ---- outbox -------------------------------------------------------------- */

int store_outbox_add(struct store_conn *c, const struct outbox_new *o, int64_t *id);
/*
 * store_outbox_add_many queues n rows (at most STORE_MAX_BATCH) as
 * store_outbox_add would one by one, all or none, in the caller's
 * transaction (or one of its own): ids[i] is o[i]'s id. PostgreSQL sends
 * them in one statement (a broadcast's page of customers).
 */
int store_outbox_add_many(struct store_conn *c, const struct outbox_new *o, int n, int64_t *ids);
/* Longest provider name kept on a row, with its NUL. */
#define OUTBOX_PROVIDER_MAX 16

/*
 * store_outbox_claim moves up to limit PENDING rows of priority max_prio
 * or higher (P0..max_prio) due at or before now to SENDING and returns
 * them, highest priority (P0) first, then oldest. Runs its own
 * transaction. Every claim (this one, store_outbox_claim_to, a row born
 * claimed) records the store's node (store_set_node; 0: none) on the row:
 * whose send it is, for store_outbox_recover.
 */
int store_outbox_claim(struct store_conn *c, int64_t now, int limit, enum outbox_prio max_prio,
                       struct arena *a, struct outbox_row **out, int *n);
/*
 * store_outbox_claim_to claims, as store_outbox_claim, up to limit PENDING
 * rows due by now of priority min_prio..max_prio going from tenant_id to
 * the recipient `to` (the sender's aggregation gathers a customer's waiting
 * replies), oldest first. Its own transaction.
 */
int store_outbox_claim_to(struct store_conn *c, int64_t now, int64_t tenant_id, const char *to,
                          enum outbox_prio min_prio, enum outbox_prio max_prio, int limit,
                          struct arena *a, struct outbox_row **out, int *n);
/*
 * store_outbox_recover takes back the sends that a dead process left
 * SENDING (it crashed mid-send): those that a delivery status already
 * proved accepted take that status; the others go back to PENDING, due no
 * earlier than resend_at, so that the provider's statuses for sends it did
 * accept can claim them first (store_outbox_status with row_hint); *n how
 * many went back to PENDING.
 *
 * Whose rows: the SENDING rows claimed by a node that is not live at the
 * store's clock (its lease expired, it left, or it is not in the nodes
 * table: node 0, rows claimed before nodes existed), and those of an
 * earlier run of this store's own node (the same name, a smaller id: this
 * process is its successor, and has replayed its send journal first).
 * Never a live node's rows - they may be in flight now - and never the
 * rows of this store's own node (store_set_node), so a process may call
 * it while it sends, to pick up a dead sender's rows. Without a node
 * (store_set_node never called) every SENDING row not claimed by a live
 * node is taken, as by a process alone with its store.
 */
int store_outbox_recover(struct store_conn *c, int64_t resend_at, int *n);
/*
 * store_outbox_claimed_here gives in *ids (in a) up to limit ids of the
 * SENDING rows claimed by this store's node (store_set_node; 0 when none
 * is set) that last moved before moved_before, oldest first; *n of them.
 * The sender compares them with the rows it holds: one it does not hold
 * lost its claim's answer (sender.c, release_lost).
 */
int store_outbox_claimed_here(struct store_conn *c, int64_t moved_before, int limit,
                              struct arena *a, int64_t **ids, int *n);
/*
 * store_outbox_accepted, _retry and _fail record the outcome of one send of
 * a SENDING row (fail also takes a PENDING one): the provider's answer, a
 * retry at next_attempt_at, or FAILED (permanent error) / DEAD (attempts
 * used up). *landed (may be NULL) gets the state the row took: the one
 * asked for, unless a delivery status overtook the answer (see
 * store_outbox_status) - the provider accepted that send, so the row takes
 * the status instead and is never sent again. ERR_CONFLICT if the row is
 * not in a state the outcome applies to.
 */
int store_outbox_accepted(struct store_conn *c, int64_t id, const char *provider_msg_id,
                          const char *provider, int64_t now, enum outbox_state *landed);
/* A P3 row going back to PENDING (retry, defer) while its customer has opted
 * out lands FAILED (131050, "recipient opted out") instead. */
int store_outbox_retry(struct store_conn *c, int64_t id, int64_t next_attempt_at, int error_code,
                       const char *error, int64_t now, enum outbox_state *landed);
int store_outbox_fail(struct store_conn *c, int64_t id, enum outbox_state state, int error_code,
                      const char *error, int64_t now, enum outbox_state *landed);
/*
 * store_outbox_defer puts a SENDING row that was never sent (no provider
 * could take it now) back to PENDING, due at next_attempt_at, giving back
 * the attempt its claim counted; why becomes its last error. *landed as
 * above. ERR_CONFLICT if the row is not SENDING.
 */
int store_outbox_defer(struct store_conn *c, int64_t id, int64_t next_attempt_at, const char *why,
                       int64_t now, enum outbox_state *landed);
/*
 * store_outbox_resend queues row id again, due now, to go only through
 * provider (e.g. "sms" after WhatsApp failed it): from PENDING, ACCEPTED,
 * SENT, DELIVERED or FAILED (not SENDING, READ or DEAD), forgetting its
 * provider message id and starting its attempts afresh. A pinned row is no
 * longer a send in doubt: a late status of its old send cannot claim it
 * by row hint (store_outbox_status). *from (may be NULL) gets the state it
 * left.
 * ERR_CONFLICT in another state, ERR_NOTFOUND if there is no such row.
 */
int store_outbox_resend(struct store_conn *c, int64_t id, const char *provider, int64_t now,
                        enum outbox_state *from);
/*
 * store_outbox_expire moves PENDING rows of priority min_prio or lower
 * (min_prio..P3) created before created_before to DEAD, with why as their
 * last error; moved[p] gets how many of priority p went.
 */
/* How many rows one tenant has waiting (store_outbox_waiting_by_tenant). */
struct outbox_tenant_count {
	int64_t tenant_id;
	int64_t n;
};
/*
 * store_outbox_waiting_by_tenant: the tenants with PENDING rows of priority
 * min_prio or lower, with their counts, most rows first, at most limit of
 * them; in a. Reads inside the caller's transaction when there is one.
 */
int store_outbox_waiting_by_tenant(struct store_conn *c, enum outbox_prio min_prio, int limit,
                                   struct arena *a, struct outbox_tenant_count **out, int *n);
int store_outbox_expire(struct store_conn *c, enum outbox_prio min_prio, int64_t created_before,
                        const char *why, int64_t now, int64_t moved[PRIO_COUNT]);
/* A delivery status from the provider (a status webhook). */
struct outbox_status_update {
	int64_t tenant_id;           /* the shop whose number sent it; 0: any (an SMS report) */
	const char *provider_msg_id; /* the wamid the status is about */
	int64_t row_hint;            /* our row id echoed back (biz_opaque_callback_data), or 0 */
	enum outbox_state state;     /* SENT, DELIVERED, READ or FAILED */
	int error_code;              /* for FAILED: errors[0].code */
	const char *error;           /* for FAILED: errors[0].title */
	int64_t at;                  /* epoch ms */
};

/* What store_outbox_status did. */
struct outbox_status_result {
	int64_t id;                 /* the row */
	enum outbox_state from, to; /* equal when the status was stale or kept aside */
	enum outbox_prio prio;
	char provider[OUTBOX_PROVIDER_MAX]; /* the provider that accepted it, or "" */
};

/*
 * store_outbox_status applies u to the tenant's row that carries
 * u->provider_msg_id. When none does but u->row_hint names a row of the
 * tenant PENDING with no provider id and not pinned to a provider - a send the provider accepted
 * but munim never heard the answer of (a crash mid-send, or a timeout) - that row takes the
 * provider id and the status, so it is not sent again. A row still SENDING (its answer not yet
 * recorded) keeps the status aside and takes it when the answer is recorded (store_outbox_accepted)
 * or at start-up (store_outbox_recover); the move reported is then none. States only move forward
 * (accepted < sent < delivered < read; failed is terminal). *res (may be NULL) reports the row and
 * its move. ERR_NOTFOUND if no row matches.
 */
int store_outbox_status(struct store_conn *c, const struct outbox_status_update *u,
                        struct outbox_status_result *res);
/*
 * store_outbox_statuses applies u[0..n) as store_outbox_status would one by
 * one, in the caller's transaction (outside one, each statement commits on
 * its own), except that two
 * statuses of one row may apply in either order (they only move it
 * forward): rcs[i] is 0 or ERR_NOTFOUND, res[i] what u[i] did. Returns 0,
 * or the store's error (then some may have been applied: the caller's
 * transaction rolls back). PostgreSQL applies the statuses that name their
 * row (row_hint) in one statement a partition.
 */
int store_outbox_statuses(struct store_conn *c, const struct outbox_status_update *u, int n,
                          struct outbox_status_result *res, int *rcs);
/*
 * store_outbox_merge folds n SENDING rows (merged[]) into the SENDING row
 * keeper_id, in one transaction: the keeper's body becomes body (one
 * message carrying all their texts); each merged row goes to MERGED with
 * merged_into = keeper_id, the attempt its claim counted given back.
 * Every row must be SENDING, of the keeper's tenant, business number and
 * recipient, and not yet known to the provider (no provider message id, no
 * status kept aside). ERR_INVAL: bad arguments (n outside
 * 1..STORE_MAX_BATCH, an empty body, the keeper among merged[]);
 * ERR_NOTFOUND: a row does not exist; ERR_CONFLICT: a row breaks the rules
 * above (then nothing changed).
 */
int store_outbox_merge(struct store_conn *c, int64_t keeper_id, const char *body,
                       const int64_t *merged, int n, int64_t now);
/* Rows in one state (e.g. OUTBOX_DEAD), newest first, at most limit. */
int store_outbox_list(struct store_conn *c, enum outbox_state st, int limit, struct arena *a,
                      struct outbox_row **out, int *n);
/*
 * Rows by [priority][state], for the metrics: kept by the store as rows
 * change (in their own transactions), so reading them costs the same
 * however large the history.
 */
int store_outbox_counts(struct store_conn *c, int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT]);
/* The earliest next_attempt_at among PENDING rows of P0..max_prio; 0 if none. */
int store_outbox_next_due(struct store_conn *c, enum outbox_prio max_prio, int64_t *at);

/* ---- AI jobs and the OCR queue (sqlite_ai.c; see src/ai/ai.h) ------------------ */

/*
 * An AI job: an inbound message the ERP handed to the AI thread instead of
 * answering it in its own transaction. REWRITE: the local parser could not
 * read the text, the endpoint is asked to rewrite it into a command; PLAIN:
 * the message waits behind an earlier job of its customer and runs as
 * typed, so each customer's messages are still answered in order.
 *
 *   store_ai_job_add ──▶ PENDING ── store_ai_job_claim ──▶ CLAIMED
 *   CLAIMED ── store_ai_job_finish (with the ERP's effects) ──▶ DONE
 *   CLAIMED ── store_ai_job_release / store_ai_job_recover ──▶ PENDING
 */
enum ai_job_kind { AI_JOB_REWRITE = 0, AI_JOB_PLAIN = 1 };
enum ai_job_state { AI_JOB_PENDING = 0, AI_JOB_CLAIMED = 1, AI_JOB_DONE = 2 };

struct ai_job {
	int64_t id;
	int64_t tenant_id;
	enum ai_job_kind kind;
	enum ai_job_state state;
	const char *ext_id; /* the inbound wamid: the replies quote it */
	const char *from;   /* the customer's wa_id */
	const char *name;
	const char *type; /* the inbound message's type: text, image... */
	const char *body;
	const char *context_id;
	int64_t sent_at, received_at, created_at;
	int attempts;          /* claims so far */
	const char *outcome;   /* DONE: how it ended; else "" */
	const char *rewritten; /* DONE: the command the endpoint gave, or "" */
	int64_t done_at;
};

/* store_ai_job_add records j PENDING (j->id, state, attempts, outcome
 * ignored); *id gets its id. ERR_CONFLICT: a job for j->ext_id exists. */
int store_ai_job_add(struct store_conn *c, const struct ai_job *j, int64_t *id);
/* store_ai_job_waiting: *waiting 1 when (tenant, from) has a job not DONE. */
int store_ai_job_waiting(struct store_conn *c, int64_t tenant_id, const char *from, int *waiting);
/*
 * store_ai_job_claim moves up to limit (1..STORE_MAX_BATCH) PENDING jobs
 * to CLAIMED (attempts + 1) and returns them, oldest first; only a
 * customer's oldest job not DONE is claimable, so one customer's jobs run
 * one at a time, in order. In a transaction of its own when none is open.
 */
int store_ai_job_claim(struct store_conn *c, int limit, struct arena *a, struct ai_job **out,
                       int *n);
/* store_ai_job_finish: CLAIMED → DONE with outcome and rewritten (may be
 * ""); ERR_CONFLICT when the job is not CLAIMED, ERR_NOTFOUND if none. */
int store_ai_job_finish(struct store_conn *c, int64_t id, const char *outcome,
                        const char *rewritten, int64_t now);
/* store_ai_job_release: CLAIMED → PENDING (its run failed and is to be
 * tried again); ERR_CONFLICT when not CLAIMED, ERR_NOTFOUND if none. */
int store_ai_job_release(struct store_conn *c, int64_t id);
/* store_ai_job_recover: start-up: every CLAIMED job back to PENDING; *n
 * how many (may be NULL). */
int store_ai_job_recover(struct store_conn *c, int *n);
/* store_ai_job_get reads job id (strings in a); ERR_NOTFOUND. */
int store_ai_job_get(struct store_conn *c, int64_t id, struct arena *a, struct ai_job *out);
/* store_ai_job_count: jobs not DONE. */
int store_ai_job_count(struct store_conn *c, int64_t *n);

/* A photo or document to be read later (there is no OCR engine in munim). */
enum ocr_state { OCR_QUEUED = 0, OCR_DONE = 1 };

struct ocr_item {
	int64_t id;
	int64_t tenant_id;
	const char *from;      /* the customer's wa_id */
	const char *ext_id;    /* the inbound wamid */
	const char *type;      /* image, document */
	const char *media_id;  /* the Cloud API's media id, "" when not known */
	const char *mime_type; /* "" when not known */
	const char *caption;
	enum ocr_state state;
	int64_t created_at, done_at;
	const char *note; /* DONE: what the operator wrote */
};

/* store_ocr_add queues o (QUEUED; id, state, done_at, note ignored); *id
 * gets its id. ERR_CONFLICT: ext_id is queued already. */
int store_ocr_add(struct store_conn *c, const struct ocr_item *o, int64_t *id);
/* store_ocr_list reads up to limit (1..STORE_MAX_BATCH) items in state st,
 * oldest first, with id > after_id (paging). */
int store_ocr_list(struct store_conn *c, enum ocr_state st, int64_t after_id, int limit,
                   struct arena *a, struct ocr_item **out, int *n);
/* store_ocr_done: QUEUED → DONE with note; ERR_NOTFOUND: no such item,
 * ERR_CONFLICT: done already. */
int store_ocr_done(struct store_conn *c, int64_t id, const char *note, int64_t now);
/* store_ocr_depth: items QUEUED. */
int store_ocr_depth(struct store_conn *c, int64_t *n);

/* ---- the companion app (sqlite_companion.c) --------------------------------- */

/*
 * store_customer_ensure finds or adds (tenant, wa_id) and fills *out,
 * never moving last_inbound_at: a customer the shop serves through its
 * app has not written on WhatsApp, so no 24-hour window opens.
 */
int store_customer_ensure(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                          struct arena *a, struct customer *out);
/*
 * store_orders_list reads up to limit (1..STORE_MAX_BATCH) of the tenant's
 * orders with their lines, newest first: of one status (status < 0: any),
 * with ids below before_id (<= 0: from the newest).
 */
int store_orders_list(struct store_conn *c, int64_t tenant_id, int status, int64_t before_id,
                      int limit, struct arena *a, struct order **out, int *n);

/* One operation a companion device synced, as first applied or refused. */
#define STORE_SYNC_ID_MAX 64
struct sync_op_record {
	const char *client_id; /* the device's id for it, 1..STORE_SYNC_ID_MAX bytes */
	const char *device;
	const char *op;        /* "order.create", "stock.adjust", ... */
	const char *digest;    /* SHA-256 (hex) of the operation as first sent */
	int rejected;          /* 0: applied; 1: refused */
	const char *result;    /* the JSON answered the first time: result or error */
	const char *client_at; /* the device's timestamp, as sent */
	int64_t applied_at;
};
/* store_sync_op_get: the tenant's record of client_id; ERR_NOTFOUND. */
int store_sync_op_get(struct store_conn *c, int64_t tenant_id, const char *client_id,
                      struct arena *a, struct sync_op_record *out);
/* store_sync_op_put records r; ERR_CONFLICT when the tenant has client_id
 * recorded already (nothing changes). */
int store_sync_op_put(struct store_conn *c, int64_t tenant_id, const struct sync_op_record *r);

/* ---- processes: nodes, partition leases, the leader's lock (sqlite_lease.c, pg_lease.c) ---- */

/*
 * Every serve process is a node of the store: it joins (store_node_join),
 * beats every STORE_NODE_BEAT_MS to keep a lease of STORE_NODE_LEASE_MS
 * (store_node_beat), and leaves when it stops (store_node_leave). A node
 * whose lease has run out is dead to the others: its partitions and the
 * sends it left SENDING are taken over. Times are the callers' wall
 * clocks (epoch ms): the hosts of one store keep them in step (NTP), well
 * within STORE_NODE_LEASE_MS - STORE_NODE_BEAT_MS.
 *
 * A node's name stays the same across restarts of one process (host and
 * listening port by default, or --node-name); a new run is a new node of
 * the same name, with a larger id. The successor counts its earlier runs
 * as dead at once (they cannot run beside it: two live processes never
 * share a name), so a restarted process takes its own partitions and
 * sends back at once, while the others wait for the earlier run's lease.
 */
#define STORE_NODE_BEAT_MS  2000
#define STORE_NODE_LEASE_MS 6000

/* What a node runs (store_node.roles), as serve --roles names it. */
#define STORE_ROLE_INGEST     1
#define STORE_ROLE_WORKER     2
#define STORE_ROLE_SENDER     4
#define STORE_ROLE_CONTROLLER 8

/* Longest node name and host, with the NUL. */
#define STORE_NODE_NAME_MAX 128

struct store_node {
	int64_t id;       /* assigned by store_node_join */
	const char *name; /* 1..STORE_NODE_NAME_MAX-1 bytes, see above */
	unsigned roles;   /* STORE_ROLE_* */
	const char *host; /* for people: the machine's name */
	int64_t pid;      /* for people */
	int64_t started_at;
	int64_t expires_at; /* read only: the end of its lease */
};

/*
 * store_node_join records n (its id, expires_at ignored) live until now +
 * lease_ms; *id gets its id (ids grow: a later run has a larger one).
 * Nodes whose lease ended more than a day ago are forgotten. ERR_INVAL for
 * a bad name or roles. Its own transaction.
 */
int store_node_join(struct store_conn *c, const struct store_node *n, int64_t now, int64_t lease_ms,
                    int64_t *id);
/*
 * store_node_beat renews node id's lease to now + lease_ms. *lapsed (may
 * be NULL) is 1 when the lease had run out before this beat: meanwhile
 * the others may have taken over its partitions and its sends.
 * ERR_NOTFOUND: no such node (forgotten): join again.
 */
int store_node_beat(struct store_conn *c, int64_t id, int64_t now, int64_t lease_ms, int *lapsed);
/*
 * store_node_leave ends node id's lease at now and gives back its
 * partitions, so that the others take over at once (a clean stop).
 */
int store_node_leave(struct store_conn *c, int64_t id, int64_t now);
/*
 * store_nodes_live reads the nodes live at now (lease not run out, no
 * later run of the same name joined), in id order, at most
 * STORE_MAX_BATCH, into *out (strings in a; *n of them).
 */
int store_nodes_live(struct store_conn *c, int64_t now, struct arena *a, struct store_node **out,
                     int *n);
/*
 * store_set_node: the node this process joined as, from now on recorded
 * by every claim of the store's connections (store_outbox_claim) and
 * spared by its recovery (store_outbox_recover). Set it before the roles
 * start; 0 (the default): no node. store_node reads it. Any thread.
 */
void store_set_node(struct store *st, int64_t id);
int64_t store_node(const struct store *st);

/*
 * Partition leases: the worker processes divide the STORE_PARTITIONS
 * queue partitions among themselves. A partition has at most one owner,
 * whose lease on it ends at its expires_at; every move is one conditional
 * write, so two nodes never both own a partition.
 *
 * store_partitions_claim, for a worker node, in one transaction: renews
 * the node's own leases to now + lease_ms, then takes free partitions - no
 * owner, a lease run out, or an owner that is an earlier run of this node
 * - until it holds its fair share, ceil(STORE_PARTITIONS / w), w the live
 * worker nodes (itself always counted). It gives nothing back: a node
 * over its share (another joined) stops reading the partitions it gives
 * up first, then store_partitions_release. *owned gets the partitions the
 * node holds after the call, *share the fair share, *taken (may be NULL)
 * the partitions it took now. Which free ones it takes starts at a place
 * of its own (its id), so that nodes starting together rarely want the
 * same ones.
 */
int store_partitions_claim(struct store_conn *c, int64_t node, int64_t now, int64_t lease_ms,
                           uint64_t *owned, int *share, uint64_t *taken);
/* store_partitions_release gives back the partitions in parts that node
 * owns (free at once for any node). */
int store_partitions_release(struct store_conn *c, int64_t node, uint64_t parts);

/*
 * A lock held by one process of the store at a time, for as long as its
 * session lasts: the leading controller's. PostgreSQL: a session-level
 * advisory lock (pg_try_advisory_lock) on a connection of the lock's own,
 * which must reach the server itself (not a transaction-mode PgBouncer);
 * the lock goes when the session dies (the process killed, the network
 * lost). SQLite: one process serves a file, so the lock is always held.
 *
 * store_lock_new prepares the lock key of st, to be taken through url
 * ("" or NULL: the store's url); nothing connects yet. store_lock_try
 * connects when it must, then takes the lock if free, or checks the
 * session still holds it: *held 1 or 0 (0 too on an error, which also
 * drops the session so that the server frees the lock). One round trip
 * once connected; it waits at most a few seconds for an unreachable
 * server. store_lock_errmsg: the last error. store_lock_free releases it
 * (closes the session). One thread at a time.
 */
struct store_lock;
int store_lock_new(struct store *st, const char *url, int64_t key, struct store_lock **out);
int store_lock_try(struct store_lock *l, int *held);
const char *store_lock_errmsg(const struct store_lock *l);
void store_lock_free(struct store_lock *l);

#endif
