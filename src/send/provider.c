/*
 * provider.c - the providers a reply can go through, their requests and
 * how their answers are read.
 *
 *   bsp1..bspN  WhatsApp Cloud API, directly (Meta) or through a BSP that
 *               speaks it; --bsp-format 360dialog for a proxy that takes
 *               POST {url}/messages with the token in D360-API-KEY (it
 *               knows the number from the key). The order of --bsp-url is
 *               the failover order.
 *   sms         an MSG91-style flow API: POST the URL with header
 *               "authkey", {"template_id", "recipients":[{"mobiles",
 *               "var"}]}; the gateway's template carries the DLT template
 *               id the text is registered under. Answers
 *               {"type":"success","message":"<request id>"} or
 *               {"type":"error","message":"..."}.
 *
 * Reading an answer (provider_judge) gives the send's class (sender.h):
 * for a BSP by send_classify on the Cloud API's error.code; for the SMS
 * gateway by HTTP status alone - 5xx, 408, no answer and a refused authkey
 * (401/403: the gateway is unusable until an operator acts) are retried,
 * 429 is a rate limit, other 4xx are the message's own fault. A 2xx
 * without a message id is retried like a timeout: it is not an answer of
 * the API this speaks.
 *
 * Threading: provider_list_init/release run alone; provider_request and
 * provider_judge only read the provider; the breaker and publish belong to
 * the sender's network thread.
 */
#include "send/provider.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonr.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "send/wamsg.h"

/* An HTTP header name: RFC 9110 token characters, 1..64 of them. */
static int header_name_ok(const char *s)
{
	size_t n = 0;
	for (; *s; s++, n++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'z') ||
		      (*s >= 'A' && *s <= 'Z') || strchr("!#$%&'*+-.^_`|~", *s)))
			return 0;
	return n > 0 && n <= 64;
}

/* headers: the auth header (name NULL or "": bearer), then the JSON ones. */
static struct curl_slist *make_headers(const char *name, const char *token)
{
	struct buf auth;
	buf_init(&auth);
	if (!name || !*name)
		buf_printf(&auth, "Authorization: Bearer %s", token);
	else
		buf_printf(&auth, "%s: %s", name, token);
	struct curl_slist *h = curl_slist_append(NULL, auth.data);
	buf_release(&auth);
	struct curl_slist *t = h ? curl_slist_append(h, "Content-Type: application/json") : NULL;
	/* no "Expect: 100-continue" round trip before larger bodies */
	if (t)
		t = curl_slist_append(t, "Expect:");
	if (!t) {
		curl_slist_free_all(h);
		return NULL;
	}
	return t;
}

static int breaker_config_of(const struct config *cfg, struct breaker_config *bc)
{
	breaker_config_default(bc);
	bc->failure_threshold = (int)cfg->breaker_failures;
	bc->success_threshold = (int)cfg->breaker_successes;
	bc->open_ms = cfg->breaker_open_ms;
	bc->jitter_pct = (int)cfg->breaker_jitter_pct;
	bc->window_ms = cfg->breaker_window_ms;
	bc->min_calls = (int)cfg->breaker_min_calls;
	bc->rate_threshold_pct = (int)cfg->breaker_failure_rate_pct;
	bc->half_open_probes = (int)cfg->breaker_probes;
	bc->slow_ms = cfg->breaker_slow_ms;
	struct breaker probe;
	return breaker_init(&probe, bc);
}

static int add(struct provider_list *l, enum provider_kind kind, enum provider_format format,
               const char *name, const char *url, const char *header, const char *token,
               const struct breaker_config *bc)
{
	struct provider *p = &l->p[l->n];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->kind = kind;
	p->format = format;
	size_t len = strlen(url);
	while (kind == PROVIDER_WHATSAPP && len > 0 && url[len - 1] == '/')
		len--;
	if (len == 0) {
		log_error("send.start_failed", "%s has no URL (\"%s\")", name, url);
		return ERR_INVAL;
	}
	p->url = xstrndup(url, len);
	p->headers = make_headers(header, token);
	if (!p->headers) {
		free(p->url);
		log_error("send.start_failed", "could not build the request headers of %s", name);
		return ERR_NOMEM;
	}
	breaker_init(&p->br, bc);
	provider_publish(p);
	l->n++;
	return 0;
}

int provider_list_init(struct provider_list *l, const struct config *cfg)
{
	char **urls = NULL, **tokens = NULL, **headers = NULL, **formats = NULL;
	int nurls = 0, ntokens = 0, nheaders = 0, nformats = 0, rc = ERR_INVAL;
	struct breaker_config bc;
	memset(l, 0, sizeof(*l));
	l->sms = -1;
	if (breaker_config_of(cfg, &bc) != 0) {
		log_error("send.start_failed", "the breaker settings are out of bounds");
		goto out;
	}
	nurls = config_list_split(cfg->bsp_url, &urls);
	ntokens = config_list_split(cfg->bsp_token, &tokens);
	nheaders = config_list_split(cfg->bsp_auth_header, &headers);
	nformats = config_list_split(cfg->bsp_format, &formats);
	if (nurls < 1 || nurls > PROVIDER_MAX_BSPS) {
		log_error("send.start_failed", "between 1 and %d BSP URLs are needed, not %d",
		          PROVIDER_MAX_BSPS, nurls);
		goto out;
	}
	if (ntokens > nurls || nheaders > nurls) {
		log_error("send.start_failed",
		          "%d BSP tokens and %d auth headers given for %d BSP URLs", ntokens,
		          nheaders, nurls);
		goto out;
	}
	if (nformats > nurls) {
		log_error("send.start_failed", "%d BSP formats given for %d BSP URLs", nformats,
		          nurls);
		goto out;
	}
	for (int i = 0; i < nurls; i++) {
		char name[OUTBOX_PROVIDER_MAX];
		snprintf(name, sizeof(name), "bsp%d", i + 1);
		const char *token = i < ntokens && *tokens[i] ? tokens[i] : cfg->access_token;
		const char *fmt = i < nformats ? formats[i] : "";
		enum provider_format format = PROVIDER_CLOUD;
		if (strcmp(fmt, "360dialog") == 0) {
			format = PROVIDER_360DIALOG;
		} else if (*fmt && strcmp(fmt, "cloud") != 0) {
			log_error("send.start_failed",
			          "\"%s\" is not a BSP format (cloud or 360dialog) (%s)", fmt,
			          name);
			goto out;
		}
		const char *header = i < nheaders && *headers[i]    ? headers[i]
		                     : format == PROVIDER_360DIALOG ? "D360-API-KEY"
		                                                    : "";
		if (!*urls[i]) {
			log_error("send.start_failed", "BSP URL %d of \"%s\" is empty", i + 1,
			          cfg->bsp_url);
			goto out;
		}
		if (!token || !*token) {
			log_error("send.start_failed",
			          "%s (%s) has no token: give --bsp-token or --access-token", name,
			          urls[i]);
			goto out;
		}
		if (*header && !header_name_ok(header)) {
			log_error("send.start_failed", "\"%s\" is not a header name (%s)", header,
			          name);
			goto out;
		}
		if ((rc = add(l, PROVIDER_WHATSAPP, format, name, urls[i], header, token, &bc)) !=
		    0)
			goto out;
		rc = ERR_INVAL;
	}
	l->nwa = l->n;
	if (cfg->sms_url && *cfg->sms_url) {
		if (!cfg->sms_token || !*cfg->sms_token) {
			log_error("send.start_failed", "the SMS gateway %s needs --sms-token",
			          cfg->sms_url);
			goto out;
		}
		if (!cfg->sms_template_id || !*cfg->sms_template_id) {
			log_error("send.start_failed", "the SMS gateway needs --sms-template-id");
			goto out;
		}
		l->sms = l->n;
		if ((rc = add(l, PROVIDER_SMS_GATEWAY, PROVIDER_CLOUD, PROVIDER_SMS, cfg->sms_url,
		              "authkey", cfg->sms_token, &bc)) != 0)
			goto out;
	}
	rc = 0;
out:
	config_list_free(urls, nurls);
	config_list_free(tokens, ntokens);
	config_list_free(headers, nheaders);
	config_list_free(formats, nformats);
	if (rc != 0)
		provider_list_release(l);
	return rc;
}

void provider_list_release(struct provider_list *l)
{
	for (int i = 0; i < l->n; i++) {
		free(l->p[i].url);
		curl_slist_free_all(l->p[i].headers);
	}
	l->n = l->nwa = 0;
	l->sms = -1;
}

int provider_request(const struct provider *p, const struct config *cfg, int64_t row_id,
                     const char *phone_number_id, const char *to, const char *wa_body,
                     struct buf *url, struct buf *body, struct arena *a)
{
	buf_reset(url);
	if (p->kind == PROVIDER_SMS_GATEWAY) {
		buf_puts(url, p->url);
		return wamsg_sms_body(body, cfg->sms_template_id, to, wa_body, a);
	}
	if (p->format == PROVIDER_360DIALOG)
		buf_printf(url, "%s/messages", p->url);
	else
		buf_printf(url, "%s/%s/%s/messages", p->url, cfg->graph_version, phone_number_id);
	wamsg_with_callback(body, wa_body, row_id);
	return 0;
}

static void say(struct provider_answer *out, enum send_class cls, int code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

static void say(struct provider_answer *out, enum send_class cls, int code, const char *fmt, ...)
{
	out->cls = cls;
	out->error_code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->error, sizeof(out->error), fmt, ap);
	va_end(ap);
}

/* take_id copies an id of 1..cap-1 bytes without NULs into out: 1, else 0. */
static int take_id(const struct jsonr_val *v, char *out, size_t cap)
{
	size_t len = 0;
	const char *id = jsonr_str(v, &len);
	if (!id || len == 0 || len >= cap || strlen(id) != len)
		return 0;
	memcpy(out, id, len + 1);
	return 1;
}

static enum send_class sms_class(long status)
{
	if (status == 429)
		return SEND_RATE;
	if (status == 401 || status == 403 || status == 408 || status >= 500)
		return SEND_RETRY;
	return SEND_PERMANENT;
}

void provider_judge(const struct provider *p, long status, const char *curl_err, const char *resp,
                    size_t len, int truncated, struct arena *a, struct provider_answer *out)
{
	const struct jsonr_val *root = NULL;
	memset(out, 0, sizeof(*out));
	if (status == 0) {
		say(out, SEND_RETRY, 0, "no answer: %s", curl_err);
		return;
	}
	/* not JSON (or cut short): root stays NULL and every lookup says so */
	if (!truncated && len > 0)
		jsonr_parse(resp, len, a, &root);
	int ok = status >= 200 && status <= 299;
	if (p->kind == PROVIDER_SMS_GATEWAY) {
		const char *type = jsonr_str(jsonr_get(root, "type"), NULL);
		int success = type && strcmp(type, "success") == 0;
		if (ok && success &&
		    take_id(jsonr_get(root, "message"), out->msg_id, sizeof(out->msg_id))) {
			out->cls = SEND_OK;
			return;
		}
		if (ok) {
			say(out, SEND_RETRY, 0, "http %ld without a request id", status);
			return;
		}
		const char *msg = jsonr_str(jsonr_get(root, "message"), NULL);
		say(out, sms_class(status), 0, "http %ld: %s", status,
		    msg ? msg : "no error message");
		return;
	}
	if (ok) {
		if (take_id(jsonr_get(jsonr_at(jsonr_get(root, "messages"), 0), "id"), out->msg_id,
		            sizeof(out->msg_id))) {
			out->cls = SEND_OK;
			return;
		}
		say(out, SEND_RETRY, 0, "http %ld without messages[0].id", status);
		return;
	}
	const struct jsonr_val *err = jsonr_get(root, "error");
	const char *msg = jsonr_str(jsonr_get(err, "message"), NULL);
	int64_t jc = 0;
	if (jsonr_int(jsonr_get(err, "code"), &jc) != 0)
		jc = 0;
	int code = jc > 0 && jc <= INT_MAX ? (int)jc : 0;
	say(out, send_classify(status, code), code, "http %ld: %s", status,
	    msg ? msg : "no error message");
}

int provider_sms_fallback(const struct config *cfg, enum outbox_prio prio, const char *via)
{
	return prio <= PRIO_P1 && cfg->sms_url && *cfg->sms_url &&
	       strcmp(via ? via : "", PROVIDER_SMS) != 0;
}

void provider_publish(struct provider *p)
{
	atomic_store(&p->state, (int)breaker_state(&p->br));
	atomic_store(&p->open_until, breaker_open_until(&p->br));
}
