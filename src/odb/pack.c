/*
 * Reading objects out of packs (.pack + .idx v2, SHA-1 or SHA-256), for the
 * object reader (odb.c). Nothing is mapped and no pack is held in memory:
 * files are read through a small direct-mapped cache of 64 KiB windows
 * (8 MiB in all), which also serves the index lookups (a binary search in
 * one fanout bucket, a few windows once warm). A delta is resolved by
 * walking its chain down to a whole object (or a cached base) and applying
 * the deltas back up; the bases met on the way are kept in a cache bounded
 * in bytes (16 MiB, least recently used out), since a walk reads many
 * objects deltified against the same few bases.
 *
 * The data is a live repository's and is not trusted: offsets are checked
 * against the pack, entry headers, zlib streams and deltas are checked,
 * the inflated size must be exactly the announced one, chains are bounded
 * (ODB_MAX_DELTA_DEPTH: a REF_DELTA loop ends there), and every failure is
 * GW_ECORRUPT naming the object, the file and the offset.
 */
#include "odb/odb_internal.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- the window cache ---- */

static odb_window *window_for(gw_odb *odb, int fd, uint64_t start)
{
	uint64_t h = (start / ODB_WINDOW_SIZE) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(unsigned)fd * 0xFF51AFD7ED558CCDull;
	return &odb->windows[(h >> 32) % odb->nwindows];
}

/* The bytes of fd at off: *p and how many follow in its window (at least 1). */
static int window_get(gw_odb *odb, int fd, uint64_t size, const char *path, uint64_t off, const unsigned char **p,
		      size_t *avail)
{
	uint64_t start = off - off % ODB_WINDOW_SIZE;
	odb_window *w;
	if (off >= size)
		return gw_error_set(GW_ECORRUPT, "%s is truncated at byte %llu", path, (unsigned long long)off);
	w = window_for(odb, fd, start);
	if (w->fd != fd || w->start != start) {
		size_t len = size - start < ODB_WINDOW_SIZE ? (size_t)(size - start) : ODB_WINDOW_SIZE, got = 0;
		if (!w->buf && !(w->buf = malloc(ODB_WINDOW_SIZE)))
			return gw_error_set(GW_ERROR, "out of memory");
		w->fd = -1;
		while (got < len) {
			ssize_t n = pread(fd, w->buf + got, len - got, (off_t)(start + got));
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0)
				return gw_error_set_errno(GW_EIO, "cannot read %s", path);
			if (n == 0)
				return gw_error_set(GW_ECORRUPT, "%s is truncated at byte %llu", path,
						    (unsigned long long)(start + got));
			got += (size_t)n;
		}
		w->fd = fd;
		w->start = start;
		w->len = len;
	}
	*p = w->buf + (off - start);
	*avail = w->len - (size_t)(off - start);
	return 0;
}

int odb_file_read(gw_odb *odb, int fd, uint64_t size, const char *path, uint64_t off, void *buf, size_t len)
{
	unsigned char *out = buf;
	while (len) {
		const unsigned char *p;
		size_t avail;
		int rc;
		if ((rc = window_get(odb, fd, size, path, off, &p, &avail)) < 0)
			return rc;
		if (avail > len)
			avail = len;
		memcpy(out, p, avail);
		out += avail;
		off += avail;
		len -= avail;
	}
	return 0;
}

static void windows_forget(gw_odb *odb, int fd)
{
	size_t i;
	for (i = 0; i < odb->nwindows; i++)
		if (odb->windows[i].fd == fd)
			odb->windows[i].fd = -1;
}

/* ---- packs ---- */

void odb_pack_free(gw_odb *odb, odb_pack *p)
{
	if (!p)
		return;
	if (p->pack_fd >= 0) {
		windows_forget(odb, p->pack_fd);
		close(p->pack_fd);
	}
	if (p->idx_fd >= 0) {
		windows_forget(odb, p->idx_fd);
		close(p->idx_fd);
	}
	free(p->path);
	free(p->idx_path);
	free(p->name);
	free(p);
}

int odb_pack_open(gw_odb *odb, odb_pack **out, const char *dir, const char *name)
{
	odb_pack *p = calloc(1, sizeof(*p));
	unsigned char head[GW_PACK_HEADER_SIZE], trailer[GW_HASH_MAX];
	size_t hl = odb->hash_len;
	struct stat st;
	int rc;

	*out = NULL;
	if (!p)
		return gw_error_set(GW_ERROR, "out of memory");
	p->pack_fd = p->idx_fd = -1;
	if (!(p->name = strdup(name)) || asprintf(&p->path, "%s/%s.pack", dir, name) < 0 ||
	    asprintf(&p->idx_path, "%s/%s.idx", dir, name) < 0) {
		p->path = p->idx_path = NULL;
		odb_pack_free(odb, p);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	if ((p->idx_fd = open(p->idx_path, O_RDONLY | O_CLOEXEC)) < 0 ||
	    (p->pack_fd = open(p->path, O_RDONLY | O_CLOEXEC)) < 0) {
		/* Removed since the directory was listed (a repack): not an error, the objects are elsewhere. */
		rc = errno == ENOENT ? GW_ENOTFOUND
				     : gw_error_set_errno(GW_EIO, "repository %s: cannot open %s", odb->label,
							  p->idx_fd < 0 ? p->idx_path : p->path);
		goto fail;
	}
	if (fstat(p->pack_fd, &st) < 0) {
		rc = gw_error_set_errno(GW_EIO, "repository %s: cannot stat %s", odb->label, p->path);
		goto fail;
	}
	p->pack_size = (uint64_t)st.st_size;
	/* The index's checksum is not verified (that reads it whole): every read of it is bounds-checked instead. */
	if ((rc = gw_idx_open(&p->idx, p->idx_fd, p->idx_path, hl, 0)) < 0) {
		gw_error_prefix("repository %s", odb->label);
		goto fail;
	}
	if (p->pack_size < GW_PACK_HEADER_SIZE + hl) {
		rc = gw_error_set(GW_ECORRUPT, "repository %s: %s is too small to be a pack (%llu bytes)", odb->label,
				  p->path, (unsigned long long)p->pack_size);
		goto fail;
	}
	if ((rc = odb_file_read(odb, p->pack_fd, p->pack_size, p->path, 0, head, sizeof(head))) < 0 ||
	    (rc = odb_file_read(odb, p->pack_fd, p->pack_size, p->path, p->pack_size - hl, trailer, hl)) < 0) {
		gw_error_prefix("repository %s", odb->label);
		goto fail;
	}
	if (memcmp(head, "PACK", 4) || (gw_get_be32(head + 4) != 2 && gw_get_be32(head + 4) != 3)) {
		rc = gw_error_set(GW_ECORRUPT, "repository %s: %s is not a version 2 pack", odb->label, p->path);
		goto fail;
	}
	if (gw_get_be32(head + 8) != p->idx.count || memcmp(trailer, p->idx.pack_checksum, hl)) {
		rc = gw_error_set(GW_ECORRUPT, "repository %s: %s does not match its index %s (%s)", odb->label, p->path,
				  p->idx_path, gw_get_be32(head + 8) != p->idx.count ? "object count" : "checksum");
		goto fail;
	}
	*out = p;
	return 0;
fail:
	odb_pack_free(odb, p);
	return rc;
}

int odb_pack_find(gw_odb *odb, odb_pack *p, const gw_oid *oid, uint64_t *offset)
{
	const gw_idx *x = &p->idx;
	size_t hl = odb->hash_len;
	uint32_t lo = oid->id[0] ? x->fanout[oid->id[0] - 1] : 0, hi = x->fanout[oid->id[0]];
	unsigned char cur[GW_HASH_MAX], ofs[4];
	char hex[GW_HEX_MAX];
	int rc;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		int cmp;
		if ((rc = odb_file_read(odb, p->idx_fd, x->file_size, p->idx_path, x->oid_off + (uint64_t)mid * hl, cur,
					hl)) < 0)
			return rc;
		cmp = memcmp(cur, oid->id, hl);
		if (cmp < 0) {
			lo = mid + 1;
		} else if (cmp > 0) {
			hi = mid;
		} else {
			if ((rc = odb_file_read(odb, p->idx_fd, x->file_size, p->idx_path, x->ofs_off + (uint64_t)mid * 4,
						ofs, 4)) < 0 ||
			    (rc = gw_idx_decode_offset(x, ofs, offset)) < 0)
				return gw_error_prefix("repository %s", odb->label);
			if (*offset < GW_PACK_HEADER_SIZE || *offset >= p->pack_size - hl)
				return gw_error_set(GW_ECORRUPT,
						    "repository %s: %s gives object %s offset %llu, outside its pack",
						    odb->label, p->idx_path, gw_oid_to_hex(hex, oid),
						    (unsigned long long)*offset);
			return 1;
		}
	}
	return 0;
}

/* ---- entries ---- */

typedef struct {
	int type;
	uint64_t size;     /* inflated: the object's, or the delta's */
	uint64_t data_off; /* the zlib stream */
	uint64_t base_off; /* deltas */
	gw_oid base;       /* REF_DELTA */
} entry_hdr;

/* Up to the largest inflated size a zlib stream of n bytes can produce (deflate peaks near 1032:1). */
static uint64_t inflate_bound(uint64_t n)
{
	return n > UINT64_MAX / 1100 ? UINT64_MAX : n * 1100 + 64;
}

static int entry_header(gw_odb *odb, odb_pack *p, uint64_t off, const gw_oid *oid, entry_hdr *e)
{
	unsigned char buf[GW_PACK_ENTRY_HEADER_MAX];
	uint64_t end = p->pack_size - odb->hash_len, distance;
	size_t n, used, k;
	int rc;

	memset(e, 0, sizeof(*e));
	if (off < GW_PACK_HEADER_SIZE || off >= end)
		return odb_corrupt(odb, oid, p->path, off, "entry offset outside the pack");
	n = end - off < sizeof(buf) ? (size_t)(end - off) : sizeof(buf);
	if ((rc = odb_file_read(odb, p->pack_fd, p->pack_size, p->path, off, buf, n)) < 0)
		return rc;
	used = gw_pack_parse_header(buf, n, &e->type, &e->size);
	if (!used || e->type == 0 || e->type == 5)
		return odb_corrupt(odb, oid, p->path, off, "bad entry header");
	if (e->type == GW_OBJ_OFS_DELTA) {
		if (!(k = gw_pack_parse_ofs(buf + used, n - used, &distance)) || distance == 0 ||
		    distance > off - GW_PACK_HEADER_SIZE)
			return odb_corrupt(odb, oid, p->path, off, "bad delta base offset");
		e->base_off = off - distance;
		used += k;
	} else if (e->type == GW_OBJ_REF_DELTA) {
		if (n - used < odb->hash_len)
			return odb_corrupt(odb, oid, p->path, off, "truncated delta base id");
		gw_oid_from_raw(&e->base, buf + used, odb->hash_len);
		used += odb->hash_len;
	}
	if (used >= end - off)
		return odb_corrupt(odb, oid, p->path, off, "the entry has no data");
	e->data_off = off + used;
	if (e->size > inflate_bound(end - e->data_off) || e->size >= SIZE_MAX)
		return odb_corrupt(odb, oid, p->path, off, "its size is more than its data can hold");
	/* A delta spends at most 8 bytes (a copy instruction) per byte it writes. */
	if (odb->max_object_size && e->size > (e->type < GW_OBJ_OFS_DELTA ? odb->max_object_size
									  : odb->max_object_size * 8 + 64))
		return odb_corrupt(odb, oid, p->path, off, "larger than allowed");
	return 0;
}

typedef struct {
	gw_odb *odb;
	odb_pack *p;
	uint64_t pos, end;
} pack_fill_ctx;

static int pack_fill(void *ctx, const unsigned char **p, size_t *n)
{
	pack_fill_ctx *c = ctx;
	int rc;
	*n = 0;
	if (c->pos >= c->end)
		return 0;
	if ((rc = window_get(c->odb, c->p->pack_fd, c->p->pack_size, c->p->path, c->pos, p, n)) < 0)
		return rc;
	if (*n > c->end - c->pos)
		*n = (size_t)(c->end - c->pos);
	c->pos += *n;
	return 0;
}

/*
 * Inflate the entry's data: all of it (exactly e->size bytes, into a new
 * buffer with a NUL after it), or with prefix set only its first bytes (at
 * most want, into out).
 */
static int entry_inflate(gw_odb *odb, odb_pack *p, uint64_t off, const entry_hdr *e, const gw_oid *oid,
			 unsigned char **data, unsigned char *prefix, size_t want, size_t *got)
{
	pack_fill_ctx ctx = {odb, p, e->data_off, p->pack_size - odb->hash_len};
	odb_inflater inf;
	unsigned char *buf = prefix;
	const char *why = NULL;
	size_t n = 0;
	int rc;

	if (!prefix) {
		want = (size_t)e->size;
		if (!(buf = malloc(want + 1)))
			return gw_error_set(GW_ERROR, "out of memory");
	}
	if ((rc = odb_inflater_init(&inf, pack_fill, &ctx)) < 0) {
		if (!prefix)
			free(buf);
		return rc;
	}
	rc = odb_inflate(&inf, buf, want, &n, &why);
	if (rc == 0 && !prefix)
		rc = odb_inflate_end_check(&inf, 0, &why);
	odb_inflater_dispose(&inf);
	if (rc == GW_ECORRUPT)
		rc = odb_corrupt(odb, oid, p->path, off, why);
	else if (rc == 0 && !prefix && n != want)
		rc = odb_corrupt(odb, oid, p->path, off, "its data is shorter than its header says");
	if (rc < 0) {
		if (!prefix)
			free(buf);
		return rc;
	}
	if (prefix) {
		*got = n;
	} else {
		buf[want] = '\0';
		*data = buf;
	}
	return 0;
}

/* ---- the delta base cache ---- */

struct odb_cached {
	const odb_pack *pack;
	uint64_t off;
	gw_object_t type;
	unsigned char *data;
	size_t len;
	odb_cached *hnext, *prev, *next;
};

static size_t bucket_of(const gw_odb *odb, const odb_pack *p, uint64_t off)
{
	uint64_t h = off * 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)p;
	return (size_t)((h >> 29) % odb->nbuckets);
}

static odb_cached *cache_get(gw_odb *odb, const odb_pack *p, uint64_t off)
{
	odb_cached *c;
	for (c = odb->buckets[bucket_of(odb, p, off)]; c; c = c->hnext)
		if (c->pack == p && c->off == off)
			break;
	if (!c || c == odb->lru_head)
		return c;
	/* To the front. */
	c->prev->next = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		odb->lru_tail = c->prev;
	c->prev = NULL;
	c->next = odb->lru_head;
	odb->lru_head->prev = c;
	odb->lru_head = c;
	return c;
}

static void cache_evict(gw_odb *odb, odb_cached *c)
{
	odb_cached **pp = &odb->buckets[bucket_of(odb, c->pack, c->off)];
	while (*pp != c)
		pp = &(*pp)->hnext;
	*pp = c->hnext;
	if (c->prev)
		c->prev->next = c->next;
	else
		odb->lru_head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		odb->lru_tail = c->prev;
	odb->cache_used -= c->len;
	free(c->data);
	free(c);
}

/* Keep data (taken over: freed if it is not kept). */
static void cache_put(gw_odb *odb, const odb_pack *p, uint64_t off, gw_object_t type, unsigned char *data, size_t len)
{
	size_t b;
	odb_cached *c;
	if (len > odb->cache_max_entry || cache_get(odb, p, off) || !(c = calloc(1, sizeof(*c)))) {
		free(data);
		return;
	}
	c->pack = p;
	c->off = off;
	c->type = type;
	c->data = data;
	c->len = len;
	b = bucket_of(odb, p, off);
	c->hnext = odb->buckets[b];
	odb->buckets[b] = c;
	c->next = odb->lru_head;
	if (odb->lru_head)
		odb->lru_head->prev = c;
	else
		odb->lru_tail = c;
	odb->lru_head = c;
	odb->cache_used += len;
	while (odb->cache_used > odb->cache_bytes && odb->lru_tail != c)
		cache_evict(odb, odb->lru_tail);
}

void odb_cache_clear(gw_odb *odb)
{
	while (odb->lru_head)
		cache_evict(odb, odb->lru_head);
}

/* ---- objects ---- */

typedef struct {
	uint64_t off;
	entry_hdr e;
} chain_link;

/* The base of the delta at `off` (header e): its offset in the same pack. */
static int delta_base(gw_odb *odb, odb_pack *p, uint64_t off, const entry_hdr *e, const gw_oid *oid, uint64_t *base)
{
	char hex[GW_HEX_MAX], what[200];
	int rc;
	if (e->type == GW_OBJ_OFS_DELTA) {
		*base = e->base_off;
		return 0;
	}
	if ((rc = odb_pack_find(odb, p, &e->base, base)) < 0)
		return rc;
	if (rc == 0) {
		snprintf(what, sizeof(what), "its delta base %s is not in the pack", gw_oid_to_hex(hex, &e->base));
		return odb_corrupt(odb, oid, p->path, off, what);
	}
	return 0;
}

static int chain_push(chain_link **chain, size_t *n, size_t *cap, uint64_t off, const entry_hdr *e)
{
	if (GW_ARRAY_RESERVE(*chain, *cap, *n + 1) < 0)
		return GW_ERROR;
	(*chain)[*n].off = off;
	(*chain)[(*n)++].e = *e;
	return 0;
}

/* Type and size without inflating more than a delta's first bytes. */
static int pack_read_header(gw_odb *odb, odb_pack *p, uint64_t off, const gw_oid *oid, gw_object_t *type,
			    uint64_t *size)
{
	uint64_t cur = off;
	entry_hdr e;
	int depth, rc;
	for (depth = 0; depth <= ODB_MAX_DELTA_DEPTH; depth++) {
		odb_cached *c = cache_get(odb, p, cur);
		if (c) {
			*type = c->type;
			if (depth == 0)
				*size = c->len;
			return 0;
		}
		if ((rc = entry_header(odb, p, cur, oid, &e)) < 0)
			return rc;
		if (e.type < GW_OBJ_OFS_DELTA) {
			*type = (gw_object_t)e.type;
			if (depth == 0)
				*size = e.size;
			return 0;
		}
		if (depth == 0) {
			unsigned char head[32];
			size_t got;
			if ((rc = entry_inflate(odb, p, cur, &e, oid, NULL, head, sizeof(head), &got)) < 0)
				return rc;
			if (gw_delta_result_size(head, got, size))
				return odb_corrupt(odb, oid, p->path, cur, "truncated delta header");
		}
		if ((rc = delta_base(odb, p, cur, &e, oid, &cur)) < 0)
			return rc;
	}
	return odb_corrupt(odb, oid, p->path, off, "delta chain longer than " GW_STR(ODB_MAX_DELTA_DEPTH));
}

int odb_pack_read(gw_odb *odb, odb_pack *p, uint64_t offset, const gw_oid *oid, gw_object_t *type,
		  unsigned char **data, size_t *len, uint64_t *size)
{
	chain_link *chain = NULL;
	size_t n = 0, cap = 0, i;
	unsigned char *base = NULL;
	size_t base_len = 0;
	int owned = 0, rc = 0;
	uint64_t cur = offset;
	odb_cached *c = NULL;
	entry_hdr e;

	if (!data)
		return pack_read_header(odb, p, offset, oid, type, size);
	*data = NULL;
	*len = 0;
	/* Down the chain to a whole object or a cached one. */
	for (;;) {
		if ((c = cache_get(odb, p, cur))) {
			*type = c->type;
			base = c->data;
			base_len = c->len;
			break;
		}
		if ((rc = entry_header(odb, p, cur, oid, &e)) < 0)
			goto out;
		if (e.type < GW_OBJ_OFS_DELTA) {
			*type = (gw_object_t)e.type;
			if ((rc = entry_inflate(odb, p, cur, &e, oid, &base, NULL, 0, NULL)) < 0)
				goto out;
			base_len = (size_t)e.size;
			owned = 1;
			break;
		}
		if (n == ODB_MAX_DELTA_DEPTH) {
			rc = odb_corrupt(odb, oid, p->path, offset, "delta chain longer than " GW_STR(ODB_MAX_DELTA_DEPTH));
			goto out;
		}
		if ((rc = chain_push(&chain, &n, &cap, cur, &e)) < 0 || (rc = delta_base(odb, p, cur, &e, oid, &cur)) < 0)
			goto out;
	}
	/* Back up, each delta applied to the base below it; the bases are kept for the next reads. */
	for (i = n; i-- > 0;) {
		unsigned char *delta = NULL, *result = NULL;
		size_t result_len;
		const char *why;
		if ((rc = entry_inflate(odb, p, chain[i].off, &chain[i].e, oid, &delta, NULL, 0, NULL)) < 0)
			goto out;
		rc = gw_delta_apply(base, base_len, delta, (size_t)chain[i].e.size, odb->max_object_size, &result,
				    &result_len, &why);
		free(delta);
		if (rc == GW_ECORRUPT)
			rc = odb_corrupt(odb, oid, p->path, chain[i].off, why);
		if (rc < 0)
			goto out;
		if (owned)
			cache_put(odb, p, i + 1 < n ? chain[i + 1].off : cur, *type, base, base_len);
		base = result;
		base_len = result_len;
		owned = 1;
	}
	if (!owned) {
		/* The object itself was cached: the caller gets its own copy. */
		unsigned char *copy = malloc(base_len + 1);
		if (!copy) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			goto out;
		}
		memcpy(copy, base, base_len + 1);
		base = copy;
		owned = 1;
	}
	*data = base;
	*len = base_len;
	base = NULL;
out:
	if (owned)
		free(base);
	free(chain);
	return rc;
}
