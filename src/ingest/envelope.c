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
 *   - ERR_PROTO only for what makes the whole body meaningless: not JSON,
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
 *   - Every string is copied into the caller's arena: the jansson tree is
 *     freed before envelope_parse returns.
 *
 * Body per message type
 *   text         text.body
 *   interactive  interactive.button_reply.id or interactive.list_reply.id
 *   button       button.payload (template quick reply), else button.text
 *   image, video, document, audio, sticker: caption, if any
 *   order        "order <qty> <product_retailer_id>, <qty> <id>, ..."
 *   other        "" (type kept: the worker answers politely)
 *
 * Thread safety: none needed; the arena belongs to the caller's thread.
 */
#include "ingest/envelope.h"

#include <inttypes.h>
#include <string.h>

#include <jansson.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/log.h"

#define ENV_MAX_ENTRIES     1000
#define ENV_MAX_BODY        4096 /* text body and captions, bytes */
#define ENV_MAX_ID          256  /* wamid, wa_id, BSUID, phone_number_id */
#define ENV_MAX_NAME        256  /* profile name, bytes */
#define ENV_MAX_WORD        64   /* type, status */
#define ENV_MAX_TITLE       512  /* error title */
#define ENV_MAX_CALLBACK    512  /* biz_opaque_callback_data (Meta allows 512) */
#define ENV_MAX_ORDER_ITEMS 50

/* The string member key of obj (pointer and length, up to an embedded
 * NUL), or NULL when missing or not a string. */
static const char *jstr(const json_t *obj, const char *key, size_t *len)
{
	const json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	if (!json_is_string(v))
		return NULL;
	const char *s = json_string_value(v);
	*len = strnlen(s, json_string_length(v));
	return s;
}

/* n cut down to at most cap bytes without splitting a UTF-8 sequence
 * (jansson has already checked the text is valid UTF-8). */
static size_t utf8_cut(const char *s, size_t n, size_t cap)
{
	if (n <= cap)
		return n;
	size_t cut = cap;
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	return cut;
}

/* Free text: a copy of obj.key cut to cap bytes; "" when missing. */
static const char *text_copy(const json_t *obj, const char *key, size_t cap, struct arena *a)
{
	size_t n;
	const char *s = jstr(obj, key, &n);
	if (!s)
		return "";
	return arena_strndup(a, s, utf8_cut(s, n, cap));
}

/* An identifier: a copy of obj.key, or NULL when missing, empty or longer
 * than ENV_MAX_ID. */
static const char *id_copy(const json_t *obj, const char *key, struct arena *a)
{
	size_t n;
	const char *s = jstr(obj, key, &n);
	if (!s || n == 0 || n > ENV_MAX_ID)
		return NULL;
	return arena_strndup(a, s, n);
}

/* Epoch seconds as a decimal string (or a JSON integer) → epoch ms; fallback
 * when missing or implausible. */
static int64_t timestamp_ms(const json_t *obj, int64_t fallback)
{
	const json_t *v = json_object_get(obj, "timestamp");
	int64_t secs = -1;
	if (json_is_integer(v)) {
		secs = (int64_t)json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *s = json_string_value(v);
		size_t n = strlen(s);
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
	}
	if (secs < 0 || secs > 100000000000LL) /* beyond year 5000: not a time */
		return fallback;
	return secs * 1000;
}

/* "order 3 HAMBURGER, 2 FRENCH_FRIES" from order.product_items. */
static const char *order_text(const json_t *order, struct arena *a)
{
	const json_t *items = json_object_get(order, "product_items");
	struct buf b;
	size_t i;
	const json_t *it;
	int n = 0;

	if (!json_is_array(items))
		return "";
	buf_init(&b);
	buf_puts(&b, "order");
	json_array_foreach(items, i, it)
	{
		size_t idlen;
		const char *id = jstr(it, "product_retailer_id", &idlen);
		const json_t *q = json_object_get(it, "quantity");
		json_int_t qty = json_is_integer(q) ? json_integer_value(q) : 1;
		if (!id || idlen == 0 || idlen > ENV_MAX_ID || qty <= 0 || qty > 1000000)
			continue;
		if (n == ENV_MAX_ORDER_ITEMS || b.len + idlen + 16 > ENV_MAX_BODY)
			break;
		buf_printf(&b, "%s %" JSON_INTEGER_FORMAT " %.*s", n ? "," : "", qty, (int)idlen,
		           id);
		n++;
	}
	const char *out = n ? arena_strndup(a, b.data, b.len) : "";
	buf_release(&b);
	return out;
}

static const char *message_body(const json_t *m, const char *type, struct arena *a)
{
	if (strcmp(type, "text") == 0)
		return text_copy(json_object_get(m, "text"), "body", ENV_MAX_BODY, a);
	if (strcmp(type, "interactive") == 0) {
		const json_t *in = json_object_get(m, "interactive");
		const json_t *reply = json_object_get(in, "button_reply");
		if (!json_is_object(reply))
			reply = json_object_get(in, "list_reply");
		const char *id = id_copy(reply, "id", a);
		return id ? id : "";
	}
	if (strcmp(type, "button") == 0) {
		const json_t *btn = json_object_get(m, "button");
		const char *p = text_copy(btn, "payload", ENV_MAX_ID, a);
		return *p ? p : text_copy(btn, "text", ENV_MAX_ID, a);
	}
	if (strcmp(type, "image") == 0 || strcmp(type, "video") == 0 ||
	    strcmp(type, "document") == 0 || strcmp(type, "audio") == 0 ||
	    strcmp(type, "sticker") == 0)
		return text_copy(json_object_get(m, type), "caption", ENV_MAX_BODY, a);
	if (strcmp(type, "order") == 0)
		return order_text(json_object_get(m, "order"), a);
	return "";
}

/* The contact a message comes from: wa_id or user_id equal to from. */
static const json_t *contact_for(const json_t *contacts, const char *from)
{
	size_t i;
	const json_t *c;
	json_array_foreach(contacts, i, c)
	{
		size_t n;
		const char *w = jstr(c, "wa_id", &n);
		if (w && strlen(from) == n && memcmp(w, from, n) == 0)
			return c;
		w = jstr(c, "user_id", &n);
		if (w && strlen(from) == n && memcmp(w, from, n) == 0)
			return c;
	}
	return NULL;
}

/* messages[i] → *e; 0, or ERR_INVAL when it cannot be stored (skipped). */
static int parse_message(const json_t *m, const json_t *contacts, int64_t received_at,
                         struct arena *a, struct inbox_entry *e)
{
	const char *from;

	memset(e, 0, sizeof(*e));
	e->kind = INBOX_MESSAGE;
	e->ext_id = id_copy(m, "id", a);
	if (!e->ext_id)
		return ERR_INVAL;
	from = id_copy(m, "from", a);
	if (!from)
		from = id_copy(m, "from_user_id", a); /* BSUID user without a number */
	if (!from && json_array_size(contacts) == 1)
		from = id_copy(json_array_get(contacts, 0), "user_id", a);
	if (!from)
		return ERR_INVAL;
	e->from = from;
	const json_t *c = contact_for(contacts, from);
	if (!c && json_array_size(contacts) == 1)
		c = json_array_get(contacts, 0); /* one sender: its contact */
	e->name = text_copy(json_object_get(c, "profile"), "name", ENV_MAX_NAME, a);
	e->type = text_copy(m, "type", ENV_MAX_WORD, a);
	e->body = message_body(m, e->type, a);
	const char *ctx = id_copy(json_object_get(m, "context"), "id", a);
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
static int parse_status(const json_t *s, int64_t received_at, struct arena *a,
                        struct inbox_entry *e)
{
	memset(e, 0, sizeof(*e));
	e->kind = INBOX_STATUS;
	e->ext_id = id_copy(s, "id", a);
	e->status = text_copy(s, "status", ENV_MAX_WORD, a);
	if (!e->ext_id || !*e->status)
		return ERR_INVAL;
	const char *to = id_copy(s, "recipient_id", a);
	if (!to)
		to = id_copy(s, "recipient_user_id", a);
	e->from = to ? to : "";
	e->name = "";
	e->type = "";
	e->body = "";
	e->context_id = "";
	e->error_title = "";
	/* our own id, echoed from the send (send/wamsg.h) */
	e->callback_data = text_copy(s, "biz_opaque_callback_data", ENV_MAX_CALLBACK, a);
	const json_t *errors = json_object_get(s, "errors");
	const json_t *e0 = json_array_get(errors, 0); /* NULL unless a non-empty array */
	if (json_is_object(e0)) {
		const json_t *code = json_object_get(e0, "code");
		if (json_is_integer(code) && json_integer_value(code) >= 0 &&
		    json_integer_value(code) <= 0x7fffffff)
			e->error_code = (int)json_integer_value(code);
		e->error_title = text_copy(e0, "title", ENV_MAX_TITLE, a);
	}
	e->sent_at = timestamp_ms(s, received_at);
	e->received_at = received_at;
	e->state = INBOX_PENDING;
	return 0;
}

/* The value of a change we take ("messages" from "whatsapp"), else NULL. */
static const json_t *change_value(const json_t *ch)
{
	size_t n;
	const char *field = jstr(ch, "field", &n);
	if (!field || strcmp(field, "messages") != 0)
		return NULL;
	const json_t *v = json_object_get(ch, "value");
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
	json_error_t jerr;
	json_t *root = NULL;
	const json_t *entries, *entry, *ch, *item;
	size_t i, j, k;
	int nchanges = 0, total = 0, skipped = 0, ci = 0;
	int rc = ERR_PROTO;

	memset(out, 0, sizeof(*out));
	if (!body)
		return ERR_PROTO;
	/* JSON_ALLOW_NUL: a "\u0000" inside some text must not make Meta
	 * retry the whole payload for days; strings are cut at the NUL. */
	root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
	if (!json_is_object(root))
		goto fail;
	size_t olen;
	const char *object = jstr(root, "object", &olen);
	if (!object || strcmp(object, "whatsapp_business_account") != 0)
		goto fail;
	entries = json_object_get(root, "entry");
	if (!json_is_array(entries))
		goto fail;

	/* pass 1: count changes and entries, so the cap is checked before
	 * anything is copied */
	json_array_foreach(entries, i, entry)
	{
		json_array_foreach(json_object_get(entry, "changes"), j, ch)
		{
			const json_t *v = change_value(ch);
			if (!v)
				continue;
			nchanges++;
			total += (int)json_array_size(json_object_get(v, "messages"));
			total += (int)json_array_size(json_object_get(v, "statuses"));
			if (total > ENV_MAX_ENTRIES) {
				rc = ERR_TOOBIG;
				goto fail;
			}
		}
	}

	out->changes = arena_calloc(a, sizeof(*out->changes) * (size_t)(nchanges ? nchanges : 1));
	json_array_foreach(entries, i, entry)
	{
		json_array_foreach(json_object_get(entry, "changes"), j, ch)
		{
			const json_t *v = change_value(ch);
			if (!v)
				continue;
			struct env_change *c = &out->changes[ci++];
			const json_t *msgs = json_object_get(v, "messages");
			const json_t *sts = json_object_get(v, "statuses");
			const json_t *contacts = json_object_get(v, "contacts");
			size_t cap = json_array_size(msgs) + json_array_size(sts);
			const char *pnid =
			        id_copy(json_object_get(v, "metadata"), "phone_number_id", a);

			/* "": no tenant has it; ingest counts it as unknown */
			c->phone_number_id = pnid ? pnid : "";
			c->entries = arena_calloc(a, sizeof(*c->entries) * (cap ? cap : 1));
			json_array_foreach(msgs, k, item)
			{
				if (parse_message(item, contacts, received_at, a,
				                  &c->entries[c->nentries]) == 0)
					c->nentries++;
				else
					skipped++;
			}
			json_array_foreach(sts, k, item)
			{
				if (parse_status(item, received_at, a, &c->entries[c->nentries]) ==
				    0)
					c->nentries++;
				else
					skipped++;
			}
			out->nerrors += (int)json_array_size(json_object_get(v, "errors"));
		}
	}
	out->nchanges = nchanges;
	out->nskipped = skipped;
	if (skipped)
		log_warn("webhook.entries_skipped",
		         "skipped %d messages or statuses without an id or a sender", skipped);
	json_decref(root);
	return 0;

fail:
	json_decref(root);
	memset(out, 0, sizeof(*out));
	return rc;
}
