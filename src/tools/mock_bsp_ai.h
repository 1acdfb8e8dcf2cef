/*
 * mock_bsp_ai.h - the mock's AI endpoint (mock_bsp_ai.c): an
 * OpenAI-compatible chat completion that rewrites a few Hinglish
 * phrasings into munim's commands, with faults scripted like the mock's
 * others.
 */
#ifndef MUNIM_MOCK_BSP_AI_H
#define MUNIM_MOCK_BSP_AI_H

#include <stddef.h>

struct mock_ai;
struct mock_timer;
struct http_req;

/* mock_ai_new: late answers and scripted undos go through timer (borrowed). */
int mock_ai_new(struct mock_timer *timer, struct mock_ai **out);
void mock_ai_free(struct mock_ai *ai);
/* Route handlers (ud: the struct mock_ai): POST /v1/chat/completions,
 * GET|POST /_mock/ai/faults, GET /_mock/ai/stats. */
void mock_ai_on_chat(struct http_req *r, void *ud);
void mock_ai_on_faults_get(struct http_req *r, void *ud);
void mock_ai_on_faults_post(struct http_req *r, void *ud);
void mock_ai_on_stats(struct http_req *r, void *ud);
/*
 * mock_ai_rewrite: the mock's rewrite of a customer's text into a command
 * ("do kilo aata bhijwa dijiye" → "order 2 kg atta", "atta hai kya" → "stock
 * atta"),
 * or "UNKNOWN"; into out (cap bytes, NUL-terminated). Pure.
 */
void mock_ai_rewrite(const char *text, char *out, size_t cap);

#endif
