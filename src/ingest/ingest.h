/*
 * ingest.h - the webhook endpoint: verification handshake, signature check,
 * parsing, tenant resolution and the group commit into the inbox.
 *
 * A POST is answered 200 only after its entries are committed (fsync'd) by
 * the committer thread, which folds all requests waiting at that moment into
 * one transaction. See ingest.c for the error rows (401, 400, 413, 503).
 */
#ifndef MUNIM_INGEST_H
#define MUNIM_INGEST_H

#include "app.h"
#include "http/http.h"
#include "send/sender.h"

struct ingest;

/*
 * ingest_start connects the committer and starts it. With app->backlog
 * (the fast path: serve runs the worker role too), each commit also runs
 * up to cfg.inline_max of its new messages through the ERP - those whose
 * customer has nothing waiting in the inbox: inbox entry, effects and
 * replies in one transaction, one fsync, no hand-over. With a sender too
 * (NULL: none in this process), their replies go to it directly, born
 * claimed (worker.h, sender.h), once the commit is durable.
 */
int ingest_start(struct app *app, struct sender *sender, struct ingest **out);
/* Finishes the commit in progress, fails the waiting requests with 503. */
void ingest_stop(struct ingest *ig);
/* Routes (GET and POST /webhooks/whatsapp) bound to ig, for the server. */
int ingest_routes(struct ingest *ig, struct http_route *routes, int max);

#endif
