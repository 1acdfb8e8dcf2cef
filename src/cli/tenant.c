/*
 * tenant.c - `munim tenant add|list`: the businesses munim serves.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "core/clock.h"
#include "core/err.h"

static const char *const tenant_opts[] = {CLI_STORE_OPTS, "name",   "phone-number-id", "gstin",
                                          "state-code",   "upi-id", "owners",          "address",
                                          "limit",        NULL};

static const char usage[] =
        "add --name NAME --phone-number-id ID [--gstin G] [--state-code 27] [--upi-id VPA]\n"
        "                     [--owners WA_ID,...] [--address A]\n"
        "       munim tenant list [--limit N]";

static int valid_state_code(const char *s)
{
	return strlen(s) == 2 && s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9';
}

static int tenant_add(const struct config *cfg, struct store_conn *c)
{
	if (!cfg->name || !*cfg->name || !cfg->phone_number_id || !*cfg->phone_number_id) {
		fprintf(stderr, "munim tenant add: --name and --phone-number-id are required\n");
		return ERR_INVAL;
	}
	if (!valid_state_code(cfg->state_code)) {
		fprintf(stderr,
		        "munim tenant add: invalid state code \"%s\" (two digits, e.g. 27)\n",
		        cfg->state_code);
		return ERR_INVAL;
	}
	if (*cfg->gstin && strlen(cfg->gstin) != 15) {
		fprintf(stderr, "munim tenant add: invalid GSTIN \"%s\" (15 characters)\n",
		        cfg->gstin);
		return ERR_INVAL;
	}
	struct tenant t = {
	        .name = cfg->name,
	        .phone_number_id = cfg->phone_number_id,
	        .gstin = cfg->gstin,
	        .state_code = cfg->state_code,
	        .upi_id = cfg->upi_id,
	        .owner_numbers = cfg->owners,
	        .address = cfg->address,
	        .created_at = clock_wall_ms(),
	};
	int64_t id;
	int rc = store_tenant_add(c, &t, &id);
	if (rc == ERR_CONFLICT) {
		fprintf(stderr,
		        "munim tenant add: phone_number_id \"%s\" already belongs to a tenant\n",
		        t.phone_number_id);
		return rc;
	}
	if (rc != 0) {
		fprintf(stderr, "munim tenant add: could not add tenant: %s\n", store_errmsg(c));
		return rc;
	}
	printf("tenant %lld added: %s (phone_number_id %s)\n", (long long)id, t.name,
	       t.phone_number_id);
	return 0;
}

static int tenant_list(const struct config *cfg, struct store_conn *c)
{
	int64_t n = 0;
	int rc = store_tenant_count(c, &n);
	if (rc != 0) {
		fprintf(stderr, "munim tenant list: %s\n", store_errmsg(c));
		return rc;
	}
	struct arena a;
	struct tenant *t;
	int got;
	arena_init(&a, 16384);
	rc = store_tenant_list(c, 0, (int)cfg->limit, &a, &t, &got);
	if (rc != 0)
		fprintf(stderr, "munim tenant list: %s\n", store_errmsg(c));
	else
		printf("%-8s %-18s %-15s %-3s %s\n", "id", "phone_number_id", "gstin", "st",
		       "name");
	for (int i = 0; rc == 0 && i < got; i++)
		printf("%-8lld %-18s %-15s %-3s %s\n", (long long)t[i].id, t[i].phone_number_id,
		       *t[i].gstin ? t[i].gstin : "-", t[i].state_code, t[i].name);
	arena_release(&a);
	if (rc == 0)
		printf("%lld tenant(s)%s\n", (long long)n,
		       n > got ? " (use --limit to see more)" : "");
	return rc;
}

int cmd_tenant(int argc, char **argv)
{
	struct config cfg;
	struct store *st = NULL;
	struct store_conn *c = NULL;
	char *pos[2];
	int npos;
	int rc = cli_setup(&cfg, "tenant", usage, tenant_opts, argc, argv, pos, 2, &npos);
	if (rc != 0) {
		config_release(&cfg);
		return rc > 0 ? 0 : 2;
	}
	if (npos != 1 || (strcmp(pos[0], "add") != 0 && strcmp(pos[0], "list") != 0)) {
		fprintf(stderr, "usage: munim tenant %s\n", usage);
		config_release(&cfg);
		return 2;
	}
	rc = cli_open(&cfg, 1, &st, &c);
	if (rc == 0)
		rc = strcmp(pos[0], "add") == 0 ? tenant_add(&cfg, c) : tenant_list(&cfg, c);
	cli_close(st, c);
	config_release(&cfg);
	return rc == 0 ? 0 : 1;
}
