/*
 * Rebuilding the index from the store alone: list repos/, and for every full
 * backup whose manifest exists (the commit point), read and check the
 * manifest and record it, and every segment's header and trailer. Parts
 * without a manifest are not backups and are left out; the audit reports
 * them.
 *
 * A key that cannot be recorded (unreadable, damaged, or not what its name
 * says) either stops the sync (gw_index_sync: the archiver, which must not
 * go on past a hole) or becomes a problem in a report while the sync goes on
 * (gw_index_sync_report: restore, info, log and index rebuild, where one
 * damaged repository must not hide the others). Failures of the listing or
 * of the index itself always stop it.
 */
#include "gitwal/array.h"
#include "gitwal/index.h"
#include "gitwal/error.h"
#include "gitwal/files.h"
#include "gitwal/expire.h"
#include "gitwal/layout.h"
#include "gitwal/manifest.h"
#include "gitwal/segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	gw_store_listing listed; /* the manifests, segments and expire records */
	gw_key_kind *kinds;      /* what each of them is */
	size_t kinds_cap;
	gw_sync_report *report;  /* when set: every repository a key names */
} key_list;

static int strdup_into(char **out, const char *s)
{
	return (*out = strdup(s)) ? 0 : gw_error_set(GW_ERROR, "out of memory");
}

/* Keys come in byte order, so one repository's keys are together: a name is new when it is not the last one. */
static int report_repo(gw_sync_report *r, const char *rel)
{
	if (r->nrepos && strcmp(r->repos[r->nrepos - 1], rel) == 0)
		return 0;
	if (GW_ARRAY_RESERVE(r->repos, r->repos_cap, r->nrepos + 1) < 0)
		return GW_ERROR;
	if (strdup_into(&r->repos[r->nrepos], rel) < 0)
		return GW_ERROR;
	r->nrepos++;
	return 0;
}

static int collect_manifests(const gw_store_entry *e, void *payload)
{
	key_list *l = payload;
	char *rel = NULL;
	uint64_t lsn;
	gw_key_kind kind;
	int rc = gw_layout_parse_key(e->key, &rel, &lsn, &kind);
	if (rc >= 0 && rel && kind != GW_KEY_UNKNOWN && l->report && report_repo(l->report, rel) < 0) {
		free(rel);
		return GW_ERROR;
	}
	free(rel);
	if (rc < 0 || (kind != GW_KEY_FULL_MANIFEST && kind != GW_KEY_SEGMENT && kind != GW_KEY_EXPIRE))
		return 0;
	if (GW_ARRAY_RESERVE(l->kinds, l->kinds_cap, l->listed.count + 1) < 0)
		return GW_ERROR;
	l->kinds[l->listed.count] = kind;
	return gw_store_listing_add(e, &l->listed);
}

/* Record the manifest at key; *stored is set when a failure comes from the store's data, not the index. */
static int record_manifest(gw_index *index, gw_store *store, const char *key, int *stored)
{
	gw_full_record rec;
	gw_manifest m;
	unsigned char digest[32];
	char *text = NULL, *rel = NULL;
	size_t len;
	uint64_t lsn;
	gw_key_kind kind;
	int rc;

	*stored = 1;
	memset(&m, 0, sizeof(m));
	if ((rc = gw_store_get(store, key, GW_MANIFEST_MAX_SIZE, &text, &len)) < 0)
		return rc;
	rc = gw_manifest_parse(&m, text, len, key);
	if (rc == 0) {
		gw_layout_parse_key(key, &rel, &lsn, &kind);
		if (!rel || strcmp(rel, m.repository) != 0 || lsn != m.lsn)
			rc = gw_error_set(GW_ECORRUPT, "manifest %s describes %s at LSN %llu, which is not its key", key,
					  m.repository, (unsigned long long)m.lsn);
	}
	if (rc == 0) {
		memset(&rec, 0, sizeof(rec));
		rec.repository = m.repository;
		rec.lsn = m.lsn;
		rec.time_us = m.time_us;
		rec.manifest_key = (char *)key;
		rec.manifest_size = len;
		gw_hash_buffer(GW_HASH_SHA256, text, len, digest);
		gw_hex_encode(rec.manifest_sha256, digest, 32);
		rec.bundle_size = m.bundle.size;
		rec.idx_size = m.idx.size;
		rec.objects = m.objects;
		rec.refs = m.nrefs;
		rec.pool = m.pool.repository;
		rec.pool_base_lsn = m.pool.base_lsn;
		*stored = 0;
		rc = gw_index_full_add(index, &rec);
	}
	if (m.repository)
		gw_manifest_dispose(&m);
	free(rel);
	free(text);
	return rc;
}

static int record_segment(gw_index *index, gw_store *store, const char *key, uint64_t size, int *stored)
{
	gw_segment_header h;
	gw_segment_record rec;
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	char *rel = NULL;
	uint64_t lsn;
	gw_key_kind kind;
	int rc;
	*stored = 1;
	if ((rc = gw_segment_read_meta(store, key, size, &h, trailer)) < 0)
		return rc;
	gw_layout_parse_key(key, &rel, &lsn, &kind);
	if (h.full_backup && rel && strcmp(rel, h.repository) == 0 && lsn == h.lsn) {
		/* A full backup's claim: its manifest, once written, is what the index records. */
		rc = 1;
	} else if (!rel || strcmp(rel, h.repository) != 0 || lsn != h.lsn) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s describes %s at LSN %llu, which is not its key", key,
				  h.repository, (unsigned long long)h.lsn);
	} else {
		memset(&rec, 0, sizeof(rec));
		rec.repository = h.repository;
		rec.lsn = h.lsn;
		rec.base_lsn = h.base_lsn;
		rec.time_first_us = h.time_first_us;
		rec.time_last_us = h.time_last_us;
		rec.key = (char *)key;
		rec.size = size;
		gw_hex_encode(rec.sha256, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
		memcpy(rec.prev_sha256, h.prev_sha256, 65);
		rec.objects = h.objects;
		rec.updates = h.nupdates;
		rec.gap = h.gap;
		rec.gap_from_us = h.gap_from_us;
		rec.gap_to_us = h.gap_to_us;
		if (h.files && (rc = gw_files_digest(h.files, rec.files_sha256)) < 0)
			goto out;
		*stored = 0;
		rc = gw_index_segment_add(index, &rec, h.updates, h.nupdates);
	}
out:
	free(rel);
	gw_segment_header_dispose(&h);
	return rc;
}

int gw_index_record_segment(gw_index *index, gw_store *store, const char *key, uint64_t size)
{
	int stored;
	return record_segment(index, store, key, size, &stored);
}

static int report_problem(gw_sync_report *r, const char *rel, uint64_t lsn, const char *key, int code)
{
	gw_sync_problem *p;
	size_t i;
	for (i = 0; i < r->nproblems; i++)
		if (strcmp(r->problems[i].key, key) == 0)
			return 0; /* seen by an earlier sync into the same report */
	if (GW_ARRAY_RESERVE(r->problems, r->problems_cap, r->nproblems + 1) < 0)
		return GW_ERROR;
	p = &r->problems[r->nproblems];
	memset(p, 0, sizeof(*p));
	p->lsn = lsn;
	p->code = code;
	if (strdup_into(&p->repository, rel) < 0 || strdup_into(&p->key, key) < 0 ||
	    strdup_into(&p->reason, gw_error_message()) < 0) {
		free(p->repository);
		free(p->key);
		return GW_ERROR;
	}
	r->nproblems++;
	return 0;
}

/* Whether the manifest of rel at lsn was listed: it sorts right before that LSN's .seg among the keys kept. */
static int manifest_before(const key_list *l, size_t i, const char *rel, uint64_t lsn)
{
	char *prev_rel = NULL;
	uint64_t prev_lsn;
	gw_key_kind kind;
	int found = i > 0 && gw_layout_parse_key(l->listed.keys[i - 1], &prev_rel, &prev_lsn, &kind) >= 0 && prev_rel &&
		    kind == GW_KEY_FULL_MANIFEST && prev_lsn == lsn && strcmp(prev_rel, rel) == 0;
	free(prev_rel);
	return found;
}

static int sync_listing(gw_index *index, gw_store *store, const char *repo, const char *start_after,
			gw_sync_report *report)
{
	key_list l = {0};
	char *prefix = repo ? gw_layout_repo_prefix(repo) : strdup(GW_LAYOUT_REPOS);
	size_t i;
	int rc, added = 0;

	if (!prefix)
		return gw_error_set(GW_ERROR, "out of memory");
	l.report = report;
	rc = gw_store_list_after(store, prefix, start_after, collect_manifests, &l);
	free(prefix);
	/* Expire records first: the keys they cover are gone by policy, not records to index (DESIGN.md 18.3). */
	for (i = 0; i < l.listed.count && rc >= 0; i++) {
		char *rel = NULL;
		uint64_t lsn;
		gw_key_kind kind;
		int stored = 0;
		if (l.kinds[i] != GW_KEY_EXPIRE)
			continue;
		gw_layout_parse_key(l.listed.keys[i], &rel, &lsn, &kind);
		rc = gw_index_sync_expire(index, store, l.listed.keys[i], &stored);
		if (rc < 0 && stored && report && rel)
			rc = report_problem(report, rel, lsn, l.listed.keys[i], rc);
		free(rel);
	}
	for (i = 0; i < l.listed.count && rc >= 0; i++) {
		char *rel = NULL;
		uint64_t lsn, covered = 0;
		gw_key_kind kind;
		int known = 0, stored = 0;
		if (l.kinds[i] == GW_KEY_EXPIRE)
			continue;
		gw_layout_parse_key(l.listed.keys[i], &rel, &lsn, &kind);
		if (rel && (rc = gw_index_lsn_known(index, rel, lsn, &known)) < 0) {
			free(rel);
			break;
		}
		if (!known && rel && (rc = gw_index_expire_covered(index, rel, &covered)) < 0) {
			free(rel);
			break;
		}
		if (!known && lsn > covered) {
			rc = kind == GW_KEY_SEGMENT ? record_segment(index, store, l.listed.keys[i], l.listed.sizes[i], &stored)
						    : record_manifest(index, store, l.listed.keys[i], &stored);
			added += rc == 0;
			if (rc == 0 && report)
				(*(kind == GW_KEY_SEGMENT ? &report->segments : &report->fulls))++;
			if (rc > 0 && report && !manifest_before(&l, i, rel, lsn)) {
				/* A claim whose manifest is not there: what the archive holds at this LSN is unknown. */
				rc = gw_error_set(GW_ECORRUPT,
						  "LSN %llu holds a full backup's claim but no manifest (the backup failed or is "
						  "still being written, or its manifest was lost)",
						  (unsigned long long)lsn);
				stored = 1;
			}
			if (rc > 0)
				rc = 0;
			/* A damaged key is this repository's problem, not the others': note it and go on. */
			if (rc < 0 && stored && report && rel)
				rc = report_problem(report, rel, lsn, l.listed.keys[i], rc);
		}
		free(rel);
	}

	gw_store_listing_dispose(&l.listed);
	free(l.kinds);
	if (rc < 0)
		return rc;
	gw_error_clear();
	return added;
}

/* The listing start-after for what repo gained past the last LSN the index holds (NULL: list it all). */
static int newer_start(gw_index *index, const char *repo, char **after)
{
	char *prefix;
	uint64_t last;
	int rc;
	*after = NULL;
	if ((rc = gw_index_last_lsn(index, repo, &last)) < 0 || !last)
		return rc;
	if (!(prefix = gw_layout_repo_prefix(repo)))
		return gw_error_set(GW_ERROR, "out of memory");
	/* After every key of the last LSN: "<20 digits>." sorts before "<20 digits>~", and the next LSN after both. */
	if ((*after = malloc(strlen(prefix) + 22)))
		sprintf(*after, "%s%020llu~", prefix, (unsigned long long)last);
	free(prefix);
	return *after ? 0 : gw_error_set(GW_ERROR, "out of memory");
}

int gw_index_sync(gw_index *index, gw_store *store, const char *repo)
{
	return sync_listing(index, store, repo, NULL, NULL);
}

int gw_index_sync_newer(gw_index *index, gw_store *store, const char *repo)
{
	return gw_index_sync_report(index, store, repo, 1, NULL);
}

int gw_index_sync_report(gw_index *index, gw_store *store, const char *repo, int newer, gw_sync_report *report)
{
	char *after = NULL;
	int rc;
	if (newer && (rc = newer_start(index, repo, &after)) < 0)
		return rc;
	rc = sync_listing(index, store, repo, after, report);
	free(after);
	return rc;
}

const gw_sync_problem *gw_sync_report_find(const gw_sync_report *report, const char *repo, uint64_t after_lsn)
{
	const gw_sync_problem *best = NULL;
	size_t i;
	for (i = 0; report && i < report->nproblems; i++) {
		const gw_sync_problem *p = &report->problems[i];
		if (strcmp(p->repository, repo) == 0 && p->lsn > after_lsn && (!best || p->lsn < best->lsn))
			best = p;
	}
	return best;
}

int gw_sync_report_has_repo(const gw_sync_report *report, const char *repo)
{
	size_t i;
	for (i = 0; report && i < report->nrepos; i++)
		if (strcmp(report->repos[i], repo) == 0)
			return 1;
	return 0;
}

void gw_sync_report_dispose(gw_sync_report *report)
{
	size_t i;
	for (i = 0; i < report->nrepos; i++)
		free(report->repos[i]);
	free(report->repos);
	for (i = 0; i < report->nproblems; i++) {
		free(report->problems[i].repository);
		free(report->problems[i].key);
		free(report->problems[i].reason);
	}
	free(report->problems);
	memset(report, 0, sizeof(*report));
}
