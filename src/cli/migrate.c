/*
 * migrate.c - `munim migrate`: apply the store's pending migrations.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"

static const char *const migrate_opts[] = {CLI_STORE_OPTS, NULL};

int cmd_migrate(int argc, char **argv)
{
	struct config cfg;
	struct store *st;
	struct store_conn *c;
	int npos, version = 0, applied = 0;
	int rc =
	        cli_setup(&cfg, "migrate", "[--db PATH]", migrate_opts, argc, argv, NULL, 0, &npos);
	if (rc != 0) {
		config_release(&cfg);
		return rc > 0 ? 0 : 2;
	}
	rc = cli_open(&cfg, 0, &st, &c);
	if (rc != 0)
		goto out;
	rc = store_migrate(c, &applied);
	if (rc == 0)
		rc = store_schema_version(c, &version);
	char shown[STORE_URL_SHOWN];
	store_url_display(cfg.db, shown, sizeof(shown));
	if (rc != 0)
		fprintf(stderr, "munim migrate: could not migrate \"%s\": %s\n", shown,
		        store_errmsg(c));
	else
		printf("store %s: %d migration(s) applied, schema version %d\n", shown, applied,
		       version);
	cli_close(st, c);
out:
	config_release(&cfg);
	return rc == 0 ? 0 : 1;
}
