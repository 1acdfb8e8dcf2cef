/*
 * upi.c - UPI pay links (NPCI UPI Linking Specification 1.6).
 *
 *   upi://pay?pa=<VPA>&pn=<payee name>&am=<rupees, 2 decimals>&cu=INR
 *            &tn=<note>&tr=<transaction reference>
 *
 * Every value is percent-encoded byte by byte: the RFC 3986 unreserved
 * characters (A-Z a-z 0-9 - . _ ~) stay, everything else becomes %XX with
 * upper-case hex, so "shop@upi" is "shop%40upi", a space "%20" and the
 * invoice number's slashes "%2F". We put the invoice number in both tn (the
 * note the payer sees) and tr (the reference a PSP webhook echoes back for
 * matching). A link is a convenience: payment is confirmed only by a signed
 * PSP webhook, never by the customer tapping it.
 *
 * Thread-safe: pure functions.
 */
#include <inttypes.h>

#include "erp/erp_internal.h"

void erp__pct_encode(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		unsigned char ch = *p;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			buf_putc(b, (char)ch);
		} else {
			char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
			buf_append(b, e, 3);
		}
	}
}

char *erp__upi_link(struct arena *a, const char *vpa, const char *payee, int64_t amount_paise,
                    const char *number)
{
	struct buf b;
	char *out;

	if (amount_paise < 0)
		amount_paise = 0;
	buf_init(&b);
	buf_puts(&b, "upi://pay?pa=");
	erp__pct_encode(&b, vpa);
	buf_puts(&b, "&pn=");
	erp__pct_encode(&b, payee);
	buf_printf(&b, "&am=%" PRId64 ".%02" PRId64 "&cu=INR&tn=", amount_paise / 100,
	           amount_paise % 100);
	erp__pct_encode(&b, number);
	buf_puts(&b, "&tr=");
	erp__pct_encode(&b, number);
	out = arena_strndup(a, b.data, b.len);
	buf_release(&b);
	return out;
}
