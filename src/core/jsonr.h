/*
 * jsonr.h - a fast, strict, read-only JSON parser for the webhook hot path.
 *
 * jsonr_parse reads RFC 8259 JSON in one pass and builds an immutable tree
 * in the caller's arena: no malloc per node, strings unescaped once. It is
 * for reading documents (webhook bodies); munim writes JSON with buf.h and
 * uses jansson where speed does not matter. Module prefix jsonr_ (json_ is
 * jansson's).
 *
 * Strict: trailing garbage, trailing commas, leading zeros, control
 * characters and invalid UTF-8 in strings (overlong forms, UTF-8-encoded
 * surrogates, beyond U+10FFFF), bad escapes and lone or mismatched \u
 * surrogates are all ERR_PROTO, as is nesting deeper than JSONR_MAX_DEPTH
 * (so a hostile body cannot exhaust the stack). "\u0000" is accepted: the
 * string keeps its length and may hold NUL bytes.
 *
 * Ownership: every pointer in the tree points into the arena passed to
 * jsonr_parse and stays valid until that arena is reset or released; the
 * input buffer may be freed or overwritten as soon as jsonr_parse returns.
 * On failure the arena may hold a partial tree: it is reclaimed with the
 * arena. Thread safety: none needed; a tree is immutable, the arena belongs
 * to the caller's thread.
 */
#ifndef MUNIM_JSONR_H
#define MUNIM_JSONR_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

#define JSONR_MAX_DEPTH 64         /* arrays and objects nested deeper: ERR_PROTO */
#define JSONR_MAX_LEN   0x7fffffff /* longer input: ERR_TOOBIG (bodies are capped far lower) */

enum jsonr_type {
	JSONR_NULL,
	JSONR_FALSE,
	JSONR_TRUE,
	JSONR_NUMBER,
	JSONR_STRING,
	JSONR_ARRAY,
	JSONR_OBJECT,
};

/* Number flags */
#define JSONR_INTEGER 0x1 /* the literal has no fraction and no exponent */
#define JSONR_INT64   0x2 /* ... and fits int64_t: i holds its value */

struct jsonr_member;

/* A value: read it through the lookups below or these fields directly. */
struct jsonr_val {
	uint8_t type;  /* enum jsonr_type */
	uint8_t flags; /* NUMBER: JSONR_INTEGER, JSONR_INT64 */
	uint32_t len;  /* STRING, NUMBER: bytes of str; ARRAY: items; OBJECT: members */
	union {
		/* STRING: unescaped, NUL-terminated, may hold NULs before len;
		 * NUMBER: the literal as written, NUL-terminated */
		const char *str;
		/* ARRAY: len values, in order */
		const struct jsonr_val *items;
		/* OBJECT: len members, in order, duplicate keys kept */
		const struct jsonr_member *members;
	} u;
	int64_t i; /* NUMBER with JSONR_INT64 */
};

struct jsonr_member {
	const char *key; /* unescaped, NUL-terminated, may hold NULs */
	uint32_t keylen;
	struct jsonr_val val;
};

/*
 * jsonr_parse parses the JSON text s (len bytes, need not be NUL-terminated;
 * any value at the top level) into a tree allocated from a and points *out
 * at its root. Returns 0; ERR_PROTO when s is not one valid JSON text (or
 * nests deeper than JSONR_MAX_DEPTH), ERR_TOOBIG when len > JSONR_MAX_LEN;
 * *out is NULL on error. Memory: at most len + 1 bytes of text plus the
 * nodes, all from a.
 */
int jsonr_parse(const char *s, size_t len, struct arena *a, const struct jsonr_val **out);

/*
 * Lookups take any value or NULL and answer NULL (or 0) when the value is
 * missing or of another type, so paths chain without checks:
 * jsonr_get(jsonr_get(root, "a"), "b").
 */

/* jsonr_get: the member key of object obj; with duplicate keys the last
 * one wins (as jansson's json_object_get). Keys holding a NUL never match. */
const struct jsonr_val *jsonr_get(const struct jsonr_val *obj, const char *key);
/* jsonr_at: item i of array arr, NULL when out of range. */
const struct jsonr_val *jsonr_at(const struct jsonr_val *arr, size_t i);
/* jsonr_len: the number of items of array arr, 0 for anything else. */
size_t jsonr_len(const struct jsonr_val *arr);
/* jsonr_str: the bytes of string v (NUL-terminated, *len bytes, which may
 * include NULs), or NULL when v is not a string. len may be NULL. */
const char *jsonr_str(const struct jsonr_val *v, size_t *len);
/* jsonr_int: the value of an integer number v in *out: 0; ERR_TOOBIG for an
 * integer literal outside int64_t; ERR_INVAL for anything else (a number
 * with a fraction or exponent, another type, NULL). */
int jsonr_int(const struct jsonr_val *v, int64_t *out);

static inline int jsonr_is_object(const struct jsonr_val *v)
{
	return v && v->type == JSONR_OBJECT;
}

static inline int jsonr_is_array(const struct jsonr_val *v)
{
	return v && v->type == JSONR_ARRAY;
}

#endif
