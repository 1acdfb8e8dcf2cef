/*
 * store.c - the public face of the store: picks a backend from the url,
 * checks arguments and transaction state, and dispatches through the ops
 * table (store_internal.h).
 *
 * Design
 *   Everything that does not depend on the database lives here, so each
 *   backend gets only well-formed calls: NULL out-pointers, out-of-range
 *   enums, limits above STORE_MAX_BATCH and misplaced transaction calls are
 *   refused with ERR_INVAL and a message on the connection before any
 *   backend code runs. The backend owns the SQL, the translation of its
 *   error codes and the in_txn/in_savepoint flags.
 *
 * Transaction state (per connection, flags in struct store_conn):
 *
 *     idle --store_begin--> in_txn --store_savepoint--> in_savepoint
 *      ^                     |  ^                          |
 *      +--commit/rollback----+  +--release/rollback_to-----+
 *
 *   store_commit/store_rollback from in_savepoint end the whole transaction.
 *
 * Threads: struct store is shared and immutable after store_open (except as
 * noted in store_internal.h); a struct store_conn belongs to one thread.
 */
#include "store/store.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "store/store_internal.h"

/* ---- helpers shared by the module ---------------------------------------- */

int store__cmp_claim(const void *pa, const void *pb)
{
	const struct outbox_row *a = pa, *b = pb;
	if (a->priority != b->priority)
		return (int)a->priority - (int)b->priority;
	if (a->next_attempt_at != b->next_attempt_at)
		return (a->next_attempt_at > b->next_attempt_at) -
		       (a->next_attempt_at < b->next_attempt_at);
	return (a->id > b->id) - (a->id < b->id);
}

int store__verrf(struct store_conn *c, int err, const char *fmt, va_list ap)
{
	if (c)
		vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	return err;
}

int store__errf(struct store_conn *c, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	store__verrf(c, err, fmt, ap);
	va_end(ap);
	return err;
}

void store_set_busy_timeout(struct store *st, int ms)
{
	st->busy_timeout_ms = ms < 0 ? 0 : ms;
}

int store_shared_writers(const struct store *st)
{
	return st->ops->shared_writers;
}

void store_set_prepared(struct store *st, int on)
{
	st->unprepared = !on;
}

static int empty(const char *s)
{
	return !s || !*s;
}

/* ---- names and partitions ------------------------------------------------- */

int store_partition(int64_t tenant_id)
{
	return (int)(hash_u64((uint64_t)tenant_id) % STORE_PARTITIONS);
}

int store_outbox_cmp(int64_t a, int64_t b)
{
	int64_t pa = a % STORE_PARTITIONS, pb = b % STORE_PARTITIONS;
	if (pa != pb)
		return pa < pb ? -1 : 1;
	return (a > b) - (a < b);
}

uint64_t store_partition_slice(int slice, int nslices)
{
	uint64_t parts = 0;
	if (nslices < 1 || nslices > STORE_PARTITIONS || slice < 0 || slice >= nslices)
		return 0;
	for (int p = slice; p < STORE_PARTITIONS; p += nslices)
		parts |= 1ULL << p;
	return parts;
}

const char *outbox_state_name(enum outbox_state s)
{
	static const char *const names[OUTBOX_STATE_COUNT] = {
	        "pending", "sending", "accepted", "sent",   "delivered",
	        "read",    "failed",  "dead",     "merged",
	};
	if ((unsigned)s >= OUTBOX_STATE_COUNT)
		return "unknown";
	return names[s];
}

const char *outbox_prio_name(enum outbox_prio p)
{
	static const char *const names[PRIO_COUNT] = {"P0", "P1", "P2", "P3"};
	if ((unsigned)p >= PRIO_COUNT)
		return "unknown";
	return names[p];
}

/* ---- lifecycle ------------------------------------------------------------ */

static int has_prefix(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/*
 * store_open: a "postgres://" or "postgresql://" url is a PostgreSQL
 * server (store_pg.c); anything else is a SQLite file path. store_open has
 * no connection to carry a message, so the reason of a failure is logged
 * here. A PostgreSQL url is not logged: it may hold a password.
 */
int store_open(const char *url, struct store **out)
{
	char why[STORE_ERRMSG_MAX] = "";
	int rc;

	if (!out)
		return ERR_INVAL;
	*out = NULL;
	if (empty(url)) {
		log_error("store.open_failed", "could not open store: empty store url");
		return ERR_INVAL;
	}
	if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://")) {
		rc = store__pg_open(url, out, why);
		if (rc < 0)
			log_error("store.open_failed", "could not open PostgreSQL store: %s", why);
		return rc;
	}
	rc = store__sqlite_open(url, out, why);
	if (rc < 0)
		log_error("store.open_failed", "could not open store \"%s\": %s", url, why);
	return rc;
}

const char *store_url_display(const char *url, char *buf, size_t cap)
{
	size_t o = 0;
	const char *at = strchr(url, '@'), *scheme = strstr(url, "://");
	/* user:password@ in the authority of a url */
	const char *colon =
	        scheme && at ? memchr(scheme + 3, ':', (size_t)(at - scheme - 3)) : NULL;
	for (const char *p = url; *p && o + 1 < cap; p++) {
		if (colon && p == colon + 1) {
			o += (size_t)snprintf(buf + o, cap - o, "***");
			p = at - 1;
			continue;
		}
		if (!strncmp(p, "password=", 9) && (p == url || strchr("?&; ", p[-1]))) {
			o += (size_t)snprintf(buf + o, cap - o, "password=***");
			p += 8;
			while (p[1] && !strchr("& ", p[1]))
				p++;
			continue;
		}
		buf[o++] = *p;
	}
	if (o >= cap)
		o = cap - 1;
	buf[o] = '\0';
	return buf;
}

/* store_close frees st; every connection must be disconnected first. */
void store_close(struct store *st)
{
	if (st)
		st->ops->close(st);
}

int store_checkpoint_in_background(struct store *st)
{
	return st->ops->checkpoint_in_background ? st->ops->checkpoint_in_background(st) : 0;
}

int64_t store_checkpoints(const struct store *st)
{
	return st->ops->checkpoints ? st->ops->checkpoints(st) : 0;
}

int64_t store_memory_bytes(const struct store *st)
{
	return st->ops->memory_bytes ? st->ops->memory_bytes(st) : 0;
}

/* store_connect: on failure the reason is logged (there is no connection
 * to keep it on). */
int store_connect(struct store *st, struct store_conn **out)
{
	if (!st || !out)
		return ERR_INVAL;
	*out = NULL;
	return st->ops->connect(st, out);
}

void store_set_replicas(struct store *st, const char *urls, int max_lag_ms)
{
	if (st && st->ops->set_replicas)
		st->ops->set_replicas(st, urls ? urls : "", max_lag_ms < 0 ? 0 : max_lag_ms);
}

int store_connect_read(struct store *st, struct store_conn **out)
{
	if (!st || !out)
		return ERR_INVAL;
	*out = NULL;
	return st->ops->connect_read ? st->ops->connect_read(st, out) : st->ops->connect(st, out);
}

int store_listen_start(struct store *st, const char *url, store_wake_fn fn, void *arg)
{
	if (!st || !fn)
		return ERR_INVAL;
	return st->ops->listen_start ? st->ops->listen_start(st, url, fn, arg) : 0;
}

void store_listen_stop(struct store *st)
{
	if (st && st->ops->listen_stop)
		st->ops->listen_stop(st);
}

/* store_disconnect rolls back an open transaction first. */
void store_disconnect(struct store_conn *c)
{
	if (c)
		c->ops->disconnect(c);
}

const char *store_errmsg(const struct store_conn *c)
{
	return c ? c->errmsg : "no store connection";
}

int store_migrate(struct store_conn *c, int *applied)
{
	int dummy;
	if (c->in_txn)
		return store__errf(c, ERR_INVAL,
		                   "could not migrate: a transaction is open on this connection");
	return c->ops->migrate(c, applied ? applied : &dummy);
}

int store_maintain(struct store_conn *c, int *made)
{
	int dummy;
	if (!made)
		made = &dummy;
	*made = 0;
	if (c->in_txn)
		return store__errf(c, ERR_INVAL,
		                   "could not maintain the store: a transaction is open");
	return c->ops->maintain ? c->ops->maintain(c, made) : 0;
}

int store_schema_version(struct store_conn *c, int *version)
{
	if (!version)
		return store__errf(c, ERR_INVAL, "could not read schema version: no output");
	return c->ops->schema_version(c, version);
}

/* ---- transactions ----------------------------------------------------------- */

int store_set_lazy_commits(struct store_conn *c, int lazy)
{
	if (c->in_txn)
		return store__errf(c, ERR_INVAL,
		                   "could not change how commits wait: a transaction is open");
	return c->ops->set_lazy_commits(c, lazy != 0);
}

int store_sync(struct store_conn *c)
{
	if (c->in_txn)
		return store__errf(c, ERR_INVAL, "could not sync: a transaction is open");
	return c->ops->sync(c);
}

int store_begin(struct store_conn *c)
{
	if (c->in_txn)
		return store__errf(c, ERR_INVAL,
		                   "could not begin transaction: one is already open");
	return c->ops->begin(c);
}

int store_commit(struct store_conn *c)
{
	if (!c->in_txn)
		return store__errf(c, ERR_INVAL, "could not commit: no transaction is open");
	return c->ops->commit(c);
}

int store_rollback(struct store_conn *c)
{
	if (!c->in_txn)
		return store__errf(c, ERR_INVAL, "could not roll back: no transaction is open");
	return c->ops->rollback(c);
}

int store_savepoint(struct store_conn *c)
{
	if (!c->in_txn)
		return store__errf(c, ERR_INVAL, "could not set savepoint: no transaction is open");
	if (c->in_savepoint)
		return store__errf(c, ERR_INVAL, "could not set savepoint: savepoints do not nest");
	return c->ops->savepoint(c);
}

int store_release(struct store_conn *c)
{
	if (!c->in_savepoint)
		return store__errf(c, ERR_INVAL, "could not release savepoint: none is set");
	return c->ops->release(c);
}

/* store_rollback_to undoes the work since store_savepoint and ends the
 * savepoint; the transaction stays open. */
int store_rollback_to(struct store_conn *c)
{
	if (!c->in_savepoint)
		return store__errf(c, ERR_INVAL, "could not roll back to savepoint: none is set");
	return c->ops->rollback_to(c);
}

/* ---- tenants and catalogue ------------------------------------------------- */

int store_tenant_add(struct store_conn *c, const struct tenant *t, int64_t *id)
{
	if (!t || !id)
		return store__errf(c, ERR_INVAL, "could not add tenant: no tenant given");
	if (empty(t->name) || empty(t->phone_number_id))
		return store__errf(c, ERR_INVAL,
		                   "could not add tenant: name and phone_number_id are required");
	return c->ops->tenant_add(c, t, id);
}

int store_tenant_get(struct store_conn *c, int64_t id, struct arena *a, struct tenant *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read tenant: no output");
	return c->ops->tenant_get(c, id, a, out);
}

int store_tenants_get(struct store_conn *c, const int64_t *ids, int n, struct arena *a,
                      struct tenant *out, char *found)
{
	if (!a || !out || !found || (n > 0 && !ids) || n < 0 || n > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL, "could not read tenants: bad arguments (%d)", n);
	memset(found, 0, (size_t)n);
	if (n > 1 && c->ops->tenants_get)
		return c->ops->tenants_get(c, ids, n, a, out, found);
	for (int i = 0; i < n; i++) {
		int rc = c->ops->tenant_get(c, ids[i], a, &out[i]);
		if (rc != 0 && rc != ERR_NOTFOUND)
			return rc;
		found[i] = rc == 0;
	}
	return 0;
}

int store_tenant_by_phone(struct store_conn *c, const char *phone_number_id, struct arena *a,
                          struct tenant *out)
{
	if (!a || !out || !phone_number_id)
		return store__errf(c, ERR_INVAL, "could not find tenant: no phone number id");
	return c->ops->tenant_by_phone(c, phone_number_id, a, out);
}

int store_tenant_list(struct store_conn *c, int64_t after_id, int limit, struct arena *a,
                      struct tenant **out, int *n)
{
	if (!a || !out || !n || limit < 1 || limit > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL, "could not list tenants: bad arguments");
	return c->ops->tenant_list(c, after_id, limit, a, out, n);
}

int store_tenant_count(struct store_conn *c, int64_t *n)
{
	if (!n)
		return store__errf(c, ERR_INVAL, "could not count tenants: no output");
	return c->ops->tenant_count(c, n);
}

int store_tenant_template(struct store_conn *c, int64_t tenant_id, struct arena *a,
                          struct tenant_template *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read template: no output");
	return c->ops->tenant_template(c, tenant_id, a, out);
}

int store_tenant_set_template(struct store_conn *c, int64_t tenant_id, const char *name,
                              const char *lang)
{
	if (!name || !lang)
		return store__errf(c, ERR_INVAL, "could not set template: no name or language");
	if (*name && !*lang)
		return store__errf(c, ERR_INVAL,
		                   "could not set template \"%.64s\": no language code", name);
	return c->ops->tenant_set_template(c, tenant_id, name, lang);
}

/* 64 lower-case hex digits: a SHA-256 as the store keeps it. */
static int valid_token_hash(const char *h)
{
	if (!h || strlen(h) != STORE_TOKEN_HASH_LEN)
		return 0;
	for (; *h; h++)
		if (!((*h >= '0' && *h <= '9') || (*h >= 'a' && *h <= 'f')))
			return 0;
	return 1;
}

int store_tenant_set_token_hash(struct store_conn *c, int64_t tenant_id, const char *hash)
{
	if (!valid_token_hash(hash))
		return store__errf(c, ERR_INVAL,
		                   "could not set API token: the hash is not %d hex digits",
		                   STORE_TOKEN_HASH_LEN);
	return c->ops->tenant_set_token_hash(c, tenant_id, hash);
}

int store_tenant_by_token_hash(struct store_conn *c, const char *hash, int64_t *tenant_id)
{
	if (!tenant_id)
		return store__errf(c, ERR_INVAL, "could not find tenant by token: no output");
	if (!valid_token_hash(hash))
		return store__errf(c, ERR_INVAL,
		                   "could not find tenant by token: the hash is not %d hex digits",
		                   STORE_TOKEN_HASH_LEN);
	return c->ops->tenant_by_token_hash(c, hash, tenant_id);
}

int store_product_upsert(struct store_conn *c, const struct product *p, int64_t *id)
{
	if (!p || !id)
		return store__errf(c, ERR_INVAL, "could not save product: no product given");
	if (empty(p->sku) || empty(p->name) || empty(p->unit))
		return store__errf(c, ERR_INVAL,
		                   "could not save product: sku, name and unit are required");
	if (p->base_per_unit <= 0 || p->price_paise < 0 || p->gst_rate_bp < 0 ||
	    p->gst_rate_bp > 10000)
		return store__errf(c, ERR_INVAL,
		                   "could not save product \"%s\": base_per_unit must be positive, "
		                   "price not negative, GST rate 0..10000 bp",
		                   p->sku);
	return c->ops->product_upsert(c, p, id);
}

int store_products_list(struct store_conn *c, int64_t tenant_id, struct arena *a,
                        struct product **out, int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not list products: no output");
	return c->ops->products_list(c, tenant_id, a, out, n);
}

int store_product_get(struct store_conn *c, int64_t tenant_id, int64_t product_id, struct arena *a,
                      struct product *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read product: no output");
	return c->ops->product_get(c, tenant_id, product_id, a, out);
}

int store_product_set_price(struct store_conn *c, int64_t tenant_id, int64_t product_id,
                            int64_t price_paise)
{
	if (price_paise < 0)
		return store__errf(c, ERR_INVAL, "could not set price: %lld paise is negative",
		                   (long long)price_paise);
	return c->ops->product_set_price(c, tenant_id, product_id, price_paise);
}

int store_stock_move(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t delta,
                     const char *reason, int64_t ref_id, int64_t *stock_after)
{
	int64_t dummy;
	if (empty(reason))
		return store__errf(c, ERR_INVAL, "could not move stock: no reason given");
	if (delta == 0 || delta > STORE_MAX_STOCK_DELTA || delta < -STORE_MAX_STOCK_DELTA)
		return store__errf(c, ERR_INVAL,
		                   "could not move stock: delta %lld is zero or beyond %lld",
		                   (long long)delta, STORE_MAX_STOCK_DELTA);
	return c->ops->stock_move(c, tenant_id, product_id, delta, reason, ref_id,
	                          stock_after ? stock_after : &dummy);
}

int store_ledger_sum(struct store_conn *c, int64_t tenant_id, int64_t product_id, int64_t *sum)
{
	if (!sum)
		return store__errf(c, ERR_INVAL, "could not sum ledger: no output");
	return c->ops->ledger_sum(c, tenant_id, product_id, sum);
}

int store_products_low(struct store_conn *c, int64_t tenant_id, int64_t threshold_units,
                       struct arena *a, struct product **out, int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not list low stock: no output");
	if (threshold_units < 0 || threshold_units > STORE_MAX_STOCK_DELTA)
		return store__errf(c, ERR_INVAL, "could not list low stock: bad threshold %lld",
		                   (long long)threshold_units);
	return c->ops->products_low(c, tenant_id, threshold_units, a, out, n);
}

/* ---- customers ---------------------------------------------------------------- */

int store_customer_touch(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                         const char *name, int64_t inbound_at, struct arena *a,
                         struct customer *out)
{
	if (empty(wa_id) || !a || !out)
		return store__errf(c, ERR_INVAL, "could not record customer: no wa_id");
	return c->ops->customer_touch(c, tenant_id, wa_id, name ? name : "", inbound_at, a, out);
}

int store_customer_set_state(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                             const char *state_code)
{
	if (empty(wa_id) || !state_code)
		return store__errf(c, ERR_INVAL, "could not set customer state: no wa_id");
	return c->ops->customer_set_state(c, tenant_id, wa_id, state_code);
}

int store_customer_get(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                       struct arena *a, struct customer *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read customer: no output");
	return c->ops->customer_get(c, tenant_id, customer_id, a, out);
}

int store_customer_set_opted_out(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                 int opted_out, int *changed)
{
	int dummy;
	if (empty(wa_id))
		return store__errf(c, ERR_INVAL, "could not record opt-out: no wa_id");
	return c->ops->customer_set_opted_out(c, tenant_id, wa_id, opted_out != 0,
	                                      changed ? changed : &dummy);
}

int store_customers_active(struct store_conn *c, int64_t tenant_id, int64_t since,
                           const struct customer_contact *after, int limit, struct arena *a,
                           struct customer_contact **out, int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not list customers: no output");
	if (limit < 1 || limit > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL, "could not list customers: limit %d not in 1..%d",
		                   limit, STORE_MAX_BATCH);
	return c->ops->customers_active(c, tenant_id, since, after, limit, a, out, n);
}

int store_outbox_cancel_marketing(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                                  int error_code, const char *error, int64_t now, int64_t *moved)
{
	if (empty(wa_id) || !moved)
		return store__errf(c, ERR_INVAL, "could not cancel marketing: no wa_id or output");
	return c->ops->outbox_cancel_marketing(c, tenant_id, wa_id, error_code, error ? error : "",
	                                       now, moved);
}

/* ---- orders and invoices ------------------------------------------------------ */

static int valid_order_status(enum order_status s)
{
	return s == ORDER_DRAFT || s == ORDER_CONFIRMED || s == ORDER_CANCELLED;
}

int store_order_create(struct store_conn *c, const struct order *o, int64_t *id)
{
	if (!o || !id)
		return store__errf(c, ERR_INVAL, "could not create order: no order given");
	if (o->nlines < 0 || o->nlines > STORE_MAX_ORDER_LINES || (o->nlines > 0 && !o->lines))
		return store__errf(c, ERR_INVAL, "could not create order: %d lines (at most %d)",
		                   o->nlines, STORE_MAX_ORDER_LINES);
	if (!valid_order_status(o->status))
		return store__errf(c, ERR_INVAL, "could not create order: bad status %d",
		                   (int)o->status);
	return c->ops->order_create(c, o, id);
}

int store_order_get(struct store_conn *c, int64_t tenant_id, int64_t order_id, struct arena *a,
                    struct order *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read order: no output");
	return c->ops->order_get(c, tenant_id, order_id, a, out);
}

int store_order_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id, struct arena *a,
                     struct order *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read order: no output");
	return c->ops->order_last(c, tenant_id, customer_id, a, out);
}

int store_order_last_draft(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                           struct arena *a, struct order *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read order: no output");
	return c->ops->order_last_draft(c, tenant_id, customer_id, a, out);
}

int store_order_set_status(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                           enum order_status from, enum order_status to)
{
	if (!valid_order_status(from) || !valid_order_status(to))
		return store__errf(c, ERR_INVAL, "could not change order %lld: bad status",
		                   (long long)order_id);
	return c->ops->order_set_status(c, tenant_id, order_id, from, to);
}

int store_order_set_paid(struct store_conn *c, int64_t tenant_id, int64_t order_id, int64_t at,
                         int64_t *paid_at)
{
	int64_t dummy;
	if (at <= 0)
		return store__errf(c, ERR_INVAL, "could not mark order %lld paid: no time given",
		                   (long long)order_id);
	return c->ops->order_set_paid(c, tenant_id, order_id, at, paid_at ? paid_at : &dummy);
}

/* A financial-year code: 1..5 characters of [A-Za-z0-9-], so that the
 * number "INV/<fy>/<6+ digits>" stays within GST's 16 characters. */
static int valid_fy(const char *fy)
{
	size_t n = fy ? strlen(fy) : 0;
	if (n == 0 || n > 5)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = fy[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9') || ch == '-'))
			return 0;
	}
	return 1;
}

/* store_invoice_issue: ERR_INVAL outside a transaction (the number must
 * share the fate of the order it is for). */
int store_invoice_issue(struct store_conn *c, struct invoice *inv, struct arena *a, int64_t *id)
{
	if (!inv || !a || !id)
		return store__errf(c, ERR_INVAL, "could not issue invoice: no invoice given");
	if (!c->in_txn)
		return store__errf(c, ERR_INVAL,
		                   "could not issue invoice: it must run inside a transaction");
	if (!valid_fy(inv->fy))
		return store__errf(c, ERR_INVAL,
		                   "could not issue invoice: bad financial year code \"%.16s\"",
		                   inv->fy ? inv->fy : "");
	return c->ops->invoice_issue(c, inv, a, id);
}

int store_invoice_last(struct store_conn *c, int64_t tenant_id, int64_t customer_id,
                       struct arena *a, struct invoice *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read invoice: no output");
	return c->ops->invoice_last(c, tenant_id, customer_id, a, out);
}

int store_invoice_by_order(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                           struct arena *a, struct invoice *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read invoice: no output");
	return c->ops->invoice_by_order(c, tenant_id, order_id, a, out);
}

int store_sales_since(struct store_conn *c, int64_t tenant_id, int64_t since, int64_t *orders,
                      int64_t *taxable_paise, int64_t *total_paise)
{
	if (!orders || !taxable_paise || !total_paise)
		return store__errf(c, ERR_INVAL, "could not sum sales: no output");
	return c->ops->sales_since(c, tenant_id, since, orders, taxable_paise, total_paise);
}

/* ---- audit ---------------------------------------------------------------------- */

int store_audit(struct store_conn *c, int64_t tenant_id, const char *actor, const char *action,
                const char *detail)
{
	if (empty(action))
		return store__errf(c, ERR_INVAL, "could not write audit record: no action");
	return c->ops->audit(c, tenant_id, actor ? actor : "", action, detail ? detail : "");
}

/* ---- inbox ------------------------------------------------------------------------ */

int store_inbox_put(struct store_conn *c, struct inbox_entry *e, int n,
                    enum inbox_put_result *result)
{
	if (n < 0 || n > STORE_MAX_BATCH || (n > 0 && (!e || !result)))
		return store__errf(c, ERR_INVAL,
		                   "could not insert inbox entries: %d entries (at most %d)", n,
		                   STORE_MAX_BATCH);
	for (int i = 0; i < n; i++) {
		if (empty(e[i].ext_id))
			return store__errf(c, ERR_INVAL,
			                   "could not insert inbox entry %d: no external id", i);
		if (e[i].kind != INBOX_MESSAGE && e[i].kind != INBOX_STATUS)
			return store__errf(c, ERR_INVAL,
			                   "could not insert inbox entry \"%s\": bad kind %d",
			                   e[i].ext_id, (int)e[i].kind);
		if (e[i].state != INBOX_PENDING && e[i].state != INBOX_DONE)
			return store__errf(c, ERR_INVAL,
			                   "could not insert inbox entry \"%s\": it can start "
			                   "pending or done, not in state %d",
			                   e[i].ext_id, (int)e[i].state);
	}
	if (n == 0)
		return 0;
	return c->ops->inbox_put(c, e, n, result);
}

int store_inbox_pending(struct store_conn *c, uint64_t parts, int limit, struct arena *a,
                        struct inbox_entry **out, int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not read inbox: no output");
	*out = NULL;
	*n = 0;
	if (limit < 1 || limit > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL, "could not read inbox: limit %d not in 1..%d",
		                   limit, STORE_MAX_BATCH);
	if (parts == 0)
		return 0;
	return c->ops->inbox_pending(c, parts, limit, a, out, n);
}

int store_inbox_done(struct store_conn *c, int64_t id)
{
	return c->ops->inbox_done(c, id);
}

int store_inbox_reopen(struct store_conn *c, int64_t id)
{
	return c->ops->inbox_reopen(c, id);
}

int store_inbox_failed(struct store_conn *c, int64_t id, int max_attempts, const char *why)
{
	if (max_attempts < 1)
		return store__errf(c, ERR_INVAL,
		                   "could not record inbox failure: max attempts %d < 1",
		                   max_attempts);
	return c->ops->inbox_failed(c, id, max_attempts, why ? why : "");
}

int store_inbox_waiting(struct store_conn *c, int limit, struct arena *a,
                        struct inbox_waiting **out, int *n)
{
	if (limit < 0 || !a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not read waiting customers: no output");
	return c->ops->inbox_waiting(c, limit, a, out, n);
}

int store_inbox_depth(struct store_conn *c, int64_t *n)
{
	if (!n)
		return store__errf(c, ERR_INVAL, "could not count inbox: no output");
	return c->ops->inbox_depth(c, n);
}

/* ---- outbox ------------------------------------------------------------------------ */

int store_outbox_add(struct store_conn *c, const struct outbox_new *o, int64_t *id)
{
	if (!o || !id)
		return store__errf(c, ERR_INVAL, "could not queue message: nothing given");
	if ((unsigned)o->priority >= PRIO_COUNT)
		return store__errf(c, ERR_INVAL, "could not queue message: bad priority %d",
		                   (int)o->priority);
	if (empty(o->phone_number_id) || empty(o->to) || empty(o->body))
		return store__errf(c, ERR_INVAL,
		                   "could not queue message: phone_number_id, to and body are "
		                   "required");
	return c->ops->outbox_add(c, o, id);
}

int store_outbox_add_many(struct store_conn *c, const struct outbox_new *o, int n, int64_t *ids)
{
	if (n < 0 || n > STORE_MAX_BATCH || (n > 0 && (!o || !ids)))
		return store__errf(c, ERR_INVAL, "could not queue messages: bad batch");
	for (int i = 0; i < n; i++) {
		if ((unsigned)o[i].priority >= PRIO_COUNT || empty(o[i].phone_number_id) ||
		    empty(o[i].to) || empty(o[i].body))
			return store__errf(c, ERR_INVAL,
			                   "could not queue messages: row %d lacks a priority, "
			                   "phone_number_id, to or body",
			                   i);
	}
	if (n == 0)
		return 0;
	if (c->ops->outbox_add_many)
		return c->ops->outbox_add_many(c, o, n, ids);
	/* one by one; all or none: the caller's transaction, or one of ours */
	int own = !c->in_txn, rc = 0;
	if (own && (rc = store_begin(c)) != 0)
		return rc;
	for (int i = 0; rc == 0 && i < n; i++)
		rc = c->ops->outbox_add(c, &o[i], &ids[i]);
	if (own)
		rc = rc == 0 ? store_commit(c) : (store_rollback(c), rc);
	return rc;
}

int store_outbox_claim_to(struct store_conn *c, int64_t now, int64_t tenant_id, const char *to,
                          enum outbox_prio min_prio, enum outbox_prio max_prio, int limit,
                          struct arena *a, struct outbox_row **out, int *n)
{
	*out = NULL;
	*n = 0;
	if (!to || (unsigned)min_prio >= PRIO_COUNT || (unsigned)max_prio >= PRIO_COUNT ||
	    min_prio > max_prio || limit < 1)
		return store__errf(c, ERR_INVAL,
		                   "could not claim a recipient's outbox rows: bad arguments");
	return c->ops->outbox_claim_to(c, now, tenant_id, to, min_prio, max_prio, limit, a, out, n);
}

int store_outbox_claim(struct store_conn *c, int64_t now, int limit, enum outbox_prio max_prio,
                       struct arena *a, struct outbox_row **out, int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not claim outbox rows: no output");
	if ((unsigned)max_prio >= PRIO_COUNT)
		return store__errf(c, ERR_INVAL, "could not claim outbox rows: bad priority %d",
		                   (int)max_prio);
	if (limit < 1 || limit > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL,
		                   "could not claim outbox rows: limit %d not in 1..%d", limit,
		                   STORE_MAX_BATCH);
	return c->ops->outbox_claim(c, now, limit, max_prio, a, out, n);
}

int store_outbox_recover(struct store_conn *c, int64_t resend_at, int *n)
{
	int dummy;
	return c->ops->outbox_recover(c, resend_at, n ? n : &dummy);
}

int store_outbox_claimed_here(struct store_conn *c, int64_t moved_before, int limit,
                              struct arena *a, int64_t **ids, int *n)
{
	*ids = NULL;
	*n = 0;
	if (limit < 1 || limit > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL,
		                   "could not list this node's claims: limit %d not in 1..%d",
		                   limit, STORE_MAX_BATCH);
	return c->ops->outbox_claimed_here(c, moved_before, limit, a, ids, n);
}

/* A provider name fits a row's column: NULL or "" (none) or a short name. */
static int provider_ok(const char *provider)
{
	return !provider || strlen(provider) < OUTBOX_PROVIDER_MAX;
}

int store_outbox_accepted(struct store_conn *c, int64_t id, const char *provider_msg_id,
                          const char *provider, int64_t now, enum outbox_state *landed)
{
	enum outbox_state f;
	if (empty(provider_msg_id))
		return store__errf(c, ERR_INVAL,
		                   "could not record acceptance of outbox row %lld: no provider id",
		                   (long long)id);
	if (!provider_ok(provider))
		return store__errf(c, ERR_INVAL,
		                   "could not record acceptance of outbox row %lld: provider name "
		                   "longer than %d",
		                   (long long)id, OUTBOX_PROVIDER_MAX - 1);
	return c->ops->outbox_accepted(c, id, provider_msg_id, provider ? provider : "", now,
	                               landed ? landed : &f);
}

int store_outbox_retry(struct store_conn *c, int64_t id, int64_t next_attempt_at, int error_code,
                       const char *error, int64_t now, enum outbox_state *landed)
{
	enum outbox_state f;
	return c->ops->outbox_retry(c, id, next_attempt_at, error_code, error ? error : "", now,
	                            landed ? landed : &f);
}

int store_outbox_fail(struct store_conn *c, int64_t id, enum outbox_state state, int error_code,
                      const char *error, int64_t now, enum outbox_state *landed)
{
	enum outbox_state f;
	if (state != OUTBOX_FAILED && state != OUTBOX_DEAD)
		return store__errf(c, ERR_INVAL,
		                   "could not fail outbox row %lld: state must be failed or dead",
		                   (long long)id);
	return c->ops->outbox_fail(c, id, state, error_code, error ? error : "", now,
	                           landed ? landed : &f);
}

int store_outbox_defer(struct store_conn *c, int64_t id, int64_t next_attempt_at, const char *why,
                       int64_t now, enum outbox_state *landed)
{
	enum outbox_state f;
	return c->ops->outbox_defer(c, id, next_attempt_at, why ? why : "", now,
	                            landed ? landed : &f);
}

int store_outbox_resend(struct store_conn *c, int64_t id, const char *provider, int64_t now,
                        enum outbox_state *from)
{
	enum outbox_state f;
	if (!provider_ok(provider))
		return store__errf(c, ERR_INVAL,
		                   "could not queue outbox row %lld again: provider name longer "
		                   "than %d",
		                   (long long)id, OUTBOX_PROVIDER_MAX - 1);
	return c->ops->outbox_resend(c, id, provider ? provider : "", now, from ? from : &f);
}

int store_outbox_waiting_by_tenant(struct store_conn *c, enum outbox_prio min_prio, int limit,
                                   struct arena *a, struct outbox_tenant_count **out, int *n)
{
	*out = NULL;
	*n = 0;
	if ((unsigned)min_prio >= PRIO_COUNT || limit < 1)
		return store__errf(
		        c, ERR_INVAL,
		        "could not count waiting outbox rows: bad priority %d or limit %d",
		        (int)min_prio, limit);
	return c->ops->outbox_waiting_by_tenant(c, min_prio, limit, a, out, n);
}

int store_outbox_expire(struct store_conn *c, enum outbox_prio min_prio, int64_t created_before,
                        const char *why, int64_t now, int64_t moved[PRIO_COUNT])
{
	if (!moved)
		return store__errf(c, ERR_INVAL, "could not expire outbox rows: no output");
	if ((unsigned)min_prio >= PRIO_COUNT)
		return store__errf(c, ERR_INVAL, "could not expire outbox rows: bad priority %d",
		                   (int)min_prio);
	return c->ops->outbox_expire(c, min_prio, created_before, why ? why : "", now, moved);
}

static int status_check(struct store_conn *c, const struct outbox_status_update *u)
{
	if (!u || empty(u->provider_msg_id))
		return store__errf(c, ERR_INVAL, "could not apply status: no provider id");
	if (u->state != OUTBOX_SENT && u->state != OUTBOX_DELIVERED && u->state != OUTBOX_READ &&
	    u->state != OUTBOX_FAILED)
		return store__errf(c, ERR_INVAL,
		                   "could not apply status to \"%s\": %s is not a delivery status",
		                   u->provider_msg_id, outbox_state_name(u->state));
	return 0;
}

int store_outbox_status(struct store_conn *c, const struct outbox_status_update *u,
                        struct outbox_status_result *res)
{
	struct outbox_status_result r;
	int rc = status_check(c, u);
	return rc ? rc : c->ops->outbox_status(c, u, res ? res : &r);
}

int store_outbox_statuses(struct store_conn *c, const struct outbox_status_update *u, int n,
                          struct outbox_status_result *res, int *rcs)
{
	if (!u || !res || !rcs || n < 0 || n > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL, "could not apply statuses: bad arguments (%d)", n);
	for (int i = 0; i < n; i++) {
		int rc = status_check(c, &u[i]);
		if (rc != 0)
			return rc;
		memset(&res[i], 0, sizeof(res[i]));
		rcs[i] = 0;
	}
	if (n > 1 && c->ops->outbox_statuses)
		return c->ops->outbox_statuses(c, u, n, res, rcs);
	for (int i = 0; i < n; i++) {
		rcs[i] = c->ops->outbox_status(c, &u[i], &res[i]);
		if (rcs[i] != 0 && rcs[i] != ERR_NOTFOUND)
			return rcs[i];
	}
	return 0;
}

int store_outbox_merge(struct store_conn *c, int64_t keeper_id, const char *body,
                       const int64_t *merged, int n, int64_t now)
{
	if (empty(body))
		return store__errf(c, ERR_INVAL, "could not merge into outbox row %lld: empty body",
		                   (long long)keeper_id);
	if (!merged || n < 1 || n > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL,
		                   "could not merge into outbox row %lld: %d rows not in 1..%d",
		                   (long long)keeper_id, merged ? n : 0, STORE_MAX_BATCH);
	for (int i = 0; i < n; i++)
		if (merged[i] == keeper_id)
			return store__errf(c, ERR_INVAL,
			                   "could not merge outbox row %lld into itself",
			                   (long long)keeper_id);
	return c->ops->outbox_merge(c, keeper_id, body, merged, n, now);
}

int store_outbox_list(struct store_conn *c, enum outbox_state st, int limit, struct arena *a,
                      struct outbox_row **out, int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not list outbox: no output");
	if ((unsigned)st >= OUTBOX_STATE_COUNT)
		return store__errf(c, ERR_INVAL, "could not list outbox: bad state %d", (int)st);
	if (limit < 1 || limit > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL, "could not list outbox: limit %d not in 1..%d",
		                   limit, STORE_MAX_BATCH);
	return c->ops->outbox_list(c, st, limit, a, out, n);
}

int store_outbox_counts(struct store_conn *c, int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT])
{
	if (!counts)
		return store__errf(c, ERR_INVAL, "could not count outbox: no output");
	return c->ops->outbox_counts(c, counts);
}

int store_outbox_next_due(struct store_conn *c, enum outbox_prio max_prio, int64_t *at)
{
	if (!at)
		return store__errf(c, ERR_INVAL, "could not read next due time: no output");
	if ((unsigned)max_prio >= PRIO_COUNT)
		return store__errf(c, ERR_INVAL, "could not read next due time: bad priority %d",
		                   (int)max_prio);
	return c->ops->outbox_next_due(c, max_prio, at);
}

/* ---- AI jobs and the OCR queue ------------------------------------------------------ */

int store_ai_job_add(struct store_conn *c, const struct ai_job *j, int64_t *id)
{
	if (!j || !id)
		return store__errf(c, ERR_INVAL, "could not record AI job: nothing given");
	if (empty(j->ext_id) || empty(j->from))
		return store__errf(
		        c, ERR_INVAL,
		        "could not record AI job: the message id and sender are required");
	if (j->kind != AI_JOB_REWRITE && j->kind != AI_JOB_PLAIN)
		return store__errf(c, ERR_INVAL, "could not record AI job: bad kind %d",
		                   (int)j->kind);
	return c->ops->ai_job_add(c, j, id);
}

int store_ai_job_waiting(struct store_conn *c, int64_t tenant_id, const char *from, int *waiting)
{
	if (!waiting || !from)
		return store__errf(c, ERR_INVAL, "could not look for AI jobs: no output");
	return c->ops->ai_job_waiting(c, tenant_id, from, waiting);
}

int store_ai_job_claim(struct store_conn *c, int limit, struct arena *a, struct ai_job **out,
                       int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not claim AI jobs: no output");
	if (limit < 1 || limit > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL, "could not claim AI jobs: limit %d not in 1..%d",
		                   limit, STORE_MAX_BATCH);
	return c->ops->ai_job_claim(c, limit, a, out, n);
}

int store_ai_job_finish(struct store_conn *c, int64_t id, const char *outcome,
                        const char *rewritten, int64_t now)
{
	return c->ops->ai_job_finish(c, id, outcome ? outcome : "", rewritten ? rewritten : "",
	                             now);
}

int store_ai_job_release(struct store_conn *c, int64_t id)
{
	return c->ops->ai_job_release(c, id);
}

int store_ai_job_recover(struct store_conn *c, int *n)
{
	int dummy;
	return c->ops->ai_job_recover(c, n ? n : &dummy);
}

int store_ai_job_get(struct store_conn *c, int64_t id, struct arena *a, struct ai_job *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read AI job: no output");
	return c->ops->ai_job_get(c, id, a, out);
}

int store_ai_job_count(struct store_conn *c, int64_t *n)
{
	if (!n)
		return store__errf(c, ERR_INVAL, "could not count AI jobs: no output");
	return c->ops->ai_job_count(c, n);
}

int store_ocr_add(struct store_conn *c, const struct ocr_item *o, int64_t *id)
{
	if (!o || !id)
		return store__errf(c, ERR_INVAL,
		                   "could not queue media for reading: nothing given");
	if (empty(o->ext_id) || empty(o->from))
		return store__errf(c, ERR_INVAL,
		                   "could not queue media for reading: the message id and sender "
		                   "are required");
	return c->ops->ocr_add(c, o, id);
}

int store_ocr_list(struct store_conn *c, enum ocr_state st, int64_t after_id, int limit,
                   struct arena *a, struct ocr_item **out, int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not list the OCR queue: no output");
	if (st != OCR_QUEUED && st != OCR_DONE)
		return store__errf(c, ERR_INVAL, "could not list the OCR queue: bad state %d",
		                   (int)st);
	if (limit < 1 || limit > STORE_MAX_BATCH)
		return store__errf(c, ERR_INVAL,
		                   "could not list the OCR queue: limit %d not in 1..%d", limit,
		                   STORE_MAX_BATCH);
	return c->ops->ocr_list(c, st, after_id, limit, a, out, n);
}

int store_ocr_done(struct store_conn *c, int64_t id, const char *note, int64_t now)
{
	return c->ops->ocr_done(c, id, note ? note : "", now);
}

int store_ocr_depth(struct store_conn *c, int64_t *n)
{
	if (!n)
		return store__errf(c, ERR_INVAL, "could not count the OCR queue: no output");
	return c->ops->ocr_depth(c, n);
}

/* ---- the companion app ------------------------------------------------------ */

int store_customer_ensure(struct store_conn *c, int64_t tenant_id, const char *wa_id,
                          struct arena *a, struct customer *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not find or add customer: no output");
	if (empty(wa_id))
		return store__errf(c, ERR_INVAL, "could not find or add customer: no wa_id");
	return c->ops->customer_ensure(c, tenant_id, wa_id, a, out);
}

int store_orders_list(struct store_conn *c, int64_t tenant_id, int status, int64_t before_id,
                      int limit, struct arena *a, struct order **out, int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not list orders: no output");
	if (limit < 1 || limit > STORE_MAX_BATCH || status > (int)ORDER_CANCELLED)
		return store__errf(c, ERR_INVAL,
		                   "could not list orders: limit %d or status %d out of range",
		                   limit, status);
	return c->ops->orders_list(c, tenant_id, status < 0 ? -1 : status, before_id, limit, a, out,
	                           n);
}

int store_sync_op_get(struct store_conn *c, int64_t tenant_id, const char *client_id,
                      struct arena *a, struct sync_op_record *out)
{
	if (!a || !out)
		return store__errf(c, ERR_INVAL, "could not read synced operation: no output");
	if (empty(client_id) || strlen(client_id) > STORE_SYNC_ID_MAX)
		return store__errf(
		        c, ERR_INVAL,
		        "could not read synced operation: the id must have 1 to %d bytes",
		        STORE_SYNC_ID_MAX);
	return c->ops->sync_op_get(c, tenant_id, client_id, a, out);
}

int store_sync_op_put(struct store_conn *c, int64_t tenant_id, const struct sync_op_record *r)
{
	if (!r || empty(r->client_id) || strlen(r->client_id) > STORE_SYNC_ID_MAX || empty(r->op))
		return store__errf(
		        c, ERR_INVAL,
		        "could not record synced operation: an id of 1 to %d bytes and an "
		        "operation are required",
		        STORE_SYNC_ID_MAX);
	return c->ops->sync_op_put(c, tenant_id, r);
}

/* ---- nodes, partition leases, the leader's lock ------------------------------------- */

int store__popcount(uint64_t parts)
{
	return __builtin_popcountll(parts);
}

int store__lease_share(int64_t workers)
{
	if (workers < 1)
		workers = 1;
	if (workers > STORE_PARTITIONS)
		workers = STORE_PARTITIONS;
	return (int)((STORE_PARTITIONS + workers - 1) / workers);
}

uint64_t store__lease_pick(uint64_t free, int64_t node, int want)
{
	/* a node's place: its id spread over the partitions (Fibonacci hashing) */
	int start = (int)(((uint64_t)node * 0x9E3779B97F4A7C15ULL) >> 58);
	uint64_t picked = 0;
	for (int i = 0; i < STORE_PARTITIONS && want > 0; i++) {
		int p = (start + i) % STORE_PARTITIONS;
		if (free & (1ULL << p)) {
			picked |= 1ULL << p;
			want--;
		}
	}
	return picked;
}

int store_node_join(struct store_conn *c, const struct store_node *n, int64_t now, int64_t lease_ms,
                    int64_t *id)
{
	if (!n || !id || empty(n->name) || strlen(n->name) >= STORE_NODE_NAME_MAX ||
	    (n->host && strlen(n->host) >= STORE_NODE_NAME_MAX))
		return store__errf(c, ERR_INVAL,
		                   "could not join the store's nodes: a name of 1 to %d bytes is "
		                   "required",
		                   STORE_NODE_NAME_MAX - 1);
	if (n->roles == 0 || n->roles > 15 || lease_ms < 1)
		return store__errf(c, ERR_INVAL,
		                   "could not join the store's nodes: roles %u or lease %lld ms "
		                   "out of range",
		                   n->roles, (long long)lease_ms);
	if (c->in_txn)
		return store__errf(c, ERR_INVAL,
		                   "could not join the store's nodes: a transaction is open");
	return c->ops->node_join(c, n, now, lease_ms, id);
}

int store_node_beat(struct store_conn *c, int64_t id, int64_t now, int64_t lease_ms, int *lapsed)
{
	int dummy;
	if (lease_ms < 1)
		return store__errf(c, ERR_INVAL, "could not renew node %lld: lease %lld ms",
		                   (long long)id, (long long)lease_ms);
	return c->ops->node_beat(c, id, now, lease_ms, lapsed ? lapsed : &dummy);
}

int store_node_leave(struct store_conn *c, int64_t id, int64_t now)
{
	return c->ops->node_leave(c, id, now);
}

int store_nodes_live(struct store_conn *c, int64_t now, struct arena *a, struct store_node **out,
                     int *n)
{
	if (!a || !out || !n)
		return store__errf(c, ERR_INVAL, "could not list nodes: no output");
	*out = NULL;
	*n = 0;
	return c->ops->nodes_live(c, now, a, out, n);
}

void store_set_node(struct store *st, int64_t id)
{
	atomic_store(&st->node, id);
}

int64_t store_node(const struct store *st)
{
	return st ? atomic_load(&st->node) : 0;
}

int store_partitions_claim(struct store_conn *c, int64_t node, int64_t now, int64_t lease_ms,
                           uint64_t *owned, int *share, uint64_t *taken)
{
	uint64_t dummy;
	if (!owned || !share)
		return store__errf(c, ERR_INVAL, "could not claim partitions: no output");
	*owned = 0;
	*share = 0;
	if (!taken)
		taken = &dummy;
	*taken = 0;
	if (node < 1 || lease_ms < 1)
		return store__errf(c, ERR_INVAL,
		                   "could not claim partitions: node %lld, lease %lld ms",
		                   (long long)node, (long long)lease_ms);
	return c->ops->partitions_claim(c, node, now, lease_ms, owned, share, taken);
}

int store_partitions_release(struct store_conn *c, int64_t node, uint64_t parts)
{
	if (parts == 0)
		return 0;
	return c->ops->partitions_release(c, node, parts);
}

int store_lock_new(struct store *st, const char *url, int64_t key, struct store_lock **out)
{
	if (!st || !out)
		return ERR_INVAL;
	struct store_lock *l = xcalloc(1, sizeof(*l));
	l->st = st;
	l->key = key;
	l->url = xstrdup(empty(url) ? st->url : url);
	int rc = st->ops->lock_open ? st->ops->lock_open(l, l->url) : 0;
	if (rc != 0) {
		store_lock_free(l);
		return rc;
	}
	*out = l;
	return 0;
}

int store_lock_try(struct store_lock *l, int *held)
{
	*held = 0;
	if (!l->st->ops->lock_try) {
		*held = 1; /* the one process of an embedded store */
		return 0;
	}
	return l->st->ops->lock_try(l, held);
}

const char *store_lock_errmsg(const struct store_lock *l)
{
	return l ? l->errmsg : "no lock";
}

void store_lock_free(struct store_lock *l)
{
	if (!l)
		return;
	if (l->st->ops->lock_close)
		l->st->ops->lock_close(l);
	free(l->url);
	free(l);
}
