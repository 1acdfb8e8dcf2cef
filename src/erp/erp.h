/*
 * erp.h - the shop's books: what a customer's or owner's message does.
 *
 * erp_handle turns one inbound message into ERP changes (through the store,
 * inside the caller's transaction) and the replies to send. It never
 * commits, sends or sleeps: the worker wraps it in the transaction that
 * also marks the inbox entry done and queues the replies, so a message has
 * its effect exactly once or not at all.
 *
 * Customers: hi/menu/help (or anything not understood) → menu with buttons;
 * stock <item>; order <qty> <item> [...] → draft with Confirm/Cancel;
 * Confirm → stock out through the ledger, GST invoice, UPI link; Cancel;
 * invoice; status.  Owners (numbers in tenant.owner_numbers): add stock
 * <qty> <item>, price <item> <rupees>, low stock, sales today.
 */
#ifndef MUNIM_ERP_H
#define MUNIM_ERP_H

#include <stdint.h>

#include "core/arena.h"
#include "store/store.h"

/* Button ids carried by interactive replies (also accepted as typed text). */
#define ERP_BTN_STOCK   "menu_stock"
#define ERP_BTN_ORDER   "menu_order"
#define ERP_BTN_INVOICE "menu_invoice"
/* Draft buttons carry the order id: "confirm:<id>", "cancel:<id>". */
#define ERP_BTN_CONFIRM_PREFIX "confirm:"
#define ERP_BTN_CANCEL_PREFIX  "cancel:"

#define ERP_MAX_BUTTONS 3
#define ERP_MAX_REPLIES 2
/* Caps on what input controls (hostile text never grows memory unbounded). */
#define ERP_MAX_TEXT        4096
#define ERP_MAX_ORDER_LINES 20

enum erp_reply_kind { ERP_REPLY_TEXT = 0, ERP_REPLY_BUTTONS = 1 };

struct erp_button {
	const char *id;    /* ≤ 256 chars */
	const char *title; /* ≤ 20 chars, unique within the message */
};

struct erp_reply {
	enum erp_reply_kind kind;
	enum outbox_prio priority;
	const char *text; /* body text (≤ 4096; ≤ 1024 with buttons) */
	int nbuttons;
	struct erp_button buttons[ERP_MAX_BUTTONS];
};

struct erp_result {
	int nreplies;
	struct erp_reply replies[ERP_MAX_REPLIES];
};

/*
 * A worker's copies of recently used catalogues (cache.c): used only while
 * the tenant's catalog_rev is the one they were read at, so they are always
 * what the store holds. One per thread; erp_cache_clear after any rollback
 * (a rolled-back revision may come back with other contents).
 */
struct erp_cache;
struct erp_cache_stats {
	uint64_t hits, misses, too_big, clears;
};
struct erp_cache *erp_cache_new(int slots);
void erp_cache_free(struct erp_cache *c);
void erp_cache_clear(struct erp_cache *c);
struct erp_cache_stats erp_cache_stats(const struct erp_cache *c);

/*
 * erp_handle processes message e (kind INBOX_MESSAGE) of tenant t (read in
 * the caller's transaction, catalog_rev included), with the calling
 * thread's catalogue cache. All strings of *out live in
 * arena a. Returns 0, or a store error (the caller rolls the message back
 * and retries later). Business refusals (unknown item, short stock) are not
 * errors: they are replies.
 */
int erp_handle(struct store_conn *c, struct erp_cache *cache, const struct tenant *t,
               const struct inbox_entry *e, struct arena *a, struct erp_result *out);

/*
 * erp_unit_normalize maps a unit as people write it ("kg", "Kgs", "litre",
 * "pcs", "pkt") to the canonical selling unit ("kg", "g", "l", "ml", "pc",
 * "packet", "dozen"; a static string) and the base units in one of it (kg → 1000,
 * since stock of weighed goods is kept in grams). ERR_INVAL if unknown.
 * Used by provisioning; the order parser uses the same table.
 */
int erp_unit_normalize(const char *unit, const char **canonical, int64_t *base_per_unit);

/* erp_parse_rupees parses "62", "62.5", "62.50", "₹62.50" or "Rs 62" into
 * paise, exactly (no floating point); ERR_INVAL otherwise. */
int erp_parse_rupees(const char *s, int64_t *paise);

#endif
