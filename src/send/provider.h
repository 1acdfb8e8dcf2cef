/*
 * provider.h - the ways a reply can leave: WhatsApp BSPs in failover order
 * and an SMS gateway, each with its own request format and breaker.
 */
#ifndef MUNIM_PROVIDER_H
#define MUNIM_PROVIDER_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/config.h"
#include "send/breaker.h"
#include "send/journal.h"
#include "send/sender.h"
#include "store/store.h"

/* WhatsApp BSPs at most; the SMS gateway comes on top. */
#define PROVIDER_MAX_BSPS 8
#define PROVIDER_MAX      (PROVIDER_MAX_BSPS + 1)
/* The SMS gateway's name, on outbox rows and in metrics. */
#define PROVIDER_SMS "sms"

enum provider_kind { PROVIDER_WHATSAPP = 0, PROVIDER_SMS_GATEWAY = 1 };

/* How a BSP wants its send call: Meta's Cloud API path, or a 360dialog-style
 * proxy's, which knows the number from its API key. */
enum provider_format { PROVIDER_CLOUD = 0, PROVIDER_360DIALOG = 1 };

/*
 * One provider. Written by provider_list_init before any thread starts,
 * except: br (the sender's network thread only) and the atomics (the
 * network thread writes, anyone reads: metrics, the recorder).
 */
struct provider {
	char name[OUTBOX_PROVIDER_MAX]; /* "bsp1".."bsp8", "sms" */
	enum provider_kind kind;
	enum provider_format format; /* WhatsApp only */
	char *url; /* WhatsApp: base URL without a trailing '/'; SMS: the send URL */
	struct curl_slist *headers;
	struct breaker br;
	_Atomic int state;          /* enum breaker_state */
	_Atomic int64_t open_until; /* wall ms; meaningful while OPEN */
	_Atomic uint64_t sends;     /* requests started */
	_Atomic uint64_t accepted;
	_Atomic uint64_t failures;                    /* counted against the breaker */
	_Atomic uint64_t opened, closed, half_opened; /* state changes */
};

struct provider_list {
	struct provider p[PROVIDER_MAX];
	int n;   /* providers in p */
	int nwa; /* the WhatsApp BSPs are p[0..nwa), in failover order */
	int sms; /* index of the SMS gateway, or -1 */
};

/*
 * provider_list_init builds the providers from cfg: one BSP per item of
 * bsp_url (its format from bsp_format, else cloud; its token from
 * bsp_token, else access_token; its auth header from bsp_auth_header,
 * else "D360-API-KEY" for 360dialog and "Authorization: Bearer" for
 * cloud), and the SMS
 * gateway when sms_url is set. Breakers start CLOSED with the cfg's
 * thresholds. 0, or ERR_INVAL with the reason printed to the log (no BSP,
 * more than PROVIDER_MAX_BSPS, an empty URL, an unknown format, a BSP
 * without a token, an SMS
 * URL without a token, a header name that is not a token, a threshold out
 * of bounds); l is then empty.
 */
int provider_list_init(struct provider_list *l, const struct config *cfg);
void provider_list_release(struct provider_list *l);

/*
 * provider_request builds the request of one send through p into url and
 * body: for a BSP, POST {url}/{graph_version}/{phone_number_id}/messages
 * (a 360dialog-style one: {url}/messages) with the stored Cloud API body
 * and our row id as its callback data; for
 * the SMS gateway, the text of that body in the configured template
 * (wamsg_sms_body). a is scratch. 0, or ERR_INVAL when the SMS gateway
 * cannot carry the message (no text in it).
 */
int provider_request(const struct provider *p, const struct config *cfg, int64_t row_id,
                     const char *phone_number_id, const char *to, const char *wa_body,
                     struct buf *url, struct buf *body, struct arena *a);

/* What a provider's answer said. */
struct provider_answer {
	enum send_class cls;
	int error_code; /* the Cloud API's error.code, 0 for none or SMS */
	char msg_id[JOURNAL_MSGID_MAX + 1];
	char error[240];
};

/*
 * provider_judge reads the answer to a request sent through p: HTTP
 * status (0: none came, curl_err says why), the body (resp, len; cut
 * when truncated). a is scratch for the parse.
 */
void provider_judge(const struct provider *p, long status, const char *curl_err, const char *resp,
                    size_t len, int truncated, struct arena *a, struct provider_answer *out);

/*
 * provider_sms_fallback: should a message that failed for good after going
 * through `via` (a provider's name; "" when not known) go again by SMS? Yes
 * for P0/P1 when cfg names an SMS gateway and via is not that gateway.
 * The one rule behind every SMS retry: a permanent refusal (send_net.c), a
 * "failed" status (status.c) and one that overtook the acceptance
 * (sender.c). Pure, any thread.
 */
int provider_sms_fallback(const struct config *cfg, enum outbox_prio prio, const char *via);

/* provider_publish copies p's breaker state to its atomics (network thread). */
void provider_publish(struct provider *p);

#endif
