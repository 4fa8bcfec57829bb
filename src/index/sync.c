/*
 * Rebuilding the index from the store alone: list repos/, and for every full
 * backup whose manifest exists (the commit point), read and check the
 * manifest and record it. Parts without a manifest are not backups and are
 * left out; the audit reports them.
 */
#include "gitwal/index.h"
#include "gitwal/error.h"
#include "gitwal/layout.h"
#include "gitwal/manifest.h"
#include "gitwal/segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	char **keys;
	uint64_t *sizes;
	gw_key_kind *kinds;
	size_t count, cap;
} key_list;

static int collect_manifests(const gw_store_entry *e, void *payload)
{
	key_list *l = payload;
	char *rel = NULL;
	uint64_t lsn;
	gw_key_kind kind;
	if (gw_layout_parse_key(e->key, &rel, &lsn, &kind) < 0 ||
	    (kind != GW_KEY_FULL_MANIFEST && kind != GW_KEY_SEGMENT)) {
		free(rel);
		return 0;
	}
	free(rel);
	if (l->count == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 64;
		char **n = realloc(l->keys, cap * sizeof(char *));
		uint64_t *sz = n ? realloc(l->sizes, cap * sizeof(uint64_t)) : NULL;
		gw_key_kind *k = sz ? realloc(l->kinds, cap * sizeof(gw_key_kind)) : NULL;
		if (n)
			l->keys = n;
		if (sz)
			l->sizes = sz;
		if (!k)
			return gw_error_set(GW_ERROR, "out of memory");
		l->kinds = k;
		l->cap = cap;
	}
	if (!(l->keys[l->count] = strdup(e->key)))
		return gw_error_set(GW_ERROR, "out of memory");
	l->sizes[l->count] = e->size;
	l->kinds[l->count] = kind;
	l->count++;
	return 0;
}

static int record_manifest(gw_index *index, gw_store *store, const char *key)
{
	gw_full_record rec;
	gw_manifest m;
	unsigned char digest[32];
	char *text = NULL, *rel = NULL;
	size_t len;
	uint64_t lsn;
	gw_key_kind kind;
	int rc;

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
		rc = gw_index_full_add(index, &rec);
	}
	if (m.repository)
		gw_manifest_dispose(&m);
	free(rel);
	free(text);
	return rc;
}

int gw_index_record_segment(gw_index *index, gw_store *store, const char *key, uint64_t size)
{
	gw_segment_header h;
	gw_segment_record rec;
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	char *rel = NULL;
	uint64_t lsn;
	gw_key_kind kind;
	int rc;
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
		rc = gw_index_segment_add(index, &rec, h.updates, h.nupdates);
	}
	free(rel);
	gw_segment_header_dispose(&h);
	return rc;
}

static int sync_listing(gw_index *index, gw_store *store, const char *repo, const char *start_after)
{
	key_list l = {0};
	char *prefix = repo ? gw_layout_repo_prefix(repo) : strdup(GW_LAYOUT_REPOS);
	size_t i;
	int rc, added = 0;

	if (!prefix)
		return gw_error_set(GW_ERROR, "out of memory");
	rc = gw_store_list_after(store, prefix, start_after, collect_manifests, &l);
	free(prefix);
	for (i = 0; i < l.count && rc >= 0; i++) {
		char *rel = NULL;
		uint64_t lsn;
		gw_key_kind kind;
		int known = 0;
		gw_layout_parse_key(l.keys[i], &rel, &lsn, &kind);
		if (rel && (rc = gw_index_lsn_known(index, rel, lsn, &known)) < 0) {
			free(rel);
			break;
		}
		if (!known) {
			rc = kind == GW_KEY_SEGMENT ? gw_index_record_segment(index, store, l.keys[i], l.sizes[i])
						    : record_manifest(index, store, l.keys[i]);
			added += rc == 0;
			if (rc > 0)
				rc = 0;
		}
		free(rel);
	}

	for (i = 0; i < l.count; i++)
		free(l.keys[i]);
	free(l.keys);
	free(l.sizes);
	free(l.kinds);
	if (rc < 0)
		return rc;
	gw_error_clear();
	return added;
}

int gw_index_sync(gw_index *index, gw_store *store, const char *repo)
{
	return sync_listing(index, store, repo, NULL);
}

int gw_index_sync_newer(gw_index *index, gw_store *store, const char *repo)
{
	char *prefix, *after;
	uint64_t last;
	int rc;
	if ((rc = gw_index_last_lsn(index, repo, &last)) < 0)
		return rc;
	if (!last)
		return sync_listing(index, store, repo, NULL);
	if (!(prefix = gw_layout_repo_prefix(repo)))
		return gw_error_set(GW_ERROR, "out of memory");
	/* After every key of the last LSN: "<20 digits>." sorts before "<20 digits>~", and the next LSN after both. */
	if (!(after = malloc(strlen(prefix) + 22))) {
		free(prefix);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	sprintf(after, "%s%020llu~", prefix, (unsigned long long)last);
	free(prefix);
	rc = sync_listing(index, store, repo, after);
	free(after);
	return rc;
}
