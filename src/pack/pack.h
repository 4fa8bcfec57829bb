/*
 * Git pack and pack-index (.idx v2) primitives, and the pack splicer that
 * turns a repository's existing packs and loose objects into one pack plus
 * its index without recomputing deltas (see DESIGN.md, "Full backup").
 *
 * Everything here reads data it must not trust blindly (a live repository,
 * or a stored sidecar): every read is bounds-checked and reports GW_ECORRUPT
 * naming the file and position.
 */
#ifndef GITWAL_PACK_H
#define GITWAL_PACK_H

#include <stdint.h>
#include <stddef.h>

#include "gitwal/io.h"

#define GW_PACK_HEADER_SIZE 12
#define GW_IDX_V2_MAGIC "\377tOc"

enum {
	GW_OBJ_COMMIT = 1,
	GW_OBJ_TREE = 2,
	GW_OBJ_BLOB = 3,
	GW_OBJ_TAG = 4,
	GW_OBJ_OFS_DELTA = 6,
	GW_OBJ_REF_DELTA = 7,
};

/* An opened .idx (version 2). Reads go through the fd; nothing is mapped. */
typedef struct gw_idx {
	int fd;
	const char *name; /* for messages */
	size_t hash_len;
	uint64_t file_size;
	uint32_t count;
	uint32_t fanout[256];
	uint64_t oid_off, crc_off, ofs_off, large_off;
	uint32_t large_count;
	unsigned char pack_checksum[GW_HASH_MAX];
} gw_idx;

/*
 * Parse and check an .idx: header, fanout, sizes and (when verify is set) its
 * trailing checksum. Takes ownership of nothing: the caller closes fd.
 */
int gw_idx_open(gw_idx *idx, int fd, const char *name, size_t hash_len, int verify);
int gw_idx_oid_at(const gw_idx *idx, uint32_t pos, unsigned char *oid);
int gw_idx_offset_at(const gw_idx *idx, uint32_t pos, uint64_t *offset);
int gw_idx_crc_at(const gw_idx *idx, uint32_t pos, uint32_t *crc);
/* Binary search for oid: 1 and *pos when found, 0 when absent, <0 on error. */
int gw_idx_find(const gw_idx *idx, const unsigned char *oid, uint32_t *pos);

/* Buffered sequential reader over one table of an .idx. */
typedef struct gw_idx_stream {
	const gw_idx *idx;
	uint64_t next_off;   /* file offset of the next unread entry */
	uint32_t remaining;  /* entries not yet returned */
	size_t entry_size;
	unsigned char *buf;
	size_t buf_size, buf_len, buf_pos;
} gw_idx_stream;

typedef enum { GW_IDX_TABLE_OID, GW_IDX_TABLE_CRC, GW_IDX_TABLE_OFFSET } gw_idx_table;

int gw_idx_stream_init(gw_idx_stream *s, const gw_idx *idx, gw_idx_table table, size_t buf_size);
/* Pointer to the next entry (valid until the next call), or NULL at the end or on error (then *err < 0). */
const unsigned char *gw_idx_stream_next(gw_idx_stream *s, int *err);
void gw_idx_stream_dispose(gw_idx_stream *s);

/* Decode a 32-bit offset-table entry, following the large-offset table. */
int gw_idx_decode_offset(const gw_idx *idx, const unsigned char *entry, uint64_t *offset);

/* A source pack for the splicer: open .pack and .idx fds that it reads. */
typedef struct gw_pack_source {
	char *name; /* pack-XXXX, for messages */
	int pack_fd;
	int idx_fd;
	uint64_t pack_size;
	gw_idx idx;
} gw_pack_source;

/*
 * A loose object the splicer will deflate into the pack. It is opened only
 * when its turn comes; if it has vanished by then (packed and pruned by a
 * concurrent gc) the splice fails with GW_ECHANGED and the caller retries.
 */
typedef struct gw_loose_source {
	unsigned char oid[GW_HASH_MAX];
	char *path;
} gw_loose_source;

typedef struct gw_splice_stats {
	uint64_t objects;      /* objects in the output pack */
	uint64_t duplicates;   /* copies dropped because another pack had them */
	uint64_t rewritten;    /* delta headers rewritten (offset changes or OFS->REF) */
	uint64_t loose;        /* loose objects packed */
	uint64_t pack_bytes;   /* size of the output pack */
	unsigned char pack_checksum[GW_HASH_MAX];
} gw_splice_stats;

/*
 * Write one pack holding every object of the sources exactly once to
 * pack_out, then its .idx v2 to idx_out. Objects are verified on the way
 * (CRC32 against the source index, or the whole source checksum; loose
 * objects are re-hashed), and a mismatch is GW_ECORRUPT naming the object.
 * `label` names the repository in messages.
 */
int gw_pack_splice(const char *label, gw_pack_source *packs, size_t npacks, gw_loose_source *loose,
		   size_t nloose, size_t hash_len, gw_sink *pack_out, gw_sink *idx_out, gw_splice_stats *stats);

/* Pack entry header helpers, shared with the readers and the tests. */
size_t gw_pack_encode_header(unsigned char *out, int type, uint64_t size);
size_t gw_pack_encode_ofs(unsigned char *out, uint64_t distance);
/* Parse an entry header from buf[0..len); returns bytes used, 0 if incomplete or invalid. */
size_t gw_pack_parse_header(const unsigned char *buf, size_t len, int *type, uint64_t *size);
size_t gw_pack_parse_ofs(const unsigned char *buf, size_t len, uint64_t *distance);


/*
 * Write the given objects (read through libgit2's object database `odb`, a
 * git_odb *) as a pack of whole objects plus its .idx, into files
 * <base>-<checksum>.pack/.idx; their paths are returned (malloc'd). For the
 * few objects of a typical push this is far cheaper than starting
 * `git pack-objects`; it computes no deltas, so callers use it for small sets.
 */
int gw_pack_write_objects(void *odb, const unsigned char *oids, size_t n, const char *base, char **pack_path,
			  char **idx_path);

/*
 * Joining many small self-contained packs (the log segments of one
 * generation) into one: each pack's object data is appended verbatim (an
 * OFS_DELTA's distance stays within its own pack, so it stays right) and its
 * index entries are moved by the offset it landed at. The object count is
 * given up front because the pack's SHA-1 covers the header: each appended
 * pack must bring its share, and the total must match at the end. Entries
 * are kept in memory (32 bytes per object) to write the .idx v2 at the end.
 *
 * The joined pack may start with a base pack (a full backup's), whose
 * object data is streamed through gw_pack_appender_base_sink() -- from
 * another thread than the one adding packs, if the caller likes: the two
 * parts are written through their own descriptors at offsets known from the
 * start. The base's objects keep their offsets (both packs begin with the
 * same 12-byte header), so its entries are merged from its .idx when the
 * index is written, never held in memory.
 */
typedef struct gw_pack_appender gw_pack_appender;
typedef struct gw_pack_base {
	const gw_idx *idx; /* the base pack's index, open until gw_pack_appender_finish() */
	uint64_t body_len; /* its object data: the pack less its 12-byte header and its trailer */
} gw_pack_base;
/* `objects` counts every object of the joined pack, the base's included; first may be NULL. */
int gw_pack_appender_open(gw_pack_appender **out, const char *base, uint64_t objects, const gw_pack_base *first);
/* Where the base's object data goes: exactly body_len bytes, in order. */
gw_sink *gw_pack_appender_base_sink(gw_pack_appender *a);
/* Append a pack (header, objects, trailer) and its .idx v2, both whole in memory; `what` names it in errors. */
int gw_pack_appender_add(gw_pack_appender *a, const unsigned char *pack, size_t pack_len, const unsigned char *idx,
			 size_t idx_len, const char *what);
/* Write the trailer and the .idx into <base>-<checksum>.pack/.idx (paths malloc'd). */
int gw_pack_appender_finish(gw_pack_appender *a, char **pack_path, char **idx_path);
/* Removes the temporary files unless finished. */
void gw_pack_appender_free(gw_pack_appender *a);

#endif
