/*
 * say.c - `munim say`: write to a running munim as a customer would, and
 * print what the shop answers.
 *
 *   munim say [options] TEXT...        a text message
 *   munim say [options] --button ID    a reply-button tap (e.g. confirm:42)
 *
 * 1. Build a Cloud API webhook (one entry, one change, one message with a
 *    fresh wamid "wamid.SAY<ms><random>", the contact's profile name and
 *    wa_id), serialised as Meta does (non-ASCII escaped as \u sequences such as \u20b9), signed
 *    with the app secret (X-Hub-Signature-256), POSTed to
 *    {url}/webhooks/whatsapp. Anything but 200 is an error.
 *    A tap also quotes the message that carried the button (context.id),
 *    looked up at the mock BSP when it can be found there.
 * 2. Poll {bsp}/_mock/messages?context=<wamid> every SAY_POLL_MS until a
 *    reply arrives or --timeout-ms passes; then keep polling SAY_LINGER_MS
 *    more for further replies to the same message.
 *
 * The webhook, its signature and the HTTP client are shared with
 * `munim loadgen` (tools_common.c).
 *
 * Exit status: 0 when a reply was printed; 1 when the webhook was refused
 * or no reply came in time; 2 on a usage error.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

#define SAY_POLL_MS   50
#define SAY_LINGER_MS 300
/* An inbound text is at most 4096 characters; bytes are a safe upper bound. */
#define SAY_MAX_TEXT  4096
#define SAY_MAX_WORDS 1024
/* Largest answer read from munim or the mock BSP. */
#define SAY_MAX_ANSWER (8 << 20)
/* Recent messages to the customer searched for the tapped button. */
#define SAY_BUTTON_LOOKBACK 50

static const char *const say_opts[] = {
        "url", "bsp", "app-secret", "from", "name", "to", "timeout-ms", "button", "log-level", NULL,
};

static const char say_usage[] =
        "[options] TEXT...\n\n"
        "Posts TEXT (or, with --button ID, a reply-button tap) as a signed WhatsApp webhook\n"
        "to munim and prints the replies the mock BSP received for it. Without --app-secret\n"
        "the demo's secret \"" TOOLS_DEMO_SECRET "\" signs the webhook; the customer's name is\n"
        "\"" TOOLS_DEFAULT_NAME "\" without --name.";

static void new_wamid(char *out, size_t cap)
{
	uint64_t r = tools_random_u64();
	snprintf(out, cap, "wamid.SAY%lld%016llX", (long long)clock_wall_ms(),
	         (unsigned long long)r);
}

static int64_t remaining_ms(int64_t deadline_us)
{
	int64_t left = (deadline_us - clock_mono_us()) / 1000;
	return left > 0 ? left : 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * find_button_message looks at the mock BSP for the newest message to the
 * customer carrying a button with this id; returns its wamid (caller
 * frees) or NULL. Best effort: a tap without context is still a tap.
 */
static char *find_button_message(struct tools_client *c, const char *bsp, const char *from,
                                 const char *button, long timeout_ms)
{
	char *to = curl_easy_escape(c->easy, from, 0);
	struct buf url;
	buf_init(&url);
	buf_printf(&url, "%s/_mock/messages?to=%s&order=desc&limit=%d", bsp, to ? to : "",
	           SAY_BUTTON_LOOKBACK);
	curl_free(to);
	long status = 0;
	char *found = NULL;
	json_t *root = NULL;
	if (tools_client_request(c, url.data, NULL, 0, NULL, timeout_ms, &status) != 0 ||
	    status != 200)
		goto out;
	root = json_loadb(c->answer.data, c->answer.len, 0, NULL);
	size_t i, j;
	json_t *msg, *b;
	json_array_foreach(json_object_get(root, "messages"), i, msg)
	{
		json_array_foreach(json_object_get(msg, "buttons"), j, b)
		{
			const char *id = json_string_value(json_object_get(b, "id"));
			const char *wamid = json_string_value(json_object_get(msg, "id"));
			if (id && wamid && strcmp(id, button) == 0) {
				found = xstrdup(wamid);
				goto out;
			}
		}
	}
out:
	json_decref(root);
	buf_release(&url);
	return found;
}

/* The webhook for one inbound message, as Meta serialises it. */
static char *build_webhook(const struct config *cfg, const char *wamid, const char *text,
                           const char *context)
{
	struct tools_inbound in = {
	        .phone_number_id = cfg->to,
	        .from = cfg->from,
	        .name = cfg->name,
	        .wamid = wamid,
	        .text = text,
	        .button = cfg->button,
	        .context = context,
	};
	return tools_webhook_build(&in);
}

/* Prints one reply readably. */
static void print_reply(json_t *msg, int nth)
{
	const char *type = json_string_value(json_object_get(msg, "type"));
	const char *text = json_string_value(json_object_get(msg, "text"));
	if (nth > 0)
		printf("\n");
	if (text)
		printf("%s\n", text);
	else
		printf("(%s message)\n", type ? type : "unknown");
	json_t *buttons = json_object_get(msg, "buttons");
	if (json_array_size(buttons) == 0)
		return;
	size_t i;
	json_t *b;
	json_array_foreach(buttons, i, b)
	{
		const char *t = json_string_value(json_object_get(b, "title"));
		printf("%s[%s]", i ? " " : "", t ? t : "?");
	}
	printf("  (");
	json_array_foreach(buttons, i, b)
	{
		const char *id = json_string_value(json_object_get(b, "id"));
		printf("%s%s", i ? ", " : "", id ? id : "?");
	}
	printf(")\n");
}

/*
 * await_replies polls the mock BSP for replies quoting wamid and prints
 * them. Returns how many were printed; *why explains a failure to poll.
 */
static int await_replies(struct tools_client *c, const char *bsp, const char *wamid,
                         int64_t deadline_us, char *why, size_t why_cap)
{
	int printed = 0;
	uint64_t since = 0;
	int64_t linger_until = 0;
	char *ctx = curl_easy_escape(c->easy, wamid, 0);
	struct buf url;
	buf_init(&url);
	why[0] = '\0';
	for (;;) {
		buf_reset(&url);
		buf_printf(&url, "%s/_mock/messages?context=%s&since=%llu", bsp, ctx ? ctx : "",
		           (unsigned long long)since);
		long status = 0;
		int64_t left = remaining_ms(linger_until ? linger_until : deadline_us);
		if (tools_client_request(c, url.data, NULL, 0, NULL, left > 1000 ? 1000 : left + 1,
		                         &status) != 0) {
			snprintf(why, why_cap, "%s", c->err);
		} else if (status != 200) {
			snprintf(why, why_cap, "the mock BSP answered %ld", status);
		} else {
			json_t *root = json_loadb(c->answer.data, c->answer.len, 0, NULL);
			json_t *next = json_object_get(root, "next");
			size_t i;
			json_t *msg;
			json_array_foreach(json_object_get(root, "messages"), i, msg)
			{
				print_reply(msg, printed++);
			}
			if (json_is_integer(next) && json_integer_value(next) >= 0)
				since = (uint64_t)json_integer_value(next);
			json_decref(root);
			fflush(stdout);
			if (printed > 0 && !linger_until)
				linger_until = clock_mono_us() + (int64_t)SAY_LINGER_MS * 1000;
		}
		int64_t now = clock_mono_us();
		if ((linger_until && now >= linger_until) || (!linger_until && now >= deadline_us))
			break;
		sleep_ms(SAY_POLL_MS);
	}
	curl_free(ctx);
	buf_release(&url);
	return printed;
}

static int say(const struct config *cfg, const char *text)
{
	int exit_code = 1;
	char *url = xstrdup(cfg->url), *bsp = xstrdup(cfg->bsp);
	tools_strip_slash(url);
	tools_strip_slash(bsp);
	const char *secret =
	        cfg->app_secret && *cfg->app_secret ? cfg->app_secret : TOOLS_DEMO_SECRET;
	int64_t deadline = clock_mono_us() + cfg->timeout_ms * 1000;
	struct tools_client c;
	char *body = NULL, *context = NULL;
	struct curl_slist *headers = NULL;
	struct buf target;
	buf_init(&target);

	if (tools_client_init(&c, SAY_MAX_ANSWER) != 0) {
		fprintf(stderr, "munim say: could not create an HTTP client\n");
		goto out;
	}

	char wamid[64];
	new_wamid(wamid, sizeof(wamid));
	if (cfg->button)
		context = find_button_message(&c, bsp, cfg->from, cfg->button,
		                              (long)remaining_ms(deadline));
	body = build_webhook(cfg, wamid, text, context);
	if (!body) {
		fprintf(stderr, "munim say: could not build the webhook (is the text UTF-8?)\n");
		goto out;
	}
	char hdr[TOOLS_SIG_HEADER_CAP];
	tools_sig_header(secret, body, strlen(body), hdr);
	headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (headers)
		headers = curl_slist_append(headers, hdr);
	if (!headers) {
		fprintf(stderr, "munim say: out of memory\n");
		goto out;
	}
	buf_printf(&target, "%s/webhooks/whatsapp", url);
	long status = 0;
	if (tools_client_request(&c, target.data, body, strlen(body), headers,
	                         (long)remaining_ms(deadline), &status) != 0) {
		fprintf(stderr, "munim say: could not post to %s: %s\n", target.data, c.err);
		goto out;
	}
	if (status != 200) {
		fprintf(stderr, "munim say: %s answered HTTP %ld: %.*s\n", target.data, status,
		        (int)(c.answer.len > 2000 ? 2000 : c.answer.len),
		        c.answer.data ? c.answer.data : "");
		goto out;
	}
	log_debug("say.sent", "posted %s to %s", wamid, target.data);

	char why[CURL_ERROR_SIZE + 64];
	if (await_replies(&c, bsp, wamid, deadline, why, sizeof(why)) > 0) {
		exit_code = 0;
	} else {
		fprintf(stderr, "munim say: no reply within %lld ms%s%s%s\n",
		        (long long)cfg->timeout_ms, why[0] ? " (" : "", why, why[0] ? ")" : "");
	}
out:
	buf_release(&target);
	curl_slist_free_all(headers);
	free(body);
	free(context);
	tools_client_release(&c);
	free(url);
	free(bsp);
	return exit_code;
}

int cmd_say(int argc, char **argv)
{
	struct config cfg;
	char *words[SAY_MAX_WORDS];
	int nwords = 0;
	int rc = tools_config(&cfg, "say", say_usage, say_opts, NULL, argc, argv, words,
	                      SAY_MAX_WORDS, &nwords);
	if (rc >= 0)
		return rc;

	struct buf text;
	buf_init(&text);
	for (int i = 0; i < nwords; i++) {
		if (i)
			buf_putc(&text, ' ');
		buf_puts(&text, words[i]);
	}
	int exit_code = 2;
	if (text.len > SAY_MAX_TEXT) {
		fprintf(stderr, "munim say: the text is longer than %d bytes\n", SAY_MAX_TEXT);
		goto out;
	}
	if (text.len == 0 && !cfg.button) {
		config_usage(stderr, "say", say_usage, say_opts, NULL);
		goto out;
	}
	if (!cfg.from || !*cfg.from || !cfg.to || !*cfg.to || !cfg.url || !cfg.bsp) {
		fprintf(stderr, "munim say: --from, --to, --url and --bsp must not be empty\n");
		goto out;
	}
	if (cfg.button && (!*cfg.button || strlen(cfg.button) > 256)) {
		fprintf(stderr, "munim say: --button needs an id of 1 to 256 characters\n");
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "munim say: could not initialise libcurl\n");
		exit_code = 1;
		goto out;
	}
	exit_code = say(&cfg, text.data ? text.data : "");
	curl_global_cleanup();
out:
	buf_release(&text);
	config_release(&cfg);
	return exit_code;
}
