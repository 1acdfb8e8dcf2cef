/*
 * loadgen.c - `munim loadgen`: an open-loop load generator for munim
 * serve, with the mock BSP as the far end.
 *
 *   munim loadgen --rate 1000 --duration 10 --tenants 100
 *   munim loadgen --profile step --rate 500 --step 500 --step-every 10 --duration 60
 *   munim loadgen --profile surge --rate 100 --surge-factor 10 --surge-at 10 \
 *                 --surge-for 10 --duration 30
 *
 * Every profile is a schedule of steps (loadgen_stats.c); the surge's are
 * its phases, before, surge and after, reported each on its own.
 *
 * 1. Check both ends answer: GET {bsp}/_mock/stats (its next_index is
 *    where reading the replies starts) and GET {url}/healthz.
 * 2. Send (loadgen_send.c): signed text-message webhooks to
 *    {url}/webhooks/whatsapp, each at its scheduled time whatever became
 *    of the earlier ones, rotating over --tenants shops (phone_number_ids
 *    from --first-phone-number-id, as `munim seed` makes them),
 *    --customers wa_ids from --from, and a mix of texts every seeded shop
 *    answers with one reply (or --text). Meanwhile the collector thread
 *    (loadgen_collect.c) reads the mock's log of replies.
 * 3. Drain: keep reading until every message answered 200 has a reply or
 *    --drain-timeout passes, then linger LOADGEN_LINGER_MS for late
 *    duplicates.
 * 4. Report (loadgen_report.c): text on stdout, then the same figures as
 *    one JSON line, the last line of stdout.
 *
 * Exit status: 0 when the run happened, whatever the figures; 1 when munim
 * or the mock BSP could not be reached at all (also when no webhook got
 * any answer); 2 on a usage error.
 *
 * Threading: the main thread sends, then drains; one collector thread
 * runs during the send phase (see loadgen_collect.c for the hand-over).
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli.h"
#include "core/buf.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/err.h"
#include "core/log.h"
#include "core/proc.h"
#include "core/xalloc.h"
#include "tools/tools_internal.h"

/* Texts every seeded shop answers with exactly one reply (see seed.c). */
static const char *const default_texts[] = {
        "stock rice", "menu", "order 2 rice", "stock cheeni", "price dal", "atta hai kya",
};
#define NDEFAULT_TEXTS ((int)(sizeof(default_texts) / sizeof(default_texts[0])))

/* After the last expected reply, how long to keep reading for duplicates. */
#define LOADGEN_LINGER_MS     500
#define LOADGEN_DRAIN_POLL_MS 50
/* From the start-up to the first message's due time (the sender's set-up). */
#define LOADGEN_LEAD_MS 100
/* Time limit of the start-up checks. */
#define LOADGEN_PROBE_MS 5000
/* File descriptors kept free beside the connections (stdio, epoll sets, the collector's). */
#define LOADGEN_SPARE_FDS 64
/* phone_number_ids and wa_ids: digits, at most this many. */
#define LOADGEN_MAX_ID_DIGITS 15

static const char *const loadgen_opts[] = {
        "url",
        "bsp",
        "app-secret",
        "rate",
        "duration",
        "profile",
        "step",
        "step-every",
        "surge-factor",
        "surge-at",
        "surge-for",
        "tenants",
        "first-phone-number-id",
        "customers",
        "from",
        "name",
        "text",
        "connections",
        "timeout-ms",
        "drain-timeout",
        "log-level",
        NULL,
};

static const char loadgen_usage[] =
        "[options]\n\n"
        "Sends signed WhatsApp text-message webhooks to munim at a fixed rate (or a rate\n"
        "rising in steps: --profile step; or --rate x --surge-factor from --surge-at for\n"
        "--surge-for seconds, then --rate again: --profile surge, whose --duration must\n"
        "cover the surge, e.g. 30 for the defaults), each at its scheduled time whatever\n"
        "happened to the earlier ones, and matches the replies the mock BSP receives to\n"
        "them. Reports webhook latency (scheduled time to the 200) and end-to-end latency\n"
        "(scheduled time to the reply at the mock), lost and duplicated replies, per step\n"
        "or per phase of the surge (before, surge, after) too; the last line of stdout is\n"
        "the same as JSON. Messages rotate over --tenants shops (phone_number_ids from\n"
        "--first-phone-number-id, as seed makes them) and --customers customers per shop\n"
        "(wa_ids from --from); --timeout-ms limits each webhook request.\n"
        "Without --app-secret the demo's secret \"" TOOLS_DEMO_SECRET "\" signs.";

/* Parses an id of digits; 0 or ERR_INVAL. */
static int parse_id(const char *s, uint64_t *out)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > LOADGEN_MAX_ID_DIGITS)
		return ERR_INVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return ERR_INVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	*out = v;
	return 0;
}

/* Do ids first .. first+count-1 all keep within LOADGEN_MAX_ID_DIGITS digits? */
static int ids_fit(uint64_t first, int64_t count)
{
	uint64_t top = 1;
	for (int i = 0; i < LOADGEN_MAX_ID_DIGITS; i++)
		top *= 10;
	return first + (uint64_t)count - 1 < top;
}

/* The wall clock in microseconds: clock_wall_ms is too coarse to pair
 * with the monotonic start of the schedule. */
static int64_t wall_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/*
 * probe checks that munim and the mock BSP answer; *since gets the mock's
 * next message index. Returns 0, or ERR_IO after printing why.
 */
static int probe(const char *url, const char *bsp, uint64_t *since)
{
	struct tools_fetch f;
	json_t *root = NULL;
	int rc = ERR_IO, status = 0;
	if (tools_fetch_init(&f, bsp, 1 << 20) != 0 ||
	    tools_fetch_request(&f, "GET", "/_mock/stats", NULL, NULL, 0, LOADGEN_PROBE_MS,
	                        &status) != 0) {
		fprintf(stderr, "munim loadgen: could not reach the mock BSP at %s: %s\n", bsp,
		        f.why);
		goto out;
	}
	root = json_loadb(f.answer.data ? f.answer.data : "", f.answer.len, 0, NULL);
	json_t *next = json_object_get(root, "next_index");
	if (status != 200 || !json_is_integer(next) || json_integer_value(next) < 0) {
		fprintf(stderr,
		        "munim loadgen: %s does not answer like munim mock-bsp (GET /_mock/stats: "
		        "HTTP %d)\n",
		        bsp, status);
		goto out;
	}
	*since = (uint64_t)json_integer_value(next);
	tools_fetch_release(&f);
	if (tools_fetch_init(&f, url, 1 << 20) != 0 ||
	    tools_fetch_request(&f, "GET", "/healthz", NULL, NULL, 0, LOADGEN_PROBE_MS, &status) !=
	            0) {
		fprintf(stderr, "munim loadgen: could not reach munim at %s: %s\n", url, f.why);
		goto out;
	}
	if (status != 200)
		fprintf(stderr, "munim loadgen: warning: %s/healthz answered HTTP %d\n", url,
		        status);
	rc = 0;
out:
	json_decref(root);
	tools_fetch_release(&f);
	return rc;
}

/* The figures of the whole run and of each step, from the two phases. */
static void tally(const struct loadgen_plan *p, const struct loadgen_sent *sent,
                  const struct loadgen_collect *col, struct loadgen_report *r,
                  struct loadgen_step_figures *steps)
{
	const struct loadgen_sched *s = p->sched;
	r->sent = s->total;
	r->errors = sent->errors;
	memcpy(r->codes, sent->codes, sizeof(r->codes));
	r->webhook = &sent->webhook;
	r->e2e = &col->e2e;
	r->send_lag_p99_us = loadgen_hist_pct(&sent->lag, 99);
	r->loop_lag_p99_us = loadgen_hist_pct(&sent->loop_lag, 99);
	r->conn_waits = sent->conn_waits;
	double last_gap_s = 1.0 / (double)loadgen_sched_rate(s, s->nsteps - 1);
	r->achieved_rate = (double)s->total / ((double)sent->last_start_us / 1e6 + last_gap_s);
	for (int k = 0; k < s->nsteps; k++) {
		struct loadgen_step_figures *f = &steps[k];
		f->name = s->steps[k].name;
		f->rate = loadgen_sched_rate(s, k);
		f->start_us = loadgen_sched_step_start_us(s, k);
		f->sent = s->first[k + 1] - s->first[k];
		f->webhook = &sent->step_webhook[k];
		f->e2e = &col->step_e2e[k];
		for (uint64_t i = s->first[k]; i < s->first[k + 1]; i++) {
			int ok = sent->status[i] == 200;
			uint8_t n = col->replies[i];
			f->ok += (uint64_t)ok;
			f->lost += (uint64_t)(ok && n == 0);
			r->duplicates += (uint64_t)(n > 1);
			r->unexpected += (uint64_t)(!ok && n > 0);
		}
		r->ok += f->ok;
		r->lost += f->lost;
	}
}

/* Reads replies until none is pending or the deadline; returns seconds spent. */
static double drain(struct loadgen_collect *col, int64_t timeout_s)
{
	int64_t t0 = clock_mono_us(), deadline = t0 + timeout_s * 1000000;
	int64_t linger_until = 0;
	double spent = -1;
	for (;;) {
		int more = 0;
		int rc = loadgen_collect_poll(col, &more);
		int64_t now = clock_mono_us();
		if (rc == 0 && col->pending == 0 && !more && !linger_until) {
			spent = (double)(now - t0) / 1e6;
			linger_until = now + (int64_t)LOADGEN_LINGER_MS * 1000;
		}
		if ((linger_until && now >= linger_until) || now >= deadline)
			break;
		if (rc != 0 || !more)
			sleep_ms(LOADGEN_DRAIN_POLL_MS);
	}
	return spent >= 0 ? spent : (double)(clock_mono_us() - t0) / 1e6;
}

struct run_args {
	const struct config *cfg;
	const char *url, *bsp, *secret;
	const char *const *texts;
	int ntexts;
	uint64_t first_phone, first_customer;
	const char *profile; /* "constant", "step" or "surge" */
};

static int run(const struct run_args *a, const struct loadgen_sched *sched)
{
	const struct config *cfg = a->cfg;
	uint64_t since = 0;
	if (probe(a->url, a->bsp, &since) != 0)
		return 1;

	struct buf target;
	buf_init(&target);
	buf_printf(&target, "%s/webhooks/whatsapp", a->url);
	struct loadgen_plan plan = {
	        .sched = sched,
	        .mix = {a->first_phone, a->first_customer, cfg->tenants, cfg->customers, a->texts,
	                a->ntexts},
	        .webhook_url = target.data,
	        .secret = a->secret,
	        .name = cfg->name,
	        .connections = cfg->connections,
	        .timeout_ms = cfg->timeout_ms,
	};
	loadgen_wamid_tag(tools_random_u64(), plan.tag);
	struct loadgen_sent *sent = xcalloc(1, sizeof(*sent));
	struct loadgen_collect *col = xcalloc(1, sizeof(*col));
	struct loadgen_step_figures *steps = xcalloc((size_t)sched->nsteps, sizeof(*steps));
	struct buf out;
	buf_init(&out);
	int exit_code = 1;
	/* the schedule starts a little ahead, once the connections' handles are made */
	plan.start_mono_us = clock_mono_us() + LOADGEN_LEAD_MS * 1000;
	plan.start_wall_us = wall_us() + LOADGEN_LEAD_MS * 1000;
	if (loadgen_collect_init(col, &plan, a->bsp, since) != 0 ||
	    loadgen_collect_start(col) != 0) {
		fprintf(stderr, "munim loadgen: could not start reading the mock BSP's log%s%s\n",
		        col->last_error[0] ? ": " : "", col->last_error);
		goto done;
	}
	fprintf(stderr, "munim loadgen: %llu messages to %s over %lld s\n",
	        (unsigned long long)sched->total, target.data, (long long)sched->duration_s);
	int rc = loadgen_send(&plan, sent);
	loadgen_collect_stop(col);
	if (rc != 0) {
		fprintf(stderr, "munim loadgen: the send loop failed: %s\n", sent->first_error);
		goto done;
	}
	loadgen_collect_set_status(col, sent->status);
	double drain_s = drain(col, cfg->drain_timeout);
	if (col->poll_failures)
		fprintf(stderr,
		        "munim loadgen: %llu reads of the mock BSP's log failed; last: %s\n",
		        (unsigned long long)col->poll_failures, col->last_error);

	int constant = strcmp(a->profile, "constant") == 0;
	int surge = strcmp(a->profile, "surge") == 0;
	struct loadgen_report r = {
	        .profile = a->profile,
	        .rate = cfg->rate,
	        .step = cfg->step,
	        .step_every_s = sched->steps[0].len_s,
	        .duration_s = cfg->duration,
	        .tenants = cfg->tenants,
	        .customers = cfg->customers,
	        .connections = cfg->connections,
	        .drain_s = drain_s,
	        .nsteps = constant ? 0 : sched->nsteps,
	        .steps = steps,
	};
	if (surge) {
		r.surge_factor = cfg->surge_factor;
		r.surge_at_s = cfg->surge_at;
		r.surge_for_s = cfg->surge_for;
		for (int k = 0; k < sched->nsteps; k++)
			if (strcmp(sched->steps[k].name, "surge") == 0)
				r.surge_rate = sched->steps[k].rate;
	}
	tally(&plan, sent, col, &r, steps);
	loadgen_report_text(&out, &r);
	buf_putc(&out, '\n');
	loadgen_report_json(&out, &r);
	buf_putc(&out, '\n');
	fwrite(out.data, 1, out.len, stdout);
	fflush(stdout);
	exit_code = 0;
	if (r.errors == r.sent) {
		fprintf(stderr, "munim loadgen: no webhook got an answer from %s: %s\n",
		        target.data, sent->first_error);
		exit_code = 1;
	}
done:
	loadgen_collect_release(col);
	loadgen_sent_release(sent);
	free(col);
	free(sent);
	free(steps);
	buf_release(&out);
	buf_release(&target);
	return exit_code;
}

/* Checks the settings; 0, or prints why and returns ERR_INVAL. */
static int check_args(const struct config *cfg, struct run_args *a)
{
	if (!cfg->url || !*cfg->url || !cfg->bsp || !*cfg->bsp) {
		fprintf(stderr, "munim loadgen: --url and --bsp must not be empty\n");
		return ERR_INVAL;
	}
	struct tools_url u;
	char why[TOOLS_HTTP_ERR_CAP];
	if (tools_url_parse(cfg->url, &u, why) != 0) {
		fprintf(stderr, "munim loadgen: --url: %s\n", why);
		return ERR_INVAL;
	}
	if (tools_url_parse(cfg->bsp, &u, why) != 0) {
		fprintf(stderr, "munim loadgen: --bsp: %s\n", why);
		return ERR_INVAL;
	}
	static const char *const profiles[] = {"constant", "step", "surge"};
	a->profile = NULL;
	for (size_t i = 0; i < sizeof(profiles) / sizeof(profiles[0]); i++)
		if (strcmp(cfg->profile, profiles[i]) == 0)
			a->profile = profiles[i];
	if (!a->profile) {
		fprintf(stderr,
		        "munim loadgen: --profile must be constant, step or surge, not \"%s\"\n",
		        cfg->profile);
		return ERR_INVAL;
	}
	if (parse_id(cfg->first_phone_number_id, &a->first_phone) != 0 ||
	    !ids_fit(a->first_phone, cfg->tenants)) {
		fprintf(stderr,
		        "munim loadgen: --first-phone-number-id must be digits, and with "
		        "--tenants %lld stay within %d digits\n",
		        (long long)cfg->tenants, LOADGEN_MAX_ID_DIGITS);
		return ERR_INVAL;
	}
	if (parse_id(cfg->from, &a->first_customer) != 0 ||
	    !ids_fit(a->first_customer, cfg->customers)) {
		fprintf(stderr,
		        "munim loadgen: --from must be a wa_id of digits, and with --customers "
		        "%lld stay within %d digits\n",
		        (long long)cfg->customers, LOADGEN_MAX_ID_DIGITS);
		return ERR_INVAL;
	}
	if (cfg->tenants * cfg->customers > LOADGEN_MAX_MSGS) {
		fprintf(stderr, "munim loadgen: --tenants x --customers is above %d\n",
		        LOADGEN_MAX_MSGS);
		return ERR_INVAL;
	}
	if (cfg->text && (!*cfg->text || strlen(cfg->text) > LOADGEN_MAX_TEXT)) {
		fprintf(stderr, "munim loadgen: --text needs 1 to %d bytes\n", LOADGEN_MAX_TEXT);
		return ERR_INVAL;
	}
	if (cfg->text) {
		/* a text jansson refuses (not UTF-8) would fail every message */
		struct tools_inbound in = {"1",       "1",  cfg->name, "wamid.CHECK",
		                           cfg->text, NULL, NULL};
		char *probe_body = tools_webhook_build(&in);
		if (!probe_body) {
			fprintf(stderr, "munim loadgen: --text (or --name) is not UTF-8\n");
			return ERR_INVAL;
		}
		free(probe_body);
		a->texts = (const char *const *)&cfg->text;
		a->ntexts = 1;
	} else {
		a->texts = default_texts;
		a->ntexts = NDEFAULT_TEXTS;
	}
	long long have = 0;
	if (proc_ensure_fds((long long)cfg->connections + LOADGEN_SPARE_FDS, &have) != 0) {
		fprintf(stderr,
		        "munim loadgen: --connections %lld needs %lld open files; the limit is "
		        "%lld\n",
		        (long long)cfg->connections,
		        (long long)cfg->connections + LOADGEN_SPARE_FDS, have);
		return ERR_INVAL;
	}
	return 0;
}

int cmd_loadgen(int argc, char **argv)
{
	struct config cfg;
	int npos = 0;
	int rc = tools_config(&cfg, "loadgen", loadgen_usage, loadgen_opts, NULL, argc, argv, NULL,
	                      0, &npos);
	if (rc >= 0)
		return rc;

	struct run_args a = {.cfg = &cfg};
	struct loadgen_sched sched;
	char *url = NULL, *bsp = NULL;
	int exit_code = 2;
	memset(&sched, 0, sizeof(sched));
	if (check_args(&cfg, &a) != 0)
		goto out;
	if (strcmp(a.profile, "surge") == 0)
		rc = loadgen_sched_surge(&sched, cfg.rate, cfg.surge_factor, cfg.surge_at,
		                         cfg.surge_for, cfg.duration);
	else if (strcmp(a.profile, "step") == 0)
		rc = loadgen_sched_init(&sched, cfg.rate, cfg.step, cfg.step_every, cfg.duration);
	else
		rc = loadgen_sched_init(&sched, cfg.rate, 0, cfg.duration, cfg.duration);
	if (rc != 0) {
		fprintf(stderr, "munim loadgen: %s\n", sched.why);
		goto out;
	}
	url = xstrdup(cfg.url);
	bsp = xstrdup(cfg.bsp);
	tools_strip_slash(url);
	tools_strip_slash(bsp);
	a.url = url;
	a.bsp = bsp;
	a.secret = cfg.app_secret && *cfg.app_secret ? cfg.app_secret : TOOLS_DEMO_SECRET;
	exit_code = run(&a, &sched);
out:
	loadgen_sched_release(&sched);
	free(url);
	free(bsp);
	config_release(&cfg);
	return exit_code;
}
