/*
 * send_internal.h - what sender.c (start, stop, the recorder thread) and
 * send_net.c (the network thread) share, and the test hooks.
 *
 * Two threads per sender (sender.c has the diagram):
 *   network   curl multi, the requests in flight and the journal; never
 *             calls the store.
 *   recorder  the store connection: claims rows, records outcomes.
 * Rows go recorder → network as send_jobs, outcomes come back as
 * send_outcomes, through two arrays under one mutex (struct sender's
 * "queues" part). At most nslots rows are ever outstanding (claimed and not
 * yet recorded: queued, in flight, or waiting to be recorded), which bounds
 * both arrays and guarantees a free slot for every job handed over.
 */
#ifndef MUNIM_SEND_INTERNAL_H
#define MUNIM_SEND_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "app.h"
#include "core/arena.h"
#include "core/buf.h"
#include "core/idset.h"
#include "send/curl_loop.h"
#include "send/journal.h"
#include "send/pace.h"
#include "send/provider.h"
#include "send/sender.h"

/* Error text stored on the row. */
#define SEND_ERR_MAX 240
/* Largest provider message id taken from an answer (the journal's cap). */
#define SEND_MSGID_MAX JOURNAL_MSGID_MAX
/* Wait after the store refused a claim or the outcomes' write. */
#define SEND_STORE_RETRY_MS 200
/* Longest idle sleep of either thread: rows another process queued are
 * found this late, and app->stopping (which rings nobody) is seen. */
#define SEND_SWEEP_MS 1000
/* The journal is truncated past this size once everything in it is
 * recorded in the store; past SEND_JOURNAL_HOLD times it, no new send
 * starts until that is so (bounds the file under a load without lulls). */
#define SEND_JOURNAL_MAX  (1024 * 1024)
#define SEND_JOURNAL_HOLD 16
/* A send that must wait (pacing, a half-open breaker's probes) waits in its
 * slot at most this long; a longer wait goes back to the store, due then. */
#define SEND_PARK_MAX_MS 2000
/* A row held for want of a provider comes back no sooner than this. */
#define SEND_HOLD_MIN_MS 1000
/* While no WhatsApp provider is up, held P2/P3 rows are looked at for
 * expiry this often. */
#define SEND_EXPIRE_EVERY_MS 10000
/* A SENDING row of this node that the sender does not hold is put back
 * once it has not moved for this long (release_lost), at most
 * SEND_LOST_MAX a look, every SEND_RECOVER_EVERY_MS. */
#define SEND_LOST_AFTER_MS 10000
#define SEND_LOST_MAX      256
/* Rows gathered for merging per claim: per recipient, and in all. */
#define SEND_GATHER_PER_RECIPIENT 16
#define SEND_GATHER_MAX           256

/* A claimed row, handed from the recorder to the network thread. */
struct send_job {
	int64_t id;
	int64_t tenant_id;
	enum outbox_prio prio;
	int attempts; /* this attempt's number, 1 for the first (claims count it) */
	int64_t inbound_received_at;
	int64_t created_at;
	char to[32];
	char pin[OUTBOX_PROVIDER_MAX]; /* the only provider it may go through, or "" */
	char *phone_number_id;         /* owned by the job: the network thread frees it */
	char *body;                    /* owned by the job, likewise */
};

/* The outcome of one attempt, handed from the network to the recorder. */
struct send_outcome {
	int64_t id;
	int64_t tenant_id;
	enum outbox_prio prio;
	int attempts;
	int64_t inbound_received_at;
	char to[32];
	enum outbox_state final; /* ACCEPTED, PENDING (retry), FAILED or DEAD */
	int error_code;
	char error[SEND_ERR_MAX];
	char msg_id[SEND_MSGID_MAX + 1];
	int64_t next_attempt_at;
	int provider;                  /* index in the provider list of the one tried, -1: none */
	int deferred;                  /* never sent: back to PENDING, the attempt given back */
	int expired;                   /* held past hold_max: DEAD, counted as expired */
	char pin[OUTBOX_PROVIDER_MAX]; /* PENDING: from now on only through this one */
	int journaled;                 /* network: the acceptance is synced to the journal */
	int skipped;                   /* recorder: the store found the row no longer SENDING */
	/* recorder: the state the row took, = final except that an acceptance
	 * meets a delivery status that overtook it (store_outbox_accepted) */
	enum outbox_state landed;
};

/* FREE -> PARKED (holds a job, waits to be routed) -> ACTIVE (in flight)
 * -> DONE (holds an outcome) -> FREE; PARKED -> DONE when held back. */
enum slot_state { SLOT_FREE = 0, SLOT_ACTIVE = 1, SLOT_DONE = 2, SLOT_PARKED = 3 };

/* A request slot of the network thread; keeps its easy handle (and so its
 * buffers and connection) from one send to the next. */
struct send_slot {
	enum slot_state state;
	CURL *easy;
	struct buf url, body, resp;
	int resp_truncated;
	char curl_err[CURL_ERROR_SIZE];
	struct send_job job;   /* PARKED and ACTIVE: the row (its strings owned) */
	int64_t parked_since;  /* PARKED: wall ms it first waited */
	int64_t park_until;    /* PARKED: wall ms to route it again */
	int64_t started_us;    /* ACTIVE: monotonic start, for slow answers */
	struct send_outcome o; /* the row, then (once DONE) its outcome */
};

/* An alert on its way to cfg.alert_url (one at a time). */
#define SEND_ALERTS_MAX 64
struct send_alerts {
	CURL *easy;
	struct curl_slist *headers;
	int busy;                     /* a POST is in flight */
	char *queue[SEND_ALERTS_MAX]; /* JSON bodies waiting, oldest first */
	int head, n;
	struct buf body; /* the one in flight */
};

/*
 * Test hooks (sender__start). after_journal_sync runs on the network thread
 * after each successful journal_sync, before that pass's outcomes go to the
 * recorder; a nonzero return drops those outcomes, as a kill -9 at that
 * instant would (the store never hears of them). journal_max replaces
 * SEND_JOURNAL_MAX when > 0, lost_after_ms SEND_LOST_AFTER_MS. in_claim runs
 * on the recorder thread inside each claim, its slots reserved, before the
 * store is asked.
 */
struct send_hooks {
	int (*after_journal_sync)(void *ud);
	void (*in_claim)(void *ud);
	void *ud;
	int64_t journal_max;
	int64_t lost_after_ms; /* > 0: replaces SEND_LOST_AFTER_MS */
};

struct sender {
	/* set before the threads start, read-only while they run */
	struct app *app;
	struct send_hooks hooks;
	int nslots;
	int64_t journal_max;
	int64_t lost_after_ms;
	struct curl_loop loop;          /* network thread; others only call curl_loop_wake */
	struct provider_list providers; /* breakers: network thread; atomics: any */
	pthread_t net_thread, rec_thread;
	int net_started, rec_started;

	/* flags and counters across threads (atomics; the writer in brackets) */
	_Atomic int stop;           /* [sender_stop] */
	_Atomic int claims_closed;  /* [recorder] no more jobs will be handed over */
	_Atomic int net_exited;     /* [network] no more outcomes will come */
	_Atomic uint64_t net_rings; /* [network] times it rang app->outbox_ready */
	/* [recorder, sender_reserve/unreserve] rows claimed or reserved and
	 * not yet recorded: never more than nslots */
	_Atomic int outstanding;
	/* [controller, via sender_resize] the rows that may be outstanding now:
	 * 1..nslots */
	_Atomic int cap;
	/* [network] the highest priority worth claiming: P3 while a WhatsApp
	 * provider is up, P1 while only the SMS gateway is, -1 when none */
	_Atomic int claim_upto;
	/* [network] WhatsApp providers that could take a send now or soon, and
	 * those of them delivering at least the minimum rate (sender_health) */
	_Atomic int bsps_up, bsps_delivering;
	_Atomic uint64_t expired;        /* [recorder] rows expired, ever */
	_Atomic uint64_t alerts_sent;    /* [network] */
	_Atomic uint64_t alerts_failed;  /* [network] not posted, or not answered 2xx */
	_Atomic uint64_t alerts_dropped; /* [network] pushed out of a full queue */
	_Atomic int64_t applied;  /* [recorder] journaled acceptances now on disk in the store */
	int64_t applied_unsynced; /* [recorder] ... committed, not yet known to be on disk */

	/* [under mine_mu: the recorder, sender_hold/unreserve/give] the ids of
	 * the SENDING rows this sender holds: claimed, reserved and written,
	 * or given, until their outcome is recorded */
	pthread_mutex_t mine_mu;
	struct idset mine;

	/* the queues, under mu; each holds at most nslots entries */
	pthread_mutex_t mu;
	struct send_job *jobs; /* [recorder and sender_give append, network takes all] */
	int njobs;
	struct send_outcome *outs; /* [network appends, recorder takes all] */
	int nouts;

	/* network thread only (and sender_stop after the join) */
	struct journal *journal;     /* NULL: no journal configured */
	struct send_job *jobs_spare; /* swapped with jobs when taking them */
	struct send_slot *slots;
	int active;           /* slots in SLOT_ACTIVE */
	int done;             /* slots in SLOT_DONE */
	int64_t journaled;    /* acceptances synced to the journal, ever */
	int journal_failing;  /* the last journal write failed (log once) */
	int truncate_failing; /* the last truncation failed (log once) */
	int held_back;        /* jobs wait: the journal is past its hold size */
	int unanswered;       /* requests cut off by the end of the drain */
	uint64_t rng;
	struct arena resp_arena; /* an answer's parsed JSON, reset per answer */
	struct pace *pace;
	/* each provider's delivery rate is not below the minimum (delivery_ok),
	 * looked up once a pass rather than once a send */
	int delivering[PROVIDER_MAX];
	int parked;         /* slots in SLOT_PARKED */
	int64_t parked_due; /* earliest park_until among them */
	int64_t swept_at;   /* pace_sweep last ran */
	struct send_alerts alerts;

	/* recorder thread only (and sender_start before it runs) */
	struct store_conn *conn;
	struct arena arena;        /* claimed rows, reset before each claim */
	struct send_outcome *held; /* outcomes taken, not yet recorded */
	int nheld;
	struct send_job *claimed; /* jobs being built by a claim */
	int nunsynced;            /* claimed[0..n) wait for a store_sync to go out */
	int64_t due_at;           /* earliest known next_attempt_at of a pending row, 0: none */
	int store_failing;        /* the last write of outcomes failed (log once) */
	int claim_failing;        /* the last claim failed (log once) */
	uint64_t seen;            /* the outbox_ready generation last seen */
	uint64_t net_rings_seen;  /* net_rings when last looked at */
	int unrecorded;           /* outcomes the store refused until the end */
	int64_t expire_at;        /* next look for held rows past hold_max */
};

/* Either thread: stop requested, by sender_stop or the app. */
int send__stopping(struct sender *s);
/* The network thread's body (send_net.c); arg is the struct sender. */
void *send__net_main(void *arg);
/* Releases what the network side owns (slots, spare jobs); single-threaded. */
void send__net_release(struct sender *s);
/* Frees a job's strings. */
void send__job_release(struct send_job *job);

/*
 * sender__start is sender_start with test hooks (NULL: none); the hooks
 * are copied.
 */
int sender__start(struct app *app, const struct send_hooks *hooks, struct sender **out);

#endif
