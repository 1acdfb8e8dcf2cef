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
 *
 * Every change writes an audit row (actor: the owner's wa_id) in the same
 * transaction. Runs inside the caller's transaction; replies PRIO_P2.
 */
#include <inttypes.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "erp/erp_internal.h"

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
