/* The fuzz_manifest harness (tests/fuzz/fuzz_manifest.c) over a fixed corpus and its mutations. */
#define LLVMFuzzerTestOneInput fuzz_manifest_one
#include "../fuzz/fuzz_manifest.c"
#undef LLVMFuzzerTestOneInput

#include "fuzzdrive.h"

#define OID "0123456789abcdef0123456789abcdef01234567"
#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static char *valid(int mode, size_t *len)
{
	gw_manifest_ref refs[] = {{"refs/heads/main", OID, NULL},
				  {"refs/remotes/origin/HEAD", OID, "refs/remotes/origin/main"},
				  {"refs/symref/dangling", "", "refs/heads/nowhere"},
				  {"refs/tags/v1", OID, NULL}};
	gw_manifest m;
	char *text;
	memset(&m, 0, sizeof(m));
	m.repository = mode == 1 ? "caf\xc3\xa9/x y.git" : "g/r.git";
	m.lsn = mode == 2 ? (uint64_t)INT64_MAX : 7;
	m.time_us = 1764090295123456LL;
	snprintf(m.object_format, sizeof(m.object_format), "sha1");
	m.head.name = "HEAD";
	if (mode != 1)
		m.head.symbolic = "refs/heads/main";
	if (mode != 2)
		snprintf(m.head.oid, sizeof(m.head.oid), OID);
	m.refs = refs;
	m.nrefs = mode == 2 ? 0 : 4;
	m.bundle.key = "repos/g%2Fr.git/00000000000000000007.full.bundle";
	m.bundle.size = 123456;
	memcpy(m.bundle.sha256, SHA, 65);
	m.pack_offset = 200;
	m.objects = 9;
	snprintf(m.pack_checksum, sizeof(m.pack_checksum), OID);
	m.idx.key = "repos/g%2Fr.git/00000000000000000007.full.idx";
	m.idx.size = 4096;
	memcpy(m.idx.sha256, SHA, 65);
	m.tool = mode == 0 ? "gitwal 0.1.0" : NULL;
	if (mode == 0) { /* repository files (DESIGN.md 4.5): the mutations reach their parser */
		static gw_file files[] = {
			{"config", GW_FILE_REGULAR, 0644, (unsigned char *)"[core]\n", 7},
			{"custom_hooks", GW_FILE_DIR, 0755, NULL, 0},
			{"custom_hooks/link", GW_FILE_LINK, 0, (unsigned char *)"../x", 4},
			{"custom_hooks/pre-receive", GW_FILE_REGULAR, 0755, (unsigned char *)"#!/bin/sh\n", 10},
			{"custom_hooks/queue", GW_FILE_SKIPPED, 0, (unsigned char *)"a fifo", 6},
		};
		m.files.items = files;
		m.files.n = 5;
	}
	assert_int_equal(gw_manifest_write(&m, &text, len), 0);
	return text;
}

#define S(x) {(const uint8_t *)(x), sizeof(x) - 1}

static void test_fuzz_manifest_corpus(void **state)
{
	static const fd_input fixed[] = {
		S("{}"),
		S("[]"),
		S("{\"magic\":\"gitwal-full-backup\",\"version\":1}"),
		S("{\"magic\":\"gitwal-full-backup\",\"version\":2}"),
		S("{\"magic\":\"gitwal-full-backup\",\"version\":1,\"version\":1}"),
		S("{\"magic\":\"gitwal-full-backup\",\"version\":1,\"repository\":\"../x\"}"),
		S("{\"magic\":\"gitwal-full-backup\",\"version\":1,\"repository\":\"a\",\"lsn\":-1}"),
		S("{\"magic\":\"gitwal-full-backup\",\"version\":1,\"repository\":\"a\",\"lsn\":1e400}"),
		S("{\"magic\":\"gitwal-full-backup\",\"version\":1,\"repository\":\"a\",\"lsn\":99999999999999999999}"),
		S("{\"a\":\"\\u0000\"}"),
		S("{\"a\":\"\\ud800\"}"),
		S("\xef\xbb\xbf{}"),
		S("{\"magic\":\"gitwal-full-backup\",\"version\":1,\"repository\":\"a\",\"lsn\":1,\"time_us\":0,"
		  "\"object_format\":\"sha1\",\"head\":{\"name\":\"HEAD\"},\"refs\":[],\"parts\":{\"bundle\":{\"key\":\"b\","
		  "\"size\":100,\"sha256\":\"" SHA "\",\"pack_offset\":0,\"objects\":0,\"pack_checksum\":\"" OID "\"},"
		  "\"idx\":{\"key\":\"i\",\"size\":0,\"sha256\":\"" SHA "\"}}}"),
	};
	fd_input corpus[sizeof(fixed) / sizeof(fixed[0]) + 3];
	char *texts[3];
	size_t i, n, nfixed = sizeof(fixed) / sizeof(fixed[0]);
	(void)state;
	for (i = 0; i < nfixed; i++)
		corpus[i] = fixed[i];
	for (i = 0; i < 3; i++) {
		size_t len;
		gw_manifest m;
		texts[i] = valid((int)i, &len);
		corpus[nfixed + i].data = (const uint8_t *)texts[i];
		corpus[nfixed + i].size = len;
		/* The seeds themselves are valid. */
		assert_int_equal(gw_manifest_parse(&m, texts[i], len, "seed"), 0);
		gw_manifest_dispose(&m);
	}
	/* The minimal hand-written manifest parses (so mutations start from a valid document). */
	{
		gw_manifest m;
		int rc = gw_manifest_parse(&m, (const char *)fixed[nfixed - 1].data, fixed[nfixed - 1].size, "min");
		if (rc)
			print_error("%s\n", gw_error_message());
		assert_int_equal(rc, 0);
		gw_manifest_dispose(&m);
	}
	n = fd_run(fuzz_manifest_one, corpus, nfixed + 3, 20000, 0xabcdef12345ULL);
	assert_true(n > 20000);
	for (i = 0; i < 3; i++)
		free(texts[i]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fuzz_manifest_corpus),
	};
	return tu_run_tests(tests);
}
