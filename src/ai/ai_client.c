/*
 * ai_client.c - what munim says to the AI endpoint and how it reads the
 * answer. Pure: no I/O, no clock; the thread (ai.c) does the calls.
 *
 * The request is an OpenAI-compatible chat completion: a system prompt
 * that lists munim's customer commands in the grammar the local parser
 * (erp/parse.c) reads, and the customer's text as the user's message, at
 * temperature 0 so the same text gets the same rewrite.
 *
 * The answer is trusted only as far as the parser would trust a customer:
 * it must be one line whose first word is a customer command (menu, stock,
 * order, confirm, cancel, invoice, status). The owner's commands (add
 * stock, price, broadcast, paid ...) are never taken from an answer, so a
 * rewrite cannot make a customer's message change prices or message every
 * customer; the rewrite then runs through the same parser and handlers as
 * typed text, with their checks. Anything else is an error with a name
 * (ai__answer_parse's *why), and the customer gets the local parser's
 * answer.
 *
 * Threading: none needed (pure; the arena and buffer are the caller's).
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ai/ai_internal.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "ingest/envelope.h"

const char ai__system_prompt[] =
        "You read WhatsApp messages that customers send to a small Indian shop, in English, "
        "Hindi or Hinglish, and rewrite each into one command of the shop's ordering system. "
        "Answer with the command alone on one line, in lower case, with nothing else; answer "
        "UNKNOWN when the message asks for none of them.\n"
        "Commands:\n"
        "menu - a greeting, or a request for help or for the menu\n"
        "stock <item> - is an item in stock, what does it cost (example: stock atta)\n"
        "order <quantity> <unit> <item>, <quantity> <unit> <item> - buy items; units: kg, g, "
        "l, ml, pc, packet, dozen (example: order 2 kg atta, 1 l oil)\n"
        "confirm - confirm the last order\n"
        "cancel - cancel the last order\n"
        "invoice - show the last invoice\n"
        "status - where is my last order\n"
        "Keep item names as the customer wrote them; kilo is kg, litre is l.";

/* The commands an answer may hold: the first word of the line. */
static const char *const customer_commands[] = {
        "menu", "stock", "order", "confirm", "cancel", "invoice", "status",
};

void ai__request_body(struct buf *b, const char *model, const char *text)
{
	const char *t = text ? text : "";
	size_t n = envelope_utf8_cut(t, strlen(t), AI_MAX_TEXT);
	char *cut = NULL;
	buf_reset(b);
	buf_puts(b, "{\"model\":");
	buf_json_str(b, model && *model ? model : "munim");
	buf_puts(b, ",\"temperature\":0,\"max_tokens\":64,\"messages\":[{\"role\":\"system\","
	            "\"content\":");
	buf_json_str(b, ai__system_prompt);
	buf_puts(b, "},{\"role\":\"user\",\"content\":");
	if (n < strlen(t)) {
		struct buf c;
		buf_init(&c);
		buf_append(&c, t, n);
		cut = buf_detach(&c);
		t = cut;
	}
	buf_json_str(b, t);
	buf_puts(b, "}]}");
	free(cut);
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Quotes and code marks a chat model may wrap its answer in. */
static int is_wrap(char c)
{
	return c == '"' || c == '\'' || c == '`' || c == '*';
}

int ai__answer_parse(const char *body, size_t len, struct arena *a, const char **command,
                     const char **why)
{
	const struct jsonr_val *root;
	*command = NULL;
	*why = "";
	if (!body || jsonr_parse(body, len, a, &root) != 0 || !jsonr_is_object(root)) {
		*why = "the answer is not a JSON object";
		return ERR_PROTO;
	}
	const struct jsonr_val *choice = jsonr_at(jsonr_get(root, "choices"), 0);
	const struct jsonr_val *msg = jsonr_get(choice, "message");
	size_t n;
	const char *content = jsonr_str(jsonr_get(msg, "content"), &n);
	if (!content) {
		*why = "the answer has no choices[0].message.content";
		return ERR_PROTO;
	}
	/* the first non-blank line, unwrapped */
	const char *s = content, *end = content + n;
	while (s < end && (is_blank(*s) || is_wrap(*s)))
		s++;
	const char *e = s;
	while (e < end && *e != '\n' && *e != '\r')
		e++;
	while (e > s && (is_blank(e[-1]) || is_wrap(e[-1]) || e[-1] == '.'))
		e--;
	size_t len_line = (size_t)(e - s);
	if (len_line == 0 || (len_line == 7 && strncasecmp(s, "unknown", 7) == 0)) {
		*why = "the endpoint did not understand the message";
		return ERR_NOTFOUND;
	}
	if (len_line > AI_MAX_COMMAND) {
		*why = "the answer is longer than a command";
		return ERR_INVAL;
	}
	char *out = arena_strndup(a, s, len_line);
	for (char *p = out; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (ch < 0x20 || ch == 0x7f) {
			*why = "the answer holds a control character";
			return ERR_INVAL;
		}
		if (ch >= 'A' && ch <= 'Z')
			*p = (char)(ch - 'A' + 'a');
	}
	if (len_line != strlen(out)) {
		*why = "the answer holds a NUL character";
		return ERR_INVAL;
	}
	size_t w = strcspn(out, " \t");
	for (size_t i = 0; i < sizeof(customer_commands) / sizeof(customer_commands[0]); i++) {
		if (strlen(customer_commands[i]) == w &&
		    memcmp(out, customer_commands[i], w) == 0) {
			*command = out;
			return 0;
		}
	}
	*why = "the answer is not one of the customer commands";
	return ERR_INVAL;
}

void ai__breaker_config(const struct config *cfg, struct breaker_config *out)
{
	breaker_config_default(out);
	out->failure_threshold = (int)cfg->ai_breaker_failures;
	out->success_threshold = (int)cfg->ai_breaker_successes;
	out->open_ms = cfg->ai_breaker_open_ms;
	out->slow_ms = 0; /* --ai-timeout-ms already makes a slow answer a failure */
}
