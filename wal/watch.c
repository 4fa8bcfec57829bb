/*
 * The archiver's inotify watcher (see include/gitwal/watch.h, DESIGN.md 10.4).
 *
 * Every watched directory is a node in a tree mirroring the filesystem below
 * the root: plain directories (N_DIR, watched so repositories appearing in
 * them are seen), repository directories (N_REPO, for HEAD and packed-refs)
 * and refs/ with its subdirectories (N_REFS), and the repository's own
 * files' directories (N_FILES: info/, and custom_hooks/ with its
 * subdirectories; DESIGN.md 4.5). Nodes are found by watch
 * descriptor (events) and by (parent, name) (directory entries), both hash
 * tables, so memory stays proportional to the watched directories and every
 * event costs O(1) plus the path depth.
 *
 * Events become per-repository pending records keyed by relative path, which
 * gw_watch_take() hands out once debounced.
 */
#include "gitwal/array.h"
#include "gitwal/watch.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WATCH_PATH_MAX 4096 /* the kernel's PATH_MAX: inotify_add_watch cannot take longer */
#define DIR_DEPTH_MAX 33    /* as gw_repo_discover: repositories at most this deep */
#define REFS_DEPTH_MAX 64
#define READ_ROUNDS_MAX 64 /* 64 x 64 KiB per gw_watch_process: a busy tree cannot monopolize the caller */

/*
 * One mask for every kind of directory. IN_CREATE matters only for
 * directories (files are reported once complete: IN_CLOSE_WRITE, or
 * IN_MOVED_TO for git's lock-and-rename); IN_EXCL_UNLINK spares us events on
 * files already unlinked; IN_DONT_FOLLOW because symlinks are not followed.
 * IN_ATTRIB is for the repository's files (a hook made executable is a
 * change); refs and plain directories ignore it.
 */
#define WATCH_MASK                                                                                             \
	(IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | IN_DELETE_SELF | IN_MOVE_SELF |   \
	 IN_ATTRIB | IN_ONLYDIR | IN_DONT_FOLLOW | IN_EXCL_UNLINK)
/* What changes a repository file: written, linked, renamed, removed, or its mode. */
#define FILES_MASK (IN_CREATE | IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM | IN_ATTRIB)

enum { N_DIR, N_REPO, N_REFS, N_FILES };
enum { F_DEGRADED = 1 }; /* its watch could not be added: RESCAN was reported */

/*
 * How a node's watch goes away: we remove it (LIVE), the kernel is removing it
 * and will queue IN_IGNORED (DYING: IN_DELETE_SELF seen), or its IN_IGNORED
 * was just read (GONE).
 */
enum rm_mode { RM_LIVE, RM_DYING, RM_GONE };

enum { P_DELETED = 1, P_CREATED = 2, P_CHANGED = 4, P_RESCAN = 8 };

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Intrusive chained hash table; entries keep their hash so growing never rehashes keys. */
struct hent {
	struct hent *next;
	uint64_t h;
};

struct htab {
	struct hent **b;
	size_t nb, n;
};

struct node {
	struct hent by_wd, by_name;
	struct node *parent, *child, *prev, *next;
	uint64_t ino, dev; /* of the directory when last looked at: tells a replaced directory apart */
	int wd;            /* -1 when not watched */
	unsigned char kind, flags;
	char name[];
};

struct pend {
	struct hent by_rel;
	struct pend *prev, *next; /* in order of first event */
	uint64_t first, last;
	uint32_t count;
	unsigned flags;
	char rel[];
};

/*
 * A watch descriptor whose IN_IGNORED is still in the queue: events for it up
 * to and including that IN_IGNORED belong to the removed watch and are
 * dropped, even if the kernel already handed the number out again.
 */
struct ign {
	struct hent he;
	int wd;
	unsigned count;
};

struct gw_watch {
	int fd;
	char *root;
	struct node *top;
	struct htab wds, names, pends, igns;
	struct pend *phead, *ptail;
	unsigned debounce, max_delay;
	int rescan_all, need_resync;
	uint32_t rescan_all_events;
	uint64_t rescan_all_first;
	uint64_t events, overflows, failures;
	int last_failure; /* errno of the last failed inotify_add_watch */
	char cur[WATCH_PATH_MAX];
	_Alignas(8) char buf[64 * 1024];
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- hash tables ---- */

static int ht_grow(struct htab *t)
{
	size_t nb = t->nb ? t->nb * 2 : 64, i;
	struct hent **b = calloc(nb, sizeof(*b));
	if (!b)
		return -1;
	for (i = 0; i < t->nb; i++) {
		struct hent *e = t->b[i], *nx;
		for (; e; e = nx) {
			nx = e->next;
			e->next = b[e->h & (nb - 1)];
			b[e->h & (nb - 1)] = e;
		}
	}
	free(t->b);
	t->b = b;
	t->nb = nb;
	return 0;
}

static void ht_add(struct htab *t, struct hent *e, uint64_t h)
{
	if (t->n >= t->nb)
		(void)ht_grow(t); /* failing to grow only lengthens the chains */
	e->h = h;
	e->next = t->b[h & (t->nb - 1)];
	t->b[h & (t->nb - 1)] = e;
	t->n++;
}

static void ht_del(struct htab *t, struct hent *e)
{
	struct hent **pp = &t->b[e->h & (t->nb - 1)];
	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = e->next;
		t->n--;
	}
}

#define HT_FIRST(t, h) ((t)->b[(h) & ((t)->nb - 1)])

static uint64_t mix(uint64_t h)
{
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	return h ^ (h >> 33);
}

static uint64_t hash_str(const char *s, uint64_t seed)
{
	uint64_t h = 1469598103934665603ULL ^ seed;
	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 1099511628211ULL;
	}
	return mix(h);
}

static uint64_t hash_wd(int wd)
{
	return mix((uint64_t)(unsigned)wd + 1);
}

static uint64_t hash_name(const struct node *parent, const char *name)
{
	return hash_str(name, mix((uint64_t)(uintptr_t)parent));
}

/* ---- nodes ---- */

static struct node *node_by_wd(const gw_watch *w, int wd)
{
	uint64_t h = hash_wd(wd);
	struct hent *e;
	for (e = HT_FIRST(&w->wds, h); e; e = e->next) {
		struct node *n = CONTAINER(e, struct node, by_wd);
		if (e->h == h && n->wd == wd)
			return n;
	}
	return NULL;
}

static struct node *node_child(const gw_watch *w, const struct node *p, const char *name)
{
	uint64_t h = hash_name(p, name);
	struct hent *e;
	for (e = HT_FIRST(&w->names, h); e; e = e->next) {
		struct node *n = CONTAINER(e, struct node, by_name);
		if (e->h == h && n->parent == p && !strcmp(n->name, name))
			return n;
	}
	return NULL;
}

static struct node *node_new(gw_watch *w, struct node *parent, const char *name, int kind)
{
	size_t len = strlen(name);
	struct node *n = calloc(1, sizeof(*n) + len + 1);
	if (!n) {
		gw_error_set(GW_ERROR, "out of memory");
		return NULL;
	}
	memcpy(n->name, name, len + 1);
	n->wd = -1;
	n->kind = (unsigned char)kind;
	n->parent = parent;
	if (parent) {
		n->next = parent->child;
		if (n->next)
			n->next->prev = n;
		parent->child = n;
		ht_add(&w->names, &n->by_name, hash_name(parent, name));
	}
	return n;
}

static int node_depth(const struct node *n)
{
	int d = 0;
	for (; n->parent; n = n->parent)
		d++;
	return d;
}

/* The path relative to the root ("" for the root); -1 if longer than cap allows. */
static int node_rel(const struct node *n, char *buf, size_t cap)
{
	const struct node *p;
	size_t len = 0, pos;
	for (p = n; p->parent; p = p->parent)
		len += strlen(p->name) + 1;
	if (len == 0) {
		buf[0] = '\0';
		return 0;
	}
	if (len > cap) /* len counts one '/' too many: room for the NUL */
		return -1;
	pos = len - 1;
	buf[pos] = '\0';
	for (p = n; p->parent; p = p->parent) {
		size_t l = strlen(p->name);
		pos -= l;
		memcpy(buf + pos, p->name, l);
		if (pos)
			buf[--pos] = '/';
	}
	return (int)(len - 1);
}

static int node_path(const gw_watch *w, const struct node *n, char *buf, size_t cap)
{
	size_t rl = strlen(w->root);
	int sep = rl > 0 && w->root[rl - 1] != '/';
	if (!n->parent)
		return snprintf(buf, cap, "%s", w->root) < (int)cap ? 0 : -1;
	if (rl + (size_t)sep + 1 > cap)
		return -1;
	memcpy(buf, w->root, rl);
	if (sep)
		buf[rl++] = '/';
	return node_rel(n, buf + rl, cap - rl) < 0 ? -1 : 0;
}

static struct node *repo_of(struct node *n)
{
	while (n && n->kind != N_REPO)
		n = n->parent;
	return n;
}

static int is_lock(const char *name)
{
	size_t l = strlen(name);
	return l >= 5 && !strcmp(name + l - 5, ".lock");
}

/* ---- pending events ---- */

static void flag_rescan_all(gw_watch *w)
{
	if (!w->rescan_all) {
		w->rescan_all = 1;
		w->rescan_all_first = now_ms();
		w->rescan_all_events = 0;
	}
	w->rescan_all_events++;
}

static void pend_free(gw_watch *w, struct pend *p)
{
	ht_del(&w->pends, &p->by_rel);
	if (p->prev)
		p->prev->next = p->next;
	else
		w->phead = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		w->ptail = p->prev;
	free(p);
}

static void pend_mark(gw_watch *w, const char *rel, unsigned flag)
{
	uint64_t h = hash_str(rel, 0), now = now_ms();
	struct pend *p = NULL;
	struct hent *e;
	for (e = HT_FIRST(&w->pends, h); e; e = e->next) {
		struct pend *q = CONTAINER(e, struct pend, by_rel);
		if (e->h == h && !strcmp(q->rel, rel)) {
			p = q;
			break;
		}
	}
	if (!p) {
		size_t len = strlen(rel);
		if (!(p = calloc(1, sizeof(*p) + len + 1))) {
			flag_rescan_all(w); /* cannot remember it: make the caller look at everything */
			return;
		}
		memcpy(p->rel, rel, len + 1);
		p->first = now;
		p->prev = w->ptail;
		if (w->ptail)
			w->ptail->next = p;
		else
			w->phead = p;
		w->ptail = p;
		ht_add(&w->pends, &p->by_rel, h);
	}
	p->last = now;
	p->count++;
	switch (flag) {
	case P_DELETED: /* whatever happened before, the repository is gone now */
		p->flags = P_DELETED;
		break;
	case P_CREATED: /* a new repository is examined in full: CHANGED is implied */
		p->flags = (p->flags & ~(unsigned)P_CHANGED) | P_CREATED;
		break;
	case P_CHANGED:
		if (!(p->flags & P_CREATED) && !(p->flags & P_DELETED))
			p->flags |= P_CHANGED;
		break;
	default:
		p->flags |= flag;
	}
}

static void pend_node(gw_watch *w, const struct node *n, unsigned flag)
{
	char rel[WATCH_PATH_MAX];
	if (node_rel(n, rel, sizeof(rel)) < 0)
		flag_rescan_all(w);
	else
		pend_mark(w, rel, flag);
}

/* ---- watches ---- */

static void ign_add(gw_watch *w, int wd)
{
	uint64_t h = hash_wd(wd);
	struct hent *e;
	struct ign *g;
	for (e = HT_FIRST(&w->igns, h); e; e = e->next) {
		g = CONTAINER(e, struct ign, he);
		if (e->h == h && g->wd == wd) {
			g->count++;
			return;
		}
	}
	if (!(g = calloc(1, sizeof(*g)))) {
		flag_rescan_all(w);
		return;
	}
	g->wd = wd;
	g->count = 1;
	ht_add(&w->igns, &g->he, h);
}

/* Is this event for a removed watch? Consumes the entry at its IN_IGNORED. */
static int ign_check(gw_watch *w, int wd, int is_ignored)
{
	uint64_t h = hash_wd(wd);
	struct hent *e;
	for (e = HT_FIRST(&w->igns, h); e; e = e->next) {
		struct ign *g = CONTAINER(e, struct ign, he);
		if (e->h == h && g->wd == wd) {
			if (is_ignored && --g->count == 0) {
				ht_del(&w->igns, &g->he);
				free(g);
			}
			return 1;
		}
	}
	return 0;
}

/*
 * Add n's watch. Returns 0, -ENOENT/-ENOTDIR when the directory is gone
 * (nothing to report), or another -errno with the error message set.
 */
static int node_watch(gw_watch *w, struct node *n, const char *path)
{
	struct stat st;
	struct node *old;
	int wd, err;

	if (lstat(path, &st) < 0)
		return errno == ENOTDIR ? -ENOTDIR : -ENOENT;
	if (!S_ISDIR(st.st_mode))
		return -ENOTDIR;
	wd = inotify_add_watch(w->fd, path, WATCH_MASK);
	if (wd < 0) {
		err = errno;
		if (err == ENOENT || err == ENOTDIR)
			return -err;
		w->failures++;
		w->last_failure = err;
		gw_error_set_errno(GW_EIO, "cannot watch %s%s", path,
				   err == ENOSPC ? " (inotify watch limit fs.inotify.max_user_watches reached)" : "");
		return -err;
	}
	n->ino = st.st_ino;
	n->dev = st.st_dev;
	if (n->wd == wd)
		return 0;
	if ((old = node_by_wd(w, wd)) != NULL) {
		/*
		 * The kernel gave a number we already map. Same directory: it was
		 * moved and we have not read that yet; the new node owns the watch
		 * and the stale one is dropped when its move is read. Another
		 * directory: the number was freed and reused, so the old watch's
		 * IN_IGNORED is still queued and must not hit the new node.
		 */
		ht_del(&w->wds, &old->by_wd);
		old->wd = -1;
		if (old->ino != n->ino || old->dev != n->dev)
			ign_add(w, wd);
	}
	if (n->wd >= 0) {
		ht_del(&w->wds, &n->by_wd);
		inotify_rm_watch(w->fd, n->wd);
		ign_add(w, n->wd);
	}
	n->wd = wd;
	ht_add(&w->wds, &n->by_wd, hash_wd(wd));
	return 0;
}

static void node_unwatch(gw_watch *w, struct node *n, enum rm_mode mode)
{
	if (n->wd < 0)
		return;
	if (mode == RM_LIVE)
		inotify_rm_watch(w->fd, n->wd); /* EINVAL: already going, its IN_IGNORED is queued */
	if (mode != RM_GONE)
		ign_add(w, n->wd);
	ht_del(&w->wds, &n->by_wd);
	n->wd = -1;
}

/* Remove n and everything below it; report=1 reports repositories as DELETED. */
static void node_remove(gw_watch *w, struct node *n, enum rm_mode mode, int report)
{
	while (n->child)
		node_remove(w, n->child, RM_LIVE, report);
	if (n->kind == N_REPO && report)
		pend_node(w, n, P_DELETED);
	node_unwatch(w, n, mode);
	if (n->parent) {
		ht_del(&w->names, &n->by_name);
		if (n->prev)
			n->prev->next = n->next;
		else
			n->parent->child = n->next;
		if (n->next)
			n->next->prev = n->prev;
	}
	free(n);
}

static void node_clear_children(gw_watch *w, struct node *n, int report)
{
	while (n->child)
		node_remove(w, n->child, RM_LIVE, report);
}

/* ---- repositories ---- */

/* A repository whose watches failed: give them all back, report RESCAN, keep the node for DELETED. */
static void repo_degrade(gw_watch *w, struct node *r)
{
	node_clear_children(w, r, 0);
	node_unwatch(w, r, RM_LIVE);
	r->flags |= F_DEGRADED;
	pend_node(w, r, P_RESCAN);
}

/* Is r still a repository? If not, report DELETED and keep watching it as a plain directory. */
static int repo_check(gw_watch *w, struct node *r)
{
	char path[WATCH_PATH_MAX];
	if (node_path(w, r, path, sizeof(path)) == 0 && gw_repo_is_bare(path))
		return 1;
	pend_node(w, r, P_DELETED);
	/*
	 * Usually `rm -rf` at work: do not scan what is left (objects/xx would
	 * cost hundreds of watches for nothing); directories created in it later
	 * are still followed.
	 */
	node_clear_children(w, r, 0);
	r->kind = N_DIR;
	r->flags &= (unsigned char)~F_DEGRADED;
	return 0;
}

/* Is n info/ (only its file attributes is kept: nothing below it is watched)? */
static int is_info(const struct node *n)
{
	return n->kind == N_FILES && n->parent && n->parent->kind == N_REPO && !strcmp(n->name, "info");
}

/*
 * Watch refs directory n (or a repository files' directory: N_FILES) and
 * every directory below it, of the same kind. mark=1 (a directory that
 * appeared in a watched repository) reports CHANGED if files are found in
 * it, as they may have been written before the watch existed. May free n
 * (vanished). Returns 0 or -errno of a watch failure.
 */
static int refs_sync(gw_watch *w, struct node *n, int mark, int depth)
{
	char path[WATCH_PATH_MAX];
	struct node *repo = repo_of(n);
	struct dirent *de;
	int rc = 0, changed = 0;
	DIR *d;

	if (node_path(w, n, path, sizeof(path)) < 0) {
		gw_error_set(GW_EIO, "path too long below %s", w->root);
		return -ENAMETOOLONG;
	}
	if (n->wd < 0) {
		rc = node_watch(w, n, path);
		if (rc == -ENOENT || rc == -ENOTDIR) {
			node_remove(w, n, RM_LIVE, 0);
			return 0;
		}
		if (rc < 0)
			return rc;
	}
	if (!(d = opendir(path)))
		return 0; /* vanished since: its IN_DELETE_SELF cleans up */
	while ((de = readdir(d)) != NULL) {
		unsigned char type = de->d_type;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") || (n->kind == N_REFS && is_lock(de->d_name)))
			continue;
		if (type == DT_UNKNOWN) {
			struct stat st;
			if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
				continue;
			type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
		}
		if (type == DT_DIR) {
			struct node *c;
			if (depth >= REFS_DEPTH_MAX || is_info(n))
				continue;
			if (!(c = node_child(w, n, de->d_name)) && !(c = node_new(w, n, de->d_name, n->kind))) {
				rc = -ENOMEM;
				break;
			}
			if ((rc = refs_sync(w, c, mark, depth + 1)) < 0)
				break;
		} else if (mark) {
			changed = 1;
		}
	}
	closedir(d);
	if (changed && repo)
		pend_node(w, repo, P_CHANGED);
	return rc;
}

/*
 * Watch r/name (info/ or custom_hooks/), when it is a directory (not a link),
 * and what is below it. mark: it just appeared (CHANGED when it holds
 * files). Returns 0 or -errno of a watch failure.
 */
static int files_dir_sync(gw_watch *w, struct node *r, const char *name, int mark)
{
	char path[WATCH_PATH_MAX];
	struct node *c = node_child(w, r, name);
	struct stat st;
	size_t pl;
	if (node_path(w, r, path, sizeof(path)) < 0)
		return -ENAMETOOLONG;
	pl = strlen(path);
	if (snprintf(path + pl, sizeof(path) - pl, "/%s", name) >= (int)(sizeof(path) - pl))
		return -ENAMETOOLONG;
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		if (c)
			node_remove(w, c, RM_LIVE, 0);
		return 0;
	}
	if (c && (c->ino != (uint64_t)st.st_ino || c->dev != (uint64_t)st.st_dev)) {
		node_remove(w, c, RM_LIVE, 0); /* replaced by another directory */
		c = NULL;
	}
	if (!c && !(c = node_new(w, r, name, N_FILES)))
		return -ENOMEM;
	return refs_sync(w, c, mark, 0);
}

/*
 * Watch repository r (its directory, refs/, info/ and custom_hooks/). Returns 0 (watched, or
 * degraded with RESCAN reported) or -ENOENT/-ENOTDIR if it vanished.
 */
static int repo_sync(gw_watch *w, struct node *r, const char *path)
{
	struct node *refs;
	int rc;
	if (r->wd < 0) {
		rc = node_watch(w, r, path);
		if (rc == -ENOENT || rc == -ENOTDIR)
			return rc;
		if (rc < 0) {
			repo_degrade(w, r);
			return 0;
		}
	}
	if (!(refs = node_child(w, r, "refs")) && !(refs = node_new(w, r, "refs", N_REFS))) {
		repo_degrade(w, r);
		return 0;
	}
	if (refs_sync(w, refs, 0, 0) < 0 || files_dir_sync(w, r, "info", 0) < 0 ||
	    files_dir_sync(w, r, "custom_hooks", 0) < 0) {
		repo_degrade(w, r);
		return 0;
	}
	r->flags &= (unsigned char)~F_DEGRADED;
	return 0;
}

/* ---- plain directories ---- */

static void child_sync(gw_watch *w, struct node *p, const char *name, int report, int depth);

/* Bring every subdirectory of plain directory n (at path) up to date. */
static void dir_sync(gw_watch *w, struct node *n, const char *path, int report, int depth)
{
	struct dirent *de;
	DIR *d = opendir(path);
	if (!d)
		return;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
			continue; /* DT_LNK included: symlinks are not followed */
		child_sync(w, n, de->d_name, report, depth + 1);
	}
	closedir(d);
}

/*
 * Bring p/name up to date with the filesystem, idempotently: watch it if it is
 * a directory (recursively), notice it became or stopped being a repository,
 * drop it if it is gone or was replaced. report=0 (the initial scan) reports
 * no CREATED/DELETED. depth is name's depth below the root.
 */
static void child_sync(gw_watch *w, struct node *p, const char *name, int report, int depth)
{
	char path[WATCH_PATH_MAX];
	struct stat st;
	struct node *c;
	int rc, created = 0;
	size_t pl;

	if (name[0] == '.' || depth > DIR_DEPTH_MAX)
		return;
	if (node_path(w, p, path, sizeof(path)) < 0)
		return;
	pl = strlen(path);
	if (snprintf(path + pl, sizeof(path) - pl, "%s%s", pl && path[pl - 1] == '/' ? "" : "/", name) >=
	    (int)(sizeof(path) - pl))
		return;
	c = node_child(w, p, name);
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode)) {
		if (c)
			node_remove(w, c, RM_LIVE, report);
		return;
	}
	if (c && (c->ino != (uint64_t)st.st_ino || c->dev != (uint64_t)st.st_dev)) {
		node_remove(w, c, RM_LIVE, report); /* replaced by another directory */
		c = NULL;
	}
	if (!c) {
		if (!(c = node_new(w, p, name, N_DIR))) {
			flag_rescan_all(w);
			return;
		}
		c->ino = st.st_ino;
		c->dev = st.st_dev;
		created = 1;
	}
	if (c->wd < 0) {
		/* Watch before looking inside: whatever is created after the look is then seen. */
		rc = node_watch(w, c, path);
		if (rc == -ENOENT || rc == -ENOTDIR) {
			node_remove(w, c, RM_LIVE, report && !created);
			return;
		}
		if (rc < 0) {
			if (c->kind == N_DIR && gw_repo_is_bare(path)) {
				c->kind = N_REPO;
				if (report)
					pend_node(w, c, P_CREATED);
			}
			c->flags |= F_DEGRADED;
			pend_node(w, c, P_RESCAN);
			return;
		}
		c->flags &= (unsigned char)~F_DEGRADED;
	}
	if (gw_repo_is_bare(path)) {
		if (c->kind == N_DIR) {
			node_clear_children(w, c, report); /* discover does not descend into repositories */
			c->kind = N_REPO;
			if (repo_sync(w, c, path) < 0) {
				node_remove(w, c, RM_LIVE, 0);
				return;
			}
			if (report)
				pend_node(w, c, P_CREATED);
		} else if (repo_sync(w, c, path) < 0) {
			node_remove(w, c, RM_LIVE, report);
		}
	} else if (c->kind == N_REPO) {
		repo_check(w, c);
	} else {
		dir_sync(w, c, path, report, depth);
	}
}

/* Drop every node whose directory vanished or was replaced (after lost events). */
static void prune(gw_watch *w, struct node *n)
{
	char path[WATCH_PATH_MAX];
	struct node *c, *nx;
	struct stat st;
	for (c = n->child; c; c = nx) {
		nx = c->next;
		if (node_path(w, c, path, sizeof(path)) < 0 || lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
		    c->ino != (uint64_t)st.st_ino || c->dev != (uint64_t)st.st_dev) {
			struct node *repo = c->kind == N_REFS || c->kind == N_FILES ? repo_of(c) : NULL;
			node_remove(w, c, RM_LIVE, 1);
			if (repo)
				pend_node(w, repo, P_CHANGED);
			continue;
		}
		prune(w, c);
	}
}

/* ---- events ---- */

/* n's own directory is gone (deleted, moved, unmounted). */
static void node_gone(gw_watch *w, struct node *n, enum rm_mode mode)
{
	if (n == w->top) {
		/* The root itself went away: everything below is gone from where we look. */
		flag_rescan_all(w);
		node_clear_children(w, n, 1);
		node_unwatch(w, n, mode);
		return;
	}
	if (n->kind == N_REFS || n->kind == N_FILES) {
		struct node *repo = repo_of(n);
		int top = n->parent == repo && n->kind == N_REFS;
		node_remove(w, n, mode, 0);
		if (repo && (!top || repo_check(w, repo)))
			pend_node(w, repo, P_CHANGED);
		return;
	}
	node_remove(w, n, mode, 1);
}

static int created_mask(uint32_t mask)
{
	return (mask & (IN_CREATE | IN_MOVED_TO)) != 0;
}

static int gone_mask(uint32_t mask)
{
	return (mask & (IN_DELETE | IN_MOVED_FROM)) != 0;
}

static void dir_event(gw_watch *w, struct node *n, const char *name, uint32_t mask)
{
	struct node *c;
	if (n != w->top && (mask & (IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE)) &&
	    (!strcmp(name, "HEAD") || !strcmp(name, "objects") || !strcmp(name, "refs"))) {
		/* Maybe `git init --bare` in a directory already watched: it becomes a repository. */
		char path[WATCH_PATH_MAX], self[NAME_MAX + 1];
		if (node_path(w, n, path, sizeof(path)) == 0 && gw_repo_is_bare(path)) {
			snprintf(self, sizeof(self), "%s", n->name); /* child_sync may free n */
			child_sync(w, n->parent, self, 1, node_depth(n));
			return;
		}
	}
	if (!(mask & IN_ISDIR))
		return;
	if (created_mask(mask))
		child_sync(w, n, name, 1, node_depth(n) + 1);
	else if (gone_mask(mask) && (c = node_child(w, n, name)) != NULL)
		node_remove(w, c, RM_LIVE, 1);
}

static void repo_event(gw_watch *w, struct node *r, const char *name, uint32_t mask)
{
	struct node *c;
	if (!strcmp(name, "HEAD") || !strcmp(name, "packed-refs")) {
		if (!(mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM)))
			return;
		if (gone_mask(mask) && name[0] == 'H' && !repo_check(w, r))
			return;
		pend_node(w, r, P_CHANGED);
	} else if (!strcmp(name, "refs")) {
		c = node_child(w, r, "refs");
		if (gone_mask(mask)) {
			if (c)
				node_remove(w, c, RM_LIVE, 0);
			if (repo_check(w, r))
				pend_node(w, r, P_CHANGED);
		} else if (created_mask(mask) && (mask & IN_ISDIR)) {
			if (c)
				node_remove(w, c, RM_LIVE, 0);
			if (!(c = node_new(w, r, "refs", N_REFS)) || refs_sync(w, c, 1, 0) < 0)
				repo_degrade(w, r);
			pend_node(w, r, P_CHANGED);
		}
	} else if (!strcmp(name, "objects") && gone_mask(mask)) {
		repo_check(w, r);
	} else if (!strcmp(name, "config") || !strcmp(name, "description")) {
		/* The repository's own files (DESIGN.md 4.5): `git config` renames config.lock onto config. */
		if (mask & FILES_MASK)
			pend_node(w, r, P_CHANGED);
	} else if (!strcmp(name, "info") || !strcmp(name, "custom_hooks")) {
		if ((mask & IN_ISDIR) && (created_mask(mask) || gone_mask(mask))) {
			if ((c = node_child(w, r, name)))
				node_remove(w, c, RM_LIVE, 0);
			if (created_mask(mask) && files_dir_sync(w, r, name, 1) < 0)
				repo_degrade(w, r);
		}
		if (mask & FILES_MASK)
			pend_node(w, r, P_CHANGED);
	}
	/* Anything else (objects/, FETCH_HEAD, hooks/...) is not history. */
}

/* In info/ (only its attributes) or below custom_hooks/: everything but info/'s other names is a change. */
static void files_event(gw_watch *w, struct node *n, const char *name, uint32_t mask)
{
	struct node *repo = repo_of(n), *c;
	if (!repo || !(mask & FILES_MASK))
		return;
	if (is_info(n)) {
		if (!strcmp(name, "attributes"))
			pend_node(w, repo, P_CHANGED);
		return;
	}
	if ((mask & IN_ISDIR) && (created_mask(mask) || gone_mask(mask))) {
		if ((c = node_child(w, n, name)))
			node_remove(w, c, RM_LIVE, 0);
		if (created_mask(mask) && node_depth(n) - node_depth(repo) <= REFS_DEPTH_MAX &&
		    (!(c = node_new(w, n, name, N_FILES)) || refs_sync(w, c, 1, 0) < 0)) {
			repo_degrade(w, repo);
			return;
		}
	}
	pend_node(w, repo, P_CHANGED);
}

static void refs_event(gw_watch *w, struct node *n, const char *name, uint32_t mask)
{
	struct node *repo = repo_of(n), *c;
	if (!repo || is_lock(name))
		return; /* git's X.lock: only its rename onto X (IN_MOVED_TO) is a change */
	if (mask & IN_ISDIR) {
		c = node_child(w, n, name);
		if (created_mask(mask)) {
			if (c)
				node_remove(w, c, RM_LIVE, 0);
			if (node_depth(n) - node_depth(repo) > REFS_DEPTH_MAX)
				return;
			if (!(c = node_new(w, n, name, N_REFS)) || refs_sync(w, c, 1, 0) < 0)
				repo_degrade(w, repo);
		} else if (gone_mask(mask)) {
			if (c)
				node_remove(w, c, RM_LIVE, 0);
			pend_node(w, repo, P_CHANGED);
		}
		return;
	}
	if (mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_DELETE | IN_MOVED_FROM))
		pend_node(w, repo, P_CHANGED);
}

static void handle(gw_watch *w, const struct inotify_event *ev)
{
	struct node *n;
	const char *name = ev->len ? ev->name : "";

	w->events++;
	if (ev->mask & IN_Q_OVERFLOW) {
		w->overflows++;
		flag_rescan_all(w);
		w->need_resync = 1;
		return;
	}
	if (ign_check(w, ev->wd, (ev->mask & IN_IGNORED) != 0))
		return;
	if (!(n = node_by_wd(w, ev->wd)))
		return;
	if (ev->mask & IN_IGNORED) {
		node_gone(w, n, RM_GONE);
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_UNMOUNT)) {
		node_gone(w, n, RM_DYING);
		return;
	}
	if (ev->mask & IN_MOVE_SELF) {
		/* Usually already handled by the parent's IN_MOVED_FROM (then dropped above). */
		node_gone(w, n, RM_LIVE);
		return;
	}
	if (!name[0])
		return;
	switch (n->kind) {
	case N_DIR:
		dir_event(w, n, name, ev->mask);
		break;
	case N_REPO:
		repo_event(w, n, name, ev->mask);
		break;
	case N_FILES:
		files_event(w, n, name, ev->mask);
		break;
	default:
		refs_event(w, n, name, ev->mask);
	}
}

/* ---- public API ---- */

static void tree_free(struct node *n)
{
	while (n->child) {
		struct node *c = n->child;
		n->child = c->next;
		tree_free(c);
	}
	free(n);
}

void gw_watch_free(gw_watch *w)
{
	size_t i;
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd); /* releases every watch at once */
	if (w->top)
		tree_free(w->top);
	while (w->phead)
		pend_free(w, w->phead);
	for (i = 0; i < w->igns.nb; i++) {
		struct hent *e = w->igns.b[i], *nx;
		for (; e; e = nx) {
			nx = e->next;
			free(CONTAINER(e, struct ign, he));
		}
	}
	free(w->wds.b);
	free(w->names.b);
	free(w->pends.b);
	free(w->igns.b);
	free(w->root);
	free(w);
}

int gw_watch_new(gw_watch **out, const char *root, const gw_watch_options *opts)
{
	gw_watch_options def = GW_WATCH_OPTIONS_INIT;
	struct stat st;
	gw_watch *w;
	size_t len;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &def;
	if (!root || !*root)
		return gw_error_set(GW_EINVALID, "watch: no root directory given");
	if (opts->max_delay_ms < opts->debounce_ms)
		return gw_error_set(GW_EINVALID, "watch: max delay %u ms is shorter than the debounce %u ms",
				    opts->max_delay_ms, opts->debounce_ms);
	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
		return gw_error_set(GW_ENOTFOUND, "root %s does not exist or is not a directory", root);
	if (!(w = calloc(1, sizeof(*w))))
		return gw_error_set(GW_ERROR, "out of memory");
	w->fd = -1;
	w->debounce = opts->debounce_ms;
	w->max_delay = opts->max_delay_ms;
	if (!(w->root = gw_fs_absolute(root)) || ht_grow(&w->wds) < 0 || ht_grow(&w->names) < 0 ||
	    ht_grow(&w->pends) < 0 || ht_grow(&w->igns) < 0 || !(w->top = node_new(w, NULL, "", N_DIR))) {
		gw_watch_free(w);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	for (len = strlen(w->root); len > 1 && w->root[len - 1] == '/';)
		w->root[--len] = '\0';
	if ((w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot create an inotify instance (fs.inotify.max_user_instances?)");
		gw_watch_free(w);
		return rc;
	}
	if ((rc = node_watch(w, w->top, w->root)) < 0) {
		if (rc == -ENOENT || rc == -ENOTDIR)
			rc = gw_error_set(GW_ENOTFOUND, "root %s does not exist or is not a directory", w->root);
		else
			rc = gw_error_prefix("watching the root");
		gw_watch_free(w);
		return rc;
	}
	dir_sync(w, w->top, w->root, 0, 0);
	*out = w;
	return 0;
}

int gw_watch_fd(const gw_watch *w)
{
	return w->fd;
}

int gw_watch_process(gw_watch *w)
{
	int total = 0, round;
	for (round = 0; round < READ_ROUNDS_MAX; round++) {
		ssize_t len = read(w->fd, w->buf, sizeof(w->buf));
		size_t off = 0;
		if (len < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				break;
			return gw_error_set_errno(GW_EIO, "cannot read inotify events for %s", w->root);
		}
		if (len == 0)
			break;
		while (off + sizeof(struct inotify_event) <= (size_t)len) {
			const struct inotify_event *ev = (const struct inotify_event *)(const void *)(w->buf + off);
			handle(w, ev);
			total++;
			off += sizeof(struct inotify_event) + ev->len;
		}
	}
	if (w->need_resync) {
		/* Events were lost: our tree may miss directories or hold dead ones. */
		w->need_resync = 0;
		(void)gw_watch_rescan(w);
	}
	return total;
}

static uint64_t pend_due(const gw_watch *w, const struct pend *p)
{
	uint64_t a = p->last + w->debounce, b = p->first + w->max_delay;
	return a < b ? a : b;
}

int gw_watch_next_timeout_ms(const gw_watch *w)
{
	uint64_t now, best = UINT64_MAX;
	const struct pend *p;
	if (w->rescan_all)
		return 0;
	if (!w->phead)
		return -1;
	for (p = w->phead; p; p = p->next) {
		uint64_t due = pend_due(w, p);
		if (due < best)
			best = due;
	}
	now = now_ms();
	if (best <= now)
		return 0;
	return best - now > INT_MAX ? INT_MAX : (int)(best - now);
}

int gw_watch_take(gw_watch *w, gw_watch_event *out)
{
	static const unsigned order[] = {P_DELETED, P_CREATED, P_CHANGED, P_RESCAN};
	static const gw_watch_kind kinds[] = {GW_WATCH_DELETED, GW_WATCH_CREATED, GW_WATCH_CHANGED, GW_WATCH_RESCAN};
	uint64_t now = now_ms();
	struct pend *p, *nx;
	size_t i;

	memset(out, 0, sizeof(*out));
	if (w->rescan_all) {
		w->rescan_all = 0;
		out->kind = GW_WATCH_RESCAN_ALL;
		out->events = w->rescan_all_events;
		out->first_ms = w->rescan_all_first;
		return 1;
	}
	/* Oldest first: in a burst these are due first, so the walk is short. */
	for (p = w->phead; p; p = nx) {
		nx = p->next;
		if (!p->flags) {
			pend_free(w, p);
			continue;
		}
		if (pend_due(w, p) > now)
			continue;
		for (i = 0; !(p->flags & order[i]); i++)
			;
		out->kind = kinds[i];
		out->events = p->count;
		out->first_ms = p->first;
		snprintf(w->cur, sizeof(w->cur), "%s", p->rel);
		out->repo = w->cur;
		p->flags &= ~order[i];
		if (!p->flags)
			pend_free(w, p);
		return 1;
	}
	return 0;
}

int gw_watch_rescan(gw_watch *w)
{
	int rc;
	prune(w, w->top);
	if (w->top->wd < 0 && (rc = node_watch(w, w->top, w->root)) < 0) {
		if (rc == -ENOENT || rc == -ENOTDIR)
			return gw_error_set(GW_ENOTFOUND, "root %s does not exist or is not a directory", w->root);
		return gw_error_prefix("watching the root");
	}
	dir_sync(w, w->top, w->root, 1, 0);
	return 0;
}

static int collect_repos(const gw_watch *w, const struct node *n, char ***list, size_t *count, size_t *cap)
{
	const struct node *c;
	if (n->kind == N_REPO) {
		char rel[WATCH_PATH_MAX];
		if (GW_ARRAY_RESERVE(*list, *cap, *count + 1) < 0)
			return GW_ERROR;
		if (node_rel(n, rel, sizeof(rel)) < 0 || !((*list)[*count] = strdup(rel)))
			return gw_error_set(GW_ERROR, "out of memory");
		(*count)++;
		return 0;
	}
	for (c = n->child; c; c = c->next)
		if (collect_repos(w, c, list, count, cap) < 0)
			return GW_ERROR;
	return 0;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int gw_watch_repos(const gw_watch *w, char ***out, size_t *count)
{
	char **list = NULL;
	size_t n = 0, cap = 0;
	*out = NULL;
	*count = 0;
	if (collect_repos(w, w->top, &list, &n, &cap) < 0) {
		gw_repo_list_free(list, n);
		return GW_ERROR;
	}
	if (n)
		qsort(list, n, sizeof(char *), str_cmp);
	*out = list;
	*count = n;
	return 0;
}

static void count_nodes(const struct node *n, struct gw_watch_stats *st)
{
	const struct node *c;
	if (n->kind == N_REPO)
		st->repos++;
	else if (n->kind == N_DIR && n->wd >= 0)
		st->dirs++;
	if (n->flags & F_DEGRADED)
		st->degraded++;
	for (c = n->child; c; c = c->next)
		count_nodes(c, st);
}

int gw_watch_last_failure(const gw_watch *w)
{
	return w->last_failure;
}

void gw_watch_stats(const gw_watch *w, struct gw_watch_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->watches = w->wds.n;
	out->pending = w->pends.n;
	out->events = w->events;
	out->overflows = w->overflows;
	out->failures = w->failures;
	count_nodes(w->top, out);
}

const char *gw_watch_kind_name(gw_watch_kind kind)
{
	switch (kind) {
	case GW_WATCH_CHANGED:
		return "changed";
	case GW_WATCH_CREATED:
		return "created";
	case GW_WATCH_DELETED:
		return "deleted";
	case GW_WATCH_RESCAN:
		return "rescan";
	case GW_WATCH_RESCAN_ALL:
		return "rescan-all";
	}
	return "unknown";
}
