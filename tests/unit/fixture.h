/*
 * The unit tests' fixture: a fresh temporary directory with a file store
 * (tu_store_setup: test_store_file.c, test_layout.c) or an index
 * (tu_index_setup: test_index.c, test_index_timeline.c) open in it, for
 * cmocka's setup and teardown; and records to put in an index. The records
 * are made up but consistent: record n of a repository has the key the store
 * layout gives it, the time TU_AT(n), and digest n, so a segment whose
 * previous digest is n - 1 links to the record before it.
 * Include after testutil.h.
 */
#ifndef GITWAL_TESTS_FIXTURE_H
#define GITWAL_TESTS_FIXTURE_H

#include "gitwal/index.h"
#include "gitwal/segment.h"
#include "gitwal/store.h"

#define TU_T0 1700000000000000LL
#define TU_AT(lsn) (TU_T0 + (int64_t)(lsn) * 1000)

typedef struct {
	char dir[128];   /* the temporary directory */
	char root[160];  /* a file store's root in it */
	char url[200];   /* that store's URL */
	char path[200];  /* an index in it */
	gw_store *store; /* open on url (tu_store_setup) */
	gw_index *ix;    /* open on path (tu_index_setup) */
} tu_fixture;

static inline tu_fixture *tu_fixture_new(void)
{
	tu_fixture *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	tu_mkdtemp(f->dir, sizeof(f->dir));
	snprintf(f->root, sizeof(f->root), "%s/store", f->dir);
	snprintf(f->url, sizeof(f->url), "file://%s", f->root);
	snprintf(f->path, sizeof(f->path), "%s/index.db", f->dir);
	return f;
}

static inline int tu_store_setup(void **state)
{
	tu_fixture *f = tu_fixture_new();
	assert_int_equal(gw_store_open(&f->store, f->url), 0);
	*state = f;
	return 0;
}

static inline int tu_index_setup(void **state)
{
	tu_fixture *f = tu_fixture_new();
	assert_int_equal(gw_index_open(&f->ix, f->path), 0);
	*state = f;
	return 0;
}

static inline int tu_teardown(void **state)
{
	tu_fixture *f = *state;
	gw_index_free(f->ix);
	gw_store_free(f->store);
	tu_rmrf(f->dir);
	free(f);
	return 0;
}

/* Digest n: 64 hex digits. */
static inline void tu_digest(char out[65], uint64_t n)
{
	snprintf(out, 65, "%064llx", (unsigned long long)n);
}

/* The full backup of repo at lsn (its manifest key written into key, which it points to). */
static inline gw_full_record tu_full_record(const char *repo, uint64_t lsn, char key[128])
{
	gw_full_record r;
	memset(&r, 0, sizeof(r));
	r.repository = (char *)repo;
	r.lsn = lsn;
	r.time_us = TU_AT(lsn);
	snprintf(key, 128, "repos/%s/%020llu.full.manifest", repo, (unsigned long long)lsn);
	r.manifest_key = key;
	r.manifest_size = 100 + lsn;
	tu_digest(r.manifest_sha256, lsn);
	r.bundle_size = (1ULL << 40) + lsn; /* past 32 bits */
	r.idx_size = 2000 + lsn;
	r.objects = 3000 + lsn;
	r.refs = 4 + lsn;
	return r;
}

static inline void tu_add_full(gw_index *ix, const char *repo, uint64_t lsn)
{
	char key[128];
	gw_full_record r = tu_full_record(repo, lsn, key);
	int rc = gw_index_full_add(ix, &r);
	if (rc)
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);
}

/* The segment of repo at lsn in the generation of the full backup at base, linking to digest prev (key as above). */
static inline gw_segment_record tu_segment_record(const char *repo, uint64_t lsn, uint64_t base, uint64_t prev,
						  char key[128])
{
	gw_segment_record r;
	memset(&r, 0, sizeof(r));
	r.repository = (char *)repo;
	r.lsn = lsn;
	r.base_lsn = base;
	r.time_first_us = r.time_last_us = TU_AT(lsn);
	snprintf(key, 128, "repos/%s/%020llu.seg", repo, (unsigned long long)lsn);
	r.key = key;
	r.size = 100 * lsn;
	tu_digest(r.sha256, lsn);
	tu_digest(r.prev_sha256, prev);
	return r;
}

/* Add that segment, with its n updates. */
static inline void tu_add_segment(gw_index *ix, const char *repo, uint64_t lsn, uint64_t base, uint64_t prev,
				  const gw_update *u, size_t n)
{
	char key[128];
	gw_segment_record r = tu_segment_record(repo, lsn, base, prev, key);
	int rc;
	r.updates = n;
	if ((rc = gw_index_segment_add(ix, &r, u, n)))
		print_error("%s\n", gw_error_message());
	assert_int_equal(rc, 0);
}

#endif
