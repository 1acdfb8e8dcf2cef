/*
 * envelope.h - the WhatsApp Cloud API webhook payload, parsed into inbox
 * entries.
 *
 * Every entry[].changes[] with field "messages" and messaging_product
 * "whatsapp" becomes one env_change: its metadata.phone_number_id and the
 * inbox entries for each of its messages[] and statuses[]. Unknown message
 * types are kept (type set, body empty): the worker answers them politely.
 * Image, video, document, audio and sticker messages also carry the Cloud
 * API's media id and mime type (media_id, media_mime; cleaned and capped,
 * never a reason to skip the message).
 * Top-level value.errors[] are counted, not stored.
 */
#ifndef MUNIM_ENVELOPE_H
#define MUNIM_ENVELOPE_H

#include <stddef.h>

#include "core/arena.h"
#include "store/store.h"

struct env_change {
	const char *phone_number_id;
	int nentries;
	struct inbox_entry *entries; /* tenant_id 0: the caller resolves it */
};

struct envelope {
	int nchanges;
	struct env_change *changes;
	int nerrors;  /* value.errors[] seen */
	int nskipped; /* messages/statuses without an id or a sender (not stored) */
};

/*
 * envelope_parse parses body (len bytes, need not be NUL-terminated) into
 * *out, all memory from a; received_at stamps every entry. ERR_PROTO when
 * the body is not JSON or not a WhatsApp Business Account payload (object
 * must be "whatsapp_business_account" and entry an array).
 */
int envelope_parse(const char *body, size_t len, int64_t received_at, struct arena *a,
                   struct envelope *out);

/*
 * envelope_utf8_cut: n (the length of s, valid UTF-8) cut down to at most
 * cap bytes without splitting a UTF-8 sequence - how a text body or a
 * caption is cut to its cap, and how the AI thread cuts a message's text
 * to what it sends. Pure.
 */
size_t envelope_utf8_cut(const char *s, size_t n, size_t cap);

#endif
