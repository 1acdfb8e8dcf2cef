/*
 * owner.c - the shop owner's commands.
 *
 * A sender is an owner when their wa_id is in tenant.owner_numbers
 * (erp__is_owner, parse.c). Owners can also use every customer command.
 *
 *   add stock <qty> <item>   store_stock_move(+delta, "restock", inbox id)
 *   price <item> <rupees>    store_product_set_price ("62.50" → 6250 paise)
 *   low stock                store_products_low, below 10 selling units
 *   sales today              store_sales_since 00:00 IST today
 *   broadcast <text>         erp_broadcast (broadcast.c): P3 rows to the
 *                            shop's customers of the last 30 days
 *   paid <order>             store_order_set_paid, and a P0 "payment
 *                            received" to the customer who ordered
 *
 * Every change writes an audit row (actor: the owner's wa_id) in the same
 * transaction. Runs inside the caller's transaction; replies PRIO_P2.
 *
 * "paid" accepts a CONFIRMED order (it has its invoice, whose total is the
 * amount due) that is not marked paid yet; the guarded update in the store
 * is the gate, so a second "paid" changes nothing and says when it was
 * marked. Unknown, draft and cancelled orders are refused with a reply.
 */
#include <inttypes.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "erp/erp_internal.h"
#include "send/wamsg.h"

/* Low stock: fewer than this many selling units on hand. */
#define OWNER_LOW_STOCK_UNITS 10
/* At most this many products listed in the low-stock reply. */
#define OWNER_LOW_STOCK_LIST 30

/* Matches the single item of an owner command; replies and returns NULL
 * when it does not name exactly one product. */
static const struct product *owner_item(struct erp_ctx *x, const struct erp_cmd *cmd,
                                        const char *usage, int *rc)
{
	struct erp_match m;
	struct buf b;

	*rc = erp__load_catalog(x);
	if (*rc < 0)
		return NULL;
	if (cmd->err || cmd->nitems != 1) {
		buf_init(&b);
		switch (cmd->err) {
		case ERP_PERR_QTY_ZERO:
			buf_puts(&b, "The quantity must be more than zero. ");
			break;
		case ERP_PERR_QTY_BIG: buf_puts(&b, "That quantity is too large. "); break;
		case ERP_PERR_PRICE_BAD:
			buf_puts(&b, "I couldn't read the price (rupees, at most 2 decimals). ");
			break;
		default: break;
		}
		buf_printf(&b, "Type: %s", usage);
		erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
		return NULL;
	}
	erp__match(&x->cat, cmd->items[0].words, cmd->items[0].nwords, &m);
	if (m.kind != ERP_MATCH_ONE) {
		buf_init(&b);
		erp__explain_nomatch(x, &b, &cmd->items[0], &m);
		erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
		return NULL;
	}
	return m.product;
}

int erp__owner_add_stock(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	const struct erp_item *it = &cmd->items[0];
	struct erp_qty one = {1000, NULL};
	int64_t qb, after;
	struct buf b;
	int rc;

	const struct product *p =
	        owner_item(x, cmd, "add stock <qty> <item>, e.g. add stock 50 kg rice", &rc);
	if (!p)
		return rc;
	rc = erp__qty_to_base(it->has_qty ? &it->qty : &one, p->unit, p->base_per_unit, &qb);
	if (rc < 0) {
		buf_init(&b);
		erp__explain_qty(x, &b, it, p, rc);
		erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
		return 0;
	}
	rc = store_stock_move(x->c, x->t->id, p->id, qb, "restock", x->e->id, &after);
	if (rc < 0)
		return rc;
	rc = store_audit(x->c, x->t->id, x->e->from, "stock.add",
	                 arena_sprintf(x->a, "product %" PRId64 " %s +%" PRId64 " stock %" PRId64,
	                               p->id, p->sku ? p->sku : "", qb, after));
	if (rc < 0)
		return rc;
	buf_init(&b);
	buf_puts(&b, "Added ");
	erp__fmt_qty(&b, qb, p->base_per_unit, p->unit);
	buf_printf(&b, " to %s. Stock now ", erp__clean(x->a, p->name, ERP_NAME_MAX));
	erp__fmt_qty(&b, after, p->base_per_unit, p->unit);
	buf_putc(&b, '.');
	erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
	return 0;
}

int erp__owner_set_price(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	struct buf b;
	int rc;

	const struct product *p =
	        owner_item(x, cmd, "price <item> <rupees>, e.g. price rice 62.50", &rc);
	if (!p)
		return rc;
	rc = store_product_set_price(x->c, x->t->id, p->id, cmd->price_paise);
	if (rc < 0)
		return rc;
	rc = store_audit(x->c, x->t->id, x->e->from, "price.set",
	                 arena_sprintf(x->a, "product %" PRId64 " %s %" PRId64 " -> %" PRId64,
	                               p->id, p->sku ? p->sku : "", p->price_paise,
	                               cmd->price_paise));
	if (rc < 0)
		return rc;
	buf_init(&b);
	buf_printf(&b, "%s price set to ", erp__clean(x->a, p->name, ERP_NAME_MAX));
	erp__fmt_money(&b, cmd->price_paise);
	buf_printf(&b, " per %s (was ", erp__unit_label(p->unit, 0));
	erp__fmt_money(&b, p->price_paise);
	buf_puts(&b, "), before GST.");
	erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
	return 0;
}

int erp__owner_low_stock(struct erp_ctx *x)
{
	struct product *p;
	struct buf b;
	int n, rc;

	rc = store_products_low(x->c, x->t->id, OWNER_LOW_STOCK_UNITS, x->a, &p, &n);
	if (rc < 0)
		return rc;
	buf_init(&b);
	if (n == 0) {
		buf_printf(&b, "No item is below %d units. All good!", OWNER_LOW_STOCK_UNITS);
	} else {
		buf_printf(&b, "Low stock (below %d units):", OWNER_LOW_STOCK_UNITS);
		for (int i = 0; i < n && i < OWNER_LOW_STOCK_LIST; i++) {
			buf_printf(&b, "\n\xE2\x80\xA2 %s: ",
			           erp__clean(x->a, p[i].name, ERP_NAME_MAX));
			erp__fmt_qty(&b, p[i].stock, p[i].base_per_unit, p[i].unit);
		}
		if (n > OWNER_LOW_STOCK_LIST)
			buf_printf(&b, "\n\xE2\x80\xA6 and %d more", n - OWNER_LOW_STOCK_LIST);
		buf_puts(&b, "\nTo restock, type e.g. \"add stock 50 kg rice\".");
	}
	erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
	return 0;
}

int erp__owner_sales_today(struct erp_ctx *x)
{
	int64_t orders = 0, taxable = 0, total = 0;
	struct buf b;
	int64_t since = clock_ist_day_start(x->now);
	int rc = store_sales_since(x->c, x->t->id, since, &orders, &taxable, &total);
	if (rc < 0)
		return rc;
	buf_init(&b);
	buf_puts(&b, "Sales today (");
	erp__fmt_date(&b, x->now);
	buf_puts(&b, "): ");
	erp__fmt_int(&b, orders);
	buf_printf(&b, " confirmed order%s", orders == 1 ? "" : "s");
	if (orders > 0) {
		buf_puts(&b, ", taxable ");
		erp__fmt_money(&b, taxable);
		buf_puts(&b, ", total with GST ");
		erp__fmt_money(&b, total);
	}
	buf_putc(&b, '.');
	erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
	return 0;
}

/* ---- broadcast ---------------------------------------------------------------- */

static const char *plural(int64_t n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

int erp__owner_broadcast(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	struct erp_broadcast bc;
	struct buf b;
	int rc = erp_broadcast(x->c, x->t, x->e->from, cmd->text, x->now, x->a, &bc);
	if (rc == ERR_INVAL) {
		erp__reply(
		        x, PRIO_P2,
		        "Type: broadcast <your message>, e.g. broadcast Diwali offer: 10% off on "
		        "all sweets till Sunday!");
		return 0;
	}
	if (rc < 0)
		return rc;
	if (bc.paused) {
		erp__reply(
		        x, PRIO_P2,
		        "WhatsApp traffic is at its peak right now, so new broadcasts are paused. "
		        "Please send it again in a few minutes.");
		return 0;
	}
	x->out->queued[PRIO_P3] += bc.queued;

	buf_init(&b);
	if (bc.queued == 0 && bc.skipped_no_template == 0 && bc.skipped_opted_out == 0 &&
	    bc.skipped_unaddressable == 0) {
		buf_printf(&b,
		           "Nobody to send to: no customer has written to the shop in the last "
		           "%d days.",
		           ERP_BROADCAST_DAYS);
	} else {
		buf_puts(&b, "Broadcast queued to ");
		erp__fmt_int(&b, bc.queued);
		buf_printf(&b, " %s: ", plural(bc.queued, "customer", "customers"));
		erp__fmt_int(&b, bc.as_text);
		buf_puts(&b, " as a message");
		if (bc.template_name[0]) {
			buf_puts(&b, ", ");
			erp__fmt_int(&b, bc.by_template);
			buf_printf(&b, " by template \"%s\"",
			           erp__clean(x->a, bc.template_name, ERP_NAME_MAX));
		}
		if (bc.skipped_no_template > 0) {
			buf_puts(&b, "; ");
			erp__fmt_int(&b, bc.skipped_no_template);
			buf_puts(&b,
			         " outside the 24-hour window skipped because no template is set "
			         "(munim tenant set --template)");
		}
		buf_putc(&b, '.');
		if (bc.skipped_opted_out > 0) {
			buf_putc(&b, ' ');
			erp__fmt_int(&b, bc.skipped_opted_out);
			buf_printf(&b, " %s opted out %s left out.",
			           plural(bc.skipped_opted_out, "customer who", "customers who"),
			           plural(bc.skipped_opted_out, "was", "were"));
		}
		if (bc.skipped_unaddressable > 0) {
			buf_putc(&b, ' ');
			erp__fmt_int(&b, bc.skipped_unaddressable);
			buf_printf(&b, " without a phone number %s skipped.",
			           plural(bc.skipped_unaddressable, "was", "were"));
		}
	}
	if (bc.clipped)
		buf_printf(&b, " Your text was cut to %d characters.", ERP_BROADCAST_TEXT_MAX);
	erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
	return 0;
}

/* ---- paid ------------------------------------------------------------------------- */

/* The owner's reply about order `id` that cannot be marked paid. */
static int paid_refused(struct erp_ctx *x, int64_t id, const char *why)
{
	erp__reply(x, PRIO_P2, arena_sprintf(x->a, "Order #%" PRId64 " %s", id, why));
	return 0;
}

int erp__owner_paid(struct erp_ctx *x, const struct erp_cmd *cmd)
{
	struct order o;
	struct invoice inv;
	struct customer cu;
	struct buf b;
	int64_t id = cmd->order_id, paid_at = 0;
	int rc;

	if (id <= 0) {
		erp__reply(x, PRIO_P2, "Type: paid <order number>, e.g. paid 42");
		return 0;
	}
	rc = store_order_get(x->c, x->t->id, id, x->a, &o);
	if (rc == ERR_NOTFOUND) {
		erp__reply(x, PRIO_P2,
		           arena_sprintf(x->a, "Sorry, there is no order #%" PRId64 ".", id));
		return 0;
	}
	if (rc < 0)
		return rc;
	if (o.status == ORDER_CANCELLED)
		return paid_refused(x, id, "was cancelled, so it can't be marked paid.");
	if (o.status == ORDER_DRAFT)
		return paid_refused(x, id,
		                    "is still a draft: it can be marked paid once the customer "
		                    "confirms it.");
	rc = store_invoice_by_order(x->c, x->t->id, id, x->a, &inv);
	if (rc == ERR_NOTFOUND)
		return paid_refused(x, id, "has no invoice, so there is no amount to mark paid.");
	if (rc < 0)
		return rc;

	/* the gate: a second "paid" stops here */
	rc = store_order_set_paid(x->c, x->t->id, id, x->now, &paid_at);
	if (rc == ERR_CONFLICT) {
		buf_init(&b);
		buf_printf(&b, "Order #%" PRId64 " is already marked paid", id);
		if (paid_at > 0) {
			buf_puts(&b, " (");
			erp__fmt_date(&b, paid_at);
			buf_putc(&b, ')');
		}
		buf_puts(&b, ". Nothing changed.");
		erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
		return 0;
	}
	if (rc < 0)
		return rc;
	rc = store_audit(x->c, x->t->id, x->e->from, "order.paid",
	                 arena_sprintf(x->a, "order %" PRId64 " invoice %s total %" PRId64, id,
	                               inv.number, inv.total_paise));
	if (rc < 0)
		return rc;

	/* the customer who ordered hears of it first (P0: payment received) */
	int told = 0;
	rc = store_customer_get(x->c, x->t->id, o.customer_id, x->a, &cu);
	if (rc < 0 && rc != ERR_NOTFOUND)
		return rc;
	if (rc == 0 && erp__addressable(cu.wa_id)) {
		buf_init(&b);
		buf_puts(&b, "Payment of ");
		erp__fmt_money(&b, inv.total_paise);
		buf_printf(&b, " received for order #%" PRId64 ". Thank you!", id);
		const char *text = erp__finish(x->a, &b, ERP_TEXT_MAX);
		rc = erp__queue(x, PRIO_P0, cu.wa_id, wamsg_text(x->a, cu.wa_id, NULL, text));
		if (rc < 0)
			return rc;
		told = 1;
	}

	buf_init(&b);
	buf_printf(&b, "Order #%" PRId64 " marked paid: ", id);
	erp__fmt_money(&b, inv.total_paise);
	buf_printf(&b, " (invoice %s). ", erp__clean(x->a, inv.number, 40));
	if (told)
		buf_puts(&b, "The customer has been told.");
	else
		buf_puts(&b, "The customer could not be told on WhatsApp (no phone number).");
	erp__reply(x, PRIO_P2, erp__finish(x->a, &b, ERP_TEXT_MAX));
	return 0;
}
