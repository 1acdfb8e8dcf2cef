/*
 * config.c - the settings table and its parser.
 *
 * Defaults are the numbers munim is designed around; each command takes
 * the subset it names. Secrets are never printed by config_dump.
 */
#include "core/config.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "control/festival.h" /* FESTIVAL_SEED_CALENDAR, the default */
#include "core/err.h"
#include "core/xalloc.h"

/* CFG_LIST: text holding a comma-separated list; a flag given several
 * times appends (the first replaces the default and the environment). */
enum cfg_type { CFG_STR, CFG_INT, CFG_DOUBLE, CFG_FLAG, CFG_LIST };

struct cfg_entry {
	const char *name; /* flag without the leading dashes */
	enum cfg_type type;
	size_t offset;
	const char *def; /* default, as text; NULL = unset */
	double min, max; /* bounds for numbers */
	const char *env; /* environment variable, or NULL */
	int secret;      /* hide the value in dumps */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)

static const struct cfg_entry table[] = {
        {"db", CFG_STR, OFF(db), "munim.db", 0, 0, "MUNIM_DB", 0,
         "the store: a SQLite file path, or a PostgreSQL url (postgresql://user@host/db)"},
        {"db-busy-timeout-ms", CFG_INT, OFF(db_busy_timeout_ms), "5000", 0, 600000,
         "MUNIM_DB_BUSY_TIMEOUT_MS", 0,
         "how long a write waits for a lock held by another process before failing"},
        {"db-prepare", CFG_STR, OFF(db_prepare), "on", 0, 0, "MUNIM_DB_PREPARE", 0,
         "on: prepare each PostgreSQL statement once per connection (planned once); off: "
         "send it whole every time (behind PgBouncer in transaction mode before 1.21)"},
        {"db-replica", CFG_LIST, OFF(db_replica), "", 0, 0, "MUNIM_DB_REPLICA", 1,
         "PostgreSQL read replicas' urls (repeat or comma-separate): the shop app's stock, "
         "order and invoice reads go there"},
        {"db-listen", CFG_STR, OFF(db_listen), "", 0, 0, "MUNIM_DB_LISTEN", 1,
         "PostgreSQL url this process LISTENs on for other processes' commits (default: --db; "
         "behind a transaction-mode PgBouncer, the server's own url)"},
        {"replica-max-lag-ms", CFG_INT, OFF(replica_max_lag_ms), "1000", 0, 3600000,
         "MUNIM_REPLICA_MAX_LAG_MS", 0,
         "a read replica further behind the primary than this is skipped"},
        {"listen", CFG_STR, OFF(listen), "127.0.0.1:8080", 0, 0, "MUNIM_LISTEN", 0,
         "address:port to listen on"},
        {"bsp-url", CFG_LIST, OFF(bsp_url), "http://127.0.0.1:9090", 0, 0, "MUNIM_BSP_URL", 0,
         "base URL of the WhatsApp Cloud API or a BSP speaking it; repeat (or comma-separate) "
         "for failover, in order"},
        {"bsp-token", CFG_LIST, OFF(bsp_token), "", 0, 0, "MUNIM_BSP_TOKEN", 1,
         "each BSP's token, in --bsp-url order (an empty item: --access-token)"},
        {"bsp-auth-header", CFG_LIST, OFF(bsp_auth_header), "", 0, 0, "MUNIM_BSP_AUTH_HEADER", 0,
         "each BSP's auth header, in --bsp-url order: empty for \"Authorization: Bearer\", "
         "or a header name carrying the token (360dialog: D360-API-KEY)"},
        {"bsp-format", CFG_LIST, OFF(bsp_format), "", 0, 0, "MUNIM_BSP_FORMAT", 0,
         "each BSP's request format, in --bsp-url order: cloud (Meta's "
         "/{version}/{phone_number_id}/messages, the default) or 360dialog (/messages, "
         "the token in D360-API-KEY)"},
        {"sms-url", CFG_STR, OFF(sms_url), "", 0, 0, "MUNIM_SMS_URL", 0,
         "SMS gateway's send URL (MSG91-style flow API); empty: no SMS fallback"},
        {"sms-token", CFG_STR, OFF(sms_token), "", 0, 0, "MUNIM_SMS_TOKEN", 1,
         "SMS gateway's authkey"},
        {"sms-template-id", CFG_STR, OFF(sms_template_id), "munim-fallback", 0, 0,
         "MUNIM_SMS_TEMPLATE_ID", 0,
         "the SMS gateway's template (registered with its DLT template id) the text fills"},
        {"sms-dlr-token", CFG_STR, OFF(sms_dlr_token), "", 0, 0, "MUNIM_SMS_DLR_TOKEN", 1,
         "token the SMS delivery-report webhook (/sms/dlr?token=) must present; empty: "
         "reports refused"},
        {"breaker-failures", CFG_INT, OFF(breaker_failures), "5", 1, 1000, "MUNIM_BREAKER_FAILURES",
         0, "failures in a row that open a provider's breaker"},
        {"breaker-successes", CFG_INT, OFF(breaker_successes), "3", 1, 1000,
         "MUNIM_BREAKER_SUCCESSES", 0, "half-open successes that close it again"},
        {"breaker-open-ms", CFG_INT, OFF(breaker_open_ms), "30000", 1, 86400000,
         "MUNIM_BREAKER_OPEN_MS", 0, "how long an open breaker refuses sends"},
        {"breaker-jitter-pct", CFG_INT, OFF(breaker_jitter_pct), "20", 0, 100,
         "MUNIM_BREAKER_JITTER_PCT", 0, "open time lengthened by up to this percent, at random"},
        {"breaker-window-ms", CFG_INT, OFF(breaker_window_ms), "10000", 10, 3600000,
         "MUNIM_BREAKER_WINDOW_MS", 0, "the sliding window of the failure rate"},
        {"breaker-min-calls", CFG_INT, OFF(breaker_min_calls), "20", 1, 1000000,
         "MUNIM_BREAKER_MIN_CALLS", 0, "calls in the window before the failure rate counts"},
        {"breaker-failure-rate-pct", CFG_INT, OFF(breaker_failure_rate_pct), "30", 1, 100,
         "MUNIM_BREAKER_FAILURE_RATE_PCT", 0, "failure share in the window that opens"},
        {"breaker-probes", CFG_INT, OFF(breaker_probes), "3", 1, 1000, "MUNIM_BREAKER_PROBES", 0,
         "sends in flight at once while half-open"},
        {"breaker-slow-ms", CFG_INT, OFF(breaker_slow_ms), "2000", 0, 600000,
         "MUNIM_BREAKER_SLOW_MS", 0, "an answer this slow counts as a failure (0: never)"},
        {"pace-per-number", CFG_INT, OFF(pace_per_number), "80", 0, 100000, "MUNIM_PACE_PER_NUMBER",
         0, "most sends per second from one business phone number (0: unpaced)"},
        {"redis", CFG_STR, OFF(redis), "", 0, 0, "MUNIM_REDIS", 1,
         "Redis the processes share the per-number budget, breaker states and controller "
         "signals through: redis://[:password@]host:port[/db] or a unix socket path; empty: "
         "each process alone"},
        {"redis-timeout-ms", CFG_INT, OFF(redis_timeout_ms), "50", 1, 10000,
         "MUNIM_REDIS_TIMEOUT_MS", 0,
         "time limit of a Redis connect or command; past it the process goes on alone"},
        {"senders", CFG_INT, OFF(senders), "1", 1, 100000, "MUNIM_SENDERS", 0,
         "with --redis, the sender processes sharing each number's budget until Redis has "
         "counted them; a sender that cannot reach Redis sends at most pace-per-number / "
         "senders"},
        {"hold-max-ms", CFG_INT, OFF(hold_max_ms), "3600000", 1000, 604800000, "MUNIM_HOLD_MAX_MS",
         0, "while no WhatsApp provider is up, how long P2/P3 wait before they expire"},
        {"delivery-min-pct", CFG_INT, OFF(delivery_min_pct), "90", 0, 100, "MUNIM_DELIVERY_MIN_PCT",
         0, "a WhatsApp provider delivering less than this share is treated as down for P0/P1"},
        {"delivery-window-ms", CFG_INT, OFF(delivery_window_ms), "300000", 1000, 86400000,
         "MUNIM_DELIVERY_WINDOW_MS", 0, "the rolling window of the delivery rate"},
        {"delivery-min-reports", CFG_INT, OFF(delivery_min_reports), "50", 1, 1000000,
         "MUNIM_DELIVERY_MIN_REPORTS", 0, "delivery reports in the window before the rate counts"},
        {"spike-depth-1", CFG_INT, OFF(spike_depth[1]), "500", 1, 1e12, "MUNIM_SPIKE_DEPTH_1", 0,
         "messages waiting (inbox and outbox) above which the spike level is at least 1"},
        {"spike-depth-2", CFG_INT, OFF(spike_depth[2]), "2000", 1, 1e12, "MUNIM_SPIKE_DEPTH_2", 0,
         "messages waiting (inbox and outbox) above which the spike level is at least 2"},
        {"spike-depth-3", CFG_INT, OFF(spike_depth[3]), "5000", 1, 1e12, "MUNIM_SPIKE_DEPTH_3", 0,
         "messages waiting (inbox and outbox) above which the spike level is at least 3"},
        {"spike-depth-4", CFG_INT, OFF(spike_depth[4]), "10000", 1, 1e12, "MUNIM_SPIKE_DEPTH_4", 0,
         "messages waiting (inbox and outbox) above which the spike level is at least 4"},
        {"spike-p95-ms-1", CFG_INT, OFF(spike_p95_ms[1]), "1000", 1, 86400000,
         "MUNIM_SPIKE_P95_MS_1", 0,
         "message latency p95 above which the spike level is at least 1"},
        {"spike-p95-ms-2", CFG_INT, OFF(spike_p95_ms[2]), "2000", 1, 86400000,
         "MUNIM_SPIKE_P95_MS_2", 0,
         "message latency p95 above which the spike level is at least 2"},
        {"spike-error-pct-3", CFG_DOUBLE, OFF(spike_error_pct[3]), "1", 0.001, 100,
         "MUNIM_SPIKE_ERROR_PCT_3", 0,
         "webhook error share (%) above which the spike level is at least 3"},
        {"spike-error-pct-4", CFG_DOUBLE, OFF(spike_error_pct[4]), "5", 0.001, 100,
         "MUNIM_SPIKE_ERROR_PCT_4", 0,
         "webhook error share (%) above which the spike level is at least 4"},
        {"spike-hold-ms", CFG_INT, OFF(spike_hold_ms), "60000", 0, 86400000, "MUNIM_SPIKE_HOLD_MS",
         0, "how long the signals must stay below a spike level before it falls one step"},
        {"degrade-ai-p95-ms", CFG_INT, OFF(degrade_ai_p95_ms), "3000", 1, 86400000,
         "MUNIM_DEGRADE_AI_P95_MS", 0,
         "AI endpoint latency p95 above which the degradation level is at least 1"},
        {"degrade-ai-error-pct", CFG_DOUBLE, OFF(degrade_ai_error_pct), "5", 0.001, 100,
         "MUNIM_DEGRADE_AI_ERROR_PCT", 0,
         "AI endpoint error share (%) above which the degradation level is at least 1"},
        {"degrade-store-error-pct", CFG_DOUBLE, OFF(degrade_store_error_pct), "5", 0.001, 100,
         "MUNIM_DEGRADE_STORE_ERROR_PCT", 0,
         "webhooks answered 503 (%) that, with WhatsApp down, make the level 4 (offline)"},
        {"degrade-hold-ms", CFG_INT, OFF(degrade_hold_ms), "60000", 0, 86400000,
         "MUNIM_DEGRADE_HOLD_MS", 0,
         "how long the signals must stay below a degradation level before it falls one step"},
        {"marketing-retry-after-s", CFG_INT, OFF(marketing_retry_after_s), "300", 1, 86400,
         "MUNIM_MARKETING_RETRY_AFTER_S", 0,
         "Retry-After (s) of a marketing request refused at spike level 4"},
        {"workers-max", CFG_INT, OFF(workers_max), "8", 1, 64, "MUNIM_WORKERS_MAX", 0,
         "the most worker threads the controller may run (it starts with --workers and "
         "scales by the seed's autoscaling rules)"},
        {"control-window-s", CFG_INT, OFF(control_window_s), "60", 1, 600, "MUNIM_CONTROL_WINDOW_S",
         0, "the window of the controller's latency p95 and webhook error rate, seconds"},
        {"companion-sync-max-ops", CFG_INT, OFF(companion_sync_max_ops), "500", 1, 5000,
         "MUNIM_COMPANION_SYNC_MAX_OPS", 0,
         "operations one companion sync may carry (more: 413, nothing applied)"},
        {"festival-calendar", CFG_STR, OFF(festival_calendar), FESTIVAL_SEED_CALENDAR, 0, 0,
         "MUNIM_FESTIVAL_CALENDAR", 0,
         "festival windows, ';'-separated, each name:phase:YYYY-MM-DD:<days>d[:<mult>x]"
         "[:alert=N] (phases monitor, prescale, prescale-strict, peak, scaledown, normal; "
         "dates 00:00 IST; \"\": none)"},
        {"hpa-min-replicas", CFG_INT, OFF(hpa_min_replicas), "10", 1, 100000,
         "MUNIM_HPA_MIN_REPLICAS", 0, "webhook workers' autoscaler: fewest replicas"},
        {"hpa-max-replicas", CFG_INT, OFF(hpa_max_replicas), "100", 1, 100000,
         "MUNIM_HPA_MAX_REPLICAS", 0, "webhook workers' autoscaler: most replicas"},
        {"hpa-cpu-pct", CFG_INT, OFF(hpa_cpu_pct), "60", 1, 100, "MUNIM_HPA_CPU_PCT", 0,
         "webhook workers' autoscaler: target CPU utilisation, percent"},
        {"hpa-memory-pct", CFG_INT, OFF(hpa_memory_pct), "70", 1, 100, "MUNIM_HPA_MEMORY_PCT", 0,
         "webhook workers' autoscaler: target memory utilisation, percent"},
        {"hpa-depth-per-worker", CFG_INT, OFF(hpa_depth_per_worker), "100", 1, 1000000,
         "MUNIM_HPA_DEPTH_PER_WORKER", 0,
         "webhook workers' autoscaler: target queue depth per worker (munim_inbox_depth)"},
        {"hpa-p95-ms", CFG_INT, OFF(hpa_p95_ms), "1000", 1, 3600000, "MUNIM_HPA_P95_MS", 0,
         "webhook workers' autoscaler: target message latency p95, ms"},
        {"hpa-up-window-s", CFG_INT, OFF(hpa_up_window_s), "60", 0, 3600, "MUNIM_HPA_UP_WINDOW_S",
         0, "webhook workers' autoscaler: scale-up stabilization window, seconds"},
        {"hpa-up-pods", CFG_INT, OFF(hpa_up_pods), "10", 1, 100000, "MUNIM_HPA_UP_PODS", 0,
         "webhook workers' autoscaler: pods added at most per scale-up period (Pods policy)"},
        {"hpa-up-percent", CFG_INT, OFF(hpa_up_percent), "100", 1, 10000, "MUNIM_HPA_UP_PERCENT", 0,
         "webhook workers' autoscaler: percent added at most per scale-up period"},
        {"hpa-up-period-s", CFG_INT, OFF(hpa_up_period_s), "60", 1, 1800, "MUNIM_HPA_UP_PERIOD_S",
         0, "webhook workers' autoscaler: period of the scale-up policies, seconds"},
        {"hpa-down-window-s", CFG_INT, OFF(hpa_down_window_s), "300", 0, 3600,
         "MUNIM_HPA_DOWN_WINDOW_S", 0,
         "webhook workers' autoscaler: scale-down stabilization window, seconds"},
        {"hpa-down-percent", CFG_INT, OFF(hpa_down_percent), "10", 1, 100, "MUNIM_HPA_DOWN_PERCENT",
         0, "webhook workers' autoscaler: percent removed at most per scale-down period"},
        {"hpa-down-period-s", CFG_INT, OFF(hpa_down_period_s), "60", 1, 1800,
         "MUNIM_HPA_DOWN_PERIOD_S", 0,
         "webhook workers' autoscaler: period of the scale-down policy, seconds"},
        {"hpa-sync-s", CFG_INT, OFF(hpa_sync_s), "15", 1, 600, "MUNIM_HPA_SYNC_S", 0,
         "how often the autoscaler decides, seconds (Kubernetes' default sync period)"},
        {"erp-services", CFG_LIST, OFF(erp_services),
         "order-service:10-100:65,inventory-service:5-50:70,invoice-service:5-50:60", 0, 0,
         "MUNIM_ERP_SERVICES", 0,
         "ERP services' autoscalers, comma-separated name:min-max:cpu-percent"},
        {"erp-ratio", CFG_DOUBLE, OFF(erp_ratio), "0.5", 0, 100, "MUNIM_ERP_RATIO", 0,
         "ERP pods per webhook worker when scaling both (scale_workers)"},
        {"baseline-workers", CFG_INT, OFF(baseline_workers), "30", 1, 100000,
         "MUNIM_BASELINE_WORKERS", 0,
         "webhook workers in normal operation, which festival multipliers multiply"},
        {"baseline-erp-pods", CFG_INT, OFF(baseline_erp_pods), "50", 1, 100000,
         "MUNIM_BASELINE_ERP_PODS", 0,
         "ERP pods (all services) in normal operation, which festival multipliers multiply"},
        {"out", CFG_STR, OFF(out), "", 0, 0, NULL, 0,
         "directory to write one file per object into (empty: standard output)"},
        {"namespace", CFG_STR, OFF(k8s_namespace), "munim", 0, 0, "MUNIM_NAMESPACE", 0,
         "Kubernetes namespace of the manifests"},
        {"prometheus", CFG_STR, OFF(prometheus), "http://prometheus.monitoring.svc:9090", 0, 0,
         "MUNIM_PROMETHEUS", 0, "Prometheus server the KEDA triggers query"},
        {"per-instance-rps", CFG_DOUBLE, OFF(per_instance_rps), "1920", 0.1, 1e7, NULL, 0,
         "messages per second one instance processes at most (docs/performance.md: 1,920/s "
         "with statuses)"},
        {"normal-peak-qps", CFG_INT, OFF(normal_peak_qps), "500", 1, 10000000, NULL, 0,
         "busiest second of a normal day at 100,000 tenants, messages/s"},
        {"minutes", CFG_INT, OFF(minutes), "1440", 1, 20160, NULL, 0,
         "minutes to report, from 00:00 IST of the profile's day"},
        {"csv", CFG_FLAG, OFF(csv), "0", 0, 1, NULL, 0, "print the minutes as CSV"},
        {"pod-startup-s", CFG_INT, OFF(pod_startup_s), "60", 0, 3600, NULL, 0,
         "seconds from a pod's creation to serving (an assumption)"},
        {"service-ms", CFG_INT, OFF(service_ms), "20", 1, 600000, NULL, 0,
         "one message's processing time with no queue, ms"},
        {"slo-p95-ms", CFG_INT, OFF(slo_p95_ms), "2000", 1, 3600000, NULL, 0,
         "the message latency SLO: p95 below this, ms"},
        {"slo-availability-pct", CFG_DOUBLE, OFF(slo_availability_pct), "99.9", 0, 100, NULL, 0,
         "the availability SLO: share of messages answered in time, percent"},
        {"late-ms", CFG_INT, OFF(late_ms), "10000", 1, 86400000, NULL, 0,
         "a message answered later than this counts against availability, ms"},
        {"sim-seed", CFG_INT, OFF(sim_seed), "1", 0, 9e18, NULL, 0,
         "seed of the simulation's random arrivals (same seed, same run)"},
        {"alert-url", CFG_STR, OFF(alert_url), "", 0, 0, "MUNIM_ALERT_URL", 0,
         "where to POST alerts (a breaker opening or closing) as JSON; empty: log lines only"},
        {"ai-url", CFG_STR, OFF(ai_url), "", 0, 0, "MUNIM_AI_URL", 0,
         "an OpenAI-compatible chat-completions URL that rewrites text the parser cannot read "
         "into a command; empty: none (the menu)"},
        {"ai-token", CFG_STR, OFF(ai_token), "", 0, 0, "MUNIM_AI_TOKEN", 1,
         "bearer token for --ai-url (empty: no Authorization header)"},
        {"ai-model", CFG_STR, OFF(ai_model), "gpt-4o-mini", 0, 0, "MUNIM_AI_MODEL", 0,
         "the model named in AI requests"},
        {"ai-timeout-ms", CFG_INT, OFF(ai_timeout_ms), "3000", 100, 600000, "MUNIM_AI_TIMEOUT_MS",
         0, "an AI call without an answer by then is a timeout (the customer gets the menu)"},
        {"ai-concurrency", CFG_INT, OFF(ai_concurrency), "8", 1, 256, "MUNIM_AI_CONCURRENCY", 0,
         "AI calls in flight at once"},
        {"ai-breaker-failures", CFG_INT, OFF(ai_breaker_failures), "5", 1, 1000,
         "MUNIM_AI_BREAKER_FAILURES", 0, "failed AI calls in a row that open the AI's breaker"},
        {"ai-breaker-successes", CFG_INT, OFF(ai_breaker_successes), "3", 1, 1000,
         "MUNIM_AI_BREAKER_SUCCESSES", 0, "half-open AI successes that close it again"},
        {"ai-breaker-open-ms", CFG_INT, OFF(ai_breaker_open_ms), "30000", 1, 86400000,
         "MUNIM_AI_BREAKER_OPEN_MS", 0,
         "how long the open AI breaker refuses calls (template replies meanwhile)"},
        {"ai-poll-ms", CFG_INT, OFF(ai_poll_ms), "100", 10, 10000, "MUNIM_AI_POLL_MS", 0,
         "how often the AI thread looks for new jobs"},
        {"app-secret", CFG_STR, OFF(app_secret), NULL, 0, 0, "MUNIM_APP_SECRET", 1,
         "app secret: the key of X-Hub-Signature-256"},
        {"verify-token", CFG_STR, OFF(verify_token), NULL, 0, 0, "MUNIM_VERIFY_TOKEN", 1,
         "token the webhook verification handshake must present"},
        {"access-token", CFG_STR, OFF(access_token), NULL, 0, 0, "MUNIM_ACCESS_TOKEN", 1,
         "bearer token for the Cloud API"},
        {"graph-version", CFG_STR, OFF(graph_version), "v21.0", 0, 0, "MUNIM_GRAPH_VERSION", 0,
         "Graph API version in send URLs"},
        {"workers", CFG_INT, OFF(workers), "2", 1, 64, "MUNIM_WORKERS", 0,
         "worker threads processing the inbox"},
        {"http-threads", CFG_INT, OFF(http_threads), "2", 1, 64, "MUNIM_HTTP_THREADS", 0,
         "HTTP server threads"},
        {"max-body", CFG_INT, OFF(max_body), "1048576", 1024, 3145728, "MUNIM_MAX_BODY", 0,
         "largest webhook body accepted, bytes (larger: 413)"},
        {"commit-batch", CFG_INT, OFF(commit_batch), "256", 1, 10000, "MUNIM_COMMIT_BATCH", 0,
         "most webhook requests sharing one ingest commit"},
        {"commit-window-ms", CFG_INT, OFF(commit_window_ms), "-1", -1, 100,
         "MUNIM_COMMIT_WINDOW_MS", 0,
         "longest a webhook commit waits for more requests to share it (0: none;"
         " -1: 5 with PostgreSQL, none with SQLite)"},
        {"committers", CFG_INT, OFF(committers), "-1", -1, 16, "MUNIM_COMMITTERS", 0,
         "webhook committer threads, each with its own store connection and its share of"
         " the shops (-1: 2 with PostgreSQL, 1 with SQLite)"},
        {"worker-batch", CFG_INT, OFF(worker_batch), "64", 1, 1024, "MUNIM_WORKER_BATCH", 0,
         "most messages sharing one worker commit"},
        {"inline-max", CFG_INT, OFF(inline_max), "64", 0, 1024, "MUNIM_INLINE_MAX", 0,
         "most new messages a webhook commit processes itself while the inbox is empty"
         " (0: the workers take them all)"},
        {"send-inflight", CFG_INT, OFF(send_inflight), "1024", 1, 16384, "MUNIM_SEND_INFLIGHT", 0,
         "sends in flight to the provider at once"},
        {"send-journal", CFG_STR, OFF(send_journal), "", 0, 0, "MUNIM_SEND_JOURNAL", 0,
         "file recording provider acceptances before the store does (default: <db>-sendlog; "
         "with a PostgreSQL store, munim-sendlog-<listen port> in the working directory)"},
        {"send-recover-grace-ms", CFG_INT, OFF(send_recover_grace_ms), "10000", 0, 3600000,
         "MUNIM_SEND_RECOVER_GRACE_MS", 0,
         "after a crash, how long sends in doubt wait for the provider's status before going "
         "again"},
        {"send-timeout-ms", CFG_INT, OFF(send_timeout_ms), "10000", 100, 600000,
         "MUNIM_SEND_TIMEOUT_MS", 0, "time limit of one send request"},
        {"send-max-attempts", CFG_INT, OFF(send_max_attempts), "8", 1, 100,
         "MUNIM_SEND_MAX_ATTEMPTS", 0, "attempts before a reply is dead-lettered"},
        {"retry-base-ms", CFG_INT, OFF(retry_base_ms), "1000", 1, 3600000, "MUNIM_RETRY_BASE_MS", 0,
         "first retry delay ceiling; doubles each attempt (full jitter)"},
        {"retry-cap-ms", CFG_INT, OFF(retry_cap_ms), "300000", 1, 86400000, "MUNIM_RETRY_CAP_MS", 0,
         "largest retry delay ceiling"},
        {"process-attempts", CFG_INT, OFF(process_attempts), "5", 1, 100, "MUNIM_PROCESS_ATTEMPTS",
         0, "processing attempts before an inbox entry is set aside"},
        {"log-level", CFG_STR, OFF(log_level), "info", 0, 0, "MUNIM_LOG_LEVEL", 0,
         "debug, info, warn or error"},
        {"tenants", CFG_INT, OFF(tenants), "1", 1, 10000000, NULL, 0,
         "how many tenants (seed: to create; loadgen: to spread messages over)"},
        {"first-phone-number-id", CFG_STR, OFF(first_phone_number_id), "100000000000001", 0, 0,
         NULL, 0, "phone_number_id of the first seeded tenant; the rest follow consecutively"},
        {"tenant", CFG_INT, OFF(tenant), "0", 0, 9e18, NULL, 0, "tenant id"},
        {"phone-number-id", CFG_STR, OFF(phone_number_id), NULL, 0, 0, NULL, 0,
         "the business's WhatsApp phone_number_id"},
        {"gstin", CFG_STR, OFF(gstin), "", 0, 0, NULL, 0, "GSTIN (empty if unregistered)"},
        {"state-code", CFG_STR, OFF(state_code), "27", 0, 0, NULL, 0,
         "two-digit GST state code of the business"},
        {"upi-id", CFG_STR, OFF(upi_id), "", 0, 0, NULL, 0, "UPI id (VPA) customers pay to"},
        {"owners", CFG_STR, OFF(owners), "", 0, 0, NULL, 0,
         "owner wa_ids, comma-separated (they may use owner commands)"},
        {"address", CFG_STR, OFF(address), "", 0, 0, NULL, 0, "postal address"},
        {"sku", CFG_STR, OFF(sku), NULL, 0, 0, NULL, 0, "product code, unique per tenant"},
        {"aliases", CFG_STR, OFF(aliases), "", 0, 0, NULL, 0,
         "other names customers use, comma-separated (e.g. chawal)"},
        {"unit", CFG_STR, OFF(unit), "pc", 0, 0, NULL, 0,
         "selling unit: kg, g, l, ml, pc or packet"},
        {"price", CFG_STR, OFF(price), NULL, 0, 0, NULL, 0,
         "pre-tax price of one selling unit, rupees (e.g. 62.50)"},
        {"gst", CFG_STR, OFF(gst), "5", 0, 0, NULL, 0, "GST rate, percent (e.g. 5, 18)"},
        {"hsn", CFG_STR, OFF(hsn), "", 0, 0, NULL, 0, "HSN code"},
        {"stock", CFG_STR, OFF(stock), "0", 0, 0, NULL, 0,
         "opening stock, in selling units (e.g. 25 or 2.5)"},
        {"webhook-url", CFG_STR, OFF(webhook_url), NULL, 0, 0, "MUNIM_WEBHOOK_URL", 0,
         "where to POST signed delivery statuses (none: no statuses)"},
        {"fault-error-rate", CFG_DOUBLE, OFF(fault_error_rate), "0", 0, 1, NULL, 0,
         "fraction of sends answered with --fault-status"},
        {"fault-status", CFG_INT, OFF(fault_status), "500", 100, 599, NULL, 0,
         "HTTP status of injected failures"},
        {"fault-latency-ms", CFG_INT, OFF(fault_latency_ms), "0", 0, 600000, NULL, 0,
         "delay added to every send answer"},
        {"fault-outage", CFG_FLAG, OFF(fault_outage), "0", 0, 1, NULL, 0,
         "fail every send with 503 until switched off"},
        {"delivered-statuses", CFG_INT, OFF(delivered_statuses), "1", 0, 1, NULL, 0,
         "1: send a delivered status for each accepted message"},
        {"fault-failed-rate", CFG_DOUBLE, OFF(fault_failed_rate), "0", 0, 1, NULL, 0,
         "fraction of accepted messages whose status is failed instead of delivered"},
        {"sms-dlr-url", CFG_STR, OFF(sms_dlr_url), NULL, 0, 0, NULL, 0,
         "where the SMS gateway mock POSTs delivery reports (none: no reports)"},
        {"auth-header", CFG_STR, OFF(auth_header), "", 0, 0, NULL, 0,
         "header that carries the token instead of \"Authorization: Bearer\" "
         "(e.g. D360-API-KEY)"},
        {"template", CFG_STR, OFF(template_name), NULL, 0, 0, NULL, 0,
         "the shop's approved WhatsApp template for marketing outside the 24-hour window"},
        {"template-lang", CFG_STR, OFF(template_lang), "en", 0, 0, NULL, 0,
         "language code of that template"},
        {"url", CFG_STR, OFF(url), "http://127.0.0.1:8080", 0, 0, "MUNIM_URL", 0,
         "base URL of a running munim serve"},
        {"bsp", CFG_STR, OFF(bsp), "http://127.0.0.1:9090", 0, 0, "MUNIM_BSP_URL", 0,
         "base URL of the mock BSP that receives the replies"},
        {"from", CFG_STR, OFF(from), "919800000001", 0, 0, NULL, 0, "customer wa_id to write as"},
        {"name", CFG_STR, OFF(name), NULL, 0, 0, NULL, 0,
         "name (of the business, the product, or the customer for say)"},
        {"to", CFG_STR, OFF(to), "100000000000001", 0, 0, NULL, 0, "the shop's phone_number_id"},
        {"button", CFG_STR, OFF(button), NULL, 0, 0, NULL, 0,
         "send a reply-button tap with this id instead of text"},
        {"timeout-ms", CFG_INT, OFF(timeout_ms), "10000", 1, 3600000, NULL, 0, "how long to wait"},
        {"dead", CFG_FLAG, OFF(dead), "0", 0, 1, NULL, 0, "list dead-lettered rows"},
        {"merged", CFG_FLAG, OFF(merged), "0", 0, 1, NULL, 0,
         "list replies merged into another, with the row that carried them"},
        {"limit", CFG_INT, OFF(limit), "50", 1, 100000, NULL, 0, "most rows to list"},
        {"rate", CFG_INT, OFF(rate), "100", 1, 100000, NULL, 0,
         "messages per second (stepped profile: the first step's)"},
        {"duration", CFG_INT, OFF(duration), "10", 1, 3600, NULL, 0, "seconds of sending"},
        {"profile", CFG_STR, OFF(profile), "constant", 0, 0, NULL, 0,
         "loadgen: constant, step (the rate rises by --step every --step-every seconds) or "
         "surge (--rate times --surge-factor from --surge-at for --surge-for seconds); "
         "plan simulate: diwali, newyear or normal"},
        {"step", CFG_INT, OFF(step), "100", 0, 100000, NULL, 0,
         "messages per second added at each step"},
        {"step-every", CFG_INT, OFF(step_every), "10", 1, 3600, NULL, 0, "seconds per step"},
        {"surge-factor", CFG_DOUBLE, OFF(surge_factor), "10", 1, 1000, "MUNIM_SURGE_FACTOR", 0,
         "surge profile: the rate is multiplied by this during the surge (the seed's festival "
         "peak: 10)"},
        {"surge-at", CFG_INT, OFF(surge_at), "10", 0, 3600, "MUNIM_SURGE_AT", 0,
         "surge profile: seconds of --rate before the surge"},
        {"surge-for", CFG_INT, OFF(surge_for), "10", 1, 3600, "MUNIM_SURGE_FOR", 0,
         "surge profile: seconds the surge lasts; --rate again after it until --duration"},
        {"customers", CFG_INT, OFF(customers), "100", 1, 1000000, NULL, 0,
         "customers writing to each shop (wa_ids consecutive from --from)"},
        {"text", CFG_STR, OFF(text), NULL, 0, 0, NULL, 0,
         "send only this text (default: a mix every seeded shop answers)"},
        {"connections", CFG_INT, OFF(connections), "256", 1, 4096, NULL, 0,
         "most requests in flight at once (keep-alive connections)"},
        {"drain-timeout", CFG_INT, OFF(drain_timeout), "30", 0, 3600, NULL, 0,
         "seconds to wait for the last replies after sending"},
        {"roles", CFG_STR, OFF(roles), "ingest,worker,sender,controller", 0, 0, "MUNIM_ROLES", 0,
         "what serve runs, comma-separated: ingest (webhooks), worker (inbox), sender (outbox),"
         " controller (may lead the cluster-wide jobs)"},
        {"node-name", CFG_STR, OFF(node_name), "", 0, 0, "MUNIM_NODE_NAME", 0,
         "this process's name among the store's processes, the same across its restarts and"
         " never two live at once (default: host:port of --listen)"},
};

#define NENTRIES (sizeof(table) / sizeof(table[0]))

static const struct cfg_entry *find(const char *name, size_t len)
{
	for (size_t i = 0; i < NENTRIES; i++)
		if (strlen(table[i].name) == len && strncmp(table[i].name, name, len) == 0)
			return &table[i];
	return NULL;
}

static int allowed(const char *const *names, const char *name)
{
	for (; *names; names++)
		if (strcmp(*names, name) == 0)
			return 1;
	return 0;
}

static int set_value(struct config *cfg, const struct cfg_entry *e, const char *v,
                     const char *origin)
{
	char *base = (char *)cfg;
	switch (e->type) {
	case CFG_STR:
	case CFG_LIST: {
		char **slot = (char **)(base + e->offset);
		free(*slot);
		*slot = xstrdup(v);
		return 0;
	}
	case CFG_INT:
	case CFG_FLAG: {
		char *end;
		errno = 0;
		long long n = strtoll(v, &end, 10);
		if (errno || end == v || *end || n < e->min || (double)n > e->max) {
			fprintf(stderr,
			        "munim: invalid value \"%s\" for %s %s (integer %.0f..%.0f)\n", v,
			        origin, e->name, e->min, e->max);
			return ERR_INVAL;
		}
		*(int64_t *)(base + e->offset) = n;
		return 0;
	}
	case CFG_DOUBLE: {
		char *end;
		errno = 0;
		double d = strtod(v, &end);
		if (errno || end == v || *end || d < e->min || d > e->max) {
			fprintf(stderr, "munim: invalid value \"%s\" for %s %s (number %g..%g)\n",
			        v, origin, e->name, e->min, e->max);
			return ERR_INVAL;
		}
		memcpy(base + e->offset, &d, sizeof(d));
		return 0;
	}
	}
	return ERR_INVAL;
}

/* list_append adds v as one more item of the list setting e. */
static void list_append(struct config *cfg, const struct cfg_entry *e, const char *v)
{
	char **slot = (char **)((char *)cfg + e->offset);
	size_t old = strlen(*slot), add = strlen(v);
	char *joined = xmalloc(old + 1 + add + 1);
	memcpy(joined, *slot, old);
	joined[old] = ',';
	memcpy(joined + old + 1, v, add + 1);
	free(*slot);
	*slot = joined;
}

void config_defaults(struct config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	for (size_t i = 0; i < NENTRIES; i++)
		if (table[i].def)
			set_value(cfg, &table[i], table[i].def, "default");
}

void config_release(struct config *cfg)
{
	char *base = (char *)cfg;
	for (size_t i = 0; i < NENTRIES; i++) {
		if (table[i].type == CFG_STR || table[i].type == CFG_LIST) {
			char **slot = (char **)(base + table[i].offset);
			free(*slot);
			*slot = NULL;
		}
	}
}

int config_parse(struct config *cfg, const char *cmd, const char *usage, const char *const *names,
                 int argc, char **argv, char **pos, int max_pos, int *npos)
{
	*npos = 0;
	/* --help first: its defaults are the command's own, before the
	 * environment or other options change them */
	for (int i = 0; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			config_usage(stdout, cmd, usage, names, cfg);
			return 1;
		}
	}
	for (size_t i = 0; i < NENTRIES; i++) {
		const char *v;
		if (table[i].env && allowed(names, table[i].name) && (v = getenv(table[i].env)) &&
		    *v && set_value(cfg, &table[i], v, "environment variable for") != 0)
			return ERR_INVAL;
	}
	/* the list flags already given on this command line (they append) */
	unsigned char given[NENTRIES] = {0};
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			for (i++; i < argc; i++) {
				if (*npos >= max_pos)
					goto too_many;
				pos[(*npos)++] = argv[i];
			}
			break;
		}
		if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
			if (*npos >= max_pos)
				goto too_many;
			pos[(*npos)++] = argv[i];
			continue;
		}
		const char *name = a + 2, *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		const struct cfg_entry *e = find(name, len);
		if (!e || !allowed(names, e->name)) {
			fprintf(stderr, "munim %s: unknown option \"%.*s\" (see munim %s --help)\n",
			        cmd, (int)(len + 2), a, cmd);
			return ERR_INVAL;
		}
		const char *v;
		if (eq) {
			v = eq + 1;
		} else if (e->type == CFG_FLAG) {
			v = "1";
		} else if (i + 1 < argc) {
			v = argv[++i];
		} else {
			fprintf(stderr, "munim %s: option \"--%s\" needs a value\n", cmd, e->name);
			return ERR_INVAL;
		}
		if (e->type == CFG_LIST && given[e - table])
			list_append(cfg, e, v);
		else if (set_value(cfg, e, v, "option --") != 0)
			return ERR_INVAL;
		given[e - table] = 1;
	}
	return 0;
too_many:
	fprintf(stderr, "munim %s: too many arguments (see munim %s --help)\n", cmd, cmd);
	return ERR_INVAL;
}

/* The value of e in cfg as text into tmp (NULL when unset). */
static const char *value_text(const struct config *cfg, const struct cfg_entry *e, char *tmp,
                              size_t cap)
{
	const char *base = (const char *)cfg;
	switch (e->type) {
	case CFG_STR:
	case CFG_LIST: return *(char *const *)(base + e->offset);
	case CFG_INT:
	case CFG_FLAG:
		snprintf(tmp, cap, "%lld", (long long)*(const int64_t *)(base + e->offset));
		return tmp;
	case CFG_DOUBLE: {
		double d;
		memcpy(&d, base + e->offset, sizeof(d));
		snprintf(tmp, cap, "%g", d);
		return tmp;
	}
	}
	return NULL;
}

void config_usage(FILE *out, const char *cmd, const char *usage, const char *const *names,
                  const struct config *cfg)
{
	fprintf(out, "usage: munim %s %s\n", cmd, usage);
	if (!names[0])
		return;
	fprintf(out, "\noptions:\n");
	for (const char *const *n = names; *n; n++) {
		const struct cfg_entry *e = find(*n, strlen(*n));
		if (!e)
			continue;
		char flag[64];
		snprintf(flag, sizeof(flag), "--%s%s", e->name, e->type == CFG_FLAG ? "" : " V");
		fprintf(out, "  %-28s %s", flag, e->help);
		char tmp[64];
		const char *def = cfg ? value_text(cfg, e, tmp, sizeof(tmp)) : e->def;
		if (def && !e->secret && (cfg || e->def))
			fprintf(out, " [default: %s]", def);
		if (e->env)
			fprintf(out, " (env %s)", e->env);
		fprintf(out, "\n");
	}
}

void config_dump(FILE *out, const struct config *cfg, const char *const *names)
{
	for (const char *const *n = names; *n; n++) {
		const struct cfg_entry *e = find(*n, strlen(*n));
		if (!e)
			continue;
		char tmp[64];
		const char *v = value_text(cfg, e, tmp, sizeof(tmp));
		fprintf(out, "%s = %s\n", e->name, !v ? "(unset)" : e->secret ? "(set)" : v);
	}
}

int config_list_split(const char *list, char ***items)
{
	int n = 0;
	*items = NULL;
	if (!list)
		return 0;
	for (const char *p = list;; p++) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		while (len > 0 && (*p == ' ' || *p == '\t'))
			p++, len--;
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		*items = xrealloc(*items, (size_t)(n + 1) * sizeof(**items));
		(*items)[n++] = xstrndup(p, len);
		if (!end)
			break;
		p = end;
	}
	return n;
}

void config_list_free(char **items, int n)
{
	for (int i = 0; i < n; i++)
		free(items[i]);
	free(items);
}
