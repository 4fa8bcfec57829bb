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
} out_file;

static int put(out_file *f, const void *buf, size_t len, uint32_t *crc)
{
	const unsigned char *p = buf;
	if (f->hash)
		gw_hash_update(f->hash, buf, len);
	if (crc)
		*crc = (uint32_t)crc32_z(*crc, buf, len);
	f->bytes += len;
	while (len) {
		ssize_t n = write(f->fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return gw_error_set_errno(GW_EIO, "cannot write %s", f->path);
		p += n;
		len -= (size_t)n;
	}
	return 0;
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
	out_file pf = {-1, tmp_pack, NULL, 0}, xf = {-1, tmp_idx, NULL, 0};
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
	pf.hash = ph;
	xf.hash = xh;
	if ((pf.fd = open(tmp_pack, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0 ||
	    (xf.fd = open(tmp_idx, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0) {
		rc = gw_error_set_errno(GW_EIO, "cannot create %s", tmp_pack);
		goto out;
	}
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
	if ((rc = write_idx(&xf, es, n, sum)) < 0)
		goto out;
	gw_hex_encode(hex, sum, OID);
	if (asprintf(pack_path, "%s-%s.pack", base, hex) < 0 || asprintf(idx_path, "%s-%s.idx", base, hex) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if (rename(tmp_pack, *pack_path) < 0 || rename(tmp_idx, *idx_path) < 0)
		rc = gw_error_set_errno(GW_EIO, "cannot rename %s", tmp_pack);
out:
	if (pf.fd >= 0)
		close(pf.fd);
	if (xf.fd >= 0)
		close(xf.fd);
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
