/*
 * ingest_internal.h - what the ingest module's files share (the handlers'
 * ingest.c, the committer lanes' commit.c) and pieces tests reach.
 */
#ifndef MUNIM_INGEST_INTERNAL_H
#define MUNIM_INGEST_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "ingest/ingest.h"
#include "store/store.h"

struct arena;
struct http_req;
struct send_move;
struct sender;
struct worker_runner;

#define INGEST_STRIPES  64
#define INGEST_POOL_MAX 8
#define INGEST_OK_BODY  "{\"ok\":true}"

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

/* The most committer lanes (--committers). */
#define INGEST_LANES_MAX 16

/* A request whose changes fall in several lanes is split, a job a lane;
 * the last part to finish answers it: 200 only if every part was stored. */
struct job_group {
	atomic_int left;
	atomic_int failed;
};

struct ingest_job {
	struct http_req *req;
	struct job_group *group;     /* NULL: the job is its request's whole */
	struct inbox_entry *entries; /* messages, tenant ids resolved */
	int n;
	enum inbox_put_result *results;
	struct inbox_entry *statuses; /* delivery statuses, tenant ids resolved */
	int nstatus;
	struct send_move *moves; /* committer: what each status did to its row */
	int rc;                  /* committer: outcome of this job */
	struct ingest_job *next;
};

/*
 * A lane: one committer thread with its own store connection and queue.
 * Lane i takes the requests of the shops whose partition p has
 * p % nlanes == i, so one customer's messages always meet in one lane, in
 * the order they came.
 */
struct lane {
	struct ingest *ig;
	pthread_t thread;
	int thread_started;
	struct store_conn *conn;      /* the lane's */
	struct worker_runner *runner; /* the lane's, NULL: no fast path */
	/* entries the transaction in progress put in the backlog */
	const struct inbox_entry **added;
	int nadded, added_cap;
	/* the entries of a commit's requests, put together */
	struct inbox_entry *put;
	enum inbox_put_result *put_results;
	int put_cap;

	pthread_mutex_t mu; /* queue */
	pthread_cond_t cv;
	struct ingest_job *head, *tail;
	int nqueued;
	int stop;

	int failing; /* the last commit failed */
	int again;   /* the runner asks for the commit again */
	long fail_count;
	char why[256]; /* text of the last store error */
};

struct ingest {
	struct app *app;
	struct lane *lanes;
	int nlanes;
	int64_t window_ms; /* gather's */
	/* held shared by each lane's commit, alone to find the inbox empty */
	pthread_rwlock_t commit_lock;

	pthread_mutex_t stripe_mu[INGEST_STRIPES];
	struct cache_slot *slots; /* INGEST_CACHE_SLOTS (ingest.c) */

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	struct store_conn *pool[INGEST_POOL_MAX];
	int pool_free; /* pool[0..pool_free) are idle */
	int pool_open; /* connections made */
};

/* ingest.c: answers a POST (Retry-After with a 503) and counts it. */
void ingest__answer(struct ingest *ig, struct http_req *r, unsigned int status, const char *body);

/* commit.c: the lanes. */
int ingest__lane_open(struct ingest *ig, struct lane *l, int index, struct sender *sender);
void ingest__lane_free(struct lane *l);
void *ingest__committer_main(void *lane);
/* Stops the lanes' threads: each finishes its commit, answers the rest 503. */
void ingest__lanes_stop(struct ingest *ig);
/* Hands job (its request suspended) to its lanes; the request is answered
 * once every part is done. */
void ingest__submit(struct ingest *ig, struct arena *a, struct ingest_job *job);

#endif
