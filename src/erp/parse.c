/*
 * parse.c - a message body → struct erp_cmd.
 *
 * The parser is pure: it knows words, numbers and units but no catalogue,
 * so it never fails; what it cannot read is ERP_CMD_UNKNOWN (the handler
 * answers with the menu) or carries cmd->err (the handler explains).
 *
 * 1. Button ids are matched on the trimmed raw body first: menu_stock,
 *    menu_order, menu_invoice, "confirm:<id>", "cancel:<id>" (digits only);
 *    then "broadcast <text>", whose text is kept as typed (case, newlines).
 * 2. erp__tokenize: ASCII lower-cased; letters, digits and non-ASCII bytes
 *    (Devanagari...) make words; "1.5" and "1,500" stay one number; "lay's"
 *    is "lays"; ₹, emoji, quotes and other punctuation separate words; ',',
 *    '+', '&', ';' and newlines are separators between items.
 * 3. Whole phrases, please/ji/ok aside: greetings → MENU; "yes"/"haan"/
 *    "confirm" → CONFIRM; "no"/"cancel" → CANCEL; "invoice"/"bill";
 *    "status"; "low stock"; "sales today"; "stop"/"unsubscribe" → STOP,
 *    "start"/"subscribe" → START.
 * 4. First word: stock/check/price/rate <items> → STOCK ("price <item>
 *    <rupees>" → SET_PRICE, which the handler allows only for owners);
 *    paid [order] [#]<n> → PAID (order_id 0 when no number follows);
 *    order/buy <items> → ORDER; a message that starts with a quantity is an
 *    order; add stock/restock <qty> <item> → ADD_STOCK.
 * 5. Questions: "<item> hai (kya)?", "kya <item> hai", "do you have
 *    <item>", "<item> available" → STOCK.
 *
 * Order items. The words "and"/"aur" and the separators split the text
 * into segments; a segment holds one or more items, either quantity first
 * ("2 kg rice 500 g dal") or quantity after ("rice 2kg dal 1 kg"), decided
 * by its first token. A unit word right after a number is its unit; a
 * trailing size after a name ("amul milk 500ml") is part of the name.
 * Filler words (of, ka, please, chahiye...) are dropped. A missing
 * quantity means one selling unit.
 *
 * Who is speaking (erp__is_owner) lives here too: the sender's number
 * against tenant.owner_numbers, digits only.
 *
 * Caps: the body is read up to ERP_MAX_TEXT bytes; at most
 * ERP_MAX_ORDER_LINES items (more is ERP_PERR_TOO_MANY).
 * Thread-safe: static const tables only.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/err.h"
#include "erp/erp_internal.h"

/* ---- tokenizer ------------------------------------------------------------ */

static int is_digit(int ch)
{
	return ch >= '0' && ch <= '9';
}

static int is_alnum(int ch)
{
	return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/*
 * Length of a non-ASCII sequence at p that separates words (₹, danda,
 * general punctuation, symbols, emoji, no-break space), else 0. The
 * apostrophes ’ ‘ are reported as -3: dropped without separating.
 */
static int nonascii_sep(const unsigned char *p, size_t left)
{
	if (left >= 2 && p[0] == 0xC2 && (p[1] == 0xA0 || p[1] == 0xAB || p[1] == 0xBB))
		return 2;
	if (left >= 3 && p[0] == 0xE2) {
		if (p[1] == 0x80 && (p[2] == 0x98 || p[2] == 0x99))
			return -3;
		if (p[1] == 0x80 || p[1] == 0x81 || p[1] == 0x82 || (p[1] >= 0x84 && p[1] <= 0x9F))
			return 3; /* punctuation, currency (₹), symbols, dingbats */
	}
	if (left >= 3 && p[0] == 0xE0 && p[1] == 0xA5 && (p[2] == 0xA4 || p[2] == 0xA5))
		return 3; /* danda, double danda */
	if (left >= 3 && p[0] == 0xEF && p[1] == 0xB8 && p[2] == 0x8F)
		return 3; /* variation selector-16 */
	if (left >= 3 && p[0] == 0xEF && p[1] == 0xBF && p[2] == 0xBD)
		return 3; /* replacement character */
	if (left >= 4 && p[0] == 0xF0 && p[1] == 0x9F)
		return 4; /* emoji */
	return 0;
}

/* The tokenizer's state: words are copied, lower-cased, NUL-terminated,
 * into store; toks[] points into it. */
struct tokenizer {
	struct erp_token *toks;
	int nt;
	char *store;
	size_t w, start;
	int inword, digits_only;
};

static void tok_end_word(struct tokenizer *tz)
{
	if (!tz->inword)
		return;
	tz->store[tz->w++] = '\0';
	tz->toks[tz->nt].s = tz->store + tz->start;
	tz->toks[tz->nt].sep = 0;
	tz->nt++;
	tz->inword = 0;
}

static void tok_put(struct tokenizer *tz, int ch)
{
	if (!tz->inword) {
		tz->start = tz->w;
		tz->inword = 1;
		tz->digits_only = 1;
	}
	if (!is_digit(ch))
		tz->digits_only = 0;
	tz->store[tz->w++] = (char)ch;
}

static void tok_sep(struct tokenizer *tz)
{
	tok_end_word(tz);
	if (tz->nt == 0 || !tz->toks[tz->nt - 1].sep) {
		tz->toks[tz->nt].s = "";
		tz->toks[tz->nt].sep = 1;
		tz->nt++;
	}
}

void erp__tokenize(struct arena *a, const char *text, struct erp_token **out, int *n)
{
	const unsigned char *s = (const unsigned char *)(text ? text : "");
	size_t len = strnlen((const char *)s, ERP_MAX_TEXT);
	struct tokenizer tz = {0};

	/* every token takes at least one input byte; a word's bytes and its
	 * NUL fit in twice the input */
	tz.toks = arena_alloc(a, sizeof(*tz.toks) * (len + 1));
	tz.store = arena_alloc(a, 2 * len + 2);
	for (size_t i = 0; i < len;) {
		unsigned char ch = s[i];
		if (ch >= 0x80) {
			int k = nonascii_sep(s + i, len - i);
			if (k < 0) {
				i += (size_t)-k; /* ’ dropped */
			} else if (k > 0) {
				tok_end_word(&tz);
				i += (size_t)k;
			} else {
				tok_put(&tz, ch);
				i++;
			}
			continue;
		}
		if (is_alnum(ch)) {
			tok_put(&tz, ch >= 'A' && ch <= 'Z' ? ch - 'A' + 'a' : ch);
		} else if (ch == '\'') {
			/* lay's → lays */
		} else if (ch == '.' && i + 1 < len && is_digit(s[i + 1]) &&
		           (!tz.inword || tz.digits_only)) {
			tok_put(&tz, '.');
		} else if (ch == ',' && tz.inword && tz.digits_only && i + 3 < len &&
		           is_digit(s[i + 1]) && is_digit(s[i + 2]) && is_digit(s[i + 3]) &&
		           (i + 4 >= len || !is_digit(s[i + 4]))) {
			/* 1,500: a thousands separator */
		} else if (ch == ',' || ch == '+' || ch == '&' || ch == ';' || ch == '\n' ||
		           ch == '|') {
			tok_sep(&tz);
		} else {
			tok_end_word(&tz);
		}
		i++;
	}
	tok_end_word(&tz);
	*out = tz.toks;
	*n = tz.nt;
}

/* ---- small helpers ---------------------------------------------------------- */

static int in_list(const char *w, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(w, *list) == 0)
			return 1;
	return 0;
}

static const char *const filler_words[] = {
        "of",    "ka",  "ki",    "ke",      "the", "a",    "an",   "please", "pls",
        "plz",   "bhi", "some",  "chahiye", "de",  "do",   "dena", "send",   "me",
        "mujhe", "x",   "bhejo", "bhej",    "for", "want", "need", "i",      NULL,
};

static const char *const item_split_words[] = {"and", "aur", "or", "n", NULL};

static int is_filler(const char *w)
{
	return in_list(w, filler_words);
}

/* Does the trimmed body equal id, ignoring ASCII case? */
static int body_is(const char *body, size_t len, const char *id)
{
	size_t n = strlen(id);
	if (len != n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		int ch = (unsigned char)body[i];
		if (ch >= 'A' && ch <= 'Z')
			ch += 'a' - 'A';
		if (ch != (unsigned char)id[i])
			return 0;
	}
	return 1;
}

/* "<prefix><digits>" → id > 0; 0 when the body is not exactly that */
static int64_t body_prefixed_id(const char *body, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	int64_t v = 0;
	if (len <= n || len - n > 18 || strncmp(body, prefix, n) != 0)
		return 0;
	for (size_t i = n; i < len; i++) {
		if (!is_digit((unsigned char)body[i]))
			return 0;
		v = v * 10 + (body[i] - '0');
	}
	return v;
}

int erp_parse_rupees(const char *s, int64_t *paise)
{
	int64_t r = 0, p = 0;
	int nint = 0, ndec = 0;

	if (!s)
		return ERR_INVAL;
	while (*s == ' ')
		s++;
	if ((unsigned char)s[0] == 0xE2 && (unsigned char)s[1] == 0x82 &&
	    (unsigned char)s[2] == 0xB9)
		s += 3;
	else if ((s[0] == 'r' || s[0] == 'R') && (s[1] == 's' || s[1] == 'S'))
		s += s[2] == '.' ? 3 : 2;
	while (*s == ' ')
		s++;
	for (; is_digit((unsigned char)*s); s++) {
		if (++nint > 8)
			return ERR_INVAL; /* over ₹10 crore per unit: a typo */
		r = r * 10 + (*s - '0');
	}
	if (*s == '.') {
		s++;
		for (; is_digit((unsigned char)*s); s++) {
			if (++ndec > 2)
				return ERR_INVAL;
			p = p * 10 + (*s - '0');
		}
		if (ndec == 0)
			return ERR_INVAL;
		if (ndec == 1)
			p *= 10;
	}
	if (*s != '\0' || nint + ndec == 0)
		return ERR_INVAL;
	*paise = r * 100 + p;
	return 0;
}

/* Looks like a number (digits and dots) even if not a valid amount? */
static int numeric_looking(const char *w)
{
	int digit = 0;
	for (; *w; w++) {
		if (is_digit((unsigned char)*w))
			digit = 1;
		else if (*w != '.')
			return 0;
	}
	return digit;
}

static const char *join_words(struct arena *a, const char *const *w, int n)
{
	size_t len = 0;
	for (int i = 0; i < n; i++)
		len += strlen(w[i]) + 1;
	char *out = arena_alloc(a, len + 1), *p = out;
	for (int i = 0; i < n; i++) {
		size_t l = strlen(w[i]);
		if (i)
			*p++ = ' ';
		memcpy(p, w[i], l);
		p += l;
	}
	*p = '\0';
	return out;
}

/* ---- items ----------------------------------------------------------------- */

struct item_builder {
	struct arena *a;
	struct erp_cmd *cmd;
	const struct erp_token *toks;
	int ntok;
	int want_qty; /* order/add stock: quantities expected */
};

static struct erp_item *new_item(struct item_builder *ib, int cap_words)
{
	struct erp_cmd *cmd = ib->cmd;
	if (cmd->nitems >= ERP_MAX_ORDER_LINES) {
		cmd->err = ERP_PERR_TOO_MANY;
		return NULL;
	}
	struct erp_item *it = &cmd->items[cmd->nitems++];
	memset(it, 0, sizeof(*it));
	it->words = arena_alloc(ib->a, sizeof(*it->words) * (size_t)(cap_words + 1));
	return it;
}

/* Reads the quantity at toks[i] (with a following unit word); tokens used. */
static int take_qty(struct item_builder *ib, int i, int end, struct erp_qty *q)
{
	int rc = erp__qty_token(ib->toks[i].s, q);
	if (rc == ERR_TOOBIG) {
		ib->cmd->err = ERP_PERR_QTY_BIG;
		return 1;
	}
	if (q->milli == 0 && !ib->cmd->err)
		ib->cmd->err = ERP_PERR_QTY_ZERO;
	if (!q->unit && i + 1 < end && strchr(ib->toks[i].s, 'x') == NULL) {
		const struct erp_unit *u = erp__unit_lookup(ib->toks[i + 1].s);
		if (u) {
			q->unit = u;
			return 2;
		}
	}
	return 1;
}

static int tok_is_qty(const struct erp_token *t)
{
	struct erp_qty q;
	int rc = erp__qty_token(t->s, &q);
	return rc == 0 || rc == ERR_TOOBIG;
}

/* Any plain word (not filler, not a unit, not a quantity) in [i, end)? */
static int words_ahead(const struct erp_token *toks, int i, int end)
{
	for (; i < end; i++)
		if (!tok_is_qty(&toks[i]) && !erp__unit_lookup(toks[i].s) && !is_filler(toks[i].s))
			return 1;
	return 0;
}

/* One segment [s, e) of plain tokens (no separators). */
static void parse_segment(struct item_builder *ib, int s, int e)
{
	const struct erp_token *t = ib->toks;
	struct erp_item *cur = NULL;
	int qty_first = ib->want_qty && tok_is_qty(&t[s]);
	int closed = 0; /* qty-after: the current item has its quantity */
	int cap = e - s;

	for (int i = s; i < e && !ib->cmd->err;) {
		const char *w = t[i].s;
		const char *size;
		int span;
		if (ib->want_qty && tok_is_qty(&t[i])) {
			if (qty_first) {
				if (cur && cur->nwords > 0 && !words_ahead(t, i + 1, e) &&
				    (span = erp__size_word(ib->a, t, e, i, &size)) > 0) {
					/* "2 amul milk 500ml": the size is part of the name */
					cur->words[cur->nwords++] = size;
					i += span;
					continue;
				}
				if (cur && cur->nwords == 0) {
					ib->cmd->err = ERP_PERR_NO_ITEM;
					return;
				}
				cur = new_item(ib, cap);
				if (!cur)
					return;
				cur->has_qty = 1;
				i += take_qty(ib, i, e, &cur->qty);
			} else {
				if (!cur || closed) {
					/* "rice 2 kg 3": a quantity with no name before it */
					ib->cmd->err = ERP_PERR_NO_ITEM;
					return;
				}
				cur->has_qty = 1;
				closed = 1;
				i += take_qty(ib, i, e, &cur->qty);
			}
			continue;
		}
		if (is_filler(w) || (ib->want_qty && erp__unit_lookup(w))) {
			i++;
			continue;
		}
		if (!cur || (!qty_first && closed)) {
			cur = new_item(ib, cap);
			if (!cur)
				return;
			closed = 0;
		}
		if (!ib->want_qty && (span = erp__size_word(ib->a, t, e, i, &size)) > 0) {
			cur->words[cur->nwords++] = size;
			i += span;
			continue;
		}
		cur->words[cur->nwords++] = w;
		i++;
	}
	if (cur && cur->nwords == 0 && !ib->cmd->err)
		ib->cmd->err = ERP_PERR_NO_ITEM;
}

/* Items of toks[from, to): segments split by separators and "and"/"aur". */
static void parse_items(struct arena *a, struct erp_cmd *cmd, const struct erp_token *toks,
                        int from, int to, int want_qty)
{
	struct item_builder ib = {a, cmd, toks, to, want_qty};
	int s = from;
	for (int i = from; i <= to && !cmd->err; i++) {
		if (i < to && !toks[i].sep && !in_list(toks[i].s, item_split_words))
			continue;
		if (i > s)
			parse_segment(&ib, s, i);
		s = i + 1;
	}
	for (int k = 0; k < cmd->nitems; k++)
		cmd->items[k].text = join_words(a, cmd->items[k].words, cmd->items[k].nwords);
}

/* ---- who is speaking --------------------------------------------------------- */

/* The next entry of a comma list, digits only, into out; 0 at the end. */
static int next_number(const char **s, char *out, size_t outsz)
{
	size_t n = 0;
	if (!**s)
		return 0;
	while (**s && **s != ',') {
		if (**s >= '0' && **s <= '9' && n + 1 < outsz)
			out[n++] = **s;
		(*s)++;
	}
	if (**s == ',')
		(*s)++;
	out[n] = '\0';
	return 1;
}

/* Only digits are compared: "+91 98765-43210" is "919876543210". */
int erp__is_owner(const char *owner_numbers, const char *wa_id)
{
	char want[32], have[32];
	const char *s = wa_id ? wa_id : "";
	if (!owner_numbers || !next_number(&s, want, sizeof(want)) || !want[0])
		return 0;
	s = owner_numbers;
	while (next_number(&s, have, sizeof(have)))
		if (have[0] && strcmp(have, want) == 0)
			return 1;
	return 0;
}

/* ---- the command ------------------------------------------------------------- */

static const char *const menu_words[] = {"hi",       "hii", "hiii", "hello", "helo",
                                         "hey",      "hlo", "menu", "help",  "namaste",
                                         "namaskar", "hai", NULL};
static const char *const stop_phrases[] = {"stop",          "unsubscribe",  "stop offers",
                                           "stop messages", "stop sending", "opt out",
                                           "optout",        "stop all",     NULL};
static const char *const start_phrases[] = {"start",  "subscribe", "start offers",
                                            "opt in", "optin",     NULL};
static const char *const polite_words[] = {"please", "pls", "plz",  "ji",     "ok",
                                           "okay",   "sir", "bhai", "bhaiya", NULL};
static const char *const confirm_phrases[] = {"confirm",     "yes", "haan",    "han",
                                              "haa",         "ha",  "ji haan", "confirm order",
                                              "yes confirm", "y",   NULL};
static const char *const cancel_phrases[] = {"cancel",       "no", "nahi", "nahin",
                                             "cancel order", "n",  "na",   NULL};
static const char *const invoice_phrases[] = {
        "invoice", "bill", "my invoice", "last invoice", "invoice please", "my bill", NULL};
static const char *const status_phrases[] = {
        "status",      "order status",  "my order",   "my orders",
        "track order", "status please", "last order", NULL};
static const char *const sales_phrases[] = {"sales today",  "sales",        "today sales",
                                            "todays sales", "aaj ki sales", NULL};
static const char *const stock_verbs[] = {"stock", "check", "price", "rate", NULL};
static const char *const order_verbs[] = {"order", "buy", NULL};

void erp__parse(struct arena *a, const char *text, struct erp_cmd *cmd)
{
	struct erp_token *toks;
	const char **w;
	int *widx;
	int ntok, nw = 0;
	size_t blen;
	const char *body = text ? text : "";

	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = ERP_CMD_UNKNOWN;

	/* 1. button ids, on the trimmed raw body */
	blen = strnlen(body, ERP_MAX_TEXT);
	while (blen && (body[0] == ' ' || body[0] == '\t' || body[0] == '\n' || body[0] == '\r')) {
		body++;
		blen--;
	}
	while (blen && (body[blen - 1] == ' ' || body[blen - 1] == '\t' || body[blen - 1] == '\n' ||
	                body[blen - 1] == '\r'))
		blen--;
	if (body_is(body, blen, ERP_BTN_STOCK)) {
		cmd->kind = ERP_CMD_HELP_STOCK;
		return;
	}
	if (body_is(body, blen, ERP_BTN_ORDER)) {
		cmd->kind = ERP_CMD_HELP_ORDER;
		return;
	}
	if (body_is(body, blen, ERP_BTN_INVOICE)) {
		cmd->kind = ERP_CMD_INVOICE;
		return;
	}
	if ((cmd->order_id = body_prefixed_id(body, blen, ERP_BTN_CONFIRM_PREFIX)) > 0) {
		cmd->kind = ERP_CMD_CONFIRM;
		return;
	}
	if ((cmd->order_id = body_prefixed_id(body, blen, ERP_BTN_CANCEL_PREFIX)) > 0) {
		cmd->kind = ERP_CMD_CANCEL;
		return;
	}
	if (blen >= 9 && strncasecmp(body, "broadcast", 9) == 0 &&
	    (blen == 9 || body[9] == ' ' || body[9] == '\t' || body[9] == '\n' ||
	     body[9] == '\r')) {
		size_t i = 9;
		while (i < blen &&
		       (body[i] == ' ' || body[i] == '\t' || body[i] == '\n' || body[i] == '\r'))
			i++;
		cmd->kind = ERP_CMD_BROADCAST;
		cmd->text = arena_strndup(a, body + i, blen - i);
		return;
	}

	/* 2. tokens; w[k] is the k-th word, at toks[widx[k]] */
	erp__tokenize(a, text, &toks, &ntok);
	w = arena_alloc(a, sizeof(*w) * (size_t)(ntok + 1));
	widx = arena_alloc(a, sizeof(*widx) * (size_t)(ntok + 1));
	for (int i = 0; i < ntok; i++) {
		if (!toks[i].sep) {
			widx[nw] = i;
			w[nw++] = toks[i].s;
		}
	}
	widx[nw] = ntok;
	if (nw == 0) {
		cmd->kind = ERP_CMD_MENU;
		return;
	}

	/* 3. whole phrases, politeness aside ("yes please", "ji haan") */
	const char **pw = arena_alloc(a, sizeof(*pw) * (size_t)nw);
	int npw = 0;
	for (int i = 0; i < nw; i++)
		if (!in_list(w[i], polite_words))
			pw[npw++] = w[i];
	const char *phrase = join_words(a, pw, npw);
	if (npw == 0 || (npw == 1 && in_list(phrase, menu_words))) {
		cmd->kind = ERP_CMD_MENU;
		return;
	}
	if (in_list(phrase, stop_phrases)) {
		cmd->kind = ERP_CMD_STOP;
		return;
	}
	if (in_list(phrase, start_phrases)) {
		cmd->kind = ERP_CMD_START;
		return;
	}
	if (in_list(phrase, confirm_phrases)) {
		cmd->kind = ERP_CMD_CONFIRM;
		return;
	}
	if (in_list(phrase, cancel_phrases)) {
		cmd->kind = ERP_CMD_CANCEL;
		return;
	}
	if (in_list(phrase, invoice_phrases)) {
		cmd->kind = ERP_CMD_INVOICE;
		return;
	}
	if (in_list(phrase, status_phrases)) {
		cmd->kind = ERP_CMD_STATUS;
		return;
	}
	if (strcmp(phrase, "low stock") == 0 || strcmp(phrase, "stock low") == 0) {
		cmd->kind = ERP_CMD_LOW_STOCK;
		return;
	}
	if (in_list(phrase, sales_phrases)) {
		cmd->kind = ERP_CMD_SALES_TODAY;
		return;
	}

	/* 4. verbs */
	if ((nw >= 2 && strcmp(w[0], "add") == 0 && strcmp(w[1], "stock") == 0) ||
	    strcmp(w[0], "restock") == 0) {
		cmd->kind = ERP_CMD_ADD_STOCK;
		parse_items(a, cmd, toks, widx[strcmp(w[0], "add") == 0 ? 2 : 1], ntok, 1);
		if (!cmd->err && cmd->nitems != 1)
			cmd->err = cmd->nitems == 0 ? ERP_PERR_NO_ITEM : ERP_PERR_TOO_MANY;
		return;
	}
	if (strcmp(w[0], "paid") == 0) {
		/* paid [order] [no|number] <digits>, nothing after */
		int k = 1;
		cmd->kind = ERP_CMD_PAID;
		while (k < nw && (strcmp(w[k], "order") == 0 || strcmp(w[k], "no") == 0 ||
		                  strcmp(w[k], "number") == 0))
			k++;
		if (k == nw - 1 && strlen(w[k]) <= 18 && w[k][strspn(w[k], "0123456789")] == '\0')
			cmd->order_id = strtoll(w[k], NULL, 10);
		return;
	}
	if (in_list(w[0], order_verbs)) {
		cmd->kind = ERP_CMD_ORDER;
		parse_items(a, cmd, toks, widx[1], ntok, 1);
		if (cmd->nitems == 0 && !cmd->err)
			cmd->kind = ERP_CMD_HELP_ORDER;
		return;
	}
	if (tok_is_qty(&toks[widx[0]])) {
		cmd->kind = ERP_CMD_ORDER;
		parse_items(a, cmd, toks, widx[0], ntok, 1);
		return;
	}
	if (in_list(w[0], stock_verbs)) {
		int is_price = strcmp(w[0], "price") == 0 || strcmp(w[0], "rate") == 0;
		if (nw == 1) {
			cmd->kind = ERP_CMD_HELP_STOCK;
			return;
		}
		if (is_price && nw >= 3 && numeric_looking(w[nw - 1])) {
			/* price <item> [to|rs|inr] <rupees> */
			int e = nw - 1;
			while (e > 1 &&
			       (strcmp(w[e - 1], "to") == 0 || strcmp(w[e - 1], "rs") == 0 ||
			        strcmp(w[e - 1], "inr") == 0))
				e--;
			cmd->kind = ERP_CMD_SET_PRICE;
			if (erp_parse_rupees(w[nw - 1], &cmd->price_paise) < 0)
				cmd->err = ERP_PERR_PRICE_BAD;
			parse_items(a, cmd, toks, widx[1], widx[e], 0);
			if (cmd->nitems != 1 && !cmd->err)
				cmd->err = cmd->nitems == 0 ? ERP_PERR_NO_ITEM : ERP_PERR_TOO_MANY;
			return;
		}
		cmd->kind = ERP_CMD_STOCK;
		parse_items(a, cmd, toks, widx[1], ntok, 0);
		if (cmd->nitems == 0 && !cmd->err)
			cmd->kind = ERP_CMD_HELP_STOCK;
		return;
	}

	/* 5. questions about an item: words [lo, hi) name it */
	int lo = 0, hi = nw, q = 0;
	if (nw >= 3 && strcmp(w[nw - 1], "kya") == 0 && strcmp(w[nw - 2], "hai") == 0) {
		hi = nw - 2;
		q = 1;
	} else if (nw >= 2 &&
	           (strcmp(w[nw - 1], "hai") == 0 || strcmp(w[nw - 1], "h") == 0 ||
	            strcmp(w[nw - 1], "available") == 0 || strcmp(w[nw - 1], "milega") == 0)) {
		hi = nw - 1;
		q = 1;
	}
	if (strcmp(w[0], "kya") == 0 || strcmp(w[0], "is") == 0) {
		lo = 1;
	} else if (nw >= 4 && strcmp(w[0], "do") == 0 && strcmp(w[1], "you") == 0 &&
	           strcmp(w[2], "have") == 0) {
		lo = 3;
		q = 1;
	}
	if (q && hi > lo) {
		cmd->kind = ERP_CMD_STOCK;
		parse_items(a, cmd, toks, widx[lo], widx[hi], 0);
		if (cmd->nitems > 0 && !cmd->err)
			return;
	}
	memset(cmd, 0, sizeof(*cmd));
	cmd->kind = ERP_CMD_UNKNOWN;
}
