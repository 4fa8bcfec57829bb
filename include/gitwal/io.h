/*
 * Streaming I/O as a chain of filters (in the manner of pgBackRest): bytes go
 * once through every stage -- hashing, counting, checking, compression -- on
 * their way to or from a store, never in a second pass over the data.
 *
 * A gw_sink takes bytes. A filter is a sink that does its work and passes the
 * bytes on to the next sink. Both directions use the same chains: writing,
 * the chain ends in a store writer (store.h); reading, gw_store_pump() writes
 * what it reads from a key into a chain, which ends where the bytes go (a
 * file, a pack check, another store's writer, or nowhere). So a filter that
 * transforms bytes (encryption, compression) is written once, as a sink, and
 * serves both.
 */
#ifndef GITWAL_IO_H
#define GITWAL_IO_H

#include <stddef.h>
#include <stdint.h>

typedef struct gw_sink gw_sink;
struct gw_sink {
	int (*write)(gw_sink *self, const void *buf, size_t len);
};

static inline int gw_sink_write(gw_sink *sink, const void *buf, size_t len)
{
	return len ? sink->write(sink, buf, len) : 0;
}

/*
 * A sink into a file descriptor through a buffer: one write(2) per 256 KiB
 * instead of one per call (pack writers emit many small pieces). Call
 * gw_fd_sink_flush() before fsync or close; the descriptor stays the caller's.
 */
typedef struct gw_fd_sink {
	gw_sink sink;
	int fd;
	const char *path; /* for messages */
	unsigned char *buf;
	size_t used;
} gw_fd_sink;

int gw_fd_sink_init(gw_fd_sink *s, int fd, const char *path);
int gw_fd_sink_flush(gw_fd_sink *s);
void gw_fd_sink_dispose(gw_fd_sink *s);

/* write(2) until all of buf is written, EINTR retried: 0, or -1 with errno set (callers name the file). */
int gw_write_all(int fd, const void *buf, size_t len);

/* Hash algorithms gitwal uses: SHA-256 for its own checksums, and Git's. */
typedef enum { GW_HASH_SHA1 = 1, GW_HASH_SHA256 = 2 } gw_hash_kind;

#define GW_HASH_MAX 32
#define GW_HEX_MAX (2 * GW_HASH_MAX + 1)

size_t gw_hash_size(gw_hash_kind kind);

typedef struct gw_hash gw_hash;
int gw_hash_new(gw_hash **out, gw_hash_kind kind);
void gw_hash_update(gw_hash *h, const void *buf, size_t len);
/* Writes gw_hash_size() bytes to out and resets the hash for reuse. */
void gw_hash_final(gw_hash *h, unsigned char *out);
void gw_hash_free(gw_hash *h);

/* One-shot digest of a buffer. */
int gw_hash_buffer(gw_hash_kind kind, const void *buf, size_t len, unsigned char *out);

void gw_hex_encode(char *out, const unsigned char *raw, size_t len);
/* Decodes exactly 2*len lowercase or uppercase hex digits; -1 on bad input. */
int gw_hex_decode(unsigned char *out, const char *hex, size_t len);
/* 1 when s[0..n) are all lowercase hex digits (as gitwal writes ids and digests). */
int gw_hex_is_lower(const char *s, size_t n);

/*
 * A filter that hashes and counts what passes through it. `next` may be NULL
 * (a pure measuring sink).
 */
typedef struct gw_digest_filter {
	gw_sink sink;
	gw_sink *next;
	gw_hash *hash;
	uint64_t bytes;
} gw_digest_filter;

int gw_digest_filter_init(gw_digest_filter *f, gw_hash_kind kind, gw_sink *next);
/* Finish: the digest as lowercase hex into hex (GW_HEX_MAX bytes). */
void gw_digest_filter_finish(gw_digest_filter *f, char *hex);
void gw_digest_filter_dispose(gw_digest_filter *f);

/*
 * A filter that checks bytes against what a record says of them (a
 * manifest's part, an index row): their count, and their digest. More bytes
 * than `size` fail as soon as they pass (a key larger than recorded is never
 * read to its end), unless `lenient` is set (the audit reads every byte to
 * report the size found); fewer, and a digest that differs, fail at
 * gw_check_filter_finish(). Messages name `key` and the record, `source`
 * ("its manifest", "the index"): "key K has N bytes, its manifest says M",
 * "key K is corrupt: its SHA-256 is X, its manifest says Y".
 */
#define GW_CHECK_ANY_SIZE UINT64_MAX

typedef enum {
	GW_CHECK_OK = 0,
	GW_CHECK_SIZE,   /* not the size recorded */
	GW_CHECK_DIGEST, /* not the digest recorded */
} gw_check_result;

typedef struct gw_check_filter {
	gw_sink sink;
	gw_sink *next;
	gw_digest_filter digest; /* over the covered bytes */
	gw_hash_kind kind;
	const char *key, *source;
	uint64_t size;       /* GW_CHECK_ANY_SIZE: not checked */
	uint64_t covered;    /* the digest covers the first `covered` bytes (default all; a segment's, all but its own 32) */
	const char *want;    /* the digest recorded (lowercase hex), or NULL: computed, not compared */
	int lenient;
	uint64_t bytes;      /* passed so far */
	/* After gw_check_filter_finish(): */
	gw_check_result result;
	unsigned char raw[GW_HASH_MAX];
	char hex[GW_HEX_MAX];
} gw_check_filter;

int gw_check_filter_init(gw_check_filter *f, gw_hash_kind kind, gw_sink *next, const char *key, const char *source,
			 uint64_t size, const char *want);
/* After the last byte: 0, or GW_ECORRUPT with f->result saying which check failed. */
int gw_check_filter_finish(gw_check_filter *f);
void gw_check_filter_dispose(gw_check_filter *f);

/*
 * A filter that passes on only the bytes at [from, to) of its stream
 * (to: GW_SLICE_END for all after from), and keeps the stream's first and
 * last GW_SLICE_KEEP bytes whatever it passes on: a pack's header and
 * trailer, a bundle's pack without its text header, an index's checksums.
 */
#define GW_SLICE_END UINT64_MAX
#define GW_SLICE_KEEP 64

typedef struct gw_slice_filter {
	gw_sink sink;
	gw_sink *next; /* may be NULL: only keep */
	uint64_t from, to;
	uint64_t pos; /* bytes seen */
	unsigned char head[GW_SLICE_KEEP];
	unsigned char tail[GW_SLICE_KEEP]; /* the last min(pos, GW_SLICE_KEEP) bytes seen, the latest last */
} gw_slice_filter;

void gw_slice_filter_init(gw_slice_filter *f, gw_sink *next, uint64_t from, uint64_t to);
/* The last n (<= GW_SLICE_KEEP, <= pos) bytes seen. */
const unsigned char *gw_slice_filter_tail(const gw_slice_filter *f, size_t n);

/*
 * A sink into memory, for what is small enough to hold (a manifest, a small
 * segment, a ranged read): at most `max` bytes; more is GW_ECORRUPT, "<what>
 * is larger than the <max> bytes allowed". With `fixed`, the bytes go into
 * the caller's buffer of max bytes; without, into one grown as needed from
 * `hint` bytes, always with room for a NUL after the data.
 */
typedef struct gw_buffer_sink {
	gw_sink sink;
	unsigned char *data;
	size_t len, cap, max;
	int fixed;
	const char *what;
} gw_buffer_sink;

void gw_buffer_sink_init(gw_buffer_sink *b, void *fixed, size_t max, size_t hint, const char *what);
/* The data, NUL-terminated, handed to the caller (free() it); the sink is empty after. Not for a fixed buffer. */
unsigned char *gw_buffer_sink_take(gw_buffer_sink *b, size_t *len);
void gw_buffer_sink_dispose(gw_buffer_sink *b);

#endif

/*
 * A filter that hands bytes to the next sink on a worker thread, so that the
 * stages before it (reading, Git's SHA-1) and after it (SHA-256, writing)
 * run on two cores at once. Bytes are copied into a small ring of buffers;
 * order is preserved. A downstream error is returned by a later write or by
 * gw_async_sink_finish(), with the downstream message.
 */
typedef struct gw_async_sink gw_async_sink;
int gw_async_sink_new(gw_async_sink **out, gw_sink *next);
gw_sink *gw_async_sink_as_sink(gw_async_sink *a);
/* Flush everything downstream and wait; returns the first downstream error. */
int gw_async_sink_finish(gw_async_sink *a);
/* Stops the worker (finishing in-flight buffers) and frees. */
void gw_async_sink_free(gw_async_sink *a);
