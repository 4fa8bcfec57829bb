/*
 * Building a restored repository in its scratch directory: an empty bare
 * repository, then its objects -- the full backup's pack as it is when no
 * small segment follows it, else one pack joining the full backup's and the
 * small segments' (gw_pack_appender, the two fed at once from two threads),
 * and a pack of its own for each large segment, joined with the rest by the
 * pack splicer -- every ref's object found in them, then packed-refs and
 * HEAD. Every byte comes through fetch.c's checks; building adds the checks
 * of the whole: each pack against its index, and the refs against the packs.
 */
#include "restore/restore_internal.h"
#include "util/thread.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* Segment packs joined at a time (two descriptors each while joined). */
#define CONSOLIDATE_BATCH 512

int gw_restore__write_file(const char *dir, const char *name, const char *content)
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

/* packed-refs (sorted), the symbolic refs as loose files, and HEAD; ids of hash_len bytes. */
static int write_refs(const char *dir, const gw_refstate *st, size_t hash_len)
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
			gw_hex_encode(hex, st->refs[i].oid, hash_len);
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
		if ((rc = gw_restore__write_file(dir, st->refs[i].name, content)) < 0)
			return rc;
	}
	{
		char head[4200];
		if (st->head.symbolic)
			snprintf(head, sizeof(head), "ref: %s\n", st->head.symbolic);
		else if (st->head.name && !st->head.dangling) {
			gw_hex_encode(hex, st->head.oid, hash_len);
			snprintf(head, sizeof(head), "%s\n", hex);
		} else
			snprintf(head, sizeof(head), "ref: refs/heads/master\n");
		return gw_restore__write_file(dir, "HEAD", head);
	}
}

/*
 * An empty bare repository in dir, for the objects and refs to come; a
 * sha256 one (hash_len 32) says so as git init --object-format=sha256 does.
 */
static int make_skeleton(const char *dir, size_t hash_len)
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
	if ((rc = gw_restore__write_file(dir, "config",
			     hash_len == 32 ? "[core]\n\trepositoryformatversion = 1\n\tfilemode = true\n\tbare = true\n"
					      "[extensions]\n\tobjectformat = sha256\n"
					    : "[core]\n\trepositoryformatversion = 0\n\tfilemode = true\n\tbare = true\n")) < 0)
		return rc;
	return gw_restore__write_file(dir, "description", "Restored by gitwal\n");
}

/*
 * The full backup's pack and index, as they are, into objects/pack (the
 * restore of a full backup with no small segment after it): the index
 * first, so that the pack is checked against it as it streams to disk.
 */
int gw_restore__build_full_pack(gw_store *store, const gw_manifest *m, const char *dir, char *name, size_t name_size)
{
	unsigned char trailer[GW_HASH_MAX];
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
	if ((rc = gw_restore__fetch_full_index(store, m, idx_path, 1, &idx, &ifd)) < 0)
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
		if ((rc = gw_restore__fetch_full_pack(store, m, gw_async_sink_as_sink(async), trailer)) == 0)
			rc = gw_async_sink_finish(async);
	}
	if (rc == 0 && (rc = gw_pack_check_finish(check)) == 0 && (rc = gw_restore__check_pack_trailer(m, trailer)) == 0 &&
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

int gw_restore__name_pack(const char *packdir, const char *tmp_pack, const char *tmp_idx,
			  const unsigned char *checksum, size_t hash_len)
{
	char hex[GW_HEX_MAX], final[4300];
	gw_hex_encode(hex, checksum, hash_len);
	snprintf(final, sizeof(final), "%s/pack-%s.pack", packdir, hex);
	if (rename(tmp_pack, final) < 0)
		return gw_error_set_errno(GW_EIO, "cannot rename %s", tmp_pack);
	snprintf(final, sizeof(final), "%s/pack-%s.idx", packdir, hex);
	if (rename(tmp_idx, final) < 0)
		return gw_error_set_errno(GW_EIO, "cannot rename %s", tmp_idx);
	return 0;
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
static int consolidate_packs(const char *dir, const char *rel, const char *keep, size_t hash_len)
{
	char packdir[4200], tmp_pack[4300], tmp_idx[4300];
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
		if ((rc = GW_ARRAY_RESERVE(names, cap, n + 1)) < 0)
			break;
		if (!(names[n] = strndup(de->d_name, len - 5))) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			break;
		}
		n++;
	}
	closedir(d);
	if (rc < 0 || n <= 1)
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
		if ((rc = gw_idx_open(&srcs[i].idx, srcs[i].idx_fd, srcs[i].name, hash_len, 0)) < 0)
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
	if ((rc = gw_pack_splice(rel, srcs, n, NULL, 0, hash_len, &ps.sink, &is.sink, &stats)) < 0 ||
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
	rc = gw_restore__name_pack(packdir, tmp_pack, tmp_idx, stats.pack_checksum, hash_len);
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

/*
 * The small segments, verified and appended in LSN order: on a thread of
 * their own while the full backup's pack streams in (or inline, app NULL,
 * when they hold no objects). The first failure stops both sides; its
 * message is carried back to the calling thread (errors are per thread).
 */
typedef struct {
	gw_store *store;
	const gw_restore_plan *p;
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
		if (f->p->segs[i].size > GW_RESTORE_SEGMENT_IN_MEMORY)
			continue;
		if ((f->rc = gw_restore__fetch_segment_append(f->store, &f->p->segs[i], f->app)) < 0) {
			f->code = gw_error_code();
			snprintf(f->message, sizeof(f->message), "%s", gw_error_message());
			atomic_store(&f->failed, 1);
		}
	}
	return NULL;
}

/* Ends the full backup's stream once a segment failed: its error is the one reported. */
typedef struct {
	gw_sink sink;
	gw_sink *next;
	atomic_int *stop;
} stop_filter;

static int stop_write(gw_sink *sink, const void *buf, size_t len)
{
	stop_filter *f = (stop_filter *)sink;
	if (atomic_load(f->stop))
		return gw_error_set(GW_ERROR, "stopped: a segment failed");
	return gw_sink_write(f->next, buf, len);
}

/*
 * One pack of the full backup and the small segments: the full pack streams
 * into the front of the joined pack (its offsets unchanged, its index merged
 * at the end) while a second thread appends the segments behind it.
 */
static int build_joined_pack(gw_store *store, const gw_restore_plan *p, const char *dir, uint64_t segment_objects,
			     char *name, size_t name_size)
{
	const gw_manifest *m = &p->m;
	char idx_path[4300], base[4300], *pack_path = NULL, *idx_out = NULL;
	unsigned char trailer[GW_HASH_MAX];
	gw_slice_filter body;
	stop_filter stop = {{stop_write}, NULL, NULL};
	segment_feed feed = {store, p, NULL, 0, 0, 0, {0}};
	gw_pack_check *check = NULL;
	gw_async_sink *async = NULL;
	gw_pack_base first;
	gw_idx idx;
	pthread_t thread;
	int fd = -1, rc, threaded = 0;

	snprintf(idx_path, sizeof(idx_path), "%s/objects/pack/tmp_full.idx", dir);
	snprintf(base, sizeof(base), "%s/objects/pack/pack", dir);
	if (m->bundle.size < m->pack_offset + GW_PACK_HEADER_SIZE + m->hash_len)
		return gw_error_set(GW_ECORRUPT, "key %s is too short for its pack", m->bundle.key);
	if ((rc = gw_restore__fetch_full_index(store, m, idx_path, 0, &idx, &fd)) < 0) /* read to merge, never installed */
		goto out;
	first.idx = &idx;
	first.body_len = m->bundle.size - m->pack_offset - GW_PACK_HEADER_SIZE - m->hash_len;
	if ((rc = gw_pack_appender_open(&feed.app, base, m->objects + segment_objects, m->hash_len, &first)) < 0)
		goto out;
	threaded = gw_thread_create(&thread, feed_segments, &feed) == 0;
	if (!threaded)
		feed_segments(&feed);
	/* Into the joined pack: the object data, between the full's pack header (kept for checks) and its trailer. */
	gw_slice_filter_init(&body, gw_pack_appender_base_sink(feed.app), GW_PACK_HEADER_SIZE,
			     m->bundle.size - m->pack_offset - m->hash_len);
	stop.next = &body.sink;
	stop.stop = &feed.failed;
	/*
	 * The full's pack is checked against its index on its way into the
	 * joined pack (the segments' in the appender). Its own SHA-1 too, though
	 * its trailer is not kept: a forger who made the CRC32s agree with a
	 * changed object has not made the SHA-1 agree.
	 */
	rc = gw_async_sink_new(&async, &stop.sink); /* the joined pack's SHA-1 and the writes on a thread of their own */
	if (rc == 0)
		rc = gw_pack_check_new(&check, &idx, m->bundle.size - m->pack_offset, m->bundle.key,
				       gw_async_sink_as_sink(async));
	if (rc == 0 && (rc = gw_restore__fetch_full_pack(store, m, gw_pack_check_sink(check), trailer)) == 0 &&
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
	if (rc < 0 || (rc = gw_restore__check_pack_header(m, body.head)) < 0 ||
	    (rc = gw_restore__check_pack_trailer(m, trailer)) < 0 ||
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
	unsigned char oid[GW_HASH_MAX]; /* zero beyond the format's length: compared whole */
	const char *name;
} wanted_ref;

static int wanted_cmp(const void *a, const void *b)
{
	return memcmp(((const wanted_ref *)a)->oid, ((const wanted_ref *)b)->oid, GW_HASH_MAX);
}

/*
 * Every ref's object, and HEAD's when detached, must be in a pack of the
 * repository being built (one, but any number is looked in), or of its
 * restored pool (pool_dir, or NULL): a ref to an object the archive does
 * not hold gives a repository git fsck rejects. One pass over each index's
 * id table, merged with the sorted wanted ids.
 */
static int check_refs_present(const char *dir, const char *pool_dir, const gw_restore_plan *p)
{
	const gw_refstate *st = &p->state;
	size_t hl = p->m.hash_len;
	wanted_ref *w = NULL;
	unsigned char *oids = NULL, *found = NULL;
	char packdir[4200];
	const char *dirs[2] = {dir, pool_dir};
	size_t n = 0, i, k;
	struct dirent *de;
	DIR *d = NULL;
	int rc = 0;

	if (!(w = calloc(st->nrefs + 1, sizeof(*w))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i <= st->nrefs; i++) {
		const gw_ref *r = i < st->nrefs ? &st->refs[i] : &st->head;
		if (!r->name || r->symbolic || r->dangling)
			continue;
		memcpy(w[n].oid, r->oid, hl);
		w[n++].name = r->name;
	}
	if (!n)
		goto out;
	qsort(w, n, sizeof(*w), wanted_cmp);
	if (!(oids = malloc(n * hl)) || !(found = calloc(n, 1))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++)
		memcpy(oids + i * hl, w[i].oid, hl);
	for (k = 0; k < 2 && dirs[k] && rc == 0; k++) {
		if (d)
			closedir(d);
		d = NULL;
		snprintf(packdir, sizeof(packdir), "%s/objects/pack", dirs[k]);
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
			if ((rc = gw_idx_open(&idx, fd, path, hl, 0)) == 0)
				rc = gw_idx_verify(&idx, oids, n, found);
			close(fd);
		}
	}
	for (i = 0; rc == 0 && i < n; i++)
		if (!found[i]) {
			char hex[GW_HEX_MAX];
			gw_hex_encode(hex, w[i].oid, hl);
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

int gw_restore__build(gw_store *store, const char *rel, const gw_restore_plan *p, const char *dir, int skeleton_files,
		      const char *pool_dir, const char *alternates)
{
	char main_pack[64];
	segment_feed feed = {store, p, NULL, 0, 0, 0, {0}};
	uint64_t small_objects = 0;
	size_t i;
	unsigned n = 0;
	int rc;
	for (i = 0; i < p->nsegs; i++)
		if (p->segs[i].size <= GW_RESTORE_SEGMENT_IN_MEMORY)
			small_objects += p->segs[i].objects;
	/*
	 * Every segment used is verified, those without objects too: their
	 * updates count. Small ones (nearly all) go into one pack with the full
	 * backup's; large ones are streamed into packs of their own, joined in
	 * batches and at the end.
	 */
	if ((rc = make_skeleton(dir, p->m.hash_len)) == 0 && small_objects) {
		rc = build_joined_pack(store, p, dir, small_objects, main_pack, sizeof(main_pack));
	} else if (rc == 0 && (rc = gw_restore__build_full_pack(store, &p->m, dir, main_pack, sizeof(main_pack))) == 0) {
		feed_segments(&feed);
		rc = feed.rc < 0 ? gw_error_set(feed.code, "%s", feed.message) : 0;
	}
	for (i = 0; rc == 0 && i < p->nsegs; i++) {
		if (p->segs[i].size <= GW_RESTORE_SEGMENT_IN_MEMORY)
			continue;
		rc = gw_restore__fetch_segment_pack(store, &p->segs[i], dir, n, p->m.hash_len);
		if (p->segs[i].objects && ++n % CONSOLIDATE_BATCH == 0 && rc == 0)
			rc = consolidate_packs(dir, rel, main_pack, p->m.hash_len);
	}
	if (rc == 0 && n)
		rc = consolidate_packs(dir, rel, NULL, p->m.hash_len);
	if (rc == 0)
		rc = check_refs_present(dir, pool_dir, p);
	/*
	 * A pooled member reads its pool's objects through a relative path
	 * (DESIGN.md 19); standalone (no alternates line), it gets a copy of
	 * those it needs instead.
	 */
	if (rc == 0 && pool_dir && alternates) {
		char line[4200];
		snprintf(line, sizeof(line), "%s\n", alternates);
		rc = gw_restore__write_file(dir, "objects/info/alternates", line);
	} else if (rc == 0 && pool_dir) {
		rc = gw_restore__standalone(dir, pool_dir, rel, &p->state, p->m.hash_len);
	}
	if (rc == 0)
		rc = write_refs(dir, &p->state, p->m.hash_len);
	/* Over the skeleton's config and description: the repository's own, as the span's end had them. */
	if (rc == 0 && !skeleton_files)
		rc = gw_files_install(p->files ? p->files : &p->m.files, dir, rel);
	return rc;
}
