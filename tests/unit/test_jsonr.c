/*
 * test_jsonr.c - the read-only JSON parser: every value type, escapes, the
 * lookups, each class of malformed input refused with ERR_PROTO, and a
 * differential check against jansson (jsonr_diff.h) over the sample webhook
 * payloads, a list of tricky inputs and seeded mutations of the samples.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "jsonr_diff.h"
#include "sample_data.h"

static int setup(void **state)
{
	struct arena *a = malloc(sizeof(*a));
	arena_init(a, 0);
	*state = a;
	return 0;
}

static int teardown(void **state)
{
	arena_release(*state);
	free(*state);
	return 0;
}

/* Parses the NUL-terminated text s; asserts success. */
static const struct jsonr_val *ok(struct arena *a, const char *s)
{
	const struct jsonr_val *v = NULL;
	int rc = jsonr_parse(s, strlen(s), a, &v);
	if (rc != 0)
		fail_msg("jsonr refuses %s: %d", s, rc);
	assert_non_null(v);
	return v;
}

/* jsonr_parse's answer for n bytes at s; checks *out is NULL on error. */
static int parse_n(struct arena *a, const char *s, size_t n)
{
	const struct jsonr_val *v = (const struct jsonr_val *)1;
	int rc = jsonr_parse(s, n, a, &v);
	if (rc != 0)
		assert_null(v);
	return rc;
}

static int parse(struct arena *a, const char *s)
{
	return parse_n(a, s, strlen(s));
}

static void assert_str(const struct jsonr_val *v, const char *want, size_t wantlen)
{
	size_t n;
	const char *s = jsonr_str(v, &n);
	assert_non_null(s);
	assert_int_equal(n, wantlen);
	assert_memory_equal(s, want, wantlen);
	assert_int_equal(s[n], '\0');
}

/* ---- valid documents --------------------------------------------------------- */

static void test_scalars(void **state)
{
	struct arena *a = *state;
	int64_t i;

	assert_int_equal(ok(a, "null")->type, JSONR_NULL);
	assert_int_equal(ok(a, "true")->type, JSONR_TRUE);
	assert_int_equal(ok(a, " \t\r\nfalse \n")->type, JSONR_FALSE);
	assert_str(ok(a, "\"\""), "", 0);
	assert_str(ok(a, "\"hello\""), "hello", 5);

	const struct jsonr_val *v = ok(a, "0");
	assert_int_equal(v->type, JSONR_NUMBER);
	assert_int_equal(jsonr_int(v, &i), 0);
	assert_int_equal(i, 0);
	assert_string_equal(v->u.str, "0");
	assert_int_equal(jsonr_int(ok(a, "-0"), &i), 0);
	assert_int_equal(i, 0);
	assert_int_equal(jsonr_int(ok(a, "-12"), &i), 0);
	assert_int_equal(i, -12);
	assert_int_equal(jsonr_int(ok(a, "1700000000"), &i), 0);
	assert_int_equal(i, 1700000000);

	/* fraction or exponent: a number, not an integer; text kept */
	const char *reals[] = {"1.5", "-0.0", "1e10", "1E+2", "2.5e-3", "0.0e-0", "-1.25E5"};
	for (size_t k = 0; k < sizeof(reals) / sizeof(*reals); k++) {
		v = ok(a, reals[k]);
		assert_int_equal(v->type, JSONR_NUMBER);
		assert_int_equal(v->flags, 0);
		assert_string_equal(v->u.str, reals[k]);
		assert_int_equal(v->len, strlen(reals[k]));
		assert_int_equal(jsonr_int(v, &i), ERR_INVAL);
	}
}

static void test_int64_limits(void **state)
{
	struct arena *a = *state;
	int64_t i;

	assert_int_equal(jsonr_int(ok(a, "9223372036854775807"), &i), 0);
	assert_true(i == INT64_MAX);
	assert_int_equal(jsonr_int(ok(a, "-9223372036854775808"), &i), 0);
	assert_true(i == INT64_MIN);
	assert_int_equal(jsonr_int(ok(a, "922337203685477580"), &i), 0);
	assert_true(i == 922337203685477580LL);
}

/* Beyond int64: still a number with its text, flagged integer, not int64. */
static void test_big_integers_kept_not_int(void **state)
{
	struct arena *a = *state;
	const char *big[] = {"9223372036854775808", "-9223372036854775809", "9223372036854775810",
	                     "100000000000000000000000", "-99999999999999999999999999999999"};
	int64_t i = 42;

	for (size_t k = 0; k < sizeof(big) / sizeof(*big); k++) {
		const struct jsonr_val *v = ok(a, big[k]);
		assert_int_equal(v->type, JSONR_NUMBER);
		assert_int_equal(v->flags, JSONR_INTEGER);
		assert_string_equal(v->u.str, big[k]);
		assert_int_equal(jsonr_int(v, &i), ERR_TOOBIG);
		assert_int_equal(i, 42); /* untouched */
	}
	/* a real beyond double: jsonr does not convert it, so it is kept */
	assert_string_equal(ok(a, "[1e400]")->u.items[0].u.str, "1e400");
}

static void test_arrays_and_objects(void **state)
{
	struct arena *a = *state;
	const struct jsonr_val *v = ok(a, "[1, \"two\", [3, [], {}], {\"k\": null}, true]");

	assert_true(jsonr_is_array(v));
	assert_int_equal(jsonr_len(v), 5);
	assert_int_equal(jsonr_at(v, 0)->i, 1);
	assert_str(jsonr_at(v, 1), "two", 3);
	assert_int_equal(jsonr_len(jsonr_at(v, 2)), 3);
	assert_int_equal(jsonr_len(jsonr_at(jsonr_at(v, 2), 1)), 0);
	assert_true(jsonr_is_object(jsonr_at(jsonr_at(v, 2), 2)));
	assert_int_equal(jsonr_at(jsonr_at(v, 2), 2)->len, 0);
	assert_int_equal(jsonr_get(jsonr_at(v, 3), "k")->type, JSONR_NULL);
	assert_int_equal(jsonr_at(v, 4)->type, JSONR_TRUE);
	assert_null(jsonr_at(v, 5));

	v = ok(a, "{\"b\":1,\"a\":{\"c\":[\"x\"]},\"\":\"empty key\"}");
	assert_true(jsonr_is_object(v));
	assert_int_equal(v->len, 3);
	/* members keep their order */
	assert_string_equal(v->u.members[0].key, "b");
	assert_string_equal(v->u.members[1].key, "a");
	assert_string_equal(v->u.members[2].key, "");
	assert_str(jsonr_at(jsonr_get(jsonr_get(v, "a"), "c"), 0), "x", 1);
	assert_str(jsonr_get(v, ""), "empty key", 9);
	assert_null(jsonr_get(v, "missing"));
	assert_null(jsonr_get(v, "bb"));
}

static void test_lookups_on_wrong_types_and_null(void **state)
{
	struct arena *a = *state;
	const struct jsonr_val *v = ok(a, "{\"s\":\"str\",\"n\":5,\"arr\":[1]}");
	int64_t i;
	size_t n;

	assert_null(jsonr_get(NULL, "s"));
	assert_null(jsonr_get(jsonr_get(v, "arr"), "s"));
	assert_null(jsonr_get(jsonr_get(v, "missing"), "s")); /* chains */
	assert_null(jsonr_at(NULL, 0));
	assert_null(jsonr_at(v, 0));
	assert_int_equal(jsonr_len(NULL), 0);
	assert_int_equal(jsonr_len(v), 0); /* an object has no items */
	assert_int_equal(jsonr_len(jsonr_get(v, "s")), 0);
	assert_null(jsonr_str(NULL, &n));
	assert_null(jsonr_str(jsonr_get(v, "n"), &n));
	assert_non_null(jsonr_str(jsonr_get(v, "s"), NULL));
	assert_int_equal(jsonr_int(NULL, &i), ERR_INVAL);
	assert_int_equal(jsonr_int(jsonr_get(v, "s"), &i), ERR_INVAL);
	assert_int_equal(jsonr_int(jsonr_get(v, "n"), &i), 0);
	assert_int_equal(i, 5);
	assert_false(jsonr_is_object(NULL));
	assert_false(jsonr_is_array(NULL));
	assert_false(jsonr_is_array(v));
}

static void test_duplicate_keys_last_wins(void **state)
{
	struct arena *a = *state;
	const struct jsonr_val *v = ok(a, "{\"a\":1,\"b\":2,\"a\":3,\"a\":\"four\"}");

	assert_int_equal(v->len, 4); /* every member kept, in order */
	assert_str(jsonr_get(v, "a"), "four", 4);
	assert_int_equal(jsonr_get(v, "b")->i, 2);
	assert_int_equal(v->u.members[0].val.i, 1);
}

static void test_escapes(void **state)
{
	struct arena *a = *state;

	assert_str(ok(a, "\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\""), "\" \\ / \b \f \n \r \t", 15);
	assert_str(ok(a, "\"\\u0041\\u00e9\\u00E9\\u20AC\""), "A\xc3\xa9\xc3\xa9\xe2\x82\xac", 8);
	/* surrogate pairs → one 4-byte UTF-8 sequence */
	assert_str(ok(a, "\"\\ud83d\\ude00\""), "\xf0\x9f\x98\x80", 4);
	assert_str(ok(a, "\"\\uD800\\uDC00\""), "\xf0\x90\x80\x80", 4);
	assert_str(ok(a, "\"\\uDBFF\\uDFFF\""), "\xf4\x8f\xbf\xbf", 4);
	/* boundaries of each UTF-8 length */
	assert_str(ok(a, "\"\\u007f\\u0080\\u07ff\\u0800\\uffff\""),
	           "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 11);
	/* raw UTF-8 passes through: Devanagari, emoji, U+10FFFF */
	assert_str(ok(a, "\"\xe0\xa4\xae\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\x7f\""),
	           "\xe0\xa4\xae\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf\x7f", 12);
	/* keys are unescaped too */
	assert_int_equal(jsonr_get(ok(a, "{\"\\u0061b\":7}"), "ab")->i, 7);
}

/* "\u0000": kept with its length; a key holding it matches no C string. */
static void test_embedded_nul(void **state)
{
	struct arena *a = *state;
	const struct jsonr_val *v = ok(a, "{\"t\":\"ab\\u0000cd\",\"a\\u0000b\":1}");

	assert_str(jsonr_get(v, "t"), "ab\0cd", 5);
	assert_int_equal(strlen(jsonr_get(v, "t")->u.str), 2);
	assert_int_equal(v->u.members[1].keylen, 3);
	assert_memory_equal(v->u.members[1].key, "a\0b", 4);
	assert_null(jsonr_get(v, "a"));
}

/* Stops at every offset of the 8-byte scan: an escape, a multi-byte
 * character or the closing quote at byte k of a long string. */
static void test_string_scan_every_offset(void **state)
{
	struct arena *a = *state;
	const char *inserts[] = {"\\n",  "\\u00e9", "\xe0\xa4\xae", "\\ud83d\\ude00",
	                         "\\\"", "\x7f"};
	const char *decoded[] = {"\n", "\xc3\xa9", "\xe0\xa4\xae", "\xf0\x9f\x98\x80",
	                         "\"", "\x7f"};

	for (size_t ins = 0; ins < sizeof(inserts) / sizeof(*inserts); ins++) {
		for (size_t k = 0; k < 40; k++) {
			for (size_t tail = 0; tail < 20; tail += 3) {
				struct buf in, want;
				buf_init(&in);
				buf_init(&want);
				buf_puts(&in, "[\"");
				for (size_t x = 0; x < k; x++) {
					buf_putc(&in, (char)('a' + x % 26));
					buf_putc(&want, (char)('a' + x % 26));
				}
				buf_puts(&in, inserts[ins]);
				buf_puts(&want, decoded[ins]);
				for (size_t x = 0; x < tail; x++) {
					buf_putc(&in, (char)('A' + x % 26));
					buf_putc(&want, (char)('A' + x % 26));
				}
				buf_puts(&in, "\"]");
				const struct jsonr_val *v;
				assert_int_equal(jsonr_parse(in.data, in.len, a, &v), 0);
				assert_str(jsonr_at(v, 0), want.data, want.len);
				buf_release(&in);
				buf_release(&want);
			}
		}
	}
}

/* Many children: the scratch stacks move from the C stack to the arena. */
static void test_many_children(void **state)
{
	struct arena *a = *state;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, "{");
	for (int m = 0; m < 300; m++) {
		buf_printf(&b, "%s\"k%d\":[", m ? "," : "", m);
		for (int i = 0; i < 200; i++)
			buf_printf(&b, "%s%d", i ? "," : "", m * 1000 + i);
		buf_puts(&b, "]");
	}
	buf_puts(&b, "}");
	const struct jsonr_val *v;
	assert_int_equal(jsonr_parse(b.data, b.len, a, &v), 0);
	assert_int_equal(v->len, 300);
	for (int m = 0; m < 300; m++) {
		char key[16];
		snprintf(key, sizeof(key), "k%d", m);
		const struct jsonr_val *arr = jsonr_get(v, key);
		assert_int_equal(jsonr_len(arr), 200);
		for (int i = 0; i < 200; i++)
			assert_int_equal(jsonr_at(arr, (size_t)i)->i, m * 1000 + i);
	}
	/* an error after the stacks moved to the heap: ERR_PROTO, nothing
	 * leaked (the ASan run checks) */
	b.data[b.len - 1] = ',';
	assert_int_equal(parse_n(a, b.data, b.len), ERR_PROTO);
	assert_int_equal(parse_n(a, b.data, b.len - 50), ERR_PROTO);
	buf_release(&b);
}

/* Only len bytes count; the tree outlives the input buffer. */
static void test_length_bounded_and_outlives_input(void **state)
{
	struct arena *a = *state;
	char buf[] = "{\"k\":\"value\"}garbage";
	const struct jsonr_val *v;

	assert_int_equal(jsonr_parse(buf, 13, a, &v), 0);
	memset(buf, 'x', sizeof(buf) - 1);
	assert_str(jsonr_get(v, "k"), "value", 5);
	assert_int_equal(parse_n(a, "[1]xyz", 6), ERR_PROTO);
	assert_int_equal(parse_n(a, "123", 2), 0); /* "12" */
}

static void test_depth_limit(void **state)
{
	struct arena *a = *state;
	struct buf b;
	buf_init(&b);
	for (int d = 0; d < JSONR_MAX_DEPTH; d++)
		buf_puts(&b, d % 2 ? "{\"k\":" : "[");
	buf_puts(&b, "1");
	for (int d = JSONR_MAX_DEPTH - 1; d >= 0; d--)
		buf_puts(&b, d % 2 ? "}" : "]");
	assert_int_equal(parse_n(a, b.data, b.len), 0);

	/* one level more: ERR_PROTO, for arrays and for objects */
	buf_reset(&b);
	for (int d = 0; d <= JSONR_MAX_DEPTH; d++)
		buf_puts(&b, "[");
	for (int d = 0; d <= JSONR_MAX_DEPTH; d++)
		buf_puts(&b, "]");
	assert_int_equal(parse_n(a, b.data, b.len), ERR_PROTO);
	buf_reset(&b);
	for (int d = 0; d <= JSONR_MAX_DEPTH; d++)
		buf_puts(&b, "{\"a\":");
	buf_puts(&b, "1");
	for (int d = 0; d <= JSONR_MAX_DEPTH; d++)
		buf_puts(&b, "}");
	assert_int_equal(parse_n(a, b.data, b.len), ERR_PROTO);
	/* a hostile body: a million brackets, refused without deep recursion */
	buf_reset(&b);
	for (int d = 0; d < 1000000; d++)
		buf_putc(&b, '[');
	assert_int_equal(parse_n(a, b.data, b.len), ERR_PROTO);
	buf_release(&b);
}

static void test_too_long_err_toobig(void **state)
{
	struct arena *a = *state;
	const struct jsonr_val *v = (const struct jsonr_val *)1;
	/* the length is checked before a byte is read */
	assert_int_equal(jsonr_parse("{}", (size_t)JSONR_MAX_LEN + 1, a, &v), ERR_TOOBIG);
	assert_null(v);
	assert_int_equal(jsonr_parse(NULL, 0, a, &v), ERR_PROTO);
}

/* ---- malformed input: ERR_PROTO, one class per test ------------------------------ */

static void assert_all_proto(struct arena *a, const char *const *bad, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (parse(a, bad[i]) != ERR_PROTO)
			fail_msg("jsonr accepts %s", bad[i]);
}
#define ALL_PROTO(a, ...)                                                                          \
	do {                                                                                       \
		const char *const bad_[] = {__VA_ARGS__};                                          \
		assert_all_proto(a, bad_, sizeof(bad_) / sizeof(*bad_));                           \
	} while (0)

static void test_trailing_comma_err_proto(void **state)
{
	ALL_PROTO(*state, "[1,]", "[1,2,]", "{\"a\":1,}", "[,]", "[,1]", "{,}", "[1,,2]");
}

static void test_leading_zero_err_proto(void **state)
{
	ALL_PROTO(*state, "01", "-01", "00", "[007]", "{\"a\":012}", "-00.5");
}

static void test_bad_number_err_proto(void **state)
{
	ALL_PROTO(*state, "-", "+1", ".5", "1.", "1.e5", "1e", "1e+", "1E-", "--1", "0x10", "1_000",
	          "NaN", "Infinity", "-Infinity", "[1.5.2]", "1e5.2");
}

static void test_bad_escape_err_proto(void **state)
{
	ALL_PROTO(*state, "\"\\a\"", "\"\\x41\"", "\"\\U0041\"", "\"\\u004\"", "\"\\u12G4\"",
	          "\"\\u\"", "\"\\\"", "\"\\", "\"\\'\"", "\"\\0\"", "\"\\u00\"");
}

static void test_lone_surrogate_err_proto(void **state)
{
	ALL_PROTO(*state, "\"\\ud800\"", "\"\\udbff\"", "\"\\udc00\"", "\"\\udfff\"",
	          "\"\\ud800\\u0041\"", "\"\\ud800\\ud800\"", "\"\\ud800x\"", "\"\\ud800\\n\"",
	          "\"\\udc00\\ud800\"", "\"\\ud800\\\"");
}

static void test_invalid_utf8_err_proto(void **state)
{
	ALL_PROTO(*state, "\"\xc0\x80\"",     /* overlong NUL */
	          "\"\xc1\xbf\"",             /* overlong 2-byte */
	          "\"\xe0\x80\x80\"",         /* overlong 3-byte */
	          "\"\xe0\x9f\xbf\"",         /* overlong 3-byte, top */
	          "\"\xf0\x80\x80\x80\"",     /* overlong 4-byte */
	          "\"\xf0\x8f\xbf\xbf\"",     /* overlong 4-byte, top */
	          "\"\xed\xa0\x80\"",         /* U+D800 in UTF-8 */
	          "\"\xed\xbf\xbf\"",         /* U+DFFF in UTF-8 */
	          "\"\xf4\x90\x80\x80\"",     /* U+110000 */
	          "\"\xf5\x80\x80\x80\"",     /* F5: never valid */
	          "\"\xff\"", "\"\xfe\"",     /* never valid */
	          "\"\x80\"", "\"a\xbf\"",    /* lone continuation */
	          "\"\xc3\"", "\"\xc3x\"",    /* truncated 2-byte */
	          "\"\xe0\xa4\"",             /* truncated 3-byte */
	          "\"\xf0\x9f\x98\"",         /* truncated 4-byte */
	          "\"\xe0\xa4\xae\xe0\xa4\"", /* truncated after a good one */
	          "\"\xc3\xa9\xa9\"");        /* extra continuation */
	/* invalid UTF-8 outside strings is just an unexpected byte */
	ALL_PROTO(*state, "\xef\xbb\xbf{}", "[\xc3\xa9]");
}

static void test_control_char_err_proto(void **state)
{
	struct arena *a = *state;
	for (int c = 0; c < 0x20; c++) {
		/* at every offset of the 8-byte scan, and in the short tail */
		for (int at = 1; at < 20; at++) {
			char s[24];
			memset(s, 'a', sizeof(s));
			s[0] = '"';
			s[at] = (char)c;
			s[21] = '"';
			if (parse_n(a, s, 22) != ERR_PROTO)
				fail_msg("control character 0x%02x accepted at %d", c, at);
		}
	}
	/* a raw NUL byte is an error outside strings too */
	assert_int_equal(parse_n(a, "[1,\0 2]", 7), ERR_PROTO);
	assert_int_equal(parse_n(a, "\0", 1), ERR_PROTO);
	assert_int_equal(parse_n(a, "{}\0", 3), ERR_PROTO);
	/* DEL is no control character in JSON */
	assert_int_equal(parse(a, "\"\x7f\""), 0);
}

static void test_trailing_garbage_err_proto(void **state)
{
	ALL_PROTO(*state, "{}x", "[] []", "1 2", "\"a\"\"b\"", "true false", "{}}", "[]]", "nullx",
	          "truex", "0 0", "[1]\n,");
}

static void test_bad_structure_err_proto(void **state)
{
	ALL_PROTO(*state, "", "   ", "\n", "nul", "tru", "fals", "NULL", "True", "[1 2]",
	          "{\"a\" 1}", "{\"a\"}", "{\"a\":}", "{1:2}", "{a:1}", "{'a':1}", "['a']",
	          "{\"a\":1 \"b\":2}", "[", "]", "{", "}", "[}", "{]", "\"abc", "[\"abc]",
	          "{\"a\":1", "[1,", "[\v]", "[\f]", "[1]\v", ":", ",", "\"a\":1");
}

/* Every proper prefix of a valid document is refused; the whole is taken. */
static void check_prefixes(struct arena *a, const char *s, size_t n)
{
	size_t whole = n;
	while (whole > 0 && (s[whole - 1] == ' ' || s[whole - 1] == '\n' || s[whole - 1] == '\r' ||
	                     s[whole - 1] == '\t'))
		whole--;
	for (size_t k = 0; k < whole; k++)
		if (parse_n(a, s, k) != ERR_PROTO)
			fail_msg("prefix of %zu bytes accepted", k);
	for (size_t k = whole; k <= n; k++)
		assert_int_equal(parse_n(a, s, k), 0);
}

static void test_truncated_at_every_prefix_err_proto(void **state)
{
	struct arena *a = *state;
	const char *docs[] = {
	        "{\"a\":[1,-2.5e3,true,false,null,\"x\\u00e9\\ud83d\\ude00y\"],\"b\":{}}",
	        "[[[]],{\"k\":\"v\"},\"\xe0\xa4\xae\",-0.5E+2]",
	        "\"abcdefghijklmnopqrstuvwxyz\\n\"",
	};
	for (size_t i = 0; i < sizeof(docs) / sizeof(*docs); i++)
		check_prefixes(a, docs[i], strlen(docs[i]));
}

/* ---- the samples and the differential check against jansson --------------------- */

/* Calls fn on every sample payload; returns how many there were. */
static int each_sample(struct arena *a, void (*fn)(struct arena *, const char *, size_t))
{
	DIR *d = opendir(SAMPLE_DIR);
	struct dirent *de;
	int files = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name), len;
		if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		char *data = sample_load(de->d_name, &len);
		fn(a, data, len);
		free(data);
		arena_reset(a);
		files++;
	}
	closedir(d);
	return files;
}

static void sample_agrees(struct arena *a, const char *s, size_t n)
{
	const char *why = diff_parse(s, n, a);
	if (why)
		fail_msg("jsonr and jansson disagree on a sample: %s", why);
	check_prefixes(a, s, n);
}

static void test_samples_agree_with_jansson(void **state)
{
	struct arena *a = *state;
	assert_int_equal(each_sample(a, sample_agrees), 10);

	const struct jsonr_val *v;
	size_t n;
	char *s = sample_load("pywa_order_message.json", &n);
	assert_int_equal(jsonr_parse(s, n, a, &v), 0);
	const struct jsonr_val *change =
	        jsonr_at(jsonr_get(jsonr_at(jsonr_get(v, "entry"), 0), "changes"), 0);
	const struct jsonr_val *msg =
	        jsonr_at(jsonr_get(jsonr_get(change, "value"), "messages"), 0);
	const struct jsonr_val *items = jsonr_get(jsonr_get(msg, "order"), "product_items");
	assert_int_equal(jsonr_len(items), 3);
	assert_str(jsonr_get(jsonr_at(items, 1), "product_retailer_id"), "FRENCH_FRIES", 12);
	assert_int_equal(jsonr_get(jsonr_at(items, 1), "quantity")->i, 2);
	free(s);
}

/* Valid and invalid inputs around every rule, each checked against jansson. */
static void test_tricky_inputs_agree_with_jansson(void **state)
{
	struct arena *a = *state;
	/* clang-format off */
	static const char *const inputs[] = {
	        "null", "true", "false", "0", "-0", "1", "-1", "1.5", "-1.5e-7", "1E400", "1e-400",
	        "9223372036854775807", "9223372036854775808", "-9223372036854775808",
	        "-9223372036854775809", "123456789012345678901234567890", "0.1e1", "[]", "{}",
	        "[[]]", "[{}]", "{\"a\":[]}", " [ 1 , 2 ] ", "{\"a\":1,\"a\":2}",
	        "{\"a\":{\"a\":{\"a\":1}},\"a\":[1]}", "\"\\u0000\"", "{\"k\\u0000\":1}",
	        "\"\\ud83d\\ude00\"", "\"\\uD83D\\uDE00\"", "\"\\ud800\"", "\"\\udc00\\ud800\"",
	        "\"\xed\xa0\x80\"", "\"\xc0\xaf\"", "\"\xf4\x8f\xbf\xbf\"", "\"\xf4\x90\x80\x80\"",
	        "\"\x7f\"", "\"\x1f\"", "\"\\/\"", "\"\\a\"", "[1,]", "{\"a\":1,}", "01", "-01",
	        "1.", ".1", "+1", "--1", "[1 2]", "{}x", "[] ", "\t{}\r\n", "[\"a\",\"b\"", "nul",
	        "truee", "[true,false,null]", "{\"\":\"\"}", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
	        "[\"\xe0\xa4\xae\xe0\xa4\xbe\xe0\xa4\xb2\"]", "\xef\xbb\xbf[]", "[1e]", "[1e+1]",
	        "[-0.0]", "[0e0]", "[1E-0]",
	};
	/* clang-format on */
	for (size_t i = 0; i < sizeof(inputs) / sizeof(*inputs); i++) {
		const char *why = diff_parse(inputs[i], strlen(inputs[i]), a);
		if (why)
			fail_msg("jsonr and jansson disagree on %s: %s", inputs[i], why);
	}
	/* NUL bytes inside the length */
#define NUL_INPUT(s)                                                                               \
	{                                                                                          \
		s, sizeof(s) - 1                                                                   \
	}
	const struct {
		const char *s;
		size_t n;
	} nuls[] = {NUL_INPUT("[\"a\0b\"]"),    NUL_INPUT("[1,\0]"),          NUL_INPUT("0\0"),
	            NUL_INPUT("[1\0,2]"),       NUL_INPUT("true\0"),          NUL_INPUT("\"a\"\0"),
	            NUL_INPUT("{\"a\":1.5\0}"), NUL_INPUT("[null\0,false\0]")};
#undef NUL_INPUT
	for (size_t i = 0; i < sizeof(nuls) / sizeof(*nuls); i++) {
		const char *why = diff_parse(nuls[i].s, nuls[i].n, a);
		if (why)
			fail_msg("jsonr and jansson disagree on NUL input %zu: %s", i, why);
		/* jansson overlooks some of these; jsonr refuses every one */
		assert_int_equal(parse_n(a, nuls[i].s, nuls[i].n), ERR_PROTO);
	}
}

/* A small deterministic fuzz: single and double byte changes to each sample,
 * biased to JSON's own characters, must leave both parsers agreeing. */
static uint64_t rng = 0x9e3779b97f4a7c15ULL;

static uint64_t next_rand(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void mutations_agree(struct arena *a, const char *s, size_t n)
{
	static const char alphabet[] = "{}[]\",:\\u0123456789abcdefABCDEF-+.eE tfn\n\x01\x7f"
	                               "\x80\xbf\xc0\xc2\xe0\xed\xf0\xf4\xff";
	char *m = malloc(n);
	for (int round = 0; round < 1500; round++) {
		memcpy(m, s, n);
		int changes = 1 + (int)(next_rand() % 2);
		size_t len = n;
		for (int c = 0; c < changes; c++) {
			size_t at = (size_t)(next_rand() % n);
			switch (next_rand() % 4) {
			case 0: m[at] = alphabet[next_rand() % (sizeof(alphabet) - 1)]; break;
			case 1: m[at] = (char)(next_rand() & 0xff); break;
			case 2: /* drop one byte */
				memmove(m + at, m + at + 1, n - at - 1);
				len = len > 0 ? len - 1 : 0;
				break;
			default: len = at; break; /* truncate */
			}
		}
		const char *why = diff_parse(m, len, a);
		if (why)
			fail_msg("jsonr and jansson disagree on a mutation (%.*s): %s", (int)len, m,
			         why);
		arena_reset(a);
	}
	free(m);
}

static void test_mutations_agree_with_jansson(void **state)
{
	assert_int_equal(each_sample(*state, mutations_agree), 10);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_scalars),
	        T(test_int64_limits),
	        T(test_big_integers_kept_not_int),
	        T(test_arrays_and_objects),
	        T(test_lookups_on_wrong_types_and_null),
	        T(test_duplicate_keys_last_wins),
	        T(test_escapes),
	        T(test_embedded_nul),
	        T(test_string_scan_every_offset),
	        T(test_many_children),
	        T(test_length_bounded_and_outlives_input),
	        T(test_depth_limit),
	        T(test_too_long_err_toobig),
	        T(test_trailing_comma_err_proto),
	        T(test_leading_zero_err_proto),
	        T(test_bad_number_err_proto),
	        T(test_bad_escape_err_proto),
	        T(test_lone_surrogate_err_proto),
	        T(test_invalid_utf8_err_proto),
	        T(test_control_char_err_proto),
	        T(test_trailing_garbage_err_proto),
	        T(test_bad_structure_err_proto),
	        T(test_truncated_at_every_prefix_err_proto),
	        T(test_samples_agree_with_jansson),
	        T(test_tricky_inputs_agree_with_jansson),
	        T(test_mutations_agree_with_jansson),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
