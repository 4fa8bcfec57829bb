/*
 * Reading Git pack indexes (.idx version 2) through a file descriptor (or
 * from a buffer, for the small indexes of log segments), with every field
 * bounds-checked. Nothing is mapped, so reading a large index costs bounded
 * memory (see gw_idx_stream) and never inflates RSS.
 *
 * Layout: "\377tOc", version 2, 256 fanout entries (uint32 BE), then for N
 * objects: N object ids, N CRC32s, N 32-bit offsets (MSB set: index into the
 * 64-bit large-offset table), the large offsets, the pack checksum and the
 * index checksum.
 */
#include "pack/pack.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int pread_full(const gw_idx *idx, void *buf, size_t len, uint64_t off)
{
	const char *name = idx->name;
	unsigned char *p = buf;
	if (idx->mem) {
		if (off > idx->file_size || len > idx->file_size - off)
			return gw_error_set(GW_ECORRUPT, "%s is truncated at byte %llu", name, (unsigned long long)off);
		memcpy(buf, idx->mem + off, len);
		return 0;
	}
	while (len) {
		ssize_t n = pread(idx->fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return gw_error_set_errno(GW_EIO, "cannot read %s", name);
		if (n == 0)
			return gw_error_set(GW_ECORRUPT, "%s is truncated at byte %llu", name, (unsigned long long)off);
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

static int verify_checksum(gw_idx *idx)
{
	unsigned char buf[1 << 16], want[GW_HASH_MAX], got[GW_HASH_MAX];
	uint64_t off = 0, end = idx->file_size - idx->hash_len;
	gw_hash *h;
	int rc;

	if ((rc = gw_hash_new(&h, idx->hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256)) < 0)
		return rc;
	while (off < end) {
		size_t n = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
		if ((rc = pread_full(idx, buf, n, off)) < 0)
			goto out;
		gw_hash_update(h, buf, n);
		off += n;
	}
	gw_hash_final(h, got);
	if ((rc = pread_full(idx, want, idx->hash_len, end)) < 0)
		goto out;
	if (memcmp(want, got, idx->hash_len) != 0)
		rc = gw_error_set(GW_ECORRUPT, "%s: index checksum mismatch", idx->name);
out:
	gw_hash_free(h);
	return rc;
}

/* Parse the header and sizes of the index whose source (fd or mem) and file_size are set. */
static int idx_parse(gw_idx *idx, int verify)
{
	unsigned char head[8 + 1024];
	const char *name = idx->name;
	size_t hash_len = idx->hash_len;
	uint64_t fixed, rest;
	int i, rc;

	if (idx->file_size < sizeof(head) + 2 * hash_len)
		return gw_error_set(GW_ECORRUPT, "%s: too small to be a pack index (%llu bytes)", name,
				    (unsigned long long)idx->file_size);
	if ((rc = pread_full(idx, head, sizeof(head), 0)) < 0)
		return rc;
	if (memcmp(head, GW_IDX_V2_MAGIC, 4) != 0)
		return gw_error_set(GW_ECORRUPT, "%s: not a version 2 pack index (bad magic)", name);
	if (gw_get_be32(head + 4) != 2)
		return gw_error_set(GW_EVERSION, "%s: pack index version %u is not supported (only 2)", name,
				    gw_get_be32(head + 4));
	for (i = 0; i < 256; i++) {
		idx->fanout[i] = gw_get_be32(head + 8 + 4 * i);
		if (i && idx->fanout[i] < idx->fanout[i - 1])
			return gw_error_set(GW_ECORRUPT, "%s: fanout table is not monotonic at entry %d", name, i);
	}
	idx->count = idx->fanout[255];
	fixed = sizeof(head) + (uint64_t)idx->count * (hash_len + 8) + 2 * hash_len;
	if (idx->file_size < fixed)
		return gw_error_set(GW_ECORRUPT, "%s: %u objects need %llu bytes, the file has %llu", name, idx->count,
				    (unsigned long long)fixed, (unsigned long long)idx->file_size);
	rest = idx->file_size - fixed;
	if (rest % 8 != 0 || rest / 8 > idx->count)
		return gw_error_set(GW_ECORRUPT, "%s: large-offset table has an impossible size (%llu bytes)", name,
				    (unsigned long long)rest);
	idx->large_count = (uint32_t)(rest / 8);
	idx->oid_off = sizeof(head);
	idx->crc_off = idx->oid_off + (uint64_t)idx->count * hash_len;
	idx->ofs_off = idx->crc_off + (uint64_t)idx->count * 4;
	idx->large_off = idx->ofs_off + (uint64_t)idx->count * 4;
	if ((rc = pread_full(idx, idx->pack_checksum, hash_len, idx->file_size - 2 * hash_len)) < 0)
		return rc;
	if (verify && (rc = verify_checksum(idx)) < 0)
		return rc;
	return 0;
}

int gw_idx_open(gw_idx *idx, int fd, const char *name, size_t hash_len, int verify)
{
	struct stat st;
	memset(idx, 0, sizeof(*idx));
	idx->fd = fd;
	idx->name = name;
	idx->hash_len = hash_len;
	if (fstat(fd, &st) < 0)
		return gw_error_set_errno(GW_EIO, "cannot stat %s", name);
	idx->file_size = (uint64_t)st.st_size;
	return idx_parse(idx, verify);
}

int gw_idx_open_buffer(gw_idx *idx, const unsigned char *buf, size_t len, const char *name, size_t hash_len,
		       int verify)
{
	memset(idx, 0, sizeof(*idx));
	idx->fd = -1;
	idx->mem = buf;
	idx->name = name;
	idx->hash_len = hash_len;
	idx->file_size = len;
	return idx_parse(idx, verify);
}

/* Entry pos of the table at off, of width bytes an entry (one per object). */
static int entry_at(const gw_idx *idx, uint64_t off, size_t width, uint32_t pos, unsigned char *out)
{
	if (pos >= idx->count)
		return gw_error_set(GW_ECORRUPT, "%s: object position %u out of range", idx->name, pos);
	return pread_full(idx, out, width, off + (uint64_t)pos * width);
}

int gw_idx_oid_at(const gw_idx *idx, uint32_t pos, unsigned char *oid)
{
	return entry_at(idx, idx->oid_off, idx->hash_len, pos, oid);
}

int gw_idx_crc_at(const gw_idx *idx, uint32_t pos, uint32_t *crc)
{
	unsigned char b[4];
	int rc;
	if ((rc = entry_at(idx, idx->crc_off, 4, pos, b)) < 0)
		return rc;
	*crc = gw_get_be32(b);
	return 0;
}

int gw_idx_decode_offset(const gw_idx *idx, const unsigned char *entry, uint64_t *offset)
{
	uint32_t v = gw_get_be32(entry);
	unsigned char b[8];
	int rc;
	/* Defined on every return: callers (and compilers tracing them) never see an unset value. */
	*offset = 0;
	if (!(v & 0x80000000u)) {
		*offset = v;
		return 0;
	}
	v &= 0x7fffffffu;
	if (v >= idx->large_count)
		return gw_error_set(GW_ECORRUPT, "%s: large offset %u out of range", idx->name, v);
	if ((rc = pread_full(idx, b, 8, idx->large_off + (uint64_t)v * 8)) < 0)
		return rc;
	*offset = (uint64_t)gw_get_be32(b) << 32 | gw_get_be32(b + 4);
	return 0;
}

int gw_idx_offset_at(const gw_idx *idx, uint32_t pos, uint64_t *offset)
{
	unsigned char b[4];
	int rc;
	if ((rc = entry_at(idx, idx->ofs_off, 4, pos, b)) < 0)
		return rc;
	return gw_idx_decode_offset(idx, b, offset);
}

int gw_idx_stream_init(gw_idx_stream *s, const gw_idx *idx, gw_idx_table table, size_t buf_size)
{
	memset(s, 0, sizeof(*s));
	s->idx = idx;
	s->remaining = idx->count;
	switch (table) {
	case GW_IDX_TABLE_OID:
		s->entry_size = idx->hash_len;
		s->next_off = idx->oid_off;
		break;
	case GW_IDX_TABLE_CRC:
		s->entry_size = 4;
		s->next_off = idx->crc_off;
		break;
	default:
		s->entry_size = 4;
		s->next_off = idx->ofs_off;
		break;
	}
	/* No more than the table needs (a segment's index is small), and room for 16 entries at least. */
	if (buf_size > (uint64_t)idx->count * s->entry_size)
		buf_size = (size_t)idx->count * s->entry_size;
	if (buf_size < s->entry_size * 16)
		buf_size = s->entry_size * 16;
	buf_size -= buf_size % s->entry_size;
	s->buf_size = buf_size;
	if (!(s->buf = malloc(buf_size)))
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

const unsigned char *gw_idx_stream_next(gw_idx_stream *s, int *err)
{
	const unsigned char *p;
	*err = 0;
	if (s->buf_pos == s->buf_len) {
		size_t want;
		if (!s->remaining)
			return NULL;
		want = (uint64_t)s->remaining * s->entry_size < s->buf_size ? s->remaining * s->entry_size
									     : s->buf_size;
		if ((*err = pread_full(s->idx, s->buf, want, s->next_off)) < 0)
			return NULL;
		s->next_off += want;
		s->buf_len = want;
		s->buf_pos = 0;
	}
	p = s->buf + s->buf_pos;
	s->buf_pos += s->entry_size;
	s->remaining--;
	return p;
}

void gw_idx_stream_dispose(gw_idx_stream *s)
{
	free(s->buf);
	s->buf = NULL;
}

int gw_idx_find(const gw_idx *idx, const unsigned char *oid, uint32_t *pos)
{
	uint32_t lo = oid[0] ? idx->fanout[oid[0] - 1] : 0, hi = idx->fanout[oid[0]];
	unsigned char cur[GW_HASH_MAX];
	int rc;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int cmp;
		if ((rc = gw_idx_oid_at(idx, mid, cur)) < 0)
			return rc;
		cmp = memcmp(cur, oid, idx->hash_len);
		if (cmp == 0) {
			*pos = mid;
			return 1;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

int gw_idx_verify(const gw_idx *idx, const unsigned char *want, size_t nwant, unsigned char *found)
{
	gw_idx_stream s;
	const unsigned char *oid;
	unsigned char prev[GW_HASH_MAX];
	char hex[GW_HEX_MAX];
	size_t j = 0, hl = idx->hash_len;
	uint32_t i;
	int rc, err = 0;

	if ((rc = gw_idx_stream_init(&s, idx, GW_IDX_TABLE_OID, 1u << 16)) < 0)
		return rc;
	for (i = 0; (oid = gw_idx_stream_next(&s, &err)); i++) {
		uint32_t lo = oid[0] ? idx->fanout[oid[0] - 1] : 0;
		int cmp;
		if (i && (cmp = memcmp(prev, oid, hl)) >= 0) {
			gw_hex_encode(hex, oid, hl);
			rc = cmp ? gw_error_set(GW_ECORRUPT, "%s: object ids are not sorted at position %u (%s)", idx->name,
						i, hex)
				 : gw_error_set(GW_ECORRUPT, "%s: object %s is listed twice", idx->name, hex);
			break;
		}
		/* Its fanout bucket must hold it: lookups search only there. */
		if (i < lo || i >= idx->fanout[oid[0]]) {
			rc = gw_error_set(GW_ECORRUPT, "%s: the fanout table does not match object %u's id", idx->name, i);
			break;
		}
		memcpy(prev, oid, hl);
		for (; j < nwant && (cmp = memcmp(want + j * hl, oid, hl)) <= 0; j++)
			if (cmp == 0)
				found[j] = 1;
	}
	if (rc == 0 && err < 0)
		rc = err;
	gw_idx_stream_dispose(&s);
	return rc;
}

/* ---- offset windows ---- */

static int ofs_cmp(const void *a, const void *b)
{
	const gw_idx_ofs_entry *x = a, *y = b;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int gw_idx_load_window(const gw_idx *idx, uint64_t end, uint64_t lo, uint64_t hi, size_t stream_buf,
		       gw_idx_ofs_entry **out, size_t *count, uint64_t *next_off)
{
	gw_idx_stream ofs, crc;
	gw_idx_ofs_entry *arr = NULL;
	size_t n = 0, cap = 0;
	uint32_t pos;
	int rc, err;

	*out = NULL;
	*count = 0;
	*next_off = end;
	if ((rc = gw_idx_stream_init(&ofs, idx, GW_IDX_TABLE_OFFSET, stream_buf)) < 0)
		return rc;
	if ((rc = gw_idx_stream_init(&crc, idx, GW_IDX_TABLE_CRC, stream_buf)) < 0) {
		gw_idx_stream_dispose(&ofs);
		return rc;
	}
	for (pos = 0; pos < idx->count; pos++) {
		const unsigned char *oe = gw_idx_stream_next(&ofs, &err), *ce;
		uint64_t off;
		if (!oe || !(ce = gw_idx_stream_next(&crc, &err))) {
			rc = err < 0 ? err : gw_error_set(GW_ECORRUPT, "%s: index ends early", idx->name);
			goto fail;
		}
		if ((rc = gw_idx_decode_offset(idx, oe, &off)) < 0)
			goto fail;
		if (off < GW_PACK_HEADER_SIZE || off >= end) {
			rc = gw_error_set(GW_ECORRUPT, "%s: object %u has offset %llu outside the pack", idx->name, pos,
					  (unsigned long long)off);
			goto fail;
		}
		if (off >= hi) {
			if (off < *next_off)
				*next_off = off;
			continue;
		}
		if (off < lo)
			continue;
		if ((rc = GW_ARRAY_RESERVE(arr, cap, n + 1)) < 0)
			goto fail;
		arr[n].offset = off;
		arr[n].pos = pos;
		arr[n].crc = gw_get_be32(ce);
		n++;
	}
	gw_idx_stream_dispose(&ofs);
	gw_idx_stream_dispose(&crc);
	if (n)
		qsort(arr, n, sizeof(*arr), ofs_cmp);
	*out = arr;
	*count = n;
	return 0;
fail:
	gw_idx_stream_dispose(&ofs);
	gw_idx_stream_dispose(&crc);
	free(arr);
	return rc;
}

int gw_idx_windows(const gw_idx *idx, uint64_t end, uint32_t max_entries, size_t stream_buf, uint64_t **bounds,
		   size_t *nbounds)
{
	enum { BUCKETS = 4096 };
	uint64_t span = end > GW_PACK_HEADER_SIZE ? end - GW_PACK_HEADER_SIZE : 0, *b;
	uint32_t *hist, pos, acc = 0;
	gw_idx_stream ofs;
	size_t nb = 0, i;
	int rc = 0, err;

	/* One window (nearly always: a segment's pack) needs two bounds, not a histogram's worth. */
	if (!(b = malloc((idx->count <= max_entries || span == 0 ? 2 : BUCKETS + 2) * sizeof(*b))))
		return gw_error_set(GW_ERROR, "out of memory");
	b[nb++] = GW_PACK_HEADER_SIZE;
	if (idx->count <= max_entries || span == 0) {
		b[nb++] = UINT64_MAX;
		*bounds = b;
		*nbounds = nb;
		return 0;
	}
	if (!(hist = calloc(BUCKETS, sizeof(*hist)))) {
		free(b);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	if ((rc = gw_idx_stream_init(&ofs, idx, GW_IDX_TABLE_OFFSET, stream_buf)) < 0)
		goto out;
	for (pos = 0; pos < idx->count; pos++) {
		const unsigned char *oe = gw_idx_stream_next(&ofs, &err);
		uint64_t off;
		if (!oe) {
			rc = err < 0 ? err : gw_error_set(GW_ECORRUPT, "%s: index ends early", idx->name);
			break;
		}
		if ((rc = gw_idx_decode_offset(idx, oe, &off)) < 0)
			break;
		if (off >= GW_PACK_HEADER_SIZE && off < end)
			hist[(off - GW_PACK_HEADER_SIZE) * BUCKETS / span]++;
	}
	gw_idx_stream_dispose(&ofs);
	for (i = 0; i < BUCKETS && rc == 0; i++) {
		if (acc && acc + hist[i] > max_entries) {
			b[nb++] = GW_PACK_HEADER_SIZE + (i * span + BUCKETS - 1) / BUCKETS;
			acc = 0;
		}
		acc += hist[i];
	}
	b[nb++] = UINT64_MAX;
out:
	free(hist);
	if (rc < 0) {
		free(b);
		return rc;
	}
	*bounds = b;
	*nbounds = nb;
	return 0;
}
