/*
 * controller.h - serve's controller thread: samples the running system
 * every second and sets the spike level (control/spike.h) that the other
 * roles follow.
 */
#ifndef MUNIM_CONTROLLER_H
#define MUNIM_CONTROLLER_H

#include <stdint.h>

#include "app.h"
#include "control/degrade.h"
#include "control/spike.h"
#include "core/buf.h"
#include "core/metrics.h"
#include "send/sender.h"

struct controller;

/*
 * controller_start starts the thread; it publishes app->spike_level,
 * app->degradation_level and the modes that follow them. sender (may be
 * NULL: no provider to judge) is the one whose providers' health counts;
 * workers (may be NULL) the pool it sizes. 0, ERR_INVAL for thresholds out
 * of bounds, ERR_IO (no store connection), ERR_NOMEM (logged).
 */
struct worker_pool;
int controller_start(struct app *app, struct sender *sender, struct worker_pool *workers,
                     struct controller **out);
/* NULL: no-op. */
void controller_stop(struct controller *c);

/* controller_render_metrics appends the levels, the signals they come from,
 * what the controller did, and the process's CPU and memory. NULL: nothing. */
void controller_render_metrics(struct controller *c, struct buf *b);
/* controller_render_status appends the JSON of GET /status (the levels,
 * their reasons and since when, the festival window, the signals). NULL c:
 * level 0 everywhere. */
void controller_render_status(struct controller *c, struct buf *b);

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
