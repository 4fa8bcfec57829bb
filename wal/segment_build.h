/*
 * Building one log segment: the difference between the archived ref state
 * of a repository and its current one, and the objects the new values need
 * that are not yet archived in the generation (found by a walk that stops
 * at archived objects, so its cost follows the change, not the repository).
 */
#ifndef GITWAL_WAL_SEGMENT_BUILD_H
#define GITWAL_WAL_SEGMENT_BUILD_H

#include "backup/source.h"
#include "format/refstate.h"
#include "gitwal/files.h"
#include "gitwal/segment.h"
#include "gitwal/store.h"
#include "wal/objset.h"

/*
 * The updates that turn old into cur, all stamped time_us, in name order
 * (HEAD last), ids of hash_len bytes (20 or 32); *n == 0: nothing changed. cur NULL: every ref is gone (HEAD
 * is left out). seen, if not NULL, is a view old is known to equal (it was
 * read before and nothing else changed old since): when cur has the same
 * packed-refs, only refs loose in either can differ, and only those are
 * compared, so the cost follows the loose refs, not the repository.
 */
int gw_segment_diff(const gw_refstate *old, const gw_refs_view *seen, const gw_refs_view *cur, size_t hash_len,
		    int64_t time_us, gw_update **updates, size_t *n);

typedef struct gw_segment_spec {
	const char *rel;
	const char *path;       /* the repository directory */
	const char *scratch_dir; /* where pack-objects may write temporary files */
	uint64_t lsn;
	uint64_t base_lsn;
	size_t hash_len;        /* the generation's ids: 20 (sha1) or 32 (sha256); the repository's must agree */
	const char *prev_sha256;
	gw_update *updates;
	size_t nupdates;
	int64_t time_first_us;
	int64_t time_last_us;
	int gap;                /* states between gap_from_us and gap_to_us were not observed */
	int64_t gap_from_us;
	int64_t gap_to_us;
	const gw_files *files;  /* the repository's files when they changed (the header's "files"); NULL: unchanged */
	/*
	 * A pooled member (DESIGN.md 19): the header's "pool", and the pool's
	 * archived objects at pool->lsn (read-only: the walk also stops there),
	 * pool_path the live pool (where its loose objects are). NULL: none.
	 */
	const gw_pool_dep *pool;
	gw_objset *pool_set;
	const char *pool_path;
} gw_segment_spec;

typedef struct gw_segment_result {
	char sha256[65];        /* the segment's digest (its trailer) */
	uint64_t bytes;
	uint64_t objects;
	unsigned char *oids;    /* ids added (objects * hash_len bytes), for the object set */
	unsigned char *proven;  /* objects of the full backup whose closure is archived once this segment is */
	size_t nproven;
} gw_segment_result;

/* Walk, pack and store the segment (create-only) at repos/<rel>/<lsn>.seg. */
int gw_segment_build(gw_store *store, gw_objset *set, const gw_segment_spec *spec, gw_segment_result *res);
void gw_segment_result_dispose(gw_segment_result *res);

/*
 * The segment walk from ntips ids (tips) over odb: every object they reach
 * that set does not hold (stopping there), in *found (malloc'd, *nfound
 * ids). A pooled member's full backup uses it with its pool's archived set
 * (DESIGN.md 19); path is the repository whose loose objects are in doubt.
 */
struct gw_odb;
int gw_walk_unarchived(struct gw_odb *odb, const char *rel, const char *path, gw_objset *set, const unsigned char *tips,
		       size_t ntips, unsigned char **found, size_t *nfound);

#endif
