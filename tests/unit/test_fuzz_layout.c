/* The fuzz_layout harness (tests/fuzz/fuzz_layout.c) over a fixed corpus and its mutations. */
#define LLVMFuzzerTestOneInput fuzz_layout_one
#include "../fuzz/fuzz_layout.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"

#define S(x) {(const uint8_t *)(x), sizeof(x) - 1}

static void test_fuzz_layout_corpus(void **state)
{
	static const fd_input corpus[] = {
		S("repos/a.git/00000000000000000001.full.bundle"),
		S("repos/group%2Fp.git/00000000000000000042.full.manifest"),
		S("repos/%2Ehidden/18446744073709551615.full.idx"),
		S("repos/a/00000000000000000007.seg"),
		S("repos/a/99999999999999999999.full.bundle"),
		S("repos/%2E%2E/00000000000000000001.full.bundle"),
		S("repos/%2E%2E%2Fx/00000000000000000001.full.bundle"),
		S("repos/%zz/00000000000000000001.full.bundle"),
		S("repos/%00/00000000000000000001.full.bundle"),
		S("repos/a%/00000000000000000001.full.bundle"),
		S("repos/a%2/00000000000000000001.full.bundle"),
		S("repos//00000000000000000001.full.bundle"),
		S("repos/a/b/00000000000000000001.full.bundle"),
		S("repos/"),
		S("repos"),
		S(""),
		S("%"),
		S("%2F"),
		S("%5C"),
		S("caf%C3%A9"),
		S("a%2F..%2Fb"),
		S("%2Fetc%2Fpasswd"),
		S("a.git"),
		S("..."),
		S("a\xff\xfe"),
		S("a/b"),
	};
	size_t n = fd_run(fuzz_layout_one, corpus, sizeof(corpus) / sizeof(corpus[0]), 20000, 0x1a2b3c4d5e6fULL);
	(void)state;
	assert_true(n > 20000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_layout_corpus),
	};
	return tu_run_tests(tests);
}
