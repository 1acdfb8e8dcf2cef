/*
 * companion_internal.h - what companion.c (the REST routes) and sync.c (the
 * batch sync) share, and tests/unit/test_companion.c may use.
 */
#ifndef MUNIM_COMPANION_INTERNAL_H
#define MUNIM_COMPANION_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <jansson.h>

#include "companion/companion.h"
#include "erp/erp.h"
#include "store/store.h"

struct companion {
	struct app *app;
	pthread_mutex_t mu;      /* guards conn and cache */
	struct store_conn *conn; /* the API's own */
	struct store_conn
	        *read_conn;      /* GETs: a read replica's when there are (store_connect_read) */
	struct erp_cache *cache; /* catalogues read through conn */
};

/* An error answer {"error":{"code","message"}}; message is any text. */
void companion__fail(struct companion_answer *ans, struct arena *a, unsigned int status,
                     const char *code, const char *message);
/* A store failure, logged once: 503 when a retry may pass (busy, full,
 * I/O), else 500. doing: "list orders". */
void companion__fail_store(struct companion_answer *ans, struct arena *a, struct store_conn *c,
                           int rc, const char *doing);
/* The error object {"code","message"} (a new reference). */
json_t *companion__error(const char *code, const char *message);
/* The HTTP status of an ERP refusal code ("short_stock" → 409, ...). */
unsigned int companion__refusal_status(const char *code);
/* v (its reference taken) as compact JSON text in a. */
const char *companion__dump(struct arena *a, json_t *v);
/*
 * companion__order_json reads order_id of the tenant with its lines, its
 * customer's number and its invoice (when issued) into *out (a new
 * reference). ERR_NOTFOUND when the tenant has no such order, else 0 or
 * the store's error.
 */
int companion__order_json(struct store_conn *c, int64_t tenant_id, int64_t order_id,
                          struct arena *a, json_t **out);
/*
 * companion__read_order reads {"customer", "lines": [{"item", "qty"}],
 * "confirm"} (POST /v1/orders, or an order.create operation's args) into
 * its out-parameters (strings in a; confirm defaults to 1). 0, or ERR_INVAL
 * with *code and *message saying what is wrong.
 */
int companion__read_order(json_t *args, struct arena *a, const char **customer,
                          struct erp_direct_line **lines, int *n, int *confirm, const char **code,
                          const char **message);
/* The outbox rows a committed request queued: gauges moved, sender woken. */
void companion__committed(struct companion *cp, const int64_t queued[PRIO_COUNT]);

/*
 * companion__sync is POST /v1/sync for the tenant (cp->mu held): the batch
 * in one transaction, each operation in its own savepoint and recorded in
 * companion_ops, answered 200 with one result per operation; queued gets
 * the outbox rows it committed.
 */
void companion__sync(struct companion *cp, int64_t tenant_id, const char *body, size_t len,
                     struct arena *a, struct companion_answer *ans, int64_t queued[PRIO_COUNT]);

#endif
