/*
 * Snapshots of live repositories.
 *
 * Git keeps a repository connected: any object it has comes with everything
 * it reaches. gitwal relies on that and never walks the graph. The race to
 * guard against is a concurrent push or gc: refs read at one moment, packs
 * listed at another. The snapshot therefore (1) reads the refs, (2) opens
 * every pack and lists every loose object, (3) reads the refs again. Open
 * file descriptors keep packs readable even if gc deletes them. If the refs
 * differ, a pack vanished between listing and opening, or a tip is not among
 * the objects opened, the repository changed under us and the snapshot is
 * taken again. See DESIGN.md 5.1.
 */
#include "backup/source.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "gitwal/odb.h"
#include "gitwal/repo.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include "util/git_init.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SNAPSHOT_ATTEMPTS 20

static int git_fail(const char *rel, const char *what)
{
	const git_error *e = git_error_last();
	return gw_error_set(GW_ERROR, "repository %s: %s: %s", rel, what, e && e->message ? e->message : "libgit2 error");
}

/* 1 when the repository's file rel is there and not empty, else 0; <0 when out of memory. */
static int file_nonempty(const gw_source *src, const char *rel)
{
	struct stat st;
	char *path = gw_fs_join(src->path, rel);
	int found;
	if (!path)
		return gw_error_set(GW_ERROR, "out of memory");
	found = stat(path, &st) == 0 && st.st_size > 0;
	free(path);
	return found;
}

/*
 * What a repository's config may say for gitwal to archive it faithfully.
 * Git records in extensions.* whatever changes where or how it stores refs
 * and objects; gitwal reads the files ref format (refs/ and packed-refs) and
 * sha1 or sha256 objects, all local. An extension it does not know could
 * move either out of its sight (reftable did: 0 refs and an unreadable
 * HEAD), so only the ones below pass; everything else is refused rather than
 * archived wrong.
 */
static int extension_ok(const char *name, const char *value)
{
	if (!strcmp(name, "extensions.objectformat"))
		return !strcasecmp(value, "sha1") || !strcmp(value, "sha256");
	if (!strcmp(name, "extensions.refstorage"))
		return !strcasecmp(value, "files");
	/* Per-worktree config (a bare repository has none to read); "do not delete objects" (gitwal never does). */
	return !strcmp(name, "extensions.worktreeconfig") || !strcmp(name, "extensions.preciousobjects") ||
	       !strcmp(name, "extensions.noop");
}

static int refuse_extension(const gw_source *src, const char *name, const char *value)
{
	if (!strcmp(name, "extensions.objectformat"))
		return gw_error_set(GW_EUNSUPPORTED,
				    "repository %s uses object format %s; gitwal backs up sha1 and sha256 repositories",
				    src->rel, value);
	if (!strcmp(name, "extensions.refstorage") && !strcasecmp(value, "reftable"))
		return gw_error_set(GW_EUNSUPPORTED,
				    "repository %s keeps its refs in reftable (extensions.refstorage=reftable); gitwal "
				    "reads the files format only (refs/ and packed-refs): convert it with 'git refs "
				    "migrate --ref-format=files'",
				    src->rel);
	if (!strcmp(name, "extensions.partialclone"))
		return gw_error_set(GW_EUNSUPPORTED,
				    "repository %s is a partial clone (extensions.partialclone=%s): objects it refers "
				    "to live only on that promisor remote, so no copy of it passes git fsck; back up "
				    "the repository it was cloned from",
				    src->rel, value);
	return gw_error_set(GW_EUNSUPPORTED,
			    "repository %s sets %s=%s, a Git extension gitwal does not understand (it may keep refs or "
			    "objects where gitwal does not look): refused rather than archived wrong",
			    src->rel, name, value);
}

static int refuse_promisor(const gw_source *src, const char *what)
{
	return gw_error_set(GW_EUNSUPPORTED,
			    "repository %s is a partial clone (%s): objects it refers to live only on its promisor "
			    "remote, so no copy of it passes git fsck; back up the repository it was cloned from",
			    src->rel, what);
}

/* The repository's config: its format version and extensions, and promisor remotes. */
static int check_config(gw_source *src)
{
	char *cfg_path = gw_fs_join(src->path, "config");
	git_config *cfg = NULL;
	git_config_iterator *it = NULL;
	git_config_entry *entry;
	int32_t version = 0;
	int rc = 0, err;

	if (!cfg_path)
		return gw_error_set(GW_ERROR, "out of memory");
	if (access(cfg_path, F_OK) != 0)
		goto out; /* git needs none either: version 0, no extensions */
	if (git_config_open_ondisk(&cfg, cfg_path) < 0) {
		rc = git_fail(src->rel, "cannot read config");
		goto out;
	}
	if (git_config_get_int32(&version, cfg, "core.repositoryformatversion") == 0 && (version < 0 || version > 1)) {
		rc = gw_error_set(GW_EUNSUPPORTED,
				  "repository %s has core.repositoryformatversion=%d; gitwal (as git) knows 0 and 1 "
				  "only",
				  src->rel, (int)version);
		goto out;
	}
	/*
	 * Every extension counts, whatever the version (git reads some of them in
	 * version 0 too). One pass over every entry, matched by hand: libgit2's
	 * glob iterator leaks its regex match data.
	 */
	if (git_config_iterator_new(&it, cfg) < 0) {
		rc = git_fail(src->rel, "cannot read config");
		goto out;
	}
	while ((err = git_config_next(&entry, it)) == 0) {
		const char *name = entry->name, *value = entry->value ? entry->value : "";
		size_t len = strlen(name);
		if (!strncmp(name, "extensions.", 11) && !extension_ok(name, value)) {
			rc = refuse_extension(src, name, value);
			goto out;
		}
		if (!strncmp(name, "remote.", 7) && len > 16 && !strcmp(name + len - 9, ".promisor")) {
			int on = 0;
			/* A key without a value is true. */
			if (git_config_parse_bool(&on, entry->value ? entry->value : "true") == 0 && on) {
				char what[300];
				snprintf(what, sizeof(what), "%.250s=true", name);
				rc = refuse_promisor(src, what);
				goto out;
			}
		}
	}
	if (err != GIT_ITEROVER)
		rc = git_fail(src->rel, "cannot read config");
out:
	git_config_iterator_free(it);
	git_config_free(cfg);
	free(cfg_path);
	return rc;
}

/* A ".promisor" pack: objects fetched from a promisor remote, which may leave others out. */
static int check_promisor_packs(gw_source *src)
{
	char *dir = gw_fs_join(src->path, "objects/pack");
	struct dirent *de;
	DIR *d;
	int rc = 0;
	if (!dir)
		return gw_error_set(GW_ERROR, "out of memory");
	if ((d = opendir(dir))) {
		while (rc == 0 && (de = readdir(d))) {
			size_t len = strlen(de->d_name);
			if (len > 9 && !strcmp(de->d_name + len - 9, ".promisor")) {
				char what[300];
				snprintf(what, sizeof(what), "objects/pack/%.250s", de->d_name);
				rc = refuse_promisor(src, what);
			}
		}
		closedir(d);
	}
	free(dir);
	return rc;
}

/*
 * The repository's alternates, checked as DESIGN.md 19 says before the
 * refusal below names its pool: each resolves inside the root, no loop, at
 * most one directory in all, and that one is <root>/<P>/objects of another
 * bare repository P under the root. GW_EUNSUPPORTED (a repository gitwal
 * refuses, as the archiver counts it) naming the repository and the path;
 * 0 when the file names no alternate at all (comments only: git reads none).
 */
static int check_alternates(gw_source *src, const char *root, int allow_pool)
{
	gw_odb_options opts = {.label = src->rel, .alternates = 1, .root = root};
	char real_root[PATH_MAX], text[PATH_MAX];
	const char *dir, *pool;
	size_t n, len, plen;
	gw_odb *odb;
	int rc;

	if ((rc = gw_odb_open(&odb, src->path, &opts)) < 0) {
		if (rc != GW_EINVALID)
			return rc;
		/* Leaves the root, loops, not a directory: a refusal, not a fault of the run. */
		snprintf(text, sizeof(text), "%s", gw_error_message());
		return gw_error_set(GW_EUNSUPPORTED, "%s", text);
	}
	for (n = 0; gw_odb_source_dir(odb, n + 1); n++)
		;
	if (n == 0) {
		gw_odb_free(odb);
		return 0;
	}
	rc = GW_EUNSUPPORTED;
	if (!realpath(root, real_root)) {
		rc = gw_error_set_errno(GW_EIO, "repository %s: root %s", src->rel, root);
		goto out;
	}
	dir = gw_odb_source_dir(odb, 1);
	len = strlen(real_root);
	if (n > 1) {
		gw_error_set(rc,
			     "repository %s: its alternates reach %zu object directories (%s, then %s): gitwal "
			     "archives one pool per repository, and a pool without alternates of its own",
			     src->rel, n, dir, gw_odb_source_dir(odb, 2));
		goto out;
	}
	if (len == 1)
		len = 0; /* the root is / */
	/* The pool's path: what lies between the root and /objects, a bare repository other than this one. */
	pool = !strncmp(dir, real_root, len) && dir[len] == '/' ? dir + len + 1 : NULL;
	plen = pool ? strlen(pool) : 0;
	if (pool && plen > strlen("/objects") && !strcmp(pool + plen - strlen("/objects"), "/objects")) {
		snprintf(text, sizeof(text), "%.*s", (int)(plen - strlen("/objects")), pool);
		snprintf(real_root + len, sizeof(real_root) - len, "/%s", text);
	} else {
		text[0] = '\0';
	}
	if (!text[0] || gw_repo_path_check(text) < 0 || !strcmp(text, src->rel) || !gw_repo_is_bare(real_root)) {
		gw_error_set(rc, "repository %s: alternate %s is not the objects directory of a repository under the root",
			     src->rel, dir);
		goto out;
	}
	/* git reads an alternate with the repository's own id length: another format is not its objects. */
	if ((rc = gw_repo_object_format(real_root, text, &plen)) < 0)
		goto out;
	rc = GW_EUNSUPPORTED;
	if (plen != gw_odb_hash_len(odb)) {
		gw_error_set(rc, "repository %s: alternate %s is the objects of %s, a repository of another object format",
			     src->rel, dir, text);
		goto out;
	}
	/* A pool gitwal archives: the caller writes the member's records with it (DESIGN.md 19). */
	if (allow_pool) {
		rc = (src->pool = strdup(text)) ? 0 : gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	/* Where the caller does not write pooled records (gw_source_open): refused. */
	gw_error_set(rc,
		     "repository %s uses alternates (objects/info/alternates): its objects live in the pool %s; "
		     "run 'git repack -a -d' in it to make it self-contained, or back up the pool repository",
		     src->rel, text);
out:
	gw_odb_free(odb);
	return rc;
}

/*
 * Can gitwal archive this repository faithfully, so that a restore passes
 * git fsck? Not when its objects are elsewhere (alternates), missing on
 * purpose (shallow and partial clones), in a format gitwal does not write,
 * or its refs are where gitwal does not read them. GW_EUNSUPPORTED with a
 * one-line reason naming the repository.
 */
static int check_supported(gw_source *src, const char *root, int allow_pool)
{
	int rc;

	if ((rc = file_nonempty(src, "objects/info/alternates")) < 0)
		return rc;
	if (rc && (rc = check_alternates(src, root, allow_pool)) < 0)
		return rc;
	if ((rc = file_nonempty(src, "shallow")) < 0)
		return rc;
	if (rc)
		return gw_error_set(GW_EUNSUPPORTED,
				    "repository %s is a shallow clone (it has a 'shallow' file): the history before "
				    "the commits listed there is not in it, so no copy of it passes git fsck; fetch "
				    "the rest ('git fetch --unshallow') or back up the repository it was cloned from",
				    src->rel);
	if ((rc = check_config(src)) < 0)
		return rc;
	return check_promisor_packs(src);
}

static int source_open(gw_source **out, const char *root, const char *rel, int allow_pool)
{
	gw_source *src;
	struct stat st;
	int rc;

	*out = NULL;
	gw_git_init();
	if ((rc = gw_repo_path_check(rel)) < 0)
		return rc;
	if (stat(root, &st) < 0 || !S_ISDIR(st.st_mode))
		return gw_error_set(GW_ENOTFOUND, "root %s does not exist or is not a directory", root);
	if (!(src = calloc(1, sizeof(*src))))
		return gw_error_set(GW_ERROR, "out of memory");
	if (!(src->rel = strdup(rel)) || !(src->path = gw_fs_join(root, rel))) {
		gw_source_free(src);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	if (stat(src->path, &st) < 0) {
		rc = gw_error_set(GW_ENOTFOUND, "repository %s not found under root %s", rel, root);
		goto fail;
	}
	/* One name per repository: not one reached through a symlink (DESIGN.md 10.4). */
	if ((rc = gw_repo_path_real(root, rel)) < 0)
		goto fail;
	if (!S_ISDIR(st.st_mode) || !gw_repo_is_bare(src->path)) {
		rc = gw_error_set(GW_EINVALID, "repository %s: %s is not a bare Git repository", rel, src->path);
		goto fail;
	}
	/* The object format from the config, as git reads it (DESIGN.md 17): 20-byte or 32-byte ids throughout. */
	if ((rc = check_supported(src, root, allow_pool)) < 0 || (rc = gw_repo_object_format(src->path, rel, &src->hash_len)) < 0)
		goto fail;
	src->object_format = src->hash_len == 32 ? "sha256" : "sha1";
	if ((rc = gw_refs_reader_new(&src->reader, src->path, rel, src->hash_len)) < 0)
		goto fail;
	*out = src;
	return 0;
fail:
	gw_source_free(src);
	return rc;
}

int gw_source_open(gw_source **out, const char *root, const char *rel)
{
	return source_open(out, root, rel, 0);
}

int gw_source_open_pooled(gw_source **out, const char *root, const char *rel)
{
	return source_open(out, root, rel, 1);
}

/* Every ref and HEAD (see refs_read.c), as arrays owning their strings. */
int gw_source_read_refs(const gw_source *src, gw_ref **out, size_t *count, gw_ref *head)
{
	gw_refs_view v;
	int rc;

	*out = NULL;
	*count = 0;
	memset(head, 0, sizeof(*head));
	if ((rc = gw_refs_read(src->reader, &v)) < 0)
		return rc;
	rc = gw_refs_view_copy(&v, out, count, head);
	gw_refs_view_dispose(&v);
	return rc;
}

static int refs_equal(const gw_ref *a, size_t na, const gw_ref *b, size_t nb, size_t hash_len)
{
	size_t i;
	if (na != nb)
		return 0;
	for (i = 0; i < na; i++) {
		if (strcmp(a[i].name, b[i].name) || a[i].dangling != b[i].dangling ||
		    memcmp(a[i].oid, b[i].oid, hash_len) || (!a[i].symbolic) != (!b[i].symbolic) ||
		    (a[i].symbolic && strcmp(a[i].symbolic, b[i].symbolic)))
			return 0;
	}
	return 1;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Packs, biggest first: the gc'd main pack wins ties over push packs. */
static int pack_cmp(const void *a, const void *b)
{
	const gw_pack_source *x = a, *y = b;
	if (x->pack_size != y->pack_size)
		return x->pack_size > y->pack_size ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void packs_free(gw_pack_source *packs, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		if (packs[i].pack_fd >= 0)
			close(packs[i].pack_fd);
		if (packs[i].idx_fd >= 0)
			close(packs[i].idx_fd);
		free(packs[i].name);
	}
	free(packs);
}

/* List pack names (without extension) that have both .pack and .idx. */
static int list_packs(gw_source *src, char ***names, size_t *count)
{
	char *dir = gw_fs_join(src->path, "objects/pack");
	char **list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *d;
	*names = NULL;
	*count = 0;
	if (!dir)
		return gw_error_set(GW_ERROR, "out of memory");
	d = opendir(dir);
	if (!d) {
		int rc = errno == ENOENT ? 0 : gw_error_set_errno(GW_EIO, "repository %s: cannot list packs", src->rel);
		free(dir);
		return rc;
	}
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char idx_name[512];
		struct stat st;
		if (len < 10 || strncmp(de->d_name, "pack-", 5) || strcmp(de->d_name + len - 5, ".pack") || len > 400)
			continue;
		snprintf(idx_name, sizeof(idx_name), "%.*s.idx", (int)(len - 5), de->d_name);
		if (fstatat(dirfd(d), idx_name, &st, 0) < 0)
			continue; /* still being written: nothing references it yet */
		if (GW_ARRAY_RESERVE(list, cap, n + 1) < 0)
			break;
		list[n++] = strndup(de->d_name, len - 5);
	}
	closedir(d);
	free(dir);
	if (n)
		qsort(list, n, sizeof(char *), name_cmp);
	*names = list;
	*count = n;
	return 0;
}

static void names_free(char **names, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static int open_packs(gw_source *src, char **names, size_t n)
{
	size_t i;
	int rc = 0;
	src->packs = calloc(n ? n : 1, sizeof(*src->packs));
	if (!src->packs)
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < n; i++) {
		gw_pack_source *p = &src->packs[src->npacks];
		char path[4096];
		struct stat st;
		p->pack_fd = p->idx_fd = -1;
		src->npacks++;
		if (!(p->name = strdup(names[i])))
			return gw_error_set(GW_ERROR, "out of memory");
		snprintf(path, sizeof(path), "%s/objects/pack/%s.idx", src->path, names[i]);
		p->idx_fd = open(path, O_RDONLY | O_CLOEXEC);
		snprintf(path, sizeof(path), "%s/objects/pack/%s.pack", src->path, names[i]);
		p->pack_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (p->idx_fd < 0 || p->pack_fd < 0) {
			if (errno == ENOENT)
				return gw_error_set(GW_ECHANGED, "repository %s: pack %s vanished (concurrent gc)",
						    src->rel, names[i]);
			return gw_error_set_errno(GW_EIO, "repository %s: cannot open pack %s", src->rel, names[i]);
		}
		if (fstat(p->pack_fd, &st) < 0)
			return gw_error_set_errno(GW_EIO, "repository %s: cannot stat pack %s", src->rel, names[i]);
		p->pack_size = (uint64_t)st.st_size;
		if ((rc = gw_idx_open(&p->idx, p->idx_fd, p->name, src->hash_len, 1)) < 0)
			return gw_error_prefix("repository %s", src->rel);
	}
	if (src->npacks)
		qsort(src->packs, src->npacks, sizeof(*src->packs), pack_cmp);
	/* gw_idx keeps a pointer to the name: refresh it after sorting. */
	for (i = 0; i < src->npacks; i++)
		src->packs[i].idx.name = src->packs[i].name;
	return 0;
}

static int loose_cmp(const void *a, const void *b)
{
	return memcmp(((const gw_loose_source *)a)->oid, ((const gw_loose_source *)b)->oid, GW_HASH_MAX);
}

static int list_loose(gw_source *src)
{
	size_t cap = 0, hex_rest = 2 * src->hash_len - 2;
	int fan;
	for (fan = 0; fan < 256; fan++) {
		char dir[4096];
		struct dirent *de;
		DIR *d;
		snprintf(dir, sizeof(dir), "%s/objects/%02x", src->path, fan);
		if (!(d = opendir(dir)))
			continue;
		while ((de = readdir(d))) {
			gw_loose_source *l;
			char hex[GW_HEX_MAX];
			if (strlen(de->d_name) != hex_rest || !gw_hex_is_lower(de->d_name, hex_rest))
				continue;
			if (GW_ARRAY_RESERVE(src->loose, cap, src->nloose + 1) < 0) {
				closedir(d);
				return GW_ERROR;
			}
			l = &src->loose[src->nloose];
			memset(l, 0, sizeof(*l));
			snprintf(hex, sizeof(hex), "%02x%s", fan, de->d_name);
			gw_hex_decode(l->oid, hex, src->hash_len);
			if (!(l->path = gw_fs_join(dir, de->d_name))) {
				closedir(d);
				return gw_error_set(GW_ERROR, "out of memory");
			}
			src->nloose++;
		}
		closedir(d);
	}
	if (src->nloose)
		qsort(src->loose, src->nloose, sizeof(*src->loose), loose_cmp);
	return 0;
}

int gw_source_has_object(gw_source *src, const unsigned char *oid)
{
	gw_loose_source key;
	size_t i;
	uint32_t pos;
	for (i = 0; i < src->npacks; i++) {
		int rc = gw_idx_find(&src->packs[i].idx, oid, &pos);
		if (rc != 0)
			return rc;
	}
	/* The loose objects are sorted by loose_cmp, their ids zero-padded as key's. */
	memset(&key, 0, sizeof(key));
	memcpy(key.oid, oid, src->hash_len);
	return src->nloose && bsearch(&key, src->loose, src->nloose, sizeof(*src->loose), loose_cmp) != NULL;
}

int gw_source_add_pack(gw_source *src, const char *pack_path, const char *idx_path)
{
	gw_pack_source *packs, *p;
	struct stat st;
	size_t i;
	int rc;
	if (!(packs = realloc(src->packs, (src->npacks + 1) * sizeof(*packs))))
		return gw_error_set(GW_ERROR, "out of memory");
	src->packs = packs;
	p = &packs[src->npacks];
	memset(p, 0, sizeof(*p));
	p->pack_fd = p->idx_fd = -1;
	src->npacks++;
	/* The array moved: each index names its pack by the name the pack owns. */
	for (i = 0; i + 1 < src->npacks; i++)
		packs[i].idx.name = packs[i].name;
	if (!(p->name = strdup(pack_path)))
		return gw_error_set(GW_ERROR, "out of memory");
	if ((p->idx_fd = open(idx_path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    (p->pack_fd = open(pack_path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(p->pack_fd, &st) < 0)
		return gw_error_set_errno(GW_EIO, "repository %s: cannot open pack %s", src->rel, pack_path);
	p->pack_size = (uint64_t)st.st_size;
	if ((rc = gw_idx_open(&p->idx, p->idx_fd, p->name, src->hash_len, 1)) < 0)
		return gw_error_prefix("repository %s", src->rel);
	return 0;
}

void gw_source_release_snapshot(gw_source *src)
{
	size_t i;
	gw_refs_free(src->refs, src->nrefs);
	src->refs = NULL;
	src->nrefs = 0;
	gw_ref_dispose(&src->head);
	packs_free(src->packs, src->npacks);
	src->packs = NULL;
	src->npacks = 0;
	for (i = 0; i < src->nloose; i++)
		free(src->loose[i].path);
	free(src->loose);
	src->loose = NULL;
	src->nloose = 0;
}

int gw_source_refs_unchanged(gw_source *src)
{
	gw_ref *again = NULL, head2;
	size_t nagain = 0;
	int rc;
	if ((rc = gw_source_read_refs(src, &again, &nagain, &head2)) < 0)
		return rc;
	if (!refs_equal(src->refs, src->nrefs, again, nagain, src->hash_len) ||
	    !refs_equal(&src->head, 1, &head2, 1, src->hash_len))
		rc = gw_error_set(GW_ECHANGED, "repository %s: references changed during the snapshot", src->rel);
	gw_refs_free(again, nagain);
	gw_ref_dispose(&head2);
	return rc;
}

static int snapshot_once(gw_source *src)
{
	size_t i, nnames = 0, nnames2 = 0;
	char **names = NULL, **names2 = NULL;
	int rc;

	if ((rc = gw_source_read_refs(src, &src->refs, &src->nrefs, &src->head)) < 0)
		return rc;
	if ((rc = list_packs(src, &names, &nnames)) < 0 || (rc = open_packs(src, names, nnames)) < 0 ||
	    (rc = list_loose(src)) < 0)
		goto out;
	if ((rc = list_packs(src, &names2, &nnames2)) < 0)
		goto out;
	for (i = 0; i < nnames2; i++) {
		if (!nnames || !bsearch(&names2[i], names, nnames, sizeof(char *), name_cmp)) {
			rc = gw_error_set(GW_ECHANGED, "repository %s: a new pack appeared while listing objects",
					  src->rel);
			goto out;
		}
	}
	if ((rc = gw_source_refs_unchanged(src)) < 0)
		goto out;
	for (i = 0; i < src->nrefs; i++) {
		char hex[GW_HEX_MAX];
		if (src->refs[i].dangling)
			continue;
		if ((rc = gw_source_has_object(src, src->refs[i].oid)) < 0)
			goto out;
		/* A pooled member's tip may be in its pool: the backup's walk reads it there. */
		if (rc == 0 && !src->pool) {
			gw_hex_encode(hex, src->refs[i].oid, src->hash_len);
			rc = gw_error_set(GW_ECHANGED, "repository %s: %s points to %s, which is not in the repository",
					  src->rel, src->refs[i].name, hex);
			goto out;
		}
	}
	rc = 0;
out:
	names_free(names, nnames);
	names_free(names2, nnames2);
	return rc;
}

int gw_source_snapshot(gw_source *src)
{
	int rc = GW_ECHANGED;
	unsigned attempt;
	for (attempt = 1; attempt <= SNAPSHOT_ATTEMPTS; attempt++) {
		gw_source_release_snapshot(src);
		src->attempts = attempt;
		rc = snapshot_once(src);
		if (rc != GW_ECHANGED)
			break;
		{
			struct timespec ts = {0, (long)(attempt < 10 ? attempt : 10) * 5000000L};
			nanosleep(&ts, NULL);
		}
	}
	if (rc == GW_ECHANGED)
		gw_error_prefix("repository %s kept changing (%u attempts)", src->rel, SNAPSHOT_ATTEMPTS);
	if (rc < 0)
		gw_source_release_snapshot(src);
	return rc;
}

void gw_source_free(gw_source *src)
{
	if (!src)
		return;
	gw_source_release_snapshot(src);
	gw_refs_reader_free(src->reader);
	free(src->pool);
	free(src->rel);
	free(src->path);
	free(src);
}
