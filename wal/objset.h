/*
 * The set of objects already archived in a repository's current generation
 * (its latest full backup and the segments after it), so that a segment
 * carries only objects not stored since that full backup, and so that the
 * walk for a change costs in proportion to the change.
 *
 * Kept on local disk under the archiver's state directory, per repository:
 *   base.idx    the pack index of the full backup (sorted ids, searched in place)
 *   added.oids  ids added by segments since, appended raw (20 bytes each, 32 for sha256),
 *               loaded into a sorted array in memory
 * It is a cache: when it is missing or does not match the store, the
 * archiver starts a new generation with a full backup.
 */
#ifndef GITWAL_WAL_OBJSET_H
#define GITWAL_WAL_OBJSET_H

#include <stddef.h>
#include <stdint.h>

#include "gitwal/store.h"

typedef struct gw_objset gw_objset;

/*
 * Open dir (created if missing), for ids of hash_len bytes (20 or 32: the
 * generation's object format; "ids" below are that long). An empty or unreadable state opens as an
 * empty set with base LSN 0: the caller compares gw_objset_base_lsn() with
 * the generation it expects and resets when they differ.
 */
int gw_objset_open(gw_objset **out, const char *dir, size_t hash_len);
/* Start a new generation: the full backup at base_lsn, whose index is `idx_key` in the store. */
int gw_objset_reset(gw_objset *set, gw_store *store, const char *idx_key, uint64_t base_lsn);
/*
 * Whether oid is archived: 0 no; 1 yes, with everything it
 * reaches (added by a segment, whose walk archived its closure, or marked
 * closed); 2 yes, by the full backup only. A full backup holds the closure
 * of its refs, but its snapshot may also hold objects of a write in flight
 * (loose objects of a push not yet complete): for those, the closure is not
 * proven. <0 on error.
 */
int gw_objset_has(gw_objset *set, const unsigned char *oid);
/*
 * Mark ids (n ids) of the full backup as closed: everything they reach
 * is archived (the archived refs' values; objects a walk verified). Kept in
 * memory for the set's life: after a restart, closure is proven again.
 */
int gw_objset_mark_closed(gw_objset *set, const unsigned char *oids, size_t n);
/* Add the ids (n ids) of the segment at lsn, durably; the set then covers the log up to lsn. */
int gw_objset_add(gw_objset *set, const unsigned char *oids, size_t n, uint64_t lsn);
/* The LSN up to which the set holds every archived object (a crash may leave it behind the log). */
uint64_t gw_objset_covered(const gw_objset *set);
uint64_t gw_objset_base_lsn(const gw_objset *set);
/* Close the files (reopened on the next use): an idle repository holds no descriptor. */
void gw_objset_release(gw_objset *set);
void gw_objset_free(gw_objset *set);

#endif
