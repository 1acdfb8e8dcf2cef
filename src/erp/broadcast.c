/*
 * broadcast.c - erp_broadcast: one marketing message to every customer of a
 * shop who wrote recently, within WhatsApp's rules. The owner's
 * "broadcast <text>" (owner.c) and the merchant API's POST /v1/campaigns
 * (campaign/campaign.c) both come here, so the two can never disagree.
 *
 * Who gets what
 *
 *   customers of the shop, last message ≥ now - 30 days
 *     │  (store_customers_active: the index on (tenant_id, last_inbound_at),
 *     │   read page by page in that order)
 *     ├─ one of the shop's owners ────────────── left out (they get the counts)
 *     ├─ no phone number (a user id only) ────── skipped_unaddressable
 *     ├─ opted out ("stop") ──────────────────── skipped_opted_out
 *     ├─ wrote < 23 h ago ────────────────────── a text message      (as_text)
 *     ├─ older, and the shop has a template ──── the template        (by_template)
 *     └─ older, no template ──────────────────── skipped_no_template
 *
 *   Free text may only go inside the 24-hour window the customer's last
 *   message opened; after it only an approved template (error 131047
 *   otherwise). A marketing row may wait before it goes (P3 is paused
 *   under load, held while the provider's breaker is open), so text goes
 *   only to customers with an hour of the window left (BROADCAST_MARGIN_MS);
 *   the rest get the template, which is allowed at any time. The recorded
 *   last_inbound_at is at most STORE_INBOUND_SLACK_MS early, which only
 *   shortens the window counted from it.
 *
 * Every row is PRIO_P3, PENDING (claimed = 0: a campaign never takes the
 * sender's direct hand-over, which is for replies), with no context (it
 * answers nothing). Bodies are built as send/wamsg.c builds replies: "to"
 * with a leading '+', JSON strings escaped, text already valid UTF-8.
 *
 * Memory: each page of customers and its bodies live in a scratch arena
 * reset per page, so a campaign to 50,000 customers holds one page at a
 * time. Runs inside the caller's transaction; thread-safe as the store
 * connection it is given.
 */
#include <inttypes.h>
#include <string.h>

#include "core/buf.h"
#include "core/err.h"
#include "erp/erp_internal.h"
#include "send/wamsg.h"

#define BROADCAST_DAY_MS    (24LL * 3600 * 1000)
#define BROADCAST_WINDOW_MS BROADCAST_DAY_MS
/* Window time a text must have left when queued (see above). */
#define BROADCAST_MARGIN_MS (3600LL * 1000)
/* Customers read per page. */
#define BROADCAST_PAGE 500

int erp__addressable(const char *wa_id)
{
	if (!wa_id || !*wa_id)
		return 0;
	const char *p = wa_id[0] == '+' ? wa_id + 1 : wa_id;
	if (!*p)
		return 0;
	for (; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

char *erp__template_param(struct arena *a, const char *text)
{
	char *s = erp__clean(a, text, ERP_BROADCAST_TEXT_MAX); /* one line already */
	size_t o = 0;
	int space = 1; /* drops leading spaces */
	for (size_t i = 0; s[i]; i++) {
		if (s[i] == ' ') {
			if (!space)
				s[o++] = ' ';
			space = 1;
			continue;
		}
		space = 0;
		s[o++] = s[i];
	}
	while (o > 0 && s[o - 1] == ' ')
		o--;
	s[o] = '\0';
	return s;
}

static int is_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* The text as it goes: cleaned (control characters are spaces by then),
 * trimmed; *clipped when it was cut. */
static char *broadcast_text(struct arena *a, const char *text, int *clipped)
{
	const char *s = text ? text : "";
	while (is_space(*s))
		s++;
	size_t len = strlen(s);
	while (len && is_space(s[len - 1]))
		len--;
	*clipped = len > ERP_BROADCAST_TEXT_MAX;
	char *out = erp__clean_text(a, arena_strndup(a, s, len), ERP_BROADCAST_TEXT_MAX);
	char *p = out;
	while (is_space(*p))
		p++;
	len = strlen(p);
	while (len && is_space(p[len - 1]))
		len--;
	p[len] = '\0';
	return p;
}

/* The row for one customer in *o (1), or 0 with the reason counted. */
static int row_for(const struct tenant *t, const struct customer_contact *cc,
                   const struct tenant_template *tpl, const char *text, const char *param,
                   int64_t text_since, struct arena *page, struct erp_broadcast *out,
                   struct outbox_new *o)
{
	const char *body;
	if (erp__is_owner(t->owner_numbers, cc->wa_id))
		return 0;
	if (!erp__addressable(cc->wa_id)) {
		out->skipped_unaddressable++;
		return 0;
	}
	if (cc->opted_out) {
		out->skipped_opted_out++;
		return 0;
	}
	if (cc->last_inbound_at >= text_since) {
		body = wamsg_text(page, cc->wa_id, NULL, text);
		out->as_text++;
	} else if (tpl->name[0]) {
		body = wamsg_template(page, cc->wa_id, tpl->name, tpl->lang, param);
		out->by_template++;
	} else {
		out->skipped_no_template++;
		return 0;
	}
	*o = (struct outbox_new){
	        .tenant_id = t->id,
	        .priority = PRIO_P3,
	        .phone_number_id = t->phone_number_id,
	        .to = cc->wa_id,
	        .reply_to = "",
	        .body = body,
	        .inbound_received_at = 0,
	        .claimed = 0,
	};
	return 1;
}

int erp_broadcast(struct store_conn *c, const struct tenant *t, const char *actor, const char *text,
                  int64_t now, struct arena *a, struct erp_broadcast *out)
{
	struct tenant_template tpl;
	struct arena page;
	int rc;

	if (!out)
		return ERR_INVAL;
	memset(out, 0, sizeof(*out));
	out->template_name = "";
	if (!c || !t || !a)
		return ERR_INVAL;
	const char *msg = broadcast_text(a, text, &out->clipped);
	if (!*msg)
		return ERR_INVAL;
	if (erp__marketing_refused()) {
		out->paused = 1;
		return 0;
	}
	const char *param = erp__template_param(a, msg);
	rc = store_tenant_template(c, t->id, a, &tpl);
	if (rc < 0)
		return rc;
	out->template_name = tpl.name;

	int64_t since = now - ERP_BROADCAST_DAYS * BROADCAST_DAY_MS;
	int64_t text_since = now - (BROADCAST_WINDOW_MS - BROADCAST_MARGIN_MS);
	struct customer_contact last = {0, NULL, 0, 0};
	struct outbox_new o[BROADCAST_PAGE];
	int64_t ids[BROADCAST_PAGE];
	int n = 0, have_last = 0;
	arena_init(&page, 64 * 1024);
	do {
		struct customer_contact *rows;
		arena_reset(&page);
		rc = store_customers_active(c, t->id, since, have_last ? &last : NULL,
		                            BROADCAST_PAGE, &page, &rows, &n);
		/* a page's rows in one call (one statement on PostgreSQL) */
		int k = 0;
		for (int i = 0; i < n; i++)
			k += row_for(t, &rows[i], &tpl, msg, param, text_since, &page, out, &o[k]);
		if (rc == 0 && k > 0)
			rc = store_outbox_add_many(c, o, k, ids);
		if (rc == 0)
			out->queued += k;
		if (rc == 0 && n > 0) {
			last = rows[n - 1];
			last.wa_id = NULL; /* in page, reset next round; only the key is needed */
			have_last = 1;
		}
	} while (rc == 0 && n == BROADCAST_PAGE);
	arena_release(&page);
	if (rc < 0)
		return rc;

	struct buf d;
	buf_init(&d);
	buf_printf(&d,
	           "queued %" PRId64 " (text %" PRId64 ", template %" PRId64
	           "), skipped: no template %" PRId64 ", opted out %" PRId64
	           ", no phone number %" PRId64 "; %zu bytes: ",
	           out->queued, out->as_text, out->by_template, out->skipped_no_template,
	           out->skipped_opted_out, out->skipped_unaddressable, strlen(msg));
	buf_puts(&d, erp__clean(a, msg, 200));
	rc = store_audit(c, t->id, actor ? actor : "", "broadcast", erp__finish(a, &d, 1024));
	return rc;
}
