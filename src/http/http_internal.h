/*
 * http_internal.h - what the server exposes to its tests.
 */
#ifndef MUNIM_HTTP_INTERNAL_H
#define MUNIM_HTTP_INTERNAL_H

#include "http/http.h"

/* Suspended requests not answered yet (for tests and shutdown). */
int http_server_pending(struct http_server *s);

/* For tests: how long http_server_stop waits for suspended requests before
 * answering them 503 itself (default HTTP_STOP_GRACE_MS). */
void http__set_stop_grace_ms(struct http_server *s, int ms);

#endif
