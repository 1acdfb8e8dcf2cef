/*
 * log.h - structured logging: one JSON object per line on stderr.
 *
 *   {"ts":"2026-11-27T10:00:00.123Z","level":"warn","event":"webhook.unknown_tenant","msg":"..."}
 *
 * The sink is the process's only mutable global besides signal flags; a line
 * is written with one write(2) so lines from threads never interleave.
 */
#ifndef MUNIM_LOG_H
#define MUNIM_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 };

/* log_set_level drops lines below level (default LOG_INFO). */
void log_set_level(enum log_level level);
int log_parse_level(const char *name, enum log_level *out);

/* event: a dotted name ("ingest.commit_failed"); fmt: the human message. */
void log_msg(enum log_level level, const char *event, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

#define log_debug(ev, ...) log_msg(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...)  log_msg(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...)  log_msg(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_msg(LOG_ERROR, ev, __VA_ARGS__)

#endif
