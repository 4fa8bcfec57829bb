/*
 * What restore asks before planning (DESIGN.md 18.4): is the state asked
 * for gone by policy? From the index's expire records alone (one indexed
 * query per repository that has any). A time before what remains fails in
 * one line naming the policy and the date it expired; a time after a
 * deleted repository was expired whole is "did not exist", as it was
 * before the expire.
 */
#include "gitwal/expire.h"
#include "gitwal/error.h"
#include "gitwal/time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
	int64_t until_us;
	uint64_t lsn;               /* check_lsn: the LSN asked for */
	gw_expire_record best;      /* the record that expired until (the smallest horizon after it) */
	char *best_key;
	uint64_t whole_lsn;         /* the highest whole record at or before until */
	int found;
} check_state;

static int keep_best(check_state *c, const char *key, const gw_expire_record *r)
{
	char *rel = strdup(r->repository), *k = strdup(key);
	if (!rel || !k) {
		free(rel);
		free(k);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	gw_expire_record_dispose(&c->best);
	free(c->best_key);
	c->best = *r;
	c->best.repository = rel;
	c->best_key = k;
	c->found = 1;
	return 0;
}

static int time_cb(const char *key, const gw_expire_record *r, int done, void *payload)
{
	check_state *c = payload;
	int64_t h = gw_expire_record_horizon(r);
	(void)done;
	if (c->until_us < h && (!c->found || h < gw_expire_record_horizon(&c->best)))
		return keep_best(c, key, r);
	if (r->whole && h <= c->until_us && r->last_lsn > c->whole_lsn)
		c->whole_lsn = r->last_lsn;
	return 0;
}

static int lsn_cb(const char *key, const gw_expire_record *r, int done, void *payload)
{
	check_state *c = payload;
	(void)done;
	if (!c->found && c->lsn <= r->last_lsn)
		return keep_best(c, key, r);
	return 0;
}

static void check_dispose(check_state *c)
{
	gw_expire_record_dispose(&c->best);
	free(c->best_key);
}

int gw_expire_check_time(gw_index *index, const char *repo, int64_t until_us, int *deleted)
{
	check_state c;
	char policy[160], when[GW_TIME_TEXT_MAX], from[GW_TIME_TEXT_MAX];
	int rc;
	memset(&c, 0, sizeof(c));
	c.until_us = until_us;
	*deleted = 0;
	if ((rc = gw_index_expire_foreach(index, repo, 0, time_cb, &c)) < 0)
		goto out;
	if (c.found) {
		gw_expire_record_describe(&c.best, policy, sizeof(policy));
		gw_time_format(until_us, when, sizeof(when));
		gw_time_format(gw_expire_record_horizon(&c.best), from, sizeof(from));
		if (c.best.whole)
			rc = gw_error_set(GW_ENOTFOUND,
					  "repository %s: its state at %s was expired by %s (record %s): the repository "
					  "was deleted at %s and its archive removed whole",
					  repo, when, policy, c.best_key, from);
		else
			rc = gw_error_set(GW_ENOTFOUND,
					  "repository %s: its state at %s was expired by %s (record %s): the archive "
					  "restores it from %s on",
					  repo, when, policy, c.best_key, from);
	} else if (c.whole_lsn) {
		/* Deleted, then expired whole: it did not exist at until, unless it was created again by then. */
		gw_full_record f;
		rc = gw_index_full_find_before(index, repo, until_us, &f);
		if (rc == GW_ENOTFOUND || (rc == 0 && f.lsn <= c.whole_lsn)) {
			*deleted = 1;
			gw_error_clear();
		}
		if (rc == 0)
			gw_full_record_dispose(&f);
		rc = rc == GW_ENOTFOUND ? 0 : rc;
	}
out:
	check_dispose(&c);
	return rc;
}

int gw_expire_check_lsn(gw_index *index, const char *repo, uint64_t lsn)
{
	check_state c;
	char policy[160];
	int rc;
	memset(&c, 0, sizeof(c));
	c.lsn = lsn;
	if ((rc = gw_index_expire_foreach(index, repo, 0, lsn_cb, &c)) == 0 && c.found) {
		gw_expire_record_describe(&c.best, policy, sizeof(policy));
		rc = gw_error_set(GW_ENOTFOUND, "repository %s: LSN %llu was expired by %s (record %s)", repo,
				  (unsigned long long)lsn, policy, c.best_key);
	}
	check_dispose(&c);
	return rc;
}
