/*
 * mock_bsp_faults.c - what the mock's fault endpoints share (POST
 * /_mock/faults in mock_bsp.c, POST /_mock/ai/faults in mock_bsp_ai.c):
 * reading a POST of settings, every field checked against the endpoint's
 * table before any is set; the scripted undo, which puts the fields one
 * POST set back to their no-fault values for_ms later; and the random
 * numbers the error-rate faults draw.
 *
 * Design of the undo: a POST takes the endpoint's mutex, bumps its
 * generation and, with for_ms, leaves a callback on the mock's timer that
 * carries that generation. When it fires it clears its fields only if the
 * generation is still its own: a later POST (or a reset) has made it void.
 *
 * Threading: mock_faults_read on any thread (it touches only its
 * arguments); struct mock_undo's fields under its mutex, the undo on the
 * timer's thread; mock_rand_u64 keeps its state per thread.
 */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/err.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/xalloc.h"
#include "http/http.h"
#include "tools/tools_internal.h"

uint64_t mock_rand_u64(void)
{
	static _Thread_local uint64_t s;
	if (!s)
		s = rng_seed();
	return rng_next(&s);
}

/* ---- reading a POST of settings ---------------------------------------------------- */

static int is_int_in(const json_t *v, int64_t lo, int64_t hi)
{
	return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

static int field_ok(const struct mock_field *f, const json_t *v)
{
	switch (f->kind) {
	case MOCK_FIELD_SWITCH: return json_is_boolean(v) || json_is_integer(v);
	case MOCK_FIELD_RATE:
		return json_is_number(v) && json_number_value(v) >= 0 && json_number_value(v) <= 1;
	case MOCK_FIELD_INT: return is_int_in(v, f->lo, f->hi);
	}
	return 0;
}

const char *mock_faults_read(struct http_req *r, const struct mock_field *fields, int n,
                             struct mock_faults_post *out)
{
	size_t len;
	const char *body = http_req_body(r, &len);
	json_error_t jerr;
	const char *bad = NULL;

	memset(out, 0, sizeof(*out));
	if (n < 0 || n > MOCK_FIELDS_MAX)
		return "too many fault settings";
	out->root = json_loadb(body ? body : "", len, 0, &jerr);
	if (!json_is_object(out->root)) {
		bad = "expected a JSON object of fault settings";
		goto fail;
	}
	for (int i = 0; i < n; i++) {
		json_t *v = json_object_get(out->root, fields[i].name);
		if (!v)
			continue;
		if (!field_ok(&fields[i], v)) {
			bad = fields[i].bad;
			goto fail;
		}
		out->vals[i] = v;
		out->given |= 1u << i;
	}
	json_t *for_ms = json_object_get(out->root, "for_ms");
	if (for_ms) {
		if (!is_int_in(for_ms, 1, MOCK_MAX_FOR_MS)) {
			bad = "for_ms must be an integer from 1 to 3600000";
			goto fail;
		}
		out->for_ms = (int64_t)json_integer_value(for_ms);
	}
	return NULL;
fail:
	mock_faults_post_release(out);
	return bad;
}

void mock_faults_post_release(struct mock_faults_post *p)
{
	json_decref(p->root);
	memset(p, 0, sizeof(*p));
}

int mock_switch_on(const json_t *v)
{
	return json_is_boolean(v) ? json_is_true(v) : json_integer_value(v) != 0;
}

int64_t mock_rate_ppm(const json_t *v)
{
	return (int64_t)(json_number_value(v) * 1e6 + 0.5);
}

/* ---- the scripted undo ------------------------------------------------------------- */

/* One POST's undo, waiting on the timer. */
struct undo {
	struct mock_undo *u;
	uint64_t gen; /* the POST's; a later POST or a reset changes u->gen */
	unsigned fields;
};

void mock_undo_init(struct mock_undo *u, mock_faults_clear_fn clear, void *owner, const char *event,
                    const char *msg)
{
	memset(u, 0, sizeof(*u));
	pthread_mutex_init(&u->mu, NULL);
	u->clear = clear;
	u->owner = owner;
	u->event = event;
	u->msg = msg;
}

void mock_undo_release(struct mock_undo *u)
{
	pthread_mutex_destroy(&u->mu);
}

/* The timer's callback: clears the POST's faults unless a later one came. */
static void undo_fire(void *arg)
{
	struct undo *d = arg;
	struct mock_undo *u = d->u;
	pthread_mutex_lock(&u->mu);
	if (d->gen == u->gen) {
		u->clear(u->owner, d->fields);
		u->until_ms = 0;
		log_info(u->event, "%s", u->msg);
	}
	pthread_mutex_unlock(&u->mu);
	free(d);
}

int mock_undo_begin(struct mock_undo *u, struct mock_timer *timer, int64_t for_ms, unsigned fields)
{
	pthread_mutex_lock(&u->mu);
	uint64_t gen = u->gen + 1;
	int64_t until = 0;
	if (for_ms > 0) {
		struct undo *d = xmalloc(sizeof(*d));
		*d = (struct undo){u, gen, fields};
		int rc = mock_timer_add(timer, clock_mono_us() + for_ms * 1000, undo_fire, d);
		if (rc != 0) {
			/* too many slow answers waiting, or stopping: set nothing */
			pthread_mutex_unlock(&u->mu);
			free(d);
			return rc;
		}
		until = clock_wall_ms() + for_ms;
	}
	u->gen = gen; /* the earlier POST's undo, if any, is now void */
	u->until_ms = until;
	return 0;
}

void mock_undo_end(struct mock_undo *u)
{
	pthread_mutex_unlock(&u->mu);
}

void mock_undo_reset(struct mock_undo *u)
{
	pthread_mutex_lock(&u->mu);
	u->clear(u->owner, ~0u);
	u->gen++; /* a pending undo has nothing left to undo */
	u->until_ms = 0;
	pthread_mutex_unlock(&u->mu);
}

int64_t mock_undo_until(struct mock_undo *u)
{
	pthread_mutex_lock(&u->mu);
	int64_t until = u->until_ms;
	pthread_mutex_unlock(&u->mu);
	return until;
}
