/*
 * libFuzzer target: pack entry header and OFS_DELTA distance parsers. What
 * parses must re-encode and parse back to the same value, and a parser never
 * claims more bytes than it was given.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pack/pack.h"

/*
 * Sizes of 2^60 and more are left out of the encode-then-parse check:
 * gw_pack_parse_header refuses them (see the report of test_pack's
 * test_header_roundtrip_huge), and leaving them in would stop every fuzzing
 * run at that one known finding.
 */
#define FZ_HEADER_SIZE_LIMIT (1ULL << 60)
/*
 * Distances above 2^63 + 127 are refused by gw_pack_parse_ofs's overflow
 * guard (as by Git's own reader); no pack is that large.
 */
#define FZ_OFS_LIMIT (1ULL << 63)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char enc[32];
	uint64_t v = 0, back, d;
	int type, type2;
	size_t n, m, i;

	n = gw_pack_parse_header(data, size, &type, &v);
	if (n > size || (n && n > 10))
		abort();
	if (n) {
		m = gw_pack_encode_header(enc, type, v);
		if (gw_pack_parse_header(enc, m, &type2, &back) != m || back != v || type2 != type || m > n)
			abort();
	}
	n = gw_pack_parse_ofs(data, size, &d);
	if (n > size || (n && n > 10))
		abort();
	if (n) {
		m = gw_pack_encode_ofs(enc, d);
		/* The OFS encoding has no redundant forms: the same bytes come back. */
		if (m != n || memcmp(enc, data, n) != 0 || gw_pack_parse_ofs(enc, m, &back) != m || back != d)
			abort();
	}
	/* Any 64-bit value from the input: encode, then parse. */
	for (i = 0; i < 8 && i < size; i++)
		v = v << 8 | data[i];
	m = gw_pack_encode_ofs(enc, v);
	if (m > 10 || (v <= FZ_OFS_LIMIT && (gw_pack_parse_ofs(enc, m, &back) != m || back != v)))
		abort();
	if (v < FZ_HEADER_SIZE_LIMIT) {
		type = size > 8 ? (data[8] & 7) : 3;
		m = gw_pack_encode_header(enc, type, v);
		if (gw_pack_parse_header(enc, m, &type2, &back) != m || back != v || type2 != type)
			abort();
	}
	return 0;
}
