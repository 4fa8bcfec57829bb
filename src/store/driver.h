/*
 * What a storage driver provides. store.c owns the public API, validates keys
 * and dispatches here; a driver only talks to its backend. Writers and readers
 * embed a gw_store_writer / gw_store_reader header as their first member.
 */
#ifndef GITWAL_STORE_DRIVER_H
#define GITWAL_STORE_DRIVER_H

#include "gitwal/store.h"

typedef struct gw_store_driver gw_store_driver;

struct gw_store {
	const gw_store_driver *driver;
	char *url;  /* redacted, for messages */
	void *impl; /* the driver's state */
	uint32_t features; /* the driver's, which its open() may narrow or widen for this store */
	unsigned open_flags; /* GW_STORE_OPEN_*, for the driver's open() */
	uint64_t bytes_read, bytes_written; /* through the public API, as they stream (atomics; gw_store_traffic) */
};

struct gw_store_writer {
	gw_sink sink;
	gw_store *store;
	char *key;
	int committed;
};

struct gw_store_reader {
	gw_store *store;
	char *key;
	uint64_t size; /* the whole object's size, known at open (so a reader can refuse one too large unread) */
};

struct gw_store_driver {
	const char *scheme; /* "file", "s3" */
	uint32_t features; /* the default for its stores (gw_store.features) */
	/* Parse the URL (after "scheme://") and connect; set store->impl. */
	int (*open)(gw_store *store, const char *rest);
	void (*free)(gw_store *store);
	int (*write_open)(gw_store_writer **out, gw_store *store, const char *key, uint64_t size_hint);
	int (*write)(gw_store_writer *w, const void *buf, size_t len);
	int (*commit)(gw_store_writer *w);
	void (*writer_free)(gw_store_writer *w); /* aborts when not committed */
	int (*read_open)(gw_store_reader **out, gw_store *store, const char *key,
			 uint64_t offset, uint64_t length);
	ssize_t (*read)(gw_store_reader *r, void *buf, size_t len);
	void (*reader_free)(gw_store_reader *r);
	int (*stat)(gw_store *store, const char *key, gw_store_stat *st);
	/* Keys starting with prefix and, when start_after is set, greater than it, in byte order. */
	int (*list)(gw_store *store, const char *prefix, const char *start_after, gw_store_list_cb cb, void *payload);
	/* What is under prefix besides keys (gw_store_strays). */
	int (*strays)(gw_store *store, const char *prefix, gw_store_stray_cb cb, void *payload);
	int (*remove)(gw_store *store, const char *key);
	/* gw_store_remove_batch; NULL: remove() key by key, with a stat first where objects can be locked. */
	int (*remove_batch)(gw_store *store, const char *const *keys, size_t n, int64_t now_s, gw_store_removal_cb cb,
			    void *payload);
	/* gw_store_lock_period; NULL: the store locks nothing (0). */
	int (*lock_period)(gw_store *store, int64_t *seconds);
	/* gw_store_health_get; NULL: always healthy. */
	void (*health)(gw_store *store, gw_store_health *out);
};

extern const gw_store_driver gw_store_driver_file;
extern const gw_store_driver gw_store_driver_s3;

/* Messages every driver uses, so each says the same thing the same way. */
#define GW_STORE_MSG_EXISTS "key %s already exists in store %s (write-once: stored objects are never replaced)"
#define GW_STORE_MSG_NOTFOUND "key %s not found in store %s"

#endif
