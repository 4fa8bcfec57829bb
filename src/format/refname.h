/*
 * Ref names as Git checks them (through libgit2), for everything gitwal reads
 * from a repository or from storage. Names are untrusted: a stored name
 * becomes a path when a repository is restored, so it must be "refs/..." and
 * valid for Git; a symbolic ref's target is only ever written as content
 * ("ref: <target>"), and Git lets it be any valid name, one-level ones such as
 * ORIG_HEAD or FETCH_HEAD included.
 */
#ifndef GITWAL_REFNAME_H
#define GITWAL_REFNAME_H

/* A name gitwal archives and restores as a ref: "refs/..." and valid for Git. */
int gw_ref_name_valid(const char *name);
/* A name a symbolic ref may point at: valid for Git, one-level names included. */
int gw_ref_target_valid(const char *name);

#endif
