/*
 * The audit: proof that the archive is whole and restorable, taken from the
 * store itself rather than from the local index (which is only a cache and
 * may be wrong in exactly the cases an audit exists for).
 *
 * Levels (DESIGN.md 14.1):
 *   default      list every stored key and match it with the index; read
 *                every manifest and every segment's header and trailer (two
 *                ranged reads) and check each repository's record chain,
 *                full backups' parts and sizes, and write-once (stat);
 *   read_data    also re-read every byte and check it against its SHA-256,
 *                and parse bundle, pack and pack index structure;
 *   deep         also restore each repository's latest state into a scratch
 *                directory, run `git fsck --connectivity-only` on it and,
 *                given a live root, compare its refs and HEAD with the live
 *                repository (the archive's lag).
 *
 * Problems are collected in a gw_audit_report, one per fact, each naming the
 * repository, LSN and key it is about and a stable kind (gw_audit_kind_name).
 * gw_audit_run() fails (< 0) only when the audit itself cannot run (the store
 * cannot be listed); everything wrong with the archive is a problem.
 */
#ifndef GITWAL_AUDIT_H
#define GITWAL_AUDIT_H

#include <pthread.h>
#include <stdint.h>
#include <stddef.h>

#include "gitwal/index.h"
#include "gitwal/manifest.h"
#include "gitwal/progress.h"
#include "gitwal/store.h"

/* Problem kinds. Their names (gw_audit_kind_name) are part of the user interface. */
typedef enum {
	GW_AUDIT_INDEX = 0,    /* "index": the local index is missing or empty */
	GW_AUDIT_MISSING,      /* "missing": in the index, not in the store */
	GW_AUDIT_UNINDEXED,    /* "unindexed": a record in the store the index does not list */
	GW_AUDIT_UNEXPECTED,   /* "unexpected": a key gitwal never writes */
	GW_AUDIT_NO_MANIFEST,  /* "no-manifest": bundle or idx of a full backup without its manifest */
	GW_AUDIT_INCOMPLETE,   /* "incomplete": a manifest whose part is absent */
	GW_AUDIT_SIZE,         /* "size": stored size differs from the manifest or the index */
	GW_AUDIT_CORRUPT,      /* "corrupt": a manifest or segment header that does not parse or lies about its key */
	GW_AUDIT_CHECKSUM,     /* "checksum": content differs from its recorded SHA-256 */
	GW_AUDIT_PACK,         /* "pack": bundle, pack or pack index structure is wrong */
	GW_AUDIT_GAP,          /* "gap": LSNs missing from a repository's chain */
	GW_AUDIT_LINK,         /* "link": a segment's prev_sha256 is not the previous record's digest */
	GW_AUDIT_BASE,         /* "base": a segment's base_lsn is not the latest full backup before it */
	GW_AUDIT_TIME,         /* "time": record times go backwards */
	GW_AUDIT_VERSIONS,     /* "versions": a key has more than one version */
	GW_AUDIT_RETENTION,    /* "retention": no Object Lock retention on a locking store */
	GW_AUDIT_WRITABLE,     /* "writable": a stored file can still be modified */
	GW_AUDIT_UNREADABLE,   /* "unreadable": a listed key could not be read */
	GW_AUDIT_RESTORE,      /* "restore": --deep could not restore the latest state */
	GW_AUDIT_FSCK,         /* "fsck": the restored repository is not connected */
	GW_AUDIT_LAG,          /* "lag": the archive's latest state differs from the live repository */
	GW_AUDIT_NOT_A_FILE,   /* "not-a-file": a FIFO, symlink, directory... where a key could be (file stores) */
	GW_AUDIT_LEFTOVER,     /* "leftover" (a warning): a dead writer's temporary file or incomplete upload */
	GW_AUDIT_UNENFORCED,   /* "unenforced" (a warning): the store does not enforce write-once (a plain bucket) */
	GW_AUDIT_EXPIRE_RESUME, /* "expire-resume" (a warning): keys an expire record covers are still there */
	GW_AUDIT_KIND_COUNT
} gw_audit_kind;

const char *gw_audit_kind_name(gw_audit_kind kind);
/*
 * Warnings are reported like problems but do not make the archive unclean:
 * a dead writer's leftover is no damage to what is stored (DESIGN.md 14.4).
 */
int gw_audit_kind_is_warning(gw_audit_kind kind);

typedef struct gw_audit_problem {
	char *repository; /* NULL when about no repository */
	uint64_t lsn;     /* 0 when about no record */
	char *key;        /* NULL when about no key */
	gw_audit_kind kind;
	char *detail;
} gw_audit_problem;

/* What was looked at (the "checked" object of the JSON output). */
typedef struct gw_audit_counts {
	uint64_t repositories;
	uint64_t keys;            /* keys listed */
	uint64_t full_backups;    /* records: full backups with a manifest or in the index */
	uint64_t segments;
	uint64_t records_total;   /* records eligible this run (after --since) */
	uint64_t records_checked; /* records whose metadata (and data) this run read */
	uint64_t keys_stat;       /* keys whose write-once state was checked */
	uint64_t bytes_read;      /* bytes re-read by --read-data */
	uint64_t restored;        /* repositories restored by --deep */
	uint64_t lagging;         /* repositories whose archive differs from the live one */
	uint64_t expire_records;  /* expire records read: what they cover is expired by policy, not lost */
} gw_audit_counts;

typedef struct gw_audit_report {
	gw_audit_problem *problems;
	size_t nproblems, cap;
	gw_audit_counts counts;
	int stopped_early;  /* --max-duration ran out before the run's share was checked */
	char *resume_after; /* the last record key checked, for the next run (NULL: none) */
	double seconds;
	pthread_mutex_t lock; /* problems are added from worker threads */
} gw_audit_report;

typedef enum {
	GW_AUDIT_INDEX_OK = 0,
	GW_AUDIT_INDEX_ABSENT, /* the index file does not exist: index is NULL */
} gw_audit_index_state;

typedef struct gw_audit_opts {
	const char *const *repos; /* only these repositories (nrepos == 0: all) */
	size_t nrepos;
	int read_data;
	int deep;
	const char *live_root;    /* deep: compare with the repositories under it (NULL: no comparison) */
	const char *scratch_dir;  /* deep: where to restore (a private directory is made inside) */
	int64_t since_us;         /* only records after this time (0: all) */
	double sample_percent;    /* 0 < p <= 100: check this share of the records, from resume_after on */
	double max_seconds;       /* stop checking records after this long (0: no limit) */
	const char *resume_after; /* continue after this record key (from an earlier run) */
	gw_audit_index_state index_state;
	const char *index_path;   /* for messages */
	int jobs;                 /* records checked in parallel */
	/* Or NULL: counts "listing the store", then "records" (their bytes with read_data), then deep's restores. */
	gw_progress_counters *progress;
} gw_audit_opts;

int gw_audit_report_init(gw_audit_report *r);
void gw_audit_report_dispose(gw_audit_report *r);
/* Record a problem (thread-safe). lsn 0, repo NULL and key NULL mean "none". */
int gw_audit_report_add(gw_audit_report *r, const char *repo, uint64_t lsn, const char *key, gw_audit_kind kind,
			const char *fmt, ...) __attribute__((format(printf, 6, 7)));
/* Order problems by repository, LSN, key and kind, for stable output. */
void gw_audit_report_sort(gw_audit_report *r);
/* How many of the problems are warnings. */
size_t gw_audit_report_warnings(const gw_audit_report *r);

/* Run the audit. index may be NULL when opts->index_state says it is absent. */
int gw_audit_run(gw_store *store, gw_index *index, const gw_audit_opts *opts, gw_audit_report *report);

/*
 * Data checks (--read-data) of one record, also usable alone. Every byte is
 * read once; problems go to the report; *bytes gets the bytes read. They
 * return < 0 only for failures that are not the archive's fault (memory).
 */
int gw_audit_verify_full(gw_store *store, const char *rel, const gw_manifest *m, gw_audit_report *report,
			 uint64_t *bytes);
/* size: the segment's stored size (from the listing). */
int gw_audit_verify_segment(gw_store *store, const char *rel, uint64_t lsn, const char *key, uint64_t size,
			    gw_audit_report *report, uint64_t *bytes);

/* --deep for one repository: restore, fsck, and compare with opts->live_root. */
int gw_audit_deep_repo(gw_store *store, const char *rel, const gw_audit_opts *opts, const char *scratch,
		       gw_index *scratch_index, gw_audit_report *report);
/*
 * --deep --root: a live repository without a full backup lags the archive
 * entirely; one gitwal refuses (reftable, an unknown extension...) says why.
 */
int gw_audit_deep_unarchived(const char *live_root, const char *rel, gw_audit_report *report);

#endif
