/*
 * plan.h - capacity planning: the Kubernetes manifests of the seed's
 * autoscaling plan (`munim plan manifests`) and a simulation of that plan
 * against a day of traffic (`munim plan simulate`).
 *
 * Everything here is computation on the caller's data: no clock, no
 * threads, no I/O except what the caller does with the returned text. The
 * settings come from the config table (plan_settings_from_config) so that
 * changing a setting changes both the manifests and the simulation.
 * docs/capacity-simulation.md describes the model and its assumptions.
 */
#ifndef MUNIM_PLAN_H
#define MUNIM_PLAN_H

#include <stddef.h>
#include <stdint.h>

#include "control/festival.h"
#include "control/hpa.h"
#include "control/scale.h"
#include "control/spike.h"
#include "core/buf.h"
#include "core/config.h"

/*
 * Settings the plan models from the running service, so `munim serve` and
 * `munim plan` take them alike (their option lists, cli/serve.c and
 * cli/plan.c, name these): PLAN_AUTOSCALE_OPTS, the festival calendar and
 * the autoscaler's targets and behaviour (hpa.h); PLAN_SPIKE_OPTS, the
 * spike level's depth and latency thresholds (spike.h).
 */
#define PLAN_AUTOSCALE_OPTS                                                                        \
	"festival-calendar", "hpa-depth-per-worker", "hpa-p95-ms", "hpa-up-window-s",              \
	        "hpa-up-pods", "hpa-up-percent", "hpa-up-period-s", "hpa-down-window-s",           \
	        "hpa-down-percent", "hpa-down-period-s"
#define PLAN_SPIKE_OPTS                                                                            \
	"spike-depth-1", "spike-depth-2", "spike-depth-3", "spike-depth-4", "spike-p95-ms-1",      \
	        "spike-p95-ms-2"

/* One ERP service's autoscaler: bounds and CPU target. */
struct plan_erp {
	char name[32];
	int min_replicas, max_replicas;
	int cpu_pct;
};

/* The autoscaling plan, from the settings. */
struct plan_settings {
	/* webhook workers */
	struct hpa_config hpa; /* bounds, tolerance, behavior */
	int cpu_pct, memory_pct;
	int64_t depth_per_worker;
	int64_t p95_ms;
	int64_t sync_ms;
	int baseline_workers;
	/* ERP services */
	int nerp;
	struct plan_erp erp[SCALE_MAX_SERVICES];
	int baseline_erp_pods;
	double erp_ratio;
	/* the festival calendar (owned: plan_settings_release) */
	struct festival_calendar cal;
};

/*
 * plan_settings_from_config builds the plan from cfg: the autoscaler, the
 * ERP services (the erp-services list, "name:min-max:cpu" items), the
 * festival calendar. 0, or ERR_INVAL with a message in err naming the bad
 * setting. Release with plan_settings_release (also after a failure).
 */
int plan_settings_from_config(const struct config *cfg, struct plan_settings *out, char *err,
                              size_t errcap);
void plan_settings_release(struct plan_settings *ps);

/* plan_scale_limits: the plan's bounds as scale.h's limits. */
void plan_scale_limits(const struct plan_settings *ps, struct scale_limits *out);

/* plan_dns_label: 1 when s is a Kubernetes name (1..63 of a-z, 0-9, '-',
 * starting and ending with a letter or digit). */
int plan_dns_label(const char *s);

/* ---- manifests (manifests.c) ---- */

/* One Kubernetes object: a file name and its YAML text (one document). */
struct plan_doc {
	char file[96];
	struct buf yaml;
};

struct plan_manifest_opts {
	const char *k8s_namespace; /* a DNS label */
	const char *prometheus;    /* http(s):// URL the KEDA triggers query */
};

/*
 * plan_manifests renders the objects: an autoscaling/v2
 * HorizontalPodAutoscaler for the webhook workers and one per ERP service,
 * then a keda.sh/v1alpha1 ScaledObject for each (Prometheus triggers on
 * munim's queue depth and latency p95 for the workers, CPU for all, and a
 * cron trigger per festival window with desiredReplicas = baseline x
 * multiplier within the bounds). *docs is the caller's
 * (plan_docs_free). 0, or ERR_INVAL for options that are not valid.
 */
int plan_manifests(const struct plan_settings *ps, const struct plan_manifest_opts *o,
                   struct plan_doc **docs, int *ndocs);
void plan_docs_free(struct plan_doc *docs, int n);

/* ---- simulation (simulate.c) ---- */

/* The simulation's own parameters (beside the plan). */
struct plan_sim_config {
	double per_instance_rps; /* messages/s one ready replica processes at most */
	int64_t pod_startup_ms;  /* creation to serving */
	double service_ms;       /* one message's time with no queue */
	int64_t slo_p95_ms;
	double slo_availability_pct;
	int64_t late_ms; /* answered later than this: unavailable */
	struct spike_config spike;
	uint64_t seed;
};

/* What one simulated second did. */
struct plan_second {
	int64_t at_ms;
	double offered;  /* mean arrival rate asked for, /s */
	int64_t arrived; /* messages that arrived (Poisson around offered) */
	double served;
	double depth; /* waiting at the end of the second */
	int replicas; /* the autoscaler's count (ready or starting) */
	int ready;
	int floor; /* the festival floor, 0 outside every window */
	double cpu_pct;
	double p95_ms;
	int spike;    /* spike level 0..4 */
	int64_t late; /* arrivals of this second answered after late_ms */
};

struct plan_pods {
	int64_t ready_at_ms;
	int count;
};

/* The simulation's state: one autoscaler, one queue. Owned by the caller. */
struct plan_sim {
	struct plan_sim_config cfg;
	const struct plan_settings *ps;
	struct hpa hpa;
	struct spike spike;
	uint64_t rng;
	int64_t now_ms, next_decision_ms;
	int replicas;
	struct plan_pods *pods; /* groups of pods by start-up time, oldest first */
	int npods, podcap;
	double depth;
	double cpu_sum; /* utilisation summed over the seconds since the last decision */
	int cpu_n;
	double p95_ms;
};

/*
 * plan_sim_init starts a simulation at start_ms (UTC epoch ms) with the
 * replicas an offered rate of initial_rate needs (at the CPU target, at
 * least the floor and the minimum), all ready. 0, or ERR_INVAL for a
 * config out of bounds. Release with plan_sim_release.
 */
int plan_sim_init(struct plan_sim *s, const struct plan_settings *ps,
                  const struct plan_sim_config *c, int64_t start_ms, double initial_rate);
void plan_sim_release(struct plan_sim *s);

/*
 * plan_sim_step simulates one second at a mean offered rate: arrivals,
 * service by the ready replicas, the queue, the latency p95 estimate, the
 * spike level, pods becoming ready, and (every sync period) the
 * autoscaler's decision with the festival floor. Fills *out.
 */
void plan_sim_step(struct plan_sim *s, double offered, struct plan_second *out);

/* plan_replicas_needed: replicas an offered rate needs at the CPU target. */
int plan_replicas_needed(const struct plan_settings *ps, double per_instance_rps, double offered);

/* plan_festival_floor: the floor at wall_ms, min(max, ceil(baseline x
 * multiplier)), or 0 outside every festival window. */
int plan_festival_floor(const struct plan_settings *ps, int64_t wall_ms);

/* plan_curve: the share (0..1] of the day's busiest second at wall_ms, by
 * the time of day in IST: low at night, a morning and a higher evening peak
 * (19:30 IST is 1). */
double plan_curve(int64_t wall_ms);

/* ---- a profile's run and its report (report.c) ---- */

struct plan_run_opts {
	const char *profile; /* "normal", or a festival name with a peak window */
	int64_t tenants;
	int64_t normal_peak_qps; /* at 100,000 tenants */
	int64_t minutes;         /* reported, from 00:00 IST of the profile's day */
	int csv;
};

/*
 * plan_run simulates the profile (a day of warm-up before the reported
 * minutes, which start at 00:00 IST of the profile's day: the first day of
 * its peak window, or PLAN_NORMAL_* for "normal") and writes the report
 * to out: a header, one line per minute, a summary with the SLOs and the
 * weak spots found. 0, or ERR_INVAL with a message in err (an unknown
 * profile, a config out of bounds).
 */
int plan_run(const struct plan_settings *ps, const struct plan_sim_config *c,
             const struct plan_run_opts *o, struct buf *out, char *err, size_t errcap);

/* The day "normal" reports, 2025-09-15: a Monday outside the seed's
 * festival windows. */
#define PLAN_NORMAL_YEAR  2025
#define PLAN_NORMAL_MONTH 9
#define PLAN_NORMAL_DAY   15

#endif
