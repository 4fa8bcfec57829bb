/*
 * gitwal's read-only object database (include/gitwal/odb.h, DESIGN.md 17):
 * the repository's object format from its config, its sources (its
 * objects directory, then the alternates it names, when asked), loose
 * objects, and the lookup order git uses: packs, loose objects, and when
 * neither has the object, the pack directories listed again (git may have
 * moved loose objects into a new pack meanwhile) and both looked at once
 * more. Packs themselves are read in pack.c.
 */
#include "odb/odb_internal.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/fs.h"
#include "util/git_init.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* git's own limit on alternates of alternates. */
#define ALTERNATES_DEPTH 5
/* A longer objects/info/alternates is not one git wrote. */
#define ALTERNATES_MAX_BYTES (1u << 20)

/* ---- ids and types ---- */

void gw_oid_from_raw(gw_oid *oid, const unsigned char *raw, size_t len)
{
	memset(oid, 0, sizeof(*oid));
	memcpy(oid->id, raw, len);
	oid->len = len;
}

int gw_oid_from_hex(gw_oid *oid, const char *hex, size_t len)
{
	memset(oid, 0, sizeof(*oid));
	if ((len != 20 && len != 32) || strlen(hex) != 2 * len || gw_hex_decode(oid->id, hex, len) < 0)
		return gw_error_set(GW_EINVALID, "'%.80s' is not an object id of %zu hex digits", hex, 2 * len);
	oid->len = len;
	return 0;
}

char *gw_oid_to_hex(char *out, const gw_oid *oid)
{
	gw_hex_encode(out, oid->id, oid->len);
	return out;
}

int gw_oid_equal(const gw_oid *a, const gw_oid *b)
{
	return a->len == b->len && !memcmp(a->id, b->id, a->len);
}

static const char *const type_names[] = {NULL, "commit", "tree", "blob", "tag"};

const char *gw_object_type_name(gw_object_t type)
{
	return type >= GW_OBJECT_COMMIT && type <= GW_OBJECT_TAG ? type_names[type] : NULL;
}

/* The pack format's numbers are the object types'. */
_Static_assert((int)GW_OBJECT_COMMIT == (int)GW_OBJ_COMMIT && (int)GW_OBJECT_TREE == (int)GW_OBJ_TREE &&
		       (int)GW_OBJECT_BLOB == (int)GW_OBJ_BLOB && (int)GW_OBJECT_TAG == (int)GW_OBJ_TAG,
	       "gw_object_t follows Git's pack type numbers");

size_t odb_object_header(char *out, gw_object_t type, uint64_t size)
{
	return (size_t)sprintf(out, "%s %llu", gw_object_type_name(type), (unsigned long long)size) + 1;
}

int odb_hash_matches(size_t hash_len, gw_object_t type, const unsigned char *data, size_t len, const gw_oid *oid)
{
	unsigned char got[GW_HASH_MAX];
	char head[32];
	size_t hl = odb_object_header(head, type, len);
	gw_hash *h;
	if (gw_hash_new(&h, hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256) < 0)
		return 0;
	gw_hash_update(h, head, hl);
	gw_hash_update(h, data, len);
	gw_hash_final(h, got);
	gw_hash_free(h);
	return !memcmp(got, oid->id, hash_len);
}

int odb_corrupt(gw_odb *odb, const gw_oid *oid, const char *file, uint64_t offset, const char *what)
{
	char hex[GW_HEX_MAX];
	if (offset == UINT64_MAX)
		return gw_error_set(GW_ECORRUPT, "repository %s: object %s (%s): %s", odb->label, gw_oid_to_hex(hex, oid),
				    file, what);
	return gw_error_set(GW_ECORRUPT, "repository %s: object %s (%s, offset %llu): %s", odb->label,
			    gw_oid_to_hex(hex, oid), file, (unsigned long long)offset, what);
}

/* ---- the object format ---- */

static int config_fail(const char *label, const char *path)
{
	const git_error *e = git_error_last();
	return gw_error_set(GW_ERROR, "repository %s: cannot read %s: %s", label, path,
			    e && e->message ? e->message : "libgit2 error");
}

int gw_repo_object_format(const char *repo_path, const char *label, size_t *hash_len)
{
	char *path = gw_fs_join(repo_path, "config");
	git_config *cfg = NULL;
	git_buf value = {0};
	int32_t version = 0;
	int rc = 0, have;

	*hash_len = 20;
	if (!path)
		return gw_error_set(GW_ERROR, "out of memory");
	if (access(path, F_OK) != 0)
		goto out; /* no config: git's defaults, version 0 and sha1 */
	/* Read as src/backup/source.c reads it: libgit2 parses a SHA-256 repository's config, only not its objects. */
	gw_git_init();
	if (git_config_open_ondisk(&cfg, path) < 0) {
		rc = config_fail(label, path);
		goto out;
	}
	if (git_config_get_int32(&version, cfg, "core.repositoryformatversion") < 0)
		version = 0;
	have = git_config_get_string_buf(&value, cfg, "extensions.objectformat");
	if (have < 0 && have != GIT_ENOTFOUND) {
		rc = config_fail(label, path);
		goto out;
	}
	if (have == GIT_ENOTFOUND || !strcmp(value.ptr, "sha1"))
		goto out;
	/* As git: an extension needs version 1, and the names are exact (git refuses "SHA256"). */
	if (strcmp(value.ptr, "sha256"))
		rc = gw_error_set(GW_EUNSUPPORTED, "repository %s uses object format '%.40s'; gitwal reads sha1 and sha256",
				  label, value.ptr);
	else if (version != 1)
		rc = gw_error_set(GW_EUNSUPPORTED,
				  "repository %s sets extensions.objectformat=sha256 with "
				  "core.repositoryformatversion=%d (git refuses it: the extension needs version 1)",
				  label, (int)version);
	else
		*hash_len = 32;
out:
	git_buf_dispose(&value);
	git_config_free(cfg);
	free(path);
	return rc;
}

/* ---- zlib streams ---- */

int odb_inflater_init(odb_inflater *f, odb_fill_fn fill, void *ctx)
{
	memset(f, 0, sizeof(*f));
	f->fill = fill;
	f->ctx = ctx;
	if (inflateInit(&f->z) != Z_OK)
		return gw_error_set(GW_ERROR, "zlib initialisation failed");
	return 0;
}

void odb_inflater_dispose(odb_inflater *f)
{
	inflateEnd(&f->z);
}

int odb_inflate(odb_inflater *f, unsigned char *out, size_t want, size_t *got, const char **why)
{
	int rc;
	*got = 0;
	*why = NULL;
	while (*got < want && !f->ended) {
		int zr;
		if (f->z.avail_in == 0) {
			const unsigned char *p;
			size_t n;
			if ((rc = f->fill(f->ctx, &p, &n)) < 0)
				return rc;
			if (n == 0) {
				*why = "truncated zlib stream";
				return GW_ECORRUPT;
			}
			f->z.next_in = (unsigned char *)p;
			f->z.avail_in = n > UINT_MAX ? UINT_MAX : (uInt)n;
		}
		f->z.next_out = out + *got;
		f->z.avail_out = want - *got > UINT_MAX ? UINT_MAX : (uInt)(want - *got);
		zr = inflate(&f->z, Z_NO_FLUSH);
		*got = (size_t)(f->z.next_out - out);
		if (zr == Z_STREAM_END)
			f->ended = 1;
		else if (zr != Z_OK && !(zr == Z_BUF_ERROR && f->z.avail_in == 0)) {
			*why = "bad zlib data";
			return GW_ECORRUPT;
		}
	}
	return 0;
}

int odb_inflate_end_check(odb_inflater *f, int strict, const char **why)
{
	unsigned char extra[1];
	size_t got;
	int rc;
	*why = NULL;
	if (!f->ended) {
		if ((rc = odb_inflate(f, extra, sizeof(extra), &got, why)) < 0)
			return rc;
		if (got) {
			*why = "its data is longer than its header says";
			return GW_ECORRUPT;
		}
	}
	if (strict && f->z.avail_in) {
		*why = "garbage after its data";
		return GW_ECORRUPT;
	}
	return 0;
}

/* ---- loose objects ---- */

typedef struct {
	int fd;
	unsigned char *buf;
	size_t cap;
	const char *path;
} loose_fill_ctx;

static int loose_fill(void *ctx, const unsigned char **p, size_t *n)
{
	loose_fill_ctx *c = ctx;
	ssize_t got;
	do
		got = read(c->fd, c->buf, c->cap);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return gw_error_set_errno(GW_EIO, "cannot read %s", c->path);
	*p = c->buf;
	*n = (size_t)got;
	return 0;
}

/* "type size\0": the type, size and header length; 0 when it is not one. */
static size_t parse_loose_header(const unsigned char *buf, size_t len, gw_object_t *type, uint64_t *size)
{
	const unsigned char *nul = memchr(buf, '\0', len), *sp, *d;
	int t;
	if (!nul || !(sp = memchr(buf, ' ', (size_t)(nul - buf))) || sp + 1 == nul)
		return 0;
	for (t = GW_OBJECT_COMMIT; t <= GW_OBJECT_TAG; t++)
		if ((size_t)(sp - buf) == strlen(type_names[t]) && !memcmp(buf, type_names[t], (size_t)(sp - buf)))
			break;
	if (t > GW_OBJECT_TAG)
		return 0;
	*size = 0;
	for (d = sp + 1; d < nul; d++) {
		if (*d < '0' || *d > '9' || *size > (UINT64_MAX - 9) / 10)
			return 0;
		*size = *size * 10 + (uint64_t)(*d - '0');
	}
	*type = (gw_object_t)t;
	return (size_t)(nul - buf) + 1;
}

/*
 * The loose object oid in source s: 0 when it has none (no file), 1 when it
 * was read (data NULL: type and size only).
 */
static int loose_read(gw_odb *odb, odb_source *s, const gw_oid *oid, gw_object_t *type, unsigned char **data,
		      size_t *len, uint64_t *size)
{
	char hex[GW_HEX_MAX], path[PATH_MAX];
	unsigned char head[64], *buf = NULL;
	loose_fill_ctx ctx = {-1, NULL, 0, path};
	odb_inflater inf;
	const char *why = NULL;
	size_t got, hl, have, more;
	struct stat st;
	int rc, inf_ok = 0;

	gw_oid_to_hex(hex, oid);
	if ((size_t)snprintf(path, sizeof(path), "%s/%.2s/%s", s->objects, hex, hex + 2) >= sizeof(path))
		return gw_error_set(GW_EINVALID, "repository %s: path too long under %s", odb->label, s->objects);
	if ((ctx.fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		return gw_error_set_errno(GW_EIO, "repository %s: cannot open %s", odb->label, path);
	}
	if (fstat(ctx.fd, &st) < 0) {
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot stat %s", odb->label, path);
		goto out;
	}
	ctx.cap = st.st_size > 0 && st.st_size < (1 << 16) ? (size_t)st.st_size + 1 : (1 << 16);
	if (!(ctx.buf = malloc(ctx.cap))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = odb_inflater_init(&inf, loose_fill, &ctx)) < 0)
		goto out;
	inf_ok = 1;
	/* A damaged stream after the header does not keep the header from being read: git reads it so too. */
	rc = odb_inflate(&inf, head, sizeof(head), &got, &why);
	if (rc < 0 && (rc != GW_ECORRUPT || !got))
		goto out;
	if (!(hl = parse_loose_header(head, got, type, size))) {
		rc = odb_corrupt(odb, oid, path, UINT64_MAX, rc < 0 ? why : "bad loose object header");
		goto out;
	}
	if (!data) {
		rc = 1;
		goto out;
	}
	if (rc < 0)
		goto out;
	if (*size > (uint64_t)(st.st_size > 0 ? st.st_size : 0) * 1100 + 64 || *size >= SIZE_MAX ||
	    (odb->max_object_size && *size > odb->max_object_size)) {
		rc = odb_corrupt(odb, oid, path, UINT64_MAX, "its size is more than allowed or its data can hold");
		goto out;
	}
	if (!(buf = malloc((size_t)*size + 1))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	have = got - hl;
	if (have > *size) {
		rc = odb_corrupt(odb, oid, path, UINT64_MAX, "its data is longer than its header says");
		goto out;
	}
	memcpy(buf, head + hl, have);
	if ((rc = odb_inflate(&inf, buf + have, (size_t)*size - have, &more, &why)) < 0 ||
	    (rc = odb_inflate_end_check(&inf, 1, &why)) < 0)
		goto out;
	if (have + more != *size) {
		rc = odb_corrupt(odb, oid, path, UINT64_MAX, "its data is shorter than its header says");
		goto out;
	}
	buf[*size] = '\0';
	*data = buf;
	*len = (size_t)*size;
	buf = NULL;
	rc = 1;
out:
	if (rc == GW_ECORRUPT && why)
		rc = odb_corrupt(odb, oid, path, UINT64_MAX, why);
	if (inf_ok)
		odb_inflater_dispose(&inf);
	free(buf);
	free(ctx.buf);
	close(ctx.fd);
	return rc;
}

/* ---- sources ---- */

static int source_has_pack(const odb_source *s, const char *name)
{
	size_t i;
	for (i = 0; i < s->npacks; i++)
		if (!strcmp(s->packs[i]->name, name))
			return 1;
	return 0;
}

/* Open the packs of s not open yet (all of them the first time); *added counts them. */
static int source_refresh(gw_odb *odb, odb_source *s, size_t *added)
{
	char dir[PATH_MAX];
	struct dirent *de;
	DIR *d;
	int rc = 0;
	snprintf(dir, sizeof(dir), "%s/pack", s->objects);
	if (!(d = opendir(dir)))
		return errno == ENOENT ? 0 : gw_error_set_errno(GW_EIO, "repository %s: cannot list %s", odb->label, dir);
	while (rc == 0 && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char name[NAME_MAX + 1];
		odb_pack *p;
		/* The .idx is written last: a pack without one is still being written. */
		if (len < 10 || strncmp(de->d_name, "pack-", 5) || strcmp(de->d_name + len - 4, ".idx"))
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(len - 4), de->d_name);
		if (source_has_pack(s, name))
			continue;
		if ((rc = odb_pack_open(odb, &p, dir, name)) == GW_ENOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc < 0)
			break;
		if ((rc = GW_ARRAY_RESERVE(s->packs, s->cap, s->npacks + 1)) < 0) {
			odb_pack_free(odb, p);
			break;
		}
		s->packs[s->npacks++] = p;
		(*added)++;
	}
	closedir(d);
	return rc;
}

static int add_source(gw_odb *odb, const char *objects)
{
	odb_source *ns;
	if (GW_ARRAY_RESERVE(odb->sources, odb->sources_cap, odb->nsources + 1) < 0)
		return GW_ERROR;
	ns = odb->sources;
	memset(&ns[odb->nsources], 0, sizeof(*ns));
	if (!(ns[odb->nsources].objects = strdup(objects)))
		return gw_error_set(GW_ERROR, "out of memory");
	odb->nsources++;
	return 0;
}

/* A C-quoted alternates line ("..." with \\ escapes, as git writes paths with unusual bytes), in place. */
static int unquote(char *s)
{
	char *r = s + 1, *w = s;
	while (*r && *r != '"') {
		if (*r != '\\') {
			*w++ = *r++;
			continue;
		}
		r++;
		switch (*r) {
		case 'a': *w++ = '\a'; r++; break;
		case 'b': *w++ = '\b'; r++; break;
		case 'f': *w++ = '\f'; r++; break;
		case 'n': *w++ = '\n'; r++; break;
		case 'r': *w++ = '\r'; r++; break;
		case 't': *w++ = '\t'; r++; break;
		case 'v': *w++ = '\v'; r++; break;
		case '\\': case '"': *w++ = *r++; break;
		default:
			if (r[0] >= '0' && r[0] <= '3' && r[1] >= '0' && r[1] <= '7' && r[2] >= '0' && r[2] <= '7') {
				*w++ = (char)((r[0] - '0') << 6 | (r[1] - '0') << 3 | (r[2] - '0'));
				r += 3;
				break;
			}
			return -1;
		}
	}
	if (*r != '"' || r[1] || w == s)
		return -1;
	*w = '\0';
	return 0;
}

static int under(const char *path, const char *root)
{
	size_t n = strlen(root);
	return !strcmp(root, "/") || (!strncmp(path, root, n) && (path[n] == '/' || path[n] == '\0'));
}

/* A small text file whole (NUL-terminated): GW_ENOTFOUND when it does not exist. */
static int read_small_file(const char *path, size_t max, char **text, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	*text = NULL;
	*len = 0;
	if (!f)
		return errno == ENOENT ? GW_ENOTFOUND : gw_error_set_errno(GW_EIO, "cannot open %s", path);
	if (!(buf = malloc(max + 1))) {
		fclose(f);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	*len = fread(buf, 1, max + 1, f);
	if (ferror(f) || *len > max) {
		int rc = ferror(f) ? gw_error_set_errno(GW_EIO, "cannot read %s", path)
				   : gw_error_set(GW_EINVALID, "%s is longer than %zu bytes", path, max);
		fclose(f);
		free(buf);
		return rc;
	}
	fclose(f);
	buf[*len] = '\0';
	*text = buf;
	return 0;
}

/*
 * The alternates of source `at` (its index), recursively. chain[0..depth]
 * are the sources from the repository down to it: an alternate naming one
 * of them loops. One reached twice some other way is looked at once.
 */
static int read_alternates(gw_odb *odb, size_t at, size_t *chain, int depth, const char *root)
{
	char file[PATH_MAX], *text = NULL, *line, *next;
	size_t text_len, i;
	int rc = 0, lineno = 0;

	snprintf(file, sizeof(file), "%s/info/alternates", odb->sources[at].objects);
	if ((rc = read_small_file(file, ALTERNATES_MAX_BYTES, &text, &text_len)) == GW_ENOTFOUND)
		return 0;
	if (rc < 0)
		return gw_error_prefix("repository %s", odb->label);
	if (memchr(text, '\0', text_len)) {
		rc = gw_error_set(GW_EINVALID, "repository %s: %s holds a NUL byte", odb->label, file);
		goto out;
	}
	for (line = text; line && rc == 0; line = next) {
		char joined[PATH_MAX], real[PATH_MAX];
		struct stat st;
		if ((next = strchr(line, '\n')))
			*next++ = '\0';
		lineno++;
		if (!*line || *line == '#')
			continue;
		if (*line == '"' && unquote(line) < 0) {
			rc = gw_error_set(GW_EINVALID, "repository %s: %s line %d is badly quoted: %.200s", odb->label, file,
					  lineno, line);
			break;
		}
		if (*line == '/')
			snprintf(joined, sizeof(joined), "%s", line);
		else
			snprintf(joined, sizeof(joined), "%s/%s", odb->sources[at].objects, line);
		if (!realpath(joined, real) || stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
			rc = gw_error_set(GW_EINVALID, "repository %s: alternate %s (%s line %d) is not a directory",
					  odb->label, line, file, lineno);
			break;
		}
		if (root && !under(real, root)) {
			rc = gw_error_set(GW_EINVALID, "repository %s: alternate %s (%s line %d) leaves the root %s",
					  odb->label, line, file, lineno, root);
			break;
		}
		for (i = 0; i <= (size_t)depth; i++)
			if (!strcmp(odb->sources[chain[i]].objects, real))
				break;
		if (i <= (size_t)depth) {
			rc = gw_error_set(GW_EINVALID, "repository %s: alternate %s (%s line %d) loops back to %s",
					  odb->label, line, file, lineno, real);
			break;
		}
		for (i = 0; i < odb->nsources; i++)
			if (!strcmp(odb->sources[i].objects, real))
				break;
		if (i < odb->nsources)
			continue; /* reached another way already */
		if (depth + 1 > ALTERNATES_DEPTH) {
			rc = gw_error_set(GW_EINVALID,
					  "repository %s: alternate %s (%s line %d) nests deeper than %d alternates",
					  odb->label, line, file, lineno, ALTERNATES_DEPTH);
			break;
		}
		if ((rc = add_source(odb, real)) < 0)
			break;
		chain[depth + 1] = odb->nsources - 1;
		rc = read_alternates(odb, odb->nsources - 1, chain, depth + 1, root);
	}
out:
	free(text);
	return rc;
}

/* ---- the database ---- */

int gw_odb_open(gw_odb **out, const char *path, const gw_odb_options *opts)
{
	static const gw_odb_options defaults;
	char objects[PATH_MAX], real[PATH_MAX], repo[PATH_MAX], root[PATH_MAX];
	size_t chain[ALTERNATES_DEPTH + 1], i, added = 0;
	struct stat st;
	gw_odb *odb;
	int rc;

	*out = NULL;
	if (!opts)
		opts = &defaults;
	if (opts->hash_len && opts->hash_len != 20 && opts->hash_len != 32)
		return gw_error_set(GW_EINVALID, "object ids are 20 or 32 bytes, not %zu", opts->hash_len);
	/* A repository, or an objects directory (whose repository is its parent). */
	snprintf(objects, sizeof(objects), "%s/objects", path);
	if (stat(objects, &st) == 0 && S_ISDIR(st.st_mode)) {
		snprintf(repo, sizeof(repo), "%s", path);
	} else {
		snprintf(objects, sizeof(objects), "%s", path);
		snprintf(repo, sizeof(repo), "%s/..", path);
	}
	if (!realpath(objects, real) || stat(real, &st) < 0 || !S_ISDIR(st.st_mode))
		return gw_error_set(GW_ENOTFOUND, "repository %s: no objects directory at %s",
				    opts->label ? opts->label : path, objects);
	if (!(odb = calloc(1, sizeof(*odb))))
		return gw_error_set(GW_ERROR, "out of memory");
	odb->verify = !opts->no_verify;
	odb->max_object_size = opts->max_object_size;
	odb->cache_bytes = opts->cache_bytes ? opts->cache_bytes : ODB_CACHE_BYTES;
	odb->cache_max_entry = odb->cache_bytes / 16 > (1u << 20) ? odb->cache_bytes / 16 : (1u << 20);
	if (odb->cache_max_entry > odb->cache_bytes)
		odb->cache_max_entry = odb->cache_bytes;
	odb->nbuckets = 4096;
	odb->nwindows = ODB_WINDOW_BYTES / ODB_WINDOW_SIZE;
	if (!(odb->label = strdup(opts->label ? opts->label : path)) ||
	    !(odb->buckets = calloc(odb->nbuckets, sizeof(*odb->buckets))) ||
	    !(odb->windows = calloc(odb->nwindows, sizeof(*odb->windows)))) {
		gw_odb_free(odb);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	for (i = 0; i < odb->nwindows; i++)
		odb->windows[i].fd = -1;
	odb->hash_len = opts->hash_len;
	if (!odb->hash_len && (rc = gw_repo_object_format(repo, odb->label, &odb->hash_len)) < 0)
		goto fail;
	if ((rc = add_source(odb, real)) < 0)
		goto fail;
	snprintf(objects, sizeof(objects), "%s/info/alternates", real);
	if (!opts->alternates) {
		odb->alternates_ignored = stat(objects, &st) == 0 && st.st_size > 0;
	} else {
		if (opts->root && !realpath(opts->root, root)) {
			rc = gw_error_set_errno(GW_EINVALID, "repository %s: root %s", odb->label, opts->root);
			goto fail;
		}
		chain[0] = 0;
		if ((rc = read_alternates(odb, 0, chain, 0, opts->root ? root : NULL)) < 0)
			goto fail;
	}
	for (i = 0; i < odb->nsources; i++)
		if ((rc = source_refresh(odb, &odb->sources[i], &added)) < 0)
			goto fail;
	*out = odb;
	return 0;
fail:
	gw_odb_free(odb);
	return rc;
}

void gw_odb_free(gw_odb *odb)
{
	size_t i, j;
	if (!odb)
		return;
	if (odb->buckets)
		odb_cache_clear(odb);
	for (i = 0; i < odb->nsources; i++) {
		for (j = 0; j < odb->sources[i].npacks; j++)
			odb_pack_free(odb, odb->sources[i].packs[j]);
		free(odb->sources[i].packs);
		free(odb->sources[i].objects);
	}
	for (i = 0; odb->windows && i < odb->nwindows; i++)
		free(odb->windows[i].buf);
	free(odb->windows);
	free(odb->sources);
	free(odb->buckets);
	free(odb->label);
	free(odb);
}

size_t gw_odb_hash_len(const gw_odb *odb)
{
	return odb->hash_len;
}

const char *gw_odb_source_dir(const gw_odb *odb, size_t i)
{
	return i < odb->nsources ? odb->sources[i].objects : NULL;
}

/* The object in one of the packs: 1 and read (data NULL: type and size only; exists NULL too: presence), 0 absent. */
static int find_in_packs(gw_odb *odb, const gw_oid *oid, gw_object_t *type, unsigned char **data, size_t *len,
			 uint64_t *size, int header)
{
	size_t i, k;
	int rc;
	for (i = 0; i < odb->nsources; i++) {
		odb_source *s = &odb->sources[i];
		for (k = 0; k < s->npacks; k++) {
			size_t at = (s->last_hit + k) % s->npacks;
			odb_pack *p = s->packs[at];
			uint64_t off;
			if ((rc = odb_pack_find(odb, p, oid, &off)) <= 0) {
				if (rc < 0)
					return rc;
				continue;
			}
			s->last_hit = at;
			if (!header && !data)
				return 1;
			if ((rc = odb_pack_read(odb, p, off, oid, type, data, len, size)) < 0)
				return rc;
			if (data && odb->verify && !odb_hash_matches(odb->hash_len, *type, *data, *len, oid)) {
				free(*data);
				*data = NULL;
				return odb_corrupt(odb, oid, p->path, off, "its content does not match its id");
			}
			return 1;
		}
	}
	return 0;
}

static int find_loose(gw_odb *odb, const gw_oid *oid, gw_object_t *type, unsigned char **data, size_t *len,
		      uint64_t *size, int header)
{
	char hex[GW_HEX_MAX], path[PATH_MAX];
	size_t i;
	int rc;
	for (i = 0; i < odb->nsources; i++) {
		if (!header && !data) {
			gw_oid_to_hex(hex, oid);
			snprintf(path, sizeof(path), "%s/%.2s/%s", odb->sources[i].objects, hex, hex + 2);
			if (access(path, F_OK) == 0)
				return 1;
			continue;
		}
		if ((rc = loose_read(odb, &odb->sources[i], oid, type, data, len, size)) == 0)
			continue;
		if (rc > 0 && data && odb->verify && !odb_hash_matches(odb->hash_len, *type, *data, *len, oid)) {
			free(*data);
			*data = NULL;
			gw_oid_to_hex(hex, oid);
			snprintf(path, sizeof(path), "%s/%.2s/%s", odb->sources[i].objects, hex, hex + 2);
			return odb_corrupt(odb, oid, path, UINT64_MAX, "its content does not match its id");
		}
		return rc;
	}
	return 0;
}

/* 1 found (and read as asked), 0 absent (no error set), <0 error. */
static int lookup(gw_odb *odb, const gw_oid *oid, gw_object_t *type, unsigned char **data, size_t *len,
		  uint64_t *size, int header)
{
	int attempt, rc;
	if (oid->len != odb->hash_len)
		return gw_error_set(GW_EINVALID, "repository %s: an object id of %zu bytes, the repository's have %zu",
				    odb->label, oid->len, odb->hash_len);
	for (attempt = 0; attempt < 2; attempt++) {
		size_t i, added = 0;
		if ((rc = find_in_packs(odb, oid, type, data, len, size, header)) != 0 ||
		    (rc = find_loose(odb, oid, type, data, len, size, header)) != 0)
			return rc < 0 ? rc : 1;
		/* Git may have packed it (and removed the loose copy) since the packs were listed. */
		for (i = 0; i < odb->nsources && attempt == 0; i++)
			if ((rc = source_refresh(odb, &odb->sources[i], &added)) < 0)
				return rc;
		if (!added)
			break;
	}
	return 0;
}

static int not_found(gw_odb *odb, const gw_oid *oid)
{
	char hex[GW_HEX_MAX];
	return gw_error_set(GW_ENOTFOUND, "repository %s: object %s not found%s", odb->label, gw_oid_to_hex(hex, oid),
			    odb->alternates_ignored ? " (its objects/info/alternates was not followed)" : "");
}

int gw_odb_read(gw_odb *odb, const gw_oid *oid, gw_object_t *type, unsigned char **data, size_t *len)
{
	uint64_t size;
	int rc;
	*data = NULL;
	*len = 0;
	if ((rc = lookup(odb, oid, type, data, len, &size, 0)) < 0)
		return rc;
	return rc ? 0 : not_found(odb, oid);
}

int gw_odb_read_header(gw_odb *odb, const gw_oid *oid, gw_object_t *type, uint64_t *size)
{
	int rc = lookup(odb, oid, type, NULL, NULL, size, 1);
	if (rc < 0)
		return rc;
	return rc ? 0 : not_found(odb, oid);
}

int gw_odb_exists(gw_odb *odb, const gw_oid *oid)
{
	return lookup(odb, oid, NULL, NULL, NULL, NULL, 0);
}
