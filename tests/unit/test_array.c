/*
 * Unit tests for src/util/array.c: growth keeps the elements and at least
 * doubles, and a size that does not fit is refused with the array untouched.
 */
#include "testutil.h"

#include "gitwal/array.h"

#include <stdint.h>

static void test_grows_and_keeps(void **state)
{
	uint64_t *a = NULL;
	size_t cap = 0, n, grows = 0;
	(void)state;
	assert_int_equal(GW_ARRAY_RESERVE(a, cap, 0), 0); /* nothing needed: nothing allocated */
	assert_null(a);
	for (n = 0; n < 100000; n++) {
		size_t before = cap;
		assert_int_equal(GW_ARRAY_RESERVE(a, cap, n + 1), 0);
		assert_true(cap >= n + 1);
		if (cap != before) {
			assert_true(cap >= 2 * before);
			grows++;
		}
		a[n] = n * 7;
	}
	assert_true(grows < 20); /* doubling: appends cost O(n) */
	for (n = 0; n < 100000; n++)
		assert_int_equal(a[n], n * 7);
	/* Room for many at once: exactly what is asked when it is more than double. */
	assert_int_equal(GW_ARRAY_RESERVE(a, cap, cap * 3), 0);
	free(a);
}

static void test_overflow_refused(void **state)
{
	struct big {
		char b[64];
	} *a = NULL;
	size_t cap = 0;
	(void)state;
	assert_int_equal(GW_ARRAY_RESERVE(a, cap, 4), 0);
	strcpy(a[3].b, "kept");
	{
		struct big *before = a;
		assert_int_equal(GW_ARRAY_RESERVE(a, cap, SIZE_MAX / 32), GW_ERROR);
		assert_ptr_equal(a, before);
		assert_int_equal(cap, 16);
		assert_non_null(strstr(gw_error_message(), "out of memory"));
		assert_string_equal(a[3].b, "kept");
	}
	/* A byte buffer (elements of one byte): the limit is SIZE_MAX itself. */
	{
		char *buf = NULL;
		size_t bcap = 0;
		assert_int_equal(GW_ARRAY_RESERVE(buf, bcap, 10), 0);
		assert_int_equal(bcap, 16);
		free(buf);
	}
	free(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_grows_and_keeps),
		cmocka_unit_test(test_overflow_refused),
	};
	return tu_run_tests(tests);
}
