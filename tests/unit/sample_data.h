/*
 * sample_data.h - the sample webhook payloads under tests/unit/data/, for
 * the unit tests that parse them (run from the repository root).
 */
#ifndef MUNIM_TEST_SAMPLE_DATA_H
#define MUNIM_TEST_SAMPLE_DATA_H

#include <stdio.h>
#include <stdlib.h>

#define SAMPLE_DIR "tests/unit/data/wa-payloads/"

/* The whole of sample file name, NUL-terminated, malloc'd; *len its size.
 * Fails the test when it cannot be read. */
static inline char *sample_load(const char *name, size_t *len)
{
	char path[512];
	snprintf(path, sizeof(path), SAMPLE_DIR "%s", name);
	FILE *fp = fopen(path, "rb");
	if (!fp)
		fail_msg("cannot open %s (run tests from the repository root)", path);
	fseek(fp, 0, SEEK_END);
	long n = ftell(fp);
	fseek(fp, 0, SEEK_SET);
	char *data = malloc((size_t)n + 1);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, (size_t)n, fp), (size_t)n);
	fclose(fp);
	data[n] = '\0';
	*len = (size_t)n;
	return data;
}

#endif
