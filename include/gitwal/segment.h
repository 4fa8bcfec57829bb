/*
 * Log segments: what the archiver writes for every change to a repository
 * (DESIGN.md 10.1). A segment holds the ref updates since the
 * previous segment, each with its time, and a Git bundle carrying the
 * objects those updates newly need, with the previous values as
 * prerequisites, so stock git can apply it in an emergency. A header names
 * the repository and LSN and links to the previous record's SHA-256 (a hash
 * chain); a trailer holds the SHA-256 of everything before it.
 *
 * Byte layout:
 *   [0,6)    "GWSEG\0"
 *   [6,8)    uint16_be version (1)
 *   [8,12)   uint32_be flags (bit 0: header JSON is LZ4 block-compressed)
 *   [12,16)  uint32_be H, stored header length
 *   [16,20)  uint32_be raw header length (== H when not compressed)
 *   [20,20+H) header (JSON, see DESIGN.md 10.1)
 *   then B bytes: the bundle (B may be 0: no new objects and no new values)
 *   then I bytes: the pack index (v2) of the bundle's pack (I is 0 when the
 *                 pack has no objects), so restore can join packs without
 *                 re-indexing them
 *   [end-48,end-40) uint64_be B
 *   [end-40,end-32) uint64_be I
 *   [end-32,end)    SHA-256 of every byte before it
 */
#ifndef GITWAL_SEGMENT_H
#define GITWAL_SEGMENT_H

#include <stdint.h>
#include <stddef.h>

#include "format/pool.h" /* a pooled member's dependency (DESIGN.md 19) */
#include "gitwal/io.h"

#define GW_SEGMENT_MAGIC "GWSEG\0"
#define GW_SEGMENT_VERSION 1
/* A pooled member's segment: header version 2 with its "pool" (DESIGN.md 19); the binary prefix stays 1. */
#define GW_SEGMENT_VERSION_POOL 2
#define GW_SEGMENT_PREFIX_SIZE 20
#define GW_SEGMENT_TRAILER_SIZE 48
#define GW_SEGMENT_MAX_HEADER (64u << 20)

typedef enum {
	GW_UPDATE_REF = 1,     /* a ref set, moved or deleted */
	GW_UPDATE_SYMREF,      /* a symbolic ref (HEAD) retargeted */
	GW_UPDATE_CREATED,     /* the repository appeared */
	GW_UPDATE_DELETED,     /* the repository disappeared */
} gw_update_kind;

typedef struct gw_update {
	gw_update_kind kind;
	int64_t time_us;
	char *ref;                 /* REF, SYMREF */
	char old_oid[GW_HEX_MAX];  /* REF: "" when the ref did not exist */
	char new_oid[GW_HEX_MAX];  /* REF: "" when the ref was deleted */
	char *old_target;          /* SYMREF */
	char *new_target;          /* SYMREF */
} gw_update;

typedef struct gw_segment_header {
	char *repository;
	uint64_t lsn;
	/*
	 * 1: not a change but a full backup's log record, its claim on the LSN
	 * (DESIGN.md 3): written before the full backup's parts; base_lsn == lsn,
	 * prev_sha256 "", no updates, no bundle, no index.
	 */
	int full_backup;
	uint64_t base_lsn;       /* the full backup this segment builds on */
	char prev_sha256[65];    /* SHA-256 of the record at lsn-1 (segment file or full manifest); "" for a full backup's record */
	int64_t time_first_us;
	int64_t time_last_us;
	gw_update *updates;
	size_t nupdates;
	uint64_t objects;        /* objects in the bundle's pack */
	int gap;                 /* 1: the archiver could not observe every state before this one */
	int64_t gap_from_us;     /* when gap: states between these times are unknown */
	int64_t gap_to_us;
	/*
	 * Its object ids' length: 20 (sha1; "object_format" absent from the
	 * header, as in every segment before sha256) or 32 ("object_format":
	 * "sha256": 64-hex ids, a v3 bundle, a pack and index of SHA-256). The
	 * encoder treats 0 as 20; the decoder always sets it.
	 */
	size_t hash_len;
	/*
	 * The repository's files (config, description, info/attributes,
	 * custom_hooks/: DESIGN.md 4.5 and 10.1), the whole set, when they
	 * changed since the record before; NULL (no "files" member) when they
	 * did not. Owned by the header once decoded; the encoder only reads it.
	 */
	struct gw_files *files;
	/*
	 * A pooled member's pool (DESIGN.md 19): header "version": 2 and
	 * "pool" exactly when repository is not NULL. Owned by the header once
	 * decoded; the encoder only reads it.
	 */
	gw_pool_dep pool;
} gw_segment_header;

/* Free an array of updates and what each owns. */
void gw_updates_free(gw_update *updates, size_t n);
/* An update's kind as the header names it: "ref", "symref", "created", "deleted". */
const char *gw_update_kind_name(gw_update_kind kind);
/*
 * An update as a JSON object (jansson's json_t, a new reference): the
 * header's form, which `gitwal log --json` prints too: {"kind", "time_us"},
 * and "ref", "old", "new" for a ref, "ref", "old_target", "new_target" for a
 * symbolic ref.
 */
struct json_t;
struct json_t *gw_update_json(const gw_update *u);

/* Encode prefix + header into a malloc'd buffer (the start of the segment). */
int gw_segment_header_encode(const gw_segment_header *h, unsigned char **out, size_t *len);
/*
 * Parse the start of a segment. `buf` holds at least the prefix; *need gets
 * the number of bytes the prefix and header take (call again with that many
 * when len is smaller: returns 1 then). 0 when parsed, <0 when invalid.
 */
int gw_segment_header_decode(gw_segment_header *h, const unsigned char *buf, size_t len, size_t *need,
			     const char *what);
void gw_segment_header_dispose(gw_segment_header *h);
/*
 * The trailer: B and I, then the SHA-256 of everything before the digest.
 * `running` has hashed every byte of the segment so far; B and I are added here.
 */
void gw_segment_trailer_encode(unsigned char out[GW_SEGMENT_TRAILER_SIZE], uint64_t bundle_len, uint64_t idx_len,
			       gw_hash *running);
/* H, the stored header's length, from a segment's prefix (untrusted: callers bound it). */
uint32_t gw_segment_prefix_header_length(const unsigned char prefix[GW_SEGMENT_PREFIX_SIZE]);
/* B and I from a trailer. */
void gw_segment_trailer_lengths(const unsigned char trailer[GW_SEGMENT_TRAILER_SIZE], uint64_t *bundle_len,
				uint64_t *idx_len);
/* The digest stored in a trailer. */
#define GW_SEGMENT_TRAILER_DIGEST(t) ((t) + 16)

/*
 * Claim `lsn` of rel for a full backup: write its log record (full_backup = 1)
 * at the LSN's one key, create-only. GW_EEXISTS when another record holds it.
 */
typedef struct gw_store gw_store;
int gw_segment_claim_full(gw_store *store, const char *rel, uint64_t lsn, int64_t time_us);

/* Read a stored segment's header and trailer only (ranged reads); size is the object's size. */
int gw_segment_read_meta(gw_store *store, const char *key, uint64_t size, gw_segment_header *h,
			 unsigned char trailer[GW_SEGMENT_TRAILER_SIZE]);
/* The ids of the objects a stored segment carries, from its pack index of hash_len-byte ids (malloc'd, n of them). */
int gw_segment_read_oids(gw_store *store, const char *key, uint64_t size, size_t hash_len, unsigned char **oids,
			 size_t *n);

#endif
