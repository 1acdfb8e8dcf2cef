/*
 * mock_bsp.c - `munim mock-bsp`: a fake WhatsApp Cloud API and a fake SMS
 * gateway for tests, demos and staging drills, with faults injected on
 * demand and scripted to end by themselves.
 *
 * Endpoints
 *   POST /{version}/{phone_number_id}/messages   the Cloud API send call
 *   POST /messages (or /v1/messages)             the same, 360dialog-style:
 *                                                from --phone-number-id
 *   POST /api/v5/flow                            MSG91's flow send (mock_bsp_sms.c)
 *   GET  /_mock/messages?context=&to=&since=&limit=&order=desc
 *   GET  /_mock/sms?since=&limit=
 *   GET  /_mock/replies?since=&limit=
 *   GET  /_mock/stats          GET|POST /_mock/faults      POST /_mock/reset
 *   POST /v1/chat/completions    an AI endpoint (mock_bsp_ai.c), with its own
 *   GET|POST /_mock/ai/faults    faults, GET /_mock/ai/stats
 *
 * A send is answered like the real API: 401 (code 190) without a token -
 * "Authorization: Bearer <t>", or with --auth-header NAME (360dialog's
 * D360-API-KEY) "NAME: <t>" instead, Bearer then not being enough - 400
 * (code 100 or 131009) for a body the API would refuse, else 200
 * {"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
 * "messages":[{"id":"wamid.MOCK..."}]}. Faults, checked before the body:
 *   outage       every send 503, error code 131016
 *   error rate   that fraction answered with the fault status and the code
 *                the real API pairs with it (429 → 130429, 500 → 131000,
 *                502/503/504 → 131016, 401/403 → 190, other 4xx → 131026);
 *                a 429 burst is {"error_rate":1,"status":429,"for_ms":N}
 *   latency      every send answered that much later: the request is
 *                suspended and the timer thread answers (no HTTP thread
 *                waits)
 *   failed rate  that fraction of accepted messages get a "failed" status
 *                (errors [{code 131026, "Message undeliverable"}]) instead
 *                of "delivered"
 * Accepted messages go to the bounded log (mock_bsp_log.c) and, with
 * --webhook-url and delivered-statuses 1, a signed status goes back to
 * munim once the answer has been sent (mock_bsp_status.c).
 *
 * The SMS gateway (mock_bsp_sms.c) answers {"type":"success","message":
 * "<24 hex request id>"} or {"type":"error","message":"..."} (401 no
 * authkey, 400 a bad body, 503 the sms_outage fault), keeps each accepted
 * SMS in its own log and, with --sms-dlr-url, POSTs MSG91-style delivery
 * reports there: DELIVERED, or FAILED for the fraction sms_failed_rate
 * picks.
 *
 * POST /_mock/faults takes any of these fields (GET shows them all):
 *   error_rate 0..1, status 100..599, latency_ms 0..600000, outage bool,
 *   failed_rate 0..1, sms_outage bool, sms_failed_rate 0..1,
 *   for_ms 1..3600000: the fields this call set go back to their no-fault
 *     values (0, status 500, false) that much later, on the timer thread,
 *     whether or not requests come; GET shows "until_ms" (epoch ms of the
 *     undo, 0 when none). Any later POST, and a reset, cancel the undo.
 * Flags set the same at start: --fault-error-rate, --fault-status,
 * --fault-latency-ms, --fault-outage, --fault-failed-rate.
 * POST /_mock/reset clears both logs, every fault and the counters.
 * GET /_mock/stats counts sends, SMS (sms_received, sms_accepted,
 * sms_rejected, sms_failed_by_fault, sms_dlr_sent, and the report poster's
 * figures under "sms_dlr") and the status poster's under "statuses".
 *
 * GET /_mock/sms answers {"count":N,"next":I,"sms":[{"index","request_id",
 * "template_id","mobiles","var","status":"delivered"|"failed",
 * "received_at"}]}, one entry per SMS (a call with several recipients is
 * several), oldest first, since= and limit= as below.
 *
 * GET /_mock/messages answers {"count":N,"next":I,"messages":[{"index",
 * "id","phone_number_id","to","type","text","buttons":[{"id","title"}],
 * "context","received_at","body":{the request as sent}}]}: oldest first
 * (order=desc: newest first), at most limit (default 1000, at most
 * 10000); poll incrementally with since=<next of the previous answer>.
 * Messages sent while the mock was answering slowly are logged when they
 * arrive, as the real API keeps a message whose answer the client missed.
 *
 * GET /_mock/replies is the same log cut down to what loadgen's collector
 * needs, as text/plain: a line "next I", then one line per message,
 * oldest first, "<index> <received_at> <context>" (context "-" when the
 * message quotes none, or one with a byte outside '!'..'~'); at most
 * limit (default and largest MOCK_REPLIES_MAX) lines, since= as above.
 * No request body is read or written, so polling it costs a few bytes a
 * message instead of a JSON document each.
 *
 * Speed: a send costs one JSON parse (core/jsonr into a request arena:
 * several times cheaper than jansson's node-by-node allocation), one short
 * lock (the log) and a few atomics; the fault settings are atomics read
 * without a lock.
 *
 * Threading: handlers run on the HTTP server's threads, the scripted undo
 * on the timer thread; `struct mock` is shared: faults and stats are
 * atomics (writers of faults also hold undo.mu, the scripted undo's
 * lock: mock_bsp_faults.c), the logs and the report queues have their own locks, the
 * rest is written before the server starts.
 */
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/jsonr.h"
#include "core/log.h"
#include "core/proc.h"
#include "core/xalloc.h"
#include "http/http.h"
#include "tools/mock_bsp_ai.h"
#include "tools/tools_internal.h"

/* Messages remembered, and the most bytes of them (oldest dropped first). */
#define MOCK_KEEP_MSGS  1000000
#define MOCK_KEEP_BYTES ((size_t)512 << 20)
/* Largest send body accepted (a Cloud API message is a few KB). */
#define MOCK_MAX_BODY (256 * 1024)
/* Arena block for parsing one send body (bodies are a few hundred bytes). */
#define MOCK_PARSE_ARENA 8192
/* Longest phone_number_id, recipient and wamid accepted. */
#define MOCK_MAX_ID    32
#define MOCK_MAX_TO    24
#define MOCK_MAX_WAMID 60
/* /_mock/messages: default and largest page. */
#define MOCK_PAGE_DEFAULT 1000
#define MOCK_PAGE_MAX     10000
/* /_mock/replies: default and largest page (lines of ~60 bytes). */
#define MOCK_REPLIES_MAX 100000
/* The default listen address (serve's is :8080, and bsp-url points here). */
#define MOCK_DEFAULT_LISTEN "127.0.0.1:9090"
/* The number of 360dialog-style sends without --phone-number-id: the first
 * seeded shop's. */
#define MOCK_KEYED_PHONE "100000000000001"
/* The app secret of the demo, used when none is configured. */
#define MOCK_DEMO_SECRET "demo-app-secret"

struct mock_faults {
	_Atomic int64_t rate_ppm; /* error rate, parts per million */
	_Atomic int64_t status;
	_Atomic int64_t latency_ms;
	_Atomic int64_t outage;
	_Atomic int64_t failed_ppm; /* accepted messages given a failed status, ppm */
};

/* The fault fields one POST /_mock/faults set: what its for_ms undoes. */
enum {
	MOCK_FAULT_RATE = 1 << 0,
	MOCK_FAULT_STATUS = 1 << 1,
	MOCK_FAULT_LATENCY = 1 << 2,
	MOCK_FAULT_OUTAGE = 1 << 3,
	MOCK_FAULT_FAILED = 1 << 4,
	MOCK_FAULT_SMS_OUTAGE = 1 << 5,
	MOCK_FAULT_SMS_FAILED = 1 << 6,
};

struct mock_stats {
	_Atomic uint64_t received; /* send calls */
	_Atomic uint64_t accepted;
	_Atomic uint64_t rejected;        /* 400/401/404 */
	_Atomic uint64_t failed_by_fault; /* error rate and outage */
	_Atomic uint64_t delayed;         /* answered late (latency fault) */
	_Atomic uint64_t failed_statuses; /* failed statuses queued (failed-rate fault) */
};

struct mock {
	struct mock_faults faults;
	struct mock_stats stats;
	struct mock_log *log;
	struct mock_timer *timer;
	struct mock_status *status; /* NULL: no status webhooks */
	struct mock_sms *sms;       /* the SMS gateway: its log, faults, reports */
	const char *auth_header;    /* "": "Authorization: Bearer"; else this header */
	/* the number a 360dialog-style send (POST /messages, no number in the
	 * path: the proxy knows it from the API key) is sent from */
	const char *keyed_phone;
	/* Fault writes and their scripted undo (for_ms); readers of single
	 * faults use the atomics without its lock. */
	struct mock_undo undo;
	int64_t started_ms;
	char wamid_tag[16]; /* started_ms in 11 hex digits: this run's ids */
	_Atomic uint64_t wamid_seq;
};

/* A send's answer, maybe kept for later by the timer. */
struct answer {
	struct mock *m;
	struct http_req *r;
	unsigned int status;
	struct buf body;
	/* for the status, sent after the answer */
	int accepted;
	int failed; /* the failed-rate fault picked it: status "failed" */
	char wamid[MOCK_MAX_WAMID + 1];
	char phone[MOCK_MAX_ID + 1];
	char to[MOCK_MAX_TO + 1];
	char callback[MOCK_MAX_CALLBACK + 1]; /* biz_opaque_callback_data, echoed */
};

/* ---- small helpers ------------------------------------------------------ */

static void respond_json(struct http_req *r, unsigned int status, const struct buf *b)
{
	http_respond(r, status, "application/json", b->data ? b->data : "", b->len);
}

/* A Cloud API error body: {"error":{"message","type","code","fbtrace_id"}}. */
static void error_body(struct buf *b, int code, const char *message)
{
	/* the Graph API calls nearly every error an OAuthException */
	const char *type = "OAuthException";
	buf_reset(b);
	buf_puts(b, "{\"error\":{\"message\":");
	buf_json_str(b, message);
	buf_printf(b,
	           ",\"type\":\"%s\",\"code\":%d,\"error_data\":{\"messaging_product\":"
	           "\"whatsapp\",\"details\":",
	           type, code);
	buf_json_str(b, message);
	buf_puts(b, "},\"fbtrace_id\":\"MOCKTRACE\"}}");
}

static void respond_error(struct http_req *r, unsigned int status, int code, const char *msg)
{
	struct buf b;
	buf_init(&b);
	error_body(&b, code, msg);
	respond_json(r, status, &b);
	buf_release(&b);
}

/* The error code the Cloud API pairs with an injected status. */
static int fault_code(int64_t status, const char **msg)
{
	switch (status) {
	case 429: *msg = "(#130429) Rate limit hit"; return 130429;
	case 401:
	case 403: *msg = "Error validating access token"; return 190;
	case 502:
	case 503:
	case 504: *msg = "(#131016) Service unavailable"; return 131016;
	default: break;
	}
	if (status >= 500) {
		*msg = "(#131000) Something went wrong";
		return 131000;
	}
	*msg = "(#131026) Message undeliverable";
	return 131026;
}

/* Characters in a string, counting UTF-8 sequences once. */
static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

/* ---- the send endpoint --------------------------------------------------- */

/*
 * Splits "/{version}/{phone}/messages"; 0 if the path has that shape. A
 * 360dialog-style "/messages" (or "/v1/messages") is keyed_phone's.
 */
static int parse_send_path(const char *path, const char *keyed_phone, char *phone, size_t cap)
{
	if ((strcmp(path, "/messages") == 0 || strcmp(path, "/v1/messages") == 0) &&
	    strlen(keyed_phone) < cap) {
		memcpy(phone, keyed_phone, strlen(keyed_phone) + 1);
		return 0;
	}
	const char *p = path;
	if (*p++ != '/')
		return ERR_INVAL;
	const char *v_end = strchr(p, '/');
	if (!v_end || v_end == p)
		return ERR_INVAL;
	const char *ph = v_end + 1;
	const char *ph_end = strchr(ph, '/');
	if (!ph_end || ph_end == ph || (size_t)(ph_end - ph) >= cap ||
	    strcmp(ph_end, "/messages") != 0)
		return ERR_INVAL;
	for (const char *c = ph; c < ph_end; c++)
		if (!isalnum((unsigned char)*c) && *c != '_' && *c != '-' && *c != '.')
			return ERR_INVAL;
	memcpy(phone, ph, (size_t)(ph_end - ph));
	phone[ph_end - ph] = '\0';
	return 0;
}

/*
 * jansson_refuses tells whether jansson (which read send bodies before, and
 * still reads them for /_mock/messages) would refuse a document jsonr
 * accepted: a string or key holding "\u0000", an integer beyond 64 bits, a
 * real number beyond a double. Such a body is answered as one that does not
 * parse, as before. (Nesting deeper than jsonr's JSONR_MAX_DEPTH, which
 * jansson takes up to 2048 levels, is refused as unparseable: no Cloud API
 * body nests so.) The walk is bounded by that depth.
 */
static int jansson_refuses(const struct jsonr_val *v)
{
	switch (v->type) {
	case JSONR_STRING: return strlen(v->u.str) != v->len;
	case JSONR_NUMBER:
		if (v->flags & JSONR_INTEGER)
			return !(v->flags & JSONR_INT64);
		return isinf(strtod(v->u.str, NULL));
	case JSONR_ARRAY:
		for (uint32_t i = 0; i < v->len; i++)
			if (jansson_refuses(&v->u.items[i]))
				return 1;
		return 0;
	case JSONR_OBJECT:
		for (uint32_t i = 0; i < v->len; i++) {
			const struct jsonr_member *mb = &v->u.members[i];
			if (strlen(mb->key) != mb->keylen || jansson_refuses(&mb->val))
				return 1;
		}
		return 0;
	default: return 0;
	}
}

/*
 * check_message applies the API's rules to a send body; on refusal it
 * fills *code and *msg. *to_out gets "to", *ctx the quoted wamid or NULL.
 */
static int check_message(const struct jsonr_val *root, const char **to_out, const char **ctx,
                         int *code, const char **msg)
{
	*code = 100;
	if (!jsonr_is_object(root)) {
		*msg = "(#100) The request body must be a JSON object";
		return ERR_INVAL;
	}
	const char *mp = jsonr_str(jsonr_get(root, "messaging_product"), NULL);
	const char *to = jsonr_str(jsonr_get(root, "to"), NULL);
	const char *type = jsonr_str(jsonr_get(root, "type"), NULL);
	if (!mp || strcmp(mp, "whatsapp") != 0) {
		*msg = "(#100) The parameter messaging_product is required";
		return ERR_INVAL;
	}
	if (!to || !*to) {
		*msg = "(#100) The parameter to is required";
		return ERR_INVAL;
	}
	if (!type || !*type) {
		*msg = "(#100) The parameter type is required";
		return ERR_INVAL;
	}
	size_t tl = strlen(to);
	if (tl > MOCK_MAX_TO) {
		*code = 131009;
		*msg = "(#131009) Parameter value is not valid: to";
		return ERR_INVAL;
	}
	for (size_t i = to[0] == '+' ? 1 : 0; i < tl; i++) {
		if (!isdigit((unsigned char)to[i])) {
			*code = 131009;
			*msg = "(#131009) Parameter value is not valid: to";
			return ERR_INVAL;
		}
	}
	const struct jsonr_val *context = jsonr_get(root, "context");
	*ctx = jsonr_str(jsonr_get(context, "message_id"), NULL);
	if (context && !*ctx) {
		*msg = "(#100) The parameter context.message_id is required";
		return ERR_INVAL;
	}
	*to_out = to;
	if (strcmp(type, "text") == 0) {
		const char *body = jsonr_str(jsonr_get(jsonr_get(root, "text"), "body"), NULL);
		if (!body || !*body) {
			*msg = "(#100) The parameter text.body is required";
			return ERR_INVAL;
		}
		if (utf8_chars(body) > 4096) {
			*code = 131009;
			*msg = "(#131009) Parameter value is not valid: text.body is too long";
			return ERR_INVAL;
		}
	} else if (strcmp(type, "interactive") == 0) {
		const struct jsonr_val *in = jsonr_get(root, "interactive");
		const char *itype = jsonr_str(jsonr_get(in, "type"), NULL);
		if (!itype) {
			*msg = "(#100) The parameter interactive.type is required";
			return ERR_INVAL;
		}
		if (strcmp(itype, "button") == 0) {
			const char *text =
			        jsonr_str(jsonr_get(jsonr_get(in, "body"), "text"), NULL);
			const struct jsonr_val *buttons =
			        jsonr_get(jsonr_get(in, "action"), "buttons");
			size_t nb = jsonr_len(buttons);
			*code = 131009;
			if (!text || !*text || utf8_chars(text) > 1024) {
				*msg = "(#131009) Parameter value is not valid: "
				       "interactive.body.text";
				return ERR_INVAL;
			}
			if (nb < 1 || nb > 3) {
				*msg = "(#131009) Parameter value is not valid: buttons count must "
				       "be "
				       "between 1 and 3";
				return ERR_INVAL;
			}
			for (size_t i = 0; i < nb; i++) {
				const struct jsonr_val *reply =
				        jsonr_get(jsonr_at(buttons, i), "reply");
				const char *id = jsonr_str(jsonr_get(reply, "id"), NULL);
				const char *title = jsonr_str(jsonr_get(reply, "title"), NULL);
				if (!id || !*id || strlen(id) > 256 || !title || !*title ||
				    utf8_chars(title) > 20) {
					*msg = "(#131009) Parameter value is not valid: button "
					       "reply "
					       "id or title";
					return ERR_INVAL;
				}
			}
		}
	}
	return 0;
}

_Static_assert(10 + 20 + sizeof(((struct mock *)0)->wamid_tag) <= MOCK_MAX_WAMID + 1,
               "a mock wamid fits");

/* The wamid of the n-th accepted message: "wamid.MOCK", n scattered
 * (tools_scatter_u64) in 20 digits, then the run's tag - unique, and in no
 * order, among this run's and earlier runs' ids, as the provider's are. */
static void make_wamid(const struct mock *m, uint64_t n, char out[MOCK_MAX_WAMID + 1])
{
	static const char head[] = "wamid.MOCK";
	memcpy(out, head, sizeof(head) - 1);
	size_t len =
	        sizeof(head) - 1 + tools_fmt_u64(out + sizeof(head) - 1, tools_scatter_u64(n), 20);
	memcpy(out + len, m->wamid_tag, sizeof(m->wamid_tag)); /* its NUL included */
}

/* Sends the answer; then, for an accepted message, queues its status. */
static void answer_send(void *arg)
{
	struct answer *a = arg;
	respond_json(a->r, a->status, &a->body);
	if (a->accepted && a->m->status) {
		struct mock_report rp = {a->wamid, a->phone, a->to, a->callback, a->failed};
		mock_status_enqueue(a->m->status, &rp);
		if (a->failed)
			atomic_fetch_add_explicit(&a->m->stats.failed_statuses, 1,
			                          memory_order_relaxed);
	}
	buf_release(&a->body);
	free(a);
}

/* Does the send carry a token: "Authorization: Bearer <t>", or with
 * --auth-header NAME (360dialog's D360-API-KEY) "NAME: <t>" instead? */
static int authorized(const struct mock *m, struct http_req *r)
{
	if (m->auth_header[0]) {
		const char *key = http_req_header(r, m->auth_header);
		return key && *key;
	}
	const char *auth = http_req_header(r, "Authorization");
	return auth && strncmp(auth, "Bearer ", 7) == 0 && auth[7];
}

static void on_send(struct http_req *r, void *ud)
{
	struct mock *m = ud;
	struct answer *a = xcalloc(1, sizeof(*a));
	a->m = m;
	a->r = r;
	buf_init(&a->body);
	atomic_fetch_add_explicit(&m->stats.received, 1, memory_order_relaxed);

	if (parse_send_path(http_req_path(r), m->keyed_phone, a->phone, sizeof(a->phone)) != 0) {
		atomic_fetch_add_explicit(&m->stats.rejected, 1, memory_order_relaxed);
		a->status = 404;
		error_body(&a->body, 100,
		           "Unsupported post request: expected "
		           "/{version}/{phone_number_id}/messages or /messages");
		goto answer;
	}
	if (!authorized(m, r)) {
		atomic_fetch_add_explicit(&m->stats.rejected, 1, memory_order_relaxed);
		a->status = 401;
		error_body(&a->body, 190, "An access token is required to request this resource.");
		goto answer;
	}
	if (atomic_load_explicit(&m->faults.outage, memory_order_relaxed)) {
		atomic_fetch_add_explicit(&m->stats.failed_by_fault, 1, memory_order_relaxed);
		a->status = 503;
		error_body(&a->body, 131016, "(#131016) Service unavailable");
		goto answer;
	}
	int64_t ppm = atomic_load_explicit(&m->faults.rate_ppm, memory_order_relaxed);
	if (ppm > 0 && (int64_t)(mock_rand_u64() % 1000000) < ppm) {
		int64_t st = atomic_load_explicit(&m->faults.status, memory_order_relaxed);
		const char *msg;
		int code = fault_code(st, &msg);
		atomic_fetch_add_explicit(&m->stats.failed_by_fault, 1, memory_order_relaxed);
		a->status = (unsigned int)st;
		error_body(&a->body, code, msg);
		goto answer;
	}

	size_t len;
	const char *body = http_req_body(r, &len);
	struct arena ar;
	arena_init(&ar, MOCK_PARSE_ARENA);
	const struct jsonr_val *root = NULL;
	if (jsonr_parse(body, len, &ar, &root) != 0 || jansson_refuses(root))
		root = NULL; /* as a body jansson cannot parse */
	const char *to = NULL, *ctx = NULL, *msg = NULL;
	int code = 0;
	if (check_message(root, &to, &ctx, &code, &msg) != 0) {
		atomic_fetch_add_explicit(&m->stats.rejected, 1, memory_order_relaxed);
		a->status = 400;
		error_body(&a->body, code, msg);
		arena_release(&ar);
		goto answer;
	}
	const char *wa_id = to[0] == '+' ? to + 1 : to;
	uint64_t n = atomic_fetch_add_explicit(&m->wamid_seq, 1, memory_order_relaxed);
	make_wamid(m, n, a->wamid);
	memcpy(a->to, wa_id, strlen(wa_id) + 1); /* check_message capped it at MOCK_MAX_TO */
	const char *cb = jsonr_str(jsonr_get(root, "biz_opaque_callback_data"), NULL);
	if (cb && strlen(cb) <= MOCK_MAX_CALLBACK)
		memcpy(a->callback, cb, strlen(cb) + 1);
	mock_log_add(m->log, clock_wall_ms(), a->wamid, a->phone, wa_id, ctx, body, len);
	a->status = 200;
	a->accepted = 1;
	int64_t fppm = atomic_load_explicit(&m->faults.failed_ppm, memory_order_relaxed);
	a->failed = fppm > 0 && (int64_t)(mock_rand_u64() % 1000000) < fppm;
	buf_puts(&a->body, "{\"messaging_product\":\"whatsapp\",\"contacts\":[{\"input\":");
	buf_json_str(&a->body, to);
	buf_puts(&a->body, ",\"wa_id\":");
	buf_json_str(&a->body, wa_id);
	buf_printf(&a->body, "}],\"messages\":[{\"id\":\"%s\"}]}", a->wamid);
	atomic_fetch_add_explicit(&m->stats.accepted, 1, memory_order_relaxed);
	arena_release(&ar);

answer:;
	int64_t delay = atomic_load_explicit(&m->faults.latency_ms, memory_order_relaxed);
	if (delay > 0) {
		http_suspend(r);
		if (mock_timer_add(m->timer, clock_mono_us() + delay * 1000, answer_send, a) == 0) {
			atomic_fetch_add_explicit(&m->stats.delayed, 1, memory_order_relaxed);
			return;
		}
		/* too many waiting, or stopping: answer now */
	}
	answer_send(a);
}

/* ---- the /_mock endpoints --------------------------------------------------------- */

static json_t *faults_json(struct mock *m)
{
	int64_t until = mock_undo_until(&m->undo);
	return json_pack("{s:f, s:I, s:I, s:b, s:f, s:b, s:f, s:I}", "error_rate",
	                 (double)atomic_load(&m->faults.rate_ppm) / 1e6, "status",
	                 (json_int_t)atomic_load(&m->faults.status), "latency_ms",
	                 (json_int_t)atomic_load(&m->faults.latency_ms), "outage",
	                 atomic_load(&m->faults.outage) != 0, "failed_rate",
	                 (double)atomic_load(&m->faults.failed_ppm) / 1e6, "sms_outage",
	                 mock_sms_outage(m->sms), "sms_failed_rate",
	                 (double)mock_sms_failed_ppm(m->sms) / 1e6, "until_ms", (json_int_t)until);
}

static void respond_value(struct http_req *r, unsigned int status, json_t *v)
{
	char *s = json_dumps(v, JSON_COMPACT);
	json_decref(v);
	if (!s) {
		respond_error(r, 500, 1, "could not format the answer");
		return;
	}
	http_respond(r, status, "application/json", s, strlen(s));
	free(s);
}

static void on_faults_get(struct http_req *r, void *ud)
{
	respond_value(r, 200, faults_json(ud));
}

/* Sets every fault in fields to its no-fault value; caller holds undo.mu. */
static void faults_clear_locked(void *owner, unsigned fields)
{
	struct mock *m = owner;
	if (fields & MOCK_FAULT_RATE)
		atomic_store(&m->faults.rate_ppm, 0);
	if (fields & MOCK_FAULT_STATUS)
		atomic_store(&m->faults.status, 500);
	if (fields & MOCK_FAULT_LATENCY)
		atomic_store(&m->faults.latency_ms, 0);
	if (fields & MOCK_FAULT_OUTAGE)
		atomic_store(&m->faults.outage, 0);
	if (fields & MOCK_FAULT_FAILED)
		atomic_store(&m->faults.failed_ppm, 0);
	if (fields & MOCK_FAULT_SMS_OUTAGE)
		mock_sms_set_outage(m->sms, 0);
	if (fields & MOCK_FAULT_SMS_FAILED)
		mock_sms_set_failed_ppm(m->sms, 0);
}

/* POST /_mock/faults's fields, in the order they are checked; bit i of
 * the fields a POST sets is MOCK_FAULT_* in the same order. */
static const struct mock_field fault_fields[] = {
        {"error_rate", MOCK_FIELD_RATE, 0, 0, "error_rate must be a number from 0 to 1"},
        {"status", MOCK_FIELD_INT, 100, 599, "status must be an HTTP status from 100 to 599"},
        {"latency_ms", MOCK_FIELD_INT, 0, 600000, "latency_ms must be an integer from 0 to 600000"},
        {"outage", MOCK_FIELD_SWITCH, 0, 0, "outage must be true or false"},
        {"failed_rate", MOCK_FIELD_RATE, 0, 0, "failed_rate must be a number from 0 to 1"},
        {"sms_outage", MOCK_FIELD_SWITCH, 0, 0, "sms_outage must be true or false"},
        {"sms_failed_rate", MOCK_FIELD_RATE, 0, 0, "sms_failed_rate must be a number from 0 to 1"},
};
enum { F_RATE, F_STATUS, F_LATENCY, F_OUTAGE, F_FAILED, F_SMS_OUTAGE, F_SMS_FAILED, F_COUNT };
_Static_assert(sizeof(fault_fields) / sizeof(fault_fields[0]) == F_COUNT, "one row a field");
_Static_assert(MOCK_FAULT_RATE == 1 << F_RATE && MOCK_FAULT_STATUS == 1 << F_STATUS &&
                       MOCK_FAULT_LATENCY == 1 << F_LATENCY && MOCK_FAULT_OUTAGE == 1 << F_OUTAGE &&
                       MOCK_FAULT_FAILED == 1 << F_FAILED &&
                       MOCK_FAULT_SMS_OUTAGE == 1 << F_SMS_OUTAGE &&
                       MOCK_FAULT_SMS_FAILED == 1 << F_SMS_FAILED,
               "bit i is field i");

/*
 * POST /_mock/faults: every field is optional; the ones given are checked
 * all before any is set. With for_ms the fields this call set go back to
 * their no-fault values that much later (the timer thread does it, so it
 * happens with no request arriving). Any successful POST cancels the undo
 * an earlier one scheduled.
 */
static void on_faults_post(struct http_req *r, void *ud)
{
	struct mock *m = ud;
	struct mock_faults_post p;
	const char *bad = mock_faults_read(r, fault_fields, F_COUNT, &p);
	if (bad) {
		respond_error(r, 400, 100, bad);
		return;
	}
	json_t **v = p.vals;
	if (mock_undo_begin(&m->undo, m->timer, p.for_ms, p.given) != 0) {
		mock_faults_post_release(&p);
		respond_error(r, 503, 1, "could not schedule the undo: try again");
		return;
	}
	if (v[F_RATE])
		atomic_store(&m->faults.rate_ppm, mock_rate_ppm(v[F_RATE]));
	if (v[F_STATUS])
		atomic_store(&m->faults.status, (int64_t)json_integer_value(v[F_STATUS]));
	if (v[F_LATENCY])
		atomic_store(&m->faults.latency_ms, (int64_t)json_integer_value(v[F_LATENCY]));
	if (v[F_OUTAGE])
		atomic_store(&m->faults.outage, mock_switch_on(v[F_OUTAGE]));
	if (v[F_FAILED])
		atomic_store(&m->faults.failed_ppm, mock_rate_ppm(v[F_FAILED]));
	if (v[F_SMS_OUTAGE])
		mock_sms_set_outage(m->sms, mock_switch_on(v[F_SMS_OUTAGE]));
	if (v[F_SMS_FAILED])
		mock_sms_set_failed_ppm(m->sms, mock_rate_ppm(v[F_SMS_FAILED]));
	mock_undo_end(&m->undo);
	int64_t for_ms = p.for_ms;
	mock_faults_post_release(&p);
	log_info("mock_bsp.faults",
	         "faults set: error rate %.4f status %lld latency %lld ms%s, failed rate %.4f; "
	         "sms%s failed rate %.4f; for %lld ms",
	         (double)atomic_load(&m->faults.rate_ppm) / 1e6,
	         (long long)atomic_load(&m->faults.status),
	         (long long)atomic_load(&m->faults.latency_ms),
	         atomic_load(&m->faults.outage) ? ", outage" : "",
	         (double)atomic_load(&m->faults.failed_ppm) / 1e6,
	         mock_sms_outage(m->sms) ? " outage," : "",
	         (double)mock_sms_failed_ppm(m->sms) / 1e6, (long long)for_ms);
	respond_value(r, 200, faults_json(m));
}

static void on_stats(struct http_req *r, void *ud)
{
	struct mock *m = ud;
	uint64_t held, bytes, next;
	mock_log_counts(m->log, &held, &bytes, &next);
	struct mock_status_counts sc = {0};
	if (m->status)
		mock_status_counts(m->status, &sc);
	struct mock_sms_counts smc;
	mock_sms_counts(m->sms, &smc);
	json_t *v = json_pack(
	        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}",
	        "received", (json_int_t)atomic_load(&m->stats.received), "accepted",
	        (json_int_t)atomic_load(&m->stats.accepted), "rejected",
	        (json_int_t)atomic_load(&m->stats.rejected), "failed_by_fault",
	        (json_int_t)atomic_load(&m->stats.failed_by_fault), "delayed",
	        (json_int_t)atomic_load(&m->stats.delayed), "failed_statuses",
	        (json_int_t)atomic_load(&m->stats.failed_statuses), "held", (json_int_t)held,
	        "held_bytes", (json_int_t)bytes, "next_index", (json_int_t)next, "statuses",
	        "queued", (json_int_t)sc.queued, "sent", (json_int_t)sc.sent, "failed",
	        (json_int_t)sc.failed, "dropped", (json_int_t)sc.dropped, "posts",
	        (json_int_t)sc.posts);
	json_t *sms = json_pack(
	        "{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I}}", "sms_received",
	        (json_int_t)smc.received, "sms_accepted", (json_int_t)smc.accepted, "sms_rejected",
	        (json_int_t)smc.rejected, "sms_failed_by_fault", (json_int_t)smc.failed_by_fault,
	        "sms_dlr_sent", (json_int_t)smc.dlr.sent, "sms_held", (json_int_t)smc.held,
	        "sms_next_index", (json_int_t)smc.next, "sms_dlr", "queued",
	        (json_int_t)smc.dlr.queued, "sent", (json_int_t)smc.dlr.sent, "failed",
	        (json_int_t)smc.dlr.failed, "dropped", (json_int_t)smc.dlr.dropped, "posts",
	        (json_int_t)smc.dlr.posts);
	if (v && sms)
		json_object_update(v, sms);
	json_decref(sms);
	respond_value(r, 200, v);
}

static void on_reset(struct http_req *r, void *ud)
{
	struct mock *m = ud;
	mock_log_clear(m->log);
	mock_undo_reset(&m->undo);
	mock_sms_reset(m->sms);
	atomic_store(&m->stats.received, 0);
	atomic_store(&m->stats.accepted, 0);
	atomic_store(&m->stats.rejected, 0);
	atomic_store(&m->stats.failed_by_fault, 0);
	atomic_store(&m->stats.delayed, 0);
	atomic_store(&m->stats.failed_statuses, 0);
	log_info("mock_bsp.reset", "messages, SMS and faults cleared");
	http_respond(r, 200, "application/json", "{\"ok\":true}", 11);
}

/* One kept message as the /_mock/messages answer shows it. */
static json_t *message_json(const struct mock_hit *h)
{
	json_t *root = json_loads(h->body, 0, NULL);
	const char *to = json_string_value(json_object_get(root, "to"));
	const char *type = json_string_value(json_object_get(root, "type"));
	const char *ctx =
	        json_string_value(json_object_get(json_object_get(root, "context"), "message_id"));
	const char *text = NULL;
	json_t *buttons = json_array();
	if (type && strcmp(type, "text") == 0) {
		text = json_string_value(json_object_get(json_object_get(root, "text"), "body"));
	} else if (type && strcmp(type, "interactive") == 0) {
		json_t *in = json_object_get(root, "interactive");
		text = json_string_value(json_object_get(json_object_get(in, "body"), "text"));
		json_t *bs = json_object_get(json_object_get(in, "action"), "buttons");
		size_t i;
		json_t *b;
		json_array_foreach(bs, i, b)
		{
			json_t *reply = json_object_get(b, "reply");
			json_array_append_new(
			        buttons,
			        json_pack("{s:s?, s:s?}", "id",
			                  json_string_value(json_object_get(reply, "id")), "title",
			                  json_string_value(json_object_get(reply, "title"))));
		}
	}
	json_t *v = json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:s?, s:o, s:s?, s:I}", "index",
	                      (json_int_t)h->index, "id", h->wamid, "phone_number_id",
	                      h->phone_number_id, "to", to, "type", type, "text", text, "buttons",
	                      buttons, "context", ctx, "received_at", (json_int_t)h->received_ms);
	if (v)
		json_object_set(v, "body", root ? root : json_null());
	json_decref(root);
	return v;
}

/* Does a hit really match (the log matched hashes only)? */
static int hit_matches(const struct mock_hit *h, json_t *msg, const char *context, const char *to)
{
	(void)h;
	if (context) {
		const char *c = json_string_value(json_object_get(msg, "context"));
		if (!c || strcmp(c, context) != 0)
			return 0;
	}
	if (to) {
		const char *t = json_string_value(json_object_get(msg, "to"));
		if (!t || strcmp(t[0] == '+' ? t + 1 : t, to) != 0)
			return 0;
	}
	return 1;
}

int mock__parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !*s)
		return ERR_INVAL;
	uint64_t v = 0;
	for (; *s; s++) {
		if (!isdigit((unsigned char)*s) || v > (max - (uint64_t)(*s - '0')) / 10)
			return ERR_INVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

static void on_messages(struct http_req *r, void *ud)
{
	struct mock *m = ud;
	struct mock_query q = {0};
	q.context = http_req_query(r, "context");
	q.to = http_req_query(r, "to");
	if (q.context && !*q.context)
		q.context = NULL;
	if (q.to && *q.to == '+')
		q.to++;
	if (q.to && !*q.to)
		q.to = NULL;
	const char *since = http_req_query(r, "since");
	const char *limit = http_req_query(r, "limit");
	const char *order = http_req_query(r, "order");
	uint64_t v = MOCK_PAGE_DEFAULT;
	if (since && mock__parse_u64(since, UINT64_MAX - 1, &q.since) != 0) {
		respond_error(r, 400, 100, "since must be a message index");
		return;
	}
	if (limit && (mock__parse_u64(limit, MOCK_PAGE_MAX, &v) != 0 || v == 0)) {
		respond_error(r, 400, 100, "limit must be from 1 to 10000");
		return;
	}
	if (order && strcmp(order, "desc") != 0 && strcmp(order, "asc") != 0) {
		respond_error(r, 400, 100, "order must be asc or desc");
		return;
	}
	q.limit = (int)v;
	q.newest_first = order && strcmp(order, "desc") == 0;

	struct mock_hit *hits;
	int n;
	uint64_t next;
	mock_log_query(m->log, &q, &hits, &n, &next);
	json_t *arr = json_array();
	for (int i = 0; i < n; i++) {
		json_t *msg = message_json(&hits[i]);
		if (msg && hit_matches(&hits[i], msg, q.context, q.to))
			json_array_append_new(arr, msg);
		else
			json_decref(msg);
	}
	mock_hits_free(hits, n);
	json_t *out = json_pack("{s:I, s:I, s:o}", "count", (json_int_t)json_array_size(arr),
	                        "next", (json_int_t)next, "messages", arr);
	respond_value(r, 200, out);
}

static void on_replies(struct http_req *r, void *ud)
{
	struct mock *m = ud;
	const char *since = http_req_query(r, "since");
	const char *limit = http_req_query(r, "limit");
	uint64_t from = 0, v = MOCK_REPLIES_MAX;
	if (since && mock__parse_u64(since, UINT64_MAX - 1, &from) != 0) {
		respond_error(r, 400, 100, "since must be a message index");
		return;
	}
	if (limit && (mock__parse_u64(limit, MOCK_REPLIES_MAX, &v) != 0 || v == 0)) {
		respond_error(r, 400, 100, "limit must be from 1 to 100000");
		return;
	}
	struct buf lines, out;
	buf_init(&lines);
	buf_init(&out);
	int n;
	uint64_t next;
	mock_log_replies(m->log, from, (int)v, &lines, &n, &next);
	buf_printf(&out, "next %llu\n", (unsigned long long)next);
	if (lines.len)
		buf_append(&out, lines.data, lines.len);
	http_respond(r, 200, "text/plain", out.data, out.len);
	buf_release(&lines);
	buf_release(&out);
}

/* ---- the command ----------------------------------------------------------- */

static const char *const mock_opts[] = {
        "listen",           "app-secret",        "webhook-url",
        "fault-error-rate", "fault-status",      "fault-latency-ms",
        "fault-outage",     "fault-failed-rate", "delivered-statuses",
        "sms-dlr-url",      "auth-header",       "phone-number-id",
        "http-threads",     "log-level",         NULL,
};

static const char mock_usage[] =
        "[options]\n\n"
        "A fake WhatsApp Cloud API: POST /{version}/{phone_number_id}/messages answers\n"
        "like the real one (POST /messages like a 360dialog-style proxy: the number is\n"
        "--phone-number-id's, default " MOCK_KEYED_PHONE
        "), and a fake SMS gateway: POST /api/v5/flow answers like\n"
        "MSG91's flow API. GET /_mock/messages, /_mock/sms, /_mock/replies, /_mock/stats,\n"
        "GET|POST /_mock/faults and POST /_mock/reset inspect and steer it. Listens "
        "on\n" MOCK_DEFAULT_LISTEN " unless --listen says otherwise; statuses are signed with\n"
        "\"" MOCK_DEMO_SECRET "\" unless --app-secret is given; --webhook-url and\n"
        "--sms-dlr-url must be http:// URLs (the mock speaks plain HTTP).";

/* The host part of "host:port", for the start-up line. */
static void listen_host(const char *listen, char *out, size_t cap)
{
	const char *colon = strrchr(listen, ':');
	size_t n = colon ? (size_t)(colon - listen) : strlen(listen);
	if (n == 0 || n >= cap) {
		snprintf(out, cap, "127.0.0.1");
		return;
	}
	memcpy(out, listen, n);
	out[n] = '\0';
}

int cmd_mock_bsp(int argc, char **argv)
{
	struct config cfg;
	int npos = 0, exit_code = 1;
	int rc = tools_config(&cfg, "mock-bsp", mock_usage, mock_opts, MOCK_DEFAULT_LISTEN, argc,
	                      argv, NULL, 0, &npos);
	if (rc >= 0)
		return rc;

	sigset_t sigs;
	proc_block_stop_signals(&sigs);

	struct mock *m = xcalloc(1, sizeof(*m));
	mock_undo_init(&m->undo, faults_clear_locked, m, "mock_bsp.faults_undone",
	               "scripted faults over: cleared what was set");
	m->auth_header = cfg.auth_header ? cfg.auth_header : "";
	m->keyed_phone = cfg.phone_number_id ? cfg.phone_number_id : MOCK_KEYED_PHONE;
	m->started_ms = clock_wall_ms();
	snprintf(m->wamid_tag, sizeof(m->wamid_tag), "%011llX", (unsigned long long)m->started_ms);
	atomic_store(&m->faults.rate_ppm, (int64_t)(cfg.fault_error_rate * 1e6 + 0.5));
	atomic_store(&m->faults.status, cfg.fault_status);
	atomic_store(&m->faults.latency_ms, cfg.fault_latency_ms);
	atomic_store(&m->faults.outage, cfg.fault_outage);
	atomic_store(&m->faults.failed_ppm, (int64_t)(cfg.fault_failed_rate * 1e6 + 0.5));
	m->log = mock_log_new(MOCK_KEEP_MSGS, MOCK_KEEP_BYTES);
	struct http_server *http = NULL;
	struct mock_ai *ai = NULL;
	if (mock_timer_new(&m->timer) != 0 || mock_ai_new(m->timer, &ai) != 0) {
		log_error("mock_bsp.start_failed", "could not start the timer thread");
		goto out;
	}
	if (cfg.webhook_url && *cfg.webhook_url && cfg.delivered_statuses) {
		const char *secret =
		        cfg.app_secret && *cfg.app_secret ? cfg.app_secret : MOCK_DEMO_SECRET;
		struct tools_url u;
		char why[TOOLS_HTTP_ERR_CAP];
		if (tools_url_parse(cfg.webhook_url, &u, why) != 0) {
			fprintf(stderr, "munim mock-bsp: --webhook-url: %s\n", why);
			exit_code = 2;
			goto out;
		}
		if (mock_status_new(MOCK_POST_WA_STATUS, cfg.webhook_url, secret, &m->status) !=
		    0) {
			log_error("mock_bsp.start_failed", "could not start the status sender");
			goto out;
		}
	}
	if (cfg.sms_dlr_url && *cfg.sms_dlr_url) {
		struct tools_url u;
		char why[TOOLS_HTTP_ERR_CAP];
		if (tools_url_parse(cfg.sms_dlr_url, &u, why) != 0) {
			fprintf(stderr, "munim mock-bsp: --sms-dlr-url: %s\n", why);
			exit_code = 2;
			goto out;
		}
	}
	if (mock_sms_new(cfg.sms_dlr_url, m->started_ms, &m->sms) != 0) {
		log_error("mock_bsp.start_failed", "could not start the SMS report sender");
		goto out;
	}

	const struct http_route routes[] = {
	        {"GET", "/_mock/messages", 0, on_messages, m, NULL},
	        {"GET", "/_mock/replies", 0, on_replies, m, NULL},
	        {"GET", "/_mock/stats", 0, on_stats, m, NULL},
	        {"GET", "/_mock/sms", 0, mock_sms_on_list, m->sms, NULL},
	        {"GET", "/_mock/faults", 0, on_faults_get, m, NULL},
	        {"POST", "/_mock/faults", 0, on_faults_post, m, NULL},
	        {"POST", "/_mock/reset", 0, on_reset, m, NULL},
	        {"POST", "/api/v5/flow", 0, mock_sms_on_send, m->sms, NULL},
	        {"POST", "/api/v5/flow/", 0, mock_sms_on_send, m->sms, NULL},
	        {"POST", "/v1/chat/completions", 0, mock_ai_on_chat, ai, NULL},
	        {"POST", "/chat/completions", 0, mock_ai_on_chat, ai, NULL},
	        {"GET", "/_mock/ai/faults", 0, mock_ai_on_faults_get, ai, NULL},
	        {"POST", "/_mock/ai/faults", 0, mock_ai_on_faults_post, ai, NULL},
	        {"GET", "/_mock/ai/stats", 0, mock_ai_on_stats, ai, NULL},
	        {"POST", "/", 1, on_send, m, NULL},
	};
	rc = http_server_start(cfg.listen, (int)cfg.http_threads, MOCK_MAX_BODY, routes,
	                       (int)(sizeof(routes) / sizeof(routes[0])), &http);
	if (rc != 0) {
		log_error("mock_bsp.listen_failed", "could not listen on %s: %s", cfg.listen,
		          err_str(rc));
		fprintf(stderr, "munim mock-bsp: could not listen on %s: %s\n", cfg.listen,
		        err_str(rc));
		goto out;
	}
	char host[256];
	listen_host(cfg.listen, host, sizeof(host));
	printf("mock-bsp listening on http://%s:%d\n", host, http_server_port(http));
	fflush(stdout);
	log_info("mock_bsp.ready", "listening on %s:%d; statuses %s; SMS reports %s; auth %s", host,
	         http_server_port(http), m->status ? cfg.webhook_url : "off",
	         cfg.sms_dlr_url && *cfg.sms_dlr_url ? cfg.sms_dlr_url : "off",
	         m->auth_header[0] ? m->auth_header : "bearer");

	int sig = proc_wait_stop(&sigs);
	log_info("mock_bsp.stopping", "received signal %d, stopping", sig);
	exit_code = 0;
out:
	if (m->timer)
		mock_timer_close(m->timer); /* slow answers go out now */
	http_server_stop(http);
	mock_timer_free(m->timer);
	mock_ai_free(ai); /* after the timer: its late answers and undos have run */
	mock_status_free(m->status);
	mock_sms_free(m->sms);
	mock_log_free(m->log);
	mock_undo_release(&m->undo);
	free(m);
	config_release(&cfg);
	return exit_code;
}
