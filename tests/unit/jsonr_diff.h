/*
 * jsonr_diff.h - jsonr against jansson on the same bytes: the shared oracle of
 * tests/unit/test_jsonr.c and tests/fuzz/fuzz_jsonr.c.
 *
 * Both must accept or refuse alike, and what jsonr exposes must equal what
 * jansson decodes: types, integer values, reals (strtod of jsonr's literal),
 * string bytes (NULs included), array items in order, and for objects the
 * last value of every key. Known differences, all where jansson is stricter
 * than RFC 8259 or more lenient than jsonr's depth cap:
 *   - jansson refuses integers beyond int64 and reals beyond double ("too big
 *     integer", "real number overflow"); jsonr keeps their text;
 *   - jansson refuses object keys holding "\u0000"; jsonr keeps them;
 *   - jsonr refuses nesting deeper than JSONR_MAX_DEPTH; jansson allows 2048;
 *   - jansson overlooks a NUL byte right after a number or a true/false/null
 *     ("[1\0]" is [1] to it: its lexer takes the NUL it pushes back for the
 *     end of its buffer); jsonr refuses a NUL byte anywhere outside strings.
 *     Such input must parse in jsonr, to jansson's value, once those NULs
 *     are removed.
 *
 * Test code: static functions, included by one test file each.
 */
#ifndef MUNIM_TEST_JSONR_DIFF_H
#define MUNIM_TEST_JSONR_DIFF_H

#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "core/err.h"
#include "core/jsonr.h"

static size_t diff_depth(const json_t *j)
{
	size_t d = 0, i;
	const char *k;
	json_t *c;
	if (json_is_array(j)) {
		json_array_foreach(j, i, c)
		{
			size_t cd = diff_depth(c);
			d = cd > d ? cd : d;
		}
		return d + 1;
	}
	if (json_is_object(j)) {
		json_object_foreach((json_t *)j, k, c)
		{
			size_t cd = diff_depth(c);
			d = cd > d ? cd : d;
		}
		return d + 1;
	}
	return 0;
}

/* Bytes of jsonr's text pool v uses: every string, key and number literal
 * with its NUL. jsonr promises at most len + 1 for a text of len bytes. */
static size_t diff_pool_bytes(const struct jsonr_val *v)
{
	size_t n = 0;
	if (v->type == JSONR_STRING || v->type == JSONR_NUMBER)
		return (size_t)v->len + 1;
	for (uint32_t i = 0; v->type == JSONR_ARRAY && i < v->len; i++)
		n += diff_pool_bytes(&v->u.items[i]);
	for (uint32_t i = 0; v->type == JSONR_OBJECT && i < v->len; i++)
		n += v->u.members[i].keylen + 1 + diff_pool_bytes(&v->u.members[i].val);
	return n;
}

/* NULL when v (jsonr) and j (jansson) hold the same value, else why not. */
static const char *diff_value(const struct jsonr_val *v, const json_t *j)
{
	switch (v->type) {
	case JSONR_NULL: return json_is_null(j) ? NULL : "null differs";
	case JSONR_TRUE: return json_is_true(j) ? NULL : "true differs";
	case JSONR_FALSE: return json_is_false(j) ? NULL : "false differs";
	case JSONR_NUMBER:
		if (v->u.str[v->len] != '\0' || strlen(v->u.str) != v->len)
			return "number text not NUL-terminated at len";
		if (v->flags & JSONR_INTEGER) {
			if (!json_is_integer(j))
				return "integer differs in type";
			if (!(v->flags & JSONR_INT64) || v->i != (int64_t)json_integer_value(j))
				return "integer differs in value";
			return NULL;
		}
		if (!json_is_real(j))
			return "real differs in type";
		return strtod(v->u.str, NULL) == json_real_value(j) ? NULL
		                                                    : "real differs in value";
	case JSONR_STRING:
		if (!json_is_string(j))
			return "string differs in type";
		if (v->u.str[v->len] != '\0')
			return "string not NUL-terminated at len";
		if (json_string_length(j) != v->len ||
		    memcmp(json_string_value(j), v->u.str, v->len) != 0)
			return "string differs in bytes";
		return NULL;
	case JSONR_ARRAY:
		if (!json_is_array(j) || json_array_size(j) != v->len)
			return "array differs in size";
		for (uint32_t i = 0; i < v->len; i++) {
			const char *why = diff_value(&v->u.items[i], json_array_get(j, i));
			if (why)
				return why;
		}
		return NULL;
	case JSONR_OBJECT: {
		size_t distinct = 0;
		if (!json_is_object(j))
			return "object differs in type";
		for (uint32_t i = 0; i < v->len; i++) {
			const struct jsonr_member *m = &v->u.members[i];
			int last = 1;
			if (m->key[m->keylen] != '\0')
				return "key not NUL-terminated at keylen";
			for (uint32_t k = i + 1; k < v->len && last; k++)
				last = !(v->u.members[k].keylen == m->keylen &&
				         memcmp(v->u.members[k].key, m->key, m->keylen) == 0);
			if (!last)
				continue;
			distinct++;
			const json_t *jm = json_object_getn(j, m->key, m->keylen);
			if (!jm)
				return "object member missing in jansson";
			if (jsonr_get(v, m->key) != &m->val)
				return "jsonr_get does not find the last duplicate";
			const char *why = diff_value(&m->val, jm);
			if (why)
				return why;
		}
		return distinct == json_object_size(j) ? NULL : "object differs in size";
	}
	default: return "unknown jsonr type";
	}
}

/* Copy of s without the NUL bytes that follow a letter or a digit (the ones
 * jansson overlooks); *n in and out. NULL when there are none. */
static char *diff_strip_nuls(const char *s, size_t *n)
{
	char *out = NULL;
	size_t k = 0;
	for (size_t i = 1; i < *n && !out; i++)
		if (s[i] == '\0' && ((s[i - 1] >= '0' && s[i - 1] <= '9') ||
		                     ((s[i - 1] | 0x20) >= 'a' && (s[i - 1] | 0x20) <= 'z')))
			out = malloc(*n);
	if (!out)
		return NULL;
	for (size_t i = 0; i < *n; i++) {
		int alnum = i > 0 && ((s[i - 1] >= '0' && s[i - 1] <= '9') ||
		                      ((s[i - 1] | 0x20) >= 'a' && (s[i - 1] | 0x20) <= 'z'));
		if (!(s[i] == '\0' && alnum))
			out[k++] = s[i];
	}
	*n = k;
	return out;
}

/*
 * diff_parse parses s (len bytes) with jsonr into a and with jansson and
 * compares them: NULL when they agree (allowing the known differences), else
 * a static description of the disagreement.
 */
static const char *diff_parse(const char *s, size_t len, struct arena *a)
{
	const struct jsonr_val *v;
	json_error_t err;
	const char *why = NULL;
	int rc = jsonr_parse(s, len, a, &v);
	json_t *j = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);

	if (rc != 0 && rc != ERR_PROTO)
		why = "jsonr failed with an error other than ERR_PROTO";
	else if (rc != 0 && v != NULL)
		why = "jsonr failed but set *out";
	else if (rc == 0 && !j) {
		enum json_error_code code = json_error_code(&err);
		if (code != json_error_numeric_overflow && code != json_error_null_byte_in_key)
			why = "jansson refuses what jsonr accepts";
	} else if (rc != 0 && j) {
		size_t n = len;
		char *stripped = diff_strip_nuls(s, &n);
		const struct jsonr_val *v2;
		if (stripped) {
			if (jsonr_parse(stripped, n, a, &v2) != 0)
				why = "jsonr refuses what jansson accepts, NULs after tokens "
				      "removed";
			else
				why = diff_value(v2, j);
			free(stripped);
		} else if (diff_depth(j) <= JSONR_MAX_DEPTH) {
			why = "jsonr refuses what jansson accepts";
		}
	} else if (rc == 0) {
		why = diff_value(v, j);
	}
	if (!why && rc == 0 && diff_pool_bytes(v) > len + 1)
		why = "jsonr used more than len + 1 bytes of text pool";
	json_decref(j);
	return why;
}

#endif
