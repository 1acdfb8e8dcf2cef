/*
 * direct.c - the shop's own orders and stock from outside WhatsApp: the
 * companion app's API (src/companion/) calls these instead of sending a
 * message, when WhatsApp is down or the shop simply prefers the app.
 *
 * Design: no second implementation of the books. Each function builds the
 * handler context a WhatsApp message would get and runs the same command
 * (erp__cmd_order, erp__cmd_confirm, erp__cmd_cancel), so matching,
 * quantities, the stock checks, the ledger and the GST invoice series are
 * the ones a customer's message meets. The differences are only where the
 * words come from and where the replies go:
 *
 *   - the lines arrive as JSON (item, qty); each is read by the message
 *     parser as "order <qty> <item>" and must come out as exactly one item,
 *     so a name holding a comma or a second quantity cannot smuggle in a
 *     line the app did not send;
 *   - the customer is named by phone number and found or added without
 *     touching last_inbound_at (they did not write: the 24-hour window is
 *     not theirs to open);
 *   - what the command says to the customer goes into the outbox as
 *     PENDING rows to that customer (erp__queue), quoting nothing; it waits
 *     there like any reply while WhatsApp is down;
 *   - the handler's refusals (x.refusal, with the reply text as the
 *     message) come back to the caller instead of going to the customer.
 *
 * The handler context carries a stand-in for the inbound message: its
 * sender is the actor ("app:<device>"), which is all the order commands
 * read of it (the audit log's actor).
 *
 * Threads: runs on the caller's thread, inside its transaction, with its
 * connection and catalogue cache.
 */
#include <inttypes.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "erp/erp_internal.h"
#include "send/wamsg.h"

/* ---- the context ------------------------------------------------------------------ */

struct direct {
	struct erp_ctx x;
	struct inbox_entry e; /* the stand-in message */
	struct erp_result res;
};

static void direct_init(struct direct *dc, const struct erp_direct *d,
                        struct erp_direct_result *out)
{
	memset(dc, 0, sizeof(*dc));
	memset(out, 0, sizeof(*out));
	dc->e.kind = INBOX_MESSAGE;
	dc->e.tenant_id = d->t->id;
	dc->e.from = d->actor ? d->actor : "app";
	dc->e.name = "";
	dc->e.ext_id = "";
	dc->e.type = "text";
	dc->e.body = "";
	dc->x.c = d->c;
	dc->x.cache = d->cache;
	dc->x.t = d->t;
	dc->x.e = &dc->e;
	dc->x.a = d->a;
	dc->x.out = &dc->res;
	dc->x.now = clock_wall_ms();
}

/* The words of the handler's replies, one per line (for a refusal). */
static const char *reply_words(struct direct *dc)
{
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < dc->res.nreplies; i++)
		buf_printf(&b, "%s%s", i ? "\n" : "", dc->res.replies[i].text);
	return erp__finish(dc->x.a, &b, ERP_TEXT_MAX);
}

static void refuse(struct direct *dc, struct erp_direct_result *out, const char *code,
                   const char *message)
{
	out->refusal = code;
	out->message = message ? message : reply_words(dc);
}

/* The handler's replies go to the customer as new PENDING rows. */
static int queue_replies(struct direct *dc, struct erp_direct_result *out)
{
	const char *to = dc->x.cust.wa_id;
	struct erp_result *res = &dc->res;
	out->message = reply_words(dc);
	if (!erp__addressable(to))
		return 0;
	for (int i = 0; i < res->nreplies; i++) {
		const struct erp_reply *r = &res->replies[i];
		const char *body;
		if (r->kind == ERP_REPLY_BUTTONS && r->nbuttons > 0) {
			struct wamsg_button b[ERP_MAX_BUTTONS];
			for (int j = 0; j < r->nbuttons && j < ERP_MAX_BUTTONS; j++) {
				b[j].id = r->buttons[j].id;
				b[j].title = r->buttons[j].title;
			}
			body = wamsg_buttons(dc->x.a, to, NULL, r->text, b,
			                     r->nbuttons < ERP_MAX_BUTTONS ? r->nbuttons
			                                                   : ERP_MAX_BUTTONS);
		} else {
			body = wamsg_text(dc->x.a, to, NULL, r->text);
		}
		int rc = erp__queue(&dc->x, r->priority, to, body);
		if (rc < 0)
			return rc;
	}
	memcpy(out->queued, res->queued, sizeof(out->queued));
	return 0;
}

/* ---- customers --------------------------------------------------------------------- */

const char *erp_direct_wa_id(struct arena *a, const char *phone)
{
	char digits[16];
	size_t n = 0;
	if (!phone)
		return NULL;
	for (const char *p = phone; *p; p++) {
		if (*p >= '0' && *p <= '9') {
			if (n >= sizeof(digits) - 1)
				return NULL;
			digits[n++] = *p;
		} else if (!(*p == '+' && p == phone) && *p != ' ' && *p != '-') {
			return NULL;
		}
	}
	if (n < 8)
		return NULL;
	digits[n] = '\0';
	return arena_strdup(a, digits);
}

/* Reads the order's customer into the context (commands check it). */
static int load_customer_of(struct direct *dc, int64_t order_id, struct erp_direct_result *out)
{
	struct order o;
	int rc = store_order_get(dc->x.c, dc->x.t->id, order_id, dc->x.a, &o);
	if (rc == ERR_NOTFOUND) {
		refuse(dc, out, "order_not_found",
		       arena_sprintf(dc->x.a, "there is no order #%" PRId64, order_id));
		return 1;
	}
	if (rc < 0)
		return rc;
	rc = store_customer_get(dc->x.c, dc->x.t->id, o.customer_id, dc->x.a, &dc->x.cust);
	return rc < 0 ? rc : 0;
}

/* ---- orders ------------------------------------------------------------------------ */

/* Reads the lines as the parser reads "order <qty> <item>", one item each. */
static int read_lines(struct direct *dc, const struct erp_direct_line *lines, int n,
                      struct erp_cmd *cmd, struct erp_direct_result *out)
{
	struct arena *a = dc->x.a;
	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = ERP_CMD_ORDER;
	if (n <= 0) {
		refuse(dc, out, "no_lines", "an order needs at least one line");
		return 1;
	}
	if (n > ERP_MAX_ORDER_LINES) {
		refuse(dc, out, "too_many_lines",
		       arena_sprintf(a, "an order has at most %d lines, not %d",
		                     ERP_MAX_ORDER_LINES, n));
		return 1;
	}
	for (int i = 0; i < n; i++) {
		const char *item = lines[i].item ? lines[i].item : "";
		const char *qty = lines[i].qty ? lines[i].qty : "";
		struct erp_cmd *one = arena_alloc(a, sizeof(*one));
		if (strlen(item) > ERP_NAME_MAX * 4 || strlen(qty) > 32) {
			refuse(dc, out, "invalid_line",
			       arena_sprintf(a, "line %d: the item or quantity is too long",
			                     i + 1));
			return 1;
		}
		erp__parse(a, arena_sprintf(a, "order %s %s", qty, item), one);
		if (one->kind != ERP_CMD_ORDER || one->nitems != 1 ||
		    (one->err == ERP_PERR_NONE && one->items[0].nwords == 0)) {
			refuse(dc, out, "invalid_line",
			       arena_sprintf(
			               a,
			               "line %d: could not read \"%s %s\" as one quantity and "
			               "one item",
			               i + 1, erp__clean(a, qty, 40),
			               erp__clean(a, item, ERP_NAME_MAX)));
			return 1;
		}
		if (one->err != ERP_PERR_NONE && cmd->err == ERP_PERR_NONE)
			cmd->err = one->err;
		cmd->items[cmd->nitems++] = one->items[0];
	}
	return 0;
}

int erp_direct_order(const struct erp_direct *d, const char *customer,
                     const struct erp_direct_line *lines, int n, int confirm,
                     struct erp_direct_result *out)
{
	struct direct *dc = arena_alloc(d->a, sizeof(*dc));
	struct erp_cmd *cmd = arena_alloc(d->a, sizeof(*cmd));
	direct_init(dc, d, out);
	const char *wa_id = erp_direct_wa_id(d->a, customer);
	if (!wa_id) {
		refuse(dc, out, "invalid_customer",
		       "the customer must be a phone number with country code, e.g. +919876543210");
		return 0;
	}
	if (read_lines(dc, lines, n, cmd, out) != 0)
		return 0;
	int rc = store_customer_ensure(d->c, d->t->id, wa_id, d->a, &dc->x.cust);
	if (rc < 0)
		return rc;
	if ((rc = erp__cmd_order(&dc->x, cmd)) < 0)
		return rc;
	if (dc->x.order_id <= 0) {
		refuse(dc, out, dc->x.refusal ? dc->x.refusal : "refused", NULL);
		return 0;
	}
	out->order_id = dc->x.order_id;
	if (confirm) {
		/* the draft's words are not sent: the confirmation is */
		struct erp_cmd c2;
		memset(&c2, 0, sizeof(c2));
		c2.kind = ERP_CMD_CONFIRM;
		c2.order_id = out->order_id;
		memset(&dc->res, 0, sizeof(dc->res));
		if ((rc = erp__cmd_confirm(&dc->x, &c2)) < 0)
			return rc;
		if (dc->x.refusal) {
			refuse(dc, out, dc->x.refusal, NULL);
			return 0;
		}
	}
	return queue_replies(dc, out);
}

/* Confirm or cancel order_id: the command, and the order's status after. */
static int move_order(const struct erp_direct *d, int64_t order_id, int confirm,
                      struct erp_direct_result *out)
{
	struct direct *dc = arena_alloc(d->a, sizeof(*dc));
	struct erp_cmd cmd;
	direct_init(dc, d, out);
	int rc = load_customer_of(dc, order_id, out);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	memset(&cmd, 0, sizeof(cmd));
	cmd.kind = confirm ? ERP_CMD_CONFIRM : ERP_CMD_CANCEL;
	cmd.order_id = order_id;
	rc = confirm ? erp__cmd_confirm(&dc->x, &cmd) : erp__cmd_cancel(&dc->x, &cmd);
	if (rc < 0)
		return rc;
	out->order_id = order_id;
	if (dc->x.refusal) {
		refuse(dc, out, dc->x.refusal, NULL);
		return 0;
	}
	return queue_replies(dc, out);
}

int erp_direct_confirm(const struct erp_direct *d, int64_t order_id, struct erp_direct_result *out)
{
	return move_order(d, order_id, 1, out);
}

int erp_direct_cancel(const struct erp_direct *d, int64_t order_id, struct erp_direct_result *out)
{
	return move_order(d, order_id, 0, out);
}

/* ---- stock ------------------------------------------------------------------------- */

int erp_direct_stock(const struct erp_direct *d, const char *item, const char *qty, int remove,
                     struct erp_direct_result *out)
{
	struct direct *dc = arena_alloc(d->a, sizeof(*dc));
	struct erp_cmd *cmd = arena_alloc(d->a, sizeof(*cmd));
	struct erp_qty one = {1000, NULL};
	struct erp_match m;
	struct buf b;
	int64_t qb = 0, after = 0;
	direct_init(dc, d, out);
	if (!item || !*item || strlen(item) > ERP_NAME_MAX * 4 || (qty && strlen(qty) > 32)) {
		refuse(dc, out, "invalid_line", "name an item (and a quantity) to adjust");
		return 0;
	}
	/* the owner's "add stock <qty> <item>", read by the parser */
	erp__parse(d->a, arena_sprintf(d->a, "add stock %s %s", qty ? qty : "", item), cmd);
	if (cmd->kind != ERP_CMD_ADD_STOCK || cmd->nitems != 1) {
		refuse(dc, out, "invalid_line",
		       arena_sprintf(d->a, "could not read \"%s %s\" as one quantity and one item",
		                     erp__clean(d->a, qty ? qty : "", 40),
		                     erp__clean(d->a, item, ERP_NAME_MAX)));
		return 0;
	}
	if (cmd->err != ERP_PERR_NONE) {
		refuse(dc, out, "invalid_quantity",
		       "the quantity must be more than zero, with at most 7 digits and 3 decimals");
		return 0;
	}
	int rc = erp__load_catalog(&dc->x);
	if (rc < 0)
		return rc;
	const struct erp_item *it = &cmd->items[0];
	erp__match(&dc->x.cat, it->words, it->nwords, &m);
	buf_init(&b);
	if (m.kind != ERP_MATCH_ONE) {
		erp__explain_nomatch(&dc->x, &b, it, &m);
		refuse(dc, out, dc->x.refusal, erp__finish(d->a, &b, ERP_TEXT_MAX));
		return 0;
	}
	const struct product *p = m.product;
	rc = erp__qty_to_base(it->has_qty ? &it->qty : &one, p->unit, p->base_per_unit, &qb);
	if (rc < 0) {
		erp__explain_qty(&dc->x, &b, it, p, rc);
		refuse(dc, out, dc->x.refusal, erp__finish(d->a, &b, ERP_TEXT_MAX));
		return 0;
	}
	buf_release(&b);
	out->product_id = p->id;
	rc = store_stock_move(d->c, d->t->id, p->id, remove ? -qb : qb,
	                      remove ? "adjust" : "restock", 0, &after);
	if (rc == ERR_CONFLICT) {
		buf_init(&b);
		buf_printf(&b, "only ");
		erp__fmt_qty(&b, p->stock, p->base_per_unit, p->unit);
		buf_printf(&b, " of %s in stock", erp__clean(d->a, p->name, ERP_NAME_MAX));
		refuse(dc, out, "short_stock", erp__finish(d->a, &b, ERP_TEXT_MAX));
		return 0;
	}
	if (rc < 0)
		return rc;
	rc = store_audit(d->c, d->t->id, dc->e.from, remove ? "stock.remove" : "stock.add",
	                 arena_sprintf(d->a, "product %" PRId64 " %s %c%" PRId64 " stock %" PRId64,
	                               p->id, p->sku ? p->sku : "", remove ? '-' : '+', qb, after));
	if (rc < 0)
		return rc;
	out->stock_after = after;
	buf_init(&b);
	buf_puts(&b, remove ? "Took out " : "Added ");
	erp__fmt_qty(&b, qb, p->base_per_unit, p->unit);
	buf_printf(&b, " %s %s. Stock now ", remove ? "of" : "to",
	           erp__clean(d->a, p->name, ERP_NAME_MAX));
	erp__fmt_qty(&b, after, p->base_per_unit, p->unit);
	buf_putc(&b, '.');
	out->message = erp__finish(d->a, &b, ERP_TEXT_MAX);
	return 0;
}

/* ---- invoices ---------------------------------------------------------------------- */

const char *erp_direct_invoice_text(const struct erp_direct *d, const struct invoice *inv,
                                    const struct order *o, const struct customer *cu)
{
	struct direct *dc = arena_alloc(d->a, sizeof(*dc));
	struct erp_direct_result ignored;
	direct_init(dc, d, &ignored);
	if (cu)
		dc->x.cust = *cu;
	return erp__invoice_text(&dc->x, inv, o, NULL);
}

void erp_direct_line_tax(int64_t amount, int rate_bp, int intra, int64_t *cgst, int64_t *sgst,
                         int64_t *igst)
{
	erp__line_tax(amount, rate_bp, intra, cgst, sgst, igst);
}
