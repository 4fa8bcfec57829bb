/*
 * Refs as gitwal records them: gw_ref, one ref with its resolved value, and
 * the rules for their names. Names are checked as Git checks them (through
 * libgit2), for everything gitwal reads from a repository or from storage. Names are untrusted: a stored name
 * becomes a path when a repository is restored, so it must be "refs/..." and
 * valid for Git; a symbolic ref's target is only ever written as content
 * ("ref: <target>"), and Git lets it be any valid name, one-level ones such as
 * ORIG_HEAD or FETCH_HEAD included.
 */
#ifndef GITWAL_REFNAME_H
#define GITWAL_REFNAME_H

#include <stddef.h>

#include "gitwal/io.h"

/* A ref or HEAD: read from a repository (refs_read.h) or recorded in the archive (refstate.h). */
typedef struct gw_ref {
	char *name;
	unsigned char oid[GW_HASH_MAX]; /* resolved value (for a symref, its target's) */
	char *symbolic;                 /* target name when symbolic, else NULL */
	int dangling;                   /* a symref whose target does not exist */
} gw_ref;

/* An array of refs owning their strings, and one such ref. */
void gw_refs_free(gw_ref *refs, size_t count);
void gw_ref_dispose(gw_ref *ref);

/* A name gitwal archives and restores as a ref: "refs/..." and valid for Git. */
int gw_ref_name_valid(const char *name);
/* A name a symbolic ref may point at: valid for Git, one-level names included. */
int gw_ref_target_valid(const char *name);

/*
 * The one rule for a ref gitwal records, applied both where refs are read
 * from a repository (refs_read.c, for full backups and segments alike) and
 * where they are read back from storage (the manifest and segment parsers),
 * so that whatever is written can be read: name is "HEAD" or a
 * gw_ref_name_valid name; target, a symbolic ref's (NULL: none), is a
 * gw_ref_target_valid name, and for HEAD one under "refs/" (Git does not take
 * a directory whose HEAD points elsewhere for a repository). NULL when the
 * ref passes, else what is wrong with it, as a phrase to follow its name in
 * the caller's message ("is not a valid ref name").
 */
const char *gw_ref_invalid(const char *name, const char *target);

#endif
