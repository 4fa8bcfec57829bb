/*
 * One full backup of one repository.
 *
 * The bundle and the pack index sidecar are streamed to writers that are
 * not yet committed; then the LSN is claimed with the full backup's log
 * record at the LSN's one key (DESIGN.md 3), create-only, so a second
 * writer of any kind fails there; then the bundle and the index are
 * committed, then the manifest. A repository found damaged while streaming,
 * or an LSN lost to another writer, leaves nothing in the store (the lost
 * race starts again at the next LSN). After the claim, the refs are read
 * once more: equal to the snapshot's, the backup is the repository's state
 * at its claim, and takes the claim's time (later than every record at a
 * lower LSN: claims succeed in LSN order); changed, it is taken again under
 * the same claim, and stamped with that snapshot's start. A caller may
 * have the backup give way just before its claim (before_claim: the
 * archiver's policy full backups give way to its segments, DESIGN.md 10.6).
 *
 * The manifest is the commit point: it carries
 * the size and SHA-256 of the other parts, so a reader that finds it finds
 * complete parts, and a crash before it leaves only parts no reader uses
 * (the audit reports them). The index row comes after the manifest; a crash
 * between the two is repaired by gw_index_sync().
 *
 * Bytes flow once: pack splicer (SHA-1) -> async hand-off to a second thread ->
 * SHA-256 filter -> store writer.
 *
 * A member of an object pool (DESIGN.md 19), when the caller accepts one:
 * the pool is archived first, as a repository of its own (a full backup,
 * unless its latest one in the index has the live pool's refs: then that
 * one, so that forks sharing an unchanged pool do not store it again); the
 * member's bundle then splices its own packs and adds only the objects its
 * refs reach that are in neither its packs nor that full backup (read from
 * the live pool: it got them since), and its manifest (version 2) names the
 * pool and that full backup. Within a run (gw_backup_run) a repository is
 * backed up once: a pool a member backed up is not backed up again when the
 * run reaches the pool itself.
 */
#include "gitwal/backup.h"
#include "gitwal/error.h"
#include "gitwal/layout.h"
#include "gitwal/manifest.h"
#include "gitwal/segment.h"
#include "backup/source.h"
#include "gitwal/fs.h"
#include "gitwal/odb.h"
#include "wal/objset.h"
#include "wal/segment_build.h"

#include <pthread.h>
#include <unistd.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BACKUP_ATTEMPTS 5
/* Other writers taking the LSN this many times in a row is not a race but a storm. */
#define CLAIM_ATTEMPTS 16

/* A pooled member's pool, as archived just before it (DESIGN.md 19). */
typedef struct {
	gw_pool_dep dep;
	char scratch[4096]; /* local files: the pool's index, the pack of objects only the live pool has */
	gw_objset *set;     /* the pool's archived objects at dep.lsn */
} pool_ctx;

typedef struct {
	char *keys[3];
	gw_store_writer *bundle_w, *idx_w;
	gw_digest_filter bundle_f, idx_f;
	gw_async_sink *bundle_async;
	int filters;
} backup_parts;

static void parts_dispose(backup_parts *p)
{
	int i;
	gw_async_sink_free(p->bundle_async);
	gw_store_writer_free(p->bundle_w);
	gw_store_writer_free(p->idx_w);
	if (p->filters) {
		gw_digest_filter_dispose(&p->bundle_f);
		gw_digest_filter_dispose(&p->idx_f);
	}
	for (i = 0; i < 3; i++)
		free(p->keys[i]);
	memset(p, 0, sizeof(*p));
}

static int bundle_line(gw_sink *out, const gw_source *src, const gw_ref *r, uint64_t *total)
{
	char line[8192], hex[GW_HEX_MAX];
	int n;
	if (r->dangling)
		return 0;
	gw_hex_encode(hex, r->oid, src->hash_len);
	n = snprintf(line, sizeof(line), "%s %s\n", hex, r->name);
	if (n < 0 || (size_t)n >= sizeof(line))
		return gw_error_set(GW_EINVALID, "repository %s: reference name too long", src->rel);
	*total += (uint64_t)n;
	return gw_sink_write(out, line, (size_t)n);
}

/*
 * "# v2 git bundle" (sha1; git writes v3 only when it must), or for sha256 "# v3
 * git bundle" and its capability "@object-format=sha256" (git's own form, which
 * it needs to read the ids), one "<oid> <ref>" line per ref and for HEAD, an
 * empty line (DESIGN.md 4.1).
 */
static int write_bundle_header(gw_source *src, gw_sink *out, uint64_t *len)
{
	static const char v2[] = "# v2 git bundle\n", v3[] = "# v3 git bundle\n@object-format=sha256\n";
	const char *first = src->hash_len == 32 ? v3 : v2;
	uint64_t total = strlen(first) + 1;
	size_t i;
	int rc;
	if ((rc = gw_sink_write(out, first, strlen(first))) < 0)
		return rc;
	for (i = 0; i < src->nrefs; i++)
		if ((rc = bundle_line(out, src, &src->refs[i], &total)) < 0)
			return rc;
	if ((rc = bundle_line(out, src, &src->head, &total)) < 0 || (rc = gw_sink_write(out, "\n", 1)) < 0)
		return rc;
	*len = total;
	return 0;
}

static void ref_to_manifest(const gw_ref *r, gw_manifest_ref *m, size_t hash_len)
{
	m->name = r->name;
	m->symbolic = r->symbolic;
	if (r->dangling)
		m->oid[0] = '\0';
	else
		gw_hex_encode(m->oid, r->oid, hash_len);
}

static int write_manifest(gw_store *store, gw_source *src, backup_parts *p, const gw_files *files,
			  const pool_ctx *pool, uint64_t lsn, int64_t time_us, uint64_t pack_offset,
			  const gw_splice_stats *stats, gw_full_record *rec)
{
	gw_manifest m;
	gw_manifest_ref *refs = NULL;
	char *text = NULL;
	unsigned char digest[32];
	size_t len, i;
	int rc;

	memset(&m, 0, sizeof(m));
	if (src->nrefs && !(refs = calloc(src->nrefs, sizeof(*refs))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < src->nrefs; i++)
		ref_to_manifest(&src->refs[i], &refs[i], src->hash_len);
	m.repository = src->rel;
	m.lsn = lsn;
	m.time_us = time_us;
	snprintf(m.object_format, sizeof(m.object_format), "%s", src->object_format);
	ref_to_manifest(&src->head, &m.head, src->hash_len);
	m.head.name = "HEAD";
	m.refs = refs;
	m.nrefs = src->nrefs;
	m.bundle.key = p->keys[0];
	m.bundle.size = p->bundle_f.bytes;
	gw_digest_filter_finish(&p->bundle_f, m.bundle.sha256);
	m.pack_offset = pack_offset;
	m.objects = stats->objects;
	gw_hex_encode(m.pack_checksum, stats->pack_checksum, src->hash_len);
	m.idx.key = p->keys[1];
	m.idx.size = p->idx_f.bytes;
	gw_digest_filter_finish(&p->idx_f, m.idx.sha256);
	m.tool = "gitwal " GITWAL_VERSION_STRING;
	m.files = *files; /* borrowed: m is not disposed */
	if (pool)
		m.pool = pool->dep; /* borrowed too */
	rc = gw_manifest_write(&m, &text, &len);
	free(refs);
	if (rc < 0)
		return rc;
	if ((rc = gw_store_put(store, p->keys[2], text, len)) == 0) {
		gw_hash_buffer(GW_HASH_SHA256, text, len, digest);
		gw_hex_encode(rec->manifest_sha256, digest, 32);
		rec->manifest_size = len;
		rec->bundle_size = m.bundle.size;
		rec->idx_size = m.idx.size;
	}
	free(text);
	return rc;
}

/*
 * A pooled member's objects beyond its own packs: the walk from its refs
 * over member + pool stops at the pool's archived objects; what it meets
 * that the snapshot does not hold is in the live pool only, and goes into
 * a pack of its own, spliced with the member's.
 */
static int add_pool_objects(gw_source *src, const char *root, pool_ctx *pool)
{
	gw_odb_options oo = {.label = src->rel, .alternates = 1, .root = root};
	unsigned char *tips = NULL, *found = NULL;
	char *pack_path = NULL, *idx_path = NULL, base[4200];
	size_t ntips = 0, nfound = 0, nextra = 0, i, hl = src->hash_len;
	gw_odb *odb = NULL;
	int rc;

	if (!(tips = malloc((src->nrefs + 1) * hl)))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i <= src->nrefs; i++) {
		const gw_ref *r = i < src->nrefs ? &src->refs[i] : &src->head;
		if (!r->dangling && (i < src->nrefs || !r->symbolic))
			memcpy(tips + ntips++ * hl, r->oid, hl);
	}
	if ((rc = gw_odb_open(&odb, src->path, &oo)) < 0)
		goto out;
	if ((rc = gw_walk_unarchived(odb, src->rel, src->path, pool->set, tips, ntips, &found, &nfound)) < 0) {
		/* An object git gc or a pool repack moved away mid-walk: the snapshot again. */
		if (rc == GW_ENOTFOUND)
			rc = gw_error_set(GW_ECHANGED, "%s", gw_error_message());
		goto out;
	}
	for (i = 0; i < nfound; i++) {
		if ((rc = gw_source_has_object(src, found + i * hl)) < 0)
			goto out;
		if (rc == 0)
			memmove(found + nextra++ * hl, found + i * hl, hl);
	}
	rc = 0;
	if (!nextra)
		goto out;
	snprintf(base, sizeof(base), "%s/pool-objects", pool->scratch);
	if ((rc = gw_pack_write_objects(odb, found, nextra, base, &pack_path, &idx_path)) < 0 ||
	    (rc = gw_source_add_pack(src, pack_path, idx_path)) < 0)
		goto out;
out:
	/* Unlinked now: the snapshot holds them open until the splice is done. */
	gw_pack_written_discard(pack_path, idx_path);
	free(tips);
	free(found);
	gw_odb_free(odb);
	return rc;
}

/* What this attempt will write, as far as known before writing: its packs (for a progress display). */
static void plan_bytes(const gw_backup_opts *opts, const gw_source *src, uint64_t *planned)
{
	uint64_t bytes = 0;
	size_t i;
	for (i = 0; i < src->npacks; i++)
		bytes += src->packs[i].pack_size;
	if (opts && bytes > *planned) {
		GW_PROGRESS_ADD(opts->progress, planned_bytes, bytes - *planned);
		*planned = bytes;
	}
}

/*
 * One attempt. *claimed is the LSN this backup holds (0: none yet); *lost
 * is set when another writer took the LSN first (GW_ECHANGED: try again);
 * *gave_way when opts->before_claim said not to claim (no further attempt).
 */
static int backup_once(gw_store *store, gw_index *index, gw_source *src, const char *root, pool_ctx *pool,
		       const gw_backup_opts *opts, uint64_t *planned, uint64_t *claimed, int *lost, int *gave_way,
		       gw_backup_result *res)
{
	backup_parts p;
	gw_splice_stats stats;
	gw_full_record rec;
	gw_files files;
	uint64_t lsn = *claimed, header_len = 0;
	int64_t time_us = gw_time_now_us(); /* before the snapshot: its refs hold from here to their second reading */
	int rc, i;

	memset(&p, 0, sizeof(p));
	memset(&rec, 0, sizeof(rec));
	memset(&files, 0, sizeof(files));
	*lost = *gave_way = 0;
	if ((rc = gw_source_snapshot(src)) < 0)
		return rc;
	/*
	 * With the snapshot, before anything is written. A path gitwal cannot
	 * keep is recorded as skipped, and even a directory it cannot read leaves
	 * each path skipped: the refs and objects are archived whatever is there
	 * (DESIGN.md 4.5). Only out of memory fails.
	 */
	if ((rc = gw_files_collect(&files, src->path, src->rel)) == GW_EIO)
		gw_error_clear();
	else if (rc < 0)
		goto out;
	res->files_skipped = gw_files_nskipped(&files);
	if (pool && (rc = add_pool_objects(src, root, pool)) < 0)
		goto out;
	plan_bytes(opts, src, planned);
	if (!lsn && (rc = gw_layout_next_lsn(store, src->rel, &lsn)) < 0)
		goto out;
	for (i = 0; i < 3; i++)
		if (!(p.keys[i] = gw_layout_key(src->rel, lsn, (gw_key_kind)(GW_KEY_FULL_BUNDLE + i)))) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			goto out;
		}
	if ((rc = gw_store_write_open(&p.bundle_w, store, p.keys[0], GW_STORE_SIZE_UNKNOWN)) < 0 ||
	    (rc = gw_store_write_open(&p.idx_w, store, p.keys[1], GW_STORE_SIZE_UNKNOWN)) < 0)
		goto out;
	if ((rc = gw_digest_filter_init(&p.bundle_f, GW_HASH_SHA256, gw_store_writer_sink(p.bundle_w))) < 0 ||
	    (rc = gw_digest_filter_init(&p.idx_f, GW_HASH_SHA256, gw_store_writer_sink(p.idx_w))) < 0)
		goto out;
	p.filters = 1;
	/* Reading and Git's SHA-1 on this thread; SHA-256 and writing on another. */
	if ((rc = gw_async_sink_new(&p.bundle_async, &p.bundle_f.sink)) < 0)
		goto out;
	if ((rc = write_bundle_header(src, gw_async_sink_as_sink(p.bundle_async), &header_len)) < 0)
		goto out;
	if ((rc = gw_pack_splice(src->rel, src->packs, src->npacks, src->loose, src->nloose, src->hash_len,
				 gw_async_sink_as_sink(p.bundle_async), &p.idx_f.sink, &stats)) < 0)
		goto out;
	if ((rc = gw_async_sink_finish(p.bundle_async)) < 0)
		goto out;
	if (!*claimed) {
		/*
		 * Claimed now, the backup is the state at its claim (its refs hold
		 * from the snapshot to the reading after): stamped with the claim's
		 * time, later than any record at a lower LSN, since claims succeed
		 * in LSN order.
		 */
		if (opts && opts->before_claim && (rc = opts->before_claim(opts->payload, lsn)) < 0) {
			*gave_way = 1;
			goto out;
		}
		time_us = gw_time_now_us();
		rc = gw_segment_claim_full(store, src->rel, lsn, time_us);
		if (rc == GW_EEXISTS) {
			*lost = 1;
			rc = gw_error_set(GW_ECHANGED, "repository %s: another writer took LSN %llu", src->rel,
					  (unsigned long long)lsn);
		}
		if (rc < 0)
			goto out;
		*claimed = lsn;
	}
	if ((rc = gw_source_refs_unchanged(src)) < 0)
		goto out;
	if ((rc = gw_store_writer_commit(p.bundle_w)) < 0 || (rc = gw_store_writer_commit(p.idx_w)) < 0)
		goto out;
	if ((rc = write_manifest(store, src, &p, &files, pool, lsn, time_us, header_len, &stats, &rec)) < 0)
		goto out;
	res->lsn = lsn;
	res->time_us = time_us;
	res->bundle_bytes = rec.bundle_size;
	res->objects = stats.objects;
	res->refs = src->nrefs;
	res->duplicates = stats.duplicates;
	res->loose = stats.loose;
	if (index) {
		rec.repository = src->rel;
		rec.lsn = lsn;
		rec.time_us = time_us;
		rec.manifest_key = p.keys[2];
		rec.objects = stats.objects;
		rec.refs = src->nrefs;
		if (pool) {
			rec.pool = pool->dep.repository;
			rec.pool_base_lsn = pool->dep.base_lsn;
		}
		rc = gw_index_full_add(index, &rec);
	}
out:
	parts_dispose(&p);
	gw_files_dispose(&files);
	gw_source_release_snapshot(src);
	return rc;
}

int gw_backup_full(gw_store *store, gw_index *index, const char *root, const char *rel, gw_backup_result *result)
{
	return gw_backup_full_opts(store, index, root, rel, NULL, result);
}

static void pool_dispose(pool_ctx *pool)
{
	gw_objset_free(pool->set);
	if (pool->scratch[0])
		gw_remove_tree(pool->scratch);
	gw_pool_dep_dispose(&pool->dep);
}

/*
 * The pool's latest full backup in the index, when its refs and HEAD are
 * the live pool's now (or whatever they are, with any): 1 and *lsn; 0 when
 * there is none or they differ. Any archived full backup of the pool would
 * be correct (what it lacks the member's walk finds in the live pool); an
 * unchanged one costs nothing.
 */
static int pool_current(gw_store *store, gw_index *index, const char *root, const char *rel, int any, uint64_t *lsn)
{
	gw_full_record rec;
	gw_manifest m;
	gw_source *live = NULL;
	gw_ref *refs = NULL, head;
	gw_manifest_ref r;
	size_t n = 0, i;
	int rc, same = 0;

	memset(&m, 0, sizeof(m));
	memset(&head, 0, sizeof(head));
	if (!index || (rc = gw_index_full_find(index, rel, 0, &rec)) == GW_ENOTFOUND) {
		gw_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	if (any) {
		*lsn = rec.lsn;
		gw_full_record_dispose(&rec);
		return 1;
	}
	if ((rc = gw_manifest_load(store, &rec, &m)) < 0 || (rc = gw_source_open(&live, root, rel)) < 0 ||
	    (rc = gw_source_read_refs(live, &refs, &n, &head)) < 0)
		goto out;
	same = n == m.nrefs;
	for (i = 0; same && i <= n; i++) {
		const gw_manifest_ref *a = i < n ? &m.refs[i] : &m.head;
		ref_to_manifest(i < n ? &refs[i] : &head, &r, live->hash_len);
		same = (i == n || !strcmp(a->name, r.name)) && !strcmp(a->oid, r.oid) &&
		       !a->symbolic == !r.symbolic && (!a->symbolic || !strcmp(a->symbolic, r.symbolic));
	}
	*lsn = rec.lsn;
out:
	gw_refs_free(refs, n);
	gw_ref_dispose(&head);
	gw_source_free(live);
	gw_manifest_dispose(&m);
	gw_full_record_dispose(&rec);
	return rc < 0 ? rc : same;
}

/* One member at a time settles whether its pool needs a full backup: the others then find it done. */
static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * The member's pool archived first (its full backup, so that its archived
 * set is that backup's index: DESIGN.md 19, lsn == base_lsn), then that
 * set read back from the store into local scratch files for the walk.
 */
static int pool_first(gw_store *store, gw_index *index, const char *root, const gw_source *src,
		      const gw_backup_opts *opts, pool_ctx *pool)
{
	gw_backup_opts po = {.progress = opts->progress, .run = opts->run};
	gw_backup_result pres;
	const char *tmp = getenv("TMPDIR");
	char *idx_key;
	int rc;

	memset(&pres, 0, sizeof(pres));
	pthread_mutex_lock(&pool_lock);
	if ((rc = pool_current(store, index, root, src->pool, opts->pool_archived, &pres.lsn)) == 0)
		rc = gw_backup_full_opts(store, index, root, src->pool, &po, &pres);
	pthread_mutex_unlock(&pool_lock);
	if (rc < 0)
		return gw_error_prefix("repository %s: its pool", src->rel);
	if (!(pool->dep.repository = strdup(src->pool)))
		return gw_error_set(GW_ERROR, "out of memory");
	pool->dep.base_lsn = pool->dep.lsn = pres.lsn;
	snprintf(pool->scratch, sizeof(pool->scratch), "%s/gitwal-pool-XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(pool->scratch)) {
		rc = gw_error_set_errno(GW_EIO, "cannot create a directory like %s", pool->scratch);
		pool->scratch[0] = '\0';
		return rc;
	}
	if (!(idx_key = gw_layout_key(src->pool, pres.lsn, GW_KEY_FULL_IDX)))
		return gw_error_set(GW_ERROR, "out of memory");
	if ((rc = gw_objset_open(&pool->set, pool->scratch, src->hash_len)) == 0)
		rc = gw_objset_reset(pool->set, store, idx_key, pres.lsn);
	free(idx_key);
	return rc;
}

static int backup_full(gw_store *store, gw_index *index, const char *root, const char *rel,
		       const gw_backup_opts *opts, gw_backup_result *result)
{
	struct timespec t0, t1;
	gw_source *src = NULL;
	pool_ctx pool;
	unsigned attempts = 0, lost_claims = 0;
	uint64_t claimed = 0, planned = 0;
	int rc, lost, gave_way = 0;

	memset(result, 0, sizeof(*result));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(&pool, 0, sizeof(pool));
	rc = opts && opts->pooled ? gw_source_open_pooled(&src, root, rel) : gw_source_open(&src, root, rel);
	if (rc < 0)
		return rc;
	if (src->pool && (rc = pool_first(store, index, root, src, opts, &pool)) < 0) {
		pool_dispose(&pool);
		gw_source_free(src);
		return rc;
	}
	/* A loose object pruned mid-copy means a gc ran, refs moved past the claim, or the LSN was taken: again. */
	do {
		rc = backup_once(store, index, src, root, src->pool ? &pool : NULL, opts, &planned, &claimed, &lost,
				 &gave_way, result);
		attempts += src->attempts;
		lost_claims += (unsigned)lost;
	} while (rc == GW_ECHANGED && !gave_way &&
		 (lost ? lost_claims < CLAIM_ATTEMPTS : ++result->attempts < BACKUP_ATTEMPTS));
	result->attempts = attempts;
	pool_dispose(&pool);
	gw_source_free(src);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	result->seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	if (rc < 0 && strncmp(gw_error_message(), "repository ", 11) != 0)
		gw_error_prefix("repository %s", rel);
	return rc;
}

/* A repository of the run: being backed up by one thread (done 0), or backed up (done 1, res). */
typedef struct {
	char *rel;
	int done;
	gw_backup_result res;
} run_entry;

struct gw_backup_run {
	pthread_mutex_t lock;
	pthread_cond_t settled;
	run_entry *v;
	size_t n, cap;
};

int gw_backup_run_new(gw_backup_run **out)
{
	gw_backup_run *run = calloc(1, sizeof(*run));
	*out = NULL;
	if (!run)
		return gw_error_set(GW_ERROR, "out of memory");
	pthread_mutex_init(&run->lock, NULL);
	pthread_cond_init(&run->settled, NULL);
	*out = run;
	return 0;
}

void gw_backup_run_free(gw_backup_run *run)
{
	size_t i;
	if (!run)
		return;
	for (i = 0; i < run->n; i++)
		free(run->v[i].rel);
	free(run->v);
	pthread_cond_destroy(&run->settled);
	pthread_mutex_destroy(&run->lock);
	free(run);
}

static run_entry *run_find(gw_backup_run *run, const char *rel)
{
	size_t i;
	for (i = 0; i < run->n; i++)
		if (!strcmp(run->v[i].rel, rel))
			return &run->v[i];
	return NULL;
}

/*
 * 1 and *result: rel was backed up in this run already (waiting while another
 * thread is at it). 0: rel is this thread's to back up (run_settle after).
 */
static int run_claim(gw_backup_run *run, const char *rel, gw_backup_result *result)
{
	run_entry *e, *v;
	char *copy;
	pthread_mutex_lock(&run->lock);
	while ((e = run_find(run, rel)) && !e->done)
		pthread_cond_wait(&run->settled, &run->lock);
	if (e) {
		*result = e->res;
		pthread_mutex_unlock(&run->lock);
		return 1;
	}
	if (run->n == run->cap) {
		size_t cap = run->cap ? 2 * run->cap : 16;
		if (!(v = realloc(run->v, cap * sizeof(*v)))) {
			pthread_mutex_unlock(&run->lock);
			return gw_error_set(GW_ERROR, "out of memory");
		}
		run->v = v;
		run->cap = cap;
	}
	if (!(copy = strdup(rel))) {
		pthread_mutex_unlock(&run->lock);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	memset(&run->v[run->n], 0, sizeof(run->v[run->n]));
	run->v[run->n++].rel = copy;
	pthread_mutex_unlock(&run->lock);
	return 0;
}

/* The backup of rel claimed by run_claim ended: kept when it succeeded, forgotten (to be tried again) when not. */
static void run_settle(gw_backup_run *run, const char *rel, int rc, const gw_backup_result *result)
{
	run_entry *e;
	pthread_mutex_lock(&run->lock);
	e = run_find(run, rel);
	if (rc == 0) {
		e->done = 1;
		e->res = *result;
	} else {
		free(e->rel);
		*e = run->v[--run->n];
	}
	pthread_cond_broadcast(&run->settled);
	pthread_mutex_unlock(&run->lock);
}

int gw_backup_full_opts(gw_store *store, gw_index *index, const char *root, const char *rel,
			const gw_backup_opts *opts, gw_backup_result *result)
{
	int rc;
	if (!opts || !opts->run)
		return backup_full(store, index, root, rel, opts, result);
	memset(result, 0, sizeof(*result));
	if ((rc = run_claim(opts->run, rel, result)) != 0)
		return rc < 0 ? rc : 0;
	rc = backup_full(store, index, root, rel, opts, result);
	run_settle(opts->run, rel, rc, result);
	return rc;
}
