/*
 * test_aggregate.c - message aggregation under a traffic spike: the pure
 * plan (aggregate_plan: who merges with whom, the keeper, the order, the
 * context, the 4096-character cap and the SMS one, what is never merged),
 * the store's half (store_outbox_merge: the keeper's body, the merged rows'
 * state, merged_into and attempts, every refusal leaving the rows as they
 * were, statuses and start-up recovery leaving merged rows alone), and the
 * sender at spike level 2 against the scripted provider of send_fixture.h:
 * several pending replies to one customer go out as one send, and at level
 * 0 nothing merges.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "core/arena.h"
#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "send/aggregate.h"
#include "send/sender.h"
#include "send/wamsg.h"
#include "store/store.h"

#include "send_fixture.h"

/* ---- aggregate_plan ---------------------------------------------------------- */

#define A_PHONE "100000000000001"
#define A_TO    "919800000001"

/* row: a claimed text reply (strings in a). */
static struct outbox_row row(struct arena *a, int64_t id, int64_t created_at, const char *to,
                             const char *context, const char *text)
{
	return (struct outbox_row){
	        .id = id,
	        .tenant_id = 1,
	        .priority = PRIO_P2,
	        .state = OUTBOX_SENDING,
	        .phone_number_id = A_PHONE,
	        .to = to,
	        .reply_to = context ? context : "",
	        .body = wamsg_text(a, to, context, text),
	        .attempts = 1,
	        .created_at = created_at,
	        .provider_msg_id = "",
	        .provider = "",
	};
}

static json_t *parse_body(const char *body)
{
	json_error_t err;
	json_t *root = json_loads(body, 0, &err);
	if (!root)
		fail_msg("not JSON (%s): %s", err.text, body);
	return root;
}

/* The text and quoted id of a merged body, checked to be a whole text message. */
static void body_is(const char *body, const char *to, const char *context, const char *text)
{
	json_t *root = parse_body(body);
	assert_string_equal(json_string_value(json_object_get(root, "messaging_product")),
	                    "whatsapp");
	assert_string_equal(json_string_value(json_object_get(root, "type")), "text");
	char plus[64];
	snprintf(plus, sizeof(plus), "+%s", to);
	assert_string_equal(json_string_value(json_object_get(root, "to")), plus);
	json_t *ctx = json_object_get(root, "context");
	if (context)
		assert_string_equal(json_string_value(json_object_get(ctx, "message_id")), context);
	else
		assert_null(ctx);
	assert_string_equal(
	        json_string_value(json_object_get(json_object_get(root, "text"), "body")), text);
	json_decref(root);
}

static void test_plan_same_recipient_merged(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 8192);
	struct outbox_row rows[] = {
	        row(&a, 11, 1000, A_TO, "wamid.A1", "2 kg rice: Rs 120"),
	        row(&a, 12, 1001, "919800000002", "wamid.B1", "menu"),
	        row(&a, 13, 1002, A_TO, "wamid.A2", "Order #7 confirmed"),
	        row(&a, 14, 1003, A_TO, "wamid.A3", "sugar: out of stock"),
	};
	struct aggregate_group *g = NULL;
	int ng = -1;
	assert_int_equal(aggregate_plan(rows, 4, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 1);
	assert_int_equal(g[0].keeper, 0);
	assert_int_equal(g[0].nmerged, 2);
	assert_int_equal(g[0].merged[0], 2);
	assert_int_equal(g[0].merged[1], 3);
	body_is(g[0].body, A_TO, "wamid.A1",
	        "2 kg rice: Rs 120\n\nOrder #7 confirmed\n\nsugar: out of stock");
	/* the plan only reads: the rows are as they were */
	assert_int_equal(rows[2].state, OUTBOX_SENDING);
	body_is(rows[0].body, A_TO, "wamid.A1", "2 kg rice: Rs 120");
	arena_release(&a);
}

static void test_plan_keeps_apart_what_differs(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 8192);
	for (int what = 0; what < 5; what++) {
		struct outbox_row rows[] = {
		        row(&a, 1, 1000, A_TO, "wamid.1", "one"),
		        row(&a, 2, 1001, A_TO, "wamid.2", "two"),
		};
		switch (what) {
		case 0: rows[1].tenant_id = 2; break;
		case 1: rows[1].phone_number_id = "100000000000002"; break;
		case 2:
			rows[1].to = "919800000009";
			rows[1].body = wamsg_text(&a, rows[1].to, "wamid.2", "two");
			break;
		case 3: rows[1].provider = "sms"; break;
		default: rows[1].priority = PRIO_P1; break;
		}
		struct aggregate_group *g = NULL;
		int ng = -1;
		assert_int_equal(aggregate_plan(rows, 2, NULL, &a, &g, &ng), 0);
		if (ng != 0)
			fail_msg("rows differing in case %d were merged", what);
		assert_null(g);
	}
	/* the same pin merges */
	struct outbox_row pinned[] = {
	        row(&a, 1, 1000, A_TO, NULL, "one"),
	        row(&a, 2, 1001, A_TO, NULL, "two"),
	};
	pinned[0].provider = pinned[1].provider = "bsp2";
	struct aggregate_group *g = NULL;
	int ng = 0;
	assert_int_equal(aggregate_plan(pinned, 2, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 1);
	body_is(g[0].body, A_TO, NULL, "one\n\ntwo");
	arena_release(&a);
}

static void test_plan_never_p0(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 8192);
	struct outbox_row rows[] = {
	        row(&a, 1, 1000, A_TO, "wamid.1", "Payment of Rs 500 received"),
	        row(&a, 2, 1001, A_TO, "wamid.2", "Payment of Rs 200 received"),
	        row(&a, 3, 1002, A_TO, "wamid.3", "one"),
	        row(&a, 4, 1003, A_TO, "wamid.4", "two"),
	};
	rows[0].priority = rows[1].priority = PRIO_P0;
	rows[2].priority = rows[3].priority = PRIO_P1;
	struct aggregate_group *g = NULL;
	int ng = 0;
	assert_int_equal(aggregate_plan(rows, 4, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 1); /* the P1 pair only */
	assert_int_equal(g[0].keeper, 2);
	assert_int_equal(g[0].merged[0], 3);
	arena_release(&a);
}

static void test_plan_leaves_other_bodies_alone(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 8192);
	const struct wamsg_button bs[] = {{"confirm:7", "Confirm"}};
	const char *odd[] = {
	        wamsg_buttons(&a, A_TO, "wamid.X", "Order #7: Rs 240", bs, 1),
	        wamsg_template(&a, A_TO, "weekly_offer", "en", "10% off"),
	        /* a member the rewrite would drop */
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+919800000001\",\"type\":\"text\","
	        "\"text\":{\"body\":\"x\"},\"biz_opaque_callback_data\":\"order-7\"}",
	        /* a link preview the rewrite would turn off */
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+919800000001\",\"type\":\"text\","
	        "\"text\":{\"preview_url\":true,\"body\":\"https://shop.example\"}}",
	        /* a member said twice */
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+919800000001\",\"type\":\"text\","
	        "\"text\":{\"body\":\"x\"},\"type\":\"text\"}",
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+919800000001\",\"type\":\"text\","
	        "\"text\":{\"body\":\"\",\"preview_url\":false,\"body\":\"y\"}}",
	        /* a body holding a NUL that wamsg could not write back */
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+919800000001\",\"type\":\"text\","
	        "\"text\":{\"body\":\"a\\u0000b\"}}",
	        /* empty text; another recipient than the row's; not JSON */
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+919800000001\",\"type\":\"text\","
	        "\"text\":{\"body\":\"\"}}",
	        "{\"messaging_product\":\"whatsapp\",\"to\":\"+919800000002\",\"type\":\"text\","
	        "\"text\":{\"body\":\"x\"}}",
	        "{\"messaging_product\":",
	};
	size_t nodd = sizeof(odd) / sizeof(odd[0]);
	for (size_t i = 0; i < nodd + 2; i++) {
		struct outbox_row rows[] = {
		        row(&a, 1, 1000, A_TO, "wamid.1", "one"),
		        row(&a, 2, 1001, A_TO, "wamid.2", "two"),
		};
		if (i < nodd)
			rows[1].body = odd[i];
		else if (i == nodd) /* the provider may hold it already */
			rows[1].provider_msg_id = "wamid.OUT";
		else /* not claimed */
			rows[1].state = OUTBOX_PENDING;
		struct aggregate_group *g = NULL;
		int ng = -1;
		assert_int_equal(aggregate_plan(rows, 2, NULL, &a, &g, &ng), 0);
		if (ng != 0)
			fail_msg("case %zu was merged", i);
	}
	/* without recipient_type, preview_url or context it is still wamsg's text */
	struct outbox_row rows[] = {
	        row(&a, 1, 1000, A_TO, NULL, "one"),
	        row(&a, 2, 1001, A_TO, NULL, "two"),
	};
	rows[1].body = "{\"messaging_product\":\"whatsapp\",\"to\":\"919800000001\","
	               "\"type\":\"text\",\"text\":{\"body\":\"two\"}}";
	struct aggregate_group *g = NULL;
	int ng = 0;
	assert_int_equal(aggregate_plan(rows, 2, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 1);
	body_is(g[0].body, A_TO, NULL, "one\n\ntwo");
	arena_release(&a);
}

/* A text of n copies of the UTF-8 character ch (malloc'd). */
static char *repeat(const char *ch, int n)
{
	size_t len = strlen(ch);
	char *s = malloc(len * (size_t)n + 1);
	for (int i = 0; i < n; i++)
		memcpy(s + (size_t)i * len, ch, len);
	s[len * (size_t)n] = '\0';
	return s;
}

static size_t chars_of(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

static void test_plan_cap_4096_characters(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 65536);
	/* exactly 4096 characters of Devanagari (3 bytes each): merged whole */
	char *t1 = repeat("न", 2000), *t2 = repeat("न", 2094);
	struct outbox_row full[] = {
	        row(&a, 1, 1000, A_TO, "wamid.1", t1),
	        row(&a, 2, 1001, A_TO, "wamid.2", t2),
	};
	struct aggregate_group *g = NULL;
	int ng = 0;
	assert_int_equal(aggregate_plan(full, 2, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 1);
	json_t *root = parse_body(g[0].body);
	const char *text =
	        json_string_value(json_object_get(json_object_get(root, "text"), "body"));
	assert_int_equal(chars_of(text), AGGREGATE_TEXT_MAX);
	assert_null(strstr(text, "…")); /* not cut */
	json_decref(root);

	/* one character more: the second row is not cut but goes on its own,
	 * and starts the next group with the third */
	char *t3 = repeat("न", 2095), *t4 = repeat("a", 100);
	struct outbox_row over[] = {
	        row(&a, 1, 1000, A_TO, "wamid.1", t1),
	        row(&a, 2, 1001, A_TO, "wamid.2", t3),
	        row(&a, 3, 1002, A_TO, "wamid.3", t4),
	};
	assert_int_equal(aggregate_plan(over, 3, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 1);
	assert_int_equal(g[0].keeper, 1);
	assert_int_equal(g[0].nmerged, 1);
	assert_int_equal(g[0].merged[0], 2);
	root = parse_body(g[0].body);
	text = json_string_value(json_object_get(json_object_get(root, "text"), "body"));
	assert_int_equal(chars_of(text), 2095 + 2 + 100);
	json_decref(root);
	free(t1);
	free(t2);
	free(t3);
	free(t4);
	arena_release(&a);
}

static void test_plan_p1_fits_an_sms(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 65536);
	struct aggregate_opts sms = {.sms_fallback = 1};
	char *ascii228 = repeat("a", 228), *ascii229 = repeat("a", 229);
	char *hindi99 = repeat("न", 99), *hindi100 = repeat("न", 100);
	static const struct {
		int which; /* 0: 228+228 ASCII, 1: 229+229, 2: 99+99 Hindi, 3: 100+100 */
		enum outbox_prio prio;
		int sms;
		int want;
	} cases[] = {
	        {0, PRIO_P1, 1, 1}, /* 458 <= 459 */
	        {1, PRIO_P1, 1, 0}, /* 460 > 459: the gateway would cut it */
	        {2, PRIO_P1, 1, 1}, /* 200 <= 201 */
	        {3, PRIO_P1, 1, 0}, /* 202 > 201 */
	        {1, PRIO_P2, 1, 1}, /* P2 never goes by SMS */
	        {3, PRIO_P1, 0, 1}, /* no SMS gateway */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *t[] = {ascii228, ascii229, hindi99, hindi100};
		struct outbox_row rows[] = {
		        row(&a, 1, 1000, A_TO, NULL, t[cases[i].which]),
		        row(&a, 2, 1001, A_TO, NULL, t[cases[i].which]),
		};
		rows[0].priority = rows[1].priority = cases[i].prio;
		struct aggregate_group *g = NULL;
		int ng = -1;
		assert_int_equal(aggregate_plan(rows, 2, cases[i].sms ? &sms : NULL, &a, &g, &ng),
		                 0);
		if (ng != cases[i].want)
			fail_msg("case %zu: %d groups, want %d", i, ng, cases[i].want);
	}
	free(ascii228);
	free(ascii229);
	free(hindi99);
	free(hindi100);
	arena_release(&a);
}

static void test_plan_creation_order_and_context(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 8192);
	/* given in claim order (due time), not creation order; the oldest is the
	 * keeper even with the larger id, and equal times go by id */
	struct outbox_row rows[] = {
	        row(&a, 30, 2000, A_TO, "wamid.C", "third"),
	        row(&a, 25, 1000, A_TO, "wamid.A", "first"),
	        row(&a, 27, 2000, A_TO, "wamid.B", "second"),
	};
	struct aggregate_group *g = NULL;
	int ng = 0;
	assert_int_equal(aggregate_plan(rows, 3, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 1);
	assert_int_equal(g[0].keeper, 1);
	assert_int_equal(g[0].merged[0], 2);
	assert_int_equal(g[0].merged[1], 0);
	body_is(g[0].body, A_TO, "wamid.A", "first\n\nsecond\n\nthird");

	/* a keeper that quotes nothing quotes nothing after the merge */
	struct outbox_row bare[] = {
	        row(&a, 1, 1000, A_TO, NULL, "a \"quoted\" word\tand a tab"),
	        row(&a, 2, 1001, A_TO, "wamid.Z", "₹120"),
	};
	assert_int_equal(aggregate_plan(bare, 2, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 1);
	body_is(g[0].body, A_TO, NULL, "a \"quoted\" word\tand a tab\n\n₹120");
	arena_release(&a);
}

static void test_plan_bad_arguments(void **state)
{
	(void)state;
	struct arena a;
	arena_init(&a, 1024);
	struct aggregate_group *g = (struct aggregate_group *)&a;
	int ng = 7;
	struct outbox_row one = row(&a, 1, 1, A_TO, NULL, "x");
	assert_int_equal(aggregate_plan(&one, -1, NULL, &a, &g, &ng), ERR_INVAL);
	assert_int_equal(aggregate_plan(NULL, 2, NULL, &a, &g, &ng), ERR_INVAL);
	assert_int_equal(aggregate_plan(&one, 1, NULL, &a, NULL, &ng), ERR_INVAL);
	assert_int_equal(aggregate_plan(&one, 1, NULL, &a, &g, NULL), ERR_INVAL);
	assert_int_equal(aggregate_plan(&one, 1, NULL, NULL, &g, &ng), ERR_INVAL);
	assert_int_equal(aggregate_plan(&one, 1, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 0);
	assert_null(g);
	assert_int_equal(aggregate_plan(NULL, 0, NULL, &a, &g, &ng), 0);
	assert_int_equal(ng, 0);
	arena_release(&a);
}

/* ---- store_outbox_merge --------------------------------------------------------- */

struct sfix {
	char dir[64];
	char db[256]; /* the SQLite file in dir, or the PostgreSQL database's url */
	struct store *st;
	struct store_conn *c;
	struct arena a;
};

static int setup_store(void **state)
{
	struct sfix *f = calloc(1, sizeof(*f));
	snprintf(f->dir, sizeof(f->dir), "/tmp/munim-test-agg-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	if (test_pg_base())
		test_pg_create("agg", f->db, sizeof(f->db));
	else
		snprintf(f->db, sizeof(f->db), "%s/t.db", f->dir);
	if (store_open(f->db, &f->st) != 0 || store_connect(f->st, &f->c) != 0 ||
	    store_migrate(f->c, NULL) != 0)
		return -1;
	arena_init(&f->a, 8192);
	*state = f;
	return 0;
}

static int teardown_store(void **state)
{
	struct sfix *f = *state;
	arena_release(&f->a);
	store_disconnect(f->c);
	store_close(f->st);
	if (test_pg_base()) {
		test_pg_drop(f->db);
	} else {
		char path[300];
		const char *suffixes[] = {"", "-wal", "-shm"};
		for (int i = 0; i < 3; i++) {
			snprintf(path, sizeof(path), "%s%s", f->db, suffixes[i]);
			unlink(path);
		}
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* queue: a PENDING P2 text reply; its id. */
static int64_t queue(struct sfix *f, int64_t tenant, const char *to, const char *text)
{
	struct outbox_new o = {
	        .tenant_id = tenant,
	        .priority = PRIO_P2,
	        .phone_number_id = A_PHONE,
	        .to = to,
	        .reply_to = "wamid.IN",
	        .body = wamsg_text(&f->a, to, "wamid.IN", text),
	};
	int64_t id = 0;
	assert_int_equal(store_outbox_add(f->c, &o, &id), 0);
	return id;
}

/* claim_all claims every due row; how many. */
static int claim_all(struct sfix *f)
{
	struct outbox_row *rows;
	int n = 0;
	assert_int_equal(
	        store_outbox_claim(f->c, clock_wall_ms() + 1000, 100, PRIO_P3, &f->a, &rows, &n),
	        0);
	return n;
}

/* get: row id, whatever its state (strings in f->a); 0 when missing. */
static int get(struct sfix *f, int64_t id, struct outbox_row *out)
{
	for (int st = 0; st < OUTBOX_STATE_COUNT; st++) {
		struct outbox_row *rows;
		int n = 0;
		assert_int_equal(
		        store_outbox_list(f->c, (enum outbox_state)st, 1000, &f->a, &rows, &n), 0);
		for (int i = 0; i < n; i++) {
			if (rows[i].id == id) {
				*out = rows[i];
				return 1;
			}
		}
	}
	return 0;
}

static void test_merge_moves_rows(void **state)
{
	struct sfix *f = *state;
	int64_t k = queue(f, 1, A_TO, "one");
	int64_t m1 = queue(f, 1, A_TO, "two");
	int64_t m2 = queue(f, 1, A_TO, "three");
	int64_t other = queue(f, 1, "919800000002", "menu");
	assert_int_equal(claim_all(f), 4);
	const char *body = wamsg_text(&f->a, A_TO, "wamid.IN", "one\n\ntwo\n\nthree");
	const int64_t merged[] = {m1, m2};
	int64_t now = clock_wall_ms();
	assert_int_equal(store_outbox_merge(f->c, k, body, merged, 2, now), 0);

	struct outbox_row r;
	assert_true(get(f, k, &r));
	assert_int_equal(r.state, OUTBOX_SENDING);
	assert_string_equal(r.body, body);
	assert_int_equal(r.attempts, 1);
	assert_int_equal(r.merged_into, 0);
	for (int i = 0; i < 2; i++) {
		assert_true(get(f, merged[i], &r));
		assert_int_equal(r.state, OUTBOX_MERGED);
		assert_int_equal(r.merged_into, k);
		assert_int_equal(r.attempts, 0); /* the claim's attempt given back */
		assert_int_equal(r.updated_at, now);
	}
	assert_true(get(f, other, &r));
	assert_int_equal(r.state, OUTBOX_SENDING);
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P2][OUTBOX_SENDING], 2);
	assert_int_equal(counts[PRIO_P2][OUTBOX_MERGED], 2);
	assert_string_equal(outbox_state_name(OUTBOX_MERGED), "merged");

	/* the keeper's statuses are its own */
	assert_int_equal(store_outbox_accepted(f->c, k, "wamid.K", "bsp1", now, NULL), 0);
	struct outbox_status_update u = {.tenant_id = 1,
	                                 .provider_msg_id = "wamid.K",
	                                 .state = OUTBOX_DELIVERED,
	                                 .at = now + 1};
	assert_int_equal(store_outbox_status(f->c, &u, NULL), 0);
	/* a status naming a merged row (an echo of our row id) claims nothing */
	u = (struct outbox_status_update){.tenant_id = 1,
	                                  .provider_msg_id = "wamid.STRAY",
	                                  .row_hint = m1,
	                                  .state = OUTBOX_DELIVERED,
	                                  .at = now + 2};
	assert_int_equal(store_outbox_status(f->c, &u, NULL), ERR_NOTFOUND);
	/* start-up recovery takes SENDING rows only; a merged row is never resent */
	int n = -1;
	assert_int_equal(store_outbox_recover(f->c, now, &n), 0);
	assert_int_equal(n, 1); /* `other` */
	assert_int_equal(store_outbox_resend(f->c, m1, "sms", now, NULL), ERR_CONFLICT);
	assert_int_equal(store_outbox_fail(f->c, m1, OUTBOX_FAILED, 0, "x", now, NULL),
	                 ERR_CONFLICT);
	for (int i = 0; i < 2; i++) {
		assert_true(get(f, merged[i], &r));
		assert_int_equal(r.state, OUTBOX_MERGED);
		assert_int_equal(r.merged_into, k);
	}
	assert_true(get(f, k, &r));
	assert_int_equal(r.state, OUTBOX_DELIVERED);
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P2][OUTBOX_MERGED], 2);
	assert_int_equal(counts[PRIO_P2][OUTBOX_SENDING], 0);
	assert_int_equal(counts[PRIO_P2][OUTBOX_PENDING], 1);
	assert_int_equal(counts[PRIO_P2][OUTBOX_DELIVERED], 1);
}

/* unchanged: rows ids[0..n) still SENDING with their own bodies and attempt 1. */
static void unchanged(struct sfix *f, const int64_t *ids, const char *const *bodies, int n)
{
	for (int i = 0; i < n; i++) {
		struct outbox_row r;
		assert_true(get(f, ids[i], &r));
		assert_int_equal(r.state, OUTBOX_SENDING);
		assert_string_equal(r.body, bodies[i]);
		assert_int_equal(r.attempts, 1);
		assert_int_equal(r.merged_into, 0);
	}
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	assert_int_equal(counts[PRIO_P2][OUTBOX_MERGED], 0);
}

static void test_merge_refusals_change_nothing(void **state)
{
	struct sfix *f = *state;
	int64_t ids[4];
	const char *bodies[4];
	ids[0] = queue(f, 1, A_TO, "keeper");
	ids[1] = queue(f, 1, A_TO, "two");
	ids[2] = queue(f, 2, A_TO, "another shop's");
	ids[3] = queue(f, 1, "919800000002", "another customer's");
	assert_int_equal(claim_all(f), 4);
	for (int i = 0; i < 4; i++) {
		struct outbox_row r;
		assert_true(get(f, ids[i], &r));
		bodies[i] = r.body;
	}
	int64_t pending = queue(f, 1, A_TO, "not claimed");
	int64_t now = clock_wall_ms();
	const char *body = "{\"type\":\"text\"}";
	static const struct {
		int64_t merged[2];
		int n;
		int want;
	} cases[] = {
	        {{0}, 0, ERR_INVAL},            /* nothing to merge */
	        {{-1}, 1, ERR_INVAL},           /* the keeper into itself */
	        {{999999}, 1, ERR_NOTFOUND},    /* no such row */
	        {{1, 999999}, 2, ERR_NOTFOUND}, /* the second missing: the first undone */
	        {{2}, 1, ERR_CONFLICT},         /* another tenant */
	        {{3}, 1, ERR_CONFLICT},         /* another recipient */
	        {{-2}, 1, ERR_CONFLICT},        /* a row not claimed */
	        {{1, 1}, 2, ERR_CONFLICT},      /* the same row twice */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int64_t m[2];
		for (int j = 0; j < 2; j++) {
			int64_t v = cases[i].merged[j];
			m[j] = v == -1 ? ids[0] : v == -2 ? pending : v > 0 && v < 4 ? ids[v] : v;
		}
		int rc = store_outbox_merge(f->c, ids[0], body, m, cases[i].n, now);
		if (rc != cases[i].want)
			fail_msg("case %zu: %d, want %d (%s)", i, rc, cases[i].want,
			         store_errmsg(f->c));
		unchanged(f, ids, bodies, 4);
	}
	const int64_t one[] = {ids[1]};
	assert_int_equal(store_outbox_merge(f->c, ids[0], "", one, 1, now), ERR_INVAL);
	assert_int_equal(store_outbox_merge(f->c, ids[0], NULL, one, 1, now), ERR_INVAL);
	assert_int_equal(store_outbox_merge(f->c, ids[0], body, NULL, 1, now), ERR_INVAL);
	assert_int_equal(store_outbox_merge(f->c, 999999, body, one, 1, now), ERR_NOTFOUND);
	/* a keeper no longer SENDING */
	assert_int_equal(store_outbox_merge(f->c, pending, body, one, 1, now), ERR_CONFLICT);
	unchanged(f, ids, bodies, 4);
	/* a row the provider holds: its status (naming our row id) came while
	 * it was SENDING, and waits for the answer */
	struct outbox_status_update u = {.tenant_id = 1,
	                                 .provider_msg_id = "wamid.T",
	                                 .row_hint = ids[1],
	                                 .state = OUTBOX_DELIVERED,
	                                 .at = now};
	assert_int_equal(store_outbox_status(f->c, &u, NULL), 0);
	assert_int_equal(store_outbox_merge(f->c, ids[0], body, one, 1, now), ERR_CONFLICT);
	assert_non_null(strstr(store_errmsg(f->c), "already knows"));
	unchanged(f, ids, bodies, 4);
}

/* ---- the sender at spike level 2 --------------------------------------------------- */

/* put: a PENDING P2 reply to `to` quoting context, moved on the gauges as a
 * committing worker would. */
static int64_t put(struct fixture *f, struct arena *a, const char *to, const char *context,
                   const char *text)
{
	struct outbox_new o = {
	        .tenant_id = 1,
	        .priority = PRIO_P2,
	        .phone_number_id = T_PHONE,
	        .to = to,
	        .reply_to = context,
	        .body = wamsg_text(a, to, context, text),
	        .inbound_received_at = clock_wall_ms() - 5,
	};
	int64_t id = 0;
	assert_int_equal(store_outbox_add(f->c, &o, &id), 0);
	metrics_outbox_move(&f->app.metrics, PRIO_P2, -1, OUTBOX_PENDING);
	return id;
}

/* Three replies to one customer, one to another (both S_OK: last digit 1);
 * the sender runs with aggregation on (the controller's mode at spike
 * level 2) or off; how many sends the provider saw. */
static int run_with(struct fixture *f, int aggregate, int64_t ids[4])
{
	struct arena a;
	arena_init(&a, 4096);
	ids[0] = put(f, &a, "910000000001", "wamid.IN1", "2 kg rice: Rs 120");
	ids[1] = put(f, &a, "910000000001", "wamid.IN2", "Order #7 confirmed");
	ids[2] = put(f, &a, "910000000001", "wamid.IN3", "sugar: out of stock");
	ids[3] = put(f, &a, "910000000011", "wamid.IN4", "menu");
	arena_release(&a);
	atomic_store(&f->app.aggregate, aggregate);
	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	wait_settled(f, aggregate ? 2 : 4);
	if (aggregate) {
		/* the direct hand-over stands aside for replies; a P0 may still take it */
		assert_int_equal(sender_reserve(s, PRIO_P2), 0);
		assert_int_equal(sender_reserve(s, PRIO_P1), 0);
		int got = 0;
		for (int i = 0; i < 200 && !got; i++) {
			got = sender_reserve(s, PRIO_P0);
			if (!got) {
				struct timespec ts = {0, 10 * 1000000L};
				nanosleep(&ts, NULL);
			}
		}
		assert_true(got);
		sender_unreserve(s, NULL, 1);
	}
	sender_stop(s);
	return atomic_load(&prov.calls[S_OK]);
}

static void test_sender_merges_at_spike_level_2(void **state)
{
	struct fixture *f = *state;
	struct metrics *m = &f->app.metrics;
	int64_t ids[4];
	assert_int_equal(run_with(f, 1, ids), 2);
	assert_int_equal(atomic_load(&prov.bad_requests), 0);
	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row r;
	assert_true(find_row(f, OUTBOX_ACCEPTED, ids[0], &a, &r));
	assert_int_equal(r.attempts, 1);
	body_is(r.body, "910000000001", "wamid.IN1",
	        "2 kg rice: Rs 120\n\nOrder #7 confirmed\n\nsugar: out of stock");
	for (int i = 1; i < 3; i++) {
		assert_true(find_row(f, OUTBOX_MERGED, ids[i], &a, &r));
		assert_int_equal(r.merged_into, ids[0]);
		assert_int_equal(r.attempts, 0);
	}
	assert_true(find_row(f, OUTBOX_ACCEPTED, ids[3], &a, &r));
	body_is(r.body, "910000000011", "wamid.IN4", "menu");
	assert_int_equal(atomic_load(&m->outbox_merged), 2);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_MERGED]), 2);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_ACCEPTED]), 2);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_SENDING]), 0);
	assert_int_equal(atomic_load(&m->outbox[PRIO_P2][OUTBOX_PENDING]), 0);
	/* the gauges are the store's counts */
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	for (int st = 0; st < OUTBOX_STATE_COUNT; st++)
		assert_int_equal(counts[PRIO_P2][st], atomic_load(&m->outbox[PRIO_P2][st]));
	arena_release(&a);
}

static void test_sender_level_0_merges_nothing(void **state)
{
	struct fixture *f = *state;
	int64_t ids[4];
	assert_int_equal(run_with(f, 0, ids), 4);
	struct arena a;
	arena_init(&a, 4096);
	struct outbox_row r;
	assert_true(find_row(f, OUTBOX_ACCEPTED, ids[1], &a, &r));
	body_is(r.body, "910000000001", "wamid.IN2", "Order #7 confirmed");
	assert_int_equal(atomic_load(&f->app.metrics.outbox_merged), 0);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_MERGED]), 0);
	assert_int_equal(atomic_load(&f->app.metrics.outbox[PRIO_P2][OUTBOX_ACCEPTED]), 4);
	arena_release(&a);
}

/* One send slot: the claim takes A's oldest reply and gathers A's others
 * from the store; the texts merge, the menu with buttons cannot and goes
 * back unsent, its attempt given back, to go later on its own. */
static void test_sender_gathers_a_customers_waiting_replies(void **state)
{
	struct fixture *f = *state;
	struct arena a;
	arena_init(&a, 4096);
	int64_t ids[5];
	ids[0] = put(f, &a, "910000000001", "wamid.IN1", "2 kg rice: Rs 120");
	ids[1] = put(f, &a, "910000000011", "wamid.IN2", "menu");
	ids[2] = put(f, &a, "910000000001", "wamid.IN3", "Order #7 confirmed");
	static const struct wamsg_button b[] = {{"menu_stock", "Stock Check"}};
	struct outbox_new o = {
	        .tenant_id = 1,
	        .priority = PRIO_P2,
	        .phone_number_id = T_PHONE,
	        .to = "910000000001",
	        .reply_to = "wamid.IN4",
	        .body = wamsg_buttons(&a, "910000000001", "wamid.IN4", "Tap", b, 1),
	};
	assert_int_equal(store_outbox_add(f->c, &o, &ids[3]), 0);
	metrics_outbox_move(&f->app.metrics, PRIO_P2, -1, OUTBOX_PENDING);
	ids[4] = put(f, &a, "910000000001", "wamid.IN5", "sugar: out of stock");
	f->app.cfg.send_inflight = 1;
	atomic_store(&f->app.aggregate, 1);
	struct sender *s = NULL;
	assert_int_equal(sender_start(&f->app, &s), 0);
	wait_settled(f, 3);
	sender_stop(s);
	assert_int_equal(atomic_load(&prov.calls[S_OK]), 3);
	struct outbox_row r;
	assert_true(find_row(f, OUTBOX_ACCEPTED, ids[0], &a, &r));
	body_is(r.body, "910000000001", "wamid.IN1",
	        "2 kg rice: Rs 120\n\nOrder #7 confirmed\n\nsugar: out of stock");
	assert_true(find_row(f, OUTBOX_MERGED, ids[2], &a, &r));
	assert_true(find_row(f, OUTBOX_MERGED, ids[4], &a, &r));
	assert_true(find_row(f, OUTBOX_ACCEPTED, ids[1], &a, &r));
	/* the buttons went alone, after going back once: one attempt only */
	assert_true(find_row(f, OUTBOX_ACCEPTED, ids[3], &a, &r));
	assert_int_equal(r.attempts, 1);
	assert_int_equal(atomic_load(&f->app.metrics.outbox_merged), 2);
	int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
	assert_int_equal(store_outbox_counts(f->c, counts), 0);
	for (int st = 0; st < OUTBOX_STATE_COUNT; st++)
		assert_int_equal(counts[PRIO_P2][st],
		                 atomic_load(&f->app.metrics.outbox[PRIO_P2][st]));
	arena_release(&a);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_plan_same_recipient_merged),
	        cmocka_unit_test(test_plan_keeps_apart_what_differs),
	        cmocka_unit_test(test_plan_never_p0),
	        cmocka_unit_test(test_plan_leaves_other_bodies_alone),
	        cmocka_unit_test(test_plan_cap_4096_characters),
	        cmocka_unit_test(test_plan_p1_fits_an_sms),
	        cmocka_unit_test(test_plan_creation_order_and_context),
	        cmocka_unit_test(test_plan_bad_arguments),
	        cmocka_unit_test_setup_teardown(test_merge_moves_rows, setup_store, teardown_store),
	        cmocka_unit_test_setup_teardown(test_merge_refusals_change_nothing, setup_store,
	                                        teardown_store),
	        cmocka_unit_test_setup_teardown(test_sender_merges_at_spike_level_2, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_level_0_merges_nothing, setup_sender,
	                                        teardown_sender),
	        cmocka_unit_test_setup_teardown(test_sender_gathers_a_customers_waiting_replies,
	                                        setup_sender, teardown_sender),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
