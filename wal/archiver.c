/*
 * The archiver's unit of work (see archive.h): bring the archive of one
 * repository up to its current state.
 *
 * Per repository it keeps, in memory, the archived state: the refs and HEAD
 * as of the last record, the last LSN and that record's digest (the next
 * segment links to it), the generation's full backup and its object set.
 * The state is loaded from the index and store on first use (latest full
 * backup, then its segments replayed), so a restart, or a crash between a
 * segment's store write and its index row, resumes exactly: the store is the
 * truth and the LSN of the next record comes from listing it.
 *
 * Capture never waits on the store: a segment is built into the local spool
 * (durable there), and upload threads take it to the store (wal/spool.c),
 * reporting back through events that gw_archiver_tick() takes in this
 * thread. A repository whose sync fails is retried on its own backoff.
 *
 * In the service, what needs the store runs on job threads too: loading a
 * repository's state and its first full backup (the repository is held:
 * not captured, the first change seen remembered, until the job reports),
 * and a policy's full backup (not held: its changes go on into the spool;
 * the full gives way just before its claim if one did, else the repository
 * is held while the claim commits, then reloaded). The loop's thread only
 * reads local things (refs, objects, spool, index) and writes the spool.
 * Which thread may touch a repository's state: the loop's, except while a
 * load job holds it (then only the job's); `claiming` and `lsn_epoch` are
 * shared with a policy's full backup under lsn_lock.
 *
 * A pooled member (DESIGN.md 19) is archived against its pool's generation:
 * its full backups name the pool's latest full backup (the pool itself is
 * archived as a repository of its own), and its segments name the same and
 * stop their walk at that full backup's objects (a read-only set per pool
 * generation, shared by the pool's members). Linking, unlinking, another
 * pool or a new pool generation make the member's next full backup due.
 */
#include "gitwal/archive.h"
#include "gitwal/array.h"
#include "gitwal/backup.h"
#include "gitwal/error.h"
#include "gitwal/files.h"
#include "gitwal/fs.h"
#include "gitwal/layout.h"
#include "gitwal/manifest.h"
#include "gitwal/metrics.h"
#include "gitwal/repo.h"
#include "gitwal/segment.h"
#include "util/thread.h"
#include "wal/segment_build.h"
#include "wal/spool.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* The size trigger waits for this much segment data: tiny repositories would churn. */
#define FULL_MIN_SEGMENT_BYTES (16u << 20)
/* A repository whose sync failed is tried again after 1 s, doubling up to a minute. */
#define RETRY_FIRST_MS 1000
#define RETRY_MAX_MS 60000

typedef struct {
	char *rel;
	int loaded;
	int exists;           /* the archive's last word: present or deleted */
	gw_refstate refs;
	gw_refs_reader *reader; /* its refs, packed-refs parsed only when it changed */
	gw_refs_view seen;      /* the refs as last read, while `refs` equals them */
	int seen_valid;
	uint64_t last_lsn;
	char last_digest[65];
	uint64_t base_lsn;    /* the generation's full backup; 0: none */
	size_t hash_len;      /* the generation's ids: 20 (sha1) or 32 (sha256), from its full backup's manifest */
	int64_t full_time_us;
	uint64_t full_bytes;
	uint64_t segments_since_full, bytes_since_full;
	char files_digest[65];    /* of its archived files (gw_files_digest): a capture finding others records them */
	char *pool;               /* a pooled member's generation's pool (DESIGN.md 19), or NULL */
	uint64_t pool_base;       /* ... and the pool's full backup it names */
	uint64_t pool_lsn;        /* ... and the pool's LSN its last record names (never lower in a generation) */
	uint64_t pool_lsn_saved;  /* ... the one in its pool.lsn file (0: not written by this process) */
	const char *pool_why;     /* its pool changed (linked, unlinked, another, a new generation): a full backup is due */
	gw_objset *objset;
	int64_t last_record_us;   /* time of the last archived record */
	int64_t unobserved_since; /* states since then were not watched (archiver down): next segment is a gap */
	int64_t dirty_since;      /* changed while the spool was full: archive when there is room */
	int resync;               /* its spooled segments were set aside: archive it again from the store */
	int64_t resync_last_us;   /* ... the latest time they recorded: no gap when none is after the store's last record */
	int64_t retry_at_ms;      /* its last sync failed: try again then (monotonic ms; 0: not failing) */
	int64_t retry_backoff_ms;
	int64_t retry_changed_us; /* when the change that failed was first seen */
	int foreign;              /* another archiver writes it: this one stopped (DESIGN.md 3) */
	char *refused;            /* why gitwal does not archive it (shallow, reftable...), as last logged */
	/* Store jobs (the service only; DESIGN.md 10.6). */
	struct ajob *job;         /* in flight for it: a load (it is held) or a policy's full backup */
	int64_t held_since;       /* the first change seen while it could not be captured (0: none) */
	int reload_watched;       /* its next load follows a full backup it was watched through */
	unsigned reloads;         /* reloads in a row after a capture lost its LSN or saw the repository move */
	int conflict;             /* a spool conflict came while a load held it: applied when the load reports */
	uint64_t conflict_lsn;
	int conflict_full, conflict_unreadable;
	int64_t conflict_last_us;
	/* Under the archiver's lsn_lock, shared with its policy full backup's thread. */
	int claiming;             /* its policy full backup claims the next LSN: not captured until it reports */
	uint64_t lsn_epoch;       /* LSNs the loop gave its segments: a policy full backup gives way when it moved */
} arepo;

typedef enum { JOB_LOAD = 1, JOB_POLICY_FULL } ajob_kind;

/*
 * The archived objects of one pool generation (its full backup's index),
 * read-only, shared by the pool's members' segment walks. Made by whichever
 * thread loads a member first (under pools_lock), searched by the loop's
 * thread only; kept for the archiver's life under $STATE/pools/.
 */
typedef struct {
	char *rel;
	uint64_t base_lsn;
	gw_objset *set;
} apool;

/* A store job: built and read by the loop's thread, run by one job thread. */
typedef struct ajob {
	ajob_kind kind;
	struct gw_archiver *a;
	arepo *r;
	int asked;          /* LOAD: the loop asked gw_spool_store_may_try for it (and it may) */
	const char *why;    /* POLICY_FULL: segments, size or age */
	uint64_t epoch;     /* POLICY_FULL: the repository's lsn_epoch when the job began */
	int rc;             /* the outcome: 0 or a GW_E* code */
	char *message;      /* the job thread's error message */
	int gave_way;       /* POLICY_FULL: gave way to a segment spooled meanwhile */
	int claimed;        /* POLICY_FULL: passed the gate: the repository is claiming */
	struct ajob *next;
} ajob;

/* Jobs in the order they came: waiting for a thread, or done and waiting for the loop. */
typedef struct {
	ajob *head, *tail;
} ajob_queue;

static void jobs_push(ajob_queue *q, ajob *j)
{
	j->next = NULL;
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
}

/* The first job, taken off q; NULL when q is empty. */
static ajob *jobs_pop(ajob_queue *q)
{
	ajob *j = q->head;
	if (!j)
		return NULL;
	if (!(q->head = j->next))
		q->tail = NULL;
	j->next = NULL;
	return j;
}

struct gw_archiver {
	gw_store *store;
	gw_index *index;
	gw_archiver_opts opts;
	char *scratch; /* state_dir/tmp */
	gw_spool *spool;
	arepo **repos; /* sorted by rel */
	size_t nrepos, cap;
	/*
	 * The one set of counters (DESIGN.md 10.7): kept whether or not
	 * /metrics is served, and read by gw_archiver_get_stats too.
	 */
	gw_metrics *registry;
	gw_metrics_archiver metrics;

	/* Store jobs: loads and full backups off the loop's thread (the service). */
	pthread_mutex_t jobs_lock; /* the queues and stopping */
	pthread_cond_t jobs_cond;
	ajob_queue queue;          /* waiting for a thread */
	ajob_queue done;           /* finished: the loop takes them (gw_archiver_tick) */
	pthread_t *threads;
	unsigned nthreads;
	int stopping;
	size_t holding;            /* load jobs queued or running (each holds its repository) */
	pthread_mutex_t lsn_lock;  /* every repository's claiming and lsn_epoch */
	pthread_mutex_t pools_lock; /* pools (the list) */
	pthread_mutex_t pools_build_lock; /* making a pool generation's set (pool_set) */
	apool **pools;
	size_t npools, pools_cap;
};

static void log_event(gw_archiver *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void log_event(gw_archiver *a, const char *fmt, ...)
{
	char when[40];
	va_list ap;
	if (!a->opts.log)
		return;
	gw_time_format(gw_time_now_us(), when, sizeof(when));
	flockfile(a->opts.log); /* one line at a time: job threads log too */
	fprintf(a->opts.log, "ts=%s ", when);
	va_start(ap, fmt);
	vfprintf(a->opts.log, fmt, ap);
	va_end(ap);
	fputc('\n', a->opts.log);
	fflush(a->opts.log);
	funlockfile(a->opts.log);
}

static void *job_thread(void *arg);

int gw_archiver_new(gw_archiver **out, gw_store *store, gw_index *index, const gw_archiver_opts *opts)
{
	gw_archiver *a = calloc(1, sizeof(*a));
	unsigned t;
	if (!a)
		return gw_error_set(GW_ERROR, "out of memory");
	pthread_mutex_init(&a->jobs_lock, NULL);
	pthread_cond_init(&a->jobs_cond, NULL);
	pthread_mutex_init(&a->lsn_lock, NULL);
	pthread_mutex_init(&a->pools_lock, NULL);
	pthread_mutex_init(&a->pools_build_lock, NULL);
	a->store = store;
	a->index = index;
	a->opts = *opts;
	if (gw_metrics_new(&a->registry) < 0 || gw_metrics_register_archiver(a->registry, &a->metrics) < 0) {
		int rc = gw_error_code();
		gw_archiver_free(a);
		return rc;
	}
	if (!(a->scratch = gw_fs_join(opts->state_dir, "tmp")) || gw_fs_mkdir_p(a->scratch, 0700) < 0) {
		int rc = gw_error_code();
		free(a->scratch);
		a->scratch = NULL;
		gw_archiver_free(a);
		return rc;
	}
	if (!a->opts.spool_max_bytes)
		a->opts.spool_max_bytes = (uint64_t)1 << 30;
	{
		char *dir = gw_fs_join(opts->state_dir, "spool");
		int rc = dir ? gw_spool_open(&a->spool, dir, a->opts.spool_max_bytes) : GW_ERROR;
		free(dir);
		if (rc == 0 && (rc = gw_spool_start(a->spool, store, index, opts->upload_threads, &a->metrics)) < 0)
			gw_spool_free(a->spool);
		if (rc < 0) {
			a->spool = NULL;
			gw_archiver_free(a);
			return rc;
		}
	}
	if (!a->opts.full_every_segments)
		a->opts.full_every_segments = 1000;
	if (a->opts.full_ratio <= 0)
		a->opts.full_ratio = 0.5;
	if (!a->opts.full_max_age_s)
		a->opts.full_max_age_s = 86400;
	if (opts->job_threads && !(a->threads = calloc(opts->job_threads, sizeof(pthread_t)))) {
		gw_archiver_free(a);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	for (t = 0; t < opts->job_threads; t++) {
		if (gw_thread_create(&a->threads[t], job_thread, a) != 0) {
			gw_archiver_free(a);
			return gw_error_set(GW_ERROR, "cannot start store job thread %u", t + 1);
		}
		a->nthreads++;
	}
	*out = a;
	return 0;
}

/* The archived state no longer equals the refs as last read. */
static void forget_seen(arepo *r)
{
	gw_refs_view_dispose(&r->seen);
	r->seen_valid = 0;
}

static void repo_unload(arepo *r)
{
	forget_seen(r);
	gw_refstate_dispose(&r->refs);
	gw_objset_free(r->objset);
	r->objset = NULL;
	free(r->pool);
	r->pool = NULL;
	r->pool_base = r->pool_lsn = r->pool_lsn_saved = 0;
	r->pool_why = NULL;
	r->loaded = 0;
}

/* The job thread's error message, for the loop's thread. */
static const char *job_message(const ajob *j)
{
	return j->message ? j->message : "out of memory";
}

static void job_free(ajob *j)
{
	if (j) {
		free(j->message);
		free(j);
	}
}

void gw_archiver_free(gw_archiver *a)
{
	ajob *j;
	size_t i;
	unsigned t;
	if (!a)
		return;
	/* A job in flight is finished first (a store request ends within the store's time limits). */
	pthread_mutex_lock(&a->jobs_lock);
	a->stopping = 1;
	pthread_cond_broadcast(&a->jobs_cond);
	pthread_mutex_unlock(&a->jobs_lock);
	for (t = 0; t < a->nthreads; t++)
		pthread_join(a->threads[t], NULL);
	free(a->threads);
	while ((j = jobs_pop(&a->queue)))
		job_free(j);
	while ((j = jobs_pop(&a->done)))
		job_free(j);
	for (i = 0; i < a->nrepos; i++) {
		repo_unload(a->repos[i]);
		gw_refs_reader_free(a->repos[i]->reader);
		free(a->repos[i]->refused);
		free(a->repos[i]->rel);
		free(a->repos[i]);
	}
	free(a->repos);
	for (i = 0; i < a->npools; i++) {
		gw_objset_free(a->pools[i]->set);
		free(a->pools[i]->rel);
		free(a->pools[i]);
	}
	free(a->pools);
	free(a->scratch);
	gw_spool_free(a->spool); /* joins the upload threads (they touch the spool, store and index only) */
	gw_metrics_free(a->registry); /* after every thread that counts into it */
	pthread_mutex_destroy(&a->lsn_lock);
	pthread_mutex_destroy(&a->pools_lock);
	pthread_mutex_destroy(&a->pools_build_lock);
	pthread_cond_destroy(&a->jobs_cond);
	pthread_mutex_destroy(&a->jobs_lock);
	free(a);
}

int gw_archiver_fd(gw_archiver *a)
{
	return gw_spool_fd(a->spool);
}

gw_metrics *gw_archiver_registry(gw_archiver *a)
{
	return a->registry;
}

gw_metrics_archiver *gw_archiver_metrics(gw_archiver *a)
{
	return &a->metrics;
}

void gw_archiver_get_stats(gw_archiver *a, gw_archiver_stats *stats)
{
	stats->segments = gw_metrics_counter_value(a->metrics.segments_written);
	stats->fulls = gw_metrics_counter_value(a->metrics.full_backups);
	stats->repositories = (uint64_t)gw_metrics_gauge_value(a->metrics.repositories);
	/* The spool's gauges are computed at scrape time from the spool itself: so is this. */
	stats->spool_segments = gw_spool_count(a->spool);
}

static int repo_cmp(const void *key, const void *elem)
{
	return strcmp((const char *)key, (*(arepo *const *)elem)->rel);
}

static arepo *repo_get(gw_archiver *a, const char *rel)
{
	arepo **found = a->nrepos ? bsearch(rel, a->repos, a->nrepos, sizeof(arepo *), repo_cmp) : NULL;
	arepo *r;
	size_t at;
	if (found)
		return *found;
	if (GW_ARRAY_RESERVE(a->repos, a->cap, a->nrepos + 1) < 0)
		return NULL;
	if (!(r = calloc(1, sizeof(*r))) || !(r->rel = strdup(rel))) {
		free(r);
		return NULL;
	}
	for (at = 0; at < a->nrepos && strcmp(a->repos[at]->rel, rel) < 0; at++)
		;
	memmove(a->repos + at + 1, a->repos + at, (a->nrepos - at) * sizeof(arepo *));
	a->repos[at] = r;
	a->nrepos++;
	gw_metrics_gauge_set(a->metrics.repositories, (int64_t)a->nrepos);
	return r;
}

/* ---- loading the archived state ---- */

static char *objset_dir(gw_archiver *a, const char *rel);

/*
 * The manifest of the generation's full backup, from the store; a copy is
 * kept beside the object set ($STATE/archive/<enc>/full.manifest) so that
 * the state can be loaded while the store is away (repo_load_offline). The
 * copy is trusted only when its SHA-256 is the index's.
 */
static int manifest_text(gw_archiver *a, const char *rel, const gw_full_record *rec, char **text, size_t *len)
{
	char *dir = objset_dir(a, rel), *path = NULL, *tmp = NULL, digest[65];
	unsigned char raw[32];
	int rc = gw_store_get(a->store, rec->manifest_key, GW_MANIFEST_MAX_SIZE, text, len);
	FILE *f;
	if (!dir || asprintf(&path, "%s/full.manifest", dir) < 0 || asprintf(&tmp, "%s.tmp", path) < 0) {
		free(dir);
		free(path);
		return rc;
	}
	if (rc == 0 && gw_fs_mkdir_p(dir, 0700) == 0 && (f = fopen(tmp, "we"))) {
		int ok = fwrite(*text, 1, *len, f) == *len;
		if (fclose(f) == 0 && ok)
			rename(tmp, path);
		unlink(tmp);
	} else if (rc == GW_EIO && (f = fopen(path, "re"))) {
		char *copy = malloc(GW_MANIFEST_MAX_SIZE + 1);
		size_t n = copy ? fread(copy, 1, GW_MANIFEST_MAX_SIZE + 1, f) : 0;
		fclose(f);
		gw_hash_buffer(GW_HASH_SHA256, copy ? copy : "", n, raw);
		gw_hex_encode(digest, raw, 32);
		if (copy && n <= GW_MANIFEST_MAX_SIZE && !strcmp(digest, rec->manifest_sha256)) {
			copy[n] = '\0';
			*text = copy;
			*len = n;
			rc = 0;
		} else {
			free(copy);
		}
	}
	free(dir);
	free(path);
	free(tmp);
	return rc;
}

static int load_full(gw_archiver *a, arepo *r, const gw_full_record *rec, gw_manifest *m)
{
	char *text = NULL;
	size_t len;
	int rc;
	if ((rc = manifest_text(a, r->rel, rec, &text, &len)) < 0)
		return rc;
	rc = gw_manifest_parse(m, text, len, rec->manifest_key);
	free(text);
	if (rc < 0)
		return rc;
	r->hash_len = m->hash_len;
	gw_refstate_dispose(&r->refs);
	if ((rc = gw_refstate_from_manifest(&r->refs, m)) < 0 || (rc = gw_files_digest(&m->files, r->files_digest)) < 0)
		return rc;
	free(r->pool);
	r->pool = NULL;
	if (m->pool.repository && !(r->pool = strdup(m->pool.repository)))
		return gw_error_set(GW_ERROR, "out of memory");
	r->pool_base = m->pool.base_lsn;
	r->pool_lsn = m->pool.lsn;
	r->pool_lsn_saved = 0;
	r->pool_why = NULL;
	r->base_lsn = rec->lsn;
	r->last_lsn = rec->lsn;
	memcpy(r->last_digest, rec->manifest_sha256, sizeof(r->last_digest));
	r->full_time_us = rec->time_us;
	r->last_record_us = rec->time_us;
	r->full_bytes = rec->bundle_size + rec->idx_size;
	r->segments_since_full = r->bytes_since_full = 0;
	r->exists = 1;
	return 0;
}

typedef struct {
	gw_archiver *a;
	arepo *r;
	gw_store *from;
	int broken;
} replay_ctx;

static int replay_segment(const gw_segment_record *rec, void *payload)
{
	replay_ctx *c = payload;
	gw_segment_header h;
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	size_t i;
	int rc;
	if (rec->lsn != c->r->last_lsn + 1 || strcmp(rec->prev_sha256, c->r->last_digest) != 0 ||
	    rec->base_lsn != c->r->base_lsn) {
		c->broken = 1;
		return 1;
	}
	if ((rc = gw_segment_read_meta(c->from, rec->key, rec->size, &h, trailer)) < 0)
		return rc;
	if (h.hash_len != c->r->hash_len) {
		gw_segment_header_dispose(&h);
		return gw_error_set(GW_ECORRUPT, "segment %s records %s ids, its generation's full backup %s", rec->key,
				    h.hash_len == 32 ? "sha256" : "sha1", c->r->hash_len == 32 ? "sha256" : "sha1");
	}
	if (!h.pool.repository != !c->r->pool ||
	    (h.pool.repository && (strcmp(h.pool.repository, c->r->pool) || h.pool.base_lsn != c->r->pool_base ||
				   h.pool.lsn < c->r->pool_lsn))) {
		/* A generation is pooled or not as a whole, by one pool generation, its LSNs in order (DESIGN.md 19). */
		rc = gw_error_set(GW_ECORRUPT, "segment %s names pool %s (full backup %llu, LSN %llu), the record before "
					       "it %s (%llu, %llu)", rec->key, h.pool.repository ? h.pool.repository : "none",
				  (unsigned long long)h.pool.base_lsn, (unsigned long long)h.pool.lsn,
				  c->r->pool ? c->r->pool : "none", (unsigned long long)c->r->pool_base,
				  (unsigned long long)c->r->pool_lsn);
		gw_segment_header_dispose(&h);
		return rc;
	}
	if (h.pool.repository)
		c->r->pool_lsn = h.pool.lsn;
	for (i = 0; i < h.nupdates; i++) {
		if (h.updates[i].kind == GW_UPDATE_DELETED)
			c->r->exists = 0;
		else if (h.updates[i].kind == GW_UPDATE_CREATED)
			c->r->exists = 1;
	}
	rc = gw_refstate_apply(&c->r->refs, h.updates, h.nupdates);
	if (rc == 0 && h.files)
		rc = gw_files_digest(h.files, c->r->files_digest);
	gw_segment_header_dispose(&h);
	if (rc < 0)
		return rc;
	if (c->r->objset && rec->lsn > gw_objset_covered(c->r->objset)) {
		/* The set missed this segment (a crash after it was stored): learn its objects from it. */
		unsigned char *oids;
		size_t n;
		if ((rc = gw_segment_read_oids(c->from, rec->key, rec->size, c->r->hash_len, &oids, &n)) < 0)
			return rc;
		rc = gw_objset_add(c->r->objset, oids, n, rec->lsn);
		free(oids);
		if (rc < 0)
			return rc;
	}
	c->r->last_lsn = rec->lsn;
	c->r->last_record_us = rec->time_last_us;
	memcpy(c->r->last_digest, rec->sha256, sizeof(c->r->last_digest));
	c->r->segments_since_full++;
	c->r->bytes_since_full += rec->size;
	return 0;
}

static char *objset_dir(gw_archiver *a, const char *rel)
{
	char *enc = gw_repo_path_encode(rel), *base, *dir = NULL;
	if (!enc)
		return NULL;
	if ((base = gw_fs_join(a->opts.state_dir, "archive")))
		dir = gw_fs_join(base, enc);
	free(base);
	free(enc);
	return dir;
}

/* The shared set of r's pool generation, if made already (under pools_lock). */
static gw_objset *pool_set_find(gw_archiver *a, const arepo *r)
{
	gw_objset *set = NULL;
	size_t i;
	pthread_mutex_lock(&a->pools_lock);
	for (i = 0; i < a->npools && !set; i++)
		if (a->pools[i]->base_lsn == r->pool_base && !strcmp(a->pools[i]->rel, r->pool))
			set = a->pools[i]->set;
	pthread_mutex_unlock(&a->pools_lock);
	return set;
}

/*
 * The archived objects of r's pool generation (r->pool at r->pool_base),
 * into *out: the shared set, made once from the pool's full backup's index
 * (a store request, unless this host has it already). Made under
 * pools_build_lock, never held by the loop's thread while it waits (it
 * only tries it: with_store 0, no store request), then listed under
 * pools_lock, which is never held across a request; searched by the loop's
 * thread alone.
 */
static int pool_set(gw_archiver *a, arepo *r, int with_store, gw_objset **out)
{
	char *pools = NULL, *enc = NULL, *pdir = NULL, *dir = NULL, *key = NULL, sub[32];
	apool *p = NULL;
	gw_objset *set = NULL;
	int rc = 0;

	if ((*out = pool_set_find(a, r)))
		return 0;
	if (with_store)
		pthread_mutex_lock(&a->pools_build_lock);
	else if (pthread_mutex_trylock(&a->pools_build_lock) != 0)
		return gw_error_set(GW_EIO, "repository %s: the objects of its pool %s at LSN %llu are being read from "
					    "the store", r->rel, r->pool, (unsigned long long)r->pool_base);
	if ((*out = pool_set_find(a, r)))
		goto out; /* made while this thread waited */
	snprintf(sub, sizeof(sub), "%llu", (unsigned long long)r->pool_base);
	if (!(enc = gw_repo_path_encode(r->pool)) || !(pools = gw_fs_join(a->opts.state_dir, "pools")) ||
	    !(pdir = gw_fs_join(pools, enc)) || !(dir = gw_fs_join(pdir, sub)) ||
	    !(key = gw_layout_key(r->pool, r->pool_base, GW_KEY_FULL_IDX))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_objset_open(&set, dir, r->hash_len)) < 0)
		goto out;
	if (gw_objset_base_lsn(set) != r->pool_base) {
		if (!with_store) {
			rc = gw_error_set(GW_EIO, "repository %s: the store is unreachable and this host lacks its pool "
						  "%s's objects at LSN %llu: it waits for the store", r->rel, r->pool,
					  (unsigned long long)r->pool_base);
			goto out;
		}
		if ((rc = gw_objset_reset(set, a->store, key, r->pool_base)) < 0) {
			gw_error_prefix("repository %s: its pool %s (LSN %llu)", r->rel, r->pool,
					(unsigned long long)r->pool_base);
			goto out;
		}
	}
	if (!(p = calloc(1, sizeof(*p))) || !(p->rel = strdup(r->pool))) {
		free(p);
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	p->base_lsn = r->pool_base;
	p->set = set;
	pthread_mutex_lock(&a->pools_lock);
	if (GW_ARRAY_RESERVE(a->pools, a->pools_cap, a->npools + 1) < 0) {
		pthread_mutex_unlock(&a->pools_lock);
		free(p->rel);
		free(p);
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	a->pools[a->npools++] = p;
	pthread_mutex_unlock(&a->pools_lock);
	*out = set;
	set = NULL;
out:
	pthread_mutex_unlock(&a->pools_build_lock);
	gw_objset_free(set);
	free(pools);
	free(enc);
	free(pdir);
	free(dir);
	free(key);
	return rc;
}

/* Segments still in the spool are archived too: replay them after the store's. */
static int replay_spool(gw_archiver *a, arepo *r)
{
	gw_store_listing l;
	replay_ctx ctx = {a, r, gw_spool_store(a->spool), 0};
	char *prefix = gw_layout_repo_prefix(r->rel);
	size_t i;
	int rc = 0;
	if (!prefix)
		return GW_ERROR;
	memset(&l, 0, sizeof(l));
	if (gw_spool_count(a->spool))
		rc = gw_store_list_all(ctx.from, prefix, &l);
	for (i = 0; rc == 0 && i < l.count && !ctx.broken; i++) {
		gw_segment_header h;
		gw_segment_record rec;
		unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
		if ((rc = gw_segment_read_meta(ctx.from, l.keys[i], l.sizes[i], &h, trailer)) < 0)
			break;
		memset(&rec, 0, sizeof(rec));
		rec.lsn = h.lsn;
		rec.base_lsn = h.base_lsn;
		rec.time_last_us = h.time_last_us;
		rec.key = l.keys[i];
		rec.size = l.sizes[i];
		gw_hex_encode(rec.sha256, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
		memcpy(rec.prev_sha256, h.prev_sha256, 65);
		gw_segment_header_dispose(&h);
		if (rec.lsn <= r->last_lsn)
			continue; /* uploaded, its spool file not yet removed: the store's copy was replayed */
		rc = replay_segment(&rec, &ctx);
		if (rc > 0)
			rc = 0;
	}
	gw_store_listing_dispose(&l);
	free(prefix);
	if (rc == 0 && ctx.broken)
		rc = gw_error_set(GW_ECORRUPT, "repository %s: the spooled segments do not continue the archive", r->rel);
	return rc;
}

/* The archived refs' values are closed (a snapshot holds the closure of its refs; a segment, of its new values). */
static int mark_tips_closed(arepo *r)
{
	unsigned char *oids;
	size_t i, n = 0;
	int rc;
	if (!r->objset)
		return 0;
	if (!(oids = malloc((r->refs.nrefs + 1) * r->hash_len)))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < r->refs.nrefs; i++)
		if (!r->refs.refs[i].dangling)
			memcpy(oids + r->hash_len * n++, r->refs.refs[i].oid, r->hash_len);
	if (r->refs.head.name && !r->refs.head.dangling)
		memcpy(oids + r->hash_len * n++, r->refs.head.oid, r->hash_len);
	rc = gw_objset_mark_closed(r->objset, oids, n);
	free(oids);
	return rc;
}

static int last_digest_cb(const gw_segment_record *rec, void *payload)
{
	memcpy(payload, rec->sha256, 65);
	return 0;
}

/*
 * A pooled member's pool LSN as this host last named it ($STATE/archive/
 * <enc>/pool.lsn: "<pool full backup LSN> <pool LSN>", written before each
 * segment naming another): the floor of its next record's when its state
 * is loaded without the store, whose segment headers say it exactly.
 * segments: the generation has segments, so without the file (or with one
 * of another pool generation) the floor is unknown.
 */
static int pool_lsn_read(gw_archiver *a, arepo *r, int segments)
{
	char *dir = objset_dir(a, r->rel), *path = NULL, buf[64] = "";
	unsigned long long base = 0, lsn = 0;
	FILE *f;
	if (!dir || asprintf(&path, "%s/pool.lsn", dir) < 0) {
		free(dir);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	free(dir);
	if ((f = fopen(path, "re"))) {
		if (fgets(buf, sizeof(buf), f) && sscanf(buf, "%llu %llu", &base, &lsn) == 2 && base == r->pool_base &&
		    lsn >= r->pool_lsn) {
			r->pool_lsn = lsn;
			r->pool_lsn_saved = lsn;
			segments = 0;
		}
		fclose(f);
	}
	free(path);
	if (segments)
		return gw_error_set(GW_EIO, "repository %s: the store is unreachable and this host does not know the pool "
					    "LSN its last segment names: it waits for the store", r->rel);
	return 0;
}

static int pool_lsn_write(gw_archiver *a, arepo *r, uint64_t lsn)
{
	char *dir = objset_dir(a, r->rel), *path = NULL, *tmp = NULL;
	FILE *f = NULL;
	int rc = 0;
	if (!dir || asprintf(&path, "%s/pool.lsn", dir) < 0 || asprintf(&tmp, "%s/pool.lsn.tmp", dir) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if (gw_fs_mkdir_p(dir, 0700) < 0 || !(f = fopen(tmp, "we")) ||
	    fprintf(f, "%llu %llu\n", (unsigned long long)r->pool_base, (unsigned long long)lsn) < 0 || fflush(f) != 0 ||
	    fsync(fileno(f)) != 0) {
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot write %s", r->rel, tmp);
		goto out;
	}
	rc = fclose(f);
	f = NULL;
	if (rc != 0 || rename(tmp, path) < 0)
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot write %s", r->rel, path);
	else
		r->pool_lsn_saved = lsn;
out:
	if (f)
		fclose(f);
	free(dir);
	free(path);
	free(tmp);
	return rc;
}

/*
 * The store does not answer (GW_EIO, as when the service starts while it is
 * away): the state from what this host knows, so that changes can go to the
 * spool (DESIGN.md 10.6): the index's latest full backup, its manifest from
 * the local copy, and the generation's updates from the index (the ones that
 * decide the refs at its end, as a restore plans). The next LSN is the
 * index's (plus the spool's); a record another writer stored meanwhile is
 * found when the spool is uploaded (set aside, section 10.6). A repository
 * without a full backup, or one whose copy or object set this host lacks,
 * waits for the store.
 */
static int repo_load_offline(gw_archiver *a, arepo *r)
{
	gw_full_record rec;
	gw_manifest m;
	gw_index_span span;
	gw_update *updates = NULL;
	size_t n = 0, i;
	char *dir = NULL;
	int rc;

	memset(&m, 0, sizeof(m));
	memset(&rec, 0, sizeof(rec));
	if ((rc = gw_index_full_find(a->index, r->rel, 0, &rec)) < 0)
		return rc == GW_ENOTFOUND ? gw_error_set(GW_EIO, "repository %s: the store is unreachable and it has no "
								"full backup yet: it waits for the store", r->rel)
					  : rc;
	if ((rc = load_full(a, r, &rec, &m)) < 0 ||
	    (rc = gw_index_span_find(a->index, r->rel, rec.lsn, INT64_MAX, &span)) < 0)
		goto out;
	if (span.broken_lsn) {
		rc = gw_error_set(GW_EIO, "repository %s: the store is unreachable and the index lacks LSN %llu: it "
					  "waits for the store", r->rel, (unsigned long long)span.broken_lsn);
		goto out;
	}
	if ((rc = gw_index_span_updates(a->index, r->rel, &span, INT64_MAX, &updates, &n)) < 0 ||
	    (rc = gw_refstate_apply(&r->refs, updates, n)) < 0)
		goto out;
	for (i = 0; i < n; i++)
		if (updates[i].kind == GW_UPDATE_DELETED || updates[i].kind == GW_UPDATE_CREATED)
			r->exists = updates[i].kind == GW_UPDATE_CREATED;
	if (span.last_lsn > rec.lsn &&
	    (rc = gw_index_segment_foreach(a->index, r->rel, span.last_lsn, span.last_lsn, last_digest_cb,
					   r->last_digest)) < 0)
		goto out;
	if (span.last_lsn > rec.lsn) {
		/* The files as of the generation's end: the newest segment carrying them, else the manifest's (load_full). */
		gw_segment_record files;
		rc = gw_index_files_find(a->index, r->rel, rec.lsn + 1, span.last_lsn, &files);
		if (rc == 0)
			memcpy(r->files_digest, files.files_sha256, sizeof(r->files_digest));
		gw_segment_record_dispose(&files);
		if (rc < 0 && rc != GW_ENOTFOUND)
			goto out;
		rc = 0;
	}
	r->last_lsn = span.last_lsn;
	if (span.last_time_us)
		r->last_record_us = span.last_time_us;
	r->segments_since_full = span.segments;
	r->bytes_since_full = span.bytes;
	if (!(dir = objset_dir(a, r->rel))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_objset_open(&r->objset, dir, r->hash_len)) == 0 &&
	    (gw_objset_base_lsn(r->objset) != r->base_lsn || gw_objset_covered(r->objset) < r->last_lsn))
		rc = gw_error_set(GW_EIO, "repository %s: the store is unreachable and the object set in %s is not "
					  "up to date: it waits for the store", r->rel, dir);
	if (rc == 0)
		rc = replay_spool(a, r);
	if (rc == 0)
		rc = mark_tips_closed(r);
	if (rc == 0 && r->pool) {
		gw_objset *set;
		if ((rc = pool_lsn_read(a, r, span.last_lsn > rec.lsn)) == 0)
			rc = pool_set(a, r, 0, &set);
	}
	if (rc == 0) {
		r->loaded = 1;
		r->unobserved_since = r->last_record_us;
		log_event(a, "event=offline_load repo=%s lsn=%llu", r->rel, (unsigned long long)r->last_lsn);
	}
out:
	gw_updates_free(updates, n);
	gw_manifest_dispose(&m);
	gw_full_record_dispose(&rec);
	free(dir);
	return rc;
}

/*
 * May a store request be made now (gw_spool_store_may_try)? *asked (when
 * asked is not NULL) says the loop asked already for this job and it may:
 * the probe the loop was given is the whole job's, its load and its first
 * full backup (a probe spent on the load alone would leave an unhealthy
 * store that only a write can make healthy never written to).
 */
static int store_may(gw_archiver *a, int *asked)
{
	if (asked && *asked)
		return 1;
	return gw_spool_store_may_try(a->spool);
}

/*
 * Load the archived state of r. Returns 0 with r->base_lsn == 0 when the
 * repository has no usable generation (no full backup, or a broken chain):
 * the caller then takes a full backup. asked: see store_may.
 */
static int repo_load(gw_archiver *a, arepo *r, int *asked)
{
	gw_full_record rec;
	gw_manifest m;
	replay_ctx ctx = {a, r, a->store, 0};
	uint64_t next;
	char *dir;
	int rc;

	repo_unload(r);
	memset(&m, 0, sizeof(m));
	/*
	 * A store known to be away is not asked (it may stall): what this host
	 * knows will do. Not after a conflict: the store holds records this
	 * host does not know, so only the store's state will do.
	 */
	if (!r->resync && !store_may(a, asked))
		return repo_load_offline(a, r);
	rc = gw_index_sync(a->index, a->store, r->rel);
	if (rc >= 0)
		rc = gw_layout_next_lsn(a->store, r->rel, &next);
	if (rc < 0) {
		gw_spool_note_store(a->spool, rc); /* (a read that works says nothing of writes) */
		return rc == GW_EIO && !r->resync ? repo_load_offline(a, r) : rc;
	}
	rc = gw_index_full_find(a->index, r->rel, 0, &rec);
	if (rc == GW_ENOTFOUND) {
		r->base_lsn = 0;
		r->last_lsn = next - 1;
		r->loaded = 1;
		gw_error_clear();
		return 0;
	}
	if (rc < 0)
		return rc;
	if ((rc = load_full(a, r, &rec, &m)) == 0) {
		/* The object set first: replaying the log also completes it. */
		if (!(dir = objset_dir(a, r->rel)))
			rc = gw_error_set(GW_ERROR, "out of memory");
		else if ((rc = gw_objset_open(&r->objset, dir, r->hash_len)) == 0 &&
			 gw_objset_base_lsn(r->objset) != r->base_lsn)
			rc = gw_objset_reset(r->objset, a->store, m.idx.key, r->base_lsn);
		free(dir);
	}
	if (rc == 0 && (rc = gw_index_segment_foreach(a->index, r->rel, rec.lsn + 1, UINT64_MAX, replay_segment, &ctx)) > 0)
		rc = 0; /* the replay stopped at a break: handled below */
	/*
	 * The spool before the check: an upload thread may be storing its head
	 * segment while this runs, so the listing and the index can each be
	 * one record behind the other; the spool still holds that segment
	 * until its event is taken here (and while a job thread loads the
	 * state, until the load is done: gw_spool_pin), and explains it (a
	 * kill -9 and restart with a spool showed chain breaks that were none).
	 */
	if (rc == 0 && !ctx.broken)
		rc = replay_spool(a, r);
	if (rc == 0 && (ctx.broken || r->last_lsn < next - 1)) {
		/* A gap, or a record neither the index nor the spool explains: start a new generation. */
		log_event(a, "event=chain_break repo=%s lsn=%llu store_lsn=%llu", r->rel, (unsigned long long)r->last_lsn,
			  (unsigned long long)(next - 1));
		r->base_lsn = 0;
		r->last_lsn = next - 1;
	}
	if (rc == 0 && r->base_lsn)
		rc = mark_tips_closed(r);
	if (rc == 0 && r->base_lsn && r->pool) {
		gw_objset *set;
		rc = pool_set(a, r, 1, &set);
	}
	gw_manifest_dispose(&m);
	gw_full_record_dispose(&rec);
	if (rc < 0)
		return rc;
	r->loaded = 1;
	r->unobserved_since = r->base_lsn ? r->last_record_us : 0;
	return 0;
}

/* ---- the work ---- */

static void log_full(gw_archiver *a, const char *rel, const gw_backup_result *res, const char *why)
{
	gw_metrics_counter_inc(a->metrics.full_backups);
	char skipped[48] = "";
	if (res->files_skipped)
		snprintf(skipped, sizeof(skipped), " files_skipped=%llu", (unsigned long long)res->files_skipped);
	log_event(a, "event=full repo=%s lsn=%llu bytes=%llu objects=%llu reason=%s seconds=%.3f%s", rel,
		  (unsigned long long)res->lsn, (unsigned long long)res->bundle_bytes, (unsigned long long)res->objects,
		  why, res->seconds, skipped);
}

/* A full backup of r, then its state loaded again. asked: see store_may. */
static int take_full(gw_archiver *a, arepo *r, const char *why, int *asked)
{
	gw_backup_result res;
	int rc;
	if (!store_may(a, asked))
		return gw_error_set(GW_EIO, "repository %s: its full backup (%s) waits for the store, which is unhealthy",
				    r->rel, why);
	gw_backup_opts o = {.pooled = 1, .pool_archived = 1};
	rc = gw_backup_full_opts(a->store, a->index, a->opts.root, r->rel, &o, &res);
	gw_spool_note_store(a->spool, rc < 0 ? rc : 0);
	if (rc < 0)
		return rc;
	log_full(a, r->rel, &res, why);
	return repo_load(a, r, NULL);
}

static int full_due(gw_archiver *a, arepo *r, const char **why)
{
	if (r->pool_why)
		*why = r->pool_why; /* its pool changed: the member's next record should be a full backup (DESIGN.md 19) */
	else if (r->segments_since_full >= a->opts.full_every_segments)
		*why = "segments";
	else if ((double)r->bytes_since_full > a->opts.full_ratio * (double)r->full_bytes &&
		 r->bytes_since_full > FULL_MIN_SEGMENT_BYTES)
		*why = "size";
	else if (r->segments_since_full && gw_time_now_us() - r->full_time_us > a->opts.full_max_age_s * 1000000)
		*why = "age";
	else
		return 0;
	return 1;
}

/*
 * The LSN of a spooled segment of r holds another record in the store (the
 * upload thread read it). A full backup's record (a `gitwal backup` beside
 * the service): the repository is archived again after it. A change
 * segment: another archiver writes this repository; two writers would
 * interleave their records, so this one stops writing it, says so once,
 * and leaves the judgement to the operator and `gitwal audit`.
 */
static void lsn_taken(gw_archiver *a, arepo *r, uint64_t lsn, int full, int unreadable)
{
	char *key = gw_layout_key(r->rel, lsn, GW_KEY_SEGMENT);
	if (full || unreadable) {
		r->resync = 1;
		if (unreadable)
			log_event(a, "event=error repo=%s error=\"LSN %llu is taken, and its record cannot be read: the "
				     "repository is archived again from the store\"", r->rel, (unsigned long long)lsn);
	} else {
		r->foreign = 1;
		gw_metrics_counter_inc(a->metrics.errors[GW_METRICS_ERROR_CONFLICT]);
		log_event(a, "event=writer_conflict repo=%s lsn=%llu key=%s action=stopped error=\"another writer archives "
			     "it; this archiver stopped writing it: run 'gitwal audit' and keep one archiver per "
			     "repository\"", r->rel, (unsigned long long)lsn, key ? key : "?");
	}
	free(key);
}

/* The spool is full: remember the change and archive the state when there is room (as a gap). */
static int mark_dirty(gw_archiver *a, arepo *r, int64_t now)
{
	if (!r->dirty_since) {
		r->dirty_since = r->last_record_us ? r->last_record_us : now;
		log_event(a, "event=spool_full repo=%s spool_bytes=%llu", r->rel,
			  (unsigned long long)gw_spool_bytes(a->spool));
	}
	return 0;
}

/* Not captured: r waits for a job (a load, or its policy full backup's claim); archived when it reports. */
#define CAPTURE_HELD 1

/* r cannot be captured now: remember the first change seen (changed_us, 0: none) until it can. */
static void hold(arepo *r, int64_t changed_us)
{
	if (changed_us && (!r->held_since || changed_us < r->held_since))
		r->held_since = changed_us;
}

static void policy_full_maybe(gw_archiver *a, arepo *r);

static int is_claiming(gw_archiver *a, arepo *r)
{
	int claiming;
	pthread_mutex_lock(&a->lsn_lock);
	claiming = r->claiming;
	pthread_mutex_unlock(&a->lsn_lock);
	return claiming;
}

/*
 * The loop gives r's next LSN to a segment: 1, and a policy full backup in
 * flight for r will give way (its gate sees lsn_epoch move); 0 when that
 * full backup passed its gate first (r is claiming): then the segment waits.
 */
static int take_lsn(gw_archiver *a, arepo *r)
{
	int ok;
	pthread_mutex_lock(&a->lsn_lock);
	ok = !r->claiming;
	if (ok)
		r->lsn_epoch++;
	pthread_mutex_unlock(&a->lsn_lock);
	return ok;
}

static int held(gw_archiver *a, arepo *r);

/*
 * r's pool's archived state when its walk may stop at it (DESIGN.md 19):
 * loaded, in r's pool generation, not held by a job (only then is it this
 * thread's), its object set covering its last record, and that record no
 * lower than the one r's last record named; NULL otherwise.
 */
static arepo *pool_ready(gw_archiver *a, arepo *r)
{
	arepo **found = a->nrepos ? bsearch(r->pool, a->repos, a->nrepos, sizeof(arepo *), repo_cmp) : NULL;
	arepo *p = found ? *found : NULL;
	/* held first: while a load job holds it, nothing else of its state is this thread's to read. */
	if (!p || held(a, p) || !p->loaded || !p->exists || p->foreign || p->resync || p->dirty_since || !p->objset ||
	    p->base_lsn != r->pool_base || p->last_lsn < r->pool_lsn || gw_objset_covered(p->objset) != p->last_lsn)
		return NULL;
	return p;
}

/*
 * Capture: build the segment into the spool (create-only, fsync'd), where
 * it is durable on this host; the upload threads take it to the store. No
 * store request here, so a slow or failing store never delays observation.
 * CAPTURE_HELD: not written (take_lsn).
 */
static int write_segment(gw_archiver *a, arepo *r, gw_update *updates, size_t n, int64_t now, int64_t changed_us,
			 const char *path, const gw_files *files)
{
	gw_segment_spec spec;
	gw_segment_result res;
	gw_spool_item item;
	char skipped[40] = "";
	gw_pool_dep dep;
	char pool_path[4096];
	int rc;

	memset(&spec, 0, sizeof(spec));
	spec.rel = r->rel;
	spec.path = path;
	spec.scratch_dir = a->scratch;
	spec.lsn = r->last_lsn + 1;
	spec.base_lsn = r->base_lsn;
	spec.hash_len = r->hash_len;
	spec.prev_sha256 = r->last_digest;
	spec.updates = updates;
	spec.nupdates = n;
	spec.time_first_us = spec.time_last_us = now;
	spec.files = files;
	if (r->pool) {
		/*
		 * Its walk stops at the pool's archived objects too: at the pool's
		 * last record when its archived state is this generation's and at
		 * hand (the pool's own set), else at the LSN the member's last record
		 * named (the pool generation's full backup's set: a subset).
		 */
		arepo *p = pool_ready(a, r);
		dep.repository = r->pool;
		dep.base_lsn = r->pool_base;
		if (p) {
			spec.pool_set = p->objset;
			dep.lsn = p->last_lsn;
		} else {
			if ((rc = pool_set(a, r, 0, &spec.pool_set)) < 0)
				return rc;
			dep.lsn = r->pool_lsn;
		}
		spec.pool = &dep;
		if (snprintf(pool_path, sizeof(pool_path), "%s/%s", a->opts.root, r->pool) >= (int)sizeof(pool_path))
			return gw_error_set(GW_EINVALID, "repository %s: its pool's path is too long", r->rel);
		spec.pool_path = pool_path;
	}
	{
		int64_t since = r->dirty_since ? r->dirty_since : r->unobserved_since;
		if (since && since < now) {
			/* The archiver did not see every state in between: say so in the log. */
			spec.gap = 1;
			spec.gap_from_us = since;
			spec.gap_to_us = now;
		}
	}
	if (gw_spool_full(a->spool))
		return mark_dirty(a, r, now);
	if (!take_lsn(a, r))
		return CAPTURE_HELD;
	if (spec.pool && dep.lsn != r->pool_lsn_saved && (rc = pool_lsn_write(a, r, dep.lsn)) < 0)
		return rc;
	if ((rc = gw_segment_build(gw_spool_store(a->spool), r->objset, &spec, &res)) < 0)
		return rc;
	memset(&item, 0, sizeof(item));
	item.lsn = spec.lsn;
	item.bytes = res.bytes;
	item.updates = n;
	item.objects = res.objects;
	item.changed_us = changed_us;
	item.time_us = now;
	item.spooled_us = gw_time_now_us();
	item.gap = spec.gap;
	if (spec.pool) {
		item.pool = dep.repository;
		item.pool_lsn = dep.lsn;
	}
	if ((rc = gw_spool_add(a->spool, r->rel, &item)) < 0) {
		gw_segment_result_dispose(&res);
		return rc;
	}
	if (spec.gap)
		gw_metrics_counter_inc(a->metrics.gaps);
	r->dirty_since = r->unobserved_since = 0;
	r->last_record_us = now;
	if ((rc = gw_objset_add(r->objset, res.oids, res.objects, spec.lsn)) < 0 ||
	    (rc = gw_objset_mark_closed(r->objset, res.proven, res.nproven)) < 0) {
		gw_segment_result_dispose(&res);
		return rc;
	}
	r->last_lsn = spec.lsn;
	if (spec.pool)
		r->pool_lsn = dep.lsn;
	memcpy(r->last_digest, res.sha256, 65);
	r->segments_since_full++;
	r->bytes_since_full += res.bytes;
	gw_metrics_gauge_set_double(a->metrics.last_spooled_timestamp, (double)item.spooled_us / 1e6);
	if (files && gw_files_nskipped(files))
		snprintf(skipped, sizeof(skipped), " files_skipped=%zu", gw_files_nskipped(files));
	log_event(a, "event=spooled repo=%s lsn=%llu updates=%zu objects=%llu bytes=%llu lag_ms=%.1f%s%s%s", r->rel,
		  (unsigned long long)spec.lsn, n, (unsigned long long)res.objects, (unsigned long long)res.bytes,
		  changed_us ? (double)(item.spooled_us - changed_us) / 1000.0 : 0.0, spec.gap ? " gap=1" : "",
		  files ? " files=1" : "", skipped);
	gw_segment_result_dispose(&res);
	return 0;
}

static int record_deleted(gw_archiver *a, arepo *r, int64_t changed_us)
{
	gw_update *updates = NULL;
	size_t n = 0, cap;
	int64_t now = gw_time_now_us();
	int rc;
	/* Every ref goes, then the repository itself. */
	if ((rc = gw_segment_diff(&r->refs, NULL, NULL, r->hash_len, now, &updates, &n)) < 0)
		return rc;
	cap = n; /* the diff's array is exactly as long as its updates */
	if (GW_ARRAY_RESERVE(updates, cap, n + 1) < 0) {
		gw_updates_free(updates, n);
		return GW_ERROR;
	}
	memset(&updates[n], 0, sizeof(gw_update));
	updates[n].kind = GW_UPDATE_DELETED;
	updates[n].time_us = now;
	n++;
	rc = write_segment(a, r, updates, n, now, changed_us, NULL, NULL);
	if (rc == 0) {
		forget_seen(r);
		gw_refstate_dispose(&r->refs);
		r->exists = 0;
	}
	gw_updates_free(updates, n);
	return rc;
}

/*
 * Whether r's pool is still its generation's (DESIGN.md 19): linked,
 * unlinked, pointed at another pool, or its pool in a new generation (the
 * pool's latest full backup in the index is not the one r's names), r's
 * next full backup is due (r->pool_why, taken by the policy as soon as its
 * spooled segments are stored). Until then its segments go on naming the
 * generation's pool: still correct, since the walk reads the live objects
 * through the alternates and stops only at objects that pool's full backup
 * archived.
 */
static int pool_changed(gw_archiver *a, arepo *r, const gw_source *src)
{
	gw_full_record rec;
	int rc;
	r->pool_why = NULL;
	if (!r->base_lsn || !r->exists)
		return 0;
	if (!src->pool != !r->pool) {
		r->pool_why = src->pool ? "pool_linked" : "pool_unlinked";
		return 0;
	}
	if (!src->pool)
		return 0;
	if (strcmp(src->pool, r->pool) != 0) {
		r->pool_why = "pool_changed";
		return 0;
	}
	memset(&rec, 0, sizeof(rec));
	if ((rc = gw_index_full_find(a->index, r->pool, 0, &rec)) == GW_ENOTFOUND) {
		gw_error_clear();
		return 0; /* the pool's own archive is not loaded yet: its first full backup settles it */
	}
	if (rc == 0 && rec.lsn != r->pool_base)
		r->pool_why = "pool_generation";
	gw_full_record_dispose(&rec);
	return rc;
}

static int sync_repo(gw_archiver *a, arepo *r, int64_t changed_us)
{
	gw_source *src = NULL;
	gw_refs_view cur;
	gw_update *updates = NULL;
	gw_files files = {0};
	size_t n = 0;
	const char *why;
	char *path, files_digest[65];
	int64_t now;
	int rc, present, files_changed = 0;

	if (!r->loaded && (rc = repo_load(a, r, NULL)) < 0)
		return rc;
	if (r->resync && r->loaded && r->resync_last_us <= r->last_record_us)
		r->unobserved_since = 0; /* what was set aside lies before the store's last record: nothing unseen since */
	if (!(path = gw_fs_join(a->opts.root, r->rel)))
		return GW_ERROR;
	present = gw_repo_present(a->opts.root, r->rel); /* not through a symlink: that is another name */
	if (!present) {
		rc = (r->base_lsn && r->exists) ? record_deleted(a, r, changed_us) : 0;
		if (rc == CAPTURE_HELD)
			hold(r, changed_us ? changed_us : gw_time_now_us());
		free(path);
		return rc;
	}
	/*
	 * Opened for its checks (a bare repository; alternates only to a pool
	 * gitwal archives, DESIGN.md 19) and its object format; the refs come
	 * from our reader.
	 */
	if ((rc = gw_source_open_pooled(&src, a->opts.root, r->rel)) < 0)
		goto out;
	if (r->base_lsn && r->exists && r->hash_len != src->hash_len) {
		/* Created again in the other object format, unseen: its generation's ids are another length. */
		r->exists = 0;
		forget_seen(r);
		gw_refs_reader_free(r->reader);
		r->reader = NULL;
	}
	if (!r->base_lsn || !r->exists) {
		/*
		 * First sight, a broken chain, or a repository created again: a new
		 * generation. A pooled member's names its pool's latest full backup:
		 * the pool archived first, by this archiver (in the service, its own
		 * load job does it; a member's full backup takes the pool's first
		 * one itself only when the pool has none yet).
		 */
		if (src->pool && !a->nthreads) {
			arepo *p = repo_get(a, src->pool);
			if (p && !p->loaded && !p->refused && gw_archiver_sync_repo(a, src->pool, 0) < 0)
				gw_error_clear(); /* said for the pool; the member's full backup goes on */
		}
		if ((rc = take_full(a, r, r->base_lsn ? "recreated" : "initial", NULL)) < 0)
			goto out;
	}
	if ((rc = pool_changed(a, r, src)) < 0)
		goto out;
	if (r->pool && !r->pool_why) {
		/*
		 * Pool first: its changes archived before the member's record names
		 * its LSN (DESIGN.md 19); its failure is its own (logged for it), and
		 * the member's walk then stops at what its last record named. Not
		 * loaded yet, it is loaded now (in the service: its load job starts,
		 * and this record names what the member's last one did).
		 */
		arepo *p = repo_get(a, r->pool);
		if (p && !held(a, p) && gw_archiver_sync_repo(a, r->pool, 0) < 0)
			gw_error_clear();
	}
	if (!r->reader && (rc = gw_refs_reader_new(&r->reader, src->path, r->rel, src->hash_len)) < 0)
		goto out;
	now = gw_time_now_us();
	if ((rc = gw_refs_read(r->reader, &cur)) < 0)
		goto out;
	rc = gw_segment_diff(&r->refs, r->seen_valid ? &r->seen : NULL, &cur, r->hash_len, now, &updates, &n);
	/*
	 * Its files (config, hooks...) are read at every capture, as a full
	 * backup reads them: a changed set goes whole into the segment, which
	 * may then hold no ref update at all (DESIGN.md 4.5).
	 */
	if (rc == 0 && (rc = gw_files_collect(&files, src->path, r->rel)) == GW_EIO) {
		/*
		 * Its directory could not be read: the refs are captured all the
		 * same, and the files last archived stand (no change recorded).
		 * A path it cannot keep is no error: it is in the set, skipped.
		 */
		log_event(a, "event=warning repo=%s reason=\"%s; its files as last archived are kept\"", r->rel,
			  gw_error_message());
		gw_error_clear();
		rc = 0;
	} else if (rc == 0 && (rc = gw_files_digest(&files, files_digest)) == 0) {
		files_changed = strcmp(files_digest, r->files_digest) != 0;
	}
	if (rc == 0 && (n || files_changed))
		rc = write_segment(a, r, updates, n, now, changed_us, path, files_changed ? &files : NULL);
	else if (rc == 0)
		r->unobserved_since = 0; /* nothing changed while unobserved: no gap */
	if (rc == 0 && files_changed && !r->dirty_since)
		memcpy(r->files_digest, files_digest, sizeof(r->files_digest));
	if (rc == CAPTURE_HELD) {
		hold(r, changed_us ? changed_us : now);
		gw_refs_view_dispose(&cur);
		gw_updates_free(updates, n);
		goto out;
	}
	/* Unless it was not written (the spool is full), the archived state moves forward to cur. */
	if (rc == 0 && n && !r->dirty_since)
		rc = gw_refstate_apply(&r->refs, updates, n);
	if (rc == 0 && !r->dirty_since) {
		forget_seen(r);
		r->seen = cur;
		r->seen_valid = 1;
	} else {
		gw_refs_view_dispose(&cur);
	}
	gw_updates_free(updates, n);
	/*
	 * A policy's full backup is no hurry: it waits for a healthy store and an
	 * empty queue (it takes the next LSN). The service takes it on a job
	 * thread (policy_full_maybe, after a sync and when the queue empties).
	 */
	if (rc == 0 && !a->nthreads && !r->dirty_since && gw_spool_healthy(a->spool) &&
	    !gw_spool_has_repo(a->spool, r->rel) && full_due(a, r, &why))
		rc = take_full(a, r, why, NULL);
out:
	gw_files_dispose(&files);
	gw_source_free(src);
	free(path);
	return rc;
}

/*
 * The repository is one gitwal refuses (GW_EUNSUPPORTED: a shallow or
 * partial clone, reftable, an unknown extension). Said once per reason: it
 * stays refused, and quiet, until it changes.
 */
static void refuse(gw_archiver *a, arepo *r)
{
	char *why;
	if (r->refused && !strcmp(r->refused, gw_error_message()))
		return;
	if ((why = strdup(gw_error_message()))) {
		free(r->refused);
		r->refused = why;
	}
	gw_metrics_counter_inc(a->metrics.errors[GW_METRICS_ERROR_UNSUPPORTED]);
	log_event(a, "event=refused repo=%s reason=\"%s\"", r->rel, gw_error_message());
}

/*
 * A refused repository is looked at again with the checks alone (no store
 * request, no full backup attempt): GW_EUNSUPPORTED while it is refused for
 * the same reason, 0 when it is worth a full sync again (it was fixed, went
 * away, or is refused for another reason, which the sync then reports).
 */
static int still_refused(gw_archiver *a, arepo *r)
{
	gw_source *src = NULL;
	int rc = gw_repo_present(a->opts.root, r->rel) ? gw_source_open_pooled(&src, a->opts.root, r->rel) : 0;
	gw_source_free(src);
	if (rc == GW_EUNSUPPORTED && !strcmp(gw_error_message(), r->refused))
		return rc;
	if (rc == 0) {
		free(r->refused);
		r->refused = NULL;
	}
	gw_error_clear();
	return 0;
}

/* A failed sync or job: counted, logged, and tried again on r's own backoff (1 s, doubling up to a minute). */
static void note_failure(gw_archiver *a, arepo *r, int rc, int64_t changed_us)
{
	if (!r->foreign)
		gw_metrics_counter_inc(a->metrics.errors[rc == GW_EIO || rc == GW_EAUTH ? GW_METRICS_ERROR_STORE
											      : GW_METRICS_ERROR_REPOSITORY]);
	if (strncmp(gw_error_message(), "repository ", 11) != 0)
		gw_error_prefix("repository %s", r->rel);
	if (!r->foreign) {
		r->retry_backoff_ms = r->retry_backoff_ms ? r->retry_backoff_ms * 2 : RETRY_FIRST_MS;
		if (r->retry_backoff_ms > RETRY_MAX_MS)
			r->retry_backoff_ms = RETRY_MAX_MS;
		r->retry_at_ms = mono_ms() + r->retry_backoff_ms;
		if (changed_us && !r->retry_changed_us)
			r->retry_changed_us = changed_us;
	}
	log_event(a, "event=error repo=%s retry_ms=%lld error=\"%s\"", r->rel, (long long)r->retry_backoff_ms,
		  gw_error_message());
}

/* The end of a sync of r (rc: its outcome): the retry state, and the failure's consequences. */
static int sync_done(gw_archiver *a, arepo *r, int rc, int64_t changed_us)
{
	if (rc == 0)
		r->resync = 0;
	if (rc == 0 || rc == GW_EUNSUPPORTED)
		r->retry_at_ms = r->retry_backoff_ms = r->retry_changed_us = 0;
	if (r->objset)
		gw_objset_release(r->objset);
	if (rc == GW_EUNSUPPORTED) {
		refuse(a, r);
		repo_unload(r);
	} else if (rc < 0) {
		note_failure(a, r, rc, changed_us);
		repo_unload(r);
	}
	return rc;
}

/* ---- store jobs (the service: DESIGN.md 10.6) ---- */

static void job_submit(gw_archiver *a, ajob *j)
{
	pthread_mutex_lock(&a->jobs_lock);
	jobs_push(&a->queue, j);
	pthread_cond_signal(&a->jobs_cond);
	pthread_mutex_unlock(&a->jobs_lock);
}

/*
 * Load r's state from the store (and take its first full backup when it has
 * no generation) on a job thread. r is held until the job reports: the loop
 * does not touch its state, and remembers the first change it sees.
 */
static int load_submit(gw_archiver *a, arepo *r, int asked, int64_t changed_us)
{
	ajob *j = calloc(1, sizeof(*j));
	if (!j)
		return gw_error_set(GW_ERROR, "out of memory");
	j->kind = JOB_LOAD;
	j->a = a;
	j->r = r;
	j->asked = asked;
	r->job = j;
	r->retry_at_ms = 0; /* the job is the retry; a failure sets the next one */
	hold(r, changed_us);
	gw_spool_pin(a->spool, r->rel, 1);
	a->holding++;
	job_submit(a, j);
	return CAPTURE_HELD;
}

/*
 * A policy's full backup of r is due (10.3) and may start: it waits for a
 * healthy store and an empty queue (it takes the next LSN), as in --once.
 * It runs on a job thread while r's changes go on into the spool.
 *
 * An unhealthy store is tried again by the spool's probe, which only an
 * upload or a load makes: in an idle archive (nothing spooled) the store a
 * policy full backup itself found unhealthy would stay so, and the full
 * backup never be taken again. So when the probe is due the full backup is
 * the probe, and until then r comes back on its own (retry_at_ms).
 */
static void policy_full_maybe(gw_archiver *a, arepo *r)
{
	const char *why;
	ajob *j;
	if (!a->nthreads || r->job || !r->loaded || !r->base_lsn || !r->exists || r->foreign || r->dirty_since ||
	    r->retry_at_ms || gw_spool_has_repo(a->spool, r->rel) || !full_due(a, r, &why))
		return;
	if (!gw_spool_healthy(a->spool) && !gw_spool_store_may_try(a->spool)) {
		r->retry_at_ms = mono_ms() + RETRY_FIRST_MS;
		return;
	}
	if (!(j = calloc(1, sizeof(*j))))
		return; /* taken when it is due again */
	j->kind = JOB_POLICY_FULL;
	j->a = a;
	j->r = r;
	j->why = why;
	pthread_mutex_lock(&a->lsn_lock);
	j->epoch = r->lsn_epoch;
	pthread_mutex_unlock(&a->lsn_lock);
	r->job = j;
	job_submit(a, j);
}

/* What needs the store before r can be captured: its state, and a first full backup when it has no generation. */
static int prepare_once(gw_archiver *a, arepo *r, int *asked)
{
	int rc;
	if (!r->loaded && (rc = repo_load(a, r, asked)) < 0)
		return rc;
	if (gw_repo_present(a->opts.root, r->rel) && (!r->base_lsn || !r->exists))
		return take_full(a, r, r->base_lsn ? "recreated" : "initial", asked);
	return 0;
}

/* JOB_LOAD, on a job thread: r is held. */
static int prepare(gw_archiver *a, arepo *r, int *asked)
{
	unsigned tries = 0;
	int rc = prepare_once(a, r, asked);
	while ((rc == GW_EEXISTS || rc == GW_ECHANGED) && ++tries < 4) {
		/* A writer took the LSN, or the repository moved under the backup: load again and go on after it. */
		if ((rc = repo_load(a, r, NULL)) < 0)
			break;
		r->unobserved_since = 0;
		rc = prepare_once(a, r, asked);
	}
	return rc;
}

/*
 * A policy full backup's gate, on its job thread, just before its claim
 * (gw_backup_opts.before_claim): under lsn_lock, the lock of the loop's
 * LSN assignment (take_lsn), never held across a store request. Did the
 * loop give r an LSN since the job began? Then the backup gives way (its
 * writers are aborted; the policy takes it again later). Else r is
 * claiming: the loop captures nothing of it until the job reports, so the
 * backup's LSN follows every spooled segment's and no segment can take it.
 */
static int policy_gate(void *payload, uint64_t lsn)
{
	ajob *j = payload;
	int moved;
	pthread_mutex_lock(&j->a->lsn_lock);
	moved = j->r->lsn_epoch != j->epoch;
	if (!moved)
		j->r->claiming = 1;
	pthread_mutex_unlock(&j->a->lsn_lock);
	if (moved) {
		j->gave_way = 1;
		return gw_error_set(GW_EEXISTS, "repository %s: its full backup gave way at LSN %llu to a change "
						"archived meanwhile", j->r->rel, (unsigned long long)lsn);
	}
	j->claimed = 1;
	return 0;
}

/* JOB_POLICY_FULL, on a job thread: r is not held, and only its name, claiming and lsn_epoch are read. */
static int policy_full(ajob *j)
{
	gw_archiver *a = j->a;
	gw_backup_opts o;
	gw_backup_result res;
	int rc;
	memset(&o, 0, sizeof(o));
	o.pooled = o.pool_archived = 1;
	o.before_claim = policy_gate;
	o.payload = j;
	rc = gw_backup_full_opts(a->store, a->index, a->opts.root, j->r->rel, &o, &res);
	if (j->gave_way)
		return rc;
	gw_spool_note_store(a->spool, rc < 0 ? rc : 0);
	if (rc == 0)
		log_full(a, j->r->rel, &res, j->why);
	return rc;
}

static void *job_thread(void *arg)
{
	gw_archiver *a = arg;
	pthread_mutex_lock(&a->jobs_lock);
	while (!a->stopping) {
		ajob *j = jobs_pop(&a->queue);
		if (!j) {
			pthread_cond_wait(&a->jobs_cond, &a->jobs_lock);
			continue;
		}
		pthread_mutex_unlock(&a->jobs_lock);
		gw_error_clear();
		j->rc = j->kind == JOB_LOAD ? prepare(a, j->r, &j->asked) : policy_full(j);
		if (j->rc < 0)
			j->message = strdup(gw_error_message());
		pthread_mutex_lock(&a->jobs_lock);
		jobs_push(&a->done, j);
		gw_spool_wake(a->spool); /* the loop polls it */
	}
	pthread_mutex_unlock(&a->jobs_lock);
	return NULL;
}

/*
 * r was just loaded. After a full backup it was watched through (its policy
 * full backup claimed while it was held), only a change seen while it was
 * held went unobserved: the next segment records the gap from then, or
 * none (the full backup's refs were read again at its claim).
 */
static void loaded_after_hold(arepo *r)
{
	if (!r->reload_watched || !r->loaded)
		return;
	r->reload_watched = 0;
	r->unobserved_since = !r->held_since ? 0 : r->held_since > r->last_record_us ? r->held_since : r->last_record_us;
}

static void apply_conflict(gw_archiver *a, arepo *r, uint64_t lsn, int full, int unreadable, int64_t last_us);

/* A load job reported: r is no longer held; capture what it waited for. */
static void load_reported(gw_archiver *a, arepo *r, ajob *j)
{
	int64_t changed_us;
	a->holding--;
	gw_spool_pin(a->spool, r->rel, 0);
	if (r->conflict) {
		/* Its spooled segments were set aside meanwhile: what was loaded is not the archive's. */
		r->conflict = 0;
		apply_conflict(a, r, r->conflict_lsn, r->conflict_full, r->conflict_unreadable, r->conflict_last_us);
		changed_us = r->held_since;
		r->held_since = 0;
		if (!r->foreign)
			gw_archiver_sync_repo(a, r->rel, changed_us);
		return;
	}
	if (j->rc < 0) {
		changed_us = r->held_since;
		r->held_since = 0;
		gw_error_set(j->rc, "%s", job_message(j));
		sync_done(a, r, j->rc, changed_us);
		return;
	}
	loaded_after_hold(r);
	changed_us = r->held_since;
	r->held_since = 0;
	gw_archiver_sync_repo(a, r->rel, changed_us);
}

/* A policy's full backup reported. */
static void policy_reported(gw_archiver *a, arepo *r, ajob *j)
{
	if (j->gave_way) {
		/* Nothing of it is visible; the policy takes it again once r's queue is empty. */
		log_event(a, "event=full_abandoned repo=%s reason=%s error=\"%s\"", r->rel, j->why, job_message(j));
	} else {
		if (j->claimed) {
			/* r is itself again once loaded anew (the store may hold the claim even if the backup failed). */
			pthread_mutex_lock(&a->lsn_lock);
			r->claiming = 0;
			pthread_mutex_unlock(&a->lsn_lock);
			repo_unload(r);
			r->reload_watched = 1;
		}
		if (j->rc < 0) {
			/* Tried again on r's backoff (reloaded then, if it claimed); unless it claimed, r goes on as it was. */
			gw_error_set(j->rc, "%s", job_message(j));
			note_failure(a, r, j->rc, 0);
			if (j->claimed)
				return;
		}
	}
	if (!r->loaded || r->held_since)
		gw_archiver_sync_repo(a, r->rel, r->held_since); /* what waited for it: a load, a change */
	else
		policy_full_maybe(a, r); /* its queue may have emptied meanwhile */
}

/*
 * A job of r reported (its state loaded, or a full backup taken): if r is
 * a pool in a new generation, its members' full backups are due now, not
 * at their next change (DESIGN.md 19).
 */
static void pool_members_check(gw_archiver *a, arepo *r)
{
	size_t i;
	if (held(a, r) || !r->loaded || !r->base_lsn)
		return; /* (held: its state is a job's again) */
	for (i = 0; i < a->nrepos; i++) {
		arepo *m = a->repos[i];
		if (!m->job && m->loaded && m->pool && !m->pool_why && m->pool_base != r->base_lsn &&
		    !strcmp(m->pool, r->rel)) {
			m->pool_why = "pool_generation";
			policy_full_maybe(a, m);
		}
	}
}

/* What the job threads did, in this thread. */
static void take_jobs(gw_archiver *a)
{
	for (;;) {
		ajob *j;
		pthread_mutex_lock(&a->jobs_lock);
		j = jobs_pop(&a->done);
		pthread_mutex_unlock(&a->jobs_lock);
		if (!j)
			break;
		j->r->job = NULL;
		if (j->kind == JOB_LOAD)
			load_reported(a, j->r, j);
		else
			policy_reported(a, j->r, j);
		pool_members_check(a, j->r);
		job_free(j);
	}
	gw_error_clear();
}

size_t gw_archiver_holding(gw_archiver *a)
{
	return a->holding;
}

/* r waits for a job: a load (or first full backup), or its policy full backup's claim. */
static int held(gw_archiver *a, arepo *r)
{
	return (r->job && r->job->kind == JOB_LOAD) || is_claiming(a, r);
}

/*
 * The service's sync of r: what needs the store goes to a job thread (r is
 * then held, CAPTURE_HELD); the rest, capture, is this thread's.
 */
static int sync_service(gw_archiver *a, arepo *r, int64_t changed_us)
{
	int rc, present;
	if (held(a, r)) {
		hold(r, changed_us);
		return CAPTURE_HELD;
	}
	if (!r->loaded && !r->resync && !gw_spool_store_may_try(a->spool)) {
		/* The store is known to be away (it may stall): what this host knows, here (no store request). */
		if ((rc = repo_load_offline(a, r)) < 0)
			return rc;
		loaded_after_hold(r);
	}
	present = gw_repo_present(a->opts.root, r->rel);
	if (!r->loaded || (present && (!r->base_lsn || !r->exists))) {
		if (r->job) {
			/* Its policy full backup is in flight: the load follows it. */
			hold(r, changed_us);
			return CAPTURE_HELD;
		}
		if (r->loaded && !gw_spool_store_may_try(a->spool))
			return gw_error_set(GW_EIO, "repository %s: its full backup (%s) waits for the store, which is "
						    "unhealthy", r->rel, r->base_lsn ? "recreated" : "initial");
		return load_submit(a, r, 1, changed_us);
	}
	rc = sync_repo(a, r, changed_us);
	if ((rc == GW_EEXISTS || rc == GW_ECHANGED) && !r->foreign && ++r->reloads < 4) {
		/*
		 * The LSN was taken, or the repository moved under us: load again and
		 * go on after it (off this thread; r waits). Watched all along: only a
		 * change seen while it waits went unobserved.
		 */
		gw_error_clear();
		repo_unload(r);
		r->reload_watched = 1;
		return load_submit(a, r, 0, changed_us);
	}
	if (rc != CAPTURE_HELD)
		r->reloads = 0;
	if (rc == 0)
		r->held_since = 0; /* what it waited for is captured */
	return rc;
}

int gw_archiver_sync_repo(gw_archiver *a, const char *rel, int64_t changed_us)
{
	arepo *r;
	int rc;
	unsigned tries = 0;
	if ((rc = gw_repo_path_check(rel)) < 0)
		return rc;
	if (!(r = repo_get(a, rel)))
		return gw_error_set(GW_ERROR, "out of memory");
	if (r->foreign)
		return 0; /* said when it was found; audit tells the rest */
	if (r->job && r->job->kind == JOB_LOAD) {
		hold(r, changed_us); /* its state is the job's until it reports */
		return 0;
	}
	if (r->refused && (rc = still_refused(a, r)) < 0)
		return rc; /* said when it was refused */
	if (r->retry_changed_us && (!changed_us || r->retry_changed_us < changed_us))
		changed_us = r->retry_changed_us; /* the change that failed before is the one being archived */
	if (a->nthreads) {
		if ((rc = sync_service(a, r, changed_us)) == CAPTURE_HELD)
			return 0; /* archived when its job reports */
		if ((rc = sync_done(a, r, rc, changed_us)) == 0)
			policy_full_maybe(a, r); /* (once its retry state is cleared: a failed one is due again) */
		return rc;
	}
	rc = sync_repo(a, r, changed_us);
	while ((rc == GW_EEXISTS || rc == GW_ECHANGED) && !r->foreign && ++tries < 4) {
		/*
		 * A full backup took the LSN (or the repository moved under us):
		 * reload and go on after it. Watched all along: no state went
		 * unobserved, so the next segment is no gap.
		 */
		if ((rc = repo_load(a, r, NULL)) < 0)
			break;
		r->unobserved_since = 0;
		rc = sync_repo(a, r, changed_us);
	}
	return sync_done(a, r, rc, changed_us);
}

int gw_archiver_sync_all(gw_archiver *a)
{
	char **repos = NULL, **known = NULL;
	size_t n = 0, nknown = 0, i;
	int failed = 0;
	if (gw_repo_discover(a->opts.root, &repos, &n) < 0)
		return -1;
	for (i = 0; i < n && !(a->opts.stop && *a->opts.stop); i++)
		if (gw_archiver_sync_repo(a, repos[i], 0) < 0)
			failed++;
	/* Archived repositories that are no longer there were deleted. */
	if (gw_index_repos(a->index, &known, &nknown) == 0)
		for (i = 0; i < nknown && !(a->opts.stop && *a->opts.stop); i++)
			if (!gw_repo_present(a->opts.root, known[i]) && gw_archiver_sync_repo(a, known[i], 0) < 0)
				failed++;
	gw_repo_list_free(repos, n);
	gw_repo_list_free(known, nknown);
	return failed;
}

/*
 * Another writer took the LSN of a spooled segment (while the store was out
 * of reach, or before the upload): its segments can never be the store's;
 * they are set aside. Its archived state is the store's again; the states
 * only the set-aside segments held are unknown to the archive (the next
 * segment records the gap) unless they all lie before the store's last
 * record (a full backup that took the LSN holds them).
 */
static void apply_conflict(gw_archiver *a, arepo *r, uint64_t lsn, int full, int unreadable, int64_t last_us)
{
	repo_unload(r);
	lsn_taken(a, r, lsn, full, unreadable);
	r->resync_last_us = last_us;
}

static void spool_conflict(gw_archiver *a, const gw_spool_event *ev)
{
	arepo *r = repo_get(a, ev->rel);
	uint64_t bytes = 0;
	size_t count = 0;
	int64_t last_us = 0;
	int rc;
	if (!r)
		return;
	rc = gw_spool_set_aside(a->spool, ev->rel, &bytes, &count, &last_us);
	log_event(a, "event=spool_conflict repo=%s lsn=%llu taken_by=%s action=set_aside segments=%zu bytes=%llu%s%s%s",
		  ev->rel, (unsigned long long)ev->item.lsn,
		  ev->taken_by_full ? "full_backup" : ev->taken_unreadable ? "unknown" : "segment", count,
		  (unsigned long long)bytes, rc < 0 ? " error=\"" : "", rc < 0 ? gw_error_message() : "",
		  rc < 0 ? "\"" : "");
	if (r->job && r->job->kind == JOB_LOAD) {
		/* Its state is the load job's: the conflict is applied when it reports. */
		r->conflict = 1;
		r->conflict_lsn = ev->item.lsn;
		r->conflict_full = ev->taken_by_full;
		r->conflict_unreadable = ev->taken_unreadable;
		r->conflict_last_us = last_us;
	} else {
		apply_conflict(a, r, ev->item.lsn, ev->taken_by_full, ev->taken_unreadable, last_us);
	}
	gw_error_clear();
}

/* What the upload threads did, in this thread: log it, count it, act on conflicts. */
static void take_events(gw_archiver *a)
{
	gw_spool_event ev;
	while (gw_spool_next_event(a->spool, &ev) == 1) {
		switch (ev.kind) {
		case GW_SPOOL_UPLOADED:
			log_event(a, "event=segment repo=%s lsn=%llu updates=%llu objects=%llu bytes=%llu lag_ms=%.1f "
				     "upload_ms=%.1f%s", ev.rel, (unsigned long long)ev.item.lsn,
				  (unsigned long long)ev.item.updates, (unsigned long long)ev.item.objects,
				  (unsigned long long)ev.item.bytes,
				  ev.item.changed_us ? (double)(ev.durable_us - ev.item.changed_us) / 1000.0 : 0.0,
				  ev.upload_s * 1000.0, ev.item.gap ? " gap=1" : "");
			{
				/* Its queue may be empty now: a policy's full backup waits for that. */
				arepo **found = a->nrepos ? bsearch(ev.rel, a->repos, a->nrepos, sizeof(arepo *), repo_cmp)
							  : NULL;
				if (found)
					policy_full_maybe(a, *found);
			}
			break;
		case GW_SPOOL_FAILED:
			log_event(a, "event=upload_failed repo=%s lsn=%llu spool_segments=%zu retry_ms=%lld error=\"%s\"",
				  ev.rel, (unsigned long long)ev.item.lsn, gw_spool_count(a->spool), (long long)ev.retry_ms,
				  ev.message ? ev.message : "");
			break;
		case GW_SPOOL_CONFLICT:
			spool_conflict(a, &ev);
			break;
		case GW_SPOOL_HEALTH:
			if (ev.healthy) {
				size_t i;
				log_event(a, "event=store_healthy spool_segments=%zu", gw_spool_count(a->spool));
				/* Repositories waiting for the store go now, not on their backoff. */
				for (i = 0; i < a->nrepos; i++)
					if (a->repos[i]->retry_at_ms)
						a->repos[i]->retry_at_ms = 1;
			} else {
				log_event(a, "event=store_unhealthy spool_segments=%zu error=\"%s\"", gw_spool_count(a->spool),
					  ev.message ? ev.message : "");
			}
			break;
		}
		gw_spool_event_dispose(&ev);
	}
}

int gw_archiver_tick(gw_archiver *a)
{
	int64_t now_ms, next = -1;
	size_t i;

	if (!a->opts.upload_threads)
		gw_spool_flush(a->spool); /* archive --once: the uploads are this thread's */
	take_events(a);
	take_jobs(a);
	now_ms = mono_ms();
	for (i = 0; i < a->nrepos && !(a->opts.stop && *a->opts.stop); i++) {
		arepo *r = a->repos[i];
		int due;
		if (r->foreign || held(a, r))
			continue; /* a held one is archived when its job reports */
		/* Changed while the spool was full (when there is room), set aside, or failed (on its backoff). */
		due = ((r->dirty_since || r->resync) && !gw_spool_full(a->spool)) ||
		      (r->retry_at_ms && r->retry_at_ms <= now_ms);
		if (due) {
			gw_archiver_sync_repo(a, r->rel, 0);
			now_ms = mono_ms();
		}
		if (r->retry_at_ms) {
			int64_t in = r->retry_at_ms > now_ms ? r->retry_at_ms - now_ms : 0;
			if (next < 0 || in < next)
				next = in;
		} else if ((r->dirty_since || r->resync) && (next < 0 || next > 1000)) {
			next = 1000; /* waiting for room in the spool */
		}
	}
	if (!a->opts.upload_threads)
		take_events(a);
	return next < 0 ? -1 : (int)(next > INT32_MAX - 1 ? INT32_MAX - 1 : next) + 1;
}

static void report_one(const char *rel, size_t n, uint64_t first, uint64_t last, const char *error, void *payload)
{
	fprintf(payload, "gitwal archive: repository %s: %zu segment%s (LSN %llu-%llu) still in the spool, not in the "
			 "store%s%s\n", rel, n, n == 1 ? "" : "s", (unsigned long long)first, (unsigned long long)last,
		error ? ": " : "", error ? error : "");
}

size_t gw_archiver_report_spooled(gw_archiver *a, FILE *out)
{
	return gw_spool_pending(a->spool, report_one, out);
}
