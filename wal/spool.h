/*
 * The local spool: every segment the archiver captures is written here
 * first (create-only, fsync'd: durable on this host), then uploaded to the
 * store by upload threads, so observing a repository never waits on the
 * store (DESIGN.md 10.6). It is a file store of its own under the state
 * directory, with the store's layout, and an in-memory queue per
 * repository: a repository's segments go up one at a time in LSN order,
 * different repositories' at once. A failed upload is retried on that
 * repository's own backoff; the others go on.
 *
 * Threads: the archive loop (one thread) adds segments, reads events and
 * sets aside; upload threads only read spooled files and write the store
 * and the index; the archiver's store jobs (loads) read spooled files. Uploaded files are removed from the spool by the archive
 * loop when it takes their event (gw_spool_next_event), so a repository's
 * state loaded meanwhile from the store plus the spool sees every record.
 *
 * Bounded: past max_bytes the archiver stops capturing, remembers which
 * repositories changed, and archives their state (marked as a gap) once
 * there is room again.
 */
#ifndef GITWAL_WAL_SPOOL_H
#define GITWAL_WAL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "gitwal/index.h"
#include "gitwal/metrics.h"
#include "gitwal/store.h"

typedef struct gw_spool gw_spool;

/* What a segment added to the spool carries along, for its upload's event and the metrics. */
typedef struct gw_spool_item {
	uint64_t lsn;
	uint64_t bytes;
	uint64_t updates, objects;
	int64_t changed_us;  /* when the change was first seen (the lag runs from there); 0: unknown */
	int64_t time_us;     /* the time the segment records (when the state was read) */
	int64_t spooled_us;  /* when it became durable in the spool */
	int gap;             /* it records a gap */
	/*
	 * A pooled member's segment: the pool it names and the pool's LSN
	 * (DESIGN.md 19). It goes up only once the pool's spooled records up
	 * to that LSN are in the store, so the store never holds a member's
	 * record naming a pool record it lacks. Borrowed by gw_spool_add (the
	 * spool keeps its own copy); NULL in events.
	 */
	const char *pool;
	uint64_t pool_lsn;
} gw_spool_item;

typedef enum {
	GW_SPOOL_UPLOADED = 1, /* the store has it (and the index records it) */
	GW_SPOOL_FAILED,       /* an upload failed: retried after retry_ms */
	GW_SPOOL_CONFLICT,     /* its LSN holds another record: the repository waits for gw_spool_set_aside */
	GW_SPOOL_HEALTH,       /* the store turned healthy or unhealthy */
} gw_spool_event_kind;

typedef struct gw_spool_event {
	gw_spool_event_kind kind;
	char *rel;           /* not for HEALTH */
	gw_spool_item item;  /* the segment (UPLOADED, FAILED, CONFLICT) */
	int64_t durable_us;  /* UPLOADED: when the store had it */
	double upload_s;     /* UPLOADED: how long its upload took */
	int code;            /* FAILED: the GW_E* code */
	char *message;       /* FAILED, HEALTH (unhealthy): the error */
	int64_t retry_ms;    /* FAILED: the next attempt in */
	int taken_by_full;   /* CONFLICT: a full backup's record holds the LSN (else another archiver's, or unreadable) */
	int taken_unreadable; /* CONFLICT: the record there could not be read */
	int healthy;         /* HEALTH */
} gw_spool_event;

int gw_spool_open(gw_spool **out, const char *dir, uint64_t max_bytes);
/* Stops the upload threads (an upload in flight is finished first) and frees. */
void gw_spool_free(gw_spool *spool);
gw_store *gw_spool_store(gw_spool *spool);
/* Bytes and segments spooled and not yet durable in the store. */
uint64_t gw_spool_bytes(gw_spool *spool);
size_t gw_spool_count(gw_spool *spool);
int gw_spool_full(gw_spool *spool);
/* Does the spool hold segments of rel not yet in the store (a full backup must wait for them)? */
int gw_spool_has_repo(gw_spool *spool, const char *rel);
/* Count (and queue for upload) a segment of rel just written into the spool at its LSN's key. */
int gw_spool_add(gw_spool *spool, const char *rel, const gw_spool_item *item);

/*
 * Upload to store in the background on nthreads threads, recording each
 * segment in index. metrics (NULL: none) gets the upload's series: store
 * health, segments and bytes durable in the store, the last time one became
 * durable, the lag and upload-time histograms, store errors, and the spool's
 * depth, bytes and oldest age, computed at scrape time.
 */
int gw_spool_start(gw_spool *spool, gw_store *store, gw_index *index, unsigned nthreads, gw_metrics_archiver *metrics);
/*
 * The same work in the calling thread, for `archive --once`: every
 * repository's segments in order until one fails (then its next ones wait).
 * Call gw_spool_start with nthreads 0 first. Returns the number uploaded.
 */
int gw_spool_flush(gw_spool *spool);

/* Readable (an eventfd) when events wait; for the archive loop's poll. */
int gw_spool_fd(gw_spool *spool);
/*
 * The next event, 1 (dispose it), or 0 when none. An UPLOADED segment's
 * spool file is removed here, in the archive loop's thread.
 */
int gw_spool_next_event(gw_spool *spool, gw_spool_event *ev);
void gw_spool_event_dispose(gw_spool_event *ev);
/*
 * Pin (1) or unpin (0) rel's spooled files: while its archived state is
 * loaded on another thread (the store's records, then the spool's), the
 * files of segments uploaded meanwhile are not removed, so the load sees
 * each record in the store or in the spool; unpinning removes them.
 */
void gw_spool_pin(gw_spool *spool, const char *rel, int pin);
/* Make gw_spool_fd readable: the archiver's own threads report through it too. */
void gw_spool_wake(gw_spool *spool);

/*
 * A spooled segment's LSN holds a different record in the store (another
 * writer took it while this one could not reach the store, or before it
 * uploaded): the repository's segments can never be the store's. Move them,
 * whole, to spool-conflicts/<enc(rel)>.<time>/ beside the spool (never
 * deleted: for an operator) and forget them. *last_us gets the latest time
 * one of them recorded (0: none).
 */
int gw_spool_set_aside(gw_spool *spool, const char *rel, uint64_t *bytes, size_t *count, int64_t *last_us);

/*
 * Each repository with segments still in the spool: how many, the first and
 * last LSN, and why they are not in the store (its last upload error, or
 * NULL when none failed yet). fn runs with the spool's lock held. Returns
 * the number of repositories.
 */
typedef void (*gw_spool_pending_fn)(const char *rel, size_t n, uint64_t first_lsn, uint64_t last_lsn,
				    const char *error, void *payload);
size_t gw_spool_pending(gw_spool *spool, gw_spool_pending_fn fn, void *payload);

/*
 * The store's health as the uploads (and gw_spool_note_store) see it: 1
 * until an operation fails, then 0 until one succeeds; and 0 while the
 * driver says the store is unhealthy (gw_store_health_get: a request that
 * stalls in flight, before it is abandoned).
 */
int gw_spool_healthy(gw_spool *spool);
/* The outcome (0 or a GW_E* code; the message is the thread's) of a store operation made elsewhere. */
void gw_spool_note_store(gw_spool *spool, int rc);
/*
 * May the archive loop make a store request now? Always while the store is
 * healthy; while it is not, once per probe interval (1 s, doubling to 60 s),
 * so that a store that stalls holds the loop at most once per interval.
 */
int gw_spool_store_may_try(gw_spool *spool);

#endif
