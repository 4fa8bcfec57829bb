/*
 * Reading a repository's refs and HEAD: the one place gitwal does it (full
 * backups, the archiver, the audit). See refs_read.c and DESIGN.md 10.2,
 * "Reading refs".
 *
 * A reader belongs to one repository and keeps its parsed packed-refs between
 * reads (re-parsed only when the file changed), so reading the refs of a
 * repository with 100,000 packed refs costs a directory walk of refs/ and one
 * stat, not a parse and a sort. The result, a view, is packed-refs with the
 * loose refs laid over it: what libgit2's reference iterator lists, with
 * symbolic refs resolved the way git_reference_resolve does.
 */
#ifndef GITWAL_REFS_READ_H
#define GITWAL_REFS_READ_H

#include <stddef.h>

#include "format/refname.h" /* gw_ref, gw_ref_name_valid */

/* ---- packed-refs ---- */

typedef struct gw_packed_ref {
	const char *name; /* points into the parsed text */
	unsigned char oid[GW_HASH_MAX]; /* hash_len bytes used, the rest zero */
} gw_packed_ref;

typedef struct gw_packed_refs {
	gw_packed_ref *refs; /* sorted by name (strcmp), unique */
	size_t n;
	char *text;          /* the file's bytes, each name NUL-terminated in place */
	unsigned holders;    /* shared by a reader and its views: freed by the last release */
} gw_packed_refs;

/*
 * Parse the content of a packed-refs file: an optional first line
 * "# pack-refs with: <traits>", then "<hex> SP <name> LF" per ref, each
 * optionally followed by its peeled value "^<hex> LF" (skipped); an id is
 * 2 * hash_len hex digits (40 for sha1, 64 for sha256). Names
 * must be gw_ref_name_valid and unique; the lines need not be sorted. Any
 * other input is GW_ECORRUPT, naming `what` and the line.
 */
int gw_packed_refs_parse(gw_packed_refs **out, const char *data, size_t len, size_t hash_len, const char *what);
void gw_packed_refs_release(gw_packed_refs *p);

/* ---- the reader ---- */

/*
 * The refs of one repository at one moment: packed-refs with the loose refs
 * laid over it (a loose ref replaces the packed one of the same name), and
 * HEAD. Strings belong to the view: never free them one by one.
 */
typedef struct gw_refs_view {
	gw_packed_refs *packed;  /* NULL: no packed-refs file; shared with the reader's cache */
	gw_ref *loose;           /* sorted by name */
	size_t nloose;
	gw_ref head;             /* name "HEAD" */
	struct gw_refs_arena *arena; /* the loose refs' and HEAD's strings */
} gw_refs_view;

/* Where a walk of a view stands (start from {0, 0}). */
typedef struct gw_refs_pos {
	size_t packed, loose;
} gw_refs_pos;

/* The next ref in name order into *out (strings borrowed from v): 1, or 0 at the end. */
int gw_refs_view_next(const gw_refs_view *v, gw_refs_pos *pos, gw_ref *out);
/* The ref called name into *out (strings borrowed from v): 1, or 0 if there is none. */
int gw_refs_view_find(const gw_refs_view *v, const char *name, gw_ref *out);
/* Copies of every ref (sorted by name) and of HEAD, owning their strings. */
int gw_refs_view_copy(const gw_refs_view *v, gw_ref **refs, size_t *count, gw_ref *head);
void gw_refs_view_dispose(gw_refs_view *v);

typedef struct gw_refs_reader gw_refs_reader;

/* A reader of the repository at path (rel names it in messages), whose object ids are hash_len bytes. */
int gw_refs_reader_new(gw_refs_reader **out, const char *path, const char *rel, size_t hash_len);
/* Read the refs now. The view stays valid after the reader reads again or is freed. */
int gw_refs_read(gw_refs_reader *rd, gw_refs_view *out);
void gw_refs_reader_free(gw_refs_reader *rd);

#endif
