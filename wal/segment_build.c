/*
 * Building log segments (see segment_build.h and DESIGN.md 10.2).
 *
 * Objects: starting from the new value of every updated ref, walk commits
 * (parents, tree), trees (entries) and tags (target), and stop at any object
 * already archived in the generation (the object set) whose closure is
 * archived: everything such an object reaches was archived with it. Commits
 * where the walk stopped become the bundle's prerequisites. Up to
 * SMALL_PACK_OBJECTS new objects are packed in-process (whole objects: no
 * process to start); more are packed by `git pack-objects`, which reuses the
 * repository's deltas.
 *
 * One exception to stopping: a full backup's snapshot holds every object
 * present when it listed them, which can include some loose objects of a
 * push still being written (its refs not yet updated: git writes objects
 * first), without the rest. Such an object is archived but its closure is
 * not. Packs appear whole (the .idx last), and the archived refs' values are
 * closed (the object set marks them), so only a loose object of the full
 * backup not known closed is in doubt: the walk goes through it (without
 * storing it again) and stores whatever it reaches that is missing. Each is
 * proven once per generation (gw_objset_mark_closed).
 */
#include "wal/segment_build.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/layout.h"
#include "pack/pack.h"

#include "gitwal/odb.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* Up to this many new objects, pack them in-process (whole objects); beyond, git pack-objects reuses deltas. */
#define SMALL_PACK_OBJECTS 256

extern char **environ;

/* ---- diff ---- */

typedef struct {
	gw_update *items;
	size_t n, cap;
	size_t hl; /* the ids' length: 20 (sha1) or 32 (sha256) */
} update_list;

static gw_update *push_update(update_list *l)
{
	if (GW_ARRAY_RESERVE(l->items, l->cap, l->n + 1) < 0)
		return NULL;
	memset(&l->items[l->n], 0, sizeof(gw_update));
	return &l->items[l->n++];
}

/* A ref's value as a segment records it: hl bytes in hex (40 or 64 digits), or "" when it has none. */
static void hex_or_empty(char *out, const gw_ref *r, size_t hl)
{
	if (!r || r->dangling || r->symbolic)
		out[0] = '\0';
	else
		gw_hex_encode(out, r->oid, hl);
}

/* Whether two direct refs (either may be NULL: absent) have the same value. */
static int same_value(const gw_ref *a, const gw_ref *b, size_t hl)
{
	int has_a = a && !a->dangling, has_b = b && !b->dangling;
	return has_a == has_b && (!has_a || memcmp(a->oid, b->oid, hl) == 0);
}

/* Record how one ref (old, cur: either may be NULL) changed. */
static int diff_one(update_list *l, const char *name, const gw_ref *old, const gw_ref *cur, int64_t t)
{
	const char *ot = old && old->symbolic ? old->symbolic : NULL, *nt = cur && cur->symbolic ? cur->symbolic : NULL;
	gw_update *u;
	if (ot || nt) {
		int rc;
		if (ot && nt && !strcmp(ot, nt))
			return 0;
		/*
		 * A ref turning from direct to symbolic first loses its value; one
		 * turning symbolic to direct gains it after: replayed in order, the
		 * updates end in the new state.
		 */
		if (old && !ot && !old->dangling && (rc = diff_one(l, name, old, NULL, t)) < 0)
			return rc;
		if (!(u = push_update(l)))
			return gw_error_set(GW_ERROR, "out of memory");
		u->kind = GW_UPDATE_SYMREF;
		u->time_us = t;
		u->ref = strdup(name);
		u->old_target = strdup(ot ? ot : "");
		u->new_target = strdup(nt ? nt : "");
		if (!u->ref || !u->old_target || !u->new_target)
			return gw_error_set(GW_ERROR, "out of memory");
		if (cur && !nt && !cur->dangling)
			return diff_one(l, name, NULL, cur, t);
		return 0;
	}
	if (same_value(old, cur, l->hl))
		return 0;
	if (!(u = push_update(l)))
		return gw_error_set(GW_ERROR, "out of memory");
	u->kind = GW_UPDATE_REF;
	u->time_us = t;
	if (!(u->ref = strdup(name)))
		return gw_error_set(GW_ERROR, "out of memory");
	hex_or_empty(u->old_oid, old, l->hl);
	hex_or_empty(u->new_oid, cur, l->hl);
	return 0;
}

/* Every ref of old and cur, in one merge pass. */
static int diff_all(update_list *l, const gw_refstate *old, const gw_refs_view *cur, int64_t t)
{
	gw_refs_pos pos = {0, 0};
	gw_ref c;
	size_t i = 0;
	int have = cur && gw_refs_view_next(cur, &pos, &c), rc = 0;
	while (rc == 0 && (i < old->nrefs || have)) {
		int cmp = i == old->nrefs ? 1 : !have ? -1 : strcmp(old->refs[i].name, c.name);
		if (cmp < 0) {
			rc = diff_one(l, old->refs[i].name, &old->refs[i], NULL, t);
			i++;
			continue;
		}
		rc = diff_one(l, c.name, cmp == 0 ? &old->refs[i] : NULL, &c, t);
		if (cmp == 0)
			i++;
		have = gw_refs_view_next(cur, &pos, &c);
	}
	return rc;
}

/*
 * Only the refs loose in seen or cur: the others are in packed-refs, the same
 * for both. Their names, both lists sorted, are merged so the updates come in
 * name order, as from diff_all.
 */
static int diff_loose(update_list *l, const gw_refstate *old, const gw_refs_view *seen, const gw_refs_view *cur,
		      int64_t t)
{
	size_t i = 0, j = 0;
	int rc = 0;
	while (rc == 0 && (i < seen->nloose || j < cur->nloose)) {
		int cmp = i == seen->nloose ? 1 : j == cur->nloose ? -1 : strcmp(seen->loose[i].name, cur->loose[j].name);
		const char *name = cmp < 0 ? seen->loose[i].name : cur->loose[j].name;
		gw_ref c;
		rc = diff_one(l, name, gw_refstate_find(old, name), gw_refs_view_find(cur, name, &c) ? &c : NULL, t);
		i += cmp <= 0;
		j += cmp >= 0;
	}
	return rc;
}

int gw_segment_diff(const gw_refstate *old, const gw_refs_view *seen, const gw_refs_view *cur, size_t hash_len,
		    int64_t time_us, gw_update **updates, size_t *n)
{
	update_list l = {0};
	int rc;
	l.hl = hash_len;
	*updates = NULL;
	*n = 0;
	if (seen && cur && seen->packed == cur->packed)
		rc = diff_loose(&l, old, seen, cur, time_us);
	else
		rc = diff_all(&l, old, cur, time_us);
	if (rc == 0 && cur) {
		/* HEAD: its target when symbolic, its value when detached. */
		gw_ref oh = old->head, ch = cur->head;
		if (oh.symbolic && ch.symbolic) {
			oh.dangling = ch.dangling = 1; /* compare targets only */
		}
		rc = diff_one(&l, "HEAD", old->head.name ? &oh : NULL, &ch, time_us);
	}
	if (rc < 0) {
		gw_updates_free(l.items, l.n);
		return rc;
	}
	*updates = l.items;
	*n = l.n;
	return 0;
}


/* ---- the walk ---- */

/* Ids of w->hl bytes (sets, lists); the stack's entries carry one byte more: whether the id is a blob. */
typedef struct {
	unsigned char *slots; /* width-byte ids; all-zero = empty */
	size_t cap, used, width;
} oid_set;

static size_t slot_of(const unsigned char *oid, size_t cap)
{
	size_t h;
	memcpy(&h, oid, sizeof(h));
	return h & (cap - 1);
}

static int set_insert(oid_set *s, const unsigned char *oid)
{
	static const unsigned char zero[GW_HASH_MAX];
	size_t i, w = s->width;
	if ((s->used + 1) * 2 > s->cap) {
		oid_set bigger = {calloc(s->cap ? s->cap * 2 : 1024, w), s->cap ? s->cap * 2 : 1024, 0, w};
		if (!bigger.slots)
			return gw_error_set(GW_ERROR, "out of memory");
		for (i = 0; i < s->cap; i++)
			if (memcmp(s->slots + i * w, zero, w))
				set_insert(&bigger, s->slots + i * w);
		free(s->slots);
		*s = bigger;
	}
	for (i = slot_of(oid, s->cap);; i = (i + 1) & (s->cap - 1)) {
		unsigned char *slot = s->slots + i * w;
		if (!memcmp(slot, oid, w))
			return 0;
		if (!memcmp(slot, zero, w)) {
			memcpy(slot, oid, w);
			s->used++;
			return 1;
		}
	}
}

typedef struct {
	unsigned char *items;
	size_t n, cap, width;
} oid_list;

/* Append an entry: its first `len` bytes from oid (the rest, if any, zero). */
static unsigned char *list_push_n(oid_list *l, const unsigned char *oid, size_t len)
{
	unsigned char *e;
	if (gw_array_reserve(&l->items, &l->cap, l->n + 1, l->width) < 0) /* entries of width bytes */
		return NULL;
	e = l->items + l->n++ * l->width;
	memset(e, 0, l->width);
	memcpy(e, oid, len);
	return e;
}

static int list_push(oid_list *l, const unsigned char *oid)
{
	return list_push_n(l, oid, l->width) ? 0 : GW_ERROR;
}

typedef struct {
	const char *rel;
	const char *path;
	gw_odb *odb;
	size_t hl;
	gw_objset *set;
	gw_objset *pool_set;   /* a pooled member's pool's archived objects, or NULL */
	const char *pool_path; /* ... and the live pool */
	oid_set seen;
	oid_list stack; /* ids to expand, each followed by a byte: 1 when its tree entry said blob */
	oid_list found, prereqs;
	oid_list verify; /* archived by the full backup, closure in doubt: walked, not stored */
	oid_list proven; /* archived by the full backup, closed once this segment is stored */
} walker;

/* The walk's lists (not its object reader, which a caller may share). */
static void walker_dispose(walker *w)
{
	free(w->seen.slots);
	free(w->stack.items);
	free(w->found.items);
	free(w->prereqs.items);
	free(w->verify.items);
	free(w->proven.items);
}

/* A loose object in the repository at repo (a packed one came in a whole pack). */
static int is_loose_in(const walker *w, const char *repo, const unsigned char *oid)
{
	char hex[GW_HEX_MAX], path[4200];
	struct stat st;
	gw_hex_encode(hex, oid, w->hl);
	snprintf(path, sizeof(path), "%s/objects/%.2s/%s", repo, hex, hex + 2);
	return stat(path, &st) == 0;
}

static int is_loose(const walker *w, const unsigned char *oid)
{
	return is_loose_in(w, w->path, oid);
}

/*
 * An object the member's generation does not hold, looked up in its pool's
 * archived set (DESIGN.md 19): 1 when the walk stops there (the restored
 * pool holds it with its closure), 0 to walk on. Only the pool's full
 * backup is in that set, so, as for the member's own full backup, a loose
 * object of the pool's (a fetch in flight when it was taken) is walked
 * through, not stored; it is not the member's to mark closed.
 */
static int visit_pool(walker *w, const unsigned char *oid, int parent_of_new_commit, int blob)
{
	int rc;
	if (!w->pool_set || (rc = gw_objset_has(w->pool_set, oid)) == 0)
		return 0;
	if (rc < 0)
		return rc;
	if ((rc = set_insert(&w->seen, oid)) <= 0)
		return rc < 0 ? rc : 1;
	if (parent_of_new_commit && (rc = list_push(&w->prereqs, oid)) < 0)
		return rc;
	if (!blob && is_loose_in(w, w->pool_path, oid) && (rc = list_push(&w->verify, oid)) < 0)
		return rc;
	return 1;
}

/*
 * blob: a tree entry says it is one. It reaches nothing, so it is never
 * read (as git's own walks do not read blobs); it is still stored and
 * packed in the order the walk meets it.
 */
static int visit(walker *w, const unsigned char *oid, int parent_of_new_commit, int blob)
{
	int rc = gw_objset_has(w->set, oid);
	if (rc < 0)
		return rc;
	if (rc == 1) {
		if (parent_of_new_commit && set_insert(&w->seen, oid) == 1)
			return list_push(&w->prereqs, oid);
		return 0;
	}
	if (rc == 2) {
		if ((rc = set_insert(&w->seen, oid)) <= 0)
			return rc;
		if ((rc = list_push(&w->proven, oid)) < 0 || (parent_of_new_commit && (rc = list_push(&w->prereqs, oid)) < 0))
			return rc;
		return !blob && is_loose(w, oid) ? list_push(&w->verify, oid) : 0;
	}
	if ((rc = visit_pool(w, oid, parent_of_new_commit, blob)) != 0)
		return rc < 0 ? rc : 0;
	if ((rc = set_insert(&w->seen, oid)) <= 0)
		return rc;
	{
		unsigned char *e = list_push_n(&w->stack, oid, w->hl);
		if (!e)
			return GW_ERROR;
		e[w->hl] = (unsigned char)blob;
	}
	return 0;
}

static int visit_link(void *payload, const unsigned char *oid, int parent, int blob)
{
	return visit(payload, oid, parent, blob);
}

static int expand(walker *w, const unsigned char *raw, int archived)
{
	gw_oid oid;
	int rc;
	gw_oid_from_raw(&oid, raw, w->hl);
	if (archived) {
		/* Only what it reaches matters: a blob reaches nothing (and is not inflated to learn it). */
		gw_object_t type;
		uint64_t size;
		if ((rc = gw_odb_read_header(w->odb, &oid, &type, &size)) < 0)
			return rc;
		if (type == GW_OBJECT_BLOB)
			return 0;
	}
	if ((rc = gw_odb_links(w->odb, &oid, NULL, visit_link, w)) == GW_ECORRUPT)
		gw_error_prefix("repository %s", w->rel);
	return rc;
}

static int walk_stack(walker *w);

static int walk_new_objects(walker *w, const gw_segment_spec *spec)
{
	size_t i;
	int rc = 0;
	for (i = 0; i < spec->nupdates && rc == 0; i++) {
		unsigned char oid[GW_HASH_MAX];
		if (spec->updates[i].kind != GW_UPDATE_REF || !*spec->updates[i].new_oid)
			continue;
		if (strlen(spec->updates[i].new_oid) != 2 * w->hl || gw_hex_decode(oid, spec->updates[i].new_oid, w->hl) < 0)
			return gw_error_set(GW_EINVALID, "repository %s: %s is not an object id of this repository (%s)",
					    spec->rel, spec->updates[i].new_oid, spec->updates[i].ref);
		rc = visit(w, oid, 1, 0);
	}
	return rc == 0 ? walk_stack(w) : rc;
}

/* Expand what is on the stack, and what is in doubt, until both are empty. */
static int walk_stack(walker *w)
{
	int rc = 0;
	while (rc == 0 && (w->stack.n || w->verify.n)) {
		unsigned char oid[GW_HASH_MAX + 1];
		if (w->stack.n) {
			memcpy(oid, w->stack.items + (--w->stack.n) * w->stack.width, w->stack.width);
			if ((rc = list_push(&w->found, oid)) == 0 && !oid[w->hl])
				rc = expand(w, oid, 0);
		} else {
			memcpy(oid, w->verify.items + (--w->verify.n) * w->hl, w->hl);
			rc = expand(w, oid, 1);
		}
	}
	return rc;
}

/* ---- writing ---- */

/* A pack of no objects: its header and its checksum, SHA-1 or SHA-256 (hl 20 or 32). */
static int write_empty_pack(gw_sink *out, size_t hl)
{
	unsigned char pack[12 + GW_HASH_MAX];
	memcpy(pack, "PACK\0\0\0\2\0\0\0\0", 12);
	gw_hash_buffer(hl == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256, pack, 12, pack + 12);
	return gw_sink_write(out, pack, 12 + hl);
}

/*
 * Have `git pack-objects` (which reuses the repository's deltas) write the
 * objects as pack + index files under scratch; their paths are returned.
 */
static int pack_objects(const char *rel, const char *path, const oid_list *objs, const char *scratch,
			char **pack_path, char **idx_path)
{
	char base[4200], gitdir[4200], hash[128] = "";
	char *argv[] = {"git", "pack-objects", "-q", "--delta-base-offset", base, NULL};
	posix_spawn_file_actions_t fa;
	int in[2], outp[2], devnull, status, rc;
	char **env;
	size_t nenv, i, got = 0;
	pid_t pid;
	FILE *f;

	*pack_path = *idx_path = NULL;
	snprintf(base, sizeof(base), "%s/seg-%ld", scratch, (long)getpid());
	for (nenv = 0; environ[nenv]; nenv++)
		;
	if (!(env = calloc(nenv + 2, sizeof(char *))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < nenv; i++)
		env[i] = environ[i];
	snprintf(gitdir, sizeof(gitdir), "GIT_DIR=%s", path);
	env[nenv] = gitdir;
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(outp, O_CLOEXEC) < 0) {
		free(env);
		return gw_error_set_errno(GW_EIO, "repository %s: pipe", rel);
	}
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, outp[1], 1);
	posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	rc = posix_spawnp(&pid, "git", &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(outp[1]);
	close(devnull);
	free(env);
	if (rc != 0) {
		close(in[1]);
		close(outp[0]);
		errno = rc;
		return gw_error_set_errno(GW_EIO, "repository %s: cannot run git pack-objects", rel);
	}
	/* pack-objects reads its whole list before it writes anything. */
	if ((f = fdopen(in[1], "w"))) {
		for (i = 0; i < objs->n; i++) {
			char hex[GW_HEX_MAX];
			gw_hex_encode(hex, objs->items + i * objs->width, objs->width);
			fprintf(f, "%s\n", hex);
		}
		fclose(f);
	} else {
		close(in[1]);
	}
	for (;;) {
		ssize_t n = read(outp[0], hash + got, sizeof(hash) - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
		if (got == sizeof(hash) - 1)
			break;
	}
	close(outp[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	hash[got] = '\0';
	if (got && hash[got - 1] == '\n')
		hash[got - 1] = '\0';
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || strlen(hash) != 2 * objs->width)
		return gw_error_set(GW_ERROR, "repository %s: git pack-objects failed (status %d)", rel, status);
	if (asprintf(pack_path, "%s-%s.pack", base, hash) < 0 || asprintf(idx_path, "%s-%s.idx", base, hash) < 0)
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

static int stream_file(const char *path, gw_sink *out, uint64_t *len)
{
	unsigned char buf[1 << 16];
	int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
	ssize_t n;
	*len = 0;
	if (fd < 0)
		return gw_error_set_errno(GW_EIO, "cannot open %s", path);
	while ((n = read(fd, buf, sizeof(buf))) > 0 && rc == 0) {
		rc = gw_sink_write(out, buf, (size_t)n);
		*len += (uint64_t)n;
	}
	if (n < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot read %s", path);
	close(fd);
	return rc;
}

static int write_bundle(const gw_segment_spec *spec, walker *w, const char *pack_path, gw_sink *out)
{
	static const char v2[] = "# v2 git bundle\n", v3[] = "# v3 git bundle\n@object-format=sha256\n";
	const char *first = w->hl == 32 ? v3 : v2; /* as a full backup's (DESIGN.md 4.1) */
	uint64_t ignored;
	char line[8192];
	size_t i;
	int rc, n;
	if ((rc = gw_sink_write(out, first, strlen(first))) < 0)
		return rc;
	for (i = 0; i < w->prereqs.n; i++) {
		char hex[GW_HEX_MAX];
		gw_hex_encode(hex, w->prereqs.items + i * w->hl, w->hl);
		n = snprintf(line, sizeof(line), "-%s\n", hex);
		if ((rc = gw_sink_write(out, line, (size_t)n)) < 0)
			return rc;
	}
	for (i = 0; i < spec->nupdates; i++) {
		const gw_update *u = &spec->updates[i];
		if (u->kind != GW_UPDATE_REF || !*u->new_oid || !strcmp(u->ref, "HEAD"))
			continue;
		n = snprintf(line, sizeof(line), "%s %s\n", u->new_oid, u->ref);
		if (n < 0 || (size_t)n >= sizeof(line))
			return gw_error_set(GW_EINVALID, "repository %s: ref name too long", spec->rel);
		if ((rc = gw_sink_write(out, line, (size_t)n)) < 0)
			return rc;
	}
	if ((rc = gw_sink_write(out, "\n", 1)) < 0)
		return rc;
	if (!pack_path)
		return write_empty_pack(out, spec->hash_len);
	return stream_file(pack_path, out, &ignored);
}

static int has_new_values(const gw_segment_spec *spec)
{
	size_t i;
	for (i = 0; i < spec->nupdates; i++)
		if (spec->updates[i].kind == GW_UPDATE_REF && *spec->updates[i].new_oid)
			return 1;
	return 0;
}

int gw_segment_build(gw_store *store, gw_objset *set, const gw_segment_spec *spec, gw_segment_result *res)
{
	gw_segment_header h;
	gw_store_writer *sw = NULL;
	gw_digest_filter f;
	walker w;
	unsigned char *head = NULL, trailer[GW_SEGMENT_TRAILER_SIZE];
	size_t head_len = 0;
	char *key = NULL, *pack_path = NULL, *idx_path = NULL;
	uint64_t before, bundle_len, idx_len = 0;
	int rc, filter = 0;

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	memset(&h, 0, sizeof(h));
	w.rel = spec->rel;
	w.path = spec->path;
	w.set = set;
	w.pool_set = spec->pool_set;
	w.pool_path = spec->pool_path;
	if (has_new_values(spec)) {
		/* As libgit2's did, the object database follows the repository's alternates. */
		gw_odb_options opts = {.label = spec->rel, .alternates = 1};
		if ((rc = gw_odb_open(&w.odb, spec->path, &opts)) < 0)
			goto out;
		w.hl = gw_odb_hash_len(w.odb);
		if (w.hl != spec->hash_len) {
			/* Its config changed since the generation began: a new full backup starts one in the new format. */
			rc = gw_error_set(GW_ECHANGED,
					  "repository %s: its objects are now %s, its archived generation's %s",
					  spec->rel, w.hl == 32 ? "sha256" : "sha1", spec->hash_len == 32 ? "sha256" : "sha1");
			goto out;
		}
		w.seen.width = w.found.width = w.prereqs.width = w.verify.width = w.proven.width = w.hl;
		w.stack.width = w.hl + 1;
		if ((rc = walk_new_objects(&w, spec)) < 0)
			goto out;
		if (w.found.n && w.found.n <= SMALL_PACK_OBJECTS) {
			/* A typical push: a handful of objects, packed here without starting a process. */
			char base[4200];
			snprintf(base, sizeof(base), "%s/seg-%ld", spec->scratch_dir, (long)getpid());
			if ((rc = gw_pack_write_objects(w.odb, w.found.items, w.found.n, base, &pack_path, &idx_path)) < 0)
				goto out;
		} else if (w.found.n &&
			   (rc = pack_objects(spec->rel, spec->path, &w.found, spec->scratch_dir, &pack_path, &idx_path)) < 0)
			goto out;
	}
	h.repository = (char *)spec->rel;
	h.lsn = spec->lsn;
	h.base_lsn = spec->base_lsn;
	h.hash_len = spec->hash_len;
	snprintf(h.prev_sha256, sizeof(h.prev_sha256), "%s", spec->prev_sha256);
	h.time_first_us = spec->time_first_us;
	h.time_last_us = spec->time_last_us;
	h.updates = spec->updates;
	h.nupdates = spec->nupdates;
	h.objects = w.found.n;
	h.gap = spec->gap;
	h.gap_from_us = spec->gap_from_us;
	h.gap_to_us = spec->gap_to_us;
	h.files = (gw_files *)spec->files; /* only read by the encoder */
	if (spec->pool)
		h.pool = *spec->pool; /* borrowed: h is not disposed */
	if ((rc = gw_segment_header_encode(&h, &head, &head_len)) < 0)
		goto out;
	if (!(key = gw_layout_key(spec->rel, spec->lsn, GW_KEY_SEGMENT))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = gw_store_write_open(&sw, store, key, GW_STORE_SIZE_UNKNOWN)) < 0 ||
	    (rc = gw_digest_filter_init(&f, GW_HASH_SHA256, gw_store_writer_sink(sw))) < 0)
		goto out;
	filter = 1;
	if ((rc = gw_sink_write(&f.sink, head, head_len)) < 0)
		goto out;
	before = f.bytes;
	if (has_new_values(spec) && (rc = write_bundle(spec, &w, pack_path, &f.sink)) < 0)
		goto out;
	bundle_len = f.bytes - before;
	if (idx_path && (rc = stream_file(idx_path, &f.sink, &idx_len)) < 0)
		goto out;
	gw_segment_trailer_encode(trailer, bundle_len, idx_len, f.hash);
	if ((rc = gw_store_writer_write(sw, trailer, sizeof(trailer))) < 0)
		goto out;
	if ((rc = gw_store_writer_commit(sw)) < 0)
		goto out;
	gw_hex_encode(res->sha256, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
	res->bytes = f.bytes + GW_SEGMENT_TRAILER_SIZE;
	res->objects = w.found.n;
	res->oids = w.found.items;
	w.found.items = NULL;
	res->proven = w.proven.items;
	res->nproven = w.proven.n;
	w.proven.items = NULL;
out:
	gw_pack_written_discard(pack_path, idx_path);
	if (filter)
		gw_digest_filter_dispose(&f);
	gw_store_writer_free(sw);
	free(key);
	free(head);
	walker_dispose(&w);
	gw_odb_free(w.odb);
	return rc;
}

void gw_segment_result_dispose(gw_segment_result *res)
{
	free(res->oids);
	free(res->proven);
	memset(res, 0, sizeof(*res));
}

int gw_walk_unarchived(gw_odb *odb, const char *rel, const char *path, gw_objset *set, const unsigned char *tips,
		       size_t ntips, unsigned char **found, size_t *nfound)
{
	walker w;
	size_t i;
	int rc = 0;
	memset(&w, 0, sizeof(w));
	*found = NULL;
	*nfound = 0;
	w.rel = rel;
	w.path = path;
	w.set = set;
	w.odb = odb;
	w.hl = gw_odb_hash_len(odb);
	w.seen.width = w.found.width = w.prereqs.width = w.verify.width = w.proven.width = w.hl;
	w.stack.width = w.hl + 1;
	for (i = 0; rc == 0 && i < ntips; i++)
		rc = visit(&w, tips + i * w.hl, 1, 0);
	if (rc == 0 && (rc = walk_stack(&w)) == 0) {
		*found = w.found.items;
		*nfound = w.found.n;
		w.found.items = NULL;
	}
	walker_dispose(&w);
	return rc;
}
