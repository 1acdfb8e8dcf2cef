/*
 * aggregate.c - which claimed replies go out together, and the body that
 * carries them (the seed's enable_message_aggregation, spike level 2).
 *
 * A customer who sent three messages while munim was under a spike gets
 * one reply message holding the three answers, and the provider sees one
 * send instead of three. The sender claims rows as usual; while
 * app->aggregate is set (by the controller: spike level 2 and above, or 1
 * and above with a festival's aggregation armed) it asks aggregate_plan which of the
 * claimed rows merge, folds each group into its keeper in one store
 * transaction (store_outbox_merge: the keeper's body becomes the merged
 * one, the others go SENDING -> MERGED with merged_into = the keeper, their
 * claim's attempt given back) and sends the keepers alone:
 *
 *   claimed:  #11 P2 to A "2 kg rice: Rs 120"       keeper (oldest)
 *             #14 P2 to A "Order #7 confirmed"   -> MERGED into #11
 *             #15 P2 to B "Menu ..."                alone (other recipient)
 *             #16 P0 to A "Payment received"        alone (P0 never merges)
 *   sent:     #11 "2 kg rice: Rs 120\n\nOrder #7 confirmed", quoting #11's
 *             inbound message; #15; #16
 *
 * Rules (each tested in tests/unit/test_aggregate.c)
 *   - Same tenant, business number, recipient, pin and priority; P1..P3.
 *   - Only bodies that are exactly what wamsg_text writes (messaging
 *     product, recipient type, to, an optional context, type "text", text
 *     {preview_url false, body}) and nothing else: a member this file does
 *     not know, an interactive message's buttons or a template would be
 *     lost in the rewrite, so such a row goes alone.
 *   - Never a row the provider may already hold (a provider message id).
 *   - Creation order (created_at, then id) inside the message; the oldest
 *     row is the keeper and keeps its context (the message it quotes).
 *   - The joined text never passes the Cloud API's 4096 characters (nor,
 *     for a P1 that may go by SMS, what three SMS parts carry): the row
 *     that would overflow is never cut; it starts the next group.
 *
 * Threads: aggregate_plan is pure (reads the rows, writes only into the
 * caller's arena); aggregate_claimed writes through the caller's store
 * connection, on the caller's thread (the sender's recorder).
 */
#include "send/aggregate.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "core/log.h"
#include "send/wamsg.h"

/* wamsg cuts a recipient or a quoted id past 256 characters: a longer one
 * could not be written back whole, so its row goes alone. */
#define AGG_ID_MAX 256
/* Characters of AGGREGATE_SEPARATOR. */
#define AGG_SEPARATOR_CHARS 2

/* A row that may merge, with what its body says. */
struct cand {
	const struct outbox_row *row;
	int idx;             /* in the caller's rows */
	const char *to;      /* the body's recipient, as written */
	const char *context; /* the quoted message id, or NULL */
	const char *text;
	size_t bytes; /* of text */
	size_t chars; /* of text, in characters */
	int ascii;    /* text is all ASCII */
};

/* The members of a text message body, one bit each. */
enum key {
	K_PRODUCT,
	K_RECIPIENT_TYPE,
	K_TO,
	K_CONTEXT,
	K_TYPE,
	K_TEXT,
	K_COUNT,
};

static const char *const key_names[K_COUNT] = {
        "messaging_product", "recipient_type", "to", "context", "type", "text",
};

static int key_of(const struct jsonr_member *m)
{
	for (int k = 0; k < K_COUNT; k++)
		if (m->keylen == strlen(key_names[k]) &&
		    memcmp(m->key, key_names[k], m->keylen) == 0)
			return k;
	return -1;
}

/* plain_str: v's text when it is a non-empty string without NUL bytes and
 * of at most max bytes (0: no limit), else NULL. */
static const char *plain_str(const struct jsonr_val *v, size_t max, size_t *len)
{
	size_t n;
	const char *s = jsonr_str(v, &n);
	if (!s || n == 0 || strlen(s) != n || (max && n > max))
		return NULL;
	if (len)
		*len = n;
	return s;
}

static int str_is(const struct jsonr_val *v, const char *want)
{
	const char *s = plain_str(v, 0, NULL);
	return s && strcmp(s, want) == 0;
}

/* context_of: the message id of {"message_id": id} and nothing else, or NULL. */
static const char *context_of(const struct jsonr_val *v)
{
	if (!jsonr_is_object(v) || v->len != 1 || v->u.members[0].keylen != 10 ||
	    strcmp(v->u.members[0].key, "message_id") != 0)
		return NULL;
	return plain_str(&v->u.members[0].val, AGG_ID_MAX, NULL);
}

/* text_of: the body of {"preview_url": false, "body": text} (preview_url
 * optional, nothing else), or NULL. */
static const char *text_of(const struct jsonr_val *v, size_t *len)
{
	const char *body = NULL;
	int seen_body = 0, seen_preview = 0;
	if (!jsonr_is_object(v))
		return NULL;
	for (uint32_t i = 0; i < v->len; i++) {
		const struct jsonr_member *m = &v->u.members[i];
		if (m->keylen == 4 && strcmp(m->key, "body") == 0 && !seen_body++)
			body = plain_str(&m->val, 0, len);
		else if (m->keylen == 11 && strcmp(m->key, "preview_url") == 0 && !seen_preview++ &&
		         m->val.type == JSONR_FALSE)
			continue;
		else
			return NULL; /* another member, one said twice, or a preview */
	}
	return body;
}

/* The recipient without its leading '+'. */
static const char *bare(const char *to)
{
	return to[0] == '+' ? to + 1 : to;
}

/* count_chars: characters of UTF-8 text s (valid: jsonr checked it). */
static size_t count_chars(const char *s, size_t n, int *ascii)
{
	size_t chars = 0;
	int only_ascii = 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		only_ascii &= c < 0x80;
		chars += (c & 0xc0) != 0x80;
	}
	*ascii = only_ascii;
	return chars;
}

/* read_cand: may row merge? 1 with *c filled (strings in a), or 0. */
static int read_cand(const struct outbox_row *row, struct arena *a, struct cand *c)
{
	const struct jsonr_val *root = NULL;
	const struct jsonr_val *vals[K_COUNT] = {0};
	if (row->priority <= PRIO_P0 || row->priority >= PRIO_COUNT ||
	    row->state != OUTBOX_SENDING || (row->provider_msg_id && *row->provider_msg_id) ||
	    !row->body || !row->to || !*row->to)
		return 0;
	if (jsonr_parse(row->body, strlen(row->body), a, &root) != 0 || !jsonr_is_object(root))
		return 0;
	for (uint32_t i = 0; i < root->len; i++) {
		int k = key_of(&root->u.members[i]);
		if (k < 0 || vals[k]) /* a member we would drop, or said twice */
			return 0;
		vals[k] = &root->u.members[i].val;
	}
	if (!str_is(vals[K_PRODUCT], "whatsapp") || !str_is(vals[K_TYPE], "text") ||
	    (vals[K_RECIPIENT_TYPE] && !str_is(vals[K_RECIPIENT_TYPE], "individual")))
		return 0;
	const char *to = plain_str(vals[K_TO], AGG_ID_MAX, NULL);
	if (!to || strcmp(bare(to), bare(row->to)) != 0)
		return 0;
	const char *context = NULL;
	if (vals[K_CONTEXT] && !(context = context_of(vals[K_CONTEXT])))
		return 0;
	size_t bytes = 0;
	const char *text = text_of(vals[K_TEXT], &bytes);
	if (!text)
		return 0;
	int ascii;
	size_t chars = count_chars(text, bytes, &ascii);
	if (chars > AGGREGATE_TEXT_MAX)
		return 0;
	*c = (struct cand){.row = row,
	                   .to = to,
	                   .context = context,
	                   .text = text,
	                   .bytes = bytes,
	                   .chars = chars,
	                   .ascii = ascii};
	return 1;
}

static int cmp_str(const char *a, const char *b)
{
	return strcmp(a ? a : "", b ? b : "");
}

/* Who the row goes to, through what: rows merge only with the same. */
static int cmp_key(const struct outbox_row *a, const struct outbox_row *b)
{
	if (a->tenant_id != b->tenant_id)
		return (a->tenant_id > b->tenant_id) - (a->tenant_id < b->tenant_id);
	if (a->priority != b->priority)
		return (int)a->priority - (int)b->priority;
	int d = cmp_str(a->phone_number_id, b->phone_number_id);
	if (d == 0)
		d = cmp_str(a->to, b->to);
	if (d == 0)
		d = cmp_str(a->provider, b->provider);
	return d;
}

/* The key, then creation order. */
static int cmp_cand(const void *pa, const void *pb)
{
	const struct outbox_row *a = ((const struct cand *)pa)->row;
	const struct outbox_row *b = ((const struct cand *)pb)->row;
	int d = cmp_key(a, b);
	if (d != 0)
		return d;
	if (a->created_at != b->created_at)
		return (a->created_at > b->created_at) - (a->created_at < b->created_at);
	return (a->id > b->id) - (a->id < b->id);
}

/* fits: may a message of prio hold chars characters (ascii: all ASCII)? */
static int fits(enum outbox_prio prio, size_t chars, int ascii, const struct aggregate_opts *o)
{
	if (chars > AGGREGATE_TEXT_MAX)
		return 0;
	if (o && o->sms_fallback && prio <= PRIO_P1)
		return chars <= (ascii ? WAMSG_SMS_TEXT_MAX : WAMSG_SMS_UNICODE_MAX);
	return 1;
}

/* group_of: c[0..n) (n >= 2) as one group: the keeper c[0], its new body. */
static void group_of(const struct cand *c, int n, struct arena *a, struct buf *text,
                     struct aggregate_group *g)
{
	int *merged = arena_alloc(a, (size_t)(n - 1) * sizeof(*merged));
	buf_reset(text);
	for (int i = 0; i < n; i++) {
		if (i > 0) {
			merged[i - 1] = c[i].idx;
			buf_puts(text, AGGREGATE_SEPARATOR);
		}
		buf_append(text, c[i].text, c[i].bytes);
	}
	g->keeper = c[0].idx;
	g->merged = merged;
	g->nmerged = n - 1;
	g->body = wamsg_text(a, c[0].to, c[0].context, text->data);
}

int aggregate_plan(const struct outbox_row *rows, int n, const struct aggregate_opts *opts,
                   struct arena *a, struct aggregate_group **out, int *ngroups)
{
	if (!out || !ngroups || !a || n < 0 || (n > 0 && !rows))
		return ERR_INVAL;
	*out = NULL;
	*ngroups = 0;
	if (n < 2)
		return 0;
	struct cand *c = arena_alloc(a, (size_t)n * sizeof(*c));
	int nc = 0;
	for (int i = 0; i < n; i++) {
		if (read_cand(&rows[i], a, &c[nc])) {
			c[nc].idx = i;
			nc++;
		}
	}
	if (nc < 2)
		return 0;
	qsort(c, (size_t)nc, sizeof(*c), cmp_cand);
	struct aggregate_group *groups = arena_alloc(a, (size_t)(nc / 2) * sizeof(*groups));
	int ng = 0;
	struct buf text;
	buf_init(&text);
	for (int i = 0; i < nc;) {
		int end = i + 1; /* [i, end): one recipient, one route, one priority */
		while (end < nc && cmp_key(c[i].row, c[end].row) == 0)
			end++;
		enum outbox_prio prio = c[i].row->priority;
		for (int k = i; k < end;) {
			size_t chars = c[k].chars;
			int ascii = c[k].ascii;
			int m = k + 1;
			while (m < end) {
				size_t more = chars + AGG_SEPARATOR_CHARS + c[m].chars;
				if (!fits(prio, more, ascii && c[m].ascii, opts))
					break; /* c[m] is not cut: it starts the next group */
				chars = more;
				ascii = ascii && c[m].ascii;
				m++;
			}
			if (m - k >= 2)
				group_of(&c[k], m - k, a, &text, &groups[ng++]);
			k = m;
		}
		i = end;
	}
	buf_release(&text);
	*out = ng ? groups : NULL;
	*ngroups = ng;
	return 0;
}

int aggregate_claimed(struct store_conn *c, struct outbox_row *rows, int n,
                      const struct aggregate_opts *opts, int64_t now, struct arena *a)
{
	struct aggregate_group *g = NULL;
	int ng = 0, merged = 0, refused = 0;
	if (aggregate_plan(rows, n, opts, a, &g, &ng) != 0)
		return 0;
	for (int i = 0; i < ng; i++) {
		struct outbox_row *keeper = &rows[g[i].keeper];
		int64_t *ids = arena_alloc(a, (size_t)g[i].nmerged * sizeof(*ids));
		for (int j = 0; j < g[i].nmerged; j++)
			ids[j] = rows[g[i].merged[j]].id;
		int rc = store_outbox_merge(c, keeper->id, g[i].body, ids, g[i].nmerged, now);
		if (rc != 0) {
			/* nothing changed: the rows go one by one */
			if (refused++ == 0)
				log_warn(
				        "send.merge_failed",
				        "could not merge %d replies to %s into reply %lld, sending "
				        "them one by one: %s",
				        g[i].nmerged, keeper->to, (long long)keeper->id,
				        store_errmsg(c));
			continue;
		}
		keeper->body = g[i].body;
		for (int j = 0; j < g[i].nmerged; j++) {
			rows[g[i].merged[j]].state = OUTBOX_MERGED;
			rows[g[i].merged[j]].merged_into = keeper->id;
		}
		merged += g[i].nmerged;
		log_debug("send.merged", "%d replies to %s merged into reply %lld", g[i].nmerged,
		          keeper->to, (long long)keeper->id);
	}
	return merged;
}
