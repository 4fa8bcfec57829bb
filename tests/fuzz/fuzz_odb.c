/*
 * libFuzzer target: the object reader (src/odb) on arbitrary bytes, through
 * its public API over files in a scratch repository. The first byte says
 * what the rest is (its bit 0x80: SHA-256 ids instead of SHA-1):
 *   0  a loose object file as stored (zlib and all)
 *   1  a loose object's inflated content ("type size\0data"), deflated here
 *   2  a delta and its base, [base length: 2 bytes][base][delta], applied
 *      directly (gw_delta_apply)
 *   3  an .idx and its .pack: [idx length: 4 bytes][idx][pack]
 *   4  pack entries described, deflated and indexed here (so that mutations
 *      reach the delta instructions and the chains): per entry [type][base
 *      entry][length][data]; OFS_DELTA and REF_DELTA name their base by its
 *      place (ids are made up: 0x01, 0x11, 0x21, ... then zeros)
 * Whatever opens is read back: every id the index lists (whole, header,
 * presence) and an absent one. Objects are capped at 1 MiB. It aborts on a
 * broken invariant: a read that succeeds with another size than its header
 * read, data without its NUL, an error without a message.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gitwal/error.h"
#include "gitwal/odb.h"
#include "odb/odb_internal.h"
#include "pack/pack.h"
#include "util/bytes.h"

static char fz_odb_dir[64];

static void fz_odb_write(const char *rel, const void *data, size_t len)
{
	char path[256];
	FILE *f;
	snprintf(path, sizeof(path), "%s/%s", fz_odb_dir, rel);
	if (!(f = fopen(path, "wb")) || (len && fwrite(data, 1, len, f) != len) || fclose(f))
		abort();
}

static void fz_odb_setup(void)
{
	char path[128];
	if (fz_odb_dir[0])
		return;
	snprintf(fz_odb_dir, sizeof(fz_odb_dir), "/tmp/gitwal-fuzz-odb-XXXXXX");
	if (!mkdtemp(fz_odb_dir))
		abort();
	snprintf(path, sizeof(path), "%s/objects", fz_odb_dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/objects/pack", fz_odb_dir);
	mkdir(path, 0700);
}

/* Remove the scratch repository (the unit test's driver calls it at the end). */
__attribute__((unused)) static void fz_odb_cleanup(void)
{
	char cmd[128];
	if (!fz_odb_dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fz_odb_dir);
	if (system(cmd) != 0)
		abort();
	fz_odb_dir[0] = '\0';
}

/* The id of "blob 5\0hello", where the loose modes store their object. */
static void fz_odb_hello(gw_oid *oid, size_t hl)
{
	oid->len = hl;
	gw_hash_buffer(hl == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256, "blob 5\0hello", 12, oid->id);
}

/* What the previous input left: the loose object (either id size) and the pack. */
static void fz_odb_clear(void)
{
	static const size_t sizes[] = {20, 32};
	char path[256], hex[GW_HEX_MAX];
	gw_oid oid;
	size_t i;
	for (i = 0; i < 2; i++) {
		fz_odb_hello(&oid, sizes[i]);
		gw_oid_to_hex(hex, &oid);
		snprintf(path, sizeof(path), "%s/objects/%.2s/%s", fz_odb_dir, hex, hex + 2);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/objects/pack/pack-f.idx", fz_odb_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/objects/pack/pack-f.pack", fz_odb_dir);
	unlink(path);
}

static void fz_odb_check_error(int rc)
{
	if (rc < 0 && !gw_error_message()[0])
		abort();
}

/* Read oid every way there is; the answers must agree. */
static void fz_odb_read_all(gw_odb *odb, const gw_oid *oid)
{
	unsigned char *data = NULL;
	size_t len = 0;
	uint64_t size = 0;
	gw_object_t type = GW_OBJECT_INVALID, htype = GW_OBJECT_INVALID;
	int rc = gw_odb_read(odb, oid, &type, &data, &len), hrc;
	fz_odb_check_error(rc);
	if (rc == 0) {
		if (!data || data[len] != '\0' || !gw_object_type_name(type))
			abort();
		free(data);
	} else if (data) {
		abort();
	}
	hrc = gw_odb_read_header(odb, oid, &htype, &size);
	fz_odb_check_error(hrc);
	/* A whole read that succeeds knows the header; the reverse need not hold (the data may be damaged). */
	if (rc == 0 && (hrc != 0 || htype != type || size != len))
		abort();
	rc = gw_odb_exists(odb, oid);
	fz_odb_check_error(rc);
	if (hrc == 0 && rc != 1)
		abort();
}

static gw_odb *fz_odb_open(size_t hl)
{
	gw_odb_options o = {.label = "fuzz", .hash_len = hl, .max_object_size = 1 << 20, .cache_bytes = 1 << 16};
	gw_odb *odb = NULL;
	int rc = gw_odb_open(&odb, fz_odb_dir, &o);
	fz_odb_check_error(rc);
	return rc == 0 ? odb : NULL;
}

static void fz_odb_loose(const uint8_t *data, size_t size, size_t hl, int deflate_it)
{
	char hex[GW_HEX_MAX], rel[128];
	unsigned char *z = NULL;
	gw_oid oid;
	gw_odb *odb;
	fz_odb_hello(&oid, hl);
	gw_oid_to_hex(hex, &oid);
	snprintf(rel, sizeof(rel), "objects/%.2s", hex);
	{
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", fz_odb_dir, rel);
		mkdir(path, 0700);
	}
	snprintf(rel, sizeof(rel), "objects/%.2s/%s", hex, hex + 2);
	if (deflate_it) {
		uLongf n = compressBound(size);
		if (!(z = malloc(n)) || compress2(z, &n, data, size, 1) != Z_OK)
			abort();
		fz_odb_write(rel, z, n);
		free(z);
	} else {
		fz_odb_write(rel, data, size);
	}
	if ((odb = fz_odb_open(hl))) {
		fz_odb_read_all(odb, &oid);
		gw_odb_free(odb);
	}
}

static void fz_odb_delta(const uint8_t *data, size_t size)
{
	unsigned char *out = NULL;
	size_t base_len, out_len;
	const char *why;
	uint64_t announced;
	int rc;
	if (size < 2)
		return;
	base_len = (size_t)data[0] << 8 | data[1];
	if (base_len > size - 2)
		base_len = size - 2;
	rc = gw_delta_apply(data + 2, base_len, data + 2 + base_len, size - 2 - base_len, 1 << 20, &out, &out_len, &why);
	if (rc == 0) {
		/* What it wrote is what it announced, NUL after. */
		if (gw_delta_result_size(data + 2 + base_len, size - 2 - base_len, &announced) || announced != out_len ||
		    out[out_len] != '\0')
			abort();
		free(out);
	} else if (out || (rc == GW_ECORRUPT && !why)) {
		abort();
	}
}

/* Every id the (first) index lists, then an absent one. */
static void fz_odb_read_pack(size_t hl)
{
	gw_odb *odb = fz_odb_open(hl);
	gw_oid oid;
	uint32_t i;
	if (!odb)
		return;
	if (odb->nsources && odb->sources[0].npacks) {
		const gw_idx *idx = &odb->sources[0].packs[0]->idx;
		for (i = 0; i < idx->count && i < 64; i++) {
			oid.len = hl;
			if (gw_idx_oid_at(idx, i, oid.id) < 0)
				break;
			fz_odb_read_all(odb, &oid);
		}
	}
	memset(oid.id, 0xfe, sizeof(oid.id));
	oid.len = hl;
	fz_odb_read_all(odb, &oid);
	gw_odb_free(odb);
}

static void fz_odb_pack(const uint8_t *data, size_t size, size_t hl)
{
	size_t idx_len;
	if (size < 4)
		return;
	idx_len = gw_get_be32(data);
	if (idx_len > size - 4)
		idx_len = size - 4;
	fz_odb_write("objects/pack/pack-f.idx", data + 4, idx_len);
	fz_odb_write("objects/pack/pack-f.pack", data + 4 + idx_len, size - 4 - idx_len);
	fz_odb_read_pack(hl);
}

#define FZ_ODB_ENTRIES 16

static void fz_odb_structured(const uint8_t *data, size_t size, size_t hl)
{
	unsigned char *pack, *idx, *p;
	uint64_t offs[FZ_ODB_ENTRIES];
	size_t n = 0, plen = 12, i, at = 0, cap;
	uint32_t fan[256] = {0};
	/* Each entry is at most its header, a base id, and its data deflated: bounded by compressBound(255). */
	cap = 12 + FZ_ODB_ENTRIES * (16 + GW_HASH_MAX + compressBound(255)) + GW_HASH_MAX;
	if (!(pack = malloc(cap)) || !(idx = malloc(8 + 1024 + FZ_ODB_ENTRIES * (GW_HASH_MAX + 8) + 2 * GW_HASH_MAX)))
		abort();
	while (n < FZ_ODB_ENTRIES && size - at >= 3) {
		int type = data[at] & 7;
		size_t base = data[at + 1] % FZ_ODB_ENTRIES, len = data[at + 2];
		uLongf zn;
		at += 3;
		if (len > size - at)
			len = size - at;
		offs[n] = plen;
		plen += gw_pack_encode_header(pack + plen, type, len);
		if (type == GW_OBJ_OFS_DELTA) {
			/* A base before it, or (to test the checks) anywhere. */
			plen += gw_pack_encode_ofs(pack + plen, base < n ? offs[n] - offs[base] : base + 1);
		} else if (type == GW_OBJ_REF_DELTA) {
			memset(pack + plen, 0, hl);
			pack[plen] = (unsigned char)(base * 16 + 1);
			plen += hl;
		}
		zn = compressBound(len);
		if (compress2(pack + plen, &zn, data + at, len, 1) != Z_OK)
			abort();
		plen += zn;
		at += len;
		n++;
	}
	memcpy(pack, "PACK\0\0\0\2", 8);
	gw_put_be32(pack + 8, (uint32_t)n);
	memset(pack + plen, 0xc5, hl); /* the checksum is not verified; the index names the same */
	plen += hl;
	memcpy(idx, "\377tOc\0\0\0\2", 8);
	for (i = 0; i < n; i++)
		fan[i * 16 + 1]++;
	for (i = 1; i < 256; i++)
		fan[i] += fan[i - 1];
	for (i = 0; i < 256; i++)
		gw_put_be32(idx + 8 + 4 * i, fan[i]);
	p = idx + 8 + 1024;
	for (i = 0; i < n; i++, p += hl) {
		memset(p, 0, hl);
		p[0] = (unsigned char)(i * 16 + 1);
	}
	memset(p, 0, 4 * n);
	p += 4 * n;
	for (i = 0; i < n; i++, p += 4)
		gw_put_be32(p, (uint32_t)offs[i]);
	memset(p, 0xc5, hl);
	p += hl;
	memset(p, 0, hl);
	p += hl;
	fz_odb_write("objects/pack/pack-f.idx", idx, (size_t)(p - idx));
	fz_odb_write("objects/pack/pack-f.pack", pack, plen);
	free(pack);
	free(idx);
	fz_odb_read_pack(hl);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t hl;
	if (size < 1)
		return 0;
	fz_odb_setup();
	fz_odb_clear();
	hl = data[0] & 0x80 ? 32 : 20;
	switch (data[0] & 0x7f) {
	case 0:
		fz_odb_loose(data + 1, size - 1, hl, 0);
		break;
	case 1:
		fz_odb_loose(data + 1, size - 1, hl, 1);
		break;
	case 2:
		fz_odb_delta(data + 1, size - 1);
		break;
	case 3:
		fz_odb_pack(data + 1, size - 1, hl);
		break;
	case 4:
		fz_odb_structured(data + 1, size - 1, hl);
		break;
	default:
		break;
	}
	gw_error_clear();
	return 0;
}
