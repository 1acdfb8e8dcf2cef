/*
 * test_provider.c - the ways a reply leaves, without a network: the
 * provider list built from the config (one BSP by default, several in
 * --bsp-url order, per-BSP tokens and auth headers as curl sees them, the
 * SMS gateway only when its URL is set, and every refusal with the reason
 * it logs); the request of one send (the Cloud API URL and body with our
 * row id spliced in, the SMS gateway's flow body for text, interactive and
 * template messages, none for media); the SMS body itself (escaping, the
 * cut at three SMS parts: 459 ASCII or 201 other characters); how an answer is
 * read (BSP and SMS gateway, no answer, a cut body); and the rolling
 * delivery rate with an injected clock (bounds, too few reports, per mille,
 * the threshold's edge, the window forgetting, the metrics text).
 *
 * Bodies are parsed back with jansson. A refusal's reason goes to the log
 * (stderr); init_refused catches it in a temporary file to check it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "send/breaker.h"
#include "send/delivery.h"
#include "send/provider.h"
#include "send/sender.h"
#include "send/wamsg.h"

#define TO    "919811111111"
#define PHONE "100000000001"

struct fx {
	struct config cfg;
	struct provider_list l; /* built by init_ok; released in teardown */
	struct arena a;
	struct buf url, body;
};

/* set replaces a string setting with a heap copy of v (NULL: unset). */
static void set(char **slot, const char *v)
{
	free(*slot);
	*slot = xstrdup(v);
}

static int setup(void **state)
{
	struct fx *f = xcalloc(1, sizeof(*f));
	config_defaults(&f->cfg);
	set(&f->cfg.access_token, "TOK");
	f->l.sms = -1;
	arena_init(&f->a, 0);
	buf_init(&f->url);
	buf_init(&f->body);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;
	provider_list_release(&f->l);
	config_release(&f->cfg);
	arena_release(&f->a);
	buf_release(&f->url);
	buf_release(&f->body);
	free(f);
	return 0;
}

static void init_ok(struct fx *f)
{
	provider_list_release(&f->l);
	assert_int_equal(provider_list_init(&f->l, &f->cfg), 0);
}

/*
 * init_refused: provider_list_init refuses f->cfg with ERR_INVAL, leaves
 * the list empty, and logs a line holding reason.
 */
static void init_refused(struct fx *f, const char *reason)
{
	char said[2048] = "";
	FILE *tmp = tmpfile();
	assert_non_null(tmp);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	assert_true(saved >= 0);
	assert_true(dup2(fileno(tmp), STDERR_FILENO) >= 0);
	provider_list_release(&f->l);
	int rc = provider_list_init(&f->l, &f->cfg);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(tmp);
	size_t n = fread(said, 1, sizeof(said) - 1, tmp);
	said[n] = '\0';
	fclose(tmp);
	assert_int_equal(rc, ERR_INVAL);
	assert_int_equal(f->l.n, 0);
	assert_int_equal(f->l.nwa, 0);
	assert_int_equal(f->l.sms, -1);
	if (!strstr(said, reason))
		fail_msg("refusal logged \"%s\", wanted \"%s\"", said, reason);
}

/* headers_are: the curl list holds exactly the n lines given. */
static void headers_are(const struct curl_slist *h, int n, ...)
{
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++, h = h->next) {
		const char *want = va_arg(ap, const char *);
		if (!h)
			fail_msg("header %d missing, wanted \"%s\"", i, want);
		assert_string_equal(h->data, want);
	}
	va_end(ap);
	assert_null(h);
}

/* ---- provider_list_init ----------------------------------------------------------- */

static void test_init_defaults_one_bsp(void **state)
{
	struct fx *f = *state;
	init_ok(f);
	assert_int_equal(f->l.n, 1);
	assert_int_equal(f->l.nwa, 1);
	assert_int_equal(f->l.sms, -1);
	const struct provider *p = &f->l.p[0];
	assert_string_equal(p->name, "bsp1");
	assert_int_equal(p->kind, PROVIDER_WHATSAPP);
	assert_string_equal(p->url, "http://127.0.0.1:9090");
	headers_are(p->headers, 3, "Authorization: Bearer TOK", "Content-Type: application/json",
	            "Expect:");
	assert_int_equal(atomic_load(&p->state), BREAKER_CLOSED);
	assert_int_equal(breaker_state(&p->br), BREAKER_CLOSED);
	assert_int_equal(atomic_load(&p->sends), 0);

	/* the base URL loses its trailing slashes (the path is added to it) */
	set(&f->cfg.bsp_url, "http://bsp.example/base//");
	init_ok(f);
	assert_string_equal(f->l.p[0].url, "http://bsp.example/base");

	/* an SMS gateway once its URL is set, after the BSPs; its URL as is */
	set(&f->cfg.sms_url, "http://sms.example/api/v5/flow/");
	set(&f->cfg.sms_token, "SMSKEY");
	init_ok(f);
	assert_int_equal(f->l.n, 2);
	assert_int_equal(f->l.nwa, 1);
	assert_int_equal(f->l.sms, 1);
	p = &f->l.p[1];
	assert_string_equal(p->name, PROVIDER_SMS);
	assert_int_equal(p->kind, PROVIDER_SMS_GATEWAY);
	assert_string_equal(p->url, "http://sms.example/api/v5/flow/");
	headers_are(p->headers, 3, "authkey: SMSKEY", "Content-Type: application/json", "Expect:");
	assert_int_equal(atomic_load(&p->state), BREAKER_CLOSED);

	/* an empty sms_url is no gateway, whatever the token */
	set(&f->cfg.sms_url, "");
	init_ok(f);
	assert_int_equal(f->l.n, 1);
	assert_int_equal(f->l.sms, -1);
}

static void test_init_several_bsps_tokens_and_headers(void **state)
{
	struct fx *f = *state;
	set(&f->cfg.bsp_url, "http://a, http://b/ ,http://c");
	set(&f->cfg.bsp_token, "ta,,tc");
	set(&f->cfg.bsp_auth_header, ",D360-API-KEY");
	init_ok(f);
	assert_int_equal(f->l.n, 3);
	assert_int_equal(f->l.nwa, 3);
	assert_int_equal(f->l.sms, -1);
	static const char *const names[] = {"bsp1", "bsp2", "bsp3"};
	static const char *const urls[] = {"http://a", "http://b", "http://c"};
	for (int i = 0; i < 3; i++) {
		assert_string_equal(f->l.p[i].name, names[i]);
		assert_string_equal(f->l.p[i].url, urls[i]);
		assert_int_equal(f->l.p[i].kind, PROVIDER_WHATSAPP);
	}
	/* bsp1 its own token, bearer; bsp2 the access token in its own header;
	 * bsp3 its own token, bearer (fewer headers than URLs) */
	headers_are(f->l.p[0].headers, 3, "Authorization: Bearer ta",
	            "Content-Type: application/json", "Expect:");
	headers_are(f->l.p[1].headers, 3, "D360-API-KEY: TOK", "Content-Type: application/json",
	            "Expect:");
	headers_are(f->l.p[2].headers, 3, "Authorization: Bearer tc",
	            "Content-Type: application/json", "Expect:");

	/* without an access token, every BSP with its own token still goes */
	set(&f->cfg.access_token, NULL);
	set(&f->cfg.bsp_url, "http://a,http://b");
	set(&f->cfg.bsp_token, "ta,tb");
	set(&f->cfg.bsp_auth_header, "");
	init_ok(f);
	assert_int_equal(f->l.n, 2);
	headers_are(f->l.p[1].headers, 3, "Authorization: Bearer tb",
	            "Content-Type: application/json", "Expect:");

	/* PROVIDER_MAX_BSPS, and the SMS gateway on top of them */
	set(&f->cfg.access_token, "TOK");
	set(&f->cfg.bsp_token, "");
	set(&f->cfg.bsp_url, "http://1,http://2,http://3,http://4,http://5,http://6,http://7,"
	                     "http://8");
	set(&f->cfg.sms_url, "http://sms");
	set(&f->cfg.sms_token, "K");
	init_ok(f);
	assert_int_equal(f->l.n, PROVIDER_MAX);
	assert_int_equal(f->l.nwa, PROVIDER_MAX_BSPS);
	assert_int_equal(f->l.sms, PROVIDER_MAX_BSPS);
	assert_string_equal(f->l.p[7].name, "bsp8");
	assert_string_equal(f->l.p[7].url, "http://8");
	assert_string_equal(f->l.p[8].name, "sms");
}

static void test_init_refusals(void **state)
{
	struct fx *f = *state;
	/* no BSP at all */
	set(&f->cfg.bsp_url, NULL);
	init_refused(f, "between 1 and 8 BSP URLs are needed, not 0");
	set(&f->cfg.bsp_url, "http://1,http://2,http://3,http://4,http://5,http://6,http://7,"
	                     "http://8,http://9");
	init_refused(f, "not 9");
	/* an empty URL item (an empty list is one empty item) */
	set(&f->cfg.bsp_url, "http://a,,http://c");
	init_refused(f, "BSP URL 2 of");
	set(&f->cfg.bsp_url, "");
	init_refused(f, "BSP URL 1 of");
	/* nothing left once the trailing '/' is stripped */
	set(&f->cfg.bsp_url, "http://a,//");
	init_refused(f, "bsp2 has no URL");
	set(&f->cfg.bsp_url, "http://a,http://b");

	/* a BSP without a token: none of its own and no access token */
	set(&f->cfg.access_token, NULL);
	init_refused(f, "bsp1 (http://a) has no token");
	set(&f->cfg.access_token, "");
	set(&f->cfg.bsp_token, "ta");
	init_refused(f, "bsp2 (http://b) has no token");
	set(&f->cfg.access_token, "TOK");

	/* more tokens or headers than URLs */
	set(&f->cfg.bsp_token, "ta,tb,tc");
	init_refused(f, "3 BSP tokens and 1 auth headers given for 2 BSP URLs");
	set(&f->cfg.bsp_token, "");
	set(&f->cfg.bsp_auth_header, "X-A,X-B,X-C");
	init_refused(f, "3 auth headers given for 2 BSP URLs");

	/* a header name that is not a token */
	set(&f->cfg.bsp_auth_header, ",X Key");
	init_refused(f, "\\\"X Key\\\" is not a header name (bsp2)");
	set(&f->cfg.bsp_auth_header, "X-Key:");
	init_refused(f, "is not a header name (bsp1)");
	set(&f->cfg.bsp_auth_header, "Authorization: Bearer");
	init_refused(f, "is not a header name");
	set(&f->cfg.bsp_auth_header, "");

	/* the SMS gateway needs its token and template */
	set(&f->cfg.sms_url, "http://sms");
	init_refused(f, "needs --sms-token");
	set(&f->cfg.sms_token, "K");
	set(&f->cfg.sms_template_id, "");
	init_refused(f, "needs --sms-template-id");
	set(&f->cfg.sms_template_id, "munim-fallback");
	init_ok(f);
	assert_int_equal(f->l.n, 3);

	/* breaker thresholds out of bounds */
	f->cfg.breaker_failures = 0;
	init_refused(f, "breaker settings are out of bounds");
	f->cfg.breaker_failures = 5;
	f->cfg.breaker_failure_rate_pct = 101;
	init_refused(f, "breaker settings are out of bounds");
	f->cfg.breaker_failure_rate_pct = 30;
	f->cfg.breaker_window_ms = 9;
	init_refused(f, "breaker settings are out of bounds");
	f->cfg.breaker_window_ms = 10000;
	init_ok(f);
	assert_int_equal(f->l.n, 3);
}

/* ---- provider_request ----------------------------------------------------------- */

/* json_of parses s (fails the test when it is not JSON); json_decref it. */
static json_t *json_of(const char *s)
{
	json_error_t err;
	json_t *j = json_loads(s, 0, &err);
	if (!j)
		fail_msg("not JSON (%s): %s", err.text, s);
	return j;
}

static void test_request_bsp(void **state)
{
	struct fx *f = *state;
	set(&f->cfg.bsp_url, "http://a/,http://b");
	init_ok(f);
	const char *wa = wamsg_text(&f->a, TO, "wamid.IN", "hello \"you\"");
	assert_int_equal(
	        provider_request(&f->l.p[1], &f->cfg, 42, PHONE, TO, wa, &f->url, &f->body, &f->a),
	        0);
	assert_string_equal(f->url.data, "http://b/v21.0/" PHONE "/messages");
	/* the stored body, our row id spliced in as its first member */
	char want[4096];
	snprintf(want, sizeof(want), "{\"biz_opaque_callback_data\":\"munim:42\",%s", wa + 1);
	assert_string_equal(f->body.data, want);
	json_t *j = json_of(f->body.data);
	assert_string_equal(json_string_value(json_object_get(j, "biz_opaque_callback_data")),
	                    "munim:42");
	assert_int_equal(wamsg_callback_row("munim:42"), 42);
	assert_string_equal(json_string_value(json_object_get(j, "to")), "+" TO);
	assert_string_equal(json_string_value(json_object_get(json_object_get(j, "text"), "body")),
	                    "hello \"you\"");
	json_decref(j);

	/* the graph version comes from the config; the URLs and bodies are reset */
	set(&f->cfg.graph_version, "v22.0");
	assert_int_equal(
	        provider_request(&f->l.p[0], &f->cfg, 7, "200", TO, "{}", &f->url, &f->body, &f->a),
	        0);
	assert_string_equal(f->url.data, "http://a/v22.0/200/messages");
	assert_string_equal(f->body.data, "{\"biz_opaque_callback_data\":\"munim:7\"}");
}

/* A 360dialog-style BSP: POST {url}/messages (the number comes from its
 * key), the token in D360-API-KEY unless another header is named. */
static void test_request_360dialog_format(void **state)
{
	struct fx *f = *state;
	set(&f->cfg.bsp_url, "http://a,http://d360/,http://c");
	set(&f->cfg.bsp_format, "cloud,360dialog,360dialog");
	set(&f->cfg.bsp_token, ",dkey,ckey");
	set(&f->cfg.bsp_auth_header, ",,X-Api-Key");
	init_ok(f);
	assert_int_equal(f->l.p[0].format, PROVIDER_CLOUD);
	assert_int_equal(f->l.p[1].format, PROVIDER_360DIALOG);
	headers_are(f->l.p[1].headers, 3, "D360-API-KEY: dkey", "Content-Type: application/json",
	            "Expect:");
	headers_are(f->l.p[2].headers, 3, "X-Api-Key: ckey", "Content-Type: application/json",
	            "Expect:");
	const char *wa = wamsg_text(&f->a, TO, NULL, "hi");
	assert_int_equal(
	        provider_request(&f->l.p[1], &f->cfg, 5, PHONE, TO, wa, &f->url, &f->body, &f->a),
	        0);
	assert_string_equal(f->url.data, "http://d360/messages");
	assert_non_null(strstr(f->body.data, "\"biz_opaque_callback_data\":\"munim:5\""));
	assert_int_equal(
	        provider_request(&f->l.p[0], &f->cfg, 5, PHONE, TO, wa, &f->url, &f->body, &f->a),
	        0);
	assert_string_equal(f->url.data, "http://a/v21.0/" PHONE "/messages");
	/* ERR_INVAL: an unknown format, more formats than URLs */
	provider_list_release(&f->l);
	set(&f->cfg.bsp_format, "cloud,gupshup");
	init_refused(f, "\\\"gupshup\\\" is not a BSP format (cloud or 360dialog) (bsp2)");
	set(&f->cfg.bsp_format, "cloud,cloud,cloud,cloud");
	init_refused(f, "4 BSP formats given for 3 BSP URLs");
}

/* sms_request: the SMS gateway's request for wa_body; its body parsed. */
static json_t *sms_request(struct fx *f, const char *to, const char *wa_body)
{
	assert_int_equal(f->l.sms, 1);
	assert_int_equal(provider_request(&f->l.p[f->l.sms], &f->cfg, 42, PHONE, to, wa_body,
	                                  &f->url, &f->body, &f->a),
	                 0);
	assert_string_equal(f->url.data, "http://sms.example/api/v5/flow/");
	return json_of(f->body.data);
}

static const char *sms_var(json_t *j)
{
	return json_string_value(
	        json_object_get(json_array_get(json_object_get(j, "recipients"), 0), "var"));
}

static void test_request_sms(void **state)
{
	struct fx *f = *state;
	set(&f->cfg.sms_url, "http://sms.example/api/v5/flow/");
	set(&f->cfg.sms_token, "K");
	set(&f->cfg.sms_template_id, "tmpl-1");
	init_ok(f);

	/* a text message: the flow body, exactly */
	const char *wa = wamsg_text(&f->a, TO, "wamid.IN", "Order 12 confirmed");
	json_t *j = sms_request(f, "+" TO, wa);
	assert_string_equal(f->body.data,
	                    "{\"template_id\":\"tmpl-1\",\"short_url\":\"0\",\"recipients\":"
	                    "[{\"mobiles\":\"" TO "\",\"var\":\"Order 12 confirmed\"}]}");
	json_decref(j);
	/* the recipient without a '+' is kept as it is */
	j = sms_request(f, TO, wa);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_array_get(json_object_get(j, "recipients"), 0), "mobiles")),
	        TO);
	json_decref(j);

	/* an interactive message: its body.text */
	struct wamsg_button b[] = {{"yes", "Yes"}, {"no", "No"}};
	wa = wamsg_buttons(&f->a, TO, NULL, "Confirm the order?", b, 2);
	j = sms_request(f, TO, wa);
	assert_string_equal(sms_var(j), "Confirm the order?");
	assert_string_equal(json_string_value(json_object_get(j, "template_id")), "tmpl-1");
	json_decref(j);

	/* a template message: the first parameter of its body component */
	wa = "{\"messaging_product\":\"whatsapp\",\"to\":\"+" TO "\",\"type\":\"template\","
	     "\"template\":{\"name\":\"order_update\",\"language\":{\"code\":\"en\"},"
	     "\"components\":[{\"type\":\"header\",\"parameters\":[{\"type\":\"text\","
	     "\"text\":\"HEAD\"}]},{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
	     "\"text\":\"Your order #12 ships today\"},{\"type\":\"text\",\"text\":\"2nd\"}]}]}}";
	j = sms_request(f, TO, wa);
	assert_string_equal(sms_var(j), "Your order #12 ships today");
	json_decref(j);

	/* media without words: the gateway cannot carry it */
	static const char *const media[] = {
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+" TO "\",\"type\":\"image\","
	        "\"image\":{\"link\":\"https://x.example/a.jpg\"}}",
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+" TO "\",\"type\":\"document\","
	        "\"document\":{\"link\":\"https://x.example/inv.pdf\",\"caption\":\"Invoice\"}}",
	        "{\"type\":\"template\",\"template\":{\"name\":\"x\",\"components\":["
	        "{\"type\":\"header\",\"parameters\":[{\"type\":\"text\",\"text\":\"H\"}]}]}}",
	};
	for (size_t i = 0; i < sizeof(media) / sizeof(media[0]); i++) {
		assert_int_equal(provider_request(&f->l.p[f->l.sms], &f->cfg, 42, PHONE, TO,
		                                  media[i], &f->url, &f->body, &f->a),
		                 ERR_INVAL);
		assert_int_equal(f->body.len, 0);
	}
}

/* ---- wamsg_sms_body --------------------------------------------------------------- */

/* utf8_chars counts the characters of s (the bytes that start one). */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

/* sms_text_of: the var wamsg_sms_body writes for a text message of text. */
static char *sms_text_of(struct fx *f, const char *text)
{
	const char *wa = wamsg_text(&f->a, TO, NULL, text);
	assert_int_equal(wamsg_sms_body(&f->body, "T", TO, wa, &f->a), 0);
	json_t *j = json_of(f->body.data);
	char *out = xstrdup(sms_var(j));
	json_decref(j);
	assert_non_null(out);
	return out;
}

static void test_sms_body_escapes(void **state)
{
	struct fx *f = *state;
	const char *text = "He said \"hi\"\nthen\\left\ttab\r\x01";
	char *var = sms_text_of(f, text);
	assert_string_equal(var, text);
	free(var);
	/* written escaped, not raw */
	assert_non_null(strstr(f->body.data,
	                       "\"var\":\"He said \\\"hi\\\"\\nthen\\\\left\\ttab\\r\\u0001\""));
	assert_null(strchr(f->body.data, '\n'));
	/* the template id and the number are escaped too */
	const char *wa = wamsg_text(&f->a, TO, NULL, "x");
	assert_int_equal(wamsg_sms_body(&f->body, "t\"1", "+9\"1", wa, &f->a), 0);
	assert_string_equal(f->body.data,
	                    "{\"template_id\":\"t\\\"1\",\"short_url\":\"0\","
	                    "\"recipients\":[{\"mobiles\":\"9\\\"1\",\"var\":\"x\"}]}");
}

/* repeat: n copies of unit (a character), NUL-terminated, to free. */
static char *repeat(const char *unit, size_t n)
{
	size_t len = strlen(unit);
	char *s = xmalloc(len * n + 1);
	for (size_t i = 0; i < n; i++)
		memcpy(s + i * len, unit, len);
	s[len * n] = '\0';
	return s;
}

static void test_sms_body_cut_in_characters(void **state)
{
	struct fx *f = *state;
	/* ASCII goes as GSM-7 (459 in three parts, cut with "..."); any other
	 * character makes it UCS-2 (201, cut with "…") */
	static const struct {
		const char *unit;
		size_t max;
		const char *mark;
	} cases[] = {{"a", WAMSG_SMS_TEXT_MAX, "..."},
	             {"\xe0\xa4\x95" /* क */, WAMSG_SMS_UNICODE_MAX, "\xe2\x80\xa6"},
	             {"\xf0\x9f\x99\x8f", WAMSG_SMS_UNICODE_MAX, "\xe2\x80\xa6"}};
	for (size_t u = 0; u < sizeof(cases) / sizeof(cases[0]); u++) {
		const char *unit = cases[u].unit, *mark = cases[u].mark;
		size_t max = cases[u].max, marklen = strcmp(mark, "...") == 0 ? 3 : 1;
		/* exactly max characters: kept whole */
		char *text = repeat(unit, max);
		char *var = sms_text_of(f, text);
		assert_string_equal(var, text);
		assert_int_equal(utf8_chars(var), max);
		free(var);
		free(text);
		/* more: cut to max characters, the mark last */
		for (size_t extra = 1; extra <= 41; extra += 40) {
			text = repeat(unit, max + extra);
			var = sms_text_of(f, text);
			assert_int_equal(utf8_chars(var), max);
			size_t kept = strlen(unit) * (max - marklen);
			assert_memory_equal(var, text, kept);
			assert_string_equal(var + kept, mark);
			free(var);
			free(text);
		}
	}
	/* Hindi words, mixed widths: a character is never split */
	char *hindi = repeat("\xe0\xa4\xa8\xe0\xa4\xae\xe0\xa4\xb8\xe0\xa5\x8d\xe0\xa4\xa4\xe0"
	                     "\xa5\x87 ",
	                     100); /* "नमस्ते " x 100 = 700 characters */
	char *var = sms_text_of(f, hindi);
	assert_int_equal(utf8_chars(var), WAMSG_SMS_UNICODE_MAX);
	size_t len = strlen(var);
	assert_true(len > 3);
	assert_string_equal(var + len - 3, "\xe2\x80\xa6");
	assert_memory_equal(var, hindi, len - 3);
	free(var);
	free(hindi);
}

static void test_sms_body_refuses(void **state)
{
	struct fx *f = *state;
	static const char *const bad[] = {
	        "not json",
	        "{\"type\":\"text\",\"text\":{\"body\":\"cut",
	        "[]",
	        "\"text\"",
	        "{}",
	        "{\"type\":\"text\"}",
	        "{\"type\":\"text\",\"text\":{\"body\":\"\"}}",
	        "{\"type\":\"text\",\"text\":{\"body\":42}}",
	        "{\"type\":\"interactive\",\"interactive\":{\"type\":\"button\"}}",
	        "{\"type\":\"image\",\"image\":{\"id\":\"1\"}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		buf_puts(&f->body, "left over");
		if (wamsg_sms_body(&f->body, "T", TO, bad[i], &f->a) != ERR_INVAL)
			fail_msg("wamsg_sms_body took %s", bad[i]);
		assert_int_equal(f->body.len, 0);
	}
	assert_int_equal(wamsg_sms_body(&f->body, "T", TO, NULL, &f->a), ERR_INVAL);
}

/* ---- provider_judge ----------------------------------------------------------------- */

/* judge: provider_judge on p with a body that is a C string. */
static struct provider_answer judge(struct fx *f, const struct provider *p, long status,
                                    const char *resp, int truncated)
{
	struct provider_answer out;
	memset(&out, 0x5a, sizeof(out)); /* whatever was there is overwritten */
	provider_judge(p, status, "Timeout was reached", resp, strlen(resp), truncated, &f->a,
	               &out);
	return out;
}

static void test_judge_bsp(void **state)
{
	struct fx *f = *state;
	init_ok(f);
	const struct provider *p = &f->l.p[0];
	struct provider_answer r;

	r = judge(f, p, 200,
	          "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":\"+" TO
	          "\",\"wa_id\":\"" TO "\"}],\"messages\":[{\"id\":\"wamid.HBgM\"}]}",
	          0);
	assert_int_equal(r.cls, SEND_OK);
	assert_string_equal(r.msg_id, "wamid.HBgM");
	assert_int_equal(r.error_code, 0);
	assert_string_equal(r.error, "");

	/* a 2xx without messages[0].id is no answer of this API: retried */
	static const char *const no_id[] = {
	        "{\"messages\":[]}",
	        "{\"messages\":[{\"id\":\"\"}]}",
	        "{\"messages\":[{\"id\":7}]}",
	        "{\"messages\":{\"id\":\"wamid.X\"}}",
	        "{\"messages\":[{\"id\":\"wamid\\u0000X\"}]}",
	        "OK",
	        "",
	};
	for (size_t i = 0; i < sizeof(no_id) / sizeof(no_id[0]); i++) {
		r = judge(f, p, 200, no_id[i], 0);
		if (r.cls != SEND_RETRY)
			fail_msg("200 %s judged %d", no_id[i], (int)r.cls);
		assert_string_equal(r.msg_id, "");
		assert_string_equal(r.error, "http 200 without messages[0].id");
	}
	/* an id longer than the journal keeps: not taken */
	char *id = repeat("w", JOURNAL_MSGID_MAX + 1);
	char body[1024];
	snprintf(body, sizeof(body), "{\"messages\":[{\"id\":\"%s\"}]}", id);
	r = judge(f, p, 200, body, 0);
	assert_int_equal(r.cls, SEND_RETRY);
	id[JOURNAL_MSGID_MAX] = '\0';
	snprintf(body, sizeof(body), "{\"messages\":[{\"id\":\"%s\"}]}", id);
	r = judge(f, p, 200, body, 0);
	assert_int_equal(r.cls, SEND_OK);
	assert_string_equal(r.msg_id, id);
	free(id);

	/* a permanent error: the code and the API's message */
	r = judge(f, p, 400,
	          "{\"error\":{\"message\":\"Message undeliverable\",\"type\":\"OAuthException\","
	          "\"code\":131026,\"fbtrace_id\":\"A\"}}",
	          0);
	assert_int_equal(r.cls, SEND_PERMANENT);
	assert_int_equal(r.error_code, 131026);
	assert_string_equal(r.error, "http 400: Message undeliverable");
	assert_string_equal(r.msg_id, "");

	r = judge(f, p, 429, "{\"error\":{\"message\":\"Rate limit hit\",\"code\":130429}}", 0);
	assert_int_equal(r.cls, SEND_RATE);
	assert_int_equal(r.error_code, 130429);
	r = judge(f, p, 429, "", 0);
	assert_int_equal(r.cls, SEND_RATE);

	r = judge(f, p, 503, "<html>Service Unavailable</html>", 0);
	assert_int_equal(r.cls, SEND_RETRY);
	assert_int_equal(r.error_code, 0);
	assert_string_equal(r.error, "http 503: no error message");

	/* a code out of int's range is no code */
	r = judge(f, p, 400, "{\"error\":{\"code\":99999999999,\"message\":\"m\"}}", 0);
	assert_int_equal(r.error_code, 0);

	/* no answer at all */
	r = judge(f, p, 0, "", 0);
	assert_int_equal(r.cls, SEND_RETRY);
	assert_string_equal(r.error, "no answer: Timeout was reached");
	assert_string_equal(r.msg_id, "");

	/* a body cut short is not read, even where its prefix looks whole */
	r = judge(f, p, 200, "{\"messages\":[{\"id\":\"wamid.CUT\"}]}", 1);
	assert_int_equal(r.cls, SEND_RETRY);
	assert_string_equal(r.msg_id, "");
	r = judge(f, p, 400, "{\"error\":{\"message\":\"m\",\"code\":130429}}", 1);
	assert_int_equal(r.error_code, 0);
	assert_string_equal(r.error, "http 400: no error message");

	/* the length given is what is read, not up to a NUL */
	struct provider_answer out;
	const char *two = "{\"messages\":[{\"id\":\"wamid.A\"}]}{garbage";
	provider_judge(p, 200, "", two, strlen(two) - 8, 0, &f->a, &out);
	assert_int_equal(out.cls, SEND_OK);
	assert_string_equal(out.msg_id, "wamid.A");
}

static void test_judge_sms(void **state)
{
	struct fx *f = *state;
	set(&f->cfg.sms_url, "http://sms.example/api/v5/flow/");
	set(&f->cfg.sms_token, "K");
	init_ok(f);
	const struct provider *p = &f->l.p[f->l.sms];
	struct provider_answer r;

	r = judge(f, p, 200, "{\"type\":\"success\",\"message\":\"abc\"}", 0);
	assert_int_equal(r.cls, SEND_OK);
	assert_string_equal(r.msg_id, "abc");
	assert_int_equal(r.error_code, 0);

	/* 2xx without a request id: retried */
	static const char *const no_id[] = {
	        "{\"type\":\"error\",\"message\":\"Invalid template\"}",
	        "{\"type\":\"success\"}",
	        "{\"type\":\"success\",\"message\":\"\"}",
	        "{\"message\":\"abc\"}",
	        "{\"messages\":[{\"id\":\"wamid.X\"}]}", /* the Cloud API's answer */
	        "",
	};
	for (size_t i = 0; i < sizeof(no_id) / sizeof(no_id[0]); i++) {
		r = judge(f, p, 200, no_id[i], 0);
		if (r.cls != SEND_RETRY)
			fail_msg("200 %s judged %d", no_id[i], (int)r.cls);
		assert_string_equal(r.msg_id, "");
		assert_string_equal(r.error, "http 200 without a request id");
	}
	r = judge(f, p, 200, "{\"type\":\"success\",\"message\":\"abc\"}", 1);
	assert_int_equal(r.cls, SEND_RETRY);

	/* by status alone: a refused authkey and 5xx retry, 429 is a rate */
	static const struct {
		long status;
		enum send_class want;
	} cases[] = {
	        {401, SEND_RETRY},     {403, SEND_RETRY},     {408, SEND_RETRY},
	        {500, SEND_RETRY},     {502, SEND_RETRY},     {503, SEND_RETRY},
	        {429, SEND_RATE},      {400, SEND_PERMANENT}, {404, SEND_PERMANENT},
	        {418, SEND_PERMANENT},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = judge(f, p, cases[i].status,
		          "{\"type\":\"error\",\"message\":\"Authentication failure\",\"code\":"
		          "131026}",
		          0);
		if (r.cls != cases[i].want)
			fail_msg("http %ld judged %d, wanted %d", cases[i].status, (int)r.cls,
			         (int)cases[i].want);
		assert_int_equal(r.error_code, 0);
	}
	r = judge(f, p, 400, "{\"type\":\"error\",\"message\":\"Mobile number not valid\"}", 0);
	assert_int_equal(r.cls, SEND_PERMANENT);
	assert_string_equal(r.error, "http 400: Mobile number not valid");
	assert_string_equal(r.msg_id, "");
	r = judge(f, p, 502, "Bad Gateway", 0);
	assert_string_equal(r.error, "http 502: no error message");
	r = judge(f, p, 0, "", 0);
	assert_int_equal(r.cls, SEND_RETRY);
	assert_string_equal(r.error, "no answer: Timeout was reached");
}

/* ---- delivery ------------------------------------------------------------------------- */

static struct delivery *new_delivery(int64_t window_ms, int min_reports, int min_pct)
{
	struct delivery *d = NULL;
	assert_int_equal(delivery_new(window_ms, min_reports, min_pct, &d), 0);
	assert_non_null(d);
	return d;
}

static void reports(struct delivery *d, const char *provider, int delivered, int n, int64_t t)
{
	for (int i = 0; i < n; i++)
		delivery_report(d, provider, delivered, t);
}

static void test_delivery_bounds(void **state)
{
	(void)state;
	struct delivery *d = (struct delivery *)1;
	assert_int_equal(delivery_new(9, 1, 50, &d), ERR_INVAL);
	assert_null(d);
	d = (struct delivery *)1;
	assert_int_equal(delivery_new(-1, 1, 50, &d), ERR_INVAL);
	assert_null(d);
	assert_int_equal(delivery_new(60000, 0, 50, &d), ERR_INVAL);
	assert_int_equal(delivery_new(60000, 1, -1, &d), ERR_INVAL);
	assert_int_equal(delivery_new(60000, 1, 101, &d), ERR_INVAL);
	assert_null(d);
	delivery_free(new_delivery(10, 1, 0));
	delivery_free(new_delivery(60000, 1, 100));
	delivery_free(NULL);
}

static void test_delivery_rate_and_threshold(void **state)
{
	(void)state;
	const int64_t t = 1750000000000LL;
	struct delivery *d = new_delivery(60000, 4, 75);
	/* too few reports: no rate, presumed delivering however bad */
	assert_int_equal(delivery_rate_pm(d, "bsp1", t), -1);
	assert_true(delivery_ok(d, "bsp1", t));
	reports(d, "bsp1", 0, 3, t);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t), -1);
	assert_true(delivery_ok(d, "bsp1", t));
	/* enough reports: 3 delivered of 6 */
	reports(d, "bsp1", 1, 3, t);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t), 500);
	assert_false(delivery_ok(d, "bsp1", t));
	delivery_free(d);

	d = new_delivery(60000, 4, 75);
	reports(d, "bsp1", 1, 3, t);
	reports(d, "bsp1", 0, 1, t + 1);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 1), 750);
	assert_true(delivery_ok(d, "bsp1", t + 1)); /* exactly min_pct: delivering */
	reports(d, "bsp1", 0, 1, t + 2);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 2), 600);
	assert_false(delivery_ok(d, "bsp1", t + 2));
	/* per mille, rounded down */
	reports(d, "bsp1", 1, 1, t + 3);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 3), 666);
	/* each provider on its own; one nobody reported on has no rate */
	reports(d, "sms", 1, 4, t + 3);
	assert_int_equal(delivery_rate_pm(d, "sms", t + 3), 1000);
	assert_true(delivery_ok(d, "sms", t + 3));
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 3), 666);
	assert_int_equal(delivery_rate_pm(d, "bsp2", t + 3), -1);
	assert_true(delivery_ok(d, "bsp2", t + 3));
	/* an empty name or NULL is ignored, as is a name too long for a row */
	reports(d, "", 0, 10, t + 3);
	reports(d, NULL, 0, 10, t + 3);
	reports(d, "a-provider-name-too-long", 0, 10, t + 3);
	assert_int_equal(delivery_rate_pm(d, "a-provider-name-too-long", t + 3), -1);
	assert_int_equal(delivery_rate_pm(d, NULL, t + 3), -1);
	delivery_free(d);

	/* min_pct 0: never failing; 100: failing on one failure */
	d = new_delivery(60000, 1, 0);
	reports(d, "bsp1", 0, 5, t);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t), 0);
	assert_true(delivery_ok(d, "bsp1", t));
	delivery_free(d);
	d = new_delivery(60000, 1, 100);
	reports(d, "bsp1", 1, 999, t);
	assert_true(delivery_ok(d, "bsp1", t));
	reports(d, "bsp1", 0, 1, t);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t), 999);
	assert_false(delivery_ok(d, "bsp1", t));
	delivery_free(d);

	/* without a tracker every provider is delivering */
	assert_int_equal(delivery_rate_pm(NULL, "bsp1", t), -1);
	assert_true(delivery_ok(NULL, "bsp1", t));
	delivery_report(NULL, "bsp1", 0, t);
}

static void test_delivery_window_forgets(void **state)
{
	(void)state;
	/* a 10 s window in ten 1 s buckets */
	struct delivery *d = new_delivery(10000, 2, 50);
	const int64_t t = 1750000000000LL; /* a bucket's start */
	reports(d, "bsp1", 0, 4, t);
	reports(d, "bsp1", 1, 4, t + 5500);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 5500), 500);
	/* the failures' bucket is still in the window up to its tenth second */
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 9999), 500);
	assert_true(delivery_ok(d, "bsp1", t + 9999));
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 10000), 1000);
	/* then the deliveries go too: no rate */
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 15000), -1);
	assert_true(delivery_ok(d, "bsp1", t + 15000));
	/* a bucket's slot used again ten seconds on holds only the new reports */
	reports(d, "bsp1", 0, 3, t + 20000);
	reports(d, "bsp1", 1, 1, t + 30000);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 30000), -1);
	reports(d, "bsp1", 1, 1, t + 30001);
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 30001), 1000);
	/* long idle: all forgotten, no sweep needed */
	assert_int_equal(delivery_rate_pm(d, "bsp1", t + 86400000), -1);
	/* a report dated in the future of the asking time is not counted */
	reports(d, "bsp2", 0, 5, t + 50000);
	assert_int_equal(delivery_rate_pm(d, "bsp2", t + 49999), -1);
	assert_int_equal(delivery_rate_pm(d, "bsp2", t + 50000), 0);
	delivery_free(d);
}

static void test_delivery_render(void **state)
{
	(void)state;
	const int64_t t = 1750000000000LL;
	struct delivery *d = new_delivery(60000, 4, 75);
	struct buf b;
	buf_init(&b);
	reports(d, "x", 1, 3, t);
	reports(d, "x", 0, 1, t);
	reports(d, "y", 1, 1, t);
	reports(d, "z", 1, 4, t);
	delivery_render(d, &b, t);
	assert_non_null(b.data);
	assert_non_null(strstr(b.data, "# TYPE munim_delivery_rate gauge\n"));
	assert_non_null(strstr(b.data, "\nmunim_delivery_rate{provider=\"x\"} 0.750\n"));
	assert_non_null(strstr(b.data, "\nmunim_delivery_rate{provider=\"y\"} -1.000\n"));
	assert_non_null(strstr(b.data, "\nmunim_delivery_rate{provider=\"z\"} 1.000\n"));
	assert_non_null(strstr(b.data, "# TYPE munim_delivery_reports_total counter\n"));
	assert_non_null(strstr(
	        b.data, "\nmunim_delivery_reports_total{provider=\"x\",result=\"delivered\"} 3\n"));
	assert_non_null(strstr(
	        b.data, "\nmunim_delivery_reports_total{provider=\"x\",result=\"failed\"} 1\n"));
	assert_non_null(strstr(
	        b.data, "\nmunim_delivery_reports_total{provider=\"y\",result=\"failed\"} 0\n"));
	/* past the window: the rates go, the totals stay */
	buf_reset(&b);
	delivery_render(d, &b, t + 600000);
	assert_non_null(strstr(b.data, "\nmunim_delivery_rate{provider=\"x\"} -1.000\n"));
	assert_non_null(strstr(
	        b.data, "\nmunim_delivery_reports_total{provider=\"x\",result=\"delivered\"} 3\n"));
	/* NULL d writes nothing */
	buf_reset(&b);
	delivery_render(NULL, &b, t);
	assert_int_equal(b.len, 0);
	buf_release(&b);
	delivery_free(d);
}

/* The one rule behind SMS retries: P0/P1, a gateway configured, not sent
 * by SMS already. */
static void test_sms_fallback_rule(void **state)
{
	struct fx *f = *state;
	assert_false(provider_sms_fallback(&f->cfg, PRIO_P0, "bsp1")); /* no gateway */
	set(&f->cfg.sms_url, "http://sms/flow");
	assert_true(provider_sms_fallback(&f->cfg, PRIO_P0, "bsp1"));
	assert_true(provider_sms_fallback(&f->cfg, PRIO_P1, "bsp2"));
	assert_true(provider_sms_fallback(&f->cfg, PRIO_P1, ""));
	assert_true(provider_sms_fallback(&f->cfg, PRIO_P1, NULL));
	assert_false(provider_sms_fallback(&f->cfg, PRIO_P2, "bsp1"));
	assert_false(provider_sms_fallback(&f->cfg, PRIO_P3, "bsp1"));
	assert_false(provider_sms_fallback(&f->cfg, PRIO_P0, PROVIDER_SMS));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_init_defaults_one_bsp, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_init_several_bsps_tokens_and_headers, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_init_refusals, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_360dialog_format, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sms_fallback_rule, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_bsp, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_request_sms, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sms_body_escapes, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sms_body_cut_in_characters, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_sms_body_refuses, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_judge_bsp, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_judge_sms, setup, teardown),
	        cmocka_unit_test(test_delivery_bounds),
	        cmocka_unit_test(test_delivery_rate_and_threshold),
	        cmocka_unit_test(test_delivery_window_forgets),
	        cmocka_unit_test(test_delivery_render),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
