/*
 * Full-backup manifests: JSON through jansson, validated field by field on
 * the way in because the store is untrusted (a repository path may not
 * escape the target, a ref name must be a valid Git ref name, every digest
 * must be hex of the right length).
 */
#include "gitwal/manifest.h"
#include "gitwal/error.h"
#include "gitwal/repo.h"
#include "gitwal/store.h"
#include "gitwal/index.h"
#include "gitwal/io.h"

#include "format/refname.h"
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *ref_json(const gw_manifest_ref *r)
{
	json_t *o = json_object();
	json_object_set_new(o, "name", json_string(r->name));
	if (r->oid[0])
		json_object_set_new(o, "oid", json_string(r->oid));
	if (r->symbolic)
		json_object_set_new(o, "symbolic", json_string(r->symbolic));
	return o;
}

static json_t *part_json(const gw_manifest_part *p)
{
	return json_pack("{s:s, s:I, s:s}", "key", p->key, "size", (json_int_t)p->size, "sha256", p->sha256);
}

int gw_manifest_write(const gw_manifest *m, char **out, size_t *len)
{
	json_t *root, *refs, *bundle;
	char when[40];
	size_t i;

	gw_time_format(m->time_us, when, sizeof(when));
	refs = json_array();
	for (i = 0; i < m->nrefs; i++)
		json_array_append_new(refs, ref_json(&m->refs[i]));
	bundle = part_json(&m->bundle);
	json_object_set_new(bundle, "pack_offset", json_integer((json_int_t)m->pack_offset));
	json_object_set_new(bundle, "objects", json_integer((json_int_t)m->objects));
	json_object_set_new(bundle, "pack_checksum", json_string(m->pack_checksum));
	root = json_pack("{s:s, s:i, s:s, s:I, s:I, s:s, s:s, s:s, s:o, s:o, s:{s:o, s:o}}", "magic",
			 GW_MANIFEST_MAGIC, "version", m->pool.repository ? GW_MANIFEST_VERSION_POOL : GW_MANIFEST_VERSION, "repository", m->repository, "lsn",
			 (json_int_t)m->lsn, "time_us", (json_int_t)m->time_us, "time", when, "object_format",
			 m->object_format, "tool", m->tool ? m->tool : "gitwal", "head", ref_json(&m->head), "refs",
			 refs, "parts", "bundle", bundle, "idx", part_json(&m->idx));
	if (!root)
		return gw_error_set(GW_ERROR, "cannot build the manifest of %s", m->repository);
	if (m->pool.repository) {
		json_t *pool = gw_pool_dep_json(&m->pool);
		if (!pool || json_object_set_new(root, "pool", pool) < 0) {
			json_decref(root);
			return gw_error_set(GW_ERROR, "out of memory");
		}
	}
	if (m->files.n) {
		json_t *files;
		int rc;
		if ((rc = gw_files_to_json(&m->files, &files)) < 0) {
			json_decref(root);
			return rc;
		}
		json_object_set_new(root, "files", files);
	}
	*out = json_dumps(root, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(root);
	if (!*out)
		return gw_error_set(GW_ERROR, "out of memory");
	*len = strlen(*out);
	return 0;
}

typedef struct {
	const char *what;
	size_t hex_len; /* an object id's hex digits: 40 (sha1) or 64 (sha256), from object_format */
} parse_ctx;

static int bad(const parse_ctx *p, const char *field, const char *why)
{
	return gw_error_set(GW_ECORRUPT, "manifest %s: field '%s' %s", p->what, field, why);
}

static int get_string(const parse_ctx *p, json_t *obj, const char *field, const char **out, int required)
{
	json_t *v = json_object_get(obj, field);
	*out = NULL;
	if (!v)
		return required ? bad(p, field, "is missing") : 0;
	if (!json_is_string(v))
		return bad(p, field, "is not a string");
	*out = json_string_value(v);
	if (strlen(*out) != json_string_length(v))
		return bad(p, field, "contains a NUL byte");
	return 0;
}

static int get_uint(const parse_ctx *p, json_t *obj, const char *field, uint64_t *out)
{
	json_t *v = json_object_get(obj, field);
	/* Defined on every return: callers (and compilers tracing them) never see an unset value. */
	*out = 0;
	if (!v)
		return bad(p, field, "is missing");
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return bad(p, field, "is not a non-negative integer");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}


static int parse_ref(const parse_ctx *p, json_t *obj, gw_manifest_ref *r, int is_head)
{
	const char *name, *oid, *sym, *why;
	int rc;
	if (!json_is_object(obj))
		return is_head ? bad(p, "head", "is missing or not an object") : bad(p, "refs", "holds a non-object");
	if ((rc = get_string(p, obj, "name", &name, 1)) < 0 || (rc = get_string(p, obj, "oid", &oid, 0)) < 0 ||
	    (rc = get_string(p, obj, "symbolic", &sym, 0)) < 0)
		return rc;
	/* The rule the writer applied (refname.h): "head" is HEAD, and no entry of "refs" is. */
	if (is_head != !strcmp(name, "HEAD") || gw_ref_invalid(name, NULL))
		return gw_error_set(GW_ECORRUPT, "manifest %s: invalid ref name '%s'", p->what, name);
	if (oid && (strlen(oid) != p->hex_len || !gw_hex_is_lower(oid, p->hex_len)))
		return gw_error_set(GW_ECORRUPT, "manifest %s: ref %s has an invalid object id", p->what, name);
	if (sym && (why = gw_ref_invalid(name, sym)))
		return gw_error_set(GW_ECORRUPT, "manifest %s: ref %s has an invalid symbolic target '%s' (it %s)",
				    p->what, name, sym, why);
	if (!oid && !sym && !is_head)
		return gw_error_set(GW_ECORRUPT, "manifest %s: ref %s has neither an object id nor a target", p->what,
				    name);
	r->name = strdup(name);
	snprintf(r->oid, sizeof(r->oid), "%s", oid ? oid : "");
	r->symbolic = sym ? strdup(sym) : NULL;
	if (!r->name || (sym && !r->symbolic))
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

static int parse_part(const parse_ctx *p, json_t *parts, const char *name, gw_manifest_part *part)
{
	json_t *obj = json_object_get(parts, name);
	const char *key, *sha;
	int rc;
	if (!json_is_object(obj))
		return bad(p, name, "is missing or not an object");
	if ((rc = get_string(p, obj, "key", &key, 1)) < 0 || (rc = get_uint(p, obj, "size", &part->size)) < 0 ||
	    (rc = get_string(p, obj, "sha256", &sha, 1)) < 0)
		return rc;
	if (gw_store_key_check(key) < 0)
		return gw_error_set(GW_ECORRUPT, "manifest %s: part %s has an invalid key", p->what, name);
	if (strlen(sha) != 64 || !gw_hex_is_lower(sha, 64))
		return bad(p, "sha256", "is not 64 lowercase hex digits");
	memcpy(part->sha256, sha, 65);
	if (!(part->key = strdup(key)))
		return gw_error_set(GW_ERROR, "out of memory");
	return 0;
}

int gw_manifest_parse(gw_manifest *m, const char *buf, size_t len, const char *what)
{
	parse_ctx p = {what, 40};
	json_error_t jerr;
	json_t *root, *v, *refs, *parts, *bundle;
	const char *s;
	uint64_t version, format;
	size_t i;
	int rc = 0;

	memset(m, 0, sizeof(*m));
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return gw_error_set(GW_ECORRUPT, "manifest %s is not valid JSON (line %d: %s)", what, jerr.line,
				    jerr.text);
	if (!json_is_object(root)) {
		rc = gw_error_set(GW_ECORRUPT, "manifest %s is not a JSON object", what);
		goto out;
	}
	if ((rc = get_string(&p, root, "magic", &s, 1)) < 0)
		goto out;
	if (strcmp(s, GW_MANIFEST_MAGIC) != 0) {
		rc = gw_error_set(GW_ECORRUPT, "manifest %s: bad magic '%s' (expected %s)", what, s, GW_MANIFEST_MAGIC);
		goto out;
	}
	if ((rc = get_uint(&p, root, "version", &version)) < 0)
		goto out;
	if (version != GW_MANIFEST_VERSION && version != GW_MANIFEST_VERSION_POOL) {
		rc = gw_error_set(GW_EVERSION,
				  "manifest %s has format version %llu; this gitwal reads versions %d and %d (upgrade gitwal)",
				  what, (unsigned long long)version, GW_MANIFEST_VERSION, GW_MANIFEST_VERSION_POOL);
		goto out;
	}
	format = version; /* version is reused below */
	if ((rc = get_string(&p, root, "repository", &s, 1)) < 0)
		goto out;
	if (gw_repo_path_check(s) < 0) {
		rc = gw_error_set(GW_ECORRUPT, "manifest %s: unsafe repository path '%s'", what, s);
		goto out;
	}
	if (!(m->repository = strdup(s))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	if ((rc = get_uint(&p, root, "lsn", &m->lsn)) < 0 || (rc = get_uint(&p, root, "time_us", &version)) < 0)
		goto out;
	m->time_us = (int64_t)version;
	if ((rc = get_string(&p, root, "object_format", &s, 1)) < 0)
		goto out;
	/* The ids' length follows the format: the ref oids and pack_checksum below are checked against it. */
	if (strcmp(s, "sha1") != 0 && strcmp(s, "sha256") != 0) {
		rc = gw_error_set(GW_EVERSION, "manifest %s: object format '%s' is not supported", what, s);
		goto out;
	}
	m->hash_len = strcmp(s, "sha1") ? 32 : 20;
	p.hex_len = 2 * m->hash_len;
	snprintf(m->object_format, sizeof(m->object_format), "%s", s);
	if ((rc = get_string(&p, root, "tool", &s, 0)) < 0)
		goto out;
	m->tool = s ? strdup(s) : NULL;
	if ((rc = parse_ref(&p, json_object_get(root, "head"), &m->head, 1)) < 0)
		goto out;
	refs = json_object_get(root, "refs");
	if (!json_is_array(refs)) {
		rc = bad(&p, "refs", "is missing or not an array");
		goto out;
	}
	m->nrefs = json_array_size(refs);
	if (m->nrefs && !(m->refs = calloc(m->nrefs, sizeof(*m->refs)))) {
		rc = gw_error_set(GW_ERROR, "out of memory");
		goto out;
	}
	json_array_foreach(refs, i, v)
	{
		if ((rc = parse_ref(&p, v, &m->refs[i], 0)) < 0)
			goto out;
		if (i && strcmp(m->refs[i - 1].name, m->refs[i].name) >= 0) {
			rc = gw_error_set(GW_ECORRUPT, "manifest %s: refs are not sorted or repeat at %s", what,
					  m->refs[i].name);
			goto out;
		}
	}
	parts = json_object_get(root, "parts");
	if (!json_is_object(parts)) {
		rc = bad(&p, "parts", "is missing or not an object");
		goto out;
	}
	if ((rc = parse_part(&p, parts, "bundle", &m->bundle)) < 0 || (rc = parse_part(&p, parts, "idx", &m->idx)) < 0)
		goto out;
	bundle = json_object_get(parts, "bundle");
	if ((rc = get_uint(&p, bundle, "pack_offset", &m->pack_offset)) < 0 ||
	    (rc = get_uint(&p, bundle, "objects", &m->objects)) < 0 ||
	    (rc = get_string(&p, bundle, "pack_checksum", &s, 1)) < 0)
		goto out;
	if (strlen(s) != p.hex_len || !gw_hex_is_lower(s, p.hex_len)) {
		rc = bad(&p, "pack_checksum",
			 m->hash_len == 20 ? "is not 40 lowercase hex digits" : "is not 64 lowercase hex digits");
		goto out;
	}
	memcpy(m->pack_checksum, s, p.hex_len + 1);
	if (m->pack_offset >= m->bundle.size || m->bundle.size - m->pack_offset < 32) {
		rc = bad(&p, "pack_offset", "does not fit the bundle size");
		goto out;
	}
	if ((v = json_object_get(root, "files"))) {
		char *src = NULL;
		if (asprintf(&src, "manifest %s", what) < 0) {
			rc = gw_error_set(GW_ERROR, "out of memory");
			goto out;
		}
		rc = gw_files_from_json(&m->files, v, src);
		free(src);
		if (rc < 0)
			goto out;
	}
	/* A pooled member's record and no other is version 2: either without the other is damage. */
	v = json_object_get(root, "pool");
	if ((format == GW_MANIFEST_VERSION_POOL) != (v != NULL)) {
		rc = gw_error_set(GW_ECORRUPT, "manifest %s: version %llu %s field 'pool'", what,
				  (unsigned long long)format, v ? "with" : "without");
		goto out;
	}
	if (v && (rc = gw_pool_dep_parse(&m->pool, v, m->repository, what)) < 0)
		goto out;
out:
	json_decref(root);
	if (rc < 0)
		gw_manifest_dispose(m);
	return rc;
}

static void ref_dispose(gw_manifest_ref *r)
{
	free(r->name);
	free(r->symbolic);
}

void gw_manifest_dispose(gw_manifest *m)
{
	size_t i;
	free(m->repository);
	ref_dispose(&m->head);
	for (i = 0; i < m->nrefs; i++)
		ref_dispose(&m->refs[i]);
	free(m->refs);
	free(m->bundle.key);
	free(m->idx.key);
	free(m->tool);
	gw_files_dispose(&m->files);
	gw_pool_dep_dispose(&m->pool);
	memset(m, 0, sizeof(*m));
}

/* The manifest a full backup record names, checked against the SHA-256 the index recorded. */
int gw_manifest_load(gw_store *store, const gw_full_record *rec, gw_manifest *m)
{
	unsigned char digest[32];
	char hex[65], *text = NULL;
	size_t len;
	int rc;
	if ((rc = gw_store_get(store, rec->manifest_key, GW_MANIFEST_MAX_SIZE, &text, &len)) < 0)
		return rc;
	gw_hash_buffer(GW_HASH_SHA256, text, len, digest);
	gw_hex_encode(hex, digest, 32);
	if (rec->manifest_sha256[0] && strcmp(hex, rec->manifest_sha256) != 0) {
		free(text);
		return gw_error_set(GW_ECORRUPT, "manifest %s is corrupt: its SHA-256 differs from the one recorded",
				    rec->manifest_key);
	}
	rc = gw_manifest_parse(m, text, len, rec->manifest_key);
	free(text);
	if (rc < 0)
		return rc;
	if (strcmp(m->repository, rec->repository) != 0 || m->lsn != rec->lsn) {
		rc = gw_error_set(GW_ECORRUPT, "manifest %s describes %s at LSN %llu, not %s at LSN %llu",
				  rec->manifest_key, m->repository, (unsigned long long)m->lsn, rec->repository,
				  (unsigned long long)rec->lsn);
		gw_manifest_dispose(m);
	}
	return rc;
}
