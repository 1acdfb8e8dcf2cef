/*
 * test_erp.c - the pure parts of src/erp/: quantities and units, fuzzy
 * matching, the command parser, GST and rounding, the financial year, UPI
 * links and reply wording. No store: see test_erp_flow.c for erp_handle.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "erp/erp_internal.h"
#include "send/wamsg.h"

/* ---- quantities ------------------------------------------------------------ */

static void test_qty_numbers(void **state)
{
	(void)state;
	int64_t m;
	assert_int_equal(erp__qty_number("2", 1, &m), 0);
	assert_int_equal(m, 2000);
	assert_int_equal(erp__qty_number("1.5", 3, &m), 0);
	assert_int_equal(m, 1500);
	assert_int_equal(erp__qty_number("0.5", 3, &m), 0);
	assert_int_equal(m, 500);
	assert_int_equal(erp__qty_number(".5", 2, &m), 0);
	assert_int_equal(m, 500);
	assert_int_equal(erp__qty_number("0.125", 5, &m), 0);
	assert_int_equal(m, 125);
	assert_int_equal(erp__qty_number("9999999", 7, &m), 0);
	assert_int_equal(m, 9999999000LL);
	assert_int_equal(erp__qty_number("0", 1, &m), 0);
	assert_int_equal(m, 0);
	/* ERR_TOOBIG: 8 integer digits, 4 decimals */
	assert_int_equal(erp__qty_number("12345678", 8, &m), ERR_TOOBIG);
	assert_int_equal(erp__qty_number("1.2345", 6, &m), ERR_TOOBIG);
	/* ERR_INVAL: not numbers */
	assert_int_equal(erp__qty_number("2.", 2, &m), ERR_INVAL);
	assert_int_equal(erp__qty_number(".", 1, &m), ERR_INVAL);
	assert_int_equal(erp__qty_number("", 0, &m), ERR_INVAL);
	assert_int_equal(erp__qty_number("1.2.3", 5, &m), ERR_INVAL);
	assert_int_equal(erp__qty_number("abc", 3, &m), ERR_INVAL);
}

static void test_qty_units(void **state)
{
	(void)state;
	static const char *const kg[] = {"kg", "kgs", "kilo", "KG", "Kilos", NULL};
	static const char *const g[] = {"g", "gm", "gms", "gram", "grams", NULL};
	static const char *const l[] = {"l", "ltr", "litre", "liter", "litres", NULL};
	static const char *const pc[] = {"pc", "pcs", "piece", "pieces", NULL};
	static const char *const pkt[] = {"packet", "packets", "pkt", "pack", NULL};
	for (int i = 0; kg[i]; i++)
		assert_string_equal(erp__unit_lookup(kg[i])->name, "kg");
	for (int i = 0; g[i]; i++)
		assert_string_equal(erp__unit_lookup(g[i])->name, "g");
	for (int i = 0; l[i]; i++)
		assert_string_equal(erp__unit_lookup(l[i])->name, "l");
	for (int i = 0; pc[i]; i++)
		assert_string_equal(erp__unit_lookup(pc[i])->name, "pc");
	for (int i = 0; pkt[i]; i++)
		assert_string_equal(erp__unit_lookup(pkt[i])->name, "packet");
	assert_string_equal(erp__unit_lookup("ml")->name, "ml");
	assert_null(erp__unit_lookup("rice"));
	assert_null(erp__unit_lookup(""));
	assert_null(erp__unit_lookup(NULL));
}

static void test_qty_tokens(void **state)
{
	(void)state;
	struct erp_qty q;
	assert_int_equal(erp__qty_token("2", &q), 0);
	assert_int_equal(q.milli, 2000);
	assert_null(q.unit);
	assert_int_equal(erp__qty_token("2kg", &q), 0);
	assert_string_equal(q.unit->name, "kg");
	assert_int_equal(erp__qty_token("1.5kg", &q), 0);
	assert_int_equal(q.milli, 1500);
	assert_int_equal(erp__qty_token("0.5kg", &q), 0);
	assert_int_equal(q.milli, 500);
	assert_int_equal(erp__qty_token("500g", &q), 0);
	assert_string_equal(q.unit->name, "g");
	assert_int_equal(erp__qty_token("500gms", &q), 0);
	assert_int_equal(erp__qty_token("250ml", &q), 0);
	assert_string_equal(q.unit->name, "ml");
	assert_int_equal(erp__qty_token("2pkt", &q), 0);
	assert_string_equal(q.unit->name, "packet");
	assert_int_equal(erp__qty_token("3x", &q), 0);
	assert_null(q.unit);
	assert_int_equal(erp__qty_token("5star", &q), ERR_INVAL);
	assert_int_equal(erp__qty_token("rice", &q), ERR_INVAL);
	assert_int_equal(erp__qty_token("123456789kg", &q), ERR_TOOBIG);
}

static void test_qty_to_base(void **state)
{
	(void)state;
	struct erp_qty q;
	int64_t b;

#define QB(milli_, unit_, punit, bpu, want_rc, want)                                               \
	do {                                                                                       \
		q.milli = (milli_);                                                                \
		q.unit = erp__unit_lookup(unit_);                                                  \
		b = -1;                                                                            \
		assert_int_equal(erp__qty_to_base(&q, punit, bpu, &b), want_rc);                   \
		if ((want_rc) == 0)                                                                \
			assert_int_equal(b, want);                                                 \
	} while (0)

	QB(2000, "kg", "kg", 1000, 0, 2000);       /* 2 kg rice */
	QB(2000, NULL, "kg", 1000, 0, 2000);       /* "order 2 rice": selling unit */
	QB(1500, "kg", "kg", 1000, 0, 1500);       /* 1.5 kg */
	QB(500, "kg", "kg", 1000, 0, 500);         /* 0.5kg */
	QB(500000, "g", "kg", 1000, 0, 500);       /* 500 g of a kg product */
	QB(2000, "packet", "packet", 1, 0, 2);     /* 2 packet maggi */
	QB(2000, "pc", "packet", 1, 0, 2);         /* count units interchange */
	QB(1000, "dozen", "pc", 1, 0, 12);         /* a dozen eggs */
	QB(500000, "ml", "l", 1000, 0, 500);       /* 500 ml of a litre product */
	QB(1000, "l", "ml", 1, 0, 1000);           /* 1 l of a ml-counted product */
	QB(2000, "kg", "g", 1, 0, 2000);           /* sold per gram */
	QB(2000, "kg", "box", 1, ERR_CONFLICT, 0); /* unknown selling unit */
	QB(2000, NULL, "box", 1, 0, 2);
	/* ERR_CONFLICT: another family ("2 litre rice") */
	QB(2000, "l", "kg", 1000, ERR_CONFLICT, 0);
	QB(2000, "kg", "packet", 1, ERR_CONFLICT, 0);
	QB(2000, "pc", "l", 1000, ERR_CONFLICT, 0);
	/* ERR_INVAL: not whole base units, zero, bad product */
	QB(500, "pc", "pc", 1, ERR_INVAL, 0);
	QB(1, "g", "kg", 1000, ERR_INVAL, 0);   /* 0.001 g */
	QB(500000, "g", "kg", 1, ERR_INVAL, 0); /* kg sold whole */
	QB(0, "kg", "kg", 1000, ERR_INVAL, 0);
	QB(1000, "kg", "kg", 0, ERR_INVAL, 0);
	/* ERR_TOOBIG: over ERP_QTY_MAX_UNITS selling units */
	QB((int64_t)ERP_QTY_MAX_UNITS * 1000, "kg", "kg", 1000, 0,
	   (int64_t)ERP_QTY_MAX_UNITS * 1000);
	QB(((int64_t)ERP_QTY_MAX_UNITS + 1) * 1000, "kg", "kg", 1000, ERR_TOOBIG, 0);
	QB(9999999000LL, "dozen", "pc", INT64_MAX / 2, ERR_TOOBIG, 0); /* overflow */
#undef QB
}

static void test_size_word(void **state)
{
	(void)state;
	struct arena a;
	struct erp_token *t;
	int n;
	const char *w;
	arena_init(&a, 0);
	erp__tokenize(&a, "500 ml 1ltr 2 rice 3x", &t, &n);
	assert_int_equal(erp__size_word(&a, t, n, 0, &w), 2);
	assert_string_equal(w, "500ml");
	assert_int_equal(erp__size_word(&a, t, n, 2, &w), 1);
	assert_string_equal(w, "1l");
	assert_int_equal(erp__size_word(&a, t, n, 3, &w), 0); /* "2 rice" */
	assert_int_equal(erp__size_word(&a, t, n, 5, &w), 0); /* "3x" */
	arena_release(&a);
}

/* ---- matching ------------------------------------------------------------- */

static struct product catalogue[] = {
        {.id = 1, .name = "Amul Milk 1 l", .aliases = "", .unit = "packet", .base_per_unit = 1},
        {.id = 2, .name = "Amul Milk 500ml", .aliases = "", .unit = "packet", .base_per_unit = 1},
        {.id = 3, .name = "Atta", .aliases = "", .unit = "kg", .base_per_unit = 1000},
        {.id = 4, .name = "Basmati Rice", .aliases = "", .unit = "kg", .base_per_unit = 1000},
        {.id = 5, .name = "Eggs", .aliases = "", .unit = "pc", .base_per_unit = 1},
        {.id = 6,
         .name = "Maggi Noodles",
         .aliases = "maggi,maggie",
         .unit = "packet",
         .base_per_unit = 1},
        {.id = 7, .name = "Rice", .aliases = "", .unit = "kg", .base_per_unit = 1000},
        {.id = 8, .name = "Sugar", .aliases = "", .unit = "kg", .base_per_unit = 1000},
        {.id = 9,
         .name = "Toor Dal",
         .aliases = "arhar, tuvar",
         .unit = "kg",
         .base_per_unit = 1000},
        {.id = 10, .name = "Tata Tea", .aliases = "", .unit = "packet", .base_per_unit = 1},
};

static int64_t match_id(const char *phrase, enum erp_match_kind *kind, struct erp_match *mout)
{
	struct arena a;
	struct erp_catalog cat;
	struct erp_token *t;
	const char *words[16];
	int n, nw = 0;
	struct erp_match m;

	arena_init(&a, 0);
	erp__catalog_init(&cat, catalogue, (int)(sizeof(catalogue) / sizeof(catalogue[0])), &a);
	erp__tokenize(&a, phrase, &t, &n);
	for (int i = 0; i < n && nw < 16; i++)
		if (!t[i].sep)
			words[nw++] = t[i].s;
	erp__match(&cat, words, nw, &m);
	arena_release(&a);
	if (kind)
		*kind = m.kind;
	if (mout)
		*mout = m;
	return m.kind == ERP_MATCH_ONE ? m.product->id : 0;
}

static void test_synonym_table_sorted(void **state)
{
	(void)state;
	char tmp[64];
	assert_true(erp__synonyms_sorted());
	/* first, last and middle entries are all found */
	assert_string_equal(erp__canon_word("aata", tmp, sizeof(tmp)), "atta");
	assert_string_equal(erp__canon_word("tel", tmp, sizeof(tmp)), "oil");
	assert_string_equal(erp__canon_word("chawal", tmp, sizeof(tmp)), "rice");
	assert_string_equal(erp__canon_word("andey", tmp, sizeof(tmp)), "egg");
	assert_string_equal(erp__canon_word("zzz", tmp, sizeof(tmp)), "zzz");
}

static void test_edit_distance(void **state)
{
	(void)state;
	assert_int_equal(erp__edit_distance("rice", 4, "rice", 4), 0);
	assert_int_equal(erp__edit_distance("rcie", 4, "rice", 4), 1); /* transposition */
	assert_int_equal(erp__edit_distance("suger", 5, "sugar", 5), 1);
	assert_int_equal(erp__edit_distance("kitten", 6, "sitting", 7), 3);
	assert_int_equal(erp__edit_distance("", 0, "abc", 3), 3);
	assert_int_equal(erp__edit_distance("abc", 3, "", 0), 3);
	char big[40];
	memset(big, 'a', sizeof(big));
	assert_int_equal(erp__edit_distance(big, 40, big, 40), 0);
	assert_int_equal(erp__edit_distance(big, 40, big, 39), 40);
}

static void test_canon(void **state)
{
	(void)state;
	char tmp[64];
	assert_string_equal(erp__canon_word("chawal", tmp, sizeof(tmp)), "rice");
	assert_string_equal(erp__canon_word("cheeni", tmp, sizeof(tmp)), "sugar");
	assert_string_equal(erp__canon_word("chini", tmp, sizeof(tmp)), "sugar");
	assert_string_equal(erp__canon_word("aataa", tmp, sizeof(tmp)), "atta");
	assert_string_equal(erp__canon_word("daal", tmp, sizeof(tmp)), "dal");
	assert_string_equal(erp__canon_word("doodh", tmp, sizeof(tmp)), "milk");
	assert_string_equal(erp__canon_word("namak", tmp, sizeof(tmp)), "salt");
	assert_string_equal(erp__canon_word("tel", tmp, sizeof(tmp)), "oil");
	assert_string_equal(erp__canon_word("patti", tmp, sizeof(tmp)), "tea");
	assert_string_equal(erp__canon_word("anda", tmp, sizeof(tmp)), "egg");
	assert_string_equal(erp__canon_word("pyaaz", tmp, sizeof(tmp)), "onion");
	assert_string_equal(erp__canon_word("aloo", tmp, sizeof(tmp)), "potato");
	assert_string_equal(erp__canon_word("sabun", tmp, sizeof(tmp)), "soap");
	assert_string_equal(erp__canon_word("eggs", tmp, sizeof(tmp)), "egg");
	assert_string_equal(erp__canon_word("tomatoes", tmp, sizeof(tmp)), "tomato");
	assert_string_equal(erp__canon_word("berries", tmp, sizeof(tmp)), "berry");
	assert_string_equal(erp__canon_word("glass", tmp, sizeof(tmp)), "glass");
	assert_string_equal(erp__canon_word("dal", tmp, sizeof(tmp)), "dal");
}

static void test_match_hinglish(void **state)
{
	(void)state;
	assert_int_equal(match_id("chawal", NULL, NULL), 7);
	assert_int_equal(match_id("cheeni", NULL, NULL), 8);
	assert_int_equal(match_id("chini", NULL, NULL), 8);
	assert_int_equal(match_id("aata", NULL, NULL), 3);
	assert_int_equal(match_id("atta", NULL, NULL), 3);
	assert_int_equal(match_id("daal", NULL, NULL), 9);
	assert_int_equal(match_id("dal", NULL, NULL), 9);
	assert_int_equal(match_id("anda", NULL, NULL), 5);
	assert_int_equal(match_id("chai patti", NULL, NULL), 10);
	assert_int_equal(match_id("chawl", NULL, NULL), 7); /* misspelt Hinglish */
}

static void test_match_names(void **state)
{
	(void)state;
	assert_int_equal(match_id("rice", NULL, NULL), 7); /* exact beats Basmati Rice */
	assert_int_equal(match_id("Rice", NULL, NULL), 7);
	assert_int_equal(match_id("basmati", NULL, NULL), 4);
	assert_int_equal(match_id("basmati rice", NULL, NULL), 4);
	assert_int_equal(match_id("egg", NULL, NULL), 5);    /* singular of Eggs */
	assert_int_equal(match_id("sugars", NULL, NULL), 8); /* plural of Sugar */
	assert_int_equal(match_id("arhar", NULL, NULL), 9);  /* alias */
	assert_int_equal(match_id("tuvar", NULL, NULL), 9);  /* alias after ", " */
	assert_int_equal(match_id("maggi", NULL, NULL), 6);
	assert_int_equal(match_id("amul milk 500ml", NULL, NULL), 2);
	assert_int_equal(match_id("amul milk 500 ml", NULL, NULL), 2);
	assert_int_equal(match_id("amul milk 1 ltr", NULL, NULL), 1);
}

static void test_match_typos(void **state)
{
	(void)state;
	assert_int_equal(match_id("rcie", NULL, NULL), 7);     /* 4 letters, transposed */
	assert_int_equal(match_id("suger", NULL, NULL), 8);    /* 5 letters, 1 edit */
	assert_int_equal(match_id("basmatee", NULL, NULL), 4); /* 8 letters, 2 edits */
	assert_int_equal(match_id("noodels", NULL, NULL), 6);
	/* no typo allowance below 4 letters or past it */
	assert_int_equal(match_id("ric", NULL, NULL), 0);
	assert_int_equal(match_id("sgur", NULL, NULL), 0); /* 2 edits on 4 letters */
	assert_int_equal(match_id("basmtaeee", NULL, NULL), 0);
}

static void test_match_none_and_ambiguous(void **state)
{
	(void)state;
	enum erp_match_kind k;
	struct erp_match m;

	assert_int_equal(match_id("xyzzy", &k, &m), 0);
	assert_int_equal(k, ERP_MATCH_NONE);
	assert_int_equal(m.nsuggest, ERP_MAX_SUGGEST);
	assert_int_equal(m.close, 0); /* nothing like it: not "did you mean" */
	for (int i = 0; i < m.nsuggest; i++)
		assert_non_null(m.suggest[i]);

	/* "brown rice": rice matches, brown does not → suggestions, Rice first */
	assert_int_equal(match_id("brown rice", &k, &m), 0);
	assert_int_equal(k, ERP_MATCH_NONE);
	assert_true(m.nsuggest >= 1);
	assert_int_equal(m.close, 1);
	assert_int_equal(m.suggest[0]->id, 7);

	/* a near miss past the allowance is still offered as "did you mean" */
	assert_int_equal(match_id("sgur", &k, &m), 0);
	assert_int_equal(m.close, 1);
	assert_int_equal(m.suggest[0]->id, 8);

	/* "amul milk": two products tie */
	assert_int_equal(match_id("amul milk", &k, &m), 0);
	assert_int_equal(k, ERP_MATCH_AMBIGUOUS);
	assert_int_equal(m.nsuggest, 2);

	/* Hindi script and emoji: no crash, no match */
	assert_int_equal(match_id("\xE0\xA4\x9A\xE0\xA4\xBE\xE0\xA4\xB5\xE0\xA4\xB2", &k, &m), 0);
	assert_int_equal(match_id("\xF0\x9F\x8D\x9A", &k, &m), 0);
	assert_int_equal(k, ERP_MATCH_NONE);
	assert_int_equal(m.nsuggest, 0); /* nothing typed */
}

static void test_match_empty_catalogue(void **state)
{
	(void)state;
	struct arena a;
	struct erp_catalog cat;
	struct erp_match m;
	const char *w[] = {"rice"};
	arena_init(&a, 0);
	erp__catalog_init(&cat, NULL, 0, &a);
	erp__match(&cat, w, 1, &m);
	assert_int_equal(m.kind, ERP_MATCH_NONE);
	assert_int_equal(m.nsuggest, 0);
	arena_release(&a);
}

/* ---- parser ----------------------------------------------------------------- */

struct parsed {
	struct arena a;
	struct erp_cmd cmd;
};

static struct erp_cmd *parse(struct parsed *p, const char *text)
{
	arena_init(&p->a, 0);
	erp__parse(&p->a, text, &p->cmd);
	return &p->cmd;
}

static void item_is(const struct erp_item *it, int64_t milli, const char *unit, const char *text)
{
	assert_string_equal(it->text, text);
	if (milli < 0) {
		assert_int_equal(it->has_qty, 0);
		return;
	}
	assert_int_equal(it->has_qty, 1);
	assert_int_equal(it->qty.milli, milli);
	if (unit)
		assert_string_equal(it->qty.unit->name, unit);
	else
		assert_null(it->qty.unit);
}

static void test_parse_menu(void **state)
{
	(void)state;
	static const char *const menu[] = {"hi", "Hello!", "MENU", "help?", "namaste 🙏", " Hi. ",
	                                   "",   "   ",    "...",  "ok",    "hi ji",     NULL};
	struct parsed p;
	for (int i = 0; menu[i]; i++) {
		assert_int_equal(parse(&p, menu[i])->kind, ERP_CMD_MENU);
		arena_release(&p.a);
	}
	assert_int_equal(parse(&p, "blah blah")->kind, ERP_CMD_UNKNOWN);
	arena_release(&p.a);
	assert_int_equal(parse(&p, ERP_BTN_STOCK)->kind, ERP_CMD_HELP_STOCK);
	arena_release(&p.a);
	assert_int_equal(parse(&p, ERP_BTN_ORDER)->kind, ERP_CMD_HELP_ORDER);
	arena_release(&p.a);
	assert_int_equal(parse(&p, ERP_BTN_INVOICE)->kind, ERP_CMD_INVOICE);
	arena_release(&p.a);
	assert_int_equal(parse(&p, "stock")->kind, ERP_CMD_HELP_STOCK);
	arena_release(&p.a);
	assert_int_equal(parse(&p, "order")->kind, ERP_CMD_HELP_ORDER);
	arena_release(&p.a);
}

static void test_parse_confirm_cancel(void **state)
{
	(void)state;
	struct parsed p;
	struct erp_cmd *c = parse(&p, "confirm:42");
	assert_int_equal(c->kind, ERP_CMD_CONFIRM);
	assert_int_equal(c->order_id, 42);
	arena_release(&p.a);
	c = parse(&p, "cancel:7");
	assert_int_equal(c->kind, ERP_CMD_CANCEL);
	assert_int_equal(c->order_id, 7);
	arena_release(&p.a);
	static const char *const yes[] = {"confirm",    "Yes",     "haan", "YES!",
	                                  "yes please", "ji haan", NULL};
	for (int i = 0; yes[i]; i++) {
		c = parse(&p, yes[i]);
		assert_int_equal(c->kind, ERP_CMD_CONFIRM);
		assert_int_equal(c->order_id, 0);
		arena_release(&p.a);
	}
	static const char *const no[] = {"cancel", "No", "nahi", NULL};
	for (int i = 0; no[i]; i++) {
		c = parse(&p, no[i]);
		assert_int_equal(c->kind, ERP_CMD_CANCEL);
		assert_int_equal(c->order_id, 0);
		arena_release(&p.a);
	}
	/* malformed button ids are not confirmations of some other order */
	c = parse(&p, "confirm:abc");
	assert_int_not_equal(c->kind, ERP_CMD_CONFIRM);
	arena_release(&p.a);
	c = parse(&p, "confirm:99999999999999999999999");
	assert_int_not_equal(c->kind, ERP_CMD_CONFIRM);
	arena_release(&p.a);
	assert_int_equal(parse(&p, "invoice")->kind, ERP_CMD_INVOICE);
	arena_release(&p.a);
	assert_int_equal(parse(&p, "status")->kind, ERP_CMD_STATUS);
	arena_release(&p.a);
}

static void test_parse_stock(void **state)
{
	(void)state;
	struct parsed p;
	struct erp_cmd *c;
	static const struct {
		const char *text, *item;
	} cases[] = {
	        {"stock rice", "rice"},
	        {"Stock Rice?", "rice"},
	        {"price rice", "rice"},
	        {"check chawal", "chawal"},
	        {"rice hai?", "rice"},
	        {"chawal hai kya?", "chawal"},
	        {"kya cheeni hai", "cheeni"},
	        {"do you have sugar?", "sugar"},
	        {"is atta available", "atta"},
	        {"price of rice", "rice"},
	        {"stock amul milk 500 ml", "amul milk 500ml"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		c = parse(&p, cases[i].text);
		assert_int_equal(c->kind, ERP_CMD_STOCK);
		assert_int_equal(c->nitems, 1);
		assert_string_equal(c->items[0].text, cases[i].item);
		arena_release(&p.a);
	}
	c = parse(&p, "stock rice, dal");
	assert_int_equal(c->kind, ERP_CMD_STOCK);
	assert_int_equal(c->nitems, 2);
	assert_string_equal(c->items[1].text, "dal");
	arena_release(&p.a);
}

static void test_parse_orders(void **state)
{
	(void)state;
	struct parsed p;
	struct erp_cmd *c;

	c = parse(&p, "order 2 kg chawal");
	assert_int_equal(c->kind, ERP_CMD_ORDER);
	assert_int_equal(c->err, ERP_PERR_NONE);
	assert_int_equal(c->nitems, 1);
	item_is(&c->items[0], 2000, "kg", "chawal");
	arena_release(&p.a);

	c = parse(&p, "order 2kg rice, 500 g dal and 2 packet maggi");
	assert_int_equal(c->nitems, 3);
	item_is(&c->items[0], 2000, "kg", "rice");
	item_is(&c->items[1], 500000, "g", "dal");
	item_is(&c->items[2], 2000, "packet", "maggi");
	arena_release(&p.a);

	c = parse(&p, "order 2 rice");
	item_is(&c->items[0], 2000, NULL, "rice");
	arena_release(&p.a);

	c = parse(&p, "order rice 2kg");
	assert_int_equal(c->nitems, 1);
	item_is(&c->items[0], 2000, "kg", "rice");
	arena_release(&p.a);

	c = parse(&p, "order rice 2 kg dal 1.5 kg");
	assert_int_equal(c->nitems, 2);
	item_is(&c->items[0], 2000, "kg", "rice");
	item_is(&c->items[1], 1500, "kg", "dal");
	arena_release(&p.a);

	c = parse(&p, "order 1.5 kg atta aur 0.5kg cheeni + 3 pcs anda & 1 dozen eggs");
	assert_int_equal(c->nitems, 4);
	item_is(&c->items[0], 1500, "kg", "atta");
	item_is(&c->items[1], 500, "kg", "cheeni");
	item_is(&c->items[2], 3000, "pc", "anda");
	item_is(&c->items[3], 1000, "dozen", "eggs");
	arena_release(&p.a);

	c = parse(&p, "ORDER 2 KG RICE 500 GM DAL");
	assert_int_equal(c->nitems, 2);
	item_is(&c->items[0], 2000, "kg", "rice");
	item_is(&c->items[1], 500000, "g", "dal");
	arena_release(&p.a);

	c = parse(&p, "2kg rice please");
	assert_int_equal(c->kind, ERP_CMD_ORDER);
	item_is(&c->items[0], 2000, "kg", "rice");
	arena_release(&p.a);

	c = parse(&p, "order 2 amul milk 500ml");
	assert_int_equal(c->nitems, 1);
	item_is(&c->items[0], 2000, NULL, "amul milk 500ml");
	arena_release(&p.a);

	c = parse(&p, "order rice");
	item_is(&c->items[0], -1, NULL, "rice");
	arena_release(&p.a);

	c = parse(&p, "order 1,500 g dal");
	item_is(&c->items[0], 1500000, "g", "dal");
	arena_release(&p.a);

	c = parse(&p, "buy 2 litre rice");
	assert_int_equal(c->kind, ERP_CMD_ORDER);
	item_is(&c->items[0], 2000, "l", "rice");
	arena_release(&p.a);
}

static void test_parse_order_errors(void **state)
{
	(void)state;
	struct parsed p;
	struct erp_cmd *c;

	c = parse(&p, "order 0 kg rice");
	assert_int_equal(c->err, ERP_PERR_QTY_ZERO);
	arena_release(&p.a);
	c = parse(&p, "order 123456789 kg rice");
	assert_int_equal(c->err, ERP_PERR_QTY_BIG);
	arena_release(&p.a);
	c = parse(&p, "order 1.2345 kg rice");
	assert_int_equal(c->err, ERP_PERR_QTY_BIG);
	arena_release(&p.a);
	c = parse(&p, "order 2 kg");
	assert_int_equal(c->err, ERP_PERR_NO_ITEM);
	arena_release(&p.a);

	char big[600] = "order";
	for (int i = 0; i <= ERP_MAX_ORDER_LINES; i++)
		strcat(big, " 1 rice,");
	c = parse(&p, big);
	assert_int_equal(c->kind, ERP_CMD_ORDER);
	assert_int_equal(c->err, ERP_PERR_TOO_MANY);
	assert_int_equal(c->nitems, ERP_MAX_ORDER_LINES);
	arena_release(&p.a);
}

static void test_parse_owner(void **state)
{
	(void)state;
	struct parsed p;
	struct erp_cmd *c;

	c = parse(&p, "add stock 50 kg rice");
	assert_int_equal(c->kind, ERP_CMD_ADD_STOCK);
	assert_int_equal(c->err, ERP_PERR_NONE);
	item_is(&c->items[0], 50000, "kg", "rice");
	arena_release(&p.a);
	c = parse(&p, "restock rice 10");
	assert_int_equal(c->kind, ERP_CMD_ADD_STOCK);
	item_is(&c->items[0], 10000, NULL, "rice");
	arena_release(&p.a);
	c = parse(&p, "add stock");
	assert_int_equal(c->kind, ERP_CMD_ADD_STOCK);
	assert_int_equal(c->err, ERP_PERR_NO_ITEM);
	arena_release(&p.a);
	c = parse(&p, "add stock 5 rice, 2 dal");
	assert_int_equal(c->err, ERP_PERR_TOO_MANY);
	arena_release(&p.a);

	c = parse(&p, "price rice 62.50");
	assert_int_equal(c->kind, ERP_CMD_SET_PRICE);
	assert_int_equal(c->price_paise, 6250);
	assert_string_equal(c->items[0].text, "rice");
	arena_release(&p.a);
	c = parse(&p, "price basmati rice to ₹120");
	assert_int_equal(c->kind, ERP_CMD_SET_PRICE);
	assert_int_equal(c->price_paise, 12000);
	assert_string_equal(c->items[0].text, "basmati rice");
	arena_release(&p.a);
	c = parse(&p, "price rice rs.62.5");
	assert_int_equal(c->price_paise, 6250);
	arena_release(&p.a);
	c = parse(&p, "price rice 62.505");
	assert_int_equal(c->kind, ERP_CMD_SET_PRICE);
	assert_int_equal(c->err, ERP_PERR_PRICE_BAD);
	arena_release(&p.a);

	assert_int_equal(parse(&p, "low stock")->kind, ERP_CMD_LOW_STOCK);
	arena_release(&p.a);
	assert_int_equal(parse(&p, "Sales today")->kind, ERP_CMD_SALES_TODAY);
	arena_release(&p.a);
}

static void test_parse_rupees(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(erp_parse_rupees("62.50", &v), 0);
	assert_int_equal(v, 6250);
	assert_int_equal(erp_parse_rupees("62.5", &v), 0);
	assert_int_equal(v, 6250);
	assert_int_equal(erp_parse_rupees("62", &v), 0);
	assert_int_equal(v, 6200);
	assert_int_equal(erp_parse_rupees("0.05", &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(erp_parse_rupees("₹62.50", &v), 0);
	assert_int_equal(v, 6250);
	assert_int_equal(erp_parse_rupees("Rs. 99", &v), 0);
	assert_int_equal(v, 9900);
	assert_int_equal(erp_parse_rupees("rs99.9", &v), 0);
	assert_int_equal(v, 9990);
	/* ERR_INVAL */
	assert_int_equal(erp_parse_rupees("62.505", &v), ERR_INVAL);
	assert_int_equal(erp_parse_rupees("62.", &v), ERR_INVAL);
	assert_int_equal(erp_parse_rupees("", &v), ERR_INVAL);
	assert_int_equal(erp_parse_rupees("abc", &v), ERR_INVAL);
	assert_int_equal(erp_parse_rupees("-5", &v), ERR_INVAL);
	assert_int_equal(erp_parse_rupees("123456789", &v), ERR_INVAL);
	assert_int_equal(erp_parse_rupees(NULL, &v), ERR_INVAL);
}

static void test_tokenize_hostile(void **state)
{
	(void)state;
	struct arena a;
	struct erp_token *t;
	int n;
	arena_init(&a, 0);
	erp__tokenize(&a, "Lay's\x01\x7f ₹20 — 🍚rice…“dal”", &t, &n);
	assert_int_equal(n, 4);
	assert_string_equal(t[0].s, "lays");
	assert_string_equal(t[1].s, "20");
	assert_string_equal(t[2].s, "rice");
	assert_string_equal(t[3].s, "dal");
	/* Devanagari stays one word */
	erp__tokenize(&a, "चावल 2 kg", &t, &n);
	assert_int_equal(n, 3);
	assert_string_equal(t[0].s, "चावल");
	arena_release(&a);

	/* random bytes and an over-long message: never crash (ASan watches) */
	char *junk = malloc(ERP_MAX_TEXT * 3);
	assert_non_null(junk);
	unsigned int seed = 12345;
	for (int round = 0; round < 300; round++) {
		size_t len = (size_t)(seed % (ERP_MAX_TEXT * 3 - 1));
		for (size_t i = 0; i < len; i++) {
			seed = seed * 1103515245u + 12345u;
			unsigned char ch = (unsigned char)(seed >> 16);
			/* bias towards the interesting: digits, units, separators */
			static const char pick[] = "0123456789.,+&kgl rice order ";
			junk[i] =
			        (char)((ch & 1) ? pick[(ch >> 1) % (sizeof(pick) - 1)] : (ch | 1));
		}
		junk[len] = '\0';
		struct erp_cmd cmd;
		arena_init(&a, 0);
		erp__parse(&a, junk, &cmd);
		assert_true(cmd.nitems >= 0 && cmd.nitems <= ERP_MAX_ORDER_LINES);
		arena_release(&a);
		seed = seed * 1103515245u + 12345u;
	}
	free(junk);
}

/* ---- GST --------------------------------------------------------------------- */

static void test_line_amount(void **state)
{
	(void)state;
	int64_t v;
	assert_int_equal(erp__line_amount(6000, 2000, 1000, &v), 0);
	assert_int_equal(v, 12000);
	assert_int_equal(erp__line_amount(11000, 500, 1000, &v), 0);
	assert_int_equal(v, 5500);
	assert_int_equal(erp__line_amount(999, 500, 1000, &v), 0); /* 499.5 → 500 */
	assert_int_equal(v, 500);
	assert_int_equal(erp__line_amount(1, 1, 3, &v), 0); /* 0.33 → 0 */
	assert_int_equal(v, 0);
	assert_int_equal(erp__line_amount(2, 1, 3, &v), 0); /* 0.67 → 1 */
	assert_int_equal(v, 1);
	assert_int_equal(erp__line_amount(1, 1, 2, &v), 0); /* 0.5 → 1 */
	assert_int_equal(v, 1);
	assert_int_equal(erp__line_amount(-1, 1, 1, &v), ERR_INVAL);
	assert_int_equal(erp__line_amount(1, 1, 0, &v), ERR_INVAL);
	assert_int_equal(erp__line_amount(INT64_MAX / 2, 3, 1, &v), ERR_TOOBIG);
	assert_int_equal(erp__line_amount(ERP_MAX_LINE_PAISE + 1, 1, 1, &v), ERR_TOOBIG);
}

static void test_line_tax_rounding(void **state)
{
	(void)state;
	int64_t c, s, g;
	/* 1 paisa at 5 %: 0.05 → 0 either way */
	erp__line_tax(1, 500, 0, &c, &s, &g);
	assert_int_equal(g, 0);
	erp__line_tax(1, 500, 1, &c, &s, &g);
	assert_int_equal(c + s + g, 0);
	/* 10 paise at 5 %: IGST 0.5 → 1; CGST/SGST 0.25 → 0 each */
	erp__line_tax(10, 500, 0, &c, &s, &g);
	assert_int_equal(g, 1);
	assert_int_equal(c + s, 0);
	erp__line_tax(10, 500, 1, &c, &s, &g);
	assert_int_equal(c, 0);
	assert_int_equal(s, 0);
	assert_int_equal(g, 0);
	/* 20 paise at 5 %: IGST 1.0 → 1; CGST = SGST = 0.5 → 1 */
	erp__line_tax(20, 500, 0, &c, &s, &g);
	assert_int_equal(g, 1);
	erp__line_tax(20, 500, 1, &c, &s, &g);
	assert_int_equal(c, 1);
	assert_int_equal(s, 1);
	assert_int_equal(g, 0);
	/* ₹120 at 5 %: 600 IGST, 300 + 300 */
	erp__line_tax(12000, 500, 0, &c, &s, &g);
	assert_int_equal(g, 600);
	erp__line_tax(12000, 500, 1, &c, &s, &g);
	assert_int_equal(c, 300);
	assert_int_equal(s, 300);
	/* 18 % on ₹99.99: 1799.82 → 1800; halves 899.91 → 900 */
	erp__line_tax(9999, 1800, 0, &c, &s, &g);
	assert_int_equal(g, 1800);
	erp__line_tax(9999, 1800, 1, &c, &s, &g);
	assert_int_equal(c, 900);
	assert_int_equal(c, s);
	/* 0 % */
	erp__line_tax(12345, 0, 1, &c, &s, &g);
	assert_int_equal(c + s + g, 0);
	assert_int_equal(erp__div_half_up(5, 10), 1);
	assert_int_equal(erp__div_half_up(4, 10), 0);
	assert_int_equal(erp__div_half_up(15, 10), 2);
	assert_int_equal(erp__div_half_up(0, 7), 0);
}

static void test_totals_round_off(void **state)
{
	(void)state;
	struct order_line l[3];
	struct erp_totals t;
	memset(l, 0, sizeof(l));

	/* ₹120 + 5 %: 126.00 exactly, no round-off */
	l[0].amount_paise = 12000;
	l[0].gst_rate_bp = 500;
	assert_int_equal(erp__totals(l, 1, 1, &t), 0);
	assert_int_equal(t.taxable_paise, 12000);
	assert_int_equal(t.cgst_paise, 300);
	assert_int_equal(t.sgst_paise, 300);
	assert_int_equal(t.igst_paise, 0);
	assert_int_equal(t.round_off_paise, 0);
	assert_int_equal(t.total_paise, 12600);

	/* ₹55 + 5 % = 57.75 → 58.00, round-off +0.25 */
	l[0].amount_paise = 5500;
	assert_int_equal(erp__totals(l, 1, 0, &t), 0);
	assert_int_equal(t.igst_paise, 275);
	assert_int_equal(t.round_off_paise, 25);
	assert_int_equal(t.total_paise, 5800);

	/* ₹10.40 at 0 % → 10.00, round-off -0.40 */
	l[0].amount_paise = 1040;
	l[0].gst_rate_bp = 0;
	assert_int_equal(erp__totals(l, 1, 1, &t), 0);
	assert_int_equal(t.round_off_paise, -40);
	assert_int_equal(t.total_paise, 1000);

	/* exactly 50 paise goes up; 49 goes down */
	l[0].amount_paise = 1050;
	assert_int_equal(erp__totals(l, 1, 1, &t), 0);
	assert_int_equal(t.round_off_paise, 50);
	assert_int_equal(t.total_paise, 1100);
	l[0].amount_paise = 1049;
	assert_int_equal(erp__totals(l, 1, 1, &t), 0);
	assert_int_equal(t.round_off_paise, -49);
	assert_int_equal(t.total_paise, 1000);

	/* several lines, taxes summed per line: intra vs inter differ by the
	 * per-line rounding (20 paise at 5 %: 1+1 vs 1) */
	l[0].amount_paise = 20;
	l[0].gst_rate_bp = 500;
	l[1].amount_paise = 20;
	l[1].gst_rate_bp = 500;
	l[2].amount_paise = 10000;
	l[2].gst_rate_bp = 1800;
	assert_int_equal(erp__totals(l, 3, 1, &t), 0);
	assert_int_equal(t.taxable_paise, 10040);
	assert_int_equal(t.cgst_paise, 1 + 1 + 900);
	assert_int_equal(t.sgst_paise, t.cgst_paise);
	assert_int_equal(t.taxable_paise + t.cgst_paise + t.sgst_paise + t.round_off_paise,
	                 t.total_paise);
	assert_int_equal(t.total_paise % 100, 0);
	assert_int_equal(erp__totals(l, 3, 0, &t), 0);
	assert_int_equal(t.igst_paise, 1 + 1 + 1800);
	assert_int_equal(t.cgst_paise + t.sgst_paise, 0);

	/* ERR_INVAL: negative amounts, absurd rates, too many lines */
	l[0].amount_paise = -1;
	assert_int_equal(erp__totals(l, 1, 1, &t), ERR_INVAL);
	l[0].amount_paise = 1;
	l[0].gst_rate_bp = 10001;
	assert_int_equal(erp__totals(l, 1, 1, &t), ERR_INVAL);
	assert_int_equal(erp__totals(l, ERP_MAX_ORDER_LINES + 1, 1, &t), ERR_INVAL);
}

static void test_intra_state(void **state)
{
	(void)state;
	assert_int_equal(erp__intra_state("27", ""), 1);
	assert_int_equal(erp__intra_state("27", NULL), 1);
	assert_int_equal(erp__intra_state("27", "27"), 1);
	assert_int_equal(erp__intra_state("27", "29"), 0);
	assert_string_equal(erp__place_of_supply("27", ""), "27");
	assert_string_equal(erp__place_of_supply("27", "29"), "29");
}

static void test_fy_boundary(void **state)
{
	(void)state;
	char fy[5];
	erp__fy_code(1774981740000LL, fy); /* 2026-03-31 23:59 IST */
	assert_string_equal(fy, "2526");
	erp__fy_code(1774981800000LL, fy); /* 2026-04-01 00:00 IST */
	assert_string_equal(fy, "2627");
	erp__fy_code(1774981800000LL - 1, fy);
	assert_string_equal(fy, "2526");
	erp__fy_code(1743445800000LL, fy); /* 2025-04-01 00:00 IST */
	assert_string_equal(fy, "2526");
	erp__fy_code(1743445799000LL, fy); /* 2025-03-31 23:59:59 IST */
	assert_string_equal(fy, "2425");
	/* 2026-03-31 20:00 UTC is already 1 April in India */
	erp__fy_code(1774987200000LL, fy);
	assert_string_equal(fy, "2627");
	erp__fy_code(946684800000LL, fy); /* 2000-01-01 05:30 IST */
	assert_string_equal(fy, "9900");
}

/* ---- UPI ----------------------------------------------------------------------- */

static void test_upi_link(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 0);
	char *l = erp__upi_link(&a, "sharma.kirana@okaxis", "Sharma Kirana & Sons", 12600,
	                        "INV/2526/000001");
	assert_string_equal(l,
	                    "upi://pay?pa=sharma.kirana%40okaxis&pn=Sharma%20Kirana%20%26%20"
	                    "Sons&am=126.00&cu=INR&tn=INV%2F2526%2F000001&tr=INV%2F2526%2F000001");
	l = erp__upi_link(&a, "a_b-c.d~e@upi", "राम", 5, "X");
	assert_string_equal(l, "upi://pay?pa=a_b-c.d~e%40upi&pn=%E0%A4%B0%E0%A4%BE%E0%A4%AE"
	                       "&am=0.05&cu=INR&tn=X&tr=X");
	l = erp__upi_link(&a, "x@y", "a=b?c#d+e", 123456789, "");
	assert_string_equal(l, "upi://pay?pa=x%40y&pn=a%3Db%3Fc%23d%2Be&am=1234567.89&cu=INR&tn="
	                       "&tr=");
	arena_release(&a);
}

/* ---- wording --------------------------------------------------------------------- */

static char *fmt(struct buf *b)
{
	static char out[256];
	snprintf(out, sizeof(out), "%s", b->data ? b->data : "");
	buf_reset(b);
	return out;
}

static void test_text_format(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	erp__fmt_money(&b, 12345678);
	assert_string_equal(fmt(&b), "₹1,23,456.78");
	erp__fmt_money(&b, 5);
	assert_string_equal(fmt(&b), "₹0.05");
	erp__fmt_money(&b, -25);
	assert_string_equal(fmt(&b), "-₹0.25");
	erp__fmt_money(&b, 100000);
	assert_string_equal(fmt(&b), "₹1,000.00");
	erp__fmt_int(&b, 1000000000);
	assert_string_equal(fmt(&b), "1,00,00,00,000");
	erp__fmt_int(&b, 999);
	assert_string_equal(fmt(&b), "999");
	erp__fmt_qty(&b, 1000000, 1000, "kg");
	assert_string_equal(fmt(&b), "1,000 kg");
	erp__fmt_qty(&b, 500, 1000, "kg");
	assert_string_equal(fmt(&b), "0.5 kg");
	erp__fmt_qty(&b, 1250, 1000, "kg");
	assert_string_equal(fmt(&b), "1.25 kg");
	erp__fmt_qty(&b, 1, 1, "packet");
	assert_string_equal(fmt(&b), "1 packet");
	erp__fmt_qty(&b, 3, 1, "packet");
	assert_string_equal(fmt(&b), "3 packets");
	erp__fmt_qty(&b, 2, 1, "pc");
	assert_string_equal(fmt(&b), "2 pcs");
	erp__fmt_rate(&b, 500);
	assert_string_equal(fmt(&b), "5%");
	erp__fmt_rate(&b, 250);
	assert_string_equal(fmt(&b), "2.5%");
	erp__fmt_rate(&b, 25);
	assert_string_equal(fmt(&b), "0.25%");
	erp__fmt_date(&b, 1774981740000LL);
	assert_string_equal(fmt(&b), "31 Mar 2026");
	buf_release(&b);
}

static void test_text_clean(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 0);
	/* invalid UTF-8 → '?', controls → space, valid multi-byte kept */
	assert_string_equal(erp__clean(&a,
	                               "a\xff"
	                               "b\x01"
	                               "c\xC3\xA9\xED\xA0\x80",
	                               100),
	                    "a?b c\xC3\xA9???");
	assert_string_equal(erp__clean(&a, "line1\nline2", 100), "line1 line2");
	assert_string_equal(erp__clean_text(&a, "line1\nline2", 100), "line1\nline2");
	/* clipping never splits a character and ends with … */
	char *s = erp__clean(&a, "चावलचावलचावल", 14);
	assert_true(strlen(s) <= 14);
	assert_string_equal(s, "चाव…"); /* 9 bytes + 3 */
	assert_string_equal(erp__clean(&a, "exactly10!", 10), "exactly10!");
	assert_string_equal(erp__clean(&a, "exactly11!!", 10), "exactly…");
	assert_string_equal(erp__clean(&a, NULL, 10), "");
	arena_release(&a);
}

static void test_parse_marketing(void **state)
{
	(void)state;
	struct parsed p;
	struct erp_cmd *c;
	static const char *const stops[] = {"stop",        "STOP",    " Stop. ", "unsubscribe",
	                                    "stop please", "Opt out", NULL};
	for (int i = 0; stops[i]; i++) {
		assert_int_equal(parse(&p, stops[i])->kind, ERP_CMD_STOP);
		arena_release(&p.a);
	}
	static const char *const starts[] = {"start", "START", "subscribe", "start please", NULL};
	for (int i = 0; starts[i]; i++) {
		assert_int_equal(parse(&p, starts[i])->kind, ERP_CMD_START);
		arena_release(&p.a);
	}
	/* "stop" inside a longer message is not an opt-out */
	assert_int_not_equal(parse(&p, "stop rice")->kind, ERP_CMD_STOP);
	arena_release(&p.a);

	/* broadcast: the text as typed, case and newlines kept, trimmed */
	c = parse(&p, "  Broadcast  Diwali SALE!\n10% off \"all\" sweets  ");
	assert_int_equal(c->kind, ERP_CMD_BROADCAST);
	assert_string_equal(c->text, "Diwali SALE!\n10% off \"all\" sweets");
	arena_release(&p.a);
	c = parse(&p, "broadcast");
	assert_int_equal(c->kind, ERP_CMD_BROADCAST);
	assert_string_equal(c->text, "");
	arena_release(&p.a);
	c = parse(&p, "broadcasting is fun"); /* a word that only starts so */
	assert_int_not_equal(c->kind, ERP_CMD_BROADCAST);
	arena_release(&p.a);

	/* paid [order] [#]<n> */
	static const struct {
		const char *text;
		int64_t id;
	} paid[] = {{"paid 42", 42},     {"PAID #42", 42},
	            {"paid order 7", 7}, {"paid order no. 9", 9},
	            {"paid", 0},         {"paid 4 2", 0},
	            {"paid 12.5", 0},    {"paid rice", 0},
	            {"paid 0", 0},       {"paid 1234567890123456789", 0}};
	for (size_t i = 0; i < sizeof(paid) / sizeof(paid[0]); i++) {
		c = parse(&p, paid[i].text);
		assert_int_equal(c->kind, ERP_CMD_PAID);
		if (c->order_id != paid[i].id)
			fail_msg("\"%s\": order %lld, want %lld", paid[i].text,
			         (long long)c->order_id, (long long)paid[i].id);
		arena_release(&p.a);
	}
}

static void test_template_body(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 0);
	/* a template parameter: one line, no tabs, no runs of spaces */
	assert_string_equal(erp__template_param(&a, "  Diwali\n\nsale:\t10%   off  "),
	                    "Diwali sale: 10% off");
	assert_string_equal(erp__template_param(&a, " \n\t "), "");

	const char *param = erp__template_param(&a, "Say \"hi\" \\ ₹50 off");
	char *body = wamsg_template(&a, "919800000001", "weekly_offer", "en", param);
	json_error_t jerr;
	json_t *v = json_loads(body, 0, &jerr);
	if (!v)
		fail_msg("not JSON (%s): %s", jerr.text, body);
	assert_string_equal(json_string_value(json_object_get(v, "messaging_product")), "whatsapp");
	assert_string_equal(json_string_value(json_object_get(v, "recipient_type")), "individual");
	assert_string_equal(json_string_value(json_object_get(v, "to")), "+919800000001");
	assert_string_equal(json_string_value(json_object_get(v, "type")), "template");
	json_t *t = json_object_get(v, "template");
	assert_string_equal(json_string_value(json_object_get(t, "name")), "weekly_offer");
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(t, "language"), "code")), "en");
	json_t *comp = json_array_get(json_object_get(t, "components"), 0);
	assert_string_equal(json_string_value(json_object_get(comp, "type")), "body");
	json_t *par = json_array_get(json_object_get(comp, "parameters"), 0);
	assert_string_equal(json_string_value(json_object_get(par, "type")), "text");
	assert_string_equal(json_string_value(json_object_get(par, "text")),
	                    "Say \"hi\" \\ ₹50 off");
	assert_null(json_object_get(v, "context")); /* marketing answers nothing */
	json_decref(v);

	/* "+" is not doubled */
	body = wamsg_template(&a, "+919800000001", "x", "hi", "p");
	assert_non_null(strstr(body, "\"to\":\"+919800000001\""));
	assert_int_equal(erp__addressable("919800000001"), 1);
	assert_int_equal(erp__addressable("+919800000001"), 1);
	assert_int_equal(erp__addressable("US.13491208655302741918"), 0);
	assert_int_equal(erp__addressable("+"), 0);
	assert_int_equal(erp__addressable(""), 0);
	arena_release(&a);
}

static void test_is_owner(void **state)
{
	(void)state;
	assert_int_equal(erp__is_owner("919876543210", "919876543210"), 1);
	assert_int_equal(erp__is_owner("911111111111, +91 98765-43210", "919876543210"), 1);
	assert_int_equal(erp__is_owner("911111111111", "919876543210"), 0);
	assert_int_equal(erp__is_owner("", "919876543210"), 0);
	assert_int_equal(erp__is_owner(NULL, "919876543210"), 0);
	assert_int_equal(erp__is_owner("919876543210", ""), 0);
	assert_int_equal(erp__is_owner(",,", "x"), 0);
	/* a prefix is not a match */
	assert_int_equal(erp__is_owner("9198765432", "919876543210"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_synonym_table_sorted),
	        cmocka_unit_test(test_qty_numbers),
	        cmocka_unit_test(test_qty_units),
	        cmocka_unit_test(test_qty_tokens),
	        cmocka_unit_test(test_qty_to_base),
	        cmocka_unit_test(test_size_word),
	        cmocka_unit_test(test_edit_distance),
	        cmocka_unit_test(test_canon),
	        cmocka_unit_test(test_match_hinglish),
	        cmocka_unit_test(test_match_names),
	        cmocka_unit_test(test_match_typos),
	        cmocka_unit_test(test_match_none_and_ambiguous),
	        cmocka_unit_test(test_match_empty_catalogue),
	        cmocka_unit_test(test_parse_menu),
	        cmocka_unit_test(test_parse_confirm_cancel),
	        cmocka_unit_test(test_parse_stock),
	        cmocka_unit_test(test_parse_orders),
	        cmocka_unit_test(test_parse_order_errors),
	        cmocka_unit_test(test_parse_owner),
	        cmocka_unit_test(test_parse_rupees),
	        cmocka_unit_test(test_tokenize_hostile),
	        cmocka_unit_test(test_line_amount),
	        cmocka_unit_test(test_line_tax_rounding),
	        cmocka_unit_test(test_totals_round_off),
	        cmocka_unit_test(test_intra_state),
	        cmocka_unit_test(test_fy_boundary),
	        cmocka_unit_test(test_upi_link),
	        cmocka_unit_test(test_text_format),
	        cmocka_unit_test(test_text_clean),
	        cmocka_unit_test(test_is_owner),
	        cmocka_unit_test(test_parse_marketing),
	        cmocka_unit_test(test_template_body),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
