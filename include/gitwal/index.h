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
} gw_full_record;

int gw_index_open(gw_index **out, const char *path);
void gw_index_free(gw_index *index);

int gw_index_full_add(gw_index *index, const gw_full_record *rec);
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
	int gap;
} gw_segment_record;

int gw_index_segment_add(gw_index *index, const gw_segment_record *rec);
/* Record the segment stored at key (its header and trailer are read back from the store). */
int gw_index_record_segment(gw_index *index, gw_store *store, const char *key, uint64_t size);
/* Segments of repo with from <= lsn <= to, in LSN order. */
typedef int (*gw_index_segment_cb)(const gw_segment_record *rec, void *payload);
int gw_index_segment_foreach(gw_index *index, const char *repo, uint64_t from, uint64_t to,
			     gw_index_segment_cb cb, void *payload);
void gw_segment_record_dispose(gw_segment_record *rec);
/* The highest LSN recorded for repo (full or segment); 0 when none. */
int gw_index_last_lsn(gw_index *index, const char *repo, uint64_t *lsn);

/*
 * Bring the index up to date with the store: every committed full backup
 * (one with its manifest) found by listing is recorded. With repo set, only
 * that repository's keys are listed. Returns the number of records added.
 */
int gw_index_sync(gw_index *index, gw_store *store, const char *repo);
/* Forget everything (before a full rebuild). */
int gw_index_clear(gw_index *index);

#endif
