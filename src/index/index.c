/*
 * The local SQLite index. One connection, serialised by a mutex: writes are
 * a few rows per backup or segment, and readers (info, restore planning) use
 * indexed queries. WAL journal mode lets another process read while one
 * writes. Each segment row carries what planning needs so that planning never
 * walks a generation row by row: whether it links to the record before it
 * (`linked`), the bytes of its generation up to it (`cum_size`), and its ref
 * updates (table `updates`); see DESIGN.md 7.
 */
#include "index_internal.h"
#include "gitwal/array.h"
#include "gitwal/error.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INDEX_SCHEMA_VERSION 6

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
	"  pool TEXT,"          /* a pooled member's pool and its generation (DESIGN.md 19) */
	"  pool_base_lsn INTEGER,"
	"  PRIMARY KEY(repo_id, lsn));"
	"CREATE INDEX IF NOT EXISTS fulls_time ON fulls(repo_id, time_us);"
	"CREATE INDEX IF NOT EXISTS fulls_pool ON fulls(pool, pool_base_lsn) WHERE pool IS NOT NULL;"
	"CREATE TABLE IF NOT EXISTS segments("
	"  repo_id INTEGER NOT NULL REFERENCES repos(id),"
	"  lsn INTEGER NOT NULL,"
	"  base_lsn INTEGER NOT NULL,"
	"  time_first_us INTEGER NOT NULL,"
	"  time_last_us INTEGER NOT NULL,"
	"  key TEXT NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  sha256 TEXT NOT NULL,"
	"  prev_sha256 TEXT NOT NULL,"
	"  objects INTEGER NOT NULL,"
	"  updates INTEGER NOT NULL,"
	"  gap INTEGER NOT NULL,"
	"  gap_from_us INTEGER NOT NULL,"
	"  gap_to_us INTEGER NOT NULL,"
	"  linked INTEGER NOT NULL,"
	"  cum_size INTEGER NOT NULL,"
	"  files TEXT NOT NULL,"  /* the digest of the repository's files it carries; '' when none */
	"  PRIMARY KEY(repo_id, lsn));"
	"CREATE INDEX IF NOT EXISTS segments_time ON segments(repo_id, time_last_us);"
	"CREATE INDEX IF NOT EXISTS segments_generation ON segments(repo_id, base_lsn, time_first_us, lsn);"
	"CREATE INDEX IF NOT EXISTS segments_unlinked ON segments(repo_id, lsn) WHERE linked = 0;"
	"CREATE INDEX IF NOT EXISTS segments_gaps ON segments(repo_id, lsn) WHERE gap != 0;"
	"CREATE INDEX IF NOT EXISTS segments_files ON segments(repo_id, lsn) WHERE files != '';"
	/* kind: gw_update_kind; ref is '' for repository created/deleted; old/new are hex ids or symref targets. */
	"CREATE TABLE IF NOT EXISTS updates("
	"  repo_id INTEGER NOT NULL,"
	"  lsn INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  time_us INTEGER NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  ref TEXT NOT NULL,"
	"  old TEXT NOT NULL,"
	"  new TEXT NOT NULL,"
	"  PRIMARY KEY(repo_id, lsn, seq)) WITHOUT ROWID;"
	"CREATE INDEX IF NOT EXISTS updates_ref ON updates(repo_id, ref, lsn, seq);"
	/* The latest update of each ref (event 0) and each repository event (event = kind) per generation. */
	"CREATE TABLE IF NOT EXISTS latest("
	"  repo_id INTEGER NOT NULL,"
	"  base_lsn INTEGER NOT NULL,"
	"  ref TEXT NOT NULL,"
	"  event INTEGER NOT NULL,"
	"  lsn INTEGER NOT NULL,"
	"  seq INTEGER NOT NULL,"
	"  time_us INTEGER NOT NULL,"
	"  kind INTEGER NOT NULL,"
	"  new TEXT NOT NULL,"
	"  PRIMARY KEY(repo_id, base_lsn, ref, event)) WITHOUT ROWID;"
	/* Expire records (src/index/expired.c): what retention removed, and whether the removal finished. */
	"CREATE TABLE IF NOT EXISTS expired("
	"  repo_id INTEGER NOT NULL REFERENCES repos(id),"
	"  lsn INTEGER NOT NULL,"
	"  key TEXT NOT NULL UNIQUE,"
	"  time_us INTEGER NOT NULL,"
	"  keep_within_us INTEGER NOT NULL,"
	"  keep_full INTEGER NOT NULL,"
	"  first_lsn INTEGER NOT NULL,"
	"  kept_lsn INTEGER NOT NULL,"
	"  kept_us INTEGER NOT NULL,"
	"  whole INTEGER NOT NULL,"
	"  deleted_us INTEGER NOT NULL,"
	"  done INTEGER NOT NULL,"
	"  PRIMARY KEY(repo_id, lsn));"
	"CREATE INDEX IF NOT EXISTS expired_pending ON expired(done) WHERE done = 0;";

/* An older index is a cache of an older layout: dropped and refilled from the store by the next sync. */
static const char *drop_all = "DROP TABLE IF EXISTS expired; DROP TABLE IF EXISTS latest; DROP TABLE IF EXISTS updates; DROP TABLE IF EXISTS segments; DROP TABLE IF EXISTS fulls;"
			      "DROP TABLE IF EXISTS repos; DELETE FROM meta;";

int gw_index__fail(gw_index *ix, const char *what)
{
	return gw_error_set(GW_EIO, "index %s: %s: %s", ix->path, what, sqlite3_errmsg(ix->db));
}

#define db_fail gw_index__fail

sqlite3_stmt *gw_index__stmt(gw_index *ix, const char *sql)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	for (i = 0; i < ix->ncache; i++)
		if (ix->cache[i].sql == sql)
			return ix->cache[i].st;
	if (sqlite3_prepare_v3(ix->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK)
		return NULL;
	if (ix->ncache == GW_INDEX_STMT_CACHE) {
		/* Full (more distinct queries than expected): the oldest makes room. */
		sqlite3_finalize(ix->cache[0].st);
		memmove(ix->cache, ix->cache + 1, (GW_INDEX_STMT_CACHE - 1) * sizeof(ix->cache[0]));
		ix->ncache--;
	}
	ix->cache[ix->ncache].sql = sql;
	ix->cache[ix->ncache++].st = st;
	return st;
}

void gw_index__done(sqlite3_stmt *st)
{
	if (st) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
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

static int read_version(gw_index *ix, int *version)
{
	sqlite3_stmt *st;
	*version = 0;
	if (!(st = gw_index__stmt(ix, "SELECT value FROM meta WHERE key='schema_version'")))
		return db_fail(ix, "cannot read the schema version");
	if (sqlite3_step(st) == SQLITE_ROW)
		*version = atoi((const char *)sqlite3_column_text(st, 0));
	gw_index__done(st);
	return 0;
}

/* Create the schema, or replace an older one (the index is only a cache of the store). */
static int check_version(gw_index *ix)
{
	char sql[128];
	int v, rc;
	if ((rc = exec(ix, "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);")) < 0 ||
	    (rc = read_version(ix, &v)) < 0)
		return rc;
	if (v > INDEX_SCHEMA_VERSION)
		return gw_error_set(GW_EVERSION,
				    "index %s has schema version %d, newer than this gitwal's %d (use a newer gitwal, or "
				    "remove the file and run 'gitwal index rebuild')",
				    ix->path, v, INDEX_SCHEMA_VERSION);
	if (v == INDEX_SCHEMA_VERSION)
		return exec(ix, schema);
	snprintf(sql, sizeof(sql), "INSERT INTO meta(key, value) VALUES('schema_version', '%d');", INDEX_SCHEMA_VERSION);
	if ((rc = exec(ix, "BEGIN IMMEDIATE")) < 0)
		return rc;
	/* Another process may have created it meanwhile. */
	if ((rc = read_version(ix, &v)) == 0 && v == INDEX_SCHEMA_VERSION)
		return exec(ix, "COMMIT");
	if (rc < 0 || (rc = exec(ix, drop_all)) < 0 || (rc = exec(ix, schema)) < 0 || (rc = exec(ix, sql)) < 0) {
		exec(ix, "ROLLBACK");
		return rc;
	}
	return exec(ix, "COMMIT");
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
	/* Planning touches the same upper B-tree pages for every repository: keep them (32 MiB). */
	if ((rc = exec(ix, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
			   "")) < 0 ||
	    (rc = check_version(ix)) < 0) {
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
	while (ix->ncache)
		sqlite3_finalize(ix->cache[--ix->ncache].st);
	sqlite3_close(ix->db);
	pthread_mutex_destroy(&ix->lock);
	free(ix->path);
	free(ix);
}

static int repo_id(gw_index *ix, const char *repo, int64_t *id)
{
	sqlite3_stmt *st;
	int rc = gw_index__repo_find(ix, repo, id);
	if (rc != GW_ENOTFOUND)
		return rc;
	if (!(st = gw_index__stmt(ix, "INSERT INTO repos(path) VALUES(?1)")))
		return db_fail(ix, "prepare");
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(ix, "cannot add a repository");
	gw_index__done(st);
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(ix->db);
	return rc;
}

int gw_index__repo_find(gw_index *ix, const char *repo, int64_t *id)
{
	sqlite3_stmt *st;
	int rc;
	if (!(st = gw_index__stmt(ix, "SELECT id FROM repos WHERE path=?1")))
		return db_fail(ix, "prepare");
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*id = sqlite3_column_int64(st, 0);
	rc = rc == SQLITE_ROW ? 0 : rc == SQLITE_DONE ? GW_ENOTFOUND : db_fail(ix, "query");
	gw_index__done(st);
	return rc;
}

/*
 * One record is one transaction, or one savepoint inside a batch. The lock
 * is held from write_begin to write_end.
 */
static int step_cached(gw_index *ix, const char *sql)
{
	sqlite3_stmt *st = gw_index__stmt(ix, sql);
	int rc;
	if (!st)
		return db_fail(ix, sql);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(ix, sql);
	gw_index__done(st);
	return rc;
}

static int write_begin(gw_index *ix)
{
	int rc;
	pthread_mutex_lock(&ix->lock);
	if ((rc = step_cached(ix, ix->batch ? "SAVEPOINT record" : "BEGIN IMMEDIATE")) < 0)
		pthread_mutex_unlock(&ix->lock);
	return rc;
}

static int write_end(gw_index *ix, int rc)
{
	if (rc < 0 && ix->batch) {
		step_cached(ix, "ROLLBACK TO record");
		step_cached(ix, "RELEASE record");
	} else if (rc < 0) {
		step_cached(ix, "ROLLBACK");
	} else {
		rc = step_cached(ix, ix->batch ? "RELEASE record" : "COMMIT");
		if (rc < 0 && !ix->batch)
			step_cached(ix, "ROLLBACK");
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index__write_begin(gw_index *ix)
{
	return write_begin(ix);
}

int gw_index__write_end(gw_index *ix, int rc)
{
	return write_end(ix, rc);
}

int gw_index_batch_begin(gw_index *ix)
{
	int rc;
	pthread_mutex_lock(&ix->lock);
	if (ix->batch)
		rc = gw_error_set(GW_EINVALID, "index %s: a batch is already open", ix->path);
	else if ((rc = exec(ix, "BEGIN IMMEDIATE")) == 0)
		ix->batch = 1;
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index_batch_commit(gw_index *ix)
{
	int rc = 0;
	pthread_mutex_lock(&ix->lock);
	if (ix->batch) {
		ix->batch = 0;
		if ((rc = exec(ix, "COMMIT")) < 0)
			exec(ix, "ROLLBACK");
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

/* ---- the chain: each segment row knows whether it links to the record before it ---- */

typedef struct {
	int found, is_full;
	char digest[65];
	uint64_t base_lsn; /* the generation it belongs to */
	int64_t cum_size;
} prev_record;

/* A cached statement with ?1 = repository id and ?2 = LSN bound. */
static int repo_lsn_query(gw_index *ix, const char *sql, int64_t id, int64_t lsn, sqlite3_stmt **st)
{
	if (!(*st = gw_index__stmt(ix, sql)))
		return db_fail(ix, "prepare");
	sqlite3_bind_int64(*st, 1, id);
	sqlite3_bind_int64(*st, 2, lsn);
	return 0;
}

/* The record (segment or full backup) at lsn. */
static int record_at(gw_index *ix, int64_t id, int64_t lsn, prev_record *out)
{
	sqlite3_stmt *st;
	int rc;
	memset(out, 0, sizeof(*out));
	if ((rc = repo_lsn_query(ix, "SELECT sha256, base_lsn, cum_size FROM segments WHERE repo_id=?1 AND lsn=?2", id, lsn,
			     &st)) < 0)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->found = 1;
		snprintf(out->digest, sizeof(out->digest), "%s", (const char *)sqlite3_column_text(st, 0));
		out->base_lsn = (uint64_t)sqlite3_column_int64(st, 1);
		out->cum_size = sqlite3_column_int64(st, 2);
	}
	gw_index__done(st);
	if (out->found)
		return 0;
	if ((rc = repo_lsn_query(ix, "SELECT manifest_sha256 FROM fulls WHERE repo_id=?1 AND lsn=?2", id, lsn, &st)) < 0)
		return rc;
	if (sqlite3_step(st) == SQLITE_ROW) {
		out->found = out->is_full = 1;
		snprintf(out->digest, sizeof(out->digest), "%s", (const char *)sqlite3_column_text(st, 0));
		out->base_lsn = (uint64_t)lsn;
	}
	gw_index__done(st);
	return 0;
}

/*
 * Recompute `linked` and `cum_size` of the segment at lsn from the record
 * before it, then of the ones after it while they change: records usually
 * arrive in LSN order, so this touches one row.
 */
/* Whether the segment at lsn (its prev_sha256, generation and size) links to the record before it. */
static int link_to_previous(gw_index *ix, int64_t id, int64_t lsn, const char *prev_sha, int64_t base, int64_t size,
			    int *linked, int64_t *cum)
{
	prev_record prev;
	int rc;
	if ((rc = record_at(ix, id, lsn - 1, &prev)) < 0)
		return rc;
	*linked = prev.found && !strcmp(prev.digest, prev_sha) && (int64_t)prev.base_lsn == base;
	*cum = (*linked && !prev.is_full ? prev.cum_size : 0) + size;
	return 0;
}

static int relink_from(gw_index *ix, int64_t id, int64_t lsn)
{
	for (;; lsn++) {
		sqlite3_stmt *st;
		int rc, linked, changed, now_linked;
		int64_t size, cum, base, now_cum;
		char prev_sha[65];
		if ((rc = repo_lsn_query(ix, "SELECT prev_sha256, base_lsn, size, linked, cum_size FROM segments "
					 "WHERE repo_id=?1 AND lsn=?2",
				     id, lsn, &st)) < 0)
			return rc;
		if (sqlite3_step(st) != SQLITE_ROW) {
			gw_index__done(st);
			return 0;
		}
		snprintf(prev_sha, sizeof(prev_sha), "%s", (const char *)sqlite3_column_text(st, 0));
		base = sqlite3_column_int64(st, 1);
		size = sqlite3_column_int64(st, 2);
		linked = sqlite3_column_int(st, 3);
		cum = sqlite3_column_int64(st, 4);
		gw_index__done(st);
		if ((rc = link_to_previous(ix, id, lsn, prev_sha, base, size, &now_linked, &now_cum)) < 0)
			return rc;
		{
			changed = now_linked != linked || now_cum != cum;
			if (!changed)
				return 0;
			if ((rc = repo_lsn_query(ix, "UPDATE segments SET linked=?3, cum_size=?4 WHERE repo_id=?1 AND lsn=?2", id,
					     lsn, &st)) < 0)
				return rc;
			sqlite3_bind_int(st, 3, now_linked);
			sqlite3_bind_int64(st, 4, now_cum);
			rc = sqlite3_step(st) == SQLITE_DONE ? 0 : db_fail(ix, "cannot link a segment");
			gw_index__done(st);
			if (rc < 0)
				return rc;
		}
	}
}

int gw_index_full_add(gw_index *ix, const gw_full_record *r)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0;
	int rc;
	if ((rc = write_begin(ix)) < 0)
		return rc;
	if ((rc = repo_id(ix, r->repository, &id)) < 0)
		return write_end(ix, rc);
	if (!(st = gw_index__stmt(ix, "INSERT OR IGNORE INTO fulls(repo_id, lsn, time_us, manifest_key, manifest_size, "
				      "manifest_sha256, bundle_size, idx_size, objects, refs, pool, pool_base_lsn) "
				      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)")))
		return write_end(ix, db_fail(ix, "prepare"));
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
	if (r->pool) {
		sqlite3_bind_text(st, 11, r->pool, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 12, (int64_t)r->pool_base_lsn);
	} else {
		sqlite3_bind_null(st, 11);
		sqlite3_bind_null(st, 12);
	}
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(ix, "cannot record a full backup");
	gw_index__done(st);
	/* The first segment of its generation may have been recorded first (index sync order). */
	if (rc == 0)
		rc = relink_from(ix, id, (int64_t)r->lsn + 1);
	return write_end(ix, rc);
}

int gw_index_pool_floor(gw_index *ix, const char *pool, uint64_t *lsn)
{
	sqlite3_stmt *st;
	int rc = 0;
	*lsn = 0;
	pthread_mutex_lock(&ix->lock);
	if (!(st = gw_index__stmt(ix, "SELECT MIN(pool_base_lsn) FROM fulls WHERE pool = ?1"))) {
		rc = db_fail(ix, "prepare");
		goto out;
	}
	sqlite3_bind_text(st, 1, pool, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_ROW) {
		rc = db_fail(ix, "cannot read a pool's members");
	} else if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
		*lsn = (uint64_t)sqlite3_column_int64(st, 0);
		rc = 1;
	}
	gw_index__done(st);
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

/* A walk of rows: the index's lock and the statement sql; NULL (rc set, lock released) when it cannot be prepared. */
static sqlite3_stmt *walk_begin(gw_index *ix, const char *sql, int *rc)
{
	sqlite3_stmt *st;
	pthread_mutex_lock(&ix->lock);
	if (!(st = gw_index__stmt(ix, sql))) {
		*rc = db_fail(ix, "prepare");
		pthread_mutex_unlock(&ix->lock);
	}
	return st;
}

/* End it: rc, or the query's failure when the rows stopped (step) before their end; the lock is released. */
static int walk_end(gw_index *ix, sqlite3_stmt *st, int rc, int step)
{
	if (rc == 0 && step != SQLITE_DONE)
		rc = db_fail(ix, "query");
	gw_index__done(st);
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

/* Run a one-row full-backup query bound to (repo, arg); GW_ENOTFOUND with `missing` when no row. */
static int full_query(gw_index *ix, const char *sql, const char *repo, int64_t arg, int bind_arg, gw_full_record *out,
		      const char *missing)
{
	sqlite3_stmt *st;
	int rc;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&ix->lock);
	if (!(st = gw_index__stmt(ix, sql))) {
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
	gw_index__done(st);
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
	if (!(st = walk_begin(ix, sql, &rc)))
		return rc;
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
	return walk_end(ix, st, rc, step);
}

int gw_index_repos(gw_index *ix, char ***out, size_t *count)
{
	sqlite3_stmt *st;
	char **list = NULL;
	size_t n = 0, cap = 0;
	int rc = 0, step;
	*out = NULL;
	*count = 0;
	if (!(st = walk_begin(ix, "SELECT path FROM repos WHERE id IN (SELECT repo_id FROM fulls) ORDER BY path", &rc)))
		return rc;
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		if ((rc = GW_ARRAY_RESERVE(list, cap, n + 1)) < 0)
			break;
		list[n++] = strdup((const char *)sqlite3_column_text(st, 0));
	}
	rc = walk_end(ix, st, rc, step);
	*out = list;
	*count = n;
	return rc;
}

int gw_index_clear(gw_index *ix)
{
	int rc;
	pthread_mutex_lock(&ix->lock);
	rc = exec(ix, "BEGIN IMMEDIATE; DELETE FROM expired; DELETE FROM latest; DELETE FROM updates; DELETE FROM segments; DELETE FROM fulls; DELETE FROM repos; COMMIT;");
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

void gw_full_record_dispose(gw_full_record *r)
{
	free(r->repository);
	free(r->manifest_key);
	memset(r, 0, sizeof(*r));
}

static int add_update(gw_index *ix, sqlite3_stmt *st, sqlite3_stmt *latest, int64_t id, uint64_t base_lsn,
		      uint64_t lsn, size_t seq, const gw_update *u)
{
	int is_ref = u->kind == GW_UPDATE_REF || u->kind == GW_UPDATE_SYMREF;
	const char *ref = is_ref && u->ref ? u->ref : "";
	const char *old = u->kind == GW_UPDATE_REF ? u->old_oid : u->kind == GW_UPDATE_SYMREF ? u->old_target : "";
	const char *new = u->kind == GW_UPDATE_REF ? u->new_oid : u->kind == GW_UPDATE_SYMREF ? u->new_target : "";
	int rc;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)lsn);
	sqlite3_bind_int64(st, 3, (int64_t)seq);
	sqlite3_bind_int64(st, 4, u->time_us);
	sqlite3_bind_int(st, 5, (int)u->kind);
	sqlite3_bind_text(st, 6, ref, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, old ? old : "", -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, new ? new : "", -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		return db_fail(ix, "cannot record a ref update");
	sqlite3_reset(latest);
	sqlite3_bind_int64(latest, 1, id);
	sqlite3_bind_int64(latest, 2, (int64_t)base_lsn);
	sqlite3_bind_text(latest, 3, ref, -1, SQLITE_STATIC);
	sqlite3_bind_int(latest, 4, is_ref ? 0 : (int)u->kind);
	sqlite3_bind_int64(latest, 5, (int64_t)lsn);
	sqlite3_bind_int64(latest, 6, (int64_t)seq);
	sqlite3_bind_int64(latest, 7, u->time_us);
	sqlite3_bind_int(latest, 8, (int)u->kind);
	sqlite3_bind_text(latest, 9, new ? new : "", -1, SQLITE_STATIC);
	rc = sqlite3_step(latest) == SQLITE_DONE ? 0 : db_fail(ix, "cannot record a ref update");
	return rc;
}

static int add_updates(gw_index *ix, int64_t id, uint64_t base_lsn, uint64_t lsn, const gw_update *updates, size_t n)
{
	sqlite3_stmt *st, *latest;
	size_t i;
	int rc = 0;
	if (!n)
		return 0;
	if (!(st = gw_index__stmt(ix, "INSERT OR IGNORE INTO updates(repo_id, lsn, seq, time_us, kind, ref, old, new) "
				      "VALUES(?1,?2,?3,?4,?5,?6,?7,?8)")) ||
	    !(latest = gw_index__stmt(ix, "INSERT INTO latest(repo_id, base_lsn, ref, event, lsn, seq, time_us, kind, new) "
					  "VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9) ON CONFLICT(repo_id, base_lsn, ref, event) "
					  "DO UPDATE SET lsn=excluded.lsn, seq=excluded.seq, time_us=excluded.time_us, "
					  "kind=excluded.kind, new=excluded.new WHERE excluded.lsn > latest.lsn OR "
					  "(excluded.lsn = latest.lsn AND excluded.seq > latest.seq)")))
		return db_fail(ix, "prepare");
	for (i = 0; i < n && rc == 0; i++)
		rc = add_update(ix, st, latest, id, base_lsn, lsn, i, &updates[i]);
	gw_index__done(st);
	gw_index__done(latest);
	return rc;
}

int gw_index_segment_add(gw_index *ix, const gw_segment_record *r, const gw_update *updates, size_t nupdates)
{
	sqlite3_stmt *st = NULL;
	int64_t id = 0, cum = 0;
	int rc, linked = 0;
	if ((rc = write_begin(ix)) < 0)
		return rc;
	if ((rc = repo_id(ix, r->repository, &id)) < 0 ||
	    (rc = link_to_previous(ix, id, (int64_t)r->lsn, r->prev_sha256, (int64_t)r->base_lsn, (int64_t)r->size,
				   &linked, &cum)) < 0)
		return write_end(ix, rc);
	if (!(st = gw_index__stmt(ix, "INSERT OR IGNORE INTO segments(repo_id, lsn, base_lsn, time_first_us, time_last_us, key, "
			       "size, sha256, prev_sha256, objects, updates, gap, gap_from_us, gap_to_us, linked, cum_size, "
			       "files) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)")))
		return write_end(ix, db_fail(ix, "prepare"));
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
	sqlite3_bind_int64(st, 13, r->gap ? r->gap_from_us : 0);
	sqlite3_bind_int64(st, 14, r->gap ? r->gap_to_us : 0);
	sqlite3_bind_int(st, 15, linked);
	sqlite3_bind_int64(st, 16, cum);
	sqlite3_bind_text(st, 17, r->files_sha256, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = db_fail(ix, "cannot record a segment");
	gw_index__done(st);
	/* A record already there (INSERT OR IGNORE) keeps its updates: they are ignored the same way. */
	if (rc == 0 && sqlite3_changes(ix->db) == 1 && (rc = add_updates(ix, id, r->base_lsn, r->lsn, updates, nupdates)) == 0)
		rc = relink_from(ix, id, (int64_t)r->lsn + 1);
	return write_end(ix, rc);
}

#define SEGMENT_COLUMNS                                                                                           \
	"SELECT r.path, s.lsn, s.base_lsn, s.time_first_us, s.time_last_us, s.key, s.size, s.sha256, s.prev_sha256, " \
	"s.objects, s.updates, s.gap, s.gap_from_us, s.gap_to_us, s.files FROM segments s JOIN repos r ON r.id = "    \
	"s.repo_id "

/* A row of SEGMENT_COLUMNS into r (disposed by the caller whatever this returns). */
static int segment_row(sqlite3_stmt *st, gw_segment_record *r)
{
	memset(r, 0, sizeof(*r));
	r->repository = strdup((const char *)sqlite3_column_text(st, 0));
	r->lsn = (uint64_t)sqlite3_column_int64(st, 1);
	r->base_lsn = (uint64_t)sqlite3_column_int64(st, 2);
	r->time_first_us = sqlite3_column_int64(st, 3);
	r->time_last_us = sqlite3_column_int64(st, 4);
	r->key = strdup((const char *)sqlite3_column_text(st, 5));
	r->size = (uint64_t)sqlite3_column_int64(st, 6);
	snprintf(r->sha256, sizeof(r->sha256), "%s", (const char *)sqlite3_column_text(st, 7));
	snprintf(r->prev_sha256, sizeof(r->prev_sha256), "%s", (const char *)sqlite3_column_text(st, 8));
	r->objects = (uint64_t)sqlite3_column_int64(st, 9);
	r->updates = (uint64_t)sqlite3_column_int64(st, 10);
	r->gap = sqlite3_column_int(st, 11);
	r->gap_from_us = sqlite3_column_int64(st, 12);
	r->gap_to_us = sqlite3_column_int64(st, 13);
	snprintf(r->files_sha256, sizeof(r->files_sha256), "%s", (const char *)sqlite3_column_text(st, 14));
	return (!r->repository || !r->key) ? gw_error_set(GW_ERROR, "out of memory") : 0;
}

int gw_index_segment_foreach(gw_index *ix, const char *repo, uint64_t from, uint64_t to, gw_index_segment_cb cb,
			     void *payload)
{
	sqlite3_stmt *st;
	int rc = 0, step;
	if (!(st = walk_begin(ix, SEGMENT_COLUMNS "WHERE r.path = ?1 AND s.lsn BETWEEN ?2 AND ?3 ORDER BY s.lsn", &rc)))
		return rc;
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)from);
	sqlite3_bind_int64(st, 3, (int64_t)(to > INT64_MAX ? INT64_MAX : to));
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		gw_segment_record r;
		rc = segment_row(st, &r) < 0 ? GW_ERROR : cb(&r, payload);
		gw_segment_record_dispose(&r);
		if (rc)
			break;
	}
	return walk_end(ix, st, rc, step);
}

int gw_index_files_find(gw_index *ix, const char *repo, uint64_t from, uint64_t to, gw_segment_record *out)
{
	sqlite3_stmt *st;
	int rc = 0, step;
	memset(out, 0, sizeof(*out));
	if (!(st = walk_begin(ix, SEGMENT_COLUMNS "WHERE r.path = ?1 AND s.lsn BETWEEN ?2 AND ?3 AND s.files != '' "
				  "ORDER BY s.lsn DESC LIMIT 1", &rc)))
		return rc;
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (int64_t)from);
	sqlite3_bind_int64(st, 3, (int64_t)(to > INT64_MAX ? INT64_MAX : to));
	if ((step = sqlite3_step(st)) == SQLITE_ROW) {
		step = SQLITE_DONE; /* the one row asked for */
		if ((rc = segment_row(st, out)) < 0)
			gw_segment_record_dispose(out);
	} else if (step == SQLITE_DONE) {
		rc = GW_ENOTFOUND;
	}
	return walk_end(ix, st, rc, step);
}

int gw_index_files_count(gw_index *ix, const char *repo, uint64_t *n)
{
	sqlite3_stmt *st;
	int rc = 0, step;
	*n = 0;
	if (!(st = walk_begin(ix, "SELECT COUNT(*) FROM segments s JOIN repos r ON r.id = s.repo_id "
				  "WHERE r.path = ?1 AND s.files != ''", &rc)))
		return rc;
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	if ((step = sqlite3_step(st)) == SQLITE_ROW) {
		*n = (uint64_t)sqlite3_column_int64(st, 0);
		step = SQLITE_DONE;
	}
	return walk_end(ix, st, rc, step);
}

void gw_segment_record_dispose(gw_segment_record *r)
{
	free(r->repository);
	free(r->key);
	memset(r, 0, sizeof(*r));
}

int gw_index_lsn_known(gw_index *ix, const char *repo, uint64_t lsn, int *known)
{
	sqlite3_stmt *st;
	int rc = 0, step;
	*known = 0;
	pthread_mutex_lock(&ix->lock);
	if (!(st = gw_index__stmt(ix, "SELECT 1 FROM repos r WHERE r.path = ?1 AND (EXISTS (SELECT 1 FROM segments s "
				      "WHERE s.repo_id = r.id AND s.lsn = ?2) OR EXISTS (SELECT 1 FROM fulls f WHERE "
				      "f.repo_id = r.id AND f.lsn = ?2))"))) {
		rc = db_fail(ix, "prepare");
	} else {
		sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, (int64_t)lsn);
		step = sqlite3_step(st);
		*known = step == SQLITE_ROW;
		if (step != SQLITE_ROW && step != SQLITE_DONE)
			rc = db_fail(ix, "query");
		gw_index__done(st);
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index_last_lsn(gw_index *ix, const char *repo, uint64_t *lsn)
{
	sqlite3_stmt *st;
	int rc = 0;
	*lsn = 0;
	pthread_mutex_lock(&ix->lock);
	if (!(st = gw_index__stmt(ix, "SELECT MAX(m) FROM (SELECT MAX(f.lsn) AS m FROM fulls f JOIN repos r ON r.id = f.repo_id "
			       "WHERE r.path = ?1 UNION ALL SELECT MAX(s.lsn) FROM segments s JOIN repos r ON r.id = s.repo_id "
			       "WHERE r.path = ?1)"))) {
		rc = db_fail(ix, "prepare");
	} else {
		sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			*lsn = (uint64_t)sqlite3_column_int64(st, 0);
		gw_index__done(st);
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}
