/*
 * A pooled member's dependency on its object pool (DESIGN.md 19): the
 * "pool" object of a version-2 manifest or segment header, and the
 * alternates line restore writes into the member. Kept apart from the
 * manifest and segment code so both formats share one parser, and so that
 * nothing writes the field before restore reads it.
 */
#ifndef GITWAL_FORMAT_POOL_H
#define GITWAL_FORMAT_POOL_H

#include <jansson.h>
#include <stdint.h>

typedef struct gw_pool_dep {
	char *repository;  /* the pool's path relative to the root */
	uint64_t base_lsn; /* the pool's generation: its full backup at or below lsn */
	uint64_t lsn;      /* the pool's LSN whose archived objects the member leaves out */
} gw_pool_dep;

/* {"repository": ..., "base_lsn": N, "lsn": N}, new reference; NULL when out of memory. */
json_t *gw_pool_dep_json(const gw_pool_dep *d);
/*
 * Parse and validate the "pool" object of `member`'s record `what`: a safe
 * repository path that is not the member, base_lsn <= lsn, no other key.
 * GW_ECORRUPT naming the record and the field.
 */
int gw_pool_dep_parse(gw_pool_dep *d, json_t *v, const char *member, const char *what);
void gw_pool_dep_dispose(gw_pool_dep *d);

/*
 * The line of the restored member's objects/info/alternates: the pool's
 * objects directory relative to the member's (one "../" for the member's
 * objects directory and one per component of its path), as GitLab writes
 * it. *out is malloc'd; the caller frees it.
 */
int gw_pool_alternates_line(const char *member, const char *pool, char **out);

#endif
