/*
 * test_envelope.c - webhook payloads → inbox entries.
 *
 * Every sample in tests/unit/data/wa-payloads/ (copies of Meta's doc
 * examples and pywa's fixtures, see the README there) is parsed and checked
 * field by field; inline payloads cover what the samples lack (button and
 * list replies, BSUID-only senders, caps) and the error paths.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/err.h"
#include "ingest/envelope.h"
#include "sample_data.h"

#define RECEIVED 1750000000123LL

struct fixture {
	struct arena a;
	struct envelope env;
	char *data;
	size_t len;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	arena_init(&f->a, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	arena_release(&f->a);
	free(f->data);
	free(f);
	return 0;
}

static void load(struct fixture *f, const char *name)
{
	free(f->data);
	f->data = sample_load(name, &f->len);
}

/* Parses a payload file expecting one change with n entries. */
static struct inbox_entry *parse_file(struct fixture *f, const char *name, int n)
{
	load(f, name);
	assert_int_equal(envelope_parse(f->data, f->len, RECEIVED, &f->a, &f->env), 0);
	assert_int_equal(f->env.nchanges, 1);
	assert_int_equal(f->env.changes[0].nentries, n);
	return f->env.changes[0].entries;
}

static int parse_str(struct fixture *f, const char *json)
{
	return envelope_parse(json, strlen(json), RECEIVED, &f->a, &f->env);
}

static void assert_pywa_message(const struct fixture *f, const struct inbox_entry *e)
{
	assert_string_equal(f->env.changes[0].phone_number_id, "1122334455667");
	assert_int_equal(e->kind, INBOX_MESSAGE);
	assert_string_equal(e->from, "972987654321");
	assert_string_equal(e->name, "Test Name");
	assert_string_equal(e->status, "");
	assert_int_equal(e->tenant_id, 0);
	assert_int_equal(e->received_at, RECEIVED);
	assert_int_equal(e->error_code, 0);
	assert_string_equal(e->error_title, "");
}

/* ---- the sample files ----------------------------------------------------- */

static void test_meta_text_message(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "meta_text_message.json", 1);
	assert_string_equal(f->env.changes[0].phone_number_id, "106540352242922");
	assert_int_equal(e->kind, INBOX_MESSAGE);
	assert_string_equal(e->ext_id,
	                    "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=");
	assert_string_equal(e->from, "16505551234");
	assert_string_equal(e->name, "Sheena Nelson");
	assert_string_equal(e->type, "text");
	assert_string_equal(e->body, "Does it come in another color?");
	assert_string_equal(e->context_id, "");
	assert_string_equal(e->status, "");
	assert_int_equal(e->sent_at, 1749416383000LL);
	assert_int_equal(e->received_at, RECEIVED);
	assert_int_equal(e->error_code, 0);
	assert_int_equal(f->env.nerrors, 0);
}

static void test_meta_status_sent(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "meta_status_sent.json", 1);
	assert_string_equal(f->env.changes[0].phone_number_id, "106540352242922");
	assert_int_equal(e->kind, INBOX_STATUS);
	assert_string_equal(e->ext_id,
	                    "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=");
	assert_string_equal(e->status, "sent");
	assert_string_equal(e->from, "16505551234");
	assert_int_equal(e->sent_at, 1750030073000LL);
	assert_int_equal(e->error_code, 0);
	assert_string_equal(e->error_title, "");
	assert_string_equal(e->body, "");
	assert_string_equal(e->name, "");
}

static void test_pywa_status_delivered(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "pywa_status_delivered.json", 1);
	assert_string_equal(f->env.changes[0].phone_number_id, "1122334455667");
	assert_int_equal(e->kind, INBOX_STATUS);
	assert_string_equal(e->ext_id, "wamid.xyzxyz");
	assert_string_equal(e->status, "delivered");
	assert_string_equal(e->from, "972987654321");
	assert_int_equal(e->sent_at, 1698266945000LL);
	assert_int_equal(e->error_code, 0);
}

static void test_pywa_status_failed_130472(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "pywa_status_failed_130472.json", 1);
	assert_int_equal(e->kind, INBOX_STATUS);
	assert_string_equal(e->ext_id, "wamid.xyzxyz");
	assert_string_equal(e->status, "failed");
	assert_string_equal(e->from, "972987654321");
	assert_int_equal(e->sent_at, 1689380458000LL);
	assert_int_equal(e->error_code, 130472);
	assert_string_equal(e->error_title, "User's number is part of an experiment");
	assert_int_equal(f->env.nerrors, 0); /* status errors are not value.errors */
}

static void test_pywa_template_quick_reply_button(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "pywa_template_quick_reply_button.json", 1);
	assert_pywa_message(f, e);
	assert_string_equal(e->ext_id, "wamid.xsidjw");
	assert_string_equal(e->type, "button");
	assert_string_equal(e->body, "callback_data");
	assert_string_equal(e->context_id, "wamid.xyzxyz==");
	assert_int_equal(e->sent_at, 1698269027000LL);
}

static void test_pywa_interactive_with_errors_131000(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "pywa_messages_with_errors_131000.json", 1);
	assert_pywa_message(f, e);
	assert_string_equal(e->ext_id, "wamid.wegrchytvwcggt=");
	assert_string_equal(e->type, "interactive");
	assert_string_equal(e->body, ""); /* no interactive object: nothing to read */
	assert_string_equal(e->context_id, "wamid.gvwegfretge==");
	assert_int_equal(e->sent_at, 1700505494000LL);
	assert_int_equal(f->env.nerrors, 1);
}

static void test_pywa_image(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "pywa_image_message.json", 1);
	assert_pywa_message(f, e);
	assert_string_equal(e->ext_id, "wamid.xyzxyz");
	assert_string_equal(e->type, "image");
	assert_string_equal(e->body, ""); /* no caption */
	assert_string_equal(e->media_id, "65463453");
	assert_string_equal(e->media_mime, "image/jpeg");
	assert_string_equal(e->context_id, "");
	assert_int_equal(e->sent_at, 1697043379000LL);
}

static void test_pywa_document(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "pywa_document_message.json", 1);
	assert_pywa_message(f, e);
	assert_string_equal(e->type, "document");
	assert_string_equal(e->body, "caption");
	assert_string_equal(e->media_id, "1234567890987654321");
	assert_string_equal(e->media_mime, "application/pdf");
	assert_string_equal(e->context_id, ""); /* forwarded: context without id */
	assert_int_equal(e->sent_at, 1697043666000LL);
}

static void test_pywa_location(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "pywa_location_message.json", 1);
	assert_pywa_message(f, e);
	assert_string_equal(e->type, "location");
	assert_string_equal(e->body, "");
	assert_int_equal(e->sent_at, 1697044557000LL);
}

static void test_pywa_order(void **state)
{
	struct fixture *f = *state;
	struct inbox_entry *e = parse_file(f, "pywa_order_message.json", 1);
	assert_pywa_message(f, e);
	assert_string_equal(e->type, "order");
	assert_string_equal(e->body, "order 3 HAMBURGER, 2 FRENCH_FRIES, 2 SODA");
	assert_int_equal(e->sent_at, 1697044668000LL);
}

/* Every file in the directory parses and yields entries (a new sample
 * dropped there without a test of its own still gets this much). */
static void test_every_sample_parses(void **state)
{
	struct fixture *f = *state;
	DIR *d = opendir(SAMPLE_DIR);
	struct dirent *de;
	int files = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);
		if (n < 5 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		load(f, de->d_name);
		assert_int_equal(envelope_parse(f->data, f->len, RECEIVED, &f->a, &f->env), 0);
		assert_true(f->env.nchanges >= 1);
		assert_true(f->env.changes[0].nentries >= 1);
		for (int i = 0; i < f->env.changes[0].nentries; i++) {
			const struct inbox_entry *e = &f->env.changes[0].entries[i];
			assert_non_null(e->ext_id);
			assert_non_null(e->from);
			assert_non_null(e->name);
			assert_non_null(e->type);
			assert_non_null(e->body);
			assert_non_null(e->context_id);
			assert_non_null(e->status);
			assert_non_null(e->error_title);
		}
		files++;
	}
	closedir(d);
	assert_int_equal(files, 10);
}

/* The JSON tree is freed inside envelope_parse: strings must be copies that
 * outlive the input buffer too. */
static void test_strings_outlive_input(void **state)
{
	struct fixture *f = *state;
	load(f, "meta_text_message.json");
	assert_int_equal(envelope_parse(f->data, f->len, RECEIVED, &f->a, &f->env), 0);
	memset(f->data, 'x', f->len);
	assert_string_equal(f->env.changes[0].entries[0].body, "Does it come in another color?");
	assert_string_equal(f->env.changes[0].entries[0].from, "16505551234");
}

/* ---- inline payloads ------------------------------------------------------- */

#define HEAD                                                                                       \
	"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"1\",\"changes\":[{"        \
	"\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","                    \
	"\"metadata\":{\"phone_number_id\":\"100000000000001\"},"
#define TAIL "}}]}]}"

static void test_button_reply_and_list_reply(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(
	        parse_str(f, HEAD "\"contacts\":[{\"profile\":{\"name\":\"Asha\"},\"wa_id\":"
	                          "\"919800000001\"}],"
	                          "\"messages\":["
	                          "{\"from\":\"919800000001\",\"id\":\"wamid.B1\",\"timestamp\":"
	                          "\"1700000000\","
	                          "\"type\":\"interactive\",\"context\":{\"from\":\"15550000000\","
	                          "\"id\":\"wamid.OUT1\"},"
	                          "\"interactive\":{\"type\":\"button_reply\",\"button_reply\":{"
	                          "\"id\":\"confirm:42\",\"title\":\"Confirm\"}}},"
	                          "{\"from\":\"919800000001\",\"id\":\"wamid.L1\",\"timestamp\":"
	                          "\"1700000001\","
	                          "\"type\":\"interactive\","
	                          "\"interactive\":{\"type\":\"list_reply\",\"list_reply\":{\"id\":"
	                          "\"menu_stock\",\"title\":\"Stock\",\"description\":\"d\"}}}"
	                          "]" TAIL),
	        0);
	assert_int_equal(f->env.changes[0].nentries, 2);
	struct inbox_entry *e = f->env.changes[0].entries;
	assert_string_equal(e[0].body, "confirm:42");
	assert_string_equal(e[0].context_id, "wamid.OUT1");
	assert_string_equal(e[0].name, "Asha");
	assert_int_equal(e[0].sent_at, 1700000000000LL);
	assert_string_equal(e[1].body, "menu_stock");
	assert_string_equal(e[1].type, "interactive");
}

static void test_bsuid_contact_without_wa_id(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(
	        parse_str(f, HEAD
	                  "\"contacts\":[{\"profile\":{\"name\":\"Bob\",\"username\":\"@bob\"},"
	                  "\"user_id\":\"US.13491208655302741918\"}],"
	                  "\"messages\":[{\"id\":\"wamid.U1\",\"timestamp\":\"1700000000\","
	                  "\"type\":\"text\",\"text\":{\"body\":\"hi\"}}]" TAIL),
	        0);
	assert_int_equal(f->env.changes[0].nentries, 1);
	struct inbox_entry *e = f->env.changes[0].entries;
	assert_string_equal(e->from, "US.13491208655302741918");
	assert_string_equal(e->name, "Bob");
	assert_string_equal(e->body, "hi");
}

static void test_bsuid_from_user_id(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, HEAD
	                           "\"contacts\":["
	                           "{\"profile\":{\"name\":\"Bob\"},\"user_id\":\"US.1\"},"
	                           "{\"profile\":{\"name\":\"Cy\"},\"user_id\":\"US.2\"}],"
	                           "\"messages\":[{\"from_user_id\":\"US.2\",\"id\":\"wamid.U2\","
	                           "\"type\":\"text\",\"text\":{\"body\":\"yo\"}}]" TAIL),
	                 0);
	struct inbox_entry *e = f->env.changes[0].entries;
	assert_int_equal(f->env.changes[0].nentries, 1);
	assert_string_equal(e->from, "US.2");
	assert_string_equal(e->name, "Cy");
	assert_int_equal(e->sent_at, RECEIVED); /* no timestamp: when we got it */
}

static void test_message_without_sender_skipped(void **state)
{
	struct fixture *f = *state;
	/* two contacts without wa_id, message without from: whose is it? */
	assert_int_equal(
	        parse_str(f,
	                  HEAD "\"contacts\":[{\"user_id\":\"US.1\"},{\"user_id\":\"US.2\"}],"
	                       "\"messages\":["
	                       "{\"id\":\"wamid.N1\",\"type\":\"text\",\"text\":{\"body\":\"?\"}},"
	                       "{\"from\":\"919800000001\",\"type\":\"text\",\"text\":{\"body\":"
	                       "\"no id\"}},"
	                       "{\"from\":\"919800000001\",\"id\":\"wamid.OK\",\"type\":\"text\","
	                       "\"text\":{\"body\":\"ok\"}}"
	                       "]" TAIL),
	        0);
	assert_int_equal(f->env.changes[0].nentries, 1);
	assert_string_equal(f->env.changes[0].entries[0].ext_id, "wamid.OK");
	assert_string_equal(f->env.changes[0].entries[0].name, "");
}

static void test_status_with_recipient_user_id(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, HEAD
	                           "\"statuses\":[{\"id\":\"wamid.S\",\"status\":\"read\","
	                           "\"timestamp\":\"1700000002\",\"recipient_user_id\":\"IN.77\"},"
	                           "{\"id\":\"wamid.T\",\"timestamp\":\"1700000002\"}]" TAIL),
	                 0);
	assert_int_equal(f->env.changes[0].nentries, 1); /* the one without status skipped */
	assert_string_equal(f->env.changes[0].entries[0].from, "IN.77");
	assert_string_equal(f->env.changes[0].entries[0].status, "read");
	assert_string_equal(f->env.changes[0].entries[0].callback_data, "");
}

static void test_status_echoes_callback_data(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, HEAD "\"statuses\":[{\"id\":\"wamid.S\",\"status\":\"sent\","
	                                   "\"timestamp\":\"1700000002\",\"recipient_id\":\"91\","
	                                   "\"biz_opaque_callback_data\":\"munim:42\"}]" TAIL),
	                 0);
	assert_string_equal(f->env.changes[0].entries[0].callback_data, "munim:42");
}

static void test_unknown_type_kept_with_empty_body(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, HEAD
	                           "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.X\","
	                           "\"type\":\"reaction\",\"reaction\":{\"emoji\":\"x\"}}]" TAIL),
	                 0);
	assert_int_equal(f->env.changes[0].nentries, 1);
	assert_string_equal(f->env.changes[0].entries[0].type, "reaction");
	assert_string_equal(f->env.changes[0].entries[0].body, "");
	assert_string_equal(f->env.changes[0].entries[0].media_id, "");
	assert_string_equal(f->env.changes[0].entries[0].media_mime, "");
}

/* Every media type: <type>.id and <type>.mime_type into the entry; a text
 * and a status carry none. */
static void test_media_id_and_mime_each_type(void **state)
{
	static const struct {
		const char *type, *id, *mime;
	} cases[] = {
	        {"image", "111", "image/jpeg"},         {"video", "222", "video/mp4"},
	        {"document", "333", "application/pdf"}, {"audio", "444", "audio/ogg; codecs=opus"},
	        {"sticker", "555", "image/webp"},
	};
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEAD "\"messages\":[");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		buf_printf(&b,
		           "{\"from\":\"91\",\"id\":\"wamid.M%zu\",\"type\":\"%s\","
		           "\"%s\":{\"mime_type\":\"%s\",\"sha256\":\"x\",\"id\":\"%s\"}},",
		           i, cases[i].type, cases[i].type, cases[i].mime, cases[i].id);
	buf_puts(&b, "{\"from\":\"91\",\"id\":\"wamid.T\",\"type\":\"text\","
	             "\"text\":{\"body\":\"hi\"},\"image\":{\"id\":\"999\"}}],"
	             "\"statuses\":[{\"id\":\"wamid.S\",\"status\":\"sent\","
	             "\"recipient_id\":\"91\",\"timestamp\":\"1\"}]" TAIL);
	assert_int_equal(envelope_parse(b.data, b.len, RECEIVED, &f->a, &f->env), 0);
	const struct inbox_entry *e = f->env.changes[0].entries;
	assert_int_equal(f->env.changes[0].nentries, 7);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(e[i].type, cases[i].type);
		assert_string_equal(e[i].media_id, cases[i].id);
		assert_string_equal(e[i].media_mime, cases[i].mime);
	}
	assert_string_equal(e[5].type, "text"); /* an image member on a text: ignored */
	assert_string_equal(e[5].media_id, "");
	assert_string_equal(e[5].media_mime, "");
	assert_int_equal(e[6].kind, INBOX_STATUS);
	assert_string_equal(e[6].media_id, "");
	assert_string_equal(e[6].media_mime, "");
	buf_release(&b);
}

/* A media message without an id or mime type, or with them not strings, is
 * kept with "" for them. */
static void test_media_without_id_kept(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f,
	                           HEAD "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.A\","
	                                "\"type\":\"image\",\"image\":{\"caption\":\"list\"}},"
	                                "{\"from\":\"91\",\"id\":\"wamid.B\",\"type\":\"document\","
	                                "\"document\":{\"id\":12345,\"mime_type\":[\"x\"]}},"
	                                "{\"from\":\"91\",\"id\":\"wamid.C\",\"type\":\"image\","
	                                "\"image\":\"nope\"}]" TAIL),
	                 0);
	const struct inbox_entry *e = f->env.changes[0].entries;
	assert_int_equal(f->env.changes[0].nentries, 3);
	assert_string_equal(e[0].body, "list");
	for (int i = 0; i < 3; i++) {
		assert_string_equal(e[i].media_id, "");
		assert_string_equal(e[i].media_mime, "");
	}
}

/* Long values are capped (id 64 characters, mime 100 bytes), the message
 * kept. */
static void test_media_long_values_capped(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEAD "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.LONGMEDIA\","
	                  "\"type\":\"image\",\"image\":{\"id\":\"");
	for (int i = 0; i < 300; i++)
		buf_putc(&b, (char)('0' + i % 10));
	buf_puts(&b, "\",\"mime_type\":\"image/");
	for (int i = 0; i < 300; i++)
		buf_putc(&b, 'x');
	buf_puts(&b, "\"}}]" TAIL);
	assert_int_equal(envelope_parse(b.data, b.len, RECEIVED, &f->a, &f->env), 0);
	assert_int_equal(f->env.changes[0].nentries, 1);
	const struct inbox_entry *e = &f->env.changes[0].entries[0];
	assert_int_equal(strlen(e->media_id), 64);
	assert_memory_equal(e->media_id, "0123456789", 10);
	assert_int_equal(strlen(e->media_mime), 100);
	assert_memory_equal(e->media_mime, "image/xxx", 9);
	buf_release(&b);
}

/* Characters that do not belong are dropped: the id goes into a URL path
 * (no '/', '?', '%', spaces) and both are printed on a terminal (no
 * controls, no non-ASCII); an id of only such characters is "". */
static void test_media_values_sanitized(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(
	        parse_str(f,
	                  HEAD "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.S1\","
	                       "\"type\":\"image\",\"image\":{\"id\":\"12/../34?x=%2f 5\\u001b\","
	                       "\"mime_type\":\"image/\\u001b[31mjpeg\\n\xe0\xa4\xae\"}},"
	                       "{\"from\":\"91\",\"id\":\"wamid.S2\",\"type\":\"audio\","
	                       "\"audio\":{\"id\":\"//??\",\"mime_type\":\"audio/"
	                       "ogg\\u0000evil\"}}]" TAIL),
	        0);
	const struct inbox_entry *e = f->env.changes[0].entries;
	assert_int_equal(f->env.changes[0].nentries, 2);
	assert_string_equal(e[0].media_id, "12..34x2f5");
	assert_string_equal(e[0].media_mime, "image/[31mjpeg");
	assert_string_equal(e[1].media_id, "");
	assert_string_equal(e[1].media_mime, "audio/ogg"); /* cut at the NUL */
}

static void test_text_truncated_at_utf8_boundary(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEAD "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.LONG\",\"type\":\"text\","
	                  "\"text\":{\"body\":\"");
	buf_putc(&b, 'a');
	for (int i = 0; i < 2000; i++)
		buf_puts(&b, "\xe0\xa4\xae"); /* म, 3 bytes: 1 + 6000 bytes */
	buf_puts(&b, "\"}}]" TAIL);
	assert_int_equal(envelope_parse(b.data, b.len, RECEIVED, &f->a, &f->env), 0);
	const char *body = f->env.changes[0].entries[0].body;
	size_t n = strlen(body);
	/* 1 + 3k ≤ 4096 → 4096 - 1 = 4095 = 3*1365 bytes exactly */
	assert_int_equal(n, 4096);
	assert_true((n - 1) % 3 == 0);
	assert_memory_equal(body + n - 3, "\xe0\xa4\xae", 3);
	buf_release(&b);
}

static void test_text_cut_inside_character(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEAD "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.LONG\",\"type\":\"text\","
	                  "\"text\":{\"body\":\"ab");
	for (int i = 0; i < 2000; i++)
		buf_puts(&b, "\xe0\xa4\xae");
	buf_puts(&b, "\"}}]" TAIL);
	assert_int_equal(envelope_parse(b.data, b.len, RECEIVED, &f->a, &f->env), 0);
	/* 2 + 3k: 4096 would split a character; cut to 2 + 3*1364 = 4094 */
	assert_int_equal(strlen(f->env.changes[0].entries[0].body), 4094);
	buf_release(&b);
}

static void test_several_entries_and_changes(void **state)
{
	struct fixture *f = *state;
	const char *json =
	        "{\"object\":\"whatsapp_business_account\",\"entry\":["
	        "{\"id\":\"1\",\"changes\":["
	        "{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
	        "\"metadata\":{\"phone_number_id\":\"111\"},"
	        "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.A\",\"type\":\"text\",\"text\":{"
	        "\"body\":\"a\"}}]}},"
	        "{\"field\":\"account_update\",\"value\":{\"event\":\"x\"}}]},"
	        "{\"id\":\"2\",\"changes\":["
	        "{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\","
	        "\"metadata\":{\"phone_number_id\":\"222\"},"
	        "\"statuses\":[{\"id\":\"wamid.B\",\"status\":\"sent\",\"recipient_id\":\"91\"}],"
	        "\"errors\":[{\"code\":1},{\"code\":2}]}},"
	        "{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\"}}]},"
	        "\"not an object\"]}";
	assert_int_equal(parse_str(f, json), 0);
	assert_int_equal(f->env.nchanges, 3);
	assert_string_equal(f->env.changes[0].phone_number_id, "111");
	assert_int_equal(f->env.changes[0].nentries, 1);
	assert_string_equal(f->env.changes[1].phone_number_id, "222");
	assert_int_equal(f->env.changes[1].nentries, 1);
	assert_int_equal(f->env.changes[1].entries[0].kind, INBOX_STATUS);
	assert_string_equal(f->env.changes[2].phone_number_id, ""); /* no metadata */
	assert_int_equal(f->env.changes[2].nentries, 0);
	assert_int_equal(f->env.nerrors, 2);
}

static void build_many(struct buf *b, int n)
{
	buf_puts(b, HEAD "\"messages\":[");
	for (int i = 0; i < n; i++)
		buf_printf(b,
		           "%s{\"from\":\"91\",\"id\":\"wamid.%d\",\"type\":\"text\","
		           "\"text\":{\"body\":\"m\"}}",
		           i ? "," : "", i);
	buf_puts(b, "]" TAIL);
}

static void test_1000_entries_accepted(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b);
	build_many(&b, 1000);
	assert_int_equal(envelope_parse(b.data, b.len, RECEIVED, &f->a, &f->env), 0);
	assert_int_equal(f->env.changes[0].nentries, 1000);
	assert_string_equal(f->env.changes[0].entries[999].ext_id, "wamid.999");
	buf_release(&b);
}

/* Over Meta's 1000 per POST: refused whole (ERR_TOOBIG, answered 413), not
 * cut, so nothing is dropped after a 200. */
static void test_1001_entries_err_toobig(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b);
	build_many(&b, 1001);
	assert_int_equal(envelope_parse(b.data, b.len, RECEIVED, &f->a, &f->env), ERR_TOOBIG);
	assert_int_equal(f->env.nchanges, 0);
	buf_release(&b);
}

static void test_not_json_err_proto(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, "not json"), ERR_PROTO);
	assert_int_equal(parse_str(f, ""), ERR_PROTO);
	assert_int_equal(parse_str(f, "{\"object\":\"whatsapp_business_account\",\"entry\":["),
	                 ERR_PROTO);
	assert_int_equal(parse_str(f, "[1,2]"), ERR_PROTO);
	assert_int_equal(envelope_parse(NULL, 0, RECEIVED, &f->a, &f->env), ERR_PROTO);
	/* the buffer is not NUL-terminated: only len bytes count */
	const char *json = "{\"object\":\"whatsapp_business_account\",\"entry\":[]}garbage";
	assert_int_equal(envelope_parse(json, strlen(json) - 7, RECEIVED, &f->a, &f->env), 0);
	assert_int_equal(envelope_parse(json, strlen(json), RECEIVED, &f->a, &f->env), ERR_PROTO);
}

static void test_wrong_object_err_proto(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, "{\"object\":\"page\",\"entry\":[]}"), ERR_PROTO);
	assert_int_equal(parse_str(f, "{\"entry\":[]}"), ERR_PROTO);
	assert_int_equal(parse_str(f, "{\"object\":7,\"entry\":[]}"), ERR_PROTO);
}

static void test_missing_entry_err_proto(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, "{\"object\":\"whatsapp_business_account\"}"), ERR_PROTO);
	assert_int_equal(parse_str(f, "{\"object\":\"whatsapp_business_account\",\"entry\":{}}"),
	                 ERR_PROTO);
}

static void test_empty_entry_ok(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, "{\"object\":\"whatsapp_business_account\",\"entry\":[]}"),
	                 0);
	assert_int_equal(f->env.nchanges, 0);
}

static void test_long_id_skipped_not_cut(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b);
	buf_puts(&b, HEAD "\"messages\":[{\"from\":\"91\",\"type\":\"text\",\"id\":\"");
	for (int i = 0; i < 300; i++)
		buf_putc(&b, 'w');
	buf_puts(&b, "\"}]" TAIL);
	assert_int_equal(envelope_parse(b.data, b.len, RECEIVED, &f->a, &f->env), 0);
	assert_int_equal(f->env.changes[0].nentries, 0);
	buf_release(&b);
}

static void test_nul_in_text_cut(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, HEAD
	                           "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.Z\","
	                           "\"type\":\"text\",\"text\":{\"body\":\"ab\\u0000cd\"}}]" TAIL),
	                 0);
	assert_string_equal(f->env.changes[0].entries[0].body, "ab");
}

static void test_bad_timestamp_uses_received(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(
	        parse_str(f,
	                  HEAD "\"messages\":["
	                       "{\"from\":\"91\",\"id\":\"wamid.1\",\"timestamp\":\"12ab\"},"
	                       "{\"from\":\"91\",\"id\":\"wamid.2\",\"timestamp\":1700000000},"
	                       "{\"from\":\"91\",\"id\":\"wamid.3\",\"timestamp\":\"-5\"}]" TAIL),
	        0);
	assert_int_equal(f->env.changes[0].entries[0].sent_at, RECEIVED);
	assert_int_equal(f->env.changes[0].entries[1].sent_at, 1700000000000LL);
	assert_int_equal(f->env.changes[0].entries[2].sent_at, RECEIVED);
}

/* An integer beyond int64 is valid JSON: the body is taken (jansson refused
 * it); a quantity that large skips its item, a code reads as 0, a
 * timestamp falls back to received_at. */
static void test_big_integers_accepted(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(
	        parse_str(f, HEAD
	                  "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.O\",\"type\":\"order\","
	                  "\"timestamp\":99999999999999999999,\"order\":{\"product_items\":["
	                  "{\"product_retailer_id\":\"RICE\",\"quantity\":99999999999999999999},"
	                  "{\"product_retailer_id\":\"SODA\",\"quantity\":2}]}}],"
	                  "\"statuses\":[{\"id\":\"wamid.S\",\"status\":\"failed\","
	                  "\"timestamp\":\"1700000002\",\"recipient_id\":\"91\","
	                  "\"errors\":[{\"code\":-99999999999999999999,\"title\":\"x\"}]}]" TAIL),
	        0);
	struct inbox_entry *e = f->env.changes[0].entries;
	assert_int_equal(f->env.changes[0].nentries, 2);
	assert_string_equal(e[0].body, "order 2 SODA");
	assert_int_equal(e[0].sent_at, RECEIVED);
	assert_int_equal(e[1].error_code, 0);
	assert_string_equal(e[1].error_title, "x");
	assert_int_equal(e[1].sent_at, 1700000002000LL);
}

/* Nesting past JSONR_MAX_DEPTH anywhere refuses the body; below it, an odd
 * deep field is only skipped. */
static void test_deep_nesting_err_proto(void **state)
{
	struct fixture *f = *state;
	struct buf b;
	buf_init(&b);
	for (int depth = 50; depth <= 80; depth += 30) {
		buf_reset(&b);
		buf_puts(&b, HEAD "\"deep\":");
		for (int i = 0; i < depth; i++)
			buf_putc(&b, '[');
		for (int i = 0; i < depth; i++)
			buf_putc(&b, ']');
		buf_puts(&b, ",\"messages\":[{\"from\":\"91\",\"id\":\"wamid.D\"}]" TAIL);
		assert_int_equal(envelope_parse(b.data, b.len, RECEIVED, &f->a, &f->env),
		                 depth == 50 ? 0 : ERR_PROTO);
	}
	buf_release(&b);
}

static void test_escapes_decoded(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(
	        parse_str(f, HEAD
	                  "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.E\","
	                  "\"type\":\"text\",\"text\":{\"body\":"
	                  "\"\\u091a\\u093e\\u0935\\u0932 \\\"2kg\\\"\\n\\ud83d\\ude00\"}}]" TAIL),
	        0);
	assert_string_equal(
	        f->env.changes[0].entries[0].body,
	        "\xe0\xa4\x9a\xe0\xa4\xbe\xe0\xa4\xb5\xe0\xa4\xb2 \"2kg\"\n\xf0\x9f\x98\x80");
}

static void test_invalid_utf8_err_proto(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(parse_str(f, HEAD
	                           "\"messages\":[{\"from\":\"91\",\"id\":\"wamid.E\","
	                           "\"type\":\"text\",\"text\":{\"body\":\"\xc0\xaf\"}}]" TAIL),
	                 ERR_PROTO);
	assert_int_equal(f->env.nchanges, 0);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	        T(test_meta_text_message),
	        T(test_meta_status_sent),
	        T(test_pywa_status_delivered),
	        T(test_pywa_status_failed_130472),
	        T(test_pywa_template_quick_reply_button),
	        T(test_pywa_interactive_with_errors_131000),
	        T(test_pywa_image),
	        T(test_pywa_document),
	        T(test_pywa_location),
	        T(test_pywa_order),
	        T(test_every_sample_parses),
	        T(test_strings_outlive_input),
	        T(test_button_reply_and_list_reply),
	        T(test_bsuid_contact_without_wa_id),
	        T(test_bsuid_from_user_id),
	        T(test_message_without_sender_skipped),
	        T(test_status_with_recipient_user_id),
	        T(test_status_echoes_callback_data),
	        T(test_unknown_type_kept_with_empty_body),
	        T(test_media_id_and_mime_each_type),
	        T(test_media_without_id_kept),
	        T(test_media_long_values_capped),
	        T(test_media_values_sanitized),
	        T(test_text_truncated_at_utf8_boundary),
	        T(test_text_cut_inside_character),
	        T(test_several_entries_and_changes),
	        T(test_1000_entries_accepted),
	        T(test_1001_entries_err_toobig),
	        T(test_not_json_err_proto),
	        T(test_wrong_object_err_proto),
	        T(test_missing_entry_err_proto),
	        T(test_empty_entry_ok),
	        T(test_long_id_skipped_not_cut),
	        T(test_nul_in_text_cut),
	        T(test_bad_timestamp_uses_received),
	        T(test_big_integers_accepted),
	        T(test_deep_nesting_err_proto),
	        T(test_escapes_decoded),
	        T(test_invalid_utf8_err_proto),
	};
#undef T
	return cmocka_run_group_tests(tests, NULL, NULL);
}
