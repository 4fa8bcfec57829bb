/*
 * The restore engine: one repository brought back as it was at a point in
 * time (the newest full backup at or before it, then the log segments after
 * it), or as one full backup alone. Its phases have files of their own
 * (restore_internal.h): plan.c, fetch.c, build.c and install.c; this file
 * runs them in order and reports what was done.
 *
 * A restore writes packs straight out of the store, beside the pack indexes
 * stored with them: no index-pack, no object hashing, no delta resolution.
 * Integrity comes from the manifest and the index: every byte read is
 * checked against the SHA-256 recorded for it as it streams, each pack
 * against its index, and every ref's object against the packs, before the
 * repository is renamed into place (DESIGN.md 6 and 11).
 */
#include "restore/restore_internal.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/repo.h"
#include "format/pool.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/*
 * The plan carried out: built beside the target, then moved into place;
 * nothing half-made stays. A pooled member's pool is restored first.
 */
static int build_and_install(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
			     const gw_restore_plan *p)
{
	char target[4096], tmp[4300], pool_dir[4096] = "", pool_root[4400] = "", *alternates = NULL;
	int rc, replace;
	if (p->m.pool.repository && !opts->standalone &&
	    ((rc = gw_restore__pool(store, index, rel, opts, &p->m.pool, pool_dir, sizeof(pool_dir))) < 0 ||
	     (rc = gw_pool_alternates_line(rel, p->m.pool.repository, &alternates)) < 0))
		return rc;
	if ((rc = gw_restore__prepare_target(rel, opts, target, sizeof(target), tmp, sizeof(tmp), &replace)) < 0) {
		free(alternates);
		return rc;
	}
	if (p->m.pool.repository && opts->standalone) {
		/* The pool for this member only, in its scratch directory, gone before it is installed. */
		gw_restore_opts po = *opts;
		snprintf(pool_root, sizeof(pool_root), "%s/.gitwal-pool", tmp);
		po.to = pool_root;
		po.pools = NULL;
		po.force = 0;
		po.progress = NULL;
		rc = gw_restore__pool(store, index, rel, &po, &p->m.pool, pool_dir, sizeof(pool_dir));
	}
	if (rc == 0 && (rc = gw_restore__build(store, rel, p, tmp, opts->skeleton_files, pool_dir[0] ? pool_dir : NULL,
					       alternates)) == 0 &&
	    (!pool_root[0] || (rc = gw_remove_tree(pool_root)) == 0))
		rc = gw_restore__install(tmp, target, replace, rel);
	if (rc < 0)
		gw_remove_tree(tmp);
	free(alternates);
	return rc;
}

/* What the plan says the restore does, before it is done. */
static void report_plan(const gw_restore_plan *p, gw_restore_result *result)
{
	result->full_lsn = p->m.lsn;
	result->full_time_us = p->m.time_us;
	result->lsn = p->span.last_lsn;
	result->time_us = p->span.segments ? p->span.last_time_us : p->m.time_us;
	result->segments = p->span.segments;
	result->bytes = p->m.bundle.size + p->m.idx.size + p->span.bytes;
	result->objects = p->m.objects;
	result->refs = p->state.nrefs;
}

static int run_one(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
		   gw_restore_result *result)
{
	struct timespec t0, t1;
	gw_restore_plan p;
	int rc;

	memset(result, 0, sizeof(*result));
	memset(&p, 0, sizeof(p));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((rc = gw_repo_path_check(rel)) < 0)
		return rc;
	rc = gw_restore__plan(store, index, rel, opts, &p);
	result->skipped = p.not_archived;
	if (rc < 0)
		goto out;
	if (opts->until_set && !p.exists) {
		rc = gw_error_set(GW_ENOTFOUND, "repository %s was deleted %s", rel,
				  opts->until_us == INT64_MAX
					  ? "(its last record): --until a time before its deletion restores it"
					  : "before the time asked for");
		result->skipped = 1;
		goto out;
	}
	report_plan(&p, result);
	result->gaps = p.gaps;
	result->ngaps = p.ngaps;
	p.gaps = NULL;
	if (opts->dry_run) {
		rc = gw_restore__plan_end_refs(&p, result);
		goto out;
	}
	GW_PROGRESS_ADD(opts->progress, planned_bytes, result->bytes);
	if ((rc = gw_restore__plan_segments(index, rel, &p)) == 0 && (rc = gw_restore__plan_pool(store, rel, &p)) == 0 &&
	    (opts->skeleton_files || (rc = gw_restore__plan_files(store, index, rel, &p)) == 0)) {
		for (size_t i = 0; i < p.nsegs; i++)
			result->objects += p.segs[i].objects;
		rc = build_and_install(store, index, rel, opts, &p);
		/* Named to the caller: what the archive holds as not archived was not restored (DESIGN.md 4.5). */
		if (rc == 0 && !opts->skeleton_files)
			rc = gw_files_copy_skipped(p.files ? p.files : &p.m.files, &result->files_skipped);
	}
out:
	if (rc < 0 && strncmp(gw_error_message(), "repository ", 11) != 0)
		gw_error_prefix("repository %s", rel);
	gw_restore__plan_dispose(&p);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	result->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	return rc;
}

int gw_restore_run(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
		   gw_restore_result *result)
{
	gw_restore_opts own;
	int rc;
	memset(result, 0, sizeof(*result));
	if (opts->dry_run)
		return run_one(store, index, rel, opts, result);
	if (!opts->pools) {
		/* A registry of its own: its pool, if any, is restored once with it. */
		own = *opts;
		if ((rc = gw_restore_pools_new(&own.pools)) < 0)
			return rc;
		rc = gw_restore_run(store, index, rel, &own, result);
		gw_restore_pools_free(own.pools);
		return rc;
	}
	/* Once per run: restored already (as a member's pool, or named twice), it is not again. */
	if (!gw_restore__pools_claim(opts->pools, rel, result, &rc))
		return rc;
	rc = run_one(store, index, rel, opts, result);
	gw_restore__pools_done(opts->pools, rel, rc, result);
	return rc;
}

void gw_restore_result_dispose(gw_restore_result *res)
{
	size_t i;
	for (i = 0; i < res->nend_refs; i++) {
		free(res->end_refs[i].name);
		free(res->end_refs[i].value);
	}
	free(res->end_refs);
	free(res->gaps);
	gw_files_dispose(&res->files_skipped);
	res->end_refs = NULL;
	res->gaps = NULL;
	res->nend_refs = res->ngaps = 0;
}
