/* The fuzz_idx harness (tests/fuzz/fuzz_idx.c) over a fixed corpus and its mutations. */
#define LLVMFuzzerTestOneInput fuzz_idx_one
#include "../fuzz/fuzz_idx.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"

#include "gitwal/io.h"

/* An .idx v2 of n objects with ids spread over the fanout; offsets >= 2^31 go to the large table. */
static uint8_t *make_idx(size_t n, int large, size_t *len)
{
	size_t cap = 8 + 1024 + n * 36 + 40, p, i, nlarge = 0;
	uint8_t *b = calloc(1, cap);
	uint32_t fan[256] = {0};
	assert_non_null(b);
	memcpy(b, "\377tOc\0\0\0\2", 8);
	for (i = 0; i < n; i++)
		for (size_t k = (i * 256) / (n ? n : 1); k < 256; k++)
			fan[k]++;
	for (i = 0, p = 8; i < 256; i++, p += 4) {
		b[p] = (uint8_t)(fan[i] >> 24);
		b[p + 1] = (uint8_t)(fan[i] >> 16);
		b[p + 2] = (uint8_t)(fan[i] >> 8);
		b[p + 3] = (uint8_t)fan[i];
	}
	for (i = 0; i < n; i++, p += 20) {
		memset(b + p, 0, 20);
		b[p] = (uint8_t)((i * 256) / n);
		b[p + 19] = (uint8_t)i;
	}
	for (i = 0; i < n; i++, p += 4)
		b[p + 3] = (uint8_t)(i * 37);
	for (i = 0; i < n; i++, p += 4) {
		uint32_t v = large && (i & 1) ? 0x80000000u | (uint32_t)nlarge++ : (uint32_t)(12 + 100 * i);
		b[p] = (uint8_t)(v >> 24);
		b[p + 1] = (uint8_t)(v >> 16);
		b[p + 2] = (uint8_t)(v >> 8);
		b[p + 3] = (uint8_t)v;
	}
	for (i = 0; i < nlarge; i++, p += 8) {
		b[p + 3] = 1; /* 2^32 + i */
		b[p + 7] = (uint8_t)i;
	}
	memset(b + p, 0xcd, 20);
	p += 20;
	gw_hash_buffer(GW_HASH_SHA1, b, p, b + p);
	p += 20;
	*len = p;
	return b;
}

static void test_fuzz_idx_corpus(void **state)
{
	fd_input corpus[8];
	uint8_t *bufs[8];
	size_t i, n, len;
	(void)state;
	bufs[0] = make_idx(0, 0, &len), corpus[0].size = len;
	bufs[1] = make_idx(1, 0, &len), corpus[1].size = len;
	bufs[2] = make_idx(7, 0, &len), corpus[2].size = len;
	bufs[3] = make_idx(20, 1, &len), corpus[3].size = len;
	bufs[4] = make_idx(300, 1, &len), corpus[4].size = len;
	/* Damaged: the count raised, a large offset out of range, version 3. */
	bufs[5] = make_idx(7, 1, &len), corpus[5].size = len;
	bufs[5][8 + 1023] = 0xff;
	bufs[6] = make_idx(7, 1, &len), corpus[6].size = len;
	bufs[6][8 + 1024 + 7 * 24 + 7] = 0x7f;
	bufs[7] = make_idx(3, 0, &len), corpus[7].size = len;
	bufs[7][7] = 3;
	for (i = 0; i < 8; i++)
		corpus[i].data = bufs[i];
	/* The intact seeds open and verify. */
	for (i = 0; i < 5; i++) {
		int fd = memfd_create("seed.idx", 0);
		gw_idx idx;
		assert_int_equal(fz_idx_write_all(fd, corpus[i].data, corpus[i].size), 0);
		assert_int_equal(gw_idx_open(&idx, fd, "seed.idx", 20, 1), 0);
		close(fd);
	}
	n = fd_run(fuzz_idx_one, corpus, 8, 20000, 0x5eed1dULL);
	assert_true(n > 20000);
	for (i = 0; i < 8; i++)
		free(bufs[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_idx_corpus),
	};
	return tu_run_tests(tests);
}
