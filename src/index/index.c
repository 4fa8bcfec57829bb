/*
 * The local SQLite index. One connection, serialised by a mutex: writes are
 * a few rows per backup, and readers (info, restore planning) use indexed
 * queries. WAL journal mode lets another process read while one writes.
 */
#include "gitwal/index.h"
#include "gitwal/error.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INDEX_SCHEMA_VERSION 1

struct gw_index {
	sqlite3 *db;
	char *path;
	pthread_mutex_t lock;
};

static const char *schema =
	"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
	"CREATE TABLE IF NOT EXISTS repos(id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE);"
	"CREATE TABLE IF NOT EXISTS fulls("
	"  repo_id INTEGER NOT NULL REFERENCES repos(id),"
	"  lsn INTEGER NOT NULL,"
	"  time_us INTEGER NOT NULL,"
	"  manifest_key TEXT NOT NULL UNIQUE,"
	"  manifest_size INTEGER NOT NULL,"
	"  manifest_sha256 TEXT NOT NULL,"
	"  bundle_size INTEGER NOT NULL,"
	"  idx_size INTEGER NOT NULL,"
	"  objects INTEGER NOT NULL,"
	"  refs INTEGER NOT NULL,"
	"  PRIMARY KEY(repo_id, lsn));"
	"CREATE INDEX IF NOT EXISTS fulls_time ON fulls(repo_id, time_us);"
	"CREATE TABLE IF NOT EXISTS segments("
	"  repo_id INTEGER NOT NULL REFERENCES repos(id),"
	"  lsn INTEGER NOT NULL,"
	"  base_lsn INTEGER NOT NULL,"
	"  time_first_us INTEGER NOT NULL,"
	"  time_last_us INTEGER NOT NULL,"
	"  key TEXT NOT NULL UNIQUE,"
	"  size INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  prev_sha256 TEXT NOT NULL,"
	"  objects INTEGER NOT NULL,"
	"  updates INTEGER NOT NULL,"
	"  gap INTEGER NOT NULL,"
	"  PRIMARY KEY(repo_id, lsn));"
	"CREATE INDEX IF NOT EXISTS segments_time ON segments(repo_id, time_last_us);";

static int db_fail(gw_index *ix, const char *what)
{
	return gw_error_set(GW_EIO, "index %s: %s: %s", ix->path, what, sqlite3_errmsg(ix->db));
}

static int exec(gw_index *ix, const char *sql)
{
	char *err = NULL;
	if (sqlite3_exec(ix->db, sql, NULL, NULL, &err) != SQLITE_OK) {
		int rc = gw_error_set(GW_EIO, "index %s: %s", ix->path, err ? err : "SQL error");
		sqlite3_free(err);
		return rc;
	}
	return 0;
}

static int check_version(gw_index *ix)
{
	sqlite3_stmt *st;
	int rc = 0;
	if (sqlite3_prepare_v2(ix->db, "SELECT value FROM meta WHERE key='schema_version'", -1, &st, NULL) != SQLITE_OK)
		return db_fail(ix, "cannot read the schema version");
	if (sqlite3_step(st) == SQLITE_ROW) {
		int v = atoi((const char *)sqlite3_column_text(st, 0));
		if (v != INDEX_SCHEMA_VERSION)
			rc = gw_error_set(GW_EVERSION,
					  "index %s has schema version %d; this gitwal uses %d (remove the file and "
					  "run 'gitwal index rebuild')",
					  ix->path, v, INDEX_SCHEMA_VERSION);
	} else {
		sqlite3_finalize(st);
		return exec(ix, "INSERT INTO meta(key, value) VALUES('schema_version', '1')");
	}
	sqlite3_finalize(st);
	return rc;
}

int gw_index_open(gw_index **out, const char *path)
{
	gw_index *ix = calloc(1, sizeof(*ix));
	int rc;
	*out = NULL;
	if (!ix || !(ix->path = strdup(path))) {
		free(ix);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	pthread_mutex_init(&ix->lock, NULL);
	if (sqlite3_open_v2(path, &ix->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
	    SQLITE_OK) {
		rc = gw_error_set(GW_EIO, "cannot open index %s: %s", path,
				  ix->db ? sqlite3_errmsg(ix->db) : "out of memory");
		gw_index_free(ix);
		return rc;
	}
	sqlite3_busy_timeout(ix->db, 10000);
	if ((rc = exec(ix, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;")) < 0 ||
	    (rc = exec(ix, schema)) < 0 || (rc = check_version(ix)) < 0) {
		gw_index_free(ix);
		return rc;
	}
	*out = ix;
	return 0;
}

void gw_index_free(gw_index *ix)
{
	if (!ix)
		return;
	sqlite3_close(ix->db);
	pthread_mutex_destroy(&ix->lock);
	free(ix->path);
	free(ix);
}

static int repo_id(gw_index *ix, const char *repo, int64_t *id)
{
	sqlite3_stmt *st;
	int rc = 0;
	if (sqlite3_prepare_v2(ix->db, "INSERT INTO repos(path) VALUES(?1) ON CONFLICT(path) DO NOTHING", -1, &st,
			       NULL) != SQLITE_OK)
		return db_fail(ix, "prepare");
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(ix, "cannot add a repository");
	sqlite3_finalize(st);
	if (rc < 0)
		return rc;
	if (sqlite3_prepare_v2(ix->db, "SELECT id FROM repos WHERE path=?1", -1, &st, NULL) != SQLITE_OK)
		return db_fail(ix, "prepare");
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	else
		rc = db_fail(ix, "cannot find a repository");
	sqlite3_finalize(st);
	return rc;
}

int gw_index_full_add(gw_index *ix, const gw_full_record *r)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	int rc;
	pthread_mutex_lock(&ix->lock);
	if ((rc = exec(ix, "BEGIN IMMEDIATE")) < 0)
		goto out;
	if ((rc = repo_id(ix, r->repository, &id)) < 0)
		goto rollback;
	if (sqlite3_prepare_v2(ix->db,
			       "INSERT OR IGNORE INTO fulls(repo_id, lsn, time_us, manifest_key, manifest_size, "
			       "manifest_sha256, bundle_size, idx_size, objects, refs) "
			       "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(ix, "prepare");
		goto rollback;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)r->lsn);
	sqlite3_bind_int64(st, 3, r->time_us);
	sqlite3_bind_text(st, 4, r->manifest_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (int64_t)r->manifest_size);
	sqlite3_bind_text(st, 6, r->manifest_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (int64_t)r->bundle_size);
	sqlite3_bind_int64(st, 8, (int64_t)r->idx_size);
	sqlite3_bind_int64(st, 9, (int64_t)r->objects);
	sqlite3_bind_int64(st, 10, (int64_t)r->refs);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_fail(ix, "cannot record a full backup");
		goto rollback;
	}
	sqlite3_finalize(st);
	rc = exec(ix, "COMMIT");
	goto out;
rollback:
	sqlite3_finalize(st);
	exec(ix, "ROLLBACK");
out:
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

#define FULL_COLUMNS                                                                                            \
	"SELECT r.path, f.lsn, f.time_us, f.manifest_key, f.manifest_size, f.manifest_sha256, f.bundle_size, " \
	"f.idx_size, f.objects, f.refs FROM fulls f JOIN repos r ON r.id = f.repo_id "

static int read_row(sqlite3_stmt *st, gw_full_record *r)
{
	const char *sha = (const char *)sqlite3_column_text(st, 5);
	memset(r, 0, sizeof(*r));
	r->repository = strdup((const char *)sqlite3_column_text(st, 0));
	r->lsn = (uint64_t)sqlite3_column_int64(st, 1);
	r->time_us = sqlite3_column_int64(st, 2);
	r->manifest_key = strdup((const char *)sqlite3_column_text(st, 3));
	r->manifest_size = (uint64_t)sqlite3_column_int64(st, 4);
	snprintf(r->manifest_sha256, sizeof(r->manifest_sha256), "%s", sha ? sha : "");
	r->bundle_size = (uint64_t)sqlite3_column_int64(st, 6);
	r->idx_size = (uint64_t)sqlite3_column_int64(st, 7);
	r->objects = (uint64_t)sqlite3_column_int64(st, 8);
	r->refs = (uint64_t)sqlite3_column_int64(st, 9);
	if (!r->repository || !r->manifest_key) {
		gw_full_record_dispose(r);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	return 0;
}

/* Run a one-row full-backup query bound to (repo, arg); GW_ENOTFOUND with `missing` when no row. */
static int full_query(gw_index *ix, const char *sql, const char *repo, int64_t arg, int bind_arg, gw_full_record *out,
		      const char *missing)
{
	sqlite3_stmt *st;
	int rc;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ix->lock);
	if (sqlite3_prepare_v2(ix->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(ix, "prepare");
		goto out;
	}
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	if (bind_arg)
		sqlite3_bind_int64(st, 2, arg);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = read_row(st, out);
	else if (rc == SQLITE_DONE)
		rc = gw_error_set(GW_ENOTFOUND, "repository %s %s", repo, missing);
	else
		rc = db_fail(ix, "query");
	sqlite3_finalize(st);
out:
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index_full_find(gw_index *ix, const char *repo, uint64_t lsn, gw_full_record *out)
{
	char missing[64];
	if (!lsn)
		return full_query(ix, FULL_COLUMNS "WHERE r.path=?1 ORDER BY f.lsn DESC LIMIT 1", repo, 0, 0, out,
				  "has no full backup");
	snprintf(missing, sizeof(missing), "has no full backup at LSN %llu", (unsigned long long)lsn);
	return full_query(ix, FULL_COLUMNS "WHERE r.path=?1 AND f.lsn=?2", repo, (int64_t)lsn, 1, out, missing);
}

int gw_index_full_find_before(gw_index *ix, const char *repo, int64_t time_us, gw_full_record *out)
{
	return full_query(ix, FULL_COLUMNS "WHERE r.path=?1 AND f.time_us<=?2 ORDER BY f.time_us DESC, f.lsn DESC LIMIT 1",
			  repo, time_us, 1, out, "has no full backup at or before the time asked for");
}

int gw_index_full_find_first(gw_index *ix, const char *repo, gw_full_record *out)
{
	return full_query(ix, FULL_COLUMNS "WHERE r.path=?1 ORDER BY f.lsn LIMIT 1", repo, 0, 0, out,
			  "has no full backup");
}

int gw_index_full_foreach(gw_index *ix, const char *repo, gw_index_full_cb cb, void *payload)
{
	sqlite3_stmt *st;
	int rc = 0, step;
	const char *sql = repo ? FULL_COLUMNS "WHERE r.path=?1 ORDER BY r.path, f.lsn" : FULL_COLUMNS "ORDER BY r.path, f.lsn";
	pthread_mutex_lock(&ix->lock);
	if (sqlite3_prepare_v2(ix->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(ix, "prepare");
		pthread_mutex_unlock(&ix->lock);
		return rc;
	}
	if (repo)
		sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		gw_full_record r;
		if ((rc = read_row(st, &r)) < 0)
			break;
		rc = cb(&r, payload);
		gw_full_record_dispose(&r);
		if (rc)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_fail(ix, "query");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index_repos(gw_index *ix, char ***out, size_t *count)
{
	sqlite3_stmt *st;
	char **list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	*out = NULL;
	*count = 0;
	pthread_mutex_lock(&ix->lock);
	if (sqlite3_prepare_v2(ix->db, "SELECT path FROM repos WHERE id IN (SELECT repo_id FROM fulls) ORDER BY path",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(ix, "prepare");
		pthread_mutex_unlock(&ix->lock);
		return rc;
	}
	while (sqlite3_step(st) == SQLITE_ROW) {
		if (n == cap) {
			char **nl = realloc(list, (cap = cap ? cap * 2 : 32) * sizeof(char *));
			if (!nl) {
				rc = gw_error_set(GW_ERROR, "out of memory");
				break;
			}
			list = nl;
		}
		list[n++] = strdup((const char *)sqlite3_column_text(st, 0));
	}
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->lock);
	*out = list;
	*count = n;
	return rc;
}

int gw_index_clear(gw_index *ix)
{
	int rc;
	pthread_mutex_lock(&ix->lock);
	rc = exec(ix, "BEGIN IMMEDIATE; DELETE FROM segments; DELETE FROM fulls; DELETE FROM repos; COMMIT;");
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

void gw_full_record_dispose(gw_full_record *r)
{
	free(r->repository);
	free(r->manifest_key);
	memset(r, 0, sizeof(*r));
}

int gw_index_segment_add(gw_index *ix, const gw_segment_record *r)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	int rc;
	pthread_mutex_lock(&ix->lock);
	if ((rc = exec(ix, "BEGIN IMMEDIATE")) < 0)
		goto out;
	if ((rc = repo_id(ix, r->repository, &id)) < 0)
		goto rollback;
	if (sqlite3_prepare_v2(ix->db,
			       "INSERT OR IGNORE INTO segments(repo_id, lsn, base_lsn, time_first_us, time_last_us, key, "
			       "size, sha256, prev_sha256, objects, updates, gap) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(ix, "prepare");
		goto rollback;
	}
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)r->lsn);
	sqlite3_bind_int64(st, 3, (int64_t)r->base_lsn);
	sqlite3_bind_int64(st, 4, r->time_first_us);
	sqlite3_bind_int64(st, 5, r->time_last_us);
	sqlite3_bind_text(st, 6, r->key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, (int64_t)r->size);
	sqlite3_bind_text(st, 8, r->sha256, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 9, r->prev_sha256, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 10, (int64_t)r->objects);
	sqlite3_bind_int64(st, 11, (int64_t)r->updates);
	sqlite3_bind_int(st, 12, r->gap);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = db_fail(ix, "cannot record a segment");
		goto rollback;
	}
	sqlite3_finalize(st);
	rc = exec(ix, "COMMIT");
	goto out;
rollback:
	sqlite3_finalize(st);
	exec(ix, "ROLLBACK");
out:
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index_segment_foreach(gw_index *ix, const char *repo, uint64_t from, uint64_t to, gw_index_segment_cb cb,
			     void *payload)
{
	sqlite3_stmt *st;
	int rc = 0, step;
	pthread_mutex_lock(&ix->lock);
	if (sqlite3_prepare_v2(ix->db,
			       "SELECT r.path, s.lsn, s.base_lsn, s.time_first_us, s.time_last_us, s.key, s.size, s.sha256, "
			       "s.prev_sha256, s.objects, s.updates, s.gap FROM segments s JOIN repos r ON r.id = s.repo_id "
			       "WHERE r.path = ?1 AND s.lsn BETWEEN ?2 AND ?3 ORDER BY s.lsn",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(ix, "prepare");
		pthread_mutex_unlock(&ix->lock);
		return rc;
	}
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)from);
	sqlite3_bind_int64(st, 3, (int64_t)(to > INT64_MAX ? INT64_MAX : to));
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		gw_segment_record r;
		memset(&r, 0, sizeof(r));
		r.repository = strdup((const char *)sqlite3_column_text(st, 0));
		r.lsn = (uint64_t)sqlite3_column_int64(st, 1);
		r.base_lsn = (uint64_t)sqlite3_column_int64(st, 2);
		r.time_first_us = sqlite3_column_int64(st, 3);
		r.time_last_us = sqlite3_column_int64(st, 4);
		r.key = strdup((const char *)sqlite3_column_text(st, 5));
		r.size = (uint64_t)sqlite3_column_int64(st, 6);
		snprintf(r.sha256, sizeof(r.sha256), "%s", (const char *)sqlite3_column_text(st, 7));
		snprintf(r.prev_sha256, sizeof(r.prev_sha256), "%s", (const char *)sqlite3_column_text(st, 8));
		r.objects = (uint64_t)sqlite3_column_int64(st, 9);
		r.updates = (uint64_t)sqlite3_column_int64(st, 10);
		r.gap = sqlite3_column_int(st, 11);
		rc = (!r.repository || !r.key) ? gw_error_set(GW_ERROR, "out of memory") : cb(&r, payload);
		gw_segment_record_dispose(&r);
		if (rc)
			break;
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_fail(ix, "query");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

void gw_segment_record_dispose(gw_segment_record *r)
{
	free(r->repository);
	free(r->key);
	memset(r, 0, sizeof(*r));
}

int gw_index_last_lsn(gw_index *ix, const char *repo, uint64_t *lsn)
{
	sqlite3_stmt *st;
	int rc = 0;
	*lsn = 0;
	pthread_mutex_lock(&ix->lock);
	if (sqlite3_prepare_v2(ix->db,
			       "SELECT MAX(m) FROM (SELECT MAX(f.lsn) AS m FROM fulls f JOIN repos r ON r.id = f.repo_id "
			       "WHERE r.path = ?1 UNION ALL SELECT MAX(s.lsn) FROM segments s JOIN repos r ON r.id = s.repo_id "
			       "WHERE r.path = ?1)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = db_fail(ix, "prepare");
	} else {
		sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			*lsn = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}
