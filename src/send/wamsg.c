/*
 * wamsg.c - Cloud API request bodies for POST /{version}/{phone}/messages.
 *
 * The bodies are written once, when the worker queues a reply, and stored
 * in the outbox exactly as they will be sent; the sender never
 * re-serialises them. So this is where the API's rules are kept:
 *
 *   - "to" always carries a leading '+' (without it the API prefixes the
 *     business number's country code and may deliver to the wrong person);
 *   - a reply quotes the message it answers: context.message_id;
 *   - text.body ≤ 4096 characters, an interactive body.text ≤ 1024, a
 *     button title ≤ 20, a button id ≤ 256, at most 3 buttons.
 *
 * Over-long strings are cut at a character boundary (the text with a
 * closing "…") rather than sent to be refused; bytes that are not UTF-8 are
 * written as U+FFFD, so the body is always valid JSON.
 *
 * Thread-safe: no state besides the caller's arena.
 */
#include "send/wamsg.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/jsonr.h"

#define WAMSG_TEXT_MAX             4096
#define WAMSG_INTERACTIVE_TEXT_MAX 1024
#define WAMSG_TITLE_MAX            20
#define WAMSG_ID_MAX               256
#define WAMSG_MAX_BUTTONS          3
/* A template's name, language code and body parameter (the API's limits). */
#define WAMSG_TEMPLATE_NAME_MAX  512
#define WAMSG_LANG_MAX           16
#define WAMSG_TEMPLATE_PARAM_MAX 1024

/* Length of the UTF-8 sequence at p (1..4), or 0 if it is not valid. */
static size_t utf8_len(const unsigned char *p)
{
	unsigned char c = p[0];
	if (c < 0x80)
		return 1;
	size_t n;
	unsigned int cp;
	if ((c & 0xe0) == 0xc0) {
		n = 2;
		cp = c & 0x1fu;
	} else if ((c & 0xf0) == 0xe0) {
		n = 3;
		cp = c & 0x0fu;
	} else if ((c & 0xf8) == 0xf0) {
		n = 4;
		cp = c & 0x07u;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = (cp << 6) | (p[i] & 0x3fu);
	}
	/* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
	static const unsigned int min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
	if (cp < min_cp[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

/*
 * put_str appends s as a JSON string of at most max characters; when s is
 * longer, the last kept character is replaced by ellipsis (may be NULL:
 * then s is just cut).
 */
static void put_str(struct buf *b, const char *s, size_t max, const char *ellipsis)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t chars = 0;
	buf_putc(b, '"');
	while (*p) {
		size_t n = utf8_len(p);
		if (chars == max || (ellipsis && chars == max - 1 && p[n ? n : 1] != '\0')) {
			if (ellipsis)
				buf_puts(b, ellipsis);
			break;
		}
		chars++;
		if (n == 0) {
			buf_puts(b, "\xef\xbf\xbd"); /* U+FFFD */
			p++;
			continue;
		}
		if (n > 1) {
			buf_append(b, p, n);
			p += n;
			continue;
		}
		switch (*p) {
		case '"': buf_puts(b, "\\\""); break;
		case '\\': buf_puts(b, "\\\\"); break;
		case '\n': buf_puts(b, "\\n"); break;
		case '\r': buf_puts(b, "\\r"); break;
		case '\t': buf_puts(b, "\\t"); break;
		default:
			if (*p < 0x20) {
				char u[6] = {'\\', 'u', '0', '0', hex[*p >> 4], hex[*p & 15]};
				buf_append(b, u, sizeof(u));
			} else {
				buf_putc(b, (char)*p);
			}
		}
		p++;
	}
	buf_putc(b, '"');
}

/* The fields every message starts with, up to and including "type". */
static void put_head(struct buf *b, const char *to, const char *context_id, const char *type)
{
	buf_puts(b,
	         "{\"messaging_product\":\"whatsapp\",\"recipient_type\":\"individual\",\"to\":");
	/* the '+' goes inside the quotes: build "+<to>" unless it is there */
	struct buf num;
	buf_init(&num);
	if (!to || to[0] != '+')
		buf_putc(&num, '+');
	buf_puts(&num, to ? to : "");
	put_str(b, num.data, WAMSG_ID_MAX, NULL);
	buf_release(&num);
	if (context_id && *context_id) {
		buf_puts(b, ",\"context\":{\"message_id\":");
		put_str(b, context_id, WAMSG_ID_MAX, NULL);
		buf_putc(b, '}');
	}
	buf_puts(b, ",\"type\":\"");
	buf_puts(b, type);
	buf_putc(b, '"');
}

static char *finish(struct arena *a, struct buf *b)
{
	char *out = arena_strndup(a, b->data, b->len);
	buf_release(b);
	return out;
}

/*
 * wamsg_text returns {"messaging_product":"whatsapp", "recipient_type":
 * "individual", "to":"+<to>", "context":{"message_id":...}, "type":"text",
 * "text":{"preview_url":false,"body":...}} in arena a (never NULL); the
 * context is left out when context_id is NULL or "".
 */
char *wamsg_text(struct arena *a, const char *to, const char *context_id, const char *text)
{
	struct buf b;
	buf_init(&b);
	put_head(&b, to, context_id, "text");
	buf_puts(&b, ",\"text\":{\"preview_url\":false,\"body\":");
	put_str(&b, text, WAMSG_TEXT_MAX, "\xe2\x80\xa6");
	buf_puts(&b, "}}");
	return finish(a, &b);
}

char *wamsg_template(struct arena *a, const char *to, const char *name, const char *lang,
                     const char *param)
{
	struct buf b;
	buf_init(&b);
	put_head(&b, to, NULL, "template");
	buf_puts(&b, ",\"template\":{\"name\":");
	put_str(&b, name, WAMSG_TEMPLATE_NAME_MAX, NULL);
	buf_puts(&b, ",\"language\":{\"code\":");
	put_str(&b, lang, WAMSG_LANG_MAX, NULL);
	buf_puts(&b, "},\"components\":[{\"type\":\"body\",\"parameters\":[{\"type\":\"text\","
	             "\"text\":");
	put_str(&b, param, WAMSG_TEMPLATE_PARAM_MAX, "\xe2\x80\xa6");
	buf_puts(&b, "}]}]}}");
	return finish(a, &b);
}

/*
 * wamsg_buttons returns an interactive "button" message in arena a (never
 * NULL): body.text and action.buttons[] of {"type":"reply","reply":{id,
 * title}}. Only the first 3 buttons are used; with none it degrades to
 * wamsg_text (an interactive message without buttons is refused).
 */
char *wamsg_buttons(struct arena *a, const char *to, const char *context_id, const char *text,
                    const struct wamsg_button *buttons, int nbuttons)
{
	if (!buttons || nbuttons < 1)
		return wamsg_text(a, to, context_id, text);
	if (nbuttons > WAMSG_MAX_BUTTONS)
		nbuttons = WAMSG_MAX_BUTTONS;
	struct buf b;
	buf_init(&b);
	put_head(&b, to, context_id, "interactive");
	buf_puts(&b, ",\"interactive\":{\"type\":\"button\",\"body\":{\"text\":");
	put_str(&b, text, WAMSG_INTERACTIVE_TEXT_MAX, "\xe2\x80\xa6");
	buf_puts(&b, "},\"action\":{\"buttons\":[");
	for (int i = 0; i < nbuttons; i++) {
		buf_puts(&b, i ? ",{" : "{");
		buf_puts(&b, "\"type\":\"reply\",\"reply\":{\"id\":");
		put_str(&b, buttons[i].id, WAMSG_ID_MAX, NULL);
		buf_puts(&b, ",\"title\":");
		put_str(&b, buttons[i].title, WAMSG_TITLE_MAX, NULL);
		buf_puts(&b, "}}");
	}
	buf_puts(&b, "]}}}");
	return finish(a, &b);
}

void wamsg_with_callback(struct buf *out, const char *body, int64_t row_id)
{
	buf_reset(out);
	if (!body || body[0] != '{') {
		buf_puts(out, body ? body : "");
		return;
	}
	buf_printf(out, "{\"biz_opaque_callback_data\":\"" WAMSG_CALLBACK_PREFIX "%lld\"",
	           (long long)row_id);
	const char *rest = body + 1;
	while (*rest == ' ' || *rest == '\n' || *rest == '\t' || *rest == '\r')
		rest++;
	if (*rest != '}')
		buf_putc(out, ',');
	buf_puts(out, rest);
}

int64_t wamsg_callback_row(const char *s)
{
	size_t n = sizeof(WAMSG_CALLBACK_PREFIX) - 1;
	int64_t id = 0;
	if (!s || strncmp(s, WAMSG_CALLBACK_PREFIX, n) != 0 || !s[n])
		return 0;
	for (s += n; *s; s++) {
		if (*s < '0' || *s > '9' || id > (INT64_MAX - 9) / 10)
			return 0;
		id = id * 10 + (*s - '0');
	}
	return id;
}

/* The words of a Cloud API message worth an SMS, or NULL. */
static const char *sms_text(const struct jsonr_val *msg)
{
	const char *type = jsonr_str(jsonr_get(msg, "type"), NULL);
	if (!type)
		return NULL;
	if (strcmp(type, "text") == 0)
		return jsonr_str(jsonr_get(jsonr_get(msg, "text"), "body"), NULL);
	if (strcmp(type, "interactive") == 0)
		return jsonr_str(
		        jsonr_get(jsonr_get(jsonr_get(msg, "interactive"), "body"), "text"), NULL);
	if (strcmp(type, "template") == 0) {
		const struct jsonr_val *comps = jsonr_get(jsonr_get(msg, "template"), "components");
		for (size_t i = 0; i < jsonr_len(comps); i++) {
			const struct jsonr_val *c = jsonr_at(comps, i);
			const char *ct = jsonr_str(jsonr_get(c, "type"), NULL);
			if (ct && strcmp(ct, "body") == 0)
				return jsonr_str(
				        jsonr_get(jsonr_at(jsonr_get(c, "parameters"), 0), "text"),
				        NULL);
		}
	}
	return NULL;
}

/*
 * sms_cut: text as three SMS parts carry it: 459 characters when it is all
 * ASCII (GSM-7, 153 a part), cut with "..."; 201 when it has any other
 * character (UCS-2, 67 a part: Hindi), cut with "…". In a.
 */
static const char *sms_cut(struct arena *a, const char *text)
{
	int ascii = 1;
	size_t chars = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p; chars++) {
		size_t n = utf8_len(p);
		ascii &= *p < 0x80;
		p += n ? n : 1;
	}
	size_t max = ascii ? WAMSG_SMS_TEXT_MAX : WAMSG_SMS_UNICODE_MAX;
	const char *mark = ascii ? "..." : "\xe2\x80\xa6";
	size_t keep = max - (ascii ? 3 : 1);
	if (chars <= max)
		return text;
	const unsigned char *p = (const unsigned char *)text;
	for (size_t i = 0; i < keep; i++) {
		size_t n = utf8_len(p);
		p += n ? n : 1;
	}
	size_t bytes = (size_t)(p - (const unsigned char *)text);
	char *cut = arena_alloc(a, bytes + strlen(mark) + 1);
	memcpy(cut, text, bytes);
	strcpy(cut + bytes, mark);
	return cut;
}

int wamsg_sms_body(struct buf *out, const char *template_id, const char *to, const char *wa_body,
                   struct arena *a)
{
	const struct jsonr_val *root = NULL;
	buf_reset(out);
	if (!wa_body || jsonr_parse(wa_body, strlen(wa_body), a, &root) != 0)
		return ERR_INVAL;
	const char *text = sms_text(root);
	if (!text || !*text)
		return ERR_INVAL;
	buf_puts(out, "{\"template_id\":");
	put_str(out, template_id, WAMSG_ID_MAX, NULL);
	buf_puts(out, ",\"short_url\":\"0\",\"recipients\":[{\"mobiles\":");
	put_str(out, to && to[0] == '+' ? to + 1 : to, WAMSG_ID_MAX, NULL);
	buf_puts(out, ",\"var\":");
	put_str(out, sms_cut(a, text), WAMSG_SMS_TEXT_MAX, NULL);
	buf_puts(out, "}]}");
	return 0;
}
