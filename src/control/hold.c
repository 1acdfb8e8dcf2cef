/*
 * hold.c - a level with hysteresis (see hold.h).
 *
 * Invariant: below_since is -1 while the target is at or above the level.
 *
 * Threading: none; the caller owns the struct.
 */
#include "control/hold.h"

void hold_init(struct hold *h, int64_t hold_ms)
{
	h->level = 0;
	h->below_since = -1;
	h->hold_ms = hold_ms;
}

int hold_step(struct hold *h, int target, int64_t now_ms, int *changed)
{
	int was = h->level;
	if (target >= h->level) {
		h->level = target;
		h->below_since = -1;
	} else if (h->below_since < 0) {
		h->below_since = now_ms;
	} else if (now_ms - h->below_since >= h->hold_ms) {
		h->level--;
		/* the next step down waits a whole hold of its own */
		h->below_since = target < h->level ? now_ms : -1;
	}
	if (changed)
		*changed = h->level != was;
	return h->level;
}
