/*
 * A repository's files beside refs and objects (files.h, DESIGN.md 4.5):
 * read from a live repository with lstat and O_NOFOLLOW (a link is stored
 * as its target's text, the target itself never opened), carried as the
 * manifest's "files" array, parsed as untrusted input, and written into a
 * restore's scratch directory one path component at a time with
 * O_NOFOLLOW, so no path is ever resolved through a link and nothing is
 * written outside the directory.
 */
#include "gitwal/files.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HOOKS "custom_hooks"

/* The single files kept, besides custom_hooks/ and everything below it. */
static const char *const single_files[] = {"config", "description", "info/attributes"};

const char *gw_files_path_check(const char *path)
{
	const char *c = path, *slash;
	size_t i, len = strlen(path), depth = 0;
	int known = 0;

	if (!len)
		return "is empty";
	if (len > GW_FILES_MAX_PATH)
		return "is too long";
	if (path[0] == '/')
		return "is absolute";
	for (;; c = slash + 1) {
		size_t n;
		slash = strchr(c, '/');
		n = slash ? (size_t)(slash - c) : strlen(c);
		if (n == 0)
			return "has an empty component";
		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return "has a '.' or '..' component";
		if (++depth > GW_FILES_MAX_DEPTH)
			return "is too deep";
		if (!slash)
			break;
	}
	for (i = 0; i < sizeof(single_files) / sizeof(single_files[0]); i++)
		known |= !strcmp(path, single_files[i]);
	if (!known && strcmp(path, HOOKS) != 0 && strncmp(path, HOOKS "/", sizeof(HOOKS)) != 0)
		return "is not config, description, info/attributes or under custom_hooks/";
	return NULL;
}

static void file_dispose(gw_file *e)
{
	free(e->path);
	free(e->data);
}

void gw_files_dispose(gw_files *f)
{
	size_t i;
	for (i = 0; i < f->n; i++)
		file_dispose(&f->items[i]);
	free(f->items);
	memset(f, 0, sizeof(*f));
}

static int path_cmp(const void *a, const void *b)
{
	return strcmp(((const gw_file *)a)->path, ((const gw_file *)b)->path);
}

/* ---- reading a live repository ---- */

typedef struct {
	gw_files *f;
	const char *rel;
	size_t total;
} collector;

/* read_regular: the file changed between lstat and the read (read it again). */
#define READ_AGAIN 1
/* Attempts at a file that keeps changing while read before it is skipped (the watcher sees the change anyway). */
#define READ_ATTEMPTS 3

/*
 * Entry e becomes a skipped path, for why (what it held is dropped): the
 * reason is bounded and printable, as the parser demands of it. GW_ERROR
 * only out of memory.
 */
static int skip(gw_file *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int skip(gw_file *e, const char *fmt, ...)
{
	char why[GW_FILES_MAX_REASON + 1];
	va_list ap;
	size_t i;
	va_start(ap, fmt);
	if (vsnprintf(why, sizeof(why), fmt, ap) < 1)
		strcpy(why, "unreadable");
	va_end(ap);
	for (i = 0; why[i]; i++)
		if ((unsigned char)why[i] < 0x20 || (unsigned char)why[i] >= 0x7f)
			why[i] = '?';
	free(e->data);
	e->type = GW_FILE_SKIPPED;
	e->mode = 0;
	e->size = i;
	if (!(e->data = (unsigned char *)strdup(why))) {
		e->size = 0;
		return gw_error_set(GW_ERROR, "out of memory");
	}
	return 0;
}

/* "unreadable: <strerror(err)>", the reason a read that failed leaves. */
static int skip_errno(gw_file *e, int err)
{
	return skip(e, "unreadable: %s", strerror(err));
}

/*
 * A regular file's bytes, read through a descriptor opened without
 * following links; beyond the bounds or unreadable, a skipped path.
 * READ_AGAIN: it is no longer the regular file lstat saw, or its size moved.
 */
static int read_regular(collector *c, const char *full, gw_file *e)
{
	struct stat st;
	size_t got = 0;
	ssize_t r;
	int fd = open(full, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK), err;
	if (fd < 0) /* a link, gone, or a socket now (ENXIO): lstat it again */
		return errno == ELOOP || errno == ENOENT || errno == ENXIO ? READ_AGAIN : skip_errno(e, errno);
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return READ_AGAIN;
	}
	if ((uint64_t)st.st_size > GW_FILES_MAX_FILE) {
		close(fd);
		return skip(e, "%lld bytes, above the %u gitwal keeps", (long long)st.st_size, GW_FILES_MAX_FILE);
	}
	if (c->total + (size_t)st.st_size > GW_FILES_MAX_TOTAL) {
		close(fd);
		return skip(e, "beyond the %u MiB all files may hold", GW_FILES_MAX_TOTAL >> 20);
	}
	/* One byte more than fstat said: a file growing meanwhile is seen, not cut. */
	if (!(e->data = malloc((size_t)st.st_size + 1))) {
		close(fd);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	while (got <= (size_t)st.st_size && (r = read(fd, e->data + got, (size_t)st.st_size + 1 - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			err = errno;
			close(fd);
			return skip_errno(e, err);
		}
		got += (size_t)r;
	}
	close(fd);
	if (got != (size_t)st.st_size) {
		free(e->data);
		e->data = NULL;
		return READ_AGAIN;
	}
	e->size = got;
	e->mode = st.st_mode & 0777;
	c->total += got;
	return 0;
}

/* The number of components of a checked path. */
static size_t components(const char *path)
{
	size_t n = 1;
	for (; *path; path++)
		n += *path == '/';
	return n;
}

static int collect_dir(collector *c, const char *full, const char *path, size_t i);

/* Everything entry i held below it (entries i+1.. in walk order) dropped: it is skipped whole. */
static void drop_below(gw_files *f, size_t i)
{
	while (f->n > i + 1)
		file_dispose(&f->items[--f->n]);
}

/*
 * One path: lstat'ed (none there, nothing listed), then recorded as what it
 * is, or as a skipped path saying why not. GW_ERROR only out of memory.
 */
static int collect_one(collector *c, const char *full, const char *path)
{
	gw_files *f = c->f;
	struct stat st;
	size_t i = f->n; /* its index: the array moves as a directory's entries are added */
	int rc = 0, attempt;

	if (GW_ARRAY_RESERVE(f->items, f->cap, f->n + 1) < 0)
		return GW_ERROR;
	memset(&f->items[i], 0, sizeof(f->items[i]));
	if (!(f->items[i].path = strdup(path)))
		return gw_error_set(GW_ERROR, "out of memory");
	f->n++;
	for (attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
		gw_file *e = &f->items[i];
		if (lstat(full, &st) < 0) {
			if (errno != ENOENT && errno != ENOTDIR)
				return skip_errno(e, errno);
			file_dispose(e); /* none there, or info/ not a directory */
			f->n--;
			return 0;
		}
		if (S_ISLNK(st.st_mode)) {
			/* On the heap: this runs once per level of a walk that may be 32 deep. */
			ssize_t n;
			if (!(e->data = malloc(PATH_MAX)))
				return gw_error_set(GW_ERROR, "out of memory");
			if ((n = readlink(full, (char *)e->data, PATH_MAX)) < 0) {
				if (errno == EINVAL || errno == ENOENT) { /* no longer a link */
					free(e->data);
					e->data = NULL;
					continue;
				}
				return skip_errno(e, errno);
			}
			if (n == 0 || n >= PATH_MAX)
				return skip(e, "a link whose target is empty or too long");
			if (c->total + (size_t)n > GW_FILES_MAX_TOTAL)
				return skip(e, "beyond the %u MiB all files may hold", GW_FILES_MAX_TOTAL >> 20);
			e->data[n] = '\0';
			e->size = (size_t)n;
			e->type = GW_FILE_LINK;
			c->total += e->size;
			return 0;
		}
		if (S_ISREG(st.st_mode)) {
			e->type = GW_FILE_REGULAR;
			if ((rc = read_regular(c, full, e)) != READ_AGAIN)
				return rc;
			continue;
		}
		if (S_ISDIR(st.st_mode) && !strncmp(path, HOOKS, sizeof(HOOKS) - 1)) {
			e->type = GW_FILE_DIR;
			e->mode = st.st_mode & 0777;
			return collect_dir(c, full, path, i);
		}
		return skip(e, "%s", S_ISFIFO(st.st_mode)                        ? "a fifo"
				     : S_ISSOCK(st.st_mode)                       ? "a socket"
				     : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
				     : S_ISDIR(st.st_mode)                        ? "a directory"
										  : "not a file, link or directory");
	}
	return skip(&f->items[i], "changed while read");
}

/*
 * The entries below entry i, a directory of custom_hooks/. The directory is
 * skipped whole (what was read below it dropped) when it cannot be listed,
 * holds what no entry may name (a path too long or too deep), or reaches
 * beyond the number of entries (dropping what is below it frees places for
 * its siblings). GW_ERROR only out of memory.
 */
static int collect_dir(collector *c, const char *full, const char *path, size_t i)
{
	gw_files *f = c->f;
	DIR *d;
	struct dirent *de;
	int rc = 0, err;

	if (!(d = opendir(full)))
		return skip_errno(&f->items[i], errno);
	while ((errno = 0, de = readdir(d))) {
		char *sub, *sub_full; /* on the heap: one pair per level */
		const char *why;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!(sub = gw_fs_join(path, de->d_name)) || !(sub_full = gw_fs_join(full, de->d_name))) {
			free(sub);
			closedir(d);
			return gw_error_set(GW_ERROR, "out of memory");
		}
		why = gw_files_path_check(sub);
		if (why || f->n >= GW_FILES_MAX_ENTRIES) {
			drop_below(f, i);
			rc = !why			       ? skip(&f->items[i], "beyond %u entries", GW_FILES_MAX_ENTRIES)
			     : strlen(sub) > GW_FILES_MAX_PATH ? skip(&f->items[i], "holds a path longer than %u bytes",
									GW_FILES_MAX_PATH)
			     : components(sub) > GW_FILES_MAX_DEPTH
				     ? skip(&f->items[i], "holds paths deeper than %u components", GW_FILES_MAX_DEPTH)
				     : skip(&f->items[i], "holds a path that %s", why);
		} else {
			rc = collect_one(c, sub_full, sub);
		}
		free(sub);
		free(sub_full);
		if (rc < 0 || f->items[i].type == GW_FILE_SKIPPED) {
			closedir(d);
			return rc;
		}
	}
	err = errno;
	closedir(d);
	if (err) {
		drop_below(f, i);
		return skip_errno(&f->items[i], err);
	}
	return 0;
}

int gw_files_collect(gw_files *out, const char *repo, const char *rel)
{
	collector c = {out, rel, 0};
	char full[8192];
	size_t i;
	int rc = 0, dirfd, walk_errno;

	memset(out, 0, sizeof(*out));
	/* The directory itself unreadable: the walk as a whole fails, though each path is tried (and skipped). */
	dirfd = open(repo, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	walk_errno = dirfd < 0 ? errno : 0;
	if (dirfd >= 0)
		close(dirfd);
	for (i = 0; rc == 0 && i < sizeof(single_files) / sizeof(single_files[0]); i++) {
		snprintf(full, sizeof(full), "%s/%s", repo, single_files[i]);
		rc = collect_one(&c, full, single_files[i]);
	}
	snprintf(full, sizeof(full), "%s/%s", repo, HOOKS);
	if (rc == 0)
		rc = collect_one(&c, full, HOOKS);
	if (rc < 0) {
		gw_files_dispose(out);
		return rc;
	}
	if (out->n)
		qsort(out->items, out->n, sizeof(*out->items), path_cmp);
	if (walk_errno) {
		errno = walk_errno;
		return gw_error_set_errno(GW_EIO, "repository %s: cannot read its directory %s", rel, repo);
	}
	return 0;
}

size_t gw_files_nskipped(const gw_files *f)
{
	size_t i, n = 0;
	for (i = 0; i < f->n; i++)
		n += f->items[i].type == GW_FILE_SKIPPED;
	return n;
}

int gw_files_copy_skipped(const gw_files *f, gw_files *out)
{
	size_t i, n = gw_files_nskipped(f);
	memset(out, 0, sizeof(*out));
	if (n && GW_ARRAY_RESERVE(out->items, out->cap, n) < 0)
		return GW_ERROR;
	for (i = 0; i < f->n; i++) {
		const gw_file *e = &f->items[i];
		gw_file *o = &out->items[out->n];
		if (e->type != GW_FILE_SKIPPED)
			continue;
		memset(o, 0, sizeof(*o));
		o->type = GW_FILE_SKIPPED;
		o->size = e->size;
		if (!(o->path = strdup(e->path)) || !(o->data = (unsigned char *)strdup((const char *)e->data))) {
			free(o->path);
			gw_files_dispose(out);
			return gw_error_set(GW_ERROR, "out of memory");
		}
		out->n++;
	}
	return 0;
}

/* ---- the manifest's "files" ---- */

static const char *type_name(gw_file_type t)
{
	return t == GW_FILE_DIR ? "dir" : t == GW_FILE_LINK ? "link" : t == GW_FILE_SKIPPED ? "skipped" : "file";
}

int gw_files_to_json(const gw_files *f, json_t **out)
{
	json_t *arr = json_array();
	size_t i;

	for (i = 0; arr && i < f->n; i++) {
		const gw_file *e = &f->items[i];
		json_t *o = json_pack("{s:s, s:s}", "path", e->path, "type", type_name(e->type));
		if (o && e->type == GW_FILE_SKIPPED) {
			json_object_set_new(o, "reason", json_stringn((const char *)e->data, e->size));
		} else if (o && e->type != GW_FILE_LINK)
			json_object_set_new(o, "mode", json_integer(e->mode));
		if (o && e->type != GW_FILE_DIR && e->type != GW_FILE_SKIPPED) {
			unsigned char digest[32];
			char hex[65], *b64 = malloc(4 * ((e->size + 2) / 3) + 1);
			if (!b64) {
				json_decref(o);
				break;
			}
			EVP_EncodeBlock((unsigned char *)b64, e->data, (int)e->size);
			gw_hash_buffer(GW_HASH_SHA256, e->data, e->size, digest);
			gw_hex_encode(hex, digest, 32);
			json_object_set_new(o, "size", json_integer((json_int_t)e->size));
			json_object_set_new(o, "sha256", json_string(hex));
			json_object_set_new(o, "data", json_string(b64));
			free(b64);
		}
		if (!o || json_array_append_new(arr, o) < 0)
			break;
	}
	if (!arr || i < f->n) {
		json_decref(arr);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	*out = arr;
	return 0;
}

int gw_files_digest(const gw_files *f, char hex[65])
{
	unsigned char digest[32];
	json_t *arr;
	char *text;
	int rc;
	if ((rc = gw_files_to_json(f, &arr)) < 0)
		return rc;
	text = json_dumps(arr, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(arr);
	if (!text)
		return gw_error_set(GW_ERROR, "out of memory");
	gw_hash_buffer(GW_HASH_SHA256, text, strlen(text), digest);
	gw_hex_encode(hex, digest, 32);
	free(text);
	return 0;
}

typedef struct {
	const char *what;
	size_t index;
} parse_ctx;

static int bad_entry(const parse_ctx *p, const char *path, const char *why)
{
	if (path)
		return gw_error_set(GW_ECORRUPT, "%s: file '%s' %s", p->what, path, why);
	return gw_error_set(GW_ECORRUPT, "%s: files entry %zu %s", p->what, p->index, why);
}

/* "data": base64 of exactly size bytes whose SHA-256 is sha256. */
static int parse_data(const parse_ctx *p, json_t *o, const char *path, gw_file *e, size_t *total)
{
	json_t *d = json_object_get(o, "data"), *sz = json_object_get(o, "size"), *sh = json_object_get(o, "sha256");
	const char *b64, *sha;
	unsigned char digest[32];
	char hex[65];
	size_t len, pad = 0;
	int n;

	if (!json_is_string(d) || !json_is_integer(sz) || !json_is_string(sh))
		return bad_entry(p, path, "lacks its data, size or sha256");
	if (json_integer_value(sz) < 0 || json_integer_value(sz) > GW_FILES_MAX_FILE ||
	    *total + (size_t)json_integer_value(sz) > GW_FILES_MAX_TOTAL)
		return bad_entry(p, path, "is larger than gitwal keeps");
	b64 = json_string_value(d);
	len = json_string_length(d);
	if (len != 4 * (((size_t)json_integer_value(sz) + 2) / 3) || strlen(b64) != len)
		return bad_entry(p, path, "has data whose length does not match its size");
	if (len && b64[len - 1] == '=')
		pad = (len > 1 && b64[len - 2] == '=') ? 2 : 1;
	if (!(e->data = malloc(len / 4 * 3 + 1)))
		return gw_error_set(GW_ERROR, "out of memory");
	n = len ? EVP_DecodeBlock(e->data, (const unsigned char *)b64, (int)len) : 0;
	if (n < 0 || (size_t)n - pad != (size_t)json_integer_value(sz))
		return bad_entry(p, path, "has data that is not base64 of its size");
	e->size = (size_t)n - pad;
	sha = json_string_value(sh);
	gw_hash_buffer(GW_HASH_SHA256, e->data, e->size, digest);
	gw_hex_encode(hex, digest, 32);
	if (strcmp(sha, hex) != 0)
		return bad_entry(p, path, "does not match its sha256");
	*total += e->size;
	return 0;
}

/*
 * A skipped path's "reason": printable text of 1 to GW_FILES_MAX_REASON
 * bytes (restore prints it), and nothing a kept entry has: restore creates
 * nothing for it.
 */
static int parse_reason(const parse_ctx *p, json_t *o, const char *path, gw_file *e)
{
	static const char *const kept[] = {"mode", "size", "sha256", "data"};
	json_t *r = json_object_get(o, "reason");
	const char *text;
	size_t i, len;
	for (i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
		if (json_object_get(o, kept[i]))
			return bad_entry(p, path, "is skipped but has a mode, size, sha256 or data");
	if (!json_is_string(r))
		return bad_entry(p, path, "is skipped without a reason");
	text = json_string_value(r);
	len = json_string_length(r);
	if (len == 0 || len > GW_FILES_MAX_REASON)
		return bad_entry(p, path, "is skipped with a reason empty or too long");
	for (i = 0; i < len; i++)
		if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] >= 0x7f)
			return bad_entry(p, path, "is skipped with a reason that is not printable text");
	if (!(e->data = (unsigned char *)strdup(text)))
		return gw_error_set(GW_ERROR, "out of memory");
	e->size = len;
	return 0;
}

/* An entry below another that is not a directory would be written through a link (or fail). */
static int check_parents(const parse_ctx *p, const gw_files *f, const char *path)
{
	char prefix[GW_FILES_MAX_PATH + 1];
	const char *slash;
	for (slash = strchr(path, '/'); slash; slash = strchr(slash + 1, '/')) {
		gw_file key, *hit;
		memcpy(prefix, path, (size_t)(slash - path));
		prefix[slash - path] = '\0';
		key.path = prefix;
		hit = bsearch(&key, f->items, f->n, sizeof(*f->items), path_cmp);
		if (hit && hit->type != GW_FILE_DIR)
			return bad_entry(p, path, "lies below an entry that is not a directory");
	}
	return 0;
}

static int parse_entry(parse_ctx *p, json_t *o, gw_files *f, size_t *total)
{
	json_t *path_j = json_object_get(o, "path"), *type_j = json_object_get(o, "type"),
	       *mode_j = json_object_get(o, "mode");
	const char *path, *type, *why;
	gw_file *e = &f->items[f->n];
	int rc;

	memset(e, 0, sizeof(*e));
	if (!json_is_object(o) || !json_is_string(path_j) || !json_is_string(type_j))
		return bad_entry(p, NULL, "is not an object with a path and a type");
	path = json_string_value(path_j);
	if (strlen(path) != json_string_length(path_j))
		return bad_entry(p, NULL, "has a path with a NUL byte");
	if ((why = gw_files_path_check(path)))
		return bad_entry(p, path, why);
	if (f->n && strcmp(f->items[f->n - 1].path, path) >= 0)
		return bad_entry(p, path, "is not sorted or repeats");
	if ((rc = check_parents(p, f, path)) < 0)
		return rc;
	type = json_string_value(type_j);
	if (!strcmp(type, "file"))
		e->type = GW_FILE_REGULAR;
	else if (!strcmp(type, "dir"))
		e->type = GW_FILE_DIR;
	else if (!strcmp(type, "link"))
		e->type = GW_FILE_LINK;
	else if (!strcmp(type, "skipped"))
		e->type = GW_FILE_SKIPPED;
	else
		return bad_entry(p, path, "has an unknown type");
	if (e->type == GW_FILE_SKIPPED) {
		if ((rc = parse_reason(p, o, path, e)) < 0)
			return rc;
		goto named;
	}
	if (e->type == GW_FILE_DIR && strncmp(path, HOOKS, sizeof(HOOKS) - 1) != 0)
		return bad_entry(p, path, "is a directory outside custom_hooks");
	if (e->type != GW_FILE_LINK &&
	    (!json_is_integer(mode_j) || json_integer_value(mode_j) < 0 || json_integer_value(mode_j) > 0777))
		return bad_entry(p, path, "has no mode or one beyond 0777");
	if (e->type != GW_FILE_LINK)
		e->mode = (unsigned)json_integer_value(mode_j);
	if (e->type != GW_FILE_DIR && (rc = parse_data(p, o, path, e, total)) < 0) {
		free(e->data);
		return rc;
	}
	if (e->type == GW_FILE_LINK && (e->size == 0 || e->size >= 4096 || memchr(e->data, '\0', e->size))) {
		free(e->data);
		return bad_entry(p, path, "is a link with an unusable target");
	}
named:
	if (!(e->path = strdup(path))) {
		free(e->data);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	f->n++;
	return 0;
}

int gw_files_from_json(gw_files *out, json_t *arr, const char *what)
{
	parse_ctx p = {what, 0};
	size_t total = 0;
	json_t *o;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	if (!json_is_array(arr))
		return gw_error_set(GW_ECORRUPT, "%s: field 'files' is not an array", what);
	if (json_array_size(arr) > GW_FILES_MAX_ENTRIES)
		return gw_error_set(GW_ECORRUPT, "%s: more than %u files", what, GW_FILES_MAX_ENTRIES);
	if (json_array_size(arr) && GW_ARRAY_RESERVE(out->items, out->cap, json_array_size(arr)) < 0)
		return GW_ERROR;
	json_array_foreach(arr, p.index, o)
	{
		if ((rc = parse_entry(&p, o, out, &total)) < 0)
			break;
	}
	if (rc < 0)
		gw_files_dispose(out);
	return rc;
}

/* ---- restoring ---- */

/*
 * A descriptor of the directory holding path's last component (*name),
 * reached from dirfd one component at a time, each created when missing
 * and opened O_NOFOLLOW: a link on the way fails instead of being followed.
 */
static int open_parent(int dirfd, const char *path, const char *rel, const char **name)
{
	char comp[GW_FILES_MAX_PATH + 1];
	const char *c = path, *slash;
	int fd = dup(dirfd);

	if (fd < 0)
		return gw_error_set_errno(GW_EIO, "repository %s: cannot restore %s", rel, path);
	while ((slash = strchr(c, '/'))) {
		int next;
		memcpy(comp, c, (size_t)(slash - c));
		comp[slash - c] = '\0';
		if (mkdirat(fd, comp, 0755) < 0 && errno != EEXIST) {
			close(fd);
			return gw_error_set_errno(GW_EIO, "repository %s: cannot create the directory of %s", rel, path);
		}
		next = openat(fd, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		close(fd);
		if (next < 0)
			return gw_error_set_errno(GW_EIO, "repository %s: cannot open the directory of %s", rel, path);
		fd = next;
		c = slash + 1;
	}
	*name = c;
	return fd;
}

static int install_one(int dirfd, const gw_file *e, const char *rel)
{
	const char *name;
	int pfd = open_parent(dirfd, e->path, rel, &name), fd, rc = 0;

	if (pfd < 0)
		return pfd;
	/* The skeleton's config and description make way; a fresh scratch directory has nothing else. */
	if (e->type != GW_FILE_DIR && unlinkat(pfd, name, 0) < 0 && errno != ENOENT)
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot replace %s", rel, e->path);
	else if (e->type == GW_FILE_DIR) {
		/* Owner-writable until every entry is in; its mode is set afterwards (gw_files_install). */
		if (mkdirat(pfd, name, 0700) < 0 && errno != EEXIST)
			rc = gw_error_set_errno(GW_EIO, "repository %s: cannot create %s", rel, e->path);
	} else if (e->type == GW_FILE_LINK) {
		char target[4096];
		memcpy(target, e->data, e->size);
		target[e->size] = '\0';
		if (symlinkat(target, pfd, name) < 0)
			rc = gw_error_set_errno(GW_EIO, "repository %s: cannot create the link %s", rel, e->path);
	} else if ((fd = openat(pfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot create %s", rel, e->path);
	} else {
		if (gw_write_all(fd, e->data, e->size) < 0 || fchmod(fd, e->mode) < 0 || fsync(fd) < 0)
			rc = gw_error_set_errno(GW_EIO, "repository %s: cannot write %s", rel, e->path);
		close(fd);
	}
	if (rc == 0 && fsync(pfd) < 0)
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot write the directory of %s", rel, e->path);
	close(pfd);
	return rc;
}

/* A directory's own mode, set once everything below it is written (a read-only one would refuse them). */
static int set_dir_mode(int dirfd, const gw_file *e, const char *rel)
{
	const char *name;
	int pfd = open_parent(dirfd, e->path, rel, &name), fd, rc = 0;
	if (pfd < 0)
		return pfd;
	if ((fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0 || fchmod(fd, e->mode) < 0)
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot set the mode of %s", rel, e->path);
	if (fd >= 0)
		close(fd);
	close(pfd);
	return rc;
}

int gw_files_install(const gw_files *f, const char *dir, const char *rel)
{
	size_t i;
	int rc = 0, dirfd;

	if (!f->n)
		return 0;
	if ((dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		return gw_error_set_errno(GW_EIO, "repository %s: cannot open %s", rel, dir);
	for (i = 0; rc == 0 && i < f->n; i++) {
		const char *why = gw_files_path_check(f->items[i].path);
		if (f->items[i].type == GW_FILE_SKIPPED)
			continue; /* not archived: nothing is created for it (the caller names it) */
		rc = why ? gw_error_set(GW_ECORRUPT, "repository %s: refusing to restore '%s': the path %s", rel,
					f->items[i].path, why)
			 : install_one(dirfd, &f->items[i], rel);
	}
	for (i = f->n; rc == 0 && i-- > 0;)
		if (f->items[i].type == GW_FILE_DIR)
			rc = set_dir_mode(dirfd, &f->items[i], rel);
	close(dirfd);
	return rc;
}
