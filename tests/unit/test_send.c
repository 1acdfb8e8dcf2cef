/*
 * test_send.c - the send module: classification of provider answers, the
 * backoff's bounds and growth (fixed random values, no sleeping), the
 * Cloud API bodies of wamsg (parsed back with jansson), and the sender
 * threads themselves against a scripted provider on 127.0.0.1 with a real
 * SQLite store: accepted, retried, failed, dead-lettered, timed out (with
 * and without the send journal), recovered after a crash, and the crash
 * window the journal closes: accepted by the provider, journaled, never
 * recorded; the next start records it from the journal and does not send
 * it again. The direct hand-over: slots reserved up to the limit, a row
 * born claimed sent without a claim, and a reply waiting in the outbox
 * keeping later ones of its priority from skipping it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "http/http.h"
#include "send/journal.h"
#include "send/send_internal.h"
#include "send/sender.h"
#include "send/wamsg.h"
#include "store/store.h"
#include "worker/worker.h"

#include "send_fixture.h"

/* ---- send_classify ------------------------------------------------------ */

static void test_classify_table(void **state)
{
	(void)state;
	static const struct {
		long status;
		int code;
		enum send_class want;
	} cases[] = {
	        {0, 0, SEND_RETRY}, /* timeout or connection error */
	        {200, 0, SEND_OK},
	        {201, 0, SEND_OK},
	        {500, 0, SEND_RETRY},
	        {502, 0, SEND_RETRY},
	        {503, 131016, SEND_RETRY},
	        {408, 0, SEND_RETRY},
	        {429, 0, SEND_RATE},
	        {429, 130429, SEND_RATE},
	        {400, 131056, SEND_RATE},
	        {400, 4, SEND_RATE},
	        {400, 80007, SEND_RATE},
	        {500, 131000, SEND_RETRY},
	        {400, 2, SEND_RETRY},
	        {400, 133004, SEND_RETRY},
	        {400, 131057, SEND_RETRY},
	        {400, 131026, SEND_PERMANENT},
	        {400, 131050, SEND_PERMANENT},
	        {400, 131047, SEND_PERMANENT},
	        {400, 368, SEND_PERMANENT},
	        {401, 190, SEND_RATE},
	        {400, 131048, SEND_RATE},
	        {400, 132000, SEND_PERMANENT},
	        {400, 132016, SEND_PERMANENT},
	        {400, 100, SEND_PERMANENT},
	        {400, 0, SEND_PERMANENT},
	        {401, 0, SEND_PERMANENT},
	        {404, 0, SEND_PERMANENT},
	        {400, 999999, SEND_PERMANENT}, /* unknown code on a 4xx */
	        {500, 999999, SEND_RETRY},     /* unknown code on a 5xx */
	        {500, 131026, SEND_PERMANENT}, /* the code decides, not the status */
	        {400, 131000, SEND_RETRY},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum send_class got = send_classify(cases[i].status, cases[i].code);
		if (got != cases[i].want)
			fail_msg("status %ld code %d: got %d, want %d", cases[i].status,
			         cases[i].code, got, cases[i].want);
	}
}

/* ---- backoff_delay_ms ----------------------------------------------------- */

static int64_t ceiling_of(int attempt, int64_t base, int64_t cap)
{
	int64_t c = base;
	for (int i = 1; i < attempt && c < cap; i++)
		c *= 2;
	return c < cap ? c : cap;
}

static void test_backoff_bounds_and_growth(void **state)
{
	(void)state;
	const int64_t base = 1000, cap = 300000;
	int64_t prev = 0;
	for (int a = 1; a <= 30; a++) {
		int64_t c = ceiling_of(a, base, cap);
		/* rnd = c hits the ceiling exactly, rnd = c + 1 the floor */
		assert_int_equal(backoff_delay_ms(a, base, cap, (uint64_t)c), c);
		assert_int_equal(backoff_delay_ms(a, base, cap, (uint64_t)c + 1), 0);
		/* the ceiling doubles until the cap, then stays */
		assert_true(c >= prev);
		if (a > 1 && prev < cap)
			assert_int_equal(c, prev * 2 < cap ? prev * 2 : cap);
		prev = c;
		static const uint64_t rnds[] = {0, 1, 123456789, 0xdeadbeefcafef00dULL, UINT64_MAX};
		for (size_t i = 0; i < sizeof(rnds) / sizeof(rnds[0]); i++) {
			int64_t d = backoff_delay_ms(a, base, cap, rnds[i]);
			assert_true(d >= 0 && d <= c);
		}
	}
	assert_int_equal(ceiling_of(1, base, cap), 1000);
	assert_int_equal(ceiling_of(3, base, cap), 4000);
	assert_int_equal(ceiling_of(30, base, cap), cap);
}

static void test_backoff_edges(void **state)
{
	(void)state;
	/* attempt < 1 counts as the first */
	assert_int_equal(backoff_delay_ms(0, 1000, 5000, 1000), 1000);
	assert_int_equal(backoff_delay_ms(-5, 1000, 5000, 1000), 1000);
	/* huge attempts and bases never overflow past the cap */
	int64_t d = backoff_delay_ms(1000000, 3600000, 86400000, UINT64_MAX);
	assert_true(d >= 0 && d <= 86400000);
	d = backoff_delay_ms(62, INT64_MAX / 2, INT64_MAX - 1, UINT64_MAX);
	assert_true(d >= 0);
	/* a base above the cap is cut to the cap */
	assert_int_equal(backoff_delay_ms(1, 10000, 500, 500), 500);
	/* nonsense inputs: no delay rather than a negative one */
	assert_int_equal(backoff_delay_ms(3, 0, 1000, 77), 0);
	assert_int_equal(backoff_delay_ms(3, 1000, 0, 77), 0);
	assert_int_equal(backoff_delay_ms(3, -1, 1000, 77), 0);
}

/* ---- wamsg ------------------------------------------------------------------ */

static json_t *parse(const char *body)
{
	json_error_t err;
	json_t *root = json_loads(body, 0, &err);
	if (!root)
		fail_msg("not JSON (%s): %s", err.text, body);
	return root;
}

static const char *str_at(json_t *root, const char *path)
{
	/* path: dotted object keys */
	char buf[256];
	snprintf(buf, sizeof(buf), "%s", path);
	json_t *v = root;
	for (char *save = NULL, *k = strtok_r(buf, ".", &save); k; k = strtok_r(NULL, ".", &save))
		v = json_object_get(v, k);
	return json_string_value(v);
}

static void test_wamsg_text_fields(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 4096);
	char *body = wamsg_text(&a, "919800000001", "wamid.IN1", "2 kg rice: ₹120 \"ok\"\nthanks");
	json_t *root = parse(body);
	assert_string_equal(str_at(root, "messaging_product"), "whatsapp");
	assert_string_equal(str_at(root, "recipient_type"), "individual");
	assert_string_equal(str_at(root, "to"), "+919800000001");
	assert_string_equal(str_at(root, "type"), "text");
	assert_string_equal(str_at(root, "text.body"), "2 kg rice: ₹120 \"ok\"\nthanks");
	assert_string_equal(str_at(root, "context.message_id"), "wamid.IN1");
	json_decref(root);

	/* no context when none is given; a '+' already there is not doubled */
	root = parse(wamsg_text(&a, "+919800000002", NULL, "hi"));
	assert_null(json_object_get(root, "context"));
	assert_string_equal(str_at(root, "to"), "+919800000002");
	json_decref(root);
	root = parse(wamsg_text(&a, "919800000002", "", "hi"));
	assert_null(json_object_get(root, "context"));
	json_decref(root);
	arena_release(&a);
}

static void test_wamsg_callback_splice(void **state)
{
	(void)state;
	struct arena a;
	struct buf b;
	arena_init(&a, 4096);
	buf_init(&b);
	char *body = wamsg_text(&a, "919800000001", "wamid.IN1", "hi");
	wamsg_with_callback(&b, body, 42);
	json_t *root = parse(b.data);
	assert_string_equal(str_at(root, "biz_opaque_callback_data"), "munim:42");
	assert_string_equal(str_at(root, "text.body"), "hi");
	assert_string_equal(str_at(root, "context.message_id"), "wamid.IN1");
	assert_int_equal(wamsg_callback_row(str_at(root, "biz_opaque_callback_data")), 42);
	json_decref(root);
	wamsg_with_callback(&b, "{ }", 7); /* an empty object stays valid JSON */
	root = parse(b.data);
	assert_int_equal(json_object_size(root), 1);
	json_decref(root);
	/* values that are not ours */
	assert_int_equal(wamsg_callback_row(NULL), 0);
	assert_int_equal(wamsg_callback_row(""), 0);
	assert_int_equal(wamsg_callback_row("order-7"), 0);
	assert_int_equal(wamsg_callback_row("munim:"), 0);
	assert_int_equal(wamsg_callback_row("munim:12x"), 0);
	assert_int_equal(wamsg_callback_row("munim:99999999999999999999"), 0);
	buf_release(&b);
	arena_release(&a);
}

static size_t utf8_chars(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			n++;
	return n;
}

static void test_wamsg_text_caps_and_bad_utf8(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 4096);
	/* 5000 Devanagari characters: cut to 4096 characters, the last "…" */
	char *long_text = malloc(5000 * 3 + 1);
	for (int i = 0; i < 5000; i++)
		memcpy(long_text + i * 3, "न", 3);
	long_text[5000 * 3] = '\0';
	json_t *root = parse(wamsg_text(&a, "91", NULL, long_text));
	const char *b = str_at(root, "text.body");
	assert_int_equal(utf8_chars(b), 4096);
	assert_string_equal(b + strlen(b) - 3, "…");
	json_decref(root);
	/* exactly 4096 characters stay whole */
	long_text[4096 * 3] = '\0';
	root = parse(wamsg_text(&a, "91", NULL, long_text));
	assert_string_equal(str_at(root, "text.body"), long_text);
	json_decref(root);
	free(long_text);

	/* bytes that are not UTF-8 become U+FFFD and the body stays valid JSON */
	root = parse(wamsg_text(&a, "91", NULL,
	                        "a\xff"
	                        "b\xc3(\x01"));
	assert_string_equal(str_at(root, "text.body"), "a\xef\xbf\xbd"
	                                               "b\xef\xbf\xbd(\x01");
	json_decref(root);
	arena_release(&a);
}

static void test_wamsg_buttons_fields(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 4096);
	const struct wamsg_button bs[] = {
	        {"confirm:42", "Confirm"},
	        {"cancel:42", "Cancel"},
	        {"menu_stock", "Stock"},
	        {"extra", "Fourth"},
	};
	json_t *root =
	        parse(wamsg_buttons(&a, "919800000001", "wamid.IN2", "Order #42: ₹240", bs, 2));
	assert_string_equal(str_at(root, "messaging_product"), "whatsapp");
	assert_string_equal(str_at(root, "recipient_type"), "individual");
	assert_string_equal(str_at(root, "to"), "+919800000001");
	assert_string_equal(str_at(root, "type"), "interactive");
	assert_string_equal(str_at(root, "context.message_id"), "wamid.IN2");
	assert_string_equal(str_at(root, "interactive.type"), "button");
	assert_string_equal(str_at(root, "interactive.body.text"), "Order #42: ₹240");
	json_t *arr = json_object_get(
	        json_object_get(json_object_get(root, "interactive"), "action"), "buttons");
	assert_int_equal(json_array_size(arr), 2);
	for (size_t i = 0; i < 2; i++) {
		json_t *btn = json_array_get(arr, i);
		assert_string_equal(str_at(btn, "type"), "reply");
		assert_string_equal(str_at(btn, "reply.id"), bs[i].id);
		assert_string_equal(str_at(btn, "reply.title"), bs[i].title);
	}
	json_decref(root);

	/* at most 3 buttons go out */
	root = parse(wamsg_buttons(&a, "91", NULL, "pick", bs, 4));
	arr = json_object_get(json_object_get(json_object_get(root, "interactive"), "action"),
	                      "buttons");
	assert_int_equal(json_array_size(arr), 3);
	assert_string_equal(str_at(json_array_get(arr, 2), "reply.id"), "menu_stock");
	json_decref(root);
	arena_release(&a);
}

static void test_wamsg_buttons_caps(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 4096);
	const struct wamsg_button long_title[] = {{"id1", "A title much longer than twenty"}};
	json_t *root = parse(wamsg_buttons(&a, "91", NULL, "x", long_title, 1));
	json_t *arr = json_object_get(
	        json_object_get(json_object_get(root, "interactive"), "action"), "buttons");
	assert_int_equal(utf8_chars(str_at(json_array_get(arr, 0), "reply.title")), 20);
	json_decref(root);

	/* no buttons: an interactive message without any would be refused, so
	 * it degrades to text */
	root = parse(wamsg_buttons(&a, "91", "wamid.X", "just text", long_title, 0));
	assert_string_equal(str_at(root, "type"), "text");
	assert_string_equal(str_at(root, "text.body"), "just text");
	assert_string_equal(str_at(root, "context.message_id"), "wamid.X");
	json_decref(root);
	arena_release(&a);
}

/* ---- the sender against a scripted provider (send_fixture.h) ---------------- */

/*
 * Queues a P2 reply to `to` from phone (strings in a), PENDING or born
 * claimed, and moves the gauge as a committing worker would. With given,
 * also what sender_give needs of it.
 */
/* new_row: a "hello" reply to `to` of priority prio (the body in a). */
static struct outbox_new new_row(struct arena *a, const char *to, const char *phone,
                                 enum outbox_prio prio)
{
	return (struct outbox_new){
	        .tenant_id = 1,
	        .priority = prio,
	        .phone_number_id = phone,
	        .to = to,
	        .reply_to = "wamid.IN",
	        .body = wamsg_text(a, to, "wamid.IN", "hello"),
	        .inbound_received_at = clock_wall_ms() - 5,
	};
}

static int64_t insert_row(struct fixture *f, const char *to, const char *phone, int claimed,
                          struct arena *a, struct outbox_row *given)
{
	struct outbox_new o = new_row(a, to, phone, PRIO_P2);
	o.claimed = claimed;
	int64_t id = 0;
	assert_int_equal(store_outbox_add(f->c, &o, &id), 0);
	metrics_outbox_move(&f->app.metrics, PRIO_P2, -1,
	                    claimed ? OUTBOX_SENDING : OUTBOX_PENDING);
	if (given)
		*given = (struct outbox_row){.id = id,
		                             .tenant_id = o.tenant_id,
		                             .priority = o.priority,
		                             .to = o.to,
		                             .phone_number_id = o.phone_number_id,
		                             .body = o.body,
		                             .inbound_received_at = o.inbound_received_at};
	return id;
}

static int64_t add_row(struct fixture *f, const char *to, const char *phone)
{
	struct arena a;
	arena_init(&a, 1024);
	int64_t id = insert_row(f, to, phone, 0, &a, NULL);
	arena_release(&a);
	return id;
}

static void sender_outcomes(struct fixture *f)
{
	int64_t ok = add_row(f, "910000000001", T_PHONE);
	int64_t dead = add_row(f, "910000000002", T_PHONE);
	int64_t failed = add_row(f, "910000000003", T_PHONE);
	int64_t retried = add_row(f, "910000000004", T_PHONE);
	int64_t slow = add_row(f, "910000000005", T_PHONE);
	int64_t rate = add_row(f, "910000000006", T_PHONE);
	int64_t no_id = add_row(f, "910000000007", T_PHONE);
	int64_t bad_phone = add_row(f, "910000000001", "1/../2");

	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	notify_signal(&f->app.outbox_ready);
	wait_settled(f, 8);
	sender_stop(s);

	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row row;
	assert_true(find_row(f, OUTBOX_ACCEPTED, ok, &a, &row));
	assert_string_equal(row.provider_msg_id, "wamid.P1.0");
	assert_int_equal(row.attempts, 1);

	/* ERR retryable 5xx every time: dead after send_max_attempts */
	assert_true(find_row(f, OUTBOX_DEAD, dead, &a, &row));
	assert_int_equal(row.attempts, 3);
	assert_int_equal(row.last_error_code, 131000);
	assert_int_equal(atomic_load(&prov.calls[S_ALWAYS_500]), 3);

	/* a permanent error code: failed at once with the provider's code */
	assert_true(find_row(f, OUTBOX_FAILED, failed, &a, &row));
	assert_int_equal(row.attempts, 1);
	assert_int_equal(row.last_error_code, 131026);
	assert_non_null(strstr(row.last_error, "undeliverable"));

	/* 503, 429 and a timeout are retried, then accepted */
	assert_true(find_row(f, OUTBOX_ACCEPTED, retried, &a, &row));
	assert_int_equal(row.attempts, 2);
	assert_string_equal(row.provider_msg_id, "wamid.P4.1");
	assert_true(find_row(f, OUTBOX_ACCEPTED, rate, &a, &row));
	assert_int_equal(row.attempts, 2);
	assert_int_equal(row.last_error_code, 130429);
	assert_true(find_row(f, OUTBOX_ACCEPTED, slow, &a, &row));
	assert_int_equal(row.attempts, 2);
	assert_non_null(strstr(row.last_error, "no answer"));

	/* a 2xx without a message id is not taken as accepted */
	assert_true(find_row(f, OUTBOX_DEAD, no_id, &a, &row));
	assert_non_null(strstr(row.last_error, "messages[0].id"));

	/* ERR_INVAL-like: a phone_number_id that cannot go into a URL */
	assert_true(find_row(f, OUTBOX_FAILED, bad_phone, &a, &row));
	assert_non_null(strstr(row.last_error, "invalid phone_number_id"));
	arena_release(&a);

	assert_int_equal(atomic_load(&prov.bad_requests), 0);
	struct metrics *m = &f->app.metrics;
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_ACCEPTED]), 4);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_FAILED]), 2);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_DEAD]), 2);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_PENDING]), 0);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_SENDING]), 0);
	assert_int_equal(atomic_load(&m->dead_letters), 2);
	/* 1 + 3 + 1 + 2 + 2 + 2 + 3 attempts, of which 4 succeeded; the bad
	 * phone_number_id is refused before any request (an error, no attempt) */
	assert_int_equal(atomic_load(&m->send_attempts), 14);
	assert_int_equal(atomic_load(&m->send_errors), 11);
	assert_int_equal(atomic_load(&m->reply_latency.count), 4);
}

static int64_t file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (int64_t)sb.st_size : -1;
}

static void test_sender_outcomes(void **state)
{
	struct fixture *f = *state;
	sender_outcomes(f);
	/* every acceptance was recorded: a clean stop leaves the journal empty */
	assert_int_equal(file_size(f->journal), 0);
}

static void test_sender_outcomes_without_journal(void **state)
{
	struct fixture *f = *state;
	free(f->app.cfg.send_journal);
	f->app.cfg.send_journal = strdup("");
	sender_outcomes(f);
	assert_int_equal(file_size(f->journal), -1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Counts the rows in state st. */
static int count_rows(struct fixture *f, enum outbox_state st)
{
	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row *rows;
	int n = 0;
	assert_int_equal(store_outbox_list(f->c, st, 1000, &a, &rows, &n), 0);
	arena_release(&a);
	return n;
}

static _Atomic int crashed;

/* The test hook: the process "dies" right after the journal sync. */
static int crash_after_sync(void *ud)
{
	(void)ud;
	atomic_store(&crashed, 1);
	return 1;
}

static void test_sender_journal_closes_crash_window(void **state)
{
	struct fixture *f = *state;
	int64_t id = add_row(f, "910000000001", T_PHONE);
	atomic_store(&crashed, 0);
	struct send_hooks hooks = {.after_journal_sync = crash_after_sync};
	struct sender *s = NULL;
	assert_int_equal(sender__start(&f->app, &hooks, &s), 0);
	notify_signal(&f->app.outbox_ready);
	for (int i = 0; i < 500 && !atomic_load(&crashed); i++)
		sleep_ms(20);
	assert_true(atomic_load(&crashed));
	sender_stop(s);

	/* the provider has it, the journal has it, the store does not */
	assert_int_equal(atomic_load(&prov.calls[S_OK]), 1);
	assert_int_equal(count_rows(f, OUTBOX_SENDING), 1);
	assert_true(file_size(f->journal) > 0);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_SENDING]), 1);

	/* the next start records it from the journal and does not send it */
	assert_int_equal(sender_start(&f->app, &s), 0);
	assert_int_equal(file_size(f->journal), 0);
	notify_signal(&f->app.outbox_ready);
	sleep_ms(300);
	sender_stop(s);
	assert_int_equal(atomic_load(&prov.calls[S_OK]), 1);
	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row row;
	assert_true(find_row(f, OUTBOX_ACCEPTED, id, &a, &row));
	assert_string_equal(row.provider_msg_id, "wamid.P1.0");
	assert_int_equal(row.attempts, 1);
	arena_release(&a);
	struct metrics *m = &f->app.metrics;
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_SENDING]), 0);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_PENDING]), 0);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_ACCEPTED]), 1);
	assert_int_equal(atomic_load(&m->send_attempts), 1);
}

static void test_sender_replays_journal_records(void **state)
{
	struct fixture *f = *state;
	/* a previous run: `sending` claimed and accepted but unrecorded,
	 * `done` recorded, and a record for a row this store never had */
	int64_t sending = add_row(f, "910000000001", T_PHONE);
	int64_t done = add_row(f, "910000000001", T_PHONE);
	int64_t other = add_row(f, "910000000001", T_PHONE);
	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_claim(f->c, clock_wall_ms(), 2, PRIO_P3, &a, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(
	        store_outbox_accepted(f->c, done, "wamid.STORE", "", clock_wall_ms(), NULL), 0);
	metrics_outbox_move(&f->app.metrics, PRIO_P2, OUTBOX_PENDING, OUTBOX_SENDING);
	metrics_outbox_move(&f->app.metrics, PRIO_P2, OUTBOX_PENDING, OUTBOX_ACCEPTED);
	struct journal *j = NULL;
	assert_int_equal(journal_open(f->journal, &j), 0);
	assert_int_equal(journal_append(j, done, "wamid.JOURNAL-DONE"), 0);
	assert_int_equal(journal_append(j, sending, "wamid.JOURNAL"), 0);
	assert_int_equal(journal_append(j, 999999, "wamid.NOWHERE"), 0);
	assert_int_equal(journal_sync(j), 0);
	journal_close(j);

	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	assert_int_equal(file_size(f->journal), 0);
	wait_settled(f, 3);
	sender_stop(s);
	struct outbox_row row;
	assert_true(find_row(f, OUTBOX_ACCEPTED, sending, &a, &row));
	assert_string_equal(row.provider_msg_id, "wamid.JOURNAL");
	/* a recorded acceptance is not overwritten */
	assert_true(find_row(f, OUTBOX_ACCEPTED, done, &a, &row));
	assert_string_equal(row.provider_msg_id, "wamid.STORE");
	/* the unclaimed row is sent as usual, and only it */
	assert_true(find_row(f, OUTBOX_ACCEPTED, other, &a, &row));
	assert_int_equal(atomic_load(&prov.calls[S_OK]), 1);
	arena_release(&a);
	struct metrics *m = &f->app.metrics;
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_SENDING]), 0);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_ACCEPTED]), 3);
}

static void test_sender_journal_truncated_once_recorded(void **state)
{
	struct fixture *f = *state;
	/* a tiny journal: truncated after each batch is recorded, and new
	 * sends wait for that whenever it holds more than 16 bytes */
	struct send_hooks hooks = {.journal_max = 1};
	for (int i = 0; i < 12; i++)
		add_row(f, "910000000001", T_PHONE);
	struct sender *s = NULL;
	assert_int_equal(sender__start(&f->app, &hooks, &s), 0);
	notify_signal(&f->app.outbox_ready);
	wait_settled(f, 12);
	/* the network thread truncates on its next pass (an idle one at worst) */
	for (int i = 0; i < 150 && file_size(f->journal) != 0; i++)
		sleep_ms(20);
	assert_int_equal(file_size(f->journal), 0);
	sender_stop(s);
	assert_int_equal(atomic_load(&prov.calls[S_OK]), 12);
	assert_int_equal(count_rows(f, OUTBOX_ACCEPTED), 12);
}

static void test_sender_start_err_io_bad_journal(void **state)
{
	struct fixture *f = *state;
	char path[160];
	snprintf(path, sizeof(path), "%s/no-such-dir/sendlog", f->dir);
	free(f->app.cfg.send_journal);
	f->app.cfg.send_journal = strdup(path);
	struct sender *s = (struct sender *)&s;
	assert_int_equal(sender_start(&f->app, &s), ERR_IO);
	assert_null(s);
	/* a directory cannot be read as a journal either */
	free(f->app.cfg.send_journal);
	f->app.cfg.send_journal = strdup(f->dir);
	assert_int_equal(sender_start(&f->app, &s), ERR_IO);
	assert_null(s);
}

static void test_sender_recovers_interrupted_sends(void **state)
{
	struct fixture *f = *state;
	int64_t id = add_row(f, "910000000001", T_PHONE);
	/* a previous run claimed the row and died mid-send */
	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_claim(f->c, clock_wall_ms(), 10, PRIO_P3, &a, &rows, &n), 0);
	assert_int_equal(n, 1);
	metrics_outbox_move(&f->app.metrics, PRIO_P2, OUTBOX_PENDING, OUTBOX_SENDING);

	/* the grace for the provider's status (10 s by default) is not what
	 * this test is about, and by default it equalled wait_settled's whole
	 * wait: on a busy machine the resend came after it */
	f->app.cfg.send_recover_grace_ms = 100;
	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	wait_settled(f, 1);
	sender_stop(s);
	struct outbox_row row;
	assert_true(find_row(f, OUTBOX_ACCEPTED, id, &a, &row));
	assert_int_equal(row.attempts, 2); /* the interrupted claim counted */
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_SENDING]), 0);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_ACCEPTED]), 1);
	arena_release(&a);
}

/* Queues n rows of priority prio for recipient to, in one transaction. */
static void queue_rows(struct fixture *f, const char *to, enum outbox_prio prio, int n)
{
	struct arena a;
	arena_init(&a, 1024);
	struct outbox_new o = new_row(&a, to, T_PHONE, prio);
	assert_int_equal(store_begin(f->c), 0);
	for (int i = 0; i < n; i++) {
		int64_t id;
		assert_int_equal(store_outbox_add(f->c, &o, &id), 0);
	}
	assert_int_equal(store_commit(f->c), 0);
	for (int i = 0; i < n; i++)
		metrics_outbox_move(&f->app.metrics, prio, -1, OUTBOX_PENDING);
	arena_release(&a);
}

/* A flood of P3 (a broadcast) does not hold a P0 back: with 50,000 P3
 * rows waiting, a P0 queued while they go out is sent next - after at most
 * the rows already claimed (one batch, --send-inflight) and a claim that
 * had begun before its commit - not behind the flood. */
static void test_p0_overtakes_a_p3_flood(void **state)
{
	struct fixture *f = *state;
	queue_rows(f, "910000000001", PRIO_P3, 50000); /* ends in S_OK */
	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	for (int i = 0; i < 1000 && atomic_load(&prov.calls[S_OK]) < 100; i++)
		sleep_ms(10);
	assert_true(atomic_load(&prov.calls[S_OK]) >= 100);
	int before = atomic_load(&prov.calls[S_OK]);
	queue_rows(f, "910000000009", PRIO_P0, 1); /* ends in S_URGENT */
	notify_signal(&f->app.outbox_ready);
	for (int i = 0; i < 1000 && atomic_load(&prov.calls[S_URGENT]) == 0; i++)
		sleep_ms(10);
	sender_stop(s);
	assert_int_equal(atomic_load(&prov.calls[S_URGENT]), 1);
	int p3_between = atomic_load(&prov.ok_before_urgent) - before;
	assert_in_range(p3_between, 0, 2 * f->app.cfg.send_inflight);
	assert_true(atomic_load(&prov.calls[S_OK]) < 50000); /* the flood was still going */
}

/* The row's breaker-state as serve's /metrics shows it. */
static int breaker_state_of(struct sender *s)
{
	struct buf b;
	buf_init(&b);
	sender_render_metrics(s, &b);
	const char *p = strstr(b.data, "munim_breaker_state{provider=\"bsp1\"");
	int st = -1;
	if (p && (p = strchr(p, '}')))
		st = atoi(p + 1);
	buf_release(&b);
	return st;
}

/*
 * The provider fails everything: after 2 failures in a row the breaker
 * opens, and the rows that come up meanwhile are held back in the store
 * without using an attempt; once it answers again the breaker probes it,
 * closes, and every row goes, on at most its second attempt.
 */
static void test_breaker_holds_rows_without_burning_attempts(void **state)
{
	struct fixture *f = *state;
	struct config *cfg = &f->app.cfg;
	cfg->breaker_failures = 2;
	cfg->breaker_successes = 1;
	cfg->breaker_open_ms = 300;
	cfg->breaker_jitter_pct = 0;
	cfg->send_max_attempts = 3;
	atomic_store(&prov.down, 1);
	queue_rows(f, "910000000001", PRIO_P2, 20); /* ends in S_OK */
	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	for (int i = 0; i < 500 && breaker_state_of(s) != BREAKER_OPEN; i++)
		sleep_ms(10);
	assert_int_equal(breaker_state_of(s), BREAKER_OPEN);
	sleep_ms(100);
	/* only the sends that failed used attempts: 2 opened it, at most the
	 * few in flight (4 slots) came back after */
	int failed = atomic_load(&prov.calls[0]);
	assert_in_range(failed, 2, 2 + 4);
	atomic_store(&prov.down, 0);
	wait_settled(f, 20);
	sender_stop(s);
	struct arena a;
	arena_init(&a, 64 * 1024);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_list(f->c, OUTBOX_ACCEPTED, 100, &a, &rows, &n), 0);
	assert_int_equal(n, 20);
	int retried = 0;
	for (int i = 0; i < n; i++) {
		assert_in_range(rows[i].attempts, 1, 2);
		retried += rows[i].attempts == 2;
	}
	assert_int_equal(retried, failed);
	assert_int_equal(atomic_load(&prov.calls[S_OK]), 20);
	arena_release(&a);
}

static void test_sender_idle_stop_is_prompt(void **state)
{
	struct fixture *f = *state;
	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	struct timespec ts = {0, 50 * 1000000L};
	nanosleep(&ts, NULL);
	int64_t t0 = clock_mono_us();
	sender_stop(s);
	assert_true(clock_mono_us() - t0 < 500000);
	sender_stop(NULL); /* a no-op */
}

/* Reserves a slot, retrying briefly: the recorder's own claims hold slots
 * for the moment a claim takes. */
static int reserve_soon(struct sender *s, enum outbox_prio prio)
{
	for (int i = 0; i < 200; i++) {
		if (sender_reserve(s, prio))
			return 1;
		sleep_ms(1);
	}
	return 0;
}

static void test_sender_direct_hand_over(void **state)
{
	struct fixture *f = *state;
	struct metrics *m = &f->app.metrics;
	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);

	/* no more reservations than slots (send_inflight 4) */
	for (int i = 0; i < 4; i++)
		assert_true(reserve_soon(s, PRIO_P2));
	assert_int_equal(sender_reserve(s, PRIO_P2), 0);
	sender_unreserve(s, NULL, 4);

	/* a row born claimed, given after its commit: sent without a claim */
	assert_true(reserve_soon(s, PRIO_P2));
	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row given;
	int64_t id = insert_row(f, "910000000001", T_PHONE, 1, &a, &given);
	sender_give(s, &given, 1);
	wait_settled(f, 1);
	struct outbox_row row;
	assert_true(find_row(f, OUTBOX_ACCEPTED, id, &a, &row));
	assert_int_equal(row.attempts, 1);
	assert_string_equal(row.provider_msg_id, "wamid.P1.0");
	assert_int_equal(atomic_load(&m->sends_direct), 1);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_SENDING]), 0);

	/* a reply waiting in the outbox goes first: no slot at its priority
	 * or below, a higher priority may still go directly */
	int64_t waiting = add_row(f, "910000000001", T_PHONE);
	assert_int_equal(sender_reserve(s, PRIO_P2), 0);
	assert_int_equal(sender_reserve(s, PRIO_P3), 0);
	assert_true(reserve_soon(s, PRIO_P0));
	sender_unreserve(s, NULL, 1);
	notify_signal(&f->app.outbox_ready);
	wait_settled(f, 2);
	assert_true(find_row(f, OUTBOX_ACCEPTED, waiting, &a, &row));
	assert_true(reserve_soon(s, PRIO_P2)); /* the outbox is empty again */
	sender_unreserve(s, NULL, 1);
	sender_stop(s);
	assert_int_equal(file_size(f->journal), 0);
	assert_int_equal(sender_reserve(NULL, PRIO_P0), 0);
	arena_release(&a);
}

/* in_claim: tries a direct hand-over's reservation while a claim holds its
 * slots. */
struct claim_probe {
	struct sender *_Atomic s;
	_Atomic int calls, reserved;
};

static void probe_claim(void *ud)
{
	struct claim_probe *p = ud;
	struct sender *s = atomic_load(&p->s);
	if (!s)
		return;
	if (sender_reserve(s, PRIO_P0)) {
		atomic_fetch_add(&p->reserved, 1);
		sender_unreserve(s, NULL, 1);
	}
	atomic_fetch_add(&p->calls, 1);
}

/*
 * A claim holds the slots it asks for until the store answers; it asks for
 * half the free ones, so a reply handed over directly meanwhile still finds
 * one (all of them would send every reply of that moment to the outbox).
 */
static void test_claim_leaves_slots_for_the_hand_over(void **state)
{
	struct fixture *f = *state;
	struct claim_probe probe = {0};
	struct send_hooks hooks = {.in_claim = probe_claim, .ud = &probe};
	struct sender *s = NULL;
	assert_int_equal(sender__start(&f->app, &hooks, &s), 0);
	atomic_store(&probe.s, s);
	add_row(f, "910000000001", T_PHONE);
	notify_signal(&f->app.outbox_ready);
	wait_settled(f, 1);
	assert_true(atomic_load(&probe.calls) >= 1);
	assert_int_equal(atomic_load(&probe.reserved), atomic_load(&probe.calls));
	sender_stop(s);
}

/*
 * A reply queued PENDING holds back the later replies to its own customer
 * in its transaction, not the rest: while a reply of its priority waits
 * from an earlier commit (as the metrics say), customer A's reply waits in
 * the outbox too; once that one has gone, customer B's reply is born
 * claimed (handed over, no claim) while A's second reply waits behind A's
 * first.
 */
static void test_runner_holds_back_only_the_waiting_customer(void **state)
{
	struct fixture *f = *state;
	struct tenant t = {.name = "Sharma Kirana",
	                   .phone_number_id = T_PHONE,
	                   .gstin = "",
	                   .state_code = "27",
	                   .upi_id = "",
	                   .owner_numbers = "",
	                   .address = ""};
	int64_t tenant;
	assert_int_equal(store_tenant_add(f->c, &t, &tenant), 0);
	const char *from[3] = {"919800000001", "919800000002", "919800000001"};
	const char *wamid[3] = {"wamid.A1", "wamid.B1", "wamid.A2"};
	struct inbox_entry e[3];
	enum inbox_put_result res[3];
	for (int i = 0; i < 3; i++)
		e[i] = (struct inbox_entry){.tenant_id = tenant,
		                            .kind = INBOX_MESSAGE,
		                            .ext_id = wamid[i],
		                            .status = "",
		                            .from = from[i],
		                            .name = "",
		                            .type = "text",
		                            .body = "hi",
		                            .context_id = "",
		                            .error_title = "",
		                            .callback_data = ""};
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_inbox_put(f->c, e, 3, res), 0);
	assert_int_equal(store_commit(f->c), 0);

	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	assert_true(reserve_soon(s, PRIO_P2)); /* the sender is ready */
	sender_unreserve(s, NULL, 1);
	struct worker_runner *r = worker_runner_new(&f->app, s);
	_Atomic int64_t *waiting = &f->app.metrics.outbox[PRIO_P2][OUTBOX_PENDING];
	int fin;
	worker_runner_begin(r);
	assert_int_equal(store_begin(f->c), 0);
	atomic_store(waiting, 1);
	assert_int_equal(worker_runner_entry(r, f->c, &e[0], &fin), 0);
	atomic_store(waiting, 0);
	assert_int_equal(worker_runner_entry(r, f->c, &e[1], &fin), 0);
	assert_int_equal(worker_runner_entry(r, f->c, &e[2], &fin), 0);
	assert_int_equal(worker_runner_flush(r, f->c), 0);
	/* before the commit, so the sender has touched none of them */
	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_list(f->c, OUTBOX_PENDING, 10, &a, &rows, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(rows[0].to, "919800000001");
	assert_string_equal(rows[1].to, "919800000001");
	assert_int_equal(store_outbox_list(f->c, OUTBOX_SENDING, 10, &a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_string_equal(rows[0].to, "919800000002");
	assert_int_equal(store_commit(f->c), 0);
	assert_int_equal(worker_runner_committed(r, 1), 3);
	/* A's two replies go out as one (the claim merges a customer's) */
	wait_settled(f, 2);
	assert_int_equal(atomic_load(&f->app.metrics.sends_direct), 1);
	worker_runner_free(r);
	sender_stop(s);
	arena_release(&a);
}

/*
 * A row this node claimed whose claim's answer never reached the sender
 * (the connection lost mid-commit, in a failover) is put back and sent,
 * its lost attempt given back; a row a worker holds (sender_hold), written
 * born claimed and waiting for its commit to be durable, is never taken,
 * however long it waits.
 */
static void test_sender_puts_back_lost_claims(void **state)
{
	struct fixture *f = *state;
	struct send_hooks hooks = {.lost_after_ms = 100};
	struct sender *s = NULL;
	assert_int_equal(sender__start(&f->app, &hooks, &s), 0);
	struct arena a;
	arena_init(&a, 4096);
	assert_true(reserve_soon(s, PRIO_P2));
	struct outbox_row given;
	int64_t held = insert_row(f, "910000000001", T_PHONE, 1, &a, &given);
	sender_hold(s, held);

	int64_t lost = add_row(f, "910000000001", T_PHONE);
	struct outbox_row *rows;
	int n;
	assert_int_equal(store_outbox_claim(f->c, clock_wall_ms(), 10, PRIO_P3, &a, &rows, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(rows[0].id, lost);
	metrics_outbox_move(&f->app.metrics, PRIO_P2, OUTBOX_PENDING, OUTBOX_SENDING);
	/* within one look (every 2 s) of the row's 100 ms */
	wait_settled(f, 1);
	struct outbox_row row;
	assert_true(find_row(f, OUTBOX_ACCEPTED, lost, &a, &row));
	assert_int_equal(row.attempts, 1);
	/* that look saw the held row too, older still */
	assert_true(find_row(f, OUTBOX_SENDING, held, &a, &row));

	sender_give(s, &given, 1);
	wait_settled(f, 2);
	assert_true(find_row(f, OUTBOX_ACCEPTED, held, &a, &row));
	assert_int_equal(row.attempts, 1);
	sender_stop(s);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_SENDING]), 0);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_PENDING]), 0);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_ACCEPTED]), 2);
	arena_release(&a);
}

static void test_sender_start_err_inval_without_token(void **state)
{
	struct fixture *f = *state;
	free(f->app.cfg.access_token);
	f->app.cfg.access_token = NULL;
	struct sender *s = (struct sender *)&s;
	assert_int_equal(sender_start(&f->app, &s), ERR_INVAL);
	assert_null(s);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_classify_table),
	        cmocka_unit_test(test_backoff_bounds_and_growth),
	        cmocka_unit_test(test_backoff_edges),
	        cmocka_unit_test(test_wamsg_text_fields),
	        cmocka_unit_test(test_wamsg_callback_splice),
	        cmocka_unit_test(test_wamsg_text_caps_and_bad_utf8),
	        cmocka_unit_test(test_wamsg_buttons_fields),
	        cmocka_unit_test(test_wamsg_buttons_caps),
	        cmocka_unit_test_setup_teardown(test_sender_outcomes, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_outcomes_without_journal, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_journal_closes_crash_window,
	                                        setup_sender, teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_replays_journal_records, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_journal_truncated_once_recorded,
	                                        setup_sender, teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_start_err_io_bad_journal, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_recovers_interrupted_sends,
	                                        setup_sender, teardown_sender),
	        cmocka_unit_test_setup_teardown(test_p0_overtakes_a_p3_flood, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_breaker_holds_rows_without_burning_attempts,
	                                        setup_sender, teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_idle_stop_is_prompt, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_puts_back_lost_claims, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_direct_hand_over, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_runner_holds_back_only_the_waiting_customer,
	                                        setup_sender, teardown_sender),
	        cmocka_unit_test_setup_teardown(test_claim_leaves_slots_for_the_hand_over,
	                                        setup_sender, teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_start_err_inval_without_token,
	                                        setup_sender, teardown_sender),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
