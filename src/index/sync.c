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

#include <stdlib.h>
#include <string.h>

typedef struct {
	char **keys;
	size_t count, cap;
} key_list;

static int collect_manifests(const gw_store_entry *e, void *payload)
{
	key_list *l = payload;
	char *rel = NULL;
	uint64_t lsn;
	gw_key_kind kind;
	if (gw_layout_parse_key(e->key, &rel, &lsn, &kind) < 0 || kind != GW_KEY_FULL_MANIFEST) {
		free(rel);
		return 0;
	}
	free(rel);
	if (l->count == l->cap) {
		char **n = realloc(l->keys, (l->cap = l->cap ? l->cap * 2 : 64) * sizeof(char *));
		if (!n)
			return gw_error_set(GW_ERROR, "out of memory");
		l->keys = n;
	}
	if (!(l->keys[l->count] = strdup(e->key)))
		return gw_error_set(GW_ERROR, "out of memory");
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
		gw_manifest_dispose(&m);
	}
	free(rel);
	free(text);
	return rc;
}

int gw_index_sync(gw_index *index, gw_store *store, const char *repo)
{
	key_list l = {0};
	char *prefix = repo ? gw_layout_repo_prefix(repo) : strdup(GW_LAYOUT_REPOS);
	size_t i;
	int rc, added = 0;

	if (!prefix)
		return gw_error_set(GW_ERROR, "out of memory");
	rc = gw_store_list(store, prefix, collect_manifests, &l);
	free(prefix);
	for (i = 0; i < l.count && rc >= 0; i++) {
		char *rel = NULL;
		uint64_t lsn;
		gw_key_kind kind;
		gw_full_record existing;
		gw_layout_parse_key(l.keys[i], &rel, &lsn, &kind);
		if (rel && gw_index_full_find(index, rel, lsn, &existing) == 0) {
			gw_full_record_dispose(&existing);
		} else if ((rc = record_manifest(index, store, l.keys[i])) == 0) {
			added++;
		}
		free(rel);
	}
	for (i = 0; i < l.count; i++)
		free(l.keys[i]);
	free(l.keys);
	if (rc < 0)
		return rc;
	gw_error_clear();
	return added;
}
