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

int send_status_apply(struct app *app, struct store_conn *c, const struct inbox_entry *e,
                      struct send_move *mv)
{
	enum outbox_state st, from, to;
	enum outbox_prio prio = PRIO_P2;

	mv->moved = 0;
	if (e->kind != INBOX_STATUS)
		return ERR_INVAL;
	if (status_state(e->status ? e->status : "", &st) != 0) {
		log_info("send.status_ignored", "status \"%s\" for %s is not tracked", e->status,
		         e->ext_id);
		return 0;
	}
	struct outbox_status_update u = {
	        .tenant_id = e->tenant_id,
	        .provider_msg_id = e->ext_id,
	        .row_hint = wamsg_callback_row(e->callback_data),
	        .state = st,
	        .error_code = e->error_code,
	        .error = e->error_title,
	        .at = clock_wall_ms(),
	};
	int rc = store_outbox_status(c, &u, &from, &to, &prio);
	if (rc == ERR_NOTFOUND) {
		atomic_fetch_add(&app->metrics.statuses_unmatched, 1);
		return 0;
	}
	if (rc == 0 && from != to) {
		mv->moved = 1;
		mv->prio = prio;
		mv->from = from;
		mv->to = to;
	}
	return rc;
}
