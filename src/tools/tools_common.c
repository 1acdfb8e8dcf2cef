/*
 * tools_common.c - what `munim say` and `munim loadgen` both need: the
 * webhook a customer's message arrives in (loadgen's template,
 * loadgen_body_build, is tested to match it byte for byte) and its
 * signature header; and the small blocking libcurl client `say` uses to
 * talk to munim and the mock BSP.
 *
 * The webhook is built with jansson and dumped compact with non-ASCII
 * escaped (\u sequences such as \u20b9), as Meta serialises it, so the signature covers exactly
 * the bytes munim will read. Everything here is thread-safe except a
 * struct tools_client, which belongs to one thread at a time.
 */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

char *tools_webhook_build(const struct tools_inbound *in)
{
	char ts[24];
	snprintf(ts, sizeof(ts), "%lld", (long long)(clock_wall_ms() / 1000));
	json_t *msg =
	        json_pack("{s:s, s:s, s:s}", "from", in->from, "id", in->wamid, "timestamp", ts);
	if (!msg)
		return NULL;
	if (in->button) {
		json_object_set_new(msg, "type", json_string("interactive"));
		json_object_set_new(msg, "interactive",
		                    json_pack("{s:s, s:{s:s, s:s}}", "type", "button_reply",
		                              "button_reply", "id", in->button, "title",
		                              *in->text ? in->text : in->button));
	} else {
		json_object_set_new(msg, "type", json_string("text"));
		json_object_set_new(msg, "text", json_pack("{s:s}", "body", in->text));
	}
	if (in->context)
		json_object_set_new(
		        msg, "context",
		        json_pack("{s:s, s:s}", "from", in->phone_number_id, "id", in->context));
	/* json_pack steals msg ("o"), also when it fails */
	json_t *root = json_pack(
	        "{s:s, s:[{s:s, s:[{s:s, s:{s:s, s:{s:s, s:s}, s:[{s:{s:s}, s:s}], s:[o]}}]}]}",
	        "object", "whatsapp_business_account", "entry", "id", "0", "changes", "field",
	        "messages", "value", "messaging_product", "whatsapp", "metadata",
	        "display_phone_number", in->phone_number_id, "phone_number_id", in->phone_number_id,
	        "contacts", "profile", "name", in->name ? in->name : TOOLS_DEFAULT_NAME, "wa_id",
	        in->from, "messages", msg);
	if (!root)
		return NULL;
	char *s = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	return s;
}

void tools_sig_header(const char *secret, const void *body, size_t len,
                      char out[TOOLS_SIG_HEADER_CAP])
{
	char sig[SIG_HEADER_LEN + 1];
	sig_sign(secret, body, len, sig);
	snprintf(out, TOOLS_SIG_HEADER_CAP, "X-Hub-Signature-256: %s", sig);
}

int tools_config(struct config *cfg, const char *cmd, const char *usage, const char *const *opts,
                 const char *listen, int argc, char **argv, char **pos, int max_pos, int *npos)
{
	config_defaults(cfg);
	if (listen) {
		free(cfg->listen);
		cfg->listen = xstrdup(listen);
	}
	int rc = config_parse(cfg, cmd, usage, opts, argc, argv, pos, max_pos, npos);
	if (rc != 0) {
		config_release(cfg);
		return rc > 0 ? 0 : 2;
	}
	enum log_level lvl;
	if (cfg->log_level && log_parse_level(cfg->log_level, &lvl) != 0) {
		fprintf(stderr, "munim %s: invalid log level \"%s\"\n", cmd, cfg->log_level);
		config_release(cfg);
		return 2;
	}
	if (cfg->log_level)
		log_set_level(lvl);
	return -1;
}

void tools_strip_slash(char *url)
{
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		url[--n] = '\0';
}

uint64_t tools_random_u64(void)
{
	uint64_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = tools_scatter_u64((uint64_t)clock_mono_us());
	return r;
}

/* An odd multiplier (2^64 / the golden ratio) and its inverse modulo 2^64. */
#define SCATTER_MUL 0x9e3779b97f4a7c15ULL
#define SCATTER_INV 0xf1de83e19937733dULL

uint64_t tools_scatter_u64(uint64_t v)
{
	return v * SCATTER_MUL;
}

uint64_t tools_gather_u64(uint64_t v)
{
	return v * SCATTER_INV;
}

size_t tools_fmt_u64(char *out, uint64_t v, size_t width)
{
	char d[20];
	size_t n = 0;
	do {
		d[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	while (n < width && n < sizeof(d))
		d[n++] = '0';
	for (size_t k = 0; k < n; k++)
		out[k] = d[n - 1 - k];
	out[n] = '\0';
	return n;
}

/* ---- the blocking client ------------------------------------------------ */

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	struct tools_client *c = ud;
	size_t len = size * n;
	if (c->answer.len + len > c->max_answer) {
		c->too_big = 1;
		return 0; /* abort the transfer */
	}
	buf_append(&c->answer, p, len);
	return len;
}

int tools_client_init(struct tools_client *c, size_t max_answer)
{
	memset(c, 0, sizeof(*c));
	buf_init(&c->answer);
	c->max_answer = max_answer;
	c->easy = curl_easy_init();
	if (!c->easy)
		return ERR_IO;
	curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->err);
	curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
	return 0;
}

void tools_client_release(struct tools_client *c)
{
	if (c->easy)
		curl_easy_cleanup(c->easy);
	c->easy = NULL;
	buf_release(&c->answer);
}

int tools_client_request(struct tools_client *c, const char *url, const char *body, size_t len,
                         struct curl_slist *headers, long timeout_ms, long *status)
{
	buf_reset(&c->answer);
	c->too_big = 0;
	c->err[0] = '\0';
	curl_easy_setopt(c->easy, CURLOPT_URL, url);
	curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, timeout_ms > 0 ? timeout_ms : 1L);
	if (body) {
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	} else {
		curl_easy_setopt(c->easy, CURLOPT_HTTPGET, 1L);
	}
	CURLcode res = curl_easy_perform(c->easy);
	if (res != CURLE_OK) {
		if (c->too_big)
			snprintf(c->err, sizeof(c->err), "answer larger than %zu bytes",
			         c->max_answer);
		else if (!c->err[0])
			snprintf(c->err, sizeof(c->err), "%s", curl_easy_strerror(res));
		return ERR_IO;
	}
	curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, status);
	return 0;
}
