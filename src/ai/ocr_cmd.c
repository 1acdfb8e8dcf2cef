/*
 * ocr_cmd.c - `munim ocr`: the queue of photos and documents customers
 * sent, for the operator to read (munim has no OCR engine; the ERP queues
 * each image or document and tells the customer it will be read).
 *
 *   munim ocr [list] [--limit N]     items waiting, oldest first
 *   munim ocr done ID [NOTE ...]     mark item ID read (the note says what
 *                                    was done: "ordered 2 kg atta for them")
 *   munim ocr read [--limit N]       items marked read, with their notes
 *
 * Each item shows the shop, the customer's number, the message id (wamid),
 * the type, the Cloud API's media id and mime type, and the caption:
 *
 *   7  tenant 1  from 919800000001  image  at 2026-11-28T06:11:14Z
 *     message wamid.HBg...  media 1234567890 image/jpeg
 *     caption: meri list
 *
 * The operator fetches the photo with the media id (GET /{media-id} on the
 * Cloud API gives its download URL; Meta keeps it for 7 days). An item
 * queued before the inbox kept media ids shows "media (not known)".
 * Threading: a command of its own (one store connection).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ai/ai.h"
#include "cli/cli_internal.h"
#include "core/clock.h"
#include "core/err.h"

static const char *const ocr_opts[] = {CLI_STORE_OPTS, "limit", NULL};

static const char ocr_usage[] =
        "[list | read | done ID [NOTE ...]] [--db PATH] [--limit N]\n\n"
        "The photos and documents customers sent, waiting to be read (list, the default),\n"
        "or read already (read); done marks one read, with an optional note.";

#define OCR_MAX_POS  64
#define OCR_NOTE_MAX 1024

static void print_item(const struct ocr_item *o)
{
	time_t t = (time_t)(o->created_at / 1000);
	struct tm tm;
	char when[32];
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%lld  tenant %lld  from %s  %s  at %s\n  message %s  media %s%s%s\n",
	       (long long)o->id, (long long)o->tenant_id, o->from, o->type, when, o->ext_id,
	       *o->media_id ? o->media_id : "(not known)", *o->mime_type ? " " : "", o->mime_type);
	if (*o->caption)
		printf("  caption: %s\n", o->caption);
	if (o->state == OCR_DONE)
		printf("  read: %s\n", *o->note ? o->note : "(no note)");
}

static int list(struct store_conn *c, enum ocr_state st, int limit)
{
	struct arena a;
	struct ocr_item *items;
	int n;
	arena_init(&a, 16384);
	int rc = store_ocr_list(c, st, 0, limit, &a, &items, &n);
	for (int i = 0; rc == 0 && i < n; i++)
		print_item(&items[i]);
	if (rc == 0)
		printf("%d item(s) %s\n", n, st == OCR_QUEUED ? "waiting to be read" : "read");
	arena_release(&a);
	return rc;
}

static int done(struct store_conn *c, char **pos, int npos)
{
	char *end = NULL;
	long long id = npos >= 2 ? strtoll(pos[1], &end, 10) : 0;
	char note[OCR_NOTE_MAX] = "";
	if (npos < 2 || !end || *end || id <= 0) {
		fprintf(stderr,
		        "munim ocr: done needs the item's id (a number from `munim ocr`)\n");
		return ERR_INVAL;
	}
	for (int i = 2; i < npos; i++) {
		size_t len = strlen(note);
		snprintf(note + len, sizeof(note) - len, "%s%s", i > 2 ? " " : "", pos[i]);
	}
	int rc = store_ocr_done(c, id, note, clock_wall_ms());
	if (rc == 0)
		printf("item %lld marked read\n", id);
	return rc;
}

int cmd_ocr(int argc, char **argv)
{
	struct config cfg;
	struct store *st = NULL;
	struct store_conn *c = NULL;
	char *pos[OCR_MAX_POS];
	int npos = 0;
	int rc = cli_setup(&cfg, "ocr", ocr_usage, ocr_opts, argc, argv, pos, OCR_MAX_POS, &npos);
	if (rc != 0) {
		config_release(&cfg);
		return rc > 0 ? 0 : 2;
	}
	const char *what = npos > 0 ? pos[0] : "list";
	if (strcmp(what, "list") != 0 && strcmp(what, "read") != 0 && strcmp(what, "done") != 0) {
		fprintf(stderr, "munim ocr: unknown action \"%.64s\" (list, read, done)\n", what);
		config_release(&cfg);
		return 2;
	}
	rc = cli_open(&cfg, 1, &st, &c);
	if (rc != 0)
		goto out;
	if (strcmp(what, "done") == 0)
		rc = done(c, pos, npos);
	else
		rc = list(c, strcmp(what, "read") == 0 ? OCR_DONE : OCR_QUEUED, (int)cfg.limit);
	if (rc != 0 && rc != ERR_INVAL)
		fprintf(stderr, "munim ocr: %s\n", store_errmsg(c));
out:
	cli_close(st, c);
	config_release(&cfg);
	return rc == 0 ? 0 : 1;
}
