/* Unit tests for src/format/pool.c: a pooled member's "pool" object and its alternates line (DESIGN.md 19). */
#include "testutil.h"

#include "format/pool.h"

#define WHAT "repos/m.git/00000000000000000009.full.manifest"

static void test_roundtrip(void **state)
{
	gw_pool_dep d = {"@pools/ab/cd/x.git", 40, 57}, back;
	json_t *v = gw_pool_dep_json(&d);
	char *text;
	(void)state;
	assert_non_null(v);
	text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	assert_string_equal(text, "{\"base_lsn\":40,\"lsn\":57,\"repository\":\"@pools/ab/cd/x.git\"}");
	assert_int_equal(gw_pool_dep_parse(&back, v, "@hashed/aa/bb/m.git", WHAT), 0);
	assert_string_equal(back.repository, d.repository);
	assert_int_equal(back.base_lsn, 40);
	assert_int_equal(back.lsn, 57);
	gw_pool_dep_dispose(&back);
	free(text);
	json_decref(v);
}

/* Each bad "pool" object is refused, naming the record and what was wrong. */
static void test_reject(void **state)
{
	static const struct {
		const char *json, *needle;
	} cases[] = {
		{"[]", "field 'pool.' is not an object"},
		{"{\"repository\":\"p.git\",\"base_lsn\":1}", "has 2 keys"},
		{"{\"repository\":\"p.git\",\"base_lsn\":1,\"lsn\":2,\"x\":0}", "has 4 keys"},
		{"{\"repo\":\"p.git\",\"base_lsn\":1,\"lsn\":2}", "'pool.repository' is missing"},
		{"{\"repository\":7,\"base_lsn\":1,\"lsn\":2}", "'pool.repository' is missing or not a string"},
		{"{\"repository\":\"p\\u0000.git\",\"base_lsn\":1,\"lsn\":2}", "'pool.repository' is missing"},
		{"{\"repository\":\"../p.git\",\"base_lsn\":1,\"lsn\":2}", "not a repository path for m.git's pool: '../p.git'"},
		{"{\"repository\":\"/p.git\",\"base_lsn\":1,\"lsn\":2}", "'/p.git'"},
		{"{\"repository\":\"m.git\",\"base_lsn\":1,\"lsn\":2}", "for m.git's pool: 'm.git'"},
		{"{\"repository\":\"p.git\",\"base_lsn\":-1,\"lsn\":2}", "'pool.base_lsn' is missing or not a non-negative"},
		{"{\"repository\":\"p.git\",\"base_lsn\":1,\"lsn\":\"2\"}", "'pool.lsn' is missing or not a non-negative"},
		{"{\"repository\":\"p.git\",\"base_lsn\":3,\"lsn\":2}", "'pool.base_lsn' is above pool.lsn"},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_error_t err;
		json_t *v = json_loads(cases[i].json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
		gw_pool_dep d;
		if (!v)
			fail_msg("case %zu: bad test JSON %s", i, cases[i].json);
		print_message("case %zu: %s\n", i, cases[i].json);
		tu_assert_err(gw_pool_dep_parse(&d, v, "m.git", WHAT), GW_ECORRUPT, cases[i].needle);
		tu_assert_msg_has(WHAT);
		assert_null(d.repository);
		json_decref(v);
	}
}

static void test_alternates_line(void **state)
{
	static const struct {
		const char *member, *pool, *line;
	} cases[] = {
		{"m.git", "p.git", "../../p.git/objects"},
		{"g/m.git", "p.git", "../../../p.git/objects"},
		/* GitLab's layout: five levels up from @hashed/aa/bb/<hash>.git/objects. */
		{"@hashed/aa/bb/m.git", "@pools/cc/dd/p.git", "../../../../../@pools/cc/dd/p.git/objects"},
	};
	size_t i;
	char *line;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(gw_pool_alternates_line(cases[i].member, cases[i].pool, &line), 0);
		assert_string_equal(line, cases[i].line);
		free(line);
	}
	tu_assert_err(gw_pool_alternates_line("m.git", "../p.git", &line), GW_EINVALID, "alternates of m.git");
	assert_null(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_reject),
		cmocka_unit_test(test_alternates_line),
	};
	return tu_run_tests(tests);
}
