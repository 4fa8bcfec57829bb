/*
 * Repository paths: validation, encoding into store keys, and discovery of
 * the bare repositories under a root.
 *
 * Discovery never follows a symlink (DESIGN.md 10.4): a symlink to the root
 * or above it inside the root would make the walk loop (two of them: 2^32
 * paths to depth 32), and one to a repository or a directory of them would
 * archive the same repositories again under other names. A repository has
 * one name, its path without symlinks, and the archiver, `backup --all` and
 * the inotify watcher all see the same tree.
 */
#include "gitwal/array.h"
#include "gitwal/repo.h"
#include "gitwal/error.h"
#include "gitwal/io.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define REPO_PATH_MAX 4096

int gw_repo_path_check(const char *rel)
{
	const char *p, *comp;
	if (!rel || !*rel)
		return gw_error_set(GW_EINVALID, "empty repository path");
	if (strlen(rel) > REPO_PATH_MAX)
		return gw_error_set(GW_EINVALID, "repository path too long (%zu bytes)", strlen(rel));
	if (rel[0] == '/')
		return gw_error_set(GW_EINVALID, "repository path '%s' is absolute: give it relative to the root", rel);
	for (p = comp = rel;; p++) {
		if (*p == '/' || *p == '\0') {
			size_t n = (size_t)(p - comp);
			if (n == 0)
				return gw_error_set(GW_EINVALID, "repository path '%s' has an empty component", rel);
			if ((n == 1 && comp[0] == '.') || (n == 2 && comp[0] == '.' && comp[1] == '.'))
				return gw_error_set(GW_EINVALID, "repository path '%s' has a '.' or '..' component", rel);
			if (*p == '\0')
				return 0;
			comp = p + 1;
		} else if ((unsigned char)*p < 0x20 || *p == 0x7f || *p == '\\') {
			return gw_error_set(GW_EINVALID, "repository path '%s' has a control character or backslash",
					    rel);
		}
	}
}

char *gw_repo_path_encode(const char *rel)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(rel), i, j = 0;
	char *out = malloc(3 * n + 1);
	if (!out) {
		gw_error_set(GW_ERROR, "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)rel[i];
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
		    c == '-' || (c == '.' && i > 0)) {
			out[j++] = (char)c;
		} else {
			out[j++] = '%';
			out[j++] = hex[c >> 4];
			out[j++] = hex[c & 15];
		}
	}
	out[j] = '\0';
	return out;
}

char *gw_repo_path_decode(const char *component)
{
	size_t n = strlen(component), i, j = 0;
	char *out = malloc(n + 1);
	if (!out) {
		gw_error_set(GW_ERROR, "out of memory");
		return NULL;
	}
	for (i = 0; i < n; i++) {
		if (component[i] == '%') {
			unsigned char byte;
			/* Only the canonical form: uppercase hex, and only for bytes encode() escapes. */
			if (i + 2 >= n || gw_hex_decode(&byte, component + i + 1, 1) < 0 || byte == 0 ||
			    (component[i + 1] >= 'a' && component[i + 1] <= 'f') ||
			    (component[i + 2] >= 'a' && component[i + 2] <= 'f') ||
			    (byte >= 'a' && byte <= 'z') || (byte >= 'A' && byte <= 'Z') || (byte >= '0' && byte <= '9') ||
			    byte == '_' || byte == '-' || (byte == '.' && j > 0))
				goto bad;
			out[j++] = (char)byte;
			i += 2;
		} else {
			out[j++] = component[i];
		}
	}
	out[j] = '\0';
	if (gw_repo_path_check(out) < 0)
		goto bad;
	return out;
bad:
	gw_error_set(GW_ECORRUPT, "store key component '%s' is not an encoded repository path", component);
	free(out);
	return NULL;
}

static int exists_as(const char *dir, const char *name, int want_dir)
{
	char buf[REPO_PATH_MAX + 64];
	struct stat st;
	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	if (stat(buf, &st) < 0)
		return 0;
	return want_dir ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode);
}

int gw_repo_is_bare(const char *path)
{
	return exists_as(path, "HEAD", 0) && exists_as(path, "objects", 1) && exists_as(path, "refs", 1);
}

typedef struct {
	char **items;
	size_t count, cap;
} str_list;

static int list_add(str_list *l, const char *s)
{
	if (GW_ARRAY_RESERVE(l->items, l->cap, l->count + 1) < 0)
		return GW_ERROR;
	if (!(l->items[l->count] = strdup(s)))
		return gw_error_set(GW_ERROR, "out of memory");
	l->count++;
	return 0;
}

static int discover(const char *root, const char *rel, str_list *out, int depth)
{
	char path[REPO_PATH_MAX + 64];
	struct dirent *de;
	DIR *d;
	int rc = 0;

	snprintf(path, sizeof(path), "%s%s%s", root, rel[0] ? "/" : "", rel);
	if (rel[0] && gw_repo_is_bare(path))
		return list_add(out, rel);
	if (depth > 32)
		return 0;
	if (!(d = opendir(path)))
		return rel[0] ? 0 : gw_error_set_errno(GW_ENOTFOUND, "cannot read root %s", root);
	while ((de = readdir(d)) && rc == 0) {
		char child[REPO_PATH_MAX];
		struct stat st;
		if (de->d_name[0] == '.')
			continue;
		/* Symlinks are not followed: see the top of the file. */
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
			continue;
		if (snprintf(child, sizeof(child), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name) >= (int)sizeof(child))
			continue;
		rc = discover(root, child, out, depth + 1);
	}
	closedir(d);
	return rc;
}

int gw_repo_path_real(const char *root, const char *rel)
{
	char path[REPO_PATH_MAX + 64];
	size_t rl = strlen(root), i;
	struct stat st;
	int rc;
	if ((rc = gw_repo_path_check(rel)) < 0)
		return rc;
	if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path))
		return gw_error_set(GW_EINVALID, "repository path '%s' is too long", rel);
	/* Each component below the root, shortest first: path[0, i) is root/<components>. */
	for (i = rl + 1;; i++) {
		char c = path[i];
		if (c != '/' && c != '\0')
			continue;
		path[i] = '\0';
		if (lstat(path, &st) < 0) {
			path[i] = c;
			return gw_error_set_errno(GW_ENOTFOUND, "repository %s not found under root %s", rel, root);
		}
		if (S_ISLNK(st.st_mode)) {
			char real[PATH_MAX], real_root[PATH_MAX];
			const char *via = path + rl + 1;
			size_t n;
			path[i] = c;
			if (realpath(path, real) && realpath(root, real_root) && (n = strlen(real_root)) &&
			    !strncmp(real, real_root, n) && real[n] == '/')
				return gw_error_set(GW_EINVALID,
						    "repository %s is reached through a symlink (%.*s): gitwal "
						    "archives a repository once, under its real path: name it %s",
						    rel, (int)(i - rl - 1), via, real + n + 1);
			return gw_error_set(GW_EINVALID,
					    "repository %s is reached through a symlink (%.*s) that does not lead to a "
					    "repository inside the root: gitwal does not follow symlinks (archive the "
					    "tree it leads to as a root of its own)",
					    rel, (int)(i - rl - 1), via);
		}
		if (c == '\0')
			return 0;
		path[i] = c;
	}
}

int gw_repo_present(const char *root, const char *rel)
{
	char path[REPO_PATH_MAX + 64];
	int present;
	if (snprintf(path, sizeof(path), "%s/%s", root, rel) >= (int)sizeof(path))
		return 0;
	present = gw_repo_is_bare(path) && gw_repo_path_real(root, rel) == 0;
	gw_error_clear();
	return present;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int gw_repo_discover(const char *root, char ***out, size_t *count)
{
	str_list l = {0};
	struct stat st;
	int rc;
	*out = NULL;
	*count = 0;
	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
		return gw_error_set(GW_ENOTFOUND, "root %s does not exist or is not a directory", root);
	if ((rc = discover(root, "", &l, 0)) < 0) {
		gw_repo_list_free(l.items, l.count);
		return rc;
	}
	if (l.count)
		qsort(l.items, l.count, sizeof(char *), str_cmp);
	*out = l.items;
	*count = l.count;
	return 0;
}

void gw_repo_list_free(char **list, size_t count)
{
	size_t i;
	for (i = 0; i < count; i++)
		free(list[i]);
	free(list);
}
