/*
 * campaign.c - POST /v1/campaigns: a merchant's system queues a broadcast.
 *
 * The path of a request (campaign_handle, on an HTTP server thread)
 *
 *   no "Authorization: Bearer <token>"       → 401 missing_token
 *   token's SHA-256 held by no tenant        → 401 invalid_token
 *   body not a JSON object                   → 400 invalid_json
 *   no "text" / not a string / empty / long  → 400 missing_text, invalid_text,
 *                                              empty_text, text_too_long
 *   BEGIN; tenant; erp_broadcast; COMMIT     → 202 with the counts
 *   the store busy, full or failing          → 503 store_unavailable + Retry-After
 *
 * The caller is authenticated before its body is read, so a stranger
 * learns nothing about what a body should hold. Tokens are compared as
 * their SHA-256 through the store's unique index: the stored value is not
 * the secret, and the lookup's timing says nothing useful about a token.
 *
 * One connection, one mutex: campaigns are rare, and each is one
 * transaction (every row of it, and its audit row, commit together or not
 * at all; the commit is an ordinary, durable one). The outbox gauges move
 * after the commit and the sender is woken. A campaign holds the store's
 * writer lock while its rows are written (about 20 µs a row): other
 * writers wait that long, once.
 *
 * Threads: cp->conn only under cp->mu; app's metrics are atomics.
 */
#include "campaign/campaign.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "erp/erp.h"

#define CAMPAIGN_RETRY_AFTER "5"
/* A bearer value longer than this is not one of ours (nothing is hashed). */
#define CAMPAIGN_TOKEN_MAX 256

struct campaign {
	struct app *app;
	pthread_mutex_t mu;      /* guards conn */
	struct store_conn *conn; /* the endpoint's own */
};

/* ---- tokens ------------------------------------------------------------------ */

static void hex_lower(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int campaign_token_hash(const char *token, size_t len, char hash[STORE_TOKEN_HASH_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (!EVP_Digest(token, len, md, &mdlen, EVP_sha256(), NULL) ||
	    mdlen * 2 != STORE_TOKEN_HASH_LEN) {
		hash[0] = '\0';
		return ERR_IO;
	}
	hex_lower(md, mdlen, hash);
	return 0;
}

int campaign_token_new(char token[CAMPAIGN_TOKEN_HEX + 1], char hash[STORE_TOKEN_HASH_LEN + 1])
{
	unsigned char raw[CAMPAIGN_TOKEN_BYTES];
	size_t got = 0;
	while (got < sizeof(raw)) { /* 32 bytes never come short, but be exact */
		ssize_t n = getrandom(raw + got, sizeof(raw) - got, 0);
		if (n <= 0) {
			OPENSSL_cleanse(raw, sizeof(raw));
			return ERR_IO;
		}
		got += (size_t)n;
	}
	hex_lower(raw, sizeof(raw), token);
	OPENSSL_cleanse(raw, sizeof(raw));
	return campaign_token_hash(token, CAMPAIGN_TOKEN_HEX, hash);
}

/* ---- answers ------------------------------------------------------------------ */

/* code and message are static text, already escaped for a JSON string. */
static void fail(struct campaign_answer *ans, struct arena *a, unsigned int status,
                 const char *code, const char *message)
{
	ans->status = status;
	ans->body =
	        arena_sprintf(a, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}", code, message);
}

/* A store failure: 503 for the store's trouble (busy, disk full, I/O),
 * which a retry may pass; 500 for anything else. Logged here, once. */
static void fail_store(struct campaign_answer *ans, struct arena *a, struct store_conn *c, int rc,
                       const char *doing)
{
	log_error("campaign.store_failed", "could not %s: %s", doing, store_errmsg(c));
	if (err_transient(rc))
		fail(ans, a, 503, "store_unavailable",
		     "the store is unavailable for now; try again in a few seconds");
	else
		fail(ans, a, 500, "internal", "the campaign could not be queued");
}

static void succeed(struct campaign_answer *ans, struct arena *a, const struct erp_broadcast *bc)
{
	json_t *v = json_pack(
	        "{s:I, s:I, s:I, s:s, s:I, s:I, s:I}", "queued", (json_int_t)bc->queued, "as_text",
	        (json_int_t)bc->as_text, "by_template", (json_int_t)bc->by_template, "template",
	        bc->template_name, "skipped_no_template", (json_int_t)bc->skipped_no_template,
	        "skipped_opted_out", (json_int_t)bc->skipped_opted_out, "skipped_unaddressable",
	        (json_int_t)bc->skipped_unaddressable);
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	ans->status = 202;
	ans->body = arena_strdup(a, s ? s : "{}");
	free(s);
}

/* ---- the request ---------------------------------------------------------------- */

/* The token of "Bearer <token>" (scheme case-insensitive), or NULL. */
static const char *bearer(const char *auth, size_t *len)
{
	if (!auth)
		return NULL;
	while (*auth == ' ' || *auth == '\t')
		auth++;
	if (strncasecmp(auth, "Bearer", 6) != 0 || (auth[6] != ' ' && auth[6] != '\t'))
		return NULL;
	const char *t = auth + 6;
	while (*t == ' ' || *t == '\t')
		t++;
	size_t n = strlen(t);
	while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
		n--;
	if (n == 0)
		return NULL;
	*len = n;
	return t;
}

int campaign_authenticate(struct store_conn *c, const char *authorization, int64_t *tenant_id)
{
	char hash[STORE_TOKEN_HASH_LEN + 1];
	size_t tlen = 0;
	*tenant_id = 0;
	const char *token = bearer(authorization, &tlen);
	if (!token)
		return ERR_INVAL;
	if (tlen > CAMPAIGN_TOKEN_MAX || campaign_token_hash(token, tlen, hash) != 0)
		return ERR_NOTFOUND;
	return store_tenant_by_token_hash(c, hash, tenant_id);
}

/* 1 when text (len bytes) is only white space. */
static int blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

/* Reads "text" from the body; 0, or an answer already written. */
static int read_text(const char *body, size_t len, struct arena *a, struct campaign_answer *ans,
                     const char **text)
{
	const struct jsonr_val *root = NULL;
	size_t tl = 0;
	if (!body || jsonr_parse(body, len, a, &root) != 0 || !jsonr_is_object(root)) {
		fail(ans, a, 400, "invalid_json", "the body must be a JSON object");
		return ERR_INVAL;
	}
	const struct jsonr_val *v = jsonr_get(root, "text");
	if (!v) {
		fail(ans, a, 400, "missing_text", "the body must have a \\\"text\\\"");
		return ERR_INVAL;
	}
	*text = jsonr_str(v, &tl);
	if (!*text || strlen(*text) != tl) {
		fail(ans, a, 400, "invalid_text", "\\\"text\\\" must be a string without NUL");
		return ERR_INVAL;
	}
	if (blank(*text, tl)) {
		fail(ans, a, 400, "empty_text", "\\\"text\\\" is empty");
		return ERR_INVAL;
	}
	if (tl > ERP_BROADCAST_TEXT_MAX) {
		ans->status = 400;
		ans->body =
		        arena_sprintf(a,
		                      "{\"error\":{\"code\":\"text_too_long\",\"message\":"
		                      "\"\\\"text\\\" has %zu bytes, at most %d are allowed\"}}",
		                      tl, ERP_BROADCAST_TEXT_MAX);
		return ERR_INVAL;
	}
	return 0;
}

/* Called with cp->mu held: authenticate, read, queue, commit. */
static void handle_locked(struct campaign *cp, const char *authorization, const char *body,
                          size_t len, struct arena *a, struct campaign_answer *ans, int64_t *queued)
{
	struct store_conn *c = cp->conn;
	struct erp_broadcast bc;
	struct tenant t;
	const char *text = NULL;
	int64_t tenant_id = 0;

	int rc = campaign_authenticate(c, authorization, &tenant_id);
	if (rc == ERR_INVAL) {
		fail(ans, a, 401, "missing_token", "send Authorization: Bearer <your API token>");
		return;
	}
	if (rc == ERR_NOTFOUND) {
		fail(ans, a, 401, "invalid_token", "the API token is not valid");
		return;
	}
	if (rc < 0) {
		fail_store(ans, a, c, rc, "find the tenant of an API token");
		return;
	}
	if (read_text(body, len, a, ans, &text) != 0)
		return;

	if ((rc = store_begin(c)) < 0) {
		fail_store(ans, a, c, rc, "begin a campaign");
		return;
	}
	rc = store_tenant_get(c, tenant_id, a, &t);
	if (rc == 0)
		rc = erp_broadcast(c, &t, "api", text, clock_wall_ms(), a, &bc);
	if (rc == 0 && bc.paused) {
		/* the seed's spike level 4: new marketing is refused until it falls */
		store_rollback(c);
		fail(ans, a, 503, "marketing_paused",
		     "traffic is at its emergency level: new campaigns are refused for now, "
		     "retry after the time in Retry-After");
		ans->retry_after_s = cp->app->cfg.marketing_retry_after_s;
		atomic_fetch_add(&cp->app->metrics.marketing_refused, 1);
		return;
	}
	if (rc == 0)
		rc = store_commit(c);
	if (rc == 0) {
		*queued = bc.queued;
		log_info("campaign.queued",
		         "tenant %lld: campaign queued to %lld customers (%lld by template), %lld "
		         "skipped without a template, %lld opted out",
		         (long long)tenant_id, (long long)bc.queued, (long long)bc.by_template,
		         (long long)bc.skipped_no_template, (long long)bc.skipped_opted_out);
		succeed(ans, a, &bc);
		return;
	}
	if (rc == ERR_INVAL) /* nothing left of the text once cleaned */
		fail(ans, a, 400, "empty_text", "\\\"text\\\" has nothing to send");
	else
		fail_store(ans, a, c, rc, "queue a campaign");
	store_rollback(c); /* after a failed commit too (it may leave it open) */
}

void campaign_handle(struct campaign *cp, const char *authorization, const char *body, size_t len,
                     struct arena *a, struct campaign_answer *ans)
{
	int64_t queued = 0;
	pthread_mutex_lock(&cp->mu);
	handle_locked(cp, authorization, body, len, a, ans, &queued);
	pthread_mutex_unlock(&cp->mu);
	if (queued > 0) { /* committed: the gauges and the sender hear of it */
		atomic_fetch_add(&cp->app->metrics.outbox[PRIO_P3][OUTBOX_PENDING], queued);
		notify_signal(&cp->app->outbox_ready);
	}
}

static void on_post(struct http_req *r, void *ud)
{
	struct campaign_answer ans = {500, "{}", 0};
	size_t len = 0;
	const char *body = http_req_body(r, &len);
	campaign_handle(ud, http_req_header(r, "Authorization"), body, len, http_req_arena(r),
	                &ans);
	if (ans.status == 401)
		http_set_header(r, "WWW-Authenticate", "Bearer");
	if (ans.status == 503 && ans.retry_after_s > 0) {
		char secs[24];
		snprintf(secs, sizeof(secs), "%lld", (long long)ans.retry_after_s);
		http_set_header(r, "Retry-After", secs);
	} else if (ans.status == 503) {
		http_set_header(r, "Retry-After", CAMPAIGN_RETRY_AFTER);
	}
	http_respond(r, ans.status, "application/json", ans.body, strlen(ans.body));
}

/* ---- life ------------------------------------------------------------------------- */

int campaign_start(struct app *app, struct campaign **out)
{
	struct campaign *cp = xcalloc(1, sizeof(*cp));
	*out = NULL;
	cp->app = app;
	int rc = store_connect(app->store, &cp->conn);
	if (rc != 0) {
		log_error("campaign.start_failed",
		          "could not connect the campaign endpoint to the store: %s", err_str(rc));
		free(cp);
		return rc;
	}
	pthread_mutex_init(&cp->mu, NULL);
	*out = cp;
	return 0;
}

void campaign_stop(struct campaign *cp)
{
	if (!cp)
		return;
	store_disconnect(cp->conn);
	pthread_mutex_destroy(&cp->mu);
	free(cp);
}

int campaign_routes(struct campaign *cp, struct http_route *routes, int max)
{
	if (max < 1)
		return ERR_INVAL;
	routes[0] = (struct http_route){"POST", CAMPAIGN_PATH, 0, on_post, cp, NULL};
	return 1;
}
