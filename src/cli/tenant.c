/*
 * tenant.c - `munim tenant add|list|set|token`: the businesses munim serves.
 *
 *   add     a new business (its WhatsApp phone_number_id, GST details, owners)
 *   list    the businesses
 *   set     a business's settings: its approved WhatsApp template for
 *           marketing outside the 24-hour window (--template NAME, "" to
 *           clear; --template-lang CODE, default en)
 *   token   a new API token for the merchant API (POST /v1/campaigns):
 *           printed once on stdout, kept in the store only as its SHA-256;
 *           it replaces the business's previous token
 */
#include <stdio.h>
#include <string.h>

#include "campaign/campaign.h"
#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "core/clock.h"
#include "core/err.h"

static const char *const tenant_opts[] = {
        CLI_STORE_OPTS, "name",  "phone-number-id", "gstin",    "state-code",    "upi-id", "owners",
        "address",      "limit", "tenant",          "template", "template-lang", NULL};

static const char usage[] =
        "add --name NAME --phone-number-id ID [--gstin G] [--state-code 27] [--upi-id VPA]\n"
        "                     [--owners WA_ID,...] [--address A]\n"
        "       munim tenant list [--limit N]\n"
        "       munim tenant set --tenant N [--template NAME] [--template-lang en]\n"
        "       munim tenant token --tenant N";

/* WhatsApp's template names: lower-case letters, digits and '_', 1..512. */
static int valid_template_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 512)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
			return 0;
	return 1;
}

/* A language code as WhatsApp names them: "en", "hi", "en_US", "zh_HK". */
static int valid_lang(const char *s)
{
	size_t n = strlen(s), i = 0;
	while (i < n && s[i] >= 'a' && s[i] <= 'z')
		i++;
	if (i < 2 || i > 3)
		return 0;
	if (i == n)
		return 1;
	if (s[i] != '_' || n - i - 1 < 2 || n - i - 1 > 4)
		return 0;
	for (i++; i < n; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z')))
			return 0;
	return 1;
}

/* Was --name (or --name=...) on the command line? (For a setting whose
 * default cannot tell "not given" from "given the default".) */
static int flag_given(int argc, char **argv, const char *name)
{
	size_t n = strlen(name);
	for (int i = 1; i < argc; i++)
		if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, n) == 0 &&
		    (argv[i][2 + n] == '\0' || argv[i][2 + n] == '='))
			return 1;
	return 0;
}

/* The --tenant given, which must exist; prints why not. */
static int want_tenant(const struct config *cfg, struct store_conn *c, const char *cmd)
{
	struct arena a;
	struct tenant t;
	if (cfg->tenant <= 0) {
		fprintf(stderr, "munim tenant %s: --tenant N is required\n", cmd);
		return ERR_INVAL;
	}
	arena_init(&a, 1024);
	int rc = store_tenant_get(c, cfg->tenant, &a, &t);
	arena_release(&a);
	if (rc == ERR_NOTFOUND)
		fprintf(stderr, "munim tenant %s: no tenant %lld\n", cmd, (long long)cfg->tenant);
	else if (rc != 0)
		fprintf(stderr, "munim tenant %s: %s\n", cmd, store_errmsg(c));
	return rc;
}

static int tenant_set(const struct config *cfg, struct store_conn *c, int argc, char **argv)
{
	struct tenant_template cur;
	struct arena a;
	int lang_given = flag_given(argc, argv, "template-lang");
	int rc = want_tenant(cfg, c, "set");
	if (rc != 0)
		return rc;
	if (!cfg->template_name && !lang_given) {
		fprintf(stderr, "munim tenant set: nothing to set (--template NAME, \"\" to clear; "
		                "--template-lang CODE)\n");
		return ERR_INVAL;
	}
	arena_init(&a, 1024);
	rc = store_tenant_template(c, cfg->tenant, &a, &cur);
	if (rc != 0) {
		fprintf(stderr, "munim tenant set: %s\n", store_errmsg(c));
		goto out;
	}
	const char *name = cfg->template_name ? cfg->template_name : cur.name;
	const char *lang = cfg->template_lang ? cfg->template_lang : "en";
	if (*name && !valid_template_name(name)) {
		fprintf(stderr,
		        "munim tenant set: invalid template name \"%s\" (lower-case letters, "
		        "digits "
		        "and _, as WhatsApp names it)\n",
		        name);
		rc = ERR_INVAL;
		goto out;
	}
	if (!valid_lang(lang)) {
		fprintf(stderr,
		        "munim tenant set: invalid language code \"%s\" (e.g. en, hi, en_US)\n",
		        lang);
		rc = ERR_INVAL;
		goto out;
	}
	if (!*name && lang_given && !cfg->template_name) {
		fprintf(stderr,
		        "munim tenant set: tenant %lld has no template; give --template NAME\n",
		        (long long)cfg->tenant);
		rc = ERR_INVAL;
		goto out;
	}
	rc = store_tenant_set_template(c, cfg->tenant, name, lang);
	if (rc != 0) {
		fprintf(stderr, "munim tenant set: could not set the template: %s\n",
		        store_errmsg(c));
		goto out;
	}
	if (*name)
		printf("tenant %lld: template \"%s\" (%s) for customers outside the 24-hour "
		       "window\n",
		       (long long)cfg->tenant, name, lang);
	else
		printf("tenant %lld: no template; customers outside the 24-hour window are "
		       "skipped\n",
		       (long long)cfg->tenant);
out:
	arena_release(&a);
	return rc;
}

static int tenant_token(const struct config *cfg, struct store_conn *c)
{
	char token[CAMPAIGN_TOKEN_HEX + 1], hash[STORE_TOKEN_HASH_LEN + 1];
	int rc = want_tenant(cfg, c, "token");
	if (rc != 0)
		return rc;
	if ((rc = campaign_token_new(token, hash)) != 0) {
		fprintf(stderr, "munim tenant token: could not make a token: %s\n", err_str(rc));
		return rc;
	}
	rc = store_tenant_set_token_hash(c, cfg->tenant, hash);
	if (rc != 0) {
		fprintf(stderr, "munim tenant token: could not store the token: %s\n",
		        store_errmsg(c));
		return rc;
	}
	/* the token alone on stdout (for scripts); the rest on stderr */
	printf("%s\n", token);
	fprintf(stderr,
	        "munim tenant token: the API token of tenant %lld (shown once: munim keeps only "
	        "its hash; it replaces any earlier token). Send it as \"Authorization: Bearer "
	        "<token>\" to POST %s.\n",
	        (long long)cfg->tenant, CAMPAIGN_PATH);
	return 0;
}

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
	if (npos != 1 || (strcmp(pos[0], "add") != 0 && strcmp(pos[0], "list") != 0 &&
	                  strcmp(pos[0], "set") != 0 && strcmp(pos[0], "token") != 0)) {
		fprintf(stderr, "usage: munim tenant %s\n", usage);
		config_release(&cfg);
		return 2;
	}
	rc = cli_open(&cfg, 1, &st, &c);
	if (rc == 0 && strcmp(pos[0], "add") == 0)
		rc = tenant_add(&cfg, c);
	else if (rc == 0 && strcmp(pos[0], "list") == 0)
		rc = tenant_list(&cfg, c);
	else if (rc == 0 && strcmp(pos[0], "set") == 0)
		rc = tenant_set(&cfg, c, argc, argv);
	else if (rc == 0)
		rc = tenant_token(&cfg, c);
	cli_close(st, c);
	config_release(&cfg);
	return rc == 0 ? 0 : 1;
}
