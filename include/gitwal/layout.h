/*
 * Where things live in a store (DESIGN.md 3):
 *
 *   repos/<encoded repository>/<LSN, 20 digits>.full.bundle    the Git bundle
 *   repos/<encoded repository>/<LSN, 20 digits>.full.idx       its pack index
 *   repos/<encoded repository>/<LSN, 20 digits>.full.manifest  commit point
 *   repos/<encoded repository>/<LSN, 20 digits>.seg            the LSN's claim: a log
 *                                                              segment, or a full backup's record
 *   repos/<encoded repository>/<LSN, 20 digits>.expire         retention removed every key
 *                                                              at or below this LSN
 *
 * Keys sort by LSN within a repository; there is no pointer object: the
 * latest backup is found by listing. Every record claims its LSN by creating
 * `<LSN>.seg` (create-only), so one LSN holds one record. An LSN is never
 * reused, even by a backup that failed before its manifest: the next LSN is
 * one more than the highest LSN of any key under the repository.
 */
#ifndef GITWAL_LAYOUT_H
#define GITWAL_LAYOUT_H

#include <stdint.h>
#include <stddef.h>

#include "gitwal/store.h"

typedef enum {
	GW_KEY_UNKNOWN = 0,
	GW_KEY_FULL_BUNDLE,
	GW_KEY_FULL_IDX,
	GW_KEY_FULL_MANIFEST,
	GW_KEY_SEGMENT,
	GW_KEY_EXPIRE, /* an expire record (DESIGN.md 18.2): what retention removed below and at its LSN */
} gw_key_kind;

#define GW_LAYOUT_REPOS "repos/"

/* "repos/<encoded>/" (malloc'd). */
char *gw_layout_repo_prefix(const char *rel);
/* The key of a full backup part or a segment (malloc'd). */
char *gw_layout_key(const char *rel, uint64_t lsn, gw_key_kind kind);
/*
 * Parse a key under repos/: its repository (malloc'd), LSN and kind.
 * GW_KEY_UNKNOWN (and 0) for keys gitwal did not write; <0 on a bad repository component.
 */
int gw_layout_parse_key(const char *key, char **rel, uint64_t *lsn, gw_key_kind *kind);
/* One more than the highest LSN stored for rel (1 for a new repository). */
int gw_layout_next_lsn(gw_store *store, const char *rel, uint64_t *lsn);

#endif
