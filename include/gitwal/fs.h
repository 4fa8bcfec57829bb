/*
 * Small filesystem helpers shared by the file store, the restore engine and
 * the CLI: durable directory creation, directory fsync, path building.
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

#endif
