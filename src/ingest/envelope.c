/*
 * envelope.c - a WhatsApp Cloud API webhook body → inbox entries.
 *
 * The shape (reference/whatsapp-payments-gst.md §1):
 *
 *   {"object":"whatsapp_business_account",
 *    "entry":[{"id":WABA, "changes":[{"field":"messages",
 *       "value":{"messaging_product":"whatsapp",
 *                "metadata":{"phone_number_id":...},
 *                "contacts":[{"wa_id","user_id","profile":{"name"}}],
 *                "messages":[...], "statuses":[...], "errors":[...]}}]}]}
 *
 * Rules
 *   - ERR_PROTO only for what makes the whole body meaningless: not JSON
 *     (or nested deeper than JSONR_MAX_DEPTH, 64: no webhook comes near),
 *     not an object, object != "whatsapp_business_account", entry not an
 *     array. Anything odd deeper down (a change of another field, an entry
 *     that is not an object, an unknown message type) is skipped or kept
 *     with an empty body, never a reason to refuse the rest: a refused
 *     webhook is retried by Meta for days.
 *   - ERR_TOOBIG when the payload holds more than ENV_MAX_ENTRIES messages
 *     and statuses together. Meta sends at most 1000 per POST; more is not
 *     a Cloud API payload, and dropping the excess silently after a 200
 *     would lose data, so the whole body is refused instead.
 *   - A message without an id, or without any sender identity (no from,
 *     no from_user_id, and no single contact with a user_id: BSUID users
 *     may come without a phone number), cannot be stored meaningfully: it
 *     is skipped, counted, and the count logged once per payload.
 *   - Identifiers longer than ENV_MAX_ID are treated as missing (cutting
 *     them could make two different ids equal and turn a message into a
 *     "duplicate"); free text is cut at a UTF-8 boundary (text body and
 *     captions at ENV_MAX_BODY bytes, names and titles shorter).
 *   - The body is parsed by jsonr (core/jsonr.h: strict RFC 8259, valid
 *     UTF-8, nesting capped at JSONR_MAX_DEPTH) into the caller's arena;
 *     every string of the result lives in that arena too, either the
 *     tree's own unescaped copy or a cut copy, so nothing refers to body
 *     after envelope_parse returns. The tree stays in the arena until the
 *     caller frees it (one request).
 *   - A "\u0000" inside some text must not make Meta retry the whole
 *     payload for days: it is accepted and the text is cut at the NUL.
 *     Likewise an integer beyond int64 somewhere in the body is valid JSON
 *     and does not refuse it (jansson, used before jsonr, did refuse it): a
 *     quantity that large skips its order item, a timestamp that large
 *     falls back to received_at, an error code that large reads as 0.
 *
 * Body per message type
 *   text         text.body
 *   interactive  interactive.button_reply.id or interactive.list_reply.id
 *   button       button.payload (template quick reply), else button.text
 *   image, video, document, audio, sticker: caption, if any
 *   order        "order <qty> <product_retailer_id>, <qty> <id>, ..."
 *   other        "" (type kept: the worker answers politely)
 *
 * Media (image, video, document, audio, sticker) also carry <type>.id, the
 * Cloud API's media id (GET /{media-id} gives the download URL), and
 * <type>.mime_type, into media_id and media_mime ("" for every other
 * message and for statuses). Nothing is refused for them: they are only
 * cleaned, because the id ends up in a URL path and both are printed on
 * the operator's terminal (`munim ocr`). The id keeps its characters from
 * [0-9A-Za-z._-] (Meta's are digits), at most ENV_MAX_MEDIA_ID of them;
 * the mime type keeps printable ASCII ("audio/ogg; codecs=opus"), at most
 * ENV_MAX_MIME bytes. Other bytes (controls, '/', '?', non-ASCII) are
 * dropped.
 *
 * Thread safety: none needed; the arena belongs to the caller's thread.
 */
#include "ingest/envelope.h"

#include <stdint.h>
#include <string.h>

#include "core/err.h"
#include "core/jsonr.h"
#include "core/log.h"

#define ENV_MAX_ENTRIES     1000
#define ENV_MAX_BODY        4096 /* text body and captions, bytes */
#define ENV_MAX_ID          256  /* wamid, wa_id, BSUID, phone_number_id */
#define ENV_MAX_NAME        256  /* profile name, bytes */
#define ENV_MAX_WORD        64   /* type, status */
#define ENV_MAX_TITLE       512  /* error title */
#define ENV_MAX_CALLBACK    512  /* biz_opaque_callback_data (Meta allows 512) */
#define ENV_MAX_ORDER_ITEMS 50
#define ENV_MAX_MEDIA_ID    64  /* <type>.id, Meta's are digits */
#define ENV_MAX_MIME        100 /* <type>.mime_type */

/* The string member key of obj (pointer and length, up to an embedded
 * NUL), or NULL when missing or not a string. */
static const char *jstr(const struct jsonr_val *obj, const char *key, size_t *len)
{
	size_t n;
	const char *s = jsonr_str(jsonr_get(obj, key), &n);
	if (!s)
		return NULL;
	*len = strnlen(s, n);
	return s;
}

/* Here jsonr has already checked the text is valid UTF-8. */
size_t envelope_utf8_cut(const char *s, size_t n, size_t cap)
{
	if (n <= cap)
		return n;
	size_t cut = cap;
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	return cut;
}

/* Free text: obj.key cut to cap bytes; "" when missing. The tree's own
 * string (in the caller's arena, NUL-terminated at n) is returned as it is
 * unless it must be cut. */
static const char *text_of(const struct jsonr_val *obj, const char *key, size_t cap,
                           struct arena *a)
{
	size_t n;
	const char *s = jstr(obj, key, &n);
	if (!s)
		return "";
	size_t cut = envelope_utf8_cut(s, n, cap);
	return cut == n ? s : arena_strndup(a, s, cut);
}

/* An identifier: obj.key (the tree's string, in the caller's arena), or
 * NULL when missing, empty or longer than ENV_MAX_ID. */
static const char *id_of(const struct jsonr_val *obj, const char *key)
{
	size_t n;
	const char *s = jstr(obj, key, &n);
	if (!s || n == 0 || n > ENV_MAX_ID)
		return NULL;
	return s;
}

/* Epoch seconds as a decimal string (or a JSON integer) → epoch ms; fallback
 * when missing or implausible. */
static int64_t timestamp_ms(const struct jsonr_val *obj, int64_t fallback)
{
	const struct jsonr_val *v = jsonr_get(obj, "timestamp");
	int64_t secs = -1;
	size_t n;
	const char *s = jsonr_str(v, &n);

	if (s) {
		n = strnlen(s, n); /* up to an embedded NUL, as every string here */
		if (n >= 1 && n <= 12) {
			secs = 0;
			for (size_t i = 0; i < n; i++) {
				if (s[i] < '0' || s[i] > '9') {
					secs = -1;
					break;
				}
				secs = secs * 10 + (s[i] - '0');
			}
		}
	} else if (jsonr_int(v, &secs) != 0) {
		secs = -1; /* not an integer, or beyond int64 */
	}
	if (secs < 0 || secs > 100000000000LL) /* beyond year 5000: not a time */
		return fallback;
	return secs * 1000;
}

static int media_id_char(unsigned char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
	       ch == '.' || ch == '_' || ch == '-';
}

static int mime_char(unsigned char ch)
{
	return ch >= 0x20 && ch <= 0x7e;
}

/* obj.key with only the bytes keep() accepts, at most cap (≤ ENV_MAX_MIME)
 * of them; "" when missing. The tree's own string when nothing is dropped. */
static const char *cleaned_of(const struct jsonr_val *obj, const char *key, size_t cap,
                              int (*keep)(unsigned char), struct arena *a)
{
	char out[ENV_MAX_MIME];
	size_t n, len = 0;
	const char *s = jstr(obj, key, &n);
	if (!s)
		return "";
	if (cap > sizeof(out))
		cap = sizeof(out);
	for (size_t i = 0; i < n && len < cap; i++)
		if (keep((unsigned char)s[i]))
			out[len++] = s[i];
	return len == n ? s : arena_strndup(a, out, len);
}

static int is_media_type(const char *type)
{
	return strcmp(type, "image") == 0 || strcmp(type, "video") == 0 ||
	       strcmp(type, "document") == 0 || strcmp(type, "audio") == 0 ||
	       strcmp(type, "sticker") == 0;
}

/* "order 3 HAMBURGER, 2 FRENCH_FRIES" from order.product_items, built on
 * the stack: each item adds at most idlen + 10 bytes and stops at
 * ENV_MAX_BODY (no printf: this runs per order on the webhook path). */
static const char *order_text(const struct jsonr_val *order, struct arena *a)
{
	const struct jsonr_val *items = jsonr_get(order, "product_items");
	size_t nitems = jsonr_len(items), len = 5;
	char out[ENV_MAX_BODY + 1];
	int n = 0;

	memcpy(out, "order", len);

	for (size_t i = 0; i < nitems; i++) {
		const struct jsonr_val *it = jsonr_at(items, i);
		size_t idlen;
		const char *id = jstr(it, "product_retailer_id", &idlen);
		int64_t qty = 1; /* stays 1 when missing or not an integer */
		if (jsonr_int(jsonr_get(it, "quantity"), &qty) == ERR_TOOBIG)
			continue; /* beyond int64: far past the cap below */
		if (!id || idlen == 0 || idlen > ENV_MAX_ID || qty <= 0 || qty > 1000000)
			continue;
		if (n == ENV_MAX_ORDER_ITEMS || len + idlen + 16 > ENV_MAX_BODY)
			break;
		char digits[8];
		size_t nd = 0;
		do {
			digits[nd++] = (char)('0' + qty % 10);
			qty /= 10;
		} while (qty > 0);
		if (n)
			out[len++] = ',';
		out[len++] = ' ';
		while (nd > 0)
			out[len++] = digits[--nd];
		out[len++] = ' ';
		memcpy(out + len, id, idlen);
		len += idlen;
		n++;
	}
	return n ? arena_strndup(a, out, len) : "";
}

static const char *message_body(const struct jsonr_val *m, const char *type, struct arena *a)
{
	if (strcmp(type, "text") == 0)
		return text_of(jsonr_get(m, "text"), "body", ENV_MAX_BODY, a);
	if (strcmp(type, "interactive") == 0) {
		const struct jsonr_val *in = jsonr_get(m, "interactive");
		const struct jsonr_val *reply = jsonr_get(in, "button_reply");
		if (!jsonr_is_object(reply))
			reply = jsonr_get(in, "list_reply");
		const char *id = id_of(reply, "id");
		return id ? id : "";
	}
	if (strcmp(type, "button") == 0) {
		const struct jsonr_val *btn = jsonr_get(m, "button");
		const char *p = text_of(btn, "payload", ENV_MAX_ID, a);
		return *p ? p : text_of(btn, "text", ENV_MAX_ID, a);
	}
	if (is_media_type(type))
		return text_of(jsonr_get(m, type), "caption", ENV_MAX_BODY, a);
	if (strcmp(type, "order") == 0)
		return order_text(jsonr_get(m, "order"), a);
	return "";
}

/* The contact a message comes from: wa_id or user_id equal to from. */
static const struct jsonr_val *contact_for(const struct jsonr_val *contacts, const char *from)
{
	size_t ncontacts = jsonr_len(contacts), fromlen = strlen(from);
	for (size_t i = 0; i < ncontacts; i++) {
		const struct jsonr_val *c = jsonr_at(contacts, i);
		size_t n;
		const char *w = jstr(c, "wa_id", &n);
		if (w && fromlen == n && memcmp(w, from, n) == 0)
			return c;
		w = jstr(c, "user_id", &n);
		if (w && fromlen == n && memcmp(w, from, n) == 0)
			return c;
	}
	return NULL;
}

/* messages[i] → *e; 0, or ERR_INVAL when it cannot be stored (skipped). */
static int parse_message(const struct jsonr_val *m, const struct jsonr_val *contacts,
                         int64_t received_at, struct arena *a, struct inbox_entry *e)
{
	const char *from;

	memset(e, 0, sizeof(*e));
	e->kind = INBOX_MESSAGE;
	e->ext_id = id_of(m, "id");
	if (!e->ext_id)
		return ERR_INVAL;
	from = id_of(m, "from");
	if (!from)
		from = id_of(m, "from_user_id"); /* BSUID user without a number */
	if (!from && jsonr_len(contacts) == 1)
		from = id_of(jsonr_at(contacts, 0), "user_id");
	if (!from)
		return ERR_INVAL;
	e->from = from;
	const struct jsonr_val *c = contact_for(contacts, from);
	if (!c && jsonr_len(contacts) == 1)
		c = jsonr_at(contacts, 0); /* one sender: its contact */
	e->name = text_of(jsonr_get(c, "profile"), "name", ENV_MAX_NAME, a);
	e->type = text_of(m, "type", ENV_MAX_WORD, a);
	e->body = message_body(m, e->type, a);
	e->media_id = "";
	e->media_mime = "";
	if (is_media_type(e->type)) {
		const struct jsonr_val *media = jsonr_get(m, e->type);
		e->media_id = cleaned_of(media, "id", ENV_MAX_MEDIA_ID, media_id_char, a);
		e->media_mime = cleaned_of(media, "mime_type", ENV_MAX_MIME, mime_char, a);
	}
	const char *ctx = id_of(jsonr_get(m, "context"), "id");
	e->context_id = ctx ? ctx : "";
	e->status = "";
	e->error_title = "";
	e->callback_data = "";
	e->sent_at = timestamp_ms(m, received_at);
	e->received_at = received_at;
	e->state = INBOX_PENDING;
	return 0;
}

/* statuses[i] → *e; 0, or ERR_INVAL when it has no id or status. */
static int parse_status(const struct jsonr_val *s, int64_t received_at, struct arena *a,
                        struct inbox_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = INBOX_STATUS;
	e->ext_id = id_of(s, "id");
	e->status = text_of(s, "status", ENV_MAX_WORD, a);
	if (!e->ext_id || !*e->status)
		return ERR_INVAL;
	const char *to = id_of(s, "recipient_id");
	if (!to)
		to = id_of(s, "recipient_user_id");
	e->from = to ? to : "";
	e->name = "";
	e->type = "";
	e->body = "";
	e->context_id = "";
	e->media_id = "";
	e->media_mime = "";
	e->error_title = "";
	/* our own id, echoed from the send (send/wamsg.h) */
	e->callback_data = text_of(s, "biz_opaque_callback_data", ENV_MAX_CALLBACK, a);
	/* NULL unless a non-empty array */
	const struct jsonr_val *e0 = jsonr_at(jsonr_get(s, "errors"), 0);
	if (jsonr_is_object(e0)) {
		int64_t code;
		if (jsonr_int(jsonr_get(e0, "code"), &code) == 0 && code >= 0 && code <= 0x7fffffff)
			e->error_code = (int)code;
		e->error_title = text_of(e0, "title", ENV_MAX_TITLE, a);
	}
	e->sent_at = timestamp_ms(s, received_at);
	e->received_at = received_at;
	e->state = INBOX_PENDING;
	return 0;
}

/* The value of a change we take ("messages" from "whatsapp"), else NULL. */
static const struct jsonr_val *change_value(const struct jsonr_val *ch)
{
	size_t n;
	const char *field = jstr(ch, "field", &n);
	if (!field || strcmp(field, "messages") != 0)
		return NULL;
	const struct jsonr_val *v = jsonr_get(ch, "value");
	const char *product = jstr(v, "messaging_product", &n);
	if (!product || strcmp(product, "whatsapp") != 0)
		return NULL;
	return v;
}

/*
 * envelope_parse: see envelope.h. ERR_PROTO for a body that is not a
 * WhatsApp Business Account payload, ERR_TOOBIG for more than
 * ENV_MAX_ENTRIES messages and statuses; *out is filled only on success.
 */
int envelope_parse(const char *body, size_t len, int64_t received_at, struct arena *a,
                   struct envelope *out)
{
	const struct jsonr_val *root, *entries;
	size_t nentries;
	int nchanges = 0, total = 0, skipped = 0, ci = 0;
	int rc = ERR_PROTO;

	memset(out, 0, sizeof(*out));
	/* any jsonr failure (not JSON, too deep, too long) is ERR_PROTO */
	if (!body || jsonr_parse(body, len, a, &root) != 0 || !jsonr_is_object(root))
		goto fail;
	size_t olen;
	const char *object = jstr(root, "object", &olen);
	if (!object || strcmp(object, "whatsapp_business_account") != 0)
		goto fail;
	entries = jsonr_get(root, "entry");
	if (!jsonr_is_array(entries))
		goto fail;
	nentries = jsonr_len(entries);

	/* pass 1: count changes and entries, so the cap is checked before
	 * anything is copied */
	for (size_t i = 0; i < nentries; i++) {
		const struct jsonr_val *changes = jsonr_get(jsonr_at(entries, i), "changes");
		for (size_t j = 0; j < jsonr_len(changes); j++) {
			const struct jsonr_val *v = change_value(jsonr_at(changes, j));
			if (!v)
				continue;
			nchanges++;
			total += (int)jsonr_len(jsonr_get(v, "messages"));
			total += (int)jsonr_len(jsonr_get(v, "statuses"));
			if (total > ENV_MAX_ENTRIES) {
				rc = ERR_TOOBIG;
				goto fail;
			}
		}
	}

	out->changes = arena_calloc(a, sizeof(*out->changes) * (size_t)(nchanges ? nchanges : 1));
	for (size_t i = 0; i < nentries; i++) {
		const struct jsonr_val *changes = jsonr_get(jsonr_at(entries, i), "changes");
		for (size_t j = 0; j < jsonr_len(changes); j++) {
			const struct jsonr_val *v = change_value(jsonr_at(changes, j));
			if (!v)
				continue;
			struct env_change *c = &out->changes[ci++];
			const struct jsonr_val *msgs = jsonr_get(v, "messages");
			const struct jsonr_val *sts = jsonr_get(v, "statuses");
			const struct jsonr_val *contacts = jsonr_get(v, "contacts");
			size_t nmsgs = jsonr_len(msgs), nsts = jsonr_len(sts);
			const char *pnid = id_of(jsonr_get(v, "metadata"), "phone_number_id");

			/* "": no tenant has it; ingest counts it as unknown */
			c->phone_number_id = pnid ? pnid : "";
			c->entries = arena_calloc(a, sizeof(*c->entries) *
			                                     (nmsgs + nsts ? nmsgs + nsts : 1));
			for (size_t k = 0; k < nmsgs; k++) {
				if (parse_message(jsonr_at(msgs, k), contacts, received_at, a,
				                  &c->entries[c->nentries]) == 0)
					c->nentries++;
				else
					skipped++;
			}
			for (size_t k = 0; k < nsts; k++) {
				if (parse_status(jsonr_at(sts, k), received_at, a,
				                 &c->entries[c->nentries]) == 0)
					c->nentries++;
				else
					skipped++;
			}
			out->nerrors += (int)jsonr_len(jsonr_get(v, "errors"));
		}
	}
	out->nchanges = nchanges;
	out->nskipped = skipped;
	if (skipped)
		log_warn("webhook.entries_skipped",
		         "skipped %d messages or statuses without an id or a sender", skipped);
	return 0;

fail:
	memset(out, 0, sizeof(*out));
	return rc;
}
