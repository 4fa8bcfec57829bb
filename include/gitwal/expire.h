/*
 * Retention: what `gitwal expire` (and the archive service on its schedule)
 * may remove from an archive without taking away any moment a restore of
 * the window needs (DESIGN.md 18).
 *
 *   policy   which LSNs of a repository only serve times before the window
 *            (gw_expire_policy: a pure function of the repository's full
 *            backups, its last record and the window);
 *   record   the create-only expire record written before anything is
 *            removed (repos/<enc>/<LSN>.expire: the policy, the date and the
 *            LSNs whose keys go), so that a removed key is "expired by
 *            policy" and never looks like loss;
 *   run      plan every repository from the index, write the records, let
 *            the index forget, then remove the keys (honouring Object Lock),
 *            and finish what an interrupted run left.
 */
#ifndef GITWAL_EXPIRE_H
#define GITWAL_EXPIRE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gitwal/index.h"
#include "gitwal/store.h"

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
	/*
	 * A pool's (DESIGN.md 19): the lowest generation a member's full backup
	 * names (0: none). Its full backup at or above it is kept, with what
	 * follows, so that every member's kept records restore.
	 */
	uint64_t pinned_lsn;
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

/* ---- the expire record (repos/<enc(rel)>/<LSN>.expire; DESIGN.md 18.2) ---- */

#define GW_EXPIRE_MAGIC "GWEXPIR\0"
#define GW_EXPIRE_VERSION 1
#define GW_EXPIRE_FIXED_SIZE 74 /* the bytes before the repository path */
#define GW_EXPIRE_FLAG_WHOLE 1u

typedef struct gw_expire_record {
	char *repository;
	int whole;              /* the repository's archive was removed whole (it had been deleted) */
	int64_t time_us;        /* when the expire ran */
	int64_t keep_within_us; /* the policy */
	unsigned keep_full;
	uint64_t first_lsn;     /* the lowest LSN the plan knew of (for people) */
	uint64_t last_lsn;      /* every key of the repository at an LSN <= last_lsn is removed; the record's own LSN */
	uint64_t kept_lsn;      /* the oldest full backup kept (0 when whole) */
	int64_t kept_us;        /* its time: earlier times are no longer restorable (0 when whole) */
	int64_t deleted_us;     /* whole: when the repository was deleted */
} gw_expire_record;

int gw_expire_record_encode(const gw_expire_record *r, unsigned char **out, size_t *len);
/* Parse a stored record (untrusted; bounds-checked); `what` names it in errors (its key). */
int gw_expire_record_parse(gw_expire_record *r, const unsigned char *buf, size_t len, const char *what);
void gw_expire_record_dispose(gw_expire_record *r);
/* Read and parse the record at key, checking it is the one its key names. */
int gw_expire_record_read(gw_store *store, const char *key, gw_expire_record *r);
/* The first time the archive can no longer restore for this record: kept_us, or deleted_us when whole. */
int64_t gw_expire_record_horizon(const gw_expire_record *r);
/* "policy keep-within=7d keep-full=2, expired 2026-...Z": for messages. */
void gw_expire_record_describe(const gw_expire_record *r, char *out, size_t n);

/* ---- in the index (src/index/expired.c; DESIGN.md 18.3) ---- */

/*
 * Record an expire record (a key already recorded is left alone) and forget
 * every full backup and segment of its repository at or below its LSN, in
 * one transaction.
 */
int gw_index_expire_add(gw_index *index, const char *key, const gw_expire_record *r, int done);
int gw_index_expire_known(gw_index *index, const char *key, int *known);
/* The removal the record stands for finished: every key it covers is gone. */
int gw_index_expire_set_done(gw_index *index, const char *key);
/* Records (of repo, or all when NULL; only those not done with pending_only), by repository then LSN. */
typedef int (*gw_index_expire_cb)(const char *key, const gw_expire_record *r, int done, void *payload);
int gw_index_expire_foreach(gw_index *index, const char *repo, int pending_only, gw_index_expire_cb cb,
			    void *payload);
/* The highest LSN repo's records cover (0: none): keys at or below it are gone by policy. */
int gw_index_expire_covered(gw_index *index, const char *repo, uint64_t *last_lsn);
/* What the policy needs besides full backups: first and last LSN, and whether the last record deleted repo. */
int gw_index_expire_facts(gw_index *index, const char *repo, gw_expire_input *in);
/* For a sync: record the expire record at key unless known; *stored set when the failure is the key's. */
int gw_index_sync_expire(gw_index *index, gw_store *store, const char *key, int *stored);

/* ---- the run ---- */

typedef struct gw_expire_opts {
	int64_t now_us;             /* 0: the clock */
	int64_t keep_within_us;
	unsigned keep_full;
	const char *const *repos;   /* only these (nrepos 0: every repository the index knows) */
	size_t nrepos;
	int dry_run;                /* plan and print, write and remove nothing */
	FILE *log;                  /* one key=value line per event (the service), or NULL */
	/* Tests: stop dead (SIGKILL to itself) after this many keys removed (-1: never; -2: after the first record). */
	long kill_after;
	const volatile int *stop;   /* or NULL: when it becomes non-zero, the run ends after the batch in hand */
} gw_expire_opts;

/* What one repository's run found and did. */
typedef struct gw_expire_repo_result {
	char *repository;
	gw_expire_plan plan;
	char *record_key;       /* the record written or resumed (NULL: none) */
	int resumed;            /* an earlier run's record was finished */
	uint64_t keys_removed;
	uint64_t bytes_removed;
	uint64_t keys_locked;   /* left: under Object Lock retention */
	int64_t locked_until;   /* the latest retain-until among them (seconds) */
	uint64_t keys_failed;   /* left: the store refused otherwise */
	char *refused;          /* keys_failed: the first such key and why, one line */
	char *error;            /* the repository failed (nothing more was removed), or NULL */
} gw_expire_repo_result;

typedef struct gw_expire_result {
	gw_expire_repo_result *repos;
	size_t nrepos, repos_cap;
	uint64_t keys_removed, bytes_removed, keys_locked, keys_failed, records;
	uint64_t requests;      /* store requests of the run (listings, reads, writes, removals) */
	int64_t lock_period_s;  /* a lock period longer than the window was met (warned once): that period */
	double plan_seconds, seconds;
	int failed;             /* repositories that failed */
} gw_expire_result;

/*
 * Apply the policy: plan each repository from the index (for each with
 * something to remove: learn what the store gained since, and check the
 * oldest full backup kept is whole in the store), write its expire record
 * (create-only), make the index forget what it covers, then remove the
 * keys in LSN order, a full backup's manifest first; keys under Object Lock
 * retention are left for a later run. Records an earlier run did not finish
 * are finished first. Returns < 0 only when the run could not start.
 */
int gw_expire_run(gw_store *store, gw_index *index, const gw_expire_opts *opts, gw_expire_result *result);
void gw_expire_result_dispose(gw_expire_result *result);

/*
 * The archive service's retention (src/expire/service.c): a thread of its own
 * that runs gw_expire_run with `policy` soon after start, then every every_us,
 * logging its events to policy->log; it never holds the service loop. Stop
 * ends a run in progress after its batch in hand, then joins the thread.
 */
typedef struct gw_expire_service gw_expire_service;
int gw_expire_service_start(gw_expire_service **out, gw_store *store, gw_index *index, const gw_expire_opts *policy,
			    int64_t every_us);
void gw_expire_service_stop(gw_expire_service *svc);

/*
 * Restore's check (planning): the state of repo at until_us is gone by
 * policy: GW_ENOTFOUND with one line naming the policy and the date it
 * expired. *deleted is set (and 0 returned) when the archive proves the
 * repository did not exist then (it was deleted, then expired whole).
 */
int gw_expire_check_time(gw_index *index, const char *repo, int64_t until_us, int *deleted);
/* The same for a full backup asked for by LSN. */
int gw_expire_check_lsn(gw_index *index, const char *repo, uint64_t lsn);

#endif
