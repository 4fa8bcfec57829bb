/* Unit tests for src/format/layout.c: store keys and LSN allocation. */
#include "testutil.h"
#include "fixture.h"

#include "gitwal/layout.h"
#include "gitwal/repo.h"

static void test_full_key_formats(void **state)
{
	static const struct {
		const char *rel;
		uint64_t lsn;
		gw_key_kind kind;
		const char *key;
	} keys[] = {
		{"a.git", 1, GW_KEY_FULL_BUNDLE, "repos/a.git/00000000000000000001.full.bundle"},
		{"a.git", 42, GW_KEY_FULL_IDX, "repos/a.git/00000000000000000042.full.idx"},
		{"g/r.git", 1234567890123ULL, GW_KEY_FULL_MANIFEST, "repos/g%2Fr.git/00000001234567890123.full.manifest"},
		{".dot", UINT64_MAX, GW_KEY_FULL_BUNDLE, "repos/%2Edot/18446744073709551615.full.bundle"},
		{"g/r.git", 77, GW_KEY_SEGMENT, "repos/g%2Fr.git/00000000000000000077.seg"},
		{"x", 0, GW_KEY_FULL_BUNDLE, "repos/x/00000000000000000000.full.bundle"},
	};
	char *k;
	size_t i;
	(void)state;
	k = gw_layout_repo_prefix("group/p.git");
	assert_string_equal(k, "repos/group%2Fp.git/");
	free(k);
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		k = gw_layout_key(keys[i].rel, keys[i].lsn, keys[i].kind);
		assert_string_equal(k, keys[i].key);
		free(k);
	}
	assert_null(gw_layout_key("x", 1, GW_KEY_UNKNOWN));
	assert_null(gw_layout_key("x", 1, (gw_key_kind)99));
}

static void test_parse_roundtrip(void **state)
{
	static const char *repos[] = {"a", "a.git", "group/sub/p.git", ".hidden", "100%", "caf\xc3\xa9", "a b/c",
				      "x%2Fy"};
	static const uint64_t lsns[] = {0, 1, 9, 10, 99999, 1ULL << 32, 9999999999999999999ULL, UINT64_MAX};
	size_t r, l;
	gw_key_kind kind;
	(void)state;
	for (r = 0; r < sizeof(repos) / sizeof(repos[0]); r++)
		for (l = 0; l < sizeof(lsns) / sizeof(lsns[0]); l++)
			for (kind = GW_KEY_FULL_BUNDLE; kind <= GW_KEY_EXPIRE; kind++) {
				char *key = gw_layout_key(repos[r], lsns[l], kind), *rel;
				uint64_t lsn;
				gw_key_kind got;
				assert_non_null(key);
				assert_int_equal(gw_store_key_check(key), 0);
				assert_int_equal(gw_layout_parse_key(key, &rel, &lsn, &got), 0);
				assert_non_null(rel);
				assert_string_equal(rel, repos[r]);
				assert_int_equal(lsn, lsns[l]);
				assert_int_equal(got, kind);
				free(rel);
				free(key);
			}
}

static void test_parse_foreign_keys(void **state)
{
	static const char *foreign[] = {
		"other/x",
		"repos",
		"repos/",
		"repos/a",
		"repos/a/",
		"repo/a/00000000000000000001.full.bundle",
		"Repos/a/00000000000000000001.full.bundle",
		"repos/a/1.full.bundle",
		"repos/a/0000000000000000001.full.bundle",   /* 19 digits */
		"repos/a/000000000000000000001.full.bundle", /* 21 digits */
		"repos/a/0000000000000000000x.full.bundle",
		"repos/a/-0000000000000000001.full.bundle",
		"repos/a/00000000000000000001.full.bundlex",
		"repos/a/00000000000000000001.segx",
		"repos/a/00000000000000000001.seg.tmp",
		"repos/a/00000000000000000001.full.bundl",
		"repos/a/00000000000000000001.full",
		"repos/a/00000000000000000001",
		"repos/a/00000000000000000001.",
		"repos/a/00000000000000000001.incr.bundle",
		"repos/a/00000000000000000001.full.bundle/x",
		"repos/a/b/00000000000000000001.full.bundle",
		"repos/a/00000000000000000001.FULL.BUNDLE",
		"xrepos/a/00000000000000000001.full.bundle",
		"",
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(foreign) / sizeof(foreign[0]); i++) {
		char *rel = (char *)1;
		uint64_t lsn = 5;
		gw_key_kind kind = GW_KEY_FULL_IDX;
		int rc = gw_layout_parse_key(foreign[i], &rel, &lsn, &kind);
		if (rc != 0 || kind != GW_KEY_UNKNOWN)
			print_error("'%s': rc %d kind %d\n", foreign[i], rc, (int)kind);
		assert_int_equal(rc, 0);
		assert_int_equal(kind, GW_KEY_UNKNOWN);
		assert_null(rel);
		assert_int_equal(lsn, 0);
	}
}

static void test_parse_bad_repository_component(void **state)
{
	static const char *bad[] = {
		"repos/%2E%2E/00000000000000000001.full.bundle",
		"repos/%2E%2E%2Fx/00000000000000000001.full.manifest",
		"repos/%zz/00000000000000000001.full.idx",
		"repos/%00/00000000000000000001.full.idx",
		"repos/%2Fabs/00000000000000000001.full.idx",
		"repos//00000000000000000001.full.idx",
		"repos/a%2F%2Fb/00000000000000000001.full.idx",
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *rel = (char *)1;
		uint64_t lsn;
		gw_key_kind kind;
		int rc = gw_layout_parse_key(bad[i], &rel, &lsn, &kind);
		if (rc >= 0)
			print_error("'%s' parsed (rc %d, rel %s)\n", bad[i], rc, rel ? rel : "(null)");
		assert_true(rc < 0);
		assert_int_equal(rc, GW_ECORRUPT);
		assert_null(rel);
		tu_assert_msg_has("not an encoded repository path");
	}
}

/*
 * A key whose 20 digits exceed UINT64_MAX is not a key gitwal can have
 * written: it must not parse as LSN UINT64_MAX (strtoull saturates), or two
 * distinct keys name the same backup.
 */
static void test_parse_lsn_overflow(void **state)
{
	static const char *keys[] = {"repos/a/99999999999999999999.full.manifest",
				     "repos/a/18446744073709551616.full.manifest"};
	size_t i, wrong = 0;
	(void)state;
	for (i = 0; i < 2; i++) {
		char *rel = NULL;
		uint64_t lsn = 0;
		gw_key_kind kind = GW_KEY_UNKNOWN;
		int rc = gw_layout_parse_key(keys[i], &rel, &lsn, &kind);
		if (rc == 0 && kind != GW_KEY_UNKNOWN) {
			print_error("'%s' parsed as LSN %llu\n", keys[i], (unsigned long long)lsn);
			wrong++;
		}
		free(rel);
	}
	assert_int_equal(wrong, 0);
}

/* ---- LSN allocation over a file store ---- */

static void put_key(gw_store *s, const char *rel, uint64_t lsn, gw_key_kind kind)
{
	char *key = gw_layout_key(rel, lsn, kind);
	assert_non_null(key);
	assert_int_equal(gw_store_put(s, key, "x", 1), 0);
	free(key);
}

static uint64_t next_lsn(gw_store *s, const char *rel)
{
	uint64_t lsn = 0;
	int rc = gw_layout_next_lsn(s, rel, &lsn);
	if (rc < 0)
		print_error("next_lsn(%s): %s\n", rel, gw_error_message());
	assert_int_equal(rc, 0);
	return lsn;
}

static void test_next_lsn(void **state)
{
	tu_fixture *f = *state;
	assert_int_equal(next_lsn(f->store, "a.git"), 1);
	put_key(f->store, "a.git", 1, GW_KEY_FULL_BUNDLE);
	put_key(f->store, "a.git", 1, GW_KEY_FULL_IDX);
	put_key(f->store, "a.git", 1, GW_KEY_FULL_MANIFEST);
	assert_int_equal(next_lsn(f->store, "a.git"), 2);
	/* A failed backup left a part without a manifest: its LSN is still taken. */
	put_key(f->store, "a.git", 2, GW_KEY_FULL_BUNDLE);
	assert_int_equal(next_lsn(f->store, "a.git"), 3);
	/* Gaps do not matter: one more than the highest. */
	put_key(f->store, "a.git", 17, GW_KEY_FULL_IDX);
	assert_int_equal(next_lsn(f->store, "a.git"), 18);

	/* Repositories whose names prefix one another do not share LSNs. */
	put_key(f->store, "a.git2", 500, GW_KEY_FULL_MANIFEST);
	put_key(f->store, "a", 300, GW_KEY_FULL_MANIFEST);
	put_key(f->store, "a.git/sub", 700, GW_KEY_FULL_MANIFEST);
	assert_int_equal(next_lsn(f->store, "a.git"), 18);
	assert_int_equal(next_lsn(f->store, "a.git2"), 501);
	assert_int_equal(next_lsn(f->store, "a"), 301);
	assert_int_equal(next_lsn(f->store, "a.git/sub"), 701);
	assert_int_equal(next_lsn(f->store, "b.git"), 1);
	/* Foreign keys under the repository do not count. */
	assert_int_equal(gw_store_put(f->store, "repos/a.git/README", "x", 1), 0);
	assert_int_equal(gw_store_put(f->store, "repos/a.git/123.full.bundle", "x", 1), 0);
	assert_int_equal(next_lsn(f->store, "a.git"), 18);
	/* Other layouts' roots do not either. */
	assert_int_equal(gw_store_put(f->store, "repos.old/a.git/00000000000000000900.full.bundle", "x", 1), 0);
	assert_int_equal(next_lsn(f->store, "a.git"), 18);
}

/* The highest possible LSN leaves no next one: 0 (the "latest" wildcard) must not come back. */
static void test_next_lsn_exhausted(void **state)
{
	tu_fixture *f = *state;
	uint64_t lsn = 12345;
	int rc;
	put_key(f->store, "full.git", UINT64_MAX, GW_KEY_FULL_BUNDLE);
	rc = gw_layout_next_lsn(f->store, "full.git", &lsn);
	if (rc == 0)
		print_error("next LSN after UINT64_MAX returned %llu\n", (unsigned long long)lsn);
	assert_true(rc < 0 || lsn != 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_key_formats),
		cmocka_unit_test(test_parse_roundtrip),
		cmocka_unit_test(test_parse_foreign_keys),
		cmocka_unit_test(test_parse_bad_repository_component),
		cmocka_unit_test(test_parse_lsn_overflow),
		cmocka_unit_test_setup_teardown(test_next_lsn, tu_store_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_next_lsn_exhausted, tu_store_setup, tu_teardown),
	};
	return tu_run_tests(tests);
}
