/*
 * Pattern data for the store tests (test_store_s3.c, test_store_s3_faults.c):
 * bytes that depend on their offset and a seed, so a write can be checked
 * read back without keeping it, and a misplaced or repeated range shows.
 * Include after cmocka.h (it uses fail_msg and assert_*).
 */
#ifndef GITWAL_TESTS_STORE_PATTERN_H
#define GITWAL_TESTS_STORE_PATTERN_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitwal/error.h"
#include "gitwal/store.h"

static void fill_pattern(unsigned char *buf, size_t len, uint64_t seed, uint64_t offset)
{
	size_t i;
	for (i = 0; i < len; i++) {
		uint64_t x = (offset + i) * 0x9E3779B97F4A7C15ull + seed;
		x ^= x >> 29;
		buf[i] = (unsigned char)(x * 0xBF58476D1CE4E5B9ull >> 56);
	}
}

/* Write `size` pattern bytes in pieces of `piece`, then commit. */
static int write_pattern(gw_store *store, const char *key, uint64_t size, uint64_t hint, size_t piece, uint64_t seed)
{
	unsigned char *buf = malloc(piece);
	gw_store_writer *w;
	uint64_t done = 0;
	int rc;
	assert_non_null(buf);
	if ((rc = gw_store_write_open(&w, store, key, hint)) < 0) {
		free(buf);
		return rc;
	}
	while (done < size && rc == 0) {
		size_t n = size - done < piece ? (size_t)(size - done) : piece;
		fill_pattern(buf, n, seed, done);
		rc = gw_store_writer_write(w, buf, n);
		done += n;
	}
	if (rc == 0)
		rc = gw_store_writer_commit(w);
	gw_store_writer_free(w);
	free(buf);
	return rc;
}

/* Read the key back in odd-sized reads and compare with the pattern. */
static void check_pattern(gw_store *store, const char *key, uint64_t size, uint64_t seed)
{
	unsigned char *got = malloc(100003), *want = malloc(100003);
	gw_store_reader *r;
	uint64_t done = 0;
	ssize_t n;
	if (gw_store_read_open(&r, store, key, 0, GW_STORE_TO_END) < 0)
		fail_msg("read_open %s: %s", key, gw_error_message());
	while ((n = gw_store_reader_read(r, got, 100003)) > 0) {
		fill_pattern(want, (size_t)n, seed, done);
		if (memcmp(got, want, (size_t)n))
			fail_msg("%s: bytes differ in [%llu, %llu)", key, (unsigned long long)done,
				 (unsigned long long)(done + (uint64_t)n));
		done += (uint64_t)n;
	}
	if (n < 0)
		fail_msg("read %s: %s", key, gw_error_message());
	assert_int_equal(done, size);
	gw_store_reader_free(r);
	free(got);
	free(want);
}

#endif
