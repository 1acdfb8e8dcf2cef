/*
 * store_fixture.h - a SQLite store in a temporary directory for the unit
 * tests: the directory and database path (struct test_db), opening and
 * connecting the store, and removing the database with its -wal and -shm
 * files afterwards; test_app_open/test_app_close add the parts of a
 * struct app the roles under test read (settings at their defaults,
 * metrics, the inbox and outbox wake-ups) around a migrated store.
 *
 * Test code: static inline functions (a file may use only some), included
 * (after cmocka.h) by the test files that need a real store (test_store.c,
 * test_ingest.c, test_campaign.c, test_companion.c). Called from the test's
 * own thread only.
 */
#ifndef MUNIM_TEST_STORE_FIXTURE_H
#define MUNIM_TEST_STORE_FIXTURE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "app.h"
#include "core/config.h"
#include "core/metrics.h"
#include "core/notify.h"
#include "store/store.h"
#include "pg_fixture.h"

/* Where one test's database lives: dir made by mkdtemp, path inside it;
 * or, with MUNIM_TEST_PG set, path the url of a fresh PostgreSQL database
 * (pg_fixture.h) and dir "". */
struct test_db {
	char dir[64];
	char path[256];
};

/* Makes a fresh directory /tmp/munim-test-<name>-XXXXXX and names the
 * database munim.db in it (or makes a PostgreSQL database, migrated, when
 * MUNIM_TEST_PG is set); fails the test if it cannot. */
static inline void test_db_make(struct test_db *d, const char *name)
{
	if (test_pg_base()) {
		d->dir[0] = '\0';
		test_pg_create(name, d->path, sizeof(d->path));
		return;
	}
	int n = snprintf(d->dir, sizeof(d->dir), "/tmp/munim-test-%s-XXXXXX", name);
	assert_true(n > 0 && (size_t)n < sizeof(d->dir));
	assert_non_null(mkdtemp(d->dir));
	n = snprintf(d->path, sizeof(d->path), "%s/munim.db", d->dir);
	assert_true(n > 0 && (size_t)n < sizeof(d->path));
}

/* test_db_make_empty: as test_db_make, but the PostgreSQL database is
 * empty (never migrated), as a new SQLite file is; for the tests of the
 * migrations themselves. */
static inline void test_db_make_empty(struct test_db *d, const char *name)
{
	if (test_pg_base()) {
		d->dir[0] = '\0';
		test_pg_create_empty(name, d->path, sizeof(d->path));
		return;
	}
	test_db_make(d, name);
}

/* Opens d's database into *st with a busy timeout of busy_ms and connects
 * *c to it (not migrated); fails the test on any error. */
static inline void test_db_connect(const struct test_db *d, int busy_ms, struct store **st,
                                   struct store_conn **c)
{
	assert_int_equal(store_open(d->path, st), 0);
	store_set_busy_timeout(*st, busy_ms);
	assert_int_equal(store_connect(*st, c), 0);
}

/* Removes the database, its -wal and -shm files and the directory; the
 * store must be closed. */
static inline void test_db_remove(const struct test_db *d)
{
	char p[300];
	if (!d->dir[0]) {
		test_pg_drop(d->path);
		return;
	}
	unlink(d->path);
	snprintf(p, sizeof(p), "%s-wal", d->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", d->path);
	unlink(p);
	rmdir(d->dir);
}

/* An app around a fresh, migrated store in /tmp/munim-test-<name>-XXXXXX:
 * app->cfg at its defaults, app->metrics, app->inbox_ready and
 * app->outbox_ready initialised, app->store opened with busy_ms, and *c a
 * connection to it. Undone by test_app_close. */
static inline void test_app_open(struct test_db *d, const char *name, struct app *app, int busy_ms,
                                 struct store_conn **c)
{
	test_db_make(d, name);
	config_defaults(&app->cfg);
	metrics_init(&app->metrics);
	notify_init(&app->inbox_ready);
	notify_init(&app->outbox_ready);
	test_db_connect(d, busy_ms, &app->store, c);
	assert_int_equal(store_migrate(*c, NULL), 0);
}

/* Undoes test_app_open once the roles using app have stopped: disconnects
 * c, closes the store, releases the wake-ups and settings, and removes the
 * database. */
static inline void test_app_close(struct test_db *d, struct app *app, struct store_conn *c)
{
	store_disconnect(c);
	store_close(app->store);
	app->store = NULL;
	notify_release(&app->inbox_ready);
	notify_release(&app->outbox_ready);
	config_release(&app->cfg);
	test_db_remove(d);
}

#endif
