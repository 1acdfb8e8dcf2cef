/*
 * fuzz_jsonr.c - libFuzzer target: any bytes into jsonr_parse must give a
 * tree or ERR_PROTO, never a crash, a leak or undefined behaviour, and must
 * agree with jansson (tests/unit/jsonr_diff.h: accept/refuse alike, equal
 * values, text pool within len + 1 bytes). A disagreement aborts.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/arena.h"
#include "../unit/jsonr_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	/* small blocks: the text pool and most nodes get blocks of their own,
	 * so ASan sees an overrun */
	arena_init(&a, 64);
	const char *why = diff_parse((const char *)data, size, &a);
	if (why) {
		fprintf(stderr, "jsonr and jansson disagree: %s\n", why);
		abort();
	}
	arena_release(&a);
	return 0;
}
