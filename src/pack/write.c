/*
 * Writing a small pack from loose content: each object deflated whole (no
 * delta search), its CRC32 and offset recorded, then the .idx v2 built from
 * the sorted entries. Used for log segments of small changes, where starting
 * `git pack-objects` would cost more than the work itself.
 */
#include "pack/pack.h"
#include "gitwal/error.h"

#include <errno.h>
#include <fcntl.h>
#include <git2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define OID 20

typedef struct {
	unsigned char oid[OID];
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

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static int entry_cmp(const void *a, const void *b)
{
	return memcmp(((const entry *)a)->oid, ((const entry *)b)->oid, OID);
}

static int write_object(out_file *f, git_odb *odb, entry *e)
{
	git_odb_object *obj = NULL;
	git_oid oid;
	unsigned char hdr[16], out[1 << 16];
	z_stream z;
	int type, rc = 0, zr;
	size_t hl;

	memcpy(oid.id, e->oid, OID);
	if (git_odb_read(&obj, odb, &oid) < 0) {
		char hex[GW_HEX_MAX];
		gw_hex_encode(hex, e->oid, OID);
		return gw_error_set(GW_ERROR, "cannot read object %s: %s", hex,
				    git_error_last() ? git_error_last()->message : "?");
	}
	switch (git_odb_object_type(obj)) {
	case GIT_OBJECT_COMMIT:
		type = GW_OBJ_COMMIT;
		break;
	case GIT_OBJECT_TREE:
		type = GW_OBJ_TREE;
		break;
	case GIT_OBJECT_BLOB:
		type = GW_OBJ_BLOB;
		break;
	default:
		type = GW_OBJ_TAG;
		break;
	}
	e->offset = f->bytes;
	e->crc = 0;
	hl = gw_pack_encode_header(hdr, type, git_odb_object_size(obj));
	if ((rc = put(f, hdr, hl, &e->crc)) < 0)
		goto out;
	memset(&z, 0, sizeof(z));
	if (deflateInit(&z, Z_BEST_SPEED) != Z_OK) {
		rc = gw_error_set(GW_ERROR, "zlib initialisation failed");
		goto out;
	}
	z.next_in = (unsigned char *)git_odb_object_data(obj);
	z.avail_in = (uInt)git_odb_object_size(obj);
	do {
		z.next_out = out;
		z.avail_out = sizeof(out);
		zr = deflate(&z, Z_FINISH);
		if ((rc = put(f, out, sizeof(out) - z.avail_out, &e->crc)) < 0)
			break;
	} while (zr == Z_OK || (zr == Z_BUF_ERROR && z.avail_out == 0));
	deflateEnd(&z);
	if (rc == 0 && zr != Z_STREAM_END)
		rc = gw_error_set(GW_ERROR, "zlib deflate failed");
out:
	git_odb_object_free(obj);
	return rc;
}

static int write_idx(out_file *f, entry *es, size_t n, const unsigned char *pack_sum)
{
	unsigned char b[8], sum[OID];
	uint32_t fan[256] = {0}, acc = 0;
	uint64_t *large = NULL;
	size_t i, nlarge = 0;
	int rc;
	for (i = 0; i < n; i++)
		fan[es[i].oid[0]]++;
	if ((rc = put(f, GW_IDX_V2_MAGIC, 4, NULL)) < 0)
		return rc;
	put_be32(b, 2);
	if ((rc = put(f, b, 4, NULL)) < 0)
		return rc;
	for (i = 0; i < 256; i++) {
		acc += fan[i];
		put_be32(b, acc);
		if ((rc = put(f, b, 4, NULL)) < 0)
			return rc;
	}
	for (i = 0; i < n; i++)
		if ((rc = put(f, es[i].oid, OID, NULL)) < 0)
			return rc;
	for (i = 0; i < n; i++) {
		put_be32(b, es[i].crc);
		if ((rc = put(f, b, 4, NULL)) < 0)
			return rc;
	}
	if (!(large = calloc(n ? n : 1, sizeof(uint64_t))))
		return gw_error_set(GW_ERROR, "out of memory");
	for (i = 0; i < n && rc == 0; i++) {
		if (es[i].offset < 0x80000000u) {
			put_be32(b, (uint32_t)es[i].offset);
		} else {
			large[nlarge] = es[i].offset;
			put_be32(b, 0x80000000u | (uint32_t)nlarge++);
		}
		rc = put(f, b, 4, NULL);
	}
	for (i = 0; i < nlarge && rc == 0; i++) {
		put_be32(b, (uint32_t)(large[i] >> 32));
		put_be32(b + 4, (uint32_t)large[i]);
		rc = put(f, b, 8, NULL);
	}
	free(large);
	if (rc == 0)
		rc = put(f, pack_sum, OID, NULL);
	if (rc == 0) {
		gw_hash_final(f->hash, sum);
		f->hash = NULL;
		rc = put(f, sum, OID, NULL);
	}
	return rc;
}

int gw_pack_write_objects(void *odb, const unsigned char *oids, size_t n, const char *base, char **pack_path,
			  char **idx_path)
{
	char tmp_pack[4200], tmp_idx[4200], hex[GW_HEX_MAX];
	unsigned char hdr[12], sum[OID];
	out_file pf = {.fd = -1}, xf = {.fd = -1};
	gw_hash *ph = NULL, *xh = NULL;
	entry *es = calloc(n ? n : 1, sizeof(entry));
	size_t i;
	int rc = 0;

	*pack_path = *idx_path = NULL;
	snprintf(tmp_pack, sizeof(tmp_pack), "%s.tmp.pack", base);
	snprintf(tmp_idx, sizeof(tmp_idx), "%s.tmp.idx", base);
	if (!es || gw_hash_new(&ph, GW_HASH_SHA1) < 0 || gw_hash_new(&xh, GW_HASH_SHA1) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = out_open(&pf, tmp_pack, ph)) < 0 || (rc = out_open(&xf, tmp_idx, xh)) < 0)
		goto out;
	memcpy(hdr, "PACK\0\0\0\2", 8);
	put_be32(hdr + 8, (uint32_t)n);
	if ((rc = put(&pf, hdr, sizeof(hdr), NULL)) < 0)
		goto out;
	for (i = 0; i < n && rc == 0; i++) {
		memcpy(es[i].oid, oids + i * OID, OID);
		rc = write_object(&pf, odb, &es[i]);
	}
	if (rc < 0)
		goto out;
	gw_hash_final(ph, sum);
	pf.hash = NULL;
	if ((rc = put(&pf, sum, OID, NULL)) < 0)
		goto out;
	if (n)
		qsort(es, n, sizeof(entry), entry_cmp);
	if ((rc = write_idx(&xf, es, n, sum)) < 0 || (rc = gw_fd_sink_flush(&pf.out)) < 0 ||
	    (rc = gw_fd_sink_flush(&xf.out)) < 0)
		goto out;
	gw_hex_encode(hex, sum, OID);
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

struct gw_pack_appender {
	out_file pf;
	gw_hash *hash;
	char tmp_pack[4200], base[4096];
	entry *es;
	uint64_t declared, n;
	int finished;
};

static uint32_t be32_at(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int gw_pack_appender_open(gw_pack_appender **out, const char *base, uint64_t objects)
{
	gw_pack_appender *a = calloc(1, sizeof(*a));
	unsigned char hdr[12];
	int rc;
	*out = NULL;
	if (!a || objects > UINT32_MAX || !(a->es = calloc(objects ? objects : 1, sizeof(entry))) ||
	    gw_hash_new(&a->hash, GW_HASH_SHA1) < 0) {
		if (a)
			free(a->es);
		free(a);
		return gw_error_set(GW_ERROR, objects > UINT32_MAX ? "too many objects for one pack" : "out of memory");
	}
	a->declared = objects;
	snprintf(a->base, sizeof(a->base), "%s", base);
	snprintf(a->tmp_pack, sizeof(a->tmp_pack), "%s.tmp.pack", base);
	if ((rc = out_open(&a->pf, a->tmp_pack, a->hash)) < 0) {
		gw_pack_appender_free(a);
		return rc;
	}
	memcpy(hdr, "PACK\0\0\0\2", 8);
	put_be32(hdr + 8, (uint32_t)objects);
	if ((rc = put(&a->pf, hdr, sizeof(hdr), NULL)) < 0) {
		gw_pack_appender_free(a);
		return rc;
	}
	*out = a;
	return 0;
}

int gw_pack_appender_add(gw_pack_appender *a, const unsigned char *pack, size_t pack_len, const unsigned char *idx,
			 size_t idx_len, const char *what)
{
	uint64_t n, i, nlarge, shift = a->pf.bytes - 12;
	const unsigned char *oids, *crcs, *offs, *large;
	if (pack_len < 32 || memcmp(pack, "PACK\0\0\0\2", 8) != 0)
		return gw_error_set(GW_ECORRUPT, "%s: not a version 2 pack", what);
	n = be32_at(pack + 8);
	if (idx_len < 8 + 1024 + 40 || memcmp(idx, GW_IDX_V2_MAGIC "\0\0\0\2", 8) != 0 ||
	    be32_at(idx + 8 + 255 * 4) != n || (idx_len - 8 - 1024 - 40) / 28 < n)
		return gw_error_set(GW_ECORRUPT, "%s: its pack index does not describe its %llu objects", what,
				    (unsigned long long)n);
	if (n > a->declared - a->n)
		return gw_error_set(GW_ECORRUPT, "%s: holds more objects than recorded", what);
	oids = idx + 8 + 1024;
	crcs = oids + n * 20;
	offs = crcs + n * 4;
	large = offs + n * 4;
	nlarge = (idx_len - 40 - (uint64_t)(large - idx)) / 8;
	for (i = 0; i < n; i++) {
		entry *e = &a->es[a->n + i];
		uint64_t off = be32_at(offs + i * 4);
		if (off & 0x80000000u) {
			uint64_t k = off & 0x7fffffffu;
			if (k >= nlarge)
				return gw_error_set(GW_ECORRUPT, "%s: its pack index is damaged", what);
			off = (uint64_t)be32_at(large + k * 8) << 32 | be32_at(large + k * 8 + 4);
		}
		if (off < 12 || off >= pack_len - 20)
			return gw_error_set(GW_ECORRUPT, "%s: an object offset lies outside its pack", what);
		memcpy(e->oid, oids + i * 20, OID);
		e->crc = be32_at(crcs + i * 4);
		e->offset = off + shift;
	}
	a->n += n;
	return put(&a->pf, pack + 12, pack_len - 32, NULL);
}

int gw_pack_appender_finish(gw_pack_appender *a, char **pack_path, char **idx_path)
{
	char tmp_idx[4200], hex[GW_HEX_MAX];
	unsigned char sum[OID];
	out_file xf = {.fd = -1};
	gw_hash *xh = NULL;
	uint64_t i;
	int rc = 0;
	*pack_path = *idx_path = NULL;
	if (a->n != a->declared)
		return gw_error_set(GW_ECORRUPT, "pack %s: %llu objects recorded, %llu found", a->base,
				    (unsigned long long)a->declared, (unsigned long long)a->n);
	gw_hash_final(a->hash, sum);
	a->pf.hash = NULL;
	if ((rc = put(&a->pf, sum, OID, NULL)) < 0 || (rc = out_flush_sync(&a->pf)) < 0)
		return rc;
	if (a->n)
		qsort(a->es, a->n, sizeof(entry), entry_cmp);
	for (i = 1; i < a->n; i++)
		if (!memcmp(a->es[i - 1].oid, a->es[i].oid, OID)) {
			gw_hex_encode(hex, a->es[i].oid, OID);
			return gw_error_set(GW_ECORRUPT, "pack %s: object %s is stored twice in one generation", a->base, hex);
		}
	snprintf(tmp_idx, sizeof(tmp_idx), "%s.tmp.idx", a->base);
	if (gw_hash_new(&xh, GW_HASH_SHA1) < 0)
		return gw_error_set(GW_ERROR, "out of memory");
	if ((rc = out_open(&xf, tmp_idx, xh)) == 0 && (rc = write_idx(&xf, a->es, a->n, sum)) == 0)
		rc = out_flush_sync(&xf);
	gw_hex_encode(hex, sum, OID);
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
	if (!a->finished)
		unlink(a->tmp_pack);
	gw_hash_free(a->hash);
	free(a->es);
	free(a);
}
