/*
 * companion.h - the shop's companion app API: orders, stock and invoices
 * over REST, and the batch sync of operations the app saved while it was
 * offline. It works whether or not WhatsApp does: it never touches the
 * sender, and what its writes tell customers waits in the outbox (PENDING)
 * like any reply until a provider takes it.
 *
 *   GET  /v1/stock[?q=]                        items with stock and price
 *   GET  /v1/orders[?status=&limit=&before=]   orders with lines, newest first
 *   GET  /v1/orders/{id}                       one order
 *   POST /v1/orders                            place (and by default confirm) an order
 *   GET  /v1/invoices/{order id}               the order's GST invoice
 *   POST /v1/sync                              apply a device's saved operations once
 *
 * Every request carries the tenant's API token (`munim tenant token`) as
 * "Authorization: Bearer <token>", checked by campaign_authenticate.
 * Errors: {"error":{"code":"...","message":"..."}} with 400, 401, 404,
 * 409, 413 or 503 (docs/companion-api.md lists every code).
 */
#ifndef MUNIM_COMPANION_H
#define MUNIM_COMPANION_H

#include <stddef.h>

#include "app.h"
#include "core/arena.h"
#include "http/http.h"

struct companion;

/* companion_start connects the API's own store connection (used under a
 * mutex) and its catalogue cache. 0, or the store's error (logged). */
int companion_start(struct app *app, struct companion **out);
/* Frees cp (NULL: nothing); the HTTP server must be stopped first. */
void companion_stop(struct companion *cp);
/* The routes bound to cp into routes[0..max); returns how many
 * (COMPANION_ROUTES) or ERR_INVAL when max is too small. */
#define COMPANION_ROUTES 6
int companion_routes(struct companion *cp, struct http_route *routes, int max);

/* One request, without HTTP: query arguments NULL when absent. */
struct companion_request {
	const char *method;
	const char *path;
	const char *authorization;
	const char *body;
	size_t len;
	const char *q, *status, *limit, *before;
};

struct companion_answer {
	unsigned int status;
	const char *body; /* JSON, in the arena given */
};

/*
 * companion_handle answers rq into *ans (strings in a). Writes are
 * committed (durably) before it returns; the outbox gauges move and the
 * sender is woken after the commit. Thread-safe (cp's connection is taken
 * under its mutex).
 */
void companion_handle(struct companion *cp, const struct companion_request *rq, struct arena *a,
                      struct companion_answer *ans);

#endif
