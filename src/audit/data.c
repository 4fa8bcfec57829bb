/*
 * The audit's data checks (--read-data): every byte of a full backup or of a
 * log segment is read once, in one sequential pass per key, and checked
 * against the SHA-256 recorded for it (the manifest's parts, the segment's
 * trailer). On the same pass the Git structure inside is parsed: the bundle
 * header (against the manifest's refs for a full backup), the pack header
 * ("PACK", version 2, the object count), the pack trailer (SHA-1 over the
 * pack) and the pack index (gw_idx_open with its own checksum verified, then
 * its object count, pack checksum and offsets against the pack).
 *
 * A pack index is copied into an anonymous memory file on the way, because
 * gw_idx_open reads through a descriptor; it is small next to its pack.
 *
 * The index is read before its pack (a full backup's idx first; a segment's
 * index range first), so the pack also streams through the check restore
 * applies before it installs anything (gw_pack_check, src/pack/verify.c:
 * offsets tiling the objects, each object's CRC32 and entry header): what
 * the audit calls sound, restore installs.
 */
#include "gitwal/array.h"
#include "gitwal/audit.h"
#include "gitwal/error.h"
#include "gitwal/layout.h"
#include "gitwal/segment.h"
#include "pack/pack.h"
#include "util/bytes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define BUNDLE_HEADER_MAX (64u << 20)
/* A segment's index read whole for restore's pack check up to this size (larger: the audit's own checks only). */
#define SEGMENT_IDX_CHECK_MAX (64u << 20)

/* Which record a problem found here is about. */
typedef struct {
	gw_audit_report *report;
	const char *rel;
	uint64_t lsn;
	const char *key;
} where;

/* ---- a pack, fed in pieces ---- */

typedef struct {
	gw_hash *sum;    /* SHA-1, or SHA-256 for a sha256 repository */
	size_t hl;       /* its length: 20 or 32 */
	unsigned char head[GW_PACK_HEADER_SIZE];
	unsigned char tail[GW_HASH_MAX]; /* the last bytes seen: the trailer once the pack ends */
	size_t tail_len;
	uint64_t bytes;
} pack_check;

static void pack_feed(pack_check *p, const unsigned char *buf, size_t len)
{
	if (p->bytes < GW_PACK_HEADER_SIZE) {
		size_t n = GW_PACK_HEADER_SIZE - (size_t)p->bytes;
		memcpy(p->head + p->bytes, buf, n < len ? n : len);
	}
	p->bytes += len;
	/* Everything but the last hl bytes goes through the hash: they may be the trailer. */
	if (len >= p->hl) {
		gw_hash_update(p->sum, p->tail, p->tail_len);
		gw_hash_update(p->sum, buf, len - p->hl);
		memcpy(p->tail, buf + len - p->hl, p->hl);
		p->tail_len = p->hl;
		return;
	}
	if (p->tail_len + len > p->hl) {
		size_t out = p->tail_len + len - p->hl;
		gw_hash_update(p->sum, p->tail, out);
		memmove(p->tail, p->tail + out, p->tail_len - out);
		p->tail_len -= out;
	}
	memcpy(p->tail + p->tail_len, buf, len);
	p->tail_len += len;
}

/*
 * Check what a whole pack must satisfy. expected_checksum (hex) may be NULL.
 * Returns 1 when the pack is sound (trailer then holds its checksum), else 0.
 */
static int pack_finish(pack_check *p, const where *w, const char *what, uint64_t objects,
		       const char *expected_checksum)
{
	unsigned char sum[GW_HASH_MAX];
	char hex[GW_HEX_MAX], stored[GW_HEX_MAX];
	int ok = 1;
	if (p->bytes < GW_PACK_HEADER_SIZE + p->hl) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
				    "%s: the pack is %llu bytes, too short for a header and a trailer", what,
				    (unsigned long long)p->bytes);
		return 0;
	}
	if (memcmp(p->head, "PACK", 4) != 0 || gw_get_be32(p->head + 4) != 2) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
				    "%s: the pack does not start with a version 2 pack header", what);
		ok = 0;
	} else if (gw_get_be32(p->head + 8) != objects) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
				    "%s: the pack header counts %u objects, the record says %llu", what,
				    gw_get_be32(p->head + 8), (unsigned long long)objects);
		ok = 0;
	}
	gw_hash_final(p->sum, sum);
	gw_hex_encode(hex, sum, p->hl);
	gw_hex_encode(stored, p->tail, p->hl);
	if (memcmp(sum, p->tail, p->hl) != 0) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
				    "%s: the pack's content hashes to %s %s, its trailer says %s", what,
				    p->hl == 20 ? "SHA-1" : "SHA-256", hex, stored);
		ok = 0;
	}
	if (expected_checksum && strcmp(stored, expected_checksum) != 0) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
				    "%s: the pack trailer is %s, the manifest's pack_checksum is %s", what, stored,
				    expected_checksum);
		ok = 0;
	}
	return ok;
}

/* ---- a bundle: header text, then a pack ---- */

typedef struct {
	char *header;
	size_t header_len, header_cap;
	int in_pack;
	int too_long;
	pack_check pack;
	/* Restore's check of the pack against its index, when the index is sound. */
	const gw_idx *idx;
	uint64_t bundle_size;
	gw_pack_check *pc;
	char *pc_error; /* its first complaint */
} bundle_check;

static void restore_check_failed(bundle_check *b)
{
	if (!b->pc_error)
		b->pc_error = strdup(gw_error_message());
	gw_pack_check_free(b->pc);
	b->pc = NULL;
}

/* The pack's bytes through restore's check (started when the bundle header ends: the pack's size is then known). */
static void restore_check_feed(bundle_check *b, const unsigned char *buf, size_t len)
{
	if (!b->pc && b->idx && !b->pc_error) {
		if (b->bundle_size < b->header_len ||
		    gw_pack_check_new(&b->pc, b->idx, b->bundle_size - b->header_len, "bundle", NULL) < 0) {
			restore_check_failed(b);
			return;
		}
	}
	if (b->pc && gw_sink_write(gw_pack_check_sink(b->pc), buf, len) < 0)
		restore_check_failed(b);
}

/* After the pack: report what restore's check found that the audit's own checks did not. */
static void restore_check_finish(bundle_check *b, const where *w, int pack_ok)
{
	if (b->pc && gw_pack_check_finish(b->pc) < 0)
		restore_check_failed(b);
	if (b->pc_error && pack_ok)
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK, "%s", b->pc_error);
	gw_pack_check_free(b->pc);
	b->pc = NULL;
	free(b->pc_error);
	b->pc_error = NULL;
}

static int bundle_feed(bundle_check *b, const unsigned char *buf, size_t len)
{
	size_t i = 0;
	while (!b->in_pack && !b->too_long && i < len) {
		/* The header ends with an empty line: the first "\n\n". */
		if (GW_ARRAY_RESERVE(b->header, b->header_cap, b->header_len + 1) < 0)
			return GW_ERROR;
		b->header[b->header_len++] = (char)buf[i++];
		if (b->header_len >= 2 && b->header[b->header_len - 1] == '\n' && b->header[b->header_len - 2] == '\n')
			b->in_pack = 1;
		else if (b->header_len > BUNDLE_HEADER_MAX)
			b->too_long = 1;
	}
	if (b->in_pack && i < len) {
		pack_feed(&b->pack, buf + i, len - i);
		restore_check_feed(b, buf + i, len - i);
	}
	return 0;
}

/* The header a full backup's bundle must have: its manifest's refs, then HEAD (DESIGN.md 4.1). */
static char *expected_full_header(const gw_manifest *m, size_t *len)
{
	size_t cap = 128, i, n = 0; /* the first lines (at most 39 bytes), HEAD's (at most 70) and the empty one */
	char *out;
	for (i = 0; i < m->nrefs; i++)
		cap += strlen(m->refs[i].name) + GW_HEX_MAX + 2;
	if (!(out = malloc(cap)))
		return NULL;
	n += (size_t)snprintf(out + n, cap - n, "%s",
			      m->hash_len == 32 ? "# v3 git bundle\n@object-format=sha256\n" : "# v2 git bundle\n");
	for (i = 0; i < m->nrefs; i++)
		if (*m->refs[i].oid)
			n += (size_t)snprintf(out + n, cap - n, "%s %s\n", m->refs[i].oid, m->refs[i].name);
	if (*m->head.oid)
		n += (size_t)snprintf(out + n, cap - n, "%s HEAD\n", m->head.oid);
	n += (size_t)snprintf(out + n, cap - n, "\n");
	*len = n;
	return out;
}

/*
 * Check a segment's bundle header: "# v2 git bundle" (sha1) or "# v3 git
 * bundle" and "@object-format=sha256" (hl 32), prerequisites, ref lines of
 * ids of hl bytes in hex, an empty line.
 */
static int segment_header_ok(const bundle_check *b, size_t hl)
{
	const char *p = b->header, *end = b->header + b->header_len - 1; /* the final empty line */
	const char *first = hl == 32 ? "# v3 git bundle\n@object-format=sha256\n" : "# v2 git bundle\n";
	const size_t hex = 2 * hl;
	if (b->header_len < strlen(first) + 1 || memcmp(p, first, strlen(first)) != 0)
		return 0;
	p += strlen(first);
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p)), *q = p;
		if (!nl)
			return 0;
		if (*q == '-') /* a prerequisite: "-<oid>[ comment]" */
			q++;
		if ((size_t)(nl - q) < hex || !gw_hex_is_lower(q, hex))
			return 0;
		if (*p != '-' && ((size_t)(nl - q) < hex + 2 || q[hex] != ' ')) /* a ref: "<oid> <name>" */
			return 0;
		p = nl + 1;
	}
	return 1;
}

/* ---- a pack index, against its pack ---- */

static void idx_check(int fd, const where *w, const char *what, size_t hl, uint64_t objects,
		      const unsigned char *pack_trailer,
		      uint64_t pack_size)
{
	gw_idx idx;
	gw_idx_stream s;
	const unsigned char *e;
	unsigned char prev[GW_HASH_MAX];
	uint64_t min_off = UINT64_MAX;
	uint32_t i;
	int err = 0;

	if (gw_idx_open(&idx, fd, w->key, hl, 1) < 0) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK, "%s: %s", what, gw_error_message());
		return;
	}
	if (idx.count != objects)
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
				    "%s: the pack index lists %u objects, the pack holds %llu", what, idx.count,
				    (unsigned long long)objects);
	if (pack_trailer && memcmp(idx.pack_checksum, pack_trailer, hl) != 0) {
		char a[GW_HEX_MAX], b[GW_HEX_MAX];
		gw_hex_encode(a, idx.pack_checksum, hl);
		gw_hex_encode(b, pack_trailer, hl);
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
				    "%s: the pack index is for pack %s, the pack is %s", what, a, b);
	}
	/* Object ids strictly increasing: binary searches depend on it. */
	if (gw_idx_stream_init(&s, &idx, GW_IDX_TABLE_OID, 1u << 20) < 0) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK, "%s: %s", what, gw_error_message());
		return;
	}
	for (i = 0; (e = gw_idx_stream_next(&s, &err)); i++) {
		if (i && memcmp(prev, e, hl) >= 0) {
			gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
					    "%s: object ids are not sorted at position %u", what, i);
			break;
		}
		memcpy(prev, e, hl);
	}
	gw_idx_stream_dispose(&s);
	if (err < 0) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK, "%s: %s", what, gw_error_message());
		return;
	}
	/* Every offset inside the pack, between its header and its trailer; the first object right after the header. */
	if (gw_idx_stream_init(&s, &idx, GW_IDX_TABLE_OFFSET, 1u << 20) < 0) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK, "%s: %s", what, gw_error_message());
		return;
	}
	for (i = 0; (e = gw_idx_stream_next(&s, &err)); i++) {
		uint64_t off;
		if (gw_idx_decode_offset(&idx, e, &off) < 0) {
			err = -1;
			break;
		}
		if (off < GW_PACK_HEADER_SIZE || off + hl >= pack_size) {
			gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
					    "%s: object %u is at offset %llu, outside the pack (%llu bytes)", what, i,
					    (unsigned long long)off, (unsigned long long)pack_size);
			break;
		}
		if (off < min_off)
			min_off = off;
	}
	gw_idx_stream_dispose(&s);
	if (err < 0)
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK, "%s: %s", what, gw_error_message());
	else if (idx.count && e == NULL && i == idx.count && min_off != GW_PACK_HEADER_SIZE)
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_PACK,
				    "%s: no object starts right after the pack header (the first is at %llu)", what,
				    (unsigned long long)min_off);
}

/* An anonymous file holding a copy of an index, for gw_idx_open. */
static int memfile_open(int *fd)
{
	if ((*fd = memfd_create("gitwal-audit-idx", MFD_CLOEXEC)) < 0)
		return gw_error_set_errno(GW_EIO, "cannot create a memory file for a pack index");
	return 0;
}

static int memfile_write(int fd, const unsigned char *buf, size_t len)
{
	if (gw_write_all(fd, buf, len) < 0)
		return gw_error_set_errno(GW_EIO, "cannot write a pack index to a memory file");
	return 0;
}

/* ---- reading a key ---- */

/*
 * The audit's end of a read chain: its own work on each piece (parsing,
 * copying an index into a memory file). Its failures (out of memory, the
 * memory file) end the audit; the store's are problems to report.
 */
typedef struct {
	gw_sink sink;
	int (*fn)(void *payload, const unsigned char *buf, size_t len);
	void *payload;
	int failed;
} audit_sink;

static int audit_sink_write(gw_sink *sink, const void *buf, size_t len)
{
	audit_sink *a = (audit_sink *)sink;
	int rc = a->fn(a->payload, buf, len);
	a->failed = rc < 0;
	return rc;
}

/*
 * Read all of w->key through check, whose chain ends in `end`. 0 when read
 * (check finished: check->result says what it found); 1 when the key could
 * not be read (reported as a problem); < 0 when the audit's own work failed.
 */
static int read_key(gw_store *store, const where *w, gw_check_filter *check, audit_sink *end)
{
	int rc = gw_store_pump(store, w->key, 0, GW_STORE_TO_END, &check->sink);
	if (rc < 0 && end->failed)
		return rc;
	if (rc < 0) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key,
				    rc == GW_ENOTFOUND ? GW_AUDIT_MISSING : GW_AUDIT_UNREADABLE, "%s", gw_error_message());
		return 1;
	}
	gw_check_filter_finish(check);
	gw_error_clear(); /* what the check found is reported by the caller, as an audit problem */
	return 0;
}

/* ---- full backups ---- */

static int full_bundle_chunk(void *payload, const unsigned char *buf, size_t len)
{
	return bundle_feed(payload, buf, len);
}

static int idx_chunk(void *payload, const unsigned char *buf, size_t len)
{
	return memfile_write(*(int *)payload, buf, len);
}

/* A part of a full backup read whole: 1 when its size and SHA-256 are the manifest's, else reported. */
static int part_matches(const gw_check_filter *check, const gw_manifest_part *part, const where *w)
{
	if (check->result == GW_CHECK_SIZE) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_SIZE,
				    "read %llu bytes, the manifest says %llu", (unsigned long long)check->bytes,
				    (unsigned long long)part->size);
		return 0;
	}
	if (check->result == GW_CHECK_DIGEST) {
		gw_audit_report_add(w->report, w->rel, w->lsn, w->key, GW_AUDIT_CHECKSUM,
				    "content has SHA-256 %s, the manifest records %s", check->hex, part->sha256);
		return 0;
	}
	return 1;
}

/* A check of part that reads every byte (the audit reports the size it finds) on its way into end. */
static int part_check(gw_check_filter *check, const gw_manifest_part *part, audit_sink *end)
{
	int rc = gw_check_filter_init(check, GW_HASH_SHA256, &end->sink, part->key, "its manifest", part->size,
				      part->sha256);
	check->lenient = 1;
	return rc;
}

int gw_audit_verify_full(gw_store *store, const char *rel, const gw_manifest *m, gw_audit_report *report,
			 uint64_t *bytes)
{
	bundle_check b;
	int idx_fd = -1;
	audit_sink idx_end = {{audit_sink_write}, idx_chunk, &idx_fd, 0};
	audit_sink bundle_end = {{audit_sink_write}, full_bundle_chunk, &b, 0};
	gw_check_filter idx_check_f, bundle_check_f;
	gw_idx idx;
	where w = {report, rel, m->lsn, m->idx.key};
	uint64_t pack_size = 0;
	int rc, pack_ok = 0, idx_read = 0;

	*bytes = 0;
	memset(&b, 0, sizeof(b));
	memset(&idx_check_f, 0, sizeof(idx_check_f));
	memset(&bundle_check_f, 0, sizeof(bundle_check_f));
	b.pack.hl = m->hash_len;
	if (gw_hash_new(&b.pack.sum, m->hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256) < 0 ||
	    part_check(&idx_check_f, &m->idx, &idx_end) < 0 ||
	    part_check(&bundle_check_f, &m->bundle, &bundle_end) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	/* The idx first: its SHA-256; when it is sound on its own, the pack streams through restore's check. */
	if ((rc = memfile_open(&idx_fd)) < 0)
		goto out;
	if ((rc = read_key(store, &w, &idx_check_f, &idx_end)) < 0)
		goto out;
	*bytes += idx_check_f.bytes;
	if (rc == 0) {
		idx_read = 1;
		if (part_matches(&idx_check_f, &m->idx, &w) && gw_idx_open(&idx, idx_fd, w.key, m->hash_len, 1) == 0 &&
		    gw_idx_verify(&idx, NULL, 0, NULL) == 0) {
			b.idx = &idx;
			b.bundle_size = m->bundle.size;
		}
		gw_error_clear();
	}
	/* The bundle: SHA-256 of all of it, its header against the manifest, its pack. */
	w.key = m->bundle.key;
	if ((rc = read_key(store, &w, &bundle_check_f, &bundle_end)) < 0)
		goto out;
	*bytes += bundle_check_f.bytes;
	if (rc == 0) {
		part_matches(&bundle_check_f, &m->bundle, &w);
		if (!b.in_pack) {
			gw_audit_report_add(report, rel, m->lsn, w.key, GW_AUDIT_PACK,
					    "bundle: the header does not end (no empty line%s)",
					    b.too_long ? " in its first 64 MiB" : "");
		} else {
			size_t elen;
			char *expect = expected_full_header(m, &elen);
			if (!expect) {
				rc = gw_error_set(GW_ERROR, "out of memory");
				goto out;
			}
			if (b.header_len != m->pack_offset)
				gw_audit_report_add(report, rel, m->lsn, w.key, GW_AUDIT_PACK,
						    "bundle: the header is %zu bytes, the manifest's pack_offset is %llu",
						    b.header_len, (unsigned long long)m->pack_offset);
			else if (elen != b.header_len || memcmp(expect, b.header, elen) != 0)
				gw_audit_report_add(report, rel, m->lsn, w.key, GW_AUDIT_PACK,
						    "bundle: the header's refs differ from the manifest's refs and HEAD");
			free(expect);
			pack_size = b.pack.bytes;
			pack_ok = pack_finish(&b.pack, &w, "bundle", m->objects, m->pack_checksum);
			restore_check_finish(&b, &w, pack_ok);
		}
	}
	/* The idx, held against the pack. */
	w.key = m->idx.key;
	if (idx_read) {
		unsigned char want[GW_HASH_MAX];
		/* Without a sound pack, compare with the checksum the manifest names. */
		const unsigned char *trailer = pack_ok ? b.pack.tail : NULL;
		if (!pack_ok && gw_hex_decode(want, m->pack_checksum, m->hash_len) == 0)
			trailer = want;
		if (!pack_size)
			pack_size = m->bundle.size > m->pack_offset ? m->bundle.size - m->pack_offset : 0;
		idx_check(idx_fd, &w, "idx", m->hash_len, m->objects, trailer, pack_size);
	}
	rc = 0;
out:
	gw_pack_check_free(b.pc);
	free(b.pc_error);
	if (idx_fd >= 0)
		close(idx_fd);
	gw_check_filter_dispose(&idx_check_f);
	gw_check_filter_dispose(&bundle_check_f);
	gw_hash_free(b.pack.sum);
	free(b.header);
	return rc;
}

/* ---- segments ---- */

typedef struct {
	uint64_t pos, size;
	uint64_t bundle_start, idx_start, trailer_start; /* known once the prefix is read */
	unsigned char prefix[GW_SEGMENT_PREFIX_SIZE];
	uint64_t bundle_len, idx_len;
	int layout_known;
	bundle_check b;
	int idx_fd;
} segment_state;

static int segment_chunk(void *payload, const unsigned char *buf, size_t len)
{
	segment_state *s = payload;
	uint64_t start = s->pos, end = s->pos + len;
	int rc;
	if (start < GW_SEGMENT_PREFIX_SIZE) {
		size_t n = (size_t)((end < GW_SEGMENT_PREFIX_SIZE ? end : GW_SEGMENT_PREFIX_SIZE) - start);
		memcpy(s->prefix + start, buf, n);
		if (start + n == GW_SEGMENT_PREFIX_SIZE) {
			/* Lengths come from storage: compare without overflowing. */
			s->bundle_start = GW_SEGMENT_PREFIX_SIZE + (uint64_t)gw_segment_prefix_header_length(s->prefix);
			s->layout_known = s->bundle_start <= s->trailer_start &&
					  s->bundle_len <= s->trailer_start - s->bundle_start &&
					  s->idx_len == s->trailer_start - s->bundle_start - s->bundle_len;
			s->idx_start = s->layout_known ? s->bundle_start + s->bundle_len : 0;
		}
	}
	if (s->layout_known) {
		/* The bundle's and the index's byte ranges, clipped to this chunk. */
		uint64_t a = start > s->bundle_start ? start : s->bundle_start;
		uint64_t z = end < s->idx_start ? end : s->idx_start;
		if (a < z && (rc = bundle_feed(&s->b, buf + (a - start), (size_t)(z - a))) < 0)
			return rc;
		a = start > s->idx_start ? start : s->idx_start;
		z = end < s->trailer_start ? end : s->trailer_start;
		if (a < z && (rc = memfile_write(s->idx_fd, buf + (a - start), (size_t)(z - a))) < 0)
			return rc;
	}
	s->pos = end;
	return 0;
}

int gw_audit_verify_segment(gw_store *store, const char *rel, uint64_t lsn, const char *key, uint64_t size,
			    gw_audit_report *report, uint64_t *bytes)
{
	segment_state s;
	audit_sink end = {{audit_sink_write}, segment_chunk, &s, 0};
	gw_check_filter check;
	gw_slice_filter keep; /* the trailer, at the end */
	gw_segment_header h;
	gw_idx sidx;
	unsigned char *ibuf = NULL, meta_trailer[GW_SEGMENT_TRAILER_SIZE];
	const unsigned char *trailer;
	where w = {report, rel, lsn, key};
	int rc, pack_ok = 0;

	*bytes = 0;
	memset(&s, 0, sizeof(s));
	memset(&check, 0, sizeof(check));
	s.idx_fd = -1;
	/* The header and trailer first: the trailer gives the bundle's and the index's lengths. */
	if (gw_segment_read_meta(store, key, size, &h, meta_trailer) < 0) {
		gw_audit_report_add(report, rel, lsn, key, GW_AUDIT_CORRUPT, "%s", gw_error_message());
		return 0;
	}
	s.size = size;
	s.trailer_start = size - GW_SEGMENT_TRAILER_SIZE;
	gw_segment_trailer_lengths(meta_trailer, &s.bundle_len, &s.idx_len);
	/* Its index first (a ranged read before the trailer): when sound on its own, the pack streams through restore's check. */
	if (s.idx_len && s.idx_len <= SEGMENT_IDX_CHECK_MAX && s.idx_len <= s.trailer_start && (ibuf = malloc(s.idx_len)) &&
	    gw_store_read_range(store, key, s.trailer_start - s.idx_len, (size_t)s.idx_len, ibuf) == 0 &&
	    gw_idx_open_buffer(&sidx, ibuf, (size_t)s.idx_len, key, h.hash_len, 1) == 0 &&
	    gw_idx_verify(&sidx, NULL, 0, NULL) == 0) {
		s.b.idx = &sidx;
		s.b.bundle_size = s.bundle_len;
	}
	gw_error_clear();
	/* Every byte read (the size found is reported); the digest covers everything before its own 32 bytes. */
	gw_slice_filter_init(&keep, &end.sink, 0, GW_SLICE_END);
	s.b.pack.hl = h.hash_len; /* the header's object_format (DESIGN.md 10.1) */
	if (gw_hash_new(&s.b.pack.sum, h.hash_len == 20 ? GW_HASH_SHA1 : GW_HASH_SHA256) < 0 ||
	    gw_check_filter_init(&check, GW_HASH_SHA256, &keep.sink, key, "the listing", size, NULL) < 0) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	check.lenient = 1;
	check.covered = size - 32;
	if ((rc = memfile_open(&s.idx_fd)) < 0 || (rc = read_key(store, &w, &check, &end)) < 0)
		goto out;
	*bytes = check.bytes;
	if (rc == 1) {
		rc = 0;
		goto out;
	}
	if (check.result == GW_CHECK_SIZE) {
		gw_audit_report_add(report, rel, lsn, key, GW_AUDIT_SIZE, "read %llu bytes, the listing said %llu",
				    (unsigned long long)check.bytes, (unsigned long long)size);
		goto out;
	}
	trailer = gw_slice_filter_tail(&keep, GW_SEGMENT_TRAILER_SIZE);
	if (memcmp(check.raw, GW_SEGMENT_TRAILER_DIGEST(trailer), 32) != 0) {
		char b[65];
		gw_hex_encode(b, GW_SEGMENT_TRAILER_DIGEST(trailer), 32);
		gw_audit_report_add(report, rel, lsn, key, GW_AUDIT_CHECKSUM,
				    "content has SHA-256 %s, the segment's trailer records %s", check.hex, b);
	}
	if (!s.layout_known) {
		gw_audit_report_add(report, rel, lsn, key, GW_AUDIT_CORRUPT,
				    "header (%llu bytes), bundle (%llu) and index (%llu) do not add up to the segment's "
				    "size (%llu)",
				    (unsigned long long)(s.bundle_start - GW_SEGMENT_PREFIX_SIZE),
				    (unsigned long long)s.bundle_len, (unsigned long long)s.idx_len,
				    (unsigned long long)size);
		goto out;
	}
	if (s.bundle_len) {
		if (!s.b.in_pack)
			gw_audit_report_add(report, rel, lsn, key, GW_AUDIT_PACK, "bundle: the header does not end");
		else if (!segment_header_ok(&s.b, h.hash_len))
			gw_audit_report_add(report, rel, lsn, key, GW_AUDIT_PACK, "bundle: malformed header");
		else
			pack_ok = pack_finish(&s.b.pack, &w, "bundle", h.objects, NULL);
		if (s.b.in_pack)
			restore_check_finish(&s.b, &w, pack_ok);
	} else if (h.objects) {
		gw_audit_report_add(report, rel, lsn, key, GW_AUDIT_PACK,
				    "the header counts %llu objects but the segment has no bundle",
				    (unsigned long long)h.objects);
	}
	if (s.idx_len)
		idx_check(s.idx_fd, &w, "idx", h.hash_len, h.objects, pack_ok ? s.b.pack.tail : NULL, s.b.pack.bytes);
	else if (h.objects)
		gw_audit_report_add(report, rel, lsn, key, GW_AUDIT_PACK,
				    "the pack holds %llu objects but the segment has no pack index",
				    (unsigned long long)h.objects);
out:
	gw_segment_header_dispose(&h);
	gw_pack_check_free(s.b.pc);
	free(s.b.pc_error);
	free(ibuf);
	if (s.idx_fd >= 0)
		close(s.idx_fd);
	gw_check_filter_dispose(&check);
	gw_hash_free(s.b.pack.sum);
	free(s.b.header);
	return rc;
}
