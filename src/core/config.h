/*
 * config.h - one declarative table of settings (PostgreSQL's GUC table is
 * the model). Each entry: name, type, default, bounds, environment
 * variable, one-line help. Flags, environment, --help and `config --dump`
 * all come from the table; each command names the settings it takes.
 *
 * Precedence: built-in default < environment < command-line flag.
 */
#ifndef MUNIM_CONFIG_H
#define MUNIM_CONFIG_H

#include <stdint.h>
#include <stdio.h>

struct config {
	/* store */
	char *db;
	int64_t db_busy_timeout_ms;
	char *db_prepare;
	char *db_replica;
	char *db_listen;
	int64_t replica_max_lag_ms;
	/* serve */
	char *listen;
	char *bsp_url;
	char *app_secret;
	char *verify_token;
	char *access_token;
	char *graph_version;
	int64_t workers;
	int64_t http_threads;
	int64_t max_body;
	int64_t commit_batch;
	int64_t worker_batch;
	int64_t inline_max;
	int64_t commit_window_ms;
	int64_t committers;
	int64_t send_inflight;
	char *send_journal;
	int64_t send_recover_grace_ms;
	int64_t send_timeout_ms;
	int64_t send_max_attempts;
	int64_t retry_base_ms;
	int64_t retry_cap_ms;
	int64_t process_attempts;
	char *log_level;
	char *roles;
	char *node_name;
	/* delivery: providers, breakers, pacing, fallback */
	char *bsp_token;       /* list, in bsp_url order ("" items: access_token) */
	char *bsp_auth_header; /* list, in bsp_url order ("" items: bearer) */
	char *bsp_format;      /* list, in bsp_url order: "cloud" ("") or "360dialog" */
	char *sms_url;
	char *sms_token;
	char *sms_template_id;
	char *sms_dlr_token;
	int64_t breaker_failures;
	int64_t breaker_successes;
	int64_t breaker_open_ms;
	int64_t breaker_jitter_pct;
	int64_t breaker_window_ms;
	int64_t breaker_min_calls;
	int64_t breaker_failure_rate_pct;
	int64_t breaker_probes;
	int64_t breaker_slow_ms;
	int64_t pace_per_number;
	char *redis;              /* what the processes share (cluster/cluster.h); "": none */
	int64_t redis_timeout_ms; /* connect and command time limit */
	int64_t senders;          /* live senders assumed until Redis has counted them */
	int64_t hold_max_ms;
	int64_t delivery_min_pct;
	int64_t delivery_window_ms;
	int64_t delivery_min_reports;
	char *alert_url;
	/* the AI endpoint (ai/ai.h) */
	char *ai_url;
	char *ai_token;
	char *ai_model;
	int64_t ai_timeout_ms;
	int64_t ai_concurrency;
	int64_t ai_breaker_failures;
	int64_t ai_breaker_successes;
	int64_t ai_breaker_open_ms;
	int64_t ai_poll_ms;
	/* the controller (control/spike.h); [0] unused */
	int64_t spike_depth[5];
	int64_t spike_p95_ms[3];
	double spike_error_pct[5];
	int64_t spike_hold_ms;
	int64_t control_window_s;
	int64_t workers_max; /* the controller may grow the worker pool up to this */
	/* the companion app's API (companion/companion.h) */
	int64_t companion_sync_max_ops;
	/* the festival calendar (control/festival.h) and `munim plan` */
	char *festival_calendar;
	int64_t hpa_min_replicas;
	int64_t hpa_max_replicas;
	int64_t hpa_cpu_pct;
	int64_t hpa_memory_pct;
	int64_t hpa_depth_per_worker;
	int64_t hpa_p95_ms;
	int64_t hpa_up_window_s;
	int64_t hpa_up_pods;
	int64_t hpa_up_percent;
	int64_t hpa_up_period_s;
	int64_t hpa_down_window_s;
	int64_t hpa_down_percent;
	int64_t hpa_down_period_s;
	int64_t hpa_sync_s;
	char *erp_services;
	double erp_ratio;
	int64_t baseline_workers;
	int64_t baseline_erp_pods;
	char *out;
	char *k8s_namespace;
	char *prometheus;
	double per_instance_rps;
	int64_t normal_peak_qps;
	int64_t minutes;
	int64_t csv;
	int64_t pod_startup_s;
	int64_t service_ms;
	int64_t slo_p95_ms;
	double slo_availability_pct;
	int64_t late_ms;
	int64_t sim_seed;
	/* the degradation level (control/degrade.h) */
	int64_t degrade_ai_p95_ms;
	double degrade_ai_error_pct;
	double degrade_store_error_pct;
	int64_t degrade_hold_ms;
	int64_t marketing_retry_after_s; /* Retry-After of a marketing request refused at level 4 */
	/* provisioning */
	int64_t tenants;
	char *first_phone_number_id;
	int64_t tenant;
	char *phone_number_id;
	char *gstin;
	char *state_code;
	char *upi_id;
	char *owners;
	char *address;
	char *sku;
	char *aliases;
	char *unit;
	char *price;
	char *gst;
	char *hsn;
	char *stock;
	/* mock-bsp */
	char *webhook_url;
	double fault_error_rate;
	int64_t fault_status;
	int64_t fault_latency_ms;
	int64_t fault_outage;
	int64_t delivered_statuses;
	double fault_failed_rate;
	char *sms_dlr_url;
	char *auth_header;
	/* tenant settings */
	char *template_name;
	char *template_lang;
	/* say */
	char *url;
	char *bsp;
	char *from;
	char *name;
	char *to;
	char *button;
	int64_t timeout_ms;
	/* outbox */
	int64_t dead;
	int64_t merged;
	int64_t limit;
	/* loadgen */
	int64_t rate;
	int64_t duration;
	char *profile;
	int64_t step;
	int64_t step_every;
	double surge_factor;
	int64_t surge_at;
	int64_t surge_for;
	int64_t customers;
	char *text;
	int64_t connections;
	int64_t drain_timeout;
};

/* Every setting's name, for the per-command lists; NULL-terminated lists. */
void config_defaults(struct config *cfg);
void config_release(struct config *cfg);

/*
 * config_parse fills cfg from the environment and argv for a command that
 * accepts the settings named in `names` (NULL-terminated). Arguments that
 * are not flags are returned in order in pos[] (at most max_pos; *npos).
 * Returns 0; 1 when --help was asked (usage already printed); ERR_INVAL on a
 * bad flag or value (message already printed to stderr).
 */
int config_parse(struct config *cfg, const char *cmd, const char *usage, const char *const *names,
                 int argc, char **argv, char **pos, int max_pos, int *npos);

/* config_usage prints the command's usage line and its settings, each with
 * its default: the value in cfg (the command's own defaults), or the
 * table's when cfg is NULL. */
void config_usage(FILE *out, const char *cmd, const char *usage, const char *const *names,
                  const struct config *cfg);
/* config_dump prints every setting of names with its current value. */
void config_dump(FILE *out, const struct config *cfg, const char *const *names);

/*
 * config_list_split splits a list setting at its commas into *items (each
 * trimmed of blanks, possibly empty; free with config_list_free); returns
 * how many. An empty list is one empty item; NULL is none.
 */
int config_list_split(const char *list, char ***items);
void config_list_free(char **items, int n);

#endif
