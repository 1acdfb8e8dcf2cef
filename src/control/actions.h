/*
 * actions.h - what the controller does to the store and the outside world
 * when a level changes, beyond publishing it: marketing dropped at spike
 * level 3 with each shop told how many of its broadcast did not go, the
 * seed's notice to shops when WhatsApp degrades, and alerts to the
 * operators' hook (on call at level 3, leadership paged at level 4).
 *
 * Threading: the controller thread, on its own store connection.
 */
#ifndef MUNIM_CONTROL_ACTIONS_H
#define MUNIM_CONTROL_ACTIONS_H

#include <stdint.h>

#include "app.h"

/* The seed's SMS notice to shops ("Level 2: WhatsApp Degraded"). */
#define CONTROL_SHOP_NOTICE                                                                        \
	"WhatsApp is experiencing delays. Critical updates will be sent via SMS."

/*
 * control_drop_marketing moves every PENDING P3 row to DEAD ("dropped:
 * traffic spike level N") and queues, in the same transaction, one P1 text
 * to each concerned shop's first owner number saying how many of its
 * broadcast messages were not sent. *dropped rows, *shops told. Counts
 * the moves in app->metrics and rings outbox_ready. 0 or the store's ERR_*.
 */
int control_drop_marketing(struct app *app, struct store_conn *c, int level, int64_t now,
                           int64_t *dropped, int *shops);

/*
 * control_tell_shops queues CONTROL_SHOP_NOTICE (P1: it goes by SMS while
 * WhatsApp cannot take it) to the first owner of each shop with replies
 * waiting, at most limit shops, the most affected first. *shops told.
 */
int control_tell_shops(struct app *app, struct store_conn *c, int limit, int64_t now, int *shops);

/*
 * control_alert POSTs {"source":"munim","event":..,"severity":..,"level":..,
 * "text":..} to app->cfg.alert_url (nothing when unset), waiting at most
 * 2 s. 0, ERR_IO (logged) when the hook could not be reached or did not
 * answer 2xx.
 */
int control_alert(const struct app *app, const char *event, const char *severity, int level,
                  const char *text);

#endif
