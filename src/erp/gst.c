/*
 * gst.c - line amounts, GST, the rupee round-off and the financial year.
 *
 * The rule (quoted in docs/; change both together):
 *
 *   All money is integer paise; nothing here uses floating point.
 *   Prices are pre-tax, per selling unit.
 *   Line amount (taxable value) = price_paise × qty_base / base_per_unit,
 *     rounded half-up to a paisa.
 *   Tax is computed per line, on its amount, at the line's rate (basis
 *     points: 500 = 5 %):
 *       inter-state: IGST = round_half_up(amount × rate_bp / 10000)
 *       intra-state: CGST = SGST = round_half_up(amount × rate_bp / 20000)
 *     so CGST and SGST are always equal (their sum may differ from the IGST
 *     of the same line by a paisa: 20 paise at 5 % is 0.5 + 0.5 → 1 + 1
 *     intra-state, but 1 inter-state).
 *   Intra-state when the customer's state code is empty (unknown) or equals
 *     the shop's; otherwise inter-state. Place of supply: the customer's
 *     state, or the shop's when the customer's is unknown.
 *   Invoice taxable value = Σ line amounts; each tax = Σ line taxes.
 *   Grand total before rounding = taxable + CGST + SGST + IGST.
 *   The invoice total is rounded to the nearest rupee, 50 paise and more
 *     going up (CGST Act s.170), and the difference is shown as round-off:
 *       round_off = total - grand total before rounding   (-49 … +50 paise)
 *   Financial year: 1 April – 31 March in IST (UTC+05:30); its code is the
 *     two-digit start and end years, "2526" for 2025-26. 2026-03-31 23:59
 *     IST is in 2526; 2026-04-01 00:00 IST is in 2627.
 *
 * Half-up of non-negative integers: q = n / d, and one more when the
 * remainder is at least half of d (2r ≥ d). Amounts are capped at
 * ERP_MAX_LINE_PAISE per line and a rate at 100 %, so every product fits in
 * int64 with room; the cap is checked, never assumed.
 *
 * Thread-safe: pure functions.
 */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "erp/erp_internal.h"

int64_t erp__div_half_up(int64_t num, int64_t den)
{
	int64_t q = num / den, r = num % den;
	return (r >= den - r) ? q + 1 : q;
}

int erp__line_amount(int64_t price_paise, int64_t qty_base, int64_t base_per_unit, int64_t *amount)
{
	int64_t num;

	if (price_paise < 0 || qty_base < 0 || base_per_unit <= 0)
		return ERR_INVAL;
	if (__builtin_mul_overflow(price_paise, qty_base, &num))
		return ERR_TOOBIG;
	int64_t v = erp__div_half_up(num, base_per_unit);
	if (v > ERP_MAX_LINE_PAISE)
		return ERR_TOOBIG;
	*amount = v;
	return 0;
}

void erp__line_tax(int64_t amount, int rate_bp, int intra, int64_t *cgst, int64_t *sgst,
                   int64_t *igst)
{
	/* callers pass 0 ≤ amount ≤ ERP_MAX_LINE_PAISE, 0 ≤ rate_bp ≤ 10000 */
	if (intra) {
		int64_t half = erp__div_half_up(amount * rate_bp, 20000);
		*cgst = half;
		*sgst = half;
		*igst = 0;
	} else {
		*cgst = 0;
		*sgst = 0;
		*igst = erp__div_half_up(amount * rate_bp, 10000);
	}
}

int erp__totals(const struct order_line *lines, int n, int intra, struct erp_totals *out)
{
	memset(out, 0, sizeof(*out));
	if (n < 0 || n > ERP_MAX_ORDER_LINES)
		return ERR_INVAL;
	for (int i = 0; i < n; i++) {
		int64_t amt = lines[i].amount_paise, c, s, g;
		if (amt < 0 || amt > ERP_MAX_LINE_PAISE || lines[i].gst_rate_bp < 0 ||
		    lines[i].gst_rate_bp > 10000)
			return ERR_INVAL;
		erp__line_tax(amt, lines[i].gst_rate_bp, intra, &c, &s, &g);
		out->taxable_paise += amt;
		out->cgst_paise += c;
		out->sgst_paise += s;
		out->igst_paise += g;
	}
	int64_t gross = out->taxable_paise + out->cgst_paise + out->sgst_paise + out->igst_paise;
	int64_t rem = gross % 100;
	out->round_off_paise = rem >= 50 ? 100 - rem : -rem;
	out->total_paise = gross + out->round_off_paise;
	return 0;
}

int erp__intra_state(const char *shop_state, const char *customer_state)
{
	if (!customer_state || !customer_state[0])
		return 1;
	return strcmp(customer_state, shop_state ? shop_state : "") == 0;
}

const char *erp__place_of_supply(const char *shop_state, const char *customer_state)
{
	if (customer_state && customer_state[0])
		return customer_state;
	return shop_state ? shop_state : "";
}

void erp__fy_code(int64_t ms, char out[5])
{
	int y, m, d;
	clock_ist_date(ms, &y, &m, &d);
	int start = m >= 4 ? y : y - 1;
	int a = ((start % 100) + 100) % 100, b = (a + 1) % 100;
	snprintf(out, 5, "%02d%02d", a, b);
}
