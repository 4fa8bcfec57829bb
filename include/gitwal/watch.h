/*
 * The always-on archiver's change detector: one inotify instance watching
 * every bare repository below a root, reporting per repository (by its path
 * relative to the root) that its refs changed, that it appeared or that it
 * disappeared. Built for an event loop: poll gw_watch_fd() with the timeout
 * gw_watch_next_timeout_ms(), then gw_watch_process() and drain
 * gw_watch_take(). Nothing polls: an idle tree costs no CPU.
 *
 * Nothing is lost silently: when the kernel drops events (queue overflow) the
 * caller gets GW_WATCH_RESCAN_ALL, and when a directory cannot be watched
 * (fs.inotify.max_user_watches) it gets GW_WATCH_RESCAN for it and must fall
 * back to examining that path periodically. See DESIGN.md 10.4.
 *
 * A gw_watch is not thread-safe: use it from one thread.
 */
#ifndef GITWAL_WATCH_H
#define GITWAL_WATCH_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_watch gw_watch;

typedef enum {
	/* refs/ (loose refs), HEAD or packed-refs changed: back up new history. */
	GW_WATCH_CHANGED = 1,
	/* A repository appeared: created, moved in, or a directory became one. */
	GW_WATCH_CREATED = 2,
	/* A repository disappeared: deleted, moved away, or stopped being one. */
	GW_WATCH_DELETED = 3,
	/*
	 * This path (a repository, or a directory that may hold some) could not
	 * be watched, typically ENOSPC from fs.inotify.max_user_watches: examine
	 * it now and poll it periodically (gw_repo_discover() for a directory).
	 * Worth a log line. gw_watch_rescan() retries the watches.
	 */
	GW_WATCH_RESCAN = 4,
	/* Events were lost (inotify queue overflow): re-examine every repository. */
	GW_WATCH_RESCAN_ALL = 5,
} gw_watch_kind;

typedef struct {
	gw_watch_kind kind;
	/*
	 * The repository (or, for RESCAN, directory) relative to the root, as
	 * "group/project.git"; NULL for RESCAN_ALL. Owned by the watcher, valid
	 * until the next gw_watch_take() or gw_watch_free().
	 */
	const char *repo;
	uint32_t events;   /* raw inotify events coalesced into this one */
	uint64_t first_ms; /* CLOCK_MONOTONIC time (ms) of the first of them */
} gw_watch_event;

typedef struct {
	/* A repository is reported once no new event arrived for it for this long. */
	unsigned debounce_ms;
	/* ...but at most this long after its first pending event (>= debounce_ms). */
	unsigned max_delay_ms;
} gw_watch_options;

#define GW_WATCH_DEBOUNCE_MS_DEFAULT 50
#define GW_WATCH_MAX_DELAY_MS_DEFAULT 1000
#define GW_WATCH_OPTIONS_INIT {GW_WATCH_DEBOUNCE_MS_DEFAULT, GW_WATCH_MAX_DELAY_MS_DEFAULT}

struct gw_watch_stats {
	size_t watches;     /* inotify watches held (one per watched directory) */
	size_t repos;       /* repositories known (watched or degraded) */
	size_t dirs;        /* plain directories watched, the root included */
	size_t degraded;    /* repositories and directories left unwatched (RESCAN reported) */
	size_t pending;     /* repositories with events not yet taken */
	uint64_t events;    /* inotify events read */
	uint64_t overflows; /* IN_Q_OVERFLOW seen */
	uint64_t failures;  /* inotify_add_watch failures (other than vanished paths) */
};

/*
 * Watch every bare repository below root (as gw_repo_discover() finds them:
 * dot-directories skipped, no descent into repositories, symlinks not
 * followed). opts may be NULL for the defaults. Repositories present now are
 * not reported as CREATED (list them with gw_watch_repos()); any that cannot
 * be watched are reported as RESCAN. Fails (GW_ENOTFOUND, GW_EINVALID,
 * GW_EIO) if the root is missing, the options are inconsistent, or the root
 * itself cannot be watched.
 */
int gw_watch_new(gw_watch **out, const char *root, const gw_watch_options *opts);
void gw_watch_free(gw_watch *w);

/* The inotify descriptor (non-blocking): poll it for POLLIN. */
int gw_watch_fd(const gw_watch *w);

/*
 * Read and digest the pending inotify events without blocking (bounded work
 * per call: the descriptor stays readable if more remain). Returns the number
 * of inotify events read (>= 0) or GW_EIO.
 */
int gw_watch_process(gw_watch *w);

/* Milliseconds until the next event is due: 0 if one is due now, -1 if none pending. */
int gw_watch_next_timeout_ms(const gw_watch *w);

/*
 * 1 with the next due event in *out, 0 if none is due (GW_ERROR when out of
 * memory). For one repository, several kinds come in this order: DELETED,
 * CREATED, CHANGED, RESCAN (a repository replaced within the debounce window
 * gives DELETED then CREATED; CREATED implies CHANGED).
 */
int gw_watch_take(gw_watch *w, gw_watch_event *out);

/*
 * The errno of the last inotify_add_watch failure (0: none yet), for the log
 * line of a RESCAN: ENOSPC means fs.inotify.max_user_watches is too low.
 */
int gw_watch_last_failure(const gw_watch *w);

/*
 * Re-walk the root: drop what vanished, add what was missed (reported as
 * CREATED/DELETED), retry the watches that failed. Done automatically after a
 * queue overflow; call it when the RESCAN fallback poll runs, or after raising
 * fs.inotify.max_user_watches.
 */
int gw_watch_rescan(gw_watch *w);

/* The repositories known now (watched or degraded), sorted; free with gw_repo_list_free(). */
int gw_watch_repos(const gw_watch *w, char ***out, size_t *count);

void gw_watch_stats(const gw_watch *w, struct gw_watch_stats *out);

/* "changed", "created", "deleted", "rescan", "rescan-all". */
const char *gw_watch_kind_name(gw_watch_kind kind);

#endif
