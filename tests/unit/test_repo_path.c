/* Unit tests for src/util/repo_path.c: path checks, key encoding, discovery. */
#include "testutil.h"

#include "gitwal/repo.h"
#include "gitwal/store.h"

static void test_path_check_accepts(void **state)
{
	static const char *good[] = {
		"a", "a.git", "group/project.git", "a/b/c/d.git", "..a", "a..", "a..b", ".a", "a/.b", "...", "a b",
		"caf\xc3\xa9.git", "\xe2\x98\x83/\xf0\x9f\x98\x80", "a%b", "a+b=c", "a:b", "~user", "x/y.git/z",
	};
	char longpath[4097];
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		int rc = gw_repo_path_check(good[i]);
		if (rc)
			print_error("'%s' rejected: %s\n", good[i], gw_error_message());
		assert_int_equal(rc, 0);
	}
	memset(longpath, 'p', 4096);
	longpath[4096] = '\0';
	assert_int_equal(gw_repo_path_check(longpath), 0);
}

static void test_path_check_rejects(void **state)
{
	static const struct {
		const char *path;
		const char *why;
	} bad[] = {
		{"/abs", "absolute"},          {"/", "absolute"},           {"..", "'..'"},
		{".", "'.'"},                  {"../x", "'..'"},            {"a/../b", "'..'"},
		{"a/..", "'..'"},              {"./a", "'.'"},              {"a/.", "'.'"},
		{"a/./b", "'.'"},              {"a//b", "empty component"}, {"a/", "empty component"},
		{"a\\b", "backslash"},         {"..\\x", "backslash"},      {"a\x01" "b", "control"},
		{"a\x1f", "control"},          {"a\x7f", "control"},        {"a\tb", "control"},
		{"a\nb", "control"},           {"a\rb", "control"},
	};
	char longpath[4098];
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = gw_repo_path_check(bad[i].path);
		if (rc != GW_EINVALID)
			print_error("path %zu accepted\n", i);
		assert_int_equal(rc, GW_EINVALID);
		tu_assert_msg_has(bad[i].why);
		if (!strpbrk(bad[i].path, "\n\r\t\x01\x1f\x7f")) /* the message names the path */
			tu_assert_msg_has(bad[i].path);
	}
	tu_assert_err(gw_repo_path_check(""), GW_EINVALID, "empty");
	tu_assert_err(gw_repo_path_check(NULL), GW_EINVALID, "empty");
	memset(longpath, 'p', 4097);
	longpath[4097] = '\0';
	tu_assert_err(gw_repo_path_check(longpath), GW_EINVALID, "too long");
}

static void expect_encode(const char *in, const char *want)
{
	char *enc = gw_repo_path_encode(in), *dec;
	assert_non_null(enc);
	assert_string_equal(enc, want);
	dec = gw_repo_path_decode(enc);
	if (!dec)
		print_error("decode('%s'): %s\n", enc, gw_error_message());
	assert_non_null(dec);
	assert_string_equal(dec, in);
	free(enc);
	free(dec);
}

static void test_encode_known(void **state)
{
	(void)state;
	expect_encode("a", "a");
	expect_encode("a.git", "a.git");
	expect_encode("group/project.git", "group%2Fproject.git");
	expect_encode("A_Z-09", "A_Z-09");
	expect_encode(".hidden", "%2Ehidden"); /* a leading '.' would make a hidden key component */
	expect_encode("..a", "%2E.a");
	expect_encode("a/.b", "a%2F.b");
	expect_encode("100%", "100%25");
	expect_encode("%25", "%2525");
	expect_encode("a b", "a%20b");
	expect_encode("a+b=c", "a%2Bb%3Dc");
	expect_encode("caf\xc3\xa9", "caf%C3%A9");
	expect_encode("~\xff", "%7E%FF");
}

/* A random valid repository path: components of bytes 0x20..0xff except '/', '\\', 0x7f. */
static void random_path(uint64_t *seed, char *out, size_t cap)
{
	size_t ncomp = 1 + (size_t)(tu_rand(seed) % 4), len = 0, c, i;
	for (c = 0; c < ncomp; c++) {
		size_t n = 1 + (size_t)(tu_rand(seed) % 12);
		size_t start = len;
		if (c)
			out[len++] = '/';
		start = len;
		for (i = 0; i < n && len + 2 < cap; i++) {
			unsigned char b;
			do {
				uint64_t r = tu_rand(seed);
				/* Bias towards the interesting bytes. */
				b = (r & 3) == 0 ? (unsigned char)".%_-"[(r >> 2) & 3] : (unsigned char)(0x20 + (r >> 8) % 0xe0);
			} while (b == '/' || b == '\\' || b == 0x7f);
			out[len++] = (char)b;
		}
		/* "." and ".." are not components. */
		if ((len - start == 1 && out[start] == '.') ||
		    (len - start == 2 && out[start] == '.' && out[start + 1] == '.'))
			out[len++] = 'x';
	}
	out[len] = '\0';
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void test_encode_roundtrip_random(void **state)
{
	enum { N = 3000 };
	uint64_t seed = 0x9e3779b97f4a7c15ULL;
	char **encs = calloc(N, sizeof(char *));
	char **paths = calloc(N, sizeof(char *));
	size_t i;
	(void)state;
	assert_non_null(encs);
	assert_non_null(paths);
	for (i = 0; i < N; i++) {
		char path[128], *dec;
		const char *p;
		random_path(&seed, path, sizeof(path));
		assert_int_equal(gw_repo_path_check(path), 0);
		encs[i] = gw_repo_path_encode(path);
		paths[i] = strdup(path);
		assert_non_null(encs[i]);
		/* One valid store key component: no '/', no leading '.', only key characters. */
		assert_null(strchr(encs[i], '/'));
		assert_int_equal(gw_store_key_check(encs[i]), 0);
		for (p = encs[i]; *p; p++)
			assert_true(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-%", *p) != NULL);
		dec = gw_repo_path_decode(encs[i]);
		if (!dec)
			print_error("decode('%s'): %s\n", encs[i], gw_error_message());
		assert_non_null(dec);
		assert_string_equal(dec, path);
		free(dec);
	}
	/* Injective: distinct paths never share an encoding. */
	qsort(paths, N, sizeof(char *), cmp_str);
	qsort(encs, N, sizeof(char *), cmp_str);
	for (i = 1; i < N; i++) {
		int same_enc = strcmp(encs[i - 1], encs[i]) == 0;
		if (same_enc) {
			char *a = gw_repo_path_decode(encs[i - 1]), *b = gw_repo_path_decode(encs[i]);
			assert_string_equal(a, b);
			free(a);
			free(b);
		}
	}
	for (i = 0; i < N; i++) {
		free(encs[i]);
		free(paths[i]);
	}
	free(encs);
	free(paths);
}

static void test_decode_rejects_malformed(void **state)
{
	static const char *bad[] = {
		"%zz", "%00", "%", "a%", "a%2", "%2", "%g0", "%0g", "a%00b", "..%2Fx", "%2E%2E%2Fx", "%2E%2E",
		"%2E", ".", "..", "%2Fabs", "a%2F%2Fb", "a%2F", "%5C", "a%5Cb", "%0A", "%7F", "a%2F..%2Fb",
		"a%2F.", "%01", "%%41", "%-1", "% 1", "",
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dec;
		gw_error_clear();
		dec = gw_repo_path_decode(bad[i]);
		if (dec)
			print_error("decode('%s') accepted as '%s'\n", bad[i], dec);
		assert_null(dec);
		assert_int_equal(gw_error_code(), GW_ECORRUPT);
		if (bad[i][0]) {
			char quoted[64];
			snprintf(quoted, sizeof(quoted), "'%s'", bad[i]);
			tu_assert_msg_has(quoted);
		}
	}
}

/*
 * gw_repo_path_decode is documented as the inverse of gw_repo_path_encode:
 * a component encode never produces (lower-case hex, a needlessly escaped
 * byte) must not decode, or two store keys name the same repository.
 */
static void test_decode_rejects_non_canonical(void **state)
{
	static const char *bad[] = {"%61", "group%2fproject.git", "a%2Eb", "%41BC", "a%2Db", "x%5F"};
	size_t i, accepted = 0;
	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *dec = gw_repo_path_decode(bad[i]);
		char *enc = dec ? gw_repo_path_encode(dec) : NULL;
		if (dec) {
			print_error("decode('%s') = '%s', but encode('%s') = '%s'\n", bad[i], dec, dec, enc);
			accepted++;
		}
		free(enc);
		free(dec);
	}
	assert_int_equal(accepted, 0);
}

/* ---- discovery ---- */

/* gw_repo_discover(root) lists exactly want, in that order. */
static void assert_discovered(const char *root, const char *const *want, size_t nwant)
{
	char **list;
	size_t n, i;
	assert_int_equal(gw_repo_discover(root, &list, &n), 0);
	for (i = 0; i < n; i++)
		fprintf(stderr, "  discovered %s\n", list[i]);
	assert_int_equal(n, nwant);
	for (i = 0; i < n; i++)
		assert_string_equal(list[i], want[i]);
	gw_repo_list_free(list, n);
}

/* A temporary git home, and a root holding the bare repositories a.git and group/b.git. */
static void discovery_root(char *root, size_t nroot, char *home, size_t nhome)
{
	tu_git_tmp(home, nhome);
	tu_mkdtemp(root, nroot);
	assert_int_equal(tu_sh("cd %s && git init -q --bare a.git && git init -q --bare group/b.git", root), 0);
}

static void test_discover(void **state)
{
	char root[128], home[128], *out;
	char **list;
	size_t n;
	static const char *want[] = {"a.git", "group/b.git", "group/sub/c.git", "outer.git", "plain/deep/er/d.git"};
	(void)state;
	discovery_root(root, sizeof(root), home, sizeof(home));
	assert_int_equal(tu_sh("cd %s && git init -q --bare group/sub/c.git && git init -q --bare .hidden/x.git && "
			       "git init -q --bare group/.e.git && git init -q --bare outer.git && "
			       "git init -q --bare outer.git/inner.git && mkdir -p plain/empty && "
			       "git init -q --bare plain/deep/er/d.git && git init -q worktree && echo x > file.txt",
			       root),
			 0);
	assert_discovered(root, want, sizeof(want) / sizeof(want[0]));

	/* gw_repo_is_bare. */
	out = malloc(512);
	snprintf(out, 512, "%s/a.git", root);
	assert_true(gw_repo_is_bare(out));
	snprintf(out, 512, "%s/worktree", root);
	assert_false(gw_repo_is_bare(out));
	snprintf(out, 512, "%s/worktree/.git", root);
	assert_true(gw_repo_is_bare(out)); /* it has the layout, only discovery skips dot-dirs */
	snprintf(out, 512, "%s/plain", root);
	assert_false(gw_repo_is_bare(out));
	snprintf(out, 512, "%s/missing", root);
	assert_false(gw_repo_is_bare(out));

	/* An empty root holds nothing; a missing one is an error naming it. */
	snprintf(out, 512, "%s/plain/empty", root);
	assert_int_equal(gw_repo_discover(out, &list, &n), 0);
	assert_int_equal(n, 0);
	gw_repo_list_free(list, n);
	snprintf(out, 512, "%s/nope", root);
	tu_assert_err(gw_repo_discover(out, &list, &n), GW_ENOTFOUND, out);
	assert_null(list);
	assert_int_equal(n, 0);
	snprintf(out, 512, "%s/file.txt", root);
	tu_assert_err(gw_repo_discover(out, &list, &n), GW_ENOTFOUND, out);
	/* The root itself being a repository does not make it list itself. */
	snprintf(out, 512, "%s/a.git", root);
	assert_int_equal(gw_repo_discover(out, &list, &n), 0);
	assert_int_equal(n, 0);
	gw_repo_list_free(list, n);
	free(out);
	tu_rmrf(root);
	tu_rmrf(home);
}

/*
 * Symlinks are not followed: two to the root inside it (a walk that followed
 * them would list 2^32 paths), one to a repository, one to a directory of
 * repositories inside the root, one out of it, one dangling. Each repository
 * is listed once, under its path without symlinks.
 */
static void test_discover_symlinks(void **state)
{
	char root[128], home[128], out[256];
	static const char *want[] = {"a.git", "group/b.git"};
	(void)state;
	discovery_root(root, sizeof(root), home, sizeof(home));
	assert_int_equal(tu_sh("cd %s && ln -s %s loop1 && ln -s .. group/loop2 && ln -s a.git alias.git && "
			       "ln -s group grp && git init -q --bare %s/outside.git && ln -s %s/outside.git out.git && "
			       "ln -s nowhere dangling && ln -s loop1 chain",
			       root, root, home, home),
			 0);
	assert_discovered(root, want, sizeof(want) / sizeof(want[0]));

	/* Named: the real path is the name; through a symlink it is refused, saying which name to use. */
	assert_int_equal(gw_repo_path_real(root, "a.git"), 0);
	assert_int_equal(gw_repo_path_real(root, "group/b.git"), 0);
	tu_assert_err(gw_repo_path_real(root, "alias.git"), GW_EINVALID,
		      "repository alias.git is reached through a symlink (alias.git): gitwal archives a repository "
		      "once, under its real path: name it a.git");
	tu_assert_err(gw_repo_path_real(root, "loop1/group/loop2/a.git"), GW_EINVALID,
		      "symlink (loop1): gitwal archives a repository once, under its real path: name it a.git");
	tu_assert_err(gw_repo_path_real(root, "group/loop2/group/b.git"), GW_EINVALID,
		      "symlink (group/loop2): gitwal archives a repository once, under its real path: name it "
		      "group/b.git");
	tu_assert_err(gw_repo_path_real(root, "grp/b.git"), GW_EINVALID, "name it group/b.git");
	tu_assert_err(gw_repo_path_real(root, "out.git"), GW_EINVALID,
		      "symlink (out.git) that does not lead to a repository inside the root");
	tu_assert_err(gw_repo_path_real(root, "dangling"), GW_EINVALID, "symlink (dangling) that does not lead");
	tu_assert_err(gw_repo_path_real(root, "missing.git"), GW_ENOTFOUND, "repository missing.git not found under");
	tu_assert_err(gw_repo_path_real(root, "../a.git"), GW_EINVALID, "'..'");
	/* Present: a bare repository under its real path only. */
	assert_true(gw_repo_present(root, "a.git"));
	assert_true(gw_repo_present(root, "group/b.git"));
	assert_false(gw_repo_present(root, "alias.git"));
	assert_false(gw_repo_present(root, "loop1/a.git"));
	assert_false(gw_repo_present(root, "out.git"));
	assert_false(gw_repo_present(root, "group"));
	assert_false(gw_repo_present(root, "missing.git"));
	snprintf(out, sizeof(out), "%s/alias.git", root);
	assert_true(gw_repo_is_bare(out)); /* the layout is there: only the name is refused */
	tu_rmrf(root);
	tu_rmrf(home);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_check_accepts),
		cmocka_unit_test(test_path_check_rejects),
		cmocka_unit_test(test_encode_known),
		cmocka_unit_test(test_encode_roundtrip_random),
		cmocka_unit_test(test_decode_rejects_malformed),
		cmocka_unit_test(test_decode_rejects_non_canonical),
		cmocka_unit_test(test_discover),
		cmocka_unit_test(test_discover_symlinks),
	};
	return tu_run_tests(tests);
}
