/*
 * sms_dlr.h - the SMS gateway's delivery reports: POST /sms/dlr?token=T.
 */
#ifndef MUNIM_SMS_DLR_H
#define MUNIM_SMS_DLR_H

#include "app.h"
#include "http/http.h"

struct sms_dlr;

/*
 * sms_dlr_start opens the endpoint's store connection when an SMS gateway
 * is configured (cfg.sms_url); *out is NULL otherwise. 0, or the store's
 * error (logged).
 */
int sms_dlr_start(struct app *app, struct sms_dlr **out);
/* sms_dlr_routes writes its route into routes (room for cap); how many. */
int sms_dlr_routes(struct sms_dlr *d, struct http_route *routes, int cap);
/* Call after the HTTP server stopped. NULL: no-op. */
void sms_dlr_stop(struct sms_dlr *d);

#endif
