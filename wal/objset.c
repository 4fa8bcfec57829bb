/*
 * The archived-object set of one repository generation (see objset.h).
 */
#include "wal/objset.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "pack/pack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct gw_objset {
	char *dir;
	size_t hl;             /* ids' length: 20 (sha1) or 32 (sha256), the generation's */
	int (*cmp)(const void *, const void *); /* compares hl bytes */
	uint64_t base_lsn;
	int idx_fd;
	gw_idx idx;
	int have_idx;
	unsigned char *added; /* sorted */
	size_t nadded, cap;
	int added_fd;
	uint64_t covered;
	unsigned char *closed; /* sorted: full backup objects proven closed (in memory only) */
	size_t nclosed, closed_cap;
};

static int oid_cmp20(const void *a, const void *b)
{
	return memcmp(a, b, 20);
}

static int oid_cmp32(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

static char *path_in(const gw_objset *s, const char *name)
{
	return gw_fs_join(s->dir, name);
}

static int read_lsn_file(gw_objset *s, const char *name, uint64_t *lsn)
{
	char *p = path_in(s, name), buf[32] = {0};
	FILE *f = p ? fopen(p, "r") : NULL;
	free(p);
	*lsn = 0;
	if (!f)
		return 0;
	if (fgets(buf, sizeof(buf), f))
		*lsn = strtoull(buf, NULL, 10);
	fclose(f);
	return 0;
}

/* Room for n more ids in s->added (an array of s->hl-byte elements). */
static int grow(gw_objset *s, size_t n)
{
	return gw_array_reserve(&s->added, &s->cap, s->nadded + n, s->hl);
}

/* Open base.idx and added.oids (at load, and again after gw_objset_release()). */
static int open_files(gw_objset *s)
{
	char *p;
	int rc;
	if (!(p = path_in(s, "base.idx")))
		return GW_ERROR;
	s->idx_fd = open(p, O_RDONLY | O_CLOEXEC);
	free(p);
	if (s->idx_fd < 0)
		return gw_error_set(GW_ENOTFOUND, "archive state %s has no base index", s->dir);
	if ((rc = gw_idx_open(&s->idx, s->idx_fd, "base.idx", s->hl, 0)) < 0)
		return rc;
	s->have_idx = 1;
	if (!(p = path_in(s, "added.oids")))
		return GW_ERROR;
	s->added_fd = open(p, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	free(p);
	if (s->added_fd < 0)
		return gw_error_set_errno(GW_EIO, "archive state %s: cannot open added.oids", s->dir);
	return 0;
}

/* Reopen what gw_objset_release() closed. */
static int reopen(gw_objset *s)
{
	if (s->idx_fd >= 0 || !s->base_lsn)
		return 0;
	return open_files(s);
}

/*
 * added.oids interleaves ids with a marker after each segment's ids: twelve
 * 0xff bytes and the segment's LSN (uint64_be), then zeros to an id's length
 * (none for sha1's 20 bytes, 12 for sha256's 32). The set covers the log up to
 * the last marker, so a crash that loses the tail of the file (or never wrote
 * it) leaves the set claiming no more than it holds.
 */
static const unsigned char marker_prefix[12] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
						 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

static void drop_markers(gw_objset *s)
{
	size_t i, kept = 0;
	for (i = 0; i < s->nadded; i++) {
		unsigned char *e = s->added + i * s->hl;
		if (!memcmp(e, marker_prefix, sizeof(marker_prefix))) {
			uint64_t lsn = 0;
			int k;
			for (k = 12; k < 20; k++)
				lsn = lsn << 8 | e[k];
			if (lsn > s->covered)
				s->covered = lsn;
			continue;
		}
		memmove(s->added + kept * s->hl, e, s->hl);
		kept++;
	}
	s->nadded = kept;
}

static int load(gw_objset *s)
{
	struct stat st;
	size_t size, whole;
	int rc;
	if ((rc = open_files(s)) < 0)
		return rc;
	if (fstat(s->added_fd, &st) < 0)
		return gw_error_set_errno(GW_EIO, "archive state %s: cannot open added.oids", s->dir);
	size = (size_t)st.st_size;
	whole = size - size % s->hl;
	if (whole != size)
		/* A torn append: the tail of an unfinished write. Drop it. */
		if (ftruncate(s->added_fd, (off_t)whole) < 0)
			return gw_error_set_errno(GW_EIO, "archive state %s: cannot repair added.oids", s->dir);
	s->nadded = 0;
	if ((rc = grow(s, whole / s->hl)) < 0)
		return rc;
	if (whole && pread(s->added_fd, s->added, whole, 0) != (ssize_t)whole)
		return gw_error_set_errno(GW_EIO, "archive state %s: cannot read added.oids", s->dir);
	s->nadded = whole / s->hl;
	drop_markers(s);
	if (s->nadded)
		qsort(s->added, s->nadded, s->hl, s->cmp);
	return 0;
}

/* Released, and the ids added in memory forgotten too: they are read again at the next load. */
static void unload(gw_objset *s)
{
	gw_objset_release(s);
	s->nadded = 0;
}

int gw_objset_open(gw_objset **out, const char *dir, size_t hash_len)
{
	gw_objset *s = calloc(1, sizeof(*s));
	uint64_t have;
	int rc;
	*out = NULL;
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	s->hl = hash_len;
	s->cmp = hash_len == 32 ? oid_cmp32 : oid_cmp20;
	s->idx_fd = s->added_fd = -1;
	if ((rc = gw_fs_mkdir_p(dir, 0700)) < 0)
		goto fail;
	read_lsn_file(s, "base.lsn", &have);
	s->base_lsn = have;
	s->covered = have;
	if (have && load(s) < 0) {
		unload(s);
		s->base_lsn = 0;
	}
	gw_error_clear();
	*out = s;
	return 0;
fail:
	gw_objset_free(s);
	return rc;
}

/* Download key into path, durably. */
static int fetch(gw_store *store, const char *key, const char *path)
{
	gw_fd_sink out;
	int fd, rc;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return gw_error_set_errno(GW_EIO, "cannot create %s", path);
	if ((rc = gw_fd_sink_init(&out, fd, path)) == 0 &&
	    (rc = gw_store_pump(store, key, 0, GW_STORE_TO_END, &out.sink)) == 0 && (rc = gw_fd_sink_flush(&out)) == 0 &&
	    fsync(fd) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot fsync %s", path);
	gw_fd_sink_dispose(&out);
	close(fd);
	return rc;
}

int gw_objset_reset(gw_objset *s, gw_store *store, const char *idx_key, uint64_t base_lsn)
{
	char *idx = path_in(s, "base.idx"), *added = path_in(s, "added.oids"), *lsn = path_in(s, "base.lsn"),
	     *tmp = path_in(s, "base.lsn.tmp");
	FILE *f;
	int rc = 0;
	if (!idx || !added || !lsn || !tmp) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	unload(s);
	/* base.lsn last: until it names the new LSN, the state does not claim it. */
	unlink(lsn);
	unlink(added);
	if ((rc = fetch(store, idx_key, idx)) < 0)
		goto out;
	if (!(f = fopen(tmp, "w")) || fprintf(f, "%llu\n", (unsigned long long)base_lsn) < 0 || fflush(f) ||
	    fsync(fileno(f))) {
		if (f)
			fclose(f);
		rc = gw_error_set_errno(GW_EIO, "cannot write %s", tmp);
		goto out;
	}
	fclose(f);
	if (rename(tmp, lsn) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot rename %s", tmp);
		goto out;
	}
	s->base_lsn = base_lsn;
	s->covered = base_lsn;
	s->nclosed = 0; /* another full backup: nothing of it is proven yet */
	rc = load(s);
out:
	free(idx);
	free(added);
	free(lsn);
	free(tmp);
	return rc;
}

void gw_objset_release(gw_objset *s)
{
	if (s->idx_fd >= 0)
		close(s->idx_fd);
	if (s->added_fd >= 0)
		close(s->added_fd);
	s->idx_fd = s->added_fd = -1;
	s->have_idx = 0;
}

int gw_objset_has(gw_objset *s, const unsigned char *oid)
{
	uint32_t pos;
	int rc;
	if (s->nadded && bsearch(oid, s->added, s->nadded, s->hl, s->cmp))
		return 1;
	if ((rc = reopen(s)) < 0)
		return rc;
	if (!s->have_idx || (rc = gw_idx_find(&s->idx, oid, &pos)) <= 0)
		return rc;
	return s->nclosed && bsearch(oid, s->closed, s->nclosed, s->hl, s->cmp) ? 1 : 2;
}

int gw_objset_mark_closed(gw_objset *s, const unsigned char *oids, size_t n)
{
	if (!n)
		return 0;
	if (gw_array_reserve(&s->closed, &s->closed_cap, s->nclosed + n, s->hl) < 0)
		return GW_ERROR;
	/* Sort the new ids at the end, then merge from the back: a few marks cost no sort of them all. */
	{
		unsigned char *add = s->closed + s->nclosed * s->hl;
		size_t i = s->nclosed, j = n, k = s->nclosed + n;
		memcpy(add, oids, n * s->hl);
		qsort(add, n, s->hl, s->cmp);
		if (s->nclosed && memcmp(s->closed + (s->nclosed - 1) * s->hl, add, s->hl) > 0) {
			unsigned char *tmp = malloc(n * s->hl);
			if (!tmp)
				return gw_error_set(GW_ERROR, "out of memory");
			memcpy(tmp, add, n * s->hl);
			while (j > 0) {
				if (i > 0 && memcmp(s->closed + (i - 1) * s->hl, tmp + (j - 1) * s->hl, s->hl) > 0) {
					memcpy(s->closed + (--k) * s->hl, s->closed + (--i) * s->hl, s->hl);
				} else {
					memcpy(s->closed + (--k) * s->hl, tmp + (--j) * s->hl, s->hl);
				}
			}
			free(tmp);
		}
	}
	s->nclosed += n;
	return 0;
}

int gw_objset_add(gw_objset *s, const unsigned char *oids, size_t n, uint64_t lsn)
{
	unsigned char *buf;
	size_t len = (n + 1) * s->hl;
	int rc, k;
	if ((rc = reopen(s)) < 0)
		return rc;
	if (!(buf = malloc(len)))
		return gw_error_set(GW_ERROR, "out of memory");
	if (n)
		memcpy(buf, oids, n * s->hl);
	memset(buf + n * s->hl, 0, s->hl);
	memcpy(buf + n * s->hl, marker_prefix, sizeof(marker_prefix));
	for (k = 0; k < 8; k++)
		buf[n * s->hl + 12 + k] = (unsigned char)(lsn >> (56 - 8 * k));
	if (write(s->added_fd, buf, len) != (ssize_t)len || fdatasync(s->added_fd) < 0) {
		free(buf);
		return gw_error_set_errno(GW_EIO, "archive state %s: cannot append to added.oids", s->dir);
	}
	free(buf);
	if ((rc = grow(s, n)) < 0)
		return rc;
	if (n)
		memcpy(s->added + s->nadded * s->hl, oids, n * s->hl);
	s->nadded += n;
	if (s->nadded)
		qsort(s->added, s->nadded, s->hl, s->cmp);
	if (lsn > s->covered)
		s->covered = lsn;
	return 0;
}

uint64_t gw_objset_covered(const gw_objset *s)
{
	return s->covered;
}

uint64_t gw_objset_base_lsn(const gw_objset *s)
{
	return s->base_lsn;
}

void gw_objset_free(gw_objset *s)
{
	if (!s)
		return;
	unload(s);
	free(s->added);
	free(s->closed);
	free(s->dir);
	free(s);
}
