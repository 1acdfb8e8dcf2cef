/*
 * aggregate.h - message aggregation under a traffic spike (the seed's
 * enable_message_aggregation at level 2): replies claimed together for the
 * same customer go out as one WhatsApp message.
 *
 * aggregate_plan is pure: it only reads the rows and writes into the
 * caller's arena. aggregate_claimed applies a plan through the caller's
 * store connection (store_outbox_merge); the sender's recorder (sender.c,
 * claim) calls it and sends the keepers.
 */
#ifndef MUNIM_AGGREGATE_H
#define MUNIM_AGGREGATE_H

#include "core/arena.h"
#include "store/store.h"

/* The Cloud API's limit on a text message's body, in characters. */
#define AGGREGATE_TEXT_MAX 4096
/* What goes between two merged texts. */
#define AGGREGATE_SEPARATOR "\n\n"

struct aggregate_opts {
	/*
	 * Nonzero when an SMS gateway may carry P0/P1 replies: a merged P1
	 * must then also fit what one SMS fallback carries (WAMSG_SMS_TEXT_MAX
	 * characters of ASCII, WAMSG_SMS_UNICODE_MAX otherwise), or the
	 * gateway's cut would lose answers.
	 */
	int sms_fallback;
};

/* One merge: rows[merged[i]] are folded into rows[keeper]. */
struct aggregate_group {
	int keeper;        /* index in rows of the oldest row of the group */
	const int *merged; /* indices of the others, in creation order (>= 1 of them) */
	int nmerged;
	const char *body; /* the keeper's new Cloud API body: one text message */
};

/*
 * aggregate_plan finds, among rows[0..n) (claimed rows, any order; a row
 * not SENDING is left alone), the
 * replies that may go out as one message: the same tenant, business number
 * (phone_number_id), recipient (to), pin (provider) and priority, P1..P3
 * (a P0 - a payment notice - always goes on its own), each a Cloud API
 * text message as wamsg_text writes it (an interactive or template body
 * would lose its buttons or template: left alone), never yet known to the
 * provider (no provider_msg_id). Within such a set, in creation order
 * (created_at, then id), the oldest row is the keeper; the next rows join
 * it while the joined texts, separated by AGGREGATE_SEPARATOR, stay within
 * AGGREGATE_TEXT_MAX characters (and the SMS limit, see opts); the first
 * row that would overflow is not cut but starts the next group. The
 * keeper's body is rebuilt by wamsg_text with its own recipient and
 * context (the message it quotes).
 *
 * *out gets the groups with at least one merged row (in a, as are their
 * arrays and bodies), *ngroups how many. opts may be NULL (no SMS
 * fallback). 0, or ERR_INVAL for n < 0 or a NULL output. Thread-safe: no
 * state besides a.
 */
int aggregate_plan(const struct outbox_row *rows, int n, const struct aggregate_opts *opts,
                   struct arena *a, struct aggregate_group **out, int *ngroups);

/*
 * aggregate_claimed applies aggregate_plan to rows[0..n), rows the caller
 * claimed (SENDING) on c: one store_outbox_merge per group, each its own
 * transaction (c must not be in one). For a group that merged, the
 * keeper's row->body becomes the merged body (in a) and each merged row's
 * row->state becomes OUTBOX_MERGED (row->merged_into the keeper): the
 * caller sends the keepers and frees the merged rows' slots. A group the
 * store refused stays as it was - every row SENDING with its own body, to
 * be sent alone - and the first such refusal is logged. Returns how many
 * rows were merged away. Runs on the caller's thread (the connection's).
 */
int aggregate_claimed(struct store_conn *c, struct outbox_row *rows, int n,
                      const struct aggregate_opts *opts, int64_t now, struct arena *a);

#endif
