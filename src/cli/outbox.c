/*
 * outbox.c - `munim outbox`: counts of outgoing messages by priority and
 * state; with --dead, the dead-lettered rows and why they died.
 */
#include <stdio.h>
#include <time.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"

static const char *const outbox_opts[] = {CLI_STORE_OPTS, "dead", "limit", NULL};

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

int cmd_outbox(int argc, char **argv)
{
	struct config cfg;
	struct store *st = NULL;
	struct store_conn *c = NULL;
	int npos;
	int rc = cli_setup(&cfg, "outbox", "[--db PATH] [--dead [--limit N]]", outbox_opts, argc,
	                   argv, NULL, 0, &npos);
	if (rc != 0) {
		config_release(&cfg);
		return rc > 0 ? 0 : 2;
	}
	rc = cli_open(&cfg, 1, &st, &c);
	if (rc != 0)
		goto out;
	if (cfg.dead) {
		struct arena a;
		struct outbox_row *rows;
		int n;
		arena_init(&a, 16384);
		rc = store_outbox_list(c, OUTBOX_DEAD, (int)cfg.limit, &a, &rows, &n);
		for (int i = 0; rc == 0 && i < n; i++)
			print_row(&rows[i]);
		if (rc == 0)
			printf("%d dead letter(s) shown\n", n);
		arena_release(&a);
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
