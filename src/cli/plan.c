/*
 * plan.c - `munim plan`: capacity planning from the settings.
 *
 *   munim plan manifests [--out DIR] [--namespace NS] [--prometheus URL]
 *   munim plan simulate --profile diwali [--tenants 100000] [--per-instance-rps N]
 *                       [--minutes M] [--csv]
 *
 * manifests writes the Kubernetes objects of the autoscaling plan (src/plan/
 * manifests.c) to standard output as one YAML stream, or with --out one
 * file per object into DIR (made if missing). simulate runs the plan
 * against a day of the profile's traffic and prints the report
 * (src/plan/report.c, docs/capacity-simulation.md).
 *
 * Exit status: 0 when the output was written (for simulate whether or not
 * the SLOs hold: it is a report); 1 when writing failed; 2 on a usage error
 * (unknown subcommand or flag, a bad value, a festival calendar that does
 * not parse), with the reason on stderr.
 *
 * Threading: one thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/config.h"
#include "core/err.h"
#include "core/xalloc.h"
#include "plan/plan.h"

/* Settings of the plan, shared by both subcommands. */
#define PLAN_COMMON_OPTS                                                                           \
	PLAN_AUTOSCALE_OPTS, "hpa-min-replicas", "hpa-max-replicas", "hpa-cpu-pct",                \
	        "hpa-memory-pct", "hpa-sync-s", "erp-services", "erp-ratio", "baseline-workers",   \
	        "baseline-erp-pods"

static const char *const manifests_opts[] = {
        "out", "namespace", "prometheus", PLAN_COMMON_OPTS, NULL,
};

static const char *const simulate_opts[] = {
        "profile",
        "tenants",
        "per-instance-rps",
        "minutes",
        "csv",
        "normal-peak-qps",
        "pod-startup-s",
        "service-ms",
        "slo-p95-ms",
        "slo-availability-pct",
        "late-ms",
        "sim-seed",
        PLAN_SPIKE_OPTS,
        "spike-hold-ms",
        PLAN_COMMON_OPTS,
        NULL,
};

static const char manifests_usage[] =
        "[options]\n\n"
        "Writes the autoscaling plan as Kubernetes objects: an autoscaling/v2\n"
        "HorizontalPodAutoscaler and a KEDA ScaledObject (Prometheus triggers on munim's\n"
        "queue depth and latency p95, a cron trigger per festival window) for the webhook\n"
        "workers and for each ERP service; apply one of the two per deployment. To standard\n"
        "output as one YAML stream, or with --out one file per object.";

static const char simulate_usage[] =
        "[options]\n\n"
        "Simulates the autoscaling plan second by second over a day of the profile's traffic\n"
        "(diwali, newyear: the first day of the festival's peak window; normal) and prints a\n"
        "line per minute, the SLOs and the weak spots found. Deterministic (--sim-seed).\n"
        "See docs/capacity-simulation.md.";

static void usage(FILE *out)
{
	fprintf(out, "usage: munim plan <manifests|simulate> [options]\n\n"
	             "  manifests  the autoscaling plan as Kubernetes objects (HPA, KEDA)\n"
	             "  simulate   the plan against a day of traffic: minutes, SLOs, weak spots\n\n"
	             "`munim plan <subcommand> --help` lists the options.\n");
}

/* config_parse with a subcommand's own defaults set first; 0 to go on, 1
 * after --help, < 0 on a bad flag (already reported). */
static int parse(struct config *cfg, const char *cmd, const char *use, const char *const *opts,
                 int simulate, int argc, char **argv)
{
	char *pos[1];
	int npos;
	config_defaults(cfg);
	if (simulate) {
		cfg->tenants = 100000;
		free(cfg->profile);
		cfg->profile = xstrdup("diwali");
	}
	int rc = config_parse(cfg, cmd, use, opts, argc, argv, pos, 0, &npos);
	return rc;
}

static int write_file(const char *dir, const struct plan_doc *d)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, d->file);
	FILE *f = fopen(path, "w");
	if (!f) {
		fprintf(stderr, "munim plan manifests: could not create \"%s\": %s\n", path,
		        strerror(errno));
		return ERR_IO;
	}
	size_t len = d->yaml.len;
	int bad = fwrite(d->yaml.data, 1, len, f) != len;
	bad |= fclose(f) != 0;
	if (bad) {
		fprintf(stderr, "munim plan manifests: could not write \"%s\": %s\n", path,
		        strerror(errno));
		return ERR_IO;
	}
	return 0;
}

static int manifests(int argc, char **argv)
{
	struct config cfg;
	struct plan_settings ps;
	char err[256];
	struct plan_doc *docs = NULL;
	int ndocs = 0, status = 2;
	int rc = parse(&cfg, "plan manifests", manifests_usage, manifests_opts, 0, argc, argv);
	memset(&ps, 0, sizeof(ps));
	if (rc != 0) {
		status = rc > 0 ? 0 : 2;
		goto out;
	}
	if (plan_settings_from_config(&cfg, &ps, err, sizeof(err)) != 0) {
		fprintf(stderr, "munim plan manifests: %s\n", err);
		goto out;
	}
	struct plan_manifest_opts o = {cfg.k8s_namespace, cfg.prometheus};
	if (!plan_dns_label(cfg.k8s_namespace)) {
		fprintf(stderr,
		        "munim plan manifests: invalid namespace \"%s\" (1..63 of a-z, 0-9, '-')\n",
		        cfg.k8s_namespace);
		goto out;
	}
	if (plan_manifests(&ps, &o, &docs, &ndocs) != 0) {
		fprintf(stderr,
		        "munim plan manifests: invalid Prometheus URL \"%s\" (http:// or https://, "
		        "no blanks or quotes)\n",
		        cfg.prometheus);
		goto out;
	}
	status = 0;
	if (cfg.out && *cfg.out) {
		if (mkdir(cfg.out, 0755) != 0 && errno != EEXIST) {
			fprintf(stderr, "munim plan manifests: could not make \"%s\": %s\n",
			        cfg.out, strerror(errno));
			status = 1;
			goto out;
		}
		for (int i = 0; i < ndocs && status == 0; i++)
			if (write_file(cfg.out, &docs[i]) != 0)
				status = 1;
		if (status == 0)
			printf("wrote %d objects to %s\n", ndocs, cfg.out);
	} else {
		for (int i = 0; i < ndocs; i++) {
			if (i > 0)
				fputs("---\n", stdout);
			fwrite(docs[i].yaml.data, 1, docs[i].yaml.len, stdout);
		}
		if (fflush(stdout) != 0)
			status = 1;
	}
out:
	plan_docs_free(docs, ndocs);
	plan_settings_release(&ps);
	config_release(&cfg);
	return status;
}

static int simulate(int argc, char **argv)
{
	struct config cfg;
	struct plan_settings ps;
	char err[256];
	int status = 2;
	struct buf out;
	buf_init(&out);
	memset(&ps, 0, sizeof(ps));
	int rc = parse(&cfg, "plan simulate", simulate_usage, simulate_opts, 1, argc, argv);
	if (rc != 0) {
		status = rc > 0 ? 0 : 2;
		goto out;
	}
	if (plan_settings_from_config(&cfg, &ps, err, sizeof(err)) != 0) {
		fprintf(stderr, "munim plan simulate: %s\n", err);
		goto out;
	}
	struct plan_sim_config sc = {
	        .per_instance_rps = cfg.per_instance_rps,
	        .pod_startup_ms = cfg.pod_startup_s * 1000,
	        .service_ms = (double)cfg.service_ms,
	        .slo_p95_ms = cfg.slo_p95_ms,
	        .slo_availability_pct = cfg.slo_availability_pct,
	        .late_ms = cfg.late_ms,
	        .seed = (uint64_t)cfg.sim_seed,
	};
	spike_config_default(&sc.spike);
	for (int l = 1; l < SPIKE_LEVELS; l++)
		sc.spike.depth[l] = cfg.spike_depth[l];
	sc.spike.p95_ms[1] = cfg.spike_p95_ms[1];
	sc.spike.p95_ms[2] = cfg.spike_p95_ms[2];
	sc.spike.hold_ms = cfg.spike_hold_ms;
	struct spike probe;
	if (spike_init(&probe, &sc.spike) != 0) {
		fprintf(stderr, "munim plan simulate: the spike-depth-* and spike-p95-ms-* "
		                "thresholds must rise with the level\n");
		goto out;
	}
	struct plan_run_opts o = {cfg.profile, cfg.tenants, cfg.normal_peak_qps, cfg.minutes,
	                          (int)cfg.csv};
	if (plan_run(&ps, &sc, &o, &out, err, sizeof(err)) != 0) {
		fprintf(stderr, "munim plan simulate: %s\n", err);
		goto out;
	}
	status = 0;
	if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
		status = 1;
	if (fflush(stdout) != 0)
		status = 1;
out:
	buf_release(&out);
	plan_settings_release(&ps);
	config_release(&cfg);
	return status;
}

int cmd_plan(int argc, char **argv)
{
	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0 ||
	    strcmp(argv[0], "help") == 0) {
		usage(stdout);
		return 0;
	}
	if (strcmp(argv[0], "manifests") == 0)
		return manifests(argc - 1, argv + 1);
	if (strcmp(argv[0], "simulate") == 0)
		return simulate(argc - 1, argv + 1);
	fprintf(stderr, "munim plan: unknown subcommand \"%s\" (manifests or simulate)\n", argv[0]);
	return 2;
}
