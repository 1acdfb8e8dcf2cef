/*
 * test_sig.c - X-Hub-Signature-256 signing and verification.
 *
 * Known vectors were computed with
 *   printf '%s' BODY | openssl dgst -sha256 -hmac SECRET
 * and the payload file's with `openssl dgst -sha256 -hmac SECRET FILE`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "core/err.h"
#include "ingest/sig.h"

#define SECRET   "munim-test-secret"
#define BODY     "{\"object\":\"whatsapp_business_account\",\"entry\":[]}"
#define BODY_SIG "sha256=807a7fdfdd986cd816239dc58f7569fbb26fc582ad1bcfdebb9f919475a5581a"

static void test_sign_known_vector(void **state)
{
	char out[SIG_HEADER_LEN + 1];
	(void)state;
	sig_sign(SECRET, BODY, strlen(BODY), out);
	assert_string_equal(out, BODY_SIG);
	sig_sign("key", "hello", 5, out);
	assert_string_equal(
	        out, "sha256=9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b");
	assert_int_equal(strlen(out), SIG_HEADER_LEN);
}

static void test_sign_payload_file(void **state)
{
	char out[SIG_HEADER_LEN + 1];
	char data[8192];
	(void)state;
	FILE *f = fopen("tests/unit/data/wa-payloads/meta_text_message.json", "rb");
	assert_non_null(f);
	size_t n = fread(data, 1, sizeof(data), f);
	fclose(f);
	sig_sign(SECRET, data, n, out);
	assert_string_equal(
	        out, "sha256=6c23b9a0e6afc8ea8a20d28202632c3a13204c1a1e824d08150fc366bdf70cf7");
	assert_int_equal(sig_verify(SECRET, data, n, out), 0);
}

static void test_verify_ok(void **state)
{
	(void)state;
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), BODY_SIG), 0);
}

static void test_verify_upper_case_hex_ok(void **state)
{
	(void)state;
	assert_int_equal(
	        sig_verify(
	                SECRET, BODY, strlen(BODY),
	                "sha256=807A7FDFDD986CD816239DC58F7569FBB26FC582AD1BCFDEBB9F919475A5581A"),
	        0);
}

static void test_verify_wrong_secret_err_auth(void **state)
{
	(void)state;
	assert_int_equal(sig_verify("other-secret", BODY, strlen(BODY), BODY_SIG), ERR_AUTH);
}

static void test_verify_changed_body_err_auth(void **state)
{
	const char *body = "{\"object\":\"whatsapp_business_account\",\"entry\":[ ]}";
	(void)state;
	assert_int_equal(sig_verify(SECRET, body, strlen(body), BODY_SIG), ERR_AUTH);
	/* one byte fewer of the same body */
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY) - 1, BODY_SIG), ERR_AUTH);
}

static void test_verify_missing_err_auth(void **state)
{
	(void)state;
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), NULL), ERR_AUTH);
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), ""), ERR_AUTH);
}

static void test_verify_malformed_err_auth(void **state)
{
	char h[SIG_HEADER_LEN + 8];
	(void)state;
	/* wrong prefix, same hex */
	assert_int_equal(
	        sig_verify(SECRET, BODY, strlen(BODY),
	                   "sha1=807a7fdfdd986cd816239dc58f7569fbb26fc582ad1bcfdebb9f919475a5581a"),
	        ERR_AUTH);
	assert_int_equal(
	        sig_verify(
	                SECRET, BODY, strlen(BODY),
	                "SHA256=807a7fdfdd986cd816239dc58f7569fbb26fc582ad1bcfdebb9f919475a5581a"),
	        ERR_AUTH);
	/* bare hex without the prefix */
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), &BODY_SIG[7]), ERR_AUTH);
	/* one hex digit short, one too many */
	snprintf(h, sizeof(h), "%.*s", SIG_HEADER_LEN - 1, BODY_SIG);
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), h), ERR_AUTH);
	snprintf(h, sizeof(h), "%s0", BODY_SIG);
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), h), ERR_AUTH);
	/* right length, a non-hex character */
	snprintf(h, sizeof(h), "%s", BODY_SIG);
	h[20] = 'g';
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), h), ERR_AUTH);
	/* trailing whitespace */
	snprintf(h, sizeof(h), "%.*s ", SIG_HEADER_LEN - 1, BODY_SIG);
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), h), ERR_AUTH);
}

static void test_verify_flipped_last_digit_err_auth(void **state)
{
	char h[SIG_HEADER_LEN + 1];
	(void)state;
	memcpy(h, BODY_SIG, sizeof(h));
	h[SIG_HEADER_LEN - 1] = h[SIG_HEADER_LEN - 1] == 'a' ? 'b' : 'a';
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), h), ERR_AUTH);
	/* and the first hex digit */
	memcpy(h, BODY_SIG, sizeof(h));
	h[7] = h[7] == '8' ? '9' : '8';
	assert_int_equal(sig_verify(SECRET, BODY, strlen(BODY), h), ERR_AUTH);
}

static void test_verify_empty_secret_err_auth(void **state)
{
	char h[SIG_HEADER_LEN + 1];
	(void)state;
	/* a body signed with the empty key must not pass a server that has no
	 * secret configured */
	sig_sign("", BODY, strlen(BODY), h);
	assert_int_equal(sig_verify("", BODY, strlen(BODY), h), ERR_AUTH);
	assert_int_equal(sig_verify(NULL, BODY, strlen(BODY), h), ERR_AUTH);
}

static void test_empty_body(void **state)
{
	char h[SIG_HEADER_LEN + 1];
	(void)state;
	sig_sign("key", "", 0, h);
	assert_string_equal(
	        h, "sha256=5d5d139563c95b5967b9bd9a8c9b233a9dedb45072794cd232dc1b74832607d0");
	assert_int_equal(sig_verify("key", "", 0, h), 0);
	assert_int_equal(sig_verify("key", NULL, 0, h), 0);
}

#define HELLO_KEY   "sha256=9307b3b915efb5171ff14d8cb55fbcc798c6c0ef1456d66ded1a6aa723a58b7b"
#define HELLO_KEYK  "sha256=f720c57726ad032d4a1876a2a7f973bd9a80ec9bcdf4728e8624cde530ac41bf"
#define HELLO_EMPTY "sha256=4352b26e33fe0d769a8922a6ba29004109f01688e26acc9e6cb347e5a5afc4da"

/* Each thread keeps a context keyed with the last secret: changing the
 * secret (to a longer one with the same prefix, to the empty key, back)
 * must re-key it every time. */
static void test_sign_alternating_secrets(void **state)
{
	char out[SIG_HEADER_LEN + 1];
	(void)state;
	for (int i = 0; i < 3; i++) {
		sig_sign("key", "hello", 5, out);
		assert_string_equal(out, HELLO_KEY);
		sig_sign("keyk", "hello", 5, out);
		assert_string_equal(out, HELLO_KEYK);
		sig_sign(NULL, "hello", 5, out);
		assert_string_equal(out, HELLO_EMPTY);
		sig_sign("", "hello", 5, out);
		assert_string_equal(out, HELLO_EMPTY);
	}
}

static void *sign_on_thread(void *arg)
{
	char *out = arg;
	sig_sign("keyk", "hello", 5, out);
	return NULL;
}

static void test_sign_other_thread(void **state)
{
	char mine[SIG_HEADER_LEN + 1], theirs[SIG_HEADER_LEN + 1];
	pthread_t t;
	(void)state;
	sig_sign("key", "hello", 5, mine);
	assert_int_equal(pthread_create(&t, NULL, sign_on_thread, theirs), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_string_equal(theirs, HELLO_KEYK);
	sig_sign("key", "hello", 5, mine);
	assert_string_equal(mine, HELLO_KEY);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_sign_known_vector),
	        cmocka_unit_test(test_sign_payload_file),
	        cmocka_unit_test(test_verify_ok),
	        cmocka_unit_test(test_verify_upper_case_hex_ok),
	        cmocka_unit_test(test_verify_wrong_secret_err_auth),
	        cmocka_unit_test(test_verify_changed_body_err_auth),
	        cmocka_unit_test(test_verify_missing_err_auth),
	        cmocka_unit_test(test_verify_malformed_err_auth),
	        cmocka_unit_test(test_verify_flipped_last_digit_err_auth),
	        cmocka_unit_test(test_verify_empty_secret_err_auth),
	        cmocka_unit_test(test_empty_body),
	        cmocka_unit_test(test_sign_alternating_secrets),
	        cmocka_unit_test(test_sign_other_thread),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
