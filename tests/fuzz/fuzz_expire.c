/*
 * libFuzzer target: gw_expire_record_parse (an expire record, DESIGN.md
 * 18.2) on arbitrary bytes, as they are and with their SHA-256 trailer
 * recomputed (so the fields behind the checksum are fuzzed too). Whatever
 * parses must encode back to the very same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitwal/expire.h"
#include "gitwal/io.h"

static void fz_expire_one(const uint8_t *data, size_t size)
{
	gw_expire_record r;
	unsigned char *enc = NULL;
	size_t len = 0;
	if (gw_expire_record_parse(&r, data, size, "fuzz") != 0)
		return;
	if (gw_expire_record_encode(&r, &enc, &len) != 0 || len != size || memcmp(enc, data, size) != 0)
		abort();
	if (gw_expire_record_horizon(&r) != (r.whole ? r.deleted_us : r.kept_us))
		abort();
	free(enc);
	gw_expire_record_dispose(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;
	fz_expire_one(data, size);
	if (size < 32 || !(fixed = malloc(size)))
		return 0;
	memcpy(fixed, data, size);
	gw_hash_buffer(GW_HASH_SHA256, fixed, size - 32, fixed + size - 32);
	fz_expire_one(fixed, size);
	free(fixed);
	return 0;
}
