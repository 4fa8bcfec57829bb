/*
 * The file:// storage driver: a local directory, the embedded default.
 *
 * Write-once on POSIX: an object is written to a hidden temporary name in its
 * final directory, fsync'd and made read-only, then link(2)ed to its final
 * name. link never replaces an existing name (EEXIST becomes GW_EEXISTS), so
 * a key is never overwritten, and a crash leaves at most a hidden temporary
 * file, never a partial object under a final name. The directory is fsync'd
 * after the link so the name itself is durable. A temporary name carries its
 * writer (util/owner.h): the first commit of a process in a directory removes
 * the temporary files of dead writers there (DESIGN.md 2.2).
 */
#include "store/driver.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "util/owner.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_WRITE_BUFFER (256 * 1024)
/*
 * Start write-back every this many bytes (sync_file_range), so that the
 * fsync at commit finds most of the data already on disk: the disk works
 * while the producer keeps producing, instead of all at the end.
 */
#define FILE_WRITEBACK_CHUNK (8u << 20)

#define TMP_LEAD ".tmp."

typedef struct {
	char *root; /* absolute, no trailing slash */
	gw_owner_cleared cleared; /* directories this store object cleared of dead writers' files */
} file_store;

typedef struct {
	gw_store_writer base;
	int fd;
	char *tmp_path;
	char *final_path;
	unsigned char *buf;
	size_t used;
	uint64_t written;  /* bytes handed to the kernel */
	uint64_t flushed;  /* bytes whose write-back was started */
} file_writer;

typedef struct {
	gw_store_reader base;
	int fd;
	uint64_t offset;
	uint64_t remaining;
} file_reader;

static file_store *impl(gw_store *store)
{
	return store->impl;
}

/*
 * A key or directory not found: GW_ENOTFOUND, unless the store's own
 * directory is not there (an unmounted or failing disk, a directory moved
 * away): then the store is away (GW_EIO), not empty, so that nothing is
 * taken for absent while it cannot be seen.
 */
static int not_found(gw_store *store, const char *key)
{
	struct stat st;
	if (stat(impl(store)->root, &st) < 0 || !S_ISDIR(st.st_mode))
		return gw_error_set(GW_EIO, "store %s: its directory is not there", store->url);
	return gw_error_set(GW_ENOTFOUND, GW_STORE_MSG_NOTFOUND, key, store->url);
}

static int file_open(gw_store *store, const char *rest)
{
	file_store *fs;
	char *root;
	size_t n;
	int rc;

	if (rest[0] != '/')
		return gw_error_set(GW_EINVALID, "store URL file://%s: the path must be absolute (file:///path)", rest);
	if (strchr(rest, '?'))
		return gw_error_set(GW_EINVALID, "store URL file://%s: file stores take no parameters", rest);
	if (!(root = strdup(rest)))
		return gw_error_set(GW_ERROR, "out of memory");
	n = strlen(root);
	while (n > 1 && root[n - 1] == '/')
		root[--n] = '\0';
	if ((rc = gw_fs_mkdir_p(root, 0755)) < 0)
		gw_error_prefix("store file://%s", root);
	else if (access(root, W_OK | X_OK) < 0)
		rc = gw_error_set_errno(GW_EIO, "store file://%s is not writable", root);
	/* A service may start while the directory is away (an unmounted or failing disk): writes fail until it is back. */
	if (rc == GW_EIO && (store->open_flags & GW_STORE_OPEN_DEFER_CHECKS)) {
		gw_error_clear();
		rc = 0;
	}
	if (rc < 0) {
		free(root);
		return rc;
	}
	if (!(fs = calloc(1, sizeof(*fs)))) {
		free(root);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	fs->root = root;
	pthread_mutex_init(&fs->cleared.lock, NULL);
	store->impl = fs;
	n = strlen(root) + 8;
	if ((store->url = malloc(n)))
		snprintf(store->url, n, "file://%s", root);
	return 0;
}

static void file_free(gw_store *store)
{
	file_store *fs = impl(store);
	if (fs) {
		gw_owner_cleared_dispose(&fs->cleared);
		pthread_mutex_destroy(&fs->cleared.lock);
		free(fs->root);
		free(fs);
	}
}

static int file_write_open(gw_store_writer **out, gw_store *store, const char *key, uint64_t size_hint)
{
	file_writer *w;
	char *slash, *dir;
	static unsigned counter;
	const char *tag = gw_owner_tag();
	int rc, room;
	size_t n;

	(void)size_hint;
	if (!(w = calloc(1, sizeof(*w))))
		return gw_error_set(GW_ERROR, "out of memory");
	w->fd = -1;
	if (!(w->final_path = gw_fs_join(impl(store)->root, key)) || !(w->buf = malloc(FILE_WRITE_BUFFER)))
		goto oom;
	dir = strdup(w->final_path);
	if (!dir)
		goto oom;
	slash = strrchr(dir, '/');
	*slash = '\0';
	if ((rc = gw_fs_mkdir_p(dir, 0755)) < 0) {
		free(dir);
		gw_error_prefix("store %s, key %s", store->url, key);
		goto fail;
	}
	n = strlen(dir) + strlen(slash + 1) + strlen(tag) + 32;
	if (!(w->tmp_path = malloc(n))) {
		free(dir);
		goto oom;
	}
	/* The owner makes it a dead writer's leftover or not (util/owner.h); the key's name is only a hint, cut to fit NAME_MAX. */
	room = NAME_MAX - (int)(strlen(TMP_LEAD) + strlen(tag) + 12);
	snprintf(w->tmp_path, n, "%s/" TMP_LEAD "%.*s.%s.%u", dir, room, slash + 1, tag,
		 __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
	w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	/* Its directory may just have been removed by an aborted writer (see file_writer_free): make it again. */
	if (w->fd < 0 && errno == ENOENT && gw_fs_mkdir_p(dir, 0755) == 0)
		w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	free(dir);
	if (w->fd < 0) {
		rc = gw_error_set_errno(GW_EIO, "store %s: cannot create a temporary file for key %s", store->url, key);
		goto fail;
	}
	*out = &w->base;
	return 0;
oom:
	rc = gw_error_set(GW_ERROR, "out of memory");
fail:
	free(w->final_path);
	free(w->tmp_path);
	free(w->buf);
	free(w);
	return rc;
}

static void start_writeback(file_writer *w)
{
	if (w->written - w->flushed >= FILE_WRITEBACK_CHUNK) {
		sync_file_range(w->fd, (off_t)w->flushed, (off_t)(w->written - w->flushed), SYNC_FILE_RANGE_WRITE);
		w->flushed = w->written;
	}
}

static int write_counted(file_writer *w, const void *buf, size_t len)
{
	if (gw_write_all(w->fd, buf, len) < 0)
		return gw_error_set_errno(GW_EIO, "store %s: cannot write key %s", w->base.store->url, w->base.key);
	w->written += len;
	start_writeback(w);
	return 0;
}

static int file_flush(file_writer *w)
{
	int rc = write_counted(w, w->buf, w->used);
	w->used = 0;
	return rc;
}

static int file_write(gw_store_writer *base, const void *buf, size_t len)
{
	file_writer *w = (file_writer *)base;
	int rc;
	if (w->fd < 0)
		return gw_error_set(GW_ERROR, "store %s: key %s: write after commit", base->store->url, base->key);
	if (w->used + len <= FILE_WRITE_BUFFER) {
		memcpy(w->buf + w->used, buf, len);
		w->used += len;
		return 0;
	}
	if ((rc = file_flush(w)) < 0)
		return rc;
	if (len >= FILE_WRITE_BUFFER / 2)
		return write_counted(w, buf, len);
	memcpy(w->buf, buf, len);
	w->used = len;
	return 0;
}

static int file_commit(gw_store_writer *base)
{
	file_writer *w = (file_writer *)base;
	const char *url = base->store->url;
	char *slash;
	int rc;

	if (w->fd < 0)
		return gw_error_set(GW_ERROR, "store %s: key %s committed twice", url, base->key);
	if ((rc = file_flush(w)) < 0)
		return rc;
	if (fsync(w->fd) < 0)
		return gw_error_set_errno(GW_EIO, "store %s: cannot fsync key %s", url, base->key);
	if (fchmod(w->fd, 0444) < 0)
		return gw_error_set_errno(GW_EIO, "store %s: cannot make key %s read-only", url, base->key);
	if (close(w->fd) < 0) {
		w->fd = -1;
		return gw_error_set_errno(GW_EIO, "store %s: cannot close key %s", url, base->key);
	}
	w->fd = -1;
	if (link(w->tmp_path, w->final_path) < 0) {
		if (errno == EEXIST)
			return gw_error_set(GW_EEXISTS, GW_STORE_MSG_EXISTS, base->key, url);
		return gw_error_set_errno(GW_EIO, "store %s: cannot link key %s", url, base->key);
	}
	unlink(w->tmp_path);
	slash = strrchr(w->final_path, '/');
	*slash = '\0';
	if ((rc = gw_fs_fsync_dir(w->final_path)) == 0)
		gw_owner_clear_dead_once(&impl(base->store)->cleared, w->final_path, TMP_LEAD, NULL);
	*slash = '/';
	return rc;
}

static void file_writer_free(gw_store_writer *base)
{
	file_writer *w = (file_writer *)base;
	if (w->fd >= 0)
		close(w->fd);
	if (w->tmp_path && unlink(w->tmp_path) == 0) {
		/* Aborted: a directory made for this key alone goes too (rmdir leaves one that holds anything). */
		char *slash = strrchr(w->tmp_path, '/');
		*slash = '\0';
		rmdir(w->tmp_path);
		*slash = '/';
	}
	free(w->tmp_path);
	free(w->final_path);
	free(w->buf);
	free(base->key);
	free(w);
}

static int file_read_open(gw_store_reader **out, gw_store *store, const char *key, uint64_t offset, uint64_t length)
{
	file_reader *r;
	char *path = gw_fs_join(impl(store)->root, key);
	struct stat st;
	int fd;

	if (!path)
		return gw_error_set(GW_ERROR, "out of memory");
	/* A key is a regular file: not a symlink out of the store, not a FIFO that would block the open. */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	free(path);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR || errno == ELOOP)
			return not_found(store, key);
		return gw_error_set_errno(GW_EIO, "store %s: cannot open key %s", store->url, key);
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return gw_error_set(GW_ENOTFOUND, GW_STORE_MSG_NOTFOUND, key, store->url);
	}
	if (offset > (uint64_t)st.st_size) {
		close(fd);
		return gw_error_set(GW_EINVALID, "store %s: key %s: offset %llu past its end (%lld bytes)", store->url,
				    key, (unsigned long long)offset, (long long)st.st_size);
	}
	if (!(r = calloc(1, sizeof(*r)))) {
		close(fd);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	r->base.store = store;
	r->base.key = strdup(key);
	r->base.size = (uint64_t)st.st_size;
	r->fd = fd;
	r->offset = offset;
	/* A key never changes once written: reading stops at its size, without a read(2) to find the end. */
	r->remaining = (uint64_t)st.st_size - offset < length ? (uint64_t)st.st_size - offset : length;
	if (st.st_size > (1 << 20))
		posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	*out = &r->base;
	return 0;
}

static ssize_t file_read(gw_store_reader *base, void *buf, size_t len)
{
	file_reader *r = (file_reader *)base;
	ssize_t n;
	if (r->remaining < len)
		len = (size_t)r->remaining;
	if (len == 0)
		return 0;
	do
		n = pread(r->fd, buf, len, (off_t)r->offset);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return gw_error_set_errno(GW_EIO, "store %s: cannot read key %s", base->store->url,
					  base->key ? base->key : "?");
	r->offset += (uint64_t)n;
	r->remaining -= (uint64_t)n;
	return n;
}

static void file_reader_free(gw_store_reader *base)
{
	file_reader *r = (file_reader *)base;
	close(r->fd);
	free(base->key);
	free(r);
}

static int file_stat(gw_store *store, const char *key, gw_store_stat *st)
{
	char *path = gw_fs_join(impl(store)->root, key);
	struct stat sb;
	int rc;
	if (!path)
		return gw_error_set(GW_ERROR, "out of memory");
	rc = lstat(path, &sb);
	free(path);
	if (rc < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return not_found(store, key);
		return gw_error_set_errno(GW_EIO, "store %s: cannot stat key %s", store->url, key);
	}
	if (!S_ISREG(sb.st_mode))
		return gw_error_set(GW_ENOTFOUND, GW_STORE_MSG_NOTFOUND, key, store->url);
	st->size = (uint64_t)sb.st_size;
	st->mtime = sb.st_mtime;
	st->versions = 1;
	st->writable = (sb.st_mode & 0222) != 0;
	st->retain_until = 0;
	return 0;
}

/* Directory entries sorted as their keys sort: a directory name sorts as "name/". */
typedef struct {
	char *name;
	int is_dir;
	uint64_t size;
} dir_entry;

static int entry_cmp(const void *a, const void *b)
{
	const dir_entry *x = a, *y = b;
	const unsigned char *p = (const unsigned char *)x->name, *q = (const unsigned char *)y->name;
	for (;; p++, q++) {
		int c1 = *p ? *p : (x->is_dir ? '/' : 0);
		int c2 = *q ? *q : (y->is_dir ? '/' : 0);
		if (c1 != c2)
			return c1 - c2;
		if (!*p || !*q)
			return (*p ? 1 : 0) - (*q ? 1 : 0);
	}
}

/* Every key below directory key dir sorts before after ("dir/" is less than after's start). */
static int dir_before(const char *dir, const char *after)
{
	size_t n = strlen(dir);
	int c;
	if (!after)
		return 0;
	c = strncmp(dir, after, n);
	return c < 0 || (c == 0 && after[n] > '/');
}

/* Whether the listing returns the file key (by its name alone). */
static int key_wanted(const char *key, const char *prefix, const char *after)
{
	return strncmp(key, prefix, strlen(prefix)) == 0 && (!after || strcmp(key, after) > 0);
}

/* key_wanted for the file name in directory key dir_key, before it is stat'd. */
static int file_wanted(const char *dir_key, const char *name, const char *prefix, const char *after)
{
	char key[8192];
	if ((size_t)snprintf(key, sizeof(key), "%s%s%s", dir_key, dir_key[0] ? "/" : "", name) >= sizeof(key))
		return 1; /* let the check after the stat decide */
	return key_wanted(key, prefix, after);
}

/* The directory of dir_key ("" for the root): *d NULL, and 0, when it does not exist. */
static int open_store_dir(gw_store *store, const char *dir_key, DIR **d)
{
	char *path = dir_key[0] ? gw_fs_join(impl(store)->root, dir_key) : strdup(impl(store)->root);
	int rc = 0;
	if (!path)
		return gw_error_set(GW_ERROR, "out of memory");
	if (!(*d = opendir(path)) && errno != ENOENT && errno != ENOTDIR)
		rc = gw_error_set_errno(GW_EIO, "store %s: cannot list %s", store->url, dir_key);
	else if (!*d && not_found(store, dir_key) == GW_EIO)
		rc = GW_EIO;
	else
		gw_error_clear();
	free(path);
	return rc;
}

static int list_dir(gw_store *store, const char *dir_key, const char *prefix, const char *after, gw_store_list_cb cb,
		    void *payload)
{
	dir_entry *entries = NULL;
	size_t count = 0, cap = 0, i;
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if ((rc = open_store_dir(store, dir_key, &d)) < 0 || !d)
		return rc;
	while ((de = readdir(d))) {
		struct stat sb;
		if (de->d_name[0] == '.')
			continue; /* ., .. and temporary files */
		if (de->d_type == DT_REG && !file_wanted(dir_key, de->d_name, prefix, after))
			continue; /* a listing past `after` costs what it returns, not a stat per older key */
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (!S_ISDIR(sb.st_mode) && !S_ISREG(sb.st_mode))
			continue;
		if ((rc = GW_ARRAY_RESERVE(entries, cap, count + 1)) < 0)
			break;
		entries[count].name = strdup(de->d_name);
		entries[count].is_dir = S_ISDIR(sb.st_mode);
		entries[count].size = (uint64_t)sb.st_size;
		count++;
	}
	closedir(d);
	if (rc == 0 && count)
		qsort(entries, count, sizeof(*entries), entry_cmp);
	for (i = 0; i < count && rc == 0; i++) {
		size_t n = strlen(dir_key) + strlen(entries[i].name) + 2;
		char *key = malloc(n);
		size_t plen = strlen(prefix);
		if (!key) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			break;
		}
		snprintf(key, n, "%s%s%s", dir_key, dir_key[0] ? "/" : "", entries[i].name);
		if (entries[i].is_dir) {
			/* Descend only where keys below could match the prefix. */
			size_t klen = strlen(key);
			if (strncmp(key, prefix, klen < plen ? klen : plen) == 0 && !dir_before(key, after))
				rc = list_dir(store, key, prefix, after, cb, payload);
		} else if (key_wanted(key, prefix, after)) {
			gw_store_entry e = {key, entries[i].size};
			rc = cb(&e, payload);
		}
		free(key);
	}
	for (i = 0; i < count; i++)
		free(entries[i].name);
	free(entries);
	return rc;
}

/* The deepest directory a prefix names ("" for the root), where a walk of it starts (malloc'd). */
static char *prefix_dir(const char *prefix)
{
	char *dir = strdup(prefix), *slash;
	if (!dir) {
		gw_error_set(GW_ERROR, "out of memory");
		return NULL;
	}
	if ((slash = strrchr(dir, '/')))
		*slash = '\0';
	else
		dir[0] = '\0';
	return dir;
}

static int file_list(gw_store *store, const char *prefix, const char *after, gw_store_list_cb cb, void *payload)
{
	char *dir = prefix_dir(prefix);
	int rc;
	if (!dir)
		return GW_ERROR;
	rc = list_dir(store, dir, prefix, after, cb, payload);
	free(dir);
	return rc;
}

/* What a name that is neither a regular file nor a directory is, for messages. */
static const char *special_type(mode_t mode)
{
	if (S_ISLNK(mode))
		return "symlink";
	if (S_ISFIFO(mode))
		return "FIFO";
	if (S_ISSOCK(mode))
		return "socket";
	if (S_ISCHR(mode) || S_ISBLK(mode))
		return "device";
	return "special file";
}

static int strays_dir(gw_store *store, const char *dir_key, const char *prefix, gw_store_stray_cb cb, void *payload)
{
	size_t plen = strlen(prefix);
	struct dirent *de;
	DIR *d;
	int rc = 0;

	if ((rc = open_store_dir(store, dir_key, &d)) < 0 || !d)
		return rc;
	while (rc == 0 && (de = readdir(d))) {
		gw_store_stray s;
		gw_owner_verdict v;
		struct stat sb;
		char *key = NULL;
		size_t klen;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (de->d_type == DT_REG && de->d_name[0] != '.')
			continue; /* a key: no stat */
		if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    (de->d_name[0] == '.' && (!S_ISREG(sb.st_mode) || strncmp(de->d_name, TMP_LEAD, strlen(TMP_LEAD)))))
			continue; /* gone, or a hidden name that is no writer's */
		if (S_ISREG(sb.st_mode) && de->d_name[0] != '.')
			continue;
		memset(&s, 0, sizeof(s));
		if (S_ISREG(sb.st_mode)) {
			gw_owner_judge(de->d_name, TMP_LEAD, sb.st_mtime, &v);
			s.kind = GW_STORE_STRAY_LEFTOVER;
			s.type = "temporary file";
			s.owner = v.owner;
			s.size = (uint64_t)sb.st_size;
			s.mtime = sb.st_mtime;
			s.live = v.state == GW_OWNER_ALIVE;
			s.removable = v.removable;
			rc = asprintf(&key, "%s%s%s", dir_key, dir_key[0] ? "/" : "", v.what);
		} else {
			s.kind = S_ISDIR(sb.st_mode) ? GW_STORE_STRAY_DIRECTORY : GW_STORE_STRAY_SPECIAL;
			s.type = S_ISDIR(sb.st_mode) ? "directory" : special_type(sb.st_mode);
			rc = asprintf(&key, "%s%s%s", dir_key, dir_key[0] ? "/" : "", de->d_name);
		}
		if (rc < 0) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			break;
		}
		rc = 0;
		klen = strlen(key);
		if (asprintf((char **)&s.name, "%s%s%s", dir_key, dir_key[0] ? "/" : "", de->d_name) < 0) {
			free(key);
			rc = gw_error_set(GW_ERROR, "out of memory");
			break;
		}
		s.key = key;
		if (strncmp(key, prefix, plen) == 0)
			rc = cb(&s, payload);
		/* Descend only where names below could match the prefix. */
		if (rc == 0 && S_ISDIR(sb.st_mode) && strncmp(key, prefix, klen < plen ? klen : plen) == 0)
			rc = strays_dir(store, key, prefix, cb, payload);
		free((char *)s.name);
		free(key);
	}
	closedir(d);
	return rc;
}

static int file_strays(gw_store *store, const char *prefix, gw_store_stray_cb cb, void *payload)
{
	char *dir = prefix_dir(prefix);
	int rc;
	if (!dir)
		return GW_ERROR;
	rc = strays_dir(store, dir, prefix, cb, payload);
	free(dir);
	return rc;
}

static int file_remove(gw_store *store, const char *key)
{
	char *path = gw_fs_join(impl(store)->root, key), *slash;
	int rc = 0;
	if (!path)
		return gw_error_set(GW_ERROR, "out of memory");
	if (unlink(path) < 0) {
		rc = errno == ENOENT ? gw_error_set(GW_ENOTFOUND, GW_STORE_MSG_NOTFOUND, key, store->url)
				     : gw_error_set_errno(GW_EIO, "store %s: cannot remove key %s", store->url, key);
	} else {
		slash = strrchr(path, '/');
		*slash = '\0';
		rc = gw_fs_fsync_dir(path);
	}
	free(path);
	return rc;
}

const gw_store_driver gw_store_driver_file = {
	.scheme = "file",
	.features = GW_STORE_FEATURE_MODE,
	.open = file_open,
	.free = file_free,
	.write_open = file_write_open,
	.write = file_write,
	.commit = file_commit,
	.writer_free = file_writer_free,
	.read_open = file_read_open,
	.read = file_read,
	.reader_free = file_reader_free,
	.stat = file_stat,
	.list = file_list,
	.strays = file_strays,
	.remove = file_remove,
};
