/*
 * Installing a restore: where a repository goes, the scratch directory it is
 * built in beside its target (named for its owner, so that a later restore
 * can tell a dead one's and clear it: DESIGN.md 2.2), and the move into
 * place once it is whole and durable -- a rename, or an exchange with the
 * old repository when replacing one (--force). Nothing half-made is ever
 * visible under the target's name.
 */
#include "restore/restore_internal.h"
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
#include <unistd.h>

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

/* A restore builds in PARENT/<lead><name>.<owner>.<n> (util/owner.h), so a later one can tell a dead restore's. */
#define SCRATCH_LEAD ".gitwal-restore."
static gw_owner_cleared scratch_cleared = GW_OWNER_CLEARED_INIT;

int gw_restore__prepare_target(const char *rel, const gw_restore_opts *opts, char *target, size_t tsize, char *tmp,
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

int gw_restore__install(const char *tmp, const char *target, int replace, const char *rel)
{
	char *slash, parent[4096], packdir[4200];
	int rc;
	/* Only the directories are left: the pack and its index were fsync'd as they were finished. */
	snprintf(packdir, sizeof(packdir), "%s/objects/pack", tmp);
	if ((rc = gw_fs_fsync_dir(packdir)) < 0 || (rc = gw_fs_fsync_dir(tmp)) < 0)
		return rc;
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
