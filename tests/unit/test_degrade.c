/*
 * test_degrade.c - the graceful degradation level against the seed's
 * triggers with an injected clock: AI latency (> 3 s) and errors (> 5 %)
 * only once enough calls say so, an open AI breaker, WhatsApp delivering
 * below the minimum, WhatsApp down, the store failing too; the highest met
 * wins; hysteresis shared with the spike level (hold.c); the reasons; the
 * config's bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "control/degrade.h"
#include "core/err.h"

#define S 1000

/* healthy: an AI endpoint answering fast, two BSPs up and delivering */
static struct degrade_signals healthy(void)
{
	struct degrade_signals s;
	memset(&s, 0, sizeof(s));
	s.ai_configured = 1;
	s.ai_calls = 100;
	s.ai_p95_ms = 800;
	s.bsps = 2;
	s.bsps_up = 2;
	s.bsps_delivering = 2;
	s.webhooks = 1000;
	return s;
}

static int level(const struct degrade_signals *s)
{
	struct degrade_config c;
	degrade_config_default(&c);
	return degrade_level_of(&c, s);
}

static void test_ai_triggers(void **state)
{
	(void)state;
	struct degrade_signals s = healthy();
	assert_int_equal(level(&s), DEGRADE_FULL);
	s.ai_p95_ms = 3000; /* strictly greater than 3 s */
	assert_int_equal(level(&s), DEGRADE_FULL);
	s.ai_p95_ms = 3001;
	assert_int_equal(level(&s), DEGRADE_AI);
	s.ai_calls = 19; /* too few calls to judge */
	assert_int_equal(level(&s), DEGRADE_FULL);
	s = healthy();
	s.ai_error_pct = 5.0;
	assert_int_equal(level(&s), DEGRADE_FULL);
	s.ai_error_pct = 5.01;
	assert_int_equal(level(&s), DEGRADE_AI);
	s = healthy();
	s.ai_calls = 0;
	s.ai_breaker_open = 1; /* an open breaker needs no calls */
	assert_int_equal(level(&s), DEGRADE_AI);
	s.ai_configured = 0; /* no endpoint: nothing to degrade */
	assert_int_equal(level(&s), DEGRADE_FULL);
}

static void test_whatsapp_and_store(void **state)
{
	(void)state;
	struct degrade_signals s = healthy();
	s.bsps_delivering = 1; /* one BSP still delivers: full */
	assert_int_equal(level(&s), DEGRADE_FULL);
	s.bsps_delivering = 0;
	assert_int_equal(level(&s), DEGRADE_WHATSAPP);
	s.bsps_up = 0;
	assert_int_equal(level(&s), DEGRADE_COMPANION);
	s.store_error_pct = 5.01;
	assert_int_equal(level(&s), DEGRADE_OFFLINE);
	s.webhooks = 19; /* too few webhooks to judge the store */
	assert_int_equal(level(&s), DEGRADE_COMPANION);
	/* the store failing while WhatsApp works is not "offline" */
	s = healthy();
	s.store_error_pct = 50;
	assert_int_equal(level(&s), DEGRADE_FULL);
	/* the highest met wins: AI trouble and WhatsApp down */
	s = healthy();
	s.ai_breaker_open = 1;
	s.bsps_up = 0;
	s.bsps_delivering = 0;
	assert_int_equal(level(&s), DEGRADE_COMPANION);
	/* no BSP configured at all (a test set-up): not degraded by it */
	s = healthy();
	s.bsps = s.bsps_up = s.bsps_delivering = 0;
	assert_int_equal(level(&s), DEGRADE_FULL);
}

static void test_hysteresis(void **state)
{
	(void)state;
	struct degrade_config c;
	degrade_config_default(&c);
	struct degrade d;
	assert_int_equal(degrade_init(&d, &c), 0);
	struct degrade_signals down = healthy(), up = healthy();
	down.bsps_up = down.bsps_delivering = 0;
	int changed;
	assert_int_equal(degrade_update(&d, &down, 0, &changed), DEGRADE_COMPANION);
	assert_int_equal(changed, 1);
	/* WhatsApp back: the level waits out the 60 s hold, then one step */
	assert_int_equal(degrade_update(&d, &up, 1 * S, &changed), DEGRADE_COMPANION);
	assert_int_equal(changed, 0);
	assert_int_equal(degrade_update(&d, &up, 60 * S, &changed), DEGRADE_COMPANION);
	assert_int_equal(degrade_update(&d, &up, 61 * S, &changed), DEGRADE_WHATSAPP);
	assert_int_equal(changed, 1);
	/* a relapse within the hold resets it */
	assert_int_equal(degrade_update(&d, &up, 62 * S, NULL), DEGRADE_WHATSAPP);
	assert_int_equal(degrade_update(&d, &down, 63 * S, NULL), DEGRADE_COMPANION);
	assert_int_equal(degrade_update(&d, &up, 64 * S, NULL), DEGRADE_COMPANION);
	assert_int_equal(degrade_update(&d, &up, 123 * S, NULL), DEGRADE_COMPANION);
	assert_int_equal(degrade_update(&d, &up, 124 * S, NULL), DEGRADE_WHATSAPP);
	assert_int_equal(degrade_update(&d, &up, 184 * S, NULL), DEGRADE_AI);
	assert_int_equal(degrade_update(&d, &up, 244 * S, NULL), DEGRADE_FULL);
}

static void test_reasons_and_bounds(void **state)
{
	(void)state;
	struct degrade_config c;
	degrade_config_default(&c);
	char why[128];
	struct degrade_signals s = healthy();
	assert_string_equal(degrade_reason(&c, &s, why, sizeof(why)), "everything is up");
	s.ai_p95_ms = 4200;
	assert_string_equal(degrade_reason(&c, &s, why, sizeof(why)),
	                    "AI latency p95 4200 ms > 3000 ms");
	s.bsps_delivering = 0;
	assert_string_equal(degrade_reason(&c, &s, why, sizeof(why)),
	                    "none of 2 WhatsApp providers up delivers the minimum rate");
	assert_string_equal(degrade_level_name(DEGRADE_COMPANION), "companion-only");
	assert_string_equal(degrade_level_name(7), "unknown");
	struct degrade d;
	c.ai_error_pct = -1;
	assert_int_equal(degrade_init(&d, &c), ERR_INVAL);
	degrade_config_default(&c);
	c.hold_ms = -5;
	assert_int_equal(degrade_init(&d, &c), ERR_INVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_ai_triggers),
	        cmocka_unit_test(test_whatsapp_and_store),
	        cmocka_unit_test(test_hysteresis),
	        cmocka_unit_test(test_reasons_and_bounds),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
