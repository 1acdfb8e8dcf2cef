/*
 * ai_internal.h - what the files of src/ai/ share (and tests/unit/test_ai.c):
 * the request to the endpoint and the reading of its answer (ai_client.c,
 * pure), and the thread's run of one job (ai.c).
 */
#ifndef MUNIM_AI_INTERNAL_H
#define MUNIM_AI_INTERNAL_H

#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "send/breaker.h"

/* The longest answer body read from the endpoint, bytes (more: an error). */
#define AI_MAX_ANSWER (64 * 1024)
/* The longest command taken from an answer, bytes. */
#define AI_MAX_COMMAND 512
/* The longest customer text sent to the endpoint, bytes (cut at a character). */
#define AI_MAX_TEXT 2048

/* The system prompt: munim's customer commands, as the local parser reads them. */
extern const char ai__system_prompt[];

/*
 * ai__request_body writes the chat-completions request for text (cut to
 * AI_MAX_TEXT at a UTF-8 boundary) into b (reset first): model, temperature
 * 0, a short max_tokens, the system prompt and the text as the user's
 * message.
 */
void ai__request_body(struct buf *b, const char *model, const char *text);

/*
 * ai__answer_parse reads an OpenAI-style answer (choices[0].message.content)
 * of len bytes into *command: one line, lower case, trimmed of blanks and
 * quotes, in a. Returns 0 when it is one of the customer commands (its first
 * word menu, stock, order, confirm, cancel, invoice or status); else *why
 * (a static string) says why not and the return is:
 *   ERR_PROTO    not JSON, or no choices[0].message.content string
 *   ERR_NOTFOUND the endpoint answered UNKNOWN (or nothing): not understood
 *   ERR_INVAL    the answer is no customer command (another word, a control
 *                character, longer than AI_MAX_COMMAND)
 */
int ai__answer_parse(const char *body, size_t len, struct arena *a, const char **command,
                     const char **why);

/*
 * ai__breaker_config: the AI breaker's settings from cfg: the breaker's
 * defaults (send/breaker.h) with --ai-breaker-failures, -successes and
 * -open-ms, and no slow-answer rule (--ai-timeout-ms ends slow calls).
 */
void ai__breaker_config(const struct config *cfg, struct breaker_config *out);

#endif
