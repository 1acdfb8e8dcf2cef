/*
 * hold.h - levels that rise at once and fall slowly (hysteresis), shared by
 * the spike level (spike.h) and the degradation level (degrade.h).
 *
 * Pure: the caller passes its clock. A level reaches its target as soon as
 * the target is at or above it; below it, the level drops one step only
 * after the target has stayed below it for hold_ms without a break, and the
 * next step down waits a whole hold of its own. A signal that dips and
 * comes back within the hold does not make the level flap.
 */
#ifndef MUNIM_HOLD_H
#define MUNIM_HOLD_H

#include <stdint.h>

struct hold {
	int level;
	int64_t below_since; /* when the target first fell below level, or -1 */
	int64_t hold_ms;
};

/* hold_init: level 0, not falling. */
void hold_init(struct hold *h, int64_t hold_ms);

/*
 * hold_step moves h towards target at now_ms and returns the level;
 * *changed (may be NULL) is 1 when it moved.
 */
int hold_step(struct hold *h, int target, int64_t now_ms, int *changed);

#endif
