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
#include <sys/stat.h>
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

/* A valid set: a directory, an executable, a link, the config. */
static void sample(gw_files *f)
{
	static gw_file items[4];
	items[0] = (gw_file){"config", GW_FILE_REGULAR, 0644, (unsigned char *)"[core]\n", 7};
	items[1] = (gw_file){"custom_hooks", GW_FILE_DIR, 0755, NULL, 0};
	items[2] = (gw_file){"custom_hooks/out", GW_FILE_LINK, 0, (unsigned char *)"/etc", 4};
	items[3] = (gw_file){"custom_hooks/pre-receive", GW_FILE_REGULAR, 0755, (unsigned char *)"#!/bin/sh\n\1\xff", 12};
	f->items = items;
	f->n = 4;
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
	assert_int_equal(gw_files_collect(&f, src, REL), GW_EUNSUPPORTED);
	assert_non_null(strstr(gw_error_message(), REL ": config is not a file or a link"));
	assert_null(f.items);
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
	};
	return tu_run_tests(tests);
}
