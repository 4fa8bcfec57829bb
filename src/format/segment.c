/*
 * Log segment encoding and decoding (layout in segment.h and DESIGN.md 10.1).
 * The header is JSON (jansson), LZ4-compressed when that saves space: a
 * header is mostly ref names and hex ids, which compress well, while the
 * bundle's pack is already deflated and is stored as is. Decoding treats the
 * bytes as untrusted: lengths are bounded, every field is checked.
 */
#include "gitwal/segment.h"
#include "gitwal/error.h"
#include "gitwal/files.h"
#include "gitwal/repo.h"

#include "format/refname.h"
#include "util/bytes.h"
#include <jansson.h>
#include <lz4.h>
#include <stdlib.h>
#include <string.h>

#define COMPRESS_MIN 512 /* below this the header is stored as is */

static void put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

const char *gw_update_kind_name(gw_update_kind k)
{
	switch (k) {
	case GW_UPDATE_REF:
		return "ref";
	case GW_UPDATE_SYMREF:
		return "symref";
	case GW_UPDATE_CREATED:
		return "created";
	default:
		return "deleted";
	}
}

json_t *gw_update_json(const gw_update *u)
{
	json_t *o = json_pack("{s:s, s:I}", "kind", gw_update_kind_name(u->kind), "time_us", (json_int_t)u->time_us);
	if (u->kind == GW_UPDATE_REF) {
		json_object_set_new(o, "ref", json_string(u->ref));
		json_object_set_new(o, "old", json_string(u->old_oid));
		json_object_set_new(o, "new", json_string(u->new_oid));
	} else if (u->kind == GW_UPDATE_SYMREF) {
		json_object_set_new(o, "ref", json_string(u->ref));
		json_object_set_new(o, "old_target", json_string(u->old_target ? u->old_target : ""));
		json_object_set_new(o, "new_target", json_string(u->new_target ? u->new_target : ""));
	}
	return o;
}

int gw_segment_header_encode(const gw_segment_header *h, unsigned char **out, size_t *len)
{
	json_t *root, *updates = json_array();
	char *text;
	size_t raw, i, stored;
	unsigned char *buf;
	uint32_t flags = 0;

	for (i = 0; i < h->nupdates; i++)
		json_array_append_new(updates, gw_update_json(&h->updates[i]));
	root = json_pack("{s:s, s:i, s:s, s:I, s:I, s:s, s:I, s:I, s:o, s:I}", "magic", "gitwal-segment", "version",
			 h->pool.repository ? GW_SEGMENT_VERSION_POOL : GW_SEGMENT_VERSION, "repository", h->repository, "lsn", (json_int_t)h->lsn, "base_lsn",
			 (json_int_t)h->base_lsn, "prev_sha256", h->prev_sha256, "time_first_us",
			 (json_int_t)h->time_first_us, "time_last_us", (json_int_t)h->time_last_us, "updates", updates,
			 "objects", (json_int_t)h->objects);
	if (!root)
		return gw_error_set(GW_ERROR, "cannot encode the segment header of %s", h->repository);
	if (h->full_backup)
		json_object_set_new(root, "full_backup", json_true());
	/* Only for sha256: a sha1 segment's bytes are those of every earlier gitwal. */
	if (h->hash_len == 32)
		json_object_set_new(root, "object_format", json_string("sha256"));
	if (h->files) {
		json_t *files;
		int rc;
		if ((rc = gw_files_to_json(h->files, &files)) < 0) {
			json_decref(root);
			return rc;
		}
		json_object_set_new(root, "files", files);
	}
	if (h->pool.repository) {
		json_t *pool = gw_pool_dep_json(&h->pool);
		if (!pool || json_object_set_new(root, "pool", pool) < 0) {
			json_decref(root);
			return gw_error_set(GW_ERROR, "out of memory");
		}
	}
	if (h->gap)
		json_object_set_new(root, "gap",
				    json_pack("{s:I, s:I}", "from_us", (json_int_t)h->gap_from_us, "to_us",
					      (json_int_t)h->gap_to_us));
	text = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	if (!text)
		return gw_error_set(GW_ERROR, "out of memory");
	raw = strlen(text);
	if (raw > GW_SEGMENT_MAX_HEADER) {
		free(text);
		return gw_error_set(GW_EINVALID, "segment header of %s is too large (%zu bytes)", h->repository, raw);
	}
	if (!(buf = malloc(GW_SEGMENT_PREFIX_SIZE + (size_t)LZ4_compressBound((int)raw) + raw))) {
		free(text);
		return gw_error_set(GW_ERROR, "out of memory");
	}
	stored = raw;
	if (raw >= COMPRESS_MIN) {
		int n = LZ4_compress_default(text, (char *)buf + GW_SEGMENT_PREFIX_SIZE, (int)raw,
					     LZ4_compressBound((int)raw));
		if (n > 0 && (size_t)n < raw - raw / 10) {
			stored = (size_t)n;
			flags |= 1;
		}
	}
	if (!(flags & 1))
		memcpy(buf + GW_SEGMENT_PREFIX_SIZE, text, raw);
	free(text);
	memcpy(buf, GW_SEGMENT_MAGIC, 6);
	put_be16(buf + 6, GW_SEGMENT_VERSION);
	gw_put_be32(buf + 8, flags);
	gw_put_be32(buf + 12, (uint32_t)stored);
	gw_put_be32(buf + 16, (uint32_t)raw);
	*out = buf;
	*len = GW_SEGMENT_PREFIX_SIZE + stored;
	return 0;
}

static int bad(const char *what, const char *field, const char *why)
{
	return gw_error_set(GW_ECORRUPT, "segment %s: header field '%s' %s", what, field, why);
}

/* "" or an object id of the segment's format: hex_len (40 or 64) lowercase hex digits. */
static int is_oid_or_empty(const char *s, size_t hex_len)
{
	size_t n = strlen(s);
	return n == 0 || (n == hex_len && gw_hex_is_lower(s, n));
}

static const char *str_field(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);
	return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v) ? json_string_value(v)
											    : NULL;
}

static int int_field(json_t *o, const char *name, int64_t *out)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = json_integer_value(v);
	return 0;
}

static int parse_update(json_t *o, gw_update *u, size_t hash_len, const char *what)
{
	const char *kind = str_field(o, "kind");
	if (!json_is_object(o) || !kind || int_field(o, "time_us", &u->time_us) < 0)
		return bad(what, "updates", "holds an invalid entry");
	if (!strcmp(kind, "ref")) {
		const char *ref = str_field(o, "ref"), *old = str_field(o, "old"), *nw = str_field(o, "new");
		u->kind = GW_UPDATE_REF;
		if (!ref || gw_ref_invalid(ref, NULL)) /* HEAD too: a detached HEAD has a value */
			return bad(what, "updates.ref", "is not a valid ref name");
		if (!old || !nw || !is_oid_or_empty(old, 2 * hash_len) || !is_oid_or_empty(nw, 2 * hash_len) || (!*old && !*nw))
			return bad(what, "updates.old/new", "is not an object id");
		snprintf(u->old_oid, sizeof(u->old_oid), "%s", old);
		snprintf(u->new_oid, sizeof(u->new_oid), "%s", nw);
		u->ref = strdup(ref);
	} else if (!strcmp(kind, "symref")) {
		const char *ref = str_field(o, "ref"), *ot = str_field(o, "old_target"), *nt = str_field(o, "new_target");
		u->kind = GW_UPDATE_SYMREF;
		/* The rule the writer applied (refname.h), to both targets. */
		if (!ref || !ot || !nt || gw_ref_invalid(ref, *ot ? ot : NULL) || gw_ref_invalid(ref, *nt ? nt : NULL) ||
		    (!*ot && !*nt))
			return bad(what, "updates.symref", "is not a valid symbolic ref change");
		u->ref = strdup(ref);
		u->old_target = strdup(ot);
		u->new_target = strdup(nt);
	} else if (!strcmp(kind, "created")) {
		u->kind = GW_UPDATE_CREATED;
	} else if (!strcmp(kind, "deleted")) {
		u->kind = GW_UPDATE_DELETED;
	} else {
		return bad(what, "updates.kind", "is unknown");
	}
	return 0;
}

int gw_segment_header_decode(gw_segment_header *h, const unsigned char *buf, size_t len, size_t *need,
			     const char *what)
{
	uint32_t flags, stored, raw;
	char *text = NULL;
	json_t *root = NULL, *updates, *v;
	json_error_t jerr;
	const char *s;
	int64_t n, version = 0;
	size_t i;
	int rc = 0;

	memset(h, 0, sizeof(*h));
	if (len < GW_SEGMENT_PREFIX_SIZE) {
		*need = GW_SEGMENT_PREFIX_SIZE;
		return 1;
	}
	if (memcmp(buf, GW_SEGMENT_MAGIC, 6) != 0)
		return gw_error_set(GW_ECORRUPT, "segment %s: bad magic (not a gitwal segment)", what);
	if (((unsigned)buf[6] << 8 | buf[7]) != GW_SEGMENT_VERSION)
		return gw_error_set(GW_EVERSION, "segment %s has format version %u; this gitwal reads version %d", what,
				    (unsigned)buf[6] << 8 | buf[7], GW_SEGMENT_VERSION);
	flags = gw_get_be32(buf + 8);
	stored = gw_get_be32(buf + 12);
	raw = gw_get_be32(buf + 16);
	if (flags & ~1u)
		return gw_error_set(GW_ECORRUPT, "segment %s: unknown flags 0x%x", what, flags);
	if (raw > GW_SEGMENT_MAX_HEADER || stored > GW_SEGMENT_MAX_HEADER || (!(flags & 1) && stored != raw))
		return gw_error_set(GW_ECORRUPT, "segment %s: impossible header length", what);
	*need = GW_SEGMENT_PREFIX_SIZE + stored;
	if (len < *need)
		return 1;
	if (!(text = malloc((size_t)raw + 1)))
		return gw_error_set(GW_ERROR, "out of memory");
	if (flags & 1) {
		int got = LZ4_decompress_safe((const char *)buf + GW_SEGMENT_PREFIX_SIZE, text, (int)stored, (int)raw);
		if (got != (int)raw) {
			rc = gw_error_set(GW_ECORRUPT, "segment %s: compressed header is damaged", what);
			goto out;
		}
	} else {
		memcpy(text, buf + GW_SEGMENT_PREFIX_SIZE, raw);
	}
	if (!(root = json_loadb(text, raw, JSON_REJECT_DUPLICATES, &jerr)) || !json_is_object(root)) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s: header is not valid JSON (%s)", what, jerr.text);
		goto out;
	}
	if (!(s = str_field(root, "magic")) || strcmp(s, "gitwal-segment")) {
		rc = bad(what, "magic", "is wrong");
		goto out;
	}
	if (int_field(root, "version", &n) < 0 || (n != GW_SEGMENT_VERSION && n != GW_SEGMENT_VERSION_POOL)) {
		rc = gw_error_set(GW_EVERSION, "segment %s: header version is not %d or %d (upgrade gitwal)", what,
				  GW_SEGMENT_VERSION, GW_SEGMENT_VERSION_POOL);
		goto out;
	}
	version = n;
	if (!(s = str_field(root, "repository")) || gw_repo_path_check(s) < 0) {
		rc = bad(what, "repository", "is not a safe repository path");
		goto out;
	}
	h->repository = strdup(s);
	if (int_field(root, "lsn", &n) < 0 || n == 0) {
		rc = bad(what, "lsn", "is not a positive integer");
		goto out;
	}
	h->lsn = (uint64_t)n;
	if ((v = json_object_get(root, "full_backup"))) {
		if (!json_is_true(v)) {
			rc = bad(what, "full_backup", "is not true");
			goto out;
		}
		h->full_backup = 1;
	}
	/* A full backup's record starts its own generation and links to nothing. */
	if (int_field(root, "base_lsn", &n) < 0 || (h->full_backup ? (uint64_t)n != h->lsn : (uint64_t)n >= h->lsn)) {
		rc = bad(what, "base_lsn", h->full_backup ? "is not the LSN of the full backup" : "is not below the LSN");
		goto out;
	}
	h->base_lsn = (uint64_t)n;
	if (!(s = str_field(root, "prev_sha256")) || strlen(s) != (h->full_backup ? 0 : 64)) {
		rc = bad(what, "prev_sha256", h->full_backup ? "is not empty" : "is not a SHA-256");
		goto out;
	}
	if (!gw_hex_is_lower(s, strlen(s))) {
		rc = bad(what, "prev_sha256", "is not lowercase hex");
		goto out;
	}
	memcpy(h->prev_sha256, s, strlen(s) + 1); /* 64 hex digits, or empty for a full backup's record */
	if (int_field(root, "time_first_us", &h->time_first_us) < 0 ||
	    int_field(root, "time_last_us", &h->time_last_us) < 0 || h->time_last_us < h->time_first_us) {
		rc = bad(what, "time_first_us/time_last_us", "is not a time range");
		goto out;
	}
	if (int_field(root, "objects", &n) < 0) {
		rc = bad(what, "objects", "is not a count");
		goto out;
	}
	h->objects = (uint64_t)n;
	/* The ids' format: absent is sha1 (every segment before sha256 support), else named. */
	h->hash_len = 20;
	if ((v = json_object_get(root, "object_format"))) {
		if (!(s = str_field(root, "object_format")) || (strcmp(s, "sha1") && strcmp(s, "sha256"))) {
			rc = gw_error_set(GW_EVERSION, "segment %s: object format '%s' is not supported", what,
					  s ? s : "(not a string)");
			goto out;
		}
		h->hash_len = strcmp(s, "sha1") ? 32 : 20;
	}
	if ((v = json_object_get(root, "gap"))) {
		if (!json_is_object(v) || int_field(v, "from_us", &h->gap_from_us) < 0 ||
		    int_field(v, "to_us", &h->gap_to_us) < 0) {
			rc = bad(what, "gap", "is not a time range");
			goto out;
		}
		h->gap = 1;
	}
	if ((v = json_object_get(root, "files"))) {
		/* The whole set, checked as a manifest's is (its paths, sizes, digests and bounds). */
		char *src = NULL;
		if (asprintf(&src, "segment %s", what) < 0 || !(h->files = calloc(1, sizeof(*h->files)))) {
			free(src);
			rc = gw_error_set(GW_ERROR, "out of memory");
			goto out;
		}
		rc = gw_files_from_json(h->files, v, src);
		free(src);
		if (rc < 0)
			goto out;
	}
	/* A pooled member's segment and no other is version 2: either without the other is damage (as a manifest). */
	v = json_object_get(root, "pool");
	if ((version == GW_SEGMENT_VERSION_POOL) != (v != NULL)) {
		rc = gw_error_set(GW_ECORRUPT, "segment %s: version %lld %s field 'pool'", what, (long long)version,
				  v ? "with" : "without");
		goto out;
	}
	if (v && (rc = gw_pool_dep_parse(&h->pool, v, h->repository, what)) < 0)
		goto out;
	updates = json_object_get(root, "updates");
	if (!json_is_array(updates)) {
		rc = bad(what, "updates", "is not an array");
		goto out;
	}
	h->nupdates = json_array_size(updates);
	if (h->nupdates && !(h->updates = calloc(h->nupdates, sizeof(*h->updates)))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	json_array_foreach(updates, i, v)
	{
		if ((rc = parse_update(v, &h->updates[i], h->hash_len, what)) < 0)
			goto out;
		if (h->updates[i].time_us < h->time_first_us || h->updates[i].time_us > h->time_last_us ||
		    (i && h->updates[i].time_us < h->updates[i - 1].time_us)) {
			rc = bad(what, "updates.time_us", "is out of order or outside the segment's time range");
			goto out;
		}
	}
out:
	json_decref(root);
	free(text);
	if (rc < 0)
		gw_segment_header_dispose(h);
	return rc;
}

void gw_segment_header_dispose(gw_segment_header *h)
{
	gw_updates_free(h->updates, h->nupdates);
	free(h->repository);
	if (h->files)
		gw_files_dispose(h->files);
	free(h->files);
	gw_pool_dep_dispose(&h->pool);
	memset(h, 0, sizeof(*h));
}

void gw_segment_trailer_encode(unsigned char out[GW_SEGMENT_TRAILER_SIZE], uint64_t bundle_len, uint64_t idx_len,
			       gw_hash *running)
{
	gw_put_be64(out, bundle_len);
	gw_put_be64(out + 8, idx_len);
	gw_hash_update(running, out, 16);
	gw_hash_final(running, out + 16);
}

void gw_segment_trailer_lengths(const unsigned char trailer[GW_SEGMENT_TRAILER_SIZE], uint64_t *bundle_len,
				uint64_t *idx_len)
{
	*bundle_len = gw_get_be64(trailer);
	*idx_len = gw_get_be64(trailer + 8);
}

void gw_updates_free(gw_update *updates, size_t n)
{
	size_t i;
	for (i = 0; i < n; i++) {
		free(updates[i].ref);
		free(updates[i].old_target);
		free(updates[i].new_target);
	}
	free(updates);
}

uint32_t gw_segment_prefix_header_length(const unsigned char prefix[GW_SEGMENT_PREFIX_SIZE])
{
	return gw_get_be32(prefix + 12);
}
