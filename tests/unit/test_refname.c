/*
 * Unit tests for src/format/refname.c: the one rule for a recorded ref. What
 * the refs reader (the writer of full backups and segments) accepts from a
 * real repository, the manifest and segment parsers accept back, and what it
 * refuses they refuse: a HEAD the writer accepts the reader must accept, and
 * the other way round.
 */
#include "testutil.h"

#include "backup/refs_read.h"
#include "format/refname.h"
#include "gitwal/manifest.h"
#include "gitwal/segment.h"

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define SHA_1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

static char tmp[128], repo[256];

static int setup(void **state)
{
	(void)state;
	tu_mkdtemp(tmp, sizeof(tmp));
	tu_git_env(tmp);
	snprintf(repo, sizeof(repo), "%s/r.git", tmp);
	return tu_sh("cd %s && git init -q --bare r.git && cd r.git && "
		     "git update-ref refs/heads/main $(git commit-tree $(git mktree < /dev/null) -m x) && "
		     "mkdir -p refs/sym",
		     tmp);
}

static int teardown(void **state)
{
	(void)state;
	tu_rmrf(tmp);
	return 0;
}

/* The writer: the refs reader on the repository with name holding "ref: target". */
static int writer_accepts(const char *name, const char *target)
{
	gw_refs_reader *rd;
	gw_refs_view v;
	gw_ref r;
	char path[512], text[300];
	int rc;
	snprintf(path, sizeof(path), "%s/%s", repo, name);
	snprintf(text, sizeof(text), "ref: %s\n", target);
	tu_write_file(path, text, strlen(text));
	assert_int_equal(gw_refs_reader_new(&rd, repo, "r.git", 20), 0);
	rc = gw_refs_read(rd, &v);
	if (rc == 0) {
		/* Accepted as written: the target is what gets recorded. */
		if (!strcmp(name, "HEAD"))
			r = v.head;
		else
			assert_int_equal(gw_refs_view_find(&v, name, &r), 1);
		assert_non_null(r.symbolic);
		assert_string_equal(r.symbolic, target);
		gw_refs_view_dispose(&v);
	} else {
		assert_int_equal(rc, GW_ECORRUPT);
		assert_non_null(strstr(gw_error_message(), "r.git"));
	}
	gw_refs_reader_free(rd);
	if (!strcmp(name, "HEAD"))
		tu_write_file(path, "ref: refs/heads/main\n", strlen("ref: refs/heads/main\n"));
	else
		assert_int_equal(unlink(path), 0);
	return rc == 0;
}

/* The manifest parser, on a manifest recording the ref. */
static int manifest_accepts(const char *name, const char *target)
{
	gw_manifest m, out;
	gw_manifest_ref refs[2] = {{"refs/heads/main", OID_A, NULL}, {NULL, "", NULL}};
	char *text;
	size_t len;
	int rc;
	memset(&m, 0, sizeof(m));
	m.repository = "r.git";
	m.lsn = 1;
	m.time_us = 1764090295123456LL;
	snprintf(m.object_format, sizeof(m.object_format), "sha1");
	m.head.name = "HEAD";
	m.head.symbolic = "refs/heads/main";
	m.refs = refs;
	m.nrefs = 1;
	if (!strcmp(name, "HEAD")) {
		m.head.symbolic = (char *)target;
	} else {
		refs[1].name = (char *)name;
		refs[1].symbolic = (char *)target;
		m.nrefs = 2;
	}
	m.bundle.key = "repos/r.git/00000000000000000001.full.bundle";
	m.bundle.size = 100;
	memcpy(m.bundle.sha256, SHA_1, 65);
	m.pack_offset = 50;
	m.objects = 2;
	snprintf(m.pack_checksum, sizeof(m.pack_checksum), "%s", OID_A);
	m.idx.key = "repos/r.git/00000000000000000001.full.idx";
	m.idx.size = 100;
	memcpy(m.idx.sha256, SHA_1, 65);
	m.tool = "gitwal test";
	assert_int_equal(gw_manifest_write(&m, &text, &len), 0);
	rc = gw_manifest_parse(&out, text, len, "test.manifest");
	free(text);
	if (rc == 0)
		gw_manifest_dispose(&out);
	else
		assert_int_equal(rc, GW_ECORRUPT);
	return rc == 0;
}

/* The segment parser, on a segment retargeting the ref (HEAD: from refs/heads/main; another: created). */
static int segment_accepts(const char *name, const char *target)
{
	gw_update u = {GW_UPDATE_SYMREF, 1000, (char *)name, "", "", NULL, (char *)target};
	gw_segment_header h, out;
	unsigned char *enc;
	size_t len, need;
	int rc;
	u.old_target = !strcmp(name, "HEAD") ? "refs/heads/main" : "";
	memset(&h, 0, sizeof(h));
	h.repository = "r.git";
	h.lsn = 2;
	h.base_lsn = 1;
	memset(h.prev_sha256, 'a', 64);
	h.time_first_us = h.time_last_us = 1000;
	h.updates = &u;
	h.nupdates = 1;
	assert_int_equal(gw_segment_header_encode(&h, &enc, &len), 0);
	rc = gw_segment_header_decode(&out, enc, len, &need, "test.seg");
	free(enc);
	if (rc == 0)
		gw_segment_header_dispose(&out);
	else
		assert_int_equal(rc, GW_ECORRUPT);
	return rc == 0;
}

static void test_writer_and_readers_agree(void **state)
{
	static const struct {
		const char *name, *target;
		int valid;
	} cases[] = {
		{"HEAD", "refs/heads/main", 1},
		{"HEAD", "refs/heads/unborn", 1},
		{"HEAD", "refs/heads/.invalid", 0}, /* a reftable repository's HEAD */
		{"HEAD", "ORIG_HEAD", 0},           /* git: "refusing to point HEAD outside of refs/" */
		{"HEAD", "main", 0},
		{"HEAD", "refs/heads/a..b", 0},
		{"HEAD", "refs/heads/x.lock", 0},
		{"refs/sym/x", "refs/heads/main", 1},
		{"refs/sym/x", "refs/heads/nowhere", 1},
		{"refs/sym/x", "ORIG_HEAD", 1}, /* git allows a symbolic ref outside refs/ to point there */
		{"refs/sym/x", "FETCH_HEAD", 1},
		{"refs/sym/x", "HEAD", 1},
		{"refs/sym/x", "refs/heads/x..y", 0},
		{"refs/sym/x", "refs/heads/.invalid", 0},
		{"refs/sym/x", "nope", 0},
		{"refs/sym/x", "refs/heads/a b", 0},
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *name = cases[i].name, *target = cases[i].target;
		int rule = gw_ref_invalid(name, target) == NULL, w = writer_accepts(name, target),
		    m = manifest_accepts(name, target), s = segment_accepts(name, target);
		if (rule != cases[i].valid || w != rule || m != rule || s != rule) {
			print_error("%s -> %s: expected %d; rule %d, refs reader %d, manifest %d, segment %d\n", name,
				    target, cases[i].valid, rule, w, m, s);
			fail();
		}
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_null(gw_ref_invalid("HEAD", NULL));
	assert_null(gw_ref_invalid("refs/heads/main", NULL));
	assert_string_equal(gw_ref_invalid("refs/heads/a..b", NULL), "is not a valid ref name");
	assert_string_equal(gw_ref_invalid("ORIG_HEAD", NULL), "is not a valid ref name"); /* not restored as a ref */
	assert_string_equal(gw_ref_invalid("heads/main", "refs/heads/main"), "is not a valid ref name");
	assert_string_equal(gw_ref_invalid("HEAD", "ORIG_HEAD"), "does not point at a valid ref name under refs/");
	assert_string_equal(gw_ref_invalid("refs/x", "a..b"), "does not point at a valid ref name");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writer_and_readers_agree),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
