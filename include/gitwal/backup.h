/*
 * Full backups: one repository into the store as a Git bundle, its pack
 * index and a manifest (written last: the commit point), then recorded in
 * the index. Safe to run while the repository is pushed to or gc'd.
 */
#ifndef GITWAL_BACKUP_H
#define GITWAL_BACKUP_H

#include <stdint.h>

#include "gitwal/index.h"
#include "gitwal/progress.h"
#include "gitwal/store.h"

typedef struct gw_backup_result {
	uint64_t lsn;
	int64_t time_us;
	uint64_t bundle_bytes;
	uint64_t objects;
	uint64_t refs;
	uint64_t duplicates; /* object copies dropped while joining packs */
	uint64_t loose;
	unsigned attempts;   /* snapshots taken (more than 1 when the repository changed) */
	uint64_t files_skipped; /* paths of its files recorded as not archived (DESIGN.md 4.5) */
	double seconds;
} gw_backup_result;

/*
 * A run of backups (one `gitwal backup` command): each repository is backed
 * up at most once in it, whether named or as the pool of a member backed up
 * before it, so that `backup --all` stores a pool once (DESIGN.md 19). A
 * repository asked for again gets the run's backup of it (waiting while
 * another thread takes it); one that failed is tried again. Safe to share
 * between threads.
 */
typedef struct gw_backup_run gw_backup_run;

int gw_backup_run_new(gw_backup_run **out);
void gw_backup_run_free(gw_backup_run *run);

typedef struct gw_backup_opts {
	/* Or NULL; its planned_bytes gets the size of the repository's packs before they are copied. */
	gw_progress_counters *progress;
	/*
	 * Or NULL: called just before the backup claims LSN lsn, once its bundle
	 * and index are streamed into writers not yet committed. 0: claim. A
	 * negative GW_E* code (with its message set): the backup gives way, its
	 * writers are aborted (nothing becomes visible) and that code is
	 * returned, with no further attempt. The archiver's policy full backups
	 * give way to a segment spooled meanwhile (DESIGN.md 10.6); it must not
	 * make a store request.
	 */
	int (*before_claim)(void *payload, uint64_t lsn);
	void *payload;
	/*
	 * Accept a member of an object pool (DESIGN.md 19): its pool is backed up
	 * first and the member's manifest names it; otherwise such a repository is
	 * refused, naming the pool.
	 */
	int pooled;
	/*
	 * With pooled: the caller archives the pool's changes itself (the
	 * archiver), so the member names the pool's latest full backup in the
	 * index as it is, whatever the pool's refs are now; one is taken only
	 * when the pool has none. (A new one here would take an LSN the
	 * caller's own records of the pool are about to use.)
	 */
	int pool_archived;
	/* Or NULL: the run this backup belongs to (the member's pool too). */
	gw_backup_run *run;
} gw_backup_opts;

/* Back up root/rel. `index` may be NULL (nothing recorded). */
int gw_backup_full(gw_store *store, gw_index *index, const char *root, const char *rel, gw_backup_result *result);
/* The same, with options (opts may be NULL). */
int gw_backup_full_opts(gw_store *store, gw_index *index, const char *root, const char *rel,
			const gw_backup_opts *opts, gw_backup_result *result);

#endif
