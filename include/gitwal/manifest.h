/*
 * The full-backup manifest: the commit point of a full backup. Written last;
 * a backup whose manifest is absent does not exist. JSON (jansson), with a
 * magic and a version; the schema is in DESIGN.md 4.3. Parsing treats the input
 * as untrusted: every field is type-, range- and syntax-checked.
 */
#ifndef GITWAL_MANIFEST_H
#define GITWAL_MANIFEST_H

#include <stdint.h>
#include <stddef.h>

#include "format/pool.h"  /* a pooled member's dependency (DESIGN.md 19) */
#include "gitwal/files.h" /* the repository files it carries (DESIGN.md 4.5) */
#include "gitwal/io.h"
#include "gitwal/time.h" /* a manifest's time; most of its readers format it */

#define GW_MANIFEST_MAGIC "gitwal-full-backup"
#define GW_MANIFEST_VERSION 1
/* A pooled member's full backup: version 2 and its "pool" (DESIGN.md 19); old readers refuse it. */
#define GW_MANIFEST_VERSION_POOL 2
#define GW_MANIFEST_MAX_SIZE (256u << 20)

typedef struct gw_manifest_ref {
	char *name;
	char oid[GW_HEX_MAX]; /* hex; empty for a dangling symref */
	char *symbolic;       /* target for a symbolic ref, else NULL */
} gw_manifest_ref;

typedef struct gw_manifest_part {
	char *key;
	uint64_t size;
	char sha256[65];
} gw_manifest_part;

typedef struct gw_manifest {
	char *repository;
	uint64_t lsn;
	int64_t time_us;       /* when the snapshot was taken, microseconds since the epoch */
	char object_format[8]; /* "sha1" or "sha256" */
	size_t hash_len;       /* its ids' bytes, 20 or 32 (set by the parser; the writer uses object_format) */
	gw_manifest_ref head;  /* name "HEAD"; symbolic or detached, oid empty when unborn */
	gw_manifest_ref *refs; /* sorted by name */
	size_t nrefs;
	gw_manifest_part bundle;
	uint64_t pack_offset;  /* where the pack starts inside the bundle */
	uint64_t objects;
	char pack_checksum[GW_HEX_MAX];
	gw_manifest_part idx;
	char *tool;            /* "gitwal 0.1.0" */
	gw_files files;        /* config, description, info/attributes, custom_hooks/; none in older manifests */
	gw_pool_dep pool;      /* a pooled member's pool (version 2); repository NULL when not pooled */
} gw_manifest;

/* Serialise to a malloc'd JSON text. */
int gw_manifest_write(const gw_manifest *m, char **out, size_t *len);
/* Parse and validate; `what` names the source in messages (a key). */
int gw_manifest_parse(gw_manifest *m, const char *buf, size_t len, const char *what);
void gw_manifest_dispose(gw_manifest *m);

/*
 * Read the manifest of the full backup `rec` from the store, check it
 * against the SHA-256 the record holds (when it holds one) and parse it;
 * it must describe rec's repository and LSN (GW_ECORRUPT otherwise).
 */
struct gw_store;
struct gw_full_record;
int gw_manifest_load(struct gw_store *store, const struct gw_full_record *rec, gw_manifest *m);

#endif
