/*
 * ingest_internal.h - pieces of ingest.c that tests reach directly.
 */
#ifndef MUNIM_INGEST_INTERNAL_H
#define MUNIM_INGEST_INTERNAL_H

#include <stdint.h>

#include "ingest/ingest.h"

/* Tenant cache: bounded, direct-mapped, thread-safe. */
#define INGEST_CACHE_SLOTS  8192
#define INGEST_CACHE_KEYMAX 40    /* longer phone_number_ids are not cached */
#define INGEST_POS_TTL_MS   60000 /* a known tenant is re-read after a minute */
#define INGEST_NEG_TTL_MS   3000  /* an unknown id is looked up again after 3 s */

/*
 * ingest__resolve maps phone_number_id to a tenant id through the cache
 * (store on a miss). *tenant_id = 0 when no tenant has it. Returns 0, or the
 * store's error (the request is then answered 503). Any thread.
 */
int ingest__resolve(struct ingest *ig, const char *phone_number_id, int64_t *tenant_id);

/* Requests waiting for the committer right now. */
int ingest__queued(struct ingest *ig);
/* 1 once ingest_stop has asked the committers to stop. */
int ingest__stopping(struct ingest *ig);
/* How many committer lanes run (--committers). */
int ingest__lanes(const struct ingest *ig);

#endif
