/*
 * jsonr.c - one pass over the bytes of a JSON text into an arena tree.
 *
 * Design
 *   - Recursive descent, depth capped at JSONR_MAX_DEPTH. Bounds are checked
 *     against end on every read: the input need not be NUL-terminated.
 *   - Text pool: one arena allocation of len + 1 bytes up front receives every
 *     unescaped string and number literal, each NUL-terminated. It always
 *     suffices: a string's quotes pay for its NUL and an escape never
 *     unescapes to more bytes than it is written with; a number's NUL is paid
 *     by the ',' ']' or '}' that must follow it, except for a number that is
 *     the whole document (the + 1). So before a token at input offset t at
 *     most t pool bytes are in use (parse_string relies on it).
 *   - Children of an array or object are parsed onto a scratch stack (one for
 *     items, one for members: each container's children are contiguous on
 *     their own stack because nested containers pop theirs before the next
 *     sibling is pushed) and copied into the arena in one piece when the
 *     container closes. The stacks start on the C stack and move to the heap
 *     (xrealloc, doubling; freed before jsonr_parse returns) only for
 *     documents with many pending children, so the arena keeps no scratch.
 *   - Strings are copied into the pool as they are scanned, 8 bytes per step
 *     while no byte needs a look (quote, backslash, control, non-ASCII: one
 *     SWAR test per word, the first such byte found with a count of trailing
 *     zeros). Non-ASCII bytes are validated as UTF-8 (RFC 3629: no overlongs,
 *     no surrogates, nothing past U+10FFFF). Whitespace is skipped with one
 *     test when there is none, a word at a time through indentation.
 *   - Numbers are kept as written; an integer literal is also converted to
 *     int64_t when it fits (JSONR_INT64), with overflow detected digit by
 *     digit. Fractions and exponents are not converted: nothing reads them.
 *
 * Thread safety: none; the parser state lives on the caller's stack.
 */
#include "core/jsonr.h"

#include <stdlib.h>
#include <string.h>

#include "core/err.h"
#include "core/xalloc.h"

#define STACK_INIT 64 /* scratch entries on the C stack before moving to the heap */

struct parser {
	const unsigned char *p, *end;
	char *pool; /* next free byte of the text pool */
	struct arena *a;
	struct jsonr_val *items; /* scratch stack of array items */
	size_t nitems, capitems;
	struct jsonr_member *members; /* scratch stack of object members */
	size_t nmembers, capmembers;
	int items_heap, members_heap; /* moved off the C stack: free them */
};

/* Bytes that end the fast scan of a string: '"', '\\', controls, non-ASCII. */
/* clang-format off */
static const unsigned char str_stop[256] = {
        /* 0x00-0x1f: control characters */
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        ['"'] = 1, ['\\'] = 1,
        /* 0x80-0xff: the start or middle of a UTF-8 sequence */
        [0x80] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
        1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};
/* clang-format on */

/* Little-endian GCC or Clang: the first flagged byte of a word is found with
 * one count of trailing zeros; elsewhere the byte loops find it. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSONR_WORD_CTZ 1
#else
#define JSONR_WORD_CTZ 0
#endif

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Nonzero when one of the 8 bytes of w would stop the scan (str_stop): the
 * high bit of each such byte is set. A borrow can flag a byte above a true
 * one, never below it: the lowest flagged byte is the first stop. */
static inline uint64_t word_stops(uint64_t w)
{
	uint64_t q = w ^ (ONES * '"'), b = w ^ (ONES * '\\');
	uint64_t t = ((q - ONES) & ~q) | ((b - ONES) & ~b) | ((w - ONES * 0x20) & ~w);
	return (t | w) & HIGHS;
}

static inline int is_digit(unsigned c)
{
	return c - '0' < 10;
}

/* Past the whitespace at ps->p. One test in the usual case (Meta sends no
 * whitespace); runs of indentation are skipped a word at a time. */
static inline void skip_ws(struct parser *ps)
{
	const unsigned char *p = ps->p, *end = ps->end;

	while (p < end && *p <= ' ') {
		if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t')
			break;
		p++;
#if JSONR_WORD_CTZ
		if (end - p >= 8) {
			uint64_t w;
			memcpy(&w, p, 8);
			w ^= ONES * ' ';
			p += w ? (size_t)__builtin_ctzll(w) >> 3 : 8;
		}
#endif
	}
	ps->p = p;
}

/* The length of the valid UTF-8 sequence starting at p (p[0] >= 0x80), or
 * 0 when it is not one (RFC 3629 table 4). */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
	size_t avail = (size_t)(end - p);
	unsigned c = p[0], lo = 0x80, hi = 0xBF;

	if (c >= 0xC2 && c <= 0xDF)
		return avail >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
	if (c >= 0xE0 && c <= 0xEF) {
		if (c == 0xE0)
			lo = 0xA0; /* overlong */
		else if (c == 0xED)
			hi = 0x9F; /* U+D800..DFFF */
		return avail >= 3 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (c == 0xF0)
			lo = 0x90; /* overlong */
		else if (c == 0xF4)
			hi = 0x8F; /* past U+10FFFF */
		return avail >= 4 && p[1] >= lo && p[1] <= hi && (p[2] & 0xC0) == 0x80 &&
		                       (p[3] & 0xC0) == 0x80
		               ? 4
		               : 0;
	}
	return 0; /* continuation byte, C0/C1, F5..FF */
}

/* Four hex digits at p (bounds checked by the caller), or -1. */
static long hex4(const unsigned char *p)
{
	long v = 0;
	for (int i = 0; i < 4; i++) {
		unsigned c = p[i], d;
		if (c - '0' < 10)
			d = c - '0';
		else if ((c | 0x20) - 'a' < 6)
			d = (c | 0x20) - 'a' + 10;
		else
			return -1;
		v = v << 4 | (long)d;
	}
	return v;
}

/* The escape after the backslash at *pp, written as UTF-8 at d: returns the
 * byte after it (and advances *pp past the escape), or NULL when it is not
 * a valid escape. */
static char *unescape(const unsigned char **pp, const unsigned char *end, char *d)
{
	const unsigned char *p = *pp + 1;
	long cp;

	if (p == end)
		return NULL;
	switch (*p++) {
	case '"': *d++ = '"'; break;
	case '\\': *d++ = '\\'; break;
	case '/': *d++ = '/'; break;
	case 'b': *d++ = '\b'; break;
	case 'f': *d++ = '\f'; break;
	case 'n': *d++ = '\n'; break;
	case 'r': *d++ = '\r'; break;
	case 't': *d++ = '\t'; break;
	case 'u':
		if (end - p < 4 || (cp = hex4(p)) < 0)
			return NULL;
		p += 4;
		if (cp >= 0xDC00 && cp <= 0xDFFF)
			return NULL; /* a low surrogate first */
		if (cp >= 0xD800 && cp <= 0xDBFF) {
			long lo;
			if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || (lo = hex4(p + 2)) < 0 ||
			    lo < 0xDC00 || lo > 0xDFFF)
				return NULL; /* a high surrogate without its low half */
			p += 6;
			cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
		}
		if (cp < 0x80) {
			*d++ = (char)cp;
		} else if (cp < 0x800) {
			*d++ = (char)(0xC0 | cp >> 6);
			*d++ = (char)(0x80 | (cp & 0x3F));
		} else if (cp < 0x10000) {
			*d++ = (char)(0xE0 | cp >> 12);
			*d++ = (char)(0x80 | (cp >> 6 & 0x3F));
			*d++ = (char)(0x80 | (cp & 0x3F));
		} else {
			*d++ = (char)(0xF0 | cp >> 18);
			*d++ = (char)(0x80 | (cp >> 12 & 0x3F));
			*d++ = (char)(0x80 | (cp >> 6 & 0x3F));
			*d++ = (char)(0x80 | (cp & 0x3F));
		}
		break;
	default: return NULL;
	}
	*pp = p;
	return d;
}

/* The string at ps->p (its opening quote) into the pool: *out, *outlen.
 * Bytes are copied as they are scanned, a word at a time where 8 remain:
 * the word is stored whole, which never writes past the pool (before a
 * string at input offset q at most q pool bytes are used, and d lags p). */
static int parse_string(struct parser *ps, const char **out, uint32_t *outlen)
{
	const unsigned char *p = ps->p + 1, *end = ps->end;
	char *start = ps->pool, *d = start;

	for (;;) {
		while (end - p >= 8) {
			uint64_t w, stops;
			memcpy(&w, p, 8);
			memcpy(d, &w, 8);
			stops = word_stops(w);
			if (stops) {
#if JSONR_WORD_CTZ
				/* the lowest flagged byte is exact (see word_stops) */
				size_t skip = (size_t)__builtin_ctzll(stops) >> 3;
				p += skip;
				d += skip;
#endif
				break;
			}
			p += 8;
			d += 8;
		}
		while (p < end && !str_stop[*p])
			*d++ = (char)*p++;
		if (p == end)
			return ERR_PROTO; /* unterminated */
		if (*p == '"')
			break;
		if (*p == '\\') {
			if ((d = unescape(&p, end, d)) == NULL)
				return ERR_PROTO;
		} else if (*p < 0x20) {
			return ERR_PROTO; /* control character */
		} else {
			size_t n = utf8_seq(p, end);
			if (n == 0)
				return ERR_PROTO;
			for (size_t i = 0; i < n; i++)
				*d++ = (char)*p++;
		}
	}
	*d = '\0';
	*out = start;
	*outlen = (uint32_t)(d - start);
	ps->pool = d + 1;
	ps->p = p + 1;
	return 0;
}

/* The number at ps->p into v: its text in the pool, its value when it is
 * an integer that fits int64_t. */
static int parse_number(struct parser *ps, struct jsonr_val *v)
{
	const unsigned char *p = ps->p, *end = ps->end, *start = p;
	const uint64_t max10 = 922337203685477580ULL; /* INT64_MAX / 10 */
	uint64_t u = 0;
	int neg = 0, fits = 1;

	if (*p == '-') {
		neg = 1;
		p++;
	}
	if (p == end)
		return ERR_PROTO;
	if (*p == '0') {
		p++;
		if (p < end && is_digit(*p))
			return ERR_PROTO; /* leading zero */
	} else if (*p >= '1' && *p <= '9') {
		do {
			unsigned dig = *p - '0';
			/* INT64_MAX ends in 7, INT64_MIN in 8 */
			if (u < max10 || (u == max10 && dig <= 7u + (unsigned)neg))
				u = u * 10 + dig;
			else
				fits = 0;
			p++;
		} while (p < end && is_digit(*p));
	} else {
		return ERR_PROTO;
	}
	v->flags = JSONR_INTEGER;
	if (p < end && *p == '.') {
		p++;
		if (p == end || !is_digit(*p))
			return ERR_PROTO;
		while (p < end && is_digit(*p))
			p++;
		v->flags = 0;
	}
	if (p < end && (*p | 0x20) == 'e') {
		p++;
		if (p < end && (*p == '+' || *p == '-'))
			p++;
		if (p == end || !is_digit(*p))
			return ERR_PROTO;
		while (p < end && is_digit(*p))
			p++;
		v->flags = 0;
	}
	if (v->flags && fits) {
		v->flags |= JSONR_INT64;
		v->i = !neg ? (int64_t)u : u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
	}
	v->type = JSONR_NUMBER;
	v->len = (uint32_t)(p - start);
	memcpy(ps->pool, start, v->len);
	ps->pool[v->len] = '\0';
	v->u.str = ps->pool;
	ps->pool += v->len + 1;
	ps->p = p;
	return 0;
}

static int literal(struct parser *ps, const char *word, size_t n, int type, struct jsonr_val *v)
{
	if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
		return ERR_PROTO;
	ps->p += n;
	v->type = (uint8_t)type;
	return 0;
}

/* A scratch stack full: the same, twice as big, on the heap. */
static void *grow(void *old, int *on_heap, size_t n, size_t *cap, size_t size)
{
	void *p;
	if (*on_heap) {
		p = xrealloc(old, *cap * 2 * size);
	} else {
		p = xmalloc(*cap * 2 * size);
		memcpy(p, old, n * size);
		*on_heap = 1;
	}
	*cap *= 2;
	return p;
}

/* Pushes elem (size bytes) on a scratch stack, growing it when full;
 * returns the stack, which may have moved. */
static void *push(void *stack, int *on_heap, size_t *top, size_t *cap, size_t size,
                  const void *elem)
{
	if (*top == *cap)
		stack = grow(stack, on_heap, *top, cap, size);
	memcpy((char *)stack + *top * size, elem, size);
	(*top)++;
	return stack;
}

/* The elements a container pushed on a scratch stack since base, moved
 * into the arena (NULL when none; *n of them); the stack drops back to
 * base. */
static void *take_elements(struct parser *ps, const void *stack, size_t *top, size_t base,
                           size_t size, size_t *n)
{
	*n = *top - base;
	if (*n == 0)
		return NULL;
	void *out = arena_alloc(ps->a, *n * size);
	memcpy(out, (const char *)stack + base * size, *n * size);
	*top = base;
	return out;
}

static int parse_value(struct parser *ps, int depth, struct jsonr_val *v);

/* Enters an array or object (ps->p at its opening bracket): 1 when it is
 * empty (the closing bracket consumed too), 0 when an element follows,
 * ERR_PROTO past the depth limit. */
static int open_container(struct parser *ps, int depth, char close)
{
	if (depth > JSONR_MAX_DEPTH)
		return ERR_PROTO;
	ps->p++;
	skip_ws(ps);
	if (ps->p < ps->end && *ps->p == close) {
		ps->p++;
		return 1;
	}
	return 0;
}

/* After an element: 1 at the closing bracket (consumed), 0 after a comma
 * (the next element follows), ERR_PROTO otherwise. */
static int after_element(struct parser *ps, char close)
{
	skip_ws(ps);
	if (ps->p == ps->end)
		return ERR_PROTO;
	if (*ps->p == close) {
		ps->p++;
		return 1;
	}
	if (*ps->p++ != ',')
		return ERR_PROTO;
	skip_ws(ps);
	return 0;
}

static int parse_array(struct parser *ps, int depth, struct jsonr_val *v)
{
	size_t base = ps->nitems, n;
	struct jsonr_val item;
	int rc = open_container(ps, depth, ']');

	v->type = JSONR_ARRAY;
	while (rc == 0) {
		memset(&item, 0, sizeof(item));
		rc = parse_value(ps, depth, &item);
		if (rc)
			return rc;
		ps->items = push(ps->items, &ps->items_heap, &ps->nitems, &ps->capitems,
		                 sizeof(item), &item);
		rc = after_element(ps, ']');
	}
	if (rc < 0)
		return rc;
	v->u.items = take_elements(ps, ps->items, &ps->nitems, base, sizeof(*ps->items), &n);
	v->len = (uint32_t)n;
	return 0;
}

static int parse_object(struct parser *ps, int depth, struct jsonr_val *v)
{
	size_t base = ps->nmembers, n;
	struct jsonr_member m;
	int rc = open_container(ps, depth, '}');

	v->type = JSONR_OBJECT;
	while (rc == 0) {
		memset(&m, 0, sizeof(m));
		if (ps->p == ps->end || *ps->p != '"')
			return ERR_PROTO;
		rc = parse_string(ps, &m.key, &m.keylen);
		if (rc)
			return rc;
		skip_ws(ps);
		if (ps->p == ps->end || *ps->p != ':')
			return ERR_PROTO;
		ps->p++;
		skip_ws(ps);
		rc = parse_value(ps, depth, &m.val);
		if (rc)
			return rc;
		ps->members = push(ps->members, &ps->members_heap, &ps->nmembers, &ps->capmembers,
		                   sizeof(m), &m);
		rc = after_element(ps, '}');
	}
	if (rc < 0)
		return rc;
	v->u.members =
	        take_elements(ps, ps->members, &ps->nmembers, base, sizeof(*ps->members), &n);
	v->len = (uint32_t)n;
	return 0;
}

/* The value at ps->p (no whitespace before it) into *v, which is zeroed;
 * depth: how many containers enclose it. */
static int parse_value(struct parser *ps, int depth, struct jsonr_val *v)
{
	if (ps->p == ps->end)
		return ERR_PROTO;
	switch (*ps->p) {
	case '"': v->type = JSONR_STRING; return parse_string(ps, &v->u.str, &v->len);
	case '{': return parse_object(ps, depth + 1, v);
	case '[': return parse_array(ps, depth + 1, v);
	case 't': return literal(ps, "true", 4, JSONR_TRUE, v);
	case 'f': return literal(ps, "false", 5, JSONR_FALSE, v);
	case 'n': return literal(ps, "null", 4, JSONR_NULL, v);
	case '-':
	case '0':
	case '1':
	case '2':
	case '3':
	case '4':
	case '5':
	case '6':
	case '7':
	case '8':
	case '9': return parse_number(ps, v);
	default: return ERR_PROTO;
	}
}

/* jsonr_parse: see jsonr.h. */
int jsonr_parse(const char *s, size_t len, struct arena *a, const struct jsonr_val **out)
{
	struct jsonr_val items[STACK_INIT];
	struct jsonr_member members[STACK_INIT];
	struct jsonr_val root;
	struct parser ps;
	int rc;

	*out = NULL;
	if (!s)
		return ERR_PROTO;
	if (len > JSONR_MAX_LEN)
		return ERR_TOOBIG;
	ps.p = (const unsigned char *)s;
	ps.end = ps.p + len;
	ps.a = a;
	ps.pool = arena_alloc(a, len + 1);
	ps.items = items;
	ps.nitems = 0;
	ps.capitems = STACK_INIT;
	ps.members = members;
	ps.nmembers = 0;
	ps.capmembers = STACK_INIT;
	ps.items_heap = ps.members_heap = 0;

	memset(&root, 0, sizeof(root));
	skip_ws(&ps);
	rc = parse_value(&ps, 0, &root);
	if (rc)
		goto out;
	skip_ws(&ps);
	if (ps.p != ps.end) {
		rc = ERR_PROTO; /* trailing garbage */
		goto out;
	}
	struct jsonr_val *v = arena_alloc(a, sizeof(*v));
	*v = root;
	*out = v;
out:
	if (ps.items_heap)
		free(ps.items);
	if (ps.members_heap)
		free(ps.members);
	return rc;
}

/* ---- lookups --------------------------------------------------------------- */

const struct jsonr_val *jsonr_get(const struct jsonr_val *obj, const char *key)
{
	if (!obj || obj->type != JSONR_OBJECT)
		return NULL;
	size_t n = strlen(key);
	/* backwards: with duplicate keys the last one wins */
	for (uint32_t i = obj->len; i-- > 0;) {
		const struct jsonr_member *m = &obj->u.members[i];
		if (m->keylen == n && memcmp(m->key, key, n) == 0)
			return &m->val;
	}
	return NULL;
}

const struct jsonr_val *jsonr_at(const struct jsonr_val *arr, size_t i)
{
	if (!arr || arr->type != JSONR_ARRAY || i >= arr->len)
		return NULL;
	return &arr->u.items[i];
}

size_t jsonr_len(const struct jsonr_val *arr)
{
	return arr && arr->type == JSONR_ARRAY ? arr->len : 0;
}

const char *jsonr_str(const struct jsonr_val *v, size_t *len)
{
	if (!v || v->type != JSONR_STRING)
		return NULL;
	if (len)
		*len = v->len;
	return v->u.str;
}

int jsonr_int(const struct jsonr_val *v, int64_t *out)
{
	if (!v || v->type != JSONR_NUMBER || !(v->flags & JSONR_INTEGER))
		return ERR_INVAL;
	if (!(v->flags & JSONR_INT64))
		return ERR_TOOBIG;
	*out = v->i;
	return 0;
}
