/*
 * Streaming I/O as a chain of filters (in the manner of pgBackRest): bytes go
 * once through every stage -- hashing, counting, compression -- on their way
 * to a store, never in a second pass over the data.
 *
 * A gw_sink takes bytes. A filter is a sink that does its work and passes the
 * bytes on to the next sink. A store writer (store.h) is the usual end.
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
