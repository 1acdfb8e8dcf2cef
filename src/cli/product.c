/*
 * product.c - `munim product add|import|list`: a tenant's catalogue.
 *
 * add and import share one path (product_apply): validate the fields,
 * upsert the product by (tenant, sku), and bring its stock to the given
 * count through the ledger (reason "count"), so stock always equals the
 * ledger. import reads a CSV with the header
 *
 *     sku,name,aliases,unit,price,gst,hsn,stock
 *
 * (aliases separated by ';' or a quoted field with commas) and applies it
 * all in one transaction: a bad line changes nothing and names its number.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "core/err.h"
#include "erp/erp.h"

static const char *const product_opts[] = {CLI_STORE_OPTS, "tenant", "sku",   "name",
                                           "aliases",      "unit",   "price", "gst",
                                           "hsn",          "stock",  NULL};

static const char usage[] =
        "add --tenant ID --sku SKU --name NAME --price RUPEES [--unit kg] [--gst 5]\n"
        "                      [--aliases a,b] [--hsn H] [--stock UNITS]\n"
        "       munim product import --tenant ID FILE.csv\n"
        "       munim product list --tenant ID";

struct product_fields {
	const char *sku, *name, *aliases, *unit, *price, *gst, *hsn, *stock;
};

#define CSV_MAX_LINE 4096
#define CSV_FIELDS   8

/* Applies one product; on a bad field writes why into err. */
static int product_apply(struct store_conn *c, int64_t tenant, const struct product_fields *f,
                         char *err, size_t errlen)
{
	struct product p = {.tenant_id = tenant, .sku = f->sku, .name = f->name, .hsn = f->hsn};
	int64_t gst_bp, stock_base;
	if (!f->sku || !*f->sku || strlen(f->sku) > 64) {
		snprintf(err, errlen, "sku is required (at most 64 characters)");
		return ERR_INVAL;
	}
	if (!f->name || !*f->name || strlen(f->name) > 120) {
		snprintf(err, errlen, "name is required (at most 120 characters)");
		return ERR_INVAL;
	}
	if (erp_unit_normalize(f->unit, &p.unit, &p.base_per_unit) != 0) {
		snprintf(err, errlen, "invalid unit \"%s\" (kg, g, l, ml, pc or packet)", f->unit);
		return ERR_INVAL;
	}
	if (!f->price || erp_parse_rupees(f->price, &p.price_paise) != 0) {
		snprintf(err, errlen, "invalid price \"%s\" (rupees, e.g. 62.50)",
		         f->price ? f->price : "");
		return ERR_INVAL;
	}
	if (cli_parse_scaled(f->gst, 100, &gst_bp) != 0 || gst_bp > 10000) {
		snprintf(err, errlen, "invalid GST rate \"%s\" (percent, e.g. 5 or 18)", f->gst);
		return ERR_INVAL;
	}
	p.gst_rate_bp = (int)gst_bp;
	if (cli_parse_scaled(f->stock, p.base_per_unit, &stock_base) != 0) {
		snprintf(err, errlen, "invalid stock \"%s\" (selling units, e.g. 25 or 2.5)",
		         f->stock);
		return ERR_INVAL;
	}
	/* aliases: lower case, ';' accepted as a separator */
	char aliases[512];
	size_t n = 0;
	for (const char *s = f->aliases ? f->aliases : ""; *s && n + 1 < sizeof(aliases); s++)
		aliases[n++] = *s == ';' ? ',' : (char)((*s >= 'A' && *s <= 'Z') ? *s + 32 : *s);
	aliases[n] = '\0';
	p.aliases = aliases;

	int64_t id;
	struct product cur;
	struct arena a;
	arena_init(&a, 1024);
	int rc = store_product_upsert(c, &p, &id);
	if (rc == 0)
		rc = store_product_get(c, tenant, id, &a, &cur);
	if (rc == 0 && cur.stock != stock_base)
		rc = store_stock_move(c, tenant, id, stock_base - cur.stock, "count", 0, NULL);
	if (rc != 0)
		snprintf(err, errlen, "could not save product \"%s\": %s", f->sku, store_errmsg(c));
	arena_release(&a);
	return rc;
}

/* Splits one CSV line in place into at most max fields ("..." quoting). */
static int csv_split(char *line, char **fields, int max)
{
	int n = 0;
	char *p = line;
	while (n < max) {
		char *out = p;
		fields[n++] = p;
		if (*p == '"') {
			p++;
			for (;;) {
				if (*p == '\0')
					return -1; /* unterminated quote */
				if (*p == '"' && p[1] == '"') {
					*out++ = '"';
					p += 2;
				} else if (*p == '"') {
					p++;
					break;
				} else {
					*out++ = *p++;
				}
			}
			if (*p != ',' && *p != '\0')
				return -1;
		} else {
			while (*p && *p != ',')
				*out++ = *p++;
		}
		int more = *p == ',';
		if (*p)
			p++;
		*out = '\0';
		if (!more)
			return n;
	}
	return *p ? -1 : n;
}

static int product_import(struct store_conn *c, int64_t tenant, const char *path)
{
	static const char header[] = "sku,name,aliases,unit,price,gst,hsn,stock";
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "munim product import: could not open \"%s\": %s\n", path,
		        strerror(errno));
		return ERR_IO;
	}
	char line[CSV_MAX_LINE], err[256];
	int lineno = 0, count = 0, rc = store_begin(c);
	if (rc != 0) {
		fprintf(stderr, "munim product import: %s\n", store_errmsg(c));
		fclose(f);
		return rc;
	}
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			fprintf(stderr, "munim product import: %s:%d: line too long\n", path,
			        lineno);
			rc = ERR_TOOBIG;
			break;
		}
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (lineno == 1) {
			if (strcmp(line, header) != 0) {
				fprintf(stderr,
				        "munim product import: %s:1: the header must be \"%s\"\n",
				        path, header);
				rc = ERR_INVAL;
				break;
			}
			continue;
		}
		if (len == 0)
			continue;
		char *fl[CSV_FIELDS];
		if (csv_split(line, fl, CSV_FIELDS) != CSV_FIELDS) {
			fprintf(stderr, "munim product import: %s:%d: expected %d fields\n", path,
			        lineno, CSV_FIELDS);
			rc = ERR_INVAL;
			break;
		}
		struct product_fields pf = {fl[0], fl[1], fl[2], fl[3], fl[4], fl[5], fl[6], fl[7]};
		rc = product_apply(c, tenant, &pf, err, sizeof(err));
		if (rc != 0) {
			fprintf(stderr, "munim product import: %s:%d: %s\n", path, lineno, err);
			break;
		}
		count++;
	}
	fclose(f);
	if (rc == 0)
		rc = store_commit(c);
	if (rc != 0) {
		store_rollback(c);
		fprintf(stderr, "munim product import: nothing imported\n");
		return rc;
	}
	printf("%d product(s) imported for tenant %lld\n", count, (long long)tenant);
	return 0;
}

static int product_list(struct store_conn *c, int64_t tenant)
{
	struct arena a;
	struct product *p;
	int n;
	arena_init(&a, 16384);
	int rc = store_products_list(c, tenant, &a, &p, &n);
	if (rc != 0) {
		fprintf(stderr, "munim product list: %s\n", store_errmsg(c));
		arena_release(&a);
		return rc;
	}
	printf("%-12s %-24s %-7s %12s %5s %14s  %s\n", "sku", "name", "unit", "price", "gst",
	       "stock", "aliases");
	for (int i = 0; i < n; i++) {
		printf("%-12s %-24s %-7s %9lld.%02lld %4d%% %14.3f  %s\n", p[i].sku, p[i].name,
		       p[i].unit, (long long)(p[i].price_paise / 100),
		       (long long)(p[i].price_paise % 100), p[i].gst_rate_bp / 100,
		       (double)p[i].stock / (double)p[i].base_per_unit, p[i].aliases);
	}
	printf("%d product(s)\n", n);
	arena_release(&a);
	return 0;
}

int cmd_product(int argc, char **argv)
{
	struct config cfg;
	struct store *st = NULL;
	struct store_conn *c = NULL;
	char *pos[3], err[256];
	int npos;
	int rc = cli_setup(&cfg, "product", usage, product_opts, argc, argv, pos, 3, &npos);
	if (rc != 0) {
		config_release(&cfg);
		return rc > 0 ? 0 : 2;
	}
	const char *sub = npos > 0 ? pos[0] : "";
	int ok_args = (strcmp(sub, "add") == 0 && npos == 1) ||
	              (strcmp(sub, "import") == 0 && npos == 2) ||
	              (strcmp(sub, "list") == 0 && npos == 1);
	if (!ok_args || cfg.tenant <= 0) {
		fprintf(stderr, "usage: munim product %s\n", usage);
		config_release(&cfg);
		return 2;
	}
	rc = cli_open(&cfg, 1, &st, &c);
	if (rc != 0)
		goto out;
	struct tenant t;
	struct arena a;
	arena_init(&a, 1024);
	rc = store_tenant_get(c, cfg.tenant, &a, &t);
	arena_release(&a);
	if (rc != 0) {
		fprintf(stderr, "munim product: no tenant %lld\n", (long long)cfg.tenant);
		goto out;
	}
	if (strcmp(sub, "add") == 0) {
		struct product_fields pf = {cfg.sku,   cfg.name, cfg.aliases, cfg.unit,
		                            cfg.price, cfg.gst,  cfg.hsn,     cfg.stock};
		/* one transaction: a sale while serving cannot slip between reading
		 * the stock and moving it to the count */
		rc = store_begin(c);
		if (rc != 0)
			snprintf(err, sizeof(err), "%s", store_errmsg(c));
		else if ((rc = product_apply(c, cfg.tenant, &pf, err, sizeof(err))) == 0 &&
		         (rc = store_commit(c)) != 0)
			snprintf(err, sizeof(err), "%s", store_errmsg(c));
		if (rc != 0) {
			store_rollback(c);
			fprintf(stderr, "munim product add: %s\n", err);
		} else
			printf("product %s saved for tenant %lld\n", cfg.sku,
			       (long long)cfg.tenant);
	} else if (strcmp(sub, "import") == 0) {
		rc = product_import(c, cfg.tenant, pos[1]);
	} else {
		rc = product_list(c, cfg.tenant);
	}
out:
	cli_close(st, c);
	config_release(&cfg);
	return rc == 0 ? 0 : 1;
}
