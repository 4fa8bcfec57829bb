/*
 * libFuzzer target: the .idx v2 reader on arbitrary bytes (through a memfd,
 * as the reader only takes file descriptors). When an index opens, every
 * table is streamed, every offset decoded and every listed id looked up.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "pack/pack.h"

static int fz_idx_write_all(int fd, const uint8_t *data, size_t size)
{
	while (size) {
		ssize_t n = write(fd, data, size);
		if (n <= 0)
			return -1;
		data += n;
		size -= (size_t)n;
	}
	return 0;
}

static void fz_idx_exercise(const gw_idx *idx)
{
	gw_idx_stream oids, crcs, ofs;
	const unsigned char *e;
	unsigned char oid[GW_HASH_MAX];
	uint32_t pos, n = 0, crc;
	uint64_t off;
	int err;

	if (gw_idx_stream_init(&oids, idx, GW_IDX_TABLE_OID, 64) == 0) {
		while ((e = gw_idx_stream_next(&oids, &err))) {
			int found;
			memcpy(oid, e, idx->hash_len);
			found = gw_idx_find(idx, oid, &pos);
			/* An id read from the table is found when the table is sorted; never out of range. */
			if (found == 1 && pos >= idx->count)
				abort();
			if (++n >= 256)
				break;
		}
		gw_idx_stream_dispose(&oids);
	}
	if (gw_idx_stream_init(&crcs, idx, GW_IDX_TABLE_CRC, 1) == 0) {
		while ((e = gw_idx_stream_next(&crcs, &err)))
			;
		gw_idx_stream_dispose(&crcs);
	}
	if (gw_idx_stream_init(&ofs, idx, GW_IDX_TABLE_OFFSET, 4096) == 0) {
		while ((e = gw_idx_stream_next(&ofs, &err)))
			(void)gw_idx_decode_offset(idx, e, &off);
		gw_idx_stream_dispose(&ofs);
	}
	if (idx->count) {
		(void)gw_idx_oid_at(idx, idx->count - 1, oid);
		(void)gw_idx_crc_at(idx, idx->count - 1, &crc);
		(void)gw_idx_offset_at(idx, idx->count - 1, &off);
	}
	(void)gw_idx_oid_at(idx, idx->count, oid);
	memset(oid, 0, sizeof(oid));
	(void)gw_idx_find(idx, oid, &pos);
	memset(oid, 0xff, sizeof(oid));
	(void)gw_idx_find(idx, oid, &pos);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int fd = memfd_create("fuzz.idx", MFD_CLOEXEC);
	gw_idx idx;
	if (fd < 0)
		abort();
	if (fz_idx_write_all(fd, data, size) < 0)
		abort();
	if (gw_idx_open(&idx, fd, "fuzz.idx", 20, 0) == 0)
		fz_idx_exercise(&idx);
	if (gw_idx_open(&idx, fd, "fuzz.idx", 20, 1) == 0)
		fz_idx_exercise(&idx);
	if (gw_idx_open(&idx, fd, "fuzz.idx", 32, 0) == 0) /* SHA-256 repositories */
		fz_idx_exercise(&idx);
	close(fd);
	return 0;
}
