/*
 * Reading Git pack indexes (.idx version 2) through a file descriptor, with
 * every field bounds-checked. Nothing is mapped, so reading a large index
 * costs bounded memory (see gw_idx_stream) and never inflates RSS.
 *
 * Layout: "\377tOc", version 2, 256 fanout entries (uint32 BE), then for N
 * objects: N object ids, N CRC32s, N 32-bit offsets (MSB set: index into the
 * 64-bit large-offset table), the large offsets, the pack checksum and the
 * index checksum.
 */
#include "pack/pack.h"
#include "gitwal/error.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int pread_full(int fd, void *buf, size_t len, uint64_t off, const char *name)
{
	unsigned char *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
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
		if ((rc = pread_full(idx->fd, buf, n, off, idx->name)) < 0)
			goto out;
		gw_hash_update(h, buf, n);
		off += n;
	}
	gw_hash_final(h, got);
	if ((rc = pread_full(idx->fd, want, idx->hash_len, end, idx->name)) < 0)
		goto out;
	if (memcmp(want, got, idx->hash_len) != 0)
		rc = gw_error_set(GW_ECORRUPT, "%s: index checksum mismatch", idx->name);
out:
	gw_hash_free(h);
	return rc;
}

int gw_idx_open(gw_idx *idx, int fd, const char *name, size_t hash_len, int verify)
{
	unsigned char head[8 + 1024];
	struct stat st;
	uint64_t fixed, rest;
	int i, rc;

	memset(idx, 0, sizeof(*idx));
	idx->fd = fd;
	idx->name = name;
	idx->hash_len = hash_len;
	if (fstat(fd, &st) < 0)
		return gw_error_set_errno(GW_EIO, "cannot stat %s", name);
	idx->file_size = (uint64_t)st.st_size;
	if (idx->file_size < sizeof(head) + 2 * hash_len)
		return gw_error_set(GW_ECORRUPT, "%s: too small to be a pack index (%llu bytes)", name,
				    (unsigned long long)idx->file_size);
	if ((rc = pread_full(fd, head, sizeof(head), 0, name)) < 0)
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
	if ((rc = pread_full(fd, idx->pack_checksum, hash_len, idx->file_size - 2 * hash_len, name)) < 0)
		return rc;
	if (verify && (rc = verify_checksum(idx)) < 0)
		return rc;
	return 0;
}

int gw_idx_oid_at(const gw_idx *idx, uint32_t pos, unsigned char *oid)
{
	if (pos >= idx->count)
		return gw_error_set(GW_ECORRUPT, "%s: object position %u out of range", idx->name, pos);
	return pread_full(idx->fd, oid, idx->hash_len, idx->oid_off + (uint64_t)pos * idx->hash_len, idx->name);
}

int gw_idx_crc_at(const gw_idx *idx, uint32_t pos, uint32_t *crc)
{
	unsigned char b[4];
	int rc;
	if (pos >= idx->count)
		return gw_error_set(GW_ECORRUPT, "%s: object position %u out of range", idx->name, pos);
	if ((rc = pread_full(idx->fd, b, 4, idx->crc_off + (uint64_t)pos * 4, idx->name)) < 0)
		return rc;
	*crc = gw_get_be32(b);
	return 0;
}

int gw_idx_decode_offset(const gw_idx *idx, const unsigned char *entry, uint64_t *offset)
{
	uint32_t v = gw_get_be32(entry);
	unsigned char b[8];
	int rc;
	if (!(v & 0x80000000u)) {
		*offset = v;
		return 0;
	}
	v &= 0x7fffffffu;
	if (v >= idx->large_count)
		return gw_error_set(GW_ECORRUPT, "%s: large offset %u out of range", idx->name, v);
	if ((rc = pread_full(idx->fd, b, 8, idx->large_off + (uint64_t)v * 8, idx->name)) < 0)
		return rc;
	*offset = (uint64_t)gw_get_be32(b) << 32 | gw_get_be32(b + 4);
	return 0;
}

int gw_idx_offset_at(const gw_idx *idx, uint32_t pos, uint64_t *offset)
{
	unsigned char b[4];
	int rc;
	if (pos >= idx->count)
		return gw_error_set(GW_ECORRUPT, "%s: object position %u out of range", idx->name, pos);
	if ((rc = pread_full(idx->fd, b, 4, idx->ofs_off + (uint64_t)pos * 4, idx->name)) < 0)
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
		if ((*err = pread_full(s->idx->fd, s->buf, want, s->next_off, s->idx->name)) < 0)
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
