/*
 * wamsg.h - Cloud API request bodies for POST /{version}/{phone}/messages.
 *
 * Every reply quotes the message it answers (context.message_id) when one
 * is given. Recipients are written with a leading '+'.
 */
#ifndef MUNIM_WAMSG_H
#define MUNIM_WAMSG_H

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

#endif
