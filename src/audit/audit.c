/*
 * gw_audit_run: the archive checked against itself and against the index.
 *
 * 1. The index is read as it is (never synced first: an audit that repaired
 *    the index before comparing would hide what it is asked to find).
 * 2. The store is listed (repos/, or each selected repository's prefix).
 *    Listing and index rows are merged into one table of records per
 *    repository and LSN; what the listing alone shows is checked at once:
 *    keys gitwal never writes, parts without a manifest, keys the index
 *    lists that the store lacks and the reverse, sizes against the index.
 * 3. Each record of this run's share (--since, --sample, --max-duration,
 *    resuming after the last run's cursor) is checked on worker threads:
 *    stat (write-once), its manifest or segment header and trailer read
 *    from the store, and with read_data every byte (data.c).
 * 4. Each repository's chain is walked in LSN order with what the store
 *    said (or, for records outside this run's share, what the index says):
 *    gaps, previous-digest links, base full backups, times.
 * 5. With deep, the latest state of each repository is restored and
 *    checked (deep.c).
 */
#include "gitwal/array.h"
#include "gitwal/audit.h"
#include "util/thread.h"
#include "gitwal/error.h"
#include "gitwal/expire.h"
#include "gitwal/fs.h"
#include "gitwal/layout.h"
#include "gitwal/repo.h"
#include "gitwal/segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef enum { REC_NONE = 0, REC_FULL, REC_SEGMENT } rec_kind;

typedef struct {
	char *key;
	uint64_t size;
	int present;
	int content_reported; /* a problem about its bytes is known: do not report consequences */
} part;

typedef struct record {
	struct repo *repo;
	uint64_t lsn;
	part parts[GW_KEY_SEGMENT + 1]; /* indexed by gw_key_kind */
	gw_full_record *ifull;          /* the index's row, if any */
	gw_segment_record *iseg;
	rec_kind kind;
	int unindexed; /* a segment key the index does not list: reported once its header says what it is */
	int eligible; /* in this run's scope (--since) */
	int checked;  /* read from the store by this run */
	/* What the chain check uses: from the store when checked, else from the index. */
	int have_meta;
	char digest[65];
	char index_digest[65];
	int digest_from_store;
	char prev[65];
	uint64_t base_lsn;
	int64_t t_first, t_last;
} record;

typedef struct repo {
	char *rel;
	char *prefix;
	record *recs;
	size_t n, cap;
	uint64_t expired_to; /* the highest LSN its expire records cover: its chain starts after it */
} repo;

/* One row of the merge: a listed key or an index row. */
typedef struct {
	char *prefix;
	char *rel;
	uint64_t lsn;
	gw_key_kind kind; /* listed key */
	char *key;
	uint64_t size;
	gw_full_record *ifull;
	gw_segment_record *iseg;
} item;

typedef struct {
	gw_store *store;
	gw_index *index;
	const gw_audit_opts *opts;
	gw_audit_report *report;
	item *items;
	size_t nitems, cap;
	repo *repos;
	size_t nrepos;
	uint32_t features;
	int64_t now_s;
	/* the work list */
	record **work;
	size_t nwork, start, quota;
	size_t next;
	int stop;
	struct timespec t0;
	pthread_mutex_t lock;
	int fatal;
	char **expires; /* expire records listed (DESIGN.md 18.6) */
	size_t nexpires, expires_cap;
} audit;

static const char *part_name(gw_key_kind k)
{
	return k == GW_KEY_FULL_BUNDLE ? "bundle" : k == GW_KEY_FULL_IDX ? "idx" : k == GW_KEY_FULL_MANIFEST ? "manifest" : "segment";
}

static double elapsed(const audit *a)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - a->t0.tv_sec) + (double)(t.tv_nsec - a->t0.tv_nsec) / 1e9;
}

static int add_item(audit *a, item *it)
{
	if (GW_ARRAY_RESERVE(a->items, a->cap, a->nitems + 1) < 0)
		return GW_ERROR;
	a->items[a->nitems++] = *it;
	return 0;
}

static int repo_selected(const audit *a, const char *rel)
{
	size_t i;
	if (!a->opts->nrepos)
		return 1;
	for (i = 0; i < a->opts->nrepos; i++)
		if (!strcmp(a->opts->repos[i], rel))
			return 1;
	return 0;
}

/* ---- step 1: the index as it is ---- */

/* An index row copied by index_full_cb or index_segment_cb (either may be NULL). */
static void free_rows(gw_full_record *ifull, gw_segment_record *iseg)
{
	if (ifull) {
		gw_full_record_dispose(ifull);
		free(ifull);
	}
	if (iseg) {
		gw_segment_record_dispose(iseg);
		free(iseg);
	}
}

/* An item's fields that are still its own (what build_table has not moved). */
static void free_item(item *it)
{
	free_rows(it->ifull, it->iseg);
	free(it->rel);
	free(it->prefix);
	free(it->key);
	memset(it, 0, sizeof(*it));
}

/*
 * Add the item of an index row of repository rel at lsn, whose copy of the
 * row is complete when copied; on any failure the item is freed.
 */
static int add_index_item(audit *a, item *it, const char *rel, uint64_t lsn, int copied)
{
	it->rel = strdup(rel);
	it->prefix = gw_layout_repo_prefix(rel);
	it->lsn = lsn;
	if (!copied || !it->rel || !it->prefix || add_item(a, it) < 0) {
		free_item(it);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	return 0;
}

static int index_full_cb(const gw_full_record *r, void *payload)
{
	audit *a = payload;
	item it;
	memset(&it, 0, sizeof(it));
	if (!repo_selected(a, r->repository))
		return 0;
	if (!(it.ifull = calloc(1, sizeof(*it.ifull))))
		return gw_error_set(GW_ERROR, "out of memory");
	*it.ifull = *r;
	it.ifull->repository = strdup(r->repository);
	it.ifull->manifest_key = strdup(r->manifest_key);
	return add_index_item(a, &it, r->repository, r->lsn, it.ifull->repository && it.ifull->manifest_key);
}

static int index_segment_cb(const gw_segment_record *r, void *payload)
{
	audit *a = payload;
	item it;
	memset(&it, 0, sizeof(it));
	if (!(it.iseg = calloc(1, sizeof(*it.iseg))))
		return gw_error_set(GW_ERROR, "out of memory");
	*it.iseg = *r;
	it.iseg->repository = strdup(r->repository);
	it.iseg->key = strdup(r->key);
	return add_index_item(a, &it, r->repository, r->lsn, it.iseg->repository && it.iseg->key);
}

static int load_index(audit *a)
{
	char **repos = NULL;
	size_t n = 0, i;
	int rc;
	if (!a->index)
		return 0;
	if ((rc = gw_index_full_foreach(a->index, NULL, index_full_cb, a)) < 0)
		return rc;
	/* Segments, for every repository the index knows (or was asked about). */
	if (a->opts->nrepos) {
		for (i = 0; i < a->opts->nrepos && rc >= 0; i++)
			rc = gw_index_segment_foreach(a->index, a->opts->repos[i], 1, UINT64_MAX, index_segment_cb, a);
		return rc < 0 ? rc : 0;
	}
	if ((rc = gw_index_repos(a->index, &repos, &n)) < 0)
		return rc;
	for (i = 0; i < n && rc >= 0; i++)
		rc = gw_index_segment_foreach(a->index, repos[i], 1, UINT64_MAX, index_segment_cb, a);
	for (i = 0; i < n; i++)
		free(repos[i]);
	free(repos);
	return rc < 0 ? rc : 0;
}

/* ---- step 2: the listing ---- */

/* The repository a key under repos/ belongs to, when its component decodes to one. */
static char *key_repo(const char *key)
{
	const char *p = key + strlen(GW_LAYOUT_REPOS), *slash;
	char comp[1024];
	if (strncmp(key, GW_LAYOUT_REPOS, strlen(GW_LAYOUT_REPOS)) != 0 || !(slash = strchr(p, '/')) ||
	    (size_t)(slash - p) >= sizeof(comp))
		return NULL;
	memcpy(comp, p, (size_t)(slash - p));
	comp[slash - p] = '\0';
	return gw_repo_path_decode(comp);
}

static int list_cb(const gw_store_entry *e, void *payload)
{
	audit *a = payload;
	item it;
	gw_key_kind kind;
	char *rel = NULL;
	uint64_t lsn;
	memset(&it, 0, sizeof(it));
	a->report->counts.keys++;
	if (gw_layout_parse_key(e->key, &rel, &lsn, &kind) < 0 || kind == GW_KEY_UNKNOWN || !rel ||
	    gw_repo_path_check(rel) < 0 || lsn == 0) {
		char *owner = key_repo(e->key);
		int rc = gw_audit_report_add(a->report, owner, 0, e->key, GW_AUDIT_UNEXPECTED,
					     "not a key gitwal writes (%llu bytes)", (unsigned long long)e->size);
		free(owner);
		free(rel);
		gw_error_clear();
		return rc;
	}
	if (!repo_selected(a, rel)) {
		free(rel);
		return 0;
	}
	if (kind == GW_KEY_EXPIRE) {
		/* Not a record of the chain: what it covers is expired by policy (apply_expires). */
		free(rel);
		if (GW_ARRAY_RESERVE(a->expires, a->expires_cap, a->nexpires + 1) < 0 ||
		    !(a->expires[a->nexpires] = strdup(e->key)))
			return gw_error_set(GW_ERROR, "out of memory");
		a->nexpires++;
		return 0;
	}
	it.rel = rel;
	it.prefix = gw_layout_repo_prefix(rel);
	it.lsn = lsn;
	it.kind = kind;
	it.key = strdup(e->key);
	it.size = e->size;
	if (!it.prefix || !it.key || add_item(a, &it) < 0) {
		free_item(&it);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	return 0;
}

/*
 * Call fn with each prefix the audit reads below: repos/, or each selected
 * repository's prefix.
 */
static int each_prefix(audit *a, int (*fn)(audit *a, const char *prefix))
{
	size_t i;
	int rc = 0;
	if (!a->opts->nrepos)
		return fn(a, GW_LAYOUT_REPOS);
	for (i = 0; i < a->opts->nrepos && rc >= 0; i++) {
		char *prefix = gw_layout_repo_prefix(a->opts->repos[i]);
		if (!prefix)
			return gw_error_set(GW_ERROR, "out of memory");
		rc = fn(a, prefix);
		free(prefix);
	}
	return rc;
}

static int list_prefix(audit *a, const char *prefix)
{
	return gw_store_list(a->store, prefix, list_cb, a);
}

/*
 * What the store holds besides keys (DESIGN.md 2.2): a leftover of a writer
 * not known to run is a warning; a name that is not a regular file where a
 * key could be (below a repository's directory, or in repos/ itself where a
 * repository's directory should be) is a problem.
 */
static int stray_cb(const gw_store_stray *s, void *payload)
{
	audit *a = payload;
	const char *below = s->key + strlen(GW_LAYOUT_REPOS);
	char *rel = NULL, when[40];
	uint64_t lsn = 0;
	gw_key_kind kind;
	int rc = 0;
	if (strncmp(s->key, GW_LAYOUT_REPOS, strlen(GW_LAYOUT_REPOS)) != 0 ||
	    (s->kind == GW_STORE_STRAY_DIRECTORY && !strchr(below, '/')) ||
	    (s->kind == GW_STORE_STRAY_LEFTOVER && s->live))
		return 0; /* a repository's directory, or a writer at work */
	if (gw_layout_parse_key(s->key, &rel, &lsn, &kind) < 0 || kind == GW_KEY_UNKNOWN) {
		free(rel);
		rel = key_repo(s->key);
		lsn = 0;
	}
	gw_error_clear();
	if (rel && !repo_selected(a, rel)) {
		free(rel);
		return 0;
	}
	if (s->kind == GW_STORE_STRAY_LEFTOVER) {
		gw_time_format((int64_t)s->mtime * 1000000, when, sizeof(when));
		rc = gw_audit_report_add(a->report, rel, lsn, s->key, GW_AUDIT_LEFTOVER,
					 "%s %s (%llu bytes, since %s) of %s: %s", s->type, s->name,
					 (unsigned long long)s->size, when, s->owner,
					 s->removable ? "the next backup or archive writing there removes it"
						      : "the next backup or archive writing there removes it once its "
							"writer is presumed dead (DESIGN.md 2.2)");
	} else {
		rc = gw_audit_report_add(a->report, rel, lsn, s->key, GW_AUDIT_NOT_A_FILE,
					 "a %s where a key could be: not a stored object (never read, listed or "
					 "written over); remove it",
					 s->type);
	}
	free(rel);
	return rc;
}

static int strays_prefix(audit *a, const char *prefix)
{
	return gw_store_strays(a->store, prefix, stray_cb, a);
}

static int item_cmp(const void *pa, const void *pb)
{
	const item *x = pa, *y = pb;
	int c = strcmp(x->prefix, y->prefix);
	if (c)
		return c;
	return x->lsn < y->lsn ? -1 : x->lsn > y->lsn;
}

/* Merge the items into repositories and records (items are consumed). */
static int build_table(audit *a)
{
	size_t i, r = 0;
	if (a->nitems)
		qsort(a->items, a->nitems, sizeof(item), item_cmp);
	for (i = 0; i < a->nitems; i++)
		if (i == 0 || strcmp(a->items[i].prefix, a->items[i - 1].prefix))
			a->nrepos++;
	if (a->nrepos && !(a->repos = calloc(a->nrepos, sizeof(repo))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < a->nitems; i++) {
		item *it = &a->items[i];
		repo *rp;
		record *rec;
		if (a->repos[r].prefix && strcmp(it->prefix, a->repos[r].prefix) != 0)
			r++;
		rp = &a->repos[r];
		if (!rp->rel) {
			rp->rel = it->rel;
			rp->prefix = it->prefix;
			it->rel = it->prefix = NULL;
		}
		if (!rp->n || rp->recs[rp->n - 1].lsn != it->lsn) {
			if (GW_ARRAY_RESERVE(rp->recs, rp->cap, rp->n + 1) < 0)
				return GW_ERROR;
			rec = &rp->recs[rp->n++];
			memset(rec, 0, sizeof(*rec));
			rec->lsn = it->lsn;
		}
		rec = &rp->recs[rp->n - 1];
		if (it->key) {
			part *p = &rec->parts[it->kind];
			p->key = it->key;
			p->size = it->size;
			p->present = 1;
			it->key = NULL;
		}
		if (it->ifull) {
			rec->ifull = it->ifull;
			it->ifull = NULL;
		}
		if (it->iseg) {
			rec->iseg = it->iseg;
			it->iseg = NULL;
		}
		free_item(it);
	}
	free(a->items);
	a->items = NULL;
	a->nitems = 0;
	/* Back pointers, once the arrays stopped moving. */
	for (r = 0; r < a->nrepos; r++)
		for (i = 0; i < a->repos[r].n; i++)
			a->repos[r].recs[i].repo = &a->repos[r];
	return 0;
}

static void free_record(record *rec)
{
	int k;
	for (k = 0; k <= GW_KEY_SEGMENT; k++)
		free(rec->parts[k].key);
	free_rows(rec->ifull, rec->iseg);
}

static void free_table(audit *a)
{
	size_t r, i;
	for (r = 0; r < a->nrepos; r++) {
		for (i = 0; i < a->repos[r].n; i++)
			free_record(&a->repos[r].recs[i]);
		free(a->repos[r].recs);
		free(a->repos[r].rel);
		free(a->repos[r].prefix);
	}
	free(a->repos);
	for (r = 0; r < a->nitems; r++)
		free_item(&a->items[r]);
	free(a->items);
	free(a->work);
	for (r = 0; r < a->nexpires; r++)
		free(a->expires[r]);
	free(a->expires);
}

/*
 * Expire records (DESIGN.md 18.6): each is read and checked (one that does
 * not parse, or lies about its key, is corrupt). What one covers is expired
 * by policy, not lost: the records at or below its LSN leave the table (an
 * index that still lists them is stale, not wrong), and a key of them still
 * in the store is one "expire-resume" warning per repository: a run was
 * interrupted, or a key is locked, and the next expire removes it.
 */
static int apply_expires(audit *a)
{
	size_t e, r, i, j;
	for (e = 0; e < a->nexpires; e++) {
		gw_expire_record rec;
		if (gw_expire_record_read(a->store, a->expires[e], &rec) < 0) {
			char *rel = key_repo(a->expires[e]);
			gw_audit_report_add(a->report, rel, 0, a->expires[e],
					    gw_error_code() == GW_EIO ? GW_AUDIT_UNREADABLE : GW_AUDIT_CORRUPT, "%s",
					    gw_error_message());
			free(rel);
			continue;
		}
		a->report->counts.expire_records++;
		for (r = 0; r < a->nrepos; r++)
			if (!strcmp(a->repos[r].rel, rec.repository) && rec.last_lsn > a->repos[r].expired_to)
				a->repos[r].expired_to = rec.last_lsn;
		gw_expire_record_dispose(&rec);
	}
	for (r = 0; r < a->nrepos; r++) {
		repo *rp = &a->repos[r];
		uint64_t left = 0, lo = 0, hi = 0;
		char *expire_key;
		int k;
		if (!rp->expired_to)
			continue;
		for (i = 0, j = 0; i < rp->n; i++) {
			record *rec = &rp->recs[i];
			if (rec->lsn > rp->expired_to) {
				rp->recs[j++] = *rec;
				continue;
			}
			for (k = GW_KEY_FULL_BUNDLE; k <= GW_KEY_SEGMENT; k++)
				if (rec->parts[k].present) {
					left++;
					lo = lo ? lo : rec->lsn;
					hi = rec->lsn;
				}
			free_record(rec);
		}
		rp->n = j;
		if (!left)
			continue;
		expire_key = gw_layout_key(rp->rel, rp->expired_to, GW_KEY_EXPIRE);
		gw_audit_report_add(a->report, rp->rel, lo, expire_key, GW_AUDIT_EXPIRE_RESUME,
				    "an expire to resume: %llu key%s of LSNs %llu to %llu %s still in the store, expired by "
				    "policy (interrupted, or under Object Lock retention): the next 'gitwal expire' removes "
				    "them",
				    (unsigned long long)left, left == 1 ? "" : "s", (unsigned long long)lo,
				    (unsigned long long)hi, left == 1 ? "is" : "are");
		free(expire_key);
	}
	return 0;
}

/* The key a record is named by: its manifest or segment, else its first part. */
static const char *record_key(const record *rec)
{
	int k;
	if (rec->parts[GW_KEY_FULL_MANIFEST].present)
		return rec->parts[GW_KEY_FULL_MANIFEST].key;
	if (rec->parts[GW_KEY_SEGMENT].present)
		return rec->parts[GW_KEY_SEGMENT].key;
	if (rec->ifull)
		return rec->ifull->manifest_key;
	if (rec->iseg)
		return rec->iseg->key;
	for (k = GW_KEY_FULL_BUNDLE; k <= GW_KEY_SEGMENT; k++)
		if (rec->parts[k].present)
			return rec->parts[k].key;
	return NULL;
}

static int64_t record_index_time(const record *rec)
{
	return rec->ifull ? rec->ifull->time_us : rec->iseg ? rec->iseg->time_last_us : INT64_MAX;
}

/* What the listing alone shows, record by record. */
static int listing_checks(audit *a, int index_usable)
{
	gw_audit_report *rp = a->report;
	size_t r, i;
	int k;
	for (r = 0; r < a->nrepos; r++) {
		const char *rel = a->repos[r].rel;
		for (i = 0; i < a->repos[r].n; i++) {
			record *rec = &a->repos[r].recs[i];
			int has_full = rec->parts[GW_KEY_FULL_MANIFEST].present || rec->ifull;
			int has_seg = rec->parts[GW_KEY_SEGMENT].present || rec->iseg;
			rec->kind = has_full ? REC_FULL : has_seg ? REC_SEGMENT : REC_NONE;
			/* A full backup's claim on its LSN is the segment key beside it (check_claim); the index never lists one. */
			if (has_full && rec->iseg)
				gw_audit_report_add(rp, rel, rec->lsn, rec->iseg->key, GW_AUDIT_UNEXPECTED,
						    "LSN %llu holds both a full backup and a segment: an LSN was used twice",
						    (unsigned long long)rec->lsn);
			if (rec->kind == REC_FULL) {
				a->report->counts.full_backups++;
				if (rec->ifull)
					memcpy(rec->index_digest, rec->ifull->manifest_sha256, 65);
				if (!rec->parts[GW_KEY_FULL_MANIFEST].present) {
					gw_audit_report_add(rp, rel, rec->lsn, rec->ifull->manifest_key, GW_AUDIT_MISSING,
							    "the index lists this full backup; its manifest is not in the store");
				} else if (!rec->ifull && index_usable) {
					gw_audit_report_add(rp, rel, rec->lsn, rec->parts[GW_KEY_FULL_MANIFEST].key,
							    GW_AUDIT_UNINDEXED,
							    "a full backup the index does not list (written by another index's "
							    "host, or the index lost it: 'gitwal index rebuild' relists it)");
				}
				for (k = GW_KEY_FULL_BUNDLE; k <= GW_KEY_FULL_MANIFEST; k++) {
					part *p = &rec->parts[k];
					uint64_t want;
					if (!rec->ifull)
						break;
					want = k == GW_KEY_FULL_BUNDLE ? rec->ifull->bundle_size
					       : k == GW_KEY_FULL_IDX  ? rec->ifull->idx_size
									: rec->ifull->manifest_size;
					if (k != GW_KEY_FULL_MANIFEST && !p->present && rec->parts[GW_KEY_FULL_MANIFEST].present)
						continue; /* "incomplete", from the manifest */
					if (!p->present && k != GW_KEY_FULL_MANIFEST) {
						char *key = gw_layout_key(rel, rec->lsn, (gw_key_kind)k);
						gw_audit_report_add(rp, rel, rec->lsn, key, GW_AUDIT_MISSING,
								    "the index lists this full backup; its %s is not in the store",
								    part_name((gw_key_kind)k));
						free(key);
					} else if (p->present && p->size != want) {
						gw_audit_report_add(rp, rel, rec->lsn, p->key, GW_AUDIT_SIZE,
								    "stored %s is %llu bytes, the index records %llu",
								    part_name((gw_key_kind)k), (unsigned long long)p->size,
								    (unsigned long long)want);
						p->content_reported = 1;
					}
				}
			} else if (rec->kind == REC_SEGMENT) {
				part *p = &rec->parts[GW_KEY_SEGMENT];
				a->report->counts.segments++;
				if (rec->iseg)
					memcpy(rec->index_digest, rec->iseg->sha256, 65);
				if (!p->present) {
					gw_audit_report_add(rp, rel, rec->lsn, rec->iseg->key, GW_AUDIT_MISSING,
							    "the index lists this segment; it is not in the store");
				} else if (!rec->iseg && index_usable) {
					rec->unindexed = 1; /* a segment, or an uncommitted full backup's claim */
				} else if (rec->iseg && p->size != rec->iseg->size) {
					gw_audit_report_add(rp, rel, rec->lsn, p->key, GW_AUDIT_SIZE,
							    "stored segment is %llu bytes, the index records %llu",
							    (unsigned long long)p->size, (unsigned long long)rec->iseg->size);
					p->content_reported = 1;
				}
			}
			/* Parts of a full backup whose manifest never came: not a backup (DESIGN.md 4.4). */
			if (!has_full)
				for (k = GW_KEY_FULL_BUNDLE; k <= GW_KEY_FULL_IDX; k++)
					if (rec->parts[k].present)
						gw_audit_report_add(rp, rel, rec->lsn, rec->parts[k].key, GW_AUDIT_NO_MANIFEST,
								    "a full backup's %s without its manifest: the backup was "
								    "never committed (or its manifest was deleted)",
								    part_name((gw_key_kind)k));
		}
	}
	return 0;
}

/* ---- step 3: records, one by one ---- */

static void stat_key(audit *a, const char *rel, uint64_t lsn, const char *key)
{
	gw_store_stat st;
	if (gw_store_stat_key(a->store, key, &st) < 0) {
		gw_audit_report_add(a->report, rel, lsn, key,
				    gw_error_code() == GW_ENOTFOUND ? GW_AUDIT_MISSING : GW_AUDIT_UNREADABLE, "stat: %s",
				    gw_error_message());
		return;
	}
	__atomic_add_fetch(&a->report->counts.keys_stat, 1, __ATOMIC_RELAXED);
	if (st.versions > 1)
		gw_audit_report_add(a->report, rel, lsn, key, GW_AUDIT_VERSIONS,
				    "the key has %u versions: it was written more than once", st.versions);
	if ((a->features & GW_STORE_FEATURE_LOCK) && st.retain_until == 0)
		gw_audit_report_add(a->report, rel, lsn, key, GW_AUDIT_RETENTION,
				    "no Object Lock retention: the object can be deleted or overwritten");
	if (st.writable)
		gw_audit_report_add(a->report, rel, lsn, key, GW_AUDIT_WRITABLE,
				    "the stored file is writable (mode allows writing): it is no longer write-once");
}

static void report_unindexed(audit *a, record *rec, const char *key)
{
	gw_audit_report_add(a->report, rec->repo->rel, rec->lsn, key, GW_AUDIT_UNINDEXED,
			    "a segment the index does not list (written by another index's host, or the index lost "
			    "it: 'gitwal index rebuild' relists it)");
	rec->unindexed = 0;
}

/*
 * The segment key beside a full backup must be that full backup's claim on
 * the LSN (DESIGN.md 3); anything else means two writers used the LSN.
 */
static void check_claim(audit *a, record *rec)
{
	part *p = &rec->parts[GW_KEY_SEGMENT];
	gw_segment_header h;
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE], digest[32];
	uint64_t blen, ilen;
	char *text = NULL;
	size_t len;
	int claim;
	if (!p->present)
		return;
	if (gw_segment_read_meta(a->store, p->key, p->size, &h, trailer) < 0) {
		gw_audit_report_add(a->report, rec->repo->rel, rec->lsn, p->key,
				    gw_error_code() == GW_EIO ? GW_AUDIT_UNREADABLE : GW_AUDIT_CORRUPT, "%s",
				    gw_error_message());
		return;
	}
	claim = h.full_backup && h.lsn == rec->lsn && !strcmp(h.repository, rec->repo->rel);
	gw_segment_header_dispose(&h);
	gw_segment_trailer_lengths(trailer, &blen, &ilen);
	if (!claim) {
		gw_audit_report_add(a->report, rec->repo->rel, rec->lsn, p->key, GW_AUDIT_UNEXPECTED,
				    "LSN %llu holds both a full backup and a segment: an LSN was used twice",
				    (unsigned long long)rec->lsn);
	} else if (blen || ilen) {
		gw_audit_report_add(a->report, rec->repo->rel, rec->lsn, p->key, GW_AUDIT_CORRUPT,
				    "a full backup's log record carries a bundle or an index");
	} else if (a->opts->read_data) {
		/* Its bytes against its trailer's SHA-256 (a record of a few hundred bytes). */
		if (gw_store_get(a->store, p->key, GW_SEGMENT_PREFIX_SIZE + GW_SEGMENT_MAX_HEADER, &text, &len) < 0) {
			gw_audit_report_add(a->report, rec->repo->rel, rec->lsn, p->key, GW_AUDIT_UNREADABLE, "%s",
					    gw_error_message());
			return;
		}
		if (len >= GW_SEGMENT_TRAILER_SIZE)
			gw_hash_buffer(GW_HASH_SHA256, text, len - 32, digest);
		if (len < GW_SEGMENT_TRAILER_SIZE || memcmp(digest, text + len - 32, 32) != 0)
			gw_audit_report_add(a->report, rec->repo->rel, rec->lsn, p->key, GW_AUDIT_CHECKSUM,
					    "the full backup's log record does not match its trailer's SHA-256");
		free(text);
	}
}

static void check_full(audit *a, record *rec, uint64_t *bytes)
{
	const char *rel = rec->repo->rel;
	part *mp = &rec->parts[GW_KEY_FULL_MANIFEST];
	gw_manifest m;
	char *text = NULL;
	size_t len;
	unsigned char d[32];
	int k, parts_ok = 1;

	if (gw_store_get(a->store, mp->key, GW_MANIFEST_MAX_SIZE, &text, &len) < 0) {
		gw_audit_report_add(a->report, rel, rec->lsn, mp->key,
				    gw_error_code() == GW_ENOTFOUND ? GW_AUDIT_MISSING : GW_AUDIT_UNREADABLE, "%s",
				    gw_error_message());
		return;
	}
	gw_hash_buffer(GW_HASH_SHA256, text, len, d);
	gw_hex_encode(rec->digest, d, 32);
	rec->digest_from_store = 1;
	rec->have_meta = 1;
	if (rec->ifull && !mp->content_reported && strcmp(rec->digest, rec->ifull->manifest_sha256) != 0) {
		gw_audit_report_add(a->report, rel, rec->lsn, mp->key, GW_AUDIT_CHECKSUM,
				    "manifest has SHA-256 %s, the index records %s", rec->digest,
				    rec->ifull->manifest_sha256);
		mp->content_reported = 1;
	}
	if (gw_manifest_parse(&m, text, len, mp->key) < 0) {
		if (!mp->content_reported)
			gw_audit_report_add(a->report, rel, rec->lsn, mp->key, GW_AUDIT_CORRUPT, "%s", gw_error_message());
		free(text);
		rec->t_first = rec->t_last = rec->ifull ? rec->ifull->time_us : INT64_MIN;
		return;
	}
	free(text);
	rec->t_first = rec->t_last = m.time_us;
	/* Since 0.2 every full backup claims its LSN with its log record first (DESIGN.md 3). */
	if (!rec->parts[GW_KEY_SEGMENT].present && (!m.tool || strcmp(m.tool, "gitwal 0.1.0") != 0)) {
		char *claim = gw_layout_key(rel, rec->lsn, GW_KEY_SEGMENT);
		gw_audit_report_add(a->report, rel, rec->lsn, claim, GW_AUDIT_MISSING,
				    "the full backup's log record (its claim on LSN %llu) is not in the store",
				    (unsigned long long)rec->lsn);
		free(claim);
	}
	if (strcmp(m.repository, rel) != 0 || m.lsn != rec->lsn) {
		gw_audit_report_add(a->report, rel, rec->lsn, mp->key, GW_AUDIT_CORRUPT,
				    "the manifest describes %s at LSN %llu, not its key's repository and LSN", m.repository,
				    (unsigned long long)m.lsn);
		parts_ok = 0;
	}
	for (k = GW_KEY_FULL_BUNDLE; k <= GW_KEY_FULL_IDX && parts_ok; k++) {
		const gw_manifest_part *mpart = k == GW_KEY_FULL_BUNDLE ? &m.bundle : &m.idx;
		part *p = &rec->parts[k];
		char *want = gw_layout_key(rel, rec->lsn, (gw_key_kind)k);
		if (!want || strcmp(want, mpart->key) != 0) {
			gw_audit_report_add(a->report, rel, rec->lsn, mp->key, GW_AUDIT_CORRUPT,
					    "the manifest names %s as its %s, expected %s", mpart->key,
					    part_name((gw_key_kind)k), want ? want : "?");
			parts_ok = 0;
		} else if (!p->present) {
			gw_audit_report_add(a->report, rel, rec->lsn, want, GW_AUDIT_INCOMPLETE,
					    "the full backup's %s is not in the store", part_name((gw_key_kind)k));
			parts_ok = 0;
		} else if (p->size != mpart->size) {
			if (!p->content_reported)
				gw_audit_report_add(a->report, rel, rec->lsn, p->key, GW_AUDIT_SIZE,
						    "stored %s is %llu bytes, the manifest says %llu",
						    part_name((gw_key_kind)k), (unsigned long long)p->size,
						    (unsigned long long)mpart->size);
			p->content_reported = 1;
			parts_ok = 0;
		}
		free(want);
	}
	/* A pooled member's records need the pool's full backup they name (DESIGN.md 19): one stat each. */
	if (m.pool.repository) {
		char *pk = gw_layout_key(m.pool.repository, m.pool.base_lsn, GW_KEY_FULL_MANIFEST);
		gw_store_stat st;
		if (pk && gw_store_stat_key(a->store, pk, &st) < 0)
			gw_audit_report_add(a->report, rel, rec->lsn, pk,
					    gw_error_code() == GW_ENOTFOUND ? GW_AUDIT_MISSING : GW_AUDIT_UNREADABLE,
					    "the pool's full backup this fork's manifest names (%s at LSN %llu): %s",
					    m.pool.repository, (unsigned long long)m.pool.base_lsn, gw_error_message());
		free(pk);
	}
	if (a->opts->read_data && parts_ok) {
		if (gw_audit_verify_full(a->store, rel, &m, a->report, bytes) < 0)
			gw_audit_report_add(a->report, rel, rec->lsn, mp->key, GW_AUDIT_UNREADABLE, "%s",
					    gw_error_message());
	}
	gw_manifest_dispose(&m);
}

static void check_segment(audit *a, record *rec, uint64_t *bytes)
{
	const char *rel = rec->repo->rel;
	part *p = &rec->parts[GW_KEY_SEGMENT];
	gw_segment_header h;
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];

	if (gw_segment_read_meta(a->store, p->key, p->size, &h, trailer) < 0) {
		if (!p->content_reported)
			gw_audit_report_add(a->report, rel, rec->lsn, p->key,
					    gw_error_code() == GW_ENOTFOUND ? GW_AUDIT_MISSING
					    : gw_error_code() == GW_EIO      ? GW_AUDIT_UNREADABLE
									     : GW_AUDIT_CORRUPT,
					    "%s", gw_error_message());
		return;
	}
	if (h.full_backup) {
		/* A full backup claimed the LSN and never wrote its manifest: not a record of the chain. */
		gw_audit_report_add(a->report, rel, rec->lsn, p->key, GW_AUDIT_NO_MANIFEST,
				    "a full backup claimed LSN %llu and never committed its manifest (it failed or was "
				    "interrupted): not a backup",
				    (unsigned long long)rec->lsn);
		rec->kind = REC_NONE;
		rec->unindexed = 0;
		gw_segment_header_dispose(&h);
		return;
	}
	if (rec->unindexed)
		report_unindexed(a, rec, p->key);
	gw_hex_encode(rec->digest, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
	rec->digest_from_store = 1;
	rec->have_meta = 1;
	memcpy(rec->prev, h.prev_sha256, 65);
	rec->base_lsn = h.base_lsn;
	rec->t_first = h.time_first_us;
	rec->t_last = h.time_last_us;
	if (strcmp(h.repository, rel) != 0 || h.lsn != rec->lsn)
		gw_audit_report_add(a->report, rel, rec->lsn, p->key, GW_AUDIT_CORRUPT,
				    "the segment's header describes %s at LSN %llu, not its key's repository and LSN",
				    h.repository, (unsigned long long)h.lsn);
	if (rec->iseg && !p->content_reported && strcmp(rec->digest, rec->iseg->sha256) != 0) {
		gw_audit_report_add(a->report, rel, rec->lsn, p->key, GW_AUDIT_CHECKSUM,
				    "the segment's trailer records SHA-256 %s, the index records %s", rec->digest,
				    rec->iseg->sha256);
		p->content_reported = 1;
	}
	if (h.time_first_us > h.time_last_us)
		gw_audit_report_add(a->report, rel, rec->lsn, p->key, GW_AUDIT_TIME,
				    "the segment's first update is after its last");
	gw_segment_header_dispose(&h);
	if (a->opts->read_data && !p->content_reported &&
	    gw_audit_verify_segment(a->store, rel, rec->lsn, p->key, p->size, a->report, bytes) < 0)
		gw_audit_report_add(a->report, rel, rec->lsn, p->key, GW_AUDIT_UNREADABLE, "%s", gw_error_message());
}

static void check_record(audit *a, record *rec)
{
	uint64_t bytes = 0;
	int k;
	for (k = GW_KEY_FULL_BUNDLE; k <= GW_KEY_SEGMENT; k++)
		if (rec->parts[k].present)
			stat_key(a, rec->repo->rel, rec->lsn, rec->parts[k].key);
	if (rec->kind == REC_FULL && rec->parts[GW_KEY_FULL_MANIFEST].present) {
		check_claim(a, rec);
		check_full(a, rec, &bytes);
	} else if (rec->kind == REC_SEGMENT && rec->parts[GW_KEY_SEGMENT].present)
		check_segment(a, rec, &bytes);
	rec->checked = 1;
	__atomic_add_fetch(&a->report->counts.bytes_read, bytes, __ATOMIC_RELAXED);
	__atomic_add_fetch(&a->report->counts.records_checked, 1, __ATOMIC_RELAXED);
	GW_PROGRESS_ADD(a->opts->progress, done, 1);
}

static void *worker(void *arg)
{
	audit *a = arg;
	for (;;) {
		size_t i;
		pthread_mutex_lock(&a->lock);
		/* At least one record per run, so that a too short limit still makes progress. */
		if (!a->stop && a->next > 0 && a->next < a->quota && a->opts->max_seconds > 0 &&
		    elapsed(a) >= a->opts->max_seconds)
			a->stop = 1;
		if (a->stop || a->next >= a->quota) {
			pthread_mutex_unlock(&a->lock);
			return NULL;
		}
		i = a->next++;
		pthread_mutex_unlock(&a->lock);
		check_record(a, a->work[(a->start + i) % a->nwork]);
	}
}

/* Is rec after the cursor key (by repository prefix, then LSN)? */
static int after_cursor(const record *rec, const char *cprefix, uint64_t clsn)
{
	int c = strcmp(rec->repo->prefix, cprefix);
	return c > 0 || (c == 0 && rec->lsn > clsn);
}

static int check_records(audit *a)
{
	size_t r, i, total = 0;
	pthread_t threads[64];
	int nthreads, t;

	for (r = 0; r < a->nrepos; r++)
		total += a->repos[r].n;
	if (total && !(a->work = calloc(total, sizeof(record *))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (r = 0; r < a->nrepos; r++)
		for (i = 0; i < a->repos[r].n; i++) {
			record *rec = &a->repos[r].recs[i];
			rec->eligible = !a->opts->since_us || record_index_time(rec) > a->opts->since_us;
			if (rec->eligible)
				a->work[a->nwork++] = rec;
		}
	a->report->counts.records_total = a->nwork;
	if (!a->nwork)
		return 0;
	/* Start after the last run's cursor, wrapping around. */
	if (a->opts->resume_after) {
		char *crel = NULL, *cprefix;
		uint64_t clsn;
		gw_key_kind ck;
		if (gw_layout_parse_key(a->opts->resume_after, &crel, &clsn, &ck) == 0 && crel &&
		    (cprefix = gw_layout_repo_prefix(crel))) {
			for (a->start = 0; a->start < a->nwork && !after_cursor(a->work[a->start], cprefix, clsn); a->start++)
				;
			if (a->start == a->nwork)
				a->start = 0;
			free(cprefix);
		}
		free(crel);
		gw_error_clear();
	}
	a->quota = a->nwork;
	if (a->opts->sample_percent > 0 && a->opts->sample_percent < 100) {
		double share = (double)a->nwork * a->opts->sample_percent / 100.0;
		a->quota = (size_t)share;
		if ((double)a->quota < share) /* round up: a sample is never empty */
			a->quota++;
		if (a->quota < 1)
			a->quota = 1;
	}
	if (a->opts->progress) {
		/* Every record of the share is known now: what --read-data will read of them, too. */
		uint64_t bytes = 0;
		int k;
		for (i = 0; a->opts->read_data && i < a->quota; i++)
			for (k = GW_KEY_FULL_BUNDLE; k <= GW_KEY_SEGMENT; k++)
				if (a->work[(a->start + i) % a->nwork]->parts[k].present)
					bytes += a->work[(a->start + i) % a->nwork]->parts[k].size;
		gw_progress_phase(a->opts->progress, "records", a->quota);
		GW_PROGRESS_ADD(a->opts->progress, started, a->quota);
		GW_PROGRESS_ADD(a->opts->progress, planned_bytes, bytes);
	}
	nthreads = a->opts->jobs > 0 ? a->opts->jobs : 1;
	if (nthreads > 64)
		nthreads = 64;
	if ((size_t)nthreads > a->quota)
		nthreads = (int)a->quota;
	for (t = 0; t < nthreads; t++)
		if (gw_thread_create(&threads[t], worker, a) != 0)
			break;
	if (t == 0)
		worker(a);
	nthreads = t;
	for (t = 0; t < nthreads; t++)
		pthread_join(threads[t], NULL);
	/* Workers take records in order and finish what they take: the done ones are a prefix. */
	if (a->next > 0) {
		const char *key = record_key(a->work[(a->start + a->next - 1) % a->nwork]);
		a->report->resume_after = key ? strdup(key) : NULL;
	}
	a->report->stopped_early = a->stop && a->next < a->quota;
	return 0;
}

/* ---- step 4: chains ---- */

/* What the index says about a record the run did not read. */
static void meta_from_index(record *rec)
{
	if (rec->have_meta)
		return;
	if (rec->ifull) {
		memcpy(rec->digest, rec->ifull->manifest_sha256, 65);
		rec->t_first = rec->t_last = rec->ifull->time_us;
		rec->have_meta = 1;
	} else if (rec->iseg) {
		memcpy(rec->digest, rec->iseg->sha256, 65);
		memcpy(rec->prev, rec->iseg->prev_sha256, 65);
		rec->base_lsn = rec->iseg->base_lsn;
		rec->t_first = rec->iseg->time_first_us;
		rec->t_last = rec->iseg->time_last_us;
		rec->have_meta = 1;
	}
}

static void check_chain(audit *a, repo *rp)
{
	const char *rel = rp->rel;
	uint64_t last_full = 0;
	const record *prev_timed = NULL;
	size_t i;
	char when[40], pwhen[40];

	for (i = 0; i < rp->n; i++) {
		record *rec = &rp->recs[i], *before = i ? &rp->recs[i - 1] : NULL;
		const char *key = record_key(rec);
		uint64_t expect = before ? before->lsn + 1 : rp->expired_to + 1;
		meta_from_index(rec);
		if (rec->unindexed) /* not read by this run (sampled out): what the listing alone shows */
			report_unindexed(a, rec, key);
		/* LSNs are allocated one after the other and never skipped: a hole is a lost record. */
		if (rec->lsn != expect && rec->eligible && (before || rec->kind != REC_FULL)) {
			if (expect + 1 == rec->lsn)
				gw_audit_report_add(a->report, rel, expect, NULL, GW_AUDIT_GAP,
						    "LSN %llu is in neither the store nor the index: a record was lost",
						    (unsigned long long)expect);
			else
				gw_audit_report_add(a->report, rel, expect, NULL, GW_AUDIT_GAP,
						    "LSNs %llu to %llu are in neither the store nor the index: records were lost",
						    (unsigned long long)expect, (unsigned long long)(rec->lsn - 1));
		}
		if (rec->kind == REC_SEGMENT && rec->have_meta && rec->eligible) {
			if (!last_full)
				gw_audit_report_add(a->report, rel, rec->lsn, key, GW_AUDIT_BASE,
						    "segment builds on LSN %llu, but no full backup precedes it",
						    (unsigned long long)rec->base_lsn);
			else if (rec->base_lsn != last_full)
				gw_audit_report_add(a->report, rel, rec->lsn, key, GW_AUDIT_BASE,
						    "segment builds on LSN %llu; the latest full backup before it is LSN %llu",
						    (unsigned long long)rec->base_lsn, (unsigned long long)last_full);
			if (before && before->lsn + 1 == rec->lsn && before->kind != REC_NONE) {
				meta_from_index(before);
				/*
				 * A link to the digest the index recorded for a record whose
				 * content changed since: the change is the problem (reported
				 * there as "checksum"), not this link.
				 */
				if (before->have_meta && strcmp(rec->prev, before->digest) != 0 &&
				    !(before->digest_from_store && *before->index_digest &&
				      !strcmp(rec->prev, before->index_digest)))
					gw_audit_report_add(a->report, rel, rec->lsn, key, GW_AUDIT_LINK,
							    "prev_sha256 %s is not the digest of LSN %llu (%s): the chain is "
							    "broken",
							    rec->prev, (unsigned long long)before->lsn, before->digest);
			}
		}
		if (rec->have_meta && rec->t_first != INT64_MIN) {
			if (prev_timed && rec->t_first < prev_timed->t_last && rec->eligible) {
				gw_time_format(rec->t_first, when, sizeof(when));
				gw_time_format(prev_timed->t_last, pwhen, sizeof(pwhen));
				gw_audit_report_add(a->report, rel, rec->lsn, key, GW_AUDIT_TIME,
						    "time goes backwards: this record starts at %s, LSN %llu ends at %s", when,
						    (unsigned long long)prev_timed->lsn, pwhen);
			}
			prev_timed = rec;
		}
		if (rec->kind == REC_FULL)
			last_full = rec->lsn;
	}
}

/* ---- step 5: --deep ---- */

static int has_full_backup(const repo *rp)
{
	size_t i;
	for (i = 0; i < rp->n; i++)
		if (rp->recs[i].kind == REC_FULL && rp->recs[i].parts[GW_KEY_FULL_MANIFEST].present)
			return 1;
	return 0;
}

/*
 * Restore into a private scratch directory with a private index synced from
 * the store alone, so neither the user's index nor a stale row is involved.
 */
static int run_deep(audit *a)
{
	const gw_audit_opts *o = a->opts;
	char tmpl[4096], *index_path = NULL;
	gw_index *sidx = NULL;
	char **live = NULL;
	size_t nlive = 0, r, i;
	int rc;

	if (snprintf(tmpl, sizeof(tmpl), "%s/gitwal-audit.XXXXXX", o->scratch_dir ? o->scratch_dir : "/tmp") >=
	    (int)sizeof(tmpl))
		return gw_error_set(GW_EINVALID, "scratch directory path too long");
	if (!mkdtemp(tmpl))
		return gw_error_set_errno(GW_EIO, "cannot create a scratch directory in %s",
					  o->scratch_dir ? o->scratch_dir : "/tmp");
	if (!(index_path = gw_fs_join(tmpl, "index.db"))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_index_open(&sidx, index_path)) < 0)
		goto out;
	if (o->progress) {
		size_t n = 0;
		for (r = 0; r < a->nrepos; r++)
			n += (size_t)has_full_backup(&a->repos[r]);
		gw_progress_phase(o->progress, "repositories restored", n);
	}
	for (r = 0; r < a->nrepos; r++) {
		if (!has_full_backup(&a->repos[r]))
			continue;
		GW_PROGRESS_ADD(o->progress, started, 1);
		rc = gw_audit_deep_repo(a->store, a->repos[r].rel, o, tmpl, sidx, a->report);
		GW_PROGRESS_ADD(o->progress, done, 1);
		if (rc < 0)
			goto out;
	}
	/* Live repositories the archive has never seen lag it entirely. */
	if (o->live_root) {
		if ((rc = gw_repo_discover(o->live_root, &live, &nlive)) < 0)
			goto out;
		for (i = 0; i < nlive; i++) {
			int known = 0;
			if (!repo_selected(a, live[i]))
				continue;
			for (r = 0; r < a->nrepos && !known; r++)
				known = !strcmp(a->repos[r].rel, live[i]) && has_full_backup(&a->repos[r]);
			if (!known && (rc = gw_audit_deep_unarchived(o->live_root, live[i], a->report)) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	gw_repo_list_free(live, nlive);
	gw_index_free(sidx);
	free(index_path);
	gw_remove_tree(tmpl);
	return rc;
}

/* ---- the whole run ---- */

int gw_audit_run(gw_store *store, gw_index *index, const gw_audit_opts *opts, gw_audit_report *report)
{
	audit a;
	size_t r;
	int rc, index_records;

	memset(&a, 0, sizeof(a));
	a.store = store;
	a.index = index;
	a.opts = opts;
	a.report = report;
	a.features = gw_store_features(store);
	clock_gettime(CLOCK_MONOTONIC, &a.t0);
	pthread_mutex_init(&a.lock, NULL);
	gw_progress_phase(opts->progress, "listing the store", 0);

	if ((rc = load_index(&a)) < 0)
		goto out;
	index_records = (int)(a.nitems > 0);
	if ((rc = each_prefix(&a, list_prefix)) < 0 || (rc = each_prefix(&a, strays_prefix)) < 0) {
		gw_error_prefix("listing the store");
		goto out;
	}
	if ((rc = build_table(&a)) < 0 || (rc = apply_expires(&a)) < 0)
		goto out;
	report->counts.repositories = a.nrepos;
	/* Neither read-only files nor Object Lock: only gitwal's create-only writes keep keys unchanged. */
	if (!(a.features & (GW_STORE_FEATURE_LOCK | GW_STORE_FEATURE_MODE)))
		gw_audit_report_add(report, NULL, 0, NULL, GW_AUDIT_UNENFORCED,
				    "the store does not enforce write-once (a bucket without Object Lock): anyone with "
				    "its credentials can delete or replace keys; use lock= and retain= for that guarantee");
	/* Without an index, every record would be "not in the index": say it once. */
	if (opts->index_state == GW_AUDIT_INDEX_ABSENT && a.nrepos)
		gw_audit_report_add(report, NULL, 0, NULL, GW_AUDIT_INDEX,
				    "the local index %s does not exist: the store was audited alone, and nothing it "
				    "holds is indexed (run 'gitwal index rebuild')",
				    opts->index_path ? opts->index_path : "");
	else if (!index_records && a.nrepos)
		gw_audit_report_add(report, NULL, 0, NULL, GW_AUDIT_INDEX,
				    "the local index %s lists nothing%s, but the store holds records: the store was "
				    "audited alone (run 'gitwal index rebuild')",
				    opts->index_path ? opts->index_path : "", opts->nrepos ? " for these repositories" : "");
	if ((rc = listing_checks(&a, opts->index_state != GW_AUDIT_INDEX_ABSENT && index_records)) < 0 ||
	    (rc = check_records(&a)) < 0)
		goto out;
	for (r = 0; r < a.nrepos; r++)
		check_chain(&a, &a.repos[r]);
	if (opts->deep && (rc = run_deep(&a)) < 0)
		goto out;
	rc = 0;
out:
	report->seconds = elapsed(&a);
	free_table(&a);
	pthread_mutex_destroy(&a.lock);
	gw_audit_report_sort(report);
	return rc;
}
