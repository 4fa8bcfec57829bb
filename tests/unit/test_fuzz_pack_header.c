/* The fuzz_pack_header harness (tests/fuzz/fuzz_pack_header.c) over a fixed corpus and its mutations. */
#define LLVMFuzzerTestOneInput fuzz_pack_header_one
#include "../fuzz/fuzz_pack_header.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"

#define S(x) {(const uint8_t *)(x), sizeof(x) - 1}

static void test_fuzz_pack_header_corpus(void **state)
{
	static const fd_input corpus[] = {
		S("\x35"),
		S("\xb0\x01"),
		S("\xf8\x0c"),
		S("\x80\x00"),
		S("\xff\x7f"),
		S("\x80\x80\x00"),
		S("\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),
		S("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
		S("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"),
		S("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80"),
		S("\x00"),
		S(""),
		S("\xfe\xff\xff\xff\xff\xff\xff\xfe\x00"),
	};
	size_t n = fd_run(fuzz_pack_header_one, corpus, sizeof(corpus) / sizeof(corpus[0]), 20000, 0xfeedfaceULL);
	(void)state;
	assert_true(n > 20000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_pack_header_corpus),
	};
	return tu_run_tests(tests);
}
