/*
 * actions.c - the controller's actions on the store and the alert hook
 * (see actions.h).
 *
 * A shop is told through its first owner number (tenants.owner_numbers),
 * from its own business number, as a P1 text: while WhatsApp is down the
 * sender routes P1 through the SMS gateway, so the same row serves both.
 * A shop with no owner number on file is skipped (and counted as not
 * told).
 */
#include "control/actions.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/err.h"
#include "core/log.h"
#include "send/wamsg.h"

/* Shops with marketing dropped that are told in one sweep (the rest next). */
#define CONTROL_DROP_NOTICES_MAX 10000
#define CONTROL_ALERT_TIMEOUT_MS 2000L

/* tell queues text to tenant_id's first owner; 1 told, 0 no owner, < 0. */
static int tell(struct app *app, struct store_conn *c, int64_t tenant_id, const char *text,
                struct arena *a)
{
	struct tenant t;
	int rc = store_tenant_get(c, tenant_id, a, &t);
	if (rc == ERR_NOTFOUND)
		return 0;
	if (rc != 0)
		return rc;
	const char *owners = t.owner_numbers ? t.owner_numbers : "";
	size_t len = strcspn(owners, ",");
	if (len == 0)
		return 0;
	char *to = arena_strndup(a, owners, len);
	struct outbox_new o = {0};
	o.tenant_id = tenant_id;
	o.priority = PRIO_P1;
	o.phone_number_id = t.phone_number_id;
	o.to = to;
	o.reply_to = "";
	o.body = wamsg_text(a, to, NULL, text);
	int64_t id;
	rc = store_outbox_add(c, &o, &id);
	if (rc != 0)
		return rc;
	atomic_fetch_add(&app->metrics.outbox[PRIO_P1][OUTBOX_PENDING], 1);
	return 1;
}

int control_drop_marketing(struct app *app, struct store_conn *c, int level, int64_t now,
                           int64_t *dropped, int *shops)
{
	*dropped = 0;
	*shops = 0;
	struct arena a;
	arena_init(&a, 16 * 1024);
	struct outbox_tenant_count *per = NULL;
	int n = 0, told = 0;
	int64_t moved[PRIO_COUNT] = {0};
	char why[64];
	snprintf(why, sizeof(why), "dropped: traffic spike level %d", level);
	int rc = store_begin(c);
	if (rc == 0)
		rc = store_outbox_waiting_by_tenant(c, PRIO_P3, CONTROL_DROP_NOTICES_MAX, &a, &per,
		                                    &n);
	/* created before now + 1: every P3 waiting now */
	if (rc == 0)
		rc = store_outbox_expire(c, PRIO_P3, now + 1, why, now, moved);
	for (int i = 0; rc >= 0 && i < n; i++) {
		char text[256];
		snprintf(text, sizeof(text),
		         "Heavy traffic on WhatsApp right now: %lld of your broadcast messages "
		         "were not sent (traffic level %d). Please send the broadcast again later.",
		         (long long)per[i].n, level);
		rc = tell(app, c, per[i].tenant_id, text, &a);
		if (rc > 0)
			told++;
	}
	if (rc >= 0)
		rc = store_commit(c);
	if (rc < 0) {
		log_error("control.drop_failed", "could not drop waiting marketing messages: %s",
		          store_errmsg(c));
		store_rollback(c);
		arena_release(&a);
		atomic_fetch_sub(&app->metrics.outbox[PRIO_P1][OUTBOX_PENDING], told);
		return rc;
	}
	arena_release(&a);
	atomic_fetch_sub(&app->metrics.outbox[PRIO_P3][OUTBOX_PENDING], moved[PRIO_P3]);
	atomic_fetch_add(&app->metrics.outbox[PRIO_P3][OUTBOX_DEAD], moved[PRIO_P3]);
	*dropped = moved[PRIO_P3];
	*shops = told;
	if (told)
		notify_signal(&app->outbox_ready);
	return 0;
}

int control_tell_shops(struct app *app, struct store_conn *c, int limit, int64_t now, int *shops)
{
	(void)now;
	*shops = 0;
	struct arena a;
	arena_init(&a, 16 * 1024);
	struct outbox_tenant_count *per = NULL;
	int n = 0, told = 0;
	int rc = store_begin(c);
	if (rc == 0)
		rc = store_outbox_waiting_by_tenant(c, PRIO_P0, limit, &a, &per, &n);
	for (int i = 0; rc >= 0 && i < n; i++) {
		rc = tell(app, c, per[i].tenant_id, CONTROL_SHOP_NOTICE, &a);
		if (rc > 0)
			told++;
	}
	if (rc >= 0)
		rc = store_commit(c);
	if (rc < 0) {
		log_error("control.notice_failed", "could not queue the notice to shops: %s",
		          store_errmsg(c));
		store_rollback(c);
		atomic_fetch_sub(&app->metrics.outbox[PRIO_P1][OUTBOX_PENDING], told);
		arena_release(&a);
		return rc;
	}
	arena_release(&a);
	*shops = told;
	if (told)
		notify_signal(&app->outbox_ready);
	return 0;
}

int control_alert(const struct app *app, const char *event, const char *severity, int level,
                  const char *text)
{
	const char *url = app->cfg.alert_url;
	if (!url || !*url)
		return 0;
	json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s}", "source", "munim", "event", event,
	                      "severity", severity, "level", level, "text", text);
	char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	CURL *e = curl_easy_init();
	if (!body || !e) {
		free(body);
		curl_easy_cleanup(e);
		return ERR_NOMEM;
	}
	struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, CONTROL_ALERT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	CURLcode res = curl_easy_perform(e);
	long status = 0;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	curl_slist_free_all(h);
	curl_easy_cleanup(e);
	free(body);
	if (res != CURLE_OK || status < 200 || status > 299) {
		log_warn("control.alert_failed", "could not deliver the %s alert to %s: %s", event,
		         url, res != CURLE_OK ? curl_easy_strerror(res) : "answered non-2xx");
		return ERR_IO;
	}
	return 0;
}
