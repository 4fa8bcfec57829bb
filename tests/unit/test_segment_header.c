/*
 * Unit tests for src/format/segment.c's header and its object format: a sha1
 * segment's header is what it always was (no "object_format"), a sha256 one
 * says so and carries 64-hex ids, and an id of the other format's length, or
 * an unknown format, is refused. A changed set of the repository's files
 * rides in "files" (absent: unchanged; an empty set is present and empty),
 * parsed as strictly as a manifest's. A pooled member's segment is version
 * 2 with its "pool" (DESIGN.md 19), and either without the other is refused.
 */
#include "testutil.h"

#include "gitwal/files.h"
#include "gitwal/segment.h"

#define OID40 "0123456789abcdef0123456789abcdef01234567"
#define OID64 OID40 "89abcdef0123456789abcdef"

/* A one-update header of the format hash_len (0: the encoder's default, sha1) moving main from old to new. */
static void sample(gw_segment_header *h, gw_update *u, size_t hash_len, const char *old, const char *nw)
{
	memset(u, 0, sizeof(*u));
	u->kind = GW_UPDATE_REF;
	u->time_us = 1000;
	u->ref = "refs/heads/main";
	snprintf(u->old_oid, sizeof(u->old_oid), "%s", old);
	snprintf(u->new_oid, sizeof(u->new_oid), "%s", nw);
	memset(h, 0, sizeof(*h));
	h->repository = "r.git";
	h->lsn = 2;
	h->base_lsn = 1;
	memset(h->prev_sha256, 'a', 64);
	h->time_first_us = h->time_last_us = 1000;
	h->updates = u;
	h->nupdates = 1;
	h->hash_len = hash_len;
}

static int roundtrip(const gw_segment_header *h, gw_segment_header *out, char **text)
{
	unsigned char *enc;
	size_t len, need;
	int rc;
	assert_int_equal(gw_segment_header_encode(h, &enc, &len), 0);
	if (text) {
		/* Short headers are stored as they are (COMPRESS_MIN): the JSON is readable in place. */
		assert_int_equal(enc[11] & 1, 0);
		*text = strndup((const char *)enc + GW_SEGMENT_PREFIX_SIZE, len - GW_SEGMENT_PREFIX_SIZE);
	}
	rc = gw_segment_header_decode(out, enc, len, &need, "test.seg");
	free(enc);
	return rc;
}

static void test_sha1_unchanged(void **state)
{
	gw_segment_header h, out;
	gw_update u;
	char *text;
	(void)state;
	sample(&h, &u, 0, "", OID40);
	assert_int_equal(roundtrip(&h, &out, &text), 0);
	assert_null(strstr(text, "object_format"));
	assert_int_equal(out.hash_len, 20);
	assert_string_equal(out.updates[0].new_oid, OID40);
	gw_segment_header_dispose(&out);
	free(text);
	sample(&h, &u, 20, OID40, "");
	assert_int_equal(roundtrip(&h, &out, &text), 0);
	assert_null(strstr(text, "object_format"));
	gw_segment_header_dispose(&out);
	free(text);
}

static void test_sha256(void **state)
{
	gw_segment_header h, out;
	gw_update u;
	char *text;
	(void)state;
	sample(&h, &u, 32, OID64, OID64);
	assert_int_equal(roundtrip(&h, &out, &text), 0);
	assert_non_null(strstr(text, "\"object_format\":\"sha256\""));
	assert_int_equal(out.hash_len, 32);
	assert_string_equal(out.updates[0].old_oid, OID64);
	assert_string_equal(out.updates[0].new_oid, OID64);
	gw_segment_header_dispose(&out);
	free(text);
}

static void test_bad_lengths_refused(void **state)
{
	gw_segment_header h, out;
	gw_update u;
	(void)state;
	/* 40 digits in a sha256 segment, 64 in a sha1 one. */
	sample(&h, &u, 32, "", OID40);
	tu_assert_err(roundtrip(&h, &out, NULL), GW_ECORRUPT, "updates.old/new");
	sample(&h, &u, 20, OID64, "");
	tu_assert_err(roundtrip(&h, &out, NULL), GW_ECORRUPT, "updates.old/new");
}

/* A header written by hand: prefix, then text as it is. */
static int decode_text(const char *text, gw_segment_header *out)
{
	size_t len = strlen(text), need;
	unsigned char *buf = malloc(GW_SEGMENT_PREFIX_SIZE + len);
	int rc;
	assert_non_null(buf);
	memcpy(buf, GW_SEGMENT_MAGIC, 6);
	buf[6] = 0;
	buf[7] = GW_SEGMENT_VERSION;
	memset(buf + 8, 0, 4);
	buf[12] = buf[16] = (unsigned char)(len >> 24);
	buf[13] = buf[17] = (unsigned char)(len >> 16);
	buf[14] = buf[18] = (unsigned char)(len >> 8);
	buf[15] = buf[19] = (unsigned char)len;
	memcpy(buf + GW_SEGMENT_PREFIX_SIZE, text, len);
	rc = gw_segment_header_decode(out, buf, GW_SEGMENT_PREFIX_SIZE + len, &need, "test.seg");
	free(buf);
	return rc;
}

#define HEAD_OF(fmt)                                                                                           \
	"{\"magic\":\"gitwal-segment\",\"version\":1,\"repository\":\"r.git\",\"lsn\":2,\"base_lsn\":1,"      \
	"\"prev_sha256\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\","                 \
	"\"time_first_us\":1,\"time_last_us\":1,\"objects\":0," fmt                                               \
	"\"updates\":[{\"kind\":\"ref\",\"time_us\":1,\"ref\":\"refs/heads/main\",\"old\":\"\",\"new\":\"" OID40 \
	"\"}]}"

static void test_format_field(void **state)
{
	gw_segment_header out;
	(void)state;
	assert_int_equal(decode_text(HEAD_OF("\"object_format\":\"sha1\","), &out), 0);
	assert_int_equal(out.hash_len, 20);
	gw_segment_header_dispose(&out);
	tu_assert_err(decode_text(HEAD_OF("\"object_format\":\"sha512\","), &out), GW_EVERSION,
		      "object format 'sha512' is not supported");
	tu_assert_err(decode_text(HEAD_OF("\"object_format\":1,"), &out), GW_EVERSION, "object format");
	tu_assert_err(decode_text(HEAD_OF("\"object_format\":\"sha256\","), &out), GW_ECORRUPT, "updates.old/new");
}

static void test_files_member(void **state)
{
	gw_segment_header h, out;
	gw_update u;
	gw_file items[3] = {{"config", GW_FILE_REGULAR, 0644, (unsigned char *)"[core]\n", 7},
			    {"custom_hooks/x", GW_FILE_LINK, 0, (unsigned char *)"../y", 4},
			    {"custom_hooks/z", GW_FILE_SKIPPED, 0, (unsigned char *)"a socket", 8}};
	gw_files set = {items, 3, 3}, none = {NULL, 0, 0};
	char *text, a[65], b[65];
	(void)state;
	/* No member when unchanged: the bytes of every earlier segment. */
	sample(&h, &u, 0, "", OID40);
	assert_int_equal(roundtrip(&h, &out, &text), 0);
	assert_null(strstr(text, "\"files\""));
	assert_null(out.files);
	gw_segment_header_dispose(&out);
	free(text);
	/* The whole set, back exactly (its digest is the archiver's and the index's comparison). */
	h.files = &set;
	assert_int_equal(roundtrip(&h, &out, NULL), 0);
	assert_non_null(out.files);
	assert_int_equal(out.files->n, 3);
	assert_string_equal(out.files->items[1].path, "custom_hooks/x");
	assert_int_equal(out.files->items[1].type, GW_FILE_LINK);
	assert_memory_equal(out.files->items[1].data, "../y", 4);
	/* A path not archived, with why (DESIGN.md 4.5). */
	assert_int_equal(out.files->items[2].type, GW_FILE_SKIPPED);
	assert_string_equal((const char *)out.files->items[2].data, "a socket");
	assert_int_equal(gw_files_digest(&set, a), 0);
	assert_int_equal(gw_files_digest(out.files, b), 0);
	assert_string_equal(a, b);
	gw_segment_header_dispose(&out);
	/* A set emptied (every file removed) is a change too: present, empty. */
	h.files = &none;
	assert_int_equal(roundtrip(&h, &out, &text), 0);
	assert_non_null(strstr(text, "\"files\":[]"));
	assert_non_null(out.files);
	assert_int_equal(out.files->n, 0);
	assert_int_equal(gw_files_digest(&none, b), 0);
	assert_string_not_equal(a, b);
	gw_segment_header_dispose(&out);
	free(text);
	/* Untrusted: a path outside the kept names, or not an array, is refused naming the segment. */
	tu_assert_err(decode_text(HEAD_OF("\"files\":{},"), &out), GW_ECORRUPT,
		      "segment test.seg: field 'files' is not an array");
	tu_assert_err(decode_text(HEAD_OF("\"files\":[{\"path\":\"../x\",\"type\":\"dir\",\"mode\":493}],"), &out),
		      GW_ECORRUPT, "segment test.seg: file '../x'");
}

/* A pooled member's segment: version 2 with "pool", round trip, and each half alone refused as damage. */
static void test_pool_member(void **state)
{
	gw_segment_header h, out;
	gw_update u;
	char *text;
	(void)state;
	sample(&h, &u, 0, "", OID40);
	assert_int_equal(roundtrip(&h, &out, &text), 0);
	assert_non_null(strstr(text, "\"version\":1,"));
	assert_null(strstr(text, "\"pool\""));
	assert_null(out.pool.repository);
	gw_segment_header_dispose(&out);
	free(text);
	h.pool.repository = "@pools/ab/cd/x.git";
	h.pool.base_lsn = 40;
	h.pool.lsn = 40;
	assert_int_equal(roundtrip(&h, &out, &text), 0);
	assert_non_null(strstr(text, "\"version\":2,"));
	assert_non_null(strstr(text, "\"pool\":{\"repository\":\"@pools/ab/cd/x.git\",\"base_lsn\":40,\"lsn\":40}"));
	assert_string_equal(out.pool.repository, "@pools/ab/cd/x.git");
	assert_int_equal(out.pool.base_lsn, 40);
	assert_int_equal(out.pool.lsn, 40);
	gw_segment_header_dispose(&out);
	free(text);
	tu_assert_err(decode_text(HEAD_OF("\"pool\":{\"repository\":\"p.git\",\"base_lsn\":1,\"lsn\":1},"), &out),
		      GW_ECORRUPT, "segment test.seg: version 1 with field 'pool'");
	{
		char *t = strdup(HEAD_OF("")), *at = strstr(t, "\"version\":1");
		at[10] = '2';
		tu_assert_err(decode_text(t, &out), GW_ECORRUPT, "segment test.seg: version 2 without field 'pool'");
		at[10] = '3';
		tu_assert_err(decode_text(t, &out), GW_EVERSION, "upgrade gitwal");
		free(t);
	}
	/* The pool object's own checks (test_pool.c): not the member itself, base_lsn <= lsn. */
	{
		char *t = strdup(HEAD_OF("\"pool\":{\"repository\":\"r.git\",\"base_lsn\":1,\"lsn\":1},"));
		strstr(t, "\"version\":1")[10] = '2';
		tu_assert_err(decode_text(t, &out), GW_ECORRUPT, "'pool.repository'");
		free(t);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sha1_unchanged),
		cmocka_unit_test(test_sha256),
		cmocka_unit_test(test_bad_lengths_refused),
		cmocka_unit_test(test_format_field),
		cmocka_unit_test(test_files_member),
		cmocka_unit_test(test_pool_member),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
