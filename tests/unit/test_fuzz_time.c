/* The fuzz_time harness (tests/fuzz/fuzz_time.c) over a fixed corpus and its mutations. */
#define LLVMFuzzerTestOneInput fuzz_time_one
#include "../fuzz/fuzz_time.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"

#define S(x) {(const uint8_t *)(x), sizeof(x) - 1}

static void test_fuzz_time_corpus(void **state)
{
	static const fd_input corpus[] = {
		S("2026-11-25T14:02:00Z"),
		S("2026-11-25T15:02:00.123456789+01:00"),
		S("2024-02-29T00:00:00Z"),
		S("2026-02-29T00:00:00Z"),
		S("2026-02-31T00:00:00Z"),
		S("2026-01-01T24:00:00Z"),
		S("2016-12-31T23:59:60Z"),
		S("2017-01-01T00:59:60.999+01:00"),
		S("2026-11-26T04:02:00+14:00"),
		S("2026-11-25T02:02:00-12:00"),
		S("2026-11-25T02:01:00-12:01"),
		S("2026-11-25T14:02:00-00:00"),
		S("0000-01-01T00:00:00Z"),
		S("9999-12-31T23:59:59.999999Z"),
		S("1969-12-31T23:59:59.5z"),
		S("2026-11-25 14:02:00Z"),
		S("2026-11-25T14:02:00"),
		S("@1764090295.123456"),
		S("@-1.0000005"),
		S("@-62167219200"),
		S("@253402300799.999999"),
		S("@99999999999999999999"),
		S("@9223372036854775808"),
		S("@-9223372036854775809"),
		S("@"),
		S("@-"),
		S(""),
		S("2026-11-25T14:02:00Zjunk"),
	};
	size_t n = fd_run(fuzz_time_one, corpus, sizeof(corpus) / sizeof(corpus[0]), 20000, 0x71e5eed5ULL);
	(void)state;
	assert_true(n > 20000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_time_corpus),
	};
	return tu_run_tests(tests);
}
