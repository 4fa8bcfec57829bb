/*
 * Fetching and verifying: each part of a restore's plan read from the store
 * once, through the checks of what the manifest and the index say of it, on
 * its way to where building wants it. The full backup's index goes to a
 * file, its pack into the caller's chain (a pack check, then a file or the
 * joined pack); a segment is read whole into memory when small, or streamed
 * into files. Nothing is read a second time to be checked: size and SHA-256
 * are filters on the read (gw_check_filter), packs are checked against
 * their indexes as they pass (gw_pack_check), and where a segment's index
 * comes after its pack, the pack is read back once from the page cache.
 */
#include "restore/restore_internal.h"
#include "gitwal/error.h"
#include "gitwal/segment.h"
#include "util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Whose word a part is checked against, in messages. */
#define BY_MANIFEST "its manifest"
#define BY_INDEX "the index"

/*
 * A part of a full backup into out from `from` on, all of it checked
 * against the manifest as it passes; keep gets the ends of the part.
 */
static int fetch_part(gw_store *store, const gw_manifest_part *part, uint64_t from, gw_sink *out, gw_slice_filter *keep)
{
	gw_check_filter check;
	int rc;
	gw_slice_filter_init(keep, out, from, GW_SLICE_END);
	if ((rc = gw_check_filter_init(&check, GW_HASH_SHA256, &keep->sink, part->key, BY_MANIFEST, part->size,
				       part->sha256)) == 0 &&
	    (rc = gw_store_pump(store, part->key, 0, GW_STORE_TO_END, &check.sink)) == 0)
		rc = gw_check_filter_finish(&check);
	gw_check_filter_dispose(&check);
	return rc;
}

/* A new file for what is fetched (read-only: nothing edits a restored pack); -1 with the error set. */
static int create_file(const char *path, int flags)
{
	int fd = open(path, flags | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd < 0)
		gw_error_set_errno(GW_EIO, "cannot create %s", path);
	return fd;
}

/* The full backup's index into path: it must be for the manifest's pack and hold its objects. */
static int fetch_full_index_file(gw_store *store, const gw_manifest *m, const char *path, int durable)
{
	unsigned char want[GW_HASH_MAX], b[4];
	size_t hl = m->hash_len;
	gw_slice_filter keep;
	gw_fd_sink out;
	ssize_t n;
	int fd, rc;
	if ((fd = create_file(path, O_WRONLY)) < 0)
		return GW_EIO;
	if ((rc = gw_fd_sink_init(&out, fd, path)) == 0 && (rc = fetch_part(store, &m->idx, 0, &out.sink, &keep)) == 0 &&
	    (rc = gw_fd_sink_flush(&out)) == 0 && durable && fsync(fd) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot fsync %s", path);
	gw_fd_sink_dispose(&out);
	close(fd);
	if (rc < 0)
		return rc;
	/* An index ends with its pack's checksum, then its own. */
	gw_hex_decode(want, m->pack_checksum, hl);
	if (keep.pos < 2 * hl || memcmp(gw_slice_filter_tail(&keep, 2 * hl), want, hl) != 0)
		return gw_error_set(GW_ECORRUPT, "key %s: the index is for another pack", m->idx.key);
	/* The object count in the index's fanout must match the manifest. */
	fd = open(path, O_RDONLY | O_CLOEXEC);
	n = fd < 0 ? -1 : pread(fd, b, 4, 8 + 255 * 4);
	if (fd >= 0)
		close(fd);
	if (n != 4 || gw_get_be32(b) != m->objects)
		return gw_error_set(GW_ECORRUPT, "key %s: the index does not hold the %llu objects of the manifest",
				    m->idx.key, (unsigned long long)m->objects);
	return 0;
}

int gw_restore__fetch_full_index(gw_store *store, const gw_manifest *m, const char *path, int durable, gw_idx *idx,
				 int *fd)
{
	int rc;
	*fd = -1;
	if ((rc = fetch_full_index_file(store, m, path, durable)) < 0)
		return rc;
	if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return gw_error_set_errno(GW_EIO, "cannot open %s", path);
	if ((rc = gw_idx_open(idx, *fd, m->idx.key, m->hash_len, 1)) < 0 || (rc = gw_idx_verify(idx, NULL, 0, NULL)) < 0)
		return rc;
	return 0;
}

int gw_restore__fetch_full_pack(gw_store *store, const gw_manifest *m, gw_sink *out,
				unsigned char trailer[GW_HASH_MAX])
{
	gw_slice_filter keep;
	int rc = fetch_part(store, &m->bundle, m->pack_offset, out, &keep);
	if (rc == 0)
		memcpy(trailer, gw_slice_filter_tail(&keep, m->hash_len), m->hash_len);
	return rc;
}

int gw_restore__check_pack_header(const gw_manifest *m, const unsigned char *h)
{
	if (memcmp(h, "PACK\0\0\0\2", 8) != 0 || gw_get_be32(h + 8) != m->objects)
		return gw_error_set(GW_ECORRUPT, "key %s: its pack header does not announce the %llu objects of the manifest",
				    m->bundle.key, (unsigned long long)m->objects);
	return 0;
}

int gw_restore__check_pack_trailer(const gw_manifest *m, const unsigned char *trailer)
{
	unsigned char want[GW_HASH_MAX];
	char hex[GW_HEX_MAX];
	gw_hex_decode(want, m->pack_checksum, m->hash_len);
	if (memcmp(trailer, want, m->hash_len) == 0)
		return 0;
	gw_hex_encode(hex, trailer, m->hash_len);
	return gw_error_set(GW_ECORRUPT, "key %s: pack checksum %s differs from the manifest's %s", m->bundle.key, hex,
			    m->pack_checksum);
}

/* ---- segments ---- */

/*
 * A segment from the store into out, checked on the way: its size against
 * the index's, its SHA-256 (of all but its last 32 bytes) against its
 * trailer's, and the trailer's against the index's. trailer gets its last
 * GW_SEGMENT_TRAILER_SIZE bytes.
 */
static int read_segment(gw_store *store, const gw_restore_segment *seg, gw_sink *out,
			unsigned char trailer[GW_SEGMENT_TRAILER_SIZE])
{
	gw_check_filter check;
	gw_slice_filter keep;
	int rc;
	if (seg->size < GW_SEGMENT_PREFIX_SIZE + GW_SEGMENT_TRAILER_SIZE)
		return gw_error_set(GW_ECORRUPT, "segment %s (LSN %llu) is truncated or not a segment", seg->key,
				    (unsigned long long)seg->lsn);
	gw_slice_filter_init(&keep, out, 0, GW_SLICE_END);
	if ((rc = gw_check_filter_init(&check, GW_HASH_SHA256, &keep.sink, seg->key, BY_INDEX, seg->size, NULL)) == 0) {
		check.covered = seg->size - 32;
		if ((rc = gw_store_pump(store, seg->key, 0, GW_STORE_TO_END, &check.sink)) == 0)
			rc = gw_check_filter_finish(&check);
	}
	if (rc == 0) {
		memcpy(trailer, gw_slice_filter_tail(&keep, GW_SEGMENT_TRAILER_SIZE), GW_SEGMENT_TRAILER_SIZE);
		if (memcmp(check.raw, GW_SEGMENT_TRAILER_DIGEST(trailer), 32) != 0)
			rc = gw_error_set(GW_ECORRUPT,
					  "segment %s (LSN %llu) is corrupt: its SHA-256 does not match its content",
					  seg->key, (unsigned long long)seg->lsn);
		else if (memcmp(check.raw, seg->sha256, 32) != 0)
			rc = gw_error_set(GW_ECORRUPT, "segment %s (LSN %llu) differs from the one indexed", seg->key,
					  (unsigned long long)seg->lsn);
	}
	gw_check_filter_dispose(&check);
	return rc;
}

/* Where a segment's parts begin and end, from its prefix (header_end) and trailer; GW_ECORRUPT unless they add up. */
static int segment_layout(const gw_restore_segment *seg, uint64_t header_end,
			  const unsigned char trailer[GW_SEGMENT_TRAILER_SIZE], uint64_t *bundle_len, uint64_t *idx_len)
{
	uint64_t body_end = seg->size - GW_SEGMENT_TRAILER_SIZE;
	gw_segment_trailer_lengths(trailer, bundle_len, idx_len);
	/* Lengths come from storage: compared without overflowing. */
	if (header_end > body_end || *bundle_len > body_end - header_end || *idx_len != body_end - header_end - *bundle_len)
		return gw_error_set(GW_ECORRUPT, "segment %s: its lengths do not add up to its size", seg->key);
	return 0;
}

int gw_restore__fetch_segment_append(gw_store *store, const gw_restore_segment *seg, gw_pack_appender *app)
{
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	const unsigned char *d, *bundle;
	gw_buffer_sink mem;
	uint64_t blen, ilen, h;
	size_t i;
	int rc;
	gw_buffer_sink_init(&mem, NULL, (size_t)seg->size, (size_t)seg->size, seg->key);
	if ((rc = read_segment(store, seg, &mem.sink, trailer)) < 0)
		goto out;
	d = mem.data;
	if (memcmp(d, GW_SEGMENT_MAGIC, 6) != 0) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s (LSN %llu) is truncated or not a segment", seg->key,
				  (unsigned long long)seg->lsn);
		goto out;
	}
	h = GW_SEGMENT_PREFIX_SIZE + (uint64_t)gw_segment_prefix_header_length(d);
	if ((rc = segment_layout(seg, h, trailer, &blen, &ilen)) < 0 || !ilen)
		goto out; /* !ilen: no objects */
	if (!app) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s (LSN %llu) holds objects its record does not count", seg->key,
				  (unsigned long long)seg->lsn);
		goto out;
	}
	/* The bundle's text header ends with an empty line; its pack follows. */
	bundle = d + h;
	for (i = 1; i < blen && !(bundle[i] == '\n' && bundle[i - 1] == '\n'); i++)
		;
	if (i >= blen) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s: its bundle has no pack", seg->key);
		goto out;
	}
	rc = gw_pack_appender_add(app, bundle + i + 1, blen - i - 1, bundle + blen, ilen, seg->key);
out:
	gw_buffer_sink_dispose(&mem);
	return rc;
}

/*
 * Splits a segment as it streams by: its prefix kept (it says where the
 * header ends), the header and the bundle's text header dropped, and the
 * rest up to the trailer -- the bundle's pack, then the pack index -- passed
 * on. Where the pack ends is in the trailer, known at the end.
 */
typedef struct {
	gw_sink sink;
	gw_sink *out;
	uint64_t pos, trailer_start;
	uint64_t header_end; /* known once the prefix is in */
	uint64_t pack_start; /* where the bundle's pack begins; 0 until its text header ended */
	unsigned char prefix[GW_SEGMENT_PREFIX_SIZE];
	int newline;
} segment_split;

static int split_write(gw_sink *sink, const void *buf, size_t len)
{
	segment_split *s = (segment_split *)sink;
	const unsigned char *p = buf;
	int rc = 0;
	while (len && rc == 0) {
		uint64_t at = s->pos, take;
		if (at < GW_SEGMENT_PREFIX_SIZE) {
			take = GW_SEGMENT_PREFIX_SIZE - at < len ? GW_SEGMENT_PREFIX_SIZE - at : len;
			memcpy(s->prefix + at, p, (size_t)take);
			if (at + take == GW_SEGMENT_PREFIX_SIZE)
				s->header_end = GW_SEGMENT_PREFIX_SIZE + (uint64_t)gw_segment_prefix_header_length(s->prefix);
		} else if (at < s->header_end || at >= s->trailer_start) {
			uint64_t end = at < s->header_end ? s->header_end : UINT64_MAX;
			take = end - at < len ? end - at : len;
		} else if (!s->pack_start) {
			/* The bundle's text header ends with an empty line. */
			take = 1;
			if (*p == '\n' && s->newline)
				s->pack_start = at + 1;
			s->newline = *p == '\n';
		} else {
			take = s->trailer_start - at < len ? s->trailer_start - at : len;
			rc = gw_sink_write(s->out, p, (size_t)take);
		}
		p += take;
		len -= (size_t)take;
		s->pos += take;
	}
	return rc;
}

/* len bytes of from at off to the end of to, in the kernel. */
static int copy_range(int from, uint64_t off, int to, uint64_t len, const char *path)
{
	loff_t at = (loff_t)off;
	while (len) {
		ssize_t n = copy_file_range(from, &at, to, NULL, (size_t)len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return gw_error_set_errno(n < 0 ? GW_EIO : GW_ECORRUPT, "cannot write %s", path);
		len -= (uint64_t)n;
	}
	return 0;
}

/* A pack and its index written to files: the index checked on its own, then the pack (the whole file) against it. */
static int check_written_pack(int pfd, int ifd, uint64_t pack_size, const char *what, size_t hash_len,
			      unsigned char checksum[GW_HASH_MAX])
{
	gw_idx idx;
	int rc;
	if ((rc = gw_idx_open(&idx, ifd, what, hash_len, 1)) == 0 && (rc = gw_idx_verify(&idx, NULL, 0, NULL)) == 0 &&
	    (rc = gw_pack_check_fd(&idx, pfd, pack_size, what)) == 0)
		memcpy(checksum, idx.pack_checksum, hash_len);
	return rc;
}

int gw_restore__fetch_segment_pack(gw_store *store, const gw_restore_segment *seg, const char *dir, unsigned n,
				   size_t hash_len)
{
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE], sum[GW_HASH_MAX];
	char pack_path[4200], idx_path[4200], packdir[4200];
	segment_split split;
	gw_fd_sink out;
	uint64_t blen = 0, ilen = 0, pack_len;
	int pfd, ifd = -1, rc;

	snprintf(pack_path, sizeof(pack_path), "%s/objects/pack/tmp_seg_%u.pack", dir, n);
	snprintf(idx_path, sizeof(idx_path), "%s/objects/pack/tmp_seg_%u.idx", dir, n);
	/* The bundle's pack and the index after it, into one file first: the trailer says where one ends. */
	if ((pfd = create_file(pack_path, O_RDWR)) < 0)
		return GW_EIO;
	memset(&split, 0, sizeof(split));
	split.sink.write = split_write;
	split.out = &out.sink;
	split.trailer_start = seg->size - GW_SEGMENT_TRAILER_SIZE;
	if ((rc = gw_fd_sink_init(&out, pfd, pack_path)) == 0 && (rc = read_segment(store, seg, &split.sink, trailer)) == 0)
		rc = gw_fd_sink_flush(&out);
	gw_fd_sink_dispose(&out);
	if (rc < 0 || (rc = segment_layout(seg, split.header_end, trailer, &blen, &ilen)) < 0 || !ilen)
		goto out; /* !ilen: no objects, nothing to install */
	if (!split.pack_start || split.pack_start > split.header_end + blen) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s: its bundle has no pack", seg->key);
		goto out;
	}
	/* The index is the file's last ilen bytes: moved into its own file (from the page cache), the pack cut there. */
	pack_len = split.header_end + blen - split.pack_start;
	if ((ifd = create_file(idx_path, O_RDWR)) < 0) {
		rc = GW_EIO;
		goto out;
	}
	if ((rc = copy_range(pfd, pack_len, ifd, ilen, idx_path)) < 0)
		goto out;
	if (ftruncate(pfd, (off_t)pack_len) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot write %s", pack_path);
		goto out;
	}
	/* Its index came after its pack: the pack is checked against it read back (from the page cache). */
	if ((rc = check_written_pack(pfd, ifd, pack_len, seg->key, hash_len, sum)) < 0)
		goto out;
	/* No fsync: these packs are joined (and the result fsync'd) before anything becomes visible. */
	snprintf(packdir, sizeof(packdir), "%s/objects/pack", dir);
	rc = gw_restore__name_pack(packdir, pack_path, idx_path, sum, hash_len);
out:
	close(pfd);
	if (ifd >= 0)
		close(ifd);
	if (rc < 0 || !ilen) {
		unlink(pack_path);
		unlink(idx_path);
	}
	return rc;
}
