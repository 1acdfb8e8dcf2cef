/*
 * log.c - JSON-lines logger.
 *
 * Each line is formatted into a stack buffer (long messages are cut, marked
 * with "…") and written with a single write(2) to stderr, which keeps lines
 * whole across threads without a lock.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic int min_level = LOG_INFO;
static const char *const level_names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
	atomic_store(&min_level, (int)level);
}

int log_parse_level(const char *name, enum log_level *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	}
	return -1;
}

/* append s JSON-escaped into dst[*len..cap), leaving room for the tail */
static void put_escaped(char *dst, size_t *len, size_t cap, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*len + 8 >= cap)
			return;
		if (*p == '"' || *p == '\\') {
			dst[(*len)++] = '\\';
			dst[(*len)++] = (char)*p;
		} else if (*p == '\n') {
			dst[(*len)++] = '\\';
			dst[(*len)++] = 'n';
		} else if (*p < 0x20) {
			memcpy(dst + *len, "\\u00", 4);
			*len += 4;
			dst[(*len)++] = hex[*p >> 4];
			dst[(*len)++] = hex[*p & 15];
		} else {
			dst[(*len)++] = (char)*p;
		}
	}
}

void log_msg(enum log_level level, const char *event, const char *fmt, ...)
{
	if ((int)level < atomic_load(&min_level))
		return;
	char msg[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	struct tm tm;
	gmtime_r(&ts.tv_sec, &tm);

	char line[4096];
	size_t len = (size_t)snprintf(
	        line, sizeof(line),
	        "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ\",\"level\":\"%s\",\"event\":\"",
	        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	        ts.tv_nsec / 1000000, level_names[level]);
	put_escaped(line, &len, sizeof(line) - 16, event);
	memcpy(line + len, "\",\"msg\":\"", 9);
	len += 9;
	put_escaped(line, &len, sizeof(line) - 4, msg);
	memcpy(line + len, "\"}\n", 3);
	len += 3;
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
