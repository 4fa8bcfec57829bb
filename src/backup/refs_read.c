/*
 * Reading a repository's refs and HEAD (see refs_read.h): the one
 * implementation, used by full backups (snapshots), the archiver (every
 * change of every repository) and the audit.
 *
 * Why not libgit2's reference iterator: it re-reads, re-parses and re-sorts
 * the whole packed-refs file on every call (90 % of the archiver's time for a
 * one-commit push into a repository with 100,000 refs), and it reads
 * packed-refs before it lists the loose refs, so a `git pack-refs` running
 * in between hides the refs it packs.
 *
 * What is read, and in which order (this order is what makes a read never
 * miss a ref that exists throughout it):
 *
 *  1. The loose refs: refs/ walked with openat/readdir. Names starting with
 *     "." are skipped (git does too: never valid), and so are names ending in
 *     ".lock": a ref being written (git writes X.lock and renames it onto X,
 *     so X holds the old value until then). A file that vanishes between
 *     readdir and open is skipped: git deletes a ref from packed-refs before
 *     unlinking its loose file, and `git pack-refs` writes packed-refs before
 *     it unlinks the loose files it packed, so the ref's fate is in the
 *     packed-refs read in step 3, after the walk. A file that does not parse
 *     is skipped, as libgit2 does. A name Git would not accept is an error.
 *  2. HEAD.
 *  3. packed-refs. Git replaces it whole (packed-refs.lock, then rename), so
 *     one open descriptor reads one version.
 *  4. Symbolic refs (loose ones and HEAD) are resolved in the view just read,
 *     as git_reference_resolve does: the first target must be a valid name,
 *     at most 6 lookups, names outside refs/ (HEAD, FETCH_HEAD) read from
 *     their files; an unresolvable one is dangling.
 *
 * The packed-refs cache: a reader keeps the last parse, with the file's
 * (st_dev, st_ino, st_size, st_mtim, st_ctim). A read stats the file; the
 * same key means the same content, except when the file changed within the
 * timestamps' granularity. The kernel stamps files from a clock that ticks
 * (and some filesystems keep whole seconds), so a parse is trusted only if
 * the file's mtime and ctime are in an earlier second than the moment the
 * read started: any later write then stamps a later time. A file changed
 * within the last second is parsed again at each read until it settles.
 */
#include "backup/refs_read.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "format/refname.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* refs/ deeper than this is an error (a symlink loop, or worse). */
#define MAX_DEPTH 64
/* libgit2 looks a symref's target up, then follows at most 5 more symrefs. */
#define SYMREF_LOOKUPS 6
/* A loose ref file: an object id, or "ref: " and a name. Longer ones are not refs. */
#define LOOSE_MAX 4096
/* A packed-refs file larger than this is refused rather than read into memory. */
#define PACKED_MAX ((size_t)1 << 31)
/* Attempts at reading a packed-refs file that changes size while being read. */
#define PACKED_ATTEMPTS 5

/* A name for a message: at most 200 bytes, control characters as '?'. */
static const char *printable(const char *s, char *buf, size_t size)
{
	size_t i;
	for (i = 0; s[i] && i + 1 < size && i < 200; i++)
		buf[i] = (unsigned char)s[i] < 0x20 || s[i] == 0x7f ? '?' : s[i];
	buf[i] = '\0';
	return buf;
}

/* libgit2's git__isspace: what ends an object id and what is trimmed off a symref. */
static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* ---- packed-refs ---- */

void gw_packed_refs_release(gw_packed_refs *p)
{
	if (!p || --p->holders)
		return;
	free(p->refs);
	free(p->text);
	free(p);
}

static int packed_cmp(const void *a, const void *b)
{
	return strcmp(((const gw_packed_ref *)a)->name, ((const gw_packed_ref *)b)->name);
}

static int bad_line(const char *what, size_t line, const char *why, const char *name)
{
	char shown[256];
	if (name)
		return gw_error_set(GW_ECORRUPT, "%s line %zu: %s '%s'", what, line, why, printable(name, shown, sizeof(shown)));
	return gw_error_set(GW_ECORRUPT, "%s line %zu: %s", what, line, why);
}

/* Parse text[0, len) (text[len] == '\0'), taking ownership of text. */
static int parse_packed(gw_packed_refs **out, char *text, size_t len, size_t hash_len, const char *what)
{
	const size_t hex = 2 * hash_len;
	gw_packed_refs *p = calloc(1, sizeof(*p));
	char *at = text, *end = text + len;
	size_t cap = 0, line = 1, i;
	int unsorted = 0, after_ref = 0, rc = 0;

	*out = NULL;
	if (!p) {
		free(text);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	p->text = text;
	p->holders = 1;
	if (at < end && *at == '#') {
		char *eol = memchr(at, '\n', (size_t)(end - at));
		if (!eol) {
			rc = bad_line(what, line, "the header line is not terminated", NULL);
			goto out;
		}
		if ((size_t)(eol - at) < 17 || memcmp(at, "# pack-refs with:", 17) != 0) {
			rc = bad_line(what, line, "unknown header (expected \"# pack-refs with:\")", NULL);
			goto out;
		}
		at = eol + 1;
		line++;
	}
	for (; at < end; at++, line++) {
		char *eol = memchr(at, '\n', (size_t)(end - at)), *name;
		size_t n;
		if (!eol) {
			rc = bad_line(what, line, "truncated (no end of line)", NULL);
			goto out;
		}
		n = (size_t)(eol - at);
		*eol = '\0';
		if (*at == '^') {
			/* The peeled value of the tag on the line before: not part of the ref state. */
			unsigned char peeled[GW_HASH_MAX];
			if (!after_ref) {
				rc = bad_line(what, line, "a peeled value (^) that follows no ref", NULL);
				goto out;
			}
			if (n != hex + 1 || gw_hex_decode(peeled, at + 1, hash_len) < 0) {
				rc = bad_line(what, line, hash_len == 20 ? "a peeled value that is not \"^<40 hex digits>\""
									 : "a peeled value that is not \"^<64 hex digits>\"",
					      NULL);
				goto out;
			}
			after_ref = 0;
			at = eol;
			continue;
		}
		if ((rc = GW_ARRAY_RESERVE(p->refs, cap, p->n + 1)) < 0)
			goto out;
		memset(p->refs[p->n].oid, 0, sizeof(p->refs[p->n].oid));
		if (n < hex + 2 || at[hex] != ' ' || gw_hex_decode(p->refs[p->n].oid, at, hash_len) < 0) {
			rc = bad_line(what, line, hash_len == 20 ? "not \"<40 hex digits> <ref name>\""
								 : "not \"<64 hex digits> <ref name>\"",
				      NULL);
			goto out;
		}
		name = at + hex + 1;
		if (strlen(name) != n - hex - 1) {
			rc = bad_line(what, line, "a NUL byte in the name", NULL);
			goto out;
		}
		if (name[n - hex - 2] == '\r') {
			rc = bad_line(what, line, "a carriage return (CRLF line ends)", NULL);
			goto out;
		}
		if (!gw_ref_name_valid(name)) {
			rc = bad_line(what, line, "not a valid ref name:", name);
			goto out;
		}
		p->refs[p->n].name = name;
		if (p->n && strcmp(p->refs[p->n - 1].name, name) >= 0)
			unsorted = 1;
		p->n++;
		after_ref = 1;
		at = eol;
	}
	/* Git writes it sorted (and says so in the header); nothing depends on that. */
	if (unsorted) {
		qsort(p->refs, p->n, sizeof(*p->refs), packed_cmp);
		for (i = 1; i < p->n; i++)
			if (strcmp(p->refs[i - 1].name, p->refs[i].name) == 0) {
				char shown[256];
				rc = gw_error_set(GW_ECORRUPT, "%s: ref %s is listed twice", what,
						  printable(p->refs[i].name, shown, sizeof(shown)));
				goto out;
			}
	}
out:
	if (rc < 0) {
		gw_packed_refs_release(p);
		return rc;
	}
	if (p->n < cap) {
		/* Kept while the file does not change (one per archived repository): no slack. */
		gw_packed_ref *fit = realloc(p->refs, (p->n ? p->n : 1) * sizeof(*fit));
		if (fit)
			p->refs = fit;
	}
	*out = p;
	return 0;
}

int gw_packed_refs_parse(gw_packed_refs **out, const char *data, size_t len, size_t hash_len, const char *what)
{
	char *text = malloc(len + 1);
	*out = NULL;
	if (!text)
		return gw_error_set(GW_ERROR, "out of memory");
	if (len)
		memcpy(text, data, len);
	text[len] = '\0';
	return parse_packed(out, text, len, hash_len, what);
}

static const gw_packed_ref *packed_find(const gw_packed_refs *p, const char *name)
{
	size_t lo = 0, hi = p ? p->n : 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(p->refs[mid].name, name);
		if (cmp == 0)
			return &p->refs[mid];
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- the view ---- */

/* Strings of a view, in chunks that never move. */
typedef struct gw_refs_arena {
	struct gw_refs_arena *next;
	size_t used, cap;
	char data[];
} gw_refs_arena;

static char *arena_dup(gw_refs_arena **arena, const char *s)
{
	size_t n = strlen(s) + 1;
	gw_refs_arena *a = *arena;
	char *at;
	if (!a || a->cap - a->used < n) {
		size_t cap = a ? a->cap * 2 : 128;
		if (cap < n)
			cap = n;
		if (!(a = malloc(sizeof(*a) + cap)))
			return NULL;
		a->next = *arena;
		a->used = 0;
		a->cap = cap;
		*arena = a;
	}
	at = a->data + a->used;
	memcpy(at, s, n);
	a->used += n;
	return at;
}

void gw_refs_view_dispose(gw_refs_view *v)
{
	while (v->arena) {
		gw_refs_arena *next = v->arena->next;
		free(v->arena);
		v->arena = next;
	}
	gw_packed_refs_release(v->packed);
	free(v->loose);
	memset(v, 0, sizeof(*v));
}

static void from_packed(gw_ref *out, const gw_packed_ref *p)
{
	memset(out, 0, sizeof(*out));
	out->name = (char *)p->name;
	memcpy(out->oid, p->oid, sizeof(p->oid));
}

static int loose_cmp(const void *a, const void *b)
{
	return strcmp(((const gw_ref *)a)->name, ((const gw_ref *)b)->name);
}

int gw_refs_view_next(const gw_refs_view *v, gw_refs_pos *pos, gw_ref *out)
{
	const gw_packed_ref *p = v->packed && pos->packed < v->packed->n ? &v->packed->refs[pos->packed] : NULL;
	const gw_ref *l = pos->loose < v->nloose ? &v->loose[pos->loose] : NULL;
	int cmp;
	if (!p && !l)
		return 0;
	cmp = !p ? 1 : !l ? -1 : strcmp(p->name, l->name);
	if (cmp < 0) {
		from_packed(out, p);
		pos->packed++;
		return 1;
	}
	*out = *l;
	pos->loose++;
	if (cmp == 0)
		pos->packed++; /* the loose ref replaces the packed one */
	return 1;
}

int gw_refs_view_find(const gw_refs_view *v, const char *name, gw_ref *out)
{
	gw_ref key;
	const gw_ref *l;
	const gw_packed_ref *p;
	key.name = (char *)name;
	if (v->nloose && (l = bsearch(&key, v->loose, v->nloose, sizeof(gw_ref), loose_cmp))) {
		*out = *l;
		return 1;
	}
	if ((p = packed_find(v->packed, name))) {
		from_packed(out, p);
		return 1;
	}
	return 0;
}

static int copy_ref(gw_ref *dst, const gw_ref *src)
{
	*dst = *src;
	dst->name = strdup(src->name);
	dst->symbolic = src->symbolic ? strdup(src->symbolic) : NULL;
	if (!dst->name || (src->symbolic && !dst->symbolic))
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

int gw_refs_view_copy(const gw_refs_view *v, gw_ref **refs, size_t *count, gw_ref *head)
{
	size_t most = v->nloose + (v->packed ? v->packed->n : 0), n = 0;
	gw_refs_pos pos = {0, 0};
	gw_ref r, *out = calloc(most ? most : 1, sizeof(gw_ref));
	int rc = 0;

	*refs = NULL;
	*count = 0;
	memset(head, 0, sizeof(*head));
	if (!out)
		return gw_error_set(GW_ERROR, "out of memory");
	while (rc == 0 && gw_refs_view_next(v, &pos, &r))
		rc = copy_ref(&out[n++], &r);
	if (rc == 0)
		rc = copy_ref(head, &v->head);
	if (rc < 0) {
		gw_refs_free(out, n);
		gw_ref_dispose(head);
		return rc;
	}
	*refs = out;
	*count = n;
	return 0;
}

/* ---- the reader ---- */

typedef struct {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime, ctime;
} file_key;

struct gw_refs_reader {
	char *path; /* the repository */
	char *rel;
	size_t hash_len; /* 20 (sha1) or 32 (sha256): its object ids */
	char *packed_path;
	gw_packed_refs *packed; /* the cached parse, NULL if none */
	file_key key;           /* of the file it was parsed from */
};

int gw_refs_reader_new(gw_refs_reader **out, const char *path, const char *rel, size_t hash_len)
{
	gw_refs_reader *rd = calloc(1, sizeof(*rd));
	*out = NULL;
	if (rd)
		rd->hash_len = hash_len;
	if (!rd || !(rd->path = strdup(path)) || !(rd->rel = strdup(rel)) ||
	    !(rd->packed_path = gw_fs_join(path, "packed-refs"))) {
		gw_refs_reader_free(rd);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	*out = rd;
	return 0;
}

void gw_refs_reader_free(gw_refs_reader *rd)
{
	if (!rd)
		return;
	gw_packed_refs_release(rd->packed);
	free(rd->path);
	free(rd->rel);
	free(rd->packed_path);
	free(rd);
}

static file_key key_of(const struct stat *st)
{
	file_key k;
	memset(&k, 0, sizeof(k));
	k.dev = st->st_dev;
	k.ino = st->st_ino;
	k.size = st->st_size;
	k.mtime = st->st_mtim;
	k.ctime = st->st_ctim;
	return k;
}

static int key_equal(const file_key *a, const file_key *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
	       a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
	       a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void drop_cache(gw_refs_reader *rd)
{
	gw_packed_refs_release(rd->packed);
	rd->packed = NULL;
}

/*
 * Read and parse packed-refs through one descriptor: 0 and *text (malloc'd,
 * NUL-terminated), 1 if there is no such file, GW_ECHANGED if its size
 * changed while it was read (someone rewrites it in place: git never does).
 */
static int read_packed_file(gw_refs_reader *rd, char **text, size_t *len, struct stat *st)
{
	int fd = open(rd->packed_path, O_RDONLY | O_CLOEXEC), rc = 0;
	size_t got = 0;
	char *buf = NULL;
	*text = NULL;
	if (fd < 0)
		return errno == ENOENT ? 1 : gw_error_set_errno(GW_EIO, "repository %s: cannot open packed-refs", rd->rel);
	if (fstat(fd, st) < 0) {
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot stat packed-refs", rd->rel);
	} else if ((uint64_t)st->st_size >= PACKED_MAX) {
		rc = gw_error_set(GW_EUNSUPPORTED, "repository %s: packed-refs is larger than %zu bytes", rd->rel,
				  PACKED_MAX);
	} else if (!(buf = malloc((size_t)st->st_size + 1))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
	} else {
		size_t want = (size_t)st->st_size;
		char extra;
		for (;;) {
			ssize_t n = got < want ? read(fd, buf + got, want - got) : read(fd, &extra, 1);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0) {
				rc = gw_error_set_errno(GW_EIO, "repository %s: cannot read packed-refs", rd->rel);
				break;
			}
			if (n == 0 || got == want) {
				if (n != 0 || got != want)
					rc = gw_error_set(GW_ECHANGED, "repository %s: packed-refs changed while being read",
							  rd->rel);
				break;
			}
			got += (size_t)n;
		}
	}
	close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*text = buf;
	*len = got;
	return 0;
}

/* The current packed-refs into *out (one more holder), from the cache when the file is the same. */
static int read_packed(gw_refs_reader *rd, gw_packed_refs **out)
{
	struct timespec started;
	struct stat st;
	char what[4200];
	int attempt, rc = GW_ECHANGED;

	*out = NULL;
	clock_gettime(CLOCK_REALTIME_COARSE, &started);
	if (stat(rd->packed_path, &st) < 0) {
		if (errno != ENOENT)
			return gw_error_set_errno(GW_EIO, "repository %s: cannot stat packed-refs", rd->rel);
		drop_cache(rd);
		return 0;
	}
	if (rd->packed) {
		file_key k = key_of(&st);
		if (key_equal(&k, &rd->key)) {
			rd->packed->holders++;
			*out = rd->packed;
			return 0;
		}
	}
	drop_cache(rd);
	snprintf(what, sizeof(what), "repository %s: packed-refs", rd->rel);
	for (attempt = 0; attempt < PACKED_ATTEMPTS && rc == GW_ECHANGED; attempt++) {
		gw_packed_refs *p;
		char *text;
		size_t len = 0;
		if ((rc = read_packed_file(rd, &text, &len, &st)) == 1)
			return 0; /* gone since the stat: none */
		if (rc < 0)
			continue;
		if ((rc = parse_packed(&p, text, len, rd->hash_len, what)) < 0)
			return rc;
		/* Trusted later only if settled: no write in the second the read started in (see the top). */
		if (st.st_mtim.tv_sec < started.tv_sec && st.st_ctim.tv_sec < started.tv_sec) {
			rd->packed = p;
			rd->key = key_of(&st);
			p->holders++;
		}
		*out = p;
	}
	return rc;
}

/*
 * Read a loose ref file (or HEAD): 0 and its content NUL-terminated in buf,
 * 1 if it does not exist (any more), or is not a file, or is too long to be a
 * ref; <0 on an I/O error.
 */
static int read_ref_file(int dirfd, const char *name, char *buf, size_t *len)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK), err;
	size_t got = 0;
	ssize_t n = 0;
	struct stat st;
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR || errno == EISDIR || errno == ELOOP || errno == ENXIO ? 1 : -1;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return 1;
	}
	while (got < LOOSE_MAX && ((n = read(fd, buf + got, LOOSE_MAX - got)) > 0 || (n < 0 && errno == EINTR)))
		if (n > 0)
			got += (size_t)n;
	err = errno;
	close(fd);
	if (n < 0) {
		errno = err;
		return -1;
	}
	if (got == LOOSE_MAX)
		return 1;
	buf[got] = '\0';
	*len = got;
	return 0;
}

/*
 * A loose ref's content, as libgit2 reads it: "ref: <target>" (trailing
 * whitespace trimmed), or an object id in hex (40 digits, 64 in a sha256
 * repository) followed by nothing or whitespace. 0, or -1 when it is neither.
 */
static int parse_loose(char *buf, size_t len, size_t hash_len, unsigned char *oid, const char **target)
{
	*target = NULL;
	if (len >= 5 && memcmp(buf, "ref: ", 5) == 0) {
		while (len && is_space(buf[len - 1]))
			len--;
		buf[len] = '\0';
		if (len < 6)
			return -1;
		*target = buf + 5;
		return 0;
	}
	memset(oid, 0, GW_HASH_MAX);
	if (len < 2 * hash_len || gw_hex_decode(oid, buf, hash_len) < 0)
		return -1;
	return buf[2 * hash_len] == '\0' || is_space(buf[2 * hash_len]) ? 0 : -1;
}

typedef struct {
	gw_refs_reader *rd;
	gw_refs_view *v;
	size_t cap;
	char name[4096]; /* the ref name being walked, "refs/..." */
	char buf[LOOSE_MAX + 1];
} walk;

static int add_loose(walk *w, const unsigned char *oid, const char *target)
{
	gw_ref *r;
	if (GW_ARRAY_RESERVE(w->v->loose, w->cap, w->v->nloose + 1) < 0)
		return GW_ERROR;
	r = &w->v->loose[w->v->nloose];
	memset(r, 0, sizeof(*r));
	if (!(r->name = arena_dup(&w->v->arena, w->name)) || (target && !(r->symbolic = arena_dup(&w->v->arena, target))))
		return gw_error_set(GW_ERROR, "out of memory");
	if (!target)
		memcpy(r->oid, oid, sizeof(r->oid));
	w->v->nloose++;
	return 0;
}

static int walk_dir(walk *w, int fd, size_t len, int depth);

/* One directory entry of refs/ (its name is w->name[0, len + strlen(entry))). */
static int walk_entry(walk *w, int dirfd, const char *entry, unsigned char type, size_t len, int depth)
{
	size_t elen = strlen(entry);
	char shown[256];
	if (len + elen + 2 > sizeof(w->name))
		return gw_error_set(GW_ECORRUPT, "repository %s: a ref name under %s is too long", w->rd->rel,
				    printable(w->name, shown, sizeof(shown)));
	memcpy(w->name + len, entry, elen + 1);
	if (type == DT_UNKNOWN || type == DT_LNK) {
		struct stat st; /* symlinks are followed, as git does */
		if (fstatat(dirfd, entry, &st, 0) < 0)
			return errno == ENOENT || errno == ENOTDIR || errno == ELOOP
				       ? 0
				       : gw_error_set_errno(GW_EIO, "repository %s: cannot stat %s", w->rd->rel,
							    printable(w->name, shown, sizeof(shown)));
		type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_UNKNOWN;
	}
	if (type == DT_DIR) {
		int sub = openat(dirfd, entry, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (sub < 0)
			return errno == ENOENT || errno == ENOTDIR
				       ? 0 /* removed, or replaced by a file, since the listing: it is read below */
				       : gw_error_set_errno(GW_EIO, "repository %s: cannot open %s", w->rd->rel,
							    printable(w->name, shown, sizeof(shown)));
		w->name[len + elen] = '/';
		w->name[len + elen + 1] = '\0';
		return walk_dir(w, sub, len + elen + 1, depth + 1);
	}
	if (type == DT_REG) {
		unsigned char oid[GW_HASH_MAX];
		const char *target;
		size_t n;
		int rc;
		const char *why;
		if ((why = gw_ref_invalid(w->name, NULL)))
			return gw_error_set(GW_ECORRUPT,
					    "repository %s: %s %s (a file under refs/ that git ignores: remove or "
					    "rename it)",
					    w->rd->rel, printable(w->name, shown, sizeof(shown)), why);
		if ((rc = read_ref_file(dirfd, entry, w->buf, &n)) < 0)
			return gw_error_set_errno(GW_EIO, "repository %s: cannot read %s", w->rd->rel,
						  printable(w->name, shown, sizeof(shown)));
		/* Gone since the listing (deleted or packed: packed-refs is read after), or not a ref. */
		if (rc == 1 || parse_loose(w->buf, n, w->rd->hash_len, oid, &target) < 0)
			return 0;
		/* What the manifest and segment parsers would refuse is refused here (refname.h). */
		if (target && (why = gw_ref_invalid(w->name, target))) {
			char shown_target[256];
			return gw_error_set(GW_ECORRUPT,
					    "repository %s: symbolic ref %s %s ('%s'; git ignores it: fix or remove it)",
					    w->rd->rel, printable(w->name, shown, sizeof(shown)), why,
					    printable(target, shown_target, sizeof(shown_target)));
		}
		return add_loose(w, oid, target);
	}
	return 0; /* sockets, FIFOs...: git ignores them too */
}

/* Walk the directory open on fd (taken over), whose ref prefix is w->name[0, len). */
static int walk_dir(walk *w, int fd, size_t len, int depth)
{
	struct dirent *de;
	DIR *d;
	int rc = 0;
	if (depth > MAX_DEPTH) {
		close(fd);
		return gw_error_set(GW_ECORRUPT, "repository %s: refs/ is nested more than %d levels deep", w->rd->rel,
				    MAX_DEPTH);
	}
	if (!(d = fdopendir(fd))) {
		close(fd);
		return gw_error_set_errno(GW_EIO, "repository %s: cannot list refs", w->rd->rel);
	}
	while (rc == 0) {
		size_t elen;
		errno = 0;
		if (!(de = readdir(d))) {
			if (errno)
				rc = gw_error_set_errno(GW_EIO, "repository %s: cannot list refs", w->rd->rel);
			break;
		}
		elen = strlen(de->d_name);
		/* "." and "..", names git skips (never valid), and refs being written. */
		if (de->d_name[0] == '.' || (elen >= 5 && strcmp(de->d_name + elen - 5, ".lock") == 0))
			continue;
		rc = walk_entry(w, dirfd(d), de->d_name, de->d_type, len, depth);
	}
	closedir(d);
	return rc;
}

/*
 * Look name up as libgit2's refdb does: a name under refs/ in the view (loose
 * refs, then packed-refs), another one (HEAD, FETCH_HEAD) from its file.
 * 1 and *out (strings borrowed from the view or from buf), or 0 if there is
 * no such ref or it cannot be read.
 */
static int lookup(gw_refs_reader *rd, const gw_refs_view *v, const char *name, gw_ref *out, char *buf)
{
	const char *target;
	char *path;
	size_t len;
	int rc;
	if (strncmp(name, "refs/", 5) == 0)
		return gw_refs_view_find(v, name, out);
	if (!gw_ref_target_valid(name) || !(path = gw_fs_join(rd->path, name)))
		return 0;
	rc = read_ref_file(AT_FDCWD, path, buf, &len);
	free(path);
	memset(out, 0, sizeof(*out));
	if (rc != 0 || parse_loose(buf, len, rd->hash_len, out->oid, &target) < 0)
		return 0;
	out->name = (char *)name;
	out->symbolic = (char *)target;
	return 1;
}

/* Resolve the symbolic ref r (dangling if that fails), as git_reference_resolve does. */
static void resolve(gw_refs_reader *rd, const gw_refs_view *v, gw_ref *r, char *buf)
{
	char name[LOOSE_MAX + 1];
	int i;
	r->dangling = 1;
	memset(r->oid, 0, sizeof(r->oid));
	/* libgit2 normalises the first target (an invalid one resolves to nothing), not the later ones. */
	if (strlen(r->symbolic) > LOOSE_MAX || !gw_ref_target_valid(r->symbolic))
		return;
	strcpy(name, r->symbolic);
	for (i = 0; i < SYMREF_LOOKUPS; i++) {
		gw_ref t;
		if (!lookup(rd, v, name, &t, buf))
			return;
		if (!t.symbolic) {
			memcpy(r->oid, t.oid, sizeof(r->oid));
			r->dangling = 0;
			return;
		}
		if (strlen(t.symbolic) > LOOSE_MAX)
			return;
		memmove(name, t.symbolic, strlen(t.symbolic) + 1);
	}
}

static int read_head(walk *w)
{
	gw_ref *h = &w->v->head;
	const char *target, *why;
	size_t len;
	int rc = read_ref_file(AT_FDCWD, w->name, w->buf, &len);
	if (rc < 0)
		return gw_error_set_errno(GW_EIO, "repository %s: cannot read HEAD", w->rd->rel);
	if (rc == 1)
		return gw_error_set(GW_ERROR, "repository %s: cannot read HEAD: there is no such file", w->rd->rel);
	if (parse_loose(w->buf, len, w->rd->hash_len, h->oid, &target) < 0)
		return gw_error_set(GW_ERROR, "repository %s: cannot read HEAD: it is neither an object id nor \"ref: <name>\"",
				    w->rd->rel);
	/* What the manifest and segment parsers would refuse is refused here (refname.h). */
	if (target && (why = gw_ref_invalid("HEAD", target))) {
		char shown[256];
		return gw_error_set(GW_ECORRUPT, "repository %s: HEAD %s ('%s')", w->rd->rel, why,
				    printable(target, shown, sizeof(shown)));
	}
	if (!(h->name = arena_dup(&w->v->arena, "HEAD")) || (target && !(h->symbolic = arena_dup(&w->v->arena, target))))
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

int gw_refs_read(gw_refs_reader *rd, gw_refs_view *out)
{
	walk *w = calloc(1, sizeof(*w));
	size_t i;
	int fd, rc;

	memset(out, 0, sizeof(*out));
	if (!w)
		return gw_error_set(GW_ERROR, "out of memory");
	w->rd = rd;
	w->v = out;
	/* 1. Loose refs (before packed-refs: see the top of the file). */
	snprintf(w->name, sizeof(w->name), "%s/refs", rd->path);
	if ((fd = open(w->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot open refs/", rd->rel);
		goto out;
	}
	strcpy(w->name, "refs/");
	if ((rc = walk_dir(w, fd, 5, 0)) < 0)
		goto out;
	/* 2. HEAD. */
	snprintf(w->name, sizeof(w->name), "%s/HEAD", rd->path);
	if ((rc = read_head(w)) < 0)
		goto out;
	/* 3. packed-refs. */
	if ((rc = read_packed(rd, &out->packed)) < 0)
		goto out;
	/* 4. Symbolic refs, in the view now complete. */
	if (out->nloose)
		qsort(out->loose, out->nloose, sizeof(gw_ref), loose_cmp);
	for (i = 0; i < out->nloose; i++)
		if (out->loose[i].symbolic)
			resolve(rd, out, &out->loose[i], w->buf);
	if (out->head.symbolic)
		resolve(rd, out, &out->head, w->buf);
out:
	free(w);
	if (rc < 0)
		gw_refs_view_dispose(out);
	return rc;
}
