/*
 * ingest.c - the webhook endpoint: GET verification, POST signature check,
 * parsing, tenant resolution; the start and stop of the committers.
 *
 * POST /webhooks/whatsapp (on_post, on an HTTP server thread)
 *
 *   X-Hub-Signature-256 wrong/missing     -> 401, nothing parsed or stored
 *   body not a WhatsApp payload           -> 400 {"error":...}
 *   more than 1000 messages and statuses  -> 413 (see envelope.c)
 *   tenant lookup failed (store error)    -> 503 + Retry-After
 *   no change for a known tenant          -> 200 at once, no commit
 *   otherwise: the entries become a job, the request is suspended and the
 *   job queued for the committer:
 *     committed                           -> 200 {"ok":true}
 *     store failed (locked, disk full...) -> 503 + Retry-After
 *     ingest stopping                     -> 503 + Retry-After
 *
 *   Changes whose phone_number_id no tenant owns are skipped, counted in
 *   metrics.webhook_unknown_tenant and logged; the rest of the body is kept.
 *
 * The group commit, in committer lanes: commit.c.
 *
 * Tenant cache
 *   phone_number_id -> tenant id, direct-mapped (INGEST_CACHE_SLOTS slots,
 *   a colliding key replaces the old one, so it never grows), one mutex per
 *   stripe of slots. Known tenants live INGEST_POS_TTL_MS, unknown ids
 *   INGEST_NEG_TTL_MS so that a tenant provisioned a moment ago is found
 *   soon. Misses read the store through a small pool of connections (HTTP
 *   threads are not ours, so they cannot own connections).
 *
 * Threads and ownership
 *   struct ingest: app and cfg are read-only; the lanes as commit.c says;
 *   cache slots under their stripe's mutex; pool under pool_mu. A job
 *   lives in its request's arena: the handler builds it, then it belongs
 *   to its lane until http_respond.
 *   ingest_stop must be called once the HTTP server can no longer call the
 *   handlers (after http_server_stop), since it frees what they use.
 */
#include "ingest/ingest_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "ingest/envelope.h"
#include "ingest/sig.h"

#define INGEST_PATH          "/webhooks/whatsapp"
#define INGEST_RETRY_AFTER   "5"
#define INGEST_CHALLENGE_MAX 1024
/* The commit window by default with a database server (--commit-window-ms
 * -1): what a statement costs there is the server's work and a round trip,
 * whatever its rows, so a commit's requests share their statements. */
#define INGEST_SERVER_WINDOW_MS 5
/* Committer lanes by default with a database server (--committers -1): the
 * server's work for a commit is done by that lane's connection, one core's
 * worth at most, so one lane would cap the webhook rate there. */
#define INGEST_SERVER_LANES 2

struct cache_slot {
	char key[INGEST_CACHE_KEYMAX + 1]; /* "" = empty */
	int64_t tenant_id;                 /* 0 = no such tenant */
	int64_t expires_ms;                /* monotonic */
};

/* ---- answers --------------------------------------------------------------- */

static void respond_json(struct http_req *r, unsigned int status, const char *body)
{
	http_respond(r, status, "application/json", body, strlen(body));
}

/* Answers a POST and counts it by status. */
void ingest__answer(struct ingest *ig, struct http_req *r, unsigned int status, const char *body)
{
	atomic_fetch_add_explicit(&ig->app->metrics.webhook_requests[metrics_code_index(status)], 1,
	                          memory_order_relaxed);
	if (status == 503)
		http_set_header(r, "Retry-After", INGEST_RETRY_AFTER);
	respond_json(r, status, body);
}

/* ---- tenant cache and lookup connections ---------------------------------- */

static struct store_conn *pool_get(struct ingest *ig, int *rc)
{
	struct store_conn *c = NULL;
	*rc = 0;
	pthread_mutex_lock(&ig->pool_mu);
	while (ig->pool_free == 0 && ig->pool_open == INGEST_POOL_MAX)
		pthread_cond_wait(&ig->pool_cv, &ig->pool_mu);
	if (ig->pool_free > 0) {
		c = ig->pool[--ig->pool_free];
		pthread_mutex_unlock(&ig->pool_mu);
		return c;
	}
	ig->pool_open++;
	pthread_mutex_unlock(&ig->pool_mu);
	*rc = store_connect(ig->app->store, &c);
	if (*rc) {
		pthread_mutex_lock(&ig->pool_mu);
		ig->pool_open--;
		pthread_cond_signal(&ig->pool_cv);
		pthread_mutex_unlock(&ig->pool_mu);
		return NULL;
	}
	return c;
}

static void pool_put(struct ingest *ig, struct store_conn *c)
{
	pthread_mutex_lock(&ig->pool_mu);
	ig->pool[ig->pool_free++] = c;
	pthread_cond_signal(&ig->pool_cv);
	pthread_mutex_unlock(&ig->pool_mu);
}

/* 1 and *tenant_id on a live cache entry, else 0. */
static int cache_get(struct ingest *ig, const char *key, size_t klen, int64_t now,
                     int64_t *tenant_id)
{
	if (klen > INGEST_CACHE_KEYMAX)
		return 0;
	size_t i = hash_fnv1a(key, klen) % INGEST_CACHE_SLOTS;
	pthread_mutex_t *mu = &ig->stripe_mu[i % INGEST_STRIPES];
	int hit = 0;
	pthread_mutex_lock(mu);
	struct cache_slot *sl = &ig->slots[i];
	if (sl->expires_ms > now && strcmp(sl->key, key) == 0) {
		*tenant_id = sl->tenant_id;
		hit = 1;
	}
	pthread_mutex_unlock(mu);
	return hit;
}

static void cache_put(struct ingest *ig, const char *key, size_t klen, int64_t tenant_id,
                      int64_t expires)
{
	if (klen > INGEST_CACHE_KEYMAX)
		return;
	size_t i = hash_fnv1a(key, klen) % INGEST_CACHE_SLOTS;
	pthread_mutex_t *mu = &ig->stripe_mu[i % INGEST_STRIPES];
	pthread_mutex_lock(mu);
	struct cache_slot *sl = &ig->slots[i];
	memcpy(sl->key, key, klen + 1);
	sl->tenant_id = tenant_id;
	sl->expires_ms = expires;
	pthread_mutex_unlock(mu);
}

int ingest__resolve(struct ingest *ig, const char *pnid, int64_t *tenant_id)
{
	size_t klen = strlen(pnid);
	int64_t now = clock_mono_us() / 1000;
	struct tenant t;
	struct arena a;
	int rc;

	*tenant_id = 0;
	if (klen == 0)
		return 0;
	if (cache_get(ig, pnid, klen, now, tenant_id))
		return 0;
	struct store_conn *c = pool_get(ig, &rc);
	if (!c)
		return rc;
	arena_init(&a, 1024);
	rc = store_tenant_by_phone(c, pnid, &a, &t);
	if (rc == 0) {
		*tenant_id = t.id;
		cache_put(ig, pnid, klen, t.id, now + INGEST_POS_TTL_MS);
	} else if (rc == ERR_NOTFOUND) {
		rc = 0;
		cache_put(ig, pnid, klen, 0, now + INGEST_NEG_TTL_MS);
	} else {
		log_error("ingest.tenant_lookup_failed",
		          "could not look up tenant of phone_number_id \"%s\": %s", pnid,
		          store_errmsg(c));
	}
	arena_release(&a);
	pool_put(ig, c);
	return rc;
}

/* ---- handlers ------------------------------------------------------------------- */

/* Equal in time independent of where (or whether) a and b differ. */
static int token_equal(const char *a, const char *b)
{
	unsigned char ha[SHA256_DIGEST_LENGTH], hb[SHA256_DIGEST_LENGTH];
	SHA256((const unsigned char *)a, strlen(a), ha);
	SHA256((const unsigned char *)b, strlen(b), hb);
	return CRYPTO_memcmp(ha, hb, sizeof(ha)) == 0;
}

/* GET: the subscription handshake. */
static void on_verify(struct http_req *r, void *ud)
{
	struct ingest *ig = ud;
	const char *mode = http_req_query(r, "hub.mode");
	const char *token = http_req_query(r, "hub.verify_token");
	const char *challenge = http_req_query(r, "hub.challenge");
	const char *want = ig->app->cfg.verify_token;

	if (!mode || strcmp(mode, "subscribe") != 0 || !token || !want || !*want ||
	    !token_equal(token, want)) {
		respond_json(r, 403, "{\"error\":\"forbidden\"}");
		return;
	}
	if (!challenge || strlen(challenge) > INGEST_CHALLENGE_MAX) {
		respond_json(r, 400, "{\"error\":\"bad hub.challenge\"}");
		return;
	}
	log_info("webhook.verified", "webhook subscription verified");
	http_respond(r, 200, "text/plain", challenge, strlen(challenge));
}

/* POST: a notification. */
static void on_post(struct http_req *r, void *ud)
{
	struct ingest *ig = ud;
	struct arena *a = http_req_arena(r);
	struct envelope env;
	size_t len;
	const char *body = http_req_body(r, &len);
	int rc;

	if (sig_verify(ig->app->cfg.app_secret, body, len,
	               http_req_header(r, "X-Hub-Signature-256")) != 0) {
		ingest__answer(ig, r, 401, "{\"error\":\"bad signature\"}");
		return;
	}
	rc = envelope_parse(body, len, clock_wall_ms(), a, &env);
	if (rc == ERR_TOOBIG) {
		ingest__answer(ig, r, 413, "{\"error\":\"more than 1000 messages and statuses\"}");
		return;
	}
	if (rc) {
		ingest__answer(ig, r, 400,
		               "{\"error\":\"not a whatsapp business account webhook\"}");
		return;
	}

	struct metrics *m = &ig->app->metrics;
	atomic_fetch_add_explicit(&m->webhook_entries_skipped, (uint64_t)env.nskipped,
	                          memory_order_relaxed);
	atomic_fetch_add_explicit(&m->webhook_payload_errors, (uint64_t)env.nerrors,
	                          memory_order_relaxed);
	int total = 0;
	for (int i = 0; i < env.nchanges; i++)
		total += env.changes[i].nentries;
	struct ingest_job *job = arena_calloc(a, sizeof(*job));
	size_t cap = (size_t)(total ? total : 1);
	job->req = r;
	job->entries = arena_alloc(a, sizeof(*job->entries) * cap);
	job->statuses = arena_alloc(a, sizeof(*job->statuses) * cap);
	for (int i = 0; i < env.nchanges; i++) {
		const struct env_change *ch = &env.changes[i];
		int64_t tid;
		if (ch->nentries == 0)
			continue;
		rc = ingest__resolve(ig, ch->phone_number_id, &tid);
		if (rc) {
			ingest__answer(ig, r, 503,
			               "{\"error\":\"could not look up tenant, retry\"}");
			return;
		}
		if (tid == 0) {
			atomic_fetch_add_explicit(&ig->app->metrics.webhook_unknown_tenant, 1,
			                          memory_order_relaxed);
			log_warn("webhook.unknown_tenant",
			         "no tenant has phone_number_id \"%s\"; %d entries skipped",
			         ch->phone_number_id, ch->nentries);
			continue;
		}
		for (int k = 0; k < ch->nentries; k++) {
			const struct inbox_entry *e = &ch->entries[k];
			struct inbox_entry *to = e->kind == INBOX_STATUS
			                                 ? &job->statuses[job->nstatus++]
			                                 : &job->entries[job->n++];
			*to = *e;
			to->tenant_id = tid;
		}
	}
	if (job->n == 0 && job->nstatus == 0) {
		ingest__answer(ig, r, 200, INGEST_OK_BODY);
		return;
	}
	job->results = arena_calloc(a, sizeof(*job->results) * (size_t)(job->n ? job->n : 1));
	job->moves =
	        arena_calloc(a, sizeof(*job->moves) * (size_t)(job->nstatus ? job->nstatus : 1));
	http_suspend(r);
	ingest__submit(ig, a, job);
}

/* ---- lifecycle ---------------------------------------------------------------- */

static void ingest_free(struct ingest *ig)
{
	for (int i = 0; i < ig->pool_free; i++)
		store_disconnect(ig->pool[i]);
	for (int i = 0; i < ig->nlanes; i++)
		ingest__lane_free(&ig->lanes[i]);
	free(ig->lanes);
	for (int i = 0; i < INGEST_STRIPES; i++)
		pthread_mutex_destroy(&ig->stripe_mu[i]);
	pthread_rwlock_destroy(&ig->commit_lock);
	pthread_mutex_destroy(&ig->pool_mu);
	pthread_cond_destroy(&ig->pool_cv);
	free(ig->slots);
	free(ig);
}

/*
 * ingest_start connects the committers to app->store and starts them.
 * ERR_INVAL when no app secret is configured (nothing could ever verify);
 * the store's error when one cannot connect.
 */
int ingest_start(struct app *app, struct sender *sender, struct ingest **out)
{
	struct ingest *ig;
	int rc = 0;

	*out = NULL;
	if (!app->cfg.app_secret || !*app->cfg.app_secret) {
		log_error("ingest.start_failed",
		          "could not start ingest: no app secret configured");
		return ERR_INVAL;
	}
	ig = xcalloc(1, sizeof(*ig));
	ig->app = app;
	ig->slots = xcalloc(INGEST_CACHE_SLOTS, sizeof(*ig->slots));
	pthread_rwlockattr_t ra; /* a lane waiting to commit alone is not starved */
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&ig->commit_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&ig->pool_mu, NULL);
	pthread_cond_init(&ig->pool_cv, NULL);
	for (int i = 0; i < INGEST_STRIPES; i++)
		pthread_mutex_init(&ig->stripe_mu[i], NULL);

	ig->window_ms = app->cfg.commit_window_ms;
	if (ig->window_ms < 0)
		ig->window_ms = store_shared_writers(app->store) ? INGEST_SERVER_WINDOW_MS : 0;
	int nlanes = (int)app->cfg.committers;
	if (nlanes <= 0)
		nlanes = store_shared_writers(app->store) ? INGEST_SERVER_LANES : 1;
	if (nlanes > INGEST_LANES_MAX)
		nlanes = INGEST_LANES_MAX;
	ig->lanes = xcalloc((size_t)nlanes, sizeof(*ig->lanes));
	for (; ig->nlanes < nlanes && rc == 0; ig->nlanes++)
		rc = ingest__lane_open(ig, &ig->lanes[ig->nlanes], ig->nlanes, sender);
	if (rc)
		goto fail;
	for (int i = 0; i < ig->nlanes; i++) {
		struct lane *l = &ig->lanes[i];
		char name[16];
		rc = pthread_create(&l->thread, NULL, ingest__committer_main, l);
		if (rc) {
			log_error("ingest.start_failed", "could not start committer thread %d: %s",
			          i, strerror(rc));
			rc = ERR_AGAIN;
			goto fail;
		}
		snprintf(name, sizeof(name), "ingest-commit%u", (unsigned)i % 100u);
		pthread_setname_np(l->thread, name);
		l->thread_started = 1;
	}
	*out = ig;
	return 0;
fail:
	ingest__lanes_stop(ig);
	ingest_free(ig);
	return rc;
}

void ingest_stop(struct ingest *ig)
{
	if (!ig)
		return;
	ingest__lanes_stop(ig);
	ingest_free(ig);
}

/* The server refused a webhook by itself (body too large): count it. */
static void on_refused(unsigned int status, void *ud)
{
	struct ingest *ig = ud;
	atomic_fetch_add_explicit(&ig->app->metrics.webhook_requests[metrics_code_index(status)], 1,
	                          memory_order_relaxed);
}

int ingest_routes(struct ingest *ig, struct http_route *routes, int max)
{
	if (max < 2)
		return ERR_INVAL;
	routes[0] = (struct http_route){"GET", INGEST_PATH, 0, on_verify, ig, NULL};
	routes[1] = (struct http_route){"POST", INGEST_PATH, 0, on_post, ig, on_refused};
	return 2;
}
