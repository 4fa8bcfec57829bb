/*
 * Who owns a temporary name. Writers that can die mid-write leave things
 * behind: a file store's temporary file (DESIGN.md 2.1), a restore's scratch
 * directory (DESIGN.md 6). Each puts its owner in the name, so that a later
 * run can tell a dead writer's leftover (safe to remove) from a live writer's
 * work in progress without trusting a pid alone: pids are reused, and a pid
 * means nothing on another host (a store on NFS is shared).
 *
 * The owner tag is "<host>.<boot>.<pid>.<start>": the host name (bytes
 * outside [A-Za-z0-9-] written as '_', so the tag has no '.' of its own),
 * the kernel's boot id without dashes (32 hex digits), the pid, and the
 * process's start time in clock ticks since boot (/proc/PID/stat field 22).
 * A name is "<lead><what>.<tag>.<n>" (n a counter); <what> may hold dots,
 * so names are parsed from the right.
 *
 * Verdicts (DESIGN.md 2.2):
 *   this host, this boot, the pid runs and started at <start>   alive
 *   this host, this boot, no such process (or another start)    dead
 *   this host, another boot                                     dead (rebooted)
 *   another host, or a name without a tag (an older format)     unknown: dead once
 *                                                               untouched for the stale age
 */
#ifndef GITWAL_OWNER_H
#define GITWAL_OWNER_H

#include <pthread.h>
#include <stdint.h>

/* Leftovers whose owner cannot be checked are dead after this long without a write. */
#define GW_OWNER_STALE_SECONDS (24 * 3600)

/* This process's tag (computed once; at most GW_OWNER_TAG_MAX bytes). */
#define GW_OWNER_TAG_MAX 160
const char *gw_owner_tag(void);

typedef enum {
	GW_OWNER_ALIVE = 0,
	GW_OWNER_DEAD,
	GW_OWNER_UNKNOWN,
} gw_owner_state;

typedef struct gw_owner_verdict {
	gw_owner_state state;
	int removable;   /* dead, or unknown and untouched for GW_OWNER_STALE_SECONDS */
	char what[256];  /* the <what> part of the name (what was being written) */
	char owner[200]; /* who, for messages: "pid 123 on this host, gone" */
} gw_owner_verdict;

/*
 * Judge the leftover `name` (a directory entry starting with lead, last
 * modified at mtime, seconds). A name that starts with lead but carries no
 * tag is UNKNOWN. Returns 0, or -1 when name does not start with lead.
 */
int gw_owner_judge(const char *name, const char *lead, int64_t mtime, gw_owner_verdict *out);

/*
 * Remove the entries of dir whose names start with lead and whose owner is
 * dead (gw_owner_judge: removable): regular files with unlink, directories
 * with remove_tree (NULL: directories are left alone). Best effort: what
 * cannot be removed stays for the next run. Returns how many were removed.
 */
int gw_owner_clear_dead(const char *dir, const char *lead, int (*remove_tree)(const char *path));

/* The directories a process already cleared, so that it lists each one once (thread-safe). */
typedef struct gw_owner_cleared {
	pthread_mutex_t lock;
	char **dirs; /* sorted */
	size_t n, cap;
} gw_owner_cleared;
#define GW_OWNER_CLEARED_INIT {PTHREAD_MUTEX_INITIALIZER, NULL, 0, 0}
void gw_owner_cleared_dispose(gw_owner_cleared *c);
/* Add s to the set: 1 when it was not there, 0 when it was, <0 without memory. */
int gw_owner_cleared_add(gw_owner_cleared *c, const char *s);
/* gw_owner_clear_dead, the first time this set sees dir; 0 afterwards. */
int gw_owner_clear_dead_once(gw_owner_cleared *c, const char *dir, const char *lead,
			     int (*remove_tree)(const char *path));

#endif
