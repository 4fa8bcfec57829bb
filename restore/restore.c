/*
 * The restore engine for full backups.
 *
 * A restore writes the pack straight out of the bundle and the stored pack
 * index beside it: no index-pack, no object hashing, no delta resolution.
 * Integrity comes from the manifest: the SHA-256 of the bundle and of the
 * index are computed while the bytes stream to disk and compared before the
 * repository is renamed into place, and the pack trailer and the index's
 * pack checksum must both equal the manifest's pack checksum.
 */
#include "gitwal/restore.h"
#include "util/thread.h"
#include "gitwal/error.h"
#include "gitwal/expire.h"
#include "gitwal/fs.h"
#include "gitwal/layout.h"
#include "gitwal/manifest.h"
#include "gitwal/repo.h"
#include "gitwal/segment.h"
#include "format/refstate.h"
#include "pack/pack.h"
#include "util/bytes.h"
#include "util/owner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COPY_BUFFER (1u << 20)

/* What building needs of a segment: the index's record, compacted (a plan may hold a great many). */
typedef struct {
	uint64_t lsn, size, objects;
	char *key;
	unsigned char sha256[32];
} plan_segment;

static int write_file(const char *dir, const char *name, const char *content)
{
	char path[4096];
	size_t len = strlen(content);
	int fd;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return gw_error_set_errno(GW_EIO, "cannot create %s", path);
	if (write(fd, content, len) != (ssize_t)len || fsync(fd) < 0) {
		close(fd);
		return gw_error_set_errno(GW_EIO, "cannot write %s", path);
	}
	close(fd);
	return 0;
}

/*
 * Stream key[from, end) into out, hashing key[0, end) with SHA-256; check size
 * and digest; keep the last tail_len bytes for the caller's trailer checks.
 */
static int fetch_part(gw_store *store, const gw_manifest_part *part, uint64_t from, gw_sink *out,
		      unsigned char *tail, size_t tail_len)
{
	gw_store_reader *r = NULL;
	gw_digest_filter digest;
	unsigned char *buf = NULL;
	char hex[GW_HEX_MAX];
	uint64_t pos = 0;
	int rc;

	if ((rc = gw_digest_filter_init(&digest, GW_HASH_SHA256, NULL)) < 0)
		return rc;
	if (!(buf = malloc(COPY_BUFFER))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_store_read_open(&r, store, part->key, 0, GW_STORE_TO_END)) < 0)
		goto out;
	for (;;) {
		ssize_t n = gw_store_reader_read(r, buf, COPY_BUFFER);
		uint64_t skip;
		if (n < 0) {
			rc = (int)n;
			goto out;
		}
		if (n == 0)
			break;
		if (pos + (uint64_t)n > part->size) {
			rc = gw_error_set(GW_ECORRUPT, "key %s is larger than its manifest says (%llu bytes)", part->key,
					  (unsigned long long)part->size);
			goto out;
		}
		gw_sink_write(&digest.sink, buf, (size_t)n);
		skip = pos >= from ? 0 : (from - pos < (uint64_t)n ? from - pos : (uint64_t)n);
		if ((uint64_t)n > skip && (rc = gw_sink_write(out, buf + skip, (size_t)((uint64_t)n - skip))) < 0)
			goto out;
		pos += (uint64_t)n;
		if (tail_len) {
			if ((size_t)n >= tail_len) {
				memcpy(tail, buf + n - tail_len, tail_len);
			} else {
				memmove(tail, tail + n, tail_len - (size_t)n);
				memcpy(tail + tail_len - n, buf, (size_t)n);
			}
		}
	}
	if (pos != part->size) {
		rc = gw_error_set(GW_ECORRUPT, "key %s has %llu bytes, its manifest says %llu", part->key,
				  (unsigned long long)pos, (unsigned long long)part->size);
		goto out;
	}
	gw_digest_filter_finish(&digest, hex);
	if (strcmp(hex, part->sha256) != 0)
		rc = gw_error_set(GW_ECORRUPT, "key %s is corrupt: its SHA-256 is %s, its manifest says %s", part->key,
				  hex, part->sha256);
out:
	gw_store_reader_free(r);
	gw_digest_filter_dispose(&digest);
	free(buf);
	return rc;
}

/* fetch_part into a new file, made durable unless it is a scratch file that is never installed. */
static int fetch_part_to_file(gw_store *store, const gw_manifest_part *part, uint64_t from, const char *path,
			      unsigned char *tail, size_t tail_len, int durable)
{
	gw_fd_sink out;
	int fd, rc;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0)
		return gw_error_set_errno(GW_EIO, "cannot create %s", path);
	if ((rc = gw_fd_sink_init(&out, fd, path)) == 0 && (rc = fetch_part(store, part, from, &out.sink, tail, tail_len)) == 0 &&
	    (rc = gw_fd_sink_flush(&out)) == 0 && durable && fsync(fd) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot fsync %s", path);
	gw_fd_sink_dispose(&out);
	close(fd);
	return rc;
}

static int write_refs(const char *dir, const gw_refstate *st)
{
	char path[4096], hex[GW_HEX_MAX];
	FILE *f;
	size_t i;
	int rc;

	snprintf(path, sizeof(path), "%s/packed-refs", dir);
	if (!(f = fopen(path, "wx")))
		return gw_error_set_errno(GW_EIO, "cannot create %s", path);
	fputs("# pack-refs with: sorted \n", f);
	for (i = 0; i < st->nrefs; i++)
		if (!st->refs[i].symbolic && !st->refs[i].dangling) {
			gw_hex_encode(hex, st->refs[i].oid, 20);
			fprintf(f, "%s %s\n", hex, st->refs[i].name);
		}
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		fclose(f);
		return gw_error_set_errno(GW_EIO, "cannot write %s", path);
	}
	fclose(f);
	/* Symbolic refs other than HEAD are loose files. */
	for (i = 0; i < st->nrefs; i++) {
		char content[4200], *slash;
		if (!st->refs[i].symbolic)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, st->refs[i].name);
		slash = strrchr(path, '/');
		*slash = '\0';
		if ((rc = gw_fs_mkdir_p(path, 0755)) < 0)
			return rc;
		snprintf(content, sizeof(content), "ref: %s\n", st->refs[i].symbolic);
		if ((rc = write_file(dir, st->refs[i].name, content)) < 0)
			return rc;
	}
	{
		char head[4200];
		if (st->head.symbolic)
			snprintf(head, sizeof(head), "ref: %s\n", st->head.symbolic);
		else if (st->head.name && !st->head.dangling) {
			gw_hex_encode(hex, st->head.oid, 20);
			snprintf(head, sizeof(head), "%s\n", hex);
		} else
			snprintf(head, sizeof(head), "ref: refs/heads/master\n");
		return write_file(dir, "HEAD", head);
	}
}

/* An empty bare repository in dir, for the objects and refs to come. */
static int make_skeleton(const char *dir)
{
	static const char *subdirs[] = {"objects", "objects/pack", "objects/info", "refs", "refs/heads", "refs/tags"};
	size_t i;
	int rc;
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", dir, subdirs[i]);
		if (mkdir(p, 0755) < 0)
			return gw_error_set_errno(GW_EIO, "cannot create %s", p);
	}
	if ((rc = write_file(dir, "config",
			     "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n")) < 0)
		return rc;
	return write_file(dir, "description", "Restored by gitwal\n");
}

/* The full backup's pack index into path: it must be for the manifest's pack and hold its objects. */
static int fetch_full_index(gw_store *store, const gw_manifest *m, const char *path, int durable)
{
	unsigned char tail[40], want[20], b[4];
	ssize_t n;
	int fd, rc;
	gw_hex_decode(want, m->pack_checksum, 20);
	if ((rc = fetch_part_to_file(store, &m->idx, 0, path, tail, 40, durable)) < 0)
		return rc;
	if (memcmp(tail, want, 20) != 0)
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

static int check_pack_trailer(const gw_manifest *m, const unsigned char *trailer)
{
	unsigned char want[20];
	char hex[GW_HEX_MAX];
	gw_hex_decode(want, m->pack_checksum, 20);
	if (memcmp(trailer, want, 20) == 0)
		return 0;
	gw_hex_encode(hex, trailer, 20);
	return gw_error_set(GW_ECORRUPT, "key %s: pack checksum %s differs from the manifest's %s", m->bundle.key, hex,
			    m->pack_checksum);
}

/*
 * The full backup's index, fetched into path and opened: checked on its own
 * (its SHA-1, fanout, sorted unique ids), for the pack that will stream by.
 */
static int open_full_index(gw_store *store, const gw_manifest *m, const char *path, int durable, gw_idx *idx,
			   int *fd)
{
	int rc;
	*fd = -1;
	if ((rc = fetch_full_index(store, m, path, durable)) < 0)
		return rc;
	if ((*fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return gw_error_set_errno(GW_EIO, "cannot open %s", path);
	if ((rc = gw_idx_open(idx, *fd, m->idx.key, 20, 1)) < 0 || (rc = gw_idx_verify(idx, NULL, 0, NULL)) < 0)
		return rc;
	return 0;
}

/*
 * The full backup's pack and index, as they are, into objects/pack (the
 * restore of a full backup alone): the index first, so that the pack is
 * checked against it as it streams to disk (gw_pack_check).
 */
static int fetch_full_pack(gw_store *store, const gw_manifest *m, const char *dir, char *name, size_t name_size)
{
	unsigned char tail[20];
	char pack_tmp[4096], pack_path[4096], idx_path[4096];
	gw_pack_check *check = NULL;
	gw_async_sink *async = NULL;
	gw_fd_sink out;
	gw_idx idx;
	int fd = -1, ifd = -1, rc;
	snprintf(pack_tmp, sizeof(pack_tmp), "%s/objects/pack/tmp_pack_gitwal", dir);
	snprintf(pack_path, sizeof(pack_path), "%s/objects/pack/pack-%s.pack", dir, m->pack_checksum);
	snprintf(idx_path, sizeof(idx_path), "%s/objects/pack/pack-%s.idx", dir, m->pack_checksum);
	snprintf(name, name_size, "pack-%s", m->pack_checksum);
	if (m->bundle.size < m->pack_offset)
		return gw_error_set(GW_ECORRUPT, "key %s is too short for its pack", m->bundle.key);
	if ((rc = open_full_index(store, m, idx_path, 1, &idx, &ifd)) < 0)
		goto out;
	if ((fd = open(pack_tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot create %s", pack_tmp);
		goto out;
	}
	if ((rc = gw_fd_sink_init(&out, fd, pack_tmp)) < 0)
		goto out;
	/* Reading and SHA-256 on this thread; Git's SHA-1, the CRC32s and the writing on another. */
	if ((rc = gw_pack_check_new(&check, &idx, m->bundle.size - m->pack_offset, m->bundle.key, &out.sink)) == 0 &&
	    (rc = gw_async_sink_new(&async, gw_pack_check_sink(check))) == 0) {
		/* After a failure here, the worker's own (a consequence) must not replace its message. */
		if ((rc = fetch_part(store, &m->bundle, m->pack_offset, gw_async_sink_as_sink(async), tail, 20)) == 0)
			rc = gw_async_sink_finish(async);
	}
	if (rc == 0 && (rc = gw_pack_check_finish(check)) == 0 && (rc = check_pack_trailer(m, tail)) == 0 &&
	    (rc = gw_fd_sink_flush(&out)) == 0 && fsync(fd) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot fsync %s", pack_tmp);
	gw_async_sink_free(async);
	gw_fd_sink_dispose(&out);
	if (rc == 0 && rename(pack_tmp, pack_path) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot rename %s", pack_tmp);
out:
	gw_pack_check_free(check);
	if (fd >= 0)
		close(fd);
	if (ifd >= 0)
		close(ifd);
	return rc;
}

static int dir_is_empty(const char *path, int *empty)
{
	DIR *d = opendir(path);
	struct dirent *de;
	*empty = 1;
	if (!d)
		return gw_error_set_errno(GW_EIO, "cannot read %s", path);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
			*empty = 0;
			break;
		}
	closedir(d);
	return 0;
}

/* Move the finished tmp into target: a plain rename, or an exchange when replacing (--force). */
static int install(const char *tmp, const char *target, int replace, const char *rel)
{
	char *slash, parent[4096];
	int rc;
	if (!replace) {
		if (rename(tmp, target) < 0)
			return gw_error_set_errno(GW_EIO, "repository %s: cannot move the restore into %s", rel, target);
	} else {
		if (renameat2(AT_FDCWD, tmp, AT_FDCWD, target, RENAME_EXCHANGE) < 0) {
			char old[4200];
			snprintf(old, sizeof(old), "%s.gitwal-old", tmp);
			if (rename(target, old) < 0 || rename(tmp, target) < 0)
				return gw_error_set_errno(GW_EIO, "repository %s: cannot replace %s", rel, target);
			gw_remove_tree(old);
		} else {
			/* tmp now holds the old repository. */
			if ((rc = gw_remove_tree(tmp)) < 0)
				return rc;
		}
	}
	snprintf(parent, sizeof(parent), "%s", target);
	if ((slash = strrchr(parent, '/')) && slash != parent)
		*slash = '\0';
	return gw_fs_fsync_dir(parent);
}

static int load_manifest(gw_store *store, const gw_full_record *rec, gw_manifest *m)
{
	unsigned char digest[32];
	char hex[65], *text = NULL;
	size_t len;
	int rc;
	if ((rc = gw_store_get(store, rec->manifest_key, GW_MANIFEST_MAX_SIZE, &text, &len)) < 0)
		return rc;
	gw_hash_buffer(GW_HASH_SHA256, text, len, digest);
	gw_hex_encode(hex, digest, 32);
	if (rec->manifest_sha256[0] && strcmp(hex, rec->manifest_sha256) != 0) {
		free(text);
		return gw_error_set(GW_ECORRUPT, "manifest %s is corrupt: its SHA-256 differs from the one recorded",
				    rec->manifest_key);
	}
	rc = gw_manifest_parse(m, text, len, rec->manifest_key);
	free(text);
	if (rc < 0)
		return rc;
	if (strcmp(m->repository, rec->repository) != 0 || m->lsn != rec->lsn) {
		rc = gw_error_set(GW_ECORRUPT, "manifest %s describes %s at LSN %llu, not %s at LSN %llu",
				  rec->manifest_key, m->repository, (unsigned long long)m->lsn, rec->repository,
				  (unsigned long long)rec->lsn);
		gw_manifest_dispose(m);
	}
	return rc;
}

/* ---- segments ---- */

typedef struct {
	int fd;
	const char *path;
} out_file;

static int write_to(out_file *o, const unsigned char *p, size_t n)
{
	while (n) {
		ssize_t w = write(o->fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return gw_error_set_errno(GW_EIO, "cannot write %s", o->path);
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The SHA-256 computed over a segment against its trailer's, and the trailer's against the index's. */
static int check_segment_digest(const plan_segment *rec, const unsigned char digest[32],
				const unsigned char trailer[GW_SEGMENT_TRAILER_SIZE])
{
	if (memcmp(digest, GW_SEGMENT_TRAILER_DIGEST(trailer), 32) != 0)
		return gw_error_set(GW_ECORRUPT, "segment %s (LSN %llu) is corrupt: its SHA-256 does not match its content",
				    rec->key, (unsigned long long)rec->lsn);
	if (memcmp(digest, rec->sha256, 32) != 0)
		return gw_error_set(GW_ECORRUPT, "segment %s (LSN %llu) differs from the one indexed", rec->key,
				    (unsigned long long)rec->lsn);
	return 0;
}

/* A pack and its index written to files: the index checked on its own, then the pack (the whole file) against it. */
static int check_written_pack(const char *pack_path, const char *idx_path, const char *what)
{
	struct stat st;
	gw_idx idx;
	int pfd = open(pack_path, O_RDONLY | O_CLOEXEC), ifd = open(idx_path, O_RDONLY | O_CLOEXEC), rc;
	if (pfd < 0 || ifd < 0 || fstat(pfd, &st) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot read back %s", pack_path);
	else if ((rc = gw_idx_open(&idx, ifd, what, 20, 1)) == 0 && (rc = gw_idx_verify(&idx, NULL, 0, NULL)) == 0)
		rc = gw_pack_check_fd(&idx, pfd, (uint64_t)st.st_size, what);
	if (pfd >= 0)
		close(pfd);
	if (ifd >= 0)
		close(ifd);
	return rc;
}

/*
 * Stream one segment from the store: check its SHA-256, and write the pack
 * of its bundle and its pack index into objects/pack. Nothing is written for
 * a segment without objects.
 */
static int apply_segment_objects(gw_store *store, const plan_segment *rec, const char *dir, unsigned n)
{
	gw_store_reader *r = NULL;
	gw_hash *h = NULL;
	unsigned char *buf = NULL, trailer[GW_SEGMENT_TRAILER_SIZE], digest[32], sum[20];
	uint64_t pos = 0, hdr_end = 0, bundle_end, idx_end, body_end = rec->size - GW_SEGMENT_TRAILER_SIZE;
	uint64_t blen = 0, ilen = 0;
	char pack_path[4200], idx_path[4200], final[4200], hex[GW_HEX_MAX];
	out_file pack = {-1, pack_path}, idx = {-1, idx_path};
	int rc = 0, in_bundle_header = 1, newline = 0;

	if (rec->size < GW_SEGMENT_PREFIX_SIZE + GW_SEGMENT_TRAILER_SIZE)
		return gw_error_set(GW_ECORRUPT, "segment %s is truncated", rec->key);
	/* Lengths from the trailer first (a ranged read), so the body can be split while streaming. */
	if ((rc = gw_store_read_range(store, rec->key, body_end, GW_SEGMENT_TRAILER_SIZE, trailer)) < 0)
		return rc;
	gw_segment_trailer_lengths(trailer, &blen, &ilen);
	snprintf(pack_path, sizeof(pack_path), "%s/objects/pack/tmp_seg_%u.pack", dir, n);
	snprintf(idx_path, sizeof(idx_path), "%s/objects/pack/tmp_seg_%u.idx", dir, n);
	if (!(buf = malloc(COPY_BUFFER)) || gw_hash_new(&h, GW_HASH_SHA256) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_store_read_open(&r, store, rec->key, 0, body_end)) < 0)
		goto out;
	/* The prefix tells where the bundle starts. */
	{
		unsigned char prefix[GW_SEGMENT_PREFIX_SIZE];
		size_t pg = 0;
		while (pg < sizeof(prefix)) {
			ssize_t k = gw_store_reader_read(r, prefix + pg, sizeof(prefix) - pg);
			if (k <= 0) {
				rc = k < 0 ? (int)k : gw_error_set(GW_ECORRUPT, "segment %s is truncated", rec->key);
				goto out;
			}
			pg += (size_t)k;
		}
		gw_hash_update(h, prefix, sizeof(prefix));
		pos = sizeof(prefix);
		hdr_end = GW_SEGMENT_PREFIX_SIZE + (uint64_t)gw_segment_prefix_header_length(prefix);
	}
	bundle_end = hdr_end + blen;
	idx_end = bundle_end + ilen;
	if (idx_end != body_end) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s: its lengths do not add up to its size", rec->key);
		goto out;
	}
	if (ilen && ((pack.fd = open(pack_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444)) < 0 ||
		     (idx.fd = open(idx_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444)) < 0)) {
		rc = gw_error_set_errno(GW_EIO, "cannot create %s", pack_path);
		goto out;
	}
	while (pos < body_end) {
		ssize_t k = gw_store_reader_read(r, buf, COPY_BUFFER);
		size_t i = 0;
		if (k <= 0) {
			rc = k < 0 ? (int)k : gw_error_set(GW_ECORRUPT, "segment %s is truncated", rec->key);
			goto out;
		}
		gw_hash_update(h, buf, (size_t)k);
		while (i < (size_t)k && ilen) {
			uint64_t at = pos + i;
			if (at < hdr_end) {
				size_t skip = (size_t)(hdr_end - at < (uint64_t)k - i ? hdr_end - at : (uint64_t)k - i);
				i += skip;
			} else if (at < bundle_end && in_bundle_header) {
				/* The bundle's text header ends with an empty line. */
				if (buf[i] == '\n' && newline)
					in_bundle_header = 0;
				newline = buf[i] == '\n';
				i++;
			} else if (at < bundle_end) {
				size_t take = (size_t)(bundle_end - at < (uint64_t)k - i ? bundle_end - at : (uint64_t)k - i);
				if ((rc = write_to(&pack, buf + i, take)) < 0)
					goto out;
				memcpy(sum, take >= 20 ? buf + i + take - 20 : sum + take, take >= 20 ? 20 : 0);
				if (take < 20) {
					memmove(sum, sum + take, 20 - take);
					memcpy(sum + 20 - take, buf + i, take);
				}
				i += take;
			} else {
				size_t take = (size_t)(idx_end - at < (uint64_t)k - i ? idx_end - at : (uint64_t)k - i);
				if ((rc = write_to(&idx, buf + i, take)) < 0)
					goto out;
				i += take;
			}
		}
		pos += (uint64_t)k;
	}
	gw_hash_update(h, trailer, 16);
	gw_hash_final(h, digest);
	if ((rc = check_segment_digest(rec, digest, trailer)) < 0)
		goto out;
	/* Its index came after its pack: the pack is checked against it read back (from the page cache). */
	if (ilen && (rc = check_written_pack(pack_path, idx_path, rec->key)) < 0)
		goto out;
	if (ilen) {
		/* No fsync: these packs are joined (and the result fsync'd) before anything becomes visible. */
		gw_hex_encode(hex, sum, 20);
		snprintf(final, sizeof(final), "%s/objects/pack/pack-%s.pack", dir, hex);
		if (rename(pack_path, final) < 0)
			rc = gw_error_set_errno(GW_EIO, "cannot rename %s", pack_path);
		snprintf(final, sizeof(final), "%s/objects/pack/pack-%s.idx", dir, hex);
		if (rc == 0 && rename(idx_path, final) < 0)
			rc = gw_error_set_errno(GW_EIO, "cannot rename %s", idx_path);
	}
out:
	if (pack.fd >= 0)
		close(pack.fd);
	if (idx.fd >= 0)
		close(idx.fd);
	if (rc < 0) {
		unlink(pack_path);
		unlink(idx_path);
	}
	gw_store_reader_free(r);
	gw_hash_free(h);
	free(buf);
	return rc;
}

/* ---- consolidation: one pack, not thousands ---- */

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * Join the packs in objects/pack into one with the pack splicer (objects of
 * one generation are stored once, so nothing is recomputed), then remove the
 * originals. With `keep` set, that pack is left alone: used to join segment
 * packs in batches (each pack holds two descriptors while it is joined)
 * without copying the large full-backup pack every time.
 */
static int consolidate_packs(const char *dir, const char *rel, const char *keep)
{
	char packdir[4200], tmp_pack[4300], tmp_idx[4300], final[4300], hex[GW_HEX_MAX];
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	gw_pack_source *srcs = NULL;
	gw_splice_stats stats;
	gw_fd_sink ps = {0}, is = {0};
	int pfd = -1, ifd = -1;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(packdir, sizeof(packdir), "%s/objects/pack", dir);
	if (!(d = opendir(packdir)))
		return gw_error_set_errno(GW_EIO, "cannot read %s", packdir);
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		if (len < 10 || strncmp(de->d_name, "pack-", 5) || strcmp(de->d_name + len - 5, ".pack"))
			continue;
		if (keep && !strncmp(de->d_name, keep, len - 5) && !keep[len - 5])
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? cap * 2 : 16) * sizeof(char *));
			if (!nn)
				break;
			names = nn;
		}
		names[n++] = strndup(de->d_name, len - 5);
	}
	closedir(d);
	if (n <= 1)
		goto out;
	qsort(names, n, sizeof(char *), name_cmp);
	if (!(srcs = calloc(n, sizeof(*srcs)))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		char path[4300];
		struct stat st;
		srcs[i].pack_fd = srcs[i].idx_fd = -1;
		srcs[i].name = names[i];
		snprintf(path, sizeof(path), "%s/%s.pack", packdir, names[i]);
		srcs[i].pack_fd = open(path, O_RDONLY | O_CLOEXEC);
		snprintf(path, sizeof(path), "%s/%s.idx", packdir, names[i]);
		srcs[i].idx_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (srcs[i].pack_fd < 0 || srcs[i].idx_fd < 0 || fstat(srcs[i].pack_fd, &st) < 0) {
			rc = gw_error_set_errno(GW_EIO, "repository %s: cannot open restored pack %s", rel, names[i]);
			goto out;
		}
		srcs[i].pack_size = (uint64_t)st.st_size;
		if ((rc = gw_idx_open(&srcs[i].idx, srcs[i].idx_fd, srcs[i].name, 20, 0)) < 0)
			goto out;
	}
	snprintf(tmp_pack, sizeof(tmp_pack), "%s/tmp_joined.pack", packdir);
	snprintf(tmp_idx, sizeof(tmp_idx), "%s/tmp_joined.idx", packdir);
	if ((pfd = open(tmp_pack, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444)) < 0 ||
	    (ifd = open(tmp_idx, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0444)) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot create %s", tmp_pack);
		goto out;
	}
	if ((rc = gw_fd_sink_init(&ps, pfd, tmp_pack)) < 0 || (rc = gw_fd_sink_init(&is, ifd, tmp_idx)) < 0)
		goto out;
	if ((rc = gw_pack_splice(rel, srcs, n, NULL, 0, 20, &ps.sink, &is.sink, &stats)) < 0 ||
	    (rc = gw_fd_sink_flush(&ps)) < 0 || (rc = gw_fd_sink_flush(&is)) < 0)
		goto out;
	if (fsync(pfd) < 0 || fsync(ifd) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot fsync %s", tmp_pack);
		goto out;
	}
	for (i = 0; i < n; i++) {
		char path[4300];
		snprintf(path, sizeof(path), "%s/%s.pack", packdir, names[i]);
		unlink(path);
		snprintf(path, sizeof(path), "%s/%s.idx", packdir, names[i]);
		unlink(path);
	}
	gw_hex_encode(hex, stats.pack_checksum, 20);
	snprintf(final, sizeof(final), "%s/pack-%s.pack", packdir, hex);
	if (rename(tmp_pack, final) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot rename %s", tmp_pack);
	snprintf(final, sizeof(final), "%s/pack-%s.idx", packdir, hex);
	if (rc == 0 && rename(tmp_idx, final) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot rename %s", tmp_idx);
out:
	if (pfd >= 0)
		close(pfd);
	if (ifd >= 0)
		close(ifd);
	gw_fd_sink_dispose(&ps);
	gw_fd_sink_dispose(&is);
	for (i = 0; srcs && i < n; i++) {
		if (srcs[i].pack_fd >= 0)
			close(srcs[i].pack_fd);
		if (srcs[i].idx_fd >= 0)
			close(srcs[i].idx_fd);
	}
	free(srcs);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* ---- planning (from the index alone, DESIGN.md "Point-in-time restore") ---- */

typedef struct {
	gw_full_record full;
	gw_manifest m;
	gw_index_span span;
	plan_segment *segs; /* filled only to build: a dry run needs none */
	size_t nsegs, cap;
	unsigned char last_sha256[32]; /* of the last record loaded: the next must link to it */
	gw_refstate state;
	int exists;
	int not_archived; /* until is before the first full backup, and nothing of the repository is older */
	gw_restore_gap *gaps;
	size_t ngaps;
} plan;

static void plan_dispose(plan *p)
{
	size_t i;
	gw_full_record_dispose(&p->full);
	gw_manifest_dispose(&p->m);
	for (i = 0; i < p->nsegs; i++)
		free(p->segs[i].key);
	free(p->segs);
	gw_refstate_dispose(&p->state);
	free(p->gaps);
}

static int first_key(const gw_store_entry *e, void *payload)
{
	char **out = payload;
	return (*out = strdup(e->key)) ? 1 : gw_error_set(GW_ERROR, "out of memory");
}

/*
 * The time asked for is before rel's first full backup. The archive proves
 * the repository did not exist then only when nothing of it is stored below
 * that backup's LSN (keys sort by LSN: the first key listed says): *proven is
 * set and the error explains. Otherwise records of it were lost, and the
 * error names the oldest key left.
 */
static int before_first_full(gw_store *store, gw_index *index, const char *rel, const gw_sync_report *report,
			     int *proven)
{
	const gw_sync_problem *bad = gw_sync_report_find(report, rel, 0);
	gw_full_record first;
	char when[40], *prefix, *oldest = NULL, *key_rel = NULL;
	uint64_t lsn = 0;
	gw_key_kind kind;
	int rc;
	*proven = 0;
	if ((rc = gw_index_full_find_first(index, rel, &first)) == GW_ENOTFOUND && bad)
		return gw_error_set(bad->code, "repository %s has no full backup that can be read: key %s: %s", rel, bad->key,
				    bad->reason);
	if (rc == GW_ENOTFOUND)
		return gw_error_set(GW_ENOTFOUND, "repository %s has no full backup in the store %s (no manifest)", rel,
				    gw_store_url(store));
	if (rc < 0)
		return rc;
	if (!(prefix = gw_layout_repo_prefix(rel))) {
		gw_full_record_dispose(&first);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	rc = gw_store_list(store, prefix, first_key, &oldest);
	free(prefix);
	if (rc >= 0 && oldest)
		gw_layout_parse_key(oldest, &key_rel, &lsn, &kind);
	gw_time_format(first.time_us, when, sizeof(when));
	if (rc < 0) {
		/* the listing's error stands */
	} else if (!oldest || lsn >= first.lsn) {
		*proven = 1;
		rc = gw_error_set(GW_ENOTFOUND,
				  "repository %s: the time asked for is before its first full backup (%s, LSN %llu): "
				  "it was not archived then",
				  rel, when, (unsigned long long)first.lsn);
	} else {
		rc = gw_error_set(GW_ECORRUPT,
				  "repository %s: the time asked for is before its first full backup (%s, LSN %llu), "
				  "and the store holds an older key of it (%s) with no full backup: its state then "
				  "cannot be proven",
				  rel, when, (unsigned long long)first.lsn, oldest);
	}
	free(key_rel);
	free(oldest);
	gw_full_record_dispose(&first);
	return rc;
}

/*
 * What lies above the span must not be owed to until: a damaged key the
 * sync could not record there, a missing LSN right after it (its time is
 * unknown), or a segment at or before until that belongs to a full backup
 * the archive lacks (its manifest lost). Each is an error naming it.
 */
static int check_above_span(const char *rel, const gw_index_span *s, int64_t until_us, const gw_sync_report *report)
{
	const gw_sync_problem *bad = gw_sync_report_find(report, rel, s->full_lsn);
	if (bad && bad->lsn <= s->last_lsn + 1)
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: the record at LSN %llu (key %s) cannot be read (%s): the state at the "
				    "time asked for cannot be proven",
				    rel, (unsigned long long)bad->lsn, bad->key, bad->reason);
	if (!s->next_lsn)
		return 0;
	if (s->next_lsn > s->last_lsn + 1)
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: LSN %llu is missing from the archive (LSN %llu after it is there): the "
				    "state at the time asked for cannot be proven",
				    rel, (unsigned long long)s->last_lsn + 1, (unsigned long long)s->next_lsn);
	if (!s->next_full && s->next_time_us <= until_us)
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: the segment at LSN %llu is of the full backup at LSN %llu, which the "
				    "archive lacks (no manifest): the state at the time asked for cannot be proven",
				    rel, (unsigned long long)s->next_lsn, (unsigned long long)s->next_base_lsn);
	return 0;
}

/* A span that cannot be replayed is an error naming the LSN. */
static int check_span(const char *rel, const gw_index_span *s)
{
	char a[40];
	if (s->broken_lsn && s->broken_missing) {
		gw_time_format(s->broken_after_us, a, sizeof(a));
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: LSN %llu is missing from the archive (a gap after %s): "
				    "the state at the time asked for cannot be proven",
				    rel, (unsigned long long)s->broken_lsn, s->broken_after_us ? a : "its full backup");
	}
	if (s->broken_lsn)
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: segment at LSN %llu does not link to the record before it "
				    "(broken chain): states after that LSN cannot be restored",
				    rel, (unsigned long long)s->broken_lsn);
	return 0;
}

static int collect_gap(uint64_t lsn, int64_t from_us, int64_t to_us, void *payload)
{
	plan *p = payload;
	gw_restore_gap *ng = realloc(p->gaps, (p->ngaps + 1) * sizeof(*ng));
	if (!ng)
		return gw_error_set(GW_ERROR, "out of memory");
	p->gaps = ng;
	p->gaps[p->ngaps++] = (gw_restore_gap){lsn, from_us, to_us, 0};
	return 0;
}

/* The refs at until: the full backup's, then the latest update of each name in the span. */
static int plan_refs(gw_index *index, const char *rel, int64_t until_us, plan *p)
{
	gw_update *updates = NULL;
	size_t n = 0, i;
	int rc;
	if ((rc = gw_index_span_updates(index, rel, &p->span, until_us, &updates, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++)
		if (updates[i].kind == GW_UPDATE_DELETED)
			p->exists = 0;
		else if (updates[i].kind == GW_UPDATE_CREATED)
			p->exists = 1;
	rc = gw_refstate_apply(&p->state, updates, n);
	gw_updates_free(updates, n);
	return rc;
}

/* The newest full backup at or before until, then its segments up to until. */
static int make_plan(gw_store *store, gw_index *index, const char *rel, int64_t until_us,
		     const gw_sync_report *report, plan *p)
{
	int rc, deleted;
	memset(p, 0, sizeof(*p));
	/* Gone by policy (DESIGN.md 18.4): the one-line error names it; deleted then expired whole: not there. */
	if ((rc = gw_expire_check_time(index, rel, until_us, &deleted)) < 0 || deleted)
		return rc;
	rc = gw_index_full_find_before(index, rel, until_us, &p->full);
	if (rc == GW_ENOTFOUND)
		return before_first_full(store, index, rel, report, &p->not_archived);
	if (rc < 0)
		return rc;
	if ((rc = load_manifest(store, &p->full, &p->m)) < 0 || (rc = gw_refstate_from_manifest(&p->state, &p->m)) < 0)
		return rc;
	p->exists = 1;
	if ((rc = gw_index_span_find(index, rel, p->full.lsn, until_us, &p->span)) < 0 ||
	    (rc = check_above_span(rel, &p->span, until_us, report)) < 0 || (rc = check_span(rel, &p->span)) < 0 ||
	    (rc = gw_index_gaps_foreach(index, rel, p->full.lsn + 1, p->span.last_lsn, collect_gap, p)) < 0)
		return rc;
	if (p->span.unknown_lsn) {
		if ((rc = collect_gap(p->span.unknown_lsn, p->span.unknown_from_us, p->span.unknown_to_us, p)) < 0)
			return rc;
		p->gaps[p->ngaps - 1].covers_until = 1;
	}
	return plan_refs(index, rel, until_us, p);
}

/* The span's segment records, checked once more as they are read: contiguous, linked, of this generation. */
static int collect_segment(const gw_segment_record *rec, void *payload)
{
	plan *p = payload;
	plan_segment *seg = &p->segs[p->nsegs];
	unsigned char prev[32];
	uint64_t want = p->full.lsn + 1 + p->nsegs;
	if (p->nsegs == p->cap)
		return gw_error_set(GW_ECORRUPT, "repository %s: the index gained segments while planning", rec->repository);
	if (rec->lsn != want || rec->base_lsn != p->full.lsn || gw_hex_decode(prev, rec->prev_sha256, 32) < 0 ||
	    memcmp(prev, p->last_sha256, 32) != 0 || gw_hex_decode(seg->sha256, rec->sha256, 32) < 0)
		return gw_error_set(GW_ECORRUPT, "repository %s: segment at LSN %llu does not link to the record before it",
				    rec->repository, (unsigned long long)rec->lsn);
	seg->lsn = rec->lsn;
	seg->size = rec->size;
	seg->objects = rec->objects;
	if (!(seg->key = strdup(rec->key)))
		return gw_error_set(GW_ERROR, "out of memory");
	memcpy(p->last_sha256, seg->sha256, 32);
	p->nsegs++;
	return 0;
}

/* The span's segment records, checked once more for contiguity and links (from the manifest's digest on). */
static int plan_load_segments(gw_index *index, const char *rel, plan *p)
{
	int rc;
	if (p->span.last_lsn == p->full.lsn)
		return 0;
	if (gw_hex_decode(p->last_sha256, p->full.manifest_sha256, 32) < 0)
		return gw_error_set(GW_ECORRUPT, "repository %s: the full backup at LSN %llu has no valid digest in the index",
				    rel, (unsigned long long)p->full.lsn);
	if (!(p->segs = calloc(p->span.segments ? p->span.segments : 1, sizeof(*p->segs))))
		return gw_error_set(GW_ERROR, "out of memory");
	p->cap = p->span.segments;
	if ((rc = gw_index_segment_foreach(index, rel, p->full.lsn + 1, p->span.last_lsn, collect_segment, p)) < 0)
		return rc;
	if (p->nsegs != p->span.segments)
		return gw_error_set(GW_ECORRUPT, "repository %s: the index lost segments of LSNs %llu to %llu while planning",
				    rel, (unsigned long long)p->full.lsn + 1, (unsigned long long)p->span.last_lsn);
	return 0;
}

/* The end state as the CLI prints it: HEAD first, then the refs by name. */
static int plan_end_refs(const plan *p, gw_restore_result *res)
{
	const gw_refstate *st = &p->state;
	size_t i, k = 0;
	if (!(res->end_refs = calloc(st->nrefs + 1, sizeof(*res->end_refs))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i <= st->nrefs; i++) {
		const gw_ref *r = i == 0 ? &st->head : &st->refs[i - 1];
		char hex[GW_HEX_MAX], *value;
		if (!r->name)
			continue;
		if (r->symbolic) {
			size_t len = strlen(r->symbolic) + 6;
			if ((value = malloc(len)))
				snprintf(value, len, "ref: %s", r->symbolic);
		} else {
			gw_hex_encode(hex, r->oid, 20);
			value = strdup(hex);
		}
		res->end_refs[k].name = strdup(r->name);
		res->end_refs[k].value = value;
		res->nend_refs = ++k;
		if (!value || !res->end_refs[k - 1].name)
			return gw_error_set(GW_ERROR, "out of memory");
	}
	return 0;
}

void gw_restore_result_dispose(gw_restore_result *res)
{
	size_t i;
	for (i = 0; i < res->nend_refs; i++) {
		free(res->end_refs[i].name);
		free(res->end_refs[i].value);
	}
	free(res->end_refs);
	free(res->gaps);
	res->end_refs = NULL;
	res->gaps = NULL;
	res->nend_refs = res->ngaps = 0;
}

/* ---- building and installing ---- */

/* A restore builds in PARENT/<lead><name>.<owner>.<n> (util/owner.h), so a later one can tell a dead restore's. */
#define SCRATCH_LEAD ".gitwal-restore."
static gw_owner_cleared scratch_cleared = GW_OWNER_CLEARED_INIT;

static int prepare_target(const char *rel, const gw_restore_opts *opts, char *target, size_t tsize, char *tmp,
			  size_t tmpsize, int *replace)
{
	static unsigned counter;
	char parent[4096], *slash;
	struct stat st;
	int rc;
	*replace = 0;
	if (snprintf(target, tsize, "%s/%s", opts->to, rel) >= (int)tsize)
		return gw_error_set(GW_EINVALID, "repository %s: target path too long", rel);
	if (lstat(target, &st) == 0) {
		int empty;
		if (!S_ISDIR(st.st_mode))
			return gw_error_set(GW_EEXISTS, "repository %s: target %s exists and is not a directory", rel, target);
		if ((rc = dir_is_empty(target, &empty)) < 0)
			return rc;
		if (!empty && !opts->force)
			return gw_error_set(GW_EEXISTS,
					    "repository %s: target %s exists and is not empty (use --force to replace it)",
					    rel, target);
		*replace = !empty;
	}
	snprintf(parent, sizeof(parent), "%s", target);
	slash = strrchr(parent, '/');
	*slash = '\0';
	if ((rc = gw_fs_mkdir_p(parent, 0755)) < 0)
		return rc;
	/* Scratch directories of restores that died here (kill -9, a crash) go first (DESIGN.md 6). */
	gw_owner_clear_dead_once(&scratch_cleared, parent, SCRATCH_LEAD, gw_remove_tree);
	snprintf(tmp, tmpsize, "%s/" SCRATCH_LEAD "%.*s.%s.%u", parent,
		 NAME_MAX - (int)(strlen(SCRATCH_LEAD) + strlen(gw_owner_tag()) + 12), slash + 1, gw_owner_tag(),
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	if (mkdir(tmp, 0755) < 0)
		return gw_error_set_errno(GW_EIO, "repository %s: cannot create %s", rel, tmp);
	return 0;
}

/* Segment packs joined at a time (two descriptors each while joined). */
#define CONSOLIDATE_BATCH 512

/* Segments up to this size are read whole and their packs appended to one; larger ones are streamed. */
#define SEGMENT_IN_MEMORY (8u << 20)

/* A small segment read whole: its SHA-256 checked, then its pack and index appended to the joined pack. */
static int append_segment(gw_store *store, const plan_segment *rec, gw_pack_appender *app)
{
	unsigned char digest[32];
	const unsigned char *d, *bundle;
	char *data = NULL;
	size_t len, h, i;
	uint64_t blen, ilen;
	int rc;
	if ((rc = gw_store_get(store, rec->key, SEGMENT_IN_MEMORY, &data, &len)) < 0)
		return rc;
	d = (const unsigned char *)data;
	if (len != rec->size || len < GW_SEGMENT_PREFIX_SIZE + GW_SEGMENT_TRAILER_SIZE ||
	    memcmp(d, GW_SEGMENT_MAGIC, 6) != 0) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s (LSN %llu) is truncated or not a segment", rec->key,
				  (unsigned long long)rec->lsn);
		goto out;
	}
	gw_hash_buffer(GW_HASH_SHA256, d, len - 32, digest);
	if ((rc = check_segment_digest(rec, digest, d + len - GW_SEGMENT_TRAILER_SIZE)) < 0)
		goto out;
	h = gw_segment_prefix_header_length(d);
	gw_segment_trailer_lengths(d + len - GW_SEGMENT_TRAILER_SIZE, &blen, &ilen);
	if (h > len || blen > len || ilen > len ||
	    GW_SEGMENT_PREFIX_SIZE + h + blen + ilen + GW_SEGMENT_TRAILER_SIZE != len) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s: its lengths do not add up to its size", rec->key);
		goto out;
	}
	if (!ilen)
		goto out; /* no objects */
	if (!app) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s (LSN %llu) holds objects its record does not count", rec->key,
				  (unsigned long long)rec->lsn);
		goto out;
	}
	/* The bundle's text header ends with an empty line; its pack follows. */
	bundle = d + GW_SEGMENT_PREFIX_SIZE + h;
	for (i = 1; i < blen && !(bundle[i] == '\n' && bundle[i - 1] == '\n'); i++)
		;
	if (i >= blen) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s: its bundle has no pack", rec->key);
		goto out;
	}
	rc = gw_pack_appender_add(app, bundle + i + 1, blen - i - 1, bundle + blen, ilen, rec->key);
out:
	free(data);
	return rc;
}

/*
 * The small segments, verified and appended in LSN order: on a thread of
 * their own while the full backup's pack streams in (or inline, app NULL,
 * when they hold no objects). The first failure stops both sides; its
 * message is carried back to the calling thread (errors are per thread).
 */
typedef struct {
	gw_store *store;
	const plan *p;
	gw_pack_appender *app;
	atomic_int failed;
	int rc, code;
	char message[1024];
} segment_feed;

static void *feed_segments(void *arg)
{
	segment_feed *f = arg;
	size_t i;
	for (i = 0; i < f->p->nsegs && !atomic_load(&f->failed); i++) {
		if (f->p->segs[i].size > SEGMENT_IN_MEMORY)
			continue;
		if ((f->rc = append_segment(f->store, &f->p->segs[i], f->app)) < 0) {
			f->code = gw_error_code();
			snprintf(f->message, sizeof(f->message), "%s", gw_error_message());
			atomic_store(&f->failed, 1);
		}
	}
	return NULL;
}

/*
 * Splits a pack as it streams by: its 12-byte header kept for checks, its
 * object data passed on, its trailer dropped (fetch_part keeps the tail).
 */
typedef struct {
	gw_sink sink;
	gw_sink *next;
	uint64_t pos, body_end;
	unsigned char header[12];
	atomic_int *stop;
} pack_body_filter;

static int pack_body_write(gw_sink *sink, const void *buf, size_t len)
{
	pack_body_filter *f = (pack_body_filter *)sink;
	const unsigned char *p = buf;
	int rc = 0;
	if (atomic_load(f->stop))
		return gw_error_set(GW_ERROR, "stopped: a segment failed");
	for (; len && f->pos < 12; len--)
		f->header[f->pos++] = *p++;
	if (len && f->pos < f->body_end) {
		size_t k = f->body_end - f->pos < len ? (size_t)(f->body_end - f->pos) : len;
		rc = gw_sink_write(f->next, p, k);
		f->pos += k;
		len -= k;
	}
	f->pos += len;
	return rc;
}

static int check_pack_header(const gw_manifest *m, const unsigned char *h)
{
	if (memcmp(h, "PACK\0\0\0\2", 8) != 0 || gw_get_be32(h + 8) != m->objects)
		return gw_error_set(GW_ECORRUPT, "key %s: its pack header does not announce the %llu objects of the manifest",
				    m->bundle.key, (unsigned long long)m->objects);
	return 0;
}

/*
 * One pack of the full backup and the small segments: the full pack streams
 * into the front of the joined pack (its offsets unchanged, its index merged
 * at the end) while a second thread appends the segments behind it.
 */
static int build_joined_pack(gw_store *store, const plan *p, const char *dir, uint64_t segment_objects, char *name,
			     size_t name_size)
{
	const gw_manifest *m = &p->m;
	char idx_path[4300], base[4300], *pack_path = NULL, *idx_out = NULL;
	unsigned char tail[20];
	pack_body_filter body = {{pack_body_write}, NULL, 0, 0, {0}, NULL};
	segment_feed feed = {store, p, NULL, 0, 0, 0, {0}};
	gw_pack_check *check = NULL;
	gw_async_sink *async = NULL;
	gw_pack_base first;
	gw_idx idx;
	pthread_t thread;
	int fd = -1, rc, threaded = 0;

	snprintf(idx_path, sizeof(idx_path), "%s/objects/pack/tmp_full.idx", dir);
	snprintf(base, sizeof(base), "%s/objects/pack/pack", dir);
	if (m->bundle.size < m->pack_offset + 32)
		return gw_error_set(GW_ECORRUPT, "key %s is too short for its pack", m->bundle.key);
	if ((rc = open_full_index(store, m, idx_path, 0, &idx, &fd)) < 0) /* read to merge, never installed */
		goto out;
	first.idx = &idx;
	first.body_len = m->bundle.size - m->pack_offset - 32;
	if ((rc = gw_pack_appender_open(&feed.app, base, m->objects + segment_objects, &first)) < 0)
		goto out;
	threaded = gw_thread_create(&thread, feed_segments, &feed) == 0;
	if (!threaded)
		feed_segments(&feed);
	body.next = gw_pack_appender_base_sink(feed.app);
	body.body_end = m->bundle.size - m->pack_offset - 20;
	body.stop = &feed.failed;
	/*
	 * The full's pack is checked against its index on its way into the
	 * joined pack (the segments' in the appender). Its own SHA-1 too, though
	 * its trailer is not kept: a forger who made the CRC32s agree with a
	 * changed object has not made the SHA-1 agree.
	 */
	rc = gw_async_sink_new(&async, &body.sink); /* the joined pack's SHA-1 and the writes on a thread of their own */
	if (rc == 0)
		rc = gw_pack_check_new(&check, &idx, m->bundle.size - m->pack_offset, m->bundle.key,
				       gw_async_sink_as_sink(async));
	if (rc == 0 && (rc = fetch_part(store, &m->bundle, m->pack_offset, gw_pack_check_sink(check), tail, 20)) == 0 &&
	    (rc = gw_async_sink_finish(async)) == 0)
		rc = gw_pack_check_finish(check);
	gw_async_sink_free(async);
	if (rc < 0)
		atomic_store(&feed.failed, 1);
	if (threaded)
		pthread_join(thread, NULL);
	if (feed.rc < 0) {
		rc = gw_error_set(feed.code, "%s", feed.message);
		goto out;
	}
	if (rc < 0 || (rc = check_pack_header(m, body.header)) < 0 || (rc = check_pack_trailer(m, tail)) < 0 ||
	    (rc = gw_pack_appender_finish(feed.app, &pack_path, &idx_out)) < 0)
		goto out;
	{
		const char *file = strrchr(pack_path, '/') + 1; /* <base>-<checksum>.pack */
		snprintf(name, name_size, "%.*s", (int)(strlen(file) - 5), file);
	}
out:
	gw_pack_check_free(check);
	gw_pack_appender_free(feed.app);
	if (fd >= 0)
		close(fd);
	unlink(idx_path);
	free(pack_path);
	free(idx_out);
	return rc;
}

typedef struct {
	unsigned char oid[20];
	const char *name;
} wanted_ref;

static int wanted_cmp(const void *a, const void *b)
{
	return memcmp(((const wanted_ref *)a)->oid, ((const wanted_ref *)b)->oid, 20);
}

/*
 * Every ref's object, and HEAD's when detached, must be in a pack of the
 * repository being built (one, but any number is looked in): a ref to an
 * object the archive does not hold gives a repository git fsck rejects. One
 * pass over each index's id table, merged with the sorted wanted ids.
 */
static int check_refs_present(const char *dir, const plan *p)
{
	const gw_refstate *st = &p->state;
	wanted_ref *w = NULL;
	unsigned char *oids = NULL, *found = NULL;
	char packdir[4200];
	size_t n = 0, i;
	struct dirent *de;
	DIR *d = NULL;
	int rc = 0;

	if (!(w = calloc(st->nrefs + 1, sizeof(*w))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i <= st->nrefs; i++) {
		const gw_ref *r = i < st->nrefs ? &st->refs[i] : &st->head;
		if (!r->name || r->symbolic || r->dangling)
			continue;
		memcpy(w[n].oid, r->oid, 20);
		w[n++].name = r->name;
	}
	if (!n)
		goto out;
	qsort(w, n, sizeof(*w), wanted_cmp);
	if (!(oids = malloc(n * 20)) || !(found = calloc(n, 1))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		memcpy(oids + i * 20, w[i].oid, 20);
	snprintf(packdir, sizeof(packdir), "%s/objects/pack", dir);
	if (!(d = opendir(packdir))) {
		rc = gw_error_set_errno(GW_EIO, "cannot read %s", packdir);
		goto out;
	}
	while (rc == 0 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char path[4500];
		gw_idx idx;
		int fd;
		if (len < 10 || strncmp(de->d_name, "pack-", 5) || strcmp(de->d_name + len - 4, ".idx"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", packdir, de->d_name);
		if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
			rc = gw_error_set_errno(GW_EIO, "cannot open %s", path);
			break;
		}
		if ((rc = gw_idx_open(&idx, fd, path, 20, 0)) == 0)
			rc = gw_idx_verify(&idx, oids, n, found);
		close(fd);
	}
	for (i = 0; rc == 0 && i < n; i++)
		if (!found[i]) {
			char hex[GW_HEX_MAX];
			gw_hex_encode(hex, w[i].oid, 20);
			rc = gw_error_set(GW_ECORRUPT,
					  "repository %s: %s points at object %s, which the archive does not hold "
					  "(restoring LSN %llu: %s and %zu segments)",
					  p->m.repository, w[i].name, hex, (unsigned long long)p->span.last_lsn,
					  p->full.manifest_key, p->nsegs);
		}
out:
	if (d)
		closedir(d);
	free(w);
	free(oids);
	free(found);
	return rc;
}

static int build_and_install(gw_store *store, const char *rel, const gw_restore_opts *opts, const plan *p)
{
	char target[4096], tmp[4300], packdir[4400], main_pack[64];
	segment_feed feed = {store, p, NULL, 0, 0, 0, {0}};
	uint64_t small_objects = 0;
	size_t i;
	unsigned n = 0;
	int rc, replace;
	if ((rc = prepare_target(rel, opts, target, sizeof(target), tmp, sizeof(tmp), &replace)) < 0)
		return rc;
	for (i = 0; i < p->nsegs; i++)
		if (p->segs[i].size <= SEGMENT_IN_MEMORY)
			small_objects += p->segs[i].objects;
	/*
	 * Every segment used is verified, those without objects too: their
	 * updates count. Small ones (nearly all) go into one pack with the full
	 * backup's; large ones are streamed into packs of their own, joined in
	 * batches and at the end.
	 */
	if ((rc = make_skeleton(tmp)) == 0 && small_objects) {
		rc = build_joined_pack(store, p, tmp, small_objects, main_pack, sizeof(main_pack));
	} else if (rc == 0 && (rc = fetch_full_pack(store, &p->m, tmp, main_pack, sizeof(main_pack))) == 0) {
		feed_segments(&feed);
		rc = feed.rc < 0 ? gw_error_set(feed.code, "%s", feed.message) : 0;
	}
	for (i = 0; rc == 0 && i < p->nsegs; i++) {
		if (p->segs[i].size <= SEGMENT_IN_MEMORY)
			continue;
		rc = apply_segment_objects(store, &p->segs[i], tmp, n);
		if (p->segs[i].objects && ++n % CONSOLIDATE_BATCH == 0 && rc == 0)
			rc = consolidate_packs(tmp, rel, main_pack);
	}
	if (rc == 0 && n)
		rc = consolidate_packs(tmp, rel, NULL);
	if (rc == 0)
		rc = check_refs_present(tmp, p);
	if (rc == 0)
		rc = write_refs(tmp, &p->state);
	snprintf(packdir, sizeof(packdir), "%s/objects/pack", tmp);
	if (rc == 0 && (rc = gw_fs_fsync_dir(packdir)) == 0 && (rc = gw_fs_fsync_dir(tmp)) == 0)
		rc = install(tmp, target, replace, rel);
	if (rc < 0)
		gw_remove_tree(tmp);
	return rc;
}

static int find_full(gw_store *store, gw_index *index, const char *rel, uint64_t lsn, gw_sync_report *report,
		     gw_full_record *rec)
{
	int rc = gw_index_full_find(index, rel, lsn, rec);
	if (rc == GW_ENOTFOUND) {
		/* The index is a cache: look in the store before giving up. */
		if ((rc = gw_index_sync_report(index, store, rel, 0, report)) < 0)
			return rc;
		rc = gw_index_full_find(index, rel, lsn, rec);
	}
	return rc;
}

static int restore_with_plan(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
			     gw_restore_result *result)
{
	struct timespec t0, t1;
	plan p;
	int rc;

	memset(result, 0, sizeof(*result));
	memset(&p, 0, sizeof(p));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((rc = gw_repo_path_check(rel)) < 0)
		return rc;
	if (opts->until_set) {
		/* Segments written since the index last heard of them are in the store only. */
		if (!opts->index_synced && (rc = gw_index_sync_report(index, store, rel, 1, opts->report)) < 0)
			goto out;
		rc = make_plan(store, index, rel, opts->until_us, opts->report, &p);
		if (rc == GW_ECORRUPT && !opts->index_synced) {
			/* A hole may be one the index missed (it only looked past its last LSN): look at everything once. */
			plan_dispose(&p);
			if ((rc = gw_index_sync_report(index, store, rel, 0, opts->report)) >= 0)
				rc = make_plan(store, index, rel, opts->until_us, opts->report, &p);
		}
		result->skipped = p.not_archived;
		if (rc < 0)
			goto out;
		if (!p.exists) {
			rc = gw_error_set(GW_ENOTFOUND, "repository %s was deleted %s", rel,
					  opts->until_us == INT64_MAX
						  ? "(its last record): --until a time before its deletion restores it"
						  : "before the time asked for");
			result->skipped = 1;
			goto out;
		}
	} else {
		/* "Latest" means the latest in the store, which may be newer than the index knows. */
		if (!opts->lsn && !opts->index_synced && (rc = gw_index_sync_report(index, store, rel, 1, opts->report)) < 0)
			goto out;
		if ((opts->lsn && (rc = gw_expire_check_lsn(index, rel, opts->lsn)) < 0) ||
		    (rc = find_full(store, index, rel, opts->lsn, opts->index_synced ? NULL : opts->report, &p.full)) < 0)
			goto out;
		if ((rc = load_manifest(store, &p.full, &p.m)) < 0 || (rc = gw_refstate_from_manifest(&p.state, &p.m)) < 0)
			goto out;
		p.span.full_lsn = p.span.last_lsn = p.full.lsn;
	}
	result->full_lsn = p.m.lsn;
	result->full_time_us = p.m.time_us;
	result->lsn = p.span.last_lsn;
	result->time_us = p.span.segments ? p.span.last_time_us : p.m.time_us;
	result->segments = p.span.segments;
	result->bytes = p.m.bundle.size + p.m.idx.size + p.span.bytes;
	result->objects = p.m.objects;
	result->refs = p.state.nrefs;
	result->gaps = p.gaps;
	result->ngaps = p.ngaps;
	p.gaps = NULL;
	if (opts->dry_run) {
		rc = plan_end_refs(&p, result);
		goto out;
	}
	GW_PROGRESS_ADD(opts->progress, planned_bytes, result->bytes);
	if ((rc = plan_load_segments(index, rel, &p)) == 0) {
		for (size_t i = 0; i < p.nsegs; i++)
			result->objects += p.segs[i].objects;
		rc = build_and_install(store, rel, opts, &p);
	}
out:
	if (rc < 0 && strncmp(gw_error_message(), "repository ", 11) != 0)
		gw_error_prefix("repository %s", rel);
	plan_dispose(&p);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	result->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return rc;
}

int gw_restore_full(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
		    gw_restore_result *result)
{
	return restore_with_plan(store, index, rel, opts, result);
}
