/*
 * tools_internal.h - what the files of munim's own tools (mock-bsp,
 * loadgen, say) share.
 *
 *   mock_bsp.c         the command, the Cloud API endpoint, faults, the /_mock endpoints
 *   mock_bsp_log.c     the bounded log of accepted messages, indexed; the replies feed
 *   mock_bsp_timer.c   late answers (the latency fault) from a timer thread
 *   mock_bsp_status.c  signed status webhooks and SMS delivery reports, batched, retried
 *   mock_bsp_sms.c     the SMS gateway mock (MSG91 flow API), its log and faults
 *   mock_bsp_faults.c  what the fault endpoints share: reading the settings
 *                      posted, their scripted undo (for_ms), the random numbers
 *   tools_http.c       a small plain HTTP/1.1 client: keep-alive, epoll, no libcurl
 *                      (loadgen's sender and collector, the mock's status poster)
 *   tools_common.c     the webhook a customer's message arrives in, its signature,
 *                      the libcurl client `say` uses
 *   loadgen*.c         the load generator: schedule, send, collect, report
 *
 * Every type here is thread-safe as documented on it.
 */
#ifndef MUNIM_TOOLS_INTERNAL_H
#define MUNIM_TOOLS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* ---- the message log (mock_bsp_log.c) -------------------------------- */

/*
 * A bounded FIFO of accepted messages: at most max_msgs and max_bytes of
 * stored text; the oldest go first. Every message gets an index, counting
 * from 0 at start and never reused (a reset drops messages, not indexes).
 * Lookups by the quoted message (context.message_id) and by recipient go
 * through hash chains, so a poll costs the number of matches, not the
 * number of messages held. One mutex; calls are short.
 */
struct mock_log;

/* One message as kept: wamid, phone_number_id, the quoted wamid and the raw request body. */
struct mock_hit {
	uint64_t index;
	int64_t received_ms;
	char *wamid; /* the four point into one allocation owned by the hit */
	char *phone_number_id;
	char *context; /* "" when the message quotes none */
	char *body;
};

struct mock_query {
	const char *context; /* only replies quoting this wamid; NULL: any */
	const char *to;      /* only messages to this wa_id (no '+'); NULL: any */
	uint64_t since;      /* only index >= since */
	int limit;           /* at most this many (≥ 1) */
	int newest_first;    /* order: 0 oldest first, 1 newest first */
};

struct mock_log *mock_log_new(size_t max_msgs, size_t max_bytes);
void mock_log_free(struct mock_log *l);
/*
 * mock_log_add keeps one message (the strings are copied); to is the
 * recipient without '+', context the quoted wamid or "" / NULL. Returns
 * the message's index.
 */
uint64_t mock_log_add(struct mock_log *l, int64_t received_ms, const char *wamid,
                      const char *phone_number_id, const char *to, const char *context,
                      const char *body, size_t body_len);
/*
 * mock_log_query copies the matches into *out (free with mock_hits_free).
 * Hash matches are not re-checked here: the caller compares the fields it
 * parses. *next gets the index the next incremental poll should use.
 */
void mock_log_query(struct mock_log *l, const struct mock_query *q, struct mock_hit **out, int *n,
                    uint64_t *next);
void mock_hits_free(struct mock_hit *hits, int n);
/*
 * mock_log_replies appends one line per message from index since on
 * (oldest first, at most limit >= 1): "<index> <received_ms> <context>\n",
 * the context "-" when the message quotes none or one with a byte outside
 * '!'..'~'. *n gets the lines written, *next the index the next poll
 * should use (as mock_log_query's).
 */
void mock_log_replies(struct mock_log *l, uint64_t since, int limit, struct buf *out, int *n,
                      uint64_t *next);
/* mock_log_clear drops every message (indexes go on from where they were). */
void mock_log_clear(struct mock_log *l);
/* Messages and bytes held, and the index the next message will get. */
void mock_log_counts(struct mock_log *l, uint64_t *held, uint64_t *bytes, uint64_t *next);

/* ---- late answers (mock_bsp_timer.c) --------------------------------- */

typedef void (*mock_timer_fn)(void *arg);

/* One thread running callbacks at their time (monotonic clock). */
struct mock_timer;

int mock_timer_new(struct mock_timer **out);
/*
 * mock_timer_add runs fn(arg) on the timer thread at due_us
 * (clock_mono_us). Returns 0, or ERR_FULL when too many are waiting and
 * ERR_INVAL once the timer is closed: then the caller runs fn itself.
 */
int mock_timer_add(struct mock_timer *t, int64_t due_us, mock_timer_fn fn, void *arg);
/* mock_timer_close runs everything waiting now and refuses new work. */
void mock_timer_close(struct mock_timer *t);
/* Closes if needed, stops the thread, frees. NULL is a no-op. */
void mock_timer_free(struct mock_timer *t);

/* ---- fault endpoints: settings and their scripted undo (mock_bsp_faults.c) ---- */

#include <jansson.h>
#include <pthread.h>

struct http_req;

/* A uniform 64-bit random number (xorshift, seeded per thread); any thread. */
uint64_t mock_rand_u64(void);

/* What a fault setting's value must be. */
enum mock_field_kind {
	MOCK_FIELD_SWITCH, /* true, false or an integer (non-zero: on) */
	MOCK_FIELD_RATE,   /* a number from 0 to 1 */
	MOCK_FIELD_INT,    /* an integer from lo to hi */
};

struct mock_field {
	const char *name;
	enum mock_field_kind kind;
	int64_t lo, hi;  /* MOCK_FIELD_INT's bounds */
	const char *bad; /* the error when the value is not what kind says */
};

#define MOCK_FIELDS_MAX 16
#define MOCK_MAX_FOR_MS 3600000

/* One POST of fault settings, read and checked (mock_faults_read). */
struct mock_faults_post {
	json_t *root;                  /* the body; mock_faults_post_release frees it */
	json_t *vals[MOCK_FIELDS_MAX]; /* fields[i]'s value (borrowed), NULL: not given */
	unsigned given;                /* bit i set: fields[i] given */
	int64_t for_ms;                /* "for_ms", 1..MOCK_MAX_FOR_MS; 0: not given */
};

/*
 * mock_faults_read reads the body of a POST to a fault endpoint: a JSON
 * object whose fields, all optional, are checked in the table's order (n
 * at most MOCK_FIELDS_MAX), then "for_ms", before the caller sets anything.
 * Returns NULL with *out filled (release it), or the message naming the
 * first bad field, or the body that is not an object (nothing to release).
 */
const char *mock_faults_read(struct http_req *r, const struct mock_field *fields, int n,
                             struct mock_faults_post *out);
void mock_faults_post_release(struct mock_faults_post *p);
/* A MOCK_FIELD_SWITCH value as 0 or 1; a MOCK_FIELD_RATE value in parts per million. */
int mock_switch_on(const json_t *v);
int64_t mock_rate_ppm(const json_t *v);

/* Sets the faults named by the bits of fields to their no-fault values. */
typedef void (*mock_faults_clear_fn)(void *owner, unsigned fields);

/*
 * The scripted undo (for_ms) of one fault endpoint: each POST bumps gen,
 * so an undo scheduled by an earlier one finds it changed and does
 * nothing; until_ms is when the pending undo runs (epoch ms, 0: none).
 * Writers of the owner's faults hold mu (mock_undo_begin .. _end, or
 * mock_undo_reset); readers of single faults use their atomics without it.
 * The undo runs on the timer's thread.
 */
struct mock_undo {
	pthread_mutex_t mu;
	uint64_t gen;
	int64_t until_ms;
	mock_faults_clear_fn clear; /* called with mu held */
	void *owner;
	const char *event, *msg; /* logged when an undo clears its faults */
};

void mock_undo_init(struct mock_undo *u, mock_faults_clear_fn clear, void *owner, const char *event,
                    const char *msg);
void mock_undo_release(struct mock_undo *u);
/*
 * mock_undo_begin starts a POST's writes: takes mu and voids any earlier
 * undo; with for_ms > 0 it has timer clear the bits of fields that much
 * later. 0 with mu held (set the faults, then mock_undo_end), or the
 * timer's error (ERR_FULL, ERR_INVAL) with mu released and nothing changed.
 */
int mock_undo_begin(struct mock_undo *u, struct mock_timer *timer, int64_t for_ms, unsigned fields);
void mock_undo_end(struct mock_undo *u);
/* mock_undo_reset clears every fault and voids a pending undo. */
void mock_undo_reset(struct mock_undo *u);
/* mock_undo_until: when the pending undo runs (epoch ms), 0 when none. */
int64_t mock_undo_until(struct mock_undo *u);

/* ---- status webhooks and delivery reports (mock_bsp_status.c) -------- */

/*
 * A background thread POSTing reports to url in batches, with a few
 * retries on any answer but 200. Enqueueing never blocks on the network;
 * past a bounded queue reports are dropped and counted. One poster sends
 * one kind:
 *   MOCK_POST_WA_STATUS  Cloud API status webhooks, signed with the app
 *                        secret (X-Hub-Signature-256), one entry per
 *                        phone_number_id: "delivered", or "failed" with
 *                        errors [{code 131026, "Message undeliverable"}]
 *   MOCK_POST_SMS_DLR    MSG91-style SMS delivery reports: a JSON array of
 *                        {requestId, number, status "1" DELIVERED or "2"
 *                        FAILED (with failedReason), desc, date}, unsigned
 */
struct mock_status;

enum mock_post_kind {
	MOCK_POST_WA_STATUS = 0,
	MOCK_POST_SMS_DLR = 1,
};

struct mock_status_counts {
	uint64_t queued;  /* accepted into the queue */
	uint64_t sent;    /* in a POST answered 200 */
	uint64_t failed;  /* in a POST that failed every attempt */
	uint64_t dropped; /* queue full, or still queued at stop */
	uint64_t posts;   /* POST attempts */
};

/*
 * mock_status_new: 0, ERR_INVAL when url is not an http:// URL, ERR_IO when
 * the thread or its epoll set cannot be made. secret signs WhatsApp
 * statuses (NULL: unsigned; SMS reports are never signed).
 */
int mock_status_new(enum mock_post_kind kind, const char *url, const char *secret,
                    struct mock_status **out);
/* biz_opaque_callback_data longer than this is not echoed (Meta allows 512;
 * the mock keeps its status queue small). */
#define MOCK_MAX_CALLBACK 128

/* One report to send; the strings are borrowed for the call. */
struct mock_report {
	const char *id;              /* the wamid, or the SMS request id */
	const char *phone_number_id; /* WhatsApp: the shop's number; SMS: unused (NULL) */
	const char *recipient;       /* recipient_id, or the SMS's number */
	const char *callback;        /* biz_opaque_callback_data; NULL or "": none */
	int failed;                  /* 1: "failed" / FAILED instead of delivered */
};

/* mock_status_enqueue queues one report (strings copied, cut at the
 * queue's field sizes). Thread-safe; never waits on the network. */
void mock_status_enqueue(struct mock_status *st, const struct mock_report *rp);
void mock_status_counts(struct mock_status *st, struct mock_status_counts *out);
/* Sends what is queued (bounded wait), stops the thread, frees. NULL is a no-op. */
void mock_status_free(struct mock_status *st);

/* ---- the SMS gateway mock (mock_bsp_sms.c) --------------------------- */

/*
 * An MSG91 "flow"-style SMS gateway on the mock's listener: the send call,
 * a bounded log of accepted SMS, its two faults and delivery reports
 * through a MOCK_POST_SMS_DLR poster. Every call is thread-safe: faults and
 * counters are atomics, the log has its own mutex.
 */
struct mock_sms;
struct http_req;

/* What /_mock/stats shows of the SMS side. Units: received and rejected
 * count calls; accepted counts SMS (one per recipient); failed_by_fault
 * counts calls refused by the outage plus SMS given FAILED by the failed
 * rate. */
struct mock_sms_counts {
	uint64_t received, accepted, rejected, failed_by_fault;
	uint64_t held, next;           /* SMS in the log; the index the next one gets */
	struct mock_status_counts dlr; /* all 0 without --sms-dlr-url */
};

/*
 * mock_sms_new: dlr_url NULL or "" sends no reports. started_ms (the
 * mock's start, epoch ms) goes into every request id so ids of different
 * runs differ. 0, or mock_status_new's error.
 */
int mock_sms_new(const char *dlr_url, int64_t started_ms, struct mock_sms **out);
/* Sends the queued reports (bounded wait) and frees. NULL is a no-op. */
void mock_sms_free(struct mock_sms *s);
/* The route handlers (ud: the struct mock_sms): POST /api/v5/flow, GET /_mock/sms. */
void mock_sms_on_send(struct http_req *r, void *ud);
void mock_sms_on_list(struct http_req *r, void *ud);
/* The faults: outage 0/1; failed_ppm the FAILED fraction in parts per million. */
void mock_sms_set_outage(struct mock_sms *s, int on);
void mock_sms_set_failed_ppm(struct mock_sms *s, int64_t ppm);
int mock_sms_outage(struct mock_sms *s);
int64_t mock_sms_failed_ppm(struct mock_sms *s);
void mock_sms_counts(struct mock_sms *s, struct mock_sms_counts *out);
/* mock_sms_reset drops the log (indexes go on), clears the faults and the
 * call counters (not the report poster's). */
void mock_sms_reset(struct mock_sms *s);

/* mock__parse_u64 (mock_bsp.c) reads a decimal number of at most max:
 * 0, or ERR_INVAL for anything else (empty, a sign, a space, too big). */
int mock__parse_u64(const char *s, uint64_t max, uint64_t *out);

/* ---- a small HTTP/1.1 client (tools_http.c) -------------------------- */

#include <sys/epoll.h>

/* Room for an error text of the client, the fetcher and what quotes them. */
#define TOOLS_HTTP_ERR_CAP 320

/*
 * A parsed http:// URL: host, port, the path (may be "", never ending in
 * '/' unless given so) and the authority as the Host header sends it.
 * https:// and other schemes are refused: the tools talk plain HTTP on
 * loopback.
 */
struct tools_url {
	char host[128];
	char authority[136]; /* "host:port" as written, for Host: and messages */
	int port;
	char path[1024];
};

/* tools_url_parse: 0, or ERR_INVAL with why (at most TOOLS_HTTP_ERR_CAP bytes) said. */
int tools_url_parse(const char *url, struct tools_url *out, char why[TOOLS_HTTP_ERR_CAP]);

/* What became of one request; body and why are valid only during the callback. */
struct tools_http_result {
	uint64_t tag;       /* as given to tools_http_start */
	int status;         /* the HTTP status (100..599); 0 without an answer */
	int err;            /* 0, or ERR_IO, ERR_TIMEOUT, ERR_PROTO, ERR_TOOBIG */
	const char *why;    /* err != 0: what happened, for people */
	const char *body;   /* the answer's body, NUL-terminated ("" when none) */
	size_t len;         /* its length, chunked encoding removed */
	int64_t latency_us; /* from tools_http_start to the end of the answer */
};

typedef void (*tools_http_done_fn)(void *ud, const struct tools_http_result *res);

struct tools_http_opts {
	int epfd;          /* the caller's epoll set; the client adds its sockets to it */
	int conns;         /* at most this many connections, each one request at a time */
	size_t max_answer; /* the largest answer body accepted (ERR_TOOBIG above) */
	tools_http_done_fn done;
	void *ud;
};

/* One request: method and path (from '/', query included), extra header
 * lines each ending in "\r\n" (NULL: none), a body (NULL: none, no
 * Content-Length), a time limit from the start, and a tag for the caller. */
struct tools_http_req {
	const char *method;
	const char *path;
	const char *headers;
	const void *body;
	size_t len;
	int64_t timeout_ms;
	uint64_t tag;
};

/*
 * Persistent HTTP/1.1 connections to one host:port, driven by the caller's
 * epoll loop (epoll_event.data.ptr points into the client). Not
 * thread-safe: one thread owns it.
 */
struct tools_http;

/* tools_http_new: 0, or ERR_INVAL for opts out of range. Nothing connects yet. */
int tools_http_new(const struct tools_url *u, const struct tools_http_opts *o,
                   struct tools_http **out);
/* Closes every connection; requests still running are not reported. NULL is a no-op. */
void tools_http_free(struct tools_http *h);
/* Requests that can start now (free connections). */
int tools_http_idle(const struct tools_http *h);
/* Connections open now (idle or busy), for tests and reports. */
int tools_http_open_conns(const struct tools_http *h);
/*
 * tools_http_start sends rq on a free connection (an open idle one first,
 * else a new one). ERR_FULL when none is free: then done is not called.
 * Otherwise 0, and done is called exactly once, maybe before this returns
 * (a refused connection). A request on a reused connection that the server
 * had closed is sent again once on a new one, as browsers and curl do.
 * The request's connection is free again only once done has returned.
 */
int tools_http_start(struct tools_http *h, const struct tools_http_req *rq);
/* tools_http_handle runs one epoll event: 1 if it was the client's, else 0. */
int tools_http_handle(struct tools_http *h, const struct epoll_event *ev);
/* When the next request times out (clock_mono_us), or -1 when none runs. */
int64_t tools_http_next_due(const struct tools_http *h);
/* tools_http_expire fails (ERR_TIMEOUT) every request due at or before now. */
void tools_http_expire(struct tools_http *h, int64_t now);

/*
 * A blocking fetcher over one tools_http connection and its own epoll set,
 * for small exchanges (start-up checks, polling a log). The last answer's
 * body is in f->answer; f->err says why the last call failed.
 */
struct tools_fetch {
	struct tools_url url;
	struct tools_http *h;
	int epfd;
	struct buf answer;
	int status, err, done;
	char why[TOOLS_HTTP_ERR_CAP];
};

/* tools_fetch_init: 0, or ERR_INVAL (not an http:// URL) / ERR_IO with f->why set. */
int tools_fetch_init(struct tools_fetch *f, const char *base_url, size_t max_answer);
/* Safe after a failed init. */
void tools_fetch_release(struct tools_fetch *f);
/*
 * tools_fetch_request runs one request to the base URL's path + path and
 * waits for it at most timeout_ms. 0 with *status and f->answer set, or
 * the result's error (ERR_IO, ERR_TIMEOUT, ERR_PROTO, ERR_TOOBIG) with
 * f->why set.
 */
int tools_fetch_request(struct tools_fetch *f, const char *method, const char *path,
                        const char *headers, const void *body, size_t len, int64_t timeout_ms,
                        int *status);

/* ---- shared by say and loadgen (tools_common.c) ---------------------- */

struct config;
/*
 * tools_config parses a tool's flags into cfg (defaults first; listen, when
 * not NULL, is the default --listen) and applies --log-level. Arguments
 * that are not flags go to pos (at most max_pos; *npos). Returns -1 when
 * the tool goes on, else the status to exit with - 0 after --help, 2 for a
 * bad flag or level, said on stderr - and cfg is then released.
 */
int tools_config(struct config *cfg, const char *cmd, const char *usage, const char *const *opts,
                 const char *listen, int argc, char **argv, char **pos, int max_pos, int *npos);

#include <curl/curl.h>

#include "core/buf.h"
#include "ingest/sig.h"

/* The app secret of the demo, used when none is configured. */
#define TOOLS_DEMO_SECRET "demo-app-secret"
/* The customer's profile name when --name is not given. */
#define TOOLS_DEFAULT_NAME "Asha"
/* Room for "X-Hub-Signature-256: sha256=<64 hex>" and its NUL. */
#define TOOLS_SIG_HEADER_CAP (SIG_HEADER_LEN + 24)

/* One inbound message as a customer's phone sends it. */
struct tools_inbound {
	const char *phone_number_id; /* the shop */
	const char *from;            /* the customer's wa_id */
	const char *name;            /* the customer's profile name; NULL: TOOLS_DEFAULT_NAME */
	const char *wamid;           /* the message's id */
	const char *text;            /* the text; for a tap, the button's title ("": its id) */
	const char *button;          /* a reply-button tap with this id; NULL: a text */
	const char *context;         /* the wamid the message quotes; NULL: none */
};

/*
 * tools_webhook_build returns the Cloud API webhook carrying one message
 * (one entry, one change, the contact's profile name and wa_id), serialised
 * as Meta does (compact, non-ASCII escaped as \u sequences such as \u20b9); the caller frees it.
 * NULL when a string is not UTF-8. Thread-safe.
 */
char *tools_webhook_build(const struct tools_inbound *in);
/* tools_sig_header writes the whole "X-Hub-Signature-256: ..." header line. */
void tools_sig_header(const char *secret, const void *body, size_t len,
                      char out[TOOLS_SIG_HEADER_CAP]);
/* tools_strip_slash drops the trailing slashes of a base URL, in place. */
void tools_strip_slash(char *url);
/* tools_random_u64: 64 random bits (getrandom; the clock if it fails). */
uint64_t tools_random_u64(void);
/*
 * tools_scatter_u64 maps 0, 1, 2, ... to numbers spread over all of 64 bits
 * (a multiplication by an odd constant, so one to one); tools_gather_u64
 * undoes it. The test tools number their message ids through it: a real
 * wamid is random, so consecutive ids land far apart in the receiver's
 * indexes, and a benchmark with counted ids would flatter every B-tree.
 */
uint64_t tools_scatter_u64(uint64_t v);
uint64_t tools_gather_u64(uint64_t v);
/* tools_fmt_u64 writes v in decimal, zero-padded to at least width digits
 * (at most 20), and a NUL; returns the digits written. */
size_t tools_fmt_u64(char *out, uint64_t v, size_t width);

/*
 * A blocking HTTP client for `say`'s small exchanges: one libcurl easy
 * handle (keep-alive between calls) and the last answer's body, at most
 * max_answer bytes. One thread at a time. (loadgen and the mock use
 * tools_http / tools_fetch instead.)
 */
struct tools_client {
	CURL *easy;
	struct buf answer;
	size_t max_answer;
	int too_big;
	char err[CURL_ERROR_SIZE];
};

/* tools_client_init: 0, or ERR_IO when libcurl cannot make a handle. */
int tools_client_init(struct tools_client *c, size_t max_answer);
/* tools_client_release frees the handle and the answer; safe after a failed init. */
void tools_client_release(struct tools_client *c);
/*
 * tools_client_request runs one GET (body NULL) or POST of len bytes with
 * the given extra headers (may be NULL) within timeout_ms. Returns 0 with
 * *status and c->answer set, or ERR_IO with c->err saying why (refused,
 * timed out, answer larger than max_answer).
 */
int tools_client_request(struct tools_client *c, const char *url, const char *body, size_t len,
                         struct curl_slist *headers, long timeout_ms, long *status);

/* ---- loadgen (loadgen*.c) -------------------------------------------- */

/* Caps on what the command line asks for. */
#define LOADGEN_MAX_RATE        100000   /* messages per second, in any step */
#define LOADGEN_MAX_DURATION    3600     /* seconds */
#define LOADGEN_MAX_MSGS        10000000 /* messages in one run */
#define LOADGEN_MAX_STEPS       1000     /* steps of a stepped profile */
#define LOADGEN_MAX_CONNECTIONS 4096
#define LOADGEN_MAX_TEXT        4096 /* bytes of --text */

/*
 * The schedule: when each message is due, as an offset from the start.
 * A run is a list of steps back to back, each with its own rate and
 * length; message j of step k is due j/rate_k seconds after the step
 * starts. Every profile is such a list:
 *   constant  one step, the whole run
 *   step      steps of --step-every seconds (the last one maybe shorter),
 *             step k at rate + k*step
 *   surge     the phases "before" (rate), "surge" (rate x factor) and
 *             "after" (rate), the empty ones left out
 */
struct loadgen_step {
	int64_t rate;     /* messages per second */
	int64_t start_s;  /* from the start of the run (filled by loadgen_sched_build) */
	int64_t len_s;    /* at least 1 */
	const char *name; /* a surge's phase; NULL in the other profiles (static text) */
};

#define LOADGEN_SCHED_WHY_CAP 160

struct loadgen_sched {
	int nsteps;
	int64_t duration_s;         /* the steps' lengths added up */
	uint64_t total;             /* messages in the run */
	struct loadgen_step *steps; /* [nsteps] */
	uint64_t *first; /* [nsteps + 1]: each step's first message; first[nsteps] == total */
	char why[LOADGEN_SCHED_WHY_CAP]; /* after a failure: which figure is out of range */
};

/*
 * loadgen_sched_build makes the schedule of n steps (copied, start_s
 * filled in order). ERR_INVAL when n is not 1..LOADGEN_MAX_STEPS, a rate
 * is not 1..LOADGEN_MAX_RATE, a length is below 1 or the lengths add up
 * to more than LOADGEN_MAX_DURATION; ERR_TOOBIG above LOADGEN_MAX_MSGS
 * messages (total is set). s->why says which. Release with
 * loadgen_sched_release (also after a failure).
 */
int loadgen_sched_build(struct loadgen_sched *s, const struct loadgen_step *steps, int n);
/*
 * loadgen_sched_init: the constant (step 0) or stepped profile, through
 * loadgen_sched_build. ERR_INVAL also when step < 0, duration is not
 * 1..LOADGEN_MAX_DURATION or step_every_s < 1 (a step longer than the run
 * is the whole run); errors and release as loadgen_sched_build's.
 */
int loadgen_sched_init(struct loadgen_sched *s, int64_t rate, int64_t step, int64_t step_every_s,
                       int64_t duration_s);
/*
 * loadgen_sched_surge: rate until at_s, rate x factor (rounded to the
 * nearest message per second) for for_s seconds, rate again until
 * duration_s. ERR_INVAL (s->why naming the setting) when rate is not
 * 1..LOADGEN_MAX_RATE, factor not 1..LOADGEN_MAX_SURGE_FACTOR or the surge
 * rate above LOADGEN_MAX_RATE, at_s < 0, for_s < 1, or the surge does not
 * end by duration_s; errors and release as loadgen_sched_build's.
 */
#define LOADGEN_MAX_SURGE_FACTOR 1000
int loadgen_sched_surge(struct loadgen_sched *s, int64_t rate, double factor, int64_t at_s,
                        int64_t for_s, int64_t duration_s);
void loadgen_sched_release(struct loadgen_sched *s);
/* The rate of step k, messages per second. */
int64_t loadgen_sched_rate(const struct loadgen_sched *s, int k);
/* When step k starts, microseconds from the start. */
int64_t loadgen_sched_step_start_us(const struct loadgen_sched *s, int k);
/* When message i (< total) is due, microseconds from the start; *step (may be NULL) its step. */
int64_t loadgen_sched_at_us(const struct loadgen_sched *s, uint64_t i, int *step);

/*
 * A latency histogram in microseconds, log-linear like HdrHistogram:
 * exact below 256 us, then 128 buckets per power of two (each at most
 * 0.8% wide), up to 2^32 us (71 minutes; larger values count there, the
 * exact maximum is kept apart). Not thread-safe; one writer.
 */
#define LOADGEN_HIST_SUB     128
#define LOADGEN_HIST_BITS    32
#define LOADGEN_HIST_BUCKETS ((LOADGEN_HIST_BITS - 6) * LOADGEN_HIST_SUB)

struct loadgen_hist {
	uint64_t n;
	int64_t max;
	uint32_t counts[LOADGEN_HIST_BUCKETS];
};

/* loadgen_hist_add counts one value (a negative one as 0). */
void loadgen_hist_add(struct loadgen_hist *h, int64_t us);
/*
 * loadgen_hist_pct returns the pct-th percentile (0 < pct <= 100): the
 * middle of the bucket holding the value of rank ceil(pct/100 * n), never
 * above the maximum; pct 100 is the exact maximum. -1 when empty.
 */
int64_t loadgen_hist_pct(const struct loadgen_hist *h, double pct);
/* The bucket of a value and the lowest value of a bucket (for tests). */
int loadgen_hist_bucket(int64_t us);
int64_t loadgen_hist_lowest(int bucket);

/* Who sends message i and what: shop i mod tenants, customer
 * (i div tenants) mod customers, text (i div tenants) mod ntexts. */
struct loadgen_mix {
	uint64_t first_phone;    /* phone_number_id of the first shop */
	uint64_t first_customer; /* wa_id of the first customer of every shop */
	int64_t tenants, customers;
	const char *const *texts;
	int ntexts;
};

void loadgen_pick(const struct loadgen_mix *m, uint64_t i, uint64_t *phone, uint64_t *customer,
                  const char **text);

/*
 * Message i's wamid: "wamid.LG", tools_scatter_u64(i) in 20 digits, "_" and
 * the run's tag (a random run id in 16 hex digits), so replies to other
 * runs' messages are not counted. The scattered number comes first: one
 * run's ids spread over all of the receiver's id index, among the earlier
 * runs' ids, as real wamids do.
 */
#define LOADGEN_TAG_CAP   17
#define LOADGEN_WAMID_CAP (8 + 20 + 1 + LOADGEN_TAG_CAP)
void loadgen_wamid_tag(uint64_t run_id, char out[LOADGEN_TAG_CAP]);
void loadgen_wamid(const char *tag, uint64_t i, char out[LOADGEN_WAMID_CAP]);
/* loadgen_wamid_index: 0 and *i when wamid is loadgen_wamid(tag, i) for an
 * i below total; ERR_NOTFOUND otherwise. */
int loadgen_wamid_index(const char *tag, const char *wamid, uint64_t total, uint64_t *i);

/* HTTP answers are counted by status, 100..599. */
#define LOADGEN_CODE_MIN 100
#define LOADGEN_CODE_MAX 599

/* What one run (and each of its steps or phases) measured, for the report. */
struct loadgen_step_figures {
	int64_t rate;     /* messages per second asked */
	int64_t start_us; /* when the step started */
	uint64_t sent, ok, lost;
	const struct loadgen_hist *webhook, *e2e;
	const char *name; /* the surge's phase, or NULL */
};

struct loadgen_report {
	const char *profile; /* "constant", "step" or "surge" */
	int64_t rate, step, step_every_s, duration_s;
	/* surge: the factor asked, the rate it makes, when and how long */
	double surge_factor;
	int64_t surge_rate, surge_at_s, surge_for_s;
	int64_t tenants, customers, connections;
	uint64_t sent, ok, errors, lost, duplicates, unexpected;
	uint64_t codes[LOADGEN_CODE_MAX - LOADGEN_CODE_MIN + 1];
	/* from the scheduled time to the 200, and to the first reply */
	const struct loadgen_hist *webhook, *e2e;
	double achieved_rate;    /* messages started per second */
	int64_t send_lag_p99_us; /* how late sends started, p99 */
	int64_t loop_lag_p99_us; /* the same without the sends that waited for a connection */
	uint64_t conn_waits;     /* sends that waited for a free connection */
	double drain_s;          /* collecting replies after the last answer */
	int nsteps;              /* 0 for a constant profile; the surge's phases are its steps */
	const struct loadgen_step_figures *steps;
};

/* loadgen_report_json appends the report as one JSON object, no newline. */
void loadgen_report_json(struct buf *out, const struct loadgen_report *r);
/* loadgen_report_text appends the report for people, lines ending in '\n'. */
void loadgen_report_text(struct buf *out, const struct loadgen_report *r);

/*
 * The text-message webhook of loadgen, from a template: name and texts are
 * escaped once (by jansson, as tools_webhook_build does), so each message
 * only copies bytes; the result is byte for byte tools_webhook_build's.
 */
struct loadgen_body {
	const char *const *texts; /* borrowed; text pointers are matched by identity */
	int ntexts;
	char **quoted; /* [ntexts]: each text as a JSON string literal */
	char *name;    /* the profile name as a JSON string literal */
};

/* loadgen_body_init: 0, or ERR_INVAL when name or a text is not UTF-8.
 * Release with loadgen_body_release (also after a failure). */
int loadgen_body_init(struct loadgen_body *b, const char *name, const char *const *texts,
                      int ntexts);
void loadgen_body_release(struct loadgen_body *b);
/*
 * loadgen_body_build writes into out (reset first) the webhook of one text
 * message: phone, from and wamid are used as they are (they hold nothing
 * to escape: digits and loadgen's wamids), text must be one of the
 * template's texts (by pointer), ts_s the Unix time in seconds.
 */
void loadgen_body_build(const struct loadgen_body *b, struct buf *out, const char *phone,
                        const char *from, const char *wamid, const char *text, int64_t ts_s);

/* ---- the run itself (loadgen.c, loadgen_send.c, loadgen_collect.c) ---- */

#include <pthread.h>
#include <stdatomic.h>

/* What the sender and the collector both read; filled before either starts. */
struct loadgen_plan {
	const struct loadgen_sched *sched;
	struct loadgen_mix mix;
	const char *webhook_url; /* {url}/webhooks/whatsapp */
	const char *secret;
	const char *name; /* the customers' profile name */
	char tag[LOADGEN_TAG_CAP];
	int64_t connections, timeout_ms;
	int64_t start_mono_us; /* message i is due at start_mono_us + loadgen_sched_at_us(i) */
	int64_t start_wall_us; /* the same instant on the wall clock */
};

/* What the send phase measured; the caller owns it (loadgen_sent_release). */
struct loadgen_sent {
	uint16_t *status; /* [total]: each message's HTTP status, 0 when it got no answer */
	uint64_t codes[LOADGEN_CODE_MAX - LOADGEN_CODE_MIN + 1];
	uint64_t errors;                   /* no answer: connection refused or reset, timeout */
	uint64_t conn_waits;               /* waited for a connection: all were busy */
	struct loadgen_hist webhook;       /* scheduled time to the 200 */
	struct loadgen_hist lag;           /* scheduled time to the start of the request */
	struct loadgen_hist loop_lag;      /* the same, of messages that found a connection free */
	struct loadgen_hist *step_webhook; /* [nsteps] */
	int64_t last_start_us;             /* when the last request started, from the start */
	char first_error[TOOLS_HTTP_ERR_CAP]; /* why the first request without an answer failed */
};

/*
 * loadgen_send runs the open-loop send phase on the calling thread: every
 * message starts at its scheduled time (or as soon after as a connection
 * is free), whatever became of the earlier ones, on one tools_http client
 * with up to plan->connections requests in flight. Returns when every
 * request has an answer or has failed: 0, or ERR_IO when the client or
 * epoll cannot be set up (out->first_error says why). out is filled even
 * then; release it with loadgen_sent_release.
 */
int loadgen_send(const struct loadgen_plan *plan, struct loadgen_sent *out);
void loadgen_sent_release(struct loadgen_sent *s);

/*
 * The collector reads the mock BSP's log (GET /_mock/replies, paged with
 * since=next) and ties each reply to its message through the wamid it
 * quotes. It runs on its own thread while messages are sent
 * (loadgen_collect_start / _stop) so the log never overflows and the
 * sender never waits for it; after _stop returns, the caller's thread owns
 * every field and polls on itself until nothing is pending.
 */
struct loadgen_collect {
	const struct loadgen_plan *plan;
	struct tools_fetch fetch; /* to {bsp} */
	uint64_t since;           /* the mock's next message index to read */
	uint8_t *replies;         /* [total]: replies quoting each message, at most 255 */
	uint64_t foreign;         /* replies quoting no message of this run */
	struct loadgen_hist e2e;  /* scheduled time to the first reply's received_at */
	struct loadgen_hist *step_e2e;
	const uint16_t *status; /* set once sending is over; then pending is kept */
	uint64_t pending;       /* answered 200, no reply yet (valid with status) */
	uint64_t poll_failures;
	char last_error[TOOLS_HTTP_ERR_CAP + 64];
	pthread_t thread;
	int running;
	atomic_int stop;
};

/* loadgen_collect_init: reading starts at the mock's message index since.
 * 0, or ERR_INVAL / ERR_IO with c->last_error set. */
int loadgen_collect_init(struct loadgen_collect *c, const struct loadgen_plan *plan,
                         const char *bsp, uint64_t since);
void loadgen_collect_release(struct loadgen_collect *c);
/* loadgen_collect_start / _stop run and join the polling thread. start: 0 or ERR_IO. */
int loadgen_collect_start(struct loadgen_collect *c);
void loadgen_collect_stop(struct loadgen_collect *c);
/*
 * loadgen_collect_poll reads one page of the log; *more is 1 when the page
 * was full (read again at once). 0, or ERR_IO / ERR_PROTO with
 * c->last_error set. Only from the thread that owns c.
 */
int loadgen_collect_poll(struct loadgen_collect *c, int *more);
/* loadgen_collect_set_status hands over the send results and counts pending. */
void loadgen_collect_set_status(struct loadgen_collect *c, const uint16_t *status);

#endif
