/*
 * Unit tests for src/pack: entry headers, the .idx v2 reader (idx.c) and the
 * pack splicer (splice.c), checked against real git.
 */
#include "testutil.h"

#include "gitwal/io.h"
#include "pack/pack.h"

#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <pthread.h>
#include <sys/stat.h>
#include <zlib.h>

/* ---- shared fixture: repositories built once with git ---- */

static char tmp[128];

static int group_setup(void **state)
{
	(void)state;
	tu_git_tmp(tmp, sizeof(tmp));
	/* 20 commits of slowly changing files: plenty of deltas (blobs and trees). */
	if (tu_sh("cd %s && git init -q repo && cd repo && "
		  "for i in $(seq 1 20); do "
		  "  seq 1 400 | sed \"s/^/line $i /;s/line $i 1$/first/\" > big.txt; "
		  "  seq 1 300 > same.txt; echo $i >> same.txt; "
		  "  mkdir -p d/$((i %% 4)); echo \"small $i\" > d/$((i %% 4))/f$((i %% 3)).txt; "
		  "  git add -A && git commit -q -m \"commit $i\" || exit 1; "
		  "done",
		  tmp) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	tu_rmrf(tmp);
	return 0;
}

/* ---- helpers ---- */

typedef struct {
	gw_sink sink;
	FILE *f;
	uint64_t written;
	int fail;
} file_sink;

static int file_sink_write(gw_sink *s, const void *buf, size_t len)
{
	file_sink *fs = (file_sink *)s;
	if (fs->fail)
		return gw_error_set(GW_EIO, "test sink: disk full");
	if (fwrite(buf, 1, len, fs->f) != len)
		return gw_error_set(GW_EIO, "test sink: fwrite failed");
	fs->written += len;
	return 0;
}

typedef struct {
	char *oids; /* n * 41 */
	uint64_t *offsets;
	uint32_t *crcs;
	size_t n;
} show_index;

/* Parse `git show-index` of an .idx. */
static void read_show_index(const char *idx_path, show_index *si)
{
	char *out = tu_sh_out("git show-index < '%s'", idx_path), *line, *save = NULL;
	memset(si, 0, sizeof(*si));
	assert_non_null(out);
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long off;
		char oid[41];
		unsigned crc;
		assert_int_equal(sscanf(line, "%llu %40s (%x)", &off, oid, &crc), 3);
		si->oids = realloc(si->oids, (si->n + 1) * 41);
		si->offsets = realloc(si->offsets, (si->n + 1) * sizeof(uint64_t));
		si->crcs = realloc(si->crcs, (si->n + 1) * sizeof(uint32_t));
		memcpy(si->oids + si->n * 41, oid, 41);
		si->offsets[si->n] = off;
		si->crcs[si->n] = crc;
		si->n++;
	}
	free(out);
}

static void show_index_free(show_index *si)
{
	free(si->oids);
	free(si->offsets);
	free(si->crcs);
}

static char *glob_one(const char *pattern)
{
	glob_t g;
	char *r;
	assert_int_equal(glob(pattern, 0, NULL, &g), 0);
	assert_int_equal(g.gl_pathc, 1);
	r = strdup(g.gl_pathv[0]);
	globfree(&g);
	return r;
}

/* Open pack + idx named by the .pack path. */
static void source_open(gw_pack_source *s, const char *pack_path)
{
	char idx_path[512];
	struct stat st;
	const char *base = strrchr(pack_path, '/');
	size_t n = strlen(pack_path);
	int rc;
	memset(s, 0, sizeof(*s));
	snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(n - 5), pack_path);
	s->name = strdup(base ? base + 1 : pack_path);
	s->pack_fd = open(pack_path, O_RDONLY);
	s->idx_fd = open(idx_path, O_RDONLY);
	assert_true(s->pack_fd >= 0);
	assert_true(s->idx_fd >= 0);
	assert_int_equal(fstat(s->pack_fd, &st), 0);
	s->pack_size = (uint64_t)st.st_size;
	rc = gw_idx_open(&s->idx, s->idx_fd, s->name, 20, 1);
	if (rc)
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);
}

static void source_close(gw_pack_source *s)
{
	close(s->pack_fd);
	close(s->idx_fd);
	free(s->name);
}

typedef struct {
	char **oids;
	size_t n;
} oid_set;

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void set_add_index(oid_set *s, const char *idx_path)
{
	show_index si;
	size_t i;
	read_show_index(idx_path, &si);
	for (i = 0; i < si.n; i++) {
		s->oids = realloc(s->oids, (s->n + 1) * sizeof(char *));
		s->oids[s->n++] = strdup(si.oids + i * 41);
	}
	show_index_free(&si);
}

/* Sort and drop duplicates; returns how many were dropped. */
static size_t set_unique(oid_set *s)
{
	size_t i, j = 0, dropped = 0;
	qsort(s->oids, s->n, sizeof(char *), cmp_str);
	for (i = 0; i < s->n; i++) {
		if (j && strcmp(s->oids[j - 1], s->oids[i]) == 0) {
			free(s->oids[i]);
			dropped++;
			continue;
		}
		s->oids[j++] = s->oids[i];
	}
	s->n = j;
	return dropped;
}

static void set_free(oid_set *s)
{
	size_t i;
	for (i = 0; i < s->n; i++)
		free(s->oids[i]);
	free(s->oids);
	memset(s, 0, sizeof(*s));
}

/* Run the splicer into dir/pack-out.{pack,idx}; returns its rc. */
static int splice_to(const char *dir, gw_pack_source *packs, size_t np, gw_loose_source *loose, size_t nl,
		     gw_splice_stats *stats)
{
	char p[512], i[512];
	file_sink ps = {{file_sink_write}, NULL, 0, 0}, is = {{file_sink_write}, NULL, 0, 0};
	int rc;
	tu_sh("mkdir -p '%s'", dir);
	snprintf(p, sizeof(p), "%s/pack-out.pack", dir);
	snprintf(i, sizeof(i), "%s/pack-out.idx", dir);
	ps.f = fopen(p, "wb");
	is.f = fopen(i, "wb");
	assert_non_null(ps.f);
	assert_non_null(is.f);
	rc = gw_pack_splice("test.git", packs, np, loose, nl, 20, &ps.sink, &is.sink, stats);
	fclose(ps.f);
	fclose(is.f);
	if (rc == 0)
		assert_int_equal(ps.written, stats->pack_bytes);
	return rc;
}

/* git agrees the output is a valid pack holding exactly `want` objects, with the index git would write. */
static void verify_output(const char *dir, const gw_splice_stats *stats, const oid_set *want)
{
	char idx[512];
	oid_set got = {0};
	size_t i;
	char hex[41];
	/* index-pack re-reads every object (inflating, resolving deltas, hashing); its index must be ours. */
	assert_int_equal(tu_sh("cd '%s' && git index-pack -o check.idx pack-out.pack > /dev/null && "
			       "cmp check.idx pack-out.idx",
			       dir),
			 0);
	snprintf(idx, sizeof(idx), "%s/pack-out.idx", dir);
	set_add_index(&got, idx);
	assert_int_equal(got.n, stats->objects);
	assert_int_equal(got.n, want->n);
	for (i = 0; i < got.n; i++)
		assert_string_equal(got.oids[i], want->oids[i]);
	gw_hex_encode(hex, stats->pack_checksum, 20);
	{
		char *out = tu_sh_out("tail -c 20 '%s/pack-out.pack' | od -An -tx1 | tr -d ' \\n'", dir);
		assert_non_null(out);
		assert_string_equal(out, hex);
		free(out);
	}
	set_free(&got);
}

/* ---- entry headers ---- */

static const uint64_t header_sizes[] = {0,
					1,
					15,
					16,
					127,
					128,
					2047,
					2048,
					262143,
					262144,
					(1ULL << 32) - 1,
					1ULL << 32,
					(1ULL << 32) + 1,
					1ULL << 53,
					(1ULL << 60) - 1};
/* Sizes encode() produces and parse() must read back; beyond 2^60 too. */
static const uint64_t huge_sizes[] = {1ULL << 60, (1ULL << 62) + 5, 1ULL << 63, UINT64_MAX};

static void test_header_known_bytes(void **state)
{
	unsigned char b[16];
	int type;
	uint64_t size;
	(void)state;
	assert_int_equal(gw_pack_encode_header(b, GW_OBJ_BLOB, 5), 1);
	assert_int_equal(b[0], 0x35);
	assert_int_equal(gw_pack_encode_header(b, GW_OBJ_BLOB, 16), 2);
	assert_int_equal(b[0], 0xb0);
	assert_int_equal(b[1], 0x01);
	assert_int_equal(gw_pack_encode_header(b, GW_OBJ_COMMIT, 0), 1);
	assert_int_equal(b[0], 0x10);
	/* Type 7 (REF_DELTA), size 200 = 0b1100_1000: 0xf8 0x0c. */
	assert_int_equal(gw_pack_encode_header(b, GW_OBJ_REF_DELTA, 200), 2);
	assert_int_equal(b[0], 0xf8);
	assert_int_equal(b[1], 0x0c);
	assert_int_equal(gw_pack_parse_header(b, 2, &type, &size), 2);
	assert_int_equal(type, 7);
	assert_int_equal(size, 200);
	/* Git's OFS encoding: 127 -> 7f, 128 -> 80 00, 16511 -> ff 7f, 16512 -> 80 80 00. */
	assert_int_equal(gw_pack_encode_ofs(b, 127), 1);
	assert_int_equal(b[0], 0x7f);
	assert_int_equal(gw_pack_encode_ofs(b, 128), 2);
	assert_memory_equal(b, "\x80\x00", 2);
	assert_int_equal(gw_pack_encode_ofs(b, 16511), 2);
	assert_memory_equal(b, "\xff\x7f", 2);
	assert_int_equal(gw_pack_encode_ofs(b, 16512), 3);
	assert_memory_equal(b, "\x80\x80\x00", 3);
}

static void header_roundtrip(int type, uint64_t size)
{
	unsigned char b[32];
	size_t n = gw_pack_encode_header(b, type, size), i;
	int t = -1;
	uint64_t s = 0;
	size_t got;
	assert_true(n >= 1 && n <= 10);
	for (i = 0; i + 1 < n; i++)
		assert_true(b[i] & 0x80);
	assert_false(b[n - 1] & 0x80);
	got = gw_pack_parse_header(b, n, &t, &s);
	if (got != n || s != size)
		print_error("type %d size %llu: encoded in %zu bytes, parse returned %zu (size %llu)\n", type,
			    (unsigned long long)size, n, got, (unsigned long long)s);
	assert_int_equal(got, n);
	assert_int_equal(t, type);
	assert_int_equal(s, size);
	/* Extra bytes after it are not consumed. */
	b[n] = 0xff;
	assert_int_equal(gw_pack_parse_header(b, n + 1, &t, &s), n);
	/* Truncated anywhere: 0. */
	for (i = 0; i < n; i++)
		assert_int_equal(gw_pack_parse_header(b, i, &t, &s), 0);
}

static void test_header_roundtrip(void **state)
{
	static const int types[] = {1, 2, 3, 4, 6, 7};
	uint64_t seed = 99;
	size_t i, t;
	(void)state;
	for (t = 0; t < 6; t++) {
		for (i = 0; i < sizeof(header_sizes) / sizeof(header_sizes[0]); i++)
			header_roundtrip(types[t], header_sizes[i]);
		for (i = 0; i < 2000; i++)
			header_roundtrip(types[t], tu_rand(&seed) >> (4 + tu_rand(&seed) % 60));
	}
}

static void test_header_roundtrip_huge(void **state)
{
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(huge_sizes) / sizeof(huge_sizes[0]); i++)
		header_roundtrip(GW_OBJ_BLOB, huge_sizes[i]);
}

static void test_header_rejects_overlong(void **state)
{
	unsigned char b[32];
	const size_t lens[] = {sizeof(b), 0};
	size_t i;
	int t;
	uint64_t s;
	(void)state;
	/* 20 continuation bytes: more than 64 bits; must be refused, never read past len. */
	memset(b, 0xff, sizeof(b));
	for (i = 0; i < 2; i++) {
		assert_int_equal(gw_pack_parse_header(b, lens[i], &t, &s), 0);
		assert_int_equal(gw_pack_parse_ofs(b, lens[i], &s), 0);
	}
}

static void ofs_roundtrip(uint64_t d)
{
	unsigned char b[32];
	size_t n = gw_pack_encode_ofs(b, d), i, got;
	uint64_t back = 0;
	assert_true(n >= 1 && n <= 10);
	got = gw_pack_parse_ofs(b, n, &back);
	if (got != n || back != d)
		print_error("distance %llu: encoded in %zu bytes, parse returned %zu (%llu)\n", (unsigned long long)d, n,
			    got, (unsigned long long)back);
	assert_int_equal(got, n);
	assert_int_equal(back, d);
	b[n] = 0x80;
	assert_int_equal(gw_pack_parse_ofs(b, n + 1, &back), n);
	for (i = 0; i < n; i++)
		assert_int_equal(gw_pack_parse_ofs(b, i, &back), 0);
}

static void test_ofs_roundtrip(void **state)
{
	static const uint64_t d[] = {0,     1,          15,         16,         127,         128,
				     129,   16511,      16512,      2113663,    2113664,     1ULL << 31,
				     1ULL << 32, (1ULL << 32) + 7, 1ULL << 56, 1ULL << 62, 1ULL << 63};
	uint64_t seed = 5;
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(d) / sizeof(d[0]); i++)
		ofs_roundtrip(d[i]);
	for (i = 0; i < 5000; i++)
		ofs_roundtrip(tu_rand(&seed) >> (1 + tu_rand(&seed) % 63));
}

/* ---- .idx reading ---- */

static char *make_single_pack(void)
{
	char pattern[512];
	assert_int_equal(tu_sh("cd %s/repo && git repack -adq", tmp), 0);
	snprintf(pattern, sizeof(pattern), "%s/repo/.git/objects/pack/pack-*.pack", tmp);
	return glob_one(pattern);
}

static void test_idx_real(void **state)
{
	char *pack = make_single_pack(), idx_path[512];
	gw_idx idx;
	show_index si;
	uint32_t pos, crc;
	uint64_t off;
	size_t i;
	int fd;
	unsigned char oid[20], got[20];
	gw_idx_stream s_oid, s_crc, s_ofs;
	(void)state;
	snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(strlen(pack) - 5), pack);
	read_show_index(idx_path, &si);
	assert_true(si.n > 50);
	fd = open(idx_path, O_RDONLY);
	assert_int_equal(gw_idx_open(&idx, fd, "real.idx", 20, 1), 0);
	assert_int_equal(idx.count, si.n);
	assert_int_equal(idx.large_count, 0);
	for (i = 0; i < si.n; i++) {
		assert_int_equal(gw_hex_decode(oid, si.oids + i * 41, 20), 0);
		assert_int_equal(gw_idx_find(&idx, oid, &pos), 1);
		assert_int_equal(pos, i); /* show-index lists in oid order */
		assert_int_equal(gw_idx_oid_at(&idx, pos, got), 0);
		assert_memory_equal(got, oid, 20);
		assert_int_equal(gw_idx_offset_at(&idx, pos, &off), 0);
		assert_int_equal(off, si.offsets[i]);
		assert_int_equal(gw_idx_crc_at(&idx, pos, &crc), 0);
		assert_int_equal(crc, si.crcs[i]);
		/* A near miss is absent. */
		oid[19] ^= 1;
		if (i + 1 >= si.n || memcmp(si.oids + (i + 1) * 41, si.oids + i * 41, 40) != 0) {
			char hex[41];
			gw_hex_encode(hex, oid, 20);
			if (!strstr(si.oids, hex))
				assert_int_equal(gw_idx_find(&idx, oid, &pos), 0);
		}
	}
	memset(oid, 0, 20);
	assert_int_equal(gw_idx_find(&idx, oid, &pos), si.oids[0] == '0' && !strncmp(si.oids, "0000000000", 10));
	memset(oid, 0xff, 20);
	assert_int_equal(gw_idx_find(&idx, oid, &pos), 0);
	/* Out of range positions name the file. */
	tu_assert_err(gw_idx_oid_at(&idx, idx.count, got), GW_ECORRUPT, "real.idx");
	tu_assert_err(gw_idx_crc_at(&idx, idx.count, &crc), GW_ECORRUPT, "real.idx");
	tu_assert_err(gw_idx_offset_at(&idx, UINT32_MAX, &off), GW_ECORRUPT, "real.idx");

	/* Stream every table, with tiny and large buffers. */
	for (int pass = 0; pass < 2; pass++) {
		size_t bs = pass ? 1 << 16 : 1;
		int err;
		assert_int_equal(gw_idx_stream_init(&s_oid, &idx, GW_IDX_TABLE_OID, bs), 0);
		assert_int_equal(gw_idx_stream_init(&s_crc, &idx, GW_IDX_TABLE_CRC, bs), 0);
		assert_int_equal(gw_idx_stream_init(&s_ofs, &idx, GW_IDX_TABLE_OFFSET, bs), 0);
		for (i = 0; i < si.n; i++) {
			const unsigned char *e = gw_idx_stream_next(&s_oid, &err);
			char hex[41];
			assert_non_null(e);
			gw_hex_encode(hex, e, 20);
			assert_string_equal(hex, si.oids + i * 41);
			e = gw_idx_stream_next(&s_crc, &err);
			assert_non_null(e);
			assert_int_equal((uint32_t)e[0] << 24 | (uint32_t)e[1] << 16 | (uint32_t)e[2] << 8 | e[3], si.crcs[i]);
			e = gw_idx_stream_next(&s_ofs, &err);
			assert_non_null(e);
			assert_int_equal(gw_idx_decode_offset(&idx, e, &off), 0);
			assert_int_equal(off, si.offsets[i]);
		}
		assert_null(gw_idx_stream_next(&s_oid, &err));
		assert_int_equal(err, 0);
		assert_null(gw_idx_stream_next(&s_crc, &err));
		assert_null(gw_idx_stream_next(&s_ofs, &err));
		gw_idx_stream_dispose(&s_oid);
		gw_idx_stream_dispose(&s_crc);
		gw_idx_stream_dispose(&s_ofs);
	}
	close(fd);
	show_index_free(&si);
	free(pack);
}

/* Build an .idx v2 in memory: n sorted oids with the given offsets (large ones in the 64-bit table). */
static unsigned char *build_idx(size_t n, const unsigned char (*oids)[20], const uint64_t *offsets, size_t *len)
{
	size_t nlarge = 0, i, p = 0, cap = 8 + 1024 + n * 28 + n * 8 + 40;
	unsigned char *b = calloc(1, cap);
	uint32_t fan[256] = {0};
	assert_non_null(b);
	memcpy(b, "\377tOc\0\0\0\2", 8);
	for (i = 0; i < n; i++)
		for (int k = oids[i][0]; k < 256; k++)
			fan[k]++;
	p = 8;
	for (i = 0; i < 256; i++, p += 4) {
		b[p] = (unsigned char)(fan[i] >> 24);
		b[p + 1] = (unsigned char)(fan[i] >> 16);
		b[p + 2] = (unsigned char)(fan[i] >> 8);
		b[p + 3] = (unsigned char)fan[i];
	}
	for (i = 0; i < n; i++, p += 20)
		memcpy(b + p, oids[i], 20);
	for (i = 0; i < n; i++, p += 4)
		b[p + 3] = (unsigned char)i; /* crc = i */
	for (i = 0; i < n; i++, p += 4) {
		uint32_t v = offsets[i] < 0x80000000u ? (uint32_t)offsets[i] : 0x80000000u | (uint32_t)nlarge++;
		b[p] = (unsigned char)(v >> 24);
		b[p + 1] = (unsigned char)(v >> 16);
		b[p + 2] = (unsigned char)(v >> 8);
		b[p + 3] = (unsigned char)v;
	}
	for (i = 0; i < n; i++) {
		if (offsets[i] < 0x80000000u)
			continue;
		for (int k = 0; k < 8; k++)
			b[p + k] = (unsigned char)(offsets[i] >> (56 - 8 * k));
		p += 8;
	}
	memset(b + p, 0xab, 20); /* pack checksum */
	p += 20;
	gw_hash_buffer(GW_HASH_SHA1, b, p, b + p);
	p += 20;
	*len = p;
	return b;
}

static int write_tmp(const char *name, const void *buf, size_t len)
{
	char path[512];
	int fd;
	snprintf(path, sizeof(path), "%s/%s", tmp, name);
	tu_write_file(path, buf, len);
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	return fd;
}

static void test_idx_large_offsets(void **state)
{
	unsigned char oids[4][20];
	uint64_t offsets[4] = {12, 0x7fffffffu, 0x80000000u, 5000000000ULL}, off;
	unsigned char *b, entry[4];
	size_t len;
	gw_idx idx;
	uint32_t pos;
	int fd, i;
	(void)state;
	for (i = 0; i < 4; i++) {
		memset(oids[i], 0x11 * (i + 1), 20);
	}
	b = build_idx(4, (const unsigned char(*)[20])oids, offsets, &len);
	fd = write_tmp("large.idx", b, len);
	assert_int_equal(gw_idx_open(&idx, fd, "large.idx", 20, 1), 0);
	assert_int_equal(idx.count, 4);
	assert_int_equal(idx.large_count, 2);
	assert_memory_equal(idx.pack_checksum, "\xab\xab\xab\xab", 4);
	for (i = 0; i < 4; i++) {
		assert_int_equal(gw_idx_find(&idx, oids[i], &pos), 1);
		assert_int_equal(pos, i);
		assert_int_equal(gw_idx_offset_at(&idx, pos, &off), 0);
		assert_int_equal(off, offsets[i]);
	}
	/* A large-offset reference past the table. */
	memcpy(entry, "\x80\x00\x00\x02", 4);
	tu_assert_err(gw_idx_decode_offset(&idx, entry, &off), GW_ECORRUPT, "large.idx");
	tu_assert_msg_has("large offset 2");
	memcpy(entry, "\xff\xff\xff\xff", 4);
	assert_int_equal(gw_idx_decode_offset(&idx, entry, &off), GW_ECORRUPT);
	close(fd);
	free(b);

	/* An empty index is valid. */
	b = build_idx(0, NULL, NULL, &len);
	fd = write_tmp("empty.idx", b, len);
	assert_int_equal(gw_idx_open(&idx, fd, "empty.idx", 20, 1), 0);
	assert_int_equal(idx.count, 0);
	memset(oids[0], 0, 20);
	assert_int_equal(gw_idx_find(&idx, oids[0], &pos), 0);
	close(fd);
	free(b);
}

static void expect_idx_reject(const unsigned char *buf, size_t len, int verify, int code, const char *needle)
{
	gw_idx idx;
	int fd = write_tmp("damaged.idx", buf, len), rc;
	rc = gw_idx_open(&idx, fd, "damaged.idx", 20, verify);
	if (rc != code)
		print_error("rc %d (want %d): %s\n", rc, code, gw_error_message());
	assert_int_equal(rc, code);
	tu_assert_msg_has("damaged.idx");
	tu_assert_msg_has(needle);
	close(fd);
}

static void test_idx_damaged(void **state)
{
	char *pack = make_single_pack(), idx_path[512];
	unsigned char *orig, *b;
	size_t len;
	gw_idx idx;
	int fd;
	(void)state;
	snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(strlen(pack) - 5), pack);
	orig = tu_read_file(idx_path, &len);
	b = malloc(len + 64);
	assert_non_null(b);

#define RESET() memcpy(b, orig, len)
	RESET();
	b[0] = 'X';
	expect_idx_reject(b, len, 0, GW_ECORRUPT, "bad magic");
	RESET();
	b[7] = 3;
	expect_idx_reject(b, len, 0, GW_EVERSION, "version 3");
	RESET();
	b[7] = 1;
	expect_idx_reject(b, len, 0, GW_EVERSION, "version 1");
	/* fanout[0] above fanout[1]. */
	RESET();
	b[8] = 0x7f;
	expect_idx_reject(b, len, 0, GW_ECORRUPT, "not monotonic at entry 1");
	/* The last fanout entry (the count) claims more objects than the file holds. */
	RESET();
	b[8 + 4 * 255] = 0x01;
	expect_idx_reject(b, len, 0, GW_ECORRUPT, "objects need");
	/* Truncated. */
	RESET();
	expect_idx_reject(b, len - 10, 0, GW_ECORRUPT, "need");
	expect_idx_reject(b, len - 8, 0, GW_ECORRUPT, "need");
	expect_idx_reject(b, 1000, 0, GW_ECORRUPT, "too small");
	expect_idx_reject(b, 0, 0, GW_ECORRUPT, "too small");
	/* Extra bytes that are not a whole large-offset table. */
	RESET();
	memset(b + len, 0, 64);
	expect_idx_reject(b, len + 3, 0, GW_ECORRUPT, "large-offset table");
	/* Checksum: flipped in the trailer or the body, seen only when verifying. */
	RESET();
	b[len - 1] ^= 0x40;
	expect_idx_reject(b, len, 1, GW_ECORRUPT, "checksum mismatch");
	fd = write_tmp("unverified.idx", b, len);
	assert_int_equal(gw_idx_open(&idx, fd, "unverified.idx", 20, 0), 0);
	close(fd);
	RESET();
	b[8 + 1024 + 5] ^= 1;
	expect_idx_reject(b, len, 1, GW_ECORRUPT, "checksum mismatch");
	RESET();
	b[len - 30] ^= 1; /* the pack checksum copy */
	expect_idx_reject(b, len, 1, GW_ECORRUPT, "checksum mismatch");
#undef RESET
	/* Not a file one can read. */
	{
		gw_idx x;
		int dfd = open(tmp, O_RDONLY | O_DIRECTORY);
		assert_true(gw_idx_open(&x, dfd, "dir.idx", 20, 0) < 0);
		tu_assert_msg_has("dir.idx");
		close(dfd);
	}
	free(b);
	free(orig);
	free(pack);
}

/* ---- splicing ---- */

static void test_splice_single_pack(void **state)
{
	char *pack = make_single_pack(), out[512], idx_path[512];
	gw_pack_source src;
	gw_splice_stats st;
	oid_set want = {0};
	int rc;
	(void)state;
	source_open(&src, pack);
	snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(strlen(pack) - 5), pack);
	set_add_index(&want, idx_path);
	set_unique(&want);
	snprintf(out, sizeof(out), "%s/out-single", tmp);
	rc = splice_to(out, &src, 1, NULL, 0, &st);
	if (rc)
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);
	assert_int_equal(st.objects, want.n);
	assert_int_equal(st.duplicates, 0);
	assert_int_equal(st.loose, 0);
	verify_output(out, &st, &want);
	/* One pack: copied as it is. */
	assert_int_equal(tu_sh("cmp '%s' '%s/pack-out.pack' && cmp '%s' '%s/pack-out.idx'", pack, out, idx_path, out), 0);
	source_close(&src);
	set_free(&want);
	free(pack);
}

/* Packs made with pack-objects from ranges of history: they overlap. */
static char *make_pack(const char *dir, const char *name, const char *revs, const char *flags)
{
	char pattern[512];
	assert_int_equal(tu_sh("mkdir -p '%s' && cd %s/repo && git rev-list --objects %s | "
			       "git pack-objects -q %s '%s/%s' > /dev/null",
			       dir, tmp, revs, flags, dir, name),
			 0);
	snprintf(pattern, sizeof(pattern), "%s/%s-*.pack", dir, name);
	return glob_one(pattern);
}

static void splice_check(const char *label, char **packs, size_t np, int expect_dups)
{
	gw_pack_source src[8];
	gw_splice_stats st;
	oid_set want = {0};
	char out[512];
	size_t i, dropped;
	int rc;
	for (i = 0; i < np; i++) {
		char idx_path[512];
		source_open(&src[i], packs[i]);
		snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(strlen(packs[i]) - 5), packs[i]);
		set_add_index(&want, idx_path);
	}
	dropped = set_unique(&want);
	snprintf(out, sizeof(out), "%s/out-%s", tmp, label);
	rc = splice_to(out, src, np, NULL, 0, &st);
	if (rc)
		print_error("%s: %s\n", label, gw_error_message());
	assert_int_equal(rc, 0);
	fprintf(stderr, "  %s: %llu objects, %llu duplicates, %llu rewritten\n", label,
		(unsigned long long)st.objects, (unsigned long long)st.duplicates, (unsigned long long)st.rewritten);
	assert_int_equal(st.objects, want.n);
	assert_int_equal(st.duplicates, dropped);
	if (expect_dups)
		assert_true(st.duplicates > 0);
	verify_output(out, &st, &want);
	for (i = 0; i < np; i++)
		source_close(&src[i]);
	set_free(&want);
}

static void test_splice_overlapping_packs(void **state)
{
	char dir[256], *a, *b, *c, *d, *packs[4];
	(void)state;
	snprintf(dir, sizeof(dir), "%s/packs-overlap", tmp);
	a = make_pack(dir, "a", "HEAD~10", "--delta-base-offset");
	b = make_pack(dir, "b", "HEAD", "--delta-base-offset");
	c = make_pack(dir, "c", "HEAD~7..HEAD", ""); /* REF_DELTA */
	d = make_pack(dir, "d", "HEAD~15..HEAD~3", "--delta-base-offset --window=50 --depth=100");

	packs[0] = a, packs[1] = b;
	splice_check("ab", packs, 2, 1);
	packs[0] = b, packs[1] = a;
	splice_check("ba", packs, 2, 1);
	packs[0] = a, packs[1] = b, packs[2] = c;
	splice_check("abc", packs, 3, 1);
	packs[0] = c, packs[1] = d, packs[2] = b, packs[3] = a;
	splice_check("cdba", packs, 4, 1);
	/* Disjoint packs: nothing dropped. */
	packs[0] = make_pack(dir, "e", "HEAD~3..HEAD", "--delta-base-offset");
	packs[1] = make_pack(dir, "f", "HEAD~3", "--delta-base-offset");
	splice_check("ef", packs, 2, 0);
	free(packs[0]);
	free(packs[1]);
	/* The same pack twice: every object of the second copy dropped. */
	packs[0] = b, packs[1] = b;
	splice_check("bb", packs, 2, 1);
	free(a);
	free(b);
	free(c);
	free(d);
}

/* Loose objects: path and oid of every file under objects/??/. */
static size_t list_loose(const char *objdir, gw_loose_source **out)
{
	char *list = tu_sh_out("cd '%s' && find [0-9a-f][0-9a-f] -type f 2>/dev/null | LC_ALL=C sort", objdir), *line, *save = NULL;
	gw_loose_source *l = NULL;
	size_t n = 0;
	assert_non_null(list);
	for (line = strtok_r(list, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char hex[41], path[512];
		if (strlen(line) != 41)
			continue;
		memcpy(hex, line, 2);
		memcpy(hex + 2, line + 3, 38);
		hex[40] = '\0';
		l = realloc(l, (n + 1) * sizeof(*l));
		assert_int_equal(gw_hex_decode(l[n].oid, hex, 20), 0);
		snprintf(path, sizeof(path), "%s/%s", objdir, line);
		l[n].path = strdup(path);
		n++;
	}
	free(list);
	*out = l;
	return n;
}

static void loose_free(gw_loose_source *l, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		free(l[i].path);
	free(l);
}

static void test_splice_loose_and_pack(void **state)
{
	char objdir[512], saved[512], pattern[512], out[512], *pack, idx_path[512];
	gw_loose_source *loose;
	gw_pack_source src;
	gw_splice_stats st;
	oid_set want = {0};
	size_t nl, i, npacked, dropped;
	int rc;
	(void)state;
	/* A second repository: commits, a copy of their loose objects, repack, more commits, copy back. */
	assert_int_equal(tu_sh("cd %s && git init -q loose && cd loose && "
			       "for i in $(seq 1 8); do seq 1 200 > f.txt; echo $i >> f.txt; echo \"x$i\" > g$i.txt; "
			       "git add -A && git commit -q -m c$i || exit 1; done && "
			       "cp -r .git/objects ../saved-objects && git repack -adq && "
			       "for i in $(seq 9 12); do seq 1 200 > f.txt; echo $i >> f.txt; echo \"y$i\" > h$i.txt; "
			       "git add -A && git commit -q -m c$i || exit 1; done && "
			       "cd ../saved-objects && for f in [0-9a-f][0-9a-f]/*; do [ -e ../loose/.git/objects/$f ] || "
			       "{ mkdir -p ../loose/.git/objects/$(dirname $f) && cp $f ../loose/.git/objects/$f; }; done",
			       tmp),
			 0);
	snprintf(objdir, sizeof(objdir), "%s/loose/.git/objects", tmp);
	snprintf(saved, sizeof(saved), "%s/saved-objects", tmp);
	nl = list_loose(objdir, &loose);
	snprintf(pattern, sizeof(pattern), "%s/pack/pack-*.pack", objdir);
	pack = glob_one(pattern);
	source_open(&src, pack);
	snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(strlen(pack) - 5), pack);
	set_add_index(&want, idx_path);
	npacked = want.n;
	for (i = 0; i < nl; i++) {
		char hex[41];
		gw_hex_encode(hex, loose[i].oid, 20);
		want.oids = realloc(want.oids, (want.n + 1) * sizeof(char *));
		want.oids[want.n++] = strdup(hex);
	}
	dropped = set_unique(&want);
	assert_true(dropped > 0);
	assert_true(nl > dropped);
	snprintf(out, sizeof(out), "%s/out-loose", tmp);
	rc = splice_to(out, &src, 1, loose, nl, &st);
	if (rc)
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);
	fprintf(stderr, "  loose: %zu packed, %zu loose, %llu duplicates\n", npacked, nl, (unsigned long long)st.duplicates);
	assert_int_equal(st.objects, want.n);
	assert_int_equal(st.duplicates, dropped);
	assert_int_equal(st.loose, nl - dropped);
	verify_output(out, &st, &want);
	/* Loose objects alone. */
	set_free(&want);
	for (i = 0; i < nl; i++) {
		char hex[41];
		gw_hex_encode(hex, loose[i].oid, 20);
		want.oids = realloc(want.oids, (want.n + 1) * sizeof(char *));
		want.oids[want.n++] = strdup(hex);
	}
	set_unique(&want);
	snprintf(out, sizeof(out), "%s/out-loose-only", tmp);
	rc = splice_to(out, NULL, 0, loose, nl, &st);
	if (rc)
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);
	assert_int_equal(st.loose, nl);
	verify_output(out, &st, &want);

	/* Unsorted loose objects are refused. */
	if (nl >= 2) {
		gw_loose_source t = loose[0];
		loose[0] = loose[1];
		loose[1] = t;
		snprintf(out, sizeof(out), "%s/out-unsorted", tmp);
		tu_assert_err(splice_to(out, &src, 1, loose, nl, &st), GW_ECORRUPT, "not sorted");
		loose[1] = loose[0];
		loose[0] = t;
	}
	/* A vanished loose object: the caller should retry. */
	{
		/* One that is not also in the pack (a duplicate is never opened). */
		size_t k = nl;
		uint32_t pos;
		char *p, hex[41];
		for (i = 0; i < nl && k == nl; i++)
			if (gw_idx_find(&src.idx, loose[i].oid, &pos) == 0)
				k = i;
		assert_true(k < nl);
		p = loose[k].path;
		loose[k].path = (char *)"/nonexistent/object";
		gw_hex_encode(hex, loose[k].oid, 20);
		snprintf(out, sizeof(out), "%s/out-vanished", tmp);
		tu_assert_err(splice_to(out, &src, 1, loose, nl, &st), GW_ECHANGED, hex);
		tu_assert_msg_has("test.git");
		loose[k].path = p;
	}
	set_free(&want);
	source_close(&src);
	loose_free(loose, nl);
	free(pack);
}

/* Deflate "type size\0body" into path. */
static void write_loose(const char *path, const char *header_and_body, size_t len)
{
	uLongf n = compressBound(len);
	unsigned char *z = malloc(n);
	assert_int_equal(compress(z, &n, (const unsigned char *)header_and_body, len), Z_OK);
	tu_write_file(path, z, n);
	free(z);
}

static void expect_loose_reject(const char *content, size_t len, int raw, const char *needle)
{
	gw_loose_source l;
	gw_splice_stats st;
	char path[512], out[512], hex[41];
	unsigned char oid[20];
	/* The id of "blob 5\0hello". */
	assert_int_equal(gw_hash_buffer(GW_HASH_SHA1, "blob 5\0hello", 12, oid), 0);
	memcpy(l.oid, oid, 20);
	snprintf(path, sizeof(path), "%s/bad-loose", tmp);
	if (raw)
		tu_write_file(path, content, len);
	else
		write_loose(path, content, len);
	l.path = path;
	snprintf(out, sizeof(out), "%s/out-bad-loose", tmp);
	gw_hex_encode(hex, oid, 20);
	tu_assert_err(splice_to(out, NULL, 0, &l, 1, &st), GW_ECORRUPT, hex);
	tu_assert_msg_has(needle);
	tu_assert_msg_has("test.git");
}

static void test_splice_bad_loose(void **state)
{
	/* What the error names for each content (len bytes of it; raw: stored as is, else zlib-compressed first). */
	static const struct {
		const char *needle, *content;
		size_t len;
		int raw;
	} bad[] = {
		{"does not match its id", "blob 5\0world", 12, 0}, {"does not match its id", "blob 6\0hello!", 13, 0},
		{"longer than", "blob 4\0hello", 12, 0},           {"shorter than", "blob 9\0hello", 12, 0},
		{"unknown type", "blub 5\0hello", 12, 0},          {"bad size", "blob x\0hello", 12, 0},
		{"bad size", "blob -5\0hello", 13, 0},             {"bad header", "blob5\0hello", 11, 0},
		{"bad header", "blob 5 hello without a nul byte in the first forty-one bytes", 59, 0},
		{"bad header", "blob 5", 6, 0},                     {"bad zlib data", "this is not zlib at all", 23, 1},
		{"truncated", "", 0, 1},
	};
	gw_loose_source l;
	gw_splice_stats st;
	char path[512], out[512];
	size_t i;
	(void)state;
	/* The good one first, so the harness itself is known to work. */
	assert_int_equal(gw_hash_buffer(GW_HASH_SHA1, "blob 5\0hello", 12, l.oid), 0);
	snprintf(path, sizeof(path), "%s/good-loose", tmp);
	write_loose(path, "blob 5\0hello", 12);
	l.path = path;
	snprintf(out, sizeof(out), "%s/out-good-loose", tmp);
	assert_int_equal(splice_to(out, NULL, 0, &l, 1, &st), 0);
	assert_int_equal(st.objects, 1);
	assert_int_equal(tu_sh("git verify-pack '%s/pack-out.idx' > /dev/null", out), 0);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_loose_reject(bad[i].content, bad[i].len, bad[i].raw, bad[i].needle);
	{
		/* A valid stream cut short. */
		uLongf n = 100;
		unsigned char z[100];
		assert_int_equal(compress(z, &n, (const unsigned char *)"blob 5\0hello", 12), Z_OK);
		expect_loose_reject((const char *)z, n - 5, 1, "truncated");
	}
}

static void test_splice_corrupt_pack(void **state)
{
	char dir[256], *a, *b, idx_path[512], copy[512], out[512];
	show_index si;
	gw_pack_source src[2];
	gw_splice_stats st;
	size_t i, best = 0;
	uint64_t best_len = 0, pack_len;
	unsigned char *bytes;
	size_t blen;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/packs-corrupt", tmp);
	a = make_pack(dir, "a", "HEAD", "--delta-base-offset");
	b = make_pack(dir, "b", "HEAD~4", "--delta-base-offset");
	snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(strlen(a) - 5), a);
	read_show_index(idx_path, &si);
	bytes = tu_read_file(a, &blen);
	pack_len = blen;
	/* The largest object: flip a byte in its middle. */
	for (i = 0; i < si.n; i++) {
		uint64_t end = pack_len - 20, len;
		for (size_t j = 0; j < si.n; j++)
			if (si.offsets[j] > si.offsets[i] && si.offsets[j] < end)
				end = si.offsets[j];
		len = end - si.offsets[i];
		if (len > best_len)
			best_len = len, best = i;
	}
	assert_true(best_len > 20);
	bytes[si.offsets[best] + best_len / 2] ^= 0x5a;
	snprintf(copy, sizeof(copy), "%s/pack-corrupt.pack", dir);
	tu_write_file(copy, bytes, blen);
	assert_int_equal(tu_sh("cp '%s' '%s/pack-corrupt.idx'", idx_path, dir), 0);

	/* Joined with another pack: the object is named. */
	source_open(&src[0], copy);
	source_open(&src[1], b);
	snprintf(out, sizeof(out), "%s/out-corrupt", tmp);
	tu_assert_err(splice_to(out, src, 2, NULL, 0, &st), GW_ECORRUPT, si.oids + best * 41);
	tu_assert_msg_has("pack-corrupt.pack");
	tu_assert_msg_has("test.git");
	/* Alone (copied whole): the pack checksum catches it. */
	tu_assert_err(splice_to(out, src, 1, NULL, 0, &st), GW_ECORRUPT, "pack-corrupt.pack");
	source_close(&src[0]);
	source_close(&src[1]);

	/* A pack whose header count disagrees with its index. */
	{
		unsigned char *c2 = malloc(blen);
		memcpy(c2, bytes, blen);
		c2[si.offsets[best] + best_len / 2] ^= 0x5a;
		c2[11] ^= 1;
		tu_write_file(copy, c2, blen);
		source_open(&src[0], copy);
		tu_assert_err(splice_to(out, src, 1, NULL, 0, &st), GW_ECORRUPT, "pack-corrupt.pack");
		tu_assert_msg_has("its index lists");
		source_close(&src[0]);
		/* Not a pack at all. */
		memcpy(c2, "JUNK", 4);
		tu_write_file(copy, c2, blen);
		source_open(&src[0], copy);
		tu_assert_err(splice_to(out, src, 1, NULL, 0, &st), GW_ECORRUPT, "not a version 2 pack");
		source_close(&src[0]);
		free(c2);
	}
	/* A failing output sink stops the splice with its error. */
	{
		file_sink ps = {{file_sink_write}, NULL, 0, 1}, is = {{file_sink_write}, NULL, 0, 0};
		source_open(&src[0], a);
		source_open(&src[1], b);
		ps.f = is.f = fopen("/dev/null", "wb");
		tu_assert_err(gw_pack_splice("test.git", src, 2, NULL, 0, 20, &ps.sink, &is.sink, &st), GW_EIO, "disk full");
		tu_assert_err(gw_pack_splice("test.git", src, 1, NULL, 0, 20, &ps.sink, &is.sink, &st), GW_EIO, "disk full");
		ps.fail = 0;
		is.fail = 1;
		tu_assert_err(gw_pack_splice("test.git", src, 2, NULL, 0, 20, &ps.sink, &is.sink, &st), GW_EIO, "disk full");
		fclose(ps.f);
		source_close(&src[0]);
		source_close(&src[1]);
	}
	free(bytes);
	show_index_free(&si);
	free(a);
	free(b);
}


/* ---- the appender: self-contained packs joined verbatim ---- */

/* Recompute an index's own trailing SHA-1 after a test damaged it, as a forger would. */
static void idx_reseal(unsigned char *idx, size_t len)
{
	assert_int_equal(gw_hash_buffer(GW_HASH_SHA1, idx, len - 20, idx + len - 20), 0);
}

typedef struct {
	unsigned char *pack, *idx;
	size_t pack_len, idx_len, objects;
} mem_pack;

static void mem_pack_load(mem_pack *m, const char *pack_path)
{
	char idx_path[512];
	snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(strlen(pack_path) - 5), pack_path);
	m->pack = tu_read_file(pack_path, &m->pack_len);
	m->idx = tu_read_file(idx_path, &m->idx_len);
	assert_non_null(m->pack);
	assert_non_null(m->idx);
	m->objects = (size_t)m->pack[8] << 24 | (size_t)m->pack[9] << 16 | (size_t)m->pack[10] << 8 | m->pack[11];
}

static void mem_pack_free(mem_pack *m)
{
	free(m->pack);
	free(m->idx);
}

/* Three disjoint ranges of history (HEAD~a, HEAD~b..HEAD~a, HEAD..HEAD~b) with deltas inside each pack, loaded. */
static size_t make_disjoint_packs(const char *dir, const char *const names[3], int a, int b, char *packs[3],
				  mem_pack m[3])
{
	char revs[3][64];
	size_t i, total = 0;
	snprintf(revs[0], sizeof(revs[0]), "HEAD~%d", a);
	snprintf(revs[1], sizeof(revs[1]), "HEAD~%d ^HEAD~%d", b, a);
	snprintf(revs[2], sizeof(revs[2]), "HEAD ^HEAD~%d", b);
	for (i = 0; i < 3; i++) {
		packs[i] = make_pack(dir, names[i], revs[i], "--delta-base-offset");
		mem_pack_load(&m[i], packs[i]);
		total += m[i].objects;
	}
	return total;
}

static void disjoint_packs_free(char *packs[3], mem_pack m[3])
{
	size_t i;
	for (i = 0; i < 3; i++) {
		mem_pack_free(&m[i]);
		free(packs[i]);
	}
}

/* git checks the joined pack's trailer, its index and every object (deltas resolved); it holds them all. */
static void assert_joined(const char *idx_path, size_t total)
{
	assert_int_equal(tu_sh("git verify-pack '%s' >/dev/null", idx_path), 0);
	assert_int_equal(tu_sh("test \"$(git show-index < '%s' | wc -l)\" -eq %zu", idx_path, total), 0);
}

static void test_appender_joins_packs(void **state)
{
	static const char *const names[3] = {"p0", "p1", "p2"};
	char dir[256], base[300], *packs[3], *pack_path = NULL, *idx_path = NULL;
	mem_pack m[3];
	gw_pack_appender *a;
	size_t i, total;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/appender", tmp);
	total = make_disjoint_packs(dir, names, 15, 8, packs, m);
	snprintf(base, sizeof(base), "%s/joined", dir);
	assert_int_equal(gw_pack_appender_open(&a, base, total, 20, NULL), 0);
	for (i = 0; i < 3; i++)
		assert_int_equal(gw_pack_appender_add(a, m[i].pack, m[i].pack_len, m[i].idx, m[i].idx_len, packs[i]), 0);
	assert_int_equal(gw_pack_appender_finish(a, &pack_path, &idx_path), 0);
	gw_pack_appender_free(a);
	assert_joined(idx_path, total);
	free(pack_path);
	free(idx_path);
	disjoint_packs_free(packs, m);
}

static void test_appender_rejects_bad_input(void **state)
{
	char dir[256], base[300], *pack, *pack_path = NULL, *idx_path = NULL;
	mem_pack m;
	gw_pack_appender *a;
	unsigned char *bad;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/appender-bad", tmp);
	pack = make_pack(dir, "p", "HEAD~3", "--delta-base-offset");
	mem_pack_load(&m, pack);
	snprintf(base, sizeof(base), "%s/joined", dir);

	/* More objects than declared. */
	assert_int_equal(gw_pack_appender_open(&a, base, m.objects - 1, 20, NULL), 0);
	tu_assert_err(gw_pack_appender_add(a, m.pack, m.pack_len, m.idx, m.idx_len, "seg-1"), GW_ECORRUPT, "seg-1");
	gw_pack_appender_free(a);
	/* Fewer than declared: found at the end, nothing left behind. */
	assert_int_equal(gw_pack_appender_open(&a, base, m.objects + 1, 20, NULL), 0);
	assert_int_equal(gw_pack_appender_add(a, m.pack, m.pack_len, m.idx, m.idx_len, "seg-2"), 0);
	tu_assert_err(gw_pack_appender_finish(a, &pack_path, &idx_path), GW_ECORRUPT, "objects recorded");
	gw_pack_appender_free(a);
	/* The same objects twice: one generation stores each once. */
	assert_int_equal(gw_pack_appender_open(&a, base, 2 * m.objects, 20, NULL), 0);
	assert_int_equal(gw_pack_appender_add(a, m.pack, m.pack_len, m.idx, m.idx_len, "seg-3"), 0);
	assert_int_equal(gw_pack_appender_add(a, m.pack, m.pack_len, m.idx, m.idx_len, "seg-3"), 0);
	tu_assert_err(gw_pack_appender_finish(a, &pack_path, &idx_path), GW_ECORRUPT, "twice");
	gw_pack_appender_free(a);
	/* Not a pack; an index of another size; an offset outside the pack. */
	assert_int_equal(gw_pack_appender_open(&a, base, m.objects, 20, NULL), 0);
	bad = malloc(m.pack_len > m.idx_len ? m.pack_len : m.idx_len);
	memcpy(bad, m.pack, m.pack_len);
	bad[0] = 'X';
	tu_assert_err(gw_pack_appender_add(a, bad, m.pack_len, m.idx, m.idx_len, "seg-4"), GW_ECORRUPT, "seg-4");
	tu_assert_err(gw_pack_appender_add(a, m.pack, m.pack_len, m.idx, m.idx_len / 2, "seg-5"), GW_ECORRUPT, "seg-5");
	memcpy(bad, m.idx, m.idx_len);
	/* The first 32-bit offset: past the fanout, the names and the CRCs; the index's own checksum then catches it. */
	memset(bad + 8 + 1024 + m.objects * 24, 0x7f, 4);
	tu_assert_err(gw_pack_appender_add(a, m.pack, m.pack_len, bad, m.idx_len, "seg-6"), GW_ECORRUPT, "checksum");
	/* With the checksum made to agree, the offset itself. */
	idx_reseal(bad, m.idx_len);
	tu_assert_err(gw_pack_appender_add(a, m.pack, m.pack_len, bad, m.idx_len, "seg-6"), GW_ECORRUPT, "outside");
	free(bad);
	gw_pack_appender_free(a);
	assert_int_equal(tu_sh("! ls '%s'/joined* 2>/dev/null | grep -q .", dir), 0);
	mem_pack_free(&m);
	free(pack);
}

/* ---- the appender with a base pack (a full backup's) streamed in beside the appended ones ---- */

typedef struct {
	gw_sink *sink;
	const unsigned char *body;
	size_t len, chunk;
	int rc;
} base_feed;

/* The base's object data, in small pieces, from another thread (as restore does). */
static void *feed_base(void *arg)
{
	base_feed *f = arg;
	size_t off;
	for (off = 0; off < f->len && f->rc == 0; off += f->chunk)
		f->rc = gw_sink_write(f->sink, f->body + off, f->len - off < f->chunk ? f->len - off : f->chunk);
	return NULL;
}

static int open_base(const char *pack_path, gw_idx *idx)
{
	char idx_path[512];
	int fd;
	snprintf(idx_path, sizeof(idx_path), "%.*s.idx", (int)(strlen(pack_path) - 5), pack_path);
	fd = open(idx_path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(gw_idx_open(idx, fd, "base.idx", 20, 1), 0);
	return fd;
}

static void test_appender_with_base(void **state)
{
	char dir[256], base[300], *packs[3], *pack_path = NULL, *idx_path = NULL;
	mem_pack m[3];
	gw_pack_appender *a;
	gw_pack_base first;
	gw_idx idx;
	pthread_t t;
	base_feed f;
	static const char *const names[3] = {"full", "s1", "s2"};
	size_t i, total;
	int fd;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/appender-base", tmp);
	total = make_disjoint_packs(dir, names, 12, 5, packs, m);
	fd = open_base(packs[0], &idx);
	first.idx = &idx;
	first.body_len = m[0].pack_len - 32;
	snprintf(base, sizeof(base), "%s/joined", dir);
	assert_int_equal(gw_pack_appender_open(&a, base, total, 20, &first), 0);
	f = (base_feed){gw_pack_appender_base_sink(a), m[0].pack + 12, m[0].pack_len - 32, 777, 0};
	assert_int_equal(pthread_create(&t, NULL, feed_base, &f), 0);
	for (i = 1; i < 3; i++)
		assert_int_equal(gw_pack_appender_add(a, m[i].pack, m[i].pack_len, m[i].idx, m[i].idx_len, packs[i]), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(f.rc, 0);
	assert_int_equal(gw_pack_appender_finish(a, &pack_path, &idx_path), 0);
	gw_pack_appender_free(a);
	close(fd);
	/* The merged index is right, and the base's objects kept their offsets. */
	assert_joined(idx_path, total);
	assert_int_equal(tu_sh("git show-index < '%.*s.idx' | cut -d' ' -f1,2 | sort > '%s/want' && "
			       "git show-index < '%s' | cut -d' ' -f1,2 | sort > '%s/got' && comm -23 '%s/want' '%s/got' | "
			       "(! grep -q .)",
			       (int)(strlen(packs[0]) - 5), packs[0], dir, idx_path, dir, dir, dir),
			 0);
	free(pack_path);
	free(idx_path);
	disjoint_packs_free(packs, m);
}

static void test_appender_base_rejects_bad_input(void **state)
{
	char dir[256], base[300], *full, *seg, *pack_path = NULL, *idx_path = NULL;
	mem_pack m, s;
	gw_pack_appender *a;
	gw_pack_base first;
	gw_idx idx, damaged;
	unsigned char *bad;
	int fd, bfd;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/appender-base-bad", tmp);
	full = make_pack(dir, "full", "HEAD~6", "--delta-base-offset");
	seg = make_pack(dir, "s", "HEAD ^HEAD~6", "--delta-base-offset");
	mem_pack_load(&m, full);
	mem_pack_load(&s, seg);
	fd = open_base(full, &idx);
	first.idx = &idx;
	first.body_len = m.pack_len - 32;
	snprintf(base, sizeof(base), "%s/joined", dir);

	/* More objects in the base than the whole pack is to hold. */
	tu_assert_err(gw_pack_appender_open(&a, base, m.objects - 1, 20, &first), GW_ECORRUPT, "more objects");
	/* A SHA-1 base in a joined pack of SHA-256 ids (a generation of the other format). */
	tu_assert_err(gw_pack_appender_open(&a, base, m.objects, 32, &first), GW_ECORRUPT,
		      "its ids are 20 bytes, the joined pack's 32");
	/* A SHA-1 segment appended to a SHA-256 joined pack: its index does not read as one. */
	assert_int_equal(gw_pack_appender_open(&a, base, s.objects, 32, NULL), 0);
	assert_true(gw_pack_appender_add(a, s.pack, s.pack_len, s.idx, s.idx_len, "seg-sha1") < 0);
	gw_pack_appender_free(a);
	/* The base's data one byte short: found at the end. */
	assert_int_equal(gw_pack_appender_open(&a, base, m.objects, 20, &first), 0);
	assert_int_equal(gw_sink_write(gw_pack_appender_base_sink(a), m.pack + 12, first.body_len - 1), 0);
	tu_assert_err(gw_pack_appender_finish(a, &pack_path, &idx_path), GW_ECORRUPT, "announced");
	gw_pack_appender_free(a);
	/* One byte too many: refused as it comes. */
	assert_int_equal(gw_pack_appender_open(&a, base, m.objects, 20, &first), 0);
	assert_int_equal(gw_sink_write(gw_pack_appender_base_sink(a), m.pack + 12, first.body_len), 0);
	tu_assert_err(gw_sink_write(gw_pack_appender_base_sink(a), m.pack, 1), GW_ECORRUPT, "longer");
	gw_pack_appender_free(a);
	/* An appended pack holding objects of the base: one generation stores each once. */
	assert_int_equal(gw_pack_appender_open(&a, base, 2 * m.objects, 20, &first), 0);
	assert_int_equal(gw_sink_write(gw_pack_appender_base_sink(a), m.pack + 12, first.body_len), 0);
	assert_int_equal(gw_pack_appender_add(a, m.pack, m.pack_len, m.idx, m.idx_len, "seg-dup"), 0);
	tu_assert_err(gw_pack_appender_finish(a, &pack_path, &idx_path), GW_ECORRUPT, "twice");
	gw_pack_appender_free(a);
	/* A base index whose first offset lies past the base's data. */
	bad = malloc(m.idx_len);
	memcpy(bad, m.idx, m.idx_len);
	memset(bad + 8 + 1024 + m.objects * 24, 0x7f, 4);
	bfd = write_tmp("damaged-base.idx", bad, m.idx_len);
	assert_int_equal(gw_idx_open(&damaged, bfd, "damaged.idx", 20, 0), 0);
	first.idx = &damaged;
	assert_int_equal(gw_pack_appender_open(&a, base, m.objects + s.objects, 20, &first), 0);
	assert_int_equal(gw_sink_write(gw_pack_appender_base_sink(a), m.pack + 12, first.body_len), 0);
	assert_int_equal(gw_pack_appender_add(a, s.pack, s.pack_len, s.idx, s.idx_len, "seg"), 0);
	tu_assert_err(gw_pack_appender_finish(a, &pack_path, &idx_path), GW_ECORRUPT, "outside");
	gw_pack_appender_free(a);
	close(bfd);
	free(bad);
	close(fd);
	assert_int_equal(tu_sh("! ls '%s'/joined* 2>/dev/null | grep -q .", dir), 0);
	mem_pack_free(&m);
	mem_pack_free(&s);
	free(full);
	free(seg);
}

/* ---- checking an index on its own, and a pack against its index (idx.c, verify.c) ---- */

static void expect_verify(unsigned char (*oids)[20], size_t n, const char *needle)
{
	uint64_t offsets[8] = {12, 40, 80, 120, 160, 200, 240, 280};
	unsigned char *b;
	size_t len;
	gw_idx idx;
	b = build_idx(n, (const unsigned char(*)[20])oids, offsets, &len);
	assert_int_equal(gw_idx_open_buffer(&idx, b, len, "mem.idx", 20, 1), 0);
	if (needle)
		tu_assert_err(gw_idx_verify(&idx, NULL, 0, NULL), GW_ECORRUPT, needle);
	else
		assert_int_equal(gw_idx_verify(&idx, NULL, 0, NULL), 0);
	free(b);
}

static void test_idx_verify(void **state)
{
	unsigned char oids[4][20], want[3][20], found[3] = {0};
	uint64_t offsets[4] = {12, 40, 80, 120};
	unsigned char *b;
	size_t len;
	gw_idx idx, from_fd;
	int fd;
	(void)state;
	memset(oids[0], 0x10, 20);
	memset(oids[1], 0x20, 20);
	memset(oids[2], 0x20, 20);
	oids[2][19] = 0x21;
	memset(oids[3], 0x30, 20);
	b = build_idx(4, (const unsigned char(*)[20])oids, offsets, &len);
	/* In memory, as from a file. */
	assert_int_equal(gw_idx_open_buffer(&idx, b, len, "mem.idx", 20, 1), 0);
	fd = write_tmp("verify.idx", b, len);
	assert_int_equal(gw_idx_open(&from_fd, fd, "verify.idx", 20, 1), 0);
	assert_int_equal(idx.count, 4);
	assert_int_equal(idx.ofs_off, from_fd.ofs_off);
	assert_memory_equal(idx.pack_checksum, from_fd.pack_checksum, 20);
	close(fd);
	/* Looked-up ids found on the way: present, absent, present. */
	memcpy(want[0], oids[1], 20);
	memset(want[1], 0x25, 20);
	memcpy(want[2], oids[3], 20);
	assert_int_equal(gw_idx_verify(&idx, want[0], 3, found), 0);
	assert_int_equal(found[0], 1);
	assert_int_equal(found[1], 0);
	assert_int_equal(found[2], 1);
	/* Damaged in memory: the checksum tells, and a cut index is refused like a short file. */
	b[8 + 1024] ^= 1;
	tu_assert_err(gw_idx_open_buffer(&idx, b, len, "mem.idx", 20, 1), GW_ECORRUPT, "checksum");
	tu_assert_err(gw_idx_open_buffer(&idx, b, 100, "mem.idx", 20, 0), GW_ECORRUPT, "too small");
	tu_assert_err(gw_idx_open_buffer(&idx, b, len - 8, "mem.idx", 20, 0), GW_ECORRUPT, "mem.idx");
	free(b);

	expect_verify(oids, 4, NULL);
	/* The same id twice. */
	memcpy(oids[2], oids[1], 20);
	expect_verify(oids, 4, "listed twice");
	/* Out of order inside one fanout bucket. */
	memset(oids[1], 0x20, 20);
	oids[1][19] = 0x21;
	memset(oids[2], 0x20, 20);
	expect_verify(oids, 4, "not sorted at position 2");
	/* An id outside the bucket its fanout gives (the fanout says 0x10 holds nothing). */
	memset(oids[1], 0x20, 20);
	oids[2][19] = 0x21;
	b = build_idx(4, (const unsigned char(*)[20])oids, offsets, &len);
	memset(b + 8 + 0x10 * 4, 0, 4);
	idx_reseal(b, len);
	assert_int_equal(gw_idx_open_buffer(&idx, b, len, "mem.idx", 20, 1), 0);
	tu_assert_err(gw_idx_verify(&idx, NULL, 0, NULL), GW_ECORRUPT, "fanout table does not match object 0");
	free(b);
}

static void test_pack_entry_check(void **state)
{
	unsigned char buf[64];
	gw_pack_entry e;
	size_t n;
	(void)state;
	memset(buf, 0, sizeof(buf));
	n = gw_pack_encode_header(buf, GW_OBJ_BLOB, 100);
	assert_null(gw_pack_entry_check(buf, sizeof(buf), 12, 50, 20, &e));
	assert_int_equal(e.type, GW_OBJ_BLOB);
	assert_int_equal(e.size, 100);
	assert_int_equal(e.header_len, n);
	assert_string_equal(gw_pack_entry_check(buf, n, 12, n, 20, &e), "the entry has no data");
	buf[0] = (unsigned char)(buf[0] & 0x8f); /* type 0 */
	assert_string_equal(gw_pack_entry_check(buf, sizeof(buf), 12, 50, 20, &e), "bad entry header");
	buf[0] = (unsigned char)((buf[0] & 0x8f) | 5 << 4); /* type 5 */
	assert_string_equal(gw_pack_entry_check(buf, sizeof(buf), 12, 50, 20, &e), "bad entry header");
	/* A delta's base: before it, not before the pack's first object. */
	n = gw_pack_encode_header(buf, GW_OBJ_OFS_DELTA, 10);
	n += gw_pack_encode_ofs(buf + n, 30);
	assert_null(gw_pack_entry_check(buf, sizeof(buf), 42, 50, 20, &e));
	assert_int_equal(e.distance, 30);
	assert_int_equal(e.header_len + e.ofs_len, n);
	assert_string_equal(gw_pack_entry_check(buf, sizeof(buf), 41, 50, 20, &e), "bad delta base offset");
	/* A REF_DELTA names its base in 20 bytes. */
	n = gw_pack_encode_header(buf, GW_OBJ_REF_DELTA, 10);
	assert_null(gw_pack_entry_check(buf, sizeof(buf), 12, 50, 20, &e));
	assert_string_equal(gw_pack_entry_check(buf, n + 19, 12, n + 19, 20, &e), "bad entry header");
	assert_string_equal(gw_pack_entry_check(buf, n + 20, 12, n + 20, 20, &e), "the entry has no data");
	/* In a SHA-256 pack, in 32. */
	assert_string_equal(gw_pack_entry_check(buf, n + 31, 12, n + 31, 32, &e), "bad entry header");
	assert_string_equal(gw_pack_entry_check(buf, n + 32, 12, n + 32, 32, &e), "the entry has no data");
	assert_null(gw_pack_entry_check(buf, n + 33, 12, n + 33, 32, &e));
}

/* A sink keeping what passes through a pack check. */
typedef struct {
	gw_sink sink;
	unsigned char *buf;
	size_t len;
} mem_sink;

static int mem_sink_write(gw_sink *s, const void *buf, size_t len)
{
	mem_sink *m = (mem_sink *)s;
	memcpy(m->buf + m->len, buf, len);
	m->len += len;
	return 0;
}

/* The entry of the object at the lowest offset after `after`, from the index itself. */
static gw_idx_ofs_entry object_after(const gw_idx *idx, uint64_t pack_len, uint64_t after, uint64_t *end)
{
	gw_idx_ofs_entry *arr, e;
	size_t n, i;
	uint64_t next;
	assert_int_equal(gw_idx_load_window(idx, pack_len - 20, 0, UINT64_MAX, 1024, &arr, &n, &next), 0);
	for (i = 0; i < n && arr[i].offset <= after; i++)
		;
	assert_true(i < n);
	e = arr[i];
	*end = i + 1 < n ? arr[i + 1].offset : pack_len - 20;
	free(arr);
	return e;
}

/* Set the index's CRC32 of the object at `off` to what the (damaged) pack holds, and reseal: a careful forger. */
static void fix_crc(unsigned char *idx, size_t idx_len, const unsigned char *pack, size_t pack_len, uint64_t after)
{
	gw_idx x;
	gw_idx_ofs_entry e;
	uint64_t end;
	uint32_t crc;
	assert_int_equal(gw_idx_open_buffer(&x, idx, idx_len, "fix", 20, 0), 0);
	e = object_after(&x, pack_len, after, &end);
	crc = (uint32_t)crc32_z(0, pack + e.offset, end - e.offset);
	idx[x.crc_off + e.pos * 4] = (unsigned char)(crc >> 24);
	idx[x.crc_off + e.pos * 4 + 1] = (unsigned char)(crc >> 16);
	idx[x.crc_off + e.pos * 4 + 2] = (unsigned char)(crc >> 8);
	idx[x.crc_off + e.pos * 4 + 3] = (unsigned char)crc;
	idx_reseal(idx, idx_len);
}

/* Check pack (or idx) as damaged by the caller: NULL needle means it must pass. */
static void expect_pack_check(const unsigned char *pack, size_t pack_len, const unsigned char *idx, size_t idx_len,
			 const char *needle)
{
	gw_idx x;
	assert_int_equal(gw_idx_open_buffer(&x, idx, idx_len, "x.idx", 20, 1), 0);
	if (needle)
		tu_assert_err(gw_pack_check_buffer(&x, pack, pack_len, "the-pack"), GW_ECORRUPT, needle);
	else
		assert_int_equal(gw_pack_check_buffer(&x, pack, pack_len, "the-pack"), 0);
}

static void test_pack_check(void **state)
{
	char dir[256], *path, file[512];
	mem_pack m;
	unsigned char *p, *x;
	mem_sink out;
	gw_pack_check *c;
	gw_idx idx;
	gw_idx_ofs_entry e;
	uint64_t end, at;
	size_t chunks[] = {1, 7, 4096, 1u << 20}, k, i;
	int fd;
	(void)state;
	snprintf(dir, sizeof(dir), "%s/check", tmp);
	path = make_pack(dir, "c", "HEAD", "--delta-base-offset");
	mem_pack_load(&m, path);
	p = malloc(m.pack_len + 1);
	x = malloc(m.idx_len);
	out.buf = malloc(m.pack_len);
	out.sink.write = mem_sink_write;
	assert_int_equal(gw_idx_open_buffer(&idx, m.idx, m.idx_len, "c.idx", 20, 1), 0);
	assert_int_equal(gw_idx_verify(&idx, NULL, 0, NULL), 0);

	/* Sound, fed in pieces of any size; the bytes go on unchanged. */
	for (k = 0; k < sizeof(chunks) / sizeof(chunks[0]); k++) {
		out.len = 0;
		assert_int_equal(gw_pack_check_new(&c, &idx, m.pack_len, "the-pack", &out.sink), 0);
		for (i = 0; i < m.pack_len; i += chunks[k])
			assert_int_equal(gw_sink_write(gw_pack_check_sink(c), m.pack + i,
						       m.pack_len - i < chunks[k] ? m.pack_len - i : chunks[k]),
					 0);
		assert_int_equal(gw_pack_check_finish(c), 0);
		gw_pack_check_free(c);
		assert_int_equal(out.len, m.pack_len);
		assert_memory_equal(out.buf, m.pack, m.pack_len);
	}
	/* Offsets met over many windows (of 3 objects). */
	gw_pack_check_window = 3;
	expect_pack_check(m.pack, m.pack_len, m.idx, m.idx_len, NULL);
	gw_pack_check_window = 1u << 20;

#define RESET() (memcpy(p, m.pack, m.pack_len), memcpy(x, m.idx, m.idx_len))
	/* A byte of the first object's data: its CRC32 tells; with the CRC32 forged, the pack's SHA-1. */
	RESET();
	p[12 + 4] ^= 1;
	expect_pack_check(p, m.pack_len, x, m.idx_len, "offset 12) is corrupt: CRC32 mismatch");
	tu_assert_msg_has("the-pack: object ");
	fix_crc(x, m.idx_len, p, m.pack_len, 0);
	expect_pack_check(p, m.pack_len, x, m.idx_len, "the-pack: its pack's content hashes to SHA-1");
	/* The header: not a pack; a count other than the index's. */
	RESET();
	p[0] = 'X';
	expect_pack_check(p, m.pack_len, x, m.idx_len, "does not start with a version 2 pack header");
	RESET();
	p[11] ^= 1;
	expect_pack_check(p, m.pack_len, x, m.idx_len, "its pack header counts");
	/* The index is for another pack. */
	RESET();
	x[m.idx_len - 40] ^= 1;
	idx_reseal(x, m.idx_len);
	expect_pack_check(p, m.pack_len, x, m.idx_len, "its index is for pack");
	/* Offsets: moved by one, two objects at one place, past the pack. */
	RESET();
	e = object_after(&idx, m.pack_len, 0, &end);
	x[idx.ofs_off + e.pos * 4 + 3] = 13;
	idx_reseal(x, m.idx_len);
	expect_pack_check(p, m.pack_len, x, m.idx_len, "pack index offsets do not tile the pack");
	RESET();
	e = object_after(&idx, m.pack_len, 12, &end);
	memset(x + idx.ofs_off + e.pos * 4, 0, 4);
	x[idx.ofs_off + e.pos * 4 + 3] = 12;
	idx_reseal(x, m.idx_len);
	expect_pack_check(p, m.pack_len, x, m.idx_len, "two objects share an offset");
	RESET();
	memset(x + idx.ofs_off, 0x7f, 4);
	idx_reseal(x, m.idx_len);
	expect_pack_check(p, m.pack_len, x, m.idx_len, "outside the pack");
	/* An entry header of type 0, its CRC32 forged to match. */
	RESET();
	p[12] &= 0x8f;
	fix_crc(x, m.idx_len, p, m.pack_len, 0);
	expect_pack_check(p, m.pack_len, x, m.idx_len, "bad entry header");
	/* A delta whose base distance lands inside another object (CRC32 forged). */
	RESET();
	for (at = 12;; at = e.offset) {
		gw_pack_entry pe;
		e = object_after(&idx, m.pack_len, at, &end);
		assert_null(gw_pack_entry_check(p + e.offset, end - e.offset, e.offset, end - e.offset, 20, &pe));
		if (pe.type == GW_OBJ_OFS_DELTA && (p[e.offset + pe.header_len + pe.ofs_len - 1] & 0x7f) > 0)
			break;
	}
	{
		gw_pack_entry pe;
		assert_null(gw_pack_entry_check(p + e.offset, end - e.offset, e.offset, end - e.offset, 20, &pe));
		p[e.offset + pe.header_len + pe.ofs_len - 1]--; /* one byte nearer: inside the base */
	}
	fix_crc(x, m.idx_len, p, m.pack_len, e.offset - 1);
	expect_pack_check(p, m.pack_len, x, m.idx_len, "delta base offset");
	/* Cut short, or longer than announced. */
	RESET();
	assert_int_equal(gw_pack_check_new(&c, &idx, m.pack_len, "the-pack", NULL), 0);
	assert_int_equal(gw_sink_write(gw_pack_check_sink(c), p, m.pack_len - 1), 0);
	tu_assert_err(gw_pack_check_finish(c), GW_ECORRUPT, "truncated");
	gw_pack_check_free(c);
	p[m.pack_len] = 0;
	assert_int_equal(gw_pack_check_new(&c, &idx, m.pack_len, "the-pack", NULL), 0);
	tu_assert_err(gw_sink_write(gw_pack_check_sink(c), p, m.pack_len + 1), GW_ECORRUPT, "longer than");
	tu_assert_err(gw_pack_check_finish(c), GW_ECORRUPT, "longer than"); /* the first error sticks */
	gw_pack_check_free(c);
	/* The same through a file descriptor; a file shorter than said. */
	snprintf(file, sizeof(file), "%s/c.pack.copy", dir);
	tu_write_file(file, m.pack, m.pack_len);
	fd = open(file, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(gw_pack_check_fd(&idx, fd, m.pack_len, "the-pack"), 0);
	close(fd);
	tu_write_file(file, m.pack, m.pack_len - 1);
	fd = open(file, O_RDONLY);
	tu_assert_err(gw_pack_check_fd(&idx, fd, m.pack_len, "the-pack"), GW_ECORRUPT, "truncated");
	close(fd);
	p[20] ^= 1;
	tu_write_file(file, p, m.pack_len);
	fd = open(file, O_RDONLY);
	tu_assert_err(gw_pack_check_fd(&idx, fd, m.pack_len, "the-pack"), GW_ECORRUPT, "the-pack");
	close(fd);
#undef RESET
	free(out.buf);
	free(p);
	free(x);
	mem_pack_free(&m);
	free(path);
}

static void test_pack_check_empty(void **state)
{
	unsigned char pack[40], *b;
	size_t len;
	gw_idx idx;
	(void)state;
	/* A pack without objects: header and trailer only; its index names it. */
	memcpy(pack, "PACK\0\0\0\2\0\0\0\0", 12);
	gw_hash_buffer(GW_HASH_SHA1, pack, 12, pack + 12);
	b = build_idx(0, NULL, NULL, &len);
	memcpy(b + len - 40, pack + 12, 20);
	idx_reseal(b, len);
	assert_int_equal(gw_idx_open_buffer(&idx, b, len, "empty.idx", 20, 1), 0);
	assert_int_equal(gw_pack_check_buffer(&idx, pack, 32, "empty"), 0);
	/* Bytes no object covers. */
	memmove(pack + 20, pack + 12, 20);
	memset(pack + 12, 0, 8);
	gw_hash_buffer(GW_HASH_SHA1, pack, 20, pack + 20);
	tu_assert_err(gw_pack_check_buffer(&idx, pack, 40, "empty"), GW_ECORRUPT, "does not cover the whole pack");
	/* Too short to be a pack. */
	tu_assert_err(gw_pack_check_buffer(&idx, pack, 31, "empty"), GW_ECORRUPT, "too short");
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_header_known_bytes),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_header_roundtrip_huge),
		cmocka_unit_test(test_header_rejects_overlong),
		cmocka_unit_test(test_ofs_roundtrip),
		cmocka_unit_test(test_idx_real),
		cmocka_unit_test(test_idx_large_offsets),
		cmocka_unit_test(test_idx_damaged),
		cmocka_unit_test(test_splice_single_pack),
		cmocka_unit_test(test_splice_overlapping_packs),
		cmocka_unit_test(test_splice_loose_and_pack),
		cmocka_unit_test(test_splice_bad_loose),
		cmocka_unit_test(test_splice_corrupt_pack),
		cmocka_unit_test(test_appender_joins_packs),
		cmocka_unit_test(test_appender_rejects_bad_input),
		cmocka_unit_test(test_appender_with_base),
		cmocka_unit_test(test_appender_base_rejects_bad_input),
		cmocka_unit_test(test_idx_verify),
		cmocka_unit_test(test_pack_entry_check),
		cmocka_unit_test(test_pack_check),
		cmocka_unit_test(test_pack_check_empty),
	};
	if (getenv("TU_FILTER"))
		cmocka_set_test_filter(getenv("TU_FILTER"));
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
