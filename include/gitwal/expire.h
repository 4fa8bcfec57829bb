/*
 * Retention: what `gitwal expire` (and the archive service on its schedule)
 * may remove from an archive without taking away any moment a restore of
 * the window needs (DESIGN.md 17).
 *
 *   policy   which LSNs of a repository only serve times before the window
 *            (gw_expire_policy: a pure function of the repository's full
 *            backups, its last record and the window);
 */
#ifndef GITWAL_EXPIRE_H
#define GITWAL_EXPIRE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>


/* ---- the policy ---- */

typedef struct gw_expire_full {
	uint64_t lsn;
	int64_t time_us;
} gw_expire_full;

typedef struct gw_expire_input {
	const gw_expire_full *fulls; /* the repository's full backups, by LSN */
	size_t nfulls;
	uint64_t first_lsn; /* its lowest and highest recorded LSN (full backup or segment); 0: none */
	uint64_t last_lsn;
	int deleted;         /* its last record deletes the repository */
	int64_t deleted_us;  /* when */
} gw_expire_input;

typedef struct gw_expire_policy_opts {
	int64_t now_us;
	int64_t keep_within_us; /* the window is [now - keep_within, now] */
	unsigned keep_full;     /* also keep the N newest full backups (and what follows them) */
} gw_expire_policy_opts;

typedef enum {
	GW_EXPIRE_KEEP = 0, /* nothing to remove */
	GW_EXPIRE_PREFIX,   /* every key at an LSN <= last_lsn */
	GW_EXPIRE_WHOLE,    /* the repository was deleted before the window: all of it */
} gw_expire_action;

typedef struct gw_expire_plan {
	gw_expire_action action;
	uint64_t first_lsn, last_lsn; /* removed: LSNs first_lsn..last_lsn (and any key below) */
	uint64_t kept_lsn;            /* PREFIX/KEEP: the oldest full backup kept (0: none) */
	int64_t kept_us;              /* its time: from then on every moment stays restorable */
	int64_t deleted_us;           /* WHOLE: when the repository was deleted */
} gw_expire_plan;

/*
 * What to keep of one repository: the newest full backup at or before the
 * window's start, every full backup taken after that start (whatever its
 * LSN: full backups' times are not trusted to follow LSNs), the keep_full
 * newest full backups, and every record after the oldest of those; the
 * rest only serves earlier times. A repository whose last record deleted
 * it before the window's start is removed whole. Pure: no I/O.
 */
int gw_expire_policy(const gw_expire_input *in, const gw_expire_policy_opts *opts, gw_expire_plan *out);

/* "7d", "12h", "30m", "90s" or "500ms" (a positive number and a unit) into microseconds; GW_EINVALID. */
int gw_expire_duration_parse(const char *text, int64_t *us);
/* The shortest of those forms that is exact ("7d", "90m", "1500ms"). */
void gw_expire_duration_format(int64_t us, char *out, size_t n);

#endif
