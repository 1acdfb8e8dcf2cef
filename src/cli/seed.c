/*
 * seed.c - `munim seed --tenants N`: demo and benchmark shops.
 *
 * Each seeded tenant is a kirana shop in Maharashtra (state 27) with a
 * catalogue of everyday goods and their Hindi names as aliases; rice, dal,
 * sugar and atta carry 10^6 kg (10^9 g) of stock so load tests never run
 * out. phone_number_ids are consecutive from --first-phone-number-id.
 * Tenants whose phone_number_id already exists are left as they are, so
 * seeding twice is harmless. Tenants are written 500 to a transaction.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "cli/cli_internal.h"
#include "core/clock.h"
#include "core/err.h"

#define SEED_TX_TENANTS 500
#define SEED_OWNER      "919900000001"

struct seed_product {
	const char *sku, *name, *aliases, *unit;
	int64_t base_per_unit, price_paise;
	int gst_bp;
	const char *hsn;
	int64_t stock_units;
};

static const struct seed_product catalogue[] = {
        {"RICE", "Rice", "chawal,chaawal,basmati", "kg", 1000, 6000, 500, "1006", 1000000},
        {"DAL", "Toor Dal", "dal,daal,arhar,toor", "kg", 1000, 14000, 500, "0713", 1000000},
        {"SUGAR", "Sugar", "cheeni,chini,shakkar", "kg", 1000, 4500, 500, "1701", 1000000},
        {"ATTA", "Atta", "aata,wheat flour,gehun", "kg", 1000, 4000, 500, "1101", 1000000},
        {"SALT", "Salt", "namak", "kg", 1000, 2500, 0, "2501", 100000},
        {"OIL", "Mustard Oil", "tel,sarson,sarson tel,oil", "l", 1000, 18000, 500, "1514", 100000},
        {"MILK", "Milk", "doodh", "l", 1000, 6000, 0, "0401", 100000},
        {"TEA", "Tea", "chai,chai patti,patti", "packet", 1, 12000, 500, "0902", 100000},
        {"MAGGI", "Maggi Noodles", "maggi,noodles", "packet", 1, 1400, 500, "1902", 100000},
        {"SOAP", "Bath Soap", "sabun", "pc", 1, 4000, 1800, "3401", 100000},
        {"EGG", "Eggs", "anda,ande,egg", "pc", 1, 700, 0, "0407", 100000},
        {"ONION", "Onion", "pyaz,pyaaz,kanda", "kg", 1000, 4000, 0, "0703", 100000},
        {"POTATO", "Potato", "aloo,alu,batata", "kg", 1000, 3000, 0, "0701", 100000},
};

#define NCATALOGUE (sizeof(catalogue) / sizeof(catalogue[0]))

static const char *const seed_opts[] = {CLI_STORE_OPTS, "tenants", "first-phone-number-id", NULL};

static int seed_tenant(struct store_conn *c, int64_t index, const char *phone, struct arena *a,
                       int *created)
{
	struct tenant existing;
	int rc = store_tenant_by_phone(c, phone, a, &existing);
	if (rc == 0)
		return 0;
	if (rc != ERR_NOTFOUND)
		return rc;
	struct tenant t = {
	        .name = index == 0 ? "Sharma Kirana Store"
	                           : arena_sprintf(a, "Demo Store %lld", (long long)index + 1),
	        .phone_number_id = phone,
	        .gstin = "27AAAPS1234C1Z5",
	        .state_code = "27",
	        .upi_id = index == 0 ? "sharmakirana@upi"
	                             : arena_sprintf(a, "store%lld@upi", (long long)index + 1),
	        .owner_numbers = SEED_OWNER,
	        .address = "12 Station Road, Pune 411001",
	        .created_at = clock_wall_ms(),
	};
	int64_t tid;
	rc = store_tenant_add(c, &t, &tid);
	for (size_t i = 0; rc == 0 && i < NCATALOGUE; i++) {
		const struct seed_product *s = &catalogue[i];
		struct product p = {
		        .tenant_id = tid,
		        .sku = s->sku,
		        .name = s->name,
		        .aliases = s->aliases,
		        .unit = s->unit,
		        .base_per_unit = s->base_per_unit,
		        .price_paise = s->price_paise,
		        .gst_rate_bp = s->gst_bp,
		        .hsn = s->hsn,
		};
		int64_t pid;
		rc = store_product_upsert(c, &p, &pid);
		if (rc == 0)
			rc = store_stock_move(c, tid, pid, s->stock_units * s->base_per_unit,
			                      "opening", 0, NULL);
	}
	if (rc == 0)
		(*created)++;
	return rc;
}

int cmd_seed(int argc, char **argv)
{
	struct config cfg;
	struct store *st = NULL;
	struct store_conn *c = NULL;
	int npos, created = 0;
	int rc = cli_setup(&cfg, "seed", "[--db PATH] [--tenants N] [--first-phone-number-id ID]",
	                   seed_opts, argc, argv, NULL, 0, &npos);
	if (rc != 0) {
		config_release(&cfg);
		return rc > 0 ? 0 : 2;
	}
	char *end;
	errno = 0;
	unsigned long long first = strtoull(cfg.first_phone_number_id, &end, 10);
	if (errno || *end || end == cfg.first_phone_number_id || first == 0) {
		fprintf(stderr, "munim seed: invalid --first-phone-number-id \"%s\" (digits)\n",
		        cfg.first_phone_number_id);
		config_release(&cfg);
		return 2;
	}
	rc = cli_open(&cfg, 1, &st, &c);
	if (rc != 0)
		goto out;
	struct arena a;
	arena_init(&a, 8192);
	for (int64_t i = 0; rc == 0 && i < cfg.tenants; i += SEED_TX_TENANTS) {
		rc = store_begin(c);
		for (int64_t j = i; rc == 0 && j < cfg.tenants && j < i + SEED_TX_TENANTS; j++) {
			arena_reset(&a);
			char phone[32];
			snprintf(phone, sizeof(phone), "%llu", first + (unsigned long long)j);
			rc = seed_tenant(c, j, phone, &a, &created);
		}
		if (rc == 0)
			rc = store_commit(c);
		else
			store_rollback(c);
	}
	arena_release(&a);
	if (rc != 0) {
		fprintf(stderr, "munim seed: could not seed: %s\n", store_errmsg(c));
		goto out;
	}
	printf("seeded %d tenant(s) (%lld already present); first phone_number_id %llu, "
	       "owner %s\n",
	       created, (long long)cfg.tenants - created, first, SEED_OWNER);
out:
	cli_close(st, c);
	config_release(&cfg);
	return rc == 0 ? 0 : 1;
}
