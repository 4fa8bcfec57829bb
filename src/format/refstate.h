/*
 * A repository's ref state: its refs and HEAD at one point of its archived
 * history. Built from a full backup's manifest and moved forward by applying
 * log segments' updates; shared by the archiver (the last archived state)
 * and the restore engine (the state at the requested time).
 */
#ifndef GITWAL_REFSTATE_H
#define GITWAL_REFSTATE_H

#include "format/refname.h"
#include "gitwal/manifest.h"
#include "gitwal/segment.h"

typedef struct gw_refstate {
	gw_ref *refs; /* sorted by name, HEAD excluded */
	size_t nrefs;
	size_t cap;   /* room known to be in refs (gitwal/array.h); 0 is always safe */
	gw_ref head;
} gw_refstate;

void gw_refstate_dispose(gw_refstate *s);
/* The refs and HEAD recorded in a full backup's manifest. */
int gw_refstate_from_manifest(gw_refstate *s, const gw_manifest *m);
/* The ref called name (HEAD excluded), or NULL. */
const gw_ref *gw_refstate_find(const gw_refstate *s, const char *name);
/* Apply a segment's updates in order (replaying the log); each costs a search and a move of the array. */
int gw_refstate_apply(gw_refstate *s, const gw_update *updates, size_t n);

#endif
