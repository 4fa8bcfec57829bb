/*
 * Git pack and pack-index (.idx v2) primitives, and the pack splicer that
 * turns a repository's existing packs and loose objects into one pack plus
 * its index without recomputing deltas (see DESIGN.md 4 and 5.2).
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

/* An opened .idx (version 2). Reads go through the fd (or from mem); nothing is mapped. */
typedef struct gw_idx {
	int fd;
	const unsigned char *mem; /* the whole index, when opened from a buffer */
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
/* The same over an index held in memory (buf stays the caller's and must outlive idx). */
int gw_idx_open_buffer(gw_idx *idx, const unsigned char *buf, size_t len, const char *name, size_t hash_len,
		       int verify);
/*
 * What lookups rely on, in one pass over the id table: ids strictly
 * increasing (unique) and each in its fanout bucket. `want` (nwant sorted ids,
 * may be NULL) is looked up on the way: found[i] is set to 1 for each present
 * (the caller zeroes it). GW_ECORRUPT naming the position or the id.
 */
int gw_idx_verify(const gw_idx *idx, const unsigned char *want, size_t nwant, unsigned char *found);
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

/*
 * Walking a pack in offset order with bounded memory: the offsets are split
 * into windows of at most max_entries objects (bounds[0..n), ascending, the
 * last UINT64_MAX), and each window's entries are loaded sorted by offset.
 * `end` is where object data ends (the pack size less its trailer); an
 * offset outside [12, end) is GW_ECORRUPT.
 */
typedef struct gw_idx_ofs_entry {
	uint64_t offset;
	uint32_t pos; /* in the index's id order */
	uint32_t crc;
} gw_idx_ofs_entry;
int gw_idx_windows(const gw_idx *idx, uint64_t end, uint32_t max_entries, size_t stream_buf, uint64_t **bounds,
		   size_t *nbounds);
/* The entries with offset in [lo, hi), sorted (*out malloc'd); *next_off gets the least offset >= hi, or end. */
int gw_idx_load_window(const gw_idx *idx, uint64_t end, uint64_t lo, uint64_t hi, size_t stream_buf,
		       gw_idx_ofs_entry **out, size_t *count, uint64_t *next_off);

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

/* Enough of an entry's first bytes to parse its header: type/size, then an OFS distance or a REF base id. */
#define GW_PACK_ENTRY_HEADER_MAX 64
typedef struct gw_pack_entry {
	int type;
	uint64_t size;
	size_t header_len; /* the type/size header */
	size_t ofs_len;    /* OFS_DELTA: the distance's length */
	uint64_t distance; /* OFS_DELTA: back to the base */
} gw_pack_entry;
/*
 * Check the header of the entry at `offset`, entry_len bytes long, from its
 * first avail bytes (all of it, or at least GW_PACK_ENTRY_HEADER_MAX): a
 * known type, a base that lies before it in the pack (a REF_DELTA's base id
 * is hash_len bytes), data after the header.
 * NULL when sound, else what is wrong.
 */
const char *gw_pack_entry_check(const unsigned char *buf, size_t avail, uint64_t offset, uint64_t entry_len,
				size_t hash_len, gw_pack_entry *e);

/*
 * Checking a pack against its index as the pack streams by (restore feeds it
 * the bytes it writes, so nothing is read twice): the header ("PACK", version
 * 2, the index's object count), the SHA-1 of the pack against its trailer and
 * the trailer against the index's pack checksum; the index's offsets tile the
 * object data (the first right after the header, each object ending where
 * the next begins, the last at the trailer), each object's CRC32 over its
 * packed bytes equals the index's, each entry header is sound and an
 * OFS_DELTA's base is an object boundary. Memory: one window of offsets (at
 * most 2^20 entries, 16 MiB) whatever the pack's size. Run gw_idx_verify on
 * the index too: this checks the pack against it, not its id table.
 */
typedef struct gw_pack_check gw_pack_check;
/*
 * `idx` stays open until freed; `size` is the pack's length in bytes, as it
 * will be fed; `what` names the pack in messages. The check is a filter:
 * bytes go on to `next` (may be NULL) once checked.
 */
int gw_pack_check_new(gw_pack_check **out, const gw_idx *idx, uint64_t size, const char *what, gw_sink *next);
/* Feed the pack's bytes in order, from its first; errors are GW_ECORRUPT naming `what` and the object. */
gw_sink *gw_pack_check_sink(gw_pack_check *c);
/* After the last byte: every check that needs the whole pack. */
int gw_pack_check_finish(gw_pack_check *c);
void gw_pack_check_free(gw_pack_check *c);
/* Offsets held at once (2^20); tests lower it. */
extern uint32_t gw_pack_check_window;
/* The whole check of a pack held in memory. */
int gw_pack_check_buffer(const gw_idx *idx, const unsigned char *pack, size_t len, const char *what);
/* The whole check of a pack in a file, read through fd (a pack written before its index was at hand). */
int gw_pack_check_fd(const gw_idx *idx, int fd, uint64_t size, const char *what);


/*
 * Write the given objects (n ids of the repository's size, read through
 * gitwal's object reader, gitwal/odb.h) as a pack of whole objects plus its
 * .idx (SHA-1 or SHA-256, as the repository), into files
 * <base>-<checksum>.pack/.idx; their paths are returned (malloc'd). For the
 * few objects of a typical push this is far cheaper than starting
 * `git pack-objects`; it computes no deltas, so callers use it for small sets.
 */
struct gw_odb;
int gw_pack_write_objects(struct gw_odb *odb, const unsigned char *oids, size_t n, const char *base, char **pack_path,
			  char **idx_path);
/* Remove and free the files gw_pack_write_objects made (either may be NULL); a reader holding them open goes on. */
void gw_pack_written_discard(char *pack_path, char *idx_path);

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
/*
 * `objects` counts every object of the joined pack, the base's included; ids
 * and checksums are hash_len bytes (20: SHA-1, 32: SHA-256), every pack
 * appended and the base's index alike; first may be NULL.
 */
int gw_pack_appender_open(gw_pack_appender **out, const char *base, uint64_t objects, size_t hash_len,
			  const gw_pack_base *first);
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
