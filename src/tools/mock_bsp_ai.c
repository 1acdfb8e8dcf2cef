/*
 * mock_bsp_ai.c - the mock's AI endpoint: an OpenAI-compatible chat
 * completion that munim's AI thread calls, on the same listener as the
 * fake Cloud API.
 *
 *   POST /v1/chat/completions   (also /chat/completions)
 *   Authorization: Bearer <non-empty>
 *   {"model":"...","messages":[{"role":"system",...},{"role":"user","content":"..."}]}
 * answers 200 {"id","object":"chat.completion","created","model",
 * "choices":[{"index":0,"message":{"role":"assistant","content":C},
 * "finish_reason":"stop"}]}, C being mock_ai_rewrite of the last user
 * message: a few Hinglish phrasings rewritten deterministically, else
 * "UNKNOWN". Refusals: 401 without a token, 400 for a body that is not
 * a chat request (OpenAI's {"error":{"message","type","code"}} shape).
 *
 * Faults, checked before the body, set by POST /_mock/ai/faults (GET shows
 * them) with the fields of the mock's other faults:
 *   outage bool           every call 503
 *   error_rate 0..1       that fraction answered 500
 *   latency_ms 0..600000  every answer that much later (the timer thread
 *                         answers; no HTTP thread waits)
 *   malformed bool        every answer 200 with a body that is not JSON
 *   for_ms 1..3600000     the fields this call set go back to their
 *                         no-fault values that much later; any later POST
 *                         cancels that undo
 * GET /_mock/ai/stats counts calls, answers and refusals by fault.
 *
 * Threading: handlers on the HTTP server's threads, late answers and undos
 * on the timer thread; faults and counters are atomics, their writers
 * hold undo.mu (the scripted undo, mock_bsp_faults.c).
 */
#include "tools/mock_bsp_ai.h"

#include <ctype.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/xalloc.h"
#include "http/http.h"
#include "tools/tools_internal.h"

#define MOCK_AI_WORDS 64

enum {
	AI_FAULT_OUTAGE = 1 << 0,
	AI_FAULT_RATE = 1 << 1,
	AI_FAULT_LATENCY = 1 << 2,
	AI_FAULT_MALFORMED = 1 << 3,
};

struct mock_ai {
	struct mock_timer *timer;
	_Atomic int64_t outage;
	_Atomic int64_t rate_ppm;
	_Atomic int64_t latency_ms;
	_Atomic int64_t malformed;
	_Atomic uint64_t calls, answered, refused, failed_by_fault, delayed;
	_Atomic uint64_t seq;
	struct mock_undo undo;
};

/* A late answer, or one given now. */
struct ai_answer {
	struct http_req *r;
	unsigned status;
	struct buf body;
};

/* ---- the rewrite ------------------------------------------------------------------ */

static const struct {
	const char *word, *canon;
} unit_words[] = {
        {"kilo", "kg"},    {"kilos", "kg"},    {"kg", "kg"},        {"kgs", "kg"},
        {"gram", "g"},     {"grams", "g"},     {"g", "g"},          {"litre", "l"},
        {"liter", "l"},    {"ltr", "l"},       {"l", "l"},          {"packet", "packet"},
        {"pkt", "packet"}, {"dozen", "dozen"}, {"darjan", "dozen"},
};

static const struct {
	const char *word, *canon;
} item_words[] = {
        {"aata", "atta"}, {"ata", "atta"}, {"chaawal", "rice"}, {"cheeni", "sugar"}, {"tel", "oil"},
};

static const char *unit_of(const char *w)
{
	for (size_t i = 0; i < sizeof(unit_words) / sizeof(unit_words[0]); i++)
		if (strcmp(w, unit_words[i].word) == 0)
			return unit_words[i].canon;
	return NULL;
}

static const char *item_of(const char *w)
{
	for (size_t i = 0; i < sizeof(item_words) / sizeof(item_words[0]); i++)
		if (strcmp(w, item_words[i].word) == 0)
			return item_words[i].canon;
	return w;
}

/* Hindi number words, as digits. */
static const struct {
	const char *word, *digits;
} number_words[] = {
        {"ek", "1"},     {"do", "2"},      {"teen", "3"},   {"char", "4"},
        {"paanch", "5"}, {"aadha", "0.5"}, {"dedh", "1.5"},
};

/* w as digits ("2", "1.5"), or NULL when it is no number. */
static const char *number_of(const char *w)
{
	for (size_t i = 0; i < sizeof(number_words) / sizeof(number_words[0]); i++)
		if (strcmp(w, number_words[i].word) == 0)
			return number_words[i].digits;
	if (!*w)
		return NULL;
	for (const char *p = w; *p; p++)
		if (!isdigit((unsigned char)*p) && *p != '.')
			return NULL;
	return w;
}

static int has(char *const *w, int n, const char *word)
{
	for (int i = 0; i < n; i++)
		if (strcmp(w[i], word) == 0)
			return i;
	return -1;
}

/* Words that ask for delivery: "bhejo", "chahiye" ... */
static int asks_to_send(char *const *w, int n)
{
	static const char *const verbs[] = {"bhejo", "bhej",   "chahiye", "dena",
	                                    "dedo",  "bhijwa", "dijiye"};
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (has(w, n, verbs[i]) >= 0)
			return 1;
	return 0;
}

void mock_ai_rewrite(const char *text, char *out, size_t cap)
{
	char copy[1024];
	char *w[MOCK_AI_WORDS];
	int n = 0;
	snprintf(copy, sizeof(copy), "%s", text ? text : "");
	for (char *p = copy; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	for (char *tok = strtok(copy, " \t\n\r,?!"); tok && n < MOCK_AI_WORDS;
	     tok = strtok(NULL, " \t\n\r,?!"))
		w[n++] = tok;
	snprintf(out, cap, "UNKNOWN");
	if (n == 0)
		return;

	/* "<qty> kilo aata [aur <qty> litre tel] bhejo" → "order 2 kg atta, 1 l oil" */
	if (asks_to_send(w, n)) {
		struct buf b;
		int items = 0;
		buf_init(&b);
		buf_puts(&b, "order");
		for (int i = 0; i < n; i++) {
			const char *qty = number_of(w[i]);
			if (!qty || i + 1 >= n)
				continue;
			const char *unit = unit_of(w[i + 1]);
			int at = unit ? i + 2 : i + 1;
			if (at >= n || asks_to_send(&w[at], 1) || strcmp(w[at], "aur") == 0)
				continue;
			buf_printf(&b, "%s %s", items ? "," : "", qty);
			if (unit)
				buf_printf(&b, " %s", unit);
			buf_printf(&b, " %s", item_of(w[at]));
			items++;
		}
		if (items > 0)
			snprintf(out, cap, "%s", b.data);
		buf_release(&b);
		if (items > 0)
			return;
	}
	/* "atta hai kya", "atta milega" → "stock atta" */
	int hai = has(w, n, "hai");
	int milega = has(w, n, "milega");
	int at = hai > 0 && hai + 1 < n && strcmp(w[hai + 1], "kya") == 0 ? hai : milega;
	if (at > 0) {
		snprintf(out, cap, "stock %s", item_of(w[at - 1]));
		return;
	}
	if (has(w, n, "bill") >= 0) {
		snprintf(out, cap, "invoice");
		return;
	}
	if (has(w, n, "kahan") >= 0 || has(w, n, "kab") >= 0) {
		snprintf(out, cap, "status");
		return;
	}
	if (has(w, n, "namaste") >= 0 || has(w, n, "namaskar") >= 0) {
		snprintf(out, cap, "menu");
		return;
	}
}

/* ---- answers ------------------------------------------------------------------------ */

static void answer_fire(void *arg)
{
	struct ai_answer *an = arg;
	http_respond(an->r, an->status, "application/json", an->body.data ? an->body.data : "",
	             an->body.len);
	buf_release(&an->body);
	free(an);
}

static void error_body(struct buf *b, const char *message, const char *type, const char *code)
{
	buf_reset(b);
	buf_puts(b, "{\"error\":{\"message\":");
	buf_json_str(b, message);
	buf_printf(b, ",\"type\":\"%s\",\"code\":\"%s\"}}", type, code);
}

void mock_ai_on_chat(struct http_req *r, void *ud)
{
	struct mock_ai *m = ud;
	struct ai_answer *an = xcalloc(1, sizeof(*an));
	an->r = r;
	buf_init(&an->body);
	atomic_fetch_add(&m->calls, 1);
	const char *auth = http_req_header(r, "Authorization");
	if (!auth || strncmp(auth, "Bearer ", 7) != 0 || !auth[7]) {
		atomic_fetch_add(&m->refused, 1);
		an->status = 401;
		error_body(&an->body, "missing bearer token", "invalid_request_error",
		           "invalid_api_key");
		goto answer;
	}
	if (atomic_load(&m->outage)) {
		atomic_fetch_add(&m->failed_by_fault, 1);
		an->status = 503;
		error_body(&an->body, "the engine is overloaded", "server_error", "overloaded");
		goto answer;
	}
	int64_t ppm = atomic_load(&m->rate_ppm);
	if (ppm > 0 && (int64_t)(mock_rand_u64() % 1000000) < ppm) {
		atomic_fetch_add(&m->failed_by_fault, 1);
		an->status = 500;
		error_body(&an->body, "internal error", "server_error", "internal_error");
		goto answer;
	}
	if (atomic_load(&m->malformed)) {
		atomic_fetch_add(&m->failed_by_fault, 1);
		an->status = 200;
		buf_puts(&an->body, "{\"choices\":[{\"message\":{\"content\":\"order 2 kg");
		goto answer;
	}
	size_t len;
	const char *body = http_req_body(r, &len);
	json_error_t jerr;
	json_t *root = json_loadb(body ? body : "", len, 0, &jerr);
	json_t *msgs = json_object_get(root, "messages");
	const char *user = NULL;
	size_t i;
	json_t *msg;
	json_array_foreach(msgs, i, msg)
	{
		const char *role = json_string_value(json_object_get(msg, "role"));
		if (role && strcmp(role, "user") == 0)
			user = json_string_value(json_object_get(msg, "content"));
	}
	if (!user) {
		json_decref(root);
		atomic_fetch_add(&m->refused, 1);
		an->status = 400;
		error_body(&an->body, "expected a chat request with a user message",
		           "invalid_request_error", "invalid_body");
		goto answer;
	}
	char content[512];
	mock_ai_rewrite(user, content, sizeof(content));
	const char *model = json_string_value(json_object_get(root, "model"));
	buf_printf(&an->body,
	           "{\"id\":\"chatcmpl-mock-%llu\",\"object\":\"chat.completion\",\"created\":%lld,"
	           "\"model\":",
	           (unsigned long long)atomic_fetch_add(&m->seq, 1),
	           (long long)(clock_wall_ms() / 1000));
	buf_json_str(&an->body, model ? model : "mock");
	buf_puts(&an->body, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
	                    "\"content\":");
	buf_json_str(&an->body, content);
	buf_puts(&an->body, "},\"finish_reason\":\"stop\"}]}");
	json_decref(root);
	an->status = 200;
	atomic_fetch_add(&m->answered, 1);
answer:;
	int64_t delay = atomic_load(&m->latency_ms);
	if (delay > 0) {
		http_suspend(r);
		if (mock_timer_add(m->timer, clock_mono_us() + delay * 1000, answer_fire, an) ==
		    0) {
			atomic_fetch_add(&m->delayed, 1);
			return;
		}
	}
	answer_fire(an);
}

/* ---- faults ------------------------------------------------------------------------- */

static json_t *faults_json(struct mock_ai *m)
{
	int64_t until = mock_undo_until(&m->undo);
	return json_pack("{s:b, s:f, s:I, s:b, s:I}", "outage", atomic_load(&m->outage) != 0,
	                 "error_rate", (double)atomic_load(&m->rate_ppm) / 1e6, "latency_ms",
	                 (json_int_t)atomic_load(&m->latency_ms), "malformed",
	                 atomic_load(&m->malformed) != 0, "until_ms", (json_int_t)until);
}

static void respond_value(struct http_req *r, unsigned status, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT) : NULL;
	json_decref(v);
	if (!s) {
		http_respond(r, 500, "application/json", "{}", 2);
		return;
	}
	http_respond(r, status, "application/json", s, strlen(s));
	free(s);
}

static void respond_bad(struct http_req *r, const char *msg)
{
	struct buf b;
	buf_init(&b);
	error_body(&b, msg, "invalid_request_error", "bad_fault");
	http_respond(r, 400, "application/json", b.data, b.len);
	buf_release(&b);
}

void mock_ai_on_faults_get(struct http_req *r, void *ud)
{
	respond_value(r, 200, faults_json(ud));
}

/* Sets every fault in fields to its no-fault value; caller holds undo.mu. */
static void clear_locked(void *owner, unsigned fields)
{
	struct mock_ai *m = owner;
	if (fields & AI_FAULT_OUTAGE)
		atomic_store(&m->outage, 0);
	if (fields & AI_FAULT_RATE)
		atomic_store(&m->rate_ppm, 0);
	if (fields & AI_FAULT_LATENCY)
		atomic_store(&m->latency_ms, 0);
	if (fields & AI_FAULT_MALFORMED)
		atomic_store(&m->malformed, 0);
}

/* POST /_mock/ai/faults's fields, in the order they are checked; bit i of
 * the fields a POST sets is AI_FAULT_* in the same order. */
static const struct mock_field ai_fault_fields[] = {
        {"outage", MOCK_FIELD_SWITCH, 0, 0, "outage must be true or false"},
        {"error_rate", MOCK_FIELD_RATE, 0, 0, "error_rate must be a number from 0 to 1"},
        {"latency_ms", MOCK_FIELD_INT, 0, 600000, "latency_ms must be an integer from 0 to 600000"},
        {"malformed", MOCK_FIELD_SWITCH, 0, 0, "malformed must be true or false"},
};
enum { F_OUTAGE, F_RATE, F_LATENCY, F_MALFORMED, F_COUNT };
_Static_assert(sizeof(ai_fault_fields) / sizeof(ai_fault_fields[0]) == F_COUNT, "one row a field");
_Static_assert(AI_FAULT_OUTAGE == 1 << F_OUTAGE && AI_FAULT_RATE == 1 << F_RATE &&
                       AI_FAULT_LATENCY == 1 << F_LATENCY && AI_FAULT_MALFORMED == 1 << F_MALFORMED,
               "bit i is field i");

void mock_ai_on_faults_post(struct http_req *r, void *ud)
{
	struct mock_ai *m = ud;
	struct mock_faults_post p;
	const char *bad = mock_faults_read(r, ai_fault_fields, F_COUNT, &p);
	if (bad) {
		respond_bad(r, bad);
		return;
	}
	json_t **v = p.vals;
	if (mock_undo_begin(&m->undo, m->timer, p.for_ms, p.given) != 0) {
		mock_faults_post_release(&p);
		http_respond(r, 503, "application/json", "{}", 2);
		return;
	}
	if (v[F_OUTAGE])
		atomic_store(&m->outage, mock_switch_on(v[F_OUTAGE]));
	if (v[F_RATE])
		atomic_store(&m->rate_ppm, mock_rate_ppm(v[F_RATE]));
	if (v[F_LATENCY])
		atomic_store(&m->latency_ms, (int64_t)json_integer_value(v[F_LATENCY]));
	if (v[F_MALFORMED])
		atomic_store(&m->malformed, mock_switch_on(v[F_MALFORMED]));
	mock_undo_end(&m->undo);
	mock_faults_post_release(&p);
	log_info("mock_bsp.ai_faults",
	         "AI faults set: outage %d, error rate %.4f, latency %lld ms, "
	         "malformed %d",
	         (int)atomic_load(&m->outage), (double)atomic_load(&m->rate_ppm) / 1e6,
	         (long long)atomic_load(&m->latency_ms), (int)atomic_load(&m->malformed));
	respond_value(r, 200, faults_json(m));
}

void mock_ai_on_stats(struct http_req *r, void *ud)
{
	struct mock_ai *m = ud;
	respond_value(r, 200,
	              json_pack("{s:I, s:I, s:I, s:I, s:I}", "calls",
	                        (json_int_t)atomic_load(&m->calls), "answered",
	                        (json_int_t)atomic_load(&m->answered), "refused",
	                        (json_int_t)atomic_load(&m->refused), "failed_by_fault",
	                        (json_int_t)atomic_load(&m->failed_by_fault), "delayed",
	                        (json_int_t)atomic_load(&m->delayed)));
}

int mock_ai_new(struct mock_timer *timer, struct mock_ai **out)
{
	struct mock_ai *m = xcalloc(1, sizeof(*m));
	m->timer = timer;
	mock_undo_init(&m->undo, clear_locked, m, "mock_bsp.ai_faults_undone",
	               "scripted AI faults over: cleared what was set");
	*out = m;
	return 0;
}

void mock_ai_free(struct mock_ai *m)
{
	if (!m)
		return;
	mock_undo_release(&m->undo);
	free(m);
}
