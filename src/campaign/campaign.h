/*
 * campaign.h - the merchant API for marketing: POST /v1/campaigns queues a
 * broadcast (erp_broadcast) for the shop whose API token it carries.
 *
 *   POST /v1/campaigns
 *   Authorization: Bearer <the tenant's API token>
 *   {"text":"Diwali offer: 10% off till Sunday"}
 *
 *   202 {"queued":N,"as_text":X,"by_template":Y,"template":"name",
 *        "skipped_no_template":Z,"skipped_opted_out":W,"skipped_unaddressable":U}
 *   401 missing_token | invalid_token
 *   400 invalid_json | missing_text | invalid_text | empty_text | text_too_long
 *   503 store_unavailable (with Retry-After), 500 internal
 *   (405 for other methods comes from the router itself.)
 *   Errors: {"error":{"code":"...","message":"..."}}.
 *
 * A token is 32 random bytes in hex (`munim tenant token`); the store keeps
 * only its SHA-256, so a copy of the database does not hold a usable token.
 */
#ifndef MUNIM_CAMPAIGN_H
#define MUNIM_CAMPAIGN_H

#include <stddef.h>

#include "app.h"
#include "core/arena.h"
#include "http/http.h"
#include "store/store.h"

#define CAMPAIGN_PATH        "/v1/campaigns"
#define CAMPAIGN_TOKEN_BYTES 32
#define CAMPAIGN_TOKEN_HEX   (2 * CAMPAIGN_TOKEN_BYTES)

struct campaign;

/*
 * campaign_start connects the endpoint's own store connection (used under
 * a mutex: campaigns are rare and each is one transaction). 0, or the
 * store's error (logged).
 */
int campaign_start(struct app *app, struct campaign **out);
/* Frees cp (NULL: nothing); the HTTP server must be stopped first. */
void campaign_stop(struct campaign *cp);
/* The route (POST /v1/campaigns) bound to cp; returns how many (1) or
 * ERR_INVAL when max is too small. */
int campaign_routes(struct campaign *cp, struct http_route *routes, int max);

/* What campaign_handle answers: status, JSON body (in the arena given). */
struct campaign_answer {
	unsigned int status;
	const char *body;
	int64_t retry_after_s; /* a 503's Retry-After; 0: the default */
};

/*
 * campaign_handle is the endpoint without HTTP: the Authorization header
 * (NULL when absent) and the request body (len bytes) → *ans. On success
 * the rows are committed and app's gauges moved. Thread-safe (the
 * connection is taken under cp's mutex).
 */
void campaign_handle(struct campaign *cp, const char *authorization, const char *body, size_t len,
                     struct arena *a, struct campaign_answer *ans);

/*
 * campaign_token_hash writes the SHA-256 of token (len bytes) as 64
 * lower-case hex digits and a NUL into hash: what the store keeps.
 * campaign_token_new makes a new token (CAMPAIGN_TOKEN_BYTES from
 * getrandom, hex, NUL-terminated) and its hash. 0, or ERR_IO when the
 * system has no randomness to give (or the digest fails).
 */
int campaign_token_hash(const char *token, size_t len, char hash[STORE_TOKEN_HASH_LEN + 1]);
int campaign_token_new(char token[CAMPAIGN_TOKEN_HEX + 1], char hash[STORE_TOKEN_HASH_LEN + 1]);

/*
 * campaign_authenticate: the tenant whose API token the Authorization
 * header (NULL when absent) carries as "Bearer <token>" - the one check of
 * every merchant endpoint (campaigns, the companion app). 0 with
 * *tenant_id; ERR_INVAL when there is no bearer token, ERR_NOTFOUND when no
 * tenant holds it, or the store's error (its message on c). The token is
 * looked up as its SHA-256, never compared as text.
 */
int campaign_authenticate(struct store_conn *c, const char *authorization, int64_t *tenant_id);

#endif
