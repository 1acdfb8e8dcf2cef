/*
 * erp_internal.h - what the files of src/erp/ share among themselves (and
 * with tests/unit/test_erp*.c); nothing outside the module includes it.
 *
 *   qty.c    quantities and units: "1.5kg" → 1500 thousandths of a kg →
 *            base units of a product
 *   match.c  fuzzy item matching over names, aliases and Hinglish synonyms
 *   gst.c    line amounts, GST, round-off, financial year
 *   upi.c    UPI pay links
 *   parse.c  text → struct erp_cmd (pure: knows no catalogue)
 *   text.c   reply wording: money, quantities, dates, clipping, summaries
 *   erp.c    erp_handle and the customer commands
 *   owner.c  the owner commands
 *   broadcast.c  erp_broadcast: marketing to the shop's recent customers
 *   direct.c     erp_direct_*: the shop's own orders and stock from its
 *                companion app, through the same commands
 *
 * Every function here is pure or touches only the arena it is given, except
 * those taking a struct erp_ctx (the handlers, erp__load_catalog,
 * erp__reply_draft), which use the store inside the caller's transaction.
 */
#ifndef MUNIM_ERP_INTERNAL_H
#define MUNIM_ERP_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "erp/erp.h"
#include "store/store.h"

/* ---- qty.c -------------------------------------------------------------- */

/* Largest quantity one line may hold, in the product's selling units. */
#define ERP_QTY_MAX_UNITS 100000
/* A typed number has at most 7 integer and 3 decimal digits. */
#define ERP_QTY_MAX_INT_DIGITS 7
#define ERP_QTY_MAX_DEC_DIGITS 3

enum erp_unit_family {
	ERP_FAM_NONE = 0,   /* a unit we do not know: only equal names convert */
	ERP_FAM_MASS = 1,   /* factor in grams */
	ERP_FAM_VOLUME = 2, /* factor in millilitres */
	ERP_FAM_COUNT = 3,  /* factor in pieces */
};

struct erp_unit {
	const char *name; /* canonical: "kg", "g", "l", "ml", "pc", "packet", "dozen" */
	enum erp_unit_family family;
	int64_t factor; /* in the family's smallest unit: kg 1000, dozen 12 */
};

/* A quantity as typed: value in thousandths ("1.5" → 1500) and its unit. */
struct erp_qty {
	int64_t milli;
	const struct erp_unit *unit; /* NULL: the product's selling unit */
};

/* erp__unit_lookup finds a unit word ("kgs", "Litre", "pkt"); NULL if none. */
const struct erp_unit *erp__unit_lookup(const char *word);
/*
 * erp__qty_number parses a decimal "2", "1.5", ".5" of len bytes into
 * thousandths. ERR_INVAL: not a number; ERR_TOOBIG: more than 7 integer or
 * 3 decimal digits.
 */
int erp__qty_number(const char *s, size_t len, int64_t *milli);
/*
 * erp__qty_token parses one token that is a quantity: "2", "1.5kg", "500g",
 * "2x". ERR_INVAL when the token is not a quantity (a word, or a number
 * glued to a non-unit), ERR_TOOBIG when the number is too long.
 */
int erp__qty_token(const char *tok, struct erp_qty *out);
/*
 * erp__qty_to_base converts q into base units of a product sold by
 * `product_unit` with base_per_unit base units in one selling unit.
 * ERR_CONFLICT: the unit is of another family ("litre" for rice);
 * ERR_INVAL: zero, or not a whole number of base units (0.5 pc);
 * ERR_TOOBIG: more than ERP_QTY_MAX_UNITS selling units.
 */
int erp__qty_to_base(const struct erp_qty *q, const char *product_unit, int64_t base_per_unit,
                     int64_t *qty_base);

struct erp_token;
/*
 * erp__size_word reads a pack size at toks[i] ("500ml", "500 ml", "1 ltr")
 * into its canonical word ("500ml", "1l") in a, so names and what is typed
 * compare equal; returns the tokens it spans (1 or 2), or 0 when toks[i]
 * is not a number with a unit.
 */
int erp__size_word(struct arena *a, const struct erp_token *toks, int n, int i, const char **word);
/* The same on plain words: w and the word after it (may be NULL) → out. */
int erp__size_canon(const char *w, const char *next, char *out, size_t outsz);

/* ---- match.c ------------------------------------------------------------ */

#define ERP_MAX_SUGGEST 3
/* Words longer than this are compared exactly (no edit distance). */
#define ERP_MATCH_MAX_WORD 32

/* A product's searchable keys: its name and each alias, as canonical words. */
struct erp_key {
	int nwords;
	const char **words;
};

struct erp_catalog_item {
	const struct product *p;
	int nkeys;
	struct erp_key *keys;
};

struct erp_catalog {
	int n;
	struct erp_catalog_item *items;
};

enum erp_match_kind { ERP_MATCH_NONE = 0, ERP_MATCH_ONE = 1, ERP_MATCH_AMBIGUOUS = 2 };

struct erp_match {
	enum erp_match_kind kind;
	const struct product *product; /* ERP_MATCH_ONE */
	int nsuggest;                  /* NONE: closest products; AMBIGUOUS: the tied ones */
	int close; /* NONE: the first suggestion shares a word or is a near miss */
	const struct product *suggest[ERP_MAX_SUGGEST];
};

/* erp__catalog_init indexes n products (borrowed, must outlive cat) in a. */
void erp__catalog_init(struct erp_catalog *cat, const struct product *p, int n, struct arena *a);
/* erp__match matches the phrase of nwords words (lower case tokens). */
void erp__match(const struct erp_catalog *cat, const char *const *words, int nwords,
                struct erp_match *out);
/* Damerau–Levenshtein (optimal string alignment) distance of two words. */
int erp__edit_distance(const char *a, size_t la, const char *b, size_t lb);
/* The canonical form of a word: synonym ("chawal" → "rice") or singular. */
const char *erp__canon_word(const char *w, char *tmp, size_t tmpsz);
/* 1 when the synonym table is in strictly ascending order (its lookup is a
 * binary search), else 0. */
int erp__synonyms_sorted(void);

/* ---- gst.c --------------------------------------------------------------- */

/* Cap of any one line amount, paise (₹10^11): keeps every sum in int64. */
#define ERP_MAX_LINE_PAISE 10000000000000LL

struct erp_totals {
	int64_t taxable_paise;
	int64_t cgst_paise;
	int64_t sgst_paise;
	int64_t igst_paise;
	int64_t round_off_paise; /* signed */
	int64_t total_paise;     /* whole rupees */
};

/* round half-up of num/den for num ≥ 0, den > 0 */
int64_t erp__div_half_up(int64_t num, int64_t den);
/* price × qty_base / base_per_unit, half-up; ERR_TOOBIG past the cap,
 * ERR_INVAL for a negative input or base_per_unit ≤ 0. */
int erp__line_amount(int64_t price_paise, int64_t qty_base, int64_t base_per_unit, int64_t *amount);
/* Tax of one line: intra → cgst = sgst, igst 0; inter → igst only. */
void erp__line_tax(int64_t amount, int rate_bp, int intra, int64_t *cgst, int64_t *sgst,
                   int64_t *igst);
/* Invoice totals of n lines. ERR_INVAL on a negative amount or rate. */
int erp__totals(const struct order_line *lines, int n, int intra, struct erp_totals *out);
/* 1 when customer_state is empty or equal to shop_state. */
int erp__intra_state(const char *shop_state, const char *customer_state);
/* The customer's state, or the shop's when the customer's is unknown. */
const char *erp__place_of_supply(const char *shop_state, const char *customer_state);
/* Financial year code of an instant in IST: "2526" for 2025-04-01..2026-03-31. */
void erp__fy_code(int64_t ms, char out[5]);

/* ---- upi.c ------------------------------------------------------------- */

/* erp__pct_encode appends s percent-encoded (RFC 3986 unreserved kept). */
void erp__pct_encode(struct buf *b, const char *s);
/* The upi://pay link for amount_paise (≥ 0) of invoice `number`; in a. */
char *erp__upi_link(struct arena *a, const char *vpa, const char *payee, int64_t amount_paise,
                    const char *number);

/* ---- parse.c ------------------------------------------------------------ */

enum erp_cmd_kind {
	ERP_CMD_UNKNOWN = 0,
	ERP_CMD_MENU,
	ERP_CMD_HELP_STOCK, /* "stock" alone, or the Stock Check button */
	ERP_CMD_HELP_ORDER, /* "order" alone, or the New Order button */
	ERP_CMD_STOCK,      /* items[]: words only */
	ERP_CMD_ORDER,      /* items[] with quantities */
	ERP_CMD_CONFIRM,    /* order_id, 0: the customer's last draft */
	ERP_CMD_CANCEL,
	ERP_CMD_INVOICE,
	ERP_CMD_STATUS,
	ERP_CMD_ADD_STOCK, /* owner: items[0] */
	ERP_CMD_SET_PRICE, /* owner: items[0] words, price_paise */
	ERP_CMD_LOW_STOCK,
	ERP_CMD_SALES_TODAY,
	ERP_CMD_STOP,      /* no more marketing, please */
	ERP_CMD_START,     /* marketing again (or a greeting) */
	ERP_CMD_BROADCAST, /* owner: text, the message as typed after the word */
	ERP_CMD_PAID,      /* owner: order_id, 0 when none could be read */
};

/* Why a command could not be read; the handler words the reply. */
enum erp_parse_err {
	ERP_PERR_NONE = 0,
	ERP_PERR_TOO_MANY,  /* more than ERP_MAX_ORDER_LINES items */
	ERP_PERR_QTY_ZERO,  /* a quantity of 0 */
	ERP_PERR_QTY_BIG,   /* too many digits */
	ERP_PERR_NO_ITEM,   /* a quantity with no item after it */
	ERP_PERR_PRICE_BAD, /* owner price not a rupee amount */
};

struct erp_item {
	int has_qty; /* 0: no quantity typed (1 selling unit) */
	struct erp_qty qty;
	int nwords;
	const char **words; /* lower-case tokens naming the item */
	const char *text;   /* the words joined by spaces */
};

struct erp_cmd {
	enum erp_cmd_kind kind;
	int64_t order_id;
	int nitems;
	struct erp_item items[ERP_MAX_ORDER_LINES];
	int64_t price_paise;
	const char *text; /* BROADCAST: the raw text after "broadcast", trimmed */
	enum erp_parse_err err;
};

/* One token of a message: a lower-case word or number, or a separator. */
struct erp_token {
	const char *s; /* NUL-terminated, in the arena; "" for a separator */
	int sep;       /* 1: ',', '+', '&', ';', newline */
};

/*
 * erp__tokenize splits text (at most ERP_MAX_TEXT bytes are read) into
 * tokens: ASCII lower-cased; letters, digits and non-ASCII bytes make words;
 * "1.5" and "1,500" stay one number; other punctuation separates.
 */
void erp__tokenize(struct arena *a, const char *text, struct erp_token **out, int *n);
/* erp__parse reads one message body into *cmd (strings in a). Never fails:
 * what it cannot read is ERP_CMD_UNKNOWN or carries cmd->err. */
void erp__parse(struct arena *a, const char *text, struct erp_cmd *cmd);

/* ---- text.c ----------------------------------------------------------- */

#define ERP_TEXT_MAX         4096
#define ERP_TEXT_MAX_BUTTONS 1024
/* Echoed names (items typed, product and profile names) are clipped. */
#define ERP_NAME_MAX 60

/* erp__clean copies s as valid UTF-8 on one line (control characters become
 * spaces), clipped to max bytes at a character boundary with "…" when cut;
 * in a. erp__clean_text is the same but keeps newlines. */
char *erp__clean(struct arena *a, const char *s, size_t max);
char *erp__clean_text(struct arena *a, const char *s, size_t max);
/* "1,23,456" (Indian grouping) */
void erp__fmt_int(struct buf *b, int64_t v);
/* "₹1,234.50"; negative "-₹0.25" */
void erp__fmt_money(struct buf *b, int64_t paise);
/* "5%", "2.5%" */
void erp__fmt_rate(struct buf *b, int rate_bp);
/* "1,000 kg", "0.5 kg", "3 packets" */
void erp__fmt_qty(struct buf *b, int64_t qty_base, int64_t base_per_unit, const char *unit);
/* "27 Nov 2026" in IST */
void erp__fmt_date(struct buf *b, int64_t ms);
/* copies b into a (clipped to max bytes at a character boundary) and
 * releases b */
char *erp__finish(struct arena *a, struct buf *b, size_t max);
/* The unit word to show: "kg", or "packet"/"packets" for count units. */
const char *erp__unit_label(const char *unit, int plural);

/* ---- text.c: summaries (need the handler context below) ---------------------- */

struct erp_ctx;
/* 1 when the customer is in the shop's state (or unknown): CGST+SGST. */
int erp__customer_intra(const struct erp_ctx *x);
/* Adds the draft summary of o with its Confirm/Cancel buttons (PRIO_P2);
 * lead (may be NULL) goes first. ERR_INVAL on lines beyond the caps. */
int erp__reply_draft(struct erp_ctx *x, const struct order *o, const char *lead);
/* The invoice summary with the UPI link, ≤ 4096 bytes, in x->a; o may be
 * NULL (lines left out); lead (may be NULL) goes first. */
char *erp__invoice_text(struct erp_ctx *x, const struct invoice *inv, const struct order *o,
                        const char *lead);

/* ---- erp.c / owner.c: the handlers ---------------------------------------- */

struct erp_ctx {
	struct store_conn *c;
	struct erp_cache *cache; /* the worker thread's */
	const struct tenant *t;
	const struct inbox_entry *e;
	struct arena *a;
	struct erp_result *out;
	struct customer cust;
	int is_owner;
	int64_t now;
	/* the catalogue, loaded on first need */
	int loaded;
	struct product *products;
	int nproducts;
	struct erp_catalog cat;
	/* what a caller outside WhatsApp (direct.c) reads back: why the
	 * command changed nothing (a short code: "unknown_item", "short_stock",
	 * "not_draft"...; NULL when it did not refuse) and the order it made */
	const char *refusal;
	int64_t order_id;
};

/* Adds a reply (at most ERP_MAX_REPLIES; the text is clipped to its cap). */
void erp__reply(struct erp_ctx *x, enum outbox_prio prio, const char *text);
/* Adds a reply with buttons: ids and titles alternate, nb pairs. */
void erp__reply_buttons(struct erp_ctx *x, enum outbox_prio prio, const char *text, int nb,
                        const char *const *ids_titles);
/* Loads the catalogue once per message, through x->cache. */
int erp__load_catalog(struct erp_ctx *x);
/* erp__cache_load: tenant t's products and their match index, from the
 * cache when its copy is at t->catalog_rev, else read through conn (and
 * kept when small). Valid until the next call on c. 0 or the store's error. */
int erp__cache_load(struct erp_cache *c, struct store_conn *conn, const struct tenant *t,
                    struct product **products, int *n, struct erp_catalog *cat);
/* Words the reply for an item that did not match (suggestions). */
void erp__explain_nomatch(struct erp_ctx *x, struct buf *b, const struct erp_item *it,
                          const struct erp_match *m);
/* Words the reply for a unit/quantity error of it against product p. */
void erp__explain_qty(struct erp_ctx *x, struct buf *b, const struct erp_item *it,
                      const struct product *p, int err);
/* Stock check for items (also used for a customer's "price <item>"). */
int erp__cmd_stock(struct erp_ctx *x, const struct erp_cmd *cmd);
/* The customer commands order, confirm and cancel (erp.c); also run by
 * direct.c for the shop's companion app. 0 with their replies (a refusal
 * sets x->refusal), or a store error. */
int erp__cmd_order(struct erp_ctx *x, const struct erp_cmd *cmd);
int erp__cmd_confirm(struct erp_ctx *x, const struct erp_cmd *cmd);
int erp__cmd_cancel(struct erp_ctx *x, const struct erp_cmd *cmd);

/*
 * The owner commands (owner.c); the caller has checked x->is_owner. Each
 * returns 0 with its reply, or a store error; changes write an audit row.
 */
int erp__owner_add_stock(struct erp_ctx *x, const struct erp_cmd *cmd);
int erp__owner_set_price(struct erp_ctx *x, const struct erp_cmd *cmd);
int erp__owner_low_stock(struct erp_ctx *x);
int erp__owner_sales_today(struct erp_ctx *x);
/* 1 when wa_id is one of the comma-separated owner numbers (digits compared). */
int erp__is_owner(const char *owner_numbers, const char *wa_id);
/* 1 while new marketing is refused: the spike level is 4 (erp_ai_set). */
int erp__marketing_refused(void);
/* The owner's "broadcast <text>" (erp_broadcast) and "paid <order>". */
int erp__owner_broadcast(struct erp_ctx *x, const struct erp_cmd *cmd);
int erp__owner_paid(struct erp_ctx *x, const struct erp_cmd *cmd);

/*
 * erp__queue writes one PENDING outbox row of priority prio to `to` (a
 * message that is not a reply to the sender: a payment notice to the
 * customer who ordered) with the Cloud API body `body`, and counts it in
 * x->out->queued. 0 or the store's error.
 */
int erp__queue(struct erp_ctx *x, enum outbox_prio prio, const char *to, const char *body);

/* ---- broadcast.c ---------------------------------------------------------- */

/* 1 when wa_id is a phone number ("+" and digits) a message can go to; a
 * sender known only by a business-scoped user id is not. */
int erp__addressable(const char *wa_id);
/* The text as a template parameter: one line, no tabs, runs of spaces made
 * one (the Cloud API refuses newlines, tabs and more than 4 spaces in a
 * row there), trimmed; in a. */
char *erp__template_param(struct arena *a, const char *text);

#endif
