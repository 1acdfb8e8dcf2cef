/*
 * test_simulate.c - the capacity plan: scale_workers against hand-worked
 * cases; the plan from the settings (and bad erp-services refused); the
 * manifests' key lines; the traffic curve's shape; and the simulation
 * core - a constant load under capacity keeps the queue empty at the
 * minimum, a step to 10x makes replicas rise no faster than the scale-up
 * policies allow and settle, a load above the maximum grows the queue, the
 * festival floor holds replicas up, pods serve only after their start-up,
 * and a run is the same every time. No timing is asserted.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "control/scale.h"
#include "core/config.h"
#include "core/err.h"
#include "plan/plan.h"

static void test_scale_workers(void **state)
{
	(void)state;
	struct scale_limits l;
	struct scale_target t;
	scale_limits_seed(&l);
	/* the seed's festival case: 30 x 10 = 300, capped at 100; ERP 50 */
	assert_int_equal(scale_workers_target(&l, 30, 10, &t), 0);
	assert_int_equal(t.webhook, 100);
	assert_int_equal(t.webhook_capped, 1);
	assert_int_equal(t.erp_wanted, 50);
	/* shared 2:1:1 by the maximums 100:50:50, the odd pod to the larger fraction */
	assert_int_equal(t.erp[0], 25);
	assert_int_equal(t.erp[1] + t.erp[2], 25);
	assert_int_equal(t.erp_total, 50);
	assert_int_equal(t.erp_capped, 0);
	/* 30 x 2 = 60, ERP 30: order 15, inventory 8 (first of the tie), invoice 7 */
	assert_int_equal(scale_workers_target(&l, 30, 2, &t), 0);
	assert_int_equal(t.webhook, 60);
	assert_int_equal(t.webhook_capped, 0);
	assert_int_equal(t.erp[0], 15);
	assert_int_equal(t.erp[1], 8);
	assert_int_equal(t.erp[2], 7);
	/* rounded up: 7 x 1.5 = 10.5 -> 11; 30 x 1.1 = 33 exactly */
	assert_int_equal(scale_workers_target(&l, 7, 1.5, &t), 0);
	assert_int_equal(t.webhook, 11);
	assert_int_equal(scale_workers_target(&l, 30, 1.1, &t), 0);
	assert_int_equal(t.webhook, 33);
	/* never below the minimums: 2 x 1 -> 10 workers; ERP 5 wanted -> the
	 * minimums 10 + 5 + 5 */
	assert_int_equal(scale_workers_target(&l, 2, 1, &t), 0);
	assert_int_equal(t.webhook, 10);
	assert_int_equal(t.erp_wanted, 20);
	assert_int_equal(t.erp[0], 10);
	assert_int_equal(t.erp[1], 5);
	assert_int_equal(t.erp[2], 5);
	/* a ratio that asks for more than the maximums: cut, and said so */
	l.erp_ratio = 3;
	assert_int_equal(scale_workers_target(&l, 100, 1, &t), 0);
	assert_int_equal(t.erp_wanted, 300);
	assert_int_equal(t.erp_total, 200);
	assert_int_equal(t.erp_capped, 1);
	/* refused */
	scale_limits_seed(&l);
	assert_int_equal(scale_workers_target(&l, -1, 2, &t), ERR_INVAL);
	assert_int_equal(scale_workers_target(&l, 30, 0, &t), ERR_INVAL);
	assert_int_equal(scale_workers_target(&l, 30, -2, &t), ERR_INVAL);
	l.webhook_max = 5;
	assert_int_equal(scale_workers_target(&l, 30, 2, &t), ERR_INVAL);
}

/* The plan from the built-in settings, optionally with one changed. */
static void plan_with(struct plan_settings *ps, const char *erp, const char *calendar)
{
	struct config cfg;
	char err[256];
	config_defaults(&cfg);
	if (erp) {
		free(cfg.erp_services);
		cfg.erp_services = strdup(erp);
	}
	if (calendar) {
		free(cfg.festival_calendar);
		cfg.festival_calendar = strdup(calendar);
	}
	int rc = plan_settings_from_config(&cfg, ps, err, sizeof(err));
	config_release(&cfg);
	if (rc != 0)
		fail_msg("plan: %s", err);
}

static void test_settings(void **state)
{
	(void)state;
	struct plan_settings ps;
	plan_with(&ps, NULL, NULL);
	assert_int_equal(ps.hpa.min_replicas, 10);
	assert_int_equal(ps.hpa.max_replicas, 100);
	assert_int_equal(ps.hpa.up.stabilization_ms, 60000);
	assert_int_equal(ps.hpa.up.policies[0].value, 10);
	assert_int_equal(ps.hpa.up.policies[1].value, 100);
	assert_int_equal(ps.hpa.down.stabilization_ms, 300000);
	assert_int_equal(ps.hpa.down.policies[0].value, 10);
	assert_int_equal(ps.cpu_pct, 60);
	assert_int_equal(ps.memory_pct, 70);
	assert_int_equal(ps.depth_per_worker, 100);
	assert_int_equal(ps.p95_ms, 1000);
	assert_int_equal(ps.baseline_workers, 30);
	assert_int_equal(ps.baseline_erp_pods, 50);
	assert_int_equal(ps.nerp, 3);
	assert_string_equal(ps.erp[1].name, "inventory-service");
	assert_int_equal(ps.erp[1].min_replicas, 5);
	assert_int_equal(ps.erp[1].max_replicas, 50);
	assert_int_equal(ps.erp[1].cpu_pct, 70);
	assert_int_equal(ps.cal.n, 10);
	plan_settings_release(&ps);

	static const struct {
		const char *erp, *words;
	} bad[] = {
	        {"order-service:10-100", "want name:min-max:cpu-percent"},
	        {"order-service:100-10:65", "1 <= min <= max"},
	        {"order-service:0-10:65", "1 <= min <= max"},
	        {"order-service:1-10:165", "CPU target must be 1..100"},
	        {"Order_Service:1-10:65", "Kubernetes name"},
	        {"a:1-2:50,a:1-2:50", "\"a\" twice"},
	        {"webhook-workers:1-2:50", "the workers' name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct config cfg;
		char err[256];
		config_defaults(&cfg);
		free(cfg.erp_services);
		cfg.erp_services = strdup(bad[i].erp);
		assert_int_equal(plan_settings_from_config(&cfg, &ps, err, sizeof(err)), ERR_INVAL);
		if (!strstr(err, bad[i].words))
			fail_msg("\"%s\": \"%s\" lacks \"%s\"", bad[i].erp, err, bad[i].words);
		plan_settings_release(&ps);
		config_release(&cfg);
	}
	/* a bad calendar is refused with its own message */
	struct config cfg;
	char err[256];
	config_defaults(&cfg);
	free(cfg.festival_calendar);
	cfg.festival_calendar = strdup("x:peak:2025-02-30:1d:2x");
	assert_int_equal(plan_settings_from_config(&cfg, &ps, err, sizeof(err)), ERR_INVAL);
	assert_non_null(strstr(err, "no such date"));
	plan_settings_release(&ps);
	config_release(&cfg);
}

static char *all_yaml(const struct plan_settings *ps, int *ndocs)
{
	struct plan_doc *docs;
	struct plan_manifest_opts o = {"shops", "http://prom.example:9090"};
	assert_int_equal(plan_manifests(ps, &o, &docs, ndocs), 0);
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < *ndocs; i++) {
		buf_printf(&b, "### %s\n", docs[i].file);
		buf_append(&b, docs[i].yaml.data, docs[i].yaml.len);
	}
	plan_docs_free(docs, *ndocs);
	return buf_detach(&b);
}

static void expect_in(const char *text, const char *line)
{
	if (!strstr(text, line))
		fail_msg("manifests lack \"%s\"", line);
}

static void test_manifests(void **state)
{
	(void)state;
	struct plan_settings ps;
	plan_with(&ps, NULL, NULL);
	int n;
	char *y = all_yaml(&ps, &n);
	assert_int_equal(n, 8);
	expect_in(y, "### hpa-webhook-workers.yaml\n");
	expect_in(y, "### scaledobject-invoice-service.yaml\n");
	expect_in(y, "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\n");
	expect_in(y, "  name: webhook-workers\n  namespace: shops\n");
	expect_in(y, "  minReplicas: 10\n  maxReplicas: 100\n");
	expect_in(y, "        type: Utilization\n        averageUtilization: 60\n");
	expect_in(y, "        type: Utilization\n        averageUtilization: 70\n");
	expect_in(y, "        name: munim_inbox_depth\n      target:\n        type: AverageValue\n"
	             "        averageValue: \"100\"\n");
	expect_in(y, "        averageValue: \"1\"\n");
	expect_in(y, "    scaleUp:\n      stabilizationWindowSeconds: 60\n      selectPolicy: Max\n"
	             "      policies:\n      - type: Pods\n        value: 10\n        "
	             "periodSeconds: 60\n"
	             "      - type: Percent\n        value: 100\n        periodSeconds: 60\n");
	expect_in(y,
	          "    scaleDown:\n      stabilizationWindowSeconds: 300\n      selectPolicy: Max\n"
	          "      policies:\n      - type: Percent\n        value: 10\n");
	expect_in(y, "  name: order-service\n");
	expect_in(y, "  minReplicas: 5\n  maxReplicas: 50\n");
	expect_in(y, "averageUtilization: 65\n");
	expect_in(y, "apiVersion: keda.sh/v1alpha1\nkind: ScaledObject\n");
	expect_in(y, "      serverAddress: http://prom.example:9090\n"
	             "      query: sum(munim_inbox_depth)\n      threshold: \"100\"\n");
	expect_in(y, "      query: histogram_quantile(0.95, sum(rate(munim_message_latency_seconds_"
	             "bucket[1m])) by (le))\n      threshold: \"1\"\n");
	/* the peak's cron trigger: 30 x 10 cut to 100, Asia/Kolkata, 30 Oct to 2 Nov */
	expect_in(y, "  # diwali peak from 2025-10-30 00:00 IST, 10x (cut to the maximum)\n"
	             "  - type: cron\n    metadata:\n      timezone: Asia/Kolkata\n"
	             "      start: \"0 0 30 10 *\"\n      end: \"0 0 2 11 *\"\n"
	             "      desiredReplicas: \"100\"\n");
	/* Pre-Scale 2x: 60 workers; order-service 2x its 25 of 50 */
	expect_in(y, "      start: \"0 0 25 10 *\"\n      end: \"0 0 28 10 *\"\n"
	             "      desiredReplicas: \"60\"\n");
	expect_in(y, "      start: \"0 0 25 10 *\"\n      end: \"0 0 28 10 *\"\n"
	             "      desiredReplicas: \"50\"\n");
	free(y);
	plan_settings_release(&ps);

	/* settings change the output: no calendar, no cron triggers; a ramp
	 * below the maximum gives one trigger per hour */
	plan_with(&ps, "only-one:2-20:55", "");
	y = all_yaml(&ps, &n);
	assert_int_equal(n, 4);
	assert_null(strstr(y, "type: cron"));
	expect_in(y, "averageUtilization: 55\n");
	free(y);
	plan_settings_release(&ps);
	plan_with(&ps, "", "f:peak:2025-03-01:1d:3x;f:scaledown:2025-03-02:1d:1x");
	y = all_yaml(&ps, &n);
	assert_int_equal(n, 2);
	expect_in(y, "desiredReplicas: \"90\"\n"); /* 3x */
	expect_in(y, "  # f scaledown from 2025-03-02 01:00 IST, 2.7x\n");
	expect_in(y, "      start: \"0 1 2 3 *\"\n      end: \"0 2 2 3 *\"\n"
	             "      desiredReplicas: \"81\"\n");
	free(y);
	/* options checked */
	struct plan_doc *docs;
	struct plan_manifest_opts o = {"Bad_NS", "http://p:9090"};
	assert_int_equal(plan_manifests(&ps, &o, &docs, &n), ERR_INVAL);
	o.k8s_namespace = "ok";
	o.prometheus = "prom:9090";
	assert_int_equal(plan_manifests(&ps, &o, &docs, &n), ERR_INVAL);
	plan_settings_release(&ps);
}

static void test_curve(void **state)
{
	(void)state;
	int64_t day;
	assert_int_equal(festival_date_ms(2025, 9, 15, &day), 0);
	double max = 0, sum = 0;
	int64_t at = 0;
	for (int m = 0; m < 1440; m++) {
		double v = plan_curve(day + m * 60000LL);
		assert_true(v > 0 && v <= 1.0);
		sum += v;
		if (v > max) {
			max = v;
			at = m;
		}
	}
	assert_true(max > 0.999);
	assert_int_equal(at, 19 * 60 + 30);                   /* the evening peak */
	assert_true(plan_curve(day + 3 * 3600000LL) < 0.05);  /* night */
	assert_true(plan_curve(day + 11 * 3600000LL) > 0.5);  /* morning */
	assert_true(plan_curve(day + 15 * 3600000LL) < 0.25); /* afternoon lull */
	/* the seed's 10M messages a day at a 500/s peak: within 10 % */
	double msgs = sum / 1440 * 500 * 86400;
	assert_true(msgs > 9e6 && msgs < 11e6);
}

static struct plan_sim_config sim_config(double rps, int64_t startup_ms)
{
	struct plan_sim_config c = {
	        .per_instance_rps = rps,
	        .pod_startup_ms = startup_ms,
	        .service_ms = 20,
	        .slo_p95_ms = 2000,
	        .slo_availability_pct = 99.9,
	        .late_ms = 10000,
	        .seed = 7,
	};
	spike_config_default(&c.spike);
	return c;
}

static void test_constant_under_capacity(void **state)
{
	(void)state;
	struct plan_settings ps;
	plan_with(&ps, NULL, "");
	struct plan_sim_config c = sim_config(100, 60000);
	struct plan_sim s;
	/* 300/s on 10 replicas of 100/s: 30 % CPU, under the 60 % target */
	assert_int_equal(plan_sim_init(&s, &ps, &c, 0, 300), 0);
	for (int i = 0; i < 3600; i++) {
		struct plan_second o;
		plan_sim_step(&s, 300, &o);
		assert_true(o.depth == 0);
		assert_int_equal(o.replicas, 10);
		assert_int_equal(o.ready, 10);
		assert_int_equal(o.spike, 0);
		assert_int_equal(o.late, 0);
		assert_true(o.p95_ms < 100);
	}
	plan_sim_release(&s);
	plan_settings_release(&ps);
}

static void test_step_to_10x(void **state)
{
	(void)state;
	struct plan_settings ps;
	plan_with(&ps, NULL, "");
	struct plan_sim_config c = sim_config(20, 30000);
	struct plan_sim s;
	/* 120/s on 10 replicas of 20/s (60 %), then 1,200/s: 100 replicas at
	 * 60 %, the maximum */
	assert_int_equal(plan_sim_init(&s, &ps, &c, 0, 120), 0);
	int hist[4000];
	int n = 0;
	struct plan_second o;
	for (int i = 0; i < 600; i++) {
		plan_sim_step(&s, 120, &o);
		hist[n++] = o.replicas;
	}
	assert_int_equal(o.replicas, 10);
	int first_rise = -1;
	for (int i = 0; i < 3000; i++) {
		plan_sim_step(&s, 1200, &o);
		hist[n] = o.replicas;
		/* within any 60 s: at most +max(10 pods, 100 %) of the count 60 s before */
		int before = hist[n - 60];
		int allowed = before + 10 > 2 * before ? before + 10 : 2 * before;
		if (hist[n] > allowed)
			fail_msg("second %d: %d replicas, %d a minute before", n, hist[n], before);
		if (first_rise < 0 && hist[n] > 10)
			first_rise = i;
		n++;
	}
	/* the first rise waits out the 60 s scale-up window: the lowest
	 * proposal of its last minute must be high (decisions every 15 s) */
	if (first_rise < 45 || first_rise > 76)
		fail_msg("first rise after %d s", first_rise);
	/* 10 -> 20 -> 40 -> 80 -> 100: doubling a minute at most, so the
	 * maximum is not reached within the first three minutes */
	assert_true(hist[600 + 179] < 100);
	assert_int_equal(o.replicas, 100);
	assert_int_equal(o.ready, 100);
	/* the backlog built while scaling is drained by the end */
	assert_true(o.depth == 0);
	plan_sim_release(&s);
	plan_settings_release(&ps);
}

static void test_above_the_maximum(void **state)
{
	(void)state;
	struct plan_settings ps;
	plan_with(&ps, NULL, "");
	struct plan_sim_config c = sim_config(10, 0);
	struct plan_sim s;
	/* 1,500/s against at most 100 x 10/s: the queue grows by ~500/s */
	assert_int_equal(plan_sim_init(&s, &ps, &c, 0, 1500), 0);
	struct plan_second o;
	double last = 0;
	for (int i = 0; i < 600; i++) {
		plan_sim_step(&s, 1500, &o);
		assert_true(o.depth >= last - 1e-6 || i < 5);
		last = o.depth;
	}
	assert_int_equal(o.replicas, 100);
	assert_true(o.depth > 250000 && o.depth < 350000);
	assert_int_equal(o.spike, 4);
	assert_true(o.late > 0);
	assert_true(o.p95_ms > 200000);
	plan_sim_release(&s);
	plan_settings_release(&ps);
}

static void test_festival_floor_and_startup(void **state)
{
	(void)state;
	struct plan_settings ps;
	plan_with(&ps, NULL, "f:prescale:2025-03-02:1d:2x");
	int64_t day;
	assert_int_equal(festival_date_ms(2025, 3, 2, &day), 0);
	assert_int_equal(plan_festival_floor(&ps, day - 1), 0);
	assert_int_equal(plan_festival_floor(&ps, day), 60);
	struct plan_sim_config c = sim_config(1000, 120000);
	struct plan_sim s;
	/* a light load, a minute before the window: the minimum */
	assert_int_equal(plan_sim_init(&s, &ps, &c, day - 60000, 10), 0);
	struct plan_second o;
	int64_t made = -1, served = -1;
	for (int i = 0; i < 1200; i++) {
		plan_sim_step(&s, 10, &o);
		if (o.at_ms < day)
			assert_int_equal(o.replicas, 10);
		if (made < 0 && o.replicas > 10)
			made = o.at_ms;
		if (served < 0 && o.ready > 10)
			served = o.at_ms;
	}
	/* the floor (KEDA's cron trigger, one more metric) goes through the
	 * same behaviour: after the 60 s up window, within the policies
	 * (+max(10, 100 %) a minute: 10 -> 20 -> 40 -> 60), each pod serving
	 * 120 s after it is made */
	if (made < day + 40000 || made > day + 76000)
		fail_msg("floor applied %lld ms into the window", (long long)(made - day));
	assert_true(served - made >= 120000 - 1000 && served - made <= 120000);
	assert_int_equal(o.replicas, 60);
	assert_int_equal(o.ready, 60);
	plan_sim_release(&s);
	plan_settings_release(&ps);
}

static void test_deterministic(void **state)
{
	(void)state;
	struct plan_settings ps;
	plan_with(&ps, NULL, NULL);
	struct plan_sim_config c = sim_config(28, 60000);
	struct plan_run_opts o = {"diwali", 100000, 500, 240, 0};
	struct buf a, b;
	char err[256];
	buf_init(&a);
	buf_init(&b);
	assert_int_equal(plan_run(&ps, &c, &o, &a, err, sizeof(err)), 0);
	assert_int_equal(plan_run(&ps, &c, &o, &b, err, sizeof(err)), 0);
	assert_true(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	/* a header, 240 minute lines, a summary */
	assert_non_null(strstr(a.data, "2025-10-30 00:00 "));
	assert_non_null(strstr(a.data, "2025-10-30 03:59 "));
	assert_null(strstr(a.data, "2025-10-30 04:00 "));
	assert_non_null(strstr(a.data, "\nsummary\n"));
	assert_non_null(strstr(a.data, "\nweak spots\n"));
	/* another seed, other arrivals */
	c.seed = 8;
	buf_reset(&b);
	assert_int_equal(plan_run(&ps, &c, &o, &b, err, sizeof(err)), 0);
	assert_false(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
	/* an unknown profile is refused by name */
	o.profile = "holi";
	assert_int_equal(plan_run(&ps, &c, &o, &b, err, sizeof(err)), ERR_INVAL);
	assert_non_null(strstr(err, "unknown profile \"holi\""));
	buf_release(&a);
	buf_release(&b);
	plan_settings_release(&ps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_scale_workers),
	        cmocka_unit_test(test_settings),
	        cmocka_unit_test(test_manifests),
	        cmocka_unit_test(test_curve),
	        cmocka_unit_test(test_constant_under_capacity),
	        cmocka_unit_test(test_step_to_10x),
	        cmocka_unit_test(test_above_the_maximum),
	        cmocka_unit_test(test_festival_floor_and_startup),
	        cmocka_unit_test(test_deterministic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
