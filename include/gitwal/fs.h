/*
 * Small filesystem helpers shared by the file store, the restore engine, the
 * audit and the CLI: durable directory creation, directory fsync, path
 * building, removing a tree.
 */
#ifndef GITWAL_FS_H
#define GITWAL_FS_H

/* "a/b" (malloc'd; NULL when out of memory). */
char *gw_fs_join(const char *a, const char *b);
/* path made absolute against the current directory (malloc'd). */
char *gw_fs_absolute(const char *path);
/* fsync a directory, so the names in it are durable. */
int gw_fs_fsync_dir(const char *dir);
/* mkdir -p with the given mode; fsyncs the parent of every directory it creates. */
int gw_fs_mkdir_p(const char *path, unsigned mode);
/* rm -rf of path (never following symlinks), used for temporary directories; 0 when it is not there. */
int gw_remove_tree(const char *path);

#endif
