/*
 * Expire records in the index (DESIGN.md 18.3). Recording one makes the
 * index forget every full backup and segment of the repository at or below
 * its LSN, in the same transaction: from then on neither planning nor the
 * audit's comparison sees what retention removes, whether or not the keys
 * are gone yet. A sync records the records it lists before anything else,
 * and never indexes a key one of them covers (gw_index_sync_expire,
 * gw_index_expire_covered). `done` says the removal finished; a record a
 * sync found starts not done, so the next expire run checks its keys once.
 */
#include "index_internal.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/expire.h"

#include <stdlib.h>
#include <string.h>

static int prepare(gw_index *ix, const char *sql, sqlite3_stmt **st)
{
	return (*st = gw_index__stmt(ix, sql)) != NULL ? 0 : gw_index__fail(ix, "prepare");
}

static int repo_id_make(gw_index *ix, const char *repo, int64_t *id)
{
	sqlite3_stmt *st;
	int rc = gw_index__repo_find(ix, repo, id);
	if (rc != GW_ENOTFOUND)
		return rc;
	if ((rc = prepare(ix, "INSERT INTO repos(path) VALUES(?1)", &st)) < 0)
		return rc;
	sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : gw_index__fail(ix, "cannot add a repository");
	gw_index__done(st);
	if (rc == 0)
		*id = sqlite3_last_insert_rowid(ix->db);
	return rc;
}

static int run_bound(gw_index *ix, const char *sql, int64_t id, int64_t lsn)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prepare(ix, sql, &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, lsn);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : gw_index__fail(ix, "cannot forget expired records");
	gw_index__done(st);
	return rc;
}

int gw_index_expire_add(gw_index *ix, const char *key, const gw_expire_record *r, int done)
{
	sqlite3_stmt *st;
	int64_t id = 0, last = (int64_t)r->last_lsn;
	int rc;
	if ((rc = gw_index__write_begin(ix)) < 0)
		return rc;
	if ((rc = repo_id_make(ix, r->repository, &id)) < 0 ||
	    (rc = prepare(ix,
			  "INSERT OR IGNORE INTO expired(repo_id, lsn, key, time_us, keep_within_us, keep_full, first_lsn, "
			  "kept_lsn, kept_us, whole, deleted_us, done) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)",
			  &st)) < 0)
		return gw_index__write_end(ix, rc);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, last);
	sqlite3_bind_text(st, 3, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, r->time_us);
	sqlite3_bind_int64(st, 5, r->keep_within_us);
	sqlite3_bind_int64(st, 6, r->keep_full);
	sqlite3_bind_int64(st, 7, (int64_t)r->first_lsn);
	sqlite3_bind_int64(st, 8, (int64_t)r->kept_lsn);
	sqlite3_bind_int64(st, 9, r->kept_us);
	sqlite3_bind_int(st, 10, r->whole);
	sqlite3_bind_int64(st, 11, r->deleted_us);
	sqlite3_bind_int(st, 12, done);
	rc = sqlite3_step(st) == SQLITE_DONE ? 0 : gw_index__fail(ix, "cannot record an expire record");
	gw_index__done(st);
	/* The index forgets what the record covers: planning and the audit never see it again. */
	if (rc == 0)
		rc = run_bound(ix, "DELETE FROM updates WHERE repo_id=?1 AND lsn<=?2", id, last);
	if (rc == 0)
		rc = run_bound(ix, "DELETE FROM latest WHERE repo_id=?1 AND base_lsn<=?2", id, last);
	if (rc == 0)
		rc = run_bound(ix, "DELETE FROM segments WHERE repo_id=?1 AND lsn<=?2", id, last);
	if (rc == 0)
		rc = run_bound(ix, "DELETE FROM fulls WHERE repo_id=?1 AND lsn<=?2", id, last);
	return gw_index__write_end(ix, rc);
}

int gw_index_expire_known(gw_index *ix, const char *key, int *known)
{
	sqlite3_stmt *st;
	int rc, step;
	*known = 0;
	pthread_mutex_lock(&ix->lock);
	if ((rc = prepare(ix, "SELECT 1 FROM expired WHERE key=?1", &st)) == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		step = sqlite3_step(st);
		*known = step == SQLITE_ROW;
		rc = step == SQLITE_ROW || step == SQLITE_DONE ? 0 : gw_index__fail(ix, "query");
		gw_index__done(st);
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index_expire_set_done(gw_index *ix, const char *key)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = gw_index__write_begin(ix)) < 0)
		return rc;
	if ((rc = prepare(ix, "UPDATE expired SET done=1 WHERE key=?1", &st)) == 0) {
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		rc = sqlite3_step(st) == SQLITE_DONE ? 0 : gw_index__fail(ix, "cannot mark an expire record done");
		gw_index__done(st);
	}
	return gw_index__write_end(ix, rc);
}

int gw_index_expire_foreach(gw_index *ix, const char *repo, int pending_only, gw_index_expire_cb cb, void *payload)
{
	sqlite3_stmt *st;
	typedef struct {
		char *key;
		gw_expire_record r;
		int done;
	} row;
	row *rows = NULL;
	size_t n = 0, cap = 0, i;
	int rc, step;

	/* Read them all first: the callback may write to the index. */
	pthread_mutex_lock(&ix->lock);
	if ((rc = prepare(ix,
			  "SELECT r.path, e.lsn, e.key, e.time_us, e.keep_within_us, e.keep_full, e.first_lsn, e.kept_lsn, "
			  "e.kept_us, e.whole, e.deleted_us, e.done FROM expired e JOIN repos r ON r.id=e.repo_id WHERE "
			  "(?1 IS NULL OR r.path=?1) AND (?2=0 OR e.done=0) ORDER BY r.path, e.lsn",
			  &st)) < 0) {
		pthread_mutex_unlock(&ix->lock);
		return rc;
	}
	if (repo)
		sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, pending_only);
	while ((step = sqlite3_step(st)) == SQLITE_ROW) {
		row *x;
		if ((rc = GW_ARRAY_RESERVE(rows, cap, n + 1)) < 0)
			break;
		x = &rows[n];
		memset(x, 0, sizeof(*x));
		x->r.repository = strdup((const char *)sqlite3_column_text(st, 0));
		x->r.last_lsn = (uint64_t)sqlite3_column_int64(st, 1);
		x->key = strdup((const char *)sqlite3_column_text(st, 2));
		x->r.time_us = sqlite3_column_int64(st, 3);
		x->r.keep_within_us = sqlite3_column_int64(st, 4);
		x->r.keep_full = (unsigned)sqlite3_column_int64(st, 5);
		x->r.first_lsn = (uint64_t)sqlite3_column_int64(st, 6);
		x->r.kept_lsn = (uint64_t)sqlite3_column_int64(st, 7);
		x->r.kept_us = sqlite3_column_int64(st, 8);
		x->r.whole = sqlite3_column_int(st, 9);
		x->r.deleted_us = sqlite3_column_int64(st, 10);
		x->done = sqlite3_column_int(st, 11);
		n++;
		if (!x->key || !x->r.repository) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			break;
		}
	}
	if (rc == 0 && step != SQLITE_DONE)
		rc = gw_index__fail(ix, "query");
	gw_index__done(st);
	pthread_mutex_unlock(&ix->lock);
	for (i = 0; i < n && rc == 0; i++)
		rc = cb(rows[i].key, &rows[i].r, rows[i].done, payload);
	for (i = 0; i < n; i++) {
		free(rows[i].key);
		gw_expire_record_dispose(&rows[i].r);
	}
	free(rows);
	return rc;
}

int gw_index_expire_covered(gw_index *ix, const char *repo, uint64_t *last_lsn)
{
	sqlite3_stmt *st;
	int rc;
	*last_lsn = 0;
	pthread_mutex_lock(&ix->lock);
	if ((rc = prepare(ix, "SELECT MAX(e.lsn) FROM expired e JOIN repos r ON r.id=e.repo_id WHERE r.path=?1", &st)) ==
	    0) {
		sqlite3_bind_text(st, 1, repo, -1, SQLITE_STATIC);
		if (sqlite3_step(st) == SQLITE_ROW)
			*last_lsn = (uint64_t)sqlite3_column_int64(st, 0);
		gw_index__done(st);
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index_expire_facts(gw_index *ix, const char *repo, gw_expire_input *in)
{
	sqlite3_stmt *st;
	int64_t id;
	int rc;
	in->first_lsn = in->last_lsn = 0;
	in->deleted = 0;
	in->deleted_us = 0;
	pthread_mutex_lock(&ix->lock);
	if ((rc = gw_index__repo_find(ix, repo, &id)) == GW_ENOTFOUND) {
		pthread_mutex_unlock(&ix->lock);
		gw_error_clear();
		return 0;
	}
	if (rc == 0 && (rc = prepare(ix,
				     /* One MIN or MAX a subquery: each answered from the primary key's end, never a scan. */
				     "SELECT MIN(COALESCE(f1, s1), COALESCE(s1, f1)), MAX(COALESCE(f2, s2), COALESCE(s2, f2)) FROM "
				     "(SELECT (SELECT MIN(lsn) FROM fulls WHERE repo_id=?1) AS f1, "
				     "(SELECT MIN(lsn) FROM segments WHERE repo_id=?1) AS s1, "
				     "(SELECT MAX(lsn) FROM fulls WHERE repo_id=?1) AS f2, "
				     "(SELECT MAX(lsn) FROM segments WHERE repo_id=?1) AS s2)",
				     &st)) == 0) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW) {
			in->first_lsn = (uint64_t)sqlite3_column_int64(st, 0);
			in->last_lsn = (uint64_t)sqlite3_column_int64(st, 1);
		}
		gw_index__done(st);
	}
	/* Deleted: the last record is a segment whose last update deletes the repository. */
	if (rc == 0 && in->last_lsn &&
	    (rc = prepare(ix, "SELECT lsn, kind, time_us FROM updates WHERE repo_id=?1 ORDER BY lsn DESC, seq DESC LIMIT 1",
			  &st)) == 0) {
		sqlite3_bind_int64(st, 1, id);
		if (sqlite3_step(st) == SQLITE_ROW && (uint64_t)sqlite3_column_int64(st, 0) == in->last_lsn &&
		    sqlite3_column_int(st, 1) == GW_UPDATE_DELETED) {
			in->deleted = 1;
			in->deleted_us = sqlite3_column_int64(st, 2);
		}
		gw_index__done(st);
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

int gw_index_sync_expire(gw_index *ix, gw_store *store, const char *key, int *stored)
{
	gw_expire_record r;
	int known, rc;
	*stored = 0;
	if ((rc = gw_index_expire_known(ix, key, &known)) < 0 || known)
		return rc;
	*stored = 1;
	if ((rc = gw_expire_record_read(store, key, &r)) < 0)
		return rc;
	*stored = 0;
	rc = gw_index_expire_add(ix, key, &r, 0);
	gw_expire_record_dispose(&r);
	return rc;
}
