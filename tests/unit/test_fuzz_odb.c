/* The fuzz_odb harness (tests/fuzz/fuzz_odb.c) over a fixed corpus and its mutations. */
#define LLVMFuzzerTestOneInput fuzz_odb_one
#include "../fuzz/fuzz_odb.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"

/* A mode byte and the bytes after it. */
static uint8_t *with_mode(uint8_t mode, const void *rest, size_t len, size_t *out_len)
{
	uint8_t *b = malloc(len + 1);
	assert_non_null(b);
	b[0] = mode;
	memcpy(b + 1, rest, len);
	*out_len = len + 1;
	return b;
}

/* Described entries: a blob, an OFS_DELTA on it, a REF_DELTA on that, one more REF_DELTA on the blob. */
static uint8_t *described(uint8_t mode, size_t *len)
{
	static const uint8_t d[] = {
		3, 0, 12, 'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!',
		/* base 12 -> 8: copy 5 from 0, insert " you" */
		6, 0, 10, 12, 9, 0x91, 0, 5, 4, ' ', 'y', 'o', 'u',
		/* base 9 -> 3: copy 3 from 6 */
		7, 1, 5, 9, 3, 0x91, 6, 3,
		/* base 12 -> 5: copy 0x10000 (size 0): too long for the base */
		7, 0, 4, 12, 5, 0x81, 0,
	};
	return with_mode(mode, d, sizeof(d), len);
}

static void test_fuzz_odb_corpus(void **state)
{
	fd_input corpus[12];
	uint8_t *bufs[12], z[64];
	static const char hello[] = "blob 5\0hello", commit[] = "commit 3\0abc";
	static const uint8_t delta[] = {0, 5, 'h', 'e', 'l', 'l', 'o', 5, 8, 0x91, 0, 5, 3, '!', '!', '!'};
	uLongf zn = sizeof(z);
	size_t i, n = 0, len;
	(void)state;
	assert_int_equal(compress2(z, &zn, (const Bytef *)hello, 12, 1), Z_OK);
	bufs[n] = with_mode(0, z, zn, &len), corpus[n++].size = len;
	bufs[n] = with_mode(0x80, z, zn, &len), corpus[n++].size = len;
	bufs[n] = with_mode(1, hello, 12, &len), corpus[n++].size = len;
	bufs[n] = with_mode(0x81, hello, 12, &len), corpus[n++].size = len;
	bufs[n] = with_mode(1, commit, 12, &len), corpus[n++].size = len;
	bufs[n] = with_mode(2, delta, sizeof(delta), &len), corpus[n++].size = len;
	bufs[n] = described(4, &len), corpus[n++].size = len;
	bufs[n] = described(0x84, &len), corpus[n++].size = len;
	/* The same packs as stored files: an .idx and a .pack, as the harness wrote them. */
	for (i = 0; i < 2; i++) {
		char path[256];
		unsigned char *idx, *pack, *b;
		size_t il, pl;
		uint8_t *in = described(i ? 0x84 : 4, &len);
		fuzz_odb_one(in, len);
		free(in);
		snprintf(path, sizeof(path), "%s/objects/pack/pack-f.idx", fz_odb_dir);
		idx = tu_read_file(path, &il);
		snprintf(path, sizeof(path), "%s/objects/pack/pack-f.pack", fz_odb_dir);
		pack = tu_read_file(path, &pl);
		assert_non_null(b = malloc(5 + il + pl));
		b[0] = i ? 0x83 : 3;
		gw_put_be32(b + 1, (uint32_t)il);
		memcpy(b + 5, idx, il);
		memcpy(b + 5 + il, pack, pl);
		bufs[n] = b, corpus[n++].size = 5 + il + pl;
		free(idx);
		free(pack);
	}
	for (i = 0; i < n; i++)
		corpus[i].data = bufs[i];
	/* The intact seeds read back as they should. */
	{
		gw_odb *odb;
		gw_oid oid;
		unsigned char *data;
		gw_object_t type;
		fuzz_odb_one(corpus[2].data, corpus[2].size); /* leaves the loose "hello" */
		assert_non_null(odb = fz_odb_open(20));
		fz_odb_hello(&oid, 20);
		assert_int_equal(gw_odb_read(odb, &oid, &type, &data, &len), 0);
		assert_int_equal(len, 5);
		free(data);
		gw_odb_free(odb);
		fuzz_odb_one(corpus[6].data, corpus[6].size); /* the described pack (ids made up: not verified) */
		{
			gw_odb_options o = {.hash_len = 20, .no_verify = 1};
			static const char *const want[] = {"hello world!", "hello you", "you"};
			assert_int_equal(gw_odb_open(&odb, fz_odb_dir, &o), 0);
			memset(&oid, 0, sizeof(oid));
			oid.len = 20;
			for (i = 0; i < 3; i++) {
				oid.id[0] = (unsigned char)(i * 16 + 1);
				if (gw_odb_read(odb, &oid, &type, &data, &len) < 0)
					fail_msg("%s", gw_error_message());
				assert_int_equal(type, GW_OBJECT_BLOB);
				assert_int_equal(len, strlen(want[i]));
				assert_memory_equal(data, want[i], len);
				free(data);
			}
			oid.id[0] = 0x31;
			tu_assert_err(gw_odb_read(odb, &oid, &type, &data, &len), GW_ECORRUPT,
				      "copy instruction reads past the end of the base");
			gw_odb_free(odb);
		}
	}
	len = fd_run(fuzz_odb_one, corpus, n, 8000, 0x0dbf00dULL);
	assert_true(len > 8000);
	for (i = 0; i < n; i++)
		free(bufs[i]);
	fz_odb_cleanup();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_odb_corpus),
	};
	return tu_run_tests(tests);
}
