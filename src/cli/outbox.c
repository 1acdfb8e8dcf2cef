/*
 * outbox.c - `munim outbox`: counts of outgoing messages by priority and
 * state; with --dead, the dead-lettered rows and why they died; with
 * --merged, the replies merged into another under a traffic spike and the
 * row whose send carried them (send/aggregate.h).
 */
#include <stdio.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"

static const char *const outbox_opts[] = {CLI_STORE_OPTS, "dead", "merged", "limit", NULL};

static void print_counts(int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT])
{
	printf("%-4s", "");
	for (int s = 0; s < OUTBOX_STATE_COUNT; s++)
		printf(" %10s", outbox_state_name((enum outbox_state)s));
	printf("\n");
	for (int p = 0; p < PRIO_COUNT; p++) {
		printf("%-4s", outbox_prio_name((enum outbox_prio)p));
		for (int s = 0; s < OUTBOX_STATE_COUNT; s++)
			printf(" %10lld", (long long)counts[p][s]);
		printf("\n");
	}
}

static void print_row(const struct outbox_row *r)
{
	time_t t = (time_t)(r->updated_at / 1000);
	struct tm tm;
	char when[32];
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%lld  tenant %lld  %s  to %s  attempts %d  at %s\n  error %d: %s\n  reply to %s\n",
	       (long long)r->id, (long long)r->tenant_id, outbox_prio_name(r->priority), r->to,
	       r->attempts, when, r->last_error_code, r->last_error ? r->last_error : "",
	       r->reply_to && *r->reply_to ? r->reply_to : "-");
}

static void print_merged(const struct outbox_row *r)
{
	time_t t = (time_t)(r->updated_at / 1000);
	struct tm tm;
	char when[32];
	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	printf("%lld  tenant %lld  %s  to %s  merged into %lld  at %s\n  reply to %s\n",
	       (long long)r->id, (long long)r->tenant_id, outbox_prio_name(r->priority), r->to,
	       (long long)r->merged_into, when, r->reply_to && *r->reply_to ? r->reply_to : "-");
}

/* list_rows prints up to limit rows in state (dead or merged), newest first. */
static int list_rows(struct store_conn *c, enum outbox_state state, int limit)
{
	struct arena a;
	struct outbox_row *rows;
	int n;
	arena_init(&a, 16384);
	int rc = store_outbox_list(c, state, limit, &a, &rows, &n);
	for (int i = 0; rc == 0 && i < n; i++) {
		if (state == OUTBOX_MERGED)
			print_merged(&rows[i]);
		else
			print_row(&rows[i]);
	}
	if (rc == 0 && state == OUTBOX_MERGED)
		printf("%d merged repl%s shown\n", n, n == 1 ? "y" : "ies");
	else if (rc == 0)
		printf("%d dead letter(s) shown\n", n);
	arena_release(&a);
	return rc;
}

int cmd_outbox(int argc, char **argv)
{
	struct config cfg;
	struct store *st = NULL;
	struct store_conn *c = NULL;
	int npos;
	int rc = cli_setup(&cfg, "outbox", "[--db PATH] [--dead | --merged [--limit N]]",
	                   outbox_opts, argc, argv, NULL, 0, &npos);
	if (rc != 0) {
		config_release(&cfg);
		return rc > 0 ? 0 : 2;
	}
	if (cfg.dead && cfg.merged) {
		fprintf(stderr,
		        "munim outbox: --dead and --merged list different rows; give one\n");
		config_release(&cfg);
		return 2;
	}
	rc = cli_open(&cfg, 1, &st, &c);
	if (rc != 0)
		goto out;
	if (cfg.merged || cfg.dead) {
		rc = list_rows(c, cfg.merged ? OUTBOX_MERGED : OUTBOX_DEAD, (int)cfg.limit);
	} else {
		int64_t counts[PRIO_COUNT][OUTBOX_STATE_COUNT];
		rc = store_outbox_counts(c, counts);
		if (rc == 0)
			print_counts(counts);
	}
	if (rc != 0)
		fprintf(stderr, "munim outbox: %s\n", store_errmsg(c));
out:
	cli_close(st, c);
	config_release(&cfg);
	return rc == 0 ? 0 : 1;
}
