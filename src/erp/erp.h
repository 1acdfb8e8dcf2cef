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
 * invoice; status; stop / start (marketing opt-out and back in).  Owners
 * (numbers in tenant.owner_numbers): add stock <qty> <item>, price <item>
 * <rupees>, low stock, sales today, broadcast <text>, paid <order>.
 */
#ifndef MUNIM_ERP_H
#define MUNIM_ERP_H

#include <stdatomic.h>
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
	/*
	 * Outbox rows erp_handle wrote itself, in the caller's transaction, by
	 * priority: queued PENDING (a broadcast's rows, a payment notice to the
	 * customer who ordered), and PENDING rows moved to FAILED (a customer's
	 * waiting marketing, cancelled by their "stop"). The caller moves its
	 * gauges by these once that transaction has committed.
	 */
	int64_t queued[PRIO_COUNT];
	int64_t cancelled[PRIO_COUNT];
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
 * The AI endpoint and graceful degradation (src/ai/ai.h, docs/ai.md).
 *
 * What erp_handle does with a text its parser cannot read depends on the
 * process's AI setting, set once by serve before its threads start
 * (erp_ai_set; until then, and with NULL, it is the menu, as always):
 *   - degraded (*degradation_level >= 1) or the AI's breaker refusing
 *     (*refusing != 0): the template reply ERP_DEGRADED_TEXT with the three
 *     menu buttons (same ids), straight away;
 *   - else, with jobs on (an endpoint is configured): no reply; an AI job
 *     (store_ai_job_add, AI_JOB_REWRITE) in the caller's transaction, for
 *     the AI thread to run through erp_handle_job;
 *   - else the menu.
 * With jobs on, any message of a customer who has a job not yet done
 * becomes a job too (AI_JOB_PLAIN), so that customer's replies keep the
 * order of their messages.
 *
 * Images and documents are queued for reading later (store_ocr_add; there
 * is no OCR engine in munim) and acknowledged with ERP_OCR_ACK_TEXT.
 */
#define ERP_DEGRADED_TEXT                                                                          \
	"Due to high demand, smart responses are temporarily unavailable. Please use the "         \
	"buttons below:"
#define ERP_OCR_ACK_TEXT                                                                           \
	"Thank you, we have received your %s. We will read it and reply to you here soon. "        \
	"You can also type your order as a text message."

struct erp_ai {
	int jobs;                             /* an AI endpoint is configured */
	const _Atomic int *degradation_level; /* the controller's (app.h); NULL: 0 */
	const _Atomic int *refusing;          /* the AI's breaker refuses calls; NULL: 0 */
	/* the controller's spike level (app.h): from 4 the owner's broadcast
	 * is refused (the seed's reject_new_marketing_requests); NULL: 0 */
	const _Atomic int *spike_level;
};
/* erp_ai_set copies *ai (NULL: no AI, no degradation) for every later
 * erp_handle of the process; call it while no thread runs the ERP. The
 * pointers must stay valid until the next erp_ai_set. */
void erp_ai_set(const struct erp_ai *ai);
/*
 * erp_handle_job runs e as erp_handle does, for the AI thread: e carries a
 * job's message (its body the endpoint's rewrite, or the text as typed).
 * It never records a job: a text it cannot read gets the template reply
 * when degraded or the AI's breaker refuses, else the menu.
 */
int erp_handle_job(struct store_conn *c, struct erp_cache *cache, const struct tenant *t,
                   const struct inbox_entry *e, struct arena *a, struct erp_result *out);

/*
 * erp_unit_normalize maps a unit as people write it ("kg", "Kgs", "litre",
 * "pcs", "pkt") to the canonical selling unit ("kg", "g", "l", "ml", "pc",
 * "packet", "dozen"; a static string) and the base units in one of it (kg → 1000,
 * since stock of weighed goods is kept in grams). ERR_INVAL if unknown.
 * Used by provisioning; the order parser uses the same table.
 */
int erp_unit_normalize(const char *unit, const char **canonical, int64_t *base_per_unit);

/*
 * Broadcasts (broadcast.c): one marketing message (PRIO_P3) to every
 * customer of the shop who wrote in the last ERP_BROADCAST_DAYS days and
 * has not opted out. WhatsApp lets a shop send free text only inside the
 * 24-hour window that the customer's last message opened; outside it only
 * an approved template may go, so those customers get the shop's template
 * (tenant_template) with the text as its one body parameter, or are
 * skipped when the shop has none.
 */
#define ERP_BROADCAST_DAYS 30
/* The longest broadcast text, bytes: a template's body is at most 1,024
 * characters, and a byte is never more than a character. */
#define ERP_BROADCAST_TEXT_MAX 1024
/* What "stop" writes on the marketing it cancels (the Cloud API's own code
 * for a recipient who opted out of marketing messages). */
#define ERP_OPTOUT_ERROR_CODE 131050
#define ERP_OPTOUT_ERROR      "recipient opted out"

struct erp_broadcast {
	int64_t queued;                /* rows queued: as_text + by_template */
	int64_t as_text;               /* inside the 24-hour window: a text message */
	int64_t by_template;           /* outside it: the shop's template */
	int64_t skipped_no_template;   /* outside it, and the shop has no template */
	int64_t skipped_opted_out;     /* wrote in the period but opted out */
	int64_t skipped_unaddressable; /* known only by a user id, no phone number */
	const char *template_name;     /* the shop's template, "" when none (in a) */
	int clipped;                   /* the text was cut to ERP_BROADCAST_TEXT_MAX */
	int paused; /* refused: the spike level is 4 (nothing queued, no audit row) */
};

/*
 * erp_broadcast queues text (cleaned: valid UTF-8, no control characters
 * but newlines, clipped to ERP_BROADCAST_TEXT_MAX) as one PRIO_P3 outbox
 * row (PENDING, never handed over directly) to each customer of t who wrote
 * at or after now - ERP_BROADCAST_DAYS days, has not opted out and is not
 * one of the shop's owners, and writes an audit row naming actor. Runs
 * inside the caller's transaction (the rows and the audit commit or roll
 * back with it); the caller moves its outbox gauges by out->queued (all
 * P3, PENDING) after the commit. The shared logic of the owner's
 * "broadcast" command and the merchant API's POST /v1/campaigns. At spike
 * level 4 (erp_ai_set's spike_level; the seed's
 * reject_new_marketing_requests) it queues nothing and sets out->paused.
 * ERR_INVAL when the text is empty once cleaned; else 0 or the store's
 * error. Strings of *out live in a.
 */
int erp_broadcast(struct store_conn *c, const struct tenant *t, const char *actor, const char *text,
                  int64_t now, struct arena *a, struct erp_broadcast *out);

/* erp_parse_rupees parses "62", "62.5", "62.50", "₹62.50" or "Rs 62" into
 * paise, exactly (no floating point); ERR_INVAL otherwise. */
int erp_parse_rupees(const char *s, int64_t *paise);

/*
 * The shop's own work from outside WhatsApp (direct.c): the companion app
 * places, confirms and cancels orders and moves stock through the very
 * commands a WhatsApp message runs (the same matching, quantities, stock
 * checks, ledger, GST invoice numbers), inside the caller's transaction.
 * What the command would have said to the customer goes into the outbox
 * as PENDING rows (not quoting any message), counted in out->queued; the
 * caller moves its gauges after the commit. Every function returns 0 with
 * out->refusal NULL when it did its work, 0 with out->refusal set (a short
 * code) and out->message (the ERP's wording) when it refused - the caller
 * then rolls back to its savepoint, since a refusal may leave a new
 * customer row behind - or a store error. Strings live in d->a.
 */
struct erp_direct {
	struct store_conn *c;
	struct erp_cache *cache; /* the calling thread's */
	const struct tenant *t;  /* read in this transaction (catalog_rev) */
	const char *actor;       /* who, for the audit log: "app:<device>" */
	struct arena *a;
};

struct erp_direct_line {
	const char *item; /* as a customer would type it: "atta", "basmati rice" */
	const char *qty;  /* "2 kg", "500g", "3"; NULL or "": one selling unit */
};

struct erp_direct_result {
	const char *refusal; /* NULL, or e.g. "unknown_item", "short_stock", "not_draft" */
	const char *message; /* a refusal's words, or what the customer was told */
	int64_t order_id;
	int64_t product_id; /* erp_direct_stock */
	int64_t stock_after;
	int64_t queued[PRIO_COUNT];
};

/* A customer's number as the store keeps it: "+91 98765-43210" →
 * "919876543210" (8 to 15 digits) in a; NULL when it is not one. */
const char *erp_direct_wa_id(struct arena *a, const char *phone);
/* Places an order of n lines (1..ERP_MAX_ORDER_LINES) for customer (a
 * phone number), then confirms it when confirm is set: the customer gets
 * the confirmation with the invoice (P1) - or, for a draft, the draft with
 * its Confirm/Cancel buttons (P2). */
int erp_direct_order(const struct erp_direct *d, const char *customer,
                     const struct erp_direct_line *lines, int n, int confirm,
                     struct erp_direct_result *out);
int erp_direct_confirm(const struct erp_direct *d, int64_t order_id, struct erp_direct_result *out);
int erp_direct_cancel(const struct erp_direct *d, int64_t order_id, struct erp_direct_result *out);
/* Adds (remove 0) or takes out (remove 1) qty of item through the ledger
 * (reason "restock" or "adjust"); "short_stock" when stock would go below
 * zero. */
int erp_direct_stock(const struct erp_direct *d, const char *item, const char *qty, int remove,
                     struct erp_direct_result *out);
/* The GST of one invoice line of taxable value amount at rate_bp: CGST and
 * SGST inside the shop's state (intra), else IGST - the invoice's own rule. */
void erp_direct_line_tax(int64_t amount, int rate_bp, int intra, int64_t *cgst, int64_t *sgst,
                         int64_t *igst);
/* The invoice as the customer reads it on WhatsApp (o may be NULL), in d->a. */
const char *erp_direct_invoice_text(const struct erp_direct *d, const struct invoice *inv,
                                    const struct order *o, const struct customer *cu);

#endif
