/* The fuzz_packed_refs harness (tests/fuzz/fuzz_packed_refs.c) over a fixed corpus and its mutations. */
#define LLVMFuzzerTestOneInput fuzz_packed_refs_one
#include "../fuzz/fuzz_packed_refs.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"

#define S(x) {(const uint8_t *)(x), sizeof(x) - 1}
#define A "411c663bf82ccc23963dee80e85d372829565e80"
#define B "6fe7605cc5eb65587ae3ed3735ae9dcd2746e712"

static void test_fuzz_packed_refs_corpus(void **state)
{
	static const fd_input corpus[] = {
		S("# pack-refs with: peeled fully-peeled sorted \n" A " refs/heads/main\n" B " refs/tags/v1\n^" A "\n"),
		S(A " refs/heads/b\n" B " refs/heads/a\n"),
		S(A " refs/heads/a\n" B " refs/heads/a\n"),
		S("# pack-refs with: peeled \n"),
		S(""),
		S("\n"),
		S("#\n"),
		S(A " refs/heads/main"),
		S(A " refs/heads/main\r\n"),
		S(A " refs/heads/a\0b\n"),
		S(A " refs/heads/..\n"),
		S(A " refs/heads/x.lock\n"),
		S(A " HEAD\n"),
		S("^" A "\n"),
		S(A " refs/tags/t\n^" A "\n^" B "\n"),
		S(A " refs/tags/t\n^" A),
		S("411C663BF82CCC23963DEE80E85D372829565E80 refs/heads/UPPER\n"),
		S("411c663bf82ccc23963dee80e85d372829565e8 refs/heads/short\n"),
		S(A "  refs/heads/twospaces\n"),
		S(A " refs/heads/caf\xc3\xa9\n" B " refs/heads/\xff\n"),
		S(A " refs/heads/a/b/c/d/e/f/g\n" B " refs/heads/a/b/c/d/e/f\n"),
	};
	size_t n = fd_run(fuzz_packed_refs_one, corpus, sizeof(corpus) / sizeof(corpus[0]), 20000, 0x7061636b6564ULL);
	(void)state;
	assert_true(n > 20000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_packed_refs_corpus),
	};
	return tu_run_tests(tests);
}
