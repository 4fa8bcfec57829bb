/*
 * Restoring object pools with their members (DESIGN.md 19): a member's full
 * backup names its pool and the pool's LSN whose objects it left out, so the
 * member is restored together with the pool, once per run however many
 * members share it (a run's registry: every repository restored in the run
 * registers there, so a pool named with --repo too is not restored twice,
 * and a second thread wanting it waits for the first), and the member's
 * objects/info/alternates names the restored pool by a relative path.
 * --standalone instead restores the pool into the member's scratch
 * directory and copies the objects the member needs from it into a second
 * pack of the member's, which then has no alternates.
 */
#include "restore/restore_internal.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/odb.h"
#include "wal/segment_build.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <stdint.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
	char *rel;
	int done;            /* 0 while a thread restores it */
	int rc;              /* its outcome, and the message of a failure */
	char message[1024];
	gw_restore_result res; /* lsn, full_lsn and the counts; no gaps, end refs nor skipped files */
} run_entry;

struct gw_restore_pools {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	run_entry *e;
	size_t n, cap;
};

int gw_restore_pools_new(gw_restore_pools **out)
{
	gw_restore_pools *r = calloc(1, sizeof(*r));
	*out = NULL;
	if (!r)
		return gw_error_set(GW_ERROR, "out of memory");
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	*out = r;
	return 0;
}

void gw_restore_pools_free(gw_restore_pools *r)
{
	size_t i;
	if (!r)
		return;
	for (i = 0; i < r->n; i++)
		free(r->e[i].rel);
	free(r->e);
	pthread_mutex_destroy(&r->lock);
	pthread_cond_destroy(&r->cond);
	free(r);
}

static run_entry *find(gw_restore_pools *r, const char *rel)
{
	size_t i;
	for (i = 0; i < r->n; i++)
		if (!strcmp(r->e[i].rel, rel))
			return &r->e[i];
	return NULL;
}

/*
 * 1: rel is this thread's to restore (registered as running); 0: it was
 * restored in this run already (waited for): *res and the return of its
 * restore are its outcome's.
 */
int gw_restore__pools_claim(gw_restore_pools *r, const char *rel, gw_restore_result *res, int *rc)
{
	run_entry *e;
	int mine = 0;
	pthread_mutex_lock(&r->lock);
	while ((e = find(r, rel)) && !e->done)
		pthread_cond_wait(&r->cond, &r->lock);
	if (e) {
		*res = e->res;
		*rc = e->rc;
		if (e->rc < 0)
			gw_error_set(e->rc, "%s", e->message);
	} else if (r->n == r->cap && !(r->e = realloc(r->e, (r->cap = r->cap ? 2 * r->cap : 16) * sizeof(*r->e)))) {
		*rc = gw_error_set(GW_ERROR, "out of memory");
		r->n = r->cap = 0;
	} else if (!(r->e[r->n].rel = strdup(rel))) {
		*rc = gw_error_set(GW_ERROR, "out of memory");
	} else {
		r->e[r->n].done = 0;
		r->n++;
		mine = 1;
	}
	pthread_mutex_unlock(&r->lock);
	return mine;
}

void gw_restore__pools_done(gw_restore_pools *r, const char *rel, int rc, const gw_restore_result *res)
{
	run_entry *e;
	pthread_mutex_lock(&r->lock);
	if ((e = find(r, rel))) {
		e->done = 1;
		e->rc = rc;
		e->res = *res;
		e->res.gaps = NULL;
		e->res.ngaps = 0;
		e->res.end_refs = NULL;
		e->res.nend_refs = 0;
		memset(&e->res.files_skipped, 0, sizeof(e->res.files_skipped)); /* the restoring thread's, named by it */
		if (rc < 0)
			snprintf(e->message, sizeof(e->message), "%s", gw_error_message());
	}
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static int record_time(const gw_segment_record *rec, void *payload)
{
	*(int64_t *)payload = rec->time_last_us;
	return 0;
}

/* dir/objects/pack's packs and indexes moved into pool_dir/objects/pack (one already there is kept). */
static int move_packs(const char *dir, const char *pool_dir)
{
	char from[4400], to[4400];
	struct dirent *e;
	DIR *d;
	int rc = 0;
	snprintf(from, sizeof(from), "%s/objects/pack", dir);
	if (!(d = opendir(from)))
		return gw_error_set_errno(GW_EIO, "cannot read %s", from);
	while (rc == 0 && (e = readdir(d))) {
		size_t n = strlen(e->d_name);
		if (strncmp(e->d_name, "pack-", 5) || n < 9 || (strcmp(e->d_name + n - 4, ".idx") && strcmp(e->d_name + n - 5, ".pack")))
			continue;
		snprintf(from, sizeof(from), "%s/objects/pack/%s", dir, e->d_name);
		snprintf(to, sizeof(to), "%s/objects/pack/%s", pool_dir, e->d_name);
		if (access(to, F_OK) != 0 && rename(from, to) < 0)
			rc = gw_error_set_errno(GW_EIO, "cannot move %s to %s", from, to);
	}
	closedir(d);
	return rc;
}

/*
 * The member's pool generation up to its pool LSN (l > b): the pool as of
 * that record's time, built on its own beside pool_dir (the same join as
 * restore's, from b's full backup and its segments), its pack then moved
 * into the restored pool. Every segment up to l is in it; later ones of the
 * same time too (more objects of the same generation: harmless).
 */
static int add_generation_span(gw_store *store, gw_index *index, const gw_restore_opts *opts, const char *pool_dir,
			       const gw_pool_dep *dep)
{
	gw_restore_opts po = *opts;
	gw_restore_plan p;
	char dir[4400];
	int64_t t = INT64_MIN;
	int rc;
	memset(&p, 0, sizeof(p));
	if ((rc = gw_index_segment_foreach(index, dep->repository, dep->lsn, dep->lsn, record_time, &t)) < 0)
		return rc;
	if (t == INT64_MIN)
		return gw_error_set(GW_ENOTFOUND, "the pool's segment at LSN %llu is not in the index",
				    (unsigned long long)dep->lsn);
	po.until_set = 1;
	po.until_us = t;
	po.index_synced = 1; /* the pool's own restore just synced it */
	if ((rc = gw_restore__plan(store, index, dep->repository, &po, &p)) == 0 &&
	    (p.full.lsn != dep->base_lsn || p.span.last_lsn < dep->lsn))
		rc = gw_error_set(GW_ECORRUPT, "the pool's archive as of its LSN %llu is full backup %llu up to LSN %llu, "
					       "not generation %llu", (unsigned long long)dep->lsn,
				  (unsigned long long)p.full.lsn, (unsigned long long)p.span.last_lsn,
				  (unsigned long long)dep->base_lsn);
	snprintf(dir, sizeof(dir), "%s.gitwal-generation-%llu-%llu", pool_dir, (unsigned long long)dep->base_lsn,
		 (unsigned long long)dep->lsn);
	if (rc == 0 && (gw_remove_tree(dir) < 0 || mkdir(dir, 0755) < 0))
		rc = gw_error_set_errno(GW_EIO, "cannot create %s", dir);
	if (rc == 0 && (rc = gw_restore__plan_segments(index, dep->repository, &p)) == 0 &&
	    (rc = gw_restore__build(store, dep->repository, &p, dir, 1, NULL, NULL)) == 0)
		rc = move_packs(dir, pool_dir);
	gw_remove_tree(dir);
	gw_restore__plan_dispose(&p);
	return rc;
}

/*
 * The pool's generation the member relies on (its full backup at the
 * member's base_lsn, and its segments up to the member's pool LSN),
 * installed beside the pool's own pack: the pool was restored in a later
 * generation (DESIGN.md 19). Held under the registry's lock: two members
 * wanting the same generation install it once.
 */
static int add_generation(gw_store *store, gw_index *index, gw_restore_pools *r, const gw_restore_opts *opts,
			  const char *pool_dir, const gw_pool_dep *dep)
{
	gw_restore_opts po = *opts;
	gw_restore_plan p;
	char name[128], path[4400];
	struct stat st;
	int rc;
	po.until_set = 0;
	po.lsn = dep->base_lsn;
	memset(&p, 0, sizeof(p));
	if (r)
		pthread_mutex_lock(&r->lock);
	if (dep->lsn > dep->base_lsn) {
		rc = add_generation_span(store, index, opts, pool_dir, dep);
	} else if ((rc = gw_restore__plan(store, index, dep->repository, &po, &p)) == 0) {
		snprintf(path, sizeof(path), "%s/objects/pack/pack-%s.pack", pool_dir, p.m.pack_checksum);
		if (stat(path, &st) < 0)
			rc = gw_restore__build_full_pack(store, &p.m, pool_dir, name, sizeof(name));
	}
	gw_restore__plan_dispose(&p);
	if (r)
		pthread_mutex_unlock(&r->lock);
	return rc;
}

int gw_restore__pool(gw_store *store, gw_index *index, const char *member, const gw_restore_opts *opts,
		     const gw_pool_dep *dep, char *pool_dir, size_t pool_dir_size)
{
	gw_restore_opts po = *opts;
	gw_restore_result res;
	int rc;

	if (snprintf(pool_dir, pool_dir_size, "%s/%s", opts->to, dep->repository) >= (int)pool_dir_size)
		return gw_error_set(GW_EINVALID, "repository %s: its pool's path is too long", member);
	if (!opts->until_set)
		po.lsn = dep->base_lsn; /* the member's full backup alone: the pool's it was written against */
	po.dry_run = 0;
	rc = gw_restore_run(store, index, dep->repository, &po, &res);
	gw_restore_result_dispose(&res);
	if (rc < 0)
		return gw_error_prefix("repository %s: its pool %s (LSN %llu)", member, dep->repository,
				       (unsigned long long)dep->lsn);
	if (res.full_lsn == dep->base_lsn && dep->lsn <= res.lsn)
		return 0;
	/* Another generation of the pool: the member's is added, up to the pool LSN it names. */
	if (res.full_lsn != dep->base_lsn)
		return add_generation(store, index, opts->pools, opts, pool_dir, dep) < 0
			       ? gw_error_prefix("repository %s: its pool %s (LSN %llu)", member, dep->repository,
						 (unsigned long long)dep->lsn)
			       : 0;
	return gw_error_set(GW_ECORRUPT,
			    "repository %s: its pool %s was restored at LSN %llu; the member needs the pool's LSN %llu, "
			    "archived before the member's record",
			    member, dep->repository, (unsigned long long)res.lsn, (unsigned long long)dep->lsn);
}

/*
 * --standalone: the objects dir's refs reach that its own packs do not hold
 * (in the pool restored at pool_dir) written as a second pack of its own;
 * the alternates used to read them are removed. A walk of the member's whole
 * history (nothing is archived to stop at): the cost of a self-contained copy.
 */
int gw_restore__standalone(const char *dir, const char *pool_dir, const char *rel, const gw_refstate *st,
			   size_t hash_len)
{
	gw_odb_options linked_o = {.label = rel, .alternates = 1}, own_o = {.label = rel};
	gw_odb *linked = NULL, *own = NULL;
	gw_objset *empty = NULL;
	unsigned char *tips = NULL, *found = NULL;
	char path[4400], line[4400], *pack_path = NULL, *idx_path = NULL;
	size_t ntips = 0, nfound = 0, nneed = 0, i;
	int rc;

	snprintf(line, sizeof(line), "%s/objects\n", pool_dir);
	if ((rc = gw_restore__write_file(dir, "objects/info/alternates", line)) < 0)
		return rc;
	if (!(tips = malloc((st->nrefs + 1) * hash_len))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	for (i = 0; i <= st->nrefs; i++) {
		const gw_ref *r = i < st->nrefs ? &st->refs[i] : &st->head;
		if (r->name && !r->symbolic && !r->dangling)
			memcpy(tips + ntips++ * hash_len, r->oid, hash_len);
	}
	snprintf(path, sizeof(path), "%s/.gitwal-standalone-set", dir);
	if ((rc = gw_odb_open(&linked, dir, &linked_o)) < 0 || (rc = gw_odb_open(&own, dir, &own_o)) < 0 ||
	    (rc = gw_objset_open(&empty, path, hash_len)) < 0)
		goto out;
	if ((rc = gw_walk_unarchived(linked, rel, dir, empty, tips, ntips, &found, &nfound)) < 0)
		goto out;
	for (i = 0; i < nfound; i++) {
		gw_oid oid;
		gw_oid_from_raw(&oid, found + i * hash_len, hash_len);
		if ((rc = gw_odb_exists(own, &oid)) < 0)
			goto out;
		if (rc == 0)
			memmove(found + nneed++ * hash_len, found + i * hash_len, hash_len);
	}
	rc = 0;
	snprintf(path, sizeof(path), "%s/objects/pack/pack", dir);
	if (nneed && (rc = gw_pack_write_objects(linked, found, nneed, path, &pack_path, &idx_path)) < 0)
		goto out;
out:
	gw_objset_free(empty);
	gw_odb_free(linked);
	gw_odb_free(own);
	free(tips);
	free(found);
	free(pack_path);
	free(idx_path);
	snprintf(path, sizeof(path), "%s/.gitwal-standalone-set", dir);
	gw_remove_tree(path);
	snprintf(path, sizeof(path), "%s/objects/info/alternates", dir);
	if (unlink(path) < 0 && rc == 0)
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot remove %s", rel, path);
	return rc;
}
