/*
 * The archiver's local spool (see spool.h).
 */
#include "wal/spool.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/layout.h"
#include "gitwal/repo.h"
#include "gitwal/segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct gw_spool {
	char *dir;
	gw_store *store;
	uint64_t max_bytes;
	uint64_t bytes;
	size_t count;
};

static int recount(gw_spool *s)
{
	gw_store_listing l;
	size_t i;
	int rc = gw_store_list_all(s->store, GW_LAYOUT_REPOS, &l);
	if (rc == 0) {
		s->bytes = 0;
		s->count = l.count;
		for (i = 0; i < l.count; i++)
			s->bytes += l.sizes[i];
	}
	gw_store_listing_dispose(&l);
	return rc;
}

int gw_spool_open(gw_spool **out, const char *dir, uint64_t max_bytes)
{
	gw_spool *s = calloc(1, sizeof(*s));
	char *url;
	int rc;
	*out = NULL;
	if (!s || asprintf(&url, "file://%s", dir) < 0) {
		free(s);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	rc = gw_store_open(&s->store, url);
	free(url);
	if (rc == 0 && !(s->dir = strdup(dir)))
		rc = gw_error_set(GW_ERROR, "out of memory");
	if (rc < 0 || (rc = recount(s)) < 0) {
		gw_spool_free(s);
		return gw_error_prefix("spool %s", dir);
	}
	s->max_bytes = max_bytes;
	*out = s;
	return 0;
}

void gw_spool_free(gw_spool *s)
{
	if (!s)
		return;
	gw_store_free(s->store);
	free(s->dir);
	free(s);
}

gw_store *gw_spool_store(gw_spool *s)
{
	return s->store;
}

uint64_t gw_spool_bytes(const gw_spool *s)
{
	return s->bytes;
}

size_t gw_spool_count(const gw_spool *s)
{
	return s->count;
}

int gw_spool_full(const gw_spool *s)
{
	return s->bytes >= s->max_bytes;
}

static int any(const gw_store_entry *e, void *payload)
{
	(void)e;
	*(int *)payload = 1;
	return 1;
}

int gw_spool_has_repo(gw_spool *s, const char *rel)
{
	char *prefix;
	int found = 0;
	if (!s->count)
		return 0;
	if (!(prefix = gw_layout_repo_prefix(rel)))
		return 0;
	gw_store_list(s->store, prefix, any, &found);
	free(prefix);
	return found;
}

void gw_spool_added(gw_spool *s, uint64_t bytes)
{
	s->bytes += bytes;
	s->count++;
}

/* Copy one spooled segment to the store, create-only. */
static int upload(gw_spool *s, gw_store *store, const char *key, uint64_t size)
{
	gw_store_reader *r = NULL;
	gw_store_writer *w = NULL;
	char buf[1 << 16];
	ssize_t n;
	int rc;
	if ((rc = gw_store_read_open(&r, s->store, key, 0, GW_STORE_TO_END)) < 0)
		return rc;
	if ((rc = gw_store_write_open(&w, store, key, size)) < 0)
		goto out;
	while ((n = gw_store_reader_read(r, buf, sizeof(buf))) > 0)
		if ((rc = gw_store_writer_write(w, buf, (size_t)n)) < 0)
			goto out;
	if (n < 0) {
		rc = (int)n;
		goto out;
	}
	rc = gw_store_writer_commit(w);
out:
	gw_store_writer_free(w);
	gw_store_reader_free(r);
	return rc;
}

/* The digest in a stored segment's trailer: equal digests, equal records. */
static int trailer_digest(gw_store *store, const char *key, uint64_t size, unsigned char digest[32])
{
	unsigned char trailer[GW_SEGMENT_TRAILER_SIZE];
	int rc;
	if (size < sizeof(trailer))
		return gw_error_set(GW_ECORRUPT, "segment %s is truncated", key);
	if ((rc = gw_store_read_range(store, key, size - sizeof(trailer), sizeof(trailer), trailer)) == 0)
		memcpy(digest, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
	return rc;
}

/* 1: the store holds this very segment (uploaded before a crash); 0: another record; <0: cannot tell. */
static int store_has_same(gw_spool *s, gw_store *store, const char *key, uint64_t size)
{
	unsigned char mine[32], theirs[32];
	gw_store_stat st;
	int rc;
	if ((rc = gw_store_stat_key(store, key, &st)) < 0 || (rc = trailer_digest(store, key, st.size, theirs)) < 0 ||
	    (rc = trailer_digest(s->store, key, size, mine)) < 0)
		return rc;
	return st.size == size && memcmp(mine, theirs, 32) == 0;
}

/* Move rel's spooled segments to spool-conflicts/<enc(rel)>.<time>/ beside the spool, whole. */
static int set_aside(gw_spool *s, const char *rel, uint64_t *bytes, size_t *count)
{
	gw_store_listing l;
	char *prefix = gw_layout_repo_prefix(rel), *enc = gw_repo_path_encode(rel), *from = NULL, *dir = NULL;
	char name[4200];
	size_t i;
	int rc;
	*bytes = 0;
	*count = 0;
	memset(&l, 0, sizeof(l));
	if (!prefix || !enc || asprintf(&from, "%s/%s%s", s->dir, GW_LAYOUT_REPOS, enc) < 0 ||
	    asprintf(&dir, "%s-conflicts", s->dir) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_store_list_all(s->store, prefix, &l)) < 0 || (rc = gw_fs_mkdir_p(dir, 0700)) < 0)
		goto out;
	snprintf(name, sizeof(name), "%s/%s.%lld", dir, enc, (long long)time(NULL));
	if (rename(from, name) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot move %s to %s", from, name);
		goto out;
	}
	for (i = 0; i < l.count; i++)
		*bytes += l.sizes[i];
	*count = l.count;
out:
	gw_store_listing_dispose(&l);
	free(prefix);
	free(enc);
	free(from);
	free(dir);
	return rc;
}

int gw_spool_flush(gw_spool *s, gw_store *store, gw_index *index, gw_spool_conflict_fn on_conflict, void *payload)
{
	gw_store_listing l;
	char *skip = NULL; /* the prefix of a repository set aside during this flush */
	size_t i;
	int rc = 0, done = 0;
	if (!s->count)
		return 0;
	if ((rc = gw_store_list_all(s->store, GW_LAYOUT_REPOS, &l)) < 0)
		return rc;
	for (i = 0; i < l.count; i++) {
		char *rel = NULL;
		uint64_t lsn, bytes;
		gw_key_kind kind;
		size_t count;
		if (skip && strncmp(l.keys[i], skip, strlen(skip)) == 0)
			continue;
		rc = upload(s, store, l.keys[i], l.sizes[i]);
		if (rc == GW_EEXISTS && (rc = store_has_same(s, store, l.keys[i], l.sizes[i])) == 0) {
			/* Another writer took this LSN: these segments can never be the store's. */
			if ((rc = gw_layout_parse_key(l.keys[i], &rel, &lsn, &kind)) < 0 || !rel ||
			    (rc = set_aside(s, rel, &bytes, &count)) < 0) {
				free(rel);
				break;
			}
			s->bytes -= s->bytes < bytes ? s->bytes : bytes;
			s->count -= s->count < count ? s->count : count;
			free(skip);
			skip = gw_layout_repo_prefix(rel);
			if (on_conflict)
				on_conflict(rel, lsn, payload);
			free(rel);
			continue;
		}
		if (rc < 0)
			break;
		/* The store has it: the index row is a cache (the next sync repairs a failure here). */
		gw_index_record_segment(index, s->store, l.keys[i], l.sizes[i]);
		if ((rc = gw_store_remove(s->store, l.keys[i])) < 0)
			break;
		s->bytes -= s->bytes < l.sizes[i] ? s->bytes : l.sizes[i];
		s->count--;
		done++;
	}
	free(skip);
	gw_store_listing_dispose(&l);
	if (rc < 0)
		return rc;
	return done;
}
