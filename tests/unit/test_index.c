/* Unit tests for src/index: the SQLite index (index.c) and its rebuild from a store (sync.c). */
#include "testutil.h"
#include "fixture.h"

#include "gitwal/layout.h"
#include "gitwal/manifest.h"

#include <sqlite3.h>

static void assert_rec(const gw_full_record *got, const char *repo, uint64_t lsn)
{
	char key[128];
	gw_full_record w = tu_full_record(repo, lsn, key);
	assert_string_equal(got->repository, w.repository);
	assert_int_equal(got->lsn, w.lsn);
	assert_int_equal(got->time_us, w.time_us);
	assert_string_equal(got->manifest_key, w.manifest_key);
	assert_int_equal(got->manifest_size, w.manifest_size);
	assert_string_equal(got->manifest_sha256, w.manifest_sha256);
	assert_int_equal(got->bundle_size, w.bundle_size);
	assert_int_equal(got->idx_size, w.idx_size);
	assert_int_equal(got->objects, w.objects);
	assert_int_equal(got->refs, w.refs);
}

static void test_open_wal_and_schema(void **state)
{
	tu_fixture *f = *state;
	sqlite3 *db;
	sqlite3_stmt *st;
	gw_index *again;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "6");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name IN "
					    "('meta','repos','fulls')",
					    -1, &st, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 3);
	sqlite3_finalize(st);
	sqlite3_close(db);

	/* Reopening keeps what is there. */
	tu_add_full(f->ix, "a.git", 1);
	assert_int_equal(gw_index_open(&again, f->path), 0);
	{
		gw_full_record r;
		assert_int_equal(gw_index_full_find(again, "a.git", 1, &r), 0);
		assert_rec(&r, "a.git", 1);
		gw_full_record_dispose(&r);
	}
	gw_index_free(again);
	gw_index_free(NULL);
}

static void test_open_errors(void **state)
{
	tu_fixture *f = *state;
	char bad[300];
	gw_index *ix = (gw_index *)1;
	sqlite3 *db;
	snprintf(bad, sizeof(bad), "%s/no/such/dir/index.db", f->dir);
	tu_assert_err(gw_index_open(&ix, bad), GW_EIO, bad);
	assert_null(ix);
	/* A newer schema is refused, naming the file. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "UPDATE meta SET value='7' WHERE key='schema_version'", NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	tu_assert_err(gw_index_open(&ix, f->path), GW_EVERSION, f->path);
	tu_assert_msg_has("version 7");
	assert_null(ix);
	/* Not a database. */
	snprintf(bad, sizeof(bad), "%s/garbage.db", f->dir);
	{
		static const char junk[] = "this is not an sqlite database, not at all, no................................";
		tu_write_file(bad, junk, sizeof(junk) - 1);
	}
	tu_assert_err(gw_index_open(&ix, bad), GW_EIO, bad);
	assert_null(ix);
}

/* A pool's lowest generation its members' full backups name (retention keeps it: DESIGN.md 19). */
static void test_pool_floor(void **state)
{
	tu_fixture *f = *state;
	gw_full_record r;
	char key[128];
	uint64_t lsn = 99;
	tu_add_full(f->ix, "@pools/p.git", 3);
	assert_int_equal(gw_index_pool_floor(f->ix, "@pools/p.git", &lsn), 0);
	assert_int_equal(lsn, 0);
	r = tu_full_record("f1.git", 1, key);
	r.pool = "@pools/p.git";
	r.pool_base_lsn = 7;
	assert_int_equal(gw_index_full_add(f->ix, &r), 0);
	r = tu_full_record("f2.git", 4, key);
	r.pool = "@pools/p.git";
	r.pool_base_lsn = 3;
	assert_int_equal(gw_index_full_add(f->ix, &r), 0);
	r = tu_full_record("f3.git", 2, key);
	r.pool = "@pools/q.git";
	r.pool_base_lsn = 1;
	assert_int_equal(gw_index_full_add(f->ix, &r), 0);
	assert_int_equal(gw_index_pool_floor(f->ix, "@pools/p.git", &lsn), 1);
	assert_int_equal(lsn, 3);
	assert_int_equal(gw_index_pool_floor(f->ix, "f1.git", &lsn), 0);
	/* Not read back: what the index returns owns no pool. */
	assert_int_equal(gw_index_full_find(f->ix, "f1.git", 1, &r), 0);
	assert_null(r.pool);
	gw_full_record_dispose(&r);
}

static void test_add_and_find(void **state)
{
	tu_fixture *f = *state;
	gw_full_record r;
	tu_add_full(f->ix, "a.git", 2);
	tu_add_full(f->ix, "a.git", 10);
	tu_add_full(f->ix, "a.git", 1);
	tu_add_full(f->ix, "b/c.git", 5);
	/* Latest. */
	assert_int_equal(gw_index_full_find(f->ix, "a.git", 0, &r), 0);
	assert_rec(&r, "a.git", 10);
	gw_full_record_dispose(&r);
	assert_null(r.repository);
	assert_int_equal(gw_index_full_find(f->ix, "b/c.git", 0, &r), 0);
	assert_rec(&r, "b/c.git", 5);
	gw_full_record_dispose(&r);
	/* By LSN. */
	assert_int_equal(gw_index_full_find(f->ix, "a.git", 2, &r), 0);
	assert_rec(&r, "a.git", 2);
	gw_full_record_dispose(&r);
	/* Not found, naming the repository (and the LSN). */
	tu_assert_err(gw_index_full_find(f->ix, "a.git", 3, &r), GW_ENOTFOUND, "a.git");
	tu_assert_msg_has("3");
	tu_assert_err(gw_index_full_find(f->ix, "b/c.git", 10, &r), GW_ENOTFOUND, "b/c.git");
	tu_assert_err(gw_index_full_find(f->ix, "zzz.git", 0, &r), GW_ENOTFOUND, "zzz.git");
	/* Names are exact: no prefix or LIKE matching. */
	tu_assert_err(gw_index_full_find(f->ix, "a.gi", 0, &r), GW_ENOTFOUND, "a.gi");
	tu_assert_err(gw_index_full_find(f->ix, "A.GIT", 0, &r), GW_ENOTFOUND, "A.GIT");
	tu_assert_err(gw_index_full_find(f->ix, "a.git%", 0, &r), GW_ENOTFOUND, "a.git%");
	/* Adding the same backup again changes nothing (write-once records). */
	{
		char key[128];
		gw_full_record again = tu_full_record("a.git", 2, key);
		again.objects = 1;
		assert_int_equal(gw_index_full_add(f->ix, &again), 0);
		assert_int_equal(gw_index_full_find(f->ix, "a.git", 2, &r), 0);
		assert_rec(&r, "a.git", 2);
		gw_full_record_dispose(&r);
	}
}

typedef struct {
	char names[32][64];
	uint64_t lsns[32];
	int n, stop_at;
} seen;

static int visit(const gw_full_record *r, void *payload)
{
	seen *s = payload;
	snprintf(s->names[s->n], 64, "%s", r->repository);
	s->lsns[s->n] = r->lsn;
	assert_rec(r, r->repository, r->lsn);
	s->n++;
	return s->stop_at && s->n >= s->stop_at ? 42 : 0;
}

static void test_foreach_repos_clear(void **state)
{
	tu_fixture *f = *state;
	static const struct {
		const char *repo;
		uint64_t lsn;
	} order[] = {{"B.git", 1}, {"a.git", 1}, {"a.git", 2}, {"a.git", 9}, {"a.git", 100}, {"a/b.git", 3}, {"z.git", 4}};
	seen s;
	char **repos;
	size_t n, i;
	gw_full_record r;
	/* Insert out of order. */
	tu_add_full(f->ix, "z.git", 4);
	tu_add_full(f->ix, "a.git", 100);
	tu_add_full(f->ix, "a/b.git", 3);
	tu_add_full(f->ix, "a.git", 9);
	tu_add_full(f->ix, "B.git", 1);
	tu_add_full(f->ix, "a.git", 1);
	tu_add_full(f->ix, "a.git", 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(gw_index_full_foreach(f->ix, NULL, visit, &s), 0);
	assert_int_equal(s.n, 7);
	for (i = 0; i < 7; i++) {
		assert_string_equal(s.names[i], order[i].repo);
		assert_int_equal(s.lsns[i], order[i].lsn);
	}
	memset(&s, 0, sizeof(s));
	assert_int_equal(gw_index_full_foreach(f->ix, "a.git", visit, &s), 0);
	assert_int_equal(s.n, 4);
	assert_int_equal(s.lsns[0], 1);
	assert_int_equal(s.lsns[3], 100);
	memset(&s, 0, sizeof(s));
	s.stop_at = 2;
	assert_int_equal(gw_index_full_foreach(f->ix, NULL, visit, &s), 42);
	assert_int_equal(s.n, 2);
	memset(&s, 0, sizeof(s));
	assert_int_equal(gw_index_full_foreach(f->ix, "none.git", visit, &s), 0);
	assert_int_equal(s.n, 0);

	assert_int_equal(gw_index_repos(f->ix, &repos, &n), 0);
	assert_int_equal(n, 4);
	assert_string_equal(repos[0], "B.git");
	assert_string_equal(repos[1], "a.git");
	assert_string_equal(repos[2], "a/b.git");
	assert_string_equal(repos[3], "z.git");
	for (i = 0; i < n; i++)
		free(repos[i]);
	free(repos);

	assert_int_equal(gw_index_clear(f->ix), 0);
	assert_int_equal(gw_index_repos(f->ix, &repos, &n), 0);
	assert_int_equal(n, 0);
	free(repos);
	memset(&s, 0, sizeof(s));
	assert_int_equal(gw_index_full_foreach(f->ix, NULL, visit, &s), 0);
	assert_int_equal(s.n, 0);
	tu_assert_err(gw_index_full_find(f->ix, "a.git", 0, &r), GW_ENOTFOUND, "a.git");
	/* Usable after clearing. */
	tu_add_full(f->ix, "a.git", 7);
	assert_int_equal(gw_index_full_find(f->ix, "a.git", 0, &r), 0);
	assert_int_equal(r.lsn, 7);
	gw_full_record_dispose(&r);
}

static int count_only(const gw_full_record *r, void *payload)
{
	(void)r;
	((seen *)payload)->n++;
	return 0;
}

/* ---- sync from a store ---- */

static char *put_manifest(gw_store *s, const char *rel, uint64_t lsn, const char *key_rel, uint64_t key_lsn,
			  size_t *len_out)
{
	gw_manifest m;
	gw_manifest_ref refs[2] = {{"refs/heads/a", "0123456789abcdef0123456789abcdef01234567", NULL},
				   {"refs/heads/b", "0123456789abcdef0123456789abcdef01234567", NULL}};
	char *text, *key, *bkey, *ikey;
	size_t len;
	memset(&m, 0, sizeof(m));
	m.repository = (char *)rel;
	m.lsn = lsn;
	m.time_us = 1700000000000000LL + (int64_t)lsn;
	snprintf(m.object_format, sizeof(m.object_format), "sha1");
	m.head.name = "HEAD";
	m.head.symbolic = "refs/heads/a";
	snprintf(m.head.oid, sizeof(m.head.oid), "%s", refs[0].oid);
	m.refs = refs;
	m.nrefs = 1 + (lsn & 1);
	bkey = gw_layout_key(rel, lsn, GW_KEY_FULL_BUNDLE);
	ikey = gw_layout_key(rel, lsn, GW_KEY_FULL_IDX);
	m.bundle.key = bkey;
	m.bundle.size = 1000 + lsn;
	memset(m.bundle.sha256, 'a', 64);
	m.pack_offset = 100;
	m.objects = 50 + lsn;
	snprintf(m.pack_checksum, sizeof(m.pack_checksum), "%s", refs[0].oid);
	m.idx.key = ikey;
	m.idx.size = 500 + lsn;
	memset(m.idx.sha256, 'b', 64);
	assert_int_equal(gw_manifest_write(&m, &text, &len), 0);
	key = gw_layout_key(key_rel, key_lsn, GW_KEY_FULL_MANIFEST);
	assert_int_equal(gw_store_put(s, key, text, len), 0);
	free(bkey);
	free(ikey);
	if (len_out)
		*len_out = len;
	free(text);
	return key;
}

static void test_sync(void **state)
{
	tu_fixture *f = *state;
	char url[300], *key;
	gw_store *s;
	gw_full_record r;
	size_t len;
	unsigned char digest[32];
	char hex[65], *text;
	size_t tlen;
	seen sn;
	snprintf(url, sizeof(url), "file://%s/store", f->dir);
	assert_int_equal(gw_store_open(&s, url), 0);
	/* An empty store: nothing to add. */
	assert_int_equal(gw_index_sync(f->ix, s, NULL), 0);

	free(put_manifest(s, "a.git", 1, "a.git", 1, NULL));
	key = put_manifest(s, "a.git", 2, "a.git", 2, &len);
	free(put_manifest(s, "g/b.git", 1, "g/b.git", 1, NULL));
	/* A failed backup: parts without a manifest. */
	{
		char *k = gw_layout_key("a.git", 3, GW_KEY_FULL_BUNDLE);
		assert_int_equal(gw_store_put(s, k, "partial", 7), 0);
		free(k);
		k = gw_layout_key("a.git", 3, GW_KEY_FULL_IDX);
		assert_int_equal(gw_store_put(s, k, "partial", 7), 0);
		free(k);
	}
	/* Foreign keys are ignored. */
	assert_int_equal(gw_store_put(s, "repos/a.git/notes.txt", "x", 1), 0);
	assert_int_equal(gw_store_put(s, "other/00000000000000000001.full.manifest", "x", 1), 0);

	assert_int_equal(gw_index_sync(f->ix, s, NULL), 3);
	assert_int_equal(gw_index_full_find(f->ix, "a.git", 0, &r), 0);
	assert_int_equal(r.lsn, 2);
	assert_string_equal(r.manifest_key, key);
	assert_int_equal(r.manifest_size, len);
	assert_int_equal(r.bundle_size, 1002);
	assert_int_equal(r.idx_size, 502);
	assert_int_equal(r.objects, 52);
	assert_int_equal(r.refs, 1);
	assert_int_equal(r.time_us, 1700000000000002LL);
	assert_int_equal(gw_store_get(s, key, 1 << 20, &text, &tlen), 0);
	gw_hash_buffer(GW_HASH_SHA256, text, tlen, digest);
	gw_hex_encode(hex, digest, 32);
	assert_string_equal(r.manifest_sha256, hex);
	free(text);
	gw_full_record_dispose(&r);
	tu_assert_err(gw_index_full_find(f->ix, "a.git", 3, &r), GW_ENOTFOUND, "a.git");
	assert_int_equal(gw_index_full_find(f->ix, "g/b.git", 1, &r), 0);
	assert_int_equal(r.refs, 2);
	gw_full_record_dispose(&r);
	/* Idempotent. */
	assert_int_equal(gw_index_sync(f->ix, s, NULL), 0);
	memset(&sn, 0, sizeof(sn));
	assert_int_equal(gw_index_full_foreach(f->ix, NULL, count_only, &sn), 0);
	assert_int_equal(sn.n, 3);
	free(key);

	/* One repository only, after a clear. */
	assert_int_equal(gw_index_clear(f->ix), 0);
	assert_int_equal(gw_index_sync(f->ix, s, "g/b.git"), 1);
	tu_assert_err(gw_index_full_find(f->ix, "a.git", 0, &r), GW_ENOTFOUND, "a.git");
	assert_int_equal(gw_index_sync(f->ix, s, "a.git"), 2);
	assert_int_equal(gw_index_sync(f->ix, s, "none.git"), 0);
	gw_store_free(s);
}

static void test_sync_rejects_mismatched_manifest(void **state)
{
	tu_fixture *f = *state;
	char url[300], *key;
	gw_store *s;
	gw_full_record r;
	snprintf(url, sizeof(url), "file://%s/store2", f->dir);
	assert_int_equal(gw_store_open(&s, url), 0);
	/* The manifest says LSN 7, its key says 8. */
	key = put_manifest(s, "a.git", 7, "a.git", 8, NULL);
	tu_assert_err(gw_index_sync(f->ix, s, NULL), GW_ECORRUPT, key);
	tu_assert_err(gw_index_full_find(f->ix, "a.git", 0, &r), GW_ENOTFOUND, "a.git");
	free(key);
	gw_store_free(s);

	/* Another repository's manifest under this one's key. */
	snprintf(url, sizeof(url), "file://%s/store3", f->dir);
	assert_int_equal(gw_store_open(&s, url), 0);
	key = put_manifest(s, "evil.git", 1, "a.git", 1, NULL);
	tu_assert_err(gw_index_sync(f->ix, s, NULL), GW_ECORRUPT, key);
	tu_assert_msg_has("evil.git");
	tu_assert_err(gw_index_full_find(f->ix, "evil.git", 0, &r), GW_ENOTFOUND, "evil.git");
	tu_assert_err(gw_index_full_find(f->ix, "a.git", 0, &r), GW_ENOTFOUND, "a.git");
	free(key);
	gw_store_free(s);

	/* A manifest that is not JSON. */
	snprintf(url, sizeof(url), "file://%s/store4", f->dir);
	assert_int_equal(gw_store_open(&s, url), 0);
	key = gw_layout_key("a.git", 1, GW_KEY_FULL_MANIFEST);
	assert_int_equal(gw_store_put(s, key, "{garbage", 8), 0);
	tu_assert_err(gw_index_sync(f->ix, s, NULL), GW_ECORRUPT, key);
	free(key);
	gw_store_free(s);
}

/* gw_index_sync_report goes on past damaged keys, names each once, and lists every repository a key names. */
static void test_sync_report(void **state)
{
	tu_fixture *f = *state;
	char url[300], *k, *bad_manifest, *bad_segment;
	gw_store *s;
	gw_sync_report rep;
	const gw_sync_problem *p;
	snprintf(url, sizeof(url), "file://%s/store5", f->dir);
	assert_int_equal(gw_store_open(&s, url), 0);
	free(put_manifest(s, "a.git", 1, "a.git", 1, NULL));
	free(put_manifest(s, "a.git", 2, "a.git", 2, NULL));
	bad_segment = gw_layout_key("a.git", 3, GW_KEY_SEGMENT);
	assert_int_equal(gw_store_put(s, bad_segment, "garbage!", 8), 0);
	bad_manifest = gw_layout_key("g/b.git", 1, GW_KEY_FULL_MANIFEST);
	assert_int_equal(gw_store_put(s, bad_manifest, "{garbage", 8), 0);
	/* Known only from a bundle: still a repository of the archive. */
	k = gw_layout_key("c.git", 1, GW_KEY_FULL_BUNDLE);
	assert_int_equal(gw_store_put(s, k, "partial", 7), 0);
	free(k);

	/* The strict sync stops at the first damaged key. */
	tu_assert_err(gw_index_sync(f->ix, s, NULL), GW_ECORRUPT, bad_segment);

	assert_int_equal(gw_index_clear(f->ix), 0);
	memset(&rep, 0, sizeof(rep));
	assert_int_equal(gw_index_sync_report(f->ix, s, NULL, 0, &rep), 2);
	assert_int_equal(rep.fulls, 2);
	assert_int_equal(rep.segments, 0);
	assert_int_equal(rep.nrepos, 3);
	assert_string_equal(rep.repos[0], "a.git");
	assert_string_equal(rep.repos[1], "c.git");
	assert_string_equal(rep.repos[2], "g/b.git");
	assert_int_equal(rep.nproblems, 2);
	assert_string_equal(rep.problems[0].repository, "a.git");
	assert_string_equal(rep.problems[0].key, bad_segment);
	assert_int_equal(rep.problems[0].lsn, 3);
	assert_int_equal(rep.problems[0].code, GW_ECORRUPT);
	assert_non_null(strstr(rep.problems[0].reason, bad_segment));
	assert_string_equal(rep.problems[1].repository, "g/b.git");
	assert_string_equal(rep.problems[1].key, bad_manifest);
	assert_non_null(strstr(rep.problems[1].reason, "JSON"));
	assert_true(gw_sync_report_has_repo(&rep, "c.git"));
	assert_false(gw_sync_report_has_repo(&rep, "x.git"));
	assert_non_null(p = gw_sync_report_find(&rep, "a.git", 0));
	assert_int_equal(p->lsn, 3);
	assert_null(gw_sync_report_find(&rep, "a.git", 3));
	assert_null(gw_sync_report_find(&rep, "c.git", 0));
	/* Every healthy record is in the index. */
	{
		uint64_t last;
		assert_int_equal(gw_index_last_lsn(f->ix, "a.git", &last), 0);
		assert_int_equal(last, 2);
	}
	/* Syncing again into the same report names each key once. */
	assert_int_equal(gw_index_sync_report(f->ix, s, "a.git", 1, &rep), 0);
	assert_int_equal(gw_index_sync_report(f->ix, s, NULL, 0, &rep), 0);
	assert_int_equal(rep.nproblems, 2);
	gw_sync_report_dispose(&rep);
	/* Without a report, the newer-only sync is strict, as gw_index_sync_newer. */
	tu_assert_err(gw_index_sync_report(f->ix, s, "a.git", 1, NULL), GW_ECORRUPT, bad_segment);
	free(bad_segment);
	free(bad_manifest);
	gw_store_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_wal_and_schema, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_open_errors, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_add_and_find, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_pool_floor, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_foreach_repos_clear, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_sync, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_sync_rejects_mismatched_manifest, tu_index_setup, tu_teardown),
		cmocka_unit_test_setup_teardown(test_sync_report, tu_index_setup, tu_teardown),
	};
	return tu_run_tests(tests);
}
