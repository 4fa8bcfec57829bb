/*
 * Unit tests for src/util/crc32.c: gw_crc32 equals zlib's crc32_z for every
 * length around the fast path's limits, any alignment, and any split of the
 * input (restore folds it over a pack in pieces).
 */
#include "testutil.h"

#include "util/crc32.h"

#include <zlib.h>

static void test_crc32_matches_zlib(void **state)
{
	enum { MAX = 70000 };
	unsigned char *buf = malloc(MAX + 64);
	uint64_t seed = 42;
	size_t len, off, i;
	(void)state;
	assert_non_null(buf);
	for (i = 0; i < MAX + 64; i++)
		buf[i] = (unsigned char)tu_rand(&seed);
	assert_int_equal(gw_crc32(0, buf, 0), 0);
	assert_int_equal(gw_crc32(0, "123456789", 9), 0xcbf43926u); /* the check value of CRC-32 */
	for (len = 0; len < 300; len++)
		for (off = 0; off < 16; off++)
			assert_int_equal(gw_crc32(0, buf + off, len), (uint32_t)crc32_z(0, buf + off, len));
	for (i = 0; i < 200; i++) {
		len = (size_t)(tu_rand(&seed) % MAX);
		off = (size_t)(tu_rand(&seed) % 64);
		assert_int_equal(gw_crc32(0, buf + off, len), (uint32_t)crc32_z(0, buf + off, len));
	}
	/* Continued over pieces, as while streaming. */
	for (i = 0; i < 200; i++) {
		size_t a = (size_t)(tu_rand(&seed) % MAX), b = (size_t)(tu_rand(&seed) % (MAX - a + 1));
		uint32_t crc = gw_crc32(gw_crc32(0, buf, a), buf + a, b);
		assert_int_equal(crc, (uint32_t)crc32_z(0, buf, a + b));
	}
	free(buf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32_matches_zlib),
	};
	return tu_run_tests(tests);
}
