/*
 * gitwal's own read-only Git object database (src/odb/, DESIGN.md 17), in
 * the manner of libgit2's git_odb: objects are looked up by id in a
 * repository's packs (.idx v2, SHA-1 or SHA-256) and loose objects, and
 * optionally in the repositories its objects/info/alternates names.
 *
 * Why gitwal has its own: libgit2 1.5 (Debian 12) cannot open a SHA-256
 * repository at all. Everything read is untrusted (a live repository that
 * git may be writing): every parser is bounds-checked and a damaged idx,
 * pack, loose object or delta gives GW_ECORRUPT naming the object and file.
 * Objects are read whole (as libgit2 does); packs never are.
 *
 * A gw_odb is used by one thread at a time.
 */
#ifndef GITWAL_ODB_H
#define GITWAL_ODB_H

#include <stddef.h>
#include <stdint.h>

#include "gitwal/io.h"

/* An object id; len is the repository's hash size: 20 (SHA-1) or 32 (SHA-256). */
typedef struct gw_oid {
	unsigned char id[GW_HASH_MAX];
	size_t len;
} gw_oid;

void gw_oid_from_raw(gw_oid *oid, const unsigned char *raw, size_t len);
/* Exactly 2*len hex digits (either case), then the end of hex; GW_EINVALID naming it otherwise. */
int gw_oid_from_hex(gw_oid *oid, const char *hex, size_t len);
/* Lowercase hex into out (GW_HEX_MAX bytes); returns out. */
char *gw_oid_to_hex(char *out, const gw_oid *oid);
int gw_oid_equal(const gw_oid *a, const gw_oid *b);

/* Object types, numbered as Git's pack format numbers them. */
typedef enum {
	GW_OBJECT_INVALID = 0,
	GW_OBJECT_COMMIT = 1,
	GW_OBJECT_TREE = 2,
	GW_OBJECT_BLOB = 3,
	GW_OBJECT_TAG = 4,
} gw_object_t;

/* "commit", "tree", "blob", "tag"; NULL for anything else. */
const char *gw_object_type_name(gw_object_t type);

/*
 * The object format of the repository at repo_path, from its config
 * (core.repositoryformatversion and extensions.objectformat, read as git
 * does): *hash_len 20 (sha1, also with no config) or 32 (sha256).
 * GW_EUNSUPPORTED for another format or objectformat in a version-0
 * repository (git refuses both); `label` names the repository in messages.
 */
int gw_repo_object_format(const char *repo_path, const char *label, size_t *hash_len);

typedef struct gw_odb gw_odb;

typedef struct gw_odb_options {
	const char *label;        /* names the repository in messages (default: the path) */
	size_t hash_len;          /* 20 or 32; 0: from the repository's config */
	int alternates;           /* follow objects/info/alternates (and theirs, 5 deep) */
	const char *root;         /* with alternates: every one must resolve inside this directory */
	int no_verify;            /* do not re-hash objects read whole (as libgit2's strict verification does) */
	size_t cache_bytes;       /* delta-base cache (default 16 MiB); a read window cache of 8 MiB besides */
	uint64_t max_object_size; /* larger objects are refused as corrupt (0: no limit but the data's own) */
} gw_odb_options;

/*
 * Open the object database of a repository (path holds objects/) or of an
 * objects directory itself (the format then comes from its parent's
 * config). opts may be NULL (defaults: format from config, no alternates).
 * An alternate that does not exist, leaves opts->root, loops back into the
 * chain or nests too deep is an error naming it (GW_EINVALID).
 */
int gw_odb_open(gw_odb **out, const char *path, const gw_odb_options *opts);
void gw_odb_free(gw_odb *odb);
size_t gw_odb_hash_len(const gw_odb *odb);
/*
 * The objects directories read, resolved (realpath): 0 is the repository's
 * own, then the alternates in the order they were reached; NULL past the end.
 */
const char *gw_odb_source_dir(const gw_odb *odb, size_t i);

/*
 * Read an object whole: *data is malloc'd (*len bytes plus a NUL the
 * length does not count; the caller frees it). GW_ENOTFOUND when absent
 * (after looking again for packs written since the last look: git may be
 * writing the repository), GW_ECORRUPT naming the object and the file.
 */
int gw_odb_read(gw_odb *odb, const gw_oid *oid, gw_object_t *type, unsigned char **data, size_t *len);
/* Type and size only, inflating no more than headers (a delta: its chain's headers). */
int gw_odb_read_header(gw_odb *odb, const gw_oid *oid, gw_object_t *type, uint64_t *size);
/* 1 present, 0 absent, <0 on error. */
int gw_odb_exists(gw_odb *odb, const gw_oid *oid);

/*
 * Parsers of the objects that reach others, for walks: only what is needed
 * to follow links. `id` names the object in messages (GW_ECORRUPT).
 */
typedef struct gw_commit_links {
	gw_oid tree;
	gw_oid *parents; /* nparents, malloc'd (NULL when none) */
	size_t nparents;
} gw_commit_links;
int gw_commit_parse(gw_commit_links *c, const unsigned char *data, size_t len, const gw_oid *id);
void gw_commit_links_dispose(gw_commit_links *c);

/* A tag's target ("object" line) and its type ("type" line). */
int gw_tag_parse(gw_oid *target, gw_object_t *target_type, const unsigned char *data, size_t len, const gw_oid *id);

typedef struct gw_tree_entry {
	uint32_t mode;    /* as written (octal): 040000 tree, 0100644/0100755 blob, 0120000 link, 0160000 commit */
	const char *name; /* into the tree's data, name_len bytes (not NUL-terminated) */
	size_t name_len;
	gw_oid oid;
} gw_tree_entry;
typedef struct gw_tree_iter {
	const unsigned char *p, *end;
	const gw_oid *id;
} gw_tree_iter;
void gw_tree_iter_init(gw_tree_iter *it, const unsigned char *data, size_t len, const gw_oid *id);
/* 1 and *e for the next entry, 0 at the end, GW_ECORRUPT for a malformed one. */
int gw_tree_next(gw_tree_iter *it, gw_tree_entry *e);
/* What an entry's mode says it points to: blob, tree or commit (a submodule: in another repository). */
gw_object_t gw_tree_entry_type(uint32_t mode);

/*
 * One step of a walk: read oid and call cb for each object it links to (a
 * commit's tree, then its parents; a tree's entries, submodules left out:
 * they live elsewhere; a tag's target). `parent` is set for a commit's
 * parent and a tag's target (what a bundle may name as a prerequisite),
 * `blob` when a tree entry says blob. A blob links to nothing. *type (or
 * NULL) gets oid's type. cb returning <0 stops the walk with that code.
 */
typedef int (*gw_odb_link_cb)(void *payload, const unsigned char *oid, int parent, int blob);
int gw_odb_links(gw_odb *odb, const gw_oid *oid, gw_object_t *type, gw_odb_link_cb cb, void *payload);

#endif
