/*
 * common.c - what the commands share: argument set-up, opening the store,
 * exact decimal parsing for quantities typed by operators.
 */
#include "cli/cli_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "core/err.h"
#include "core/log.h"

int cli_setup(struct config *cfg, const char *cmd, const char *usage, const char *const *names,
              int argc, char **argv, char **pos, int max_pos, int *npos)
{
	config_defaults(cfg);
	int rc = config_parse(cfg, cmd, usage, names, argc, argv, pos, max_pos, npos);
	if (rc != 0)
		return rc;
	if (cfg->log_level) {
		enum log_level lvl;
		if (log_parse_level(cfg->log_level, &lvl) != 0) {
			fprintf(stderr, "munim %s: invalid log level \"%s\"\n", cmd,
			        cfg->log_level);
			return ERR_INVAL;
		}
		log_set_level(lvl);
	}
	return 0;
}

int cli_open(const struct config *cfg, int migrate, struct store **st, struct store_conn **c)
{
	char shown[STORE_URL_SHOWN];
	*st = NULL;
	*c = NULL;
	store_url_display(cfg->db, shown, sizeof(shown));
	int prepare = !strcmp(cfg->db_prepare, "on");
	if (!prepare && strcmp(cfg->db_prepare, "off")) {
		fprintf(stderr, "munim: invalid value \"%s\" for --db-prepare (on or off)\n",
		        cfg->db_prepare);
		return ERR_INVAL;
	}
	int rc = store_open(cfg->db, st);
	if (rc != 0) {
		fprintf(stderr, "munim: could not open store \"%s\": %s\n", shown, err_str(rc));
		return rc;
	}
	store_set_busy_timeout(*st, (int)cfg->db_busy_timeout_ms);
	store_set_prepared(*st, prepare);
	rc = store_connect(*st, c);
	if (rc != 0) {
		fprintf(stderr, "munim: could not connect to store \"%s\": %s\n", shown,
		        err_str(rc));
		goto fail;
	}
	if (migrate) {
		int applied = 0;
		rc = store_migrate(*c, &applied);
		if (rc != 0) {
			fprintf(stderr, "munim: could not migrate store \"%s\": %s\n", shown,
			        store_errmsg(*c));
			goto fail;
		}
	}
	return 0;
fail:
	cli_close(*st, *c);
	*st = NULL;
	*c = NULL;
	return rc;
}

void cli_close(struct store *st, struct store_conn *c)
{
	if (c)
		store_disconnect(c);
	if (st)
		store_close(st);
}

int cli_parse_scaled(const char *s, int64_t scale, int64_t *out)
{
	int64_t whole = 0, frac = 0, frac_scale = 1;
	const char *p = s;
	if (!isdigit((unsigned char)*p))
		return ERR_INVAL;
	for (; isdigit((unsigned char)*p); p++) {
		if (whole > (INT64_MAX / 10 - 9) / (scale ? scale : 1))
			return ERR_INVAL;
		whole = whole * 10 + (*p - '0');
	}
	if (*p == '.') {
		p++;
		for (; isdigit((unsigned char)*p); p++) {
			if (frac_scale >= scale) {
				if (*p != '0')
					return ERR_INVAL; /* finer than the base unit */
				continue;
			}
			frac = frac * 10 + (*p - '0');
			frac_scale *= 10;
		}
	}
	if (*p)
		return ERR_INVAL;
	if (scale % frac_scale != 0)
		return ERR_INVAL;
	*out = whole * scale + frac * (scale / frac_scale);
	return 0;
}
