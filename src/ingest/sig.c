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
 * Speed: OpenSSL 3's one-shot HMAC() looks the digest up and sets the key
 * up again for every call (about 4 µs a webhook). Each thread keeps one
 * HMAC context keyed with the secret it last used and re-initialises it
 * per body (about 1.3 µs); a different secret re-keys it.
 *
 * Thread safety: the keyed context is per thread (a pthread key whose
 * destructor frees it at thread exit); everything else is on the stack.
 */
#include "ingest/sig.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

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

/* One thread's HMAC-SHA256 context, keyed with `key` (a private copy). */
struct sig_mac {
	EVP_MAC_CTX *ctx;
	char *key;
	size_t keylen;
};

static pthread_key_t mac_key;
static pthread_once_t mac_once = PTHREAD_ONCE_INIT;
static EVP_MAC *mac_algo; /* fetched once, shared (EVP_MAC is reference counted) */
static int mac_ready;

static void mac_forget(struct sig_mac *m)
{
	EVP_MAC_CTX_free(m->ctx);
	if (m->key) {
		OPENSSL_cleanse(m->key, m->keylen);
		free(m->key);
	}
	m->ctx = NULL;
	m->key = NULL;
	m->keylen = 0;
}

static void mac_thread_exit(void *p)
{
	mac_forget(p);
	free(p);
}

static void mac_setup(void)
{
	mac_algo = EVP_MAC_fetch(NULL, "HMAC", NULL);
	mac_ready = mac_algo && pthread_key_create(&mac_key, mac_thread_exit) == 0;
}

/* This thread's context keyed with key (len bytes), ready for a new body;
 * NULL if OpenSSL or memory failed (the caller falls back to no MAC). */
static EVP_MAC_CTX *mac_for(const char *key, size_t len)
{
	pthread_once(&mac_once, mac_setup);
	if (!mac_ready)
		return NULL;
	struct sig_mac *m = pthread_getspecific(mac_key);
	if (!m) {
		if (!(m = calloc(1, sizeof(*m))))
			return NULL;
		if (pthread_setspecific(mac_key, m) != 0) {
			free(m);
			return NULL;
		}
	}
	if (m->ctx && m->keylen == len && CRYPTO_memcmp(m->key, key, len) == 0)
		return EVP_MAC_init(m->ctx, NULL, 0, NULL) ? m->ctx : NULL;
	mac_forget(m);
	OSSL_PARAM params[] = {
	        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
	        OSSL_PARAM_construct_end(),
	};
	/* a one-byte dummy keeps malloc(0) and the empty key apart */
	m->key = malloc(len ? len : 1);
	m->ctx = EVP_MAC_CTX_new(mac_algo);
	if (!m->key || !m->ctx || !EVP_MAC_init(m->ctx, (const unsigned char *)key, len, params)) {
		mac_forget(m);
		return NULL;
	}
	memcpy(m->key, key, len);
	m->keylen = len;
	return m->ctx;
}

/*
 * sig_sign writes "sha256=" + lower-case hex HMAC-SHA256(secret, body) into
 * out, NUL-terminated. A NULL secret is treated as the empty key (callers
 * that sign, such as the `say` tool and tests, always have a secret).
 */
void sig_sign(const char *secret, const void *body, size_t len, char out[SIG_HEADER_LEN + 1])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	size_t mdlen = 0;
	static const unsigned char empty[1] = {0};
	const char *key = secret ? secret : "";
	EVP_MAC_CTX *ctx = mac_for(key, strlen(key));

	if (!body)
		body = empty;
	if (!ctx || !EVP_MAC_update(ctx, body, len) ||
	    !EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) || mdlen != 32) {
		/* HMAC-SHA256 does not fail short of a broken OpenSSL or no
		 * memory; make the output a value no verifier accepts rather
		 * than garbage. */
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
