/*
 * Repositories as gitwal names them: by their path relative to the root
 * ("group/project.git"), which also names them in the store. Paths from the
 * command line and from storage are untrusted and go through
 * gw_repo_path_check() before any use.
 */
#ifndef GITWAL_REPO_H
#define GITWAL_REPO_H

#include <stddef.h>

/* 0 if rel is a safe relative repository path; GW_EINVALID with a message otherwise. */
int gw_repo_path_check(const char *rel);

/*
 * The store key component for a repository: every byte outside
 * [A-Za-z0-9._-] as %XX (so '/' is %2F), making one key component that no
 * other repository's can prefix. Returns a malloc'd string.
 */
char *gw_repo_path_encode(const char *rel);
/* The inverse; NULL (with an error set) on malformed input. */
char *gw_repo_path_decode(const char *component);

/* Is dir (an absolute or root-relative path) a bare Git repository? */
int gw_repo_is_bare(const char *path);

/*
 * 0 when no component of rel under root is a symlink: rel is the one name
 * gitwal gives that directory (discovery does not follow symlinks).
 * GW_EINVALID naming the symlink (and the real path, when it stays inside
 * the root), GW_ENOTFOUND when a component is missing.
 */
int gw_repo_path_real(const char *root, const char *rel);
/* Is rel a bare repository under root, reached without a symlink (as discovery finds it)? */
int gw_repo_present(const char *root, const char *rel);

/*
 * Every bare repository below root (not descending into repositories, nor into
 * directories whose names start with '.', nor following symlinks), as sorted
 * relative paths.
 */
int gw_repo_discover(const char *root, char ***out, size_t *count);
void gw_repo_list_free(char **list, size_t count);

#endif
