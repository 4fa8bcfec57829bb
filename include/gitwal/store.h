/*
 * The storage interface: one API over every backend (file://, s3://).
 *
 * Stores are write-once. A key, once created, is never replaced or modified:
 * gw_store_writer_commit() fails with GW_EEXISTS when the key exists, and a
 * writer that is freed without commit leaves nothing visible under its key.
 * Keys are relative '/'-separated paths of [A-Za-z0-9._%+=-] components
 * (no empty component, none starting with "."); gw_store_key_check() enforces that.
 *
 * Each driver fills a gw_store_driver (src/store/driver.h) and declares what
 * it can do in a feature bitmask.
 */
#ifndef GITWAL_STORE_H
#define GITWAL_STORE_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#include "gitwal/io.h"

typedef struct gw_store gw_store;
typedef struct gw_store_writer gw_store_writer;
typedef struct gw_store_reader gw_store_reader;

/* Features a driver may have. */
#define GW_STORE_FEATURE_VERSIONS  (1u << 0) /* keeps versions of a key (S3 versioning) */
#define GW_STORE_FEATURE_LOCK      (1u << 1) /* retention lock on create (S3 Object Lock) */
#define GW_STORE_FEATURE_MODE      (1u << 2) /* has POSIX permissions (file) */

#define GW_STORE_SIZE_UNKNOWN UINT64_MAX
#define GW_STORE_TO_END UINT64_MAX

typedef struct gw_store_stat {
	uint64_t size;
	int64_t mtime;        /* seconds since the epoch */
	unsigned versions;    /* versions of the key (1 where the store has no versioning) */
	int writable;         /* 1 when the object could still be modified (a write-once breach) */
	int64_t retain_until; /* lock retention, seconds since the epoch; 0 when none */
} gw_store_stat;

typedef struct gw_store_entry {
	const char *key;
	uint64_t size;
} gw_store_entry;

/* Open a store named by URL: file:///abs/path or s3://bucket/prefix?... */
int gw_store_open(gw_store **out, const char *url);
/*
 * Flags for gw_store_open_flags. DEFER_CHECKS: when the store cannot be
 * reached now (GW_EIO), checks that need it (S3: the bucket's versioning and
 * Object Lock) are made before the first write instead, and the open
 * succeeds; for a service that spools while the store is away. One-shot
 * commands open without it and fail at once.
 */
#define GW_STORE_OPEN_DEFER_CHECKS (1u << 0)
int gw_store_open_flags(gw_store **out, const char *url, unsigned flags);
void gw_store_free(gw_store *store);
/* The URL with any secret removed, for messages. */
const char *gw_store_url(const gw_store *store);
uint32_t gw_store_features(const gw_store *store);
/*
 * Bytes read from and written to the store so far by this process, counted
 * as they stream through the readers and writers (from any thread), for
 * progress displays.
 */
void gw_store_traffic(const gw_store *store, uint64_t *read, uint64_t *written);

/*
 * Begin writing `key`. size_hint is the final size when known
 * (GW_STORE_SIZE_UNKNOWN otherwise); drivers use it to pick a strategy.
 */
int gw_store_write_open(gw_store_writer **out, gw_store *store, const char *key, uint64_t size_hint);
/* The writer as a sink, for filter chains. */
gw_sink *gw_store_writer_sink(gw_store_writer *w);
int gw_store_writer_write(gw_store_writer *w, const void *buf, size_t len);
/* Make the object durable and visible under its key; GW_EEXISTS if the key is taken. */
int gw_store_writer_commit(gw_store_writer *w);
/* Frees the writer; aborts (leaves nothing) when it was not committed. */
void gw_store_writer_free(gw_store_writer *w);

/* Convenience: create `key` with the whole of buf. */
int gw_store_put(gw_store *store, const char *key, const void *buf, size_t len);

/* Read `length` bytes from `offset` (GW_STORE_TO_END for the rest). */
int gw_store_read_open(gw_store_reader **out, gw_store *store, const char *key,
		       uint64_t offset, uint64_t length);
/* Returns bytes read (0 at the end) or a negative GW_E* code. */
ssize_t gw_store_reader_read(gw_store_reader *r, void *buf, size_t len);
void gw_store_reader_free(gw_store_reader *r);

/*
 * The read side of a filter chain (io.h): key[offset, offset + length)
 * (GW_STORE_TO_END: to its end) read in order and written into `into`, a
 * sink or the first filter of a chain (a gw_check_filter, then where the
 * bytes go). Returns 0, or the first error: the store's or the chain's (with
 * its message). Checks of size and content are the chain's: the pump only
 * moves bytes.
 */
int gw_store_pump(gw_store *store, const char *key, uint64_t offset, uint64_t length, gw_sink *into);

/* Read exactly len bytes of key from offset into buf: fewer is GW_ECORRUPT ("key ... is truncated"). */
int gw_store_read_range(gw_store *store, const char *key, uint64_t offset, size_t len, void *buf);

/* Read a whole small object (at most max_size bytes) into a malloc'd buffer; a larger one is refused from
 * its size, before any of it is read (GW_ECORRUPT). */
int gw_store_get(gw_store *store, const char *key, size_t max_size, char **out, size_t *out_len);

int gw_store_stat_key(gw_store *store, const char *key, gw_store_stat *st);

/*
 * Every key starting with prefix, in byte order. The callback returns 0 to go
 * on, or non-zero to stop (that value is returned).
 */
typedef int (*gw_store_list_cb)(const gw_store_entry *entry, void *payload);
int gw_store_list(gw_store *store, const char *prefix, gw_store_list_cb cb, void *payload);
/* The same, only keys greater than start_after (S3: start-after, so the listing costs what it returns). */
int gw_store_list_after(gw_store *store, const char *prefix, const char *start_after, gw_store_list_cb cb,
			void *payload);

/* Every key (and size) under prefix, collected in byte order. */
typedef struct gw_store_listing {
	char **keys;
	uint64_t *sizes;
	size_t count, cap;
} gw_store_listing;
int gw_store_list_all(gw_store *store, const char *prefix, gw_store_listing *out);
/* A gw_store_list callback: append a copy of entry to the gw_store_listing `listing` (zeroed first). */
int gw_store_listing_add(const gw_store_entry *entry, void *listing);
void gw_store_listing_dispose(gw_store_listing *listing);

/*
 * What a store holds that is not a key (DESIGN.md 2.2), for the audit:
 * unfinished objects of writers (a file store's temporary files, an S3
 * store's incomplete multipart uploads), and in a file store names that are
 * not regular files (a FIFO, a symlink, a socket, a device) and directories.
 * Writers clear the leftovers of dead writers themselves: the first commit
 * of a process in a directory (file) or under a repository's prefix (S3).
 */
typedef enum {
	GW_STORE_STRAY_LEFTOVER = 0, /* a writer's unfinished object */
	GW_STORE_STRAY_SPECIAL,      /* not a regular file: FIFO, symlink, socket, device */
	GW_STORE_STRAY_DIRECTORY,    /* a directory (a file store's keys live in directories) */
} gw_store_stray_kind;

typedef struct gw_store_stray {
	gw_store_stray_kind kind;
	const char *key;   /* the key it stands for: a leftover's key, or the name taken as a key */
	const char *name;  /* the driver's name for it: a path under the root, or an S3 upload id */
	const char *type;  /* for messages: "temporary file", "incomplete upload", "FIFO", "directory", ... */
	const char *owner; /* leftovers: who wrote it, for messages */
	uint64_t size;     /* leftovers: bytes written so far (S3: the parts uploaded) */
	int64_t mtime;     /* leftovers: last written (file) or initiated (S3), seconds since the epoch */
	int live;          /* leftovers: the writer is known to be running (work in progress) */
	int removable;     /* leftovers: the next writer there removes it (its writer is dead, or presumed so) */
} gw_store_stray;
typedef int (*gw_store_stray_cb)(const gw_store_stray *stray, void *payload);
/* Every stray under prefix, in no particular order; the callback returns non-zero to stop. */
int gw_store_strays(gw_store *store, const char *prefix, gw_store_stray_cb cb, void *payload);

/*
 * The store's health as this process saw it, for a service that must tell a
 * failing store at once (the archiver's metrics and its choice to spool).
 * Every request a driver makes counts: one that fails in a way the store is
 * to blame for (no connection, a reset, a lost answer, a request abandoned
 * at a time limit, HTTP 5xx or 429, credentials refused) makes the store
 * unhealthy from then until a request is answered again; so does a request
 * in flight that has moved nothing for the driver's stall limit (S3:
 * stall_timeout), before it is abandoned. Answers such as "not found" or
 * "exists" are healthy. A store that has not been asked anything yet is
 * healthy. Drivers without requests of their own (file) are always healthy:
 * their failures are the calls' errors.
 */
typedef struct gw_store_health {
	int healthy;
	int64_t since_us;     /* unhealthy: when the trouble began (the first failed or stalled request since the
				 last answer), microseconds since the epoch; healthy: 0 */
	int64_t last_ok_us;   /* the last answer, microseconds since the epoch; 0: none yet */
	uint64_t failures;    /* failed attempts since the last answer (a stall in flight is not counted) */
	char reason[256];     /* unhealthy: the last failure, one line (no secret); healthy: "" */
} gw_store_health;
/* Fill *out; cheap (no request), safe from any thread while the store is open. */
void gw_store_health_get(gw_store *store, gw_store_health *out);

/*
 * Remove a key. On the archive's store only retention calls it (DESIGN.md
 * 18.6); the spool (a local file store, DESIGN.md 10.6) removes a segment
 * once the archive holds it.
 */
int gw_store_remove(gw_store *store, const char *key);

/* What happened to one key of gw_store_remove_batch. */
typedef struct gw_store_removal {
	const char *key;
	/*
	 * 0: removed, every version of it (or it was not there); GW_ELOCKED: left,
	 * under retention that has not passed; another GW_E*: refused or failed
	 */
	int rc;
	const char *message;  /* rc < 0: why, one line */
	int64_t retain_until; /* GW_ELOCKED: until when (seconds since the epoch; 0: not known) */
	int64_t created;      /* GW_ELOCKED: when the object was written (seconds; 0: not known) */
} gw_store_removal;
typedef int (*gw_store_removal_cb)(const gw_store_removal *r, void *payload);
/* Keys one S3 DeleteObjects request takes; batches may be any size (drivers split them). */
#define GW_STORE_REMOVE_BATCH 1000
/*
 * Remove keys, each with every version it has, for retention: an object
 * whose retention (Object Lock retain-until) is after now_s is never
 * removed but reported GW_ELOCKED; a key the store refuses is reported, not
 * fatal. cb hears every key once (non-zero from it stops). Returns < 0 only
 * when the store failed as a whole (unreachable): keys not reported are
 * left as they were. S3 sends one DeleteObjects per 1,000 keys; the file
 * store removes them one by one (its read-only mark protects nothing from
 * retention, which is the only caller).
 */
int gw_store_remove_batch(gw_store *store, const char *const *keys, size_t n, int64_t now_s, gw_store_removal_cb cb,
			  void *payload);

/*
 * How long the store locks what it is given (seconds; 0: nothing is locked,
 * or not known): on S3 the URL's retain= with lock=, else the bucket's
 * default Object Lock retention (one request); the file store locks nothing
 * that stops retention. For retention's warning that a lock longer than its
 * window keeps what it expires (DESIGN.md 18.6).
 */
int gw_store_lock_period(gw_store *store, int64_t *seconds);

/* 0 when key is a valid store key, GW_EINVALID (with a message) otherwise. */
int gw_store_key_check(const char *key);

#endif
