/*
 * The retention policy (DESIGN.md 18.1): from a repository's full backups,
 * its last record and the window, which LSNs only serve times before the
 * window. No I/O: the run (expire.c) feeds it from the index, the unit tests
 * from tables.
 *
 * Why the cut keeps every moment of the window: restore --until T uses the
 * newest full backup with time_us <= T (ties: the higher LSN) and then only
 * records above it (its generation's segments, and the lowest record above
 * the span for its checks). For T >= the window's start W that full backup
 * is either the one chosen for W itself, or one taken after W. The cut is
 * the lowest LSN of all of those, so everything a restore in the window
 * reads lies at or above it.
 */
#include "gitwal/expire.h"
#include "gitwal/error.h"

#include <string.h>

int gw_expire_policy(const gw_expire_input *in, const gw_expire_policy_opts *opts, gw_expire_plan *out)
{
	const gw_expire_full *best = NULL;
	int64_t start;
	uint64_t cut = UINT64_MAX;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (opts->keep_within_us < 0)
		return gw_error_set(GW_EINVALID, "the window (keep-within) cannot be negative");
	/* now - keep_within, without overflow for a window reaching before every time. */
	start = opts->now_us < INT64_MIN + opts->keep_within_us ? INT64_MIN : opts->now_us - opts->keep_within_us;
	if (!in->last_lsn)
		return 0;
	/* Deleted before the window: no moment of the window holds the repository (nor a member's pool). */
	if (in->deleted && in->deleted_us < start && !in->pinned_lsn) {
		out->action = GW_EXPIRE_WHOLE;
		out->first_lsn = in->first_lsn ? in->first_lsn : 1;
		out->last_lsn = in->last_lsn;
		out->deleted_us = in->deleted_us;
		return 0;
	}
	for (i = 0; i < in->nfulls; i++) {
		const gw_expire_full *f = &in->fulls[i];
		if (f->time_us <= start &&
		    (!best || f->time_us > best->time_us || (f->time_us == best->time_us && f->lsn > best->lsn)))
			best = f;
	}
	/* No full backup at or before the window's start: every time before the first one is an error anyway. */
	if (!best)
		return 0;
	cut = best->lsn;
	for (i = 0; i < in->nfulls; i++)
		if (in->fulls[i].time_us > start && in->fulls[i].lsn < cut)
			cut = in->fulls[i].lsn;
	if (opts->keep_full) {
		/* The N newest full backups by LSN, and everything after the oldest of them. */
		size_t first = in->nfulls > opts->keep_full ? in->nfulls - opts->keep_full : 0;
		for (i = first; i < in->nfulls; i++)
			if (in->fulls[i].lsn < cut)
				cut = in->fulls[i].lsn;
	}
	/* A pool: the oldest generation a member's kept record names stays, and what follows it (DESIGN.md 19). */
	for (i = 0; in->pinned_lsn && i < in->nfulls; i++)
		if (in->fulls[i].lsn >= in->pinned_lsn && in->fulls[i].lsn < cut) {
			cut = in->fulls[i].lsn;
			break;
		}
	out->kept_lsn = cut;
	for (i = 0; i < in->nfulls; i++)
		if (in->fulls[i].lsn == cut)
			out->kept_us = in->fulls[i].time_us;
	if (!in->first_lsn || in->first_lsn >= cut)
		return 0;
	out->action = GW_EXPIRE_PREFIX;
	out->first_lsn = in->first_lsn;
	out->last_lsn = cut - 1;
	return 0;
}
