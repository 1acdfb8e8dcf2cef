/*
 * controller.h - serve's controller thread: samples the running system
 * every second and sets the spike level (control/spike.h) that the other
 * roles follow.
 */
#ifndef MUNIM_CONTROLLER_H
#define MUNIM_CONTROLLER_H

#include <stdint.h>

#include "app.h"
#include "control/spike.h"
#include "core/metrics.h"

struct controller;

/*
 * controller_start starts the thread; it publishes app->spike_level. 0,
 * ERR_INVAL for spike thresholds out of bounds, ERR_NOMEM (logged).
 */
int controller_start(struct app *app, struct controller **out);
/* NULL: no-op. */
void controller_stop(struct controller *c);

/*
 * controller_p95_ms: the 95th percentile, in ms, of the observations in
 * `now` that are not in `before` (two snapshots of one histogram's bucket
 * counts), interpolated linearly inside its bucket as Prometheus'
 * histogram_quantile does; -1 when no observation fell between them. An
 * observation past the last bound counts as that bound.
 */
int64_t controller_p95_ms(const uint64_t before[METRICS_LAT_BUCKETS + 1],
                          const uint64_t now[METRICS_LAT_BUCKETS + 1]);

#endif
