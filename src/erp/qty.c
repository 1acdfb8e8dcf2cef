/*
 * qty.c - quantities and units.
 *
 * A customer types "2", "1.5 kg", "500g", "2 packet"; a product is sold by a
 * selling unit ("kg") and counted in base units (base_per_unit of them in
 * one selling unit: 1000 g in a kg). The typed number is read by hand into
 * thousandths (no floating point anywhere), the unit word is looked up in a
 * small table of families:
 *
 *   mass    g = 1, kg = 1000          (factors in grams)
 *   volume  ml = 1, l = 1000          (factors in millilitres)
 *   count   pc = packet = 1, dozen = 12
 *
 * and the conversion is exact integer arithmetic:
 *
 *   qty_base = milli × factor(typed unit) × base_per_unit
 *              / (1000 × factor(selling unit))
 *
 * which must come out whole (0.5 pc, 0.0001 kg are refused) and within
 * ERP_QTY_MAX_UNITS selling units. A selling unit outside the table (say
 * "box") converts only from a quantity with no unit or the same word.
 *
 * Invariants: never overflows (every product is checked with the compiler's
 * overflow builtins); a refused quantity changes nothing. Thread-safe: only
 * static const tables.
 */
#include <string.h>

#include "core/err.h"
#include "erp/erp_internal.h"

static const struct erp_unit unit_kg = {"kg", ERP_FAM_MASS, 1000};
static const struct erp_unit unit_g = {"g", ERP_FAM_MASS, 1};
static const struct erp_unit unit_l = {"l", ERP_FAM_VOLUME, 1000};
static const struct erp_unit unit_ml = {"ml", ERP_FAM_VOLUME, 1};
static const struct erp_unit unit_pc = {"pc", ERP_FAM_COUNT, 1};
static const struct erp_unit unit_packet = {"packet", ERP_FAM_COUNT, 1};
static const struct erp_unit unit_dozen = {"dozen", ERP_FAM_COUNT, 12};

static const struct {
	const char *word;
	const struct erp_unit *unit;
} unit_words[] = {
        {"kg", &unit_kg},         {"kgs", &unit_kg},         {"kilo", &unit_kg},
        {"kilos", &unit_kg},      {"kilogram", &unit_kg},    {"kilograms", &unit_kg},
        {"g", &unit_g},           {"gm", &unit_g},           {"gms", &unit_g},
        {"gram", &unit_g},        {"grams", &unit_g},        {"gr", &unit_g},
        {"l", &unit_l},           {"ltr", &unit_l},          {"ltrs", &unit_l},
        {"litre", &unit_l},       {"litres", &unit_l},       {"liter", &unit_l},
        {"liters", &unit_l},      {"lit", &unit_l},          {"ml", &unit_ml},
        {"mls", &unit_ml},        {"pc", &unit_pc},          {"pcs", &unit_pc},
        {"piece", &unit_pc},      {"pieces", &unit_pc},      {"nos", &unit_pc},
        {"packet", &unit_packet}, {"packets", &unit_packet}, {"pkt", &unit_packet},
        {"pkts", &unit_packet},   {"pack", &unit_packet},    {"packs", &unit_packet},
        {"dozen", &unit_dozen},   {"dz", &unit_dozen},
};

static int ascii_lower(int ch)
{
	return (ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch;
}

static int word_eq_ci(const char *a, size_t la, const char *b)
{
	size_t lb = strlen(b);
	if (la != lb)
		return 0;
	for (size_t i = 0; i < la; i++)
		if (ascii_lower((unsigned char)a[i]) != (unsigned char)b[i])
			return 0;
	return 1;
}

static const struct erp_unit *unit_lookup_n(const char *w, size_t len)
{
	for (size_t i = 0; i < sizeof(unit_words) / sizeof(unit_words[0]); i++)
		if (word_eq_ci(w, len, unit_words[i].word))
			return unit_words[i].unit;
	return NULL;
}

const struct erp_unit *erp__unit_lookup(const char *word)
{
	if (!word)
		return NULL;
	return unit_lookup_n(word, strlen(word));
}

int erp__qty_number(const char *s, size_t len, int64_t *milli)
{
	size_t i = 0, nint = 0, ndec = 0;
	int64_t ip = 0, dp = 0;

	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (++nint > ERP_QTY_MAX_INT_DIGITS)
			return ERR_TOOBIG;
		ip = ip * 10 + (s[i] - '0');
		i++;
	}
	if (i < len && s[i] == '.') {
		i++;
		while (i < len && s[i] >= '0' && s[i] <= '9') {
			if (++ndec > ERP_QTY_MAX_DEC_DIGITS)
				return ERR_TOOBIG;
			dp = dp * 10 + (s[i] - '0');
			i++;
		}
		if (ndec == 0)
			return ERR_INVAL; /* "2." */
	}
	if (i != len || nint + ndec == 0)
		return ERR_INVAL;
	for (size_t k = ndec; k < ERP_QTY_MAX_DEC_DIGITS; k++)
		dp *= 10;
	*milli = ip * 1000 + dp;
	return 0;
}

int erp__qty_token(const char *tok, struct erp_qty *out)
{
	size_t len = strlen(tok), n = 0;

	while (n < len && ((tok[n] >= '0' && tok[n] <= '9') || tok[n] == '.'))
		n++;
	if (n == 0)
		return ERR_INVAL;
	int64_t milli;
	int rc = erp__qty_number(tok, n, &milli);
	if (rc < 0)
		return rc;
	out->milli = milli;
	out->unit = NULL;
	if (n == len)
		return 0;
	/* "2x" (two of) is a quantity without a unit */
	if (len - n == 1 && ascii_lower((unsigned char)tok[n]) == 'x')
		return 0;
	out->unit = unit_lookup_n(tok + n, len - n);
	return out->unit ? 0 : ERR_INVAL;
}

int erp__qty_to_base(const struct erp_qty *q, const char *product_unit, int64_t base_per_unit,
                     int64_t *qty_base)
{
	const struct erp_unit *pu = erp__unit_lookup(product_unit);
	int64_t pfac, ufac, num, den, cap;

	if (base_per_unit <= 0 || q->milli < 0)
		return ERR_INVAL;
	if (q->milli == 0)
		return ERR_INVAL;
	if (!q->unit) {
		ufac = pfac = 1;
	} else if (!pu) {
		/* unknown selling unit: only the same word converts */
		if (!product_unit ||
		    !word_eq_ci(q->unit->name, strlen(q->unit->name), product_unit))
			return ERR_CONFLICT;
		ufac = pfac = 1;
	} else {
		if (pu->family != q->unit->family)
			return ERR_CONFLICT;
		ufac = q->unit->factor;
		pfac = pu->factor;
	}
	if (__builtin_mul_overflow(q->milli, ufac, &num) ||
	    __builtin_mul_overflow(num, base_per_unit, &num))
		return ERR_TOOBIG;
	den = 1000 * pfac;
	if (num % den != 0)
		return ERR_INVAL;
	num /= den;
	if (__builtin_mul_overflow((int64_t)ERP_QTY_MAX_UNITS, base_per_unit, &cap))
		cap = INT64_MAX;
	if (num > cap)
		return ERR_TOOBIG;
	*qty_base = num;
	return 0;
}

int erp__size_canon(const char *w, const char *next, char *out, size_t outsz)
{
	struct erp_qty q;
	size_t nlen = 0;
	int span = 1;

	if (!w || erp__qty_token(w, &q) != 0)
		return 0;
	while ((w[nlen] >= '0' && w[nlen] <= '9') || w[nlen] == '.')
		nlen++;
	if (!q.unit) {
		if (w[nlen] != '\0' || !next)
			return 0; /* "2x", or a bare number */
		q.unit = erp__unit_lookup(next);
		if (!q.unit)
			return 0;
		span = 2;
	}
	if (nlen + strlen(q.unit->name) + 1 > outsz)
		return 0;
	memcpy(out, w, nlen);
	strcpy(out + nlen, q.unit->name);
	return span;
}

int erp__size_word(struct arena *a, const struct erp_token *toks, int n, int i, const char **word)
{
	char tmp[ERP_QTY_MAX_INT_DIGITS + ERP_QTY_MAX_DEC_DIGITS + 16];
	const char *next;
	int span;

	if (i >= n || toks[i].sep)
		return 0;
	next = (i + 1 < n && !toks[i + 1].sep) ? toks[i + 1].s : NULL;
	span = erp__size_canon(toks[i].s, next, tmp, sizeof(tmp));
	if (span > 0)
		*word = arena_strdup(a, tmp);
	return span;
}

int erp_unit_normalize(const char *unit, const char **canonical, int64_t *base_per_unit)
{
	const struct erp_unit *u = erp__unit_lookup(unit);
	if (!u)
		return ERR_INVAL;
	*canonical = u->name;
	*base_per_unit = u->factor;
	return 0;
}
