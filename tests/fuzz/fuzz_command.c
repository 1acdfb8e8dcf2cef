/*
 * fuzz_command.c - libFuzzer target: any text into the command parser
 * (hostile customer messages) must parse to some command, never crash.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "core/arena.h"
#include "erp/erp_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char text[ERP_MAX_TEXT + 1];
	struct arena a;
	struct erp_cmd cmd;
	if (size > ERP_MAX_TEXT)
		size = ERP_MAX_TEXT;
	memcpy(text, data, size);
	text[size] = '\0';
	arena_init(&a, 4096);
	erp__parse(&a, text, &cmd);
	arena_release(&a);
	return 0;
}
