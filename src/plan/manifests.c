/*
 * manifests.c - the autoscaling plan as Kubernetes objects (YAML text).
 *
 * For the webhook workers and each ERP service, two alternatives:
 *
 *   - an autoscaling/v2 HorizontalPodAutoscaler: the seed's numbers (for
 *     the workers CPU and memory utilisation, queue depth per worker from
 *     munim_inbox_depth, latency p95 from munim_message_latency_seconds,
 *     and the behavior: scale up after 60 s by +10 pods or +100 % per 60 s,
 *     the larger; scale down after 300 s by 10 % per 60 s);
 *   - a KEDA ScaledObject (keda.sh/v1alpha1) with the same bounds and
 *     behavior, the same metrics as triggers (Prometheus queries for depth
 *     and p95), and one cron trigger per festival window (Asia/Kolkata)
 *     whose desiredReplicas is the festival floor: baseline x multiplier
 *     within the bounds. A scaledown window after a higher one becomes
 *     one trigger per hour of its ramp, then one for the rest.
 *
 * KEDA makes an HPA of its own for each ScaledObject, so a deployment
 * takes one of the two, not both; every document says so.
 *
 * Cron has no year: a trigger recurs on the same dates every year, while
 * festival dates move - the manifests are made for one calendar and say
 * so in a comment.
 *
 * Threading: none; the caller owns the documents.
 */
#include "plan/plan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/xalloc.h"

#define WEBHOOK_NAME "webhook-workers"

static const char either_or[] =
        "# Apply either the HorizontalPodAutoscaler or the KEDA ScaledObject of a deployment,\n"
        "# not both: KEDA makes an HPA of its own for each ScaledObject.\n";

static struct plan_doc *add_doc(struct plan_doc **docs, int *n, const char *kind, const char *name)
{
	*docs = xrealloc(*docs, (size_t)(*n + 1) * sizeof(**docs));
	struct plan_doc *d = &(*docs)[(*n)++];
	snprintf(d->file, sizeof(d->file), "%s-%s.yaml", kind, name);
	buf_init(&d->yaml);
	return d;
}

void plan_docs_free(struct plan_doc *docs, int n)
{
	for (int i = 0; i < n; i++)
		buf_release(&docs[i].yaml);
	free(docs);
}

static void metadata(struct buf *b, const char *name, const char *ns)
{
	buf_printf(b,
	           "metadata:\n"
	           "  name: %s\n"
	           "  namespace: %s\n"
	           "  labels:\n"
	           "    app.kubernetes.io/part-of: munim\n",
	           name, ns);
}

/* spec.behavior (HPA) or advanced.horizontalPodAutoscalerConfig.behavior
 * (KEDA), indented by ind spaces. */
static void behavior(struct buf *b, const struct hpa_config *h, int ind)
{
	static const char *const type[] = {"Pods", "Percent"};
	static const char *const select[] = {"Max", "Min", "Disabled"};
	const struct hpa_rules *r[2] = {&h->up, &h->down};
	const char *dir[2] = {"scaleUp", "scaleDown"};
	buf_printf(b, "%*sbehavior:\n", ind, "");
	for (int d = 0; d < 2; d++) {
		buf_printf(b,
		           "%*s%s:\n"
		           "%*sstabilizationWindowSeconds: %lld\n"
		           "%*sselectPolicy: %s\n"
		           "%*spolicies:\n",
		           ind + 2, "", dir[d], ind + 4, "",
		           (long long)(r[d]->stabilization_ms / 1000), ind + 4, "",
		           select[r[d]->select], ind + 4, "");
		for (int i = 0; i < r[d]->npolicies; i++) {
			const struct hpa_policy *p = &r[d]->policies[i];
			buf_printf(b,
			           "%*s- type: %s\n"
			           "%*s  value: %d\n"
			           "%*s  periodSeconds: %lld\n",
			           ind + 4, "", type[p->type], ind + 4, "", p->value, ind + 4, "",
			           (long long)(p->period_ms / 1000));
		}
	}
}

static void resource_metric(struct buf *b, const char *res, int pct)
{
	buf_printf(b,
	           "  - type: Resource\n"
	           "    resource:\n"
	           "      name: %s\n"
	           "      target:\n"
	           "        type: Utilization\n"
	           "        averageUtilization: %d\n",
	           res, pct);
}

static void hpa_head(struct buf *b, const char *name, const char *ns, int min, int max)
{
	buf_puts(b, "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n");
	metadata(b, name, ns);
	buf_printf(b,
	           "spec:\n"
	           "  scaleTargetRef:\n"
	           "    apiVersion: apps/v1\n"
	           "    kind: Deployment\n"
	           "    name: %s\n"
	           "  minReplicas: %d\n"
	           "  maxReplicas: %d\n"
	           "  metrics:\n",
	           name, min, max);
}

/* A quantity in Kubernetes' notation: "1", "1500m". */
static void quantity_ms(char *out, size_t cap, int64_t ms)
{
	if (ms % 1000 == 0)
		snprintf(out, cap, "%lld", (long long)(ms / 1000));
	else
		snprintf(out, cap, "%lldm", (long long)ms);
}

static void hpa_webhook(const struct plan_settings *ps, const char *ns, struct buf *b)
{
	char p95[32];
	quantity_ms(p95, sizeof(p95), ps->p95_ms);
	buf_puts(b, "# munim webhook workers: the seed's autoscaler (\"Auto-Scaling "
	            "Configuration\").\n");
	buf_puts(b, either_or);
	buf_puts(b,
	         "# The Pods metrics come through a custom metrics adapter; prometheus-adapter "
	         "rules:\n"
	         "#   munim_inbox_depth: seriesQuery "
	         "'munim_inbox_depth{namespace!=\"\",pod!=\"\"}'\n"
	         "#   munim_message_latency_p95_seconds: seriesQuery\n"
	         "#     'munim_message_latency_seconds_bucket{namespace!=\"\",pod!=\"\"}', "
	         "metricsQuery\n"
	         "#     'histogram_quantile(0.95, sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m]))\n"
	         "#     by (le, <<.GroupBy>>))'\n");
	hpa_head(b, WEBHOOK_NAME, ns, ps->hpa.min_replicas, ps->hpa.max_replicas);
	resource_metric(b, "cpu", ps->cpu_pct);
	resource_metric(b, "memory", ps->memory_pct);
	buf_printf(b,
	           "  - type: Pods\n"
	           "    pods:\n"
	           "      metric:\n"
	           "        name: munim_inbox_depth\n"
	           "      target:\n"
	           "        type: AverageValue\n"
	           "        averageValue: \"%lld\"\n"
	           "  - type: Pods\n"
	           "    pods:\n"
	           "      metric:\n"
	           "        name: munim_message_latency_p95_seconds\n"
	           "      target:\n"
	           "        type: AverageValue\n"
	           "        averageValue: \"%s\"\n",
	           (long long)ps->depth_per_worker, p95);
	behavior(b, &ps->hpa, 2);
}

static void hpa_erp(const struct plan_settings *ps, const struct plan_erp *e, const char *ns,
                    struct buf *b)
{
	buf_printf(b, "# munim ERP service %s: the seed's autoscaler.\n", e->name);
	buf_puts(b, either_or);
	hpa_head(b, e->name, ns, e->min_replicas, e->max_replicas);
	resource_metric(b, "cpu", e->cpu_pct);
	(void)ps;
}

/* "0 H D M *": minute, hour, day of month, month, any weekday, in IST. */
static void cron_at(char *out, size_t cap, int64_t wall_ms)
{
	int y, m, d;
	clock_ist_date(wall_ms, &y, &m, &d);
	int64_t into = wall_ms - clock_ist_day_start(wall_ms);
	snprintf(out, cap, "%d %d %d %d *", (int)(into / 60000 % 60), (int)(into / 3600000), d, m);
}

static void date_text(char *out, size_t cap, int64_t wall_ms)
{
	int y, m, d;
	clock_ist_date(wall_ms, &y, &m, &d);
	snprintf(out, cap, "%04d-%02d-%02d", y, m, d);
}

/* The replicas of target (-1: the webhook workers, else ERP service i) at
 * a festival multiplier: baseline x multiplier within the bounds. */
static int floor_for(const struct plan_settings *ps, int target, double mult, int *capped)
{
	double want;
	int lo, hi;
	if (target < 0) {
		want = ceil(ps->baseline_workers * mult - 1e-9);
		lo = ps->hpa.min_replicas;
		hi = ps->hpa.max_replicas;
	} else {
		struct scale_limits l;
		plan_scale_limits(ps, &l);
		int share[SCALE_MAX_SERVICES];
		double total = ceil(ps->baseline_erp_pods * mult - 1e-9);
		int itotal = total > 1e9 ? 1000000000 : (int)total;
		scale_erp_share(&l, itotal, share);
		double sum = 0;
		for (int i = 0; i < l.nservices; i++)
			sum += l.services[i].max_replicas;
		/* its exact share of the total, before the bounds */
		double exact = itotal * (double)l.services[target].max_replicas / sum;
		*capped = exact > l.services[target].max_replicas + 1e-9;
		return share[target];
	}
	*capped = want > hi;
	return want < lo ? lo : want > hi ? hi : (int)want;
}

/* One cron trigger; mult is the multiplier as text for the comment. */
static void cron_trigger(struct buf *b, const char *label, int64_t from_ms, int64_t to_ms,
                         const char *mult, int replicas, int capped)
{
	char start[32], end[32], day[16];
	cron_at(start, sizeof(start), from_ms);
	cron_at(end, sizeof(end), to_ms);
	date_text(day, sizeof(day), from_ms);
	int64_t into = from_ms - clock_ist_day_start(from_ms);
	buf_printf(b,
	           "  # %s from %s %02d:%02d IST, %s%s\n"
	           "  - type: cron\n"
	           "    metadata:\n"
	           "      timezone: Asia/Kolkata\n"
	           "      start: \"%s\"\n"
	           "      end: \"%s\"\n"
	           "      desiredReplicas: \"%d\"\n",
	           label, day, (int)(into / 3600000), (int)(into / 60000 % 60), mult,
	           capped ? " (cut to the maximum)" : "", start, end, replicas);
}

/* The cron triggers of every festival window for target (see floor_for). A
 * scaledown window's ramp becomes one trigger per hour in which the
 * replicas change (hours with the same replicas merged), then the rest. */
static void festival_triggers(const struct plan_settings *ps, int target, struct buf *b)
{
	for (int i = 0; i < ps->cal.n; i++) {
		const struct festival_window *w = &ps->cal.w[i];
		char label[64], mult[80];
		snprintf(label, sizeof(label), "%s %s", w->name, w->phase);
		int capped = 0;
		if (w->kind == FESTIVAL_SCALEDOWN && w->ramp_from > w->multiplier) {
			int64_t from = w->start_ms;
			double m0 = festival_multiplier(&ps->cal, from), m1 = m0;
			int r0 = floor_for(ps, target, m0, &capped), cap0 = capped;
			for (int64_t t = from + 3600000;; t += 3600000) {
				int done = t >= w->end_ms;
				double m = done ? 0 : festival_multiplier(&ps->cal, t);
				int r = done ? -1 : floor_for(ps, target, m, &capped);
				if (!done && r == r0) {
					m1 = m;
					continue;
				}
				if (m1 != m0)
					snprintf(mult, sizeof(mult),
					         "%gx falling to %gx by the hour", m0, m1);
				else
					snprintf(mult, sizeof(mult), "%gx", m0);
				cron_trigger(b, label, from, done ? w->end_ms : t, mult, r0, cap0);
				if (done)
					break;
				from = t;
				m0 = m1 = m;
				r0 = r;
				cap0 = capped;
			}
			continue;
		}
		int r = floor_for(ps, target, w->multiplier, &capped);
		snprintf(mult, sizeof(mult), "%gx", w->multiplier);
		cron_trigger(b, label, w->start_ms, w->end_ms, mult, r, capped);
	}
}

static void scaled_object_head(const struct plan_settings *ps, const char *name, const char *ns,
                               int min, int max, struct buf *b)
{
	buf_puts(b, "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n");
	metadata(b, name, ns);
	buf_printf(b,
	           "spec:\n"
	           "  scaleTargetRef:\n"
	           "    name: %s\n"
	           "  pollingInterval: %lld\n"
	           "  minReplicaCount: %d\n"
	           "  maxReplicaCount: %d\n"
	           "  advanced:\n"
	           "    horizontalPodAutoscalerConfig:\n",
	           name, (long long)(ps->sync_ms / 1000), min, max);
}

static void cpu_trigger(struct buf *b, const char *res, int pct)
{
	buf_printf(b,
	           "  - type: %s\n"
	           "    metricType: Utilization\n"
	           "    metadata:\n"
	           "      value: \"%d\"\n",
	           res, pct);
}

static const char cron_note[] =
        "# Cron triggers have no year: they recur on these dates every year, while festival\n"
        "# dates move. Make the manifests again for each year's calendar.\n";

static void keda_webhook(const struct plan_settings *ps, const struct plan_manifest_opts *o,
                         struct buf *b)
{
	char p95[32];
	quantity_ms(p95, sizeof(p95), ps->p95_ms);
	buf_puts(b,
	         "# munim webhook workers: the seed's autoscaler, with festival pre-scaling\n"
	         "# (\"Festival Calendar-Based Pre-Scaling\": floor = baseline x multiplier).\n");
	buf_puts(b, either_or);
	buf_puts(b, cron_note);
	scaled_object_head(ps, WEBHOOK_NAME, o->k8s_namespace, ps->hpa.min_replicas,
	                   ps->hpa.max_replicas, b);
	behavior(b, &ps->hpa, 6);
	buf_puts(b, "  triggers:\n");
	cpu_trigger(b, "cpu", ps->cpu_pct);
	cpu_trigger(b, "memory", ps->memory_pct);
	buf_printf(b,
	           "  # queue depth per worker (munim_inbox_depth, a gauge per instance)\n"
	           "  - type: prometheus\n"
	           "    metricType: AverageValue\n"
	           "    metadata:\n"
	           "      serverAddress: %s\n"
	           "      query: sum(munim_inbox_depth)\n"
	           "      threshold: \"%lld\"\n"
	           "  # message latency p95 (munim_message_latency_seconds, a histogram), seconds\n"
	           "  - type: prometheus\n"
	           "    metricType: Value\n"
	           "    metadata:\n"
	           "      serverAddress: %s\n"
	           "      query: histogram_quantile(0.95, sum(rate(munim_message_latency_seconds_"
	           "bucket[1m])) by (le))\n"
	           "      threshold: \"%s\"\n",
	           o->prometheus, (long long)ps->depth_per_worker, o->prometheus, p95);
	festival_triggers(ps, -1, b);
}

static void keda_erp(const struct plan_settings *ps, int i, const struct plan_manifest_opts *o,
                     struct buf *b)
{
	const struct plan_erp *e = &ps->erp[i];
	buf_printf(
	        b,
	        "# munim ERP service %s, with festival pre-scaling: its share of the %d ERP pods\n"
	        "# of normal operation, times the multiplier.\n",
	        e->name, ps->baseline_erp_pods);
	buf_puts(b, either_or);
	buf_puts(b, cron_note);
	scaled_object_head(ps, e->name, o->k8s_namespace, e->min_replicas, e->max_replicas, b);
	/* the ERP services keep Kubernetes' default behavior: the seed gives none */
	struct hpa_config def;
	hpa_config_default(&def, e->min_replicas, e->max_replicas);
	behavior(b, &def, 6);
	buf_puts(b, "  triggers:\n");
	cpu_trigger(b, "cpu", e->cpu_pct);
	festival_triggers(ps, i, b);
}

int plan_manifests(const struct plan_settings *ps, const struct plan_manifest_opts *o,
                   struct plan_doc **docs, int *ndocs)
{
	*docs = NULL;
	*ndocs = 0;
	if (!o->k8s_namespace || !plan_dns_label(o->k8s_namespace) || !o->prometheus ||
	    (strncmp(o->prometheus, "http://", 7) != 0 &&
	     strncmp(o->prometheus, "https://", 8) != 0) ||
	    strpbrk(o->prometheus, " \t\r\n\"'#"))
		return ERR_INVAL;
	hpa_webhook(ps, o->k8s_namespace, &add_doc(docs, ndocs, "hpa", WEBHOOK_NAME)->yaml);
	for (int i = 0; i < ps->nerp; i++)
		hpa_erp(ps, &ps->erp[i], o->k8s_namespace,
		        &add_doc(docs, ndocs, "hpa", ps->erp[i].name)->yaml);
	keda_webhook(ps, o, &add_doc(docs, ndocs, "scaledobject", WEBHOOK_NAME)->yaml);
	for (int i = 0; i < ps->nerp; i++)
		keda_erp(ps, i, o, &add_doc(docs, ndocs, "scaledobject", ps->erp[i].name)->yaml);
	return 0;
}
