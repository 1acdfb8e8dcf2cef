/*
 * wamsg.h - Cloud API request bodies for POST /{version}/{phone}/messages.
 *
 * Every reply quotes the message it answers (context.message_id) when one
 * is given. Recipients are written with a leading '+'.
 */
#ifndef MUNIM_WAMSG_H
#define MUNIM_WAMSG_H

#include <stdint.h>

#include "core/arena.h"

struct wamsg_button {
	const char *id;
	const char *title;
};

/* Text message body; context_id may be NULL or "". */
char *wamsg_text(struct arena *a, const char *to, const char *context_id, const char *text);
/* Interactive reply-button message (1..3 buttons). */
char *wamsg_buttons(struct arena *a, const char *to, const char *context_id, const char *text,
                    const struct wamsg_button *buttons, int nbuttons);

/*
 * Our outbox row id travels with each send as biz_opaque_callback_data and
 * comes back in the provider's status webhooks; it lets a status claim a
 * send whose answer munim never recorded (a crash mid-send).
 *
 * wamsg_with_callback writes body (a Cloud API JSON object, as stored) into
 * out with "biz_opaque_callback_data":"munim:<row_id>" added as its first
 * member - a splice, not a re-serialisation.
 * wamsg_callback_row reads such a value back: the row id, or 0 when s is
 * not ours.
 */
#define WAMSG_CALLBACK_PREFIX "munim:"
struct buf;
void wamsg_with_callback(struct buf *out, const char *body, int64_t row_id);
int64_t wamsg_callback_row(const char *s);

#endif
