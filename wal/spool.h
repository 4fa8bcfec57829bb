/*
 * The local spool: where the archiver writes segments while the store is
 * unreachable, so that no change is lost. It is a file store of its own
 * under the state directory, with the store's layout; gw_spool_flush()
 * uploads its segments in key (so per repository, LSN) order, records each
 * in the index, and removes it. Bounded: past max_bytes the archiver stops
 * writing, remembers which repositories changed, and archives their state
 * (marked as a gap) once there is room again.
 */
#ifndef GITWAL_WAL_SPOOL_H
#define GITWAL_WAL_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "gitwal/index.h"
#include "gitwal/store.h"

typedef struct gw_spool gw_spool;

int gw_spool_open(gw_spool **out, const char *dir, uint64_t max_bytes);
void gw_spool_free(gw_spool *spool);
gw_store *gw_spool_store(gw_spool *spool);
uint64_t gw_spool_bytes(const gw_spool *spool);
size_t gw_spool_count(const gw_spool *spool);
int gw_spool_full(const gw_spool *spool);
/* Does the spool hold segments of rel (new ones must then queue behind them)? */
int gw_spool_has_repo(gw_spool *spool, const char *rel);
/* Count a segment just written into the spool. */
void gw_spool_added(gw_spool *spool, uint64_t bytes);
/*
 * A spooled segment's LSN holds a different record in the store (another
 * writer took it while this one could not reach the store). The spool has
 * already set that repository's segments aside (never deleted: under
 * spool-conflicts/ beside the spool, for an operator); the callback tells
 * the archiver, which re-reads the repository from the store.
 */
typedef void (*gw_spool_conflict_fn)(const char *rel, uint64_t lsn, void *payload);
/*
 * Upload everything, oldest first. Returns the number uploaded, or <0 at the
 * first failure (the rest stays). A conflict is not a failure: the
 * repository's segments are set aside, on_conflict is called, and the other
 * repositories' segments go on.
 */
int gw_spool_flush(gw_spool *spool, gw_store *store, gw_index *index, gw_spool_conflict_fn on_conflict,
		   void *payload);

#endif
