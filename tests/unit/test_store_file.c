/* Unit tests for src/store/store.c and the file:// driver (src/store/file.c). */
#include "testutil.h"
#include "fixture.h"

#include "gitwal/store.h"
#include "util/owner.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

/* ---- listing helpers ---- */

/* Lists like gw_store_listing_add, and stops the listing with 7 after its third entry. */
static int collect_three(const gw_store_entry *e, void *payload)
{
	gw_store_listing *l = payload;
	int rc = gw_store_listing_add(e, l);
	return rc < 0 ? rc : l->count >= 3 ? 7 : 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Count the directory entries (hidden ones included) below dir, recursively. */
static size_t count_files(const char *dir, int hidden_only)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t n = 0;
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[1024];
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			n += count_files(p, hidden_only);
			continue;
		}
		if (!hidden_only || de->d_name[0] == '.')
			n++;
	}
	closedir(d);
	return n;
}

static void put_str(gw_store *s, const char *key, const char *text)
{
	int rc = gw_store_put(s, key, text, strlen(text));
	if (rc < 0)
		print_error("put %s: %s\n", key, gw_error_message());
	assert_int_equal(rc, 0);
}

static void assert_get(gw_store *s, const char *key, const char *want)
{
	char *buf;
	size_t len;
	int rc = gw_store_get(s, key, 1 << 20, &buf, &len);
	if (rc < 0)
		print_error("get %s: %s\n", key, gw_error_message());
	assert_int_equal(rc, 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(buf, want, len);
	assert_int_equal(buf[len], '\0');
	free(buf);
}

/* ---- tests ---- */

static void test_open_creates_root_and_url(void **state)
{
	tu_fixture *f = *state;
	char deep[300], url[400];
	struct stat st;
	gw_store *s;
	assert_int_equal(stat(f->root, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_string_equal(gw_store_url(f->store), f->url);
	assert_true(gw_store_features(f->store) & GW_STORE_FEATURE_MODE);
	assert_false(gw_store_features(f->store) & GW_STORE_FEATURE_VERSIONS);

	/* Missing nested directories are created; trailing slashes dropped. */
	snprintf(deep, sizeof(deep), "%s/x/y/z", f->dir);
	snprintf(url, sizeof(url), "file://%s///", deep);
	assert_int_equal(gw_store_open(&s, url), 0);
	assert_int_equal(stat(deep, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	snprintf(url, sizeof(url), "file://%s", deep);
	assert_string_equal(gw_store_url(s), url);
	put_str(s, "k", "v");
	gw_store_free(s);
	/* Opening an existing store again works and sees its keys. */
	assert_int_equal(gw_store_open(&s, url), 0);
	assert_get(s, "k", "v");
	gw_store_free(s);
	gw_store_free(NULL);
}

static void test_url_errors(void **state)
{
	tu_fixture *f = *state;
	char url[300], file[300];
	gw_store *s = (gw_store *)1;
	tu_assert_err(gw_store_open(&s, "file://relative/path"), GW_EINVALID, "relative/path");
	tu_assert_msg_has("absolute");
	assert_null(s);
	tu_assert_err(gw_store_open(&s, "file://"), GW_EINVALID, "absolute");
	tu_assert_err(gw_store_open(&s, "ftp://host/x"), GW_EINVALID, "ftp");
	tu_assert_msg_has("unknown scheme");
	tu_assert_err(gw_store_open(&s, "/tmp/no-scheme"), GW_EINVALID, "/tmp/no-scheme");
	tu_assert_msg_has("no scheme");
	tu_assert_err(gw_store_open(&s, "file:/tmp/x"), GW_EINVALID, "no scheme");
	tu_assert_err(gw_store_open(&s, ""), GW_EINVALID, "no scheme");
	tu_assert_err(gw_store_open(&s, NULL), GW_EINVALID, "no scheme");
	tu_assert_err(gw_store_open(&s, "FILE:///tmp/x"), GW_EINVALID, "unknown scheme");
	snprintf(url, sizeof(url), "file://%s/p?mode=1", f->dir);
	tu_assert_err(gw_store_open(&s, url), GW_EINVALID, "no parameters");
	tu_assert_msg_has("mode=1");
	assert_null(s);

	/* The root exists as a file. */
	snprintf(file, sizeof(file), "%s/plainfile", f->dir);
	tu_write_file(file, "x", 1);
	snprintf(url, sizeof(url), "file://%s", file);
	tu_assert_err(gw_store_open(&s, url), GW_EIO, file);
	tu_assert_msg_has("not a directory");
	/* ... or a component of it does. */
	snprintf(url, sizeof(url), "file://%s/below", file);
	assert_true(gw_store_open(&s, url) < 0);
	tu_assert_msg_has(file);
	assert_null(s);
}

static void test_put_get_roundtrip(void **state)
{
	tu_fixture *f = *state;
	unsigned char bin[1000];
	char *buf;
	size_t len, i;
	gw_store_stat st;
	for (i = 0; i < sizeof(bin); i++)
		bin[i] = (unsigned char)(i * 7);
	put_str(f->store, "a", "hello");
	put_str(f->store, "dir/sub/key.txt", "nested");
	assert_int_equal(gw_store_put(f->store, "bin", bin, sizeof(bin)), 0);
	assert_int_equal(gw_store_put(f->store, "empty", "", 0), 0);
	assert_get(f->store, "a", "hello");
	assert_get(f->store, "dir/sub/key.txt", "nested");
	assert_get(f->store, "empty", "");
	assert_int_equal(gw_store_get(f->store, "bin", sizeof(bin), &buf, &len), 0);
	assert_int_equal(len, sizeof(bin));
	assert_memory_equal(buf, bin, sizeof(bin));
	free(buf);
	assert_int_equal(gw_store_stat_key(f->store, "bin", &st), 0);
	assert_int_equal(st.size, sizeof(bin));
	assert_int_equal(st.versions, 1);
	assert_int_equal(st.retain_until, 0);
	assert_true(st.mtime > 1600000000);
	assert_int_equal(gw_store_stat_key(f->store, "empty", &st), 0);
	assert_int_equal(st.size, 0);

	/* gw_store_get enforces max_size, naming the key. */
	tu_assert_err(gw_store_get(f->store, "bin", 999, &buf, &len), GW_ECORRUPT, "bin");
	tu_assert_msg_has("999");
	assert_null(buf);
	assert_int_equal(len, 0);
	tu_assert_err(gw_store_get(f->store, "missing", 10, &buf, &len), GW_ENOTFOUND, "missing");
	assert_null(buf);

	/* A key larger than max_size is refused from its size, unread: a sparse terabyte costs nothing. */
	{
		char path[300];
		int fd;
		snprintf(path, sizeof(path), "%s/huge", f->root);
		assert_true((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0444)) >= 0);
		assert_int_equal(ftruncate(fd, (off_t)1 << 40), 0);
		close(fd);
		tu_assert_err(gw_store_get(f->store, "huge", 1 << 20, &buf, &len), GW_ECORRUPT, "huge");
		tu_assert_msg_has("1099511627776 bytes");
		assert_null(buf);
	}
}

/* gw_store_traffic counts what streams through writers (sink or direct) and readers, as it streams. */
static void test_traffic(void **state)
{
	tu_fixture *f = *state;
	gw_store_writer *w;
	gw_store_reader *r;
	uint64_t rd, wr;
	char buf[4];
	gw_store_traffic(f->store, &rd, &wr);
	assert_int_equal(rd, 0);
	assert_int_equal(wr, 0);
	assert_int_equal(gw_store_put(f->store, "t1", "hello", 5), 0);
	assert_int_equal(gw_store_write_open(&w, f->store, "t2", GW_STORE_SIZE_UNKNOWN), 0);
	assert_int_equal(gw_store_writer_write(w, "abc", 3), 0);
	assert_int_equal(gw_store_writer_sink(w)->write(gw_store_writer_sink(w), "defg", 4), 0);
	gw_store_traffic(f->store, &rd, &wr);
	assert_int_equal(wr, 12); /* before the commit: as it streams */
	assert_int_equal(gw_store_writer_commit(w), 0);
	gw_store_writer_free(w);
	assert_int_equal(gw_store_read_open(&r, f->store, "t2", 0, GW_STORE_TO_END), 0);
	assert_int_equal(gw_store_reader_read(r, buf, sizeof(buf)), 4);
	gw_store_traffic(f->store, &rd, &wr);
	assert_int_equal(rd, 4);
	assert_int_equal(gw_store_reader_read(r, buf, sizeof(buf)), 3);
	assert_int_equal(gw_store_reader_read(r, buf, sizeof(buf)), 0);
	gw_store_reader_free(r);
	assert_get(f->store, "t1", "hello");
	/* A failed write counts nothing. */
	assert_int_equal(gw_store_write_open(&w, f->store, "t3", GW_STORE_SIZE_UNKNOWN), 0);
	assert_int_equal(gw_store_writer_commit(w), 0);
	assert_true(gw_store_writer_write(w, "late", 4) < 0);
	gw_store_writer_free(w);
	gw_store_traffic(f->store, &rd, &wr);
	assert_int_equal(rd, 12);
	assert_int_equal(wr, 12);
}

static void check_streamed(gw_store *s, const char *key, const unsigned char *data, size_t total)
{
	char *buf;
	size_t len;
	gw_store_stat st;
	assert_int_equal(gw_store_get(s, key, total, &buf, &len), 0);
	assert_int_equal(len, total);
	assert_true(memcmp(buf, data, total) == 0);
	free(buf);
	assert_int_equal(gw_store_stat_key(s, key, &st), 0);
	assert_int_equal(st.size, total);
}

static void test_streaming_write_chunks(void **state)
{
	tu_fixture *f = *state;
	const size_t total = 3 * 1024 * 1024 + 12345;
	unsigned char *data = malloc(total);
	static const size_t sizes[] = {1, 7, 4096, 131071, 131072, 262143, 262144, 262145, 600000, 3, 100000};
	uint64_t seed = 7;
	gw_store_writer *w;
	size_t off, i;
	assert_non_null(data);
	for (off = 0; off < total; off++)
		data[off] = (unsigned char)tu_rand(&seed);

	/* Many tiny writes. */
	assert_int_equal(gw_store_write_open(&w, f->store, "stream/tiny", GW_STORE_SIZE_UNKNOWN), 0);
	for (off = 0; off < 700000; off += 13)
		assert_int_equal(gw_store_writer_write(w, data + off, off + 13 <= 700000 ? 13 : 700000 - off), 0);
	assert_int_equal(gw_store_writer_commit(w), 0);
	gw_store_writer_free(w);
	check_streamed(f->store, "stream/tiny", data, 700000);

	/* Mixed sizes around and above the 256 KiB buffer, through the sink interface. */
	assert_int_equal(gw_store_write_open(&w, f->store, "stream/mixed", total), 0);
	for (off = 0, i = 0; off < total; i++) {
		size_t n = sizes[i % (sizeof(sizes) / sizeof(sizes[0]))];
		if (n > total - off)
			n = total - off;
		assert_int_equal(gw_sink_write(gw_store_writer_sink(w), data + off, n), 0);
		off += n;
	}
	/* Zero-length writes are harmless. */
	assert_int_equal(gw_store_writer_write(w, data, 0), 0);
	assert_int_equal(gw_store_writer_commit(w), 0);
	gw_store_writer_free(w);
	check_streamed(f->store, "stream/mixed", data, total);

	/* One huge write. */
	assert_int_equal(gw_store_write_open(&w, f->store, "stream/one", total), 0);
	assert_int_equal(gw_store_writer_write(w, data, total), 0);
	assert_int_equal(gw_store_writer_commit(w), 0);
	gw_store_writer_free(w);
	check_streamed(f->store, "stream/one", data, total);

	/* Random sizes. */
	assert_int_equal(gw_store_write_open(&w, f->store, "stream/random", GW_STORE_SIZE_UNKNOWN), 0);
	for (off = 0; off < total;) {
		size_t n = (size_t)(tu_rand(&seed) % 400000);
		if (n > total - off)
			n = total - off;
		assert_int_equal(gw_store_writer_write(w, data + off, n), 0);
		off += n;
	}
	assert_int_equal(gw_store_writer_commit(w), 0);
	gw_store_writer_free(w);
	check_streamed(f->store, "stream/random", data, total);
	free(data);
}

static void test_create_only(void **state)
{
	tu_fixture *f = *state;
	gw_store_writer *w1, *w2;
	put_str(f->store, "once", "original");
	tu_assert_err(gw_store_put(f->store, "once", "replacement", 11), GW_EEXISTS, "once");
	tu_assert_msg_has("already exists");
	tu_assert_msg_has(f->url);
	assert_get(f->store, "once", "original");

	/* Two writers race for one key: the first commit wins. */
	assert_int_equal(gw_store_write_open(&w1, f->store, "race", 5), 0);
	assert_int_equal(gw_store_write_open(&w2, f->store, "race", 5), 0);
	assert_int_equal(gw_store_writer_write(w1, "first", 5), 0);
	assert_int_equal(gw_store_writer_write(w2, "other", 5), 0);
	assert_int_equal(gw_store_writer_commit(w1), 0);
	tu_assert_err(gw_store_writer_commit(w2), GW_EEXISTS, "race");
	gw_store_writer_free(w2);
	gw_store_writer_free(w1);
	assert_get(f->store, "race", "first");
	/* The loser left no temporary file behind. */
	assert_int_equal(count_files(f->root, 1), 0);
}

static void test_commit_twice_and_write_after_commit(void **state)
{
	tu_fixture *f = *state;
	gw_store_writer *w;
	assert_int_equal(gw_store_write_open(&w, f->store, "k2", 1), 0);
	assert_int_equal(gw_store_writer_write(w, "x", 1), 0);
	assert_int_equal(gw_store_writer_commit(w), 0);
	assert_true(gw_store_writer_write(w, "y", 1) < 0);
	tu_assert_msg_has("k2");
	assert_true(gw_store_writer_commit(w) < 0);
	tu_assert_msg_has("k2");
	gw_store_writer_free(w);
	assert_get(f->store, "k2", "x");
}

static void test_abort_leaves_nothing(void **state)
{
	tu_fixture *f = *state;
	gw_store_writer *w;
	gw_store_listing l = {0};
	gw_store_stat st;
	char big[300000];
	memset(big, 'q', sizeof(big));

	assert_int_equal(gw_store_write_open(&w, f->store, "pending/obj", GW_STORE_SIZE_UNKNOWN), 0);
	assert_int_equal(gw_store_writer_write(w, big, sizeof(big)), 0); /* some of it reaches the disk */
	/* While in flight: a hidden temporary exists but is not listed. */
	assert_int_equal(count_files(f->root, 1), 1);
	assert_int_equal(count_files(f->root, 0), 1);
	assert_int_equal(gw_store_list(f->store, "", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, 0);
	tu_assert_err(gw_store_stat_key(f->store, "pending/obj", &st), GW_ENOTFOUND, "pending/obj");
	gw_store_writer_free(w);
	/* After: nothing at all, hidden or not, not even the directory made for the key. */
	assert_int_equal(count_files(f->root, 0), 0);
	{
		char dir[600];
		struct stat sb;
		snprintf(dir, sizeof(dir), "%s/pending", f->root);
		assert_int_equal(stat(dir, &sb), -1);
		assert_int_equal(errno, ENOENT);
	}
	assert_int_equal(gw_store_list(f->store, "", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, 0);
	tu_assert_err(gw_store_stat_key(f->store, "pending/obj", &st), GW_ENOTFOUND, "pending/obj");

	/* Freed before any write, and free(NULL). */
	assert_int_equal(gw_store_write_open(&w, f->store, "pending/two", 0), 0);
	gw_store_writer_free(w);
	gw_store_writer_free(NULL);
	assert_int_equal(count_files(f->root, 0), 0);
	/* The key is still free to create; an abort beside it leaves its directory alone. */
	put_str(f->store, "pending/obj", "done");
	assert_get(f->store, "pending/obj", "done");
	assert_int_equal(gw_store_write_open(&w, f->store, "pending/three", 0), 0);
	gw_store_writer_free(w);
	assert_get(f->store, "pending/obj", "done");
	gw_store_listing_dispose(&l);
}

static void test_committed_is_read_only(void **state)
{
	tu_fixture *f = *state;
	gw_store_stat st;
	struct stat sb;
	char path[400];
	put_str(f->store, "ro/key", "data");
	assert_int_equal(gw_store_stat_key(f->store, "ro/key", &st), 0);
	assert_int_equal(st.writable, 0);
	assert_int_equal(st.size, 4);
	snprintf(path, sizeof(path), "%s/ro/key", f->root);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0222, 0);
	/* A file made writable behind the store's back is reported. */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(gw_store_stat_key(f->store, "ro/key", &st), 0);
	assert_int_equal(st.writable, 1);
}

static ssize_t read_all(gw_store_reader *r, char *buf, size_t cap, size_t chunk)
{
	size_t len = 0;
	for (;;) {
		ssize_t n = gw_store_reader_read(r, buf + len, cap - len < chunk ? cap - len : chunk);
		if (n < 0)
			return n;
		if (n == 0)
			return (ssize_t)len;
		len += (size_t)n;
	}
}

static void test_ranged_reads(void **state)
{
	tu_fixture *f = *state;
	const char *text = "0123456789abcdefghijklmnopqrstuvwxyz";
	gw_store_reader *r;
	char buf[100];
	ssize_t n;
	put_str(f->store, "range", text);

	assert_int_equal(gw_store_read_open(&r, f->store, "range", 10, 6), 0);
	n = read_all(r, buf, sizeof(buf), 4);
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "abcdef", 6);
	assert_int_equal(gw_store_reader_read(r, buf, sizeof(buf)), 0);
	gw_store_reader_free(r);

	assert_int_equal(gw_store_read_open(&r, f->store, "range", 30, GW_STORE_TO_END), 0);
	n = read_all(r, buf, sizeof(buf), 1);
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "uvwxyz", 6);
	gw_store_reader_free(r);

	/* A length past the end stops at the end. */
	assert_int_equal(gw_store_read_open(&r, f->store, "range", 32, 1000), 0);
	n = read_all(r, buf, sizeof(buf), 100);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "wxyz", 4);
	gw_store_reader_free(r);

	/* Offset exactly at the end: an empty read. */
	assert_int_equal(gw_store_read_open(&r, f->store, "range", 36, GW_STORE_TO_END), 0);
	assert_int_equal(gw_store_reader_read(r, buf, sizeof(buf)), 0);
	gw_store_reader_free(r);

	/* Length 0. */
	assert_int_equal(gw_store_read_open(&r, f->store, "range", 5, 0), 0);
	assert_int_equal(gw_store_reader_read(r, buf, sizeof(buf)), 0);
	gw_store_reader_free(r);
	gw_store_reader_free(NULL);

	/* Past the end: refused, naming the key and the offset. */
	r = (gw_store_reader *)1;
	tu_assert_err(gw_store_read_open(&r, f->store, "range", 37, 1), GW_EINVALID, "range");
	tu_assert_msg_has("37");
	assert_null(r);
	tu_assert_err(gw_store_read_open(&r, f->store, "nope", 0, 1), GW_ENOTFOUND, "nope");
	tu_assert_err(gw_store_read_open(&r, f->store, "range/below", 0, 1), GW_ENOTFOUND, "range/below");
	tu_assert_err(gw_store_read_open(&r, f->store, "../range", 0, 1), GW_EINVALID, "../range");

	/* gw_store_read_range: exactly the bytes asked for, or an error naming the key. */
	memset(buf, 0, sizeof(buf));
	assert_int_equal(gw_store_read_range(f->store, "range", 10, 6, buf), 0);
	assert_memory_equal(buf, "abcdef", 6);
	assert_int_equal(gw_store_read_range(f->store, "range", 0, 36, buf), 0);
	assert_memory_equal(buf, text, 36);
	tu_assert_err(gw_store_read_range(f->store, "range", 30, 10, buf), GW_ECORRUPT, "range");
	tu_assert_msg_has("truncated: 6 of the 10 bytes at 30");
	tu_assert_err(gw_store_read_range(f->store, "nope", 0, 1, buf), GW_ENOTFOUND, "nope");
}

static void test_list_order_and_prefixes(void **state)
{
	tu_fixture *f = *state;
	static const char *keys[] = {
		"a/b",     "a.b",   "a-b",   "a0",     "a/b2",   "a/bb/c", "a/c/d",    "a/c/e/f", "a/c-d",
		"a/c.d",   "ab/x",  "b",     "B",      "a_b",    "a+b",    "a=b",      "a%2Fb",   "z/y/x/w",
		"a/b-",    "a/b.",  "a/b_",  "abc",    "aa/b",   "a/A",    "x/1",      "x-y",     "x.y",
		"x0",      "m/n/o", "m/n.o", "m/n-o",  "m/no",   "m/n0",   "m/n/o2/p",
	};
	static const char *prefixes[] = {"",     "a",   "a/",   "a/b", "a/b/", "a.",  "a/c",   "a/c/", "a/c/e",
					 "a/bb", "ab",  "ab/",  "x",   "x/",   "m/n", "m/n/",  "m/n/o", "q",
					 "zz/",  "a/c/d", "a/c/e/f/", "B", "z/y/x/w", "a/bb/c/"};
	const size_t nkeys = sizeof(keys) / sizeof(keys[0]);
	char *sorted[64];
	gw_store_listing l = {0};
	size_t i, j, k;

	for (i = 0; i < nkeys; i++) {
		char val[64];
		snprintf(val, sizeof(val), "%zu:%s", i, keys[i]);
		put_str(f->store, keys[i], val);
		sorted[i] = (char *)keys[i];
	}
	qsort(sorted, nkeys, sizeof(char *), str_cmp);

	for (k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++) {
		const char *p = prefixes[k];
		int rc = gw_store_list(f->store, p, gw_store_listing_add, &l);
		assert_int_equal(rc, 0);
		for (i = 0, j = 0; i < nkeys; i++) {
			if (strncmp(sorted[i], p, strlen(p)) != 0)
				continue;
			if (j >= l.count || strcmp(l.keys[j], sorted[i]) != 0) {
				print_error("prefix '%s': entry %zu is '%s', expected '%s'\n", p, j,
					    j < l.count ? l.keys[j] : "(end)", sorted[i]);
				fail();
			}
			j++;
		}
		if (j != l.count) {
			print_error("prefix '%s': %zu extra entries, first '%s'\n", p, l.count - j, l.keys[j]);
			fail();
		}
		gw_store_listing_dispose(&l);
	}
	/* Starting after a key: every (prefix, start) pair against the sorted truth. */
	{
		static const char *starts[] = {"a/b", "a/b~", "a/bb/", "a/c", "a/c/e", "a/c/e/f", "a", "m/n/o",
					       "m/n/o2/p", "z", "0", "x/", "x/1", "m/n/", "a/bz", "~"};
		size_t s;
		for (k = 0; k < sizeof(prefixes) / sizeof(prefixes[0]); k++)
			for (s = 0; s < sizeof(starts) / sizeof(starts[0]); s++) {
				const char *p = prefixes[k], *after = starts[s];
				assert_int_equal(gw_store_list_after(f->store, p, after, gw_store_listing_add, &l), 0);
				for (i = 0, j = 0; i < nkeys; i++) {
					if (strncmp(sorted[i], p, strlen(p)) != 0 || strcmp(sorted[i], after) <= 0)
						continue;
					if (j >= l.count || strcmp(l.keys[j], sorted[i]) != 0) {
						print_error("prefix '%s' after '%s': entry %zu is '%s', expected '%s'\n", p,
							    after, j, j < l.count ? l.keys[j] : "(end)", sorted[i]);
						fail();
					}
					j++;
				}
				if (j != l.count) {
					print_error("prefix '%s' after '%s': %zu extra entries\n", p, after, l.count - j);
					fail();
				}
				gw_store_listing_dispose(&l);
			}
	}
	/* NULL prefix lists everything; sizes are reported. */
	assert_int_equal(gw_store_list(f->store, NULL, gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, nkeys);
	for (i = 0; i < l.count; i++) {
		gw_store_stat st;
		assert_int_equal(gw_store_stat_key(f->store, l.keys[i], &st), 0);
		assert_int_equal(l.sizes[i], st.size);
	}
	gw_store_listing_dispose(&l);

	/* The callback stops the listing with its value. */
	assert_int_equal(gw_store_list(f->store, "", collect_three, &l), 7);
	assert_int_equal(l.count, 3);
	gw_store_listing_dispose(&l);
}

static void test_list_skips_hidden_and_foreign(void **state)
{
	tu_fixture *f = *state;
	char path[400];
	gw_store_listing l = {0};
	put_str(f->store, "d/visible", "1");
	/* Hidden files and directories (driver temporaries) are never listed. */
	snprintf(path, sizeof(path), "%s/d/.tmp.visible.1.2.3", f->root);
	tu_write_file(path, "junk", 4);
	snprintf(path, sizeof(path), "%s/.hiddendir", f->root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/.hiddendir/file", f->root);
	tu_write_file(path, "junk", 4);
	/* Symlinks are not keys. */
	snprintf(path, sizeof(path), "%s/d/link", f->root);
	assert_int_equal(symlink("visible", path), 0);
	/* Empty directories yield nothing. */
	snprintf(path, sizeof(path), "%s/emptydir", f->root);
	assert_int_equal(mkdir(path, 0755), 0);
	assert_int_equal(gw_store_list(f->store, "", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, 1);
	assert_string_equal(l.keys[0], "d/visible");
	gw_store_listing_dispose(&l);
	/* A prefix naming a file as a directory, or a missing directory: nothing. */
	assert_int_equal(gw_store_list(f->store, "d/visible/", gw_store_listing_add, &l), 0);
	assert_int_equal(gw_store_list(f->store, "no/such/dir/", gw_store_listing_add, &l), 0);
	assert_int_equal(l.count, 0);
}

/*
 * A prefix that no valid key can have must not make the driver list outside
 * its root (gw_store_list does not validate the prefix).
 */
static void test_list_prefix_stays_inside_root(void **state)
{
	tu_fixture *f = *state;
	char outside[300];
	gw_store_listing l = {0};
	size_t i;
	int rc;
	put_str(f->store, "inside", "1");
	snprintf(outside, sizeof(outside), "%s/outside-secret", f->dir);
	tu_write_file(outside, "s", 1);
	rc = gw_store_list(f->store, "../", gw_store_listing_add, &l);
	for (i = 0; i < l.count; i++)
		print_error("prefix '../' listed '%s' (outside the store root)\n", l.keys[i]);
	assert_true(rc == 0 || rc == GW_EINVALID);
	assert_int_equal(l.count, 0);
	gw_store_listing_dispose(&l);
	rc = gw_store_list(f->store, "/", gw_store_listing_add, &l);
	assert_true(rc == 0 || rc == GW_EINVALID);
	for (i = 0; i < l.count; i++)
		print_error("prefix '/' listed '%s'\n", l.keys[i]);
	assert_int_equal(l.count, 0);
	gw_store_listing_dispose(&l);
}

static void test_stat_and_remove(void **state)
{
	tu_fixture *f = *state;
	gw_store_stat st;
	char *buf;
	size_t len;
	put_str(f->store, "rm/me", "bye");
	put_str(f->store, "rm/keep", "stay");
	tu_assert_err(gw_store_stat_key(f->store, "rm/missing", &st), GW_ENOTFOUND, "rm/missing");
	tu_assert_msg_has(f->url);
	/* A directory is not a key. */
	tu_assert_err(gw_store_stat_key(f->store, "rm", &st), GW_ENOTFOUND, "rm");
	tu_assert_err(gw_store_stat_key(f->store, "rm/me/x", &st), GW_ENOTFOUND, "rm/me/x");
	assert_true(gw_store_get(f->store, "rm", 100, &buf, &len) < 0);
	tu_assert_msg_has("rm");

	assert_int_equal(gw_store_remove(f->store, "rm/me"), 0);
	tu_assert_err(gw_store_stat_key(f->store, "rm/me", &st), GW_ENOTFOUND, "rm/me");
	tu_assert_err(gw_store_get(f->store, "rm/me", 100, &buf, &len), GW_ENOTFOUND, "rm/me");
	tu_assert_err(gw_store_remove(f->store, "rm/me"), GW_ENOTFOUND, "rm/me");
	tu_assert_err(gw_store_remove(f->store, "../rm"), GW_EINVALID, "../rm");
	assert_get(f->store, "rm/keep", "stay");
	/* A removed key may be created again (retention then a new backup). */
	put_str(f->store, "rm/me", "again");
	assert_get(f->store, "rm/me", "again");
}

static void test_write_under_a_file(void **state)
{
	tu_fixture *f = *state;
	gw_store_writer *w = (gw_store_writer *)1;
	put_str(f->store, "leaf", "x");
	assert_true(gw_store_write_open(&w, f->store, "leaf/child", 1) < 0);
	tu_assert_msg_has("leaf/child");
	assert_null(w);
}

/* ---- leftovers and strays ---- */

typedef struct {
	char *key[16], *name[16], *type[16];
	int kind[16], live[16], removable[16];
	uint64_t size[16];
	size_t n;
} strays;

static int collect_stray(const gw_store_stray *s, void *payload)
{
	strays *c = payload;
	assert_true(c->n < 16);
	c->key[c->n] = strdup(s->key);
	c->name[c->n] = strdup(s->name);
	c->type[c->n] = strdup(s->type);
	c->kind[c->n] = s->kind;
	c->live[c->n] = s->live;
	c->removable[c->n] = s->removable;
	c->size[c->n] = s->size;
	c->n++;
	return 0;
}

static void strays_free(strays *c)
{
	size_t i;
	for (i = 0; i < c->n; i++) {
		free(c->key[i]);
		free(c->name[i]);
		free(c->type[i]);
	}
	memset(c, 0, sizeof(*c));
}

/* The stray named name (its path under the root); fails when absent. */
static size_t stray_at(const strays *c, const char *name)
{
	size_t i;
	for (i = 0; i < c->n; i++)
		if (!strcmp(c->name[i], name))
			return i;
	print_error("no stray named %s\n", name);
	fail();
	return 0;
}

static int exists(const tu_fixture *f, const char *rel)
{
	char path[600];
	struct stat sb;
	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	return lstat(path, &sb) == 0;
}

static void write_aged(const tu_fixture *f, const char *rel, const char *text, int64_t age)
{
	char path[600];
	struct timespec t[2];
	snprintf(path, sizeof(path), "%s/%s", f->root, rel);
	tu_write_file(path, text, strlen(text));
	t[0].tv_sec = t[1].tv_sec = (time_t)(time(NULL) - age);
	t[0].tv_nsec = t[1].tv_nsec = 0;
	assert_int_equal(utimensat(AT_FDCWD, path, t, 0), 0);
}

/*
 * A writer's temporary name carries its owner; the first commit of a process
 * in a directory removes dead writers' temporary files there (and only there,
 * and only once), and leaves live or possibly live writers' alone.
 */
static void test_dead_writers_temporaries_cleared(void **state)
{
	tu_fixture *f = *state;
	char host[80], boot[40], dead[600], rebooted[600], other[600], other_old[600], mine[600], dead_elsewhere[600];
	unsigned long long start;
	gw_store_writer *w;
	strays c = {0};
	long me, gone;
	pid_t pid;
	DIR *d;
	struct dirent *de;
	int seen = 0;

	assert_int_equal(sscanf(gw_owner_tag(), "%79[^.].%39[^.].%ld.%llu", host, boot, &me, &start), 4);
	/* A writer in flight: its temporary file names this process. */
	assert_int_equal(gw_store_write_open(&w, f->store, "r/00000000000000000001.seg", 3), 0);
	assert_int_equal(gw_store_writer_write(w, "abc", 3), 0);
	snprintf(dead, sizeof(dead), "%s/r", f->root);
	assert_non_null(d = opendir(dead));
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, ".tmp.00000000000000000001.seg.", 30)) {
			assert_non_null(strstr(de->d_name, gw_owner_tag()));
			seen++;
		}
	closedir(d);
	assert_int_equal(seen, 1);

	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(0);
	assert_int_equal(waitpid(pid, NULL, 0), pid);
	gone = (long)pid;
	boot[0] = boot[0] == 'a' ? 'b' : 'a';
	snprintf(rebooted, sizeof(rebooted), "r/.tmp.b.%s.%s.%ld.%llu.1", host, boot, me, start);
	boot[0] = boot[0] == 'a' ? 'b' : 'a';
	snprintf(dead, sizeof(dead), "r/.tmp.a.%s.%s.%ld.%llu.1", host, boot, gone, start);
	snprintf(other, sizeof(other), "r/.tmp.c.elsewhere.%s.%ld.%llu.1", boot, me, start);
	snprintf(other_old, sizeof(other_old), "r/.tmp.d.elsewhere.%s.%ld.%llu.2", boot, me, start);
	snprintf(mine, sizeof(mine), "r/.tmp.e.%s.9", gw_owner_tag());
	snprintf(dead_elsewhere, sizeof(dead_elsewhere), "s/.tmp.a.%s.%s.%ld.%llu.1", host, boot, gone, start);
	write_aged(f, dead, "dead", 0);
	write_aged(f, rebooted, "rebooted", 0);
	write_aged(f, other, "other", 0);
	write_aged(f, other_old, "other, old", GW_OWNER_STALE_SECONDS + 60);
	write_aged(f, mine, "mine", GW_OWNER_STALE_SECONDS + 60);
	write_aged(f, "r/.tmp.old.format.1.2.3", "old format", 0);
	write_aged(f, "r/.tmp.old.format.4.5.6", "old format, old", GW_OWNER_STALE_SECONDS + 60);
	put_str(f->store, "s/keep", "k");
	write_aged(f, dead_elsewhere, "dead elsewhere", 0);

	/* Before: every temporary file is a stray, with its owner's verdict. */
	assert_int_equal(gw_store_strays(f->store, "r/", collect_stray, &c), 0);
	assert_int_equal(c.n, 8);
	assert_string_equal(c.key[stray_at(&c, dead)], "r/a");
	assert_int_equal(c.kind[stray_at(&c, dead)], GW_STORE_STRAY_LEFTOVER);
	assert_string_equal(c.type[stray_at(&c, dead)], "temporary file");
	assert_int_equal(c.size[stray_at(&c, dead)], 4);
	assert_true(c.removable[stray_at(&c, dead)] && !c.live[stray_at(&c, dead)]);
	assert_true(c.removable[stray_at(&c, rebooted)]);
	assert_true(!c.removable[stray_at(&c, other)] && !c.live[stray_at(&c, other)]);
	assert_true(c.removable[stray_at(&c, other_old)]);
	assert_true(!c.removable[stray_at(&c, mine)] && c.live[stray_at(&c, mine)]);
	assert_false(c.removable[stray_at(&c, "r/.tmp.old.format.1.2.3")]);
	assert_true(c.removable[stray_at(&c, "r/.tmp.old.format.4.5.6")]);
	strays_free(&c);

	/* The first commit in r/ clears the dead ones there; s/ is not touched. */
	assert_int_equal(gw_store_writer_commit(w), 0);
	gw_store_writer_free(w);
	assert_false(exists(f, dead));
	assert_false(exists(f, rebooted));
	assert_false(exists(f, other_old));
	assert_false(exists(f, "r/.tmp.old.format.4.5.6"));
	assert_true(exists(f, other));
	assert_true(exists(f, mine));
	assert_true(exists(f, "r/.tmp.old.format.1.2.3"));
	assert_true(exists(f, dead_elsewhere));
	assert_get(f->store, "r/00000000000000000001.seg", "abc");

	/* Once per process and directory: a later commit there does not list it again. */
	write_aged(f, dead, "dead again", 0);
	put_str(f->store, "r/00000000000000000002.seg", "x");
	assert_true(exists(f, dead));
	/* Another store object (another process, as far as the store knows) clears it. */
	{
		gw_store *again;
		assert_int_equal(gw_store_open(&again, f->url), 0);
		put_str(again, "r/00000000000000000003.seg", "y");
		gw_store_free(again);
	}
	assert_false(exists(f, dead));
	assert_true(exists(f, other));
	/* Listing never showed any of them. */
	{
		gw_store_listing l = {0};
		assert_int_equal(gw_store_list(f->store, "", gw_store_listing_add, &l), 0);
		assert_int_equal(l.count, 4);
		gw_store_listing_dispose(&l);
	}
}

/* Names that are not regular files are strays, never keys; reading one neither follows nor blocks. */
static void test_strays_not_files(void **state)
{
	tu_fixture *f = *state;
	char path[600];
	strays c = {0};
	gw_store_stat st;
	char *buf;
	size_t len;
	size_t i;

	put_str(f->store, "repos/a.git/00000000000000000001.seg", "one");
	snprintf(path, sizeof(path), "%s/repos/a.git/00000000000000000002.seg", f->root);
	assert_int_equal(mkfifo(path, 0644), 0);
	snprintf(path, sizeof(path), "%s/repos/a.git/00000000000000000003.seg", f->root);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	snprintf(path, sizeof(path), "%s/repos/a.git/00000000000000000004.seg", f->root);
	assert_int_equal(mkdir(path, 0755), 0);
	/* Hidden names that are no writer's are the drivers' own business. */
	snprintf(path, sizeof(path), "%s/repos/a.git/.other", f->root);
	assert_int_equal(mkfifo(path, 0644), 0);

	assert_int_equal(gw_store_strays(f->store, "repos/", collect_stray, &c), 0);
	assert_int_equal(c.n, 4);
	i = stray_at(&c, "repos/a.git");
	assert_int_equal(c.kind[i], GW_STORE_STRAY_DIRECTORY);
	i = stray_at(&c, "repos/a.git/00000000000000000002.seg");
	assert_int_equal(c.kind[i], GW_STORE_STRAY_SPECIAL);
	assert_string_equal(c.type[i], "FIFO");
	assert_string_equal(c.key[i], "repos/a.git/00000000000000000002.seg");
	i = stray_at(&c, "repos/a.git/00000000000000000003.seg");
	assert_string_equal(c.type[i], "symlink");
	i = stray_at(&c, "repos/a.git/00000000000000000004.seg");
	assert_int_equal(c.kind[i], GW_STORE_STRAY_DIRECTORY);
	assert_string_equal(c.type[i], "directory");
	strays_free(&c);
	/* From the top, the prefix's own directory is one too. */
	assert_int_equal(gw_store_strays(f->store, "", collect_stray, &c), 0);
	assert_int_equal(c.n, 5);
	stray_at(&c, "repos");
	strays_free(&c);
	/* A prefix limits them. */
	assert_int_equal(gw_store_strays(f->store, "repos/a.git/00000000000000000002", collect_stray, &c), 0);
	assert_int_equal(c.n, 1);
	strays_free(&c);
	tu_assert_err(gw_store_strays(f->store, "../", collect_stray, &c), GW_EINVALID, "../");

	/* Not keys: not listed, not stat'd, not read (a FIFO would block an open, a symlink leads out). */
	tu_assert_err(gw_store_stat_key(f->store, "repos/a.git/00000000000000000002.seg", &st), GW_ENOTFOUND, "00002.seg");
	tu_assert_err(gw_store_get(f->store, "repos/a.git/00000000000000000002.seg", 100, &buf, &len), GW_ENOTFOUND,
		      "00002.seg");
	tu_assert_err(gw_store_get(f->store, "repos/a.git/00000000000000000003.seg", 100, &buf, &len), GW_ENOTFOUND,
		      "00003.seg");
	tu_assert_err(gw_store_get(f->store, "repos/a.git/00000000000000000004.seg", 100, &buf, &len), GW_ENOTFOUND,
		      "00004.seg");
	/* Nor written over. */
	tu_assert_err(gw_store_put(f->store, "repos/a.git/00000000000000000002.seg", "x", 1), GW_EEXISTS, "00002.seg");
	tu_assert_err(gw_store_put(f->store, "repos/a.git/00000000000000000003.seg", "x", 1), GW_EEXISTS, "00003.seg");
}

static void test_key_check(void **state)
{
	tu_fixture *f = *state;
	static const char *good[] = {
		"a", "a/b", "A_Z-0.9", "a+b=c%2F", "repos/group%2Fp.git/00000000000000000001.full.bundle", "a.", "a..b",
		"a/b./c", "x/y/z/w/v", "9",
	};
	static const char *bad[] = {
		"/abs", "a//b", "../x", ".hidden", "a/./b", "a/../b", "a/", "/", ".", "..", "a/.b", "a b", "a\\b",
		"a:b", "a*b", "a?b", "a\tb", "a\nb", "\x01", "caf\xc3\xa9", "a~b", "a\"b", "a#b", "a&b", "a,b", "a;b",
		"a|b", "a@b", "a!b", "a$b", "a'b", "a(b", "a[b", "a{b", "a<b", "a^b", "a`b", "//", "a/b/",
	};
	char longkey[1100], msg_key[64];
	gw_store_writer *w;
	gw_store_stat st;
	size_t i;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (gw_store_key_check(good[i]) != 0)
			print_error("'%s' rejected: %s\n", good[i], gw_error_message());
		assert_int_equal(gw_store_key_check(good[i]), 0);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = gw_store_key_check(bad[i]);
		if (rc != GW_EINVALID)
			print_error("'%s' accepted\n", bad[i]);
		assert_int_equal(rc, GW_EINVALID);
		/* The message quotes the key (printable ones checked literally). */
		if (!strpbrk(bad[i], "\t\n\x01")) {
			snprintf(msg_key, sizeof(msg_key), "'%s'", bad[i]);
			tu_assert_msg_has(msg_key);
		}
	}
	tu_assert_err(gw_store_key_check(""), GW_EINVALID, "empty");
	tu_assert_err(gw_store_key_check(NULL), GW_EINVALID, "empty");
	memset(longkey, 'k', 1024);
	longkey[1024] = '\0';
	assert_int_equal(gw_store_key_check(longkey), 0);
	longkey[1024] = 'k';
	longkey[1025] = '\0';
	tu_assert_err(gw_store_key_check(longkey), GW_EINVALID, "too long");

	/* Every entry point validates. */
	tu_assert_err(gw_store_put(f->store, "../escape", "x", 1), GW_EINVALID, "../escape");
	tu_assert_err(gw_store_write_open(&w, f->store, "/abs", 1), GW_EINVALID, "/abs");
	tu_assert_err(gw_store_stat_key(f->store, "a//b", &st), GW_EINVALID, "a//b");
	assert_int_equal(count_files(f->dir, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_creates_root_and_url, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_url_errors, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_put_get_roundtrip, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_traffic, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_streaming_write_chunks, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_create_only, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_commit_twice_and_write_after_commit, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_abort_leaves_nothing, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_committed_is_read_only, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_ranged_reads, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_list_order_and_prefixes, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_list_skips_hidden_and_foreign, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_list_prefix_stays_inside_root, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_stat_and_remove, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_write_under_a_file, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_key_check, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_dead_writers_temporaries_cleared, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_strays_not_files, tu_store_setup, tu_teardown),
	};
	return tu_run_tests(tests);
}
