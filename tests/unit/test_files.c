/*
 * Unit tests for src/format/files.c: the paths a repository's files may
 * have, the manifest's "files" array written and read back, and every kind
 * of bad stored entry refused with a message naming the manifest and the
 * path; reading a repository and restoring into a directory without ever
 * following a link.
 */
#include "testutil.h"

#include "gitwal/error.h"
#include "gitwal/files.h"

#include <jansson.h>
#include <sys/socket.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define REL "g/r.git"
#define WHAT "repos/g%2Fr.git/00000000000000000007.full.manifest"

static void test_path_check(void **state)
{
	static const struct {
		const char *path, *why; /* why: part of the reason, NULL when accepted */
	} cases[] = {
		{"config", NULL},
		{"description", NULL},
		{"info/attributes", NULL},
		{"custom_hooks", NULL},
		{"custom_hooks/pre-receive.d/x", NULL},
		{"custom_hooks/.hidden", NULL},
		{"", "empty"},
		{"/etc/passwd", "absolute"},
		{"../x", "'..'"},
		{"custom_hooks/../../x", "'..'"},
		{"custom_hooks/./x", "'.'"},
		{"custom_hooks//x", "empty component"},
		{"custom_hooks/", "empty component"},
		{"hooks/pre-receive", "not config"},
		{"custom_hooksx", "not config"},
		{"info/exclude", "not config"},
		{"objects/info/alternates", "not config"},
	};
	char deep[GW_FILES_MAX_PATH + 2];
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *why = gw_files_path_check(cases[i].path);
		if (!cases[i].why) {
			if (why)
				fail_msg("'%s' refused: %s", cases[i].path, why);
		} else if (!why || !strstr(why, cases[i].why))
			fail_msg("'%s': expected a refusal with '%s', got %s", cases[i].path, cases[i].why,
				 why ? why : "none");
	}
	strcpy(deep, "custom_hooks");
	for (i = 0; i < GW_FILES_MAX_DEPTH; i++)
		strcat(deep, "/d");
	assert_non_null(strstr(gw_files_path_check(deep), "deep"));
	memset(deep, 'a', sizeof(deep) - 1);
	memcpy(deep, "custom_hooks/", 13);
	deep[sizeof(deep) - 1] = '\0';
	assert_non_null(strstr(gw_files_path_check(deep), "long"));
}

/* A valid set: a directory, an executable, a link, the config, a fifo gitwal could not keep. */
static void sample(gw_files *f)
{
	static gw_file items[5];
	items[0] = (gw_file){"config", GW_FILE_REGULAR, 0644, (unsigned char *)"[core]\n", 7};
	items[1] = (gw_file){"custom_hooks", GW_FILE_DIR, 0755, NULL, 0};
	items[2] = (gw_file){"custom_hooks/out", GW_FILE_LINK, 0, (unsigned char *)"/etc", 4};
	items[3] = (gw_file){"custom_hooks/pre-receive", GW_FILE_REGULAR, 0755, (unsigned char *)"#!/bin/sh\n\1\xff", 12};
	items[4] = (gw_file){"custom_hooks/queue", GW_FILE_SKIPPED, 0, (unsigned char *)"a fifo", 6};
	f->items = items;
	f->n = 5;
}

static json_t *valid_json(void)
{
	gw_files f;
	json_t *arr;
	sample(&f);
	assert_int_equal(gw_files_to_json(&f, &arr), 0);
	return arr;
}

static void test_roundtrip(void **state)
{
	gw_files in, out;
	json_t *arr = valid_json();
	size_t i;
	(void)state;
	sample(&in);
	assert_int_equal(gw_files_from_json(&out, arr, WHAT), 0);
	assert_int_equal(out.n, in.n);
	for (i = 0; i < in.n; i++) {
		assert_string_equal(out.items[i].path, in.items[i].path);
		assert_int_equal(out.items[i].type, in.items[i].type);
		assert_int_equal(out.items[i].mode, in.items[i].mode);
		assert_int_equal(out.items[i].size, in.items[i].size);
		if (in.items[i].size)
			assert_memory_equal(out.items[i].data, in.items[i].data, in.items[i].size);
	}
	gw_files_dispose(&out);
	json_decref(arr);
	/* The digest covers a skipped path and its reason: a change to either is archived. */
	{
		char a[65], b[65], c[65];
		assert_int_equal(gw_files_digest(&in, a), 0);
		in.n = 4;
		assert_int_equal(gw_files_digest(&in, b), 0);
		in.n = 5;
		in.items[4].data = (unsigned char *)"a socket";
		in.items[4].size = 8;
		assert_int_equal(gw_files_digest(&in, c), 0);
		in.items[4].data = (unsigned char *)"a fifo";
		in.items[4].size = 6;
		assert_string_not_equal(a, b);
		assert_string_not_equal(a, c);
	}
}

/* Entry i of a valid array given field = value (NULL: removed); the parse must fail naming `expect`. */
static void reject(size_t i, const char *field, json_t *value, const char *expect)
{
	json_t *arr = valid_json();
	gw_files out;
	int rc;
	if (value)
		json_object_set_new(json_array_get(arr, i), field, value);
	else
		json_object_del(json_array_get(arr, i), field);
	rc = gw_files_from_json(&out, arr, WHAT);
	if (rc != GW_ECORRUPT)
		fail_msg("entry %zu with %s changed: expected GW_ECORRUPT, got %d", i, field, rc);
	if (!strstr(gw_error_message(), WHAT) || !strstr(gw_error_message(), expect))
		fail_msg("entry %zu with %s changed: message lacks '%s' or the key: %s", i, field,
			 expect, gw_error_message());
	assert_null(out.items);
	json_decref(arr);
}

static void test_reject_entries(void **state)
{
	(void)state;
	reject(0, "path", json_string("../x"), "'../x'");
	reject(0, "path", json_string("/etc/passwd"), "'/etc/passwd' is absolute");
	reject(3, "path", json_string("custom_hooks/../../x"), "'custom_hooks/../../x'");
	reject(0, "path", json_string("hooks/update"), "'hooks/update'");
	reject(0, "path", json_stringn("config\0x", 8), "NUL");
	reject(0, "path", json_integer(1), "entry 0");
	reject(0, "path", NULL, "entry 0");
	reject(3, "path", json_string("custom_hooks/out"), "not sorted or repeats");
	reject(3, "path", json_string("custom_hooks/a"), "not sorted or repeats");
	/* Below a link: restoring it would write through the link. */
	reject(3, "path", json_string("custom_hooks/out/x"), "below an entry that is not a directory");
	reject(1, "type", json_string("fifo"), "unknown type");
	reject(1, "mode", json_integer(01755), "mode");
	reject(3, "mode", json_integer(-1), "mode");
	reject(3, "mode", NULL, "mode");
	reject(3, "data", json_string("!!!!!!!!!!!!!!!!"), "not base64");
	reject(3, "data", json_string("AAAA"), "length does not match");
	reject(3, "size", json_integer(13), "length does not match");
	reject(3, "size", json_integer(GW_FILES_MAX_FILE + 1), "larger");
	reject(3, "sha256", json_string("00"), "sha256");
	reject(3, "data", NULL, "lacks");
	reject(2, "type", json_string("dir"), "mode");
	/* A skipped path: a reason, printable and bounded, and nothing of a kept entry. */
	reject(4, "reason", NULL, "without a reason");
	reject(4, "reason", json_integer(1), "without a reason");
	reject(4, "reason", json_string(""), "empty or too long");
	reject(4, "reason", json_stringn("a\0fifo", 6), "not printable");
	reject(4, "reason", json_string("a \033[2Jfifo"), "not printable");
	reject(4, "data", json_string("AAAA"), "has a mode, size, sha256 or data");
	reject(4, "mode", json_integer(0644), "has a mode, size, sha256 or data");
	reject(4, "size", json_integer(0), "has a mode, size, sha256 or data");
	{
		char longer[GW_FILES_MAX_REASON + 2];
		memset(longer, 'x', sizeof(longer) - 1);
		longer[sizeof(longer) - 1] = '\0';
		reject(4, "reason", json_string(longer), "empty or too long");
		longer[GW_FILES_MAX_REASON] = '\0'; /* at the bound: accepted */
		{
			json_t *arr = valid_json();
			gw_files out;
			json_object_set_new(json_array_get(arr, 4), "reason", json_string(longer));
			assert_int_equal(gw_files_from_json(&out, arr, WHAT), 0);
			assert_int_equal(out.items[4].size, GW_FILES_MAX_REASON);
			gw_files_dispose(&out);
			json_decref(arr);
		}
	}
	/* Nothing is listed below a skipped path. */
	{
		json_t *arr = valid_json(), *below = json_deep_copy(json_array_get(arr, 3));
		gw_files out;
		json_object_set_new(below, "path", json_string("custom_hooks/queue/x"));
		json_array_append_new(arr, below);
		assert_int_equal(gw_files_from_json(&out, arr, WHAT), GW_ECORRUPT);
		assert_non_null(strstr(gw_error_message(), "'custom_hooks/queue/x' lies below an entry"));
		json_decref(arr);
	}
	{
		/* A NUL in a link's target, with a matching size and digest. */
		gw_file nul = {"custom_hooks/l", GW_FILE_LINK, 0, (unsigned char *)"\0etc", 4};
		gw_files one = {&nul, 1, 1}, out;
		json_t *arr;
		assert_int_equal(gw_files_to_json(&one, &arr), 0);
		assert_int_equal(gw_files_from_json(&out, arr, WHAT), GW_ECORRUPT);
		assert_non_null(strstr(gw_error_message(), "unusable target"));
		json_decref(arr);
	}
	{
		json_t *arr = json_object();
		gw_files out;
		assert_int_equal(gw_files_from_json(&out, arr, WHAT), GW_ECORRUPT);
		assert_non_null(strstr(gw_error_message(), "not an array"));
		json_decref(arr);
	}
}

/* The files of a real directory read back without following links, then installed elsewhere, equal. */
static void test_collect_install(void **state)
{
	char src[256], dst[256], outside[256];
	gw_files f, again;
	char *a, *b;
	(void)state;
	tu_mkdtemp(src, sizeof(src));
	tu_mkdtemp(dst, sizeof(dst));
	tu_mkdtemp(outside, sizeof(outside));
	assert_int_equal(tu_sh("cd %s && mkdir -p custom_hooks/d info && echo a > config && echo h > custom_hooks/d/x"
			       " && chmod 0751 custom_hooks/d/x && chmod 0500 custom_hooks/d && echo s > %s/secret"
			       " && ln -s %s custom_hooks/out && echo attr > info/attributes",
			       src, outside, outside),
			 0);
	assert_int_equal(gw_files_collect(&f, src, REL), 0);
	assert_int_equal(f.n, 6); /* config, custom_hooks, d, d/x, out, info/attributes */
	assert_int_equal(f.items[4].type, GW_FILE_LINK);
	assert_string_equal(f.items[4].path, "custom_hooks/out");
	assert_int_equal(gw_files_install(&f, dst, REL), 0);
	a = tu_sh_out("cd %s && find config info custom_hooks -printf '%%p %%m %%y %%l\\n' | sort", src);
	b = tu_sh_out("cd %s && find config info custom_hooks -printf '%%p %%m %%y %%l\\n' | sort", dst);
	assert_string_equal(a, b);
	free(a);
	free(b);
	assert_int_equal(gw_files_collect(&again, dst, REL), 0);
	assert_int_equal(again.n, f.n);
	gw_files_dispose(&again);
	/* Installing again over the link: a path through it is refused, the outside left alone. */
	{
		gw_file through = {"custom_hooks/out/secret", GW_FILE_REGULAR, 0644, (unsigned char *)"x", 1};
		gw_files one = {&through, 1, 1};
		assert_int_not_equal(gw_files_install(&one, dst, REL), 0);
		assert_int_equal(tu_sh("test \"$(cat %s/secret)\" = s", outside), 0);
	}
	gw_files_dispose(&f);
	tu_sh("chmod -R u+w %s %s", src, dst);
	tu_rmrf(src);
	tu_rmrf(dst);
	tu_rmrf(outside);
}

/* Odd shapes: info a file (no attributes then), config a directory (refused, naming it). */
static void test_collect_shapes(void **state)
{
	char src[256];
	gw_files f;
	(void)state;
	tu_mkdtemp(src, sizeof(src));
	assert_int_equal(tu_sh("cd %s && echo x > info && echo c > config", src), 0);
	assert_int_equal(gw_files_collect(&f, src, REL), 0);
	assert_int_equal(f.n, 1);
	assert_string_equal(f.items[0].path, "config");
	gw_files_dispose(&f);
	assert_int_equal(tu_sh("cd %s && rm config && mkdir config", src), 0);
	assert_int_equal(gw_files_collect(&f, src, REL), 0);
	assert_int_equal(f.n, 1);
	assert_int_equal(f.items[0].type, GW_FILE_SKIPPED);
	assert_string_equal((const char *)f.items[0].data, "a directory");
	gw_files_dispose(&f);
	tu_rmrf(src);
}

/* The entry of path in f (it must be there). */
static const gw_file *entry(const gw_files *f, const char *path)
{
	size_t i;
	for (i = 0; i < f->n; i++)
		if (!strcmp(f->items[i].path, path))
			return &f->items[i];
	fail_msg("no entry %s", path);
	return NULL;
}

static void assert_skipped(const gw_files *f, const char *path, const char *reason)
{
	const gw_file *e = entry(f, path);
	if (e->type != GW_FILE_SKIPPED || strcmp((const char *)e->data, reason) != 0)
		fail_msg("%s: expected skipped (%s), got type %d (%s)", path, reason, (int)e->type,
			 e->type == GW_FILE_SKIPPED ? (const char *)e->data : "");
	assert_int_equal(e->size, strlen(reason));
}

/* Nothing is listed below dir. */
static void assert_nothing_below(const gw_files *f, const char *dir)
{
	size_t i, len = strlen(dir);
	for (i = 0; i < f->n; i++)
		if (!strncmp(f->items[i].path, dir, len) && f->items[i].path[len] == '/')
			fail_msg("%s listed below the skipped %s", f->items[i].path, dir);
}

/*
 * What gitwal cannot keep is a skipped path, never a failure: a fifo, a
 * socket, a file above 1 MiB, files beyond 16 MiB in all, a directory holding
 * a path too deep (unreadable ones: test_collect_unreadable).
 * The rest is kept, the set round-trips, and install creates nothing for
 * a skipped path.
 */
static void test_collect_skipped(void **state)
{
	char src[256], dst[256], sock[400];
	struct sockaddr_un sa;
	gw_files f, back;
	json_t *arr;
	size_t i;
	int fd;
	(void)state;
	tu_mkdtemp(src, sizeof(src));
	tu_mkdtemp(dst, sizeof(dst));
	assert_int_equal(tu_sh("cd %s && mkdir -p custom_hooks/big custom_hooks/deep && echo c > config"
			       " && mkfifo custom_hooks/queue && echo ok > custom_hooks/post-receive"
			       " && head -c 2097152 /dev/zero > custom_hooks/huge"
			       " && for i in $(seq 1 17); do head -c 1048576 /dev/zero > custom_hooks/big/f$i; done"
			       " && mkdir -p custom_hooks/deep/$(seq -s / 1 31) && touch custom_hooks/deep/$(seq -s / 1 31)/x",
			       src),
			 0);
	snprintf(sock, sizeof(sock), "%s/custom_hooks/sock", src);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	assert_true(strlen(sock) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, sock);
	assert_true((fd = socket(AF_UNIX, SOCK_STREAM, 0)) >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	assert_int_equal(gw_files_collect(&f, src, REL), 0);
	assert_skipped(&f, "custom_hooks/queue", "a fifo");
	assert_skipped(&f, "custom_hooks/sock", "a socket");
	assert_skipped(&f, "custom_hooks/huge", "2097152 bytes, above the 1048576 gitwal keeps");
	/* Beside config's bytes 15 of the 17 fit (which ones, the walk's order decides): two are beyond the total. */
	{
		size_t beyond = 0;
		for (i = 0; i < f.n; i++)
			if (!strncmp(f.items[i].path, "custom_hooks/big/", 17) && f.items[i].type == GW_FILE_SKIPPED) {
				assert_string_equal((const char *)f.items[i].data, "beyond the 16 MiB all files may hold");
				beyond++;
			}
		assert_int_equal(beyond, 2);
	}
	/* custom_hooks/deep/1/.../31 is 33 components: its directory (32) holds it, so it is skipped whole. */
	{
		char *dir = tu_sh_out("printf custom_hooks/deep/%%s $(seq -s / 1 30)");
		assert_skipped(&f, dir, "holds paths deeper than 32 components");
		assert_nothing_below(&f, dir);
		free(dir);
	}
	assert_int_equal(entry(&f, "custom_hooks/post-receive")->type, GW_FILE_REGULAR);
	assert_int_equal(entry(&f, "config")->type, GW_FILE_REGULAR);
	assert_int_equal(gw_files_nskipped(&f), 6);

	/* Written and read back: the same, the skipped paths with their reasons. */
	assert_int_equal(gw_files_to_json(&f, &arr), 0);
	assert_int_equal(gw_files_from_json(&back, arr, WHAT), 0);
	assert_int_equal(back.n, f.n);
	assert_skipped(&back, "custom_hooks/queue", "a fifo");
	json_decref(arr);
	/* Only the skipped ones, copied. */
	{
		gw_files only;
		assert_int_equal(gw_files_copy_skipped(&back, &only), 0);
		assert_int_equal(only.n, gw_files_nskipped(&f));
		assert_skipped(&only, "custom_hooks/sock", "a socket");
		gw_files_dispose(&only);
	}
	/* Installed: nothing at all for a skipped path. */
	assert_int_equal(gw_files_install(&back, dst, REL), 0);
	assert_int_equal(tu_sh("cd %s && test -f custom_hooks/post-receive && ! test -e custom_hooks/queue && "
			       "! test -e custom_hooks/sock && ! test -e custom_hooks/huge && ! test -e custom_hooks/deep/1/2/3/4/5/6/7/8/9/10/11/12/13/14/15/16/17/18/19/20/21/22/23/24/25/26/27/28/29/30",
			       dst),
			 0);
	gw_files_dispose(&back);
	gw_files_dispose(&f);
	tu_rmrf(src);
	tu_rmrf(dst);
}

/*
 * Too many entries: the directory reaching beyond the bound is skipped whole
 * (its entries dropped), and its siblings are still kept.
 */
static void test_collect_entries(void **state)
{
	char src[256];
	gw_files f;
	(void)state;
	tu_mkdtemp(src, sizeof(src));
	assert_int_equal(tu_sh("cd %s && mkdir -p custom_hooks/many && cd custom_hooks/many && "
			       "seq 1 %u | xargs touch && echo x > ../after",
			       src, GW_FILES_MAX_ENTRIES),
			 0);
	assert_int_equal(gw_files_collect(&f, src, REL), 0);
	assert_skipped(&f, "custom_hooks/many", "beyond 10000 entries");
	assert_nothing_below(&f, "custom_hooks/many");
	assert_int_equal(entry(&f, "custom_hooks/after")->type, GW_FILE_REGULAR);
	gw_files_dispose(&f);
	tu_rmrf(src);
}

/*
 * Runs fn(src) as a user the files do not belong to: as root (who reads
 * everything), in a child that became nobody; else here. fn returns NULL or
 * what went wrong (no cmocka assertion in a child: it would go on running
 * the other tests there).
 */
static void as_other_user(const char *(*fn)(const char *), const char *src)
{
	const char *bad;
	pid_t pid;
	int status;
	if (geteuid() != 0) {
		if ((bad = fn(src)))
			fail_msg("%s", bad);
		return;
	}
	assert_true((pid = fork()) >= 0);
	if (pid == 0) {
		if (setgroups(0, NULL) < 0 || setgid(65534) < 0 || setuid(65534) < 0)
			_exit(2);
		if ((bad = fn(src))) {
			fprintf(stderr, "as nobody: %s\n", bad);
			_exit(1);
		}
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

/* A skipped path's reason is why, else what was found instead. */
static const char *skipped_as(const gw_files *f, const char *path, const char *why)
{
	size_t i;
	for (i = 0; i < f->n; i++)
		if (!strcmp(f->items[i].path, path))
			return f->items[i].type == GW_FILE_SKIPPED && !strcmp((const char *)f->items[i].data, why)
				       ? NULL
				       : "a path is not skipped for the reason expected";
	return "a path is missing";
}

static const char *unreadable_paths(const char *src)
{
	gw_files f;
	const char *bad;
	size_t i;
	if (gw_files_collect(&f, src, REL) != 0)
		return "the walk failed";
	if (!(bad = skipped_as(&f, "custom_hooks/secret", "unreadable: Permission denied")) &&
	    !(bad = skipped_as(&f, "custom_hooks/private", "unreadable: Permission denied"))) {
		for (i = 0; i < f.n; i++)
			if (!strncmp(f.items[i].path, "custom_hooks/private/", 21))
				bad = "something is listed below the unreadable directory";
		if (f.n != 5 || strcmp(f.items[0].path, "config") || f.items[0].type != GW_FILE_REGULAR)
			bad = "not config, custom_hooks, its hook and the two unreadable paths";
	}
	gw_files_dispose(&f);
	return bad;
}

static const char *unreadable_repo(const char *src)
{
	gw_files f;
	const char *bad = NULL;
	if (gw_files_collect(&f, src, REL) != GW_EIO)
		return "the walk did not fail as a whole";
	if (!strstr(gw_error_message(), REL ": cannot read its directory"))
		bad = "the error does not name the repository";
	else if (f.n != 4 || (bad = skipped_as(&f, "config", "unreadable: Permission denied")))
		bad = bad ? bad : "not each path, skipped";
	gw_files_dispose(&f);
	return bad;
}

/*
 * Unreadable (EACCES, as a user other than root: root reads anything): a
 * file and a directory are skipped paths; the repository's directory itself
 * fails the walk as a whole (GW_EIO, naming it), each path still skipped.
 */
static void test_collect_unreadable(void **state)
{
	char src[256];
	(void)state;
	tu_mkdtemp(src, sizeof(src));
	assert_int_equal(tu_sh("cd %s && chmod 0755 . && echo c > config && mkdir -p custom_hooks/private && "
			       "echo x > custom_hooks/private/x && echo s > custom_hooks/secret && echo h > custom_hooks/h && "
			       "chmod 0755 custom_hooks && chmod 0644 config custom_hooks/h && chmod 0700 custom_hooks/private && "
			       "chmod 0000 custom_hooks/secret",
			       src),
			 0);
	as_other_user(unreadable_paths, src);
	assert_int_equal(tu_sh("chmod 0000 %s", src), 0);
	as_other_user(unreadable_repo, src);
	tu_sh("chmod 0700 %s", src);
	tu_rmrf(src);
}
int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_path_check),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_reject_entries),
		cmocka_unit_test(test_collect_install),
		cmocka_unit_test(test_collect_shapes),
		cmocka_unit_test(test_collect_skipped),
		cmocka_unit_test(test_collect_entries),
		cmocka_unit_test(test_collect_unreadable),
	};
	return tu_run_tests(tests);
}
