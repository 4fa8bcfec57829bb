/*
 * Checking a pack against its index while it streams by (see pack.h,
 * gw_pack_check). Restore installs a stored pack and index as they are, with
 * no index-pack: a store whose own checksums agree (a SHA-256 recomputed
 * after a byte was flipped, an index written for another pack) would
 * otherwise give a repository that git fsck rejects. What index-pack would
 * catch cheaply is checked here on the bytes restore writes anyway: the
 * pack's SHA-1 against its trailer, the index's offsets and CRC32s against
 * the pack's objects, each entry's header. Objects are not inflated or
 * hashed (that is index-pack's cost).
 *
 * The objects are met in offset order, so the index's offsets are loaded
 * sorted, one window of at most gw_pack_check_window entries at a time (the
 * splicer's windows, gw_idx_windows), and each object's CRC32 is folded over
 * its bytes as they pass.
 */
#include "pack/pack.h"
#include "gitwal/error.h"
#include "util/bytes.h"
#include "util/crc32.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Offsets held at once; a variable only so that tests can cover window changes on a small pack. */
uint32_t gw_pack_check_window = 1u << 20;
#define CHECK_STREAM_BUF (1u << 16)
#define CHECK_READ_BUF (1u << 20)

const char *gw_pack_entry_check(const unsigned char *buf, size_t avail, uint64_t offset, uint64_t entry_len,
				size_t hash_len, gw_pack_entry *e)
{
	size_t used;
	memset(e, 0, sizeof(*e));
	if (avail > entry_len)
		avail = (size_t)entry_len;
	e->header_len = gw_pack_parse_header(buf, avail, &e->type, &e->size);
	if (!e->header_len || e->type == 0 || e->type == 5)
		return "bad entry header";
	used = e->header_len;
	if (e->type == GW_OBJ_OFS_DELTA) {
		e->ofs_len = gw_pack_parse_ofs(buf + used, avail - used, &e->distance);
		if (!e->ofs_len || e->distance == 0 || offset < GW_PACK_HEADER_SIZE ||
		    e->distance > offset - GW_PACK_HEADER_SIZE)
			return "bad delta base offset";
		used += e->ofs_len;
	} else if (e->type == GW_OBJ_REF_DELTA) {
		if (avail - used < hash_len)
			return "bad entry header";
		used += hash_len;
	}
	if (used >= entry_len)
		return "the entry has no data";
	return NULL;
}

struct gw_pack_check {
	gw_sink sink;
	gw_sink *next;              /* where the bytes go on, once checked (may be NULL) */
	const char *what;           /* the pack, for messages */
	const gw_idx *idx;
	uint64_t size, body_end, pos;
	gw_hash *sum;               /* SHA-1 or SHA-256, the index's */
	unsigned char head[GW_PACK_HEADER_SIZE], trailer[GW_HASH_MAX];
	uint64_t *bounds;
	size_t nbounds, w;          /* the next window to load is [bounds[w], bounds[w + 1]) */
	gw_idx_ofs_entry *win;
	size_t nwin, k;             /* win[k] is the object being read */
	uint64_t next_off;          /* the first offset after the window */
	uint64_t obj_end;           /* where win[k] ends */
	uint32_t crc;
	unsigned char ehead[GW_PACK_ENTRY_HEADER_MAX];
	size_t ehead_len;
	int done;                   /* every object was read */
	int failed;                 /* the first error, returned by every later call */
};

static int object_error(gw_pack_check *c, const gw_idx_ofs_entry *e, const char *what)
{
	unsigned char oid[GW_HASH_MAX];
	char hex[GW_HEX_MAX] = "?";
	if (gw_idx_oid_at(c->idx, e->pos, oid) == 0)
		gw_hex_encode(hex, oid, c->idx->hash_len);
	return gw_error_set(GW_ECORRUPT, "%s: object %s (offset %llu) is corrupt: %s", c->what, hex,
			    (unsigned long long)e->offset, what);
}

/* Make win[k] the object that must start at `expect` (loading windows as needed), or note that none is left. */
static int next_object(gw_pack_check *c, uint64_t expect)
{
	int rc;
	while (c->k >= c->nwin) {
		free(c->win);
		c->win = NULL;
		c->nwin = c->k = 0;
		if (c->w + 1 >= c->nbounds) {
			if (expect != c->body_end)
				return gw_error_set(GW_ECORRUPT,
						    "%s: the index does not cover the whole pack (its objects end at byte %llu, the trailer starts at %llu)",
						    c->what, (unsigned long long)expect, (unsigned long long)c->body_end);
			c->done = 1;
			return 0;
		}
		if ((rc = gw_idx_load_window(c->idx, c->body_end, c->bounds[c->w], c->bounds[c->w + 1], CHECK_STREAM_BUF,
					     &c->win, &c->nwin, &c->next_off)) < 0)
			return rc;
		c->w++;
	}
	if (c->win[c->k].offset != expect)
		return object_error(c, &c->win[c->k], "pack index offsets do not tile the pack");
	c->obj_end = c->k + 1 < c->nwin ? c->win[c->k + 1].offset : c->next_off;
	if (c->obj_end <= expect)
		return object_error(c, &c->win[c->k], "two objects share an offset");
	c->crc = 0;
	c->ehead_len = 0;
	return 0;
}

/* An OFS_DELTA's base must be an object; checked when it lies in the window at hand (all of a pack below 2^20 objects). */
static int base_in_window(const gw_pack_check *c, uint64_t base)
{
	size_t lo = 0, hi = c->nwin;
	if (!c->nwin || base < c->win[0].offset)
		return 1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (c->win[mid].offset == base)
			return 1;
		if (c->win[mid].offset < base)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* win[k] has been read whole: its CRC32 and its header. */
static int end_object(gw_pack_check *c)
{
	const gw_idx_ofs_entry *e = &c->win[c->k];
	gw_pack_entry pe;
	const char *bad;
	if (c->crc != e->crc)
		return object_error(c, e, "CRC32 mismatch with the pack index");
	if ((bad = gw_pack_entry_check(c->ehead, c->ehead_len, e->offset, c->obj_end - e->offset, c->idx->hash_len, &pe)))
		return object_error(c, e, bad);
	if (pe.type == GW_OBJ_OFS_DELTA && !base_in_window(c, e->offset - pe.distance))
		return object_error(c, e, "its delta base offset is not an object's");
	c->k++;
	return next_object(c, c->obj_end);
}

static int check_header(gw_pack_check *c)
{
	if (memcmp(c->head, "PACK\0\0\0\2", 8) != 0)
		return gw_error_set(GW_ECORRUPT, "%s: its pack does not start with a version 2 pack header", c->what);
	if (gw_get_be32(c->head + 8) != c->idx->count)
		return gw_error_set(GW_ECORRUPT, "%s: its pack header counts %u objects, its index %u", c->what,
				    gw_get_be32(c->head + 8), c->idx->count);
	return 0;
}

static int check_write(gw_sink *sink, const void *buf, size_t len)
{
	gw_pack_check *c = (gw_pack_check *)sink;
	const unsigned char *p = buf;
	size_t whole = len;
	int rc = 0;
	if (c->failed)
		return c->failed;
	if (len > c->size - c->pos) {
		rc = gw_error_set(GW_ECORRUPT, "%s: its pack is longer than %llu bytes", c->what,
				  (unsigned long long)c->size);
		goto out;
	}
	/* The pack's hash over everything before the trailer, in one call per piece. */
	if (c->pos < c->body_end)
		gw_hash_update(c->sum, p, c->body_end - c->pos < len ? (size_t)(c->body_end - c->pos) : len);
	while (len && rc == 0) {
		size_t n;
		if (c->pos < GW_PACK_HEADER_SIZE) {
			n = GW_PACK_HEADER_SIZE - (size_t)c->pos < len ? GW_PACK_HEADER_SIZE - (size_t)c->pos : len;
			memcpy(c->head + c->pos, p, n);
			if (c->pos + n == GW_PACK_HEADER_SIZE)
				rc = check_header(c);
		} else if (c->pos < c->body_end) {
			if (c->done) {
				rc = gw_error_set(GW_ECORRUPT, "%s: bytes of its pack at %llu belong to no object", c->what,
						  (unsigned long long)c->pos);
				break;
			}
			n = c->obj_end - c->pos < len ? (size_t)(c->obj_end - c->pos) : len;
			c->crc = gw_crc32(c->crc, p, n);
			if (c->ehead_len < sizeof(c->ehead)) {
				size_t h = sizeof(c->ehead) - c->ehead_len < n ? sizeof(c->ehead) - c->ehead_len : n;
				memcpy(c->ehead + c->ehead_len, p, h);
				c->ehead_len += h;
			}
			if (c->pos + n == c->obj_end) {
				c->pos += n;
				p += n;
				len -= n;
				rc = end_object(c);
				continue;
			}
		} else {
			n = (size_t)(c->size - c->pos) < len ? (size_t)(c->size - c->pos) : len;
			memcpy(c->trailer + (c->pos - c->body_end), p, n);
		}
		c->pos += n;
		p += n;
		len -= n;
	}
	if (rc == 0 && c->next)
		rc = gw_sink_write(c->next, buf, whole);
out:
	if (rc < 0)
		c->failed = rc;
	return rc;
}

int gw_pack_check_new(gw_pack_check **out, const gw_idx *idx, uint64_t size, const char *what, gw_sink *next)
{
	gw_pack_check *c;
	int rc;
	*out = NULL;
	if (size < GW_PACK_HEADER_SIZE + idx->hash_len)
		return gw_error_set(GW_ECORRUPT, "%s: its pack is %llu bytes, too short for a header and a trailer", what,
				    (unsigned long long)size);
	if (!(c = calloc(1, sizeof(*c))) || gw_hash_new(&c->sum, idx->hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256) < 0) {
		free(c);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	c->sink.write = check_write;
	c->next = next;
	c->what = what;
	c->idx = idx;
	c->size = size;
	c->body_end = size - idx->hash_len;
	if ((rc = gw_idx_windows(idx, c->body_end, gw_pack_check_window, CHECK_STREAM_BUF, &c->bounds, &c->nbounds)) < 0 ||
	    (rc = next_object(c, GW_PACK_HEADER_SIZE)) < 0) {
		gw_pack_check_free(c);
		return rc;
	}
	*out = c;
	return 0;
}

gw_sink *gw_pack_check_sink(gw_pack_check *c)
{
	return &c->sink;
}

int gw_pack_check_finish(gw_pack_check *c)
{
	unsigned char sum[GW_HASH_MAX];
	char got[GW_HEX_MAX], want[GW_HEX_MAX];
	size_t hl = c->idx->hash_len;
	if (c->failed)
		return c->failed;
	if (c->pos != c->size)
		return gw_error_set(GW_ECORRUPT, "%s: its pack is truncated (%llu of %llu bytes)", c->what,
				    (unsigned long long)c->pos, (unsigned long long)c->size);
	gw_hash_final(c->sum, sum);
	gw_hex_encode(got, sum, hl);
	gw_hex_encode(want, c->trailer, hl);
	if (memcmp(sum, c->trailer, hl) != 0)
		return gw_error_set(GW_ECORRUPT, "%s: its pack's content hashes to %s %s, its trailer says %s", c->what,
				    hl == 20 ? "SHA-1" : "SHA-256", got, want);
	if (memcmp(c->trailer, c->idx->pack_checksum, hl) != 0) {
		gw_hex_encode(got, c->idx->pack_checksum, hl);
		return gw_error_set(GW_ECORRUPT, "%s: its index is for pack %s, the pack is %s", c->what, got, want);
	}
	return 0;
}

void gw_pack_check_free(gw_pack_check *c)
{
	if (!c)
		return;
	gw_hash_free(c->sum);
	free(c->bounds);
	free(c->win);
	free(c);
}

int gw_pack_check_buffer(const gw_idx *idx, const unsigned char *pack, size_t len, const char *what)
{
	gw_pack_check *c;
	int rc;
	if ((rc = gw_pack_check_new(&c, idx, len, what, NULL)) < 0)
		return rc;
	if ((rc = gw_sink_write(&c->sink, pack, len)) == 0)
		rc = gw_pack_check_finish(c);
	gw_pack_check_free(c);
	return rc;
}

int gw_pack_check_fd(const gw_idx *idx, int fd, uint64_t size, const char *what)
{
	gw_pack_check *c;
	unsigned char *buf;
	uint64_t off = 0;
	int rc;
	if ((rc = gw_pack_check_new(&c, idx, size, what, NULL)) < 0)
		return rc;
	if (!(buf = malloc(CHECK_READ_BUF))) {
		gw_pack_check_free(c);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	while (rc == 0 && off < size) {
		size_t want = size - off < CHECK_READ_BUF ? (size_t)(size - off) : CHECK_READ_BUF;
		ssize_t got = pread(fd, buf, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			rc = gw_error_set_errno(GW_EIO, "cannot read %s", what);
		else if (got == 0)
			rc = gw_error_set(GW_ECORRUPT, "%s: its pack is truncated (%llu of %llu bytes)", what,
					  (unsigned long long)off, (unsigned long long)size);
		else if ((rc = gw_sink_write(&c->sink, buf, (size_t)got)) == 0)
			off += (uint64_t)got;
	}
	if (rc == 0)
		rc = gw_pack_check_finish(c);
	free(buf);
	gw_pack_check_free(c);
	return rc;
}
