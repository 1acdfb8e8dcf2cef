/*
 * backlog.h - which customers have messages waiting in the inbox.
 *
 * The ingest fast path (ingest.c) runs a webhook's messages in its own
 * commit; a message may do so only if no earlier message of the same
 * customer still waits in the inbox for a worker, or it would overtake
 * it. This is the set of customers (tenant id, wa_id) with such entries,
 * with a count each: the committer adds an entry before the commit that
 * leaves it pending (and takes it back if that commit fails), a worker
 * removes it after the commit that finishes it.
 *
 * Known or unknown: the set is exact only if every pending entry went
 * through backlog_add (serve adds those it finds at start-up). Pending
 * entries serve could not read at start-up, or a set grown past
 * BACKLOG_MAX customers, make it unknown:
 * backlog_has then says yes for everyone (nothing overtakes anything)
 * until the committer sees the inbox empty and calls backlog_known, which
 * empties the set and makes it exact again.
 *
 * Threads: any; one mutex.
 */
#ifndef MUNIM_BACKLOG_H
#define MUNIM_BACKLOG_H

#include <stdint.h>

/* Most customers tracked; more and the set becomes unknown. */
#define BACKLOG_MAX 65536

struct backlog;

/* known: the inbox holds no pending entry (serve counted it at start). */
struct backlog *backlog_new(int known);
void backlog_free(struct backlog *b);
void backlog_add(struct backlog *b, int64_t tenant_id, const char *wa_id);
/* Takes one entry away; a customer never added is ignored. */
void backlog_remove(struct backlog *b, int64_t tenant_id, const char *wa_id);
/* 1 if the customer has entries waiting, or the set is unknown. */
int backlog_has(struct backlog *b, int64_t tenant_id, const char *wa_id);
/* The inbox holds no pending entry: the set is exact (and empty) again. */
void backlog_known(struct backlog *b);
/* Is the set exact? */
int backlog_is_known(struct backlog *b);

#endif
