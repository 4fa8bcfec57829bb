/*
 * What the index's source files share and nothing else may see: the handle
 * and the helpers every query uses.
 */
#ifndef GITWAL_INDEX_INTERNAL_H
#define GITWAL_INDEX_INTERNAL_H

#include "gitwal/index.h"

#include <pthread.h>
#include <sqlite3.h>

#define GW_INDEX_STMT_CACHE 48

struct gw_index {
	sqlite3 *db;
	char *path;
	pthread_mutex_t lock;
	int batch; /* inside gw_index_batch_begin(): records are savepoints of one transaction */
	/* Prepared statements by SQL text (the literal's address): preparing costs more than most queries. */
	struct {
		const char *sql;
		sqlite3_stmt *st;
	} cache[GW_INDEX_STMT_CACHE];
	size_t ncache;
};

/* Set the last error from SQLite's message; returns GW_EIO. */
int gw_index__fail(gw_index *ix, const char *what);
/*
 * A prepared statement for sql, a string literal, reused across calls (lock
 * held); NULL on failure, with SQLite's message for gw_index__fail(). Give it
 * back with gw_index__done() (reset and unbound), never sqlite3_finalize().
 */
sqlite3_stmt *gw_index__stmt(gw_index *ix, const char *sql);
void gw_index__done(sqlite3_stmt *st);
/* The id of repo; GW_ENOTFOUND (no error message set) when the index does not know it. Lock held. */
int gw_index__repo_find(gw_index *ix, const char *repo, int64_t *id);

/*
 * One record's writes: a transaction, or a savepoint inside a batch. The
 * lock is held from begin to end; end commits when rc is 0, else rolls back,
 * and returns rc (or the commit's failure).
 */
int gw_index__write_begin(gw_index *ix);
int gw_index__write_end(gw_index *ix, int rc);

#endif
