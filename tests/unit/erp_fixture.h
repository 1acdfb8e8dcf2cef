/*
 * erp_fixture.h - one shop in a real SQLite store in a temporary file (or,
 * with MUNIM_TEST_PG set, a fresh PostgreSQL database: pg_fixture.h), for
 * the tests that drive the ERP as the worker does: setup_erp migrates the
 * store and adds the shop and its catalogue (seed_products, with opening
 * stock) in one transaction; say_as runs one message through erp_handle (or
 * erp_handle_job) between store_begin and store_commit, rereading the
 * tenant inside the transaction as the worker does, and checks what every
 * reply must be (check_reply_limits); assert_menu_buttons checks the
 * menu's buttons; teardown_erp removes the store (its -wal and -shm
 * files, or the PostgreSQL database).
 *
 * Test code: static functions, included (after cmocka.h) by test_erp_flow.c
 * and test_ai.c. Single-threaded: only the test's thread touches a fixture
 * (test_ai.c's AI thread opens its own connection).
 */
#ifndef MUNIM_TEST_ERP_FIXTURE_H
#define MUNIM_TEST_ERP_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/arena.h"
#include "erp/erp.h"
#include "store/store.h"
#include "pg_fixture.h"

/* 2026-11-27 10:00 IST: financial year 2026-27 */
#define NOW_MS   1795753800000LL
#define CUSTOMER "919111111111"
#define OTHER    "919222222222"

enum { P_ATTA, P_MAGGI, P_RICE, P_SUGAR, P_DAL, NPROD };

/* The shop's catalogue and its opening stock (base units). */
static const struct product seed_products[NPROD] = {
        {.sku = "ATTA",
         .name = "Atta",
         .aliases = "",
         .unit = "kg",
         .base_per_unit = 1000,
         .price_paise = 4000,
         .gst_rate_bp = 0,
         .hsn = "1101"},
        {.sku = "MAGGI",
         .name = "Maggi Noodles",
         .aliases = "maggi",
         .unit = "packet",
         .base_per_unit = 1,
         .price_paise = 1400,
         .gst_rate_bp = 1800,
         .hsn = "1902"},
        {.sku = "RICE",
         .name = "Rice",
         .aliases = "",
         .unit = "kg",
         .base_per_unit = 1000,
         .price_paise = 6000,
         .gst_rate_bp = 500,
         .hsn = "1006"},
        {.sku = "SUGAR",
         .name = "Sugar",
         .aliases = "",
         .unit = "kg",
         .base_per_unit = 1000,
         .price_paise = 4500,
         .gst_rate_bp = 500,
         .hsn = "1701"},
        {.sku = "DAL",
         .name = "Toor Dal",
         .aliases = "arhar,tuvar",
         .unit = "kg",
         .base_per_unit = 1000,
         .price_paise = 11000,
         .gst_rate_bp = 500,
         .hsn = "0713"},
};
static const int64_t seed_stock[NPROD] = {50000, 100, 1000000, 5000, 3000};

struct fx {
	char path[256]; /* the SQLite file, or the PostgreSQL database's url */
	struct store *st;
	struct store_conn *c;
	struct tenant t;
	struct arena ta;    /* the tenant row */
	struct arena a;     /* per message */
	int64_t pid[NPROD]; /* seed_products' ids */
	struct erp_result r;
	struct erp_cache *cache; /* as a worker has one */
	int seq;
	char wamid[32]; /* of the last message said */
};

/* Creates the fixture in *state: a store file (or PostgreSQL database)
 * named after `name`, the shop (a Pune kirana registered for GST) and its catalogue with opening
 * stock, in one transaction. */
static int setup_erp(void **state, const char *name)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct tenant t = {
	        .name = "Sharma Kirana & Sons",
	        .phone_number_id = "1122334455",
	        .gstin = "27ABCDE1234F1Z5",
	        .state_code = "27",
	        .upi_id = "sharma@okaxis",
	        .owner_numbers = "+91 90000 00001",
	        .address = "12 MG Road, Pune",
	};
	int64_t tid;

	assert_non_null(f);
	if (test_pg_base()) {
		test_pg_create(name, f->path, sizeof(f->path));
	} else {
		snprintf(f->path, sizeof(f->path), "/tmp/munim-%s-XXXXXX", name);
		int fd = mkstemp(f->path);
		assert_true(fd >= 0);
		close(fd);
	}
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(store_connect(f->st, &f->c), 0);
	assert_int_equal(store_migrate(f->c, NULL), 0);
	assert_int_equal(store_begin(f->c), 0);
	assert_int_equal(store_tenant_add(f->c, &t, &tid), 0);
	for (int i = 0; i < NPROD; i++) {
		struct product p = seed_products[i];
		p.tenant_id = tid;
		assert_int_equal(store_product_upsert(f->c, &p, &f->pid[i]), 0);
		assert_int_equal(
		        store_stock_move(f->c, tid, f->pid[i], seed_stock[i], "opening", 0, NULL),
		        0);
	}
	assert_int_equal(store_commit(f->c), 0);
	arena_init(&f->ta, 0);
	arena_init(&f->a, 0);
	assert_int_equal(store_tenant_get(f->c, tid, &f->ta, &f->t), 0);
	f->cache = erp_cache_new(4);
	*state = f;
	return 0;
}

static int teardown_erp(void **state)
{
	struct fx *f = *state;
	char side[300];
	arena_release(&f->a);
	arena_release(&f->ta);
	erp_cache_free(f->cache);
	store_disconnect(f->c);
	store_close(f->st);
	if (test_pg_base()) {
		test_pg_drop(f->path);
		free(f);
		return 0;
	}
	unlink(f->path);
	snprintf(side, sizeof(side), "%s-wal", f->path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", f->path);
	unlink(side);
	free(f);
	return 0;
}

/* Checks what every reply must be, whatever the message. */
static void check_reply_limits(const struct erp_result *r)
{
	assert_true(r->nreplies >= 0 && r->nreplies <= ERP_MAX_REPLIES);
	for (int i = 0; i < r->nreplies; i++) {
		const struct erp_reply *rp = &r->replies[i];
		assert_non_null(rp->text);
		assert_true(strlen(rp->text) > 0);
		if (rp->kind == ERP_REPLY_BUTTONS) {
			assert_true(strlen(rp->text) <= 1024);
			assert_true(rp->nbuttons >= 1 && rp->nbuttons <= ERP_MAX_BUTTONS);
			for (int b = 0; b < rp->nbuttons; b++) {
				assert_true(strlen(rp->buttons[b].title) <= 20);
				assert_true(strlen(rp->buttons[b].id) <= 256);
			}
		} else {
			assert_true(strlen(rp->text) <= 4096);
			assert_int_equal(rp->nbuttons, 0);
		}
		for (const unsigned char *p = (const unsigned char *)rp->text; *p; p++)
			assert_true(*p >= 0x20 || *p == '\n');
	}
}

/* The menu's three buttons: Stock Check, New Order, Invoice. */
static void assert_menu_buttons(const struct erp_reply *r)
{
	assert_int_equal(r->kind, ERP_REPLY_BUTTONS);
	assert_int_equal(r->nbuttons, 3);
	assert_string_equal(r->buttons[0].id, ERP_BTN_STOCK);
	assert_string_equal(r->buttons[0].title, "Stock Check");
	assert_string_equal(r->buttons[1].id, ERP_BTN_ORDER);
	assert_string_equal(r->buttons[1].title, "New Order");
	assert_string_equal(r->buttons[2].id, ERP_BTN_INVOICE);
	assert_string_equal(r->buttons[2].title, "Invoice");
}

/* One message from `from` through erp_handle (erp_handle_job when job is
 * set) inside a transaction, as the worker runs it; its wamid is left in
 * f->wamid and the result in f->r. Returns the handler's code (the
 * transaction rolled back and the cache cleared when it failed). */
static int say_as(struct fx *f, const char *from, const char *type, const char *body, int job)
{
	struct inbox_entry e;
	int rc;

	memset(&e, 0, sizeof(e));
	snprintf(f->wamid, sizeof(f->wamid), "wamid.%d", ++f->seq);
	e.id = f->seq;
	e.tenant_id = f->t.id;
	e.kind = INBOX_MESSAGE;
	e.ext_id = f->wamid;
	e.status = "";
	e.from = from;
	e.name = "Asha";
	e.type = type;
	e.body = body;
	e.context_id = "";
	e.sent_at = NOW_MS;
	e.received_at = NOW_MS;
	arena_reset(&f->a);
	assert_int_equal(store_begin(f->c), 0);
	/* the tenant (and its catalogue revision) read in the transaction */
	arena_reset(&f->ta);
	assert_int_equal(store_tenant_get(f->c, f->t.id, &f->ta, &f->t), 0);
	rc = job ? erp_handle_job(f->c, f->cache, &f->t, &e, &f->a, &f->r)
	         : erp_handle(f->c, f->cache, &f->t, &e, &f->a, &f->r);
	if (rc == 0) {
		assert_int_equal(store_commit(f->c), 0);
	} else {
		assert_int_equal(store_rollback(f->c), 0);
		erp_cache_clear(f->cache);
	}
	check_reply_limits(&f->r);
	return rc;
}

#endif
