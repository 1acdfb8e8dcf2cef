/*
 * buf.h - a growable byte buffer, always NUL-terminated.
 */
#ifndef MUNIM_BUF_H
#define MUNIM_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data; /* NUL-terminated; NULL until first append */
	size_t len;
	size_t cap;
};

void buf_init(struct buf *b);
void buf_release(struct buf *b);
void buf_reset(struct buf *b);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);
void buf_putc(struct buf *b, char c);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* buf_json_str appends s as a JSON string literal, quotes included. */
void buf_json_str(struct buf *b, const char *s);
/* buf_detach hands the data to the caller (free it) and empties b. */
char *buf_detach(struct buf *b);

#endif
