/*
 * Unit tests for src/util/filter.c (the check and slice filters, the memory
 * sink), the one write loop (gw_write_all, src/util/fd_sink.c) and the read
 * side of a chain (gw_store_pump, src/store/store.c): the same filters on a
 * write into a real file store and on the read back out of it.
 */
#include "testutil.h"

#include "gitwal/io.h"
#include "gitwal/store.h"

#include <fcntl.h>

/* A sink that keeps what it is given (and can be told to fail). */
typedef struct {
	gw_sink sink;
	unsigned char data[4096];
	size_t len;
	int fail;
} keep_sink;

static int keep_write(gw_sink *sink, const void *buf, size_t len)
{
	keep_sink *k = (keep_sink *)sink;
	if (k->fail)
		return gw_error_set(GW_EIO, "sink failed");
	assert_true(k->len + len <= sizeof(k->data));
	memcpy(k->data + k->len, buf, len);
	k->len += len;
	return 0;
}

static void keep_init(keep_sink *k)
{
	memset(k, 0, sizeof(*k));
	k->sink.write = keep_write;
}

static void sha256_hex(const void *buf, size_t len, char *hex)
{
	unsigned char raw[32];
	assert_int_equal(gw_hash_buffer(GW_HASH_SHA256, buf, len, raw), 0);
	gw_hex_encode(hex, raw, 32);
}

/* Feed buf in pieces of n bytes. */
static int feed(gw_sink *s, const char *buf, size_t len, size_t n)
{
	size_t i;
	int rc;
	for (i = 0; i < len; i += n)
		if ((rc = gw_sink_write(s, buf + i, len - i < n ? len - i : n)) < 0)
			return rc;
	return 0;
}

static const char text[] = "the quick brown fox jumps over the lazy dog";

static void test_check_passes_what_matches(void **state)
{
	gw_check_filter f;
	keep_sink k;
	char want[GW_HEX_MAX];
	(void)state;
	keep_init(&k);
	sha256_hex(text, strlen(text), want);
	assert_int_equal(gw_check_filter_init(&f, GW_HASH_SHA256, &k.sink, "k1", "its manifest", strlen(text), want), 0);
	assert_int_equal(feed(&f.sink, text, strlen(text), 5), 0);
	assert_int_equal(gw_check_filter_finish(&f), 0);
	assert_int_equal(f.result, GW_CHECK_OK);
	assert_string_equal(f.hex, want);
	assert_int_equal(f.bytes, strlen(text));
	assert_memory_equal(k.data, text, strlen(text));
	gw_check_filter_dispose(&f);
}

static void test_check_size_short_and_long(void **state)
{
	gw_check_filter f;
	keep_sink k;
	(void)state;
	/* Short: found at the end. */
	keep_init(&k);
	assert_int_equal(gw_check_filter_init(&f, GW_HASH_SHA256, &k.sink, "k1", "its manifest", 100, NULL), 0);
	assert_int_equal(feed(&f.sink, text, strlen(text), 7), 0);
	tu_assert_err(gw_check_filter_finish(&f), GW_ECORRUPT, "key k1 has 43 bytes, its manifest says 100");
	assert_int_equal(f.result, GW_CHECK_SIZE);
	gw_check_filter_dispose(&f);
	/* Long: found as the first byte too many passes, which never reaches the next sink. */
	keep_init(&k);
	assert_int_equal(gw_check_filter_init(&f, GW_HASH_SHA256, &k.sink, "k2", "the index", 10, NULL), 0);
	tu_assert_err(feed(&f.sink, text, strlen(text), 4), GW_ECORRUPT, "key k2 is larger than the index says (10 bytes)");
	assert_int_equal(f.result, GW_CHECK_SIZE);
	assert_int_equal(k.len, 8);
	gw_check_filter_dispose(&f);
	/* Lenient: every byte passes, the size is judged at the end. */
	keep_init(&k);
	assert_int_equal(gw_check_filter_init(&f, GW_HASH_SHA256, &k.sink, "k3", "its manifest", 10, NULL), 0);
	f.lenient = 1;
	assert_int_equal(feed(&f.sink, text, strlen(text), 4), 0);
	assert_int_equal(k.len, strlen(text));
	tu_assert_err(gw_check_filter_finish(&f), GW_ECORRUPT, "key k3 has 43 bytes, its manifest says 10");
	gw_check_filter_dispose(&f);
}

static void test_check_digest_mismatch_and_covered(void **state)
{
	gw_check_filter f;
	char want[GW_HEX_MAX], msg[300];
	unsigned char sha1[20];
	(void)state;
	/* A digest that differs names both. */
	sha256_hex("other", 5, want);
	assert_int_equal(gw_check_filter_init(&f, GW_HASH_SHA256, NULL, "k", "its manifest", GW_CHECK_ANY_SIZE, want), 0);
	assert_int_equal(feed(&f.sink, text, strlen(text), 100), 0);
	assert_int_equal(gw_check_filter_finish(&f), GW_ECORRUPT);
	assert_int_equal(f.result, GW_CHECK_DIGEST);
	snprintf(msg, sizeof(msg), "key k is corrupt: its SHA-256 is %s, its manifest says %s", f.hex, want);
	tu_assert_msg_has(msg);
	gw_check_filter_dispose(&f);
	/* Only the covered bytes are hashed (a segment's digest: all but its own 32), all are counted and passed. */
	sha256_hex(text, 9, want);
	assert_int_equal(gw_check_filter_init(&f, GW_HASH_SHA256, NULL, "k", "the index", strlen(text), want), 0);
	f.covered = 9;
	assert_int_equal(feed(&f.sink, text, strlen(text), 4), 0);
	assert_int_equal(gw_check_filter_finish(&f), 0);
	gw_check_filter_dispose(&f);
	/* SHA-1 says so. */
	assert_int_equal(gw_hash_buffer(GW_HASH_SHA1, text, strlen(text), sha1), 0);
	gw_hex_encode(want, sha1, 20);
	want[0] = want[0] == '0' ? '1' : '0';
	assert_int_equal(gw_check_filter_init(&f, GW_HASH_SHA1, NULL, "p", "its index", GW_CHECK_ANY_SIZE, want), 0);
	assert_int_equal(feed(&f.sink, text, strlen(text), 3), 0);
	tu_assert_err(gw_check_filter_finish(&f), GW_ECORRUPT, "key p is corrupt: its SHA-1 is");
	assert_memory_equal(f.raw, sha1, 20);
	gw_check_filter_dispose(&f);
}

static void test_check_passes_errors_on(void **state)
{
	gw_check_filter f;
	keep_sink k;
	(void)state;
	keep_init(&k);
	k.fail = 1;
	assert_int_equal(gw_check_filter_init(&f, GW_HASH_SHA256, &k.sink, "k", "its manifest", GW_CHECK_ANY_SIZE, NULL),
			 0);
	tu_assert_err(gw_sink_write(&f.sink, "x", 1), GW_EIO, "sink failed");
	gw_check_filter_dispose(&f);
}

static void test_slice_passes_a_range_and_keeps_the_ends(void **state)
{
	gw_slice_filter s;
	keep_sink k;
	size_t n;
	(void)state;
	for (n = 1; n <= 50; n += 7) {
		keep_init(&k);
		gw_slice_filter_init(&s, &k.sink, 4, 15);
		assert_int_equal(feed(&s.sink, text, strlen(text), n), 0);
		assert_int_equal(k.len, 11);
		assert_memory_equal(k.data, text + 4, 11);
		assert_int_equal(s.pos, strlen(text));
		assert_memory_equal(s.head, text, strlen(text));
		assert_memory_equal(gw_slice_filter_tail(&s, 20), text + strlen(text) - 20, 20);
	}
	/* To the end, without a next sink, and a stream longer than what is kept. */
	{
		char big[300];
		size_t i;
		for (i = 0; i < sizeof(big); i++)
			big[i] = (char)i;
		keep_init(&k);
		gw_slice_filter_init(&s, &k.sink, 290, GW_SLICE_END);
		assert_int_equal(feed(&s.sink, big, sizeof(big), 33), 0);
		assert_int_equal(k.len, 10);
		assert_memory_equal(k.data, big + 290, 10);
		assert_memory_equal(s.head, big, GW_SLICE_KEEP);
		assert_memory_equal(gw_slice_filter_tail(&s, GW_SLICE_KEEP), big + sizeof(big) - GW_SLICE_KEEP, GW_SLICE_KEEP);
		gw_slice_filter_init(&s, NULL, 0, GW_SLICE_END);
		assert_int_equal(feed(&s.sink, big, sizeof(big), 300), 0);
		assert_memory_equal(gw_slice_filter_tail(&s, 1), big + 299, 1);
	}
}

static void test_buffer_sink(void **state)
{
	gw_buffer_sink b;
	unsigned char fixed[8], *data;
	size_t len, i;
	(void)state;
	/* Grown past its first size, NUL-terminated when taken. */
	gw_buffer_sink_init(&b, NULL, 1u << 20, 3, "the thing");
	for (i = 0; i < 1000; i++)
		assert_int_equal(gw_sink_write(&b.sink, text, strlen(text)), 0);
	data = gw_buffer_sink_take(&b, &len);
	assert_non_null(data);
	assert_int_equal(len, 1000 * strlen(text));
	assert_memory_equal(data + 999 * strlen(text), text, strlen(text));
	assert_int_equal(data[len], 0);
	free(data);
	gw_buffer_sink_dispose(&b);
	/* Nothing written: an empty string. */
	gw_buffer_sink_init(&b, NULL, 10, 0, "the thing");
	data = gw_buffer_sink_take(&b, &len);
	assert_int_equal(len, 0);
	assert_string_equal((char *)data, "");
	free(data);
	/* Over its cap, and into a fixed buffer. */
	gw_buffer_sink_init(&b, NULL, 10, 0, "the thing");
	tu_assert_err(gw_sink_write(&b.sink, text, 11), GW_ECORRUPT, "the thing is larger than the 10 bytes allowed");
	gw_buffer_sink_dispose(&b);
	gw_buffer_sink_init(&b, fixed, sizeof(fixed), 0, "a read of 8 bytes");
	assert_int_equal(gw_sink_write(&b.sink, text, 5), 0);
	assert_int_equal(gw_sink_write(&b.sink, text + 5, 3), 0);
	assert_memory_equal(fixed, text, 8);
	tu_assert_err(gw_sink_write(&b.sink, text, 1), GW_ECORRUPT, "a read of 8 bytes is larger than");
	gw_buffer_sink_dispose(&b);
}

static void test_write_all(void **state)
{
	char dir[128], path[200];
	unsigned char *back, big[300000];
	size_t len, i;
	int fd;
	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	for (i = 0; i < sizeof(big); i++)
		big[i] = (unsigned char)(i * 7);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(gw_write_all(fd, big, sizeof(big)), 0);
	assert_int_equal(gw_write_all(fd, big, 0), 0);
	close(fd);
	back = tu_read_file(path, &len);
	assert_int_equal(len, sizeof(big));
	assert_memory_equal(back, big, len);
	free(back);
	/* A descriptor that cannot be written: -1 and errno, for the caller to name the file. */
	fd = open(path, O_RDONLY);
	errno = 0;
	assert_int_equal(gw_write_all(fd, big, 10), -1);
	assert_int_equal(errno, EBADF);
	close(fd);
	tu_rmrf(dir);
}

/*
 * Both directions through one chain of filters: written into a file store
 * through a digest filter, read back out of it through the check that
 * digest allows, into memory; then every way the read must fail.
 */
static void test_both_directions_through_a_store(void **state)
{
	char dir[128], url[200], hex[GW_HEX_MAX], wrong[GW_HEX_MAX];
	static char data[3u << 20];
	gw_store *store;
	gw_store_writer *w;
	gw_digest_filter digest;
	gw_check_filter check;
	gw_buffer_sink mem;
	size_t i;
	(void)state;
	tu_mkdtemp(dir, sizeof(dir));
	snprintf(url, sizeof(url), "file://%s/store", dir);
	assert_int_equal(gw_store_open(&store, url), 0);
	for (i = 0; i < sizeof(data); i++)
		data[i] = (char)(i % 251);

	/* Writing: bytes -> digest -> the store's writer. */
	assert_int_equal(gw_store_write_open(&w, store, "a/key", sizeof(data)), 0);
	assert_int_equal(gw_digest_filter_init(&digest, GW_HASH_SHA256, gw_store_writer_sink(w)), 0);
	assert_int_equal(feed(&digest.sink, data, sizeof(data), 100000), 0);
	gw_digest_filter_finish(&digest, hex);
	gw_digest_filter_dispose(&digest);
	assert_int_equal(gw_store_writer_commit(w), 0);
	gw_store_writer_free(w);

	/* Reading: the store -> the same check -> memory, more than one pump buffer's worth. */
	gw_buffer_sink_init(&mem, NULL, sizeof(data), 0, "a/key");
	assert_int_equal(gw_check_filter_init(&check, GW_HASH_SHA256, &mem.sink, "a/key", "its manifest", sizeof(data), hex),
			 0);
	assert_int_equal(gw_store_pump(store, "a/key", 0, GW_STORE_TO_END, &check.sink), 0);
	assert_int_equal(gw_check_filter_finish(&check), 0);
	assert_int_equal(mem.len, sizeof(data));
	assert_memory_equal(mem.data, data, sizeof(data));
	gw_check_filter_dispose(&check);
	gw_buffer_sink_dispose(&mem);

	/* A range of it. */
	gw_buffer_sink_init(&mem, NULL, sizeof(data), 0, "a/key");
	assert_int_equal(gw_store_pump(store, "a/key", 1000, 5000, &mem.sink), 0);
	assert_int_equal(mem.len, 5000);
	assert_memory_equal(mem.data, data + 1000, 5000);
	gw_buffer_sink_dispose(&mem);

	/* The record says another size: smaller fails before the key is read to its end; larger at the end. */
	assert_int_equal(gw_check_filter_init(&check, GW_HASH_SHA256, NULL, "a/key", "its manifest", 10, hex), 0);
	tu_assert_err(gw_store_pump(store, "a/key", 0, GW_STORE_TO_END, &check.sink), GW_ECORRUPT,
		      "key a/key is larger than its manifest says (10 bytes)");
	assert_true(check.bytes < sizeof(data));
	gw_check_filter_dispose(&check);
	assert_int_equal(gw_check_filter_init(&check, GW_HASH_SHA256, NULL, "a/key", "its manifest", sizeof(data) + 1, hex),
			 0);
	assert_int_equal(gw_store_pump(store, "a/key", 0, GW_STORE_TO_END, &check.sink), 0);
	tu_assert_err(gw_check_filter_finish(&check), GW_ECORRUPT, "key a/key has 3145728 bytes, its manifest says 3145729");
	gw_check_filter_dispose(&check);
	/* Another digest. */
	memcpy(wrong, hex, sizeof(wrong));
	wrong[63] = wrong[63] == '0' ? '1' : '0';
	assert_int_equal(gw_check_filter_init(&check, GW_HASH_SHA256, NULL, "a/key", "its manifest", sizeof(data), wrong), 0);
	assert_int_equal(gw_store_pump(store, "a/key", 0, GW_STORE_TO_END, &check.sink), 0);
	tu_assert_err(gw_check_filter_finish(&check), GW_ECORRUPT, "key a/key is corrupt: its SHA-256 is");
	tu_assert_msg_has(wrong);
	gw_check_filter_dispose(&check);
	/* The store's errors, and the chain's, come back as they are. */
	gw_buffer_sink_init(&mem, NULL, 10, 0, "a/key");
	tu_assert_err(gw_store_pump(store, "a/nothing", 0, GW_STORE_TO_END, &mem.sink), GW_ENOTFOUND, "a/nothing");
	tu_assert_err(gw_store_pump(store, "a/key", 0, GW_STORE_TO_END, &mem.sink), GW_ECORRUPT,
		      "a/key is larger than the 10 bytes allowed");
	gw_buffer_sink_dispose(&mem);
	gw_store_free(store);
	tu_rmrf(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_check_passes_what_matches),
		cmocka_unit_test(test_check_size_short_and_long),
		cmocka_unit_test(test_check_digest_mismatch_and_covered),
		cmocka_unit_test(test_check_passes_errors_on),
		cmocka_unit_test(test_slice_passes_a_range_and_keeps_the_ends),
		cmocka_unit_test(test_buffer_sink),
		cmocka_unit_test(test_write_all),
		cmocka_unit_test(test_both_directions_through_a_store),
	};
	return tu_run_tests(tests);
}
