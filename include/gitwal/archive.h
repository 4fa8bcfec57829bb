/*
 * The archiver: keeps the store up to date with every bare repository under
 * a root, as log segments (one per observed change) on top of periodic full
 * backups. gw_archiver_sync_repo() is the unit of work: make the archive of
 * one repository equal its current state. The service loop (inotify) and
 * `--once` both call it.
 *
 * A segment is captured into the local spool (durable on this host) and
 * uploaded to the store by upload threads, so a slow or failing store never
 * delays observing a repository (DESIGN.md 10.6); with job_threads, loads
 * and full backups run on threads of their own too. The functions here are
 * for one thread (the archive loop); the threads report through
 * gw_archiver_fd() and gw_archiver_tick().
 */
#ifndef GITWAL_ARCHIVE_H
#define GITWAL_ARCHIVE_H

#include <stdint.h>
#include <stdio.h>

#include "gitwal/index.h"
#include "gitwal/store.h"

typedef struct gw_archiver gw_archiver;
/* The archiver's metrics (gitwal/metrics.h): only pointers are handed out here. */
typedef struct gw_metrics gw_metrics;
typedef struct gw_metrics_archiver gw_metrics_archiver;

typedef struct gw_archiver_opts {
	const char *root;
	const char *state_dir;        /* local caches: archived-object sets */
	uint64_t full_every_segments; /* full backup after this many segments (default 1000) */
	double full_ratio;            /* ... or when segment bytes exceed this fraction of the full (0.5) */
	int64_t full_max_age_s;       /* ... or when the full backup is older than this (86400) */
	FILE *log;                    /* key=value event lines; NULL: none */
	uint64_t spool_max_bytes;     /* local spool bound while the store is unreachable (1 GiB) */
	unsigned upload_threads;      /* threads uploading the spool; 0: gw_archiver_tick() uploads (archive --once) */
	unsigned job_threads;         /* threads for loads and full backups; 0: in the caller's thread (archive --once) */
	volatile int *stop;           /* when set and non-zero, long scans return early (SIGTERM) */
} gw_archiver_opts;

/* What `archive` reports (gw_archiver_get_stats), read from the archiver's metrics. */
typedef struct gw_archiver_stats {
	uint64_t segments;       /* durable in the store (gitwal_segments_written_total) */
	uint64_t fulls;          /* gitwal_full_backups_total */
	uint64_t repositories;   /* gitwal_repositories */
	uint64_t spool_segments; /* not yet in the store (gitwal_spool_segments) */
} gw_archiver_stats;

int gw_archiver_new(gw_archiver **out, gw_store *store, gw_index *index, const gw_archiver_opts *opts);
void gw_archiver_free(gw_archiver *a);

/*
 * Archive whatever changed in rel since its last archived state: a first
 * full backup when it has none, a segment when refs or HEAD changed, a
 * deletion record when the repository is gone, a new full backup when the
 * policy says so. changed_us is when the change was first observed (for the
 * lag), or 0.
 */
int gw_archiver_sync_repo(gw_archiver *a, const char *rel, int64_t changed_us);
/* Every repository under the root, and every archived one that is gone. Returns the number that failed. */
int gw_archiver_sync_all(gw_archiver *a);
void gw_archiver_get_stats(gw_archiver *a, gw_archiver_stats *stats);
/*
 * The archiver counts every event once, into its own metrics registry (kept
 * whether or not it is served; DESIGN.md 10.7): the registry, to serve on
 * /metrics, and its handles, for what the caller counts (watches, watch
 * errors, inotify overflows). Both live until gw_archiver_free(): stop a
 * server using the registry first.
 */
gw_metrics *gw_archiver_registry(gw_archiver *a);
gw_metrics_archiver *gw_archiver_metrics(gw_archiver *a);
/*
 * Background duties: take what the upload threads report (segments durable
 * in the store, failures, conflicts, the store's health; with no threads,
 * upload first), retry repositories whose sync failed (each on its own
 * backoff), archive repositories that changed while the spool was full or
 * whose spooled segments were set aside. Returns the milliseconds until it
 * wants to run again (-1: nothing pending); call it also when
 * gw_archiver_fd() is readable.
 */
int gw_archiver_tick(gw_archiver *a);
/* Readable when the upload or job threads have something to report: poll it beside the watcher's. */
int gw_archiver_fd(gw_archiver *a);
/*
 * Repositories held by a load or first full backup in flight on a job
 * thread (their changes wait for it); 0 once the start-up catch-up is done.
 */
size_t gw_archiver_holding(gw_archiver *a);
/*
 * For `archive --once`: one line per repository with segments still in the
 * spool (its name, how many, and their LSNs), into out; returns how many
 * repositories.
 */
size_t gw_archiver_report_spooled(gw_archiver *a, FILE *out);

#endif
