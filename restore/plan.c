/*
 * Planning a restore, from the index alone (DESIGN.md 11): which full
 * backup, which span of segments after it, and the refs at the end, in a
 * fixed number of indexed queries however long the generation. The store is
 * read only for the full backup's manifest (checked against the digest the
 * index recorded), for the index's sync of what it has not seen yet, and
 * for one listing when the time asked for is before every full backup.
 */
#include "restore/restore_internal.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/expire.h"
#include "gitwal/layout.h"
#include "gitwal/repo.h"
#include "gitwal/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int find_full(gw_store *store, gw_index *index, const char *rel, uint64_t lsn, gw_sync_report *report,
		     gw_full_record *rec)
{
	int rc = gw_index_full_find(index, rel, lsn, rec);
	if (rc == GW_ENOTFOUND) {
		/* The index is a cache: look in the store before giving up. */
		if ((rc = gw_index_sync_report(index, store, rel, 0, report)) < 0)
			return rc;
		rc = gw_index_full_find(index, rel, lsn, rec);
	}
	return rc;
}

void gw_restore__plan_dispose(gw_restore_plan *p)
{
	size_t i;
	gw_full_record_dispose(&p->full);
	gw_manifest_dispose(&p->m);
	for (i = 0; i < p->nsegs; i++)
		free(p->segs[i].key);
	free(p->segs);
	gw_refstate_dispose(&p->state);
	free(p->gaps);
	if (p->files)
		gw_files_dispose(p->files);
	free(p->files);
	memset(p, 0, sizeof(*p));
}

static int first_key(const gw_store_entry *e, void *payload)
{
	char **out = payload;
	return (*out = strdup(e->key)) ? 1 : gw_error_set(GW_ERROR, "out of memory");
}

/*
 * The time asked for is before rel's first full backup. The archive proves
 * the repository did not exist then only when nothing of it is stored below
 * that backup's LSN (keys sort by LSN: the first key listed says): *proven is
 * set and the error explains. Otherwise records of it were lost, and the
 * error names the oldest key left.
 */
static int before_first_full(gw_store *store, gw_index *index, const char *rel, const gw_sync_report *report,
			     int *proven)
{
	const gw_sync_problem *bad = gw_sync_report_find(report, rel, 0);
	gw_full_record first;
	char when[40], *prefix, *oldest = NULL, *key_rel = NULL;
	uint64_t lsn = 0;
	gw_key_kind kind;
	int rc;
	*proven = 0;
	if ((rc = gw_index_full_find_first(index, rel, &first)) == GW_ENOTFOUND && bad)
		return gw_error_set(bad->code, "repository %s has no full backup that can be read: key %s: %s", rel, bad->key,
				    bad->reason);
	if (rc == GW_ENOTFOUND)
		return gw_error_set(GW_ENOTFOUND, "repository %s has no full backup in the store %s (no manifest)", rel,
				    gw_store_url(store));
	if (rc < 0)
		return rc;
	if (!(prefix = gw_layout_repo_prefix(rel))) {
		gw_full_record_dispose(&first);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	rc = gw_store_list(store, prefix, first_key, &oldest);
	free(prefix);
	if (rc >= 0 && oldest)
		gw_layout_parse_key(oldest, &key_rel, &lsn, &kind);
	gw_time_format(first.time_us, when, sizeof(when));
	if (rc < 0) {
		/* the listing's error stands */
	} else if (!oldest || lsn >= first.lsn) {
		*proven = 1;
		rc = gw_error_set(GW_ENOTFOUND,
				  "repository %s: the time asked for is before its first full backup (%s, LSN %llu): "
				  "it was not archived then",
				  rel, when, (unsigned long long)first.lsn);
	} else {
		rc = gw_error_set(GW_ECORRUPT,
				  "repository %s: the time asked for is before its first full backup (%s, LSN %llu), "
				  "and the store holds an older key of it (%s) with no full backup: its state then "
				  "cannot be proven",
				  rel, when, (unsigned long long)first.lsn, oldest);
	}
	free(key_rel);
	free(oldest);
	gw_full_record_dispose(&first);
	return rc;
}

/*
 * What lies above the span must not be owed to until: a damaged key the
 * sync could not record there, a missing LSN right after it (its time is
 * unknown), or a segment at or before until that belongs to a full backup
 * the archive lacks (its manifest lost). Each is an error naming it.
 */
static int check_above_span(const char *rel, const gw_index_span *s, int64_t until_us, const gw_sync_report *report)
{
	const gw_sync_problem *bad = gw_sync_report_find(report, rel, s->full_lsn);
	if (bad && bad->lsn <= s->last_lsn + 1)
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: the record at LSN %llu (key %s) cannot be read (%s): the state at the "
				    "time asked for cannot be proven",
				    rel, (unsigned long long)bad->lsn, bad->key, bad->reason);
	if (!s->next_lsn)
		return 0;
	if (s->next_lsn > s->last_lsn + 1)
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: LSN %llu is missing from the archive (LSN %llu after it is there): the "
				    "state at the time asked for cannot be proven",
				    rel, (unsigned long long)s->last_lsn + 1, (unsigned long long)s->next_lsn);
	if (!s->next_full && s->next_time_us <= until_us)
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: the segment at LSN %llu is of the full backup at LSN %llu, which the "
				    "archive lacks (no manifest): the state at the time asked for cannot be proven",
				    rel, (unsigned long long)s->next_lsn, (unsigned long long)s->next_base_lsn);
	return 0;
}

/* A span that cannot be replayed is an error naming the LSN. */
static int check_span(const char *rel, const gw_index_span *s)
{
	char a[40];
	if (s->broken_lsn && s->broken_missing) {
		gw_time_format(s->broken_after_us, a, sizeof(a));
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: LSN %llu is missing from the archive (a gap after %s): "
				    "the state at the time asked for cannot be proven",
				    rel, (unsigned long long)s->broken_lsn, s->broken_after_us ? a : "its full backup");
	}
	if (s->broken_lsn)
		return gw_error_set(GW_ECORRUPT,
				    "repository %s: segment at LSN %llu does not link to the record before it "
				    "(broken chain): states after that LSN cannot be restored",
				    rel, (unsigned long long)s->broken_lsn);
	return 0;
}

static int collect_gap(uint64_t lsn, int64_t from_us, int64_t to_us, void *payload)
{
	gw_restore_plan *p = payload;
	if (GW_ARRAY_RESERVE(p->gaps, p->gaps_cap, p->ngaps + 1) < 0)
		return GW_ERROR;
	p->gaps[p->ngaps++] = (gw_restore_gap){lsn, from_us, to_us, 0};
	return 0;
}

/* The refs at until: the full backup's, then the latest update of each name in the span. */
static int plan_refs(gw_index *index, const char *rel, int64_t until_us, gw_restore_plan *p)
{
	gw_update *updates = NULL;
	size_t n = 0, i;
	int rc;
	if ((rc = gw_index_span_updates(index, rel, &p->span, until_us, &updates, &n)) < 0)
		return rc;
	for (i = 0; i < n; i++)
		if (updates[i].kind == GW_UPDATE_DELETED)
			p->exists = 0;
		else if (updates[i].kind == GW_UPDATE_CREATED)
			p->exists = 1;
	rc = gw_refstate_apply(&p->state, updates, n);
	gw_updates_free(updates, n);
	return rc;
}

/* The newest full backup at or before until, then its segments up to until (p zeroed here). */
static int plan_until(gw_store *store, gw_index *index, const char *rel, int64_t until_us,
		     const gw_sync_report *report, gw_restore_plan *p)
{
	int rc, deleted;
	memset(p, 0, sizeof(*p));
	/* Gone by policy (DESIGN.md 18.4): the one-line error names it; deleted then expired whole: not there. */
	if ((rc = gw_expire_check_time(index, rel, until_us, &deleted)) < 0 || deleted)
		return rc;
	rc = gw_index_full_find_before(index, rel, until_us, &p->full);
	if (rc == GW_ENOTFOUND)
		return before_first_full(store, index, rel, report, &p->not_archived);
	if (rc < 0)
		return rc;
	if ((rc = gw_manifest_load(store, &p->full, &p->m)) < 0 || (rc = gw_refstate_from_manifest(&p->state, &p->m)) < 0)
		return rc;
	p->exists = 1;
	if ((rc = gw_index_span_find(index, rel, p->full.lsn, until_us, &p->span)) < 0 ||
	    (rc = check_above_span(rel, &p->span, until_us, report)) < 0 || (rc = check_span(rel, &p->span)) < 0 ||
	    (rc = gw_index_gaps_foreach(index, rel, p->full.lsn + 1, p->span.last_lsn, collect_gap, p)) < 0)
		return rc;
	if (p->span.unknown_lsn) {
		if ((rc = collect_gap(p->span.unknown_lsn, p->span.unknown_from_us, p->span.unknown_to_us, p)) < 0)
			return rc;
		p->gaps[p->ngaps - 1].covers_until = 1;
	}
	return plan_refs(index, rel, until_us, p);
}

/* The span's segment records, checked once more as they are read: contiguous, linked, of this generation. */
static int collect_segment(const gw_segment_record *rec, void *payload)
{
	gw_restore_plan *p = payload;
	gw_restore_segment *seg = &p->segs[p->nsegs];
	unsigned char prev[32];
	uint64_t want = p->full.lsn + 1 + p->nsegs;
	if (p->nsegs == p->cap)
		return gw_error_set(GW_ECORRUPT, "repository %s: the index gained segments while planning", rec->repository);
	if (rec->lsn != want || rec->base_lsn != p->full.lsn || gw_hex_decode(prev, rec->prev_sha256, 32) < 0 ||
	    memcmp(prev, p->last_sha256, 32) != 0 || gw_hex_decode(seg->sha256, rec->sha256, 32) < 0)
		return gw_error_set(GW_ECORRUPT, "repository %s: segment at LSN %llu does not link to the record before it",
				    rec->repository, (unsigned long long)rec->lsn);
	seg->lsn = rec->lsn;
	seg->size = rec->size;
	seg->objects = rec->objects;
	if (!(seg->key = strdup(rec->key)))
		return gw_error_set(GW_ERROR, "out of memory");
	memcpy(p->last_sha256, seg->sha256, 32);
	p->nsegs++;
	return 0;
}

int gw_restore__plan_segments(gw_index *index, const char *rel, gw_restore_plan *p)
{
	int rc;
	if (p->span.last_lsn == p->full.lsn)
		return 0;
	if (gw_hex_decode(p->last_sha256, p->full.manifest_sha256, 32) < 0)
		return gw_error_set(GW_ECORRUPT, "repository %s: the full backup at LSN %llu has no valid digest in the index",
				    rel, (unsigned long long)p->full.lsn);
	if (!(p->segs = calloc(p->span.segments ? p->span.segments : 1, sizeof(*p->segs))))
		return gw_error_set(GW_ERROR, "out of memory");
	p->cap = p->span.segments;
	if ((rc = gw_index_segment_foreach(index, rel, p->full.lsn + 1, p->span.last_lsn, collect_segment, p)) < 0)
		return rc;
	if (p->nsegs != p->span.segments)
		return gw_error_set(GW_ECORRUPT, "repository %s: the index lost segments of LSNs %llu to %llu while planning",
				    rel, (unsigned long long)p->full.lsn + 1, (unsigned long long)p->span.last_lsn);
	return 0;
}

int gw_restore__plan_pool(gw_store *store, const char *rel, gw_restore_plan *p)
{
	const gw_restore_segment *last;
	gw_segment_header h;
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	const gw_pool_dep *want = &p->m.pool;
	int rc;
	if (!p->nsegs)
		return 0;
	last = &p->segs[p->nsegs - 1];
	if ((rc = gw_segment_read_meta(store, last->key, last->size, &h, trailer)) < 0)
		return rc;
	if (memcmp(GW_SEGMENT_TRAILER_DIGEST(trailer), last->sha256, 32) != 0)
		rc = gw_error_set(GW_ECORRUPT, "repository %s: segment %s is not the one the index recorded", rel, last->key);
	else if (!h.pool.repository != !want->repository ||
		 (want->repository && (strcmp(h.pool.repository, want->repository) || h.pool.base_lsn != want->base_lsn ||
				       h.pool.lsn < want->lsn)))
		rc = gw_error_set(GW_ECORRUPT, "repository %s: segment %s names pool %s (full backup %llu, LSN %llu), its "
					       "full backup at LSN %llu %s (%llu, %llu)", rel, last->key,
				  h.pool.repository ? h.pool.repository : "none", (unsigned long long)h.pool.base_lsn,
				  (unsigned long long)h.pool.lsn, (unsigned long long)p->full.lsn,
				  want->repository ? want->repository : "none", (unsigned long long)want->base_lsn,
				  (unsigned long long)want->lsn);
	else if (want->repository)
		p->m.pool.lsn = h.pool.lsn; /* the highest: each record's is no lower than the one before */
	gw_segment_header_dispose(&h);
	return rc;
}

int gw_restore__plan_files(gw_store *store, gw_index *index, const char *rel, gw_restore_plan *p)
{
	gw_segment_record rec;
	gw_segment_header h;
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	char digest[65], trailer_hex[65];
	int rc;
	if (p->span.last_lsn <= p->full.lsn)
		return 0;
	rc = gw_index_files_find(index, rel, p->full.lsn + 1, p->span.last_lsn, &rec);
	if (rc == GW_ENOTFOUND)
		return 0;
	if (rc < 0)
		return rc;
	if ((rc = gw_segment_read_meta(store, rec.key, rec.size, &h, trailer)) < 0) {
		gw_segment_record_dispose(&rec);
		return rc;
	}
	gw_hex_encode(trailer_hex, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
	if (!h.files || (rc = gw_files_digest(h.files, digest)) < 0 || strcmp(digest, rec.files_sha256) != 0 ||
	    strcmp(trailer_hex, rec.sha256) != 0) {
		if (rc == 0)
			rc = gw_error_set(GW_ECORRUPT,
					  "repository %s: segment %s does not hold the files the index recorded for it", rel,
					  rec.key);
	} else {
		p->files = h.files; /* taken from the header */
		h.files = NULL;
	}
	gw_segment_header_dispose(&h);
	gw_segment_record_dispose(&rec);
	return rc;
}

int gw_restore__plan_end_refs(const gw_restore_plan *p, gw_restore_result *res)
{
	const gw_refstate *st = &p->state;
	size_t i, k = 0;
	if (!(res->end_refs = calloc(st->nrefs + 1, sizeof(*res->end_refs))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i <= st->nrefs; i++) {
		const gw_ref *r = i == 0 ? &st->head : &st->refs[i - 1];
		char hex[GW_HEX_MAX], *value;
		if (!r->name)
			continue;
		if (r->symbolic) {
			size_t len = strlen(r->symbolic) + 6;
			if ((value = malloc(len)))
				snprintf(value, len, "ref: %s", r->symbolic);
		} else {
			gw_hex_encode(hex, r->oid, p->m.hash_len);
			value = strdup(hex);
		}
		res->end_refs[k].name = strdup(r->name);
		res->end_refs[k].value = value;
		res->nend_refs = ++k;
		if (!value || !res->end_refs[k - 1].name)
			return gw_error_set(GW_ERROR, "out of memory");
	}
	return 0;
}

int gw_restore__plan(gw_store *store, gw_index *index, const char *rel, const gw_restore_opts *opts,
		     gw_restore_plan *p)
{
	int rc;
	memset(p, 0, sizeof(*p));
	if (!opts->until_set) {
		/* "Latest" means the latest in the store, which may be newer than the index knows. */
		if (!opts->lsn && !opts->index_synced && (rc = gw_index_sync_report(index, store, rel, 1, opts->report)) < 0)
			return rc;
		if ((opts->lsn && (rc = gw_expire_check_lsn(index, rel, opts->lsn)) < 0) ||
		    (rc = find_full(store, index, rel, opts->lsn, opts->index_synced ? NULL : opts->report, &p->full)) < 0 ||
		    (rc = gw_manifest_load(store, &p->full, &p->m)) < 0 || (rc = gw_refstate_from_manifest(&p->state, &p->m)) < 0)
			return rc;
		p->exists = 1;
		p->span.full_lsn = p->span.last_lsn = p->full.lsn;
		return 0;
	}
	/* Segments written since the index last heard of them are in the store only. */
	if (!opts->index_synced && (rc = gw_index_sync_report(index, store, rel, 1, opts->report)) < 0)
		return rc;
	rc = plan_until(store, index, rel, opts->until_us, opts->report, p);
	if (rc == GW_ECORRUPT && !opts->index_synced) {
		/* A hole may be one the index missed (it only looked past its last LSN): look at everything once. */
		gw_restore__plan_dispose(p);
		if ((rc = gw_index_sync_report(index, store, rel, 0, opts->report)) >= 0)
			rc = plan_until(store, index, rel, opts->until_us, opts->report, p);
	}
	return rc;
}
