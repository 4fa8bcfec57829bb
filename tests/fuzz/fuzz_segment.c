/*
 * libFuzzer target: gw_segment_header_decode (a log segment's prefix and its
 * JSON header, plain or LZ4) on arbitrary bytes. "Need more" must ask for
 * more than it was given; whatever parses must survive an encode/decode
 * round trip unchanged.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gitwal/segment.h"

static int fz_segment_same_str(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void fz_segment_same(const gw_segment_header *a, const gw_segment_header *b)
{
	size_t i;
	if (strcmp(a->repository, b->repository) != 0 || a->lsn != b->lsn || a->base_lsn != b->base_lsn ||
	    strcmp(a->prev_sha256, b->prev_sha256) != 0 || a->time_first_us != b->time_first_us ||
	    a->time_last_us != b->time_last_us || a->nupdates != b->nupdates || a->objects != b->objects ||
	    a->gap != b->gap || a->gap_from_us != b->gap_from_us || a->gap_to_us != b->gap_to_us)
		abort();
	for (i = 0; i < a->nupdates; i++) {
		const gw_update *x = &a->updates[i], *y = &b->updates[i];
		if (x->kind != y->kind || x->time_us != y->time_us || !fz_segment_same_str(x->ref, y->ref) ||
		    strcmp(x->old_oid, y->old_oid) != 0 || strcmp(x->new_oid, y->new_oid) != 0 ||
		    !fz_segment_same_str(x->old_target, y->old_target) || !fz_segment_same_str(x->new_target, y->new_target))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	gw_segment_header h, again;
	unsigned char *enc = NULL;
	size_t need = 0, need2 = 0, len = 0;
	int rc = gw_segment_header_decode(&h, data, size, &need, "fuzz");
	if (rc == 1) {
		if (need <= size)
			abort();
		return 0;
	}
	if (rc != 0)
		return 0;
	if (need > size)
		abort();
	/* Every parsed header is one this build can write and read back. */
	if (gw_segment_header_encode(&h, &enc, &len) != 0)
		abort();
	if (gw_segment_header_decode(&again, enc, len, &need2, "fuzz-roundtrip") != 0 || need2 != len)
		abort();
	fz_segment_same(&h, &again);
	gw_segment_header_dispose(&again);
	gw_segment_header_dispose(&h);
	free(enc);
	return 0;
}
