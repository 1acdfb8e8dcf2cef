/*
 * test_erp_flow.c - erp_handle against a real SQLite store in a temporary
 * file: one shop, a small catalogue, customers and an owner writing to it.
 * Each message runs between store_begin and store_commit, as the worker
 * runs it; the tests check the replies and what the store holds after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "erp/erp.h"
#include "erp/erp_internal.h"
#include "store/store.h"

#include "erp_fixture.h"

#define OWNER "919000000001"

static int setup(void **state)
{
	setup_erp(state, "erp-flow");
	clock_set_fake(NOW_MS);
	return 0;
}

static int teardown(void **state)
{
	clock_set_fake(-1);
	return teardown_erp(state);
}

static const char *say(struct fx *f, const char *from, const char *body)
{
	assert_int_equal(say_as(f, from, "text", body, 0), 0);
	assert_int_equal(f->r.nreplies, 1);
	return f->r.replies[0].text;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (!strstr(hay, needle))
		fail_msg("\"%s\" not found in reply:\n%s", needle, hay);
}

static void assert_lacks(const char *hay, const char *needle)
{
	if (strstr(hay, needle))
		fail_msg("\"%s\" unexpectedly in reply:\n%s", needle, hay);
}

static struct product product(struct fx *f, int i)
{
	struct product p;
	assert_int_equal(store_product_get(f->c, f->t.id, f->pid[i], &f->a, &p), 0);
	return p;
}

static int64_t stock_of(struct fx *f, int i)
{
	return product(f, i).stock;
}

/* The ledger invariant: every product's stock is the sum of its moves. */
static void assert_ledger(struct fx *f)
{
	for (int i = 0; i < NPROD; i++) {
		int64_t sum;
		assert_int_equal(store_ledger_sum(f->c, f->t.id, f->pid[i], &sum), 0);
		assert_int_equal(sum, stock_of(f, i));
	}
}

static int64_t customer_id(struct fx *f, const char *wa)
{
	struct customer cu;
	assert_int_equal(store_customer_touch(f->c, f->t.id, wa, "", NOW_MS, &f->a, &cu), 0);
	return cu.id;
}

/* The order id of the draft reply's Confirm button. */
static int64_t draft_id(struct fx *f)
{
	const struct erp_reply *rp = &f->r.replies[0];
	assert_int_equal(rp->kind, ERP_REPLY_BUTTONS);
	assert_int_equal(rp->nbuttons, 2);
	assert_string_equal(rp->buttons[0].title, "Confirm");
	assert_string_equal(rp->buttons[1].title, "Cancel");
	assert_memory_equal(rp->buttons[0].id, ERP_BTN_CONFIRM_PREFIX,
	                    strlen(ERP_BTN_CONFIRM_PREFIX));
	int64_t id = strtoll(rp->buttons[0].id + strlen(ERP_BTN_CONFIRM_PREFIX), NULL, 10);
	char want[40];
	snprintf(want, sizeof(want), "%s%lld", ERP_BTN_CANCEL_PREFIX, (long long)id);
	assert_string_equal(rp->buttons[1].id, want);
	assert_true(id > 0);
	return id;
}

static const char *tap(struct fx *f, const char *from, const char *prefix, int64_t id)
{
	char body[48];
	snprintf(body, sizeof(body), "%s%lld", prefix, (long long)id);
	assert_int_equal(say_as(f, from, "interactive", body, 0), 0);
	assert_int_equal(f->r.nreplies, 1);
	return f->r.replies[0].text;
}

static enum order_status status_of(struct fx *f, int64_t id)
{
	struct order o;
	assert_int_equal(store_order_get(f->c, f->t.id, id, &f->a, &o), 0);
	return o.status;
}

/* ---- menu ----------------------------------------------------------------------- */

static void test_menu(void **state)
{
	struct fx *f = *state;
	static const char *const greet[] = {"hi",        "Hello!",         "MENU", "help",
	                                    "Namaste 🙏", "what is this??", NULL};
	for (int i = 0; greet[i]; i++) {
		say(f, CUSTOMER, greet[i]);
		const struct erp_reply *rp = &f->r.replies[0];
		assert_menu_buttons(rp);
		assert_int_equal(rp->priority, PRIO_P2);
		assert_contains(rp->text, "Sharma Kirana & Sons");
		assert_contains(rp->text, "Asha");
		assert_contains(rp->text, "\"stock atta\" or \"order 2 kg atta\"");
	}

	/* the buttons: how to type the command, with the shop's own items */
	assert_int_equal(say_as(f, CUSTOMER, "interactive", ERP_BTN_STOCK, 0), 0);
	assert_contains(f->r.replies[0].text, "stock atta");
	assert_int_equal(say_as(f, CUSTOMER, "interactive", ERP_BTN_ORDER, 0), 0);
	assert_contains(f->r.replies[0].text, "order 2 kg atta, 1 packet maggi noodles");
	assert_int_equal(say_as(f, CUSTOMER, "button", ERP_BTN_INVOICE, 0), 0);
	assert_contains(f->r.replies[0].text, "no invoices yet");
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);

	/* what we cannot read: polite, with the menu (photos and documents are
	 * queued for reading instead: test_ai.c) */
	static const char *const types[] = {"location", "order", "sticker", "", NULL};
	for (int i = 0; types[i]; i++) {
		assert_int_equal(say_as(f, CUSTOMER, types[i], "", 0), 0);
		assert_int_equal(f->r.nreplies, 1);
		assert_int_equal(f->r.replies[0].kind, ERP_REPLY_BUTTONS);
		assert_contains(f->r.replies[0].text, "only read text messages and button taps");
	}
	assert_int_equal(say_as(f, CUSTOMER, NULL, NULL, 0), 0);
	assert_int_equal(f->r.replies[0].kind, ERP_REPLY_BUTTONS);
}

static void test_bad_entries(void **state)
{
	struct fx *f = *state;
	struct inbox_entry e;
	memset(&e, 0, sizeof(e));
	e.kind = INBOX_STATUS;
	e.from = CUSTOMER;
	/* ERR_INVAL: a status entry is not a message; missing arguments */
	assert_int_equal(erp_handle(f->c, f->cache, &f->t, &e, &f->a, &f->r), ERR_INVAL);
	e.kind = INBOX_MESSAGE;
	assert_int_equal(erp_handle(NULL, f->cache, &f->t, &e, &f->a, &f->r), ERR_INVAL);
	assert_int_equal(erp_handle(f->c, NULL, &f->t, &e, &f->a, &f->r), ERR_INVAL);
	assert_int_equal(erp_handle(f->c, f->cache, &f->t, &e, &f->a, NULL), ERR_INVAL);
	/* no sender (a username-only contact): nothing to answer */
	e.from = "";
	e.type = "text";
	e.body = "hi";
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(erp_handle(f->c, f->cache, &f->t, &e, &f->a, &f->r), 0);
	assert_int_equal(store_rollback(f->c), 0);
	assert_int_equal(f->r.nreplies, 0);
}

/* ---- stock --------------------------------------------------------------------- */

/* The worker's catalogue cache: a second look at the same shop reads no
 * catalogue, and anything that changes a product - a confirmed order, a new
 * product written by another connection, a price - is seen at once. */
static void test_catalog_cache_follows_changes(void **state)
{
	struct fx *f = *state;
	struct erp_cache_stats s0 = erp_cache_stats(f->cache);
	assert_contains(say(f, CUSTOMER, "stock rice"), "1,000 kg available");
	assert_contains(say(f, CUSTOMER, "stock rice"), "1,000 kg available");
	struct erp_cache_stats s1 = erp_cache_stats(f->cache);
	assert_int_equal(s1.misses - s0.misses, 1);
	assert_int_equal(s1.hits - s0.hits, 1);

	/* an order moves stock: the next answer has the new figure */
	say(f, CUSTOMER, "order 2 kg rice");
	int64_t id = draft_id(f);
	tap(f, CUSTOMER, ERP_BTN_CONFIRM_PREFIX, id);
	assert_contains(say(f, CUSTOMER, "stock rice"), "998 kg available");

	/* a product added by another connection (the `product add` command) */
	struct store_conn *other;
	int64_t pid;
	struct product p = {.tenant_id = f->t.id,
	                    .sku = "GHEE",
	                    .name = "Desi Ghee",
	                    .aliases = "",
	                    .unit = "kg",
	                    .base_per_unit = 1000,
	                    .price_paise = 60000,
	                    .gst_rate_bp = 1200,
	                    .hsn = "0405"};
	assert_int_equal(store_connect(f->st, &other), 0);
	assert_int_equal(store_product_upsert(other, &p, &pid), 0);
	assert_int_equal(store_stock_move(other, f->t.id, pid, 3000, "purchase", 0, NULL), 0);
	assert_contains(say(f, CUSTOMER, "stock ghee"), "Desi Ghee: in stock, 3 kg available");
	assert_int_equal(store_product_set_price(other, f->t.id, pid, 65000), 0);
	assert_contains(say(f, CUSTOMER, "price ghee"), "₹650.00 per kg");
	store_disconnect(other);

	/* cleared (as after a rollback): read again, same answer */
	erp_cache_clear(f->cache);
	struct erp_cache_stats s2 = erp_cache_stats(f->cache);
	assert_contains(say(f, CUSTOMER, "stock rice"), "998 kg available");
	assert_int_equal(erp_cache_stats(f->cache).misses - s2.misses, 1);
}

static void test_stock(void **state)
{
	struct fx *f = *state;
	const char *r = say(f, CUSTOMER, "stock rice");
	assert_string_equal(r, "Rice: in stock, 1,000 kg available. ₹60.00 per kg + 5% GST");
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);
	assert_int_equal(f->r.replies[0].kind, ERP_REPLY_TEXT);
	assert_contains(say(f, CUSTOMER, "chawal hai?"), "Rice: in stock");
	assert_contains(say(f, CUSTOMER, "check cheeni"), "Sugar: in stock, 5 kg available");
	assert_contains(say(f, CUSTOMER, "price aata"), "Atta: in stock, 50 kg available. ₹40.00 "
	                                                "per kg");
	assert_lacks(f->r.replies[0].text, "GST"); /* 0 % */
	assert_contains(say(f, CUSTOMER, "stock rcie"), "Rice: in stock");
	assert_contains(say(f, CUSTOMER, "stock maggi"), "100 packets available. ₹14.00 per "
	                                                 "packet + 18% GST");
	r = say(f, CUSTOMER, "stock xyzzy");
	assert_contains(r, "Sorry, we don't sell \"xyzzy\". Some things we have: Atta, ");
	r = say(f, CUSTOMER, "stock brown rice");
	assert_contains(r, "Sorry, we don't sell \"brown rice\". Did you mean: Rice");
	r = say(f, CUSTOMER, "stock rice, dal");
	assert_contains(r, "Rice: in stock");
	assert_contains(r, "Toor Dal: in stock, 3 kg available");
}

/* ---- order → confirm ---------------------------------------------------------------- */

static void test_order_confirm(void **state)
{
	struct fx *f = *state;
	const char *r = say(f, CUSTOMER, "order 2 kg chawal, 500 g dal and 2 packet maggi");
	int64_t id = draft_id(f);
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);
	assert_contains(r, "• Rice: 2 kg × ₹60.00 = ₹120.00");
	assert_contains(r, "• Toor Dal: 0.5 kg × ₹110.00 = ₹55.00");
	assert_contains(r, "• Maggi Noodles: 2 packets × ₹14.00 = ₹28.00");
	/* taxable 203.00; CGST = SGST = 3.00 + 1.38 + 2.52 = 6.90; 216.80 → 217 */
	assert_contains(r, "Taxable value: ₹203.00");
	assert_contains(r, "GST: ₹13.80");
	assert_contains(r, "Round off: +₹0.20");
	assert_contains(r, "Total: ₹217.00");

	/* the draft is in the store, prices frozen; no stock moved */
	struct order o;
	assert_int_equal(store_order_get(f->c, f->t.id, id, &f->a, &o), 0);
	assert_int_equal(o.status, ORDER_DRAFT);
	assert_int_equal(o.customer_id, customer_id(f, CUSTOMER));
	assert_int_equal(o.nlines, 3);
	assert_int_equal(o.total_paise, 20300);
	int64_t amt = 0;
	for (int i = 0; i < o.nlines; i++) {
		amt += o.lines[i].amount_paise;
		if (o.lines[i].product_id == f->pid[P_DAL]) {
			assert_int_equal(o.lines[i].qty_base, 500);
			assert_int_equal(o.lines[i].price_paise, 11000);
			assert_int_equal(o.lines[i].gst_rate_bp, 500);
			assert_string_equal(o.lines[i].hsn, "0713");
		}
	}
	assert_int_equal(amt, 20300);
	assert_int_equal(stock_of(f, P_RICE), 1000000);
	assert_int_equal(stock_of(f, P_DAL), 3000);

	/* Confirm: stock out by exactly the ordered base units, invoice 1 */
	r = tap(f, CUSTOMER, ERP_BTN_CONFIRM_PREFIX, id);
	assert_int_equal(f->r.replies[0].priority, PRIO_P1);
	assert_int_equal(f->r.replies[0].kind, ERP_REPLY_TEXT);
	assert_contains(r, "Order #");
	assert_contains(r, "confirmed");
	assert_contains(r, "Tax invoice INV/2627/000001, 27 Nov 2026");
	assert_contains(r, "GSTIN 27ABCDE1234F1Z5");
	assert_contains(r, "• Rice (HSN 1006): 2 kg × ₹60.00 = ₹120.00, GST 5%");
	assert_contains(r, "CGST: ₹6.90\nSGST: ₹6.90\n");
	assert_contains(r, "Round off: +₹0.20\nTotal: ₹217.00");
	assert_contains(r, "upi://pay?pa=sharma%40okaxis&pn=Sharma%20Kirana%20%26%20Sons"
	                   "&am=217.00&cu=INR&tn=INV%2F2627%2F000001&tr=INV%2F2627%2F000001");
	assert_int_equal(status_of(f, id), ORDER_CONFIRMED);
	assert_int_equal(stock_of(f, P_RICE), 1000000 - 2000);
	assert_int_equal(stock_of(f, P_DAL), 3000 - 500);
	assert_int_equal(stock_of(f, P_MAGGI), 100 - 2);
	assert_ledger(f);

	struct invoice inv;
	assert_int_equal(store_invoice_by_order(f->c, f->t.id, id, &f->a, &inv), 0);
	assert_string_equal(inv.number, "INV/2627/000001");
	assert_string_equal(inv.fy, "2627");
	assert_int_equal(inv.seq, 1);
	assert_int_equal(inv.intra_state, 1);
	assert_string_equal(inv.place_of_supply, "27");
	assert_int_equal(inv.taxable_paise, 20300);
	assert_int_equal(inv.cgst_paise, 690);
	assert_int_equal(inv.sgst_paise, 690);
	assert_int_equal(inv.igst_paise, 0);
	assert_int_equal(inv.round_off_paise, 20);
	assert_int_equal(inv.total_paise, 21700);
	assert_int_equal(inv.issued_at, NOW_MS);

	/* a second Confirm of the same order: polite, nothing moves */
	r = tap(f, CUSTOMER, ERP_BTN_CONFIRM_PREFIX, id);
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);
	assert_contains(r, "already confirmed (invoice INV/2627/000001, total ₹217.00)");
	assert_int_equal(stock_of(f, P_RICE), 1000000 - 2000);
	assert_int_equal(stock_of(f, P_DAL), 3000 - 500);
	assert_ledger(f);
	/* and "yes" now finds no draft */
	assert_contains(say(f, CUSTOMER, "yes"), "no draft order to confirm");

	/* the next order by text "haan": invoice 2 */
	say(f, CUSTOMER, "order rice 1.5kg");
	int64_t id2 = draft_id(f);
	assert_true(id2 != id);
	r = say(f, CUSTOMER, "haan");
	assert_int_equal(f->r.replies[0].priority, PRIO_P1);
	assert_contains(r, "INV/2627/000002");
	assert_int_equal(stock_of(f, P_RICE), 1000000 - 2000 - 1500);
	assert_ledger(f);

	/* invoice and status */
	r = say(f, CUSTOMER, "invoice");
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);
	assert_contains(r, "INV/2627/000002");
	assert_contains(r, "Rice (HSN 1006): 1.5 kg");
	r = say(f, CUSTOMER, "status");
	assert_contains(r, "is confirmed: invoice INV/2627/000002 of 27 Nov 2026");
}

static void test_order_forms(void **state)
{
	struct fx *f = *state;
	const char *r = say(f, CUSTOMER, "order 2 rice");
	assert_contains(r, "Rice: 2 kg × ₹60.00 = ₹120.00");
	r = say(f, CUSTOMER, "order 0.5kg rice and 250 gm rice");
	assert_contains(r, "Rice: 0.75 kg × ₹60.00 = ₹45.00"); /* merged into one line */
	r = say(f, CUSTOMER, "order 1 dozen maggi");
	assert_contains(r, "Maggi Noodles: 12 packets");
	/* the same customer may hold several drafts; "status" shows the last */
	r = say(f, CUSTOMER, "status");
	assert_int_equal(f->r.replies[0].kind, ERP_REPLY_BUTTONS);
	assert_contains(r, "waiting for your confirmation");
	assert_contains(r, "12 packets");
}

static void test_order_refusals(void **state)
{
	struct fx *f = *state;
	struct order o;
	int64_t cid = customer_id(f, CUSTOMER);

	/* unit of another family */
	const char *r = say(f, CUSTOMER, "order 2 litre rice");
	assert_contains(r, "Rice is sold by the kilo, not by the litre");
	/* unknown item: suggestions, no draft */
	r = say(f, CUSTOMER, "order 2 kg xyzzy, 1 kg rice");
	assert_contains(r, "Sorry, we don't sell \"xyzzy\". Some things we have:");
	assert_contains(r, "No order was made");
	r = say(f, CUSTOMER, "order 2 kg brown rice");
	assert_contains(r, "Did you mean: Rice");
	/* short stock: what is left, no draft */
	r = say(f, CUSTOMER, "order 5 kg dal");
	assert_contains(r, "Sorry, only 3 kg of Toor Dal left.");
	/* bad quantities */
	assert_contains(say(f, CUSTOMER, "order 0 kg rice"), "more than zero");
	assert_contains(say(f, CUSTOMER, "order 0.5 maggi"), "steps of 1 packet");
	assert_contains(say(f, CUSTOMER, "order 123456789 kg rice"), "can't read that quantity");
	assert_contains(say(f, CUSTOMER, "order 200000 kg rice"), "more Rice than one order");
	assert_contains(say(f, CUSTOMER, "order 2 kg"), "name the item");
	char big[400] = "order";
	for (int i = 0; i <= ERP_MAX_ORDER_LINES; i++)
		strcat(big, " 1 kg rice,");
	assert_contains(say(f, CUSTOMER, big), "at most 20 items");
	assert_int_equal(store_order_last(f->c, f->t.id, cid, &f->a, &o), ERR_NOTFOUND);
	assert_int_equal(stock_of(f, P_RICE), 1000000);
	assert_ledger(f);
}

/* ---- cancel, short stock at confirm, someone else's order --------------------------------- */

static void test_cancel(void **state)
{
	struct fx *f = *state;
	say(f, CUSTOMER, "order 2 kg rice");
	int64_t id = draft_id(f);
	const char *r = say(f, CUSTOMER, "cancel");
	assert_contains(r, "is cancelled");
	assert_int_equal(status_of(f, id), ORDER_CANCELLED);
	/* Confirm after Cancel: polite, nothing moves */
	r = tap(f, CUSTOMER, ERP_BTN_CONFIRM_PREFIX, id);
	assert_contains(r, "was cancelled, so it can't be confirmed");
	assert_int_equal(status_of(f, id), ORDER_CANCELLED);
	r = tap(f, CUSTOMER, ERP_BTN_CANCEL_PREFIX, id);
	assert_contains(r, "already cancelled");
	assert_contains(say(f, CUSTOMER, "no"), "no draft order to cancel");
	assert_int_equal(stock_of(f, P_RICE), 1000000);

	/* Cancel after Confirm is refused */
	say(f, CUSTOMER, "order 1 kg rice");
	int64_t id2 = draft_id(f);
	tap(f, CUSTOMER, ERP_BTN_CONFIRM_PREFIX, id2);
	r = tap(f, CUSTOMER, ERP_BTN_CANCEL_PREFIX, id2);
	assert_contains(r, "already confirmed");
	assert_contains(r, "can't be cancelled");
	assert_int_equal(status_of(f, id2), ORDER_CONFIRMED);
	assert_int_equal(stock_of(f, P_RICE), 999000);
	assert_ledger(f);
}

static void test_short_stock_at_confirm(void **state)
{
	struct fx *f = *state;
	/* both draft 2 kg of the 3 kg of dal: drafts do not reserve stock */
	say(f, CUSTOMER, "order 2 kg dal");
	int64_t mine = draft_id(f);
	say(f, OTHER, "order 2 kg arhar");
	int64_t theirs = draft_id(f);
	assert_contains(tap(f, OTHER, ERP_BTN_CONFIRM_PREFIX, theirs), "INV/2627/000001");
	assert_int_equal(stock_of(f, P_DAL), 1000);

	const char *r = tap(f, CUSTOMER, ERP_BTN_CONFIRM_PREFIX, mine);
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);
	assert_contains(r, "Sorry, only 1 kg of Toor Dal left now.");
	assert_contains(r, "still a draft");
	assert_int_equal(status_of(f, mine), ORDER_DRAFT);
	assert_int_equal(stock_of(f, P_DAL), 1000);
	assert_ledger(f);
	struct invoice inv;
	assert_int_equal(store_invoice_by_order(f->c, f->t.id, mine, &f->a, &inv), ERR_NOTFOUND);
}

static void test_not_your_order(void **state)
{
	struct fx *f = *state;
	say(f, CUSTOMER, "order 1 kg rice");
	int64_t id = draft_id(f);
	const char *r = tap(f, OTHER, ERP_BTN_CONFIRM_PREFIX, id);
	assert_contains(r, "couldn't find order");
	r = tap(f, OTHER, ERP_BTN_CANCEL_PREFIX, id);
	assert_contains(r, "couldn't find order");
	assert_int_equal(status_of(f, id), ORDER_DRAFT);
	r = tap(f, CUSTOMER, ERP_BTN_CONFIRM_PREFIX, 999999);
	assert_contains(r, "couldn't find order #999999");
	assert_int_equal(stock_of(f, P_RICE), 1000000);
}

static void test_inter_state(void **state)
{
	struct fx *f = *state;
	say(f, OTHER, "hi");
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_customer_set_state(f->c, f->t.id, OTHER, "29"), 0);
	assert_int_equal(store_commit(f->c), 0);
	say(f, OTHER, "order 2 kg rice");
	const char *r = say(f, OTHER, "confirm");
	assert_contains(r, "IGST: ₹6.00 (place of supply: state 29)");
	assert_lacks(r, "CGST");
	struct invoice inv;
	assert_int_equal(store_invoice_last(f->c, f->t.id, customer_id(f, OTHER), &f->a, &inv), 0);
	assert_int_equal(inv.intra_state, 0);
	assert_string_equal(inv.place_of_supply, "29");
	assert_int_equal(inv.igst_paise, 600);
	assert_int_equal(inv.cgst_paise + inv.sgst_paise, 0);
	assert_int_equal(inv.total_paise, 12600);
}

/* ---- owner -------------------------------------------------------------------------- */

static void test_owner(void **state)
{
	struct fx *f = *state;
	const char *r = say(f, OWNER, "add stock 10 kg sugar");
	assert_string_equal(r, "Added 10 kg to Sugar. Stock now 15 kg.");
	assert_int_equal(stock_of(f, P_SUGAR), 15000);
	r = say(f, OWNER, "add stock 500 g cheeni");
	assert_contains(r, "Stock now 15.5 kg");
	assert_contains(say(f, OWNER, "add stock 2 litre sugar"), "sold by the kilo");
	assert_contains(say(f, OWNER, "add stock 5 kg xyzzy"), "we don't sell");
	assert_contains(say(f, OWNER, "add stock"), "Type: add stock");
	assert_int_equal(stock_of(f, P_SUGAR), 15500);
	assert_ledger(f);

	r = say(f, OWNER, "price rice 62.50");
	assert_contains(r, "Rice price set to ₹62.50 per kg (was ₹60.00)");
	assert_int_equal(product(f, P_RICE).price_paise, 6250);
	assert_contains(say(f, OWNER, "price rice 62.505"), "couldn't read the price");
	assert_int_equal(product(f, P_RICE).price_paise, 6250);
	/* the new price is what a new draft freezes */
	assert_contains(say(f, CUSTOMER, "order 2 kg rice"), "2 kg × ₹62.50 = ₹125.00");

	r = say(f, OWNER, "low stock");
	assert_contains(r, "Toor Dal: 3 kg");
	assert_lacks(r, "Sugar");
	assert_lacks(r, "Rice");

	r = say(f, OWNER, "sales today");
	assert_contains(r, "0 confirmed orders");
	say(f, CUSTOMER, "yes");
	r = say(f, OWNER, "sales today");
	assert_contains(r, "Sales today (27 Nov 2026): 1 confirmed order, taxable ₹125.00, "
	                   "total with GST ₹131.00.");

	/* owners can use customer commands too */
	assert_contains(say(f, OWNER, "stock rice"), "Rice: in stock");
}

static void test_not_owner(void **state)
{
	struct fx *f = *state;
	const char *r = say(f, CUSTOMER, "add stock 10 kg sugar");
	assert_contains(r, "only for the shop owner");
	assert_int_equal(stock_of(f, P_SUGAR), 5000);
	r = say(f, CUSTOMER, "price rice 1");
	assert_contains(r, "Rice: in stock"); /* read as a question */
	assert_int_equal(product(f, P_RICE).price_paise, 6000);
	assert_contains(say(f, CUSTOMER, "low stock"), "only for the shop owner");
	assert_contains(say(f, CUSTOMER, "sales today"), "only for the shop owner");
	assert_ledger(f);
}

/* ---- marketing: broadcast, stop/start ---------------------------------------------------- */

#define HOUR_MS (3600LL * 1000)
#define DAY_MS  (24 * HOUR_MS)

/* A customer whose last message was at `at`. */
static void add_customer(struct fx *f, const char *wa, int64_t at)
{
	struct customer cu;
	assert_int_equal(store_customer_touch(f->c, f->t.id, wa, "", at, &f->a, &cu), 0);
	assert_int_equal(cu.last_inbound_at, at);
}

/* The tenant's outbox rows in state st (of priority prio, to `to` when not
 * NULL), newest first; *out in f->a. */
static int rows_in(struct fx *f, enum outbox_state st, int prio, const char *to,
                   struct outbox_row **out)
{
	struct outbox_row *rows;
	int n, k = 0;
	assert_int_equal(store_outbox_list(f->c, st, 10000, &f->a, &rows, &n), 0);
	for (int i = 0; i < n; i++)
		if ((prio < 0 || (int)rows[i].priority == prio) &&
		    (!to || strcmp(rows[i].to, to) == 0))
			rows[k++] = rows[i];
	if (out)
		*out = rows;
	return k;
}

/* The JSON body of an outbox row, parsed (json_decref it). */
static json_t *body_of(const struct outbox_row *r)
{
	json_error_t jerr;
	json_t *v = json_loads(r->body, 0, &jerr);
	if (!v)
		fail_msg("outbox body is not JSON (%s): %s", jerr.text, r->body);
	return v;
}

static const char *json_path_str(json_t *v, const char *a, const char *b)
{
	json_t *x = json_object_get(v, a);
	return json_string_value(b ? json_object_get(x, b) : x);
}

/* The one template parameter of a template body. */
static const char *template_param(json_t *v)
{
	json_t *comp =
	        json_array_get(json_object_get(json_object_get(v, "template"), "components"), 0);
	return json_string_value(
	        json_object_get(json_array_get(json_object_get(comp, "parameters"), 0), "text"));
}

static void test_broadcast_text_template_and_skips(void **state)
{
	struct fx *f = *state;
	struct outbox_row *rows;
	add_customer(f, "919000000101", NOW_MS - HOUR_MS);              /* in the window: text */
	add_customer(f, "919000000102", NOW_MS - 23 * HOUR_MS - 60000); /* window nearly shut */
	add_customer(f, "919000000103", NOW_MS - 2 * DAY_MS);           /* outside the window */
	add_customer(f, "919000000104", NOW_MS - 31 * DAY_MS);          /* too long ago */
	add_customer(f, "919000000105", NOW_MS - HOUR_MS);              /* opts out below */
	add_customer(f, "US.13491208655302741918", NOW_MS - HOUR_MS);   /* no phone number */
	assert_int_equal(store_customer_set_opted_out(f->c, f->t.id, "919000000105", 1, NULL), 0);

	/* no template: the two outside the window are skipped, and counted */
	const char *r = say(f, OWNER, "broadcast Diwali sale: 10% off on \"all\" sweets!");
	assert_string_equal(
	        r, "Broadcast queued to 1 customer: 1 as a message; 2 outside the 24-hour window "
	           "skipped because no template is set (munim tenant set --template). 1 customer "
	           "who opted out was left out. 1 without a phone number was skipped.");
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);
	assert_int_equal(f->r.queued[PRIO_P3], 1);
	assert_int_equal(f->r.queued[PRIO_P0] + f->r.queued[PRIO_P1] + f->r.queued[PRIO_P2], 0);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, NULL, &rows), 1);
	assert_string_equal(rows[0].to, "919000000101");
	assert_string_equal(rows[0].reply_to, "");
	assert_string_equal(rows[0].phone_number_id, "1122334455");
	json_t *v = body_of(&rows[0]);
	assert_string_equal(json_path_str(v, "type", NULL), "text");
	assert_string_equal(json_path_str(v, "to", NULL), "+919000000101");
	assert_string_equal(json_path_str(v, "text", "body"),
	                    "Diwali sale: 10% off on \"all\" sweets!");
	assert_null(json_object_get(v, "context"));
	json_decref(v);

	/* with a template: text inside the window, the template outside it */
	assert_int_equal(store_tenant_set_template(f->c, f->t.id, "diwali_offer", "hi"), 0);
	r = say(f, OWNER, "BROADCAST Sweets\n  fresh\ttoday");
	assert_string_equal(r, "Broadcast queued to 3 customers: 1 as a message, 2 by template "
	                       "\"diwali_offer\". 1 customer who opted out was left out. 1 "
	                       "without a phone number was skipped.");
	assert_int_equal(f->r.queued[PRIO_P3], 3);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "919000000101", &rows), 2);
	v = body_of(&rows[0]); /* newest first */
	assert_string_equal(json_path_str(v, "text", "body"), "Sweets\n  fresh today");
	json_decref(v);
	static const char *const outside[] = {"919000000102", "919000000103"};
	for (int i = 0; i < 2; i++) {
		assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, outside[i], &rows), 1);
		v = body_of(&rows[0]);
		assert_string_equal(json_path_str(v, "type", NULL), "template");
		json_t *t = json_object_get(v, "template");
		assert_string_equal(json_string_value(json_object_get(t, "name")), "diwali_offer");
		assert_string_equal(
		        json_string_value(json_object_get(json_object_get(t, "language"), "code")),
		        "hi");
		assert_string_equal(template_param(v), "Sweets fresh today"); /* one line */
		json_decref(v);
	}
	/* nobody too old, opted out, unaddressable, nor the owner */
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "919000000104", NULL), 0);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "919000000105", NULL), 0);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "US.13491208655302741918", NULL), 0);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "919000000001", NULL), 0);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, NULL, NULL), 4);
}

static void test_broadcast_30_day_cut_and_pages(void **state)
{
	struct fx *f = *state;
	char wa[32];
	add_customer(f, "919000000201", NOW_MS - 30 * DAY_MS);     /* the first instant in */
	add_customer(f, "919000000202", NOW_MS - 30 * DAY_MS - 1); /* a millisecond too old */
	/* more than a page (500) of recent customers, all in the window */
	for (int i = 0; i < 1203; i++) {
		snprintf(wa, sizeof(wa), "9180000%05d", i);
		add_customer(f, wa, NOW_MS - 1000 - i % 7);
	}
	assert_int_equal(store_tenant_set_template(f->c, f->t.id, "offer", "en"), 0);
	assert_contains(say(f, OWNER, "broadcast New stock of mangoes"),
	                "Broadcast queued to 1,204 customers: 1,203 as a message, 1 by template");
	assert_int_equal(f->r.queued[PRIO_P3], 1204);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, NULL, NULL), 1204);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "919000000201", NULL), 1);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "919000000202", NULL), 0);
	/* each customer once */
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "918000001202", NULL), 1);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, "918000000000", NULL), 1);
}

static void test_broadcast_owner_only_and_usage(void **state)
{
	struct fx *f = *state;
	add_customer(f, "919000000301", NOW_MS - HOUR_MS);
	assert_contains(say(f, CUSTOMER, "broadcast Free sweets for all!"),
	                "only for the shop owner");
	assert_int_equal(f->r.queued[PRIO_P3], 0);
	assert_contains(say(f, OWNER, "broadcast"), "Type: broadcast <your message>");
	assert_contains(say(f, OWNER, "broadcast   \n\t "), "Type: broadcast <your message>");
	assert_contains(say(f, OWNER, "broadcast \x01\x02"), "Type: broadcast <your message>");
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, NULL, NULL), 0);

	/* nobody to send to but people who opted out */
	assert_int_equal(store_customer_set_opted_out(f->c, f->t.id, "919000000301", 1, NULL), 0);
	assert_int_equal(store_customer_set_opted_out(f->c, f->t.id, CUSTOMER, 1, NULL), 0);
	assert_contains(say(f, OWNER, "broadcast hello"), "Broadcast queued to 0 customers");

	/* a text past the cap is cut, and the owner told */
	char big[ERP_BROADCAST_TEXT_MAX + 200] = "broadcast ";
	memset(big + 10, 'x', sizeof(big) - 11);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(store_customer_set_opted_out(f->c, f->t.id, CUSTOMER, 0, NULL), 0);
	assert_contains(say(f, OWNER, big), "Your text was cut to 1024 characters.");
	struct outbox_row *rows;
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, CUSTOMER, &rows), 1);
	json_t *v = body_of(&rows[0]);
	assert_true(strlen(json_path_str(v, "text", "body")) <= ERP_BROADCAST_TEXT_MAX);
	json_decref(v);
}

static void test_stop_cancels_pending_marketing(void **state)
{
	struct fx *f = *state;
	struct outbox_row *rows;
	int64_t before[PRIO_COUNT][OUTBOX_STATE_COUNT], after[PRIO_COUNT][OUTBOX_STATE_COUNT];
	add_customer(f, OTHER, NOW_MS - HOUR_MS);
	say(f, CUSTOMER, "hi");
	say(f, OWNER, "broadcast first offer");
	say(f, OWNER, "broadcast second offer");
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, CUSTOMER, NULL), 2);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, OTHER, NULL), 2);
	/* a reply waiting for the customer (P2) is not marketing */
	struct outbox_new o = {.tenant_id = f->t.id,
	                       .priority = PRIO_P2,
	                       .phone_number_id = f->t.phone_number_id,
	                       .to = CUSTOMER,
	                       .reply_to = "wamid.x",
	                       .body = "{}"};
	int64_t id;
	assert_int_equal(store_outbox_add(f->c, &o, &id), 0);
	assert_int_equal(store_outbox_counts(f->c, before), 0);

	const char *r = say(f, CUSTOMER, "STOP");
	assert_string_equal(r, "You will not receive offers from Sharma Kirana & Sons any more. "
	                       "Write START to receive them again.");
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);
	assert_int_equal(f->r.cancelled[PRIO_P3], 2);
	assert_int_equal(
	        f->r.cancelled[PRIO_P0] + f->r.cancelled[PRIO_P1] + f->r.cancelled[PRIO_P2], 0);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, CUSTOMER, NULL), 0);
	assert_int_equal(rows_in(f, OUTBOX_FAILED, PRIO_P3, CUSTOMER, &rows), 2);
	assert_int_equal(rows[0].last_error_code, 131050);
	assert_string_equal(rows[0].last_error, "recipient opted out");
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P2, CUSTOMER, NULL), 1);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, OTHER, NULL), 2); /* someone else's */
	/* the store's counts moved with the rows */
	assert_int_equal(store_outbox_counts(f->c, after), 0);
	assert_int_equal(after[PRIO_P3][OUTBOX_PENDING], before[PRIO_P3][OUTBOX_PENDING] - 2);
	assert_int_equal(after[PRIO_P3][OUTBOX_FAILED], before[PRIO_P3][OUTBOX_FAILED] + 2);
	assert_int_equal(after[PRIO_P2][OUTBOX_PENDING], before[PRIO_P2][OUTBOX_PENDING]);

	/* a second stop: the same answer, nothing more to cancel */
	say(f, CUSTOMER, "unsubscribe");
	assert_int_equal(f->r.cancelled[PRIO_P3], 0);

	/* left out of broadcasts, answered as ever */
	assert_contains(say(f, OWNER, "broadcast third offer"),
	                "1 customer who opted out was left out.");
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, CUSTOMER, NULL), 0);
	assert_contains(say(f, CUSTOMER, "stock rice"), "Rice: in stock");

	/* start: back in; a second start is the greeting it always was */
	r = say(f, CUSTOMER, "start");
	assert_string_equal(r, "You will receive offers from Sharma Kirana & Sons again. Write "
	                       "STOP any time to stop them.");
	say(f, CUSTOMER, "START");
	assert_int_equal(f->r.replies[0].kind, ERP_REPLY_BUTTONS);
	assert_contains(f->r.replies[0].text, "Welcome to Sharma Kirana & Sons");
	say(f, OWNER, "broadcast fourth offer");
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, CUSTOMER, NULL), 1);
}

/* A stop rolled back (its message failed later) cancels nothing. */
static void test_stop_rolled_back(void **state)
{
	struct fx *f = *state;
	say(f, CUSTOMER, "hi");
	say(f, OWNER, "broadcast offer");
	struct inbox_entry e;
	memset(&e, 0, sizeof(e));
	e.id = 999;
	e.tenant_id = f->t.id;
	e.kind = INBOX_MESSAGE;
	e.ext_id = "wamid.stop";
	e.from = CUSTOMER;
	e.name = "";
	e.type = "text";
	e.body = "stop";
	e.sent_at = NOW_MS;
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(erp_handle(f->c, f->cache, &f->t, &e, &f->a, &f->r), 0);
	assert_int_equal(f->r.cancelled[PRIO_P3], 1);
	assert_int_equal(store_rollback(f->c), 0);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, CUSTOMER, NULL), 1);
	say(f, OWNER, "broadcast again");
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P3, CUSTOMER, NULL), 2);
}

/* ---- paid ------------------------------------------------------------------------------------ */

static void test_paid(void **state)
{
	struct fx *f = *state;
	struct outbox_row *rows;
	char msg[64];

	say(f, CUSTOMER, "order 2 kg rice");
	int64_t id = draft_id(f);
	snprintf(msg, sizeof(msg), "paid %lld", (long long)id);
	assert_contains(say(f, OWNER, msg), "is still a draft: it can be marked paid once");
	assert_int_equal(f->r.queued[PRIO_P0], 0);
	say(f, CUSTOMER, "confirm");

	const char *r = say(f, OWNER, msg);
	char want[160];
	snprintf(
	        want, sizeof(want),
	        "Order #%lld marked paid: ₹126.00 (invoice INV/2627/000001). The customer has been "
	        "told.",
	        (long long)id);
	assert_string_equal(r, want);
	assert_int_equal(f->r.replies[0].priority, PRIO_P2);
	assert_int_equal(f->r.queued[PRIO_P0], 1);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P0, CUSTOMER, &rows), 1);
	json_t *v = body_of(&rows[0]);
	snprintf(want, sizeof(want), "Payment of ₹126.00 received for order #%lld. Thank you!",
	         (long long)id);
	assert_string_equal(json_path_str(v, "text", "body"), want);
	assert_string_equal(json_path_str(v, "to", NULL), "+" CUSTOMER);
	json_decref(v);
	struct order o;
	assert_int_equal(store_order_get(f->c, f->t.id, id, &f->a, &o), 0);
	assert_int_equal(o.paid_at, NOW_MS);
	assert_int_equal(o.status, ORDER_CONFIRMED); /* still counted in the sales */

	/* twice: refused, the customer not told again */
	snprintf(want, sizeof(want),
	         "Order #%lld is already marked paid (27 Nov 2026). Nothing "
	         "changed.",
	         (long long)id);
	assert_string_equal(say(f, OWNER, msg), want);
	assert_int_equal(f->r.queued[PRIO_P0], 0);
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P0, NULL, NULL), 1);

	/* unknown, cancelled, no number */
	assert_contains(say(f, OWNER, "paid 999"), "Sorry, there is no order #999.");
	say(f, CUSTOMER, "order 1 kg sugar");
	int64_t id2 = draft_id(f);
	say(f, CUSTOMER, "cancel");
	snprintf(msg, sizeof(msg), "paid #%lld", (long long)id2);
	assert_contains(say(f, OWNER, msg), "was cancelled, so it can't be marked paid.");
	assert_int_equal(store_order_get(f->c, f->t.id, id2, &f->a, &o), 0);
	assert_int_equal(o.paid_at, 0);
	assert_contains(say(f, OWNER, "paid"), "Type: paid <order number>");
	assert_contains(say(f, OWNER, "paid rice"), "Type: paid <order number>");
	assert_int_equal(rows_in(f, OUTBOX_PENDING, PRIO_P0, NULL, NULL), 1);

	/* a customer's "paid" changes nothing */
	say(f, CUSTOMER, "order 1 kg atta");
	say(f, CUSTOMER, "confirm");
	int64_t id3 = id2 + 1;
	snprintf(msg, sizeof(msg), "paid %lld", (long long)id3);
	assert_contains(say(f, CUSTOMER, msg), "will confirm your payment");
	assert_int_equal(store_order_get(f->c, f->t.id, id3, &f->a, &o), 0);
	assert_int_equal(o.status, ORDER_CONFIRMED);
	assert_int_equal(o.paid_at, 0);
	assert_int_equal(f->r.queued[PRIO_P0], 0);
}

/* ---- hostile input ------------------------------------------------------------------------ */

static void test_hostile(void **state)
{
	struct fx *f = *state;
	char *big = malloc(3 * ERP_MAX_TEXT);
	assert_non_null(big);

	memset(big, 'a', 3 * ERP_MAX_TEXT - 1);
	big[3 * ERP_MAX_TEXT - 1] = '\0';
	assert_int_equal(say_as(f, CUSTOMER, "text", big, 0), 0);

	/* "stock " + an endless item name: the echo is clipped */
	memcpy(big, "stock ", 6);
	assert_int_equal(say_as(f, CUSTOMER, "text", big, 0), 0);
	assert_true(strlen(f->r.replies[0].text) < 400);

	/* random bytes, control characters, broken UTF-8 */
	unsigned int seed = 7;
	for (int round = 0; round < 40; round++) {
		size_t len = 1 + (seed % 600);
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			big[i] = (char)(((seed >> 16) % 255) + 1);
		}
		big[len] = '\0';
		if (round % 2)
			memcpy(big, "order ", 6);
		assert_int_equal(say_as(f, CUSTOMER, "text", big, 0), 0);
		seed = seed * 1103515245u + 12345u;
	}
	assert_int_equal(say_as(f, CUSTOMER, "text", "order 2 kg \xF0\x9F\x8D\x9A\xE0\xA4\x9A", 0),
	                 0);
	assert_int_equal(say_as(f, CUSTOMER, "text", "stock \xff\xfe\xc0\xaf", 0), 0);
	assert_contains(f->r.replies[0].text, "we don't sell");
	free(big);
	assert_int_equal(stock_of(f, P_RICE), 1000000);
}

static void test_long_order_fits(void **state)
{
	struct fx *f = *state;
	char name[300], sku[16], msg[2000] = "order";

	assert_int_equal(store_begin(f->c), 0);
	for (int i = 0; i < ERP_MAX_ORDER_LINES; i++) {
		struct product p = seed_products[P_RICE];
		int64_t id;
		snprintf(sku, sizeof(sku), "LONG%02d", i);
		snprintf(name, sizeof(name), "Item%02d %0*d", i, 200, 0);
		p.tenant_id = f->t.id;
		p.sku = sku;
		p.name = name;
		assert_int_equal(store_product_upsert(f->c, &p, &id), 0);
		assert_int_equal(store_stock_move(f->c, f->t.id, id, 10000, "opening", 0, NULL), 0);
		snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), " 1 kg item%02d,", i);
	}
	assert_int_equal(store_commit(f->c), 0);
	const char *r = say(f, CUSTOMER, msg);
	assert_int_equal(f->r.replies[0].kind, ERP_REPLY_BUTTONS);
	assert_true(strlen(r) <= 1024);
	assert_contains(r, "more items");
	assert_contains(r, "Total: ");
	int64_t id = draft_id(f);
	struct order o;
	assert_int_equal(store_order_get(f->c, f->t.id, id, &f->a, &o), 0);
	assert_int_equal(o.nlines, ERP_MAX_ORDER_LINES);
	r = say(f, CUSTOMER, "confirm");
	assert_true(strlen(r) <= 4096);
	assert_contains(r, "upi://pay?");
	assert_ledger(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_menu, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_bad_entries, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_stock, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_catalog_cache_follows_changes, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_order_confirm, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_order_forms, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_order_refusals, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_short_stock_at_confirm, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_your_order, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_inter_state, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_owner, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_not_owner, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_hostile, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_long_order_fits, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_broadcast_text_template_and_skips, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_broadcast_30_day_cut_and_pages, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_broadcast_owner_only_and_usage, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_stop_cancels_pending_marketing, setup,
	                                        teardown),
	        cmocka_unit_test_setup_teardown(test_stop_rolled_back, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_paid, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
