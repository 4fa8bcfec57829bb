/*
 * Stored log segments in the store: reading a segment's metadata without
 * its body (the prefix and header from the front, the trailer from the end,
 * the object ids from its pack index: ranged reads, so a segment of any size
 * costs a few small reads), used by index sync, the archiver's object set
 * and the audit; and writing a full backup's log record, its claim on an LSN.
 */
#include "gitwal/array.h"
#include "gitwal/segment.h"
#include "gitwal/error.h"
#include "gitwal/layout.h"
#include "gitwal/store.h"
#include "util/bytes.h"

#include <stdlib.h>
#include <string.h>

int gw_segment_read_meta(gw_store *store, const char *key, uint64_t size, gw_segment_header *h,
			 unsigned char trailer[GW_SEGMENT_TRAILER_SIZE])
{
	unsigned char *buf = NULL;
	size_t need = GW_SEGMENT_PREFIX_SIZE, have = 0, cap = 0;
	int rc;
	if (size < GW_SEGMENT_PREFIX_SIZE + GW_SEGMENT_TRAILER_SIZE)
		return gw_error_set(GW_ECORRUPT, "segment %s is truncated (%llu bytes)", key, (unsigned long long)size);
	/* The prefix says how long the header is: read more until the decoder has what it needs. */
	for (;;) {
		if (need > size - GW_SEGMENT_TRAILER_SIZE) {
			rc = gw_error_set(GW_ECORRUPT, "segment %s: header longer than the segment", key);
			break;
		}
		if ((rc = GW_ARRAY_RESERVE(buf, cap, need)) < 0)
			break;
		if ((rc = gw_store_read_range(store, key, have, need - have, buf + have)) < 0)
			break;
		have = need;
		if ((rc = gw_segment_header_decode(h, buf, have, &need, key)) <= 0)
			break;
	}
	free(buf);
	if (rc < 0)
		return rc;
	if ((rc = gw_store_read_range(store, key, size - GW_SEGMENT_TRAILER_SIZE, GW_SEGMENT_TRAILER_SIZE, trailer)) < 0)
		gw_segment_header_dispose(h);
	return rc;
}

int gw_segment_read_oids(gw_store *store, const char *key, uint64_t size, size_t hash_len, unsigned char **oids,
			 size_t *n)
{
	unsigned char prefix[GW_SEGMENT_PREFIX_SIZE], trailer[GW_SEGMENT_TRAILER_SIZE], *idx = NULL;
	uint64_t h, b, i, count;
	int rc;
	*oids = NULL;
	*n = 0;
	if (size < GW_SEGMENT_PREFIX_SIZE + GW_SEGMENT_TRAILER_SIZE)
		return gw_error_set(GW_ECORRUPT, "segment %s is truncated", key);
	if ((rc = gw_store_read_range(store, key, 0, sizeof(prefix), prefix)) < 0 ||
	    (rc = gw_store_read_range(store, key, size - sizeof(trailer), sizeof(trailer), trailer)) < 0)
		return rc;
	h = gw_segment_prefix_header_length(prefix);
	gw_segment_trailer_lengths(trailer, &b, &i);
	if (!i)
		return 0;
	if (GW_SEGMENT_PREFIX_SIZE + h + b + i + GW_SEGMENT_TRAILER_SIZE != size || i < 8 + 1024 + 2 * hash_len ||
	    i > (1u << 30))
		return gw_error_set(GW_ECORRUPT, "segment %s: its lengths do not add up", key);
	if (!(idx = malloc(i)))
		return gw_error_set(GW_ERROR, "out of memory");
	if ((rc = gw_store_read_range(store, key, GW_SEGMENT_PREFIX_SIZE + h + b, i, idx)) < 0)
		goto out;
	count = gw_get_be32(idx + 8 + 255 * 4);
	if (memcmp(idx, "\377tOc", 4) != 0 || 8 + 1024 + count * (hash_len + 8) + 2 * hash_len > i) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s: its pack index is damaged", key);
		goto out;
	}
	if (!(*oids = malloc(count ? count * hash_len : 1))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	memcpy(*oids, idx + 8 + 1024, count * hash_len);
	*n = (size_t)count;
out:
	free(idx);
	return rc;
}

int gw_segment_claim_full(gw_store *store, const char *rel, uint64_t lsn, int64_t time_us)
{
	gw_segment_header h;
	unsigned char *buf = NULL, trailer[GW_SEGMENT_TRAILER_SIZE], *rec;
	size_t len;
	gw_hash *hash;
	char *key = NULL;
	int rc;

	memset(&h, 0, sizeof(h));
	h.repository = (char *)rel;
	h.lsn = h.base_lsn = lsn;
	h.full_backup = 1;
	h.time_first_us = h.time_last_us = time_us;
	if ((rc = gw_segment_header_encode(&h, &buf, &len)) < 0)
		return rc;
	if ((rec = realloc(buf, len + sizeof(trailer))))
		buf = rec;
	if (!rec || !(key = gw_layout_key(rel, lsn, GW_KEY_SEGMENT)) || gw_hash_new(&hash, GW_HASH_SHA256) < 0) {
		free(key);
		free(buf);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	gw_hash_update(hash, buf, len);
	gw_segment_trailer_encode(trailer, 0, 0, hash);
	gw_hash_free(hash);
	memcpy(buf + len, trailer, sizeof(trailer));
	rc = gw_store_put(store, key, buf, len + sizeof(trailer));
	free(key);
	free(buf);
	return rc;
}
