/* Unit tests for src/util/hash.c: hashes, hex, and the digest filter. */
#include "testutil.h"

#include "gitwal/io.h"

static void hex_of(gw_hash_kind kind, const void *buf, size_t len, char *hex)
{
	unsigned char raw[GW_HASH_MAX];
	assert_int_equal(gw_hash_buffer(kind, buf, len, raw), 0);
	gw_hex_encode(hex, raw, gw_hash_size(kind));
}

static void test_hash_sizes(void **state)
{
	(void)state;
	assert_int_equal(gw_hash_size(GW_HASH_SHA1), 20);
	assert_int_equal(gw_hash_size(GW_HASH_SHA256), 32);
	assert_true(GW_HEX_MAX >= 2 * 32 + 1);
}

static void test_hash_buffer_vectors(void **state)
{
	static const char *abc448 = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	char hex[GW_HEX_MAX];
	(void)state;
	hex_of(GW_HASH_SHA1, "abc", 3, hex);
	assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	hex_of(GW_HASH_SHA256, "abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hex_of(GW_HASH_SHA1, "", 0, hex);
	assert_string_equal(hex, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
	hex_of(GW_HASH_SHA256, "", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	hex_of(GW_HASH_SHA1, abc448, strlen(abc448), hex);
	assert_string_equal(hex, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
	hex_of(GW_HASH_SHA256, abc448, strlen(abc448), hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static void test_hash_incremental_and_reuse(void **state)
{
	unsigned char raw[GW_HASH_MAX];
	char hex[GW_HEX_MAX];
	char *million = malloc(1000000);
	gw_hash *h;
	size_t i;
	(void)state;
	assert_non_null(million);
	memset(million, 'a', 1000000);

	/* One million 'a' in uneven pieces. */
	assert_int_equal(gw_hash_new(&h, GW_HASH_SHA1), 0);
	for (i = 0; i < 1000000;) {
		size_t n = (i % 7919) + 1;
		if (n > 1000000 - i)
			n = 1000000 - i;
		gw_hash_update(h, million + i, n);
		i += n;
	}
	gw_hash_final(h, raw);
	gw_hex_encode(hex, raw, 20);
	assert_string_equal(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
	/* final resets: the same object hashes "abc" afresh. */
	gw_hash_update(h, "a", 1);
	gw_hash_update(h, "", 0);
	gw_hash_update(h, "bc", 2);
	gw_hash_final(h, raw);
	gw_hex_encode(hex, raw, 20);
	assert_string_equal(hex, "a9993e364706816aba3e25717850c26c9cd0d89d");
	gw_hash_free(h);

	assert_int_equal(gw_hash_new(&h, GW_HASH_SHA256), 0);
	gw_hash_update(h, million, 1000000);
	gw_hash_final(h, raw);
	gw_hex_encode(hex, raw, 32);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	/* Final with nothing added: the empty digest. */
	gw_hash_final(h, raw);
	gw_hex_encode(hex, raw, 32);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	gw_hash_free(h);
	gw_hash_free(NULL);
	free(million);
}

static void test_hex_encode(void **state)
{
	unsigned char raw[256];
	char hex[513];
	int i;
	(void)state;
	for (i = 0; i < 256; i++)
		raw[i] = (unsigned char)i;
	gw_hex_encode(hex, raw, 256);
	assert_int_equal(strlen(hex), 512);
	assert_memory_equal(hex, "000102030405060708090a0b0c0d0e0f10", 34);
	assert_string_equal(hex + 500, "fafbfcfdfeff");
	gw_hex_encode(hex, raw, 0);
	assert_string_equal(hex, "");
}

static void test_hex_decode(void **state)
{
	static const struct {
		const char *hex;
		size_t len;
	} bad[] = {
		/* Bad digits, in either nibble and at any position. */
		{"0g", 1}, {"g0", 1}, {"00 0", 2}, {"0-", 1}, {"0x12", 2},
		{":0", 1}, {"/0", 1}, {"@0", 1}, {"`0", 1}, {"G0", 1},
		/* Too short: the terminator is not a digit. */
		{"a", 1}, {"abc", 2}, {"\xff\xff", 1},
	};
	unsigned char raw[256], back[256];
	char hex[513];
	int i;
	(void)state;
	for (i = 0; i < 256; i++)
		raw[i] = (unsigned char)(255 - i);
	gw_hex_encode(hex, raw, 256);
	memset(back, 0, sizeof(back));
	assert_int_equal(gw_hex_decode(back, hex, 256), 0);
	assert_memory_equal(back, raw, 256);

	/* Upper case is accepted, mixed too. */
	assert_int_equal(gw_hex_decode(back, "DEADbeef", 4), 0);
	assert_memory_equal(back, "\xde\xad\xbe\xef", 4);
	assert_int_equal(gw_hex_decode(back, "", 0), 0);
	/* Only 2*len digits are read. */
	assert_int_equal(gw_hex_decode(back, "0aZZ", 1), 0);
	assert_int_equal(back[0], 0x0a);

	for (i = 0; i < (int)(sizeof(bad) / sizeof(bad[0])); i++)
		assert_int_equal(gw_hex_decode(back, bad[i].hex, bad[i].len), -1);
}

/* A sink that keeps what it is given, and may fail on demand. */
typedef struct {
	gw_sink sink;
	unsigned char *buf;
	size_t len, cap;
	unsigned calls;
	int fail_with;
} capture_sink;

static int capture_write(gw_sink *s, const void *buf, size_t len)
{
	capture_sink *c = (capture_sink *)s;
	c->calls++;
	if (c->fail_with)
		return gw_error_set(c->fail_with, "capture sink refuses %zu bytes", len);
	if (c->len + len > c->cap) {
		c->cap = (c->len + len) * 2;
		c->buf = realloc(c->buf, c->cap);
		assert_non_null(c->buf);
	}
	memcpy(c->buf + c->len, buf, len);
	c->len += len;
	return 0;
}

static void test_digest_filter_passes_and_counts(void **state)
{
	capture_sink cap = {{capture_write}, NULL, 0, 0, 0, 0};
	gw_digest_filter f;
	unsigned char data[100000], raw[32];
	char hex[GW_HEX_MAX], want[GW_HEX_MAX];
	uint64_t seed = 42;
	size_t i, off;
	(void)state;
	for (i = 0; i < sizeof(data); i++)
		data[i] = (unsigned char)tu_rand(&seed);
	assert_int_equal(gw_digest_filter_init(&f, GW_HASH_SHA256, &cap.sink), 0);
	for (off = 0; off < sizeof(data);) {
		size_t n = (size_t)(tu_rand(&seed) % 5000);
		if (n > sizeof(data) - off)
			n = sizeof(data) - off;
		assert_int_equal(gw_sink_write(&f.sink, data + off, n), 0);
		off += n;
	}
	/* An empty write is no call at all. */
	i = cap.calls;
	assert_int_equal(gw_sink_write(&f.sink, data, 0), 0);
	assert_int_equal(cap.calls, i);

	assert_int_equal(f.bytes, sizeof(data));
	gw_digest_filter_finish(&f, hex);
	assert_int_equal(strlen(hex), 64);
	gw_hash_buffer(GW_HASH_SHA256, data, sizeof(data), raw);
	gw_hex_encode(want, raw, 32);
	assert_string_equal(hex, want);
	assert_int_equal(cap.len, sizeof(data));
	assert_memory_equal(cap.buf, data, sizeof(data));
	gw_digest_filter_dispose(&f);
	assert_null(f.hash);
	free(cap.buf);
}

static void test_digest_filter_measuring_only_and_chained(void **state)
{
	capture_sink cap = {{capture_write}, NULL, 0, 0, 0, 0};
	gw_digest_filter outer, inner;
	char hex1[GW_HEX_MAX], hex2[GW_HEX_MAX];
	(void)state;

	/* next == NULL: a pure measuring sink. */
	assert_int_equal(gw_digest_filter_init(&outer, GW_HASH_SHA1, NULL), 0);
	assert_int_equal(gw_sink_write(&outer.sink, "ab", 2), 0);
	assert_int_equal(gw_sink_write(&outer.sink, "c", 1), 0);
	assert_int_equal(outer.bytes, 3);
	gw_digest_filter_finish(&outer, hex1);
	assert_string_equal(hex1, "a9993e364706816aba3e25717850c26c9cd0d89d");
	gw_digest_filter_dispose(&outer);

	/* Two filters in a chain see the same bytes. */
	assert_int_equal(gw_digest_filter_init(&inner, GW_HASH_SHA256, &cap.sink), 0);
	assert_int_equal(gw_digest_filter_init(&outer, GW_HASH_SHA1, &inner.sink), 0);
	assert_int_equal(gw_sink_write(&outer.sink, "abc", 3), 0);
	gw_digest_filter_finish(&outer, hex1);
	gw_digest_filter_finish(&inner, hex2);
	assert_string_equal(hex1, "a9993e364706816aba3e25717850c26c9cd0d89d");
	assert_string_equal(hex2, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(outer.bytes, 3);
	assert_int_equal(inner.bytes, 3);
	assert_int_equal(cap.len, 3);
	assert_memory_equal(cap.buf, "abc", 3);
	gw_digest_filter_dispose(&outer);
	gw_digest_filter_dispose(&inner);
	free(cap.buf);
}

static void test_digest_filter_propagates_errors(void **state)
{
	capture_sink cap = {{capture_write}, NULL, 0, 0, 0, GW_EIO};
	gw_digest_filter f;
	(void)state;
	assert_int_equal(gw_digest_filter_init(&f, GW_HASH_SHA256, &cap.sink), 0);
	tu_assert_err(gw_sink_write(&f.sink, "xyz", 3), GW_EIO, "refuses 3 bytes");
	assert_int_equal(gw_error_code(), GW_EIO);
	gw_digest_filter_dispose(&f);
}

static void test_error_api(void **state)
{
	char big[3000];
	(void)state;
	gw_error_clear();
	assert_int_equal(gw_error_code(), 0);
	assert_string_equal(gw_error_message(), "unknown error");
	assert_int_equal(gw_error_set(GW_ENOTFOUND, "key %s missing", "k"), GW_ENOTFOUND);
	assert_string_equal(gw_error_message(), "key k missing");
	assert_int_equal(gw_error_prefix("store %s", "s"), GW_ENOTFOUND);
	assert_string_equal(gw_error_message(), "store s: key k missing");
	/* Messages are one line. */
	gw_error_set(GW_EINVALID, "a\nb\rc");
	assert_string_equal(gw_error_message(), "a b c");
	/* Code 0 becomes GW_ERROR. */
	assert_int_equal(gw_error_set(0, "x"), GW_ERROR);
	/* Overlong messages are truncated, not overflowed. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	gw_error_set(GW_EIO, "%s", big);
	assert_true(strlen(gw_error_message()) < sizeof(big) - 1);
	errno = ENOENT;
	gw_error_set_errno(GW_EIO, "open %s", "f");
	assert_string_equal(gw_error_message(), "open f: No such file or directory");
	gw_error_clear();
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hash_sizes),
		cmocka_unit_test(test_hash_buffer_vectors),
		cmocka_unit_test(test_hash_incremental_and_reuse),
		cmocka_unit_test(test_hex_encode),
		cmocka_unit_test(test_hex_decode),
		cmocka_unit_test(test_digest_filter_passes_and_counts),
		cmocka_unit_test(test_digest_filter_measuring_only_and_chained),
		cmocka_unit_test(test_digest_filter_propagates_errors),
		cmocka_unit_test(test_error_api),
	};
	return tu_run_tests(tests);
}
