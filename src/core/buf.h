/*
 * buf.h - a growable byte buffer, always NUL-terminated.
 */
#ifndef MUNIM_BUF_H
#define MUNIM_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct buf {
	char *data; /* NUL-terminated; NULL until first append */
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const void *p, size_t n);
/* buf_reserve makes room for extra more bytes (and the NUL) without
 * writing: a reader may fill data + len and then add to len itself. */
void buf_reserve(struct buf *b, size_t extra);
/* buf_put_u64 appends v in decimal (no printf: hot paths). */
void buf_put_u64(struct buf *b, uint64_t v);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* buf_json_str appends s as a JSON string literal, quotes included. */
void buf_json_str(struct buf *b, const char *s);
/* buf_detach hands the data to the caller (free it) and empties b. */
char *buf_detach(struct buf *b);

#endif
