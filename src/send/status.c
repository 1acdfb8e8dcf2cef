/*
 * status.c - a delivery status webhook (sent, delivered, read, failed)
 * applied to the outbox row it is about.
 *
 * Called by the ingest committer inside its group-commit transaction, so a
 * status is applied durably before its webhook is answered 200, with no
 * inbox row and no worker pass in between. Statuses only move rows forward
 * (store_outbox_status); a redelivered status changes nothing, so no
 * de-duplication is needed. The gauge moves are returned to the caller,
 * which counts them once its transaction has committed.
 *
 * Thread safety: none needed; c belongs to the caller's thread.
 */
#include <string.h>

#include "core/clock.h"
#include "send/delivery.h"
#include "send/provider.h"
#include "core/err.h"
#include "core/log.h"
#include "send/sender.h"
#include "send/wamsg.h"

static int status_state(const char *s, enum outbox_state *out)
{
	static const struct {
		const char *name;
		enum outbox_state st;
	} map[] = {{"sent", OUTBOX_SENT},
	           {"delivered", OUTBOX_DELIVERED},
	           {"read", OUTBOX_READ},
	           {"played", OUTBOX_READ},
	           {"failed", OUTBOX_FAILED}};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (strcmp(s, map[i].name) == 0) {
			*out = map[i].st;
			return 0;
		}
	}
	return ERR_INVAL;
}

/*
 * moved fills mv from a status that moved its row; a failed P0/P1 sent by
 * WhatsApp is queued again for the SMS gateway.
 */
static int moved(struct app *app, struct store_conn *c, const struct outbox_status_result *res,
                 struct send_move *mv)
{
	mv->moved = 1;
	mv->prio = res->prio;
	mv->from = res->from;
	mv->to = res->to;
	memcpy(mv->provider, res->provider, sizeof(mv->provider));
	if (res->to == OUTBOX_FAILED)
		mv->report = 0;
	else if ((res->to == OUTBOX_DELIVERED || res->to == OUTBOX_READ) &&
	         res->from < OUTBOX_DELIVERED)
		mv->report = 1;
	if (res->to != OUTBOX_FAILED || !provider_sms_fallback(&app->cfg, res->prio, res->provider))
		return 0;
	int rc = store_outbox_resend(c, res->id, PROVIDER_SMS, clock_wall_ms(), NULL);
	if (rc != 0)
		return rc;
	mv->to = OUTBOX_PENDING;
	log_info("send.fallback", "reply %lld (%s): WhatsApp reports it failed; going by SMS",
	         (long long)res->id, outbox_prio_name(res->prio));
	return 0;
}

/* Statuses handed to the store at a time. */
#define STATUS_CHUNK 256

/* apply_chunk: send_statuses_apply for at most STATUS_CHUNK entries. */
static int apply_chunk(struct app *app, struct store_conn *c, const struct inbox_entry *const *e,
                       int n, struct send_move *mv)
{
	struct outbox_status_update u[STATUS_CHUNK];
	struct outbox_status_result res[STATUS_CHUNK];
	int rcs[STATUS_CHUNK], at[STATUS_CHUNK], m = 0;
	int64_t now = clock_wall_ms();
	for (int i = 0; i < n; i++) {
		enum outbox_state st;
		memset(&mv[i], 0, sizeof(mv[i]));
		mv[i].report = -1;
		if (e[i]->kind != INBOX_STATUS)
			return ERR_INVAL;
		if (status_state(e[i]->status ? e[i]->status : "", &st) != 0) {
			log_info("send.status_ignored", "status \"%s\" for %s is not tracked",
			         e[i]->status, e[i]->ext_id);
			continue;
		}
		u[m] = (struct outbox_status_update){
		        .tenant_id = e[i]->tenant_id,
		        .provider_msg_id = e[i]->ext_id,
		        .row_hint = wamsg_callback_row(e[i]->callback_data),
		        .state = st,
		        .error_code = e[i]->error_code,
		        .error = e[i]->error_title,
		        .at = now,
		};
		at[m++] = i;
	}
	int rc = m > 0 ? store_outbox_statuses(c, u, m, res, rcs) : 0;
	for (int k = 0; k < m && rc == 0; k++) {
		if (rcs[k] == ERR_NOTFOUND) {
			mv[at[k]].unmatched = 1;
			atomic_fetch_add(&app->metrics.statuses_unmatched, 1);
		} else if (res[k].from != res[k].to) {
			rc = moved(app, c, &res[k], &mv[at[k]]);
		}
	}
	return rc;
}

int send_statuses_apply(struct app *app, struct store_conn *c, const struct inbox_entry *const *e,
                        int n, struct send_move *mv)
{
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i += STATUS_CHUNK)
		rc = apply_chunk(app, c, e + i, n - i < STATUS_CHUNK ? n - i : STATUS_CHUNK,
		                 mv + i);
	return rc;
}

int send_status_apply(struct app *app, struct store_conn *c, const struct inbox_entry *e,
                      struct send_move *mv)
{
	return send_statuses_apply(app, c, &e, 1, mv);
}

void send_move_count(struct app *app, const struct send_move *mv)
{
	if (!mv->moved)
		return;
	metrics_outbox_move(&app->metrics, mv->prio, (int)mv->from, (int)mv->to);
	if (mv->report >= 0)
		delivery_report(app->delivery, mv->provider, mv->report, clock_wall_ms());
	if (mv->to == OUTBOX_PENDING) /* queued again: the sender's recorder claims it */
		notify_signal(&app->outbox_ready);
}
