/*
 * erp.c - erp_handle: one inbound message → ERP changes and replies, and
 * the customer commands.
 *
 * erp_handle runs inside the caller's transaction (the worker's savepoint
 * for this message) and never commits, sends or sleeps. It returns 0 with
 * its replies, or a store error: then the caller rolls the message back
 * and retries it later, so nothing half-done is ever kept. Business
 * refusals (unknown item, short stock, an order already confirmed) are
 * replies, not errors; each also names itself in x->refusal, which the
 * companion app's path (direct.c, running order/confirm/cancel itself)
 * reads back and the chat ignores.
 *
 * The life of an order (store order status):
 *
 *   order <items> ── cmd_order: store_order_create ──▶ DRAFT
 *   DRAFT ── cmd_confirm: stock checked, DRAFT→CONFIRMED, stock moved out
 *            through the ledger, GST invoice issued ──▶ CONFIRMED
 *   DRAFT ── cmd_cancel: DRAFT→CANCELLED ──▶ CANCELLED
 *   CONFIRMED / CANCELLED: a second Confirm or Cancel gets a polite reply
 *            with the state; nothing moves (store_order_set_status returns
 *            ERR_CONFLICT, which is the gate).
 *
 * A draft does not reserve stock: the stock is checked when the draft is
 * made (to refuse at once what cannot be had) and again at Confirm. At
 * Confirm every line's product is read first; only when all are available
 * does the status change and the stock move, so a short-stock Confirm
 * changes nothing and leaves the draft. If a stock move still fails (a
 * concurrent writer between the check and the move) the error goes back to
 * the caller, whose rollback undoes the status change too.
 *
 * Every confirm and cancel writes an audit row. Replies are PRIO_P2 except
 * the confirmation that issues an invoice (PRIO_P1).
 *
 * Marketing consent: "stop" (also "unsubscribe") marks the customer opted
 * out and moves their marketing still waiting in the outbox (PENDING P3
 * rows) to FAILED with 131050 "recipient opted out", counted in
 * out->cancelled; broadcasts leave them out from then on. "start" opts
 * them back in (for a customer who never opted out it is the greeting it
 * always was: the menu). Replies to their own messages are not marketing
 * and go out as ever.
 *
 * Not understood, degraded, and photos (erp.h, "The AI endpoint"): a text
 * the parser cannot read becomes an AI job, or gets the template reply
 * while degraded, or the menu (not_understood); while a customer has a job
 * not yet done, their next messages become jobs too (behind it); images and
 * documents are queued for reading and acknowledged (queue_media). The AI
 * setting is one process-wide copy (erp_ai_set): serve writes it before
 * any thread runs the ERP, and a handler only reads it, so it needs no
 * lock; it is process-wide rather than passed in because every runner of
 * the ERP (workers, the ingest fast path, the AI thread) must see the same.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "erp/erp_internal.h"

static const char *const menu_buttons[] = {
        ERP_BTN_STOCK, "Stock Check", ERP_BTN_ORDER, "New Order", ERP_BTN_INVOICE, "Invoice",
};

/* The process's AI setting (erp_ai_set): written while no thread runs the
 * ERP, only read by handlers. */
static struct erp_ai ai_setting;

void erp_ai_set(const struct erp_ai *ai)
{
	if (ai)
		ai_setting = *ai;
	else
		memset(&ai_setting, 0, sizeof(ai_setting));
}

/* Degraded: the controller's level is 1 or more, or the AI's breaker
 * refuses calls (no smart answer is possible now). */
static int ai_degraded(void)
{
	const struct erp_ai *s = &ai_setting;
	if (s->degradation_level &&
	    atomic_load_explicit(s->degradation_level, memory_order_relaxed) >= 1)
		return 1;
	return s->jobs && s->refusing && atomic_load_explicit(s->refusing, memory_order_relaxed);
}

int erp__marketing_refused(void)
{
	const _Atomic int *l = ai_setting.spike_level;
	return l && atomic_load_explicit(l, memory_order_relaxed) >= 4;
}

/* ---- replies ----------------------------------------------------------------- */

/* new_reply takes the next reply slot (NULL, logged, when all are used). */
static struct erp_reply *new_reply(struct erp_ctx *x, enum erp_reply_kind kind,
                                   enum outbox_prio prio)
{
	struct erp_result *out = x->out;
	if (out->nreplies >= ERP_MAX_REPLIES) {
		log_warn("erp.reply_dropped", "more than %d replies for one message",
		         ERP_MAX_REPLIES);
		return NULL;
	}
	struct erp_reply *r = &out->replies[out->nreplies++];
	memset(r, 0, sizeof(*r));
	r->kind = kind;
	r->priority = prio;
	return r;
}

void erp__reply(struct erp_ctx *x, enum outbox_prio prio, const char *text)
{
	struct erp_reply *r = new_reply(x, ERP_REPLY_TEXT, prio);
	if (r)
		r->text = erp__clean_text(x->a, text, ERP_TEXT_MAX);
}

void erp__reply_buttons(struct erp_ctx *x, enum outbox_prio prio, const char *text, int nb,
                        const char *const *ids_titles)
{
	struct erp_reply *r = new_reply(x, ERP_REPLY_BUTTONS, prio);
	if (!r)
		return;
	r->text = erp__clean_text(x->a, text, ERP_TEXT_MAX_BUTTONS);
	if (nb > ERP_MAX_BUTTONS)
		nb = ERP_MAX_BUTTONS;
	r->nbuttons = nb;
	for (int i = 0; i < nb; i++) {
		r->buttons[i].id = erp__clean(x->a, ids_titles[2 * i], 256);
		r->buttons[i].title = erp__clean(x->a, ids_titles[2 * i + 1], 20);
	}
}

static void reply_fmt(struct erp_ctx *x, struct buf *b)
{
	erp__reply(x, PRIO_P2, erp__finish(x->a, b, ERP_TEXT_MAX));
}

int erp__queue(struct erp_ctx *x, enum outbox_prio prio, const char *to, const char *body)
{
	struct outbox_new o = {
	        .tenant_id = x->t->id,
	        .priority = prio,
	        .phone_number_id = x->t->phone_number_id,
	        .to = to,
	        .reply_to = "",
	        .body = body,
	        .inbound_received_at = 0,
	        .claimed = 0,
	};
	int64_t id;
	int rc = store_outbox_add(x->c, &o, &id);
	if (rc == 0)
		x->out->queued[prio]++;
	return rc;
}

/* ---- the catalogue ---------------------------------------------------------- */

int erp__load_catalog(struct erp_ctx *x)
{
	if (x->loaded)
		return 0;
	int rc = erp__cache_load(x->cache, x->c, x->t, &x->products, &x->nproducts, &x->cat);
	if (rc < 0)
		return rc;
	x->loaded = 1;
	return 0;
}

/* lower-case, clean display of product i's name for examples */
static const char *example_name(struct erp_ctx *x, int i)
{
	char *s = erp__clean(x->a, x->products[i].name, ERP_NAME_MAX);
	for (char *p = s; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return s;
}

static void append_example_order(struct erp_ctx *x, struct buf *b, int i, int q)
{
	const struct product *p = &x->products[i];
	buf_printf(b, "%d %s %s", q, erp__unit_label(p->unit, q != 1), example_name(x, i));
}

static int reply_menu(struct erp_ctx *x, const char *lead)
{
	struct buf b;
	const char *name = x->e->name && x->e->name[0] ? x->e->name : x->cust.name;
	int rc = erp__load_catalog(x);
	if (rc < 0)
		return rc;

	buf_init(&b);
	if (lead)
		buf_printf(&b, "%s\n\n", lead);
	buf_puts(&b, "Namaste");
	if (name && name[0])
		buf_printf(&b, " %s", erp__clean(x->a, name, ERP_NAME_MAX));
	buf_printf(&b, "! Welcome to %s.\n", erp__clean(x->a, x->t->name, ERP_NAME_MAX));
	buf_puts(&b, "What would you like to do? Tap a button");
	if (x->nproducts > 0) {
		buf_printf(&b, ", or type e.g. \"stock %s\" or \"order ", example_name(x, 0));
		append_example_order(x, &b, 0, 2);
		buf_puts(&b, "\".");
	} else {
		buf_putc(&b, '.');
	}
	erp__reply_buttons(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX_BUTTONS), 3,
	                   menu_buttons);
	return 0;
}

static int reply_help_stock(struct erp_ctx *x)
{
	struct buf b;
	int rc = erp__load_catalog(x);
	if (rc < 0)
		return rc;
	buf_init(&b);
	buf_puts(&b, "To check stock and price, type: stock <item>\n");
	if (x->nproducts > 0)
		buf_printf(&b, "For example: stock %s", example_name(x, 0));
	else
		buf_puts(&b, "(This shop has no items listed yet.)");
	reply_fmt(x, &b);
	return 0;
}

static int reply_help_order(struct erp_ctx *x)
{
	struct buf b;
	int rc = erp__load_catalog(x);
	if (rc < 0)
		return rc;
	buf_init(&b);
	buf_puts(&b, "To order, type: order <quantity> <item>, and more items after commas.\n");
	if (x->nproducts > 0) {
		buf_puts(&b, "For example: order ");
		append_example_order(x, &b, 0, 2);
		if (x->nproducts > 1) {
			buf_puts(&b, ", ");
			append_example_order(x, &b, 1, 1);
		}
		buf_puts(&b, "\nYou will see the total with GST and can then confirm or cancel.");
	} else {
		buf_puts(&b, "(This shop has no items listed yet.)");
	}
	reply_fmt(x, &b);
	return 0;
}

/* ---- shared wording ------------------------------------------------------------- */

void erp__explain_nomatch(struct erp_ctx *x, struct buf *b, const struct erp_item *it,
                          const struct erp_match *m)
{
	const char *what = erp__clean(x->a, it->text, ERP_NAME_MAX);
	x->refusal = m->kind == ERP_MATCH_AMBIGUOUS ? "ambiguous_item" : "unknown_item";
	if (m->kind == ERP_MATCH_AMBIGUOUS) {
		buf_printf(b, "We have more than one \"%s\": ", what);
	} else if (x->nproducts == 0) {
		buf_printf(b, "Sorry, we don't sell \"%s\". This shop has no items listed yet.",
		           what);
		return;
	} else if (m->close) {
		buf_printf(b, "Sorry, we don't sell \"%s\". Did you mean: ", what);
	} else {
		buf_printf(b, "Sorry, we don't sell \"%s\". Some things we have: ", what);
	}
	for (int i = 0; i < m->nsuggest; i++)
		buf_printf(b, "%s%s", i ? ", " : "",
		           erp__clean(x->a, m->suggest[i]->name, ERP_NAME_MAX));
	if (m->kind == ERP_MATCH_AMBIGUOUS)
		buf_puts(b, "? Please type the full name.");
	else
		buf_puts(b, m->close ? "?" : ".");
}

static const char *unit_long(const char *u)
{
	static const struct {
		const char *unit, *name;
	} names[] = {{"kg", "kilo"},  {"g", "gram"},        {"l", "litre"},    {"ml", "ml"},
	             {"pc", "piece"}, {"packet", "packet"}, {"dozen", "dozen"}};
	const struct erp_unit *eu = erp__unit_lookup(u);
	const char *canon = eu ? eu->name : u;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (canon && strcmp(canon, names[i].unit) == 0)
			return names[i].name;
	return u ? u : "";
}

void erp__explain_qty(struct erp_ctx *x, struct buf *b, const struct erp_item *it,
                      const struct product *p, int err)
{
	const char *name = erp__clean(x->a, p->name, ERP_NAME_MAX);
	x->refusal = "invalid_quantity";
	switch (err) {
	case ERR_CONFLICT:
		buf_printf(b, "Sorry, %s is sold by the %s, not by the %s. Try e.g. \"2 %s %s\".",
		           name, unit_long(p->unit),
		           unit_long(it && it->qty.unit ? it->qty.unit->name : ""),
		           erp__unit_label(p->unit, 1),
		           it && it->text ? erp__clean(x->a, it->text, ERP_NAME_MAX) : "");
		break;
	case ERR_TOOBIG:
		buf_printf(b, "Sorry, that is more %s than one order can take (at most ", name);
		erp__fmt_int(b, ERP_QTY_MAX_UNITS);
		buf_printf(b, " %s).", erp__unit_label(p->unit, 1));
		break;
	default:
		buf_printf(b, "Sorry, %s can only be ordered in steps of ", name);
		erp__fmt_qty(b, 1, p->base_per_unit, p->unit);
		buf_putc(b, '.');
		break;
	}
}

static void fmt_price_line(struct buf *b, const struct product *p)
{
	erp__fmt_money(b, p->price_paise);
	buf_printf(b, " per %s", erp__unit_label(p->unit, 0));
	if (p->gst_rate_bp > 0) {
		buf_puts(b, " + ");
		erp__fmt_rate(b, p->gst_rate_bp);
		buf_puts(b, " GST");
	}
}

/* ---- stock ------------------------------------------------------------------- */

int erp__cmd_stock(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	struct buf b;
	int rc = erp__load_catalog(x);
	if (rc < 0)
		return rc;
	buf_init(&b);
	for (int i = 0; i < cmd->nitems; i++) {
		const struct erp_item *it = &cmd->items[i];
		struct erp_match m;
		if (i)
			buf_putc(&b, '\n');
		erp__match(&x->cat, it->words, it->nwords, &m);
		if (m.kind != ERP_MATCH_ONE) {
			erp__explain_nomatch(x, &b, it, &m);
			continue;
		}
		const struct product *p = m.product;
		buf_printf(&b, "%s: ", erp__clean(x->a, p->name, ERP_NAME_MAX));
		if (p->stock > 0) {
			buf_puts(&b, "in stock, ");
			erp__fmt_qty(&b, p->stock, p->base_per_unit, p->unit);
			buf_puts(&b, " available. ");
		} else {
			buf_puts(&b, "out of stock right now. ");
		}
		fmt_price_line(&b, p);
	}
	reply_fmt(x, &b);
	return 0;
}

/* ---- order ----------------------------------------------------------------------- */

int erp__cmd_order(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	struct order_line lines[ERP_MAX_ORDER_LINES];
	const struct product *prods[ERP_MAX_ORDER_LINES];
	int nlines = 0, problems = 0, rc;
	struct buf b;

	if ((rc = erp__load_catalog(x)) < 0)
		return rc;
	buf_init(&b);
	if (cmd->err != ERP_PERR_NONE)
		x->refusal = cmd->err == ERP_PERR_TOO_MANY ? "too_many_lines" : "invalid_quantity";
	switch (cmd->err) {
	case ERP_PERR_NONE: break;
	case ERP_PERR_TOO_MANY:
		buf_printf(&b, "Sorry, one order can have at most %d items. Please split it.",
		           ERP_MAX_ORDER_LINES);
		reply_fmt(x, &b);
		return 0;
	case ERP_PERR_QTY_ZERO:
		buf_puts(&b, "Quantities must be more than zero, e.g. \"order 2 kg rice\".");
		reply_fmt(x, &b);
		return 0;
	case ERP_PERR_QTY_BIG:
		buf_puts(&b, "Sorry, I can't read that quantity: use at most 7 digits and 3 "
		             "decimals, e.g. \"order 1.5 kg rice\".");
		reply_fmt(x, &b);
		return 0;
	case ERP_PERR_NO_ITEM:
	case ERP_PERR_PRICE_BAD:
		buf_puts(&b, "Please name the item after the quantity, e.g. \"order 2 kg rice\".");
		reply_fmt(x, &b);
		return 0;
	}

	for (int i = 0; i < cmd->nitems; i++) {
		const struct erp_item *it = &cmd->items[i];
		struct erp_match m;
		struct erp_qty one = {1000, NULL};
		int64_t qb;
		erp__match(&x->cat, it->words, it->nwords, &m);
		if (m.kind != ERP_MATCH_ONE) {
			if (problems++)
				buf_putc(&b, '\n');
			erp__explain_nomatch(x, &b, it, &m);
			continue;
		}
		const struct product *p = m.product;
		rc = erp__qty_to_base(it->has_qty ? &it->qty : &one, p->unit, p->base_per_unit,
		                      &qb);
		if (rc < 0) {
			if (problems++)
				buf_putc(&b, '\n');
			erp__explain_qty(x, &b, it, p, rc);
			continue;
		}
		/* the same product twice: one line with the sum */
		int j = 0;
		while (j < nlines && prods[j] != p)
			j++;
		if (j == nlines) {
			memset(&lines[j], 0, sizeof(lines[j]));
			prods[j] = p;
			nlines++;
		}
		if (__builtin_add_overflow(lines[j].qty_base, qb, &lines[j].qty_base)) {
			if (problems++)
				buf_putc(&b, '\n');
			erp__explain_qty(x, &b, it, p, ERR_TOOBIG);
		}
	}
	if (problems) {
		buf_puts(&b, "\nNo order was made; please send it again.");
		reply_fmt(x, &b);
		return 0;
	}

	/* stock (not reserved: checked again at Confirm), amounts */
	for (int j = 0; j < nlines; j++) {
		const struct product *p = prods[j];
		struct order_line *l = &lines[j];
		int64_t cap;
		if (__builtin_mul_overflow((int64_t)ERP_QTY_MAX_UNITS, p->base_per_unit, &cap))
			cap = INT64_MAX;
		if (l->qty_base > cap) {
			if (problems++)
				buf_putc(&b, '\n');
			erp__explain_qty(x, &b, NULL, p, ERR_TOOBIG);
			continue;
		}
		if (l->qty_base > p->stock) {
			x->refusal = "short_stock";
			if (problems++)
				buf_putc(&b, '\n');
			if (p->stock <= 0) {
				buf_printf(&b, "Sorry, %s is out of stock right now.",
				           erp__clean(x->a, p->name, ERP_NAME_MAX));
			} else {
				buf_puts(&b, "Sorry, only ");
				erp__fmt_qty(&b, p->stock, p->base_per_unit, p->unit);
				buf_printf(&b, " of %s left.",
				           erp__clean(x->a, p->name, ERP_NAME_MAX));
			}
			continue;
		}
		l->product_id = p->id;
		l->name = p->name;
		l->unit = p->unit;
		l->base_per_unit = p->base_per_unit;
		l->price_paise = p->price_paise;
		l->gst_rate_bp = p->gst_rate_bp;
		l->hsn = p->hsn ? p->hsn : "";
		rc = erp__line_amount(p->price_paise, l->qty_base, p->base_per_unit,
		                      &l->amount_paise);
		if (rc < 0) {
			if (problems++)
				buf_putc(&b, '\n');
			erp__explain_qty(x, &b, NULL, p, ERR_TOOBIG);
		}
	}
	if (problems) {
		buf_puts(&b, "\nNo order was made; you can order a smaller quantity.");
		reply_fmt(x, &b);
		return 0;
	}
	buf_release(&b);

	struct order o;
	struct erp_totals tot;
	memset(&o, 0, sizeof(o));
	o.tenant_id = x->t->id;
	o.customer_id = x->cust.id;
	o.status = ORDER_DRAFT;
	o.created_at = x->now;
	o.updated_at = x->now;
	o.nlines = nlines;
	o.lines = lines;
	if ((rc = erp__totals(lines, nlines, erp__customer_intra(x), &tot)) < 0)
		return rc;
	o.total_paise = tot.taxable_paise;
	if ((rc = store_order_create(x->c, &o, &o.id)) < 0)
		return rc;
	x->order_id = o.id;
	return erp__reply_draft(x, &o, NULL);
}

/* ---- confirm / cancel -------------------------------------------------------------- */

/*
 * Finds the order a Confirm/Cancel is about: by id (a button), which must
 * be this customer's, or the customer's last draft. Returns 0 with *o, 1
 * when it replied that there is none, or a store error.
 */
static int find_order(struct erp_ctx *x, int64_t id, const char *verb, struct order *o)
{
	struct buf b;
	int rc;

	if (id > 0) {
		rc = store_order_get(x->c, x->t->id, id, x->a, o);
		if (rc == 0 && o->customer_id != x->cust.id)
			rc = ERR_NOTFOUND; /* never someone else's order */
		if (rc == ERR_NOTFOUND) {
			x->refusal = "order_not_found";
			buf_init(&b);
			buf_printf(&b, "Sorry, I couldn't find order #%" PRId64 ".", id);
			reply_fmt(x, &b);
			return 1;
		}
		return rc;
	}
	rc = store_order_last_draft(x->c, x->t->id, x->cust.id, x->a, o);
	if (rc == ERR_NOTFOUND) {
		x->refusal = "order_not_found";
		buf_init(&b);
		buf_printf(&b,
		           "You have no draft order to %s. To order, type e.g. "
		           "\"order 2 kg rice\".",
		           verb);
		reply_fmt(x, &b);
		return 1;
	}
	return rc;
}

/* The polite answer to a Confirm/Cancel of an order no longer a draft. */
static int reply_state(struct erp_ctx *x, int64_t order_id, int confirming)
{
	x->refusal = "not_draft";
	struct order o;
	struct invoice inv;
	struct buf b;
	int rc = store_order_get(x->c, x->t->id, order_id, x->a, &o);
	if (rc < 0)
		return rc;
	buf_init(&b);
	if (o.status == ORDER_CONFIRMED) {
		buf_printf(&b, "Order #%" PRId64 " is already confirmed", o.id);
		rc = store_invoice_by_order(x->c, x->t->id, o.id, x->a, &inv);
		if (rc == 0) {
			buf_printf(&b, " (invoice %s, total ", erp__clean(x->a, inv.number, 40));
			erp__fmt_money(&b, inv.total_paise);
			buf_putc(&b, ')');
		} else if (rc != ERR_NOTFOUND) {
			buf_release(&b);
			return rc;
		}
		if (confirming)
			buf_puts(&b, ". Type \"invoice\" to see the invoice again.");
		else
			buf_puts(&b,
			         ", so it can't be cancelled on chat. Please contact the shop.");
	} else if (o.status == ORDER_CANCELLED) {
		if (confirming)
			buf_printf(&b,
			           "Order #%" PRId64 " was cancelled, so it can't be confirmed. "
			           "Send a new order any time.",
			           o.id);
		else
			buf_printf(&b, "Order #%" PRId64 " is already cancelled.", o.id);
	} else {
		buf_printf(&b, "Order #%" PRId64 " is still a draft.", o.id);
	}
	reply_fmt(x, &b);
	return 0;
}

int erp__cmd_confirm(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	struct order o;
	struct invoice inv;
	struct erp_totals tot;
	struct buf b;
	int64_t need[ERP_MAX_ORDER_LINES];
	int64_t pid[ERP_MAX_ORDER_LINES];
	int np = 0, rc;
	char fy[5];

	rc = find_order(x, cmd->order_id, "confirm", &o);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (o.status != ORDER_DRAFT)
		return reply_state(x, o.id, 1);
	if (o.nlines <= 0 || o.nlines > ERP_MAX_ORDER_LINES) {
		x->refusal = "empty_order";
		buf_init(&b);
		buf_printf(&b, "Sorry, order #%" PRId64 " has no items I can confirm.", o.id);
		reply_fmt(x, &b);
		return 0;
	}

	/* 1. every product available, before anything changes */
	for (int i = 0; i < o.nlines; i++) {
		int j = 0;
		while (j < np && pid[j] != o.lines[i].product_id)
			j++;
		if (j == np) {
			pid[np] = o.lines[i].product_id;
			need[np++] = 0;
		}
		need[j] += o.lines[i].qty_base;
	}
	buf_init(&b);
	int short_items = 0;
	for (int j = 0; j < np; j++) {
		struct product p;
		rc = store_product_get(x->c, x->t->id, pid[j], x->a, &p);
		if (rc == ERR_NOTFOUND) {
			if (short_items++)
				buf_putc(&b, '\n');
			buf_puts(&b, "Sorry, an item of this order is no longer sold here.");
			continue;
		}
		if (rc < 0) {
			buf_release(&b);
			return rc;
		}
		if (p.stock >= need[j])
			continue;
		if (short_items++)
			buf_putc(&b, '\n');
		if (p.stock <= 0) {
			buf_printf(&b, "Sorry, %s is out of stock now.",
			           erp__clean(x->a, p.name, ERP_NAME_MAX));
		} else {
			buf_puts(&b, "Sorry, only ");
			erp__fmt_qty(&b, p.stock, p.base_per_unit, p.unit);
			buf_printf(&b, " of %s left now.", erp__clean(x->a, p.name, ERP_NAME_MAX));
		}
	}
	if (short_items) {
		x->refusal = "short_stock";
		buf_printf(&b,
		           "\nOrder #%" PRId64 " is still a draft: cancel it and send a new "
		           "order with less.",
		           o.id);
		reply_fmt(x, &b);
		return 0;
	}
	buf_release(&b);

	/* 2. the status is the gate: a second Confirm stops here */
	rc = store_order_set_status(x->c, x->t->id, o.id, ORDER_DRAFT, ORDER_CONFIRMED);
	if (rc == ERR_CONFLICT)
		return reply_state(x, o.id, 1);
	if (rc < 0)
		return rc;

	/* 3. stock out through the ledger (a failure rolls back the status too) */
	for (int i = 0; i < o.nlines; i++) {
		rc = store_stock_move(x->c, x->t->id, o.lines[i].product_id, -o.lines[i].qty_base,
		                      "order", o.id, NULL);
		if (rc < 0)
			return rc;
	}

	/* 4. the GST invoice */
	int intra = erp__customer_intra(x);
	if ((rc = erp__totals(o.lines, o.nlines, intra, &tot)) < 0)
		return rc;
	erp__fy_code(x->now, fy);
	memset(&inv, 0, sizeof(inv));
	inv.tenant_id = x->t->id;
	inv.order_id = o.id;
	inv.customer_id = x->cust.id;
	inv.fy = fy;
	inv.issued_at = x->now;
	inv.intra_state = intra;
	inv.place_of_supply = erp__place_of_supply(x->t->state_code, x->cust.state_code);
	inv.taxable_paise = tot.taxable_paise;
	inv.cgst_paise = tot.cgst_paise;
	inv.sgst_paise = tot.sgst_paise;
	inv.igst_paise = tot.igst_paise;
	inv.round_off_paise = tot.round_off_paise;
	inv.total_paise = tot.total_paise;
	if ((rc = store_invoice_issue(x->c, &inv, x->a, &inv.id)) < 0)
		return rc;

	rc = store_audit(x->c, x->t->id, x->e->from, "order.confirm",
	                 arena_sprintf(x->a, "order %" PRId64 " invoice %s total %" PRId64, o.id,
	                               inv.number, inv.total_paise));
	if (rc < 0)
		return rc;
	char *lead =
	        arena_sprintf(x->a, "\xE2\x9C\x85 Order #%" PRId64 " confirmed. Thank you!", o.id);
	erp__reply(x, PRIO_P1, erp__invoice_text(x, &inv, &o, lead));
	return 0;
}

int erp__cmd_cancel(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	struct order o;
	struct buf b;
	int rc = find_order(x, cmd->order_id, "cancel", &o);
	if (rc != 0)
		return rc < 0 ? rc : 0;
	if (o.status != ORDER_DRAFT)
		return reply_state(x, o.id, 0);
	rc = store_order_set_status(x->c, x->t->id, o.id, ORDER_DRAFT, ORDER_CANCELLED);
	if (rc == ERR_CONFLICT)
		return reply_state(x, o.id, 0);
	if (rc < 0)
		return rc;
	rc = store_audit(x->c, x->t->id, x->e->from, "order.cancel",
	                 arena_sprintf(x->a, "order %" PRId64, o.id));
	if (rc < 0)
		return rc;
	buf_init(&b);
	buf_printf(&b, "Order #%" PRId64 " is cancelled. Send a new order any time.", o.id);
	reply_fmt(x, &b);
	return 0;
}

/* ---- invoice / status ----------------------------------------------------------------- */

static int cmd_invoice(struct erp_ctx *x)
{
	struct invoice inv;
	struct order o;
	int rc = store_invoice_last(x->c, x->t->id, x->cust.id, x->a, &inv);
	if (rc == ERR_NOTFOUND) {
		erp__reply(x, PRIO_P2, "You have no invoices yet. Confirm an order to get one.");
		return 0;
	}
	if (rc < 0)
		return rc;
	rc = store_order_get(x->c, x->t->id, inv.order_id, x->a, &o);
	if (rc < 0 && rc != ERR_NOTFOUND)
		return rc;
	erp__reply(x, PRIO_P2,
	           erp__invoice_text(x, &inv, rc == 0 ? &o : NULL, "Your last invoice:"));
	return 0;
}

static int cmd_status(struct erp_ctx *x)
{
	struct order o;
	struct invoice inv;
	struct buf b;
	int rc = store_order_last(x->c, x->t->id, x->cust.id, x->a, &o);
	if (rc == ERR_NOTFOUND) {
		erp__reply(x, PRIO_P2,
		           "You have no orders yet. To order, type e.g. \"order 2 kg rice\".");
		return 0;
	}
	if (rc < 0)
		return rc;
	if (o.status == ORDER_DRAFT)
		return erp__reply_draft(x, &o, "Your last order is waiting for your confirmation:");
	buf_init(&b);
	if (o.status == ORDER_CANCELLED) {
		buf_printf(&b, "Your last order #%" PRId64 " was cancelled.", o.id);
	} else {
		buf_printf(&b, "Your last order #%" PRId64 " is confirmed", o.id);
		rc = store_invoice_by_order(x->c, x->t->id, o.id, x->a, &inv);
		if (rc == 0) {
			buf_printf(&b, ": invoice %s of ", erp__clean(x->a, inv.number, 40));
			erp__fmt_date(&b, inv.issued_at);
			buf_puts(&b, ", total ");
			erp__fmt_money(&b, inv.total_paise);
		} else if (rc != ERR_NOTFOUND) {
			buf_release(&b);
			return rc;
		}
		buf_puts(&b, ". Type \"invoice\" to see it.");
	}
	reply_fmt(x, &b);
	return 0;
}

/* ---- marketing consent ----------------------------------------------------------------------- */

static int cmd_stop(struct erp_ctx *x)
{
	int64_t moved = 0;
	int changed = 0;
	struct buf b;
	int rc = store_customer_set_opted_out(x->c, x->t->id, x->e->from, 1, &changed);
	if (rc == 0)
		rc = store_outbox_cancel_marketing(x->c, x->t->id, x->e->from,
		                                   ERP_OPTOUT_ERROR_CODE, ERP_OPTOUT_ERROR, x->now,
		                                   &moved);
	if (rc < 0)
		return rc;
	x->out->cancelled[PRIO_P3] += moved;
	if (changed || moved > 0) {
		rc = store_audit(
		        x->c, x->t->id, x->e->from, "customer.opt_out",
		        arena_sprintf(x->a, "pending marketing cancelled: %" PRId64, moved));
		if (rc < 0)
			return rc;
	}
	buf_init(&b);
	buf_printf(&b,
	           "You will not receive offers from %s any more. Write START to receive them "
	           "again.",
	           erp__clean(x->a, x->t->name, ERP_NAME_MAX));
	reply_fmt(x, &b);
	return 0;
}

static int cmd_start(struct erp_ctx *x)
{
	int changed = 0;
	struct buf b;
	int rc = store_customer_set_opted_out(x->c, x->t->id, x->e->from, 0, &changed);
	if (rc < 0)
		return rc;
	if (!changed)
		return reply_menu(x, NULL); /* never opted out: "start" greets, as it always did */
	rc = store_audit(x->c, x->t->id, x->e->from, "customer.opt_in", "");
	if (rc < 0)
		return rc;
	buf_init(&b);
	buf_printf(&b, "You will receive offers from %s again. Write STOP any time to stop them.",
	           erp__clean(x->a, x->t->name, ERP_NAME_MAX));
	reply_fmt(x, &b);
	return 0;
}

/* A customer who writes "paid": the owner confirms payments, not the chat. */
static int cmd_paid_by_customer(struct erp_ctx *x)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "Thank you! %s will confirm your payment here once it is received.",
	           erp__clean(x->a, x->t->name, ERP_NAME_MAX));
	reply_fmt(x, &b);
	return 0;
}

/* ---- not understood, AI jobs, photos ------------------------------------------------------ */

/* The seed's level-1 reply: the template text and the three menu buttons. */
static int reply_degraded(struct erp_ctx *x)
{
	erp__reply_buttons(x, PRIO_P2, ERP_DEGRADED_TEXT, 3, menu_buttons);
	return 0;
}

/* Hands the message to the AI thread: a job in the caller's transaction,
 * no reply now (the job's run replies). */
static int record_job(struct erp_ctx *x, enum ai_job_kind kind)
{
	const struct inbox_entry *e = x->e;
	struct ai_job j = {
	        .tenant_id = x->t->id,
	        .kind = kind,
	        .ext_id = e->ext_id,
	        .from = e->from,
	        .name = e->name ? e->name : "",
	        .type = e->type ? e->type : "",
	        .body = e->body ? e->body : "",
	        .context_id = e->context_id ? e->context_id : "",
	        .sent_at = e->sent_at,
	        .received_at = e->received_at,
	        .created_at = x->now,
	};
	int64_t id;
	return store_ai_job_add(x->c, &j, &id);
}

/* A text the parser could not read: template, AI job (may_ask) or menu. */
static int not_understood(struct erp_ctx *x, int may_ask)
{
	if (ai_degraded())
		return reply_degraded(x);
	if (may_ask)
		return record_job(x, AI_JOB_REWRITE);
	return reply_menu(x, "Sorry, I didn't understand that.");
}

static int is_media(const char *type)
{
	return type && (strcmp(type, "image") == 0 || strcmp(type, "document") == 0);
}

/* A photo or document: queued for reading later, the customer told so. */
static int queue_media(struct erp_ctx *x)
{
	const struct inbox_entry *e = x->e;
	struct ocr_item o = {
	        .tenant_id = x->t->id,
	        .from = e->from,
	        .ext_id = e->ext_id,
	        .type = e->type,
	        .media_id = e->media_id ? e->media_id : "",
	        .mime_type = e->media_mime ? e->media_mime : "",
	        .caption = e->body ? erp__clean_text(x->a, e->body, ERP_TEXT_MAX) : "",
	        .created_at = x->now,
	};
	int64_t id;
	int rc = store_ocr_add(x->c, &o, &id);
	if (rc < 0)
		return rc;
	erp__reply(x, PRIO_P2,
	           arena_sprintf(x->a, ERP_OCR_ACK_TEXT,
	                         strcmp(e->type, "image") == 0 ? "photo" : "document"));
	return 0;
}

/* ---- dispatch ---------------------------------------------------------------------------- */

static int owner_only(struct erp_ctx *x)
{
	erp__reply(x, PRIO_P2, "Sorry, that command is only for the shop owner.");
	return 0;
}

static int dispatch(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	switch (cmd->kind) {
	case ERP_CMD_MENU: return reply_menu(x, NULL);
	case ERP_CMD_UNKNOWN: return reply_menu(x, "Sorry, I didn't understand that.");
	case ERP_CMD_HELP_STOCK: return reply_help_stock(x);
	case ERP_CMD_HELP_ORDER: return reply_help_order(x);
	case ERP_CMD_STOCK: return erp__cmd_stock(x, cmd);
	case ERP_CMD_ORDER: return erp__cmd_order(x, cmd);
	case ERP_CMD_CONFIRM: return erp__cmd_confirm(x, cmd);
	case ERP_CMD_CANCEL: return erp__cmd_cancel(x, cmd);
	case ERP_CMD_INVOICE: return cmd_invoice(x);
	case ERP_CMD_STATUS: return cmd_status(x);
	case ERP_CMD_ADD_STOCK: return x->is_owner ? erp__owner_add_stock(x, cmd) : owner_only(x);
	case ERP_CMD_SET_PRICE:
		/* a customer asking "price rice 60?" gets the price, changes nothing */
		if (x->is_owner)
			return erp__owner_set_price(x, cmd);
		return cmd->nitems > 0 ? erp__cmd_stock(x, cmd) : reply_help_stock(x);
	case ERP_CMD_LOW_STOCK: return x->is_owner ? erp__owner_low_stock(x) : owner_only(x);
	case ERP_CMD_SALES_TODAY: return x->is_owner ? erp__owner_sales_today(x) : owner_only(x);
	case ERP_CMD_STOP: return cmd_stop(x);
	case ERP_CMD_START: return cmd_start(x);
	case ERP_CMD_BROADCAST: return x->is_owner ? erp__owner_broadcast(x, cmd) : owner_only(x);
	case ERP_CMD_PAID: return x->is_owner ? erp__owner_paid(x, cmd) : cmd_paid_by_customer(x);
	}
	return reply_menu(x, NULL);
}

static int understood_type(const char *type)
{
	return type && (strcmp(type, "text") == 0 || strcmp(type, "interactive") == 0 ||
	                strcmp(type, "button") == 0);
}

static int handle(struct store_conn *c, struct erp_cache *cache, const struct tenant *t,
                  const struct inbox_entry *e, struct arena *a, struct erp_result *out, int as_job)
{
	struct erp_ctx x;
	struct erp_cmd *cmd = NULL;
	int64_t at;
	int rc, waiting = 0;

	if (!out)
		return ERR_INVAL;
	memset(out, 0, sizeof(*out));
	if (!c || !cache || !t || !e || !a || e->kind != INBOX_MESSAGE)
		return ERR_INVAL;
	if (!e->from || !e->from[0])
		return 0; /* no sender at all: nothing to answer (ingest keeps none such) */

	memset(&x, 0, sizeof(x));
	x.c = c;
	x.cache = cache;
	x.t = t;
	x.e = e;
	x.a = a;
	x.out = out;
	x.now = clock_wall_ms();
	at = e->sent_at > 0 ? e->sent_at : (e->received_at > 0 ? e->received_at : x.now);
	rc = store_customer_touch(c, t->id, e->from, e->name ? e->name : "", at, a, &x.cust);
	if (rc < 0)
		return rc;
	x.is_owner = erp__is_owner(t->owner_numbers, e->from);

	int jobs = !as_job && ai_setting.jobs;
	int text = e->type && strcmp(e->type, "text") == 0;
	if (understood_type(e->type)) {
		cmd = arena_alloc(a, sizeof(*cmd));
		erp__parse(a, e->body ? e->body : "", cmd);
	}
	if (jobs && (rc = store_ai_job_waiting(c, t->id, e->from, &waiting)) < 0)
		goto out;
	if (waiting) /* behind the customer's earlier job, in order */
		rc = record_job(&x, text && cmd && cmd->kind == ERP_CMD_UNKNOWN && !ai_degraded()
		                            ? AI_JOB_REWRITE
		                            : AI_JOB_PLAIN);
	else if (is_media(e->type))
		rc = queue_media(&x);
	else if (!cmd)
		rc = reply_menu(&x, "Sorry, I can only read text messages and button taps.");
	else if (cmd->kind == ERP_CMD_UNKNOWN)
		rc = not_understood(&x, jobs && text);
	else
		rc = dispatch(&x, cmd);
out:
	if (rc < 0)
		memset(out, 0, sizeof(*out));
	return rc;
}

int erp_handle(struct store_conn *c, struct erp_cache *cache, const struct tenant *t,
               const struct inbox_entry *e, struct arena *a, struct erp_result *out)
{
	return handle(c, cache, t, e, a, out, 0);
}

int erp_handle_job(struct store_conn *c, struct erp_cache *cache, const struct tenant *t,
                   const struct inbox_entry *e, struct arena *a, struct erp_result *out)
{
	return handle(c, cache, t, e, a, out, 1);
}
