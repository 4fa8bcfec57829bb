/*
 * A live source repository, and a consistent snapshot of it: its refs and
 * HEAD, and open handles on the packs and loose objects that hold everything
 * those refs reach, taken while pushes and gc may be running.
 */
#ifndef GITWAL_SOURCE_H
#define GITWAL_SOURCE_H

#include "backup/refs_read.h"
#include "pack/pack.h"

typedef struct gw_source {
	char *rel;
	char *path;
	size_t hash_len;
	const char *object_format;
	char *pool;             /* opened with gw_source_open_pooled: its pool's path under the root, or NULL */
	gw_refs_reader *reader; /* its refs (packed-refs parsed once while unchanged) */
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
 * The same, but a member of an object pool whose alternates DESIGN.md 19
 * accepts is opened, with src->pool set, instead of refused; the snapshot
 * then lets a tip be in the pool.
 */
int gw_source_open_pooled(gw_source **out, const char *root, const char *rel);
/* 1 when the snapshot's own packs or loose objects hold oid, 0 when not, <0 on error. */
int gw_source_has_object(gw_source *src, const unsigned char *oid);
/* One more pack (and its index) for the splice, in the snapshot until it is released. */
int gw_source_add_pack(gw_source *src, const char *pack_path, const char *idx_path);
/*
 * Take the snapshot (refs read before and after the objects are opened must
 * agree, and every tip must be present), retrying while the repository
 * changes underneath. Replaces any earlier snapshot.
 */
int gw_source_snapshot(gw_source *src);
void gw_source_release_snapshot(gw_source *src);
/* 0 when the refs and HEAD still equal the snapshot's; GW_ECHANGED when they moved. */
int gw_source_refs_unchanged(gw_source *src);
/* Read every ref (sorted, HEAD excluded) and HEAD, without a snapshot of objects (see refs_read.h). */
int gw_source_read_refs(const gw_source *src, gw_ref **refs, size_t *count, gw_ref *head);
void gw_source_free(gw_source *src);

#endif
