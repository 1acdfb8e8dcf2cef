/*
 * settings.c - the autoscaling plan from the config table: the webhook
 * workers' autoscaler (the hpa-* settings, the seed's numbers by default),
 * the ERP services (erp-services: "name:min-max:cpu" items), the
 * baselines festival multipliers multiply, and the festival calendar.
 *
 * Threading: none; the caller owns the struct.
 */
#include "plan/plan.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/err.h"

int plan_dns_label(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!(islower((unsigned char)s[i]) || isdigit((unsigned char)s[i]) || s[i] == '-'))
			return 0;
	return 1;
}

/* A whole number 1..1000000 from the whole of [s, s + len). */
static int parse_count(const char *s, size_t len, int *out)
{
	if (len == 0 || len > 7)
		return ERR_INVAL;
	int v = 0;
	for (size_t i = 0; i < len; i++) {
		if (!isdigit((unsigned char)s[i]))
			return ERR_INVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v < 1 || v > 1000000)
		return ERR_INVAL;
	*out = v;
	return 0;
}

/* One erp-services item, "order-service:10-100:65". */
static int parse_erp(const char *item, struct plan_erp *e, char *err, size_t errcap)
{
	const char *c1 = strchr(item, ':');
	const char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	const char *dash = c1 && c2 ? memchr(c1 + 1, '-', (size_t)(c2 - c1 - 1)) : NULL;
	memset(e, 0, sizeof(*e));
	if (!c1 || !c2 || !dash || strchr(c2 + 1, ':')) {
		snprintf(err, errcap,
		         "bad erp-services item \"%.64s\" (want name:min-max:cpu-percent)", item);
		return ERR_INVAL;
	}
	size_t nlen = (size_t)(c1 - item);
	if (nlen == 0 || nlen >= sizeof(e->name)) {
		snprintf(err, errcap, "bad erp-services item \"%.64s\": name of 1..31 characters",
		         item);
		return ERR_INVAL;
	}
	memcpy(e->name, item, nlen);
	if (!plan_dns_label(e->name)) {
		snprintf(err, errcap,
		         "bad erp-services item \"%.64s\": the name must be a Kubernetes name "
		         "(a-z, 0-9, '-')",
		         item);
		return ERR_INVAL;
	}
	if (parse_count(c1 + 1, (size_t)(dash - c1 - 1), &e->min_replicas) != 0 ||
	    parse_count(dash + 1, (size_t)(c2 - dash - 1), &e->max_replicas) != 0 ||
	    e->max_replicas < e->min_replicas) {
		snprintf(err, errcap,
		         "bad erp-services item \"%.64s\": replicas must be min-max, 1 <= min <= "
		         "max",
		         item);
		return ERR_INVAL;
	}
	if (parse_count(c2 + 1, strlen(c2 + 1), &e->cpu_pct) != 0 || e->cpu_pct > 100) {
		snprintf(err, errcap, "bad erp-services item \"%.64s\": CPU target must be 1..100",
		         item);
		return ERR_INVAL;
	}
	return 0;
}

int plan_settings_from_config(const struct config *cfg, struct plan_settings *out, char *err,
                              size_t errcap)
{
	memset(out, 0, sizeof(*out));
	if (errcap)
		err[0] = '\0';
	struct hpa_config *h = &out->hpa;
	hpa_config_default(h, (int)cfg->hpa_min_replicas, (int)cfg->hpa_max_replicas);
	h->up.stabilization_ms = cfg->hpa_up_window_s * 1000;
	h->up.select = HPA_SELECT_MAX;
	h->up.npolicies = 2;
	h->up.policies[0] =
	        (struct hpa_policy){HPA_PODS, (int)cfg->hpa_up_pods, cfg->hpa_up_period_s * 1000};
	h->up.policies[1] = (struct hpa_policy){HPA_PERCENT, (int)cfg->hpa_up_percent,
	                                        cfg->hpa_up_period_s * 1000};
	h->down.stabilization_ms = cfg->hpa_down_window_s * 1000;
	h->down.select = HPA_SELECT_MAX;
	h->down.npolicies = 1;
	h->down.policies[0] = (struct hpa_policy){HPA_PERCENT, (int)cfg->hpa_down_percent,
	                                          cfg->hpa_down_period_s * 1000};
	if (h->max_replicas < h->min_replicas) {
		snprintf(err, errcap, "hpa-max-replicas %d is below hpa-min-replicas %d",
		         h->max_replicas, h->min_replicas);
		return ERR_INVAL;
	}
	out->cpu_pct = (int)cfg->hpa_cpu_pct;
	out->memory_pct = (int)cfg->hpa_memory_pct;
	out->depth_per_worker = cfg->hpa_depth_per_worker;
	out->p95_ms = cfg->hpa_p95_ms;
	out->sync_ms = cfg->hpa_sync_s * 1000;
	out->baseline_workers = (int)cfg->baseline_workers;
	out->baseline_erp_pods = (int)cfg->baseline_erp_pods;
	out->erp_ratio = cfg->erp_ratio;

	char **items = NULL;
	int nitems = config_list_split(cfg->erp_services, &items), n = nitems;
	int rc = 0;
	if (n == 1 && items[0][0] == '\0') {
		n = 0; /* "": no ERP services */
	} else if (n > SCALE_MAX_SERVICES) {
		snprintf(err, errcap, "erp-services: more than %d services", SCALE_MAX_SERVICES);
		rc = ERR_INVAL;
	}
	for (int i = 0; rc == 0 && i < n; i++) {
		rc = parse_erp(items[i], &out->erp[i], err, errcap);
		for (int j = 0; rc == 0 && j < i; j++) {
			if (strcmp(out->erp[j].name, out->erp[i].name) == 0) {
				snprintf(err, errcap, "erp-services: \"%s\" twice",
				         out->erp[i].name);
				rc = ERR_INVAL;
			}
		}
		if (rc == 0 && strcmp(out->erp[i].name, "webhook-workers") == 0) {
			snprintf(err, errcap,
			         "erp-services: \"webhook-workers\" is the workers' name");
			rc = ERR_INVAL;
		}
	}
	config_list_free(items, nitems);
	if (rc != 0)
		return rc;
	out->nerp = n;
	char why[200];
	rc = festival_parse(cfg->festival_calendar, &out->cal, why, sizeof(why));
	if (rc != 0)
		snprintf(err, errcap, "--festival-calendar: %s", why);
	return rc;
}

void plan_settings_release(struct plan_settings *ps)
{
	festival_calendar_release(&ps->cal);
}

void plan_scale_limits(const struct plan_settings *ps, struct scale_limits *out)
{
	memset(out, 0, sizeof(*out));
	out->webhook_min = ps->hpa.min_replicas;
	out->webhook_max = ps->hpa.max_replicas;
	out->erp_ratio = ps->erp_ratio;
	out->nservices = ps->nerp;
	for (int i = 0; i < ps->nerp; i++) {
		memcpy(out->services[i].name, ps->erp[i].name, sizeof(out->services[i].name));
		out->services[i].min_replicas = ps->erp[i].min_replicas;
		out->services[i].max_replicas = ps->erp[i].max_replicas;
	}
}
