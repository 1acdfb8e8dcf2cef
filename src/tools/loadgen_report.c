/*
 * loadgen_report.c - what `munim loadgen` prints: a report for people and
 * the same figures as one JSON object (the last line of stdout, for
 * scripts and the benchmarks).
 *
 * JSON shape (latencies in milliseconds with microsecond precision, null
 * when nothing was measured; "steps" only for the stepped profile,
 * "phases" only for the surge):
 *   {"profile","rate","duration_s",["step","step_every_s",]
 *    ["surge_factor","surge_rate","surge_at_s","surge_for_s",]"tenants",
 *    "customers","connections","sent","ok","codes":{"200":N,...},"errors",
 *    "lost","duplicates","unexpected_replies",
 *    "webhook_ms":{"p50","p90","p95","p99","max"},"e2e_ms":{...},
 *    "achieved_rate","send_lag_p99_ms","loop_lag_p99_ms","conn_waits","drain_s",
 *    ["steps":[{"step","rate","start_s","sent","ok","lost","webhook_ms",
 *               "e2e_ms"}...]]
 *    ["phases":[{"phase":"before"|"surge"|"after","rate","start_s","sent",
 *                "ok","lost","webhook_ms","e2e_ms"}...]]}
 * The JSON is written with buf_printf rather than jansson so numbers come
 * out as "1.234", not "1.2339999999999999".
 *
 * Pure functions of the report; thread-safe.
 */
#include <stdio.h>
#include <string.h>

#include "tools/tools_internal.h"

static const double pcts[] = {50, 90, 95, 99, 100};
static const char *const pct_names[] = {"p50", "p90", "p95", "p99", "max"};
#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

static void json_ms(struct buf *b, int64_t us)
{
	if (us < 0)
		buf_puts(b, "null");
	else
		buf_printf(b, "%.3f", (double)us / 1000.0);
}

static void json_hist(struct buf *b, const char *key, const struct loadgen_hist *h)
{
	buf_printf(b, ",\"%s\":{", key);
	for (size_t i = 0; i < NPCTS; i++) {
		buf_printf(b, "%s\"%s\":", i ? "," : "", pct_names[i]);
		json_ms(b, h ? loadgen_hist_pct(h, pcts[i]) : -1);
	}
	buf_putc(b, '}');
}

void loadgen_report_json(struct buf *out, const struct loadgen_report *r)
{
	buf_puts(out, "{\"profile\":");
	buf_json_str(out, r->profile);
	buf_printf(out, ",\"rate\":%lld,\"duration_s\":%lld", (long long)r->rate,
	           (long long)r->duration_s);
	int surge = strcmp(r->profile, "surge") == 0;
	if (surge)
		buf_printf(out,
		           ",\"surge_factor\":%g,\"surge_rate\":%lld,\"surge_at_s\":%lld,"
		           "\"surge_for_s\":%lld",
		           r->surge_factor, (long long)r->surge_rate, (long long)r->surge_at_s,
		           (long long)r->surge_for_s);
	else if (r->nsteps > 0)
		buf_printf(out, ",\"step\":%lld,\"step_every_s\":%lld", (long long)r->step,
		           (long long)r->step_every_s);
	buf_printf(out,
	           ",\"tenants\":%lld,\"customers\":%lld,\"connections\":%lld,\"sent\":%llu,"
	           "\"ok\":%llu,\"codes\":{",
	           (long long)r->tenants, (long long)r->customers, (long long)r->connections,
	           (unsigned long long)r->sent, (unsigned long long)r->ok);
	int first = 1;
	for (int c = LOADGEN_CODE_MIN; c <= LOADGEN_CODE_MAX; c++) {
		uint64_t n = r->codes[c - LOADGEN_CODE_MIN];
		if (n == 0)
			continue;
		buf_printf(out, "%s\"%d\":%llu", first ? "" : ",", c, (unsigned long long)n);
		first = 0;
	}
	buf_printf(out,
	           "},\"errors\":%llu,\"lost\":%llu,\"duplicates\":%llu,"
	           "\"unexpected_replies\":%llu",
	           (unsigned long long)r->errors, (unsigned long long)r->lost,
	           (unsigned long long)r->duplicates, (unsigned long long)r->unexpected);
	json_hist(out, "webhook_ms", r->webhook);
	json_hist(out, "e2e_ms", r->e2e);
	buf_printf(out, ",\"achieved_rate\":%.1f,\"send_lag_p99_ms\":", r->achieved_rate);
	json_ms(out, r->send_lag_p99_us);
	buf_puts(out, ",\"loop_lag_p99_ms\":");
	json_ms(out, r->loop_lag_p99_us);
	buf_printf(out, ",\"conn_waits\":%llu,\"drain_s\":%.3f", (unsigned long long)r->conn_waits,
	           r->drain_s);
	if (r->nsteps > 0) {
		buf_puts(out, surge ? ",\"phases\":[" : ",\"steps\":[");
		for (int k = 0; k < r->nsteps; k++) {
			const struct loadgen_step_figures *s = &r->steps[k];
			buf_puts(out, k ? "," : "");
			if (surge) {
				buf_puts(out, "{\"phase\":");
				buf_json_str(out, s->name ? s->name : "");
			} else {
				buf_printf(out, "{\"step\":%d", k);
			}
			buf_printf(out,
			           ",\"rate\":%lld,\"start_s\":%.3f,\"sent\":%llu,"
			           "\"ok\":%llu,\"lost\":%llu",
			           (long long)s->rate, (double)s->start_us / 1e6,
			           (unsigned long long)s->sent, (unsigned long long)s->ok,
			           (unsigned long long)s->lost);
			json_hist(out, "webhook_ms", s->webhook);
			json_hist(out, "e2e_ms", s->e2e);
			buf_putc(out, '}');
		}
		buf_putc(out, ']');
	}
	buf_putc(out, '}');
}

/* One latency figure for the text report, right-aligned in 10 columns. */
static void text_ms(struct buf *b, int64_t us)
{
	if (us < 0)
		buf_printf(b, "%10s", "-");
	else
		buf_printf(b, "%10.3f", (double)us / 1000.0);
}

/* One latency figure inside a sentence. */
static void inline_ms(struct buf *b, int64_t us)
{
	if (us < 0)
		buf_puts(b, "-");
	else
		buf_printf(b, "%.3f", (double)us / 1000.0);
}

static void text_hist(struct buf *b, const char *label, const struct loadgen_hist *h)
{
	buf_printf(b, "  %-12s", label);
	for (size_t i = 0; i < NPCTS; i++)
		text_ms(b, h ? loadgen_hist_pct(h, pcts[i]) : -1);
	buf_putc(b, '\n');
}

void loadgen_report_text(struct buf *out, const struct loadgen_report *r)
{
	int surge = strcmp(r->profile, "surge") == 0;
	if (surge)
		buf_printf(out,
		           "profile      surge: %lld/s, x%g (%lld/s) from %lld s for %lld s, "
		           "for %lld s\n",
		           (long long)r->rate, r->surge_factor, (long long)r->surge_rate,
		           (long long)r->surge_at_s, (long long)r->surge_for_s,
		           (long long)r->duration_s);
	else if (r->nsteps > 0)
		buf_printf(out, "profile      step: %lld/s, +%lld/s every %lld s, for %lld s\n",
		           (long long)r->rate, (long long)r->step, (long long)r->step_every_s,
		           (long long)r->duration_s);
	else
		buf_printf(out, "profile      constant: %lld/s for %lld s\n", (long long)r->rate,
		           (long long)r->duration_s);
	buf_printf(out, "traffic      %lld shop%s x %lld customer%s, up to %lld connections\n",
	           (long long)r->tenants, r->tenants == 1 ? "" : "s", (long long)r->customers,
	           r->customers == 1 ? "" : "s", (long long)r->connections);
	buf_printf(out, "sent         %llu at %.1f/s; sends started late by ",
	           (unsigned long long)r->sent, r->achieved_rate);
	inline_ms(out, r->send_lag_p99_us);
	buf_printf(out, " ms (p99)\n");
	buf_printf(out,
	           "             %llu waited for a free connection; the others started late by ",
	           (unsigned long long)r->conn_waits);
	inline_ms(out, r->loop_lag_p99_us);
	buf_printf(out, " ms (p99: the send loop's own delay)\n");
	buf_printf(out, "answers      %llu ok;", (unsigned long long)r->ok);
	for (int c = LOADGEN_CODE_MIN; c <= LOADGEN_CODE_MAX; c++)
		if (r->codes[c - LOADGEN_CODE_MIN])
			buf_printf(out, " %d: %llu;", c,
			           (unsigned long long)r->codes[c - LOADGEN_CODE_MIN]);
	buf_printf(out, " no answer (connection error or timeout): %llu\n",
	           (unsigned long long)r->errors);
	buf_printf(out,
	           "replies      lost %llu, duplicated %llu, to messages not answered 200: %llu "
	           "(waited %.2f s for the last)\n",
	           (unsigned long long)r->lost, (unsigned long long)r->duplicates,
	           (unsigned long long)r->unexpected, r->drain_s);
	buf_printf(out, "latency ms    %10s%10s%10s%10s%10s\n", "p50", "p90", "p95", "p99", "max");
	text_hist(out, "webhook", r->webhook);
	text_hist(out, "end-to-end", r->e2e);
	if (r->nsteps == 0)
		return;
	buf_printf(out, "%-6s %6s %8s %8s %8s %6s %10s %10s %10s %10s\n",
	           surge ? "phases" : "steps", "rate", "start_s", "sent", "ok", "lost", "web p50",
	           "web p99", "e2e p50", "e2e p99");
	for (int k = 0; k < r->nsteps; k++) {
		const struct loadgen_step_figures *s = &r->steps[k];
		if (surge)
			buf_printf(out, "%-6s", s->name ? s->name : "");
		else
			buf_printf(out, "  %4d", k);
		buf_printf(out, " %6lld %8.1f %8llu %8llu %6llu", (long long)s->rate,
		           (double)s->start_us / 1e6, (unsigned long long)s->sent,
		           (unsigned long long)s->ok, (unsigned long long)s->lost);
		text_ms(out, s->webhook ? loadgen_hist_pct(s->webhook, 50) : -1);
		text_ms(out, s->webhook ? loadgen_hist_pct(s->webhook, 99) : -1);
		text_ms(out, s->e2e ? loadgen_hist_pct(s->e2e, 50) : -1);
		text_ms(out, s->e2e ? loadgen_hist_pct(s->e2e, 99) : -1);
		buf_putc(out, '\n');
	}
}
