/*
 * Restoring repositories into bare repositories: as they were at a point in
 * time (a full backup, then the log segments after it, up to that time), or
 * as one full backup alone. Each repository is built in a temporary
 * directory beside its target and renamed into place, so a failed restore
 * leaves nothing half-made, and every byte is checked against the SHA-256
 * digests its manifest and the index record before the result becomes
 * visible.
 */
#ifndef GITWAL_RESTORE_H
#define GITWAL_RESTORE_H

#include <stdint.h>

#include "gitwal/files.h"
#include "gitwal/index.h"
#include "gitwal/progress.h"
#include "gitwal/store.h"

/*
 * A run's registry of the repositories it restored (restore/pool.c): a
 * pool is restored once per run however many members share it (DESIGN.md
 * 19). One per run, shared by its threads; NULL in gw_restore_opts: each
 * gw_restore_run has its own.
 */
typedef struct gw_restore_pools gw_restore_pools;
int gw_restore_pools_new(gw_restore_pools **out);
void gw_restore_pools_free(gw_restore_pools *pools);

typedef struct gw_restore_opts {
	const char *to;  /* the directory under which DIR/REL is created */
	uint64_t lsn;    /* without until_set: the full backup at this LSN; 0: the latest */
	int force;       /* replace an existing non-empty target */
	int until_set;   /* restore the state at until_us (any time, the epoch and earlier included) */
	int64_t until_us; /* point in time (microseconds since the epoch); INT64_MAX: the newest archived state */
	int dry_run;     /* plan only */
	int index_synced; /* the caller has just brought the whole index up to date with the store */
	/*
	 * Damaged keys (gw_index_sync_report), or NULL. With index_synced, what
	 * the caller's sync found (only read: it may be shared between threads);
	 * otherwise restore's own syncs go on past a damaged key and add it here
	 * (NULL: they stop at it). A damaged key the state asked for may depend
	 * on (above the full backup, up to the record after the span) fails the
	 * repository, naming it; one after that does not.
	 */
	gw_sync_report *report;
	/* Or NULL; its planned_bytes gets the plan's bytes to read before they are read (not with dry_run). */
	gw_progress_counters *progress;
	/*
	 * Leave the repository's own files (config, description, info/attributes,
	 * custom_hooks/) out and keep the skeleton's: the audit's git fsck must
	 * read the repository whatever extensions its own config names.
	 */
	int skeleton_files;
	gw_restore_pools *pools; /* or NULL: see gw_restore_pools */
	/*
	 * A pooled member (DESIGN.md 19) made self-contained: its pool restored
	 * into its scratch directory only, the objects it needs from there
	 * copied into a pack of its own, no alternates.
	 */
	int standalone;
} gw_restore_opts;

/*
 * An archiver outage (or a full spool) recorded in the log: the states
 * strictly between from and to were not seen. Restore reports those in the
 * replayed range, and the one right after it when the time asked for falls
 * inside its window (covers_until): the state restored is then the last one
 * archived before the window, and the archive cannot prove it still held.
 */
typedef struct gw_restore_gap {
	uint64_t lsn; /* the segment that records it */
	int64_t from_us, to_us;
	int covers_until;
} gw_restore_gap;

/* A ref of the plan's end state: value is a hex object id, or "ref: TARGET" when symbolic. */
typedef struct gw_restore_ref {
	char *name;
	char *value;
} gw_restore_ref;

typedef struct gw_restore_result {
	uint64_t lsn;
	int64_t time_us;
	uint64_t bytes;
	uint64_t objects;
	uint64_t refs;
	uint64_t segments; /* log segments applied */
	uint64_t full_lsn; /* the full backup restored (then its segments) */
	int64_t full_time_us;
	int skipped;       /* the archive proves the repository did not exist at the time asked for */
	double seconds;
	gw_restore_gap *gaps; /* with until_us */
	size_t ngaps;
	gw_restore_ref *end_refs; /* with dry_run: the refs and HEAD the restore would write, HEAD first */
	size_t nend_refs;
	/*
	 * The paths of its files the archive holds as skipped (DESIGN.md 4.5),
	 * each with its reason: not restored, nothing created for them. The
	 * refs and objects are whole all the same.
	 */
	gw_files files_skipped;
} gw_restore_result;


/*
 * Restore rel: with opts->until_set, as it was at opts->until_us (the newest
 * full backup at or before it, then the segments up to it); otherwise its
 * latest full backup alone, or the one at opts->lsn.
 */
int gw_restore_run(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
		   gw_restore_result *result);
/* Free what a result holds (gaps, end refs); call it after every gw_restore_run(). */
void gw_restore_result_dispose(gw_restore_result *result);

#endif
