/*
 * Filesystem helpers (see fs.h). Durability matters here: a directory entry
 * is only durable once its parent directory has been fsync'd.
 */
#include "gitwal/fs.h"
#include "gitwal/error.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *gw_fs_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", a, b);
	else
		gw_error_set(GW_ERROR, "out of memory");
	return p;
}

char *gw_fs_absolute(const char *path)
{
	char cwd[PATH_MAX];
	if (path[0] == '/' || !getcwd(cwd, sizeof(cwd)))
		return strdup(path);
	return gw_fs_join(cwd, path);
}

int gw_fs_fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return gw_error_set_errno(GW_EIO, "cannot open directory %s", dir);
	if (fsync(fd) < 0) {
		close(fd);
		return gw_error_set_errno(GW_EIO, "cannot fsync directory %s", dir);
	}
	close(fd);
	return 0;
}

static int mkdir_p(char *path, unsigned mode)
{
	char *slash = strrchr(path, '/');
	struct stat st;
	int rc = 0;

	if (stat(path, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : gw_error_set(GW_EIO, "%s exists and is not a directory", path);
	if (slash && slash != path) {
		*slash = '\0';
		rc = mkdir_p(path, mode);
		*slash = '/';
		if (rc < 0)
			return rc;
	}
	if (mkdir(path, mode) < 0) {
		if (errno == EEXIST)
			return 0;
		return gw_error_set_errno(GW_EIO, "cannot create directory %s", path);
	}
	if (slash && slash != path) {
		*slash = '\0';
		rc = gw_fs_fsync_dir(path);
		*slash = '/';
	}
	return rc;
}

int gw_fs_mkdir_p(const char *path, unsigned mode)
{
	char *copy = strdup(path);
	size_t n;
	int rc;
	if (!copy)
		return gw_error_set(GW_ERROR, "out of memory");
	n = strlen(copy);
	while (n > 1 && copy[n - 1] == '/')
		copy[--n] = '\0';
	rc = mkdir_p(copy, mode);
	free(copy);
	return rc;
}

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
