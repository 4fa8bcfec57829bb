/*
 * What the parts of the object reader (src/odb/) share: the database and
 * its sources (the repository's objects directory and its alternates), the
 * packs of each, and the two bounded caches (file windows, delta bases).
 */
#ifndef GITWAL_ODB_INTERNAL_H
#define GITWAL_ODB_INTERNAL_H

#include "gitwal/odb.h"
#include "pack/pack.h"

#include <zlib.h>

/* Longest delta chain followed (git's own packs stay under 4096); a REF_DELTA loop ends here too. */
#define ODB_MAX_DELTA_DEPTH 10000
#define GW_STR_(x) #x
#define GW_STR(x) GW_STR_(x)
#define ODB_WINDOW_SIZE (64u * 1024)
#define ODB_WINDOW_BYTES (8u * 1024 * 1024)
#define ODB_CACHE_BYTES (16u * 1024 * 1024)

typedef struct odb_pack {
	char *path;        /* of the .pack, for messages */
	char *idx_path;
	char *name;        /* pack-XXXX, to recognise it when the directory is listed again */
	int pack_fd, idx_fd;
	uint64_t pack_size; /* object data ends at pack_size - hash_len */
	gw_idx idx;        /* header, fanout and table offsets; reads go through the window cache */
} odb_pack;

typedef struct odb_source {
	char *objects;     /* the objects directory */
	odb_pack **packs;
	size_t npacks, cap;
	size_t last_hit;   /* the pack that held the last object found: looked at first */
} odb_source;

typedef struct odb_window {
	int fd;            /* -1: empty */
	uint64_t start;
	size_t len;
	unsigned char *buf;
} odb_window;

typedef struct odb_cached odb_cached;

struct gw_odb {
	char *label;
	size_t hash_len;
	int verify;
	uint64_t max_object_size;
	int alternates_ignored; /* the repository has alternates and they were not asked for */
	odb_source *sources;
	size_t nsources, sources_cap;
	/* Read windows over .idx and .pack files: direct-mapped by (fd, window number). */
	odb_window *windows;
	size_t nwindows;
	/* Delta bases: by (pack, offset), least recently used evicted beyond cache_bytes. */
	odb_cached **buckets;
	size_t nbuckets;
	odb_cached *lru_head, *lru_tail; /* head: most recent */
	size_t cache_bytes, cache_used, cache_max_entry;
};

/* Where an object is: a pack entry, or a loose file. */
typedef struct odb_loc {
	odb_source *src;
	odb_pack *pack; /* NULL: loose */
	uint64_t offset;
} odb_loc;

/* Bytes [off, off+len) of a file through the window cache. */
int odb_file_read(gw_odb *odb, int fd, uint64_t size, const char *path, uint64_t off, void *buf, size_t len);

/* Open the pack whose index is <dir>/<name>.idx (GW_ENOTFOUND when either file vanished). */
int odb_pack_open(gw_odb *odb, odb_pack **out, const char *dir, const char *name);
void odb_pack_free(gw_odb *odb, odb_pack *p);
/* 1 and *offset when oid is in the pack's index, 0 when not, <0 on error. */
int odb_pack_find(gw_odb *odb, odb_pack *p, const gw_oid *oid, uint64_t *offset);
/* The object at offset, whole (data malloc'd, NUL after len) or its type and size only (data NULL). */
int odb_pack_read(gw_odb *odb, odb_pack *p, uint64_t offset, const gw_oid *oid, gw_object_t *type,
		  unsigned char **data, size_t *len, uint64_t *size);
void odb_cache_clear(gw_odb *odb);

/*
 * Apply a Git delta to base: the result (malloc'd, NUL after it) in *out.
 * GW_ECORRUPT with *why (a static string, no error set: the caller names the
 * object) when the delta is malformed or its result is larger than max (0:
 * any size); GW_ERROR (set) when memory runs out.
 */
int gw_delta_apply(const unsigned char *base, size_t base_len, const unsigned char *delta, size_t delta_len,
		   uint64_t max, unsigned char **out, size_t *out_len, const char **why);
/* The result size a delta announces (its second header field), from its first bytes; NULL or why not. */
const char *gw_delta_result_size(const unsigned char *delta, size_t len, uint64_t *size);

/*
 * A zlib stream inflated from compressed bytes that `fill` hands over a
 * chunk at a time (*n = 0: no more), whatever their source (a pack through
 * the window cache, a loose file). The functions return GW_ECORRUPT with
 * *why (static, no error set: the caller names the object) for a damaged
 * or truncated stream, or the error fill returned.
 */
typedef int (*odb_fill_fn)(void *ctx, const unsigned char **p, size_t *n);
typedef struct odb_inflater {
	z_stream z;
	odb_fill_fn fill;
	void *ctx;
	int ended;
} odb_inflater;
int odb_inflater_init(odb_inflater *f, odb_fill_fn fill, void *ctx);
/* Up to want bytes into out (*got: fewer only when the stream ended). */
int odb_inflate(odb_inflater *f, unsigned char *out, size_t want, size_t *got, const char **why);
/* After the announced size: the stream must end there (strict: with no bytes after it in the last chunk). */
int odb_inflate_end_check(odb_inflater *f, int strict, const char **why);
void odb_inflater_dispose(odb_inflater *f);

/* "type size\0" of a loose object or of hashing: the header length written to out (at least 32 bytes). */
size_t odb_object_header(char *out, gw_object_t type, uint64_t size);
/* Whether data hashes to oid (Git's hash of "type size\0" + data). */
int odb_hash_matches(size_t hash_len, gw_object_t type, const unsigned char *data, size_t len, const gw_oid *oid);
/* GW_ECORRUPT: "repository R: object X (file, offset O): what" (offset UINT64_MAX: a loose file, none). */
int odb_corrupt(gw_odb *odb, const gw_oid *oid, const char *file, uint64_t offset, const char *what);

#endif
