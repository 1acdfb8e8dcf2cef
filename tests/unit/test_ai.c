/*
 * test_ai.c - the AI endpoint and degradation level 1: the AI jobs and the
 * OCR queue in a real SQLite store, the ERP's choices for text it cannot
 * read (job, template reply, menu) and for photos, the request and the
 * reading of answers (malformed ones included), the AI breaker's settings,
 * and the "ai" thread end to end against the mock's AI endpoint on
 * loopback (a rewrite that becomes an order; an outage that falls back to
 * the menu and opens the breaker, after which the ERP answers with the
 * template reply and makes no job). No timing is asserted: the thread
 * test waits for the job to end, however long that takes (up to 20 s).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>

#include "ai/ai.h"
#include "ai/ai_internal.h"
#include "core/arena.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "erp/erp.h"
#include "http/http.h"
#include "send/breaker.h"
#include "store/store.h"
#include "tools/mock_bsp_ai.h"
#include "tools/tools_internal.h"

#include "erp_fixture.h"

static int setup(void **state)
{
	setup_erp(state, "ai");
	erp_ai_set(NULL);
	return 0;
}

static int teardown(void **state)
{
	erp_ai_set(NULL);
	return teardown_erp(state);
}

static int say(struct fx *f, const char *from, const char *body)
{
	return say_as(f, from, "text", body, 0);
}

static int64_t count(struct fx *f, const char *what)
{
	int64_t n = -1;
	if (strcmp(what, "jobs") == 0)
		assert_int_equal(store_ai_job_count(f->c, &n), 0);
	else
		assert_int_equal(store_ocr_depth(f->c, &n), 0);
	return n;
}

/* ---- the store: AI jobs and the OCR queue ------------------------------------------- */

static struct ai_job job_of(struct fx *f, const char *wamid, const char *from,
                            enum ai_job_kind kind)
{
	struct ai_job j = {.tenant_id = f->t.id,
	                   .kind = kind,
	                   .ext_id = wamid,
	                   .from = from,
	                   .name = "",
	                   .type = "text",
	                   .body = "kuch bhi",
	                   .context_id = "",
	                   .created_at = 1};
	return j;
}

static void test_job_lifecycle(void **state)
{
	struct fx *f = *state;
	struct ai_job j1 = job_of(f, "w1", CUSTOMER, AI_JOB_REWRITE);
	struct ai_job j2 = job_of(f, "w2", CUSTOMER, AI_JOB_PLAIN);
	struct ai_job j3 = job_of(f, "w3", OTHER, AI_JOB_REWRITE);
	int64_t id1, id2, id3, dup;
	int waiting = -1, n = -1, recovered = -1;
	struct ai_job *got, one;

	assert_int_equal(store_ai_job_waiting(f->c, f->t.id, CUSTOMER, &waiting), 0);
	assert_int_equal(waiting, 0);
	assert_int_equal(store_ai_job_add(f->c, &j1, &id1), 0);
	assert_int_equal(store_ai_job_add(f->c, &j2, &id2), 0);
	assert_int_equal(store_ai_job_add(f->c, &j3, &id3), 0);
	assert_int_equal(store_ai_job_add(f->c, &j1, &dup), ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->c), "has one already"));
	assert_int_equal(store_ai_job_waiting(f->c, f->t.id, CUSTOMER, &waiting), 0);
	assert_int_equal(waiting, 1);
	assert_int_equal(count(f, "jobs"), 3);

	/* only each customer's oldest job: w1 and w3, not w2 behind w1 */
	arena_reset(&f->a);
	assert_int_equal(store_ai_job_claim(f->c, 10, &f->a, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].id, id1);
	assert_int_equal(got[1].id, id3);
	assert_int_equal(got[0].state, AI_JOB_CLAIMED);
	assert_int_equal(got[0].attempts, 1);
	assert_string_equal(got[0].body, "kuch bhi");
	assert_int_equal(store_ai_job_claim(f->c, 10, &f->a, &got, &n), 0);
	assert_int_equal(n, 0);

	/* a crash: claimed jobs are pending again and claimed again */
	assert_int_equal(store_ai_job_recover(f->c, &recovered), 0);
	assert_int_equal(recovered, 2);
	assert_int_equal(store_ai_job_claim(f->c, 1, &f->a, &got, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].id, id1);
	assert_int_equal(got[0].attempts, 2);

	/* a job ends once */
	assert_int_equal(store_ai_job_finish(f->c, id1, "rewritten", "order 2 kg atta", 5), 0);
	assert_int_equal(store_ai_job_finish(f->c, id1, "again", "", 6), ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->c), "is done"));
	assert_int_equal(store_ai_job_finish(f->c, 999, "x", "", 6), ERR_NOTFOUND);
	assert_int_equal(store_ai_job_release(f->c, id1), ERR_CONFLICT);
	assert_int_equal(store_ai_job_get(f->c, id1, &f->a, &one), 0);
	assert_int_equal(one.state, AI_JOB_DONE);
	assert_string_equal(one.outcome, "rewritten");
	assert_string_equal(one.rewritten, "order 2 kg atta");
	assert_int_equal(one.done_at, 5);

	/* now w2 (behind w1) and w3 can go; a released job comes back */
	assert_int_equal(store_ai_job_claim(f->c, 10, &f->a, &got, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(got[0].id, id2);
	assert_int_equal(got[0].kind, AI_JOB_PLAIN);
	assert_int_equal(store_ai_job_release(f->c, id2), 0);
	assert_int_equal(store_ai_job_claim(f->c, 10, &f->a, &got, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].id, id2);
	assert_int_equal(store_ai_job_finish(f->c, id2, "plain", "", 7), 0);
	assert_int_equal(store_ai_job_finish(f->c, id3, "plain", "", 7), 0);
	assert_int_equal(count(f, "jobs"), 0);
	assert_int_equal(store_ai_job_waiting(f->c, f->t.id, CUSTOMER, &waiting), 0);
	assert_int_equal(waiting, 0);

	/* bad input: named errors, nothing written */
	struct ai_job bad = job_of(f, "", CUSTOMER, AI_JOB_REWRITE);
	assert_int_equal(store_ai_job_add(f->c, &bad, &dup), ERR_INVAL);
	bad = job_of(f, "w9", CUSTOMER, (enum ai_job_kind)7);
	assert_int_equal(store_ai_job_add(f->c, &bad, &dup), ERR_INVAL);
	assert_non_null(strstr(store_errmsg(f->c), "bad kind"));
	assert_int_equal(store_ai_job_claim(f->c, 0, &f->a, &got, &n), ERR_INVAL);
}

static void test_ocr_queue(void **state)
{
	struct fx *f = *state;
	struct ocr_item o = {.tenant_id = f->t.id,
	                     .from = CUSTOMER,
	                     .ext_id = "wimg1",
	                     .type = "image",
	                     .media_id = "M1",
	                     .mime_type = "image/jpeg",
	                     .caption = "list",
	                     .created_at = 10};
	struct ocr_item *items;
	int64_t id, id2;
	int n;
	assert_int_equal(store_ocr_add(f->c, &o, &id), 0);
	assert_int_equal(store_ocr_add(f->c, &o, &id2), ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->c), "queued already"));
	o.ext_id = "wdoc2";
	o.type = "document";
	assert_int_equal(store_ocr_add(f->c, &o, &id2), 0);
	assert_int_equal(count(f, "ocr"), 2);
	assert_int_equal(store_ocr_list(f->c, OCR_QUEUED, 0, 10, &f->a, &items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].ext_id, "wimg1");
	assert_string_equal(items[0].media_id, "M1");
	assert_string_equal(items[1].type, "document");
	assert_int_equal(store_ocr_list(f->c, OCR_QUEUED, id, 10, &f->a, &items, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_ocr_done(f->c, id, "ordered 2 kg atta for them", 20), 0);
	assert_int_equal(store_ocr_done(f->c, id, "again", 21), ERR_CONFLICT);
	assert_int_equal(store_ocr_done(f->c, 12345, "x", 21), ERR_NOTFOUND);
	assert_int_equal(count(f, "ocr"), 1);
	assert_int_equal(store_ocr_list(f->c, OCR_DONE, 0, 10, &f->a, &items, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(items[0].note, "ordered 2 kg atta for them");
	assert_int_equal(items[0].done_at, 20);
	assert_int_equal(store_ocr_list(f->c, (enum ocr_state)5, 0, 10, &f->a, &items, &n),
	                 ERR_INVAL);
	o.from = "";
	assert_int_equal(store_ocr_add(f->c, &o, &id2), ERR_INVAL);
}

/* ---- the ERP: job, template, menu, photos ---------------------------------------------- */

static void test_template_reply_when_degraded(void **state)
{
	struct fx *f = *state;
	_Atomic int level = 1, refusing = 0;
	struct erp_ai s = {.jobs = 0, .degradation_level = &level, .refusing = &refusing};
	erp_ai_set(&s);
	assert_int_equal(say(f, CUSTOMER, "kuch bhi samajh nahi"), 0);
	assert_int_equal(f->r.nreplies, 1);
	assert_string_equal(f->r.replies[0].text,
	                    "Due to high demand, smart responses are temporarily unavailable. "
	                    "Please use the buttons below:");
	assert_menu_buttons(&f->r.replies[0]);
	/* what the parser reads is answered as ever */
	assert_int_equal(say(f, CUSTOMER, "stock atta"), 0);
	assert_non_null(strstr(f->r.replies[0].text, "in stock"));
	/* level 0: the menu again */
	level = 0;
	assert_int_equal(say(f, CUSTOMER, "kuch bhi samajh nahi"), 0);
	assert_non_null(strstr(f->r.replies[0].text, "didn't understand"));
	assert_menu_buttons(&f->r.replies[0]);
	assert_int_equal(count(f, "jobs"), 0);
}

static void test_unknown_text_becomes_a_job(void **state)
{
	struct fx *f = *state;
	_Atomic int level = 0, refusing = 0;
	struct erp_ai s = {.jobs = 1, .degradation_level = &level, .refusing = &refusing};
	erp_ai_set(&s);
	assert_int_equal(say(f, CUSTOMER, "bhaiya do kilo aata bhijwa dijiye"), 0);
	assert_int_equal(f->r.nreplies, 0); /* the job's run replies */
	assert_int_equal(count(f, "jobs"), 1);
	/* the customer's next message waits behind it, even one the parser reads */
	assert_int_equal(say(f, CUSTOMER, "stock atta"), 0);
	assert_int_equal(f->r.nreplies, 0);
	/* another customer is not held up */
	assert_int_equal(say(f, OTHER, "stock atta"), 0);
	assert_int_equal(f->r.nreplies, 1);

	struct ai_job *got;
	int n;
	assert_int_equal(store_ai_job_claim(f->c, 10, &f->a, &got, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].kind, AI_JOB_REWRITE);
	assert_string_equal(got[0].body, "bhaiya do kilo aata bhijwa dijiye");
	assert_string_equal(got[0].from, CUSTOMER);
	assert_int_equal(store_ai_job_finish(f->c, got[0].id, "test", "", 1), 0);
	assert_int_equal(store_ai_job_claim(f->c, 10, &f->a, &got, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(got[0].kind, AI_JOB_PLAIN);
	assert_string_equal(got[0].body, "stock atta");
	assert_int_equal(store_ai_job_finish(f->c, got[0].id, "test", "", 1), 0);

	/* the job's run: a rewrite the parser reads is handled; one it cannot
	 * read gets the menu, never a job again */
	assert_int_equal(say_as(f, CUSTOMER, "text", "order 2 kg atta", 1), 0);
	assert_int_equal(f->r.nreplies, 1);
	assert_non_null(strstr(f->r.replies[0].text, "Atta"));
	assert_int_equal(f->r.replies[0].nbuttons, 2); /* Confirm, Cancel */
	assert_int_equal(say_as(f, CUSTOMER, "text", "kuch bhi", 1), 0);
	assert_non_null(strstr(f->r.replies[0].text, "didn't understand"));
	assert_int_equal(count(f, "jobs"), 0);

	/* the breaker refusing: the template, no job */
	refusing = 1;
	assert_int_equal(say(f, CUSTOMER, "kuch bhi"), 0);
	assert_string_equal(f->r.replies[0].text, ERP_DEGRADED_TEXT);
	assert_menu_buttons(&f->r.replies[0]);
	assert_int_equal(say_as(f, CUSTOMER, "text", "kuch bhi", 1), 0);
	assert_string_equal(f->r.replies[0].text, ERP_DEGRADED_TEXT);
	assert_int_equal(count(f, "jobs"), 0);
}

static void test_photo_queued_and_acknowledged(void **state)
{
	struct fx *f = *state;
	assert_int_equal(say_as(f, CUSTOMER, "image", "meri list", 0), 0);
	assert_int_equal(f->r.nreplies, 1);
	assert_non_null(strstr(f->r.replies[0].text, "received your photo"));
	assert_int_equal(say_as(f, CUSTOMER, "document", "", 0), 0);
	assert_non_null(strstr(f->r.replies[0].text, "received your document"));
	assert_int_equal(count(f, "ocr"), 2);
	struct ocr_item *items;
	int n;
	assert_int_equal(store_ocr_list(f->c, OCR_QUEUED, 0, 10, &f->a, &items, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(items[0].caption, "meri list");
	assert_string_equal(items[0].from, CUSTOMER);
	/* a sticker is no photo to read: the polite menu as before */
	assert_int_equal(say_as(f, CUSTOMER, "sticker", "", 0), 0);
	assert_non_null(strstr(f->r.replies[0].text, "only read text"));
	assert_int_equal(count(f, "ocr"), 2);
}

/* ---- the request and the answer ---------------------------------------------------------- */

static void test_request_body(void **state)
{
	(void)state;
	struct buf b;
	buf_init(&b);
	ai__request_body(&b, "gpt-x", "atta \"hai\" kya?");
	buf_putc(&b, '\0');
	json_error_t err;
	json_t *v = json_loads(b.data, 0, &err);
	assert_non_null(v);
	assert_string_equal(json_string_value(json_object_get(v, "model")), "gpt-x");
	json_t *msgs = json_object_get(v, "messages");
	assert_int_equal(json_array_size(msgs), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 0), "role")),
	                    "system");
	const char *sys = json_string_value(json_object_get(json_array_get(msgs, 0), "content"));
	assert_non_null(strstr(sys, "order <quantity> <unit> <item>"));
	assert_non_null(strstr(sys, "UNKNOWN"));
	assert_string_equal(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
	                    "atta \"hai\" kya?");
	json_decref(v);

	/* a long text is cut at a character boundary: still valid JSON */
	char *longtext = xmalloc(AI_MAX_TEXT + 64);
	size_t k = 0;
	while (k + 3 < AI_MAX_TEXT + 60) {
		memcpy(longtext + k, "\xE0\xA4\x86", 3); /* आ */
		k += 3;
	}
	longtext[k] = '\0';
	ai__request_body(&b, "", longtext);
	buf_putc(&b, '\0');
	v = json_loads(b.data, 0, &err);
	assert_non_null(v);
	const char *user = json_string_value(
	        json_object_get(json_array_get(json_object_get(v, "messages"), 1), "content"));
	assert_true(strlen(user) <= AI_MAX_TEXT && strlen(user) % 3 == 0);
	json_decref(v);
	free(longtext);
	buf_release(&b);
}

static int parse(struct arena *a, const char *body, const char **cmd, const char **why)
{
	return ai__answer_parse(body, strlen(body), a, cmd, why);
}

static void test_answer_parsing(void **state)
{
	struct fx *f = *state;
	const char *cmd, *why;
	struct arena *a = &f->a;
#define ANSWER(content)                                                                            \
	"{\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":" content "}}" \
	"]}"
	assert_int_equal(parse(a, ANSWER("\"order 2 kg atta\""), &cmd, &why), 0);
	assert_string_equal(cmd, "order 2 kg atta");
	assert_int_equal(parse(a, ANSWER("\"  `Stock Atta`.\\nbecause...\""), &cmd, &why), 0);
	assert_string_equal(cmd, "stock atta");
	assert_int_equal(parse(a, ANSWER("\"\\\"invoice\\\"\""), &cmd, &why), 0);
	assert_string_equal(cmd, "invoice");
	/* not understood */
	assert_int_equal(parse(a, ANSWER("\"UNKNOWN\""), &cmd, &why), ERR_NOTFOUND);
	assert_null(cmd);
	assert_int_equal(parse(a, ANSWER("\"  \""), &cmd, &why), ERR_NOTFOUND);
	/* not a customer command: the owner's are never taken from an answer */
	assert_int_equal(parse(a, ANSWER("\"broadcast 50% off\""), &cmd, &why), ERR_INVAL);
	assert_string_equal(why, "the answer is not one of the customer commands");
	assert_int_equal(parse(a, ANSWER("\"price atta 1\""), &cmd, &why), ERR_INVAL);
	assert_int_equal(parse(a, ANSWER("\"Sure! Here you go\""), &cmd, &why), ERR_INVAL);
	assert_int_equal(parse(a, ANSWER("\"order\\u0007 2 kg\""), &cmd, &why), ERR_INVAL);
	assert_string_equal(why, "the answer holds a control character");
	assert_int_equal(parse(a, ANSWER("\"order 2\\u0000 kg\""), &cmd, &why), ERR_INVAL);
	char big[AI_MAX_COMMAND + 200];
	snprintf(big, sizeof(big), "{\"choices\":[{\"message\":{\"content\":\"order %0*d\"}}]}",
	         AI_MAX_COMMAND, 1);
	assert_int_equal(parse(a, big, &cmd, &why), ERR_INVAL);
	assert_string_equal(why, "the answer is longer than a command");
	/* malformed: named, never a command */
	assert_int_equal(
	        parse(a, "{\"choices\":[{\"message\":{\"content\":\"order 2 kg", &cmd, &why),
	        ERR_PROTO);
	assert_string_equal(why, "the answer is not a JSON object");
	assert_int_equal(parse(a, "[]", &cmd, &why), ERR_PROTO);
	assert_int_equal(parse(a, "{\"choices\":[]}", &cmd, &why), ERR_PROTO);
	assert_string_equal(why, "the answer has no choices[0].message.content");
	assert_int_equal(parse(a, "{\"choices\":[{\"message\":{\"content\":7}}]}", &cmd, &why),
	                 ERR_PROTO);
	assert_int_equal(parse(a, "{\"error\":{\"message\":\"overloaded\"}}", &cmd, &why),
	                 ERR_PROTO);
	assert_null(cmd);
#undef ANSWER
}

static void test_mock_rewrites(void **state)
{
	(void)state;
	char out[128];
	mock_ai_rewrite("2 kilo aata bhejo", out, sizeof(out));
	assert_string_equal(out, "order 2 kg atta");
	mock_ai_rewrite("Bhaiya do kilo aata aur ek litre tel bhijwa dijiye", out, sizeof(out));
	assert_string_equal(out, "order 2 kg atta, 1 l oil");
	mock_ai_rewrite("atta hai kya?", out, sizeof(out));
	assert_string_equal(out, "stock atta");
	mock_ai_rewrite("mera bill bhejo", out, sizeof(out));
	assert_string_equal(out, "invoice");
	mock_ai_rewrite("kuch bhi", out, sizeof(out));
	assert_string_equal(out, "UNKNOWN");
}

/* ---- the breaker: the AI's settings ------------------------------------------------------ */

static void test_breaker_opens_after_failures(void **state)
{
	(void)state;
	struct config cfg;
	struct breaker_config bc;
	struct breaker b;
	config_defaults(&cfg);
	ai__breaker_config(&cfg, &bc);
	assert_int_equal(bc.failure_threshold, 5);
	assert_int_equal(bc.success_threshold, 3);
	assert_int_equal(bc.open_ms, 30000);
	assert_int_equal(bc.slow_ms, 0);
	assert_int_equal(cfg.ai_timeout_ms, 3000);
	assert_int_equal(breaker_init(&b, &bc), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(breaker_allow(&b, 1000 + i, NULL), 1);
		breaker_record(&b, 1000 + i, BREAKER_FAILURE, 0);
	}
	assert_int_equal(breaker_state(&b), BREAKER_CLOSED);
	assert_int_equal(breaker_allow(&b, 1010, NULL), 1);
	assert_int_equal(breaker_record(&b, 1010, BREAKER_FAILURE, 0), 1);
	assert_int_equal(breaker_state(&b), BREAKER_OPEN);
	assert_int_equal(breaker_allow(&b, 2000, NULL), 0);
	config_release(&cfg);
}

/* ---- the thread, end to end against the mock's endpoint ------------------------------------- */

struct endpoint {
	struct mock_timer *timer;
	struct mock_ai *mock;
	struct http_server *http;
	struct http_route routes[2]; /* the server keeps a pointer to them */
	char url[96];
	char faults[96];
};

static void endpoint_start(struct endpoint *ep)
{
	assert_int_equal(mock_timer_new(&ep->timer), 0);
	assert_int_equal(mock_ai_new(ep->timer, &ep->mock), 0);
	ep->routes[0] = (struct http_route){
	        "POST", "/v1/chat/completions", 0, mock_ai_on_chat, ep->mock, NULL};
	ep->routes[1] = (struct http_route){
	        "POST", "/_mock/ai/faults", 0, mock_ai_on_faults_post, ep->mock, NULL};
	assert_int_equal(http_server_start("127.0.0.1:0", 1, 65536, ep->routes, 2, &ep->http), 0);
	snprintf(ep->url, sizeof(ep->url), "http://127.0.0.1:%d/v1/chat/completions",
	         http_server_port(ep->http));
	snprintf(ep->faults, sizeof(ep->faults), "http://127.0.0.1:%d/_mock/ai/faults",
	         http_server_port(ep->http));
}

static void endpoint_stop(struct endpoint *ep)
{
	mock_timer_close(ep->timer);
	http_server_stop(ep->http);
	mock_timer_free(ep->timer);
	mock_ai_free(ep->mock);
}

static size_t sink(char *p, size_t s, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return s * n;
}

static void set_fault(const struct endpoint *ep, const char *json)
{
	CURL *e = curl_easy_init();
	long status = 0;
	curl_easy_setopt(e, CURLOPT_URL, ep->faults);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, json);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, sink);
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	curl_easy_cleanup(e);
}

/* Waits for the job of f->wamid to end (the thread runs it); its outcome. */
static const char *await_job(struct fx *f)
{
	for (int i = 0; i < 2000; i++) {
		int64_t id = 0; /* the job recorded for f->wamid */
		for (int64_t k = 1; k < 100; k++) {
			struct ai_job one;
			if (store_ai_job_get(f->c, k, &f->a, &one) != 0)
				break;
			if (strcmp(one.ext_id, f->wamid) == 0) {
				id = k;
				if (one.state == AI_JOB_DONE)
					return one.outcome;
			}
		}
		assert_true(id > 0);
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	fail_msg("the job of %s did not end", f->wamid);
	return NULL;
}

/* The last outbox row quoting f->wamid: its body. */
static const char *reply_body(struct fx *f)
{
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_list(f->c, OUTBOX_PENDING, 100, &f->a, &rows, &n), 0);
	for (int i = 0; i < n; i++)
		if (strcmp(rows[i].reply_to, f->wamid) == 0)
			return rows[i].body;
	fail_msg("no reply to %s", f->wamid);
	return NULL;
}

static void test_thread_rewrite_outage_breaker(void **state)
{
	struct fx *f = *state;
	struct endpoint ep;
	struct app app;
	struct ai *ai = NULL;
	struct ai_signals sig;
	endpoint_start(&ep);
	memset(&app, 0, sizeof(app));
	config_defaults(&app.cfg);
	free(app.cfg.ai_url);
	app.cfg.ai_url = strdup(ep.url);
	free(app.cfg.ai_token);
	app.cfg.ai_token = strdup("unit-token");
	app.cfg.ai_poll_ms = 10;
	app.store = f->st;
	metrics_init(&app.metrics);
	notify_init(&app.outbox_ready);
	assert_int_equal(ai_start(&app, &ai), 0);

	/* a rewrite the parser reads: the order's draft, quoting the message */
	assert_int_equal(say(f, CUSTOMER, "bhaiya do kilo aata bhijwa dijiye"), 0);
	assert_int_equal(f->r.nreplies, 0);
	assert_string_equal(await_job(f), "rewritten");
	assert_non_null(strstr(reply_body(f), "Atta"));
	assert_non_null(strstr(reply_body(f), f->wamid));

	/* an outage: each message still answered - the menu, and once the
	 * fifth failure has opened the breaker, the template reply */
	set_fault(&ep, "{\"outage\":true}");
	for (int i = 0; i < 5; i++) {
		assert_int_equal(say(f, OTHER, "mera bill bhejo"), 0);
		assert_int_equal(f->r.nreplies, 0);
		assert_string_equal(await_job(f), "error: HTTP status 503");
		assert_non_null(strstr(reply_body(f), i < 4 ? "didn't understand" : "high demand"));
	}
	ai_signals(ai, &sig);
	assert_int_equal(sig.configured, 1);
	assert_int_equal(sig.requests[AI_RESULT_OK], 1);
	assert_int_equal(sig.requests[AI_RESULT_ERROR], 5);
	assert_int_equal(sig.latency_count, 6);
	assert_int_equal(sig.breaker_state, BREAKER_OPEN);
	assert_int_equal(sig.refusing, 1);
	/* breaker open: the template straight from the ERP, no job */
	assert_int_equal(say(f, OTHER, "mera bill bhejo"), 0);
	assert_int_equal(f->r.nreplies, 1);
	assert_string_equal(f->r.replies[0].text, ERP_DEGRADED_TEXT);
	assert_menu_buttons(&f->r.replies[0]);
	assert_int_equal(count(f, "jobs"), 0);

	struct buf b;
	buf_init(&b);
	ai_render_metrics(ai, &b);
	buf_putc(&b, '\0');
	assert_non_null(strstr(b.data, "munim_ai_requests_total{result=\"error\"} 5\n"));
	assert_non_null(strstr(b.data, "munim_ai_breaker_state 1\n"));
	assert_non_null(strstr(b.data, "munim_ai_latency_seconds_count 6\n"));
	assert_non_null(strstr(b.data, "munim_ocr_queue_depth 0\n"));
	buf_release(&b);

	ai_stop(ai);
	/* stopped: the ERP is back to the menu */
	assert_int_equal(say(f, OTHER, "mera bill bhejo"), 0);
	assert_non_null(strstr(f->r.replies[0].text, "didn't understand"));
	notify_release(&app.outbox_ready);
	config_release(&app.cfg);
	endpoint_stop(&ep);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_setup_teardown(test_job_lifecycle, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_ocr_queue, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_template_reply_when_degraded, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_unknown_text_becomes_a_job, setup, teardown),
	        cmocka_unit_test_setup_teardown(test_photo_queued_and_acknowledged, setup,
	                                        teardown),
	        cmocka_unit_test(test_request_body),
	        cmocka_unit_test_setup_teardown(test_answer_parsing, setup, teardown),
	        cmocka_unit_test(test_mock_rewrites),
	        cmocka_unit_test(test_breaker_opens_after_failures),
	        cmocka_unit_test_setup_teardown(test_thread_rewrite_outage_breaker, setup,
	                                        teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
