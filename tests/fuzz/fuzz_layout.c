/*
 * libFuzzer target: store key parsing (gw_layout_parse_key) and repository
 * component decoding (gw_repo_path_decode) on arbitrary strings. Whatever
 * they accept must be a safe repository path that encodes and parses back.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitwal/layout.h"
#include "gitwal/repo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = malloc(size + 1), *rel = NULL, *dec, *enc, *key, *rel2 = NULL;
	uint64_t lsn = 0, lsn2 = 0;
	gw_key_kind kind, kind2;
	int rc;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0'; /* the string ends at the first NUL */

	rc = gw_layout_parse_key(s, &rel, &lsn, &kind);
	if (rc > 0)
		abort();
	if (rc < 0 || kind == GW_KEY_UNKNOWN) {
		if (rel)
			abort();
	} else {
		if (!rel || gw_repo_path_check(rel) != 0)
			abort();
		/* The key gitwal would write for it parses to the same thing. */
		key = gw_layout_key(rel, lsn, kind);
		if (!key || (strlen(key) <= 1024 && gw_store_key_check(key) != 0))
			abort();
		if (gw_layout_parse_key(key, &rel2, &lsn2, &kind2) != 0 || !rel2 || strcmp(rel, rel2) != 0 ||
		    lsn2 != lsn || kind2 != kind)
			abort();
		free(rel2);
		free(key);
	}
	free(rel);

	dec = gw_repo_path_decode(s);
	if (dec) {
		if (gw_repo_path_check(dec) != 0)
			abort();
		enc = gw_repo_path_encode(dec);
		if (!enc || strchr(enc, '/') || (strlen(enc) <= 1024 && gw_store_key_check(enc) != 0))
			abort();
		rel2 = gw_repo_path_decode(enc);
		if (!rel2 || strcmp(rel2, dec) != 0)
			abort();
		free(rel2);
		free(enc);
		free(dec);
	}
	/* A path that checks out encodes into one key component. */
	if (gw_repo_path_check(s) == 0) {
		enc = gw_repo_path_encode(s);
		if (!enc || strchr(enc, '/') || (strlen(enc) <= 1024 && gw_store_key_check(enc) != 0))
			abort();
		dec = gw_repo_path_decode(enc);
		if (!dec || strcmp(dec, s) != 0)
			abort();
		free(dec);
		free(enc);
	}
	free(s);
	return 0;
}
