/* The fuzz_expire harness (tests/fuzz/fuzz_expire.c) over its seeds, records made here, and their mutations. */
#define LLVMFuzzerTestOneInput fuzz_expire_one
#include "../fuzz/fuzz_expire.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"

static void test_fuzz_expire_corpus(void **state)
{
	static const char *seeds[] = {"prefix", "whole"};
	gw_expire_record r = {"g/deep/x.git", 0, 1795000000000000LL, 3600000000LL, 3, 2, 77, 78, 1794999000000000LL, 0};
	fd_input corpus[6];
	unsigned char *made[2];
	size_t n = 0, i, len;
	char path[512];
	(void)state;
	for (i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/tests/fuzz/seeds/fuzz_expire/%s", GITWAL_SOURCE_DIR, seeds[i]);
		corpus[n].data = tu_read_file(path, &corpus[n].size);
		assert_non_null(corpus[n].data);
		n++;
	}
	assert_int_equal(gw_expire_record_encode(&r, &made[0], &len), 0);
	corpus[n++] = (fd_input){made[0], len};
	r.whole = 1;
	r.kept_lsn = 0;
	r.kept_us = 0;
	r.deleted_us = 1794000000000000LL;
	assert_int_equal(gw_expire_record_encode(&r, &made[1], &len), 0);
	corpus[n++] = (fd_input){made[1], len};
	corpus[n++] = (fd_input){(const uint8_t *)"GWEXPIR", 8};
	corpus[n++] = (fd_input){(const uint8_t *)"", 0};
	assert_true(fd_run(fuzz_expire_one, corpus, n, 30000, 0x5eed0e1f1ULL) > 30000);
	for (i = 0; i < 2; i++)
		free((void *)corpus[i].data);
	free(made[0]);
	free(made[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_expire_corpus),
	};
	return tu_run_tests(tests);
}
