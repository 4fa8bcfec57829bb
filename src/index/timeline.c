/*
 * Point-in-time planning from the index alone: which segments a restore to a
 * given time replays, whether they form an unbroken chain, how many bytes
 * they hold, and which ref updates decide the refs at that time.
 *
 * Every answer is a handful of indexed lookups, never a walk over the
 * generation: a generation can hold tens of thousands of segments and a
 * restore can plan thousands of repositories. That is why segment rows carry
 * `linked` and `cum_size` (kept by index.c as rows arrive) and why the
 * updates table has an index by ref name: the refs at a time are the full
 * backup's refs with, for each name, only its latest update applied. The
 * `latest` table keeps each name's latest update per generation, so a
 * restore to a time after a name's last change needs no lookup for it.
 */
#include "index_internal.h"
#include "gitwal/array.h"
#include "gitwal/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int prepare(gw_index *ix, const char *sql, sqlite3_stmt **st)
{
	return (*st = gw_index__stmt(ix, sql)) != NULL ? 0 : gw_index__fail(ix, "prepare");
}

/* The newest segment of the generation whose first update is at or before until. */
static int find_last(gw_index *ix, int64_t id, gw_index_span *s, int64_t until_us)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prepare(ix,
			  "SELECT lsn, time_last_us, cum_size FROM segments WHERE repo_id=?1 AND base_lsn=?2 AND "
			  "time_first_us<=?3 ORDER BY time_first_us DESC, lsn DESC LIMIT 1",
			  &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)s->full_lsn);
	sqlite3_bind_int64(st, 3, until_us);
	if ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		s->last_lsn = (uint64_t)sqlite3_column_int64(st, 0);
		s->last_time_us = sqlite3_column_int64(st, 1);
		s->bytes = (uint64_t)sqlite3_column_int64(st, 2);
		s->segments = s->last_lsn - s->full_lsn;
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : gw_index__fail(ix, "query");
	gw_index__done(st);
	return rc;
}

/* The first segment in (full, last] that does not link to the record before it. */
static int find_break(gw_index *ix, int64_t id, gw_index_span *s)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prepare(ix,
			  "SELECT lsn FROM segments WHERE repo_id=?1 AND lsn>?2 AND lsn<=?3 AND linked=0 ORDER BY lsn "
			  "LIMIT 1",
			  &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)s->full_lsn);
	sqlite3_bind_int64(st, 3, (int64_t)s->last_lsn);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		s->broken_lsn = (uint64_t)sqlite3_column_int64(st, 0);
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : gw_index__fail(ix, "query");
	gw_index__done(st);
	if (rc < 0 || !s->broken_lsn)
		return rc;
	/* Say which LSN is missing, if one is, and the last time known before it. */
	if ((rc = prepare(ix,
			  "SELECT lsn, time_last_us FROM segments WHERE repo_id=?1 AND lsn>?2 AND lsn<?3 ORDER BY lsn DESC "
			  "LIMIT 1",
			  &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)s->full_lsn);
	sqlite3_bind_int64(st, 3, (int64_t)s->broken_lsn);
	rc = sqlite3_step(st);
	{
		uint64_t before = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : s->full_lsn;
		s->broken_after_us = rc == SQLITE_ROW ? sqlite3_column_int64(st, 1) : 0;
		if (before + 1 < s->broken_lsn) {
			s->broken_missing = 1;
			s->broken_lsn = before + 1;
		}
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : gw_index__fail(ix, "query");
	gw_index__done(st);
	return rc;
}

/* The segment right after the span, when it says the archiver did not see the states around until. */
static int find_unknown(gw_index *ix, int64_t id, gw_index_span *s, int64_t until_us)
{
	sqlite3_stmt *st;
	int rc;
	if ((rc = prepare(ix,
			  "SELECT lsn, gap_from_us, gap_to_us FROM segments WHERE repo_id=?1 AND lsn=?2 AND base_lsn=?3 "
			  "AND gap!=0 AND gap_from_us<?4",
			  &st)) < 0)
		return rc;
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_int64(st, 2, (int64_t)s->last_lsn + 1);
	sqlite3_bind_int64(st, 3, (int64_t)s->full_lsn);
	sqlite3_bind_int64(st, 4, until_us);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		s->unknown_lsn = (uint64_t)sqlite3_column_int64(st, 0);
		s->unknown_from_us = sqlite3_column_int64(st, 1);
		s->unknown_to_us = sqlite3_column_int64(st, 2);
	}
	rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : gw_index__fail(ix, "query");
	gw_index__done(st);
	return rc;
}

/* The lowest record above the span, whatever its generation: restore checks that nothing there was owed to until. */
static int find_next(gw_index *ix, int64_t id, gw_index_span *s)
{
	static const char *const sql[2] = {
		"SELECT lsn, base_lsn, time_first_us FROM segments WHERE repo_id=?1 AND lsn>?2 ORDER BY lsn LIMIT 1",
		"SELECT lsn, lsn, time_us FROM fulls WHERE repo_id=?1 AND lsn>?2 ORDER BY lsn LIMIT 1",
	};
	sqlite3_stmt *st;
	int i, rc = 0;
	for (i = 0; i < 2 && rc == 0; i++) {
		uint64_t lsn;
		if ((rc = prepare(ix, sql[i], &st)) < 0)
			return rc;
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)s->last_lsn);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && (lsn = (uint64_t)sqlite3_column_int64(st, 0)) && (!s->next_lsn || lsn < s->next_lsn)) {
			s->next_lsn = lsn;
			s->next_full = i == 1;
			s->next_base_lsn = (uint64_t)sqlite3_column_int64(st, 1);
			s->next_time_us = sqlite3_column_int64(st, 2);
		}
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : gw_index__fail(ix, "query");
		gw_index__done(st);
	}
	return rc;
}

int gw_index_span_find(gw_index *ix, const char *repo, uint64_t full_lsn, int64_t until_us, gw_index_span *out)
{
	int64_t id;
	int rc;
	memset(out, 0, sizeof(*out));
	out->full_lsn = out->last_lsn = full_lsn;
	pthread_mutex_lock(&ix->lock);
	rc = gw_index__repo_find(ix, repo, &id);
	if (rc == GW_ENOTFOUND)
		rc = gw_error_set(GW_ENOTFOUND, "repository %s is not in the index", repo);
	if (rc == 0 && (rc = find_last(ix, id, out, until_us)) == 0 && (rc = find_break(ix, id, out)) == 0 &&
	    (rc = find_unknown(ix, id, out, until_us)) == 0)
		rc = find_next(ix, id, out);
	pthread_mutex_unlock(&ix->lock);
	return rc;
}

/* ---- the updates that decide the refs at a time ---- */

typedef struct {
	gw_update *items;
	size_t n, cap;
	uint64_t *pos; /* lsn << 20 | seq, for ordering */
} update_list;

static void list_dispose(update_list *l)
{
	gw_updates_free(l->items, l->n);
	free(l->pos);
}

static int list_push_row(update_list *l, sqlite3_stmt *st)
{
	gw_update *u;
	int kind = sqlite3_column_int(st, 2);
	const char *ref = (const char *)sqlite3_column_text(st, 4), *new = (const char *)sqlite3_column_text(st, 5);
	/* Two arrays of one length: each grows the same way from the same capacity. */
	size_t icap = l->cap, pcap = l->cap;
	if (GW_ARRAY_RESERVE(l->items, icap, l->n + 1) < 0 || GW_ARRAY_RESERVE(l->pos, pcap, l->n + 1) < 0)
		return GW_ERROR;
	l->cap = pcap;
	u = &l->items[l->n];
	memset(u, 0, sizeof(*u));
	u->kind = (gw_update_kind)kind;
	u->time_us = sqlite3_column_int64(st, 3);
	l->pos[l->n] = (uint64_t)sqlite3_column_int64(st, 0) << 20 | (uint64_t)sqlite3_column_int64(st, 1);
	l->n++;
	if (kind == GW_UPDATE_REF || kind == GW_UPDATE_SYMREF) {
		if (!(u->ref = strdup(ref ? ref : "")))
			return gw_error_set(GW_ERROR, "out of memory");
		if (kind == GW_UPDATE_REF)
			snprintf(u->new_oid, sizeof(u->new_oid), "%s", new ? new : "");
		else if (!(u->new_target = strdup(new ? new : "")) || !(u->old_target = strdup("")))
			return gw_error_set(GW_ERROR, "out of memory");
	} else if (kind != GW_UPDATE_CREATED && kind != GW_UPDATE_DELETED) {
		return gw_error_set(GW_ECORRUPT, "index: ref update of unknown kind %d", kind);
	}
	return 0;
}

/* By name, then newest first: the planner would otherwise walk the LSN range backwards. */
#define UPDATE_COLUMNS "SELECT lsn, seq, kind, time_us, ref, new FROM updates INDEXED BY updates_ref "

/* The latest update of `ref` in the span at or before until, after position `after`. */
static int latest_of(gw_index *ix, sqlite3_stmt *st, int64_t id, const char *ref, const gw_index_span *s,
		     int64_t until_us, int kind, update_list *l)
{
	int rc;
	sqlite3_reset(st);
	sqlite3_bind_int64(st, 1, id);
	sqlite3_bind_text(st, 2, ref, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int64(st, 3, (int64_t)s->full_lsn);
	sqlite3_bind_int64(st, 4, (int64_t)s->last_lsn);
	sqlite3_bind_int64(st, 5, until_us);
	sqlite3_bind_int(st, 6, kind);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return list_push_row(l, st) < 0 ? GW_ERROR : 1;
	return rc == SQLITE_DONE ? 0 : gw_index__fail(ix, "query");
}

typedef struct {
	uint64_t pos;
	size_t i;
} ordered;

static int ordered_cmp(const void *a, const void *b)
{
	const ordered *x = a, *y = b;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* Order the list by position and drop what a later deletion voids. */
static int list_finish(update_list *l, gw_update **out, size_t *n)
{
	ordered *order = NULL;
	size_t i, k = 0;
	uint64_t deleted_at = 0;
	gw_update *items;
	for (i = 0; i < l->n; i++)
		if (l->items[i].kind == GW_UPDATE_DELETED && l->pos[i] + 1 > deleted_at)
			deleted_at = l->pos[i] + 1;
	if (!(items = calloc(l->n ? l->n : 1, sizeof(*items))) || !(order = malloc((l->n ? l->n : 1) * sizeof(*order)))) {
		free(items);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	for (i = 0; i < l->n; i++) {
		order[i].pos = l->pos[i];
		order[i].i = i;
	}
	if (l->n)
		qsort(order, l->n, sizeof(*order), ordered_cmp);
	for (i = 0; i < l->n; i++) {
		gw_update *u = &l->items[order[i].i];
		if (deleted_at && order[i].pos + 1 < deleted_at) {
			free(u->ref);
			free(u->old_target);
			free(u->new_target);
			continue;
		}
		items[k++] = *u;
	}
	free(order);
	free(l->items);
	free(l->pos);
	*out = items;
	*n = k;
	return 0;
}

int gw_index_span_updates(gw_index *ix, const char *repo, const gw_index_span *s, int64_t until_us,
			  gw_update **out, size_t *n)
{
	sqlite3_stmt *names = NULL, *latest = NULL;
	update_list l = {0};
	int64_t id;
	int rc, step;
	*out = NULL;
	*n = 0;
	if (s->last_lsn == s->full_lsn)
		return 0;
	pthread_mutex_lock(&ix->lock);
	if ((rc = gw_index__repo_find(ix, repo, &id)) == GW_ENOTFOUND)
		rc = gw_error_set(GW_ENOTFOUND, "repository %s is not in the index", repo);
	/*
	 * Each name's latest update in the whole generation: when it lies in the
	 * span it is the answer; otherwise (it came after until) the name's
	 * latest update in the span is one lookup through updates_ref.
	 */
	if (rc == 0)
		rc = prepare(ix,
			     "SELECT lsn, seq, kind, time_us, ref, new, event FROM latest WHERE repo_id=?1 AND base_lsn=?2 "
			     "ORDER BY ref, event",
			     &names);
	if (rc == 0)
		rc = prepare(ix,
			     UPDATE_COLUMNS "WHERE repo_id=?1 AND ref=?2 AND lsn>?3 AND lsn<=?4 AND time_us<=?5 AND "
					    "(?6=0 OR kind=?6) ORDER BY lsn DESC, seq DESC LIMIT 1",
			     &latest);
	if (rc == 0) {
		sqlite3_bind_int64(names, 1, id);
		sqlite3_bind_int64(names, 2, (int64_t)s->full_lsn);
	}
	while (rc >= 0 && (step = sqlite3_step(names)) == SQLITE_ROW) {
		int64_t lsn = sqlite3_column_int64(names, 0), time_us = sqlite3_column_int64(names, 3);
		if (lsn <= (int64_t)s->last_lsn && time_us <= until_us)
			rc = list_push_row(&l, names);
		else
			rc = latest_of(ix, latest, id, (const char *)sqlite3_column_text(names, 4), s, until_us,
				       sqlite3_column_int(names, 6), &l);
	}
	if (rc >= 0 && names && step != SQLITE_DONE)
		rc = gw_index__fail(ix, "query");
	gw_index__done(names);
	gw_index__done(latest);
	pthread_mutex_unlock(&ix->lock);
	if (rc < 0) {
		list_dispose(&l);
		return rc;
	}
	return list_finish(&l, out, n);
}

int gw_index_gaps_foreach(gw_index *ix, const char *repo, uint64_t from, uint64_t to, gw_index_gap_cb cb,
			  void *payload)
{
	sqlite3_stmt *st;
	int64_t id;
	int rc, step;
	pthread_mutex_lock(&ix->lock);
	if ((rc = gw_index__repo_find(ix, repo, &id)) == GW_ENOTFOUND)
		rc = 0, id = -1;
	if (rc == 0 && (rc = prepare(ix,
				     "SELECT lsn, gap_from_us, gap_to_us FROM segments WHERE repo_id=?1 AND lsn>=?2 AND "
				     "lsn<=?3 AND gap!=0 ORDER BY lsn",
				     &st)) == 0) {
		sqlite3_bind_int64(st, 1, id);
		sqlite3_bind_int64(st, 2, (int64_t)from);
		sqlite3_bind_int64(st, 3, (int64_t)(to > INT64_MAX ? INT64_MAX : to));
		while ((step = sqlite3_step(st)) == SQLITE_ROW &&
		       (rc = cb((uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
				sqlite3_column_int64(st, 2), payload)) == 0)
			;
		if (rc == 0 && step != SQLITE_DONE)
			rc = gw_index__fail(ix, "query");
		gw_index__done(st);
	}
	pthread_mutex_unlock(&ix->lock);
	return rc;
}
