/*
 * sig.h - X-Hub-Signature-256: HMAC-SHA256 of the raw body keyed by the app
 * secret, as "sha256=<64 lower-case hex>".
 */
#ifndef MUNIM_SIG_H
#define MUNIM_SIG_H

#include <stddef.h>

#define SIG_HEADER_LEN 71 /* "sha256=" + 64 hex */

/* sig_sign writes the header value for body into out (NUL-terminated). */
void sig_sign(const char *secret, const void *body, size_t len, char out[SIG_HEADER_LEN + 1]);
/*
 * sig_verify checks header against body in constant time (the comparison
 * does not depend on where the strings differ). 0 if it matches, ERR_AUTH
 * if not or if header is NULL or malformed.
 */
int sig_verify(const char *secret, const void *body, size_t len, const char *header);

#endif
