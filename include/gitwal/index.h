/*
 * The local index: an SQLite database (WAL journal) that lists what the
 * store holds so that planning a restore or answering `info` needs no store
 * listing. It is only a cache: gw_index_sync() rebuilds it from the store
 * alone (listing plus manifests). Safe to share between threads.
 */
#ifndef GITWAL_INDEX_H
#define GITWAL_INDEX_H

#include <stdint.h>
#include <stddef.h>

#include "gitwal/segment.h"
#include "gitwal/store.h"

typedef struct gw_index gw_index;

typedef struct gw_full_record {
	char *repository;
	uint64_t lsn;
	int64_t time_us;
	char *manifest_key;
	uint64_t manifest_size;
	char manifest_sha256[65];
	uint64_t bundle_size;
	uint64_t idx_size;
	uint64_t objects;
	uint64_t refs;
	/*
	 * A pooled member's (DESIGN.md 19): its pool and the pool's generation,
	 * recorded so retention keeps that generation (gw_index_pool_floor).
	 * Borrowed when adding; not read back (NULL in what the index returns).
	 */
	const char *pool;
	uint64_t pool_base_lsn;
} gw_full_record;

int gw_index_open(gw_index **out, const char *path);
void gw_index_free(gw_index *index);

int gw_index_full_add(gw_index *index, const gw_full_record *rec);
/*
 * The lowest generation (full backup LSN) of pool that a member's full
 * backup in the index names: 1 and *lsn, or 0 when none names it.
 */
int gw_index_pool_floor(gw_index *index, const char *pool, uint64_t *lsn);
/* The backup of repo at lsn, or its latest when lsn is 0; GW_ENOTFOUND when none. */
int gw_index_full_find(gw_index *index, const char *repo, uint64_t lsn, gw_full_record *out);
/* The newest full backup of repo taken at or before time_us; the oldest one. GW_ENOTFOUND when none. */
int gw_index_full_find_before(gw_index *index, const char *repo, int64_t time_us, gw_full_record *out);
int gw_index_full_find_first(gw_index *index, const char *repo, gw_full_record *out);
typedef int (*gw_index_full_cb)(const gw_full_record *rec, void *payload);
/* Every full backup (of repo, or of all when NULL), by repository then LSN. */
int gw_index_full_foreach(gw_index *index, const char *repo, gw_index_full_cb cb, void *payload);
/* Repositories with at least one full backup, sorted. */
int gw_index_repos(gw_index *index, char ***out, size_t *count);
void gw_full_record_dispose(gw_full_record *rec);

typedef struct gw_segment_record {
	char *repository;
	uint64_t lsn;
	uint64_t base_lsn;
	int64_t time_first_us;
	int64_t time_last_us;
	char *key;
	uint64_t size;
	char sha256[65];      /* the segment's digest (its trailer) */
	char prev_sha256[65]; /* the previous record's digest */
	uint64_t objects;
	uint64_t updates;
	int gap;              /* the archiver could not observe every state before this one */
	int64_t gap_from_us;  /* when gap: states strictly between these times are unknown */
	int64_t gap_to_us;
	char files_sha256[65]; /* it carries the repository's files: their digest (gw_files_digest); "" when not */
} gw_segment_record;

/* Record a segment and its ref updates (the header's, in order). A record already there is left alone. */
int gw_index_segment_add(gw_index *index, const gw_segment_record *rec, const gw_update *updates, size_t nupdates);
/*
 * Record the segment stored at key (its header and trailer are read back from
 * the store). 1, recording nothing, when the key holds a full backup's claim
 * on its LSN rather than a change (its manifest is what the index records).
 */
int gw_index_record_segment(gw_index *index, gw_store *store, const char *key, uint64_t size);
/* Segments of repo with from <= lsn <= to, in LSN order. */
typedef int (*gw_index_segment_cb)(const gw_segment_record *rec, void *payload);
int gw_index_segment_foreach(gw_index *index, const char *repo, uint64_t from, uint64_t to,
			     gw_index_segment_cb cb, void *payload);
void gw_segment_record_dispose(gw_segment_record *rec);
/* Whether repo has a record (full backup or segment) at lsn: one indexed lookup. */
int gw_index_lsn_known(gw_index *index, const char *repo, uint64_t lsn, int *known);
/* The highest LSN recorded for repo (full or segment); 0 when none. */
int gw_index_last_lsn(gw_index *index, const char *repo, uint64_t *lsn);

/*
 * Bring the index up to date with the store: every committed full backup
 * (one with its manifest) found by listing is recorded. With repo set, only
 * that repository's keys are listed. Returns the number of records added.
 */
int gw_index_sync(gw_index *index, gw_store *store, const char *repo);
/*
 * Only what repo gained after the last LSN the index holds for it (one
 * listing from there: S3 start-after). Holes below it are left to
 * gw_index_sync().
 */
int gw_index_sync_newer(gw_index *index, gw_store *store, const char *repo);

/* A key a sync could not record: unreadable, damaged, or not what its name says. */
typedef struct gw_sync_problem {
	char *repository; /* from the key's name */
	uint64_t lsn;
	char *key;
	char *reason;     /* the error, one line */
	int code;         /* its GW_E* code */
} gw_sync_problem;

typedef struct gw_sync_report {
	char **repos;     /* every repository a listed key names (a manifest, bundle, idx or segment), in key order */
	size_t nrepos;
	gw_sync_problem *problems; /* in key order */
	size_t nproblems;
	size_t fulls, segments; /* records added */
	size_t repos_cap, problems_cap; /* room in repos and problems (gitwal/array.h) */
} gw_sync_report;

/*
 * gw_index_sync (newer = 0) or gw_index_sync_newer (newer = 1) that goes on
 * past a key it cannot record: with report set, such a key becomes one of
 * its problems (a later sync into the same report adds each key once), and
 * every repository named by a listed key is noted. Only a failure of the
 * listing or of the index itself is returned. The report is zeroed by the
 * caller and freed with gw_sync_report_dispose().
 */
int gw_index_sync_report(gw_index *index, gw_store *store, const char *repo, int newer, gw_sync_report *report);
/* repo's problem with the lowest LSN above after_lsn, or NULL. */
const gw_sync_problem *gw_sync_report_find(const gw_sync_report *report, const char *repo, uint64_t after_lsn);
int gw_sync_report_has_repo(const gw_sync_report *report, const char *repo);
void gw_sync_report_dispose(gw_sync_report *report);

/* Forget everything (before a full rebuild). */
int gw_index_clear(gw_index *index);

/*
 * Many records in one transaction (index rebuild, bulk loads): every add
 * until gw_index_batch_commit() is a savepoint of it. For one writer.
 */
int gw_index_batch_begin(gw_index *index);
int gw_index_batch_commit(gw_index *index);

/*
 * Planning a point-in-time restore from the index alone (src/index/timeline.c).
 * A span is the part of the generation of the full backup at full_lsn that a
 * restore to until_us replays: its segments full_lsn+1 .. last_lsn.
 */
typedef struct gw_index_span {
	uint64_t full_lsn;
	uint64_t last_lsn;     /* == full_lsn when no segment is needed */
	int64_t last_time_us;  /* the last segment's time_last_us (0 when none) */
	uint64_t segments;
	uint64_t bytes;        /* of those segments */
	uint64_t broken_lsn;   /* first LSN in the span missing or not linking to the one before; 0 when whole */
	int broken_missing;    /* broken_lsn is missing (rather than present and not linking) */
	int64_t broken_after_us; /* the time of the last record before broken_lsn */
	/* The segment after the span when it reports an archiver gap covering until_us (else all 0). */
	uint64_t unknown_lsn;
	int64_t unknown_from_us, unknown_to_us;
	/* The lowest record above the span, of any generation (next_lsn 0 when none). */
	uint64_t next_lsn;
	int next_full;          /* it is a full backup (else a segment) */
	uint64_t next_base_lsn; /* a segment's generation */
	int64_t next_time_us;   /* a full backup's time, a segment's time_first_us */
} gw_index_span;
int gw_index_span_find(gw_index *index, const char *repo, uint64_t full_lsn, int64_t until_us, gw_index_span *out);

/*
 * The ref updates that decide the state at until_us within a span, in LSN
 * order: the latest update of each ref name (and of HEAD), the latest
 * repository-deleted and -created events, and nothing older than the latest
 * deletion. Applied to the full backup's refs they give the refs at until_us.
 */
int gw_index_span_updates(gw_index *index, const char *repo, const gw_index_span *span, int64_t until_us,
			  gw_update **updates, size_t *n);

/*
 * The newest segment of repo with from <= lsn <= to that carries the
 * repository's files (DESIGN.md 4.5); GW_ENOTFOUND when none does.
 */
int gw_index_files_find(gw_index *index, const char *repo, uint64_t from, uint64_t to, gw_segment_record *out);
/* How many segments of repo carry a change of its files. */
int gw_index_files_count(gw_index *index, const char *repo, uint64_t *n);

/* Archiver gaps (outages) recorded in from..to, in LSN order. */
typedef int (*gw_index_gap_cb)(uint64_t lsn, int64_t from_us, int64_t to_us, void *payload);
int gw_index_gaps_foreach(gw_index *index, const char *repo, uint64_t from, uint64_t to, gw_index_gap_cb cb,
			  void *payload);

#endif
