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
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/layout.h"
#include "gitwal/manifest.h"
#include "gitwal/repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define COPY_BUFFER (1u << 20)

static int unlink_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	return flag == FTW_DP ? rmdir(path) : unlink(path);
}

int gw_remove_tree(const char *path)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : gw_error_set_errno(GW_EIO, "cannot remove %s", path);
	if (nftw(path, unlink_cb, 32, FTW_DEPTH | FTW_PHYS) < 0)
		return gw_error_set_errno(GW_EIO, "cannot remove %s", path);
	return 0;
}

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

/* Copy key[from, end) into path, hashing key[0, end) with SHA-256; check size and digest. */
static int fetch_part(gw_store *store, const gw_manifest_part *part, uint64_t from, const char *path,
		      unsigned char *tail, size_t tail_len)
{
	gw_store_reader *r = NULL;
	gw_digest_filter digest;
	unsigned char *buf = NULL;
	char hex[GW_HEX_MAX];
	uint64_t pos = 0;
	int fd = -1, rc;

	if ((rc = gw_digest_filter_init(&digest, GW_HASH_SHA256, NULL)) < 0)
		return rc;
	if (!(buf = malloc(COPY_BUFFER))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_store_read_open(&r, store, part->key, 0, GW_STORE_TO_END)) < 0)
		goto out;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444)) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot create %s", path);
		goto out;
	}
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
		if ((uint64_t)n > skip) {
			const unsigned char *p = buf + skip;
			size_t left = (size_t)((uint64_t)n - skip);
			while (left) {
				ssize_t w = write(fd, p, left);
				if (w < 0 && errno == EINTR)
					continue;
				if (w < 0) {
					rc = gw_error_set_errno(GW_EIO, "cannot write %s", path);
					goto out;
				}
				p += w;
				left -= (size_t)w;
			}
		}
		pos += (uint64_t)n;
		/* Keep the last tail_len bytes for the caller's trailer checks. */
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
	if (strcmp(hex, part->sha256) != 0) {
		rc = gw_error_set(GW_ECORRUPT, "key %s is corrupt: its SHA-256 is %s, its manifest says %s", part->key,
				  hex, part->sha256);
		goto out;
	}
	if (fsync(fd) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot fsync %s", path);
out:
	if (fd >= 0)
		close(fd);
	gw_store_reader_free(r);
	gw_digest_filter_dispose(&digest);
	free(buf);
	return rc;
}

static int write_refs(const char *dir, const gw_manifest *m)
{
	char path[4096];
	FILE *f;
	size_t i;
	int rc;

	snprintf(path, sizeof(path), "%s/packed-refs", dir);
	if (!(f = fopen(path, "wx")))
		return gw_error_set_errno(GW_EIO, "cannot create %s", path);
	fputs("# pack-refs with: sorted \n", f);
	for (i = 0; i < m->nrefs; i++)
		if (!m->refs[i].symbolic)
			fprintf(f, "%s %s\n", m->refs[i].oid, m->refs[i].name);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		fclose(f);
		return gw_error_set_errno(GW_EIO, "cannot write %s", path);
	}
	fclose(f);
	/* Symbolic refs other than HEAD are loose files. */
	for (i = 0; i < m->nrefs; i++) {
		char content[4200], *slash;
		if (!m->refs[i].symbolic)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, m->refs[i].name);
		slash = strrchr(path, '/');
		*slash = '\0';
		if ((rc = gw_fs_mkdir_p(path, 0755)) < 0)
			return rc;
		*slash = '/';
		snprintf(content, sizeof(content), "ref: %s\n", m->refs[i].symbolic);
		if ((rc = write_file(dir, m->refs[i].name, content)) < 0)
			return rc;
	}
	{
		char head[4200];
		if (m->head.symbolic)
			snprintf(head, sizeof(head), "ref: %s\n", m->head.symbolic);
		else if (m->head.oid[0])
			snprintf(head, sizeof(head), "%s\n", m->head.oid);
		else
			snprintf(head, sizeof(head), "ref: refs/heads/master\n");
		return write_file(dir, "HEAD", head);
	}
}

static uint32_t be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Build the whole repository in dir. */
static int build_repository(gw_store *store, const gw_manifest *m, const char *dir)
{
	static const char *subdirs[] = {"objects", "objects/pack", "objects/info", "refs", "refs/heads", "refs/tags"};
	unsigned char tail[40], want[20];
	char pack_tmp[4096], pack_path[4096], idx_path[4096], hex[GW_HEX_MAX];
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
	if ((rc = write_file(dir, "description", "Restored by gitwal\n")) < 0)
		return rc;
	gw_hex_decode(want, m->pack_checksum, 20);
	snprintf(pack_tmp, sizeof(pack_tmp), "%s/objects/pack/tmp_pack_gitwal", dir);
	snprintf(pack_path, sizeof(pack_path), "%s/objects/pack/pack-%s.pack", dir, m->pack_checksum);
	snprintf(idx_path, sizeof(idx_path), "%s/objects/pack/pack-%s.idx", dir, m->pack_checksum);
	if ((rc = fetch_part(store, &m->bundle, m->pack_offset, pack_tmp, tail, 20)) < 0)
		return rc;
	if (memcmp(tail, want, 20) != 0) {
		gw_hex_encode(hex, tail, 20);
		return gw_error_set(GW_ECORRUPT, "key %s: pack checksum %s differs from the manifest's %s", m->bundle.key,
				    hex, m->pack_checksum);
	}
	if ((rc = fetch_part(store, &m->idx, 0, idx_path, tail, 40)) < 0)
		return rc;
	if (memcmp(tail, want, 20) != 0)
		return gw_error_set(GW_ECORRUPT, "key %s: the index is for another pack", m->idx.key);
	{
		/* The object count in the index's fanout must match the manifest. */
		unsigned char b[4];
		int fd = open(idx_path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : pread(fd, b, 4, 8 + 255 * 4);
		if (fd >= 0)
			close(fd);
		if (n != 4 || be32(b) != m->objects)
			return gw_error_set(GW_ECORRUPT, "key %s: the index does not hold the %llu objects of the manifest",
					    m->idx.key, (unsigned long long)m->objects);
	}
	if (rename(pack_tmp, pack_path) < 0)
		return gw_error_set_errno(GW_EIO, "cannot rename %s", pack_tmp);
	if ((rc = write_refs(dir, m)) < 0)
		return rc;
	{
		char p[4096];
		snprintf(p, sizeof(p), "%s/objects/pack", dir);
		if ((rc = gw_fs_fsync_dir(p)) < 0)
			return rc;
	}
	return gw_fs_fsync_dir(dir);
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

int gw_restore_full(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
		    gw_restore_result *result)
{
	static unsigned counter;
	struct timespec t0, t1;
	gw_full_record rec;
	gw_manifest m;
	char target[4096], tmp[4200], parent[4096], *slash;
	struct stat st;
	int rc, replace = 0;

	memset(result, 0, sizeof(*result));
	memset(&m, 0, sizeof(m));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((rc = gw_repo_path_check(rel)) < 0)
		return rc;
	rc = gw_index_full_find(index, rel, opts->lsn, &rec);
	if (rc == GW_ENOTFOUND) {
		/* The index is a cache: look in the store before giving up. */
		if ((rc = gw_index_sync(index, store, rel)) < 0)
			return rc;
		rc = gw_index_full_find(index, rel, opts->lsn, &rec);
	}
	if (rc < 0)
		return rc;
	if ((rc = load_manifest(store, &rec, &m)) < 0)
		goto out;
	if (snprintf(target, sizeof(target), "%s/%s", opts->to, rel) >= (int)sizeof(target)) {
		rc = gw_error_set(GW_EINVALID, "repository %s: target path too long", rel);
		goto out;
	}
	if (lstat(target, &st) == 0) {
		int empty;
		if (!S_ISDIR(st.st_mode)) {
			rc = gw_error_set(GW_EEXISTS, "repository %s: target %s exists and is not a directory", rel, target);
			goto out;
		}
		if ((rc = dir_is_empty(target, &empty)) < 0)
			goto out;
		if (!empty && !opts->force) {
			rc = gw_error_set(GW_EEXISTS,
					  "repository %s: target %s exists and is not empty (use --force to replace it)",
					  rel, target);
			goto out;
		}
		replace = !empty;
	}
	snprintf(parent, sizeof(parent), "%s", target);
	slash = strrchr(parent, '/');
	*slash = '\0';
	if ((rc = gw_fs_mkdir_p(parent, 0755)) < 0)
		goto out;
	snprintf(tmp, sizeof(tmp), "%s/.gitwal-restore.%s.%ld.%u", parent, slash + 1, (long)getpid(),
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	if (mkdir(tmp, 0755) < 0) {
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot create %s", rel, tmp);
		goto out;
	}
	rc = build_repository(store, &m, tmp);
	if (rc == 0)
		rc = install(tmp, target, replace, rel);
	if (rc < 0) {
		gw_remove_tree(tmp);
		goto out;
	}
	result->lsn = m.lsn;
	result->time_us = m.time_us;
	result->bytes = m.bundle.size + m.idx.size;
	result->objects = m.objects;
	result->refs = m.nrefs;
out:
	if (rc < 0 && strncmp(gw_error_message(), "repository ", 11) != 0)
		gw_error_prefix("repository %s", rel);
	gw_manifest_dispose(&m);
	gw_full_record_dispose(&rec);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	result->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return rc;
}
