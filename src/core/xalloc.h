/*
 * xalloc.h - allocation that aborts on failure.
 *
 * Safe because every size that input controls is capped before it is
 * allocated (body size, items per order, text length).
 */
#ifndef MUNIM_XALLOC_H
#define MUNIM_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
/* xstrdup returns a copy the caller frees; xstrdup(NULL) returns NULL. */
char *xstrdup(const char *s);
/* xstrndup: a copy of at most the first n bytes of s (less if s ends sooner). */
char *xstrndup(const char *s, size_t n);

#endif
