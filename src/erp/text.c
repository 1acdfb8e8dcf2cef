/*
 * text.c - the words of replies: money, quantities, rates, dates, the
 * draft and invoice summaries, and making any text safe to send.
 *
 * Summaries are a head, one line per order line and a foot (totals, the
 * UPI link); when they would pass the limit, lines at the end give way to
 * "… and N more items" so the totals and the link always survive.
 *
 * Everything a reply echoes (what the customer typed, product and profile
 * names) passes through erp__clean: the result is valid UTF-8 (invalid
 * bytes become '?'), has no control characters, and is clipped at a
 * character boundary with "…" so a hostile name cannot blow a reply past
 * WhatsApp's limits (4096 characters of text, 1024 with buttons). Limits
 * are applied in bytes, which is never fewer than characters.
 *
 * Numbers use Indian digit grouping (1,23,456.00) and the ₹ sign. Nothing
 * here uses floating point. Thread-safe: pure functions.
 */
#include <inttypes.h>
#include <string.h>

#include "core/clock.h"
#include "erp/erp_internal.h"

#define ELLIPSIS "\xE2\x80\xA6" /* … */

/* Length of the valid UTF-8 sequence at p (1–4), or 0 when invalid. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
	unsigned char c = p[0];
	size_t n;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF) {
		n = 2;
		cp = c & 0x1F;
	} else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		cp = c & 0x0F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (left < n)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((p[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3F);
	}
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
	    (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return n;
}

static char *clean(struct arena *a, const char *s, size_t max, int keep_newlines)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p);
	size_t room = max > sizeof(ELLIPSIS) ? max - (sizeof(ELLIPSIS) - 1) : 0;
	char *out = arena_alloc(a, (len < max ? len : max) + sizeof(ELLIPSIS) + 4);
	size_t o = 0, i = 0;
	int cut = 0;

	while (i < len) {
		size_t n = utf8_len(p + i, len - i);
		size_t emit = n ? n : 1;
		/* keep room for "…" unless the rest fits entirely */
		if (o + emit > room && !(o + emit <= max && len - i <= max - o)) {
			cut = 1;
			break;
		}
		if (n == 0) {
			out[o++] = '?';
		} else if (n == 1 && (p[i] < 0x20 || p[i] == 0x7F)) {
			out[o++] = (keep_newlines && p[i] == '\n') ? '\n' : ' ';
		} else {
			memcpy(out + o, p + i, n);
			o += n;
		}
		i += emit;
	}
	if (cut) {
		memcpy(out + o, ELLIPSIS, sizeof(ELLIPSIS) - 1);
		o += sizeof(ELLIPSIS) - 1;
	}
	out[o] = '\0';
	return out;
}

char *erp__clean(struct arena *a, const char *s, size_t max)
{
	return clean(a, s, max, 0);
}

char *erp__clean_text(struct arena *a, const char *s, size_t max)
{
	return clean(a, s, max, 1);
}

void erp__fmt_int(struct buf *b, int64_t v)
{
	char digits[24];
	char out[40];
	int nd = 0, o = 0;
	uint64_t u;

	if (v < 0) {
		buf_putc(b, '-');
		u = (uint64_t)0 - (uint64_t)v;
	} else {
		u = (uint64_t)v;
	}
	do {
		digits[nd++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	/* digits[] is reversed; group 3 then 2s from the right */
	for (int i = nd - 1; i >= 0; i--) {
		out[o++] = digits[i];
		if (i > 0 && (i == 3 || (i > 3 && (i - 3) % 2 == 0)))
			out[o++] = ',';
	}
	buf_append(b, out, (size_t)o);
}

void erp__fmt_money(struct buf *b, int64_t paise)
{
	uint64_t u;
	if (paise < 0) {
		buf_putc(b, '-');
		u = (uint64_t)0 - (uint64_t)paise;
	} else {
		u = (uint64_t)paise;
	}
	buf_puts(b, "\xE2\x82\xB9"); /* ₹ */
	erp__fmt_int(b, (int64_t)(u / 100));
	buf_printf(b, ".%02u", (unsigned)(u % 100));
}

void erp__fmt_rate(struct buf *b, int rate_bp)
{
	buf_printf(b, "%d", rate_bp / 100);
	int frac = rate_bp % 100;
	if (frac < 0)
		frac = -frac;
	if (frac) {
		if (frac % 10 == 0)
			buf_printf(b, ".%d", frac / 10);
		else
			buf_printf(b, ".%02d", frac);
	}
	buf_putc(b, '%');
}

const char *erp__unit_label(const char *unit, int plural)
{
	static const struct {
		const char *unit, *one, *many;
	} labels[] = {
	        {"pc", "pc", "pcs"},
	        {"piece", "piece", "pieces"},
	        {"packet", "packet", "packets"},
	        {"pack", "pack", "packs"},
	        {"pkt", "packet", "packets"},
	        {"bottle", "bottle", "bottles"},
	        {"box", "box", "boxes"},
	        {"bag", "bag", "bags"},
	        {"tin", "tin", "tins"},
	        {"jar", "jar", "jars"},
	        {"bar", "bar", "bars"},
	};
	if (!unit)
		return "";
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		if (strcmp(unit, labels[i].unit) == 0)
			return plural ? labels[i].many : labels[i].one;
	return unit;
}

void erp__fmt_qty(struct buf *b, int64_t qty_base, int64_t base_per_unit, const char *unit)
{
	int64_t whole, rem;
	int plural;

	if (base_per_unit <= 0)
		base_per_unit = 1;
	if (qty_base < 0) {
		buf_putc(b, '-');
		qty_base = -qty_base;
	}
	whole = qty_base / base_per_unit;
	rem = qty_base % base_per_unit;
	erp__fmt_int(b, whole);
	plural = !(whole == 1 && rem == 0);
	/* up to three decimals by long division, trailing zeros dropped
	 * (truncated when base_per_unit does not divide 1000); r < 10^12 keeps
	 * r·10 far from overflow */
	if (rem && base_per_unit <= 1000000000000LL) {
		char d[4];
		int64_t r = rem;
		for (int k = 0; k < 3; k++) {
			r *= 10;
			d[k] = (char)('0' + r / base_per_unit);
			r %= base_per_unit;
		}
		d[3] = '\0';
		int n = 3;
		while (n > 1 && d[n - 1] == '0')
			n--;
		buf_printf(b, ".%.*s", n, d);
	}
	buf_putc(b, ' ');
	buf_puts(b, erp__unit_label(unit, plural));
}

void erp__fmt_date(struct buf *b, int64_t ms)
{
	static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
	                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
	int y, m, d;
	clock_ist_date(ms, &y, &m, &d);
	if (m < 1 || m > 12)
		m = 1;
	buf_printf(b, "%d %s %d", d, months[m - 1], y);
}

char *erp__finish(struct arena *a, struct buf *b, size_t max)
{
	char *out = clean(a, b->data ? b->data : "", max, 1);
	buf_release(b);
	return out;
}

/* ---- draft and invoice summaries ------------------------------------------------------ */

/*
 * Joins head, lines and foot within max bytes: lines that do not fit are
 * replaced by one "… and N more items" line.
 */
static char *assemble(struct arena *a, const char *head, char *const *lines, int n,
                      const char *foot, size_t max)
{
	struct buf b;
	size_t tail = strlen(foot) + 40; /* the foot and a "… and N more items" line */
	int shown = 0;

	buf_init(&b);
	buf_puts(&b, head);
	for (int i = 0; i < n; i++) {
		size_t l = strlen(lines[i]) + 1;
		if (b.len + l + tail > max)
			break;
		buf_puts(&b, lines[i]);
		buf_putc(&b, '\n');
		shown++;
	}
	if (shown < n)
		buf_printf(&b, "\xE2\x80\xA6 and %d more item%s\n", n - shown,
		           n - shown == 1 ? "" : "s");
	buf_puts(&b, foot);
	return erp__finish(a, &b, max);
}

static char *fmt_line(struct erp_ctx *x, const struct order_line *l, int with_hsn)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b, "\xE2\x80\xA2 %s", erp__clean(x->a, l->name, ERP_NAME_MAX));
	if (with_hsn && l->hsn && l->hsn[0])
		buf_printf(&b, " (HSN %s)", erp__clean(x->a, l->hsn, 16));
	buf_puts(&b, ": ");
	erp__fmt_qty(&b, l->qty_base, l->base_per_unit, l->unit);
	buf_puts(&b, " \xC3\x97 "); /* × */
	erp__fmt_money(&b, l->price_paise);
	buf_puts(&b, " = ");
	erp__fmt_money(&b, l->amount_paise);
	if (with_hsn) {
		buf_puts(&b, ", GST ");
		erp__fmt_rate(&b, l->gst_rate_bp);
	}
	return erp__finish(x->a, &b, 400);
}

int erp__customer_intra(const struct erp_ctx *x)
{
	return erp__intra_state(x->t->state_code, x->cust.state_code);
}

static void fmt_roundoff(struct buf *b, int64_t r)
{
	if (r == 0)
		return;
	buf_puts(b, "Round off: ");
	if (r > 0)
		buf_putc(b, '+');
	erp__fmt_money(b, r);
	buf_putc(b, '\n');
}

int erp__reply_draft(struct erp_ctx *x, const struct order *o, const char *lead)
{
	struct erp_totals tot;
	struct buf h, f;
	char **lines;
	int rc = erp__totals(o->lines, o->nlines, erp__customer_intra(x), &tot);
	if (rc < 0)
		return rc;
	lines = arena_alloc(x->a, sizeof(*lines) * (size_t)(o->nlines + 1));
	for (int i = 0; i < o->nlines; i++)
		lines[i] = fmt_line(x, &o->lines[i], 0);
	buf_init(&h);
	if (lead)
		buf_printf(&h, "%s\n", lead);
	buf_printf(&h, "Order #%" PRId64 " (draft)\n", o->id);
	buf_init(&f);
	buf_puts(&f, "Taxable value: ");
	erp__fmt_money(&f, tot.taxable_paise);
	buf_puts(&f, "\nGST: ");
	erp__fmt_money(&f, tot.cgst_paise + tot.sgst_paise + tot.igst_paise);
	buf_putc(&f, '\n');
	fmt_roundoff(&f, tot.round_off_paise);
	buf_puts(&f, "Total: ");
	erp__fmt_money(&f, tot.total_paise);
	buf_puts(&f, "\nTap Confirm to place the order (stock is checked again then).");
	char *head = erp__finish(x->a, &h, 300);
	char *foot = erp__finish(x->a, &f, 400);
	char *text = assemble(x->a, head, lines, o->nlines, foot, ERP_TEXT_MAX_BUTTONS);
	const char *bt[4] = {
	        arena_sprintf(x->a, "%s%" PRId64, ERP_BTN_CONFIRM_PREFIX, o->id),
	        "Confirm",
	        arena_sprintf(x->a, "%s%" PRId64, ERP_BTN_CANCEL_PREFIX, o->id),
	        "Cancel",
	};
	erp__reply_buttons(x, PRIO_P2, text, 2, bt);
	return 0;
}

char *erp__invoice_text(struct erp_ctx *x, const struct invoice *inv, const struct order *o,
                        const char *lead)
{
	struct buf h, f;
	char **lines = NULL;
	int n = o ? o->nlines : 0;

	if (n > 0) {
		lines = arena_alloc(x->a, sizeof(*lines) * (size_t)n);
		for (int i = 0; i < n; i++)
			lines[i] = fmt_line(x, &o->lines[i], 1);
	}
	buf_init(&h);
	if (lead)
		buf_printf(&h, "%s\n", lead);
	buf_printf(&h, "Tax invoice %s, ", erp__clean(x->a, inv->number, 40));
	erp__fmt_date(&h, inv->issued_at);
	buf_printf(&h, "\n%s", erp__clean(x->a, x->t->name, ERP_NAME_MAX));
	if (x->t->gstin && x->t->gstin[0])
		buf_printf(&h, ", GSTIN %s", erp__clean(x->a, x->t->gstin, 20));
	buf_printf(&h, "\nOrder #%" PRId64 "\n", inv->order_id);

	buf_init(&f);
	buf_puts(&f, "Taxable value: ");
	erp__fmt_money(&f, inv->taxable_paise);
	buf_putc(&f, '\n');
	if (inv->intra_state) {
		buf_puts(&f, "CGST: ");
		erp__fmt_money(&f, inv->cgst_paise);
		buf_puts(&f, "\nSGST: ");
		erp__fmt_money(&f, inv->sgst_paise);
		buf_putc(&f, '\n');
	} else {
		buf_puts(&f, "IGST: ");
		erp__fmt_money(&f, inv->igst_paise);
		buf_printf(&f, " (place of supply: state %s)\n",
		           erp__clean(x->a, inv->place_of_supply, 8));
	}
	fmt_roundoff(&f, inv->round_off_paise);
	buf_puts(&f, "Total: ");
	erp__fmt_money(&f, inv->total_paise);
	if (x->t->upi_id && x->t->upi_id[0]) {
		char *link = erp__upi_link(x->a, erp__clean(x->a, x->t->upi_id, 100),
		                           erp__clean(x->a, x->t->name, ERP_NAME_MAX),
		                           inv->total_paise, inv->number);
		buf_printf(&f, "\nPay by UPI: %s", link);
	}
	char *head = erp__finish(x->a, &h, 600);
	char *foot = erp__finish(x->a, &f, 1400);
	return assemble(x->a, head, lines, n, foot, ERP_TEXT_MAX);
}
