/*
 * Writing a small pack from loose content: each object deflated whole (no
 * delta search), its CRC32 and offset recorded, then the .idx v2 built from
 * the sorted entries. Used for log segments of small changes, where starting
 * `git pack-objects` would cost more than the work itself.
 */
#include "pack/pack.h"
#include "gitwal/array.h"
#include "gitwal/error.h"
#include "gitwal/odb.h"
#include "util/bytes.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>


/* Ids of either size; the bytes past a SHA-1 id stay zero, so comparing GW_HASH_MAX bytes orders them right. */
typedef struct {
	unsigned char oid[GW_HASH_MAX];
	uint64_t offset;
	uint32_t crc;
} entry;

typedef struct {
	int fd;
	const char *path;
	gw_hash *hash;
	uint64_t bytes;
	gw_fd_sink out; /* buffered: entries and index fields come a few bytes at a time */
} out_file;

static int put(out_file *f, const void *buf, size_t len, uint32_t *crc)
{
	if (f->hash)
		gw_hash_update(f->hash, buf, len);
	if (crc)
		*crc = (uint32_t)crc32_z(*crc, buf, len);
	f->bytes += len;
	return gw_sink_write(&f->out.sink, buf, len);
}

/* Create path for writing through a buffer. */
static int out_open(out_file *f, const char *path, gw_hash *hash)
{
	memset(f, 0, sizeof(*f));
	f->path = path;
	f->hash = hash;
	if ((f->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return gw_error_set_errno(GW_EIO, "cannot create %s", path);
	return gw_fd_sink_init(&f->out, f->fd, path);
}

static int out_flush_sync(out_file *f)
{
	int rc = gw_fd_sink_flush(&f->out);
	if (rc == 0 && fsync(f->fd) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot fsync %s", f->path);
	return rc;
}

static void out_close(out_file *f)
{
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
	gw_fd_sink_dispose(&f->out);
}

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(((const entry *)a)->oid, ((const entry *)b)->oid, GW_HASH_MAX);
}

static int write_object(out_file *f, gw_odb *odb, entry *e)
{
	unsigned char hdr[16], out[1 << 16], *data = NULL;
	const unsigned char *in;
	size_t len, left;
	gw_object_t type;
	gw_oid oid;
	z_stream z;
	int rc = 0, zr;
	size_t hl;

	gw_oid_from_raw(&oid, e->oid, gw_odb_hash_len(odb));
	if ((rc = gw_odb_read(odb, &oid, &type, &data, &len)) < 0)
		return rc;
	e->offset = f->bytes;
	e->crc = 0;
	hl = gw_pack_encode_header(hdr, type, len);
	if ((rc = put(f, hdr, hl, &e->crc)) < 0)
		goto out;
	memset(&z, 0, sizeof(z));
	if (deflateInit(&z, Z_BEST_SPEED) != Z_OK) {
		rc = gw_error_set(GW_ERROR, "zlib initialisation failed");
		goto out;
	}
	in = data;
	left = len;
	do {
		if (z.avail_in == 0 && left) {
			z.next_in = (unsigned char *)in;
			z.avail_in = left > UINT_MAX ? UINT_MAX : (uInt)left;
			in += z.avail_in;
			left -= z.avail_in;
		}
		z.next_out = out;
		z.avail_out = sizeof(out);
		zr = deflate(&z, left ? Z_NO_FLUSH : Z_FINISH);
		if ((rc = put(f, out, sizeof(out) - z.avail_out, &e->crc)) < 0)
			break;
	} while (zr == Z_OK || (zr == Z_BUF_ERROR && z.avail_out == 0));
	deflateEnd(&z);
	if (rc == 0 && zr != Z_STREAM_END)
		rc = gw_error_set(GW_ERROR, "zlib deflate failed");
out:
	free(data);
	return rc;
}

/*
 * The entries of an index being written: `es` (sorted), merged with a base
 * pack's .idx (sorted, read as three streams, never whole) when there is one.
 * The OID pass records which side each position came from, so the CRC and
 * offset passes follow the same order without comparing again.
 */
typedef struct {
	const entry *es;
	size_t n, i;
	const gw_idx *base;
	gw_idx_stream s;
	gw_idx_table table;
	size_t hl;
	unsigned char held[GW_HASH_MAX];
	const unsigned char *cur; /* the base's next entry, NULL when done */
	unsigned char *from_base; /* bitmap over the merged order */
	const char *what;
} idx_merge;

static int merge_start(idx_merge *m, gw_idx_table table)
{
	int rc, err = 0;
	m->table = table;
	m->i = 0;
	m->cur = NULL;
	if (!m->base)
		return 0;
	gw_idx_stream_dispose(&m->s);
	if ((rc = gw_idx_stream_init(&m->s, m->base, table, 1u << 16)) < 0)
		return rc;
	m->cur = gw_idx_stream_next(&m->s, &err);
	return err;
}

/* The entry at merged position pos: *e (one of es) or *b (the base's, valid until the next call). */
static int merge_next(idx_merge *m, uint64_t pos, const entry **e, const unsigned char **b)
{
	int err = 0, from_base = 0;
	*e = NULL;
	*b = NULL;
	if (m->base && m->table == GW_IDX_TABLE_OID) {
		from_base = m->cur && (m->i == m->n || memcmp(m->cur, m->es[m->i].oid, m->hl) < 0);
		if (from_base)
			m->from_base[pos / 8] |= (unsigned char)(1u << (pos % 8));
	} else if (m->base) {
		from_base = (m->from_base[pos / 8] >> (pos % 8)) & 1;
	}
	if (!from_base) {
		if (m->i >= m->n)
			return gw_error_set(GW_ECORRUPT, "%s: its index ended early", m->what);
		*e = &m->es[m->i++];
		return 0;
	}
	if (!m->cur)
		return gw_error_set(GW_ECORRUPT, "%s: its index ended early", m->base->name);
	memcpy(m->held, m->cur, m->s.entry_size); /* the stream may refill its buffer */
	*b = m->held;
	m->cur = gw_idx_stream_next(&m->s, &err);
	return err;
}

static int write_idx(out_file *f, size_t hl, const entry *es, size_t n, const gw_idx *base, uint64_t base_end,
		     const unsigned char *pack_sum, const char *what)
{
	idx_merge m = {.es = es, .n = n, .base = base, .what = what, .hl = hl};
	unsigned char b[8], sum[GW_HASH_MAX], prev[GW_HASH_MAX];
	uint32_t fan[256] = {0}, acc = 0;
	uint64_t *large = NULL, total = n + (base ? base->count : 0), pos, nlarge = 0, cap = 0;
	const unsigned char *be;
	const entry *e;
	char hex[GW_HEX_MAX];
	size_t i;
	int rc;
	if (total > UINT32_MAX)
		return gw_error_set(GW_ERROR, "%s: too many objects for one pack", what);
	for (i = 0; i < n; i++)
		fan[es[i].oid[0]]++;
	for (i = 0; base && i < 256; i++)
		fan[i] += base->fanout[i] - (i ? base->fanout[i - 1] : 0);
	if (base && !(m.from_base = calloc(total / 8 + 1, 1)))
		return gw_error_set(GW_ERROR, "out of memory");
	if ((rc = put(f, GW_IDX_V2_MAGIC, 4, NULL)) < 0)
		goto out;
	gw_put_be32(b, 2);
	if ((rc = put(f, b, 4, NULL)) < 0)
		goto out;
	for (i = 0; i < 256 && rc == 0; i++) {
		acc += fan[i];
		gw_put_be32(b, acc);
		rc = put(f, b, 4, NULL);
	}
	/* Names, strictly increasing: equal neighbours are one object stored twice. */
	if (rc == 0)
		rc = merge_start(&m, GW_IDX_TABLE_OID);
	for (pos = 0; pos < total && rc == 0; pos++) {
		const unsigned char *oid;
		if ((rc = merge_next(&m, pos, &e, &be)) < 0)
			break;
		oid = e ? e->oid : be;
		if (pos && memcmp(prev, oid, hl) >= 0) {
			gw_hex_encode(hex, oid, hl);
			rc = gw_error_set(GW_ECORRUPT, memcmp(prev, oid, hl) ? "%s: its index is not sorted at object %s"
									  : "%s: object %s is stored twice in one generation",
					  what, hex);
			break;
		}
		memcpy(prev, oid, hl);
		rc = put(f, oid, hl, NULL);
	}
	if (rc == 0)
		rc = merge_start(&m, GW_IDX_TABLE_CRC);
	for (pos = 0; pos < total && rc == 0; pos++) {
		if ((rc = merge_next(&m, pos, &e, &be)) < 0)
			break;
		if (e)
			gw_put_be32(b, e->crc);
		else
			memcpy(b, be, 4);
		rc = put(f, b, 4, NULL);
	}
	if (rc == 0)
		rc = merge_start(&m, GW_IDX_TABLE_OFFSET);
	for (pos = 0; pos < total && rc == 0; pos++) {
		uint64_t off;
		if ((rc = merge_next(&m, pos, &e, &be)) < 0)
			break;
		if (e) {
			off = e->offset;
		} else {
			if ((rc = gw_idx_decode_offset(base, be, &off)) < 0)
				break;
			if (off < 12 || off >= base_end) {
				rc = gw_error_set(GW_ECORRUPT, "%s: an object offset lies outside its pack", base->name);
				break;
			}
		}
		if (off < 0x80000000u) {
			gw_put_be32(b, (uint32_t)off);
		} else {
			if ((rc = GW_ARRAY_RESERVE(large, cap, nlarge + 1)) < 0)
				break;
			large[nlarge] = off;
			gw_put_be32(b, 0x80000000u | (uint32_t)nlarge++);
		}
		rc = put(f, b, 4, NULL);
	}
	for (i = 0; i < nlarge && rc == 0; i++) {
		gw_put_be32(b, (uint32_t)(large[i] >> 32));
		gw_put_be32(b + 4, (uint32_t)large[i]);
		rc = put(f, b, 8, NULL);
	}
	if (rc == 0)
		rc = put(f, pack_sum, hl, NULL);
	if (rc == 0) {
		gw_hash_final(f->hash, sum);
		f->hash = NULL;
		rc = put(f, sum, hl, NULL);
	}
out:
	if (base)
		gw_idx_stream_dispose(&m.s);
	free(m.from_base);
	free(large);
	return rc;
}

int gw_pack_write_objects(gw_odb *odb, const unsigned char *oids, size_t n, const char *base, char **pack_path,
			  char **idx_path)
{
	char tmp_pack[4200], tmp_idx[4200], hex[GW_HEX_MAX];
	unsigned char hdr[12], sum[GW_HASH_MAX];
	out_file pf = {.fd = -1}, xf = {.fd = -1};
	gw_hash *ph = NULL, *xh = NULL;
	entry *es = calloc(n ? n : 1, sizeof(entry));
	size_t i, hl = gw_odb_hash_len(odb);
	gw_hash_kind kind = hl == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256;
	int rc = 0;

	*pack_path = *idx_path = NULL;
	snprintf(tmp_pack, sizeof(tmp_pack), "%s.tmp.pack", base);
	snprintf(tmp_idx, sizeof(tmp_idx), "%s.tmp.idx", base);
	if (!es || gw_hash_new(&ph, kind) < 0 || gw_hash_new(&xh, kind) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = out_open(&pf, tmp_pack, ph)) < 0 || (rc = out_open(&xf, tmp_idx, xh)) < 0)
		goto out;
	memcpy(hdr, "PACK\0\0\0\2", 8);
	gw_put_be32(hdr + 8, (uint32_t)n);
	if ((rc = put(&pf, hdr, sizeof(hdr), NULL)) < 0)
		goto out;
	for (i = 0; i < n && rc == 0; i++) {
		memcpy(es[i].oid, oids + i * hl, hl);
		rc = write_object(&pf, odb, &es[i]);
	}
	if (rc < 0)
		goto out;
	gw_hash_final(ph, sum);
	pf.hash = NULL;
	if ((rc = put(&pf, sum, hl, NULL)) < 0)
		goto out;
	if (n)
		qsort(es, n, sizeof(entry), entry_cmp);
	if ((rc = write_idx(&xf, hl, es, n, NULL, 0, sum, base)) < 0 || (rc = gw_fd_sink_flush(&pf.out)) < 0 ||
	    (rc = gw_fd_sink_flush(&xf.out)) < 0)
		goto out;
	gw_hex_encode(hex, sum, hl);
	if (asprintf(pack_path, "%s-%s.pack", base, hex) < 0 || asprintf(idx_path, "%s-%s.idx", base, hex) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if (rename(tmp_pack, *pack_path) < 0 || rename(tmp_idx, *idx_path) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot rename %s", tmp_pack);
out:
	out_close(&pf);
	out_close(&xf);
	unlink(tmp_pack);
	unlink(tmp_idx);
	if (rc < 0) {
		free(*pack_path);
		free(*idx_path);
		*pack_path = *idx_path = NULL;
	}
	gw_hash_free(ph);
	gw_hash_free(xh);
	free(es);
	return rc;
}

/* ---- joining self-contained packs ---- */

typedef struct {
	gw_sink sink;
	gw_pack_appender *a;
} base_writer;

struct gw_pack_appender {
	out_file pf;   /* the appended packs' part */
	size_t hl;     /* ids' and checksums' length: 20 (SHA-1) or 32 (SHA-256) */
	gw_hash *hash; /* the joined pack's checksum, in file order */
	char tmp_pack[4200], base[4096];
	entry *es;
	uint64_t declared, n; /* objects of the appended packs */
	/* The base pack's part: written through base_sink, from another thread if need be. */
	base_writer base_sink;
	const gw_idx *base_idx;
	uint64_t base_len, base_written;
	int base_fd;
	gw_fd_sink base_out;
	int finished;
};

static int base_sink_write(gw_sink *sink, const void *buf, size_t len)
{
	gw_pack_appender *a = ((base_writer *)sink)->a;
	if (len > a->base_len - a->base_written)
		return gw_error_set(GW_ECORRUPT, "%s: the base pack is longer than announced (%llu bytes)",
				    a->base_idx->name, (unsigned long long)a->base_len);
	gw_hash_update(a->hash, buf, len);
	a->base_written += len;
	return gw_sink_write(&a->base_out.sink, buf, len);
}

/* Place a second descriptor at the base's part (the first byte after the header), which the base sink fills. */
static int base_open(gw_pack_appender *a, const gw_pack_base *first)
{
	if (first->idx->hash_len != a->hl)
		return gw_error_set(GW_ECORRUPT, "%s: its ids are %zu bytes, the joined pack's %zu", first->idx->name,
				    first->idx->hash_len, a->hl);
	a->base_idx = first->idx;
	a->base_len = first->body_len;
	a->base_sink.sink.write = base_sink_write;
	a->base_sink.a = a;
	if ((a->base_fd = open(a->tmp_pack, O_WRONLY | O_CLOEXEC)) < 0 || lseek(a->base_fd, 12, SEEK_SET) < 0)
		return gw_error_set_errno(GW_EIO, "cannot open %s", a->tmp_pack);
	if (lseek(a->pf.fd, (off_t)(12 + a->base_len), SEEK_SET) < 0)
		return gw_error_set_errno(GW_EIO, "cannot seek in %s", a->tmp_pack);
	a->pf.bytes = 12 + a->base_len;
	return gw_fd_sink_init(&a->base_out, a->base_fd, a->tmp_pack);
}

int gw_pack_appender_open(gw_pack_appender **out, const char *base, uint64_t objects, size_t hash_len,
			  const gw_pack_base *first)
{
	gw_pack_appender *a;
	uint64_t appended = objects - (first ? first->idx->count : 0);
	unsigned char hdr[12];
	int rc;
	*out = NULL;
	if (first && first->idx->count > objects)
		return gw_error_set(GW_ECORRUPT, "%s: holds more objects than recorded", first->idx->name);
	if (!(a = calloc(1, sizeof(*a))) || objects > UINT32_MAX || !(a->es = calloc(appended ? appended : 1, sizeof(entry))) ||
	    gw_hash_new(&a->hash, hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256) < 0) {
		if (a)
			free(a->es);
		free(a);
		return gw_error_set(GW_ERROR, objects > UINT32_MAX ? "too many objects for one pack" : "out of memory");
	}
	a->base_fd = -1;
	a->hl = hash_len;
	a->declared = appended;
	snprintf(a->base, sizeof(a->base), "%s", base);
	snprintf(a->tmp_pack, sizeof(a->tmp_pack), "%s.tmp.pack", base);
	if ((rc = out_open(&a->pf, a->tmp_pack, a->hash)) < 0)
		goto fail;
	memcpy(hdr, "PACK\0\0\0\2", 8);
	gw_put_be32(hdr + 8, (uint32_t)objects);
	if ((rc = put(&a->pf, hdr, sizeof(hdr), NULL)) < 0 || (rc = gw_fd_sink_flush(&a->pf.out)) < 0)
		goto fail;
	if (first) {
		/* The appended part is hashed at the end, after the base's part (SHA-1 runs in file order). */
		a->pf.hash = NULL;
		if ((rc = base_open(a, first)) < 0)
			goto fail;
	}
	*out = a;
	return 0;
fail:
	gw_pack_appender_free(a);
	return rc;
}

gw_sink *gw_pack_appender_base_sink(gw_pack_appender *a)
{
	return &a->base_sink.sink;
}

int gw_pack_appender_add(gw_pack_appender *a, const unsigned char *pack, size_t pack_len, const unsigned char *idx,
			 size_t idx_len, const char *what)
{
	uint64_t n, i, shift = a->pf.bytes - 12;
	gw_idx sidx;
	int rc;
	/* Nothing is appended unchecked: the index on its own, then the pack against it (its SHA-1, offsets, CRC32s). */
	if ((rc = gw_idx_open_buffer(&sidx, idx, idx_len, what, a->hl, 1)) < 0 ||
	    (rc = gw_idx_verify(&sidx, NULL, 0, NULL)) < 0 || (rc = gw_pack_check_buffer(&sidx, pack, pack_len, what)) < 0)
		return rc;
	n = sidx.count;
	if (n > a->declared - a->n)
		return gw_error_set(GW_ECORRUPT, "%s: holds more objects than recorded", what);
	/* Offsets were checked against the pack: each lies inside it, at an object. */
	for (i = 0; i < n; i++) {
		entry *e = &a->es[a->n + i];
		uint64_t off;
		if ((rc = gw_idx_decode_offset(&sidx, idx + sidx.ofs_off + i * 4, &off)) < 0)
			return rc;
		memset(e->oid, 0, sizeof(e->oid));
		memcpy(e->oid, idx + sidx.oid_off + i * a->hl, a->hl);
		e->crc = gw_get_be32(idx + sidx.crc_off + i * 4);
		e->offset = off + shift;
	}
	a->n += n;
	return put(&a->pf, pack + 12, pack_len - 12 - a->hl, NULL);
}

/* With a base, the appended part was written unhashed: hash it now, read back (it is in the page cache). */
static int hash_appended_part(gw_pack_appender *a)
{
	unsigned char *buf;
	uint64_t off = 12 + a->base_len;
	int fd, rc = 0;
	if (!a->base_idx)
		return 0;
	if ((fd = open(a->tmp_pack, O_RDONLY | O_CLOEXEC)) < 0)
		return gw_error_set_errno(GW_EIO, "cannot open %s", a->tmp_pack);
	if (!(buf = malloc(1u << 20))) {
		close(fd);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	while (off < a->pf.bytes && rc == 0) {
		size_t want = a->pf.bytes - off < (1u << 20) ? (size_t)(a->pf.bytes - off) : (1u << 20);
		ssize_t got = pread(fd, buf, want, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0) {
			rc = gw_error_set_errno(GW_EIO, "cannot read back %s", a->tmp_pack);
		} else {
			gw_hash_update(a->hash, buf, (size_t)got);
			off += (uint64_t)got;
		}
	}
	free(buf);
	close(fd);
	return rc;
}

int gw_pack_appender_finish(gw_pack_appender *a, char **pack_path, char **idx_path)
{
	char tmp_idx[4200], hex[GW_HEX_MAX];
	unsigned char sum[GW_HASH_MAX];
	out_file xf = {.fd = -1};
	gw_hash *xh = NULL;
	int rc = 0;
	*pack_path = *idx_path = NULL;
	if (a->n != a->declared)
		return gw_error_set(GW_ECORRUPT, "pack %s: %llu objects recorded, %llu found", a->base,
				    (unsigned long long)a->declared, (unsigned long long)a->n);
	if (a->base_idx && a->base_written != a->base_len)
		return gw_error_set(GW_ECORRUPT, "%s: %llu bytes of its pack announced, %llu written", a->base_idx->name,
				    (unsigned long long)a->base_len, (unsigned long long)a->base_written);
	if ((rc = gw_fd_sink_flush(&a->pf.out)) < 0 || (a->base_idx && (rc = gw_fd_sink_flush(&a->base_out)) < 0) ||
	    (rc = hash_appended_part(a)) < 0)
		return rc;
	gw_hash_final(a->hash, sum);
	a->pf.hash = NULL;
	if ((rc = put(&a->pf, sum, a->hl, NULL)) < 0 || (rc = out_flush_sync(&a->pf)) < 0)
		return rc;
	if (a->n)
		qsort(a->es, a->n, sizeof(entry), entry_cmp);
	snprintf(tmp_idx, sizeof(tmp_idx), "%s.tmp.idx", a->base);
	if (gw_hash_new(&xh, a->hl == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256) < 0)
		return gw_error_set(GW_ERROR, "out of memory");
	if ((rc = out_open(&xf, tmp_idx, xh)) == 0 &&
	    (rc = write_idx(&xf, a->hl, a->es, a->n, a->base_idx, 12 + a->base_len, sum, a->base)) == 0)
		rc = out_flush_sync(&xf);
	gw_hex_encode(hex, sum, a->hl);
	if (rc == 0 && (asprintf(pack_path, "%s-%s.pack", a->base, hex) < 0 ||
			asprintf(idx_path, "%s-%s.idx", a->base, hex) < 0))
		rc = gw_error_set(GW_ERROR, "out of memory");
	if (rc == 0 && (rename(a->tmp_pack, *pack_path) < 0 || rename(tmp_idx, *idx_path) < 0))
		rc = gw_error_set_errno(GW_EIO, "cannot rename %s", a->tmp_pack);
	out_close(&xf);
	gw_hash_free(xh);
	if (rc < 0) {
		unlink(tmp_idx);
		free(*pack_path);
		free(*idx_path);
		*pack_path = *idx_path = NULL;
		return rc;
	}
	a->finished = 1;
	return 0;
}

void gw_pack_appender_free(gw_pack_appender *a)
{
	if (!a)
		return;
	out_close(&a->pf);
	if (a->base_fd >= 0)
		close(a->base_fd);
	gw_fd_sink_dispose(&a->base_out);
	if (!a->finished)
		unlink(a->tmp_pack);
	gw_hash_free(a->hash);
	free(a->es);
	free(a);
}

void gw_pack_written_discard(char *pack_path, char *idx_path)
{
	if (pack_path)
		unlink(pack_path);
	if (idx_path)
		unlink(idx_path);
	free(pack_path);
	free(idx_path);
}
