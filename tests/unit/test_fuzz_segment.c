/* The fuzz_segment harness (tests/fuzz/fuzz_segment.c) over a corpus of real segment headers and their mutations. */
#define LLVMFuzzerTestOneInput fuzz_segment_one
#include "../fuzz/fuzz_segment.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"
#include "util/bytes.h"

#include <lz4.h>

#define A "411c663bf82ccc23963dee80e85d372829565e80"
#define B "6fe7605cc5eb65587ae3ed3735ae9dcd2746e712"

/* A header with every kind of update, encoded as the archiver writes it. */
static void encode_sample(unsigned char **out, size_t *len, int gap)
{
	gw_update u[5];
	gw_segment_header h;
	memset(u, 0, sizeof(u));
	memset(&h, 0, sizeof(h));
	u[0].kind = GW_UPDATE_CREATED;
	u[0].time_us = 1000;
	u[1] = (gw_update){GW_UPDATE_REF, 1001, "refs/heads/main", "", A, NULL, NULL};
	u[2] = (gw_update){GW_UPDATE_REF, 1002, "refs/heads/main", A, B, NULL, NULL};
	/* A symbolic ref may point outside refs/ (not HEAD: git refuses that, and so does refname.h). */
	u[3] = (gw_update){GW_UPDATE_SYMREF, 1003, "refs/sym/orig", "", "", "refs/heads/main", "ORIG_HEAD"};
	u[4] = (gw_update){GW_UPDATE_REF, 1004, "refs/tags/v1", B, "", NULL, NULL};
	h.repository = "grp/a.git";
	h.lsn = 7;
	h.base_lsn = 1;
	memset(h.prev_sha256, 'a', 64);
	h.time_first_us = 1000;
	h.time_last_us = 1004;
	h.updates = u;
	h.nupdates = 5;
	h.objects = 3;
	h.gap = gap;
	h.gap_from_us = gap ? 900 : 0;
	h.gap_to_us = gap ? 1000 : 0;
	assert_int_equal(gw_segment_header_encode(&h, out, len), 0);
}

/* The same header stored plain (flags 0): the JSON itself is what the mutations reach. */
static unsigned char *plain_copy(const unsigned char *enc, size_t *len)
{
	uint32_t flags = gw_get_be32(enc + 8), stored = gw_get_be32(enc + 12), raw = gw_get_be32(enc + 16);
	unsigned char *out = malloc(GW_SEGMENT_PREFIX_SIZE + raw);
	assert_non_null(out);
	memcpy(out, enc, GW_SEGMENT_PREFIX_SIZE);
	if (flags & 1)
		assert_int_equal(LZ4_decompress_safe((const char *)enc + GW_SEGMENT_PREFIX_SIZE,
						     (char *)out + GW_SEGMENT_PREFIX_SIZE, (int)stored, (int)raw),
				 (int)raw);
	else
		memcpy(out + GW_SEGMENT_PREFIX_SIZE, enc + GW_SEGMENT_PREFIX_SIZE, raw);
	gw_put_be32(out + 8, 0);
	gw_put_be32(out + 12, raw);
	*len = GW_SEGMENT_PREFIX_SIZE + raw;
	return out;
}

static void test_fuzz_segment_corpus(void **state)
{
	unsigned char *enc, *gap_enc, *plain, *gap_plain;
	size_t enc_len, gap_len, plain_len, gap_plain_len, n;
	gw_segment_header h;
	size_t need;
	(void)state;
	encode_sample(&enc, &enc_len, 0);
	encode_sample(&gap_enc, &gap_len, 1);
	plain = plain_copy(enc, &plain_len);
	gap_plain = plain_copy(gap_enc, &gap_plain_len);
	/* The plain copy is a valid segment header too, and so are the libFuzzer seeds. */
	{
		static const char *seeds[] = {"push.bin", "kinds.bin"};
		size_t i;
		for (i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++) {
			char path[512];
			size_t sl;
			unsigned char *seed;
			snprintf(path, sizeof(path), "%s/tests/fuzz/seeds/fuzz_segment/%s", GITWAL_SOURCE_DIR, seeds[i]);
			seed = (unsigned char *)tu_read_file(path, &sl);
			assert_non_null(seed);
			assert_int_equal(gw_segment_header_decode(&h, seed, sl, &need, seeds[i]), 0);
			gw_segment_header_dispose(&h);
			free(seed);
		}
	}
	assert_int_equal(gw_segment_header_decode(&h, plain, plain_len, &need, "plain"), 0);
	assert_int_equal(h.nupdates, 5);
	assert_string_equal(h.updates[3].new_target, "ORIG_HEAD");
	gw_segment_header_dispose(&h);
	{
		const fd_input corpus[] = {
			{enc, enc_len},
			{gap_enc, gap_len},
			{plain, plain_len},
			{gap_plain, gap_plain_len},
			{plain, GW_SEGMENT_PREFIX_SIZE},     /* the prefix alone: "need more" */
			{plain, GW_SEGMENT_PREFIX_SIZE - 1}, /* less than a prefix */
			{plain, plain_len - 1},              /* the header cut short */
			{(const uint8_t *)"GWSEG", 5},
			{(const uint8_t *)"", 0},
		};
		n = fd_run(fuzz_segment_one, corpus, sizeof(corpus) / sizeof(corpus[0]), 20000, 0x7365676d656e74ULL);
	}
	assert_true(n > 20000);
	free(enc);
	free(gap_enc);
	free(plain);
	free(gap_plain);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_segment_corpus),
	};
	return tu_run_tests(tests);
}
