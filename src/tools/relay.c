/*
 * relay.c - `munim relay`: the floor under serve's end-to-end figures.
 *
 * It does what serve does on the network and nothing else: answers each
 * signed webhook (HMAC checked, payload parsed) with 200 at once and sends
 * one text reply per message to the provider, quoting it through
 * context.message_id, over the same libraries and settings as serve
 * (libmicrohttpd, libcurl multi with keep-alive, --send-inflight requests in
 * flight). No store, no ERP, no fsync: whatever rate the load generator gets
 * through the relay is the most serve could reach on the same machine with
 * the same HTTP stack. bench/e2e --floor measures it beside serve.
 *
 * Threads: libmicrohttpd's workers parse and queue replies (under mu); one
 * network thread starts them and reaps their answers. A reply that finds
 * the queue full (RELAY_QUEUE_MAX) is dropped and counted, never waited for.
 */
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/proc.h"
#include "core/xalloc.h"
#include "http/http.h"
#include "ingest/envelope.h"
#include "ingest/sig.h"
#include "send/curl_loop.h"
#include "send/wamsg.h"
#include "tools/tools_internal.h"

#define RELAY_DEFAULT_LISTEN "127.0.0.1:8080"
#define RELAY_MAX_BODY       (256 * 1024)
#define RELAY_QUEUE_MAX      65536
#define RELAY_POLL_MS        100

/* One reply to send: the three strings live in one allocation. */
struct relay_job {
	char *phone_number_id;
	char *to;
	char *context;
};

struct relay_slot {
	CURL *easy;
	struct buf url, body;
	int busy;
};

struct relay {
	const struct config *cfg;
	struct curl_loop loop; /* its multi handle belongs to the network thread */
	struct curl_slist *headers;
	pthread_t thread;
	_Atomic int stop;

	pthread_mutex_t mu; /* the queue */
	struct relay_job *queue;
	size_t qhead, nqueue; /* a ring: queue[(qhead + i) % RELAY_QUEUE_MAX] */

	/* network thread only */
	struct relay_job *taken;
	struct relay_slot *slots;
	int nslots, active;
	struct arena arena; /* a reply's body while it is written */

	_Atomic uint64_t webhooks, refused, queued, dropped, sent, failed;
};

static void job_free(struct relay_job *j)
{
	free(j->phone_number_id); /* one allocation, see job_new */
}

static void job_new(struct relay_job *j, const char *phone, const char *to, const char *context)
{
	size_t a = strlen(phone) + 1, b = strlen(to) + 1, c = strlen(context) + 1;
	char *p = xmalloc(a + b + c);
	memcpy(p, phone, a);
	memcpy(p + a, to, b);
	memcpy(p + a + b, context, c);
	j->phone_number_id = p;
	j->to = p + a;
	j->context = p + a + b;
}

/* ---- webhooks (libmicrohttpd's threads) ----------------------------------- */

static void on_webhook(struct http_req *r, void *ud)
{
	struct relay *rl = ud;
	size_t len = 0;
	const char *body = http_req_body(r, &len);
	atomic_fetch_add_explicit(&rl->webhooks, 1, memory_order_relaxed);
	if (sig_verify(rl->cfg->app_secret, body, len, http_req_header(r, "X-Hub-Signature-256")) !=
	    0) {
		atomic_fetch_add_explicit(&rl->refused, 1, memory_order_relaxed);
		http_respond(r, 401, "text/plain", "bad signature\n", 14);
		return;
	}
	struct envelope env;
	if (envelope_parse(body, len, clock_wall_ms(), http_req_arena(r), &env) != 0) {
		atomic_fetch_add_explicit(&rl->refused, 1, memory_order_relaxed);
		http_respond(r, 400, "text/plain", "not a WhatsApp webhook\n", 23);
		return;
	}
	int queued = 0, dropped = 0;
	pthread_mutex_lock(&rl->mu);
	for (int c = 0; c < env.nchanges; c++) {
		const struct env_change *ch = &env.changes[c];
		for (int i = 0; i < ch->nentries; i++) {
			const struct inbox_entry *e = &ch->entries[i];
			if (e->kind != INBOX_MESSAGE)
				continue;
			if (rl->nqueue >= RELAY_QUEUE_MAX) {
				dropped++;
				continue;
			}
			job_new(&rl->queue[(rl->qhead + rl->nqueue++) % RELAY_QUEUE_MAX],
			        ch->phone_number_id, e->from, e->ext_id);
			queued++;
		}
	}
	pthread_mutex_unlock(&rl->mu);
	atomic_fetch_add_explicit(&rl->queued, (uint64_t)queued, memory_order_relaxed);
	atomic_fetch_add_explicit(&rl->dropped, (uint64_t)dropped, memory_order_relaxed);
	if (queued > 0)
		curl_loop_wake(&rl->loop);
	http_respond(r, 200, "text/plain", "ok\n", 3);
}

static void on_ready(struct http_req *r, void *ud)
{
	(void)ud;
	http_respond(r, 200, "text/plain", "ready\n", 6);
}

/* ---- replies (the network thread) ----------------------------------------- */

static void start_reply(struct relay *rl, struct relay_slot *slot, const struct relay_job *j)
{
	arena_reset(&rl->arena);
	buf_reset(&slot->url);
	buf_printf(&slot->url, "%s/%s/%s/messages", rl->cfg->bsp_url, rl->cfg->graph_version,
	           j->phone_number_id);
	buf_reset(&slot->body);
	const char *text = wamsg_text(&rl->arena, j->to, j->context, "ok");
	buf_append(&slot->body, text, strlen(text));
	curl_easy_setopt(slot->easy, CURLOPT_URL, slot->url.data);
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDS, slot->body.data);
	curl_easy_setopt(slot->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)slot->body.len);
	if (curl_multi_add_handle(rl->loop.multi, slot->easy) != CURLM_OK) {
		atomic_fetch_add_explicit(&rl->failed, 1, memory_order_relaxed);
		return;
	}
	slot->busy = 1;
	rl->active++;
}

/* take_jobs starts as many queued replies as there are free slots. */
static void take_jobs(struct relay *rl)
{
	if (rl->active >= rl->nslots)
		return;
	size_t room = (size_t)(rl->nslots - rl->active), n;
	pthread_mutex_lock(&rl->mu);
	n = rl->nqueue < room ? rl->nqueue : room;
	for (size_t i = 0; i < n; i++)
		rl->taken[i] = rl->queue[(rl->qhead + i) % RELAY_QUEUE_MAX];
	rl->qhead = (rl->qhead + n) % RELAY_QUEUE_MAX;
	rl->nqueue -= n;
	pthread_mutex_unlock(&rl->mu);
	int k = 0;
	for (size_t i = 0; i < n; i++) {
		while (rl->slots[k].busy)
			k++;
		start_reply(rl, &rl->slots[k], &rl->taken[i]);
		job_free(&rl->taken[i]);
	}
}

static void reap(struct relay *rl)
{
	CURLMsg *m;
	int left;
	while ((m = curl_multi_info_read(rl->loop.multi, &left))) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct relay_slot *slot = NULL;
		long status = 0;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&slot);
		curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
		int ok = m->data.result == CURLE_OK && status >= 200 && status <= 299;
		atomic_fetch_add_explicit(ok ? &rl->sent : &rl->failed, 1, memory_order_relaxed);
		curl_multi_remove_handle(rl->loop.multi, m->easy_handle);
		slot->busy = 0;
		rl->active--;
	}
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

static void *net_main(void *arg)
{
	struct relay *rl = arg;
	pthread_setname_np(pthread_self(), "relay-net");
	while (!atomic_load(&rl->stop) || rl->active > 0) {
		if (!atomic_load(&rl->stop))
			take_jobs(rl);
		curl_loop_wait(&rl->loop, RELAY_POLL_MS);
		reap(rl);
	}
	return NULL;
}

static int relay_init(struct relay *rl, const struct config *cfg)
{
	rl->cfg = cfg;
	arena_init(&rl->arena, 4096);
	pthread_mutex_init(&rl->mu, NULL);
	rl->queue = xcalloc(RELAY_QUEUE_MAX, sizeof(*rl->queue));
	rl->nslots = (int)cfg->send_inflight;
	rl->taken = xcalloc((size_t)rl->nslots, sizeof(*rl->taken));
	rl->slots = xcalloc((size_t)rl->nslots, sizeof(*rl->slots));
	int rc = curl_loop_init(&rl->loop);
	if (rc != 0)
		return rc;
	curl_multi_setopt(rl->loop.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)rl->nslots);
	curl_multi_setopt(rl->loop.multi, CURLMOPT_MAXCONNECTS, (long)rl->nslots);
	struct buf auth;
	buf_init(&auth);
	buf_printf(&auth, "Authorization: Bearer %s", cfg->access_token ? cfg->access_token : "");
	rl->headers = curl_slist_append(NULL, auth.data);
	buf_release(&auth);
	rl->headers = curl_slist_append(rl->headers, "Content-Type: application/json");
	rl->headers = curl_slist_append(rl->headers, "Expect:");
	if (!rl->headers)
		return ERR_NOMEM;
	for (int i = 0; i < rl->nslots; i++) {
		struct relay_slot *s = &rl->slots[i];
		buf_init(&s->url);
		buf_init(&s->body);
		if (!(s->easy = curl_easy_init()))
			return ERR_NOMEM;
		curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
		curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, discard);
		curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, rl->headers);
		curl_easy_setopt(s->easy, CURLOPT_POST, 1L);
		curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(s->easy, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(s->easy, CURLOPT_TCP_KEEPALIVE, 1L);
		curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, (long)cfg->send_timeout_ms);
	}
	return 0;
}

static void relay_release(struct relay *rl)
{
	for (int i = 0; rl->slots && i < rl->nslots; i++) {
		if (rl->slots[i].easy)
			curl_easy_cleanup(rl->slots[i].easy);
		buf_release(&rl->slots[i].url);
		buf_release(&rl->slots[i].body);
	}
	for (size_t i = 0; i < rl->nqueue; i++)
		job_free(&rl->queue[(rl->qhead + i) % RELAY_QUEUE_MAX]);
	if (rl->loop.multi)
		curl_loop_release(&rl->loop);
	curl_slist_free_all(rl->headers);
	free(rl->slots);
	free(rl->taken);
	free(rl->queue);
	arena_release(&rl->arena);
	pthread_mutex_destroy(&rl->mu);
}

/* ---- the command ----------------------------------------------------------- */

static const char *const relay_opts[] = {
        "listen",        "bsp-url",         "app-secret",   "access-token", "graph-version",
        "send-inflight", "send-timeout-ms", "http-threads", "log-level",    NULL,
};

static const char relay_usage[] =
        "[options]\n\n"
        "Answers signed webhooks on POST /webhooks/whatsapp with 200 and sends one text\n"
        "reply per message to --bsp-url, quoting it; stores nothing. The network\n"
        "half of serve alone, for measuring the floor under serve's figures.\n"
        "GET /readyz answers 200 once it listens.";

int cmd_relay(int argc, char **argv)
{
	struct config cfg;
	int npos = 0, exit_code = 1;
	int rc = tools_config(&cfg, "relay", relay_usage, relay_opts, RELAY_DEFAULT_LISTEN, argc,
	                      argv, NULL, 0, &npos);
	if (rc >= 0)
		return rc;
	if (!cfg.bsp_url || !*cfg.bsp_url || !cfg.app_secret || !*cfg.app_secret) {
		fprintf(stderr, "munim relay: --bsp-url and --app-secret are required\n");
		config_release(&cfg);
		return 2;
	}
	tools_strip_slash(cfg.bsp_url);

	sigset_t sigs;
	proc_block_stop_signals(&sigs);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	struct relay rl = {0};
	struct http_server *http = NULL;
	if ((rc = relay_init(&rl, &cfg)) != 0 ||
	    (rc = pthread_create(&rl.thread, NULL, net_main, &rl)) != 0) {
		fprintf(stderr, "munim relay: could not start: %s\n", err_str(rc));
		goto out_nothread;
	}
	const struct http_route routes[] = {
	        {"POST", "/webhooks/whatsapp", 0, on_webhook, &rl, NULL},
	        {"GET", "/readyz", 0, on_ready, NULL, NULL},
	};
	rc = http_server_start(cfg.listen, (int)cfg.http_threads, RELAY_MAX_BODY, routes,
	                       (int)(sizeof(routes) / sizeof(routes[0])), &http);
	if (rc != 0) {
		fprintf(stderr, "munim relay: could not listen on %s: %s\n", cfg.listen,
		        err_str(rc));
		goto out;
	}
	printf("relay listening on port %d, replies to %s\n", http_server_port(http), cfg.bsp_url);
	fflush(stdout);
	proc_wait_stop(&sigs);
	exit_code = 0;
out:
	http_server_stop(http);
	atomic_store(&rl.stop, 1);
	curl_loop_wake(&rl.loop);
	pthread_join(rl.thread, NULL);
	printf("relay: webhooks %llu refused %llu queued %llu sent %llu failed %llu "
	       "dropped %llu\n",
	       (unsigned long long)rl.webhooks, (unsigned long long)rl.refused,
	       (unsigned long long)rl.queued, (unsigned long long)rl.sent,
	       (unsigned long long)rl.failed, (unsigned long long)(rl.dropped + rl.nqueue));
out_nothread:
	relay_release(&rl);
	curl_global_cleanup();
	config_release(&cfg);
	return exit_code;
}
