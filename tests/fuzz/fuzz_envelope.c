/*
 * fuzz_envelope.c - libFuzzer target: any bytes into envelope_parse must
 * give 0 or a clean error, never a crash, a leak or undefined behaviour.
 */
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "ingest/envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena a;
	struct envelope env;
	arena_init(&a, 4096);
	if (envelope_parse((const char *)data, size, 1700000000000LL, &a, &env) == 0) {
		for (int i = 0; i < env.nchanges; i++)
			for (int k = 0; k < env.changes[i].nentries; k++)
				(void)env.changes[i].entries[k].ext_id[0];
	}
	arena_release(&a);
	return 0;
}
