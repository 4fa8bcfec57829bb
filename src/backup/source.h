/*
 * A live source repository, and a consistent snapshot of it: its refs and
 * HEAD, and open handles on the packs and loose objects that hold everything
 * those refs reach, taken while pushes and gc may be running.
 */
#ifndef GITWAL_SOURCE_H
#define GITWAL_SOURCE_H

#include "pack/pack.h"

typedef struct gw_ref {
	char *name;
	unsigned char oid[GW_HASH_MAX]; /* resolved value (for a symref, its target's) */
	char *symbolic;                 /* target name when symbolic, else NULL */
	int dangling;                   /* a symref whose target does not exist */
} gw_ref;

typedef struct gw_source {
	char *rel;
	char *path;
	size_t hash_len;
	const char *object_format;
	/* the snapshot */
	gw_ref *refs; /* sorted by name, HEAD excluded */
	size_t nrefs;
	gw_ref head;  /* name "HEAD" */
	gw_pack_source *packs;
	size_t npacks;
	gw_loose_source *loose;
	size_t nloose;
	unsigned attempts;
} gw_source;

/* Validate rel under root and open it (GW_ENOTFOUND, GW_EINVALID, GW_EUNSUPPORTED). */
int gw_source_open(gw_source **out, const char *root, const char *rel);
/*
 * Take the snapshot (refs read before and after the objects are opened must
 * agree, and every tip must be present), retrying while the repository
 * changes underneath. Replaces any earlier snapshot.
 */
int gw_source_snapshot(gw_source *src);
void gw_source_release_snapshot(gw_source *src);
/* Read every ref (sorted, HEAD excluded) and HEAD, without a snapshot of objects. */
int gw_source_read_refs(const gw_source *src, gw_ref **refs, size_t *count, gw_ref *head);
void gw_refs_free(gw_ref *refs, size_t count);
void gw_ref_dispose(gw_ref *ref);
void gw_source_free(gw_source *src);

#endif
