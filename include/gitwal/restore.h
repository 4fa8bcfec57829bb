/*
 * Restoring full backups into bare repositories. Each repository is built in
 * a temporary directory beside its target and renamed into place, so a
 * failed restore leaves nothing half-made, and every byte is checked against
 * the SHA-256 digests of its manifest before the result becomes visible.
 */
#ifndef GITWAL_RESTORE_H
#define GITWAL_RESTORE_H

#include <stdint.h>

#include "gitwal/index.h"
#include "gitwal/store.h"

typedef struct gw_restore_opts {
	const char *to;  /* the directory under which DIR/REL is created */
	uint64_t lsn;    /* 0: the latest full backup */
	int force;       /* replace an existing non-empty target */
} gw_restore_opts;

typedef struct gw_restore_result {
	uint64_t lsn;
	int64_t time_us;
	uint64_t bytes;
	uint64_t objects;
	uint64_t refs;
	double seconds;
} gw_restore_result;

int gw_restore_full(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
		    gw_restore_result *result);

/* rm -rf, used for temporary directories. */
int gw_remove_tree(const char *path);

#endif
