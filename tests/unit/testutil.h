/*
 * Small helpers shared by the cmocka unit tests (header-only: every test_*.c
 * is its own executable). Everything is static inline so unused helpers do
 * not trip -Werror.
 */
#ifndef GITWAL_TESTUTIL_H
#define GITWAL_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gitwal/error.h"

/* A fresh directory under /tmp; path is at least 64 bytes. */
static inline void tu_mkdtemp(char *path, size_t n)
{
	snprintf(path, n, "/tmp/gitwal-unit-XXXXXX");
	assert_non_null(mkdtemp(path));
}

static inline int tu_rm_cb(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static inline void tu_rmrf(const char *path)
{
	if (path && path[0])
		nftw(path, tu_rm_cb, 16, FTW_DEPTH | FTW_PHYS);
}

/* Run a shell command (formatted); returns its exit status. */
static inline int tu_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline int tu_sh(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int st;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st != 0)
		fprintf(stderr, "command failed (%d): %s\n", st, cmd);
	return st;
}

/* Run a shell command and capture its stdout (malloc'd, NUL-terminated). */
static inline char *tu_sh_out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static inline char *tu_sh_out(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	FILE *p;
	char *buf = NULL;
	size_t len = 0, cap = 0, n;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (!(p = popen(cmd, "r")))
		return NULL;
	for (;;) {
		if (len + 4097 > cap) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		n = fread(buf + len, 1, 4096, p);
		if (n == 0)
			break;
		len += n;
	}
	if (!buf)
		buf = calloc(1, 1);
	buf[len] = '\0';
	if (pclose(p) != 0) {
		fprintf(stderr, "command failed: %s\n", cmd);
		free(buf);
		return NULL;
	}
	return buf;
}

static inline unsigned char *tu_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf;
	long n;
	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = 0;
	fclose(f);
	*len = (size_t)n;
	return buf;
}

static inline void tu_write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(buf, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* The current gitwal error message contains needle (printed on failure). */
#define tu_assert_msg_has(needle)                                                                              \
	do {                                                                                                   \
		const char *tu_m_ = gw_error_message();                                                        \
		if (!strstr(tu_m_, (needle))) {                                                                \
			print_error("error message \"%s\" does not contain \"%s\"\n", tu_m_, (needle));       \
			fail();                                                                                \
		}                                                                                              \
	} while (0)

/* rc equals the expected code and the message names needle. */
#define tu_assert_err(rc, code, needle)                                                                        \
	do {                                                                                                   \
		int tu_rc_ = (rc);                                                                             \
		if (tu_rc_ != (code))                                                                          \
			print_error("rc %d, expected %d; message: %s\n", tu_rc_, (int)(code),                  \
				    gw_error_message());                                                       \
		assert_int_equal(tu_rc_, (code));                                                              \
		tu_assert_msg_has(needle);                                                                     \
	} while (0)

/* Deterministic PRNG (xorshift64*). */
static inline uint64_t tu_rand(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545F4914F6CDD1DULL;
}

/* Isolate git from the user's configuration and give it an identity. */
static inline void tu_git_env(const char *home)
{
	setenv("HOME", home, 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	setenv("GIT_CONFIG_GLOBAL", "/dev/null", 1);
	setenv("GIT_AUTHOR_NAME", "Test", 1);
	setenv("GIT_AUTHOR_EMAIL", "test@example.invalid", 1);
	setenv("GIT_COMMITTER_NAME", "Test", 1);
	setenv("GIT_COMMITTER_EMAIL", "test@example.invalid", 1);
	setenv("GIT_AUTHOR_DATE", "2024-01-01T00:00:00Z", 1);
	setenv("GIT_COMMITTER_DATE", "2024-01-01T00:00:00Z", 1);
}

/* A fresh directory under /tmp (tmp, at least 64 bytes) with a home for git in it, and git isolated there. */
static inline void tu_git_tmp(char *tmp, size_t n)
{
	char home[256];
	tu_mkdtemp(tmp, n);
	snprintf(home, sizeof(home), "%s/home", tmp);
	assert_int_equal(mkdir(home, 0700), 0);
	tu_git_env(home);
}

/*
 * A bare repository root/rel (git, tu_git_env first) holding two commits of
 * an empty tree: main and HEAD at the first (c1), the second (c2, its
 * child) made but on no ref.
 */
static inline void tu_git_repo(const char *root, const char *rel, char c1[41], char c2[41])
{
	char *out;
	assert_int_equal(tu_sh("git init -q --bare %s/%s", root, rel), 0);
	out = tu_sh_out("cd %s/%s && t=$(git hash-object -t tree -w --stdin </dev/null) && "
			"a=$(git commit-tree $t -m one) && git update-ref refs/heads/main $a && "
			"git symbolic-ref HEAD refs/heads/main && echo $a && git commit-tree $t -p $a -m two",
			root, rel);
	assert_non_null(out);
	assert_int_equal(strlen(out), 82);
	memcpy(c1, out, 40);
	c1[40] = 0;
	memcpy(c2, out + 41, 40);
	c2[40] = 0;
	free(out);
}

/*
 * Run a group; TU_FILTER=<pattern> in the environment runs only the matching
 * tests (cmocka's filter), handy when one test aborts the process.
 */
#define tu_run_tests(tests)                                                                                    \
	(getenv("TU_FILTER") ? cmocka_set_test_filter(getenv("TU_FILTER")) : (void)0,                          \
	 cmocka_run_group_tests(tests, NULL, NULL))

#endif
