/* Unit tests for src/format/manifest.c: writing, parsing and rejecting manifests. */
#include "testutil.h"

#include "gitwal/manifest.h"

#include <jansson.h>

#define OID_A "0123456789abcdef0123456789abcdef01234567"
#define OID_B "89abcdef0123456789abcdef0123456789abcdef"
#define SHA_1 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SHA_2 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define WHAT "repos/g%2Fr.git/00000000000000000007.full.manifest"

static gw_manifest_ref refs_template[] = {
	{"refs/heads/main", OID_A, NULL},
	{"refs/heads/topic", OID_B, NULL},
	{"refs/remotes/origin/HEAD", OID_A, "refs/remotes/origin/main"},
	{"refs/symref/dangling", "", "refs/heads/nowhere"},
	{"refs/tags/v1.0", OID_B, NULL},
};

static void sample(gw_manifest *m, int head_mode)
{
	memset(m, 0, sizeof(*m));
	m->repository = "g/r.git";
	m->lsn = 7;
	m->time_us = 1764090295123456LL;
	snprintf(m->object_format, sizeof(m->object_format), "sha1");
	m->head.name = "HEAD";
	switch (head_mode) {
	case 0: /* symbolic */
		snprintf(m->head.oid, sizeof(m->head.oid), "%s", OID_A);
		m->head.symbolic = "refs/heads/main";
		break;
	case 1: /* detached */
		snprintf(m->head.oid, sizeof(m->head.oid), "%s", OID_B);
		break;
	default: /* unborn */
		m->head.symbolic = "refs/heads/unborn";
		break;
	}
	m->refs = refs_template;
	m->nrefs = sizeof(refs_template) / sizeof(refs_template[0]);
	m->bundle.key = "repos/g%2Fr.git/00000000000000000007.full.bundle";
	m->bundle.size = 123456;
	memcpy(m->bundle.sha256, SHA_1, 65);
	m->pack_offset = 200;
	m->objects = 999;
	snprintf(m->pack_checksum, sizeof(m->pack_checksum), "%s", OID_B);
	m->idx.key = "repos/g%2Fr.git/00000000000000000007.full.idx";
	m->idx.size = 4096;
	memcpy(m->idx.sha256, SHA_2, 65);
	m->tool = "gitwal 0.1.0";
}

static void assert_ref_equal(const gw_manifest_ref *a, const gw_manifest_ref *b)
{
	assert_string_equal(a->name, b->name);
	assert_string_equal(a->oid, b->oid);
	if (a->symbolic || b->symbolic) {
		assert_non_null(a->symbolic);
		assert_non_null(b->symbolic);
		assert_string_equal(a->symbolic, b->symbolic);
	}
}

static void test_roundtrip(void **state)
{
	int mode;
	(void)state;
	for (mode = 0; mode < 3; mode++) {
		gw_manifest in, out;
		char *text;
		size_t len, i;
		int rc;
		sample(&in, mode);
		assert_int_equal(gw_manifest_write(&in, &text, &len), 0);
		assert_int_equal(len, strlen(text));
		assert_non_null(strstr(text, "\"magic\":\"gitwal-full-backup\""));
		assert_non_null(strstr(text, "\"version\":1"));
		assert_non_null(strstr(text, "\"time\":\"2025-11-25T17:04:55.123456Z\""));
		rc = gw_manifest_parse(&out, text, len, WHAT);
		if (rc)
			print_error("%s\n%s\n", gw_error_message(), text);
		assert_int_equal(rc, 0);
		assert_string_equal(out.repository, in.repository);
		assert_int_equal(out.lsn, in.lsn);
		assert_int_equal(out.time_us, in.time_us);
		assert_string_equal(out.object_format, "sha1");
		assert_int_equal(out.hash_len, 20);
		assert_ref_equal(&out.head, &in.head);
		assert_int_equal(out.nrefs, in.nrefs);
		for (i = 0; i < in.nrefs; i++)
			assert_ref_equal(&out.refs[i], &in.refs[i]);
		assert_string_equal(out.bundle.key, in.bundle.key);
		assert_int_equal(out.bundle.size, in.bundle.size);
		assert_string_equal(out.bundle.sha256, in.bundle.sha256);
		assert_int_equal(out.pack_offset, in.pack_offset);
		assert_int_equal(out.objects, in.objects);
		assert_string_equal(out.pack_checksum, in.pack_checksum);
		assert_string_equal(out.idx.key, in.idx.key);
		assert_int_equal(out.idx.size, in.idx.size);
		assert_string_equal(out.idx.sha256, in.idx.sha256);
		assert_string_equal(out.tool, in.tool);
		gw_manifest_dispose(&out);
		assert_null(out.repository);
		free(text);
	}
}

static void test_roundtrip_edges(void **state)
{
	gw_manifest in, out;
	char *text;
	size_t len;
	(void)state;
	sample(&in, 0);
	in.nrefs = 0; /* an empty repository */
	in.repository = "caf\xc3\xa9/\xe2\x98\x83 x.git";
	in.lsn = (uint64_t)INT64_MAX;
	in.time_us = 0;
	in.bundle.size = (uint64_t)INT64_MAX;
	in.pack_offset = (uint64_t)INT64_MAX - 32;
	in.objects = 0;
	in.tool = NULL;
	assert_int_equal(gw_manifest_write(&in, &text, &len), 0);
	/* ASCII only on the wire. */
	for (size_t i = 0; i < len; i++)
		assert_true((unsigned char)text[i] < 0x80);
	assert_int_equal(gw_manifest_parse(&out, text, len, WHAT), 0);
	assert_string_equal(out.repository, in.repository);
	assert_int_equal(out.lsn, in.lsn);
	assert_int_equal(out.nrefs, 0);
	assert_null(out.refs);
	assert_int_equal(out.bundle.size, in.bundle.size);
	assert_int_equal(out.pack_offset, in.pack_offset);
	assert_string_equal(out.tool, "gitwal");
	gw_manifest_dispose(&out);
	free(text);
}

/* ---- rejection, by editing a valid manifest as JSON ---- */

static json_t *valid_json(void)
{
	gw_manifest m;
	char *text;
	size_t len;
	json_error_t err;
	json_t *root;
	sample(&m, 0);
	assert_int_equal(gw_manifest_write(&m, &text, &len), 0);
	root = json_loadb(text, len, 0, &err);
	assert_non_null(root);
	free(text);
	return root;
}

static void expect_reject_text(const char *text, size_t len, int code, const char *needle)
{
	gw_manifest m;
	int rc;
	memset(&m, 0x5a, sizeof(m));
	rc = gw_manifest_parse(&m, text, len, WHAT);
	if (rc != code || !strstr(gw_error_message(), needle) || !strstr(gw_error_message(), WHAT))
		print_error("input: %.*s\nrc %d (want %d), message: %s\nwanted it to name: %s\n", (int)(len > 600 ? 600 : len),
			    text, rc, code, gw_error_message(), needle);
	assert_int_equal(rc, code);
	tu_assert_msg_has(needle);
	tu_assert_msg_has(WHAT);
	/* Nothing is left allocated or dangling on failure. */
	assert_null(m.repository);
	assert_null(m.refs);
	assert_null(m.bundle.key);
	assert_null(m.idx.key);
	assert_null(m.tool);
}

static void expect_reject(json_t *root, int code, const char *needle)
{
	char *text = json_dumps(root, JSON_COMPACT);
	assert_non_null(text);
	expect_reject_text(text, strlen(text), code, needle);
	free(text);
	json_decref(root);
}

static json_t *obj_at(json_t *root, const char *path)
{
	/* "a.b": nested objects; "refs[2]": array index. */
	char buf[128], *tok, *save = NULL;
	json_t *cur = root;
	snprintf(buf, sizeof(buf), "%s", path);
	for (tok = strtok_r(buf, ".", &save); tok; tok = strtok_r(NULL, ".", &save)) {
		char *br = strchr(tok, '[');
		if (br) {
			*br = '\0';
			cur = json_object_get(cur, tok);
			cur = json_array_get(cur, (size_t)atoi(br + 1));
		} else {
			cur = json_object_get(cur, tok);
		}
		assert_non_null(cur);
	}
	return cur;
}

/* Set field `field` of the object at `path` ("" for the root) to v (NULL: delete it). */
static void set_field(const char *path, const char *field, json_t *v, int code, const char *needle)
{
	json_t *root = valid_json();
	json_t *obj = path[0] ? obj_at(root, path) : root;
	if (v)
		json_object_set_new(obj, field, v);
	else
		assert_int_equal(json_object_del(obj, field), 0);
	expect_reject(root, code, needle);
}

/* A sha256 repository's manifest: 64-digit ids both ways, 40-digit ones refused, and sha1's refused the other way. */
#define OID64_A OID_A "0123456789abcdef01234567"
#define OID64_B OID_B "89abcdef0123456789abcdef"

static void test_roundtrip_sha256(void **state)
{
	gw_manifest_ref refs[] = {{"refs/heads/main", OID64_A, NULL}, {"refs/tags/v1", OID64_B, NULL}};
	gw_manifest in, out;
	char *text;
	size_t len;
	json_t *root;
	json_error_t err;
	(void)state;
	sample(&in, 0);
	snprintf(in.object_format, sizeof(in.object_format), "sha256");
	snprintf(in.head.oid, sizeof(in.head.oid), "%s", OID64_A);
	in.refs = refs;
	in.nrefs = 2;
	snprintf(in.pack_checksum, sizeof(in.pack_checksum), "%s", OID64_B);
	assert_int_equal(gw_manifest_write(&in, &text, &len), 0);
	assert_non_null(strstr(text, "\"object_format\":\"sha256\""));
	assert_int_equal(gw_manifest_parse(&out, text, len, WHAT), 0);
	assert_string_equal(out.object_format, "sha256");
	assert_int_equal(out.hash_len, 32);
	assert_string_equal(out.head.oid, OID64_A);
	assert_string_equal(out.refs[1].oid, OID64_B);
	assert_string_equal(out.pack_checksum, OID64_B);
	gw_manifest_dispose(&out);
	/* A 40-digit pack checksum or ref in it is refused, naming the field. */
	root = json_loadb(text, len, 0, &err);
	json_object_set_new(json_object_get(json_object_get(root, "parts"), "bundle"), "pack_checksum", json_string(OID_B));
	expect_reject(root, GW_ECORRUPT, "is not 64 lowercase hex digits");
	root = json_loadb(text, len, 0, &err);
	json_object_set_new(json_array_get(json_object_get(root, "refs"), 0), "oid", json_string(OID_A));
	expect_reject(root, GW_ECORRUPT, "ref refs/heads/main has an invalid object id");
	/* And in a sha1 manifest, 64 digits are refused. */
	root = json_loadb(text, len, 0, &err);
	json_object_set_new(root, "object_format", json_string("sha1"));
	expect_reject(root, GW_ECORRUPT, "invalid object id");
	free(text);
}

static void test_reject_syntax(void **state)
{
	static const char dup[] = "{\"magic\":\"gitwal-full-backup\",\"version\":1,\"version\":1}";
	(void)state;
	expect_reject_text("", 0, GW_ECORRUPT, "not valid JSON");
	expect_reject_text("not json", 8, GW_ECORRUPT, "not valid JSON");
	expect_reject_text("{\"magic\":", 9, GW_ECORRUPT, "not valid JSON");
	expect_reject_text("[]", 2, GW_ECORRUPT, "not a JSON object");
	/* Scalars at the top: refused by the JSON decoder itself or as "not an object". */
	expect_reject_text("\"str\"", 5, GW_ECORRUPT, "JSON");
	expect_reject_text("42", 2, GW_ECORRUPT, "JSON");
	expect_reject_text("null", 4, GW_ECORRUPT, "JSON");
	expect_reject_text("{}", 2, GW_ECORRUPT, "'magic'");
	expect_reject_text(dup, sizeof(dup) - 1, GW_ECORRUPT, "duplicate");
	/* Bytes after the document. */
	{
		json_t *root = valid_json();
		char *text = json_dumps(root, JSON_COMPACT), *more;
		size_t n = strlen(text);
		more = malloc(n + 8);
		memcpy(more, text, n);
		memcpy(more + n, " {}", 3);
		expect_reject_text(more, n + 3, GW_ECORRUPT, "not valid JSON");
		/* A NUL inside the buffer. */
		more[n] = '\0';
		expect_reject_text(more, n + 1, GW_ECORRUPT, "not valid JSON");
		/* Truncated anywhere. */
		expect_reject_text(text, n - 1, GW_ECORRUPT, "not valid JSON");
		expect_reject_text(text, n / 2, GW_ECORRUPT, "not valid JSON");
		free(more);
		free(text);
		json_decref(root);
	}
	/* A duplicate key deep inside. */
	{
		json_t *root = valid_json();
		char *text = json_dumps(root, JSON_COMPACT), *p, *dup2;
		size_t n = strlen(text);
		p = strstr(text, "\"objects\":");
		assert_non_null(p);
		dup2 = malloc(n + 32);
		memcpy(dup2, text, (size_t)(p - text));
		sprintf(dup2 + (p - text), "\"objects\":1,%s", p);
		expect_reject_text(dup2, strlen(dup2), GW_ECORRUPT, "duplicate");
		free(dup2);
		free(text);
		json_decref(root);
	}
}

/* A pooled member's manifest (DESIGN.md 19): version 2 with "pool", round trip and each half alone refused. */
static void test_pool(void **state)
{
	gw_manifest in, out;
	json_t *root;
	char *text;
	size_t len;
	(void)state;
	sample(&in, 0);
	in.pool.repository = "@pools/ab/cd/x.git";
	in.pool.base_lsn = 40;
	in.pool.lsn = 57;
	assert_int_equal(gw_manifest_write(&in, &text, &len), 0);
	assert_non_null(strstr(text, "\"version\":2"));
	assert_non_null(strstr(text, "\"pool\":{\"repository\":\"@pools/ab/cd/x.git\",\"base_lsn\":40,\"lsn\":57}"));
	assert_int_equal(gw_manifest_parse(&out, text, len, WHAT), 0);
	assert_string_equal(out.pool.repository, "@pools/ab/cd/x.git");
	assert_int_equal(out.pool.base_lsn, 40);
	assert_int_equal(out.pool.lsn, 57);
	gw_manifest_dispose(&out);
	/* Version 1 with a pool: an old writer never wrote it, so it is damage. */
	root = json_loadb(text, len, 0, NULL);
	assert_non_null(root);
	json_object_set_new(root, "version", json_integer(1));
	expect_reject(root, GW_ECORRUPT, "version 1 with field 'pool'");
	/* The pool's own checks (test_pool.c), named as the manifest's field. */
	root = json_loadb(text, len, 0, NULL);
	json_object_set_new(json_object_get(root, "pool"), "lsn", json_integer(3));
	expect_reject(root, GW_ECORRUPT, "'pool.base_lsn'");
	root = json_loadb(text, len, 0, NULL);
	json_object_set_new(json_object_get(root, "pool"), "repository", json_string("g/r.git"));
	expect_reject(root, GW_ECORRUPT, "'pool.repository'");
	free(text);
}

static void test_reject_header_fields(void **state)
{
	(void)state;
	set_field("", "magic", json_string("gitwal-full-backupX"), GW_ECORRUPT, "magic");
	set_field("", "magic", NULL, GW_ECORRUPT, "'magic'");
	set_field("", "magic", json_integer(1), GW_ECORRUPT, "'magic'");
	set_field("", "version", json_integer(3), GW_EVERSION, "version 3");
	set_field("", "version", json_integer(2), GW_ECORRUPT, "version 2 without field 'pool'");
	set_field("", "version", json_integer(0), GW_EVERSION, "version 0");
	set_field("", "version", json_string("1"), GW_ECORRUPT, "'version'");
	set_field("", "version", json_integer(-1), GW_ECORRUPT, "'version'");
	set_field("", "version", json_real(1.0), GW_ECORRUPT, "'version'");
	set_field("", "version", NULL, GW_ECORRUPT, "'version'");
	set_field("", "repository", NULL, GW_ECORRUPT, "'repository'");
	set_field("", "repository", json_integer(3), GW_ECORRUPT, "'repository'");
	set_field("", "repository", json_string("../x"), GW_ECORRUPT, "'../x'");
	set_field("", "repository", json_string("/abs"), GW_ECORRUPT, "'/abs'");
	set_field("", "repository", json_string("a/./b"), GW_ECORRUPT, "'a/./b'");
	set_field("", "repository", json_string(""), GW_ECORRUPT, "repository");
	/* An embedded NUL: refused by the decoder (or by the field check). */
	set_field("", "repository", json_stringn("a\0b", 3), GW_ECORRUPT, "JSON");
	set_field("", "lsn", NULL, GW_ECORRUPT, "'lsn'");
	set_field("", "lsn", json_integer(-1), GW_ECORRUPT, "'lsn'");
	set_field("", "lsn", json_string("7"), GW_ECORRUPT, "'lsn'");
	set_field("", "lsn", json_real(7.5), GW_ECORRUPT, "'lsn'");
	set_field("", "lsn", json_true(), GW_ECORRUPT, "'lsn'");
	set_field("", "time_us", json_integer(-5), GW_ECORRUPT, "'time_us'");
	set_field("", "time_us", NULL, GW_ECORRUPT, "'time_us'");
	set_field("", "object_format", json_string("sha512"), GW_EVERSION, "sha512");
	set_field("", "object_format", json_string("SHA256"), GW_EVERSION, "SHA256");
	/* sha256 with the sha1 ids of the sample: each id is the wrong length for it. */
	set_field("", "object_format", json_string("sha256"), GW_ECORRUPT, "invalid object id");
	set_field("", "object_format", NULL, GW_ECORRUPT, "'object_format'");
	set_field("", "tool", json_integer(1), GW_ECORRUPT, "'tool'");
	expect_reject_text("{\"magic\":\"gitwal-full-backup\",\"version\":1,\"lsn\":99999999999999999999}", 68,
			   GW_ECORRUPT, "not valid JSON");
}

static void test_reject_refs(void **state)
{
	static const char *bad_names[] = {"refs/heads/a..b", "refs/heads/x.lock", "notrefs/x", "HEAD",
					  "refs/heads/", "refs/heads/a b", "refs/heads/a~1", "refs/heads/a^",
					  "refs/heads/a:b", "refs/heads/.hidden", "refs/heads//x", "refs/heads/a\\b",
					  "heads/main", "refs", "refs/heads/a@{1}", "refs/heads/x/"};
	static const char *bad_oids[] = {
		"0123456789abcdef0123456789abcdef0123456",   /* 39 */
		"0123456789abcdef0123456789abcdef012345678", /* 41 */
		"0123456789ABCDEF0123456789abcdef01234567",  /* upper case */
		"0123456789abcdeg0123456789abcdef01234567",  /* non-hex */
		"",
		"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", /* sha256-sized */
	};
	size_t i;
	(void)state;
	for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
		char want[80];
		snprintf(want, sizeof(want), "invalid ref name '%s'", bad_names[i]);
		set_field("refs[1]", "name", json_string(bad_names[i]), GW_ECORRUPT, want);
	}
	for (i = 0; i < sizeof(bad_oids) / sizeof(bad_oids[0]); i++) {
		set_field("refs[1]", "oid", json_string(bad_oids[i]), GW_ECORRUPT, "refs/heads/topic");
		tu_assert_msg_has("invalid object id");
		set_field("head", "oid", json_string(bad_oids[i]), GW_ECORRUPT, "HEAD has an invalid object id");
	}
	set_field("refs[1]", "oid", json_integer(1), GW_ECORRUPT, "'oid'");
	set_field("refs[1]", "name", NULL, GW_ECORRUPT, "'name'");
	set_field("refs[1]", "name", json_null(), GW_ECORRUPT, "'name'");
	set_field("refs[1]", "oid", NULL, GW_ECORRUPT, "refs/heads/topic has neither");
	set_field("refs[2]", "symbolic", json_string("nope"), GW_ECORRUPT, "invalid symbolic target 'nope'");
	set_field("refs[2]", "symbolic", json_string("refs/heads/a..b"), GW_ECORRUPT, "'refs/heads/a..b'");
	set_field("refs[2]", "symbolic", json_integer(0), GW_ECORRUPT, "'symbolic'");
	/* A target outside refs/ that Git allows (one-level, upper case) is content, not a path: accepted. */
	{
		static const char *targets[] = {"ORIG_HEAD", "FETCH_HEAD", "MY_HEAD"};
		for (i = 0; i < sizeof(targets) / sizeof(targets[0]); i++) {
			json_t *root = valid_json();
			char *text;
			gw_manifest m;
			json_object_set_new(obj_at(root, "refs[2]"), "symbolic", json_string(targets[i]));
			text = json_dumps(root, JSON_COMPACT);
			assert_int_equal(gw_manifest_parse(&m, text, strlen(text), "test"), 0);
			assert_string_equal(m.refs[2].symbolic, targets[i]);
			gw_manifest_dispose(&m);
			free(text);
			json_decref(root);
		}
	}
	set_field("", "refs", NULL, GW_ECORRUPT, "'refs'");
	set_field("", "refs", json_object(), GW_ECORRUPT, "'refs'");
	set_field("", "refs", json_string("x"), GW_ECORRUPT, "'refs'");
	{
		json_t *root = valid_json();
		json_array_append_new(json_object_get(root, "refs"), json_integer(5));
		expect_reject(root, GW_ECORRUPT, "refs");
	}
	/* HEAD itself. */
	set_field("head", "name", json_string("refs/heads/main"), GW_ECORRUPT, "invalid ref name 'refs/heads/main'");
	set_field("head", "symbolic", json_string("main"), GW_ECORRUPT, "invalid symbolic target 'main'");
	/* HEAD points under refs/ (refname.h: what the refs reader refuses to write): a reftable HEAD, ORIG_HEAD. */
	set_field("head", "symbolic", json_string("refs/heads/.invalid"), GW_ECORRUPT,
		  "HEAD has an invalid symbolic target 'refs/heads/.invalid' (it does not point at a valid ref name under "
		  "refs/)");
	set_field("head", "symbolic", json_string("ORIG_HEAD"), GW_ECORRUPT, "invalid symbolic target 'ORIG_HEAD'");
}

/* A missing or non-object "head" must be reported as the head field, not as 'refs'. */
static void test_reject_missing_head_names_head(void **state)
{
	(void)state;
	set_field("", "head", NULL, GW_ECORRUPT, "'head'");
	set_field("", "head", json_string("refs/heads/main"), GW_ECORRUPT, "'head'");
}

static void test_reject_ref_order(void **state)
{
	json_t *root, *refs;
	(void)state;
	/* Swapped. */
	root = valid_json();
	refs = json_object_get(root, "refs");
	{
		json_t *a = json_incref(json_array_get(refs, 0)), *b = json_incref(json_array_get(refs, 1));
		json_array_set_new(refs, 0, b);
		json_array_set_new(refs, 1, a);
	}
	expect_reject(root, GW_ECORRUPT, "not sorted");
	/* Repeated. */
	root = valid_json();
	refs = json_object_get(root, "refs");
	json_array_insert_new(refs, 1, json_deep_copy(json_array_get(refs, 0)));
	expect_reject(root, GW_ECORRUPT, "refs/heads/main");
	tu_assert_msg_has("repeat");
	/* Byte order, not locale order: "refs/heads/B" < "refs/heads/a". */
	root = valid_json();
	refs = json_array();
	json_array_append_new(refs, json_pack("{s:s, s:s}", "name", "refs/heads/a", "oid", OID_A));
	json_array_append_new(refs, json_pack("{s:s, s:s}", "name", "refs/heads/B", "oid", OID_A));
	json_object_set_new(root, "refs", refs);
	expect_reject(root, GW_ECORRUPT, "refs/heads/B");
}

static void test_reject_parts(void **state)
{
	(void)state;
	set_field("", "parts", NULL, GW_ECORRUPT, "'parts'");
	set_field("", "parts", json_array(), GW_ECORRUPT, "'parts'");
	set_field("parts", "bundle", NULL, GW_ECORRUPT, "'bundle'");
	set_field("parts", "idx", NULL, GW_ECORRUPT, "'idx'");
	set_field("parts", "idx", json_integer(0), GW_ECORRUPT, "'idx'");
	set_field("parts.bundle", "key", json_string("../x"), GW_ECORRUPT, "bundle");
	tu_assert_msg_has("invalid key");
	set_field("parts.idx", "key", json_string("/abs"), GW_ECORRUPT, "idx");
	set_field("parts.idx", "key", json_string("a//b"), GW_ECORRUPT, "invalid key");
	set_field("parts.idx", "key", json_string(""), GW_ECORRUPT, "invalid key");
	set_field("parts.idx", "key", NULL, GW_ECORRUPT, "'key'");
	set_field("parts.bundle", "sha256", json_string(SHA_1 "a"), GW_ECORRUPT, "'sha256'");
	set_field("parts.bundle", "sha256", json_string("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
		  GW_ECORRUPT, "'sha256'");
	set_field("parts.idx", "sha256", json_string("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
		  GW_ECORRUPT, "'sha256'");
	set_field("parts.idx", "sha256", json_string("zaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
		  GW_ECORRUPT, "'sha256'");
	set_field("parts.idx", "sha256", NULL, GW_ECORRUPT, "'sha256'");
	set_field("parts.idx", "size", json_integer(-1), GW_ECORRUPT, "'size'");
	set_field("parts.idx", "size", json_string("1"), GW_ECORRUPT, "'size'");
	set_field("parts.bundle", "size", NULL, GW_ECORRUPT, "'size'");
	set_field("parts.bundle", "objects", NULL, GW_ECORRUPT, "'objects'");
	set_field("parts.bundle", "objects", json_integer(-2), GW_ECORRUPT, "'objects'");
	set_field("parts.bundle", "pack_offset", NULL, GW_ECORRUPT, "'pack_offset'");
	set_field("parts.bundle", "pack_offset", json_integer(-1), GW_ECORRUPT, "'pack_offset'");
	set_field("parts.bundle", "pack_checksum", json_string(OID_A "0"), GW_ECORRUPT, "'pack_checksum'");
	set_field("parts.bundle", "pack_checksum", json_string("0123456789ABCDEF0123456789abcdef01234567"), GW_ECORRUPT,
		  "'pack_checksum'");
	set_field("parts.bundle", "pack_checksum", NULL, GW_ECORRUPT, "'pack_checksum'");
	/* pack_offset must leave room for a pack inside the bundle (header + trailer = 32 bytes). */
	set_field("parts.bundle", "pack_offset", json_integer(123456), GW_ECORRUPT, "'pack_offset'");
	set_field("parts.bundle", "pack_offset", json_integer(200000), GW_ECORRUPT, "'pack_offset'");
	set_field("parts.bundle", "pack_offset", json_integer(123456 - 31), GW_ECORRUPT, "'pack_offset'");
	{
		json_t *root = valid_json();
		gw_manifest m;
		char *text;
		json_object_set_new(obj_at(root, "parts.bundle"), "pack_offset", json_integer(123456 - 32));
		text = json_dumps(root, JSON_COMPACT);
		assert_int_equal(gw_manifest_parse(&m, text, strlen(text), WHAT), 0);
		assert_int_equal(m.pack_offset, 123456 - 32);
		gw_manifest_dispose(&m);
		free(text);
		json_decref(root);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_roundtrip_sha256),
		cmocka_unit_test(test_roundtrip_edges),
		cmocka_unit_test(test_reject_syntax),
		cmocka_unit_test(test_pool),
		cmocka_unit_test(test_reject_header_fields),
		cmocka_unit_test(test_reject_refs),
		cmocka_unit_test(test_reject_missing_head_names_head),
		cmocka_unit_test(test_reject_ref_order),
		cmocka_unit_test(test_reject_parts),
	};
	return tu_run_tests(tests);
}
