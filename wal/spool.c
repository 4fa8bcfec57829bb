/*
 * The archiver's local spool (see spool.h).
 */
#include "wal/spool.h"
#include "gitwal/error.h"
#include "gitwal/layout.h"
#include "gitwal/segment.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gw_spool {
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

int gw_spool_flush(gw_spool *s, gw_store *store, gw_index *index)
{
	gw_store_listing l;
	size_t i;
	int rc, done = 0;
	if (!s->count)
		return 0;
	if ((rc = gw_store_list_all(s->store, GW_LAYOUT_REPOS, &l)) < 0)
		return rc;
	for (i = 0; i < l.count; i++) {
		gw_store_stat st;
		rc = upload(s, store, l.keys[i], l.sizes[i]);
		if (rc == GW_EEXISTS && gw_store_stat_key(store, l.keys[i], &st) == 0 && st.size == l.sizes[i])
			rc = 0; /* uploaded before a crash, not yet removed here */
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
	gw_store_listing_dispose(&l);
	if (rc < 0)
		return rc;
	return done;
}
