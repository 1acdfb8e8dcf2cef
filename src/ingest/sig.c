/*
 * sig.c - X-Hub-Signature-256: HMAC-SHA256 over the raw webhook body.
 *
 * Meta signs the exact bytes it POSTs with the app secret and sends
 * "sha256=<64 hex>". We recompute the whole header value and compare all
 * 71 bytes with CRYPTO_memcmp, whose running time does not depend on where
 * the values differ, so an attacker cannot learn the expected value one
 * byte at a time.
 *
 * The received hex may be upper or lower case: it is folded to lower case
 * first. That step branches on the attacker's own bytes only (never on the
 * secret or the expected MAC), so it leaks nothing worth having.
 *
 * An empty or missing secret never verifies: a server started without one
 * must not accept bodies signed with the empty key.
 *
 * Thread safety: none needed; every call works on its own stack buffers.
 */
#include "ingest/sig.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "core/err.h"

#define SIG_PREFIX     "sha256="
#define SIG_PREFIX_LEN 7
#define SIG_HEX_LEN    64

static void hex_lower(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
}

/*
 * sig_sign writes "sha256=" + lower-case hex HMAC-SHA256(secret, body) into
 * out, NUL-terminated. A NULL secret is treated as the empty key (callers
 * that sign, such as the `say` tool and tests, always have a secret).
 */
void sig_sign(const char *secret, const void *body, size_t len, char out[SIG_HEADER_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	static const unsigned char empty[1] = {0};
	const char *key = secret ? secret : "";

	if (!body)
		body = empty;
	if (!HMAC(EVP_sha256(), key, (int)strlen(key), body, len, md, &mdlen) || mdlen != 32) {
		/* HMAC-SHA256 does not fail short of a broken OpenSSL; make the
		 * output a value no verifier accepts rather than garbage. */
		memset(out, 0, SIG_HEADER_LEN + 1);
		return;
	}
	memcpy(out, SIG_PREFIX, SIG_PREFIX_LEN);
	hex_lower(md, 32, out + SIG_PREFIX_LEN);
	out[SIG_HEADER_LEN] = '\0';
	OPENSSL_cleanse(md, sizeof(md));
}

/*
 * sig_verify: 0 when header is exactly "sha256=" followed by the 64 hex
 * digits (either case) of HMAC-SHA256(secret, body); ERR_AUTH otherwise,
 * including a NULL/empty secret, a NULL header, a wrong prefix, a wrong
 * length or a non-hex digit.
 */
int sig_verify(const char *secret, const void *body, size_t len, const char *header)
{
	char want[SIG_HEADER_LEN + 1];
	char got[SIG_HEADER_LEN + 1];
	int rc = ERR_AUTH;

	if (!secret || !*secret || !header)
		return ERR_AUTH;
	if (strnlen(header, SIG_HEADER_LEN + 1) != SIG_HEADER_LEN)
		return ERR_AUTH;
	if (memcmp(header, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
		return ERR_AUTH;
	memcpy(got, header, SIG_HEADER_LEN + 1);
	for (size_t i = SIG_PREFIX_LEN; i < SIG_HEADER_LEN; i++) {
		char c = got[i];
		if (c >= 'A' && c <= 'F')
			got[i] = (char)(c - 'A' + 'a');
		else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return ERR_AUTH;
	}
	sig_sign(secret, body, len, want);
	if (CRYPTO_memcmp(want, got, SIG_HEADER_LEN) == 0)
		rc = 0;
	OPENSSL_cleanse(want, sizeof(want));
	return rc;
}
