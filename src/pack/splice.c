/*
 * The pack splicer: one pack out of a repository's packs and loose objects,
 * without recomputing a single delta.
 *
 * Git's own `bundle create` walks the whole object graph and then reuses pack
 * data; libgit2's packbuilder recomputes deltas. Both are far slower than
 * copying. A repository's packs already hold every object it has, compressed
 * and deltified, so the splicer copies their object sections byte for byte
 * and only fixes what joining packs breaks:
 *
 *  - Duplicates. The same object may live in several packs (receive-pack's
 *    --fix-thin appends copies of bases). Each object is kept from the first
 *    pack, in source order, that has it; loose objects come last. Because
 *    every pack on disk is complete (all bases of its deltas are inside it),
 *    choosing the copy by a fixed pack priority cannot create a delta cycle:
 *    a kept delta's base is kept from the same pack or from a pack of higher
 *    priority, and priorities only go one way.
 *  - OFS_DELTA offsets. They are relative. Dropping a duplicate between a
 *    delta and its base changes the distance: the header is re-encoded. When
 *    the base itself was dropped, the delta becomes a REF_DELTA naming the
 *    base by id (it is kept elsewhere in the output).
 *
 * Memory stays bounded: indexes are streamed, not loaded; objects are walked
 * in offset order one window of at most SPLICE_WINDOW entries at a time; the
 * per-pack bookkeeping grows only with the number of duplicates and rewrites.
 * Every object is verified on the way: against its CRC32 in the source index
 * (or, when a single pack is copied whole, against the pack's checksum), and
 * loose objects are re-hashed.
 */
#include "pack/pack.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "util/bytes.h"
#include "util/crc32.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <zlib.h>

#define SPLICE_WINDOW (1u << 20) /* offset entries held at once per pack */
#define CURSOR_SIZE (1u << 20)
#define MAX_ENTRY_HEADER GW_PACK_ENTRY_HEADER_MAX

typedef struct {
	uint64_t old_off; /* objects at or after this old offset ... */
	int64_t delta;    /* ... move by this much (besides the pack's shift) */
} breakpoint;

typedef struct {
	uint64_t old_off;
	uint32_t pos;
} skipped_entry;

typedef struct {
	uint32_t pos;
	uint32_t crc;
} crc_override;

typedef struct {
	gw_pack_source *src;
	uint64_t *skip; /* bitmap over index positions */
	uint32_t kept;
	uint64_t out_start;
	breakpoint *bp;
	size_t nbp, cap_bp;
	skipped_entry *sk;
	size_t nsk, cap_sk;
	crc_override *co;
	size_t nco, cap_co;
} pack_state;

typedef struct {
	gw_loose_source *src;
	int skip;
	uint64_t out_off;
	uint32_t crc;
} loose_state;

typedef struct {
	const char *label;
	size_t hash_len;
	pack_state *packs;
	size_t npacks;
	loose_state *loose;
	size_t nloose;
	gw_sink *out;
	gw_hash *out_hash;
	uint64_t out_bytes;
	uint32_t fanout[256];
	uint64_t total;
	gw_splice_stats *stats;
	size_t stream_buf;
} splice_ctx;

static int bit_get(const uint64_t *bits, uint32_t i)
{
	return (int)((bits[i >> 6] >> (i & 63)) & 1);
}

static void bit_set(uint64_t *bits, uint32_t i)
{
	bits[i >> 6] |= (uint64_t)1 << (i & 63);
}

/* ---- entry headers ---- */

size_t gw_pack_encode_header(unsigned char *out, int type, uint64_t size)
{
	size_t n = 0;
	unsigned char c = (unsigned char)((type << 4) | (size & 15));
	size >>= 4;
	while (size) {
		out[n++] = c | 0x80;
		c = size & 0x7f;
		size >>= 7;
	}
	out[n++] = c;
	return n;
}

size_t gw_pack_encode_ofs(unsigned char *out, uint64_t distance)
{
	unsigned char tmp[16];
	size_t pos = sizeof(tmp) - 1, n;
	tmp[pos] = distance & 127;
	while (distance >>= 7)
		tmp[--pos] = 128 | (--distance & 127);
	n = sizeof(tmp) - pos;
	memcpy(out, tmp + pos, n);
	return n;
}

size_t gw_pack_parse_header(const unsigned char *buf, size_t len, int *type, uint64_t *size)
{
	size_t n = 0;
	unsigned shift = 4;
	unsigned char c;
	if (!len)
		return 0;
	c = buf[n++];
	*type = (c >> 4) & 7;
	*size = c & 15;
	while (c & 0x80) {
		if (n >= len || shift > 60)
			return 0;
		c = buf[n++];
		if (shift == 60 && (c & 0x70))
			return 0; /* more than 64 bits */
		*size |= (uint64_t)(c & 0x7f) << shift;
		shift += 7;
	}
	return n;
}

size_t gw_pack_parse_ofs(const unsigned char *buf, size_t len, uint64_t *distance)
{
	size_t n = 0;
	unsigned char c;
	uint64_t ofs;
	if (!len)
		return 0;
	c = buf[n++];
	ofs = c & 127;
	while (c & 128) {
		if (n >= len || ofs > (UINT64_MAX >> 8))
			return 0;
		c = buf[n++];
		ofs = ((ofs + 1) << 7) + (c & 127);
	}
	*distance = ofs;
	return n;
}

/* ---- output ---- */

static int out_write(splice_ctx *c, const void *buf, size_t len)
{
	gw_hash_update(c->out_hash, buf, len);
	c->out_bytes += len;
	return gw_sink_write(c->out, buf, len);
}

/* ---- a sequential reader over one source pack ---- */

/*
 * A window of a source pack mapped read-only. Mapped, a pack's bytes go
 * from the page cache straight into the output hash and sink: one copy less
 * than pread into a buffer, which was the largest single cost of a file
 * backup after hashing. In windows, not whole: a mapped page counts in the
 * process's resident set while mapped, so a whole pack would show as its
 * size. Safe for the reason it is in git's and libgit2's readers: git never
 * rewrites a pack in place (a repack writes new files and unlinks the old,
 * which a mapping outlives), and nothing past the size fstat gave at open
 * is touched.
 */
#define MAP_WINDOW (4u << 20)

typedef struct {
	void *base;
	size_t len;
} pack_window;

static void window_unmap(pack_window *w)
{
	if (w->base)
		munmap(w->base, w->len);
	w->base = NULL;
	w->len = 0;
}

/* Bytes [off, off + len) of fd, mapped (the previous window unmapped first); NULL when mmap fails. */
static const unsigned char *window_map(pack_window *w, int fd, uint64_t off, size_t len)
{
	uint64_t start = off - off % (uint64_t)sysconf(_SC_PAGESIZE);
	void *m;
	window_unmap(w);
	m = mmap(NULL, len + (size_t)(off - start), PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, (off_t)start);
	if (m == MAP_FAILED)
		return NULL;
	w->base = m;
	w->len = len + (size_t)(off - start);
	return (const unsigned char *)m + (off - start);
}

typedef struct {
	int fd;
	const char *name;
	uint64_t file_pos; /* file offset of buf[0] */
	const unsigned char *buf; /* into the window when mapped, else own (refilled with pread) */
	unsigned char *own;
	pack_window win;
	size_t len, at;
	uint64_t limit; /* end of the object section */
} cursor;

static uint64_t cursor_offset(const cursor *cur)
{
	return cur->file_pos + cur->at;
}

/* Make at least `need` bytes (or all up to the limit) available at cur->buf + cur->at. */
static int cursor_fill(cursor *cur, size_t need)
{
	uint64_t pos = cur->file_pos + cur->at;
	if (cur->len - cur->at >= need)
		return 0;
	if (!cur->own) {
		/* Mapped: the next window from here (none at the limit: the caller sees the bytes short). */
		size_t want = pos < cur->limit ? (cur->limit - pos < MAP_WINDOW ? (size_t)(cur->limit - pos) : MAP_WINDOW) : 0;
		const unsigned char *p = want ? window_map(&cur->win, cur->fd, pos, want) : NULL;
		cur->file_pos = pos;
		cur->at = cur->len = 0;
		if (p || !want) {
			cur->buf = p;
			cur->len = want;
			return 0;
		}
		if (!(cur->own = malloc(CURSOR_SIZE))) /* mmap failed: read on with pread */
			return gw_error_set(GW_ERROR, "out of memory");
		cur->buf = cur->own;
	}
	memmove(cur->own, cur->buf + cur->at, cur->len - cur->at);
	cur->buf = cur->own;
	cur->file_pos += cur->at;
	cur->len -= cur->at;
	cur->at = 0;
	while (cur->len < need && cur->file_pos + cur->len < cur->limit) {
		uint64_t left = cur->limit - cur->file_pos - cur->len;
		size_t want = CURSOR_SIZE - cur->len;
		ssize_t n;
		if (want > left)
			want = (size_t)left;
		n = pread(cur->fd, cur->own + cur->len, want, (off_t)(cur->file_pos + cur->len));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return gw_error_set_errno(GW_EIO, "cannot read %s", cur->name);
		if (n == 0)
			return gw_error_set(GW_ECORRUPT, "%s is truncated at byte %llu", cur->name,
					    (unsigned long long)(cur->file_pos + cur->len));
		cur->len += (size_t)n;
	}
	return 0;
}

static void cursor_skip(cursor *cur, uint64_t n)
{
	if (n <= cur->len - cur->at) {
		cur->at += (size_t)n;
		return;
	}
	cur->file_pos += cur->at + n;
	cur->len = cur->at = 0;
}

/* Stream n bytes to the output, folding them into *crc (and *crc2 when given). */
static int cursor_copy(splice_ctx *c, cursor *cur, uint64_t n, uint32_t *crc, uint32_t *crc2)
{
	int rc;
	while (n) {
		size_t chunk;
		if (cur->at == cur->len && (rc = cursor_fill(cur, 1)) < 0)
			return rc;
		if (cur->at == cur->len)
			return gw_error_set(GW_ECORRUPT, "%s ends inside an object", cur->name);
		chunk = cur->len - cur->at;
		if (chunk > n)
			chunk = (size_t)n;
		*crc = gw_crc32(*crc, cur->buf + cur->at, chunk);
		if (crc2)
			*crc2 = gw_crc32(*crc2, cur->buf + cur->at, chunk);
		if ((rc = out_write(c, cur->buf + cur->at, chunk)) < 0)
			return rc;
		cur->at += chunk;
		n -= chunk;
	}
	return 0;
}

/* ---- merging the sorted object ids of all sources ---- */

typedef struct {
	size_t src; /* < npacks: a pack; == npacks: the loose objects */
	gw_idx_stream oids, aux;
	int has_aux;
	const unsigned char *cur;
	const unsigned char *cur_aux;
	uint32_t pos;
} merge_src;

typedef struct {
	splice_ctx *c;
	merge_src *srcs;
	size_t n;
	size_t *heap;
	size_t heap_len;
} merger;

static int merge_less(merger *m, size_t a, size_t b)
{
	int r = memcmp(m->srcs[a].cur, m->srcs[b].cur, m->c->hash_len);
	return r < 0 || (r == 0 && m->srcs[a].src < m->srcs[b].src);
}

static void heap_down(merger *m, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, best = i, t;
		if (l < m->heap_len && merge_less(m, m->heap[l], m->heap[best]))
			best = l;
		if (r < m->heap_len && merge_less(m, m->heap[r], m->heap[best]))
			best = r;
		if (best == i)
			return;
		t = m->heap[i];
		m->heap[i] = m->heap[best];
		m->heap[best] = t;
		i = best;
	}
}

/* Load the next entry of source s; returns 1 if it has one, 0 at its end, <0 on error. */
static int merge_advance(merger *m, merge_src *s)
{
	splice_ctx *c = m->c;
	int err;
	if (s->src == c->npacks) {
		uint32_t next = s->cur ? s->pos + 1 : 0;
		if (next >= c->nloose)
			return 0;
		s->pos = next;
		s->cur = c->loose[next].src->oid;
		if (next && memcmp(c->loose[next - 1].src->oid, s->cur, c->hash_len) >= 0)
			return gw_error_set(GW_ECORRUPT, "%s: loose objects are not sorted", c->label);
		return 1;
	}
	{
		const unsigned char *prev = s->cur;
		unsigned char prev_copy[GW_HASH_MAX];
		if (prev)
			memcpy(prev_copy, prev, c->hash_len);
		s->cur = gw_idx_stream_next(&s->oids, &err);
		if (!s->cur)
			return err;
		if (s->has_aux && !(s->cur_aux = gw_idx_stream_next(&s->aux, &err)))
			return err < 0 ? err : gw_error_set(GW_ECORRUPT, "%s: index table ends early", s->oids.idx->name);
		s->pos = prev ? s->pos + 1 : 0;
		if (prev && memcmp(prev_copy, s->cur, c->hash_len) >= 0)
			return gw_error_set(GW_ECORRUPT, "%s: object ids are not sorted at position %u",
					    s->oids.idx->name, s->pos);
		return 1;
	}
}

static int merge_init(merger *m, splice_ctx *c, int aux_table)
{
	size_t i;
	int rc;
	memset(m, 0, sizeof(*m));
	m->c = c;
	m->n = c->npacks + (c->nloose ? 1 : 0);
	if (!(m->srcs = calloc(m->n ? m->n : 1, sizeof(*m->srcs))) || !(m->heap = calloc(m->n ? m->n : 1, sizeof(size_t))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < m->n; i++) {
		merge_src *s = &m->srcs[i];
		s->src = i;
		if (i < c->npacks) {
			const gw_idx *idx = &c->packs[i].src->idx;
			if ((rc = gw_idx_stream_init(&s->oids, idx, GW_IDX_TABLE_OID, c->stream_buf)) < 0)
				return rc;
			if (aux_table >= 0) {
				s->has_aux = 1;
				if ((rc = gw_idx_stream_init(&s->aux, idx, (gw_idx_table)aux_table, c->stream_buf / 4)) < 0)
					return rc;
			}
		}
		if ((rc = merge_advance(m, s)) < 0)
			return rc;
		if (rc == 1) {
			size_t j = m->heap_len++;
			m->heap[j] = i;
			while (j && merge_less(m, m->heap[j], m->heap[(j - 1) / 2])) {
				size_t p = (j - 1) / 2, t = m->heap[p];
				m->heap[p] = m->heap[j];
				m->heap[j] = t;
				j = p;
			}
		}
	}
	return 0;
}

/* The next (source, position) in id order, ties by source order; returns 1, 0 at the end. */
static int merge_next(merger *m, merge_src **out)
{
	if (!m->heap_len)
		return 0;
	*out = &m->srcs[m->heap[0]];
	return 1;
}

static int merge_pop(merger *m)
{
	merge_src *s = &m->srcs[m->heap[0]];
	int rc = merge_advance(m, s);
	if (rc < 0)
		return rc;
	if (rc == 0)
		m->heap[0] = m->heap[--m->heap_len];
	heap_down(m, 0);
	return 0;
}

static void merge_dispose(merger *m)
{
	size_t i;
	for (i = 0; m->srcs && i < m->n; i++) {
		gw_idx_stream_dispose(&m->srcs[i].oids);
		gw_idx_stream_dispose(&m->srcs[i].aux);
	}
	free(m->srcs);
	free(m->heap);
}

/* Pass 1: choose one copy of every object; count the survivors per first byte. */
static int choose_copies(splice_ctx *c)
{
	unsigned char prev[GW_HASH_MAX];
	int have_prev = 0, rc;
	merger m;
	merge_src *e;

	if ((rc = merge_init(&m, c, -1)) < 0)
		goto out;
	while ((rc = merge_next(&m, &e)) == 1) {
		int dup = have_prev && memcmp(prev, e->cur, c->hash_len) == 0;
		if (dup) {
			if (e->src < c->npacks)
				bit_set(c->packs[e->src].skip, e->pos);
			else
				c->loose[e->pos].skip = 1;
			c->stats->duplicates++;
		} else {
			memcpy(prev, e->cur, c->hash_len);
			have_prev = 1;
			c->fanout[e->cur[0]]++;
			c->total++;
			if (e->src < c->npacks)
				c->packs[e->src].kept++;
		}
		if ((rc = merge_pop(&m)) < 0)
			goto out;
	}
out:
	merge_dispose(&m);
	return rc;
}

/* ---- walking one pack in offset order (gw_idx_windows, gw_idx_load_window) ---- */

static int64_t delta_at(const pack_state *ps, uint64_t old_off)
{
	size_t lo = 0, hi = ps->nbp;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ps->bp[mid].old_off <= old_off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo ? ps->bp[lo - 1].delta : 0;
}

static uint64_t new_offset(const pack_state *ps, uint64_t old_off)
{
	return ps->out_start + (old_off - GW_PACK_HEADER_SIZE) + (uint64_t)delta_at(ps, old_off);
}

static const skipped_entry *find_skipped(const pack_state *ps, uint64_t old_off)
{
	size_t lo = 0, hi = ps->nsk;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ps->sk[mid].old_off == old_off)
			return &ps->sk[mid];
		if (ps->sk[mid].old_off < old_off)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static int add_breakpoint(pack_state *ps, uint64_t old_off, int64_t delta, uint64_t obj_start)
{
	int rc;
	/* A run of dropped objects needs one breakpoint: nothing starts inside it. */
	if (ps->nbp && ps->bp[ps->nbp - 1].old_off == obj_start) {
		ps->bp[ps->nbp - 1] = (breakpoint){old_off, delta};
		return 0;
	}
	rc = GW_ARRAY_RESERVE(ps->bp, ps->cap_bp, ps->nbp + 1);
	if (rc == 0)
		ps->bp[ps->nbp++] = (breakpoint){old_off, delta};
	return rc;
}

static int corrupt_object(splice_ctx *c, pack_state *ps, uint32_t pos, uint64_t off, const char *what)
{
	unsigned char oid[GW_HASH_MAX];
	char hex[GW_HEX_MAX] = "?";
	if (gw_idx_oid_at(&ps->src->idx, pos, oid) == 0)
		gw_hex_encode(hex, oid, c->hash_len);
	return gw_error_set(GW_ECORRUPT, "repository %s: object %s in %s (offset %llu) is corrupt: %s", c->label, hex,
			    ps->src->name, (unsigned long long)off, what);
}

/* Copy one kept object; rewrite its delta header when the base moved or was dropped. */
static int copy_object(splice_ctx *c, pack_state *ps, cursor *cur, const gw_idx_ofs_entry *e, uint64_t len,
		       int64_t *cum)
{
	unsigned char hdr[MAX_ENTRY_HEADER];
	uint64_t size, distance, my_new = ps->out_start + (e->offset - GW_PACK_HEADER_SIZE) + (uint64_t)*cum;
	size_t hlen, olen, avail, nlen;
	uint32_t crc_old = 0, crc_new = 0;
	gw_pack_entry pe;
	const char *bad;
	int rc;

	if ((rc = cursor_fill(cur, len < MAX_ENTRY_HEADER ? (size_t)len : MAX_ENTRY_HEADER)) < 0)
		return rc;
	avail = cur->len - cur->at;
	if (avail > len)
		avail = (size_t)len;
	if ((bad = gw_pack_entry_check(cur->buf + cur->at, avail, e->offset, len, c->hash_len, &pe)))
		return corrupt_object(c, ps, e->pos, e->offset, bad);
	hlen = pe.header_len;
	olen = pe.ofs_len;
	size = pe.size;
	distance = pe.distance;
	if (pe.type != GW_OBJ_OFS_DELTA) {
		if ((rc = cursor_copy(c, cur, len, &crc_old, NULL)) < 0)
			return rc;
		if (crc_old != e->crc)
			return corrupt_object(c, ps, e->pos, e->offset, "CRC32 mismatch with the pack index");
		return 0;
	}
	{
		uint64_t base_old = e->offset - distance;
		const skipped_entry *sk = find_skipped(ps, base_old);
		if (sk) {
			unsigned char base_oid[GW_HASH_MAX];
			if ((rc = gw_idx_oid_at(&ps->src->idx, sk->pos, base_oid)) < 0)
				return rc;
			nlen = gw_pack_encode_header(hdr, GW_OBJ_REF_DELTA, size);
			memcpy(hdr + nlen, base_oid, c->hash_len);
			nlen += c->hash_len;
		} else {
			uint64_t new_dist = my_new - new_offset(ps, base_old);
			if (new_dist == distance) {
				if ((rc = cursor_copy(c, cur, len, &crc_old, NULL)) < 0)
					return rc;
				if (crc_old != e->crc)
					return corrupt_object(c, ps, e->pos, e->offset,
							      "CRC32 mismatch with the pack index");
				return 0;
			}
			memcpy(hdr, cur->buf + cur->at, hlen);
			nlen = hlen + gw_pack_encode_ofs(hdr + hlen, new_dist);
		}
	}
	/* Rewritten header, then the compressed delta verbatim. */
	crc_old = (uint32_t)crc32_z(0, cur->buf + cur->at, hlen + olen);
	crc_new = (uint32_t)crc32_z(0, hdr, nlen);
	if ((rc = out_write(c, hdr, nlen)) < 0)
		return rc;
	cursor_skip(cur, hlen + olen);
	if ((rc = cursor_copy(c, cur, len - hlen - olen, &crc_old, &crc_new)) < 0)
		return rc;
	if (crc_old != e->crc)
		return corrupt_object(c, ps, e->pos, e->offset, "CRC32 mismatch with the pack index");
	if ((rc = GW_ARRAY_RESERVE(ps->co, ps->cap_co, ps->nco + 1)) < 0)
		return rc;
	ps->co[ps->nco++] = (crc_override){e->pos, crc_new};
	c->stats->rewritten++;
	if ((int64_t)nlen != (int64_t)(hlen + olen)) {
		*cum += (int64_t)nlen - (int64_t)(hlen + olen);
		if ((rc = add_breakpoint(ps, e->offset + len, *cum, UINT64_MAX)) < 0)
			return rc;
	}
	return 0;
}

static int walk_pack(splice_ctx *c, pack_state *ps)
{
	uint64_t *bounds = NULL, expect = GW_PACK_HEADER_SIZE;
	size_t nbounds = 0, w;
	int64_t cum = 0;
	cursor cur = {0};
	int rc;

	cur.fd = ps->src->pack_fd;
	cur.name = ps->src->name;
	cur.file_pos = GW_PACK_HEADER_SIZE;
	cur.limit = ps->src->pack_size - c->hash_len;
	/* Mapped (cur.own stays NULL) until a mapping fails. */
	if ((rc = gw_idx_windows(&ps->src->idx, cur.limit, SPLICE_WINDOW, c->stream_buf, &bounds, &nbounds)) < 0)
		goto out;
	for (w = 0; w + 1 < nbounds && rc == 0; w++) {
		gw_idx_ofs_entry *arr = NULL;
		size_t n = 0, i;
		uint64_t next_off;
		if ((rc = gw_idx_load_window(&ps->src->idx, cur.limit, bounds[w], bounds[w + 1], c->stream_buf, &arr, &n,
					     &next_off)) < 0)
			break;
		for (i = 0; i < n && rc == 0; i++) {
			uint64_t end = i + 1 < n ? arr[i + 1].offset : next_off, len;
			if (arr[i].offset != expect || cursor_offset(&cur) != expect) {
				rc = corrupt_object(c, ps, arr[i].pos, arr[i].offset,
						    "pack index offsets do not tile the pack");
				break;
			}
			if (end <= arr[i].offset) {
				rc = corrupt_object(c, ps, arr[i].pos, arr[i].offset, "two objects share an offset");
				break;
			}
			len = end - arr[i].offset;
			expect = end;
			if (bit_get(ps->skip, arr[i].pos)) {
				if ((rc = GW_ARRAY_RESERVE(ps->sk, ps->cap_sk, ps->nsk + 1)) < 0)
					break;
				ps->sk[ps->nsk++] = (skipped_entry){arr[i].offset, arr[i].pos};
				cursor_skip(&cur, len);
				cum -= (int64_t)len;
				rc = add_breakpoint(ps, end, cum, arr[i].offset);
				continue;
			}
			rc = copy_object(c, ps, &cur, &arr[i], len, &cum);
		}
		free(arr);
	}
	if (rc == 0 && expect != ps->src->pack_size - c->hash_len && ps->src->idx.count)
		rc = gw_error_set(GW_ECORRUPT, "repository %s: %s: the index does not cover the whole pack", c->label,
				  ps->src->name);
out:
	free(bounds);
	window_unmap(&cur.win);
	free(cur.own);
	return rc;
}

/* ---- loose objects ---- */

static const char *type_names[] = {NULL, "commit", "tree", "blob", "tag"};

static int loose_corrupt(splice_ctx *c, const unsigned char *oid, const char *what)
{
	char hex[GW_HEX_MAX];
	gw_hex_encode(hex, oid, c->hash_len);
	return gw_error_set(GW_ECORRUPT, "repository %s: loose object %s is corrupt: %s", c->label, hex, what);
}

/*
 * Inflate a loose object ("type size\0data"), check its id, and write it as a
 * pack entry deflated afresh. Streams in fixed buffers whatever its size.
 */
static int pack_loose(splice_ctx *c, loose_state *ls)
{
	enum { IN = 1 << 16, OUT = 1 << 16 };
	unsigned char *in = NULL, *mid = NULL, *out = NULL, hdr[32], got[GW_HASH_MAX];
	z_stream inf, def;
	int inf_ok = 0, def_ok = 0, rc = 0, type = 0, zr = Z_OK, header_done = 0;
	uint64_t size = 0, seen = 0, off = 0;
	uint32_t crc = 0;
	gw_hash *h = NULL;
	size_t pending = 0; /* inflated bytes in mid not yet consumed */
	int fd;

	memset(&inf, 0, sizeof(inf));
	memset(&def, 0, sizeof(def));
	if ((fd = open(ls->src->path, O_RDONLY | O_CLOEXEC)) < 0) {
		char hex[GW_HEX_MAX];
		gw_hex_encode(hex, ls->src->oid, c->hash_len);
		if (errno == ENOENT)
			return gw_error_set(GW_ECHANGED, "repository %s: loose object %s vanished (concurrent gc)",
					    c->label, hex);
		return gw_error_set_errno(GW_EIO, "repository %s: cannot open loose object %s", c->label, hex);
	}
	if (!(in = malloc(IN)) || !(mid = malloc(OUT)) || !(out = malloc(OUT))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto done;
	}
	if ((rc = gw_hash_new(&h, c->hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256)) < 0)
		goto done;
	if (inflateInit(&inf) != Z_OK || !(inf_ok = 1) || deflateInit(&def, Z_BEST_SPEED) != Z_OK) {
		rc = gw_error_set(GW_ERROR, "zlib initialisation failed");
		goto done;
	}
	def_ok = 1;
	ls->out_off = c->out_bytes;
	inf.next_out = mid;
	inf.avail_out = OUT;
	while (zr != Z_STREAM_END) {
		ssize_t n;
		if (inf.avail_in == 0) {
			n = pread(fd, in, IN, (off_t)off);
			if (n < 0) {
				rc = gw_error_set_errno(GW_EIO, "repository %s: cannot read a loose object", c->label);
				goto done;
			}
			if (n == 0) {
				rc = loose_corrupt(c, ls->src->oid, "truncated");
				goto done;
			}
			off += (uint64_t)n;
			inf.next_in = in;
			inf.avail_in = (uInt)n;
		}
		zr = inflate(&inf, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END && zr != Z_BUF_ERROR) {
			rc = loose_corrupt(c, ls->src->oid, "bad zlib data");
			goto done;
		}
		pending = OUT - inf.avail_out;
		if (!header_done) {
			unsigned char *nul = memchr(mid, '\0', pending), *sp;
			char tname[16];
			size_t tl;
			if (!nul) {
				if (pending > 40 || zr == Z_STREAM_END) {
					rc = loose_corrupt(c, ls->src->oid, "bad header");
					goto done;
				}
				continue;
			}
			sp = memchr(mid, ' ', (size_t)(nul - mid));
			tl = sp ? (size_t)(sp - mid) : 0;
			if (!sp || tl >= sizeof(tname)) {
				rc = loose_corrupt(c, ls->src->oid, "bad header");
				goto done;
			}
			memcpy(tname, mid, tl);
			tname[tl] = '\0';
			for (type = 1; type <= 4 && strcmp(type_names[type], tname); type++)
				;
			if (type > 4) {
				rc = loose_corrupt(c, ls->src->oid, "unknown type");
				goto done;
			}
			{
				char *endp;
				errno = 0;
				size = strtoull((const char *)sp + 1, &endp, 10);
				if (errno || endp != (char *)nul || sp[1] < '0' || sp[1] > '9') {
					rc = loose_corrupt(c, ls->src->oid, "bad size");
					goto done;
				}
			}
			gw_hash_update(h, mid, (size_t)(nul - mid) + 1);
			{
				size_t hl = gw_pack_encode_header(hdr, type, size);
				crc = (uint32_t)crc32_z(0, hdr, hl);
				if ((rc = out_write(c, hdr, hl)) < 0)
					goto done;
			}
			header_done = 1;
			memmove(mid, nul + 1, pending - (size_t)(nul + 1 - mid));
			pending -= (size_t)(nul + 1 - mid);
		}
		/* Deflate the inflated payload. */
		gw_hash_update(h, mid, pending);
		seen += pending;
		if (seen > size) {
			rc = loose_corrupt(c, ls->src->oid, "longer than its header says");
			goto done;
		}
		def.next_in = mid;
		def.avail_in = (uInt)pending;
		do {
			def.next_out = out;
			def.avail_out = OUT;
			if (deflate(&def, zr == Z_STREAM_END ? Z_FINISH : Z_NO_FLUSH) == Z_STREAM_ERROR) {
				rc = gw_error_set(GW_ERROR, "zlib deflate failed");
				goto done;
			}
			crc = (uint32_t)crc32_z(crc, out, OUT - def.avail_out);
			if ((rc = out_write(c, out, OUT - def.avail_out)) < 0)
				goto done;
		} while (def.avail_out == 0 || (zr == Z_STREAM_END && def.avail_in) );
		inf.next_out = mid;
		inf.avail_out = OUT;
		pending = 0;
	}
	if (!header_done || seen != size) {
		rc = loose_corrupt(c, ls->src->oid, "shorter than its header says");
		goto done;
	}
	gw_hash_final(h, got);
	if (memcmp(got, ls->src->oid, c->hash_len) != 0) {
		rc = loose_corrupt(c, ls->src->oid, "content does not match its id");
		goto done;
	}
	ls->crc = crc;
	c->stats->loose++;
done:
	close(fd);
	if (inf_ok)
		inflateEnd(&inf);
	if (def_ok)
		deflateEnd(&def);
	gw_hash_free(h);
	free(in);
	free(mid);
	free(out);
	return rc;
}

/* ---- the output index ---- */

static int crc_override_cmp(const void *a, const void *b)
{
	const crc_override *x = a, *y = b;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

static int lookup_crc(const pack_state *ps, uint32_t pos, uint32_t *crc)
{
	size_t lo = 0, hi = ps->nco;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (ps->co[mid].pos == pos) {
			*crc = ps->co[mid].crc;
			return 1;
		}
		if (ps->co[mid].pos < pos)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

typedef struct {
	gw_sink *sink;
	gw_hash *hash;
	unsigned char buf[1 << 16];
	size_t len;
} idx_writer;

static int iw_flush(idx_writer *w)
{
	int rc;
	gw_hash_update(w->hash, w->buf, w->len);
	rc = gw_sink_write(w->sink, w->buf, w->len);
	w->len = 0;
	return rc;
}

static int iw_put(idx_writer *w, const void *p, size_t n)
{
	int rc;
	if (w->len + n > sizeof(w->buf) && (rc = iw_flush(w)) < 0)
		return rc;
	memcpy(w->buf + w->len, p, n);
	w->len += n;
	return 0;
}

static int write_idx_pass(splice_ctx *c, idx_writer *w, int table, uint64_t **large, size_t *nlarge, size_t *caplarge)
{
	merger m;
	merge_src *e;
	int rc;
	if ((rc = merge_init(&m, c, table == 0 ? -1 : table == 1 ? GW_IDX_TABLE_CRC : GW_IDX_TABLE_OFFSET)) < 0)
		goto out;
	while ((rc = merge_next(&m, &e)) == 1) {
		unsigned char b[4];
		int skip = e->src < c->npacks ? bit_get(c->packs[e->src].skip, e->pos) : c->loose[e->pos].skip;
		if (!skip) {
			if (table == 0) {
				rc = iw_put(w, e->cur, c->hash_len);
			} else if (table == 1) {
				uint32_t crc;
				if (e->src == c->npacks)
					crc = c->loose[e->pos].crc;
				else if (!lookup_crc(&c->packs[e->src], e->pos, &crc))
					crc = gw_get_be32(e->cur_aux);
				gw_put_be32(b, crc);
				rc = iw_put(w, b, 4);
			} else {
				uint64_t off;
				if (e->src == c->npacks) {
					off = c->loose[e->pos].out_off;
				} else {
					if ((rc = gw_idx_decode_offset(&c->packs[e->src].src->idx, e->cur_aux, &off)) < 0)
						break;
					off = new_offset(&c->packs[e->src], off);
				}
				if (off < 0x80000000u) {
					gw_put_be32(b, (uint32_t)off);
				} else {
					if ((rc = GW_ARRAY_RESERVE(*large, *caplarge, *nlarge + 1)) < 0)
						break;
					(*large)[*nlarge] = off;
					gw_put_be32(b, 0x80000000u | (uint32_t)(*nlarge)++);
				}
				rc = iw_put(w, b, 4);
			}
			if (rc < 0)
				break;
		}
		if ((rc = merge_pop(&m)) < 0)
			break;
	}
out:
	merge_dispose(&m);
	return rc;
}

static int write_idx(splice_ctx *c, gw_sink *sink)
{
	idx_writer *w = calloc(1, sizeof(*w));
	unsigned char b[8], sum[GW_HASH_MAX];
	uint64_t *large = NULL;
	size_t nlarge = 0, caplarge = 0, i;
	uint32_t acc = 0;
	int rc, table;

	if (!w)
		return gw_error_set(GW_ERROR, "out of memory");
	w->sink = sink;
	if ((rc = gw_hash_new(&w->hash, c->hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256)) < 0)
		goto out;
	if ((rc = iw_put(w, GW_IDX_V2_MAGIC, 4)) < 0)
		goto out;
	gw_put_be32(b, 2);
	if ((rc = iw_put(w, b, 4)) < 0)
		goto out;
	for (i = 0; i < 256; i++) {
		acc += c->fanout[i];
		gw_put_be32(b, acc);
		if ((rc = iw_put(w, b, 4)) < 0)
			goto out;
	}
	for (table = 0; table < 3; table++)
		if ((rc = write_idx_pass(c, w, table, &large, &nlarge, &caplarge)) < 0)
			goto out;
	for (i = 0; i < nlarge; i++) {
		gw_put_be32(b, (uint32_t)(large[i] >> 32));
		gw_put_be32(b + 4, (uint32_t)large[i]);
		if ((rc = iw_put(w, b, 8)) < 0)
			goto out;
	}
	if ((rc = iw_put(w, c->stats->pack_checksum, c->hash_len)) < 0 || (rc = iw_flush(w)) < 0)
		goto out;
	gw_hash_final(w->hash, sum);
	rc = gw_sink_write(sink, sum, c->hash_len);
out:
	free(large);
	gw_hash_free(w->hash);
	free(w);
	return rc;
}

/* ---- the whole-pack fast path ---- */

/*
 * One pack and no loose objects: the output is the pack itself. Its bytes are
 * streamed through the output hash, which must equal the pack's own trailer
 * (that verifies every byte), and its index is copied as is.
 */
static int copy_single_pack(splice_ctx *c, gw_sink *idx_out)
{
	gw_pack_source *p = c->packs[0].src;
	uint64_t end = p->pack_size - c->hash_len, off = GW_PACK_HEADER_SIZE;
	unsigned char *buf = malloc(CURSOR_SIZE), trailer[GW_HASH_MAX];
	pack_window win = {0};
	int rc = 0;

	if (!buf)
		return gw_error_set(GW_ERROR, "out of memory");
	while (off < end && rc == 0) {
		/* A mapped window when it can be (section 5.2), else pread into buf. */
		size_t want = end - off < MAP_WINDOW ? (size_t)(end - off) : MAP_WINDOW;
		const unsigned char *bytes = window_map(&win, p->pack_fd, off, want);
		ssize_t n = (ssize_t)want;
		if (!bytes) {
			n = pread(p->pack_fd, buf, want < CURSOR_SIZE ? want : CURSOR_SIZE, (off_t)off);
			bytes = buf;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? gw_error_set_errno(GW_EIO, "repository %s: cannot read %s", c->label, p->name)
				   : gw_error_set(GW_ECORRUPT, "repository %s: %s is truncated", c->label, p->name);
			break;
		}
		rc = out_write(c, bytes, (size_t)n);
		off += (uint64_t)n;
	}
	window_unmap(&win);
	if (rc == 0 && pread(p->pack_fd, trailer, c->hash_len, (off_t)end) != (ssize_t)c->hash_len)
		rc = gw_error_set(GW_ECORRUPT, "repository %s: %s has no trailer", c->label, p->name);
	if (rc == 0) {
		gw_hash_final(c->out_hash, c->stats->pack_checksum);
		if (memcmp(trailer, c->stats->pack_checksum, c->hash_len) != 0 ||
		    memcmp(trailer, p->idx.pack_checksum, c->hash_len) != 0)
			rc = gw_error_set(GW_ECORRUPT,
					  "repository %s: %s is corrupt: its checksum does not match its content",
					  c->label, p->name);
	}
	if (rc == 0)
		rc = gw_sink_write(c->out, trailer, c->hash_len);
	/* The index, byte for byte. */
	for (off = 0; rc == 0 && off < p->idx.file_size;) {
		size_t want = p->idx.file_size - off < CURSOR_SIZE ? (size_t)(p->idx.file_size - off) : CURSOR_SIZE;
		ssize_t n = pread(p->idx_fd, buf, want, (off_t)off);
		if (n <= 0) {
			rc = gw_error_set(GW_EIO, "repository %s: cannot read the index of %s", c->label, p->name);
			break;
		}
		rc = gw_sink_write(idx_out, buf, (size_t)n);
		off += (uint64_t)n;
	}
	c->stats->objects = p->idx.count;
	c->stats->pack_bytes = p->pack_size;
	free(buf);
	return rc;
}

static int read_pack_header(splice_ctx *c, gw_pack_source *p)
{
	unsigned char h[GW_PACK_HEADER_SIZE];
	uint32_t version, count;
	if (p->pack_size < GW_PACK_HEADER_SIZE + c->hash_len ||
	    pread(p->pack_fd, h, sizeof(h), 0) != (ssize_t)sizeof(h))
		return gw_error_set(GW_ECORRUPT, "repository %s: %s is too short to be a pack", c->label, p->name);
	version = gw_get_be32(h + 4);
	count = gw_get_be32(h + 8);
	if (memcmp(h, "PACK", 4) != 0 || (version != 2 && version != 3))
		return gw_error_set(GW_ECORRUPT, "repository %s: %s is not a version 2 pack", c->label, p->name);
	if (count != p->idx.count)
		return gw_error_set(GW_ECORRUPT, "repository %s: %s holds %u objects but its index lists %u", c->label,
				    p->name, count, p->idx.count);
	return 0;
}

int gw_pack_splice(const char *label, gw_pack_source *packs, size_t npacks, gw_loose_source *loose, size_t nloose,
		   size_t hash_len, gw_sink *pack_out, gw_sink *idx_out, gw_splice_stats *stats)
{
	splice_ctx c;
	unsigned char header[GW_PACK_HEADER_SIZE];
	size_t i;
	int rc = 0;

	memset(&c, 0, sizeof(c));
	memset(stats, 0, sizeof(*stats));
	c.label = label;
	c.hash_len = hash_len;
	c.npacks = npacks;
	c.nloose = nloose;
	c.out = pack_out;
	c.stats = stats;
	c.stream_buf = npacks ? (16u << 20) / (npacks + 1) : (1u << 16);
	if (c.stream_buf > (1u << 16))
		c.stream_buf = 1u << 16;
	if (c.stream_buf < 1024)
		c.stream_buf = 1024;
	if ((rc = gw_hash_new(&c.out_hash, hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256)) < 0)
		return rc;
	c.packs = calloc(npacks ? npacks : 1, sizeof(*c.packs));
	c.loose = calloc(nloose ? nloose : 1, sizeof(*c.loose));
	if (!c.packs || !c.loose) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	for (i = 0; i < npacks; i++) {
		c.packs[i].src = &packs[i];
		if ((rc = read_pack_header(&c, &packs[i])) < 0)
			goto out;
		if (!(c.packs[i].skip = calloc((packs[i].idx.count + 63) / 64 + 1, sizeof(uint64_t)))) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			goto out;
		}
	}
	for (i = 0; i < nloose; i++)
		c.loose[i].src = &loose[i];

	if (npacks == 1 && nloose == 0) {
		memcpy(header, "PACK\0\0\0\2", 8);
		gw_put_be32(header + 8, packs[0].idx.count);
		if ((rc = out_write(&c, header, sizeof(header))) == 0)
			rc = copy_single_pack(&c, idx_out);
		goto out;
	}

	if ((rc = choose_copies(&c)) < 0)
		goto out;
	if (c.total > UINT32_MAX) {
		rc = gw_error_set(GW_EUNSUPPORTED, "repository %s: more than 2^32 objects", label);
		goto out;
	}
	memcpy(header, "PACK\0\0\0\2", 8);
	gw_put_be32(header + 8, (uint32_t)c.total);
	if ((rc = out_write(&c, header, sizeof(header))) < 0)
		goto out;
	for (i = 0; i < npacks; i++) {
		c.packs[i].out_start = c.out_bytes;
		/* A pack whose every object is kept from elsewhere adds nothing: not even a read. */
		if (!c.packs[i].kept)
			continue;
		if ((rc = walk_pack(&c, &c.packs[i])) < 0)
			goto out;
		if (c.packs[i].nco)
			qsort(c.packs[i].co, c.packs[i].nco, sizeof(crc_override), crc_override_cmp);
	}
	for (i = 0; i < nloose; i++)
		if (!c.loose[i].skip && (rc = pack_loose(&c, &c.loose[i])) < 0)
			goto out;
	gw_hash_final(c.out_hash, stats->pack_checksum);
	if ((rc = gw_sink_write(pack_out, stats->pack_checksum, hash_len)) < 0)
		goto out;
	stats->objects = c.total;
	stats->pack_bytes = c.out_bytes + hash_len;
	rc = write_idx(&c, idx_out);
out:
	for (i = 0; c.packs && i < npacks; i++) {
		free(c.packs[i].skip);
		free(c.packs[i].bp);
		free(c.packs[i].sk);
		free(c.packs[i].co);
	}
	free(c.packs);
	free(c.loose);
	gw_hash_free(c.out_hash);
	return rc;
}
