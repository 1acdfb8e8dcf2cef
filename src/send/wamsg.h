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
/*
 * An approved template with one body parameter (marketing outside the
 * 24-hour window): "type":"template", template {name, language {code},
 * components [{"type":"body","parameters":[{"type":"text","text":param}]}]};
 * never quotes a message.
 */
char *wamsg_template(struct arena *a, const char *to, const char *name, const char *lang,
                     const char *param);
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

/* The longest text an SMS fallback carries: three concatenated parts, of
 * GSM-7 (153 characters each) for ASCII text, else of UCS-2 (67 each). */
#define WAMSG_SMS_TEXT_MAX    459
#define WAMSG_SMS_UNICODE_MAX 201

/*
 * wamsg_sms_body writes into out the SMS gateway's request (MSG91's flow
 * API) carrying the words of wa_body, a Cloud API message as stored:
 * {"template_id":T,"short_url":"0","recipients":[{"mobiles":to without
 * '+',"var":text}]}. The text is the message's text, an interactive
 * message's body, or a template's first body parameter, cut to
 * WAMSG_SMS_TEXT_MAX characters ("..." marks the cut), or to
 * WAMSG_SMS_UNICODE_MAX when it has any character beyond ASCII ("…"). a
 * holds the parse and the cut. 0, or ERR_INVAL when wa_body has no such text (out is then empty).
 */
int wamsg_sms_body(struct buf *out, const char *template_id, const char *to, const char *wa_body,
                   struct arena *a);

#endif
